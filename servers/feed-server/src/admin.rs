//! Operator routes, mounted only when the server is started with `--admin-token`.
//!
//! - `POST /admin/drop-connections/{org}/{repo}/builds/{build}/steps/{step}` ends every open
//!   stream of a step as a lost connection would (see [`pushbench_feed::Backend::disconnect`]):
//!   SSE responses end without `event: end` so `EventSource` reconnects with its
//!   `Last-Event-ID`, WebSockets close with 1001, held long-polls answer at once. Clients
//!   resume from their own cursors. Answers `{"topic": "...", "dropped": N}`, N being the
//!   subscriptions that were open.
//!
//! This is fault injection, for the browser tests and for operators checking that clients
//! recover; it is off by default and needs `Authorization: Bearer ADMIN_TOKEN` (a header only:
//! an admin token has no business in a URL).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use pushbench_feed::http::{ApiError, TokenAuth, TopicPath};
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
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "admin routes need Authorization: Bearer ADMIN_TOKEN",
        ));
    }
    s.auth.check(&headers, None)?;
    let dropped = s.feed.backend.disconnect(&topic).await?;
    tracing::info!(%topic, dropped, "dropped connections on request");
    Ok(Json(serde_json::json!({
        "topic": topic.to_string(),
        "dropped": dropped,
    })))
}
