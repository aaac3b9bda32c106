"""Presigned URLs: the seed guide's section 5.1 verbatim, used with requests and curl; expiry and
tampering are refused."""

import os
import re
import shutil
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from s3util import quoted_etag, raises_s3

HELLO = b'Hello, presigned world!\n' + os.urandom(200)

CURL = shutil.which('curl')
needs_curl = pytest.mark.skipif(CURL is None, reason='curl is not installed (needed to test '
                                'presigned URLs the way the seed guide uses them)')


def _curl(*args, timeout=90):
    """Run curl (it gives up after 60 s); returns the HTTP status. Fails on transport errors."""
    cmd = [CURL, '-sS', '--max-time', '60', '-w', '%{http_code}', *args]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    assert p.returncode == 0, f'curl failed ({p.returncode}): {p.stderr.decode(errors="replace")}'
    return int(p.stdout.decode()[-3:])


def _error_code(r):
    root = ET.fromstring(r.content)
    assert root.tag == 'Error', r.text
    return root.findtext('Code')


def test_seed_guide_section_5_1(s3, bucket, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path('hello.txt').write_bytes(HELLO)
    bucket_name = bucket
    s3.upload_file('hello.txt', bucket_name, 'hello.txt')
    capsys.readouterr()

    # ---- 5.1.1 Download-Link (GET) -----------------------------------------------------------
    url = s3.generate_presigned_url(
        ClientMethod='get_object',
        Params={'Bucket': bucket_name, 'Key': 'hello.txt'},
        ExpiresIn=600  # 10 Minuten Gültigkeitsdauer
    )

    print('Presigned GET URL:', url)

    get_url = url

    # ---- 5.1.2 Upload-Link (PUT) -------------------------------------------------------------
    url = s3.generate_presigned_url(
        ClientMethod='put_object',
        Params={'Bucket': bucket_name, 'Key': 'upload-by-url.txt'},
        ExpiresIn=600
    )

    print('Presigned PUT URL:', url)

    put_url = url

    out = capsys.readouterr().out
    assert out == f'Presigned GET URL: {get_url}\nPresigned PUT URL: {put_url}\n'
    assert 'X-Amz-Expires=600' in get_url and 'X-Amz-Signature=' in get_url

    # GET with requests.
    r = requests.get(get_url, timeout=60)
    assert r.status_code == 200, r.text
    assert r.content == HELLO
    assert r.headers.get('ETag') == quoted_etag(HELLO)

    if CURL is None:
        pytest.skip('curl is not installed; the curl half of section 5.1 was not run')

    # GET with curl.
    assert _curl('-o', 'hello-curl.txt', get_url) == 200
    assert Path('hello-curl.txt').read_bytes() == HELLO

    # PUT with curl, exactly as the guide shows (`curl -X PUT --upload-file hello.txt URL`).
    assert _curl('-o', 'put-response.txt', '-X', 'PUT', '--upload-file', 'hello.txt', put_url) == 200
    got = s3.get_object(Bucket=bucket_name, Key='upload-by-url.txt')
    assert got['Body'].read() == HELLO
    assert got['ETag'] == quoted_etag(HELLO)


def test_presigned_get_with_both_clients(client, bucket):
    data = os.urandom(3000)
    client.put_object(Bucket=bucket, Key='dir/ü file+1.bin', Body=data)
    url = client.generate_presigned_url(
        'get_object', Params={'Bucket': bucket, 'Key': 'dir/ü file+1.bin'}, ExpiresIn=600
    )
    r = requests.get(url, timeout=60)
    assert r.status_code == 200, r.text
    assert r.content == data


def test_presigned_put_with_requests(s3, bucket):
    data = os.urandom(100_000)
    url = s3.generate_presigned_url(
        'put_object', Params={'Bucket': bucket, 'Key': 'by-requests.bin'}, ExpiresIn=600
    )
    r = requests.put(url, data=data, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers.get('ETag') == quoted_etag(data)
    assert s3.get_object(Bucket=bucket, Key='by-requests.bin')['Body'].read() == data


@needs_curl
def test_presigned_put_with_curl_data_binary(s3, bucket, tmp_path):
    """curl --data-binary adds an unsigned form Content-Type; it must be ignored for auth."""
    src = tmp_path / 'payload.bin'
    src.write_bytes(os.urandom(5000))
    url = s3.generate_presigned_url(
        'put_object', Params={'Bucket': bucket, 'Key': 'by-curl.bin'}, ExpiresIn=600
    )
    code = _curl('-o', str(tmp_path / 'resp.txt'), '-X', 'PUT', '--data-binary', f'@{src}', url)
    assert code == 200, (tmp_path / 'resp.txt').read_text(errors='replace')
    assert s3.get_object(Bucket=bucket, Key='by-curl.bin')['Body'].read() == src.read_bytes()


@needs_curl
def test_presigned_put_large_with_curl(s3, bucket, tmp_path):
    src = tmp_path / 'large.bin'
    src.write_bytes(os.urandom(9 * 1024 * 1024))
    url = s3.generate_presigned_url(
        'put_object', Params={'Bucket': bucket, 'Key': 'large.bin'}, ExpiresIn=600
    )
    assert _curl('-o', str(tmp_path / 'resp.txt'), '-X', 'PUT', '--upload-file', str(src), url) == 200
    head = s3.head_object(Bucket=bucket, Key='large.bin')
    assert head['ContentLength'] == src.stat().st_size
    assert head['ETag'] == quoted_etag(src.read_bytes())


def test_presigned_get_missing_key_is_404(s3, bucket):
    url = s3.generate_presigned_url(
        'get_object', Params={'Bucket': bucket, 'Key': 'nope'}, ExpiresIn=600
    )
    r = requests.get(url, timeout=60)
    assert r.status_code == 404
    assert _error_code(r) == 'NoSuchKey'


def test_expired_presigned_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key='expiring', Body=b'soon gone')
    url = s3.generate_presigned_url(
        'get_object', Params={'Bucket': bucket, 'Key': 'expiring'}, ExpiresIn=1
    )
    time.sleep(2)
    r = requests.get(url, timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'AccessDenied'
    assert b'soon gone' not in r.content


def test_expired_presigned_put_stores_nothing(s3, bucket):
    url = s3.generate_presigned_url(
        'put_object', Params={'Bucket': bucket, 'Key': 'late'}, ExpiresIn=1
    )
    time.sleep(2)
    r = requests.put(url, data=b'too late', timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'AccessDenied'
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='late')


def _replace_query(url, name, value):
    """Replace one query parameter's raw value, leaving every other byte of the URL unchanged."""
    new, n = re.subn(rf'([?&]{re.escape(name)}=)[^&]*', lambda m: m.group(1) + value, url)
    assert n == 1, f'{name} not found exactly once in {url}'
    return new


@pytest.fixture
def presigned_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key='target.txt', Body=b'target')
    s3.put_object(Bucket=bucket, Key='other.txt', Body=b'other secret')
    url = s3.generate_presigned_url(
        'get_object', Params={'Bucket': bucket, 'Key': 'target.txt'}, ExpiresIn=600
    )
    r = requests.get(url, timeout=60)
    assert r.status_code == 200 and r.content == b'target', 'untampered URL must work'
    return url


def test_tampered_key_in_path(presigned_get):
    url = presigned_get.replace('/target.txt?', '/other.txt?')
    assert url != presigned_get
    r = requests.get(url, timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'SignatureDoesNotMatch'
    assert b'other secret' not in r.content


def test_tampered_signature(presigned_get):
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(presigned_get).query)['X-Amz-Signature'][0]
    flipped = sig[:10] + ('0' if sig[10] != '0' else '1') + sig[11:]
    r = requests.get(_replace_query(presigned_get, 'X-Amz-Signature', flipped), timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'SignatureDoesNotMatch'


def test_tampered_expiry(presigned_get):
    r = requests.get(_replace_query(presigned_get, 'X-Amz-Expires', '6000'), timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'SignatureDoesNotMatch'


def test_presigned_url_wrong_method(presigned_get):
    """A GET URL must not allow a PUT to the same key."""
    r = requests.put(presigned_get, data=b'overwrite attempt', timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'SignatureDoesNotMatch'
    assert requests.get(presigned_get, timeout=60).content == b'target'


def test_presigned_url_signed_with_wrong_secret(server, bucket):
    bad = server.client(secret_key='not-the-secret')
    url = bad.generate_presigned_url(
        'get_object', Params={'Bucket': bucket, 'Key': 'x'}, ExpiresIn=600
    )
    r = requests.get(url, timeout=60)
    assert r.status_code == 403, r.text
    assert _error_code(r) == 'SignatureDoesNotMatch'
