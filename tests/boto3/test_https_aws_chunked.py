"""What boto3 sends over HTTPS: aws-chunked bodies with a trailing checksum.

Over an https endpoint boto3 switches PutObject/UploadPart to `Transfer-Encoding: chunked` +
`Content-Encoding: aws-chunked` + `X-Amz-Content-SHA256: STREAMING-UNSIGNED-PAYLOAD-TRAILER` with
`x-amz-checksum-crc32` in the aws-chunked trailer and no Content-Length. These tests run their own
ringstore with both listeners (`--tls-address`: plain HTTP on --address, HTTPS beside it, with a
certificate from a test CA) and a real boto3 client over HTTPS that verifies it; what it wrote is
read back over plain HTTP too. The raw tests at the end send the same framing over plain HTTP with
a wrong trailer checksum.
"""

import hashlib
import os

import pytest
import requests

from harness import RingstoreServer, TlsFiles, make_client
from s3util import crc32_b64, file_sha256, quoted_etag, raises_s3, sha256_b64, sigv4_sign

MiB = 1024 * 1024


@pytest.fixture(scope='module')
def server(ringstore_bin, test_root):
    """This module's server (overrides the session one): plain HTTP and HTTPS listeners."""
    d = test_root / 'https-aws-chunked'
    tls = TlsFiles(d / 'tls')
    srv = RingstoreServer(ringstore_bin, d / 'data', d, name='dual',
                          extra_args=tls.args() + ['--tls-address', '127.0.0.1:0'])
    srv.ca = tls.ca
    srv.start()
    assert srv.tls_port and srv.tls_port != srv.port, srv.listen_line
    yield srv
    assert srv.stop() == 0


def _https_client(server, kind='default'):
    return make_client(f'https://127.0.0.1:{server.tls_port}', kind, verify=str(server.ca))


@pytest.fixture
def s3_https(server):
    return _https_client(server)


@pytest.mark.parametrize('size', [0, 12, MiB + 1, 5 * MiB + 17],
                         ids=['empty', '12B', '1MiB+1', '5MiB+17'])
def test_put_over_https_aws_chunked(s3_https, s3, bucket, size):
    data = os.urandom(size)
    resp = s3_https.put_object(Bucket=bucket, Key='tls.bin', Body=data)
    assert resp['ETag'] == quoted_etag(data)
    assert resp.get('ChecksumCRC32') == crc32_b64(data)
    # Read back over plain HTTP: exact bytes, exact length, no aws-chunked left in the metadata.
    got = s3.get_object(Bucket=bucket, Key='tls.bin')
    assert got['Body'].read() == data
    assert got['ContentLength'] == size
    assert 'aws-chunked' not in (got.get('ContentEncoding') or '')
    # And over HTTPS, with boto3 validating the returned checksum.
    got = s3_https.get_object(Bucket=bucket, Key='tls.bin')
    assert got['Body'].read() == data


@pytest.mark.parametrize('encoding', ['gzip', 'gzip, br'])
def test_put_over_https_keeps_real_content_encoding(s3_https, s3, bucket, encoding):
    data = b'\x1f\x8b pretend gzip bytes ' * 100
    s3_https.put_object(Bucket=bucket, Key='gz', Body=data, ContentEncoding=encoding)
    head = s3.head_object(Bucket=bucket, Key='gz')
    # The client's codings as it sent them, without the aws-chunked boto3 adds.
    assert head['ContentEncoding'] == encoding
    assert head['ContentLength'] == len(data)
    assert s3.get_object(Bucket=bucket, Key='gz')['Body'].read() == data


def test_put_over_https_sha256_trailer(s3_https, s3, bucket):
    data = os.urandom(300_000)
    resp = s3_https.put_object(Bucket=bucket, Key='sha', Body=data, ChecksumAlgorithm='SHA256')
    assert resp.get('ChecksumSHA256') == sha256_b64(data)
    assert s3.get_object(Bucket=bucket, Key='sha')['Body'].read() == data


def test_put_over_https_when_required(server, s3, bucket):
    c = _https_client(server, 'when_required')
    data = os.urandom(2 * MiB + 5)
    assert c.put_object(Bucket=bucket, Key='wr', Body=data)['ETag'] == quoted_etag(data)
    assert s3.get_object(Bucket=bucket, Key='wr')['Body'].read() == data


def test_upload_file_20mib_over_https(s3_https, s3, bucket, tmp_path):
    """Multipart over HTTPS: every UploadPart is aws-chunked with a CRC32 trailer."""
    src = tmp_path / 'tls20.bin'
    src.write_bytes(os.urandom(20 * MiB))
    s3_https.upload_file(str(src), bucket, 'tls20.bin')
    dst = tmp_path / 'tls20.downloaded'
    s3.download_file(bucket, 'tls20.bin', str(dst))
    assert file_sha256(dst) == file_sha256(src)


# ---------------------------------------------------------------------------------------------
# Raw aws-chunked over plain HTTP


def _aws_chunked(data, trailer_value, chunk=64 * 1024):
    out = bytearray()
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += b'%x\r\n' % len(piece) + piece + b'\r\n'
    out += b'0\r\n' + f'x-amz-checksum-crc32:{trailer_value}\r\n'.encode() + b'\r\n'
    return bytes(out)


def _raw_chunked_put(server, bucket, key, data, trailer_value):
    url = f'{server.endpoint}/{bucket}/{key}'
    headers = sigv4_sign(
        'PUT', url, server.access_key, server.secret_key,
        headers={
            'content-encoding': 'aws-chunked',
            'x-amz-decoded-content-length': str(len(data)),
            'x-amz-sdk-checksum-algorithm': 'CRC32',
            'x-amz-trailer': 'x-amz-checksum-crc32',
        },
        payload_hash='STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    )
    body = _aws_chunked(data, trailer_value)

    def gen():  # a generator makes requests use Transfer-Encoding: chunked, like boto3 over TLS
        for i in range(0, len(body), 100_000):
            yield body[i:i + 100_000]

    return requests.put(url, data=gen(), headers=headers, timeout=60)


def test_raw_aws_chunked_put(server, s3, bucket):
    data = os.urandom(300_001)
    r = _raw_chunked_put(server, bucket, 'raw-chunked', data, crc32_b64(data))
    assert r.status_code == 200, r.text
    assert r.headers.get('ETag') == quoted_etag(data)
    assert r.headers.get('x-amz-checksum-crc32') == crc32_b64(data)
    got = s3.get_object(Bucket=bucket, Key='raw-chunked')
    assert hashlib.sha256(got['Body'].read()).digest() == hashlib.sha256(data).digest()


def test_raw_aws_chunked_wrong_trailer_checksum(server, s3, bucket):
    data = os.urandom(300_001)
    r = _raw_chunked_put(server, bucket, 'raw-bad', data, crc32_b64(b'not the data'))
    assert r.status_code == 400, r.text
    assert '<Code>BadDigest</Code>' in r.text
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='raw-bad')
