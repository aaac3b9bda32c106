"""Fixtures for the boto3 client tests: a real `ringstore serve` process and boto3 clients.

The server binary is not built here. `tests/run` builds it; otherwise set RINGSTORE_BIN or run
`cargo build --release` first. Data lives under the repository's target/test-data/ (a real disk:
ringstore uses O_DIRECT, which tmpfs does not honour). It is removed after a fully passing session
and kept (path printed) when something failed, or always with RINGSTORE_KEEP_TEST_DATA=1.
"""

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
import warnings
from pathlib import Path

import boto3
import pytest
from botocore.client import Config

from s3util import empty_and_delete_bucket, unique_bucket_name

REPO_ROOT = Path(__file__).resolve().parents[2]

ACCESS_KEY = 'RSTESTACCESSKEY00001'
SECRET_KEY = 'rsTestSecret/Key+0123456789abcdefghijKLMN'
REGION = 'us-east-1'

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

LISTEN_RE = re.compile(
    r'^ringstore listening on http://127\.0\.0\.1:(\d+) \((\d+) cores?, data (.+)\)$'
)

# --- Keep the tests hermetic: no user AWS configuration, no proxies for loopback. -------------
for _name in list(os.environ):
    if _name.startswith('AWS_'):
        del os.environ[_name]
os.environ['AWS_CONFIG_FILE'] = os.devnull
os.environ['AWS_SHARED_CREDENTIALS_FILE'] = os.devnull
for _name in ('NO_PROXY', 'no_proxy'):
    _cur = os.environ.get(_name, '')
    os.environ[_name] = ','.join(x for x in (_cur, '127.0.0.1', 'localhost') if x)


def make_client(endpoint, kind='default', access_key=ACCESS_KEY, secret_key=SECRET_KEY):
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
    )


class RingstoreServer:
    """One `ringstore serve` process on an ephemeral loopback port, restartable on its data dir."""

    def __init__(self, binary, data_dir, log_dir, name='server', extra_args=(), env=None):
        self.binary = str(binary)
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.name = name
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
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
        return f'http://127.0.0.1:{self.port}'

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
                self.cores = int(m.group(2))
                self.printed_data_dir = m.group(3)
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
            self._clients[key] = make_client(self.endpoint, kind)
        return self._clients[key]

    def _close_clients(self):
        for c in self._clients.values():
            close = getattr(c, 'close', None)
            if close:
                close()
        self._clients = {}


# ---------------------------------------------------------------------------------------------
# Session fixtures


@pytest.fixture(scope='session')
def ringstore_bin():
    path = Path(os.environ.get('RINGSTORE_BIN') or REPO_ROOT / 'target' / 'release' / 'ringstore')
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f'ringstore binary not found at {path}: run `cargo build --release` '
            '(tests/run does) or set RINGSTORE_BIN',
            pytrace=False,
        )
    return path


@pytest.fixture(scope='session')
def test_root(request):
    """Per-session directory under target/test-data/ (on disk, not tmpfs)."""
    base = Path(os.environ.get('RINGSTORE_TEST_DATA') or REPO_ROOT / 'target' / 'test-data')
    root = base / f'run-{time.strftime("%Y%m%d-%H%M%S")}-{uuid.uuid4().hex[:8]}'
    root.mkdir(parents=True)
    yield root
    keep = os.environ.get('RINGSTORE_KEEP_TEST_DATA') or request.session.testsfailed
    if keep:
        print(f'\nringstore test data and server logs kept in {root}')
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope='session')
def server(ringstore_bin, test_root):
    srv = RingstoreServer(ringstore_bin, test_root / 'data', test_root / 'logs', name='session')
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv
    rc = srv.stop()
    if rc != 0:
        warnings.warn(f'session ringstore server exit code after SIGTERM: {rc!r} (expected 0)')


@pytest.fixture
def make_server(ringstore_bin, test_root):
    """Factory for extra, private servers (own data dir); all are stopped at the end of the test."""
    servers = []

    def factory(extra_args=(), data_dir=None, start=True):
        n = len(servers) + 1
        name = f'private-{uuid.uuid4().hex[:8]}-{n}'
        srv = RingstoreServer(
            ringstore_bin,
            data_dir or test_root / name / 'data',
            test_root / name,
            name=name,
            extra_args=extra_args,
        )
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield factory
    for srv in servers:
        srv.stop()


@pytest.fixture(autouse=True)
def _server_crash_guard(request):
    """If the shared server died during a test, fail that test and restart it for the rest."""
    yield
    if 'server' not in request.fixturenames:
        return
    srv = request.getfixturevalue('server')
    if srv.proc is not None and srv.proc.poll() is not None:
        rc = srv.proc.returncode
        tail = srv.stderr_tail()
        srv.proc = None
        srv._clients = {}
        srv.start()
        pytest.fail(
            f'the ringstore server died during this test (exit code {rc}); it was restarted on '
            f'the same data dir. stderr tail:\n{tail}',
            pytrace=False,
        )


# ---------------------------------------------------------------------------------------------
# Clients


@pytest.fixture
def s3(server):
    """boto3 client exactly as the seed guide builds it (current boto3 defaults: CRC32 checksums)."""
    return server.client('default')


@pytest.fixture
def s3_when_required(server):
    """Same, with request/response checksums only when an operation requires them."""
    return server.client('when_required')


CLIENT_KINDS = ['default', 'when_required']


@pytest.fixture(params=CLIENT_KINDS)
def client(request, server):
    """Parametrised over both client configurations."""
    return server.client(request.param)


# ---------------------------------------------------------------------------------------------
# Buckets


@pytest.fixture
def bucket_factory(server):
    """Create uniquely named buckets; all are emptied and deleted afterwards."""
    names = []

    def factory(name=None, **kwargs):
        name = name or unique_bucket_name()
        server.client().create_bucket(Bucket=name, **kwargs)
        names.append(name)
        return name

    yield factory
    for name in names:
        if server.alive():
            empty_and_delete_bucket(server.client(), name)


@pytest.fixture
def bucket(bucket_factory):
    """A fresh, uniquely named bucket (deleted with its objects afterwards)."""
    return bucket_factory()
