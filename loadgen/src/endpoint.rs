//! Where clients connect: `feed-server`'s own routes, or an external target's URL templates.

use std::net::SocketAddr;

use pushbench_protocol::{TopicId, Transport as Served};

use crate::scenario::{Target, Transport};

/// What stands for the topic (`org/repo/builds/B/steps/S`) in a URL template.
pub const TOPIC_PLACEHOLDER: &str = "{topic}";

/// Why a URL template gives no endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the target has no URL for {0}")]
    NoUrl(&'static str),
    #[error("{0:?} has no scheme")]
    NoScheme(String),
    #[error("{url:?}: scheme {scheme:?} is not supported (http, https, ws, wss)")]
    Scheme { url: String, scheme: String },
    #[error("{url:?}: cannot resolve {authority}")]
    Resolve {
        url: String,
        authority: String,
        source: std::io::Error,
    },
    #[error("{url:?}: {authority} resolves to nothing")]
    NoAddress { url: String, authority: String },
}

/// A resolved URL template: one address, a `Host` header and a path with `{topic}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
    /// `https://` or `wss://`: clients speak TLS to `server_name`.
    pub tls: bool,
    /// The host without its port: the TLS server name.
    pub server_name: String,
    /// Path and query, `{topic}` standing for `org/repo/builds/B/steps/S`.
    pub path_template: String,
}

impl Endpoint {
    /// `feed-server`'s route for a transport.
    pub fn feed_server(addr: SocketAddr, transport: Transport) -> Self {
        Endpoint {
            addr,
            host: addr.to_string(),
            tls: false,
            server_name: addr.ip().to_string(),
            path_template: transport.served_by().route().path(TOPIC_PLACEHOLDER),
        }
    }

    /// An external target's URL for a transport, resolved (the scenario checked it exists).
    pub async fn external(target: &Target, transport: Transport) -> Result<Self, EndpointError> {
        let url = match transport.served_by() {
            Served::Sse => &target.sse_url,
            Served::Ws => &target.ws_url,
            Served::Poll => &target.poll_url,
        }
        .as_ref()
        .ok_or(EndpointError::NoUrl(transport.as_str()))?;
        Endpoint::parse(url).await
    }

    /// Resolves `http://HOST[:PORT]/PATH`, `https://…`, `ws://…` or `wss://…`.
    pub async fn parse(url: &str) -> Result<Self, EndpointError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| EndpointError::NoScheme(url.to_string()))?;
        let (default_port, tls) = match scheme {
            "http" | "ws" => (80, false),
            "https" | "wss" => (443, true),
            other => {
                return Err(EndpointError::Scheme {
                    url: url.to_string(),
                    scheme: other.to_string(),
                })
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|source| EndpointError::Resolve {
                url: url.to_string(),
                authority: authority.to_string(),
                source,
            })?
            .next()
            .ok_or_else(|| EndpointError::NoAddress {
                url: url.to_string(),
                authority: authority.to_string(),
            })?;
        let server_name = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority,
        }
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
        Ok(Endpoint {
            addr,
            host: authority.to_string(),
            tls,
            server_name,
            path_template: path.to_string(),
        })
    }

    /// The path for one topic.
    pub fn path(&self, topic: &TopicId) -> String {
        self.path_template
            .replace(TOPIC_PLACEHOLDER, &topic.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_templates() {
        let e = Endpoint::parse("http://127.0.0.1:9000/{topic}/logs/events?x=1")
            .await
            .unwrap();
        assert_eq!(e.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(e.host, "127.0.0.1:9000");
        let t = TopicId::new("a", "b", "1", "2").unwrap();
        assert_eq!(e.path(&t), "/a/b/builds/1/steps/2/logs/events?x=1");
        let f = Endpoint::feed_server("127.0.0.1:1".parse().unwrap(), Transport::Ws);
        assert_eq!(f.path(&t), "/a/b/builds/1/steps/2/logs/ws");
        assert!(!e.tls);
        let s = Endpoint::parse("https://localhost:8443/{topic}")
            .await
            .unwrap();
        assert!(s.tls);
        assert_eq!((s.server_name.as_str(), s.addr.port()), ("localhost", 8443));
        let w = Endpoint::parse("wss://127.0.0.1/ws").await.unwrap();
        assert!(w.tls);
        assert_eq!(w.addr.port(), 443);
        assert!(Endpoint::parse("ftp://127.0.0.1/x").await.is_err());
        assert!(Endpoint::parse("127.0.0.1/x").await.is_err());
    }
}
