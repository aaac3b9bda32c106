"""TLS itself: HTTPS on --address, both listeners with --tls-address, ALPN, certificate reload on
SIGHUP, and clear startup errors for unusable certificate or key files. Certificates come from
test CAs made with `openssl` (harness.TlsFiles); every test runs its own server."""

import hashlib
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests

from harness import LISTEN_RE, TlsFiles, make_client
from s3util import raises_s3

RELOAD_WAIT_S = 10.0  # bound on waiting for the reload's log line (not a pass/fail threshold)


def served_cert_sha256(port):
    """SHA-256 of the certificate the server at `port` presents (no verification)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname='127.0.0.1') as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def file_cert_sha256(path):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


@pytest.fixture(scope='module')
def certs(test_root):
    """Two independent CA + certificate sets."""
    d = test_root / 'tls-tests'
    return TlsFiles(d, 'first'), TlsFiles(d, 'second')


def _round_trip(s3, bucket):
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key='k', Body=b'v' * 70_000)
    assert s3.get_object(Bucket=bucket, Key='k')['Body'].read() == b'v' * 70_000


def test_https_on_address_speaks_only_tls(make_server, certs):
    first, _ = certs
    srv = make_server(tls=first)
    assert LISTEN_RE.match(srv.listen_line) and srv.listen_line.startswith(
        f'ringstore listening on https://127.0.0.1:{srv.port} ('), srv.listen_line
    assert srv.tls_port is None
    _round_trip(make_client(srv.endpoint, verify=str(first.ca)), 'tls-only')
    # ALPN: http/1.1 is chosen when a client offers h2 first.
    ctx = ssl.create_default_context(cafile=str(first.ca))
    ctx.set_alpn_protocols(['h2', 'http/1.1'])
    with socket.create_connection(('127.0.0.1', srv.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname='127.0.0.1') as tls:
            assert tls.selected_alpn_protocol() == 'http/1.1'
    # Plain HTTP gets no HTTP answer; a client trusting another CA refuses the certificate.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f'http://127.0.0.1:{srv.port}/', timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.endpoint + '/', verify=str(certs[1].ca), timeout=10)
    assert srv.stop() == 0


def test_tls_address_adds_https_beside_plain_http(make_server, certs):
    first, _ = certs
    srv = make_server(tls=False, extra_args=first.args() + ['--tls-address', '127.0.0.1:0'])
    assert srv.listen_line.startswith(
        f'ringstore listening on http://127.0.0.1:{srv.port}, https://127.0.0.1:{srv.tls_port} ('
    ), srv.listen_line
    plain = make_client(f'http://127.0.0.1:{srv.port}')
    https = make_client(f'https://127.0.0.1:{srv.tls_port}', verify=str(first.ca))
    _round_trip(plain, 'dual')
    assert https.get_object(Bucket='dual', Key='k')['Body'].read() == b'v' * 70_000
    https.put_object(Bucket='dual', Key='t', Body=b'over tls')
    assert plain.get_object(Bucket='dual', Key='t')['Body'].read() == b'over tls'
    # Each listener speaks only its own protocol.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f'https://127.0.0.1:{srv.port}/', verify=str(first.ca), timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f'http://127.0.0.1:{srv.tls_port}/', timeout=10)
    assert srv.stop() == 0


def _wait_for_log(srv, text, count):
    """Waits (bounded) until `text` appears `count` times in the server's stderr."""
    deadline = time.monotonic() + RELOAD_WAIT_S
    while srv.log_path.read_text(errors='replace').count(text) < count:
        assert time.monotonic() < deadline, f'no {text!r} in the log:\n{srv.stderr_tail()}'
        time.sleep(0.05)


def test_sighup_reloads_the_certificate_and_keeps_it_on_error(make_server, certs, tmp_path):
    first, second = certs
    live = TlsFiles.__new__(TlsFiles)  # the files the server reads, replaced under it
    live.cert, live.key, live.ca = tmp_path / 'cert.pem', tmp_path / 'key.pem', first.ca
    shutil.copy(first.cert, live.cert)
    shutil.copy(first.key, live.key)
    srv = make_server(tls=live)
    assert served_cert_sha256(srv.port) == file_cert_sha256(first.cert)
    kept = make_client(srv.endpoint, verify=str(first.ca))
    _round_trip(kept, 'reload')

    shutil.copy(second.cert, live.cert)
    shutil.copy(second.key, live.key)
    srv.proc.send_signal(signal.SIGHUP)
    _wait_for_log(srv, 'TLS certificate and key reloaded', 1)
    assert served_cert_sha256(srv.port) == file_cert_sha256(second.cert)
    fresh = make_client(srv.endpoint, verify=str(second.ca))
    assert fresh.get_object(Bucket='reload', Key='k')['Body'].read() == b'v' * 70_000

    # A bad new certificate (here: the key no longer matches) keeps the one in use.
    shutil.copy(first.key, live.key)
    srv.proc.send_signal(signal.SIGHUP)
    _wait_for_log(srv, 'keeping the previous certificate', 1)
    assert 'does not match' in srv.stderr_tail()
    assert served_cert_sha256(srv.port) == file_cert_sha256(second.cert)
    assert fresh.list_objects_v2(Bucket='reload')['KeyCount'] == 1
    assert srv.alive()
    assert srv.stop() == 0


def _serve_fails(ringstore_bin, tmp_path, args):
    """Runs `ringstore serve` expecting it to refuse to start; returns its stderr."""
    proc = subprocess.run(
        [str(ringstore_bin), 'serve', '--address', '127.0.0.1:0', '--data',
         str(tmp_path / 'data'), *args],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0, proc
    assert 'listening' not in proc.stdout
    return proc.stderr


def test_startup_errors_are_clear(ringstore_bin, certs, tmp_path):
    first, second = certs
    garbage = tmp_path / 'garbage.pem'
    garbage.write_text('this is not PEM\n')
    missing = tmp_path / 'missing.pem'
    cases = [
        (['--tls-cert', str(missing), '--tls-key', str(first.key)], ['cannot read the certificate file',
                                                      str(missing)]),
        (['--tls-cert', str(garbage), '--tls-key', str(first.key)], ['holds no PEM certificate',
                                                                   str(garbage)]),
        (['--tls-cert', str(first.cert), '--tls-key', str(first.cert)], ['holds no PEM private key']),
        (['--tls-cert', str(first.cert), '--tls-key', str(second.key)],
         [f'private key in {second.key} does not match the certificate in {first.cert}']),
        (['--tls-address', '127.0.0.1:0'], ['--tls-cert']),
        (['--tls-cert', str(first.cert)], ['--tls-key']),
    ]
    for args, expected in cases:
        stderr = _serve_fails(ringstore_bin, tmp_path, args)
        for text in expected:
            assert text in stderr, (args, stderr)
    # Nothing was started on the data dir for the unusable files (checked before storage).
    assert not (tmp_path / 'data').exists()


def test_tls_over_the_limit_gets_503_over_tls(make_server, certs):
    """A connection past --max-connections on the HTTPS listener is answered (SlowDown) in TLS."""
    first, _ = certs
    srv = make_server(tls=first, extra_args=['--max-connections', '1'])
    hold = srv.connect(timeout=10)  # takes the only slot (handshake done)
    try:
        with raises_s3('SlowDown', 503):
            make_client(srv.endpoint, verify=str(first.ca)).list_buckets()
    finally:
        hold.close()
    assert srv.stop() == 0
