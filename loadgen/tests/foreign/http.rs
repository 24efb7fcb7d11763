//! The foreign server's HTTP/1.1: reading request heads and bodies with `httparse`, writing
//! responses, and handing a connection with bytes already read over to the WebSocket
//! handshake.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body accepted (a published line).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One request's head.
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The head's bytes as received, for a WebSocket handshake that must read them again.
    pub raw: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The first query parameter `name` (no percent-decoding: pushbench sends none).
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The client asked to close the connection after this exchange.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why no request could be read.
pub enum ReadError {
    /// The connection failed, or the peer closed it in the middle of a request: nothing to
    /// answer.
    Gone,
    /// A request this server will not serve: answered with this status and body, then closed.
    Bad(&'static str, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

/// One accepted connection and what has been read from it but not used yet.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// The next request's head; `None` when the peer closed between requests.
    pub async fn read_head(&mut self) -> Result<Option<Request>, ReadError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let method = req.method.unwrap_or("").to_string();
                    let target = req.path.unwrap_or("").to_string();
                    let headers = req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).trim().to_string(),
                            )
                        })
                        .collect();
                    let raw = self.buf.split_to(len).freeze();
                    return Ok(Some(Request {
                        method,
                        target,
                        headers,
                        raw,
                    }));
                }
                Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD_BYTES => {
                    return Err(ReadError::Bad(
                        "431 Request Header Fields Too Large",
                        "request head too large\n",
                    ))
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => {
                    return Err(ReadError::Bad("400 Bad Request", "malformed request\n"));
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Gone)
                };
            }
        }
    }

    /// The request's body, by `Content-Length` (chunked request bodies are not supported,
    /// as in many small servers).
    pub async fn read_body(&mut self, req: &Request) -> Result<Bytes, ReadError> {
        if req.header("transfer-encoding").is_some() {
            return Err(ReadError::Bad(
                "501 Not Implemented",
                "chunked request bodies are not supported\n",
            ));
        }
        let len = match req.header("content-length") {
            None if req.method == "POST" => {
                return Err(ReadError::Bad("411 Length Required", "no Content-Length\n"))
            }
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| ReadError::Bad("400 Bad Request", "bad Content-Length\n"))?,
        };
        if len > MAX_BODY_BYTES {
            return Err(ReadError::Bad("413 Content Too Large", "body too large\n"));
        }
        while self.buf.len() < len {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(ReadError::Gone);
            }
        }
        Ok(self.buf.split_to(len).freeze())
    }

    /// Writes a whole response with a `Content-Length` body (none for 304).
    pub async fn respond(
        &mut self,
        status: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        let mut out = format!("HTTP/1.1 {status}\r\n");
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !status.starts_with("304") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).await?;
        if close {
            // Orderly close: FIN after the response, then the socket is dropped.
            self.stream.shutdown().await?;
        }
        Ok(())
    }

    /// The connection as a stream that first replays `prefix` (a request head already read)
    /// and whatever followed it.
    pub fn replaying(self, prefix: &[u8]) -> Replay {
        let mut pending = BytesMut::from(prefix);
        pending.extend_from_slice(&self.buf);
        Replay {
            pending: pending.freeze(),
            inner: self.stream,
        }
    }
}

/// A connection whose first bytes were already read: they are read again before the socket's.
pub struct Replay {
    pending: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
