//! HTTP polling and long-polling transport for the log feed: the fair baseline.
//!
//! `GET /{org}/{repo}/builds/{build}/steps/{step}/logs?after=SEQ[&limit=N][&wait=DURATION]`
//! answers
//! ```json
//! {"lines":[{"seq":4,"ts":...,"line":"..."}],"next":4,"last_seq":4,"finished":false}
//! ```
//! `next` is the cursor for the following request (`after=next`); `finished` says the step has
//! ended, and once `next == last_seq` nothing more will come.
//!
//! Polling is given what production push servers (nchan) give it, so it is a real contender:
//! - `ETag` on every answer, and `304 Not Modified` with no body when the client's
//!   `If-None-Match` matches, so an empty poll costs headers only.
//! - Long-poll: with `wait=30s` the request is held until a line after `after` exists, the
//!   step finishes, the wait ends or the server shuts down.
//! - Bad input is a 4xx naming it: malformed `after`/`limit`/`wait` 400, unknown topic 404,
//!   `after` older than history 410, connection limit 503 with `Retry-After`. The 410 body
//!   says where history starts, `{"error":"...","oldest_seq":M}` (the client lagged, or the
//!   server restarted without its history): poll on with `after=M-1`; `M` and later come.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use pushbench_feed::http::{
    parse_seq, parse_wait, reject_unknown_params, ApiError, TokenAuth, TopicPath,
};
use pushbench_feed::{Delivery, FeedContext, Line, TopicStatus, Transport};
use pushbench_protocol::query::{AFTER, LIMIT, TOKEN, WAIT};
use pushbench_protocol::{poll::encode_answer, Route};

/// How the polling router behaves.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// Lines per answer when the client gives no `limit`.
    pub default_limit: usize,
    /// Largest `limit` accepted.
    pub max_limit: usize,
    /// Longest `wait` accepted.
    pub max_wait: Duration,
    /// Token a client must present (`Authorization: Bearer`, or `?token=`).
    pub auth: TokenAuth,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            default_limit: 1000,
            max_limit: 10_000,
            max_wait: Duration::from_secs(120),
            auth: TokenAuth::default(),
        }
    }
}

#[derive(Clone)]
struct PollState {
    feed: FeedContext,
    config: Arc<PollConfig>,
}

/// The route `GET …/logs` ([`Route::Logs`]).
pub fn router(feed: FeedContext, config: PollConfig) -> Router {
    Router::new()
        .route(&Route::Logs.pattern(), get(poll))
        .with_state(PollState {
            feed,
            config: Arc::new(config),
        })
}

/// A parsed poll request.
struct PollRequest {
    /// `None`: from the oldest line held.
    after: Option<u64>,
    limit: usize,
    wait: Duration,
}

fn parse_request(q: &HashMap<String, String>, c: &PollConfig) -> Result<PollRequest, ApiError> {
    reject_unknown_params(q, &[AFTER, LIMIT, WAIT, TOKEN])?;
    let after = q.get(AFTER).map(|v| parse_seq(AFTER, v)).transpose()?;
    let limit = match q.get(LIMIT) {
        None => c.default_limit,
        Some(v) => {
            let n = parse_seq(LIMIT, v)? as usize;
            // An answer of no lines can never move the cursor: a client asking for it would
            // poll for ever without progress.
            if n == 0 {
                return Err(ApiError::bad_request(
                    "limit must be at least 1: an answer of no lines never makes progress",
                ));
            }
            if n > c.max_limit {
                return Err(ApiError::bad_request(format!(
                    "limit {n} is above the maximum {}",
                    c.max_limit
                )));
            }
            n
        }
    };
    let wait = match q.get(WAIT) {
        None => Duration::ZERO,
        Some(v) => parse_wait(WAIT, v, c.max_wait)?,
    };
    Ok(PollRequest { after, limit, wait })
}

async fn poll(
    State(s): State<PollState>,
    TopicPath(topic): TopicPath,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    s.config.auth.check_request(&headers, &query)?;
    let req = parse_request(&query, &s.config)?;
    let _guard = s
        .feed
        .metrics
        .try_open(Transport::Poll)
        .ok_or_else(ApiError::too_many_connections)?;
    let mut batch = s.feed.backend.read(&topic, req.after, req.limit).await?;
    // The cursor this answer is relative to, resolved under the same lock as the read.
    let after = req.after.unwrap_or(
        batch
            .lines
            .first()
            .map_or(batch.status.oldest_seq, |l| l.seq)
            - 1,
    );
    let idle = batch.lines.is_empty() && !batch.status.finished;
    if idle && !req.wait.is_zero() {
        // Long-poll: wait for the next line, the end of the step, the timeout or shutdown.
        let mut sub = s
            .feed
            .backend
            .subscribe(&topic, Some(after), req.limit)
            .await?;
        let shutdown = s.feed.shutdown.wait();
        tokio::select! {
            _ = shutdown => {}
            _ = tokio::time::sleep(req.wait) => {}
            delivery = sub.next() => match delivery {
                Some(Delivery::Lines(lines)) => batch.lines = lines,
                Some(Delivery::Lagged { .. }) => s.feed.metrics.lag_drop(Transport::Poll),
                Some(Delivery::End { .. }) | None => {}
            },
        }
        // The status may have moved while waiting (new lines, finished).
        batch.status = s.feed.backend.status(&topic).await?;
    }
    Ok(answer(&s, after, &batch.lines, batch.status, &headers))
}

fn answer(
    s: &PollState,
    after: u64,
    lines: &[Arc<Line>],
    status: TopicStatus,
    headers: &HeaderMap,
) -> Response {
    let next = lines.last().map(|l| l.seq).unwrap_or(after);
    // The answer is fully determined by (after, next, last_seq, finished) for a given topic
    // URL: lines are immutable, and `last_seq` is part of the body.
    let etag = format!(
        "\"{after}-{next}-{}-{}\"",
        status.last_seq,
        u8::from(status.finished)
    );
    let etag_value = HeaderValue::from_str(&etag).expect("etag is ASCII");
    let cache = HeaderValue::from_static("no-cache");
    if if_none_match(headers, &etag) {
        s.feed.metrics.poll_not_modified();
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    let size: usize = lines.iter().map(|l| l.json.len() + 1).sum::<usize>() + 96;
    let mut body = Vec::with_capacity(size);
    encode_answer(
        &mut body,
        lines.iter().map(|l| &l.json[..]),
        next,
        status.last_seq,
        status.finished,
    );
    s.feed
        .metrics
        .sent(Transport::Poll, lines.len() as u64, body.len() as u64);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        Bytes::from(body),
    )
        .into_response()
}

/// Does `If-None-Match` list this ETag (or `*`)? Weak comparison, as RFC 9110 asks for GET.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn request_parsing() {
        let c = PollConfig::default();
        let r = parse_request(&q(&[("after", "5"), ("limit", "10"), ("wait", "2s")]), &c).unwrap();
        assert_eq!(
            (r.after, r.limit, r.wait),
            (Some(5), 10, Duration::from_secs(2))
        );
        assert!(parse_request(&q(&[("after", "x")]), &c).is_err());
        assert!(parse_request(&q(&[("limit", "100000")]), &c).is_err());
        let Err(zero) = parse_request(&q(&[("limit", "0")]), &c) else {
            panic!("limit=0 accepted");
        };
        assert_eq!(zero.status, StatusCode::BAD_REQUEST);
        assert!(zero.message.contains("limit"), "{}", zero.message);
        assert!(parse_request(&q(&[("wait", "10m")]), &c).is_err());
        let e = parse_request(&q(&[("afer", "1")]), &c).err().unwrap();
        assert!(e.message.contains("afer"));
    }

    #[test]
    fn etag_matching() {
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, "\"1-1-0\""));
        h.insert(
            header::IF_NONE_MATCH,
            "\"0-0-0\", W/\"1-1-0\"".parse().unwrap(),
        );
        assert!(if_none_match(&h, "\"1-1-0\""));
        assert!(!if_none_match(&h, "\"1-2-0\""));
    }
}
