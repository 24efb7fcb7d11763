//! The SSE client: an HTTP/1.1 GET of `.../logs/events`, resumed with `Last-Event-ID`, parsed
//! by the WHATWG-conformant [`SseParser`].
//!
//! What does not depend on HTTP/1.1 (the resume header, judging the answer, turning body
//! bytes into lines) is shared with the HTTP/2 client ([`super::h2`]): [`resume_id`],
//! [`error_answer`], [`check_event_stream`] and [`EventReader`].

use std::cell::RefCell;
use std::rc::Rc;

use pushbench_protocol::sse::{CONTENT_TYPE, EVENT_END, EVENT_LAGGED, EVENT_MESSAGE};
use tokio::time::Instant;

use super::failure::{excerpt, history_gone, Answer, SessionError, Step};
use super::{leave, now_ns, open_session, ClientSpec, ClientState, SessionEnd};
use crate::control::RunControl;
use crate::http1::{get_request, BodyDecoder, HttpConn};
use crate::sse_parser::SseParser;
use crate::stats::Stats;

/// The most of an error answer's body that is read.
pub(super) const ERROR_BODY_MAX: usize = 4096;

/// The `Last-Event-ID` to resume with, if any: the target's own id (external targets with
/// markers), or the last seq received (feed-server's ids are the seq).
pub(super) fn resume_id(spec: &ClientSpec, state: &ClientState) -> Option<String> {
    if spec.marker_stamps {
        return state.last_event_id.as_deref().map(str::to_string);
    }
    let resume = state.tracker.last_seq();
    (resume > 0).then(|| resume.to_string())
}

/// How a session ends on an answer other than 200 or 204 (its body, at most
/// [`ERROR_BODY_MAX`], read): a 410 naming where the history starts, or a failed connect.
pub(super) fn error_answer(stats: &RefCell<Stats>, status: u16, body: &[u8]) -> SessionEnd {
    if let Some(oldest_seq) = history_gone(status, body) {
        return SessionEnd::HistoryGone { oldest_seq };
    }
    stats.borrow_mut().connect_failed(SessionError::Status {
        answer: Answer::EventStream,
        status,
        body: excerpt(body),
    })
}

/// A 200 answer is a stream only with the event-stream content type; otherwise a failed
/// connect.
pub(super) fn check_event_stream(
    stats: &RefCell<Stats>,
    content_type: Option<&str>,
) -> Result<(), SessionEnd> {
    match content_type {
        Some(ct) if ct.starts_with(CONTENT_TYPE) => Ok(()),
        other => Err(stats
            .borrow_mut()
            .connect_failed(SessionError::NotEventStream(other.map(str::to_string)))),
    }
}

/// Body bytes to lines: the parser and what a client learns from the stream (`retry`, ids).
pub(super) struct EventReader {
    parser: SseParser,
    events: Vec<crate::sse_parser::SseEvent>,
}

impl EventReader {
    pub(super) fn new() -> Self {
        EventReader {
            parser: SseParser::new(),
            events: Vec::new(),
        }
    }

    /// Feeds one read of the body, received at `now` (Unix ns). `Some(end)` when the session
    /// is over: the end event, or the client has every line of its finished step.
    pub(super) fn feed(
        &mut self,
        body: &[u8],
        now: u64,
        spec: &ClientSpec,
        state: &mut ClientState,
        stats: &RefCell<Stats>,
        control: &RunControl,
    ) -> Result<Option<SessionEnd>, SessionError> {
        let parser = &mut self.parser;
        parser
            .feed(body, &mut self.events)
            .map_err(SessionError::EventStream)?;
        // A browser's EventSource waits the server's `retry:` before reconnecting: so do we.
        if let Some(ms) = parser.retry_ms() {
            state.retry_hint = Some(std::time::Duration::from_millis(ms));
        }
        if spec.marker_stamps && state.last_event_id.as_deref() != Some(parser.last_event_id()) {
            state.last_event_id =
                (!parser.last_event_id().is_empty()).then(|| parser.last_event_id().into());
        }
        for ev in self.events.drain(..) {
            match ev.event.as_str() {
                EVENT_MESSAGE => state.on_payload(spec, stats, control, ev.data.as_bytes(), now)?,
                EVENT_END => return Ok(Some(SessionEnd::Finished)),
                EVENT_LAGGED => return Err(SessionError::Lagged(ev.data)),
                _ => {}
            }
        }
        Ok(state.has_all(spec, control).then_some(SessionEnd::Finished))
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
    let mut headers = format!("Accept: {CONTENT_TYPE}\r\n");
    if let Some(id) = resume_id(spec, state) {
        headers.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    let end = async {
        conn.send(&get_request(&spec.host, &spec.path, &headers))
            .await
            .map_err(|source| SessionError::Http {
                step: Step::Send,
                source,
            })?;
        let head = conn
            .read_head()
            .await
            .map_err(|source| SessionError::Http {
                step: Step::Response,
                source,
            })?;
        // Only a stream is a connection; an error answer is a failed connect, retried.
        match head.status {
            200 => {}
            // The client already has the whole finished step.
            204 => {
                state.connected(stats, started);
                return Ok(SessionEnd::Finished);
            }
            status => {
                // An error answer is small: read it for what it says (a 410 names the oldest
                // seq the server still has).
                let body = conn
                    .read_body(head.framing, ERROR_BODY_MAX)
                    .await
                    .unwrap_or_default();
                return Ok(error_answer(stats, status, &body));
            }
        }
        if let Err(end) = check_event_stream(stats, head.header("content-type")) {
            return Ok(end);
        }
        state.connected(stats, started);
        stats.borrow_mut().connection_opened();
        let end = stream_events(
            spec,
            &mut conn,
            head.framing,
            state,
            stats,
            control,
            leave_at,
        )
        .await;
        stats.borrow_mut().connection_closed();
        end
    }
    .await;
    match end {
        Ok(end) => end,
        Err(reason) => SessionEnd::Failed(reason),
    }
}

async fn stream_events(
    spec: &ClientSpec,
    conn: &mut HttpConn,
    framing: crate::http1::BodyFraming,
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> Result<SessionEnd, SessionError> {
    let mut decoder = BodyDecoder::new(framing);
    let mut reader = EventReader::new();
    let mut body = Vec::with_capacity(1024);
    let leave = leave(leave_at);
    tokio::pin!(leave);
    let mut finals = control.finals_signal();
    loop {
        body.clear();
        let more = tokio::select! {
            r = conn.read_body_part(&mut decoder, &mut body) => {
                r.map_err(|source| SessionError::Http { step: Step::Stream, source })?
            }
            _ = &mut leave => return Ok(SessionEnd::Left),
            _ = RunControl::finals_recorded(&mut finals) => {
                if state.has_all(spec, control) {
                    return Ok(SessionEnd::Finished);
                }
                continue;
            }
        };
        if let Some(end) = reader.feed(&body, now_ns(), spec, state, stats, control)? {
            return Ok(end);
        }
        if !more {
            return Err(SessionError::StreamEnded);
        }
        if body.capacity() > 64 * 1024 {
            body = Vec::with_capacity(1024);
        }
    }
}
