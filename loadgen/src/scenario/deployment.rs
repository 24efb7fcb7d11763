//! The `[deployment]` section: what serves the clients. One feed-server with its in-memory
//! history (the default, as before), or feed-servers sharing a Redis Streams backend, one or
//! several, behind nginx.
//!
//! With Redis the feed's generator runs in a *publisher* feed-server of its own (the build
//! runner: not behind the balancer, not hit by instance faults), and the instances clients
//! reach serve what Redis holds (`--gen-topics 0`). `run::deploy` starts and stops them.
//!
//! The short form `memory`, `redis`, `nginx:N` names the three deployments compared by the
//! cost report; `pushbench run --deployment` and a sweep over `deployment` take it.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// Where the feed's lines live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Each feed-server's own history (lost when it dies).
    #[default]
    Memory,
    /// Redis Streams shared by every instance (survives an instance; a Redis restart keeps
    /// what Redis persisted).
    Redis,
}

/// What clients connect to when there are instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balancer {
    /// Straight to the (single) instance.
    #[default]
    None,
    /// nginx, rendered from `deploy/nginx/pushbench.conf.template`.
    Nginx,
}

/// How the run's redis-server keeps its data across its own restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedisPersistence {
    /// Append-only file, `appendfsync everysec`: a restart loses at most about a second.
    #[default]
    Aof,
    /// Nothing on disk: a restart loses everything.
    None,
}

/// A validated `[deployment]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub backend: Backend,
    /// Serving feed-server instances, 1..=[`MAX_INSTANCES`]; more than one needs a balancer
    /// and the Redis backend.
    pub instances: u32,
    pub balancer: Balancer,
    /// nginx `worker_processes`.
    pub nginx_workers: u32,
    pub redis_persistence: RedisPersistence,
}

/// The most instances one machine runs sensibly (each is a process with its own runtime).
pub const MAX_INSTANCES: u32 = 16;

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            backend: Backend::Memory,
            instances: 1,
            balancer: Balancer::None,
            nginx_workers: 1,
            redis_persistence: RedisPersistence::Aof,
        }
    }
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "memory" => Some(Backend::Memory),
            "redis" => Some(Backend::Redis),
            _ => None,
        }
    }
}

impl Balancer {
    pub fn name(self) -> &'static str {
        match self {
            Balancer::None => "none",
            Balancer::Nginx => "nginx",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Balancer::None),
            "nginx" => Some(Balancer::Nginx),
            _ => None,
        }
    }
}

impl RedisPersistence {
    pub fn name(self) -> &'static str {
        match self {
            RedisPersistence::Aof => "aof",
            RedisPersistence::None => "none",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "aof" => Some(RedisPersistence::Aof),
            "none" => Some(RedisPersistence::None),
            _ => None,
        }
    }
}

/// Why a short form (`memory`, `redis`, `nginx:N`) is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShortFormError {
    #[error("unknown deployment {0:?}, expected `memory`, `redis` or `nginx[:N]` (N instances, 1..={MAX_INSTANCES})")]
    Unknown(String),
    #[error("`nginx:{0}`: the instance count must be 1..={MAX_INSTANCES}")]
    Instances(String),
}

impl Deployment {
    /// `memory`: one feed-server, in-memory history. `redis`: Redis, the publisher and one
    /// instance, no balancer. `nginx[:N]`: Redis, the publisher and N instances (default 2)
    /// behind nginx. Every other setting keeps its default.
    pub fn from_short(text: &str) -> Result<Self, ShortFormError> {
        let base = Deployment::default();
        let text = text.trim();
        match text.split_once(':').unwrap_or((text, "")) {
            ("memory", "") => Ok(base),
            ("redis", "") => Ok(Deployment {
                backend: Backend::Redis,
                ..base
            }),
            ("nginx", n) => {
                let instances = match n {
                    "" => 2,
                    n => n
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_INSTANCES).contains(n))
                        .ok_or_else(|| ShortFormError::Instances(n.to_string()))?,
                };
                Ok(Deployment {
                    backend: Backend::Redis,
                    instances,
                    balancer: Balancer::Nginx,
                    ..base
                })
            }
            _ => Err(ShortFormError::Unknown(text.to_string())),
        }
    }

    /// The default (one in-memory feed-server): scenarios serialize without the section.
    pub fn is_default(&self) -> bool {
        *self == Deployment::default()
    }

    /// Whether pushbench starts a redis-server for it.
    pub fn uses_redis(&self) -> bool {
        self.backend == Backend::Redis
    }

    pub fn uses_nginx(&self) -> bool {
        self.balancer == Balancer::Nginx
    }
}

/// `memory`, `redis`, `nginx:2`, or the full settings when they differ from a short form.
impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.backend.name())?;
        if self.uses_nginx() {
            write!(f, "+nginx")?;
        }
        if self.instances > 1 || self.uses_nginx() {
            write!(f, " ×{}", self.instances)?;
        }
        Ok(())
    }
}

// Serialized as the file writes it.
impl Serialize for Deployment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The keys that apply only: the file rejects the others.
        let mut st = s.serialize_struct("Deployment", 5)?;
        st.serialize_field("backend", self.backend.name())?;
        st.serialize_field("instances", &self.instances)?;
        st.serialize_field("balancer", self.balancer.name())?;
        if self.uses_nginx() {
            st.serialize_field("nginx_workers", &self.nginx_workers)?;
        }
        if self.uses_redis() {
            st.serialize_field("redis_persistence", self.redis_persistence.name())?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(Deployment::from_short("memory"), Ok(Deployment::default()));
        let redis = Deployment::from_short("redis").unwrap();
        assert_eq!((redis.backend, redis.instances), (Backend::Redis, 1));
        assert_eq!(redis.balancer, Balancer::None);
        let nginx = Deployment::from_short("nginx").unwrap();
        assert_eq!((nginx.instances, nginx.balancer), (2, Balancer::Nginx));
        assert_eq!(Deployment::from_short("nginx:3").unwrap().instances, 3);
        assert!(matches!(
            Deployment::from_short("nginx:0"),
            Err(ShortFormError::Instances(_))
        ));
        assert!(matches!(
            Deployment::from_short("haproxy"),
            Err(ShortFormError::Unknown(_))
        ));
        assert_eq!(nginx.to_string(), "redis+nginx ×2");
    }
}
