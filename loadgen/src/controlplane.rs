//! Control-plane HTTP: everything the load generator says to a server that is not a measured
//! client connection — publishing lines, finishing steps, health checks.
//!
//! It goes through reqwest (keep-alive pooling, `Connection: close` honoured, a connection the
//! server closed replaced by a fresh one), over plain HTTP or TLS (rustls on the ring
//! provider). The measured clients do not: they stay on the counted sockets of [`crate::wire`],
//! where every byte is seen.

use std::time::Duration;

use pushbench_protocol::{Route, TopicId};
use serde::Deserialize;

use crate::publisher::error_chain;

/// Why a control-plane call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("building the HTTP client: {0}")]
    Client(String),
    #[error("{what}: {reason}")]
    Request { what: String, reason: String },
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: unexpected answer: {reason}")]
    Answer { what: String, reason: String },
}

/// The control-plane client. `insecure` accepts any TLS certificate (self-signed targets).
pub fn client(insecure: bool, pool_per_host: usize) -> Result<reqwest::Client, ControlError> {
    // reqwest is built without a default crypto provider (aws-lc takes minutes to build):
    // ring, installed once for the process; a second install is refused, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(pool_per_host.max(1))
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .tls_danger_accept_invalid_certs(insecure)
        .build()
        .map_err(|e| ControlError::Client(error_chain(&e)))
}

#[derive(Deserialize)]
struct FinishAnswer {
    last_seq: u64,
}

/// `POST .../logs/finish` on each topic of a feed-server at `base` (`http://HOST:PORT`);
/// returns each topic's final seq, which every client of it must end up having received.
pub async fn finish_topics(
    client: &reqwest::Client,
    base: &str,
    topics: &[TopicId],
) -> Result<Vec<(TopicId, u64)>, ControlError> {
    let mut out = Vec::with_capacity(topics.len());
    for topic in topics {
        let what = format!("finishing {topic}");
        let url = format!("{base}{}", Route::Finish.path(topic));
        let answer = client
            .post(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| ControlError::Request {
                what: what.clone(),
                reason: error_chain(&e),
            })?;
        let status = answer.status().as_u16();
        let body = answer.bytes().await.map_err(|e| ControlError::Request {
            what: what.clone(),
            reason: error_chain(&e),
        })?;
        match status {
            200 => {
                let a: FinishAnswer =
                    serde_json::from_slice(&body).map_err(|e| ControlError::Answer {
                        what: what.clone(),
                        reason: e.to_string(),
                    })?;
                out.push((topic.clone(), a.last_seq));
            }
            // Never appended to (a topic nobody wrote yet): nothing to expect.
            404 => out.push((topic.clone(), 0)),
            status => {
                return Err(ControlError::Status {
                    what,
                    status,
                    body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                })
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct DropAnswer {
    dropped: u64,
}

/// feed-server's fault injection: `POST /admin/drop-connections/{topic}?fraction=F` on each
/// topic (with its admin `token`); returns how many open streams it ended in all.
pub async fn drop_connections(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    topics: &[TopicId],
    fraction: f64,
) -> Result<u64, ControlError> {
    let mut dropped = 0;
    for topic in topics {
        let what = format!("dropping the connections of {topic}");
        let url = format!(
            "{base}/admin/drop-connections/{}/{}/builds/{}/steps/{}?fraction={fraction}",
            topic.org, topic.repo, topic.build, topic.step
        );
        let answer = client
            .post(&url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| ControlError::Request {
                what: what.clone(),
                reason: error_chain(&e),
            })?;
        let status = answer.status().as_u16();
        let body = answer.bytes().await.map_err(|e| ControlError::Request {
            what: what.clone(),
            reason: error_chain(&e),
        })?;
        if status != 200 {
            return Err(ControlError::Status {
                what,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        let a: DropAnswer = serde_json::from_slice(&body).map_err(|e| ControlError::Answer {
            what,
            reason: e.to_string(),
        })?;
        dropped += a.dropped;
    }
    Ok(dropped)
}

/// `GET url` answered 2xx?
pub async fn is_healthy(client: &reqwest::Client, url: &str) -> bool {
    match client.get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(answer) => answer.status().is_success(),
        Err(_) => false,
    }
}
