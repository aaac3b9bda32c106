#!/usr/bin/env python3
"""ringstore next to its peers: Garage for cached 16 MiB GETs, fio for the raw disk.

Rows (each run `--rounds` times, in the order ringstore, Garage, fio within a round; the table
gives medians over the rounds and the ratio of the medians):

  cache   GET 16 MiB on 8 connections over 32 distinct objects (512 MiB, half of ringstore's
          default 1 GiB --cache-size), each read once before the timed phase (`ringstore bench
          --warm-up`): ringstore with its default read cache vs Garage (which reads its block
          files through the kernel's page cache). Target ringstore/Garage >= 1.2.
  bypass  GET 16 MiB on 8 connections, cache bypassed: `ringstore serve --cache-size 0` vs
          `fio --direct=1 --ioengine=io_uring --rw=read --bs=512k --iodepth=4 --numjobs=8` over
          files fio writes just before (O_DIRECT, fsync'd) in --data, the filesystem of the
          servers' data directories: by default 32 files of 16 MiB, 4 per job read one after the
          other, round after round (--fio-runtime seconds, time-based), i.e. the same bytes in
          the same file sizes as the 32 objects, which ringstore keeps one file each. ringstore
          reads a large object in 512 KiB chunks with up to 4 in flight per stream, hence bs and
          iodepth. fio runs twice on the same files: as above (plain buffers; the target's
          reference), and with --fixedbufs (buffers registered with io_uring, as glommio's DMA
          buffers are), which on a virtio disk can read markedly faster.
          Target ringstore/fio >= 0.9.

Both servers run on a fresh data directory under --data, on a free 127.0.0.1 port, with the same
access keys, and are driven by the same client (`ringstore bench --endpoint`, from --binary).
The comparison is durable vs durable: ringstore --fsync always (its default); Garage with
metadata_fsync = true, data_fsync = true, db_engine = lmdb, replication_factor = 1 and
compression_level = none (the bench's bodies are random bytes, so zstd would only cost CPU;
--garage-compression changes it). Server CPU-us per operation is user+system time of the server
process (all threads) from /proc/PID/stat over the timed phase only, divided by the GETs.

The bench writes its objects first, untimed: get-small with `--keys overwrite --working-set 32`
PUTs --count objects cycling through the 32 keys, then reads the 32 once (cache row), then times
--count GETs cycling through them.

Absolute numbers on a shared 2-core VM mean little (server, client and fio share the cores and
the disk); the ratios from one run are the result. A measurement tool, never a pass/fail test.
Progress goes to stderr, the markdown table to stdout.

    tuning/peers.py --binary /path/to/ringstore --rounds 2
    tuning/peers.py --rows bypass --bypass-count 960 --fio-runtime 15
    tuning/peers.py --rows cache --garage ~/.cargo/bin/garage
"""

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import READY_TIMEOUT_SECS, RingstoreServer, cpu_secs, run_bench_json, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
OBJECT_SIZE = 16 * MIB
WORKING_SET = 32
CONNECTIONS = 8
FIO_BS = "512k"
FIO_IODEPTH = 4
# The region `ringstore bench` signs with (src/bench/client.rs); Garage must be configured with it.
REGION = "us-east-1"
WARMED_UP = "ringstore bench: get-small: warmed up"
WROTE = "ringstore bench: get-small: wrote"


def log(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs `cmd`, its output on stderr (stdout carries only the table); returns its stdout if
    `capture`."""
    capture = kw.pop("capture", False)
    log(" ".join(cmd))
    r = subprocess.run(cmd, check=True, stdout=subprocess.PIPE if capture else sys.stderr, text=True, **kw)
    return r.stdout if capture else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def Ringstore(binary, parent, keys, cache_size=None):
    """`ringstore serve --fsync always` (durable, like Garage here) with the bench's keys."""
    extra = ["--fsync", "always"] + (["--cache-size", cache_size] if cache_size is not None else [])
    server = RingstoreServer(binary, parent, extra, bench_env(keys))
    log(" ".join(server.cmd))
    return server


GARAGE_TOML = """\
metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
metadata_fsync = true
data_fsync = true
replication_factor = 1
compression_level = {compression}

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{region}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
"""


class Garage:
    """A single-node Garage (`garage server`) on fresh metadata and data directories under
    `parent`, with a one-node layout and the bench's key imported and allowed to create buckets."""

    name = "garage"

    def __init__(self, binary, parent, keys, compression):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="garage-", dir=parent)
        self.cfg = os.path.join(self.dir, "garage.toml")
        s3_port, rpc_port = free_port(), free_port()
        while rpc_port == s3_port:
            rpc_port = free_port()
        with open(self.cfg, "w") as f:
            f.write(GARAGE_TOML.format(
                meta=os.path.join(self.dir, "meta"), data=os.path.join(self.dir, "data"),
                compression='"none"' if compression == "none" else int(compression),
                rpc_port=rpc_port, rpc_secret=secrets.token_hex(32), region=REGION, s3_port=s3_port,
            ))
        os.chmod(self.cfg, 0o600)
        self.endpoint = f"http://127.0.0.1:{s3_port}"
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        cmd = [binary, "-c", self.cfg, "server"]
        log(" ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "RUST_LOG": "garage=warn"})
        try:
            self._setup(keys)
        except BaseException:
            self.stop()
            raise

    def cli(self, *args):
        cmd = [self.binary, "-c", self.cfg, *args]
        log(" ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def _setup(self, keys):
        deadline = time.time() + READY_TIMEOUT_SECS
        node = None
        while node is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"garage server exited ({self.proc.returncode}); see its log:\n"
                                   + open(self.log.name).read()[-3000:])
            try:
                # `node id` reads the key from the metadata directory; `status` needs the RPC port.
                st = subprocess.run([self.binary, "-c", self.cfg, "status"], capture_output=True, timeout=30)
                out = subprocess.run([self.binary, "-c", self.cfg, "node", "id", "-q"], capture_output=True,
                                     text=True, timeout=30)
                if st.returncode == 0 and out.returncode == 0 and "@" in out.stdout:
                    node = out.stdout.strip().split("@")[0]
                    break
            except subprocess.TimeoutExpired:
                pass
            if time.time() > deadline:
                raise RuntimeError("garage server did not answer `garage status`")
            time.sleep(0.5)
        self.cli("layout", "assign", "-z", "dc1", "-c", "100GB", node[:16])
        self.cli("layout", "apply", "--version", "1")
        access, secret = keys
        self.cli("key", "import", "--yes", "-n", "bench", access, secret)
        self.cli("key", "allow", "--create-bucket", access)
        # The S3 endpoint answers once the layout is live; wait for the port.
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(self.endpoint.rsplit(":", 1)[1])), 1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("garage's S3 port never opened")
                time.sleep(0.2)

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_env(keys):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSTORE_")}
    env["RINGSTORE_ACCESS_KEY"], env["RINGSTORE_SECRET_KEY"] = keys
    return env


def run_bench(bench, endpoint, keys, args, on_line=None):
    """Runs `ringstore bench` with `args` against `endpoint`; returns its JSON.

    `on_line` sees every stderr line as it arrives (to sample the server's CPU time).
    """
    # --keep-data: the bench would otherwise delete every object it wrote before exiting, after
    # the timed phase; the server's directory is removed anyway.
    cmd = [bench, "bench", "--json", "--keep-data", "--endpoint", endpoint, *args]
    log(" ".join(cmd))
    return run_bench_json(cmd, bench_env(keys), on_line)


def measure_server(bench, server, keys, count, warm_up, duration):
    """GET 16 MiB x `count` on 8 connections over 32 objects on `server`; returns a result dict
    (ops/s, MiB/s, p50 ms, server CPU-us per op)."""
    args = ["--scenario", "get-small", "--object-size", "16MiB", "--count", str(count),
            "--concurrency", str(CONNECTIONS), "--keys", "overwrite", "--working-set", str(WORKING_SET),
            "--duration-secs", str(duration), *(["--warm-up"] if warm_up else [])]
    timed_from = WARMED_UP if warm_up else WROTE
    start = []

    def on_line(line):
        if not start and line.startswith(timed_from):
            start.append(cpu_secs(server.proc.pid))
        if line.startswith(WROTE) or line.startswith(WARMED_UP):
            log("  bench: " + line.strip())

    summary = run_bench(bench, server.endpoint, keys, args, on_line)
    r = summary["scenarios"][-1]
    if not start:
        raise RuntimeError(f"the bench never printed {timed_from!r}")
    if r.get("errors"):
        raise RuntimeError(f"{server.name}: {r['errors']} GET errors: {r.get('error_samples')}")
    if r.get("stopped_early"):
        log(f"  warning: timed phase stopped early ({r['stopped_early']}) after {r['ops']} GETs")
    cpu = (cpu_secs(server.proc.pid) - start[0]) * 1e6 / max(r["ops"], 1)
    return {"ops": r["ops_per_sec"], "mib": r["mib_per_sec"], "p50": r["p50_ms"], "cpu": cpu,
            "secs": r["seconds"]}


def fio_cmd(args, directory, rw, fixedbufs=False):
    n, size = args.fio_files_per_job, args.fio_file_size
    cmd = ["fio", f"--name=peers-{rw}", f"--directory={directory}", "--filename_format=peers.$jobnum.$filenum",
           f"--nrfiles={n}", f"--filesize={size}m", f"--size={n * size}m", "--file_service_type=sequential",
           f"--numjobs={CONNECTIONS}", "--direct=1", "--ioengine=io_uring", "--output-format=json"]
    if rw == "write":
        return cmd + ["--rw=write", "--bs=1m", "--iodepth=4", "--end_fsync=1"]
    return cmd + ["--rw=read", f"--bs={FIO_BS}", f"--iodepth={FIO_IODEPTH}", "--group_reporting",
                  "--time_based", f"--runtime={args.fio_runtime}", *(["--fixedbufs"] if fixedbufs else [])]


def measure_fio(args):
    """Writes the files, reads them with O_DIRECT through io_uring, once with plain buffers and
    once with registered ones (--fixedbufs, as glommio registers its DMA buffers); returns
    {"fio": result, "fio-fixedbufs": result}."""
    d = tempfile.mkdtemp(prefix="fio-", dir=args.data)
    results = {}
    try:
        run(fio_cmd(args, d, "write"), capture=True)
        for key, fixed in (("fio", False), ("fio-fixedbufs", True)):
            out = json.loads(run(fio_cmd(args, d, "read", fixed), capture=True))
            read = out["jobs"][0]["read"]
            mib = read["bw_bytes"] / MIB
            results[key] = {"ops": mib * MIB / OBJECT_SIZE, "mib": mib, "p50": None, "cpu": None,
                            "secs": read["runtime"] / 1e3}
        return results
    finally:
        shutil.rmtree(d, ignore_errors=True)


def garage_version(binary):
    """"Garage X.Y.Z" from `garage --version` (e.g. "garage cargo:2.5.0 [features: ...]")."""
    r = subprocess.run([binary, "--version"], capture_output=True, text=True)
    m = re.search(r"(\d+\.\d+\.\d+\S*)", r.stdout)
    return f"Garage {m.group(1)}" if m else "Garage (version unknown)"


def find_garage(arg):
    for cand in ([arg] if arg else ["/work/peers/garage/bin/garage", shutil.which("garage") or ""]):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "ringstore"),
                    help="ringstore binary, both the server and the load generator (default "
                         "target/release/ringstore in the repo; not built by this script)")
    ap.add_argument("--garage", default=None,
                    help="garage binary (default /work/peers/garage/bin/garage, else `garage` on PATH; "
                         "e.g. from `cargo install garage --locked`)")
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data", "peers"),
                    help="parent of the servers' data directories and fio's files: a disk filesystem, not "
                         "tmpfs (default REPO/bench-data/peers); everything made there is removed at the end")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds; each runs ringstore, Garage, then fio for the chosen rows (default 2)")
    ap.add_argument("--rows", default="cache,bypass",
                    help="comma-separated rows: cache (ringstore vs Garage, objects read before), "
                         "bypass (ringstore --cache-size 0 vs fio) (default: both)")
    ap.add_argument("--count", type=int, default=640,
                    help="timed GETs of the cache row per server, cycling through the 32 objects; the bench "
                         "also PUTs this many (untimed) to write them (default 640, 20 passes)")
    ap.add_argument("--bypass-count", type=int, default=640,
                    help="timed GETs of ringstore in the bypass row, likewise PUT first (default 640, "
                         "about 10 s at 1 GiB/s)")
    ap.add_argument("--duration-secs", type=int, default=120,
                    help="the bench's time cap per phase (writing, warm-up, timed), passed as "
                         "--duration-secs (default 120; a capped timed phase is reported as a warning)")
    ap.add_argument("--fio-file-size", type=int, default=16,
                    help="size of each fio file in MiB (default 16, the object size)")
    ap.add_argument("--fio-files-per-job", type=int, default=4,
                    help="files each of fio's 8 jobs reads in turn, sequentially, round after round (default "
                         "4: 8 x 4 x 16 MiB files = the 32 objects, one file each as ringstore stores them; "
                         "--fio-files-per-job 1 --fio-file-size 512 reads 8 big files instead)")
    ap.add_argument("--fio-runtime", type=int, default=10, help="seconds fio reads, time-based (default 10)")
    ap.add_argument("--garage-compression", default="none",
                    help="Garage's compression_level: none or a zstd level (default none: the bodies are "
                         "random, and Garage's default 1 would zstd-frame and decompress every block)")
    args = ap.parse_args()
    args.selected = [r for r in args.rows.split(",") if r]
    if not args.selected or any(r not in ("cache", "bypass") for r in args.selected):
        ap.error("--rows: choose from cache, bypass")
    if not os.access(args.binary, os.X_OK):
        ap.error(f"--binary {args.binary}: not an executable")
    if "cache" in args.selected:
        args.garage = find_garage(args.garage)
        if not args.garage:
            ap.error("no garage binary: pass --garage PATH")
    if "bypass" in args.selected and not shutil.which("fio"):
        ap.error("fio not found on PATH (apt-get install fio)")
    if args.garage_compression != "none" and not args.garage_compression.lstrip("-").isdigit():
        ap.error("--garage-compression: none or an integer")
    return args


def med(results, key):
    vals = [r[key] for r in results if r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(args, results, gversion):
    print(f"| workload (16 MiB objects, {CONNECTIONS} connections, medians of {args.rounds} rounds) | system "
          f"| ops/s | MiB/s | p50 ms | server CPU-us/op | ratio | per round | target |")
    print("|---|---|---|---|---|---|---|---|---|")

    def line(workload, label, res, ratio_cell, rounds_cell, target):
        print(f"| {workload} | {label} | {fmt(med(res, 'ops'), '.1f')} | {fmt(med(res, 'mib'), '.0f')} | "
              f"{fmt(med(res, 'p50'), '.1f')} | {fmt(med(res, 'cpu'), '.0f')} | {ratio_cell} | {rounds_cell} "
              f"| {target} |")

    def group(workload, a_key, a_label, peers, target):
        """`a_key`'s line with its MiB/s ratio to each of `peers` [(key, label, short name)], bold for
        the first, then one line per peer."""
        a = results.get(a_key, [])
        ratios, per = [], []
        for i, (key, _, short) in enumerate(peers):
            b = results.get(key, [])
            r = f"{med(a, 'mib') / med(b, 'mib'):.2f}"
            ratios.append(f"{'**' + r + '**' if i == 0 else r} vs {short}")
            per.append(" ".join(f"{x['mib'] / y['mib']:.2f}" for x, y in zip(a, b)))
        line(workload, a_label, a, "; ".join(ratios), "; ".join(per), target)
        for key, label, _ in peers:
            line(workload, label, results.get(key, []), "", "", "")

    if "cache" in args.selected:
        group(f"GET, {WORKING_SET} distinct objects (512 MiB), each read once before timing",
              "ringstore-cache", "ringstore (default --cache-size 1GiB, fsync always)",
              [("garage", f"{gversion} (lmdb, metadata_fsync+data_fsync, compression "
                          f"{args.garage_compression}; page cache)", "Garage")],
              "ringstore/Garage >= 1.2")
    if "bypass" in args.selected:
        files = (f"{CONNECTIONS * args.fio_files_per_job} x {args.fio_file_size} MiB files, {args.fio_runtime} s, "
                 f"ops/s = MiB/s / 16")
        base = f"fio direct io_uring read bs={FIO_BS} iodepth={FIO_IODEPTH} numjobs={CONNECTIONS}"
        group("GET, cache bypassed", "ringstore-bypass", "ringstore --cache-size 0",
              [("fio", f"{base} ({files})", "fio"),
               ("fio-fixedbufs", f"{base} --fixedbufs (registered buffers, as glommio)", "fio --fixedbufs")],
              "ringstore/fio >= 0.9")


def main():
    args = parse_args()
    os.makedirs(args.data, exist_ok=True)
    keys = ("GK" + secrets.token_hex(12), secrets.token_hex(32))
    gversion = garage_version(args.garage) if "cache" in args.selected else None
    if gversion:
        log(f"garage: {args.garage}: {gversion}")
    results = {}
    live = []
    try:
        for rnd in range(1, args.rounds + 1):
            plan = []
            if "cache" in args.selected:
                plan += [("ringstore-cache", lambda: Ringstore(args.binary, args.data, keys), args.count, True),
                         ("garage", lambda: Garage(args.garage, args.data, keys, args.garage_compression),
                          args.count, True)]
            if "bypass" in args.selected:
                plan += [("ringstore-bypass", lambda: Ringstore(args.binary, args.data, keys, cache_size="0"),
                          args.bypass_count, False), ("fio", None, None, None)]
            for key, start, count, warm_up in plan:
                log(f"round {rnd}: {key}")
                if start is None:
                    for k, r in measure_fio(args).items():
                        results.setdefault(k, []).append(r)
                        log(f"round {rnd} {k}: {r['ops']:.1f} ops/s, {r['mib']:.0f} MiB/s over {r['secs']:.1f} s")
                    continue
                else:
                    server = start()
                    live.append(server)
                    try:
                        r = measure_server(args.binary, server, keys, count, warm_up, args.duration_secs)
                    finally:
                        server.stop()
                        live.remove(server)
                results.setdefault(key, []).append(r)
                log(f"round {rnd} {key}: {r['ops']:.1f} ops/s, {r['mib']:.0f} MiB/s over {r['secs']:.1f} s"
                    + (f", p50 {r['p50']:.1f} ms, {r['cpu']:.0f} server CPU-us/op" if r["cpu"] is not None else ""))
    finally:
        for server in live:
            server.stop()
    print_table(args, results, gversion)
    if "bypass" in args.selected:
        print()
        print("fio: " + " ".join(fio_cmd(args, args.data + "/fio-XXXX", "read")) + "  (and the same with --fixedbufs)")


if __name__ == "__main__":
    main()
