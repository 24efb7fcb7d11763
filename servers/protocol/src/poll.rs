//! The poll answer: `GET …/logs?after=SEQ[&limit=N][&wait=DURATION]` answers
//! `{"lines":[PAYLOAD,...],"next":N,"last_seq":N,"finished":B}` (`application/json`, with an
//! `ETag`; `304 Not Modified` when `If-None-Match` matches it).
//!
//! `next` is the cursor of the following request (`after=next`); `last_seq` is the topic's
//! newest line; `finished` says the step has ended, and once `next == last_seq` nothing more
//! will come.

use std::io::Write as _;

use serde::{Deserialize, Serialize};

/// A poll answer; `L` is the line type a client decodes ([`crate::LineStamp`],
/// [`crate::LineText`], [`crate::LinePayload`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollAnswer<L> {
    pub lines: Vec<L>,
    pub next: u64,
    pub last_seq: u64,
    pub finished: bool,
}

impl<L> PollAnswer<L> {
    /// Has the client everything the step will ever have?
    pub fn is_complete(&self) -> bool {
        self.finished && self.next >= self.last_seq
    }
}

/// Appends a [`PollAnswer`]'s bytes to `out`, splicing in lines that are already encoded
/// payloads (servers encode each line once, not once per answer). The same bytes as
/// serialising a `PollAnswer` of those payloads.
pub fn encode_answer<'a>(
    out: &mut Vec<u8>,
    lines: impl IntoIterator<Item = &'a [u8]>,
    next: u64,
    last_seq: u64,
    finished: bool,
) {
    out.extend_from_slice(b"{\"lines\":[");
    for (i, line) in lines.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(line);
    }
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "],\"next\":{next},\"last_seq\":{last_seq},\"finished\":{finished}}}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{encode_line, LinePayload, LineStamp};

    #[test]
    fn spliced_answers_are_the_serialised_answer() {
        let lines = [encode_line(4, 10, "a\rb"), encode_line(5, 11, "c")];
        let mut out = Vec::new();
        encode_answer(&mut out, lines.iter().map(Vec::as_slice), 5, 9, false);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"lines":[{"seq":4,"ts":10,"line":"a\rb"},{"seq":5,"ts":11,"line":"c"}],"next":5,"last_seq":9,"finished":false}"#
        );
        let typed: PollAnswer<LinePayload<'_>> = serde_json::from_slice(&out).unwrap();
        assert_eq!(serde_json::to_vec(&typed).unwrap(), out);
        let stamps: PollAnswer<LineStamp> = serde_json::from_slice(&out).unwrap();
        assert_eq!(stamps.lines[1], LineStamp { seq: 5, ts: 11 });
        assert!(!stamps.is_complete());

        let mut empty = Vec::new();
        encode_answer(&mut empty, std::iter::empty(), 3, 3, true);
        assert_eq!(
            empty,
            br#"{"lines":[],"next":3,"last_seq":3,"finished":true}"#
        );
        let done: PollAnswer<LineStamp> = serde_json::from_slice(&empty).unwrap();
        assert!(done.is_complete());
    }
}
