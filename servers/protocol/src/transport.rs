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
}

impl ClientTransport {
    /// Every client transport, in the order reports list them.
    pub const ALL: [ClientTransport; 4] = [
        ClientTransport::Sse,
        ClientTransport::Ws,
        ClientTransport::Poll,
        ClientTransport::LongPoll,
    ];

    /// `sse`, `ws`, `poll` or `long-poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTransport::LongPoll => "long-poll",
            t => t.served_by().as_str(),
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
        match self {
            ClientTransport::Sse => Transport::Sse,
            ClientTransport::Ws => Transport::Ws,
            ClientTransport::Poll | ClientTransport::LongPoll => Transport::Poll,
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
        assert_eq!(names, ["sse", "ws", "poll", "long-poll"]);
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
                Transport::Poll
            ]
        );
    }
}
