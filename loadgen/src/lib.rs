//! pushbench's load generator.
//!
//! Runs a scenario (clients, feed, transports) against `feed-server`, or against any push
//! server a scenario's `[target]` names (docs/external-targets.md), and records what each
//! transport costs: delivery latency, handshake time, wire bytes, server memory and CPU, and
//! every event lost, duplicated or out of order.
//!
//! # Layout (one module per concern, as in oha)
//! - [`scenario`]: the scenario file schema, its validation and sweeps; a folder of limits,
//!   errors, loading, raw types, resolution (one module per section) and sweeps.
//! - [`orchestrate`]: starting, pinning and stopping the server under test.
//! - [`cluster`]: a `[deployment]`'s other processes (redis-server, the publisher, instances,
//!   nginx), the faults that kill and restart them, and their cost per role.
//! - [`run`]: one transport's run, from server start to merged figures. A folder: `plan`
//!   (server arguments, topics, client specs, [`run::Timeline`]), `target` (the server under
//!   test), `collector` (worker messages → time series), and [`run::summarize`], the pure
//!   function from [`run::Measurements`] to a run's figures, problems and warnings.
//! - [`worker`]: worker threads, each a single-threaded runtime owning its clients' [`stats`];
//!   HTTP/2 connection groups are dealt to workers whole.
//! - [`clients`]: the SSE, WebSocket and polling clients; they turn bytes into `{seq, ts}`.
//!   [`clients::h2`] is the HTTP/2 ones (`sse-h2`, `poll-h2`, `long-poll-h2`): clients
//!   grouped `http2.streams_per_connection` at a time share one lazily opened h2 connection
//!   (the `h2` crate), each still one stream with its own counters.
//!   [`clients::failure`] names every way a session fails and the kind it is counted as.
//!   [`clients::socket`] is the counted (plain or TLS) socket under all of them, whose bytes
//!   are settled into the stats however a session ends.
//! - [`endpoint`]: where clients connect (feed-server routes or external URL templates).
//! - [`http1`]: the minimal HTTP/1.1 client under SSE and polling.
//! - [`sse_parser`]: an incremental WHATWG `text/event-stream` parser.
//! - [`wire`]: byte counting at the socket, TCP_INFO, source addresses.
//! - [`tls`]: the rustls configuration of `https://` and `wss://` targets (ALPN `h2` for the
//!   HTTP/2 clients).
//! - [`record`]: HdrHistograms, counters and per-client seq tracking; merging; `.hgrm` output.
//!   A folder: histogram, seq, counters, recorder, interval, output (`.hlog`, `.hgrm`).
//! - [`stats`]: a worker's recorder plus connection bookkeeping.
//! - [`control`]: what the orchestrator tells workers (measure window, final seqs, stop).
//! - [`monitor`]: CPU, memory and descriptors from /proc.
//! - [`clock`]: the clock offset to the server (an NTP-style exchange with feed-server's
//!   `GET /_pushbench/time`), for shards on other machines: [`clock::measure_offset`].
//! - [`controlplane`]: control-plane HTTP through reqwest: finishing steps, health checks.
//! - [`faults`]: the fault-injecting TCP proxy between clients and server (the network kinds
//!   of `[[faults]]`): `mod` the fault, selection and counter types, `proxy` the proxy.
//! - [`publisher`]: the open-loop publisher for external targets, and its line markers.
//! - [`shard`]: load from several machines: `--shard I/N` splits the clients, `--start-at`
//!   aligns the shards' phases, [`shard::record`] is what each shard writes to be merged, and
//!   [`shard::merge`] (`pushbench merge`) adds the shards' histograms and counters into one
//!   run and calls the same [`run::summarize`].
//! - [`error`]: how errors become text (each cause once).
//! - [`results`]: the results folder and the versioned `summary.json`.
//! - [`progress`], [`printer`]: what a person sees during and after a run.
//! - [`report`]: charts (PNG, SVG), the verdict table, `report.md` and `report.html`.
//!   [`report::charts`] is a folder: chart descriptions, drawing, one module per chart family.
//!
//! The crate denies `unsafe` (a workspace lint, see the root Cargo.toml) except in one place:
//! reading TCP_INFO in [`wire`].

pub mod clients;
pub mod clock;
pub mod cluster;
pub mod control;
pub mod controlplane;
pub mod endpoint;
pub mod error;
pub mod faults;
pub mod http1;
pub mod monitor;
pub mod orchestrate;
pub mod printer;
pub mod progress;
pub mod publisher;
pub mod record;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod sse_parser;
pub mod stats;
pub mod tls;
pub mod wire;
pub mod worker;
