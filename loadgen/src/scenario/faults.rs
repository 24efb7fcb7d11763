//! The `[[faults]]` list: what goes wrong during a run, when, and to how many clients.
//!
//! Faults run in turn inside the measured phase (`at` counts from its start) and never
//! overlap, so every reconnect, loss and recovery a run records belongs to exactly one fault
//! (the report's per-fault rows). Each kind names who injects it:
//! - the server itself: `drop` (feed-server's admin route ends the connections as a lost
//!   connection does) and `restart` (pushbench kills feed-server and starts it again on the
//!   same port, its in-memory history gone);
//! - the load generator's TCP proxy between clients and server (`faults::proxy`): `reset`,
//!   `idle_cut`, `latency`, `bandwidth`, `blackhole`, `cut_mid_event`;
//! - the clients: `slow_consumers` read their socket at a limited rate;
//! - the deployment (`[deployment]`, pushbench's processes): `kill_instance` (SIGKILL one
//!   serving instance behind the balancer, optionally started again), `rolling_restart` (each
//!   instance in turn, SIGTERM and start again, as a deploy does) and `redis_restart` (SIGKILL
//!   redis-server, started again on its port and data directory).

use std::fmt;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// When it starts, after the measured phase began.
    pub at: Duration,
    /// How long it lasts; zero for the one-shot kinds ([`FaultKind::lasts`]).
    pub duration: Duration,
    /// The share of clients (connections) it hits, in (0, 1].
    pub fraction: f64,
}

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    /// The server ends `fraction` of its open streams, cleanly (SSE without `event: end`,
    /// WebSocket close 1001, held long-polls answered).
    Drop,
    /// `fraction` of the connections get a TCP RST, both ends.
    Reset,
    /// While it lasts, connections idle (no byte either way) for longer than `after` are
    /// closed, as a load balancer's idle timeout does.
    IdleCut { after: Duration },
    /// While it lasts, every chunk either way is held `delay` ± `jitter`.
    Latency { delay: Duration, jitter: Duration },
    /// While it lasts, each connection carries at most this many bytes per second each way.
    Bandwidth { bytes_per_sec: u64 },
    /// While it lasts, nothing is forwarded either way and nothing is closed.
    Blackhole,
    /// The next event, frame or answer the server sends is cut in the middle and the
    /// connection closed.
    CutMidEvent,
    /// feed-server is killed (SIGKILL) and started again on the same port after `down`,
    /// continuing the feed's numbering with its history gone.
    Restart { down: Duration },
    /// While it lasts, `fraction` of the clients read at most this many bytes per second.
    SlowConsumers { bytes_per_sec: u64 },
    /// Serving instance `instance` (0-based) is killed (SIGKILL); its clients reconnect
    /// through the balancer to another. Started again on its port after `down` if given.
    KillInstance {
        instance: u32,
        down: Option<Duration>,
    },
    /// Every serving instance in turn: SIGTERM, wait for its exit, start it again on its port,
    /// wait for `/healthz`, then `pause` before the next.
    RollingRestart { pause: Duration },
    /// redis-server is killed (SIGKILL) and started again after `down` on its port and data
    /// directory: what it persisted survives.
    RedisRestart { down: Duration },
}

/// Who carries a fault out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injector {
    /// feed-server's admin route.
    Server,
    /// pushbench, by killing and restarting feed-server.
    Orchestrator,
    /// The load generator's TCP proxy.
    Proxy,
    /// The clients themselves.
    Clients,
}

impl FaultKind {
    /// Every kind's name in scenario files.
    pub const NAMES: [&'static str; 12] = [
        "drop",
        "reset",
        "idle_cut",
        "latency",
        "bandwidth",
        "blackhole",
        "cut_mid_event",
        "restart",
        "slow_consumers",
        "kill_instance",
        "rolling_restart",
        "redis_restart",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Reset => "reset",
            FaultKind::IdleCut { .. } => "idle_cut",
            FaultKind::Latency { .. } => "latency",
            FaultKind::Bandwidth { .. } => "bandwidth",
            FaultKind::Blackhole => "blackhole",
            FaultKind::CutMidEvent => "cut_mid_event",
            FaultKind::Restart { .. } => "restart",
            FaultKind::SlowConsumers { .. } => "slow_consumers",
            FaultKind::KillInstance { .. } => "kill_instance",
            FaultKind::RollingRestart { .. } => "rolling_restart",
            FaultKind::RedisRestart { .. } => "redis_restart",
        }
    }

    /// Whether it has a `duration` (a window), rather than happening once at `at`.
    pub fn lasts(&self) -> bool {
        matches!(
            self,
            FaultKind::IdleCut { .. }
                | FaultKind::Latency { .. }
                | FaultKind::Bandwidth { .. }
                | FaultKind::Blackhole
                | FaultKind::SlowConsumers { .. }
        )
    }

    pub fn injector(&self) -> Injector {
        match self {
            FaultKind::Drop => Injector::Server,
            FaultKind::Restart { .. }
            | FaultKind::KillInstance { .. }
            | FaultKind::RollingRestart { .. }
            | FaultKind::RedisRestart { .. } => Injector::Orchestrator,
            FaultKind::SlowConsumers { .. } => Injector::Clients,
            _ => Injector::Proxy,
        }
    }
}

impl FaultKind {
    /// How long after `at` a server process is down on purpose (its absence is not a death),
    /// as far as the schedule knows; a rolling restart's length depends on how fast each
    /// instance comes back, so this is its lower bound (`pause` per instance).
    pub fn planned_outage(&self, instances: u32) -> Duration {
        match *self {
            FaultKind::Restart { down } | FaultKind::RedisRestart { down } => down,
            FaultKind::KillInstance { down, .. } => down.unwrap_or_default(),
            FaultKind::RollingRestart { pause } => pause * instances,
            _ => Duration::ZERO,
        }
    }

    /// Whether lines a client finds gone afterwards are counted as lost by this fault's
    /// restart (a server, or Redis, lost its history), rather than plain loss.
    pub fn restarts_history(&self) -> bool {
        matches!(
            self,
            FaultKind::Restart { .. }
                | FaultKind::KillInstance { .. }
                | FaultKind::RollingRestart { .. }
                | FaultKind::RedisRestart { .. }
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Fault {
    /// When it ends, after the measured phase began (`at` for one-shot kinds).
    pub fn end(&self) -> Duration {
        self.at + self.duration
    }

    /// Whether client `index` of `clients` is among the `fraction` a client-side fault hits:
    /// an evenly spread, deterministic choice (client k when ⌊(k+1)f⌋ > ⌊kf⌋), so the slow
    /// clients are spread over topics and workers like everyone else.
    pub fn selects_client(&self, index: u32) -> bool {
        let f = self.fraction;
        let k = f64::from(index);
        ((k + 1.0) * f).floor() > (k * f).floor()
    }

    /// A short label for reports: `idle_cut(after 2s) at 3s for 4s, 100%`.
    pub fn label(&self) -> String {
        let params = match self.kind {
            FaultKind::IdleCut { after } => format!("(after {})", hd(after)),
            FaultKind::Latency { delay, jitter } => {
                format!("({} ± {})", hd(delay), hd(jitter))
            }
            FaultKind::Bandwidth { bytes_per_sec } | FaultKind::SlowConsumers { bytes_per_sec } => {
                format!("({bytes_per_sec} B/s)")
            }
            FaultKind::Restart { down } | FaultKind::RedisRestart { down } => {
                format!("(down {})", hd(down))
            }
            FaultKind::KillInstance { instance, down } => match down {
                Some(down) => format!("(instance {instance}, down {})", hd(down)),
                None => format!("(instance {instance})"),
            },
            FaultKind::RollingRestart { pause } => format!("(pause {})", hd(pause)),
            _ => String::new(),
        };
        let window = match self.kind.lasts() {
            true => format!(" for {}", hd(self.duration)),
            false => String::new(),
        };
        format!(
            "{}{params} at {}{window}, {:.0}%",
            self.kind,
            hd(self.at),
            self.fraction * 100.0
        )
    }
}

fn hd(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

// Serialized as the file writes it: `kind`, `at`, `duration`, `fraction` and the kind's own keys.
impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind.name())?;
        m.serialize_entry("at", &hd(self.at))?;
        if self.kind.lasts() {
            m.serialize_entry("duration", &hd(self.duration))?;
        }
        m.serialize_entry("fraction", &self.fraction)?;
        match self.kind {
            FaultKind::IdleCut { after } => m.serialize_entry("after", &hd(after))?,
            FaultKind::Latency { delay, jitter } => {
                m.serialize_entry("delay", &hd(delay))?;
                m.serialize_entry("jitter", &hd(jitter))?;
            }
            FaultKind::Bandwidth { bytes_per_sec } | FaultKind::SlowConsumers { bytes_per_sec } => {
                m.serialize_entry("bytes_per_sec", &bytes_per_sec)?
            }
            FaultKind::Restart { down } => m.serialize_entry("down", &hd(down))?,
            FaultKind::KillInstance { instance, down } => {
                m.serialize_entry("instance", &instance)?;
                if let Some(down) = down {
                    m.serialize_entry("duration", &hd(down))?;
                }
            }
            FaultKind::RollingRestart { pause } => m.serialize_entry("pause", &hd(pause))?,
            FaultKind::RedisRestart { down } => m.serialize_entry("duration", &hd(down))?,
            FaultKind::Drop | FaultKind::Reset | FaultKind::Blackhole | FaultKind::CutMidEvent => {}
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_selection_is_the_fraction_spread_evenly() {
        let f = |fraction| Fault {
            kind: FaultKind::SlowConsumers { bytes_per_sec: 1 },
            at: Duration::ZERO,
            duration: Duration::from_secs(1),
            fraction,
        };
        let picked = |fault: &Fault| (0..100).filter(|&i| fault.selects_client(i)).count();
        assert_eq!(picked(&f(0.25)), 25);
        assert_eq!(picked(&f(1.0)), 100);
        assert_eq!(picked(&f(0.1)), 10);
        let quarter: Vec<u32> = (0..8).filter(|&i| f(0.25).selects_client(i)).collect();
        assert_eq!(quarter, vec![3, 7], "spread, not the first ones");
    }
}
