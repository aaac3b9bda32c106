//! Flags of the warp-style timed workloads (`--scenario put|get|stat|delete|mixed|list|
//! multipart`): the operation mix, object sizes, key prefix, checksums, auto-termination, rate
//! limit, outputs.
//!
//! Invariant: [`TimedArgs::validate`] accepts only values the engine can run (a mix with a
//! positive total weight, a size range within S3's single-PUT limit, a prefix that needs no
//! URI encoding), before anything is started.

use super::args::format_size;
use clap::ValueEnum;
use std::path::PathBuf;

/// Default `--objects`: objects written before get, stat, delete and mixed (untimed).
const OBJECTS_DEFAULT: u64 = 1000;
/// Largest object size of the timed workloads (S3's single PutObject limit).
const OBJECT_SIZE_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Default `--mix` (warp's mixed default).
pub(crate) const MIX_DEFAULT: &str = "get=45,stat=30,put=15,delete=10";
/// Default `--trim-secs`: seconds of warm-up left out of the statistics.
const TRIM_SECS_DEFAULT: u64 = 1;
/// Longest `--prefix`.
const PREFIX_MAX_BYTES: usize = 512;

/// The checksum a timed PUT sends (`--checksum`), as an `x-amz-checksum-*` header.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChecksumArg {
    /// No checksum header.
    None,
    /// x-amz-checksum-crc32.
    Crc32,
    /// x-amz-checksum-crc32c.
    Crc32c,
    /// x-amz-checksum-crc64nvme.
    Crc64nvme,
    /// x-amz-checksum-sha256.
    Sha256,
}

/// Relative weights of the operations of `--scenario mixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Mix {
    pub(crate) get: u32,
    pub(crate) stat: u32,
    pub(crate) put: u32,
    pub(crate) delete: u32,
}

impl Mix {
    pub(crate) fn total(&self) -> u32 {
        self.get + self.stat + self.put + self.delete
    }
}

/// Parses `get=45,stat=30,put=15,delete=10` (missing operations weigh 0).
pub(crate) fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        get: 0,
        stat: 0,
        put: 0,
        delete: 0,
    };
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected OPERATION=WEIGHT, e.g. get=45"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "get" => &mut mix.get,
            "stat" | "head" => &mut mix.stat,
            "put" => &mut mix.put,
            "delete" => &mut mix.delete,
            other => {
                return Err(format!(
                    "{other:?}: operations are get, stat, put and delete"
                ))
            }
        };
        *slot = weight;
    }
    if mix.total() == 0 || mix.total() > 1_000_000 {
        return Err(format!(
            "{s:?}: the weights must add up to between 1 and 1000000"
        ));
    }
    Ok(mix)
}

/// Flags of the timed workloads (flattened into `ringstore bench`).
#[derive(clap::Args, Debug)]
pub struct TimedArgs {
    /// put/get/stat/delete/mixed: largest object size; each object's size is then drawn between --object-size and this, spread logarithmically (as warp's --obj.randsize), so small and large sizes are equally represented.
    #[arg(long, value_name = "BYTES", value_parser = super::args::parse_size)]
    pub(crate) object_size_max: Option<u64>,
    /// get/stat/delete/mixed: objects written before the timed phase (untimed), spread over the connections. delete deletes each once. list: objects written (as by fill, untimed) when the bucket is empty; with --null, the keys of the synthetic listing.
    #[arg(long, value_name = "N", default_value_t = OBJECTS_DEFAULT)]
    pub(crate) objects: u64,
    /// mixed: operation weights, e.g. get=45,stat=30,put=15,delete=10 (the default). PUTs write new objects, DELETEs remove existing ones; every connection works on its own objects, so no operation races another.
    #[arg(long, value_name = "WEIGHTS", default_value = MIX_DEFAULT, value_parser = parse_mix)]
    pub(crate) mix: Mix,
    /// put/get/stat/delete/mixed/multipart: key prefix of the objects (letters, digits and - _ . / ~).
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// put/mixed: checksum sent with every PUT; multipart: with every UploadPart (the algorithm declared by CreateMultipartUpload, each part's value listed in CompleteMultipartUpload). Computed by the client, checked by the server.
    #[arg(long, value_enum, default_value_t = ChecksumArg::None)]
    pub(crate) checksum: ChecksumArg,
    /// Stop early once throughput is steady: when every one of the last 10 per-second values stays within 7.5% of their mean.
    #[arg(long)]
    pub(crate) autoterm: bool,
    /// Most operations per second, over all connections together (multipart: objects, i.e. uploads started, per second); default: as fast as possible.
    #[arg(long, value_name = "OPS")]
    pub(crate) rate: Option<u64>,
    /// Seconds at the start of a timed workload whose operations are left out of the statistics (warm-up); applied only when the run lasts at least this plus 2 s.
    #[arg(long, value_name = "SECS", default_value_t = TRIM_SECS_DEFAULT)]
    pub(crate) trim_secs: u64,
    /// Write one CSV row per second per operation (ops, bytes, errors, throughput, latency percentiles) to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Draw throughput and latency over time as an SVG chart into this file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
    /// Do not measure the client's own ceiling (by default each timed workload is also run for a few seconds against the in-process null responder, and the result printed next to the server's).
    #[arg(long)]
    pub(crate) no_ceiling: bool,
    /// Region to sign requests for.
    #[arg(long, default_value = super::client::REGION_DEFAULT)]
    pub(crate) region: String,
}

impl TimedArgs {
    /// Checks the timed workloads' flags against `object_size`, the smallest size.
    pub(crate) fn validate(&self, object_size: u64) -> Result<(), String> {
        let max = self.object_size_max.unwrap_or(object_size);
        if max < object_size {
            return Err(format!(
                "--object-size-max {} is smaller than --object-size {}",
                format_size(max),
                format_size(object_size)
            ));
        }
        if max > OBJECT_SIZE_MAX_BYTES {
            return Err(format!(
                "--object-size-max {}: larger than S3's single PutObject limit of {}",
                format_size(max),
                format_size(OBJECT_SIZE_MAX_BYTES)
            ));
        }
        if self.objects == 0 {
            return Err("--objects must be at least 1".to_string());
        }
        if self.rate == Some(0) {
            return Err("--rate must be at least 1 operation per second".to_string());
        }
        let ok = |c: u8| c.is_ascii_alphanumeric() || b"-_./~".contains(&c);
        if self.prefix.len() > PREFIX_MAX_BYTES || !self.prefix.bytes().all(ok) {
            return Err(format!(
                "--prefix {:?}: at most {PREFIX_MAX_BYTES} letters, digits and - _ . / ~",
                self.prefix
            ));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return Err(format!(
                "--region {:?}: letters, digits and '-'",
                self.region
            ));
        }
        Ok(())
    }

    /// The largest object size (the shared body buffer must hold it).
    pub(crate) fn size_max(&self, object_size: u64) -> u64 {
        self.object_size_max.unwrap_or(object_size).max(object_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse() {
        let m = parse_mix(MIX_DEFAULT).unwrap();
        assert_eq!((m.get, m.stat, m.put, m.delete), (45, 30, 15, 10));
        let m = parse_mix("put=1, head=3").unwrap();
        assert_eq!((m.get, m.stat, m.put, m.delete), (0, 3, 1, 0));
        assert!(parse_mix("get=0").is_err());
        assert!(parse_mix("list=4").is_err());
        assert!(parse_mix("get").is_err());
        assert!(parse_mix("get=-1").is_err());
        assert!(parse_mix("").is_err());
    }
}
