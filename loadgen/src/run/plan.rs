//! What a scenario means for one transport's run, before anything starts: the server's
//! arguments, the topics, which client reads which, and when each phase begins.

use std::time::Duration;

use pushbench_protocol::{generated, TopicId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::clients::h2::{group_of, H2Place};
use crate::clients::socket::ReadLimit;
use crate::clients::ClientSpec;
use crate::endpoint::Endpoint;
use crate::scenario::{Scenario, TopicChoice, Transport};
use crate::tls::TlsTarget;
use crate::wire::SourceAddrs;

/// The gap between the ramp-up and the load generator's publisher: after the last client's
/// start (time for it to connect), or, with `publish_first`, before the first client's (time
/// for every topic's first line to arrive).
pub const PUBLISH_LEAD: Duration = Duration::from_millis(250);
/// From planning to the first client's start: time to start the worker threads.
pub const START_DELAY: Duration = Duration::from_millis(100);

/// The feed-server arguments a scenario implies for one transport.
pub fn server_args(sc: &Scenario, transport: Transport) -> Vec<String> {
    let feed = &sc.feed;
    let mut args = vec![
        "--transport".into(),
        transport.served_by().as_str().into(),
        "--workers".into(),
        sc.server.workers.to_string(),
        "--history".into(),
        feed.history.to_string(),
        "--max-connections".into(),
        sc.server.max_connections.to_string(),
        "--sse-keep-alive".into(),
        format!("{}ms", sc.sse.keep_alive.as_millis()),
        "--ws-ping".into(),
        format!("{}ms", sc.ws.ping_interval.as_millis()),
        "--gen-topics".into(),
        feed.topics.to_string(),
        "--gen-rate".into(),
        feed.lines_per_sec.to_string(),
        "--gen-line-bytes".into(),
        format!("{}..{}", feed.line_bytes.min, feed.line_bytes.max),
    ];
    // The HTTP/2 transports over TLS: a certificate for localhost made at start-up (the
    // clients accept it), on the same port as cleartext.
    if transport.http2() && sc.http2.tls {
        args.push("--tls-self-signed".into());
    }
    // `drop` faults go through the admin routes.
    if sc
        .faults
        .iter()
        .any(|f| matches!(f.kind, crate::scenario::FaultKind::Drop))
    {
        args.extend([
            "--admin-token".into(),
            super::faults::FAULT_ADMIN_TOKEN.into(),
        ]);
    }
    if let Some(b) = &feed.burst {
        args.extend([
            "--gen-burst-every".into(),
            format!("{}ms", b.every.as_millis()),
            "--gen-burst-lines".into(),
            b.lines.to_string(),
            "--gen-burst-rate".into(),
            b.lines_per_sec.to_string(),
        ]);
    }
    args
}

/// The topics the server's generator writes (`server_args` leaves its names at their
/// defaults), named by the same function the generator names them with.
pub fn generated_topics(sc: &Scenario) -> Vec<TopicId> {
    generated::default_topics(sc.feed.topics)
}

/// `acme/app/builds/{build}/steps/1..=N`: the generator's naming, for another build.
pub fn topics_of_build(sc: &Scenario, build: &str) -> Vec<TopicId> {
    generated::topics_of_build(build, sc.feed.topics).expect("generated topic names are valid")
}

/// Topic index of each client: uniform (round-robin) or zipf (a few popular steps).
pub fn assign_topics(choice: &TopicChoice, clients: u32, topics: u32, seed: u64) -> Vec<u32> {
    match choice {
        TopicChoice::Uniform => (0..clients).map(|i| i % topics).collect(),
        TopicChoice::Zipf(s) => {
            let weights: Vec<f64> = (1..=topics).map(|k| 1.0 / (k as f64).powf(*s)).collect();
            let total: f64 = weights.iter().sum();
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..clients)
                .map(|_| {
                    let mut x = rng.random_range(0.0..total);
                    for (i, w) in weights.iter().enumerate() {
                        if x < *w {
                            return i as u32;
                        }
                        x -= w;
                    }
                    topics - 1
                })
                .collect()
        }
    }
}

/// Every client of a run: which topic it reads (seeded, so runs are repeatable), where it
/// connects, from which source address, and when it starts (`start_of(i)`).
pub fn client_specs(
    sc: &Scenario,
    transport: Transport,
    endpoint: &Endpoint,
    topics: &[TopicId],
    tls: Option<TlsTarget>,
    start_of: impl Fn(u32) -> tokio::time::Instant,
    read_limit_of: impl Fn(u32) -> Option<ReadLimit>,
) -> Vec<ClientSpec> {
    let clients = sc.clients.count;
    let assignment = assign_topics(&sc.clients.topics, clients, sc.feed.topics, 7);
    let sources = SourceAddrs::for_clients(clients, &endpoint.addr);
    let target = sc.target.as_ref();
    (0..clients)
        .map(|i| {
            let topic = &topics[assignment[i as usize] as usize];
            ClientSpec {
                id: i,
                transport,
                server: endpoint.addr,
                host: endpoint.host.clone(),
                tls: tls.clone(),
                path: endpoint.path(topic),
                source: sources.for_client(i),
                topic: topic.clone(),
                start_at: start_of(i),
                churn: sc.churn.as_ref().map(|c| (c.session, c.pause)),
                // The load generator's publisher stamps each line with a pb:SEQ:TS marker.
                marker_stamps: target.is_some_and(|t| t.publish_url.is_some()),
                poll_cursor: target.map(|t| t.poll_cursor).unwrap_or_default(),
                poll_interval: sc.poll.interval,
                long_poll_wait: sc.poll.wait,
                poll_limit: sc.poll.limit,
                read_limit: read_limit_of(i),
                h2: transport.http2().then(|| H2Place {
                    group: group_of(i, sc.http2.streams_per_connection),
                }),
            }
        })
        .collect()
}

/// When each phase of a run begins, as offsets from the moment the run was planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// The first client's start.
    pub clients_from: Duration,
    /// Clients start evenly over this long.
    pub ramp_up: Duration,
    /// The load generator's publisher's first line (external targets with `publish_url`).
    pub publish_from: Duration,
    /// Lines scheduled from here on are measured (warm-up ends).
    pub measure_start: Duration,
    pub measure_end: Duration,
}

impl Timeline {
    pub fn of(sc: &Scenario) -> Self {
        let ramp_up = sc.clients.ramp_up;
        // Many servers (nchan, most SSE handlers) stream only what is published after a
        // viewer connects, so by default publishing starts once the ramp-up has started
        // every client: a line published before would read as lost. Servers that replay a
        // step's history but refuse viewers of a step without lines (feed-server: 404) want
        // the opposite order, `publish_first`: lines first, clients PUBLISH_LEAD later.
        let publish_first = sc.target.as_ref().is_some_and(|t| t.publish_first);
        let (publish_delay, clients_delay) = match publish_first {
            true => (Duration::ZERO, PUBLISH_LEAD),
            false => (ramp_up + PUBLISH_LEAD, Duration::ZERO),
        };
        let measure_start = START_DELAY + clients_delay + ramp_up + sc.warmup;
        Timeline {
            clients_from: START_DELAY + clients_delay,
            ramp_up,
            publish_from: START_DELAY + publish_delay,
            measure_start,
            measure_end: measure_start + sc.duration,
        }
    }

    /// When client `i` of `n` starts.
    pub fn client_start(&self, i: u32, n: u32) -> Duration {
        self.clients_from + self.ramp_up.mul_f64(i as f64 / n.max(1) as f64)
    }

    /// The publisher's last line is due 100 ms before the measured phase ends (so it
    /// arrives inside it); this is how long after its first line.
    pub fn publish_for(&self) -> Duration {
        self.measure_end
            .saturating_sub(Duration::from_millis(100) + self.publish_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(target: &str) -> Scenario {
        crate::scenario::parse(
            &format!(
                "name = \"t\"\ntransports = [\"sse\"]\nduration = \"10s\"\nwarmup = \"1s\"\n\
                 [clients]\ncount = 10\nramp_up = \"2s\"\n\
                 [feed]\ntopics = 1\nlines_per_sec = 1.0\nline_bytes = 80\n{target}"
            ),
            "test",
        )
        .expect("valid scenario")
    }

    #[test]
    fn publishing_follows_the_ramp_up_unless_the_target_wants_lines_first() {
        let ms = Duration::from_millis;
        let t = Timeline::of(&scenario(""));
        assert_eq!((t.clients_from, t.ramp_up), (ms(100), ms(2000)));
        assert_eq!(t.client_start(5, 10), ms(1100));
        assert_eq!((t.measure_start, t.measure_end), (ms(3100), ms(13100)));
        let after = Timeline::of(&scenario(
            "[target]\nbase_url = \"http://127.0.0.1:1\"\npublish_url = \"http://127.0.0.1:1/{topic}\"",
        ));
        assert_eq!(after.publish_from, ms(100 + 2000 + 250));
        assert_eq!(after.clients_from, ms(100));
        // The last line is due 100 ms before the measured phase ends.
        assert_eq!(after.publish_from + after.publish_for(), ms(13000));
        let first = Timeline::of(&scenario(
            "[target]\nbase_url = \"http://127.0.0.1:1\"\npublish_url = \"http://127.0.0.1:1/{topic}\"\npublish_first = true",
        ));
        assert_eq!((first.publish_from, first.clients_from), (ms(100), ms(350)));
        assert_eq!(first.measure_start, ms(350 + 2000 + 1000));
        assert_eq!(
            first.publish_from + first.publish_for(),
            first.measure_end - ms(100)
        );
    }

    #[test]
    fn http2_tls_starts_the_server_with_a_self_signed_certificate() {
        let mut sc = scenario("");
        assert!(!server_args(&sc, Transport::SseH2).contains(&"--tls-self-signed".into()));
        sc.http2.tls = true;
        let args = server_args(&sc, Transport::SseH2);
        assert!(args.contains(&"--tls-self-signed".into()));
        assert_eq!(args[1], "sse", "served by the SSE transport");
        assert!(!server_args(&sc, Transport::Sse).contains(&"--tls-self-signed".into()));
    }

    #[test]
    fn zipf_assignment_favours_the_first_topics_and_is_repeatable() {
        let a = assign_topics(&TopicChoice::Zipf(1.0), 1000, 50, 7);
        assert_eq!(a, assign_topics(&TopicChoice::Zipf(1.0), 1000, 50, 7));
        let first = a.iter().filter(|&&t| t == 0).count();
        let last = a.iter().filter(|&&t| t == 49).count();
        assert!(first > 100 && last < 20, "first {first}, last {last}");
        assert!(a.iter().all(|&t| t < 50));
        let u = assign_topics(&TopicChoice::Uniform, 7, 3, 7);
        assert_eq!(u, vec![0, 1, 2, 0, 1, 2, 0]);
    }
}
