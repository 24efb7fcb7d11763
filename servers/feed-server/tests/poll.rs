//! Polling and long-polling over real sockets.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::time::Instant;

fn seqs(v: &Value) -> Vec<u64> {
    v["lines"]
        .as_array()
        .expect("lines array")
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn poll_limit_pages_through_the_log_with_the_next_cursor() {
    let server = TestServer::default().await;
    server.append("a\nb\nc\nd\ne").await;
    let page = server.poll("after=0&limit=2").await;
    assert_eq!(seqs(&page), vec![1, 2]);
    assert_eq!(texts(&page), vec!["a", "b"]);
    assert_eq!(page["next"], 2);
    assert_eq!(page["last_seq"], 5);
    assert_eq!(page["finished"], false);
    let line = &page["lines"][0];
    assert_eq!(line.as_object().unwrap().len(), 3, "seq, ts, line: {line}");
    assert!(line["ts"].as_u64().unwrap() > 0);

    let page = server.poll("after=2").await;
    assert_eq!(seqs(&page), vec![3, 4, 5]);
    assert_eq!(page["next"], 5);
    assert_eq!(page["last_seq"], 5);
    let page = server.poll("after=5").await;
    assert_eq!(seqs(&page), Vec::<u64>::new());
    assert_eq!(page["next"], 5, "an empty answer keeps the cursor");
}

#[tokio::test]
async fn poll_etag_gives_304_when_nothing_is_new_and_a_new_etag_after_an_append() {
    let server = TestServer::default().await;
    server.append("a\nb").await;
    let url = format!("{LOGS}?after=2");
    let first = server.get(&url, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let etag = first.header("etag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag:?}");

    let again = server.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty(), "304 has no body");
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert!(server
        .metrics()
        .await
        .contains("pushbench_polls_not_modified_total 1\n"));

    server.append("c").await;
    let changed = server.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(seqs(&changed.json()), vec![3]);
    let new_etag = changed.header("etag").expect("ETag");
    assert_ne!(new_etag, etag);
}

/// The body carries `last_seq`, so an answer whose lines did not change but whose `last_seq`
/// did is a different representation: a 304 would leave the client with a stale `last_seq`.
#[tokio::test]
async fn poll_etag_of_a_page_changes_when_last_seq_moves() {
    let server = TestServer::default().await;
    server.append("a\nb\nc").await;
    let url = format!("{LOGS}?after=0&limit=2");
    let first = server.get(&url, &[]).await;
    assert_eq!(first.json()["last_seq"], 3);
    let etag = first.header("etag").unwrap().to_string();
    let same = server.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    server.append("d").await;
    let r = server.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK, "last_seq moved: not 304");
    assert_eq!(seqs(&r.json()), vec![1, 2]);
    assert_eq!(r.json()["last_seq"], 4);
}

#[tokio::test]
async fn poll_etag_changes_when_the_step_finishes() {
    let server = TestServer::default().await;
    server.append("a").await;
    let url = format!("{LOGS}?after=1");
    let first = server.get(&url, &[]).await;
    let etag = first.header("etag").unwrap().to_string();
    server.finish().await;
    let r = server.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["finished"], true);
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_a_line_is_appended() {
    let server = TestServer::default().await;
    server.append("a").await;
    let feed = server.feed.clone();
    let started = Instant::now();
    let appender = tokio::spawn(async move {
        // Part of the scenario, not synchronisation: the line must come after the poll began.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let topic = pushbench_feed::TopicId::parse(TOPIC).unwrap();
        feed.backend
            .append(
                &topic,
                vec![pushbench_feed::backend::NewLine {
                    ts: 1,
                    text: "late".into(),
                }],
            )
            .await
            .unwrap();
    });
    let page = server.poll("after=1&wait=2s").await;
    let elapsed = started.elapsed();
    within("appender", appender).await.unwrap();
    assert_eq!(seqs(&page), vec![2]);
    assert_eq!(texts(&page), vec!["late"]);
    assert_eq!(page["next"], 2);
    assert_eq!(page["last_seq"], 2);
    assert!(
        elapsed >= Duration::from_millis(150),
        "held until the append: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "answered at the append, not at the timeout: {elapsed:?}"
    );
}

#[tokio::test]
async fn long_poll_times_out_with_no_lines() {
    let server = TestServer::default().await;
    server.append("a").await;
    let started = Instant::now();
    let page = server.poll("after=1&wait=300ms").await;
    let elapsed = started.elapsed();
    assert_eq!(
        page,
        json!({"lines": [], "next": 1, "last_seq": 1, "finished": false})
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn finish_wakes_a_long_poll_with_finished_true() {
    let server = TestServer::default().await;
    server.append("a").await;
    let started = Instant::now();
    let finisher = async {
        // Part of the scenario: finish while the poll is held.
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.finish().await;
    };
    let (page, ()) = tokio::join!(server.poll("after=1&wait=10s"), finisher);
    let elapsed = started.elapsed();
    assert_eq!(
        page,
        json!({"lines": [], "next": 1, "last_seq": 1, "finished": true})
    );
    assert!(
        elapsed >= Duration::from_millis(150) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn poll_bad_parameters_are_400_naming_them() {
    let server = TestServer::default().await;
    server.append("a").await;
    for (query, name) in [
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("limit=x", "limit"),
        ("limit=100000000", "limit"),
        ("wait=soon", "wait"),
        ("wait=1h", "wait"),
        ("bogus=1", "bogus"),
        ("after=0&afer=1", "afer"),
    ] {
        let r = server.get(&format!("{LOGS}?{query}"), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        let msg = r.error();
        assert!(msg.contains(name), "{query}: {msg:?} should name {name}");
    }
    let r = server.get(&format!("{LOGS}?after=2"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "after beyond the head");
}

#[tokio::test]
async fn poll_after_older_than_history_is_410() {
    let server = TestServer::with_history(3).await;
    server.append("1\n2\n3\n4\n5").await;
    // History holds 3..=5.
    let page = server.poll("after=2").await;
    assert_eq!(seqs(&page), vec![3, 4, 5]);
    let r = server.get(&format!("{LOGS}?after=1"), &[]).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.error().contains("gone"), "{}", r.error());
    assert_eq!(r.json()["oldest_seq"], 3, "{}", r.text());
    let r = server.get(&format!("{LOGS}?after=0"), &[]).await;
    assert_eq!(r.status, StatusCode::GONE);
    // Without a cursor a new viewer gets what is held, with the cursor to go on from.
    let r = server.get(&LOGS, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    let first: Vec<u64> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(first, vec![3, 4, 5]);
    assert_eq!(body["next"], 5);
}

#[tokio::test]
async fn poll_unknown_topic_is_404() {
    let server = TestServer::default().await;
    let r = server
        .get("/acme/app/builds/1/steps/nope/logs?after=0", &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("unknown topic"), "{}", r.error());
}

#[tokio::test]
async fn shutdown_answers_a_held_long_poll_and_serve_returns() {
    let server = TestServer::default().await;
    server.append("a").await;
    let started = Instant::now();
    let trigger = async {
        // Part of the scenario: shut down while the poll is held.
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.feed.shutdown.trigger();
    };
    let (page, ()) = tokio::join!(server.poll("after=1&wait=10s"), trigger);
    assert_eq!(seqs(&page), Vec::<u64>::new());
    assert_eq!(page["finished"], false);
    assert!(started.elapsed() < Duration::from_secs(3));
    within("serve() to return", server.handle)
        .await
        .expect("serve task")
        .expect("serve returns Ok");
}

#[tokio::test]
async fn poll_token_accepts_bearer_or_query_token() {
    let mut config = feed_server::ServerConfig::default();
    config.poll.auth = pushbench_feed::http::TokenAuth::new(Some("t".into()));
    let server = TestServer::start(config).await;
    server.append("a").await;
    let r = server.get(&LOGS, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error().contains("token"), "{}", r.error());
    let r = server.get(&format!("{LOGS}?token=wrong"), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = server.get(&format!("{LOGS}?token=t"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(seqs(&r.json()), vec![1]);
    let r = server.get(&LOGS, &[("authorization", "Bearer t")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(seqs(&r.json()), vec![1]);
}
