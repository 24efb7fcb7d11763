//! The HTTP/2 clients (`sse-h2`, `poll-h2`, `long-poll-h2`): many clients' streams on one
//! TCP connection, through the `h2` crate.
//!
//! # Connection groups
//! Clients are grouped `http2.streams_per_connection` at a time ([`group_of`]); a group is an
//! [`H2Group`], shared by its clients on one worker (the worker deals groups whole). The first
//! client that needs the group's connection opens it: TCP over the counted socket
//! ([`super::socket::MeasuredSocket`], so wire bytes are the connection's, both directions,
//! cross-checked with TCP_INFO when it closes), TLS when the target is `https://` or
//! `http2.tls` is set (ALPN `h2` only, and an answer other than `h2` is a failed connect),
//! then the h2 handshake. A local task drives the `h2::client::Connection`; clients hold
//! clones of its `SendRequest`. When the connection dies, every stream on it fails (each
//! client counts a disconnect with its reason) and the next client to reconnect opens a new
//! one.
//!
//! Each client is still one stream with its own counters: `sse-h2` one long GET whose DATA
//! frames go through the same [`super::sse::EventReader`] as HTTP/1.1's; `poll-h2` and
//! `long-poll-h2` one stream per poll, through the same [`super::poll::poll_loop`].
//!
//! # Connect time
//! Only the client that opened the connection records connect time: TCP (+ TLS) + h2
//! handshake + its first response head, comparable with an HTTP/1.1 client's handshake. A
//! client joining an open connection records none ([`super::ConnectStart::Joined`]): its
//! short wait for its stream's answer would make connect time look cheaper the more clients
//! share a connection; it is in its time to first event. So the connect histogram has one
//! sample per connection opened (summary: `connect_time = "opened-connections"`).
//! Polling keeps its HTTP/1.1 rule ([`super::poll`]): a short poll's connect time runs to its
//! first answer; a long poll's first answer may be held until a line is published, so its
//! connect time is the connection's alone.
//!
//! # Settings (chosen for many long-lived streams)
//! - stream window [`STREAM_WINDOW`] (1 MiB): a burst to one viewer never waits for a
//!   WINDOW_UPDATE round trip;
//! - connection window [`CONNECTION_WINDOW`] (16 MiB): all streams share it, and the default
//!   65,535 bytes stalls a connection of 50+ SSE streams;
//! - concurrent streams: as many as the server allows (its SETTINGS; feed-server's 1000); a
//!   stream beyond it waits in `SendRequest::ready`;
//! - no server push. Capacity is released as soon as a DATA frame has been read.
//!
//! Churn works (a leaving client resets its stream; the connection stays for the others). A
//! `slow_consumers` fault is refused for h2 transports by the scenario: its read limit is one
//! client's, the socket is many clients'.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use pushbench_protocol::sse::CONTENT_TYPE;
use tokio::time::Instant;

use super::failure::{SessionError, Step};
use super::poll::{poll_loop, PollExchange, PollReply, MAX_BODY_BYTES};
use super::socket::ClientStream;
use super::sse::{check_event_stream, error_answer, resume_id, EventReader, ERROR_BODY_MAX};
use super::{leave, now_ns, open_session, ClientSpec, ClientState, ConnectStart, SessionEnd};
use crate::control::RunControl;
use crate::stats::Stats;

/// Each stream's receive window.
pub const STREAM_WINDOW: u32 = 1024 * 1024;
/// The connection's receive window, shared by all its streams.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The connection group of client `index` (its place among the run's clients).
pub fn group_of(index: u32, streams_per_connection: u32) -> u32 {
    index / streams_per_connection.max(1)
}

/// Where an HTTP/2 client's streams go: its connection group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Place {
    pub group: u32,
}

/// A live connection of a group.
struct Live {
    send: SendRequest<Bytes>,
    /// Set by the connection task when the connection ends.
    closed: Rc<Cell<bool>>,
}

/// A connection group's shared connection, opened lazily (see the module doc).
#[derive(Default)]
pub struct H2Group {
    /// Locked while a client opens the connection, so the others wait for it, not open more.
    live: tokio::sync::Mutex<Option<Live>>,
    /// The tasks driving this group's connections (each owns its socket).
    tasks: RefCell<Vec<tokio::task::JoinHandle<()>>>,
}

/// A stream sender and how it was had.
struct Sender {
    send: SendRequest<Bytes>,
    /// The connection's closed flag: which connection this is.
    closed: Rc<Cell<bool>>,
    /// When this session's connect began (before TCP) if it opened the connection.
    started: ConnectStart,
}

impl H2Group {
    pub fn new() -> Self {
        H2Group::default()
    }

    /// Closes the group's connections: drops the senders and the tasks driving them (their
    /// sockets settle their bytes). Called by the worker once all its clients have ended.
    pub async fn close(&self) {
        self.live.lock().await.take();
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// The group's connection, opened if there is none (or it died): `Err` is how the
    /// session ends when it cannot be opened (counted as a connect error).
    async fn sender(
        &self,
        spec: &ClientSpec,
        state: &mut ClientState,
        stats: &Rc<RefCell<Stats>>,
    ) -> Result<Sender, SessionEnd> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref().filter(|l| !l.closed.get()) {
            state.session_start_ns = now_ns();
            return Ok(Sender {
                send: l.send.clone(),
                closed: l.closed.clone(),
                started: ConnectStart::Joined,
            });
        }
        *live = None;
        let (stream, started) = open_session(spec, state, stats).await?;
        if let ClientStream::Tls(tls) = &stream {
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            if alpn.as_deref() != Some(b"h2") {
                return Err(stats.borrow_mut().connect_failed(SessionError::NotH2Alpn(
                    alpn.map(|p| String::from_utf8_lossy(&p).into_owned()),
                )));
            }
        }
        let handshake = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(stream)
            .await;
        let (send, connection) = match handshake {
            Ok(pair) => pair,
            Err(source) => {
                return Err(stats.borrow_mut().connect_failed(SessionError::Http2 {
                    step: Step::Handshake,
                    source,
                }))
            }
        };
        let closed = Rc::new(Cell::new(false));
        let task = {
            let closed = closed.clone();
            tokio::task::spawn_local(async move {
                // Its error reaches every stream on it; each client counts its own.
                let _ = connection.await;
                closed.set(true);
            })
        };
        {
            let mut tasks = self.tasks.borrow_mut();
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
        *live = Some(Live {
            send: send.clone(),
            closed: closed.clone(),
        });
        Ok(Sender {
            send,
            closed,
            started: started.into(),
        })
    }

    /// Marks the connection whose flag is `closed` dead (a request could not be sent on it):
    /// the next client opens a new one. A connection opened since by another client stays.
    async fn forget(&self, closed: &Rc<Cell<bool>>) {
        closed.set(true);
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|l| Rc::ptr_eq(&l.closed, closed)) {
            *live = None;
        }
    }

    /// Sends a GET of `path_and_query` with `headers` on a stream of the group's connection
    /// and waits for the response head. `Err(end)` when no stream could be had.
    async fn get(
        &self,
        spec: &ClientSpec,
        state: &mut ClientState,
        stats: &Rc<RefCell<Stats>>,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<(http::Response<RecvStream>, ConnectStart), SessionEnd> {
        let Sender {
            send,
            closed,
            started,
        } = self.sender(spec, state, stats).await?;
        let request = build_get(spec, path_and_query, headers)
            .map_err(|e| stats.borrow_mut().connect_failed(e))?;
        match send_get(send, request).await {
            Ok(response) => Ok((response, started)),
            Err((step, source)) => {
                if step == Step::Send {
                    self.forget(&closed).await;
                }
                Err(stats
                    .borrow_mut()
                    .connect_failed(SessionError::Http2 { step, source }))
            }
        }
    }
}

/// A GET request: scheme and authority from the spec, the path as given.
fn build_get(
    spec: &ClientSpec,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<http::Request<()>, SessionError> {
    let scheme = if spec.tls.is_some() { "https" } else { "http" };
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(spec.host.as_str())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| SessionError::BadRequest(e.to_string()))?;
    let mut request = http::Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(())
        .map_err(|e| SessionError::BadRequest(e.to_string()))
}

/// Sends a bodiless request on a new stream and waits for its response head.
async fn send_get(
    send: SendRequest<Bytes>,
    request: http::Request<()>,
) -> Result<http::Response<RecvStream>, (Step, h2::Error)> {
    let mut send = send.ready().await.map_err(|e| (Step::Send, e))?;
    let (response, _body) = send
        .send_request(request, true)
        .map_err(|e| (Step::Send, e))?;
    response.await.map_err(|e| (Step::Response, e))
}

/// Reads a response body to its end, at most `max` bytes, releasing flow-control capacity as
/// it goes.
async fn read_all(body: &mut RecvStream, max: usize) -> Result<Vec<u8>, SessionError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|source| SessionError::Http2 {
            step: Step::ResponseBody,
            source,
        })?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if out.len() + chunk.len() > max {
            return Err(SessionError::BodyTooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// One `sse-h2` session: a GET of the event stream on a stream of the group's connection.
pub async fn sse_session(
    group: &H2Group,
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &Rc<RefCell<Stats>>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> SessionEnd {
    let resume = resume_id(spec, state);
    let mut headers = vec![("accept", CONTENT_TYPE)];
    if let Some(id) = resume.as_deref() {
        headers.push(("last-event-id", id));
    }
    let (response, started) = match group.get(spec, state, stats, &spec.path, &headers).await {
        Ok(r) => r,
        Err(end) => return end,
    };
    let (head, mut body) = response.into_parts();
    match head.status.as_u16() {
        200 => {}
        // The client already has the whole finished step.
        204 => {
            state.connected(stats, started);
            return SessionEnd::Finished;
        }
        status => {
            let text = read_all(&mut body, ERROR_BODY_MAX)
                .await
                .unwrap_or_default();
            return error_answer(stats, status, &text);
        }
    }
    let content_type = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Err(end) = check_event_stream(stats, content_type) {
        return end;
    }
    state.connected(stats, started);
    stats.borrow_mut().connection_opened();
    let end = stream_events(&mut body, spec, state, stats, control, leave_at).await;
    stats.borrow_mut().connection_closed();
    match end {
        Ok(end) => end,
        Err(reason) => SessionEnd::Failed(reason),
    }
}

async fn stream_events(
    body: &mut RecvStream,
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> Result<SessionEnd, SessionError> {
    let mut reader = EventReader::new();
    let leave = leave(leave_at);
    tokio::pin!(leave);
    let mut finals = control.finals_signal();
    loop {
        let chunk = tokio::select! {
            chunk = body.data() => chunk,
            _ = &mut leave => return Ok(SessionEnd::Left),
            _ = RunControl::finals_recorded(&mut finals) => {
                if state.has_all(spec, control) {
                    return Ok(SessionEnd::Finished);
                }
                continue;
            }
        };
        let Some(chunk) = chunk else {
            return Err(SessionError::StreamEnded);
        };
        let chunk = chunk.map_err(|source| SessionError::Http2 {
            step: Step::Stream,
            source,
        })?;
        // Read: the server may send as much again (or the stream stalls at its window).
        let _ = body.flow_control().release_capacity(chunk.len());
        if let Some(end) = reader.feed(&chunk, now_ns(), spec, state, stats, control)? {
            return Ok(end);
        }
    }
}

/// Polls as streams of a group's connection. The first poll of a session has its stream from
/// [`H2Group::get`] (which may open the connection); later ones reuse the sender.
struct Http2Poller<'a> {
    group: &'a H2Group,
    spec: &'a ClientSpec,
    send: SendRequest<Bytes>,
    closed: Rc<Cell<bool>>,
}

impl PollExchange for Http2Poller<'_> {
    async fn exchange(
        &mut self,
        spec: &ClientSpec,
        after: u64,
        etag: Option<&str>,
        long_poll: bool,
    ) -> Result<PollReply, SessionError> {
        let path = super::poll::poll_path(spec, after, long_poll);
        let mut headers = Vec::new();
        if let Some(tag) = etag {
            headers.push(("if-none-match", tag));
        }
        let request = build_get(self.spec, &path, &headers)?;
        let response = match send_get(self.send.clone(), request).await {
            Ok(r) => r,
            Err((step, source)) => {
                if step == Step::Send {
                    self.group.forget(&self.closed).await;
                }
                return Err(SessionError::Http2 { step, source });
            }
        };
        let (head, mut body) = response.into_parts();
        let etag = head
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_all(&mut body, MAX_BODY_BYTES).await?;
        Ok(PollReply {
            status: head.status.as_u16(),
            etag,
            body,
        })
    }

    fn answered(&mut self, _idle: bool) {
        // Nothing held between polls but the shared connection's sender.
    }
}

/// One `poll-h2` / `long-poll-h2` session: polls on streams of the group's connection until
/// the step is finished, the client leaves or a poll fails.
pub async fn poll_session(
    group: &H2Group,
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &Rc<RefCell<Stats>>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> SessionEnd {
    let Sender {
        send,
        closed,
        started,
    } = match group.sender(spec, state, stats).await {
        Ok(s) => s,
        Err(end) => return end,
    };
    let mut poller = Http2Poller {
        group,
        spec,
        send,
        closed,
    };
    stats.borrow_mut().connection_opened();
    let end = poll_loop(&mut poller, started, spec, state, stats, control, leave_at).await;
    stats.borrow_mut().connection_closed();
    match end {
        Ok(end) => end,
        Err(reason) => SessionEnd::Failed(reason),
    }
}

#[cfg(test)]
mod tests;
