"""Flexible checksums (x-amz-checksum-*), Content-MD5 and the signed payload hash.

Current boto3 sends `x-amz-checksum-crc32` on every PutObject by default; S3 verifies it, stores it
and echoes it; GetObject with ChecksumMode=ENABLED returns the stored full-object checksum, but
never on a ranged (206) response. A body that does not match a checksum the client sent is
rejected with BadDigest and nothing is stored.
"""

import base64
import hashlib
import os

import pytest
import requests

from s3util import (
    CHECKSUM_FUNCS,
    crc32_b64,
    crc32c_b64,
    md5_b64,
    quoted_etag,
    raises_s3,
    sigv4_sign,
    status_of,
)

DATA = b'hello world\n' + bytes(range(256)) * 7


def test_crc32_reference_vector():
    # The value boto3 sent for b'hello world\n' in the wire capture.
    assert crc32_b64(b'hello world\n') == 'rwg7LQ=='


def test_default_put_sends_crc32_and_server_echoes_it(s3, bucket):
    resp = s3.put_object(Bucket=bucket, Key='crc', Body=DATA)
    assert status_of(resp) == 200
    assert resp.get('ChecksumCRC32') == crc32_b64(DATA)
    assert resp['ETag'] == quoted_etag(DATA)


def test_default_put_empty_body_crc32(s3, bucket):
    resp = s3.put_object(Bucket=bucket, Key='empty', Body=b'')
    assert resp.get('ChecksumCRC32') == crc32_b64(b'') == 'AAAAAA=='


def _put_with_algorithm(client, bucket, key, data, algorithm):
    kwargs = {'ChecksumAlgorithm': algorithm}
    if algorithm == 'CRC32C':
        # botocore computes CRC32C only with awscrt installed; supply the value ourselves, the
        # wire is then the same as boto3[crt] sends (algorithm header + x-amz-checksum-crc32c).
        kwargs['ChecksumCRC32C'] = crc32c_b64(data)
    return client.put_object(Bucket=bucket, Key=key, Body=data, **kwargs)


@pytest.mark.parametrize('algorithm', ['CRC32', 'CRC32C', 'SHA1', 'SHA256'])
def test_put_with_checksum_algorithm_is_echoed(client, bucket, algorithm):
    resp = _put_with_algorithm(client, bucket, 'alg', DATA, algorithm)
    assert status_of(resp) == 200
    expected = CHECKSUM_FUNCS[algorithm](DATA)
    assert resp.get(f'Checksum{algorithm}') == expected
    assert client.get_object(Bucket=bucket, Key='alg')['Body'].read() == DATA


@pytest.mark.parametrize('algorithm', ['CRC32', 'CRC32C', 'SHA1', 'SHA256'])
def test_stored_checksum_returned_on_get_and_head(client, bucket, algorithm):
    _put_with_algorithm(client, bucket, 'alg', DATA, algorithm)
    expected = CHECKSUM_FUNCS[algorithm](DATA)
    got = client.get_object(Bucket=bucket, Key='alg', ChecksumMode='ENABLED')
    assert got['Body'].read() == DATA
    assert got.get(f'Checksum{algorithm}') == expected
    head = client.head_object(Bucket=bucket, Key='alg', ChecksumMode='ENABLED')
    assert head.get(f'Checksum{algorithm}') == expected


def test_get_checksum_mode_full_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key='crc', Body=DATA)
    got = s3.get_object(Bucket=bucket, Key='crc', ChecksumMode='ENABLED')
    assert status_of(got) == 200
    assert got.get('ChecksumCRC32') == crc32_b64(DATA)
    # botocore validates the returned checksum against the body while reading.
    assert got['Body'].read() == DATA


@pytest.mark.parametrize('range_header', ['bytes=0-9', 'bytes=100-', 'bytes=-7'])
def test_get_checksum_mode_ranged_has_no_full_object_checksum(client, bucket, range_header):
    client.put_object(Bucket=bucket, Key='crc', Body=DATA, ChecksumAlgorithm='CRC32')
    got = client.get_object(Bucket=bucket, Key='crc', ChecksumMode='ENABLED', Range=range_header)
    assert status_of(got) == 206
    for name in ('ChecksumCRC32', 'ChecksumCRC32C', 'ChecksumSHA1', 'ChecksumSHA256',
                 'ChecksumCRC64NVME'):
        assert name not in got, f'{name} must not be returned on a ranged GET'
    start = {'bytes=0-9': 0, 'bytes=100-': 100, 'bytes=-7': len(DATA) - 7}[range_header]
    end = {'bytes=0-9': 10, 'bytes=100-': len(DATA), 'bytes=-7': len(DATA)}[range_header]
    assert got['Body'].read() == DATA[start:end]


# ---------------------------------------------------------------------------------------------
# Mismatches: BadDigest, nothing stored


def _wrong(algorithm):
    return CHECKSUM_FUNCS[algorithm](b'some other content')


@pytest.mark.parametrize('algorithm', ['CRC32', 'CRC32C', 'SHA1', 'SHA256'])
def test_wrong_checksum_is_bad_digest_and_not_stored(client, bucket, algorithm):
    with raises_s3('BadDigest', 400):
        client.put_object(
            Bucket=bucket, Key='bad', Body=DATA, **{f'Checksum{algorithm}': _wrong(algorithm)}
        )
    with raises_s3('NoSuchKey', 404):
        client.get_object(Bucket=bucket, Key='bad')
    assert 'Contents' not in client.list_objects_v2(Bucket=bucket)


def test_wrong_checksum_keeps_previous_version(client, bucket):
    client.put_object(Bucket=bucket, Key='keep', Body=b'original')
    with raises_s3('BadDigest', 400):
        client.put_object(Bucket=bucket, Key='keep', Body=DATA, ChecksumCRC32=_wrong('CRC32'))
    got = client.get_object(Bucket=bucket, Key='keep')
    assert got['Body'].read() == b'original'
    assert got['ETag'] == quoted_etag(b'original')


def test_content_md5_right(client, bucket):
    resp = client.put_object(Bucket=bucket, Key='md5', Body=DATA, ContentMD5=md5_b64(DATA))
    assert status_of(resp) == 200
    assert resp['ETag'] == quoted_etag(DATA)
    assert client.get_object(Bucket=bucket, Key='md5')['Body'].read() == DATA


def test_content_md5_wrong_is_bad_digest(client, bucket):
    with raises_s3('BadDigest', 400):
        client.put_object(Bucket=bucket, Key='md5', Body=DATA, ContentMD5=md5_b64(b'other'))
    with raises_s3('NoSuchKey', 404):
        client.get_object(Bucket=bucket, Key='md5')


@pytest.mark.parametrize(
    'value',
    ['garbage!', base64.b64encode(b'12345').decode(), base64.b64encode(b'x' * 32).decode()],
    ids=['not-base64', 'too-short', 'too-long'],
)
def test_content_md5_garbage_is_invalid_digest(client, bucket, value):
    with raises_s3('InvalidDigest', 400):
        client.put_object(Bucket=bucket, Key='md5', Body=DATA, ContentMD5=value)
    with raises_s3('NoSuchKey', 404):
        client.get_object(Bucket=bucket, Key='md5')


def test_payload_hash_mismatch_is_rejected_and_not_stored(server, s3, bucket):
    """Body differs from the signed x-amz-content-sha256 (raw HTTP, same length)."""
    signed_body = b'A' * 1000
    sent_body = b'B' * 1000
    url = f'{server.endpoint}/{bucket}/tampered'
    headers = sigv4_sign(
        'PUT', url, server.access_key, server.secret_key,
        payload_hash=hashlib.sha256(signed_body).hexdigest(),
    )
    r = requests.put(url, data=sent_body, headers=headers, timeout=60)
    assert r.status_code == 400, r.text
    assert '<Code>XAmzContentSHA256Mismatch</Code>' in r.text
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='tampered')


def test_raw_signed_put_round_trip(server, s3, bucket):
    """Control for the test above: the same raw signing with the right body works."""
    body = os.urandom(1000)
    url = f'{server.endpoint}/{bucket}/raw'
    headers = sigv4_sign('PUT', url, server.access_key, server.secret_key,
                         payload_hash=hashlib.sha256(body).hexdigest())
    r = requests.put(url, data=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers.get('ETag') == quoted_etag(body)
    assert s3.get_object(Bucket=bucket, Key='raw')['Body'].read() == body


# ---------------------------------------------------------------------------------------------
# Every algorithm, PutObject and UploadPart: a checksum header that does not match the body is
# 400 BadDigest with S3's message, and nothing is stored.

DIGEST_BYTES = {'crc32': 4, 'crc32c': 4, 'crc64nvme': 8, 'sha1': 20, 'sha256': 32}


def _wrong_value(algorithm):
    """Well-formed (right length) but not the body's checksum."""
    return base64.b64encode(b'\x5a' * DIGEST_BYTES[algorithm]).decode()


def _raw_put(server, path, body, headers):
    url = f'{server.endpoint}{path}'
    signed = sigv4_sign('PUT', url, server.access_key, server.secret_key, headers=headers,
                        payload_hash=hashlib.sha256(body).hexdigest())
    return requests.put(url, data=body, headers=signed, timeout=60)


def _assert_bad_digest(r, algorithm):
    assert r.status_code == 400, r.text
    assert '<Code>BadDigest</Code>' in r.text, r.text
    message = f'The {algorithm.upper()} you specified did not match the calculated checksum.'
    assert f'<Message>{message}</Message>' in r.text, r.text


@pytest.mark.parametrize('algorithm', sorted(DIGEST_BYTES))
def test_wrong_checksum_header_put_object(server, s3, bucket, algorithm):
    r = _raw_put(server, f'/{bucket}/bad', DATA,
                 {f'x-amz-checksum-{algorithm}': _wrong_value(algorithm)})
    _assert_bad_digest(r, algorithm)
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='bad')


@pytest.mark.parametrize('algorithm', sorted(DIGEST_BYTES))
def test_wrong_checksum_header_upload_part(server, s3, bucket, algorithm):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='mp')['UploadId']
    r = _raw_put(server, f'/{bucket}/mp?partNumber=1&uploadId={upload_id}', DATA,
                 {f'x-amz-checksum-{algorithm}': _wrong_value(algorithm)})
    _assert_bad_digest(r, algorithm)
    assert s3.list_parts(Bucket=bucket, Key='mp', UploadId=upload_id).get('Parts', []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key='mp', UploadId=upload_id)
