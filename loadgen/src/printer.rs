//! The terminal table of a run: one row per transport, the figures that decide.

use std::fmt::Write as _;

use crate::results::Summary;

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
