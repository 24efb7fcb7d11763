//! `https://` and `wss://` targets: a TLS-terminating proxy written here (tokio-rustls, a
//! self-signed rcgen certificate for `localhost`) in front of a real feed-server. Every
//! transport delivers everything over TLS with `target.insecure = true`; wire bytes, TLS
//! records included, agree with the kernel's; without `insecure` the certificate is refused
//! and the run fails with that reason.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use pushbench::results::{ProblemKind, RunStatus};

/// Kills the server when the test ends, pass or fail.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A feed-server with no generator; its `host:port`.
fn start_feed_server() -> (Server, String) {
    let mut child = Command::new(common::feed_server())
        .args(["--listen", "127.0.0.1:0", "--gen-topics", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start feed-server");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    (server, addr)
}

/// Terminates TLS on a port of its own and forwards the plain bytes to `upstream`, on a
/// thread of its own until the test process ends. Returns the port.
fn start_tls_proxy(upstream: String) -> u16 {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = plain.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    port
}

fn scenario(server: &str, tls_port: u16, insecure: bool) -> String {
    format!(
        r#"name = "tls"
transports = ["sse", "ws", "poll"]
duration = "2s"
warmup = "500ms"
drain = "3s"

[clients]
count = 12
ramp_up = "300ms"

[feed]
topics = 3
lines_per_sec = 20.0
line_bytes = 60

[poll]
interval = "200ms"

[target]
sse_url = "https://localhost:{tls_port}/{{topic}}/logs/events"
ws_url = "wss://localhost:{tls_port}/{{topic}}/logs/ws"
poll_url = "https://localhost:{tls_port}/{{topic}}/logs"
publish_url = "http://{server}/{{topic}}/logs"
insecure = {insecure}
"#
    )
}

#[test]
fn tls_targets_deliver_everything_and_count_tls_bytes() {
    let (_server, addr) = start_feed_server();
    let port = start_tls_proxy(addr.clone());
    let dir = common::temp_dir("tls");
    let file = dir.join("tls.toml");
    std::fs::write(&file, scenario(&addr, port, true)).unwrap();
    let run_dir = common::run_pushbench(&file, &dir.join("results"), "tls", &["--no-pin"]);
    let summary = common::summary(&run_dir);
    assert_eq!(summary.runs.len(), 3);
    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        let e = &r.events;
        assert!(e.expected > 12 * 25, "{t}: expected {}", e.expected);
        assert_eq!((e.lost, e.duplicated), (0, 0), "{t}");
        assert_eq!(e.delivered, e.expected, "{t}");
        // TLS records and the handshake are on the wire: more than the line itself.
        let down = r.wire.bytes_down_per_event.expect("bytes per event");
        assert!(down > 60.0, "{t}: {down} B/event");
        assert!(
            r.wire.kernel_diff_down_pct.abs() < 2.0,
            "{t}: counted vs kernel {:?}",
            r.wire
        );
        assert!(r.connect_us.count >= 12, "{t}: {:?}", r.connect_us);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_self_signed_certificate_is_refused_without_insecure() {
    let (_server, addr) = start_feed_server();
    let port = start_tls_proxy(addr.clone());
    let dir = common::temp_dir("tls-refused");
    let file = dir.join("tls.toml");
    std::fs::write(
        &file,
        scenario(&addr, port, false).replace(
            r#"transports = ["sse", "ws", "poll"]"#,
            r#"transports = ["sse"]"#,
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--no-pin", "--out"])
        .arg(dir.join("results"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "no client could connect: the run failed");
    let run_dir = std::fs::read_dir(dir.join("results/tls"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let r = &common::summary(&run_dir).runs[0];
    assert_eq!(r.status, RunStatus::Failed);
    assert!(
        r.problems
            .iter()
            .any(|p| p.kind == ProblemKind::NoClientConnected),
        "{:?}",
        r.problems
    );
    assert!(
        r.connections
            .failure_reasons
            .contains_key("TLS handshake failed"),
        "{:?}",
        r.connections.failure_reasons
    );
    assert!(
        r.connections
            .failure_examples
            .values()
            .any(|e| e.contains("tls handshake") && e.contains("certificate")),
        "{:?}",
        r.connections.failure_examples
    );
    let _ = std::fs::remove_dir_all(&dir);
}
