//! Load from several machines: one scenario's clients split into shards that run as separate
//! `pushbench run` processes, and `pushbench merge`, which turns their records into one run.
//!
//! - [`ShardSpec`] (`--shard I/N`): shard `I` runs the clients whose index `i` satisfies
//!   `i % N == I - 1`. Every shard plans the whole client set (topics, source addresses,
//!   ramp-up slots) and keeps its share, so N shards together are exactly the unsharded run's
//!   clients, each on the same topic at the same instant. A round-robin split rather than
//!   contiguous blocks keeps every shard's ramp-up as long as the whole run's.
//! - [`PublishRole`]: exactly one process publishes (shard 1 unless told otherwise, or a
//!   `--publisher-only` process with no client), so the feed is not multiplied. The others
//!   know each step's final seq from the publisher's schedule, which is a function of the
//!   scenario and the start instant ([`crate::publisher::scheduled_last_seq`]).
//! - [`StartAt`] (`--start-at`): the instant every shard's first run starts, on each machine's
//!   Unix clock; later runs of the same invocation (transports, sweep values, repetitions) each
//!   start a fixed slot after the previous one ([`job_offsets`]), so their phases coincide too.
//! - [`record`]: what a shard writes beside its summary (`TRANSPORT/measurements.json`), the
//!   mergeable inputs of [`crate::run::summarize`] and nothing derived.
//! - [`merge`]: checks that the shards belong together and merges them: histograms added,
//!   counters summed, time series aligned by tick, the server's samples taken once, then the
//!   same `summarize` a single run calls.

pub mod merge;
pub mod record;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::clock::ClockOffset;
use crate::run::Timeline;
use crate::scenario::Scenario;

/// Between two runs of one sharded invocation: time for the previous run's clients and
/// sockets to close and the next one to be planned. A run that needs longer is refused as
/// late rather than started out of step with the other shards.
pub const SLOT_MARGIN: Duration = Duration::from_secs(5);
/// A shard that reaches its start instant this late has missed it (the others are already
/// running): refused, since its clients would start out of step.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(50);

/// `--shard I/N`: this process runs shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

/// Why `--shard` could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardSpecError {
    #[error("--shard {0:?}: expected I/N, e.g. 1/4")]
    Form(String),
    #[error("--shard {0:?}: I and N must be whole numbers")]
    Number(String),
    #[error("--shard {given:?}: I must be between 1 and N ({count})")]
    Range { given: String, count: u32 },
}

impl FromStr for ShardSpec {
    type Err = ShardSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| ShardSpecError::Form(s.to_string()))?;
        let number = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| ShardSpecError::Number(s.to_string()))
        };
        let (index, count) = (number(i)?, number(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(ShardSpecError::Range {
                given: s.to_string(),
                count,
            });
        }
        Ok(ShardSpec { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// Whether client `i` (of the whole run) is this shard's.
    pub fn includes(&self, client: u32) -> bool {
        client % self.count == self.index - 1
    }

    /// How many of `clients` are this shard's.
    pub fn clients_of(&self, clients: u32) -> u32 {
        (0..clients).filter(|i| self.includes(*i)).count() as u32
    }
}

/// Whether this process publishes the feed (when the load generator publishes at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishRole {
    /// Publishes and runs its clients (shard 1 by default, or an unsharded run).
    Publishes,
    /// Runs its clients; another process publishes (`--no-publish`, or shards 2..N).
    ClientsOnly,
    /// Publishes and runs no client (`--publisher-only`).
    PublisherOnly,
}

impl PublishRole {
    pub fn publishes(self) -> bool {
        matches!(self, PublishRole::Publishes | PublishRole::PublisherOnly)
    }

    pub fn name(self) -> &'static str {
        match self {
            PublishRole::Publishes => "clients + publisher",
            PublishRole::ClientsOnly => "clients",
            PublishRole::PublisherOnly => "publisher only",
        }
    }
}

/// `--start-at`: Unix seconds (a fraction allowed) or an RFC 3339 instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

/// Why `--start-at` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("--start-at {given:?}: expected Unix seconds (e.g. 1796300000 or 1796300000.5) or an RFC 3339 instant (e.g. 2026-12-03T15:00:00Z)")]
pub struct StartAtError {
    given: String,
}

impl FromStr for StartAt {
    type Err = StartAtError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || StartAtError {
            given: s.to_string(),
        };
        let t = s.trim();
        if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !t.is_empty() {
            let secs: f64 = t.parse().map_err(|_| err())?;
            if !secs.is_finite() || secs <= 0.0 {
                return Err(err());
            }
            return Ok(StartAt(UNIX_EPOCH + Duration::from_secs_f64(secs)));
        }
        humantime::parse_rfc3339_weak(t)
            .map(StartAt)
            .map_err(|_| err())
    }
}

impl StartAt {
    pub fn unix_ns(&self) -> u64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

/// How one process of a sharded run takes part (in `RunOptions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardRun {
    /// `None` for a `--publisher-only` process.
    pub spec: Option<ShardSpec>,
    pub role: PublishRole,
    /// When this run starts (Unix ns): `--start-at` plus the run's [`job_offsets`] slot;
    /// `None`: at once (one shard only).
    pub start_unix_ns: Option<u64>,
    /// This machine's name, for the report.
    pub hostname: String,
}

impl ShardRun {
    /// `shard I/N`, or `publisher`.
    pub fn label(&self) -> String {
        match (self.role, self.spec) {
            (PublishRole::PublisherOnly, _) | (_, None) => "publisher".into(),
            (_, Some(s)) => format!("shard {s}"),
        }
    }

    /// Whether client `i` runs in this process.
    pub fn includes(&self, client: u32) -> bool {
        match (self.role, self.spec) {
            (PublishRole::PublisherOnly, _) => false,
            (_, Some(spec)) => spec.includes(client),
            (_, None) => true,
        }
    }
}

/// When each run of an invocation starts, from the first one's start: run `k` one slot after
/// run `k - 1`, a slot being that run's planned length (phases, drain) plus [`SLOT_MARGIN`].
/// A function of the scenarios alone, so every shard computes the same instants.
pub fn job_offsets(runs: &[&Scenario]) -> Vec<Duration> {
    let mut at = Duration::ZERO;
    runs.iter()
        .map(|sc| {
            let this = at;
            at += Timeline::of(sc).measure_end + sc.drain + SLOT_MARGIN;
            this
        })
        .collect()
}

/// The target's origin (`scheme://host:port`), where `/_pushbench/time` is asked.
pub fn target_origin(t: &crate::scenario::Target) -> Option<String> {
    let url = t
        .publish_url
        .as_ref()
        .or(t.sse_url.as_ref())
        .or(t.poll_url.as_ref())
        .cloned()
        .or_else(|| {
            t.ws_url.as_ref().map(|w| {
                w.replacen("wss://", "https://", 1)
                    .replacen("ws://", "http://", 1)
            })
        })?;
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    Some(format!("{scheme}://{authority}"))
}

/// What a sharded run says about itself in `summary.json` (`shard`), and a merged run
/// about each of its shards (`shards`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardInfo {
    /// 1-based; `None` for a publisher-only process.
    pub index: Option<u32>,
    /// Shards in the whole run (N of `--shard I/N`); for a publisher-only process, 0 until
    /// merged (it serves any N).
    pub count: u32,
    pub role: Option<PublishRole>,
    /// The first run's start instant, Unix ns (0: started at once).
    pub start_unix_ns: u64,
    /// Where it ran.
    pub hostname: String,
    /// The target's origin (`scheme://host:port`).
    pub target: String,
    /// Its run folder (merged runs only).
    pub run_dir: Option<String>,
}

impl ShardInfo {
    pub fn label(&self) -> String {
        match self.index {
            Some(i) => format!("shard {i}/{}", self.count),
            None => "publisher".into(),
        }
    }
}

/// One shard's part of a transport's run: in a shard's own result (one entry) and in a
/// merged one (one per shard).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardFigures {
    pub shard: String,
    pub hostname: String,
    pub clients: u32,
    pub delivered: u64,
    pub lost: u64,
    /// The load generator's CPU share of its cores in the measured phase.
    pub loadgen_cpu_share: f64,
    pub loadgen_cores: usize,
    /// p99 of the shard's timer lateness (µs).
    pub sched_lag_p99_us: u64,
    pub saturated: bool,
    /// Why it counts as saturated.
    pub saturation_notes: Vec<String>,
    pub publishes: bool,
    /// Its clock's offset to the server's (add it to the shard's time), when measured.
    pub clock: Option<ClockOffset>,
    /// Why the offset was not measured.
    pub clock_missing: Option<String>,
}

impl ShardFigures {
    /// A shard's figures from its own result.
    pub fn of(
        result: &crate::results::TransportResult,
        shard: &ShardRun,
        clock: Result<ClockOffset, String>,
    ) -> Self {
        let (clock, clock_missing) = match clock {
            Ok(c) => (Some(c), None),
            Err(why) => (None, Some(why)),
        };
        ShardFigures {
            shard: shard.label(),
            hostname: shard.hostname.clone(),
            clients: result.connections.clients,
            delivered: result.events.delivered,
            lost: result.events.lost,
            loadgen_cpu_share: result.loadgen.cpu_share,
            loadgen_cores: result.loadgen.cores,
            sched_lag_p99_us: result.loadgen.sched_lag_us.p99,
            saturated: result.loadgen.saturated,
            saturation_notes: result.loadgen.notes.clone(),
            publishes: shard.role.publishes() && result.publisher.is_some(),
            clock,
            clock_missing,
        }
    }

    /// The most a latency measured by this shard can be off by because of its clock:
    /// `|offset| + uncertainty` (offsets are recorded, not subtracted).
    pub fn clock_bound_ns(&self) -> Option<u64> {
        self.clock.as_ref().map(ClockOffset::bound_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_clients_exactly_once() {
        for n in 1..6u32 {
            let specs: Vec<ShardSpec> = (1..=n).map(|i| ShardSpec { index: i, count: n }).collect();
            for client in 0..101 {
                assert_eq!(specs.iter().filter(|s| s.includes(client)).count(), 1);
            }
            let total: u32 = specs.iter().map(|s| s.clients_of(101)).sum();
            assert_eq!(total, 101);
        }
    }

    #[test]
    fn shard_specs_are_read_or_refused_clearly() {
        assert_eq!(
            "2/3".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 3 })
        );
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", "1/2/3", ""] {
            let e = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("--shard {bad:?}")), "{e}");
        }
    }

    #[test]
    fn start_instants_are_read_as_unix_seconds_or_rfc3339() {
        let a: StartAt = "1796300000.5".parse().unwrap();
        assert_eq!(a.unix_ns(), 1_796_300_000_500_000_000);
        let b: StartAt = "2026-12-03T15:00:00Z".parse().unwrap();
        assert_eq!(b.unix_ns(), 1_796_310_000_000_000_000);
        for bad in ["", "soon", "-5", "12:00"] {
            assert!(bad.parse::<StartAt>().is_err(), "{bad}");
        }
    }

    #[test]
    fn publisher_only_runs_no_client() {
        let p = ShardRun {
            spec: None,
            role: PublishRole::PublisherOnly,
            start_unix_ns: None,
            hostname: String::new(),
        };
        assert!((0..10).all(|i| !p.includes(i)));
        let s = ShardRun {
            spec: Some(ShardSpec { index: 2, count: 2 }),
            role: PublishRole::ClientsOnly,
            start_unix_ns: None,
            hostname: String::new(),
        };
        assert_eq!((0..10).filter(|i| s.includes(*i)).count(), 5);
    }
}
