//! Property tests of the SSE client parser (`pushbench::sse_parser`), issue 13.
//!
//! The parser is fed whatever a socket read returns, so every rule must hold at any split
//! point: a read boundary may fall inside a CRLF, a BOM, a multi-byte character or a field
//! name. Two properties, plus a replayed corpus:
//!
//! - **split invariance**: for any byte stream, drawn from a grammar of SSE-ish pieces (the
//!   fields `data`, `id`, `event`, `retry`, comments and unknown fields; values holding CR, LF,
//!   CRLF, NUL, a BOM, invalid or truncated UTF-8) mixed with raw arbitrary bytes, feeding it
//!   whole and feeding it split at any set of points gives the same events, the same
//!   `last_event_id`, `retry_ms`, `comments_seen` and `has_partial_event`, and the same error
//!   (or none) at the same stream offset;
//! - **round trip**: a well-formed stream, serialized from a list of events with random line
//!   ends, comments, retry hints and optional spaces, parses back to exactly the events a
//!   reference model of the standard predicts (also when split);
//! - **corpus**: every `tests/corpus/sse/*.bin` (inputs that once broke a parser, or edge
//!   cases worth pinning) is checked for split invariance at every single split point and
//!   byte by byte.
//!
//! CI runs 256 cases per property (about a second in debug). To search harder:
//! `PROPTEST_CASES=100000 cargo test -p pushbench --test prop_sse_parser`. A failure is
//! shrunk and its seed saved in `loadgen/tests/prop_sse_parser.proptest-regressions`;
//! commit that file, and add the shrunk input to the corpus.

mod common;

use proptest::prelude::*;
use proptest::sample::Index;
use pushbench::sse_parser::{SseError, SseEvent, SseParser};

/// Cases per property: 256 in CI, or `PROPTEST_CASES` when set.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

/// Everything a caller can observe after feeding a stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<SseEvent>,
    /// The first error `feed` returned, if any.
    error: Option<SseError>,
    last_event_id: String,
    retry_ms: Option<u64>,
    comments_seen: u64,
    /// `None` after an error: what a failed parser buffered is not part of its contract (the
    /// client drops it and reconnects), and it does differ, e.g. a line that outgrew the bound
    /// is buffered in part when it spans reads but not when it arrives whole.
    has_partial_event: Option<bool>,
}

/// Feeds `chunks` in order to a fresh parser, as a client does with its socket reads. Keeps
/// feeding after an error, as a careless caller would: the parser must stay failed.
fn feed_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut error = None;
    for chunk in chunks {
        match parser.feed(chunk, &mut events) {
            Ok(()) => assert!(error.is_none(), "feed succeeded after an error"),
            Err(e) => {
                if let Some(first) = &error {
                    assert_eq!(&e, first, "a failed parser returns its first error");
                }
                error.get_or_insert(e);
            }
        }
    }
    Outcome {
        events,
        last_event_id: parser.last_event_id().to_owned(),
        retry_ms: parser.retry_ms(),
        comments_seen: parser.comments_seen(),
        has_partial_event: error.is_none().then(|| parser.has_partial_event()),
        error,
    }
}

/// `stream` cut at `cuts` (any order, duplicates allowed: an empty read is a read too).
fn split_at<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        chunks.push(&stream[start..cut]);
        start = cut;
    }
    chunks.push(&stream[start..]);
    chunks
}

/// Asserts that `stream` gives the same outcome fed whole and split at `cuts`.
fn assert_same_split(stream: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let whole = feed_chunks([stream]);
    let split = feed_chunks(split_at(stream, cuts));
    prop_assert_eq!(split, whole, "stream {:?} split at {:?}", stream, cuts);
    Ok(())
}

// ---- the grammar of SSE-ish streams ----

/// Field names: the four the standard knows, near misses (case, spaces, a BOM) and an empty
/// name (a line starting with ':', i.e. a comment).
fn field_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"data".to_vec()),
        Just(b"id".to_vec()),
        Just(b"event".to_vec()),
        Just(b"retry".to_vec()),
        Just(Vec::new()),
        Just(b"DATA".to_vec()),
        Just(b"data ".to_vec()),
        Just(b"foo".to_vec()),
        Just("\u{FEFF}data".as_bytes().to_vec()),
    ]
}

/// The bytes a value is made of: plain text, the characters the rules single out, line ends
/// inside a value, a BOM, multi-byte characters, and invalid or truncated UTF-8.
fn value_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(b"a".to_vec()),
        2 => Just(b" ".to_vec()),
        2 => Just(b":".to_vec()),
        2 => "[0-9]{1,3}".prop_map(String::into_bytes),
        1 => Just(b"99999999999999999999999".to_vec()),
        1 => Just(b"+1".to_vec()),
        1 => Just(b"\0".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(vec![0xEF, 0xBB, 0xBF]),
        1 => Just("€".as_bytes().to_vec()),
        1 => Just("😀".as_bytes().to_vec()),
        1 => Just(vec![0xFF]),
        1 => Just(vec![0x80]),
        1 => Just(vec![0xE2, 0x82]),
        1 => Just(vec![0xF0, 0x9F]),
    ]
}

fn line_end() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        3 => Just(&b"\n"[..]),
        2 => Just(&b"\r"[..]),
        2 => Just(&b"\r\n"[..]),
        // No line end: the next piece continues this line.
        1 => Just(&b""[..]),
    ]
}

/// One piece of a stream: a field line, a blank line, or raw bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let field = (
        field_name(),
        prop_oneof![
            Just(&b""[..]),
            Just(&b":"[..]),
            Just(&b": "[..]),
            Just(&b":  "[..])
        ],
        prop::collection::vec(value_piece(), 0..4),
        line_end(),
    )
        .prop_map(|(name, colon, value, end)| {
            let mut line = name;
            line.extend_from_slice(colon);
            line.extend(value.into_iter().flatten());
            line.extend_from_slice(end);
            line
        });
    prop_oneof![
        6 => field,
        3 => line_end().prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// A stream: an optional (possibly partial or doubled) BOM, then pieces.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let bom = prop_oneof![
        4 => Just(Vec::new()),
        3 => Just(vec![0xEF, 0xBB, 0xBF]),
        1 => Just(vec![0xEF]),
        1 => Just(vec![0xEF, 0xBB]),
        1 => Just(vec![0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF]),
    ];
    (bom, prop::collection::vec(piece(), 0..24)).prop_map(|(bom, pieces)| {
        let mut stream = bom;
        stream.extend(pieces.into_iter().flatten());
        stream
    })
}

/// A stream and up to 8 split points in it (indices, so they shrink with the stream).
fn stream_and_cuts(
    stream: impl Strategy<Value = Vec<u8>>,
) -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    (stream, prop::collection::vec(any::<Index>(), 0..8)).prop_map(|(stream, cuts)| {
        let cuts = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        (stream, cuts)
    })
}

// ---- the reference model for well-formed streams ----

/// An event as a server would write it.
#[derive(Clone, Debug)]
struct ModelEvent {
    /// `id:` line first; `Some("")` resets the last event id.
    id: Option<String>,
    /// `event:` line; `Some("")` means the default type.
    event: Option<String>,
    /// One `data:` line each; none means nothing is dispatched (the id is still taken).
    data: Vec<String>,
    /// A `retry:` hint inside the event.
    retry: Option<u64>,
    /// Comment lines (keep-alives) before the event.
    comments: usize,
}

/// Text a value may hold in a well-formed stream: no CR or LF (they end the line), no NUL
/// (an id with one is ignored, which the model does not predict), anything else including a
/// leading space, colons, a BOM and non-ASCII.
fn value_text() -> impl Strategy<Value = String> {
    "[a-z0-9 :{}\",\u{FEFF}é€😀\t]{0,12}"
}

fn model_event() -> impl Strategy<Value = ModelEvent> {
    (
        prop::option::of(value_text()),
        prop::option::of(value_text()),
        prop::collection::vec(value_text(), 0..4),
        prop::option::of(0u64..100_000),
        0usize..3,
    )
        .prop_map(|(id, event, data, retry, comments)| ModelEvent {
            id,
            event,
            data,
            retry,
            comments,
        })
}

/// How a server may vary the spelling of a well-formed stream.
#[derive(Clone, Debug)]
struct Style {
    bom: bool,
    /// Line end per line, cycled.
    ends: Vec<&'static [u8]>,
    /// Whether to write `field:value` instead of `field: value` where the value allows it
    /// (does not start with a space), cycled.
    tight: Vec<bool>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"\r\n"[..])],
            1..4,
        ),
        prop::collection::vec(any::<bool>(), 1..4),
    )
        .prop_map(|(bom, ends, tight)| Style { bom, ends, tight })
}

/// Writes `events` as an event stream in `style`.
fn serialize(events: &[ModelEvent], style: &Style) -> Vec<u8> {
    let mut out = Vec::new();
    if style.bom {
        out.extend_from_slice("\u{FEFF}".as_bytes());
    }
    let mut n = 0;
    let mut line = |out: &mut Vec<u8>, field: &str, value: &str| {
        out.extend_from_slice(field.as_bytes());
        let tight = style.tight[n % style.tight.len()] && !value.starts_with(' ');
        out.extend_from_slice(if tight { b":" } else { b": " });
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(style.ends[n % style.ends.len()]);
        n += 1;
    };
    for e in events {
        for _ in 0..e.comments {
            line(&mut out, "", "keep-alive");
        }
        if let Some(id) = &e.id {
            line(&mut out, "id", id);
        }
        if let Some(event) = &e.event {
            line(&mut out, "event", event);
        }
        if let Some(retry) = e.retry {
            line(&mut out, "retry", &retry.to_string());
        }
        for data in &e.data {
            line(&mut out, "data", data);
        }
        // The blank line; `\r\n` throughout keeps it unambiguous after a CR-ended line.
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What the standard says a client sees for `events`.
fn expected(events: &[ModelEvent]) -> Outcome {
    let mut last_id = String::new();
    let mut retry = None;
    let mut comments = 0;
    let mut out = Vec::new();
    for e in events {
        comments += e.comments as u64;
        if let Some(id) = &e.id {
            last_id.clone_from(id);
        }
        if e.retry.is_some() {
            retry = e.retry;
        }
        if !e.data.is_empty() {
            out.push(SseEvent {
                event: match e.event.as_deref() {
                    None | Some("") => "message".to_owned(),
                    Some(t) => t.to_owned(),
                },
                data: e.data.join("\n"),
                id: (!last_id.is_empty()).then(|| last_id.clone()),
            });
        }
    }
    Outcome {
        events: out,
        error: None,
        last_event_id: last_id,
        retry_ms: retry,
        comments_seen: comments,
        has_partial_event: Some(false),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any stream from the grammar, split anywhere, parses as it does whole.
    #[test]
    fn grammar_stream_split_anywhere_parses_as_whole((stream, cuts) in stream_and_cuts(stream())) {
        assert_same_split(&stream, &cuts)?;
    }

    /// Raw arbitrary bytes too (mostly errors, which must also agree on the offset).
    #[test]
    fn raw_bytes_split_anywhere_parse_as_whole(
        (stream, cuts) in stream_and_cuts(prop::collection::vec(any::<u8>(), 0..64))
    ) {
        assert_same_split(&stream, &cuts)?;
    }

    /// Byte-by-byte feeding, the worst case for carried state (CR, BOM, partial line).
    #[test]
    fn grammar_stream_byte_by_byte_parses_as_whole(stream in stream()) {
        let whole = feed_chunks([&stream[..]]);
        prop_assert_eq!(feed_chunks(stream.chunks(1)), whole, "stream {:?}", stream);
    }

    /// Events written by a well-formed server come back exactly as the model predicts.
    #[test]
    fn well_formed_stream_round_trips(
        events in prop::collection::vec(model_event(), 0..8),
        style in style(),
        cuts in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let stream = serialize(&events, &style);
        let want = expected(&events);
        prop_assert_eq!(&feed_chunks([&stream[..]]), &want, "stream {:?}", String::from_utf8_lossy(&stream));
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        prop_assert_eq!(&feed_chunks(split_at(&stream, &cuts)), &want, "split at {:?}", cuts);
    }
}

/// A line longer than the parser's bound fails the same way whole and in socket-sized reads
/// (the bound is 8 MiB, too large for the generated streams to reach).
#[test]
fn oversized_line_fails_alike_whole_and_split() {
    let mut stream = b"data: ok\n\ndata: ".to_vec();
    stream.resize(
        stream.len() + pushbench::sse_parser::DEFAULT_MAX_EVENT_BYTES,
        b'x',
    );
    stream.extend_from_slice(b"\n\n");
    let whole = feed_chunks([&stream[..]]);
    assert!(
        matches!(whole.error, Some(SseError::TooLarge { offset: 10, .. })),
        "{:?}",
        whole.error
    );
    assert_eq!(whole.events.len(), 1);
    assert_eq!(feed_chunks(stream.chunks(64 * 1024)), whole);
}

/// Replays `tests/corpus/sse/*.bin`: each file must be split-invariant at every single split
/// point and byte by byte.
#[test]
fn corpus_is_split_invariant() {
    let files = common::corpus_files("sse", "bin");
    for path in files {
        let stream = std::fs::read(&path).unwrap();
        let name = path.display();
        let whole = feed_chunks([&stream[..]]);
        assert_eq!(feed_chunks(stream.chunks(1)), whole, "{name}: byte by byte");
        for i in 0..=stream.len() {
            assert_eq!(
                feed_chunks([&stream[..i], &stream[i..]]),
                whole,
                "{name}: split at {i}"
            );
        }
    }
}
