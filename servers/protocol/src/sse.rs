//! Server-sent events: what a feed server's event stream says besides the lines.
//!
//! A line is an event with `id: SEQ` and `data: PAYLOAD` and no `event` field, so clients
//! dispatch it as [`EVENT_MESSAGE`]. When the step finishes the stream sends [`EVENT_END`]
//! (`data: {"last_seq":N}`, and the last id) and closes; a subscriber that fell behind the
//! server's history gets [`EVENT_LAGGED`] (`data: {"missing_from":N,"oldest_seq":M}`) and the
//! stream closes.

/// The type of an event without an `event` field (WHATWG): every log line.
pub const EVENT_MESSAGE: &str = "message";
/// The step finished; nothing follows.
pub const EVENT_END: &str = "end";
/// The subscriber fell behind the history ring; lines are lost and the stream closes.
pub const EVENT_LAGGED: &str = "lagged";
/// The media type of the stream.
pub const CONTENT_TYPE: &str = "text/event-stream";

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_pinned() {
        use super::*;
        assert_eq!(
            [EVENT_MESSAGE, EVENT_END, EVENT_LAGGED, CONTENT_TYPE],
            ["message", "end", "lagged", "text/event-stream"]
        );
    }
}
