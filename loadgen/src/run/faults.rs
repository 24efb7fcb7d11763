//! Injecting a scenario's faults at their times, and what each injector reported.
//!
//! [`FaultSchedule`] decides *when* (pure: start each fault at the measured phase's start
//! plus its `at`, end a window `duration` later, bring a killed server back `down` later);
//! the conductor's methods below do it: the admin route for `drop`, killing and restarting
//! feed-server for `restart`, the load generator's proxy for the network kinds; with a
//! `[deployment]`, killing and starting its processes (`kill_instance`, `rolling_restart`
//! one instance per step, `redis_restart`, and `restart` of every instance at once). Slow
//! consumers need nothing here: their clients carry their read limits from the start.
//!
//! A restart keeps the measurement honest across two processes: the server's CPU over the
//! measured phase is the old process's share plus the new one's (`ProcWindow::carried_cpu_us`),
//! the time series samples the new process from its first second, and the run does not
//! mistake the planned death for a crash. A deployment's sampled set is rebuilt around every
//! such change (`before_change`, `after_change`), the old set's CPU carried the same way; its
//! per-role figures come from the cluster's ledger, which reads each process before it dies.

use std::time::Duration;

use pushbench_feed::clock::unix_nanos;
use tokio::time::Instant;

use super::summarize::FaultFacts;
use super::Conductor;
use crate::control::FaultWindow;
use crate::controlplane::drop_connections;
use crate::faults::{Fraction, ProxyFault};
use crate::monitor::ServerProcesses;
use crate::orchestrate::ServerProcess;
use crate::scenario::{Fault, FaultKind};

use super::collector::sample_server;

/// The token feed-server's admin routes get in runs with a `drop` fault. A constant: the
/// server listens on loopback for one run, and the arguments stay a pure function of the
/// scenario (summary.json records them).
pub const FAULT_ADMIN_TOKEN: &str = "pushbench-fault-injection";

/// What is due next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FaultStep {
    Start(usize),
    End(usize),
    /// A restarted server is started again.
    BringUp(usize),
    /// A rolling restart's next instance (fault, instance).
    Roll(usize, usize),
}

/// When each fault starts and ends, and what the injectors said.
pub(super) struct FaultSchedule {
    faults: Vec<Fault>,
    starts: Vec<Instant>,
    next: usize,
    pending: Vec<(Instant, FaultStep)>,
    pub(super) facts: Vec<FaultFacts>,
}

impl FaultSchedule {
    /// `measure_start`: when the measured phase begins, on the run's clock.
    pub(super) fn new(faults: &[Fault], measure_start: Instant) -> Self {
        FaultSchedule {
            faults: faults.to_vec(),
            starts: faults.iter().map(|f| measure_start + f.at).collect(),
            next: 0,
            pending: Vec::new(),
            facts: faults
                .iter()
                .map(|f| FaultFacts {
                    fault: f.clone(),
                    injected_s: None,
                    connections_hit: None,
                    notes: Vec::new(),
                })
                .collect(),
        }
    }

    /// The clients' view: each fault's window on the Unix clock, `planned_unix` being
    /// `planned` (the run's clock origin) on it.
    pub(super) fn windows(
        faults: &[Fault],
        measure_start_unix: u64,
        instances: u32,
    ) -> Vec<FaultWindow> {
        faults
            .iter()
            .map(|f| {
                let start_ns = measure_start_unix + f.at.as_nanos() as u64;
                let end = match f.kind.restarts_history() {
                    // A rolling restart's length depends on the instances; its lower bound.
                    true => f.kind.planned_outage(instances),
                    false => f.duration,
                };
                FaultWindow {
                    start_ns,
                    end_ns: start_ns + end.as_nanos() as u64,
                    one_shot: !f.kind.lasts(),
                    restart: f.kind.restarts_history(),
                }
            })
            .collect()
    }

    pub(super) fn fault(&self, i: usize) -> &Fault {
        &self.faults[i]
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        let start = self.starts.get(self.next).copied();
        let pending = self.pending.iter().map(|(at, _)| *at).min();
        start.into_iter().chain(pending).min()
    }

    /// The next step due at `now`, ends and bring-ups before starts.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<FaultStep> {
        if let Some(k) = (0..self.pending.len())
            .filter(|&k| self.pending[k].0 <= now)
            .min_by_key(|&k| self.pending[k].0)
        {
            return Some(self.pending.remove(k).1);
        }
        if self.starts.get(self.next).is_some_and(|at| *at <= now) {
            self.next += 1;
            return Some(FaultStep::Start(self.next - 1));
        }
        None
    }

    pub(super) fn schedule(&mut self, at: Instant, step: FaultStep) {
        self.pending.push((at, step));
    }
}

impl Conductor<'_> {
    /// Does every fault step that is due.
    pub(super) async fn on_fault_due(&mut self) {
        while let Some(step) = self.faults.take_due(Instant::now()) {
            match step {
                FaultStep::Start(i) => self.inject(i).await,
                FaultStep::End(i) => self.end_window(i),
                FaultStep::BringUp(i) => match self.cluster.is_some() {
                    true => self.bring_cluster_up(i).await,
                    false => self.bring_server_up(i).await,
                },
                FaultStep::Roll(i, k) => self.roll_instance(i, k).await,
            }
        }
    }

    async fn inject(&mut self, i: usize) {
        let fault = self.faults.fault(i).clone();
        self.faults.facts[i].injected_s = Some(self.started.elapsed().as_secs_f64());
        match fault.kind {
            FaultKind::Drop => {
                let Some(base) = self.feed_server.clone() else {
                    return self.note(i, "no feed-server to drop connections of".into());
                };
                match drop_connections(
                    &self.control_client,
                    &base,
                    FAULT_ADMIN_TOKEN,
                    &self.topics,
                    fault.fraction,
                )
                .await
                {
                    Ok(n) => self.faults.facts[i].connections_hit = Some(n),
                    Err(e) => self.note(i, crate::error::chain(&e)),
                }
            }
            FaultKind::Restart { down } if self.cluster.is_some() => {
                self.kill_instances(i, None, Some(down)).await
            }
            FaultKind::Restart { down } => self.kill_server(i, down).await,
            FaultKind::KillInstance { instance, down } => {
                self.kill_instances(i, Some(instance as usize), down).await
            }
            FaultKind::RollingRestart { .. } => self.roll_instance(i, 0).await,
            FaultKind::RedisRestart { down } => self.kill_redis(i, down).await,
            FaultKind::SlowConsumers { .. } => {
                let slow = (0..self.clients)
                    .filter(|&c| fault.selects_client(c))
                    .count();
                self.faults.facts[i].connections_hit = Some(slow as u64);
                self.faults
                    .schedule(Instant::now() + fault.duration, FaultStep::End(i));
            }
            _ => self.inject_in_proxy(i, &fault),
        }
    }

    /// The network kinds, through the load generator's proxy. A lasting kind ends
    /// `duration` later; a one-shot kind acts on the connections open now (and, for
    /// `cut_mid_event`, on their next chunk). The proxy's count of connections it actually
    /// affected is read when it stops.
    fn inject_in_proxy(&mut self, i: usize, fault: &Fault) {
        // A one-shot fault stays armed in the proxy (cut_mid_event waits for each selected
        // connection's next chunk) until the next proxy fault or the end of the run.
        let armed: Vec<usize> = self.proxy_armed.drain(..).collect();
        for k in armed {
            self.clear_in_proxy(k);
        }
        let Some(kind) = ProxyFault::from_kind(fault.kind) else {
            return self.note(i, format!("{} is not a proxy fault", fault.kind));
        };
        let Some(proxy) = self.proxy.as_ref() else {
            return self.note(i, format!("{}: no proxy is running", fault.kind));
        };
        let applied = Fraction::new(fault.fraction).and_then(|f| proxy.handle().apply(kind, f));
        match applied {
            Ok(id) => {
                self.proxy_faults.push((i, id));
                match fault.kind.lasts() {
                    true => self
                        .faults
                        .schedule(Instant::now() + fault.duration, FaultStep::End(i)),
                    false => self.proxy_armed.push(i),
                }
            }
            Err(e) => self.note(i, format!("the proxy refused {}: {e}", fault.kind)),
        }
    }

    fn clear_in_proxy(&mut self, i: usize) {
        let Some(proxy) = self.proxy.as_ref() else {
            return;
        };
        let Some(&(_, id)) = self.proxy_faults.iter().find(|(k, _)| *k == i) else {
            return;
        };
        if let Err(e) = proxy.handle().clear(id) {
            self.note(i, format!("clearing it in the proxy failed: {e}"));
        }
    }

    /// Stops the proxy; returns, per proxy fault, the connections it affected.
    pub(super) async fn stop_proxy(&mut self) -> Vec<(usize, u64)> {
        let Some(proxy) = self.proxy.take() else {
            return Vec::new();
        };
        let stats = match proxy.stop().await {
            Ok(stats) => stats,
            Err(e) => {
                self.warnings
                    .push(format!("the fault proxy did not stop cleanly: {e}"));
                return Vec::new();
            }
        };
        if stats.upstream_connect_failures > 0 {
            self.warnings.push(format!(
                "the fault proxy could not reach the server {} time(s) (each such client \
                 connection was closed at once, and the client retried)",
                stats.upstream_connect_failures
            ));
        }
        self.proxy_faults
            .iter()
            .filter_map(|&(i, id)| {
                let s = stats.faults.iter().find(|s| s.id == id)?;
                Some((i, s.affected))
            })
            .collect()
    }

    fn end_window(&mut self, i: usize) {
        self.clear_in_proxy(i);
    }

    fn note(&mut self, i: usize, note: String) {
        self.faults.facts[i].notes.push(note);
    }

    /// Before a deployment's processes change: the sampled set's CPU in the measured phase so
    /// far stays counted (the next set starts from its own reading, `after_change`).
    fn before_change(&mut self) {
        if let Ok(last) = sample_server(self.watch.as_ref()) {
            let now = (last, crate::monitor::sample(0).unwrap_or(last), None);
            let start = self.at_measure_start.get_or_insert(now);
            self.server_cpu_carried_us += last.cpu_us.saturating_sub(start.0.cpu_us);
            start.0.cpu_us = last.cpu_us;
        }
    }

    /// After they changed: sample the deployment's live processes from here on.
    fn after_change(&mut self, i: usize) {
        let Some(cluster) = &self.cluster else { return };
        match cluster.watch() {
            Ok(watch) => {
                if let Ok(first) = watch.sample() {
                    if let Some(start) = self.at_measure_start.as_mut() {
                        start.0.cpu_us = first.cpu_us;
                    }
                    self.collector.replace_server(Some(watch.clone()), first);
                }
                self.watch = Some(watch);
            }
            Err(e) => self.note(i, format!("cannot sample the deployment: {e}")),
        }
    }

    /// SIGKILL serving instance `which` (all of them for `None`), and their clients move to
    /// the others through nginx; started again `down` later if given.
    async fn kill_instances(&mut self, i: usize, which: Option<usize>, down: Option<Duration>) {
        self.before_change();
        let Some(cluster) = self.cluster.as_mut() else {
            return self.note(i, "no deployment to kill an instance of".into());
        };
        let targets: Vec<usize> = match which {
            Some(k) => vec![k],
            None => (0..cluster.instances.len()).collect(),
        };
        let mut notes = Vec::new();
        for k in &targets {
            match cluster.kill_instance(*k).await {
                Some(how) => notes.push(format!("instance {k} killed (SIGKILL): {how}")),
                None => notes.push(format!("instance {k} was not running")),
            }
        }
        for n in notes {
            self.note(i, n);
        }
        self.after_change(i);
        self.killed_instances = targets;
        if let Some(down) = down {
            self.faults
                .schedule(Instant::now() + down, FaultStep::BringUp(i));
        }
    }

    /// redis-server SIGKILLed now, started again `down` later on its port and data.
    async fn kill_redis(&mut self, i: usize, down: Duration) {
        self.before_change();
        let how = match self.cluster.as_mut() {
            Some(c) => c.kill_redis().await,
            None => None,
        };
        match how {
            Some(how) => self.note(i, format!("redis-server killed (SIGKILL): {how}")),
            None => return self.note(i, "no redis-server to kill".into()),
        }
        self.after_change(i);
        self.redis_down = true;
        self.faults
            .schedule(Instant::now() + down, FaultStep::BringUp(i));
    }

    /// Brings back what fault `i` took down: redis-server, or the killed instances.
    async fn bring_cluster_up(&mut self, i: usize) {
        let down_since = unix_nanos();
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let mut notes = Vec::new();
        let mut failed = None;
        if std::mem::take(&mut self.redis_down) {
            match cluster.start_redis().await {
                Ok(pid) => notes.push(format!(
                    "redis-server started again (pid {pid}) in {}",
                    took_since(down_since)
                )),
                Err(e) => failed = Some(format!("redis-server: {}", crate::error::chain(&e))),
            }
        }
        for k in std::mem::take(&mut self.killed_instances) {
            match cluster.start_instance(k).await {
                Ok(pid) => notes.push(format!(
                    "instance {k} started again (pid {pid}) in {}",
                    took_since(down_since)
                )),
                Err(e) => failed = Some(format!("instance {k}: {}", crate::error::chain(&e))),
            }
        }
        for n in notes {
            self.note(i, n);
        }
        self.after_change(i);
        if let Some(why) = failed {
            self.server_died = Some(format!("a fault could not start {why} again"));
            self.control.stop();
        }
    }

    /// A rolling restart's step: instance `k` stopped (SIGTERM, wait), started again on its
    /// port and healthy; the next `pause` later.
    async fn roll_instance(&mut self, i: usize, k: usize) {
        let FaultKind::RollingRestart { pause } = self.faults.fault(i).kind else {
            return;
        };
        self.before_change();
        let Some(cluster) = self.cluster.as_mut() else {
            return self.note(i, "no deployment to restart".into());
        };
        let since = unix_nanos();
        let stopped = cluster.stop_instance(k).await;
        let started = cluster.start_instance(k).await;
        let count = cluster.instances.len();
        match (stopped, started) {
            (Some(how), Ok(pid)) => self.note(
                i,
                format!(
                    "instance {k} stopped ({how}) and started again (pid {pid}) in {}",
                    took_since(since)
                ),
            ),
            (None, _) => self.note(i, format!("instance {k} was not running")),
            (_, Err(e)) => {
                self.server_died = Some(format!(
                    "the rolling restart could not start instance {k} again: {}",
                    crate::error::chain(&e)
                ));
                self.control.stop();
            }
        }
        self.after_change(i);
        if k + 1 < count {
            self.faults
                .schedule(Instant::now() + pause, FaultStep::Roll(i, k + 1));
        }
    }

    /// SIGKILL now; started again `down` later.
    async fn kill_server(&mut self, i: usize, down: Duration) {
        let Some(server) = self.process.take() else {
            return self.note(i, "no feed-server process to restart".into());
        };
        // The old process's CPU in the measured phase so far stays counted.
        if let Ok(last) = sample_server(self.watch.as_ref()) {
            let now = (last, crate::monitor::sample(0).unwrap_or(last), None);
            let start = self.at_measure_start.get_or_insert(now);
            self.server_cpu_carried_us += last.cpu_us.saturating_sub(start.0.cpu_us);
            start.0.cpu_us = 0;
        }
        self.restart_addr = Some(server.addr);
        self.generator_origin_ns = server.generator_origin_ns;
        self.restarting = true;
        let how = server.kill().await;
        self.note(i, format!("server killed (SIGKILL): {how}"));
        self.faults
            .schedule(Instant::now() + down, FaultStep::BringUp(i));
    }

    /// Starts feed-server again on the same port, continuing the feed's schedule.
    async fn bring_server_up(&mut self, i: usize) {
        let Some(addr) = self.restart_addr else {
            return;
        };
        let Some(origin) = self.generator_origin_ns else {
            self.restarting = false;
            self.server_died = Some(
                "feed-server printed no generator origin, so a restart could not continue its \
                 feed (is it an older build?)"
                    .into(),
            );
            self.control.stop();
            return;
        };
        let mut args = self.server_args.clone();
        args.extend(["--gen-origin-unix-ns".into(), origin.to_string()]);
        let log = self.tdir.join(format!("server-restart-{}.log", i + 1));
        let down_since = unix_nanos();
        let started = ServerProcess::start_on(
            &self.server_binary,
            &args,
            self.opts.pinning.as_ref().map(|p| p.server_cpus.as_slice()),
            log,
            addr,
        )
        .await;
        self.restarting = false;
        match started {
            Ok(server) => {
                let took = Duration::from_nanos(unix_nanos().saturating_sub(down_since));
                self.note(
                    i,
                    format!(
                        "server started again on {addr} in {} (pid {})",
                        humantime::format_duration(Duration::from_millis(took.as_millis() as u64)),
                        server.pid
                    ),
                );
                match ServerProcesses::pid(server.pid) {
                    Ok(watch) => {
                        if let Ok(first) = watch.sample() {
                            self.collector.replace_server(Some(watch.clone()), first);
                        }
                        self.watch = Some(watch);
                    }
                    Err(e) => self.note(i, format!("cannot sample the new server: {e}")),
                }
                self.process = Some(server);
            }
            Err(e) => {
                self.server_died = Some(format!(
                    "the restart fault could not start feed-server again: {}",
                    crate::error::chain(&e)
                ));
                self.control.stop();
            }
        }
    }
}

fn took_since(since_ns: u64) -> String {
    let took = Duration::from_nanos(unix_nanos().saturating_sub(since_ns));
    humantime::format_duration(Duration::from_millis(took.as_millis() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, at_ms: u64, duration_ms: u64) -> Fault {
        Fault {
            kind,
            at: Duration::from_millis(at_ms),
            duration: Duration::from_millis(duration_ms),
            fraction: 1.0,
        }
    }

    #[test]
    fn steps_come_in_time_order() {
        let t0 = Instant::now();
        let faults = [
            fault(FaultKind::Blackhole, 100, 200),
            fault(FaultKind::Drop, 400, 0),
        ];
        let mut s = FaultSchedule::new(&faults, t0);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(s.take_due(t0), None);
        assert_eq!(
            s.take_due(t0 + Duration::from_millis(150)),
            Some(FaultStep::Start(0))
        );
        s.schedule(t0 + Duration::from_millis(300), FaultStep::End(0));
        assert_eq!(s.next_due(), Some(t0 + Duration::from_millis(300)));
        // Late: the end comes before the next start.
        let late = t0 + Duration::from_millis(500);
        assert_eq!(s.take_due(late), Some(FaultStep::End(0)));
        assert_eq!(s.take_due(late), Some(FaultStep::Start(1)));
        assert_eq!(s.take_due(late), None);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn clients_see_one_shot_and_restart_windows() {
        let w = FaultSchedule::windows(
            &[
                fault(
                    FaultKind::Restart {
                        down: Duration::from_secs(1),
                    },
                    1_000,
                    0,
                ),
                fault(
                    FaultKind::IdleCut {
                        after: Duration::from_secs(1),
                    },
                    3_000,
                    2_000,
                ),
            ],
            10,
            1,
        );
        assert!(w[0].one_shot && w[0].restart);
        assert_eq!(w[0].end_ns - w[0].start_ns, 1_000_000_000);
        assert!(!w[1].one_shot && !w[1].restart);
        assert_eq!(w[1].start_ns, 10 + 3_000_000_000);
    }
}
