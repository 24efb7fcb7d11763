//! Raw types: the file as written, with spans. Every field is optional here so that missing
//! fields are reported together with everything else, by `resolve`.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

pub(super) type S<T> = Option<Spanned<T>>;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: S<String>,
    pub(super) description: S<String>,
    pub(super) transports: S<Vec<Spanned<String>>>,
    pub(super) duration: S<DurationText>,
    pub(super) warmup: S<DurationText>,
    pub(super) drain: S<DurationText>,
    pub(super) repeat: S<i64>,
    pub(super) clients: S<RawClients>,
    pub(super) feed: S<RawFeed>,
    pub(super) poll: S<RawPoll>,
    pub(super) sse: S<RawSse>,
    pub(super) ws: S<RawWs>,
    pub(super) http2: S<RawHttp2>,
    pub(super) churn: S<RawChurn>,
    pub(super) server: S<RawServer>,
    pub(super) target: S<RawTarget>,
    pub(super) sweep: S<RawSweep>,
    pub(super) faults: S<Vec<Spanned<RawFault>>>,
    pub(super) deployment: S<RawDeployment>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    pub(super) backend: S<String>,
    pub(super) instances: S<i64>,
    pub(super) balancer: S<String>,
    pub(super) nginx_workers: S<i64>,
    pub(super) redis_persistence: S<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClients {
    pub(super) count: S<i64>,
    pub(super) ramp_up: S<DurationText>,
    pub(super) topics: S<String>,
    pub(super) zipf_exponent: S<f64>,
    pub(super) workers: S<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub(super) topics: S<i64>,
    pub(super) lines_per_sec: S<f64>,
    pub(super) line_bytes: S<RawLineBytes>,
    pub(super) history: S<i64>,
    pub(super) burst: S<RawBurst>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBurst {
    pub(super) every: S<DurationText>,
    pub(super) lines: S<i64>,
    pub(super) lines_per_sec: S<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoll {
    pub(super) interval: S<DurationText>,
    pub(super) wait: S<DurationText>,
    pub(super) limit: S<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSse {
    pub(super) keep_alive: S<DurationText>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWs {
    pub(super) ping_interval: S<DurationText>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp2 {
    pub(super) streams_per_connection: S<i64>,
    pub(super) tls: S<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChurn {
    pub(super) session: S<DurationText>,
    pub(super) pause: S<DurationText>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) binary: S<String>,
    pub(super) workers: S<i64>,
    pub(super) pin: S<bool>,
    pub(super) max_connections: S<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) base_url: S<String>,
    pub(super) sse_url: S<String>,
    pub(super) ws_url: S<String>,
    pub(super) poll_url: S<String>,
    pub(super) publish_url: S<String>,
    pub(super) poll_cursor: S<String>,
    pub(super) server_pid: S<i64>,
    pub(super) server_process: S<String>,
    pub(super) insecure: S<bool>,
    pub(super) publish_first: S<bool>,
}

/// One `[[faults]]` entry; which keys apply depends on `kind` (checked in `resolve`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) kind: S<String>,
    pub(super) at: S<DurationText>,
    pub(super) duration: S<DurationText>,
    pub(super) fraction: S<f64>,
    pub(super) after: S<DurationText>,
    pub(super) delay: S<DurationText>,
    pub(super) jitter: S<DurationText>,
    pub(super) bytes_per_sec: S<i64>,
    pub(super) down: S<DurationText>,
    pub(super) instance: S<i64>,
    pub(super) pause: S<DurationText>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    pub(super) field: S<String>,
    pub(super) values: S<Vec<Spanned<toml::Value>>>,
}

/// A duration as written ("500ms"); parsed in `resolve` so that a bad one does not hide the
/// file's other problems. Its own type only for the message when the value is not a string.
#[derive(Clone, Debug)]
pub(super) struct DurationText(pub(super) String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// `line_bytes = 80` or `line_bytes = { min = 40, max = 120 }`.
#[derive(Clone, Debug)]
pub(super) enum RawLineBytes {
    Fixed(i64),
    Range { min: i64, max: i64 },
}

// Written by hand: an untagged enum would only say "data did not match any variant".
impl<'de> Deserialize<'de> for RawLineBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLineBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a length in bytes such as 80, or a table such as { min = 40, max = 120 }",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawLineBytes, E> {
                Ok(RawLineBytes::Fixed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawLineBytes, E> {
                Ok(RawLineBytes::Fixed(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLineBytes, A::Error> {
                const FIELDS: &[&str] = &["min", "max"];
                let (mut min, mut max) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "min" => &mut min,
                        "max" => &mut max,
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    };
                    *slot = Some(map.next_value::<i64>()?);
                }
                Ok(RawLineBytes::Range {
                    min: min.ok_or_else(|| de::Error::missing_field("min"))?,
                    max: max.ok_or_else(|| de::Error::missing_field("max"))?,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::test_util::*;

    #[test]
    fn unknown_field_top_level() {
        let msg = err(&format!("cleints = 3\n{MINIMAL}"));
        assert_diag(
            &msg,
            1,
            1,
            &["unknown field `cleints`", "expected one of", "`clients`"],
        );
    }

    #[test]
    fn unknown_field_nested() {
        let msg = err(&MINIMAL.replace("count = 10", "count = 10\ncuont = 3"));
        assert_diag(
            &msg,
            5,
            1,
            &["unknown field `cuont`", "expected one of", "`count`"],
        );
        let msg = err(&MINIMAL.replace("line_bytes = 80", "line_bytes = { min = 1, mx = 2 }"));
        assert_diag(
            &msg,
            8,
            14,
            &["unknown field `mx`", "expected `min` or `max`"],
        );
    }

    #[test]
    fn wrong_type() {
        let msg = err(&MINIMAL.replace("count = 10", "count = \"ten\""));
        assert_diag(
            &msg,
            4,
            9,
            &["invalid type: string \"ten\"", "expected i64"],
        );
        let msg = err(&MINIMAL.replace("duration = \"1s\"", "duration = 1"));
        assert_diag(
            &msg,
            2,
            12,
            &["invalid type: integer `1`", "a duration string"],
        );
    }
}
