//! Command line of the `ringstore` binary: `serve` flags, environment fallbacks, and the rule
//! that the built-in development keys are only allowed on a loopback address; `bench` takes its
//! own arguments from [`crate::bench`].

use crate::auth::{Credentials, DEV_ACCESS_KEY, DEV_SECRET_KEY};
use crate::runtime::{
    cpus, FsyncPolicy, LogFormat, LogLevel, ObsConfig, ServerConfig, TlsConfig, CORES_MAX,
    LOG_SEGMENT_SIZE_DEFAULT_BYTES, LOG_SEGMENT_SIZE_MIN_BYTES, LOG_SEGMENT_UNIT_BYTES,
    MAX_CONNECTIONS_DEFAULT, REGION_DEFAULT, SPIN_BEFORE_PARK_DEFAULT_US, SPIN_BEFORE_PARK_MAX_US,
};
use clap::{Parser, Subcommand};

/// Default `--log-segment-kib`: 8 MiB segments.
const LOG_SEGMENT_SIZE_DEFAULT_KIB: u64 = LOG_SEGMENT_SIZE_DEFAULT_BYTES / 1024;
/// Default `--checkpoint-interval` (`runtime::CHECKPOINT_INTERVAL_DEFAULT_BYTES`, as text).
const CHECKPOINT_INTERVAL_DEFAULT: &str = "256MiB";
/// Default `--cache-size` (`runtime::CACHE_SIZE_DEFAULT_BYTES`, as text).
const CACHE_SIZE_DEFAULT: &str = "1GiB";
/// Default `--upload-memory` (`runtime::UPLOAD_MEMORY_DEFAULT_BYTES`, as text).
const UPLOAD_MEMORY_DEFAULT: &str = "256MiB";
/// Smallest `--upload-memory`.
const UPLOAD_MEMORY_MIN_BYTES: u64 = 1024 * 1024;
/// Largest `--log-segment-kib`: 1 GiB segments.
const LOG_SEGMENT_SIZE_MAX_KIB: u64 = 1024 * 1024;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ringstore",
    version,
    about = "ringstore: a thread-per-core S3-compatible object storage server (glommio, io_uring, O_DIRECT)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the S3 API over HTTP/1.1.
    Serve(ServeArgs),
    /// Generate load against an S3 endpoint (by default an in-process server on 127.0.0.1) and report throughput and latency.
    Bench(crate::bench::BenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (IP:PORT). Port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub(crate) address: String,
    /// Data directory; created if missing. Must be on a filesystem with O_DIRECT (not tmpfs).
    #[arg(long, default_value = "./data")]
    pub(crate) data: PathBuf,
    /// Number of cores (one pinned executor each). Default: one per CPU of --cpus.
    #[arg(long)]
    pub(crate) cores: Option<usize>,
    /// CPUs to pin the executors to, as a list like 0-3 or 2,4,6 (executor i runs on the i-th
    /// CPU, round robin when --cores is larger). Default: the CPUs this process may run on (its
    /// affinity, as set by taskset or a cgroup cpuset); CPUs outside it are refused.
    #[arg(long, value_name = "LIST")]
    pub(crate) cpus: Option<String>,
    /// Microseconds an idle executor keeps polling for work before it parks in the kernel.
    /// Spinning trades idle CPU for latency (every park and wake-up costs a context switch and
    /// a membarrier); 0 parks at once. The default 0 was measured with the server on one CPU and
    /// the client on another: 50 us gave 4 KiB GETs +7% but 4 KiB PUTs -19%, because spinning
    /// takes the CPU from the io_uring workers doing the filesystem work.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = SPIN_BEFORE_PARK_DEFAULT_US)]
    pub(crate) spin_before_park_us: u64,
    /// Access key clients sign with. Without keys the development keys ringstoreadmin/ringstoresecret are used, on loopback addresses only.
    #[arg(long, env = "RINGSTORE_ACCESS_KEY", hide_env_values = true)]
    pub(crate) access_key: Option<String>,
    /// Secret key clients sign with (prefer the environment variable: flags show up in `ps`).
    #[arg(long, env = "RINGSTORE_SECRET_KEY", hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
    /// Durability of acknowledged writes.
    #[arg(long, value_enum, default_value_t = FsyncPolicy::Always)]
    pub(crate) fsync: FsyncPolicy,
    /// Most simultaneous client connections; further ones get 503 SlowDown and are closed.
    #[arg(long, default_value_t = MAX_CONNECTIONS_DEFAULT)]
    pub(crate) max_connections: usize,
    /// Size of each log segment file in KiB (small objects and all metadata live in per-core
    /// logs of such segments; compaction frees and reuses them one at a time). Larger segments
    /// mean fewer files; smaller ones return space sooner after deletes. A multiple of 64,
    /// at least 256.
    #[arg(long, value_name = "KIB", default_value_t = LOG_SEGMENT_SIZE_DEFAULT_KIB)]
    pub(crate) log_segment_kib: u64,
    /// Log records written between two checkpoints of the index while serving, as a size
    /// (e.g. 256MiB, 64KiB, 1GiB). A start reads the last checkpoint and replays only the log
    /// written after it, so this bounds the replay; each checkpoint writes the whole index
    /// (about 100 bytes per object). 0 writes checkpoints only at a clean stop.
    #[arg(long, value_name = "SIZE", default_value = CHECKPOINT_INTERVAL_DEFAULT)]
    pub(crate) checkpoint_interval: String,
    /// Memory for the read cache, total for the process, as a size (e.g. 1GiB, 256MiB; 0
    /// turns it off). ringstore reads objects with O_DIRECT, so the kernel's page cache never
    /// holds them: this cache keeps recently read bodies (small objects, and large ones up to
    /// a 32nd of the cache each) for re-reads, shared by all cores.
    #[arg(long, value_name = "SIZE", default_value = CACHE_SIZE_DEFAULT)]
    pub(crate) cache_size: String,
    /// Memory for the staging buffers of all uploads together, as a size (e.g. 256MiB, 1GiB).
    /// Past a quarter of it, uploads get small buffers (128 KiB instead of 1 MiB); when it is all
    /// in use, uploads wait for memory before reading more of their bodies (TCP pushes back on
    /// the clients), so many slow or stalled uploads cannot exhaust memory. At least 1MiB.
    #[arg(long, value_name = "SIZE", default_value = UPLOAD_MEMORY_DEFAULT)]
    pub(crate) upload_memory: String,
    /// Enable virtual-host style addressing: `Host: BUCKET.DOMAIN` names the bucket (path-style keeps working).
    #[arg(long)]
    pub(crate) domain: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first; needs --tls-key). Without
    /// --tls-address, --address serves HTTPS instead of HTTP. SIGHUP reloads the certificate and
    /// key (new connections get them; if they fail to load, the old ones stay and an error is logged).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Serve HTTPS on this address (IP:PORT, port 0 picks one) beside plain HTTP on --address.
    #[arg(long, value_name = "IP:PORT", requires = "tls_cert")]
    pub(crate) tls_address: Option<String>,
    /// AWS region the server answers as: GetBucketLocation and HeadBucket report it, and
    /// CreateBucket accepts only a LocationConstraint naming it (in us-east-1: none). Clients
    /// may sign with any region (the credential scope's region is not checked).
    #[arg(long, env = "RINGSTORE_REGION", default_value = REGION_DEFAULT)]
    pub(crate) region: String,
    /// Count requests, bytes, latencies and storage timings for GET /metrics (Prometheus text
    /// format; the endpoint answers either way, without request series when off).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub(crate) metrics: Switch,
    /// What goes to stderr besides the start and stop lines: info (and debug) add one
    /// access-log line per request; warn, error and off do not.
    #[arg(long, value_enum, default_value_t = LogLevel::Warn)]
    pub(crate) log_level: LogLevel,
    /// Access-log line format: text (key=value) or json (one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// An on/off flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Switch {
    On,
    Off,
}

impl ServeArgs {
    /// Validates the flags into a server configuration, or says why not.
    pub fn into_config(self) -> Result<ServerConfig, String> {
        let address = resolve("--address", &self.address)?;
        let tls_address = self
            .tls_address
            .as_deref()
            .map(|a| resolve("--tls-address", a))
            .transpose()?;
        let (cpus, cores) = cpus_and_cores(self.cpus.as_deref(), self.cores)?;
        // The dev keys need every listener on loopback.
        let exposed = tls_address
            .filter(|a| !a.ip().is_loopback())
            .unwrap_or(address);
        let credentials = credentials(self.access_key, self.secret_key, exposed)?;
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".to_string());
        }
        if self.spin_before_park_us > SPIN_BEFORE_PARK_MAX_US {
            return Err(format!(
                "--spin-before-park-us {}: at most {SPIN_BEFORE_PARK_MAX_US}",
                self.spin_before_park_us
            ));
        }
        let log_segment_size_bytes = log_segment_size_bytes(self.log_segment_kib)?;
        check_region(&self.region)?;
        let checkpoint_interval_bytes = parse_size(&self.checkpoint_interval)
            .map_err(|why| format!("--checkpoint-interval {}: {why}", self.checkpoint_interval))?;
        let cache_size_bytes = parse_size(&self.cache_size)
            .map_err(|why| format!("--cache-size {}: {why}", self.cache_size))?;
        let upload_memory_bytes = parse_size(&self.upload_memory)
            .map_err(|why| format!("--upload-memory {}: {why}", self.upload_memory))?;
        if upload_memory_bytes < UPLOAD_MEMORY_MIN_BYTES {
            return Err(format!(
                "--upload-memory {}: at least 1MiB",
                self.upload_memory
            ));
        }
        Ok(ServerConfig {
            cache_size_bytes,
            upload_memory_bytes,
            log_segment_size_bytes,
            checkpoint_interval_bytes,
            address,
            data_dir: self.data,
            cores,
            credentials,
            fsync: self.fsync,
            max_connections: self.max_connections,
            domain: self
                .domain
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty()),
            region: self.region,
            cpus,
            spin_before_park: std::time::Duration::from_micros(self.spin_before_park_us),
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert, key)| TlsConfig {
                    cert,
                    key,
                    address: tls_address,
                }),
            obs: ObsConfig {
                metrics: self.metrics == Switch::On,
                log_level: self.log_level,
                log_format: self.log_format,
            },
        })
    }
}

/// The first socket address `text` (the value of `flag`) resolves to.
fn resolve(flag: &str, text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{flag} {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("{flag} {text}: resolves to no address"))
}

/// Longest `--region` accepted (AWS region names are about 15 characters).
const REGION_MAX_CHARS: usize = 64;

/// `--region`: a name like `eu-central-1` (lower-case letters, digits and `-`), or why not.
fn check_region(region: &str) -> Result<(), String> {
    let ok = !region.is_empty()
        && region.len() <= REGION_MAX_CHARS
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--region {region:?}: expected a region name such as eu-central-1 (lower-case \
             letters, digits and '-', at most {REGION_MAX_CHARS} characters)"
        ))
    }
}

/// A size such as `256MiB`, `64KiB`, `1GiB` or `4096` (bytes) in bytes, or why not.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a number with an optional unit (KiB, MiB, GiB)".to_string())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        other => return Err(format!("unknown unit {other:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| "too large".to_string())
}

/// `--log-segment-kib` in bytes, or why it is refused.
fn log_segment_size_bytes(kib: u64) -> Result<u64, String> {
    let min_kib = LOG_SEGMENT_SIZE_MIN_BYTES / 1024;
    let unit_kib = LOG_SEGMENT_UNIT_BYTES / 1024;
    if kib < min_kib || !kib.is_multiple_of(unit_kib) || kib > LOG_SEGMENT_SIZE_MAX_KIB {
        return Err(format!(
            "--log-segment-kib {kib}: must be a multiple of {unit_kib} from {min_kib} to \
             {LOG_SEGMENT_SIZE_MAX_KIB}"
        ));
    }
    Ok(kib * 1024)
}

/// The CPUs to pin executors to and the number of executors: `--cpus` (which must lie within
/// the process's affinity) or the affinity itself; `--cores` or one executor per CPU.
fn cpus_and_cores(
    cpus_flag: Option<&str>,
    cores_flag: Option<usize>,
) -> Result<(Vec<usize>, usize), String> {
    let allowed = cpus::allowed_cpus();
    let cpus = match cpus_flag {
        None => allowed.unwrap_or_default(),
        Some(list) => {
            let cpus = cpus::parse_cpu_list(list).map_err(|e| format!("--cpus {list}: {e}"))?;
            if let Some(outside) = allowed
                .as_ref()
                .and_then(|a| cpus.iter().find(|c| !a.contains(c)))
            {
                return Err(format!(
                    "--cpus {list}: CPU {outside} is outside this process's CPU affinity ({})",
                    allowed.as_ref().map_or(String::new(), |a| format!("{a:?}"))
                ));
            }
            cpus
        }
    };
    let per_cpu = if cpus.is_empty() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cpus.len()
    };
    let cores = cores_flag.unwrap_or(per_cpu);
    if cores == 0 || cores > CORES_MAX {
        return Err(format!(
            "--cores {cores}: must be between 1 and {CORES_MAX}"
        ));
    }
    Ok((cpus, cores))
}

/// The key pair clients sign with: both flags, or neither (the development keys, on loopback
/// only).
fn credentials(
    access_key: Option<String>,
    secret_key: Option<String>,
    address: SocketAddr,
) -> Result<Credentials, String> {
    match (access_key, secret_key) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Ok(Credentials {
            access_key: a,
            secret_key: s,
        }),
        (None, None) if address.ip().is_loopback() => Ok(Credentials {
            access_key: DEV_ACCESS_KEY.to_string(),
            secret_key: DEV_SECRET_KEY.to_string(),
        }),
        (None, None) => Err(format!(
            "refusing to listen on non-loopback address {address} with the built-in development keys; \
             set RINGSTORE_ACCESS_KEY and RINGSTORE_SECRET_KEY (or --access-key/--secret-key)"
        )),
        _ => Err("set both the access key and the secret key (or neither, on loopback)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(
            parse_size(super::CHECKPOINT_INTERVAL_DEFAULT),
            Ok(crate::runtime::CHECKPOINT_INTERVAL_DEFAULT_BYTES)
        );
        assert_eq!(
            parse_size(super::CACHE_SIZE_DEFAULT),
            Ok(crate::runtime::CACHE_SIZE_DEFAULT_BYTES)
        );
        assert_eq!(
            parse_size(super::UPLOAD_MEMORY_DEFAULT),
            Ok(crate::runtime::UPLOAD_MEMORY_DEFAULT_BYTES)
        );
    }
}
