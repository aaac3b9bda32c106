//! Command-line flags of `ringstore bench`, byte-size parsing (`4KiB`, `256MiB`, `1GiB`) and the
//! checks that turn the flags into a runnable plan.
//!
//! Invariant: every value a scenario relies on (part size within S3's limits, at most 10,000
//! parts, non-zero counts) is checked here, before any server is started or any byte is sent.

use super::timed::Workload;
use super::timed_args::TimedArgs;
use super::tls::Trust;
use crate::runtime::FsyncPolicy;
use clap::ValueEnum;
use std::path::PathBuf;

/// S3's smallest part size (every part but the last).
const MIN_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024;
/// S3's largest single PutObject and largest part.
const MAX_SINGLE_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's largest part count.
const MAX_PARTS: u64 = 10_000;
/// Most client connections the bench opens.
const MAX_CONCURRENCY: usize = 4096;
/// Most executors `--cores` may ask of the in-process server.
const MAX_CORES: usize = 1024;

/// Default `--size` (put-large and multipart object size).
const DEFAULT_SIZE: &str = "256MiB";
/// Default `--object-size` (put-small and get-small object size).
const DEFAULT_OBJECT_SIZE: &str = "4KiB";
/// Default `--part-size`.
const DEFAULT_PART_SIZE: &str = "8MiB";
/// Default `--count` (operations of put-small and get-small).
const DEFAULT_COUNT: u64 = 10_000;
/// Default `--concurrency` (client connections).
const DEFAULT_CONCURRENCY: usize = 16;
/// Default `--duration-secs` (time cap of each scenario).
const DEFAULT_DURATION_SECS: u64 = 30;
/// Default `--working-set` (keys cycled by put-small with `--keys overwrite`).
const DEFAULT_WORKING_SET_KEYS: u64 = 128;
/// Default `--page-size` (max-keys of each page of the list scenario).
const DEFAULT_PAGE_SIZE_KEYS: usize = 1000;
/// S3's largest ListObjectsV2 page.
pub(crate) const MAX_PAGE_SIZE_KEYS: usize = 1000;
/// Longest bucket name S3 allows.
const MAX_BUCKET_NAME_BYTES: usize = 63;
/// Environment variable naming a CA bundle when `--ca-bundle` is not given (the aws tools').
const AWS_CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";
/// Shortest bucket name S3 allows.
const MIN_BUCKET_NAME_BYTES: usize = 3;

/// The workload `--scenario` selects.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// `--count` PutObjects of `--object-size` on `--concurrency` connections.
    PutSmall,
    /// `--count` GetObjects of small objects (written first, untimed, unless put-small just ran).
    GetSmall,
    /// One PutObject of `--size` on one connection.
    PutLarge,
    /// Timed: whole objects of `--size` uploaded as multipart uploads in parts of `--part-size`, the parts of an upload in parallel over the `--concurrency` connections (a free connection takes the next part of the oldest open upload, or starts a new one); CreateMultipartUpload, UploadPart and CompleteMultipartUpload reported separately; `--count` and `--rate` count objects. Uploads left open at the end are aborted.
    Multipart,
    /// One PutObject of `--size` and one multipart upload of the same bytes (parts of `--part-size` on `--concurrency` connections), then the multipart/single throughput ratio.
    LargeVsMultipart,
    /// put-small, get-small, then large-vs-multipart.
    All,
    /// Timed: ListObjectsV2 pages of `--page-size` keys at random start keys (start-after) among the bucket's keys, until `--count` (alias `--pages`) pages, `--duration-secs` or `--autoterm`; each page is checked against a full listing taken first (untimed). An empty bucket is filled first (untimed) with `--objects` objects as by fill.
    List,
    /// `--count` PutObjects of new keys fill/0000000000, fill/0000000001, ... of `--object-size`, whose body is the key and a space repeated (so any reader can check a GET without a copy), on `--concurrency` connections.
    Fill,
    /// Timed (warp-style): PUTs of new objects (`--object-size`, up to `--object-size-max`) until `--count`, `--duration-secs` or `--autoterm`; per-second statistics, `--json FILE`, `--csv`, `--plot`.
    Put,
    /// Timed: GETs of random objects among `--objects` written first (untimed), with time to first byte.
    Get,
    /// Timed: HeadObject (STAT) of random objects among `--objects` written first.
    Stat,
    /// Timed: DELETE of the `--objects` written first, each once.
    Delete,
    /// Timed: a weighted mix of GET, STAT, PUT and DELETE (`--mix`, default 45/30/15/10) over `--objects` written first.
    Mixed,
}

impl Scenario {
    /// The scenario as written on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::PutSmall => "put-small",
            Scenario::GetSmall => "get-small",
            Scenario::PutLarge => "put-large",
            Scenario::Multipart => "multipart",
            Scenario::LargeVsMultipart => "large-vs-multipart",
            Scenario::All => "all",
            Scenario::List => "list",
            Scenario::Fill => "fill",
            Scenario::Put => "put",
            Scenario::Get => "get",
            Scenario::Stat => "stat",
            Scenario::Delete => "delete",
            Scenario::Mixed => "mixed",
        }
    }
}

/// How `--payload` has request bodies covered by the signature.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadArg {
    /// Send `x-amz-content-sha256: UNSIGNED-PAYLOAD`: the client hashes nothing, so its own SHA-256 cost does not limit the measurement.
    Unsigned,
    /// Hash every body with SHA-256 and sign the hex digest, as boto3 does over plain HTTP.
    Signed,
}

/// Which keys put-small writes (`--keys`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeysArg {
    /// Operation i writes key small/i: every PUT creates a new object.
    New,
    /// Operation i writes key small/(i mod --working-set): PUTs replace existing objects.
    Overwrite,
}

/// `ringstore bench`: a client-side load generator (std threads, keep-alive TCP connections).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Sizes take a binary suffix: 4096, 4K, 4KiB, 8MiB, 1GiB (K/M/G and KiB/MiB/GiB are powers of 1024; KB/MB/GB are powers of 1000).\n\
                  Without --endpoint the bench starts its own server (with --null its trivial responder) on 127.0.0.1 (never another address).\n\
                  Exit status: 0 when every request succeeded, 1 when any failed, 2 for bad flags or setup errors, 130 after Ctrl-C (a second Ctrl-C stops at once, without cleanup)."
)]
pub struct BenchArgs {
    /// S3 endpoint to load, e.g. http://127.0.0.1:9000 or https://s3.example.com:9443 (the port defaults to 80 or 443); a comma-separated list spreads the connections over several endpoints, all http:// or all https://. For https:// the server's certificate is verified against the system's trust store unless --ca-bundle or --insecure says otherwise. Without --endpoint an in-process server is started on 127.0.0.1 with a fresh data directory under --data, and stopped at the end.
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// https:// endpoints: trust only the CA certificates in this PEM file instead of the system's trust store (as the aws CLI's --ca-bundle). Without the flag, a non-empty AWS_CA_BUNDLE environment variable names the file.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// https:// endpoints: do not verify the server's certificate (chain and name), for test setups with a self-signed certificate; the handshake signatures are still checked. Overrides --ca-bundle. Never use it where the network is not yours.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Which workload to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub(crate) scenario: Scenario,
    /// Object size of put-large, multipart and large-vs-multipart.
    #[arg(long, value_name = "BYTES", default_value = DEFAULT_SIZE, value_parser = parse_size)]
    pub(crate) size: u64,
    /// Object size of put-small, get-small and fill.
    #[arg(long, value_name = "BYTES", default_value = DEFAULT_OBJECT_SIZE, value_parser = parse_size)]
    pub(crate) object_size: u64,
    /// Number of operations of put-small, get-small and the timed workloads (pages of list, whole objects of multipart); objects fill writes.
    #[arg(long, visible_alias = "pages", default_value_t = DEFAULT_COUNT)]
    pub(crate) count: u64,
    /// Client connections used in parallel (one thread each) by every scenario but put-large.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
    /// Part size of multipart and large-vs-multipart uploads (S3 limits: 5 MiB to 5 GiB except the last part, at most 10,000 parts).
    #[arg(long, value_name = "BYTES", default_value = DEFAULT_PART_SIZE, value_parser = parse_size)]
    pub(crate) part_size: u64,
    /// Time cap of each scenario in seconds: a loop stops at --count or at this cap, whichever comes first.
    #[arg(long, default_value_t = DEFAULT_DURATION_SECS)]
    pub(crate) duration_secs: u64,
    /// How request bodies are covered by the signature.
    #[arg(long, value_enum, default_value_t = PayloadArg::Unsigned)]
    pub(crate) payload: PayloadArg,
    /// Access key to sign with. Default: the development key ringstoreadmin (also given to the in-process server).
    #[arg(long, env = "RINGSTORE_ACCESS_KEY", hide_env_values = true)]
    pub(crate) access_key: Option<String>,
    /// Secret key to sign with (prefer the environment variable: flags show up in `ps`). Default: the development secret.
    #[arg(long, env = "RINGSTORE_SECRET_KEY", hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
    /// In-process server only: parent of its temporary data directory. Must support O_DIRECT (not tmpfs).
    #[arg(long, default_value = "./bench-data")]
    pub(crate) data: PathBuf,
    /// In-process server only: number of cores (executors). Default: every online core.
    #[arg(long)]
    pub(crate) cores: Option<usize>,
    /// In-process server only: durability of acknowledged writes (never is unsafe, for comparison only).
    #[arg(long, value_enum, default_value_t = FsyncPolicy::Always)]
    pub(crate) fsync: FsyncPolicy,
    /// Keep what the bench wrote: the in-process server's data directory, or the bucket and objects on --endpoint (alias --keep).
    #[arg(long, visible_alias = "keep")]
    pub(crate) keep_data: bool,
    /// Write the results as JSON: `--json` alone prints them on stdout (the human-readable lines then go to stderr); `--json FILE` writes them to FILE. Timed workloads write the full report (schema in tuning/bench-run.schema.json), which `ringstore bench compare` reads.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) json: Option<String>,
    /// put-small: write new keys, or overwrite a fixed working set of --working-set keys.
    #[arg(long, value_enum, default_value_t = KeysArg::New)]
    pub(crate) keys: KeysArg,
    /// put-small with --keys overwrite: number of keys the PUTs cycle through.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WORKING_SET_KEYS)]
    pub(crate) working_set: u64,
    /// get-small: read every object once before the timed phase (not measured), so the timed
    /// reads find what a server's cache holds (as a re-reading benchmark such as warp does).
    #[arg(long)]
    pub(crate) warm_up: bool,
    /// list: keys per page (max-keys), at most 1000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE_SIZE_KEYS)]
    pub(crate) page_size: usize,
    /// Use this bucket instead of a fresh one: created if missing and never deleted; on --endpoint what the bench writes in it is kept (as with --keep-data). For filling a bucket once and listing it in later runs. (The in-process server's data directory is still removed unless --keep-data.)
    #[arg(long, value_name = "NAME")]
    pub(crate) bucket: Option<String>,
    /// Run the workload against a trivial responder in this process instead of a server: it reads each request fully and answers a fixed success (no auth, no storage), to measure the client's own ceiling. Its list pages come from --objects synthetic keys named as by fill.
    #[arg(long, conflicts_with = "endpoint")]
    pub(crate) null: bool,
    /// With --null: the responder serves HTTPS with a self-signed certificate made at start, which the client trusts (the client's ceiling over TLS). Timed workloads against an https:// endpoint measure their ceiling this way by themselves.
    #[arg(long)]
    pub(crate) tls: bool,
    #[command(flatten)]
    pub(crate) timed: TimedArgs,
    #[command(subcommand)]
    pub(crate) command: Option<BenchCommand>,
}

/// Subcommands of `ringstore bench`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Print the ratios B/A of two timed-workload reports written with --json FILE (throughput, latency p50/p99, errors, slowest second, per operation).
    Compare {
        /// The baseline report.
        a: PathBuf,
        /// The report compared with it.
        b: PathBuf,
    },
}

impl BenchArgs {
    /// What the client trusts on https:// endpoints: `--insecure`, else `--ca-bundle`, else a
    /// non-empty `AWS_CA_BUNDLE` (as the aws tools read it), else the system's store.
    pub(crate) fn trust(&self) -> Trust {
        let from_env = || {
            std::env::var_os(AWS_CA_BUNDLE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match (self.insecure, self.ca_bundle.clone().or_else(from_env)) {
            (true, _) => Trust::Insecure,
            (false, Some(path)) => Trust::Bundle(path),
            (false, None) => Trust::System,
        }
    }

    /// Whether the JSON goes to stdout (so the human lines go to stderr).
    pub(crate) fn json_stdout(&self) -> bool {
        self.json.as_deref() == Some("-")
    }
}

/// Parses a byte count: digits, optional spaces, optional unit (case-insensitive).
/// `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` are powers of 1024; `KB`, `MB`, `GB`, `TB` of 1000;
/// `B` or nothing means bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let num: String = num.chars().filter(|&c| c != '_').collect();
    if num.is_empty() {
        return Err(format!(
            "{s:?}: expected a number of bytes such as 4096, 4KiB or 256MiB"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: number too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// Formats a byte count the way sizes are written on the command line: `256 MiB`, `4 KiB`,
/// `1.5 GiB`, `100 B`.
pub(crate) fn format_size(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if n >= unit {
            if n.is_multiple_of(unit) {
                return format!("{} {name}", n / unit);
            }
            return format!("{:.1} {name}", n as f64 / unit as f64);
        }
    }
    format!("{n} B")
}

/// Which of the basic workloads a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    pub(crate) put_small: bool,
    pub(crate) get_small: bool,
    pub(crate) put_large: bool,
    pub(crate) multipart: bool,
    /// Print the put-large vs multipart comparison line.
    pub(crate) compare: bool,
    pub(crate) fill: bool,
    /// A timed (warp-style) workload.
    pub(crate) timed: Option<Workload>,
}

impl Plan {
    /// The workloads scenario `s` runs.
    fn of(s: Scenario) -> Plan {
        let mut p = Plan::default();
        match s {
            Scenario::PutSmall => p.put_small = true,
            Scenario::GetSmall => p.get_small = true,
            Scenario::PutLarge => p.put_large = true,
            Scenario::Multipart => p.timed = Some(Workload::Multipart),
            Scenario::LargeVsMultipart => {
                p.put_large = true;
                p.multipart = true;
                p.compare = true;
            }
            Scenario::All => {
                p = Plan {
                    put_small: true,
                    get_small: true,
                    put_large: true,
                    multipart: true,
                    compare: true,
                    ..Plan::default()
                }
            }
            Scenario::List => p.timed = Some(Workload::List),
            Scenario::Fill => p.fill = true,
            Scenario::Put => p.timed = Some(Workload::Put),
            Scenario::Get => p.timed = Some(Workload::Get),
            Scenario::Stat => p.timed = Some(Workload::Stat),
            Scenario::Delete => p.timed = Some(Workload::Delete),
            Scenario::Mixed => p.timed = Some(Workload::Mixed),
        }
        p
    }

    /// Whether put-small, get-small or a timed workload runs (they slice bodies from the
    /// shared buffer).
    pub(crate) fn small(&self) -> bool {
        self.put_small || self.get_small || self.timed.is_some()
    }

    /// Whether a scenario writes `--count` objects of `--object-size`.
    fn counted(&self) -> bool {
        self.small() || self.fill
    }

    /// Whether a multipart upload runs (one-shot or timed).
    fn uploads_parts(&self) -> bool {
        self.multipart || self.timed == Some(Workload::Multipart)
    }

    /// Whether put-large or a multipart upload runs (their bodies are the first `--size`
    /// bytes of the shared buffer).
    pub(crate) fn large(&self) -> bool {
        self.put_large || self.uploads_parts()
    }
}

impl BenchArgs {
    /// Checks the flags against each other and S3's limits; returns the plan.
    pub(crate) fn validate(&self) -> Result<Plan, String> {
        let plan = Plan::of(self.scenario);
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(format!(
                "--concurrency {}: must be between 1 and {MAX_CONCURRENCY}",
                self.concurrency
            ));
        }
        if self.duration_secs == 0 {
            return Err("--duration-secs must be at least 1".to_string());
        }
        if plan.counted() {
            if self.count == 0 {
                return Err("--count must be at least 1".to_string());
            }
            if self.object_size > MAX_SINGLE_PUT_BYTES {
                return Err(format!(
                    "--object-size {}: larger than S3's single PutObject limit of {}",
                    format_size(self.object_size),
                    format_size(MAX_SINGLE_PUT_BYTES)
                ));
            }
        }
        if plan.large() {
            if self.size == 0 {
                return Err("--size must be at least 1 byte".to_string());
            }
            if usize::try_from(self.size).is_err() {
                return Err("--size does not fit in memory on this platform".to_string());
            }
        }
        if plan.put_large && self.size > MAX_SINGLE_PUT_BYTES {
            return Err(format!(
                "--size {}: larger than S3's single PutObject limit of {} (use --scenario multipart)",
                format_size(self.size),
                format_size(MAX_SINGLE_PUT_BYTES)
            ));
        }
        if plan.uploads_parts() {
            self.validate_parts()?;
        }
        if plan.timed.is_some() {
            self.timed.validate(self.object_size)?;
        }
        self.validate_new_flags()?;
        if let Some(c) = self.cores {
            if c == 0 || c > MAX_CORES {
                return Err(format!("--cores {c}: must be between 1 and {MAX_CORES}"));
            }
        }
        Ok(plan)
    }

    /// Checks the flags of put-small's key mode, the list scenario and `--bucket`.
    fn validate_new_flags(&self) -> Result<(), String> {
        if self.working_set == 0 {
            return Err("--working-set must be at least 1".to_string());
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE_KEYS {
            return Err(format!(
                "--page-size {}: must be between 1 and {MAX_PAGE_SIZE_KEYS}",
                self.page_size
            ));
        }
        if self.tls && !self.null {
            return Err(
                "--tls serves the --null responder over HTTPS; for an HTTPS server use --endpoint https://HOST:PORT"
                    .to_string(),
            );
        }
        if let Some(b) = &self.bucket {
            let ok_chars = b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
            if !ok_chars || !(MIN_BUCKET_NAME_BYTES..=MAX_BUCKET_NAME_BYTES).contains(&b.len()) {
                return Err(format!(
                    "--bucket {b:?}: {MIN_BUCKET_NAME_BYTES} to {MAX_BUCKET_NAME_BYTES} lowercase letters, digits, '-' or '.'"
                ));
            }
        }
        Ok(())
    }

    /// Checks `--part-size` against S3's part limits for an upload of `--size`.
    fn validate_parts(&self) -> Result<(), String> {
        if self.part_size > MAX_SINGLE_PUT_BYTES {
            return Err(format!(
                "--part-size {}: larger than S3's part limit of {}",
                format_size(self.part_size),
                format_size(MAX_SINGLE_PUT_BYTES)
            ));
        }
        let parts = self.size.div_ceil(self.part_size.max(1));
        if self.part_size < MIN_PART_SIZE_BYTES && parts > 1 {
            return Err(format!(
                "--part-size {}: S3 parts (except the last) must be at least {}",
                format_size(self.part_size),
                format_size(MIN_PART_SIZE_BYTES)
            ));
        }
        if parts > MAX_PARTS {
            return Err(format!(
                "--size {} in parts of {} makes {parts} parts; S3 allows at most {MAX_PARTS}",
                format_size(self.size),
                format_size(self.part_size)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("17B"), Ok(17));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256mib"), Ok(256 << 20));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size(" 1_024 "), Ok(1024));
    }

    #[test]
    fn sizes_reject() {
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5MiB",
            "4 XB",
            "4KiBs",
            "99999999999999999999",
            "20000000TiB",
            "0x10",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn sizes_format() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1000), "1000 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(256 << 20), "256 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        for s in ["4KiB", "8MiB", "1GiB", "123B"] {
            let n = parse_size(s).unwrap();
            assert_eq!(parse_size(&format_size(n).replace(' ', "")), Ok(n));
        }
    }

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> BenchArgs {
        let mut full = vec!["bench"];
        full.extend_from_slice(argv);
        Wrap::try_parse_from(full).expect("flags parse").args
    }

    #[test]
    fn defaults_and_validation() {
        let a = parse(&[]);
        assert_eq!(a.size, 256 << 20);
        assert_eq!(a.object_size, 4096);
        assert_eq!(a.count, 10_000);
        assert_eq!(a.concurrency, 16);
        assert_eq!(a.part_size, 8 << 20);
        assert_eq!(a.duration_secs, 30);
        assert_eq!(a.payload, PayloadArg::Unsigned);
        assert_eq!(a.scenario, Scenario::All);
        assert!(a.endpoint.is_none());
        assert!(!a.keep_data);
        assert!(parse(&["--keep"]).keep_data, "--keep is --keep-data");
        let plan = a.validate().unwrap();
        assert!(
            plan.put_small && plan.get_small && plan.put_large && plan.multipart && plan.compare
        );

        assert!(parse(&["--part-size", "1MiB", "--scenario", "multipart"])
            .validate()
            .is_err());
        // One part smaller than 5 MiB is fine: it is the last part.
        assert!(parse(&[
            "--part-size",
            "1MiB",
            "--size",
            "1MiB",
            "--scenario",
            "multipart"
        ])
        .validate()
        .is_ok());
        // The part size does not matter when no multipart upload runs.
        assert!(parse(&["--part-size", "1MiB", "--scenario", "put-small"])
            .validate()
            .is_ok());
        assert!(parse(&["--size", "6GiB", "--scenario", "put-large"])
            .validate()
            .is_err());
        assert!(parse(&["--size", "6GiB", "--scenario", "multipart"])
            .validate()
            .is_ok());
        assert!(parse(&[
            "--size",
            "100GiB",
            "--part-size",
            "5MiB",
            "--scenario",
            "multipart"
        ])
        .validate()
        .is_err());
        assert!(parse(&["--concurrency", "0"]).validate().is_err());
        assert!(parse(&["--count", "0"]).validate().is_err());
        assert!(parse(&["--duration-secs", "0"]).validate().is_err());
        assert!(Wrap::try_parse_from(["bench", "--size", "lots"]).is_err());
        assert!(Wrap::try_parse_from(["bench", "--scenario", "nope"]).is_err());
    }
}
