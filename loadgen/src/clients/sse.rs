//! The SSE client: an HTTP/1.1 GET of `.../logs/events`, resumed with `Last-Event-ID`, parsed
//! by the WHATWG-conformant [`SseParser`].

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
const ERROR_BODY_MAX: usize = 4096;

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
    if spec.marker_stamps {
        if let Some(id) = &state.last_event_id {
            headers.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
    } else {
        let resume = state.tracker.last_seq();
        if resume > 0 {
            headers.push_str(&format!("Last-Event-ID: {resume}\r\n"));
        }
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
                if let Some(oldest_seq) = history_gone(status, &body) {
                    return Ok(SessionEnd::HistoryGone { oldest_seq });
                }
                return Ok(stats.borrow_mut().connect_failed(SessionError::Status {
                    answer: Answer::EventStream,
                    status,
                    body: excerpt(&body),
                }));
            }
        }
        match head.header("content-type") {
            Some(ct) if ct.starts_with(CONTENT_TYPE) => {}
            other => {
                return Ok(stats
                    .borrow_mut()
                    .connect_failed(SessionError::NotEventStream(other.map(str::to_string))))
            }
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
    let mut parser = SseParser::new();
    let mut body = Vec::with_capacity(1024);
    let mut events = Vec::new();
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
        let now = now_ns();
        parser
            .feed(&body, &mut events)
            .map_err(SessionError::EventStream)?;
        // A browser's EventSource waits the server's `retry:` before reconnecting: so do we.
        if let Some(ms) = parser.retry_ms() {
            state.retry_hint = Some(std::time::Duration::from_millis(ms));
        }
        if spec.marker_stamps && state.last_event_id.as_deref() != Some(parser.last_event_id()) {
            state.last_event_id =
                (!parser.last_event_id().is_empty()).then(|| parser.last_event_id().into());
        }
        for ev in events.drain(..) {
            match ev.event.as_str() {
                EVENT_MESSAGE => state.on_payload(spec, stats, control, ev.data.as_bytes(), now)?,
                EVENT_END => return Ok(SessionEnd::Finished),
                EVENT_LAGGED => return Err(SessionError::Lagged(ev.data)),
                _ => {}
            }
        }
        if state.has_all(spec, control) {
            return Ok(SessionEnd::Finished);
        }
        if !more {
            return Err(SessionError::StreamEnded);
        }
        if body.capacity() > 64 * 1024 {
            body = Vec::with_capacity(1024);
        }
    }
}
