//! Runtime, the top layer: starts one pinned glommio executor per core, each with its own
//! SO_REUSEPORT listener, its [`Store`] (storage) and its [`Server`] (HTTP) serving the
//! [`S3Service`] (S3); stops them all on SIGINT/SIGTERM. Nothing imports this module but the
//! binary and the bench: it hands each layer below what it needs.
//!
//! Start order: every core binds its listener and serves first ([`front`]: health and metrics
//! answer, S3 requests get 503 ServiceUnavailable), then the data directory is recovered, then
//! every core opens its store and serves S3.
//!
//! Invariants: a connection lives on the core that accepted it, start to end; every core listens
//! on the same concrete port (port 0 is resolved once, up front); the process prints its
//! readiness line only after recovery and after every core serves S3; the open-connection count
//! is one atomic for the whole process, so `--max-connections` holds however connections are
//! spread. With TLS every core also listens on the HTTPS address (when it differs from the plain
//! one); the certificate is loaded before anything else starts and swapped by
//! [`Started::reload_tls`].

pub mod cpus;
mod front;

use crate::auth::{Credentials, Verifier};
use crate::http::error::{HttpError, HttpErrorCode};
use crate::http::server::Server;
use crate::http::shutdown;
use crate::http::tls::TlsCerts;
use crate::obs::{AccessLog, CoreObs, Registry};
use crate::s3::S3Service;
use crate::storage::{CoreMesh, LoadReport, Store, StoreConfig};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

/// Default `--spin-before-park-us`: 0, parking at once (measured: see the flag's help).
pub const SPIN_BEFORE_PARK_DEFAULT_US: u64 = 0;
/// Largest `--spin-before-park-us` accepted.
pub const SPIN_BEFORE_PARK_MAX_US: u64 = 1_000_000;
/// Default cap on simultaneous client connections.
pub(crate) const MAX_CONNECTIONS_DEFAULT: usize = 4096;
/// Most cores (executors) one server runs.
pub(crate) const CORES_MAX: usize = 1024;
/// Default `--region`.
pub(crate) use crate::s3::REGION_DEFAULT;
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
/// How often a listening core looks whether recovery has finished.
const RECOVERY_POLL: Duration = Duration::from_millis(5);
/// TEST ONLY: a file path; while that file exists the server listens but does not start
/// recovering its data directory (tests observe the 503 answers and `/health/ready` of a
/// recovering server with it, without timing).
const TEST_RECOVERY_GATE_ENV: &str = "RINGSTORE_TEST_RECOVERY_GATE";
/// How often the test gate file is looked at.
const TEST_RECOVERY_GATE_POLL: Duration = Duration::from_millis(10);
pub(crate) use crate::obs::{LogFormat, LogLevel, ObsConfig};

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
    /// Metrics and access log (`--metrics`, `--log-level`, `--log-format`).
    pub(crate) obs: ObsConfig,
    /// HTTPS, if enabled.
    pub(crate) tls: Option<TlsConfig>,
    /// The region the server answers as (`--region`).
    pub(crate) region: String,
}

/// HTTPS settings: PEM files, and where to serve them (`None`: on `address` itself, which then
/// serves no plain HTTP).
#[derive(Clone, Debug)]
pub(crate) struct TlsConfig {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) address: Option<SocketAddr>,
}

/// What starting the server found and where it listens.
pub struct Started {
    pub address: SocketAddr,
    /// Where HTTPS is served (equal to `address` when that is HTTPS only).
    pub tls_address: Option<SocketAddr>,
    tls: Option<Arc<TlsCerts>>,
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
    /// Reads the TLS certificate and key files again (SIGHUP); `None` without TLS. New
    /// connections get the new certificate; on error the old one stays in use.
    pub fn reload_tls(&self) -> Option<Result<(), String>> {
        self.tls.as_ref().map(|certs| certs.reload())
    }

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

/// One address every core listens on, and whether it speaks TLS.
#[derive(Clone, Copy)]
struct Listen {
    address: SocketAddr,
    tls: bool,
}

/// Loads the TLS certificate and key (a clear error if they are unusable).
fn load_tls(tls: Option<&TlsConfig>) -> std::io::Result<Option<Arc<TlsCerts>>> {
    tls.map(|t| TlsCerts::load(&t.cert, &t.key).map(Arc::new))
        .transpose()
        .map_err(std::io::Error::other)
}

/// The listeners: `address` (HTTPS with TLS and no separate HTTPS address), and the separate
/// HTTPS address with its port reserved (the reservation is held until every core listens).
fn listeners(
    address: SocketAddr,
    tls: Option<&TlsConfig>,
) -> std::io::Result<(Vec<Listen>, Option<socket2::Socket>)> {
    let plain = Listen {
        address,
        tls: tls.is_some_and(|t| t.address.is_none()),
    };
    match tls.and_then(|t| t.address) {
        None => Ok((vec![plain], None)),
        Some(tls_address) => {
            let (tls_address, reservation) = reserve_address(tls_address)?;
            let https = Listen {
                address: tls_address,
                tls: true,
            };
            Ok((vec![plain, https], Some(reservation)))
        }
    }
}

/// Starts every core listening, recovers the data directory, opens every core's store; returns
/// once all of them serve S3 (or the first error).
pub fn start(config: ServerConfig) -> std::io::Result<Started> {
    assert!((1..=CORES_MAX).contains(&config.cores));
    let tls = load_tls(config.tls.as_ref())?; // before anything touches the data dir
    raise_open_files_limit();
    let (address, reservation) = reserve_address(config.address)?;
    let (listeners, _tls_reservation) = listeners(address, config.tls.as_ref())?;
    let (cores, obs) = (config.cores, config.obs);
    let shared = Arc::new(Shared {
        listeners,
        tls: tls.clone(),
        recovered: OnceLock::new(),
        cache: Arc::new(crate::storage::ReadCache::new(config.cache_size_bytes)),
        budget: crate::storage::UploadBudget::new(config.upload_memory_bytes),
        epoch_s: crate::clock::now_ms() / 1000,
        open_connections: AtomicUsize::new(0),
        cores_drained: AtomicUsize::new(0),
        registry: Registry::new(cores, front::labels()),
        access_log: match obs.access_log() {
            true => Some(AccessLog::start(obs.log_format, cores)?),
            false => None,
        },
        ready: AtomicBool::new(false),
        config,
    });
    let (ready_tx, ready_rx) = mpsc::channel();
    let handles = spawn_cores(&shared, ready_tx)?;
    for _ in 0..cores {
        wait_for(&ready_rx)?;
    }
    let urls: Vec<String> = shared
        .listeners
        .iter()
        .map(|l| format!("{}://{}", if l.tls { "https" } else { "http" }, l.address))
        .collect();
    eprintln!(
        "ringstore: accepting on {}, recovering {} (S3 requests get 503 until ready)",
        urls.join(", "),
        shared.config.data_dir.display()
    );
    let prepared = recover(&shared.config).inspect_err(|_| shutdown::request_shutdown())?;
    let recovered = Recovered {
        root: prepared.root,
        engine: prepared.engine,
    };
    assert!(shared.recovered.set(recovered).is_ok(), "recovered once");
    let mut report = LoadReport::default();
    for _ in 0..cores {
        add_report(&mut report, wait_for(&ready_rx)?.expect("a load report"));
    }
    shared.ready.store(true, Ordering::Release);
    drop(reservation);
    let recovered = shared.recovered.get().expect("recovered");
    Ok(Started {
        address,
        tls_address: shared.listeners.iter().find(|l| l.tls).map(|l| l.address),
        tls,
        report,
        removed_staging_files: prepared.removed_staging_files,
        handles,
        engine: recovered.engine.clone(),
        root: recovered.root.clone(),
        fsync: shared.config.fsync == FsyncPolicy::Always,
        cache: shared.cache.clone(),
        budget: shared.budget.clone(),
    })
}

/// Prepares (recovers) the data directory, once the test-only gate file is gone if one is set.
fn recover(config: &ServerConfig) -> std::io::Result<crate::storage::Prepared> {
    if let Some(gate) = std::env::var_os(TEST_RECOVERY_GATE_ENV) {
        while std::path::Path::new(&gate).exists() && !shutdown::is_shutting_down() {
            std::thread::sleep(TEST_RECOVERY_GATE_POLL);
        }
    }
    crate::storage::prepare_data_dir(
        &config.data_dir,
        config.cores,
        config.log_segment_size_bytes,
    )
}

/// Spawns one executor per core.
fn spawn_cores(
    shared: &Arc<Shared>,
    ready_tx: mpsc::Sender<CoreEvent>,
) -> std::io::Result<Vec<glommio::ExecutorJoinHandle<()>>> {
    let cpus = &shared.config.cpus;
    let mesh = CoreMesh::new(shared.config.cores);
    let mut handles = Vec::new();
    for core in 0..shared.config.cores {
        let placement = match cpus.is_empty() {
            true => Placement::Unbound,
            false => Placement::Fixed(cpus[core % cpus.len()]),
        };
        let (mesh, ready_tx, shared) = (mesh.clone(), ready_tx.clone(), shared.clone());
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("ringstore-core-{core}"))
            .spin_before_park(shared.config.spin_before_park)
            .spawn(move || async move { run_core(core, shared, mesh, ready_tx).await })
            .map_err(|e| std::io::Error::other(format!("starting core {core}: {e}")))?;
        handles.push(handle);
    }
    Ok(handles)
}

/// What a core reports while starting: listening (`None`), then its store's load report, or
/// why it cannot serve.
type CoreEvent = Result<Option<LoadReport>, String>;

/// What the data directory's recovery produced.
struct Recovered {
    root: PathBuf,
    /// The replayed storage every core's store starts from.
    engine: Arc<crate::storage::EngineStart>,
}

/// What every core shares: the configuration and the process-wide counters.
struct Shared {
    config: ServerConfig,
    /// Every core's listeners (the plain address, the HTTPS one, or both), ports resolved.
    listeners: Vec<Listen>,
    tls: Option<Arc<TlsCerts>>,
    /// Set once the data directory is recovered (cores wait for it to open their stores).
    recovered: OnceLock<Recovered>,
    cache: Arc<crate::storage::ReadCache>,
    budget: Arc<crate::storage::UploadBudget>,
    epoch_s: u64,
    /// Open client connections on all cores together.
    open_connections: AtomicUsize,
    /// Cores that finished draining (owner services stay up until all have).
    cores_drained: AtomicUsize,
    /// Every core's metrics.
    registry: Arc<Registry>,
    /// The access log (`--log-level info` and above).
    access_log: Option<AccessLog>,
    /// Recovery finished and every core serves S3.
    ready: AtomicBool,
}

/// The next event of some core; a failure (or a core gone) stops the others.
fn wait_for(ready: &mpsc::Receiver<CoreEvent>) -> std::io::Result<Option<LoadReport>> {
    match ready.recv() {
        Ok(Ok(event)) => Ok(event),
        Ok(Err(msg)) => {
            shutdown::request_shutdown();
            Err(std::io::Error::other(msg))
        }
        Err(_) => {
            shutdown::request_shutdown();
            Err(std::io::Error::other("a core stopped during startup"))
        }
    }
}

fn add_report(report: &mut LoadReport, r: LoadReport) {
    report.buckets += r.buckets;
    report.objects += r.objects;
    report.corrupt_files += r.corrupt_files;
    report.removed_partial_buckets += r.removed_partial_buckets;
    report.uploads += r.uploads;
}

/// One core: listen and answer at once, open the store once recovery finished, serve until
/// shutdown, drain.
async fn run_core(
    core: usize,
    shared: Arc<Shared>,
    mesh: CoreMesh,
    ready: mpsc::Sender<CoreEvent>,
) {
    let metrics = shared
        .config
        .obs
        .metrics
        .then(|| shared.registry.core(core));
    crate::obs::metrics::set_current(metrics.clone());
    let mut listeners = Vec::new();
    for l in &shared.listeners {
        match TcpListener::bind(l.address) {
            Ok(listener) => listeners.push((listener, l.tls)),
            Err(e) => {
                let addr = l.address;
                let _ = ready.send(Err(format!("core {core}: cannot listen on {addr}: {e}")));
                return;
            }
        }
    }
    let obs = CoreObs {
        metrics,
        log: shared.access_log.clone(),
        labels: shared.registry.labels.clone(),
    };
    let server = Rc::new(Server::new(
        front::Front::new(shared.clone()),
        core,
        shared.epoch_s,
        obs,
    ));
    let _ = ready.send(Ok(None));
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|(listener, tls)| {
            let (server, shared) = (server.clone(), shared.clone());
            glommio::spawn_local(async move { accept_loop(&server, &listener, &shared, tls).await })
        })
        .collect();
    if let Some(opened) = open_store(core, &shared, mesh).await {
        match opened {
            Ok((service, report)) => {
                server.handler().serve_s3(service);
                let _ = ready.send(Ok(Some(report)));
            }
            Err(msg) => {
                let _ = ready.send(Err(msg));
            }
        }
    }
    for accepting in loops {
        accepting.await;
    }
    drain(&server, &shared).await;
}

/// Waits for recovery, then opens this core's store; `None` if shutdown came first.
async fn open_store(
    core: usize,
    shared: &Arc<Shared>,
    mesh: CoreMesh,
) -> Option<Result<(S3Service, LoadReport), String>> {
    let recovered = loop {
        if let Some(r) = shared.recovered.get() {
            break r;
        }
        if shutdown::is_shutting_down() {
            return None;
        }
        glommio::timer::sleep(RECOVERY_POLL).await;
    };
    let config = &shared.config;
    let store_config = StoreConfig {
        root: recovered.root.clone(),
        fsync: config.fsync == FsyncPolicy::Always,
        engine: recovered.engine.clone(),
        checkpoint_interval_bytes: config.checkpoint_interval_bytes,
        cache: shared.cache.clone(),
        budget: shared.budget.clone(),
    };
    let (store, report) = match Store::open(core, mesh, store_config).await {
        Ok(x) => x,
        Err(msg) => return Some(Err(msg)),
    };
    let verifier = Verifier::new(config.credentials.clone()).with_domain(config.domain.clone());
    Some(Ok((
        S3Service::new(
            store,
            verifier,
            config.domain.clone(),
            config.region.clone(),
        ),
        report,
    )))
}

/// After the listener closed: lets in-flight requests finish, then stays up (serving other
/// cores' owner calls) until every core has drained and no checkpoint or compaction runs
/// (their helper threads must not outlive the executors).
async fn drain(server: &Server<front::Front>, shared: &Arc<Shared>) {
    let deadline = std::time::Instant::now() + SHUTDOWN_DRAIN_DEADLINE;
    while server.active_requests() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(shutdown::SHUTDOWN_POLL).await;
    }
    let engine = shared.recovered.get().map(|r| &r.engine);
    if let Some(engine) = engine {
        crate::storage::stop_background(engine);
    }
    shared.cores_drained.fetch_add(1, Ordering::SeqCst);
    while shared.cores_drained.load(Ordering::SeqCst) < shared.config.cores
        || (engine.is_some_and(|e| crate::storage::background_busy(e))
            && std::time::Instant::now() < deadline + SHUTDOWN_DRAIN_DEADLINE)
    {
        glommio::timer::sleep(shutdown::SHUTDOWN_POLL).await;
    }
}

/// Accepts connections on `listener` until shutdown (over TLS when `tls`).
async fn accept_loop(
    server: &Rc<Server<front::Front>>,
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tls: bool,
) {
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
        let acceptor = shared.tls.as_ref().filter(|_| tls).map(|c| c.acceptor());
        // One process-wide count (an atomic per accept, not per request) so the limit holds
        // however the kernel spreads connections over cores.
        if shared.open_connections.fetch_add(1, Ordering::AcqRel) >= shared.config.max_connections {
            shared.open_connections.fetch_sub(1, Ordering::AcqRel);
            let err = HttpError::new(
                HttpErrorCode::SlowDown,
                "Too many connections; please reduce your request rate.",
            );
            glommio::spawn_local(
                async move { server.refuse_connection(stream, acceptor, &err).await },
            )
            .detach();
            continue;
        }
        glommio::spawn_local(async move {
            server.serve_connection(stream, acceptor).await;
            shared.open_connections.fetch_sub(1, Ordering::AcqRel);
        })
        .detach();
    }
}
