#!/usr/bin/env python3
"""ringstore vs peers vs the disk limit, in one run: the engine behind tuning/compare.sh.

Runs the same timed `ringstore bench` workloads (from --binary) against ringstore (started here,
`--fsync always`), a Garage and an s3s-fs started here when their binaries are given, and any
running endpoint given with --peer; reads the disk's limits from tuning/fio-baseline.sh's
summary.json; prints a markdown table, ratios first, and keeps every report (JSON), chart (SVG)
and the table (compare.md, compare.json) in --out.

Workloads (each --duration seconds, or until --autoterm finds steady throughput):
  put-4k   PUT 4 KiB new objects, 32 connections         disk limit: 4 KiB write + fdatasync IOPS
  get-4k   GET 4 KiB among 1000 objects, 32 connections  disk limit: random 4 KiB read IOPS
  put-16m  PUT 16 MiB new objects, 8 connections         disk limit: sequential write MiB/s
  get-16m  GET 16 MiB among 32 objects, 8 connections    disk limit: sequential read MiB/s
  mixed    45% GET / 30% STAT / 15% PUT / 10% DELETE of 4 KiB..1 MiB objects, 32 connections

Durability: ringstore --fsync always; Garage with metadata_fsync = true and data_fsync = true;
s3s-fs 0.14.1 writes its files without fsync (not durable: compare with care). The servers'
read caches differ: ringstore's own cache (1 GiB default), Garage and s3s-fs the page cache.
A measurement tool, never a pass/fail test; ratios from one run are the result.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import stop_process  # noqa: E402
from peers import Garage, Ringstore, bench_env, free_port  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("compareaccesskey0001", "compare/secret/key/0123456789abcdefghij")

# name: (bench flags, metric, fio job giving the disk limit, fio metric)
WORKLOADS = {
    "put-4k": (["--scenario", "put", "--object-size", "4KiB", "--concurrency", "32"], "ops", "write-sync", "iops"),
    "get-4k": (["--scenario", "get", "--object-size", "4KiB", "--objects", "1000", "--concurrency", "32"],
               "ops", "rand-read", "iops"),
    "put-16m": (["--scenario", "put", "--object-size", "16MiB", "--concurrency", "8"], "mib", "seq-write", "mib_per_s"),
    "get-16m": (["--scenario", "get", "--object-size", "16MiB", "--objects", "32", "--concurrency", "8"],
                "mib", "seq-read", "mib_per_s"),
    "mixed": (["--scenario", "mixed", "--object-size", "4KiB", "--object-size-max", "1MiB", "--objects", "500",
               "--concurrency", "32"], "ops", None, None),
}


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


class S3sFs:
    """s3s-fs 0.14.1 (`s3s-fs --host --port --access-key --secret-key ROOT`) on a fresh root."""

    name = "s3s-fs"

    def __init__(self, binary, parent, keys):
        self.dir = tempfile.mkdtemp(prefix="s3s-fs-", dir=parent)
        port = free_port()
        cmd = [binary, "--host", "127.0.0.1", "--port", str(port), "--access-key", keys[0],
               "--secret-key", keys[1], self.dir]
        log(" ".join(cmd))
        self.log = open(os.path.join(parent, f"s3s-fs-{port}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"s3s-fs did not start; see {self.log.name}")
                time.sleep(0.2)

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Endpoint:
    """A running peer given with --peer NAME=URL (not started or stopped here)."""

    def __init__(self, name, url):
        self.name, self.endpoint = name, url

    def stop(self):
        pass


def bench_cmd(args, target, workload, out):
    flags = WORKLOADS[workload][0]
    base = os.path.join(out, f"{target.name}-{workload}")
    cmd = [args.binary, "bench", "--endpoint", target.endpoint, *flags, "--duration-secs", str(args.duration),
           "--count", "1000000000", "--json", base + ".json", "--plot", base + ".svg"]
    if args.autoterm:
        cmd.append("--autoterm")
    if target.name != "ringstore":
        cmd.append("--no-ceiling")
    return cmd, base + ".json"


def run_workload(args, target, workload, out):
    cmd, path = bench_cmd(args, target, workload, out)
    log(" ".join(cmd))
    r = subprocess.run(cmd, env=bench_env(KEYS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 1) or not os.path.exists(path):
        log(f"{target.name} {workload} failed ({r.returncode}): {r.stderr[-1500:]}")
        return None
    with open(path) as f:
        return json.load(f)


def value(report, metric):
    """ops/s or MiB/s of a report, summed over its operations (one for all but mixed)."""
    if report is None:
        return None
    key = "ops_per_sec" if metric == "ops" else "mib_per_sec"
    return sum(o[key]["avg"] for o in report["operations"])


def ceiling(report, metric):
    c = report and report.get("client_ceiling")
    if not c:
        return None
    key = "ops_per_sec" if metric == "ops" else "mib_per_sec"
    return sum(o[key]["avg"] for o in c["operations"])


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def num(x, metric):
    if x is None:
        return "-"
    return f"{x:,.0f} ops/s" if metric == "ops" else f"{x:,.1f} MiB/s"


def table(results, fio, names):
    peers = [n for n in names if n != "ringstore"]
    head = ["workload"] + [f"ringstore / {p}" for p in peers] + ["ringstore / disk limit", "ringstore"] + peers \
        + ["disk limit (fio)", "client ceiling"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = {}
    for w, (_, metric, job, fio_key) in WORKLOADS.items():
        if w not in results:
            continue
        vals = {n: value(results[w].get(n), metric) for n in names}
        disk = fio.get(job, {}).get(fio_key) if job else None
        rs = vals.get("ringstore")
        cells = [w] + [ratio(rs, vals[p]) for p in peers] + [ratio(rs, disk), num(rs, metric)] \
            + [num(vals[p], metric) for p in peers] + [num(disk, metric) + (f" ({job})" if job else ""),
                                                        num(ceiling(results[w].get("ringstore"), metric), metric)]
        lines.append("| " + " | ".join(cells) + " |")
        rows[w] = {"metric": metric, "values": vals, "disk_limit": disk, "disk_job": job}
    return "\n".join(lines), rows


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "ringstore"),
                    help="ringstore binary: the server and the load generator (default target/release/ringstore)")
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data", "compare"),
                    help="parent of the servers' data directories (a disk, not tmpfs; removed at the end)")
    ap.add_argument("--out", default=os.path.join(REPO, "target", "compare"), help="where reports, charts and the table go")
    ap.add_argument("--fio-summary", default=None, help="summary.json of tuning/fio-baseline.sh (the disk limits)")
    ap.add_argument("--garage", default=None, help="start a single-node Garage from this binary (durable config)")
    ap.add_argument("--s3s-fs", dest="s3s_fs", default=None, help="start s3s-fs from this binary")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=URL",
                    help=f"a running endpoint to include; it must accept the keys {KEYS[0]} / {KEYS[1]}")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list of: " + ", ".join(WORKLOADS))
    ap.add_argument("--duration", type=int, default=15, help="seconds per workload and server (default 15)")
    ap.add_argument("--autoterm", action="store_true", help="let each run stop early once steady")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (servers, bench command lines); run nothing")
    args = ap.parse_args()
    bad = [w for w in args.workloads.split(",") if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workloads {bad}; choose from {list(WORKLOADS)}")
    return args


def start_targets(args):
    targets = [Ringstore(args.binary, args.data, KEYS)]
    if args.garage:
        targets.append(Garage(args.garage, args.data, KEYS, "none"))
    if args.s3s_fs:
        targets.append(S3sFs(args.s3s_fs, args.data, KEYS))
    for p in args.peer:
        name, _, url = p.partition("=")
        targets.append(Endpoint(name, url))
    return targets


def main():
    args = parse_args()
    workloads = args.workloads.split(",")
    if args.dry_run:
        names = ["ringstore"] + (["garage"] if args.garage else []) + (["s3s-fs"] if args.s3s_fs else []) \
            + [p.partition("=")[0] for p in args.peer]
        for n in names:
            for w in workloads:
                cmd, _ = bench_cmd(args, Endpoint(n, f"http://<{n}>"), w, args.out)
                print(" ".join(cmd))
        return
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.data, exist_ok=True)
    fio = {}
    if args.fio_summary and os.path.exists(args.fio_summary):
        with open(args.fio_summary) as f:
            fio = json.load(f)
    results = {w: {} for w in workloads}
    targets = start_targets(args)
    try:
        for t in targets:
            for w in workloads:
                results[w][t.name] = run_workload(args, t, w, args.out)
    finally:
        for t in targets:
            t.stop()
    text, rows = table(results, fio, [t.name for t in targets])
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"workloads": rows, "fio": fio, "duration_secs": args.duration}, f, indent=2)
    print(text)
    log(f"reports, charts and the table are in {args.out}")


if __name__ == "__main__":
    main()
