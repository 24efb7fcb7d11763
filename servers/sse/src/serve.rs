//! Serving a router over TCP with the protections a public event-stream server needs:
//! [`serve`], configured by [`ServeConfig`].
//!
//! # Why not `axum::serve`
//! Two reasons, one of safety and one measured.
//!
//! - `axum::serve` installs no timer in hyper, so hyper's header-read timeout is inert: a
//!   client that sends half a request line and stalls holds its connection (and file
//!   descriptor) for ever. It also has no connection limit and leaves hyper's request-head
//!   bound at its default of ~400 KB, so 10,000 connections could pin 4 GB in read buffers.
//! - `axum::serve` drives every connection through hyper-util's `auto` builder, which first
//!   reads up to 24 bytes to tell an HTTP/2 preface from HTTP/1 and then replays them. hyper's
//!   HTTP/1 reader sees the replayed bytes as a partial request head and, to read the rest,
//!   grows its 8 KiB read buffer to 16 KiB (`Vec` doubling), which the connection then keeps
//!   for its whole life: 8 KiB more memory per open event stream (heaptrack at 10,000 SSE
//!   connections: 164 MB in that buffer alone). This server *peeks* at the first bytes
//!   instead (`MSG_PEEK`, nothing consumed), so hyper's HTTP/1 connection, driven directly,
//!   reads its request from the socket as if nobody had looked, and an HTTP/1.1 stream costs
//!   what it cost before HTTP/2 was offered.
//!
//! # Protocols on one port
//! Each accepted connection is told apart by its first bytes, peeked:
//! - the HTTP/2 preface (`PRI * HTTP/2.0…`): cleartext HTTP/2 with prior knowledge (h2c), as
//!   load generators, `curl --http2-prior-knowledge` and h2c proxies speak it. hyper has no
//!   `Upgrade: h2c`, and no browser uses it;
//! - a TLS handshake record (byte `0x16`), when [`ServeConfig::tls`] is set: TLS, then ALPN
//!   picks `h2` or `http/1.1` (browsers speak HTTP/2 only this way);
//! - anything else: HTTP/1.1.
//!
//! HTTP/2 settings ([`Http2Config`]) are chosen for many long-lived streams: 1000 concurrent
//! streams per connection, 64 KiB of send buffer per stream (a stalled reader pushes back on
//! the feed at once, and meets the lag policy as over HTTP/1.1), a PING every 20 s to find dead
//! peers, and the 16 KiB head bound applied to the decoded header list. An event stream's
//! first bytes (the `retry:` hint) are written with its headers, so a proxy that holds
//! HEADERS until the first DATA frame does not stall it. WebSocket stays on HTTP/1.1: the WS
//! route answers `505` over HTTP/2. The 16 KiB head bound answers `431` over HTTP/2 without
//! the JSON body (the h2 layer answers it before the router sees the request).

//! # What a client sees at each bound
//! - A request head (request line and headers) over [`ServeConfig::max_header_bytes`]:
//!   `431 Request Header Fields Too Large` with a one-line JSON body naming the bound, then the
//!   connection closes. hyper answers such heads itself, with an empty body; the connection's
//!   writer fills in the message (see `ErrorHeads`). hyper's other automatic answers, `400`
//!   for an unparsable head and `414` for a URI hyper cannot hold, get a message the same way.
//! - A head not complete within [`ServeConfig::header_read_timeout`]: the connection closes
//!   (slow-loris guard; there is no request to answer yet).
//! - A connection beyond [`ServeConfig::max_connections`]: `503 Service Unavailable` with
//!   `Retry-After: 1` and a one-line JSON body, then the connection closes. Refused at accept,
//!   before a byte of the request is read.
//!
//! Every connection that closes while its client is still sending (a refused upload, a
//! too-large head) first lingers: it sends its answer and FIN, then reads and discards for up
//! to [`LINGER_TIME`] until the client closes. Closing with unread bytes would send a TCP RST,
//! and a client still writing its request sees the reset instead of the answer.
//!
//! Shape: the accept loop runs until shutdown, then waits for its connections; each accepted
//! socket gets a task running one hyper connection with the [`Router`] as its service. On
//! shutdown a connection finishes the response in flight and closes; open streams end
//! themselves (every transport merges the shutdown signal into its streams).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pushbench_feed::Shutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::tls::TlsConfig;

/// The request-head bound [`ServeConfig::default`] sets: 16 KiB. A browser's request line
/// plus its cookies fits (browsers cap a cookie at 4 KB, and a site's cookies together rarely
/// pass 8 KB), as do the bearer tokens and `Last-Event-ID` headers of this feed, by orders of
/// magnitude. It is what nginx accepts by default too (`large_client_header_buffers 4 8k`:
/// no line over 8 KiB, 32 KiB in all), and it bounds what an idle connection can make hyper
/// hold: 10,000 connections, 160 MB at most in head buffers, where hyper's default bound
/// (~400 KB) allows 4 GB. Over HTTP/2 it bounds the decoded header list (hyper's HTTP/2
/// default is 16 MB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long a client may take to send a request head, by default: hyper's own default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a closing connection keeps reading (and discarding) what its client still sends,
/// so that the client reads the answer instead of a reset; see the module docs.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// Most bytes a lingering connection discards before it closes anyway.
const LINGER_BYTES: u64 = 16 * 1024 * 1024;

/// Refused connections lingering at once at most; beyond, a refusal is written and the socket
/// closed at once, so a connection flood cannot pin descriptors through the refusals.
const MAX_LINGERING_REFUSALS: usize = 256;

/// What an HTTP/2 client sends first (RFC 9113 §3.4): cleartext HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first byte of a TLS connection (a handshake record: ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How [`serve`] protects itself from its clients, and what it speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long a client may take to send a request head (request line and headers) before
    /// its connection is closed: the slow-loris guard. Also bounds how long a connection may
    /// take to show its protocol and to finish a TLS handshake.
    pub header_read_timeout: Duration,
    /// Largest request head accepted, bytes; beyond it the client gets `431`. Also bounds
    /// hyper's read buffer while a head arrives. See [`DEFAULT_MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Most connections open at once; beyond, new connections get `503` with
    /// `Retry-After: 1` and are closed. `None`: no limit (the process's open-file limit is
    /// the limit then). Over HTTP/2 this counts connections, not streams.
    pub max_connections: Option<usize>,
    /// HTTP/2 beside HTTP/1.1 on the same port; `None` serves HTTP/1.1 only.
    pub http2: Option<Http2Config>,
    /// TLS on the same port (a connection whose first byte is a TLS handshake record), ALPN
    /// `h2` and `http/1.1` (only `http/1.1` when [`Self::http2`] is `None`).
    pub tls: Option<TlsConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: None,
            http2: Some(Http2Config::default()),
            tls: None,
        }
    }
}

/// HTTP/2 settings, chosen for many long-lived event streams on few connections (a browser
/// opens every log of a page on one connection; a proxy multiplexes many viewers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http2Config {
    /// Streams open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`). hyper's
    /// default is 200; a page of logs needs tens, a multiplexing proxy hundreds. Each stream
    /// costs one subscription, whatever the connection.
    pub max_concurrent_streams: u32,
    /// Receive window per stream and per connection, bytes: what a client may upload before
    /// the server acknowledges. Only requests carry bodies to this server (appends of up to
    /// 1 MiB), so one append never waits for a window update. The *send* side, which event
    /// streams use, is governed by the client's windows, not these.
    pub stream_window: u32,
    pub connection_window: u32,
    /// Bytes hyper buffers per stream beyond what the client's window lets out (hyper's
    /// default is 400 KiB). Small, so a stream whose reader stalls pushes back on the feed
    /// after a few events and meets the lag policy, as a stalled HTTP/1.1 socket does.
    pub max_send_buf: usize,
    /// PING every this long on a connection without traffic, and close it when no answer
    /// comes within [`Self::keep_alive_timeout`]: a dead peer behind a NAT is found without a
    /// TCP keep-alive. The event streams' own keep-alive comments keep intermediaries from
    /// cutting idle streams; the ping finds dead connections that carry none.
    pub keep_alive_interval: Option<Duration>,
    pub keep_alive_timeout: Duration,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: 1000,
            stream_window: 1024 * 1024,
            connection_window: 4 * 1024 * 1024,
            max_send_buf: 64 * 1024,
            keep_alive_interval: Some(Duration::from_secs(20)),
            keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` triggers, then stops accepting and waits
/// until every connection has closed. HTTP/1.1, and HTTP/2 and TLS as `config` says.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: Shutdown,
) -> io::Result<()> {
    let protocols = Arc::new(Protocols::new(&config));
    let slots = config
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
    let refusal = Refusal::new(config.max_connections.unwrap_or(0));
    let lingering_refusals = Arc::new(Semaphore::new(MAX_LINGERING_REFUSALS));
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    after_accept_error(e).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let permit = match &slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    refusal.refuse(stream, &lingering_refusals);
                    continue;
                }
            },
        };
        connections.spawn(handle(
            stream,
            permit,
            protocols.clone(),
            app.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// The connection drivers, built once and shared by every connection.
struct Protocols {
    http1: http1::Builder,
    http2: Option<http2::Builder<TokioExecutor>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    heads: Arc<ErrorHeads>,
    /// How long a connection may take to show its protocol (and finish a TLS handshake).
    opening_timeout: Duration,
}

impl Protocols {
    fn new(config: &ServeConfig) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_header_size(config.max_header_bytes);
        let http2 = config.http2.as_ref().map(|h2| {
            let mut b = http2::Builder::new(TokioExecutor::new());
            b.timer(TokioTimer::new())
                .max_concurrent_streams(h2.max_concurrent_streams)
                .initial_stream_window_size(h2.stream_window)
                .initial_connection_window_size(h2.connection_window)
                .max_send_buf_size(h2.max_send_buf)
                .keep_alive_interval(h2.keep_alive_interval)
                .keep_alive_timeout(h2.keep_alive_timeout)
                .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
            b
        });
        let tls = config
            .tls
            .as_ref()
            .map(|tls| tls.acceptor(config.http2.is_some()));
        Protocols {
            http1,
            http2,
            tls,
            heads: Arc::new(ErrorHeads::new(config.max_header_bytes)),
            opening_timeout: config.header_read_timeout,
        }
    }
}

/// What a connection's first bytes say it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    Http1,
    /// Cleartext HTTP/2 with prior knowledge (the preface).
    Http2,
    /// A TLS handshake; ALPN decides HTTP/1.1 or HTTP/2.
    Tls,
    /// The peer closed before sending anything.
    Closed,
}

/// Tells the protocol from the first bytes by *peeking* (`MSG_PEEK`): nothing is consumed,
/// so hyper's HTTP/1 reader reads the request from the socket as if nobody had looked. (hyper-
/// util's `auto` builder reads the bytes and replays them, and the replay makes hyper grow
/// its HTTP/1 read buffer to 16 KiB for the connection's life: see the module docs.)
async fn sniff(stream: &TcpStream, http2: bool, tls: bool) -> io::Result<Opening> {
    let mut first = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Ok(Opening::Closed);
        }
        if tls && first[0] == TLS_HANDSHAKE_RECORD {
            return Ok(Opening::Tls);
        }
        if !http2 || first[..n] != H2_PREFACE[..n] {
            return Ok(Opening::Http1);
        }
        if n == H2_PREFACE.len() {
            return Ok(Opening::Http2);
        }
        // A preface split across segments (rare: clients send it in one write). The bytes
        // already peeked keep the socket readable, so wait a moment rather than spin.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs one connection to its end; on shutdown, lets the responses in flight finish.
async fn handle(
    stream: TcpStream,
    // Held for the connection's life: its slot under the connection limit.
    _permit: Option<OwnedSemaphorePermit>,
    protocols: Arc<Protocols>,
    app: Router,
    shutdown: Shutdown,
) {
    // Latency is the point of this server: never let Nagle hold a small event back.
    let _ = stream.set_nodelay(true);
    let opening = if protocols.http2.is_none() && protocols.tls.is_none() {
        Opening::Http1
    } else {
        let sniffed = sniff(&stream, protocols.http2.is_some(), protocols.tls.is_some());
        match tokio::time::timeout(protocols.opening_timeout, sniffed).await {
            Ok(Ok(opening)) => opening,
            // Silent for the whole header timeout, or reset: nothing to answer.
            Ok(Err(_)) | Err(_) => return,
        }
    };
    let heads = protocols.heads.clone();
    match opening {
        Opening::Closed => {}
        Opening::Http1 => {
            drive_http1(Conn::new(stream, Some(heads)), &protocols, app, shutdown).await
        }
        // Boxed: the HTTP/2 and TLS drivers' state is several KiB, and a future is as big as
        // its biggest branch. Inline, every HTTP/1.1 connection's task would carry that
        // space (measured: 12.6 instead of 7.75 KiB per idle SSE connection).
        Opening::Http2 => {
            Box::pin(drive_http2(
                Conn::new(stream, None),
                &protocols,
                app,
                shutdown,
            ))
            .await
        }
        Opening::Tls => Box::pin(serve_tls(stream, &protocols, app, shutdown)).await,
    }
}

/// A TLS connection: the handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls(stream: TcpStream, protocols: &Protocols, app: Router, shutdown: Shutdown) {
    let Some(acceptor) = &protocols.tls else {
        return;
    };
    let accept = acceptor.accept(Conn::new(stream, None));
    let tls = match tokio::time::timeout(protocols.opening_timeout, accept).await {
        Ok(Ok(tls)) => tls,
        // A failed handshake (an untrusted certificate, a port scan) ends here.
        Ok(Err(_)) | Err(_) => return,
    };
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") && protocols.http2.is_some() {
        drive_http2(tls, protocols, app, shutdown).await;
    } else {
        // The TLS layer below lingers on close; this one only fills in error bodies.
        let conn = Conn::new(tls, Some(protocols.heads.clone())).without_linger();
        drive_http1(conn, protocols, app, shutdown).await;
    }
}

/// The router as hyper's service.
fn service(
    app: Router,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
                 + Send
                 + 'static,
> + Clone {
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = app.clone();
        router.call(request.map(Body::new))
    })
}

async fn drive_http1<S>(io: S, protocols: &Protocols, app: Router, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = protocols
        .http1
        .serve_connection(TokioIo::new(io), service(app))
        .with_upgrades();
    tokio::pin!(connection);
    // Errors here are the peer's (reset, malformed request: hyper answers 400 itself) and
    // end only this connection.
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.wait() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

async fn drive_http2<S>(io: S, protocols: &Protocols, app: Router, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(http2) = &protocols.http2 else {
        return;
    };
    let connection = http2.serve_connection(TokioIo::new(io), service(app));
    tokio::pin!(connection);
    // On shutdown: GOAWAY, then the streams in flight end themselves (every transport merges
    // the shutdown signal into its streams).
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.wait() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// The answer of a connection over the limit, written whole before the request is read.
struct Refusal {
    bytes: Arc<[u8]>,
}

impl Refusal {
    fn new(limit: usize) -> Self {
        let body = format!(
            "{{\"error\":\"too many connections (the server's limit is {limit}); retry later\"}}\n"
        );
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        Refusal {
            bytes: [head.as_bytes(), body.as_bytes()].concat().into(),
        }
    }

    /// Answers `503` and closes, lingering when a slot for that is free.
    fn refuse(&self, stream: TcpStream, lingering: &Arc<Semaphore>) {
        let Ok(permit) = lingering.clone().try_acquire_owned() else {
            // A fresh socket's send buffer is empty: a write this small goes out whole.
            let _ = stream.try_write(&self.bytes);
            return;
        };
        let bytes = self.bytes.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _permit = permit;
            let mut conn = Conn::new(stream, None);
            let done = async {
                conn.write_all(&bytes).await?;
                conn.shutdown().await
            };
            let _ = tokio::time::timeout(LINGER_TIME, done).await;
        });
    }
}

/// Accept errors that concern one connection (it was reset before we took it) are skipped;
/// running out of file descriptors or memory is retried after a pause, as `axum::serve`
/// does, rather than spinning or ending the server.
async fn after_accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::error!("accept failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The one-line messages of hyper's automatic answers, which hyper sends without a body.
struct ErrorHeads {
    /// `(status line prefix, body)` for each status hyper answers by itself.
    bodies: [(&'static [u8], String); 3],
}

impl ErrorHeads {
    fn new(max_header_bytes: usize) -> Self {
        let json = |msg: String| pushbench_feed::http::error_json(&msg);
        ErrorHeads {
            bodies: [
                (
                    b"HTTP/1.1 431 ",
                    json(format!(
                        "request head too large: the request line and headers (cookies \
                         included) must fit in {max_header_bytes} bytes"
                    )),
                ),
                (b"HTTP/1.1 414 ", json("request URI too long".to_string())),
                (
                    b"HTTP/1.1 400 ",
                    json(
                        "malformed request: the request line or a header could not be parsed \
                         as HTTP/1.1"
                            .to_string(),
                    ),
                ),
            ],
        }
    }

    /// If `head` is one of hyper's automatic answers (a whole, empty-bodied head of one of
    /// those statuses), the same answer with its message as the body.
    ///
    /// hyper's automatic answers are the only such heads a router behind
    /// `pushbench_feed::http::error_bodies` lets through: that layer gives every error answer
    /// a body, so `content-length: 0` on these statuses, with `connection: close` (hyper closes
    /// after a head it could not parse), marks hyper's own. A `HEAD` answer of the router
    /// never matches: its `content-length` is that of the body it would have had.
    fn fill(&self, head: &[u8]) -> Option<Vec<u8>> {
        const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
        if head.len() > 1024
            || !head.ends_with(b"\r\n\r\n")
            || find(head, b"\r\nconnection: close\r\n").is_none()
        {
            return None;
        }
        let (_, body) = self.bodies.iter().find(|(p, _)| head.starts_with(p))?;
        let at = find(head, EMPTY)?;
        let mut out = Vec::with_capacity(head.len() + body.len() + 64);
        out.extend_from_slice(&head[..at]);
        out.extend_from_slice(b"\r\ncontent-type: application/json");
        out.extend_from_slice(format!("\r\ncontent-length: {}\r\n", body.len()).as_bytes());
        out.extend_from_slice(&head[at + EMPTY.len()..]);
        out.extend_from_slice(body.as_bytes());
        Some(out)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A served socket (or the TLS stream on one): fills in the bodies of hyper's automatic
/// HTTP/1 error answers, and lingers on close while the client is still sending (see the
/// module docs).
struct Conn<S = TcpStream> {
    stream: S,
    heads: Option<Arc<ErrorHeads>>,
    /// A filled-in answer being written, and how much of it is out; the write it replaces
    /// reports success once all of it is.
    rewrite: Option<(Vec<u8>, usize)>,
    linger: Linger,
}

enum Linger {
    /// Not closing yet.
    Open,
    /// Closing is the layer below's business (a TLS stream over a lingering [`Conn`]).
    Never,
    /// FIN sent; discarding what arrives until EOF, the deadline or the byte cap.
    Draining {
        deadline: Pin<Box<Sleep>>,
        left: u64,
    },
    Done,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// `heads`: fill in hyper's empty HTTP/1 error answers; `None` (HTTP/2, TLS records, the
    /// refusal) lets writes go out unchanged.
    fn new(stream: S, heads: Option<Arc<ErrorHeads>>) -> Self {
        Conn {
            stream,
            heads,
            rewrite: None,
            linger: Linger::Open,
        }
    }

    fn without_linger(mut self) -> Self {
        self.linger = Linger::Never;
        self
    }

    /// Writes the pending filled-in answer; `Ready(Ok(n))` reports the `n` bytes it replaces.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>, replaces: usize) -> Poll<io::Result<usize>> {
        while let Some((bytes, sent)) = &mut self.rewrite {
            if *sent == bytes.len() {
                self.rewrite = None;
                return Poll::Ready(Ok(replaces));
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(replaces))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewrite.is_none() {
            if let Some(filled) = this.heads.as_ref().and_then(|h| h.fill(buf)) {
                this.rewrite = Some((filled, 0));
            }
        }
        if this.rewrite.is_some() {
            return this.poll_rewrite(cx, buf.len());
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // An automatic answer is a head alone, hence one non-empty slice.
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next()) {
            return self.poll_write(cx, only);
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.linger {
                Linger::Never => return Pin::new(&mut this.stream).poll_shutdown(cx),
                Linger::Open => {
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.linger = Linger::Draining {
                        deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        left: LINGER_BYTES,
                    };
                    // A quiet client (the usual close: it read its answer, or is idle) is not
                    // waited for; only one still sending is.
                    match poll_discard(&mut this.stream, cx) {
                        Poll::Pending => this.linger = Linger::Done,
                        Poll::Ready(Some(n)) => {
                            if let Linger::Draining { left, .. } = &mut this.linger {
                                *left = left.saturating_sub(n);
                            }
                        }
                        Poll::Ready(None) => this.linger = Linger::Done,
                    }
                }
                Linger::Draining { deadline, left } => {
                    if *left == 0 || deadline.as_mut().poll(cx).is_ready() {
                        this.linger = Linger::Done;
                        continue;
                    }
                    match ready!(poll_discard(&mut this.stream, cx)) {
                        Some(n) => *left = left.saturating_sub(n),
                        None => this.linger = Linger::Done,
                    }
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// Reads and discards what the peer sent: `Some(bytes)`, or `None` at EOF or on an error.
fn poll_discard<S: AsyncRead + Unpin>(stream: &mut S, cx: &mut Context<'_>) -> Poll<Option<u64>> {
    let mut scratch = [0u8; 8192];
    let mut buf = ReadBuf::new(&mut scratch);
    match ready!(Pin::new(stream).poll_read(cx, &mut buf)) {
        Ok(()) if !buf.filled().is_empty() => Poll::Ready(Some(buf.filled().len() as u64)),
        _ => Poll::Ready(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offering HTTP/2 and TLS must not make an HTTP/1.1 connection's task bigger than its
    /// HTTP/1 driver (plus the protocol sniff): every open event stream pays for that space.
    #[tokio::test]
    async fn a_connection_task_is_as_small_as_its_http1_driver() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (a, _) = listener.accept().await.unwrap();
        let _client2 = TcpStream::connect(addr).await.unwrap();
        let (b, _) = listener.accept().await.unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = TlsConfig::new(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
            "test".into(),
        )
        .unwrap();
        let protocols = Arc::new(Protocols::new(&ServeConfig {
            tls: Some(tls),
            ..ServeConfig::default()
        }));
        let task = handle(a, None, protocols.clone(), Router::new(), Shutdown::new());
        let http1 = drive_http1(
            Conn::new(b, Some(protocols.heads.clone())),
            &protocols,
            Router::new(),
            Shutdown::new(),
        );
        let (task, http1) = (size_of_val(&task), size_of_val(&http1));
        assert!(
            task <= http1 + 512,
            "a connection's task is {task} bytes, its HTTP/1 driver {http1}"
        );
    }

    #[test]
    fn hypers_empty_error_heads_get_their_message() {
        let heads = ErrorHeads::new(16384);
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let filled = String::from_utf8(heads.fill(head).unwrap()).unwrap();
        let (h, body) = filled.split_once("\r\n\r\n").unwrap();
        assert!(h.contains("\r\ncontent-type: application/json\r\n"), "{h}");
        assert!(
            h.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{h}"
        );
        assert!(h.contains("\r\ndate: x"), "{h}");
        assert!(body.contains("16384 bytes"), "{body}");
        assert_eq!(body.lines().count(), 1);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].as_str().unwrap().contains("too large"));
        // Answers with a body, other statuses and partial heads pass unchanged.
        assert!(heads
            .fill(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n")
            .is_none());
        assert!(heads
            .fill(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .is_none());
        assert!(heads
            .fill(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n")
            .is_none());
        assert!(heads.fill(b"\x81\x05hello").is_none());
    }
}
