//! `clock::measure_offset` over real sockets: against the built feed-server on this host (one
//! clock, so the offset must be 0 within its uncertainty: issue 15), against a stand-in whose
//! clock runs a second ahead (so that check can fail), and against targets that answer
//! anything but the time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pushbench::clock::{measure_offset, time_url, ClockError, DEFAULT_EXCHANGES};
use pushbench::controlplane;
use pushbench_feed::clock::unix_nanos;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The slack the one-host check allows beyond the measured uncertainty.
const ONE_MS: u64 = 1_000_000;

fn client() -> reqwest::Client {
    controlplane::client(false, 1).expect("an HTTP client")
}

/// A stand-in server on 127.0.0.1:0 answering every request with `answer()` (status line,
/// content type, body) and closing; returns its base URL and how many requests it answered.
async fn stand_in(
    answer: impl Fn() -> (&'static str, String) + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 1024];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let (status, body) = answer();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            count.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(response.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    (base, answered)
}

#[tokio::test]
async fn on_one_host_feed_server_is_measured_at_offset_zero() {
    let server = common::ExternalFeedServer::start(&["--gen-topics", "0"]);
    let url = time_url(&format!("http://{}", server.addr));
    let o = measure_offset(&client(), &url, DEFAULT_EXCHANGES)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "loopback: offset {} ns, uncertainty {} ns, min rtt {} ns, bound {} ns",
        o.offset_ns,
        o.uncertainty_ns,
        o.min_rtt_ns,
        o.bound_ns()
    );
    assert_eq!(
        (o.exchanges, o.url.as_str()),
        (DEFAULT_EXCHANGES, url.as_str())
    );
    assert!(
        o.offset_ns.unsigned_abs() <= o.uncertainty_ns + ONE_MS,
        "one host, one clock, yet {o:?}"
    );
    assert!(o.min_rtt_ns > 0 && o.min_rtt_ns < 1_000_000_000, "{o:?}");
    assert_eq!(o.uncertainty_ns, o.min_rtt_ns.div_ceil(2));
}

#[tokio::test]
async fn a_server_clock_a_second_ahead_is_measured_a_second_ahead() {
    const AHEAD: u64 = 1_000_000_000;
    let (base, answered) = stand_in(|| {
        let body = format!(r#"{{"unix_ns":{}}}"#, unix_nanos() + AHEAD);
        ("200 OK", body)
    })
    .await;
    let o = measure_offset(&client(), &time_url(&base), 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.offset_ns.abs_diff(AHEAD as i64) <= o.uncertainty_ns + ONE_MS,
        "{o:?}"
    );
    // The one-host check above would have caught this clock.
    assert!(o.offset_ns.unsigned_abs() > o.uncertainty_ns + ONE_MS);
    assert!(o.bound_ns() >= AHEAD - ONE_MS, "{o:?}");
    // The warm-up was sent, and not counted.
    assert_eq!(o.exchanges, 3);
    assert_eq!(answered.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_target_without_the_route_is_told_so() {
    let (base, _) = stand_in(|| ("404 Not Found", r#"{"error":"no"}"#.into())).await;
    let url = time_url(&base);
    let e = measure_offset(&client(), &url, 4).await.unwrap_err();
    assert!(matches!(e, ClockError::NoTimeRoute { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "GET {url} answered 404: the target has no /_pushbench/time route (feed-server \
             serves it; a foreign server cannot tell its clock offset)"
        )
    );
}

#[tokio::test]
async fn other_statuses_and_bodies_are_quoted() {
    let (base, _) = stand_in(|| ("503 Service Unavailable", "busy, retry".into())).await;
    let url = time_url(&base);
    let e = measure_offset(&client(), &url, 4).await.unwrap_err();
    assert!(matches!(e, ClockError::Status { status: 503, .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("GET {url} answered 503")) && text.contains("\"busy, retry\""),
        "{text}"
    );

    let (base, _) = stand_in(|| ("200 OK", "<html>a login page</html>".into())).await;
    let url = time_url(&base);
    let e = measure_offset(&client(), &url, 4).await.unwrap_err();
    assert!(matches!(e, ClockError::Body { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&url) && text.contains("\"<html>a login page</html>\""),
        "{text}"
    );
}

#[tokio::test]
async fn nobody_listening_and_zero_exchanges_are_errors_naming_the_url() {
    // A port just freed: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = time_url(&format!("http://127.0.0.1:{port}"));
    let e = measure_offset(&client(), &url, 4).await.unwrap_err();
    assert!(matches!(e, ClockError::Request { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("GET {url} failed: connecting")),
        "{text}"
    );

    // Zero exchanges is refused before anything is sent (so not a connect failure here).
    let e = measure_offset(&client(), &url, 0).await.unwrap_err();
    assert!(matches!(e, ClockError::NoExchanges { .. }), "{e:?}");
    assert!(e.to_string().contains(&url), "{e}");
}
