//! Deployments end to end: feed-server instances behind nginx, on the in-memory backend and on
//! Redis Streams, with instance faults. Every transport's clients must get every line exactly
//! once: nginx sends a killed instance's clients to another, and they resume from Redis.
//!
//! Five tests: the rendered nginx configuration passes `nginx -t`; one in-memory instance
//! behind nginx (the balancer's own path, every transport); `scenarios/cluster-smoke.toml` as
//! shipped (two instances on Redis, `kill_instance` mid-stream, then `rolling_restart`, then
//! `redis_restart`); `restart` of every instance on Redis, with nothing lost by it; Redis
//! restarted without persistence, its loss counted.
//! redis-server and nginx must be installed; a test that cannot find one fails saying so.

mod common;

use std::net::SocketAddr;

use pushbench::cluster::nginx::{nginx_binary, render, INSTALL_NGINX};
use pushbench::cluster::redis::INSTALL_REDIS;
use pushbench::results::{FaultResult, RunStatus, TransportResult};

fn require_nginx() {
    assert!(nginx_binary().is_some(), "{INSTALL_NGINX}");
}

fn require_redis() {
    let found = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{INSTALL_REDIS}");
}

use common::run_scenario_text as run;

/// Every line delivered exactly once, in order, none lost for any reason.
fn assert_exactly_once(r: &TransportResult) {
    let t = &r.transport;
    let e = &r.events;
    assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
    assert!(e.expected > 0, "{t}");
    assert_eq!(e.lost, 0, "{t}: {e:?}");
    assert_eq!(e.lost_by_restart, 0, "{t}: {e:?}");
    assert_eq!(e.lost_to_lag, 0, "{t}: {e:?}");
    assert_eq!(e.duplicated, 0, "{t}: {e:?}");
    assert_eq!(e.out_of_order, 0, "{t}: {e:?}");
    assert_eq!(e.delivered, e.expected, "{t}: {e:?}");
    for f in &r.faults {
        assert_eq!(f.duplicated, 0, "{t} {}", f.label);
        assert_eq!(f.gaps_detected, 0, "{t} {}", f.label);
        assert_eq!(f.lost_by_restart, 0, "{t} {}", f.label);
    }
}

fn fault<'a>(r: &'a TransportResult, kind: &str) -> &'a FaultResult {
    r.faults
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("{}: no {kind} fault in {:?}", r.transport, r.faults))
}

#[test]
fn the_rendered_configuration_passes_nginx_t() {
    require_nginx();
    let dir = common::temp_dir("nginx-t");
    let upstreams: Vec<SocketAddr> = vec![
        "127.0.0.1:4001".parse().unwrap(),
        "127.0.0.1:4002".parse().unwrap(),
    ];
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        render(&dir, 1, "127.0.0.1:18088".parse().unwrap(), &upstreams),
    )
    .unwrap();
    let out = std::process::Command::new(nginx_binary().unwrap())
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .output()
        .expect("run nginx -t");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "nginx -t rejected the rendered template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_instance_behind_nginx_delivers_every_line_once() {
    require_nginx();
    let text = common::shipped_scenario(
        "cluster-smoke.toml",
        &[
            ("name = \"cluster-smoke\"", "name = \"nginx-memory\""),
            ("duration = \"9s\"", "duration = \"3s\""),
            (
                "backend = \"redis\"\ninstances = 2\nbalancer = \"nginx\"",
                "balancer = \"nginx\"",
            ),
        ],
        &[("faults", None)],
    );
    let summary = run("nginx-memory", &text);
    assert_eq!(summary.runs.len(), 4);
    for r in &summary.runs {
        let t = &r.transport;
        assert_exactly_once(r);
        let d = r.deployment.as_ref().expect("deployment figures");
        assert_eq!(
            (d.backend.as_str(), d.balancer.as_str()),
            ("memory", "nginx")
        );
        for role in ["instances", "nginx"] {
            let c = d
                .roles
                .get(role)
                .unwrap_or_else(|| panic!("{t}: no {role}"));
            assert!(c.processes == 1 && c.rss_end_bytes > 0, "{t} {role}: {c:?}");
        }
        assert!(d.cpu_us_total > 0, "{t}: {d:?}");
        // Missing, with the reason: never a 0.
        assert!(!d.roles.contains_key("redis"), "{t}");
        assert!(d.missing.contains_key("redis") && d.missing.contains_key("redis_memory"));
    }
}

#[test]
fn through_nginx_a_killed_instance_loses_no_line_of_any_transport() {
    require_nginx();
    require_redis();
    let text = common::shipped_scenario("cluster-smoke.toml", &[], &[]);
    let summary = run("cluster-smoke", &text);
    assert_eq!(summary.runs.len(), 4);
    for r in &summary.runs {
        let t = &r.transport;
        assert_exactly_once(r);
        let kill = fault(r, "kill_instance");
        let rolling = fault(r, "rolling_restart");
        for f in [kill, rolling] {
            assert!(
                f.notes.iter().any(|n| n.contains("started again")),
                "{t}: the fault did not happen: {f:?}"
            );
            assert_eq!(
                f.recovery_us.count, f.sessions_broken,
                "{t}: every broken session recovered: {f:?}"
            );
        }
        // Streams held by the killed instance break and resume through nginx on the other.
        // A poll or a held long-poll is an idempotent GET that nginx itself retries on the
        // other instance (`proxy_next_upstream`): the client sees no break at all.
        if t == "sse" || t == "ws" {
            assert!(kill.reconnects > 0, "{t}: the kill hit nobody: {kill:?}");
            assert!(rolling.reconnects > 0, "{t}: {rolling:?}");
        }
        // Redis killed and started again on its AOF: no client loses or repeats a line.
        let redis = fault(r, "redis_restart");
        assert!(
            redis
                .notes
                .iter()
                .any(|n| n.contains("redis-server started again")),
            "{t}: {redis:?}"
        );
        let d = r.deployment.as_ref().expect("deployment figures");
        assert_eq!(d.roles["redis"].processes, 2, "{t}: {d:?}");
        for role in ["instances", "publisher", "redis", "nginx"] {
            assert!(d.roles.contains_key(role), "{t}: no {role} in {d:?}");
        }
        // Two instances, the killed one's successor and two rolled ones.
        assert_eq!(d.roles["instances"].processes, 5, "{t}: {d:?}");
        let m = d.redis_memory.as_ref().expect("redis memory");
        // Every line the feed wrote is held (history 10,000 is far above the run's lines):
        // at least what the 10 clients of each topic expected.
        assert_eq!(m.streams, Some(4), "{t}: one stream per topic: {m:?}");
        let held = m.lines_held.unwrap_or(0);
        assert!(held >= r.events.expected / 10, "{t}: {m:?}");
        assert!(m.bytes_per_line.is_some_and(|b| b > 0.0), "{t}: {m:?}");
    }
}

/// `restart` on Redis stops every instance at once and starts them again: the history was in
/// Redis, so every client resumes where it was, with nothing lost by the restart (on the
/// in-memory backend the same fault loses the lines due while the server was down:
/// `e2e_faults` checks that side).
#[test]
fn restarting_every_instance_on_redis_loses_nothing() {
    require_nginx();
    require_redis();
    let text = common::shipped_scenario(
        "cluster-smoke.toml",
        &[
            ("name = \"cluster-smoke\"", "name = \"cluster-restart\""),
            ("duration = \"9s\"", "duration = \"4s\""),
        ],
        &[("faults", None)],
    );
    let text = format!("{text}\n[[faults]]\nkind = \"restart\"\nat = \"1s\"\ndown = \"500ms\"\n");
    let summary = run("cluster-restart", &text);
    assert_eq!(summary.runs.len(), 4);
    for r in &summary.runs {
        let t = &r.transport;
        assert_exactly_once(r);
        let restart = fault(r, "restart");
        let d = r.deployment.as_ref().expect("deployment figures");
        // Both instances, then both again: the restart really happened.
        assert_eq!(d.roles["instances"].processes, 4, "{t}: {d:?} {restart:?}");
        if t == "sse" || t == "ws" {
            assert!(restart.sessions_broken > 0, "{t}: {restart:?}");
            assert_eq!(restart.recovery_us.count, restart.sessions_broken, "{t}");
        }
    }
}

/// Redis without persistence, killed and started again: it comes back empty. The publisher
/// continues each step's numbering (it knows its last seq), so nothing is silently renumbered:
/// streams lose nothing (their instances had read every line before the crash), and what a
/// poller had not fetched yet is counted as lost by the restart, never hidden.
#[test]
fn a_redis_restart_without_persistence_is_counted_not_hidden() {
    require_nginx();
    require_redis();
    let text = common::shipped_scenario(
        "cluster-smoke.toml",
        &[
            ("name = \"cluster-smoke\"", "name = \"cluster-nopersist\""),
            ("duration = \"9s\"", "duration = \"5s\""),
            (
                "balancer = \"nginx\"",
                "balancer = \"nginx\"\nredis_persistence = \"none\"",
            ),
        ],
        &[("faults", None)],
    );
    let text = format!(
        "{text}\n[[faults]]\nkind = \"redis_restart\"\nat = \"2s\"\nduration = \"500ms\"\n"
    );
    let summary = run("cluster-nopersist", &text);
    assert_eq!(summary.runs.len(), 4);
    for r in &summary.runs {
        let t = &r.transport;
        let e = &r.events;
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        assert_eq!(
            (e.lost, e.duplicated, e.out_of_order),
            (0, 0, 0),
            "{t}: {e:?}"
        );
        assert_eq!(e.delivered + e.lost_by_restart, e.expected, "{t}: {e:?}");
        if t == "sse" || t == "ws" {
            assert_eq!(e.lost_by_restart, 0, "{t}: {e:?}");
        }
        let f = fault(r, "redis_restart");
        assert_eq!(f.recovery_us.count, f.sessions_broken, "{t}: {f:?}");
    }
}
