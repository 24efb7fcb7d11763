//! `feed-server`: see the crate docs in `lib.rs`.

use anyhow::{Context, Result};
use clap::Parser;
use feed_server::config::Args;
use feed_server::{app, listener, serve_with};
use pushbench_feed::{FeedContext, Metrics, Shutdown};

/// jemalloc, because an idle connection's cost is mostly buffers that are allocated but
/// barely touched: hyper's 8 KiB read and header-write buffers each hold one request or
/// response head. jemalloc packs such allocations in slabs without inline headers, so the
/// untouched pages are never faulted in; glibc's malloc writes a chunk header after every
/// buffer, which touches the page where the next begins. Measured at 10,000 idle SSE
/// connections: 7.8 KiB RSS per connection with jemalloc, 11.9 KiB with glibc, 19.9 KiB
/// with mimalloc (which commits whole pages).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Errors are printed as one readable chain (`error: what: why`), never with a stack trace,
/// whatever RUST_BACKTRACE says: they are the user's input problems, not crashes.
fn main() -> std::process::ExitCode {
    match run_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "feed_server=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = args.resolve().map_err(anyhow::Error::msg)?;
    match listener::raise_fd_limit() {
        Ok(n) => tracing::debug!(limit = n, "raised the open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("feed-server");
    if let Some(n) = args.workers {
        anyhow::ensure!(n > 0, "--workers must be at least 1");
        runtime.worker_threads(n);
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;

    let backend = runtime
        .block_on(config.backend.connect(config.memory))
        .map_err(anyhow::Error::msg)?;
    let feed = FeedContext {
        backend,
        metrics: Metrics::new(config.max_connections),
        shutdown: Shutdown::new(),
    };
    let router = app(feed.clone(), &config).map_err(anyhow::Error::msg)?;
    let generator = match config.generator.clone() {
        Some(g) => Some(
            pushbench_feed::generator::spawn(
                g,
                feed.backend.clone(),
                feed.metrics.clone(),
                feed.shutdown.clone(),
                runtime.handle().clone(),
            )
            .map_err(|e| anyhow::anyhow!("generator: {e}"))?,
        ),
        None => None,
    };
    if let Some(g) = &generator {
        // Before `listening on`, so whoever waits for that line has the origin by then (the
        // load generator restarts a killed server with it: --gen-origin-unix-ns).
        println!("generator origin unix_ns={}", g.origin_unix_ns());
    }

    runtime.block_on(async {
        let listener =
            listener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        let http2 = if config.serve.http2.is_some() {
            "HTTP/1.1 and HTTP/2 (h2c prior knowledge)"
        } else {
            "HTTP/1.1 only"
        };
        tracing::info!("serving {http2} on {addr}");
        if let Some(tls) = &config.serve.tls {
            tracing::info!(certificate = ?tls, "TLS on the same port: https://{addr}");
        }
        let signal_feed = feed.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: ending open streams");
            signal_feed.shutdown.trigger();
        });
        serve_with(listener, router, feed.clone(), config.serve.clone())
            .await
            .context("serving")
    })?;
    feed.shutdown.trigger();
    if let Some(g) = generator {
        if let Ok(report) = g.join() {
            tracing::info!(
                lines = report.lines,
                max_lateness_us = report.max_lateness.as_micros() as u64,
                "generator stopped"
            );
        }
    }
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (what the load generator and service managers send).
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
