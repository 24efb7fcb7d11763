//! The feed's storage and fan-out, behind a trait so that the in-memory hub can later be
//! swapped for a shared one (Redis Streams behind several server instances).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_util::Stream;
use thiserror::Error;

use crate::line::Line;
use crate::topic::TopicId;

/// A backend shared by every router of one server.
pub type SharedBackend = Arc<dyn Backend>;

/// What can go wrong talking to the feed. Each variant maps to one HTTP status in
/// [`crate::http`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FeedError {
    #[error("unknown topic {0}")]
    UnknownTopic(TopicId),
    #[error("topic {0} is finished; it takes no more lines")]
    Finished(TopicId),
    #[error("cursor {after} is beyond the last line {last_seq} of topic {topic}")]
    BeyondHead {
        topic: TopicId,
        after: u64,
        last_seq: u64,
    },
    #[error("history of {topic} starts at seq {oldest}; lines after {after} are gone")]
    HistoryTruncated {
        topic: TopicId,
        after: u64,
        oldest: u64,
    },
    #[error("the feed holds its maximum of {0} topics")]
    TooManyTopics(usize),
    #[error("backend failure: {0}")]
    Backend(String),
}

/// The state of a topic at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicStatus {
    /// Seq of the newest line (0 when the topic has none yet).
    pub last_seq: u64,
    /// Seq of the oldest line still in history (`last_seq + 1` when history is empty).
    pub oldest_seq: u64,
    /// The step has finished: no line will follow `last_seq`.
    pub finished: bool,
}

/// Where appended lines landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Seq of the first appended line (equal to `last_seq + 1` when nothing was appended).
    pub first_seq: u64,
    /// Seq of the last appended line.
    pub last_seq: u64,
}

/// Lines read without waiting, for polling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadBatch {
    /// Lines after the requested cursor, in seq order, contiguous.
    pub lines: Vec<Arc<Line>>,
    /// The topic at the time of the read.
    pub status: TopicStatus,
}

/// One step of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Lines in seq order, contiguous with what came before. Never empty.
    Lines(Vec<Arc<Line>>),
    /// The step finished; `last_seq` was its final line. The stream ends after this.
    End { last_seq: u64 },
    /// The subscriber fell behind further than history reaches: `missing_from` was dropped
    /// before it was read; `oldest_seq` is the oldest line still held. The stream ends after
    /// this (see the lag policy in the crate docs).
    Lagged { missing_from: u64, oldest_seq: u64 },
}

/// A stream of [`Delivery`] items: first the backlog after the requested cursor, then live
/// lines, with no gap and no duplicate between the two.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Delivery> + Send>>,
}

impl Subscription {
    pub fn new(stream: impl Stream<Item = Delivery> + Send + 'static) -> Self {
        Subscription {
            inner: Box::pin(stream),
        }
    }
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A log line to append. `ts` is its scheduled publish time (Unix nanoseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLine {
    pub ts: u64,
    pub text: String,
}

/// Storage and fan-out of topics.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Appends lines in order, creating the topic on first append.
    async fn append(
        &self,
        topic: &TopicId,
        lines: Vec<NewLine>,
    ) -> Result<AppendReceipt, FeedError>;

    /// Creates a topic whose first line will get seq `next_seq` (0 is taken as 1): its `last_seq`
    /// is `next_seq - 1` and its history is empty, so `oldest_seq` is `next_seq`. A cursor
    /// older than `next_seq - 1` is then [`FeedError::HistoryTruncated`] naming `next_seq`, a
    /// cursor of `next_seq - 1` waits for the first line, and no cursor starts there too.
    ///
    /// This is how a server restarted without its history continues a feed's numbering
    /// (seq per topic never starts again at 1, which clients would count as duplicates) and
    /// tells resuming clients where history now starts. On an existing topic it changes
    /// nothing and returns its status, whatever `next_seq` says.
    async fn open(&self, topic: &TopicId, next_seq: u64) -> Result<TopicStatus, FeedError>;

    /// Ends a step: later appends fail, open subscriptions end after their last line.
    /// Finishing twice is not an error.
    async fn finish(&self, topic: &TopicId) -> Result<TopicStatus, FeedError>;

    /// The topic's current state.
    async fn status(&self, topic: &TopicId) -> Result<TopicStatus, FeedError>;

    /// Up to `limit` lines after `after`, without waiting. `None` (a client with no cursor)
    /// starts at the oldest line still held, so a new viewer of a log longer than history
    /// still sees its tail; an explicit cursor older than history is
    /// [`FeedError::HistoryTruncated`].
    async fn read(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<ReadBatch, FeedError>;

    /// Lines after `after` (`None`: from the oldest held, as for [`Backend::read`]): history
    /// first, then live. At most `max_batch` lines per delivery.
    async fn subscribe(
        &self,
        topic: &TopicId,
        after: Option<u64>,
        max_batch: usize,
    ) -> Result<Subscription, FeedError>;

    /// Every topic held, for the generator and for operators.
    async fn topics(&self) -> Vec<TopicId>;

    /// Ends the oldest `fraction` of a topic's open subscriptions (by subscription order:
    /// `ceil(fraction × open)` of them) as if their connections had dropped; the others carry
    /// on undisturbed. Each one ended ends without [`Delivery::End`] (its stream just stops),
    /// so each transport does what it does when a connection is lost (SSE ends the response
    /// without `event: end`, WebSocket closes with 1001, a held long-poll answers at once) and
    /// its client resumes from its own cursor. Subscriptions made afterwards are unaffected.
    ///
    /// `fraction` is meant to lie in (0, 1] (the HTTP route refuses anything else); a value at
    /// or below 0, or NaN, ends none, above 1 ends all. Oldest first, so that a partial drop
    /// is reproducible: the same clients, in the order they connected, are hit every run.
    /// Fault injection for tests and operators.
    async fn disconnect(&self, topic: &TopicId, fraction: f64) -> Result<Disconnected, FeedError>;
}

/// What [`Backend::disconnect`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnected {
    /// Subscriptions ended.
    pub dropped: u64,
    /// Subscriptions open when the drop came (`dropped` of them ended, the rest go on).
    pub open: u64,
}

/// How many of `open` subscriptions a drop of `fraction` ends: `ceil(fraction × open)`,
/// within `0..=open`. A product a rounding error above a whole number counts as that number
/// (0.3 × 10 is 3.0000000000000004 in floating point, and means 3, not 4).
pub fn drop_count(fraction: f64, open: u64) -> u64 {
    if fraction.is_nan() || fraction <= 0.0 {
        return 0;
    }
    let exact = fraction * open as f64;
    let rounded = exact.round();
    let n = if (exact - rounded).abs() < 1e-9 {
        rounded
    } else {
        exact.ceil()
    };
    (n as u64).min(open)
}

#[cfg(test)]
mod tests {
    use super::drop_count;

    #[test]
    fn drop_counts_round_up_but_not_on_rounding_noise() {
        assert_eq!(drop_count(1.0, 4), 4);
        assert_eq!(drop_count(0.5, 4), 2);
        assert_eq!(drop_count(0.5, 3), 2);
        assert_eq!(drop_count(0.3, 10), 3);
        assert_eq!(drop_count(0.01, 1), 1);
        assert_eq!(drop_count(0.7, 10), 7);
        assert_eq!(drop_count(1.0, 0), 0);
        assert_eq!(drop_count(2.0, 5), 5);
        assert_eq!(drop_count(0.0, 5), 0);
        assert_eq!(drop_count(-1.0, 5), 0);
        assert_eq!(drop_count(f64::NAN, 5), 0);
    }
}
