//! PLACEHOLDER until the clock helper's module lands (replaced on merge).

use serde::{Deserialize, Serialize};

pub const DEFAULT_EXCHANGES: u32 = 16;
pub const TIME_ROUTE: &str = "/_pushbench/time";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    pub offset_ns: i64,
    pub uncertainty_ns: u64,
    pub min_rtt_ns: u64,
    pub exchanges: u32,
    pub url: String,
}

impl ClockOffset {
    pub fn bound_ns(&self) -> u64 {
        self.offset_ns.unsigned_abs() + self.uncertainty_ns
    }
}

#[derive(Debug, thiserror::Error)]
#[error("clock: {0}")]
pub struct ClockError(String);

pub async fn measure_offset(
    client: &reqwest::Client,
    url: &str,
    exchanges: u32,
) -> Result<ClockOffset, ClockError> {
    let _ = (client, exchanges);
    Err(ClockError(format!("not built yet: {url}")))
}
