//! Runtime: starts one pinned glommio executor per core, each with its own SO_REUSEPORT listener,
//! its owner state and its end of the cross-core mesh; stops them all on SIGINT/SIGTERM.
//!
//! Invariants: a connection lives on the core that accepted it, start to end; every core listens
//! on the same concrete port (port 0 is resolved once, up front); the process prints its
//! readiness line only after every core is listening.

pub mod shard;
pub mod shutdown;

use crate::auth::{Credentials, Verifier};
use crate::storage::layout::Layout;
use crate::storage::owner::{LoadReport, Owner};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use shard::{Envelope, Shards};
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Fsync policy for acknowledged writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Data, rename and directory are durable before the 200 (default).
    Always,
    /// No fsync at all: recent acknowledged writes are lost on power failure. Unsafe.
    Never,
}

/// Everything a server needs to start (not `Debug`: it holds the secret key).
#[derive(Clone)]
pub struct ServerConfig {
    pub address: SocketAddr,
    pub data_dir: PathBuf,
    pub cores: usize,
    pub credentials: Credentials,
    pub fsync: FsyncPolicy,
    pub max_connections: usize,
    /// Base domain for virtual-host style addressing (`bucket.DOMAIN`), if enabled.
    pub domain: Option<String>,
}

/// Per-core state shared by the connections of that core.
pub struct CoreCtx {
    pub shards: Shards,
    pub verifier: Verifier,
    pub layout: Layout,
    pub fsync: FsyncPolicy,
    pub domain: Option<String>,
    staging_seq: Cell<u64>,
    request_seq: Cell<u64>,
    request_prefix: String,
    pub connections: Cell<usize>,
    /// Requests between head parsed and response written (what shutdown waits for).
    pub active_requests: Cell<usize>,
    /// Open client connections on all cores together, and their limit.
    pub open_connections: Arc<AtomicUsize>,
    pub max_connections: usize,
}

impl CoreCtx {
    /// A request id unique in this process: core, start time and a per-core counter.
    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.get() + 1;
        self.request_seq.set(n);
        format!("{}{:08X}", self.request_prefix, n)
    }

    /// A fresh multipart upload id: 32 lowercase hex chars, unguessable and unique.
    pub fn next_upload_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let n = self.staging_seq.get() + 1;
        self.staging_seq.set(n);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(nanos.to_le_bytes());
        h.update((self.shards.me() as u64).to_le_bytes());
        h.update(n.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(self.request_prefix.as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// A staging path unique in this process.
    pub fn next_staging_path(&self) -> PathBuf {
        let n = self.staging_seq.get() + 1;
        self.staging_seq.set(n);
        self.layout.staging_file(self.shards.me(), n)
    }
}

/// What starting the server found and where it listens.
pub struct Started {
    pub address: SocketAddr,
    pub report: LoadReport,
    pub removed_staging_files: usize,
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
}

impl Started {
    /// Blocks until every core has stopped.
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// Prepares the data directory: creates it, checks its format marker, clears staging leftovers.
pub fn prepare_data_dir(layout: &Layout) -> std::io::Result<usize> {
    use crate::storage::layout::{FORMAT_FILE, FORMAT_LINE};
    std::fs::create_dir_all(layout.buckets_dir())?;
    std::fs::create_dir_all(layout.tmp_dir())?;
    let marker = layout.root().join(FORMAT_FILE);
    match std::fs::read_to_string(&marker) {
        Ok(s) if s == FORMAT_LINE => {}
        Ok(s) => {
            return Err(std::io::Error::other(format!(
                "{} says {:?}; this ringstore understands {:?}",
                marker.display(),
                s.trim(),
                FORMAT_LINE.trim()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&marker, FORMAT_LINE)?;
        }
        Err(e) => return Err(e),
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(layout.tmp_dir())? {
        std::fs::remove_file(entry?.path())?;
        removed += 1;
    }
    Ok(removed)
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
    std::fs::create_dir_all(&config.data_dir)?;
    // Absolute, so directory handles never depend on the working directory.
    let layout = Layout::new(std::fs::canonicalize(&config.data_dir)?);
    let removed_staging_files = prepare_data_dir(&layout)?;
    raise_open_files_limit();
    let (address, reservation) = reserve_address(config.address)?;
    let cpus: Vec<usize> = glommio::CpuSet::online()
        .map(|s| s.iter().map(|l| l.cpu).collect())
        .unwrap_or_default();
    let cores = config.cores;
    let mesh = MeshBuilder::<Envelope, _>::full(cores, shard::MESH_CHANNEL_CAPACITY);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<LoadReport, String>>();
    let epoch = crate::http::date::now_ms() / 1000;
    let mut handles = Vec::new();
    let open_connections = Arc::new(AtomicUsize::new(0));
    for core in 0..cores {
        let placement = if cpus.is_empty() {
            Placement::Unbound
        } else {
            Placement::Fixed(cpus[core % cpus.len()])
        };
        let mesh = mesh.clone();
        let ready_tx = ready_tx.clone();
        let config = config.clone();
        let layout = layout.clone();
        let open_connections = open_connections.clone();
        let builder = LocalExecutorBuilder::new(placement)
            .name(&format!("ringstore-core-{core}"))
            .spin_before_park(Duration::from_micros(0));
        let handle = builder
            .spawn(move || async move {
                run_core(
                    core,
                    cores,
                    epoch,
                    address,
                    config,
                    layout,
                    mesh,
                    ready_tx,
                    open_connections,
                )
                .await;
            })
            .map_err(|e| std::io::Error::other(format!("starting core {core}: {e}")))?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut report = LoadReport::default();
    for _ in 0..cores {
        match ready_rx.recv() {
            Ok(Ok(r)) => {
                report.buckets += r.buckets;
                report.objects += r.objects;
                report.corrupt_files += r.corrupt_files;
                report.removed_partial_buckets += r.removed_partial_buckets;
            }
            Ok(Err(msg)) => {
                shutdown::request_shutdown();
                return Err(std::io::Error::other(msg));
            }
            Err(_) => {
                shutdown::request_shutdown();
                return Err(std::io::Error::other("a core stopped during startup"));
            }
        }
    }
    drop(reservation);
    Ok(Started {
        address,
        report,
        removed_staging_files,
        handles,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_core(
    core: usize,
    cores: usize,
    epoch: u64,
    address: SocketAddr,
    config: ServerConfig,
    layout: Layout,
    mesh: MeshBuilder<Envelope, glommio::channels::channel_mesh::Full>,
    ready: mpsc::Sender<Result<LoadReport, String>>,
    open_connections: Arc<AtomicUsize>,
) {
    let (senders, receivers) = match mesh.join().await {
        Ok(x) => x,
        Err(_) => {
            let _ = ready.send(Err(format!("core {core}: joining the core mesh failed")));
            return;
        }
    };
    let owner = Rc::new(Owner::new(
        layout.clone(),
        config.fsync == FsyncPolicy::Always,
    ));
    let report = match owner
        .load(|name| shard::owner_of(name, cores) == core)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(format!("core {core}: loading buckets failed: {e}")));
            return;
        }
    };
    shard::spawn_owner_service(owner.clone(), receivers);
    let listener = match TcpListener::bind(address) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("core {core}: cannot listen on {address}: {e}")));
            return;
        }
    };
    let ctx = Rc::new(CoreCtx {
        shards: Shards::new(core, cores, senders, owner),
        verifier: Verifier::new(config.credentials.clone()),
        layout,
        fsync: config.fsync,
        domain: config.domain.clone(),
        staging_seq: Cell::new(0),
        request_seq: Cell::new(0),
        request_prefix: format!("{:02X}{:08X}", core, epoch as u32),
        connections: Cell::new(0),
        active_requests: Cell::new(0),
        open_connections,
        max_connections: config.max_connections,
    });
    let _ = ready.send(Ok(report));
    accept_loop(&ctx, &listener).await;
    drop(listener);
    let deadline = std::time::Instant::now() + shutdown::DRAIN_DEADLINE;
    while ctx.active_requests.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(shutdown::SHUTDOWN_POLL).await;
    }
    shutdown::drained_wait_all(cores).await;
}

async fn accept_loop(ctx: &Rc<CoreCtx>, listener: &TcpListener) {
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
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("ringstore: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // One process-wide count (an atomic per accept, not per request) so the limit holds
        // however the kernel spreads connections over cores.
        if ctx.open_connections.fetch_add(1, Ordering::AcqRel) >= ctx.max_connections {
            ctx.open_connections.fetch_sub(1, Ordering::AcqRel);
            glommio::spawn_local(crate::http::server::refuse_connection(ctx.clone(), stream))
                .detach();
            continue;
        }
        ctx.connections.set(ctx.connections.get() + 1);
        let ctx2 = ctx.clone();
        glommio::spawn_local(async move {
            crate::http::server::serve_connection(&ctx2, stream).await;
            ctx2.connections.set(ctx2.connections.get() - 1);
            ctx2.open_connections.fetch_sub(1, Ordering::AcqRel);
        })
        .detach();
    }
}
