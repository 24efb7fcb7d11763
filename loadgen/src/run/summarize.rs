//! From what a run measured to the figures in `summary.json`: a pure function, so every
//! figure and every warning can be tested on crafted inputs without starting a process.
//!
//! [`Measurements`] holds only mergeable things (histograms, counters, /proc counters at the
//! window's edges), never percentiles or rates: a sharded run merges its shards'
//! measurements and calls the same [`summarize`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::clients::failure::FailureReason;
use crate::cluster::{Cluster, RedisMemory, Role, RoleCost};
use crate::monitor::{MachineSample, ProcSample};
use crate::publisher::{top_reasons, PublishReport};
use crate::record::{Counters, FaultRecord, Recorder};
use crate::results::{
    encode_histogram, Connections, DeploymentCost, EventCounts, FaultResult, LoadgenHealth,
    MachineLoad, Percentiles, PollStats, Problem, ProblemKind, RoleCostResult, SeriesRow,
    ServerCost, ThreadScheduling, TransportResult, WireBytes,
};
use crate::scenario::{Deployment, Fault, Injector, Transport};
use crate::worker::WorkerResult;

/// Publisher lag p99 above which the run warns that latency carries the load generator's own
/// lateness (the publisher aims for ≤ 200 µs).
const PUBLISHER_LAG_WARN_P99_US: u64 = 500;
/// Worker p99 timer lateness above which the load generator counts as saturated.
const SATURATED_LAG_P99_US: u64 = 10_000;
/// Load generator CPU share above which it counts as saturated.
const SATURATED_CPU_SHARE: f64 = 0.9;
/// CPU of other processes (cores, averaged over the measured phase) above which the run
/// warns that the machine was not quiet.
const OTHER_CPU_WARN_CORES: f64 = 0.2;
/// Hypervisor steal (cores) above which the run warns likewise.
const STEAL_WARN_CORES: f64 = 0.05;
/// Fewer latency samples than this make tail percentiles meaningless.
const FEW_SAMPLES: u64 = 1000;
/// Counted bytes may differ from the kernel's TCP_INFO by this much (%) before a warning.
const KERNEL_DIFF_WARN_PCT: f64 = 2.0;

/// The workers' records, merged.
pub struct MergedWorkers {
    pub recorder: Recorder,
    /// How late the workers' timers fired (µs).
    pub sched_lag_us: Histogram<u64>,
    pub catch_up: u64,
    pub kernel_bytes_down: u64,
    pub kernel_bytes_up: u64,
    pub tcp_info_errors: u64,
    pub failure_reasons: BTreeMap<FailureReason, u64>,
    /// The first failure of each kind, in full.
    pub failure_examples: BTreeMap<FailureReason, String>,
}

impl Default for MergedWorkers {
    fn default() -> Self {
        MergedWorkers {
            recorder: Recorder::new(),
            sched_lag_us: crate::record::new_lag_histogram_us(),
            catch_up: 0,
            kernel_bytes_down: 0,
            kernel_bytes_up: 0,
            tcp_info_errors: 0,
            failure_reasons: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
        }
    }
}

impl MergedWorkers {
    /// Adds one worker's final records.
    pub fn add(&mut self, worker: &WorkerResult) {
        let stats = &worker.stats;
        self.recorder.merge(&stats.recorder);
        let _ = self.sched_lag_us.add(&worker.sched_lag_us);
        self.catch_up += stats.catch_up;
        self.kernel_bytes_down += stats.kernel_bytes_down;
        self.kernel_bytes_up += stats.kernel_bytes_up;
        self.tcp_info_errors += stats.tcp_info_errors;
        for (reason, n) in &stats.failure_reasons {
            *self.failure_reasons.entry(*reason).or_default() += n;
        }
        for (reason, example) in &stats.failure_examples {
            self.failure_examples
                .entry(*reason)
                .or_insert_with(|| example.clone());
        }
    }
}

impl MergedWorkers {
    /// Adds another set of merged records (a shard's, in `pushbench merge`).
    pub fn absorb(&mut self, other: &MergedWorkers) {
        self.recorder.merge(&other.recorder);
        let _ = self.sched_lag_us.add(&other.sched_lag_us);
        self.catch_up += other.catch_up;
        self.kernel_bytes_down += other.kernel_bytes_down;
        self.kernel_bytes_up += other.kernel_bytes_up;
        self.tcp_info_errors += other.tcp_info_errors;
        for (reason, n) in &other.failure_reasons {
            *self.failure_reasons.entry(*reason).or_default() += n;
        }
        for (reason, example) in &other.failure_examples {
            self.failure_examples
                .entry(*reason)
                .or_insert_with(|| example.clone());
        }
    }
}

/// One process group's /proc samples: before the clients came, and at the measured phase's
/// edges.
#[derive(Clone, Copy, Debug)]
pub struct ProcWindow {
    pub baseline: ProcSample,
    pub start: ProcSample,
    pub end: ProcSample,
    /// CPU of processes that ended inside the window (a server killed by a restart fault):
    /// `end` and `start` then belong to different processes.
    pub carried_cpu_us: u64,
}

impl ProcWindow {
    /// CPU inside the window (µs).
    pub fn cpu_us(&self) -> u64 {
        self.end.cpu_us.saturating_sub(self.start.cpu_us) + self.carried_cpu_us
    }
}

/// What is known of the server under test beyond its samples.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ServerFacts {
    /// Whether any process was sampled (an external target may name none).
    pub measured: bool,
    pub pid: u32,
    pub pids: Vec<u32>,
    /// The feed-server arguments (empty for an external target).
    pub args: Vec<String>,
    pub rss_end_bytes: u64,
    /// How it exited, in words.
    pub exit: String,
    /// Why it stopped serving during the run, if it did.
    pub died: Option<String>,
}

/// Everything one transport's run measured.
pub struct Measurements {
    pub transport: Transport,
    pub clients: u32,
    pub workers: MergedWorkers,
    pub server: ServerFacts,
    pub server_samples: ProcWindow,
    pub loadgen_samples: ProcWindow,
    /// Cores the load generator may run on.
    pub loadgen_cores: usize,
    /// The whole machine's CPU at the measured phase's edges (from /proc/stat), when read.
    pub machine: Option<(MachineSample, MachineSample)>,
    /// The measured phase (Unix ns) and when the last client stopped: for poll rates.
    pub measure_window_ns: (u64, u64),
    pub clients_ended_ns: u64,
    pub publisher: Option<PublishReport>,
    /// Problems and warnings found while the run went on (finishing steps, the drain), in
    /// the order they were found; they come before those `summarize` finds.
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    /// The scheduled faults and what their injectors reported, in order.
    pub faults: Vec<FaultFacts>,
    /// The time series' rows, as the collector wrote them.
    pub series: Vec<SeriesRow>,
    /// The deployment's cost per role, when pushbench started one (not the single in-memory
    /// feed-server, whose figures are `server`).
    pub deployment: Option<DeploymentFacts>,
    /// The scenario's deployment; `None` for an external target.
    pub deployment_kind: Option<Deployment>,
}

/// What a deployment's ledger and Redis said at the end.
#[derive(Clone, Debug, Default)]
pub struct DeploymentFacts {
    pub roles: Vec<(Role, RoleCost)>,
    pub redis_memory: Option<RedisMemory>,
}

impl DeploymentFacts {
    pub fn of(cluster: &Cluster, redis_memory: Option<RedisMemory>) -> Self {
        DeploymentFacts {
            roles: Role::ALL
                .into_iter()
                .filter(|r| cluster.ledger.has(*r))
                .map(|r| (r, cluster.ledger.cost(r)))
                .collect(),
            redis_memory,
        }
    }
}

/// The deployment's figures: from its ledger, or for the single in-memory feed-server from
/// the server's own (it is the one instance). Roles it does not have are named missing.
fn deployment_cost(
    m: &Measurements,
    d: &Deployment,
    server: &ServerCost,
    events: f64,
) -> DeploymentCost {
    let mut out = DeploymentCost {
        label: d.to_string(),
        backend: d.backend.name().into(),
        instances: d.instances,
        balancer: d.balancer.name().into(),
        ..DeploymentCost::default()
    };
    let roles: Vec<(Role, RoleCost)> = match &m.deployment {
        Some(f) => f.roles.clone(),
        None => vec![(
            Role::Instance,
            RoleCost {
                processes: 1,
                cpu_us: server.cpu_us,
                rss_end_bytes: server.rss_end_bytes,
            },
        )],
    };
    for (role, cost) in &roles {
        out.roles.insert(
            role.name().into(),
            RoleCostResult {
                processes: cost.processes,
                cpu_us: cost.cpu_us,
                cpu_us_per_event: cost.cpu_us as f64 / events,
                rss_end_bytes: cost.rss_end_bytes,
            },
        );
        out.cpu_us_total += cost.cpu_us;
    }
    out.cpu_us_per_event_total = out.cpu_us_total as f64 / events;
    for role in Role::ALL {
        if out.roles.contains_key(role.name()) {
            continue;
        }
        let why = match role {
            Role::Publisher | Role::Redis => "the memory backend has none",
            Role::Nginx => "no balancer",
            Role::Instance => "no instance was sampled",
        };
        out.missing.insert(role.name().into(), why.into());
    }
    out.redis_memory = m.deployment.as_ref().and_then(|f| f.redis_memory.clone());
    match &out.redis_memory {
        None => {
            out.missing.insert(
                "redis_memory".into(),
                "the memory backend has no Redis".into(),
            );
        }
        Some(r) if r.bytes_per_line.is_none() => {
            out.missing.insert(
                "redis_memory".into(),
                r.missing.clone().unwrap_or_else(|| "not measured".into()),
            );
        }
        Some(_) => {}
    }
    out
}

/// A scheduled fault and what its injector reported.
#[derive(Clone, Debug)]
pub struct FaultFacts {
    pub fault: Fault,
    /// When it was injected, in seconds since the run started (the time series' clock);
    /// `None` if the run ended before.
    pub injected_s: Option<f64>,
    /// Connections the injector says it hit, when it can tell.
    pub connections_hit: Option<u64>,
    pub notes: Vec<String>,
}

/// One [`FaultResult`] per scheduled fault: the clients' records of it, and the time series
/// from its injection to the next fault's (or the end).
fn fault_results(m: &Measurements) -> Vec<FaultResult> {
    let records = m.workers.recorder.faults();
    m.faults
        .iter()
        .enumerate()
        .map(|(i, facts)| {
            let f = &facts.fault;
            let empty = FaultRecord::default();
            let record = records.get(i).unwrap_or(&empty);
            let c = &record.counts;
            let next = m.faults.get(i + 1).and_then(|n| n.injected_s);
            let rows: Vec<&SeriesRow> = match facts.injected_s {
                Some(from) => m
                    .series
                    .iter()
                    .filter(|r| r.t_s > from && next.is_none_or(|n| r.t_s <= n + 1.0))
                    .collect(),
                None => Vec::new(),
            };
            let mut notes = facts.notes.clone();
            if facts.injected_s.is_none() {
                notes.push("not injected: the run ended before its time".into());
            }
            FaultResult {
                kind: f.kind.name().to_string(),
                label: f.label(),
                at_s: f.at.as_secs_f64(),
                duration_s: f.duration.as_secs_f64(),
                fraction: f.fraction,
                injector: match f.kind.injector() {
                    Injector::Server => "server",
                    Injector::Orchestrator => "orchestrator",
                    Injector::Proxy => "proxy",
                    Injector::Clients => "clients",
                }
                .to_string(),
                connections_hit: facts.connections_hit,
                sessions_broken: c.sessions_broken,
                connect_errors: c.connect_errors,
                reconnects: c.reconnects,
                recovery_us: Percentiles::of(record.recovery_us()),
                bystander_latency_us: Percentiles::of(record.bystander_latency_us()),
                caught_up: c.caught_up,
                duplicated: c.duplicated,
                gaps_detected: c.gaps_detected,
                lost_by_restart: c.lost_by_restart,
                lost_to_lag: c.lost_to_lag,
                reconnects_per_sec: rows.iter().map(|r| r.reconnects).collect(),
                server_peak_cpu_cores: m
                    .server
                    .measured
                    .then(|| rows.iter().map(|r| r.server_cpu_cores).fold(0.0, f64::max)),
                notes,
            }
        })
        .collect()
}

/// The figures, problems and warnings of one run. Files and the labels of the result
/// (transport, sweep) are the caller's.
pub fn summarize(m: &Measurements) -> TransportResult {
    let mut result = TransportResult::default();
    for p in &m.problems {
        result.add_problem(p.kind, p.message.clone());
    }
    result.warnings.extend(m.warnings.iter().cloned());

    let s = &m.server_samples;
    let measured = s.end.at.duration_since(s.start.at).as_secs_f64().max(1e-3);
    let c = m.workers.recorder.counters().clone();
    let latency = m.workers.recorder.latency_us();
    let events_in_window = latency.len().max(1) as f64;
    let clients = m.clients.max(1) as f64;

    result.measured_seconds = measured;
    result.events = EventCounts {
        expected: c.expected,
        delivered: c.delivered,
        lost: c.lost,
        duplicated: c.duplicated,
        out_of_order: c.out_of_order,
        catch_up: m.workers.catch_up,
        excused: c.excused,
        lost_by_restart: c.lost_by_restart,
        lost_to_lag: c.lost_to_lag,
    };
    result.deliveries_per_sec = latency.len() as f64 / measured;
    result.latency_us = Percentiles::of(latency);
    result.connect_us = Percentiles::of(m.workers.recorder.connect_us());
    result.first_event_us = Percentiles::of(m.workers.recorder.first_event_us());
    result.wire = wire_bytes(&c, &m.workers);

    let server_cpu = s.cpu_us();
    result.server = ServerCost {
        measured: m.server.measured,
        pid: m.server.pid,
        pids: m.server.pids.clone(),
        args: m.server.args.clone(),
        rss_baseline_bytes: s.baseline.rss_bytes,
        rss_connected_bytes: s.start.rss_bytes,
        rss_end_bytes: m.server.rss_end_bytes,
        rss_per_connection_bytes: (s.start.rss_bytes as f64 - s.baseline.rss_bytes as f64)
            / clients,
        cpu_us: server_cpu,
        cpu_us_per_event: server_cpu as f64 / events_in_window,
        cpu_us_per_connection_second: server_cpu as f64 / (clients * measured),
        cpu_cores: server_cpu as f64 / 1e6 / measured,
        fds_connected: s.start.fds,
        threads: s.start.threads,
        exit: m.server.exit.clone(),
    };
    result.deployment = m
        .deployment_kind
        .as_ref()
        .map(|d| deployment_cost(m, d, &result.server, events_in_window));
    if m.transport.served_by() == pushbench_protocol::Transport::Poll {
        result.poll = Some(poll_stats(&c, m.measure_window_ns, m.clients_ended_ns));
    }
    result.loadgen = loadgen_health(m, measured, events_in_window);
    result.machine = machine_load(m, measured);
    result.faults = fault_results(m);
    result.calm_latency_us = m.workers.recorder.calm_latency_us().map(Percentiles::of);
    result.connections = Connections {
        reconnects: c.reconnects,
        tcp_connections_opened: c.tcp_connections_opened,
        tcp_connections_peak: c.tcp_connections_peak,
        streams_per_tcp_connection: match c.tcp_connections_opened {
            0 => 0.0,
            n => c.connects_ok as f64 / n as f64,
        },
        connect_time: match m.transport.http2() {
            true => crate::results::ConnectTime::OpenedConnections,
            false => crate::results::ConnectTime::Connection,
        },
        clients: m.clients,
        connects_ok: c.connects_ok,
        connect_errors: c.connect_errors,
        never_connected: c.clients_never_connected,
        disconnects: c.disconnects,
        failure_reasons: m
            .workers
            .failure_reasons
            .iter()
            .map(|(reason, n)| (reason.to_string(), *n))
            .collect(),
        failure_examples: m
            .workers
            .failure_examples
            .iter()
            .map(|(reason, example)| (reason.to_string(), example.clone()))
            .collect(),
    };
    if let Some(report) = &m.publisher {
        add_publisher(&mut result, report);
    }
    add_problems(&mut result, m, &c);
    add_warnings(&mut result, &c, latency.len(), m.clients);
    result
}

/// Counted bytes, the kernel's count beside them, and bytes per delivered event.
fn wire_bytes(c: &Counters, w: &MergedWorkers) -> WireBytes {
    let pct = |counted: u64, kernel: u64| {
        if kernel == 0 {
            0.0
        } else {
            (counted as f64 - kernel as f64) / kernel as f64 * 100.0
        }
    };
    // Per delivered event, or not measured: no delivery or no byte counted is no figure.
    let per_event = |bytes: u64| {
        (c.delivered > 0 && c.bytes_down > 0).then(|| bytes as f64 / c.delivered as f64)
    };
    WireBytes {
        bytes_down: c.bytes_down,
        bytes_up: c.bytes_up,
        kernel_bytes_down: w.kernel_bytes_down,
        kernel_bytes_up: w.kernel_bytes_up,
        kernel_diff_down_pct: pct(c.bytes_down, w.kernel_bytes_down),
        kernel_diff_up_pct: pct(c.bytes_up, w.kernel_bytes_up),
        tcp_info_errors: w.tcp_info_errors,
        bytes_down_per_event: per_event(c.bytes_down),
        bytes_up_per_event: per_event(c.bytes_up),
    }
}

/// The load generator's own cost, and whether it may have been the bottleneck.
fn loadgen_health(m: &Measurements, measured: f64, events_in_window: f64) -> LoadgenHealth {
    let l = &m.loadgen_samples;
    let cores = m.loadgen_cores.max(1);
    let cpu = l.cpu_us();
    let cpu_share = cpu as f64 / 1e6 / measured / cores as f64;
    let lag = Percentiles::of(&m.workers.sched_lag_us);
    let mut notes = Vec::new();
    if cpu_share > SATURATED_CPU_SHARE {
        notes.push(format!(
            "load generator used {:.0}% of its {cores} core(s): it may have been the bottleneck",
            cpu_share * 100.0
        ));
    }
    if lag.p99 > SATURATED_LAG_P99_US {
        notes.push(format!(
            "load generator timers fired {} ms late at p99: its clients read late, inflating latency",
            lag.p99 / 1000
        ));
    }
    LoadgenHealth {
        cpu_us: cpu,
        cpu_us_per_event: cpu as f64 / events_in_window,
        rss_baseline_bytes: l.baseline.rss_bytes,
        rss_connected_bytes: l.start.rss_bytes,
        rss_per_client_bytes: (l.start.rss_bytes as f64 - l.baseline.rss_bytes as f64)
            / m.clients.max(1) as f64,
        cpu_share,
        cores,
        saturated: !notes.is_empty(),
        sched_lag_us: lag,
        notes,
    }
}

/// What else the machine was doing during the measured phase: CPU of processes that are
/// neither the server nor pushbench, and time the hypervisor took (steal).
fn machine_load(m: &Measurements, measured: f64) -> MachineLoad {
    let Some((start, end)) = m.machine else {
        return MachineLoad::default();
    };
    let busy = end.busy_us.saturating_sub(start.busy_us);
    let ours = m.server_samples.cpu_us() + m.loadgen_samples.cpu_us();
    MachineLoad {
        measured: true,
        other_cpu_cores: busy.saturating_sub(ours) as f64 / 1e6 / measured,
        steal_cores: end.steal_us.saturating_sub(start.steal_us) as f64 / 1e6 / measured,
    }
}

/// The publisher's figures, its failures as problems, its lateness as a warning.
fn add_publisher(result: &mut TransportResult, report: &PublishReport) {
    let p = &report.stats;
    if p.failed_attempts > 0 {
        result.add_problem(
            ProblemKind::PublishFailures,
            format!(
                "{} of the publisher's POSTs failed ({} retried): {}",
                p.failed_attempts,
                p.retries,
                top_reasons(&p.failures)
            ),
        );
    }
    if p.unpublished > 0 {
        result.add_problem(
            ProblemKind::Unpublished,
            format!(
                "{} of {} scheduled lines were never published; they are not counted as the target's loss",
                p.unpublished, p.scheduled
            ),
        );
    }
    // The publisher's lateness is in every latency figure (open loop, as it must be): say so
    // when it is large enough to matter beside what the target adds.
    if p.lag_us.p99 > PUBLISHER_LAG_WARN_P99_US {
        result.warnings.push(format!(
            "the publisher started its POSTs late by {} µs at p99 ({:?} scheduling): latency includes it{}",
            p.lag_us.p99,
            p.scheduling,
            match p.scheduling {
                ThreadScheduling::Normal => "; run pushbench with CAP_SYS_NICE (e.g. as root) for real-time publisher threads",
                ThreadScheduling::Realtime => "; give pushbench a core of its own",
            }
        ));
    }
    result
        .histograms
        .insert("publish_lag_us".into(), encode_histogram(&report.lag_us));
    result
        .histograms
        .insert("publish_post_us".into(), encode_histogram(&report.post_us));
    result.publisher = Some(report.stats.clone());
}

/// What makes the run degraded or failed.
fn add_problems(result: &mut TransportResult, m: &Measurements, c: &Counters) {
    let reasons = &m.workers;
    if let Some(why) = &m.server.died {
        result.add_problem(ProblemKind::ServerDied, format!("the server died: {why}"));
    }
    if m.clients == 0 {
        // A publisher-only shard: it runs no client, so there is no client to fail.
        return;
    }
    if c.connects_ok == 0 {
        result.add_problem(
            ProblemKind::NoClientConnected,
            format!(
                "no client ever connected ({} attempts failed{})",
                c.connect_errors,
                first_reason(reasons)
            ),
        );
    } else if c.delivered == 0 {
        result.add_problem(
            ProblemKind::NothingDelivered,
            "clients connected but no event was delivered",
        );
    }
    if c.clients_never_connected > 0 && c.connects_ok > 0 {
        result.add_problem(
            ProblemKind::ClientsNeverConnected,
            format!(
                "{} of {} clients never connected{}",
                c.clients_never_connected,
                m.clients,
                first_reason(reasons)
            ),
        );
    }
    if c.connect_errors > 0 && c.connects_ok > 0 {
        // Retried until they connected: a caveat, not a failure of the run (a foreign target
        // answers 404 until a step's first line is published).
        result.warnings.push(format!(
            "{} connection attempts failed and were retried{}",
            c.connect_errors,
            first_reason(reasons)
        ));
    }
}

/// Caveats a reader must see beside the figures.
fn add_warnings(result: &mut TransportResult, c: &Counters, latency_samples: u64, clients: u32) {
    let machine = &result.machine;
    if machine.other_cpu_cores > OTHER_CPU_WARN_CORES || machine.steal_cores > STEAL_WARN_CORES {
        result.warnings.push(format!(
            "NOISY: other processes used {:.2} cores and the hypervisor took {:.2} during the measured phase: figures may differ from a quiet machine's",
            machine.other_cpu_cores, machine.steal_cores
        ));
    }
    let saturated: Vec<String> = result
        .loadgen
        .notes
        .iter()
        .map(|n| format!("SATURATED: {n}"))
        .collect();
    result.warnings.extend(saturated);
    if c.lost > 0 {
        result.warnings.push(format!(
            "LOSS: {} of {} expected events never arrived",
            c.lost, c.expected
        ));
    }
    if c.duplicated > 0 || c.out_of_order > 0 {
        result.warnings.push(format!(
            "{} duplicated and {} out-of-order events",
            c.duplicated, c.out_of_order
        ));
    }
    if latency_samples < FEW_SAMPLES && clients > 0 {
        result.warnings.push(format!(
            "only {latency_samples} latency samples: tail percentiles are not meaningful"
        ));
    }
    let w = &result.wire;
    if w.tcp_info_errors > 0 {
        result.warnings.push(format!(
            "TCP_INFO unreadable on {} sockets",
            w.tcp_info_errors
        ));
    }
    if w.kernel_diff_down_pct.abs() > KERNEL_DIFF_WARN_PCT
        || w.kernel_diff_up_pct.abs() > KERNEL_DIFF_WARN_PCT
    {
        result.warnings.push(format!(
            "counted bytes differ from the kernel's by {:.2}% down, {:.2}% up",
            w.kernel_diff_down_pct, w.kernel_diff_up_pct
        ));
    }
}

/// `; most often (N×): FAILURE` for the most frequent kind of failure (its first one in
/// full), or nothing.
fn first_reason(w: &MergedWorkers) -> String {
    w.failure_reasons
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(reason, n)| {
            let example = w.failure_examples.get(reason).cloned();
            format!(
                "; most often ({n}×): {}",
                example.unwrap_or_else(|| reason.to_string())
            )
        })
        .unwrap_or_default()
}

/// Polling figures of the measured phase. Answers are counted by the client when read, if
/// read inside the window `[start, end]` (Unix ns); the rate divides by the window's length,
/// cut short where the clients stopped before its end (an interrupted run).
pub fn poll_stats(c: &Counters, (start, end): (u64, u64), clients_ended_ns: u64) -> PollStats {
    let window_s = end.min(clients_ended_ns).saturating_sub(start) as f64 / 1e9;
    PollStats {
        requests: c.polls_measured,
        empty: c.polls_empty_measured,
        empty_share: c.polls_empty_measured as f64 / c.polls_measured.max(1) as f64,
        requests_per_sec: c.polls_measured as f64 / window_s.max(1e-3),
        requests_total: c.polls,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::results::{PublisherStats, RunStatus};

    fn proc(at: Instant, cpu_us: u64, rss_bytes: u64) -> ProcSample {
        ProcSample {
            at,
            cpu_us,
            rss_bytes,
            fds: 110,
            threads: 3,
        }
    }

    /// A clean 10-second run of 100 SSE clients: 20,000 lines each received once, 200 B
    /// down and 1 B up per line, bytes matching the kernel's.
    fn clean() -> Measurements {
        let t = Instant::now();
        let mut workers = MergedWorkers::default();
        let r = &mut workers.recorder;
        for i in 0..20_000u64 {
            r.record_latency_us(300 + i % 1000);
        }
        for _ in 0..100 {
            r.record_connect_us(200);
            r.record_first_event_us(5_000);
        }
        let c = r.counters_mut();
        c.expected = 20_000;
        c.delivered = 20_000;
        c.connects_ok = 100;
        c.bytes_down = 4_000_000;
        c.bytes_up = 20_000;
        workers.kernel_bytes_down = 4_000_000;
        workers.kernel_bytes_up = 20_000;
        let _ = workers.sched_lag_us.record(900);
        Measurements {
            transport: Transport::Sse,
            clients: 100,
            workers,
            server: ServerFacts {
                measured: true,
                pid: 42,
                pids: vec![42],
                args: vec!["--transport".into(), "sse".into()],
                rss_end_bytes: 9_000_000,
                exit: "exited 0".into(),
                died: None,
            },
            // 1 MB more with 100 clients; 2 s of CPU over 10 s.
            server_samples: ProcWindow {
                carried_cpu_us: 0,
                baseline: proc(t, 0, 8_000_000),
                start: proc(t, 1_000_000, 9_000_000),
                end: proc(t + Duration::from_secs(10), 3_000_000, 9_100_000),
            },
            loadgen_samples: ProcWindow {
                carried_cpu_us: 0,
                baseline: proc(t, 0, 5_000_000),
                start: proc(t, 500_000, 6_000_000),
                end: proc(t + Duration::from_secs(10), 1_500_000, 6_000_000),
            },
            loadgen_cores: 1,
            // 3.2 s busy in 10 s: server 2 s + pushbench 1 s + 0.2 s of others.
            machine: Some((
                MachineSample::default(),
                MachineSample {
                    busy_us: 3_200_000,
                    steal_us: 100_000,
                },
            )),
            measure_window_ns: (1_000_000_000, 11_000_000_000),
            clients_ended_ns: 14_000_000_000,
            publisher: None,
            problems: Vec::new(),
            warnings: Vec::new(),
            faults: Vec::new(),
            series: Vec::new(),
            deployment: None,
            deployment_kind: None,
        }
    }

    fn has_warning(r: &TransportResult, start: &str) -> bool {
        r.warnings.iter().any(|w| w.starts_with(start))
    }

    #[test]
    fn a_clean_run_has_every_figure_and_no_caveat() {
        let r = summarize(&clean());
        assert_eq!(r.status, RunStatus::Ok, "{:?}", r.problems);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.measured_seconds, 10.0);
        assert_eq!(r.deliveries_per_sec, 2_000.0);
        assert_eq!(
            (r.events.expected, r.events.delivered, r.events.lost),
            (20_000, 20_000, 0)
        );
        assert_eq!(r.latency_us.count, 20_000);
        assert!(
            (790..=810).contains(&r.latency_us.p50),
            "{:?}",
            r.latency_us
        );
        assert_eq!(r.connect_us.p50, 200);
        assert_eq!(r.wire.bytes_down_per_event, Some(200.0));
        assert_eq!(r.wire.bytes_up_per_event, Some(1.0));
        assert_eq!(r.wire.kernel_diff_down_pct, 0.0);
        // Server: (9 MB − 8 MB) / 100 clients; 2 s CPU / 20,000 events; 0.2 cores.
        assert_eq!(r.server.rss_per_connection_bytes, 10_000.0);
        assert_eq!(r.server.cpu_us, 2_000_000);
        assert_eq!(r.server.cpu_us_per_event, 100.0);
        assert!((r.server.cpu_cores - 0.2).abs() < 1e-9);
        assert_eq!(r.server.cpu_us_per_connection_second, 2_000.0);
        assert_eq!((r.server.fds_connected, r.server.threads), (110, 3));
        assert_eq!(r.server.rss_end_bytes, 9_000_000);
        // Load generator: 1 s of CPU over 10 s on one core; 10 kB per client.
        assert!((r.loadgen.cpu_share - 0.1).abs() < 1e-9);
        assert_eq!(r.loadgen.cpu_us_per_event, 50.0);
        assert_eq!(r.loadgen.rss_per_client_bytes, 10_000.0);
        assert!(!r.loadgen.saturated);
        assert!(r.poll.is_none(), "SSE has no poll figures");
        assert!(r.publisher.is_none());
        assert!(r.machine.measured);
        assert!((r.machine.other_cpu_cores - 0.02).abs() < 1e-9);
        assert!((r.machine.steal_cores - 0.01).abs() < 1e-9);
    }

    #[test]
    fn a_busy_machine_is_warned() {
        let mut m = clean();
        m.machine = Some((
            MachineSample::default(),
            MachineSample {
                busy_us: 8_000_000,
                steal_us: 0,
            },
        ));
        let r = summarize(&m);
        assert!((r.machine.other_cpu_cores - 0.5).abs() < 1e-9);
        assert!(has_warning(&r, "NOISY: other processes used 0.50 cores"));
        m.machine = None;
        let r = summarize(&m);
        assert!(
            !r.machine.measured,
            "no /proc/stat: not measured, not zero load"
        );
    }

    #[test]
    fn poll_runs_get_poll_figures() {
        let mut m = clean();
        m.transport = Transport::LongPoll;
        let c = m.workers.recorder.counters_mut();
        (c.polls, c.polls_measured, c.polls_empty_measured) = (1_200, 1_000, 100);
        let p = summarize(&m).poll.expect("poll figures");
        assert_eq!((p.requests, p.empty, p.requests_total), (1_000, 100, 1_200));
        assert_eq!(p.requests_per_sec, 100.0);
    }

    #[test]
    fn loss_duplicates_and_few_samples_are_warned() {
        let mut m = clean();
        let mut few = MergedWorkers::default();
        few.recorder.record_latency_us(500);
        *few.recorder.counters_mut() = Counters {
            expected: 100,
            delivered: 90,
            lost: 10,
            duplicated: 2,
            out_of_order: 1,
            connects_ok: 1,
            bytes_down: 9_000,
            ..Counters::default()
        };
        m.workers = few;
        let r = summarize(&m);
        assert!(has_warning(
            &r,
            "LOSS: 10 of 100 expected events never arrived"
        ));
        assert!(has_warning(&r, "2 duplicated and 1 out-of-order events"));
        assert!(has_warning(&r, "only 1 latency samples"));
        // No kernel count (0): no difference is claimed, and none is warned.
        assert_eq!(r.wire.kernel_diff_down_pct, 0.0);
        assert_eq!(
            r.status,
            RunStatus::Ok,
            "loss is a finding, not a broken run"
        );
    }

    #[test]
    fn bytes_that_disagree_with_the_kernel_are_warned() {
        let mut m = clean();
        m.workers.kernel_bytes_down = 3_900_000;
        m.workers.tcp_info_errors = 3;
        let r = summarize(&m);
        assert!((r.wire.kernel_diff_down_pct - 2.564).abs() < 0.01);
        assert!(has_warning(
            &r,
            "counted bytes differ from the kernel's by 2.56% down"
        ));
        assert!(has_warning(&r, "TCP_INFO unreadable on 3 sockets"));
    }

    #[test]
    fn nothing_delivered_means_no_bytes_per_event_and_a_failed_run() {
        let mut m = clean();
        let mut none = MergedWorkers::default();
        none.recorder.counters_mut().connects_ok = 100;
        m.workers = none;
        let r = summarize(&m);
        assert_eq!(r.wire.bytes_down_per_event, None);
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.problems[0].kind, ProblemKind::NothingDelivered);
    }

    #[test]
    fn connection_failures_are_problems_or_warnings_with_their_reason() {
        let mut m = clean();
        let c = m.workers.recorder.counters_mut();
        c.connect_errors = 7;
        c.clients_never_connected = 2;
        let reason = FailureReason::Status {
            answer: crate::clients::failure::Answer::EventStream,
            status: 503,
        };
        m.workers.failure_reasons.insert(reason, 7);
        m.workers
            .failure_examples
            .insert(reason, "HTTP 503 from the event stream: busy".into());
        let r = summarize(&m);
        assert_eq!(r.status, RunStatus::Degraded);
        assert_eq!(r.problems[0].kind, ProblemKind::ClientsNeverConnected);
        assert_eq!(
            r.problems[0].message,
            "2 of 100 clients never connected; most often (7×): HTTP 503 from the event stream: busy"
        );
        assert_eq!(
            r.connections
                .failure_reasons
                .get("HTTP 503 from the event stream"),
            Some(&7)
        );
        assert!(has_warning(
            &r,
            "7 connection attempts failed and were retried"
        ));

        let mut m = clean();
        let c = m.workers.recorder.counters_mut();
        (c.connects_ok, c.connect_errors) = (0, 40);
        let r = summarize(&m);
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.problems[0].kind, ProblemKind::NoClientConnected);
        assert_eq!(
            r.problems[0].message,
            "no client ever connected (40 attempts failed)"
        );
    }

    #[test]
    fn a_dead_server_fails_the_run_and_earlier_findings_come_first() {
        let mut m = clean();
        m.server.died = Some("the server process 42 has exited, 4.0 s into the run".into());
        m.problems.push(Problem {
            kind: ProblemKind::FinishFailed,
            message: "could not finish the steps".into(),
        });
        m.warnings.push("stopped 3 clients".into());
        let r = summarize(&m);
        assert_eq!(r.status, RunStatus::Failed);
        // Failed before degraded; earlier findings before later ones.
        assert_eq!(r.problems[0].kind, ProblemKind::ServerDied);
        assert_eq!(r.problems[1].kind, ProblemKind::FinishFailed);
        assert_eq!(r.warnings[0], "stopped 3 clients");
    }

    #[test]
    fn a_saturated_load_generator_is_said_so() {
        let mut m = clean();
        // 9.5 s of CPU in 10 s on one core, timers 12 ms late.
        m.loadgen_samples.end.cpu_us = 10_000_000;
        let _ = m.workers.sched_lag_us.record_n(12_000, 1000);
        let r = summarize(&m);
        assert!(r.loadgen.saturated);
        assert_eq!(r.loadgen.notes.len(), 2, "{:?}", r.loadgen.notes);
        assert!(has_warning(
            &r,
            "SATURATED: load generator used 95% of its 1 core(s)"
        ));
        assert!(has_warning(
            &r,
            "SATURATED: load generator timers fired 12 ms late"
        ));
    }

    #[test]
    fn an_unmeasured_server_stays_marked_unmeasured() {
        let mut m = clean();
        m.server = ServerFacts::default();
        let zero = proc(m.server_samples.start.at, 0, 0);
        m.server_samples.baseline = zero;
        m.server_samples.start = zero;
        m.server_samples.end.cpu_us = 0;
        m.server_samples.end.rss_bytes = 0;
        let r = summarize(&m);
        assert!(!r.server.measured);
        assert_eq!(r.server.cpu_us, 0);
    }

    fn publisher(
        failed: u64,
        unpublished: u64,
        lag_p99: u64,
        scheduling: ThreadScheduling,
    ) -> PublishReport {
        let mut failures = BTreeMap::new();
        if failed > 0 {
            failures.insert("HTTP 503".to_string(), failed);
        }
        PublishReport {
            topics: Vec::new(),
            stats: PublisherStats {
                scheduled: 1_000,
                published: 1_000 - unpublished,
                unpublished,
                failed_attempts: failed,
                retries: failed,
                failures,
                lag_us: Percentiles {
                    p99: lag_p99,
                    ..Percentiles::default()
                },
                scheduling,
                ..PublisherStats::default()
            },
            lag_us: crate::record::new_histogram_us(),
            post_us: crate::record::new_histogram_us(),
        }
    }

    #[test]
    fn publisher_failures_degrade_the_run_and_late_publishing_is_warned() {
        let mut m = clean();
        m.publisher = Some(publisher(0, 0, 80, ThreadScheduling::Realtime));
        let r = summarize(&m);
        assert_eq!(r.status, RunStatus::Ok);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.publisher.as_ref().map(|p| p.scheduled), Some(1_000));
        assert!(r.histograms.contains_key("publish_lag_us"));

        m.publisher = Some(publisher(12, 3, 900, ThreadScheduling::Normal));
        let r = summarize(&m);
        assert_eq!(r.status, RunStatus::Degraded);
        let kinds: Vec<_> = r.problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [ProblemKind::PublishFailures, ProblemKind::Unpublished]
        );
        assert!(r.problems[0]
            .message
            .starts_with("12 of the publisher's POSTs failed (12 retried)"));
        assert!(has_warning(
            &r,
            "the publisher started its POSTs late by 900 µs at p99 (Normal scheduling)"
        ));
    }

    #[test]
    fn poll_rate_counts_the_measured_phase_only() {
        let c = Counters {
            polls: 1_500,
            polls_empty: 1_400,
            polls_measured: 1_000,
            polls_empty_measured: 900,
            ..Counters::default()
        };
        // A 2 s measured phase; the clients stopped well after it (drain).
        let s = 5_000_000_000;
        let p = poll_stats(&c, (s, s + 2_000_000_000), s + 9_000_000_000);
        assert_eq!((p.requests, p.empty, p.requests_total), (1_000, 900, 1_500));
        assert!((p.empty_share - 0.9).abs() < 1e-9);
        assert!((p.requests_per_sec - 500.0).abs() < 1e-9);
        // Interrupted half-way through: the rate is over the half that ran.
        let p = poll_stats(&c, (s, s + 2_000_000_000), s + 1_000_000_000);
        assert!((p.requests_per_sec - 1_000.0).abs() < 1e-9);
        // Stopped before the phase began: no division by zero.
        let p = poll_stats(&Counters::default(), (s, s + 1), s - 1);
        assert_eq!(p.requests_per_sec, 0.0);
    }
}
