//! The in-process hub: one bounded history ring per topic, which doubles as the live fan-out
//! buffer (see the lag policy in the crate docs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::backend::{
    AppendReceipt, Backend, Delivery, Disconnected, FeedError, NewLine, ReadBatch, Subscription,
    TopicStatus,
};
use crate::cursor::{self, check_cursor, OpenCursors, Position, Ring, Subscriber, Taken};
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
    /// The topic's whole history: `ring.last_seq()` is the topic's last seq.
    ring: Ring,
    finished: bool,
    cursors: OpenCursors,
}

impl TopicState {
    fn status(&self) -> TopicStatus {
        TopicStatus {
            last_seq: self.ring.last_seq(),
            oldest_seq: self.ring.oldest_seq(),
            finished: self.finished,
        }
    }

    /// The final seq, once finished.
    fn final_seq(&self) -> Option<u64> {
        self.finished.then_some(self.ring.last_seq())
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
                ring: Ring::new(self.config.history, next_seq.max(1) - 1),
                finished: false,
                cursors: OpenCursors::default(),
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
            let first_seq = st.ring.last_seq() + 1;
            for new in lines {
                let seq = st.ring.last_seq() + 1;
                st.ring.push(Arc::new(Line::new(seq, new.ts, &new.text)));
            }
            AppendReceipt {
                first_seq,
                last_seq: st.ring.last_seq(),
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
        let status = st.status();
        let after = check_cursor(topic, &status, after)?;
        Ok(ReadBatch {
            lines: st.ring.lines_after(after, limit),
            status,
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
            let after = check_cursor(topic, &st.status(), after)?;
            (after, st.cursors.open())
        };
        let cursor = Cursor {
            topic: t,
            position: Position::new(id, after, changed, max_batch),
        };
        Ok(cursor::subscription(cursor))
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
            st.cursors.cut_oldest(fraction)
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
    position: Position,
}

impl Subscriber for Cursor {
    fn position(&self) -> &Position {
        &self.position
    }

    fn close(&self) {
        if let Ok(mut st) = self.topic.state.lock() {
            st.cursors.close(self.position.id);
        }
    }

    async fn step(&mut self) -> Option<Delivery> {
        while self.position.changed().await {
            let step = {
                let st = self.topic.state.lock().expect("topic lock");
                self.position.step(&st.ring, &st.cursors, st.final_seq())
            };
            match self.position.take(step) {
                Taken::Yield(delivery) => return delivery,
                Taken::Wait => {}
                Taken::BeforeRing { oldest_seq } => {
                    // The ring is the whole history here: the lines are gone.
                    self.position.done = true;
                    let after = self.position.after;
                    tracing::debug!(topic = %self.topic.id, after, "subscriber lagged");
                    return Some(Delivery::Lagged {
                        missing_from: after + 1,
                        oldest_seq,
                    });
                }
            }
        }
        None
    }
}

/// The behaviour every backend shares is tested once for both, in `tests/backend_suite.rs`
/// (which compares the seqs delivered, not the batches). Here: how this backend batches,
/// straight from its ring.
#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

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

    /// Each delivery is everything the ring holds after the cursor, up to `max_batch`: the
    /// backlog in one batch, appends made between two reads together, a long backlog in
    /// `max_batch` pieces, and the batch before a lag cut at `max_batch` too.
    #[tokio::test]
    async fn a_delivery_takes_all_the_ring_holds_up_to_max_batch() {
        let b = MemoryBackend::new(MemoryConfig {
            history: 4,
            max_topics: 10,
        });
        let t = topic();
        b.append(&t, lines(&["a", "b", "c"])).await.unwrap();
        let mut sub = b.subscribe(&t, Some(1), 100).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![2, 3]);
        b.append(&t, lines(&["d"])).await.unwrap();
        b.append(&t, lines(&["e"])).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![4, 5]);

        let mut small = b.subscribe(&t, Some(1), 2).await.unwrap();
        assert_eq!(seqs(&small.next().await.unwrap()), vec![2, 3]);
        assert_eq!(seqs(&small.next().await.unwrap()), vec![4, 5]);

        let mut slow = b.subscribe(&t, Some(1), 2).await.unwrap();
        assert_eq!(seqs(&slow.next().await.unwrap()), vec![2, 3]);
        // Four more lines: the ring (4) now holds 6..=9; 4 and 5 are gone before `slow`
        // read them.
        b.append(&t, lines(&["f", "g", "h", "i"])).await.unwrap();
        assert_eq!(
            slow.next().await,
            Some(Delivery::Lagged {
                missing_from: 4,
                oldest_seq: 6
            })
        );
        let mut fresh = b.subscribe(&t, None, 10).await.unwrap();
        assert_eq!(seqs(&fresh.next().await.unwrap()), vec![6, 7, 8, 9]);
        b.finish(&t).await.unwrap();
        assert_eq!(seqs(&sub.next().await.unwrap()), vec![6, 7, 8, 9]);
        assert_eq!(sub.next().await, Some(Delivery::End { last_seq: 9 }));
        assert_eq!(sub.next().await, None);
    }
}
