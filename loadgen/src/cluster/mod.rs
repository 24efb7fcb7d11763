//! A deployment's processes beyond the single feed-server (`[deployment]`): redis-server, the
//! publisher feed-server that runs the generator, the serving instances, nginx in front; and
//! what each role costs.
//!
//! # Layout
//! - this module: [`Cluster`] (start, the faults' kill and start-again, stop), [`Role`],
//!   [`CostLedger`] (CPU and RSS per role over the measured phase, across restarts).
//! - `redis`: the run's redis-server and the few commands pushbench sends it.
//! - `nginx`: the template rendered, nginx started and stopped.
//!
//! # Choices
//! - A fresh redis-server per transport run, in the run's folder: its memory figures are that
//!   transport's alone, and no prefix bookkeeping is needed. Its data directory is removed
//!   when the run stops it (the AOF of a benchmark is no result).
//! - The publisher is not behind nginx and no instance fault touches it: it is the build
//!   runner writing the log, not a viewer-facing server. Steps are finished through it.
//! - Instances keep their port across restarts, so nginx's upstream list never changes; nginx
//!   marks a dead one failed (`max_fails=1 fail_timeout=2s`) and retries the next.

pub mod nginx;
pub mod redis;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::process::Command;

use crate::monitor::{MonitorError, ServerProcesses};
use crate::orchestrate::{OrchestrateError, Pinning, ServerProcess};
use crate::scenario::{Backend, Deployment};
use nginx::NginxProcess;
use redis::{RedisProcess, REDIS_PREFIX};

/// Why a deployment could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{program} not found: {hint}")]
    Missing {
        program: &'static str,
        hint: &'static str,
    },
    #[error("starting {program}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{what} exited early ({how}); see {}", log.display())]
    Exited {
        what: String,
        how: String,
        log: PathBuf,
    },
    #[error("{what} was not ready within {within:?}; see {}", log.display())]
    NotReady {
        what: String,
        within: Duration,
        log: PathBuf,
    },
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("starting feed-server {what}")]
    Server {
        what: String,
        source: OrchestrateError,
    },
    #[error(transparent)]
    Monitor(#[from] MonitorError),
}

/// A free loopback port now (bound and released: the process started next takes it).
pub(crate) fn free_port() -> Result<u16, ClusterError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| ClusterError::Io {
            what: "finding a free port".into(),
            source,
        })
}

/// `program`, through `taskset -c CPUS` when pinned (taskset execs it: the pid is the
/// program's, and the pinning holds from its first instruction).
pub(crate) fn pinned_command(program: &Path, cpus: Option<&[usize]>) -> Command {
    let taskset = cpus.filter(|_| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("taskset").is_file()))
    });
    match taskset {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(Pinning::list(cpus)).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// What a process of a deployment does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A feed-server clients reach (through nginx or straight).
    Instance,
    /// The feed-server running the generator into Redis.
    Publisher,
    Redis,
    Nginx,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Instance, Role::Publisher, Role::Redis, Role::Nginx];

    pub fn name(self) -> &'static str {
        match self {
            Role::Instance => "instances",
            Role::Publisher => "publisher",
            Role::Redis => "redis",
            Role::Nginx => "nginx",
        }
    }
}

/// One serving instance: its port outlives its processes.
pub struct Instance {
    pub addr: SocketAddr,
    pub process: Option<ServerProcess>,
    /// Processes started for it so far (names its logs).
    starts: u32,
    /// Its generator's origin, when it runs one (the memory backend's single instance): a
    /// restart passes it back so the feed's numbering goes on.
    generator_origin_ns: Option<u64>,
}

/// The processes of one transport's deployment.
pub struct Cluster {
    pub deployment: Deployment,
    pub redis: Option<RedisProcess>,
    pub publisher: Option<ServerProcess>,
    pub instances: Vec<Instance>,
    pub nginx: Option<NginxProcess>,
    binary: PathBuf,
    instance_args: Vec<String>,
    cpus: Option<Vec<usize>>,
    dir: PathBuf,
    pub ledger: CostLedger,
    /// `used_memory` of the empty Redis, before the publisher wrote a line.
    pub redis_baseline_bytes: Option<u64>,
    /// A `redis_restart` killed redis-server and has not started it again.
    redis_down: bool,
}

/// `server_args` for a serving instance: no generator of its own (`--gen-topics 0`) when a
/// publisher writes the feed into Redis.
pub fn instance_args(server_args: &[String], redis: Option<&str>) -> Vec<String> {
    let mut args = server_args.to_vec();
    if let Some(url) = redis {
        if let Some(i) = args.iter().position(|a| a == "--gen-topics") {
            if let Some(v) = args.get_mut(i + 1) {
                *v = "0".into();
            }
        }
        args.extend(backend_args(url));
    }
    args
}

/// `--backend redis://… --redis-prefix P`.
pub fn backend_args(redis_url: &str) -> Vec<String> {
    vec![
        "--backend".into(),
        redis_url.into(),
        "--redis-prefix".into(),
        REDIS_PREFIX.into(),
    ]
}

impl Cluster {
    /// Starts redis (for the Redis backend), the publisher, the instances and nginx, in that
    /// order, each ready before the next. `server_args` are feed-server's for the scenario;
    /// files go under `dir`.
    pub async fn start(
        deployment: Deployment,
        binary: &Path,
        server_args: &[String],
        cpus: Option<&[usize]>,
        dir: &Path,
    ) -> Result<Self, ClusterError> {
        let started = Self::start_all(deployment, binary, server_args, cpus, dir).await;
        if started.is_err() {
            // What did start was killed on drop; Redis's data is no result.
            let _ = std::fs::remove_dir_all(dir.join("redis").join("appendonlydir"));
        }
        started
    }

    async fn start_all(
        deployment: Deployment,
        binary: &Path,
        server_args: &[String],
        cpus: Option<&[usize]>,
        dir: &Path,
    ) -> Result<Self, ClusterError> {
        let mut ledger = CostLedger::default();
        let redis = match deployment.backend {
            Backend::Redis => {
                let r = RedisProcess::start(&dir.join("redis"), deployment.redis_persistence, cpus)
                    .await?;
                ledger.add(Role::Redis, r.pid);
                Some(r)
            }
            Backend::Memory => None,
        };
        let redis_baseline_bytes = match &redis {
            Some(r) => redis::used_memory(r.addr).await.ok(),
            None => None,
        };
        let url = redis.as_ref().map(|r| r.url());
        let publisher = match &url {
            Some(url) => {
                let mut args = server_args.to_vec();
                args.extend(backend_args(url));
                let p = ServerProcess::start(binary, &args, cpus, dir.join("publisher.log"))
                    .await
                    .map_err(|source| ClusterError::Server {
                        what: "publisher".into(),
                        source,
                    })?;
                ledger.add(Role::Publisher, p.pid);
                Some(p)
            }
            None => None,
        };
        let instance_args = instance_args(server_args, url.as_deref());
        let mut instances = Vec::new();
        for i in 0..deployment.instances {
            let p = ServerProcess::start(
                binary,
                &instance_args,
                cpus,
                dir.join(format!("instance-{i}.log")),
            )
            .await
            .map_err(|source| ClusterError::Server {
                what: format!("instance {i}"),
                source,
            })?;
            ledger.add(Role::Instance, p.pid);
            instances.push(Instance {
                addr: p.addr,
                generator_origin_ns: p.generator_origin_ns,
                process: Some(p),
                starts: 1,
            });
        }
        let nginx = match deployment.uses_nginx() {
            true => {
                let upstreams: Vec<SocketAddr> = instances.iter().map(|i| i.addr).collect();
                let n = NginxProcess::start(
                    &dir.join("nginx"),
                    deployment.nginx_workers,
                    &upstreams,
                    cpus,
                )
                .await?;
                ledger.add(Role::Nginx, n.pid);
                Some(n)
            }
            false => None,
        };
        Ok(Cluster {
            deployment,
            redis,
            publisher,
            instances,
            nginx,
            binary: binary.to_path_buf(),
            instance_args,
            cpus: cpus.map(<[usize]>::to_vec),
            dir: dir.to_path_buf(),
            ledger,
            redis_baseline_bytes,
            redis_down: false,
        })
    }

    /// Its log files, relative to the transport's folder, by the name `files` gives them.
    pub fn log_files(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        if self.redis.is_some() {
            files.push(("redis_log".into(), "redis.log".into()));
        }
        if self.publisher.is_some() {
            files.push(("publisher_log".into(), "publisher.log".into()));
        }
        for i in 0..self.instances.len() {
            files.push((format!("instance_{i}_log"), format!("instance-{i}.log")));
        }
        if self.nginx.is_some() {
            files.push(("nginx_error_log".into(), "nginx/error.log".into()));
        }
        files
    }

    /// Where clients connect: nginx, or the one instance.
    pub fn front(&self) -> SocketAddr {
        match &self.nginx {
            Some(n) => n.addr,
            None => self.instances[0].addr,
        }
    }

    /// The feed-server whose generator writes the feed (steps are finished through it): the
    /// publisher, or with the in-memory backend the one instance.
    pub fn generator_addr(&self) -> Option<SocketAddr> {
        match &self.publisher {
            Some(p) => Some(p.addr),
            None => self.instances[0].process.as_ref().map(|p| p.addr),
        }
    }

    /// Every live process's pid, the roots the run samples as "the server".
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        pids.extend(
            self.redis
                .as_ref()
                .filter(|_| !self.redis_down)
                .map(|r| r.pid),
        );
        pids.extend(self.publisher.as_ref().map(|p| p.pid));
        pids.extend(
            self.instances
                .iter()
                .filter_map(|i| i.process.as_ref().map(|p| p.pid)),
        );
        pids.extend(self.nginx.as_ref().map(|n| n.pid));
        pids
    }

    /// The sampled set of every live process and its descendants.
    pub fn watch(&self) -> Result<ServerProcesses, MonitorError> {
        ServerProcesses::roots(self.pids())
    }

    /// SIGKILL instance `i`; how it ended.
    pub async fn kill_instance(&mut self, i: usize) -> Option<String> {
        self.ledger.sample();
        let p = self.instances.get_mut(i)?.process.take()?;
        Some(p.kill().await)
    }

    /// SIGTERM instance `i` and wait for its exit (a deploy's stop); how it ended.
    pub async fn stop_instance(&mut self, i: usize) -> Option<String> {
        self.ledger.sample();
        let p = self.instances.get_mut(i)?.process.take()?;
        Some(p.stop().await)
    }

    /// Starts instance `i` again on its port and waits for `/healthz`; its pid.
    pub async fn start_instance(&mut self, i: usize) -> Result<u32, ClusterError> {
        let inst = &mut self.instances[i];
        inst.starts += 1;
        let log = self
            .dir
            .join(format!("instance-{i}-start-{}.log", inst.starts));
        let mut args = self.instance_args.clone();
        if let Some(origin) = inst.generator_origin_ns {
            args.extend(["--gen-origin-unix-ns".into(), origin.to_string()]);
        }
        let p = ServerProcess::start_on(&self.binary, &args, self.cpus.as_deref(), log, inst.addr)
            .await
            .map_err(|source| ClusterError::Server {
                what: format!("instance {i} again"),
                source,
            })?;
        let pid = p.pid;
        self.ledger.add(Role::Instance, pid);
        inst.process = Some(p);
        Ok(pid)
    }

    /// SIGKILL redis-server; how it ended.
    pub async fn kill_redis(&mut self) -> Option<String> {
        self.ledger.sample();
        let r = self.redis.as_mut()?;
        self.redis_down = true;
        Some(r.kill().await)
    }

    /// Starts redis-server again on its port and data directory.
    pub async fn start_redis(&mut self) -> Result<u32, ClusterError> {
        let cpus = self.cpus.clone();
        let Some(r) = self.redis.as_mut() else {
            return Err(ClusterError::Io {
                what: "no redis-server in this deployment".into(),
                source: std::io::Error::other("backend is memory"),
            });
        };
        r.start_again(cpus.as_deref()).await?;
        self.redis_down = false;
        let pid = r.pid;
        self.ledger.add(Role::Redis, pid);
        Ok(pid)
    }

    /// What Redis holds now: its memory per held line (see [`RedisMemory`]).
    pub async fn redis_memory(&self) -> RedisMemory {
        let baseline_bytes = self.redis_baseline_bytes;
        let Some(r) = &self.redis else {
            return RedisMemory::missing("the memory backend has no Redis");
        };
        if self.redis_down {
            return RedisMemory::missing("redis-server was down at the end (a redis_restart)");
        }
        let used = match redis::used_memory(r.addr).await {
            Ok(u) => u,
            Err(e) => return RedisMemory::missing(&format!("INFO memory failed: {e}")),
        };
        let (streams, lines) = match redis::stream_entries(r.addr, REDIS_PREFIX).await {
            Ok(x) => x,
            Err(e) => return RedisMemory::missing(&format!("counting stream entries failed: {e}")),
        };
        let mut m = RedisMemory {
            used_memory_bytes: Some(used),
            baseline_bytes,
            streams: Some(streams),
            lines_held: Some(lines),
            bytes_per_line: None,
            missing: None,
        };
        match (baseline_bytes, lines) {
            (None, _) => m.missing = Some("no empty-Redis baseline was taken".into()),
            (_, 0) => m.missing = Some(format!("no stream under {REDIS_PREFIX:?} holds a line")),
            (Some(base), n) => m.bytes_per_line = Some(used.saturating_sub(base) as f64 / n as f64),
        }
        m
    }

    /// Stops everything, front to back (nginx, instances, publisher, redis); removes Redis's
    /// data directory. How each ended, by name.
    pub async fn stop(mut self) -> Vec<(String, String)> {
        let mut ended = Vec::new();
        if let Some(n) = self.nginx.take() {
            ended.push(("nginx".into(), n.stop().await));
        }
        for (i, inst) in self.instances.iter_mut().enumerate() {
            if let Some(p) = inst.process.take() {
                ended.push((format!("instance {i}"), p.stop().await));
            }
        }
        if let Some(p) = self.publisher.take() {
            ended.push(("publisher".into(), p.stop().await));
        }
        if let Some(r) = self.redis.take() {
            let dir = r.dir.clone();
            ended.push(("redis".into(), r.stop().await));
            // Keep its log beside the run's other logs; the data is no result.
            let _ = std::fs::rename(dir.join("redis.log"), self.dir.join("redis.log"));
            let _ = std::fs::remove_dir_all(&dir);
        }
        ended
    }
}

/// Redis's memory for the feed: `INFO memory` `used_memory` after the run minus the same
/// before any line (the empty-Redis baseline, taken when it started), divided by the total
/// `XLEN` of the topic streams. Chosen over `MEMORY USAGE` per key because it also counts
/// what the streams cost outside their keys (the radix tree's nodes, the backend's own keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RedisMemory {
    pub used_memory_bytes: Option<u64>,
    pub baseline_bytes: Option<u64>,
    pub streams: Option<u64>,
    pub lines_held: Option<u64>,
    pub bytes_per_line: Option<f64>,
    /// Why `bytes_per_line` is missing, when it is.
    pub missing: Option<String>,
}

impl RedisMemory {
    fn missing(why: &str) -> Self {
        RedisMemory {
            missing: Some(why.to_string()),
            ..RedisMemory::default()
        }
    }
}

/// Each process a deployment ran, by role: its CPU over the measured phase (from its sample
/// at the phase's start, or from its birth if it started inside it, to its sample at the end
/// or its last before it was killed) and its RSS at the end.
#[derive(Clone, Debug, Default)]
pub struct CostLedger {
    entries: Vec<LedgerEntry>,
    started: bool,
    ended: bool,
}

#[derive(Clone, Debug)]
struct LedgerEntry {
    role: Role,
    pid: u32,
    alive: bool,
    last_cpu_us: u64,
    last_rss: u64,
    start_cpu_us: Option<u64>,
    end_cpu_us: Option<u64>,
}

/// What the ledger adds up to per role.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoleCost {
    pub processes: u32,
    pub cpu_us: u64,
    /// Of the processes alive at the end.
    pub rss_end_bytes: u64,
}

impl CostLedger {
    pub fn add(&mut self, role: Role, pid: u32) {
        let mut e = LedgerEntry {
            role,
            pid,
            alive: true,
            last_cpu_us: 0,
            last_rss: 0,
            // Born inside the measured phase: all of its CPU is the phase's.
            start_cpu_us: self.started.then_some(0),
            end_cpu_us: None,
        };
        e.read();
        self.entries.push(e);
    }

    /// Reads every live process (and its descendants: nginx's workers).
    pub fn sample(&mut self) {
        for e in self.entries.iter_mut().filter(|e| e.alive) {
            e.read();
        }
    }

    pub fn mark_start(&mut self) {
        if self.started {
            return;
        }
        self.sample();
        for e in &mut self.entries {
            e.start_cpu_us = Some(if e.alive { e.last_cpu_us } else { 0 });
        }
        self.started = true;
    }

    pub fn mark_end(&mut self) {
        if self.ended {
            return;
        }
        self.mark_start();
        self.sample();
        for e in &mut self.entries {
            e.end_cpu_us = Some(e.last_cpu_us);
        }
        self.ended = true;
    }

    pub fn cost(&self, role: Role) -> RoleCost {
        let mut c = RoleCost::default();
        for e in self.entries.iter().filter(|e| e.role == role) {
            c.processes += 1;
            let end = e.end_cpu_us.unwrap_or(e.last_cpu_us);
            c.cpu_us += end.saturating_sub(e.start_cpu_us.unwrap_or(end));
            if e.alive {
                c.rss_end_bytes += e.last_rss;
            }
        }
        c
    }

    pub fn has(&self, role: Role) -> bool {
        self.entries.iter().any(|e| e.role == role)
    }
}

impl LedgerEntry {
    fn read(&mut self) {
        match ServerProcesses::pid(self.pid).and_then(|w| w.sample()) {
            Ok(s) => {
                self.last_cpu_us = s.cpu_us;
                self.last_rss = s.rss_bytes;
            }
            Err(_) => self.alive = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_get_no_generator_with_redis() {
        let args: Vec<String> = ["--gen-topics", "4", "--gen-rate", "5"]
            .map(String::from)
            .to_vec();
        let with = instance_args(&args, Some("redis://127.0.0.1:7000"));
        assert_eq!(
            with,
            [
                "--gen-topics",
                "0",
                "--gen-rate",
                "5",
                "--backend",
                "redis://127.0.0.1:7000",
                "--redis-prefix",
                REDIS_PREFIX
            ]
        );
        assert_eq!(instance_args(&args, None), args);
    }

    #[test]
    fn the_ledger_counts_the_phase_only_and_keeps_the_dead() {
        let mut l = CostLedger::default();
        let me = std::process::id();
        l.add(Role::Instance, me);
        l.entries[0].last_cpu_us = 1_000;
        l.started = true;
        l.entries[0].start_cpu_us = Some(1_000);
        // A process killed inside the phase: its last reading counts.
        l.entries.push(LedgerEntry {
            role: Role::Instance,
            pid: u32::MAX,
            alive: false,
            last_cpu_us: 700,
            last_rss: 5,
            start_cpu_us: Some(200),
            end_cpu_us: None,
        });
        l.entries[0].last_cpu_us = 3_000;
        l.entries[0].end_cpu_us = Some(3_000);
        let c = l.cost(Role::Instance);
        assert_eq!(c.processes, 2);
        assert_eq!(c.cpu_us, 2_000 + 500);
        assert_eq!(l.cost(Role::Redis), RoleCost::default());
    }
}
