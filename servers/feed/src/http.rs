//! What the axum transport crates share: the topic path extractor, cursor and duration
//! parsing, error responses and token auth. Every bad input becomes a clear 4xx naming the
//! problem, never a panic.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::backend::FeedError;
use crate::topic::TopicId;

/// An error answer: a status and a message, sent as JSON `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 503 answers.
    pub retry_after: Option<u64>,
    /// For 410 answers (history gone): the oldest seq still held, rendered as `"oldest_seq": M`
    /// so a client can resume after `M - 1` and count the lines before as lost.
    pub oldest_seq: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            oldest_seq: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The connection limit is reached: come back in a second.
    pub fn too_many_connections() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "too many connections; retry later".into(),
            retry_after: Some(1),
            oldest_seq: None,
        }
    }
}

impl From<FeedError> for ApiError {
    fn from(e: FeedError) -> Self {
        let status = match &e {
            FeedError::UnknownTopic(_) => StatusCode::NOT_FOUND,
            FeedError::Finished(_) => StatusCode::CONFLICT,
            FeedError::BeyondHead { .. } => StatusCode::BAD_REQUEST,
            FeedError::HistoryTruncated { .. } => StatusCode::GONE,
            FeedError::TooManyTopics(_) => StatusCode::SERVICE_UNAVAILABLE,
            // The shared store (Redis) is unreachable: a passing outage, not a server bug, so
            // clients and balancers retry.
            FeedError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let retry_after = matches!(e, FeedError::Backend(_)).then_some(1);
        let oldest_seq = match &e {
            FeedError::HistoryTruncated { oldest, .. } => Some(*oldest),
            _ => None,
        };
        ApiError {
            oldest_seq,
            retry_after,
            ..ApiError::new(status, e.to_string())
        }
    }
}

/// `{"error": message}` as text: the body of every error answer.
pub fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Longest request target (path and query) accepted, bytes; longer ones get `414`. The same
/// bound as nginx's default (`large_client_header_buffers 4 8k`: a request line fits in
/// 8 KiB); topic paths and cursors of this feed take well under 200 bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Middleware (`axum::middleware::from_fn(error_bodies)`, the outermost layer) that makes
/// every error answer say what was wrong, as one line of JSON (`{"error":"..."}`): a `4xx` or
/// `5xx` that is not JSON already gets its text, or when it has none, a message for its
/// status. So routing's bare `404` and `405` (which keeps its `Allow` header), and axum's
/// plain-text rejections, answer like every other error of the feed. It also answers a
/// request target over [`MAX_URI_BYTES`] with `414`. Successful answers, streams included,
/// pass untouched.
pub async fn error_bodies(request: Request, next: Next) -> Response {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "request URI too long: {target_len} bytes, at most {MAX_URI_BYTES} are accepted"
            ),
        )
        .into_response();
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error bodies are short texts (axum's rejections); a longer one is cut to its first line.
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let text = text.lines().map(str::trim).find(|l| !l.is_empty());
    let message = match (status, text) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            // axum's method router adds `Allow` outside the route's layers, so it is often not
            // there yet; the client gets it either way.
            match parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()) {
                Some(allowed) if !allowed.is_empty() => {
                    format!("method {method} is not allowed on {path}; allowed: {allowed}")
                }
                _ => format!(
                    "method {method} is not allowed on {path}; the Allow header lists those that are"
                ),
            }
        }
        (_, Some(text)) => text.to_owned(),
        (StatusCode::NOT_FOUND, None) => format!("no such route: {path}"),
        (status, None) => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(error_json(&message)))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The shape of `error_json`, with room for the 410's extra field.
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(oldest) = self.oldest_seq {
            body["oldest_seq"] = oldest.into();
        }
        let body = body.to_string();
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The topic named by a `/{org}/{repo}/builds/{build}/steps/{step}/...` route, validated. Route
/// patterns come from the protocol crate ([`pushbench_protocol::Route::pattern`]).
pub struct TopicPath(pub TopicId);

impl<S: Send + Sync> FromRequestParts<S> for TopicPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((org, repo, build, step)) =
            Path::<(String, String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(format!("bad topic path: {e}")))?;
        TopicId::new(org, repo, build, step)
            .map(TopicPath)
            .map_err(|e| ApiError::bad_request(format!("bad topic path: {e}")))
    }
}

/// Parses a sequence number given by a client (`after`, `Last-Event-ID`).
pub fn parse_seq(what: &str, value: &str) -> Result<u64, ApiError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "{what} must be a non-negative whole number (a line's seq), got {value:?}"
        )));
    }
    v.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("{what} {value:?} is too large")))
}

/// Parses a wait such as `30s`, `500ms` or `2m` (a bare number means seconds), at most `max`.
pub fn parse_wait(what: &str, value: &str, max: Duration) -> Result<Duration, ApiError> {
    let v = value.trim();
    let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        humantime::parse_duration(v).ok()
    }
    .ok_or_else(|| {
        ApiError::bad_request(format!(
            "{what} must be a duration such as 30s, 500ms or 2m, got {value:?}"
        ))
    })?;
    if d > max {
        return Err(ApiError::bad_request(format!(
            "{what} {value:?} is longer than the maximum {}",
            humantime::format_duration(max)
        )));
    }
    Ok(d)
}

/// Rejects query parameters other than `allowed`, naming them: a misspelt parameter is an
/// error, never silently ignored.
pub fn reject_unknown_params(
    query: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match query.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!(
            "unknown query parameter {unknown:?}; expected {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A shared secret clients must present, as `Authorization: Bearer TOKEN` or, for clients that
/// cannot set headers (a browser's EventSource), as `?token=TOKEN`.
#[derive(Clone, Debug, Default)]
pub struct TokenAuth {
    token: Option<String>,
}

impl TokenAuth {
    pub fn new(token: Option<String>) -> Self {
        TokenAuth { token }
    }

    pub fn is_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a request's credentials, the query's `token` included.
    pub fn check_request(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
    ) -> Result<(), ApiError> {
        self.check(headers, query.get("token").map(String::as_str))
    }

    /// Checks a request's credentials.
    pub fn check(&self, headers: &HeaderMap, query_token: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let from_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let given = from_header.or(query_token);
        match given {
            Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid token")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing token: send Authorization: Bearer TOKEN or ?token=TOKEN",
            )),
        }
    }
}

/// Which browser origins may read the feed cross-origin.
///
/// Origins are echoed back one by one rather than answered with `*`: a wildcard cannot be
/// combined with credentials (browsers reject `Access-Control-Allow-Origin: *` together with
/// `Access-Control-Allow-Credentials: true`), and the first SSE prototype got exactly this wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// Allowed origins such as `https://ci.example.com`; empty means no CORS headers at all.
    pub allowed_origins: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` (cookies, `withCredentials`).
    pub allow_credentials: bool,
}

impl CorsConfig {
    /// The tower-http layer for this configuration, or `None` when CORS is off.
    pub fn layer(&self) -> Result<Option<tower_http::cors::CorsLayer>, String> {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        if self.allowed_origins.is_empty() {
            return Ok(None);
        }
        let mut origins = Vec::new();
        for o in &self.allowed_origins {
            if o == "*" {
                return Err(
                    "CORS origin \"*\" is not allowed: list the origins, they are echoed back"
                        .into(),
                );
            }
            let v = HeaderValue::from_str(o)
                .map_err(|_| format!("CORS origin {o:?} is not a valid header value"))?;
            origins.push(v);
        }
        Ok(Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(self.allow_credentials)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_NONE_MATCH,
                    header::HeaderName::from_static("last-event-id"),
                ])
                .expose_headers([header::ETAG, header::RETRY_AFTER]),
        ))
    }
}

/// Compares without an early exit, so response timing does not leak the token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_and_waits() {
        assert_eq!(parse_seq("after", "42").unwrap(), 42);
        assert!(parse_seq("after", "-1").is_err());
        assert!(parse_seq("after", "").is_err());
        assert!(parse_seq("after", "1e3").is_err());
        assert!(parse_seq("after", "99999999999999999999999").is_err());
        let max = Duration::from_secs(60);
        assert_eq!(
            parse_wait("wait", "2", max).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            parse_wait("wait", "500ms", max).unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_wait("wait", "2h", max).is_err());
        assert!(parse_wait("wait", "soon", max).is_err());
    }

    #[tokio::test]
    async fn history_gone_names_where_history_starts() {
        let topic = TopicId::new("acme", "app", "1", "test").unwrap();
        let gone = ApiError::from(FeedError::HistoryTruncated {
            topic: topic.clone(),
            after: 3,
            oldest: 101,
        });
        assert_eq!(
            (gone.status, gone.oldest_seq),
            (StatusCode::GONE, Some(101))
        );
        let body = axum::body::to_bytes(gone.into_response().into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["oldest_seq"], 101);
        assert!(json["error"]
            .as_str()
            .unwrap()
            .contains("starts at seq 101"));
        // Other errors carry no such field.
        let unknown = ApiError::from(FeedError::UnknownTopic(topic)).into_response();
        let body = axum::body::to_bytes(unknown.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
    }

    #[test]
    fn token_auth() {
        let auth = TokenAuth::new(Some("s3cret".into()));
        let mut h = HeaderMap::new();
        assert_eq!(
            auth.check(&h, None).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert!(auth.check(&h, Some("s3cret")).is_ok());
        assert!(auth.check(&h, Some("nope")).is_err());
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(auth.check(&h, None).is_ok());
        assert!(TokenAuth::new(None).check(&HeaderMap::new(), None).is_ok());
    }
}
