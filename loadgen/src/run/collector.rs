//! The collector: receives the workers' messages, writes one row of `timeseries.jsonl` and
//! one interval of `latency.hlog` per second, and keeps each worker's final records.
//!
//! Rows are keyed by the workers' own tick numbers, not by when the collector happens to
//! wake: a row is complete when every live worker has sent that second, so no second is
//! counted twice or left empty because two clocks drifted.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::monitor::{sample, MonitorError, ProcSample, ServerProcesses};
use crate::record::{IntervalLog, IntervalSnapshot};
use crate::results::SeriesRow;
use crate::worker::{WorkerMsg, WorkerResult};

/// Samples the server's processes, or reads zeros when there are none to see (an external
/// target without `server_pid` / `server_process`: its figures are marked not measured).
pub fn sample_server(watch: Option<&ServerProcesses>) -> Result<ProcSample, MonitorError> {
    match watch {
        Some(w) => w.sample(),
        None => Ok(ProcSample {
            at: std::time::Instant::now(),
            cpu_us: 0,
            rss_bytes: 0,
            fds: 0,
            threads: 0,
        }),
    }
}

/// Writes `timeseries.jsonl` and the interval log, one row per second of worker ticks.
struct SeriesWriter {
    series: BufWriter<std::fs::File>,
    interval_log: IntervalLog<BufWriter<std::fs::File>>,
    /// Per tick: the merged snapshot and how many workers sent it.
    pending: BTreeMap<u64, (IntervalSnapshot, usize)>,
    prev_server: ProcSample,
    prev_self: ProcSample,
    watch: Option<ServerProcesses>,
}

impl SeriesWriter {
    fn add(&mut self, tick: u64, snapshot: &IntervalSnapshot) {
        let entry = self
            .pending
            .entry(tick)
            .or_insert_with(|| (IntervalSnapshot::new(), 0));
        entry.0.merge(snapshot);
        entry.1 += 1;
    }

    /// Writes every complete row, oldest first, and returns them.
    fn emit_complete(
        &mut self,
        live_workers: usize,
        connections: u64,
        done: u32,
    ) -> Vec<SeriesRow> {
        let mut rows = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().1 < live_workers.max(1) {
                break;
            }
            let (tick, (merged, _)) = entry.remove_entry();
            let now_server = sample_server(self.watch.as_ref()).unwrap_or(self.prev_server);
            let now_self = sample(0).unwrap_or(self.prev_self);
            let wall = now_self
                .at
                .duration_since(self.prev_self.at)
                .as_secs_f64()
                .max(1e-3);
            let _ = self.interval_log.write_interval(
                &merged.latency_us,
                Duration::from_secs(tick.saturating_sub(1)),
                Duration::from_secs(1),
                None,
            );
            let row = SeriesRow {
                t_s: tick as f64,
                deliveries: merged.deliveries,
                latency_p50_us: merged.latency_us.value_at_quantile(0.5),
                latency_p99_us: merged.latency_us.value_at_quantile(0.99),
                connections,
                clients_done: done,
                server_rss_bytes: now_server.rss_bytes,
                server_cpu_cores: now_server.cpu_us.saturating_sub(self.prev_server.cpu_us) as f64
                    / 1e6
                    / wall,
                loadgen_cpu_cores: now_self.cpu_us.saturating_sub(self.prev_self.cpu_us) as f64
                    / 1e6
                    / wall,
                reconnects: merged.reconnects,
            };
            let _ = serde_json::to_writer(&mut self.series, &row);
            let _ = self.series.write_all(b"\n");
            let _ = self.series.flush();
            self.prev_server = now_server;
            self.prev_self = now_self;
            rows.push(row);
        }
        rows
    }
}

/// Why the collector's files could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("creating {path}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("creating the interval log: {0}")]
    IntervalLog(std::io::Error),
}

/// The collector of one transport's run.
pub struct Collector {
    series: SeriesWriter,
    open_by_worker: Vec<u64>,
    done_by_worker: Vec<u32>,
    finals: Vec<Option<Box<WorkerResult>>>,
}

impl Collector {
    /// Creates `dir/timeseries.jsonl` and `dir/latency.hlog` for `workers` workers; the
    /// first row's CPU rates are measured from `server_start` and `self_start`.
    pub fn create(
        dir: &Path,
        label: &str,
        workers: usize,
        watch: Option<ServerProcesses>,
        server_start: ProcSample,
        self_start: ProcSample,
    ) -> Result<Self, CollectorError> {
        let create = |name: &str| {
            let path = dir.join(name);
            std::fs::File::create(&path)
                .map(BufWriter::new)
                .map_err(|source| CollectorError::Create {
                    path: path.display().to_string(),
                    source,
                })
        };
        let series = create("timeseries.jsonl")?;
        let interval_log = IntervalLog::new(
            create("latency.hlog")?,
            SystemTime::now(),
            &format!("pushbench {label} delivery latency, microseconds"),
        )
        .map_err(CollectorError::IntervalLog)?;
        Ok(Collector {
            series: SeriesWriter {
                series,
                interval_log,
                pending: BTreeMap::new(),
                prev_server: server_start,
                prev_self: self_start,
                watch,
            },
            open_by_worker: vec![0; workers],
            done_by_worker: vec![0; workers],
            finals: (0..workers).map(|_| None).collect(),
        })
    }

    /// Workers that have not sent their final records yet.
    pub fn live_workers(&self) -> usize {
        self.finals.iter().filter(|f| f.is_none()).count()
    }

    /// Clients that have settled their account (their step ended, or they were stopped).
    pub fn clients_done(&self) -> u32 {
        self.done_by_worker.iter().sum()
    }

    /// Samples another server process from now on (a restarted one), `first` being its
    /// first sample: the next row's CPU is measured from it.
    pub fn replace_server(&mut self, watch: Option<ServerProcesses>, first: ProcSample) {
        self.series.watch = watch;
        self.series.prev_server = first;
    }

    /// The latest /proc samples the series took (server, load generator).
    pub fn last_samples(&self) -> (ProcSample, ProcSample) {
        (self.series.prev_server, self.series.prev_self)
    }

    /// Takes one worker message; returns the rows it completed.
    pub fn receive(&mut self, msg: WorkerMsg) -> Vec<SeriesRow> {
        match msg {
            WorkerMsg::Tick {
                worker,
                tick,
                snapshot,
                open_connections,
                clients_done,
            } => {
                self.series.add(tick, &snapshot);
                self.open_by_worker[worker] = open_connections;
                self.done_by_worker[worker] = clients_done;
            }
            WorkerMsg::Done { worker, result } => {
                self.open_by_worker[worker] = 0;
                self.done_by_worker[worker] = result.stats.clients_done;
                self.finals[worker] = Some(result);
            }
        }
        // A second's row is written once every live worker has reported it.
        let connections = self.open_by_worker.iter().sum();
        self.series
            .emit_complete(self.live_workers(), connections, self.clients_done())
    }

    /// Flushes the files; the workers' final records.
    pub fn finish(mut self) -> Vec<WorkerResult> {
        let _ = self.series.interval_log.flush();
        let _ = self.series.series.flush();
        self.finals.into_iter().flatten().map(|b| *b).collect()
    }
}
