//! The collector of problems and its checks of single values.

use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use crate::scenario::error::Diag;
use crate::scenario::raw::{DurationText, S};
use crate::scenario::MAX_DURATION;

/// Collects problems while resolving; each check returns a placeholder after a problem so
/// that resolution goes on and finds the rest.
#[derive(Default)]
pub(crate) struct Check {
    pub(crate) diags: Vec<Diag>,
}

/// The lower bound of a duration.
#[derive(Clone, Copy)]
pub(super) enum Least {
    Zero,
    Positive,
}

impl Check {
    pub(crate) fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diag {
            span,
            message: message.into(),
        });
    }

    /// The value, or a "missing" problem at `at` (the section's header, or the file's start).
    pub(crate) fn required<'r, T>(
        &mut self,
        value: &'r S<T>,
        at: &Range<usize>,
        key: &str,
        what: &str,
    ) -> Option<&'r Spanned<T>> {
        if value.is_none() {
            self.err(at.clone(), format!("missing `{key}` ({what})"));
        }
        value.as_ref()
    }

    pub(super) fn duration(
        &mut self,
        value: Option<&Spanned<DurationText>>,
        key: &str,
        default: Duration,
        least: Least,
    ) -> Duration {
        let Some(v) = value else { return default };
        let text = v.get_ref().0.trim();
        let d = match humantime::parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}`: {text:?} is not a duration ({e}); expected e.g. \"5s\" or \"500ms\""
                    ),
                );
                return default;
            }
        };
        if matches!(least, Least::Positive) && d.is_zero() {
            self.err(v.span(), format!("`{key}` must be greater than zero"));
            return default;
        }
        if d > MAX_DURATION {
            self.err(
                v.span(),
                format!(
                    "`{key}` = {text:?} is longer than the maximum of {}",
                    humantime::format_duration(MAX_DURATION)
                ),
            );
            return default;
        }
        d
    }

    pub(super) fn integer(
        &mut self,
        value: Option<&Spanned<i64>>,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> u32 {
        let Some(v) = value else { return default };
        let n = *v.get_ref();
        match u32::try_from(n) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` must be between {} and {}, got {n}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    /// A finite float above zero (or at least zero with `allow_zero`).
    pub(super) fn rate(
        &mut self,
        value: Option<&Spanned<f64>>,
        key: &str,
        default: f64,
        allow_zero: bool,
    ) -> f64 {
        let Some(v) = value else { return default };
        let x = *v.get_ref();
        if !x.is_finite() || x < 0.0 || (x == 0.0 && !allow_zero) {
            let bound = if allow_zero {
                "at least"
            } else {
                "greater than"
            };
            self.err(
                v.span(),
                format!("`{key}` must be a finite number {bound} zero, got {x}"),
            );
            return default;
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::test_util::*;

    #[test]
    fn bad_duration_string() {
        let msg = err(&MINIMAL.replace("duration = \"1s\"", "duration = \"5 sekunden\""));
        assert_diag(
            &msg,
            2,
            12,
            &[
                "`duration`",
                "\"5 sekunden\" is not a duration",
                "\"500ms\"",
            ],
        );
        let msg = err(&MINIMAL.replace("duration = \"1s\"", "duration = \"0s\""));
        assert_diag(&msg, 2, 12, &["`duration` must be greater than zero"]);
        let msg = err(&format!("{MINIMAL}[poll]\nwait = \"10m\"\n"));
        assert_diag(&msg, 10, 8, &["`poll.wait` must be at most 2m"]);
    }
}
