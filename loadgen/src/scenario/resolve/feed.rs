//! The `[feed]` section, with its optional `[feed.burst]`.

use std::time::Duration;

use super::check::{Check, Least};
use super::section;
use crate::scenario::raw::{RawFeed, RawLineBytes, S};
use crate::scenario::{Burst, Feed, LineBytes, MAX_LINE_BYTES, MAX_TOPICS};

pub(super) fn resolve_feed(c: &mut Check, raw: &S<RawFeed>) -> Feed {
    let (at, f) = section(raw);
    let topics = c.required(
        &f.topics,
        &at,
        "feed.topics",
        "the number of topics written",
    );
    let topics = c.integer(topics, "feed.topics", 1, 1..=MAX_TOPICS);
    let lines_per_sec = c.required(
        &f.lines_per_sec,
        &at,
        "feed.lines_per_sec",
        "lines per second per topic",
    );
    // Zero means "bursts only", which only makes sense with a burst.
    let lines_per_sec = c.rate(lines_per_sec, "feed.lines_per_sec", 1.0, f.burst.is_some());

    let fallback = LineBytes { min: 1, max: 1 };
    let line_bytes = match c.required(
        &f.line_bytes,
        &at,
        "feed.line_bytes",
        "e.g. 80 or { min = 40, max = 120 }",
    ) {
        None => fallback,
        Some(lb) => {
            let (min, max) = match *lb.get_ref() {
                RawLineBytes::Fixed(n) => (n, n),
                RawLineBytes::Range { min, max } => (min, max),
            };
            let in_range = |n: i64| (1..=i64::from(MAX_LINE_BYTES)).contains(&n);
            if !in_range(min) || !in_range(max) {
                c.err(
                    lb.span(),
                    format!(
                        "`feed.line_bytes` must be between 1 and {MAX_LINE_BYTES} (the server's \
                         largest line), got {min}..{max}"
                    ),
                );
                fallback
            } else if min > max {
                c.err(
                    lb.span(),
                    format!("`feed.line_bytes`: min ({min}) is greater than max ({max})"),
                );
                fallback
            } else {
                // Both are in 1..=MAX_LINE_BYTES, so they fit.
                LineBytes {
                    min: u32::try_from(min).unwrap_or(1),
                    max: u32::try_from(max).unwrap_or(1),
                }
            }
        }
    };
    let history = c.integer(f.history.as_ref(), "feed.history", 10_000, 1..=u32::MAX);

    let burst = f.burst.as_ref().map(|b| {
        let at = b.span();
        let b = b.get_ref();
        let every = c.required(&b.every, &at, "feed.burst.every", "time between bursts");
        let every = c.duration(every, "feed.burst.every", Duration::from_secs(10), Least::Positive);
        let lines = c.required(&b.lines, &at, "feed.burst.lines", "lines per burst");
        let lines = c.integer(lines, "feed.burst.lines", 1, 1..=u32::MAX);
        let rate = c.required(&b.lines_per_sec, &at, "feed.burst.lines_per_sec", "rate within a burst");
        let lines_per_sec = c.rate(rate, "feed.burst.lines_per_sec", 1.0, false);
        // A burst that outlasts its period never ends: the feed would just run at the burst
        // rate, which `feed.lines_per_sec` says more plainly.
        let burst_secs = f64::from(lines) / lines_per_sec;
        if let (Some(l), Some(_), Some(_)) = (&b.lines, &b.every, &b.lines_per_sec) {
            if burst_secs >= every.as_secs_f64() {
                c.err(
                    l.span(),
                    format!(
                        "a burst of {lines} lines at {lines_per_sec} lines/s lasts {burst_secs:.3}s, \
                         which is not shorter than `feed.burst.every` ({})",
                        humantime::format_duration(every)
                    ),
                );
            }
        }
        Burst {
            every,
            lines,
            lines_per_sec,
        }
    });
    Feed {
        topics,
        lines_per_sec,
        line_bytes,
        history,
        burst,
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::test_util::*;

    #[test]
    fn min_greater_than_max() {
        let msg = err(&MINIMAL.replace("line_bytes = 80", "line_bytes = { min = 120, max = 40 }"));
        assert_diag(
            &msg,
            8,
            14,
            &["`feed.line_bytes`", "min (120) is greater than max (40)"],
        );
        let msg = err(&MINIMAL.replace("line_bytes = 80", "line_bytes = 0"));
        assert_diag(
            &msg,
            8,
            14,
            &["`feed.line_bytes` must be between 1 and 1048576"],
        );
    }

    #[test]
    fn burst_rules() {
        let msg = err(&format!(
            "{MINIMAL}[feed.burst]\nevery = \"1s\"\nlines = 2000\nlines_per_sec = 1000\n"
        ));
        assert_diag(
            &msg,
            11,
            9,
            &["lasts 2.000s", "not shorter than `feed.burst.every` (1s)"],
        );
        // Bursts only: a zero steady rate is fine with a burst, not without.
        let bursts_only = MINIMAL.replace("lines_per_sec = 5.0", "lines_per_sec = 0");
        let msg = err(&bursts_only);
        assert_diag(
            &msg,
            7,
            17,
            &["`feed.lines_per_sec` must be a finite number greater than zero"],
        );
        let sc = ok(&format!(
            "{bursts_only}[feed.burst]\nevery = \"10s\"\nlines = 100\nlines_per_sec = 1000\n"
        ));
        assert_eq!(sc.feed.lines_per_sec, 0.0);
        let msg = err(&format!("{MINIMAL}[feed.burst]\nevery = \"10s\"\n"));
        assert_diag(&msg, 9, 1, &["missing `feed.burst.lines`"]);
        assert_diag(&msg, 9, 1, &["missing `feed.burst.lines_per_sec`"]);
    }
}
