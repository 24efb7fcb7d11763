//! `GET /topics`: the steps the feed holds, so a viewer can offer them to choose from.
//!
//! ```json
//! {"topics":[{"topic":"acme/app/builds/1/steps/1","logs":"/acme/app/builds/1/steps/1/logs",
//!             "last_seq":120,"finished":false}],
//!  "total":1,"truncated":false}
//! ```
//! Sorted by name, at most `?limit=N` entries (default 1000, at most 10,000; `truncated` says
//! when more exist). Cost: one sorted copy of the topic names and one status read per listed
//! topic; it is an operator and UI route, not a hot path. Readers' settings apply: the SSE
//! token (`Authorization: Bearer` or `?token=`) and CORS.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use pushbench_feed::http::{parse_seq, reject_unknown_params, ApiError, CorsConfig, TokenAuth};
use pushbench_feed::{FeedContext, FeedError};

/// Entries listed when the client gives no `limit`.
pub const DEFAULT_LIMIT: usize = 1000;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Clone)]
struct TopicsState {
    feed: FeedContext,
    auth: TokenAuth,
}

/// The route `GET /topics`, behind the readers' token and CORS settings.
pub fn router(feed: FeedContext, auth: TokenAuth, cors: &CorsConfig) -> Result<Router, String> {
    let router = Router::new()
        .route("/topics", get(list))
        .with_state(TopicsState { feed, auth });
    Ok(match cors.layer()? {
        Some(layer) => router.layer(layer),
        None => router,
    })
}

async fn list(
    State(s): State<TopicsState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    reject_unknown_params(&query, &["limit", "token"])?;
    s.auth.check_request(&headers, &query)?;
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => {
            let n = parse_seq("limit", v)?;
            if n > MAX_LIMIT as u64 {
                return Err(ApiError::bad_request(format!(
                    "limit {n} is above the maximum {MAX_LIMIT}"
                )));
            }
            n as usize
        }
    };
    let ids = s.feed.backend.topics().await;
    let mut topics = Vec::with_capacity(ids.len().min(limit));
    for id in ids.iter().take(limit) {
        let status = match s.feed.backend.status(id).await {
            Ok(status) => status,
            // Listed a moment ago, gone now: not an error of this request.
            Err(FeedError::UnknownTopic(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        topics.push(serde_json::json!({
            "topic": id.to_string(),
            "logs": id.logs_path(),
            "last_seq": status.last_seq,
            "finished": status.finished,
        }));
    }
    Ok(Json(serde_json::json!({
        "topics": topics,
        "total": ids.len(),
        "truncated": ids.len() > limit,
    })))
}
