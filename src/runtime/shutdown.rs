//! Shutdown signal: a process-wide flag set by SIGINT/SIGTERM, and a per-core future that
//! completes once it is set, so idle connections and accept loops can stop promptly.
//!
//! Invariant: once set the flag never clears; waiters poll it on a short timer, so a signal is
//! noticed within [`SHUTDOWN_POLL`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How often a waiting core looks at the flag.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// In-flight requests get this long to finish after a shutdown signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static CORES_DRAINED: AtomicUsize = AtomicUsize::new(0);

pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

pub fn is_shutting_down() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

/// Completes once shutdown has been requested.
pub async fn wait_for_shutdown() {
    while !is_shutting_down() {
        glommio::timer::sleep(SHUTDOWN_POLL).await;
    }
}

/// Marks this core as drained and waits until all `cores` are, so owner services stay up for
/// peers that still have requests in flight.
pub async fn drained_wait_all(cores: usize) {
    CORES_DRAINED.fetch_add(1, Ordering::SeqCst);
    while CORES_DRAINED.load(Ordering::SeqCst) < cores {
        glommio::timer::sleep(SHUTDOWN_POLL).await;
    }
}
