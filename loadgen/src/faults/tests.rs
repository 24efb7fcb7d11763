//! The proxy over real loopback sockets (port 0): an echo server upstream, so every byte a
//! client writes comes back down through the proxy, where the down faults act on it.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::*;

/// `n` clients through the proxy, each with the server-side socket of its connection (told
/// apart by the client's first byte), in accept order.
async fn tapped(
    proxy: &FaultProxy,
    accepted: &mut mpsc::UnboundedReceiver<TcpStream>,
    n: u8,
) -> Vec<(TcpStream, TcpStream)> {
    let mut cs = clients(proxy, u64::from(n)).await;
    for (i, c) in cs.iter_mut().enumerate() {
        c.write_all(&[i as u8]).await.unwrap();
    }
    let mut server_side: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        let mut s = accepted.recv().await.unwrap();
        let mut who = [0; 1];
        s.read_exact(&mut who).await.unwrap();
        server_side[usize::from(who[0])] = Some(s);
    }
    cs.into_iter()
        .zip(server_side.into_iter().map(Option::unwrap))
        .collect()
}

/// An upstream that writes back whatever it reads, until the client's end of stream.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An upstream that hands each accepted socket to the test.
async fn tap_server() -> (SocketAddr, mpsc::UnboundedReceiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            if tx.send(stream).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

async fn client(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// `n` clients, connected one after the other, so that their accept order is theirs.
async fn clients(proxy: &FaultProxy, n: u64) -> Vec<TcpStream> {
    let mut all = Vec::new();
    for i in 1..=n {
        all.push(client(proxy).await);
        wait_open(&proxy.handle(), i).await;
    }
    all
}

async fn wait_open(handle: &ProxyHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while handle.stats().open != n {
        assert!(
            Instant::now() < deadline,
            "expected {n} open connections, have {:?}",
            handle.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One small round trip through the proxy and the echo server.
async fn ping(stream: &mut TcpStream) -> std::io::Result<Duration> {
    let start = Instant::now();
    stream.write_all(b"ping").await?;
    let mut got = [0; 4];
    match timeout(Duration::from_secs(1), stream.read_exact(&mut got)).await {
        Ok(r) => r?,
        Err(_) => return Err(ErrorKind::TimedOut.into()),
    };
    assert_eq!(&got, b"ping");
    Ok(start.elapsed())
}

async fn median_rtt(stream: &mut TcpStream) -> Duration {
    let mut rtts = Vec::new();
    for _ in 0..30 {
        rtts.push(ping(stream).await.unwrap());
    }
    rtts.sort();
    rtts[rtts.len() / 2]
}

fn all() -> Fraction {
    Fraction::new(1.0).unwrap()
}

fn fault_stats(handle: &ProxyHandle, id: FaultId) -> FaultStats {
    handle
        .stats()
        .faults
        .into_iter()
        .find(|f| f.id == id)
        .unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn fraction_is_above_zero_and_at_most_one() {
    for bad in [0.0, -0.5, 1.000001, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(Fraction::new(bad), Err(ProxyError::InvalidFraction(_))),
            "{bad}"
        );
    }
    assert_eq!(Fraction::new(1.0).unwrap().get(), 1.0);
    assert!(Fraction::new(1e-6).is_ok());
}

#[test]
fn selection_takes_the_ceiling_spread_evenly() {
    // f = p/q; among the first n ranks, exactly ⌈n·p/q⌉ are selected.
    for (p, q) in [
        (1, 10),
        (1, 4),
        (3, 10),
        (1, 3),
        (1, 2),
        (2, 3),
        (7, 10),
        (9, 10),
        (1, 1),
    ] {
        let f = Fraction::new(p as f64 / q as f64).unwrap();
        for n in 0..200u64 {
            let picked = (0..n).filter(|&r| f.selects(r)).count() as u64;
            assert_eq!(picked, (n * p).div_ceil(q), "{p}/{q} of {n}");
        }
    }
    let half = Fraction::new(0.5).unwrap();
    let ranks: Vec<u64> = (0..4).filter(|&r| half.selects(r)).collect();
    assert_eq!(ranks, vec![0, 2], "the oldest first, then every other one");
    let quarter = Fraction::new(0.25).unwrap();
    let ranks: Vec<u64> = (0..9).filter(|&r| quarter.selects(r)).collect();
    assert_eq!(ranks, vec![0, 4, 8]);
}

#[test]
fn scenario_kinds_map_to_proxy_faults() {
    use crate::scenario::FaultKind;
    assert_eq!(ProxyFault::from_kind(FaultKind::Drop), None);
    assert_eq!(
        ProxyFault::from_kind(FaultKind::SlowConsumers { bytes_per_sec: 1 }),
        None
    );
    let after = Duration::from_secs(2);
    assert_eq!(
        ProxyFault::from_kind(FaultKind::IdleCut { after }),
        Some(ProxyFault::IdleCut { after })
    );
    assert_eq!(
        ProxyFault::from_kind(FaultKind::CutMidEvent),
        Some(ProxyFault::CutMidEvent)
    );
}

#[test]
fn the_handle_goes_anywhere() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<ProxyHandle>();
}

#[tokio::test]
async fn misuse_gets_named_errors() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let h = proxy.handle();
    let zero_idle = ProxyFault::IdleCut {
        after: Duration::ZERO,
    };
    assert!(matches!(
        h.apply(zero_idle, all()),
        Err(ProxyError::InvalidFault(_))
    ));
    let stall = ProxyFault::Bandwidth { bytes_per_sec: 0 };
    assert!(matches!(
        h.apply(stall, all()),
        Err(ProxyError::InvalidFault(_))
    ));
    let first = h.apply(ProxyFault::Blackhole, all()).unwrap();
    match h.apply(ProxyFault::Blackhole, all()) {
        Err(ProxyError::AlreadyActive { kind, id }) => {
            assert_eq!((kind, id), ("blackhole", first));
        }
        other => panic!("expected AlreadyActive, got {other:?}"),
    }
    // Other kinds combine with it.
    h.apply(ProxyFault::Bandwidth { bytes_per_sec: 10 }, all())
        .unwrap();
    let done = h.clear(first).unwrap();
    assert!(!done.active);
    assert!(matches!(h.clear(first), Err(ProxyError::AlreadyCleared(_))));
    assert!(matches!(
        h.clear(FaultId(99)),
        Err(ProxyError::UnknownFault(_))
    ));
    // Cleared, it can be applied again.
    h.apply(ProxyFault::Blackhole, all()).unwrap();
    proxy.stop().await.unwrap();
    assert!(matches!(
        h.apply(ProxyFault::Reset, all()),
        Err(ProxyError::Stopped)
    ));
}

/// Bytes pass unchanged both ways, and a round trip costs about what it costs direct.
#[tokio::test]
async fn passthrough_copies_both_ways_and_adds_little_latency() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let mut c = client(&proxy).await;
    let data = pattern(300_000);
    let (mut r, mut w) = c.split();
    let (_, got) = tokio::join!(async { w.write_all(&data).await.unwrap() }, async {
        let mut got = vec![0; data.len()];
        r.read_exact(&mut got).await.unwrap();
        got
    });
    assert!(got == data, "the bytes came back changed");

    let mut direct = TcpStream::connect(upstream).await.unwrap();
    direct.set_nodelay(true).unwrap();
    let through_proxy = median_rtt(&mut c).await;
    let without = median_rtt(&mut direct).await;
    assert!(
        through_proxy < without + Duration::from_millis(3),
        "a round trip takes {through_proxy:?} through the proxy, {without:?} without"
    );

    let stats = proxy.handle().stats();
    assert_eq!((stats.accepted, stats.open), (1, 1));
    assert_eq!(stats.upstream_connect_failures, 0);
    assert!(stats.faults.is_empty());
    // The client's end of stream goes through, the echo server's comes back: all closed.
    drop(c);
    wait_open(&proxy.handle(), 0).await;
}

/// Half of four connections, the oldest and the third, get a reset; the others go on.
#[tokio::test]
async fn reset_hits_the_selected_connections_with_rst() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let h = proxy.handle();
    let mut cs = clients(&proxy, 4).await;
    for c in &mut cs {
        ping(c).await.unwrap();
    }
    let id = h
        .apply(ProxyFault::Reset, Fraction::new(0.5).unwrap())
        .unwrap();
    for i in [0, 2] {
        let mut buf = [0; 16];
        let read = timeout(Duration::from_secs(1), cs[i].read(&mut buf))
            .await
            .expect("the reset comes at once");
        match read {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "client {i}"),
            Ok(n) => panic!("client {i}: expected a reset, read {n} bytes"),
        }
    }
    for i in [1, 3] {
        ping(&mut cs[i]).await.unwrap();
    }
    let stats = h.clear(id).unwrap();
    assert_eq!((stats.selected, stats.affected), (2, 2));
    assert!(!stats.active);
    assert_eq!(h.stats().open, 2);
}

/// The server sees what the client sees: a reset as a reset, an idle cut as a FIN.
#[tokio::test]
async fn reset_and_idle_cut_reach_the_server_side() {
    let (upstream, mut accepted) = tap_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let h = proxy.handle();
    let mut pairs = tapped(&proxy, &mut accepted, 2).await;
    let (mut c1, mut s1) = pairs.pop().unwrap();
    let (mut c0, mut s0) = pairs.pop().unwrap();
    let mut buf = [0; 16];
    h.apply(ProxyFault::Reset, Fraction::new(0.5).unwrap())
        .unwrap();
    for (side, stream) in [("client", &mut c0), ("server", &mut s0)] {
        let read = timeout(Duration::from_secs(1), stream.read(&mut buf))
            .await
            .expect("at once");
        assert_eq!(
            read.expect_err("a reset").kind(),
            ErrorKind::ConnectionReset,
            "{side} side"
        );
    }
    wait_open(&h, 1).await;
    let after = Duration::from_millis(150);
    h.apply(ProxyFault::IdleCut { after }, all()).unwrap();
    for (side, stream) in [("client", &mut c1), ("server", &mut s1)] {
        let read = timeout(Duration::from_secs(1), stream.read(&mut buf))
            .await
            .expect("cut");
        assert_eq!(read.expect("a FIN, not a reset"), 0, "{side} side");
    }
}

/// With `after` 300 ms: an idle connection is closed about then, one busy every 100 ms is
/// not, a connection accepted meanwhile joins (fraction 1), and clearing ends it.
#[tokio::test]
async fn idle_cut_closes_idle_connections_only() {
    let after = Duration::from_millis(300);
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let h = proxy.handle();
    let mut cs = clients(&proxy, 2).await;
    let mut busy = cs.pop().unwrap();
    let mut idle = cs.pop().unwrap();
    let start = Instant::now();
    let id = h.apply(ProxyFault::IdleCut { after }, all()).unwrap();

    let keep_busy = tokio::spawn(async move {
        for _ in 0..9 {
            ping(&mut busy).await.expect("the busy connection stays up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        busy
    });
    let mut late = client(&proxy).await;
    let late_start = Instant::now();

    let mut buf = [0; 16];
    let n = timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed")
        .expect("with a FIN, not a reset");
    assert_eq!(n, 0);
    let took = start.elapsed();
    assert!(
        took >= after - Duration::from_millis(10) && took < after + Duration::from_millis(300),
        "closed after {took:?}"
    );
    let n = timeout(Duration::from_secs(2), late.read(&mut buf))
        .await
        .expect("the late connection joined and is closed")
        .unwrap();
    assert_eq!(n, 0);
    assert!(late_start.elapsed() >= after - Duration::from_millis(10));

    let mut busy = keep_busy.await.unwrap();
    let stats = h.clear(id).unwrap();
    assert_eq!((stats.selected, stats.affected), (3, 2));
    // Cleared, idling is harmless again.
    tokio::time::sleep(after + Duration::from_millis(100)).await;
    ping(&mut busy).await.unwrap();
}

/// Down chunks arrive at least `delay - jitter` after they were sent, in order.
#[tokio::test]
async fn latency_delays_down_chunks_in_order() {
    let (delay, jitter) = (Duration::from_millis(200), Duration::from_millis(50));
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let h = proxy.handle();
    let mut c = clients(&proxy, 1).await.pop().unwrap();
    let id = h
        .apply(ProxyFault::Latency { delay, jitter }, all())
        .unwrap();

    // Eight chunks 15 ms apart: closer than the jitter, so draws would reorder them.
    let chunks: Vec<Vec<u8>> = (0..8)
        .map(|i| format!("chunk {i:02};").into_bytes())
        .collect();
    let (mut r, mut w) = c.split();
    let send = async {
        let mut sent_at = Vec::new();
        for chunk in &chunks {
            sent_at.push(Instant::now());
            w.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        sent_at
    };
    let receive = async {
        let total: usize = chunks.iter().map(Vec::len).sum();
        let (mut got, mut arrivals) = (Vec::new(), Vec::new());
        let mut buf = [0; 256];
        while got.len() < total {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
            arrivals.push((got.len(), Instant::now()));
        }
        (got, arrivals)
    };
    let (sent_at, (got, arrivals)) = tokio::join!(send, receive);
    assert_eq!(got, chunks.concat(), "order kept");
    let mut end = 0;
    for (chunk, sent) in chunks.iter().zip(&sent_at) {
        end += chunk.len();
        let (_, arrived) = arrivals.iter().find(|(len, _)| *len >= end).unwrap();
        let took = arrived.duration_since(*sent);
        assert!(took >= delay - jitter, "a chunk took {took:?}");
    }
    assert_eq!(fault_stats(&h, id).affected, 1);
    h.clear(id).unwrap();
    let rtt = ping(&mut c).await.unwrap();
    assert!(rtt < Duration::from_millis(100), "cleared, yet {rtt:?}");
}

/// 4000 bytes down at 4000 B/s: about a second, less the bucket's first tenth.
#[tokio::test]
async fn bandwidth_limits_down_to_its_rate() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let h = proxy.handle();
    let mut c = clients(&proxy, 1).await.pop().unwrap();
    let id = h
        .apply(
            ProxyFault::Bandwidth {
                bytes_per_sec: 4000,
            },
            all(),
        )
        .unwrap();
    let data = pattern(4000);
    let start = Instant::now();
    c.write_all(&data).await.unwrap();
    let mut got = vec![0; data.len()];
    timeout(Duration::from_secs(3), c.read_exact(&mut got))
        .await
        .expect("it gets through")
        .unwrap();
    let took = start.elapsed();
    assert_eq!(got, data);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(1600),
        "4000 bytes at 4000 B/s took {took:?}"
    );
    let stats = h.clear(id).unwrap();
    assert_eq!((stats.selected, stats.affected), (1, 1));
}

/// Nothing passes either way while it lasts, nothing is closed; at clear the held bytes go
/// both ways. The upstream here hands its sockets to the test, to see the up direction too.
#[tokio::test]
async fn blackhole_holds_bytes_both_ways_until_cleared() {
    let (upstream, mut accepted) = tap_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let h = proxy.handle();
    let mut pairs = tapped(&proxy, &mut accepted, 2).await;
    let (mut c1, mut ss) = pairs.pop().unwrap();
    let (mut c0, mut hs) = pairs.pop().unwrap();
    let id = h
        .apply(ProxyFault::Blackhole, Fraction::new(0.5).unwrap())
        .unwrap();
    c0.write_all(b"up bytes").await.unwrap();
    hs.write_all(b"down bytes").await.unwrap();
    ss.write_all(b"down bytes").await.unwrap();
    let mut up = [0; 8];
    let mut down = [0; 10];
    let quiet = Duration::from_millis(400);
    let (up_read, down_read) = tokio::join!(
        timeout(quiet, hs.read(&mut up)),
        timeout(quiet, c0.read(&mut down))
    );
    assert!(
        up_read.is_err(),
        "no byte up (nor an end of stream): {up_read:?}"
    );
    assert!(
        down_read.is_err(),
        "no byte down (nor an end of stream): {down_read:?}"
    );
    let mut spared_down = [0; 10];
    timeout(Duration::from_secs(1), c1.read_exact(&mut spared_down))
        .await
        .expect("the other connection is spared")
        .unwrap();
    let stats = fault_stats(&h, id);
    assert_eq!((stats.selected, stats.affected), (1, 1));
    assert_eq!(h.stats().open, 2);

    h.clear(id).unwrap();
    let (up_read, down_read) = tokio::join!(
        timeout(Duration::from_secs(1), hs.read_exact(&mut up)),
        timeout(Duration::from_secs(1), c0.read_exact(&mut down))
    );
    up_read.expect("the held bytes go up at clear").unwrap();
    down_read.expect("the held bytes go down at clear").unwrap();
    assert_eq!((&up, &down), (b"up bytes", b"down bytes"));
}

/// The selected connection gets a strict, non-empty prefix of its next chunk, then an end
/// of stream; the other gets its chunk whole.
#[tokio::test]
async fn cut_mid_event_splits_the_next_chunk() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let h = proxy.handle();
    let mut cs = clients(&proxy, 2).await;
    let id = h
        .apply(ProxyFault::CutMidEvent, Fraction::new(0.5).unwrap())
        .unwrap();
    let chunk = pattern(200);
    cs[0].write_all(&chunk).await.unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(1), cs[0].read_to_end(&mut got))
        .await
        .expect("the connection is closed")
        .expect("with a FIN");
    assert!(
        got.len() >= CUT_MIN_WRITE && got.len() < chunk.len(),
        "got {} of {} bytes",
        got.len(),
        chunk.len()
    );
    assert_eq!(got, chunk[..got.len()]);

    cs[1].write_all(&chunk).await.unwrap();
    let mut whole = vec![0; chunk.len()];
    cs[1].read_exact(&mut whole).await.unwrap();
    assert_eq!(whole, chunk);
    ping(&mut cs[1]).await.unwrap();
    let stats = h.clear(id).unwrap();
    assert_eq!((stats.selected, stats.affected), (1, 1));
}

/// With the upstream refusing, the client's connection is reset at once and counted.
#[tokio::test]
async fn upstream_down_closes_the_client_at_once() {
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = gone.local_addr().unwrap();
    drop(gone);
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let mut c = client(&proxy).await;
    let mut buf = [0; 16];
    let read = timeout(Duration::from_millis(500), c.read(&mut buf))
        .await
        .expect("closed promptly");
    assert_eq!(
        read.expect_err("a reset").kind(),
        ErrorKind::ConnectionReset
    );
    let stats = proxy.handle().stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.upstream_connect_failures, 1);
    assert_eq!(stats.open, 0);
}

/// stop() closes every connection, stops accepting and returns the final counters.
#[tokio::test]
async fn stop_closes_everything_and_reports() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let addr = proxy.local_addr();
    let h = proxy.handle();
    let mut cs = clients(&proxy, 3).await;
    for c in &mut cs {
        ping(c).await.unwrap();
    }
    let latency = ProxyFault::Latency {
        delay: Duration::from_millis(10),
        jitter: Duration::ZERO,
    };
    h.apply(latency, all()).unwrap();
    let stats = timeout(Duration::from_secs(1), proxy.stop())
        .await
        .expect("stop is prompt")
        .unwrap();
    assert_eq!((stats.accepted, stats.open), (3, 0));
    assert_eq!(stats.faults.len(), 1);
    assert_eq!(stats.faults[0].selected, 3);
    assert!(!stats.faults[0].active);
    for c in &mut cs {
        let mut buf = [0; 16];
        let read = timeout(Duration::from_millis(500), c.read(&mut buf))
            .await
            .expect("closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
