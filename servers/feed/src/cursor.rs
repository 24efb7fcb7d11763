//! What the subscribers of both backends share, so that the memory hub and the Redis backend
//! cannot drift apart on the lag policy (see the crate docs):
//! - [`Ring`]: the recent lines a cursor reads. In memory it is the topic's history; on Redis,
//!   each instance's in-process copy of the tail of a topic's stream.
//! - [`OpenCursors`]: a topic's open cursors in subscription order, from which
//!   [`Backend::disconnect`](crate::Backend::disconnect) cuts the oldest.
//! - [`check_cursor`]: the check of a client's cursor that every `read` and `subscribe` makes.
//! - [`step`]: what a cursor does next (a batch, `End`, wait, or "its next line is older than
//!   the ring"), decided under its topic's lock; [`Position`] carries out what both backends
//!   do alike.
//! - [`subscription`]: a cursor as the [`Subscription`] stream the transports read, closed
//!   among its topic's open cursors however it ends (done, or dropped by a client that went
//!   away).
//!
//! Waiting for a change, and what to do about lines older than the ring (the memory backend
//! reports the cursor lagged; the Redis one reads them from Redis first), stay with each
//! backend.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

use futures_util::stream;
use tokio::sync::watch;

use crate::backend::{drop_count, Delivery, Disconnected, FeedError, Subscription, TopicStatus};
use crate::line::Line;
use crate::topic::TopicId;

/// Seq of the oldest line when `held` contiguous lines end at `last_seq`: `last_seq + 1` when
/// none are (a topic's `oldest_seq` in [`TopicStatus`]).
pub(crate) fn oldest_seq(last_seq: u64, held: u64) -> u64 {
    last_seq + 1 - held.min(last_seq)
}

/// Resolves a client's cursor against a topic: none means "from the oldest line held"; beyond
/// the head is a client error, before history a loss.
pub(crate) fn check_cursor(
    topic: &TopicId,
    status: &TopicStatus,
    after: Option<u64>,
) -> Result<u64, FeedError> {
    let Some(after) = after else {
        return Ok(status.oldest_seq - 1);
    };
    if after > status.last_seq {
        return Err(FeedError::BeyondHead {
            topic: topic.clone(),
            after,
            last_seq: status.last_seq,
        });
    }
    if after + 1 < status.oldest_seq {
        return Err(FeedError::HistoryTruncated {
            topic: topic.clone(),
            after,
            oldest: status.oldest_seq,
        });
    }
    Ok(after)
}

/// At most `capacity` recent lines of one topic, contiguous, ending at `last_seq` (the newest
/// seq known, which the ring holds unless it is empty).
pub(crate) struct Ring {
    lines: VecDeque<Arc<Line>>,
    capacity: usize,
    last_seq: u64,
}

impl Ring {
    /// An empty ring whose next line is `last_seq + 1`.
    pub(crate) fn new(capacity: usize, last_seq: u64) -> Ring {
        Ring {
            lines: VecDeque::new(),
            capacity,
            last_seq,
        }
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Seq of the oldest line held (`last_seq + 1` when empty).
    pub(crate) fn oldest_seq(&self) -> u64 {
        oldest_seq(self.last_seq, self.lines.len() as u64)
    }

    /// Empties the ring; its next line is `last_seq + 1`. (Redis only: a memory ring is
    /// never reset.)
    #[cfg(feature = "redis")]
    pub(crate) fn reset(&mut self, last_seq: u64) {
        self.lines.clear();
        self.last_seq = last_seq;
    }

    /// Adds a line after the newest, dropping the oldest when full. A line that does not
    /// follow `last_seq` (the Redis reader fell further behind than Redis keeps) restarts the
    /// ring there: cursors in the gap then find their next line older than the ring.
    pub(crate) fn push(&mut self, line: Arc<Line>) {
        if line.seq != self.last_seq + 1 {
            self.lines.clear();
        }
        self.last_seq = line.seq;
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Lines after `after`, at most `limit`; those older than the ring are not there.
    pub(crate) fn lines_after(&self, after: u64, limit: usize) -> Vec<Arc<Line>> {
        let start = (after + 1).saturating_sub(self.oldest_seq()) as usize;
        self.lines.iter().skip(start).take(limit).cloned().collect()
    }
}

/// The open cursors of one topic (made, not ended, not dropped), by id. Ids only grow, so
/// their order is subscription order, which is how a disconnect picks the oldest.
#[derive(Default)]
pub(crate) struct OpenCursors {
    next_id: u64,
    live: BTreeSet<u64>,
    /// Ids cut by a disconnect whose cursors have not noticed yet; each one ends (and is
    /// closed) when it next wakes.
    cut: HashSet<u64>,
}

impl OpenCursors {
    /// A new cursor's id.
    pub(crate) fn open(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(id);
        id
    }

    /// Forgets a cursor that has ended, however it ended.
    pub(crate) fn close(&mut self, id: u64) {
        self.live.remove(&id);
        self.cut.remove(&id);
    }

    /// Cuts the oldest `ceil(fraction × open)` cursors (see [`drop_count`]).
    pub(crate) fn cut_oldest(&mut self, fraction: f64) -> Disconnected {
        let open = self.live.len() as u64;
        let dropped = drop_count(fraction, open);
        // The oldest first: `live` is ordered by id, and ids by subscription.
        let chosen: Vec<u64> = self.live.iter().copied().take(dropped as usize).collect();
        for id in chosen {
            self.live.remove(&id);
            self.cut.insert(id);
        }
        Disconnected { dropped, open }
    }
}

/// What a cursor does next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Cut by a disconnect: end like a lost connection, without `End`.
    Cut,
    /// The next batch. `more`: lines (or the end) wait beyond it, so the cursor should read
    /// on without waiting for another change.
    Deliver { lines: Vec<Arc<Line>>, more: bool },
    /// The cursor's next line is older than the ring, which starts at `oldest_seq`.
    BeforeRing { oldest_seq: u64 },
    /// Everything up to the final line `last_seq` has been delivered.
    End { last_seq: u64 },
    /// Nothing new: wait for the next change.
    Wait,
}

/// The next step of cursor `id`, which has delivered up to `after`, over `ring`; `finished`
/// is the topic's final seq once known.
pub(crate) fn step(
    ring: &Ring,
    cursors: &OpenCursors,
    id: u64,
    after: u64,
    finished: Option<u64>,
    max_batch: usize,
) -> Step {
    if cursors.cut.contains(&id) {
        return Step::Cut;
    }
    if after < ring.last_seq() {
        if after + 1 < ring.oldest_seq() {
            return Step::BeforeRing {
                oldest_seq: ring.oldest_seq(),
            };
        }
        let lines = ring.lines_after(after, max_batch);
        let last = lines.last().map_or(after, |l| l.seq);
        return Step::Deliver {
            more: last < ring.last_seq() || finished.is_some(),
            lines,
        };
    }
    match finished {
        Some(last_seq) if after >= last_seq => Step::End { last_seq },
        _ => Step::Wait,
    }
}

/// A cursor's place in its topic: the part of both backends' cursors that is the same.
pub(crate) struct Position {
    /// This cursor's id among the topic's [`OpenCursors`].
    pub(crate) id: u64,
    /// Seq of the last line delivered.
    pub(crate) after: u64,
    /// Marked on every change of the topic's state; the cursor waits on it.
    changed: watch::Receiver<()>,
    /// Lines per delivery at most.
    pub(crate) max_batch: usize,
    /// Ended: it yields nothing more (and is closed among the open cursors).
    pub(crate) done: bool,
}

/// What is left to a backend after [`Position::take`].
pub(crate) enum Taken {
    /// Yield this (`None`: the stream ends).
    Yield(Option<Delivery>),
    /// Wait for the next change.
    Wait,
    /// The cursor's next line is older than the ring, which starts at `oldest_seq`.
    BeforeRing { oldest_seq: u64 },
}

impl Position {
    /// A cursor `id` at `after`, woken by `changed` (subscribed, and marked, before the cursor
    /// was checked: an append in between is then seen as a change, never missed).
    pub(crate) fn new(
        id: u64,
        after: u64,
        changed: watch::Receiver<()>,
        max_batch: usize,
    ) -> Position {
        Position {
            id,
            after,
            changed,
            max_batch: max_batch.max(1),
            done: false,
        }
    }

    /// Waits for a change (the first call always passes: the receiver starts marked). The
    /// sender lives as long as the topic, which the cursor holds, so this only fails if the
    /// topic is gone: the cursor has then ended, and this says `false`.
    pub(crate) async fn changed(&mut self) -> bool {
        if self.changed.changed().await.is_err() {
            self.done = true;
            return false;
        }
        true
    }

    /// Marks the cursor changed, so that the next [`Position::changed`] passes at once (more
    /// to read, or a read to retry). (Redis only: its cursors read history from Redis.)
    #[cfg(feature = "redis")]
    pub(crate) fn mark_changed(&mut self) {
        self.changed.mark_changed();
    }

    /// The next step over `ring` ([`step`] for this cursor).
    pub(crate) fn step(&self, ring: &Ring, cursors: &OpenCursors, finished: Option<u64>) -> Step {
        step(ring, cursors, self.id, self.after, finished, self.max_batch)
    }

    /// Carries out a step as far as both backends do alike: a batch moves the cursor on, and
    /// if more waits beyond it the cursor stays marked so that it reads on without waiting
    /// for another change; a cut ends the stream like a lost connection, without `End`.
    pub(crate) fn take(&mut self, step: Step) -> Taken {
        match step {
            Step::Cut => {
                self.done = true;
                Taken::Yield(None)
            }
            Step::End { last_seq } => {
                self.done = true;
                Taken::Yield(Some(Delivery::End { last_seq }))
            }
            Step::Deliver { lines, more } => {
                self.after = lines.last().map_or(self.after, |l| l.seq);
                if more {
                    self.changed.mark_changed();
                }
                Taken::Yield(Some(Delivery::Lines(lines)))
            }
            Step::Wait => Taken::Wait,
            Step::BeforeRing { oldest_seq } => Taken::BeforeRing { oldest_seq },
        }
    }
}

/// A backend's cursor, which [`subscription`] turns into a stream.
pub(crate) trait Subscriber: Send + 'static {
    fn position(&self) -> &Position;

    /// The next delivery, waiting as long as it takes; sets `done` once the stream ends.
    fn step(&mut self) -> impl Future<Output = Option<Delivery>> + Send;

    /// Takes the cursor out of its topic's open cursors.
    fn close(&self);
}

/// A subscriber whose stream has not been dropped.
struct Open<S: Subscriber>(S);

impl<S: Subscriber> Open<S> {
    async fn next(&mut self) -> Option<Delivery> {
        if self.0.position().done {
            return None;
        }
        let delivery = self.0.step().await;
        if self.0.position().done {
            self.0.close();
        }
        delivery
    }
}

impl<S: Subscriber> Drop for Open<S> {
    /// A subscription dropped before its end (the client went away) is no longer open: it
    /// must not count, nor be chosen, in a later disconnect.
    fn drop(&mut self) {
        if !self.0.position().done {
            self.0.close();
        }
    }
}

/// The stream of a subscriber's deliveries.
pub(crate) fn subscription(subscriber: impl Subscriber) -> Subscription {
    Subscription::new(stream::unfold(Open(subscriber), |mut open| async move {
        let delivery = open.next().await?;
        Some((delivery, open))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> Arc<Line> {
        Arc::new(Line::new(seq, 1, "x"))
    }

    fn seqs(lines: &[Arc<Line>]) -> Vec<u64> {
        lines.iter().map(|l| l.seq).collect()
    }

    #[test]
    fn a_ring_keeps_the_newest_lines_and_restarts_at_a_gap() {
        let mut ring = Ring::new(3, 10);
        assert_eq!((ring.oldest_seq(), ring.last_seq()), (11, 10));
        for seq in 11..=14 {
            ring.push(line(seq));
        }
        assert_eq!((ring.oldest_seq(), ring.last_seq()), (12, 14));
        assert_eq!(seqs(&ring.lines_after(11, 10)), [12, 13, 14]);
        assert_eq!(seqs(&ring.lines_after(12, 1)), [13]);
        assert!(ring.lines_after(14, 10).is_empty());
        ring.push(line(20));
        assert_eq!((ring.oldest_seq(), ring.last_seq()), (20, 20));
        #[cfg(feature = "redis")]
        {
            ring.reset(5);
            assert_eq!((ring.oldest_seq(), ring.last_seq()), (6, 5));
        }
        assert_eq!(oldest_seq(0, 0), 1);
        assert_eq!(oldest_seq(3, 10), 1);
    }

    #[test]
    fn steps_batch_end_and_notice_cuts_and_lines_before_the_ring() {
        let mut ring = Ring::new(4, 0);
        for seq in 1..=6 {
            ring.push(line(seq));
        }
        let mut cursors = OpenCursors::default();
        let (a, b) = (cursors.open(), cursors.open());
        match step(&ring, &cursors, a, 2, None, 2) {
            Step::Deliver { lines, more } => assert_eq!((seqs(&lines), more), (vec![3, 4], true)),
            other => panic!("{other:?}"),
        }
        match step(&ring, &cursors, a, 4, None, 10) {
            Step::Deliver { lines, more } => assert_eq!((seqs(&lines), more), (vec![5, 6], false)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            step(&ring, &cursors, a, 1, None, 10),
            Step::BeforeRing { oldest_seq: 3 }
        ));
        assert!(matches!(step(&ring, &cursors, a, 6, None, 10), Step::Wait));
        assert!(matches!(
            step(&ring, &cursors, a, 6, Some(6), 10),
            Step::End { last_seq: 6 }
        ));
        // The final seq known before its line reached the ring: wait for it.
        assert!(matches!(
            step(&ring, &cursors, a, 6, Some(7), 10),
            Step::Wait
        ));
        assert_eq!(
            cursors.cut_oldest(0.5),
            Disconnected {
                dropped: 1,
                open: 2
            }
        );
        assert!(matches!(step(&ring, &cursors, a, 2, None, 10), Step::Cut));
        assert!(matches!(step(&ring, &cursors, b, 6, None, 10), Step::Wait));
        cursors.close(a);
        assert_eq!(
            cursors.cut_oldest(1.0),
            Disconnected {
                dropped: 1,
                open: 1
            }
        );
    }
}
