//! Resolution: checks every value and rule, collecting all problems.
//!
//! The top-level keys and the small sections are resolved here; `[clients]`, `[feed]` and
//! `[target]` have modules of their own, and `check` holds the collector of problems.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Diag;
use super::raw::{RawScenario, S};
use super::{
    Churn, FaultKind, Http2, Poll, PollCursor, Scenario, Server, Sse, Transport, Ws,
    MAX_LONG_POLL_WAIT, MAX_POLL_LIMIT, MAX_REPEAT, MAX_STREAMS_PER_CONNECTION, MAX_WORKERS,
};
use check::Least;
use clients::resolve_clients;
use deployment::resolve_deployment;
use faults::resolve_faults;
use feed::resolve_feed;
use target::resolve_target;
pub use target::{feed_server_target, TargetUrlError};

pub(crate) use check::Check;

mod check;
mod clients;
mod deployment;
mod faults;
mod feed;
mod target;

/// Splits an optional section into its header span and contents (empty when absent).
fn section<T: Default + Clone>(value: &S<T>) -> (Range<usize>, T) {
    match value {
        Some(s) => (s.span(), s.get_ref().clone()),
        None => (0..0, T::default()),
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `` `sse`, `ws`, … `` for messages: every transport name a scenario may list.
fn transport_names() -> String {
    Transport::ALL
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a raw scenario and turns it into a [`Scenario`] (without source and sweep variants).
pub(super) fn resolve(raw: &RawScenario, default_name: &str) -> Result<Scenario, Vec<Diag>> {
    let mut c = Check::default();
    let top = 0..0;

    let name = match &raw.name {
        Some(n) => {
            if !is_valid_name(n.get_ref()) {
                c.err(
                    n.span(),
                    format!(
                        "`name` must match [a-z0-9_-]+ (it names the results folder), got {:?}",
                        n.get_ref()
                    ),
                );
            }
            n.get_ref().clone()
        }
        None => {
            if !is_valid_name(default_name) {
                c.err(
                    top.clone(),
                    format!(
                        "the scenario name defaults to the file stem {default_name:?}, which does not \
                         match [a-z0-9_-]+; set `name` or rename the file"
                    ),
                );
            }
            default_name.to_string()
        }
    };
    let description = raw.description.as_ref().map(|d| d.get_ref().clone());

    let mut transports = Vec::new();
    if let Some(list) = c.required(
        &raw.transports,
        &top,
        "transports",
        "the transports to compare",
    ) {
        if list.get_ref().is_empty() {
            c.err(
                list.span(),
                format!(
                    "`transports` must list at least one of {}",
                    transport_names()
                ),
            );
        }
        for t in list.get_ref() {
            match Transport::from_name(t.get_ref()) {
                None => c.err(
                    t.span(),
                    format!(
                        "unknown transport `{}`, expected one of {}",
                        t.get_ref(),
                        transport_names()
                    ),
                ),
                Some(tr) if transports.contains(&tr) => c.err(
                    t.span(),
                    format!("transport `{tr}` is listed twice in `transports`"),
                ),
                Some(tr) => transports.push(tr),
            }
        }
    }

    let duration = c.required(
        &raw.duration,
        &top,
        "duration",
        "the measured phase per transport, e.g. \"10s\"",
    );
    let duration = c.duration(
        duration,
        "duration",
        Duration::from_secs(1),
        Least::Positive,
    );
    let warmup = c.duration(raw.warmup.as_ref(), "warmup", Duration::ZERO, Least::Zero);
    let repeat = c.integer(raw.repeat.as_ref(), "repeat", 1, 1..=MAX_REPEAT);
    let drain = c.duration(
        raw.drain.as_ref(),
        "drain",
        Duration::from_secs(5),
        Least::Positive,
    );

    let clients = resolve_clients(&mut c, &raw.clients);
    let feed = resolve_feed(&mut c, &raw.feed);

    let (_, p) = section(&raw.poll);
    let poll = Poll {
        interval: c.duration(
            p.interval.as_ref(),
            "poll.interval",
            Duration::from_secs(1),
            // Zero: closed loop, each poll sent as soon as the previous answer is read.
            Least::Zero,
        ),
        wait: c.duration(
            p.wait.as_ref(),
            "poll.wait",
            Duration::from_secs(30),
            Least::Positive,
        ),
        limit: c.integer(p.limit.as_ref(), "poll.limit", 1000, 1..=MAX_POLL_LIMIT),
    };
    if let Some(w) = &p.wait {
        if poll.wait > MAX_LONG_POLL_WAIT {
            c.err(
                w.span(),
                format!(
                    "`poll.wait` must be at most {} (the server's longest long-poll wait)",
                    humantime::format_duration(MAX_LONG_POLL_WAIT)
                ),
            );
        }
    }

    let (_, s) = section(&raw.sse);
    let sse = Sse {
        keep_alive: c.duration(
            s.keep_alive.as_ref(),
            "sse.keep_alive",
            Duration::from_secs(15),
            Least::Positive,
        ),
    };

    let (_, w) = section(&raw.ws);
    let ws = Ws {
        ping_interval: c.duration(
            w.ping_interval.as_ref(),
            "ws.ping_interval",
            Duration::from_secs(30),
            Least::Positive,
        ),
    };

    let (_, h) = section(&raw.http2);
    let http2 = Http2 {
        streams_per_connection: c.integer(
            h.streams_per_connection.as_ref(),
            "http2.streams_per_connection",
            Http2::default().streams_per_connection,
            1..=MAX_STREAMS_PER_CONNECTION,
        ),
        tls: h.tls.as_ref().is_some_and(|t| *t.get_ref()),
    };
    if let (Some(tls), true) = (&h.tls, raw.target.is_some()) {
        c.err(
            tls.span(),
            "`http2.tls` starts the spawned feed-server with TLS; an external target says TLS \
             with an https:// URL (http:// is cleartext h2c)",
        );
    }

    let churn = raw.churn.as_ref().map(|ch| {
        let at = ch.span();
        let ch = ch.get_ref();
        let session = c.required(&ch.session, &at, "churn.session", "mean connected time");
        let session = c.duration(
            session,
            "churn.session",
            Duration::from_secs(10),
            Least::Positive,
        );
        let pause = c.required(
            &ch.pause,
            &at,
            "churn.pause",
            "time away before reconnecting",
        );
        let pause = c.duration(pause, "churn.pause", Duration::ZERO, Least::Zero);
        Churn { session, pause }
    });

    let (server_at, sv) = section(&raw.server);
    let server = Server {
        binary: sv.binary.as_ref().map(|b| {
            if b.get_ref().is_empty() {
                c.err(
                    b.span(),
                    "`server.binary` must not be empty; leave it out for the default",
                );
            }
            PathBuf::from(b.get_ref())
        }),
        workers: c.integer(sv.workers.as_ref(), "server.workers", 1, 1..=MAX_WORKERS),
        pin: sv.pin.as_ref().is_none_or(|p| *p.get_ref()),
        max_connections: match &sv.max_connections {
            None => 200_000,
            Some(m) if *m.get_ref() >= 1 => m.get_ref().unsigned_abs(),
            Some(m) => {
                c.err(
                    m.span(),
                    format!(
                        "`server.max_connections` must be at least 1, got {}",
                        m.get_ref()
                    ),
                );
                200_000
            }
        },
    };

    let target = raw
        .target
        .as_ref()
        .map(|t| resolve_target(&mut c, t, raw, &transports, feed.topics));
    if raw.target.is_some() {
        if raw.server.is_some() {
            c.err(
                server_at,
                "[server] configures the spawned feed-server and cannot be combined with [target], \
                 which measures an external target instead",
            );
        }
    } else if let Some(count) = raw
        .clients
        .as_ref()
        .and_then(|cl| cl.get_ref().count.as_ref())
    {
        if u64::from(clients.count) > server.max_connections {
            c.err(
                count.span(),
                format!(
                    "`clients.count` ({}) exceeds `server.max_connections` ({}): the server would \
                     refuse clients; raise `server.max_connections`",
                    clients.count, server.max_connections
                ),
            );
        }
    }

    let deployment = resolve_deployment(&mut c, &raw.deployment, raw.target.is_some());
    let faults = resolve_faults(
        &mut c,
        &raw.faults,
        duration,
        raw.target.is_some(),
        &deployment,
    );

    check_http2_transports(&mut c, raw, &transports, &deployment, &faults);

    if c.diags.is_empty() {
        Ok(Scenario {
            name,
            description,
            transports,
            duration,
            warmup,
            drain,
            repeat,
            clients,
            feed,
            poll,
            sse,
            ws,
            http2,
            churn,
            server,
            target,
            faults,
            deployment,
            sweep: None,
            source: String::new(),
            variants: Vec::new(),
        })
    } else {
        Err(c.diags)
    }
}

/// What the HTTP/2 transports cannot be combined with, each refused at the transport's entry
/// in `transports`: a `[deployment]` other than one feed-server (nginx proxies HTTP/1.1 to its
/// upstreams, and the cluster's instances are not started with TLS), a `slow_consumers` fault
/// (its read limit is one client's, and h2 clients share a socket), and a foreign poll API
/// (`poll-h2` speaks feed-server's).
fn check_http2_transports(
    c: &mut Check,
    raw: &RawScenario,
    transports: &[Transport],
    deployment: &super::Deployment,
    faults: &[super::Fault],
) {
    let Some(list) = &raw.transports else { return };
    let slow = faults
        .iter()
        .any(|f| matches!(f.kind, FaultKind::SlowConsumers { .. }));
    let foreign_poll = raw
        .target
        .as_ref()
        .and_then(|t| t.get_ref().poll_cursor.as_ref())
        .and_then(|v| PollCursor::from_name(v.get_ref()))
        .is_some_and(|p| p != PollCursor::FeedServer);
    for entry in list.get_ref() {
        let Some(t) = Transport::from_name(entry.get_ref()).filter(|t| t.http2()) else {
            continue;
        };
        if !transports.contains(&t) {
            continue;
        }
        if !deployment.is_default() {
            c.err(
                entry.span(),
                format!(
                    "transport `{t}` needs the single feed-server deployment: a `[deployment]`'s \
                     nginx and instances speak HTTP/1.1 to the load generator"
                ),
            );
        }
        if slow {
            c.err(
                entry.span(),
                format!(
                    "transport `{t}` cannot be combined with a `slow_consumers` fault: its read \
                     limit is per client, and HTTP/2 clients share one socket per \
                     `http2.streams_per_connection` of them"
                ),
            );
        }
        if foreign_poll && t.served_by() == pushbench_protocol::Transport::Poll {
            c.err(
                entry.span(),
                format!(
                    "transport `{t}` speaks feed-server's poll API only; `target.poll_cursor` \
                     names a foreign one (use `{}`)",
                    t.over_http1()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use crate::scenario::test_util::*;

    #[test]
    fn missing_fields_are_all_reported() {
        let msg = err("[clients]\nramp_up = \"1s\"\n");
        assert_diag(&msg, 1, 1, &["missing `transports`"]);
        assert_diag(&msg, 1, 1, &["missing `duration`"]);
        assert_diag(&msg, 1, 1, &["missing `clients.count`"]);
        assert_diag(&msg, 1, 1, &["missing `feed.topics`"]);
        assert_diag(&msg, 1, 1, &["missing `feed.lines_per_sec`"]);
        assert_diag(&msg, 1, 1, &["missing `feed.line_bytes`"]);
    }

    #[test]
    fn invalid_names() {
        let msg = err(&format!("name = \"My Run\"\n{MINIMAL}"));
        assert_diag(&msg, 1, 8, &["`name` must match [a-z0-9_-]+"]);
        let Err(e) = parse(MINIMAL, "scenarios/My Run.toml") else {
            panic!("a bad file stem without `name` must fail");
        };
        assert!(
            e.to_string()
                .starts_with("scenarios/My Run.toml:1:1: the scenario name defaults"),
            "{e}"
        );
        assert_eq!(ok(&format!("name = \"ok-1\"\n{MINIMAL}")).name, "ok-1");
    }

    #[test]
    fn duplicate_transport() {
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[\"sse\", \"ws\", \"sse\"]"));
        assert_diag(&msg, 1, 28, &["transport `sse` is listed twice"]);
    }

    #[test]
    fn unknown_transport_name() {
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[\"sse\", \"websocket\"]"));
        assert_diag(
            &msg,
            1,
            22,
            &["unknown transport `websocket`", "`long-poll`"],
        );
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[]"));
        assert_diag(&msg, 1, 14, &["`transports` must list at least one"]);
    }

    #[test]
    fn zero_poll_interval_is_the_closed_loop_probe() {
        let sc = ok(&format!("{MINIMAL}[poll]\ninterval = \"0s\"\n"));
        assert_eq!(sc.poll.interval, Duration::ZERO);
        // Still a duration: the problem names the field and its line.
        let msg = err(&format!("{MINIMAL}[poll]\ninterval = \"-1s\"\n"));
        assert_diag(
            &msg,
            10,
            12,
            &["`poll.interval`", "\"-1s\" is not a duration"],
        );
        // Long-poll's wait has no such mode.
        let msg = err(&format!("{MINIMAL}[poll]\nwait = \"0s\"\n"));
        assert_diag(&msg, 10, 8, &["`poll.wait` must be greater than zero"]);
        // A sweep may include it.
        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"poll.interval\"\nvalues = [\"0s\", \"1s\"]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs[0].0.as_deref(), Some("poll.interval=0s"));
        assert_eq!(runs[0].1.poll.interval, Duration::ZERO);
    }

    #[test]
    fn http2_section_is_checked_where_it_is_written() {
        let h2 = MINIMAL.replace("[\"sse\"]", "[\"sse-h2\", \"poll-h2\", \"long-poll-h2\"]");
        let sc = ok(&format!(
            "{h2}[http2]\nstreams_per_connection = 7\ntls = true\n"
        ));
        assert_eq!(sc.http2.streams_per_connection, 7);
        assert!(sc.http2.tls);
        let msg = err(&format!("{h2}[http2]\nstreams_per_connection = 0\n"));
        assert_diag(
            &msg,
            10,
            26,
            &["`http2.streams_per_connection` must be between 1 and 1000, got 0"],
        );
        let msg = err(&format!("{h2}[http2]\nstreams_per_connection = 1001\n"));
        assert_diag(&msg, 10, 26, &["between 1 and 1000, got 1001"]);
        let msg = err(&format!("{h2}[http2]\ntls = \"yes\"\n"));
        assert_diag(&msg, 10, 7, &["invalid type", "expected a boolean"]);
        let msg = err(&format!("{h2}[http2]\nstreams = 3\n"));
        assert_diag(&msg, 10, 1, &["unknown field `streams`"]);
        // Swept.
        let sc = ok(&format!(
            "{h2}[sweep]\nfield = \"http2.streams_per_connection\"\nvalues = [1, 50]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(
            runs[1].0.as_deref(),
            Some("http2.streams_per_connection=50")
        );
        assert_eq!(runs[1].1.http2.streams_per_connection, 50);
        let msg = err(&format!(
            "{h2}[sweep]\nfield = \"http2.streams_per_connection\"\nvalues = [1, 5000]\n"
        ));
        assert!(msg.contains("between 1 and 1000, got 5000"), "{msg}");
    }

    #[test]
    fn http2_transports_refuse_what_they_cannot_measure() {
        let h2 = MINIMAL.replace("[\"sse\"]", "[\"sse\", \"sse-h2\"]");
        let msg = err(&format!(
            "{h2}[deployment]\nbalancer = \"nginx\"\ninstances = 2\n"
        ));
        assert_diag(
            &msg,
            1,
            22,
            &["transport `sse-h2` needs the single feed-server"],
        );
        assert!(!msg.contains("transport `sse` needs"), "{msg}");
        let msg = err(&format!(
            "{h2}[[faults]]\nkind = \"slow_consumers\"\nat = \"0s\"\nduration = \"1s\"\nfraction = 0.1\nbytes_per_sec = 100\n"
        ));
        assert_diag(
            &msg,
            1,
            22,
            &["`sse-h2` cannot be combined with a `slow_consumers`"],
        );
    }

    #[test]
    fn count_above_max_connections() {
        let msg = err(&format!("{MINIMAL}[server]\nmax_connections = 5\n"));
        assert_diag(
            &msg,
            4,
            9,
            &["`clients.count` (10) exceeds `server.max_connections` (5)"],
        );
    }
}
