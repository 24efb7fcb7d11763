//! A minimal HTTP/1.1 client, written here rather than taken from hyper on purpose.
//!
//! The load generator must (a) count every byte at the socket, including headers and chunk
//! framing, (b) keep thousands of idle streams at a few kilobytes each, and (c) see each
//! body chunk the moment it is read, to timestamp it. A small client over `MeasuredSocket` (the counted socket) with one
//! read buffer per connection does all three; header parsing itself is `httparse`'s.

use bytes::{Buf, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::socket::ClientStream;

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Initial read buffer; grows only while a response needs it.
const READ_BUF_BYTES: usize = 4096;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("i/o")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the server {0}")]
    Closed(&'static str),
    #[error("malformed response head: {0}")]
    Head(String),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Most header lines a response head may have.
const MAX_HEADERS: usize = 48;

/// Status and headers of a response.
///
/// The head's bytes are kept as received (one allocation per response, not two per header):
/// a poll loop reads tens of thousands of heads a second and looks a header up in few of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: BodyFraming,
    /// The status line and header lines, as received (already parsed once, so valid).
    raw: Box<[u8]>,
}

impl ResponseHead {
    /// The first header named `name` (ASCII case-insensitive); `None` when absent or when its
    /// value is not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        res.parse(&self.raw).ok()?;
        let value = res
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)?;
        std::str::from_utf8(value).ok()
    }
}

/// One HTTP/1.1 connection.
pub struct HttpConn {
    pub io: ClientStream,
    buf: BytesMut,
}

impl HttpConn {
    pub fn new(io: ClientStream) -> Self {
        HttpConn {
            io,
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, request: &[u8]) -> Result<(), HttpError> {
        self.io.write_all(request).await?;
        Ok(())
    }

    /// Reads more bytes into the buffer; `Ok(false)` at end of stream.
    async fn fill(&mut self) -> Result<bool, HttpError> {
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(READ_BUF_BYTES);
        }
        Ok(self.io.read_buf(&mut self.buf).await? > 0)
    }

    /// Reads the response head.
    pub async fn read_head(&mut self) -> Result<ResponseHead, HttpError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut res = httparse::Response::new(&mut headers);
            match res.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = res.code.unwrap_or(0);
                    let framing = framing(status, res.headers)?;
                    let raw = self.buf[..len].into();
                    self.buf.advance(len);
                    return Ok(ResponseHead {
                        status,
                        framing,
                        raw,
                    });
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > MAX_HEAD_BYTES {
                        return Err(HttpError::HeadTooLarge);
                    }
                }
                Err(e) => return Err(HttpError::Head(e.to_string())),
            }
            if !self.fill().await? {
                return Err(HttpError::Closed("before the response head was complete"));
            }
        }
    }

    /// Reads a whole body of at most `max` bytes.
    pub async fn read_body(
        &mut self,
        framing: BodyFraming,
        max: usize,
    ) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        let mut decoder = BodyDecoder::new(framing);
        while self.read_body_part(&mut decoder, &mut body).await? {
            if body.len() > max {
                return Err(HttpError::BodyTooLarge(max));
            }
        }
        Ok(body)
    }

    /// Appends the next available body bytes to `out`, reading from the socket only when
    /// nothing is buffered. Returns `false` once the body is complete.
    pub async fn read_body_part(
        &mut self,
        decoder: &mut BodyDecoder,
        out: &mut Vec<u8>,
    ) -> Result<bool, HttpError> {
        loop {
            if decoder.is_done() {
                return Ok(false);
            }
            if !self.buf.is_empty() {
                let before = out.len();
                let used = decoder.decode(&self.buf, out)?;
                self.buf.advance(used);
                if out.len() > before || decoder.is_done() {
                    return Ok(!decoder.is_done());
                }
            }
            if !self.fill().await? {
                return match decoder.framing {
                    BodyFraming::UntilClose => {
                        decoder.done = true;
                        Ok(false)
                    }
                    _ => Err(HttpError::Closed("in the middle of a response body")),
                };
            }
        }
    }

    /// Releases the read buffer's memory while the connection idles.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Result<BodyFraming, HttpError> {
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(BodyFraming::Empty);
    }
    // Borrowed unless the value is not UTF-8: no allocation per response.
    let get = |n: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(n))
            .map(|h| String::from_utf8_lossy(h.value))
    };
    if let Some(te) = get("transfer-encoding") {
        let te = te.trim();
        if te.eq_ignore_ascii_case("chunked") {
            return Ok(BodyFraming::Chunked);
        }
        return Err(HttpError::Head(format!(
            "unsupported transfer-encoding {te:?}"
        )));
    }
    match get("content-length") {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|n| {
                if n == 0 {
                    BodyFraming::Empty
                } else {
                    BodyFraming::Length(n)
                }
            })
            .map_err(|_| HttpError::Head(format!("bad content-length {:?}", v.trim()))),
        None => Ok(BodyFraming::UntilClose),
    }
}

/// Decodes a body (length-delimited, chunked or until close) incrementally.
#[derive(Debug)]
pub struct BodyDecoder {
    framing: BodyFraming,
    remaining: u64,
    chunk: ChunkState,
    done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size { value: u64, digits: u8 },
    Extension { value: u64 },
    SizeLf { value: u64 },
    Data,
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerLine,
    TrailerEndLf,
}

impl BodyDecoder {
    pub fn new(framing: BodyFraming) -> Self {
        BodyDecoder {
            framing,
            remaining: match framing {
                BodyFraming::Length(n) => n,
                _ => 0,
            },
            chunk: ChunkState::Size {
                value: 0,
                digits: 0,
            },
            done: framing == BodyFraming::Empty,
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes from `input`, appending body bytes to `out`; returns the bytes consumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        match self.framing {
            BodyFraming::Empty => {
                self.done = true;
                Ok(0)
            }
            BodyFraming::UntilClose => {
                out.extend_from_slice(input);
                Ok(input.len())
            }
            BodyFraming::Length(_) => {
                let n = (self.remaining.min(input.len() as u64)) as usize;
                out.extend_from_slice(&input[..n]);
                self.remaining -= n as u64;
                self.done = self.remaining == 0;
                Ok(n)
            }
            BodyFraming::Chunked => self.decode_chunked(input, out),
        }
    }

    fn decode_chunked(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() && !self.done {
            let b = input[i];
            self.chunk = match self.chunk {
                ChunkState::Size { value, digits } => {
                    i += 1;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            if digits >= 15 {
                                return Err(HttpError::Chunked("chunk size too large"));
                            }
                            let d = (b as char).to_digit(16).expect("hex digit") as u64;
                            ChunkState::Size {
                                value: value * 16 + d,
                                digits: digits + 1,
                            }
                        }
                        _ if digits == 0 => {
                            return Err(HttpError::Chunked("chunk size is not hexadecimal"))
                        }
                        b';' | b' ' | b'\t' => ChunkState::Extension { value },
                        b'\r' => ChunkState::SizeLf { value },
                        _ => return Err(HttpError::Chunked("bad byte after chunk size")),
                    }
                }
                ChunkState::Extension { value } => {
                    // Chunk extensions carry nothing we use; skip to the end of the line.
                    i += 1;
                    if b == b'\r' {
                        ChunkState::SizeLf { value }
                    } else {
                        ChunkState::Extension { value }
                    }
                }
                ChunkState::SizeLf { value } => {
                    i += 1;
                    if b != b'\n' {
                        return Err(HttpError::Chunked("chunk size line not ended by CRLF"));
                    }
                    if value == 0 {
                        ChunkState::TrailerLineStart
                    } else {
                        self.remaining = value;
                        ChunkState::Data
                    }
                }
                ChunkState::Data => {
                    let n = (self.remaining.min((input.len() - i) as u64)) as usize;
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data
                    }
                }
                ChunkState::DataCr => {
                    i += 1;
                    if b != b'\r' {
                        return Err(HttpError::Chunked("chunk data not followed by CRLF"));
                    }
                    ChunkState::DataLf
                }
                ChunkState::DataLf => {
                    i += 1;
                    if b != b'\n' {
                        return Err(HttpError::Chunked("chunk data not followed by CRLF"));
                    }
                    ChunkState::Size {
                        value: 0,
                        digits: 0,
                    }
                }
                ChunkState::TrailerLineStart => {
                    i += 1;
                    match b {
                        b'\r' => ChunkState::TrailerEndLf,
                        b'\n' => {
                            self.done = true;
                            ChunkState::TrailerLineStart
                        }
                        _ => ChunkState::TrailerLine,
                    }
                }
                ChunkState::TrailerLine => {
                    i += 1;
                    if b == b'\n' {
                        ChunkState::TrailerLineStart
                    } else {
                        ChunkState::TrailerLine
                    }
                }
                ChunkState::TrailerEndLf => {
                    i += 1;
                    if b != b'\n' {
                        return Err(HttpError::Chunked("trailer not ended by CRLF"));
                    }
                    self.done = true;
                    ChunkState::TrailerEndLf
                }
            };
        }
        Ok(i)
    }
}

/// A GET request for `path_and_query` on `host`, with extra header lines (each ending CRLF).
pub fn get_request(host: &str, path_and_query: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(framing: BodyFraming, wire: &[u8], split: usize) -> (Vec<u8>, bool) {
        let mut d = BodyDecoder::new(framing);
        let mut out = Vec::new();
        let mut rest: Vec<u8> = Vec::new();
        for part in [&wire[..split], &wire[split..]] {
            rest.extend_from_slice(part);
            let used = d.decode(&rest, &mut out).unwrap();
            rest.drain(..used);
        }
        (out, d.is_done())
    }

    #[test]
    fn chunked_bodies_decode_at_every_split_point() {
        let wire =
            b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in 0..=wire.len() {
            let (out, done) = decode_split(BodyFraming::Chunked, wire, split);
            assert_eq!(out, b"helloabcdefghijklmnopqrstuvwxyz", "split {split}");
            assert!(done, "split {split}");
        }
        let (out, done) = decode_split(BodyFraming::Chunked, b"3\r\nabc\r\n", 4);
        assert_eq!((out.as_slice(), done), (&b"abc"[..], false));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcX",
            b"3\nabc",
            b"ffffffffffffffff1\r\n",
        ] {
            let mut d = BodyDecoder::new(BodyFraming::Chunked);
            assert!(d.decode(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn length_and_empty_framing() {
        let (out, done) = decode_split(BodyFraming::Length(3), b"abcdef", 2);
        assert_eq!((out.as_slice(), done), (&b"abc"[..], true));
        let header = |name, value| httparse::Header { name, value };
        let h = [header("Content-Length", &b"0"[..])];
        assert_eq!(framing(200, &h).unwrap(), BodyFraming::Empty);
        let h = [header("content-length", &b" 12"[..])];
        assert_eq!(framing(200, &h).unwrap(), BodyFraming::Length(12));
        assert_eq!(framing(304, &[]).unwrap(), BodyFraming::Empty);
        assert_eq!(framing(200, &[]).unwrap(), BodyFraming::UntilClose);
        let h = [header("Transfer-Encoding", &b"chunked"[..])];
        assert_eq!(framing(200, &h).unwrap(), BodyFraming::Chunked);
        let h = [header("transfer-encoding", &b"gzip"[..])];
        assert!(framing(200, &h).is_err());
    }

    /// A connection to a one-shot server that writes `answer` in pieces of `piece` bytes.
    async fn answered_by(answer: &'static [u8], piece: usize) -> HttpConn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for chunk in answer.chunks(piece) {
                s.write_all(chunk).await.unwrap();
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let stats = std::rc::Rc::new(std::cell::RefCell::new(crate::stats::Stats::new()));
        HttpConn::new(ClientStream::Plain(
            crate::clients::socket::MeasuredSocket::new(
                tokio::net::TcpStream::connect(addr).await.unwrap(),
                stats,
            ),
        ))
    }

    #[tokio::test]
    async fn heads_are_read_whole_and_headers_looked_up_in_them() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"0-1-1-0\"\r\n\
                       Content-Length: 5\r\n\r\nhello\
                       HTTP/1.1 304 Not Modified\r\netag: \"1-1-1-0\"\r\n\r\n";
        for piece in [1, 7, answer.len()] {
            let mut conn = answered_by(answer, piece).await;
            let head = conn.read_head().await.unwrap();
            assert_eq!((head.status, head.framing), (200, BodyFraming::Length(5)));
            assert_eq!(head.header("etag"), Some("\"0-1-1-0\""));
            assert_eq!(head.header("CONTENT-TYPE"), Some("application/json"));
            assert_eq!(head.header("x-missing"), None);
            let body = conn.read_body(head.framing, 100).await.unwrap();
            assert_eq!(body, b"hello", "piece {piece}");
            // The next answer on the same connection.
            let head = conn.read_head().await.unwrap();
            assert_eq!((head.status, head.framing), (304, BodyFraming::Empty));
            assert_eq!(head.header("ETag"), Some("\"1-1-1-0\""));
            assert!(conn.read_body(head.framing, 100).await.unwrap().is_empty());
            // Every byte counted at the socket.
            assert_eq!(conn.io.socket().counts().0, answer.len() as u64);
        }
    }
}
