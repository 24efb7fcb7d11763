//! Graceful shutdown, as one small cloneable type.
//!
//! Open streams (SSE, WebSocket, long-polls) wait on their topic and would hold a graceful
//! shutdown open for ever; every one of them selects on [`Shutdown::wait`] and ends instead.

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The future returned by [`Shutdown::wait`].
pub type ShutdownWait = WaitForCancellationFutureOwned;

/// A shutdown signal: triggered once, observed by any number of tasks.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Starts the shutdown; every waiter wakes.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once the shutdown has been triggered. Owns its state, so it can be stored in
    /// a stream without borrowing.
    pub fn wait(&self) -> ShutdownWait {
        self.token.clone().cancelled_owned()
    }
}
