//! The verdict on the claim "SSE > WebSocket > polling": a pure function of a [`Summary`].
//!
//! # Metrics
//! Eight figures, all lower-is-better: delivery latency p50, p99 and p99.9; wire bytes per
//! delivered event down and up; server RSS per connection; server CPU µs per delivered event;
//! connect (handshake) time p50. A transport without a figure (no samples, no deliveries, no
//! server process measured) is left out of that metric's ranking only; long-poll always is
//! for connect time, whose first answer may be held, so its figure is its TCP connection only.
//!
//! # Who takes part
//! Runs that measured something: status `ok` or `degraded` (a degraded run's problems are
//! caveats). A failed run is excluded and named in a caveat. A sweep gets
//! one table per swept value; the overall count is over every (value, metric) pair.
//!
//! # Ranking and ties
//! Values are sorted ascending. A tie group starts at the smallest value not yet ranked (its
//! *anchor*) and takes every value within [`TIE_TOLERANCE`] (5%) of the anchor — or within
//! the metric's absolute resolution ([`Metric::resolution`]: 1 µs for times, 1 byte per
//! event, 64 bytes of RSS per connection, 0.05 µs of CPU per event), since differences below
//! it are noise, not ranking. Everyone in a group shares a rank; ranks are
//! competition ranks ("1, 1, 3"). Anchoring on the smallest value makes the rule
//! deterministic, because "within 5% of each other" is not transitive: 100, 104, 108 gives
//! {100, 104} at rank 1 and {108} at rank 3. The ratio is value / best value.
//!
//! # Repetitions
//! With `repeat = N`, each transport's figure is the median of its N runs, with a 95 %
//! bootstrap interval ([`super::spread`]). Two transports also tie when their intervals
//! overlap (the 5 % / resolution rule stays as a floor), so a rank is backed by the spread,
//! not by one number. Where the medians alone would break the claim but the intervals
//! overlap, the claim is *not decided* at N repetitions, with an estimate of how many would
//! decide it. A verdict from single runs (N = 1) says so: it is never settled.
//!
//! # HTTP/2 transports
//! `sse-h2`, `poll-h2` and `long-poll-h2` are ranked in every row beside the others (the
//! figures and ranks the tables show), but take no part in the claim: its classes are ranked
//! among the HTTP/1.1 transports alone, so adding an HTTP/2 run cannot change the claim's
//! verdict (a tie group anchored on an HTTP/2 value would otherwise regroup the others). The
//! notes' ranks ("ws #1 ahead of sse #2") are those of that ranking. The report's HTTP/2
//! section ([`super::http2`]) compares them.
//!
//! # The claim per metric
//! Three classes: `sse`, `ws`, and `polling` = the better (lower-ranked) of `poll` and
//! `long-poll`, chosen per metric. The project's notes demand a fair polling baseline, so
//! polling only "loses" if its best variant loses. The claim *held* for a metric when
//! rank(sse) ≤ rank(ws) ≤ rank(polling) over the classes that have a figure — a tie does not
//! contradict it (shown as "held, tie") — and *did not hold* otherwise. With fewer than two
//! classes present it is *not checked* and not counted.
//!
//! # Faults
//! A group whose runs had faults also gets a faults verdict ([`FaultsVerdict`]), its own
//! group, not counted in the claim's held/checked: faults test recovery, not the claim.
//! - *Recovered fastest*: per fault that broke a session on some transport, the recovery
//!   time p99 (from the fault to the first line received again) is ranked with the same
//!   tie rule (5 % or 1 µs; overlapping intervals with repetitions). A transport none of
//!   whose sessions broke, or none of whose broken sessions recovered, has no figure and
//!   is named with the reason.
//! - *Lost least*: lost + lost by restart + lost to lag over the run, ranked the same way;
//!   duplicated lines are a failure, so a transport that duplicated ranks behind every one
//!   that did not, whatever it lost.
//! - Caveats name faults that hit more connections than their fraction, broken sessions
//!   that never recovered, duplicates after a fault, and faults that had no recorded
//!   effect together with the injector's notes (e.g. one that needs a proxy not wired).

use crate::results::{Summary, TransportResult};

use super::data::{self, transport_order};
use super::faults::{fault_columns, overshoot, recovery_missing};
use super::spread::Spread;

/// The claim under test.
pub const CLAIM: &str = "SSE > WebSocket > polling";

/// Values within this fraction of a tie group's smallest value share its rank.
pub const TIE_TOLERANCE: f64 = 0.05;

/// Fewer latency samples than this make tail percentiles meaningless.
const MIN_LATENCY_SAMPLES: u64 = 1_000;

/// Counted and kernel bytes differing by more than this (percent) are suspicious.
const MAX_KERNEL_DIFF_PCT: f64 = 2.0;

/// A compared figure; lower is better for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    LatencyP50,
    LatencyP99,
    LatencyP999,
    BytesDownPerEvent,
    BytesUpPerEvent,
    RssPerConnection,
    CpuPerEvent,
    ConnectP50,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::LatencyP50,
        Metric::LatencyP99,
        Metric::LatencyP999,
        Metric::BytesDownPerEvent,
        Metric::BytesUpPerEvent,
        Metric::RssPerConnection,
        Metric::CpuPerEvent,
        Metric::ConnectP50,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "latency p50",
            Metric::LatencyP99 => "latency p99",
            Metric::LatencyP999 => "latency p99.9",
            Metric::BytesDownPerEvent => "bytes/event down",
            Metric::BytesUpPerEvent => "bytes/event up",
            Metric::RssPerConnection => "server RSS/connection",
            Metric::CpuPerEvent => "server CPU/event",
            Metric::ConnectP50 => "connect time p50",
        }
    }

    /// The figure of one run, in the unit [`Metric::format`] expects (µs, bytes).
    pub fn value(self, r: &TransportResult) -> Option<f64> {
        let delivered = r.events.delivered > 0;
        // No server process sampled: its zeros are not a measurement.
        let server = r.server.measured;
        let v = match self {
            Metric::LatencyP50 => (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64),
            Metric::LatencyP99 => (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64),
            Metric::LatencyP999 => (r.latency_us.count > 0).then_some(r.latency_us.p99_9 as f64),
            Metric::BytesDownPerEvent => r.wire.bytes_down_per_event.filter(|_| delivered),
            Metric::BytesUpPerEvent => r.wire.bytes_up_per_event.filter(|_| delivered),
            Metric::RssPerConnection => server.then_some(r.server.rss_per_connection_bytes),
            Metric::CpuPerEvent => (server && delivered).then_some(r.server.cpu_us_per_event),
            // A long-poll's first answer may be held for the whole wait, so its connect time
            // is its TCP (+TLS) connection only: not the handshake the others' figures are.
            Metric::ConnectP50 if is_long_poll(&r.transport) => None,
            Metric::ConnectP50 => (r.connect_us.count > 0).then_some(r.connect_us.p50 as f64),
        };
        v.filter(|v| v.is_finite())
    }

    /// Why [`Metric::value`] has no figure for a run.
    fn missing_reason(self, r: &TransportResult) -> &'static str {
        match self {
            Metric::LatencyP50 | Metric::LatencyP99 | Metric::LatencyP999 => {
                "no latency sample in the measured phase"
            }
            Metric::ConnectP50 if is_long_poll(&r.transport) => {
                "a long-poll's connect time is its TCP connection only (its first answer may be held), not comparable with the others' handshakes"
            }
            Metric::ConnectP50 => "no connection was established",
            Metric::BytesDownPerEvent | Metric::BytesUpPerEvent if r.events.delivered == 0 => {
                "no event was delivered"
            }
            Metric::BytesDownPerEvent | Metric::BytesUpPerEvent => "no byte was counted",
            Metric::RssPerConnection | Metric::CpuPerEvent if !r.server.measured => {
                "no server process was sampled: name it with `target.server_pid` or `target.server_process`"
            }
            Metric::CpuPerEvent => "no event was delivered",
            Metric::RssPerConnection => "the figure is not finite",
        }
    }

    /// Differences smaller than this are below what the measurement resolves, so they tie.
    pub fn resolution(self) -> f64 {
        match self {
            // Microseconds: the histograms' resolution at the low end.
            Metric::LatencyP50 | Metric::LatencyP99 | Metric::LatencyP999 | Metric::ConnectP50 => {
                1.0
            }
            // Bytes per event: a fraction of a byte is amortised connection overhead.
            Metric::BytesDownPerEvent | Metric::BytesUpPerEvent => 1.0,
            // Bytes per connection: RSS moves in pages shared by many connections.
            Metric::RssPerConnection => 64.0,
            // µs per event: /proc CPU times tick at 10 ms, spread over many events.
            Metric::CpuPerEvent => 0.05,
        }
    }

    /// Formats a figure of this metric with its unit.
    pub fn format(self, v: f64) -> String {
        match self {
            Metric::LatencyP50 | Metric::LatencyP99 | Metric::LatencyP999 | Metric::ConnectP50 => {
                fmt_us(v)
            }
            Metric::BytesDownPerEvent | Metric::BytesUpPerEvent => format!("{} B", fmt_sig(v)),
            Metric::RssPerConnection => fmt_bytes(v),
            Metric::CpuPerEvent => format!("{} µs", fmt_sig(v)),
        }
    }
}

/// A duration in µs as µs, ms or s, three significant digits.
pub fn fmt_us(us: f64) -> String {
    if us.abs() < 1_000.0 {
        format!("{} µs", fmt_sig(us))
    } else if us.abs() < 1_000_000.0 {
        format!("{} ms", fmt_sig(us / 1e3))
    } else {
        format!("{} s", fmt_sig(us / 1e6))
    }
}

/// Bytes as B, KiB, MiB or GiB.
pub fn fmt_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{} {}", fmt_sig(v), units[i])
}

/// About three significant digits, without a run of useless zeros.
pub fn fmt_sig(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// One transport's figure in one metric's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub transport: String,
    /// The figure: the median over the transport's repetitions.
    pub value: Option<f64>,
    /// How the repetitions spread (a single run: `n` = 1, the interval its value).
    pub spread: Option<Spread>,
    /// value / best value; `None` without a value, or when the best is 0 and this is not.
    pub ratio_to_best: Option<f64>,
    /// Competition rank, 1 = best; ties share a rank.
    pub rank: Option<usize>,
}

/// Whether the claim held for one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The order held; `ties` when two classes shared a rank.
    Held {
        ties: bool,
    },
    NotHeld,
    /// The medians break the order, but the intervals overlap: more repetitions would tell
    /// (`repetitions`: an estimate of how many, when one can be made).
    Undecided {
        repetitions: Option<usize>,
    },
    /// Fewer than two of sse, ws, polling had a figure.
    NotChecked,
}

impl Claim {
    pub fn label(self) -> &'static str {
        match self {
            Claim::Held { ties: false } => "✔ held",
            Claim::Held { ties: true } => "✔ held, tie",
            Claim::NotHeld => "✘ not held",
            Claim::Undecided { .. } => "? not decided",
            Claim::NotChecked => "– not checked",
        }
    }
}

/// One metric across transports.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub metric: Metric,
    /// One per transport of the group, in the group's transport order.
    pub figures: Vec<Figure>,
    pub claim: Claim,
    /// Why, in a few words ("ws #1 ahead of sse #2").
    pub note: String,
}

impl MetricRow {
    pub fn figure(&self, transport: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.transport == transport)
    }
}

/// The verdict for one set of transports run under the same conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictGroup {
    /// The sweep label, `None` for a plain run.
    pub sweep: Option<String>,
    /// Transports that took part (status ok or degraded), canonical order.
    pub transports: Vec<String>,
    /// Transports left out because their run failed.
    pub excluded: Vec<String>,
    pub rows: Vec<MetricRow>,
    /// Repetitions per transport (the most any transport had); 1 for single runs.
    pub repetitions: usize,
}

impl VerdictGroup {
    pub fn row(&self, metric: Metric) -> Option<&MetricRow> {
        self.rows.iter().find(|r| r.metric == metric)
    }

    pub fn held(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.claim, Claim::Held { .. }))
            .count()
    }

    pub fn checked(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.claim != Claim::NotChecked)
            .count()
    }
}

/// What kind of doubt a caveat raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaveatKind {
    /// The run was interrupted (Ctrl-C).
    Interrupted,
    /// A transport's run failed; it is excluded.
    Failed,
    /// A transport's run was degraded (e.g. failed publishes): it takes part, with this said.
    Degraded,
    /// A figure could not be measured: left out of its metric, with the reason.
    Missing,
    /// The load generator was saturated: figures may measure it, not the server.
    Saturated,
    /// Events lost, duplicated or out of order.
    Events,
    /// Too few latency samples for tail percentiles.
    FewSamples,
    /// Counted wire bytes disagree with the kernel's.
    KernelBytes,
    /// One of sse, ws, polling has no successful run.
    MissingTransport,
    /// A warning the run itself recorded.
    Recorded,
    /// A fault did more, less or something else than the scenario asked, or left sessions
    /// unrecovered or lines duplicated.
    Fault,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Caveat {
    pub kind: CaveatKind,
    pub transport: Option<String>,
    pub sweep: Option<String>,
    pub text: String,
}

/// The whole verdict: one group per sweep value (one for a plain run), plus caveats.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub groups: Vec<VerdictGroup>,
    /// Metrics (× sweep values) where the claim held.
    pub held: usize,
    /// Metrics (× sweep values) where it could be checked.
    pub checked: usize,
    pub caveats: Vec<Caveat>,
    /// One per group whose runs had faults; empty on a happy path.
    pub faults: Vec<FaultsVerdict>,
}

/// Recovery time p99 for one fault across transports.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryRow {
    /// The fault's label (`restart(down 500ms) at 9s, 100%`).
    pub label: String,
    /// One per transport of the group; the value is the recovery p99 in µs.
    pub figures: Vec<Figure>,
    /// (transport, why it has no figure), for each transport without one.
    pub missing: Vec<(String, String)>,
}

impl RecoveryRow {
    /// The transports ranked first (more than one: a tie).
    pub fn fastest(&self) -> Vec<&str> {
        first_ranked(&self.figures)
    }
}

/// Lines lost over a run with faults, across transports.
#[derive(Clone, Debug, PartialEq)]
pub struct LossRow {
    /// One per transport; the value is lost + lost by restart + lost to lag.
    pub figures: Vec<Figure>,
    /// (transport, duplicated lines, the most of its repetitions): non-zero is a failure.
    pub duplicated: Vec<(String, u64)>,
}

impl LossRow {
    /// The transports that lost least without duplicating (more than one: a tie); empty
    /// when every transport duplicated.
    pub fn least(&self) -> Vec<&str> {
        first_ranked(&self.figures)
            .into_iter()
            .filter(|t| self.duplicates(t) == 0)
            .collect()
    }

    pub fn duplicates(&self, transport: &str) -> u64 {
        self.duplicated
            .iter()
            .find(|(t, _)| t == transport)
            .map_or(0, |(_, n)| *n)
    }
}

/// The faults verdict of one group of runs: who recovered fastest and who lost least.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultsVerdict {
    pub sweep: Option<String>,
    pub transports: Vec<String>,
    /// One per fault that broke a session on some transport, in the scenario's order.
    pub recovery: Vec<RecoveryRow>,
    pub loss: LossRow,
}

impl FaultsVerdict {
    /// "fastest to recover: ws (drop at 500ms, 50%), long-poll and poll, tied (restart…);
    /// lost least: sse, ws and long-poll, tied".
    pub fn summary(&self) -> String {
        let names = |ts: &[&str]| match ts {
            [] => "none".to_string(),
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}, tied", init.join(", ")),
        };
        let mut parts = Vec::new();
        if !self.recovery.is_empty() {
            let rows: Vec<String> = self
                .recovery
                .iter()
                .map(|r| format!("{} ({})", names(&r.fastest()), r.label))
                .collect();
            parts.push(format!("fastest to recover: {}", rows.join("; ")));
        } else {
            parts.push("no fault broke a session, so no recovery was timed".into());
        }
        let least = self.loss.least();
        parts.push(if least.is_empty() {
            "every transport duplicated lines, so none lost least".to_string()
        } else {
            format!("lost least: {}", names(&least))
        });
        parts.join("; ")
    }
}

/// The transports of rank 1, in the figures' order.
fn first_ranked(figures: &[Figure]) -> Vec<&str> {
    figures
        .iter()
        .filter(|f| f.rank == Some(1))
        .map(|f| f.transport.as_str())
        .collect()
}

impl Verdict {
    /// The group of a sweep label (`None`: the plain run).
    pub fn group(&self, sweep: Option<&str>) -> Option<&VerdictGroup> {
        self.groups.iter().find(|g| g.sweep.as_deref() == sweep)
    }

    /// The row of `metric` in the first group: convenient for plain runs.
    pub fn row(&self, metric: Metric) -> Option<&MetricRow> {
        self.groups.first().and_then(|g| g.row(metric))
    }

    pub fn has_caveat(&self, kind: CaveatKind) -> bool {
        self.caveats.iter().any(|c| c.kind == kind)
    }

    /// Where the claim did not hold: "latency p50 (ws #1 ahead of sse #2)", with the sweep
    /// value for sweeps.
    pub fn not_held(&self) -> Vec<String> {
        let mut out = Vec::new();
        for g in &self.groups {
            for r in g.rows.iter().filter(|r| r.claim == Claim::NotHeld) {
                let at = g
                    .sweep
                    .as_deref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default();
                out.push(format!("{}{at} ({})", r.metric.label(), r.note));
            }
        }
        out
    }

    /// Where the claim was not decided: "latency p99 (medians say …)".
    pub fn undecided(&self) -> Vec<String> {
        let mut out = Vec::new();
        for g in &self.groups {
            for r in g
                .rows
                .iter()
                .filter(|r| matches!(r.claim, Claim::Undecided { .. }))
            {
                let at = g
                    .sweep
                    .as_deref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default();
                out.push(format!("{}{at}", r.metric.label()));
            }
        }
        out
    }

    /// Repetitions per transport (the fewest any group had); 1 for single runs.
    pub fn repetitions(&self) -> usize {
        self.groups.iter().map(|g| g.repetitions).min().unwrap_or(0)
    }

    /// One sentence a person can read first.
    pub fn headline(&self) -> String {
        let mut s = if self.checked == 0 {
            format!("The claim \"{CLAIM}\" could not be checked: fewer than two of sse, ws, polling have figures.")
        } else if self.held == self.checked {
            format!(
                "The claim \"{CLAIM}\" held on all {} of {} metrics.",
                self.held, self.checked
            )
        } else {
            // Metric names only: the reasons are in the table, and a headline must stay short.
            let mut missed = Vec::new();
            for g in &self.groups {
                for r in g.rows.iter().filter(|r| r.claim == Claim::NotHeld) {
                    let at = g
                        .sweep
                        .as_deref()
                        .map(|s| format!(" at {s}"))
                        .unwrap_or_default();
                    missed.push(format!("{}{at}", r.metric.label()));
                }
            }
            let undecided = self.undecided();
            let mut s = format!(
                "The claim \"{CLAIM}\" held on {} of {} metrics",
                self.held, self.checked
            );
            if !missed.is_empty() {
                s.push_str(&format!("; it did not hold on {}", missed.join(", ")));
            }
            if !undecided.is_empty() {
                s.push_str(&format!(
                    "; not decided at {} repetitions on {}",
                    self.repetitions(),
                    undecided.join(", ")
                ));
            }
            s.push('.');
            s
        };
        for f in &self.faults {
            let at = f
                .sweep
                .as_deref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default();
            s.push_str(&format!(" Under faults{at}: {}.", f.summary()));
        }
        if self.repetitions() == 1 {
            s.push_str(
                " One run per transport: not settled (`--repeat N` runs each N times and ranks by their spread).",
            );
        } else if self.repetitions() == 2 {
            s.push_str(
                " Medians of 2 interleaved repetitions; ranks tie unless their intervals separate \
                 (with two runs an interval is their range: three or more give a 95% interval).",
            );
        } else if self.repetitions() > 2 {
            s.push_str(&format!(
                " Medians of {} interleaved repetitions; ranks tie unless their 95% intervals separate.",
                self.repetitions()
            ));
        }
        if !self.caveats.is_empty() {
            let n = self.caveats.len();
            s.push_str(&format!(
                " {n} caveat{} below may limit this.",
                if n == 1 { "" } else { "s" }
            ));
        }
        s
    }
}

/// Each transport's verdict figures over its repetitions, for summary.json.
pub fn aggregates(v: &Verdict) -> Vec<crate::results::Aggregate> {
    let mut out = Vec::new();
    for g in &v.groups {
        for t in &g.transports {
            let metrics: Vec<crate::results::MetricSpread> = g
                .rows
                .iter()
                .filter_map(|row| {
                    let s = row.figure(t)?.spread?;
                    Some(crate::results::MetricSpread {
                        metric: row.metric.label().to_string(),
                        n: s.n,
                        median: s.median,
                        min: s.min,
                        max: s.max,
                        low: s.low,
                        high: s.high,
                    })
                })
                .collect();
            out.push(crate::results::Aggregate {
                transport: t.clone(),
                sweep: g.sweep.clone(),
                repetitions: metrics.iter().map(|m| m.n).max().unwrap_or(0),
                metrics,
            });
        }
    }
    out
}

/// Ranks values, lower is better, with the tie rule of the module doc. `None` stays unranked.
/// A single value is a spread of one whose interval is the value itself, so only the
/// tolerance decides: the same anchored rule as [`rank_spreads`].
fn rank_values(values: &[Option<f64>], rel_tol: f64, abs_tol: f64) -> Vec<Option<usize>> {
    let points: Vec<Option<Spread>> = values
        .iter()
        .map(|v| v.and_then(|v| Spread::of(&[v])))
        .collect();
    rank_spreads(&points, rel_tol, abs_tol)
}

/// The verdict of a summary; see the module doc for the rules.
pub fn verdict(summary: &Summary) -> Verdict {
    let mut caveats = Vec::new();
    if summary.interrupted {
        caveats.push(Caveat {
            kind: CaveatKind::Interrupted,
            transport: None,
            sweep: None,
            text: "the run was interrupted: figures cover only what was measured before it stopped"
                .into(),
        });
    }
    let mut groups = Vec::new();
    let mut faults = Vec::new();
    for g in data::groups(summary) {
        let (ok, failed): (Vec<&TransportResult>, Vec<&TransportResult>) =
            g.runs.iter().partition(|r| r.status.is_measured());
        for r in &failed {
            let why: Vec<&str> = r.problems.iter().map(|p| p.message.as_str()).collect();
            caveats.push(caveat(
                CaveatKind::Failed,
                r,
                format!(
                    "{} failed{} ({}): excluded from the verdict and the charts",
                    r.transport,
                    g.suffix(),
                    if why.is_empty() {
                        "no reason recorded".to_string()
                    } else {
                        why.join("; ")
                    }
                ),
            ));
        }
        for r in &ok {
            for p in &r.problems {
                caveats.push(caveat(
                    CaveatKind::Degraded,
                    r,
                    format!("{} degraded{}: {}", r.transport, g.suffix(), p.message),
                ));
            }
            run_caveats(r, &g.suffix(), &mut caveats);
        }
        let group = group_verdict(
            g.sweep.clone(),
            &ok,
            failed.iter().map(|r| r.transport.clone()).collect(),
        );
        if ok.iter().any(|r| !r.faults.is_empty()) {
            fault_caveats(&ok, &g.suffix(), &mut caveats);
            faults.push(faults_verdict(g.sweep.clone(), &ok));
        }
        for class in ["sse", "ws", "polling"] {
            let present = group.transports.iter().any(|t| class_of(t) == Some(class));
            if !present {
                caveats.push(Caveat {
                    kind: CaveatKind::MissingTransport,
                    transport: None,
                    sweep: g.sweep.clone(),
                    text: format!(
                        "no successful {class} run{}: the claim was checked without it",
                        g.suffix()
                    ),
                });
            }
        }
        groups.push(group);
    }
    let held = groups.iter().map(VerdictGroup::held).sum();
    let checked = groups.iter().map(VerdictGroup::checked).sum();
    Verdict {
        groups,
        held,
        checked,
        caveats,
        faults,
    }
}

/// Every repetition of each transport, in the canonical transport order.
fn by_transport<'a>(runs: &[&'a TransportResult]) -> Vec<(String, Vec<&'a TransportResult>)> {
    let mut out: Vec<(String, Vec<&TransportResult>)> = Vec::new();
    for r in runs {
        match out.iter_mut().find(|(t, _)| *t == r.transport) {
            Some((_, reps)) => reps.push(r),
            None => out.push((r.transport.clone(), vec![r])),
        }
    }
    out.sort_by_key(|(t, _)| transport_order(t));
    out
}

/// Figures from each transport's repetitions, ranked by the module doc's rule (lower is
/// better); `ranks` overrides the ranking when given.
fn ranked_figures(
    names: &[String],
    spreads: Vec<Option<Spread>>,
    resolution: f64,
    ranks: Option<Vec<Option<usize>>>,
) -> Vec<Figure> {
    let values: Vec<Option<f64>> = spreads.iter().map(|s| s.map(|s| s.median)).collect();
    let ranks = ranks.unwrap_or_else(|| rank_spreads(&spreads, TIE_TOLERANCE, resolution));
    let best = values.iter().flatten().copied().min_by(f64::total_cmp);
    names
        .iter()
        .zip(values.iter().zip(spreads.iter().zip(&ranks)))
        .map(|(t, (v, (spread, rank)))| Figure {
            transport: t.clone(),
            value: *v,
            spread: *spread,
            ratio_to_best: match (v, best) {
                (Some(v), Some(b)) if b > 0.0 => Some(v / b),
                (Some(v), Some(b)) if *v == b => Some(1.0),
                _ => None,
            },
            rank: *rank,
        })
        .collect()
}

/// Who recovered fastest from each fault that broke sessions, and who lost least.
fn faults_verdict(sweep: Option<String>, runs: &[&TransportResult]) -> FaultsVerdict {
    let transports = by_transport(runs);
    let names: Vec<String> = transports.iter().map(|(t, _)| t.clone()).collect();
    let mut recovery = Vec::new();
    for (i, column) in fault_columns(runs).iter().enumerate() {
        if !column.broke_sessions() {
            continue;
        }
        let mut missing = Vec::new();
        let spreads = transports
            .iter()
            .map(|(t, reps)| {
                let values: Vec<f64> = reps
                    .iter()
                    .filter_map(|r| r.faults.get(i))
                    .filter(|f| f.recovery_us.count > 0)
                    .map(|f| f.recovery_us.p99 as f64)
                    .collect();
                let spread = Spread::of(&values);
                if spread.is_none() {
                    let why = reps
                        .iter()
                        .find_map(|r| r.faults.get(i))
                        .map(|f| recovery_missing(f).unwrap_or_default())
                        .unwrap_or_else(|| "its run has no such fault".into());
                    missing.push((t.clone(), why));
                }
                spread
            })
            .collect();
        recovery.push(RecoveryRow {
            label: column.label.clone(),
            figures: ranked_figures(&names, spreads, Metric::LatencyP99.resolution(), None),
            missing,
        });
    }

    // Lines are counted whole: 1 line of resolution.
    let spreads: Vec<Option<Spread>> = transports
        .iter()
        .map(|(_, reps)| {
            let values: Vec<f64> = reps
                .iter()
                .map(|r| (r.events.lost + r.events.lost_by_restart + r.events.lost_to_lag) as f64)
                .collect();
            Spread::of(&values)
        })
        .collect();
    let duplicated: Vec<(String, u64)> = transports
        .iter()
        .map(|(t, reps)| {
            let most = reps.iter().map(|r| r.events.duplicated).max().unwrap_or(0);
            (t.clone(), most)
        })
        .collect();
    // Duplicates are a failure: those that duplicated rank behind every one that did not.
    let dup = |i: usize| duplicated[i].1 > 0;
    let keep = |want: bool| -> Vec<Option<Spread>> {
        spreads
            .iter()
            .enumerate()
            .map(|(i, s)| if dup(i) == want { *s } else { None })
            .collect()
    };
    let clean_ranks = rank_spreads(&keep(false), TIE_TOLERANCE, 1.0);
    let clean = clean_ranks.iter().flatten().count();
    let dup_ranks = rank_spreads(&keep(true), TIE_TOLERANCE, 1.0);
    let ranks = clean_ranks
        .iter()
        .zip(&dup_ranks)
        .map(|(c, d)| c.or(d.map(|d| d + clean)))
        .collect();
    let loss = LossRow {
        figures: ranked_figures(&names, spreads, 1.0, Some(ranks)),
        duplicated,
    };
    FaultsVerdict {
        sweep,
        transports: names,
        recovery,
        loss,
    }
}

/// What a run's faults did that a reader must know before trusting their rows.
fn fault_caveats(runs: &[&TransportResult], at: &str, out: &mut Vec<Caveat>) {
    for r in runs {
        let calm = r.calm_latency_us.as_ref().map_or(0, |p| p.count);
        if !r.faults.is_empty() && calm < MIN_LATENCY_SAMPLES {
            out.push(caveat(
                CaveatKind::Fault,
                r,
                format!(
                    "{}{at}: calm latency (before the first fault) from only {calm} samples \
                     (fewer than {MIN_LATENCY_SAMPLES}): bystander-against-calm ratios compare \
                     with a thin baseline",
                    r.transport
                ),
            ));
        }
    }
    for column in fault_columns(runs) {
        let label = &column.label;
        // Faults with no recorded effect, once per fault and note for all transports.
        let mut silent: Vec<(String, Vec<String>)> = Vec::new();
        for (r, f) in &column.results {
            let Some(f) = f else { continue };
            let t = &r.transport;
            if let Some((hit, allowed)) = overshoot(r, f) {
                out.push(caveat(
                    CaveatKind::Fault,
                    r,
                    format!(
                        "{t}{at}: {label} hit {hit} of {} connections, more than its {:.0}% ({allowed}): \
                         its figures are those of a larger fault",
                        r.connections.clients,
                        f.fraction * 100.0
                    ),
                ));
            }
            if f.sessions_broken > 0 && f.recovery_us.count < f.sessions_broken {
                out.push(caveat(
                    CaveatKind::Fault,
                    r,
                    format!(
                        "{t}{at}: after {label} only {} of {} broken sessions received a line again: \
                         its recovery time covers those that did",
                        f.recovery_us.count, f.sessions_broken
                    ),
                ));
            }
            if f.duplicated > 0 {
                out.push(caveat(
                    CaveatKind::Fault,
                    r,
                    format!(
                        "{t}{at}: {} lines DUPLICATED after {label}: a resume must not repeat a line",
                        f.duplicated
                    ),
                ));
            }
            let no_effect = f.connections_hit.is_none() && f.sessions_broken == 0;
            if no_effect && !f.notes.is_empty() {
                let notes = f.notes.join("; ");
                match silent.iter_mut().find(|(n, _)| *n == notes) {
                    Some((_, ts)) => ts.push(r.label()),
                    None => silent.push((notes, vec![r.label()])),
                }
            }
        }
        for (notes, who) in silent {
            out.push(Caveat {
                kind: CaveatKind::Fault,
                transport: (who.len() == 1).then(|| who[0].clone()),
                sweep: runs.first().and_then(|r| r.sweep.clone()),
                text: format!(
                    "{label}{at} had no recorded effect on {} ({notes}): its rows show the clients \
                     undisturbed, not how they would recover",
                    who.join(", ")
                ),
            });
        }
    }
}

fn caveat(kind: CaveatKind, r: &TransportResult, text: String) -> Caveat {
    Caveat {
        kind,
        transport: Some(r.transport.clone()),
        sweep: r.sweep.clone(),
        text,
    }
}

/// The automatic checks on one successful run, then the warnings it recorded itself.
fn run_caveats(r: &TransportResult, at: &str, out: &mut Vec<Caveat>) {
    let t = &r.transport;
    let mut covered: Vec<&str> = Vec::new();
    if r.loadgen.saturated {
        let notes = if r.loadgen.notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.loadgen.notes.join("; "))
        };
        out.push(caveat(
            CaveatKind::Saturated,
            r,
            format!(
                "the load generator was saturated while measuring {t}{at} (CPU {:.0}% of {} cores){notes}: \
                 its figures may measure pushbench rather than the server, so the comparison may be invalid",
                r.loadgen.cpu_share * 100.0,
                r.loadgen.cores
            ),
        ));
        covered.push("saturat");
    }
    for m in Metric::ALL {
        // Left out by design, said once in the report's explanation of the table.
        let by_design = m == Metric::ConnectP50 && is_long_poll(&r.transport);
        if m.value(r).is_none() && !by_design {
            out.push(caveat(
                CaveatKind::Missing,
                r,
                format!(
                    "{t}{at}: {} not measured ({}): left out of that metric",
                    m.label(),
                    m.missing_reason(r)
                ),
            ));
        }
    }
    let e = &r.events;
    if e.lost > 0 || e.duplicated > 0 || e.out_of_order > 0 {
        out.push(caveat(
            CaveatKind::Events,
            r,
            format!(
                "{t}{at}: {} lost, {} duplicated, {} out of order of {} expected events",
                e.lost, e.duplicated, e.out_of_order, e.expected
            ),
        ));
        covered.extend(["lost", "duplicat"]);
    }
    if r.latency_us.count < MIN_LATENCY_SAMPLES {
        out.push(caveat(
            CaveatKind::FewSamples,
            r,
            format!(
                "{t}{at}: only {} latency samples (fewer than {MIN_LATENCY_SAMPLES}): tail percentiles are not meaningful",
                r.latency_us.count
            ),
        ));
        covered.push("latency samples");
    }
    let w = &r.wire;
    // Kernel totals of 0 mean TCP_INFO was not read: the percentages compare with nothing.
    let kernel_read = w.kernel_bytes_down > 0 || w.kernel_bytes_up > 0;
    if kernel_read
        && (w.kernel_diff_down_pct.abs() > MAX_KERNEL_DIFF_PCT
            || w.kernel_diff_up_pct.abs() > MAX_KERNEL_DIFF_PCT)
    {
        out.push(caveat(
            CaveatKind::KernelBytes,
            r,
            format!(
                "{t}{at}: counted wire bytes differ from the kernel's by {:.1}% down and {:.1}% up \
                 (more than {MAX_KERNEL_DIFF_PCT}%): bytes per event may be off",
                w.kernel_diff_down_pct, w.kernel_diff_up_pct
            ),
        ));
        covered.push("kernel");
    }
    // The run records some of the same findings as warnings; repeating them would bury the rest.
    for warning in &r.warnings {
        let lower = warning.to_lowercase();
        if covered.iter().any(|k| lower.contains(k)) {
            continue;
        }
        out.push(caveat(
            CaveatKind::Recorded,
            r,
            format!("{t}{at}: {warning}"),
        ));
    }
}

/// Long polls over HTTP/1.1 or HTTP/2: their first answer may be held for the whole wait.
fn is_long_poll(transport: &str) -> bool {
    matches!(transport, "long-poll" | "long-poll-h2")
}

/// The claim's class of a transport: HTTP/1.1 transports only (HTTP/2 ones are compared with
/// them in the report's HTTP/2 section, not in the claim).
fn class_of(transport: &str) -> Option<&'static str> {
    match transport {
        "sse" => Some("sse"),
        "ws" => Some("ws"),
        "poll" | "long-poll" => Some("polling"),
        _ => None,
    }
}

fn group_verdict(
    sweep: Option<String>,
    runs: &[&TransportResult],
    excluded: Vec<String>,
) -> VerdictGroup {
    let by_transport = by_transport(runs);
    let rows = Metric::ALL
        .iter()
        .map(|&m| metric_row(m, &by_transport))
        .collect();
    VerdictGroup {
        sweep,
        transports: by_transport.iter().map(|(t, _)| t.clone()).collect(),
        excluded,
        rows,
        repetitions: by_transport
            .iter()
            .map(|(_, reps)| reps.len())
            .max()
            .unwrap_or(0),
    }
}

/// Ranks spreads by median with the tie rule of the module doc, and in addition ties every
/// spread whose interval overlaps its group's anchor's.
fn rank_spreads(spreads: &[Option<Spread>], rel_tol: f64, abs_tol: f64) -> Vec<Option<usize>> {
    let mut order: Vec<(usize, Spread)> = spreads
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i, s)))
        .collect();
    order.sort_by(|a, b| a.1.median.total_cmp(&b.1.median));
    let mut ranks = vec![None; spreads.len()];
    let mut anchor: Option<(Spread, usize)> = None;
    for (position, (i, s)) in order.into_iter().enumerate() {
        let joins = anchor.is_some_and(|(a, _)| {
            s.median - a.median <= (rel_tol * a.median.abs()).max(abs_tol) || !s.separated_from(&a)
        });
        if !joins {
            anchor = Some((s, position + 1));
        }
        ranks[i] = anchor.map(|(_, rank)| rank);
    }
    ranks
}

/// Each class's best (transport, rank): polling takes the better of its two variants.
fn class_ranks(figures: &[Figure], ranks: &[Option<usize>]) -> Vec<(&'static str, String, usize)> {
    let mut classes = Vec::new();
    for class in ["sse", "ws", "polling"] {
        let best_of_class = figures
            .iter()
            .zip(ranks)
            .filter(|(f, _)| class_of(&f.transport) == Some(class))
            .filter_map(|(f, rank)| rank.map(|rank| (f.transport.clone(), rank)))
            .min_by_key(|(t, rank)| (*rank, transport_order(t)));
        if let Some((t, rank)) = best_of_class {
            classes.push((class, t, rank));
        }
    }
    classes
}

fn class_name((class, t, _): &(&str, String, usize)) -> String {
    if *class == "polling" {
        format!("polling ({t})")
    } else {
        t.clone()
    }
}

/// Where the class order breaks the claim: "ws #1 ahead of sse #2", for the adjacent pairs
/// `apart(worse, better)` confirms (a rank apart can come from a third transport's interval:
/// the pair itself must differ).
fn broken(
    classes: &[(&'static str, String, usize)],
    apart: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    classes
        .windows(2)
        .filter(|w| w[0].2 > w[1].2 && apart(&w[0].1, &w[1].1))
        .map(|w| {
            format!(
                "{} #{} ahead of {} #{}",
                class_name(&w[1]),
                w[1].2,
                class_name(&w[0]),
                w[0].2
            )
        })
        .collect()
}

fn metric_row(metric: Metric, transports: &[(String, Vec<&TransportResult>)]) -> MetricRow {
    let spreads: Vec<Option<Spread>> = transports
        .iter()
        .map(|(_, reps)| {
            let values: Vec<f64> = reps.iter().filter_map(|r| metric.value(r)).collect();
            Spread::of(&values)
        })
        .collect();
    let names: Vec<String> = transports.iter().map(|(t, _)| t.clone()).collect();
    let figures = ranked_figures(&names, spreads.clone(), metric.resolution(), None);
    // The claim is decided among its own transports: another one (an HTTP/2 transport) in the
    // ranking could regroup the ties anchored on the smallest value and so change it.
    let (claim_names, claim_spreads): (Vec<String>, Vec<Option<Spread>>) = names
        .iter()
        .zip(spreads)
        .filter(|(t, _)| class_of(t).is_some())
        .map(|(t, s)| (t.clone(), s))
        .unzip();
    let claim_figures = ranked_figures(&claim_names, claim_spreads, metric.resolution(), None);
    let displayed = figures;
    let figures = claim_figures;
    let values: Vec<Option<f64>> = figures.iter().map(|f| f.value).collect();
    let ranks: Vec<Option<usize>> = figures.iter().map(|f| f.rank).collect();

    let classes = class_ranks(&figures, &ranks);
    let (claim, note) = if classes.len() < 2 {
        (
            Claim::NotChecked,
            "needs figures for at least two of sse, ws, polling".to_string(),
        )
    } else {
        let separated = |a: &str, b: &str| match (spread_of(&figures, a), spread_of(&figures, b)) {
            (Some(a), Some(b)) => {
                let floor = (TIE_TOLERANCE * b.median.abs()).max(metric.resolution());
                a.separated_from(&b) && a.median - b.median > floor
            }
            _ => false,
        };
        let broken_by_spread = broken(&classes, separated);
        // The medians alone, with only the tolerance floor: what one number would say.
        let median_ranks = rank_values(&values, TIE_TOLERANCE, metric.resolution());
        let broken_by_median = broken(&class_ranks(&figures, &median_ranks), |_, _| true);
        let tied: Vec<String> = classes
            .windows(2)
            .filter(|w| w[0].2 == w[1].2 || (w[0].2 > w[1].2 && !separated(&w[0].1, &w[1].1)))
            .map(|w| format!("{} and {} tie", class_name(&w[0]), class_name(&w[1])))
            .collect();
        if !broken_by_spread.is_empty() {
            (Claim::NotHeld, broken_by_spread.join(", "))
        } else if !broken_by_median.is_empty() {
            let repetitions = undecided_repetitions(&figures, &classes);
            let more = match repetitions {
                Some(n) => format!("; ~{n} repetitions may decide it"),
                None => String::new(),
            };
            (
                Claim::Undecided { repetitions },
                format!(
                    "medians say {}, but the intervals overlap{more}",
                    broken_by_median.join(", ")
                ),
            )
        } else if !tied.is_empty() {
            (Claim::Held { ties: true }, tied.join(", "))
        } else {
            let order: Vec<String> = classes.iter().map(class_name).collect();
            (Claim::Held { ties: false }, order.join(" < "))
        }
    };
    MetricRow {
        metric,
        figures: displayed,
        claim,
        note,
    }
}

/// A transport's spread among a row's figures.
fn spread_of(figures: &[Figure], transport: &str) -> Option<Spread> {
    figures
        .iter()
        .find(|f| f.transport == transport)
        .and_then(|f| f.spread)
}

/// The most repetitions any tied pair of adjacent classes would need to separate.
fn undecided_repetitions(
    figures: &[Figure],
    classes: &[(&'static str, String, usize)],
) -> Option<usize> {
    classes
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (spread_of(figures, &w[0].1)?, spread_of(figures, &w[1].1)?);
            a.repetitions_to_separate(&b)
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_share_within_tolerance_anchored_on_the_smallest() {
        let r = rank_values(&[Some(104.0), Some(100.0), Some(108.0), None], 0.05, 0.0);
        assert_eq!(r, vec![Some(1), Some(1), Some(3), None]);
        let r = rank_values(&[Some(3.0), Some(2.0), Some(1.0)], 0.05, 0.0);
        assert_eq!(r, vec![Some(3), Some(2), Some(1)]);
        // Absolute resolution: 0.2 and 0.9 bytes tie although one is 4.5 times the other.
        let r = rank_values(&[Some(0.2), Some(0.9), Some(150.0)], 0.05, 1.0);
        assert_eq!(r, vec![Some(1), Some(1), Some(3)]);
    }

    #[test]
    fn formats_have_units() {
        assert_eq!(fmt_us(850.0), "850 µs");
        assert_eq!(fmt_us(12_345.0), "12.3 ms");
        assert_eq!(fmt_bytes(10_445.0), "10.2 KiB");
        assert_eq!(Metric::CpuPerEvent.format(9.04), "9.04 µs");
    }
}
