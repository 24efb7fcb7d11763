//! HTTP/2 beside HTTP/1.1 on one port, over real sockets: cleartext h2 with prior knowledge,
//! h2 over TLS chosen by ALPN, both deliver every line exactly once on many streams of one
//! connection, resume with `last-event-id`, and HTTP/1.1 still works on the same port.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use feed_server::ServerConfig;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pushbench_protocol::Route;
use pushbench_sse::{ServeConfig, TlsConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Lines appended to each topic.
const LINES: u64 = 40;
/// Event streams opened at once on one connection: more than a browser's six HTTP/1.1
/// connections per host.
const STREAMS: usize = 10;

fn topic(i: usize) -> String {
    format!("acme/app/builds/2/steps/{i}")
}

async fn server(tls: Option<TlsConfig>) -> TestServer {
    TestServer::start(ServerConfig {
        serve: ServeConfig {
            tls,
            ..ServeConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
}

/// An HTTP/2 client connection over `io`; the connection runs on a task of its own.
async fn h2_handshake<S>(io: S) -> SendRequest<Full<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        // Many event streams share the connection window: 64 KiB would stall them.
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(16 << 20)
        .handshake(TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

async fn h2c(server: &TestServer) -> SendRequest<Full<Bytes>> {
    h2_handshake(TcpStream::connect(server.addr).await.unwrap()).await
}

/// A TLS client that trusts exactly `tls`'s certificate, offering `alpn`.
async fn tls_connect(
    server: &TestServer,
    tls: &TlsConfig,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls.leaf_certificate().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    within("TLS handshake", connector.connect(name, tcp))
        .await
        .expect("TLS handshake")
}

fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut r = Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn call(
    h2: &mut SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, String) {
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "text/plain")]
    };
    let response = within(
        "h2 answer",
        h2.send_request(request(method, path, headers, body)),
    )
    .await
    .expect("h2 request");
    assert_eq!(response.version(), Version::HTTP_2);
    let status = response.status();
    let body = within("h2 body", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Reads an event stream to its end (`event: end`, then the stream closes) and returns the
/// seqs of its line events, in order.
async fn read_stream(response: hyper::Response<hyper::body::Incoming>) -> Vec<u64> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "an event stream"
    );
    let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the stream ends after the step finishes")
        .expect("stream body")
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("event: end"), "no end event in {text:?}");
    seqs_of(&text)
}

/// Appends ten lines to every topic.
async fn append_batch(h2: &mut SendRequest<Full<Bytes>>, batch: u64) {
    for i in 0..STREAMS {
        let lines: String = (0..10)
            .map(|n| format!("line {} of {i}\n", batch * 10 + n))
            .collect();
        let (status, body) = call(h2, Method::POST, &Route::Logs.path(topic(i)), &lines).await;
        assert_eq!(status, StatusCode::OK, "append: {body}");
    }
}

/// Opens [`STREAMS`] event streams on one connection, appends [`LINES`] to each topic over the
/// same connection, finishes them, and checks that every stream got every line once.
async fn many_streams_on_one_connection(mut h2: SendRequest<Full<Bytes>>) {
    // A topic exists once it has a line: the first batch, before the streams open (a new
    // viewer gets the whole log, so the streams still start at seq 1).
    append_batch(&mut h2, 0).await;
    let mut readers = Vec::new();
    for i in 0..STREAMS {
        let path = Route::Events.path(topic(i));
        let response = within(
            "stream head",
            h2.send_request(request(
                Method::GET,
                &path,
                &[("accept", "text/event-stream")],
                "",
            )),
        )
        .await
        .expect("open stream");
        readers.push(tokio::spawn(read_stream(response)));
    }
    for batch in 1..LINES / 10 {
        append_batch(&mut h2, batch).await;
    }
    for i in 0..STREAMS {
        let (status, body) = call(&mut h2, Method::POST, &Route::Finish.path(topic(i)), "").await;
        assert_eq!(status, StatusCode::OK, "finish: {body}");
    }
    for (i, reader) in readers.into_iter().enumerate() {
        let seqs = reader.await.unwrap();
        assert_eq!(
            seqs,
            (1..=LINES).collect::<Vec<_>>(),
            "stream {i}: every line once, in order"
        );
    }
}

#[tokio::test]
async fn h2c_prior_knowledge_carries_ten_event_streams_on_one_connection() {
    let server = server(None).await;
    many_streams_on_one_connection(h2c(&server).await).await;
}

#[tokio::test]
async fn h2_over_tls_is_chosen_by_alpn_and_carries_ten_event_streams() {
    let tls = feed_server::tls::self_signed().unwrap();
    let server = server(Some(tls.clone())).await;
    let stream = tls_connect(&server, &tls, &[b"h2", b"http/1.1"]).await;
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "ALPN picks h2"
    );
    many_streams_on_one_connection(h2_handshake(stream).await).await;
}

#[tokio::test]
async fn a_tls_client_offering_only_http1_gets_http1_on_the_same_port() {
    let tls = feed_server::tls::self_signed().unwrap();
    let server = server(Some(tls.clone())).await;
    let mut stream = tls_connect(&server, &tls, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within(
        "HTTP/1.1 over TLS",
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
    )
    .await
    .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");
}

#[tokio::test]
async fn resuming_with_last_event_id_over_h2_gets_exactly_the_lines_after_it() {
    let server = server(None).await;
    server
        .append(&(1..=8).map(|n| format!("l{n}\n")).collect::<String>())
        .await;
    server.finish().await;
    let mut h2 = h2c(&server).await;
    let response = within(
        "resume",
        h2.send_request(request(Method::GET, &EVENTS, &[("last-event-id", "5")], "")),
    )
    .await
    .unwrap();
    assert_eq!(read_stream(response).await, vec![6, 7, 8]);
    // Caught up with a finished step: 204, which makes EventSource stop reconnecting.
    let response = within(
        "caught up",
        h2.send_request(request(Method::GET, &EVENTS, &[("last-event-id", "8")], "")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn http1_and_h2c_share_the_port_and_a_split_preface_is_still_h2() {
    let server = server(None).await;
    // HTTP/1.1 as before.
    let answer = server.get("/healthz", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    // The preface in two segments, the second after a pause: still recognised.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let split = SplitPreface {
        inner: tcp,
        skip: 16,
    };
    let mut h2 = h2_handshake(split).await;
    let (status, body) = call(&mut h2, Method::GET, "/healthz", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
}

/// A socket that drops the first `skip` bytes written through it (already sent by hand), so
/// hyper's client can send "its" preface after part of it went out separately.
struct SplitPreface {
    inner: TcpStream,
    skip: usize,
}

impl AsyncRead for SplitPreface {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SplitPreface {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            self.skip -= n;
            return std::task::Poll::Ready(Ok(n));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_websocket_request_over_h2_is_told_to_use_http1() {
    let server = server(None).await;
    let mut h2 = h2c(&server).await;
    let (status, body) = call(&mut h2, Method::GET, &WS, "").await;
    assert_eq!(status, StatusCode::HTTP_VERSION_NOT_SUPPORTED, "{body}");
    assert!(body.contains("HTTP/1.1 only"), "{body}");
}

#[tokio::test]
async fn http1_only_refuses_the_h2_preface_and_offers_http1_alpn() {
    let tls = feed_server::tls::self_signed().unwrap();
    let server = TestServer::start(ServerConfig {
        serve: ServeConfig {
            http2: None,
            tls: Some(tls.clone()),
            ..ServeConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let stream = tls_connect(&server, &tls, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await;
    // hyper's HTTP/1 reader answers the preface with 400 and closes; the h2 client sees no
    // SETTINGS frame, so the handshake or the first request fails.
    if let Ok((mut sender, connection)) = handshake {
        tokio::spawn(connection);
        let sent = within(
            "h2 against an HTTP/1.1-only server",
            sender.send_request(request(Method::GET, "/healthz", &[], "")),
        )
        .await;
        assert!(sent.is_err(), "an HTTP/1.1-only server answered h2");
    }
}

#[tokio::test]
async fn curl_http2_prior_knowledge_gets_http2_200_and_events() {
    let server = server(None).await;
    server.append("first\nsecond\n").await;
    server.finish().await;
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--http2-prior-knowledge"])
        .arg(format!("http://{}{EVENTS}", server.addr))
        .output()
        .await
        .expect("run curl (install it: scripts/ensure-debian-packages.sh curl)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert_eq!(seqs_of(&text), vec![1, 2], "{text}");
    assert!(text.contains("event: end"), "{text}");
}
