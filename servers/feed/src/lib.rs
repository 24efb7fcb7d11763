//! The log feed that every pushbench transport serves.
//!
//! pushbench compares Server-Sent Events, WebSocket and HTTP polling. To make the comparison
//! fair, everything that is not framing lives here, once: topic names, the line payload, the
//! history ring, live fan-out, the lag policy, the open-loop generator, metrics and shutdown.
//! A transport crate only turns a [`Subscription`] into bytes on its socket.
//!
//! # Layout
//! - [`topic`]: [`TopicId`], the CI build-step a log belongs to, and its validation
//!   (re-exported from `pushbench_protocol`, the wire contract servers and clients share:
//!   topic ids, the payload, routes, transports, close codes, event names).
//! - [`line`]: [`Line`], one log line with its `seq`, scheduled `ts` and pre-encoded JSON.
//! - [`backend`]: the [`Backend`] trait (append, finish, read, subscribe, disconnect) and the
//!   [`Subscription`] stream with its [`Delivery`] items. Implemented in memory and on
//!   Redis Streams.
//! - [`memory`]: [`MemoryBackend`], the in-process hub: one bounded history ring per topic that
//!   is also the live fan-out buffer.
//! - `redis` (feature `redis`): `RedisBackend`, the same trait on Redis Streams, for several
//!   server instances over one feed: seqs assigned by a Lua script, one blocking `XREAD` per
//!   instance fanned out in-process, finish and disconnect through a control stream (design
//!   and measured memory cost in its module docs).
//! - `cursor` (private): what both backends' subscribers share: the ring of recent lines, the
//!   open cursors a disconnect picks from, the cursor check and a cursor's next step.
//! - [`generator`]: an open-loop generator that stamps each line with the time it was *scheduled*,
//!   so a late generator shows up as latency instead of being hidden.
//! - [`metrics`]: counters and gauges per transport, rendered in the Prometheus text format, and
//!   the connection limit.
//! - [`shutdown`]: [`Shutdown`], the signal every open stream listens to.
//! - [`clock`]: Unix-nanosecond wall time, the one clock publishers and receivers share.
//! - `http` (feature `axum`): what the axum transport crates share: the topic path extractor,
//!   query parsing, error responses, token auth and CORS.
//! - [`FeedContext`]: the backend, metrics and shutdown bundle each transport router takes.
//!
//! # Lag policy
//! Subscribers do not get a private queue. Each one keeps a cursor into its topic's history
//! ring, which is shared by all subscribers and bounded (`history` lines per topic). A subscriber
//! that falls behind is therefore resynchronised from history for free: when it wakes up it reads
//! everything after its cursor, in batches. Only when the ring has already dropped lines the
//! subscriber never saw can it not catch up: it then gets [`Delivery::Lagged`], naming the first
//! missing seq and the oldest one still held, and its stream ends. Transports turn that into a
//! reason the client can see (an SSE `event: lagged`, a WebSocket close code, a poll `410 Gone`).
//! Memory per subscriber is thus a cursor and a waker, whatever the backlog; a slow socket only
//! slows its own cursor, never the publisher or the other subscribers.
//!
//! A cursor older than history, whether a slow consumer lagged or a server restarted without
//! its history ([`Backend::open`] continues a topic's numbering after a restart, so seqs never
//! start again at 1), is [`FeedError::HistoryTruncated`] when a client resumes with it, which
//! every transport answers `410 Gone` with the JSON body `{"error":"...","oldest_seq":M}`. The
//! client resumes after `M - 1` (the oldest held line and on) and reports the lines between its
//! cursor and `M` as gone. A stream that lags while open says the same in its own framing:
//! SSE `event: lagged` with `data: {"missing_from":N,"oldest_seq":M}`, WebSocket close 4008 with
//! the reason `lagged: seq N is gone, oldest is M`.
#![forbid(unsafe_code)]

pub mod backend;
pub mod clock;
mod cursor;
pub mod generator;
#[cfg(feature = "axum")]
pub mod http;
pub mod line;
pub mod memory;
pub mod metrics;
#[cfg(feature = "redis")]
pub mod redis;
pub mod shutdown;
pub mod topic;

pub use backend::{
    AppendReceipt, Backend, Delivery, Disconnected, FeedError, ReadBatch, SharedBackend,
    Subscription, TopicStatus,
};
pub use line::Line;
pub use memory::MemoryBackend;
pub use metrics::{ConnectionGuard, Metrics, Transport};
pub use shutdown::Shutdown;
pub use topic::TopicId;

use std::sync::Arc;

/// What every transport router needs from the server it is mounted in: the feed, the counters
/// and the shutdown signal. Cheap to clone.
#[derive(Clone)]
pub struct FeedContext {
    pub backend: SharedBackend,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
}

impl FeedContext {
    /// An in-memory feed with default limits, for tests and embedding examples.
    pub fn in_memory() -> Self {
        FeedContext {
            backend: Arc::new(MemoryBackend::default()),
            metrics: Metrics::new(u64::MAX),
            shutdown: Shutdown::new(),
        }
    }
}
