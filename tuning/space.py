#!/usr/bin/env python3
"""Disk space under a steady overwrite (or delete) workload: does compaction keep it bounded?

Starts `ringstore serve` on a fresh data directory on 127.0.0.1, then runs `ringstore bench
--endpoint` in steps, each PUTting `--step-count` objects of `--object-size` over a working set
of `--working-set` keys (overwrites: every PUT makes an older version dead). After each step it
prints the operations so far, the bytes the client wrote, `du` of the data directory and of its
log, and the number of segment files. At the end the server is stopped with SIGTERM and its stop
line gives the segments compaction freed and the bytes it copied: write amplification of the log
is (client bytes + copied bytes) / client bytes.

`--base COMMIT` measures that commit's binary too (built in a git worktree under target/ab/, as
tuning/ab-engine.py does), with the same client, back to back.

    tuning/space.py                              # 10 steps of 50,000 x 4 KiB over 128 keys
    tuning/space.py --base 4bb8314 --steps 6
    tuning/space.py --object-size 1KiB --working-set 100000

A measurement tool, never a pass/fail test.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY_TIMEOUT_SECS = 60
STOP_TIMEOUT_SECS = 60


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def build(commit):
    """The release binary of `commit` (None: the working tree)."""
    if commit is None:
        run(["cargo", "build", "--release", "-q"], cwd=REPO)
        return os.path.join(REPO, "target", "release", "ringstore")
    sha = subprocess.run(["git", "rev-parse", "--short", commit], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = os.path.join(REPO, "target", "ab", f"tree-{sha}")
    target = os.path.join(REPO, "target", "ab", f"target-{sha}")
    if not os.path.isdir(tree):
        run(["git", "worktree", "add", "--detach", tree, sha], cwd=REPO)
    run(["cargo", "build", "--release", "-q"], cwd=tree, env={**os.environ, "CARGO_TARGET_DIR": target})
    return os.path.join(target, "release", "ringstore")


def du_kib(path):
    out = subprocess.run(["du", "-sk", path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def start(binary, data):
    log = open(os.path.join(os.path.dirname(data), "server.log"), "w+")
    proc = subprocess.Popen([binary, "serve", "--address", "127.0.0.1:0", "--data", data],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    deadline = time.time() + READY_TIMEOUT_SECS
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"listening on http://(\S+)", line or "")
        if m:
            return proc, log, m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    log.seek(0)
    sys.exit(f"server did not start:\n{log.read()}")


def measure(label, binary, client, a):
    root = tempfile.mkdtemp(prefix="space-", dir=a.data)
    data = os.path.join(root, "data")
    proc, log, addr = start(binary, data)
    size = parse_size(a.object_size)
    print(f"\n{label}: {a.steps} steps of {a.step_count} PUTs of {a.object_size} over {a.working_set} keys")
    print(f"{'PUTs':>10} {'client MiB':>11} {'du data MiB':>12} {'du log MiB':>11} {'segments':>9}")
    for step in range(1, a.steps + 1):
        bench = [client, "bench", "--endpoint", f"http://{addr}", "--keep-data", "--bucket", "space",
                 "--scenario", "put-small", "--keys", "overwrite", "--working-set", str(a.working_set),
                 "--object-size", a.object_size, "--count", str(a.step_count),
                 "--concurrency", str(a.concurrency)]
        run(bench, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(a.settle_secs)  # let compaction catch up
        log_dir = os.path.join(data, "log")
        puts = step * a.step_count
        print(f"{puts:>10} {puts * size / 2**20:>11.0f} {du_kib(data) / 1024:>12.1f} "
              f"{du_kib(log_dir) / 1024:>11.1f} {len(os.listdir(log_dir)):>9}")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=STOP_TIMEOUT_SECS)
    log.seek(0)
    text = log.read()
    m = re.search(r"compaction: (\d+) segments freed, ([\d.]+) MiB copied", text)
    if m:
        client_mib = a.steps * a.step_count * size / 2**20
        copied = float(m.group(2))
        print(f"compaction: {m.group(1)} segments freed, {copied:.1f} MiB copied; log write "
              f"amplification {(client_mib + copied) / client_mib:.3f}")
    else:
        print("no compaction line in the stop log (a build without compaction)")
    shutil.rmtree(root, ignore_errors=True)


def parse_size(text):
    m = re.fullmatch(r"(\d+)\s*(KiB|MiB|)", text)
    if not m:
        sys.exit(f"--object-size {text}: use e.g. 4KiB")
    return int(m.group(1)) * {"": 1, "KiB": 1024, "MiB": 2**20}[m.group(2)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="also measure this commit's binary (built in a worktree)")
    ap.add_argument("--steps", type=int, default=10, help="measurement steps (default 10)")
    ap.add_argument("--step-count", type=int, default=50000, help="PUTs per step (default 50000)")
    ap.add_argument("--object-size", default="4KiB", help="object size (default 4KiB)")
    ap.add_argument("--working-set", type=int, default=128, help="keys overwritten (default 128)")
    ap.add_argument("--concurrency", type=int, default=32, help="client connections (default 32)")
    ap.add_argument("--settle-secs", type=float, default=1.0,
                    help="pause after each step before measuring (default 1)")
    ap.add_argument("--data", default=os.path.join(REPO, "bench-data"),
                    help="parent of the temporary data directories (default bench-data/)")
    a = ap.parse_args()
    os.makedirs(a.data, exist_ok=True)
    client = build(None)
    if a.base:
        measure(f"base {a.base}", build(a.base), client, a)
    measure("working tree", client, client, a)


if __name__ == "__main__":
    main()
