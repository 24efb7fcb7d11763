//! The clock offset between this machine and the server under test (issue 15).
//!
//! Latency is a receiver's clock minus the publish time a line carries, which the publisher
//! stamped with *its* clock. On one host both are the same clock. When load-generator shards
//! run on other machines, each one measures how far its clock is from the server's, records
//! the figure and its uncertainty in the summary, and the report states the bound.
//!
//! # The exchange
//! NTP's, over HTTP, against feed-server's `GET /_pushbench/time` (`{"unix_ns":N}`, see
//! [`pushbench_protocol::ServerTime`]). Per exchange: `t0` is the local Unix time before the
//! request is sent, `s` the server's reading, `t1` the local time once the answer's body is
//! read. The server read its clock somewhere inside `[t0, t1]`, so
//!
//! - offset = `s − (t0 + t1) / 2`: server minus local (add it to a local time to get the
//!   server's time), exact if the request and the answer took equally long;
//! - uncertainty = `(t1 − t0) / 2`, rounded up: however the round trip split between the two
//!   ways, the true offset lies within it of the estimate.
//!
//! One warm-up exchange opens the keep-alive connection first (its round trip carries the TCP
//! handshake) and is not counted. Of the counted ones, the exchange with the smallest round
//! trip is kept, as NTP's and chrony's minimum filter do: queueing only ever adds delay, so
//! the shortest round trip is the one least distorted by it and the one with the tightest
//! bound. Averaging offsets would mix good exchanges with delayed ones.
//!
//! All three times are wall-clock (`CLOCK_REALTIME`) readings from
//! [`pushbench_feed::clock::unix_nanos`], the clock every latency of a run is measured with.
//! An exchange during which the local clock stepped back (`t1 < t0`) is discarded.
//!
//! # Failures
//! Every failure is a [`ClockError`] naming the URL and what went wrong; a target that is not
//! feed-server (no such route: `404`) is told so in those words.

use std::time::Duration;

use pushbench_feed::clock::unix_nanos;
use pushbench_protocol::route::TIME;
use pushbench_protocol::ServerTime;
use serde::{Deserialize, Serialize};

use crate::publisher::error_chain;

/// Counted exchanges per measurement (after the warm-up): enough for the minimum filter to
/// find one undelayed round trip on a busy network, few enough to take milliseconds.
pub const DEFAULT_EXCHANGES: u32 = 16;

/// How long one exchange (request, answer and body) may take before the measurement fails.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of an unexpected answer body an error quotes.
const BODY_PREFIX_CHARS: usize = 80;

/// The measured offset of the server's clock to this machine's, as `summary.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Server minus local, in nanoseconds: add it to a local time to get the server's time.
    pub offset_ns: i64,
    /// The true offset lies within `offset_ns ± uncertainty_ns`: half the kept round trip,
    /// rounded up.
    pub uncertainty_ns: u64,
    /// The kept (smallest) round trip, request sent to answer body read.
    pub min_rtt_ns: u64,
    /// How many exchanges were counted, the warm-up not included.
    pub exchanges: u32,
    /// The URL asked.
    pub url: String,
}

impl ClockOffset {
    /// `|offset| + uncertainty`: the most a latency measured across the two clocks can be off
    /// by when the offset is not corrected for.
    pub fn bound_ns(&self) -> u64 {
        self.offset_ns
            .unsigned_abs()
            .saturating_add(self.uncertainty_ns)
    }
}

/// Why the offset could not be measured. Each names the URL asked.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("measuring the clock offset to {url} needs at least 1 exchange, got 0")]
    NoExchanges { url: String },
    #[error("GET {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error(
        "GET {url} answered 404: the target has no {TIME} route (feed-server serves it; a \
         foreign server cannot tell its clock offset)"
    )]
    NoTimeRoute { url: String },
    #[error("GET {url} answered {status}, not 200; the body began {body_prefix:?}")]
    Status {
        url: String,
        status: u16,
        body_prefix: String,
    },
    #[error("GET {url} answered no {{\"unix_ns\":N}} ({reason}); the body began {body_prefix:?}")]
    Body {
        url: String,
        reason: String,
        body_prefix: String,
    },
    #[error(
        "the local clock went back during each of the {exchanges} exchanges with {url} (a \
         clock step): no round trip to measure"
    )]
    LocalClockWentBack { url: String, exchanges: u32 },
}

/// One exchange's three readings, in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Local time before the request was sent (`t0`).
    pub sent_ns: u64,
    /// The server's reading (`s`).
    pub server_ns: u64,
    /// Local time after the answer's body was read (`t1`).
    pub received_ns: u64,
}

impl Sample {
    /// `t1 − t0`, or `None` if the local clock went back in between.
    pub fn rtt_ns(&self) -> Option<u64> {
        self.received_ns.checked_sub(self.sent_ns)
    }

    /// `s − (t0 + t1) / 2`, saturated to `i64` (only clocks 292 years apart overflow it).
    pub fn offset_ns(&self) -> i64 {
        let midpoint = (i128::from(self.sent_ns) + i128::from(self.received_ns)) / 2;
        let offset = i128::from(self.server_ns) - midpoint;
        offset.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// `{TIME}` on a server at `base` (`http://HOST:PORT`, a trailing slash allowed).
pub fn time_url(base: &str) -> String {
    format!("{}{TIME}", base.trim_end_matches('/'))
}

/// Measures the offset of the clock of the server at `url` (its [`TIME`] route, see
/// [`time_url`]) to this machine's: one warm-up exchange, then `exchanges` counted ones, of
/// which the one with the smallest round trip is kept ([`best`]).
pub async fn measure_offset(
    client: &reqwest::Client,
    url: &str,
    exchanges: u32,
) -> Result<ClockOffset, ClockError> {
    if exchanges == 0 {
        return Err(ClockError::NoExchanges { url: url.into() });
    }
    // Opens the keep-alive connection; a failure here is the failure of every exchange.
    exchange(client, url).await?;
    let mut samples = Vec::with_capacity(exchanges as usize);
    for _ in 0..exchanges {
        samples.push(exchange(client, url).await?);
    }
    best(&samples, url).ok_or_else(|| ClockError::LocalClockWentBack {
        url: url.into(),
        exchanges,
    })
}

/// One exchange: the local clock around a `GET url`, the server's in its answer.
async fn exchange(client: &reqwest::Client, url: &str) -> Result<Sample, ClockError> {
    let request_failed = |e: reqwest::Error| {
        let what = if e.is_connect() {
            "connecting"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "request"
        };
        ClockError::Request {
            url: url.into(),
            reason: format!("{what}: {}", error_chain(&e)),
        }
    };
    let sent_ns = unix_nanos();
    let answer = client
        .get(url)
        .timeout(EXCHANGE_TIMEOUT)
        .send()
        .await
        .map_err(request_failed)?;
    let status = answer.status().as_u16();
    let body = answer.bytes().await.map_err(request_failed)?;
    let received_ns = unix_nanos();
    match status {
        200 => Ok(Sample {
            sent_ns,
            server_ns: parse_answer(url, &body)?,
            received_ns,
        }),
        404 => Err(ClockError::NoTimeRoute { url: url.into() }),
        status => Err(ClockError::Status {
            url: url.into(),
            status,
            body_prefix: body_prefix(&body),
        }),
    }
}

/// The server's `unix_ns` from a `200` answer's body.
fn parse_answer(url: &str, body: &[u8]) -> Result<u64, ClockError> {
    serde_json::from_slice::<ServerTime>(body)
        .map(|t| t.unix_ns)
        .map_err(|e| ClockError::Body {
            url: url.into(),
            reason: e.to_string(),
            body_prefix: body_prefix(body),
        })
}

/// The first [`BODY_PREFIX_CHARS`] characters of `body` (invalid UTF-8 replaced), `…` if cut.
fn body_prefix(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut prefix: String = text.chars().take(BODY_PREFIX_CHARS).collect();
    if prefix.len() < text.len() {
        prefix.push('…');
    }
    prefix
}

/// The offset from the sample with the smallest round trip (the first of equals); samples
/// during which the local clock went back are skipped. `None`: no sample left.
pub fn best(samples: &[Sample], url: &str) -> Option<ClockOffset> {
    let (kept, rtt) = samples
        .iter()
        .filter_map(|s| Some((s, s.rtt_ns()?)))
        .min_by_key(|&(_, rtt)| rtt)?;
    Some(ClockOffset {
        offset_ns: kept.offset_ns(),
        uncertainty_ns: rtt.div_ceil(2),
        min_rtt_ns: rtt,
        exchanges: samples.len() as u32,
        url: url.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://10.0.0.1:8080/_pushbench/time";

    fn sample(sent_ns: u64, server_ns: u64, received_ns: u64) -> Sample {
        Sample {
            sent_ns,
            server_ns,
            received_ns,
        }
    }

    #[test]
    fn the_shortest_round_trip_is_kept_with_half_of_it_as_uncertainty() {
        let samples = [
            // rtt 400, offset 1_000 - 1_200 = -200
            sample(1_000, 1_000, 1_400),
            // rtt 100: kept. Server 3_000_050 vs midpoint 2_050: +2_998_000.
            sample(2_000, 3_000_050, 2_100),
            // rtt 100 again: the first of equals stays.
            sample(5_000, 0, 5_100),
            // rtt 900
            sample(9_000, 9_450, 9_900),
        ];
        let o = best(&samples, URL).unwrap();
        assert_eq!(
            o,
            ClockOffset {
                offset_ns: 2_998_000,
                uncertainty_ns: 50,
                min_rtt_ns: 100,
                exchanges: 4,
                url: URL.into(),
            }
        );
        assert_eq!(o.bound_ns(), 2_998_050);
    }

    #[test]
    fn a_server_behind_gives_a_negative_offset() {
        // Local midpoint 10_000_000_500, server 4_000_000_000 behind.
        let o = best(
            &[sample(10_000_000_000, 6_000_000_500, 10_000_001_000)],
            URL,
        )
        .unwrap();
        assert_eq!(o.offset_ns, -4_000_000_000);
        assert_eq!(o.uncertainty_ns, 500);
        assert_eq!(o.bound_ns(), 4_000_000_500);
        // Adding the offset to a local time gives the server's: the sign convention.
        assert_eq!(10_000_000_500 + o.offset_ns, 6_000_000_500);
    }

    #[test]
    fn an_odd_round_trip_rounds_the_uncertainty_up() {
        // Midpoint 1 (rounded down); the server may have read 0..=3: |3 - 1| = 2 = ceil(3/2).
        for server in 0..=3 {
            let o = best(&[sample(0, server, 3)], URL).unwrap();
            assert_eq!(o.uncertainty_ns, 2);
            assert!(o.offset_ns.unsigned_abs() <= o.uncertainty_ns, "{o:?}");
        }
        // A zero round trip (a coarse clock) is a zero uncertainty, not a failure.
        let o = best(&[sample(7, 7, 7)], URL).unwrap();
        assert_eq!((o.offset_ns, o.uncertainty_ns, o.min_rtt_ns), (0, 0, 0));
    }

    #[test]
    fn exchanges_with_a_clock_step_back_are_skipped() {
        // The second looks shortest if the step is read as a wrapped-around or zero rtt.
        let samples = [sample(1_000, 1_100, 1_200), sample(5_000, 5_000, 4_000)];
        let o = best(&samples, URL).unwrap();
        assert_eq!((o.offset_ns, o.min_rtt_ns, o.exchanges), (0, 200, 2));
        assert_eq!(best(&[sample(5, 5, 4)], URL), None);
        assert_eq!(best(&[], URL), None);
    }

    #[test]
    fn extreme_readings_saturate_instead_of_overflowing() {
        let o = best(&[sample(0, u64::MAX, 0)], URL).unwrap();
        assert_eq!(o.offset_ns, i64::MAX);
        let o = best(&[sample(u64::MAX, 0, u64::MAX)], URL).unwrap();
        assert_eq!(o.offset_ns, i64::MIN);
        assert_eq!(o.bound_ns(), 1 << 63);
        let o = ClockOffset {
            offset_ns: i64::MIN,
            uncertainty_ns: u64::MAX,
            ..o
        };
        assert_eq!(o.bound_ns(), u64::MAX);
    }

    #[test]
    fn bodies_without_unix_ns_are_quoted_in_the_error() {
        assert_eq!(parse_answer(URL, br#"{"unix_ns":42}"#).unwrap(), 42);
        for (body, quoted) in [
            (&b"<html>no</html>"[..], "<html>no</html>"),
            (br#"{"time":1}"#, r#"{"time":1}"#),
            (br#"{"unix_ns":-5}"#, r#"{"unix_ns":-5}"#),
            (b"", ""),
        ] {
            let e = parse_answer(URL, body).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, ClockError::Body { .. }), "{text}");
            assert!(text.contains(URL), "{text}");
            assert!(text.contains(&format!("{quoted:?}")), "{text}");
        }
        // A long body is cut at a character, not a byte.
        let long = "é".repeat(200);
        let e = parse_answer(URL, long.as_bytes()).unwrap_err();
        let ClockError::Body { body_prefix, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(body_prefix, format!("{}…", "é".repeat(BODY_PREFIX_CHARS)));
    }

    #[test]
    fn the_offset_is_recorded_under_its_field_names() {
        let o = ClockOffset {
            offset_ns: -12,
            uncertainty_ns: 3,
            min_rtt_ns: 6,
            exchanges: 16,
            url: URL.into(),
        };
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "offset_ns": -12, "uncertainty_ns": 3, "min_rtt_ns": 6, "exchanges": 16,
                "url": URL,
            })
        );
        assert_eq!(serde_json::from_value::<ClockOffset>(json).unwrap(), o);
    }

    #[test]
    fn time_urls_append_the_route_once() {
        assert_eq!(
            time_url("http://h:1"),
            "http://h:1/_pushbench/time".to_string()
        );
        assert_eq!(time_url("http://h:1/"), "http://h:1/_pushbench/time");
    }
}
