//! The proxy: the accept loop, the registry of open connections and applied faults, and the
//! per-connection task that copies bytes and carries faults out (see the module doc above).
//!
//! Faults reach a connection's task through its own `watch` channel holding the faults armed
//! on it ([`Armed`]): applying or clearing a fault is a synchronous update of the selected
//! connections' channels, and each task reconciles its local state when its channel changes.
//! A fault's `affected` count is an atomic the tasks bump once per connection.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{
    FaultId, FaultStats, Fraction, PortMarks, ProxyError, ProxyFault, ProxyStats, CONNECT_TIMEOUT,
    CUT_MIN_WRITE, DOWN_BUFFER, MAX_HELD_CHUNKS, UP_BUFFER,
};

/// A deep backlog: a run opens thousands of connections within its ramp-up.
const LISTEN_BACKLOG: u32 = 4096;

/// The pause after an accept failed for want of descriptors or memory, so the loop does not
/// spin while none are freed (as hyper's and axum's accept loops do).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The proxy: listening on loopback, forwarding every connection to the upstream. Dropped
/// without [`FaultProxy::stop`], it still stops accepting and closes every connection (in
/// the background).
pub struct FaultProxy {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    /// Sending, or dropping the proxy, ends the accept loop and every connection.
    stop: oneshot::Sender<()>,
    accept: JoinHandle<()>,
}

/// Applies and clears faults, reads counters; usable from any task or thread.
#[derive(Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Binds 127.0.0.1:0 and starts accepting; each connection is forwarded to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_marking(upstream, PortMarks::default()).await
    }

    /// [`FaultProxy::start`], marking in `marks` the client port of every connection a fault
    /// affects (see [`PortMarks`]).
    pub async fn start_marking(upstream: SocketAddr, marks: PortMarks) -> io::Result<FaultProxy> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let listener = socket.listen(LISTEN_BACKLOG)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            marks,
        });
        let (stop, stopped) = oneshot::channel();
        let accept = tokio::spawn(accept_loop(listener, upstream, shared.clone(), stopped));
        Ok(FaultProxy {
            local_addr,
            shared,
            stop,
            accept,
        })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn handle(&self) -> ProxyHandle {
        ProxyHandle {
            shared: self.shared.clone(),
        }
    }

    /// Stops accepting, closes every connection (as a close does: FIN, or RST where unread
    /// bytes remain), and returns the final counters, every fault inactive.
    pub async fn stop(self) -> Result<ProxyStats, ProxyError> {
        {
            let mut state = self.shared.lock();
            state.stopped = true;
            for record in &mut state.faults {
                record.active = false;
            }
        }
        // An Err means the accept loop already ended, which is what is asked.
        let _ = self.stop.send(());
        self.accept.await.map_err(ProxyError::AcceptTask)?;
        Ok(self.shared.stats())
    }
}

impl ProxyHandle {
    /// Turns `fault` on for `fraction` of the open connections (the module doc's selection
    /// rule) and, if it lasts, for the share of new connections that join. `selected` is
    /// known at once; `affected` grows as the connections' tasks act (a reset within
    /// moments, the others as bytes flow), so read it at [`ProxyHandle::clear`] or later.
    pub fn apply(&self, fault: ProxyFault, fraction: Fraction) -> Result<FaultId, ProxyError> {
        fault.check()?;
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        if state.stopped {
            return Err(ProxyError::Stopped);
        }
        if fault != ProxyFault::Reset {
            if let Some(on) = state
                .faults
                .iter()
                .find(|r| r.active && r.fault.name() == fault.name())
            {
                return Err(ProxyError::AlreadyActive {
                    kind: fault.name(),
                    id: on.id,
                });
            }
        }
        let id = FaultId(state.faults.len() as u64 + 1);
        // The new fault owns the time from now: the connections it touches are its own.
        self.shared.marks.clear();
        let tally = Arc::new(Tally {
            affected: AtomicU64::new(0),
            marks: self.shared.marks.clone(),
        });
        let arm = Arm {
            fault,
            tally: tally.clone(),
        };
        let mut selected = 0;
        for (rank, conn) in state.conns.values().enumerate() {
            if fraction.selects(rank as u64) {
                conn.send_modify(|armed| *armed.slot(fault) = Some(arm.clone()));
                selected += 1;
            }
        }
        state.faults.push(Record {
            id,
            fault,
            fraction,
            // A reset is done once the tasks see it; a cut stays armed until cleared.
            active: fault != ProxyFault::Reset,
            cleared: false,
            selected,
            tally,
        });
        Ok(id)
    }

    /// Ends a fault (disarms it on every connection) and returns what it did. Every fault is
    /// cleared once, one-shot ones too (clearing a `Reset` only reads its counters).
    pub fn clear(&self, id: FaultId) -> Result<FaultStats, ProxyError> {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        let record = state
            .faults
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or(ProxyError::UnknownFault(id))?;
        if record.cleared {
            return Err(ProxyError::AlreadyCleared(id));
        }
        record.cleared = true;
        if record.active {
            record.active = false;
            for conn in state.conns.values() {
                // Only the connections it is armed on are woken.
                conn.send_if_modified(|armed| {
                    let slot = armed.slot(record.fault);
                    let ours = slot
                        .as_ref()
                        .is_some_and(|arm| Arc::ptr_eq(&arm.tally, &record.tally));
                    if ours {
                        *slot = None;
                    }
                    ours
                });
            }
        }
        Ok(record.stats())
    }

    pub fn stats(&self) -> ProxyStats {
        self.shared.stats()
    }
}

/// What the handle and the tasks share.
struct Shared {
    state: Mutex<State>,
    /// Client ports of the connections the latest fault affected.
    marks: PortMarks,
}

#[derive(Default)]
struct State {
    stopped: bool,
    /// The next connection's accept index.
    next_index: u64,
    accepted: u64,
    upstream_connect_failures: u64,
    accept_errors: u64,
    /// The open connections by accept index (so in accept order), each with its channel.
    conns: BTreeMap<u64, watch::Sender<Armed>>,
    /// Every fault applied; a fault's id is its position plus one.
    faults: Vec<Record>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics holding it; if one did, the counters are still worth reading.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> ProxyStats {
        let state = self.lock();
        ProxyStats {
            accepted: state.accepted,
            open: state.conns.len() as u64,
            upstream_connect_failures: state.upstream_connect_failures,
            accept_errors: state.accept_errors,
            faults: state.faults.iter().map(Record::stats).collect(),
        }
    }
}

struct Record {
    id: FaultId,
    fault: ProxyFault,
    fraction: Fraction,
    active: bool,
    cleared: bool,
    selected: u64,
    tally: Arc<Tally>,
}

impl Record {
    fn stats(&self) -> FaultStats {
        FaultStats {
            id: self.id,
            fault: self.fault,
            fraction: self.fraction.get(),
            active: self.active,
            selected: self.selected,
            affected: self.tally.affected.load(Ordering::Relaxed),
        }
    }
}

/// A fault's count of connections affected, bumped by the tasks.
#[derive(Debug, Default)]
struct Tally {
    affected: AtomicU64,
    marks: PortMarks,
}

/// One fault armed on one connection; the tally also tells faults apart.
#[derive(Clone, Debug)]
struct Arm {
    fault: ProxyFault,
    tally: Arc<Tally>,
}

/// The faults armed on one connection, at most one of each kind.
#[derive(Clone, Debug, Default)]
struct Armed {
    reset: Option<Arm>,
    idle_cut: Option<Arm>,
    latency: Option<Arm>,
    bandwidth: Option<Arm>,
    blackhole: Option<Arm>,
    cut_mid_event: Option<Arm>,
}

impl Armed {
    fn slot(&mut self, fault: ProxyFault) -> &mut Option<Arm> {
        match fault {
            ProxyFault::Reset => &mut self.reset,
            ProxyFault::IdleCut { .. } => &mut self.idle_cut,
            ProxyFault::Latency { .. } => &mut self.latency,
            ProxyFault::Bandwidth { .. } => &mut self.bandwidth,
            ProxyFault::Blackhole => &mut self.blackhole,
            ProxyFault::CutMidEvent => &mut self.cut_mid_event,
        }
    }
}

/// A connection's place in the registry; leaving it (however the task ends, aborts included)
/// removes the connection.
struct Registered {
    shared: Arc<Shared>,
    index: u64,
}

impl Registered {
    /// Registers a new connection, arming the lasting faults it joins; `None` once stopped.
    fn new(shared: &Arc<Shared>) -> Option<(Registered, watch::Receiver<Armed>)> {
        let mut guard = shared.lock();
        let state = &mut *guard;
        if state.stopped {
            return None;
        }
        let index = state.next_index;
        state.next_index += 1;
        state.accepted += 1;
        let mut armed = Armed::default();
        for record in &mut state.faults {
            if record.active && record.fault.lasts() && record.fraction.selects(index) {
                *armed.slot(record.fault) = Some(Arm {
                    fault: record.fault,
                    tally: record.tally.clone(),
                });
                record.selected += 1;
            }
        }
        let (tx, rx) = watch::channel(armed);
        state.conns.insert(index, tx);
        let registered = Registered {
            shared: shared.clone(),
            index,
        };
        Some((registered, rx))
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.lock().conns.remove(&self.index);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    // The connection tasks live in the set so that stopping can end them all; finished ones
    // are reaped as the loop goes, so it holds only the open ones.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let Some((registered, armed)) = Registered::new(&shared) else {
                        break;
                    };
                    conns.spawn(connection(client, upstream, registered, armed));
                }
                Err(e) => {
                    shared.lock().accept_errors += 1;
                    if out_of_resources(&e) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            },
        }
    }
    drop(listener);
    // Dropping a task's future drops its sockets: each connection is closed.
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One client connection, from dialing the upstream to closing both sockets.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    registered: Registered,
    armed: watch::Receiver<Armed>,
) {
    let _ = client.set_nodelay(true);
    let dialed = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await;
    let Ok(Ok(server)) = dialed else {
        registered.shared.lock().upstream_connect_failures += 1;
        // A reset, so the client's next read or write fails at once.
        let _ = client.set_zero_linger();
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut client, mut server) = (client, server);
    let port = client.peer_addr().map_or(0, |a| a.port());
    let end = Session::new(armed, port)
        .run(&mut client, &mut server)
        .await;
    match end {
        End::Finished => {}
        End::Reset => {
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
        End::Close => {
            let _ = client.shutdown().await;
            let _ = server.shutdown().await;
        }
    }
    drop(registered);
}

/// How a session ends; the sockets are closed accordingly after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Both directions ended with an end of stream passed on; nothing left to do.
    Finished,
    /// RST both sides: a reset fault, or a reset or error on one side passed on.
    Reset,
    /// FIN both sides: an idle cut or a cut mid-event.
    Close,
}

/// One direction's bytes: `[start, end)` read and not yet written, `[end, len)` free.
struct Pipe {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The read side gave an end of stream.
    eof: bool,
    /// The end of stream was passed on (the write side shut down).
    shut: bool,
}

impl Pipe {
    fn new(capacity: usize) -> Pipe {
        Pipe {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }

    fn pending(&self) -> usize {
        self.end - self.start
    }

    fn can_read(&self) -> bool {
        !self.eof && self.end < self.buf.len()
    }

    /// Makes room at the end: free once all is written (no copy, the usual case without
    /// faults), else moved down once the written head is at least the free tail, so the
    /// copying stays proportional to the bytes passed.
    fn tidy(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.start >= self.buf.len() - self.end {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The free tail to read into and the bytes to write, borrowed apart so that a read and
    /// a write can wait together.
    fn parts(&mut self) -> (&mut [u8], &[u8]) {
        let (filled, free) = self.buf.split_at_mut(self.end);
        (free, &filled[self.start..])
    }

    /// Whether the end of stream is due to be passed on.
    fn eof_due(&self) -> bool {
        self.eof && !self.shut && self.pending() == 0
    }
}

/// A fault armed on this connection, as the task holds it: counted once as affected.
struct Hit {
    tally: Arc<Tally>,
    counted: bool,
    /// The client's port, marked when the fault affects this connection.
    port: u16,
}

impl Hit {
    fn new(arm: &Arm, port: u16) -> Hit {
        Hit {
            tally: arm.tally.clone(),
            counted: false,
            port,
        }
    }

    fn count(&mut self) {
        if !self.counted {
            self.counted = true;
            self.tally.affected.fetch_add(1, Ordering::Relaxed);
            self.tally.marks.mark(self.port);
        }
    }

    fn is(&self, arm: &Option<Arm>) -> bool {
        arm.as_ref()
            .is_some_and(|arm| Arc::ptr_eq(&arm.tally, &self.tally))
    }
}

/// Whether a local fault still matches what is armed (both off, or the same fault).
fn unchanged(local: Option<&Hit>, armed: &Option<Arm>) -> bool {
    match local {
        None => armed.is_none(),
        Some(hit) => hit.is(armed),
    }
}

struct IdleCut {
    hit: Hit,
    after: Duration,
    last_byte: Instant,
    /// When to look next; moved on lazily, so a busy connection does not reset its timer on
    /// every read.
    check_at: Instant,
}

struct Latency {
    hit: Hit,
    delay: Duration,
    jitter: Duration,
}

struct Bandwidth {
    hit: Hit,
    bucket: Bucket,
}

struct CutMidEvent {
    hit: Hit,
    /// Bytes still to write before the cut, once the chunk to cut was read.
    left: Option<usize>,
}

/// A token bucket in bytes.
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(bytes_per_sec: u64, now: Instant) -> Bucket {
        let rate = bytes_per_sec as f64;
        // A tenth of a second's bytes: writes of a useful size without a long burst.
        let capacity = (rate / 10.0).clamp(1.0, DOWN_BUFFER as f64);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            at: now,
        }
    }

    /// How many of `want` bytes may go now, or when to look again.
    fn allow(&mut self, want: usize, now: Instant) -> (usize, Option<Instant>) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
        // Wait for a full write's worth (or a bucket's), not a byte at a time.
        let need = (want as f64).min(self.capacity);
        if self.tokens >= need {
            ((self.tokens.floor() as usize).min(want), None)
        } else {
            let wait = Duration::from_secs_f64((need - self.tokens) / self.rate);
            (0, Some(now + wait))
        }
    }

    fn spend(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

/// A connection's forwarding state and the faults armed on it.
struct Session {
    armed: watch::Receiver<Armed>,
    /// The client's port (its connection's peer port), for [`PortMarks`].
    port: u16,
    /// Client → server.
    up: Pipe,
    /// Server → client.
    down: Pipe,
    /// Down chunks under a latency fault, oldest first, with when each is due: they are the
    /// last `dated` bytes of `down`'s pending ones (bytes before them go at once).
    held: VecDeque<(usize, Instant)>,
    dated: usize,
    last_due: Option<Instant>,
    idle_cut: Option<IdleCut>,
    latency: Option<Latency>,
    bandwidth: Option<Bandwidth>,
    blackhole: Option<Hit>,
    cut_mid_event: Option<CutMidEvent>,
}

/// What woke the session.
enum Event {
    Armed(bool),
    UpRead(io::Result<usize>),
    UpWrote(io::Result<usize>),
    DownRead(io::Result<usize>),
    DownWrote(io::Result<usize>),
    Timer,
}

impl Session {
    fn new(armed: watch::Receiver<Armed>, port: u16) -> Session {
        Session {
            armed,
            port,
            up: Pipe::new(UP_BUFFER),
            down: Pipe::new(DOWN_BUFFER),
            held: VecDeque::new(),
            dated: 0,
            last_due: None,
            idle_cut: None,
            latency: None,
            bandwidth: None,
            blackhole: None,
            cut_mid_event: None,
        }
    }

    async fn run(mut self, client: &mut TcpStream, server: &mut TcpStream) -> End {
        let (mut client_r, mut client_w) = client.split();
        let (mut server_r, mut server_w) = server.split();
        // The lasting faults this connection joined when it was accepted.
        let initial = self.armed.borrow_and_update().clone();
        if let Some(end) = self.reconcile(&initial) {
            return end;
        }
        // One timer for the session, moved to whichever deadline is next.
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        let mut timer_at: Option<Instant> = None;
        loop {
            self.up.tidy();
            self.down.tidy();
            let now = Instant::now();
            let (allow_down, down_wait) = self.down_allowance(now);
            let deadline = match (self.idle_cut.as_ref().map(|i| i.check_at), down_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(at) = deadline {
                if timer_at != Some(at) {
                    sleep.as_mut().reset(at);
                    timer_at = Some(at);
                }
            }
            let read_up = self.up.can_read();
            let write_up = self.blackhole.is_none() && self.up.pending() > 0;
            let read_down = self.down.can_read()
                && (self.latency.is_none() || self.held.len() < MAX_HELD_CHUNKS);
            let (up_free, up_data) = self.up.parts();
            let (down_free, down_data) = self.down.parts();
            let down_data = &down_data[..allow_down];
            // Writes before reads: bytes already read go out first.
            let event = tokio::select! {
                biased;
                changed = self.armed.changed() => Event::Armed(changed.is_ok()),
                r = client_w.write(down_data), if allow_down > 0 => Event::DownWrote(r),
                r = server_w.write(up_data), if write_up => Event::UpWrote(r),
                r = server_r.read(down_free), if read_down => Event::DownRead(r),
                r = client_r.read(up_free), if read_up => Event::UpRead(r),
                () = &mut sleep, if deadline.is_some() => Event::Timer,
            };
            let now = Instant::now();
            match event {
                Event::Armed(false) => return End::Close,
                Event::Armed(true) => {
                    let armed = self.armed.borrow_and_update().clone();
                    if let Some(end) = self.reconcile(&armed) {
                        return end;
                    }
                }
                Event::UpRead(Ok(0)) => self.up.eof = true,
                Event::UpRead(Ok(n)) => {
                    self.up.end += n;
                    self.saw_bytes(now);
                }
                Event::DownRead(Ok(0)) => self.down.eof = true,
                Event::DownRead(Ok(n)) => self.read_down(n, now),
                Event::UpWrote(Ok(n)) if n > 0 => self.up.start += n,
                Event::DownWrote(Ok(n)) if n > 0 => {
                    if self.wrote_down(n) {
                        return End::Close;
                    }
                }
                // A reset or error on one side (or a write taking nothing) is passed on to
                // the other as a reset.
                Event::UpRead(Err(_))
                | Event::DownRead(Err(_))
                | Event::UpWrote(_)
                | Event::DownWrote(_) => return End::Reset,
                Event::Timer => {
                    timer_at = None;
                    if let Some(idle) = &mut self.idle_cut {
                        if now >= idle.check_at {
                            let quiet_until = idle.last_byte + idle.after;
                            if now >= quiet_until {
                                idle.hit.count();
                                return End::Close;
                            }
                            idle.check_at = quiet_until;
                        }
                    }
                }
            }
            // An end of stream follows the bytes before it (held ones too, in a blackhole).
            if self.blackhole.is_none() {
                if self.up.eof_due() {
                    if server_w.shutdown().await.is_err() {
                        return End::Reset;
                    }
                    self.up.shut = true;
                }
                if self.down.eof_due() {
                    if client_w.shutdown().await.is_err() {
                        return End::Reset;
                    }
                    self.down.shut = true;
                }
            }
            if self.up.shut && self.down.shut {
                return End::Finished;
            }
        }
    }

    /// Brings the local fault state in line with what is armed; `Some` ends the session.
    fn reconcile(&mut self, armed: &Armed) -> Option<End> {
        let now = Instant::now();
        if let Some(arm) = &armed.reset {
            Hit::new(arm, self.port).count();
            return Some(End::Reset);
        }
        if !unchanged(self.idle_cut.as_ref().map(|i| &i.hit), &armed.idle_cut) {
            self.idle_cut = armed.idle_cut.as_ref().map(|arm| {
                let ProxyFault::IdleCut { after } = arm.fault else {
                    unreachable!("the idle_cut slot holds idle_cut faults");
                };
                // The idle time counts from when the fault reached the connection.
                IdleCut {
                    hit: Hit::new(arm, self.port),
                    after,
                    last_byte: now,
                    check_at: now + after,
                }
            });
        }
        if !unchanged(self.latency.as_ref().map(|l| &l.hit), &armed.latency) {
            // Chunks held by a cleared latency fault go at once. The queue is allocated at
            // its bound while a latency fault is on, and freed after.
            self.held = match armed.latency {
                Some(_) => VecDeque::with_capacity(MAX_HELD_CHUNKS),
                None => VecDeque::new(),
            };
            self.dated = 0;
            self.last_due = None;
            self.latency = armed.latency.as_ref().map(|arm| {
                let ProxyFault::Latency { delay, jitter } = arm.fault else {
                    unreachable!("the latency slot holds latency faults");
                };
                Latency {
                    hit: Hit::new(arm, self.port),
                    delay,
                    jitter,
                }
            });
        }
        if !unchanged(self.bandwidth.as_ref().map(|b| &b.hit), &armed.bandwidth) {
            self.bandwidth = armed.bandwidth.as_ref().map(|arm| {
                let ProxyFault::Bandwidth { bytes_per_sec } = arm.fault else {
                    unreachable!("the bandwidth slot holds bandwidth faults");
                };
                Bandwidth {
                    hit: Hit::new(arm, self.port),
                    bucket: Bucket::new(bytes_per_sec, now),
                }
            });
        }
        if !unchanged(self.blackhole.as_ref(), &armed.blackhole) {
            self.blackhole = armed.blackhole.as_ref().map(|arm| Hit::new(arm, self.port));
            if let Some(hit) = &mut self.blackhole {
                // Bytes already read and not yet written are held from now on.
                if self.up.pending() > 0 || self.down.pending() > 0 {
                    hit.count();
                }
            }
        }
        let cut = self.cut_mid_event.as_ref().map(|c| &c.hit);
        if !unchanged(cut, &armed.cut_mid_event) {
            self.cut_mid_event = armed.cut_mid_event.as_ref().map(|arm| CutMidEvent {
                hit: Hit::new(arm, self.port),
                left: None,
            });
        }
        None
    }

    /// How many pending down bytes may be written now, and if that is held back by time, when
    /// to look again.
    fn down_allowance(&mut self, now: Instant) -> (usize, Option<Instant>) {
        let pending = self.down.pending();
        if pending == 0 || self.blackhole.is_some() {
            return (0, None);
        }
        let undated = pending - self.dated;
        let mut allow = match self.held.front() {
            _ if undated > 0 => undated,
            Some(&(len, due)) if due <= now => len,
            Some(&(_, due)) => return (0, Some(due)),
            None => unreachable!("dated bytes are held chunks"),
        };
        if let Some(left) = self.cut_mid_event.as_ref().and_then(|c| c.left) {
            allow = allow.min(left);
        }
        if let Some(bw) = &mut self.bandwidth {
            let (n, wait) = bw.bucket.allow(allow, now);
            if n < allow {
                bw.hit.count();
            }
            return (n, wait);
        }
        (allow, None)
    }

    /// A chunk of `n` bytes was read from the server.
    fn read_down(&mut self, n: usize, now: Instant) {
        let before = self.down.pending();
        self.down.end += n;
        self.saw_bytes(now);
        if let Some(latency) = &mut self.latency {
            let delay = draw_delay(latency.delay, latency.jitter);
            // Never before the chunk ahead of it: one stream keeps its order.
            let due = (now + delay).max(self.last_due.unwrap_or(now));
            if due > now {
                latency.hit.count();
            }
            self.held.push_back((n, due));
            self.dated += n;
            self.last_due = Some(due);
        }
        if let Some(cut) = &mut self.cut_mid_event {
            if cut.left.is_none() && n > CUT_MIN_WRITE {
                // Half the chunk, at least CUT_MIN_WRITE bytes, less than all of it.
                cut.left = Some(before + (n / 2).max(CUT_MIN_WRITE));
            }
        }
    }

    /// `n` down bytes were written to the client; true when that completes a cut.
    fn wrote_down(&mut self, n: usize) -> bool {
        let undated = self.down.pending() - self.dated;
        self.down.start += n;
        if undated == 0 {
            // The write came from the front chunk, and at most all of it.
            if let Some(front) = self.held.front_mut() {
                front.0 -= n;
                self.dated -= n;
                if front.0 == 0 {
                    self.held.pop_front();
                }
            }
        }
        if let Some(bw) = &mut self.bandwidth {
            bw.bucket.spend(n);
        }
        if let Some(cut) = &mut self.cut_mid_event {
            if let Some(left) = &mut cut.left {
                *left -= n;
                if *left == 0 {
                    cut.hit.count();
                    return true;
                }
            }
        }
        false
    }

    /// Bytes came in, from either side.
    fn saw_bytes(&mut self, now: Instant) {
        if let Some(idle) = &mut self.idle_cut {
            idle.last_byte = now;
        }
        if let Some(hit) = &mut self.blackhole {
            hit.count();
        }
    }
}

/// `delay` ± `jitter`, uniform, never below zero.
fn draw_delay(delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let jitter_ns = jitter.as_nanos().min(i64::MAX as u128) as i64;
    let offset = rand::rng().random_range(-jitter_ns..=jitter_ns);
    let ns = (delay.as_nanos().min(i64::MAX as u128) as i64).saturating_add(offset);
    Duration::from_nanos(ns.max(0) as u64)
}
