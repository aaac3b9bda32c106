//! Runtime, the top layer: starts one pinned glommio executor per core, each with its own
//! SO_REUSEPORT listener, its [`Store`] (storage) and its [`Server`] (HTTP) serving the
//! [`S3Service`] (S3); stops them all on SIGINT/SIGTERM. Nothing imports this module but the
//! binary and the bench: it hands each layer below what it needs.
//!
//! Invariants: a connection lives on the core that accepted it, start to end; every core listens
//! on the same concrete port (port 0 is resolved once, up front); the process prints its
//! readiness line only after every core is listening; the open-connection count is one atomic
//! for the whole process, so `--max-connections` holds however connections are spread.

pub mod cpus;

use crate::auth::{Credentials, Verifier};
use crate::http::error::{HttpError, HttpErrorCode};
use crate::http::server::Server;
use crate::http::shutdown;
use crate::s3::S3Service;
use crate::storage::{CoreMesh, LoadReport, Store, StoreConfig};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Default `--spin-before-park-us`: 0, parking at once (measured: see the flag's help).
pub const SPIN_BEFORE_PARK_DEFAULT_US: u64 = 0;
/// Largest `--spin-before-park-us` accepted.
pub const SPIN_BEFORE_PARK_MAX_US: u64 = 1_000_000;
/// Default cap on simultaneous client connections.
pub(crate) const MAX_CONNECTIONS_DEFAULT: usize = 4096;
/// Most cores (executors) one server runs.
pub(crate) const CORES_MAX: usize = 1024;
/// Default `--cache-size`: memory for the read cache (total for the process).
pub(crate) use crate::storage::CACHE_SIZE_DEFAULT_BYTES;
/// Default `--upload-memory`: staging buffers of all uploads together.
pub(crate) use crate::storage::UPLOAD_MEMORY_DEFAULT_BYTES;
/// Log segment sizes: the default, the smallest, and the unit sizes are multiples of.
pub(crate) use crate::storage::{
    LOG_SEGMENT_SIZE_BYTES as LOG_SEGMENT_SIZE_DEFAULT_BYTES, LOG_SEGMENT_SIZE_MIN_BYTES,
    LOG_SEGMENT_UNIT_BYTES,
};
/// Default log record bytes between two checkpoints taken while serving.
pub(crate) const CHECKPOINT_INTERVAL_DEFAULT_BYTES: u64 = 256 << 20;
/// In-flight requests get this long to finish after a shutdown signal.
pub(crate) const SHUTDOWN_DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (EMFILE and friends) instead of spinning.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Fsync policy for acknowledged writes (also the `--fsync` flag's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// fdatasync the object, rename it, fsync the directory, then answer (durable; default).
    Always,
    /// UNSAFE: never fsync. Acknowledged writes from the last seconds are lost on power failure or kernel crash.
    Never,
}

/// Everything a server needs to start (not `Debug`: it holds the secret key).
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) address: SocketAddr,
    pub data_dir: PathBuf,
    pub cores: usize,
    pub(crate) credentials: Credentials,
    pub(crate) fsync: FsyncPolicy,
    pub(crate) max_connections: usize,
    /// Base domain for virtual-host style addressing (`bucket.DOMAIN`), if enabled.
    pub(crate) domain: Option<String>,
    /// CPUs the executors are pinned to, in order (executor `i` on `cpus[i % len]`); empty
    /// leaves them unpinned.
    pub(crate) cpus: Vec<usize>,
    /// How long an idle executor polls for work before it parks (sleeps in the kernel).
    pub(crate) spin_before_park: Duration,
    /// Size of new log segments (the unit of compaction and reuse).
    pub(crate) log_segment_size_bytes: u64,
    /// Log record bytes between checkpoints while serving (0: only at a clean stop).
    pub(crate) checkpoint_interval_bytes: u64,
    /// Memory for the read cache, total for the process (0: no cache).
    pub(crate) cache_size_bytes: u64,
    /// Memory for upload staging buffers, total for the process.
    pub(crate) upload_memory_bytes: u64,
}

/// What starting the server found and where it listens.
pub struct Started {
    pub address: SocketAddr,
    pub report: LoadReport,
    pub removed_staging_files: usize,
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
    engine: Arc<crate::storage::EngineStart>,
    root: PathBuf,
    fsync: bool,
    cache: Arc<crate::storage::ReadCache>,
    budget: Arc<crate::storage::UploadBudget>,
}

/// What a stopped server did.
#[derive(Debug)]
pub struct Stopped {
    /// Log records and flushes written (records per flush is the group commit's batching).
    pub records: u64,
    pub flushes: u64,
    /// Segments compaction freed and the record bytes it copied.
    pub compactions: u64,
    pub copied_bytes: u64,
    /// The checkpoint written at the stop: (index entries, bytes), or why it failed.
    pub checkpoint: Result<(u64, u64), String>,
    /// Read cache lookups that hit and missed.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Upload buffers that waited for the upload memory budget (backpressure).
    pub upload_memory_waits: u64,
    /// MD5 lane batches hashed and the upload buffer slices in them (slices per batch = lanes
    /// filled).
    pub md5_batches: u64,
    pub md5_slices: u64,
}

impl Started {
    /// Blocks until every core has stopped, then writes a checkpoint (so the next start reads
    /// it instead of the log).
    pub fn join(self) -> Stopped {
        for h in self.handles {
            let _ = h.join();
        }
        let counters = &self.engine.catalog.counters;
        let (records, flushes) = counters.flushes();
        let (compactions, copied_bytes) = counters.segments.compaction_totals();
        let checkpoint = crate::storage::checkpoint_at_stop(&self.engine, &self.root, self.fsync)
            .map_err(|e| e.to_string());
        let cache = self.cache.stats();
        let (md5_batches, md5_slices) = crate::digest::lane_stats();
        Stopped {
            records,
            flushes,
            compactions,
            copied_bytes,
            checkpoint,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            upload_memory_waits: self.budget.stats().1,
            md5_batches,
            md5_slices,
        }
    }
}

/// Raises the soft open-files limit to the hard limit: every connection, open object and
/// pinned part file is a descriptor.
fn raise_open_files_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("ringstore: cannot raise the open-files limit: {e}");
    }
}

/// Binds a placeholder socket (no listen) to resolve port 0 to a concrete port that every
/// core can then bind with SO_REUSEPORT.
fn reserve_address(addr: SocketAddr) -> std::io::Result<(SocketAddr, socket2::Socket)> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    sock.set_reuse_port(true)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    let local = sock
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an IP socket"))?;
    Ok((local, sock))
}

/// Starts every core; returns once all of them listen (or the first error).
pub fn start(config: ServerConfig) -> std::io::Result<Started> {
    assert!((1..=CORES_MAX).contains(&config.cores));
    let prepared = crate::storage::prepare_data_dir(
        &config.data_dir,
        config.cores,
        config.log_segment_size_bytes,
    )?;
    raise_open_files_limit();
    let (address, reservation) = reserve_address(config.address)?;
    let cpus = config.cpus.clone();
    let spin_before_park = config.spin_before_park;
    let cores = config.cores;
    let cache_size_bytes = config.cache_size_bytes;
    let upload_memory_bytes = config.upload_memory_bytes;
    let shared = Arc::new(Shared {
        config,
        address,
        root: prepared.root,
        engine: prepared.engine.clone(),
        cache: Arc::new(crate::storage::ReadCache::new(cache_size_bytes)),
        budget: crate::storage::UploadBudget::new(upload_memory_bytes),
        epoch_s: crate::clock::now_ms() / 1000,
        open_connections: AtomicUsize::new(0),
        cores_drained: AtomicUsize::new(0),
    });
    let mesh = CoreMesh::new(cores);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<LoadReport, String>>();
    let mut handles = Vec::new();
    for core in 0..cores {
        let placement = match cpus.is_empty() {
            true => Placement::Unbound,
            false => Placement::Fixed(cpus[core % cpus.len()]),
        };
        let (mesh, ready_tx, shared) = (mesh.clone(), ready_tx.clone(), shared.clone());
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("ringstore-core-{core}"))
            .spin_before_park(spin_before_park)
            .spawn(move || async move { run_core(core, shared, mesh, ready_tx).await })
            .map_err(|e| std::io::Error::other(format!("starting core {core}: {e}")))?;
        handles.push(handle);
    }
    drop(ready_tx);
    let report = collect_reports(&ready_rx, cores)?;
    drop(reservation);
    Ok(Started {
        address,
        report,
        removed_staging_files: prepared.removed_staging_files,
        handles,
        engine: prepared.engine,
        root: shared.root.clone(),
        fsync: shared.config.fsync == FsyncPolicy::Always,
        cache: shared.cache.clone(),
        budget: shared.budget.clone(),
    })
}

/// What every core shares: the configuration and the process-wide counters.
struct Shared {
    config: ServerConfig,
    address: SocketAddr,
    root: PathBuf,
    /// The replayed storage every core's store starts from.
    engine: Arc<crate::storage::EngineStart>,
    cache: Arc<crate::storage::ReadCache>,
    budget: Arc<crate::storage::UploadBudget>,
    epoch_s: u64,
    /// Open client connections on all cores together.
    open_connections: AtomicUsize,
    /// Cores that finished draining (owner services stay up until all have).
    cores_drained: AtomicUsize,
}

/// Waits for every core's load report; the first failure stops the others.
fn collect_reports(
    ready: &mpsc::Receiver<Result<LoadReport, String>>,
    cores: usize,
) -> std::io::Result<LoadReport> {
    let mut report = LoadReport::default();
    for _ in 0..cores {
        let r = match ready.recv() {
            Ok(Ok(r)) => r,
            Ok(Err(msg)) => {
                shutdown::request_shutdown();
                return Err(std::io::Error::other(msg));
            }
            Err(_) => {
                shutdown::request_shutdown();
                return Err(std::io::Error::other("a core stopped during startup"));
            }
        };
        report.buckets += r.buckets;
        report.objects += r.objects;
        report.corrupt_files += r.corrupt_files;
        report.removed_partial_buckets += r.removed_partial_buckets;
        report.uploads += r.uploads;
    }
    Ok(report)
}

async fn run_core(
    core: usize,
    shared: Arc<Shared>,
    mesh: CoreMesh,
    ready: mpsc::Sender<Result<LoadReport, String>>,
) {
    let config = &shared.config;
    let store_config = StoreConfig {
        root: shared.root.clone(),
        fsync: config.fsync == FsyncPolicy::Always,
        engine: shared.engine.clone(),
        checkpoint_interval_bytes: config.checkpoint_interval_bytes,
        cache: shared.cache.clone(),
        budget: shared.budget.clone(),
    };
    let (store, report) = match Store::open(core, mesh, store_config).await {
        Ok(x) => x,
        Err(msg) => {
            let _ = ready.send(Err(msg));
            return;
        }
    };
    let listener = match TcpListener::bind(shared.address) {
        Ok(l) => l,
        Err(e) => {
            let addr = shared.address;
            let _ = ready.send(Err(format!("core {core}: cannot listen on {addr}: {e}")));
            return;
        }
    };
    let verifier = Verifier::new(config.credentials.clone()).with_domain(config.domain.clone());
    let service = S3Service::new(store, verifier, config.domain.clone());
    let server = Rc::new(Server::new(service, core, shared.epoch_s));
    let _ = ready.send(Ok(report));
    accept_loop(&server, &listener, &shared).await;
    drop(listener);
    let deadline = std::time::Instant::now() + SHUTDOWN_DRAIN_DEADLINE;
    while server.active_requests() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(shutdown::SHUTDOWN_POLL).await;
    }
    // Stay up (serving other cores' owner calls) until every core has drained, and until no
    // checkpoint or compaction runs (their helper threads must not outlive the executors).
    crate::storage::stop_background(&shared.engine);
    shared.cores_drained.fetch_add(1, Ordering::SeqCst);
    while shared.cores_drained.load(Ordering::SeqCst) < config.cores
        || (crate::storage::background_busy(&shared.engine)
            && std::time::Instant::now() < deadline + SHUTDOWN_DRAIN_DEADLINE)
    {
        glommio::timer::sleep(shutdown::SHUTDOWN_POLL).await;
    }
}

async fn accept_loop(server: &Rc<Server<S3Service>>, listener: &TcpListener, shared: &Arc<Shared>) {
    use futures_lite::future::FutureExt;
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                shutdown::wait_for_shutdown().await;
                None
            })
            .await;
        let stream = match accepted {
            None => return,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                eprintln!("ringstore: accept failed: {e}");
                glommio::timer::sleep(ACCEPT_RETRY_PAUSE).await;
                continue;
            }
        };
        let (server, shared) = (server.clone(), shared.clone());
        // One process-wide count (an atomic per accept, not per request) so the limit holds
        // however the kernel spreads connections over cores.
        if shared.open_connections.fetch_add(1, Ordering::AcqRel) >= shared.config.max_connections {
            shared.open_connections.fetch_sub(1, Ordering::AcqRel);
            let err = HttpError::new(
                HttpErrorCode::SlowDown,
                "Too many connections; please reduce your request rate.",
            );
            glommio::spawn_local(async move { server.refuse_connection(stream, &err).await })
                .detach();
            continue;
        }
        glommio::spawn_local(async move {
            server.serve_connection(stream).await;
            shared.open_connections.fetch_sub(1, Ordering::AcqRel);
        })
        .detach();
    }
}
