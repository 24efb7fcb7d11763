//! Worker threads: each runs a single-threaded tokio runtime with its share of the clients,
//! and owns one [`Stats`] they all write to. Once a second a worker sends its interval
//! snapshot to the collector; at the end it sends everything it recorded.
//!
//! Thread-per-core with no shared state on the hot path, as wrk does: thousands of clients
//! cost a task each, and recording an event is a histogram increment, not a channel send.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio::time::{interval, sleep_until, Instant, MissedTickBehavior};

use crate::clients::h2::H2Group;
use crate::clients::{run_client, ClientSpec};
use crate::control::RunControl;
use crate::record::{IntervalSnapshot, Recorder};
use crate::stats::Stats;

/// How often a worker checks its own scheduling lag.
const LAG_PROBE_EVERY: Duration = Duration::from_millis(5);

/// What workers send the collector.
pub enum WorkerMsg {
    /// One second's worth of a worker's activity.
    Tick {
        worker: usize,
        /// Which second of the worker's run this is (1, 2, …).
        tick: u64,
        snapshot: IntervalSnapshot,
        open_connections: u64,
        clients_done: u32,
    },
    /// A worker finished: all its clients ended.
    Done {
        worker: usize,
        result: Box<WorkerResult>,
    },
}

/// Everything a worker recorded.
pub struct WorkerResult {
    pub stats: Stats,
    /// How late the worker's timer wake-ups were, microseconds: a loaded worker wakes late.
    pub sched_lag_us: Histogram<u64>,
}

/// Deals the clients out to `workers` round-robin; HTTP/2 clients by connection group, a
/// group's clients all to one worker (they share its connection, a worker's local task).
pub fn deal(workers: usize, clients: Vec<ClientSpec>) -> Vec<Vec<ClientSpec>> {
    let workers = workers.max(1);
    let mut shares: Vec<Vec<ClientSpec>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, c) in clients.into_iter().enumerate() {
        let to = match c.h2 {
            Some(place) => place.group as usize % workers,
            None => i % workers,
        };
        shares[to].push(c);
    }
    shares
}

/// Starts `workers` threads and deals the clients out ([`deal`]).
pub fn start(
    workers: usize,
    clients: Vec<ClientSpec>,
    control: Arc<RunControl>,
    tx: UnboundedSender<WorkerMsg>,
) -> Vec<JoinHandle<()>> {
    deal(workers, clients)
        .into_iter()
        .enumerate()
        .map(|(worker, share)| {
            let control = control.clone();
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("pushbench-worker-{worker}"))
                .spawn(move || run_worker(worker, share, control, tx))
                .expect("spawn worker thread")
        })
        .collect()
}

fn run_worker(
    worker: usize,
    clients: Vec<ClientSpec>,
    control: Arc<RunControl>,
    tx: UnboundedSender<WorkerMsg>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("worker runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut fresh = Stats::new();
        fresh.recorder = Recorder::new().with_faults(control.fault_count());
        let stats = Rc::new(RefCell::new(fresh));
        let lag = Rc::new(RefCell::new(crate::record::new_lag_histogram_us()));
        let mut tasks = JoinSet::new();
        let mut groups: BTreeMap<u32, Rc<H2Group>> = BTreeMap::new();
        for spec in clients {
            let group = spec
                .h2
                .map(|place| groups.entry(place.group).or_default().clone());
            tasks.spawn_local(run_client(spec, group, stats.clone(), control.clone()));
        }
        let probe = {
            let lag = lag.clone();
            tokio::task::spawn_local(async move {
                loop {
                    let planned = Instant::now() + LAG_PROBE_EVERY;
                    sleep_until(planned).await;
                    let late = planned.elapsed().as_micros() as u64;
                    lag.borrow_mut().saturating_record(late.max(1));
                }
            })
        };
        let mut tick = interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                joined = tasks.join_next() => {
                    if joined.is_none() {
                        break;
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    let mut st = stats.borrow_mut();
                    let msg = WorkerMsg::Tick {
                        worker,
                        tick: ticks,
                        snapshot: st.interval.take(),
                        open_connections: st.open_connections,
                        clients_done: st.clients_done,
                    };
                    drop(st);
                    if tx.send(msg).is_err() {
                        // The collector is gone: nobody will read the results.
                        control.stop();
                    }
                }
            }
        }
        probe.abort();
        // Every client has ended: close the HTTP/2 connections, so their sockets settle
        // their bytes into the stats before they are sent.
        for group in groups.values() {
            group.close().await;
        }
        let result = WorkerResult {
            stats: std::mem::take(&mut *stats.borrow_mut()),
            sched_lag_us: lag.borrow().clone(),
        };
        let _ = tx.send(WorkerMsg::Done {
            worker,
            result: Box::new(result),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::h2::{group_of, H2Place};
    use crate::scenario::Transport;

    fn client(id: u32, h2_streams: Option<u32>) -> ClientSpec {
        let topic = pushbench_protocol::TopicId::parse("acme/app/builds/1/steps/1").unwrap();
        let mut spec = ClientSpec::for_test(Transport::SseH2, "/", &topic);
        spec.id = id;
        spec.h2 = h2_streams.map(|n| H2Place {
            group: group_of(id, n),
        });
        spec
    }

    #[test]
    fn h2_groups_are_dealt_whole() {
        let clients: Vec<ClientSpec> = (0..10).map(|i| client(i, Some(3))).collect();
        let shares = deal(2, clients);
        let ids: Vec<Vec<u32>> = shares
            .iter()
            .map(|s| s.iter().map(|c| c.id).collect())
            .collect();
        // Groups {0,1,2} {3,4,5} {6,7,8} {9}: even groups to worker 0, odd to worker 1.
        assert_eq!(ids, vec![vec![0, 1, 2, 6, 7, 8], vec![3, 4, 5, 9]]);
        for share in &shares {
            for c in share {
                let mates = share.iter().filter(|o| o.h2 == c.h2).count();
                let expected = if c.id == 9 { 1 } else { 3 };
                assert_eq!(mates, expected, "client {} has its whole group", c.id);
            }
        }
        // HTTP/1.1 clients still round-robin.
        let shares = deal(3, (0..5).map(|i| client(i, None)).collect());
        let ids: Vec<Vec<u32>> = shares
            .iter()
            .map(|s| s.iter().map(|c| c.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![0, 3], vec![1, 4], vec![2]]);
    }

    #[test]
    fn groups_hold_streams_per_connection_clients() {
        assert_eq!(group_of(0, 100), 0);
        assert_eq!(group_of(99, 100), 0);
        assert_eq!(group_of(100, 100), 1);
        assert_eq!(group_of(5, 1), 5);
        let groups: std::collections::BTreeSet<u32> = (0..250).map(|i| group_of(i, 100)).collect();
        assert_eq!(groups.len(), 3, "ceil(250 / 100) connections");
    }
}
