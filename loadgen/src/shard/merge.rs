//! `pushbench merge OUT DIR...`: the shards of one run, made one run again.
//!
//! What belongs together is checked first, and anything else is refused with the folders
//! named: the same scenario text, target and start instant; one shard count; each index once
//! and none missing; at most one publisher; the same list of runs. Then, run by run:
//! - the workers' histograms are added and their counters summed ([`MergedWorkers::absorb`]),
//!   never a percentile averaged;
//! - the time series is aligned by tick (every shard's tick `k` is second `k` after the
//!   shared start): counts summed, each second's latency percentiles read from the shards'
//!   interval histograms added (`latency.hlog` is merged the same way);
//! - the server's samples are taken once, from the first shard that sampled it (a shard on
//!   the server's machine): every shard that names the process sees the same one;
//! - the load generators' CPU and memory are summed over their cores; each shard's own
//!   saturation is kept and flagged, since a sum can hide one saturated shard;
//! - then [`summarize`], the function a single run calls, makes the figures.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::Histogram;

use super::record::{MeasurementsRecord, RecordError};
use super::{ShardFigures, ShardInfo};
use crate::record::{merge_histogram, new_histogram_us, IntervalLog};
use crate::results::{
    decode_histogram, now_rfc3339, read_summary, run_id_now, write_json_atomic, SeriesRow, Summary,
    TransportResult,
};
use crate::run::{summarize, Measurements, MergedWorkers, ProcWindow};

/// How deep `merge` looks for shard runs under a folder it is given.
const SEARCH_DEPTH: usize = 4;

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}: no run found (no summary.json in it or below it)")]
    NoRun(String),
    #[error("{0}: cannot read it")]
    ReadDir(String, #[source] std::io::Error),
    #[error("{path}: {why}")]
    Summary { path: String, why: String },
    #[error("{0}: not a shard's run (it was not run with --shard or --publisher-only)")]
    NotAShard(String),
    #[error("{a} and {b} ran different scenarios ({name_a:?} and {name_b:?}, or the same name with other settings): only shards of one run merge")]
    DifferentScenarios {
        a: String,
        b: String,
        name_a: String,
        name_b: String,
    },
    #[error("{a} and {b} measured different targets ({ta} and {tb})")]
    DifferentTargets {
        a: String,
        b: String,
        ta: String,
        tb: String,
    },
    #[error("{a} and {b} started at different instants (--start-at {sa} and {sb}): their phases do not coincide")]
    DifferentStarts {
        a: String,
        b: String,
        sa: String,
        sb: String,
    },
    #[error("{a} is shard {ia}/{na} but {b} is shard {ib}/{nb}: one run has one shard count")]
    ShardCounts {
        a: String,
        ia: u32,
        na: u32,
        b: String,
        ib: u32,
        nb: u32,
    },
    #[error("shard {index}/{count} appears twice: {a} and {b} (overlapping shards would count their clients twice)")]
    Overlap {
        index: u32,
        count: u32,
        a: String,
        b: String,
    },
    #[error("shard(s) {missing} of {count} are missing: a merge of some shards is not the run")]
    Missing { missing: String, count: u32 },
    #[error(
        "{a} and {b} both published: the feed was multiplied, so the run is not the scenario's"
    )]
    TwoPublishers { a: String, b: String },
    #[error("{a} ran {ra:?} but {b} ran {rb:?}")]
    DifferentRuns {
        a: String,
        b: String,
        ra: Vec<String>,
        rb: Vec<String>,
    },
    #[error("{dir}: run {label:?} has no shard record (measurements.json): was it interrupted before it ended?")]
    NoRecord { dir: String, label: String },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{path}: interval log: {why}")]
    IntervalLog { path: String, why: String },
    #[error("{0} already holds a run (summary.json): merge into a new folder")]
    OutExists(String),
    #[error("writing {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One shard's run folder, read.
struct ShardDir {
    dir: PathBuf,
    summary: Summary,
    info: ShardInfo,
    scenario: String,
}

impl ShardDir {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Merges the shard runs found in `inputs` into the run folder `out` (created); returns its
/// summary. The report is the caller's (`pushbench report` draws it like any run's).
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<Summary, MergeError> {
    if out.join("summary.json").exists() {
        return Err(MergeError::OutExists(out.display().to_string()));
    }
    let mut shards = Vec::new();
    for input in inputs {
        let found = find_runs(input, SEARCH_DEPTH)?;
        if found.is_empty() {
            return Err(MergeError::NoRun(input.display().to_string()));
        }
        for dir in found {
            shards.push(read_shard(dir)?);
        }
    }
    check(&mut shards)?;
    std::fs::create_dir_all(out).map_err(|source| MergeError::Write {
        path: out.display().to_string(),
        source,
    })?;

    let first = &shards[0];
    let mut runs = Vec::new();
    for label in &first.summary.order {
        runs.push(merge_run(out, &shards, label)?);
    }
    let mut summary = Summary {
        run_id: run_id_now(),
        started_at: first.summary.started_at.clone(),
        finished_at: Some(now_rfc3339()),
        interrupted: shards.iter().any(|s| s.summary.interrupted),
        runs,
        aggregates: Vec::new(),
        shard: None,
        shards: shards
            .iter()
            .map(|s| ShardInfo {
                run_dir: Some(s.name()),
                ..s.info.clone()
            })
            .collect(),
        ..first.summary.clone()
    };
    summary.aggregates = crate::report::aggregates(&crate::report::verdict(&summary));
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|source| MergeError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write("scenario.toml", first.scenario.as_bytes())?;
    let env = serde_json::to_vec_pretty(&first.summary.environment).unwrap_or_default();
    write("environment.json", &env)?;
    let path = out.join("summary.json");
    write_json_atomic(&path, &summary).map_err(|source| MergeError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(summary)
}

/// Run folders (holding summary.json) at or below `dir`, in name order.
fn find_runs(dir: &Path, depth: usize) -> Result<Vec<PathBuf>, MergeError> {
    if dir.join("summary.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    if depth == 0 || !dir.is_dir() {
        return Ok(Vec::new());
    }
    let read_err = |e| MergeError::ReadDir(dir.display().to_string(), e);
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    let mut found = Vec::new();
    for child in children {
        found.extend(find_runs(&child, depth - 1)?);
    }
    Ok(found)
}

fn read_shard(dir: PathBuf) -> Result<ShardDir, MergeError> {
    let path = dir.join("summary.json");
    let summary = read_summary(&path).map_err(|e| MergeError::Summary {
        path: path.display().to_string(),
        why: crate::error::chain(&e),
    })?;
    let Some(info) = summary.shard.clone() else {
        return Err(MergeError::NotAShard(dir.display().to_string()));
    };
    let scenario_path = dir.join("scenario.toml");
    let scenario = std::fs::read_to_string(&scenario_path).map_err(|e| MergeError::Summary {
        path: scenario_path.display().to_string(),
        why: e.to_string(),
    })?;
    Ok(ShardDir {
        dir,
        summary,
        info,
        scenario,
    })
}

/// Refuses shards that are not one run's; sorts them by index, a publisher-only one last.
fn check(shards: &mut [ShardDir]) -> Result<(), MergeError> {
    shards.sort_by_key(|s| s.info.index.unwrap_or(u32::MAX));
    let first = &shards[0];
    for s in shards.iter().skip(1) {
        if s.scenario != first.scenario {
            return Err(MergeError::DifferentScenarios {
                a: first.name(),
                b: s.name(),
                name_a: first.summary.scenario.clone(),
                name_b: s.summary.scenario.clone(),
            });
        }
        if s.info.target != first.info.target {
            return Err(MergeError::DifferentTargets {
                a: first.name(),
                b: s.name(),
                ta: first.info.target.clone(),
                tb: s.info.target.clone(),
            });
        }
        if s.info.start_unix_ns != first.info.start_unix_ns {
            let at = |ns: u64| match ns {
                0 => "none".to_string(),
                ns => format!("{:.3}", ns as f64 / 1e9),
            };
            return Err(MergeError::DifferentStarts {
                a: first.name(),
                b: s.name(),
                sa: at(first.info.start_unix_ns),
                sb: at(s.info.start_unix_ns),
            });
        }
        if s.summary.order != first.summary.order {
            return Err(MergeError::DifferentRuns {
                a: first.name(),
                b: s.name(),
                ra: first.summary.order.clone(),
                rb: s.summary.order.clone(),
            });
        }
    }
    // One count; each index once; none missing.
    let indexed: Vec<&ShardDir> = shards.iter().filter(|s| s.info.index.is_some()).collect();
    let count = indexed.first().map_or(0, |s| s.info.count);
    let mut seen: BTreeMap<u32, &ShardDir> = BTreeMap::new();
    for s in &indexed {
        let i = s.info.index.unwrap_or(0);
        if s.info.count != count {
            let f = indexed[0];
            return Err(MergeError::ShardCounts {
                a: f.name(),
                ia: f.info.index.unwrap_or(0),
                na: count,
                b: s.name(),
                ib: i,
                nb: s.info.count,
            });
        }
        if let Some(other) = seen.insert(i, s) {
            return Err(MergeError::Overlap {
                index: i,
                count,
                a: other.name(),
                b: s.name(),
            });
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() || count == 0 {
        return Err(MergeError::Missing {
            missing: if count == 0 {
                "1".into()
            } else {
                missing.join(", ")
            },
            count: count.max(1),
        });
    }
    let publishers: Vec<&ShardDir> = shards
        .iter()
        .filter(|s| s.info.role.is_some_and(|r| r.publishes()))
        .collect();
    if let [a, b, ..] = publishers.as_slice() {
        return Err(MergeError::TwoPublishers {
            a: a.name(),
            b: b.name(),
        });
    }
    Ok(())
}

/// One run (a transport, sweep value, repetition) of every shard, merged and summarised;
/// its folder's files written under `out`.
fn merge_run(out: &Path, shards: &[ShardDir], label: &str) -> Result<TransportResult, MergeError> {
    let mut parts = Vec::new();
    for s in shards {
        let result = s
            .summary
            .runs
            .iter()
            .find(|r| r.label() == *label)
            .ok_or_else(|| MergeError::NoRecord {
                dir: s.name(),
                label: label.to_string(),
            })?;
        let file = result
            .files
            .get("measurements")
            .ok_or_else(|| MergeError::NoRecord {
                dir: s.name(),
                label: label.to_string(),
            })?;
        let path = s.dir.join(file);
        let record = MeasurementsRecord::read(&path)?;
        let m = record.measurements(&path.display().to_string())?;
        let folder = Path::new(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        parts.push((s, result, m, folder));
    }
    let folder = parts[0].3.clone();
    let tdir = out.join(&folder);
    std::fs::create_dir_all(&tdir).map_err(|source| MergeError::Write {
        path: tdir.display().to_string(),
        source,
    })?;

    // The latency time series: each second's histograms added over the shards.
    let mut intervals: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    for (s, _, _, f) in &parts {
        let path = s.dir.join(f).join("latency.hlog");
        read_intervals(&path, &mut intervals)?;
    }
    write_intervals(&tdir.join("latency.hlog"), label, &intervals, shards)?;

    let server_from = parts
        .iter()
        .position(|(_, _, m, _)| m.server.measured)
        .unwrap_or(0);
    let mut workers = MergedWorkers::default();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for (s, _, m, _) in &parts {
        workers.absorb(&m.workers);
        let who = s.info.label();
        for p in &m.problems {
            let mut p = p.clone();
            p.message = format!("{who}: {}", p.message);
            problems.push(p);
        }
        warnings.extend(m.warnings.iter().map(|w| format!("{who}: {w}")));
    }
    let figures: Vec<ShardFigures> = parts
        .iter()
        .filter_map(|(_, r, _, _)| r.shards.first().cloned())
        .collect();
    for f in figures.iter().filter(|f| f.saturated) {
        warnings.push(format!(
            "SATURATED: {} (on {}): {}",
            f.shard,
            f.hostname,
            f.saturation_notes.join("; ")
        ));
    }
    let one_host = parts
        .iter()
        .all(|(s, _, _, _)| s.info.hostname == parts[0].0.info.hostname);
    let series = merge_series(&parts, server_from, &intervals);
    let (m0, sm) = (&parts[0].2, &parts[server_from].2);
    let measurements = Measurements {
        transport: m0.transport,
        clients: parts.iter().map(|p| p.2.clients).sum(),
        workers,
        server: sm.server.clone(),
        server_samples: sm.server_samples,
        loadgen_samples: summed_window(parts.iter().map(|p| &p.2.loadgen_samples)),
        loadgen_cores: parts.iter().map(|p| p.2.loadgen_cores).sum(),
        // The machine's CPU means something only when every shard ran on one machine.
        machine: if one_host { m0.machine } else { None },
        measure_window_ns: m0.measure_window_ns,
        clients_ended_ns: parts
            .iter()
            .map(|p| p.2.clients_ended_ns)
            .max()
            .unwrap_or(0),
        publisher: parts.iter().find_map(|p| p.2.publisher.clone()),
        problems,
        warnings,
        faults: Vec::new(),
        series,
        deployment: None,
        deployment_kind: None,
    };
    let mut result = summarize(&measurements);
    let first = parts[0].1;
    result.transport = first.transport.clone();
    result.sweep = first.sweep.clone();
    result.repetition = first.repetition;
    result.shards = figures;
    let folder = folder.display().to_string();
    write_series(&tdir.join("timeseries.jsonl"), &measurements.series)?;
    result
        .files
        .insert("timeseries".into(), format!("{folder}/timeseries.jsonl"));
    result.files.insert(
        "latency_interval_log".into(),
        format!("{folder}/latency.hlog"),
    );
    crate::run::write_histograms(&measurements.workers.recorder, &tdir, &folder, &mut result);
    Ok(result)
}

/// The load generators' windows as one: CPU and memory summed over the shards.
fn summed_window<'a>(windows: impl Iterator<Item = &'a ProcWindow>) -> ProcWindow {
    let windows: Vec<&ProcWindow> = windows.collect();
    let mut w = *windows[0];
    w.start.cpu_us = 0;
    w.end.cpu_us = windows.iter().map(|w| w.cpu_us()).sum();
    w.carried_cpu_us = 0;
    w.baseline.rss_bytes = windows.iter().map(|w| w.baseline.rss_bytes).sum();
    w.start.rss_bytes = windows.iter().map(|w| w.start.rss_bytes).sum();
    w.end.rss_bytes = windows.iter().map(|w| w.end.rss_bytes).sum();
    w
}

/// Each shard's rows summed by tick; latency percentiles from the merged intervals; the
/// server's columns from the shard that sampled it.
fn merge_series(
    parts: &[(&ShardDir, &TransportResult, Measurements, PathBuf)],
    server_from: usize,
    intervals: &BTreeMap<u64, Histogram<u64>>,
) -> Vec<SeriesRow> {
    let mut rows: BTreeMap<u64, SeriesRow> = BTreeMap::new();
    for (i, (_, _, m, _)) in parts.iter().enumerate() {
        for r in &m.series {
            let tick = r.t_s.round() as u64;
            let row = rows.entry(tick).or_insert_with(|| SeriesRow {
                t_s: tick as f64,
                ..SeriesRow::default()
            });
            row.deliveries += r.deliveries;
            row.connections += r.connections;
            row.clients_done += r.clients_done;
            row.reconnects += r.reconnects;
            row.loadgen_cpu_cores += r.loadgen_cpu_cores;
            if i == server_from {
                row.server_rss_bytes = r.server_rss_bytes;
                row.server_cpu_cores = r.server_cpu_cores;
            }
        }
    }
    for (tick, row) in rows.iter_mut() {
        if let Some(h) = intervals.get(&tick.saturating_sub(1)) {
            row.latency_p50_us = h.value_at_quantile(0.5);
            row.latency_p99_us = h.value_at_quantile(0.99);
        }
    }
    rows.into_values().collect()
}

/// Adds a shard's interval log into `into`, keyed by each interval's start second.
fn read_intervals(path: &Path, into: &mut BTreeMap<u64, Histogram<u64>>) -> Result<(), MergeError> {
    let err = |why: String| MergeError::IntervalLog {
        path: path.display().to_string(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| err(format!("{e:?}")))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let h = decode_histogram(interval.encoded_histogram())
            .map_err(|e| err(crate::error::chain(&e)))?;
        let second = interval.start_timestamp().as_secs_f64().round() as u64;
        let merged = into.entry(second).or_insert_with(new_histogram_us);
        merge_histogram(merged, &h);
    }
    Ok(())
}

fn write_intervals(
    path: &Path,
    label: &str,
    intervals: &BTreeMap<u64, Histogram<u64>>,
    shards: &[ShardDir],
) -> Result<(), MergeError> {
    let werr = |source: std::io::Error| MergeError::Write {
        path: path.display().to_string(),
        source,
    };
    let start = match shards[0].info.start_unix_ns {
        0 => std::time::SystemTime::now(),
        ns => std::time::UNIX_EPOCH + Duration::from_nanos(ns),
    };
    let file = std::fs::File::create(path).map_err(werr)?;
    let mut log = IntervalLog::new(
        std::io::BufWriter::new(file),
        start,
        &format!(
            "pushbench {label} delivery latency, microseconds, merged from {} shards",
            shards.len()
        ),
    )
    .map_err(werr)?;
    for (second, h) in intervals {
        log.write_interval(
            h,
            Duration::from_secs(*second),
            Duration::from_secs(1),
            None,
        )
        .map_err(|e| werr(std::io::Error::other(e.to_string())))?;
    }
    log.flush().map_err(werr)
}

fn write_series(path: &Path, rows: &[SeriesRow]) -> Result<(), MergeError> {
    let werr = |source: std::io::Error| MergeError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(werr)?);
    for row in rows {
        serde_json::to_writer(&mut out, row).map_err(|e| werr(e.into()))?;
        out.write_all(b"\n").map_err(werr)?;
    }
    out.flush().map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::PublishRole;

    fn shard(index: Option<u32>, count: u32, role: PublishRole) -> ShardDir {
        ShardDir {
            dir: PathBuf::from(format!("runs/{index:?}-{count}-{}", role.name())),
            summary: Summary {
                schema: "pushbench.summary".into(),
                schema_version: crate::results::SCHEMA_VERSION,
                scenario: "s".into(),
                run_id: "r".into(),
                started_at: String::new(),
                finished_at: None,
                interrupted: false,
                environment: Default::default(),
                repeat: 1,
                order: vec!["sse".into()],
                runs: Vec::new(),
                aggregates: Vec::new(),
                shard: None,
                shards: Vec::new(),
            },
            info: ShardInfo {
                index,
                count,
                role: Some(role),
                start_unix_ns: 7,
                target: "http://t:1".into(),
                ..ShardInfo::default()
            },
            scenario: "name = \"s\"".into(),
        }
    }

    fn refused(mut shards: Vec<ShardDir>) -> String {
        check(&mut shards).expect_err("must be refused").to_string()
    }

    #[test]
    fn one_run_of_shards_is_accepted_in_index_order() {
        use PublishRole::*;
        let mut shards = vec![
            shard(None, 0, PublisherOnly),
            shard(Some(2), 2, ClientsOnly),
            shard(Some(1), 2, ClientsOnly),
        ];
        check(&mut shards).unwrap();
        let order: Vec<Option<u32>> = shards.iter().map(|s| s.info.index).collect();
        assert_eq!(order, [Some(1), Some(2), None]);
    }

    #[test]
    fn shards_that_are_not_one_run_are_refused() {
        use PublishRole::*;
        let e = refused(vec![
            shard(Some(1), 2, Publishes),
            shard(Some(2), 3, ClientsOnly),
        ]);
        assert!(e.contains("one run has one shard count"), "{e}");
        let e = refused(vec![
            shard(Some(1), 2, Publishes),
            shard(Some(1), 2, ClientsOnly),
        ]);
        assert!(e.contains("shard 1/2 appears twice"), "{e}");
        let e = refused(vec![
            shard(Some(1), 3, Publishes),
            shard(Some(3), 3, ClientsOnly),
        ]);
        assert!(e.contains("shard(s) 2 of 3 are missing"), "{e}");
        let e = refused(vec![
            shard(Some(1), 2, Publishes),
            shard(Some(2), 2, Publishes),
        ]);
        assert!(e.contains("both published"), "{e}");
        let e = refused(vec![shard(None, 0, PublisherOnly)]);
        assert!(e.contains("missing"), "{e}");
        let mut late = shard(Some(2), 2, ClientsOnly);
        late.info.start_unix_ns = 8_000_000_000;
        let e = refused(vec![shard(Some(1), 2, Publishes), late]);
        assert!(e.contains("different instants"), "{e}");
        let mut other = shard(Some(2), 2, ClientsOnly);
        other.info.target = "http://u:1".into();
        let e = refused(vec![shard(Some(1), 2, Publishes), other]);
        assert!(e.contains("different targets"), "{e}");
        let mut other = shard(Some(2), 2, ClientsOnly);
        other.summary.order.push("ws".into());
        let e = refused(vec![shard(Some(1), 2, Publishes), other]);
        assert!(e.contains("ran [\"sse\"] but"), "{e}");
    }
}
