//! Process cost from /proc: CPU time, resident memory, open file descriptors, threads.
//!
//! Sampled once a second for the server under test and for the load generator itself (to
//! prove it was not the bottleneck).

use std::io;
use std::time::Instant;

use serde::Serialize;

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

/// Clock ticks per second of /proc's CPU times (USER_HZ).
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
        cpu_us: ticks * 1_000_000 / ticks_per_sec(),
        rss_bytes: resident_pages * page_size(),
        fds,
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
