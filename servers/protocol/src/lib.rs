//! The pushbench protocol contract: every fact that a feed server, the raw fan-out baseline,
//! the load generator and the tests must agree on, written once.
//!
//! Before this crate, each side spelt the contract out for itself: the servers' routers and the
//! load generator both wrote `/{topic}/logs/events`, the load generator mapped its transports
//! to feed-server's `--transport` names by hand, rebuilt the generator's topic names from the
//! generator's defaults, and decoded the payload with its own copies of the field names. A
//! change on one side would have compiled and silently broken the other. Now both sides call
//! into this crate, and its unit tests pin the literal wire values (so a change here is a
//! deliberate, visible change of the wire, never a drift).
//!
//! It holds data and pure functions only. Dependencies are serde and serde_json (the payload
//! *is* JSON); no tokio, no axum, no HTTP stack, so any client, server or test can use it.
//!
//! # Contents
//! - [`topic`]: [`TopicId`], the build step a log belongs to
//!   (`{org}/{repo}/builds/{build}/steps/{step}`), and its validation.
//! - [`payload`]: the line payload `{"seq":N,"ts":UNIX_NANOS,"line":"..."}` every transport
//!   carries: [`LinePayload`] (serialise side, and a decode side that borrows the text when it
//!   can), [`LineStamp`] (decodes `seq` and `ts` only, skipping the text) and [`LineText`]
//!   (the text only), and [`encode_line`], the one encoder.
//! - [`route`]: the HTTP routes: [`Route`] (the `…/logs` resources and their suffixes),
//!   [`Route::path`] for `/{topic}/logs/...`, [`Route::pattern`] for routers,
//!   [`Route::topic_of`] for servers that parse paths by hand, `/healthz`, `/metrics` and
//!   `/_pushbench/time`.
//! - [`query`]: query parameter names (`after`, `limit`, `wait`, `lastEventId`, `token`).
//! - [`transport`]: [`Transport`] (what a server serves: the names feed-server's
//!   `--transport` accepts) and [`ClientTransport`] (how a client reads: adds long-poll).
//! - [`sse`]: event names (`end`, `lagged`, `message`) and the content type.
//! - [`ws`]: WebSocket close codes.
//! - [`poll`]: the poll answer [`PollAnswer`] (`{"lines":[...],"next":N,"last_seq":N,
//!   "finished":B}`) and [`poll::encode_answer`], which splices pre-encoded lines into it.
//! - [`time`]: the answer of `GET /_pushbench/time`, [`ServerTime`] (`{"unix_ns":N}`), from
//!   which a load generator on another machine measures its clock offset to the server.
//! - [`generated`]: how the built-in generator names its topics (`--gen-topics`), one
//!   function both the generator and the load generator call.
//!
//! # Two transport enums, one mapping
//! A server serves three transports: SSE, WebSocket and polling. Long-polling is not a fourth
//! route: it is a poll with `wait=`, a client-side choice the server only sees as a
//! parameter. Folding `LongPoll` into the server's enum would give the server a variant it can
//! never tell apart (its metrics are kept per served transport), and dropping it from the
//! client's would lose a distinction every report makes. So there are two enums, both here:
//! [`Transport`] (server side: `sse`, `ws`, `poll`) and [`ClientTransport`] (client side,
//! the names scenario files and results use: `sse`, `ws`, `poll`, `long-poll`), and the
//! mapping between them is one function, [`ClientTransport::served_by`]. Routes hang off the
//! server side ([`Transport::route`]), so a client finds its route through that mapping.
#![forbid(unsafe_code)]

pub mod generated;
pub mod payload;
pub mod poll;
pub mod query;
pub mod route;
pub mod sse;
pub mod time;
pub mod topic;
pub mod transport;
pub mod ws;

pub use payload::{encode_line, LinePayload, LineStamp, LineText};
pub use poll::PollAnswer;
pub use route::Route;
pub use time::ServerTime;
pub use topic::{TopicError, TopicId};
pub use transport::{ClientTransport, Transport};
