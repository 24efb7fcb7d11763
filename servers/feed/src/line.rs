//! One log line, as every transport sends it.

use bytes::Bytes;
pub use pushbench_protocol::payload::LinePayload;

/// A log line with its position and scheduled publish time.
///
/// The JSON payload `{"seq":N,"ts":UNIX_NANOS,"line":"..."}` ([`LinePayload`], defined by the
/// protocol crate) is encoded once, when the line is
/// appended, and shared by every subscriber and transport: fan-out to ten thousand clients must
/// not serialise ten thousand times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Position in its topic, from 1, without gaps.
    pub seq: u64,
    /// Scheduled publish time, Unix nanoseconds (the append time for POSTed lines).
    pub ts: u64,
    /// The payload, UTF-8 JSON on one line (control characters, CR included, are escaped).
    pub json: Bytes,
}

impl Line {
    /// Encodes a line. `text` may hold anything UTF-8, including CR and NUL: JSON escapes them,
    /// so no transport can be broken by a log line.
    pub fn new(seq: u64, ts: u64, text: &str) -> Line {
        Line {
            seq,
            ts,
            json: Bytes::from(pushbench_protocol::encode_line(seq, ts, text)),
        }
    }

    /// The payload as UTF-8 text.
    pub fn json_str(&self) -> &str {
        // Built by serde_json, which writes UTF-8 only.
        std::str::from_utf8(&self.json).expect("line json is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_contract_payload_and_escapes_control_characters() {
        let line = Line::new(7, 1_700_000_000_000_000_000, "50%\r100%\n\0 \"q\"");
        assert_eq!(
            line.json_str(),
            r#"{"seq":7,"ts":1700000000000000000,"line":"50%\r100%\n\u0000 \"q\""}"#
        );
        assert!(!line.json.contains(&b'\r') && !line.json.contains(&b'\n'));
        let back: LinePayload<'_> = serde_json::from_slice(&line.json).unwrap();
        assert_eq!(back.line, "50%\r100%\n\0 \"q\"");
    }
}
