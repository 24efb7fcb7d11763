//! The HTTP/2 clients against a small h2 server (the `h2` crate's) on a real socket, port 0:
//! an SSE route and a poll route over one topic of [`LINES`] lines.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pushbench_protocol::TopicId;
use tokio::net::TcpListener;
use tokio::task::{JoinSet, LocalSet};

use super::*;
use crate::clients::run_client;
use crate::scenario::Transport;

/// Lines of the test topic, seqs 1..=LINES.
const LINES: u64 = 5;

#[derive(Clone, Copy)]
struct ServerPlan {
    /// The first connection is cut (its socket dropped) once this many streams were opened
    /// on it and each was sent the first two lines.
    cut_first_after_streams: Option<usize>,
}

fn line(seq: u64) -> String {
    format!(
        "{{\"seq\":{seq},\"ts\":{},\"line\":\"x\"}}",
        pushbench_feed::clock::unix_nanos()
    )
}

async fn start_server(plan: ServerPlan) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let index = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_connection(socket, index, plan));
        }
    });
    (addr, connections)
}

async fn serve_connection(socket: tokio::net::TcpStream, index: usize, plan: ServerPlan) {
    let mut conn = h2::server::Builder::new()
        .max_concurrent_streams(1000)
        .handshake::<_, Bytes>(socket)
        .await
        .unwrap();
    let cut = plan.cut_first_after_streams.filter(|_| index == 0);
    let mut streams = 0;
    loop {
        let accepted = match cut {
            Some(n) if streams >= n => {
                // Let the streams' first lines out, then drop the connection mid-stream.
                let _ = tokio::time::timeout(Duration::from_millis(300), conn.accept()).await;
                return;
            }
            _ => conn.accept().await,
        };
        let Some(Ok((request, respond))) = accepted else {
            return;
        };
        streams += 1;
        tokio::spawn(answer(request, respond, cut.is_some()));
    }
}

async fn answer(
    request: http::Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    first_two_only: bool,
) {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    if path.ends_with("/events") {
        let from = request
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let head = http::Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .body(())
            .unwrap();
        let mut body = respond.send_response(head, false).unwrap();
        let last = if first_two_only { 2 } else { LINES };
        for seq in from + 1..=last {
            let event = format!("id: {seq}\ndata: {}\n\n", line(seq));
            body.send_data(Bytes::from(event), false).unwrap();
        }
        if first_two_only {
            std::future::pending::<()>().await;
        }
        let end = format!("event: end\nid: {LINES}\ndata: {{\"last_seq\":{LINES}}}\n\n");
        body.send_data(Bytes::from(end), true).unwrap();
        return;
    }
    // The poll route: at most two lines an answer, so a client polls several times.
    let after: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let next = (after + 2).min(LINES);
    let lines: Vec<String> = (after + 1..=next).map(line).collect();
    let json = format!(
        "{{\"lines\":[{}],\"next\":{next},\"last_seq\":{LINES},\"finished\":true}}",
        lines.join(",")
    );
    let head = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("etag", format!("\"{next}\""))
        .body(())
        .unwrap();
    let mut body = respond.send_response(head, false).unwrap();
    body.send_data(Bytes::from(json), true).unwrap();
}

fn topic() -> TopicId {
    TopicId::parse("acme/app/builds/1/steps/1").unwrap()
}

fn specs(transport: Transport, addr: SocketAddr, clients: u32, per_conn: u32) -> Vec<ClientSpec> {
    let path = match transport.served_by() {
        pushbench_protocol::Transport::Sse => "/acme/app/builds/1/steps/1/logs/events",
        _ => "/acme/app/builds/1/steps/1/logs",
    };
    (0..clients)
        .map(|i| {
            let mut spec = ClientSpec::for_test(transport, path, &topic());
            spec.id = i;
            spec.server = addr;
            spec.host = addr.to_string();
            spec.h2 = Some(H2Place {
                group: group_of(i, per_conn),
            });
            spec
        })
        .collect()
}

/// Runs the clients on one local set, as a worker does, and returns what they recorded.
async fn run(specs: Vec<ClientSpec>) -> Stats {
    let control = Arc::new(RunControl::new(0, u64::MAX));
    control.set_final_seq(topic(), LINES);
    LocalSet::new()
        .run_until(async move {
            let stats = Rc::new(RefCell::new(Stats::new()));
            let mut groups: BTreeMap<u32, Rc<H2Group>> = BTreeMap::new();
            let mut tasks = JoinSet::new();
            for spec in specs {
                let group = spec.h2.map(|p| groups.entry(p.group).or_default().clone());
                tasks.spawn_local(run_client(spec, group, stats.clone(), control.clone()));
            }
            let all = async { while tasks.join_next().await.is_some() {} };
            tokio::time::timeout(Duration::from_secs(10), all)
                .await
                .expect("every client finishes");
            for g in groups.values() {
                g.close().await;
            }
            let taken = std::mem::take(&mut *stats.borrow_mut());
            taken
        })
        .await
}

fn assert_every_line_once(st: &Stats, clients: u64) {
    let c = st.recorder.counters();
    assert_eq!(c.expected, clients * LINES, "expected");
    assert_eq!(c.delivered, clients * LINES, "delivered");
    assert_eq!((c.lost, c.duplicated), (0, 0), "lost, duplicated");
    assert!(c.bytes_down > 0 && c.bytes_up > 0, "wire bytes counted");
    assert_eq!(st.tcp_open, 0, "every connection closed and settled");
    // The kernel's count agrees, to a byte per connection (a cut connection's FIN is one in
    // its sequence space).
    let off = |a: u64, b: u64| a.abs_diff(b) <= c.tcp_connections_opened;
    assert!(
        off(st.kernel_bytes_down, c.bytes_down) && off(st.kernel_bytes_up, c.bytes_up),
        "kernel {:?}, counted {:?}",
        (st.kernel_bytes_down, st.kernel_bytes_up),
        (c.bytes_down, c.bytes_up)
    );
}

#[tokio::test]
async fn sse_clients_share_one_connection_per_group() {
    let (addr, connections) = start_server(ServerPlan {
        cut_first_after_streams: None,
    })
    .await;
    let st = run(specs(Transport::SseH2, addr, 7, 3)).await;
    assert_every_line_once(&st, 7);
    let c = st.recorder.counters();
    assert_eq!(c.tcp_connections_opened, 3, "ceil(7 / 3) connections");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        3,
        "the server saw three"
    );
    assert_eq!(c.connects_ok, 7, "one stream per client");
    assert_eq!(c.disconnects, 0);
}

#[tokio::test]
async fn a_dead_connection_fails_every_stream_and_they_resume_once() {
    let (addr, connections) = start_server(ServerPlan {
        cut_first_after_streams: Some(4),
    })
    .await;
    let st = run(specs(Transport::SseH2, addr, 4, 4)).await;
    assert_every_line_once(&st, 4);
    let c = st.recorder.counters();
    assert_eq!(c.disconnects, 4, "each stream's break is its client's");
    assert_eq!(c.reconnects, 4);
    assert_eq!(
        c.tcp_connections_opened, 2,
        "the next client opened a new one"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    assert!(
        st.failure_reasons
            .keys()
            .all(|r| matches!(r, crate::clients::failure::FailureReason::Http2(_))),
        "{:?}",
        st.failure_reasons
    );
}

#[tokio::test]
async fn polls_are_streams_of_the_shared_connection() {
    for transport in [Transport::PollH2, Transport::LongPollH2] {
        let (addr, connections) = start_server(ServerPlan {
            cut_first_after_streams: None,
        })
        .await;
        let st = run(specs(transport, addr, 4, 10)).await;
        assert_every_line_once(&st, 4);
        let c = st.recorder.counters();
        assert_eq!(c.tcp_connections_opened, 1, "{transport}");
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        // Lines 1-2, 3-4, 5: three polls each.
        assert_eq!(c.polls, 12, "{transport}");
    }
}

#[test]
fn requests_carry_scheme_authority_and_headers() {
    let mut spec = ClientSpec::for_test(Transport::SseH2, "/a/logs/events", &topic());
    let r = build_get(&spec, &spec.path, &[("last-event-id", "7")]).unwrap();
    assert_eq!(r.uri().to_string(), "http://127.0.0.1:8080/a/logs/events");
    assert_eq!(r.headers()["last-event-id"], "7");
    spec.tls = Some(crate::tls::TlsTarget::for_http2("localhost", true).unwrap());
    let r = build_get(&spec, "/a?after=1", &[]).unwrap();
    assert_eq!(r.uri().to_string(), "https://127.0.0.1:8080/a?after=1");
    assert!(matches!(
        build_get(&spec, "no slash", &[]),
        Err(SessionError::BadRequest(_))
    ));
}
