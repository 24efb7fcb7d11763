//! The bytes of the event stream. Kept apart from the HTTP handling so the framing can be
//! read, and tested, on its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use pushbench_feed::Line;
use pushbench_protocol::sse::{EVENT_END, EVENT_LAGGED};

/// A keep-alive: a comment line and the blank line that ends it. Ignored by every client.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// `id: SEQ` and `data: JSON` per line. The JSON has no CR or LF (it escapes them), so one
/// `data:` line carries it whole.
pub fn encode_lines(lines: &[Arc<Line>]) -> Bytes {
    let size: usize = lines.iter().map(|l| l.json.len() + 32).sum();
    let mut buf = BytesMut::with_capacity(size);
    let mut itoa = itoa_buf::Buffer::new();
    for l in lines {
        buf.put_slice(b"id: ");
        buf.put_slice(itoa.format(l.seq).as_bytes());
        buf.put_slice(b"\ndata: ");
        buf.put_slice(&l.json);
        buf.put_slice(b"\n\n");
    }
    buf.freeze()
}

/// The terminal event of a finished step. It carries the last id, so a browser that
/// reconnects anyway is answered 204 and stops.
pub fn encode_end(last_seq: u64) -> Bytes {
    Bytes::from(format!(
        "event: {EVENT_END}\nid: {last_seq}\ndata: {{\"last_seq\":{last_seq}}}\n\n"
    ))
}

/// Sent before closing a subscriber that fell behind the server's history:
/// `event: lagged` with `data: {"missing_from":N,"oldest_seq":M}` and no `id` (the client's
/// last id stays the last line it got). `N` is the first seq it missed, `M` the oldest still
/// held: it resumes with `Last-Event-ID: M-1` and counts `N..M` as lost.
pub fn encode_lagged(missing_from: u64, oldest_seq: u64) -> Bytes {
    Bytes::from(format!(
        "event: {EVENT_LAGGED}\ndata: {{\"missing_from\":{missing_from},\"oldest_seq\":{oldest_seq}}}\n\n"
    ))
}

/// The reconnect delay hint. A `retry` field alone dispatches no event.
pub fn encode_retry(retry: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", retry.as_millis()))
}

/// Integer formatting without allocation, for the hot path.
mod itoa_buf {
    pub struct Buffer {
        bytes: [u8; 20],
    }

    impl Buffer {
        pub fn new() -> Self {
            Buffer { bytes: [0; 20] }
        }

        pub fn format(&mut self, mut n: u64) -> &str {
            let mut i = self.bytes.len();
            loop {
                i -= 1;
                self.bytes[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            // Only ASCII digits were written.
            std::str::from_utf8(&self.bytes[i..]).expect("digits are UTF-8")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines_with_ids_and_escaped_payloads() {
        let lines = vec![
            Arc::new(Line::new(9, 5, "a\rb")),
            Arc::new(Line::new(10, 6, "x\ny")),
        ];
        let out = encode_lines(&lines);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "id: 9\ndata: {\"seq\":9,\"ts\":5,\"line\":\"a\\rb\"}\n\nid: 10\ndata: {\"seq\":10,\"ts\":6,\"line\":\"x\\ny\"}\n\n"
        );
        assert_eq!(itoa_buf::Buffer::new().format(0), "0");
        assert_eq!(
            itoa_buf::Buffer::new().format(u64::MAX),
            u64::MAX.to_string()
        );
        assert_eq!(
            &encode_retry(Duration::from_millis(2500))[..],
            b"retry: 2500\n\n"
        );
        assert_eq!(
            &encode_end(3)[..],
            b"event: end\nid: 3\ndata: {\"last_seq\":3}\n\n"
        );
        assert_eq!(
            &encode_lagged(3, 7)[..],
            b"event: lagged\ndata: {\"missing_from\":3,\"oldest_seq\":7}\n\n"
        );
    }
}
