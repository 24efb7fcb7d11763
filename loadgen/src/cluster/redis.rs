//! The run's redis-server: started on a free port with a private data directory, killed and
//! started again by `redis_restart`, asked for its memory and its streams' lengths.
//!
//! The few commands pushbench sends (PING, INFO, SCAN, TYPE, XLEN) go through redis-rs, the
//! client the Redis backend uses, on a fresh connection per probe: a probe is taken a handful
//! of times per run, so nothing is worth keeping open (or reconnecting) between them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;

use ::redis::aio::MultiplexedConnection;
use ::redis::{RedisError, RedisResult};

use super::{free_port, pinned_command, ClusterError};
use crate::scenario::RedisPersistence;

/// Where pushbench looks for redis-server.
pub const REDIS_SERVER: &str = "redis-server";
/// What to tell a person whose machine has none.
pub const INSTALL_REDIS: &str =
    "install redis-server (scripts/ensure-debian-packages.sh redis-server)";

/// The key prefix every feed-server of a run uses (`--redis-prefix`; keys are
/// `PREFIX:topic:...`); the run's Redis is fresh, so one constant prefix is enough.
pub const REDIS_PREFIX: &str = "pushbench";

/// A running redis-server.
pub struct RedisProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    pub dir: PathBuf,
    persistence: RedisPersistence,
    log: PathBuf,
}

impl RedisProcess {
    /// Starts redis-server on a free loopback port with its data in `dir` (created), and
    /// waits for PING.
    pub async fn start(
        dir: &Path,
        persistence: RedisPersistence,
        cpus: Option<&[usize]>,
    ) -> Result<Self, ClusterError> {
        std::fs::create_dir_all(dir).map_err(|source| ClusterError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        // Absolute: redis-server changes into `--dir` before it opens `--logfile`, so a
        // relative log path (a run under ./results) would name a file that does not exist.
        let dir = std::path::absolute(dir).map_err(|source| ClusterError::Io {
            what: format!("resolving {}", dir.display()),
            source,
        })?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        Self::start_on(&dir, persistence, cpus, addr).await
    }

    async fn start_on(
        dir: &Path,
        persistence: RedisPersistence,
        cpus: Option<&[usize]>,
        addr: SocketAddr,
    ) -> Result<Self, ClusterError> {
        let log = dir.join("redis.log");
        let mut cmd = pinned_command(Path::new(REDIS_SERVER), cpus);
        cmd.arg("--port")
            .arg(addr.port().to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir)
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(&log)
            .arg("--daemonize")
            .arg("no");
        match persistence {
            RedisPersistence::Aof => cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"]),
            RedisPersistence::None => cmd.args(["--appendonly", "no"]),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ClusterError::Missing {
                program: REDIS_SERVER,
                hint: INSTALL_REDIS,
            },
            _ => ClusterError::Spawn {
                program: REDIS_SERVER.into(),
                source,
            },
        })?;
        let pid = child.id().unwrap_or(0);
        let mut redis = RedisProcess {
            child,
            addr,
            pid,
            dir: dir.to_path_buf(),
            persistence,
            log,
        };
        redis.wait_ready(Duration::from_secs(10)).await?;
        Ok(redis)
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if ping(self.addr).await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ClusterError::Exited {
                    what: "redis-server".into(),
                    how: status.to_string(),
                    log: self.log.clone(),
                });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::NotReady {
                    what: "redis-server".into(),
                    within,
                    log: self.log.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash ends it: what it had not written to its append-only file is gone.
    pub async fn kill(&mut self) -> String {
        crate::orchestrate::kill_and_reap(&mut self.child).await
    }

    /// Starts it again on the same port and data directory (after [`Self::kill`]).
    pub async fn start_again(&mut self, cpus: Option<&[usize]>) -> Result<(), ClusterError> {
        let again = Self::start_on(&self.dir, self.persistence, cpus, self.addr).await?;
        *self = again;
        Ok(())
    }

    /// SIGTERM and a wait; SIGKILL after 10 s.
    pub async fn stop(mut self) -> String {
        crate::orchestrate::terminate(&mut self.child, self.pid).await
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

/// How long a probe may take, connection included.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `probe` on a fresh connection to `addr`, within [`PROBE_TIMEOUT`].
async fn probe<T>(
    addr: SocketAddr,
    probe: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
) -> RedisResult<T> {
    let exchange = async {
        let client = ::redis::Client::open(format!("redis://{addr}"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        probe(&mut conn).await
    };
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}

/// `PING` answered `PONG`.
pub async fn ping(addr: SocketAddr) -> RedisResult<()> {
    probe(addr, async |c| {
        let pong: String = ::redis::cmd("PING").query_async(c).await?;
        match pong.as_str() {
            "PONG" => Ok(()),
            other => Err(RedisError::from((
                ::redis::ErrorKind::UnexpectedReturnType,
                "PING answered",
                other.to_string(),
            ))),
        }
    })
    .await
}

/// `used_memory` from `INFO memory`, bytes.
pub async fn used_memory(addr: SocketAddr) -> RedisResult<u64> {
    probe(addr, async |c| {
        let info: String = ::redis::cmd("INFO").arg("memory").query_async(c).await?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                RedisError::from((
                    ::redis::ErrorKind::UnexpectedReturnType,
                    "INFO memory has no used_memory",
                ))
            })
    })
    .await
}

/// The topic streams under `prefix` and the lines they hold: (streams, entries). Other keys
/// (the backend's control stream and bookkeeping) are not lines, and are skipped.
pub async fn stream_entries(addr: SocketAddr, prefix: &str) -> RedisResult<(u64, u64)> {
    // The backend's topic streams (`PREFIX:topic:…`), not its control and meta keys.
    let pattern = format!("{prefix}:topic:*");
    probe(addr, async |c| {
        let (mut streams, mut entries) = (0, 0);
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(c)
                .await?;
            for key in keys {
                let kind: String = ::redis::cmd("TYPE").arg(&key).query_async(c).await?;
                if kind == "stream" {
                    let n: u64 = ::redis::cmd("XLEN").arg(&key).query_async(c).await?;
                    streams += 1;
                    entries += n;
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok((streams, entries));
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pushbench-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    async fn xadd(addr: SocketAddr, key: &str, n: u32) {
        probe(addr, async |c| {
            for i in 0..n {
                let _: String = ::redis::cmd("XADD")
                    .arg(key)
                    .arg("*")
                    .arg("line")
                    .arg(format!("line {i}"))
                    .query_async(c)
                    .await?;
            }
            Ok(())
        })
        .await
        .expect("XADD");
    }

    #[tokio::test]
    async fn probes_count_stream_lines_and_aof_survives_a_kill() {
        let dir = temp_dir("redis-probe");
        let mut redis = RedisProcess::start(&dir, RedisPersistence::Aof, None)
            .await
            .unwrap_or_else(|e| panic!("{e} ({INSTALL_REDIS})"));
        let empty = used_memory(redis.addr).await.expect("INFO memory");
        assert!(empty > 0);
        xadd(redis.addr, &format!("{REDIS_PREFIX}:topic:a"), 30).await;
        xadd(redis.addr, &format!("{REDIS_PREFIX}:topic:b"), 12).await;
        // Not a stream, and not under the prefix: both skipped.
        probe(redis.addr, async |c| {
            ::redis::cmd("SET")
                .arg(format!("{REDIS_PREFIX}:seq"))
                .arg(1)
                .query_async::<()>(c)
                .await
        })
        .await
        .unwrap();
        xadd(redis.addr, "other:topic", 5).await;
        assert_eq!(
            stream_entries(redis.addr, REDIS_PREFIX).await.unwrap(),
            (2, 42)
        );
        assert!(used_memory(redis.addr).await.unwrap() > empty);

        // everysec: give the AOF its second, then crash and come back on the same port.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let port = redis.addr.port();
        redis.kill().await;
        assert!(ping(redis.addr).await.is_err(), "killed");
        redis.start_again(None).await.expect("starts again");
        assert_eq!(redis.addr.port(), port);
        assert_eq!(
            stream_entries(redis.addr, REDIS_PREFIX).await.unwrap(),
            (2, 42),
            "the AOF kept every line"
        );
        redis.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn without_persistence_a_kill_loses_everything() {
        // A relative data directory, as a run under ./results gives: redis-server changes
        // into it before it opens its log, which must therefore be named absolutely.
        let dir = PathBuf::from(format!(
            "../target/tmp/pushbench-redis-nopersist-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut redis = RedisProcess::start(&dir, RedisPersistence::None, None)
            .await
            .unwrap_or_else(|e| panic!("{e} ({INSTALL_REDIS})"));
        xadd(redis.addr, &format!("{REDIS_PREFIX}:topic:a"), 3).await;
        redis.kill().await;
        redis.start_again(None).await.expect("starts again");
        assert_eq!(
            stream_entries(redis.addr, REDIS_PREFIX).await.unwrap(),
            (0, 0)
        );
        redis.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
