"""Fixtures for the boto3 client tests: a real `ringstore serve` process and boto3 clients.

The server binary is not built here. `tests/run` builds it; otherwise set RINGSTORE_BIN or run
`cargo build --release` first. Data lives under the repository's target/test-data/ (a real disk:
ringstore uses O_DIRECT, which tmpfs does not honour). It is removed after a fully passing session
and kept (path printed) when something failed, or always with RINGSTORE_KEEP_TEST_DATA=1.

RINGSTORE_TEST_TLS=1 runs the suite over HTTPS: every server gets a certificate from a test CA
(`tls_files`); boto3 clients verify it with `verify=<CA file>`, `requests` and curl through
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, raw sockets through `server.connect()`.
"""

import os
import shutil
import time
import uuid
import warnings
from pathlib import Path

import pytest

import harness
from harness import RingstoreServer, TlsFiles
from s3util import empty_and_delete_bucket, unique_bucket_name

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- Keep the tests hermetic: no user AWS configuration, no proxies for loopback. -------------
for _name in list(os.environ):
    if _name.startswith('AWS_'):
        del os.environ[_name]
os.environ['AWS_CONFIG_FILE'] = os.devnull
os.environ['AWS_SHARED_CREDENTIALS_FILE'] = os.devnull
for _name in ('NO_PROXY', 'no_proxy'):
    _cur = os.environ.get(_name, '')
    os.environ[_name] = ','.join(x for x in (_cur, '127.0.0.1', 'localhost') if x)


# ---------------------------------------------------------------------------------------------
# Stop early when the server hangs: after MAX_TIMEOUTS tests hit the pytest-timeout limit the
# rest would most likely time out too, which would take far too long.

MAX_TIMEOUTS = 3
_timed_out = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.excinfo is not None and str(call.excinfo.value).startswith('Timeout'):
        _timed_out.append(item.nodeid)
        if len(_timed_out) >= MAX_TIMEOUTS:
            item.session.shouldstop = (
                f'{len(_timed_out)} tests timed out ({", ".join(_timed_out)}); the server seems '
                'to hang, stopping the session'
            )


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


# The CA file variables `requests` and `curl` read.
CA_BUNDLE_VARS = ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE')


@pytest.fixture(scope='session')
def tls_files(test_root):
    """With RINGSTORE_TEST_TLS=1, the certificate every server serves (else None)."""
    if not harness.TLS:
        yield None
        return
    files = TlsFiles(test_root / 'tls', 'suite')
    harness.set_default_ca(files.ca)
    with pytest.MonkeyPatch.context() as env:
        for name in CA_BUNDLE_VARS:
            env.setenv(name, str(files.ca))
        yield files
    harness.set_default_ca(None)


@pytest.fixture(scope='session')
def server(ringstore_bin, test_root, tls_files):
    srv = RingstoreServer(ringstore_bin, test_root / 'data', test_root / 'logs', name='session',
                          tls=tls_files)
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv
    rc = srv.stop()
    if rc != 0:
        warnings.warn(f'session ringstore server exit code after SIGTERM: {rc!r} (expected 0)')


@pytest.fixture
def make_server(ringstore_bin, test_root, tls_files):
    """Factory for extra, private servers (own data dir); all are stopped at the end of the test.

    They serve HTTPS in a TLS run unless `tls` says otherwise (False: plain; TlsFiles: these)."""
    servers = []

    def factory(extra_args=(), data_dir=None, start=True, tls=None, env=None):
        n = len(servers) + 1
        name = f'private-{uuid.uuid4().hex[:8]}-{n}'
        srv = RingstoreServer(
            ringstore_bin,
            data_dir or test_root / name / 'data',
            test_root / name,
            name=name,
            extra_args=extra_args,
            tls=tls_files if tls is None else (tls or None),
            env=env,
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
