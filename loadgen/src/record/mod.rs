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
//! ([`crate::results::Percentiles::of`], [`write_hgrm`], [`IntervalLog`]).
//!
//! All histogram values are microseconds. Values above one hour are clamped to one hour (never a
//! panic) and counted in [`Counters::clamped_samples`], so a clamp is visible in the summary.
//!
//! # Layout
//! - `histogram`: the histograms' bounds, creating, clamping and merging them, and reading
//!   ([`new_histogram_us`], [`new_lag_histogram_us`], [`merge_histogram`]).
//! - `seq`: per-client sequence tracking ([`ClientSeqTracker`], [`SeqOutcome`]).
//! - `counters`: event and connection [`Counters`].
//! - `faults`: what each scheduled fault did ([`FaultRecord`]: counts, time to recover).
//! - `recorder`: a worker's [`Recorder`] and its merging.
//! - `interval`: the per-interval time series ([`IntervalRecorder`], [`IntervalSnapshot`]).
//! - `output`: `.hlog` interval logs ([`IntervalLog`]) and `.hgrm` text ([`write_hgrm`]).

mod counters;
mod faults;
mod histogram;
mod interval;
mod output;
mod recorder;
mod seq;

pub use counters::Counters;
pub use faults::{FaultCounts, FaultRecord};
pub use histogram::{
    merge_histogram, new_histogram_us, new_lag_histogram_us, HISTOGRAM_HIGHEST_US,
    HISTOGRAM_LOWEST_US, HISTOGRAM_SIGFIG,
};
pub use interval::{IntervalRecorder, IntervalSnapshot};
pub use output::{write_hgrm, IntervalLog, RecordError};
pub use recorder::Recorder;
pub use seq::{ClientSeqTracker, SeqOutcome};
