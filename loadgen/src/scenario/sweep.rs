//! Sweeps: a field's values patched into the raw file, each concrete scenario resolved.

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::error::Diag;
use super::raw::{RawBurst, RawChurn, RawScenario, RawSweep, S};
use super::resolve::{resolve, Check};
use super::{Deployment, Scenario, Sweep, SweepValue};

/// The fields a sweep may vary: every numeric or duration field, and `deployment` (its short
/// forms `memory`, `redis`, `nginx:N`: one command compares the three).
pub const SWEEPABLE_FIELDS: &[&str] = &[
    "duration",
    "warmup",
    "drain",
    "clients.count",
    "clients.ramp_up",
    "clients.zipf_exponent",
    "clients.workers",
    "feed.topics",
    "feed.lines_per_sec",
    "feed.line_bytes",
    "feed.history",
    "feed.burst.every",
    "feed.burst.lines",
    "feed.burst.lines_per_sec",
    "poll.interval",
    "poll.wait",
    "poll.limit",
    "sse.keep_alive",
    "ws.ping_interval",
    "http2.streams_per_connection",
    "churn.session",
    "churn.pause",
    "server.workers",
    "server.max_connections",
    "deployment",
];

/// Why a sweep value could not be put in place.
enum PatchError {
    /// Not in [`SWEEPABLE_FIELDS`].
    Unknown,
    /// The field's optional section is not in the file.
    NoSection(&'static str),
    /// The value does not fit the field's type.
    Type(String),
}

/// Puts `value` (a deserialized TOML value) into `slot`, spanned at the sweep value, so that
/// problems with it point into `[sweep] values`.
fn set<T: DeserializeOwned>(
    slot: &mut S<T>,
    value: &Spanned<toml::Value>,
) -> Result<(), PatchError> {
    let v = T::deserialize(value.get_ref().clone())
        .map_err(|e| PatchError::Type(e.message().to_string()))?;
    *slot = Some(Spanned::new(value.span(), v));
    Ok(())
}

/// A section to put a swept value into, created empty if the file has none (its fields have
/// defaults, or `resolve` reports them missing).
fn sec<T: Default>(s: &mut S<T>) -> &mut T {
    s.get_or_insert_with(|| Spanned::new(0..0, T::default()))
        .get_mut()
}

fn burst(raw: &mut RawScenario) -> Result<&mut RawBurst, PatchError> {
    sec(&mut raw.feed)
        .burst
        .as_mut()
        .map(Spanned::get_mut)
        .ok_or(PatchError::NoSection("feed.burst"))
}

fn churn(raw: &mut RawScenario) -> Result<&mut RawChurn, PatchError> {
    raw.churn
        .as_mut()
        .map(Spanned::get_mut)
        .ok_or(PatchError::NoSection("churn"))
}

fn patch(
    raw: &mut RawScenario,
    field: &str,
    value: &Spanned<toml::Value>,
) -> Result<(), PatchError> {
    match field {
        "duration" => set(&mut raw.duration, value),
        "warmup" => set(&mut raw.warmup, value),
        "drain" => set(&mut raw.drain, value),
        "clients.count" => set(&mut sec(&mut raw.clients).count, value),
        "clients.ramp_up" => set(&mut sec(&mut raw.clients).ramp_up, value),
        "clients.zipf_exponent" => set(&mut sec(&mut raw.clients).zipf_exponent, value),
        "clients.workers" => set(&mut sec(&mut raw.clients).workers, value),
        "feed.topics" => set(&mut sec(&mut raw.feed).topics, value),
        "feed.lines_per_sec" => set(&mut sec(&mut raw.feed).lines_per_sec, value),
        "feed.line_bytes" => set(&mut sec(&mut raw.feed).line_bytes, value),
        "feed.history" => set(&mut sec(&mut raw.feed).history, value),
        "feed.burst.every" => set(&mut burst(raw)?.every, value),
        "feed.burst.lines" => set(&mut burst(raw)?.lines, value),
        "feed.burst.lines_per_sec" => set(&mut burst(raw)?.lines_per_sec, value),
        "poll.interval" => set(&mut sec(&mut raw.poll).interval, value),
        "poll.wait" => set(&mut sec(&mut raw.poll).wait, value),
        "poll.limit" => set(&mut sec(&mut raw.poll).limit, value),
        "sse.keep_alive" => set(&mut sec(&mut raw.sse).keep_alive, value),
        "ws.ping_interval" => set(&mut sec(&mut raw.ws).ping_interval, value),
        "http2.streams_per_connection" => {
            set(&mut sec(&mut raw.http2).streams_per_connection, value)
        }
        "churn.session" => set(&mut churn(raw)?.session, value),
        "churn.pause" => set(&mut churn(raw)?.pause, value),
        "server.workers" => set(&mut sec(&mut raw.server).workers, value),
        "server.max_connections" => set(&mut sec(&mut raw.server).max_connections, value),
        "deployment" => patch_deployment(raw, value),
        _ => Err(PatchError::Unknown),
    }
}

/// A short form (`memory`, `redis`, `nginx:N`) into `[deployment]`: backend, instances and
/// balancer, each spanned at the sweep value. The section's other keys stay as written where
/// they apply (`nginx_workers` behind nginx, `redis_persistence` on Redis) and are dropped
/// where they do not, so one file sweeps all three.
fn patch_deployment(raw: &mut RawScenario, value: &Spanned<toml::Value>) -> Result<(), PatchError> {
    let text = value
        .get_ref()
        .as_str()
        .ok_or_else(|| PatchError::Type("expected a string such as \"nginx:2\"".into()))?;
    let d = Deployment::from_short(text).map_err(|e| PatchError::Type(e.to_string()))?;
    let at = value.span();
    let section = sec(&mut raw.deployment);
    section.backend = Some(Spanned::new(at.clone(), d.backend.name().to_string()));
    section.balancer = Some(Spanned::new(at.clone(), d.balancer.name().to_string()));
    section.instances = Some(Spanned::new(at, i64::from(d.instances)));
    if !d.uses_nginx() {
        section.nginx_workers = None;
    }
    if !d.uses_redis() {
        section.redis_persistence = None;
    }
    Ok(())
}

/// How a sweep value appears in labels: as written, without quotes.
fn value_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolves each concrete scenario of a sweep. Problems go to `diags`, prefixed with the sweep
/// value that causes them. Problems the file has without the sweep are already in `diags` and
/// are not repeated once per value.
pub(super) fn expand_raw_sweep(
    raw: &RawScenario,
    sweep: &Spanned<RawSweep>,
    default_name: &str,
    diags: &mut Vec<Diag>,
) -> (Vec<(String, Scenario)>, Option<Sweep>) {
    let base_diags = diags.clone();
    let at = sweep.span();
    let sw = sweep.get_ref();
    let mut c = Check::default();
    let field = c.required(
        &sw.field,
        &at,
        "sweep.field",
        "the dotted path of the field to vary",
    );
    let values = c.required(
        &sw.values,
        &at,
        "sweep.values",
        "the values the field takes",
    );
    let (Some(field), Some(values)) = (field, values) else {
        diags.extend(c.diags);
        return (Vec::new(), None);
    };
    let name = field.get_ref().as_str();
    if !SWEEPABLE_FIELDS.contains(&name) {
        c.err(
            field.span(),
            format!(
                "unknown sweep field `{name}`, expected one of {}",
                SWEEPABLE_FIELDS
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if values.get_ref().is_empty() {
        c.err(values.span(), "`sweep.values` must not be empty");
    }
    if !c.diags.is_empty() {
        diags.extend(c.diags);
        return (Vec::new(), None);
    }

    let mut variants = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut resolved_values = Vec::new();
    for value in values.get_ref() {
        let label = format!("{name}={}", value_label(value.get_ref()));
        if labels.contains(&label) {
            c.err(
                value.span(),
                format!(
                    "sweep value `{}` is listed twice",
                    value_label(value.get_ref())
                ),
            );
            continue;
        }
        labels.push(label.clone());
        let sweep_value = match value.get_ref() {
            toml::Value::Integer(i) => SweepValue::Integer(*i),
            toml::Value::Float(x) => SweepValue::Float(*x),
            toml::Value::String(s) if name == "deployment" => SweepValue::Text(s.clone()),
            // A bad duration is reported when the concrete scenario is resolved below.
            toml::Value::String(s) => {
                SweepValue::Duration(humantime::parse_duration(s.trim()).unwrap_or_default())
            }
            other => {
                c.err(
                    value.span(),
                    format!(
                        "sweep values must be numbers or duration strings, got {}",
                        other.type_str()
                    ),
                );
                continue;
            }
        };
        let mut patched = raw.clone();
        patched.sweep = None;
        match patch(&mut patched, name, value) {
            Ok(()) => {}
            Err(PatchError::Unknown) => {
                unreachable_field(&mut c, field);
                break;
            }
            Err(PatchError::NoSection(section)) => {
                c.err(
                    field.span(),
                    format!(
                        "sweep field `{name}` is in [{section}], which this file does not have"
                    ),
                );
                break;
            }
            Err(PatchError::Type(msg)) => {
                c.err(value.span(), format!("sweep value for `{name}`: {msg}"));
                continue;
            }
        }
        match resolve(&patched, default_name) {
            Ok(sc) => {
                resolved_values.push(sweep_value);
                variants.push((label, sc));
            }
            Err(found) => {
                for d in found {
                    if !base_diags.contains(&d) {
                        c.err(d.span, format!("with sweep `{label}`: {}", d.message));
                    }
                }
            }
        }
    }
    diags.extend(c.diags);
    let sweep = Sweep {
        field: name.to_string(),
        values: resolved_values,
    };
    (variants, Some(sweep))
}

/// A field in [`SWEEPABLE_FIELDS`] that [`patch`] does not know: a bug here, not in the file;
/// reported rather than panicking.
fn unreachable_field(c: &mut Check, field: &Spanned<String>) {
    c.err(
        field.span(),
        format!(
            "internal error: sweep field `{}` is listed but not handled",
            field.get_ref()
        ),
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::test_util::*;
    use crate::scenario::LineBytes;

    #[test]
    fn sweep_sets_the_field() {
        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = [100, 1000]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0.as_deref(), Some("clients.count=100"));
        assert_eq!(runs[0].1.clients.count, 100);
        assert_eq!(runs[1].0.as_deref(), Some("clients.count=1000"));
        assert_eq!(runs[1].1.clients.count, 1000);
        for (_, run) in &runs {
            assert_eq!(run.sweep, None);
            assert_eq!(run.expand_sweep().len(), 1);
            assert_eq!(run.source, sc.source);
        }

        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"poll.interval\"\nvalues = [\"250ms\", \"2s\"]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs[0].0.as_deref(), Some("poll.interval=250ms"));
        assert_eq!(runs[0].1.poll.interval, Duration::from_millis(250));
        assert_eq!(runs[1].1.poll.interval, Duration::from_secs(2));

        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"feed.line_bytes\"\nvalues = [16, 4096]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(
            runs[1].1.feed.line_bytes,
            LineBytes {
                min: 4096,
                max: 4096
            }
        );

        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"feed.lines_per_sec\"\nvalues = [1, 2.5]\n"
        ));
        let rates: Vec<f64> = sc
            .expand_sweep()
            .iter()
            .map(|(_, s)| s.feed.lines_per_sec)
            .collect();
        assert_eq!(rates, vec![1.0, 2.5]);
    }

    #[test]
    fn sweep_on_unknown_field() {
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.cuont\"\nvalues = [1]\n"
        ));
        assert_diag(
            &msg,
            10,
            9,
            &["unknown sweep field `clients.cuont`", "`clients.count`"],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"churn.pause\"\nvalues = [\"1s\"]\n"
        ));
        assert_diag(
            &msg,
            10,
            9,
            &["`churn.pause` is in [churn], which this file does not have"],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = []\n"
        ));
        assert_diag(&msg, 11, 10, &["`sweep.values` must not be empty"]);
    }

    #[test]
    fn sweep_values_of_wrong_type() {
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = [10, \"5s\", 2.5]\n"
        ));
        assert_diag(
            &msg,
            11,
            15,
            &[
                "sweep value for `clients.count`",
                "invalid type: string \"5s\"",
            ],
        );
        assert_diag(
            &msg,
            11,
            21,
            &[
                "sweep value for `clients.count`",
                "invalid type: floating point `2.5`",
            ],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"duration\"\nvalues = [\"2s\", 3]\n"
        ));
        assert_diag(
            &msg,
            11,
            17,
            &["sweep value for `duration`", "a duration string"],
        );
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"duration\"\nvalues = [true]\n"
        ));
        assert_diag(
            &msg,
            11,
            11,
            &["sweep values must be numbers or duration strings"],
        );
    }

    #[test]
    fn sweep_values_are_validated_like_the_field() {
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"clients.count\"\nvalues = [10, 0, 10]\n"
        ));
        assert_diag(
            &msg,
            11,
            15,
            &["with sweep `clients.count=0`: `clients.count` must be between 1 and 200000, got 0"],
        );
        assert_diag(&msg, 11, 18, &["sweep value `10` is listed twice"]);
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"duration\"\nvalues = [\"2 parsecs\"]\n"
        ));
        assert_diag(
            &msg,
            11,
            11,
            &["with sweep `duration=2 parsecs`", "is not a duration"],
        );
        // A problem elsewhere in the file is reported once, not once per sweep value.
        let msg = err(&format!(
            "{}[sweep]\nfield = \"clients.count\"\nvalues = [1, 2]\n",
            MINIMAL.replace("topics = 2", "topics = 0")
        ));
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert_diag(&msg, 6, 10, &["`feed.topics` must be between 1 and 100000"]);
    }

    #[test]
    fn every_sweepable_field_is_handled() {
        let full = FULL.replace("field = \"clients.count\"", "field = \"duration\"");
        let raw: RawScenario = toml::from_str(&full).expect("parses");
        for field in SWEEPABLE_FIELDS {
            let value = if *field == "deployment" {
                toml::Value::String("nginx:2".into())
            } else if field.ends_with("lines_per_sec") || field.ends_with("exponent") {
                toml::Value::Float(2.0)
            } else if [
                "duration",
                "warmup",
                "drain",
                "every",
                "ramp_up",
                "interval",
                "wait",
                "keep_alive",
                "ping_interval",
                "session",
                "pause",
            ]
            .iter()
            .any(|d| field.ends_with(d))
            {
                toml::Value::String("3s".into())
            } else {
                toml::Value::Integer(3)
            };
            let mut patched = raw.clone();
            let result = patch(&mut patched, field, &Spanned::new(0..0, value));
            assert!(result.is_ok(), "sweep field {field} is not handled");
        }
    }
}
