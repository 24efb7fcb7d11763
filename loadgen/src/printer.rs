//! The terminal table of a run: one row per transport, the figures that decide.

use std::fmt::Write as _;

use crate::results::Summary;

/// The verdict's figures as medians over the repetitions, with their 95% intervals.
fn spread_table(out: &mut String, s: &Summary) {
    use crate::report::{verdict, Metric};
    let v = verdict(s);
    let shown = [
        Metric::LatencyP50,
        Metric::LatencyP99,
        Metric::BytesDownPerEvent,
        Metric::RssPerConnection,
        Metric::CpuPerEvent,
    ];
    for g in &v.groups {
        let at = g
            .sweep
            .as_deref()
            .map(|s| format!(" @ {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\nmedians of {} repetitions [95% interval]{at}",
            g.repetitions
        );
        let _ = write!(out, "{:<10}", "transport");
        for m in shown {
            let _ = write!(out, " {:>30}", m.label());
        }
        let _ = writeln!(out);
        for t in &g.transports {
            let _ = write!(out, "{t:<10}");
            for m in shown {
                let cell = g
                    .row(m)
                    .and_then(|row| row.figure(t))
                    .and_then(|f| f.spread)
                    .map(|s| {
                        format!(
                            "{} [{}–{}]",
                            m.format(s.median),
                            m.format(s.low),
                            m.format(s.high)
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                let _ = write!(out, " {cell:>30}");
            }
            let _ = writeln!(out);
        }
    }
}

/// A plain-text table of a summary, with its warnings under it.
pub fn table(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} ({}){}",
        s.scenario,
        s.run_id,
        if s.interrupted {
            " — INTERRUPTED"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10} {:>9}",
        "transport",
        "clients",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "B/ev dn",
        "B/ev up",
        "srv B/conn",
        "srv µs/ev"
    );
    for r in &s.runs {
        let name = r.label();
        if !r.status.is_measured() {
            let _ = writeln!(out, "{name:<22} {}", r.status);
            continue;
        }
        // A figure that was not measured prints as "-", never as 0.
        let opt = |v: Option<f64>, prec: usize| match v {
            Some(v) => format!("{v:.prec$}"),
            None => "-".to_string(),
        };
        let server = |v: f64, prec: usize| opt(r.server.measured.then_some(v), prec);
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>9} {:>9} {:>10} {:>9}",
            name,
            r.connections.clients,
            r.deliveries_per_sec,
            r.latency_us.p50 as f64 / 1000.0,
            r.latency_us.p99 as f64 / 1000.0,
            r.latency_us.max as f64 / 1000.0,
            r.events.lost,
            opt(r.wire.bytes_down_per_event, 1),
            opt(r.wire.bytes_up_per_event, 1),
            server(r.server.rss_per_connection_bytes, 0),
            server(r.server.cpu_us_per_event, 2),
        );
    }
    if s.repeat > 1 {
        spread_table(&mut out, s);
    }
    for r in &s.runs {
        if r.status != crate::results::RunStatus::Ok {
            for p in &r.problems {
                let _ = writeln!(out, "  ! {} {}: {}", r.transport, r.status, p.message);
            }
        }
        for w in &r.warnings {
            let _ = writeln!(out, "  ! {}: {w}", r.transport);
        }
    }
    out
}
