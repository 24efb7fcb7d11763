//! The foreign server's event stream: legal WHATWG `text/event-stream`, written as awkwardly
//! as the standard allows, and never ended by the server.
//!
//! - the body opens with a UTF-8 BOM, itself split over two writes;
//! - line ends rotate per event: LF, CR alone, CRLF (`id % 3`);
//! - four event layouts rotate (`id % 4`): `id` before or after `data`, `data:` with and
//!   without the space, a comment, unknown fields with and without a value (`foo: bar`,
//!   `foo`), a bogus `retry: soon`, an `event` field without a value (the type stays
//!   `message`);
//! - the `retry: soon` layout is written one byte per write, yielding between bytes (in the
//!   chunked variant each byte is a one-byte chunk);
//! - `: keep-alive` comments every [`KEEP_ALIVE`] while idle.
//!
//! No line is ever followed by a byte that would change its meaning: events never start with
//! LF, so a CR line end is never read back as half of a CRLF.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::Topic;

/// A comment is sent after this long without an event.
pub const KEEP_ALIVE: Duration = Duration::from_millis(200);

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Streams `topic`'s lines from index `after` (0-based count of lines already seen) until
/// the client goes away. Writes the response head itself.
pub async fn stream(
    stream: &mut TcpStream,
    topic: Arc<Topic>,
    after: usize,
    chunked: bool,
) -> io::Result<()> {
    // Subscribe before anything is written: a line appended once the head is out is streamed.
    let mut appended = topic.subscribe();
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        "Connection: close\r\n"
    };
    stream
        .write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{framing}\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut body = Body { stream, chunked };
    body.write(&BOM[..1]).await?;
    body.write(&BOM[1..]).await?;
    let mut sent = after;
    loop {
        let len = *appended.borrow_and_update();
        if sent < len {
            for (i, line) in topic.lines(sent, len).iter().enumerate() {
                let id = sent + i + 1;
                let event = event(id, line);
                if id % 4 == 2 {
                    body.write_bytewise(&event).await?;
                } else {
                    body.write(&event).await?;
                }
            }
            sent = len;
            continue;
        }
        match tokio::time::timeout(KEEP_ALIVE, appended.changed()).await {
            Ok(Ok(())) => {}
            // The topic is gone (the server is stopping).
            Ok(Err(_)) => return Ok(()),
            Err(_idle) => body.write(b": keep-alive\n").await?,
        }
    }
}

/// Line `id` (1-based) as one event, in the layout and with the line end its id selects.
pub fn event(id: usize, line: &str) -> Vec<u8> {
    let eol = ["\n", "\r", "\r\n"][id % 3];
    let text = match id % 4 {
        0 => format!("id: {id}{eol}data: {line}{eol}{eol}"),
        1 => format!(": keep-alive{eol}id:{id}{eol}foo: bar{eol}data:{line}{eol}{eol}"),
        2 => format!("retry: soon{eol}data:{line}{eol}id: {id}{eol}{eol}"),
        _ => format!("event{eol}data: {line}{eol}id:{id}{eol}foo{eol}{eol}"),
    };
    text.into_bytes()
}

/// The response body: close-delimited, or chunked with one chunk per write.
struct Body<'a> {
    stream: &'a mut TcpStream,
    chunked: bool,
}

impl Body<'_> {
    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.chunked {
            let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
            chunk.extend_from_slice(bytes);
            chunk.extend_from_slice(b"\r\n");
            self.stream.write_all(&chunk).await?;
        } else {
            self.stream.write_all(bytes).await?;
        }
        self.stream.flush().await
    }

    async fn write_bytewise(&mut self, bytes: &[u8]) -> io::Result<()> {
        for b in bytes {
            self.write(std::slice::from_ref(b)).await?;
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}
