"""Observability over real sockets: /metrics (parsed by the Prometheus text parser) moving with
traffic, /health/* before and after recovery, the access log in text and JSON, and signed
requests to buckets named like the endpoints still reaching S3."""

import json
import os
import re
import socket
import subprocess
import time

import boto3
import pytest
import requests
from botocore.client import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from harness import ACCESS_KEY, REGION, SECRET_KEY, make_client

# Longest wait for an access-log line (the writer thread is asynchronous) or a start.
WAIT_S = 20.0
BOUND_RE = re.compile(r'^ringstore: accepting on http://127\.0\.0\.1:(\d+), recovering ')


def scrape(server):
    """{(sample name, frozenset(labels)): value} of one /metrics scrape."""
    r = requests.get(f'{server.endpoint}/metrics', timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_with_traffic(make_server):
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket='obs-metrics')
    before = scrape(server)
    s3.put_object(Bucket='obs-metrics', Key='k', Body=b'x' * 1000)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket='obs-metrics', Key='missing')
    assert e.value.response['Error']['Code'] == 'NoSuchKey'
    after = scrape(server)
    put = dict(op='PutObject', status='200')
    assert value(after, 'ringstore_requests_total', **put) == value(before, 'ringstore_requests_total', **put) + 1
    grew = value(after, 'ringstore_bytes_in_total', op='PutObject') - value(before, 'ringstore_bytes_in_total', op='PutObject')
    assert grew >= 1000
    assert value(before, 'ringstore_errors_total', code='NoSuchKey') == 0
    assert value(after, 'ringstore_errors_total', code='NoSuchKey') == 1
    assert value(after, 'ringstore_requests_total', op='GetObject', status='404') == 1
    assert value(after, 'ringstore_request_duration_seconds_count', op='PutObject') >= 1
    assert value(after, 'ringstore_request_duration_seconds_bucket', op='PutObject', le='+Inf') >= 1
    assert value(after, 'ringstore_objects') == 1
    assert value(after, 'ringstore_buckets') == 1
    assert value(after, 'ringstore_ready') == 1
    assert value(after, 'ringstore_log_commit_duration_seconds_count') >= 1
    cores = [c for (n, labels) in after if n == 'ringstore_connections_open' for (k, c) in labels]
    assert sorted(cores) == [str(i) for i in range(server.cores)]
    assert value(after, 'ringstore_log_lines_dropped_total') == 0


def test_metrics_off_counts_nothing(make_server):
    server = make_server(['--metrics', 'off'])
    s3 = server.client()
    s3.create_bucket(Bucket='obs-off')
    samples = scrape(server)
    assert not [k for k in samples if k[0] == 'ringstore_requests_total']
    assert value(samples, 'ringstore_buckets') == 1


def test_signed_requests_reach_buckets_named_metrics_and_health(make_server):
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket='metrics')
    s3.create_bucket(Bucket='health')
    s3.put_object(Bucket='metrics', Key='m', Body=b'm')
    s3.put_object(Bucket='health', Key='ready', Body=b'bucket health, key ready')
    # Signed in the Authorization header: GET /metrics?list-type=2 lists the bucket.
    listed = s3.list_objects_v2(Bucket='metrics')
    assert [o['Key'] for o in listed['Contents']] == ['m']
    # Signed in the query (presigned): GET /health/ready?X-Amz-... reads the object.
    url = s3.generate_presigned_url('get_object', Params={'Bucket': 'health', 'Key': 'ready'})
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == b'bucket health, key ready'
    # Unsigned, the same paths are the endpoints.
    assert requests.get(f'{server.endpoint}/health/ready', timeout=10).text == 'ready\n'
    assert 'ringstore_requests_total' in requests.get(f'{server.endpoint}/metrics', timeout=10).text
    # An unsigned request to another path is still S3 (and refused).
    r = requests.get(f'{server.endpoint}/metrics/m', timeout=10)
    assert r.status_code == 403 and '<Code>AccessDenied</Code>' in r.text


def wait_for_lines(server, pick, n):
    """The first `n` stderr lines `pick` returns non-None for, waiting for the log writer."""
    deadline = time.monotonic() + WAIT_S
    while True:
        text = server.log_path.read_text(errors='replace')
        found = [x for x in map(pick, text.splitlines()) if x is not None]
        if len(found) >= n or time.monotonic() > deadline:
            return found


def json_line(line):
    return json.loads(line) if line.startswith('{') else None


def text_line(line):
    if not line.startswith('time='):
        return None
    return dict(kv.split('=', 1) for kv in line.split(' '))


@pytest.mark.parametrize('fmt', ['json', 'text'])
def test_access_log_lines_carry_the_request_id(make_server, fmt):
    server = make_server(['--log-level', 'info', '--log-format', fmt])
    s3 = server.client()
    s3.create_bucket(Bucket='obs-log')
    put = s3.put_object(Bucket='obs-log', Key='a/b c', Body=b'y' * 300)
    url = s3.generate_presigned_url('get_object', Params={'Bucket': 'obs-log', 'Key': 'a/b c'})
    got = requests.get(url, timeout=10)
    assert got.status_code == 200
    with pytest.raises(ClientError):
        s3.head_object(Bucket='obs-log', Key='nope')
    pick = json_line if fmt == 'json' else text_line
    lines = wait_for_lines(server, pick, 4)
    by_id = {str(line['request_id']): line for line in lines}
    put_line = by_id[put['ResponseMetadata']['RequestId']]
    assert put_line['op'] == 'PutObject' and str(put_line['status']) == '200'
    assert put_line['method'] == 'PUT' and put_line['path'].startswith('/obs-log/a/b%20c')
    assert int(put_line['bytes_in']) >= 300 and int(put_line['duration_us']) >= 0
    assert put_line['remote'].startswith('127.0.0.1:')
    assert str(put_line['core']).isdigit()
    get_line = by_id[got.headers['x-amz-request-id']]
    assert get_line['op'] == 'GetObject' and int(get_line['bytes_out']) == 300
    assert 'X-Amz-Signature' not in get_line['path'] and 'X-Amz-Credential' not in get_line['path']
    assert 'X-Amz-Expires=' in get_line['path']
    head_lines = [line for line in lines if line['op'] == 'HeadObject']
    assert head_lines and head_lines[0]['error'] == 'NoSuchKey'
    assert str(head_lines[0]['status']) == '404'


def test_default_log_level_writes_no_access_lines(make_server):
    server = make_server()
    server.client().create_bucket(Bucket='obs-quiet')
    server.stop()
    text = server.log_path.read_text(errors='replace')
    assert 'request_id' not in text and 'CreateBucket' not in text


def start_gated(ringstore_bin, test_root, name):
    """A server whose recovery waits for its gate file to be removed; returns (proc, gate, port)."""
    base = test_root / name
    base.mkdir(parents=True)
    gate = base / 'gate'
    gate.write_text('hold recovery')
    log = open(base / 'stderr.log', 'wb')
    env = dict(os.environ, RINGSTORE_ACCESS_KEY=ACCESS_KEY, RINGSTORE_SECRET_KEY=SECRET_KEY,
               RINGSTORE_TEST_RECOVERY_GATE=str(gate))
    proc = subprocess.Popen(
        [str(ringstore_bin), 'serve', '--address', '127.0.0.1:0', '--data', str(base / 'data')],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        m = [BOUND_RE.match(x) for x in (base / 'stderr.log').read_text().splitlines()]
        m = [x for x in m if x]
        if m:
            return proc, gate, int(m[0].group(1))
        assert proc.poll() is None, (base / 'stderr.log').read_text()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError('no "accepting on" line: ' + (base / 'stderr.log').read_text())


def test_health_and_503_before_recovery_then_ready(ringstore_bin, test_root):
    proc, gate, port = start_gated(ringstore_bin, test_root, 'obs-gated')
    base = f'http://127.0.0.1:{port}'
    try:
        assert requests.get(f'{base}/health/live', timeout=10).status_code == 200
        r = requests.get(f'{base}/health/ready', timeout=10)
        assert r.status_code == 503
        r = requests.get(f'{base}/some-bucket/key', timeout=10)
        assert r.status_code == 503 and '<Code>ServiceUnavailable</Code>' in r.text
        assert r.headers['x-amz-request-id'] in r.text
        no_retry = boto3.client(
            's3', endpoint_url=base, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name=REGION, config=Config(signature_version='s3v4', retries={'total_max_attempts': 1}))
        with pytest.raises(ClientError) as e:
            no_retry.list_buckets()
        assert e.value.response['Error']['Code'] == 'ServiceUnavailable'
        text = requests.get(f'{base}/metrics', timeout=10).text
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples['ringstore_ready'] == 0
        gate.unlink()
        line = proc.stdout.readline().decode()
        assert line.startswith(f'ringstore listening on http://127.0.0.1:{port} '), line
        assert requests.get(f'{base}/health/ready', timeout=10).status_code == 200
        assert make_client(base).list_buckets()['Buckets'] == []
    finally:
        if gate.exists():
            gate.unlink()
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_start_errors_still_fail_the_process(ringstore_bin, test_root):
    # A port held by a socket without SO_REUSEPORT.
    holder = socket.socket()
    holder.bind(('127.0.0.1', 0))
    holder.listen()
    port = holder.getsockname()[1]
    base = test_root / 'obs-start-errors'
    base.mkdir(parents=True)
    env = dict(os.environ, RINGSTORE_ACCESS_KEY=ACCESS_KEY, RINGSTORE_SECRET_KEY=SECRET_KEY)
    try:
        out = subprocess.run(
            [str(ringstore_bin), 'serve', '--address', f'127.0.0.1:{port}', '--data', str(base / 'd')],
            capture_output=True, env=env, timeout=30)
    finally:
        holder.close()
    assert out.returncode != 0 and b'cannot start' in out.stderr, out.stderr
    # A data directory that is a file.
    (base / 'file').write_text('not a directory')
    out = subprocess.run(
        [str(ringstore_bin), 'serve', '--address', '127.0.0.1:0', '--data', str(base / 'file')],
        capture_output=True, env=env, timeout=30)
    assert out.returncode != 0 and b'cannot start' in out.stderr, out.stderr
    assert b'listening on' not in out.stdout



@pytest.mark.parametrize('restart', ['clean', 'kill'])
def test_object_bytes_gauge_is_the_sum_of_stored_sizes(make_server, restart):
    """ringstore_object_bytes follows PUTs (small ones in the log, large ones in files),
    overwrites, deletes and a multipart object, and comes back equal after a restart."""
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket='obs-bytes')
    s3.create_bucket(Bucket='obs-bytes-2')
    assert value(scrape(server), 'ringstore_object_bytes') == 0
    s3.put_object(Bucket='obs-bytes', Key='small', Body=b's' * 1000)
    s3.put_object(Bucket='obs-bytes', Key='large', Body=b'L' * (3 * 1024 * 1024 + 5))
    s3.put_object(Bucket='obs-bytes-2', Key='other', Body=b'o' * 777)
    s3.put_object(Bucket='obs-bytes-2', Key='empty', Body=b'')
    expected = 1000 + 3 * 1024 * 1024 + 5 + 777
    assert value(scrape(server), 'ringstore_object_bytes') == expected
    # An overwrite counts the new size only; a delete removes the size; a missing key's
    # delete changes nothing.
    s3.put_object(Bucket='obs-bytes', Key='small', Body=b'S' * 10)
    s3.delete_object(Bucket='obs-bytes', Key='large')
    s3.delete_object(Bucket='obs-bytes', Key='never-there')
    expected += 10 - 1000 - (3 * 1024 * 1024 + 5)
    assert value(scrape(server), 'ringstore_object_bytes') == expected
    # A multipart object: parts in progress are not stored objects yet.
    part = 5 * 1024 * 1024
    up = s3.create_multipart_upload(Bucket='obs-bytes', Key='mp')['UploadId']
    etags = [s3.upload_part(Bucket='obs-bytes', Key='mp', UploadId=up, PartNumber=n,
                            Body=bytes([n]) * size)['ETag']
             for n, size in ((1, part), (2, 123))]
    assert value(scrape(server), 'ringstore_object_bytes') == expected
    s3.complete_multipart_upload(
        Bucket='obs-bytes', Key='mp', UploadId=up,
        MultipartUpload={'Parts': [{'PartNumber': n, 'ETag': e} for n, e in zip((1, 2), etags)]})
    expected += part + 123
    assert value(scrape(server), 'ringstore_object_bytes') == expected
    if restart == 'clean':
        assert server.restart() == 0
    else:
        server.kill_and_start()
    assert value(scrape(server), 'ringstore_object_bytes') == expected
    listed = sum(o['Size'] for b in ('obs-bytes', 'obs-bytes-2')
                 for o in server.client().list_objects_v2(Bucket=b).get('Contents', []))
    assert listed == expected
