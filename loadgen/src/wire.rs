//! Bytes on the wire, counted where they cross the socket, and the kernel's own count.
//!
//! Every client's socket is wrapped in [`Counted`], below any HTTP or WebSocket code, so the
//! totals include request and response headers, chunked framing, SSE field names, WebSocket
//! frame headers and masks: everything the transport costs, not just payload. The kernel's
//! TCP_INFO counters are read before each socket closes, as an independent check of those
//! totals: bytes down are `tcpi_bytes_received`; bytes up are `tcpi_bytes_sent` less
//! `tcpi_bytes_retrans` (Linux 4.19+), or `tcpi_bytes_acked` on older kernels.
//!
//! Reading TCP_INFO needs one `getsockopt` call, which no well-kept crate wraps (neither nix nor
//! socket2 has it), so it is done here, in the crate's only `unsafe` block, into a plain buffer
//! read at the counters' fixed offsets (older libc releases' `tcp_info` stopped before them).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// A stream that counts the bytes read from and written to it.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    /// Bytes read (received from the server).
    pub bytes_down: u64,
    /// Bytes written (sent to the server).
    pub bytes_up: u64,
}

impl<S> Counted<S> {
    pub fn new(inner: S) -> Self {
        Counted {
            inner,
            bytes_down: 0,
            bytes_up: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.bytes_down += (buf.filled().len() - before) as u64;
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.bytes_up += n as u64;
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            self.bytes_up += n as u64;
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The kernel's byte counters of one TCP socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfoBytes {
    /// Payload bytes received (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Payload bytes sent and acknowledged by the peer (`tcpi_bytes_acked`). Lags what was
    /// written by whatever is still in flight (a delayed ACK holds back up to 40 ms).
    pub bytes_acked: u64,
    /// Payload bytes transmitted once (`tcpi_bytes_sent − tcpi_bytes_retrans`, Linux 4.19+):
    /// what was written, whether acknowledged yet or not. `None` on older kernels.
    pub bytes_sent: Option<u64>,
}

impl TcpInfoBytes {
    /// The kernel's count of bytes sent: transmitted once where known, else acknowledged.
    pub fn bytes_up(&self) -> u64 {
        self.bytes_sent.unwrap_or(self.bytes_acked)
    }
}

/// Offsets of the byte counters in Linux's `struct tcp_info` (`tcpi_bytes_acked` and
/// `tcpi_bytes_received` since Linux 4.1, `tcpi_bytes_sent` and `tcpi_bytes_retrans` since 4.19;
/// a stable ABI: fields are only ever appended).
const TCPI_BYTES_ACKED_OFFSET: usize = 120;
const TCPI_BYTES_RECEIVED_OFFSET: usize = 128;
const TCPI_BYTES_SENT_OFFSET: usize = 200;
const TCPI_BYTES_RETRANS_OFFSET: usize = 208;

// TCP states (include/net/tcp_states.h).
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

/// Reads the kernel's byte counters of a TCP socket this process connected (not accepted).
#[allow(unsafe_code)]
pub fn tcp_info_bytes(socket: &impl AsRawFd) -> io::Result<TcpInfoBytes> {
    // Large enough for any kernel's tcp_info; u64 elements keep it 8-byte aligned.
    let mut buf = [0u64; 64];
    let mut len = size_of_val(&buf) as libc::socklen_t;
    // SAFETY: `buf` is a valid, writable buffer of `len` bytes that outlives the call; the
    // kernel writes at most `len` bytes and stores the written size in `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) < TCPI_BYTES_RECEIVED_OFFSET + 8 {
        return Err(io::Error::other(
            "kernel's tcp_info lacks tcpi_bytes_received (Linux < 4.2)",
        ));
    }
    // SYN and FIN each take one sequence number, which the kernel's counters include: take
    // them out so both count payload bytes only. On a connection we opened, the acked count
    // includes our SYN (checked by the test below). `tcpi_state` is the first byte.
    let state = buf[0].to_ne_bytes()[0];
    let peer_fin_received = matches!(
        state,
        TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_TIME_WAIT | TCP_CLOSING
    );
    let own_fin_acked = matches!(state, TCP_FIN_WAIT2 | TCP_TIME_WAIT);
    Ok(TcpInfoBytes {
        bytes_acked: buf[TCPI_BYTES_ACKED_OFFSET / 8].saturating_sub(1 + u64::from(own_fin_acked)),
        bytes_received: buf[TCPI_BYTES_RECEIVED_OFFSET / 8]
            .saturating_sub(u64::from(peer_fin_received)),
        bytes_sent: ((len as usize) >= TCPI_BYTES_RETRANS_OFFSET + 8).then(|| {
            buf[TCPI_BYTES_SENT_OFFSET / 8].saturating_sub(buf[TCPI_BYTES_RETRANS_OFFSET / 8])
        }),
    })
}

/// Source addresses for outgoing connections.
///
/// One (source address, destination) pair has ~28k ephemeral ports; beyond about 25k
/// connections to one server, connections are spread over 127.0.0.1, 127.0.0.2, … (all of
/// 127.0.0.0/8 is loopback on Linux).
#[derive(Clone, Debug)]
pub struct SourceAddrs {
    count: u32,
}

/// Connections per source address before the next one is used.
const CONNECTIONS_PER_SOURCE: u32 = 25_000;

impl SourceAddrs {
    /// Enough source addresses for `clients` connections to a loopback server; a single default
    /// (kernel-chosen) one otherwise.
    pub fn for_clients(clients: u32, server: &SocketAddr) -> Self {
        let count = if server.ip().is_loopback() && server.is_ipv4() {
            clients.div_ceil(CONNECTIONS_PER_SOURCE).max(1)
        } else {
            1
        };
        SourceAddrs { count }
    }

    /// The source address of client `i`, or `None` to let the kernel choose.
    pub fn for_client(&self, i: u32) -> Option<IpAddr> {
        (self.count > 1).then(|| {
            let n = i % self.count;
            IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250 + 1) as u8))
        })
    }
}

/// Connects to `addr`, from `source` if given, with Nagle off (events are small and latency is
/// what is measured).
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    connect_with(addr, source, None).await
}

/// [`connect`] with the socket's receive buffer set to `recv_buffer` bytes before the
/// handshake (so the window it advertises is that small): a slow consumer's, so that reading
/// slowly pushes back on the server within seconds, as a viewer on a slow link does, instead
/// of loopback's autotuned megabytes absorbing minutes of the feed.
pub async fn connect_with(
    addr: SocketAddr,
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.set_nodelay(true)?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.connect(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_match_the_kernel_after_an_exchange() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1000];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&vec![7u8; 5000]).await.unwrap();
            s.shutdown().await.unwrap();
        });
        let mut c = Counted::new(connect(addr, None).await.unwrap());
        c.write_all(&[1u8; 1000]).await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        server.await.unwrap();
        assert_eq!((c.bytes_down, c.bytes_up), (5000, 1000));
        let k = tcp_info_bytes(c.get_ref()).unwrap();
        assert_eq!(k.bytes_received, 5000);
        assert_eq!(k.bytes_acked, 1000);
        assert_eq!(k.bytes_sent, Some(1000));
    }

    #[test]
    fn source_addresses_spread_beyond_the_port_range() {
        let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let few = SourceAddrs::for_clients(1000, &server);
        assert_eq!(few.for_client(5), None);
        let many = SourceAddrs::for_clients(60_000, &server);
        let ips: std::collections::HashSet<_> =
            (0..60_000).map(|i| many.for_client(i).unwrap()).collect();
        assert_eq!(ips.len(), 3);
        assert!(ips.iter().all(|ip| ip.is_loopback()));
    }
}
