//! One behaviour suite for every [`Backend`]: each case runs against [`MemoryBackend`] and
//! against [`RedisBackend`] on a real `redis-server` (one per test, on its own port). Then the
//! cases only Redis has: several instances on one Redis, outages, memory per line.
//!
//! Deliveries may be batched differently by the two backends (the Redis one receives lines
//! from its reader as they come), so the cases compare the seqs delivered, not the batches.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pushbench_feed::backend::NewLine;
use pushbench_feed::memory::MemoryConfig;
use pushbench_feed::redis::{RedisBackend, RedisConfig};
use pushbench_feed::{
    Backend, Delivery, Disconnected, FeedError, MemoryBackend, SharedBackend, Subscription,
    TopicId, TopicStatus,
};
use redis_server::RedisServer;

/// A backend under test and whatever must live as long as it (its Redis).
struct Fixture {
    backend: SharedBackend,
    _redis: Option<RedisServer>,
}

impl std::ops::Deref for Fixture {
    type Target = SharedBackend;
    fn deref(&self) -> &SharedBackend {
        &self.backend
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    Redis,
}

async fn make(kind: Kind, history: usize, max_topics: usize) -> Fixture {
    match kind {
        Kind::Memory => Fixture {
            backend: Arc::new(MemoryBackend::new(MemoryConfig {
                history,
                max_topics,
            })),
            _redis: None,
        },
        Kind::Redis => {
            let redis = RedisServer::start();
            let backend = redis_backend(&redis, "suite", history, max_topics).await;
            Fixture {
                backend: Arc::new(backend),
                _redis: Some(redis),
            }
        }
    }
}

async fn redis_backend(
    redis: &RedisServer,
    prefix: &str,
    history: usize,
    max_topics: usize,
) -> RedisBackend {
    RedisBackend::connect(RedisConfig {
        url: redis.url(),
        prefix: prefix.into(),
        history,
        max_topics,
    })
    .await
    .expect("connecting to the test redis-server")
}

/// Each case, once per backend.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $case() { super::$case(super::Kind::Memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $case() { super::$case(super::Kind::Redis).await })*
        }
    };
}

suite!(
    backlog_then_live_without_gap_or_duplicate,
    appends_racing_a_subscribe_are_neither_lost_nor_repeated,
    late_subscriber_of_a_finished_step_gets_history_then_end,
    a_subscriber_behind_history_is_told_and_closed,
    idle_subscription_waits_for_the_next_append,
    disconnect_ends_open_subscriptions_only,
    a_partial_disconnect_ends_the_oldest_and_spares_the_rest,
    an_opened_topic_continues_the_numbering_and_refuses_older_cursors,
    open_leaves_an_existing_topic_alone,
    unknown_topics_and_the_topic_limit,
    topics_are_listed_in_order,
);

fn topic() -> TopicId {
    TopicId::new("acme", "app", "1", "build").unwrap()
}

fn named(step: &str) -> TopicId {
    TopicId::new("acme", "app", "1", step).unwrap()
}

fn lines(texts: &[&str]) -> Vec<NewLine> {
    texts
        .iter()
        .map(|t| NewLine {
            ts: 1,
            text: t.to_string(),
        })
        .collect()
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("no answer within 5 s")
}

/// The seqs of the next `n` lines, over as many deliveries as it takes.
async fn next_seqs(sub: &mut Subscription, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        match within(sub.next()).await {
            Some(Delivery::Lines(ls)) => {
                assert!(!ls.is_empty(), "an empty delivery");
                seqs.extend(ls.iter().map(|l| l.seq));
            }
            other => panic!("expected lines after {seqs:?}, got {other:?}"),
        }
    }
    seqs
}

/// Nothing arrives within 50 ms.
async fn stays_quiet(sub: &mut Subscription, what: &str) {
    let pending = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
    assert!(pending.is_err(), "{what}: got {pending:?}");
}

async fn backlog_then_live_without_gap_or_duplicate(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["a", "b", "c"])).await.unwrap();
    let mut sub = b.subscribe(&t, Some(1), 100).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 2).await, vec![2, 3]);
    b.append(&t, lines(&["d"])).await.unwrap();
    b.append(&t, lines(&["e"])).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 2).await, vec![4, 5]);
    b.finish(&t).await.unwrap();
    assert_eq!(
        within(sub.next()).await,
        Some(Delivery::End { last_seq: 5 })
    );
    assert_eq!(within(sub.next()).await, None);
    // The payload is the contract's JSON, rebuilt from what the backend stored.
    let read = b.read(&t, Some(0), 1).await.unwrap();
    assert_eq!(read.lines[0].json_str(), r#"{"seq":1,"ts":1,"line":"a"}"#);
}

async fn appends_racing_a_subscribe_are_neither_lost_nor_repeated(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["first"])).await.unwrap();
    let writer = {
        let (b, t) = (b.backend.clone(), t.clone());
        tokio::spawn(async move {
            for i in 0..1000 {
                b.append(&t, lines(&[&format!("{i}\r\n\0 \"x\"")]))
                    .await
                    .unwrap();
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            b.finish(&t).await.unwrap();
        })
    };
    let mut subs = Vec::new();
    for _ in 0..20 {
        subs.push(b.subscribe(&t, Some(0), 64).await.unwrap());
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    for mut sub in subs {
        let mut expect = 1;
        while let Some(d) = within(sub.next()).await {
            match d {
                Delivery::Lines(ls) => {
                    assert!(ls.len() <= 64 && !ls.is_empty());
                    for l in ls {
                        assert_eq!(l.seq, expect);
                        expect += 1;
                    }
                }
                Delivery::End { last_seq } => assert_eq!(last_seq, 1001),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(expect, 1002);
    }
}

async fn late_subscriber_of_a_finished_step_gets_history_then_end(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["a", "b"])).await.unwrap();
    b.finish(&t).await.unwrap();
    assert!(matches!(
        b.append(&t, lines(&["c"])).await,
        Err(FeedError::Finished(_))
    ));
    assert!(
        b.finish(&t).await.unwrap().finished,
        "finishing twice is fine"
    );
    let mut sub = b.subscribe(&t, Some(0), 10).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 2).await, vec![1, 2]);
    assert_eq!(
        within(sub.next()).await,
        Some(Delivery::End { last_seq: 2 })
    );
    let mut at_end = b.subscribe(&t, Some(2), 10).await.unwrap();
    assert_eq!(
        within(at_end.next()).await,
        Some(Delivery::End { last_seq: 2 })
    );
}

async fn a_subscriber_behind_history_is_told_and_closed(kind: Kind) {
    let b = make(kind, 4, 10).await;
    let t = topic();
    b.append(&t, lines(&["1", "2", "3"])).await.unwrap();
    let mut slow = b.subscribe(&t, Some(0), 2).await.unwrap();
    assert_eq!(next_seqs(&mut slow, 2).await, vec![1, 2]);
    // Seven more lines: history (4) now holds 7..=10; seq 3 is gone before `slow` read it.
    b.append(&t, lines(&["4", "5", "6", "7", "8", "9", "10"]))
        .await
        .unwrap();
    assert_eq!(
        within(slow.next()).await,
        Some(Delivery::Lagged {
            missing_from: 3,
            oldest_seq: 7
        })
    );
    assert_eq!(within(slow.next()).await, None);
    assert_eq!(
        b.status(&t).await.unwrap(),
        TopicStatus {
            last_seq: 10,
            oldest_seq: 7,
            finished: false
        }
    );
    // A subscriber within history is resynchronised from it.
    let mut ok = b.subscribe(&t, Some(6), 10).await.unwrap();
    assert_eq!(next_seqs(&mut ok, 4).await, vec![7, 8, 9, 10]);
    // A client without a cursor starts at the oldest line held.
    let mut fresh = b.subscribe(&t, None, 10).await.unwrap();
    assert_eq!(next_seqs(&mut fresh, 4).await, vec![7, 8, 9, 10]);
    assert_eq!(b.read(&t, None, 2).await.unwrap().lines[0].seq, 7);
    // Explicit cursors outside history are refused up front.
    assert!(matches!(
        b.subscribe(&t, Some(2), 10).await,
        Err(FeedError::HistoryTruncated { oldest: 7, .. })
    ));
    assert_eq!(
        b.read(&t, Some(5), 10).await.unwrap_err(),
        FeedError::HistoryTruncated {
            topic: t.clone(),
            after: 5,
            oldest: 7
        }
    );
    assert!(matches!(
        b.subscribe(&t, Some(11), 10).await,
        Err(FeedError::BeyondHead { last_seq: 10, .. })
    ));
    // A subscriber that falls behind while open (reading slowly in batches of 1) lags too.
    let mut behind = b.subscribe(&t, Some(6), 1).await.unwrap();
    assert_eq!(next_seqs(&mut behind, 1).await, vec![7]);
    let mut live = b.subscribe(&t, Some(10), 10).await.unwrap();
    b.append(&t, lines(&["11", "12", "13", "14"]))
        .await
        .unwrap();
    // Once a live subscriber has them, every subscriber's view of history has moved on.
    assert_eq!(next_seqs(&mut live, 4).await, vec![11, 12, 13, 14]);
    let mut got = Vec::new();
    loop {
        match within(behind.next()).await {
            Some(Delivery::Lines(ls)) => got.extend(ls.iter().map(|l| l.seq)),
            Some(Delivery::Lagged {
                missing_from,
                oldest_seq,
            }) => {
                assert_eq!((missing_from, oldest_seq), (8, 11), "after {got:?}");
                break;
            }
            other => panic!("{other:?} after {got:?}"),
        }
    }
    assert!(got.is_empty(), "{got:?}");
}

async fn idle_subscription_waits_for_the_next_append(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["a"])).await.unwrap();
    let mut sub = b.subscribe(&t, Some(1), 10).await.unwrap();
    stays_quiet(&mut sub, "nothing new: the subscription must wait").await;
    b.append(&t, lines(&["b"])).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 1).await, vec![2]);
}

async fn disconnect_ends_open_subscriptions_only(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["a", "b"])).await.unwrap();
    let mut waiting = b.subscribe(&t, Some(2), 10).await.unwrap();
    let mut behind = b.subscribe(&t, Some(0), 10).await.unwrap();
    assert_eq!(
        b.disconnect(&t, 1.0).await.unwrap(),
        Disconnected {
            dropped: 2,
            open: 2
        }
    );
    // Neither gets `End`, nor the lines it had not read yet: its stream just stops.
    assert_eq!(within(waiting.next()).await, None);
    assert_eq!(within(behind.next()).await, None);
    // A resubscription from the client's own cursor carries on.
    let mut resumed = b.subscribe(&t, Some(0), 10).await.unwrap();
    assert_eq!(next_seqs(&mut resumed, 2).await, vec![1, 2]);
    b.finish(&t).await.unwrap();
    assert_eq!(
        within(resumed.next()).await,
        Some(Delivery::End { last_seq: 2 })
    );
    assert!(matches!(
        b.disconnect(&named("none"), 1.0).await,
        Err(FeedError::UnknownTopic(_))
    ));
}

async fn a_partial_disconnect_ends_the_oldest_and_spares_the_rest(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["a"])).await.unwrap();
    let mut subs = Vec::new();
    for _ in 0..5 {
        subs.push(b.subscribe(&t, Some(1), 10).await.unwrap());
    }
    // One more that goes away before the drop: it is not open, so neither counted nor cut.
    drop(b.subscribe(&t, Some(1), 10).await.unwrap());
    // ceil(0.5 × 5) = 3: the three oldest.
    assert_eq!(
        b.disconnect(&t, 0.5).await.unwrap(),
        Disconnected {
            dropped: 3,
            open: 5
        }
    );
    for sub in &mut subs[..3] {
        assert_eq!(within(sub.next()).await, None);
    }
    for sub in &mut subs[3..] {
        stays_quiet(sub, "a spared subscription must keep waiting").await;
    }
    b.append(&t, lines(&["b"])).await.unwrap();
    for sub in &mut subs[3..] {
        assert_eq!(next_seqs(sub, 1).await, vec![2]);
    }
    // The survivors are now the oldest: a second drop takes the older of the two first.
    let mut late = b.subscribe(&t, Some(2), 10).await.unwrap();
    assert_eq!(
        b.disconnect(&t, 0.4).await.unwrap(),
        Disconnected {
            dropped: 2,
            open: 3
        }
    );
    for sub in &mut subs[3..] {
        assert_eq!(within(sub.next()).await, None);
    }
    drop(subs);
    b.append(&t, lines(&["c"])).await.unwrap();
    assert_eq!(next_seqs(&mut late, 1).await, vec![3]);
    // A finished subscription is no longer open either.
    b.finish(&t).await.unwrap();
    assert_eq!(
        within(late.next()).await,
        Some(Delivery::End { last_seq: 3 })
    );
    assert_eq!(
        b.disconnect(&t, 1.0).await.unwrap(),
        Disconnected {
            dropped: 0,
            open: 0
        }
    );
}

/// A server restarted without its history: the topic goes on at seq 101.
async fn an_opened_topic_continues_the_numbering_and_refuses_older_cursors(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    assert_eq!(
        b.open(&t, 101).await.unwrap(),
        TopicStatus {
            last_seq: 100,
            oldest_seq: 101,
            finished: false
        }
    );
    for after in [0, 1, 99] {
        assert_eq!(
            b.read(&t, Some(after), 10).await.unwrap_err(),
            FeedError::HistoryTruncated {
                topic: t.clone(),
                after,
                oldest: 101
            }
        );
        assert!(matches!(
            b.subscribe(&t, Some(after), 10).await,
            Err(FeedError::HistoryTruncated { oldest: 101, .. })
        ));
    }
    assert!(matches!(
        b.read(&t, Some(101), 10).await,
        Err(FeedError::BeyondHead { last_seq: 100, .. })
    ));
    let mut resumed = b.subscribe(&t, Some(100), 10).await.unwrap();
    let mut fresh = b.subscribe(&t, None, 10).await.unwrap();
    assert!(b.read(&t, Some(100), 10).await.unwrap().lines.is_empty());
    assert!(b.read(&t, None, 10).await.unwrap().lines.is_empty());
    stays_quiet(&mut resumed, "nothing new yet: the subscription must wait").await;
    let receipt = b.append(&t, lines(&["a", "b"])).await.unwrap();
    assert_eq!((receipt.first_seq, receipt.last_seq), (101, 102));
    assert_eq!(next_seqs(&mut resumed, 2).await, vec![101, 102]);
    assert_eq!(next_seqs(&mut fresh, 2).await, vec![101, 102]);
    assert_eq!(b.read(&t, Some(100), 10).await.unwrap().lines.len(), 2);
}

async fn open_leaves_an_existing_topic_alone(kind: Kind) {
    let b = make(kind, 10_000, 100).await;
    let t = topic();
    b.append(&t, lines(&["a", "b"])).await.unwrap();
    let before = b.status(&t).await.unwrap();
    assert_eq!(b.open(&t, 50).await.unwrap(), before);
    assert_eq!(b.status(&t).await.unwrap(), before);
    assert_eq!(b.append(&t, lines(&["c"])).await.unwrap().first_seq, 3);
    let other = named("other");
    assert_eq!(b.open(&other, 7).await.unwrap().oldest_seq, 7);
    assert_eq!(b.open(&other, 1).await.unwrap().oldest_seq, 7);
    let zero = named("zero");
    assert_eq!(b.open(&zero, 0).await.unwrap().last_seq, 0);
    assert_eq!(b.append(&zero, lines(&["x"])).await.unwrap().first_seq, 1);
    // An empty append creates nothing new and names where the next line goes.
    let receipt = b.append(&zero, Vec::new()).await.unwrap();
    assert_eq!((receipt.first_seq, receipt.last_seq), (2, 1));
}

async fn unknown_topics_and_the_topic_limit(kind: Kind) {
    let b = make(kind, 10, 1).await;
    let t = topic();
    assert!(matches!(
        b.subscribe(&t, Some(0), 1).await,
        Err(FeedError::UnknownTopic(_))
    ));
    assert!(matches!(
        b.finish(&t).await,
        Err(FeedError::UnknownTopic(_))
    ));
    assert!(matches!(
        b.status(&t).await,
        Err(FeedError::UnknownTopic(_))
    ));
    assert!(matches!(
        b.read(&t, None, 1).await,
        Err(FeedError::UnknownTopic(_))
    ));
    b.append(&t, lines(&["a"])).await.unwrap();
    let other = named("other");
    assert!(matches!(
        b.append(&other, lines(&["a"])).await,
        Err(FeedError::TooManyTopics(1))
    ));
    assert!(matches!(
        b.open(&other, 5).await,
        Err(FeedError::TooManyTopics(1))
    ));
    let read = b.read(&t, Some(0), 10).await.unwrap();
    assert_eq!(read.lines.len(), 1);
    assert_eq!(read.status.last_seq, 1);
}

async fn topics_are_listed_in_order(kind: Kind) {
    let b = make(kind, 10, 10).await;
    assert!(b.topics().await.is_empty());
    for step in ["b", "a", "c"] {
        b.open(&named(step), 1).await.unwrap();
    }
    assert_eq!(b.topics().await, vec![named("a"), named("b"), named("c")]);
}

// ---- Redis only: several instances, outages, memory. ----

#[tokio::test]
async fn two_instances_racing_appends_get_every_seq_once() {
    let redis = RedisServer::start();
    let a: SharedBackend = Arc::new(redis_backend(&redis, "race", 100_000, 10).await);
    let b: SharedBackend = Arc::new(redis_backend(&redis, "race", 100_000, 10).await);
    let t = topic();
    let writer = |backend: SharedBackend, n: usize| {
        let t = t.clone();
        tokio::spawn(async move {
            let mut receipts = Vec::new();
            for i in 0..300 {
                let batch: Vec<&str> = vec!["x"; 1 + (i + n) % 3];
                receipts.push(backend.append(&t, lines(&batch)).await.unwrap());
            }
            receipts
        })
    };
    let (ra, rb) = tokio::join!(writer(a.clone(), 0), writer(b.clone(), 1));
    let mut seqs: Vec<u64> = ra
        .unwrap()
        .into_iter()
        .chain(rb.unwrap())
        .flat_map(|r| r.first_seq..=r.last_seq)
        .collect();
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "a gap or a duplicate");
    assert_eq!(b.status(&t).await.unwrap().last_seq, n);
    let all = a.read(&t, Some(0), 10_000).await.unwrap();
    assert!(all.lines.iter().map(|l| l.seq).eq(1..=n));
}

#[tokio::test]
async fn a_subscriber_on_one_instance_sees_lines_and_finish_through_another() {
    let redis = RedisServer::start();
    let a = redis_backend(&redis, "pair", 1000, 10).await;
    let b = redis_backend(&redis, "pair", 1000, 10).await;
    let t = topic();
    a.append(&t, lines(&["1", "2"])).await.unwrap();
    let mut sub = b.subscribe(&t, Some(0), 100).await.unwrap();
    let mut fresh_topic = {
        // A topic's first subscriber on an instance must not wait out the reader's BLOCK.
        let u = named("new");
        a.open(&u, 1).await.unwrap();
        let sub = b.subscribe(&u, Some(0), 10).await.unwrap();
        let started = Instant::now();
        a.append(&u, lines(&["n"])).await.unwrap();
        (sub, started)
    };
    assert_eq!(next_seqs(&mut fresh_topic.0, 1).await, vec![1]);
    assert!(
        fresh_topic.1.elapsed() < Duration::from_millis(500),
        "a new topic's first line took {:?}",
        fresh_topic.1.elapsed()
    );
    assert_eq!(next_seqs(&mut sub, 2).await, vec![1, 2]);
    a.append(&t, lines(&["3"])).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 1).await, vec![3]);
    a.append(&t, lines(&["4", "5"])).await.unwrap();
    a.finish(&t).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 2).await, vec![4, 5]);
    assert_eq!(
        within(sub.next()).await,
        Some(Delivery::End { last_seq: 5 })
    );
    assert!(matches!(
        b.append(&t, lines(&["6"])).await,
        Err(FeedError::Finished(_))
    ));
}

#[tokio::test]
async fn a_disconnect_through_one_instance_drops_subscribers_on_all() {
    let redis = RedisServer::start();
    let a = redis_backend(&redis, "drop", 1000, 10).await;
    let b = redis_backend(&redis, "drop", 1000, 10).await;
    let t = topic();
    a.append(&t, lines(&["1"])).await.unwrap();
    let mut on_a = a.subscribe(&t, Some(1), 10).await.unwrap();
    let mut on_b: Vec<Subscription> = Vec::new();
    for _ in 0..2 {
        on_b.push(b.subscribe(&t, Some(1), 10).await.unwrap());
    }
    assert_eq!(
        a.disconnect(&t, 1.0).await.unwrap(),
        Disconnected {
            dropped: 3,
            open: 3
        }
    );
    assert_eq!(within(on_a.next()).await, None);
    for sub in &mut on_b {
        assert_eq!(within(sub.next()).await, None);
    }
    // Per instance, oldest first: half of B's two is one, the older.
    let mut again: Vec<Subscription> = Vec::new();
    for _ in 0..2 {
        again.push(b.subscribe(&t, Some(1), 10).await.unwrap());
    }
    assert_eq!(
        a.disconnect(&t, 0.5).await.unwrap(),
        Disconnected {
            dropped: 1,
            open: 2
        }
    );
    assert_eq!(within(again[0].next()).await, None);
    stays_quiet(&mut again[1], "the younger one is spared").await;
}

#[tokio::test]
async fn subscriptions_wait_through_a_redis_restart_and_go_on_without_gap() {
    let mut redis = RedisServer::start();
    let a = redis_backend(&redis, "outage", 1000, 10).await;
    let b = redis_backend(&redis, "outage", 1000, 10).await;
    let t = topic();
    a.append(&t, lines(&["1", "2"])).await.unwrap();
    let mut sub = b.subscribe(&t, Some(0), 100).await.unwrap();
    assert_eq!(next_seqs(&mut sub, 2).await, vec![1, 2]);

    redis.stop();
    assert!(matches!(
        a.append(&t, lines(&["lost?"])).await,
        Err(FeedError::Backend(_))
    ));
    assert!(matches!(a.status(&t).await, Err(FeedError::Backend(_))));
    stays_quiet(&mut sub, "nothing to deliver while Redis is away").await;
    std::thread::sleep(Duration::from_millis(300));
    redis.restart(Duration::ZERO);

    // The command connection reconnects by itself; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let receipt = loop {
        match a.append(&t, lines(&["3", "4"])).await {
            Ok(r) => break r,
            Err(FeedError::Backend(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("Redis did not come back: {e}"),
        }
    };
    assert_eq!((receipt.first_seq, receipt.last_seq), (3, 4));
    assert_eq!(next_seqs(&mut sub, 2).await, vec![3, 4]);
    a.finish(&t).await.unwrap();
    assert_eq!(
        within(sub.next()).await,
        Some(Delivery::End { last_seq: 4 })
    );
}

#[tokio::test]
async fn an_unreachable_or_malformed_url_fails_fast_and_names_it() {
    let config = |url: &str| RedisConfig {
        url: url.into(),
        prefix: "x".into(),
        history: 10,
        max_topics: 10,
    };
    let e = RedisBackend::connect(config("redis://:x"))
        .await
        .err()
        .expect("a bad URL");
    assert!(e.to_string().contains("redis://:x"), "{e}");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let e = RedisBackend::connect(config(&url))
        .await
        .err()
        .expect("nothing listens");
    assert!(e.to_string().contains(&url), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// `MEMORY USAGE` of a stream of 10,000 lines of 120 bytes (the figure the module docs cite).
#[tokio::test]
async fn stream_memory_per_line() {
    let redis = RedisServer::start();
    let b = redis_backend(&redis, "mem", 10_000, 10).await;
    let t = topic();
    let text = "x".repeat(120);
    let ts = pushbench_feed::clock::unix_nanos();
    for chunk in 0..100u64 {
        let batch = (0..100u64)
            .map(|i| NewLine {
                ts: ts + (chunk * 100 + i) * 1_000_000,
                text: text.clone(),
            })
            .collect();
        b.append(&t, batch).await.unwrap();
    }
    let reply = redis
        .command(&format!("MEMORY USAGE mem:topic:{t} SAMPLES 0"))
        .unwrap();
    let bytes: u64 = reply.trim_start_matches(':').trim().parse().unwrap();
    let per_line = bytes as f64 / 10_000.0;
    eprintln!("stream of 10,000 lines of 120 bytes: {bytes} bytes, {per_line:.1} per line");
    assert!(
        (120.0..200.0).contains(&per_line),
        "{per_line} bytes per line"
    );
}

/// A generator (the built-in publisher) on Redis: started on a topic Redis already holds it
/// goes on after its last seq; through a Redis restart it loses no line, sends none twice,
/// and every line keeps its scheduled `ts` (the outage shows as lateness).
#[test]
fn a_generator_continues_a_held_topic_and_loses_nothing_through_a_restart() {
    use pushbench_feed::generator::{self, GeneratorConfig};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut redis = RedisServer::start();
    let backend: SharedBackend = Arc::new(rt.block_on(redis_backend(&redis, "gen", 10_000, 10)));
    let config = GeneratorConfig {
        topics: 1,
        lines_per_sec: 100.0,
        ..GeneratorConfig::default()
    };
    let t = config.topic_ids().unwrap().remove(0);
    // Lines from a publisher before this one.
    rt.block_on(backend.append(&t, lines(&["old 1", "old 2", "old 3"])))
        .unwrap();
    let shutdown = pushbench_feed::Shutdown::new();
    let handle = generator::spawn(
        config,
        backend.clone(),
        pushbench_feed::Metrics::new(10),
        shutdown.clone(),
        rt.handle().clone(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    redis.stop();
    std::thread::sleep(Duration::from_millis(300));
    redis.restart(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(600));
    shutdown.trigger();
    let report = handle.join().unwrap();
    let read = rt.block_on(backend.read(&t, Some(0), 10_000)).unwrap();
    assert!(
        read.lines
            .iter()
            .map(|l| l.seq)
            .eq(1..=read.status.last_seq),
        "a gap or a duplicate"
    );
    assert!(!read.lines[3].json_str().contains("old"));
    let generated = &read.lines[3..];
    assert_eq!(report.lines, generated.len() as u64, "{report:?}");
    // 1.2 s at 100 lines/s, scheduled 10 ms apart whatever the outage did.
    assert!(generated.len() >= 100, "{} lines", generated.len());
    for w in generated.windows(2) {
        let gap = w[1].ts - w[0].ts;
        assert!((9_900_000..=10_100_000).contains(&gap), "ts gap {gap}");
    }
    assert!(
        report.max_lateness >= Duration::from_millis(250),
        "the outage should show as lateness: {report:?}"
    );
}
