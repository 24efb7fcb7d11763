//! nginx in front of the instances: the committed template
//! (`deploy/nginx/pushbench.conf.template`, compiled in) rendered into the transport's folder
//! and run in the foreground as pushbench's child.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;

use super::{free_port, pinned_command, ClusterError};

/// The template scripts/cluster.sh renders too; one source for both.
pub const TEMPLATE: &str = include_str!("../../../deploy/nginx/pushbench.conf.template");

/// Where pushbench looks for nginx: PATH first, then Debian's place outside a user's PATH.
pub fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nginx"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

pub const INSTALL_NGINX: &str = "install nginx (scripts/ensure-debian-packages.sh nginx)";

/// The template with its placeholders filled: `prefix` the private directory, `workers`
/// nginx worker processes, `listen` its address, one upstream line per instance. Comment
/// lines are left as written: the template's header names the placeholders, and a multi-line
/// value put into a comment would leave its second line outside it.
pub fn render(prefix: &Path, workers: u32, listen: SocketAddr, upstreams: &[SocketAddr]) -> String {
    let lines: Vec<String> = upstreams
        .iter()
        .map(|a| format!("        server {a} max_fails=1 fail_timeout=2s;"))
        .collect();
    let mut out = String::with_capacity(TEMPLATE.len() + 64 * upstreams.len());
    for line in TEMPLATE.lines() {
        match line.trim_start().starts_with('#') {
            true => out.push_str(line),
            false => out.push_str(
                &line
                    .replace("{{PREFIX}}", &prefix.display().to_string())
                    .replace("{{WORKERS}}", &workers.to_string())
                    .replace("{{LISTEN}}", &listen.to_string())
                    .replace("{{UPSTREAMS}}", &lines.join("\n")),
            ),
        }
        out.push('\n');
    }
    out
}

/// A running nginx (master; its workers are its children).
pub struct NginxProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    pub dir: PathBuf,
}

impl NginxProcess {
    /// Renders the configuration into `dir` (created) and starts nginx on a free loopback
    /// port; waits until it accepts connections.
    pub async fn start(
        dir: &Path,
        workers: u32,
        upstreams: &[SocketAddr],
        cpus: Option<&[usize]>,
    ) -> Result<Self, ClusterError> {
        let binary = nginx_binary().ok_or(ClusterError::Missing {
            program: "nginx",
            hint: INSTALL_NGINX,
        })?;
        let io = |what: String| move |source| ClusterError::Io { what, source };
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        // nginx wants absolute paths for its prefix.
        let dir = std::fs::canonicalize(dir).map_err(io(format!("resolving {}", dir.display())))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, render(&dir, workers, addr, upstreams))
            .map_err(io(format!("writing {}", conf.display())))?;
        let log = dir.join("error.log");
        let mut cmd = pinned_command(&binary, cpus);
        cmd.arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            // Before it reads the configuration nginx logs to its compiled-in path, which an
            // unprivileged user cannot open.
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log"))
                    .map_err(io("creating nginx's stderr.log".into()))?,
            ))
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| ClusterError::Spawn {
            program: binary.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let within = Duration::from_secs(10);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ClusterError::Exited {
                    what: "nginx".into(),
                    how: status.to_string(),
                    log: dir.join("stderr.log"),
                });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::NotReady {
                    what: "nginx".into(),
                    within,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(NginxProcess {
            child,
            addr,
            pid,
            dir,
        })
    }

    /// SIGTERM (nginx's fast shutdown: the master stops its workers) and a wait; SIGKILL after
    /// 10 s. Never SIGKILL first: the workers would outlive their master.
    pub async fn stop(mut self) -> String {
        crate::orchestrate::terminate(&mut self.child, self.pid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_fills_every_placeholder() {
        let upstreams: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.1:4002".parse().unwrap(),
        ];
        let conf = render(
            Path::new("/tmp/pb-nginx"),
            2,
            "127.0.0.1:8088".parse().unwrap(),
            &upstreams,
        );
        // The header comment names them as `{{NAME}}`; no directive keeps one.
        let left: Vec<&str> = conf
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && l.contains("{{"))
            .collect();
        assert!(left.is_empty(), "placeholders left: {left:?}");
        assert!(conf.contains("worker_processes 2;"));
        assert!(conf.contains("listen 127.0.0.1:8088 backlog=4096;"));
        assert!(conf.contains("pid /tmp/pb-nginx/nginx.pid;"));
        assert!(conf.contains("        server 127.0.0.1:4001 max_fails=1 fail_timeout=2s;\n"));
        assert!(conf.contains("        server 127.0.0.1:4002 max_fails=1 fail_timeout=2s;\n"));
        // Only directives are filled: the header comment stays one comment.
        for line in conf.lines().filter(|l| l.contains("max_fails=1")) {
            assert!(
                line.starts_with("        server 127.0.0.1:400") || line.starts_with('#'),
                "{line:?}"
            );
        }
        // What the deployment relies on: streams unbuffered, retries on another instance.
        assert!(conf.contains("proxy_buffering off;"));
        assert!(conf.contains("proxy_next_upstream error timeout"));
        assert!(conf.contains("daemon off;"));
    }
}
