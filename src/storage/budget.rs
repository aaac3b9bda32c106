//! The upload memory budget: every DMA buffer an upload stages its body in is granted from one
//! process-wide budget (`--upload-memory`), so memory for uploads is bounded whatever clients
//! do (glommio's own io memory silently falls back to the heap when it runs out).
//!
//! Two rules keep many slow or stalled uploads from taking it all: past a quarter of the budget,
//! new buffers are small ([`BUFFER_SMALL_BYTES`] instead of the full size), so a thousand
//! stalled uploads (each holding its one partly filled buffer) fit; and when a buffer does not
//! fit at all, the upload waits for one ([`UploadBudget::acquire`]) before it reads more of its
//! body, which pushes back on the client through TCP instead of buffering.
//!
//! Invariants: `used_bytes` is the sum of the live grants; it exceeds the capacity only by
//! grants of at most [`BUFFER_SMALL_BYTES`] taken when nothing else was granted (so a budget
//! smaller than one buffer cannot deadlock); a grant is given back exactly once (on drop).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default `--upload-memory`: memory for staging buffers of all uploads together.
pub(crate) const UPLOAD_MEMORY_DEFAULT_BYTES: u64 = 256 * 1024 * 1024;
/// Buffer size once more than [`FULL_BUFFERS_SHARE_DIVISOR`]th of the budget is granted.
pub(crate) const BUFFER_SMALL_BYTES: usize = 128 * 1024;
/// Full-size buffers are granted while less than 1 / this of the budget is in use.
const FULL_BUFFERS_SHARE_DIVISOR: u64 = 4;
/// How often a waiting upload checks whether memory came back.
const ACQUIRE_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// The process-wide budget (shared by every core).
#[derive(Debug)]
pub(crate) struct UploadBudget {
    capacity_bytes: u64,
    used_bytes: AtomicU64,
    /// Acquisitions that had to wait (backpressure), since the start.
    waits: AtomicU64,
}

/// Memory granted from the budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct Grant {
    budget: Arc<UploadBudget>,
    bytes: u64,
}

impl Drop for Grant {
    fn drop(&mut self) {
        let before = self
            .budget
            .used_bytes
            .fetch_sub(self.bytes, Ordering::SeqCst);
        assert!(before >= self.bytes, "granted bytes given back twice");
    }
}

impl UploadBudget {
    pub(crate) fn new(capacity_bytes: u64) -> Arc<UploadBudget> {
        Arc::new(UploadBudget {
            capacity_bytes,
            used_bytes: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        })
    }

    /// The size for an upload's next buffer, given the `wanted` size: smaller once more than a
    /// quarter of the budget is granted.
    pub(crate) fn buffer_len(&self, wanted: usize) -> usize {
        let used = self.used_bytes.load(Ordering::Relaxed);
        if used + wanted as u64 <= self.capacity_bytes / FULL_BUFFERS_SHARE_DIVISOR {
            wanted
        } else {
            wanted.min(BUFFER_SMALL_BYTES)
        }
    }

    /// Takes `bytes` from the budget, waiting (without reading more of the body) until they fit.
    pub(crate) async fn acquire(self: &Arc<Self>, bytes: usize) -> Grant {
        let bytes = bytes as u64;
        let mut waited = false;
        loop {
            if let Some(grant) = self.try_acquire(bytes) {
                if waited {
                    self.waits.fetch_add(1, Ordering::Relaxed);
                }
                return grant;
            }
            waited = true;
            glommio::timer::sleep(ACQUIRE_POLL_INTERVAL).await;
        }
    }

    fn try_acquire(self: &Arc<Self>, bytes: u64) -> Option<Grant> {
        let mut used = self.used_bytes.load(Ordering::SeqCst);
        loop {
            // Nothing granted: a small buffer always fits (no deadlock on a tiny budget).
            let fits = used + bytes <= self.capacity_bytes
                || (used == 0 && bytes <= BUFFER_SMALL_BYTES as u64);
            if !fits {
                return None;
            }
            match self.used_bytes.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Some(Grant {
                        budget: self.clone(),
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// (bytes granted now, acquisitions that waited since the start).
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.used_bytes.load(Ordering::Relaxed),
            self.waits.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_stay_within_the_capacity_and_come_back() {
        let budget = UploadBudget::new(4 * 1024 * 1024);
        assert_eq!(budget.buffer_len(1 << 20), 1 << 20);
        let a = budget.try_acquire(1 << 20).expect("fits");
        let b = budget.try_acquire(1 << 20).expect("fits");
        // Past a quarter: small buffers.
        assert_eq!(budget.buffer_len(1 << 20), BUFFER_SMALL_BYTES);
        let c = budget.try_acquire(2 << 20).expect("fits exactly");
        assert!(budget.try_acquire(1).is_none(), "over the capacity");
        assert_eq!(budget.stats().0, 4 << 20);
        drop((a, b, c));
        assert_eq!(budget.stats().0, 0);
        // A budget below one buffer still grants one small buffer at a time.
        let tiny = UploadBudget::new(1024);
        let g = tiny.try_acquire(BUFFER_SMALL_BYTES as u64).expect("first");
        assert!(tiny.try_acquire(BUFFER_SMALL_BYTES as u64).is_none());
        drop(g);
        assert!(tiny.try_acquire(BUFFER_SMALL_BYTES as u64).is_some());
    }

    #[test]
    fn a_waiting_acquire_proceeds_once_memory_comes_back() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let budget = UploadBudget::new(1 << 20);
                let held = budget.acquire(1 << 20).await;
                let waiter = {
                    let budget = budget.clone();
                    glommio::spawn_local(async move { budget.acquire(512 * 1024).await })
                };
                glommio::timer::sleep(Duration::from_millis(20)).await;
                assert_eq!(budget.stats(), (1 << 20, 0), "the waiter holds nothing yet");
                drop(held);
                let got = waiter.await;
                assert_eq!(budget.stats(), (512 * 1024, 1), "granted after waiting");
                drop(got);
            })
            .expect("executor")
            .join()
            .expect("test body");
    }
}
