//! What a person sees while a run goes on: a live bar on a terminal, a plain line every few
//! seconds otherwise (CI logs), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain lines are printed this often when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub enum Progress {
    Quiet,
    Plain(Arc<Mutex<Option<Instant>>>),
    Bar(ProgressBar),
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos:>4}/{len}s {msg}")
                    .expect("valid progress template")
                    .progress_chars("=> "),
            );
            Progress::Bar(bar)
        } else {
            Progress::Plain(Arc::new(Mutex::new(None)))
        }
    }

    /// A line that is not progress (start and end of a transport).
    pub fn println(&self, line: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Plain(_) => eprintln!("{line}"),
            Progress::Bar(bar) => bar.println(line),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        label: &str,
        elapsed: Duration,
        total: Duration,
        connections: u64,
        deliveries_last_second: u64,
        p99_us: u64,
        clients: u32,
    ) {
        let msg = format!(
            "conns {connections}/{clients}  deliveries/s {deliveries_last_second}  p99 {:.2} ms",
            p99_us as f64 / 1000.0
        );
        match self {
            Progress::Quiet => {}
            Progress::Plain(last) => {
                let mut last = last.lock().expect("progress lock");
                if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                    *last = Some(Instant::now());
                    eprintln!(
                        "{label:>12} {:>4}/{}s {msg}",
                        elapsed.as_secs(),
                        total.as_secs()
                    );
                }
            }
            Progress::Bar(bar) => {
                bar.set_prefix(label.to_string());
                bar.set_length(total.as_secs());
                bar.set_position(elapsed.as_secs().min(total.as_secs()));
                bar.set_message(msg);
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
