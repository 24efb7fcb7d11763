//! A shard's record, `TRANSPORT/measurements.json`: the inputs of [`summarize`] in a form
//! that can be merged. Histograms are HdrHistogram V2 (deflate, base64) as in
//! `summary.json`, counters are counts, /proc readings are counters at the window's edges:
//! nothing in it is a percentile or a rate, so merging loses nothing.
//!
//! [`summarize`]: crate::run::summarize

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pushbench_protocol::TopicId;
use serde::{Deserialize, Serialize};

use crate::clients::failure::FailureReason;
use crate::monitor::{MachineSample, ProcSample};
use crate::publisher::{PublishReport, TopicOutcome};
use crate::record::{Counters, Recorder};
use crate::results::{
    decode_histogram, encode_histogram, DecodeHistogramError, Problem, PublisherStats, SeriesRow,
};
use crate::run::{Measurements, MergedWorkers, ProcWindow, ServerFacts};
use crate::scenario::Transport;

/// The file's `format`.
pub const RECORD_FORMAT: &str = "pushbench.measurements";
/// Its layout's version; readers refuse others.
pub const RECORD_VERSION: u32 = 1;
/// Its name in a transport's folder.
pub const RECORD_FILE: &str = "measurements.json";

/// What one shard measured in one transport's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeasurementsRecord {
    pub format: String,
    pub version: u32,
    pub transport: String,
    pub clients: u32,
    pub workers: WorkersRecord,
    pub server: ServerFacts,
    pub server_samples: WindowRecord,
    pub loadgen_samples: WindowRecord,
    pub loadgen_cores: usize,
    pub machine: Option<(MachineSample, MachineSample)>,
    pub measure_window_ns: (u64, u64),
    pub clients_ended_ns: u64,
    pub publisher: Option<PublishRecord>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    pub series: Vec<SeriesRow>,
}

/// [`MergedWorkers`], serialised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkersRecord {
    pub latency_us: String,
    pub connect_us: String,
    pub first_event_us: String,
    pub counters: Counters,
    pub sched_lag_us: String,
    pub catch_up: u64,
    pub kernel_bytes_down: u64,
    pub kernel_bytes_up: u64,
    pub tcp_info_errors: u64,
    pub failure_reasons: Vec<(FailureReason, u64)>,
    pub failure_examples: Vec<(FailureReason, String)>,
}

/// A [`ProcWindow`]: times as nanoseconds since its baseline reading (an `Instant` means
/// nothing outside its process).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct WindowRecord {
    pub baseline: SampleRecord,
    pub start: SampleRecord,
    pub end: SampleRecord,
    pub carried_cpu_us: u64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SampleRecord {
    pub at_ns: u64,
    pub cpu_us: u64,
    pub rss_bytes: u64,
    pub fds: u64,
    pub threads: u64,
}

/// A [`PublishReport`], serialised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishRecord {
    pub topics: Vec<TopicRecord>,
    pub stats: PublisherStats,
    pub lag_us: String,
    pub post_us: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopicRecord {
    pub topic: String,
    pub last_seq: u64,
    pub unpublished: Vec<u64>,
}

/// Why a record could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a shard record: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: format {format:?} version {version} is not a shard record this pushbench reads ({RECORD_FORMAT:?} version {RECORD_VERSION})")]
    Format {
        path: String,
        format: String,
        version: u32,
    },
    #[error("{path}: histogram `{which}`")]
    Histogram {
        path: String,
        which: &'static str,
        source: DecodeHistogramError,
    },
    #[error("{path}: unknown transport {name:?}")]
    Transport { path: String, name: String },
    #[error("{path}: topic {topic:?}: {why}")]
    Topic {
        path: String,
        topic: String,
        why: String,
    },
    #[error("a run with faults or a deployment cannot be recorded as a shard")]
    Unsupported,
}

fn sample_record(s: &ProcSample, since: Instant) -> SampleRecord {
    SampleRecord {
        at_ns: s.at.saturating_duration_since(since).as_nanos() as u64,
        cpu_us: s.cpu_us,
        rss_bytes: s.rss_bytes,
        fds: s.fds,
        threads: s.threads,
    }
}

fn window_record(w: &ProcWindow) -> WindowRecord {
    let since = w.baseline.at;
    WindowRecord {
        baseline: sample_record(&w.baseline, since),
        start: sample_record(&w.start, since),
        end: sample_record(&w.end, since),
        carried_cpu_us: w.carried_cpu_us,
    }
}

impl WindowRecord {
    /// The window again, its baseline at `anchor`.
    pub fn window(&self, anchor: Instant) -> ProcWindow {
        let sample = |r: &SampleRecord| ProcSample {
            at: anchor + Duration::from_nanos(r.at_ns),
            cpu_us: r.cpu_us,
            rss_bytes: r.rss_bytes,
            fds: r.fds,
            threads: r.threads,
        };
        ProcWindow {
            baseline: sample(&self.baseline),
            start: sample(&self.start),
            end: sample(&self.end),
            carried_cpu_us: self.carried_cpu_us,
        }
    }

    /// CPU inside the window (µs).
    pub fn cpu_us(&self) -> u64 {
        self.end.cpu_us.saturating_sub(self.start.cpu_us) + self.carried_cpu_us
    }
}

impl MeasurementsRecord {
    /// The record of a run's measurements.
    pub fn of(m: &Measurements) -> Result<Self, RecordError> {
        if !m.faults.is_empty() || m.deployment.is_some() {
            return Err(RecordError::Unsupported);
        }
        let w = &m.workers;
        Ok(MeasurementsRecord {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            transport: m.transport.as_str().into(),
            clients: m.clients,
            workers: WorkersRecord {
                latency_us: encode_histogram(w.recorder.latency_us()),
                connect_us: encode_histogram(w.recorder.connect_us()),
                first_event_us: encode_histogram(w.recorder.first_event_us()),
                counters: w.recorder.counters().clone(),
                sched_lag_us: encode_histogram(&w.sched_lag_us),
                catch_up: w.catch_up,
                kernel_bytes_down: w.kernel_bytes_down,
                kernel_bytes_up: w.kernel_bytes_up,
                tcp_info_errors: w.tcp_info_errors,
                failure_reasons: w.failure_reasons.iter().map(|(r, n)| (*r, *n)).collect(),
                failure_examples: w
                    .failure_examples
                    .iter()
                    .map(|(r, e)| (*r, e.clone()))
                    .collect(),
            },
            server: m.server.clone(),
            server_samples: window_record(&m.server_samples),
            loadgen_samples: window_record(&m.loadgen_samples),
            loadgen_cores: m.loadgen_cores,
            machine: m.machine,
            measure_window_ns: m.measure_window_ns,
            clients_ended_ns: m.clients_ended_ns,
            publisher: m.publisher.as_ref().map(|p| PublishRecord {
                topics: p
                    .topics
                    .iter()
                    .map(|t| TopicRecord {
                        topic: t.topic.to_string(),
                        last_seq: t.last_seq,
                        unpublished: t.unpublished.clone(),
                    })
                    .collect(),
                stats: p.stats.clone(),
                lag_us: encode_histogram(&p.lag_us),
                post_us: encode_histogram(&p.post_us),
            }),
            problems: m.problems.clone(),
            warnings: m.warnings.clone(),
            series: m.series.clone(),
        })
    }

    /// Writes the record to `path` (atomically: a merge never reads half a file).
    pub fn write(&self, path: &Path) -> Result<(), RecordError> {
        crate::results::write_json_atomic(path, self).map_err(|source| RecordError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads the record at `path`, refusing other formats and versions.
    pub fn read(path: &Path) -> Result<Self, RecordError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
            path: p.clone(),
            source,
        })?;
        #[derive(Deserialize)]
        struct Head {
            #[serde(default)]
            format: String,
            #[serde(default)]
            version: u32,
        }
        let head: Head = serde_json::from_str(&text).map_err(|source| RecordError::Json {
            path: p.clone(),
            source,
        })?;
        if head.format != RECORD_FORMAT || head.version != RECORD_VERSION {
            return Err(RecordError::Format {
                path: p,
                format: head.format,
                version: head.version,
            });
        }
        serde_json::from_str(&text).map_err(|source| RecordError::Json { path: p, source })
    }

    /// The workers' records again.
    pub fn workers(&self, path: &str) -> Result<MergedWorkers, RecordError> {
        let w = &self.workers;
        let histogram = |which: &'static str, s: &str| -> Result<Histogram<u64>, RecordError> {
            decode_histogram(s).map_err(|source| RecordError::Histogram {
                path: path.to_string(),
                which,
                source,
            })
        };
        Ok(MergedWorkers {
            recorder: Recorder::from_parts(
                histogram("latency_us", &w.latency_us)?,
                histogram("connect_us", &w.connect_us)?,
                histogram("first_event_us", &w.first_event_us)?,
                w.counters.clone(),
            ),
            sched_lag_us: histogram("sched_lag_us", &w.sched_lag_us)?,
            catch_up: w.catch_up,
            kernel_bytes_down: w.kernel_bytes_down,
            kernel_bytes_up: w.kernel_bytes_up,
            tcp_info_errors: w.tcp_info_errors,
            failure_reasons: w.failure_reasons.iter().copied().collect(),
            failure_examples: w.failure_examples.iter().cloned().collect(),
        })
    }

    /// The publisher's report again.
    pub fn publish_report(&self, path: &str) -> Result<Option<PublishReport>, RecordError> {
        let Some(p) = &self.publisher else {
            return Ok(None);
        };
        let histogram = |which: &'static str, s: &str| {
            decode_histogram(s).map_err(|source| RecordError::Histogram {
                path: path.to_string(),
                which,
                source,
            })
        };
        let mut topics = Vec::with_capacity(p.topics.len());
        for t in &p.topics {
            let topic = TopicId::parse(&t.topic).map_err(|e| RecordError::Topic {
                path: path.to_string(),
                topic: t.topic.clone(),
                why: e.to_string(),
            })?;
            topics.push(TopicOutcome {
                topic,
                last_seq: t.last_seq,
                unpublished: t.unpublished.clone(),
            });
        }
        Ok(Some(PublishReport {
            topics,
            stats: p.stats.clone(),
            lag_us: histogram("publisher.lag_us", &p.lag_us)?,
            post_us: histogram("publisher.post_us", &p.post_us)?,
        }))
    }

    /// The transport it measured.
    pub fn transport(&self, path: &str) -> Result<Transport, RecordError> {
        Transport::from_name(&self.transport).ok_or_else(|| RecordError::Transport {
            path: path.to_string(),
            name: self.transport.clone(),
        })
    }

    /// Its measurements again (one shard's: `merge` adds several).
    pub fn measurements(&self, path: &str) -> Result<Measurements, RecordError> {
        let anchor = Instant::now();
        Ok(Measurements {
            transport: self.transport(path)?,
            clients: self.clients,
            workers: self.workers(path)?,
            server: self.server.clone(),
            server_samples: self.server_samples.window(anchor),
            loadgen_samples: self.loadgen_samples.window(anchor),
            loadgen_cores: self.loadgen_cores,
            machine: self.machine,
            measure_window_ns: self.measure_window_ns,
            clients_ended_ns: self.clients_ended_ns,
            publisher: self.publish_report(path)?,
            problems: self.problems.clone(),
            warnings: self.warnings.clone(),
            faults: Vec::new(),
            series: self.series.clone(),
            deployment: None,
            deployment_kind: None,
        })
    }
}
