//! The command line and the configuration it resolves to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use pushbench_feed::generator::{Burst, GeneratorConfig, LineBytes};
use pushbench_feed::http::{CorsConfig, TokenAuth};
use pushbench_feed::memory::MemoryConfig;
use pushbench_feed::Transport;
use pushbench_poll::PollConfig;
use pushbench_protocol::generated;
use pushbench_sse::{Http2Config, ServeConfig, SseConfig, TlsConfig};
use pushbench_ws::WsConfig;

use crate::backend::{parse_backend, BackendChoice, DEFAULT_REDIS_PREFIX};
use crate::publish::PublishConfig;

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 15s or 500ms: {e}"))
}

fn transport(s: &str) -> Result<Transport, String> {
    Transport::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Transport::ALL.iter().map(|t| t.as_str()).collect();
        let (last, rest) = names.split_last().expect("transports exist");
        format!(
            "unknown transport {s:?}; expected {} or {last}",
            rest.join(", ")
        )
    })
}

/// Serves a CI build-step log feed over SSE, WebSocket and HTTP polling on one port.
#[derive(Debug, Parser)]
#[command(name = "feed-server", version)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Transports to serve (comma-separated): sse, ws, poll. Default: all.
    #[arg(long, value_delimiter = ',', value_parser = transport)]
    pub transport: Vec<Transport>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Where the feed lives: `memory` (this process only) or `redis://HOST:PORT[/DB]`
    /// (Redis Streams, shared by every server on that Redis and prefix: lines POSTed to one
    /// are served by all, finish and admin drops apply to all). With Redis the server fails
    /// at startup if Redis cannot be reached; later outages answer 503 and open streams wait.
    #[arg(long, default_value = "memory", value_name = "memory|redis://HOST:PORT", value_parser = parse_backend)]
    pub backend: String,
    /// Prefix of every Redis key (`PREFIX:topic:...`), so runs and tests can share a Redis.
    #[arg(long, default_value = DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,
    /// Lines of history kept per topic; resumes and late viewers are served from it. With
    /// Redis, each topic's stream is trimmed to exactly this many lines.
    #[arg(long, default_value_t = 10_000)]
    pub history: usize,
    /// Most topics held at once (with Redis: over all servers sharing the prefix).
    #[arg(long, default_value_t = 100_000)]
    pub max_topics: usize,
    /// Most open streams and in-flight requests; beyond it clients get 503 + Retry-After.
    #[arg(long, default_value_t = 200_000)]
    pub max_connections: u64,
    /// Most open TCP connections, idle keep-alive ones included; beyond it a new connection
    /// gets 503 + Retry-After: 1 and is closed before its request is read. Default: no limit
    /// (the open-file limit is the limit then). Unlike --max-connections, this also bounds
    /// connections that never send a request.
    #[arg(long, value_name = "N")]
    pub max_tcp_connections: Option<usize>,
    /// Largest request head (request line and headers, cookies included), bytes; beyond it
    /// the client gets 431. 16 KiB fits a browser's cookies and URL, as nginx's default
    /// (large_client_header_buffers 4 8k) does, and bounds what an idle connection can make
    /// the server hold (hyper's own bound is ~400 KB: 4 GB at 10,000 connections).
    #[arg(long, default_value_t = pushbench_sse::serve::DEFAULT_MAX_HEADER_BYTES)]
    pub max_header_bytes: usize,
    /// Time a client has to send a request head; slower connections are closed.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub header_read_timeout: Duration,
    /// Serve HTTP/1.1 only: no cleartext HTTP/2 (prior knowledge), and TLS offers ALPN
    /// `http/1.1` alone. By default HTTP/2 is served beside HTTP/1.1 on the same port.
    #[arg(long)]
    pub http1_only: bool,
    /// Most streams open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, value_name = "N", default_value_t = pushbench_sse::Http2Config::default().max_concurrent_streams)]
    pub h2_max_streams: u32,
    /// Serve TLS on the same port too (a connection starting with a TLS handshake), with this
    /// PEM certificate chain; needs --tls-key. ALPN offers h2 and http/1.1.
    #[arg(
        long,
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS on the same port too, with a certificate for localhost, 127.0.0.1 and ::1
    /// made at start-up (for tests and local benchmarks: clients must skip verification).
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Idle time before an SSE keep-alive comment.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub sse_keep_alive: Duration,
    /// Reconnect delay suggested to SSE clients (`retry:`).
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub sse_retry: Duration,
    /// Interval between WebSocket pings.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub ws_ping: Duration,
    /// Longest long-poll `wait` accepted.
    #[arg(long, default_value = "120s", value_parser = duration)]
    pub poll_max_wait: Duration,
    /// Largest POST body accepted, bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Origin allowed to read streams cross-origin (repeatable); echoed back, never `*`.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,
    /// Allow credentials on cross-origin requests.
    #[arg(long)]
    pub cors_credentials: bool,
    /// Token readers must present on every transport (SSE, WebSocket, poll):
    /// Authorization: Bearer, or ?token= for browsers' EventSource and WebSocket.
    #[arg(long, env = "FEED_SERVER_TOKEN")]
    pub token: Option<String>,
    /// Token publishers must present (Authorization: Bearer).
    #[arg(long, env = "FEED_SERVER_PUBLISH_TOKEN")]
    pub publish_token: Option<String>,
    /// Enables the admin routes (fault injection: POST /admin/drop-connections/{topic}),
    /// which need this token as Authorization: Bearer. Off by default.
    #[arg(long, env = "FEED_SERVER_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Topics the built-in generator writes (0: no generator). With a shared --backend run
    /// it on one server only: each generator writes its own lines. On topics Redis already
    /// holds it goes on after their last seq.
    #[arg(long, default_value_t = 4)]
    pub gen_topics: u32,
    /// Generated lines per second per topic (open loop).
    #[arg(long, default_value_t = 5.0)]
    pub gen_rate: f64,
    /// Generated line length in bytes: N or MIN..MAX.
    #[arg(long, default_value = "40..120")]
    pub gen_line_bytes: LineBytes,
    /// Time between bursts on a topic (with --gen-burst-lines).
    #[arg(long, value_parser = duration)]
    pub gen_burst_every: Option<Duration>,
    /// Lines per burst.
    #[arg(long, default_value_t = 0)]
    pub gen_burst_lines: u32,
    /// Lines per second within a burst.
    #[arg(long, default_value_t = 10_000.0)]
    pub gen_burst_rate: f64,
    /// Organisation of generated topics.
    #[arg(long, default_value = generated::ORG)]
    pub gen_org: String,
    /// Repository of generated topics.
    #[arg(long, default_value = generated::REPO)]
    pub gen_repo: String,
    /// Build of generated topics; steps are numbered 1..=gen-topics.
    #[arg(long, default_value = generated::BUILD)]
    pub gen_build: String,
    /// Seed of the generated text.
    #[arg(long, default_value_t = 1)]
    pub gen_seed: u64,
    /// Start of the generator's schedule, Unix nanoseconds (default: when it starts). The
    /// server prints its origin as `generator origin unix_ns=N` before `listening on`; give
    /// that N to a restarted server and it continues the same schedule: lines due while no
    /// server ran are skipped, and each step's first line gets its seq in the schedule, so
    /// numbering goes on instead of restarting at 1.
    #[arg(long, value_name = "N")]
    pub gen_origin_unix_ns: Option<u64>,
}

/// Origins before this (2001-09-09) are a unit mistake: seconds or milliseconds since the epoch
/// read as nanoseconds would schedule billions of skipped lines per topic.
const EARLIEST_ORIGIN_UNIX_NS: u64 = 1_000_000_000_000_000_000;
/// How far ahead of this host's clock an origin may lie. A restarted server's origin is in the
/// past; a little slack covers a clock stepped back meanwhile, while a typo far in the future
/// would otherwise leave the generator silently waiting.
const MAX_ORIGIN_AHEAD: Duration = Duration::from_secs(60);

/// Checks a `--gen-origin-unix-ns` against this host's clock.
fn check_origin(origin: u64, now_unix_ns: u64) -> Result<u64, String> {
    if origin < EARLIEST_ORIGIN_UNIX_NS {
        return Err(format!(
            "--gen-origin-unix-ns {origin} is before 2001-09-09: give Unix time in \
             nanoseconds (as printed in `generator origin unix_ns=N`), not seconds or \
             milliseconds"
        ));
    }
    if origin > now_unix_ns.saturating_add(MAX_ORIGIN_AHEAD.as_nanos() as u64) {
        return Err(format!(
            "--gen-origin-unix-ns {origin} is {:.0} s in the future; an origin is the start \
             of a schedule already running (the `generator origin unix_ns=N` a server printed)",
            (origin - now_unix_ns) as f64 / 1e9
        ));
    }
    Ok(origin)
}

/// Everything the server runs with, resolved from [`Args`].
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub transports: Vec<Transport>,
    /// Where the feed lives; `memory` sizes it either way.
    pub backend: BackendChoice,
    pub memory: MemoryConfig,
    pub max_connections: u64,
    /// Bounds of the connection driver: header timeout and size, TCP connection limit.
    pub serve: ServeConfig,
    pub sse: SseConfig,
    pub ws: WsConfig,
    pub poll: PollConfig,
    pub publish: PublishConfig,
    /// Token of the admin routes; `None` leaves them unmounted.
    pub admin_token: Option<String>,
    pub generator: Option<GeneratorConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            transports: Transport::ALL.to_vec(),
            backend: BackendChoice::Memory,
            memory: MemoryConfig::default(),
            max_connections: 200_000,
            serve: ServeConfig::default(),
            sse: SseConfig::default(),
            ws: WsConfig::default(),
            poll: PollConfig::default(),
            publish: PublishConfig::default(),
            admin_token: None,
            generator: None,
        }
    }
}

impl Args {
    /// Checks the arguments together and resolves them.
    pub fn resolve(&self) -> Result<ServerConfig, String> {
        if self.history == 0 {
            return Err("--history must be at least 1".into());
        }
        if !(self.gen_rate >= 0.0 && self.gen_rate.is_finite()) {
            return Err("--gen-rate must be a non-negative number".into());
        }
        let burst = match (self.gen_burst_every, self.gen_burst_lines) {
            (None, 0) => None,
            (Some(every), lines) if lines > 0 && !every.is_zero() => {
                if !(self.gen_burst_rate > 0.0 && self.gen_burst_rate.is_finite()) {
                    return Err("--gen-burst-rate must be positive".into());
                }
                Some(Burst {
                    every,
                    lines,
                    lines_per_sec: self.gen_burst_rate,
                })
            }
            _ => {
                return Err(
                    "bursts need both --gen-burst-every (> 0) and --gen-burst-lines (> 0)".into(),
                )
            }
        };
        let generator = (self.gen_topics > 0).then(|| GeneratorConfig {
            org: self.gen_org.clone(),
            repo: self.gen_repo.clone(),
            build: self.gen_build.clone(),
            topics: self.gen_topics,
            lines_per_sec: self.gen_rate,
            line_bytes: self.gen_line_bytes,
            burst,
            seed: self.gen_seed,
            origin_unix_ns: None,
        });
        let generator = match (generator, self.gen_origin_unix_ns) {
            (Some(g), Some(origin)) => Some(GeneratorConfig {
                origin_unix_ns: Some(check_origin(origin, pushbench_feed::clock::unix_nanos())?),
                ..g
            }),
            (None, Some(_)) => {
                return Err("--gen-origin-unix-ns needs the generator (--gen-topics > 0)".into())
            }
            (g, None) => g,
        };
        if let Some(g) = &generator {
            g.topic_ids()
                .map_err(|e| format!("generated topic names: {e}"))?;
        }
        let cors = CorsConfig {
            allowed_origins: self.cors_origins.clone(),
            allow_credentials: self.cors_credentials,
        };
        cors.layer()?;
        if self.max_tcp_connections == Some(0) {
            return Err(
                "--max-tcp-connections must be at least 1 (leave it out for no limit)".into(),
            );
        }
        if self.max_header_bytes < 1024 {
            return Err(format!(
                "--max-header-bytes {} is too small for any real request head; give at least 1024",
                self.max_header_bytes
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err("--header-read-timeout must be greater than zero".into());
        }
        if self.h2_max_streams == 0 {
            return Err("--h2-max-streams must be at least 1".into());
        }
        let http2 = (!self.http1_only).then(|| Http2Config {
            max_concurrent_streams: self.h2_max_streams,
            ..Http2Config::default()
        });
        let tls = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), false) => Some(
                TlsConfig::from_pem_files(cert, key)
                    .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?,
            ),
            (None, None, true) => {
                Some(crate::tls::self_signed().map_err(|e| format!("--tls-self-signed: {e}"))?)
            }
            (None, None, false) => None,
            // clap's `requires` and `conflicts_with` refuse the rest.
            _ => return Err("give --tls-cert with --tls-key, or --tls-self-signed".into()),
        };
        if self
            .admin_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err("--admin-token must not be empty".into());
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err(format!(
                "--redis-prefix {:?} must be non-empty and without spaces",
                self.redis_prefix
            ));
        }
        let backend = if self.backend == "memory" {
            BackendChoice::Memory
        } else {
            BackendChoice::Redis {
                url: self.backend.clone(),
                prefix: self.redis_prefix.clone(),
            }
        };
        Ok(ServerConfig {
            backend,
            transports: if self.transport.is_empty() {
                Transport::ALL.to_vec()
            } else {
                self.transport.clone()
            },
            memory: MemoryConfig {
                history: self.history,
                max_topics: self.max_topics,
            },
            max_connections: self.max_connections,
            serve: ServeConfig {
                header_read_timeout: self.header_read_timeout,
                max_header_bytes: self.max_header_bytes,
                max_connections: self.max_tcp_connections,
                http2,
                tls,
            },
            sse: SseConfig {
                keep_alive: self.sse_keep_alive,
                retry: Some(self.sse_retry),
                cors,
                auth: TokenAuth::new(self.token.clone()),
                ..SseConfig::default()
            },
            ws: WsConfig {
                ping_interval: self.ws_ping,
                auth: TokenAuth::new(self.token.clone()),
                ..WsConfig::default()
            },
            poll: PollConfig {
                max_wait: self.poll_max_wait,
                auth: TokenAuth::new(self.token.clone()),
                ..PollConfig::default()
            },
            publish: PublishConfig {
                max_body_bytes: self.max_body_bytes,
                auth: TokenAuth::new(self.publish_token.clone()),
            },
            admin_token: self.admin_token.clone(),
            generator,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> Result<ServerConfig, String> {
        let argv = std::iter::once("feed-server").chain(args.iter().copied());
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .resolve()
    }

    #[test]
    fn the_generator_origin_is_optional_and_checked() {
        let generator = |args: &[&str]| resolve(args).unwrap().generator.unwrap();
        assert_eq!(generator(&[]).origin_unix_ns, None);
        let now = pushbench_feed::clock::unix_nanos();
        let past = (now - 5_000_000_000).to_string();
        assert_eq!(
            generator(&["--gen-origin-unix-ns", &past]).origin_unix_ns,
            Some(now - 5_000_000_000)
        );
        let seconds = (now / 1_000_000_000).to_string();
        let e = resolve(&["--gen-origin-unix-ns", &seconds]).unwrap_err();
        assert!(e.contains("nanoseconds"), "{e}");
        let future = (now + 3_600_000_000_000).to_string();
        let e = resolve(&["--gen-origin-unix-ns", &future]).unwrap_err();
        assert!(e.contains("future"), "{e}");
        let e = resolve(&["--gen-topics", "0", "--gen-origin-unix-ns", &past]).unwrap_err();
        assert!(e.contains("--gen-topics"), "{e}");
        assert!(resolve(&["--gen-origin-unix-ns", "soon"]).is_err());
    }

    #[test]
    fn the_backend_is_memory_or_a_checked_redis_url() {
        assert_eq!(resolve(&[]).unwrap().backend, BackendChoice::Memory);
        assert_eq!(
            resolve(&[
                "--backend",
                "redis://127.0.0.1:6379",
                "--redis-prefix",
                "run1"
            ])
            .unwrap()
            .backend,
            BackendChoice::Redis {
                url: "redis://127.0.0.1:6379".into(),
                prefix: "run1".into()
            }
        );
        for bad in ["redis://:x", "rediss://h:1", "mysql://h", "Memory", ""] {
            let e = resolve(&["--backend", bad]).unwrap_err();
            assert!(e.contains("--backend"), "{bad}: {e}");
        }
        let e = resolve(&["--backend", "redis://h:1", "--redis-prefix", ""]).unwrap_err();
        assert!(e.contains("--redis-prefix"), "{e}");
    }

    #[test]
    fn http2_is_on_by_default_and_tls_flags_are_checked() {
        let serve = |args: &[&str]| resolve(args).unwrap().serve;
        assert_eq!(serve(&[]).http2, Some(Http2Config::default()));
        assert_eq!(serve(&[]).tls, None);
        assert_eq!(serve(&["--http1-only"]).http2, None);
        assert_eq!(
            serve(&["--h2-max-streams", "64"])
                .http2
                .unwrap()
                .max_concurrent_streams,
            64
        );
        assert!(resolve(&["--h2-max-streams", "0"])
            .unwrap_err()
            .contains("--h2-max-streams"));
        assert!(serve(&["--tls-self-signed"]).tls.is_some());
        // Both files or neither, and not with a made-up certificate.
        for bad in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"][..],
            &[
                "--tls-self-signed",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ][..],
        ] {
            assert!(resolve(bad).is_err(), "{bad:?}");
        }
        let dir = std::env::temp_dir().join(format!("feed-server-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let missing = missing.to_str().unwrap();
        let e = resolve(&["--tls-cert", missing, "--tls-key", missing]).unwrap_err();
        assert!(e.contains("--tls-cert") && e.contains("missing.pem"), "{e}");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let not_pem = not_pem.to_str().unwrap();
        let e = resolve(&["--tls-cert", not_pem, "--tls-key", not_pem]).unwrap_err();
        assert!(e.contains("no certificate") && e.contains("not.pem"), "{e}");
        // A real pair from PEM files works; a key of another certificate does not.
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key, wrong) = (dir.join("c.pem"), dir.join("k.pem"), dir.join("w.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        std::fs::write(&wrong, other.signing_key.serialize_pem()).unwrap();
        let (cert, key, wrong) = (
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            wrong.to_str().unwrap(),
        );
        assert!(serve(&["--tls-cert", cert, "--tls-key", key]).tls.is_some());
        let e = resolve(&["--tls-cert", cert, "--tls-key", wrong]).unwrap_err();
        assert!(e.contains("do not make a TLS configuration"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
