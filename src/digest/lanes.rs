//! Multi-lane MD5: one hasher per core batches the MD5 work of that core's concurrent uploads
//! into the SIMD lanes of md5-many, from a low-priority task queue.
//!
//! An upload hands over each filled staging buffer ([`Md5Stream::push`]: shared, read-only
//! bytes) instead of hashing it in place; the core's hasher takes the streams with work in
//! turn, one slice of at most [`MD5_SLICE_BYTES`] per stream per round, and hashes up to
//! [`MD5_BATCH_LANES_MAX`] of them in one `update_many` call. Because it runs when the uploads'
//! own tasks have nothing to do, every upload that received a buffer meanwhile fills a lane; and
//! when fewer streams wait than are uploading on the core, it lingers up to [`MD5_LINGER`] (not
//! while any upload is blocked on it) so the others can join the batch. A lone stream is hashed
//! by the single-stream compressor; a batch narrower than a SIMD width is padded with dummy lanes
//! (md5-many's kernels for 8 and 16 equal-length lanes are many times faster than its others:
//! `cargo bench --bench hot_paths -- md5_lanes`).
//!
//! Invariants: each stream's bytes are hashed exactly once and in the order pushed; a stream is
//! queued at most once, and a batch holds at most one slice per stream; all lanes of a batch
//! hash the same length (the shortest slice); dummy lanes never touch a stream's state; a stream
//! holds at most [`MD5_JOBS_PER_STREAM_MAX`] unhashed buffers (its pusher waits, which is the
//! backpressure when hashing falls behind). md-5 is the reference in the property tests.

use md5_many::{Md5Many, Md5State};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};

/// Streams hashed together in one batch (AVX-512 holds 16 MD5 lanes).
pub(crate) const MD5_BATCH_LANES_MAX: usize = 16;
/// Bytes a stream contributes to one batch (small enough that a round leaves the core quickly).
pub(crate) const MD5_SLICE_BYTES: usize = 32 * 1024;
/// Unhashed buffers a stream may hold before its pusher waits.
pub(crate) const MD5_JOBS_PER_STREAM_MAX: usize = 4;
/// Batch widths with fast md5-many kernels; a batch is padded up to the first that fits it.
const MD5_PADDED_WIDTHS: [usize; 2] = [8, 16];
/// Longest the hasher waits for more uploads' buffers before hashing a batch narrower than the
/// uploads active on its core.
pub(crate) const MD5_LINGER: std::time::Duration = std::time::Duration::from_micros(250);
/// Relative CPU share of the hasher's task queue (glommio's default queue has 1000).
const HASHER_SHARES: usize = 250;

/// Bytes handed over for hashing: shared and never written while held.
pub(crate) type SharedBytes = Box<dyn AsRef<[u8]>>;

/// Read by the dummy lanes of a padded batch.
static ZEROS: [u8; MD5_SLICE_BYTES] = [0; MD5_SLICE_BYTES];

/// Batches hashed and stream slices in them, over all cores (for the stop line).
static BATCHES: AtomicU64 = AtomicU64::new(0);
static SLICES: AtomicU64 = AtomicU64::new(0);

/// (batches, stream slices hashed in them) since the process started.
pub fn lane_stats() -> (u64, u64) {
    (
        BATCHES.load(Ordering::Relaxed),
        SLICES.load(Ordering::Relaxed),
    )
}

/// One stream's MD5 state and the buffers waiting for the hasher.
struct StreamInner {
    state: Cell<Md5State>,
    /// Pushed buffers and how much of the front one is hashed.
    jobs: RefCell<VecDeque<SharedBytes>>,
    front_done: Cell<usize>,
    /// In the hasher's queue (or its current batch).
    queued: Cell<bool>,
    /// The stream's owner, waiting for its jobs to drain.
    waiter: Cell<Option<Waker>>,
}

impl StreamInner {
    fn new(state: Md5State) -> Rc<StreamInner> {
        Rc::new(StreamInner {
            state: Cell::new(state),
            jobs: RefCell::new(VecDeque::new()),
            front_done: Cell::new(0),
            queued: Cell::new(false),
            waiter: Cell::new(None),
        })
    }

    fn has_work(&self) -> bool {
        !self.jobs.borrow().is_empty()
    }

    /// Hashed `n` more bytes of the front job; drops it when done and wakes the owner.
    fn advance(&self, n: usize) {
        let done = self.front_done.get() + n;
        let mut jobs = self.jobs.borrow_mut();
        let front_len = jobs.front().expect("a job").as_ref().as_ref().len();
        assert!(done <= front_len);
        if done == front_len {
            jobs.pop_front();
            self.front_done.set(0);
            if let Some(w) = self.waiter.take() {
                w.wake();
            }
        } else {
            self.front_done.set(done);
        }
    }
}

/// The unhashed rest of `s`'s front job, at most `max` bytes. `s` must have work.
fn front_slice(jobs: &VecDeque<SharedBytes>, done: usize, max: usize) -> &[u8] {
    let bytes = jobs.front().expect("a job").as_ref().as_ref();
    &bytes[done..bytes.len().min(done + max)]
}

/// Hashes one round: the next slice of every stream in `batch` (all with work), all lanes the
/// length of the shortest.
fn hash_round(engine: Md5Many, batch: &[Rc<StreamInner>]) {
    assert!(!batch.is_empty() && batch.len() <= MD5_BATCH_LANES_MAX);
    let jobs: Vec<_> = batch.iter().map(|s| s.jobs.borrow()).collect();
    let slices: Vec<&[u8]> = jobs
        .iter()
        .zip(batch)
        .map(|(j, s)| front_slice(j, s.front_done.get(), MD5_SLICE_BYTES))
        .collect();
    let len = slices.iter().map(|s| s.len()).min().expect("a slice");
    assert!(len > 0, "queued jobs are never empty");
    if batch.len() == 1 {
        let mut state = batch[0].state.get();
        state.update(&slices[0][..len]);
        batch[0].state.set(state);
    } else {
        let width = MD5_PADDED_WIDTHS
            .into_iter()
            .find(|w| *w >= batch.len())
            .expect("a batch fits the widest width");
        let mut states = [Md5State::new(); MD5_BATCH_LANES_MAX];
        let mut inputs: [&[u8]; MD5_BATCH_LANES_MAX] = [&ZEROS[..len]; MD5_BATCH_LANES_MAX];
        for (i, (s, slice)) in batch.iter().zip(&slices).enumerate() {
            states[i] = s.state.get();
            inputs[i] = &slice[..len];
        }
        engine.update_many(&mut states[..width], &inputs[..width]);
        for (i, s) in batch.iter().enumerate() {
            s.state.set(states[i]);
        }
    }
    drop(jobs);
    for s in batch {
        s.advance(len);
    }
    BATCHES.fetch_add(1, Ordering::Relaxed);
    SLICES.fetch_add(batch.len() as u64, Ordering::Relaxed);
}

/// A core's hasher: the streams with work, in turn.
struct Lanes {
    queue: RefCell<VecDeque<Rc<StreamInner>>>,
    /// The hasher task, waiting for work.
    idle: Cell<Option<Waker>>,
    /// Streams alive on this core (uploads that pushed and have not settled).
    active: Cell<usize>,
    /// Streams whose owner is waiting for the hasher.
    blocked: Cell<usize>,
}

impl Lanes {
    fn wake_hasher(&self) {
        if let Some(w) = self.idle.take() {
            w.wake();
        }
    }

    /// Worth waiting for more streams: the queue holds fewer than are active and nobody waits.
    fn wants_more(&self) -> bool {
        let target = self.active.get().min(MD5_BATCH_LANES_MAX);
        self.blocked.get() == 0 && self.queue.borrow().len() < target
    }

    fn enqueue(&self, s: &Rc<StreamInner>) {
        if !s.queued.replace(true) {
            self.queue.borrow_mut().push_back(s.clone());
        }
        self.wake_hasher();
    }

    /// Moves up to a batch of streams with work from the queue's front into `batch`.
    fn take_batch(&self, batch: &mut Vec<Rc<StreamInner>>) {
        let mut q = self.queue.borrow_mut();
        while batch.len() < MD5_BATCH_LANES_MAX {
            match q.pop_front() {
                Some(s) if s.has_work() => batch.push(s),
                Some(s) => s.queued.set(false), // abandoned: its owner dropped the jobs
                None => break,
            }
        }
    }

    /// Streams of `batch` that still have work go to the back of the queue.
    fn requeue(&self, batch: &mut Vec<Rc<StreamInner>>) {
        let mut q = self.queue.borrow_mut();
        for s in batch.drain(..) {
            if s.has_work() {
                q.push_back(s);
            } else {
                s.queued.set(false);
            }
        }
    }
}

thread_local! {
    /// This thread's hasher and the executor it runs on (glommio's executor ids are unique in
    /// the process): a later executor on the same thread starts a hasher of its own.
    static LANES: RefCell<Option<(usize, Rc<Lanes>)>> = const { RefCell::new(None) };
}

/// This executor's hasher; started (in its own low-priority task queue) on first use.
fn lanes() -> Rc<Lanes> {
    let executor = glommio::executor().id();
    LANES.with(|l| {
        if let Some((id, lanes)) = &*l.borrow() {
            if *id == executor {
                return lanes.clone();
            }
        }
        let lanes = Rc::new(Lanes {
            queue: RefCell::new(VecDeque::new()),
            idle: Cell::new(None),
            active: Cell::new(0),
            blocked: Cell::new(0),
        });
        *l.borrow_mut() = Some((executor, lanes.clone()));
        spawn_hasher(lanes.clone());
        lanes
    })
}

fn spawn_hasher(lanes: Rc<Lanes>) {
    let tq = glommio::executor().create_task_queue(
        glommio::Shares::Static(HASHER_SHARES),
        glommio::Latency::NotImportant,
        "md5-lanes",
    );
    glommio::spawn_local_into(run_hasher(lanes), tq)
        .expect("the hasher's task queue was just created")
        .detach();
}

async fn run_hasher(lanes: Rc<Lanes>) {
    let engine = Md5Many::new();
    let mut batch = Vec::with_capacity(MD5_BATCH_LANES_MAX);
    loop {
        poll_fn(|cx| {
            if lanes.queue.borrow().is_empty() {
                lanes.idle.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        if lanes.wants_more() {
            linger(&lanes).await;
        }
        lanes.take_batch(&mut batch);
        if !batch.is_empty() {
            hash_round(engine, &batch);
            lanes.requeue(&mut batch);
        }
        // Let the uploads run between rounds: they bring the next batch's lanes.
        glommio::executor().yield_task_queue_now().await;
    }
}

/// Waits until the batch would be full or someone is blocked, at most [`MD5_LINGER`].
async fn linger(lanes: &Lanes) {
    let enough = poll_fn(|cx| {
        if lanes.wants_more() {
            lanes.idle.set(Some(cx.waker().clone()));
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    });
    futures_lite::future::or(enough, async {
        glommio::timer::sleep(MD5_LINGER).await;
    })
    .await;
}

/// One upload's MD5, hashed by its core's hasher. Dropped, its unhashed buffers are released.
pub(crate) struct Md5Stream {
    inner: Rc<StreamInner>,
    lanes: Rc<Lanes>,
}

impl Md5Stream {
    /// Continues from `state` (bytes already hashed in place). Must run on a glommio executor.
    pub(crate) fn new(state: Md5State) -> Md5Stream {
        let lanes = lanes();
        lanes.active.set(lanes.active.get() + 1);
        Md5Stream {
            inner: StreamInner::new(state),
            lanes,
        }
    }

    /// Queues `bytes` (after everything pushed before); waits first while the stream already
    /// holds [`MD5_JOBS_PER_STREAM_MAX`] unhashed buffers.
    pub(crate) async fn push(&self, bytes: SharedBytes) {
        self.wait_until(|jobs| jobs < MD5_JOBS_PER_STREAM_MAX).await;
        if bytes.as_ref().as_ref().is_empty() {
            return;
        }
        self.inner.jobs.borrow_mut().push_back(bytes);
        self.lanes.enqueue(&self.inner);
    }

    /// Waits until everything pushed is hashed; returns the state.
    pub(crate) async fn settle(&self) -> Md5State {
        self.wait_until(|jobs| jobs == 0).await;
        self.inner.state.get()
    }

    /// Waits until `ready(jobs queued)`; meanwhile counts as blocked, so the hasher does not
    /// linger.
    async fn wait_until(&self, ready: impl Fn(usize) -> bool) {
        let blocked = Blocked {
            lanes: &self.lanes,
            counted: Cell::new(false),
        };
        poll_fn(|cx| {
            if ready(self.inner.jobs.borrow().len()) {
                return Poll::Ready(());
            }
            self.inner.waiter.set(Some(cx.waker().clone()));
            if !blocked.counted.replace(true) {
                self.lanes.blocked.set(self.lanes.blocked.get() + 1);
                self.lanes.wake_hasher();
            }
            Poll::Pending
        })
        .await
    }
}

/// A stream's owner counted in [`Lanes::blocked`] until this is dropped (also when the wait is
/// abandoned).
struct Blocked<'a> {
    lanes: &'a Lanes,
    counted: Cell<bool>,
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        if self.counted.get() {
            self.lanes.blocked.set(self.lanes.blocked.get() - 1);
        }
    }
}

impl Drop for Md5Stream {
    fn drop(&mut self) {
        self.lanes.active.set(self.lanes.active.get() - 1);
        // The hasher skips a queued stream without jobs.
        self.inner.jobs.borrow_mut().clear();
        self.inner.front_done.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest as _, Md5};
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    /// `data` cut at `cuts` (taken modulo its length) into the jobs of one stream.
    fn jobs_of(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.extend([0, data.len()]);
        points.sort_unstable();
        points.dedup();
        points
            .windows(2)
            .map(|w| data[w[0]..w[1]].to_vec())
            .collect()
    }

    /// Runs `fut` on a new executor on this thread.
    fn run_here(fut: impl std::future::Future<Output = ()>) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("executor")
            .run(fut);
    }

    proptest! {
        /// Any number of streams, cut anywhere, hashed in rounds of any batch size and order,
        /// padded or not, give md-5's digest for each stream.
        #[test]
        fn rounds_equal_the_reference(
            streams in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..200_000),
                 prop::collection::vec(0usize..200_000, 0..6)),
                1..24),
            picks in prop::collection::vec((1usize..=MD5_BATCH_LANES_MAX, any::<u64>()), 1..64),
            already in 0usize..100,
        ) {
            let engine = Md5Many::new();
            let inners: Vec<Rc<StreamInner>> = streams.iter().map(|(data, cuts)| {
                // The first bytes hashed in place, as BodyDigests does before the first push.
                let head = already.min(data.len());
                let mut state = Md5State::new();
                state.update(&data[..head]);
                let s = StreamInner::new(state);
                for job in jobs_of(&data[head..], cuts) {
                    s.jobs.borrow_mut().push_back(Box::new(job));
                }
                s
            }).collect();
            let mut pick = picks.iter().cycle();
            loop {
                let mut with_work: Vec<_> = inners.iter().filter(|s| s.has_work()).cloned().collect();
                if with_work.is_empty() {
                    break;
                }
                let (width, seed) = pick.next().expect("cycle");
                let by = (*seed as usize) % with_work.len();
                with_work.rotate_left(by);
                with_work.truncate(*width);
                hash_round(engine, &with_work);
            }
            for ((data, _), s) in streams.iter().zip(&inners) {
                prop_assert_eq!(s.state.get().finalize(), reference(data));
            }
        }
    }

    /// Uploads pushing concurrently on one core, through the real hasher task, each get md-5's
    /// digest; a second executor on the same thread gets a hasher of its own.
    #[test]
    fn concurrent_streams_on_the_hasher_task_equal_the_reference() {
        run_here(async {
            for round in 0..2u8 {
                let tasks: Vec<_> = (0..13u32)
                    .map(|i| {
                        glommio::spawn_local(async move {
                            let len = 1 + (i as usize * 97_331 + round as usize * 7) % 600_000;
                            let data: Vec<u8> =
                                (0..len).map(|b| (b as u32 * 31 + i) as u8).collect();
                            let mut digests = crate::digest::BodyDigests::new(Default::default());
                            let cut = len / 3;
                            digests.update_checks(&data);
                            for chunk in data[..len - cut].chunks(65_536) {
                                digests.push_md5(Box::new(chunk.to_vec())).await;
                                glommio::yield_if_needed().await;
                            }
                            digests.settle_md5(&data[len - cut..]).await;
                            let md5 = digests.finish().expect("no expectations").md5;
                            assert_eq!(md5, reference(&data), "stream {i}");
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
            }
        });
        let (batches, slices) = lane_stats();
        assert!(batches > 0 && slices >= batches);
        // A new executor on this thread: the first one's hasher is gone with it.
        run_here(async {
            let mut digests = crate::digest::BodyDigests::new(Default::default());
            digests.push_md5(Box::new(vec![7u8; 100_000])).await;
            digests.settle_md5(&[]).await;
            assert_eq!(
                digests.finish().expect("ok").md5,
                reference(&[7u8; 100_000])
            );
        });
    }

    /// A stream dropped with buffers still queued releases them; the hasher goes on.
    #[test]
    fn a_dropped_stream_releases_its_buffers() {
        run_here(async {
            let held = Rc::new(vec![1u8; 300_000]);
            struct Tracked(Rc<Vec<u8>>);
            impl AsRef<[u8]> for Tracked {
                fn as_ref(&self) -> &[u8] {
                    &self.0
                }
            }
            let stream = Md5Stream::new(Md5State::new());
            stream.push(Box::new(Tracked(held.clone()))).await;
            assert_eq!(Rc::strong_count(&held), 2);
            drop(stream);
            assert_eq!(
                Rc::strong_count(&held),
                1,
                "dropping the stream drops its jobs"
            );
            let other = Md5Stream::new(Md5State::new());
            other.push(Box::new(vec![2u8; 10])).await;
            let mut state = other.settle().await;
            state.update(&[]);
            assert_eq!(state.finalize(), reference(&[2u8; 10]));
        });
    }
}
