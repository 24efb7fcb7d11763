//! Why a client's session failed: [`SessionError`] carries the details for a person, its
//! [`FailureReason`] is the kind it is counted under (a run's `failure_reasons`), so reasons
//! aggregate by what went wrong, not by the seqs, ports or bodies in their messages.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::http1::HttpError;
use crate::sse_parser::SseError;

/// Which answer an HTTP status came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Answer {
    EventStream,
    Poll,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::EventStream => "the event stream",
            Answer::Poll => "poll",
        })
    }
}

/// Where in an HTTP exchange an error came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Send,
    Response,
    ResponseBody,
    Stream,
    /// The HTTP/2 connection preface and SETTINGS exchange.
    Handshake,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Send => "send",
            Step::Response => "response",
            Step::ResponseBody => "response body",
            Step::Stream => "stream",
            Step::Handshake => "h2 handshake",
        })
    }
}

/// Why a session, or the connect that would have started it, failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("tls handshake with {host}")]
    TlsHandshake {
        host: String,
        source: std::io::Error,
    },
    #[error("handshake: {0}")]
    WsHandshake(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("HTTP {status} from {answer}{}", body_suffix(.body))]
    Status {
        answer: Answer,
        status: u16,
        /// The answer's first bytes, for a person.
        body: String,
    },
    #[error("content-type {0:?} is not text/event-stream")]
    NotEventStream(Option<String>),
    #[error("{step}")]
    Http { step: Step, source: HttpError },
    #[error("HTTP/2 {step}")]
    Http2 { step: Step, source: h2::Error },
    #[error("the TLS server chose ALPN {0:?}, not h2")]
    NotH2Alpn(Option<String>),
    #[error("cannot build the request: {0}")]
    BadRequest(String),
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("event stream: {0}")]
    EventStream(SseError),
    #[error("server dropped us as lagged: {0}")]
    Lagged(String),
    #[error("event stream ended without an end event")]
    StreamEnded,
    #[error("malformed poll answer: {0}")]
    MalformedPoll(serde_json::Error),
    #[error("malformed line payload {payload:?}")]
    MalformedPayload {
        source: serde_json::Error,
        payload: String,
    },
    #[error("no pb:SEQ:TS marker in {0:?}")]
    NoMarker(String),
    #[error("closed with {code} {reason}")]
    WsClosed { code: u16, reason: String },
    #[error("closed without a code")]
    WsClosedWithoutCode,
    #[error("websocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("connection closed without a close frame")]
    WsEof,
    #[error("the target closed the connection after its answer")]
    ClosedAfterAnswer,
}

fn body_suffix(body: &str) -> String {
    match body.is_empty() {
        true => String::new(),
        false => format!(": {body}"),
    }
}

/// The oldest seq a `410 Gone` answer says the server still holds (`{"oldest_seq": N}` in
/// its JSON body, as feed-server answers a resume cursor older than its history). `None` for
/// any other answer: the client then treats it as any failed connect.
pub fn history_gone(status: u16, body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Gone {
        oldest_seq: u64,
    }
    (status == 410)
        .then(|| serde_json::from_slice::<Gone>(body).ok())
        .flatten()
        .map(|g| g.oldest_seq)
}

/// At most this much of a payload or answer goes into a message.
const EXCERPT_BYTES: usize = 200;

/// The first bytes of `data`, as text.
pub fn excerpt(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(EXCERPT_BYTES)]).into_owned()
}

/// What a session failure is counted as (serialised in a shard's record, to merge by kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FailureReason {
    ConnectRefused,
    ConnectTimedOut,
    Connect,
    TlsHandshake,
    WsHandshake,
    Status { answer: Answer, status: u16 },
    NotEventStream,
    Http(Step),
    Http2(Step),
    NotH2Alpn,
    BadRequest,
    BodyTooLarge,
    EventStreamSyntax,
    Lagged,
    StreamEnded,
    MalformedPoll,
    MalformedPayload,
    NoMarker,
    WsClosed(u16),
    WsClosedWithoutCode,
    WebSocket,
    WsEof,
    ClosedAfterAnswer,
}

impl SessionError {
    /// The kind this failure is counted under.
    pub fn reason(&self) -> FailureReason {
        use std::io::ErrorKind;
        match self {
            SessionError::Connect(e) => match e.kind() {
                ErrorKind::ConnectionRefused => FailureReason::ConnectRefused,
                ErrorKind::TimedOut => FailureReason::ConnectTimedOut,
                _ => FailureReason::Connect,
            },
            SessionError::TlsHandshake { .. } => FailureReason::TlsHandshake,
            SessionError::WsHandshake(_) => FailureReason::WsHandshake,
            SessionError::Status { answer, status, .. } => FailureReason::Status {
                answer: *answer,
                status: *status,
            },
            SessionError::NotEventStream(_) => FailureReason::NotEventStream,
            SessionError::Http { step, .. } => FailureReason::Http(*step),
            SessionError::Http2 { step, .. } => FailureReason::Http2(*step),
            SessionError::NotH2Alpn(_) => FailureReason::NotH2Alpn,
            SessionError::BadRequest(_) => FailureReason::BadRequest,
            SessionError::BodyTooLarge(_) => FailureReason::BodyTooLarge,
            SessionError::EventStream(_) => FailureReason::EventStreamSyntax,
            SessionError::Lagged(_) => FailureReason::Lagged,
            SessionError::StreamEnded => FailureReason::StreamEnded,
            SessionError::MalformedPoll(_) => FailureReason::MalformedPoll,
            SessionError::MalformedPayload { .. } => FailureReason::MalformedPayload,
            SessionError::NoMarker(_) => FailureReason::NoMarker,
            SessionError::WsClosed { code, .. } => FailureReason::WsClosed(*code),
            SessionError::WsClosedWithoutCode => FailureReason::WsClosedWithoutCode,
            SessionError::WebSocket(_) => FailureReason::WebSocket,
            SessionError::WsEof => FailureReason::WsEof,
            SessionError::ClosedAfterAnswer => FailureReason::ClosedAfterAnswer,
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::ConnectRefused => f.write_str("connect: connection refused"),
            FailureReason::ConnectTimedOut => f.write_str("connect: timed out"),
            FailureReason::Connect => f.write_str("connect failed"),
            FailureReason::TlsHandshake => f.write_str("TLS handshake failed"),
            FailureReason::WsHandshake => f.write_str("WebSocket handshake refused"),
            FailureReason::Status { answer, status } => write!(f, "HTTP {status} from {answer}"),
            FailureReason::NotEventStream => f.write_str("answer is not text/event-stream"),
            FailureReason::Http(step) => write!(f, "{step} failed"),
            FailureReason::Http2(step) => write!(f, "HTTP/2 {step} failed"),
            FailureReason::NotH2Alpn => f.write_str("the TLS server did not choose h2 (ALPN)"),
            FailureReason::BadRequest => f.write_str("request could not be built"),
            FailureReason::BodyTooLarge => f.write_str("response body too large"),
            FailureReason::EventStreamSyntax => f.write_str("malformed event stream"),
            FailureReason::Lagged => f.write_str("server dropped us as lagged"),
            FailureReason::StreamEnded => f.write_str("event stream ended without an end event"),
            FailureReason::MalformedPoll => f.write_str("malformed poll answer"),
            FailureReason::MalformedPayload => f.write_str("malformed line payload"),
            FailureReason::NoMarker => f.write_str("line without a pb:SEQ:TS marker"),
            FailureReason::WsClosed(code) => write!(f, "WebSocket closed with {code}"),
            FailureReason::WsClosedWithoutCode => f.write_str("WebSocket closed without a code"),
            FailureReason::WebSocket => f.write_str("WebSocket protocol error"),
            FailureReason::WsEof => f.write_str("connection closed without a close frame"),
            FailureReason::ClosedAfterAnswer => {
                f.write_str("the target closed the connection after its answer")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_410_names_where_history_starts() {
        let body = br#"{"error":"history of a/b starts at seq 7","oldest_seq":7}"#;
        assert_eq!(history_gone(410, body), Some(7));
        assert_eq!(history_gone(404, body), None);
        assert_eq!(history_gone(410, b"gone"), None);
    }

    #[test]
    fn failures_count_by_kind_not_by_detail() {
        let a = SessionError::Status {
            answer: Answer::Poll,
            status: 404,
            body: r#"{"error":"unknown topic acme/app/builds/pb1796/steps/1"}"#.into(),
        };
        let b = SessionError::Status {
            answer: Answer::Poll,
            status: 404,
            body: r#"{"error":"unknown topic acme/app/builds/pb1797/steps/2"}"#.into(),
        };
        assert_eq!(a.reason(), b.reason());
        assert_eq!(a.reason().to_string(), "HTTP 404 from poll");
        assert!(a.to_string().starts_with("HTTP 404 from poll: {\"error\""));
        let refused = SessionError::Connect(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(refused.reason(), FailureReason::ConnectRefused);
        assert_eq!(
            SessionError::WsClosed {
                code: 1011,
                reason: "lagged".into()
            }
            .reason()
            .to_string(),
            "WebSocket closed with 1011"
        );
    }
}
