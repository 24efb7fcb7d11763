//! The polling client: short polls at a fixed interval with `If-None-Match`, or long polls
//! (`wait=`) re-issued as soon as they return, on one keep-alive connection.
//!
//! Short polls are scheduled at fixed times (`start + k * interval`), not `interval` after the
//! previous answer, so a slow server cannot quietly lower the poll rate.
//!
//! Against a foreign target (`target.poll_cursor` other than `feed-server`) the client speaks
//! no API of ours: the cursor travels as the target's URL placeholder `{after}`, as
//! `If-None-Match`, or as `If-Modified-Since` + `If-None-Match` (nchan's long-poll), and every
//! `pb:SEQ:TS` marker anywhere in an answer's body is a line. 304 and 204 are empty answers;
//! so is 408, which long-poll servers (nchan) send when a wait times out.
//!
//! The feed-server poll loop ([`poll_loop`]) is the same over HTTP/1.1 and HTTP/2: it asks a
//! [`PollExchange`] for each answer. [`Http1Poller`] is the keep-alive connection here; the
//! HTTP/2 one, a stream per poll on a shared connection, is in [`super::h2`].

use std::cell::RefCell;
use std::rc::Rc;

use pushbench_protocol::query::{AFTER, LIMIT, WAIT};
use pushbench_protocol::{LineText, PollAnswer};
use tokio::time::{sleep_until, Instant};

use super::failure::{excerpt, history_gone, Answer, SessionError, Step};
use super::{now_ns, open_session, ClientSpec, ClientState, ConnectStart, LineStamp, SessionEnd};
use crate::control::RunControl;
use crate::http1::{HttpConn, ResponseHead};
use crate::publisher::find_markers;
use crate::scenario::{PollCursor, Transport};
use crate::stats::Stats;

/// What a feed-server poll answer says besides its lines.
struct AnswerCursor {
    lines: usize,
    /// The step is finished and the answer reached its last line.
    complete: bool,
}

impl AnswerCursor {
    fn of<L>(answer: &PollAnswer<L>) -> Self {
        AnswerCursor {
            lines: answer.lines.len(),
            complete: answer.is_complete(),
        }
    }
}

/// Largest poll answer accepted.
pub(super) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// One poll's answer, as the poll loop needs it.
pub(super) struct PollReply {
    pub(super) status: u16,
    pub(super) etag: Option<String>,
    pub(super) body: Vec<u8>,
}

/// How a poll is sent and its answer read: over a keep-alive HTTP/1.1 connection, or as one
/// HTTP/2 stream. Not `Send`: a worker's clients run on its one thread.
pub(super) trait PollExchange {
    /// Sends the poll of cursor `after` (`If-None-Match: etag` once known) and reads its
    /// whole answer.
    async fn exchange(
        &mut self,
        spec: &ClientSpec,
        after: u64,
        etag: Option<&str>,
        long_poll: bool,
    ) -> Result<PollReply, SessionError>;

    /// After an answer: `idle` when the client now waits for its next poll time (hold no
    /// buffers), otherwise it polls again at once.
    fn answered(&mut self, idle: bool);
}

/// A keep-alive HTTP/1.1 connection, and the request bytes of the last poll: rebuilt only
/// when the cursor or the ETag changes, so a client polling an idle step sends the same
/// bytes again.
pub(super) struct Http1Poller {
    conn: HttpConn,
    request: Vec<u8>,
    request_for: Option<(u64, Option<String>)>,
}

impl PollExchange for Http1Poller {
    async fn exchange(
        &mut self,
        spec: &ClientSpec,
        after: u64,
        etag: Option<&str>,
        long_poll: bool,
    ) -> Result<PollReply, SessionError> {
        let key = (after, etag.map(str::to_string));
        if self.request_for.as_ref() != Some(&key) {
            write_request(&mut self.request, spec, after, etag, long_poll);
            self.request_for = Some(key);
        }
        let (head, body) = h1_exchange(&mut self.conn, &self.request).await?;
        Ok(PollReply {
            status: head.status,
            etag: head.header("etag").map(str::to_string),
            body,
        })
    }

    fn answered(&mut self, idle: bool) {
        self.conn.shrink();
        if idle {
            // Idle until the next poll: hold no request bytes either.
            self.request = Vec::new();
            self.request_for = None;
        }
    }
}

pub async fn session(
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &Rc<RefCell<Stats>>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> SessionEnd {
    let (stream, started) = match open_session(spec, state, stats).await {
        Ok(opened) => opened,
        Err(end) => return end,
    };
    let mut conn = HttpConn::new(stream);
    stats.borrow_mut().connection_opened();
    let end = match spec.poll_cursor {
        PollCursor::FeedServer => {
            let mut poller = Http1Poller {
                conn,
                request: Vec::new(),
                request_for: None,
            };
            poll_loop(
                &mut poller,
                started.into(),
                spec,
                state,
                stats,
                control,
                leave_at,
            )
            .await
        }
        cursor => {
            foreign_poll_loop(
                &mut conn,
                started.into(),
                cursor,
                spec,
                state,
                stats,
                control,
                leave_at,
            )
            .await
        }
    };
    stats.borrow_mut().connection_closed();
    match end {
        Ok(end) => end,
        Err(reason) => SessionEnd::Failed(reason),
    }
}

/// Polls feed-server's poll API until the step is finished, the client leaves or a poll
/// fails; `started` is when this session's connect began (see [`ClientState::connected_in`]).
pub(super) async fn poll_loop(
    conn: &mut impl PollExchange,
    started: ConnectStart,
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> Result<SessionEnd, SessionError> {
    let long_poll = spec.transport.over_http1() == Transport::LongPoll;
    // The closed-loop throughput probe (`poll.interval = "0s"`): the connection never idles.
    let closed_loop = !long_poll && spec.poll_interval.is_zero();
    let mut etag: Option<String> = None;
    let mut next_poll = Instant::now();
    let mut first = true;
    let mut finals = control.finals_signal();
    // Polling has no handshake beyond TCP (and TLS): a short poll's connect time runs to its
    // first answer, which comes at once; a long-poll's first answer may be held until a line
    // is published, so its connect time is the connection's.
    let handshake = long_poll.then(|| started.elapsed());
    loop {
        if leave_at.is_some_and(|at| Instant::now() >= at) {
            return Ok(SessionEnd::Left);
        }
        let after = state.tracker.last_seq();
        let exchange = conn.exchange(spec, after, etag.as_deref(), long_poll);
        let Some(PollReply {
            status,
            etag: tag,
            body,
        }) = unless_done(exchange, spec, state, control, &mut finals).await?
        else {
            return Ok(SessionEnd::Finished);
        };
        let now = now_ns();
        if first {
            first = false;
            // The first answer tells whether this is a poll resource at all: an error answer
            // is a failed connect, retried.
            if let Some(oldest_seq) = history_gone(status, &body) {
                return Ok(SessionEnd::HistoryGone { oldest_seq });
            }
            if status >= 400 {
                return Ok(stats.borrow_mut().connect_failed(SessionError::Status {
                    answer: Answer::Poll,
                    status,
                    body: excerpt(&body),
                }));
            }
            state.connected_in(stats, handshake.unwrap_or_else(|| started.elapsed()));
        }
        let mut full = false;
        match status {
            304 => stats
                .borrow_mut()
                .count_poll(true, control.in_measure_window(now)),
            200 => {
                let malformed = SessionError::MalformedPoll;
                // Only the stamps are decoded; with markers (external targets) the text too.
                let answer = if spec.marker_stamps {
                    let a: PollAnswer<LineText<'_>> =
                        serde_json::from_slice(&body).map_err(malformed)?;
                    for line in &a.lines {
                        state.on_payload(spec, stats, control, line.line.as_bytes(), now)?;
                    }
                    AnswerCursor::of(&a)
                } else {
                    let a: PollAnswer<LineStamp> =
                        serde_json::from_slice(&body).map_err(malformed)?;
                    for line in &a.lines {
                        state.on_line(stats, control, line.seq, line.ts, now);
                    }
                    AnswerCursor::of(&a)
                };
                stats
                    .borrow_mut()
                    .count_poll(answer.lines == 0, control.in_measure_window(now));
                full = answer.lines >= spec.poll_limit as usize;
                if answer.complete || state.has_all(spec, control) {
                    return Ok(SessionEnd::Finished);
                }
                if etag != tag {
                    etag = tag;
                }
            }
            status => {
                if let Some(oldest_seq) = history_gone(status, &body) {
                    return Ok(SessionEnd::HistoryGone { oldest_seq });
                }
                return Err(SessionError::Status {
                    answer: Answer::Poll,
                    status,
                    body: excerpt(&body),
                });
            }
        }
        if closed_loop {
            // Polled again at once: keep the buffers.
            continue;
        }
        // Long polls and full answers are followed at once.
        let idle = !(long_poll || full);
        conn.answered(idle);
        if !idle {
            continue;
        }
        next_poll += spec.poll_interval;
        let now = Instant::now();
        if next_poll < now {
            // Behind schedule (slow answers): poll now, do not burst to catch up.
            next_poll = now;
        }
        let wake = match leave_at {
            Some(at) if at < next_poll => at,
            _ => next_poll,
        };
        sleep_until(wake).await;
    }
}

/// Sends an HTTP/1.1 request and reads its answer.
async fn h1_exchange(
    conn: &mut HttpConn,
    request: &[u8],
) -> Result<(ResponseHead, Vec<u8>), SessionError> {
    let http = |step| move |source| SessionError::Http { step, source };
    conn.send(request).await.map_err(http(Step::Send))?;
    let head = conn.read_head().await.map_err(http(Step::Response))?;
    let body = conn
        .read_body(head.framing, MAX_BODY_BYTES)
        .await
        .map_err(http(Step::ResponseBody))?;
    Ok((head, body))
}

/// Waits for a poll's answer, unless the client turns out to have everything its step will
/// ever have while it waits (a long-poll held open when the final seqs arrive): `Ok(None)`
/// then.
async fn unless_done<T>(
    exchange: impl std::future::Future<Output = Result<T, SessionError>>,
    spec: &ClientSpec,
    state: &mut ClientState,
    control: &RunControl,
    finals: &mut tokio::sync::watch::Receiver<u64>,
) -> Result<Option<T>, SessionError> {
    tokio::pin!(exchange);
    loop {
        tokio::select! {
            answer = &mut exchange => return answer.map(Some),
            _ = RunControl::finals_recorded(finals) => {
                if state.has_all(spec, control) {
                    return Ok(None);
                }
            }
        }
    }
}

/// What a foreign target said about where the client is.
#[derive(Default)]
struct ForeignCursor {
    etag: Option<String>,
    last_modified: Option<String>,
}

impl ForeignCursor {
    fn update(&mut self, head: &ResponseHead) {
        if let Some(tag) = head.header("etag") {
            self.etag = Some(tag.to_string());
        }
        if let Some(lm) = head.header("last-modified") {
            self.last_modified = Some(lm.to_string());
        }
    }
}

/// The poll loop against a foreign target: see the module doc.
#[allow(clippy::too_many_arguments)] // the session's parts, as in `poll_loop`, plus the cursor
async fn foreign_poll_loop(
    conn: &mut HttpConn,
    started: ConnectStart,
    cursor_kind: PollCursor,
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> Result<SessionEnd, SessionError> {
    let long_poll = spec.transport.over_http1() == Transport::LongPoll;
    let mut cursor = ForeignCursor::default();
    let mut request = Vec::new();
    let mut next_poll = Instant::now();
    let mut first = true;
    let mut finals = control.finals_signal();
    // Polling has no handshake beyond TCP (and TLS): a short poll's connect time runs to its
    // first answer, which comes at once; a long-poll's first answer may be held until a line
    // is published, so its connect time is the connection's.
    let handshake = long_poll.then(|| started.elapsed());
    loop {
        if leave_at.is_some_and(|at| Instant::now() >= at) {
            return Ok(SessionEnd::Left);
        }
        write_foreign_request(
            &mut request,
            spec,
            cursor_kind,
            state.tracker.last_seq(),
            &cursor,
        );
        let exchange = h1_exchange(conn, &request);
        let Some((head, body)) = unless_done(exchange, spec, state, control, &mut finals).await?
        else {
            return Ok(SessionEnd::Finished);
        };
        let now = now_ns();
        if first {
            first = false;
            // The first answer tells whether this is a poll resource at all: an error answer
            // is a failed connect, retried.
            if head.status >= 400 {
                return Ok(stats.borrow_mut().connect_failed(SessionError::Status {
                    answer: Answer::Poll,
                    status: head.status,
                    body: excerpt(&body),
                }));
            }
            state.connected_in(stats, handshake.unwrap_or_else(|| started.elapsed()));
        }
        match head.status {
            200..=203 | 206 => {
                let mut lines = 0usize;
                for (seq, ts) in find_markers(&body) {
                    state.on_line(stats, control, seq, ts, now);
                    lines += 1;
                }
                cursor.update(&head);
                stats
                    .borrow_mut()
                    .count_poll(lines == 0, control.in_measure_window(now));
            }
            204 | 304 | 408 => {
                cursor.update(&head);
                stats
                    .borrow_mut()
                    .count_poll(true, control.in_measure_window(now));
            }
            status => {
                return Err(SessionError::Status {
                    answer: Answer::Poll,
                    status,
                    body: excerpt(&body),
                })
            }
        }
        if state.has_all(spec, control) {
            return Ok(SessionEnd::Finished);
        }
        if head
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            // The target closes after each answer: a new connection for the next poll.
            return Err(SessionError::ClosedAfterAnswer);
        }
        conn.shrink();
        if long_poll {
            continue;
        }
        request = Vec::new();
        next_poll += spec.poll_interval;
        let now = Instant::now();
        if next_poll < now {
            next_poll = now;
        }
        let wake = match leave_at {
            Some(at) if at < next_poll => at,
            _ => next_poll,
        };
        sleep_until(wake).await;
    }
}

/// The request of a foreign poll: `spec.path` with `{after}` filled (query cursor), and the
/// conditional headers the cursor kind uses.
fn write_foreign_request(
    out: &mut Vec<u8>,
    spec: &ClientSpec,
    kind: PollCursor,
    after: u64,
    cursor: &ForeignCursor,
) {
    use std::io::Write;
    out.clear();
    let path = match kind {
        PollCursor::Query => spec.path.replace("{after}", &after.to_string()),
        _ => spec.path.clone(),
    };
    // Writing into a Vec cannot fail.
    let _ = write!(out, "GET {path} HTTP/1.1\r\nHost: {}\r\n", spec.host);
    match kind {
        PollCursor::Etag | PollCursor::LastModified => {
            if let Some(tag) = &cursor.etag {
                let _ = write!(out, "If-None-Match: {tag}\r\n");
            }
        }
        PollCursor::FeedServer | PollCursor::Query => {}
    }
    if kind == PollCursor::LastModified {
        if let Some(lm) = &cursor.last_modified {
            let _ = write!(out, "If-Modified-Since: {lm}\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The path and query of the poll for cursor `after`: `PATH?after=SEQ&limit=N[&wait=MSms]`.
pub(super) fn poll_path(spec: &ClientSpec, after: u64, long_poll: bool) -> String {
    let mut path = spec.path_with(&format!("{AFTER}={after}&{LIMIT}={}", spec.poll_limit));
    if long_poll {
        path.push_str(&format!("&{WAIT}={}ms", spec.long_poll_wait.as_millis()));
    }
    path
}

/// Writes the poll request for cursor `after` into `out` (replacing what it held):
/// `GET PATH?after=SEQ&limit=N[&wait=MSms]` on `spec.host`, with `If-None-Match` once an
/// answer has given an ETag.
fn write_request(
    out: &mut Vec<u8>,
    spec: &ClientSpec,
    after: u64,
    etag: Option<&str>,
    long_poll: bool,
) {
    use std::io::Write;
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        poll_path(spec, after, long_poll),
        spec.host
    );
    if let Some(tag) = etag {
        let _ = write!(out, "If-None-Match: {tag}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::get_request;

    fn spec(path: &str) -> ClientSpec {
        let topic = pushbench_protocol::TopicId::parse("acme/app/builds/1/steps/1").unwrap();
        ClientSpec::for_test(Transport::Poll, path, &topic)
    }

    #[test]
    fn requests_are_the_plain_get_they_always_were() {
        let mut out = b"left over".to_vec();
        let s = spec("/acme/app/builds/1/steps/1/logs");
        write_request(&mut out, &s, 7, None, false);
        assert_eq!(
            out,
            get_request(&s.host, &s.path_with("after=7&limit=1000"), "")
        );
        write_request(&mut out, &s, 8, Some("\"7-8-8-0\""), true);
        assert_eq!(
            out,
            get_request(
                &s.host,
                &s.path_with("after=8&limit=1000&wait=30000ms"),
                "If-None-Match: \"7-8-8-0\"\r\n"
            )
        );
        // A target URL with its own query string.
        let s = spec("/logs?topic=a");
        write_request(&mut out, &s, 0, None, false);
        assert!(out.starts_with(b"GET /logs?topic=a&after=0&limit=1000 HTTP/1.1\r\n"));
    }

    #[test]
    fn foreign_requests_carry_the_cursor_their_kind_uses() {
        let mut out = Vec::new();
        let s = spec("/sub/a/poll?since={after}");
        let none = ForeignCursor::default();
        write_foreign_request(&mut out, &s, PollCursor::Query, 41, &none);
        assert_eq!(out, get_request(&s.host, "/sub/a/poll?since=41", ""));
        let seen = ForeignCursor {
            etag: Some("\"7\"".into()),
            last_modified: Some("Wed, 02 Dec 2026 08:00:00 GMT".into()),
        };
        let s = spec("/sub/a");
        write_foreign_request(&mut out, &s, PollCursor::Etag, 41, &seen);
        assert_eq!(
            out,
            get_request(&s.host, "/sub/a", "If-None-Match: \"7\"\r\n")
        );
        write_foreign_request(&mut out, &s, PollCursor::LastModified, 41, &seen);
        assert_eq!(
            out,
            get_request(
                &s.host,
                "/sub/a",
                "If-None-Match: \"7\"\r\nIf-Modified-Since: Wed, 02 Dec 2026 08:00:00 GMT\r\n"
            )
        );
        // The first poll has no cursor yet.
        write_foreign_request(&mut out, &s, PollCursor::LastModified, 0, &none);
        assert_eq!(out, get_request(&s.host, "/sub/a", ""));
    }
}
