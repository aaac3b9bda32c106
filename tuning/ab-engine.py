#!/usr/bin/env python3
"""A/B of two ringstore builds under the same load generator, back to back.

Builds BASE (default 1e5529b, the last commit before the storage engine work) in a git worktree
under target/ab/, builds the working tree's binary, then for each round and each binary: starts
`ringstore serve` on a fresh data directory on 127.0.0.1, drives it with the *working tree's*
`ringstore bench --endpoint` (the same client for both), and reads the server's CPU time from
/proc/PID/stat around the timed phase. Prints ops/s and server CPU-us per operation side by side,
with the new/base ratio of medians over the rounds.

Absolute numbers on a shared 2-core VM mean little; the ratios from one run are the result.
This is a measurement tool, never a pass/fail test.

    tuning/ab-engine.py                      # 1e5529b vs the working tree, 3 rounds
    tuning/ab-engine.py --rounds 5 --count 50000 --base HEAD~3
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOCK_TICKS_PER_SEC = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_SECS = 120
STOP_TIMEOUT_SECS = 30


def log(msg):
    print(f"ab-engine: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log(" ".join(cmd))
    subprocess.run(cmd, check=True, cwd=kw.pop("cwd", REPO), **kw)


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


def cpu_secs(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields after the command: state is [0]; utime and stime are fields 14 and 15 of stat(5).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SEC


class Server:
    """`ringstore serve` on a fresh data directory under `parent`, on a free loopback port."""

    def __init__(self, binary, parent, fsync):
        self.data = tempfile.mkdtemp(prefix="ab-", dir=parent)
        self.proc = subprocess.Popen(
            [binary, "serve", "--address", "127.0.0.1:0", "--data", self.data, "--fsync", fsync],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("RINGSTORE_")})
        deadline = time.time() + READY_TIMEOUT_SECS
        for line in self.proc.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.endpoint = m.group(1)
                return
            if time.time() > deadline:
                break
        self.stop()
        raise RuntimeError(f"{binary} did not print its readiness line")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


def measure(bench, server, scenario_args, timed_from):
    """Runs one bench scenario against `server`; returns (ops/s, server CPU-us per op).

    Server CPU is sampled when the bench prints a line starting with `timed_from` (the timed
    phase begins; None = at launch) and when the bench exits.
    """
    # --keep-data: the bench would otherwise delete every object it wrote before exiting, and
    # that work would count as the workload's (the server's directory is removed anyway).
    cmd = [bench, "bench", "--endpoint", server.endpoint, "--json", "--keep-data", *scenario_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = cpu_secs(server.proc.pid) if timed_from is None else None
    for line in proc.stderr:
        if start is None and line.startswith(timed_from):
            start = cpu_secs(server.proc.pid)
    out = proc.stdout.read()
    proc.wait()
    end = cpu_secs(server.proc.pid)
    if proc.returncode != 0 or start is None:
        raise RuntimeError(f"bench failed ({proc.returncode}): {' '.join(cmd)}")
    scenarios = re.findall(r'"name":"([^"]+)","ops":(\d+),.*?"ops_per_sec":([\d.]+)', out)
    name, ops, rate = scenarios[-1]
    return float(rate), (end - start) * 1e6 / max(int(ops), 1)


WORKLOADS = [
    # (label, bench arguments, line that starts the timed phase)
    ("PUT 4 KiB, new keys", ["--scenario", "put-small", "--object-size", "4KiB"], None),
    ("GET 4 KiB", ["--scenario", "get-small", "--object-size", "4KiB"], "ringstore bench: get-small: wrote"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="1e5529b", help="commit to compare against (default 1e5529b)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per binary, alternating (default 3)")
    ap.add_argument("--count", type=int, default=20000, help="operations per small-object run (default 20000)")
    ap.add_argument("--concurrency", type=int, default=32, help="client connections (default 32)")
    ap.add_argument("--fsync", choices=["always", "never"], default="always", help="server --fsync (default always)")
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data", "ab"),
                    help="parent of the servers' data directories (a disk filesystem, not tmpfs)")
    args = ap.parse_args()
    os.makedirs(args.data, exist_ok=True)
    base_sha, base_bin = build_base(args.base)
    new_bin = build_new()
    binaries = [(base_sha, base_bin), ("new", new_bin)]
    results = {}
    for rnd in range(args.rounds):
        for label, wl_args, timed_from in WORKLOADS:
            for name, binary in binaries:
                server = Server(binary, args.data, args.fsync)
                try:
                    scenario = [*wl_args, "--count", str(args.count), "--concurrency", str(args.concurrency)]
                    rate, cpu = measure(new_bin, server, scenario, timed_from)
                finally:
                    server.stop()
                results.setdefault((label, name), []).append((rate, cpu))
                log(f"round {rnd + 1} {label} {name}: {rate:.0f} ops/s, {cpu:.1f} server CPU-us/op")
    print(f"| workload ({args.concurrency} connections, fsync {args.fsync}) | {base_sha} ops/s | new ops/s | new/base | "
          f"{base_sha} CPU-us/op | new CPU-us/op |")
    print("|---|---|---|---|---|---|")
    for label, _, _ in WORKLOADS:
        b = results[(label, base_sha)]
        n = results[(label, "new")]
        b_rate, n_rate = statistics.median(r for r, _ in b), statistics.median(r for r, _ in n)
        b_cpu, n_cpu = statistics.median(c for _, c in b), statistics.median(c for _, c in n)
        print(f"| {label} | {b_rate:.0f} | {n_rate:.0f} | {n_rate / b_rate:.2f} | {b_cpu:.1f} | {n_cpu:.1f} |")


if __name__ == "__main__":
    main()
