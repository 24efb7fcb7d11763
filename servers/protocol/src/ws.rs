//! WebSocket close codes a feed server sends. Lines travel as text frames, one payload each.

/// The step finished: every line was sent (a normal closure, RFC 6455).
pub const CLOSE_FINISHED: u16 = 1000;
/// The server is shutting down ("going away"); reconnect and resume with `?after=`.
pub const CLOSE_SHUTDOWN: u16 = 1001;
/// The client fell behind the server's history ring; the reason names the missing seq.
pub const CLOSE_LAGGED: u16 = 4008;

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_pinned() {
        use super::*;
        assert_eq!(
            [CLOSE_FINISHED, CLOSE_SHUTDOWN, CLOSE_LAGGED],
            [1000, 1001, 4008]
        );
    }
}
