//! Wall clock in the unit every layer stores: milliseconds since the Unix epoch.
//!
//! Invariant: never panics; a clock before 1970 reads as 0.

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
