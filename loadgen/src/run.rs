//! Running a scenario: for each transport, a fresh server, the clients, the collector, and
//! the figures that go into `summary.json`.
//!
//! One transport's run, in order:
//! 1. start `feed-server` (pinned), wait for it, sample its baseline memory;
//! 2. start the worker threads; clients connect over the ramp-up;
//! 3. warm-up (recorded for loss, not for latency), then the measured phase, sampling the
//!    server and the load generator once a second;
//! 4. finish every step through the server's API: each client must then receive everything
//!    up to the step's final seq and its end signal, within the drain time;
//! 5. stop the clients and the server; merge the workers' histograms and counters.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pushbench_feed::clock::unix_nanos;
use pushbench_feed::generator::GeneratorConfig;
use pushbench_feed::TopicId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::clients::ClientSpec;
use crate::control::RunControl;
use crate::controlplane::{self, finish_topics};
use crate::endpoint::Endpoint;
use crate::monitor::{sample, MonitorError, ProcSample, ServerProcesses};
use crate::orchestrate::{Pinning, ServerProcess};
use crate::progress::Progress;
use crate::publisher::{top_reasons, PublishPlan, PublishReport, Publisher};
use crate::record::{write_hgrm, Counters, IntervalLog, IntervalSnapshot, Recorder};
use crate::results::{
    encode_histogram, Connections, EventCounts, LoadgenHealth, Percentiles, PollStats, ProblemKind,
    ServerCost, ThreadScheduling, TransportResult, WireBytes,
};
use crate::scenario::{Scenario, ServerSelector, TopicChoice, Transport};
use crate::tls::TlsTarget;
use crate::wire::SourceAddrs;
use crate::worker::{self, WorkerMsg, WorkerResult};
use std::time::SystemTime;

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
}

/// The gap between the ramp-up and the load generator's publisher: after the last client's
/// start (time for it to connect), or, with `publish_first`, before the first client's (time
/// for every topic's first line to arrive).
const PUBLISH_LEAD: Duration = Duration::from_millis(250);
/// Publisher lag p99 above which the run warns that latency carries the load generator's own
/// lateness (the publisher aims for ≤ 200 µs).
const PUBLISHER_LAG_WARN_P99_US: u64 = 500;

/// Worker p99 timer lateness above which the load generator counts as saturated.
const SATURATED_LAG_P99_US: u64 = 10_000;
/// Load generator CPU share above which it counts as saturated.
const SATURATED_CPU_SHARE: f64 = 0.9;

/// The feed-server arguments a scenario implies for one transport.
pub fn server_args(sc: &Scenario, transport: Transport) -> Vec<String> {
    let feed = &sc.feed;
    let mut args = vec![
        "--transport".into(),
        match transport {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Poll | Transport::LongPoll => "poll",
        }
        .into(),
        "--workers".into(),
        sc.server.workers.to_string(),
        "--history".into(),
        feed.history.to_string(),
        "--max-connections".into(),
        sc.server.max_connections.to_string(),
        "--sse-keep-alive".into(),
        format!("{}ms", sc.sse.keep_alive.as_millis()),
        "--gen-topics".into(),
        feed.topics.to_string(),
        "--gen-rate".into(),
        feed.lines_per_sec.to_string(),
        "--gen-line-bytes".into(),
        format!("{}..{}", feed.line_bytes.min, feed.line_bytes.max),
    ];
    if let Some(b) = &feed.burst {
        args.extend([
            "--gen-burst-every".into(),
            format!("{}ms", b.every.as_millis()),
            "--gen-burst-lines".into(),
            b.lines.to_string(),
            "--gen-burst-rate".into(),
            b.lines_per_sec.to_string(),
        ]);
    }
    args
}

/// The topics the server's generator writes, named as the server names them.
pub fn generated_topics(sc: &Scenario) -> Vec<TopicId> {
    topics_of_build(sc, &GeneratorConfig::default().build)
}

/// `acme/app/builds/{build}/steps/1..=N`.
fn topics_of_build(sc: &Scenario, build: &str) -> Vec<TopicId> {
    GeneratorConfig {
        topics: sc.feed.topics,
        build: build.to_string(),
        ..GeneratorConfig::default()
    }
    .topic_ids()
    .expect("generated topic names are valid")
}

/// Topic index of each client: uniform (round-robin) or zipf (a few popular steps).
pub fn assign_topics(choice: &TopicChoice, clients: u32, topics: u32, seed: u64) -> Vec<u32> {
    match choice {
        TopicChoice::Uniform => (0..clients).map(|i| i % topics).collect(),
        TopicChoice::Zipf(s) => {
            let weights: Vec<f64> = (1..=topics).map(|k| 1.0 / (k as f64).powf(*s)).collect();
            let total: f64 = weights.iter().sum();
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..clients)
                .map(|_| {
                    let mut x = rng.random_range(0.0..total);
                    for (i, w) in weights.iter().enumerate() {
                        if x < *w {
                            return i as u32;
                        }
                        x -= w;
                    }
                    topics - 1
                })
                .collect()
        }
    }
}

/// Samples the server's processes, or reads zeros when there are none to see (an external
/// target without `server_pid` / `server_process`: its figures are marked not measured).
fn sample_server(watch: Option<&ServerProcesses>) -> Result<ProcSample, MonitorError> {
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
///
/// Rows are keyed by the workers' own tick numbers, not by when the collector happens to wake:
/// a row is complete when every live worker has sent that second, so no second is counted twice
/// or left empty because two clocks drifted.
struct SeriesWriter {
    series: std::io::BufWriter<std::fs::File>,
    interval_log: IntervalLog<std::io::BufWriter<std::fs::File>>,
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

    fn flush(&mut self) {
        let _ = self.interval_log.flush();
        let _ = self.series.flush();
    }
}

/// One row of `timeseries.jsonl`.
#[derive(Serialize)]
struct SeriesRow {
    t_s: f64,
    deliveries: u64,
    latency_p50_us: u64,
    latency_p99_us: u64,
    connections: u64,
    clients_done: u32,
    server_rss_bytes: u64,
    server_cpu_cores: f64,
    loadgen_cpu_cores: f64,
}

/// Runs one transport of a scenario; writes its files under `dir/TRANSPORT[-sweep]/`.
pub async fn run_transport(
    sc: &Scenario,
    transport: Transport,
    sweep: Option<&str>,
    dir: &Path,
    opts: &RunOptions,
) -> TransportResult {
    let label = match sweep {
        Some(s) => format!("{}-{}", transport.as_str(), sanitize(s)),
        None => transport.as_str().to_string(),
    };
    let tdir = dir.join(&label);
    let mut result = TransportResult {
        transport: transport.as_str().to_string(),
        sweep: sweep.map(str::to_string),
        ..TransportResult::default()
    };
    if let Err(e) = std::fs::create_dir_all(&tdir) {
        result.add_problem(
            ProblemKind::RunError,
            format!("creating {}: {e}", tdir.display()),
        );
        return result;
    }
    if let Some(command) = &opts.before_each {
        let log = tdir.join("before-each.log");
        if let Err(e) = run_before_each(command, transport, &log).await {
            result.add_problem(ProblemKind::RunError, e);
            return result;
        }
        result
            .files
            .insert("before_each_log".into(), format!("{label}/before-each.log"));
    }
    if let Err(e) = run_inner(sc, transport, &tdir, &label, opts, &mut result).await {
        result.add_problem(ProblemKind::RunError, e);
    }
    result
}

/// Runs `--before-each` with `sh -c`, its output into `log`; it must exit 0 within a minute.
async fn run_before_each(command: &str, transport: Transport, log: &Path) -> Result<(), String> {
    const WITHIN: Duration = Duration::from_secs(60);
    let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("creating {}: {e}", log.display()))?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("PUSHBENCH_TRANSPORT", transport.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("--before-each: starting sh: {e}"))?;
    match tokio::time::timeout(WITHIN, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!(
            "--before-each {command:?} {status} (its output: {})",
            log.display()
        )),
        Ok(Err(e)) => Err(format!("--before-each: waiting for sh: {e}")),
        Err(_) => Err(format!(
            "--before-each {command:?} did not finish within {} (its output: {})",
            humantime::format_duration(WITHIN),
            log.display()
        )),
    }
}

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

async fn run_inner(
    sc: &Scenario,
    transport: Transport,
    tdir: &Path,
    label: &str,
    opts: &RunOptions,
    result: &mut TransportResult,
) -> Result<(), String> {
    // The server under test: a fresh feed-server, or an external target we only connect to.
    let (server, endpoint) = match &sc.target {
        Some(target) => {
            let endpoint = Endpoint::external(target, transport).await?;
            // A target that is not there is a clear error now, not a run of connect errors.
            let reachable = tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::TcpStream::connect(endpoint.addr),
            )
            .await;
            match reachable {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(format!(
                        "the target at {} ({}) is not reachable: {e}",
                        endpoint.host, endpoint.addr
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "the target at {} ({}) did not accept a connection within 3 s",
                        endpoint.host, endpoint.addr
                    ))
                }
            }
            (None, endpoint)
        }
        None => {
            let server_cpus = opts.pinning.as_ref().map(|p| p.server_cpus.as_slice());
            let binary = sc
                .server
                .binary
                .clone()
                .unwrap_or_else(|| opts.server_binary.clone());
            let server = ServerProcess::start(
                &binary,
                &server_args(sc, transport),
                server_cpus,
                tdir.join("server.log"),
            )
            .await
            .map_err(|e| e.to_string())?;
            result
                .files
                .insert("server_log".into(), format!("{label}/server.log"));
            let endpoint = Endpoint::feed_server(server.addr, transport);
            (Some(server), endpoint)
        }
    };
    // The processes whose memory and CPU are the server's cost.
    let watch = match (&server, sc.target.as_ref().and_then(|t| t.server.as_ref())) {
        (Some(server), _) => Some(ServerProcesses::pid(server.pid).map_err(|e| e.to_string())?),
        (None, Some(ServerSelector::Pid(pid))) => {
            Some(ServerProcesses::pid(*pid).map_err(|e| e.to_string())?)
        }
        (None, Some(ServerSelector::Process(name))) => {
            Some(ServerProcesses::named(name).map_err(|e| e.to_string())?)
        }
        (None, None) => None,
    };
    if watch.is_none() {
        result.warnings.push(
            "external target: server memory and CPU were not measured (no process to sample; \
             name it with `target.server_pid` or `target.server_process`)"
                .into(),
        );
    }
    // Let the generator create its topics and the allocator settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline =
        sample_server(watch.as_ref()).map_err(|e| format!("sampling the server: {e}"))?;

    let clients = sc.clients.count;
    // With our own publisher, a fresh build number per run, so runs against one long-lived
    // target never read each other's lines.
    let publishing = sc.target.as_ref().is_some_and(|t| t.publish_url.is_some());
    let topics = if publishing {
        topics_of_build(sc, &format!("pb{}", unix_nanos() / 1_000_000))
    } else {
        generated_topics(sc)
    };
    let assignment = assign_topics(&sc.clients.topics, clients, sc.feed.topics, 7);
    let sources = SourceAddrs::for_clients(clients, &endpoint.addr);
    // External targets with a publish URL get the load generator's own open-loop publisher;
    // its markers then carry seq and scheduled time.
    let publish_url = sc.target.as_ref().and_then(|t| t.publish_url.clone());
    let marker_stamps = publish_url.is_some();
    if sc.target.is_some() && !marker_stamps {
        result.warnings.push(
            "external target without a publish URL: the target's own seq and ts are trusted, and loss at the end of a step cannot be detected"
                .into(),
        );
    }
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let unix_t0 = unix_nanos() + 100_000_000;
    let ramp = sc.clients.ramp_up;
    // Many servers (nchan, most SSE handlers) stream only what is published after a viewer
    // connects, so by default publishing starts once the ramp-up has started every client: a
    // line published before would read as lost. Servers that replay a step's history but
    // refuse viewers of a step without lines (feed-server: 404) want the opposite order,
    // `publish_first`: lines from t0, clients from t0 + PUBLISH_LEAD.
    let publish_first = sc.target.as_ref().is_some_and(|t| t.publish_first);
    let (publish_delay, clients_delay) = match publish_first {
        true => (Duration::ZERO, PUBLISH_LEAD),
        false => (ramp + PUBLISH_LEAD, Duration::ZERO),
    };
    let ramp_end = clients_delay + ramp;
    let measure_start = Duration::from_millis(100) + ramp_end + sc.warmup;
    let measure_end = measure_start + sc.duration;
    let control = Arc::new(RunControl::new(
        unix_t0 + (ramp_end + sc.warmup).as_nanos() as u64,
        unix_t0 + (ramp_end + sc.warmup + sc.duration).as_nanos() as u64,
    ));
    let insecure = sc.target.as_ref().is_some_and(|t| t.insecure);
    let tls = match endpoint.tls {
        true => Some(TlsTarget::new(&endpoint.server_name, insecure).map_err(|e| e.to_string())?),
        false => None,
    };
    let specs: Vec<ClientSpec> = (0..clients)
        .map(|i| ClientSpec {
            id: i,
            transport,
            server: endpoint.addr,
            host: endpoint.host.clone(),
            tls: tls.clone(),
            path: endpoint.path(&topics[assignment[i as usize] as usize]),
            source: sources.for_client(i),
            topic: topics[assignment[i as usize] as usize].clone(),
            start_at: t0 + clients_delay + ramp.mul_f64(i as f64 / clients.max(1) as f64),
            churn: sc.churn.as_ref().map(|c| (c.session, c.pause)),
            marker_stamps,
            poll_cursor: sc
                .target
                .as_ref()
                .map(|t| t.poll_cursor)
                .unwrap_or_default(),
            poll_interval: sc.poll.interval,
            long_poll_wait: sc.poll.wait,
            poll_limit: sc.poll.limit,
        })
        .collect();

    // An unbounded sender needs no runtime: worker threads send straight into this one.
    let (tx, mut rx) = mpsc::unbounded_channel::<WorkerMsg>();
    let workers = opts.workers.max(1).min(clients.max(1) as usize);
    let started = Instant::now();
    let self_start = sample(0).map_err(|e| format!("sampling pushbench: {e}"))?;
    let control_client = controlplane::client(insecure, topics.len()).map_err(|e| e.to_string())?;
    let mut publisher = match &publish_url {
        Some(url) => {
            let plan = PublishPlan {
                targets: topics
                    .iter()
                    .map(|t| (t.clone(), url.replace("{topic}", &t.to_string())))
                    .collect(),
                lines_per_sec: sc.feed.lines_per_sec,
                line_bytes: sc.feed.line_bytes.max as usize,
                // Warm-up still comes after the publish start, before the measured phase.
                start: (t0 + publish_delay).into_std(),
                start_unix_ns: unix_t0 + publish_delay.as_nanos() as u64,
                // The last line is due 100 ms before the measured phase ends.
                until: measure_end.saturating_sub(Duration::from_millis(200) + publish_delay),
            };
            Some(Publisher::start(plan, control_client.clone()).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let handles = worker::start(workers, specs, control.clone(), tx);

    let series = std::io::BufWriter::new(
        std::fs::File::create(tdir.join("timeseries.jsonl")).map_err(|e| e.to_string())?,
    );
    result
        .files
        .insert("timeseries".into(), format!("{label}/timeseries.jsonl"));
    let hlog = std::fs::File::create(tdir.join("latency.hlog")).map_err(|e| e.to_string())?;
    let interval_log = IntervalLog::new(
        std::io::BufWriter::new(hlog),
        SystemTime::now(),
        &format!("pushbench {} delivery latency, microseconds", label),
    )
    .map_err(|e| format!("creating the interval log: {e}"))?;
    result.files.insert(
        "latency_interval_log".into(),
        format!("{label}/latency.hlog"),
    );

    let mut series = SeriesWriter {
        series,
        interval_log,
        pending: BTreeMap::new(),
        prev_server: baseline,
        prev_self: self_start,
        watch: watch.clone(),
    };
    let mut open_by_worker = vec![0u64; workers];
    let mut done_by_worker = vec![0u32; workers];
    let mut finals: Vec<Option<Box<WorkerResult>>> = (0..workers).map(|_| None).collect();
    let mut at_measure_start: Option<(ProcSample, ProcSample)> = None;
    let mut at_measure_end: Option<(ProcSample, ProcSample)> = None;
    let mut finished_topics = false;
    let mut drain_deadline: Option<Instant> = None;
    let mut server_died: Option<String> = None;
    let mut publish_report: Option<PublishReport> = None;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    let total = measure_end;

    loop {
        let live_workers = finals.iter().filter(|f| f.is_none()).count();
        if live_workers == 0 {
            break;
        }
        tokio::select! {
            msg = rx.recv() => {
                match msg {
                    Some(WorkerMsg::Tick { worker, tick, snapshot, open_connections, clients_done }) => {
                        series.add(tick, &snapshot);
                        open_by_worker[worker] = open_connections;
                        done_by_worker[worker] = clients_done;
                    }
                    Some(WorkerMsg::Done { worker, result }) => {
                        open_by_worker[worker] = 0;
                        done_by_worker[worker] = result.stats.clients_done;
                        finals[worker] = Some(result);
                    }
                    None => break,
                }
                // A second's row is written once every live worker has reported it.
                let live = finals.iter().filter(|f| f.is_none()).count();
                let connections: u64 = open_by_worker.iter().sum();
                let done: u32 = done_by_worker.iter().sum();
                for row in series.emit_complete(live, connections, done) {
                    opts.progress.update(label, started.elapsed(), total, row.connections, row.deliveries, row.latency_p99_us, clients);
                }
            }
            _ = second.tick() => {
                let elapsed = started.elapsed();
                let now_server = match sample_server(watch.as_ref()) {
                    Ok(s) => s,
                    Err(e) => {
                        // The server is gone: nothing measured from here on is its.
                        if server_died.is_none() {
                            server_died = Some(format!(
                                "{e}, {:.1} s into the run",
                                elapsed.as_secs_f64()
                            ));
                            if let Some(p) = &publisher {
                                p.stop();
                            }
                            control.stop();
                        }
                        series.prev_server
                    }
                };
                let now_self = sample(0).unwrap_or(series.prev_self);
                if at_measure_start.is_none() && elapsed >= measure_start {
                    at_measure_start = Some((now_server, now_self));
                }
                if at_measure_end.is_none() && elapsed >= measure_end {
                    at_measure_end = Some((now_server, now_self));
                }
                let interrupted = opts.interrupted.load(Ordering::Relaxed);
                if interrupted {
                    if let Some(p) = &publisher {
                        p.stop();
                    }
                }
                if !finished_topics && (elapsed >= measure_end || interrupted || server_died.is_some()) {
                    finished_topics = true;
                    if at_measure_start.is_none() {
                        at_measure_start = Some((now_server, now_self));
                    }
                    if at_measure_end.is_none() {
                        at_measure_end = Some((now_server, now_self));
                    }
                    if let Some(p) = publisher.take() {
                        // The publisher's last line was due before the measured phase ended;
                        // what it scheduled is what every client must receive, less what it
                        // could not publish.
                        let report = tokio::task::spawn_blocking(move || p.finish())
                            .await
                            .map_err(|e| format!("the publisher thread failed: {e}"))?;
                        for t in &report.topics {
                            control.set_unpublished(t.topic.clone(), t.unpublished.clone());
                            control.set_final_seq(t.topic.clone(), t.last_seq);
                        }
                        publish_report = Some(report);
                    } else if let (Some(server), None) = (&server, &server_died) {
                        let base = format!("http://{}", server.addr);
                        match finish_topics(&control_client, &base, &topics).await {
                            Ok(list) => {
                                for (t, seq) in list {
                                    control.set_final_seq(t, seq);
                                }
                            }
                            Err(e) => result.add_problem(
                                ProblemKind::FinishFailed,
                                format!("could not finish the steps, so loss at their end is unknown: {e}"),
                            ),
                        }
                    }
                    drain_deadline = Some(Instant::now() + if interrupted { Duration::from_secs(1) } else { sc.drain });
                }
                if drain_deadline.is_some_and(|d| Instant::now() >= d) && !control.is_stopped() {
                    let waiting = clients - done_by_worker.iter().sum::<u32>();
                    if waiting > 0 {
                        result.warnings.push(format!(
                            "{waiting} clients had not received their step's end {} after the steps finished; stopped them",
                            humantime::format_duration(sc.drain)
                        ));
                    }
                    control.stop();
                }
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    // The loop can end before the measured phase did (the server died): stop the publisher.
    if let Some(p) = publisher.take() {
        p.stop();
        publish_report = tokio::task::spawn_blocking(move || p.finish()).await.ok();
    }
    // Every client has stopped: no answer is read after this.
    let clients_ended_ns = unix_nanos();
    series.flush();
    let rss_end = sample_server(watch.as_ref())
        .map(|s| s.rss_bytes)
        .unwrap_or(0);
    let exit = match server {
        Some(mut server) => {
            if server_died.is_none() && !server.is_running() {
                server_died = Some("the server exited before the run ended".into());
            }
            server.stop().await
        }
        None => "external target (not stopped by pushbench)".into(),
    };

    // Merge the workers' records.
    let mut recorder = Recorder::new();
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("lag bounds");
    let mut catch_up = 0;
    let (mut kdown, mut kup, mut kerr) = (0, 0, 0);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for result in finals.into_iter().flatten() {
        let stats = &result.stats;
        recorder.merge(&stats.recorder);
        let _ = lag.add(&result.sched_lag_us);
        catch_up += stats.catch_up;
        kdown += stats.kernel_bytes_down;
        kup += stats.kernel_bytes_up;
        kerr += stats.tcp_info_errors;
        for (k, v) in &stats.failure_reasons {
            *reasons.entry(k.clone()).or_default() += v;
        }
    }

    let (start_server, start_self) = at_measure_start.unwrap_or((baseline, self_start));
    let (end_server, end_self) = at_measure_end.unwrap_or((series.prev_server, series.prev_self));
    let measured = end_server
        .at
        .duration_since(start_server.at)
        .as_secs_f64()
        .max(1e-3);
    let c = recorder.counters().clone();
    let latency = recorder.latency_us();

    result.measured_seconds = measured;
    result.events = EventCounts {
        expected: c.expected,
        delivered: c.delivered,
        lost: c.lost,
        duplicated: c.duplicated,
        out_of_order: c.out_of_order,
        catch_up,
        excused: c.excused,
    };
    result.deliveries_per_sec = latency.len() as f64 / measured;
    result.latency_us = Percentiles::of(latency);
    result.connect_us = Percentiles::of(recorder.connect_us());
    result.first_event_us = Percentiles::of(recorder.first_event_us());
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
    result.wire = WireBytes {
        bytes_down: c.bytes_down,
        bytes_up: c.bytes_up,
        kernel_bytes_down: kdown,
        kernel_bytes_up: kup,
        kernel_diff_down_pct: pct(c.bytes_down, kdown),
        kernel_diff_up_pct: pct(c.bytes_up, kup),
        tcp_info_errors: kerr,
        bytes_down_per_event: per_event(c.bytes_down),
        bytes_up_per_event: per_event(c.bytes_up),
    };
    let server_cpu = end_server.cpu_us.saturating_sub(start_server.cpu_us);
    let events_in_window = latency.len().max(1) as f64;
    result.server = ServerCost {
        measured: watch.is_some(),
        pid: watch.as_ref().map_or(0, ServerProcesses::main_pid),
        pids: watch
            .as_ref()
            .and_then(|w| w.pids().ok())
            .unwrap_or_default(),
        args: if sc.target.is_none() {
            server_args(sc, transport)
        } else {
            Vec::new()
        },
        rss_baseline_bytes: baseline.rss_bytes,
        rss_connected_bytes: start_server.rss_bytes,
        rss_end_bytes: rss_end,
        rss_per_connection_bytes: (start_server.rss_bytes as f64 - baseline.rss_bytes as f64)
            / clients.max(1) as f64,
        cpu_us: server_cpu,
        cpu_us_per_event: server_cpu as f64 / events_in_window,
        cpu_us_per_connection_second: server_cpu as f64 / (clients.max(1) as f64 * measured),
        cpu_cores: server_cpu as f64 / 1e6 / measured,
        fds_connected: start_server.fds,
        threads: start_server.threads,
        exit,
    };
    if matches!(transport, Transport::Poll | Transport::LongPoll) {
        result.poll = Some(poll_stats(
            &c,
            control.measure_window_ns(),
            clients_ended_ns,
        ));
    }
    let loadgen_cores = opts
        .pinning
        .as_ref()
        .map(|p| p.loadgen_cpus.len())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let self_cpu = end_self.cpu_us.saturating_sub(start_self.cpu_us);
    let cpu_share = self_cpu as f64 / 1e6 / measured / loadgen_cores as f64;
    let lag_p = Percentiles::of(&lag);
    let mut notes = Vec::new();
    if cpu_share > SATURATED_CPU_SHARE {
        notes.push(format!(
            "load generator used {:.0}% of its {loadgen_cores} core(s): it may have been the bottleneck",
            cpu_share * 100.0
        ));
    }
    if lag_p.p99 > SATURATED_LAG_P99_US {
        notes.push(format!(
            "load generator timers fired {} ms late at p99: its clients read late, inflating latency",
            lag_p.p99 / 1000
        ));
    }
    result.loadgen = LoadgenHealth {
        cpu_us: self_cpu,
        cpu_us_per_event: self_cpu as f64 / events_in_window,
        rss_baseline_bytes: self_start.rss_bytes,
        rss_connected_bytes: start_self.rss_bytes,
        rss_per_client_bytes: (start_self.rss_bytes as f64 - self_start.rss_bytes as f64)
            / clients.max(1) as f64,
        cpu_share,
        cores: loadgen_cores,
        saturated: !notes.is_empty(),
        sched_lag_us: lag_p,
        notes: notes.clone(),
    };
    result.connections = Connections {
        clients,
        connects_ok: c.connects_ok,
        connect_errors: c.connect_errors,
        never_connected: c.clients_never_connected,
        disconnects: c.disconnects,
        failure_reasons: reasons.clone(),
    };

    if let Some(report) = publish_report {
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
        // The publisher's lateness is in every latency figure (open loop, as it must be):
        // say so when it is large enough to matter beside what the target adds.
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
        result.publisher = Some(report.stats);
    }
    if let Some(why) = &server_died {
        result.add_problem(ProblemKind::ServerDied, format!("the server died: {why}"));
    }
    if c.connects_ok == 0 {
        result.add_problem(
            ProblemKind::NoClientConnected,
            format!(
                "no client ever connected ({} attempts failed{})",
                c.connect_errors,
                first_reason(&reasons)
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
                "{} of {clients} clients never connected{}",
                c.clients_never_connected,
                first_reason(&reasons)
            ),
        );
    }
    if c.connect_errors > 0 && c.connects_ok > 0 {
        // Retried until they connected: a caveat, not a failure of the run (a foreign target
        // answers 404 until a step's first line is published).
        result.warnings.push(format!(
            "{} connection attempts failed and were retried{}",
            c.connect_errors,
            first_reason(&reasons)
        ));
    }

    // Warnings a reader must see.
    for n in notes {
        result.warnings.push(format!("SATURATED: {n}"));
    }
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
    if latency.len() < 1000 {
        result.warnings.push(format!(
            "only {} latency samples: tail percentiles are not meaningful",
            latency.len()
        ));
    }
    if kerr > 0 {
        result
            .warnings
            .push(format!("TCP_INFO unreadable on {kerr} sockets"));
    }
    if result.wire.kernel_diff_down_pct.abs() > 2.0 || result.wire.kernel_diff_up_pct.abs() > 2.0 {
        result.warnings.push(format!(
            "counted bytes differ from the kernel's by {:.2}% down, {:.2}% up",
            result.wire.kernel_diff_down_pct, result.wire.kernel_diff_up_pct
        ));
    }

    // Histograms: text spectra for people, serialised ones for machines.
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
    Ok(())
}

/// `: REASON` for the most frequent failure reason, or nothing.
fn first_reason(reasons: &BTreeMap<String, u64>) -> String {
    reasons
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(r, n)| format!("; most often ({n}×): {r}"))
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

/// Loads what a results folder needs to be found again.
pub fn scenario_copy_path(dir: &Path) -> PathBuf {
    dir.join("scenario.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

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
