//! The results folder and `summary.json`, whose schema is versioned.
//!
//! `results/NAME/RUN_ID/`:
//! - `summary.json` — everything below, rewritten after each transport, so a crash or Ctrl-C
//!   keeps what was measured;
//! - `scenario.toml` — the scenario exactly as run; `environment.json` — machine and versions;
//! - `TRANSPORT/latency.hgrm`, `connect.hgrm`, `first_event.hgrm` — percentile spectra in
//!   HdrHistogram's text format (plotFiles-compatible);
//! - `TRANSPORT/latency.hlog` — HdrHistogram interval log, one histogram per second;
//! - `TRANSPORT/timeseries.jsonl` — one JSON object per second;
//! - `TRANSPORT/server.log` — the server's stderr.
//!
//! Histograms are also embedded in `summary.json`, serialised (HdrHistogram V2, deflate,
//! base64), so runs can be merged and redrawn without loss: percentiles are never averaged.
//!
//! Schema changes: bump [`SCHEMA_VERSION`] on any incompatible change and say what changed in
//! its doc. Adding a field is compatible: every struct below reads a missing field as its
//! default. Version 1: first version. Within it, `poll.requests`, `empty`, `empty_share` and
//! `requests_per_sec` count the measured phase only (earlier builds counted the whole run and
//! divided by its wall time, drain included); `poll.requests_total` is the whole run.
//!
//! Version 2: `status` is one of `"ok"`, `"degraded"` or `"failed"` ([`RunStatus`]) and
//! `problems` lists why a run is not ok ([`Problem`]); version 1's `"failed: WHY"` strings
//! read as `failed` with WHY as a problem. A figure that could not be measured is `null`
//! instead of 0: `wire.bytes_down_per_event`, `wire.bytes_up_per_event`. `publisher` (the load
//! generator's own publisher, external targets) and `server.measured` are new. Readers accept
//! both versions ([`check_schema`]).
//!
//! Within version 2 (compatible additions): `events.lost_by_restart`, `events.lost_to_lag`
//! and `connections.reconnects`; `faults` (one [`FaultResult`] per scheduled fault: what it
//! did, time to recover, lines caught up, lost by cause, the reconnect rate over time and the
//! server's peak CPU after it, the untouched clients' latency meanwhile) and
//! `calm_latency_us` (the latency before the first fault); `timeseries.jsonl` rows gain
//! `reconnects`. `deployment` ([`DeploymentCost`], runs pushbench started): the deployment,
//! CPU per delivered event and RSS by role (instances, publisher, redis, nginx), Redis memory
//! per held line, and why a figure is missing; fault kinds `kill_instance`, `rolling_restart`,
//! `redis_restart`. A deployment's run folder also holds `redis.log`, `publisher.log`,
//! `instance-N.log` and `nginx/` (its configuration and error log).
//!
//! Also within version 2: sharded runs (`pushbench run --shard I/N`) add `shard` to the
//! summary and `shards` (one [`crate::shard::ShardFigures`]) to each run, and write
//! `TRANSPORT/measurements.json` (the mergeable record, [`crate::shard::record`]); merged
//! runs (`pushbench merge`) list their `shards` in the summary and one `ShardFigures` per
//! shard in each run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Version of `summary.json`'s layout.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest `summary.json` version this build still reads.
const OLDEST_READABLE_SCHEMA_VERSION: u32 = 1;

/// Why a `summary.json` cannot be read by this build.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("not a pushbench summary (schema {0:?})")]
    NotASummary(String),
    #[error("summary schema version {version} is not one this pushbench reads ({OLDEST_READABLE_SCHEMA_VERSION}..={SCHEMA_VERSION})")]
    Unsupported { version: u32 },
}

/// Checks that a summary is one this build reads: every reader calls this one rule.
pub fn check_schema(summary: &Summary) -> Result<(), SchemaError> {
    if summary.schema != "pushbench.summary" {
        return Err(SchemaError::NotASummary(summary.schema.clone()));
    }
    if !(OLDEST_READABLE_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&summary.schema_version) {
        return Err(SchemaError::Unsupported {
            version: summary.schema_version,
        });
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Always "pushbench.summary".
    pub schema: String,
    pub schema_version: u32,
    pub scenario: String,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The run was stopped early (Ctrl-C); figures cover what was measured.
    pub interrupted: bool,
    pub environment: Environment,
    /// Repetitions of each transport (1: a single run each; 0 in summaries from before
    /// repetitions, which were single runs).
    #[serde(default)]
    pub repeat: u32,
    /// The runs' folder labels in the order they ran (interleaved: sse-r1, ws-r1, …, sse-r2).
    #[serde(default)]
    pub order: Vec<String>,
    pub runs: Vec<TransportResult>,
    /// Each transport's verdict figures over its repetitions: median, range and the 95%
    /// interval of the median (one entry per transport and sweep value).
    #[serde(default)]
    pub aggregates: Vec<Aggregate>,
    /// A shard's run (`pushbench run --shard I/N`): which shard, and what it shares with
    /// the others (the start instant); `None` for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// A merged run (`pushbench merge`): the shards it was merged from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<crate::shard::ShardInfo>,
}

/// One transport's figures over its repetitions (written by the run; redrawn reports
/// recompute them from `runs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Aggregate {
    pub transport: String,
    pub sweep: Option<String>,
    pub repetitions: usize,
    pub metrics: Vec<MetricSpread>,
}

/// One verdict metric over repetitions; a metric no repetition measured is absent.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MetricSpread {
    /// The verdict's name for it ("latency p99", "server RSS/connection").
    pub metric: String,
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The 95% bootstrap interval of the median.
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_bytes: u64,
    pub pushbench_version: String,
    pub git_revision: Option<String>,
    /// The working tree had uncommitted changes to tracked files: the revision alone does not
    /// say what ran.
    pub git_dirty: bool,
    pub server_binary: Option<String>,
    pub server_cpus: Vec<usize>,
    pub loadgen_cpus: Vec<usize>,
    pub loadgen_workers: usize,
}

/// One row of `TRANSPORT/timeseries.jsonl` (one per second of the run).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SeriesRow {
    /// Seconds since the transport's run started.
    pub t_s: f64,
    /// Events delivered since the previous row.
    pub deliveries: u64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub connections: u64,
    pub clients_done: u32,
    pub server_rss_bytes: u64,
    pub server_cpu_cores: f64,
    pub loadgen_cpu_cores: f64,
    /// Sessions established again after a break, in this second.
    #[serde(default)]
    pub reconnects: u64,
}

/// Percentiles of a histogram, microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EventCounts {
    /// Lines every client should have received, summed over clients.
    pub expected: u64,
    /// Distinct lines received.
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Delivered lines scheduled before their session connected (initial backlog, resumes):
    /// counted above, kept out of the latency histogram.
    pub catch_up: u64,
    /// Lines the load generator's publisher never published and a client did not receive,
    /// summed over clients: left out of `expected` and `lost` (they are not the target's loss).
    pub excused: u64,
    /// Lines a restarted server no longer had (its in-memory history was gone; it answered
    /// the resume with the oldest seq it held): in `expected`, not in `lost`.
    pub lost_by_restart: u64,
    /// Lines a slow client missed when the server's lag policy dropped it: in `expected`,
    /// not in `lost`.
    pub lost_to_lag: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WireBytes {
    /// Counted at the load generator's sockets, headers and framing included.
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// The kernel's TCP_INFO totals for the same sockets: `tcpi_bytes_received` down;
    /// `tcpi_bytes_sent − tcpi_bytes_retrans` up (not `tcpi_bytes_acked`, which lags by the
    /// bytes still awaiting a delayed ACK when the socket closes).
    pub kernel_bytes_down: u64,
    pub kernel_bytes_up: u64,
    /// (counted − kernel) / kernel, percent.
    pub kernel_diff_down_pct: f64,
    pub kernel_diff_up_pct: f64,
    pub tcp_info_errors: u64,
    /// Counted bytes per delivered event; `None` (null) when nothing was delivered or no
    /// byte was counted: a figure that was not measured, never 0.
    pub bytes_down_per_event: Option<f64>,
    pub bytes_up_per_event: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerCost {
    /// Whether a server process was sampled: the spawned feed-server, or an external target
    /// named by `server_pid` / `server_process`. When false, every figure below is
    /// meaningless (not measured) and reports show it as missing.
    pub measured: bool,
    /// The sampled process (the root of the sampled set).
    pub pid: u32,
    /// Every process sampled (a root and its descendants, e.g. nginx's master and workers).
    pub pids: Vec<u32>,
    /// The spawned server's arguments (its `--listen` left out): how to start the same
    /// server again, e.g. to drive it with another load generator. Empty for external
    /// targets.
    pub args: Vec<String>,
    /// Before any client connected.
    pub rss_baseline_bytes: u64,
    /// With every client connected (start of the measured phase).
    pub rss_connected_bytes: u64,
    pub rss_end_bytes: u64,
    /// (connected − baseline) / clients.
    pub rss_per_connection_bytes: f64,
    /// CPU time during the measured phase.
    pub cpu_us: u64,
    pub cpu_us_per_event: f64,
    pub cpu_us_per_connection_second: f64,
    /// CPU used / wall time, in cores.
    pub cpu_cores: f64,
    pub fds_connected: u64,
    pub threads: u64,
    pub exit: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PollStats {
    /// Poll answers read inside the measured phase (`duration`, after ramp-up and warm-up).
    pub requests: u64,
    /// Of those, answers with nothing new (304, or 200 with no lines).
    pub empty: u64,
    /// `empty / requests`.
    pub empty_share: f64,
    /// `requests` divided by the measured phase's length (up to an interruption, if any).
    pub requests_per_sec: f64,
    /// Poll answers over the whole run: ramp-up, warm-up, measured phase and drain.
    pub requests_total: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadgenHealth {
    /// CPU time during the measured phase.
    pub cpu_us: u64,
    /// Load generator CPU per event received in the measured phase.
    pub cpu_us_per_event: f64,
    /// Resident memory before the clients started and with all of them connected.
    pub rss_baseline_bytes: u64,
    pub rss_connected_bytes: u64,
    /// (connected − baseline) / clients: what one simulated client costs the load generator.
    pub rss_per_client_bytes: f64,
    /// CPU used / (wall time × its cores): 1.0 is every core busy all the time.
    pub cpu_share: f64,
    pub cores: usize,
    /// How late worker timers fired.
    pub sched_lag_us: Percentiles,
    pub saturated: bool,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Connections {
    pub clients: u32,
    pub connects_ok: u64,
    pub connect_errors: u64,
    /// Clients none of whose sessions connected.
    pub never_connected: u64,
    pub disconnects: u64,
    /// Sessions established again after a client's earlier session broke.
    pub reconnects: u64,
    /// TCP connections the clients opened (over HTTP/2 one per connection group, not per
    /// client): the "connections held" beside `clients`.
    pub tcp_connections_opened: u64,
    /// The most TCP connections open at once (each worker's peak, summed).
    pub tcp_connections_peak: u64,
    /// Streams (connected sessions, `connects_ok`) per TCP connection opened: 1 over
    /// HTTP/1.1 without reconnects, up to `http2.streams_per_connection` over HTTP/2.
    pub streams_per_tcp_connection: f64,
    /// What the `connect_us` samples time.
    pub connect_time: ConnectTime,
    /// Failed connects and sessions, counted by kind.
    pub failure_reasons: BTreeMap<String, u64>,
    /// The first failure of each kind, in full.
    pub failure_examples: BTreeMap<String, String>,
}

/// What a run's connect-time samples (`connect_us`) measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectTime {
    /// Every sample is a connection's: TCP (+ TLS) + handshake + first answer.
    #[default]
    Connection,
    /// HTTP/2: only the sessions that opened a TCP connection have a sample (TCP, TLS if any,
    /// h2 handshake, first response head), so connect time compares with HTTP/1.1's
    /// handshakes. Sessions that joined a connection already open have none: their wait for
    /// their stream's answer is in time to first event.
    OpenedConnections,
}

/// Whether a run's figures can be trusted as they stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Everything ran as planned.
    #[default]
    Ok,
    /// Measured, but something a reader must know went wrong (failed publishes, clients that
    /// could not connect): the figures stand with the caveats in `problems`.
    Degraded,
    /// Nothing trustworthy was measured (the server died or never started, no client
    /// connected, nothing was delivered): left out of every verdict.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Degraded => "degraded",
            RunStatus::Failed => "failed",
        }
    }

    /// Whether the run's figures take part in verdicts and charts.
    pub fn is_measured(self) -> bool {
        self != RunStatus::Failed
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads version 2's names and version 1's `"ok"` / `"failed: WHY"` (WHY becomes a problem in
/// [`Summary::upgrade`]).
impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "ok" => RunStatus::Ok,
            "degraded" => RunStatus::Degraded,
            _ => RunStatus::Failed,
        })
    }
}

/// What kind of thing went wrong in a run; each kind decides the status it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The run could not be carried out (server did not start, a file could not be written).
    RunError,
    /// The server process exited (or vanished) before the run ended.
    ServerDied,
    /// No client ever connected.
    NoClientConnected,
    /// Clients connected but no event was delivered.
    NothingDelivered,
    /// Some clients never connected, though others did.
    ClientsNeverConnected,
    /// POSTs of the load generator's publisher failed (retried or not).
    PublishFailures,
    /// Lines the publisher scheduled but could not publish (excluded from `expected`).
    Unpublished,
    /// Finishing the steps through the server's API failed: loss at a step's end is unknown.
    FinishFailed,
}

impl ProblemKind {
    /// The status a run with this problem has at best.
    pub fn status(self) -> RunStatus {
        match self {
            ProblemKind::RunError
            | ProblemKind::ServerDied
            | ProblemKind::NoClientConnected
            | ProblemKind::NothingDelivered => RunStatus::Failed,
            ProblemKind::ClientsNeverConnected
            | ProblemKind::PublishFailures
            | ProblemKind::Unpublished
            | ProblemKind::FinishFailed => RunStatus::Degraded,
        }
    }
}

/// One thing that went wrong, in words a reader acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
}

/// What the load generator's own publisher did (external targets with `publish_url`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PublisherStats {
    /// Lines due in the run (every topic).
    pub scheduled: u64,
    /// Lines the target accepted (2xx).
    pub published: u64,
    /// Lines given up (every attempt in their slot failed): their seqs are excluded from
    /// `events.expected` where a client did not receive them.
    pub unpublished: u64,
    /// POSTs that failed: connection errors, non-2xx answers, timeouts (retries included).
    pub failed_attempts: u64,
    /// Attempts after a first failure.
    pub retries: u64,
    /// Failed attempts by reason.
    pub failures: BTreeMap<String, u64>,
    /// How late each POST started against its schedule, not counting time spent waiting for
    /// the topic's previous POST (the target's slowness, which shows as latency): the load
    /// generator's own lateness.
    pub lag_us: Percentiles,
    /// Time from a POST's start to its answer: the target's publish latency.
    pub post_us: Percentiles,
    /// How the publisher's clock and POST threads were scheduled.
    pub scheduling: ThreadScheduling,
}

/// How a load generator thread that keeps time was scheduled by the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadScheduling {
    /// Ordinary time-sharing (SCHED_OTHER): the kernel refused real-time priority (no
    /// CAP_SYS_NICE), so a busy core can delay its wake-ups by milliseconds.
    #[default]
    Normal,
    /// SCHED_FIFO at the lowest real-time priority: runs as soon as it wakes, ahead of the
    /// load generator's client workers.
    Realtime,
}

/// What else the machine did during the measured phase (from /proc/stat).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineLoad {
    /// Whether /proc/stat was read at both edges of the measured phase.
    pub measured: bool,
    /// CPU of processes that are neither the server nor pushbench, in cores.
    pub other_cpu_cores: f64,
    /// CPU time the hypervisor took from this VM, in cores.
    pub steal_cores: f64,
}

/// One transport's run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransportResult {
    pub transport: String,
    /// For sweeps: `field=value`.
    pub sweep: Option<String>,
    /// Which repetition of its transport this run is, from 1; 0 when the scenario ran each
    /// transport once.
    pub repetition: u32,
    pub status: RunStatus,
    /// Why the status is not ok, most serious first.
    pub problems: Vec<Problem>,
    pub measured_seconds: f64,
    pub events: EventCounts,
    /// Deliveries per second during the measured phase.
    pub deliveries_per_sec: f64,
    pub latency_us: Percentiles,
    pub connect_us: Percentiles,
    pub first_event_us: Percentiles,
    pub wire: WireBytes,
    pub server: ServerCost,
    pub poll: Option<PollStats>,
    pub loadgen: LoadgenHealth,
    /// What else the machine did meanwhile.
    pub machine: MachineLoad,
    pub connections: Connections,
    /// Present when the load generator published the feed itself.
    pub publisher: Option<PublisherStats>,
    /// What each scheduled fault did, in the scenario's order (empty on a happy path).
    pub faults: Vec<FaultResult>,
    /// With faults: delivery latency in the measured phase before the first fault, the
    /// baseline of each fault's `bystander_latency_us`. `None` without faults.
    pub calm_latency_us: Option<Percentiles>,
    /// What serves the clients and what each of its roles cost (schema 2 addition; absent
    /// in older summaries and for external targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentCost>,
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
    /// Sharded runs: each shard's part (its clients, whether its load generator kept up, its
    /// clock's offset to the server); one entry in a shard's own result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<crate::shard::ShardFigures>,
    /// Serialised histograms (HdrHistogram V2 + deflate, base64), for merging and redrawing.
    pub histograms: BTreeMap<String, String>,
    /// Files of this run, relative to the run folder.
    pub files: BTreeMap<String, String>,
}

/// A run's deployment (`[deployment]`) and its cost per role, over the measured phase.
/// Figures a deployment cannot have (no Redis on the memory backend, no nginx without a
/// balancer) are absent, with the reason in `missing`; never 0.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeploymentCost {
    /// `memory`, `redis`, `redis+nginx ×2`: what the report and the chart call it.
    pub label: String,
    pub backend: String,
    pub instances: u32,
    pub balancer: String,
    /// By role: `instances`, `publisher`, `redis`, `nginx`.
    pub roles: BTreeMap<String, RoleCostResult>,
    /// Every role's CPU, µs, and per delivered event in the measured phase.
    pub cpu_us_total: u64,
    pub cpu_us_per_event_total: f64,
    /// Redis's memory for the feed (Redis backend only).
    pub redis_memory: Option<crate::cluster::RedisMemory>,
    /// Figure (a role's name, or `redis_memory`) → why it is missing.
    pub missing: BTreeMap<String, String>,
}

/// One role of a deployment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleCostResult {
    /// Processes of this role the run started (restarts count again).
    pub processes: u32,
    pub cpu_us: u64,
    pub cpu_us_per_event: f64,
    /// Of its processes alive at the end (with their descendants).
    pub rss_end_bytes: u64,
}

/// What one scheduled fault did to one transport's clients: everything from its start until
/// the next fault's start (or the run's end).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultResult {
    /// The kind's name as scenario files write it (`drop`, `idle_cut`, ...).
    pub kind: String,
    /// `idle_cut(after 2s) at 3s for 4s, 100%`.
    pub label: String,
    /// Start, after the measured phase began, and how long it lasted (0 for one-shot kinds).
    pub at_s: f64,
    pub duration_s: f64,
    pub fraction: f64,
    /// Who injected it: `server`, `orchestrator`, `proxy` or `clients`.
    pub injector: String,
    /// Connections the injector reports it hit (the proxy's count of cut, reset or slowed
    /// connections; the admin route's count of dropped streams; every client for a restart;
    /// the slow clients), when it can tell. `None`: not reported.
    pub connections_hit: Option<u64>,
    pub sessions_broken: u64,
    pub connect_errors: u64,
    pub reconnects: u64,
    /// Fault (or the break it caused) to the first line received again, per recovered
    /// session, in µs. Its count is the sessions that recovered.
    pub recovery_us: Percentiles,
    /// Delivery latency of the clients the fault did not touch (not slowed, not broken, no
    /// connection the proxy affected: `faults::PortMarks`)
    /// while it owned the time; compare with `calm_latency_us` (isolation).
    pub bystander_latency_us: Percentiles,
    pub caught_up: u64,
    pub duplicated: u64,
    pub gaps_detected: u64,
    pub lost_by_restart: u64,
    pub lost_to_lag: u64,
    /// Sessions established per second over the fault's time (one value per second from its
    /// start): the reconnect storm's shape.
    pub reconnects_per_sec: Vec<u64>,
    /// The server's highest one-second CPU (cores) from the fault's start to the next fault;
    /// `None` when the server was not sampled.
    pub server_peak_cpu_cores: Option<f64>,
    /// What happened that the figures do not say (the injector's own errors, for instance).
    pub notes: Vec<String>,
}

impl TransportResult {
    /// Records a problem; the status becomes the worst any problem implies.
    /// How a person names this run: "sse", "sse r2", "sse @ clients.count=100".
    pub fn label(&self) -> String {
        let mut label = self.transport.clone();
        if self.repetition > 0 {
            label.push_str(&format!(" r{}", self.repetition));
        }
        if let Some(s) = &self.sweep {
            label.push_str(&format!(" @ {s}"));
        }
        label
    }

    pub fn add_problem(&mut self, kind: ProblemKind, message: impl Into<String>) {
        let status = kind.status();
        if status == RunStatus::Failed || self.status == RunStatus::Ok {
            self.status = status;
        }
        self.problems.push(Problem {
            kind,
            message: message.into(),
        });
        // Most serious first.
        self.problems
            .sort_by_key(|p| std::cmp::Reverse(p.kind.status() == RunStatus::Failed));
    }
}

impl Summary {
    /// Brings a summary read from an older version to this version's meaning: version 1 had
    /// no `server.measured` (a sampled server had a pid) and kept a failed run's reason only
    /// in its status text and warnings.
    pub fn upgrade(&mut self) {
        if self.schema_version >= 2 {
            return;
        }
        for r in &mut self.runs {
            r.server.measured = r.server.pid != 0;
            if r.status == RunStatus::Failed && r.problems.is_empty() {
                let why = r
                    .warnings
                    .iter()
                    .find_map(|w| w.strip_prefix("run failed: "))
                    .unwrap_or("the run failed (version 1 summary)")
                    .to_string();
                r.problems.push(Problem {
                    kind: ProblemKind::RunError,
                    message: why,
                });
            }
        }
    }
}

/// Why a `summary.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadSummaryError {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid summary")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}")]
    Schema { path: PathBuf, source: SchemaError },
}

/// Reads, checks and upgrades a `summary.json`: the one way every command reads one.
pub fn read_summary(path: &Path) -> Result<Summary, ReadSummaryError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadSummaryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut summary: Summary =
        serde_json::from_str(&text).map_err(|source| ReadSummaryError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    check_schema(&summary).map_err(|source| ReadSummaryError::Schema {
        path: path.to_path_buf(),
        source,
    })?;
    summary.upgrade();
    Ok(summary)
}

/// Serialises a histogram for `summary.json` (V2 + deflate, base64).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine;
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serialising a histogram into memory");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Why an embedded histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeHistogramError {
    #[error("histogram is not base64")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram does not decode: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
}

/// The inverse of [`encode_histogram`].
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, DecodeHistogramError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(DecodeHistogramError::Decode)
}

/// `results/NAME/RUN_ID/`, created.
pub fn create_run_dir(root: &Path, scenario: &str, run_id: &str) -> std::io::Result<PathBuf> {
    let dir = root.join(scenario).join(run_id);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `value` as pretty JSON to `path` atomically (temp file, then rename), so a crash
/// mid-write never leaves a truncated summary.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.flush()?;
    }
    std::fs::rename(tmp, path)
}

/// A run id that sorts by time: `20261129T031500Z`.
pub fn run_id_now() -> String {
    format_utc(unix_now_secs(), true)
}

/// RFC 3339 UTC time of Unix seconds (or the compact run-id form), e.g.
/// `2026-11-29T03:15:00Z` (or `20261129T031500Z`), by humantime (years up to 9999).
fn format_utc(secs: u64, compact: bool) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let rfc3339 = humantime::format_rfc3339_seconds(t).to_string();
    if compact {
        rfc3339.replace(['-', ':'], "")
    } else {
        rfc3339
    }
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    format_utc(unix_now_secs(), false)
}

/// Whole seconds since the Unix epoch (0 if the clock is before it).
fn unix_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Facts about this machine and build.
pub fn environment() -> Environment {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    let git_revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let git_dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    Environment {
        git_dirty,
        hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        cpu_model,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes,
        pushbench_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision,
        ..Environment::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_through_base64() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in [1, 10, 100, 1000, 123_456] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, false), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_795_920_954, false), "2026-11-29T02:55:54Z");
        assert_eq!(format_utc(951_782_400, true), "20000229T000000Z");
    }
}
