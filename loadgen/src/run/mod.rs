//! Running a scenario: for each transport, a fresh server, the clients, the collector, and
//! the figures that go into `summary.json`.
//!
//! One transport's run, in order ([`run_transport`]):
//! 1. start `feed-server` (pinned), or the scenario's `[deployment]` (redis-server, the
//!    publisher, the instances, nginx: [`crate::cluster`]), or check the external target is
//!    there, and sample its baseline memory (`target`);
//! 2. plan the topics, the clients and the phases (`plan`), start the publisher (external
//!    targets) and the worker threads; clients connect over the ramp-up;
//! 3. warm-up (recorded for loss, not for latency), then the measured phase: the
//!    `collector` writes one row per second while `Conductor` samples the server and the
//!    load generator at the phase's edges;
//! 4. finish every step (through the server's API, or by the publisher's last seq): each
//!    client must then receive everything up to the step's final seq, within the drain time;
//! 5. stop the clients and the server; merge the workers' records and [`summarize`] them
//!    (a pure function), then write the histograms.

mod collector;
mod faults;
mod plan;
mod summarize;
mod target;

pub use faults::FAULT_ADMIN_TOKEN;
pub use plan::{assign_topics, generated_topics, server_args, Timeline};
pub use summarize::{
    poll_stats, summarize, DeploymentFacts, FaultFacts, Measurements, MergedWorkers, ProcWindow,
    ServerFacts,
};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushbench_feed::clock::unix_nanos;
use pushbench_protocol::TopicId;
use tokio::sync::mpsc;

use crate::clients::socket::ReadLimit;
use crate::control::RunControl;
use crate::controlplane::{self, finish_topics, ControlError};
use crate::faults::{FaultId, FaultProxy, PortMarks};
use crate::monitor::{sample, sample_machine, MachineSample, ProcSample};
use crate::orchestrate::Pinning;
use crate::progress::Progress;
use crate::publisher::{PublishError, PublishPlan, PublishReport, Publisher};
use crate::record::{write_hgrm, Recorder};
use crate::results::{encode_histogram, Problem, ProblemKind, TransportResult};
use crate::scenario::{FaultKind, Injector, Scenario, Transport};
use crate::shard::record::{MeasurementsRecord, RecordError, RECORD_FILE};
use crate::shard::{ShardFigures, ShardRun};
use crate::tls::{TlsError, TlsTarget};
use crate::worker::{self, WorkerMsg};

use collector::{sample_server, Collector, CollectorError};
use faults::FaultSchedule;
use plan::topics_of_build;
use target::{ServerUnderTest, TargetError};

/// How the run is executed, beyond the scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub pinning: Option<Pinning>,
    pub workers: usize,
    pub server_binary: PathBuf,
    /// A shell command run before each transport's run (`--before-each`).
    pub before_each: Option<String>,
    pub progress: Progress,
    /// Set by Ctrl-C: finish the current transport early and skip the rest.
    pub interrupted: Arc<AtomicBool>,
    /// This process is one shard of a run spread over several (`--shard`, `--start-at`,
    /// `--publisher-only`): its clients, whether it publishes, and when this run starts.
    pub shard: Option<ShardRun>,
}

/// Why a transport's run could not be carried out (it is then `failed`, with this reason).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("creating {path}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    BeforeEach(#[from] BeforeEachError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("sampling {what}")]
    Sample {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Publisher(#[from] PublishError),
    #[error("the publisher thread failed: {0}")]
    PublisherThread(tokio::task::JoinError),
    #[error(transparent)]
    Collector(#[from] CollectorError),
    #[error("starting the fault proxy")]
    Proxy(#[source] std::io::Error),
    #[error("this shard reached its start instant {late} late (setting up took longer than the time left before --start-at): the other shards are already running, so its clients would be out of step; give a later --start-at")]
    StartedLate { late: String },
    #[error("writing the shard's record")]
    Record(#[from] RecordError),
}

/// Runs one transport of a scenario; writes its files under `dir/TRANSPORT[-sweep]/`.
pub async fn run_transport(
    sc: &Scenario,
    transport: Transport,
    sweep: Option<&str>,
    repetition: Option<u32>,
    dir: &Path,
    opts: &RunOptions,
) -> TransportResult {
    let mut label = transport.as_str().to_string();
    if let Some(r) = repetition {
        label.push_str(&format!("-r{r}"));
    }
    if let Some(s) = sweep {
        label.push_str(&format!("-{}", sanitize(s)));
    }
    let mut result = TransportResult {
        transport: transport.as_str().to_string(),
        sweep: sweep.map(str::to_string),
        repetition: repetition.unwrap_or(0),
        ..TransportResult::default()
    };
    if let Err(e) = run_in(sc, transport, dir, &label, opts, &mut result).await {
        result.add_problem(ProblemKind::RunError, crate::error::chain(&e));
    }
    result
}

/// [`run_transport`]'s body: fills `result`, files first, so a run that fails half-way
/// still names what it wrote.
async fn run_in(
    sc: &Scenario,
    transport: Transport,
    dir: &Path,
    label: &str,
    opts: &RunOptions,
    result: &mut TransportResult,
) -> Result<(), RunError> {
    let tdir = dir.join(label);
    std::fs::create_dir_all(&tdir).map_err(|source| RunError::CreateDir {
        path: tdir.display().to_string(),
        source,
    })?;
    if let Some(command) = &opts.before_each {
        run_before_each(command, transport, &tdir.join("before-each.log")).await?;
        result
            .files
            .insert("before_each_log".into(), format!("{label}/before-each.log"));
    }
    let server = ServerUnderTest::start(sc, transport, &tdir.join("server.log"), opts).await?;
    if server.process.is_some() {
        result
            .files
            .insert("server_log".into(), format!("{label}/server.log"));
    }
    if let Some(cluster) = &server.cluster {
        for (name, file) in cluster.log_files() {
            result.files.insert(name, format!("{label}/{file}"));
        }
    }
    // Before the clients come: the exchange should not queue behind them.
    let clock = match &opts.shard {
        Some(_) => Some(measure_clock(sc).await),
        None => None,
    };
    let measurements = measure(sc, transport, server, &tdir, label, opts, result).await?;
    let mut summary = summarize(&measurements);
    summary.transport = std::mem::take(&mut result.transport);
    summary.sweep = result.sweep.take();
    summary.repetition = result.repetition;
    summary.files = std::mem::take(&mut result.files);
    *result = summary;
    write_histograms(&measurements.workers.recorder, &tdir, label, result);
    if let (Some(shard), Some(clock)) = (&opts.shard, clock) {
        MeasurementsRecord::of(&measurements)?.write(&tdir.join(RECORD_FILE))?;
        result
            .files
            .insert("measurements".into(), format!("{label}/{RECORD_FILE}"));
        let figures = ShardFigures::of(result, shard, clock);
        result.shards = vec![figures];
    }
    Ok(())
}

/// This machine's clock against the target's: the offset, or why it is missing.
async fn measure_clock(sc: &Scenario) -> Result<crate::clock::ClockOffset, String> {
    let Some(origin) = sc.target.as_ref().and_then(crate::shard::target_origin) else {
        return Err("the target has no URL to ask the time".into());
    };
    let insecure = sc.target.as_ref().is_some_and(|t| t.insecure);
    let client = controlplane::client(insecure, 1).map_err(|e| crate::error::chain(&e))?;
    let url = crate::clock::time_url(&origin);
    crate::clock::measure_offset(&client, &url, crate::clock::DEFAULT_EXCHANGES)
        .await
        .map_err(|e| crate::error::chain(&e))
}

/// Steps 2–5 of a run: clients, publisher, collector, phases; what was measured. Longer
/// than a screen because it is the run's sequence of steps, each a few lines, in the order
/// they happen; the work of each lives in its own function or type.
async fn measure(
    sc: &Scenario,
    transport: Transport,
    server: ServerUnderTest,
    tdir: &Path,
    label: &str,
    opts: &RunOptions,
    result: &mut TransportResult,
) -> Result<Measurements, RunError> {
    let ServerUnderTest {
        process,
        endpoint,
        watch,
        cluster,
    } = server;
    let mut warnings = Vec::new();
    if watch.is_none() {
        warnings.push(
            "external target: server memory and CPU were not measured (no process to sample; \
             name it with `target.server_pid` or `target.server_process`)"
                .to_string(),
        );
    }
    // Let the generator create its topics and the allocator settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = sample_server(watch.as_ref()).map_err(|e| RunError::Sample {
        what: "the server",
        source: e.into(),
    })?;

    // The whole run's count: the ramp-up spreads every client of every shard.
    let all_clients = sc.clients.count;
    // External targets with a publish URL get the load generator's own open-loop publisher,
    // with a fresh build number per run (runs against one long-lived target never read each
    // other's lines); its markers carry seq and scheduled time.
    let publish_url = sc.target.as_ref().and_then(|t| t.publish_url.clone());
    // Shards name the build after their shared start instant, so they all read one build.
    let start_unix_ns = opts.shard.as_ref().and_then(|s| s.start_unix_ns);
    let topics = match publish_url {
        Some(_) => topics_of_build(
            sc,
            &format!("pb{}", start_unix_ns.unwrap_or_else(unix_nanos) / 1_000_000),
        ),
        None => generated_topics(sc),
    };
    if sc.target.is_some() && publish_url.is_none() {
        warnings.push(
            "external target without a publish URL: the target's own seq and ts are trusted, and loss at the end of a step cannot be detected"
                .into(),
        );
    }
    let timeline = Timeline::of(sc);
    let (planned, planned_unix) = match start_unix_ns {
        Some(at) => wait_for_start(at).await?,
        None => (tokio::time::Instant::now(), unix_nanos()),
    };
    let at_unix = |d: Duration| planned_unix + d.as_nanos() as u64;
    let uses_proxy = sc
        .faults
        .iter()
        .any(|f| f.kind.injector() == Injector::Proxy);
    let proxy_marks = PortMarks::default();
    let mut control = RunControl::new(
        at_unix(timeline.measure_start),
        at_unix(timeline.measure_end),
    )
    .with_faults(FaultSchedule::windows(
        &sc.faults,
        at_unix(timeline.measure_start),
        sc.deployment.instances,
    ));
    if uses_proxy {
        control = control.with_proxy_marks(proxy_marks.clone());
    }
    let control = Arc::new(control);
    let insecure = sc.target.as_ref().is_some_and(|t| t.insecure);
    // The HTTP/2 transports speak TLS to an `https://` target, or to the spawned feed-server
    // with `http2.tls` (its self-signed certificate accepted), with ALPN `h2` only.
    let self_signed = transport.http2() && sc.target.is_none() && sc.http2.tls;
    let tls = match (endpoint.tls || self_signed, transport.http2()) {
        (false, _) => None,
        (true, false) => Some(TlsTarget::new(&endpoint.server_name, insecure)?),
        (true, true) => Some(TlsTarget::for_http2(
            &endpoint.server_name,
            insecure || self_signed,
        )?),
    };
    let start_of = |i| planned + timeline.client_start(i, all_clients);
    let measure_start = planned + timeline.measure_start;
    // Slow consumers read slowly only while their fault lasts.
    let read_limit_of = |i| {
        sc.faults.iter().find_map(|f| match f.kind {
            FaultKind::SlowConsumers { bytes_per_sec } if f.selects_client(i) => Some(ReadLimit {
                bytes_per_sec,
                from: measure_start + f.at,
                until: measure_start + f.end(),
            }),
            _ => None,
        })
    };
    let mut specs = plan::client_specs(
        sc,
        transport,
        &endpoint,
        &topics,
        tls,
        start_of,
        read_limit_of,
    );
    if let Some(shard) = &opts.shard {
        specs.retain(|s| shard.includes(s.id));
    }
    let clients = specs.len() as u32;

    // With a network fault in the scenario every client goes through the proxy for the whole
    // run, so its (small) cost is in the calm figures as much as in the faulted ones.
    let proxy = match uses_proxy {
        true => {
            let proxy = FaultProxy::start_marking(endpoint.addr, proxy_marks.clone())
                .await
                .map_err(RunError::Proxy)?;
            for spec in &mut specs {
                spec.server = proxy.local_addr();
            }
            Some(proxy)
        }
        false => None,
    };

    // An unbounded sender needs no runtime: worker threads send straight into this one.
    let (tx, rx) = mpsc::unbounded_channel::<WorkerMsg>();
    let workers = opts.workers.max(1).min(clients.max(1) as usize);
    let started = Instant::now();
    let self_start = sample(0).map_err(|e| RunError::Sample {
        what: "pushbench",
        source: e.into(),
    })?;
    let control_client = controlplane::client(insecure, topics.len())?;
    let publishes = opts.shard.as_ref().is_none_or(|s| s.role.publishes());
    let publisher = match &publish_url {
        Some(url) if publishes => Some(start_publisher(
            sc,
            &topics,
            url,
            &timeline,
            planned,
            planned_unix,
            &control_client,
        )?),
        _ => None,
    };
    let handles = worker::start(workers, specs, control.clone(), tx);
    let collector = Collector::create(tdir, label, workers, watch.clone(), baseline, self_start)?;
    result
        .files
        .insert("timeseries".into(), format!("{label}/timeseries.jsonl"));
    result.files.insert(
        "latency_interval_log".into(),
        format!("{label}/latency.hlog"),
    );

    let mut conductor = Conductor {
        sc,
        label,
        opts,
        clients,
        timeline,
        started,
        control: control.clone(),
        control_client,
        topics,
        publishes_elsewhere: publish_url.is_some() && !publishes,
        feed_server: match &cluster {
            Some(c) => c.generator_addr().map(|a| format!("http://{a}")),
            None => process.as_ref().map(|p| format!("http://{}", p.addr)),
        },
        cluster,
        server_args: server_args(sc, transport),
        server_binary: sc
            .server
            .binary
            .clone()
            .unwrap_or_else(|| opts.server_binary.clone()),
        tdir: tdir.to_path_buf(),
        process,
        faults: FaultSchedule::new(&sc.faults, measure_start),
        proxy,
        proxy_faults: Vec::new(),
        proxy_armed: Vec::new(),
        restarting: false,
        cluster_exit: None,
        killed_instances: Vec::new(),
        redis_down: false,
        restart_addr: None,
        generator_origin_ns: None,
        server_cpu_carried_us: 0,
        series: Vec::new(),
        watch: watch.clone(),
        publisher,
        collector,
        at_measure_start: None,
        at_measure_end: None,
        finished_topics: false,
        drain_deadline: None,
        server_died: None,
        publish_report: None,
        problems: Vec::new(),
        warnings,
    };
    conductor.run(rx).await?;
    for h in handles {
        let _ = h.join();
    }
    conductor.finish(transport, baseline, self_start).await
}

/// The load generator's own open-loop publisher, on `timeline`'s schedule.
fn start_publisher(
    sc: &Scenario,
    topics: &[TopicId],
    url: &str,
    timeline: &Timeline,
    planned: tokio::time::Instant,
    planned_unix: u64,
    client: &reqwest::Client,
) -> Result<Publisher, PublishError> {
    Publisher::start(
        PublishPlan {
            targets: topics
                .iter()
                .map(|t| (t.clone(), url.replace("{topic}", &t.to_string())))
                .collect(),
            lines_per_sec: sc.feed.lines_per_sec,
            line_bytes: sc.feed.line_bytes.max as usize,
            start: (planned + timeline.publish_from).into_std(),
            start_unix_ns: planned_unix + timeline.publish_from.as_nanos() as u64,
            until: timeline.publish_for(),
        },
        client.clone(),
    )
}

/// Cores the load generator may use: its pinned set, or the machine's.
fn loadgen_cores(opts: &RunOptions) -> usize {
    opts.pinning
        .as_ref()
        .map(|p| p.loadgen_cpus.len())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Drives a run through its phases while the collector takes the workers' messages: once a
/// second it samples the server and the load generator, notices the server's death, and at
/// the measured phase's end finishes the steps and starts the drain; at the drain's end it
/// stops the clients that are still waiting.
struct Conductor<'a> {
    sc: &'a Scenario,
    label: &'a str,
    opts: &'a RunOptions,
    clients: u32,
    timeline: Timeline,
    started: Instant,
    control: Arc<RunControl>,
    control_client: reqwest::Client,
    topics: Vec<TopicId>,
    /// Another shard's publisher feeds the target: each step's final seq is the schedule's.
    publishes_elsewhere: bool,
    /// The base URL of the feed-server pushbench started (it finishes the steps).
    feed_server: Option<String>,
    /// How it was started, to start it again after a restart fault.
    server_args: Vec<String>,
    server_binary: PathBuf,
    tdir: PathBuf,
    /// The feed-server process pushbench started (`None` for external targets, and while a
    /// restart fault holds it down).
    process: Option<crate::orchestrate::ServerProcess>,
    faults: FaultSchedule,
    /// The load generator's fault proxy, when the scenario has network faults.
    proxy: Option<FaultProxy>,
    /// Which scenario fault each proxy fault is.
    proxy_faults: Vec<(usize, FaultId)>,
    /// One-shot proxy faults not cleared yet.
    proxy_armed: Vec<usize>,
    /// The deployment's processes, when `[deployment]` is not the single in-memory server.
    cluster: Option<crate::cluster::Cluster>,
    /// A restart fault has killed the server and not brought it back yet: its absence is
    /// planned, not a death.
    restarting: bool,
    /// How the deployment's processes ended (set when `finish` stops them).
    cluster_exit: Option<String>,
    /// Instances a fault killed that its bring-up starts again.
    killed_instances: Vec<usize>,
    /// A `redis_restart` killed redis-server and has not started it again.
    redis_down: bool,
    restart_addr: Option<std::net::SocketAddr>,
    generator_origin_ns: Option<u64>,
    /// The CPU of server processes killed by restart faults, inside the measured phase.
    server_cpu_carried_us: u64,
    /// Every row of the time series, for the faults' reconnect rates and peak CPU.
    series: Vec<crate::results::SeriesRow>,
    watch: Option<crate::monitor::ServerProcesses>,
    publisher: Option<Publisher>,
    collector: Collector,
    /// (server, load generator) samples at the measured phase's edges.
    at_measure_start: Option<(ProcSample, ProcSample, Option<MachineSample>)>,
    at_measure_end: Option<(ProcSample, ProcSample, Option<MachineSample>)>,
    finished_topics: bool,
    drain_deadline: Option<Instant>,
    server_died: Option<String>,
    publish_report: Option<PublishReport>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Conductor<'_> {
    /// Until every worker has sent its final records.
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<WorkerMsg>) -> Result<(), RunError> {
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.tick().await;
        // Workers gone (their channel closed) end the loop, but never before the steps are
        // finished: a publisher-only shard has no client and publishes until then.
        let mut workers_open = true;
        while (workers_open && self.collector.live_workers() > 0) || !self.finished_topics {
            tokio::select! {
                msg = rx.recv(), if workers_open => {
                    let Some(msg) = msg else {
                        workers_open = false;
                        continue;
                    };
                    for row in self.collector.receive(msg) {
                        self.series.push(row.clone());
                        self.opts.progress.update(
                            self.label,
                            self.started.elapsed(),
                            self.timeline.measure_end,
                            row.connections,
                            row.deliveries,
                            row.latency_p99_us,
                            self.clients,
                        );
                    }
                }
                _ = second.tick() => self.on_second().await?,
                _ = sleep_until_due(self.faults.next_due()) => self.on_fault_due().await,
            }
        }
        Ok(())
    }

    async fn on_second(&mut self) -> Result<(), RunError> {
        let elapsed = self.started.elapsed();
        let (last_server, last_self) = self.collector.last_samples();
        let now_server = match sample_server(self.watch.as_ref()) {
            Ok(s) => s,
            // Down on purpose: a restart fault brings it back.
            Err(_) if self.restarting || self.process.is_none() && self.restart_addr.is_some() => {
                last_server
            }
            Err(e) => {
                // The server is gone: nothing measured from here on is its.
                if self.server_died.is_none() {
                    self.server_died = Some(format!(
                        "{}, {:.1} s into the run",
                        crate::error::chain(&e),
                        elapsed.as_secs_f64()
                    ));
                    if let Some(p) = &self.publisher {
                        p.stop();
                    }
                    self.control.stop();
                }
                last_server
            }
        };
        let now_self = sample(0).unwrap_or(last_self);
        let now = (now_server, now_self, sample_machine().ok());
        if let Some(cluster) = &mut self.cluster {
            cluster.ledger.sample();
            if elapsed >= self.timeline.measure_start {
                cluster.ledger.mark_start();
            }
            if elapsed >= self.timeline.measure_end {
                cluster.ledger.mark_end();
            }
        }
        if self.at_measure_start.is_none() && elapsed >= self.timeline.measure_start {
            self.at_measure_start = Some(now);
        }
        if self.at_measure_end.is_none() && elapsed >= self.timeline.measure_end {
            self.at_measure_end = Some(now);
        }
        let interrupted = self.opts.interrupted.load(Ordering::Relaxed);
        if interrupted {
            if let Some(p) = &self.publisher {
                p.stop();
            }
        }
        let phase_over =
            elapsed >= self.timeline.measure_end || interrupted || self.server_died.is_some();
        if !self.finished_topics && phase_over {
            self.finished_topics = true;
            self.at_measure_start.get_or_insert(now);
            self.at_measure_end.get_or_insert(now);
            if let Some(cluster) = &mut self.cluster {
                cluster.ledger.mark_end();
            }
            self.finish_steps().await?;
            let drain = match interrupted {
                true => Duration::from_secs(1),
                false => self.sc.drain,
            };
            self.drain_deadline = Some(Instant::now() + drain);
        }
        if self.drain_deadline.is_some_and(|d| Instant::now() >= d) && !self.control.is_stopped() {
            let waiting = self.clients - self.collector.clients_done();
            if waiting > 0 {
                self.warnings.push(format!(
                    "{waiting} clients had not received their step's end {} after the steps finished; stopped them",
                    humantime::format_duration(self.sc.drain)
                ));
            }
            self.control.stop();
        }
        Ok(())
    }

    /// After the last worker ended: stops the publisher and the server, merges the workers'
    /// records and gathers the samples at the measured phase's edges.
    async fn finish(
        mut self,
        transport: Transport,
        baseline: ProcSample,
        self_start: ProcSample,
    ) -> Result<Measurements, RunError> {
        let process = self.process.take();
        let proxy_hits = self.stop_proxy().await;
        for (i, hit) in proxy_hits {
            self.faults.facts[i].connections_hit = Some(hit);
        }
        // The loop can end before the measured phase did (the server died): stop the publisher.
        if let Some(p) = self.publisher.take() {
            p.stop();
            self.publish_report = tokio::task::spawn_blocking(move || p.finish()).await.ok();
        }
        // Every client has stopped: no answer is read after this.
        let clients_ended_ns = unix_nanos();
        let (last_server, last_self) = self.collector.last_samples();
        let (start_server, start_self, machine_start) = self
            .at_measure_start
            .unwrap_or((baseline, self_start, None));
        let (end_server, end_self, machine_end) =
            self.at_measure_end
                .unwrap_or((last_server, last_self, None));
        let rss_end = sample_server(self.watch.as_ref())
            .map(|s| s.rss_bytes)
            .unwrap_or(0);
        let mut died = self.server_died.take();
        // Before the deployment stops: afterwards there is nothing left to list.
        let server_pids = self
            .watch
            .as_ref()
            .and_then(|w| w.pids().ok())
            .unwrap_or_default();
        let mut deployment = None;
        if let Some(mut cluster) = self.cluster.take() {
            cluster.ledger.mark_end();
            let redis_memory = match cluster.redis.is_some() {
                true => Some(cluster.redis_memory().await),
                false => None,
            };
            let facts = DeploymentFacts::of(&cluster, redis_memory);
            let ended = cluster.stop().await;
            deployment = Some(facts);
            let ended: Vec<String> = ended
                .into_iter()
                .map(|(n, how)| format!("{n}: {how}"))
                .collect();
            self.cluster_exit = Some(ended.join("; "));
        }
        let exit = match process {
            Some(mut server) => {
                if died.is_none() && !server.is_running() {
                    died = Some("the server exited before the run ended".into());
                }
                server.stop().await
            }
            None if self.cluster_exit.is_some() => self.cluster_exit.take().unwrap_or_default(),
            None if self.restart_addr.is_some() => {
                "killed by a restart fault and not started again before the run ended".into()
            }
            None => "external target (not stopped by pushbench)".into(),
        };

        let mut merged = MergedWorkers::default();
        for worker in self.collector.finish() {
            merged.add(&worker);
        }
        Ok(Measurements {
            transport,
            clients: self.clients,
            workers: merged,
            server: ServerFacts {
                measured: self.watch.is_some(),
                pid: self.watch.as_ref().map_or(0, |w| w.main_pid()),
                pids: server_pids,
                args: match self.sc.target {
                    None => server_args(self.sc, transport),
                    Some(_) => Vec::new(),
                },
                rss_end_bytes: rss_end,
                exit,
                died,
            },
            server_samples: ProcWindow {
                baseline,
                start: start_server,
                end: end_server,
                carried_cpu_us: self.server_cpu_carried_us,
            },
            loadgen_samples: ProcWindow {
                baseline: self_start,
                start: start_self,
                end: end_self,
                carried_cpu_us: 0,
            },
            loadgen_cores: loadgen_cores(self.opts),
            machine: machine_start.zip(machine_end),
            measure_window_ns: self.control.measure_window_ns(),
            clients_ended_ns,
            publisher: self.publish_report,
            problems: self.problems,
            warnings: self.warnings,
            faults: self.faults.facts,
            series: self.series,
            deployment,
            deployment_kind: self.sc.target.is_none().then_some(self.sc.deployment),
        })
    }

    /// Tells the clients each step's final seq: what the publisher scheduled (less what it
    /// could not publish), or what feed-server answers when asked to finish the step.
    async fn finish_steps(&mut self) -> Result<(), RunError> {
        if let Some(p) = self.publisher.take() {
            // The publisher's last line was due before the measured phase ended.
            let report = tokio::task::spawn_blocking(move || p.finish())
                .await
                .map_err(RunError::PublisherThread)?;
            for t in &report.topics {
                self.control
                    .set_unpublished(t.topic.clone(), t.unpublished.clone());
                self.control.set_final_seq(t.topic.clone(), t.last_seq);
            }
            self.publish_report = Some(report);
        } else if self.publishes_elsewhere {
            // The publishing shard's schedule, computed as its clock thread does; lines it
            // could not publish are known to it only (its record says how many).
            let until = self.timeline.publish_for();
            for (i, t) in self.topics.iter().enumerate() {
                let last =
                    crate::publisher::scheduled_last_seq(i, self.sc.feed.lines_per_sec, until);
                self.control.set_final_seq(t.clone(), last);
            }
        } else if let (Some(base), None) = (&self.feed_server, &self.server_died) {
            match finish_topics(&self.control_client, base, &self.topics).await {
                Ok(list) => {
                    for (t, seq) in list {
                        self.control.set_final_seq(t, seq);
                    }
                }
                Err(e) => self.problems.push(Problem {
                    kind: ProblemKind::FinishFailed,
                    message: format!(
                        "could not finish the steps, so loss at their end is unknown: {}",
                        crate::error::chain(&e)
                    ),
                }),
            }
        }
        Ok(())
    }
}

/// Sleeps until the Unix instant `at_unix_ns` (a shard's start) and returns the monotonic
/// instant that matches it; refused when it has already passed by more than a few ms.
async fn wait_for_start(at_unix_ns: u64) -> Result<(tokio::time::Instant, u64), RunError> {
    let now_unix = unix_nanos();
    if now_unix > at_unix_ns + crate::shard::LATE_TOLERANCE.as_nanos() as u64 {
        return Err(RunError::StartedLate {
            late: humantime::format_duration(Duration::from_millis(
                (now_unix - at_unix_ns) / 1_000_000,
            ))
            .to_string(),
        });
    }
    let wait = Duration::from_nanos(at_unix_ns.saturating_sub(now_unix));
    tokio::time::sleep(wait).await;
    // The monotonic instant of `at`, from one reading of both clocks after the sleep.
    let (mono, unix) = (tokio::time::Instant::now(), unix_nanos());
    let planned = mono
        .checked_sub(Duration::from_nanos(unix.saturating_sub(at_unix_ns)))
        .unwrap_or(mono);
    Ok((planned, at_unix_ns))
}

/// Completes at `at`; never without one.
async fn sleep_until_due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Histograms: text spectra for people, serialised ones for machines.
pub fn write_histograms(
    recorder: &Recorder,
    tdir: &Path,
    label: &str,
    result: &mut TransportResult,
) {
    for (name, h) in [
        ("latency", recorder.latency_us()),
        ("connect", recorder.connect_us()),
        ("first_event", recorder.first_event_us()),
    ] {
        let path = tdir.join(format!("{name}.hgrm"));
        let written = std::fs::File::create(&path).and_then(|mut f| write_hgrm(h, &mut f, 1000.0));
        if written.is_ok() {
            result
                .files
                .insert(format!("{name}_hgrm"), format!("{label}/{name}.hgrm"));
        }
        result
            .histograms
            .insert(format!("{name}_us"), encode_histogram(h));
    }
}

/// Why `--before-each` failed.
#[derive(Debug, thiserror::Error)]
pub enum BeforeEachError {
    #[error("creating {path}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("--before-each: starting sh: {0}")]
    Start(std::io::Error),
    #[error("--before-each: waiting for sh: {0}")]
    Wait(std::io::Error),
    #[error("--before-each {command:?} {status} (its output: {log})")]
    Status {
        command: String,
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("--before-each {command:?} did not finish within {within} (its output: {log})")]
    Timeout {
        command: String,
        within: String,
        log: String,
    },
}

/// Runs `--before-each` with `sh -c`, its output into `log`; it must exit 0 within a minute.
async fn run_before_each(
    command: &str,
    transport: Transport,
    log: &Path,
) -> Result<(), BeforeEachError> {
    const WITHIN: Duration = Duration::from_secs(60);
    let log_error = |source| BeforeEachError::Log {
        path: log.display().to_string(),
        source,
    };
    let out = std::fs::File::create(log).map_err(log_error)?;
    let err = out.try_clone().map_err(log_error)?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("PUSHBENCH_TRANSPORT", transport.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(BeforeEachError::Start)?;
    match tokio::time::timeout(WITHIN, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(BeforeEachError::Status {
            command: command.to_string(),
            status,
            log: log.display().to_string(),
        }),
        Ok(Err(e)) => Err(BeforeEachError::Wait(e)),
        Err(_) => Err(BeforeEachError::Timeout {
            command: command.to_string(),
            within: humantime::format_duration(WITHIN).to_string(),
            log: log.display().to_string(),
        }),
    }
}

/// A sweep label as a folder name.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
