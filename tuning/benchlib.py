"""Helpers the tuning scripts share: a server's CPU time, starting `ringstore serve`, stopping a
process. Imported by ab-engine.py and peers.py (Python puts the script's directory on sys.path)."""

import os
import re
import signal
import subprocess
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
