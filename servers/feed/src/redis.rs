//! [`RedisBackend`]: the feed on Redis Streams, so that several server instances serve one feed
//! (feature `redis`). The in-memory [`crate::MemoryBackend`] stays the embedded default.
//!
//! # Keys (all under one prefix, `--redis-prefix`, so runs and tests can share a server)
//! - `{prefix}:topic:{id}`: the topic's stream. Entry id `0-SEQ`, so a seq maps to an id
//!   without an index and a gap would be visible; fields `ts` (decimal Unix ns) and `text`
//!   (the raw line). The JSON payload is rebuilt with [`Line::new`] when read: storing the
//!   JSON as well would repeat `seq` and `ts` and the field names in every entry.
//!   Trimmed with an exact `MAXLEN history`, so `oldest_seq = last_seq + 1 - XLEN`, exactly as
//!   the memory ring gives it.
//! - `{prefix}:meta:{id}`: hash `last` (last seq), `finished` (0/1), `created` (Unix ms).
//! - `{prefix}:topics`: set of topic ids, for [`Backend::topics`] and the topic limit.
//! - `{prefix}:control`: stream of cross-instance commands (`finish`, `disconnect`), capped
//!   at about 10,000 entries.
//! - `{prefix}:wake:{instance}`: one per instance, written when its set of watched topics grows
//!   (see below); `{prefix}:instances`: hash instance → heartbeat (Unix ms);
//!   `{prefix}:reply:{request}`: list of per-instance answers to one `disconnect`, expiring.
//!
//! Every command that reads or changes a topic's state is one Lua script (append, open,
//! finish, status, read), so each is atomic across instances: seqs come from the `last` field
//! inside the append script, hence two instances appending to one topic get 1..N without a
//! gap or a duplicate.
//!
//! # Live fan-out
//! Each instance runs ONE reader task with a blocking multi-key `XREAD BLOCK`, over the streams
//! of the topics that have subscribers on this instance, the control stream and the instance's
//! wake key. One reader per subscriber would make Redis pay O(subscribers) on every `XADD`.
//! What the reader reads goes into a per-topic in-process ring of decoded `Arc<Line>`s
//! (bounded by `history`), shared by the instance's subscribers of that topic: a line is
//! decoded once per instance, not once per subscriber. Each subscriber keeps a cursor, as
//! with the memory backend (the crate's lag policy): it reads from the ring, and from Redis
//! (`XRANGE`, through the read script) for anything older than the ring; when Redis no
//! longer has it either the subscriber gets [`Delivery::Lagged`] and its stream ends, never a
//! silent gap.
//!
//! The blocking reader has its own connection (a blocked `XREAD` would hold up every command
//! pipelined behind it); commands go through a [`ConnectionManager`] (reconnects by itself).
//! redis-rs gives every async connection a 500 ms response timeout by default, shorter than
//! the block: the reader's connection gets `BLOCK` + 5 s instead, so a dead TCP connection is
//! still noticed.
//!
//! A topic's first subscriber on an instance must not wait for the reader's current `XREAD`
//! (up to `BLOCK`, 2 s) to time out: it writes the instance's wake key, which is always in the
//! `XREAD`, so the reader returns at once and reads again with the new key. A short `BLOCK`
//! instead would cost a round trip per instance every few milliseconds while idle. A topic
//! whose last subscriber leaves is dropped from the next `XREAD` (no wake needed).
//!
//! # Finish and disconnect across instances
//! [`Backend::finish`] marks the topic in its hash and writes `finish {topic, last}` to the
//! control stream, in one script (so no finish goes unannounced); every instance's reader then marks its local topic finished at `last`, and
//! its subscribers end with [`Delivery::End`] once they have read up to `last` (the lines may
//! reach the ring after the control message: the two are separate streams).
//!
//! [`Backend::disconnect`] writes `disconnect {topic, fraction, request}` to the control
//! stream; every instance (the one asked included) drops the oldest `ceil(fraction × open)`
//! of *its own* subscriptions of the topic and pushes `dropped open` to the request's reply
//! list. The instance asked waits (at most 2 s) for as many answers as there are live
//! instances (heartbeat within 5 s) and returns the totals. So `open` is the total over the
//! instances that answered in time, and `dropped` the sum of per-instance ceilings, which may
//! exceed `ceil(fraction × open)` by up to one per instance.
//!
//! # Outages
//! A command that cannot reach Redis fails with [`FeedError::Backend`] (HTTP 503). The reader
//! backs off (100 ms doubling to 0.5 s) and reads on from the last ids it saw, so open
//! subscriptions just wait through a short outage and continue without gap or duplicate; a
//! subscriber reading history retries with the same back-off. If Redis comes back *without*
//! its data (no persistence), the topics are gone: subscribers that need history get
//! `Lagged`. The built-in generator notices (a status check after any failed append) and
//! opens each topic again at its next seq ([`Backend::open`]), so open streams go on and a
//! poller's older cursor gets `410` with `oldest_seq` (the lines it had not fetched are
//! counted as gone, not renumbered); any other publisher's next `POST` would start the topic
//! again at seq 1. Persist Redis if that matters.
//!
//! # Memory
//! Measured with `MEMORY USAGE key SAMPLES 0` on Redis 7.0.15 (listpack stream nodes,
//! default `stream-node-max-bytes` 4096 / `-entries` 100): a stream of 10,000 lines of 120
//! bytes takes 1,569,864 bytes, **157 bytes per line**: the text plus ~37 bytes of entry
//! overhead (id delta, flags, `ts` stored as a listpack integer, node headers and the radix
//! tree); the field names are compressed away by each node's master entry. At the default
//! `--history` of 10,000 that is ~1.6 MB per topic held in Redis, on top of each instance's
//! ring of decoded lines for the topics it has subscribers to.
//! See `stream_memory_per_line` in `tests/backend_suite.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Script, ScriptInvocation, Value};
use tokio::sync::watch;

use crate::backend::{
    AppendReceipt, Backend, Delivery, Disconnected, FeedError, NewLine, ReadBatch, Subscription,
    TopicStatus,
};
use crate::clock::unix_nanos;
use crate::cursor::{self, check_cursor, OpenCursors, Position, Ring, Subscriber, Taken};
use crate::line::Line;
use crate::topic::TopicId;

/// How a [`RedisBackend`] connects and what it keeps.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// Prefix of every key (`{prefix}:topic:...`).
    pub prefix: String,
    /// Lines kept per topic (exact `MAXLEN`), and the size of each in-process ring.
    pub history: usize,
    /// Topics held at most (over all instances sharing the prefix).
    pub max_topics: usize,
}

/// Why a [`RedisBackend`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("Redis URL {url:?} is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("history must hold at least one line")]
    NoHistory,
}

/// How long the reader's `XREAD` blocks.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries per stream per `XREAD`.
const READ_COUNT: usize = 1000;
/// Back-off bounds of the reader and of a subscriber reading history during an outage.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Short: one connection attempt per instance every half second costs Redis nothing, and each
/// step of back-off beyond the outage is added to every stream's stall (with a 2 s cap, a 2 s
/// outage stalled streams for 3.1 s: the retry after 1.6 s failed, the next came at 3.1 s).
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How often an instance says it is alive, and how old a heartbeat may be to count.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_FRESH: Duration = Duration::from_secs(5);
/// Lifetime of an instance's wake key after its last heartbeat, and of an instance's entry in
/// the heartbeat hash (removed by the next `disconnect` after that).
const WAKE_TTL: Duration = Duration::from_secs(60);
/// Longest wait for the other instances' answers to a `disconnect`.
const DISCONNECT_WAIT: Duration = Duration::from_secs(2);
/// Control messages kept (approximately; they are only read live).
const CONTROL_MAXLEN: usize = 10_000;

/// The Redis Streams [`Backend`]. Dropping it stops its reader task.
pub struct RedisBackend {
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for RedisBackend {
    /// Stops the reader and, if a runtime is still there, takes this instance out of the
    /// heartbeat hash at once, so other instances' `disconnect` stop waiting for it.
    fn drop(&mut self) {
        self.reader.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut conn = self.shared.conn();
            let (instances, wake, id) = (
                self.shared.keys.instances.clone(),
                self.shared.keys.wake.clone(),
                self.shared.instance.clone(),
            );
            runtime.spawn(async move {
                let _: redis::RedisResult<()> = redis::pipe()
                    .cmd("HDEL")
                    .arg(instances)
                    .arg(id)
                    .ignore()
                    .cmd("DEL")
                    .arg(wake)
                    .ignore()
                    .query_async(&mut conn)
                    .await;
            });
        }
    }
}

struct Keys {
    prefix: String,
    topics: String,
    control: String,
    wake: String,
    instances: String,
}

impl Keys {
    fn stream(&self, t: &TopicId) -> String {
        format!("{}:topic:{t}", self.prefix)
    }
    fn meta(&self, t: &TopicId) -> String {
        format!("{}:meta:{t}", self.prefix)
    }
    fn reply(&self, request: &str) -> String {
        format!("{}:reply:{request}", self.prefix)
    }
}

struct Scripts {
    append: Script,
    open: Script,
    finish: Script,
    status: Script,
    read: Script,
}

/// `{exists, last, finished, xlen}` of a topic; the shared head of several scripts.
const STATUS_LUA: &str = r"
local function status(meta, stream)
  local m = redis.call('HMGET', meta, 'last', 'finished')
  if not m[1] then return nil end
  return {tonumber(m[1]), tonumber(m[2]), redis.call('XLEN', stream)}
end
";

impl Scripts {
    fn new() -> Self {
        let with_status = |body: &str| Script::new(&format!("{STATUS_LUA}{body}"));
        Scripts {
            // KEYS meta stream topics; ARGV history max_topics topic now_ms (ts text)*.
            // Returns {1, first, last}, {2} finished, {3} too many topics.
            append: Script::new(
                r"
local last = redis.call('HGET', KEYS[1], 'last')
if not last then
  if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[2]) then return {3} end
  redis.call('HSET', KEYS[1], 'last', 0, 'finished', 0, 'created', ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[3])
  last = 0
elseif redis.call('HGET', KEYS[1], 'finished') == '1' then
  return {2}
end
last = tonumber(last)
local first = last + 1
for i = 5, #ARGV, 2 do
  last = last + 1
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], string.format('0-%d', last),
    'ts', ARGV[i], 'text', ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'last', last)
return {1, first, last}
",
            ),
            // KEYS meta stream topics; ARGV next_seq max_topics topic now_ms.
            // Returns {1, last, finished, xlen} or {3} too many topics.
            open: with_status(
                r"
local s = status(KEYS[1], KEYS[2])
if s then return {1, s[1], s[2], s[3]} end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[2]) then return {3} end
local next_seq = math.max(tonumber(ARGV[1]), 1)
redis.call('HSET', KEYS[1], 'last', next_seq - 1, 'finished', 0, 'created', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
return {1, next_seq - 1, 0, redis.call('XLEN', KEYS[2])}
",
            ),
            // Returns {1, last, 1, xlen} or {0} unknown.
            // KEYS meta stream control; ARGV topic control_maxlen. The control message is
            // written in the same script, so no instance can miss a finish that happened.
            finish: with_status(
                r"
local s = status(KEYS[1], KEYS[2])
if not s then return {0} end
redis.call('HSET', KEYS[1], 'finished', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
  'kind', 'finish', 'topic', ARGV[1], 'last', string.format('%d', s[1]))
return {1, s[1], 1, s[3]}
",
            ),
            // KEYS meta stream. Returns {1, last, finished, xlen} or {0} unknown.
            status: with_status(
                r"
local s = status(KEYS[1], KEYS[2])
if not s then return {0} end
return {1, s[1], s[2], s[3]}
",
            ),
            // KEYS meta stream; ARGV after (-1: from the oldest held) limit.
            // Returns {1, last, finished, xlen, entries} or {0} unknown; entries are those
            // from seq after + 1 on (XRANGE), whether or not history still reaches there.
            read: with_status(
                r"
local s = status(KEYS[1], KEYS[2])
if not s then return {0} end
local last, len = s[1], s[3]
local after = tonumber(ARGV[1])
if after < 0 then after = last - len end
local entries = {}
if tonumber(ARGV[2]) > 0 and after < last then
  entries = redis.call('XRANGE', KEYS[2], string.format('0-%d', after + 1), '+',
    'COUNT', ARGV[2])
end
return {1, last, s[2], len, entries}
",
            ),
        }
    }
}

struct Shared {
    config: RedisConfig,
    keys: Keys,
    scripts: Scripts,
    commands: ConnectionManager,
    instance: String,
    /// Topics with subscribers on this instance.
    local: Mutex<HashMap<TopicId, Arc<LocalTopic>>>,
}

/// One topic as this instance's subscribers see it: the ring the reader fills.
struct LocalTopic {
    id: TopicId,
    key: String,
    state: Mutex<LocalState>,
    /// Bumped after every change of `state`; cursors wait on it (as in the memory backend).
    changed: watch::Sender<()>,
}

struct LocalState {
    /// Set once the topic's status has been read from Redis; before, the reader skips it.
    ready: bool,
    /// Recent lines. `ring.last_seq()` is the newest seq this instance knows of; the reader
    /// reads on after `0-{last_seq}`.
    ring: Ring,
    /// The final seq, once the topic is finished.
    finished: Option<u64>,
    /// Cursors holding this topic (alive, whatever their state); at 0 it leaves the map.
    holders: usize,
    cursors: OpenCursors,
}

impl LocalState {
    /// Adds lines read from Redis, in order, skipping those already held. One that does not
    /// follow the newest (the reader fell further behind than Redis keeps) restarts the ring
    /// there: cursors in the gap then read Redis, which no longer has their lines, and lag.
    fn feed(&mut self, lines: impl IntoIterator<Item = Arc<Line>>) -> bool {
        let mut any = false;
        for line in lines {
            if line.seq > self.ring.last_seq() {
                self.ring.push(line);
                any = true;
            }
        }
        any
    }
}

fn backend_error(what: &str, e: impl std::fmt::Display) -> FeedError {
    FeedError::Backend(format!("redis {what}: {e}"))
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn now_ms() -> u64 {
    unix_nanos() / 1_000_000
}

/// A script's integer reply element.
fn int_at(v: &[Value], i: usize) -> Result<u64, FeedError> {
    match v.get(i) {
        Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
        other => Err(backend_error(
            "reply",
            format!("expected an integer, got {other:?}"),
        )),
    }
}

fn array(v: Value) -> Result<Vec<Value>, FeedError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(backend_error(
            "reply",
            format!("expected an array, got {other:?}"),
        )),
    }
}

/// `{1, last, finished, xlen, ...}` → the status (`None` for `{0}`, an unknown topic).
fn parse_status(v: &[Value]) -> Result<Option<TopicStatus>, FeedError> {
    if int_at(v, 0)? == 0 {
        return Ok(None);
    }
    let last_seq = int_at(v, 1)?;
    let len = int_at(v, 3)?;
    Ok(Some(TopicStatus {
        last_seq,
        oldest_seq: cursor::oldest_seq(last_seq, len),
        finished: int_at(v, 2)? == 1,
    }))
}

fn bulk_str(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// `0-SEQ` → SEQ.
fn seq_of_id(id: &str) -> Option<u64> {
    id.strip_prefix("0-")?.parse().ok()
}

/// One stream entry (`[id, [field, value, ...]]`, as XRANGE gives it) → a line.
fn parse_entry(v: &Value) -> Result<Arc<Line>, FeedError> {
    let bad = || backend_error("entry", format!("unexpected stream entry {v:?}"));
    let Value::Array(parts) = v else {
        return Err(bad());
    };
    let (Some(id), Some(Value::Array(fields))) = (parts.first().and_then(bulk_str), parts.get(1))
    else {
        return Err(bad());
    };
    let seq = seq_of_id(id).ok_or_else(bad)?;
    let (mut ts, mut text) = (None, None);
    for pair in fields.chunks(2) {
        match (bulk_str(&pair[0]), pair.get(1)) {
            (Some("ts"), Some(v)) => ts = bulk_str(v).and_then(|s| s.parse::<u64>().ok()),
            (Some("text"), Some(v)) => text = bulk_str(v),
            _ => {}
        }
    }
    match (ts, text) {
        (Some(ts), Some(text)) => Ok(Arc::new(Line::new(seq, ts, text))),
        _ => Err(bad()),
    }
}

/// Checks that `url` is a Redis URL this backend can use, without connecting.
pub fn check_url(url: &str) -> Result<(), RedisSetupError> {
    let bad = |reason: String| RedisSetupError::BadUrl {
        url: url.to_string(),
        reason,
    };
    if !url.starts_with("redis://") {
        return Err(bad(
            "expected redis://HOST:PORT[/DB] (no TLS: rediss:// is not built in)".into(),
        ));
    }
    redis::Client::open(url).map_err(|e| bad(e.to_string()))?;
    Ok(())
}

impl RedisBackend {
    /// Connects (failing within a few seconds if Redis is unreachable) and starts the reader.
    /// Must be called within a tokio runtime.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisSetupError> {
        if config.history == 0 {
            return Err(RedisSetupError::NoHistory);
        }
        let url = config.url.clone();
        check_url(&url)?;
        let client = redis::Client::open(url.as_str()).map_err(|e| RedisSetupError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let unreachable = |e: redis::RedisError| RedisSetupError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut commands = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(manager_config),
        )
        .await
        .map_err(|_| RedisSetupError::Unreachable {
            url: url.clone(),
            reason: "no answer within 5 s".into(),
        })?
        .map_err(unreachable)?;
        let prefix = config.prefix.clone();
        let instance = random_hex();
        let keys = Keys {
            topics: format!("{prefix}:topics"),
            control: format!("{prefix}:control"),
            wake: format!("{prefix}:wake:{instance}"),
            instances: format!("{prefix}:instances"),
            prefix,
        };
        // Control messages from now on: the newest id already there, if any.
        let newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
            .arg(&keys.control)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut commands)
            .await
            .map_err(unreachable)?;
        let control_from = newest
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_string(), |(id, _)| id);
        let _: () = redis::cmd("HSET")
            .arg(&keys.instances)
            .arg(&instance)
            .arg(now_ms())
            .query_async(&mut commands)
            .await
            .map_err(unreachable)?;
        let shared = Arc::new(Shared {
            config,
            keys,
            scripts: Scripts::new(),
            commands,
            instance,
            local: Mutex::new(HashMap::new()),
        });
        let reader = tokio::spawn(read_loop(Arc::downgrade(&shared), client, control_from));
        Ok(RedisBackend { shared, reader })
    }
}

impl Shared {
    fn conn(&self) -> ConnectionManager {
        self.commands.clone()
    }

    /// A call of `script` on `topic`: its first two keys are always the topic's hash and
    /// stream.
    fn on_topic<'a>(&self, script: &'a Script, topic: &TopicId) -> ScriptInvocation<'a> {
        let mut call = script.key(self.keys.meta(topic));
        call.key(self.keys.stream(topic));
        call
    }

    async fn status(&self, topic: &TopicId) -> Result<TopicStatus, FeedError> {
        let v: Value = self
            .on_topic(&self.scripts.status, topic)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_error("status", e))?;
        parse_status(&array(v)?)?.ok_or_else(|| FeedError::UnknownTopic(topic.clone()))
    }

    /// The read script: the status and up to `limit` entries from seq `after + 1` on
    /// (`None`: from the oldest held), without checking the cursor.
    async fn read_raw(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(TopicStatus, Vec<Arc<Line>>), FeedError> {
        let v: Value = self
            .on_topic(&self.scripts.read, topic)
            .arg(after.map_or(-1, |a| a as i64))
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_error("read", e))?;
        let mut v = array(v)?;
        let status = parse_status(&v)?.ok_or_else(|| FeedError::UnknownTopic(topic.clone()))?;
        let entries = match v.pop() {
            Some(Value::Array(entries)) => entries,
            other => return Err(backend_error("read", format!("no entries in {other:?}"))),
        };
        let lines = entries
            .iter()
            .map(parse_entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((status, lines))
    }

    /// Tells this instance's reader that its set of topics grew.
    async fn wake_reader(&self) {
        let r: redis::RedisResult<()> = redis::cmd("XADD")
            .arg(&self.keys.wake)
            .arg("MAXLEN")
            .arg(1)
            .arg("*")
            .arg("w")
            .arg(1)
            .query_async(&mut self.conn())
            .await;
        if let Err(e) = r {
            // The reader picks the topic up at its next XREAD anyway, within BLOCK.
            tracing::debug!(error = %e, "could not wake the Redis reader");
        }
    }

    /// The local topic for a new cursor, made ready (status read), with the cursor counted.
    async fn hold(self: &Arc<Self>, topic: &TopicId) -> Result<Holder, FeedError> {
        let local = {
            let mut map = self.local.lock().expect("local topics lock");
            let local = map
                .entry(topic.clone())
                .or_insert_with(|| {
                    Arc::new(LocalTopic {
                        id: topic.clone(),
                        key: self.keys.stream(topic),
                        state: Mutex::new(LocalState {
                            ready: false,
                            ring: Ring::new(self.config.history, 0),
                            finished: None,
                            holders: 0,
                            cursors: OpenCursors::default(),
                        }),
                        changed: watch::Sender::new(()),
                    })
                })
                .clone();
            local.state.lock().expect("topic lock").holders += 1;
            local
        };
        // From here on the holder takes the topic out of the map again if this fails.
        let holder = Holder {
            shared: self.clone(),
            local,
        };
        let ready = holder.local.state.lock().expect("topic lock").ready;
        if !ready {
            // In the map before the status is read: a finish that comes in between is
            // applied by the reader to this state, not missed.
            let status = self.status(topic).await?;
            {
                let mut st = holder.local.state.lock().expect("topic lock");
                if !st.ready {
                    st.ready = true;
                    st.ring.reset(status.last_seq);
                    if status.finished {
                        st.finished = Some(status.last_seq);
                    }
                }
            }
            self.wake_reader().await;
        }
        Ok(holder)
    }
}

/// A cursor's claim on its local topic; the last one to go takes the topic out of the map,
/// and out of the reader's `XREAD`.
struct Holder {
    shared: Arc<Shared>,
    local: Arc<LocalTopic>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let Ok(mut map) = self.shared.local.lock() else {
            return;
        };
        let Ok(mut st) = self.local.state.lock() else {
            return;
        };
        st.holders -= 1;
        if st.holders == 0 {
            if let Some(current) = map.get(&self.local.id) {
                if Arc::ptr_eq(current, &self.local) {
                    map.remove(&self.local.id);
                }
            }
        }
    }
}

#[async_trait]
impl Backend for RedisBackend {
    async fn append(
        &self,
        topic: &TopicId,
        lines: Vec<NewLine>,
    ) -> Result<AppendReceipt, FeedError> {
        let s = &self.shared;
        let mut call = s.on_topic(&s.scripts.append, topic);
        call.key(&s.keys.topics)
            .arg(s.config.history)
            .arg(s.config.max_topics)
            .arg(topic.to_string())
            .arg(now_ms());
        for line in &lines {
            call.arg(line.ts).arg(&line.text);
        }
        let v: Value = call
            .invoke_async(&mut s.conn())
            .await
            .map_err(|e| backend_error("append", e))?;
        let v = array(v)?;
        match int_at(&v, 0)? {
            1 => Ok(AppendReceipt {
                first_seq: int_at(&v, 1)?,
                last_seq: int_at(&v, 2)?,
            }),
            2 => Err(FeedError::Finished(topic.clone())),
            3 => Err(FeedError::TooManyTopics(s.config.max_topics)),
            n => Err(backend_error("append", format!("unexpected code {n}"))),
        }
    }

    async fn open(&self, topic: &TopicId, next_seq: u64) -> Result<TopicStatus, FeedError> {
        let s = &self.shared;
        let v: Value = s
            .on_topic(&s.scripts.open, topic)
            .key(&s.keys.topics)
            .arg(next_seq)
            .arg(s.config.max_topics)
            .arg(topic.to_string())
            .arg(now_ms())
            .invoke_async(&mut s.conn())
            .await
            .map_err(|e| backend_error("open", e))?;
        let v = array(v)?;
        if int_at(&v, 0)? == 3 {
            return Err(FeedError::TooManyTopics(s.config.max_topics));
        }
        parse_status(&v)?.ok_or_else(|| backend_error("open", "no status"))
    }

    async fn finish(&self, topic: &TopicId) -> Result<TopicStatus, FeedError> {
        let s = &self.shared;
        let v: Value = s
            .on_topic(&s.scripts.finish, topic)
            .key(&s.keys.control)
            .arg(topic.to_string())
            .arg(CONTROL_MAXLEN)
            .invoke_async(&mut s.conn())
            .await
            .map_err(|e| backend_error("finish", e))?;
        let status =
            parse_status(&array(v)?)?.ok_or_else(|| FeedError::UnknownTopic(topic.clone()))?;
        // This instance's subscribers at once; the others (and this one's reader again,
        // harmlessly) through the control stream.
        let local = s
            .local
            .lock()
            .expect("local topics lock")
            .get(topic)
            .cloned();
        if let Some(local) = local {
            mark_finished(&local, status.last_seq);
        }
        Ok(status)
    }

    async fn status(&self, topic: &TopicId) -> Result<TopicStatus, FeedError> {
        self.shared.status(topic).await
    }

    async fn read(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<ReadBatch, FeedError> {
        let (status, lines) = self.shared.read_raw(topic, after, limit).await?;
        check_cursor(topic, &status, after)?;
        Ok(ReadBatch { lines, status })
    }

    async fn subscribe(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        max_batch: usize,
    ) -> Result<Subscription, FeedError> {
        let holder = self.shared.hold(topic).await?;
        // Subscribe to changes before checking the cursor, as the memory backend does.
        let mut changed = holder.local.changed.subscribe();
        changed.mark_changed();
        let status = self.shared.status(topic).await?;
        let after = check_cursor(topic, &status, after)?;
        let id = holder
            .local
            .state
            .lock()
            .expect("topic lock")
            .cursors
            .open();
        let cursor = Cursor {
            holder,
            position: Position::new(id, after, changed, max_batch),
        };
        Ok(cursor::subscription(cursor))
    }

    async fn topics(&self) -> Vec<TopicId> {
        let s = &self.shared;
        let names: Vec<String> = match redis::cmd("SMEMBERS")
            .arg(&s.keys.topics)
            .query_async(&mut s.conn())
            .await
        {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "could not list topics from Redis");
                return Vec::new();
            }
        };
        let mut ids: Vec<TopicId> = names
            .iter()
            .filter_map(|n| TopicId::parse(n).ok())
            .collect();
        ids.sort();
        ids
    }

    async fn disconnect(&self, topic: &TopicId, fraction: f64) -> Result<Disconnected, FeedError> {
        let s = &self.shared;
        s.status(topic).await?;
        let request = random_hex();
        let reply_key = s.keys.reply(&request);
        let mut conn = s.conn();
        let heartbeats: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(&s.keys.instances)
            .query_async(&mut conn)
            .await
            .map_err(|e| backend_error("disconnect", e))?;
        let fresh_since = now_ms().saturating_sub(HEARTBEAT_FRESH.as_millis() as u64);
        let gone_since = now_ms().saturating_sub(WAKE_TTL.as_millis() as u64);
        let gone: Vec<&String> = heartbeats
            .iter()
            .filter(|(_, at)| **at < gone_since)
            .map(|(id, _)| id)
            .collect();
        if !gone.is_empty() {
            // Instances silent for a minute are gone; forget them.
            let _: redis::RedisResult<()> = redis::cmd("HDEL")
                .arg(&s.keys.instances)
                .arg(gone)
                .query_async(&mut conn)
                .await;
        }
        let instances = heartbeats
            .iter()
            .filter(|(id, at)| **at >= fresh_since || **id == s.instance)
            .count()
            .max(1);
        let _: String = redis::cmd("XADD")
            .arg(&s.keys.control)
            .arg("MAXLEN")
            .arg("~")
            .arg(CONTROL_MAXLEN)
            .arg("*")
            .arg("kind")
            .arg("disconnect")
            .arg("topic")
            .arg(topic.to_string())
            .arg("fraction")
            .arg(fraction.to_string())
            .arg("request")
            .arg(&request)
            .query_async(&mut conn)
            .await
            .map_err(|e| backend_error("disconnect", e))?;
        let deadline = tokio::time::Instant::now() + DISCONNECT_WAIT;
        let answers: Vec<String> = loop {
            let answers: Vec<String> = redis::cmd("LRANGE")
                .arg(&reply_key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(|e| backend_error("disconnect", e))?;
            if answers.len() >= instances || tokio::time::Instant::now() >= deadline {
                break answers;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if answers.len() < instances {
            tracing::warn!(%topic, answered = answers.len(), instances, "not every instance answered the disconnect in time");
        }
        let mut total = Disconnected {
            dropped: 0,
            open: 0,
        };
        for a in &answers {
            let mut parts = a.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
            total.dropped += parts.next().unwrap_or(0);
            total.open += parts.next().unwrap_or(0);
        }
        Ok(total)
    }
}

fn mark_finished(local: &LocalTopic, last: u64) {
    local.state.lock().expect("topic lock").finished = Some(last);
    local.changed.send_replace(());
}

/// Drops the oldest `fraction` of this instance's subscriptions of a topic.
fn drop_local(local: &LocalTopic, fraction: f64) -> Disconnected {
    let report = local
        .state
        .lock()
        .expect("topic lock")
        .cursors
        .cut_oldest(fraction);
    if report.dropped > 0 {
        local.changed.send_replace(());
    }
    report
}

/// The instance's one blocking reader: see the module docs.
async fn read_loop(shared: Weak<Shared>, client: redis::Client, mut control_id: String) {
    let mut wake_id = "0-0".to_string();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = BACKOFF_MIN;
    let mut last_heartbeat = tokio::time::Instant::now();
    loop {
        let Some(s) = shared.upgrade() else {
            return;
        };
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
                match client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "Redis reader cannot connect; retrying");
                        drop(s);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
            last_heartbeat = tokio::time::Instant::now();
            // The wake key expires if this instance goes away for good (ids are random, so
            // a restarted server never reads an old one).
            let _: redis::RedisResult<()> = redis::pipe()
                .cmd("HSET")
                .arg(&s.keys.instances)
                .arg(&s.instance)
                .arg(now_ms())
                .ignore()
                .cmd("PEXPIRE")
                .arg(&s.keys.wake)
                .arg(WAKE_TTL.as_millis() as u64)
                .ignore()
                .query_async(&mut c)
                .await;
        }
        let topics: Vec<(Arc<LocalTopic>, u64)> = {
            let map = s.local.lock().expect("local topics lock");
            map.values()
                .filter_map(|t| {
                    let st = t.state.lock().expect("topic lock");
                    st.ready.then(|| (t.clone(), st.ring.last_seq()))
                })
                .collect()
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&s.keys.control)
            .arg(&s.keys.wake);
        for (t, _) in &topics {
            cmd.arg(&t.key);
        }
        cmd.arg(&control_id).arg(&wake_id);
        for (_, last) in &topics {
            cmd.arg(format!("0-{last}"));
        }
        let reply: Option<StreamReadReply> = match cmd.query_async(&mut c).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "Redis reader failed; reading on after a pause");
                drop(s);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        conn = Some(c);
        let Some(reply) = reply else {
            continue;
        };
        for key in reply.keys {
            if key.key == s.keys.control {
                for entry in &key.ids {
                    control_id = entry.id.clone();
                    handle_control(&s, &entry.map).await;
                }
            } else if key.key == s.keys.wake {
                if let Some(last) = key.ids.last() {
                    wake_id = last.id.clone();
                }
            } else if let Some((t, _)) = topics.iter().find(|(t, _)| t.key == key.key) {
                let lines = key.ids.iter().filter_map(|e| line_of(&t.id, e));
                let fed = t.state.lock().expect("topic lock").feed(lines);
                if fed {
                    t.changed.send_replace(());
                }
            }
        }
    }
}

fn field<'a>(map: &'a HashMap<String, Value>, name: &str) -> Option<&'a str> {
    map.get(name).and_then(bulk_str)
}

fn line_of(topic: &TopicId, e: &redis::streams::StreamId) -> Option<Arc<Line>> {
    let seq = seq_of_id(&e.id);
    let ts = field(&e.map, "ts").and_then(|s| s.parse::<u64>().ok());
    let text = field(&e.map, "text");
    match (seq, ts, text) {
        (Some(seq), Some(ts), Some(text)) => Some(Arc::new(Line::new(seq, ts, text))),
        _ => {
            tracing::warn!(%topic, id = %e.id, "skipping a malformed stream entry");
            None
        }
    }
}

async fn handle_control(s: &Shared, map: &HashMap<String, Value>) {
    let Some(topic) = field(map, "topic").and_then(|t| TopicId::parse(t).ok()) else {
        return;
    };
    let local = s
        .local
        .lock()
        .expect("local topics lock")
        .get(&topic)
        .cloned();
    match field(map, "kind") {
        Some("finish") => {
            if let (Some(local), Some(last)) =
                (local, field(map, "last").and_then(|l| l.parse().ok()))
            {
                mark_finished(&local, last);
            }
        }
        Some("disconnect") => {
            let fraction = field(map, "fraction")
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0);
            let report = local.map_or(
                Disconnected {
                    dropped: 0,
                    open: 0,
                },
                |l| drop_local(&l, fraction),
            );
            if let Some(request) = field(map, "request") {
                let key = s.keys.reply(request);
                let r: redis::RedisResult<()> = redis::pipe()
                    .cmd("RPUSH")
                    .arg(&key)
                    .arg(format!("{} {}", report.dropped, report.open))
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(30_000)
                    .ignore()
                    .query_async(&mut s.conn())
                    .await;
                if let Err(e) = r {
                    tracing::warn!(%topic, error = %e, "could not answer a disconnect");
                }
            }
        }
        _ => {}
    }
}

/// One subscriber's position, on one instance.
struct Cursor {
    holder: Holder,
    position: Position,
}

impl Subscriber for Cursor {
    fn position(&self) -> &Position {
        &self.position
    }

    fn close(&self) {
        if let Ok(mut st) = self.holder.local.state.lock() {
            st.cursors.close(self.position.id);
        }
    }

    async fn step(&mut self) -> Option<Delivery> {
        let mut backoff = BACKOFF_MIN;
        while self.position.changed().await {
            let step = {
                let st = self.holder.local.state.lock().expect("topic lock");
                self.position.step(&st.ring, &st.cursors, st.finished)
            };
            match self.position.take(step) {
                Taken::Yield(delivery) => return delivery,
                Taken::Wait => {}
                Taken::BeforeRing { oldest_seq } => {
                    // Lines `after + 1 ..= upto` are older than the ring: read them from Redis.
                    let upto = oldest_seq - 1;
                    let limit = self
                        .position
                        .max_batch
                        .min((upto - self.position.after) as usize);
                    let topic = &self.holder.local.id;
                    match self
                        .holder
                        .shared
                        .read_raw(topic, Some(self.position.after), limit)
                        .await
                    {
                        Ok((status, lines)) => {
                            self.position.mark_changed();
                            match lines.first() {
                                Some(first) if first.seq == self.position.after + 1 => {
                                    let lines: Vec<_> =
                                        lines.into_iter().take_while(|l| l.seq <= upto).collect();
                                    self.position.after =
                                        lines.last().map_or(self.position.after, |l| l.seq);
                                    return Some(Delivery::Lines(lines));
                                }
                                first => {
                                    self.position.done = true;
                                    let oldest = first
                                        .map_or(status.oldest_seq, |l| l.seq)
                                        .max(self.position.after + 2);
                                    tracing::debug!(%topic, after = self.position.after, "subscriber lagged");
                                    return Some(Delivery::Lagged {
                                        missing_from: self.position.after + 1,
                                        oldest_seq: oldest,
                                    });
                                }
                            }
                        }
                        Err(FeedError::UnknownTopic(_)) => {
                            // Redis lost the topic (restarted without its data): what this
                            // cursor needs is gone.
                            self.position.done = true;
                            return Some(Delivery::Lagged {
                                missing_from: self.position.after + 1,
                                oldest_seq: upto + 1,
                            });
                        }
                        Err(e) => {
                            tracing::debug!(%topic, error = %e, ?backoff, "history read failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                            self.position.mark_changed();
                        }
                    }
                }
            }
        }
        None
    }
}
