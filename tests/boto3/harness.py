"""The ringstore server process and boto3 client construction used by the tests (see conftest.py).

With RINGSTORE_TEST_TLS=1 every server the tests start serves HTTPS (a certificate from a test CA
made with `openssl`), and clients verify it against that CA (see conftest.py)."""

import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import boto3
from botocore.client import Config

ACCESS_KEY = 'RSTESTACCESSKEY00001'
SECRET_KEY = 'rsTestSecret/Key+0123456789abcdefghijKLMN'
REGION = 'us-east-1'

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# `http://A`, `https://A`, or `http://A, https://B` (--tls-address); group 1 is A's port.
LISTEN_RE = re.compile(
    r'^ringstore listening on https?://127\.0\.0\.1:(\d+)(?:, https://127\.0\.0\.1:(\d+))? '
    r'\((\d+) cores?, data (.+)\)$'
)

# Whether the whole suite runs over HTTPS, and the CA file clients trust then (set by conftest).
TLS = os.environ.get('RINGSTORE_TEST_TLS') == '1'
_default_ca = None


def set_default_ca(path):
    """Clients made for https endpoints without an explicit `verify` trust this CA file."""
    global _default_ca
    _default_ca = str(path) if path else None


class TlsFiles:
    """A test CA and a server certificate it signed for 127.0.0.1 / localhost (PEM files)."""

    def __init__(self, directory, name='server'):
        openssl = shutil.which('openssl')
        if openssl is None:
            raise RuntimeError('openssl is not installed (needed to make test TLS certificates)')
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.ca, ca_key = d / f'{name}-ca.pem', d / f'{name}-ca.key'
        self.cert, self.key = d / f'{name}-cert.pem', d / f'{name}-key.pem'
        ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
        run = lambda *args: subprocess.run([openssl, *args], check=True, capture_output=True)
        run('req', '-x509', *ec, '-days', '2', '-subj', f'/CN={name} test CA',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
            '-keyout', str(ca_key), '-out', str(self.ca))
        csr, ext = d / f'{name}.csr', d / f'{name}.ext'
        ext.write_text('subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n'
                       'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n')
        run('req', *ec, '-subj', '/CN=127.0.0.1', '-keyout', str(self.key), '-out', str(csr))
        run('x509', '-req', '-in', str(csr), '-CA', str(self.ca), '-CAkey', str(ca_key),
            '-CAcreateserial', '-days', '2', '-extfile', str(ext), '-out', str(self.cert))

    def args(self):
        return ['--tls-cert', str(self.cert), '--tls-key', str(self.key)]


def connect(port, timeout=30, ca=None, rcvbuf=None):
    """A client socket to 127.0.0.1:port (TLS verified against `ca` when given)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(('127.0.0.1', port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ca is None:
        return sock
    ctx = ssl.create_default_context(cafile=str(ca))
    return ctx.wrap_socket(sock, server_hostname='127.0.0.1')


def half_close(sock):
    """Shuts the socket down for writing; for TLS only the TCP side (no close_notify, and the
    TLS session stays usable for reading the server's answer)."""
    socket.socket.shutdown(sock, socket.SHUT_WR)


def make_client(endpoint, kind='default', access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                verify=None):
    """A boto3 S3 client built exactly like the seed guide does (plus the checksum variant)."""
    if kind == 'default':
        config = Config(signature_version='s3v4')
    elif kind == 'when_required':
        config = Config(
            signature_version='s3v4',
            request_checksum_calculation='when_required',
            response_checksum_validation='when_required',
        )
    else:
        raise ValueError(kind)
    return boto3.client(
        's3',
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
        region_name=REGION,
        verify=verify or (_default_ca if endpoint.startswith('https:') else None),
    )


class RingstoreServer:
    """One `ringstore serve` process on an ephemeral loopback port, restartable on its data dir."""

    def __init__(self, binary, data_dir, log_dir, name='server', extra_args=(), env=None,
                 tls=None):
        self.binary = str(binary)
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.name = name
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.tls = tls  # TlsFiles: serve HTTPS on --address
        self.tls_port = None  # the --tls-address listener's port, if any
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.proc = None
        self.port = None
        self.cores = None
        self.printed_data_dir = None
        self.listen_line = None
        self.stdout_lines = []
        self.log_path = None
        self.starts = 0
        self.exit_codes = []
        self._reader = None
        self._clients = {}

    # -- process control ----------------------------------------------------------------------
    @property
    def endpoint(self):
        return f'{"https" if self.tls else "http"}://127.0.0.1:{self.port}'

    def connect(self, timeout=30, rcvbuf=None):
        """A raw client socket to the server (TLS when it serves HTTPS)."""
        return connect(self.port, timeout, self.tls.ca if self.tls else None, rcvbuf)

    @property
    def url(self):
        return self.endpoint

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, 'already running'
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_path = self.log_dir / f'{self.name}-{self.starts}.stderr.log'
        env = dict(os.environ)
        env.update(
            RINGSTORE_ACCESS_KEY=self.access_key,
            RINGSTORE_SECRET_KEY=self.secret_key,
        )
        env.setdefault('RUST_BACKTRACE', '1')
        env.update(self.extra_env)
        cmd = [self.binary, 'serve', '--address', '127.0.0.1:0', '--data', str(self.data_dir)]
        cmd += self.tls.args() if self.tls else []
        cmd += self.extra_args
        self.stdout_lines = []
        self.listen_line = None
        lines = queue.Queue()
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env
            )
        proc = self.proc

        def read_stdout():
            for raw in proc.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\r\n')
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=read_stdout, name=f'{self.name}-stdout', daemon=True)
        self._reader.start()

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort_start()
                raise RuntimeError(
                    f'ringstore did not print its listening line within {START_TIMEOUT:.0f} s '
                    f'(stdout so far: {self.stdout_lines!r}); stderr tail:\n{self.stderr_tail()}'
                )
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = proc.wait()
                self.proc = None
                raise RuntimeError(
                    f'ringstore exited with code {rc} before it was ready '
                    f'(stdout: {self.stdout_lines!r}); stderr tail:\n{self.stderr_tail()}'
                )
            m = LISTEN_RE.match(line)
            if m:
                self.listen_line = line
                self.port = int(m.group(1))
                self.tls_port = int(m.group(2)) if m.group(2) else None
                self.cores = int(m.group(3))
                self.printed_data_dir = m.group(4)
                self._clients = {}
                return self

    def _abort_start(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns the exit code (None if killed)."""
        self._close_clients()
        if self.proc is None:
            return None
        proc = self.proc
        killed = False
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.proc = None
        rc = None if killed else proc.returncode
        self.exit_codes.append(rc)
        return rc

    def kill_and_start(self):
        """SIGKILL (no shutdown work at all), then start again on the same data dir."""
        self.proc.kill()
        self.proc.wait()
        self.stop()
        self.start()

    def restart(self):
        """Stop cleanly (SIGTERM) and start again on the same data dir; the port may change.

        Returns the exit code of the stopped process (0 expected; None if it had to be killed).
        """
        rc = self.stop()
        self.start()
        return rc

    def stderr_tail(self, n=40):
        try:
            text = Path(self.log_path).read_text(errors='replace')
        except OSError:
            return '(no log)'
        return '\n'.join(text.splitlines()[-n:])

    # -- clients ------------------------------------------------------------------------------
    def client(self, kind='default', access_key=None, secret_key=None):
        """A client for the current endpoint (cached per endpoint when using the server's keys)."""
        if access_key is not None or secret_key is not None:
            return make_client(
                self.endpoint, kind, access_key or self.access_key, secret_key or self.secret_key
            )
        key = (kind, self.endpoint)
        if key not in self._clients:
            self._clients[key] = make_client(
                self.endpoint, kind, verify=str(self.tls.ca) if self.tls else None)
        return self._clients[key]

    def _close_clients(self):
        for c in self._clients.values():
            close = getattr(c, 'close', None)
            if close:
                close()
        self._clients = {}
