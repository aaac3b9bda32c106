"""The server process itself: the listening line, ephemeral port, keys from the environment,
and a clean exit (code 0) on SIGTERM. Each test runs its own private server."""

import hashlib
import os
import signal
import time
from pathlib import Path

from harness import LISTEN_RE, make_client
from s3util import raises_s3, sigv4_sign


def test_listening_line_and_sigterm_exit_code(make_server):
    srv = make_server()
    # Exactly one line on stdout, in the documented format, naming the real port and data dir.
    assert srv.stdout_lines == [srv.listen_line]
    m = LISTEN_RE.match(srv.listen_line)
    assert m
    assert 0 < srv.port < 65536
    assert srv.cores >= 1
    assert Path(srv.printed_data_dir).resolve() == srv.data_dir.resolve()
    with srv.connect(timeout=5):
        pass
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket='lifecycle')
    s3.put_object(Bucket='lifecycle', Key='k', Body=b'v')
    assert s3.get_object(Bucket='lifecycle', Key='k')['Body'].read() == b'v'

    proc = srv.proc
    start = time.monotonic()
    rc = srv.stop()
    assert rc == 0, f'exit code after SIGTERM: {rc!r} (None = did not exit within 10 s, killed)'
    assert time.monotonic() - start < 10
    assert proc.returncode == 0
    # Nothing else was printed on stdout while serving or shutting down.
    assert srv.stdout_lines == [srv.listen_line]


def test_cores_option(make_server):
    srv = make_server(extra_args=['--cores', '1'])
    assert srv.cores == 1
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket='one-core')
    assert [b['Name'] for b in s3.list_buckets()['Buckets']] == ['one-core']
    assert srv.stop() == 0


def test_sighup_without_tls_keeps_serving(make_server):
    """`systemctl reload` sends SIGHUP: a server without TLS logs it and keeps serving."""
    srv = make_server(tls=False)
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket='hup')
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while 'nothing to reload' not in srv.stderr_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 'SIGHUP: nothing to reload' in srv.stderr_tail()
    assert srv.alive()
    s3.put_object(Bucket='hup', Key='k', Body=b'still serving')
    assert s3.get_object(Bucket='hup', Key='k')['Body'].read() == b'still serving'
    assert srv.stop() == 0


def test_sigterm_with_idle_keepalive_connection(make_server):
    """Pooled idle client connections must not keep the server from exiting on SIGTERM."""
    srv = make_server()
    s3 = make_client(srv.endpoint)
    s3.list_buckets()  # leaves a kept-alive connection in boto3's pool
    idle = srv.connect(timeout=5)  # and a silent one
    try:
        rc = srv.stop()
    finally:
        idle.close()
    assert rc == 0, f'exit code after SIGTERM: {rc!r} (None = did not exit within 10 s, killed)'


def test_keys_from_environment(make_server):
    srv = make_server()
    good = make_client(srv.endpoint)
    assert good.list_buckets()['ResponseMetadata']['HTTPStatusCode'] == 200
    with raises_s3('InvalidAccessKeyId', 403):
        make_client(srv.endpoint, access_key='ringstoreadmin', secret_key='ringstoresecret') \
            .list_buckets()
    with raises_s3('SignatureDoesNotMatch', 403):
        make_client(srv.endpoint, secret_key='wrong').list_buckets()
    assert srv.stop() == 0


def test_data_persists_across_separate_processes(make_server, test_root):
    data_dir = test_root / f'persist-{os.getpid()}-{time.monotonic_ns()}'
    first = make_server(data_dir=data_dir)
    s3 = make_client(first.endpoint)
    s3.create_bucket(Bucket='persist')
    s3.put_object(Bucket='persist', Key='k', Body=b'persisted')
    assert first.stop() == 0

    second = make_server(data_dir=data_dir)
    s3 = make_client(second.endpoint)
    assert s3.get_object(Bucket='persist', Key='k')['Body'].read() == b'persisted'
    assert second.stop() == 0


def test_aborted_upload_leaves_no_partial_object(make_server):
    """A client that disconnects half-way through a PUT body must not leave a torn object, and a
    later clean shutdown and restart must not surface one either."""
    srv = make_server()
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket='torn')
    s3.put_object(Bucket='torn', Key='obj', Body=b'old complete version')

    url = f'{srv.endpoint}/torn/obj'
    body = b'N' * 1_000_000
    headers = sigv4_sign('PUT', url, srv.access_key, srv.secret_key,
                         payload_hash=hashlib.sha256(body).hexdigest())
    headers['content-length'] = str(len(body))
    head = 'PUT /torn/obj HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in headers.items())
    with srv.connect(timeout=5) as sock:
        sock.sendall(head.encode() + b'\r\n' + body[:300_000])
    assert s3.get_object(Bucket='torn', Key='obj')['Body'].read() == b'old complete version'

    rc = srv.stop()
    assert rc == 0, f'exit code after SIGTERM: {rc!r}'
    srv.start()
    s3 = make_client(srv.endpoint)
    assert s3.get_object(Bucket='torn', Key='obj')['Body'].read() == b'old complete version'
    assert [o['Key'] for o in s3.list_objects_v2(Bucket='torn')['Contents']] == ['obj']
    assert srv.stop() == 0
