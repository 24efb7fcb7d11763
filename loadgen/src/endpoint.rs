//! Where clients connect: `feed-server`'s own routes, or an external target's URL templates.

use std::net::SocketAddr;

use pushbench_feed::TopicId;

use crate::scenario::{Target, Transport};

/// A resolved URL template: one address, a `Host` header and a path with `{topic}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
    /// Path and query, `{topic}` standing for `org/repo/builds/B/steps/S`.
    pub path_template: String,
}

impl Endpoint {
    /// `feed-server`'s route for a transport.
    pub fn feed_server(addr: SocketAddr, transport: Transport) -> Self {
        let suffix = match transport {
            Transport::Sse => "/events",
            Transport::Ws => "/ws",
            Transport::Poll | Transport::LongPoll => "",
        };
        Endpoint {
            addr,
            host: addr.to_string(),
            path_template: format!("/{{topic}}/logs{suffix}"),
        }
    }

    /// An external target's URL for a transport, resolved (the scenario checked it exists).
    pub async fn external(target: &Target, transport: Transport) -> Result<Self, String> {
        let url = match transport {
            Transport::Sse => &target.sse_url,
            Transport::Ws => &target.ws_url,
            Transport::Poll | Transport::LongPoll => &target.poll_url,
        }
        .as_ref()
        .ok_or_else(|| format!("the target has no URL for {}", transport.as_str()))?;
        Endpoint::parse(url).await
    }

    /// Resolves `http://HOST[:PORT]/PATH` or `ws://…` (TLS is not supported).
    pub async fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} has no scheme"))?;
        let default_port = match scheme {
            "http" | "ws" => 80,
            other => {
                return Err(format!(
                    "{url:?}: scheme {other:?} is not supported (http, ws)"
                ))
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
            .map_err(|e| format!("{url:?}: cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url:?}: {authority} resolves to nothing"))?;
        Ok(Endpoint {
            addr,
            host: authority.to_string(),
            path_template: path.to_string(),
        })
    }

    /// The path for one topic.
    pub fn path(&self, topic: &TopicId) -> String {
        self.path_template.replace("{topic}", &topic.to_string())
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
        assert!(Endpoint::parse("https://127.0.0.1/x").await.is_err());
        assert!(Endpoint::parse("127.0.0.1/x").await.is_err());
    }
}
