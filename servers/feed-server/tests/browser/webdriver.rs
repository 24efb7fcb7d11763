//! A minimal W3C WebDriver client for headless Chromium, over the hyper HTTP/1.1 client the
//! tests already use: a dozen commands is all these tests need, and a WebDriver crate would
//! bring a TLS stack and a second HTTP client into the build.
//!
//! [`Browser::start`] runs Debian's `chromedriver` (package `chromium-driver`) on a free port
//! and opens a session with a fresh profile; dropping the [`Browser`] ends the session (which
//! closes Chromium), stops chromedriver and removes the profile, also when a test fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// The flags the brief of this suite requires: headless as root, and no background traffic
/// (this machine's network refuses anything but loopback).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

/// Longest wait for chromedriver to listen, and for any single WebDriver command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium driven through chromedriver.
pub struct Browser {
    driver: Child,
    driver_addr: SocketAddr,
    session: String,
    profile: PathBuf,
}

/// Finds `name` on `PATH`, or fails the test naming the Debian package that provides it.
fn require_binary(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: these tests drive a real browser; \
                 install Debian's {package} (scripts/test.sh does)"
            )
        })
}

/// A port free right now. chromedriver takes a port number, not a socket, so there is a small
/// window in which another process could take it; [`Browser::start`] retries then.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a Chromium session. Fails the test, naming the missing binary,
    /// if either is not installed.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// [`Browser::start`] with more Chromium flags (say, `--ignore-certificate-errors` for a
    /// server with a self-signed certificate).
    pub async fn start_with(extra_flags: &[&str]) -> Browser {
        let chromedriver = require_binary("chromedriver", "chromium-driver");
        let chromium = require_binary("chromium", "chromium");
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
            let driver_addr = SocketAddr::from(([127, 0, 0, 1], port));
            match wait_until_listening(&mut driver, driver_addr).await {
                Ok(()) => {}
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    last_error = e;
                    continue;
                }
            }
            let profile = std::env::temp_dir()
                .join(format!("pushbench-chromium-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&profile);
            let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
            args.extend(extra_flags.iter().map(|s| s.to_string()));
            args.push(format!("--user-data-dir={}", profile.display()));
            let capabilities = json!({
                "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": chromium, "args": args },
                }}
            });
            match command(driver_addr, Method::POST, "/session", Some(capabilities)).await {
                Ok(v) => {
                    let session = v["sessionId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no sessionId in {v}"))
                        .to_string();
                    return Browser {
                        driver,
                        driver_addr,
                        session,
                        profile,
                    };
                }
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    let _ = std::fs::remove_dir_all(&profile);
                    panic!("chromedriver could not start {}: {e}", chromium.display());
                }
            }
        }
        panic!("chromedriver did not start: {last_error}");
    }

    async fn session_command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        command(self.driver_addr, method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// Navigates the current tab and waits for the page's `load` event.
    pub async fn goto(&self, url: &str) {
        self.session_command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `return` gives the result) in the current tab.
    pub async fn eval(&self, script: &str) -> Value {
        self.session_command(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Runs `script` with a callback as its last argument (`arguments[0]` here) and returns
    /// what it passes to it.
    pub async fn eval_async(&self, script: &str) -> Value {
        self.session_command(
            Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Evaluates `script` until it returns something other than `null`/`false`, and returns
    /// that. Fails the test after `limit`, showing `explain` (another script) for context.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        limit: Duration,
        explain: &str,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(script).await;
            if !(v.is_null() || v == Value::Bool(false)) {
                return v;
            }
            if Instant::now() > deadline {
                let context = self.eval(explain).await;
                panic!("timed out after {limit:?} waiting for {what}; page: {context}");
            }
            // Bounded polling of page state: WebDriver has no "wait for a JS condition".
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Opens a new tab, switches to it and returns its handle.
    pub async fn new_tab(&self) -> String {
        let v = self
            .session_command(Method::POST, "/window/new", Some(json!({ "type": "tab" })))
            .await;
        let handle = v["handle"].as_str().expect("window handle").to_string();
        self.switch_to(&handle).await;
        handle
    }

    /// The handle of the current tab.
    pub async fn current_tab(&self) -> String {
        let v = self.session_command(Method::GET, "/window", None).await;
        v.as_str().expect("window handle").to_string()
    }

    pub async fn switch_to(&self, handle: &str) {
        self.session_command(Method::POST, "/window", Some(json!({ "handle": handle })))
            .await;
    }

    /// Closes the current tab (switch to another one afterwards).
    pub async fn close_tab(&self) {
        self.session_command(Method::DELETE, "/window", None).await;
    }

    /// A PNG of the current tab's viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.session_command(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("valid base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking on purpose: Drop cannot await, and ending the session is what closes
        // Chromium. Bounded, so a wedged driver cannot hang a failing test.
        let _ = blocking_delete(self.driver_addr, &format!("/session/{}", self.session));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn wait_until_listening(driver: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited with {status} (port taken?)"));
        }
        if command(addr, Method::GET, "/status", None).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "chromedriver not listening on {addr} after {COMMAND_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One WebDriver command; the `value` of its answer, or the WebDriver error as text.
async fn command(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        conn.abort();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "HTTP {status}, not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "HTTP {status}: {} {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    };
    tokio::time::timeout(COMMAND_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {COMMAND_TIMEOUT:?}")))
}

fn blocking_delete(addr: SocketAddr, path: &str) -> std::io::Result<()> {
    let mut stream = StdTcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // chromedriver answers once the browser has quit, and may keep the connection open
    // whatever `Connection: close` says: the first bytes of the answer are the signal.
    let mut first = [0u8; 64];
    match stream.read(&mut first)? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}
