//! A feed-server killed mid-run and started again on the same port with its predecessor's
//! generator origin continues the feed: the real binary, SIGKILL, a second process. History
//! is gone with the first process, so a client resuming from before the restart is told where
//! history now starts (`410` with `oldest_seq`), and from there the numbering goes on where
//! the schedule is, never again from 1.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hyper::StatusCode;
use pushbench_protocol::{generated, Route};

/// Lines per second of the generated step: one every 50 ms.
const RATE: u64 = 20;
const PERIOD_NS: u64 = 1_000_000_000 / RATE;

/// `feed-server --listen LISTEN` with one generated step at [`RATE`], plus `args`, once it
/// printed its generator origin and then its address.
async fn start(listen: &str, args: &[&str]) -> (ServerProcess, u64) {
    let rate = RATE.to_string();
    let mut all = vec!["--listen", listen, "--gen-topics", "1", "--gen-rate", &rate];
    all.extend_from_slice(args);
    let server = ServerProcess::start(&all).await;
    let origin = server
        .origin_unix_ns
        .expect("a generating server prints its generator origin first");
    (server, origin)
}

/// A poll of the generated step that must succeed: its `(seq, ts)` pairs.
async fn poll(server: &ServerProcess, query: &str) -> Vec<(u64, u64)> {
    let r = server.get(&format!("{}?{query}", logs()), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "poll ?{query}: {}", r.text());
    r.json()["lines"]
        .as_array()
        .expect("lines array")
        .iter()
        .map(|l| (l["seq"].as_u64().unwrap(), l["ts"].as_u64().unwrap()))
        .collect()
}

/// The one generated step's poll route.
fn logs() -> String {
    let topics = generated::default_topics(1);
    Route::Logs.path(&topics[0])
}

/// Checks that `lines` are numbered without a gap and stamped one period apart, as the
/// schedule has them.
fn assert_continuous(lines: &[(u64, u64)]) {
    for w in lines.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "seqs continue: {lines:?}");
        assert!(
            (w[1].1 - w[0].1).abs_diff(PERIOD_NS) <= 2,
            "ts one period apart: {lines:?}"
        );
    }
}

#[tokio::test]
async fn a_restarted_server_continues_the_feed_and_says_where_history_starts() {
    let (mut first, origin) = start("127.0.0.1:0", &[]).await;
    // A client follows the first server for a few lines (long polls: each returns once a
    // line exists).
    let mut seen = poll(&first, "after=0&wait=5s").await;
    while seen.len() < 3 {
        let after = seen.last().map_or(0, |l| l.0);
        seen.extend(poll(&first, &format!("after={after}&wait=5s")).await);
    }
    assert_eq!(seen[0].0, 1, "a fresh server numbers from 1");
    assert_continuous(&seen);
    let (cursor, cursor_ts) = *seen.last().unwrap();

    let addr = first.addr.to_string();
    first.kill().await;
    // The feed goes on while no server runs: these lines are lost with the first process.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (mut second, second_origin) =
        start(&addr, &["--gen-origin-unix-ns", &origin.to_string()]).await;
    assert_eq!(
        second.addr,
        addr.parse::<SocketAddr>().unwrap(),
        "same port"
    );
    assert_eq!(second_origin, origin, "the schedule it was given");

    // The client's cursor is older than the new server's (empty) history.
    let gone = second.get(&format!("{}?after={cursor}", logs()), &[]).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.text());
    assert!(gone.error().contains("gone"), "{}", gone.text());
    let oldest = gone.json()["oldest_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no oldest_seq in {}", gone.text()));
    // At least the 400 ms of downtime (8 lines) are missing; history starts where the schedule
    // is, never at 1 again.
    assert!(
        oldest >= cursor + 1 + 6,
        "oldest_seq {oldest}, cursor {cursor}"
    );

    // Resuming after oldest_seq - 1 gets the lines from oldest_seq on, numbered on.
    let mut resumed = poll(&second, &format!("after={}&wait=5s", oldest - 1)).await;
    while resumed.len() < 3 {
        let after = resumed.last().unwrap().0;
        resumed.extend(poll(&second, &format!("after={after}&wait=5s")).await);
    }
    assert_eq!(resumed[0].0, oldest, "the first line is the oldest held");
    assert_continuous(&resumed);
    // The same schedule: as many periods lie between the last line seen before the restart
    // and the first after it as seqs do.
    let (first_seq, first_ts) = resumed[0];
    let periods = (first_ts - cursor_ts) as f64 / PERIOD_NS as f64;
    assert!(
        (periods - (first_seq - cursor) as f64).abs() < 0.01,
        "seq {cursor} at {cursor_ts}, seq {first_seq} at {first_ts}: {periods} periods"
    );

    // An EventSource reconnecting with its old Last-Event-ID is told the same.
    let events = Route::Events.path(&generated::default_topics(1)[0]);
    let sse = second
        .get(&events, &[("last-event-id", &cursor.to_string())])
        .await;
    assert_eq!(sse.status, StatusCode::GONE, "{}", sse.text());
    assert_eq!(sse.json()["oldest_seq"], oldest, "{}", sse.text());
    second.kill().await;
}
