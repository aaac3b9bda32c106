//! Reservations for conditional small writes: the owner checks the condition and holds the
//! key's lock while the accepting core logs the object inline in its own log, then installs it.
//!
//! A small PUT with `If-None-Match` / `If-Match` asks the bucket's owner to *reserve* the key:
//! the owner takes the key's lock, checks the condition and keeps the lock under a reservation
//! id. The accepting core then writes the record to its own log (group commit, body bytes stay
//! on that core) and sends the entry with the id: the owner installs it under the still-held
//! lock and releases it. A write that fails or is abandoned releases the reservation instead
//! (its guard sends the release when dropped).
//!
//! Invariants: between the check and the install no other change of the key runs (the lock);
//! a reservation counts as a change in flight, so its bucket cannot be deleted meanwhile; every
//! reservation ends in exactly one apply or release.

use crate::storage::error::StorageResult;
use crate::storage::index::{IndexEntry, WriteCondition};
use crate::storage::owner::{check_write_condition, no_such_bucket, InFlight, Owner, Reservation};

impl Owner {
    /// Takes `key`'s lock and checks `condition`; returns the reservation id holding the lock.
    pub(crate) async fn reserve(
        &self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> StorageResult<u64> {
        let b = self.bucket(bucket)?;
        let inflight = InFlight::new(&b);
        let permit = b.key_locks.lock(key.to_string()).await;
        check_write_condition(&b.shared.objects, key, condition)?;
        let id = self.next_reservation.get() + 1;
        self.next_reservation.set(id);
        let r = Reservation {
            bucket: b,
            key: key.to_string(),
            _permit: permit,
            _inflight: inflight,
        };
        self.reservations.borrow_mut().insert(id, r);
        Ok(id)
    }

    /// Installs the entry whose record the reserving core made durable, and releases the key.
    pub(crate) async fn apply_reserved(
        &self,
        id: u64,
        incarnation: u64,
        key: &str,
        entry: IndexEntry,
    ) -> StorageResult<()> {
        let r = self
            .reservations
            .borrow_mut()
            .remove(&id)
            .expect("an applied reservation is held");
        assert_eq!(r.key, key, "a reservation is applied to its key");
        if r.bucket.shared.incarnation != incarnation {
            return Err(no_such_bucket(&r.bucket.shared.name));
        }
        let durable = crate::storage::owner::Durable::of_entry(&entry);
        let displaced = r.bucket.install(key, Some(entry), durable, &self.catalog);
        self.discard(&r.bucket, displaced).await;
        drop(r);
        Ok(())
    }

    /// Ends a reservation without a write.
    pub(crate) fn release(&self, id: u64) {
        let r = self.reservations.borrow_mut().remove(&id);
        assert!(r.is_some(), "a released reservation is held");
    }
}
