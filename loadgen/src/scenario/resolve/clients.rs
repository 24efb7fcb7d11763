//! The `[clients]` section.

use std::time::Duration;

use super::check::{Check, Least};
use super::section;
use crate::scenario::raw::{RawClients, S};
use crate::scenario::{Clients, TopicChoice, MAX_CLIENTS, MAX_WORKERS};

pub(super) fn resolve_clients(c: &mut Check, raw: &S<RawClients>) -> Clients {
    let (at, cl) = section(raw);
    let count = c.required(
        &cl.count,
        &at,
        "clients.count",
        "the number of simulated clients",
    );
    let count = c.integer(count, "clients.count", 1, 1..=MAX_CLIENTS);
    let ramp_up = c.duration(
        cl.ramp_up.as_ref(),
        "clients.ramp_up",
        Duration::ZERO,
        Least::Zero,
    );
    let zipf = matches!(
        cl.topics.as_ref().map(|t| t.get_ref().as_str()),
        Some("zipf")
    );
    if let Some(t) = &cl.topics {
        if !matches!(t.get_ref().as_str(), "uniform" | "zipf") {
            c.err(
                t.span(),
                format!(
                    "unknown `clients.topics` {:?}, expected \"uniform\" or \"zipf\"",
                    t.get_ref()
                ),
            );
        }
    }
    let topics = if zipf {
        TopicChoice::Zipf(c.rate(
            cl.zipf_exponent.as_ref(),
            "clients.zipf_exponent",
            1.0,
            false,
        ))
    } else {
        if let Some(z) = &cl.zipf_exponent {
            c.err(
                z.span(),
                "`clients.zipf_exponent` only applies with `clients.topics = \"zipf\"`",
            );
        }
        TopicChoice::Uniform
    };
    let workers = c.integer(cl.workers.as_ref(), "clients.workers", 0, 0..=MAX_WORKERS);
    Clients {
        count,
        ramp_up,
        topics,
        workers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_util::*;

    #[test]
    fn zero_count() {
        let msg = err(&MINIMAL.replace("count = 10", "count = 0"));
        assert_diag(
            &msg,
            4,
            9,
            &["`clients.count` must be between 1 and 200000, got 0"],
        );
    }

    #[test]
    fn zipf_exponent_defaults_to_one() {
        let sc = ok(&MINIMAL.replace("count = 10", "count = 10\ntopics = \"zipf\""));
        assert_eq!(sc.clients.topics, TopicChoice::Zipf(1.0));
    }

    #[test]
    fn zipf_exponent_with_uniform() {
        let msg = err(&MINIMAL.replace("count = 10", "count = 10\nzipf_exponent = 1.2"));
        assert_diag(
            &msg,
            5,
            17,
            &["`clients.zipf_exponent` only applies", "\"zipf\""],
        );
        let msg = err(&MINIMAL.replace("count = 10", "count = 10\ntopics = \"pareto\""));
        assert_diag(&msg, 5, 10, &["unknown `clients.topics` \"pareto\""]);
    }
}
