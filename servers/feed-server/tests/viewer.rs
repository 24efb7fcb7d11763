//! What the log viewer needs from the server, over real sockets: the page and its assets,
//! `GET /topics`, and the admin drop the browser tests use (tests/browser runs the page itself).

mod common;

use clap::Parser;
use common::*;
use feed_server::config::Args;
use feed_server::ServerConfig;
use futures_util::StreamExt;
use hyper::{Method, StatusCode};
use pushbench_feed::http::{CorsConfig, TokenAuth};
use pushbench_sse::SseConfig;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "admin-secret";
const DROP: &str = "/admin/drop-connections/acme/app/builds/1/steps/test";

fn with_admin() -> ServerConfig {
    ServerConfig {
        admin_token: Some(ADMIN.into()),
        ..ServerConfig::default()
    }
}

async fn drop_connections(server: &TestServer, auth: Option<&str>) -> Answer {
    let header = auth.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = header
        .as_deref()
        .map(|h| vec![("authorization", h)])
        .unwrap_or_default();
    server
        .send(Method::POST, DROP, &headers, "")
        .await
        .into_full()
        .await
}

#[tokio::test]
async fn viewer_page_and_assets_have_their_types_and_revalidate_with_304() {
    let server = TestServer::default().await;
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "<script src=\"viewer.js\""),
        (
            "/viewer.js",
            "text/javascript; charset=utf-8",
            "new EventSource(",
        ),
        ("/viewer.css", "text/css; charset=utf-8", ".ln .no"),
    ] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(r.text().contains(marker), "{path} holds {marker:?}");
        let etag = r.header("etag").expect("an ETag").to_string();
        let again = server.get(path, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        let changed = server.get(path, &[("if-none-match", "\"other\"")]).await;
        assert_eq!(changed.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn topics_lists_steps_with_last_seq_and_finished() {
    let server = TestServer::default().await;
    let r = server.get("/topics", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"topics": [], "total": 0, "truncated": false})
    );
    server.append("a\nb").await;
    server.finish().await;
    let other = server
        .post_text("/acme/app/builds/1/steps/zz/logs", "x")
        .await;
    assert_eq!(other.status, StatusCode::OK);
    let r = server.get("/topics", &[]).await.json();
    assert_eq!(
        r,
        serde_json::json!({
            "topics": [
                {"topic": "acme/app/builds/1/steps/test", "logs": &*LOGS, "last_seq": 2, "finished": true},
                {"topic": "acme/app/builds/1/steps/zz", "logs": "/acme/app/builds/1/steps/zz/logs", "last_seq": 1, "finished": false},
            ],
            "total": 2,
            "truncated": false,
        })
    );
    let r = server.get("/topics?limit=1", &[]).await.json();
    assert_eq!(r["topics"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (r["total"].as_u64(), &r["truncated"]),
        (Some(2), &serde_json::json!(true))
    );
    for (query, says) in [
        ("limit=x", "limit"),
        ("limit=10001", "maximum"),
        ("prefix=acme", "unknown query parameter \"prefix\""),
    ] {
        let r = server.get(&format!("/topics?{query}"), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.error().contains(says), "{query}: {}", r.error());
    }
}

#[tokio::test]
async fn topics_wants_the_reader_token_and_answers_cors() {
    let server = TestServer::start(ServerConfig {
        sse: SseConfig {
            auth: TokenAuth::new(Some("t".into())),
            cors: CorsConfig {
                allowed_origins: vec!["http://ci.example".into()],
                allow_credentials: false,
            },
            ..SseConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let r = server.get("/topics", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error().contains("missing token"), "{}", r.error());
    assert_eq!(
        server.get("/topics?token=no", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.get("/topics?token=t", &[]).await.status,
        StatusCode::OK
    );
    let r = server
        .get(
            "/topics",
            &[
                ("authorization", "Bearer t"),
                ("origin", "http://ci.example"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://ci.example")
    );
}

#[tokio::test]
async fn admin_routes_exist_only_with_an_admin_token() {
    let server = TestServer::default().await;
    server.append("a").await;
    let r = drop_connections(&server, Some(ADMIN)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let server = TestServer::start(with_admin()).await;
    server.append("a").await;
    let r = drop_connections(&server, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error().contains("Authorization: Bearer"), "{}", r.error());
    let r = drop_connections(&server, Some("wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The token is never taken from the URL.
    let r = server
        .send(Method::POST, &format!("{DROP}?token={ADMIN}"), &[], "")
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = drop_connections(&server, Some(ADMIN)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"topic": "acme/app/builds/1/steps/test", "dropped": 0, "open": 0})
    );
    let r = server
        .send(
            Method::POST,
            "/admin/drop-connections/acme/app/builds/1/steps/none",
            &[("authorization", &format!("Bearer {ADMIN}"))],
            "",
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[test]
fn an_empty_admin_token_is_refused() {
    let args = Args::try_parse_from(["feed-server", "--admin-token", " "]).unwrap();
    let e = args.resolve().unwrap_err();
    assert!(e.contains("--admin-token"), "{e}");
    let args = Args::try_parse_from(["feed-server", "--admin-token", "x"]).unwrap();
    assert_eq!(args.resolve().unwrap().admin_token.as_deref(), Some("x"));
}

#[tokio::test]
async fn admin_drop_ends_an_event_stream_without_end_and_last_event_id_resumes() {
    let server = TestServer::start(with_admin()).await;
    server.append("one").await;
    let mut s = server.send(Method::GET, &EVENTS, &[], "").await;
    s.read_until("line 1", |t| t.contains("id: 1\n")).await;
    let r = drop_connections(&server, Some(ADMIN)).await;
    assert_eq!(r.json()["dropped"], 1);
    s.read_to_end().await;
    assert!(
        !s.text().contains("event: end"),
        "a drop is not the end of the step: {:?}",
        s.text()
    );
    server.append("two").await;
    let mut resumed = server
        .send(Method::GET, &EVENTS, &[("last-event-id", "1")], "")
        .await;
    resumed
        .read_until("line 2", |t| t.contains("id: 2\n"))
        .await;
    assert_eq!(seqs_of(&resumed.text()), vec![2]);
}

async fn drop_fraction(server: &TestServer, fraction: &str) -> Answer {
    server
        .send(
            Method::POST,
            &format!("{DROP}?fraction={fraction}"),
            &[("authorization", &format!("Bearer {ADMIN}"))],
            "",
        )
        .await
        .into_full()
        .await
}

#[tokio::test]
async fn admin_drop_with_a_fraction_ends_the_oldest_streams_and_spares_the_rest() {
    let server = TestServer::start(with_admin()).await;
    server.append("one").await;
    // Opened one after another: each is subscribed once its headers arrive, so this is
    // subscription order too.
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut s = server.send(Method::GET, &EVENTS, &[], "").await;
        assert_eq!(s.status, StatusCode::OK);
        s.read_until("line 1", |t| t.contains("id: 1\n")).await;
        streams.push(s);
    }
    let r = drop_fraction(&server, "0.5").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"topic": "acme/app/builds/1/steps/test", "dropped": 2, "open": 4})
    );
    for s in &mut streams[..2] {
        s.read_to_end().await;
        assert!(!s.text().contains("event: end"), "{:?}", s.text());
    }
    server.append("two").await;
    for s in &mut streams[2..] {
        s.read_until("line 2", |t| t.contains("id: 2\n")).await;
        assert_eq!(seqs_of(&s.text()), vec![1, 2], "a spared stream goes on");
    }
    // The two left: a fraction rounds up, so 0.1 of 2 is 1.
    let r = drop_fraction(&server, "0.1").await;
    assert_eq!(
        (r.json()["dropped"].as_u64(), r.json()["open"].as_u64()),
        (Some(1), Some(2))
    );
    streams[2].read_to_end().await;
    server.append("three").await;
    streams[3]
        .read_until("line 3", |t| t.contains("id: 3\n"))
        .await;
}

#[tokio::test]
async fn admin_drop_refuses_a_fraction_outside_zero_to_one() {
    let server = TestServer::start(with_admin()).await;
    server.append("one").await;
    for bad in ["0", "1.5", "-1", "NaN", "half", ""] {
        let r = drop_fraction(&server, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "fraction={bad}");
        assert!(r.error().contains("fraction"), "{bad}: {}", r.error());
    }
    let r = server
        .send(
            Method::POST,
            &format!("{DROP}?fractoin=0.5"),
            &[("authorization", &format!("Bearer {ADMIN}"))],
            "",
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("fractoin"), "{}", r.error());
    assert_eq!(drop_fraction(&server, "1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn admin_drop_closes_a_websocket_with_1001_and_cuts_a_held_long_poll() {
    let server = TestServer::start(with_admin()).await;
    server.append("one").await;
    let url = format!("ws://{}{WS}?after=1", server.addr);
    let (mut ws, _) = within("WebSocket handshake", tokio_tungstenite::connect_async(url))
        .await
        .expect("upgrade");
    let long_poll_path = format!("{LOGS}?after=1&wait=60s");
    let long_poll = server.get(&long_poll_path, &[]);
    let drop_both = async {
        // Both are waiting on the topic (a request's handler subscribes without yielding once
        // it counts as open).
        wait_for_metric(&server, "pushbench_open_connections{transport=\"ws\"}", 1).await;
        wait_for_metric(&server, "pushbench_open_connections{transport=\"poll\"}", 1).await;
        let r = drop_connections(&server, Some(ADMIN)).await;
        assert_eq!(r.json()["dropped"], 2);
    };
    let (poll, ()) = within("the cut long-poll", async {
        tokio::join!(long_poll, drop_both)
    })
    .await;
    let close = within("the WebSocket close", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(close, Some(1001));
    assert_eq!(poll.status, StatusCode::OK);
    let body = poll.json();
    assert_eq!(body["lines"], serde_json::json!([]));
    assert_eq!(
        (body["next"].as_u64(), &body["finished"]),
        (Some(1), &serde_json::json!(false))
    );
}
