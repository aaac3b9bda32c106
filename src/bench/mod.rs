//! `ringstore bench`: a client-side load generator for any S3 endpoint, by default for a
//! ringstore server it starts in-process on 127.0.0.1.
//!
//! Role: measure what a client sees (operations per second, MiB/s, latency percentiles) for
//! small PUT/GET (new keys or a working set overwritten), one large PUT against one parallel
//! multipart upload, bulk fills, and the warp-style timed workloads (PUT, GET, STAT, DELETE,
//! mixed, ListObjectsV2 pages, multipart uploads) with per-second statistics, with std threads
//! and blocking keep-alive TCP connections (plain or TLS), so the client stays simple and cheap
//! next to the server; and, with `--null`, the client's own ceiling against a trivial responder.
//!
//! Invariants: the bench never picks a non-loopback target by itself (without `--endpoint` it
//! starts its own server, or with `--null` its responder, on 127.0.0.1); it writes only into a
//! bucket it creates (removed at the end unless `--keep-data`) or the one `--bucket` names
//! (never removed); exit status 0 means every request succeeded and, with `--null`, that the
//! responder answered exactly the requests the client sent.
//!
//! Layout: `args` (flags, sizes), `client` (HTTP/1.1 + SigV4 client, response parsing),
//! `workload` (one-shot small/large/multipart scenarios), `fill` (that scenario), `report`
//! (one-shot results, text and JSON), `timed`/`timed_args` (the timed engine and its flags),
//! `ops` (one timed operation), `list` and `multipart` (those requests and timed workloads),
//! `stats`/`run_report`/`plot` (timed results, JSON, CSV, SVG), `server` (in-process server),
//! `null` (the trivial responder), `tls` (the client's trust and TLS socket, the null
//! responder's self-signed certificate).

mod args;
mod client;
mod fill;
mod list;
mod multipart;
mod null;
mod ops;
mod plot;
mod report;
mod run_report;
mod server;
mod stats;
mod timed;
mod timed_args;
mod tls;
mod workload;

pub use args::BenchArgs;

use crate::auth::Credentials;
use crate::auth::{DEV_ACCESS_KEY, DEV_SECRET_KEY};
use crate::runtime::FsyncPolicy;
use args::{format_size, PayloadArg, Plan};
use client::{Client, Endpoint, Payload};
use report::{json_str, Comparison, ScenarioResult, Tally};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{Ctx, KeyMode};

/// Room beyond `--object-size` in the shared buffer, so small objects start at varied offsets.
const SMALL_BODY_WINDOW_BYTES: u64 = 1024 * 1024;
/// Exit status after an interruption (128 + SIGINT), also used when a second signal ends the
/// process at once.
const EXIT_STATUS_INTERRUPTED: u8 = 130;

/// Runs the bench; exit status 0 if every request succeeded, 1 if any failed, 2 on bad flags
/// or a setup failure, 130 when interrupted (after cleaning up).
pub fn run(args: BenchArgs) -> ExitCode {
    if let Some(args::BenchCommand::Compare { a, b }) = &args.command {
        return match run_report::compare_files(a, b) {
            Ok(lines) => {
                lines.iter().for_each(|l| println!("{l}"));
                ExitCode::SUCCESS
            }
            Err(msg) => {
                eprintln!("ringstore bench compare: {msg}");
                ExitCode::from(2)
            }
        };
    }
    match run_checked(args) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(EXIT_STATUS_INTERRUPTED),
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
    /// With `--null`: requests the responder answered.
    null_answered: Option<u64>,
    /// The report of a timed workload.
    timed: Option<run_report::RunReport>,
}

impl Summary {
    /// Failed requests, in the scenarios and outside them.
    fn errors(&self) -> u64 {
        self.results.iter().map(|r| r.tally.errors).sum::<u64>()
            + self.other_errors
            + self.timed.as_ref().map_or(0, |t| t.errors())
    }

    /// Records what the null responder `r` answered, after the scenarios.
    fn record_null(&mut self, ctx: &Ctx, r: &null::NullResponder) {
        let (sent, answered) = (ctx.sent.load(Ordering::Relaxed), r.answered());
        self.null_answered = Some(answered);
        eprintln!(
            "ringstore bench: null responder answered {answered} requests, the client sent {sent}"
        );
        if sent != answered {
            eprintln!("ringstore bench: null responder answered {answered} requests but the client sent {sent}");
            self.other_errors += 1;
        }
    }
}

/// What the bench loads: a remote endpoint, its own server, or its null responder.
enum Target {
    Remote,
    Server(Box<server::InProcess>),
    Null(null::NullResponder),
}

/// The keys to sign with: both flags (or environment variables), or the development keys.
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

/// The whole run: setup, the scenarios, cleanup and the report. `Err` is a setup failure.
fn run_checked(args: BenchArgs) -> Result<Outcome, String> {
    let plan = args.validate()?;
    let creds = credentials(&args)?;
    let interrupted = install_signal_handlers()?;
    let buffer_len = body_buffer_len(&args, plan)?;
    let (endpoints, target) = start_target(&args, &creds)?;

    let t0 = Instant::now();
    let data = workload::random_data(buffer_len);
    let gen_secs = t0.elapsed().as_secs_f64();

    let ctx = Ctx {
        endpoint: endpoints[0].clone(),
        endpoints,
        creds,
        payload: payload_of(args.payload),
        bucket: args.bucket.clone().unwrap_or_else(bucket_name),
        data,
        duration: Duration::from_secs(args.duration_secs),
        interrupted,
        sent: Arc::new(AtomicU64::new(0)),
    };
    print_banner(&args, &ctx, &target, buffer_len, gen_secs);

    let emit = |line: &str| emit_line(args.json_stdout(), line);
    let null = matches!(target, Target::Null(_));
    let mut summary = run_scenarios(&ctx, &args, plan, null, &emit);
    if let Target::Null(r) = &target {
        summary.record_null(&ctx, r);
        for res in &summary.results {
            emit(&res.ceiling_line());
        }
    }

    if let Err(w) = cleanup(&ctx, &args, target, &summary) {
        eprintln!("ringstore bench: cleanup: {w}");
    }
    print_error_samples(&summary);
    Ok(finish(&args, &ctx, &summary))
}

/// Installs SIGINT/SIGTERM handlers; the returned flag is set by the first signal.
fn install_signal_handlers() -> Result<Arc<AtomicBool>, String> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once; the first lets the bench stop and clean up.
        signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(EXIT_STATUS_INTERRUPTED),
            interrupted.clone(),
        )
        .and_then(|_| signal_hook::flag::register(sig, interrupted.clone()))
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    }
    Ok(interrupted)
}

/// Length in bytes of the shared body buffer the planned scenarios need.
fn body_buffer_len(args: &BenchArgs, plan: Plan) -> Result<usize, String> {
    let mut buffer_len = 0u64;
    if plan.large() {
        buffer_len = args.size;
    }
    if plan.small() {
        let largest = args.timed.size_max(args.object_size);
        buffer_len = buffer_len.max(largest + SMALL_BODY_WINDOW_BYTES);
    }
    usize::try_from(buffer_len)
        .map_err(|_| "the body buffer does not fit in memory on this platform".to_string())
}

/// The endpoints to load: `--endpoint`'s list, the null responder, or an in-process server
/// started here.
fn start_target(args: &BenchArgs, creds: &Credentials) -> Result<(Vec<Endpoint>, Target), String> {
    match &args.endpoint {
        Some(urls) => Ok((remote_endpoints(urls, args)?, Target::Remote)),
        None if args.null => {
            let (r, endpoint) = start_null(args, args.tls, args.timed.objects)?;
            Ok((vec![endpoint], Target::Null(r)))
        }
        None => {
            let s = server::InProcess::start(
                &args.data,
                args.cores,
                creds,
                args.fsync,
                args.concurrency,
            )?;
            Ok((vec![Endpoint::of(s.address)], Target::Server(Box::new(s))))
        }
    }
}

/// Every endpoint of `--endpoint`'s comma list; all http:// or all https:// (the client's
/// ceiling is measured over one of the two).
fn remote_endpoints(urls: &str, args: &BenchArgs) -> Result<Vec<Endpoint>, String> {
    let mut tls = client::TlsSetup::new(args.trust());
    let endpoints = urls
        .split(',')
        .map(|u| Endpoint::parse(u.trim(), &mut tls))
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints
        .iter()
        .any(|e| e.is_tls() != endpoints[0].is_tls())
    {
        return Err(format!(
            "--endpoint {urls}: mixes http:// and https:// endpoints; give endpoints of one scheme"
        ));
    }
    Ok(endpoints)
}

/// Starts the null responder (over HTTPS with a fresh self-signed certificate when `tls`) and
/// the endpoint that reaches it, trusting that certificate only.
fn start_null(
    args: &BenchArgs,
    tls: bool,
    list_keys: u64,
) -> Result<(null::NullResponder, Endpoint), String> {
    let certs = tls.then(tls::SelfSigned::generate).transpose()?;
    let server_tls = certs.as_ref().map(|c| c.server.clone());
    let r = null::NullResponder::start(args.object_size, list_keys, server_tls)?;
    let endpoint = match certs {
        Some(c) => Endpoint::of_tls(r.address, c.client),
        None => Endpoint::of(r.address),
    };
    Ok((r, endpoint))
}

/// A bucket name no other run uses: the process id and the low bits of the clock.
fn bucket_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "ringstore-bench-{}-{:x}",
        std::process::id(),
        nanos as u64 & 0xffff_ffff
    )
}

/// The client's payload signing mode for the `--payload` flag.
fn payload_of(arg: PayloadArg) -> Payload {
    match arg {
        PayloadArg::Unsigned => Payload::Unsigned,
        PayloadArg::Signed => Payload::Signed,
    }
}

/// Prints the two setup lines on stderr: the target, then the scenario and the body buffer.
fn print_banner(args: &BenchArgs, ctx: &Ctx, target: &Target, buffer_len: usize, gen_secs: f64) {
    match target {
        Target::Server(s) => eprintln!(
            "ringstore bench: in-process server {} ({} cores, fsync {}, data {})",
            ctx.endpoint.url(),
            s.cores,
            match args.fsync {
                FsyncPolicy::Always => "always",
                FsyncPolicy::Never => "never (unsafe)",
            },
            s.run_dir.display()
        ),
        Target::Null(_) => eprintln!(
            "ringstore bench: null responder {} (no auth, no storage: the client's own ceiling)",
            ctx.endpoint.url()
        ),
        Target::Remote => eprintln!(
            "ringstore bench: endpoint {}{}",
            ctx.endpoint.url(),
            tls_note(args, &ctx.endpoint)
        ),
    }
    eprintln!(
        "ringstore bench: scenario {}, payload {}, bucket {}, {} body buffer in {gen_secs:.2} s, time cap {} s per scenario",
        args.scenario.name(),
        if ctx.payload == Payload::Signed { "signed (SHA-256)" } else { "unsigned" },
        ctx.bucket,
        format_size(buffer_len as u64),
        args.duration_secs,
    );
}

/// How the banner describes the certificate check of `endpoint` (nothing for plain HTTP).
fn tls_note(args: &BenchArgs, endpoint: &Endpoint) -> String {
    match (endpoint.is_tls(), args.trust()) {
        (false, _) => String::new(),
        (true, tls::Trust::System) => " (TLS, verified against the system's trust store)".into(),
        (true, tls::Trust::Bundle(p)) => {
            format!(" (TLS, verified against the CA file {})", p.display())
        }
        (true, tls::Trust::Insecure) => " (TLS, certificate NOT verified: --insecure)".into(),
    }
}

/// Prints a result line: on stdout (flushed), or on stderr when stdout carries the JSON.
fn emit_line(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
}

/// Removes what the bench wrote (unless `--keep-data`) and stops the in-process server.
fn cleanup(ctx: &Ctx, args: &BenchArgs, target: Target, summary: &Summary) -> Result<(), String> {
    match target {
        Target::Null(r) => {
            r.stop();
            Ok(())
        }
        Target::Remote if !summary.bucket_created => Ok(()),
        Target::Remote if !args.keep_data && args.bucket.is_none() => {
            remove_remote(ctx, &summary.written, args.concurrency)
        }
        Target::Remote => {
            eprintln!(
                "ringstore bench: kept bucket {} on {}",
                ctx.bucket,
                ctx.endpoint.url()
            );
            Ok(())
        }
        Target::Server(s) => stop_server(*s, args.keep_data),
    }
}

/// Stops the in-process server; removes its data directory unless `keep`.
fn stop_server(s: server::InProcess, keep: bool) -> Result<(), String> {
    let dir = s.run_dir.clone();
    let r = s.stop(keep);
    if r.is_ok() && keep {
        eprintln!("ringstore bench: kept data directory {}", dir.display());
    }
    r
}

/// Prints the kept error messages of each scenario, and how many more there were.
fn print_error_samples(summary: &Summary) {
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
}

/// Prints the JSON summary (with `--json`) and the failure count; how the run ended.
fn finish(args: &BenchArgs, ctx: &Ctx, summary: &Summary) -> Outcome {
    let errors = summary.errors();
    if args.json_stdout() {
        match &summary.timed {
            Some(t) => println!("{}", t.json()),
            None => println!("{}", summary_json(args, ctx, summary)),
        }
    } else if let (Some(path), None) = (&args.json, &summary.timed) {
        if let Err(e) = std::fs::write(path, summary_json(args, ctx, summary)) {
            eprintln!("ringstore bench: writing --json {path}: {e}");
        }
    }
    if errors > 0 {
        eprintln!("ringstore bench: {errors} requests failed");
    }
    if ctx.is_interrupted() {
        return Outcome::Interrupted;
    }
    if errors == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
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

/// Creates the bench's bucket, then runs the planned steps in order until done or interrupted.
fn run_scenarios(
    ctx: &Ctx,
    args: &BenchArgs,
    plan: Plan,
    null: bool,
    emit: &dyn Fn(&str),
) -> Summary {
    let mut summary = Summary::default();
    if let Err(msg) = create_bucket(ctx, args.bucket.is_some()) {
        eprintln!("ringstore bench: {msg}");
        summary.other_errors += 1;
        return summary;
    }
    summary.bucket_created = true;

    let mut small_keys: Vec<u64> = Vec::new();
    if plan.put_small && !ctx.is_interrupted() {
        small_keys = put_small_step(ctx, args, &mut summary, emit);
    }
    if plan.get_small && !ctx.is_interrupted() {
        let objects = if plan.put_small {
            SmallObjects {
                keys: small_keys,
                write_errors: None,
            }
        } else {
            populate_small(ctx, args, &mut summary)
        };
        get_small_step(ctx, args, objects, &mut summary, emit);
    }
    let mut single = None;
    if plan.put_large && !ctx.is_interrupted() {
        single = Some(put_large_step(ctx, args, &mut summary, emit));
    }
    if plan.multipart && !ctx.is_interrupted() {
        let single = single.take().filter(|_| plan.compare);
        multipart_step(ctx, args, single, &mut summary, emit);
    }
    if plan.fill && !ctx.is_interrupted() {
        fill::step(ctx, args, &mut summary, emit);
    }
    if let Some(w) = plan.timed.filter(|_| !ctx.is_interrupted()) {
        timed_step(ctx, args, w, null, &mut summary, emit);
    }
    if ctx.is_interrupted() {
        eprintln!("ringstore bench: interrupted");
    }
    summary
}

/// A timed workload: the run, the client's ceiling beside it (unless `--no-ceiling` or this
/// is the null responder), the text, and the `--json`/`--csv`/`--plot` files.
fn timed_step(
    ctx: &Ctx,
    args: &BenchArgs,
    w: timed::Workload,
    null: bool,
    summary: &mut Summary,
    emit: &dyn Fn(&str),
) {
    let m = timed::run(
        ctx,
        args,
        w,
        timed::RunOpts::measured(args, ctx.duration, null),
    );
    let urls = ctx.endpoints.iter().map(|e| e.url()).collect();
    let tls_verify = ctx.endpoint.is_tls().then(|| match args.null {
        true => "self-signed",
        false => args.trust().name(),
    });
    let params = run_report::params(args, args.scenario.name(), urls, tls_verify, &ctx.bucket);
    let mut report = run_report::RunReport::new(params, &m, args.timed.trim_secs);
    if !null && !args.timed.no_ceiling && !ctx.is_interrupted() {
        match ceiling(ctx, args, w, m.listed_keys) {
            Ok(c) => report.client_ceiling = Some(c),
            Err(e) => eprintln!("ringstore bench: client ceiling not measured: {e}"),
        }
    }
    for line in report.text() {
        emit(&line);
    }
    if let Err(e) = run_report::write_outputs(&report, args) {
        eprintln!("ringstore bench: {e}");
        summary.other_errors += 1;
    }
    summary.timed = Some(report);
    if args.endpoint.is_some() && args.bucket.is_none() && !args.keep_data {
        match list::list_all(ctx) {
            Ok(keys) => summary.written = keys,
            Err(e) => eprintln!("ringstore bench: listing what to clean up: {e}"),
        }
    }
}

/// The same workload against the null responder for a few seconds: the client's ceiling
/// (list: over as many synthetic keys as the measured run listed; over TLS for an HTTPS run).
fn ceiling(
    ctx: &Ctx,
    args: &BenchArgs,
    w: timed::Workload,
    listed_keys: Option<u64>,
) -> Result<run_report::Ceiling, String> {
    let keys = listed_keys.unwrap_or(args.timed.objects).max(1);
    let (responder, endpoint) = start_null(args, ctx.endpoint.is_tls(), keys)?;
    let null_ctx = Ctx {
        endpoints: vec![endpoint.clone()],
        endpoint,
        creds: ctx.creds.clone(),
        payload: ctx.payload,
        bucket: ctx.bucket.clone(),
        data: ctx.data.clone(),
        duration: ctx.duration,
        interrupted: ctx.interrupted.clone(),
        sent: Arc::new(AtomicU64::new(0)),
    };
    let m = timed::run(&null_ctx, args, w, timed::RunOpts::ceiling(ctx.duration));
    responder.stop();
    let window = stats::window(m.elapsed_secs, args.timed.trim_secs);
    Ok(run_report::Ceiling {
        tls: ctx.endpoint.is_tls(),
        secs: m.elapsed_secs,
        operations: run_report::operations(&m, window),
    })
}

/// CreateBucket for the bench's bucket (when `existing_ok`, one the caller already owns will
/// do); `Err` says what went wrong.
fn create_bucket(ctx: &Ctx, existing_ok: bool) -> Result<(), String> {
    let mut c: Client = ctx.client();
    match c.request("PUT", &format!("/{}", ctx.bucket), "", &[]) {
        Ok(r) if r.ok() => Ok(()),
        Ok(r) if existing_ok && r.describe().contains("BucketAlreadyOwnedByYou") => Ok(()),
        Ok(r) => Err(format!("CreateBucket {}: {}", ctx.bucket, r.describe())),
        Err(e) => Err(format!("CreateBucket {}: {e}", ctx.bucket)),
    }
}

/// put-small, measured; returns the indices of the objects written.
fn put_small_step(
    ctx: &Ctx,
    args: &BenchArgs,
    summary: &mut Summary,
    emit: &dyn Fn(&str),
) -> Vec<u64> {
    let (r, keys) = workload::put_small(
        ctx,
        "put-small",
        args.count,
        args.object_size,
        args.concurrency,
        key_mode(args),
    );
    emit(&r.line());
    summary.results.push(r);
    summary
        .written
        .extend((0..keys.attempted).map(workload::small_key));
    keys.ok
}

/// Which objects put-small writes, from `--keys` and `--working-set`.
fn key_mode(args: &BenchArgs) -> KeyMode {
    match args.keys {
        args::KeysArg::New => KeyMode::New,
        args::KeysArg::Overwrite => KeyMode::Overwrite(args.working_set),
    }
}

/// The small objects get-small reads.
struct SmallObjects {
    /// Indices written successfully, ascending.
    keys: Vec<u64>,
    /// The tally of writing them, when get-small wrote them itself.
    write_errors: Option<Tally>,
}

/// Writes the objects get-small reads when put-small did not run (not measured).
fn populate_small(ctx: &Ctx, args: &BenchArgs, summary: &mut Summary) -> SmallObjects {
    let (r, keys) = workload::put_small(
        ctx,
        "get-small (writing)",
        args.count,
        args.object_size,
        args.concurrency,
        key_mode(args),
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
    SmallObjects {
        keys: keys.ok,
        write_errors: Some(r.tally),
    }
}

/// get-small, measured, on `objects`; failed writes of them count against it.
fn get_small_step(
    ctx: &Ctx,
    args: &BenchArgs,
    objects: SmallObjects,
    summary: &mut Summary,
    emit: &dyn Fn(&str),
) {
    if args.warm_up && !objects.keys.is_empty() {
        let n = objects.keys.len() as u64;
        let w = workload::get_small(ctx, n, args.object_size, args.concurrency, &objects.keys);
        eprintln!(
            "ringstore bench: get-small: warmed up: read {} objects once ({:.2} s, {} errors, \
             not measured)",
            w.tally.ops,
            w.secs(),
            w.tally.errors
        );
    }
    let mut r = workload::get_small(
        ctx,
        args.count,
        args.object_size,
        args.concurrency,
        &objects.keys,
    );
    if let Some(t) = objects.write_errors {
        // Failed writes of the objects to read count against get-small.
        r.tally.merge(Tally {
            errors: t.errors,
            messages: t.messages,
            ..Default::default()
        });
    }
    emit(&r.line());
    summary.results.push(r);
}

/// put-large, measured; returns its result for the comparison with multipart.
fn put_large_step(
    ctx: &Ctx,
    args: &BenchArgs,
    summary: &mut Summary,
    emit: &dyn Fn(&str),
) -> ScenarioResult {
    summary.written.push(workload::LARGE_KEY.to_string());
    let r = workload::put_large(ctx, args.size);
    emit(&r.line());
    summary.results.push(r.clone());
    r
}

/// multipart, measured; then its comparison with `single` (put-large) if there is one.
fn multipart_step(
    ctx: &Ctx,
    args: &BenchArgs,
    single: Option<ScenarioResult>,
    summary: &mut Summary,
    emit: &dyn Fn(&str),
) {
    summary.written.push(workload::MULTIPART_KEY.to_string());
    let r = workload::multipart(ctx, args.size, args.part_size, args.concurrency);
    emit(&r.line());
    if let Some(single) = single {
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
    summary.results.push(r);
}

/// The `--json` summary of the whole run.
fn summary_json(args: &BenchArgs, ctx: &Ctx, s: &Summary) -> String {
    let scenarios: Vec<String> = s.results.iter().map(|r| r.json()).collect();
    format!(
        "{{\"endpoint\":{},\"in_process\":{},\"null\":{},\"scenario\":{},\"payload\":{},\"bucket\":{},\"object_size\":{},\"count\":{},\"keys\":{},\"working_set\":{},\"page_size\":{},\"size\":{},\"part_size\":{},\"concurrency\":{},\"duration_secs\":{},\"scenarios\":[{}],\"comparison\":{},\"null_responder\":{},\"errors\":{},\"ok\":{}}}",
        json_str(&ctx.endpoint.url()),
        args.endpoint.is_none() && !args.null,
        args.null,
        json_str(args.scenario.name()),
        json_str(match ctx.payload {
            Payload::Unsigned => "unsigned",
            Payload::Signed => "signed",
        }),
        json_str(&ctx.bucket),
        args.object_size,
        args.count,
        json_str(match args.keys {
            args::KeysArg::New => "new",
            args::KeysArg::Overwrite => "overwrite",
        }),
        args.working_set,
        args.page_size,
        args.size,
        args.part_size,
        args.concurrency,
        args.duration_secs,
        scenarios.join(","),
        s.comparison.as_ref().map_or("null".to_string(), |c| c.json()),
        s.null_answered.map_or("null".to_string(), |a| format!(
            "{{\"sent\":{},\"answered\":{a}}}",
            ctx.sent.load(Ordering::Relaxed)
        )),
        s.errors(),
        s.errors() == 0
    )
}
