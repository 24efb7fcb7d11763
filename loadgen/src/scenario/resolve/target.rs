//! The `[target]` section (external-target mode) and its URL templates.

use pushbench_protocol::Transport as Served;
use toml::Spanned;

use super::check::Check;
use crate::endpoint::TOPIC_PLACEHOLDER;
use crate::scenario::raw::{RawScenario, RawTarget, S};
use crate::scenario::{PollCursor, ServerSelector, Target, Transport};

/// The URL template of `served` on a feed-server at `base` (no trailing slash).
fn feed_server_url(base: &str, served: Served) -> String {
    let b = match served {
        Served::Ws => match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
        },
        _ => base.to_string(),
    };
    format!("{b}{}", served.route().path(TOPIC_PLACEHOLDER))
}

/// Why `--target URL` is not a feed-server's base URL.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetUrlError {
    #[error("--target {0:?}: must start with http:// or https://")]
    Scheme(String),
    #[error("--target {0:?}: has no host")]
    NoHost(String),
    #[error("--target {0:?}: give the server's base URL only (no query, fragment or placeholder): the topic's path is appended")]
    NotABase(String),
}

/// `--target URL`: a feed-server at `base` that pushbench does not start, fed by the load
/// generator's publisher (`POST {base}/{topic}/logs`), lines first and viewers after (a
/// feed-server refuses viewers of a step without lines and replays history to new ones).
pub fn feed_server_target(base: &str) -> Result<Target, TargetUrlError> {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .ok_or_else(|| TargetUrlError::Scheme(base.to_string()))?;
    if rest.split(['/', '?']).next().is_none_or(str::is_empty) {
        return Err(TargetUrlError::NoHost(base.to_string()));
    }
    if base.contains(['?', '#', '{', '}', ' ']) {
        return Err(TargetUrlError::NotABase(base.to_string()));
    }
    let b = base.trim_end_matches('/');
    Ok(Target {
        sse_url: Some(feed_server_url(b, Served::Sse)),
        ws_url: Some(feed_server_url(b, Served::Ws)),
        poll_url: Some(feed_server_url(b, Served::Poll)),
        publish_url: Some(format!(
            "{b}{}",
            pushbench_protocol::Route::Logs.path(TOPIC_PLACEHOLDER)
        )),
        poll_cursor: PollCursor::FeedServer,
        server: None,
        insecure: false,
        publish_first: true,
    })
}

/// Checks a URL template: scheme, authority, and `{topic}` as its only placeholder (and
/// `{after}` where `with_after`: the poll URL of the `query` cursor, which needs it).
fn check_url(
    c: &mut Check,
    url: &Spanned<String>,
    key: &str,
    scheme: &str,
    needs_topic: bool,
    with_after: bool,
) {
    let u = url.get_ref();
    // The scheme, or its TLS twin: http:// or https://, ws:// or wss://.
    let secure = format!("{}s://", scheme.trim_end_matches("://"));
    let Some(rest) = u.strip_prefix(scheme).or_else(|| u.strip_prefix(&secure)) else {
        c.err(
            url.span(),
            format!("`target.{key}` must start with {scheme} or {secure}, got {u:?}"),
        );
        return;
    };
    if rest.split(['/', '?']).next().is_none_or(str::is_empty) {
        c.err(url.span(), format!("`target.{key}` has no host, got {u:?}"));
    }
    let mut has_topic = false;
    let mut has_after = false;
    let mut tail = u.as_str();
    while let Some(open) = tail.find('{') {
        let Some(close) = tail[open..].find('}') else {
            c.err(url.span(), format!("`target.{key}` has an unclosed `{{`"));
            return;
        };
        let placeholder = &tail[open + 1..open + close];
        if placeholder == "topic" {
            has_topic = true;
        } else if placeholder == "after" && with_after {
            has_after = true;
        } else if placeholder == "after" {
            c.err(
                url.span(),
                format!("`target.{key}` has `{{after}}`, which only `poll_url` with `poll_cursor = \"query\"` takes"),
            );
        } else {
            c.err(
                url.span(),
                format!("`target.{key}` has an unknown placeholder `{{{placeholder}}}`, expected `{{topic}}`"),
            );
        }
        tail = &tail[open + close + 1..];
    }
    if with_after && !has_after {
        c.err(
            url.span(),
            format!(
                "`target.{key}` needs an `{{after}}` placeholder with `poll_cursor = \"query\"`: \
                 it carries the seq of the last line the client has"
            ),
        );
    }
    if needs_topic && !has_topic {
        c.err(
            url.span(),
            format!(
                "`target.{key}` needs a `{{topic}}` placeholder: the feed has several topics and \
                 each client reads one"
            ),
        );
    }
}

pub(super) fn resolve_target(
    c: &mut Check,
    raw_target: &Spanned<RawTarget>,
    raw: &RawScenario,
    transports: &[Transport],
    topics: u32,
) -> Target {
    let t = raw_target.get_ref();
    let needs_topic = topics > 1;
    if let Some(base) = &t.base_url {
        if base.get_ref().contains(['{', '}']) {
            c.err(
                base.span(),
                "`target.base_url` must not contain placeholders: the topic's path is appended",
            );
        } else {
            check_url(c, base, "base_url", "http://", false, false);
        }
    }
    let base = t
        .base_url
        .as_ref()
        .map(|b| b.get_ref().trim_end_matches('/').to_string());
    // The paths `feed-server` serves, so that `base_url` is enough for another feed-server.
    let derive = |served: Served, _ws: bool| base.as_ref().map(|b| feed_server_url(b, served));
    let poll_cursor = match &t.poll_cursor {
        None => PollCursor::FeedServer,
        Some(v) => PollCursor::from_name(v.get_ref()).unwrap_or_else(|| {
            c.err(
                v.span(),
                format!(
                    "`target.poll_cursor` must be \"feed-server\", \"query\", \"etag\" or \"last-modified\", got {:?}",
                    v.get_ref()
                ),
            );
            PollCursor::FeedServer
        }),
    };
    let query_cursor = poll_cursor == PollCursor::Query;
    if let (Some(v), true) = (&t.poll_cursor, t.poll_url.is_none()) {
        if poll_cursor != PollCursor::FeedServer {
            c.err(
                v.span(),
                "`target.poll_cursor` describes a foreign poll API: give its `target.poll_url` too",
            );
        }
    }
    let mut url =
        |value: &S<String>, key: &str, scheme: &str, derived: Option<String>, with_after: bool| {
            match value {
                Some(v) => {
                    check_url(c, v, key, scheme, needs_topic, with_after);
                    Some(v.get_ref().clone())
                }
                None => derived,
            }
        };
    let sse_url = url(
        &t.sse_url,
        "sse_url",
        "http://",
        derive(Served::Sse, false),
        false,
    );
    let ws_url = url(
        &t.ws_url,
        "ws_url",
        "ws://",
        derive(Served::Ws, true),
        false,
    );
    let poll_url = url(
        &t.poll_url,
        "poll_url",
        "http://",
        derive(Served::Poll, false),
        query_cursor,
    );
    let publish_url = url(&t.publish_url, "publish_url", "http://", None, false);
    let server = match (&t.server_pid, &t.server_process) {
        (Some(pid), Some(name)) => {
            c.err(
                name.span(),
                "give `target.server_pid` or `target.server_process`, not both",
            );
            let _ = pid;
            None
        }
        (Some(pid), None) => match u32::try_from(*pid.get_ref()) {
            Ok(p) if p > 0 => Some(ServerSelector::Pid(p)),
            _ => {
                c.err(
                    pid.span(),
                    format!(
                        "`target.server_pid` must be a process id above 0, got {}",
                        pid.get_ref()
                    ),
                );
                None
            }
        },
        (None, Some(name)) => {
            let n = name.get_ref();
            // /proc/PID/comm holds at most 15 bytes: a longer name would never match.
            if n.is_empty() || n.len() > 15 || n.contains('/') {
                c.err(
                    name.span(),
                    format!(
                        "`target.server_process` must be a process name as /proc/PID/comm shows it \
                         (1 to 15 bytes, no '/'), got {n:?}"
                    ),
                );
                None
            } else {
                Some(ServerSelector::Process(n.clone()))
            }
        }
        (None, None) => None,
    };
    let target = Target {
        sse_url,
        ws_url,
        poll_url,
        publish_url,
        poll_cursor,
        server,
        insecure: t.insecure.as_ref().is_some_and(|v| *v.get_ref()),
        publish_first: t.publish_first.as_ref().is_some_and(|v| *v.get_ref()),
    };
    if let Some(list) = &raw.transports {
        for entry in list.get_ref() {
            let (has, key) = match Transport::from_name(entry.get_ref()).map(Transport::served_by) {
                Some(Served::Sse) => (target.sse_url.is_some(), "sse_url"),
                Some(Served::Ws) => (target.ws_url.is_some(), "ws_url"),
                Some(Served::Poll) => (target.poll_url.is_some(), "poll_url"),
                None => continue,
            };
            if !has && transports.iter().any(|tr| tr.as_str() == entry.get_ref()) {
                c.err(
                    entry.span(),
                    format!(
                        "transport `{}` needs `target.{key}` (or `target.base_url`) in external-target mode",
                        entry.get_ref()
                    ),
                );
            }
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_util::*;

    const TARGET: &str = "transports = [\"sse\", \"long-poll\"]\n\
                          duration = \"1s\"\n\
                          [clients]\n\
                          count = 10\n\
                          [feed]\n\
                          topics = 2\n\
                          lines_per_sec = 5.0\n\
                          line_bytes = 80\n\
                          [target]\n\
                          sse_url = \"http://127.0.0.1:9000/{topic}/logs/events\"\n";

    #[test]
    fn feed_server_target_derives_every_route() {
        let t = feed_server_target("http://10.0.0.5:8080/").unwrap();
        assert_eq!(
            t.sse_url.as_deref(),
            Some("http://10.0.0.5:8080/{topic}/logs/events")
        );
        assert_eq!(
            t.ws_url.as_deref(),
            Some("ws://10.0.0.5:8080/{topic}/logs/ws")
        );
        assert_eq!(
            t.poll_url.as_deref(),
            Some("http://10.0.0.5:8080/{topic}/logs")
        );
        assert_eq!(
            t.publish_url.as_deref(),
            Some("http://10.0.0.5:8080/{topic}/logs")
        );
        assert!(t.publish_first);
        assert_eq!(
            feed_server_target("https://h").unwrap().ws_url.as_deref(),
            Some("wss://h/{topic}/logs/ws")
        );
        for bad in ["ftp://h", "http://", "http://h/?x=1", "10.0.0.5:8080"] {
            assert!(feed_server_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn target_transport_without_url() {
        let msg = err(TARGET);
        assert_diag(
            &msg,
            1,
            22,
            &["transport `long-poll` needs `target.poll_url`"],
        );
        let sc = ok(&format!(
            "{TARGET}poll_url = \"http://127.0.0.1:9000/{{topic}}/logs\"\n"
        ));
        let target = sc.target.expect("target mode");
        assert_eq!(
            target.poll_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs")
        );
        assert_eq!(target.ws_url, None);
        assert_eq!(target.publish_url, None);
    }

    #[test]
    fn target_base_url_implies_feed_server_paths() {
        let text = TARGET.replace(
            "sse_url = \"http://127.0.0.1:9000/{topic}/logs/events\"",
            "base_url = \"http://127.0.0.1:9000/\"\npublish_url = \"http://127.0.0.1:9000/{topic}/logs\"",
        );
        let t = ok(&text).target.expect("target mode");
        assert_eq!(
            t.sse_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs/events")
        );
        assert_eq!(
            t.ws_url.as_deref(),
            Some("ws://127.0.0.1:9000/{topic}/logs/ws")
        );
        assert_eq!(
            t.poll_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs")
        );
        assert_eq!(
            t.publish_url.as_deref(),
            Some("http://127.0.0.1:9000/{topic}/logs")
        );
    }

    #[test]
    fn target_url_rules() {
        let bad = |url: &str| {
            err(&TARGET.replace(
                "\"http://127.0.0.1:9000/{topic}/logs/events\"",
                &format!("\"{url}\"\npoll_url = \"http://h/{{topic}}\""),
            ))
        };
        assert_diag(
            &bad("ftp://h/{topic}"),
            10,
            11,
            &["must start with http:// or https://"],
        );
        assert_diag(&bad("http:///{topic}"), 10, 11, &["has no host"]);
        assert_diag(
            &bad("http://h/{topc}"),
            10,
            11,
            &["unknown placeholder `{topc}`"],
        );
        assert_diag(
            &bad("http://h/logs"),
            10,
            11,
            &["needs a `{topic}` placeholder"],
        );
        let msg = err(&format!(
            "{TARGET}poll_url = \"http://h/{{topic}}\"\n[server]\nworkers = 2\n"
        ));
        assert_diag(
            &msg,
            12,
            1,
            &["[server]", "cannot be combined with [target]"],
        );
    }

    #[test]
    fn foreign_target_fields() {
        let with = |extra: &str| format!("{TARGET}poll_url = \"http://h/{{topic}}\"\n{extra}");
        // TLS schemes, insecure, the server process.
        let tls = TARGET
            .replace("http://127.0.0.1:9000", "https://localhost:9443")
            .replace(
                "transports = [\"sse\", \"long-poll\"]",
                "transports = [\"sse\"]",
            );
        let t = ok(&format!(
            "{tls}insecure = true\nserver_process = \"nginx\"\n"
        ))
        .target
        .expect("target mode");
        assert!(t.insecure);
        assert_eq!(t.server, Some(ServerSelector::Process("nginx".into())));
        assert_eq!(t.poll_cursor, PollCursor::FeedServer);
        let base = ok(&format!(
            "{}[target]\nbase_url = \"https://h:1\"\n",
            TARGET.split("[target]").next().unwrap()
        ))
        .target
        .unwrap();
        assert_eq!(base.ws_url.as_deref(), Some("wss://h:1/{topic}/logs/ws"));
        // The query cursor needs {after} in poll_url, and nowhere else takes it.
        let q = ok(&format!(
            "{TARGET}poll_url = \"http://h/{{topic}}?since={{after}}\"\npoll_cursor = \"query\"\n"
        ))
        .target
        .unwrap();
        assert_eq!(q.poll_cursor, PollCursor::Query);
        assert_diag(
            &err(&with("poll_cursor = \"query\"\n")),
            11,
            12,
            &["needs an `{after}` placeholder"],
        );
        assert_diag(
            &err(&format!(
                "{TARGET}poll_url = \"http://h/{{topic}}/{{after}}\"\n"
            )),
            11,
            12,
            &["only `poll_url` with `poll_cursor = \"query\"`"],
        );
        assert_diag(
            &err(&with("poll_cursor = \"cookie\"\n")),
            12,
            15,
            &["`target.poll_cursor` must be"],
        );
        assert_diag(
            &err(&with("server_pid = 0\n")),
            12,
            14,
            &["`target.server_pid` must be a process id above 0"],
        );
        assert_diag(
            &err(&with("server_process = \"a/b\"\n")),
            12,
            18,
            &["`target.server_process` must be a process name"],
        );
        assert_diag(
            &err(&with("server_pid = 4\nserver_process = \"nginx\"\n")),
            13,
            18,
            &["not both"],
        );
    }
}
