//! The load generator's fault-injecting TCP proxy: the network faults of a scenario's
//! `[[faults]]` list (`reset`, `idle_cut`, `latency`, `bandwidth`, `blackhole`,
//! `cut_mid_event`; see [`crate::scenario::faults`]).
//!
//! Every client connects to [`FaultProxy::local_addr`] instead of the server. For each
//! accepted connection the proxy dials the upstream (the server) and copies bytes both ways;
//! [`ProxyHandle::apply`] turns a fault on for a fraction of the connections while the run goes
//! on, [`ProxyHandle::clear`] turns it off again and reports what it did.
//!
//! # Why our own code
//! - Cost per connection: a run holds thousands of connections through the proxy, so each is
//!   one task owning both directions, with one fixed buffer per direction
//!   ([`DOWN_BUFFER`], [`UP_BUFFER`]), allocated once and never grown. A general-purpose proxy
//!   or a netem-style tool would cost a process, a container or root, and would not count.
//! - Precise timing: a fault starts and ends when the run's schedule says, on the run's own
//!   clock, and the proxy knows exactly which connections it hit (`selected`, `affected`),
//!   which the run sets against what the clients saw.
//! - No external service: the proxy lives in pushbench, on loopback, for one run.
//!
//! With no fault active the proxy is a plain copy: each read is written at once (no
//! batching) and TCP_NODELAY is set on both sockets, so it adds no measurable latency.
//!
//! # Which connections a fault hits
//! Applied with fraction `f`, a fault selects ⌈f × n⌉ of the `n` connections open at that
//! moment, spread evenly over them in accept order: the connection of rank `r` (0 = the
//! oldest) is chosen when ⌈(r+1)·f⌉ > ⌈r·f⌉, so the oldest is always among them and the
//! rest follow every 1/f-th (f = 0.5 of 4 hits ranks 0 and 2). Spreading, rather than taking
//! the oldest ones, keeps the hits spread over topics and workers as clients are.
//!
//! The lasting faults (`IdleCut`, `Latency`, `Bandwidth`, `Blackhole`) also hit connections
//! accepted while they are active, by the same rule on the accept index (connection `a`, 0 =
//! the proxy's first, joins when ⌈(a+1)·f⌉ > ⌈a·f⌉): with f = 1 every new connection joins
//! (a load balancer's idle timeout applies to new connections too), in general a share f of
//! them, deterministically. The one-shot faults (`Reset`, `CutMidEvent`) hit only the
//! connections open when they are applied.
//!
//! Only one fault of each kind can be active at a time (faults of different kinds combine);
//! applying a second is [`ProxyError::AlreadyActive`].
//!
//! # What each fault does, per direction
//! "Down" is server → client, "up" is client → server.
//! - `Reset` (one-shot): the selected connections are reset at once, both sides get a TCP RST
//!   (SO_LINGER 0, then close). Affected: every selected connection still open.
//! - `IdleCut { after }` (lasting): a selected connection with no byte either way for
//!   `after` is closed with a clean FIN on both sides. The idle time counts from the last
//!   byte or from when the fault reached the connection, whichever is later (the load
//!   balancer arrives with the fault; a connection idle before it gets the full `after`).
//!   Affected: the connections cut.
//! - `Latency { delay, jitter }` (lasting): each chunk (one read from the server) is written
//!   to the client `delay` ± `jitter` (uniform, never below zero) after it was read; up is not
//!   delayed. Order is kept: a chunk whose draw is earlier than its predecessor's waits for
//!   it, as bytes in one TCP stream do. At most [`MAX_HELD_CHUNKS`] chunks and one buffer of
//!   bytes are in flight per connection (a window, as TCP's), so a fast stream also slows
//!   down. Chunks still held when the fault is cleared are written at once. Affected: the
//!   connections that had at least one chunk delayed.
//! - `Bandwidth { bytes_per_sec }` (lasting): down is limited by a token bucket of that rate
//!   holding at most a tenth of a second's bytes (at least 1, at most one buffer), full when
//!   the fault starts; up is not limited. Affected: the connections that had to wait at
//!   least once.
//! - `Blackhole` (lasting): nothing is forwarded either way and nothing is closed. The proxy
//!   keeps reading until its buffers are full (then the senders' TCP windows fill up), and
//!   holds those bytes, never dropping them: at clear, forwarding resumes with what was held,
//!   in order, and an end of stream seen meanwhile is passed on after it. The senders do not
//!   see retransmission timeouts (their bytes were acknowledged by the proxy's kernel), only
//!   a stalled stream; clients with their own silence timeout may give up first, which is what
//!   the fault measures. Affected: the connections that had bytes held.
//! - `CutMidEvent` (one-shot, armed until cleared): each selected connection's next down chunk
//!   longer than [`CUT_MIN_WRITE`] bytes is written only in part (half of it, at least
//!   [`CUT_MIN_WRITE`] bytes and strictly less than the chunk, so an SSE event or WebSocket
//!   frame is split) and the connection is then closed (FIN to the client, the server side
//!   closed too). A connection that gets no such chunk before [`ProxyHandle::clear`] is not
//!   counted as affected.
//!
//! When the upstream cannot be reached (refused, or no answer within [`CONNECT_TIMEOUT`]: the
//! server is down during a restart), the client's connection is reset at once, the nearest a
//! proxy that already accepted can come to a refused connect, so the client sees a connection
//! error and retries; `upstream_connect_failures` counts it. A reset or error on one side is
//! passed on to the other as a reset; an end of stream, as an end of stream.

mod proxy;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

pub use proxy::{FaultProxy, ProxyHandle};

/// The client ports of the connections the latest proxy fault affected: how a client learns
/// that the proxy touched it (a delayed, throttled or blackholed connection breaks nothing a
/// client could see), so its latency is not counted among the untouched clients' while that
/// fault owns the time. One bit per port, lock-free, 8 KiB: the proxy sets a bit once per
/// connection and fault, each client reads its own bit per line received during a fault.
/// Ports identify connections because every client connects from loopback to the one proxy
/// (beyond ~28,000 connections, with several source addresses, two clients could share a port
/// and one would be counted as touched: the proxy holds two descriptors per connection, so the
/// 20,000-descriptor limit stops a run well before).
#[derive(Clone)]
pub struct PortMarks(std::sync::Arc<[std::sync::atomic::AtomicU64]>);

impl Default for PortMarks {
    fn default() -> Self {
        PortMarks((0..1024).map(|_| Default::default()).collect())
    }
}

impl PortMarks {
    pub fn mark(&self, port: u16) {
        let (word, bit) = (usize::from(port) / 64, port % 64);
        self.0[word].fetch_or(1 << bit, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_marked(&self, port: u16) -> bool {
        let (word, bit) = (usize::from(port) / 64, port % 64);
        self.0[word].load(std::sync::atomic::Ordering::Relaxed) & (1 << bit) != 0
    }

    pub fn clear(&self) {
        for word in self.0.iter() {
            word.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for PortMarks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let marked: u32 = self
            .0
            .iter()
            .map(|w| w.load(std::sync::atomic::Ordering::Relaxed).count_ones())
            .sum();
        write!(f, "PortMarks({marked} marked)")
    }
}

use crate::scenario::FaultKind;

/// Bytes a selected connection is sent of the chunk it is cut in, at least; chunks this short
/// or shorter are passed whole (they cannot be split with this much before the cut).
pub const CUT_MIN_WRITE: usize = 16;

/// The down (server → client) buffer of each connection: what a read takes at most, and
/// what a latency or blackhole fault holds at most.
pub const DOWN_BUFFER: usize = 16 * 1024;

/// The up (client → server) buffer of each connection. Smaller than down: clients send
/// requests, pings and acknowledgements, not streams.
pub const UP_BUFFER: usize = 4 * 1024;

/// How many chunks a latency fault holds per connection at most (each with its due time).
pub const MAX_HELD_CHUNKS: usize = 64;

/// How long the proxy waits for the upstream to accept a connection before it gives up
/// (counted in `upstream_connect_failures`), as a client's connect timeout would.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy does to the connections a fault selects (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFault {
    /// One-shot: TCP RST on both sides.
    Reset,
    /// Lasting: a connection idle either way for `after` is closed (FIN both sides).
    IdleCut { after: Duration },
    /// Lasting: each down chunk is held `delay` ± `jitter`, order kept.
    Latency { delay: Duration, jitter: Duration },
    /// Lasting: down limited to this rate.
    Bandwidth { bytes_per_sec: u64 },
    /// Lasting: nothing forwarded either way, nothing closed, bytes held.
    Blackhole,
    /// One-shot: the next down chunk is written in part, then the connection closed.
    CutMidEvent,
}

impl ProxyFault {
    /// The proxy's share of a scenario's fault kinds; `None` for the kinds other injectors
    /// carry out (`drop`, `restart`, `slow_consumers`).
    pub fn from_kind(kind: FaultKind) -> Option<ProxyFault> {
        Some(match kind {
            FaultKind::Reset => ProxyFault::Reset,
            FaultKind::IdleCut { after } => ProxyFault::IdleCut { after },
            FaultKind::Latency { delay, jitter } => ProxyFault::Latency { delay, jitter },
            FaultKind::Bandwidth { bytes_per_sec } => ProxyFault::Bandwidth { bytes_per_sec },
            FaultKind::Blackhole => ProxyFault::Blackhole,
            FaultKind::CutMidEvent => ProxyFault::CutMidEvent,
            FaultKind::Drop
            | FaultKind::Restart { .. }
            | FaultKind::SlowConsumers { .. }
            | FaultKind::KillInstance { .. }
            | FaultKind::RollingRestart { .. }
            | FaultKind::RedisRestart { .. } => return None,
        })
    }

    /// Its name in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            ProxyFault::Reset => "reset",
            ProxyFault::IdleCut { .. } => "idle_cut",
            ProxyFault::Latency { .. } => "latency",
            ProxyFault::Bandwidth { .. } => "bandwidth",
            ProxyFault::Blackhole => "blackhole",
            ProxyFault::CutMidEvent => "cut_mid_event",
        }
    }

    /// Whether it stays on until cleared and also reaches connections accepted meanwhile.
    pub fn lasts(&self) -> bool {
        matches!(
            self,
            ProxyFault::IdleCut { .. }
                | ProxyFault::Latency { .. }
                | ProxyFault::Bandwidth { .. }
                | ProxyFault::Blackhole
        )
    }

    fn check(&self) -> Result<(), ProxyError> {
        match *self {
            ProxyFault::IdleCut { after } if after.is_zero() => Err(ProxyError::InvalidFault(
                "idle_cut needs a positive `after`".into(),
            )),
            ProxyFault::Bandwidth { bytes_per_sec: 0 } => Err(ProxyError::InvalidFault(
                "bandwidth needs at least 1 byte per second (a stall is a blackhole)".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for ProxyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The share of connections a fault selects, in (0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fraction(f64);

impl Fraction {
    pub fn new(f: f64) -> Result<Fraction, ProxyError> {
        // Written so that NaN fails too.
        if f > 0.0 && f <= 1.0 {
            Ok(Fraction(f))
        } else {
            Err(ProxyError::InvalidFraction(f))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// Whether the item of rank `rank` (0-based, in accept order) is among the selected:
    /// ⌈(rank+1)·f⌉ > ⌈rank·f⌉, so the first `n` ranks hold ⌈n·f⌉ selected ones.
    pub fn selects(self, rank: u64) -> bool {
        ceil_share(rank + 1, self.0) > ceil_share(rank, self.0)
    }
}

/// ⌈n·f⌉, forgiving the rounding of `n·f` (7 × 0.7 is 4.9000000000000004 in f64, and 10 × 0.7
/// is 7.000000000000001, which must count as 7).
fn ceil_share(n: u64, f: f64) -> u64 {
    let x = n as f64 * f;
    let rounded = x.round();
    if (x - rounded).abs() < 1e-9 * x.max(1.0) {
        rounded as u64
    } else {
        x.ceil() as u64
    }
}

/// Names one applied fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultId(u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault #{}", self.0)
    }
}

/// The proxy's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyStats {
    /// Client connections accepted, ever.
    pub accepted: u64,
    /// Client connections open now.
    pub open: u64,
    /// Client connections closed at once because the upstream refused or did not answer.
    pub upstream_connect_failures: u64,
    /// Failed accepts (e.g. out of descriptors).
    pub accept_errors: u64,
    /// Every fault applied, in order.
    pub faults: Vec<FaultStats>,
}

/// What one fault did.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultStats {
    pub id: FaultId,
    pub fault: ProxyFault,
    pub fraction: f64,
    /// Still on: a lasting fault or an armed `CutMidEvent` not yet cleared (never a `Reset`,
    /// never after [`FaultProxy::stop`]).
    pub active: bool,
    /// Connections chosen: at apply, and for lasting faults also those accepted since that
    /// joined.
    pub selected: u64,
    /// Connections it actually did something to (reset, cut, delayed at least one chunk,
    /// throttled at least once, had bytes held, split mid-chunk).
    pub affected: u64,
}

/// What can go wrong driving the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("a fault's fraction must be above 0 and at most 1, got {0}")]
    InvalidFraction(f64),
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    #[error("a {kind} fault is already active ({id}); clear it first")]
    AlreadyActive { kind: &'static str, id: FaultId },
    #[error("no {0} was applied to this proxy")]
    UnknownFault(FaultId),
    #[error("{0} was already cleared")]
    AlreadyCleared(FaultId),
    #[error("the proxy is stopped")]
    Stopped,
    #[error("the proxy's accept task failed: {0}")]
    AcceptTask(#[source] tokio::task::JoinError),
}
