//! `pushbench`: run scenarios against push servers and report what each transport costs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use pushbench::orchestrate::{default_server_binary, pin_current_thread, Pinning};
use pushbench::progress::Progress;
use pushbench::results::{
    create_run_dir, environment, now_rfc3339, read_summary, run_id_now, write_json_atomic,
    RunStatus, Summary, SCHEMA_VERSION,
};
use pushbench::run::{run_transport, RunOptions};
use pushbench::scenario::Scenario;
use pushbench::shard::{self, PublishRole, ShardInfo, ShardRun, ShardSpec, StartAt};
use pushbench::{printer, report, scenario};

#[derive(Parser)]
#[command(
    name = "pushbench",
    version,
    about = "Measures how a server should push live data: SSE, WebSocket or polling."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file against every transport it lists.
    Run(RunArgs),
    /// Check a scenario file without running it.
    Validate { scenario: PathBuf },
    /// Redraw a run's charts and report (report.md, report.html) from its saved data.
    Report {
        /// A run folder, results/NAME/RUN_ID.
        dir: PathBuf,
    },
    /// Merge the runs of a sharded test (`run --shard I/N`) into one run: histograms added
    /// and counters summed (never percentiles averaged), then summarised as a single run.
    Merge {
        /// The merged run's folder (created; must not hold a run yet).
        out: PathBuf,
        /// Shard run folders, or folders searched for them (e.g. the results volume).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Print and chart the differences between two runs.
    Compare {
        /// The baseline run folder.
        a: PathBuf,
        /// The run compared against it.
        b: PathBuf,
        /// Where compare.md and the charts go (default: B/compare).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The scenario, e.g. scenarios/smoke.toml. Without one, the embedded reference
    /// scenario runs (scenarios/reference.toml): a real comparison with no setup.
    scenario: Option<PathBuf>,
    /// Where results go: OUT/NAME/RUN_ID/.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Load generator worker threads (default: one per load generator core).
    #[arg(long)]
    workers: Option<usize>,
    /// Do not pin the server and the load generator to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// The feed-server binary (default: the one next to pushbench).
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// A shell command run before each transport's run (PUSHBENCH_TRANSPORT names it),
    /// e.g. to restart an external target so every transport meets a fresh server. It
    /// must exit 0 within 60 s; its output goes to TRANSPORT/before-each.log.
    #[arg(long, value_name = "COMMAND")]
    before_each: Option<String>,
    /// Run each transport N times, interleaved, each on a fresh server (overrides the
    /// scenario's `repeat`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=pushbench::scenario::MAX_REPEAT as i64))]
    repeat: Option<u32>,
    /// Measure a feed-server at URL (http://HOST:PORT) that pushbench does not start,
    /// instead of the scenario's own server or `[target]`; the load generator publishes
    /// the feed to it (POST URL/{topic}/logs).
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// Run shard I of N: the clients whose index i has i % N == I-1, against a target
    /// (`--target` or `[target]`). Shard 1 publishes unless --no-publish.
    #[arg(long, value_name = "I/N")]
    shard: Option<ShardSpec>,
    /// When the run starts, the same for every shard: Unix seconds (a fraction allowed) or
    /// RFC 3339. Later transports, sweep values and repetitions start one slot after the
    /// previous one (its phases and drain, plus 5 s). Needed with --shard I/N for N > 1.
    #[arg(long, value_name = "TIME")]
    start_at: Option<StartAt>,
    /// Publish the feed and run no client: the shards then run with --no-publish.
    #[arg(long, conflicts_with_all = ["shard", "no_publish"])]
    publisher_only: bool,
    /// Do not publish: another process (`--publisher-only`) does.
    #[arg(long)]
    no_publish: bool,
}

/// Errors are printed as one readable chain (`error: what: why`), never with a stack trace,
/// whatever RUST_BACKTRACE says: they are the user's input problems, not crashes.
fn main() -> std::process::ExitCode {
    match run_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Validate { scenario } => {
            let sc = scenario::load(&scenario)?;
            println!(
                "{}: ok ({} run(s))",
                scenario.display(),
                sc.expand_sweep().len()
            );
            Ok(())
        }
        Command::Report { dir } => {
            let summary = read_summary(&dir.join("summary.json"))?;
            print!("{}", printer::table(&summary));
            let files = report::write_report(&dir)
                .with_context(|| format!("drawing the report of {}", dir.display()))?;
            println!("{}", report::verdict(&summary).headline());
            println!("report: {}", files.html.display());
            Ok(())
        }
        Command::Merge { out, dirs } => {
            let summary = shard::merge::merge(&out, &dirs)?;
            print!("{}", printer::table(&summary));
            let files = report::write_report(&out)
                .with_context(|| format!("drawing the report of {}", out.display()))?;
            println!("{}", report::verdict(&summary).headline());
            println!(
                "merged {} shard run(s) into {}",
                summary.shards.len(),
                out.display()
            );
            println!("report: {}", files.html.display());
            Ok(())
        }
        Command::Compare { a, b, out } => {
            let out = out.unwrap_or_else(|| b.join("compare"));
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let text = report::compare(&a, &b, &out).context("comparing the runs")?;
            print!("{text}");
            println!("comparison: {}", out.join("compare.md").display());
            Ok(())
        }
        Command::Run(args) => run(args),
    }
}

/// An external target's server measured again by a later transport of the same run keeps the
/// memory the earlier ones made it allocate: its memory per connection then understates what
/// a fresh server pays. Said in the run's warnings (restart it with `--before-each`).
fn warn_if_server_reused(summary: &Summary, result: &mut pushbench::results::TransportResult) {
    if !result.server.measured || !result.server.args.is_empty() {
        return;
    }
    if let Some(earlier) = summary
        .runs
        .iter()
        .find(|r| r.server.measured && r.server.pid == result.server.pid)
    {
        result.warnings.push(format!(
            "the target's server (pid {}) was already measured by the {} run: memory it allocated \
             then is reused, so RSS per connection may understate a fresh server's; restart it \
             between transports with `pushbench run --before-each COMMAND`",
            result.server.pid, earlier.transport
        ));
    }
}

/// A run's problems in one line.
fn problem_list(r: &pushbench::results::TransportResult) -> String {
    r.problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The sharding flags of `pushbench run`.
struct ShardArgs {
    spec: Option<ShardSpec>,
    start_at: Option<StartAt>,
    publisher_only: bool,
    no_publish: bool,
}

impl ShardArgs {
    /// How this process takes part in a sharded run (`None`: an ordinary run), or why the
    /// flags and the scenario do not make one.
    fn plan(&self, sc: &Scenario) -> Result<Option<ShardRun>> {
        let sharded = self.spec.is_some()
            || self.start_at.is_some()
            || self.publisher_only
            || self.no_publish;
        if !sharded {
            return Ok(None);
        }
        let Some(target) = &sc.target else {
            bail!(
                "a sharded run (--shard, --start-at, --publisher-only, --no-publish) measures a                  server it does not start: give --target URL (a feed-server) or a scenario with [target]"
            );
        };
        if !sc.faults.is_empty() {
            bail!(
                "a sharded run cannot inject the scenario's [[faults]]: each shard would inject its own;                  run faults unsharded"
            );
        }
        if self.publisher_only && target.publish_url.is_none() {
            bail!("--publisher-only: the target has no publish URL (`target.publish_url`), so there is nothing to publish");
        }
        let many = self.publisher_only || self.no_publish || self.spec.is_some_and(|s| s.count > 1);
        if many && self.start_at.is_none() {
            bail!(
                "several processes share this run: give every one the same --start-at (Unix seconds                  or RFC 3339, far enough ahead for all of them to start), so their phases coincide"
            );
        }
        if let Some(at) = self.start_at {
            if let Ok(past) = std::time::SystemTime::now().duration_since(at.0) {
                if past > shard::LATE_TOLERANCE {
                    bail!(
                        "--start-at is {} in the past: give every shard the same instant, far enough ahead for all of them to start",
                        humantime::format_duration(std::time::Duration::from_secs(past.as_secs()))
                    );
                }
            }
        }
        let role = if self.publisher_only {
            PublishRole::PublisherOnly
        } else if self.no_publish || self.spec.is_some_and(|s| s.index > 1) {
            PublishRole::ClientsOnly
        } else {
            PublishRole::Publishes
        };
        Ok(Some(ShardRun {
            spec: match self.publisher_only {
                true => None,
                false => Some(self.spec.unwrap_or(ShardSpec { index: 1, count: 1 })),
            },
            role,
            start_unix_ns: self.start_at.map(|s| s.unix_ns()),
            hostname: String::new(),
        }))
    }
}

/// The scenario `pushbench run` runs when given none.
const EMBEDDED_SCENARIO: &str = include_str!("../../scenarios/reference.toml");

fn run(args: RunArgs) -> Result<()> {
    let RunArgs {
        scenario: path,
        out,
        quiet,
        workers,
        no_pin,
        server_binary,
        before_each,
        repeat,
        target,
        shard: shard_spec,
        start_at,
        publisher_only,
        no_publish,
    } = args;
    // A run never starts on a half-valid scenario.
    let mut sc = match &path {
        Some(path) => scenario::load(path),
        None => scenario::parse(EMBEDDED_SCENARIO, "embedded scenarios/reference.toml"),
    }?;
    if let Some(n) = repeat {
        sc.repeat = n;
    }
    if let Some(url) = &target {
        if !sc.deployment.is_default() {
            bail!("--target measures a server pushbench does not start: the scenario's [deployment] cannot apply");
        }
        let mut t = scenario::feed_server_target(url)?;
        if let Some(old) = &sc.target {
            t.server = old.server.clone();
        }
        sc.target = Some(t);
    }
    let sharding = ShardArgs {
        spec: shard_spec,
        start_at,
        publisher_only,
        no_publish,
    };
    let shard_run = sharding.plan(&sc)?;
    // Read before pinning: afterwards this process sees only its own cores.
    let env_before_pinning = environment();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pin = if no_pin || !sc.server.pin {
        None
    } else {
        Pinning::split(cpus)
    };
    if let Some(p) = &pin {
        // Before any thread exists: workers and the runtime inherit this affinity.
        if let Err(e) = pin_current_thread(&p.loadgen_cpus) {
            eprintln!("warning: could not pin the load generator: {e}");
        }
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < u64::from(sc.clients.count) + 256 => eprintln!(
            "warning: open-file limit {n} is below {} clients",
            sc.clients.count
        ),
        Err(e) => eprintln!("warning: could not raise the open-file limit: {e}"),
        _ => {}
    }
    let loadgen_cores = pin.as_ref().map(|p| p.loadgen_cpus.len()).unwrap_or(cpus);
    let workers = workers
        .or((sc.clients.workers > 0).then_some(sc.clients.workers as usize))
        .unwrap_or(loadgen_cores);
    let server_binary = server_binary.unwrap_or_else(default_server_binary);

    let run_id = run_id_now();
    let dir = create_run_dir(&out, &sc.name, &run_id)
        .with_context(|| format!("creating the results folder under {}", out.display()))?;
    std::fs::write(dir.join("scenario.toml"), &sc.source).context("copying the scenario")?;
    let mut env = env_before_pinning;
    let env_hostname = env.hostname.clone();
    env.server_binary = Some(server_binary.display().to_string());
    env.server_cpus = pin
        .as_ref()
        .map(|p| p.server_cpus.clone())
        .unwrap_or_default();
    env.loadgen_cpus = pin
        .as_ref()
        .map(|p| p.loadgen_cpus.clone())
        .unwrap_or_default();
    env.loadgen_workers = workers;
    write_json_atomic(&dir.join("environment.json"), &env)?;

    let interrupted = Arc::new(AtomicBool::new(false));
    let progress = Progress::new(quiet);
    let opts = RunOptions {
        pinning: pin,
        workers,
        server_binary,
        before_each,
        progress: progress.clone(),
        interrupted: interrupted.clone(),
        shard: shard_run.clone().map(|mut s| {
            s.hostname = env_hostname.clone();
            s
        }),
    };
    let mut summary = Summary {
        schema: "pushbench.summary".into(),
        schema_version: SCHEMA_VERSION,
        scenario: sc.name.clone(),
        run_id,
        started_at: now_rfc3339(),
        finished_at: None,
        interrupted: false,
        environment: env,
        repeat: sc.repeat,
        order: Vec::new(),
        runs: Vec::new(),
        aggregates: Vec::new(),
        shard: shard_run.as_ref().map(|s| ShardInfo {
            index: s.spec.map(|x| x.index),
            count: s.spec.map_or(0, |x| x.count),
            role: Some(s.role),
            start_unix_ns: s.start_unix_ns.unwrap_or(0),
            hostname: env_hostname.clone(),
            target: sc
                .target
                .as_ref()
                .and_then(shard::target_origin)
                .unwrap_or_default(),
            run_dir: None,
        }),
        shards: Vec::new(),
    };
    let summary_path = dir.join("summary.json");
    write_json_atomic(&summary_path, &summary)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the orchestration runtime")?;
    runtime.block_on(async {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the current transport and writing the summary");
                flag.store(true, Ordering::Relaxed);
            }
        });
        let expanded = sc.expand_sweep();
        // Each run's start after the first one's, the same on every shard.
        let jobs: Vec<&Scenario> = expanded
            .iter()
            .flat_map(|(_, c)| {
                std::iter::repeat_n(c, (c.repeat * c.transports.len() as u32) as usize)
            })
            .collect();
        let offsets = shard::job_offsets(&jobs);
        let mut job = 0;
        for (sweep, concrete) in expanded {
            // Interleaved (sse, ws, …, sse, ws, …), so a noisy minute spreads over every
            // transport instead of deciding one transport's figures.
            for repetition in 1..=concrete.repeat {
                for &transport in &concrete.transports {
                    if interrupted.load(Ordering::Relaxed) {
                        break;
                    }
                    let rep = (concrete.repeat > 1).then_some(repetition);
                    progress.println(&format!(
                        "running {} over {}{}{}",
                        concrete.name,
                        transport.as_str(),
                        rep.map(|r| format!(", repetition {r} of {}", concrete.repeat))
                            .unwrap_or_default(),
                        sweep
                            .as_deref()
                            .map(|s| format!(" ({s})"))
                            .unwrap_or_default()
                    ));
                    let mut job_opts = opts.clone();
                    if let Some(s) = &mut job_opts.shard {
                        s.start_unix_ns =
                            s.start_unix_ns.map(|t| t + offsets[job].as_nanos() as u64);
                    }
                    job += 1;
                    let mut result =
                        run_transport(&concrete, transport, sweep.as_deref(), rep, &dir, &job_opts)
                            .await;
                    warn_if_server_reused(&summary, &mut result);
                    summary.order.push(result.label());
                    summary.runs.push(result);
                    summary.interrupted = interrupted.load(Ordering::Relaxed);
                    write_json_atomic(&summary_path, &summary)?;
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    progress.finish();
    summary.finished_at = Some(now_rfc3339());
    summary.interrupted = interrupted.load(Ordering::Relaxed);
    summary.aggregates = report::aggregates(&report::verdict(&summary));
    write_json_atomic(&summary_path, &summary)?;
    if !quiet {
        print!("{}", printer::table(&summary));
    }
    match report::write_report(&dir) {
        Ok(files) => {
            if !quiet {
                println!("{}", report::verdict(&summary).headline());
            }
            println!("report: {}", files.html.display());
        }
        // The measurements are saved; a drawing problem must not hide them.
        Err(e) => eprintln!(
            "warning: could not draw the report ({}); the data is in {} and `pushbench report` redraws it",
            pushbench::error::chain(&e),
            dir.display()
        ),
    }
    println!("results: {}", dir.display());
    // A degraded run measured something: it is reported (its problems head the report and
    // the table), not an error. A failed one measured nothing trustworthy.
    let failed: Vec<_> = summary
        .runs
        .iter()
        .filter(|r| r.status == RunStatus::Failed)
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} transport run(s) failed: {}",
            failed.len(),
            failed
                .iter()
                .map(|r| format!("{}: {}", r.transport, problem_list(r)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}
