//! The run's redis-server: started on a free port with a private data directory, killed and
//! started again by `redis_restart`, asked for its memory and its streams' lengths.
//!
//! The few commands pushbench sends (PING, INFO, SCAN, XLEN) go through a minimal RESP client
//! over a plain TCP stream: the replies are one line or one bulk string, and a client crate
//! would add reconnect machinery that a probe taken once does not need.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Child;

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
            if let Ok(Reply::Status(s)) = command(self.addr, &["PING"]).await {
                if s == "PONG" {
                    return Ok(());
                }
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
        let _ = self.child.start_kill();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => "still running 10 s after SIGKILL".into(),
        }
    }

    /// Starts it again on the same port and data directory (after [`Self::kill`]).
    pub async fn start_again(&mut self, cpus: Option<&[usize]>) -> Result<(), ClusterError> {
        let again = Self::start_on(&self.dir, self.persistence, cpus, self.addr).await?;
        *self = again;
        Ok(())
    }

    /// SIGTERM and a wait; SIGKILL after 10 s.
    pub async fn stop(mut self) -> String {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                let _ = self.child.kill().await;
                "killed after 10 s without exiting on SIGTERM".into()
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

/// A RESP reply, as far as pushbench reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Sends one command on a fresh connection and reads its reply (within 5 s).
pub async fn command(addr: SocketAddr, args: &[&str]) -> std::io::Result<Reply> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).as_bytes());
            out.extend(a.as_bytes());
            out.extend(b"\r\n");
        }
        stream.write_all(&out).await?;
        let mut reader = BufReader::new(stream);
        read_reply(&mut reader).await
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer"))?
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

fn read_reply<'a>(
    r: &'a mut BufReader<TcpStream>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Reply>> + Send + 'a>> {
    Box::pin(async move {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("empty reply"))?;
        let int = || rest.parse::<i64>().map_err(|_| bad("bad length"));
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(int()?),
            "$" => match int()? {
                n if n < 0 => Reply::Bulk(None),
                n => {
                    let mut buf = vec![0; n as usize + 2];
                    r.read_exact(&mut buf).await?;
                    buf.truncate(n as usize);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => {
                let n = int()?;
                let mut items = Vec::new();
                for _ in 0..n.max(0) {
                    items.push(read_reply(r).await?);
                }
                Reply::Array(items)
            }
            _ => return Err(bad("unknown reply type")),
        })
    })
}

/// `used_memory` from `INFO memory`, bytes.
pub async fn used_memory(addr: SocketAddr) -> std::io::Result<u64> {
    match command(addr, &["INFO", "memory"]).await? {
        Reply::Bulk(Some(text)) => String::from_utf8_lossy(&text)
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| bad("INFO memory has no used_memory")),
        other => Err(bad(&format!("INFO memory answered {other:?}"))),
    }
}

/// The topic streams under `prefix` and the lines they hold: (streams, entries). Other keys
/// (the backend's control stream and bookkeeping) are not lines, and are skipped.
pub async fn stream_entries(addr: SocketAddr, prefix: &str) -> std::io::Result<(u64, u64)> {
    // The backend's topic streams (`PREFIX:topic:…`), not its control and meta keys.
    let pattern = format!("{prefix}:topic:*");
    let mut cursor = "0".to_string();
    let (mut streams, mut entries) = (0, 0);
    loop {
        let reply = command(addr, &["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"]).await?;
        let Reply::Array(parts) = reply else {
            return Err(bad("SCAN answered no array"));
        };
        let [Reply::Bulk(Some(next)), Reply::Array(keys)] = parts.as_slice() else {
            return Err(bad("SCAN answered an unexpected shape"));
        };
        for key in keys {
            let Reply::Bulk(Some(key)) = key else {
                continue;
            };
            let key = String::from_utf8_lossy(key).to_string();
            if let Reply::Status(t) = command(addr, &["TYPE", &key]).await? {
                if t == "stream" {
                    if let Reply::Integer(n) = command(addr, &["XLEN", &key]).await? {
                        streams += 1;
                        entries += n.max(0) as u64;
                    }
                }
            }
        }
        cursor = String::from_utf8_lossy(next).to_string();
        if cursor == "0" {
            return Ok((streams, entries));
        }
    }
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
        for i in 0..n {
            let reply = command(addr, &["XADD", key, "*", "line", &format!("line {i}")])
                .await
                .expect("XADD");
            assert!(matches!(reply, Reply::Bulk(Some(_))), "{reply:?}");
        }
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
        command(redis.addr, &["SET", &format!("{REDIS_PREFIX}:seq"), "1"])
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
        assert!(command(redis.addr, &["PING"]).await.is_err(), "killed");
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
