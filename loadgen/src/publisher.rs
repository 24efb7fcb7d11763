//! The load generator's own open-loop publisher, for external targets (servers that are not
//! `feed-server` and have no generator of their own).
//!
//! Each line's text starts with a marker, `pb:SEQ:TS `, carrying the line's sequence number
//! in its topic and its *scheduled* publish time (Unix ns). Clients look for the marker in
//! whatever the target sends (see [`find_marker`]), so latency and loss are measured the same
//! way whatever the target's own payload format.
//!
//! # Timing
//! Line `k` of a topic is due at `start + phase + k / rate` (phases scattered as the feed
//! generator scatters them). A dedicated OS thread keeps that schedule, with the kernel's
//! timer slack set to 1 ns, sleeping until shortly before a line is due and spinning the
//! rest (at most a tenth of its time): tokio's timer wheel has 1 ms granularity, and even a
//! precise thread sleep woke 50–130 µs late here (a VM's timer interrupt and idle exit), both
//! of which would be charged to the target as latency. The
//! thread hands each due line to its topic's task on a second thread that runs the POSTs
//! (reqwest, keep-alive pooled, `Connection: close` honoured). A topic's lines are POSTed one
//! after another, never two at once, so the target receives them in seq order.
//!
//! Both threads ask for SCHED_FIFO (lowest real-time priority): on a core shared with the
//! client workers, a time-shared thread's wake-up waits behind them for up to milliseconds
//! (measured: lag p99 0.7–2.6 ms with 1,000 clients on one core), which would read as the
//! target's latency. They do little work (one POST per line, the spin bounded as above), so
//! they cannot starve the workers. Measured with 10 clients of 10 topics at 20 lines/s on an
//! idle machine: clock wake-up p50 1 µs, POST lag p50 27 µs, p99 78 µs. Without CAP_SYS_NICE they stay time-shared and
//! [`PublisherStats::scheduling`] says so.
//!
//! Open loop: a slow target delays the next POST but not its stamp, so its slowness shows as
//! latency. What the load generator itself adds is measured: [`PublisherStats::lag_us`] is
//! how late each POST started, not counting time spent waiting for the topic's previous POST.
//!
//! # Failures
//! A failed POST is retried within its slot (until the topic's next line is due) when the
//! failure shows the target did not take the line: the connection could not be made, or an
//! answer of 408, 429 or 5xx. Any other failure (an error after the request was sent, a
//! timeout, another status) and a slot that runs out leave the line *unpublished*: its seq is
//! recorded, and where a client did not receive it, it is excluded from what the client was
//! expected to receive (it is not the target's loss). Every failed attempt is counted by
//! reason.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pushbench_protocol::TopicId;
use tokio::sync::mpsc;

use crate::record::new_histogram_us;
use crate::results::{Percentiles, PublisherStats, ThreadScheduling};

/// How long one POST may take before it counts as failed.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause before a retry; doubled on each further retry within the slot.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(2);
/// The clock thread wakes at least this often to notice a stop.
const MAX_SLEEP: Duration = Duration::from_millis(20);
/// The clock thread sleeps until this long before a line is due and spins the rest: a
/// sleeping thread wakes 50–130 µs late on this project's VM (timer interrupt, idle exit),
/// a spinning one on time.
const SPIN_BEFORE_DUE: Duration = Duration::from_micros(120);
/// At most this share of the clock thread's time goes to spinning: at high line rates the
/// spin before each line is shortened so the thread cannot take over its core.
const MAX_SPIN_SHARE: f64 = 0.1;

/// The marker a published line starts with.
pub fn marker(seq: u64, ts_ns: u64) -> String {
    format!("pb:{seq}:{ts_ns} ")
}

/// Finds the first `pb:SEQ:TS` marker in received bytes; `(seq, ts)`.
pub fn find_marker(data: &[u8]) -> Option<(u64, u64)> {
    find_markers(data).next()
}

/// Every `pb:SEQ:TS` marker in received bytes, in order (a poll answer may hold many).
pub fn find_markers(data: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 3 <= data.len() {
            let at = i;
            i += 1;
            if &data[at..at + 3] == b"pb:" {
                if let Some((found, len)) = parse_marker_at(&data[at + 3..]) {
                    i = at + 3 + len;
                    return Some(found);
                }
            }
        }
        None
    })
}

/// `SEQ:TS` at the start of `rest`: the pair and how many bytes it took.
fn parse_marker_at(rest: &[u8]) -> Option<((u64, u64), usize)> {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let n1 = digits(rest);
    if n1 == 0 || rest.get(n1) != Some(&b':') {
        return None;
    }
    let rest2 = &rest[n1 + 1..];
    let n2 = digits(rest2);
    if n2 == 0 {
        return None;
    }
    let seq = std::str::from_utf8(&rest[..n1]).ok()?.parse().ok()?;
    let ts = std::str::from_utf8(&rest2[..n2]).ok()?.parse().ok()?;
    Some(((seq, ts), n1 + 1 + n2))
}

/// What to publish.
#[derive(Clone, Debug)]
pub struct PublishPlan {
    /// One URL per topic, `{topic}` already filled in.
    pub targets: Vec<(TopicId, String)>,
    pub lines_per_sec: f64,
    /// Each line's length in bytes (marker included; padded with `x`).
    pub line_bytes: usize,
    /// When line 0 of the schedule is due, on the monotonic clock and on the Unix clock.
    pub start: Instant,
    pub start_unix_ns: u64,
    /// No line is due at or after `start + until`.
    pub until: Duration,
}

/// One topic's account at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicOutcome {
    pub topic: TopicId,
    /// The seq of the topic's last scheduled line (published or not).
    pub last_seq: u64,
    /// Seqs that were never published.
    pub unpublished: Vec<u64>,
}

/// What the publisher did.
#[derive(Clone, Debug)]
pub struct PublishReport {
    pub topics: Vec<TopicOutcome>,
    pub stats: PublisherStats,
    /// The lag and POST-time histograms behind `stats` (µs), kept for summary.json.
    pub lag_us: Histogram<u64>,
    pub post_us: Histogram<u64>,
}

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("starting the publisher's threads")]
    Thread(#[from] std::io::Error),
    #[error("the publisher's HTTP client")]
    Client(#[from] reqwest::Error),
    #[error("the publisher needs a rate above zero, got {0} lines/s")]
    NoRate(f64),
}

/// A running publisher: [`Publisher::finish`] waits for it.
pub struct Publisher {
    stop: Arc<AtomicBool>,
    clock: JoinHandle<ThreadScheduling>,
    io: JoinHandle<PublishReport>,
}

/// Asks the kernel to run the calling thread as soon as it wakes (SCHED_FIFO, lowest
/// real-time priority); what it got.
fn schedule_realtime() -> ThreadScheduling {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    match set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    ) {
        Ok(()) => ThreadScheduling::Realtime,
        Err(_) => ThreadScheduling::Normal,
    }
}

/// A line handed from the clock thread to its topic's task.
struct DueLine {
    seq: u64,
    due: Instant,
    ts_ns: u64,
}

impl Publisher {
    /// Starts the clock and POST threads; lines go out from `plan.start` on.
    pub fn start(plan: PublishPlan, client: reqwest::Client) -> Result<Self, PublishError> {
        if !(plan.lines_per_sec.is_finite() && plan.lines_per_sec > 0.0) {
            return Err(PublishError::NoRate(plan.lines_per_sec));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (senders, receivers): (Vec<_>, Vec<_>) = plan
            .targets
            .iter()
            .map(|_| mpsc::unbounded_channel::<DueLine>())
            .unzip();
        let clock = {
            let plan = plan.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("pushbench-publish-clock".into())
                .spawn(move || run_clock(&plan, senders, &stop))?
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let io = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("pushbench-publish-io".into())
                .spawn(move || {
                    let scheduling = schedule_realtime();
                    let mut report = runtime.block_on(run_posts(plan, client, receivers, stop));
                    report.stats.scheduling = scheduling;
                    report
                })?
        };
        Ok(Publisher { stop, clock, io })
    }

    /// Stops scheduling at once (Ctrl-C): lines not yet POSTed are left unpublished.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits until every due line was POSTed (or given up). Blocks: call it off the runtime.
    pub fn finish(self) -> PublishReport {
        let clock = self.clock.join().unwrap_or_default();
        let mut report = self.io.join().unwrap_or_else(|_| PublishReport {
            topics: Vec::new(),
            stats: PublisherStats::default(),
            lag_us: new_histogram_us(),
            post_us: new_histogram_us(),
        });
        // Real-time only when both threads got it.
        if clock == ThreadScheduling::Normal {
            report.stats.scheduling = ThreadScheduling::Normal;
        }
        report
    }
}

/// Where in each period a topic's lines fall, as a fraction of the period: the golden-ratio
/// sequence, as the feed generator scatters its topics (see its `phase_fraction`).
fn phase_fraction(topic: usize) -> f64 {
    const INVERSE_GOLDEN_RATIO: f64 = 0.618_033_988_749_894_9;
    ((topic as f64 + 1.0) * INVERSE_GOLDEN_RATIO).fract()
}

/// Offset of line `k` of `topic` from the plan's start.
fn due_offset(topic: usize, k: u64, lines_per_sec: f64) -> Duration {
    let period = 1.0 / lines_per_sec;
    Duration::from_secs_f64(period * (phase_fraction(topic) + k as f64))
}

/// The seq of `topic`'s last line in a schedule of `until` at `lines_per_sec` (0: none): the
/// number of lines the clock thread hands out for it, by the same comparison. Shards that do
/// not publish know each step's final seq from this.
pub fn scheduled_last_seq(topic: usize, lines_per_sec: f64, until: Duration) -> u64 {
    let estimate = until.as_secs_f64() * lines_per_sec - phase_fraction(topic);
    let mut count = estimate.max(0.0).floor() as u64;
    while due_offset(topic, count, lines_per_sec) < until {
        count += 1;
    }
    while count > 0 && due_offset(topic, count - 1, lines_per_sec) >= until {
        count -= 1;
    }
    count
}

/// How long before each line the clock thread spins, at `total_rate` lines/s over all topics.
fn spin_before_due(total_rate: f64) -> Duration {
    SPIN_BEFORE_DUE.min(Duration::from_secs_f64(MAX_SPIN_SHARE / total_rate))
}

/// The clock thread: hands every line to its topic's task when it is due.
fn run_clock(
    plan: &PublishPlan,
    senders: Vec<mpsc::UnboundedSender<DueLine>>,
    stop: &AtomicBool,
) -> ThreadScheduling {
    // Timer slack 1 ns: wake when asked, not up to 50 µs later (the kernel's default slack).
    let _ = nix::sys::prctl::set_timerslack(1);
    let scheduling = schedule_realtime();
    let spin = spin_before_due(plan.lines_per_sec * senders.len() as f64);
    let mut heap: BinaryHeap<Reverse<(Duration, usize, u64)>> = (0..senders.len())
        .map(|t| Reverse((due_offset(t, 0, plan.lines_per_sec), t, 0)))
        .filter(|Reverse((at, _, _))| *at < plan.until)
        .collect();
    while let Some(Reverse((offset, topic, k))) = heap.pop() {
        let due = plan.start + offset;
        loop {
            if stop.load(Ordering::Relaxed) {
                return scheduling;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            let left = due - now;
            if left <= spin {
                std::hint::spin_loop();
            } else {
                std::thread::sleep((left - spin).min(MAX_SLEEP));
            }
        }
        let line = DueLine {
            seq: k + 1,
            due,
            ts_ns: plan.start_unix_ns + offset.as_nanos() as u64,
        };
        // A closed channel means its task is gone (the run is stopping): nothing to do.
        let _ = senders[topic].send(line);
        let next = due_offset(topic, k + 1, plan.lines_per_sec);
        if next < plan.until {
            heap.push(Reverse((next, topic, k + 1)));
        }
    }
    scheduling
}

/// One topic's publishing record, merged into the report at the end.
struct TopicRecord {
    outcome: TopicOutcome,
    stats: PublisherStats,
    lag_us: Histogram<u64>,
    post_us: Histogram<u64>,
}

/// The POST thread: one task per topic, each POSTing its lines in order.
async fn run_posts(
    plan: PublishPlan,
    client: reqwest::Client,
    receivers: Vec<mpsc::UnboundedReceiver<DueLine>>,
    stop: Arc<AtomicBool>,
) -> PublishReport {
    let period = Duration::from_secs_f64(1.0 / plan.lines_per_sec);
    let tasks: Vec<_> = plan
        .targets
        .iter()
        .cloned()
        .zip(receivers)
        .map(|((topic, url), rx)| {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(publish_topic(
                topic,
                url,
                client,
                rx,
                period,
                plan.line_bytes,
                stop,
            ))
        })
        .collect();
    let mut report = PublishReport {
        topics: Vec::new(),
        stats: PublisherStats::default(),
        lag_us: new_histogram_us(),
        post_us: new_histogram_us(),
    };
    for task in tasks {
        let Ok(record) = task.await else { continue };
        let s = &mut report.stats;
        s.scheduled += record.stats.scheduled;
        s.published += record.stats.published;
        s.unpublished += record.stats.unpublished;
        s.failed_attempts += record.stats.failed_attempts;
        s.retries += record.stats.retries;
        for (reason, n) in record.stats.failures {
            *s.failures.entry(reason).or_default() += n;
        }
        let _ = report.lag_us.add(&record.lag_us);
        let _ = report.post_us.add(&record.post_us);
        report.topics.push(record.outcome);
    }
    report.stats.lag_us = Percentiles::of(&report.lag_us);
    report.stats.post_us = Percentiles::of(&report.post_us);
    report
}

/// How one POST attempt went.
enum Attempt {
    Published,
    /// Failed in a way that shows the target did not take the line: worth a retry.
    Refused(String),
    /// Failed after the request may have reached the target: not retried.
    Uncertain(String),
}

async fn publish_topic(
    topic: TopicId,
    url: String,
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<DueLine>,
    period: Duration,
    line_bytes: usize,
    stop: Arc<AtomicBool>,
) -> TopicRecord {
    let mut record = TopicRecord {
        outcome: TopicOutcome {
            topic,
            last_seq: 0,
            unpublished: Vec::new(),
        },
        stats: PublisherStats::default(),
        lag_us: new_histogram_us(),
        post_us: new_histogram_us(),
    };
    // When this topic's previous POST ended: time after it spent waiting is the target's.
    let mut previous_done: Option<Instant> = None;
    while let Some(line) = rx.recv().await {
        record.stats.scheduled += 1;
        record.outcome.last_seq = line.seq;
        if stop.load(Ordering::Relaxed) {
            record.stats.unpublished += 1;
            record.outcome.unpublished.push(line.seq);
            continue;
        }
        let mut text = marker(line.seq, line.ts_ns);
        while text.len() < line_bytes {
            text.push('x');
        }
        let ready = previous_done.map_or(line.due, |d| d.max(line.due));
        let slot_end = line.due + period;
        let mut pause = FIRST_RETRY_PAUSE;
        let mut first = true;
        let published = loop {
            let started = Instant::now();
            if first {
                record_us(&mut record.lag_us, started.saturating_duration_since(ready));
            } else {
                record.stats.retries += 1;
            }
            first = false;
            let attempt = post(&client, &url, &text).await;
            record_us(&mut record.post_us, started.elapsed());
            let reason = match attempt {
                Attempt::Published => break true,
                Attempt::Refused(reason) => {
                    let retry_at = Instant::now() + pause;
                    count_failure(&mut record.stats, reason);
                    if retry_at >= slot_end || stop.load(Ordering::Relaxed) {
                        break false;
                    }
                    tokio::time::sleep_until(retry_at.into()).await;
                    pause *= 2;
                    continue;
                }
                Attempt::Uncertain(reason) => reason,
            };
            count_failure(&mut record.stats, reason);
            break false;
        };
        previous_done = Some(Instant::now());
        if published {
            record.stats.published += 1;
        } else {
            record.stats.unpublished += 1;
            record.outcome.unpublished.push(line.seq);
        }
    }
    record
}

fn count_failure(stats: &mut PublisherStats, reason: String) {
    stats.failed_attempts += 1;
    *stats.failures.entry(reason).or_default() += 1;
}

/// Records a duration in µs, rounded up (a sub-microsecond lag still happened).
fn record_us(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_nanos() as u64).div_ceil(1000).max(1);
    h.saturating_record(us);
}

/// One POST of one line.
async fn post(client: &reqwest::Client, url: &str, text: &str) -> Attempt {
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(text.to_string())
        .timeout(POST_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = answer.status();
            // Read the body so the connection can be reused; its content does not matter.
            let _ = answer.bytes().await;
            if status.is_success() {
                Attempt::Published
            } else if status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
            {
                Attempt::Refused(format!("HTTP {}", status.as_u16()))
            } else {
                Attempt::Uncertain(format!("HTTP {}", status.as_u16()))
            }
        }
        Err(e) if e.is_connect() => Attempt::Refused(format!("connect: {}", error_chain(&e))),
        Err(e) if e.is_timeout() => Attempt::Uncertain(format!(
            "no answer within {}",
            humantime::format_duration(POST_TIMEOUT)
        )),
        Err(e) => Attempt::Uncertain(error_chain(&e)),
    }
}

/// An HTTP error with its causes, `a: b: c`, without the URL reqwest names (it differs per
/// topic, and reasons are counted together).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::chain_with(e, |text| match text.find(" for url (") {
        Some(i) => text[..i].to_string(),
        None => text,
    })
}

/// A summary of failures for a problem message: the three most frequent reasons.
pub fn top_reasons(failures: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = failures.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(3)
        .map(|(r, n)| format!("{n}× {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn spinning_takes_at_most_a_tenth_of_the_clock_thread() {
        assert_eq!(spin_before_due(500.0), SPIN_BEFORE_DUE);
        // 10,000 lines/s: 100 µs apart, so 10 µs of spin each.
        assert_eq!(spin_before_due(10_000.0), Duration::from_micros(10));
        assert!(spin_before_due(1e9) < Duration::from_micros(1));
    }

    use super::*;

    #[test]
    fn scheduled_last_seq_counts_what_the_clock_hands_out() {
        for (rate, until_ms) in [
            (10.0, 13_650),
            (3.0, 1),
            (20.0, 0),
            (7.5, 30_001),
            (0.5, 900),
        ] {
            let until = Duration::from_millis(until_ms);
            for topic in 0..20 {
                let counted = (0..)
                    .take_while(|k| due_offset(topic, *k, rate) < until)
                    .count() as u64;
                assert_eq!(
                    scheduled_last_seq(topic, rate, until),
                    counted,
                    "{rate} {until_ms} {topic}"
                );
            }
        }
    }

    #[test]
    fn markers_are_found_inside_any_payload() {
        let m = marker(42, 1_795_920_954_386_136_346);
        assert_eq!(
            find_marker(m.as_bytes()),
            Some((42, 1_795_920_954_386_136_346))
        );
        let json = format!(r#"{{"id":7,"text":"{m}xxxx"}}"#);
        assert_eq!(
            find_marker(json.as_bytes()),
            Some((42, 1_795_920_954_386_136_346))
        );
        assert_eq!(find_marker(b"pb: nope pb:1: pb::2"), None);
        assert_eq!(find_marker(b"x pb:3:4"), Some((3, 4)));
    }

    #[test]
    fn every_marker_of_a_body_is_found_in_order() {
        let body = format!(
            "{}xx\n{}yy\r\npb:bad {}",
            marker(1, 10),
            marker(2, 20),
            marker(3, 30)
        );
        let found: Vec<_> = find_markers(body.as_bytes()).collect();
        assert_eq!(found, vec![(1, 10), (2, 20), (3, 30)]);
        assert_eq!(find_markers(b"").count(), 0);
        // Adjacent markers without text between them.
        assert_eq!(
            find_markers(b"pb:1:2pb:3:4").collect::<Vec<_>>(),
            vec![(1, 2), (3, 4)]
        );
    }

    #[test]
    fn schedule_is_open_loop_and_scattered() {
        let rate = 10.0;
        // Line k of a topic is k periods after its first line.
        let first = due_offset(3, 0, rate);
        assert_eq!(due_offset(3, 5, rate) - first, Duration::from_millis(500));
        // Topics start at different points of the period, all within it.
        let phases: Vec<_> = (0..4).map(|t| due_offset(t, 0, rate)).collect();
        assert!(phases.iter().all(|p| *p < Duration::from_millis(100)));
        let mut sorted = phases.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
    }

    #[test]
    fn error_chains_drop_the_url_and_repeats() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "error sending request for url (http://x/y)",
            Some(Box::new(E(
                "connection closed",
                Some(Box::new(E("connection closed", None))),
            ))),
        );
        assert_eq!(error_chain(&e), "error sending request: connection closed");
    }
}
