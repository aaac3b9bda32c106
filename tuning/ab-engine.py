#!/usr/bin/env python3
"""A/B of two ringstore builds under the same load generator, back to back.

Builds BASE (default 1e5529b, the last commit before the storage engine work) in a git worktree
under target/ab/, builds the working tree's binary, then for each round and each binary: starts
`ringstore serve` on a fresh data directory on 127.0.0.1, drives it with the *working tree's*
`ringstore bench --endpoint` (the same client for both), and reads the server's CPU time from
/proc/PID/stat around the timed phase. Prints ops/s and server CPU-us per operation side by side,
with the new/base ratio of medians over the rounds, and the client's median latency.

Rows (`--rows` picks some): PUT 4 KiB new keys, PUT 4 KiB overwriting 128 keys, GET 4 KiB, a
1000-key ListObjectsV2 page at random start keys on one connection from a bucket filled to
`--list-objects` (untimed), PUT and GET 16 MiB on 8 connections, and the client's own ceiling
against the bench's `--null` responder (no server; the same client, so the server numbers can be
read against it).

Absolute numbers on a shared 2-core VM mean little; the ratios from one run are the result.
This is a measurement tool, never a pass/fail test.

    tuning/ab-engine.py                      # 1e5529b vs the working tree, 3 rounds
    tuning/ab-engine.py --rounds 5 --count 50000 --base HEAD~3
    tuning/ab-engine.py --rows put-new,list,null --list-objects 1000000 --rounds 1
    tuning/ab-engine.py --base 57c0dcb --rows get,put-new --new-args="--log-level info"
"""

import argparse
import os
import statistics
import subprocess
import sys

from benchlib import RingstoreServer, cpu_secs, run_bench_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"ab-engine: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log(" ".join(cmd))
    # Their output goes to stderr: stdout carries only the table.
    subprocess.run(cmd, check=True, cwd=kw.pop("cwd", REPO), stdout=sys.stderr, **kw)


def build_base(commit):
    """The release binary of `commit`, built once in its own worktree and target dir."""
    sha = subprocess.run(["git", "rev-parse", "--short", commit], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    ab = os.path.join(REPO, "target", "ab")
    tree = os.path.join(ab, f"tree-{sha}")
    target = os.path.join(ab, f"target-{sha}")
    binary = os.path.join(target, "release", "ringstore")
    if not os.path.isdir(tree):
        os.makedirs(ab, exist_ok=True)
        run(["git", "worktree", "add", "--detach", tree, sha])
    if not os.path.exists(binary):
        run(["cargo", "build", "--release"], cwd=tree, env={**os.environ, "CARGO_TARGET_DIR": target})
    return sha, binary


def build_new():
    run(["cargo", "build", "--release"])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "ringstore")


def Server(binary, parent, fsync, extra=()):
    """`ringstore serve` on a fresh data directory under `parent`, on a free loopback port, with
    the development keys (RINGSTORE_* variables removed) and `extra` flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSTORE_")}
    return RingstoreServer(binary, parent, ["--fsync", fsync, *extra], env, prefix="ab-")


def run_bench(bench, endpoint, args, on_line=None):
    """Runs `ringstore bench` with `args` (against `endpoint` unless None); returns its JSON.

    `on_line` sees every stderr line as it arrives (to sample the server's CPU time).
    """
    # --keep-data: the bench would otherwise delete every object it wrote before exiting, and
    # that work would count as the workload's (the server's directory is removed anyway).
    cmd = [bench, "bench", "--json", "--keep-data", *(["--endpoint", endpoint] if endpoint else []), *args]
    return run_bench_json(cmd, None, on_line)


def measure(bench, server, row, args):
    """Runs `row` against `server` (None: the bench's null responder); returns (ops/s, p50 ms,
    server CPU-us per op or None).

    Server CPU is sampled when the bench prints a line starting with the row's `timed_from` (the
    timed phase begins; None = at launch) and when the bench exits.
    """
    endpoint = server.endpoint if server else None
    for setup in row.setup(args):
        run_bench(bench, endpoint, setup)
    start = []
    if server and row.timed_from is None:
        start.append(cpu_secs(server.proc.pid))

    def on_line(line):
        if server and not start and row.timed_from and line.startswith(row.timed_from):
            start.append(cpu_secs(server.proc.pid))

    summary = run_bench(bench, endpoint, row.bench_args(args), on_line)
    ops_per_sec, p50_ms, ops = result_of(summary)
    if not server:
        return ops_per_sec, p50_ms, None
    if not start:
        raise RuntimeError(f"{row.label}: the bench never printed {row.timed_from!r}")
    cpu = (cpu_secs(server.proc.pid) - start[0]) * 1e6 / max(ops, 1)
    return ops_per_sec, p50_ms, cpu


def result_of(summary):
    """(ops/s, p50 ms, operations) of a bench's JSON: the last scenario of a one-shot summary, or
    the only operation of a timed report (`--scenario list` is timed since the bench's issue 12)."""
    if "scenarios" in summary:
        r = summary["scenarios"][-1]
        return r["ops_per_sec"], r["p50_ms"], r["ops"]
    (op,) = summary["operations"]
    return op["ops_per_sec"]["avg"], op["latency_ms"]["p50"], op["total_ops"]


class Row:
    """One line of the table: a bench workload, the setup runs before it, where timing starts."""

    def __init__(self, key, label, bench_args, timed_from=None, setup=None, null=False):
        self.key, self.label, self.timed_from, self.null = key, label, timed_from, null
        self.bench_args = bench_args
        self.setup = setup or (lambda a: [])


def small(a, *extra):
    return ["--object-size", "4KiB", "--count", str(a.count), "--concurrency", str(a.concurrency), *extra]


def large(a, *extra):
    return ["--object-size", "16MiB", "--count", str(a.large_count), "--concurrency", str(a.large_concurrency),
            *extra]


LIST_BUCKET = "ab-list"
ROWS = [
    Row("put-new", "PUT 4 KiB, new keys", lambda a: ["--scenario", "put-small", *small(a)]),
    Row("put-overwrite", "PUT 4 KiB, overwrite 128 keys",
        lambda a: ["--scenario", "put-small", "--keys", "overwrite", "--working-set", "128", *small(a)]),
    Row("get", "GET 4 KiB", lambda a: ["--scenario", "get-small", *small(a)], "ringstore bench: get-small: wrote"),
    Row("list", "LIST 1000-key page, 1 connection",
        lambda a: ["--scenario", "list", "--bucket", LIST_BUCKET, "--pages", str(a.list_pages),
                   "--page-size", "1000", "--concurrency", "1"],
        "ringstore bench: list: bucket has",
        setup=lambda a: [["--scenario", "fill", "--bucket", LIST_BUCKET, "--count", str(a.list_objects),
                          "--object-size", "1KiB", "--concurrency", str(a.concurrency)]]),
    Row("get-warm", "GET 4 KiB, 1000 keys read before",
        lambda a: ["--scenario", "get-small", "--keys", "overwrite", "--working-set", "1000", "--warm-up",
                   *small(a)], "ringstore bench: get-small: warmed up"),
    Row("put-16m", "PUT 16 MiB", lambda a: ["--scenario", "put-small", *large(a)]),
    Row("get-16m", "GET 16 MiB", lambda a: ["--scenario", "get-small", *large(a)], "ringstore bench: get-small: wrote"),
    Row("get-16m-warm", "GET 16 MiB, 32 keys read before",
        lambda a: ["--scenario", "get-small", "--keys", "overwrite", "--working-set", "32", "--warm-up",
                   *large(a)], "ringstore bench: get-small: warmed up"),
    Row("null", "client ceiling: PUT 4 KiB to the null responder",
        lambda a: ["--null", "--scenario", "put-small", *small(a)], null=True),
]


def describe(row, a):
    """The row's label with its connection count and size."""
    if row.key == "list":
        return f"{row.label} ({a.list_objects} objects, {a.list_pages} pages)"
    if row.key.endswith("16m"):
        return f"{row.label} ({a.large_concurrency} connections)"
    return row.label


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="1e5529b",
                    help="commit to compare against (default 1e5529b); `same` runs the working tree's own binary "
                         "as the base, to compare two sets of flags (--base-args vs --new-args)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per binary, alternating (default 3)")
    ap.add_argument("--count", type=int, default=20000, help="operations per small-object run (default 20000)")
    ap.add_argument("--concurrency", type=int, default=32, help="client connections (default 32)")
    ap.add_argument("--fsync", choices=["always", "never"], default="always", help="server --fsync (default always)")
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data", "ab"),
                    help="parent of the servers' data directories (a disk filesystem, not tmpfs)")
    ap.add_argument("--rows", default=",".join(r.key for r in ROWS),
                    help="comma-separated rows to run, of: " + ", ".join(r.key for r in ROWS) + " (default: all)")
    ap.add_argument("--list-objects", type=int, default=10000,
                    help="objects (1 KiB) filled before the list row, untimed (default 10000; the engine "
                         "issue's figure is 1000000)")
    ap.add_argument("--list-pages", type=int, default=100, help="pages the list row requests (default 100)")
    ap.add_argument("--large-count", type=int, default=32, help="operations per 16 MiB run (default 32)")
    ap.add_argument("--new-args", default="",
                    help="extra `serve` flags for the new binary only, e.g. \"--log-level info\" (its stderr "
                         "goes to /dev/null)")
    ap.add_argument("--base-args", default="",
                    help="extra `serve` flags for the base binary only, e.g. \"--metrics off\"")
    ap.add_argument("--large-concurrency", type=int, default=8, help="connections of the 16 MiB rows (default 8)")
    args = ap.parse_args()
    keys = [k for k in args.rows.split(",") if k]
    unknown = [k for k in keys if k not in {r.key for r in ROWS}]
    if unknown or not keys:
        ap.error(f"--rows: unknown {unknown}; choose from {', '.join(r.key for r in ROWS)}")
    args.selected = [r for r in ROWS if r.key in keys]
    return args


def print_table(args, base_sha, results):
    print(f"| workload ({args.concurrency} connections unless said, fsync {args.fsync}) | {base_sha} ops/s | new ops/s "
          f"| new/base | {base_sha} p50 ms | new p50 ms | {base_sha} CPU-us/op | new CPU-us/op |")
    print("|---|---|---|---|---|---|---|---|")
    med = statistics.median
    for row in args.selected:
        n = results[(row.key, "new")]
        n_rate, n_p50 = med(r for r, _, _ in n), med(p for _, p, _ in n)
        if row.null:
            print(f"| {describe(row, args)} | - | {n_rate:.0f} | - | - | {n_p50:.2f} | - | - |")
            continue
        b = results[(row.key, base_sha)]
        b_rate, b_p50 = med(r for r, _, _ in b), med(p for _, p, _ in b)
        b_cpu, n_cpu = med(c for _, _, c in b), med(c for _, _, c in n)
        print(f"| {describe(row, args)} | {b_rate:.0f} | {n_rate:.0f} | {n_rate / b_rate:.2f} | {b_p50:.2f} | "
              f"{n_p50:.2f} | {b_cpu:.1f} | {n_cpu:.1f} |")


def main():
    args = parse_args()
    os.makedirs(args.data, exist_ok=True)
    new_bin = build_new()
    base_sha, base_bin = ("same", new_bin) if args.base == "same" else build_base(args.base)
    binaries = [(base_sha, base_bin), ("new", new_bin)]
    results = {}
    for rnd in range(args.rounds):
        for row in args.selected:
            for name, binary in ([("new", None)] if row.null else binaries):
                extra = (args.new_args if name == "new" else args.base_args).split()
                server = Server(binary, args.data, args.fsync, extra) if binary else None
                try:
                    rate, p50, cpu = measure(new_bin, server, row, args)
                finally:
                    if server:
                        server.stop()
                results.setdefault((row.key, name), []).append((rate, p50, cpu))
                cpu_text = f", {cpu:.1f} server CPU-us/op" if cpu is not None else ""
                log(f"round {rnd + 1} {row.label} {name}: {rate:.0f} ops/s, p50 {p50:.2f} ms{cpu_text}")
    print_table(args, base_sha, results)


if __name__ == "__main__":
    main()
