//! A measured client connection: the counted TCP socket of one session, which settles its
//! byte counts into the worker's [`Stats`] when it is dropped.
//!
//! Settling on drop, rather than at the end of each session function, is what makes bytes
//! count however a session ends: an end event, the server closing, an error, churn, or the
//! run stopping (the drain deadline drops every session future where it stands, mid-read or
//! mid-handshake). Against a server that never sends an end event every client ends that way,
//! and its bytes used to be lost, so bytes per event read 0.
//!
//! A slow consumer (the `slow_consumers` fault) reads through a [`ReadLimit`]: a token bucket
//! in `poll_read`, so the socket's receive buffer fills and the server meets the same
//! back-pressure a viewer on a slow link gives it. Below the protocol code, so every
//! transport is slowed the same way.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::stats::Stats;
use crate::tls::TlsTarget;
use crate::wire::{tcp_info_bytes, Counted};

/// One session's socket, counted below any protocol code.
pub struct MeasuredSocket {
    io: Counted<TcpStream>,
    stats: Rc<RefCell<Stats>>,
    throttle: Option<Box<Throttle>>,
}

/// A read rate limit over a time window (a slow consumer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimit {
    pub bytes_per_sec: u64,
    pub from: Instant,
    pub until: Instant,
}

/// The token bucket of a [`ReadLimit`]: at most a tenth of a second's bytes at once.
struct Throttle {
    limit: ReadLimit,
    budget: f64,
    refilled: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl Throttle {
    fn burst(&self) -> f64 {
        (self.limit.bytes_per_sec as f64 / 10.0).max(1.0)
    }
}

impl MeasuredSocket {
    pub fn new(stream: TcpStream, stats: Rc<RefCell<Stats>>) -> Self {
        if let Ok(mut st) = stats.try_borrow_mut() {
            st.tcp_opened();
        }
        MeasuredSocket {
            io: Counted::new(stream),
            stats,
            throttle: None,
        }
    }

    /// The same socket, read no faster than `limit` while its window lasts.
    pub fn throttled(mut self, limit: Option<ReadLimit>) -> Self {
        self.throttle = limit.map(|limit| {
            let now = Instant::now();
            let mut t = Throttle {
                limit,
                budget: 0.0,
                refilled: now,
                sleep: Box::pin(tokio::time::sleep_until(now)),
            };
            t.budget = t.burst();
            Box::new(t)
        });
        self
    }

    /// Bytes read and written so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.io.bytes_down, self.io.bytes_up)
    }
}

impl Drop for MeasuredSocket {
    fn drop(&mut self) {
        let kernel = tcp_info_bytes(self.io.get_ref());
        // The worker is one thread and never drops a socket while it holds its stats, but a
        // drop must not panic whatever happens: an unreachable borrow loses these counts only.
        if let Ok(mut st) = self.stats.try_borrow_mut() {
            st.socket_closed(self.io.bytes_down, self.io.bytes_up, kernel);
        }
    }
}

impl AsyncRead for MeasuredSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(t) = this.throttle.as_deref_mut() else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        let now = Instant::now();
        if now < t.limit.from || now >= t.limit.until {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let rate = t.limit.bytes_per_sec as f64;
        t.budget = (t.budget + (now - t.refilled).as_secs_f64() * rate).min(t.burst());
        t.refilled = now;
        if t.budget < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - t.budget) / rate);
            t.sleep.as_mut().reset((now + wait).min(t.limit.until));
            if t.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Due already: come back at once and find the budget refilled.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let allowed = (t.budget as usize).min(buf.remaining()).max(1);
        // A smaller buffer over `buf`'s own (initialised) memory: no byte is copied twice.
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(allowed));
        let polled = Pin::new(&mut this.io).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if polled.is_ready() {
            buf.advance(n);
            t.budget -= n as f64;
        }
        polled
    }
}

impl AsyncWrite for MeasuredSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A client's connection: the measured socket, bare or under TLS (`https://`, `wss://`).
/// Bytes are counted below TLS, so wire bytes include its records and handshake.
pub enum ClientStream {
    Plain(MeasuredSocket),
    /// Boxed: a TLS session is a few kilobytes, and most clients speak plain TCP.
    Tls(Box<tokio_rustls::client::TlsStream<MeasuredSocket>>),
}

impl ClientStream {
    /// The TLS handshake over `socket` when `tls` is given; the socket as is otherwise.
    pub async fn open(socket: MeasuredSocket, tls: Option<&TlsTarget>) -> io::Result<Self> {
        match tls {
            None => Ok(ClientStream::Plain(socket)),
            Some(t) => {
                let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                let stream = connector.connect(t.server_name.clone(), socket).await?;
                Ok(ClientStream::Tls(Box::new(stream)))
            }
        }
    }

    /// The measured socket under any TLS.
    pub fn socket(&self) -> &MeasuredSocket {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(t) => t.get_ref().0,
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::connect;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A session future dropped mid-read (as the drain deadline drops it) still settles the
    /// bytes it had counted, and the kernel's count agrees.
    #[tokio::test]
    async fn bytes_are_settled_when_a_session_is_dropped_mid_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 100];
            s.read_exact(&mut req).await.unwrap();
            s.write_all(&[7u8; 3000]).await.unwrap();
            // Never closes: the client is stopped, not finished.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let stats = Rc::new(RefCell::new(Stats::new()));
        let session = {
            let stats = stats.clone();
            async move {
                let mut s = MeasuredSocket::new(connect(addr, None).await.unwrap(), stats);
                s.write_all(&[1u8; 100]).await.unwrap();
                let mut got = vec![0u8; 3000];
                s.read_exact(&mut got).await.unwrap();
                // Waits for more that never comes.
                let _ = s.read(&mut got).await;
            }
        };
        let stopped = tokio::time::timeout(Duration::from_millis(300), session).await;
        assert!(stopped.is_err(), "the session was meant to be cut off");
        let st = stats.borrow();
        let c = st.recorder.counters();
        assert_eq!((c.bytes_down, c.bytes_up), (3000, 100));
        assert_eq!(
            (st.kernel_bytes_down, st.kernel_bytes_up),
            (3000, 100),
            "the kernel's count"
        );
        assert_eq!(st.tcp_info_errors, 0);
        assert_eq!((c.tcp_connections_opened, c.tcp_connections_peak), (1, 1));
        assert_eq!(st.tcp_open, 0, "closed when dropped");
        server.abort();
    }
}
