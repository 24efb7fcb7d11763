//! The transports: what a server serves ([`Transport`]) and how a client reads
//! ([`ClientTransport`]). The crate docs explain why there are two.

use std::fmt;

use serde::Serialize;

/// A transport a server serves. Its names are the values feed-server's `--transport` takes
/// and the `transport` label of its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Server-sent events at [`crate::Route::Events`].
    Sse,
    /// WebSocket at [`crate::Route::Ws`].
    Ws,
    /// Polling and long-polling at [`crate::Route::Logs`].
    Poll,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Sse, Transport::Ws, Transport::Poll];

    /// `sse`, `ws` or `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Poll => "poll",
        }
    }

    /// The transport of a name [`Self::as_str`] gives.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client reads a step's log: one of the served transports, with polling split into
/// short polls and long polls (a client-side choice: a long poll is a poll with `wait=`).
/// Its names are the ones scenario files, results and reports use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientTransport {
    /// Server-sent events (`text/event-stream`), resumed with `Last-Event-ID`.
    Sse,
    /// WebSocket.
    Ws,
    /// Short polling at `poll.interval` with ETag / If-None-Match.
    Poll,
    /// Long polling: `GET ?after=SEQ&wait=DURATION`.
    LongPoll,
    /// Server-sent events over HTTP/2: each client one stream, many streams per connection.
    SseH2,
    /// Short polling over HTTP/2: each poll one request on a shared connection.
    PollH2,
    /// Long polling over HTTP/2: each long poll one request on a shared connection.
    LongPollH2,
}

impl ClientTransport {
    /// Every client transport, in the order reports list them.
    /// The HTTP/1.1 ones first, then the HTTP/2 ones.
    pub const ALL: [ClientTransport; 7] = [
        ClientTransport::Sse,
        ClientTransport::Ws,
        ClientTransport::Poll,
        ClientTransport::LongPoll,
        ClientTransport::SseH2,
        ClientTransport::PollH2,
        ClientTransport::LongPollH2,
    ];

    /// `sse`, `ws`, `poll`, `long-poll`, `sse-h2`, `poll-h2` or `long-poll-h2`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTransport::Sse => "sse",
            ClientTransport::Ws => "ws",
            ClientTransport::Poll => "poll",
            ClientTransport::LongPoll => "long-poll",
            ClientTransport::SseH2 => "sse-h2",
            ClientTransport::PollH2 => "poll-h2",
            ClientTransport::LongPollH2 => "long-poll-h2",
        }
    }

    /// Whether this client speaks HTTP/2 (many clients' streams on one connection).
    pub fn http2(self) -> bool {
        self != self.over_http1()
    }

    /// The HTTP/1.1 transport reading the same way: `sse-h2` → `sse`, `poll-h2` → `poll`,
    /// `long-poll-h2` → `long-poll`; the HTTP/1.1 transports map to themselves.
    pub fn over_http1(self) -> ClientTransport {
        match self {
            ClientTransport::SseH2 => ClientTransport::Sse,
            ClientTransport::PollH2 => ClientTransport::Poll,
            ClientTransport::LongPollH2 => ClientTransport::LongPoll,
            t => t,
        }
    }

    /// The client transport of a name [`Self::as_str`] gives.
    pub fn from_name(name: &str) -> Option<ClientTransport> {
        ClientTransport::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
    }

    /// The server transport this client speaks to: the one mapping between the two enums
    /// (feed-server's `--transport`, the route, the server's metrics label).
    pub fn served_by(self) -> Transport {
        match self.over_http1() {
            ClientTransport::Sse => Transport::Sse,
            ClientTransport::Ws => Transport::Ws,
            _ => Transport::Poll,
        }
    }
}

impl fmt::Display for ClientTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let names: Vec<&str> = Transport::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["sse", "ws", "poll"]);
        let names: Vec<&str> = ClientTransport::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "sse",
                "ws",
                "poll",
                "long-poll",
                "sse-h2",
                "poll-h2",
                "long-poll-h2"
            ]
        );
        for t in Transport::ALL {
            assert_eq!(Transport::from_name(t.as_str()), Some(t));
        }
        for t in ClientTransport::ALL {
            assert_eq!(ClientTransport::from_name(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(Transport::from_name("long-poll"), None);
        assert_eq!(ClientTransport::from_name("websocket"), None);
    }

    #[test]
    fn long_polls_are_served_by_the_poll_transport() {
        let served: Vec<Transport> = ClientTransport::ALL.iter().map(|t| t.served_by()).collect();
        assert_eq!(
            served,
            [
                Transport::Sse,
                Transport::Ws,
                Transport::Poll,
                Transport::Poll,
                Transport::Sse,
                Transport::Poll,
                Transport::Poll
            ]
        );
    }

    #[test]
    fn h2_transports_map_to_their_http1_twins() {
        let h2: Vec<ClientTransport> = ClientTransport::ALL
            .into_iter()
            .filter(|t| t.http2())
            .collect();
        assert_eq!(
            h2,
            [
                ClientTransport::SseH2,
                ClientTransport::PollH2,
                ClientTransport::LongPollH2
            ]
        );
        let twins: Vec<ClientTransport> = h2.iter().map(|t| t.over_http1()).collect();
        assert_eq!(
            twins,
            [
                ClientTransport::Sse,
                ClientTransport::Poll,
                ClientTransport::LongPoll
            ]
        );
        for t in twins {
            assert!(!t.http2());
            assert_eq!(t.over_http1(), t);
        }
    }
}
