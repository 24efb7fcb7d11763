//! Limits. Each says why it exists; the README repeats them.

use std::time::Duration;

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
/// Most `http2.streams_per_connection`: feed-server's HTTP/2 `max_concurrent_streams` per
/// connection (more streams on one connection would be refused by the server).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 1000;
/// Most repetitions of each transport: far beyond what a verdict needs, and a bound on how
/// long a typo can make a run.
pub const MAX_REPEAT: u32 = 100;
