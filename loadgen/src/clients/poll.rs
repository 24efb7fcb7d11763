//! The polling client: short polls at a fixed interval with `If-None-Match`, or long polls
//! (`wait=`) re-issued as soon as they return, on one keep-alive connection.
//!
//! Short polls are scheduled at fixed times (`start + k * interval`), not `interval` after the
//! previous answer, so a slow server cannot quietly lower the poll rate.

use std::cell::RefCell;

use serde::Deserialize;
use tokio::time::{sleep_until, Instant};

use super::{now_ns, open_session, ClientSpec, ClientState, LineStamp, SessionEnd};
use crate::control::RunControl;
use crate::http1::{get_request, HttpConn};
use crate::scenario::Transport;
use crate::stats::Stats;

/// What a poll answer says besides its lines.
struct PollCursor {
    lines: usize,
    next: u64,
    last_seq: u64,
    finished: bool,
}

impl<L> PollBody<L> {
    fn cursor(&self) -> PollCursor {
        PollCursor {
            lines: self.lines.len(),
            next: self.next,
            last_seq: self.last_seq,
            finished: self.finished,
        }
    }
}

#[derive(Deserialize)]
struct TextLine {
    line: String,
}

/// Largest poll answer accepted.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

#[derive(Deserialize)]
struct PollBody<L> {
    lines: Vec<L>,
    next: u64,
    last_seq: u64,
    finished: bool,
}

pub async fn session(
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> SessionEnd {
    let (stream, started) = match open_session(spec, state, stats).await {
        Ok(opened) => opened,
        Err(end) => return end,
    };
    let mut conn = HttpConn::new(stream);
    stats.borrow_mut().connection_opened();
    let end = poll_loop(&mut conn, started, spec, state, stats, control, leave_at).await;
    let mut st = stats.borrow_mut();
    st.connection_closed();
    st.socket_closed(&conn.io);
    match end {
        Ok(end) => end,
        Err(reason) => SessionEnd::Failed(reason),
    }
}

async fn poll_loop(
    conn: &mut HttpConn,
    started: Instant,
    spec: &ClientSpec,
    state: &mut ClientState,
    stats: &RefCell<Stats>,
    control: &RunControl,
    leave_at: Option<Instant>,
) -> Result<SessionEnd, String> {
    let long_poll = spec.transport == Transport::LongPoll;
    let mut etag: Option<String> = None;
    let mut next_poll = Instant::now();
    let mut first = true;
    loop {
        if leave_at.is_some_and(|at| Instant::now() >= at) {
            return Ok(SessionEnd::Left);
        }
        let mut path = spec.path_with(&format!(
            "after={}&limit={}",
            state.tracker.last_seq(),
            spec.poll_limit
        ));
        if long_poll {
            path.push_str(&format!("&wait={}ms", spec.long_poll_wait.as_millis()));
        }
        let headers = match &etag {
            Some(tag) => format!("If-None-Match: {tag}\r\n"),
            None => String::new(),
        };
        conn.send(&get_request(&spec.host, &path, &headers))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let head = conn
            .read_head()
            .await
            .map_err(|e| format!("response: {e}"))?;
        let body = conn
            .read_body(head.framing, MAX_BODY_BYTES)
            .await
            .map_err(|e| format!("response body: {e}"))?;
        let now = now_ns();
        if first {
            first = false;
            stats.borrow_mut().record_connect(started.elapsed());
        }
        let mut full = false;
        match head.status {
            304 => stats
                .borrow_mut()
                .count_poll(true, control.in_measure_window(now)),
            200 => {
                let malformed = |e: serde_json::Error| format!("malformed poll answer: {e}");
                // Only the stamps are decoded; with markers (external targets) the text too.
                let answer = if spec.marker_stamps {
                    let a: PollBody<TextLine> = serde_json::from_slice(&body).map_err(malformed)?;
                    for line in &a.lines {
                        state.on_payload(spec, stats, control, line.line.as_bytes(), now)?;
                    }
                    a.cursor()
                } else {
                    let a: PollBody<LineStamp> =
                        serde_json::from_slice(&body).map_err(malformed)?;
                    for line in &a.lines {
                        state.on_line(stats, control, line.seq, line.ts, now);
                    }
                    a.cursor()
                };
                stats
                    .borrow_mut()
                    .count_poll(answer.lines == 0, control.in_measure_window(now));
                full = answer.lines >= spec.poll_limit as usize;
                if (answer.finished && answer.next >= answer.last_seq)
                    || state.has_all(spec, control)
                {
                    return Ok(SessionEnd::Finished);
                }
                etag = head.header("etag").map(str::to_string);
            }
            s => {
                return Err(format!(
                    "HTTP {s} from poll: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            }
        }
        conn.shrink();
        if long_poll || full || spec.poll_interval.is_zero() {
            // Long polls and full answers are followed at once; so is every short poll in the
            // closed-loop throughput probe (`poll.interval = "0s"`).
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
