//! Starting, pinning, waiting for and stopping the server under test.
//!
//! Each transport gets a fresh `feed-server` process, so memory figures are not polluted by
//! the previous transport's allocations. With two or more cores the server is pinned to core 0
//! (via `taskset`, so the pinning holds from its first instruction, before its runtime starts
//! threads) and the load generator to the others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::controlplane::is_healthy;
use pushbench_protocol::route::HEALTHZ;

#[derive(Debug, Error)]
pub enum OrchestrateError {
    #[error("feed-server binary not found at {0}; build it with `cargo build --release` or set [server] binary")]
    BinaryMissing(PathBuf),
    #[error("starting {binary}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("feed-server did not print `listening on http://ADDR` within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
    #[error("feed-server exited early ({0}); see {1}")]
    Exited(String, PathBuf),
    #[error("feed-server printed an unparsable address {0:?}")]
    BadAddress(String),
    #[error("i/o")]
    Io(#[from] std::io::Error),
}

/// Which CPUs the server and the load generator use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinning {
    pub server_cpus: Vec<usize>,
    pub loadgen_cpus: Vec<usize>,
}

impl Pinning {
    /// Server on CPU 0, load generator on the rest; `None` on a single core (nothing to split).
    pub fn split(cpus: usize) -> Option<Self> {
        (cpus >= 2).then(|| Pinning {
            server_cpus: vec![0],
            loadgen_cpus: (1..cpus).collect(),
        })
    }

    pub fn list(cpus: &[usize]) -> String {
        cpus.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Pins the calling thread, and so every thread it creates afterwards, to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

/// The `feed-server` next to the running `pushbench` binary (cargo puts both in one folder).
pub fn default_server_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("feed-server")))
        .unwrap_or_else(|| PathBuf::from("feed-server"))
}

/// SIGTERM, then up to 10 s for a clean exit, then SIGKILL: how every process pushbench starts
/// (feed-server, redis-server, nginx) is stopped. Returns how it ended.
pub(crate) async fn terminate(child: &mut Child, pid: u32) -> String {
    if let Ok(None) = child.try_wait() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => format!("wait failed: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            "killed after 10 s without exiting on SIGTERM".into()
        }
    }
}

/// SIGKILL, as a crash ends a process, and a wait until it is gone. Returns how it ended.
pub(crate) async fn kill_and_reap(child: &mut Child) -> String {
    let _ = child.start_kill();
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => format!("wait failed: {e}"),
        Err(_) => "still running 10 s after SIGKILL".into(),
    }
}

/// A running server under test.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    pub log: PathBuf,
    /// When its generator's schedule began (Unix ns), from its `generator origin unix_ns=N`
    /// line: a restart passes it back (`--gen-origin-unix-ns`) so the feed's numbering goes
    /// on. `None` when it printed none (no generator, or an older feed-server).
    pub generator_origin_ns: Option<u64>,
}

/// The line feed-server prints before `listening on` when its generator runs.
const GENERATOR_ORIGIN_PREFIX: &str = "generator origin unix_ns=";

impl ServerProcess {
    /// Starts `binary` with `args` (plus `--listen 127.0.0.1:0`), optionally pinned, and waits
    /// until it listens and answers `/healthz`.
    pub async fn start(
        binary: &Path,
        args: &[String],
        cpus: Option<&[usize]>,
        log: PathBuf,
    ) -> Result<Self, OrchestrateError> {
        let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::start_on(binary, args, cpus, log, any_port).await
    }

    /// [`Self::start`] listening on `listen` (a restart takes its predecessor's port).
    pub async fn start_on(
        binary: &Path,
        args: &[String],
        cpus: Option<&[usize]>,
        log: PathBuf,
        listen: SocketAddr,
    ) -> Result<Self, OrchestrateError> {
        if !binary.exists() {
            return Err(OrchestrateError::BinaryMissing(binary.to_path_buf()));
        }
        let taskset = cpus.filter(|_| which("taskset"));
        let mut cmd = match taskset {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(Pinning::list(cpus)).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.args(args)
            .arg("--listen")
            .arg(listen.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| OrchestrateError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        const READY_WITHIN: Duration = Duration::from_secs(15);
        let mut generator_origin_ns = None;
        let addr = tokio::time::timeout(READY_WITHIN, async {
            while let Some(line) = lines.next_line().await? {
                let line = line.trim();
                if let Some(ns) = line.strip_prefix(GENERATOR_ORIGIN_PREFIX) {
                    generator_origin_ns = ns.parse::<u64>().ok();
                }
                if let Some(rest) = line.strip_prefix("listening on http://") {
                    return rest
                        .parse::<SocketAddr>()
                        .map_err(|_| OrchestrateError::BadAddress(rest.to_string()));
                }
            }
            Err(OrchestrateError::Exited(
                "closed stdout before listening".into(),
                log.clone(),
            ))
        })
        .await
        .map_err(|_| OrchestrateError::NotReady(READY_WITHIN, log.clone()))??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = ServerProcess {
            child,
            addr,
            pid,
            log,
            generator_origin_ns,
        };
        server.wait_healthy(READY_WITHIN).await?;
        Ok(server)
    }

    async fn wait_healthy(&self, within: Duration) -> Result<(), OrchestrateError> {
        let deadline = tokio::time::Instant::now() + within;
        let client = crate::controlplane::client(false, 1)
            .map_err(|e| OrchestrateError::Exited(e.to_string(), self.log.clone()))?;
        loop {
            if is_healthy(&client, &format!("http://{}{HEALTHZ}", self.addr)).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(OrchestrateError::NotReady(within, self.log.clone()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then up to 10 s for a clean exit, then SIGKILL. Returns how it ended.
    pub async fn stop(mut self) -> String {
        terminate(&mut self.child, self.pid).await
    }

    /// SIGKILL, as a crash or an OOM kill ends a server: no graceful shutdown, no goodbye to
    /// its clients (the kernel closes their connections). Waits until it is gone.
    pub async fn kill(mut self) -> String {
        kill_and_reap(&mut self.child).await
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
