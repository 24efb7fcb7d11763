//! The `[[faults]]` list: each entry's kind and its own keys, and the rules between faults
//! and the rest of the file (inside the measured phase, one at a time, what an external
//! target allows).

use std::time::Duration;

use toml::Spanned;

use super::check::{Check, Least};
use crate::scenario::deployment::{Backend, Balancer, Deployment};
use crate::scenario::faults::{Fault, FaultKind, Injector};
use crate::scenario::raw::{RawFault, S};

/// Keys every fault takes; the others belong to one kind each.
const COMMON_KEYS: &str = "kind, at, duration (for the kinds that last), fraction";

pub(super) fn resolve_faults(
    c: &mut Check,
    raw: &S<Vec<Spanned<RawFault>>>,
    measured: Duration,
    external_target: bool,
    deployment: &Deployment,
) -> Vec<Fault> {
    let Some(list) = raw else {
        return Vec::new();
    };
    let mut faults: Vec<(Fault, std::ops::Range<usize>)> = Vec::new();
    for (i, entry) in list.get_ref().iter().enumerate() {
        let at = entry.span();
        let f = entry.get_ref();
        let key = |k: &str| format!("faults[{i}].{k}");
        let Some(kind_name) = c.required(&f.kind, &at, &key("kind"), "what goes wrong") else {
            continue;
        };
        let Some(kind) = resolve_kind(c, f, kind_name, &key) else {
            continue;
        };
        let start = c.required(
            &f.at,
            &at,
            &key("at"),
            "when, after the measured phase starts",
        );
        let start = c.duration(start, &key("at"), Duration::ZERO, Least::Zero);
        let duration = match (kind.lasts(), &f.duration) {
            (true, d) => {
                let d = c.required(d, &at, &key("duration"), "how long it lasts");
                c.duration(d, &key("duration"), Duration::from_secs(1), Least::Positive)
            }
            // Their `duration` is the time down, read with the kind.
            (false, Some(_))
                if matches!(
                    kind,
                    FaultKind::KillInstance { .. } | FaultKind::RedisRestart { .. }
                ) =>
            {
                Duration::ZERO
            }
            (false, Some(d)) => {
                c.err(
                    d.span(),
                    format!(
                        "`{}`: a `{kind}` fault happens once, at `at`; it has no duration",
                        key("duration")
                    ),
                );
                Duration::ZERO
            }
            (false, None) => Duration::ZERO,
        };
        let fraction = match &f.fraction {
            None => 1.0,
            Some(v) => {
                let x = *v.get_ref();
                if !(x > 0.0 && x <= 1.0) {
                    c.err(
                        v.span(),
                        format!(
                            "`{}` must be above 0 and at most 1 (the share of clients hit), got {x}",
                            key("fraction")
                        ),
                    );
                    1.0
                } else if matches!(kind, FaultKind::Restart { .. }) && x < 1.0 {
                    c.err(
                        v.span(),
                        format!(
                            "`{}`: a restart hits every client (there is one server); leave \
                             `fraction` out",
                            key("fraction")
                        ),
                    );
                    1.0
                } else if matches!(
                    kind,
                    FaultKind::KillInstance { .. }
                        | FaultKind::RollingRestart { .. }
                        | FaultKind::RedisRestart { .. }
                ) && x < 1.0
                {
                    c.err(
                        v.span(),
                        format!(
                            "`{}`: a `{kind}` hits whole processes, not a share of the clients; \
                             leave `fraction` out",
                            key("fraction")
                        ),
                    );
                    1.0
                } else {
                    x
                }
            }
        };
        if external_target && matches!(kind.injector(), Injector::Server | Injector::Orchestrator) {
            c.err(
                kind_name.span(),
                format!(
                    "`{}` = \"{kind}\" needs the feed-server pushbench starts (its admin route or \
                     its process); against an external [target] use the proxy's faults \
                     (reset, idle_cut, latency, bandwidth, blackhole, cut_mid_event) or \
                     slow_consumers",
                    key("kind")
                ),
            );
        }
        if !external_target {
            check_deployment(c, &kind, deployment, kind_name, f, &key);
        }
        let fault = Fault {
            kind,
            at: start,
            duration,
            fraction,
        };
        if fault.end() > measured {
            c.err(
                at.clone(),
                format!(
                    "fault {i} ({}) ends {} into the measured phase, after its end ({}): \
                     lengthen `duration` or move it earlier",
                    fault.kind,
                    humantime::format_duration(fault.end()),
                    humantime::format_duration(measured)
                ),
            );
        }
        faults.push((fault, at));
    }
    // One at a time, in order: each fault's reconnects and losses are its own.
    for pair in faults.windows(2) {
        let ((before, _), (next, span)) = (&pair[0], &pair[1]);
        let tail = restart_tail(before, deployment);
        if next.at < before.end() + Duration::from_millis(1).max(tail) {
            c.err(
                span.clone(),
                format!(
                    "this fault ({}) starts at {}, before the previous one ({}) is over at {}: \
                     faults run one at a time, in the order listed",
                    next.kind,
                    humantime::format_duration(next.at),
                    before.kind,
                    humantime::format_duration(before.end() + tail)
                ),
            );
        }
    }
    faults.into_iter().map(|(f, _)| f).collect()
}

/// A restart is over once the server is back: `down` after `at` (a rolling restart: at
/// least `pause` per instance).
fn restart_tail(f: &Fault, deployment: &Deployment) -> Duration {
    f.kind.planned_outage(deployment.instances)
}

/// The deployment kinds need the processes they act on; `restart` with Redis restarts every
/// serving instance at once, without Redis the one feed-server.
fn check_deployment(
    c: &mut Check,
    kind: &FaultKind,
    d: &Deployment,
    kind_name: &Spanned<String>,
    f: &RawFault,
    key: &dyn Fn(&str) -> String,
) {
    let at = kind_name.span();
    match *kind {
        FaultKind::KillInstance { instance, .. } => {
            if d.balancer != Balancer::Nginx || d.instances < 2 {
                c.err(
                    at.clone(),
                    format!(
                        "`{}` = \"kill_instance\" needs [deployment] instances >= 2 behind \
                         balancer = \"nginx\" (and backend = \"redis\"), so its clients have \
                         another instance to go to; this file has {} instance(s), balancer \
                         \"{}\"",
                        key("kind"),
                        d.instances,
                        d.balancer.name()
                    ),
                );
            } else if instance >= d.instances {
                let span = f.instance.as_ref().map_or(at.clone(), |i| i.span());
                c.err(
                    span,
                    format!(
                        "`{}` = {instance} is not an instance: there are {} (0..={})",
                        key("instance"),
                        d.instances,
                        d.instances - 1
                    ),
                );
            }
        }
        FaultKind::RollingRestart { .. } if d.balancer != Balancer::Nginx || d.instances < 2 => {
            c.err(
                at,
                format!(
                    "`{}` = \"rolling_restart\" needs [deployment] instances >= 2 behind \
                         balancer = \"nginx\" (and backend = \"redis\"): with one instance \
                         it is a restart; this file has {} instance(s), balancer \"{}\"",
                    key("kind"),
                    d.instances,
                    d.balancer.name()
                ),
            );
        }
        FaultKind::RedisRestart { .. } if d.backend != Backend::Redis => {
            c.err(
                at,
                format!(
                    "`{}` = \"redis_restart\" needs [deployment] backend = \"redis\"",
                    key("kind")
                ),
            );
        }
        _ => {}
    }
}

fn resolve_kind(
    c: &mut Check,
    f: &RawFault,
    kind: &Spanned<String>,
    key: &dyn Fn(&str) -> String,
) -> Option<FaultKind> {
    let name = kind.get_ref().as_str();
    // The kind-specific keys, and which kinds take each.
    let own: [(&str, bool, &[&str]); 7] = [
        ("after", f.after.is_some(), &["idle_cut"]),
        ("delay", f.delay.is_some(), &["latency"]),
        ("jitter", f.jitter.is_some(), &["latency"]),
        (
            "bytes_per_sec",
            f.bytes_per_sec.is_some(),
            &["bandwidth", "slow_consumers"],
        ),
        ("down", f.down.is_some(), &["restart"]),
        ("instance", f.instance.is_some(), &["kill_instance"]),
        ("pause", f.pause.is_some(), &["rolling_restart"]),
    ];
    if !FaultKind::NAMES.contains(&name) {
        c.err(
            kind.span(),
            format!(
                "unknown fault kind `{name}`, expected one of {}",
                FaultKind::NAMES.map(|n| format!("`{n}`")).join(", ")
            ),
        );
        return None;
    }
    for (k, present, kinds) in own {
        if present && !kinds.contains(&name) {
            let span = match k {
                "after" => f.after.as_ref().map(|v| v.span()),
                "delay" => f.delay.as_ref().map(|v| v.span()),
                "jitter" => f.jitter.as_ref().map(|v| v.span()),
                "bytes_per_sec" => f.bytes_per_sec.as_ref().map(|v| v.span()),
                "instance" => f.instance.as_ref().map(|v| v.span()),
                "pause" => f.pause.as_ref().map(|v| v.span()),
                _ => f.down.as_ref().map(|v| v.span()),
            };
            c.err(
                span.unwrap_or_else(|| kind.span()),
                format!(
                    "`{}` belongs to {} faults, not `{name}` (every fault takes {COMMON_KEYS})",
                    key(k),
                    kinds.join(" and ")
                ),
            );
        }
    }
    let at = kind.span();
    let bytes_per_sec = |c: &mut Check| -> u64 {
        match c.required(
            &f.bytes_per_sec,
            &at,
            &key("bytes_per_sec"),
            "the rate limit",
        ) {
            None => 1,
            Some(v) if *v.get_ref() >= 1 => v.get_ref().unsigned_abs(),
            Some(v) => {
                c.err(
                    v.span(),
                    format!(
                        "`{}` must be at least 1, got {}",
                        key("bytes_per_sec"),
                        v.get_ref()
                    ),
                );
                1
            }
        }
    };
    Some(match name {
        "drop" => FaultKind::Drop,
        "reset" => FaultKind::Reset,
        "blackhole" => FaultKind::Blackhole,
        "cut_mid_event" => FaultKind::CutMidEvent,
        "idle_cut" => {
            let after = c.required(
                &f.after,
                &at,
                &key("after"),
                "the idle timeout, e.g. \"60s\"",
            );
            FaultKind::IdleCut {
                after: c.duration(
                    after,
                    &key("after"),
                    Duration::from_secs(60),
                    Least::Positive,
                ),
            }
        }
        "latency" => {
            let delay = c.required(
                &f.delay,
                &at,
                &key("delay"),
                "the added delay, e.g. \"50ms\"",
            );
            FaultKind::Latency {
                delay: c.duration(delay, &key("delay"), Duration::ZERO, Least::Zero),
                jitter: c.duration(
                    f.jitter.as_ref(),
                    &key("jitter"),
                    Duration::ZERO,
                    Least::Zero,
                ),
            }
        }
        "bandwidth" => FaultKind::Bandwidth {
            bytes_per_sec: bytes_per_sec(c),
        },
        "slow_consumers" => FaultKind::SlowConsumers {
            bytes_per_sec: bytes_per_sec(c),
        },
        "restart" => {
            let down = c.duration(
                f.down.as_ref(),
                &key("down"),
                Duration::from_secs(1),
                Least::Zero,
            );
            FaultKind::Restart { down }
        }
        "kill_instance" => {
            let instance = match &f.instance {
                None => 0,
                Some(v) => match u32::try_from(*v.get_ref()) {
                    Ok(n) => n,
                    Err(_) => {
                        c.err(
                            v.span(),
                            format!(
                                "`{}` must be an instance index (0, 1, ...), got {}",
                                key("instance"),
                                v.get_ref()
                            ),
                        );
                        0
                    }
                },
            };
            let down = f.duration.as_ref().map(|d| {
                c.duration(
                    Some(d),
                    &key("duration"),
                    Duration::from_secs(1),
                    Least::Zero,
                )
            });
            FaultKind::KillInstance { instance, down }
        }
        "rolling_restart" => FaultKind::RollingRestart {
            pause: c.duration(
                f.pause.as_ref(),
                &key("pause"),
                Duration::from_secs(1),
                Least::Zero,
            ),
        },
        "redis_restart" => FaultKind::RedisRestart {
            down: c.duration(
                f.duration.as_ref(),
                &key("duration"),
                Duration::from_secs(1),
                Least::Zero,
            ),
        },
        _ => unreachable!("checked against NAMES above"),
    })
}

#[cfg(test)]
mod tests {
    use crate::scenario::faults::FaultKind;
    use crate::scenario::test_util::*;
    use std::time::Duration;

    /// MINIMAL with a 5 s measured phase (line numbers unchanged).
    fn five_seconds() -> String {
        MINIMAL.replace("duration = \"1s\"", "duration = \"5s\"")
    }

    #[test]
    fn a_fault_list_resolves_in_order() {
        let base = five_seconds();
        let sc = ok(&format!(
            "{base}[[faults]]\nkind = \"idle_cut\"\nat = \"1s\"\nduration = \"2s\"\nafter = \"500ms\"\n\
             [[faults]]\nkind = \"restart\"\nat = \"4s\"\ndown = \"300ms\"\n"
        ));
        assert_eq!(sc.faults.len(), 2);
        assert_eq!(
            sc.faults[0].kind,
            FaultKind::IdleCut {
                after: Duration::from_millis(500)
            }
        );
        assert_eq!(sc.faults[0].end(), Duration::from_secs(3));
        assert_eq!(sc.faults[1].fraction, 1.0);
    }

    #[test]
    fn fault_problems_name_the_key_and_place() {
        let base = five_seconds();
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"flood\"\nat = \"1s\"\n"
        ));
        assert_diag(&msg, 10, 8, &["unknown fault kind `flood`", "`idle_cut`"]);
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"drop\"\nat = \"1s\"\nafter = \"1s\"\n"
        ));
        assert_diag(
            &msg,
            12,
            9,
            &["`faults[0].after` belongs to idle_cut faults"],
        );
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"latency\"\nat = \"1s\"\nduration = \"1s\"\nfraction = 0\ndelay = \"1ms\"\n"
        ));
        assert_diag(&msg, 13, 12, &["`faults[0].fraction` must be above 0"]);
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"blackhole\"\nat = \"1s\"\n"
        ));
        assert_diag(&msg, 9, 1, &["missing `faults[0].duration`"]);
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"drop\"\nat = \"1s\"\nduration = \"2s\"\n"
        ));
        assert_diag(&msg, 12, 12, &["happens once", "no duration"]);
    }

    /// `five_seconds()` with Redis and two instances behind nginx (lines 9-13).
    fn cluster() -> String {
        format!(
            "{}[deployment]\nbackend = \"redis\"\ninstances = 2\nbalancer = \"nginx\"\n",
            five_seconds()
        )
    }

    #[test]
    fn deployment_faults_resolve() {
        let sc = ok(&format!(
            "{}[[faults]]\nkind = \"kill_instance\"\nat = \"1s\"\ninstance = 1\nduration = \"500ms\"\n\
             [[faults]]\nkind = \"rolling_restart\"\nat = \"2s\"\npause = \"200ms\"\n\
             [[faults]]\nkind = \"redis_restart\"\nat = \"4s\"\n",
            cluster()
        ));
        assert_eq!(
            sc.faults[0].kind,
            FaultKind::KillInstance {
                instance: 1,
                down: Some(Duration::from_millis(500))
            }
        );
        assert_eq!(sc.faults[0].duration, Duration::ZERO);
        assert_eq!(
            sc.faults[1].kind,
            FaultKind::RollingRestart {
                pause: Duration::from_millis(200)
            }
        );
        assert_eq!(
            sc.faults[2].kind,
            FaultKind::RedisRestart {
                down: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn deployment_faults_need_their_processes() {
        let base = five_seconds();
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"kill_instance\"\nat = \"1s\"\n"
        ));
        assert_diag(
            &msg,
            10,
            8,
            &["needs [deployment] instances >= 2", "1 instance(s)"],
        );
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"redis_restart\"\nat = \"1s\"\n"
        ));
        assert_diag(&msg, 10, 8, &["needs [deployment] backend = \"redis\""]);
        let msg = err(&format!(
            "{}[[faults]]\nkind = \"kill_instance\"\nat = \"1s\"\ninstance = 2\n",
            cluster()
        ));
        assert_diag(
            &msg,
            16,
            12,
            &["`faults[0].instance` = 2 is not an instance"],
        );
        let msg = err(&format!(
            "{}[[faults]]\nkind = \"rolling_restart\"\nat = \"1s\"\nfraction = 0.5\n",
            cluster()
        ));
        assert_diag(&msg, 16, 12, &["hits whole processes"]);
        let msg = err(&format!(
            "{}[[faults]]\nkind = \"drop\"\nat = \"1s\"\npause = \"1s\"\n",
            cluster()
        ));
        assert_diag(
            &msg,
            16,
            9,
            &["`faults[0].pause` belongs to rolling_restart faults"],
        );
    }

    #[test]
    fn faults_run_one_at_a_time_inside_the_measured_phase() {
        let base = five_seconds();
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"blackhole\"\nat = \"1s\"\nduration = \"3s\"\n\
             [[faults]]\nkind = \"drop\"\nat = \"2s\"\n"
        ));
        assert_diag(
            &msg,
            13,
            1,
            &["before the previous one (blackhole) is over at 4s"],
        );
        let msg = err(&format!(
            "{base}[[faults]]\nkind = \"blackhole\"\nat = \"4s\"\nduration = \"3s\"\n"
        ));
        assert_diag(
            &msg,
            9,
            1,
            &["ends 7s into the measured phase, after its end (5s)"],
        );
    }
}
