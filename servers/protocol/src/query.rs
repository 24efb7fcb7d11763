//! Query parameter names of the read routes.

/// The cursor: the last seq the client has (`?after=SEQ`). Every read route takes it (SSE as a
/// fallback for `Last-Event-ID`); the client gets the lines after it.
pub const AFTER: &str = "after";
/// SSE: `Last-Event-ID` for clients that cannot set headers (a browser's `EventSource`).
pub const LAST_EVENT_ID: &str = "lastEventId";
/// Poll: most lines in one answer.
pub const LIMIT: &str = "limit";
/// Poll: hold the request up to this long for a line (long-poll), e.g. `30s` or `500ms`.
pub const WAIT: &str = "wait";
/// The reader token, for clients that cannot set `Authorization` (browsers' `EventSource`
/// and `WebSocket`).
pub const TOKEN: &str = "token";
