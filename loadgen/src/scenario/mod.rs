//! Scenario files: the TOML schema, its validation, and sweeps.
//!
//! A scenario fully determines a run: the transports to compare, the measured phase, the
//! simulated clients, the server's open-loop feed, and how the server is started (or which
//! external target is measured). `scenarios/README.md` documents every field.
//!
//! Loading happens in two steps, so that a person fixing a file sees as much as possible at once:
//! 1. serde reads the file into *raw* types that keep every value's byte span (`toml::Spanned`)
//!    and reject unknown keys. Syntax and type errors stop here (serde cannot go on after one).
//! 2. `resolve` checks every value and every cross-field rule, collecting *all* problems,
//!    and turns the raw types into the typed [`Scenario`] (durations as [`Duration`], names as
//!    enums) that the rest of the load generator consumes.
//!
//! Every problem is reported as `file:line:column: message`, pointing at the offending value.
//! A sweep is expanded and each of its concrete scenarios resolved at load time, so a run never
//! starts on a half-valid scenario, not even halfway through a sweep.
//!
//! # Layout
//! - this module: the resolved types consumers use ([`Scenario`], [`Transport`], ...).
//! - `deployment`: the `[deployment]` section ([`Deployment`]) and its short forms.
//! - `faults`: the `[[faults]]` list ([`Fault`], [`FaultKind`]).
//! - `limits`: the bounds every value is checked against ([`MAX_CLIENTS`], ...).
//! - `error`: [`ScenarioError`], [`Diagnostic`], and placing byte spans at lines and columns.
//! - `load`: [`load`] and [`parse`], the two steps above and the sweep's expansion.
//! - `raw`: the file as written, with spans (serde's side of step 1).
//! - `resolve`: step 2, one submodule per section with rules of its own (`[clients]`,
//!   `[feed]`, `[target]`) and `resolve::check`, the collector of problems.
//! - `sweep`: patching a sweep's values into the raw file ([`SWEEPABLE_FIELDS`]).
//!
//! Unit tests sit next to the code they test; `test_util` holds their shared files and helpers.

use std::path::PathBuf;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

pub mod deployment;
mod error;
pub mod faults;
mod limits;
mod load;
mod raw;
mod resolve;
mod sweep;
#[cfg(test)]
mod test_util;

pub use deployment::{Backend, Balancer, Deployment, RedisPersistence};
pub use error::{Diagnostic, ScenarioError};
pub use faults::{Fault, FaultKind, Injector};
pub use limits::{
    MAX_CLIENTS, MAX_DURATION, MAX_LINE_BYTES, MAX_LONG_POLL_WAIT, MAX_POLL_LIMIT, MAX_REPEAT,
    MAX_STREAMS_PER_CONNECTION, MAX_TOPICS, MAX_WORKERS,
};
pub use load::{load, parse};
pub use resolve::{feed_server_target, TargetUrlError};
pub use sweep::SWEEPABLE_FIELDS;

// ---------------------------------------------------------------------------------------------
// The resolved scenario: what consumers use.

/// A transport under test: the protocol crate's client-side transport (`sse`, `ws`, `poll`,
/// `long-poll`, and over HTTP/2 `sse-h2`, `poll-h2`, `long-poll-h2`: the names scenario files, results and reports use).
/// [`Transport::served_by`] gives the server transport it speaks to (`--transport`, route).
pub use pushbench_protocol::ClientTransport as Transport;

/// A validated scenario. Field names follow the file's keys; `scenarios/README.md` documents
/// each. Serializing it (e.g. `toml::to_string`) yields an equivalent scenario file with every
/// default spelled out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// `[a-z0-9_-]+`; names the results folder.
    pub name: String,
    pub description: Option<String>,
    /// Run in this order, each against a fresh server; non-empty, no duplicates.
    pub transports: Vec<Transport>,
    /// Measured phase per transport.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// Connected but not recorded for latency, after the ramp-up.
    #[serde(serialize_with = "ser_duration")]
    pub warmup: Duration,
    /// After the steps are finished, how long clients get to receive everything and the end.
    #[serde(serialize_with = "ser_duration")]
    pub drain: Duration,
    /// How many times each transport runs, interleaved (sse, ws, …, sse, ws, …), each time
    /// on a fresh server: the verdict ranks by the spread of the repetitions.
    pub repeat: u32,
    pub clients: Clients,
    pub feed: Feed,
    pub poll: Poll,
    pub sse: Sse,
    pub ws: Ws,
    /// How the HTTP/2 transports (`sse-h2`, `poll-h2`, `long-poll-h2`) share connections.
    pub http2: Http2,
    pub churn: Option<Churn>,
    pub server: Server,
    /// External-target mode: measure this target instead of spawning `feed-server`.
    pub target: Option<Target>,
    /// What goes wrong during the measured phase, in order (`[[faults]]`); empty on a happy
    /// path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// What serves the clients (`[deployment]`): one in-memory feed-server by default.
    #[serde(skip_serializing_if = "Deployment::is_default")]
    pub deployment: Deployment,
    /// The sweep this file declares. The concrete scenarios of [`Scenario::expand_sweep`] have
    /// none.
    pub sweep: Option<Sweep>,
    /// The file's text, as loaded; results keep it verbatim as `scenario.toml` (so it is not
    /// serialized here a second time).
    #[serde(skip)]
    pub source: String,
    /// The concrete scenarios of the sweep with their labels, resolved and validated when the
    /// file was loaded (so expanding cannot fail later). Empty without a sweep.
    #[serde(skip)]
    variants: Vec<(String, Scenario)>,
}

/// The simulated viewers.
#[derive(Clone, Debug, PartialEq)]
pub struct Clients {
    /// Clients connected at once, 1..=[`MAX_CLIENTS`].
    pub count: u32,
    /// Connects are spread evenly over this time.
    pub ramp_up: Duration,
    /// How each client picks its topic.
    pub topics: TopicChoice,
    /// Loadgen worker threads; 0 = one per loadgen core.
    pub workers: u32,
}

/// How clients are spread over topics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TopicChoice {
    /// Round-robin: every topic gets the same number of clients (±1).
    Uniform,
    /// Zipf with this exponent (> 0): topic k gets clients in proportion to 1/k^s, as when a
    /// few running builds draw most viewers.
    Zipf(f64),
}

// Written by hand so that the serialized form is the file's own (`topics` + `zipf_exponent`).
impl Serialize for Clients {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields = if matches!(self.topics, TopicChoice::Zipf(_)) {
            5
        } else {
            4
        };
        let mut st = s.serialize_struct("Clients", fields)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field(
            "ramp_up",
            &humantime::format_duration(self.ramp_up).to_string(),
        )?;
        match self.topics {
            TopicChoice::Uniform => st.serialize_field("topics", "uniform")?,
            TopicChoice::Zipf(exponent) => {
                st.serialize_field("topics", "zipf")?;
                st.serialize_field("zipf_exponent", &exponent)?;
            }
        }
        st.serialize_field("workers", &self.workers)?;
        st.end()
    }
}

/// The open-loop feed the server's generator writes: lines are produced on schedule whether or
/// not clients keep up, so a slow transport shows up as latency and loss, not as a lower rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feed {
    /// Topics (build steps) `acme/app/builds/1/steps/1..=topics`, 1..=[`MAX_TOPICS`].
    pub topics: u32,
    /// Steady rate per topic, lines per second; 0 only with a burst (bursts only).
    pub lines_per_sec: f64,
    pub line_bytes: LineBytes,
    /// Lines the server keeps per topic for resumes and late viewers.
    pub history: u32,
    pub burst: Option<Burst>,
}

/// Generated line length in bytes, uniform over `min..=max` (equal for a fixed length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LineBytes {
    pub min: u32,
    pub max: u32,
}

/// Periodic bursts on each topic (a test suite dumping its output).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Burst {
    /// Time between burst starts on one topic.
    #[serde(serialize_with = "ser_duration")]
    pub every: Duration,
    /// Lines per burst.
    pub lines: u32,
    /// Rate within a burst, lines per second.
    pub lines_per_sec: f64,
}

/// Polling parameters ("poll" and "long-poll").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Poll {
    /// Short-poll period per client. Zero is the closed-loop throughput probe: each poll is
    /// sent as soon as the previous answer has been read, on the same keep-alive connection.
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    /// Long-poll `wait`.
    #[serde(serialize_with = "ser_duration")]
    pub wait: Duration,
    /// Most lines per poll response, 1..=[`MAX_POLL_LIMIT`].
    pub limit: u32,
}

/// SSE parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sse {
    /// Idle time before the server sends a keep-alive comment.
    #[serde(serialize_with = "ser_duration")]
    pub keep_alive: Duration,
}

/// WebSocket parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ws {
    /// Time between the server's pings (its keep-alive; a peer silent for two is dropped).
    #[serde(serialize_with = "ser_duration")]
    pub ping_interval: Duration,
}

/// HTTP/2 parameters (the `*-h2` transports).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Http2 {
    /// Clients whose streams share one TCP connection, 1..=[`MAX_STREAMS_PER_CONNECTION`]:
    /// `clients.count` clients hold `ceil(count / streams_per_connection)` connections.
    pub streams_per_connection: u32,
    /// Against the spawned feed-server: start it with `--tls-self-signed` and speak h2 over
    /// TLS (ALPN `h2`) instead of cleartext h2c. External targets say it with `https://`.
    pub tls: bool,
}

impl Default for Http2 {
    fn default() -> Self {
        Http2 {
            streams_per_connection: 100,
            tls: false,
        }
    }
}

/// Clients that leave and come back, resuming from the last seq they received.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Churn {
    /// Mean connected time before a client leaves.
    #[serde(serialize_with = "ser_duration")]
    pub session: Duration,
    /// Time away before it reconnects with its resume cursor.
    #[serde(serialize_with = "ser_duration")]
    pub pause: Duration,
}

/// How the spawned `feed-server` runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Server {
    /// `None`: the `feed-server` next to the `pushbench` binary. Relative to the working
    /// directory.
    pub binary: Option<PathBuf>,
    /// Tokio worker threads of the server.
    pub workers: u32,
    /// Pin the server to one core and the loadgen to the others (with >= 2 cores).
    pub pin: bool,
    /// The server's connection limit; at least `clients.count`.
    pub max_connections: u64,
}

/// External-target mode. URL templates may contain `{topic}`, replaced by the topic path
/// `acme/app/builds/1/steps/N`. `base_url` in the file is already expanded into the templates
/// it implies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// `http://` URL of the SSE stream; required to list "sse".
    pub sse_url: Option<String>,
    /// `ws://` URL of the WebSocket; required to list "ws".
    pub ws_url: Option<String>,
    /// `http://` URL of the poll resource; required to list "poll" or "long-poll".
    pub poll_url: Option<String>,
    /// `http://` URL the loadgen POSTs lines to (seq and timestamp embedded); `None`: the
    /// target generates its own feed.
    pub publish_url: Option<String>,
    /// How a poll tells the target what the client already has.
    pub poll_cursor: PollCursor,
    /// The target's server process(es), sampled for memory and CPU like feed-server.
    pub server: Option<ServerSelector>,
    /// Accept any TLS certificate (self-signed `https://` / `wss://` targets).
    pub insecure: bool,
    /// Publish before the first client connects instead of after the last one: for targets
    /// that replay a step's history to a new viewer and refuse viewers of a step with no
    /// line yet.
    pub publish_first: bool,
}

/// How the poll cursor travels to an external target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PollCursor {
    /// feed-server's poll API: `after=SEQ&limit=N[&wait=D]` appended, a JSON answer with
    /// `lines`, `next`, `last_seq`, `finished`; `If-None-Match` from its ETag.
    #[default]
    FeedServer,
    /// `{after}` in `poll_url`, filled with the seq of the last marker seen; the body is
    /// searched for markers, whatever its format.
    Query,
    /// `If-None-Match` with the last answer's `ETag`.
    Etag,
    /// `If-Modified-Since` with the last `Last-Modified`, plus `If-None-Match` with the last
    /// `ETag` (nchan's long-poll).
    LastModified,
}

impl PollCursor {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "feed-server" => PollCursor::FeedServer,
            "query" => PollCursor::Query,
            "etag" => PollCursor::Etag,
            "last-modified" => PollCursor::LastModified,
            _ => return None,
        })
    }
}

/// Which local processes are the external target's server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerSelector {
    /// This pid and its descendants.
    Pid(u32),
    /// Every process of this name (as /proc/PID/comm shows it) and their descendants.
    Process(String),
}

/// A sweep: the scenario runs once per value of one field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sweep {
    /// Dotted path of the field, e.g. `clients.count`; one of [`SWEEPABLE_FIELDS`].
    pub field: String,
    pub values: Vec<SweepValue>,
}

/// One value of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SweepValue {
    Integer(i64),
    Float(f64),
    #[serde(serialize_with = "ser_duration")]
    Duration(Duration),
    /// A named choice (`deployment = "nginx:2"`).
    Text(String),
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

impl Scenario {
    /// One concrete scenario per sweep value, labelled like `clients.count=1000`, or just this
    /// scenario (unlabelled) without a sweep. The concrete scenarios were validated at load.
    pub fn expand_sweep(&self) -> Vec<(Option<String>, Scenario)> {
        if self.variants.is_empty() {
            return vec![(None, self.clone())];
        }
        self.variants
            .iter()
            .map(|(label, sc)| (Some(label.clone()), sc.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_util::*;

    #[test]
    fn full_file_parses_every_field() {
        let sc = ok(FULL);
        assert_eq!(sc.name, "full_test-1");
        assert_eq!(sc.description.as_deref(), Some("every field"));
        assert_eq!(sc.transports, Transport::ALL.to_vec());
        assert_eq!(sc.duration, Duration::from_secs(5));
        assert_eq!(sc.warmup, Duration::from_secs(1));
        assert_eq!(sc.drain, Duration::from_secs(2));
        assert_eq!(
            sc.clients,
            Clients {
                count: 50,
                ramp_up: Duration::from_millis(1500),
                topics: TopicChoice::Zipf(1.1),
                workers: 2,
            }
        );
        assert_eq!(sc.feed.topics, 5);
        assert_eq!(sc.feed.lines_per_sec, 10.0);
        assert_eq!(sc.feed.line_bytes, LineBytes { min: 40, max: 120 });
        assert_eq!(sc.feed.history, 20_000);
        assert_eq!(
            sc.feed.burst,
            Some(Burst {
                every: Duration::from_secs(10),
                lines: 2000,
                lines_per_sec: 20_000.0,
            })
        );
        assert_eq!(
            sc.poll,
            Poll {
                interval: Duration::from_millis(250),
                wait: Duration::from_secs(5),
                limit: 500,
            }
        );
        assert_eq!(sc.sse.keep_alive, Duration::from_secs(10));
        assert_eq!(
            sc.http2,
            Http2 {
                streams_per_connection: 50,
                tls: true,
            }
        );
        assert_eq!(
            sc.churn,
            Some(Churn {
                session: Duration::from_secs(10),
                pause: Duration::from_secs(2),
            })
        );
        assert_eq!(
            sc.server,
            Server {
                binary: Some(PathBuf::from("target/release/feed-server")),
                workers: 2,
                pin: false,
                max_connections: 1000,
            }
        );
        assert_eq!(sc.target, None);
        assert_eq!(
            sc.sweep,
            Some(Sweep {
                field: "clients.count".into(),
                values: vec![SweepValue::Integer(10), SweepValue::Integer(100)],
            })
        );
        assert_eq!(sc.source, FULL);
    }

    #[test]
    fn defaults() {
        let sc = ok(MINIMAL);
        assert_eq!(sc.name, "x", "the default name is the file stem");
        assert_eq!(sc.description, None);
        assert_eq!(sc.warmup, Duration::ZERO);
        assert_eq!(sc.drain, Duration::from_secs(5));
        assert_eq!(sc.clients.ramp_up, Duration::ZERO);
        assert_eq!(sc.clients.topics, TopicChoice::Uniform);
        assert_eq!(sc.clients.workers, 0);
        assert_eq!(sc.feed.line_bytes, LineBytes { min: 80, max: 80 });
        assert_eq!(sc.feed.history, 10_000);
        assert_eq!(sc.feed.burst, None);
        assert_eq!(sc.poll.interval, Duration::from_secs(1));
        assert_eq!(sc.poll.wait, Duration::from_secs(30));
        assert_eq!(sc.poll.limit, 1000);
        assert_eq!(sc.sse.keep_alive, Duration::from_secs(15));
        assert_eq!(sc.churn, None);
        assert_eq!(sc.http2, Http2::default());
        assert_eq!(sc.http2.streams_per_connection, 100);
        assert_eq!(
            sc.server,
            Server {
                binary: None,
                workers: 1,
                pin: true,
                max_connections: 200_000,
            }
        );
        assert_eq!(sc.target, None);
        assert_eq!(sc.sweep, None);
        let runs = sc.expand_sweep();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].0, None);
        assert_eq!(runs[0].1, sc);
    }

    #[test]
    fn serialized_scenario_is_an_equivalent_file() {
        for text in [FULL, MINIMAL] {
            let sc = ok(text);
            let written = toml::to_string(&sc).expect("serializes");
            let again = ok(&written);
            assert_eq!(
                serde_json::to_value(&sc).unwrap(),
                serde_json::to_value(&again).unwrap(),
                "round trip through:\n{written}"
            );
        }
    }

    #[test]
    fn transport_names() {
        for t in Transport::ALL {
            assert_eq!(Transport::from_name(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(Transport::from_name("websocket"), None);
    }
}
