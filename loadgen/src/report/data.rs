//! Reading a run back: `summary.json`, `timeseries.jsonl`, histograms, sweep labels, and the
//! grouping of a sweep's runs by swept value.

use std::path::Path;

use hdrhistogram::Histogram;

use super::ReportError;
use crate::record::{merge_histogram, new_histogram_us};
use crate::results::{
    decode_histogram, encode_histogram, read_summary, Percentiles, Summary, TransportResult,
};

const SUMMARY_FILE: &str = "summary.json";

/// Reads and checks `run_dir/summary.json`.
pub fn load_summary(run_dir: &Path) -> Result<Summary, ReportError> {
    let path = run_dir.join(SUMMARY_FILE);
    // A newer schema may have changed a field's meaning: read_summary refuses it rather than
    // let the report draw nonsense.
    let summary = read_summary(&path)?;
    if summary.runs.is_empty() {
        return Err(ReportError::NoRuns { path });
    }
    Ok(summary)
}

pub use crate::results::SeriesRow;

/// The time series of one run, or `None` when it has none (a run that failed early).
///
/// Unparsable lines are skipped: the file is appended to live, so a crash can leave a
/// truncated last line, and the rest is still worth drawing.
pub fn load_timeseries(run_dir: &Path, run: &TransportResult) -> Option<Vec<SeriesRow>> {
    let rel = run.files.get("timeseries")?;
    let text = std::fs::read_to_string(run_dir.join(rel)).ok()?;
    let rows: Vec<SeriesRow> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (!rows.is_empty()).then_some(rows)
}

/// Deliveries per second from per-interval counts: rows are about one second apart, but
/// dividing by the real gap keeps a late tick from showing as a spike.
pub fn deliveries_per_second(rows: &[SeriesRow]) -> Vec<(f64, f64)> {
    let mut prev = 0.0;
    rows.iter()
        .map(|r| {
            let dt = (r.t_s - prev).max(1e-3);
            prev = r.t_s;
            (r.t_s, r.deliveries as f64 / dt)
        })
        .collect()
}

/// Decodes histogram `name` ("latency", "connect", "first_event") of a run; `None` if absent.
pub fn histogram(run: &TransportResult, name: &str) -> Result<Option<Histogram<u64>>, ReportError> {
    let encoded = run
        .histograms
        .get(&format!("{name}_us"))
        .or_else(|| run.histograms.get(name));
    let Some(encoded) = encoded else {
        return Ok(None);
    };
    decode_histogram(encoded)
        .map(Some)
        .map_err(|source| ReportError::Histogram {
            transport: run.transport.clone(),
            name: name.to_string(),
            source,
        })
}

/// A parsed sweep label `field=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    /// The swept field, e.g. `clients.count`.
    pub key: String,
    /// The value as written, e.g. `250ms`.
    pub raw: String,
    /// The value as a number (durations in seconds), if it is one.
    pub value: Option<f64>,
    pub is_duration: bool,
}

/// Parses `clients.count=1000` or `feed.interval=250ms`.
fn parse_sweep(label: &str) -> SweepPoint {
    let (key, raw) = label.split_once('=').unwrap_or(("sweep", label));
    let (value, is_duration) = match parse_value(raw) {
        Some((v, d)) => (Some(v), d),
        None => (None, false),
    };
    SweepPoint {
        key: key.trim().to_string(),
        raw: raw.trim().to_string(),
        value,
        is_duration,
    }
}

/// A plain number (`1000`, `1_000`, `0.5`) or a duration (`250ms`, `1.5s`, `2m`) in
/// seconds; the flag says which.
fn parse_value(raw: &str) -> Option<(f64, bool)> {
    let s: String = raw.trim().chars().filter(|c| *c != '_').collect();
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some((v, false));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|&i| i > 0)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some((n * scale, true))
}

/// Runs that share one sweep value (or all runs of a run without a sweep).
#[derive(Clone, Debug)]
pub struct Group<'a> {
    pub sweep: Option<String>,
    pub point: Option<SweepPoint>,
    /// In the canonical transport order (see [`transport_order`]).
    pub runs: Vec<&'a TransportResult>,
}

impl Group<'_> {
    /// " at clients.count=1000" for titles, empty without a sweep.
    pub fn suffix(&self) -> String {
        self.sweep
            .as_deref()
            .map(|s| format!(" at {s}"))
            .unwrap_or_default()
    }
}

/// The summary's runs grouped by sweep label: by numeric value when every label has one,
/// otherwise in the order the runs were made. Runs without a label come first.
pub fn groups(summary: &Summary) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for run in &summary.runs {
        match groups.iter_mut().find(|g| g.sweep == run.sweep) {
            Some(g) => g.runs.push(run),
            None => groups.push(Group {
                sweep: run.sweep.clone(),
                point: run.sweep.as_deref().map(parse_sweep),
                runs: vec![run],
            }),
        }
    }
    let numeric = groups
        .iter()
        .all(|g| g.point.as_ref().is_none_or(|p| p.value.is_some()));
    if numeric {
        // Stable sort: a missing label sorts first, then by value.
        groups.sort_by(|a, b| {
            let va = a.point.as_ref().and_then(|p| p.value);
            let vb = b.point.as_ref().and_then(|p| p.value);
            match (va, vb) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
    for g in &mut groups {
        g.runs.sort_by_key(|r| transport_order(&r.transport));
    }
    groups
}

/// One result per transport, its repetitions merged (a single run stays as it is). Counts
/// and bytes are summed; latency, connect and first-event histograms are merged, so their
/// percentiles come from every repetition's samples (never averaged); figures that are
/// already ratios (server memory per connection, CPU per event, the load generator's share)
/// are the repetitions' medians. For the charts and totals; the verdict ranks repetitions
/// by their spread instead.
pub fn merge_repetitions(runs: &[&TransportResult]) -> Vec<TransportResult> {
    let mut merged: Vec<TransportResult> = Vec::new();
    let mut reps_of: Vec<Vec<&TransportResult>> = Vec::new();
    for r in runs {
        match merged.iter().position(|m| m.transport == r.transport) {
            Some(i) => reps_of[i].push(r),
            None => {
                merged.push((*r).clone());
                reps_of.push(vec![r]);
            }
        }
    }
    for (m, reps) in merged.iter_mut().zip(&reps_of) {
        if reps.len() > 1 {
            merge_into(m, reps);
        }
    }
    merged
}

fn merge_into(m: &mut TransportResult, reps: &[&TransportResult]) {
    m.repetition = 0;
    let sum = |f: &dyn Fn(&TransportResult) -> u64| reps.iter().map(|r| f(r)).sum::<u64>();
    let e = &mut m.events;
    e.expected = sum(&|r| r.events.expected);
    e.delivered = sum(&|r| r.events.delivered);
    e.lost = sum(&|r| r.events.lost);
    e.duplicated = sum(&|r| r.events.duplicated);
    e.out_of_order = sum(&|r| r.events.out_of_order);
    e.catch_up = sum(&|r| r.events.catch_up);
    e.excused = sum(&|r| r.events.excused);
    m.measured_seconds = reps.iter().map(|r| r.measured_seconds).sum();
    for name in ["latency_us", "connect_us", "first_event_us"] {
        // Without every repetition's histogram, the first one's percentiles stand.
        let Some(h) = merged_histogram(reps, name) else {
            continue;
        };
        *match name {
            "latency_us" => &mut m.latency_us,
            "connect_us" => &mut m.connect_us,
            _ => &mut m.first_event_us,
        } = Percentiles::of(&h);
        m.histograms.insert(name.to_string(), encode_histogram(&h));
    }
    m.deliveries_per_sec = m.latency_us.count as f64 / m.measured_seconds.max(1e-3);
    let w = &mut m.wire;
    w.bytes_down = sum(&|r| r.wire.bytes_down);
    w.bytes_up = sum(&|r| r.wire.bytes_up);
    w.kernel_bytes_down = sum(&|r| r.wire.kernel_bytes_down);
    w.kernel_bytes_up = sum(&|r| r.wire.kernel_bytes_up);
    let delivered = m.events.delivered;
    let per_event =
        |bytes: u64| (delivered > 0 && w.bytes_down > 0).then(|| bytes as f64 / delivered as f64);
    w.bytes_down_per_event = per_event(w.bytes_down);
    w.bytes_up_per_event = per_event(w.bytes_up);
    let median = |f: &dyn Fn(&TransportResult) -> f64| {
        let values: Vec<f64> = reps.iter().map(|r| f(r)).collect();
        super::spread::Spread::of(&values).map_or(0.0, |s| s.median)
    };
    m.server.rss_per_connection_bytes = median(&|r| r.server.rss_per_connection_bytes);
    m.server.cpu_us_per_event = median(&|r| r.server.cpu_us_per_event);
    m.server.cpu_cores = median(&|r| r.server.cpu_cores);
    m.loadgen.cpu_share = median(&|r| r.loadgen.cpu_share);
    m.loadgen.cpu_us_per_event = median(&|r| r.loadgen.cpu_us_per_event);
}

/// Histogram `name` of every repetition, added together; `None` if one is missing or
/// unreadable.
fn merged_histogram(reps: &[&TransportResult], name: &str) -> Option<Histogram<u64>> {
    let mut h = new_histogram_us();
    for r in reps {
        let one = decode_histogram(r.histograms.get(name)?).ok()?;
        merge_histogram(&mut h, &one);
    }
    Some(h)
}

/// Whether the summary is a sweep (some run has a sweep label).
pub fn is_sweep(summary: &Summary) -> bool {
    summary.runs.iter().any(|r| r.sweep.is_some())
}

/// Sort key putting the known transports first, in the claim's order, each HTTP/2 transport
/// right after the HTTP/1.1 one it rides over (so tables and charts show them side by side).
pub fn transport_order(name: &str) -> (usize, String) {
    let i = match name {
        "sse" => 0,
        "sse-h2" => 1,
        "ws" => 2,
        "poll" => 3,
        "poll-h2" => 4,
        "long-poll" => 5,
        "long-poll-h2" => 6,
        _ => 7,
    };
    (i, name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_values_parse() {
        let p = parse_sweep("clients.count=1000");
        assert_eq!(
            (p.key.as_str(), p.value, p.is_duration),
            ("clients.count", Some(1000.0), false)
        );
        assert_eq!(parse_value("250ms"), Some((0.25, true)));
        assert_eq!(parse_value("1.5s"), Some((1.5, true)));
        assert_eq!(parse_value("2m"), Some((120.0, true)));
        assert_eq!(parse_value("10_000"), Some((10_000.0, false)));
        assert_eq!(parse_value("fast"), None);
        assert_eq!(parse_value("10 parsecs"), None);
        assert_eq!(parse_sweep("feed.mode=burst").value, None);
    }

    #[test]
    fn deliveries_per_second_uses_the_real_gap() {
        let rows = [
            SeriesRow {
                t_s: 1.0,
                deliveries: 100,
                ..Default::default()
            },
            SeriesRow {
                t_s: 3.0,
                deliveries: 100,
                ..Default::default()
            },
        ];
        assert_eq!(
            deliveries_per_second(&rows),
            vec![(1.0, 100.0), (3.0, 50.0)]
        );
    }
}
