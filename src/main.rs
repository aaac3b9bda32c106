//! `ringstore` binary: parses the command line and runs the server until SIGINT/SIGTERM.

use clap::Parser;
use ringstore::cli::{Cli, Command};
use ringstore::runtime;
use std::io::Write;
use std::process::ExitCode;

/// Bytes per MiB, for the stop line.
const MIB: f64 = 1024.0 * 1024.0;

/// The allocator: jemalloc, configured by [`SERVER_MALLOC_CONF`] so that memory freed when
/// uploads and connections end goes back to the OS within about a second, even while the cores
/// sit idle (glibc kept the buffers of 1,000 closed uploads: +369 MiB RSS 10 s later).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The environment variable jemalloc reads its options from when the process starts.
const MALLOC_CONF_VAR: &str = "_RJEM_MALLOC_CONF";
/// The server's jemalloc options: background threads purge freed pages, dirty pages are
/// returned after 1 s (jemalloc's default is 10 s), and straight away (no lazy MADV_FREE stage,
/// whose pages would still count as resident).
const SERVER_MALLOC_CONF: &str = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

/// `serve` without [`MALLOC_CONF_VAR`] set: runs this binary again, same arguments and PID, with
/// it set to [`SERVER_MALLOC_CONF`] (jemalloc reads it before `main`; setting it at run time
/// would need `unsafe`). A variable the user set is left alone. Returns only if exec failed.
fn reexec_with_malloc_conf() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MALLOC_CONF_VAR).is_some() {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("ringstore: cannot find this binary ({e}): freed memory is returned slowly");
            return;
        }
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(MALLOC_CONF_VAR, SERVER_MALLOC_CONF)
        .exec();
    eprintln!(
        "ringstore: cannot re-run with allocator options ({err}): freed memory is returned slowly"
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_)) {
        reexec_with_malloc_conf();
    }
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => ringstore::bench::run(args),
    }
}

/// The readiness line's endpoints: `http://A`, `https://A`, or `http://A, https://B`.
fn listening_urls(started: &runtime::Started) -> String {
    match started.tls_address {
        None => format!("http://{}", started.address),
        Some(tls) if tls == started.address => format!("https://{tls}"),
        Some(tls) => format!("http://{}, https://{tls}", started.address),
    }
}

/// SIGINT and SIGTERM stop the server; SIGHUP reloads the TLS certificate (without TLS it is
/// logged and ignored, so `systemctl reload` never ends a plain server).
fn install_signals() -> std::io::Result<signal_hook::iterator::Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
}

/// Blocks until a stop signal, reloading the TLS certificate on each SIGHUP meanwhile.
fn wait_for_stop(signals: &mut signal_hook::iterator::Signals, started: &runtime::Started) {
    for sig in signals.forever() {
        if sig != signal_hook::consts::SIGHUP {
            eprintln!("ringstore: signal {sig}: finishing in-flight requests, then stopping");
            return;
        }
        match started.reload_tls() {
            Some(Ok(())) => eprintln!("ringstore: SIGHUP: TLS certificate and key reloaded"),
            Some(Err(why)) => {
                eprintln!("ringstore: SIGHUP: {why}; keeping the previous certificate")
            }
            None => eprintln!("ringstore: SIGHUP: nothing to reload (no TLS)"),
        }
    }
}

fn serve(args: ringstore::cli::ServeArgs) -> ExitCode {
    let config = match args.into_config() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("ringstore: {msg}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match install_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringstore: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data_dir = config.data_dir.clone();
    let cores = config.cores;
    let started = match runtime::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringstore: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = started.report;
    eprintln!(
        "ringstore: recovery: {} buckets, {} objects loaded; {} staging files, {} partial buckets removed; {} unreferenced object files removed",
        r.buckets, r.objects, started.removed_staging_files, r.removed_partial_buckets, r.corrupt_files
    );
    println!(
        "ringstore listening on {} ({} cores, data {})",
        listening_urls(&started),
        cores,
        data_dir.display()
    );
    let _ = std::io::stdout().flush();
    wait_for_stop(&mut signals, &started);
    ringstore::http::shutdown::request_shutdown();
    let s = started.join();
    let checkpoint = match &s.checkpoint {
        Ok((keys, bytes)) => format!(
            "checkpoint of {keys} keys ({:.1} MiB) written",
            *bytes as f64 / MIB
        ),
        Err(why) => format!("checkpoint failed ({why}): the next start replays the log"),
    };
    eprintln!(
        "ringstore: stopped; log: {} records in {} flushes ({:.2} per flush); compaction: {} \
         segments freed, {:.1} MiB copied; read cache: {} hits, {} misses; {} upload buffers waited for memory; \
         MD5 lanes: {} batches, {:.2} lanes filled per batch; {checkpoint}",
        s.records,
        s.flushes,
        s.records as f64 / s.flushes.max(1) as f64,
        s.compactions,
        s.copied_bytes as f64 / MIB,
        s.cache_hits,
        s.cache_misses,
        s.upload_memory_waits,
        s.md5_batches,
        s.md5_slices as f64 / s.md5_batches.max(1) as f64
    );
    ExitCode::SUCCESS
}
