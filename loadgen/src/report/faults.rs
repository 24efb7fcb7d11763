//! Reading a run's faults back: each fault's kind, the same fault across transports, the
//! keep-alive each transport had against `idle_cut`, and how its figures read when one is
//! missing.
//!
//! `summary.json` holds one [`FaultResult`] per scheduled fault and transport run, in the
//! scenario's order, so the i-th fault of every run is the same fault ([`FaultColumn`] lines
//! them up). Figures an injector could not give (`connections_hit: null`, no session
//! recovered, no server sampled) are shown as missing with the reason, never as 0.

use std::path::Path;
use std::time::Duration;

use crate::results::{FaultResult, Percentiles, Summary, TransportResult};
use crate::scenario::{self, Scenario};

use super::verdict::{fmt_sig, fmt_us};

/// A fault's kind, as `summary.json` names it (the names of scenario files). The report
/// reads some kinds differently: a restart gets its reconnect storm, slow consumers their
/// isolation, an idle cut the keep-alive that should have prevented it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Drop,
    Reset,
    IdleCut,
    Latency,
    Bandwidth,
    Blackhole,
    CutMidEvent,
    Restart,
    SlowConsumers,
    KillInstance,
    RollingRestart,
    RedisRestart,
}

impl FaultKind {
    /// The kind a result names; `None` for a name this build does not know (a newer
    /// summary's kind), which is still reported, only not read specially.
    pub fn of(fault: &FaultResult) -> Option<FaultKind> {
        Some(match fault.kind.as_str() {
            "drop" => FaultKind::Drop,
            "reset" => FaultKind::Reset,
            "idle_cut" => FaultKind::IdleCut,
            "latency" => FaultKind::Latency,
            "bandwidth" => FaultKind::Bandwidth,
            "blackhole" => FaultKind::Blackhole,
            "cut_mid_event" => FaultKind::CutMidEvent,
            "restart" => FaultKind::Restart,
            "slow_consumers" => FaultKind::SlowConsumers,
            "kill_instance" => FaultKind::KillInstance,
            "rolling_restart" => FaultKind::RollingRestart,
            "redis_restart" => FaultKind::RedisRestart,
            _ => return None,
        })
    }

    /// Whether it kills server processes and so starts a reconnect storm (the report's
    /// storm table and chart).
    pub fn storms(self) -> bool {
        matches!(
            self,
            FaultKind::Restart
                | FaultKind::KillInstance
                | FaultKind::RollingRestart
                | FaultKind::RedisRestart
        )
    }
}

/// Whether any run of the summary had faults: everything fault-related in the report, the
/// charts and the verdict appears only then, so a happy-path report stays as it was.
pub fn has_faults(summary: &Summary) -> bool {
    summary.runs.iter().any(|r| !r.faults.is_empty())
}

/// The i-th scheduled fault across runs: what each run recorded for it.
#[derive(Clone, Debug)]
pub struct FaultColumn<'a> {
    /// The fault's label (`restart(down 500ms) at 9s, 100%`), from the first run that has it.
    pub label: String,
    pub kind: Option<FaultKind>,
    /// Who injected it, as the first run recorded it.
    pub injector: String,
    /// "restart at 9s": kind and start, for places too narrow for the label.
    pub short_label: String,
    /// One per run given, in their order; `None` where a run has no i-th fault.
    pub results: Vec<(&'a TransportResult, Option<&'a FaultResult>)>,
}

impl FaultColumn<'_> {
    /// Whether it broke a session of any of the runs: then recovering is its measure.
    pub fn broke_sessions(&self) -> bool {
        self.results
            .iter()
            .any(|(_, f)| f.is_some_and(|f| f.sessions_broken > 0))
    }
}

/// The faults of `runs`, lined up by position (the scenario's order).
pub fn fault_columns<'a>(runs: &[&'a TransportResult]) -> Vec<FaultColumn<'a>> {
    let n = runs.iter().map(|r| r.faults.len()).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            let first = runs
                .iter()
                .find_map(|r| r.faults.get(i))
                .expect("some run has fault i");
            FaultColumn {
                label: first.label.clone(),
                kind: FaultKind::of(first),
                injector: first.injector.clone(),
                short_label: format!(
                    "{} at {}",
                    first.kind,
                    // Whole milliseconds, as scenario files write times.
                    hd(Duration::from_millis(
                        (first.at_s.max(0.0) * 1e3).round() as u64
                    ))
                ),
                results: runs.iter().map(|r| (*r, r.faults.get(i))).collect(),
            }
        })
        .collect()
}

/// Why a run has no recovery time for a fault; `None` when it has one.
pub fn recovery_missing(f: &FaultResult) -> Option<String> {
    if f.recovery_us.count > 0 {
        return None;
    }
    Some(if f.sessions_broken == 0 {
        "no session broken".to_string()
    } else {
        format!("none of {} broken sessions recovered", f.sessions_broken)
    })
}

/// A percentile figure in µs, or missing with `why`.
pub fn us_or(v: Option<u64>, why: &str) -> String {
    match v {
        Some(v) => fmt_us(v as f64),
        None => missing(why),
    }
}

/// How a missing figure reads in a table.
pub fn missing(why: &str) -> String {
    format!("— ({why})")
}

/// A latency's p99 when it has samples.
pub fn p99(p: &Percentiles) -> Option<u64> {
    (p.count > 0).then_some(p.p99)
}

/// "2.16 ms vs 11.7 ms calm (×0.19)": the untouched clients' p99 during a fault against the
/// calm before the first one.
pub fn bystander_vs_calm(f: &FaultResult, calm: Option<&Percentiles>) -> String {
    let by = p99(&f.bystander_latency_us);
    let calm = calm.and_then(p99);
    match (by, calm) {
        (Some(b), Some(c)) if c > 0 => format!(
            "{} vs {} calm (×{})",
            fmt_us(b as f64),
            fmt_us(c as f64),
            fmt_sig(b as f64 / c as f64)
        ),
        (Some(b), _) => format!(
            "{} vs {}",
            fmt_us(b as f64),
            missing("no calm latency before the first fault")
        ),
        (None, _) => missing("no untouched client received a line meanwhile"),
    }
}

/// The connections an injector reports it hit, or why the figure is missing.
pub fn connections_hit(f: &FaultResult) -> String {
    match f.connections_hit {
        Some(n) => n.to_string(),
        None => missing("not reported by its injector"),
    }
}

/// More connections hit than the fault's fraction of the clients allows (rounded up): the
/// figures then belong to a larger fault than the scenario asked for.
pub fn overshoot(r: &TransportResult, f: &FaultResult) -> Option<(u64, u64)> {
    let hit = f.connections_hit?;
    let allowed = (f.fraction * f64::from(r.connections.clients)).ceil() as u64;
    (r.connections.clients > 0 && hit > allowed).then_some((hit, allowed))
}

/// An SSE keep-alive is the comment `:\n\n` (3 bytes), sent in an HTTP/1.1 chunk
/// `3\r\n:\n\n\r\n`: 8 bytes on the wire.
pub const SSE_KEEP_ALIVE_WIRE_BYTES: f64 = 8.0;

/// Over HTTP/2 the same comment is one DATA frame: a 9-byte frame header and the 3 bytes.
pub const SSE_H2_KEEP_ALIVE_WIRE_BYTES: f64 = 12.0;

/// A WebSocket ping without payload is 2 bytes from the server (unmasked); the client's pong
/// is 6 (masked: 2 + a 4-byte key).
pub const WS_PING_PONG_WIRE_BYTES: f64 = 8.0;

/// What keeps one transport's idle connection from looking idle to a proxy.
#[derive(Clone, Debug, PartialEq)]
pub enum KeepAlive {
    /// SSE: a comment once `interval` passed without a line, so at most one per interval.
    WhenIdle { interval: Duration, wire_bytes: f64 },
    /// WebSocket: a ping every `interval` whatever else flows, answered by a pong; `wire_bytes`
    /// counts both.
    Ping { interval: Duration, wire_bytes: f64 },
    /// The client asks again this often (short polling): never idle longer than that.
    Polls { interval: Duration },
    /// A held long-poll is answered within this wait even when nothing happens.
    HeldFor { wait: Duration },
    /// Not known: an external target's keep-alive is its own, or the scenario was not read.
    Unknown { why: String },
}

impl KeepAlive {
    /// Bytes per connection-hour the keep-alive costs when nothing else flows (for SSE the
    /// most it costs: a line in time saves the comment).
    pub fn bytes_per_connection_hour(&self) -> Option<f64> {
        match self {
            KeepAlive::WhenIdle {
                interval,
                wire_bytes,
            }
            | KeepAlive::Ping {
                interval,
                wire_bytes,
            } if !interval.is_zero() => Some(wire_bytes * 3600.0 / interval.as_secs_f64()),
            _ => None,
        }
    }

    /// The longest a connection stays silent, when that is bounded.
    pub fn longest_silence(&self) -> Option<Duration> {
        match self {
            KeepAlive::WhenIdle { interval, .. } | KeepAlive::Ping { interval, .. } => {
                Some(*interval)
            }
            KeepAlive::Polls { interval } => Some(*interval),
            KeepAlive::HeldFor { wait } => Some(*wait),
            KeepAlive::Unknown { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            KeepAlive::WhenIdle { interval, .. } => {
                format!("SSE comment after {} without a line", hd(*interval))
            }
            KeepAlive::Ping { interval, .. } => format!("WebSocket ping every {}", hd(*interval)),
            KeepAlive::Polls { interval } => format!("a poll every {}", hd(*interval)),
            KeepAlive::HeldFor { wait } => format!("a held poll answered within {}", hd(*wait)),
            KeepAlive::Unknown { why } => missing(why),
        }
    }
}

fn hd(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The run's scenario (its `scenario.toml`), or why it cannot be read.
pub fn run_scenario(run_dir: &Path) -> Result<Scenario, String> {
    let path = run_dir.join("scenario.toml");
    if !path.exists() {
        return Err("the run folder has no scenario.toml".into());
    }
    scenario::load(&path).map_err(|e| {
        let text = e.to_string();
        format!(
            "scenario.toml unreadable: {}",
            text.lines().next().unwrap_or("")
        )
    })
}

/// The keep-alive of `transport` under `scenario` (feed-server's: an external target's is
/// its own).
pub fn keep_alive(scenario: &Result<Scenario, String>, transport: &str) -> KeepAlive {
    let sc = match scenario {
        Ok(sc) => sc,
        Err(why) => return KeepAlive::Unknown { why: why.clone() },
    };
    if sc.target.is_some() {
        return KeepAlive::Unknown {
            why: "an external target's keep-alive is its own".into(),
        };
    }
    match transport {
        "sse" => KeepAlive::WhenIdle {
            interval: sc.sse.keep_alive,
            wire_bytes: SSE_KEEP_ALIVE_WIRE_BYTES,
        },
        "sse-h2" => KeepAlive::WhenIdle {
            interval: sc.sse.keep_alive,
            wire_bytes: SSE_H2_KEEP_ALIVE_WIRE_BYTES,
        },
        "ws" => KeepAlive::Ping {
            interval: sc.ws.ping_interval,
            wire_bytes: WS_PING_PONG_WIRE_BYTES,
        },
        "poll" | "poll-h2" => KeepAlive::Polls {
            interval: sc.poll.interval,
        },
        "long-poll" | "long-poll-h2" => KeepAlive::HeldFor { wait: sc.poll.wait },
        other => KeepAlive::Unknown {
            why: format!("{other} is not a transport this report knows"),
        },
    }
}

/// The idle timeout (`after`) of the scenario's fault labelled `label`, when it is an
/// `idle_cut`.
pub fn idle_timeout(scenario: &Result<Scenario, String>, label: &str) -> Option<Duration> {
    scenario
        .as_ref()
        .ok()?
        .faults
        .iter()
        .find_map(|f| match f.kind {
            scenario::FaultKind::IdleCut { after } if f.label() == label => Some(after),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_costs_eight_wire_bytes_per_interval() {
        let k = KeepAlive::WhenIdle {
            interval: Duration::from_secs(15),
            wire_bytes: SSE_KEEP_ALIVE_WIRE_BYTES,
        };
        assert_eq!(k.bytes_per_connection_hour(), Some(1920.0));
        let ping = KeepAlive::Ping {
            interval: Duration::from_secs(30),
            wire_bytes: WS_PING_PONG_WIRE_BYTES,
        };
        assert_eq!(ping.bytes_per_connection_hour(), Some(960.0));
        let polls = KeepAlive::Polls {
            interval: Duration::from_secs(1),
        };
        assert_eq!(polls.bytes_per_connection_hour(), None);
    }
}
