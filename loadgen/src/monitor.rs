//! Process cost from /proc: CPU time, resident memory, open file descriptors, threads.
//!
//! Sampled once a second for the server under test and for the load generator itself (to
//! prove it was not the bottleneck). An external target's server may be several processes
//! (nginx: a master and its workers): [`ServerProcesses`] samples a set of root processes and
//! all their descendants as one.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One reading of a process.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProcSample {
    #[serde(skip)]
    pub at: Instant,
    /// User + system CPU time, microseconds.
    pub cpu_us: u64,
    pub rss_bytes: u64,
    pub fds: u64,
    pub threads: u64,
}

/// The whole machine's CPU time from the first line of `/proc/stat`, microseconds: what
/// every process used, and what the hypervisor took (steal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineSample {
    /// user + nice + system + irq + softirq (not idle, iowait or steal).
    pub busy_us: u64,
    /// Time a virtual machine's CPUs were ready but the hypervisor ran something else.
    pub steal_us: u64,
}

/// Reads `/proc/stat`.
pub fn sample_machine() -> io::Result<MachineSample> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat")?, ticks_per_sec())
}

/// The `cpu` line of a `/proc/stat` text, in ticks of `1 / hz` s (proc(5): user nice system
/// idle iowait irq softirq steal …; guest time is already counted in user).
fn parse_proc_stat(text: &str, hz: u64) -> io::Result<MachineSample> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| io::Error::other("/proc/stat has no cpu line"))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::other("malformed /proc/stat cpu line"))?;
    let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let us = |t: u64| ticks_to_us(t, hz);
    Ok(MachineSample {
        busy_us: us(field(0) + field(1) + field(2) + field(5) + field(6)),
        steal_us: us(field(7)),
    })
}

/// Clock ticks per second of /proc's CPU times (USER_HZ).
/// /proc's CPU ticks (of `1 / hz` s) in microseconds.
fn ticks_to_us(ticks: u64, hz: u64) -> u64 {
    ticks * 1_000_000 / hz.max(1)
}

fn ticks_per_sec() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 100,
    }
}

fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 4096,
    }
}

/// `pid` 0 means this process.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let dir = if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    };
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': [0]=state, [11]=utime, [12]=stime, [17]=num_threads (proc(5) fields 3, 14, 15, 20).
    let num = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("malformed /proc stat field {i}")))
    };
    let ticks = num(11)? + num(12)?;
    let threads = num(17)?;
    let statm = std::fs::read_to_string(format!("{dir}/statm"))?;
    let resident_pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other("malformed /proc statm"))?;
    let fds = std::fs::read_dir(format!("{dir}/fd"))?.count() as u64;
    Ok(ProcSample {
        at,
        cpu_us: ticks_to_us(ticks, ticks_per_sec()),
        rss_bytes: resident_pages * page_size(),
        fds,
        threads,
    })
}

/// Why the server's processes could not be found or sampled.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("server_pid {0}: no such process")]
    NoSuchPid(u32),
    #[error("server_process {0:?}: no running process has that name (as /proc/PID/comm shows it)")]
    NoSuchProcess(String),
    #[error("the server process {0} has exited")]
    Exited(u32),
    #[error("reading /proc")]
    Io(#[from] io::Error),
}

/// The server under test as a set of processes: root processes and, at every sample, their
/// descendants (re-read each time, so a respawned worker is still counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerProcesses {
    roots: Vec<u32>,
}

impl ServerProcesses {
    /// One process and its descendants.
    pub fn pid(pid: u32) -> Result<Self, MonitorError> {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(MonitorError::NoSuchPid(pid));
        }
        Ok(ServerProcesses { roots: vec![pid] })
    }

    /// Several processes and their descendants (a deployment: instances, redis, nginx).
    pub fn roots(roots: Vec<u32>) -> Result<Self, MonitorError> {
        if let Some(&gone) = roots
            .iter()
            .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        {
            return Err(MonitorError::NoSuchPid(gone));
        }
        if roots.is_empty() {
            return Err(MonitorError::NoSuchProcess(
                "(no process in the deployment)".into(),
            ));
        }
        Ok(ServerProcesses { roots })
    }

    /// Every process named `name` whose parent is not also named so (nginx's master, not its
    /// workers, which come along as descendants), resolved now.
    pub fn named(name: &str) -> Result<Self, MonitorError> {
        let table = process_table()?;
        let roots: Vec<u32> = table
            .iter()
            .filter(|(_, p)| p.comm == name && !p.dead)
            .filter(|(_, p)| table.get(&p.ppid).is_none_or(|parent| parent.comm != name))
            .map(|(pid, _)| *pid)
            .collect();
        if roots.is_empty() {
            return Err(MonitorError::NoSuchProcess(name.to_string()));
        }
        Ok(ServerProcesses { roots })
    }

    /// The first root: the pid reports name.
    pub fn main_pid(&self) -> u32 {
        self.roots[0]
    }

    /// The roots and their descendants now.
    pub fn pids(&self) -> Result<Vec<u32>, MonitorError> {
        let table = process_table()?;
        let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (pid, p) in &table {
            children.entry(p.ppid).or_default().push(*pid);
        }
        let mut seen = BTreeSet::new();
        let mut todo: Vec<u32> = self
            .roots
            .iter()
            .copied()
            .filter(|r| table.get(r).is_some_and(|p| !p.dead))
            .collect();
        while let Some(pid) = todo.pop() {
            if seen.insert(pid) {
                todo.extend(children.get(&pid).into_iter().flatten());
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// The sum over the set. Fails when a root has exited: the server died.
    pub fn sample(&self) -> Result<ProcSample, MonitorError> {
        let pids = self.pids()?;
        if let Some(gone) = self.roots.iter().find(|r| !pids.contains(r)) {
            return Err(MonitorError::Exited(*gone));
        }
        let mut total = ProcSample {
            at: Instant::now(),
            cpu_us: 0,
            rss_bytes: 0,
            fds: 0,
            threads: 0,
        };
        for pid in pids {
            // A descendant may exit between the listing and its reading: skip it.
            match sample(pid) {
                Ok(s) => {
                    total.cpu_us += s.cpu_us;
                    total.rss_bytes += s.rss_bytes;
                    total.fds += s.fds;
                    total.threads += s.threads;
                }
                Err(_) if !self.roots.contains(&pid) => {}
                Err(_) => return Err(MonitorError::Exited(pid)),
            }
        }
        Ok(total)
    }
}

/// What /proc says of one process: its name, parent and whether it still runs.
struct ProcEntry {
    comm: String,
    ppid: u32,
    /// Exited, not yet reaped (state Z or X): a killed child of ours stays listed until then.
    dead: bool,
}

fn process_table() -> io::Result<BTreeMap<u32, ProcEntry>> {
    let mut table = BTreeMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes may exit while the table is read: skip what vanished.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(p) = parse_stat_entry(&stat) {
            table.insert(pid, p);
        }
    }
    Ok(table)
}

/// `PID (COMM) STATE PPID ...`; COMM may contain spaces and parentheses.
fn parse_stat_entry(stat: &str) -> Option<ProcEntry> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcEntry {
        comm,
        ppid,
        dead: matches!(state, "Z" | "X" | "x"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_cpu_is_busy_time_and_steal_in_microseconds() {
        let text = "cpu  100 5 40 9000 7 3 2 11 0 0\ncpu0 50 2 20 4500 3 1 1 5 0 0\nintr 1\n";
        let m = parse_proc_stat(text, 100).unwrap();
        // (100 + 5 + 40 + 3 + 2) ticks of 10 ms; idle and iowait are not busy.
        assert_eq!(m.busy_us, 1_500_000);
        assert_eq!(m.steal_us, 110_000);
        assert!(parse_proc_stat("intr 1\n", 100).is_err());
        assert!(parse_proc_stat("cpu  1 x 3\n", 100).is_err());
        assert!(sample_machine().is_ok(), "this machine has a /proc/stat");
    }

    #[test]
    fn stat_entries_with_awkward_names() {
        let p = parse_stat_entry("42 (nginx: worker (x)) S 7 42 42 0 -1").unwrap();
        assert_eq!(
            (p.comm.as_str(), p.ppid, p.dead),
            ("nginx: worker (x)", 7, false)
        );
        assert!(parse_stat_entry("43 (feed-server) Z 7 0").unwrap().dead);
        assert!(parse_stat_entry("garbage").is_none());
    }

    #[test]
    fn a_process_set_counts_children_and_notices_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let me = ServerProcesses::pid(std::process::id()).unwrap();
        let pids = me.pids().unwrap();
        assert!(pids.contains(&child.id()), "{pids:?}");
        let sampled = me.sample().unwrap();
        assert!(sampled.rss_bytes > sample(0).unwrap().rss_bytes);
        let sleeper = ServerProcesses::pid(child.id()).unwrap();
        assert_eq!(sleeper.pids().unwrap(), vec![child.id()]);
        child.kill().unwrap();
        // Killed but not yet reaped (a zombie): already gone as far as cost goes.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while sleeper.sample().is_ok() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(matches!(sleeper.sample(), Err(MonitorError::Exited(_))));
        child.wait().unwrap();
        assert!(matches!(sleeper.sample(), Err(MonitorError::Exited(_))));
        assert!(matches!(
            ServerProcesses::named("no-such-process-name"),
            Err(MonitorError::NoSuchProcess(_))
        ));
        assert!(matches!(
            ServerProcesses::pid(u32::MAX - 1),
            Err(MonitorError::NoSuchPid(_))
        ));
    }

    #[test]
    fn samples_this_process() {
        let s = sample(0).unwrap();
        assert!(s.rss_bytes > 1024 * 1024, "{s:?}");
        assert!(s.fds >= 3);
        assert!(s.threads >= 1);
        // Burn a little CPU and see it counted (at 100 Hz tick resolution).
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 60 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(sample(0).unwrap().cpu_us > s.cpu_us);
    }
}
