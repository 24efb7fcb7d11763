//! The publishing side: what a CI worker streaming its output does.
//!
//! - `POST .../logs` with a `text/plain` body appends one line per body line (LF or CRLF line
//!   ends; a CR inside a line, as progress bars have, is kept). The first append creates the
//!   topic. Each line is stamped with the time the request arrived.
//! - `POST .../logs/finish` ends the step: open streams get their terminal signal.
//!
//! Bodies over the limit are refused with 413 before any line is appended, non-UTF-8 bodies
//! with 400: a request is appended whole or not at all. A `Content-Length` over the limit is
//! refused before a byte of the body is read (so `Expect: 100-continue` gets its 413 instead
//! of `100 Continue`); a chunked body as soon as it crosses the limit. Either 413 closes the
//! connection (`Connection: close`): the rest of the body is never read, and the connection
//! driver lingers so the client sees the answer rather than a reset.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use pushbench_feed::backend::NewLine;
use pushbench_feed::clock::unix_nanos;
use pushbench_feed::http::{ApiError, TokenAuth, TopicPath};
use pushbench_feed::FeedContext;
use pushbench_protocol::Route;

/// Limits of the publishing routes.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
    /// Token publishers must present (`Authorization: Bearer`), if any.
    pub auth: TokenAuth,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            max_body_bytes: 1024 * 1024,
            auth: TokenAuth::default(),
        }
    }
}

#[derive(Clone)]
struct PublishState {
    feed: FeedContext,
    config: Arc<PublishConfig>,
}

pub fn router(feed: FeedContext, config: PublishConfig) -> Router {
    let limit = config.max_body_bytes;
    Router::new()
        .route(&Route::Logs.pattern(), post(append))
        .route(&Route::Finish.pattern(), post(finish))
        .layer(DefaultBodyLimit::max(limit))
        .route_layer(middleware::from_fn_with_state(limit, refuse_oversized))
        .with_state(PublishState {
            feed,
            config: Arc::new(config),
        })
}

/// The 413 of a body over `limit` bytes (`len` of them when the client said so).
fn too_large(limit: usize, len: Option<u64>) -> Response {
    let size = match len {
        Some(len) => format!("{len} bytes"),
        None => format!("over {limit} bytes"),
    };
    let mut res = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body too large: {size}; at most {limit} bytes are accepted"),
    )
    .into_response();
    // The rest of the body stays unread, so this connection cannot carry another request.
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Refuses a declared `Content-Length` over the limit before the body is touched. Reading
/// none of it also means hyper never sends `100 Continue` to a client that asked with
/// `Expect: 100-continue`. A chunked body is cut when it crosses the limit, in [`append`].
async fn refuse_oversized(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => too_large(limit, Some(len)),
        _ => next.run(request).await,
    }
}

/// Splits a body into lines: LF or CRLF ends a line; a final line end is optional.
pub fn split_lines(body: &str) -> Vec<String> {
    let body = body.strip_suffix('\n').unwrap_or(body);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect()
}

async fn append(
    State(s): State<PublishState>,
    TopicPath(topic): TopicPath,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let ts = unix_nanos();
    s.config.auth.check(&headers, None)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("text/plain") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("body must be text/plain (one log line per line), got {content_type:?}"),
        ));
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Ok(too_large(s.config.max_body_bytes, None));
        }
        Err(e) => return Err(ApiError::new(e.status(), e.body_text())),
    };
    if body.is_empty() {
        return Err(ApiError::bad_request("empty body: nothing to append"));
    }
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let lines: Vec<NewLine> = split_lines(text)
        .into_iter()
        .map(|text| NewLine { ts, text })
        .collect();
    let n = lines.len() as u64;
    let receipt = s.feed.backend.append(&topic, lines).await?;
    s.feed.metrics.appended(n);
    Ok(Json(serde_json::json!({
        "first_seq": receipt.first_seq,
        "last_seq": receipt.last_seq,
    }))
    .into_response())
}

async fn finish(
    State(s): State<PublishState>,
    TopicPath(topic): TopicPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.config.auth.check(&headers, None)?;
    let status = s.feed.backend.finish(&topic).await?;
    Ok(Json(serde_json::json!({
        "last_seq": status.last_seq,
        "finished": true,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lf_and_crlf_and_keeps_inner_cr() {
        assert_eq!(split_lines("a\nb\n"), vec!["a", "b"]);
        assert_eq!(split_lines("a\r\nb"), vec!["a", "b"]);
        assert_eq!(split_lines("10%\r20%\n"), vec!["10%\r20%"]);
        assert_eq!(split_lines("\n"), vec![""]);
        assert_eq!(split_lines("a\n\nb"), vec!["a", "", "b"]);
    }
}
