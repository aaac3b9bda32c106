//! Shutdown signal: a process-wide flag set by SIGINT/SIGTERM (through the runtime), which the
//! connection loop and the accept loops watch so idle connections stop promptly and busy ones
//! finish their request first.
//!
//! Invariant: once set the flag never clears; waiters poll it on a short timer, so a signal is
//! noticed within [`SHUTDOWN_POLL`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a waiting task looks at the flag.
pub(crate) const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

pub(crate) fn is_shutting_down() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

/// Completes once shutdown has been requested.
pub(crate) async fn wait_for_shutdown() {
    while !is_shutting_down() {
        glommio::timer::sleep(SHUTDOWN_POLL).await;
    }
}
