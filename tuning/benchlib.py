"""Helpers the tuning scripts share: a server's CPU time, starting `ringstore serve`, stopping a
process. Imported by ab-engine.py and peers.py (Python puts the script's directory on sys.path)."""

import json
import os
import re
import signal
import shutil
import subprocess
import tempfile
import time

CLOCK_TICKS_PER_SEC = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_SECS = 120
STOP_TIMEOUT_SECS = 30


def cpu_secs(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields after the command: state is [0]; utime and stime are fields 14 and 15 of stat(5).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SEC


def stop_process(proc):
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECS."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_ringstore(cmd, env):
    """Starts `cmd` (a `ringstore serve ...` command line) and waits for its readiness line;
    returns (process, endpoint URL). Stops it and raises if the line never comes."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.time() + READY_TIMEOUT_SECS
    for line in proc.stdout:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return proc, m.group(1)
        if time.time() > deadline:
            break
    stop_process(proc)
    raise RuntimeError(f"{cmd[0]} did not print its readiness line")


def run_bench_json(cmd, env=None, on_line=None):
    """Runs a `ringstore bench --json ...` command line; returns its JSON summary. `on_line` sees
    every stderr line as it arrives (to sample a server's CPU time when the timed phase starts);
    a failure raises with the last lines of stderr."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    tail = []
    for line in proc.stderr:
        tail = (tail + [line])[-10:]
        if on_line:
            on_line(line)
    out = proc.stdout.read()
    proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"bench failed ({proc.returncode}): {' '.join(cmd)}\n{''.join(tail)}")
    return json.loads(out)


class RingstoreServer:
    """`ringstore serve` (`binary`) on a fresh data directory under `parent`, on a free loopback
    port, with `extra` flags and environment `env`; `stop()` ends it and removes the directory."""

    name = "ringstore"

    def __init__(self, binary, parent, extra, env, prefix="ringstore-"):
        self.data = tempfile.mkdtemp(prefix=prefix, dir=parent)
        self.cmd = [binary, "serve", "--address", "127.0.0.1:0", "--data", self.data, *extra]
        try:
            self.proc, self.endpoint = start_ringstore(self.cmd, env)
        except RuntimeError:
            shutil.rmtree(self.data, ignore_errors=True)
            raise

    def stop(self):
        stop_process(self.proc)
        shutil.rmtree(self.data, ignore_errors=True)
