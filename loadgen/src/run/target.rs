//! The server under test: a fresh `feed-server` pushbench starts (pinned), or an external
//! target it only connects to; and the processes whose memory and CPU are its cost.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{Cluster, ClusterError};
use crate::endpoint::{Endpoint, EndpointError};
use crate::monitor::{MonitorError, ServerProcesses};
use crate::orchestrate::{OrchestrateError, ServerProcess};
use crate::scenario::{Scenario, ServerSelector, Transport};

use super::plan::server_args;
use super::RunOptions;

/// How long an external target gets to accept one connection before the run is refused.
const REACHABLE_WITHIN: Duration = Duration::from_secs(3);

/// Why the server under test could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("the target at {host} ({addr}) is not reachable")]
    Unreachable {
        host: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the target at {host} ({addr}) did not accept a connection within 3 s")]
    NoAnswer {
        host: String,
        addr: std::net::SocketAddr,
    },
    #[error(transparent)]
    Server(#[from] OrchestrateError),
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error("starting the deployment")]
    Cluster(#[from] ClusterError),
}

/// The server of one transport's run.
pub struct ServerUnderTest {
    /// The feed-server pushbench started, if it started one.
    pub process: Option<ServerProcess>,
    /// Where clients connect.
    pub endpoint: Endpoint,
    /// The processes sampled for its cost; `None` for an external target that names none.
    pub watch: Option<ServerProcesses>,
    /// A `[deployment]` other than the single in-memory feed-server: its processes (then
    /// `process` is `None`).
    pub cluster: Option<Cluster>,
}

impl ServerUnderTest {
    /// Starts feed-server (its log at `log`) or checks the external target is there.
    pub async fn start(
        sc: &Scenario,
        transport: Transport,
        log: &Path,
        opts: &RunOptions,
    ) -> Result<Self, TargetError> {
        if sc.target.is_none() && !sc.deployment.is_default() {
            let binary = sc
                .server
                .binary
                .clone()
                .unwrap_or_else(|| opts.server_binary.clone());
            let dir = log.parent().unwrap_or(Path::new("."));
            let cluster = Cluster::start(
                sc.deployment,
                &binary,
                &server_args(sc, transport),
                opts.pinning.as_ref().map(|p| p.server_cpus.as_slice()),
                dir,
            )
            .await?;
            let endpoint = Endpoint::feed_server(cluster.front(), transport);
            let watch = Some(cluster.watch()?);
            return Ok(ServerUnderTest {
                process: None,
                endpoint,
                watch,
                cluster: Some(cluster),
            });
        }
        let (process, endpoint) = match &sc.target {
            Some(target) => {
                let endpoint = Endpoint::external(target, transport).await?;
                // A target that is not there is a clear error now, not a run of connect errors.
                let reachable = tokio::time::timeout(
                    REACHABLE_WITHIN,
                    tokio::net::TcpStream::connect(endpoint.addr),
                )
                .await;
                match reachable {
                    Ok(Ok(_)) => {}
                    Ok(Err(source)) => {
                        return Err(TargetError::Unreachable {
                            host: endpoint.host.clone(),
                            addr: endpoint.addr,
                            source,
                        })
                    }
                    Err(_) => {
                        return Err(TargetError::NoAnswer {
                            host: endpoint.host.clone(),
                            addr: endpoint.addr,
                        })
                    }
                }
                (None, endpoint)
            }
            None => {
                let server_cpus = opts.pinning.as_ref().map(|p| p.server_cpus.as_slice());
                let binary = sc
                    .server
                    .binary
                    .clone()
                    .unwrap_or_else(|| opts.server_binary.clone());
                let server = ServerProcess::start(
                    &binary,
                    &server_args(sc, transport),
                    server_cpus,
                    log.to_path_buf(),
                )
                .await?;
                let endpoint = Endpoint::feed_server(server.addr, transport);
                (Some(server), endpoint)
            }
        };
        let selector = sc.target.as_ref().and_then(|t| t.server.as_ref());
        let watch = match (&process, selector) {
            (Some(server), _) => Some(ServerProcesses::pid(server.pid)?),
            (None, Some(ServerSelector::Pid(pid))) => Some(ServerProcesses::pid(*pid)?),
            (None, Some(ServerSelector::Process(name))) => Some(ServerProcesses::named(name)?),
            (None, None) => None,
        };
        Ok(ServerUnderTest {
            process,
            endpoint,
            watch,
            cluster: None,
        })
    }
}
