//! The faults chart: recovery time p50 and p99 per fault and transport (bars), and the
//! reconnect rate after each restart (a line per transport), where back-off and its jitter
//! show as the storm's spread over seconds.

use crate::report::data;
use crate::report::faults::{fault_columns, FaultKind};
use crate::report::verdict::fmt_sig;
use crate::results::TransportResult;

use super::spec::{Axis, Bar, BarGroup, BarPanel, ChartSpec, LegendEntry, Line, LinePanel, Panel};
use super::transport_color;

/// `None` when no run had faults (a happy path gets no faults chart).
pub(super) fn faults_chart(
    scenario: &str,
    runs: &[&TransportResult],
    at: &str,
) -> Option<ChartSpec> {
    if runs.iter().all(|r| r.faults.is_empty()) {
        return None;
    }
    let mut transports: Vec<String> = runs.iter().map(|r| r.transport.clone()).collect();
    transports.sort_by_key(|t| data::transport_order(t));
    transports.dedup();
    let columns = fault_columns(runs);
    let breaking: Vec<_> = columns.iter().filter(|c| c.broke_sessions()).collect();

    let recovery_panel = |title: &str, pick: fn(&crate::results::Percentiles) -> u64| {
        if breaking.is_empty() {
            return Panel::Empty {
                title: title.into(),
                message: "no fault broke a session: nothing to recover from".into(),
            };
        }
        let groups = breaking
            .iter()
            .map(|c| BarGroup {
                // Full labels of several faults would overlap under their bars.
                label: c.short_label.clone(),
                bars: transports
                    .iter()
                    .map(|t| Bar {
                        // No bar (drawn "n/a") where nothing broke or nothing recovered.
                        value: c
                            .results
                            .iter()
                            .find(|(r, _)| &r.transport == t)
                            .and_then(|(_, f)| *f)
                            .filter(|f| f.recovery_us.count > 0)
                            .map(|f| pick(&f.recovery_us) as f64 / 1e6),
                        color: transport_color(t),
                        light: false,
                    })
                    .collect(),
            })
            .collect();
        Panel::Bars(BarPanel {
            title: title.into(),
            y_desc: "fault to first line again (s)".into(),
            groups,
            fmt: fmt_sig,
        })
    };
    let mut panels = vec![
        recovery_panel("Time to recover, p50", |p| p.p50),
        recovery_panel("Time to recover, p99", |p| p.p99),
    ];

    let restarts: Vec<_> = columns
        .iter()
        .filter(|c| c.kind.is_some_and(FaultKind::storms))
        .collect();
    for c in &restarts {
        let lines: Vec<Line> = c
            .results
            .iter()
            .filter_map(|(r, f)| {
                let f = (*f)?;
                Some(Line {
                    color: transport_color(&r.transport),
                    dashed: false,
                    markers: true,
                    // Second k counts the sessions established in [k, k+1) after the restart.
                    points: f
                        .reconnects_per_sec
                        .iter()
                        .enumerate()
                        .map(|(k, n)| (k as f64, *n as f64))
                        .collect(),
                })
            })
            .collect();
        let x_hi = lines
            .iter()
            .map(|l| l.points.len())
            .max()
            .unwrap_or(1)
            .saturating_sub(1)
            .max(1) as f64;
        let y_hi = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(1.0, f64::max);
        panels.push(Panel::Lines(LinePanel {
            title: format!("Reconnects per second after {}", c.label),
            x: Axis::linear("seconds since the restart", 0.0, x_hi),
            y: Axis::linear("sessions established per second", 0.0, y_hi * 1.1),
            lines,
        }));
    }
    if restarts.is_empty() {
        panels.push(Panel::Empty {
            title: "Reconnects per second after a restart".into(),
            message: "the run had no restart".into(),
        });
    }

    let legend = transports
        .iter()
        .map(|t| LegendEntry {
            label: t.clone(),
            color: transport_color(t),
            dashed: false,
            swatch: true,
            light: false,
        })
        .collect();
    let n = panels.len() as u32;
    Some(ChartSpec {
        name: "faults".into(),
        title: format!("Faults: recovery and reconnect storms — {scenario}{at}"),
        size: (1200, 140 + 380 * n),
        cols: 1,
        legend,
        panels,
        footnote: Some(
            "n/a: no session of that transport broke, or none recovered. Recovery is per \
             recovered session; reconnects are counted per second from the restart."
                .into(),
        ),
    })
}
