//! Client drivers: one per transport, each turning its protocol's bytes into `{seq, ts}` and
//! nothing more. Counting, latency and loss live once, in the worker's [`Stats`].
//!
//! Every client reconnects and resumes from the last seq it received, whether the server
//! closed the stream, the connection failed or churn made it leave: a fault costs latency,
//! never lines. Only the server can take lines away, and then it says so: a resume cursor
//! older than its history is answered `410` with the oldest seq it holds (after a restart
//! without history, or when its lag policy dropped a slow client), and the client counts the
//! lines before as lost by restart or to lag, never as loss, and resumes there.
//!
//! Reconnects back off with jitter, as a browser's would and as a reconnect storm needs:
//! the delay starts at the SSE server's `retry:` hint (an `EventSource` waits exactly that) or
//! 100 ms, doubles with each failure in a row (a session that delivered a line ends the row)
//! up to 16 times the start (at most 5 s, or the hint if longer), and each wait is drawn
//! uniformly from its upper half.

pub mod failure;
pub mod h2;
pub mod poll;
pub mod socket;
pub mod sse;
pub mod ws;

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use pushbench_feed::clock::unix_nanos;
use pushbench_protocol::{TopicId, Transport as Served};
use rand::Rng;
use tokio::time::{sleep, sleep_until, Instant};

use crate::control::RunControl;
use crate::publisher::find_marker;
use crate::record::{ClientSeqTracker, SeqOutcome};
use crate::scenario::Transport;
use crate::stats::Stats;
use crate::wire::connect_with;
use failure::{excerpt, SessionError};
use socket::{ClientStream, MeasuredSocket};

/// Everything a client needs to know.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    pub id: u32,
    pub transport: Transport,
    /// Where to connect.
    pub server: SocketAddr,
    /// The `Host` header (the target URL's authority).
    pub host: String,
    /// TLS (`https://`, `wss://` targets).
    pub tls: Option<crate::tls::TlsTarget>,
    /// Path (and query, if the target's URL template has one) of this client's stream or
    /// poll resource; clients append their own query parameters.
    pub path: String,
    pub source: Option<IpAddr>,
    pub topic: TopicId,
    /// When to connect (ramp-up).
    pub start_at: Instant,
    /// Mean connected time and pause, when clients churn.
    pub churn: Option<(Duration, Duration)>,
    /// Take seq and publish time from the `pb:SEQ:TS` marker the load generator's publisher
    /// put in each line (external targets) instead of the payload's `seq` and `ts`.
    pub marker_stamps: bool,
    /// How polls carry the cursor (feed-server's API, or a foreign target's).
    pub poll_cursor: crate::scenario::PollCursor,
    pub poll_interval: Duration,
    pub long_poll_wait: Duration,
    pub poll_limit: u32,
    /// A slow consumer: its socket is read no faster than this while the fault lasts.
    pub read_limit: Option<socket::ReadLimit>,
    /// The HTTP/2 transports: the connection group whose connection this client's streams
    /// share (`None` for the HTTP/1.1 ones).
    pub h2: Option<h2::H2Place>,
}

impl ClientSpec {
    /// A client of `path` on 127.0.0.1:8080, for unit tests: no TLS, no churn, feed-server's
    /// poll API polled back to back.
    #[cfg(test)]
    pub(crate) fn for_test(transport: Transport, path: &str, topic: &TopicId) -> Self {
        ClientSpec {
            id: 0,
            transport,
            server: "127.0.0.1:8080".parse().unwrap(),
            host: "127.0.0.1:8080".into(),
            tls: None,
            path: path.into(),
            source: None,
            topic: topic.clone(),
            start_at: Instant::now(),
            churn: None,
            marker_stamps: false,
            poll_cursor: crate::scenario::PollCursor::FeedServer,
            poll_interval: Duration::ZERO,
            long_poll_wait: Duration::from_secs(30),
            poll_limit: 1000,
            read_limit: None,
            h2: None,
        }
    }

    /// `path` with one more query parameter.
    pub fn path_with(&self, param: &str) -> String {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{sep}{param}", self.path)
    }
}

/// How a session (one connection's life) ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The step finished and the client has seen its end.
    Finished,
    /// The client chose to leave (churn); it comes back after a pause.
    Left,
    /// The run is over.
    Stopped,
    /// The connection failed or the server closed it; reconnect and resume.
    Failed(SessionError),
    /// The connection could not be made (already counted as a connect error with its
    /// reason); try again.
    ConnectFailed,
    /// The server no longer has the lines after the client's cursor: its history starts at
    /// `oldest_seq` (a `410` saying so). The client gives up the lines before and resumes.
    HistoryGone { oldest_seq: u64 },
}

/// The JSON fields a client needs from a line (`seq`, `ts`); the text itself is skipped, not
/// copied. The protocol crate's type, re-exported.
pub use pushbench_protocol::LineStamp;

/// When a session's connect began, and whether it opened a TCP connection. Connect time is a
/// connection's handshake (TCP, TLS, the protocol's own, to the first answer); over HTTP/2 most
/// sessions join a connection another client opened, and their short wait for a stream's
/// answer is no handshake: it would make connect time look cheaper the more clients share a
/// connection. Their wait is in time to first event instead.
#[derive(Clone, Copy, Debug)]
pub enum ConnectStart {
    /// The session opened its connection, starting at this instant: a connect-time sample.
    Opened(Instant),
    /// The session joined an HTTP/2 connection already open: no connect-time sample.
    Joined,
}

impl ConnectStart {
    /// The connect time so far, `None` for a session that joined an open connection.
    pub fn elapsed(self) -> Option<Duration> {
        match self {
            ConnectStart::Opened(at) => Some(at.elapsed()),
            ConnectStart::Joined => None,
        }
    }
}

impl From<Instant> for ConnectStart {
    fn from(at: Instant) -> Self {
        ConnectStart::Opened(at)
    }
}

/// State one client keeps across its sessions.
pub struct ClientState {
    pub tracker: ClientSeqTracker,
    /// When the current session's connection was established (Unix ns); lines scheduled
    /// before it are catch-up (backlog or resume), not live deliveries.
    pub session_start_ns: u64,
    /// Connect attempt start of the current session, for time to first event.
    pub connect_started: Instant,
    pub first_event_seen: bool,
    /// Whether any session of this client got as far as the server's answer.
    pub ever_connected: bool,
    /// The last SSE `id` the target sent, resent as `Last-Event-ID` on reconnect as a
    /// browser's EventSource does. Kept for external targets only, whose ids are their own
    /// (nchan: `SECONDS:COUNTER`); feed-server's ids are the seq, which the tracker has.
    pub last_event_id: Option<Box<str>>,
    /// The step's final seq once known, and the [`RunControl::finals_generation`] it was
    /// last looked up at: the hot path reads an atomic, not the control's lock.
    pub final_seq: Option<u64>,
    pub finals_seen: u64,
    /// Sessions that got as far as the server's answer: after the first, each is a reconnect.
    pub sessions_connected: u32,
    /// The fault that broke this client's session and when it hit (Unix ns), until a line
    /// arrives again: the time to recover.
    pub broken: Option<(usize, u64)>,
    /// The SSE server's `retry:` hint, the start of this client's reconnect delay.
    pub retry_hint: Option<Duration>,
    /// A slow consumer (its reads are limited while its fault lasts): never a bystander.
    pub slow: bool,
    /// The local port of the current session's connection (0 before the first), by which
    /// the fault proxy marks the connections it touched.
    pub local_port: u16,
}

impl Default for ClientState {
    fn default() -> Self {
        ClientState::new()
    }
}

impl ClientState {
    /// A client that has received nothing yet.
    pub fn new() -> Self {
        ClientState {
            tracker: ClientSeqTracker::new(0),
            session_start_ns: 0,
            connect_started: Instant::now(),
            first_event_seen: false,
            ever_connected: false,
            last_event_id: None,
            final_seq: None,
            finals_seen: 0,
            sessions_connected: 0,
            broken: None,
            retry_hint: None,
            slow: false,
            local_port: 0,
        }
    }

    /// Records that a session's connection was established (the server answered), `started`
    /// saying when its connect began (or that it joined an open HTTP/2 connection).
    pub fn connected(&mut self, stats: &RefCell<Stats>, started: impl Into<ConnectStart>) {
        self.connected_in(stats, started.into().elapsed());
    }

    /// [`Self::connected`] with the connect time measured by the caller; `None`: the session
    /// opened no connection, so it has no connect-time sample.
    pub fn connected_in(&mut self, stats: &RefCell<Stats>, connect_time: Option<Duration>) {
        self.ever_connected = true;
        let mut st = stats.borrow_mut();
        st.record_connect(connect_time);
        if self.sessions_connected > 0 {
            st.recorder.counters_mut().reconnects += 1;
            st.interval.record_reconnect();
            if let Some(fault) = self.broken.and_then(|(i, _)| st.recorder.fault_mut(i)) {
                fault.counts.reconnects += 1;
            }
        }
        self.sessions_connected = self.sessions_connected.saturating_add(1);
    }

    /// Records one received line.
    pub fn on_line(
        &mut self,
        stats: &RefCell<Stats>,
        control: &RunControl,
        seq: u64,
        ts: u64,
        now_ns: u64,
    ) {
        let mut st = stats.borrow_mut();
        if !self.first_event_seen {
            self.first_event_seen = true;
            st.record_first_event(self.connect_started.elapsed());
        }
        let outcome = self.tracker.observe(seq);
        let live = ts >= self.session_start_ns;
        if !live {
            st.count_catch_up();
        }
        if control.has_faults() {
            if let Some((i, from)) = self.broken.take() {
                if let Some(fault) = st.recorder.fault_mut(i) {
                    fault.record_recovery_us(now_ns.saturating_sub(from).div_ceil(1000));
                }
            }
            if let Some(fault) = control
                .fault_at(now_ns)
                .and_then(|(i, _)| st.recorder.fault_mut(i))
            {
                let c = &mut fault.counts;
                c.caught_up += u64::from(!live);
                match outcome {
                    SeqOutcome::Duplicate => c.duplicated += 1,
                    SeqOutcome::Gap { missing } => c.gaps_detected += missing,
                    _ => {}
                }
            }
        }
        let latency = (live && control.in_measure_window(ts)).then(|| now_ns.saturating_sub(ts));
        if let (true, Some(ns)) = (control.has_faults(), latency) {
            let us = ns.div_ceil(1000).max(1);
            match control.fault_at(now_ns) {
                None => st.recorder.record_calm_latency_us(us),
                Some((i, _))
                    if !self.slow
                        && self.broken.is_none()
                        && !control.touched_by_proxy(self.local_port) =>
                {
                    if let Some(fault) = st.recorder.fault_mut(i) {
                        fault.record_bystander_latency_us(us);
                    }
                }
                Some(_) => {}
            }
        }
        st.count_line(outcome, latency);
    }

    /// Parses and records a line payload.
    pub fn on_payload(
        &mut self,
        spec: &ClientSpec,
        stats: &RefCell<Stats>,
        control: &RunControl,
        json: &[u8],
        now_ns: u64,
    ) -> Result<(), SessionError> {
        if spec.marker_stamps {
            let (seq, ts) =
                find_marker(json).ok_or_else(|| SessionError::NoMarker(excerpt(json)))?;
            self.on_line(stats, control, seq, ts, now_ns);
            return Ok(());
        }
        let stamp: LineStamp =
            serde_json::from_slice(json).map_err(|source| SessionError::MalformedPayload {
                source,
                payload: excerpt(json),
            })?;
        self.on_line(stats, control, stamp.seq, stamp.ts, now_ns);
        Ok(())
    }
}

impl ClientState {
    /// Has this client everything its finished step will ever have? (External targets send no
    /// end signal; the final seq is what the publisher published.)
    pub fn has_all(&mut self, spec: &ClientSpec, control: &RunControl) -> bool {
        if self.final_seq.is_none() {
            let generation = control.finals_generation();
            if generation != self.finals_seen {
                self.finals_seen = generation;
                self.final_seq = control.final_seq(&spec.topic);
            }
        }
        self.final_seq
            .is_some_and(|f| self.tracker.last_seq() >= f && self.tracker.missing() == 0)
    }
}

/// Runs one client until its step finishes or the run stops; `group` is its HTTP/2
/// connection group (the `*-h2` transports).
pub async fn run_client(
    spec: ClientSpec,
    group: Option<Rc<h2::H2Group>>,
    stats: Rc<RefCell<Stats>>,
    control: Arc<RunControl>,
) {
    sleep_until(spec.start_at).await;
    let mut state = ClientState::new();
    state.slow = spec.read_limit.is_some();
    let mut failures: u32 = 0;
    let mut stop = control.stop_signal();
    loop {
        if control.is_stopped() {
            break;
        }
        let leave_at = spec.churn.map(|(mean, _)| {
            // Exponentially distributed session lengths: leaves are a Poisson process.
            let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
            Instant::now() + mean.mul_f64(-u.ln())
        });
        state.connect_started = Instant::now();
        state.first_event_seen = false;
        let session = async {
            let (spec, state, stats, control) = (&spec, &mut state, &stats, &*control);
            match (spec.transport.served_by(), group.as_deref()) {
                (Served::Sse, Some(g)) => {
                    h2::sse_session(g, spec, state, stats, control, leave_at).await
                }
                (Served::Poll, Some(g)) => {
                    h2::poll_session(g, spec, state, stats, control, leave_at).await
                }
                (Served::Sse, _) => sse::session(spec, state, stats, control, leave_at).await,
                (Served::Ws, _) => ws::session(spec, state, stats, control, leave_at).await,
                (Served::Poll, _) => poll::session(spec, state, stats, control, leave_at).await,
            }
        };
        let end = tokio::select! {
            end = session => end,
            _ = stop.changed() => SessionEnd::Stopped,
        };
        match end {
            SessionEnd::Finished | SessionEnd::Stopped => break,
            SessionEnd::Left => {
                failures = 0;
                let pause = spec.churn.map(|(_, p)| p).unwrap_or_default();
                sleep(pause).await;
            }
            SessionEnd::HistoryGone { oldest_seq } => {
                give_up_gone_lines(&mut state, &stats, &control, oldest_seq);
                // The server answered clearly: resume at once where its history starts.
            }
            SessionEnd::Failed(_) | SessionEnd::ConnectFailed => {
                // A session that delivered a line was healthy: its break starts a fresh back-off
                // (an EventSource waits `retry` again); one that failed before any line (the
                // server accepts and drops at once) keeps doubling.
                if state.first_event_seen {
                    failures = 0;
                }
                failures += 1;
                note_fault_hit(&mut state, &stats, &control, &end);
                if let SessionEnd::Failed(reason) = &end {
                    stats.borrow_mut().count_disconnect(reason);
                }
                sleep(reconnect_delay(state.retry_hint, failures)).await;
            }
        }
    }
    let final_seq = control.final_seq(&spec.topic);
    let unpublished = control.unpublished(&spec.topic);
    let mut st = stats.borrow_mut();
    st.finish_client(&mut state.tracker, final_seq, &unpublished);
    if !state.ever_connected {
        st.recorder.counters_mut().clients_never_connected += 1;
    }
}

/// Lines below `oldest_seq` the client never got are gone from the server: counted by why
/// (a restart wiped the history, or the lag policy dropped this client), never as loss.
fn give_up_gone_lines(
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    oldest_seq: u64,
) {
    let gone = state.tracker.skip_to(oldest_seq);
    let mut st = stats.borrow_mut();
    let fault = control.fault_at(now_ns());
    let by_restart = fault.is_some_and(|(_, f)| f.restart);
    let c = st.recorder.counters_mut();
    match by_restart {
        true => c.lost_by_restart += gone,
        false => c.lost_to_lag += gone,
    }
    if let Some(record) = fault.and_then(|(i, _)| st.recorder.fault_mut(i)) {
        match by_restart {
            true => record.counts.lost_by_restart += gone,
            false => record.counts.lost_to_lag += gone,
        }
    }
}

/// A session broke (or a reconnect failed) while a fault owned the time: the first break
/// starts this client's time to recover, from the fault's start for one-shot kinds, from now
/// for the kinds that last (an idle cut hits each connection when it has been idle long
/// enough).
fn note_fault_hit(
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    end: &SessionEnd,
) {
    let now = now_ns();
    let Some((i, fault)) = control.fault_at(now) else {
        return;
    };
    let mut st = stats.borrow_mut();
    let Some(record) = st.recorder.fault_mut(i) else {
        return;
    };
    // A client still recovering from this break only failed to come back: a poll client's
    // every request while the server is down is one failed attempt, not another break.
    match (end, state.broken.is_some()) {
        (SessionEnd::Failed(_), false) => record.counts.sessions_broken += 1,
        _ => record.counts.connect_errors += 1,
    }
    if state.broken.is_none() {
        let from = match fault.one_shot {
            true => fault.start_ns.min(now),
            false => now,
        };
        state.broken = Some((i, from));
    }
}

/// The wait before reconnect attempt `failures` (1 for the first after a break): see the
/// module doc.
pub fn reconnect_delay(retry_hint: Option<Duration>, failures: u32) -> Duration {
    let start = retry_hint.unwrap_or(Duration::from_millis(100));
    let cap = start.max(Duration::from_secs(5));
    let full = start
        .saturating_mul(1 << failures.saturating_sub(1).min(4))
        .min(cap);
    // "Equal jitter": half fixed, half random, so clients spread out but none comes back at
    // once after a failure.
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// A slow consumer's socket receive buffer (the kernel doubles it for bookkeeping): a
/// small window, so its slowness reaches the server (see [`connect_with`]).
const SLOW_CONSUMER_RECV_BUFFER: u32 = 16 * 1024;

/// Starts a session: notes when it began, connects and, for `https://`/`wss://` targets,
/// completes the TLS handshake (part of connect time). `Err` is how the session ends when the
/// connection cannot be made (counted as a connect error).
pub async fn open_session(
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &Rc<RefCell<Stats>>,
) -> Result<(ClientStream, Instant), SessionEnd> {
    let started = Instant::now();
    state.session_start_ns = now_ns();
    let recv_buffer = spec.read_limit.map(|_| SLOW_CONSUMER_RECV_BUFFER);
    let socket = match connect_with(spec.server, spec.source, recv_buffer).await {
        Ok(stream) => {
            state.local_port = stream.local_addr().map_or(0, |a| a.port());
            MeasuredSocket::new(stream, stats.clone()).throttled(spec.read_limit)
        }
        Err(e) => return Err(stats.borrow_mut().connect_failed(SessionError::Connect(e))),
    };
    match ClientStream::open(socket, spec.tls.as_ref()).await {
        Ok(stream) => Ok((stream, started)),
        Err(source) => Err(stats
            .borrow_mut()
            .connect_failed(SessionError::TlsHandshake {
                host: spec.host.clone(),
                source,
            })),
    }
}

/// Completes when a churning client is due to leave; never for one that stays.
pub async fn leave(leave_at: Option<Instant>) {
    match leave_at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Unix nanoseconds now: the receipt time of what was just read.
pub fn now_ns() -> u64 {
    unix_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_with_jitter_from_the_retry_hint() {
        for _ in 0..100 {
            let d = reconnect_delay(None, 1);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
            let d = reconnect_delay(None, 9);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1600));
            let d = reconnect_delay(Some(Duration::from_secs(2)), 1);
            assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
            let d = reconnect_delay(Some(Duration::from_secs(2)), 6);
            assert!(d <= Duration::from_secs(5), "capped");
        }
    }

    #[test]
    fn a_client_learns_its_final_seq_when_the_finals_move() {
        let mine = TopicId::new("a", "b", "1", "1").unwrap();
        let other = TopicId::new("a", "b", "1", "2").unwrap();
        let control = RunControl::new(0, u64::MAX);
        let spec = ClientSpec::for_test(Transport::Sse, "/", &mine);
        let mut state = ClientState::new();
        for seq in 1..=3 {
            state.tracker.observe(seq);
        }
        assert!(!state.has_all(&spec, &control), "no final seq yet");
        control.set_final_seq(other, 9);
        assert!(!state.has_all(&spec, &control), "another step finished");
        control.set_final_seq(mine.clone(), 4);
        assert!(!state.has_all(&spec, &control), "seq 4 still missing");
        assert_eq!(state.final_seq, Some(4), "looked up once the finals moved");
        state.tracker.observe(4);
        assert!(state.has_all(&spec, &control));
    }
}
