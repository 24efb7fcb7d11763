//! Per-client sequence tracking: in order, gap, late fill or duplicate.

/// How one received sequence number relates to those received before on the same client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next expected sequence number.
    InOrder,
    /// Ahead of the next expected one: `missing` sequence numbers were skipped and count as lost
    /// unless they arrive later.
    Gap {
        /// How many sequence numbers this arrival skipped.
        missing: u64,
    },
    /// A sequence number that had been skipped arrived late: out of order, but not lost.
    FilledGap,
    /// Already received (or at or before the cursor the client started after).
    Duplicate,
}

/// An inclusive range of missing sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeqRange {
    first: u64,
    last: u64,
}

/// Tracks one client's view of a topic's sequence numbers: which arrived in order, late, twice,
/// or not at all.
///
/// The client keeps the same tracker across reconnects: resuming after [`Self::last_seq`] makes
/// the server send exactly the numbers not yet seen, so nothing is falsely counted as duplicate
/// or lost. Numbers skipped before a reconnect stay missing unless they arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSeqTracker {
    /// The cursor the client started after: the first expected number is `after + 1`.
    after: u64,
    /// The highest number received; `after` if none yet.
    highest: u64,
    /// Total of all ranges in `gaps`, kept so reading it is O(1).
    missing: u64,
    /// Missing numbers, sorted, disjoint and non-adjacent. Empty and allocation-free while
    /// events arrive in order, which keeps thousands of idle trackers small.
    gaps: Vec<SeqRange>,
}

impl ClientSeqTracker {
    /// A tracker for a client that expects the numbers after `after` (0 for a fresh start, so
    /// the first expected number is 1).
    pub fn new(after: u64) -> Self {
        Self {
            after,
            highest: after,
            missing: 0,
            gaps: Vec::new(),
        }
    }

    /// Classifies the received number `seq` and updates the tracker.
    pub fn observe(&mut self, seq: u64) -> SeqOutcome {
        if seq <= self.after {
            return SeqOutcome::Duplicate;
        }
        let horizon = self.horizon();
        if seq > horizon {
            let skipped = seq - horizon - 1;
            self.highest = seq;
            if skipped == 0 {
                return SeqOutcome::InOrder;
            }
            self.add_gap(horizon + 1, seq - 1);
            self.missing += skipped;
            return SeqOutcome::Gap { missing: skipped };
        }
        if self.remove_from_gaps(seq) {
            self.missing -= 1;
            self.highest = self.highest.max(seq);
            SeqOutcome::FilledGap
        } else {
            SeqOutcome::Duplicate
        }
    }

    /// The highest number received (the cursor to resume after); the start cursor if none.
    pub fn last_seq(&self) -> u64 {
        self.highest
    }

    /// How many numbers are currently missing (lost unless they still arrive).
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// How many numbers this client should have received: those after its start cursor up to
    /// the highest received or the final number given to [`Self::finish`], whichever is higher.
    pub fn expected(&self) -> u64 {
        self.horizon() - self.after
    }

    /// Takes `seqs` that were never published out of the missing numbers and returns how many
    /// it took: a client that did not receive them lost nothing, and they must also leave its
    /// expected count ([`Counters::account_tracker`](super::Counters::account_tracker)). One that did receive them (the publisher
    /// could not tell whether its POST got through) keeps them as delivered. Call after
    /// [`Self::finish`]. Nothing is stored, so the tracker stays small.
    pub fn excuse(&mut self, seqs: &[u64]) -> u64 {
        let mut excused = 0;
        for &seq in seqs {
            if seq > self.after && self.remove_from_gaps(seq) {
                self.missing -= 1;
                excused += 1;
            }
        }
        excused
    }

    /// The server says its history starts at `oldest`: every number below it that has not
    /// arrived never will. Takes them out of the missing numbers (the tail up to
    /// `oldest - 1` included, so resuming after [`Self::last_seq`] asks for what is there) and
    /// returns how many: the caller counts them by cause (restart, lag), never as loss. They
    /// stay in [`Self::expected`].
    pub fn skip_to(&mut self, oldest: u64) -> u64 {
        let below = oldest.saturating_sub(1);
        if below <= self.after {
            return 0;
        }
        let mut from_gaps = 0;
        // Missing ranges below `oldest`, whole or in part.
        let keep_from = self.gaps.partition_point(|r| r.last <= below);
        for r in self.gaps.drain(..keep_from) {
            from_gaps += r.last - r.first + 1;
        }
        if let Some(first) = self.gaps.first_mut() {
            if first.first <= below {
                from_gaps += below - first.first + 1;
                first.first = below + 1;
            }
        }
        if self.gaps.is_empty() {
            self.gaps = Vec::new();
        }
        self.missing -= from_gaps;
        // Numbers above everything known, up to `oldest - 1`: never seen, never missing yet.
        let horizon = self.horizon();
        let tail = below.saturating_sub(horizon);
        self.highest = self.highest.max(below);
        from_gaps + tail
    }

    /// How many distinct numbers were received (numbers given up by [`Self::skip_to`] count
    /// here too: subtract what it returned).
    pub fn delivered(&self) -> u64 {
        self.expected() - self.missing
    }

    /// Declares that the topic's last number is `final_seq`: numbers after the highest received
    /// up to `final_seq` count as missing. Returns [`Self::missing`]. Calling it again with the
    /// same or a lower number changes nothing; a number still arriving afterwards counts as a
    /// late fill ([`SeqOutcome::FilledGap`]), not a loss.
    pub fn finish(&mut self, final_seq: u64) -> u64 {
        let horizon = self.horizon();
        if final_seq > horizon {
            self.add_gap(horizon + 1, final_seq);
            self.missing += final_seq - horizon;
        }
        self.missing
    }

    /// The highest number known to exist: the highest received, or higher after `finish`
    /// (whose tail gap is then the last range, beyond `highest`).
    fn horizon(&self) -> u64 {
        match self.gaps.last() {
            Some(range) => range.last.max(self.highest),
            None => self.highest,
        }
    }

    /// Appends the range `first..=last`, which lies just above every existing range.
    fn add_gap(&mut self, first: u64, last: u64) {
        match self.gaps.last_mut() {
            // Adjacent to the tail gap left by `finish`: extend it to stay non-adjacent.
            Some(tail) if tail.last + 1 == first => tail.last = last,
            _ => self.gaps.push(SeqRange { first, last }),
        }
    }

    /// Removes `seq` from the missing ranges; returns whether it was missing.
    fn remove_from_gaps(&mut self, seq: u64) -> bool {
        let i = self.gaps.partition_point(|r| r.last < seq);
        let Some(range) = self.gaps.get_mut(i) else {
            return false;
        };
        if range.first > seq {
            return false;
        }
        match (range.first == seq, range.last == seq) {
            (true, true) => {
                self.gaps.remove(i);
            }
            (true, false) => range.first += 1,
            (false, true) => range.last -= 1,
            (false, false) => {
                let upper = SeqRange {
                    first: seq + 1,
                    last: range.last,
                };
                range.last = seq - 1;
                self.gaps.insert(i + 1, upper);
            }
        }
        if self.gaps.is_empty() {
            // Gaps are rare; give the allocation back so the tracker is small again.
            self.gaps = Vec::new();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Counters;

    #[test]
    fn skipping_to_the_oldest_held_gives_up_gaps_and_the_tail() {
        let mut t = ClientSeqTracker::new(0);
        for seq in [1, 2, 4, 5] {
            t.observe(seq);
        }
        assert_eq!(t.missing(), 1, "3 is missing");
        // The server restarted: its history starts at 9. 3 and 6..=8 are gone.
        assert_eq!(t.skip_to(9), 4);
        assert_eq!((t.missing(), t.last_seq()), (0, 8));
        assert_eq!(t.observe(9), SeqOutcome::InOrder, "resumes after 8");
        assert_eq!(t.expected(), 9);
        // Nothing below what it has: nothing more is gone.
        assert_eq!(t.skip_to(5), 0);
        // A gap above the oldest stays missing.
        t.observe(12);
        assert_eq!(t.skip_to(11), 1, "10 is gone, 11 still may come");
        assert_eq!(t.missing(), 1);
        assert_eq!(t.observe(11), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 0);
    }

    #[test]
    fn tracker_in_order() {
        let mut t = ClientSeqTracker::new(0);
        for seq in 1..=100 {
            assert_eq!(t.observe(seq), SeqOutcome::InOrder);
        }
        assert_eq!(t.last_seq(), 100);
        assert_eq!((t.missing(), t.expected(), t.delivered()), (0, 100, 100));
        assert!(size_of::<ClientSeqTracker>() <= 48);
        assert_eq!(t.gaps.capacity(), 0);
    }

    #[test]
    fn tracker_gap_then_late_fill() {
        let mut t = ClientSeqTracker::new(0);
        let mut c = Counters::default();
        let mut see = |t: &mut ClientSeqTracker, seq| {
            let o = t.observe(seq);
            c.record_outcome(o);
            o
        };
        assert_eq!(see(&mut t, 1), SeqOutcome::InOrder);
        assert_eq!(see(&mut t, 5), SeqOutcome::Gap { missing: 3 });
        assert_eq!(t.missing(), 3);
        assert_eq!(see(&mut t, 3), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 2);
        assert_eq!(see(&mut t, 3), SeqOutcome::Duplicate);
        assert_eq!(see(&mut t, 6), SeqOutcome::InOrder);
        assert_eq!(see(&mut t, 2), SeqOutcome::FilledGap);
        assert_eq!(see(&mut t, 4), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 0);
        assert_eq!(t.gaps.capacity(), 0, "allocation released once gaps close");
        assert_eq!(t.last_seq(), 6);
        assert_eq!(see(&mut t, 10), SeqOutcome::Gap { missing: 3 });
        assert_eq!(see(&mut t, 9), SeqOutcome::FilledGap);
        assert_eq!(see(&mut t, 7), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 1);
        c.account_tracker(&t, 0);
        assert_eq!(c.delivered, 9);
        assert_eq!(c.out_of_order, 5);
        assert_eq!(c.duplicated, 1);
        assert_eq!(c.expected, 10);
        assert_eq!(c.lost, 1);
        assert_eq!(c.delivered + c.lost, c.expected);
    }

    #[test]
    fn tracker_duplicates() {
        let mut t = ClientSeqTracker::new(0);
        assert_eq!(t.observe(1), SeqOutcome::InOrder);
        assert_eq!(t.observe(1), SeqOutcome::Duplicate);
        assert_eq!(t.observe(0), SeqOutcome::Duplicate);
        assert_eq!(t.observe(2), SeqOutcome::InOrder);
        assert_eq!(t.observe(1), SeqOutcome::Duplicate);
        assert_eq!((t.missing(), t.delivered()), (0, 2));
    }

    #[test]
    fn tracker_resume_across_reconnect() {
        let mut t = ClientSeqTracker::new(0);
        for seq in 1..=5 {
            assert_eq!(t.observe(seq), SeqOutcome::InOrder);
        }
        // Reconnect resuming after last_seq(): the server sends 6.. and nothing is flagged.
        assert_eq!(t.last_seq(), 5);
        for seq in 6..=10 {
            assert_eq!(t.observe(seq), SeqOutcome::InOrder);
        }
        assert_eq!((t.missing(), t.delivered()), (0, 10));
        // A server that replays from an older cursor yields duplicates, not losses.
        assert_eq!(t.observe(9), SeqOutcome::Duplicate);
        // A gap before a reconnect stays missing; the resumed stream continues cleanly.
        assert_eq!(t.observe(13), SeqOutcome::Gap { missing: 2 });
        assert_eq!(t.last_seq(), 13);
        assert_eq!(t.observe(14), SeqOutcome::InOrder);
        assert_eq!(t.missing(), 2);
    }

    #[test]
    fn tracker_finish_accounts_tail_loss() {
        let mut t = ClientSeqTracker::new(0);
        t.observe(1);
        t.observe(3);
        assert_eq!(t.finish(6), 4, "2 plus the tail 4..=6");
        assert_eq!(t.expected(), 6);
        assert_eq!(t.delivered(), 2);
        assert_eq!(t.last_seq(), 3, "finish does not move the resume cursor");
        assert_eq!(t.finish(6), 4, "idempotent");
        assert_eq!(t.finish(2), 4, "a lower final changes nothing");
        // A straggler after finish is a late fill, not a loss.
        assert_eq!(t.observe(5), SeqOutcome::FilledGap);
        assert_eq!(t.missing(), 3);
        assert_eq!(t.last_seq(), 5);
        assert_eq!(t.observe(8), SeqOutcome::Gap { missing: 1 });
        assert_eq!(t.missing(), 4);
        assert_eq!(t.expected(), 8);
        // Finish with nothing received at all.
        let mut t = ClientSeqTracker::new(10);
        assert_eq!(t.finish(15), 5);
        assert_eq!(
            t.gaps,
            vec![SeqRange {
                first: 11,
                last: 15
            }]
        );
        assert_eq!(t.finish(17), 7);
        assert_eq!(t.gaps.len(), 1, "tail gap extended, not split");
    }

    #[test]
    fn tracker_start_cursor_above_zero() {
        let mut t = ClientSeqTracker::new(1000);
        assert_eq!(t.last_seq(), 1000);
        assert_eq!(t.observe(1000), SeqOutcome::Duplicate);
        assert_eq!(t.observe(5), SeqOutcome::Duplicate);
        assert_eq!(t.observe(1001), SeqOutcome::InOrder);
        assert_eq!(t.observe(1004), SeqOutcome::Gap { missing: 2 });
        assert_eq!(t.finish(1004), 2);
        assert_eq!(t.expected(), 4);
        // A first event that skips ahead of the cursor.
        let mut t = ClientSeqTracker::new(1000);
        assert_eq!(t.observe(1003), SeqOutcome::Gap { missing: 2 });
    }

    #[test]
    fn tracker_extreme_numbers_do_not_panic() {
        let mut t = ClientSeqTracker::new(0);
        assert_eq!(
            t.observe(u64::MAX),
            SeqOutcome::Gap {
                missing: u64::MAX - 1
            }
        );
        assert_eq!(t.observe(u64::MAX), SeqOutcome::Duplicate);
        assert_eq!(t.observe(u64::MAX / 2), SeqOutcome::FilledGap);
        assert_eq!(t.finish(u64::MAX), u64::MAX - 2);
        let mut t = ClientSeqTracker::new(u64::MAX);
        assert_eq!(t.observe(u64::MAX), SeqOutcome::Duplicate);
        assert_eq!(t.finish(u64::MAX), 0);
    }

    #[test]
    fn tracker_matches_a_naive_model() {
        // Pseudo-random arrivals with loss, reordering and duplication, checked against a set.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50 {
            let after = next() % 5;
            let mut t = ClientSeqTracker::new(after);
            let mut seen = std::collections::BTreeSet::new();
            let mut highest = after;
            for _ in 0..200 {
                let seq = after + 1 + next() % 120;
                let expected_outcome = if seen.contains(&seq) {
                    SeqOutcome::Duplicate
                } else if seq == highest + 1 {
                    SeqOutcome::InOrder
                } else if seq > highest {
                    SeqOutcome::Gap {
                        missing: seq - highest - 1,
                    }
                } else {
                    SeqOutcome::FilledGap
                };
                assert_eq!(t.observe(seq), expected_outcome);
                seen.insert(seq);
                highest = highest.max(seq);
                assert_eq!(t.missing(), highest - after - seen.len() as u64);
            }
            let final_seq = after + 130;
            assert_eq!(t.finish(final_seq), final_seq - after - seen.len() as u64);
        }
    }
}
