//! Group commit of directory fsyncs: concurrent commits into one directory share fsyncs.
//!
//! A caller whose rename has completed asks for a sync; if one is already running it waits for the
//! next one to start and finish (a sync that began before its rename might not cover it), so
//! under load N commits cost about two fsyncs instead of N. Invariant: `sync()` returns Ok only
//! after an fsync that *started after the call* has completed successfully — never skipped.

use glommio::io::Directory;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

pub(crate) struct GroupSync {
    dir: Rc<Directory>,
    /// Generation a caller must see completed: bumped by every call.
    requested: Cell<u64>,
    /// Highest generation covered by a finished fsync.
    done: Cell<u64>,
    /// Outcome of the last finished fsync for generations up to `done`.
    last_error: RefCell<Option<(u64, io::ErrorKind, String)>>,
    running: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl GroupSync {
    pub(crate) fn new(dir: Rc<Directory>) -> GroupSync {
        GroupSync {
            dir,
            requested: Cell::new(0),
            done: Cell::new(0),
            last_error: RefCell::new(None),
            running: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// Returns once an fsync of the directory that started after this call has succeeded.
    pub(crate) async fn sync(&self) -> io::Result<()> {
        let gen = self.requested.get() + 1;
        self.requested.set(gen);
        loop {
            if self.done.get() >= gen {
                return match &*self.last_error.borrow() {
                    Some((failed_up_to, kind, msg)) if *failed_up_to >= gen => {
                        Err(io::Error::new(*kind, msg.clone()))
                    }
                    _ => Ok(()),
                };
            }
            if !self.running.get() {
                self.running.set(true);
                let covers = self.requested.get();
                let sync_started = std::time::Instant::now();
                let result = self.dir.sync().await.map_err(io::Error::from);
                crate::obs::record_dir_fsync(sync_started.elapsed());
                if let Err(e) = &result {
                    *self.last_error.borrow_mut() = Some((covers, e.kind(), e.to_string()));
                }
                self.done.set(covers);
                self.running.set(false);
                for w in self.waiters.borrow_mut().drain(..) {
                    w.wake();
                }
                continue;
            }
            // Someone else's fsync is running: wait for it to finish, then look again.
            let seen = self.done.get();
            poll_fn(|cx| {
                if self.done.get() != seen || !self.running.get() {
                    Poll::Ready(())
                } else {
                    self.waiters.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        }
    }
}
