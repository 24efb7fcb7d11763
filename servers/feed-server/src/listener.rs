//! The listening socket and process limits.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Accept backlog. tokio's `TcpListener::bind` uses 128, which thousands of simultaneous
/// connects overflow; the kernel caps this at `net.core.somaxconn`.
pub const BACKLOG: u32 = 4096;

/// Binds `addr` with a deep backlog and `SO_REUSEADDR` (restarts do not wait for TIME_WAIT).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft open-file limit to the hard limit: every client is a file descriptor.
/// Returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let (_, hard) = rlimit::Resource::NOFILE.get()?;
    rlimit::Resource::NOFILE.set(hard, hard)?;
    Ok(hard)
}
