//! `--backend`: where the feed lives. `memory` (the default) keeps it in this process;
//! `redis://HOST:PORT` keeps it in Redis Streams, so several servers behind one balancer serve
//! one feed (see `pushbench_feed::redis` for the design).

use std::sync::Arc;

use pushbench_feed::memory::MemoryConfig;
use pushbench_feed::redis::{RedisBackend, RedisConfig};
use pushbench_feed::{MemoryBackend, SharedBackend};

/// The default `--redis-prefix`.
pub const DEFAULT_REDIS_PREFIX: &str = "pushbench";

/// What `--backend` names.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The in-process hub.
    #[default]
    Memory,
    /// Redis Streams at this URL, keys under this prefix.
    Redis { url: String, prefix: String },
}

/// Parses `--backend`: `memory` or a `redis://` URL (checked, not connected to).
pub fn parse_backend(s: &str) -> Result<String, String> {
    if s == "memory" {
        return Ok(s.to_string());
    }
    if s.starts_with("redis") {
        pushbench_feed::redis::check_url(s).map_err(|e| e.to_string())?;
        return Ok(s.to_string());
    }
    Err(format!(
        "expected `memory` or a Redis URL like redis://127.0.0.1:6379, got {s:?}"
    ))
}

impl BackendChoice {
    /// Builds the backend; for Redis, connects (failing within a few seconds, naming the URL
    /// and the reason, if Redis cannot be reached). Call within the tokio runtime.
    pub async fn connect(&self, memory: MemoryConfig) -> Result<SharedBackend, String> {
        match self {
            BackendChoice::Memory => Ok(Arc::new(MemoryBackend::new(memory))),
            BackendChoice::Redis { url, prefix } => {
                let backend = RedisBackend::connect(RedisConfig {
                    url: url.clone(),
                    prefix: prefix.clone(),
                    history: memory.history,
                    max_topics: memory.max_topics,
                })
                .await
                .map_err(|e| format!("--backend {url}: {e}"))?;
                Ok(Arc::new(backend))
            }
        }
    }
}
