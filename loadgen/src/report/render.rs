//! What goes into the reports: the document of a run (`report.md`, `report.html`) and of a
//! comparison (`compare.md` and the terminal table).

use std::path::Path;

use super::charts::ChartFile;
use super::data;
use super::doc::{Doc, Inline};
use super::faults::{
    self, bystander_vs_calm, connections_hit, fault_columns, has_faults, missing, recovery_missing,
    FaultColumn, FaultKind,
};
use super::spread::Spread;
use super::verdict::{
    self, fmt_bytes, fmt_sig, fmt_us, FaultsVerdict, Figure, Metric, Verdict, VerdictGroup, CLAIM,
    TIE_TOLERANCE,
};
use crate::results::{Percentiles, Summary, ThreadScheduling, TransportResult};

/// A chart's path relative to the document, with `/` whatever the platform.
fn rel(path: &Path, base: &Path) -> String {
    let p = path.strip_prefix(base).unwrap_or(path);
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The document of one run.
pub fn run_report(
    summary: &Summary,
    verdict: &Verdict,
    charts: &[ChartFile],
    run_dir: &Path,
) -> Doc {
    let mut doc = Doc::new(format!("pushbench report: {}", summary.scenario));
    // What went wrong comes first: a reader must see it before any figure.
    let problems: Vec<String> = summary
        .runs
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(move |p| format!("{} ({}): {}", run_label(r), r.status, p.message))
        })
        .collect();
    if !problems.is_empty() {
        doc.inlines(vec![Inline::Strong(format!(
            "Not every run went as planned ({} problem{}):",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ))]);
        doc.list(problems);
    }
    doc.inlines(vec![
        Inline::Strong("Verdict:".into()),
        Inline::Text(format!(" {}", verdict.headline())),
    ]);

    doc.heading(2, "Scenario and environment");
    scenario_table(&mut doc, summary);

    doc.heading(2, format!("Verdict: is \"{CLAIM}\" true here?"));
    doc.para(format!(
        "Lower is better for every metric. Each cell: the transport's figure, its ratio to the best \
         (×1.00 is the best), and its rank. Values within {:.0}% of a tie group's smallest value, or \
         within the metric's measurement resolution, share a rank (ranks 1, 1, 3). \"polling\" is the \
         better of poll and long-poll for each metric, so polling loses only if its best variant loses. \
         The claim holds for a metric when rank(sse) ≤ rank(ws) ≤ rank(polling); a tie does not \
         contradict it. Failed runs are left out. With repetitions, a cell is the median with its \
         95% interval [low–high], ranks also tie when intervals overlap, and \"not decided\" means \
         the medians alone would break the claim but the intervals overlap. Long-poll's connect \
         time is not ranked: its first answer may be held for the whole wait, so its figure is the \
         TCP connection only.",
        TIE_TOLERANCE * 100.0
    ));
    for group in &verdict.groups {
        if verdict.groups.len() > 1 || group.sweep.is_some() {
            doc.heading(
                3,
                format!(
                    "{}: held on {} of {}",
                    group.sweep.as_deref().unwrap_or("without sweep"),
                    group.held(),
                    group.checked()
                ),
            );
        }
        verdict_table(&mut doc, group);
    }
    for f in &verdict.faults {
        faults_verdict_table(&mut doc, f);
    }

    doc.heading(2, "Caveats");
    if verdict.caveats.is_empty() {
        doc.para("None found: the load generator kept up, no events were lost or duplicated, every run had enough latency samples and wire bytes matched the kernel's counts.");
    } else {
        doc.list(verdict.caveats.iter().map(|c| c.text.clone()));
    }

    if has_faults(summary) {
        faults_section(&mut doc, summary, run_dir);
    }
    super::http2::section(&mut doc, &super::http2::compare(summary, verdict), verdict);
    deployment_section(&mut doc, summary);
    shards_section(&mut doc, summary);

    doc.heading(2, "Charts");
    if data::is_sweep(summary) {
        doc.para(
            "The per-run charts show the largest swept value; the sweep chart shows every value.",
        );
    }
    for c in charts {
        doc.image(c.title.clone(), rel(&c.png, run_dir), rel(&c.svg, run_dir));
    }

    doc.heading(2, "Per transport");
    details(&mut doc, summary);
    doc
}

fn scenario_table(doc: &mut Doc, s: &Summary) {
    let e = &s.environment;
    let cpus = |v: &[usize]| {
        v.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let pinning = if e.server_cpus.is_empty() && e.loadgen_cpus.is_empty() {
        format!("not pinned; {} load generator worker(s)", e.loadgen_workers)
    } else {
        format!(
            "server on CPUs {}, load generator on CPUs {} ({} worker{})",
            if e.server_cpus.is_empty() {
                "any".into()
            } else {
                cpus(&e.server_cpus)
            },
            if e.loadgen_cpus.is_empty() {
                "any".into()
            } else {
                cpus(&e.loadgen_cpus)
            },
            e.loadgen_workers,
            if e.loadgen_workers == 1 { "" } else { "s" }
        )
    };
    let or_dash = |s: &str| {
        if s.is_empty() {
            "—".to_string()
        } else {
            s.to_string()
        }
    };
    let rows = vec![
        ("Scenario", s.scenario.clone()),
        ("Run id", s.run_id.clone()),
        ("Started", s.started_at.clone()),
        (
            "Finished",
            s.finished_at.clone().unwrap_or_else(|| "—".into()),
        ),
        (
            "Interrupted",
            if s.interrupted { "yes" } else { "no" }.into(),
        ),
        ("Host", or_dash(&e.hostname)),
        (
            "CPU",
            format!("{} ({} cores)", or_dash(&e.cpu_model), e.cpus),
        ),
        ("Memory", fmt_bytes(e.memory_bytes as f64)),
        ("Kernel", or_dash(&e.kernel)),
        ("pushbench", or_dash(&e.pushbench_version)),
        (
            "Git revision",
            match (&e.git_revision, e.git_dirty) {
                (Some(rev), true) => format!("{rev} with uncommitted changes"),
                (Some(rev), false) => rev.clone(),
                (None, _) => "—".into(),
            },
        ),
        (
            "Server binary",
            e.server_binary.clone().unwrap_or_else(|| "—".into()),
        ),
        ("Pinning", pinning),
    ];
    doc.text_table(
        vec!["".into(), "".into()],
        rows.into_iter()
            .map(|(k, v)| vec![k.to_string(), v])
            .collect(),
    );
}

/// The figure whose repetitions strayed furthest, relative to its median.
fn least_stable(group: &VerdictGroup) -> Option<(Metric, String, Spread)> {
    group
        .rows
        .iter()
        .flat_map(|row| {
            row.figures.iter().filter_map(move |f| {
                f.spread
                    .filter(|s| s.n > 1)
                    .map(|s| (row.metric, f.transport.clone(), s))
            })
        })
        .max_by(|a, b| a.2.relative_range().total_cmp(&b.2.relative_range()))
}

fn verdict_table(doc: &mut Doc, group: &VerdictGroup) {
    let mut header = vec!["metric".to_string()];
    header.extend(group.transports.iter().cloned());
    header.extend(["claim".to_string(), "why".to_string()]);
    let rows = group
        .rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.metric.label().to_string()];
            for f in &row.figures {
                let interval = match f.spread {
                    Some(s) if s.n > 1 => format!(
                        " [{}–{}]",
                        row.metric.format(s.low),
                        row.metric.format(s.high)
                    ),
                    _ => String::new(),
                };
                cells.push(match (f.value, f.rank) {
                    (Some(v), Some(rank)) => format!(
                        "{}{interval} (×{}, #{rank})",
                        row.metric.format(v),
                        f.ratio_to_best
                            .map(|r| format!("{r:.2}"))
                            .unwrap_or_else(|| "∞".into())
                    ),
                    _ => "—".into(),
                });
            }
            cells.push(row.claim.label().to_string());
            cells.push(row.note.clone());
            cells
        })
        .collect();
    doc.table(header, rows);
    if let Some((metric, transport, s)) = least_stable(group) {
        doc.para(format!(
            "Run-to-run stability over {} repetitions: the widest spread is {} of {transport}, \
             {}–{} around a median of {} ({:.0}% of it); [low–high] in the table is the 95% \
             interval of each median.",
            s.n,
            metric.label(),
            metric.format(s.min),
            metric.format(s.max),
            metric.format(s.median),
            s.relative_range() * 100.0
        ));
    }
    if !group.excluded.is_empty() {
        doc.para(format!("Excluded (failed): {}.", group.excluded.join(", ")));
    }
}

/// "sse", "sse r2" or "sse @ clients.count=100".
/// The cost of the deployment beside the backend, when a run was on Redis or behind nginx:
/// latency, CPU per delivered event by role, RSS by role, Redis memory per held line.
fn deployment_section(doc: &mut Doc, summary: &Summary) {
    let runs: Vec<&TransportResult> = summary
        .runs
        .iter()
        .filter(|r| r.status.is_measured() && r.deployment.is_some())
        .collect();
    let any_cluster = runs
        .iter()
        .filter_map(|r| r.deployment.as_ref())
        .any(|d| d.backend != "memory" || d.balancer != "none" || d.instances > 1);
    if !any_cluster {
        return;
    }
    doc.heading(2, "Deployment cost");
    doc.para(
        "Each process of the deployment sampled on its own over the measured phase: the serving \
         instances, the publisher (the feed-server running the generator into Redis), \
         redis-server and nginx (master and workers). CPU is per delivered event; a process \
         restarted by a fault counts once per process it ran as. Redis memory per held line: \
         INFO used_memory after the run minus the empty Redis's at its start, over the total \
         XLEN of the topic streams. A dash: the deployment has no such process or figure, \
         with the reason below the table.",
    );
    const ROLES: [&str; 4] = ["instances", "publisher", "redis", "nginx"];
    let mut header: Vec<String> = ["run", "deployment", "p50 ms", "p99 ms", "CPU µs/ev total"]
        .map(String::from)
        .to_vec();
    header.extend(ROLES.map(|r| format!("{r} µs/ev")));
    header.extend(ROLES.map(|r| format!("{r} RSS MiB")));
    header.extend(["Redis B/line".to_string(), "lines held".to_string()]);
    let mut reasons: Vec<String> = Vec::new();
    let rows = runs
        .iter()
        .filter_map(|r| Some((r, r.deployment.as_ref()?)))
        .map(|(r, d)| {
            let mut row = vec![
                run_label(r),
                d.label.clone(),
                ms(r.latency_us.p50),
                ms(r.latency_us.p99),
                fmt_sig(d.cpu_us_per_event_total),
            ];
            row.extend(ROLES.map(|role| {
                d.roles
                    .get(role)
                    .map_or("—".into(), |c| fmt_sig(c.cpu_us_per_event))
            }));
            row.extend(ROLES.map(|role| {
                d.roles.get(role).map_or("—".into(), |c| {
                    fmt_sig(c.rss_end_bytes as f64 / (1024.0 * 1024.0))
                })
            }));
            let m = d.redis_memory.as_ref();
            row.push(m.and_then(|m| m.bytes_per_line).map_or("—".into(), fmt_sig));
            row.push(
                m.and_then(|m| m.lines_held)
                    .map_or("—".into(), |n| n.to_string()),
            );
            for (figure, why) in &d.missing {
                let text = format!("{}: {figure}: {why}", d.label);
                if !reasons.contains(&text) {
                    reasons.push(text);
                }
            }
            row
        })
        .collect();
    doc.table(header, rows);
    if !reasons.is_empty() {
        doc.list(reasons);
    }
}

/// A sharded run's shards: who ran what, whether each load generator kept up, and how far
/// apart the machines' clocks may be (the bound on every latency measured across machines).
fn shards_section(doc: &mut Doc, summary: &Summary) {
    let runs: Vec<&TransportResult> = summary
        .runs
        .iter()
        .filter(|r| !r.shards.is_empty())
        .collect();
    if runs.is_empty() {
        return;
    }
    doc.heading(2, "Shards");
    let merged = !summary.shards.is_empty();
    doc.para(match merged {
        true => format!(
            "Merged by `pushbench merge` from {} shard runs ({}): histograms added and counters              summed, never percentiles averaged; the server's samples are taken once, from the              first shard that sampled it. Load generator CPU is summed over all shards' cores: a              saturated shard is flagged on its own, since the sum can hide it.",
            summary.shards.len(),
            summary
                .shards
                .iter()
                .map(|s| format!(
                    "{} on {}{}",
                    s.label(),
                    s.hostname,
                    s.run_dir.as_deref().map(|d| format!(", {d}")).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        false => "One shard of a sharded run: merge it with the others (`pushbench merge OUT DIR...`) for the run's figures.".into(),
    });
    let header = [
        "run",
        "shard",
        "host",
        "clients",
        "delivered",
        "lost",
        "publishes",
        "loadgen CPU",
        "timer lag p99 ms",
        "saturated",
        "clock offset ms",
        "± ms",
    ]
    .map(String::from)
    .to_vec();
    let mut bound_ns: Option<u64> = None;
    let mut missing = Vec::new();
    let mut rows = Vec::new();
    for r in &runs {
        for f in &r.shards {
            if let Some(b) = f.clock_bound_ns() {
                bound_ns = Some(bound_ns.map_or(b, |x| x.max(b)));
            }
            if let Some(why) = &f.clock_missing {
                let text = format!("{}: clock offset not measured: {why}", f.shard);
                if !missing.contains(&text) {
                    missing.push(text);
                }
            }
            rows.push(vec![
                run_label(r),
                f.shard.clone(),
                f.hostname.clone(),
                f.clients.to_string(),
                f.delivered.to_string(),
                f.lost.to_string(),
                if f.publishes { "yes" } else { "no" }.into(),
                format!("{:.0}% of {}", f.loadgen_cpu_share * 100.0, f.loadgen_cores),
                ms(f.sched_lag_p99_us),
                match f.saturated {
                    true => format!("yes: {}", f.saturation_notes.join("; ")),
                    false => "no".into(),
                },
                f.clock
                    .as_ref()
                    .map_or("—".into(), |c| fmt_sig(c.offset_ns as f64 / 1e6)),
                f.clock
                    .as_ref()
                    .map_or("—".into(), |c| fmt_sig(c.uncertainty_ns as f64 / 1e6)),
            ]);
        }
    }
    doc.table(header, rows);
    doc.para(match bound_ns {
        Some(b) => format!(
            "Clocks: each shard measured its offset to the server (GET /_pushbench/time, the              exchange with the shortest round trip of several, NTP-style). Latency is receipt              time minus the scheduled publish time, read on two machines' clocks when the              publishing shard and a receiving shard differ: offsets are recorded, not              subtracted, so latencies across shards are comparable within ±{} ms (the largest              |offset| + uncertainty).",
            fmt_sig(b as f64 / 1e6)
        ),
        None => "Clocks: no shard could measure its offset to the server, so no bound on cross-machine latency error is known; on one machine there is none.".into(),
    });
    if !missing.is_empty() {
        doc.list(missing);
    }
}

fn run_label(r: &TransportResult) -> String {
    r.label()
}

fn ms(us: u64) -> String {
    fmt_sig(us as f64 / 1000.0)
}

fn pct_row(label: String, p: &Percentiles) -> Vec<String> {
    vec![
        label,
        p.count.to_string(),
        ms(p.min),
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p99_9),
        ms(p.p99_99),
        ms(p.max),
    ]
}

fn details(doc: &mut Doc, s: &Summary) {
    let mut runs: Vec<&TransportResult> = Vec::new();
    for g in data::groups(s) {
        runs.extend(g.runs);
    }
    let h = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();

    doc.heading(3, "Events");
    doc.table(
        h(&[
            "run",
            "status",
            "measured s",
            "expected",
            "delivered",
            "lost",
            "duplicated",
            "out of order",
            "catch-up",
            "deliveries/s",
        ]),
        runs.iter()
            .map(|r| {
                let e = &r.events;
                vec![
                    run_label(r),
                    r.status.to_string(),
                    fmt_sig(r.measured_seconds),
                    e.expected.to_string(),
                    e.delivered.to_string(),
                    e.lost.to_string(),
                    e.duplicated.to_string(),
                    e.out_of_order.to_string(),
                    e.catch_up.to_string(),
                    fmt_sig(r.deliveries_per_sec),
                ]
            })
            .collect(),
    );

    let pct_header = |what: &str| {
        let mut v = vec![format!("{what} (ms)"), "samples".into()];
        v.extend(["min", "p50", "p90", "p99", "p99.9", "p99.99", "max"].map(String::from));
        v
    };
    doc.heading(3, "Delivery latency");
    doc.table(
        pct_header("latency"),
        runs.iter()
            .map(|r| pct_row(run_label(r), &r.latency_us))
            .collect(),
    );
    doc.heading(3, "Connect and first event");
    let mut rows = Vec::new();
    for r in &runs {
        rows.push(pct_row(format!("{} connect", run_label(r)), &r.connect_us));
        rows.push(pct_row(
            format!("{} first event", run_label(r)),
            &r.first_event_us,
        ));
    }
    doc.table(pct_header("time"), rows);
    doc.table(
        h(&[
            "connections",
            "clients",
            "connects ok",
            "connect errors",
            "disconnects",
            "failure reasons",
        ]),
        runs.iter()
            .map(|r| {
                let c = &r.connections;
                let reasons: Vec<String> = c
                    .failure_reasons
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                vec![
                    run_label(r),
                    c.clients.to_string(),
                    c.connects_ok.to_string(),
                    c.connect_errors.to_string(),
                    c.disconnects.to_string(),
                    if reasons.is_empty() {
                        "—".into()
                    } else {
                        reasons.join("; ")
                    },
                ]
            })
            .collect(),
    );

    doc.heading(3, "Wire bytes");
    doc.table(
        h(&[
            "run",
            "B/event down",
            "B/event up",
            "counted down",
            "kernel down",
            "diff down",
            "counted up",
            "kernel up",
            "diff up",
        ]),
        runs.iter()
            .map(|r| {
                let w = &r.wire;
                vec![
                    run_label(r),
                    fmt_missing(w.bytes_down_per_event, fmt_sig),
                    fmt_missing(w.bytes_up_per_event, fmt_sig),
                    fmt_bytes(w.bytes_down as f64),
                    fmt_bytes(w.kernel_bytes_down as f64),
                    format!("{:.2}%", w.kernel_diff_down_pct),
                    fmt_bytes(w.bytes_up as f64),
                    fmt_bytes(w.kernel_bytes_up as f64),
                    format!("{:.2}%", w.kernel_diff_up_pct),
                ]
            })
            .collect(),
    );

    doc.heading(3, "Server cost");
    doc.table(
        h(&[
            "run",
            "RSS baseline",
            "RSS connected",
            "RSS/connection",
            "CPU µs/event",
            "CPU µs/conn·s",
            "CPU cores",
            "fds",
            "threads",
            "exit",
        ]),
        runs.iter()
            .map(|r| {
                let v = &r.server;
                if !v.measured {
                    let mut row = vec![run_label(r)];
                    row.extend((0..9).map(|_| NOT_MEASURED.to_string()));
                    return row;
                }
                vec![
                    run_label(r),
                    fmt_bytes(v.rss_baseline_bytes as f64),
                    fmt_bytes(v.rss_connected_bytes as f64),
                    fmt_bytes(v.rss_per_connection_bytes),
                    fmt_sig(v.cpu_us_per_event),
                    fmt_sig(v.cpu_us_per_connection_second),
                    fmt_sig(v.cpu_cores),
                    v.fds_connected.to_string(),
                    v.threads.to_string(),
                    if v.exit.is_empty() {
                        "—".into()
                    } else {
                        v.exit.clone()
                    },
                ]
            })
            .collect(),
    );

    let polls: Vec<Vec<String>> = runs
        .iter()
        .filter_map(|r| {
            r.poll.as_ref().map(|p| {
                vec![
                    run_label(r),
                    p.requests.to_string(),
                    p.empty.to_string(),
                    format!("{:.1}%", p.empty_share * 100.0),
                    fmt_sig(p.requests_per_sec),
                ]
            })
        })
        .collect();
    if !polls.is_empty() {
        doc.heading(3, "Polling");
        doc.para(
            "Requests answered inside the measured phase (ramp-up, warm-up and drain left out).",
        );
        doc.table(
            h(&["run", "requests", "empty", "empty share", "requests/s"]),
            polls,
        );
    }

    let publishers: Vec<Vec<String>> = runs
        .iter()
        .filter_map(|r| {
            r.publisher.as_ref().map(|p| {
                vec![
                    run_label(r),
                    p.scheduled.to_string(),
                    p.published.to_string(),
                    p.unpublished.to_string(),
                    p.failed_attempts.to_string(),
                    p.retries.to_string(),
                    fmt_us(p.lag_us.p50 as f64),
                    fmt_us(p.lag_us.p99 as f64),
                    fmt_us(p.lag_us.max as f64),
                    fmt_us(p.post_us.p50 as f64),
                    fmt_us(p.post_us.p99 as f64),
                    match p.scheduling {
                        ThreadScheduling::Realtime => "real-time",
                        ThreadScheduling::Normal => "time-shared",
                    }
                    .to_string(),
                ]
            })
        })
        .collect();
    if !publishers.is_empty() {
        doc.heading(3, "Publisher");
        doc.para(
            "The load generator's own open-loop publisher. Lag: how late a POST started against \
             its schedule, not counting waits for the topic's previous POST (that is the target's \
             time, and shows as latency). POST: from a POST's start to its answer. Unpublished \
             lines are left out of what clients were expected to receive. Threads: real-time \
             (SCHED_FIFO) when the kernel allowed it, otherwise time-shared with the clients.",
        );
        doc.table(
            h(&[
                "run",
                "scheduled",
                "published",
                "unpublished",
                "failed POSTs",
                "retries",
                "lag p50",
                "lag p99",
                "lag max",
                "POST p50",
                "POST p99",
                "threads",
            ]),
            publishers,
        );
    }

    doc.heading(3, "Load generator");
    doc.para(
        "Others' CPU: what processes other than the server and pushbench used during the \
         measured phase, and steal: what the hypervisor took (both from /proc/stat). Either \
         above a small fraction of a core makes the figures noisier than a quiet machine's.",
    );
    doc.table(
        h(&[
            "run",
            "CPU share",
            "cores",
            "CPU µs/event",
            "RSS/client",
            "timer lag p99",
            "timer lag max",
            "saturated",
            "others' CPU",
            "steal",
            "notes",
        ]),
        runs.iter()
            .map(|r| {
                let l = &r.loadgen;
                let m = &r.machine;
                let cores = |c: f64| match m.measured {
                    true => format!("{c:.2} cores"),
                    false => NOT_MEASURED.to_string(),
                };
                vec![
                    run_label(r),
                    format!("{:.0}%", l.cpu_share * 100.0),
                    l.cores.to_string(),
                    fmt_sig(l.cpu_us_per_event),
                    fmt_bytes(l.rss_per_client_bytes),
                    fmt_us(l.sched_lag_us.p99 as f64),
                    fmt_us(l.sched_lag_us.max as f64),
                    if l.saturated {
                        "YES".into()
                    } else {
                        "no".into()
                    },
                    cores(m.other_cpu_cores),
                    cores(m.steal_cores),
                    if l.notes.is_empty() {
                        "—".into()
                    } else {
                        l.notes.join("; ")
                    },
                ]
            })
            .collect(),
    );

    let warnings: Vec<String> = runs
        .iter()
        .flat_map(|r| {
            r.warnings
                .iter()
                .map(move |w| format!("{}: {w}", run_label(r)))
        })
        .collect();
    if !warnings.is_empty() {
        doc.heading(3, "Warnings recorded by the runs");
        doc.list(warnings);
    }
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

/// A ranked figure: "2.03 s (×1.64, #4)", or missing with its reason.
fn ranked_cell(f: &Figure, fmt: impl Fn(f64) -> String, why: Option<&str>) -> String {
    match (f.value, f.rank) {
        (Some(v), Some(rank)) => {
            let interval = match f.spread {
                Some(s) if s.n > 1 => format!(" [{}–{}]", fmt(s.low), fmt(s.high)),
                _ => String::new(),
            };
            format!(
                "{}{interval} (×{}, #{rank})",
                fmt(v),
                f.ratio_to_best
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "∞".into())
            )
        }
        _ => missing(why.unwrap_or("not measured")),
    }
}

/// The verdict's faults group: recovery p99 per fault that broke sessions, and loss.
fn faults_verdict_table(doc: &mut Doc, f: &FaultsVerdict) {
    let at = f
        .sweep
        .as_deref()
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    doc.heading(
        3,
        format!("Faults{at}: who recovered fastest, who lost least"),
    );
    doc.para(format!(
        "Not part of the claim's count. Recovery: the p99 of the time from a fault (or the break \
         it caused) to the first line received again, per fault that broke a session on some \
         transport. Lines lost: lost + lost by restart + lost to lag over the run; a transport \
         that duplicated a line ranks behind every one that did not. Same ranking as above: \
         lower is better, ties within {:.0}% share a rank. A p99 over a few dozen sessions is \
         close to their slowest.",
        TIE_TOLERANCE * 100.0
    ));
    let mut header = vec!["figure".to_string()];
    header.extend(f.transports.iter().cloned());
    header.push("best".into());
    let names = |ts: &[&str]| match ts {
        [] => "none".to_string(),
        [one] => one.to_string(),
        many => format!("{} (tie)", many.join(", ")),
    };
    let mut rows: Vec<Vec<String>> = f
        .recovery
        .iter()
        .map(|row| {
            let mut cells = vec![format!("recovery p99: {}", row.label)];
            cells.extend(row.figures.iter().map(|fig| {
                let why = row
                    .missing
                    .iter()
                    .find(|(t, _)| *t == fig.transport)
                    .map(|(_, w)| w.as_str());
                ranked_cell(fig, fmt_us, why)
            }));
            cells.push(names(&row.fastest()));
            cells
        })
        .collect();
    let mut loss = vec!["lines lost (lost + by restart + to lag)".to_string()];
    loss.extend(f.loss.figures.iter().map(|fig| {
        let cell = ranked_cell(fig, |v| format!("{v:.0}"), None);
        match f.loss.duplicates(&fig.transport) {
            0 => cell,
            n => format!("{cell}, {n} DUPLICATED"),
        }
    }));
    loss.push(names(&f.loss.least()));
    rows.push(loss);
    doc.table(header, rows);
    if f.recovery.is_empty() {
        doc.para("No fault broke a session, so no recovery was timed.");
    }
}

/// The runs the faults section shows, one column each: measured runs, in group order.
fn fault_runs(s: &Summary) -> Vec<&TransportResult> {
    data::groups(s)
        .into_iter()
        .flat_map(|g| g.runs)
        .filter(|r| r.status.is_measured())
        .collect()
}

/// The "Faults" section: totals, one table per fault with a column per run, then the
/// keep-alive, reconnect-storm and isolation views of the kinds that have them.
fn faults_section(doc: &mut Doc, s: &Summary, run_dir: &Path) {
    let runs = fault_runs(s);
    doc.heading(2, "Faults");
    // The server holds history, so a resume must lose and repeat nothing: say so first.
    let alarms: Vec<String> = runs
        .iter()
        .filter(|r| r.events.lost > 0 || r.events.duplicated > 0)
        .map(|r| {
            format!(
                "{}: {} lines lost, {} duplicated",
                run_label(r),
                r.events.lost,
                r.events.duplicated
            )
        })
        .collect();
    if !alarms.is_empty() {
        doc.inlines(vec![Inline::Strong(format!(
            "LOSS UNDER FAULTS: the server holds history, so resuming must lose and repeat nothing, \
             but {}.",
            alarms.join("; ")
        ))]);
    }
    doc.para(
        "Each fault owns the time from its start to the next fault's (or the run's end). \
         Hit: the connections its injector reports it hit. Broken: sessions that ended because \
         of it. Recovery: from the fault (or the break) to the first line received again, per \
         recovered session. Caught up: lines received after a resume that were sent meanwhile. \
         Lost by restart: lines a restarted server no longer had; lost to lag: lines the \
         server's lag policy dropped for a slow client. Bystander p99: the latency of the \
         clients the fault did not touch, against the calm before the first fault. A missing \
         figure says why it is missing; it is never shown as 0.",
    );

    let mut header = vec!["run".to_string()];
    header.extend(
        [
            "reconnects",
            "lost",
            "lost by restart",
            "lost to lag",
            "duplicated",
            "out of order",
            "gaps detected",
            "calm p99",
        ]
        .map(String::from),
    );
    doc.para("Over the whole run (lines lost are counted per run, not per fault):");
    doc.table(
        header,
        runs.iter()
            .map(|r| {
                let e = &r.events;
                vec![
                    run_label(r),
                    r.connections.reconnects.to_string(),
                    e.lost.to_string(),
                    e.lost_by_restart.to_string(),
                    e.lost_to_lag.to_string(),
                    e.duplicated.to_string(),
                    e.out_of_order.to_string(),
                    r.faults
                        .iter()
                        .map(|f| f.gaps_detected)
                        .sum::<u64>()
                        .to_string(),
                    faults::us_or(
                        r.calm_latency_us.as_ref().and_then(faults::p99),
                        "no line before the first fault",
                    ),
                ]
            })
            .collect(),
    );

    let columns = fault_columns(&runs);
    for c in &columns {
        fault_table(doc, c);
    }
    let scenario = faults::run_scenario(run_dir);
    for c in columns
        .iter()
        .filter(|c| c.kind == Some(FaultKind::IdleCut))
    {
        keep_alive_table(doc, c, &scenario);
    }
    for c in columns
        .iter()
        .filter(|c| c.kind.is_some_and(FaultKind::storms))
    {
        storm_table(doc, c);
    }
    for c in columns
        .iter()
        .filter(|c| c.kind == Some(FaultKind::SlowConsumers))
    {
        isolation_table(doc, c);
    }
}

/// One fault: a row per figure, a column per run, its notes under the table.
fn fault_table(doc: &mut Doc, c: &FaultColumn<'_>) {
    doc.heading(3, format!("{}, injected by the {}", c.label, c.injector));
    let mut header = vec!["".to_string()];
    header.extend(c.results.iter().map(|(r, _)| run_label(r)));
    type Cell = fn(&TransportResult, &crate::results::FaultResult) -> String;
    let rows: [(&str, Cell); 13] = [
        ("connections hit", |_, f| connections_hit(f)),
        ("sessions broken", |_, f| f.sessions_broken.to_string()),
        ("connect errors", |_, f| f.connect_errors.to_string()),
        ("reconnects", |_, f| f.reconnects.to_string()),
        ("recovery p50", |_, f| match recovery_missing(f) {
            Some(why) => missing(&why),
            None => fmt_us(f.recovery_us.p50 as f64),
        }),
        ("recovery p99", |_, f| match recovery_missing(f) {
            Some(why) => missing(&why),
            None => format!(
                "{} ({} recovered)",
                fmt_us(f.recovery_us.p99 as f64),
                f.recovery_us.count
            ),
        }),
        ("caught up", |_, f| f.caught_up.to_string()),
        ("lost by restart", |_, f| f.lost_by_restart.to_string()),
        ("lost to lag", |_, f| f.lost_to_lag.to_string()),
        ("duplicated", |_, f| match f.duplicated {
            0 => "0".into(),
            n => format!("{n} DUPLICATED"),
        }),
        ("gaps detected", |_, f| f.gaps_detected.to_string()),
        ("bystander p99 vs calm p99", |r, f| {
            bystander_vs_calm(f, r.calm_latency_us.as_ref())
        }),
        ("server peak CPU", |_, f| match f.server_peak_cpu_cores {
            Some(c) => format!("{c:.2} cores"),
            None => missing("server not sampled"),
        }),
    ];
    doc.table(
        header,
        rows.iter()
            .map(|(name, cell)| {
                let mut cells = vec![name.to_string()];
                cells.extend(c.results.iter().map(|(r, f)| match f {
                    Some(f) => cell(r, f),
                    None => missing("its run has no such fault"),
                }));
                cells
            })
            .collect(),
    );
    // A note every run shares is said once.
    let mut notes: Vec<(String, Vec<String>)> = Vec::new();
    for (r, f) in &c.results {
        for note in f.iter().flat_map(|f| &f.notes) {
            match notes.iter_mut().find(|(n, _)| n == note) {
                Some((_, who)) => who.push(run_label(r)),
                None => notes.push((note.clone(), vec![run_label(r)])),
            }
        }
    }
    let everyone = c.results.len();
    doc.list(notes.into_iter().map(|(note, who)| {
        if who.len() == everyone && everyone > 1 {
            format!("every run: {note}")
        } else {
            format!("{}: {note}", who.join(", "))
        }
    }));
}

/// Keep-alive against an idle cut: what each transport sends when idle, what it costs,
/// and whether the cut broke anything.
fn keep_alive_table(
    doc: &mut Doc,
    c: &FaultColumn<'_>,
    scenario: &Result<crate::scenario::Scenario, String>,
) {
    let idle = faults::idle_timeout(scenario, &c.label);
    doc.heading(3, format!("Keep-alive against {}", c.label));
    doc.para(format!(
        "A connection silent for longer than the idle timeout ({}) is cut. An SSE keep-alive \
         is the comment \":\\n\\n\" (3 bytes) in an HTTP/1.1 chunk, 8 bytes on the wire, sent \
         only once the keep-alive interval passed without a line: 8 × 3600 / interval bytes \
         per connection-hour at most. A WebSocket ping is sent every interval whatever else \
         flows: 2 bytes down and a 6-byte masked pong up, 8 × 3600 / interval bytes per \
         connection-hour. Polls need none: their requests are the traffic. Cuts and \
         recoveries are counted either way.",
        idle.map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_else(|| missing("not known: the run's scenario.toml was not read"))
    ));
    doc.table(
        [
            "run",
            "keep-alive",
            "below the idle timeout",
            "cost per connection-hour",
            "sessions broken",
            "recovery p99",
        ]
        .map(String::from)
        .to_vec(),
        c.results
            .iter()
            .map(|(r, f)| {
                let k = faults::keep_alive(scenario, &r.transport);
                let below = match (k.longest_silence(), idle) {
                    (Some(s), Some(i)) if s < i => "yes: nothing should be cut".to_string(),
                    (Some(_), Some(_)) => "no: a quiet connection is cut".to_string(),
                    (None, Some(_)) => missing("keep-alive not known"),
                    (_, None) => missing("idle timeout not known"),
                };
                let cost = match (&k, k.bytes_per_connection_hour()) {
                    (
                        faults::KeepAlive::WhenIdle {
                            interval,
                            wire_bytes,
                        }
                        | faults::KeepAlive::Ping {
                            interval,
                            wire_bytes,
                        },
                        Some(b),
                    ) => format!(
                        "{} ({wire_bytes} B × 3600 / {} s)",
                        fmt_bytes(b),
                        fmt_sig(interval.as_secs_f64())
                    ),
                    (faults::KeepAlive::Unknown { why }, _) => missing(why),
                    _ => "none beyond its requests".to_string(),
                };
                let (broken, recovery) = match f {
                    Some(f) => (
                        f.sessions_broken.to_string(),
                        match recovery_missing(f) {
                            Some(why) => missing(&why),
                            None => fmt_us(f.recovery_us.p99 as f64),
                        },
                    ),
                    None => (missing("its run has no such fault"), "—".into()),
                };
                vec![run_label(r), k.describe(), below, cost, broken, recovery]
            })
            .collect(),
    );
}

/// A restart's reconnect storm: sessions per second from the restart, and the server's
/// peak CPU meanwhile. Back-off with jitter spreads the storm over several seconds.
fn storm_table(doc: &mut Doc, c: &FaultColumn<'_>) {
    doc.heading(3, format!("Reconnect storm after {}", c.label));
    doc.para(
        "Sessions established in each second from the restart. Clients backing off with \
         jitter spread their reconnects over several seconds instead of one spike.",
    );
    doc.table(
        [
            "run",
            "reconnects per second",
            "peak",
            "seconds with reconnects",
            "server peak CPU",
        ]
        .map(String::from)
        .to_vec(),
        c.results
            .iter()
            .map(|(r, f)| match f {
                Some(f) => vec![
                    run_label(r),
                    f.reconnects_per_sec
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    f.reconnects_per_sec
                        .iter()
                        .max()
                        .copied()
                        .unwrap_or(0)
                        .to_string(),
                    f.reconnects_per_sec
                        .iter()
                        .filter(|n| **n > 0)
                        .count()
                        .to_string(),
                    match f.server_peak_cpu_cores {
                        Some(c) => format!("{c:.2} cores"),
                        None => missing("server not sampled"),
                    },
                ],
                None => {
                    let mut row = vec![run_label(r)];
                    row.extend((0..4).map(|_| missing("its run has no such fault")));
                    row
                }
            })
            .collect(),
    );
}

/// Slow consumers: the lag policy's toll on them, and the fast clients' p99 beside the calm.
fn isolation_table(doc: &mut Doc, c: &FaultColumn<'_>) {
    doc.heading(3, format!("Isolation from {}", c.label));
    doc.para(
        "The slow clients' lines the server's lag policy dropped (lost to lag), and the other \
         clients' latency p99 while they were slow, beside the same clients' calm p99 before \
         the first fault: isolation measured, not assumed.",
    );
    doc.table(
        [
            "run",
            "slow clients",
            "lost to lag",
            "sessions broken",
            "fast clients p99",
            "calm p99",
            "ratio",
        ]
        .map(String::from)
        .to_vec(),
        c.results
            .iter()
            .map(|(r, f)| {
                let Some(f) = f else {
                    let mut row = vec![run_label(r)];
                    row.extend((0..6).map(|_| missing("its run has no such fault")));
                    return row;
                };
                let by = faults::p99(&f.bystander_latency_us);
                let calm = r.calm_latency_us.as_ref().and_then(faults::p99);
                vec![
                    run_label(r),
                    connections_hit(f),
                    f.lost_to_lag.to_string(),
                    f.sessions_broken.to_string(),
                    faults::us_or(by, "no untouched client received a line"),
                    faults::us_or(calm, "no line before the first fault"),
                    match (by, calm) {
                        (Some(b), Some(c)) if c > 0 => format!("×{}", fmt_sig(b as f64 / c as f64)),
                        _ => "—".into(),
                    },
                ]
            })
            .collect(),
    );
}

// ---------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------

/// One compared figure: each side's repetitions (a single run: one value).
struct Delta {
    key: String,
    metric: Metric,
    a: Option<Spread>,
    b: Option<Spread>,
}

impl Delta {
    /// (B − A) / A in percent between the medians, and whether that is better, worse or the
    /// same (lower is better; changes within the tie tolerance count as the same). With
    /// repetitions on both sides a change whose intervals overlap is "not significant".
    fn change(&self) -> (String, &'static str) {
        match (self.a, self.b) {
            (Some(sa), Some(sb)) if sa.median != 0.0 => {
                let (a, b) = (sa.median, sb.median);
                let pct = (b - a) / a.abs() * 100.0;
                let word = if pct.abs() <= TIE_TOLERANCE * 100.0 {
                    "same"
                } else if sa.n > 1 && sb.n > 1 && !sa.separated_from(&sb) {
                    "not significant"
                } else if pct < 0.0 {
                    "better"
                } else {
                    "worse"
                };
                (format!("{pct:+.1}%"), word)
            }
            (Some(a), Some(b)) if a.median == b.median => ("+0.0%".into(), "same"),
            _ => ("n/a".into(), ""),
        }
    }
}

/// A run's key in a comparison: its transport and sweep value, not its repetition.
fn compare_key(r: &TransportResult) -> String {
    match &r.sweep {
        Some(s) => format!("{} @ {s}", r.transport),
        None => r.transport.clone(),
    }
}

/// One metric over every repetition of `key` in `runs`.
fn spread_of(runs: &[&TransportResult], key: &str, m: Metric) -> Option<Spread> {
    let values: Vec<f64> = runs
        .iter()
        .filter(|r| compare_key(r) == key)
        .filter_map(|r| m.value(r))
        .collect();
    Spread::of(&values)
}

/// Two runs side by side.
pub struct Comparison {
    title_a: String,
    title_b: String,
    deltas: Vec<Delta>,
    only_a: Vec<String>,
    only_b: Vec<String>,
    verdict_a: Verdict,
    verdict_b: Verdict,
}

impl Comparison {
    pub fn new(a: &Summary, dir_a: &Path, b: &Summary, dir_b: &Path) -> Self {
        let key = compare_key;
        let ok_a: Vec<&TransportResult> = super::ok_runs(a).collect();
        let ok_b: Vec<&TransportResult> = super::ok_runs(b).collect();
        let mut deltas = Vec::new();
        let mut only_a: Vec<String> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        // A's runs in sweep order (numeric, not alphabetical), each paired with B's twin;
        // repetitions of one transport are compared as a whole.
        for group in data::groups(a) {
            for ra in group.runs.iter().filter(|r| r.status.is_measured()) {
                let k = key(ra);
                if seen.contains(&k) {
                    continue;
                }
                seen.push(k.clone());
                if !ok_b.iter().any(|rb| key(rb) == k) {
                    only_a.push(k);
                    continue;
                }
                for m in Metric::ALL {
                    deltas.push(Delta {
                        key: k.clone(),
                        metric: m,
                        a: spread_of(&ok_a, &k, m),
                        b: spread_of(&ok_b, &k, m),
                    });
                }
            }
        }
        let mut only_b: Vec<String> = Vec::new();
        for rb in &ok_b {
            let k = key(rb);
            if !ok_a.iter().any(|ra| key(ra) == k) && !only_b.contains(&k) {
                only_b.push(k);
            }
        }
        let title = |s: &Summary, d: &Path| {
            format!(
                "{}/{} ({}, started {})",
                s.scenario,
                s.run_id,
                d.display(),
                s.started_at
            )
        };
        Comparison {
            title_a: title(a, dir_a),
            title_b: title(b, dir_b),
            deltas,
            only_a,
            only_b,
            verdict_a: verdict::verdict(a),
            verdict_b: verdict::verdict(b),
        }
    }

    fn verdict_line(v: &Verdict) -> String {
        format!(
            "claim held on {} of {} metrics, {} caveat(s)",
            v.held,
            v.checked,
            v.caveats.len()
        )
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let fmt = |m: Metric, v: Option<Spread>| match v {
            Some(s) if s.n > 1 => format!(
                "{} [{}–{}]",
                m.format(s.median),
                m.format(s.low),
                m.format(s.high)
            ),
            Some(s) => m.format(s.median),
            None => "—".into(),
        };
        self.deltas
            .iter()
            .map(|d| {
                let (pct, word) = d.change();
                vec![
                    d.key.clone(),
                    d.metric.label().into(),
                    fmt(d.metric, d.a),
                    fmt(d.metric, d.b),
                    pct,
                    word.into(),
                ]
            })
            .collect()
    }

    const HEADER: [&'static str; 6] = ["run", "metric", "A", "B", "B vs A", ""];

    /// The table printed on the terminal.
    pub fn text_table(&self) -> String {
        let mut out = format!("A: {}\nB: {}\n\n", self.title_a, self.title_b);
        let mut rows = vec![Self::HEADER.map(String::from).to_vec()];
        rows.extend(self.rows());
        let widths: Vec<usize> = (0..Self::HEADER.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for (n, row) in rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    // Figures right-aligned so digits line up.
                    if (2..=4).contains(&i) {
                        format!("{c:>w$}", w = widths[i])
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if n == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
                out.push('\n');
            }
        }
        if !self.only_a.is_empty() {
            out.push_str(&format!("only in A: {}\n", self.only_a.join(", ")));
        }
        if !self.only_b.is_empty() {
            out.push_str(&format!("only in B: {}\n", self.only_b.join(", ")));
        }
        out.push_str(&format!(
            "\nA: {}\nB: {}\n(lower is better; changes within {:.0}% count as the same; with repetitions on both sides, figures are medians [95% interval] and a change whose intervals overlap is not significant)\n",
            Self::verdict_line(&self.verdict_a),
            Self::verdict_line(&self.verdict_b),
            TIE_TOLERANCE * 100.0
        ));
        out
    }

    /// `compare.md`.
    pub fn document(&self, charts: &[ChartFile], out_dir: &Path) -> Doc {
        let mut doc = Doc::new("pushbench comparison");
        doc.list([
            format!("A: {}", self.title_a),
            format!("B: {}", self.title_b),
        ]);
        doc.heading(2, "Verdicts");
        doc.list([
            format!("A: {}", self.verdict_a.headline()),
            format!("B: {}", self.verdict_b.headline()),
        ]);
        doc.heading(2, "Differences");
        doc.para(format!(
            "Lower is better for every metric; \"B vs A\" is (B − A) / A; changes within {:.0}% count as the same. With repetitions on both sides, figures are medians with their 95% interval and a change whose intervals overlap is not significant.",
            TIE_TOLERANCE * 100.0
        ));
        doc.table(Self::HEADER.map(String::from).to_vec(), self.rows());
        doc.list(
            (!self.only_a.is_empty())
                .then(|| format!("Only in A: {}", self.only_a.join(", ")))
                .into_iter()
                .chain(
                    (!self.only_b.is_empty())
                        .then(|| format!("Only in B: {}", self.only_b.join(", "))),
                ),
        );
        doc.heading(2, "Charts");
        for c in charts {
            doc.image(c.title.clone(), rel(&c.png, out_dir), rel(&c.svg, out_dir));
        }
        for (name, v) in [("A", &self.verdict_a), ("B", &self.verdict_b)] {
            if !v.caveats.is_empty() {
                doc.heading(2, format!("Caveats of {name}"));
                doc.list(v.caveats.iter().map(|c| c.text.clone()));
            }
        }
        doc
    }
}

/// What a table shows for a figure that was not measured (the warnings say why).
const NOT_MEASURED: &str = "— (not measured)";

/// A figure, or [`NOT_MEASURED`].
fn fmt_missing(v: Option<f64>, fmt: impl Fn(f64) -> String) -> String {
    v.map(fmt).unwrap_or_else(|| NOT_MEASURED.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(a: &[f64], b: &[f64]) -> (String, &'static str) {
        Delta {
            key: "sse".into(),
            metric: Metric::LatencyP50,
            a: Spread::of(a),
            b: Spread::of(b),
        }
        .change()
    }

    #[test]
    fn a_change_is_significant_only_when_the_intervals_separate() {
        // Single runs: the change is reported as it is (nothing to test it against).
        assert_eq!(delta(&[100.0], &[120.0]), ("+20.0%".into(), "worse"));
        assert_eq!(delta(&[100.0], &[103.0]).1, "same");
        // Repetitions that separate: a real change.
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let b = [80.0, 81.0, 79.0, 80.5, 79.5];
        assert_eq!(delta(&a, &b), ("-20.0%".into(), "better"));
        // 20 % apart by median, but the repetitions overlap.
        let noisy = [80.0, 130.0, 79.0, 60.0, 81.0];
        assert_eq!(delta(&a, &noisy).1, "not significant");
        assert_eq!(delta(&a, &[]), ("n/a".into(), ""));
    }
}
