//! What a deployment costs beside the backend: one group of bars per deployment (in-memory,
//! Redis with one instance, nginx with N), one bar per transport, for the figures a
//! deployment changes: latency p50 and p99, CPU per delivered event (every process, and the
//! instances alone), and Redis's memory per held line. Drawn when the summary has a run on a
//! deployment other than the single in-memory server (a sweep over `deployment`, typically).
//! A figure a deployment cannot have (Redis memory on the memory backend) is drawn "n/a".

use crate::report::data;
use crate::report::verdict::fmt_sig;
use crate::results::{Summary, TransportResult};

use super::spec::{Bar, BarGroup, BarPanel, ChartSpec, Panel};
use super::transport_color;

/// A figure of one run, in the panel's unit.
type Figure = fn(&TransportResult) -> Option<f64>;

const PANELS: [(&str, &str, Figure); 5] = [
    ("Latency p50", "ms", |r| {
        Some(r.latency_us.p50 as f64 / 1000.0)
    }),
    ("Latency p99", "ms", |r| {
        Some(r.latency_us.p99 as f64 / 1000.0)
    }),
    (
        "CPU per delivered event, every process",
        "µs (instances + publisher + redis + nginx)",
        |r| r.deployment.as_ref().map(|d| d.cpu_us_per_event_total),
    ),
    ("CPU per delivered event, instances only", "µs", |r| {
        r.deployment
            .as_ref()
            .and_then(|d| d.roles.get("instances"))
            .map(|c| c.cpu_us_per_event)
    }),
    ("Redis memory per held line", "bytes", |r| {
        r.deployment
            .as_ref()
            .and_then(|d| d.redis_memory.as_ref())
            .and_then(|m| m.bytes_per_line)
    }),
];

/// Whether the summary compares deployments (or ran on one that is not the default).
fn has_deployments(runs: &[TransportResult]) -> bool {
    runs.iter()
        .filter_map(|r| r.deployment.as_ref())
        .any(|d| d.backend != "memory" || d.balancer != "none" || d.instances > 1)
}

/// The deployment chart, or `None` when every run was on the single in-memory server.
pub(super) fn deployment_chart(summary: &Summary) -> Option<ChartSpec> {
    chart_of(&summary.scenario, &summary.runs)
}

fn chart_of(scenario: &str, all_runs: &[TransportResult]) -> Option<ChartSpec> {
    if !has_deployments(all_runs) {
        return None;
    }
    // One group per deployment, in the order they ran; repetitions merged per transport.
    let mut labels: Vec<String> = Vec::new();
    let mut runs_of: Vec<Vec<&TransportResult>> = Vec::new();
    for r in all_runs.iter().filter(|r| r.status.is_measured()) {
        let Some(d) = &r.deployment else { continue };
        match labels.iter().position(|l| *l == d.label) {
            Some(i) => runs_of[i].push(r),
            None => {
                labels.push(d.label.clone());
                runs_of.push(vec![r]);
            }
        }
    }
    let merged: Vec<Vec<TransportResult>> = runs_of
        .iter()
        .map(|rs| data::merge_repetitions(rs))
        .collect();
    let mut transports: Vec<String> = merged
        .iter()
        .flatten()
        .map(|r| r.transport.clone())
        .collect();
    transports.sort_by_key(|t| data::transport_order(t));
    transports.dedup();
    let panels = PANELS
        .iter()
        .map(|&(title, y_desc, figure)| {
            Panel::Bars(BarPanel {
                title: title.into(),
                y_desc: y_desc.into(),
                groups: labels
                    .iter()
                    .zip(&merged)
                    .map(|(label, runs)| BarGroup {
                        label: label.clone(),
                        bars: transports
                            .iter()
                            .map(|t| Bar {
                                value: runs.iter().find(|r| &r.transport == t).and_then(figure),
                                color: transport_color(t),
                                light: false,
                            })
                            .collect(),
                    })
                    .collect(),
                fmt: fmt_sig,
            })
        })
        .collect();
    Some(ChartSpec {
        name: "deployment".into(),
        title: format!("What the deployment costs — {scenario}"),
        size: (1500, 900),
        cols: 3,
        legend: super::spec::line_legend(&transports)
            .into_iter()
            .map(|mut e| {
                e.swatch = true;
                e
            })
            .collect(),
        panels,
        footnote: Some(
            "Bars per transport; n/a: the deployment has no such figure (the memory backend \
             has no Redis). Redis memory per line: INFO used_memory after the run minus the \
             empty Redis, over the streams' total XLEN."
                .into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{DeploymentCost, RoleCostResult};

    fn run(transport: &str, label: &str, backend: &str, cpu: f64) -> TransportResult {
        let mut r = TransportResult {
            transport: transport.into(),
            ..TransportResult::default()
        };
        r.latency_us.p50 = 2000;
        r.latency_us.p99 = 9000;
        let mut d = DeploymentCost {
            label: label.into(),
            backend: backend.into(),
            instances: 1,
            balancer: "none".into(),
            cpu_us_per_event_total: cpu,
            ..DeploymentCost::default()
        };
        d.roles.insert(
            "instances".into(),
            RoleCostResult {
                processes: 1,
                cpu_us_per_event: cpu / 2.0,
                ..RoleCostResult::default()
            },
        );
        r.deployment = Some(d);
        r
    }

    #[test]
    fn one_group_per_deployment_and_missing_figures_stay_missing() {
        let mut runs = vec![
            run("sse", "memory", "memory", 10.0),
            run("ws", "memory", "memory", 12.0),
            run("sse", "redis", "redis", 30.0),
        ];
        let spec = chart_of("x", &runs).expect("a redis run: drawn");
        assert_eq!(spec.panels.len(), 5);
        let Panel::Bars(cpu) = &spec.panels[2] else {
            panic!("bars")
        };
        let labels: Vec<&str> = cpu.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["memory", "redis"]);
        assert_eq!(cpu.groups[0].bars[0].value, Some(10.0));
        assert_eq!(cpu.groups[1].bars[1].value, None, "no ws run on redis");
        let Panel::Bars(redis) = &spec.panels[4] else {
            panic!("bars")
        };
        assert!(redis.groups[0].bars.iter().all(|b| b.value.is_none()));

        runs.truncate(2);
        assert!(chart_of("x", &runs).is_none(), "memory only: no chart");
    }
}
