//! Scenario files: the TOML schema, its validation, and sweeps.
//!
//! A scenario fully determines a run: the transports to compare, the measured phase, the
//! simulated clients, the server's open-loop feed, and how the server is started (or which
//! external target is measured). `scenarios/README.md` documents every field.
//!
//! Loading happens in two steps, so that a person fixing a file sees as much as possible at once:
//! 1. serde reads the file into *raw* types that keep every value's byte span (`toml::Spanned`)
//!    and reject unknown keys. Syntax and type errors stop here (serde cannot go on after one).
//! 2. [`resolve`] checks every value and every cross-field rule, collecting *all* problems,
//!    and turns the raw types into the typed [`Scenario`] (durations as [`Duration`], names as
//!    enums) that the rest of the load generator consumes.
//!
//! Every problem is reported as `file:line:column: message`, pointing at the offending value.
//! A sweep is expanded and each of its concrete scenarios resolved at load time, so a run never
//! starts on a half-valid scenario, not even halfway through a sweep.

use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

// ---------------------------------------------------------------------------------------------
// Limits. Each says why it exists; the README repeats them.

/// Most clients one scenario may simulate: the load generator's tested ceiling on one host.
pub const MAX_CLIENTS: u32 = 200_000;
/// Most topics: `feed-server`'s default `--max-topics`.
pub const MAX_TOPICS: u32 = 100_000;
/// Longest generated line: `feed-server`'s default `--max-body-bytes` (1 MiB).
pub const MAX_LINE_BYTES: u32 = 1_048_576;
/// Largest `poll.limit`: the poll adapter rejects larger limits.
pub const MAX_POLL_LIMIT: u32 = 10_000;
/// Longest long-poll wait: `feed-server`'s default `--poll-max-wait`.
pub const MAX_LONG_POLL_WAIT: Duration = Duration::from_secs(120);
/// Longest duration of any kind: longer is a typo, and it keeps sums of durations (ramp-up +
/// warm-up + measured phase) far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most loadgen or server worker threads: far beyond any core count this harness runs on.
pub const MAX_WORKERS: u32 = 1024;

// ---------------------------------------------------------------------------------------------
// The resolved scenario: what consumers use.

/// A transport under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Server-sent events (`text/event-stream`), resumed with `Last-Event-ID`.
    Sse,
    /// WebSocket.
    Ws,
    /// Short polling at `poll.interval` with ETag / If-None-Match.
    Poll,
    /// Long polling: `GET ?after=SEQ&wait=DURATION`.
    LongPoll,
}

impl Transport {
    /// Every transport, in the order reports list them.
    pub const ALL: [Transport; 4] = [
        Transport::Sse,
        Transport::Ws,
        Transport::Poll,
        Transport::LongPoll,
    ];

    /// The name used in scenario files, results and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Poll => "poll",
            Transport::LongPoll => "long-poll",
        }
    }

    /// The transport a scenario file names, if any.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub clients: Clients,
    pub feed: Feed,
    pub poll: Poll,
    pub sse: Sse,
    pub churn: Option<Churn>,
    pub server: Server,
    /// External-target mode: measure this target instead of spawning `feed-server`.
    pub target: Option<Target>,
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

// ---------------------------------------------------------------------------------------------
// Errors.

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read the scenario: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// One line per problem, in file order.
    #[error("{}", render_diagnostics(.diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

/// One problem in a scenario file, at a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )
    }
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A problem at a byte span of the text, before it is placed at a line and column.
#[derive(Clone, Debug, PartialEq)]
struct Diag {
    span: Range<usize>,
    message: String,
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // Spans from toml are on character boundaries; this only guards against a bad one.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn to_error(text: &str, origin: &str, mut diags: Vec<Diag>) -> ScenarioError {
    diags.sort_by_key(|d| d.span.start);
    let diagnostics = diags
        .into_iter()
        .map(|d| {
            let (line, column) = line_column(text, d.span.start);
            Diagnostic {
                origin: origin.to_string(),
                line,
                column,
                message: d.message,
            }
        })
        .collect();
    ScenarioError::Invalid { diagnostics }
}

// ---------------------------------------------------------------------------------------------
// Loading.

/// Reads and validates a scenario file; the default name is the file's stem.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Validates a scenario's text. `origin` names it in messages (usually its path) and its file
/// stem is the default scenario name.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        to_error(
            text,
            origin,
            vec![Diag {
                span,
                message: e.message().to_string(),
            }],
        )
    })?;
    let default_name = Path::new(origin)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    let base = resolve(&raw, &default_name);
    let mut diags = match &base {
        Ok(_) => Vec::new(),
        Err(d) => d.clone(),
    };
    let (mut variants, sweep) = match &raw.sweep {
        Some(sweep) => expand_raw_sweep(&raw, sweep, &default_name, &mut diags),
        None => (Vec::new(), None),
    };
    match base {
        Ok(mut sc) if diags.is_empty() => {
            for (_, v) in &mut variants {
                v.source = text.to_string();
            }
            sc.source = text.to_string();
            sc.sweep = sweep;
            sc.variants = variants;
            Ok(sc)
        }
        _ => Err(to_error(text, origin, diags)),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw types: the file as written, with spans. Every field is optional here so that missing
// fields are reported together with everything else, by `resolve`.

type S<T> = Option<Spanned<T>>;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: S<String>,
    description: S<String>,
    transports: S<Vec<Spanned<String>>>,
    duration: S<DurationText>,
    warmup: S<DurationText>,
    drain: S<DurationText>,
    clients: S<RawClients>,
    feed: S<RawFeed>,
    poll: S<RawPoll>,
    sse: S<RawSse>,
    churn: S<RawChurn>,
    server: S<RawServer>,
    target: S<RawTarget>,
    sweep: S<RawSweep>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClients {
    count: S<i64>,
    ramp_up: S<DurationText>,
    topics: S<String>,
    zipf_exponent: S<f64>,
    workers: S<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    topics: S<i64>,
    lines_per_sec: S<f64>,
    line_bytes: S<RawLineBytes>,
    history: S<i64>,
    burst: S<RawBurst>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    every: S<DurationText>,
    lines: S<i64>,
    lines_per_sec: S<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    interval: S<DurationText>,
    wait: S<DurationText>,
    limit: S<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSse {
    keep_alive: S<DurationText>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChurn {
    session: S<DurationText>,
    pause: S<DurationText>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    binary: S<String>,
    workers: S<i64>,
    pin: S<bool>,
    max_connections: S<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    base_url: S<String>,
    sse_url: S<String>,
    ws_url: S<String>,
    poll_url: S<String>,
    publish_url: S<String>,
    poll_cursor: S<String>,
    server_pid: S<i64>,
    server_process: S<String>,
    insecure: S<bool>,
    publish_first: S<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    field: S<String>,
    values: S<Vec<Spanned<toml::Value>>>,
}

/// A duration as written ("500ms"); parsed in `resolve` so that a bad one does not hide the
/// file's other problems. Its own type only for the message when the value is not a string.
#[derive(Clone, Debug)]
struct DurationText(String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// `line_bytes = 80` or `line_bytes = { min = 40, max = 120 }`.
#[derive(Clone, Debug)]
enum RawLineBytes {
    Fixed(i64),
    Range { min: i64, max: i64 },
}

// Written by hand: an untagged enum would only say "data did not match any variant".
impl<'de> Deserialize<'de> for RawLineBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLineBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a length in bytes such as 80, or a table such as { min = 40, max = 120 }",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawLineBytes, E> {
                Ok(RawLineBytes::Fixed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawLineBytes, E> {
                Ok(RawLineBytes::Fixed(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLineBytes, A::Error> {
                const FIELDS: &[&str] = &["min", "max"];
                let (mut min, mut max) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "min" => &mut min,
                        "max" => &mut max,
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    };
                    *slot = Some(map.next_value::<i64>()?);
                }
                Ok(RawLineBytes::Range {
                    min: min.ok_or_else(|| de::Error::missing_field("min"))?,
                    max: max.ok_or_else(|| de::Error::missing_field("max"))?,
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution: checks every value and rule, collecting all problems.

/// Collects problems while resolving; each check returns a placeholder after a problem so
/// that resolution goes on and finds the rest.
#[derive(Default)]
struct Check {
    diags: Vec<Diag>,
}

/// The lower bound of a duration.
#[derive(Clone, Copy)]
enum Least {
    Zero,
    Positive,
}

impl Check {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diag {
            span,
            message: message.into(),
        });
    }

    /// The value, or a "missing" problem at `at` (the section's header, or the file's start).
    fn required<'r, T>(
        &mut self,
        value: &'r S<T>,
        at: &Range<usize>,
        key: &str,
        what: &str,
    ) -> Option<&'r Spanned<T>> {
        if value.is_none() {
            self.err(at.clone(), format!("missing `{key}` ({what})"));
        }
        value.as_ref()
    }

    fn duration(
        &mut self,
        value: Option<&Spanned<DurationText>>,
        key: &str,
        default: Duration,
        least: Least,
    ) -> Duration {
        let Some(v) = value else { return default };
        let text = v.get_ref().0.trim();
        let d = match humantime::parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}`: {text:?} is not a duration ({e}); expected e.g. \"5s\" or \"500ms\""
                    ),
                );
                return default;
            }
        };
        if matches!(least, Least::Positive) && d.is_zero() {
            self.err(v.span(), format!("`{key}` must be greater than zero"));
            return default;
        }
        if d > MAX_DURATION {
            self.err(
                v.span(),
                format!(
                    "`{key}` = {text:?} is longer than the maximum of {}",
                    humantime::format_duration(MAX_DURATION)
                ),
            );
            return default;
        }
        d
    }

    fn integer(
        &mut self,
        value: Option<&Spanned<i64>>,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> u32 {
        let Some(v) = value else { return default };
        let n = *v.get_ref();
        match u32::try_from(n) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` must be between {} and {}, got {n}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    /// A finite float above zero (or at least zero with `allow_zero`).
    fn rate(
        &mut self,
        value: Option<&Spanned<f64>>,
        key: &str,
        default: f64,
        allow_zero: bool,
    ) -> f64 {
        let Some(v) = value else { return default };
        let x = *v.get_ref();
        if !x.is_finite() || x < 0.0 || (x == 0.0 && !allow_zero) {
            let bound = if allow_zero {
                "at least"
            } else {
                "greater than"
            };
            self.err(
                v.span(),
                format!("`{key}` must be a finite number {bound} zero, got {x}"),
            );
            return default;
        }
        x
    }
}

/// Splits an optional section into its header span and contents (empty when absent).
fn section<T: Default + Clone>(value: &S<T>) -> (Range<usize>, T) {
    match value {
        Some(s) => (s.span(), s.get_ref().clone()),
        None => (0..0, T::default()),
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a raw scenario and turns it into a [`Scenario`] (without source and sweep variants).
fn resolve(raw: &RawScenario, default_name: &str) -> Result<Scenario, Vec<Diag>> {
    let mut c = Check::default();
    let top = 0..0;

    let name = match &raw.name {
        Some(n) => {
            if !is_valid_name(n.get_ref()) {
                c.err(
                    n.span(),
                    format!(
                        "`name` must match [a-z0-9_-]+ (it names the results folder), got {:?}",
                        n.get_ref()
                    ),
                );
            }
            n.get_ref().clone()
        }
        None => {
            if !is_valid_name(default_name) {
                c.err(
                    top.clone(),
                    format!(
                        "the scenario name defaults to the file stem {default_name:?}, which does not \
                         match [a-z0-9_-]+; set `name` or rename the file"
                    ),
                );
            }
            default_name.to_string()
        }
    };
    let description = raw.description.as_ref().map(|d| d.get_ref().clone());

    let mut transports = Vec::new();
    if let Some(list) = c.required(
        &raw.transports,
        &top,
        "transports",
        "the transports to compare",
    ) {
        if list.get_ref().is_empty() {
            c.err(
                list.span(),
                "`transports` must list at least one of \"sse\", \"ws\", \"poll\", \"long-poll\"",
            );
        }
        for t in list.get_ref() {
            match Transport::from_name(t.get_ref()) {
                None => c.err(
                    t.span(),
                    format!(
                        "unknown transport `{}`, expected one of `sse`, `ws`, `poll`, `long-poll`",
                        t.get_ref()
                    ),
                ),
                Some(tr) if transports.contains(&tr) => c.err(
                    t.span(),
                    format!("transport `{tr}` is listed twice in `transports`"),
                ),
                Some(tr) => transports.push(tr),
            }
        }
    }

    let duration = c.required(
        &raw.duration,
        &top,
        "duration",
        "the measured phase per transport, e.g. \"10s\"",
    );
    let duration = c.duration(
        duration,
        "duration",
        Duration::from_secs(1),
        Least::Positive,
    );
    let warmup = c.duration(raw.warmup.as_ref(), "warmup", Duration::ZERO, Least::Zero);
    let drain = c.duration(
        raw.drain.as_ref(),
        "drain",
        Duration::from_secs(5),
        Least::Positive,
    );

    let clients = resolve_clients(&mut c, &raw.clients);
    let feed = resolve_feed(&mut c, &raw.feed);

    let (_, p) = section(&raw.poll);
    let poll = Poll {
        interval: c.duration(
            p.interval.as_ref(),
            "poll.interval",
            Duration::from_secs(1),
            // Zero: closed loop, each poll sent as soon as the previous answer is read.
            Least::Zero,
        ),
        wait: c.duration(
            p.wait.as_ref(),
            "poll.wait",
            Duration::from_secs(30),
            Least::Positive,
        ),
        limit: c.integer(p.limit.as_ref(), "poll.limit", 1000, 1..=MAX_POLL_LIMIT),
    };
    if let Some(w) = &p.wait {
        if poll.wait > MAX_LONG_POLL_WAIT {
            c.err(
                w.span(),
                format!(
                    "`poll.wait` must be at most {} (the server's longest long-poll wait)",
                    humantime::format_duration(MAX_LONG_POLL_WAIT)
                ),
            );
        }
    }

    let (_, s) = section(&raw.sse);
    let sse = Sse {
        keep_alive: c.duration(
            s.keep_alive.as_ref(),
            "sse.keep_alive",
            Duration::from_secs(15),
            Least::Positive,
        ),
    };

    let churn = raw.churn.as_ref().map(|ch| {
        let at = ch.span();
        let ch = ch.get_ref();
        let session = c.required(&ch.session, &at, "churn.session", "mean connected time");
        let session = c.duration(
            session,
            "churn.session",
            Duration::from_secs(10),
            Least::Positive,
        );
        let pause = c.required(
            &ch.pause,
            &at,
            "churn.pause",
            "time away before reconnecting",
        );
        let pause = c.duration(pause, "churn.pause", Duration::ZERO, Least::Zero);
        Churn { session, pause }
    });

    let (server_at, sv) = section(&raw.server);
    let server = Server {
        binary: sv.binary.as_ref().map(|b| {
            if b.get_ref().is_empty() {
                c.err(
                    b.span(),
                    "`server.binary` must not be empty; leave it out for the default",
                );
            }
            PathBuf::from(b.get_ref())
        }),
        workers: c.integer(sv.workers.as_ref(), "server.workers", 1, 1..=MAX_WORKERS),
        pin: sv.pin.as_ref().is_none_or(|p| *p.get_ref()),
        max_connections: match &sv.max_connections {
            None => 200_000,
            Some(m) if *m.get_ref() >= 1 => m.get_ref().unsigned_abs(),
            Some(m) => {
                c.err(
                    m.span(),
                    format!(
                        "`server.max_connections` must be at least 1, got {}",
                        m.get_ref()
                    ),
                );
                200_000
            }
        },
    };

    let target = raw
        .target
        .as_ref()
        .map(|t| resolve_target(&mut c, t, raw, &transports, feed.topics));
    if raw.target.is_some() {
        if raw.server.is_some() {
            c.err(
                server_at,
                "[server] configures the spawned feed-server and cannot be combined with [target], \
                 which measures an external target instead",
            );
        }
    } else if let Some(count) = raw
        .clients
        .as_ref()
        .and_then(|cl| cl.get_ref().count.as_ref())
    {
        if u64::from(clients.count) > server.max_connections {
            c.err(
                count.span(),
                format!(
                    "`clients.count` ({}) exceeds `server.max_connections` ({}): the server would \
                     refuse clients; raise `server.max_connections`",
                    clients.count, server.max_connections
                ),
            );
        }
    }

    if c.diags.is_empty() {
        Ok(Scenario {
            name,
            description,
            transports,
            duration,
            warmup,
            drain,
            clients,
            feed,
            poll,
            sse,
            churn,
            server,
            target,
            sweep: None,
            source: String::new(),
            variants: Vec::new(),
        })
    } else {
        Err(c.diags)
    }
}

fn resolve_clients(c: &mut Check, raw: &S<RawClients>) -> Clients {
    let (at, cl) = section(raw);
    let count = c.required(
        &cl.count,
        &at,
        "clients.count",
        "the number of simulated clients",
    );
    let count = c.integer(count, "clients.count", 1, 1..=MAX_CLIENTS);
    let ramp_up = c.duration(
        cl.ramp_up.as_ref(),
        "clients.ramp_up",
        Duration::ZERO,
        Least::Zero,
    );
    let zipf = matches!(
        cl.topics.as_ref().map(|t| t.get_ref().as_str()),
        Some("zipf")
    );
    if let Some(t) = &cl.topics {
        if !matches!(t.get_ref().as_str(), "uniform" | "zipf") {
            c.err(
                t.span(),
                format!(
                    "unknown `clients.topics` {:?}, expected \"uniform\" or \"zipf\"",
                    t.get_ref()
                ),
            );
        }
    }
    let topics = if zipf {
        TopicChoice::Zipf(c.rate(
            cl.zipf_exponent.as_ref(),
            "clients.zipf_exponent",
            1.0,
            false,
        ))
    } else {
        if let Some(z) = &cl.zipf_exponent {
            c.err(
                z.span(),
                "`clients.zipf_exponent` only applies with `clients.topics = \"zipf\"`",
            );
        }
        TopicChoice::Uniform
    };
    let workers = c.integer(cl.workers.as_ref(), "clients.workers", 0, 0..=MAX_WORKERS);
    Clients {
        count,
        ramp_up,
        topics,
        workers,
    }
}

fn resolve_feed(c: &mut Check, raw: &S<RawFeed>) -> Feed {
    let (at, f) = section(raw);
    let topics = c.required(
        &f.topics,
        &at,
        "feed.topics",
        "the number of topics written",
    );
    let topics = c.integer(topics, "feed.topics", 1, 1..=MAX_TOPICS);
    let lines_per_sec = c.required(
        &f.lines_per_sec,
        &at,
        "feed.lines_per_sec",
        "lines per second per topic",
    );
    // Zero means "bursts only", which only makes sense with a burst.
    let lines_per_sec = c.rate(lines_per_sec, "feed.lines_per_sec", 1.0, f.burst.is_some());

    let fallback = LineBytes { min: 1, max: 1 };
    let line_bytes = match c.required(
        &f.line_bytes,
        &at,
        "feed.line_bytes",
        "e.g. 80 or { min = 40, max = 120 }",
    ) {
        None => fallback,
        Some(lb) => {
            let (min, max) = match *lb.get_ref() {
                RawLineBytes::Fixed(n) => (n, n),
                RawLineBytes::Range { min, max } => (min, max),
            };
            let in_range = |n: i64| (1..=i64::from(MAX_LINE_BYTES)).contains(&n);
            if !in_range(min) || !in_range(max) {
                c.err(
                    lb.span(),
                    format!(
                        "`feed.line_bytes` must be between 1 and {MAX_LINE_BYTES} (the server's \
                         largest line), got {min}..{max}"
                    ),
                );
                fallback
            } else if min > max {
                c.err(
                    lb.span(),
                    format!("`feed.line_bytes`: min ({min}) is greater than max ({max})"),
                );
                fallback
            } else {
                // Both are in 1..=MAX_LINE_BYTES, so they fit.
                LineBytes {
                    min: u32::try_from(min).unwrap_or(1),
                    max: u32::try_from(max).unwrap_or(1),
                }
            }
        }
    };
    let history = c.integer(f.history.as_ref(), "feed.history", 10_000, 1..=u32::MAX);

    let burst = f.burst.as_ref().map(|b| {
        let at = b.span();
        let b = b.get_ref();
        let every = c.required(&b.every, &at, "feed.burst.every", "time between bursts");
        let every = c.duration(every, "feed.burst.every", Duration::from_secs(10), Least::Positive);
        let lines = c.required(&b.lines, &at, "feed.burst.lines", "lines per burst");
        let lines = c.integer(lines, "feed.burst.lines", 1, 1..=u32::MAX);
        let rate = c.required(&b.lines_per_sec, &at, "feed.burst.lines_per_sec", "rate within a burst");
        let lines_per_sec = c.rate(rate, "feed.burst.lines_per_sec", 1.0, false);
        // A burst that outlasts its period never ends: the feed would just run at the burst
        // rate, which `feed.lines_per_sec` says more plainly.
        let burst_secs = f64::from(lines) / lines_per_sec;
        if let (Some(l), Some(_), Some(_)) = (&b.lines, &b.every, &b.lines_per_sec) {
            if burst_secs >= every.as_secs_f64() {
                c.err(
                    l.span(),
                    format!(
                        "a burst of {lines} lines at {lines_per_sec} lines/s lasts {burst_secs:.3}s, \
                         which is not shorter than `feed.burst.every` ({})",
                        humantime::format_duration(every)
                    ),
                );
            }
        }
        Burst {
            every,
            lines,
            lines_per_sec,
        }
    });
    Feed {
        topics,
        lines_per_sec,
        line_bytes,
        history,
        burst,
    }
}

/// Checks a URL template: scheme, authority, and `{topic}` as its only placeholder (and
/// `{after}` where `with_after`: the poll URL of the `query` cursor, which needs it).
fn check_url(
    c: &mut Check,
    url: &Spanned<String>,
    key: &str,
    scheme: &str,
    needs_topic: bool,
    with_after: bool,
) {
    let u = url.get_ref();
    // The scheme, or its TLS twin: http:// or https://, ws:// or wss://.
    let secure = format!("{}s://", scheme.trim_end_matches("://"));
    let Some(rest) = u.strip_prefix(scheme).or_else(|| u.strip_prefix(&secure)) else {
        c.err(
            url.span(),
            format!("`target.{key}` must start with {scheme} or {secure}, got {u:?}"),
        );
        return;
    };
    if rest.split(['/', '?']).next().is_none_or(str::is_empty) {
        c.err(url.span(), format!("`target.{key}` has no host, got {u:?}"));
    }
    let mut has_topic = false;
    let mut has_after = false;
    let mut tail = u.as_str();
    while let Some(open) = tail.find('{') {
        let Some(close) = tail[open..].find('}') else {
            c.err(url.span(), format!("`target.{key}` has an unclosed `{{`"));
            return;
        };
        let placeholder = &tail[open + 1..open + close];
        if placeholder == "topic" {
            has_topic = true;
        } else if placeholder == "after" && with_after {
            has_after = true;
        } else if placeholder == "after" {
            c.err(
                url.span(),
                format!("`target.{key}` has `{{after}}`, which only `poll_url` with `poll_cursor = \"query\"` takes"),
            );
        } else {
            c.err(
                url.span(),
                format!("`target.{key}` has an unknown placeholder `{{{placeholder}}}`, expected `{{topic}}`"),
            );
        }
        tail = &tail[open + close + 1..];
    }
    if with_after && !has_after {
        c.err(
            url.span(),
            format!(
                "`target.{key}` needs an `{{after}}` placeholder with `poll_cursor = \"query\"`: \
                 it carries the seq of the last line the client has"
            ),
        );
    }
    if needs_topic && !has_topic {
        c.err(
            url.span(),
            format!(
                "`target.{key}` needs a `{{topic}}` placeholder: the feed has several topics and \
                 each client reads one"
            ),
        );
    }
}

fn resolve_target(
    c: &mut Check,
    raw_target: &Spanned<RawTarget>,
    raw: &RawScenario,
    transports: &[Transport],
    topics: u32,
) -> Target {
    let t = raw_target.get_ref();
    let needs_topic = topics > 1;
    if let Some(base) = &t.base_url {
        if base.get_ref().contains(['{', '}']) {
            c.err(
                base.span(),
                "`target.base_url` must not contain placeholders: the topic's path is appended",
            );
        } else {
            check_url(c, base, "base_url", "http://", false, false);
        }
    }
    let base = t
        .base_url
        .as_ref()
        .map(|b| b.get_ref().trim_end_matches('/').to_string());
    // The paths `feed-server` serves, so that `base_url` is enough for another feed-server.
    let derive = |suffix: &str, ws: bool| {
        base.as_ref().map(|b| {
            let b = if ws {
                match b.strip_prefix("https://") {
                    Some(rest) => format!("wss://{rest}"),
                    None => format!("ws://{}", b.strip_prefix("http://").unwrap_or(b)),
                }
            } else {
                b.clone()
            };
            format!("{b}/{{topic}}/logs{suffix}")
        })
    };
    let poll_cursor = match &t.poll_cursor {
        None => PollCursor::FeedServer,
        Some(v) => PollCursor::from_name(v.get_ref()).unwrap_or_else(|| {
            c.err(
                v.span(),
                format!(
                    "`target.poll_cursor` must be \"feed-server\", \"query\", \"etag\" or \"last-modified\", got {:?}",
                    v.get_ref()
                ),
            );
            PollCursor::FeedServer
        }),
    };
    let query_cursor = poll_cursor == PollCursor::Query;
    if let (Some(v), true) = (&t.poll_cursor, t.poll_url.is_none()) {
        if poll_cursor != PollCursor::FeedServer {
            c.err(
                v.span(),
                "`target.poll_cursor` describes a foreign poll API: give its `target.poll_url` too",
            );
        }
    }
    let mut url =
        |value: &S<String>, key: &str, scheme: &str, derived: Option<String>, with_after: bool| {
            match value {
                Some(v) => {
                    check_url(c, v, key, scheme, needs_topic, with_after);
                    Some(v.get_ref().clone())
                }
                None => derived,
            }
        };
    let sse_url = url(
        &t.sse_url,
        "sse_url",
        "http://",
        derive("/events", false),
        false,
    );
    let ws_url = url(&t.ws_url, "ws_url", "ws://", derive("/ws", true), false);
    let poll_url = url(
        &t.poll_url,
        "poll_url",
        "http://",
        derive("", false),
        query_cursor,
    );
    let publish_url = url(&t.publish_url, "publish_url", "http://", None, false);
    let server = match (&t.server_pid, &t.server_process) {
        (Some(pid), Some(name)) => {
            c.err(
                name.span(),
                "give `target.server_pid` or `target.server_process`, not both",
            );
            let _ = pid;
            None
        }
        (Some(pid), None) => match u32::try_from(*pid.get_ref()) {
            Ok(p) if p > 0 => Some(ServerSelector::Pid(p)),
            _ => {
                c.err(
                    pid.span(),
                    format!(
                        "`target.server_pid` must be a process id above 0, got {}",
                        pid.get_ref()
                    ),
                );
                None
            }
        },
        (None, Some(name)) => {
            let n = name.get_ref();
            // /proc/PID/comm holds at most 15 bytes: a longer name would never match.
            if n.is_empty() || n.len() > 15 || n.contains('/') {
                c.err(
                    name.span(),
                    format!(
                        "`target.server_process` must be a process name as /proc/PID/comm shows it \
                         (1 to 15 bytes, no '/'), got {n:?}"
                    ),
                );
                None
            } else {
                Some(ServerSelector::Process(n.clone()))
            }
        }
        (None, None) => None,
    };
    let target = Target {
        sse_url,
        ws_url,
        poll_url,
        publish_url,
        poll_cursor,
        server,
        insecure: t.insecure.as_ref().is_some_and(|v| *v.get_ref()),
        publish_first: t.publish_first.as_ref().is_some_and(|v| *v.get_ref()),
    };
    if let Some(list) = &raw.transports {
        for entry in list.get_ref() {
            let (has, key) = match Transport::from_name(entry.get_ref()) {
                Some(Transport::Sse) => (target.sse_url.is_some(), "sse_url"),
                Some(Transport::Ws) => (target.ws_url.is_some(), "ws_url"),
                Some(Transport::Poll | Transport::LongPoll) => {
                    (target.poll_url.is_some(), "poll_url")
                }
                None => continue,
            };
            if !has && transports.iter().any(|tr| tr.as_str() == entry.get_ref()) {
                c.err(
                    entry.span(),
                    format!(
                        "transport `{}` needs `target.{key}` (or `target.base_url`) in external-target mode",
                        entry.get_ref()
                    ),
                );
            }
        }
    }
    target
}

// ---------------------------------------------------------------------------------------------
// Sweeps.

/// The fields a sweep may vary: every numeric or duration field.
pub const SWEEPABLE_FIELDS: &[&str] = &[
    "duration",
    "warmup",
    "drain",
    "clients.count",
    "clients.ramp_up",
    "clients.zipf_exponent",
    "clients.workers",
    "feed.topics",
    "feed.lines_per_sec",
    "feed.line_bytes",
    "feed.history",
    "feed.burst.every",
    "feed.burst.lines",
    "feed.burst.lines_per_sec",
    "poll.interval",
    "poll.wait",
    "poll.limit",
    "sse.keep_alive",
    "churn.session",
    "churn.pause",
    "server.workers",
    "server.max_connections",
];

/// Why a sweep value could not be put in place.
enum PatchError {
    /// Not in [`SWEEPABLE_FIELDS`].
    Unknown,
    /// The field's optional section is not in the file.
    NoSection(&'static str),
    /// The value does not fit the field's type.
    Type(String),
}

/// Puts `value` (a deserialized TOML value) into `slot`, spanned at the sweep value, so that
/// problems with it point into `[sweep] values`.
fn set<T: DeserializeOwned>(
    slot: &mut S<T>,
    value: &Spanned<toml::Value>,
) -> Result<(), PatchError> {
    let v = T::deserialize(value.get_ref().clone())
        .map_err(|e| PatchError::Type(e.message().to_string()))?;
    *slot = Some(Spanned::new(value.span(), v));
    Ok(())
}

/// A section to put a swept value into, created empty if the file has none (its fields have
/// defaults, or `resolve` reports them missing).
fn sec<T: Default>(s: &mut S<T>) -> &mut T {
    s.get_or_insert_with(|| Spanned::new(0..0, T::default()))
        .get_mut()
}

fn burst(raw: &mut RawScenario) -> Result<&mut RawBurst, PatchError> {
    sec(&mut raw.feed)
        .burst
        .as_mut()
        .map(Spanned::get_mut)
        .ok_or(PatchError::NoSection("feed.burst"))
}

fn churn(raw: &mut RawScenario) -> Result<&mut RawChurn, PatchError> {
    raw.churn
        .as_mut()
        .map(Spanned::get_mut)
        .ok_or(PatchError::NoSection("churn"))
}

fn patch(
    raw: &mut RawScenario,
    field: &str,
    value: &Spanned<toml::Value>,
) -> Result<(), PatchError> {
    match field {
        "duration" => set(&mut raw.duration, value),
        "warmup" => set(&mut raw.warmup, value),
        "drain" => set(&mut raw.drain, value),
        "clients.count" => set(&mut sec(&mut raw.clients).count, value),
        "clients.ramp_up" => set(&mut sec(&mut raw.clients).ramp_up, value),
        "clients.zipf_exponent" => set(&mut sec(&mut raw.clients).zipf_exponent, value),
        "clients.workers" => set(&mut sec(&mut raw.clients).workers, value),
        "feed.topics" => set(&mut sec(&mut raw.feed).topics, value),
        "feed.lines_per_sec" => set(&mut sec(&mut raw.feed).lines_per_sec, value),
        "feed.line_bytes" => set(&mut sec(&mut raw.feed).line_bytes, value),
        "feed.history" => set(&mut sec(&mut raw.feed).history, value),
        "feed.burst.every" => set(&mut burst(raw)?.every, value),
        "feed.burst.lines" => set(&mut burst(raw)?.lines, value),
        "feed.burst.lines_per_sec" => set(&mut burst(raw)?.lines_per_sec, value),
        "poll.interval" => set(&mut sec(&mut raw.poll).interval, value),
        "poll.wait" => set(&mut sec(&mut raw.poll).wait, value),
        "poll.limit" => set(&mut sec(&mut raw.poll).limit, value),
        "sse.keep_alive" => set(&mut sec(&mut raw.sse).keep_alive, value),
        "churn.session" => set(&mut churn(raw)?.session, value),
        "churn.pause" => set(&mut churn(raw)?.pause, value),
        "server.workers" => set(&mut sec(&mut raw.server).workers, value),
        "server.max_connections" => set(&mut sec(&mut raw.server).max_connections, value),
        _ => Err(PatchError::Unknown),
    }
}

/// How a sweep value appears in labels: as written, without quotes.
fn value_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolves each concrete scenario of a sweep. Problems go to `diags`, prefixed with the sweep
/// value that causes them. Problems the file has without the sweep are already in `diags` and
/// are not repeated once per value.
fn expand_raw_sweep(
    raw: &RawScenario,
    sweep: &Spanned<RawSweep>,
    default_name: &str,
    diags: &mut Vec<Diag>,
) -> (Vec<(String, Scenario)>, Option<Sweep>) {
    let base_diags = diags.clone();
    let at = sweep.span();
    let sw = sweep.get_ref();
    let mut c = Check::default();
    let field = c.required(
        &sw.field,
        &at,
        "sweep.field",
        "the dotted path of the field to vary",
    );
    let values = c.required(
        &sw.values,
        &at,
        "sweep.values",
        "the values the field takes",
    );
    let (Some(field), Some(values)) = (field, values) else {
        diags.extend(c.diags);
        return (Vec::new(), None);
    };
    let name = field.get_ref().as_str();
    if !SWEEPABLE_FIELDS.contains(&name) {
        c.err(
            field.span(),
            format!(
                "unknown sweep field `{name}`, expected one of {}",
                SWEEPABLE_FIELDS
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if values.get_ref().is_empty() {
        c.err(values.span(), "`sweep.values` must not be empty");
    }
    if !c.diags.is_empty() {
        diags.extend(c.diags);
        return (Vec::new(), None);
    }

    let mut variants = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut resolved_values = Vec::new();
    for value in values.get_ref() {
        let label = format!("{name}={}", value_label(value.get_ref()));
        if labels.contains(&label) {
            c.err(
                value.span(),
                format!(
                    "sweep value `{}` is listed twice",
                    value_label(value.get_ref())
                ),
            );
            continue;
        }
        labels.push(label.clone());
        let sweep_value = match value.get_ref() {
            toml::Value::Integer(i) => SweepValue::Integer(*i),
            toml::Value::Float(x) => SweepValue::Float(*x),
            // A bad duration is reported when the concrete scenario is resolved below.
            toml::Value::String(s) => {
                SweepValue::Duration(humantime::parse_duration(s.trim()).unwrap_or_default())
            }
            other => {
                c.err(
                    value.span(),
                    format!(
                        "sweep values must be numbers or duration strings, got {}",
                        other.type_str()
                    ),
                );
                continue;
            }
        };
        let mut patched = raw.clone();
        patched.sweep = None;
        match patch(&mut patched, name, value) {
            Ok(()) => {}
            Err(PatchError::Unknown) => {
                unreachable_field(&mut c, field);
                break;
            }
            Err(PatchError::NoSection(section)) => {
                c.err(
                    field.span(),
                    format!(
                        "sweep field `{name}` is in [{section}], which this file does not have"
                    ),
                );
                break;
            }
            Err(PatchError::Type(msg)) => {
                c.err(value.span(), format!("sweep value for `{name}`: {msg}"));
                continue;
            }
        }
        match resolve(&patched, default_name) {
            Ok(sc) => {
                resolved_values.push(sweep_value);
                variants.push((label, sc));
            }
            Err(found) => {
                for d in found {
                    if !base_diags.contains(&d) {
                        c.err(d.span, format!("with sweep `{label}`: {}", d.message));
                    }
                }
            }
        }
    }
    diags.extend(c.diags);
    let sweep = Sweep {
        field: name.to_string(),
        values: resolved_values,
    };
    (variants, Some(sweep))
}

/// A field in [`SWEEPABLE_FIELDS`] that [`patch`] does not know: a bug here, not in the file;
/// reported rather than panicking.
fn unreachable_field(c: &mut Check, field: &Spanned<String>) {
    c.err(
        field.span(),
        format!(
            "internal error: sweep field `{}` is listed but not handled",
            field.get_ref()
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "scenarios/x.toml";

    /// The smallest valid file; tests append to it or replace lines in it. Lines:
    /// 1 transports, 2 duration, 3 [clients], 4 count, 5 [feed], 6 topics, 7 lines_per_sec,
    /// 8 line_bytes.
    const MINIMAL: &str = "transports = [\"sse\"]\n\
                           duration = \"1s\"\n\
                           [clients]\n\
                           count = 10\n\
                           [feed]\n\
                           topics = 2\n\
                           lines_per_sec = 5.0\n\
                           line_bytes = 80\n";

    fn ok(text: &str) -> Scenario {
        match parse(text, ORIGIN) {
            Ok(sc) => sc,
            Err(e) => panic!("expected a valid scenario, got:\n{e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse(text, ORIGIN) {
            Ok(sc) => panic!("expected an error, got {sc:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Asserts that some line of the error is at `line:col` and contains every fragment.
    #[track_caller]
    fn assert_diag(msg: &str, line: usize, col: usize, fragments: &[&str]) {
        let prefix = format!("{ORIGIN}:{line}:{col}: ");
        let found = msg
            .lines()
            .any(|l| l.starts_with(&prefix) && fragments.iter().all(|f| l.contains(f)));
        assert!(found, "no line `{prefix}…{fragments:?}` in:\n{msg}");
    }

    const FULL: &str = r#"
name = "full_test-1"
description = "every field"
transports = ["sse", "ws", "poll", "long-poll"]
duration = "5s"
warmup = "1s"
drain = "2s"

[clients]
count = 50
ramp_up = "1s 500ms"
topics = "zipf"
zipf_exponent = 1.1
workers = 2

[feed]
topics = 5
lines_per_sec = 10
line_bytes = { min = 40, max = 120 }
history = 20000

[feed.burst]
every = "10s"
lines = 2000
lines_per_sec = 20000.0

[poll]
interval = "250ms"
wait = "5s"
limit = 500

[sse]
keep_alive = "10s"

[churn]
session = "10s"
pause = "2s"

[server]
binary = "target/release/feed-server"
workers = 2
pin = false
max_connections = 1000

[sweep]
field = "clients.count"
values = [10, 100]
"#;

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
    fn zipf_exponent_defaults_to_one() {
        let sc = ok(&MINIMAL.replace("count = 10", "count = 10\ntopics = \"zipf\""));
        assert_eq!(sc.clients.topics, TopicChoice::Zipf(1.0));
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
    fn unknown_field_top_level() {
        let msg = err(&format!("cleints = 3\n{MINIMAL}"));
        assert_diag(
            &msg,
            1,
            1,
            &["unknown field `cleints`", "expected one of", "`clients`"],
        );
    }

    #[test]
    fn unknown_field_nested() {
        let msg = err(&MINIMAL.replace("count = 10", "count = 10\ncuont = 3"));
        assert_diag(
            &msg,
            5,
            1,
            &["unknown field `cuont`", "expected one of", "`count`"],
        );
        let msg = err(&MINIMAL.replace("line_bytes = 80", "line_bytes = { min = 1, mx = 2 }"));
        assert_diag(
            &msg,
            8,
            14,
            &["unknown field `mx`", "expected `min` or `max`"],
        );
    }

    #[test]
    fn wrong_type() {
        let msg = err(&MINIMAL.replace("count = 10", "count = \"ten\""));
        assert_diag(
            &msg,
            4,
            9,
            &["invalid type: string \"ten\"", "expected i64"],
        );
        let msg = err(&MINIMAL.replace("duration = \"1s\"", "duration = 1"));
        assert_diag(
            &msg,
            2,
            12,
            &["invalid type: integer `1`", "a duration string"],
        );
    }

    #[test]
    fn syntax_error_has_a_position() {
        let msg = err("transports = [\"sse\"\nduration = \"1s\"\n");
        assert!(msg.starts_with(&format!("{ORIGIN}:")), "{msg}");
    }

    #[test]
    fn bad_duration_string() {
        let msg = err(&MINIMAL.replace("duration = \"1s\"", "duration = \"5 sekunden\""));
        assert_diag(
            &msg,
            2,
            12,
            &[
                "`duration`",
                "\"5 sekunden\" is not a duration",
                "\"500ms\"",
            ],
        );
        let msg = err(&MINIMAL.replace("duration = \"1s\"", "duration = \"0s\""));
        assert_diag(&msg, 2, 12, &["`duration` must be greater than zero"]);
        let msg = err(&format!("{MINIMAL}[poll]\nwait = \"10m\"\n"));
        assert_diag(&msg, 10, 8, &["`poll.wait` must be at most 2m"]);
    }

    #[test]
    fn zero_poll_interval_is_the_closed_loop_probe() {
        let sc = ok(&format!("{MINIMAL}[poll]\ninterval = \"0s\"\n"));
        assert_eq!(sc.poll.interval, Duration::ZERO);
        // Still a duration: the problem names the field and its line.
        let msg = err(&format!("{MINIMAL}[poll]\ninterval = \"-1s\"\n"));
        assert_diag(
            &msg,
            10,
            12,
            &["`poll.interval`", "\"-1s\" is not a duration"],
        );
        // Long-poll's wait has no such mode.
        let msg = err(&format!("{MINIMAL}[poll]\nwait = \"0s\"\n"));
        assert_diag(&msg, 10, 8, &["`poll.wait` must be greater than zero"]);
        // A sweep may include it.
        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"poll.interval\"\nvalues = [\"0s\", \"1s\"]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs[0].0.as_deref(), Some("poll.interval=0s"));
        assert_eq!(runs[0].1.poll.interval, Duration::ZERO);
    }

    #[test]
    fn zero_count() {
        let msg = err(&MINIMAL.replace("count = 10", "count = 0"));
        assert_diag(
            &msg,
            4,
            9,
            &["`clients.count` must be between 1 and 200000, got 0"],
        );
    }

    #[test]
    fn min_greater_than_max() {
        let msg = err(&MINIMAL.replace("line_bytes = 80", "line_bytes = { min = 120, max = 40 }"));
        assert_diag(
            &msg,
            8,
            14,
            &["`feed.line_bytes`", "min (120) is greater than max (40)"],
        );
        let msg = err(&MINIMAL.replace("line_bytes = 80", "line_bytes = 0"));
        assert_diag(
            &msg,
            8,
            14,
            &["`feed.line_bytes` must be between 1 and 1048576"],
        );
    }

    #[test]
    fn duplicate_transport() {
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[\"sse\", \"ws\", \"sse\"]"));
        assert_diag(&msg, 1, 28, &["transport `sse` is listed twice"]);
    }

    #[test]
    fn unknown_transport_name() {
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[\"sse\", \"websocket\"]"));
        assert_diag(
            &msg,
            1,
            22,
            &["unknown transport `websocket`", "`long-poll`"],
        );
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[]"));
        assert_diag(&msg, 1, 14, &["`transports` must list at least one"]);
    }

    #[test]
    fn zipf_exponent_with_uniform() {
        let msg = err(&MINIMAL.replace("count = 10", "count = 10\nzipf_exponent = 1.2"));
        assert_diag(
            &msg,
            5,
            17,
            &["`clients.zipf_exponent` only applies", "\"zipf\""],
        );
        let msg = err(&MINIMAL.replace("count = 10", "count = 10\ntopics = \"pareto\""));
        assert_diag(&msg, 5, 10, &["unknown `clients.topics` \"pareto\""]);
    }

    #[test]
    fn missing_fields_are_all_reported() {
        let msg = err("[clients]\nramp_up = \"1s\"\n");
        assert_diag(&msg, 1, 1, &["missing `transports`"]);
        assert_diag(&msg, 1, 1, &["missing `duration`"]);
        assert_diag(&msg, 1, 1, &["missing `clients.count`"]);
        assert_diag(&msg, 1, 1, &["missing `feed.topics`"]);
        assert_diag(&msg, 1, 1, &["missing `feed.lines_per_sec`"]);
        assert_diag(&msg, 1, 1, &["missing `feed.line_bytes`"]);
    }

    #[test]
    fn all_semantic_errors_are_collected_in_file_order() {
        let text = MINIMAL
            .replace("count = 10", "count = 0")
            .replace("topics = 2", "topics = 0")
            .replace("duration = \"1s\"", "duration = \"soon\"");
        let msg = err(&text);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        assert!(lines[0].starts_with(&format!("{ORIGIN}:2:")), "{msg}");
        assert!(lines[1].starts_with(&format!("{ORIGIN}:4:")), "{msg}");
        assert!(lines[2].starts_with(&format!("{ORIGIN}:6:")), "{msg}");
    }

    #[test]
    fn invalid_names() {
        let msg = err(&format!("name = \"My Run\"\n{MINIMAL}"));
        assert_diag(&msg, 1, 8, &["`name` must match [a-z0-9_-]+"]);
        let Err(e) = parse(MINIMAL, "scenarios/My Run.toml") else {
            panic!("a bad file stem without `name` must fail");
        };
        assert!(
            e.to_string()
                .starts_with("scenarios/My Run.toml:1:1: the scenario name defaults"),
            "{e}"
        );
        assert_eq!(ok(&format!("name = \"ok-1\"\n{MINIMAL}")).name, "ok-1");
    }

    #[test]
    fn burst_rules() {
        let msg = err(&format!(
            "{MINIMAL}[feed.burst]\nevery = \"1s\"\nlines = 2000\nlines_per_sec = 1000\n"
        ));
        assert_diag(
            &msg,
            11,
            9,
            &["lasts 2.000s", "not shorter than `feed.burst.every` (1s)"],
        );
        // Bursts only: a zero steady rate is fine with a burst, not without.
        let bursts_only = MINIMAL.replace("lines_per_sec = 5.0", "lines_per_sec = 0");
        let msg = err(&bursts_only);
        assert_diag(
            &msg,
            7,
            17,
            &["`feed.lines_per_sec` must be a finite number greater than zero"],
        );
        let sc = ok(&format!(
            "{bursts_only}[feed.burst]\nevery = \"10s\"\nlines = 100\nlines_per_sec = 1000\n"
        ));
        assert_eq!(sc.feed.lines_per_sec, 0.0);
        let msg = err(&format!("{MINIMAL}[feed.burst]\nevery = \"10s\"\n"));
        assert_diag(&msg, 9, 1, &["missing `feed.burst.lines`"]);
        assert_diag(&msg, 9, 1, &["missing `feed.burst.lines_per_sec`"]);
    }

    #[test]
    fn count_above_max_connections() {
        let msg = err(&format!("{MINIMAL}[server]\nmax_connections = 5\n"));
        assert_diag(
            &msg,
            4,
            9,
            &["`clients.count` (10) exceeds `server.max_connections` (5)"],
        );
    }

    const TARGET: &str = "transports = [\"sse\", \"long-poll\"]\n\
                          duration = \"1s\"\n\
                          [clients]\n\
                          count = 10\n\
                          [feed]\n\
                          topics = 2\n\
                          lines_per_sec = 5.0\n\
                          line_bytes = 80\n\
                          [target]\n\
                          sse_url = \"http://127.0.0.1:9000/{topic}/logs/events\"\n";

    #[test]
    fn target_transport_without_url() {
        let msg = err(TARGET);
        assert_diag(
            &msg,
            1,
            22,
            &["transport `long-poll` needs `target.poll_url`"],
        );
        let sc = ok(&format!(
            "{TARGET}poll_url = \"http://127.0.0.1:9000/{{topic}}/logs\"\n"
        ));
        let target = sc.target.expect("target mode");
        assert_eq!(
            target.poll_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs")
        );
        assert_eq!(target.ws_url, None);
        assert_eq!(target.publish_url, None);
    }

    #[test]
    fn target_base_url_implies_feed_server_paths() {
        let text = TARGET.replace(
            "sse_url = \"http://127.0.0.1:9000/{topic}/logs/events\"",
            "base_url = \"http://127.0.0.1:9000/\"\npublish_url = \"http://127.0.0.1:9000/{topic}/logs\"",
        );
        let t = ok(&text).target.expect("target mode");
        assert_eq!(
            t.sse_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs/events")
        );
        assert_eq!(
            t.ws_url.as_deref(),
            Some("ws://127.0.0.1:9000/{topic}/logs/ws")
        );
        assert_eq!(
            t.poll_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs")
        );
        assert_eq!(
            t.publish_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs")
        );
    }

    #[test]
    fn target_url_rules() {
        let bad = |url: &str| {
            err(&TARGET.replace(
                "\"http://127.0.0.1:9000/{topic}/logs/events\"",
                &format!("\"{url}\"\npoll_url = \"http://h/{{topic}}\""),
            ))
        };
        assert_diag(
            &bad("ftp://h/{topic}"),
            10,
            11,
            &["must start with http:// or https://"],
        );
        assert_diag(&bad("http:///{topic}"), 10, 11, &["has no host"]);
        assert_diag(
            &bad("http://h/{topc}"),
            10,
            11,
            &["unknown placeholder `{topc}`"],
        );
        assert_diag(
            &bad("http://h/logs"),
            10,
            11,
            &["needs a `{topic}` placeholder"],
        );
        let msg = err(&format!(
            "{TARGET}poll_url = \"http://h/{{topic}}\"\n[server]\nworkers = 2\n"
        ));
        assert_diag(
            &msg,
            12,
            1,
            &["[server]", "cannot be combined with [target]"],
        );
    }

    #[test]
    fn foreign_target_fields() {
        let with = |extra: &str| format!("{TARGET}poll_url = \"http://h/{{topic}}\"\n{extra}");
        // TLS schemes, insecure, the server process.
        let tls = TARGET
            .replace("http://127.0.0.1:9000", "https://localhost:9443")
            .replace(
                "transports = [\"sse\", \"long-poll\"]",
                "transports = [\"sse\"]",
            );
        let t = ok(&format!(
            "{tls}insecure = true\nserver_process = \"nginx\"\n"
        ))
        .target
        .expect("target mode");
        assert!(t.insecure);
        assert_eq!(t.server, Some(ServerSelector::Process("nginx".into())));
        assert_eq!(t.poll_cursor, PollCursor::FeedServer);
        let base = ok(&format!(
            "{}[target]\nbase_url = \"https://h:1\"\n",
            TARGET.split("[target]").next().unwrap()
        ))
        .target
        .unwrap();
        assert_eq!(base.ws_url.as_deref(), Some("wss://h:1/{topic}/logs/ws"));
        // The query cursor needs {after} in poll_url, and nowhere else takes it.
        let q = ok(&format!(
            "{TARGET}poll_url = \"http://h/{{topic}}?since={{after}}\"\npoll_cursor = \"query\"\n"
        ))
        .target
        .unwrap();
        assert_eq!(q.poll_cursor, PollCursor::Query);
        assert_diag(
            &err(&with("poll_cursor = \"query\"\n")),
            11,
            12,
            &["needs an `{after}` placeholder"],
        );
        assert_diag(
            &err(&format!(
                "{TARGET}poll_url = \"http://h/{{topic}}/{{after}}\"\n"
            )),
            11,
            12,
            &["only `poll_url` with `poll_cursor = \"query\"`"],
        );
        assert_diag(
            &err(&with("poll_cursor = \"cookie\"\n")),
            12,
            15,
            &["`target.poll_cursor` must be"],
        );
        assert_diag(
            &err(&with("server_pid = 0\n")),
            12,
            14,
            &["`target.server_pid` must be a process id above 0"],
        );
        assert_diag(
            &err(&with("server_process = \"a/b\"\n")),
            12,
            18,
            &["`target.server_process` must be a process name"],
        );
        assert_diag(
            &err(&with("server_pid = 4\nserver_process = \"nginx\"\n")),
            13,
            18,
            &["not both"],
        );
    }

    #[test]
    fn sweep_sets_the_field() {
        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = [100, 1000]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0.as_deref(), Some("clients.count=100"));
        assert_eq!(runs[0].1.clients.count, 100);
        assert_eq!(runs[1].0.as_deref(), Some("clients.count=1000"));
        assert_eq!(runs[1].1.clients.count, 1000);
        for (_, run) in &runs {
            assert_eq!(run.sweep, None);
            assert_eq!(run.expand_sweep().len(), 1);
            assert_eq!(run.source, sc.source);
        }

        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"poll.interval\"\nvalues = [\"250ms\", \"2s\"]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs[0].0.as_deref(), Some("poll.interval=250ms"));
        assert_eq!(runs[0].1.poll.interval, Duration::from_millis(250));
        assert_eq!(runs[1].1.poll.interval, Duration::from_secs(2));

        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"feed.line_bytes\"\nvalues = [16, 4096]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(
            runs[1].1.feed.line_bytes,
            LineBytes {
                min: 4096,
                max: 4096
            }
        );

        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"feed.lines_per_sec\"\nvalues = [1, 2.5]\n"
        ));
        let rates: Vec<f64> = sc
            .expand_sweep()
            .iter()
            .map(|(_, s)| s.feed.lines_per_sec)
            .collect();
        assert_eq!(rates, vec![1.0, 2.5]);
    }

    #[test]
    fn sweep_on_unknown_field() {
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.cuont\"\nvalues = [1]\n"
        ));
        assert_diag(
            &msg,
            10,
            9,
            &["unknown sweep field `clients.cuont`", "`clients.count`"],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"churn.pause\"\nvalues = [\"1s\"]\n"
        ));
        assert_diag(
            &msg,
            10,
            9,
            &["`churn.pause` is in [churn], which this file does not have"],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = []\n"
        ));
        assert_diag(&msg, 11, 10, &["`sweep.values` must not be empty"]);
    }

    #[test]
    fn sweep_values_of_wrong_type() {
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = [10, \"5s\", 2.5]\n"
        ));
        assert_diag(
            &msg,
            11,
            15,
            &[
                "sweep value for `clients.count`",
                "invalid type: string \"5s\"",
            ],
        );
        assert_diag(
            &msg,
            11,
            21,
            &[
                "sweep value for `clients.count`",
                "invalid type: floating point `2.5`",
            ],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"duration\"\nvalues = [\"2s\", 3]\n"
        ));
        assert_diag(
            &msg,
            11,
            17,
            &["sweep value for `duration`", "a duration string"],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"duration\"\nvalues = [true]\n"
        ));
        assert_diag(
            &msg,
            11,
            11,
            &["sweep values must be numbers or duration strings"],
        );
    }

    #[test]
    fn sweep_values_are_validated_like_the_field() {
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = [10, 0, 10]\n"
        ));
        assert_diag(
            &msg,
            11,
            15,
            &["with sweep `clients.count=0`: `clients.count` must be between 1 and 200000, got 0"],
        );
        assert_diag(&msg, 11, 18, &["sweep value `10` is listed twice"]);
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"duration\"\nvalues = [\"2 parsecs\"]\n"
        ));
        assert_diag(
            &msg,
            11,
            11,
            &["with sweep `duration=2 parsecs`", "is not a duration"],
        );
        // A problem elsewhere in the file is reported once, not once per sweep value.
        let msg = err(&format!(
            "{}[sweep]\nfield = \"clients.count\"\nvalues = [1, 2]\n",
            MINIMAL.replace("topics = 2", "topics = 0")
        ));
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert_diag(&msg, 6, 10, &["`feed.topics` must be between 1 and 100000"]);
    }

    #[test]
    fn every_sweepable_field_is_handled() {
        let full = FULL.replace("field = \"clients.count\"", "field = \"duration\"");
        let raw: RawScenario = toml::from_str(&full).expect("parses");
        for field in SWEEPABLE_FIELDS {
            let value = if field.ends_with("lines_per_sec") || field.ends_with("exponent") {
                toml::Value::Float(2.0)
            } else if [
                "duration",
                "warmup",
                "drain",
                "every",
                "ramp_up",
                "interval",
                "wait",
                "keep_alive",
                "session",
                "pause",
            ]
            .iter()
            .any(|d| field.ends_with(d))
            {
                toml::Value::String("3s".into())
            } else {
                toml::Value::Integer(3)
            };
            let mut patched = raw.clone();
            let result = patch(&mut patched, field, &Spanned::new(0..0, value));
            assert!(result.is_ok(), "sweep field {field} is not handled");
        }
    }

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(
            line_column(text, text.find('=').map(|_| 10).unwrap()),
            (2, 4)
        );
        assert_eq!(line_column(text, 10_000), (3, 1));
    }

    #[test]
    fn transport_names() {
        for t in Transport::ALL {
            assert_eq!(Transport::from_name(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(Transport::from_name("websocket"), None);
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let e = load(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/x.toml: cannot read"),
            "{e}"
        );
    }
}
