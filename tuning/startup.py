#!/usr/bin/env python3
"""Startup time, disk use and memory per object of ringstore builds with many objects.

For each binary: fills a fresh data directory with `ringstore bench --scenario fill` (keys
fill/0000000000..., body = the key and a space repeated to the object size), or takes an already
filled one (--data-dir, --objects). Then it measures, from the launch of `ringstore serve`:

  GET   time to the first correct GetObject of a random filled key (body checked from the key),
  LIST  time to the first correct ListObjectsV2 first page (the first 1000 keys, in order,
        IsTruncated as it must be); probed right after the GET, so LIST >= GET,

polling the port every millisecond, in these cases:

  sigterm      after a clean stop (SIGTERM), page cache warm
  kill9        after kill -9 of an idle server that had started on the directory, cache warm
  drop-caches  after a clean stop and `sync; echo 3 > /proc/sys/vm/drop_caches` (root only;
               skipped with a message otherwise)

It also reports `du -sk` of the whole data directory after a clean stop divided by the object
count (KiB/object), and the server's VmRSS after the warm start minus the VmRSS of the same
binary on an empty directory, divided by the object count (bytes/key). Prints a markdown table.

A measurement tool, never a pass/fail test; it changes nothing outside its own directories,
except dropping the page cache in the drop-caches case.

    tuning/startup.py --fill 100000 --object-size 4KiB                 # the working tree
    tuning/startup.py --base 1e5529b --fill 1000000 --object-size 1KiB # base vs working tree
    tuning/startup.py --binary ./ringstore --data-dir /srv/filled --objects 1000000
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import importlib.util
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ACCESS_KEY, SECRET_KEY, REGION = "ringstoreadmin", "ringstoresecret", "us-east-1"
BUCKET = "startup"
FILL_KEY_DIGITS = 10
LIST_PAGE_KEYS = 1000
POLL_INTERVAL_SECS = 0.001
PROBE_TIMEOUT_SECS = 5
# What a listening server answers S3 requests with while it still recovers its data directory.
NOT_READY_STATUS = 503
STOP_TIMEOUT_SECS = 120
FILL_DURATION_CAP_SECS = 7 * 24 * 3600
CASES = ["sigterm", "kill9", "drop-caches"]
DROP_CACHES = "/proc/sys/vm/drop_caches"


def log(msg):
    print(f"startup: {msg}", file=sys.stderr, flush=True)


def fill_key(i):
    return f"fill/{i:0{FILL_KEY_DIGITS}d}"


def fill_body(key, size):
    unit = (key + " ").encode()
    return (unit * (size // len(unit) + 1))[:size]


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    units = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "kb": 1000, "mb": 10**6}
    if not m or m.group(2).lower() not in units:
        raise argparse.ArgumentTypeError(f"{text!r}: a byte count such as 1024, 1KiB or 4KiB")
    return int(m.group(1)) * units[m.group(2).lower()]


# ---- a minimal SigV4 client (UNSIGNED-PAYLOAD, GET only) -----------------------------------------

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_get(port, path, query):
    """GET `path` with `query` (a dict) signed with the development keys; (status, body)."""
    host = f"127.0.0.1:{port}"
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")
    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query.items()))
    headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["GET", urllib.parse.quote(path, safe="/-_.~"), canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + SECRET_KEY).encode(), day), REGION), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed}, "
                                f"Signature={signature}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_SECS)
    try:
        conn.request("GET", path + ("?" + canonical_query if query else ""), headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def get_is_correct(port, objects, size, rng):
    key = fill_key(rng.randrange(objects))
    status, body = signed_get(port, f"/{BUCKET}/{key}", {})
    if status == NOT_READY_STATUS:
        return None
    return status == 200 and body == fill_body(key, size)


def list_is_correct(port, objects):
    status, body = signed_get(port, f"/{BUCKET}", {"list-type": "2", "max-keys": str(LIST_PAGE_KEYS)})
    if status == NOT_READY_STATUS:
        return None
    if status != 200:
        return False
    text = body.decode("utf-8", "replace")
    keys = re.findall(r"<Key>([^<]*)</Key>", text)
    want = [fill_key(i) for i in range(min(objects, LIST_PAGE_KEYS))]
    truncated = re.search(r"<IsTruncated>(true|false)</IsTruncated>", text)
    return keys == want and truncated is not None and (truncated.group(1) == "true") == (objects > LIST_PAGE_KEYS)


# ---- the server -------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(binary, data, port, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSTORE_")}
    with open(log_path, "a") as err:
        return subprocess.Popen([binary, "serve", "--address", f"127.0.0.1:{port}", "--data", data,
                                 "--fsync", "always"], stdout=subprocess.DEVNULL, stderr=err, env=env)


def probe(proc, port, check, timeout):
    """Polls `check()` until it is true; wrong answers seen (`check()` returns None for "still
    recovering": the server listens before recovery and answers 503 until it is done)."""
    wrong = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} while starting")
        try:
            ok = check()
            if ok:
                return wrong
            if ok is not None:
                wrong += 1
        except (ConnectionError, OSError, http.client.HTTPException):
            pass
        time.sleep(POLL_INTERVAL_SECS)
    raise RuntimeError(f"no correct answer within {timeout} s")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) * 1024


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if sig == signal.SIGTERM and proc.returncode != 0:
        raise RuntimeError(f"the server exited with {proc.returncode} after SIGTERM")


def timed_start(binary, data, objects, size, args, rng):
    """Launches the server on `data`; (GET s, LIST s, RSS bytes, running process)."""
    port = free_port()
    t0 = time.monotonic()
    proc = launch(binary, data, port, os.path.join(args.work, "server.log"))
    try:
        wrong = probe(proc, port, lambda: get_is_correct(port, objects, size, rng), args.timeout)
        t_get = time.monotonic() - t0
        wrong += probe(proc, port, lambda: list_is_correct(port, objects), args.timeout)
        t_list = time.monotonic() - t0
    except BaseException:
        stop(proc, signal.SIGKILL)
        raise
    if wrong:
        log(f"{wrong} wrong answers (not 200 with the right content) before the first correct ones")
    return t_get, t_list, rss_bytes(proc.pid), proc


def baseline_rss(binary, args):
    """VmRSS of `binary` serving an empty directory, after one answered request."""
    data = tempfile.mkdtemp(prefix="empty-", dir=args.work)
    port = free_port()
    proc = launch(binary, data, port, os.path.join(args.work, "server.log"))
    try:
        probe(proc, port, lambda: signed_get(port, "/", {})[0] == 200, args.timeout)
        return rss_bytes(proc.pid)
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)


def fill(binary, bench, label, objects, args):
    """A fresh data directory holding `objects` objects written by `bench --scenario fill`."""
    data = tempfile.mkdtemp(prefix=f"filled-{label}-", dir=args.work)
    port = free_port()
    proc = launch(binary, data, port, os.path.join(args.work, "server.log"))
    try:
        probe(proc, port, lambda: signed_get(port, "/", {})[0] == 200, args.timeout)
        cmd = [bench, "bench", "--endpoint", f"http://127.0.0.1:{port}", "--scenario", "fill", "--bucket", BUCKET,
               "--count", str(objects), "--object-size", str(args.object_size), "--concurrency",
               str(args.fill_concurrency), "--duration-secs", str(FILL_DURATION_CAP_SECS)]
        log(f"{label}: filling {data}: {' '.join(cmd)}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSTORE_")}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0 or f"fill: {objects} ops in " not in out.stdout:
            raise RuntimeError(f"fill failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        log(f"{label}: {out.stdout.strip()}")
    except BaseException:
        stop(proc, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
        raise
    stop(proc)
    return data


def du_kib(path):
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout.split()[0])


def run_case(case, binary, data, objects, args, rng):
    """One measurement of `case`: (GET s, LIST s, RSS bytes), or None when it cannot run here."""
    if case == "kill9":
        _, _, _, proc = timed_start(binary, data, objects, args.object_size, args, rng)
        stop(proc, signal.SIGKILL)
    elif case == "drop-caches":
        if os.geteuid() != 0 or not os.access(DROP_CACHES, os.W_OK):
            log("drop-caches: skipped (needs root to write /proc/sys/vm/drop_caches)")
            return None
        subprocess.run(["sync"], check=True)
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
    t_get, t_list, rss, proc = timed_start(binary, data, objects, args.object_size, args, rng)
    stop(proc)
    return t_get, t_list, rss


def measure_binary(label, binary, bench, objects, args):
    """Every case on one binary with `objects` objects; a dict of the table's cells."""
    rng = random.Random(args.seed)
    base_rss = baseline_rss(binary, args)
    data = fill(binary, bench, label, objects, args) if args.fill else args.data_dir
    try:
        # A first clean start and stop, so every case starts from a directory this binary has
        # opened and closed cleanly (and the warm case from a warm cache).
        _, _, _, proc = timed_start(binary, data, objects, args.object_size, args, rng)
        stop(proc)
        row = {"label": label, "objects": objects, "du": du_kib(data) / objects}
        rss = []
        for case in args.cases:
            runs = [run_case(case, binary, data, objects, args, rng) for _ in range(args.repeat)]
            if None in runs:
                row[case] = None
                continue
            row[case] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
            rss += [r[2] for r in runs]
            log(f"{label} {case}: GET {row[case][0]:.3f} s, LIST {row[case][1]:.3f} s")
        row["rss"] = (statistics.median(rss) - base_rss) / objects if rss else None
    finally:
        if args.fill and not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        elif args.fill:
            log(f"{label}: kept {data}")
    return row


def print_table(rows, args):
    heads = []
    for case in args.cases:
        heads += [f"GET after {case} s", f"LIST after {case} s"]
    print(f"| binary | objects ({args.object_size} B) | " + " | ".join(heads) + " | du KiB/object | RSS bytes/key |")
    print("|---" * (len(heads) + 4) + "|")
    for r in rows:
        cells = []
        for case in args.cases:
            cells += ["skipped", "skipped"] if r[case] is None else [f"{r[case][0]:.3f}", f"{r[case][1]:.3f}"]
        rss = "-" if r["rss"] is None else f"{r['rss']:.0f}"
        print(f"| {r['label']} | {r['objects']} | " + " | ".join(cells) + f" | {r['du']:.2f} | {rss} |")
    print_growth(rows, args)


def print_growth(rows, args):
    """Per binary measured at two or more object counts: seconds added per million objects,
    from the smallest count to the largest."""
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["objects"])
        lo, hi = mine[0], mine[-1]
        if hi["objects"] == lo["objects"]:
            continue
        per_million = 1e6 / (hi["objects"] - lo["objects"])
        parts = [f"{case}: GET {(hi[case][0] - lo[case][0]) * per_million:+.3f} s, "
                 f"LIST {(hi[case][1] - lo[case][1]) * per_million:+.3f} s"
                 for case in args.cases if lo[case] is not None and hi[case] is not None]
        print(f"\ngrowth per million objects, {label} ({lo['objects']} to {hi['objects']}): " + "; ".join(parts))


def load_ab_engine():
    """tuning/ab-engine.py as a module, for its build functions."""
    spec = importlib.util.spec_from_file_location("ab_engine", os.path.join(HERE, "ab-engine.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", default=[], metavar="PATH",
                    help="ringstore binary to measure (repeatable). Default: the working tree's release build "
                         "(cargo build --release)")
    ap.add_argument("--base", metavar="COMMIT",
                    help="also measure COMMIT, built as tuning/ab-engine.py builds it (needs --fill)")
    ap.add_argument("--bench", metavar="PATH", help="ringstore binary whose `bench` fills (default: the last binary)")
    ap.add_argument("--fill", metavar="N[,N...]",
                    help="fill a fresh directory per binary with N objects first; several counts measure each "
                         "and print the growth per million objects")
    ap.add_argument("--object-size", type=parse_size, default=parse_size("4KiB"),
                    help="object size of the fill, and of the filled objects checked (default 4KiB)")
    ap.add_argument("--fill-concurrency", type=int, default=64, help="connections of the fill (default 64)")
    ap.add_argument("--data-dir", help="an already filled data directory (with --objects; one binary only)")
    ap.add_argument("--objects", type=int, help="objects in --data-dir's bucket 'startup', named as fill names them")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated cases, of {', '.join(CASES)} "
                                                              "(default: all)")
    ap.add_argument("--repeat", type=int, default=1, help="measurements per case; medians are shown (default 1)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for a correct answer (default 600)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random keys read (default 1)")
    ap.add_argument("--work", default=os.path.join(REPO, "bench-data", "startup"),
                    help="parent of the fresh data directories and server.log (a disk filesystem, not tmpfs)")
    ap.add_argument("--keep", action="store_true", help="keep the filled data directories")
    args = ap.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    if not args.cases or any(c not in CASES for c in args.cases):
        ap.error(f"--cases: choose from {', '.join(CASES)}")
    if bool(args.fill) == bool(args.data_dir):
        ap.error("give either --fill N or --data-dir DIR with --objects N")
    if args.data_dir and (not args.objects or args.base or len(args.binary) > 1):
        ap.error("--data-dir needs --objects and exactly one binary (a directory belongs to one build)")
    try:
        args.counts = [int(n) for n in args.fill.split(",")] if args.fill else [args.objects]
    except ValueError:
        ap.error("--fill: object counts such as 100000 or 100000,1000000")
    if any(n < 1 for n in args.counts):
        ap.error("object counts must be at least 1")
    return args


def main():
    args = parse_args()
    os.makedirs(args.work, exist_ok=True)
    binaries = [(os.path.basename(b), b) for b in args.binary]
    if args.base or not binaries:
        ab = load_ab_engine()
        if args.base:
            binaries.insert(0, ab.build_base(args.base))
        if not args.binary:
            binaries.append(("new", ab.build_new()))
    bench = args.bench or binaries[-1][1]
    rows = [measure_binary(label, binary, bench, n, args) for label, binary in binaries for n in args.counts]
    print_table(rows, args)


if __name__ == "__main__":
    main()
