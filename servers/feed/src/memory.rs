//! The in-process hub: one bounded history ring per topic, which doubles as the live fan-out
//! buffer (see the lag policy in the crate docs).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use futures_util::stream;
use tokio::sync::watch;

use crate::backend::{
    drop_count, AppendReceipt, Backend, Delivery, Disconnected, FeedError, NewLine, ReadBatch,
    Subscription, TopicStatus,
};
use crate::line::Line;
use crate::topic::TopicId;

/// Limits of a [`MemoryBackend`].
#[derive(Clone, Copy, Debug)]
pub struct MemoryConfig {
    /// Lines kept per topic. Late subscribers and lagging ones are served from here.
    pub history: usize,
    /// Topics held at most; appends creating more fail with [`FeedError::TooManyTopics`].
    pub max_topics: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            history: 10_000,
            max_topics: 100_000,
        }
    }
}

/// The in-memory [`Backend`].
pub struct MemoryBackend {
    config: MemoryConfig,
    topics: RwLock<HashMap<TopicId, Arc<Topic>>>,
}

struct Topic {
    id: TopicId,
    state: Mutex<TopicState>,
    /// Bumped after every change of `state`; subscribers wait on it. A watch channel costs each
    /// subscriber one small receiver, and one send wakes them all.
    changed: watch::Sender<()>,
}

struct TopicState {
    ring: VecDeque<Arc<Line>>,
    capacity: usize,
    last_seq: u64,
    finished: bool,
    /// Id of the next cursor. Ids only grow, so their order is subscription order, which is
    /// how [`Backend::disconnect`] picks the oldest.
    next_cursor: u64,
    /// Ids of the cursors still open (made, not ended, not dropped).
    live: BTreeSet<u64>,
    /// Ids chosen by [`Backend::disconnect`] whose cursors have not noticed yet; each one
    /// ends (and leaves this set) when it next wakes.
    cut: HashSet<u64>,
}

impl TopicState {
    fn oldest_seq(&self) -> u64 {
        self.last_seq + 1 - self.ring.len() as u64
    }

    fn status(&self) -> TopicStatus {
        TopicStatus {
            last_seq: self.last_seq,
            oldest_seq: self.oldest_seq(),
            finished: self.finished,
        }
    }

    /// Lines after `after`, at most `limit`. Caller has checked `after` is within history.
    fn lines_after(&self, after: u64, limit: usize) -> Vec<Arc<Line>> {
        let start = (after + 1).saturating_sub(self.oldest_seq()) as usize;
        self.ring.iter().skip(start).take(limit).cloned().collect()
    }
}

impl MemoryBackend {
    pub fn new(config: MemoryConfig) -> Self {
        assert!(config.history > 0, "history must hold at least one line");
        MemoryBackend {
            config,
            topics: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, id: &TopicId) -> Result<Arc<Topic>, FeedError> {
        self.topics
            .read()
            .expect("topic map lock")
            .get(id)
            .cloned()
            .ok_or_else(|| FeedError::UnknownTopic(id.clone()))
    }

    /// The topic, created if new so that its first line gets `next_seq` (see
    /// [`Backend::open`]).
    fn get_or_create(&self, id: &TopicId, next_seq: u64) -> Result<Arc<Topic>, FeedError> {
        if let Ok(topic) = self.get(id) {
            return Ok(topic);
        }
        let mut topics = self.topics.write().expect("topic map lock");
        if let Some(topic) = topics.get(id) {
            return Ok(topic.clone());
        }
        if topics.len() >= self.config.max_topics {
            return Err(FeedError::TooManyTopics(self.config.max_topics));
        }
        let topic = Arc::new(Topic {
            id: id.clone(),
            state: Mutex::new(TopicState {
                ring: VecDeque::new(),
                capacity: self.config.history,
                last_seq: next_seq.max(1) - 1,
                finished: false,
                next_cursor: 0,
                live: BTreeSet::new(),
                cut: HashSet::new(),
            }),
            changed: watch::Sender::new(()),
        });
        topics.insert(id.clone(), topic.clone());
        Ok(topic)
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new(MemoryConfig::default())
    }
}

/// Resolves a cursor against a topic: none means "from the oldest line held"; beyond the head
/// is a client error, before history a loss.
fn check_cursor(topic: &TopicId, state: &TopicState, after: Option<u64>) -> Result<u64, FeedError> {
    let Some(after) = after else {
        return Ok(state.oldest_seq() - 1);
    };
    if after > state.last_seq {
        return Err(FeedError::BeyondHead {
            topic: topic.clone(),
            after,
            last_seq: state.last_seq,
        });
    }
    if after + 1 < state.oldest_seq() {
        return Err(FeedError::HistoryTruncated {
            topic: topic.clone(),
            after,
            oldest: state.oldest_seq(),
        });
    }
    Ok(after)
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn append(
        &self,
        topic: &TopicId,
        lines: Vec<NewLine>,
    ) -> Result<AppendReceipt, FeedError> {
        let t = self.get_or_create(topic, 1)?;
        let receipt = {
            let mut st = t.state.lock().expect("topic lock");
            if st.finished {
                return Err(FeedError::Finished(topic.clone()));
            }
            let first_seq = st.last_seq + 1;
            for new in lines {
                st.last_seq += 1;
                let line = Arc::new(Line::new(st.last_seq, new.ts, &new.text));
                if st.ring.len() == st.capacity {
                    st.ring.pop_front();
                }
                st.ring.push_back(line);
            }
            AppendReceipt {
                first_seq,
                last_seq: st.last_seq,
            }
        };
        if receipt.last_seq >= receipt.first_seq {
            t.changed.send_replace(());
        }
        Ok(receipt)
    }

    async fn open(&self, topic: &TopicId, next_seq: u64) -> Result<TopicStatus, FeedError> {
        let t = self.get_or_create(topic, next_seq)?;
        let status = t.state.lock().expect("topic lock").status();
        Ok(status)
    }

    async fn finish(&self, topic: &TopicId) -> Result<TopicStatus, FeedError> {
        let t = self.get(topic)?;
        let status = {
            let mut st = t.state.lock().expect("topic lock");
            st.finished = true;
            st.status()
        };
        t.changed.send_replace(());
        Ok(status)
    }

    async fn status(&self, topic: &TopicId) -> Result<TopicStatus, FeedError> {
        Ok(self.get(topic)?.state.lock().expect("topic lock").status())
    }

    async fn read(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<ReadBatch, FeedError> {
        let t = self.get(topic)?;
        let st = t.state.lock().expect("topic lock");
        let after = check_cursor(topic, &st, after)?;
        Ok(ReadBatch {
            lines: st.lines_after(after, limit),
            status: st.status(),
        })
    }

    async fn subscribe(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        max_batch: usize,
    ) -> Result<Subscription, FeedError> {
        let t = self.get(topic)?;
        // Subscribe to changes before checking the cursor: an append between the two is then
        // seen as a change, never missed.
        let mut changed = t.changed.subscribe();
        changed.mark_changed();
        let (after, id) = {
            let mut st = t.state.lock().expect("topic lock");
            let after = check_cursor(topic, &st, after)?;
            let id = st.next_cursor;
            st.next_cursor += 1;
            st.live.insert(id);
            (after, id)
        };
        let cursor = Cursor {
            topic: t,
            id,
            after,
            changed,
            max_batch: max_batch.max(1),
            done: false,
        };
        Ok(Subscription::new(stream::unfold(
            cursor,
            |mut c| async move {
                let delivery = c.next().await?;
                Some((delivery, c))
            },
        )))
    }

    async fn topics(&self) -> Vec<TopicId> {
        let mut ids: Vec<TopicId> = self
            .topics
            .read()
            .expect("topic map lock")
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    async fn disconnect(&self, topic: &TopicId, fraction: f64) -> Result<Disconnected, FeedError> {
        let t = self.get(topic)?;
        let report = {
            let mut st = t.state.lock().expect("topic lock");
            let open = st.live.len() as u64;
            let dropped = drop_count(fraction, open);
            // The oldest first: `live` is ordered by id, and ids by subscription.
            let chosen: Vec<u64> = st.live.iter().copied().take(dropped as usize).collect();
            for id in chosen {
                st.live.remove(&id);
                st.cut.insert(id);
            }
            Disconnected { dropped, open }
        };
        if report.dropped > 0 {
            // Wakes every cursor; those not cut find nothing new and wait on.
            t.changed.send_replace(());
        }
        Ok(report)
    }
}

/// One subscriber's position in its topic.
struct Cursor {
    topic: Arc<Topic>,
    /// This cursor's place in the topic's `live` (or `cut`) set.
    id: u64,
    /// Seq of the last line delivered.
    after: u64,
    changed: watch::Receiver<()>,
    max_batch: usize,
    /// Ended: it has left the topic's sets and yields nothing more.
    done: bool,
}

impl Drop for Cursor {
    /// A subscription dropped before its end (the client went away) is no longer open: it
    /// must not count, nor be chosen, in a later drop.
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut st) = self.topic.state.lock() {
                st.end_cursor(self.id);
            }
        }
    }
}

impl TopicState {
    /// Forgets a cursor that has ended, however it ended.
    fn end_cursor(&mut self, id: u64) {
        self.live.remove(&id);
        self.cut.remove(&id);
    }
}

impl Cursor {
    async fn next(&mut self) -> Option<Delivery> {
        if self.done {
            return None;
        }
        let delivery = self.step().await;
        if self.done {
            self.topic
                .state
                .lock()
                .expect("topic lock")
                .end_cursor(self.id);
        }
        delivery
    }

    async fn step(&mut self) -> Option<Delivery> {
        loop {
            // Wait for a change (the first call always passes: the receiver starts marked).
            // The sender lives as long as the topic, which this cursor holds, so this only
            // fails if the topic is gone; end the stream then.
            if self.changed.changed().await.is_err() {
                self.done = true;
                return None;
            }
            let st = self.topic.state.lock().expect("topic lock");
            if st.cut.contains(&self.id) {
                // Dropped on purpose: end like a lost connection, without `End`.
                self.done = true;
                return None;
            }
            if self.after + 1 < st.oldest_seq() {
                self.done = true;
                tracing::debug!(topic = %self.topic.id, after = self.after, "subscriber lagged");
                return Some(Delivery::Lagged {
                    missing_from: self.after + 1,
                    oldest_seq: st.oldest_seq(),
                });
            }
            if self.after < st.last_seq {
                let lines = st.lines_after(self.after, self.max_batch);
                self.after = lines.last().map(|l| l.seq).unwrap_or(self.after);
                // More may be waiting beyond this batch: stay marked so the next call reads on
                // without waiting for another append.
                if self.after < st.last_seq || st.finished {
                    self.changed.mark_changed();
                }
                return Some(Delivery::Lines(lines));
            }
            if st.finished {
                self.done = true;
                return Some(Delivery::End {
                    last_seq: st.last_seq,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::Duration;

    fn topic() -> TopicId {
        TopicId::new("acme", "app", "1", "build").unwrap()
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

    fn seqs(d: &Delivery) -> Vec<u64> {
        match d {
            Delivery::Lines(l) => l.iter().map(|l| l.seq).collect(),
            other => panic!("expected lines, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn backlog_then_live_without_gap_or_duplicate() {
        let b = MemoryBackend::default();
        let t = topic();
        b.append(&t, lines(&["a", "b", "c"])).await.unwrap();
        let mut sub = b.subscribe(&t, Some(1), 100).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![2, 3]);
        b.append(&t, lines(&["d"])).await.unwrap();
        b.append(&t, lines(&["e"])).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![4, 5]);
        b.finish(&t).await.unwrap();
        assert_eq!(sub.next().await, Some(Delivery::End { last_seq: 5 }));
        assert_eq!(sub.next().await, None);
    }

    #[tokio::test]
    async fn appends_racing_a_subscribe_are_neither_lost_nor_repeated() {
        let b = Arc::new(MemoryBackend::default());
        let t = topic();
        b.append(&t, lines(&["first"])).await.unwrap();
        let writer = {
            let (b, t) = (b.clone(), t.clone());
            tokio::spawn(async move {
                for i in 0..2000 {
                    b.append(&t, lines(&[&i.to_string()])).await.unwrap();
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
            while let Some(d) = sub.next().await {
                match d {
                    Delivery::Lines(ls) => {
                        assert!(ls.len() <= 64);
                        for l in ls {
                            assert_eq!(l.seq, expect);
                            expect += 1;
                        }
                    }
                    Delivery::End { last_seq } => assert_eq!(last_seq, 2001),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(expect, 2002);
        }
    }

    #[tokio::test]
    async fn late_subscriber_of_a_finished_step_gets_history_then_end() {
        let b = MemoryBackend::default();
        let t = topic();
        b.append(&t, lines(&["a", "b"])).await.unwrap();
        b.finish(&t).await.unwrap();
        assert!(matches!(
            b.append(&t, lines(&["c"])).await,
            Err(FeedError::Finished(_))
        ));
        let mut sub = b.subscribe(&t, Some(0), 10).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![1, 2]);
        assert_eq!(sub.next().await, Some(Delivery::End { last_seq: 2 }));
    }

    #[tokio::test]
    async fn a_subscriber_behind_history_is_told_and_closed() {
        let b = MemoryBackend::new(MemoryConfig {
            history: 4,
            max_topics: 10,
        });
        let t = topic();
        b.append(&t, lines(&["1", "2", "3"])).await.unwrap();
        let mut slow = b.subscribe(&t, Some(0), 2).await.unwrap();
        assert_eq!(seqs(&slow.next().await.unwrap()), vec![1, 2]);
        // Seven more lines: the ring (4) now holds 7..=10; seq 3 is gone before `slow` read it.
        b.append(&t, lines(&["4", "5", "6", "7", "8", "9", "10"]))
            .await
            .unwrap();
        assert_eq!(
            slow.next().await,
            Some(Delivery::Lagged {
                missing_from: 3,
                oldest_seq: 7
            })
        );
        assert_eq!(slow.next().await, None);
        // A subscriber within the ring is resynchronised from it.
        let mut ok = b.subscribe(&t, Some(6), 10).await.unwrap();
        assert_eq!(seqs(&ok.next().await.unwrap()), vec![7, 8, 9, 10]);
        // A client without a cursor starts at the oldest line held.
        let mut fresh = b.subscribe(&t, None, 10).await.unwrap();
        assert_eq!(seqs(&fresh.next().await.unwrap()), vec![7, 8, 9, 10]);
        assert_eq!(b.read(&t, None, 2).await.unwrap().lines[0].seq, 7);
        // Explicit cursors outside history are refused up front.
        assert!(matches!(
            b.subscribe(&t, Some(2), 10).await,
            Err(FeedError::HistoryTruncated { oldest: 7, .. })
        ));
        assert!(matches!(
            b.subscribe(&t, Some(11), 10).await,
            Err(FeedError::BeyondHead { last_seq: 10, .. })
        ));
    }

    #[tokio::test]
    async fn idle_subscription_waits_for_the_next_append() {
        let b = Arc::new(MemoryBackend::default());
        let t = topic();
        b.append(&t, lines(&["a"])).await.unwrap();
        let mut sub = b.subscribe(&t, Some(1), 10).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(pending.is_err(), "nothing new: the subscription must wait");
        b.append(&t, lines(&["b"])).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![2]);
    }

    #[tokio::test]
    async fn disconnect_ends_open_subscriptions_only() {
        let b = MemoryBackend::default();
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
        assert_eq!(seqs(&resumed.next().await.unwrap()), vec![1, 2]);
        b.finish(&t).await.unwrap();
        assert_eq!(resumed.next().await, Some(Delivery::End { last_seq: 2 }));
        assert!(matches!(
            b.disconnect(&TopicId::new("acme", "app", "1", "none").unwrap(), 1.0)
                .await,
            Err(FeedError::UnknownTopic(_))
        ));
    }

    #[tokio::test]
    async fn a_partial_disconnect_ends_the_oldest_and_spares_the_rest() {
        let b = MemoryBackend::default();
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
        // The two others wait undisturbed, then get the next line.
        for sub in &mut subs[3..] {
            let pending = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
            assert!(pending.is_err(), "a spared subscription must keep waiting");
        }
        b.append(&t, lines(&["b"])).await.unwrap();
        for sub in &mut subs[3..] {
            assert_eq!(seqs(&within(sub.next()).await.unwrap()), vec![2]);
        }
        // The survivors are now the oldest: a second drop takes the older of the two first.
        let late = b.subscribe(&t, Some(2), 10).await.unwrap();
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
        let mut late = late;
        b.append(&t, lines(&["c"])).await.unwrap();
        assert_eq!(seqs(&within(late.next()).await.unwrap()), vec![3]);
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

    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .expect("no answer within 5 s")
    }

    /// A server restarted without its history: the topic goes on at seq 101.
    #[tokio::test]
    async fn an_opened_topic_continues_the_numbering_and_refuses_older_cursors() {
        let b = MemoryBackend::default();
        let t = topic();
        assert_eq!(
            b.open(&t, 101).await.unwrap(),
            TopicStatus {
                last_seq: 100,
                oldest_seq: 101,
                finished: false
            }
        );
        // Cursors from before the restart: history starts at 101, whatever came before.
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
        // A client at 100 saw everything: it waits for live lines; so does one without a cursor.
        let mut resumed = b.subscribe(&t, Some(100), 10).await.unwrap();
        let mut fresh = b.subscribe(&t, None, 10).await.unwrap();
        assert!(b.read(&t, Some(100), 10).await.unwrap().lines.is_empty());
        assert!(b.read(&t, None, 10).await.unwrap().lines.is_empty());
        let pending = tokio::time::timeout(Duration::from_millis(50), resumed.next()).await;
        assert!(
            pending.is_err(),
            "nothing new yet: the subscription must wait"
        );
        let receipt = b.append(&t, lines(&["a", "b"])).await.unwrap();
        assert_eq!((receipt.first_seq, receipt.last_seq), (101, 102));
        assert_eq!(seqs(&within(resumed.next()).await.unwrap()), vec![101, 102]);
        assert_eq!(seqs(&within(fresh.next()).await.unwrap()), vec![101, 102]);
        assert_eq!(b.read(&t, Some(100), 10).await.unwrap().lines.len(), 2);
    }

    #[tokio::test]
    async fn open_leaves_an_existing_topic_alone() {
        let b = MemoryBackend::default();
        let t = topic();
        b.append(&t, lines(&["a", "b"])).await.unwrap();
        let before = b.status(&t).await.unwrap();
        assert_eq!(b.open(&t, 50).await.unwrap(), before);
        assert_eq!(b.status(&t).await.unwrap(), before);
        assert_eq!(b.append(&t, lines(&["c"])).await.unwrap().first_seq, 3);
        // Opening twice keeps the first numbering; 0 and 1 both mean "from the start".
        let other = TopicId::new("acme", "app", "1", "other").unwrap();
        assert_eq!(b.open(&other, 7).await.unwrap().oldest_seq, 7);
        assert_eq!(b.open(&other, 1).await.unwrap().oldest_seq, 7);
        let zero = TopicId::new("acme", "app", "1", "zero").unwrap();
        assert_eq!(b.open(&zero, 0).await.unwrap().last_seq, 0);
        assert_eq!(b.append(&zero, lines(&["x"])).await.unwrap().first_seq, 1);
    }

    #[tokio::test]
    async fn unknown_topics_and_the_topic_limit() {
        let b = MemoryBackend::new(MemoryConfig {
            history: 10,
            max_topics: 1,
        });
        let t = topic();
        assert!(matches!(
            b.subscribe(&t, Some(0), 1).await,
            Err(FeedError::UnknownTopic(_))
        ));
        assert!(matches!(
            b.finish(&t).await,
            Err(FeedError::UnknownTopic(_))
        ));
        b.append(&t, lines(&["a"])).await.unwrap();
        let other = TopicId::new("acme", "app", "1", "other").unwrap();
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
}
