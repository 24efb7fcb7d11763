//! The WebSocket client: tokio-tungstenite over the counting socket, resumed with `?after=`.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::{SinkExt, StreamExt};
use pushbench_protocol::query::AFTER;
use pushbench_protocol::ws::CLOSE_FINISHED;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::failure::{history_gone, SessionError};
use super::{leave, now_ns, open_session, ClientSpec, ClientState, SessionEnd};
use crate::control::RunControl;
use crate::stats::Stats;

/// tungstenite allocates a 128 KiB read buffer per connection by default: thousands of
/// simulated clients need a small one (frames larger than it still arrive whole).
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
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
    let url = format!(
        "ws://{}{}",
        spec.host,
        spec.path_with(&format!("{AFTER}={}", state.tracker.last_seq()))
    );
    let (mut ws, _response) = match tokio_tungstenite::client_async_with_config(
        url.as_str(),
        stream,
        Some(client_config()),
    )
    .await
    {
        Ok(pair) => pair,
        Err(e) => {
            // A refused handshake with a 410 names the oldest seq the server still has.
            if let tokio_tungstenite::tungstenite::Error::Http(response) = &e {
                let body = response.body().as_deref().unwrap_or_default();
                if let Some(oldest_seq) = history_gone(response.status().as_u16(), body) {
                    return SessionEnd::HistoryGone { oldest_seq };
                }
            }
            return stats
                .borrow_mut()
                .connect_failed(SessionError::WsHandshake(Box::new(e)));
        }
    };
    state.connected(stats, started);
    stats.borrow_mut().connection_opened();
    let leave = leave(leave_at);
    tokio::pin!(leave);
    let mut finals = control.finals_signal();
    let end = loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = RunControl::finals_recorded(&mut finals) => {
                if state.has_all(spec, control) {
                    let _ = ws.close(None).await;
                    break SessionEnd::Finished;
                }
                continue;
            }
            _ = &mut leave => {
                let _ = ws.close(None).await;
                break SessionEnd::Left;
            }
        };
        let now = now_ns();
        match msg {
            Some(Ok(Message::Text(text))) => {
                if let Err(e) = state.on_payload(spec, stats, control, text.as_bytes(), now) {
                    break SessionEnd::Failed(e);
                }
                if state.has_all(spec, control) {
                    let _ = ws.close(None).await;
                    break SessionEnd::Finished;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    // The step finished: every line was sent.
                    Some(f) if u16::from(f.code) == CLOSE_FINISHED => SessionEnd::Finished,
                    Some(f) => SessionEnd::Failed(SessionError::WsClosed {
                        code: u16::from(f.code),
                        reason: f.reason.to_string(),
                    }),
                    None => SessionEnd::Failed(SessionError::WsClosedWithoutCode),
                };
            }
            // Pings are answered by tungstenite; nothing else is part of the protocol.
            Some(Ok(_)) => {}
            Some(Err(e)) => break SessionEnd::Failed(SessionError::WebSocket(Box::new(e))),
            None => break SessionEnd::Failed(SessionError::WsEof),
        }
    };
    // Complete the close handshake where the server started it, so the socket ends cleanly.
    if matches!(end, SessionEnd::Finished) {
        let _ = ws.flush().await;
    }
    stats.borrow_mut().connection_closed();
    end
}
