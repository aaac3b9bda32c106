//! Per-name FIFO locks on one core: changes to the same key (or the same part number of an
//! upload) are applied strictly in arrival order, changes to different names run concurrently.
//!
//! Invariants: a name's lock is held by at most one permit; waiters are served first come, first
//! served (glommio's semaphore queues them); a name's entry exists only while someone holds or
//! waits for its lock, so the table never grows with the number of names ever used.

use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;

/// The locks of one namespace (a bucket's keys, an upload's part numbers).
pub(crate) struct KeyedLocks<K: Eq + Hash + Clone> {
    held: RefCell<HashMap<K, Rc<Semaphore>>>,
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    pub(crate) fn new() -> Rc<KeyedLocks<K>> {
        Rc::new(KeyedLocks {
            held: RefCell::new(HashMap::new()),
        })
    }

    /// Waits for `key`'s turn and holds it until the returned permit drops.
    pub(crate) async fn lock(self: &Rc<Self>, key: K) -> KeyedPermit<K> {
        let sem = self
            .held
            .borrow_mut()
            .entry(key.clone())
            .or_insert_with(|| Rc::new(Semaphore::new(1)))
            .clone();
        sem.acquire(1)
            .await
            .expect("lock semaphores are never closed");
        KeyedPermit {
            locks: self.clone(),
            key,
            sem,
        }
    }

    /// Whether someone holds (or waits for) `key`'s lock.
    pub(crate) fn is_locked<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.held.borrow().contains_key(key)
    }
}

/// A held lock; dropping it lets the next waiter in.
pub(crate) struct KeyedPermit<K: Eq + Hash + Clone> {
    locks: Rc<KeyedLocks<K>>,
    key: K,
    sem: Rc<Semaphore>,
}

impl<K: Eq + Hash + Clone> Drop for KeyedPermit<K> {
    fn drop(&mut self) {
        assert_eq!(self.sem.available(), 0, "a lock is held by one permit");
        self.sem.signal(1);
        // Drop the entry when nobody else holds or waits for it (the map's clone + ours).
        if Rc::strong_count(&self.sem) == 2 && self.sem.available() == 1 {
            self.locks.held.borrow_mut().remove(&self.key);
        }
    }
}
