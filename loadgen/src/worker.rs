//! Worker threads: each runs a single-threaded tokio runtime with its share of the clients,
//! and owns one [`Stats`] they all write to. Once a second a worker sends its interval
//! snapshot to the collector; at the end it sends everything it recorded.
//!
//! Thread-per-core with no shared state on the hot path, as wrk does: thousands of clients
//! cost a task each, and recording an event is a histogram increment, not a channel send.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio::time::{interval, sleep_until, Instant, MissedTickBehavior};

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

/// Starts `workers` threads and deals the clients out round-robin.
pub fn start(
    workers: usize,
    clients: Vec<ClientSpec>,
    control: Arc<RunControl>,
    tx: UnboundedSender<WorkerMsg>,
) -> Vec<JoinHandle<()>> {
    let workers = workers.max(1);
    let mut shares: Vec<Vec<ClientSpec>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, c) in clients.into_iter().enumerate() {
        shares[i % workers].push(c);
    }
    shares
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
        for spec in clients {
            tasks.spawn_local(run_client(spec, stats.clone(), control.clone()));
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
