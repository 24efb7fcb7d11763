//! Talking to the feed server's publishing side: finishing steps at the end of a run.

use std::net::SocketAddr;

use pushbench_feed::TopicId;
use serde::Deserialize;

use crate::http1::{HttpConn, HttpError};
use crate::wire::connect;

#[derive(Deserialize)]
struct FinishAnswer {
    last_seq: u64,
}

/// `POST .../logs/finish` on each topic over one keep-alive connection; returns each topic's
/// final seq, which every client of it must end up having received.
pub async fn finish_topics(
    server: SocketAddr,
    topics: &[TopicId],
) -> Result<Vec<(TopicId, u64)>, String> {
    let mut conn = HttpConn::new(
        connect(server, None)
            .await
            .map_err(|e| format!("connect to {server}: {e}"))?,
    );
    let mut out = Vec::with_capacity(topics.len());
    for topic in topics {
        let req = format!(
            "POST {}/finish HTTP/1.1\r\nHost: {server}\r\nContent-Length: 0\r\n\r\n",
            topic.logs_path()
        );
        let answer = async {
            conn.send(req.as_bytes()).await?;
            let head = conn.read_head().await?;
            let body = conn.read_body(head.framing, 1 << 20).await?;
            Ok::<_, HttpError>((head.status, body))
        }
        .await
        .map_err(|e| format!("finishing {topic}: {e}"))?;
        match answer {
            (200, body) => {
                let a: FinishAnswer = serde_json::from_slice(&body)
                    .map_err(|e| format!("finishing {topic}: bad answer: {e}"))?;
                out.push((topic.clone(), a.last_seq));
            }
            // Never appended to (a topic nobody wrote yet): nothing to expect.
            (404, _) => out.push((topic.clone(), 0)),
            (status, body) => {
                return Err(format!(
                    "finishing {topic}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                ))
            }
        }
    }
    Ok(out)
}
