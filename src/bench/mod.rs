//! `ringstore bench`: a client-side load generator for any S3 endpoint, by default for a
//! ringstore server it starts in-process on 127.0.0.1.
//!
//! Role: measure what a client sees (operations per second, MiB/s, latency percentiles) for
//! small PUT/GET, one large PUT and a parallel multipart upload, with std threads and blocking
//! keep-alive TCP connections, so the client stays simple and cheap next to the server.
//!
//! Invariants: the bench never picks a non-loopback target by itself (without `--endpoint` it
//! starts its own server on 127.0.0.1); it writes only into a bucket it creates (removed at the
//! end unless `--keep-data`); exit status 0 means every request succeeded.
//!
//! Layout: `args` (flags, sizes), `client` (HTTP/1.1 + SigV4 client, response parsing),
//! `workload` (the scenarios), `report` (results, text and JSON), `server` (in-process server).

mod args;
mod client;
mod report;
mod server;
mod workload;

pub(crate) use args::{format_size, BenchArgs, PayloadArg};
pub(crate) use client::Endpoint;

use crate::auth::Credentials;
use crate::auth::{DEV_ACCESS_KEY, DEV_SECRET_KEY};
use crate::runtime::FsyncPolicy;
use args::Plan;
use client::{Client, Payload};
use report::{json_str, Comparison, ScenarioResult};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Ctx;

/// Room beyond `--object-size` in the shared buffer, so small objects start at varied offsets.
const SMALL_BODY_WINDOW: u64 = 1024 * 1024;

/// Runs the bench; exit status 0 if every request succeeded, 1 if any failed, 2 on bad flags
/// or a setup failure, 130 when interrupted (after cleaning up).
pub fn run(args: BenchArgs) -> ExitCode {
    match run_checked(args) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(msg) => {
            eprintln!("ringstore bench: {msg}");
            ExitCode::from(2)
        }
    }
}

/// What the scenarios produced.
#[derive(Default)]
struct Summary {
    results: Vec<ScenarioResult>,
    comparison: Option<Comparison>,
    /// Requests outside the scenarios that failed (bucket creation, cleanup...).
    other_errors: u64,
    /// Keys possibly written, for cleanup on a remote endpoint.
    written: Vec<String>,
    /// The bench's bucket exists (so there is something to clean up).
    bucket_created: bool,
}

impl Summary {
    fn errors(&self) -> u64 {
        self.results.iter().map(|r| r.tally.errors).sum::<u64>() + self.other_errors
    }
}

fn credentials(args: &BenchArgs) -> Result<Credentials, String> {
    match (&args.access_key, &args.secret_key) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Ok(Credentials {
            access_key: a.clone(),
            secret_key: s.clone(),
        }),
        (None, None) => Ok(Credentials {
            access_key: DEV_ACCESS_KEY.to_string(),
            secret_key: DEV_SECRET_KEY.to_string(),
        }),
        _ => Err("set both the access key and the secret key, or neither".to_string()),
    }
}

/// How a run that got going ended.
enum Outcome {
    Ok,
    Failed,
    Interrupted,
}

fn run_checked(args: BenchArgs) -> Result<Outcome, String> {
    let plan = args.validate()?;
    let creds = credentials(&args)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once; the first lets the bench stop and clean up.
        signal_hook::flag::register_conditional_shutdown(sig, 130, interrupted.clone())
            .and_then(|_| signal_hook::flag::register(sig, interrupted.clone()))
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    }

    let mut buffer_len = 0u64;
    if plan.large() {
        buffer_len = args.size;
    }
    if plan.small() {
        buffer_len = buffer_len.max(args.object_size + SMALL_BODY_WINDOW);
    }
    let buffer_len = usize::try_from(buffer_len)
        .map_err(|_| "the body buffer does not fit in memory on this platform".to_string())?;

    let (endpoint, server) = match &args.endpoint {
        Some(url) => (Endpoint::parse(url)?, None),
        None => {
            let s = server::InProcess::start(
                &args.data,
                args.cores,
                &creds,
                args.fsync,
                args.concurrency,
            )?;
            (Endpoint::of(s.address), Some(s))
        }
    };

    let t0 = Instant::now();
    let data = workload::random_data(buffer_len);
    let gen_secs = t0.elapsed().as_secs_f64();

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let bucket = format!(
        "ringstore-bench-{}-{:x}",
        std::process::id(),
        nanos as u64 & 0xffff_ffff
    );
    let payload = match args.payload {
        PayloadArg::Unsigned => Payload::Unsigned,
        PayloadArg::Signed => Payload::Signed,
    };
    match &server {
        Some(s) => eprintln!(
            "ringstore bench: in-process server {} ({} cores, fsync {}, data {})",
            endpoint.url(),
            s.cores,
            match args.fsync {
                FsyncPolicy::Always => "always",
                FsyncPolicy::Never => "never (unsafe)",
            },
            s.run_dir.display()
        ),
        None => eprintln!("ringstore bench: endpoint {}", endpoint.url()),
    }
    eprintln!(
        "ringstore bench: scenario {}, payload {}, bucket {bucket}, {} body buffer in {gen_secs:.2} s, time cap {} s per scenario",
        args.scenario.name(),
        if payload == Payload::Signed { "signed (SHA-256)" } else { "unsigned" },
        format_size(buffer_len as u64),
        args.duration_secs,
    );

    let ctx = Ctx {
        endpoint: endpoint.clone(),
        creds,
        payload,
        bucket,
        data,
        duration: Duration::from_secs(args.duration_secs),
        interrupted,
    };
    let json = args.json;
    let emit = |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    };

    let summary = run_scenarios(&ctx, &args, plan, &emit);

    // Cleanup: a remote endpoint gets its objects and bucket deleted; the in-process server
    // is stopped and its directory removed.
    let cleanup = match server {
        None if !summary.bucket_created => Ok(()),
        None if !args.keep_data => remove_remote(&ctx, &summary.written, args.concurrency),
        None => {
            eprintln!(
                "ringstore bench: kept bucket {} on {}",
                ctx.bucket,
                endpoint.url()
            );
            Ok(())
        }
        Some(s) => {
            let dir = s.run_dir.clone();
            let r = s.stop(args.keep_data);
            if r.is_ok() && args.keep_data {
                eprintln!("ringstore bench: kept data directory {}", dir.display());
            }
            r
        }
    };
    if let Err(w) = cleanup {
        eprintln!("ringstore bench: cleanup: {w}");
    }

    for r in &summary.results {
        for m in &r.tally.messages {
            eprintln!("ringstore bench: {} error: {m}", r.name);
        }
        if r.tally.errors > r.tally.messages.len() as u64 {
            eprintln!(
                "ringstore bench: {} error: ... {} more",
                r.name,
                r.tally.errors - r.tally.messages.len() as u64
            );
        }
    }
    let errors = summary.errors();
    if json {
        println!("{}", summary_json(&args, &endpoint, &ctx, &summary));
    }
    if errors > 0 {
        eprintln!("ringstore bench: {errors} requests failed");
    }
    if ctx.interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Interrupted);
    }
    Ok(if errors == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// Deletes what the bench wrote on a remote endpoint: its objects, then its bucket.
fn remove_remote(ctx: &Ctx, keys: &[String], concurrency: usize) -> Result<(), String> {
    let t = workload::delete_keys(ctx, keys, concurrency);
    if t.errors > 0 {
        return Err(format!(
            "{} of {} object deletes failed (first: {}); bucket {} kept",
            t.errors,
            keys.len(),
            t.messages.first().map_or("?", |m| m.as_str()),
            ctx.bucket
        ));
    }
    let path = format!("/{}", ctx.bucket);
    match ctx.client().request("DELETE", &path, "", &[]) {
        Ok(r) if r.ok() => Ok(()),
        Ok(r) => Err(format!("DeleteBucket {}: {}", ctx.bucket, r.describe())),
        Err(e) => Err(format!("DeleteBucket {}: {e}", ctx.bucket)),
    }
}

fn run_scenarios(ctx: &Ctx, args: &BenchArgs, plan: Plan, emit: &dyn Fn(&str)) -> Summary {
    let mut summary = Summary::default();
    let mut c: Client = ctx.client();
    match c.request("PUT", &format!("/{}", ctx.bucket), "", &[]) {
        Ok(r) if r.ok() => {}
        Ok(r) => {
            eprintln!(
                "ringstore bench: CreateBucket {}: {}",
                ctx.bucket,
                r.describe()
            );
            summary.other_errors += 1;
            return summary;
        }
        Err(e) => {
            eprintln!("ringstore bench: CreateBucket {}: {e}", ctx.bucket);
            summary.other_errors += 1;
            return summary;
        }
    }
    drop(c);
    summary.bucket_created = true;
    let stop = || ctx.interrupted.load(std::sync::atomic::Ordering::Relaxed);

    let mut small_keys: Vec<u64> = Vec::new();
    if plan.put_small && !stop() {
        let (r, keys) = workload::put_small(
            ctx,
            "put-small",
            args.count,
            args.object_size,
            args.concurrency,
        );
        emit(&r.line());
        summary.results.push(r);
        summary
            .written
            .extend((0..keys.attempted).map(workload::small_key));
        small_keys = keys.ok;
    }
    if plan.get_small && !stop() {
        let mut populate_errors = None;
        if !plan.put_small {
            let (r, keys) = workload::put_small(
                ctx,
                "get-small (writing)",
                args.count,
                args.object_size,
                args.concurrency,
            );
            eprintln!(
                "ringstore bench: get-small: wrote {} objects of {} first ({:.2} s, not measured)",
                keys.ok.len(),
                format_size(args.object_size),
                r.secs()
            );
            summary
                .written
                .extend((0..keys.attempted).map(workload::small_key));
            small_keys = keys.ok;
            populate_errors = Some(r.tally);
        }
        let mut r = workload::get_small(
            ctx,
            args.count,
            args.object_size,
            args.concurrency,
            &small_keys,
        );
        if let Some(t) = populate_errors {
            // Failed writes of the objects to read count against get-small.
            r.tally.merge(report::Tally {
                errors: t.errors,
                messages: t.messages,
                ..Default::default()
            });
        }
        emit(&r.line());
        summary.results.push(r);
    }
    let mut single = None;
    if plan.put_large && !stop() {
        summary.written.push(workload::LARGE_KEY.to_string());
        let r = workload::put_large(ctx, args.size);
        emit(&r.line());
        single = Some(r.clone());
        summary.results.push(r);
    }
    if plan.multipart && !stop() {
        summary.written.push(workload::MULTIPART_KEY.to_string());
        let r = workload::multipart(ctx, args.size, args.part_size, args.concurrency);
        emit(&r.line());
        if plan.compare {
            if let Some(single) = single.take() {
                let c = Comparison {
                    size: args.size,
                    single,
                    multipart: r.clone(),
                    parts: args.size.div_ceil(args.part_size),
                    part_size: args.part_size,
                };
                emit(&c.line());
                summary.comparison = Some(c);
            }
        }
        summary.results.push(r);
    }
    if stop() {
        eprintln!("ringstore bench: interrupted");
    }
    summary
}

fn summary_json(args: &BenchArgs, endpoint: &Endpoint, ctx: &Ctx, s: &Summary) -> String {
    let scenarios: Vec<String> = s.results.iter().map(|r| r.json()).collect();
    format!(
        "{{\"endpoint\":{},\"in_process\":{},\"scenario\":{},\"payload\":{},\"bucket\":{},\"object_size\":{},\"count\":{},\"size\":{},\"part_size\":{},\"concurrency\":{},\"duration_secs\":{},\"scenarios\":[{}],\"comparison\":{},\"errors\":{},\"ok\":{}}}",
        json_str(&endpoint.url()),
        args.endpoint.is_none(),
        json_str(args.scenario.name()),
        json_str(match ctx.payload {
            Payload::Unsigned => "unsigned",
            Payload::Signed => "signed",
        }),
        json_str(&ctx.bucket),
        args.object_size,
        args.count,
        args.size,
        args.part_size,
        args.concurrency,
        args.duration_secs,
        scenarios.join(","),
        s.comparison.as_ref().map_or("null".to_string(), |c| c.json()),
        s.errors(),
        s.errors() == 0
    )
}
