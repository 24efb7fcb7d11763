//! Incremental WHATWG `text/event-stream` parser for the load generator's SSE client.
//!
//! The client feeds raw (already de-chunked) body bytes as they arrive from the socket; reads
//! split events, lines, CRLF pairs, the BOM and multi-byte UTF-8 characters at arbitrary points,
//! so every rule here holds at any split point. One parser lives per connection and thousands run
//! at once, so while idle it keeps no buffers but the last event id (twice: as parsed and as
//! acknowledged) and, once a line has spanned two reads, that line's buffer for reuse; it copies
//! a line only when it spans two reads, and allocates once per dispatched event (its data) plus
//! its type and id.
//!
//! Rules follow the HTML standard's "event stream interpretation":
//! - the stream is UTF-8; a leading BOM is dropped. Unlike a browser, which substitutes U+FFFD,
//!   invalid UTF-8 is an error here: a server that emits it has a bug the benchmark must report;
//! - lines end in LF, CR or CRLF (a CRLF split across two reads is one line end);
//! - a line starting with `:` is a comment (servers use them as keep-alives);
//! - `field: value` — one space after the colon is removed; a line without a colon is a field
//!   with an empty value; `data` appends value + LF, `event` sets the type, `id` sets the last
//!   event id unless it contains NUL, `retry` is taken only if all ASCII digits; other fields
//!   are ignored;
//! - a blank line dispatches the event if its data is non-empty (one trailing LF removed, type
//!   defaulting to `message`) and then resets data and type, but never the last event id;
//! - an event not terminated by a blank line when the stream ends is dropped, never dispatched
//!   (see [`SseParser::has_partial_event`]).

use thiserror::Error;

/// The UTF-8 byte order mark, dropped when it opens the stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Default bound on one line or one event's data. The parser buffers an incomplete line and an
/// undispatched event's data; without a bound a broken server could grow them without limit on
/// every one of thousands of connections.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// A dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type; `message` when the event had no (or an empty) `event` field.
    pub event: String,
    /// The data lines joined with LF.
    pub data: String,
    /// The last event id as of dispatch; `None` when it is empty (never set, or reset by `id:`).
    pub id: Option<String>,
}

/// Why a stream could not be parsed. After an error the parser stays failed (the same error is
/// returned by every later [`SseParser::feed`]) until [`SseParser::reconnect`] starts a new stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SseError {
    /// The stream is not valid UTF-8. `offset` counts bytes from the start of this stream
    /// (including a BOM) to the first invalid byte.
    #[error("invalid UTF-8 in event stream at byte offset {offset}")]
    InvalidUtf8 {
        /// Stream byte offset of the first invalid byte.
        offset: u64,
    },
    /// A line, or an event's accumulated data, exceeded the configured bound.
    #[error("event stream line or event data exceeds {limit_bytes} bytes (line starts at byte offset {offset})")]
    TooLarge {
        /// Stream byte offset of the start of the offending line.
        offset: u64,
        /// The configured bound.
        limit_bytes: usize,
    },
}

/// Incremental `text/event-stream` parser; one per connection.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// Bytes of a line that started in an earlier read and has not ended yet. Empty (and normally
    /// capacity-free) when reads end on line boundaries.
    partial_line: Vec<u8>,
    /// Stream offset of the first byte in `partial_line`, for error messages.
    partial_line_offset: u64,
    /// Stream offset of the next byte to be fed.
    offset: u64,
    /// The data buffer of the event being built.
    data: String,
    /// The event type buffer of the event being built.
    event_type: String,
    /// The last event ID buffer: set by `id` fields as they are parsed.
    id_buffer: String,
    /// The event source's last event ID string: copied from `id_buffer` at each blank line. This,
    /// not `id_buffer`, is what a reconnect sends, so an `id` whose event never completed is not
    /// acknowledged.
    last_event_id: String,
    retry_ms: Option<u64>,
    comments_seen: u64,
    max_event_bytes: usize,
    /// How many BOM bytes matched so far while still at the stream start.
    bom_matched: u8,
    /// Still inside the first bytes of the stream, where a BOM may appear.
    at_stream_start: bool,
    /// The previous read ended with CR: an LF opening the next read belongs to that line end.
    pending_cr: bool,
    error: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser for a new stream, bounding lines and event data at [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser for a new stream that fails with [`SseError::TooLarge`] once one line or one
    /// event's data exceeds `max_event_bytes`.
    fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            partial_line: Vec::new(),
            partial_line_offset: 0,
            offset: 0,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry_ms: None,
            comments_seen: 0,
            max_event_bytes,
            bom_matched: 0,
            at_stream_start: true,
            pending_cr: false,
            error: None,
        }
    }

    /// Prepares for the stream of a new connection, as an EventSource does when it reconnects:
    /// drops any partial line or event (and a previous error) and expects a BOM again, but keeps
    /// the last event id, the retry time and the comment count.
    pub fn reconnect(&mut self) {
        self.partial_line = Vec::new();
        self.partial_line_offset = 0;
        self.offset = 0;
        self.data = String::new();
        self.event_type = String::new();
        // The id buffer restarts from the acknowledged id, which is what the reconnect sends.
        self.id_buffer.clone_from(&self.last_event_id);
        self.bom_matched = 0;
        self.at_stream_start = true;
        self.pending_cr = false;
        self.error = None;
    }

    /// The event source's last event id (empty if none): send it as `Last-Event-ID` on reconnect.
    /// It changes only when a blank line ends an event, so an `id` field of an unfinished event
    /// is not reported.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time from the last valid `retry` field, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// How many comment lines (keep-alives) were seen, across reconnects.
    pub fn comments_seen(&self) -> u64 {
        self.comments_seen
    }

    /// Whether bytes of an unfinished line or event are buffered. If the stream ends now, they
    /// are dropped: the standard never dispatches an event without its terminating blank line.
    pub fn has_partial_event(&self) -> bool {
        !self.partial_line.is_empty() || !self.data.is_empty() || !self.event_type.is_empty()
    }

    /// Feeds the next bytes of the stream and appends every event they complete to `out`.
    ///
    /// Returns an error on invalid UTF-8 (detected when the line containing it ends) or when a
    /// line or event exceeds the configured bound; events completed before the error are still
    /// in `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        let result = self.feed_inner(bytes, out);
        if let Err(err) = &result {
            self.error = Some(err.clone());
        }
        result
    }

    fn feed_inner(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let feed_offset = self.offset;
        self.offset += bytes.len() as u64;
        let mut pos = 0;

        if self.at_stream_start {
            pos = self.skip_bom(bytes);
            if self.at_stream_start {
                // Every byte so far was a BOM prefix; the rest of the BOM may follow next read.
                return Ok(());
            }
        }

        if self.pending_cr && pos < bytes.len() {
            self.pending_cr = false;
            if bytes[pos] == b'\n' {
                pos += 1;
            }
        }

        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let Some(eol) = find_line_end(rest) else {
                self.buffer_partial(rest, feed_offset + pos as u64)?;
                break;
            };
            let line_offset = feed_offset + pos as u64;
            if self.partial_line.is_empty() {
                self.process_line(&rest[..eol], line_offset, out)?;
            } else {
                self.buffer_partial(&rest[..eol], line_offset)?;
                // Taken out so the line can be read while `self` is mutated; put back to keep
                // its capacity for the next line that spans reads.
                let mut line = std::mem::take(&mut self.partial_line);
                let result = self.process_line(&line, self.partial_line_offset, out);
                line.clear();
                self.partial_line = line;
                result?;
            }
            pos += eol + 1;
            if rest[eol] == b'\r' {
                match bytes.get(pos) {
                    Some(b'\n') => pos += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
        }
        Ok(())
    }

    /// Consumes BOM bytes at the stream start and returns how many bytes of `bytes` they were.
    /// Clears `at_stream_start` once the BOM is complete or ruled out; in the latter case the
    /// bytes that looked like a BOM prefix are stream content and go to the partial line.
    fn skip_bom(&mut self, bytes: &[u8]) -> usize {
        let mut pos = 0;
        while let Some(&b) = bytes.get(pos) {
            let matched = usize::from(self.bom_matched);
            if b == BOM[matched] {
                pos += 1;
                self.bom_matched += 1;
                if usize::from(self.bom_matched) == BOM.len() {
                    self.at_stream_start = false;
                    return pos;
                }
            } else {
                self.at_stream_start = false;
                // At most two bytes, well under any bound, so no size check is needed.
                self.partial_line.extend_from_slice(&BOM[..matched]);
                self.partial_line_offset = 0;
                return pos;
            }
        }
        pos
    }

    /// Appends bytes of a line that has not ended (or ends with these bytes) to the partial line.
    fn buffer_partial(&mut self, bytes: &[u8], offset: u64) -> Result<(), SseError> {
        if self.partial_line.is_empty() {
            self.partial_line_offset = offset;
        }
        if self.partial_line.len() + bytes.len() > self.max_event_bytes {
            return Err(SseError::TooLarge {
                offset: self.partial_line_offset,
                limit_bytes: self.max_event_bytes,
            });
        }
        self.partial_line.extend_from_slice(bytes);
        Ok(())
    }

    /// Interprets one complete line (without its line end) that starts at stream `offset`.
    fn process_line(
        &mut self,
        line: &[u8],
        offset: u64,
        out: &mut Vec<SseEvent>,
    ) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.len() > self.max_event_bytes {
            return Err(SseError::TooLarge {
                offset,
                limit_bytes: self.max_event_bytes,
            });
        }
        // Comments are validated too: invalid UTF-8 anywhere means the server is broken.
        let line = std::str::from_utf8(line).map_err(|e| SseError::InvalidUtf8 {
            offset: offset + e.valid_up_to() as u64,
        })?;
        if line.starts_with(':') {
            self.comments_seen += 1;
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(SseError::TooLarge {
                        offset,
                        limit_bytes: self.max_event_bytes,
                    });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            // An id containing NUL is ignored (falls through to the catch-all arm).
            "id" if !value.contains('\0') => {
                self.id_buffer.clear();
                self.id_buffer.push_str(value);
            }
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            // `parse` alone would accept a leading '+'.
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // All digits but too large for u64: ignored like any invalid value.
                if let Ok(retry_ms) = value.parse() {
                    self.retry_ms = Some(retry_ms);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Handles a blank line: the standard's "dispatch the event" steps.
    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        // The last event id is acknowledged even when no event is dispatched.
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF appended after the last data line
        let event = if self.event_type.is_empty() {
            String::from(pushbench_protocol::sse::EVENT_MESSAGE)
        } else {
            std::mem::take(&mut self.event_type)
        };
        let id = (!self.last_event_id.is_empty()).then(|| self.last_event_id.clone());
        out.push(SseEvent { event, data, id });
    }
}

/// Index of the first CR or LF in `bytes`.
#[inline]
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    /// Feeds `chunks` in order into a fresh parser, returning its events and the parser.
    fn parse_chunks(chunks: &[&[u8]]) -> (Vec<SseEvent>, SseParser) {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).expect("valid stream");
        }
        (out, parser)
    }

    fn parse(stream: &[u8]) -> Vec<SseEvent> {
        parse_chunks(&[stream]).0
    }

    /// Asserts that `stream` yields the same events and state fed whole, byte by byte, split at
    /// every index and split at every pair of indices.
    fn assert_split_invariant(stream: &[u8]) -> Vec<SseEvent> {
        let (whole, whole_parser) = parse_chunks(&[stream]);
        let state = |p: &SseParser| {
            (
                p.last_event_id().to_owned(),
                p.retry_ms(),
                p.comments_seen(),
                p.has_partial_event(),
            )
        };
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        let (events, parser) = parse_chunks(&bytewise);
        assert_eq!(events, whole, "byte by byte");
        assert_eq!(state(&parser), state(&whole_parser));
        for i in 0..=stream.len() {
            let (events, parser) = parse_chunks(&[&stream[..i], &stream[i..]]);
            assert_eq!(events, whole, "split at {i}");
            assert_eq!(state(&parser), state(&whole_parser), "split at {i}");
            for j in i..=stream.len() {
                let (events, _) = parse_chunks(&[&stream[..i], &stream[i..j], &stream[j..]]);
                assert_eq!(events, whole, "split at {i} and {j}");
            }
        }
        whole
    }

    #[test]
    fn every_split_point_of_a_multi_event_stream() {
        let stream = "\u{FEFF}: hi\r\nretry: 1500\nid: 1\ndata: {\"seq\":1}\n\n\
                      id: 2\revent: log\rdata: a\rdata: b€\r\r\
                      :\r\n\r\nid: 3\r\ndata:x\r\ndata:  y\r\n\r\ndata: tail-dropped";
        let events = assert_split_invariant(stream.as_bytes());
        assert_eq!(
            events,
            vec![
                ev("message", "{\"seq\":1}", Some("1")),
                ev("log", "a\nb€", Some("2")),
                ev("message", "x\n y", Some("3")),
            ]
        );
        let (_, parser) = parse_chunks(&[stream.as_bytes()]);
        assert_eq!(parser.retry_ms(), Some(1500));
        assert_eq!(parser.comments_seen(), 2);
        assert!(parser.has_partial_event());
    }

    #[test]
    fn line_ends_lf_cr_crlf_and_mixed() {
        let want = vec![ev("message", "a\nb", None), ev("message", "c", None)];
        assert_eq!(parse(b"data: a\ndata: b\n\ndata: c\n\n"), want);
        assert_eq!(parse(b"data: a\rdata: b\r\rdata: c\r\r"), want);
        assert_eq!(parse(b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"), want);
        assert_eq!(parse(b"data: a\rdata: b\r\n\ndata: c\n\r"), want);
        // LF CR is two line ends, so it dispatches.
        assert_eq!(parse(b"data: a\n\r"), vec![ev("message", "a", None)]);
    }

    #[test]
    fn crlf_split_across_feeds_is_one_line_end() {
        // Were the LF a second line end, the blank line would dispatch "a" on its own.
        let (events, _) = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(events, vec![ev("message", "a\nb", None)]);
        // An empty read between CR and LF changes nothing.
        let (events, _) = parse_chunks(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(events, vec![ev("message", "a\nb", None)]);
        // A CR at the end of a read followed by something other than LF.
        let (events, _) = parse_chunks(&[b"data: a\r", b"\r"]);
        assert_eq!(events, vec![ev("message", "a", None)]);
    }

    #[test]
    fn bom_dropped_only_at_stream_start() {
        assert_eq!(
            parse(b"\xEF\xBB\xBFdata: a\n\n"),
            vec![ev("message", "a", None)]
        );
        let (events, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\xBF", b"data: a\n\n"]);
        assert_eq!(events, vec![ev("message", "a", None)]);
        // A second BOM is content: here it makes the field name "\u{FEFF}data", which is ignored.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), vec![]);
        // A BOM later in the stream is content too.
        assert_eq!(
            parse("data: a\n\n\u{FEFF}data: b\n\ndata: \u{FEFF}c\n\n".as_bytes()),
            vec![ev("message", "a", None), ev("message", "\u{FEFF}c", None)]
        );
        // A BOM prefix that turns out to be a different character is kept: EF BB 80 is U+FEC0.
        let (events, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\x80: c\ndata: \xEF\xBB\x80\n\n"]);
        assert_eq!(events, vec![ev("message", "\u{FEC0}", None)]);
        assert_eq!(
            parse_chunks(&[b"\xEF\xBB", b"\x80: c\n"]).1.comments_seen(),
            0,
            "the U+FEC0 line is a field, not a comment"
        );
    }

    #[test]
    fn comments_are_counted_and_never_dispatch() {
        let (events, parser) = parse_chunks(&[b":\n:keep-alive\n\n: x\r\n\r\n"]);
        assert!(events.is_empty());
        assert_eq!(parser.comments_seen(), 3);
        // A comment inside an event does not end or alter it.
        assert_eq!(
            parse(b"data: a\n: note\ndata: b\n\n"),
            vec![ev("message", "a\nb", None)]
        );
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        // "data" alone appends an empty line: data is "\n", minus the trailing LF gives "".
        // The buffer was non-empty, so the event dispatches with empty data.
        assert_eq!(parse(b"data\n\n"), vec![ev("message", "", None)]);
        assert_eq!(parse(b"data\ndata\n\n"), vec![ev("message", "\n", None)]);
        assert_eq!(parse(b"data: a\nevent\n\n"), vec![ev("message", "a", None)]);
    }

    #[test]
    fn exactly_one_space_after_colon_is_removed() {
        assert_eq!(parse(b"data:x\n\n"), vec![ev("message", "x", None)]);
        assert_eq!(parse(b"data: x\n\n"), vec![ev("message", "x", None)]);
        assert_eq!(parse(b"data:  x\n\n"), vec![ev("message", " x", None)]);
        assert_eq!(parse(b"data:\tx\n\n"), vec![ev("message", "\tx", None)]);
        assert_eq!(parse(b"data: x \n\n"), vec![ev("message", "x ", None)]);
        // Only the first colon separates; later ones are value.
        assert_eq!(
            parse(b"data: a:b: c\n\n"),
            vec![ev("message", "a:b: c", None)]
        );
        // A space before the colon is part of the field name, which is then unknown.
        assert_eq!(parse(b"data : x\n\n"), vec![]);
    }

    #[test]
    fn multi_line_data_joined_with_lf() {
        assert_eq!(
            parse(b"data: one\ndata:\ndata: three\n\n"),
            vec![ev("message", "one\n\nthree", None)]
        );
        // Only one trailing LF is removed.
        assert_eq!(
            parse(b"data: a\ndata:\n\n"),
            vec![ev("message", "a\n", None)]
        );
    }

    #[test]
    fn event_type_set_and_reset_after_dispatch() {
        assert_eq!(
            parse(b"event: add\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n"),
            vec![
                ev("add", "1", None),
                ev("message", "2", None),
                ev("message", "3", None),
            ]
        );
        // The last `event` field wins.
        assert_eq!(
            parse(b"event: a\nevent: b\ndata: 1\n\n"),
            vec![ev("b", "1", None)]
        );
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let (events, parser) = parse_chunks(&[b"id: 7\n\nid: 8\0x\ndata: a\n\n"]);
        assert_eq!(events, vec![ev("message", "a", Some("7"))]);
        assert_eq!(parser.last_event_id(), "7");
    }

    #[test]
    fn id_persists_across_events_and_can_be_reset() {
        let (events, parser) = parse_chunks(&[
            b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\nid: \ndata: e\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                ev("message", "a", Some("1")),
                ev("message", "b", Some("1")),
                ev("message", "c", Some("2")),
                ev("message", "d", None),
                ev("message", "e", None),
            ]
        );
        assert_eq!(parser.last_event_id(), "");
    }

    #[test]
    fn last_event_id_acknowledged_only_at_blank_line() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser
            .feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n", &mut out)
            .unwrap();
        assert_eq!(parser.last_event_id(), "1", "event 2 is not complete yet");
        parser.feed(b"\n", &mut out).unwrap();
        assert_eq!(parser.last_event_id(), "2");
        // An id with no data is still acknowledged by its blank line.
        parser.feed(b"id: 3\n\n", &mut out).unwrap();
        assert_eq!(parser.last_event_id(), "3");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn retry_only_when_all_digits() {
        let retry = |s: &[u8]| parse_chunks(&[s]).1.retry_ms();
        assert_eq!(retry(b"retry: 3000\n"), Some(3000));
        assert_eq!(retry(b"retry:0\n"), Some(0));
        assert_eq!(retry(b"retry: 12a\n"), None);
        assert_eq!(retry(b"retry: +12\n"), None);
        assert_eq!(retry(b"retry: -1\n"), None);
        assert_eq!(retry(b"retry: 1.5\n"), None);
        assert_eq!(retry(b"retry:\n"), None);
        assert_eq!(retry(b"retry\n"), None);
        assert_eq!(retry(b"retry:  10\n"), None, "the second space is value");
        assert_eq!(retry(b"retry: 99999999999999999999999\n"), None);
        // An invalid value keeps the previous valid one.
        assert_eq!(retry(b"retry: 10\nretry: x\n"), Some(10));
        // `retry` takes effect without a blank line and does not itself dispatch.
        assert_eq!(parse(b"retry: 10\n\n"), vec![]);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(
            parse(b"foo: bar\nDATA: x\ndata: a\nData: y\n\n"),
            vec![ev("message", "a", None)]
        );
    }

    #[test]
    fn event_with_empty_data_is_not_dispatched() {
        assert_eq!(
            parse(b"event: x\n\ndata: a\n\n"),
            vec![ev("message", "a", None)]
        );
        assert_eq!(parse(b"\n\n\n"), vec![]);
        assert_eq!(parse(b"id: 1\nevent: x\n\n"), vec![]);
    }

    #[test]
    fn unterminated_event_is_dropped() {
        let (events, parser) = parse_chunks(&[b"data: a\n\ndata: b\n"]);
        assert_eq!(events, vec![ev("message", "a", None)]);
        assert!(parser.has_partial_event());
        let (events, parser) = parse_chunks(&[b"data: a\n\ndata: b"]);
        assert_eq!(events, vec![ev("message", "a", None)]);
        assert!(parser.has_partial_event());
        let (_, parser) = parse_chunks(&[b"data: a\n\n: ok\n"]);
        assert!(!parser.has_partial_event());
    }

    #[test]
    fn four_byte_char_split_across_feeds() {
        let stream = "data: 😀x😀\n\n".as_bytes();
        let events = assert_split_invariant(stream);
        assert_eq!(events, vec![ev("message", "😀x😀", None)]);
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_offset() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"data: ok\n\n", &mut out).unwrap();
        let err = parser.feed(b"data: a\xFFb\n\n", &mut out).unwrap_err();
        assert_eq!(err, SseError::InvalidUtf8 { offset: 10 + 7 });
        assert_eq!(out, vec![ev("message", "ok", None)]);
        // The parser stays failed.
        assert_eq!(parser.feed(b"data: b\n\n", &mut out), Err(err));
        assert!(err_string_names_offset(&parser));

        // Split: the line starts in one read and the bad byte arrives in a later one.
        let mut parser = SseParser::new();
        parser
            .feed(b"\xEF\xBB\xBFdata: \xF0\x9F", &mut out)
            .unwrap();
        let err = parser.feed(b"\x98x\n", &mut out).unwrap_err();
        assert_eq!(err, SseError::InvalidUtf8 { offset: 3 + 6 });

        // A lone continuation byte in a comment, and a truncated char before a line end.
        let mut parser = SseParser::new();
        assert_eq!(
            parser.feed(b":\x80\n", &mut out),
            Err(SseError::InvalidUtf8 { offset: 1 })
        );
        let mut parser = SseParser::new();
        assert_eq!(
            parser.feed(b"data: \xE2\x82\n", &mut out),
            Err(SseError::InvalidUtf8 { offset: 6 })
        );
    }

    fn err_string_names_offset(parser: &SseParser) -> bool {
        parser
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("offset 17"))
    }

    #[test]
    fn oversized_line_or_event_is_an_error() {
        let mut out = Vec::new();
        let mut parser = SseParser::with_max_event_bytes(16);
        parser.feed(b"data: 0123456789\n\n", &mut out).unwrap();
        assert_eq!(
            parser.feed(b"data: 0123456789abcdef", &mut out),
            Err(SseError::TooLarge {
                offset: 18,
                limit_bytes: 16
            })
        );
        // Many short data lines without a blank line.
        let mut parser = SseParser::with_max_event_bytes(16);
        assert!(matches!(
            parser.feed(b"data: 01234\ndata: 01234\ndata: 01234\n", &mut out),
            Err(SseError::TooLarge { .. })
        ));
    }

    #[test]
    fn reconnect_keeps_id_retry_and_expects_bom_again() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser
            .feed(b"retry: 50\nid: 4\ndata: a\n\nid: 5\ndata: part", &mut out)
            .unwrap();
        parser.reconnect();
        assert_eq!(parser.last_event_id(), "4");
        assert!(!parser.has_partial_event());
        parser.feed(b"\xEF\xBB\xBFdata: b\n\n", &mut out).unwrap();
        assert_eq!(
            out,
            vec![ev("message", "a", Some("4")), ev("message", "b", Some("4"))]
        );
        assert_eq!(parser.retry_ms(), Some(50));
        // reconnect also clears an error.
        let _ = parser.feed(b"\xFF\n", &mut out);
        parser.reconnect();
        parser.feed(b"data: c\n\n", &mut out).unwrap();
        assert_eq!(out.last(), Some(&ev("message", "c", Some("4"))));
    }

    #[test]
    fn idle_parser_is_small() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser
            .feed(b"id: 1\ndata: {\"a\":1}\n\n:\n", &mut out)
            .unwrap();
        assert_eq!(parser.data.capacity(), 0);
        assert_eq!(parser.event_type.capacity(), 0);
        assert!(size_of::<SseParser>() <= 256);
    }

    #[test]
    fn throughput_is_adequate() {
        // A smoke check against accidental quadratic behaviour, not a benchmark: debug builds
        // are ~10x slower than release, so the bound is loose.
        let mut stream = Vec::new();
        for seq in 0..20_000u32 {
            stream.extend_from_slice(
                format!("id: {seq}\ndata: {{\"seq\":{seq},\"ts_us\":1700000000000000,\"line\":\"building target x\"}}\n\n")
                    .as_bytes(),
            );
            if seq % 100 == 0 {
                stream.extend_from_slice(b":\n");
            }
        }
        let mut parser = SseParser::new();
        let mut out = Vec::with_capacity(20_000);
        let start = std::time::Instant::now();
        for chunk in stream.chunks(1400) {
            parser.feed(chunk, &mut out).unwrap();
        }
        let elapsed = start.elapsed();
        assert_eq!(out.len(), 20_000);
        assert_eq!(out[19_999].id.as_deref(), Some("19999"));
        assert!(elapsed.as_secs() < 5, "took {elapsed:?}");
    }
}
