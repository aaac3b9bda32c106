#!/usr/bin/env python3
"""HTTPS vs plain HTTP throughput of one ringstore for 16 MiB PUTs and GETs (issue 11).

One server listens on both (`--tls-address`: plain HTTP on --address, HTTPS beside it, with a
self-made test CA's certificate), so both protocols hit the same storage. The load is curl
(`--parallel`, OpenSSL on the client side) with presigned URLs made by boto3 (so the client does no
signing work per request): each round PUTs OBJECTS objects of 16 MiB, then GETs them back (the GETs
are served from the read cache: this measures the network and TLS path, not the disk), once over
HTTP and once over HTTPS, alternating which goes first. Prints MiB/s per round, the medians, the
HTTPS/HTTP ratio, and the CPU seconds per GiB moved of the server and of curl.

Run with the test venv (it has boto3):  target/pyenv/bin/python tuning/tls-throughput.py
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
from botocore.client import Config

from benchlib import cpu_secs, stop_process

MIB = 1024 * 1024
OBJECT_BYTES = 16 * MIB
ACCESS, SECRET = "tlsbenchaccess", "tlsbenchsecret/0123456789"
LISTEN_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+), https://127\.0\.0\.1:(\d+) ")


def make_cert(d):
    """A CA and a server certificate for 127.0.0.1 it signed; returns (ca, cert, key) paths."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", *ec, "-days", "1", "-subj", "/CN=bench CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
    Path(f"{d}/ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/key.pem", "-out", f"{d}/csr")
    run("x509", "-req", "-in", f"{d}/csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", f"{d}/ext", "-out", f"{d}/cert.pem")
    return f"{d}/ca.pem", f"{d}/cert.pem", f"{d}/key.pem"


def start_server(binary, data, cert, key, extra):
    env = dict(os.environ, RINGSTORE_ACCESS_KEY=ACCESS, RINGSTORE_SECRET_KEY=SECRET)
    cmd = [binary, "serve", "--address", "127.0.0.1:0", "--data", data, "--tls-cert", cert,
           "--tls-key", key, "--tls-address", "127.0.0.1:0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    for line in proc.stdout:
        m = LISTEN_RE.search(line)
        if m:
            return proc, int(m.group(1)), int(m.group(2))
    stop_process(proc)
    raise RuntimeError("ringstore did not print its readiness line")


def curl_parallel(entries, ca, parallel):
    """Runs curl over `entries` (config lines per transfer); returns the wall seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".curl") as cfg:
        cfg.write("".join(entries))
        cfg.flush()
        t0 = time.perf_counter()
        p = subprocess.run(["curl", "--parallel", "--parallel-max", str(parallel), "--cacert", ca,
                            "-sS", "--fail", "-K", cfg.name], capture_output=True, text=True)
        secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"curl failed: {p.stderr[-2000:]}")
    return secs


def children_cpu_secs():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_pass(s3, bucket, src, ca, objects, parallel, server_pid):
    """PUT then GET `objects` objects; returns (put MiB/s, get MiB/s, server and curl CPU s per
    GiB)."""
    keys = [f"obj-{i}" for i in range(objects)]
    put = [f'url = "{s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": k}, ExpiresIn=3600)}"\n'
           f'upload-file = "{src}"\nheader = "Expect:"\noutput = "/dev/null"\n' for k in keys]
    get = [f'url = "{s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": k}, ExpiresIn=3600)}"\n'
           'output = "/dev/null"\n' for k in keys]
    mib = objects * OBJECT_BYTES / MIB
    cpu0, curl0 = cpu_secs(server_pid), children_cpu_secs()
    put_s = curl_parallel(put, ca, parallel)
    get_s = curl_parallel(get, ca, parallel)
    gib = 2 * mib / 1024
    cpu, curl = cpu_secs(server_pid) - cpu0, children_cpu_secs() - curl0
    return mib / put_s, mib / get_s, cpu / gib, curl / gib


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default="target/release/ringstore")
    ap.add_argument("--data-parent", default="target/bench-data", help="a real disk (O_DIRECT)")
    ap.add_argument("--objects", type=int, default=32, help="16 MiB objects per pass")
    ap.add_argument("--parallel", type=int, default=4, help="concurrent curl transfers")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--server-arg", action="append", default=[], help="extra `serve` flag")
    args = ap.parse_args()
    Path(args.data_parent).mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tls-throughput-", dir=args.data_parent)
    try:
        ca, cert, key = make_cert(work)
        src = Path(work) / "object.bin"
        src.write_bytes(os.urandom(OBJECT_BYTES))
        proc, http_port, https_port = start_server(args.binary, f"{work}/data", cert, key,
                                                   args.server_arg)
        try:
            clients = {}
            for proto, port in (("http", http_port), ("https", https_port)):
                clients[proto] = boto3.client(
                    "s3", endpoint_url=f"{proto}://127.0.0.1:{port}", aws_access_key_id=ACCESS,
                    aws_secret_access_key=SECRET, region_name="us-east-1", verify=ca,
                    config=Config(signature_version="s3v4"))
                clients[proto].create_bucket(Bucket=f"bench-{proto}")
            results = {"http": [], "https": []}
            for r in range(args.rounds):
                order = ("http", "https") if r % 2 == 0 else ("https", "http")
                for proto in order:
                    res = one_pass(clients[proto], f"bench-{proto}", src, ca, args.objects,
                                   args.parallel, proc.pid)
                    results[proto].append(res)
                    print(f"round {r + 1} {proto:5}: PUT {res[0]:7.1f} MiB/s  GET {res[1]:7.1f} "
                          f"MiB/s  CPU s/GiB: server {res[2]:.2f}, curl {res[3]:.2f}", flush=True)
        finally:
            stop_process(proc)
        med = {p: [statistics.median(x[i] for x in v) for i in range(4)]
               for p, v in results.items()}
        print(f"\n{args.objects} x 16 MiB per pass, {args.parallel} parallel curl transfers, "
              f"median of {args.rounds} rounds")
        print("| | PUT MiB/s | GET MiB/s | server CPU s/GiB | curl CPU s/GiB |\n|---|---|---|---|---|")
        for p in ("http", "https"):
            print(f"| {p} | {med[p][0]:.0f} | {med[p][1]:.0f} | {med[p][2]:.2f} | {med[p][3]:.2f} |")
        ratios = " | ".join(f"{med['https'][i] / med['http'][i]:.2f}" for i in range(4))
        print(f"| https/http | {ratios} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
