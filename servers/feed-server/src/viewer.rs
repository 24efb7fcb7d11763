//! The log viewer: a single page, embedded in the binary, served at `/`.
//!
//! Plain HTML, CSS and JavaScript (`assets/viewer/`), no build step. The page lists the steps
//! (`GET /topics`), lets the user pick one and a transport, and streams its log with the
//! browser's own `EventSource`, `WebSocket` or `fetch`; see the comment at the top of
//! `viewer.js` for what it shows and how it resumes.
//!
//! Caching: `Cache-Control: no-cache` with a strong `ETag` (a hash of the embedded file), so a
//! browser revalidates each load with one cheap 304 and never runs a page older than the
//! binary. `Content-Security-Policy` lets the page run only its own script and style, and
//! connect to any HTTP(S)/WS(S) feed server (`?server=` may name another origin);
//! `Referrer-Policy: no-referrer` keeps a `?token=` in the page URL out of `Referer` headers.

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file and the headers it is served with.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Asset {
        // Stable for the life of the binary, which is all an ETag of an embedded file needs.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", h.finish()))
            .expect("hex digits are a valid header value");
        Asset {
            body,
            content_type,
            etag,
        }
    }

    fn serve(&self, request: &HeaderMap) -> Response {
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ];
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().trim_start_matches("W/").as_bytes() == self.etag.as_bytes());
        if fresh {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body).into_response()
        }
    }
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self' http: https: ws: wss:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/viewer/index.html"),
        "text/html; charset=utf-8",
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/viewer/viewer.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/viewer/viewer.css"),
        "text/css; charset=utf-8",
    )
});

/// `GET /`, `/viewer.js` and `/viewer.css`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { INDEX.serve(&h) }))
        .route(
            "/viewer.js",
            get(|h: HeaderMap| async move { SCRIPT.serve(&h) }),
        )
        .route(
            "/viewer.css",
            get(|h: HeaderMap| async move { STYLE.serve(&h) }),
        )
}
