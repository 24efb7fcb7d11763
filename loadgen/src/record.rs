//! Per-worker recording of what the load generator observes, merging, and histogram output.
//!
//! Each worker task owns one [`Recorder`] (HdrHistograms of delivery latency, handshake time and
//! time to first event, plus [`Counters`]) and one [`IntervalRecorder`] for the per-second time
//! series; a histogram costs ~190 KB, so there is never one per connection. Each connection owns
//! only a [`ClientSeqTracker`] (48 bytes while events arrive in order), which classifies every
//! received sequence number as in order, gap, late fill or duplicate.
//!
//! The collector merges the workers' recorders and snapshots. Percentiles are never averaged:
//! only histograms are merged, and percentiles are read from the merged histogram
//! ([`percentiles_us`], [`write_hgrm`], [`IntervalLog`]).
//!
//! All histogram values are microseconds. Values above one hour are clamped to one hour (never a
//! panic) and counted in [`Counters::clamped_samples`], so a clamp is visible in the summary.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};
use hdrhistogram::serialization::{V2DeflateSerializeError, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Lowest value the histograms discern: 1 µs.
pub const HISTOGRAM_LOWEST_US: u64 = 1;
/// Highest value the histograms track: one hour in µs. Larger values are clamped to it.
pub const HISTOGRAM_HIGHEST_US: u64 = 3_600 * 1_000_000;
/// Significant decimal digits kept: values are exact to 0.1 %.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// Errors from writing recorded data.
#[derive(Debug, Error)]
pub enum RecordError {
    /// Writing to the output failed.
    #[error("writing histogram output: {0}")]
    Io(#[from] io::Error),
    /// Encoding an interval histogram failed.
    #[error("encoding an interval histogram: {0}")]
    Encode(#[from] V2DeflateSerializeError),
    /// An interval log tag contained a character the log format reserves.
    #[error("invalid interval log tag {0:?}: it must not contain ',', ' ', CR or LF")]
    InvalidTag(String),
}

impl From<IntervalLogWriterError<V2DeflateSerializeError>> for RecordError {
    fn from(err: IntervalLogWriterError<V2DeflateSerializeError>) -> Self {
        match err {
            IntervalLogWriterError::SerializeError(e) => RecordError::Encode(e),
            IntervalLogWriterError::IoError(e) => RecordError::Io(e),
        }
    }
}

/// A new, empty histogram of microseconds with the project's bounds and precision.
pub fn new_histogram_us() -> Histogram<u64> {
    // The bounds are constants that satisfy the crate's rules (low >= 1, high >= 2 * low,
    // sigfig <= 5); a unit test constructs one, so this cannot fail at run time.
    Histogram::new_with_bounds(HISTOGRAM_LOWEST_US, HISTOGRAM_HIGHEST_US, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Records `value_us`, clamping it into the histogram's range. Returns whether it was clamped.
fn record_clamped(h: &mut Histogram<u64>, value_us: u64) -> bool {
    h.saturating_record(value_us);
    value_us > h.high()
}

/// Adds `src` into `dst`; returns how many samples had to be clamped to fit `dst`'s range.
///
/// Histograms made by [`new_histogram_us`] always share a range and merge exactly. A histogram
/// from elsewhere (another tool, a wider range) is added value by value with clamping instead
/// of failing, so one odd input cannot lose a whole merge.
pub fn merge_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>) -> u64 {
    if dst.add(src).is_ok() {
        return 0;
    }
    // `add` checks the range before touching `dst`, so nothing was added yet.
    let mut clamped = 0;
    for v in src.iter_recorded() {
        let value = v.value_iterated_to();
        let count = v.count_at_value();
        dst.saturating_record_n(value, count);
        if value > dst.high() {
            clamped += count;
        }
    }
    clamped
}

/// How one received sequence number relates to those received before on the same client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next expected sequence number.
    InOrder,
    /// Ahead of the next expected one: `missing` sequence numbers were skipped and count as lost
    /// unless they arrive later.
    Gap {
        /// How many sequence numbers this arrival skipped.
        missing: u64,
    },
    /// A sequence number that had been skipped arrived late: out of order, but not lost.
    FilledGap,
    /// Already received (or at or before the cursor the client started after).
    Duplicate,
}

/// An inclusive range of missing sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeqRange {
    first: u64,
    last: u64,
}

/// Tracks one client's view of a topic's sequence numbers: which arrived in order, late, twice,
/// or not at all.
///
/// The client keeps the same tracker across reconnects: resuming after [`Self::last_seq`] makes
/// the server send exactly the numbers not yet seen, so nothing is falsely counted as duplicate
/// or lost. Numbers skipped before a reconnect stay missing unless they arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSeqTracker {
    /// The cursor the client started after: the first expected number is `after + 1`.
    after: u64,
    /// The highest number received; `after` if none yet.
    highest: u64,
    /// Total of all ranges in `gaps`, kept so reading it is O(1).
    missing: u64,
    /// Missing numbers, sorted, disjoint and non-adjacent. Empty and allocation-free while
    /// events arrive in order, which keeps thousands of idle trackers small.
    gaps: Vec<SeqRange>,
}

impl ClientSeqTracker {
    /// A tracker for a client that expects the numbers after `after` (0 for a fresh start, so
    /// the first expected number is 1).
    pub fn new(after: u64) -> Self {
        Self {
            after,
            highest: after,
            missing: 0,
            gaps: Vec::new(),
        }
    }

    /// Classifies the received number `seq` and updates the tracker.
    pub fn observe(&mut self, seq: u64) -> SeqOutcome {
        if seq <= self.after {
            return SeqOutcome::Duplicate;
        }
        let horizon = self.horizon();
        if seq > horizon {
            let skipped = seq - horizon - 1;
            self.highest = seq;
            if skipped == 0 {
                return SeqOutcome::InOrder;
            }
            self.add_gap(horizon + 1, seq - 1);
            self.missing += skipped;
            return SeqOutcome::Gap { missing: skipped };
        }
        if self.remove_from_gaps(seq) {
            self.missing -= 1;
            self.highest = self.highest.max(seq);
            SeqOutcome::FilledGap
        } else {
            SeqOutcome::Duplicate
        }
    }

    /// The highest number received (the cursor to resume after); the start cursor if none.
    pub fn last_seq(&self) -> u64 {
        self.highest
    }

    /// How many numbers are currently missing (lost unless they still arrive).
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// How many numbers this client should have received: those after its start cursor up to
    /// the highest received or the final number given to [`Self::finish`], whichever is higher.
    pub fn expected(&self) -> u64 {
        self.horizon() - self.after
    }

    /// Takes `seqs` that were never published out of the missing numbers and returns how many
    /// it took: a client that did not receive them lost nothing, and they must also leave its
    /// expected count ([`Counters::account_tracker`]). One that did receive them (the publisher
    /// could not tell whether its POST got through) keeps them as delivered. Call after
    /// [`Self::finish`]. Nothing is stored, so the tracker stays small.
    pub fn excuse(&mut self, seqs: &[u64]) -> u64 {
        let mut excused = 0;
        for &seq in seqs {
            if seq > self.after && self.remove_from_gaps(seq) {
                self.missing -= 1;
                excused += 1;
            }
        }
        excused
    }

    /// How many distinct numbers were received.
    pub fn delivered(&self) -> u64 {
        self.expected() - self.missing
    }

    /// Declares that the topic's last number is `final_seq`: numbers after the highest received
    /// up to `final_seq` count as missing. Returns [`Self::missing`]. Calling it again with the
    /// same or a lower number changes nothing; a number still arriving afterwards counts as a
    /// late fill ([`SeqOutcome::FilledGap`]), not a loss.
    pub fn finish(&mut self, final_seq: u64) -> u64 {
        let horizon = self.horizon();
        if final_seq > horizon {
            self.add_gap(horizon + 1, final_seq);
            self.missing += final_seq - horizon;
        }
        self.missing
    }

    /// The highest number known to exist: the highest received, or higher after `finish`
    /// (whose tail gap is then the last range, beyond `highest`).
    fn horizon(&self) -> u64 {
        match self.gaps.last() {
            Some(range) => range.last.max(self.highest),
            None => self.highest,
        }
    }

    /// Appends the range `first..=last`, which lies just above every existing range.
    fn add_gap(&mut self, first: u64, last: u64) {
        match self.gaps.last_mut() {
            // Adjacent to the tail gap left by `finish`: extend it to stay non-adjacent.
            Some(tail) if tail.last + 1 == first => tail.last = last,
            _ => self.gaps.push(SeqRange { first, last }),
        }
    }

    /// Removes `seq` from the missing ranges; returns whether it was missing.
    fn remove_from_gaps(&mut self, seq: u64) -> bool {
        let i = self.gaps.partition_point(|r| r.last < seq);
        let Some(range) = self.gaps.get_mut(i) else {
            return false;
        };
        if range.first > seq {
            return false;
        }
        match (range.first == seq, range.last == seq) {
            (true, true) => {
                self.gaps.remove(i);
            }
            (true, false) => range.first += 1,
            (false, true) => range.last -= 1,
            (false, false) => {
                let upper = SeqRange {
                    first: seq + 1,
                    last: range.last,
                };
                range.last = seq - 1;
                self.gaps.insert(i + 1, upper);
            }
        }
        if self.gaps.is_empty() {
            // Gaps are rare; give the allocation back so the tracker is small again.
            self.gaps = Vec::new();
        }
        true
    }
}

/// Event and connection counts. Summed across clients and workers with [`Counters::merge`].
// Not `Copy`: callers copy it with an explicit `clone()`, and a growing struct of counters is
// better passed by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Events the clients should have received (see [`ClientSeqTracker::expected`]).
    pub expected: u64,
    /// Distinct events received.
    pub delivered: u64,
    /// Events never received.
    pub lost: u64,
    /// Events received again.
    pub duplicated: u64,
    /// Events received after a later one (late gap fills).
    pub out_of_order: u64,
    /// Connections (or reconnections) established.
    pub connects_ok: u64,
    /// Connection attempts that failed (refused, timed out, bad handshake).
    pub connect_errors: u64,
    /// Established connections that ended before the client closed them.
    pub disconnects: u64,
    /// Bytes received from the server.
    pub bytes_down: u64,
    /// Bytes sent to the server.
    pub bytes_up: u64,
    /// Poll requests answered, over the whole run (ramp-up, warm-up and drain included).
    pub polls: u64,
    /// Poll answers with nothing new (304 or empty), over the whole run.
    pub polls_empty: u64,
    /// Poll answers read inside the measured phase (what requests/s is computed from).
    pub polls_measured: u64,
    /// Of those, answers with nothing new.
    pub polls_empty_measured: u64,
    /// Histogram samples clamped into range (above one hour). Non-zero means the histograms'
    /// maxima understate the truth.
    pub clamped_samples: u64,
    /// Clients none of whose sessions ever connected.
    pub clients_never_connected: u64,
    /// Lines the load generator's publisher never published that a client did not receive:
    /// left out of `expected` and `lost` (see [`ClientSeqTracker::excuse`]).
    pub excused: u64,
}

impl Counters {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Counters) {
        // Destructured so that a new field cannot be forgotten here.
        let Counters {
            expected,
            delivered,
            lost,
            duplicated,
            out_of_order,
            connects_ok,
            connect_errors,
            disconnects,
            bytes_down,
            bytes_up,
            polls,
            polls_empty,
            polls_measured,
            polls_empty_measured,
            clamped_samples,
            clients_never_connected,
            excused,
        } = other;
        let add = |into: &mut u64, n: &u64| *into = into.saturating_add(*n);
        add(&mut self.expected, expected);
        add(&mut self.delivered, delivered);
        add(&mut self.lost, lost);
        add(&mut self.duplicated, duplicated);
        add(&mut self.out_of_order, out_of_order);
        add(&mut self.connects_ok, connects_ok);
        add(&mut self.connect_errors, connect_errors);
        add(&mut self.disconnects, disconnects);
        add(&mut self.bytes_down, bytes_down);
        add(&mut self.bytes_up, bytes_up);
        add(&mut self.excused, excused);
        add(&mut self.clients_never_connected, clients_never_connected);
        add(&mut self.polls, polls);
        add(&mut self.polls_empty, polls_empty);
        add(&mut self.polls_measured, polls_measured);
        add(&mut self.polls_empty_measured, polls_empty_measured);
        add(&mut self.clamped_samples, clamped_samples);
    }

    /// Counts one received event by its [`SeqOutcome`]. Losses are not counted here, because a
    /// gap may still fill: add them with [`Self::account_tracker`] once the client is done.
    pub fn record_outcome(&mut self, outcome: SeqOutcome) {
        match outcome {
            SeqOutcome::InOrder | SeqOutcome::Gap { .. } => self.delivered += 1,
            SeqOutcome::FilledGap => {
                self.delivered += 1;
                self.out_of_order += 1;
            }
            SeqOutcome::Duplicate => self.duplicated += 1,
        }
    }

    /// Adds a finished client's expected and lost counts (call [`ClientSeqTracker::finish`]
    /// first so the tail is accounted for).
    /// Adds a settled client: what it was expected to receive, less the `excused` numbers
    /// ([`ClientSeqTracker::excuse`]), and what it lost.
    pub fn account_tracker(&mut self, tracker: &ClientSeqTracker, excused: u64) {
        self.expected = self
            .expected
            .saturating_add(tracker.expected().saturating_sub(excused));
        self.lost = self.lost.saturating_add(tracker.missing());
        self.excused = self.excused.saturating_add(excused);
    }
}

/// One worker's recording: histograms in microseconds and counters.
#[derive(Debug, Clone)]
pub struct Recorder {
    latency_us: Histogram<u64>,
    connect_us: Histogram<u64>,
    first_event_us: Histogram<u64>,
    counters: Counters,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder (allocates three histograms, ~190 KB each).
    pub fn new() -> Self {
        Self {
            latency_us: new_histogram_us(),
            connect_us: new_histogram_us(),
            first_event_us: new_histogram_us(),
            counters: Counters::default(),
        }
    }

    /// Records one delivery latency: publish time (as stamped in the event) to receipt.
    pub fn record_latency_us(&mut self, latency_us: u64) {
        if record_clamped(&mut self.latency_us, latency_us) {
            self.counters.clamped_samples += 1;
        }
    }

    /// Records one connect time: TCP connect start until the HTTP or WebSocket handshake's
    /// response headers arrived.
    pub fn record_connect_us(&mut self, connect_us: u64) {
        if record_clamped(&mut self.connect_us, connect_us) {
            self.counters.clamped_samples += 1;
        }
    }

    /// Records one time to first event: connect start until the first event arrived.
    pub fn record_first_event_us(&mut self, first_event_us: u64) {
        if record_clamped(&mut self.first_event_us, first_event_us) {
            self.counters.clamped_samples += 1;
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters, for updating.
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Delivery latencies (µs).
    pub fn latency_us(&self) -> &Histogram<u64> {
        &self.latency_us
    }

    /// Connect times (µs).
    pub fn connect_us(&self) -> &Histogram<u64> {
        &self.connect_us
    }

    /// Times to first event (µs).
    pub fn first_event_us(&self) -> &Histogram<u64> {
        &self.first_event_us
    }

    /// Adds `other`'s histograms and counters to this recorder.
    pub fn merge(&mut self, other: &Recorder) {
        self.counters.merge(&other.counters);
        let clamped = merge_histogram(&mut self.latency_us, &other.latency_us)
            + merge_histogram(&mut self.connect_us, &other.connect_us)
            + merge_histogram(&mut self.first_event_us, &other.first_event_us);
        self.counters.clamped_samples += clamped;
    }
}

/// One worker's current interval (normally one second) of delivery latencies, for the time
/// series. Keeping one histogram per interval for a whole run would cost ~190 KB per second per
/// worker, so the collector takes a snapshot every interval, merges the workers' snapshots and
/// writes the result to an [`IntervalLog`].
#[derive(Debug, Clone)]
pub struct IntervalRecorder {
    current: IntervalSnapshot,
}

/// What one or more workers recorded during one interval.
#[derive(Debug, Clone)]
pub struct IntervalSnapshot {
    /// Delivery latencies in the interval (µs).
    pub latency_us: Histogram<u64>,
    /// Events delivered in the interval.
    pub deliveries: u64,
    /// Latency samples clamped into range in the interval.
    pub clamped_samples: u64,
}

impl Default for IntervalSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalSnapshot {
    /// An empty snapshot, to merge workers' snapshots into.
    pub fn new() -> Self {
        Self {
            latency_us: new_histogram_us(),
            deliveries: 0,
            clamped_samples: 0,
        }
    }

    /// Merges the workers' snapshots of one interval into one (empty if there are none).
    pub fn merge_all(snapshots: impl IntoIterator<Item = IntervalSnapshot>) -> Self {
        let mut snapshots = snapshots.into_iter();
        // The first snapshot's histogram is reused as the sum, so merging allocates nothing.
        let Some(mut total) = snapshots.next() else {
            return Self::new();
        };
        for snapshot in snapshots {
            total.merge(&snapshot);
        }
        total
    }

    /// Adds `other` to this snapshot.
    pub fn merge(&mut self, other: &IntervalSnapshot) {
        let clamped = merge_histogram(&mut self.latency_us, &other.latency_us);
        self.deliveries = self.deliveries.saturating_add(other.deliveries);
        self.clamped_samples = self
            .clamped_samples
            .saturating_add(other.clamped_samples)
            .saturating_add(clamped);
    }

    /// Empties the snapshot, keeping its histogram's allocation.
    pub fn reset(&mut self) {
        self.latency_us.reset();
        self.deliveries = 0;
        self.clamped_samples = 0;
    }
}

impl Default for IntervalRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalRecorder {
    /// An empty interval recorder.
    pub fn new() -> Self {
        Self {
            current: IntervalSnapshot::new(),
        }
    }

    /// Records one delivery and its latency in the current interval.
    pub fn record_latency_us(&mut self, latency_us: u64) {
        self.current.deliveries += 1;
        if record_clamped(&mut self.current.latency_us, latency_us) {
            self.current.clamped_samples += 1;
        }
    }

    /// Records a delivery kept out of the latency histogram (e.g. warm-up or catch-up events).
    pub fn record_delivery(&mut self) {
        self.current.deliveries += 1;
    }

    /// What was recorded since the last call (or since creation); starts a new interval.
    pub fn take(&mut self) -> IntervalSnapshot {
        let snapshot = self.current.clone();
        self.current.reset();
        snapshot
    }

    /// Like [`Self::take`] but swaps into `into` (whose old contents are discarded), so a
    /// collector that reuses its snapshots allocates nothing per interval.
    pub fn take_into(&mut self, into: &mut IntervalSnapshot) {
        std::mem::swap(&mut self.current, into);
        self.current.reset();
    }
}

/// Writes interval histograms to an HdrHistogram interval log (`.hlog`, as read by Java's
/// `HistogramLogProcessor`, HdrHistogramVisualizer and the `hdrhistogram` crate's
/// `IntervalLogIterator`), histograms encoded as compressed V2.
///
/// The header records the run's start as both StartTime and BaseTime, so each interval's
/// timestamp is its offset from the start. `Interval_Max` is in µs like the histograms (no max
/// value divisor: the crate would repeat its header comment before every interval).
pub struct IntervalLog<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    /// Where the previous [`Self::write`] interval ended, relative to the start time.
    last_end_offset: Duration,
}

impl IntervalLog<BufWriter<File>> {
    /// Creates the log file at `path`, starting now.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        Self::new(
            file,
            SystemTime::now(),
            "pushbench delivery latency, microseconds",
        )
    }
}

impl<W: Write> IntervalLog<W> {
    /// Writes the log header (`comment` may have several lines) and returns the log.
    pub fn new(mut out: W, start_time: SystemTime, comment: &str) -> io::Result<Self> {
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start_time)
            .with_base_time(start_time)
            .begin_log_with(&mut out, &mut serializer)?;
        // The legend line Java's writer emits; the readers skip it.
        out.write_all(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        )?;
        Ok(Self {
            out,
            serializer,
            last_end_offset: Duration::ZERO,
        })
    }

    /// Appends `snapshot`'s latencies as the interval from the end of the previous one (or the
    /// start) to `end_offset` after the start time.
    pub fn write(
        &mut self,
        snapshot: &IntervalSnapshot,
        end_offset: Duration,
    ) -> Result<(), RecordError> {
        let start_offset = self.last_end_offset.min(end_offset);
        self.write_interval(
            &snapshot.latency_us,
            start_offset,
            end_offset - start_offset,
            None,
        )?;
        self.last_end_offset = end_offset;
        Ok(())
    }

    /// Appends one interval: `h` covers `length` starting `start_offset` after the start time.
    /// `tag` (e.g. a transport name) lets one log hold several series.
    pub fn write_interval(
        &mut self,
        h: &Histogram<u64>,
        start_offset: Duration,
        length: Duration,
        tag: Option<&str>,
    ) -> Result<(), RecordError> {
        let tag = match tag {
            Some(s) => Some(Tag::new(s).ok_or_else(|| RecordError::InvalidTag(s.to_owned()))?),
            None => None,
        };
        // The crate's writer borrows the output; a builder with no headers writes nothing, so
        // one is made per interval instead of storing a self-referential writer.
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        writer.write_histogram(h, start_offset, length, tag)?;
        Ok(())
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The output, e.g. to finish a file or inspect a buffer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes `h` in the classic HdrHistogram percentile distribution text format (`.hgrm`), as
/// Java's `outputPercentileDistribution` prints it and HdrHistogram's `plotFiles.html` plots it.
///
/// Values are divided by `unit_ratio` (1000.0 turns µs into ms) and printed with as many
/// decimals as the histogram has significant digits (3 here). Rows step through quantiles with 5
/// ticks per half distance; like Java's, the last row (quantile 1) has no `1/(1-Percentile)`
/// column, since that would be infinite.
pub fn write_hgrm(h: &Histogram<u64>, out: &mut impl Write, unit_ratio: f64) -> io::Result<()> {
    let decimals = usize::from(h.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total_count = 0u64;
    for v in h.iter_quantiles(5) {
        total_count += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / unit_ratio;
        let quantile = v.quantile_iterated_to();
        if quantile < 1.0 {
            writeln!(
                out,
                "{value:12.decimals$} {quantile:2.12} {total_count:10} {:14.2}",
                1.0 / (1.0 - quantile)
            )?;
        } else {
            writeln!(out, "{value:12.decimals$} {quantile:2.12} {total_count:10}")?;
        }
    }
    let mean = h.mean() / unit_ratio;
    let stdev = h.stdev() / unit_ratio;
    let max = h.max() as f64 / unit_ratio;
    // The crate does not expose the sub-bucket count; Java's layout, which the crate mirrors,
    // has (buckets + 1) * sub_buckets / 2 counters.
    let sub_buckets = 2 * h.distinct_values() / (usize::from(h.buckets()) + 1);
    writeln!(
        out,
        "#[Mean    = {mean:12.decimals$}, StdDeviation   = {stdev:12.decimals$}]"
    )?;
    writeln!(
        out,
        "#[Max     = {max:12.decimals$}, Total count    = {:12}]",
        h.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    )?;
    Ok(())
}

/// Summary statistics of a histogram of microseconds, for `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentilesUs {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample (0 if none).
    pub min_us: u64,
    /// Arithmetic mean (0 if none).
    pub mean_us: f64,
    /// Standard deviation (0 if none).
    pub stdev_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p99_9_us: u64,
    /// 99.99th percentile.
    pub p99_99_us: u64,
    /// Largest sample (0 if none).
    pub max_us: u64,
}

/// Reads the summary percentiles from `h` (µs). Each value is the highest value equivalent to
/// the quantile's bucket, as HdrHistogram reports it, so it is exact to the histogram's 0.1 %.
pub fn percentiles_us(h: &Histogram<u64>) -> PercentilesUs {
    if h.is_empty() {
        return PercentilesUs {
            count: 0,
            min_us: 0,
            mean_us: 0.0,
            stdev_us: 0.0,
            p50_us: 0,
            p90_us: 0,
            p99_us: 0,
            p99_9_us: 0,
            p99_99_us: 0,
            max_us: 0,
        };
    }
    PercentilesUs {
        count: h.len(),
        min_us: h.min(),
        mean_us: h.mean(),
        stdev_us: h.stdev(),
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p99_9_us: h.value_at_quantile(0.999),
        p99_99_us: h.value_at_quantile(0.9999),
        max_us: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_in_order() {
        let mut t = ClientSeqTracker::new(0);
        for seq in 1..=100 {
            assert_eq!(t.observe(seq), SeqOutcome::InOrder);
        }
        assert_eq!(t.last_seq(), 100);
        assert_eq!((t.missing(), t.expected(), t.delivered()), (0, 100, 100));
        assert!(std::mem::size_of::<ClientSeqTracker>() <= 48);
        assert_eq!(t.gaps.capacity(), 0);
    }

    #[test]
    fn tracker_gap_then_late_fill() {
        let mut t = ClientSeqTracker::new(0);
        let mut c = Counters::default();
        let mut see = |t: &mut ClientSeqTracker, seq| {
            let o = t.observe(seq);
            c.record_outcome(o);
            o
        };
        assert_eq!(see(&mut t, 1), SeqOutcome::InOrder);
        assert_eq!(see(&mut t, 5), SeqOutcome::Gap { missing: 3 });
        assert_eq!(t.missing(), 3);
        assert_eq!(see(&mut t, 3), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 2);
        assert_eq!(see(&mut t, 3), SeqOutcome::Duplicate);
        assert_eq!(see(&mut t, 6), SeqOutcome::InOrder);
        assert_eq!(see(&mut t, 2), SeqOutcome::FilledGap);
        assert_eq!(see(&mut t, 4), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 0);
        assert_eq!(t.gaps.capacity(), 0, "allocation released once gaps close");
        assert_eq!(t.last_seq(), 6);
        assert_eq!(see(&mut t, 10), SeqOutcome::Gap { missing: 3 });
        assert_eq!(see(&mut t, 9), SeqOutcome::FilledGap);
        assert_eq!(see(&mut t, 7), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 1);
        c.account_tracker(&t, 0);
        assert_eq!(c.delivered, 9);
        assert_eq!(c.out_of_order, 5);
        assert_eq!(c.duplicated, 1);
        assert_eq!(c.expected, 10);
        assert_eq!(c.lost, 1);
        assert_eq!(c.delivered + c.lost, c.expected);
    }

    #[test]
    fn tracker_duplicates() {
        let mut t = ClientSeqTracker::new(0);
        assert_eq!(t.observe(1), SeqOutcome::InOrder);
        assert_eq!(t.observe(1), SeqOutcome::Duplicate);
        assert_eq!(t.observe(0), SeqOutcome::Duplicate);
        assert_eq!(t.observe(2), SeqOutcome::InOrder);
        assert_eq!(t.observe(1), SeqOutcome::Duplicate);
        assert_eq!((t.missing(), t.delivered()), (0, 2));
    }

    #[test]
    fn tracker_resume_across_reconnect() {
        let mut t = ClientSeqTracker::new(0);
        for seq in 1..=5 {
            assert_eq!(t.observe(seq), SeqOutcome::InOrder);
        }
        // Reconnect resuming after last_seq(): the server sends 6.. and nothing is flagged.
        assert_eq!(t.last_seq(), 5);
        for seq in 6..=10 {
            assert_eq!(t.observe(seq), SeqOutcome::InOrder);
        }
        assert_eq!((t.missing(), t.delivered()), (0, 10));
        // A server that replays from an older cursor yields duplicates, not losses.
        assert_eq!(t.observe(9), SeqOutcome::Duplicate);
        // A gap before a reconnect stays missing; the resumed stream continues cleanly.
        assert_eq!(t.observe(13), SeqOutcome::Gap { missing: 2 });
        assert_eq!(t.last_seq(), 13);
        assert_eq!(t.observe(14), SeqOutcome::InOrder);
        assert_eq!(t.missing(), 2);
    }

    #[test]
    fn tracker_finish_accounts_tail_loss() {
        let mut t = ClientSeqTracker::new(0);
        t.observe(1);
        t.observe(3);
        assert_eq!(t.finish(6), 4, "2 plus the tail 4..=6");
        assert_eq!(t.expected(), 6);
        assert_eq!(t.delivered(), 2);
        assert_eq!(t.last_seq(), 3, "finish does not move the resume cursor");
        assert_eq!(t.finish(6), 4, "idempotent");
        assert_eq!(t.finish(2), 4, "a lower final changes nothing");
        // A straggler after finish is a late fill, not a loss.
        assert_eq!(t.observe(5), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 3);
        assert_eq!(t.last_seq(), 5);
        assert_eq!(t.observe(8), SeqOutcome::Gap { missing: 1 });
        assert_eq!(t.missing(), 4);
        assert_eq!(t.expected(), 8);
        // Finish with nothing received at all.
        let mut t = ClientSeqTracker::new(10);
        assert_eq!(t.finish(15), 5);
        assert_eq!(
            t.gaps,
            vec![SeqRange {
                first: 11,
                last: 15
            }]
        );
        assert_eq!(t.finish(17), 7);
        assert_eq!(t.gaps.len(), 1, "tail gap extended, not split");
    }

    #[test]
    fn tracker_start_cursor_above_zero() {
        let mut t = ClientSeqTracker::new(1000);
        assert_eq!(t.last_seq(), 1000);
        assert_eq!(t.observe(1000), SeqOutcome::Duplicate);
        assert_eq!(t.observe(5), SeqOutcome::Duplicate);
        assert_eq!(t.observe(1001), SeqOutcome::InOrder);
        assert_eq!(t.observe(1004), SeqOutcome::Gap { missing: 2 });
        assert_eq!(t.finish(1004), 2);
        assert_eq!(t.expected(), 4);
        // A first event that skips ahead of the cursor.
        let mut t = ClientSeqTracker::new(1000);
        assert_eq!(t.observe(1003), SeqOutcome::Gap { missing: 2 });
    }

    #[test]
    fn tracker_extreme_numbers_do_not_panic() {
        let mut t = ClientSeqTracker::new(0);
        assert_eq!(
            t.observe(u64::MAX),
            SeqOutcome::Gap {
                missing: u64::MAX - 1
            }
        );
        assert_eq!(t.observe(u64::MAX), SeqOutcome::Duplicate);
        assert_eq!(t.observe(u64::MAX / 2), SeqOutcome::FilledGap);
        assert_eq!(t.finish(u64::MAX), u64::MAX - 2);
        let mut t = ClientSeqTracker::new(u64::MAX);
        assert_eq!(t.observe(u64::MAX), SeqOutcome::Duplicate);
        assert_eq!(t.finish(u64::MAX), 0);
    }

    #[test]
    fn tracker_matches_a_naive_model() {
        // Pseudo-random arrivals with loss, reordering and duplication, checked against a set.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50 {
            let after = next() % 5;
            let mut t = ClientSeqTracker::new(after);
            let mut seen = std::collections::BTreeSet::new();
            let mut highest = after;
            for _ in 0..200 {
                let seq = after + 1 + next() % 120;
                let expected_outcome = if seen.contains(&seq) {
                    SeqOutcome::Duplicate
                } else if seq == highest + 1 {
                    SeqOutcome::InOrder
                } else if seq > highest {
                    SeqOutcome::Gap {
                        missing: seq - highest - 1,
                    }
                } else {
                    SeqOutcome::FilledGap
                };
                assert_eq!(t.observe(seq), expected_outcome);
                seen.insert(seq);
                highest = highest.max(seq);
                assert_eq!(t.missing(), highest - after - seen.len() as u64);
            }
            let final_seq = after + 130;
            assert_eq!(t.finish(final_seq), final_seq - after - seen.len() as u64);
        }
    }

    #[test]
    fn counters_merge_and_serde() {
        let mut a = Counters {
            expected: 10,
            delivered: 9,
            lost: 1,
            bytes_down: 100,
            polls_empty: 2,
            polls_measured: 4,
            ..Counters::default()
        };
        let b = Counters {
            expected: 5,
            delivered: 5,
            duplicated: 1,
            connects_ok: 3,
            bytes_down: u64::MAX,
            polls_measured: 1,
            polls_empty_measured: 1,
            ..Counters::default()
        };
        a.merge(&b);
        assert_eq!(a.expected, 15);
        assert_eq!(a.delivered, 14);
        assert_eq!(a.duplicated, 1);
        assert_eq!(a.connects_ok, 3);
        assert_eq!(a.bytes_down, u64::MAX, "saturates");
        assert_eq!(a.polls_empty, 2);
        assert_eq!((a.polls_measured, a.polls_empty_measured), (5, 1));
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"out_of_order\":0"));
        assert_eq!(serde_json::from_str::<Counters>(&json).unwrap(), a);
    }

    #[test]
    fn histogram_bounds_are_valid() {
        let h = new_histogram_us();
        assert_eq!(h.high(), HISTOGRAM_HIGHEST_US);
        assert!(!h.is_auto_resize());
    }

    #[test]
    fn recorder_merge_equals_recording_into_one() {
        let mut workers = [Recorder::new(), Recorder::new(), Recorder::new()];
        let mut single = Recorder::new();
        let mut state = 7u64;
        for i in 0..30_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let value = (state >> 33) % 5_000_000;
            let w = &mut workers[(i % 3) as usize];
            w.record_latency_us(value);
            w.record_connect_us(value / 7);
            w.record_first_event_us(value / 3 + 1);
            w.counters_mut().delivered += 1;
            single.record_latency_us(value);
            single.record_connect_us(value / 7);
            single.record_first_event_us(value / 3 + 1);
            single.counters_mut().delivered += 1;
        }
        let mut merged = Recorder::new();
        for w in &workers {
            merged.merge(w);
        }
        assert_eq!(merged.counters(), single.counters());
        for (m, s) in [
            (merged.latency_us(), single.latency_us()),
            (merged.connect_us(), single.connect_us()),
            (merged.first_event_us(), single.first_event_us()),
        ] {
            assert_eq!(m, s);
            assert_eq!(percentiles_us(m), percentiles_us(s));
        }
        assert_eq!(merged.latency_us().len(), 30_000);
    }

    #[test]
    fn huge_values_are_clamped_and_counted() {
        let mut r = Recorder::new();
        r.record_latency_us(u64::MAX);
        r.record_connect_us(HISTOGRAM_HIGHEST_US + 1);
        r.record_first_event_us(HISTOGRAM_HIGHEST_US);
        r.record_latency_us(0);
        assert_eq!(r.counters().clamped_samples, 2);
        assert_eq!(r.latency_us().len(), 2);
        assert!(r.latency_us().max() >= HISTOGRAM_HIGHEST_US);
        let mut merged = Recorder::new();
        merged.merge(&r);
        assert_eq!(merged.counters().clamped_samples, 2);

        // A foreign histogram with a wider range merges with clamping instead of failing.
        let mut wide = Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 3).unwrap();
        wide.record(10).unwrap();
        wide.record_n(HISTOGRAM_HIGHEST_US * 100, 3).unwrap();
        let mut dst = new_histogram_us();
        assert_eq!(merge_histogram(&mut dst, &wide), 3);
        assert_eq!(dst.len(), 4);
    }

    #[test]
    fn interval_take_resets() {
        let mut ir = IntervalRecorder::new();
        ir.record_latency_us(100);
        ir.record_latency_us(200);
        ir.record_delivery();
        let snap = ir.take();
        assert_eq!(snap.deliveries, 3);
        assert_eq!(snap.latency_us.len(), 2);
        assert_eq!(snap.latency_us.max(), 200);
        let empty = ir.take();
        assert_eq!(empty.deliveries, 0);
        assert!(empty.latency_us.is_empty());
        assert_eq!(empty.latency_us.max(), 0, "max reset too");

        ir.record_latency_us(5);
        let mut reused = snap.clone();
        ir.take_into(&mut reused);
        assert_eq!((reused.deliveries, reused.latency_us.len()), (1, 1));
        assert_eq!(ir.take().deliveries, 0);

        // Merging the workers' snapshots of one interval.
        let total = IntervalSnapshot::merge_all(vec![snap, empty, reused]);
        assert_eq!(total.deliveries, 4);
        assert_eq!(total.latency_us.len(), 3);
        assert_eq!(total.latency_us.max(), 200);
        assert!(IntervalSnapshot::merge_all(Vec::new())
            .latency_us
            .is_empty());
    }

    #[test]
    fn interval_log_round_trips() {
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        use hdrhistogram::serialization::Deserializer;

        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut log = IntervalLog::new(Vec::new(), start, "pushbench test").unwrap();
        let mut h = new_histogram_us();
        h.record_n(1500, 10).unwrap();
        log.write_interval(
            &h,
            Duration::from_secs(1),
            Duration::from_secs(1),
            Some("sse"),
        )
        .unwrap();
        let mut ir = IntervalRecorder::new();
        for _ in 0..10 {
            ir.record_latency_us(1500);
        }
        ir.record_latency_us(2_500_000);
        let snapshot = ir.take();
        // `write` continues from where the previous `write` ended (here the start).
        log.write(&IntervalSnapshot::new(), Duration::from_secs(2))
            .unwrap();
        log.write(&snapshot, Duration::from_secs(3)).unwrap();
        assert!(matches!(
            log.write_interval(&h, Duration::ZERO, Duration::ZERO, Some("a b")),
            Err(RecordError::InvalidTag(_))
        ));
        let bytes = log.into_inner();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("#pushbench test\n#[Histogram log format version 1.3]\n"));
        assert!(text.contains("#[StartTime: 1700000000.000"));
        assert!(text.contains("\"StartTimestamp\",\"Interval_Length\""));

        let mut intervals = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(ilh) = entry.unwrap() {
                let decoded: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut base64_decode(ilh.encoded_histogram()).as_slice())
                    .unwrap();
                intervals.push((
                    ilh.tag().map(|t| t.as_str().to_owned()),
                    (ilh.start_timestamp(), ilh.duration()),
                    ilh.max(),
                    decoded.len(),
                ));
            }
        }
        assert_eq!(intervals.len(), 3);
        let secs = Duration::from_secs;
        assert_eq!(intervals[0].0.as_deref(), Some("sse"));
        assert_eq!(intervals[0].1, (secs(1), secs(1)));
        assert_eq!(intervals[0].3, 10);
        assert_eq!(intervals[1].0, None);
        assert_eq!(intervals[1].1, (secs(0), secs(2)));
        assert_eq!(intervals[1].3, 0);
        assert_eq!(intervals[2].1, (secs(2), secs(1)));
        assert_eq!(intervals[2].3, 11);
        // Interval_Max is in µs: 2.5 s, within the histogram's precision.
        assert!(
            (intervals[2].2 - 2_500_000.0).abs() < 3000.0,
            "{}",
            intervals[2].2
        );
        // Header comments appear once, not before every interval.
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 4);
    }

    /// Minimal standard base64 decoder, so the test needs no extra dependency.
    fn base64_decode(s: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        };
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for &c in s.as_bytes().iter().filter(|&&c| c != b'=') {
            acc = (acc << 6) | u32::from(value(c));
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn hgrm_output_structure_and_values() {
        let mut h = new_histogram_us();
        for v in 1..=100u64 {
            h.record(v * 1000).unwrap(); // 1 ms .. 100 ms
        }
        let mut out = Vec::new();
        write_hgrm(&h, &mut out, 1000.0).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the smallest value at quantile 0.
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        // Rows are sorted, the median row is 50 ms, and the last row is the max with no 4th column.
        let median = rows.iter().find(|r| r[1] == "0.500000000000").unwrap();
        assert_eq!(median[0], "50.015", "50 ms as the top of its bucket");
        assert_eq!(median[2], "50");
        assert_eq!(median[3], "2.00");
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "100");
        assert!(rows[..rows.len() - 1].iter().all(|r| r.len() == 4));
        let values: Vec<f64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        let footer: Vec<&str> = lines.iter().rev().take(3).rev().copied().collect();
        assert_eq!(
            footer[0],
            "#[Mean    =       50.504, StdDeviation   =       28.866]"
        );
        assert!(footer[1].starts_with("#[Max     =      100.031, Total count    =          100]"));
        assert_eq!(
            footer[2],
            "#[Buckets =           22, SubBuckets     =         2048]"
        );

        // An empty histogram prints the header and footer without panicking.
        let mut out = Vec::new();
        write_hgrm(&new_histogram_us(), &mut out, 1.0).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("Total count    =            0"));
    }

    #[test]
    fn percentiles_of_known_histogram() {
        let mut h = new_histogram_us();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let p = percentiles_us(&h);
        assert_eq!(p.count, 10_000);
        assert_eq!(p.min_us, 1);
        assert_eq!(p.p50_us, 5_003); // top of the 5000 bucket (width 4 at this magnitude)
        assert_eq!(p.p90_us, 9_007); // top of the 9000 bucket (width 8 at this magnitude)
        assert!(p.p99_us >= 9_900 && p.p99_us <= 9_910, "{}", p.p99_us);
        assert!(p.p99_9_us >= 9_990 && p.p99_9_us <= 10_000);
        assert_eq!(p.max_us, h.max());
        assert!((p.mean_us - 5_000.5).abs() < 5.0);
        let json = serde_json::to_value(p).unwrap();
        assert!(json.get("p99_9_us").is_some());
        assert_eq!(percentiles_us(&new_histogram_us()).count, 0);
    }
}
