//! Operator routes, mounted only when the server is started with `--admin-token`.
//!
//! - `POST /admin/drop-connections/{org}/{repo}/builds/{build}/steps/{step}[?fraction=F]`
//!   ends the oldest `ceil(F × open)` streams of a step (F in (0, 1], default 1: all) as a
//!   lost connection would (see [`pushbench_feed::Backend::disconnect`]): SSE responses end
//!   without `event: end` so `EventSource` reconnects with its `Last-Event-ID`, WebSockets
//!   close with 1001, held long-polls answer at once. Clients resume from their own cursors;
//!   the streams not chosen carry on undisturbed. Answers
//!   `{"topic": "...", "dropped": N, "open": M}`, M being the streams open when the drop came.
//!   With `--backend redis://...` the drop applies on every server sharing that Redis: each
//!   ends the oldest `ceil(F × open)` of *its own* streams of the step, and the answer
//!   totals `dropped` and `open` over the servers that answered within 2 s (so `dropped`
//!   can exceed `ceil(F × open)` by one per server).
//!   A fraction outside (0, 1], NaN or not a number is a 400 naming `fraction`. The load
//!   generator's `drop` fault calls this with its `fraction`.
//!
//! This is fault injection, for the browser tests and for operators checking that clients
//! recover; it is off by default and needs `Authorization: Bearer ADMIN_TOKEN` (a header only:
//! an admin token has no business in a URL).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use pushbench_feed::http::{reject_unknown_params, ApiError, TokenAuth, TopicPath};
use pushbench_feed::FeedContext;

/// The route of the drop, for `Router::route`.
pub const DROP_ROUTE: &str = "/admin/drop-connections/{org}/{repo}/builds/{build}/steps/{step}";

#[derive(Clone)]
struct AdminState {
    feed: FeedContext,
    auth: TokenAuth,
}

/// The admin routes, guarded by `token`.
pub fn router(feed: FeedContext, token: String) -> Router {
    Router::new()
        .route(DROP_ROUTE, post(drop_connections))
        .with_state(AdminState {
            feed,
            auth: TokenAuth::new(Some(token)),
        })
}

async fn drop_connections(
    State(s): State<AdminState>,
    TopicPath(topic): TopicPath,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "admin routes need Authorization: Bearer ADMIN_TOKEN",
        ));
    }
    s.auth.check(&headers, None)?;
    // Parameters only after the credentials: an unauthenticated caller learns nothing.
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    reject_unknown_params(&query, &[FRACTION])?;
    let fraction = query.get(FRACTION).map_or(Ok(1.0), |v| parse_fraction(v))?;
    let d = s.feed.backend.disconnect(&topic, fraction).await?;
    tracing::info!(%topic, fraction, dropped = d.dropped, open = d.open, "dropped connections on request");
    Ok(Json(serde_json::json!({
        "topic": topic.to_string(),
        "dropped": d.dropped,
        "open": d.open,
    })))
}

/// The query parameter naming the share of streams to drop.
const FRACTION: &str = "fraction";

/// A drop's fraction: a number in (0, 1]. 0 would drop nothing, which is never what a fault
/// injection meant, so it is refused rather than answered with a drop of none.
fn parse_fraction(value: &str) -> Result<f64, ApiError> {
    match value.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(ApiError::bad_request(format!(
            "{FRACTION} must be a number in (0, 1] (the share of open streams to drop), got \
             {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fraction;

    #[test]
    fn fractions_lie_in_zero_exclusive_to_one() {
        assert_eq!(parse_fraction("1").unwrap(), 1.0);
        assert_eq!(parse_fraction("0.25").unwrap(), 0.25);
        assert_eq!(parse_fraction("1e-3").unwrap(), 0.001);
        for bad in ["0", "-0.5", "1.01", "NaN", "inf", "half", ""] {
            let e = parse_fraction(bad).unwrap_err();
            assert!(e.message.contains("fraction"), "{bad}: {}", e.message);
        }
    }
}
