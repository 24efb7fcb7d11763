//! An open-loop log generator, so `feed-server` produces a realistic CI log feed by itself.
//!
//! Open loop: line `k` of a topic is *scheduled* at `origin + phase + k / rate`, whatever
//! happened before, and carries that scheduled time as its `ts`. If the generator (or the
//! server under it) falls behind, the lines go out late but keep their scheduled stamp, so the
//! delay shows up as delivery latency instead of silently lowering the rate (coordinated
//! omission, as wrk2 calls it).
//!
//! # The origin, and restarts
//! The origin is the generator's start unless [`GeneratorConfig::origin_unix_ns`] names one
//! ([`Generator::origin_unix_ns`] tells which it was). A server restarted with the origin of
//! the process it replaces continues that process's schedule, as if the feed had gone on while
//! no server ran: every line already due when the generator starts is skipped (those were due
//! while nothing served them, and went down with the old process), and each topic is opened
//! ([`crate::Backend::open`]) so that its first line gets the seq it has in the schedule, the
//! number of lines skipped plus one. Seqs therefore never start again at 1 after a restart
//! (clients would count duplicates); a client that resumes from before the restart is told
//! where history now starts (see the lag policy in the crate docs).
//!
//! On a shared backend that kept its topics (Redis Streams), a restarted generator finds them
//! still there: [`crate::Backend::open`] then changes nothing, and since the backend numbers
//! appended lines, the new lines follow the topic's last seq without a gap or a duplicate
//! (their `ts` still follows the schedule). The memory backend is unchanged: its topics are
//! new after a restart and are opened at the schedule's seq.
//!
//! Skipping costs a few binary searches per topic, not a replay of the skipped lines. The text
//! is the one part that is not replayed: it comes from one random stream shared by all topics,
//! and reproducing it would mean generating every lost line. A generator that skipped lines
//! seeds its text from the seed and the number skipped instead, so a restart is deterministic
//! for a given seed, origin and restart point, and one that skipped nothing (no origin, or an
//! origin not yet reached) writes exactly the text it always did. The `[elapsed]` stamp in the
//! text counts from the origin, so it continues across a restart too.
//!
//! # Backend errors
//! A line is never dropped because the backend failed ([`FeedError::Backend`]: a shared
//! backend out of reach). The lines of a failed append stay pending, with their scheduled
//! `ts`, and go out with the lines due since, after a back-off (10 ms doubling to 1 s) that
//! bounds how hard an absent backend is hammered; the outage then shows as latency. An
//! append whose answer was lost may have landed: before sending it again the generator
//! compares the topic's last seq with the one it knew. Creating the topics at the start is
//! retried the same way. Lines refused for good ([`FeedError::Finished`], too many topics)
//! are dropped as before.
//!
//! It runs on a dedicated OS thread rather than a tokio task: tokio's timer wheel has a 1 ms
//! granularity, which would add up to a millisecond of artificial lateness to every line,
//! while a thread's `sleep` wakes within tens of microseconds. Appends are driven through the
//! runtime's [`Handle`], so a backend doing real I/O works too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pushbench_protocol::generated;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::runtime::Handle;

use crate::backend::{FeedError, NewLine, SharedBackend};
use crate::clock::unix_nanos;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::topic::{TopicError, TopicId};

/// Length of generated lines, in bytes, uniform in `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineBytes {
    pub min: usize,
    pub max: usize,
}

impl std::str::FromStr for LineBytes {
    type Err = String;

    /// `80` (fixed) or `40..200` / `40-200` (uniform, inclusive).
    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("line length {s:?}: {v:?} is not a whole number of bytes"))
        };
        let (min, max) = match s.split_once("..").or_else(|| s.split_once('-')) {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let n = parse(s)?;
                (n, n)
            }
        };
        if min == 0 || min > max {
            return Err(format!(
                "line length {s:?}: need 1 <= min <= max, got {min}..{max}"
            ));
        }
        Ok(LineBytes { min, max })
    }
}

/// Periodic bursts on every topic (package installs, test output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Burst {
    /// Time between burst starts on one topic. Topics are staggered across this period.
    pub every: Duration,
    /// Lines per burst.
    pub lines: u32,
    /// Rate within a burst, lines per second.
    pub lines_per_sec: f64,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    pub org: String,
    pub repo: String,
    pub build: String,
    /// Topics `{org}/{repo}/builds/{build}/steps/1` … `/steps/{topics}`.
    pub topics: u32,
    /// Steady rate per topic, lines per second; 0 means only bursts.
    pub lines_per_sec: f64,
    pub line_bytes: LineBytes,
    pub burst: Option<Burst>,
    pub seed: u64,
    /// When the schedule starts, in Unix nanoseconds; `None`: when the generator starts. Lines
    /// already due at the start are skipped (see the module docs on restarts).
    pub origin_unix_ns: Option<u64>,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            org: generated::ORG.into(),
            repo: generated::REPO.into(),
            build: generated::BUILD.into(),
            topics: 10,
            lines_per_sec: 10.0,
            line_bytes: LineBytes { min: 40, max: 120 },
            burst: None,
            seed: 1,
            origin_unix_ns: None,
        }
    }
}

impl GeneratorConfig {
    /// The topics this generator writes to, named as [`generated::topics`] names them.
    pub fn topic_ids(&self) -> Result<Vec<TopicId>, TopicError> {
        generated::topics(&self.org, &self.repo, &self.build, self.topics)
    }
}

/// What the generator did, reported when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GeneratorReport {
    pub lines: u64,
    /// The largest delay between a line's scheduled time and its append.
    pub max_lateness: Duration,
}

/// One stream of scheduled lines: the steady rate or the bursts of one topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    /// Nanoseconds after the start.
    at_ns: u64,
    topic: usize,
    /// Index of the line within its stream.
    k: u64,
    burst: bool,
}

/// Where in each period a topic ticks, as a fraction of the period, in (0, 1).
///
/// Evenly spread, but not in index order: scenarios give the lowest-numbered topics the most
/// viewers (zipf), and ticking those back to back turned the most-watched lines into one
/// synchronized burst (ci-logs: the 30 most-watched of 1,000 steps, half of all deliveries,
/// ticked within 3% of every period, so at a fifth of a core p50 latency was 20-40 ms). Real
/// steps print independently of how many people watch them. The golden-ratio sequence
/// scatters consecutive topics across the period and still leaves at most three distinct gap
/// lengths between neighbours (the three-gap theorem), so the load stays even.
fn phase_fraction(topic: usize) -> f64 {
    const INVERSE_GOLDEN_RATIO: f64 = 0.618_033_988_749_894_9;
    ((topic as f64 + 1.0) * INVERSE_GOLDEN_RATIO).fract()
}

struct Schedule {
    config: GeneratorConfig,
    heap: BinaryHeap<Reverse<Due>>,
}

impl Schedule {
    #[cfg(test)]
    fn new(config: GeneratorConfig) -> Self {
        Self::after(config, None).0
    }

    /// The schedule from its first line on (`skip_through: None`), or from the first line of
    /// each stream scheduled after `skip_through` nanoseconds. Also returns, per topic, how many
    /// lines were skipped.
    ///
    /// A stream goes out in `k` order, one line after the other, so a line is already due if it
    /// or any line before it in its stream is scheduled no later than `skip_through`: what is
    /// skipped is the prefix before the first line scheduled later. Every skipped line of a
    /// topic is scheduled before every kept one of that topic, so the kept lines get the same
    /// seqs (skipped + 1 on) as in the schedule run from its start.
    fn after(config: GeneratorConfig, skip_through: Option<u64>) -> (Self, Vec<u64>) {
        let mut heap = BinaryHeap::new();
        let mut skipped = vec![0; config.topics as usize];
        for (topic, skipped) in skipped.iter_mut().enumerate() {
            if config.lines_per_sec > 0.0 {
                let k = skip_through.map_or(0, |now| {
                    first_later(now, |k| Self::steady_at(&config, topic, k))
                });
                *skipped += k;
                heap.push(Reverse(Due {
                    at_ns: Self::steady_at(&config, topic, k),
                    topic,
                    k,
                    burst: false,
                }));
            }
            if let Some(b) = config.burst {
                let k = skip_through.map_or(0, |now| {
                    // Bursts may overlap (more lines than fit in `every`), so times are not
                    // monotonic across bursts; each burst's last line is, and within a burst
                    // times rise.
                    let n = u64::from(b.lines.max(1));
                    let burst = first_later(now, |j| Self::burst_at(&config, topic, last_of(j, n)));
                    let first = burst.saturating_mul(n);
                    first_later_in(first, last_of(burst, n), now, |k| {
                        Self::burst_at(&config, topic, k)
                    })
                });
                *skipped += k;
                heap.push(Reverse(Due {
                    at_ns: Self::burst_at(&config, topic, k),
                    topic,
                    k,
                    burst: true,
                }));
            }
        }
        (Schedule { config, heap }, skipped)
    }

    /// Topics are spread over one period so they do not all tick at the same instant.
    fn steady_at(c: &GeneratorConfig, topic: usize, k: u64) -> u64 {
        let period = 1e9 / c.lines_per_sec;
        let phase = period * phase_fraction(topic);
        (phase + period * k as f64) as u64
    }

    /// Burst `j` of a topic starts at `(j + phase_fraction(topic)) * every`.
    fn burst_at(c: &GeneratorConfig, topic: usize, k: u64) -> u64 {
        let b = c.burst.expect("burst schedule without burst config");
        let per_burst = b.lines.max(1) as u64;
        let (j, m) = (k / per_burst, k % per_burst);
        let every = b.every.as_nanos() as f64;
        let start = every * (j as f64 + phase_fraction(topic));
        (start + m as f64 * 1e9 / b.lines_per_sec) as u64
    }

    fn next_due(&self) -> Option<Due> {
        self.heap.peek().map(|r| r.0)
    }

    /// Takes the earliest due line and schedules the one after it in the same stream.
    fn pop(&mut self) -> Option<Due> {
        let Reverse(due) = self.heap.pop()?;
        let k = due.k + 1;
        let at_ns = if due.burst {
            Self::burst_at(&self.config, due.topic, k)
        } else {
            Self::steady_at(&self.config, due.topic, k)
        };
        self.heap.push(Reverse(Due { at_ns, k, ..due }));
        Some(due)
    }

    /// Stops scheduling a topic (it was finished by someone else).
    fn drop_topic(&mut self, topic: usize) {
        self.heap.retain(|r| r.0.topic != topic);
    }
}

/// Index of the last line of burst `j`, bursts of `n` lines.
fn last_of(j: u64, n: u64) -> u64 {
    j.saturating_mul(n).saturating_add(n - 1)
}

/// The smallest `k` with `at(k) > now`, for `at` non-decreasing (and growing without bound).
fn first_later(now: u64, at: impl Fn(u64) -> u64) -> u64 {
    if at(0) > now {
        return 0;
    }
    let mut hi = 1u64;
    while at(hi) <= now {
        if hi >= u64::MAX / 2 {
            return u64::MAX;
        }
        hi *= 2;
    }
    first_later_in(hi / 2, hi, now, at)
}

/// The smallest `k` in `lo..=hi` with `at(k) > now`, for `at` non-decreasing on that range
/// and `at(hi) > now`.
fn first_later_in(mut lo: u64, mut hi: u64, now: u64, at: impl Fn(u64) -> u64) -> u64 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at(mid) > now {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

/// Makes plausible CI log text of an exact byte length.
struct TextMaker {
    rng: SmallRng,
    buf: String,
}

const WORDS: &[&str] = &[
    "Compiling",
    "Downloading",
    "test",
    "ok",
    "warning:",
    "serde",
    "tokio",
    "v1.0.3",
    "running",
    "passed",
    "src/lib.rs:42:7",
    "Finished",
    "release",
    "npm",
    "install",
    "--frozen-lockfile",
    "PASS",
    "FAIL",
    "cache",
    "hit",
];

impl TextMaker {
    fn new(seed: u64) -> Self {
        TextMaker {
            rng: SmallRng::seed_from_u64(seed),
            buf: String::new(),
        }
    }

    fn make(&mut self, seq_hint: u64, elapsed_ns: u64, bytes: LineBytes) -> String {
        let len = self.rng.random_range(bytes.min..=bytes.max);
        self.buf.clear();
        // Every 50th line is a progress bar redrawn with carriage returns, as CI logs have.
        if seq_hint % 50 == 49 {
            let mut pct = 0;
            while self.buf.len() < len {
                pct = (pct + 7) % 101;
                let _ = write!(self.buf, "\rDownloading {pct:>3}%");
            }
        } else {
            let _ = write!(self.buf, "[{:>9.3}s]", elapsed_ns as f64 / 1e9);
            while self.buf.len() < len {
                self.buf.push(' ');
                self.buf
                    .push_str(WORDS[self.rng.random_range(0..WORDS.len())]);
            }
        }
        // ASCII only, so truncating at any byte is safe.
        self.buf.truncate(len);
        self.buf.clone()
    }
}

/// A running generator.
pub struct Generator {
    origin_unix_ns: u64,
    thread: JoinHandle<GeneratorReport>,
}

impl Generator {
    /// When its schedule starts (Unix nanoseconds): the configured origin, or the generator's
    /// start. A replacement generator given this origin continues the same schedule.
    pub fn origin_unix_ns(&self) -> u64 {
        self.origin_unix_ns
    }

    /// Waits for the generator to stop (after the shutdown signal) and returns its report.
    pub fn join(self) -> std::thread::Result<GeneratorReport> {
        self.thread.join()
    }
}

/// Where the generator is in its schedule: nanoseconds since the origin, from a monotonic
/// clock read against the wall clock once, at the start.
struct ScheduleClock {
    origin_unix_ns: u64,
    start: Instant,
    /// Nanoseconds from the origin to `start` (negative if the origin is still to come).
    start_after_origin: i128,
}

impl ScheduleClock {
    /// The Unix time of a line scheduled `at_ns` after the origin: its `ts`.
    fn unix_ns(&self, at_ns: u64) -> u64 {
        self.origin_unix_ns.saturating_add(at_ns)
    }

    /// Nanoseconds since the origin, 0 before it.
    fn now_ns(&self) -> u64 {
        let ns = self.start.elapsed().as_nanos() as i128 + self.start_after_origin;
        ns.clamp(0, u64::MAX as i128) as u64
    }
}

/// Starts the generator on its own thread. It stops when `shutdown` triggers, and stops
/// writing to a topic once that topic is finished.
pub fn spawn(
    config: GeneratorConfig,
    backend: SharedBackend,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    runtime: Handle,
) -> Result<Generator, TopicError> {
    let topics = config.topic_ids()?;
    let start = Instant::now();
    let start_unix = unix_nanos();
    let origin_unix_ns = config.origin_unix_ns.unwrap_or(start_unix);
    let clock = ScheduleClock {
        origin_unix_ns,
        start,
        start_after_origin: start_unix as i128 - origin_unix_ns as i128,
    };
    let thread = std::thread::Builder::new()
        .name("feed-generator".into())
        .spawn(move || run(config, topics, clock, backend, metrics, shutdown, runtime))
        .expect("spawn generator thread");
    Ok(Generator {
        origin_unix_ns,
        thread,
    })
}

/// The text seed of a generator that skipped `skipped` lines: the configured seed if none
/// (so a run without a restart writes the text it always did), else one mixed with the
/// count, so a restart neither repeats the text of the start nor depends on chance.
fn text_seed(seed: u64, skipped: u64) -> u64 {
    if skipped == 0 {
        seed
    } else {
        seed ^ skipped.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

fn run(
    config: GeneratorConfig,
    topics: Vec<TopicId>,
    clock: ScheduleClock,
    backend: SharedBackend,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    runtime: Handle,
) -> GeneratorReport {
    let line_bytes = config.line_bytes;
    let seed = config.seed;
    // Without an origin the schedule starts now: nothing is due yet, nothing to skip.
    let skip_through = config.origin_unix_ns.map(|_| clock.now_ns());
    let (mut schedule, skipped) = Schedule::after(config, skip_through);
    let mut text = TextMaker::new(text_seed(seed, skipped.iter().sum()));
    let mut report = GeneratorReport::default();
    // Create every step's log up front (empty), as a CI system does when a step starts, so
    // viewers that connect before its first line find it instead of a 404; numbered so that
    // its first line gets its seq in the schedule. A topic the backend already holds (a
    // shared backend, a restarted publisher) is left as it is: the backend numbers the lines,
    // so they go on after its last seq. A backend that cannot be reached is retried: a topic
    // created by its first append instead would start again at seq 1.
    let mut known_last: Vec<u64> = Vec::with_capacity(topics.len());
    for (i, (topic, skipped)) in topics.iter().zip(&skipped).enumerate() {
        let mut backoff = RETRY_MIN;
        let last = loop {
            match runtime.block_on(backend.open(topic, skipped + 1)) {
                Ok(status) => {
                    if status.finished {
                        schedule.drop_topic(i);
                    }
                    break status.last_seq;
                }
                Err(FeedError::Backend(e)) if !shutdown.is_triggered() => {
                    tracing::warn!(topic = %topic, error = %e, ?backoff, "generator could not create its topic; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
                Err(e) => {
                    tracing::warn!(topic = %topic, error = %e, "generator could not create its topic");
                    break *skipped;
                }
            }
        };
        known_last.push(last);
    }
    if skipped.iter().any(|&n| n > 0) {
        tracing::info!(
            lines = skipped.iter().sum::<u64>(),
            "generator skipped the lines due before it started (its origin is in the past)"
        );
    }
    let mut pending: Vec<Vec<NewLine>> = vec![Vec::new(); topics.len()];
    // Topics with pending lines, so a wake costs what it publishes, not a scan of every
    // topic (ci-logs: 10,000 wakes/s over 1,000 topics).
    let mut touched: Vec<usize> = Vec::new();
    let mut produced: Vec<u64> = skipped;
    // Per topic, how many of its pending lines (a prefix) went out in an append that failed
    // without saying whether it landed (a reply lost to a timeout): checked before resending.
    let mut in_doubt: Vec<u64> = vec![0; topics.len()];
    // Per topic, whether to read its status before the next append: after the backend was
    // away, it may have come back without the topic (a Redis restarted without persistence),
    // and an append would then start it again at seq 1, below every cursor.
    let mut verify: Vec<bool> = vec![false; topics.len()];
    // Appends failing (the backend is away): the next try is not before `retry_at`.
    let mut backoff = RETRY_MIN;
    let mut retry_at = Instant::now();
    // Wake at least this often to notice shutdown.
    const MAX_SLEEP: Duration = Duration::from_millis(20);

    while !shutdown.is_triggered() {
        // Everything due by now, grouped per topic so each topic gets one append.
        let elapsed = clock.now_ns();
        while let Some(due) = schedule.next_due() {
            if due.at_ns > elapsed {
                break;
            }
            let due = schedule.pop().expect("peeked");
            let late = Duration::from_nanos(elapsed - due.at_ns);
            report.max_lateness = report.max_lateness.max(late);
            produced[due.topic] += 1;
            if pending[due.topic].is_empty() {
                touched.push(due.topic);
            }
            pending[due.topic].push(NewLine {
                ts: clock.unix_ns(due.at_ns),
                text: text.make(produced[due.topic], due.at_ns, line_bytes),
            });
        }
        if !touched.is_empty() && Instant::now() >= retry_at {
            let mut failed: Vec<usize> = Vec::new();
            for i in touched.drain(..) {
                let topic = &topics[i];
                if in_doubt[i] > 0 || verify[i] {
                    // Did the failed append land? The backend's last seq tells (appends are
                    // atomic: all of its lines or none). Someone else appending to a generated
                    // topic meanwhile would be taken for it.
                    match runtime.block_on(backend.status(topic)) {
                        Err(FeedError::UnknownTopic(_)) if known_last[i] > 0 => {
                            // The backend lost the topic. Continue its numbering, so that a
                            // reader's cursor is below the new lines (it is told the lines
                            // before them are gone: 410 / lagged) instead of above them.
                            let next = known_last[i] + 1;
                            tracing::warn!(topic = %topic, next_seq = next, "the backend lost this topic; continuing its seqs");
                            if let Err(e) = runtime.block_on(backend.open(topic, next)) {
                                tracing::debug!(topic = %topic, error = %e, "generator cannot open its topic again");
                                failed.push(i);
                                continue;
                            }
                            in_doubt[i] = 0;
                            verify[i] = false;
                        }
                        Ok(st) => {
                            verify[i] = false;
                            if st.last_seq >= known_last[i] + in_doubt[i] {
                                let n = in_doubt[i];
                                pending[i].drain(..n as usize);
                                report.lines += n;
                                metrics.appended(n);
                                known_last[i] = st.last_seq;
                            }
                            in_doubt[i] = 0;
                        }
                        Err(e) => {
                            tracing::debug!(topic = %topic, error = %e, "generator cannot check its last append");
                            failed.push(i);
                            continue;
                        }
                    }
                    if pending[i].is_empty() {
                        continue;
                    }
                }
                // A copy, so the lines can be sent again if the backend is away: the
                // generator never drops a line on a backend error, it sends it late, with its
                // scheduled `ts` (the outage shows as latency, as open loop wants).
                let lines = pending[i].clone();
                let n = lines.len() as u64;
                match runtime.block_on(backend.append(topic, lines)) {
                    Ok(receipt) => {
                        pending[i].clear();
                        report.lines += n;
                        metrics.appended(n);
                        known_last[i] = receipt.last_seq;
                    }
                    Err(FeedError::Finished(_)) => {
                        pending[i].clear();
                        schedule.drop_topic(i);
                    }
                    Err(FeedError::Backend(e)) => {
                        tracing::warn!(topic = %topic, error = %e, lines = n, ?backoff, "generator append failed; will send the lines again");
                        in_doubt[i] = n;
                        failed.push(i);
                        // Every topic, also those with nothing to send now: see `verify`.
                        verify.iter_mut().for_each(|v| *v = true);
                    }
                    Err(e) => {
                        // Refused for good (e.g. too many topics): retrying would not help.
                        pending[i].clear();
                        tracing::warn!(topic = %topic, error = %e, "generator append failed");
                    }
                }
            }
            if failed.is_empty() {
                backoff = RETRY_MIN;
            } else {
                retry_at = Instant::now() + backoff;
                backoff = (backoff * 2).min(RETRY_MAX);
                touched = failed;
            }
        }
        // Sleep until the next line is due (or the next retry), but not past MAX_SLEEP.
        let mut sleep = MAX_SLEEP;
        if let Some(next) = schedule.next_due() {
            sleep = sleep.min(Duration::from_nanos(
                next.at_ns.saturating_sub(clock.now_ns()),
            ));
        }
        if !touched.is_empty() {
            sleep = sleep.min(retry_at.saturating_duration_since(Instant::now()));
        }
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
    }
    report
}

/// Bounds of the back-off between retries while the backend is away.
const RETRY_MIN: Duration = Duration::from_millis(10);
const RETRY_MAX: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBackend;
    use std::collections::HashMap;

    #[test]
    fn line_bytes_parse() {
        assert_eq!(
            "80".parse::<LineBytes>().unwrap(),
            LineBytes { min: 80, max: 80 }
        );
        assert_eq!(
            "40..200".parse::<LineBytes>().unwrap(),
            LineBytes { min: 40, max: 200 }
        );
        assert!("0".parse::<LineBytes>().is_err());
        assert!("9..3".parse::<LineBytes>().is_err());
        assert!("x".parse::<LineBytes>().is_err());
    }

    #[test]
    fn schedule_is_open_loop_and_staggered() {
        let config = GeneratorConfig {
            topics: 2,
            lines_per_sec: 10.0,
            burst: Some(Burst {
                every: Duration::from_secs(1),
                lines: 3,
                lines_per_sec: 1000.0,
            }),
            ..GeneratorConfig::default()
        };
        let mut s = Schedule::new(config);
        let mut firsts = Vec::new();
        for _ in 0..8 {
            let d = s.pop().unwrap();
            firsts.push((d.at_ns, d.topic, d.burst));
        }
        // Steady lines every 100 ms from each topic's phase: topic 1 (phase 0.236) first,
        // then topic 0 (phase 0.618), then topic 1 again one period later.
        let phase = |t: usize| (100e6 * phase_fraction(t)) as u64;
        assert_eq!(firsts[0], (phase(1), 1, false));
        assert_eq!(firsts[1], (phase(0), 0, false));
        assert_eq!(firsts[2].1, 1);
        assert!(
            firsts[2].0.abs_diff(phase(1) + 100_000_000) <= 1,
            "{firsts:?}"
        );
        // Scheduled times never go backwards.
        assert!(firsts.windows(2).all(|w| w[0].0 <= w[1].0));
        // Topic 0's bursts start at its phase of each second, three lines 1 ms apart.
        let mut burst0: Vec<u64> = Vec::new();
        while burst0.len() < 4 {
            let d = s.pop().unwrap();
            if d.burst && d.topic == 0 {
                burst0.push(d.at_ns);
            }
        }
        let start = (1e9 * phase_fraction(0)) as u64;
        let expected = [
            start,
            start + 1_000_000,
            start + 2_000_000,
            start + 1_000_000_000,
        ];
        for (got, want) in burst0.iter().zip(expected) {
            assert!(got.abs_diff(want) <= 1, "{burst0:?} vs {expected:?}");
        }
    }

    /// Every (topic, stream, k) the full schedule pops, in order, up to `until` ns.
    fn popped_until(s: &mut Schedule, until: u64) -> Vec<Due> {
        let mut out = Vec::new();
        while s.next_due().is_some_and(|d| d.at_ns <= until) {
            out.push(s.pop().unwrap());
        }
        out
    }

    #[test]
    fn a_schedule_started_late_skips_exactly_what_was_due_and_goes_on_the_same() {
        let steady_and_bursts = GeneratorConfig {
            topics: 5,
            lines_per_sec: 7.0,
            burst: Some(Burst {
                every: Duration::from_millis(700),
                lines: 20,
                lines_per_sec: 100.0,
            }),
            ..GeneratorConfig::default()
        };
        // Bursts longer than their period overlap: a stream's times then fall back at each
        // burst start, and "already due" must still be a prefix of the stream.
        let overlapping = GeneratorConfig {
            lines_per_sec: 0.0,
            burst: Some(Burst {
                every: Duration::from_millis(100),
                lines: 30,
                lines_per_sec: 100.0,
            }),
            ..steady_and_bursts.clone()
        };
        for config in [steady_and_bursts, overlapping] {
            for now in [
                0,
                1,
                99_999_999,
                1_234_567_890,
                3_000_000_000,
                10_000_000_001,
            ] {
                let mut full = Schedule::new(config.clone());
                let (mut late, skipped) = Schedule::after(config.clone(), Some(now));
                // The full schedule's lines, in stream order: those of a stream up to its
                // first one scheduled after `now` are the ones the late schedule skips.
                let horizon = now + 5_000_000_000;
                let all = popped_until(&mut full, horizon);
                let mut first_kept: HashMap<(usize, bool), u64> = HashMap::new();
                for d in &all {
                    if d.at_ns > now {
                        first_kept.entry((d.topic, d.burst)).or_insert(d.k);
                    }
                }
                let kept: Vec<&Due> = all
                    .iter()
                    .filter(|d| d.k >= first_kept[&(d.topic, d.burst)])
                    .collect();
                for (topic, skipped) in skipped.iter().enumerate() {
                    let want = all.iter().filter(|d| d.topic == topic).count()
                        - kept.iter().filter(|d| d.topic == topic).count();
                    assert_eq!(*skipped, want as u64, "topic {topic} at {now}");
                }
                // Then the same lines in the same order: the same seqs, no line twice.
                let late_all = popped_until(&mut late, horizon);
                assert_eq!(late_all.len(), kept.len(), "at {now}");
                assert!(late_all.iter().zip(&kept).all(|(a, b)| a == *b), "at {now}");
                assert!(late_all.iter().all(|d| d.at_ns > now || d.burst));
            }
        }
        // Nothing to skip without an origin.
        let (_, skipped) = Schedule::after(GeneratorConfig::default(), None);
        assert!(skipped.iter().all(|&n| n == 0));
    }

    #[test]
    fn first_later_finds_the_boundary() {
        let at = |k: u64| k * 10;
        assert_eq!(first_later(0, at), 1);
        assert_eq!(first_later(9, at), 1);
        assert_eq!(first_later(10, at), 2);
        assert_eq!(first_later(12_345, at), 1235);
        assert_eq!(first_later(5, |k| k * 10 + 6), 0);
        assert_eq!(first_later_in(3, 7, 45, at), 5);
        assert_eq!(first_later(u64::MAX - 1, |k| k), u64::MAX);
    }

    /// One steady step's schedule, or `topics` of them, at `lines_per_sec`, with its origin
    /// `ago_ns` in the past: what a server restarted that far into its predecessor's schedule
    /// is given.
    fn schedule_started_ago(topics: u32, lines_per_sec: f64, ago_ns: u64) -> GeneratorConfig {
        GeneratorConfig {
            topics,
            lines_per_sec,
            origin_unix_ns: Some(unix_nanos() - ago_ns),
            ..GeneratorConfig::default()
        }
    }

    /// Starts a generator of `config` on `backend`, appending through `rt`.
    fn start(
        config: &GeneratorConfig,
        backend: &SharedBackend,
        shutdown: &Shutdown,
        rt: &tokio::runtime::Runtime,
    ) -> Generator {
        spawn(
            config.clone(),
            backend.clone(),
            Metrics::new(10),
            shutdown.clone(),
            rt.handle().clone(),
        )
        .unwrap()
    }

    /// Checks that `lines` are the first topic's schedule from its line `k0` on: seqs
    /// contiguous from `k0 + 1` (no line twice), each stamped with its scheduled time.
    fn assert_on_schedule(lines: &[Arc<crate::Line>], config: &GeneratorConfig, k0: u64) {
        let origin = config.origin_unix_ns.expect("a schedule with an origin");
        for (i, line) in lines.iter().enumerate() {
            let k = k0 + i as u64;
            assert_eq!(line.seq, k + 1, "no gap, no duplicate");
            assert_eq!(line.ts, origin + Schedule::steady_at(config, 0, k));
        }
    }

    /// A server restarted 2.5 s into its predecessor's schedule: topic 1 (phase 0.618 at
    /// 10 lines/s, lines at 61.8 ms + k × 100 ms) had 25 lines due, so its first line is 26.
    #[test]
    fn a_generator_with_a_past_origin_continues_its_schedule() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend: SharedBackend = Arc::new(MemoryBackend::default());
        let shutdown = Shutdown::new();
        let config = schedule_started_ago(2, 10.0, 2_500_000_000);
        let origin = config.origin_unix_ns.unwrap();
        let ids = config.topic_ids().unwrap();
        let skipped = first_later(2_500_000_000, |k| Schedule::steady_at(&config, 0, k));
        assert_eq!(skipped, 25);
        let handle = start(&config, &backend, &shutdown, &rt);
        assert_eq!(handle.origin_unix_ns(), origin);
        // The topic is opened before its first line is due, at the seq that line will get.
        let status = loop {
            if let Ok(st) = rt.block_on(backend.status(&ids[0])) {
                break st;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // The expected count holds if the generator started within 61 ms of the 2.5 s mark
        // (it skips lines due by then: 24 is at 2,461.8 ms, 25 at 2,561.8 ms).
        let started_by = unix_nanos() - origin;
        assert!(started_by < 2_560_000_000, "generator too slow to start");
        assert_eq!((status.last_seq, status.oldest_seq), (25, 26));
        std::thread::sleep(Duration::from_millis(350));
        shutdown.trigger();
        let report = handle.join().unwrap();
        let read = rt.block_on(backend.read(&ids[0], None, 100)).unwrap();
        assert!(read.lines.len() >= 3, "{report:?} {:?}", read.lines);
        // Contiguous from 26, stamped with their scheduled times.
        assert_on_schedule(&read.lines, &config, skipped);
        // Appends came at the schedule's pace, not as a catch-up burst of the skipped lines.
        assert!(report.lines <= 2 * 5, "{report:?}");
        assert!(
            report.max_lateness < Duration::from_millis(50),
            "{report:?}"
        );
    }

    /// A memory backend that is away for a while: its first appends fail, some after landing
    /// (a lost reply), and so do its first opens.
    struct Flaky {
        inner: MemoryBackend,
        fail_opens: std::sync::atomic::AtomicU32,
        /// Appends to fail; the odd-numbered ones land first.
        fail_appends: std::sync::atomic::AtomicU32,
    }

    fn take_one(n: &std::sync::atomic::AtomicU32) -> Option<u32> {
        n.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |v| v.checked_sub(1),
        )
        .ok()
    }

    #[async_trait::async_trait]
    impl crate::Backend for Flaky {
        async fn append(
            &self,
            topic: &TopicId,
            lines: Vec<NewLine>,
        ) -> Result<crate::AppendReceipt, FeedError> {
            match take_one(&self.fail_appends) {
                Some(left) if left % 2 == 1 => {
                    self.inner.append(topic, lines).await?;
                    Err(FeedError::Backend("reply lost".into()))
                }
                Some(_) => Err(FeedError::Backend("away".into())),
                None => self.inner.append(topic, lines).await,
            }
        }
        async fn open(
            &self,
            topic: &TopicId,
            next_seq: u64,
        ) -> Result<crate::TopicStatus, FeedError> {
            if take_one(&self.fail_opens).is_some() {
                return Err(FeedError::Backend("away".into()));
            }
            self.inner.open(topic, next_seq).await
        }
        async fn finish(&self, topic: &TopicId) -> Result<crate::TopicStatus, FeedError> {
            self.inner.finish(topic).await
        }
        async fn status(&self, topic: &TopicId) -> Result<crate::TopicStatus, FeedError> {
            self.inner.status(topic).await
        }
        async fn read(
            &self,
            topic: &TopicId,
            after: Option<u64>,
            limit: usize,
        ) -> Result<crate::ReadBatch, FeedError> {
            self.inner.read(topic, after, limit).await
        }
        async fn subscribe(
            &self,
            topic: &TopicId,
            after: Option<u64>,
            max_batch: usize,
        ) -> Result<crate::Subscription, FeedError> {
            self.inner.subscribe(topic, after, max_batch).await
        }
        async fn topics(&self) -> Vec<TopicId> {
            self.inner.topics().await
        }
        async fn disconnect(
            &self,
            topic: &TopicId,
            fraction: f64,
        ) -> Result<crate::Disconnected, FeedError> {
            self.inner.disconnect(topic, fraction).await
        }
    }

    /// A backend away at the start and for the first appends: no line is lost or sent twice,
    /// each keeps its scheduled `ts`, and the topic is numbered as the schedule says.
    #[test]
    fn backend_errors_delay_lines_but_never_drop_or_repeat_them() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let flaky = Arc::new(Flaky {
            inner: MemoryBackend::default(),
            fail_opens: 3.into(),
            // Retried after 10, 20, 40 and 80 ms: all sent by 150 ms.
            fail_appends: 4.into(),
        });
        let backend: SharedBackend = flaky.clone();
        let shutdown = Shutdown::new();
        // 2 s into the schedule at 100 lines/s: ~200 lines skipped, the first sent is ~201,
        // although the topic could only be opened (at that seq) on the fourth try.
        let config = schedule_started_ago(1, 100.0, 2_000_000_000);
        let started = unix_nanos() - config.origin_unix_ns.unwrap();
        let ids = config.topic_ids().unwrap();
        let handle = start(&config, &backend, &shutdown, &rt);
        std::thread::sleep(Duration::from_millis(700));
        shutdown.trigger();
        let report = handle.join().unwrap();
        assert_eq!(
            flaky.fail_opens.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert_eq!(
            flaky.fail_appends.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        let read = rt.block_on(backend.read(&ids[0], None, 10_000)).unwrap();
        let first = read.lines[0].seq;
        let k0 = first - 1;
        let skipped_at = |ns: u64| first_later(ns, |k| Schedule::steady_at(&config, 0, k));
        assert!(
            (skipped_at(started)..=skipped_at(started + 50_000_000)).contains(&k0),
            "first seq {first}: not numbered as the schedule says"
        );
        assert_on_schedule(&read.lines, &config, k0);
        assert_eq!(report.lines, read.lines.len() as u64, "{report:?}");
        // ~70 lines due in 700 ms, none dropped for the failures.
        assert!(read.lines.len() >= 60, "{}", read.lines.len());
    }

    #[test]
    fn phases_are_even_and_not_in_topic_order() {
        let topics = 1000;
        let mut phases: Vec<f64> = (0..topics).map(phase_fraction).collect();
        // Scenarios give the lowest-numbered topics the most viewers: those must not tick
        // together. The 30 most-watched steps of ci-logs span most of the period.
        let top: Vec<f64> = phases[..30].to_vec();
        let span =
            top.iter().cloned().fold(0.0, f64::max) - top.iter().cloned().fold(1.0, f64::min);
        assert!(span > 0.9, "30 first topics span only {span} of the period");
        // And all of them together still cover the period evenly: no gap between neighbours
        // is more than twice the even spacing.
        phases.sort_by(f64::total_cmp);
        assert!(phases.iter().all(|p| *p > 0.0 && *p < 1.0));
        let widest = phases.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(widest <= 2.0 / topics as f64, "widest gap {widest}");
    }

    #[test]
    fn text_has_exact_length() {
        let mut t = TextMaker::new(7);
        for i in 0..200 {
            let s = t.make(i, i * 1000, LineBytes { min: 5, max: 300 });
            assert!((5..=300).contains(&s.len()));
        }
        let s = t.make(49, 0, LineBytes { min: 64, max: 64 });
        assert_eq!(s.len(), 64);
        assert!(s.contains('\r'));
    }

    #[test]
    fn generates_stamped_lines_and_stops_at_finish() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend: SharedBackend = Arc::new(MemoryBackend::default());
        let shutdown = Shutdown::new();
        let config = GeneratorConfig {
            topics: 3,
            lines_per_sec: 200.0,
            ..GeneratorConfig::default()
        };
        let ids = config.topic_ids().unwrap();
        let before = unix_nanos();
        let handle = start(&config, &backend, &shutdown, &rt);
        // Every topic exists from the start, before its first line.
        std::thread::sleep(Duration::from_millis(20));
        for id in &ids {
            rt.block_on(backend.status(id))
                .expect("topic created up front");
        }
        std::thread::sleep(Duration::from_millis(280));
        rt.block_on(backend.finish(&ids[0])).unwrap();
        let finished_at = rt.block_on(backend.status(&ids[0])).unwrap().last_seq;
        std::thread::sleep(Duration::from_millis(100));
        shutdown.trigger();
        let report = handle.join().unwrap();
        assert!(report.lines > 100, "{report:?}");
        let st = rt.block_on(backend.status(&ids[0])).unwrap();
        assert_eq!(st.last_seq, finished_at, "no append after finish");
        let read = rt.block_on(backend.read(&ids[1], Some(0), 1000)).unwrap();
        assert!(read.lines.len() > 50);
        let mut prev_ts = before;
        for (i, l) in read.lines.iter().enumerate() {
            assert_eq!(l.seq, i as u64 + 1);
            assert!(l.ts >= prev_ts - 5_000_000, "ts roughly monotonic");
            prev_ts = l.ts;
        }
        // Lines are 5 ms apart per topic: scheduled stamps, not append times.
        let gaps: Vec<u64> = read.lines.windows(2).map(|w| w[1].ts - w[0].ts).collect();
        assert!(
            gaps.iter().all(|g| (4_900_000..=5_100_000).contains(g)),
            "{gaps:?}"
        );
    }
}
