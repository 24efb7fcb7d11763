//! The one clock of a run: Unix time in nanoseconds.
//!
//! Latency is receipt time minus scheduled publish time. Publisher and receivers run on the
//! same host, so both read this same wall clock; no offset needs estimating.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now.
pub fn unix_nanos() -> u64 {
    to_unix_nanos(SystemTime::now())
}

/// Nanoseconds since the Unix epoch of `t` (0 for times before the epoch).
pub fn to_unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
        .min(u64::MAX as u128) as u64
}
