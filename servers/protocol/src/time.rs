//! The answer of [`crate::route::TIME`]: the server's wall clock.
//!
//! A load generator on another machine timestamps its request and the answer's arrival with
//! its own clock and reads the server's in between (an NTP-style exchange over HTTP). HTTP's
//! `Date` header would do the same at one-second resolution; this body carries nanoseconds.

use serde::{Deserialize, Serialize};

/// `{"unix_ns":N}`: the server's `CLOCK_REALTIME` in nanoseconds since the Unix epoch, read
/// as late as the server could before writing the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTime {
    pub unix_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::ServerTime;

    #[test]
    fn the_answer_is_one_field_of_nanoseconds() {
        let t = ServerTime {
            unix_ns: 1_700_000_000_123_456_789,
        };
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, r#"{"unix_ns":1700000000123456789}"#);
        assert_eq!(serde_json::from_str::<ServerTime>(&text).unwrap(), t);
        assert!(serde_json::from_str::<ServerTime>(r#"{"unix_ns":-1}"#).is_err());
        assert!(serde_json::from_str::<ServerTime>(r#"{"time":1}"#).is_err());
    }
}
