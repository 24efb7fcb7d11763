//! The line payload every transport carries: `{"seq":N,"ts":UNIX_NANOS,"line":"..."}`.
//!
//! - `seq`: the line's position in its topic, from 1, without gaps.
//! - `ts`: Unix nanoseconds of the time the line was *scheduled* (open-loop generator) or
//!   appended (POSTed lines): what delivery latency is measured from.
//! - `line`: the text, any UTF-8 (CR, LF and NUL included: JSON escapes them, so the payload
//!   is one line without control characters and no framing can be broken by it).
//!
//! Fields are written in that order. SSE sends the payload as one `data:` line, WebSocket as
//! one text frame, a poll answer inside its `lines` array.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The whole payload. Serialising it is [`encode_line`]; deserialising borrows `line` from the
/// input when it has no escapes (and copies it when it has).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePayload<'a> {
    pub seq: u64,
    pub ts: u64,
    #[serde(borrow)]
    pub line: Cow<'a, str>,
}

/// The fields a receiver measures with, `seq` and `ts`; the text is skipped, not copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct LineStamp {
    pub seq: u64,
    pub ts: u64,
}

/// The text only (receivers that find their stamps inside the text, as the load generator's
/// markers against external targets).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LineText<'a> {
    #[serde(borrow)]
    pub line: Cow<'a, str>,
}

/// The payload's bytes: UTF-8 JSON on one line.
pub fn encode_line(seq: u64, ts: u64, text: &str) -> Vec<u8> {
    let payload = LinePayload {
        seq,
        ts,
        line: Cow::Borrowed(text),
    };
    // Serialising a struct of integers and a string cannot fail.
    serde_json::to_vec(&payload).expect("line payload serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_contract_payload_and_escapes_control_characters() {
        let json = encode_line(7, 1_700_000_000_000_000_000, "50%\r100%\n\0 \"q\"");
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"seq":7,"ts":1700000000000000000,"line":"50%\r100%\n\u0000 \"q\""}"#
        );
        assert!(!json.contains(&b'\r') && !json.contains(&b'\n'));
        let back: LinePayload<'_> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.line, "50%\r100%\n\0 \"q\"");
        let stamp: LineStamp = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            stamp,
            LineStamp {
                seq: 7,
                ts: 1_700_000_000_000_000_000
            }
        );
    }

    #[test]
    fn decoding_borrows_plain_text() {
        let json = encode_line(1, 2, "plain text");
        let p: LinePayload<'_> = serde_json::from_slice(&json).unwrap();
        assert!(matches!(p.line, Cow::Borrowed("plain text")));
        let t: LineText<'_> = serde_json::from_slice(&json).unwrap();
        assert!(matches!(t.line, Cow::Borrowed("plain text")));
    }
}
