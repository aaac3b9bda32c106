"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, ranges, conditionals,
keys, metadata, and upload_file/download_file for objects that fit in a single PUT.
(Transfers that go multipart are in test_multipart_transfer.py.)"""

import datetime
import gzip
import hashlib
import os
import time

import pytest

from s3util import (
    file_sha256,
    md5_hex,
    quoted_etag,
    raises_s3,
    status_of,
    unique_bucket_name,
)

MiB = 1024 * 1024


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize(
    'size', [0, 1, MiB, 17 * MiB], ids=['empty', '1B', '1MiB', '17MiB']
)
def test_put_get_round_trip(client, bucket, size):
    data = os.urandom(size)
    key = f'round-trip-{size}'
    put = client.put_object(Bucket=bucket, Key=key, Body=data)
    assert status_of(put) == 200
    assert put['ETag'] == quoted_etag(data)

    got = client.get_object(Bucket=bucket, Key=key)
    assert status_of(got) == 200
    body = got['Body'].read()
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert got['ContentLength'] == size
    assert got['ETag'] == quoted_etag(data)


def test_puts_are_not_delayed_by_expect_100_continue(client, bucket):
    """boto3 sends `Expect: 100-continue` on every PutObject (even empty ones); if the server does
    not answer `100 Continue` promptly, botocore waits 1 s before it sends the body."""
    for i, body in enumerate([b'', b'0123456789', os.urandom(200_000)] * 2):
        t0 = time.monotonic()
        client.put_object(Bucket=bucket, Key=f'fast-{i}', Body=body)
        elapsed = time.monotonic() - t0
        assert elapsed < 0.9, f'PutObject of {len(body)} bytes took {elapsed:.2f} s'


SPECIAL_KEYS = [
    'with space.txt',
    'two  spaces and trailing space ',
    'umlaut-ü.txt',
    '日本/語.txt',
    'plus+sign',
    'equals=sign',
    'amp&ersand',
    'percent%20literal',
    'percent%',
    'question?mark',
    'hash#tag',
    'a/b/c',
    'a//double-slash',
    'trailing-slash/',
    '/leading-slash',
    "quote'and\"double",
    'tilde~star*paren()[]{}',
    'comma,semicolon;colon:at@dollar$',
    'emoji-😀',
    'mixed ü+&=%?#/ 日本',
]


@pytest.mark.parametrize('key', SPECIAL_KEYS, ids=[f'k{i}' for i in range(len(SPECIAL_KEYS))])
def test_special_keys_round_trip(s3, bucket, key):
    data = ('content of ' + key).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert s3.get_object(Bucket=bucket, Key=key)['Body'].read() == data
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head['ContentLength'] == len(data)
    assert head['ETag'] == quoted_etag(data)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert [o['Key'] for o in listed.get('Contents', [])] == [key]
    listed_v1 = s3.list_objects(Bucket=bucket)
    assert [o['Key'] for o in listed_v1.get('Contents', [])] == [key]
    assert status_of(s3.delete_object(Bucket=bucket, Key=key)) == 204
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key=key)


def test_key_and_key_slash_child_coexist(s3, bucket):
    s3.put_object(Bucket=bucket, Key='a', Body=b'file a')
    s3.put_object(Bucket=bucket, Key='a/b', Body=b'file a/b')
    s3.put_object(Bucket=bucket, Key='a/b/c', Body=b'file a/b/c')
    assert s3.get_object(Bucket=bucket, Key='a')['Body'].read() == b'file a'
    assert s3.get_object(Bucket=bucket, Key='a/b')['Body'].read() == b'file a/b'
    assert s3.get_object(Bucket=bucket, Key='a/b/c')['Body'].read() == b'file a/b/c'
    keys = [o['Key'] for o in s3.list_objects_v2(Bucket=bucket)['Contents']]
    assert keys == ['a', 'a/b', 'a/b/c']
    s3.delete_object(Bucket=bucket, Key='a')
    assert s3.get_object(Bucket=bucket, Key='a/b')['Body'].read() == b'file a/b'


@pytest.mark.parametrize(
    'key',
    ['k' * 1024, 'ü' * 512, 'x/' * 512],
    ids=['1024-ascii', '1024-bytes-utf8', '1024-slashes'],
)
def test_key_of_1024_bytes_is_accepted(s3, bucket, key):
    assert len(key.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=key, Body=b'long key')
    assert s3.get_object(Bucket=bucket, Key=key)['Body'].read() == b'long key'
    assert [o['Key'] for o in s3.list_objects_v2(Bucket=bucket)['Contents']] == [key]


@pytest.mark.parametrize(
    'key', ['k' * 1025, 'ü' * 512 + 'x'], ids=['1025-ascii', '1025-bytes-utf8']
)
def test_key_of_1025_bytes_is_too_long(s3, bucket, key):
    assert len(key.encode()) == 1025
    with raises_s3('KeyTooLongError', 400):
        s3.put_object(Bucket=bucket, Key=key, Body=b'too long')
    assert 'Contents' not in s3.list_objects_v2(Bucket=bucket)


# ---------------------------------------------------------------------------------------------
# Headers and metadata


def test_content_encoding_list_is_kept_as_sent(s3, bucket):
    s3.put_object(Bucket=bucket, Key='enc', Body=b'x', ContentEncoding='gzip, br')
    for resp in (s3.get_object(Bucket=bucket, Key='enc'), s3.head_object(Bucket=bucket, Key='enc')):
        assert resp['ContentEncoding'] == 'gzip, br'


def test_standard_headers_and_metadata_round_trip(client, bucket):
    data = gzip.compress(b'{"hello": "world"}\n' * 50)
    put = client.put_object(
        Bucket=bucket,
        Key='doc.json',
        Body=data,
        ContentType='application/json; charset=utf-8',
        ContentEncoding='gzip',
        CacheControl='max-age=3600, must-revalidate',
        ContentDisposition='attachment; filename="doc.json"',
        ContentLanguage='de-CH',
        Metadata={'Foo': 'bar', 'Another-Key': 'Some Value 123'},
    )
    assert status_of(put) == 200
    expected_meta = {'foo': 'bar', 'another-key': 'Some Value 123'}

    for resp in (
        client.get_object(Bucket=bucket, Key='doc.json'),
        client.head_object(Bucket=bucket, Key='doc.json'),
    ):
        assert resp['ContentType'] == 'application/json; charset=utf-8'
        assert resp['ContentEncoding'] == 'gzip'
        assert resp['CacheControl'] == 'max-age=3600, must-revalidate'
        assert resp['ContentDisposition'] == 'attachment; filename="doc.json"'
        assert resp['ContentLanguage'] == 'de-CH'
        assert resp['Metadata'] == expected_meta
        assert resp['ContentLength'] == len(data)
        assert resp['ETag'] == quoted_etag(data)

    # The stored bytes are returned as stored (no server-side decoding of gzip).
    assert client.get_object(Bucket=bucket, Key='doc.json')['Body'].read() == data


def test_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key='no-type', Body=b'abc')
    head = s3.head_object(Bucket=bucket, Key='no-type')
    # boto3 sends no Content-Type; S3 then stores binary/octet-stream.
    assert head['ContentType'] in ('binary/octet-stream', 'application/octet-stream')
    assert head['Metadata'] == {}


def test_head_object_fields(s3, bucket):
    data = os.urandom(4321)
    before = _now().replace(microsecond=0) - datetime.timedelta(seconds=2)
    s3.put_object(Bucket=bucket, Key='h', Body=data)
    after = _now() + datetime.timedelta(seconds=2)
    head = s3.head_object(Bucket=bucket, Key='h')
    assert status_of(head) == 200
    assert head['ContentLength'] == 4321
    assert head['ETag'] == '"' + md5_hex(data) + '"'
    lm = head['LastModified']
    assert isinstance(lm, datetime.datetime) and lm.tzinfo is not None
    assert before <= lm <= after, f'LastModified {lm} not between {before} and {after}'
    get = s3.get_object(Bucket=bucket, Key='h')
    get['Body'].read()
    assert get['LastModified'] == lm
    assert get['ETag'] == head['ETag']
    listed = s3.list_objects_v2(Bucket=bucket)['Contents'][0]
    assert listed['ETag'] == head['ETag']
    assert listed['Size'] == 4321
    assert abs((listed['LastModified'] - lm).total_seconds()) < 1.0


def test_overwrite_replaces_content(client, bucket):
    client.put_object(Bucket=bucket, Key='ow', Body=b'first version', Metadata={'v': '1'},
                      ContentType='text/plain')
    client.put_object(Bucket=bucket, Key='ow', Body=b'second, longer version', Metadata={'w': '2'})
    got = client.get_object(Bucket=bucket, Key='ow')
    assert got['Body'].read() == b'second, longer version'
    assert got['ETag'] == quoted_etag(b'second, longer version')
    assert got['Metadata'] == {'w': '2'}
    assert got['ContentType'] != 'text/plain'
    client.put_object(Bucket=bucket, Key='ow', Body=b'3')
    head = client.head_object(Bucket=bucket, Key='ow')
    assert head['ContentLength'] == 1
    assert head['ETag'] == quoted_etag(b'3')
    assert [o['Key'] for o in client.list_objects_v2(Bucket=bucket)['Contents']] == ['ow']


# ---------------------------------------------------------------------------------------------
# Delete and missing objects


def test_delete_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key='gone', Body=b'bye')
    resp = s3.delete_object(Bucket=bucket, Key='gone')
    assert status_of(resp) == 204
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='gone')
    assert 'Contents' not in s3.list_objects_v2(Bucket=bucket)


def test_delete_absent_object_is_204(s3, bucket):
    resp = s3.delete_object(Bucket=bucket, Key='never-existed')
    assert status_of(resp) == 204


def test_get_missing_key(s3, bucket):
    with raises_s3('NoSuchKey', 404) as ei:
        s3.get_object(Bucket=bucket, Key='missing/key.txt')
    assert ei.value.response['Error'].get('Key') in (None, 'missing/key.txt')


def test_head_missing_key(s3, bucket):
    with raises_s3('404', 404):
        s3.head_object(Bucket=bucket, Key='missing')


def test_get_from_missing_bucket(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.get_object(Bucket=unique_bucket_name('rs-missing'), Key='k')


def test_head_object_in_missing_bucket(s3):
    with raises_s3('404', 404):
        s3.head_object(Bucket=unique_bucket_name('rs-missing'), Key='k')


def test_put_into_missing_bucket(s3):
    name = unique_bucket_name('rs-missing')
    with raises_s3('NoSuchBucket', 404):
        s3.put_object(Bucket=name, Key='k', Body=b'data')
    with raises_s3('404', 404):
        s3.head_bucket(Bucket=name)


def test_delete_object_in_missing_bucket(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.delete_object(Bucket=unique_bucket_name('rs-missing'), Key='k')


# ---------------------------------------------------------------------------------------------
# Ranges


RANGE_DATA = os.urandom(100)


@pytest.mark.parametrize(
    'range_header, start, end',
    [
        ('bytes=0-9', 0, 9),
        ('bytes=10-', 10, 99),
        ('bytes=-5', 95, 99),
        ('bytes=0-0', 0, 0),
        ('bytes=99-99', 99, 99),
        ('bytes=90-200', 90, 99),  # end past the object is clamped
        ('bytes=-200', 0, 99),  # suffix longer than the object
    ],
)
def test_range_get(client, bucket, range_header, start, end):
    client.put_object(Bucket=bucket, Key='r', Body=RANGE_DATA)
    resp = client.get_object(Bucket=bucket, Key='r', Range=range_header)
    assert status_of(resp) == 206
    assert resp['ContentRange'] == f'bytes {start}-{end}/100'
    assert resp['ContentLength'] == end - start + 1
    assert resp['Body'].read() == RANGE_DATA[start:end + 1]


@pytest.mark.parametrize('range_header', ['bytes=100-', 'bytes=100-200', 'bytes=1000-1001'])
def test_range_start_beyond_size(s3, bucket, range_header):
    s3.put_object(Bucket=bucket, Key='r', Body=RANGE_DATA)
    with raises_s3('InvalidRange', 416):
        s3.get_object(Bucket=bucket, Key='r', Range=range_header)


def test_range_on_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key='empty', Body=b'')
    with raises_s3('InvalidRange', 416):
        s3.get_object(Bucket=bucket, Key='empty', Range='bytes=0-0')


def test_head_with_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key='r', Body=RANGE_DATA)
    resp = s3.head_object(Bucket=bucket, Key='r', Range='bytes=10-19')
    assert status_of(resp) == 206
    assert resp['ContentLength'] == 10
    assert resp['ContentRange'] == 'bytes 10-19/100'


def test_range_over_large_object(client, bucket):
    data = os.urandom(17 * MiB + 3)
    client.put_object(Bucket=bucket, Key='big', Body=data)
    for start, end in [(0, MiB), (8 * MiB - 5, 8 * MiB + 5), (17 * MiB - 10, 17 * MiB + 2)]:
        resp = client.get_object(Bucket=bucket, Key='big', Range=f'bytes={start}-{end}')
        assert status_of(resp) == 206
        assert resp['ContentRange'] == f'bytes {start}-{end}/{len(data)}'
        assert resp['Body'].read() == data[start:end + 1]


# ---------------------------------------------------------------------------------------------
# Conditional requests


@pytest.fixture
def cond_object(s3, bucket):
    data = b'conditional body'
    etag = s3.put_object(Bucket=bucket, Key='c', Body=data)['ETag']
    assert etag == quoted_etag(data)
    return bucket, 'c', data, etag


def test_if_match_right_etag(s3, cond_object):
    bucket, key, data, etag = cond_object
    resp = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)
    assert status_of(resp) == 200
    assert resp['Body'].read() == data


def test_if_match_wrong_etag(s3, cond_object):
    bucket, key, _, _ = cond_object
    with raises_s3('PreconditionFailed', 412):
        s3.get_object(Bucket=bucket, Key=key, IfMatch='"0123456789abcdef0123456789abcdef"')
    with raises_s3('412', 412):
        s3.head_object(Bucket=bucket, Key=key, IfMatch='"0123456789abcdef0123456789abcdef"')


def test_if_none_match_matching_is_304(s3, cond_object):
    bucket, key, _, etag = cond_object
    with raises_s3('304', 304):
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    with raises_s3('304', 304):
        s3.head_object(Bucket=bucket, Key=key, IfNoneMatch=etag)


def test_if_none_match_other_etag(s3, cond_object):
    bucket, key, data, _ = cond_object
    resp = s3.get_object(Bucket=bucket, Key=key, IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    assert status_of(resp) == 200
    assert resp['Body'].read() == data


def test_if_modified_since_future_is_304(s3, cond_object):
    bucket, key, _, _ = cond_object
    with raises_s3('304', 304):
        s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=_now() + datetime.timedelta(days=1))


def test_if_modified_since_past(s3, cond_object):
    bucket, key, data, _ = cond_object
    resp = s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=_now() - datetime.timedelta(days=1))
    assert status_of(resp) == 200
    assert resp['Body'].read() == data


def test_if_unmodified_since_past_is_412(s3, cond_object):
    bucket, key, _, _ = cond_object
    with raises_s3('PreconditionFailed', 412):
        s3.get_object(
            Bucket=bucket, Key=key, IfUnmodifiedSince=_now() - datetime.timedelta(days=1)
        )


def test_if_unmodified_since_future(s3, cond_object):
    bucket, key, data, _ = cond_object
    resp = s3.get_object(
        Bucket=bucket, Key=key, IfUnmodifiedSince=_now() + datetime.timedelta(days=1)
    )
    assert status_of(resp) == 200
    assert resp['Body'].read() == data


def test_if_match_with_range(s3, cond_object):
    """What download_file does for large objects: ranged GET + If-Match of the HEAD ETag."""
    bucket, key, data, etag = cond_object
    resp = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, Range='bytes=5-')
    assert status_of(resp) == 206
    assert resp['Body'].read() == data[5:]
    with raises_s3('PreconditionFailed', 412):
        s3.get_object(Bucket=bucket, Key=key, IfMatch=quoted_etag(b'other'), Range='bytes=5-')


# ---------------------------------------------------------------------------------------------
# upload_file / download_file (single PUT; multipart ones live in test_multipart_transfer.py)


def test_upload_download_file_1kib(client, bucket, tmp_path):
    src = tmp_path / 'one-kib.bin'
    src.write_bytes(os.urandom(1024))
    client.upload_file(str(src), bucket, 'dir/one-kib.bin')
    head = client.head_object(Bucket=bucket, Key='dir/one-kib.bin')
    assert head['ContentLength'] == 1024
    assert head['ETag'] == quoted_etag(src.read_bytes())
    dst = tmp_path / 'one-kib.downloaded'
    client.download_file(bucket, 'dir/one-kib.bin', str(dst))
    assert file_sha256(dst) == file_sha256(src)


def test_download_file_of_large_single_put_object(client, bucket, tmp_path):
    """download_file splits objects over 8 MiB into parallel ranged GETs with If-Match."""
    data = os.urandom(17 * MiB + 12345)
    client.put_object(Bucket=bucket, Key='large-single', Body=data)
    dst = tmp_path / 'large-single.bin'
    client.download_file(bucket, 'large-single', str(dst))
    assert dst.stat().st_size == len(data)
    assert file_sha256(dst) == hashlib.sha256(data).hexdigest()


def test_conditional_writes(s3, bucket):
    """If-None-Match: * creates only; If-Match replaces only the named version (S3 conditional writes)."""
    first = s3.put_object(Bucket=bucket, Key='cw', Body=b'one', IfNoneMatch='*')
    assert status_of(first) == 200
    with raises_s3('PreconditionFailed', 412):
        s3.put_object(Bucket=bucket, Key='cw', Body=b'two', IfNoneMatch='*')
    assert s3.get_object(Bucket=bucket, Key='cw')['Body'].read() == b'one'
    with raises_s3('PreconditionFailed', 412):
        s3.put_object(Bucket=bucket, Key='cw', Body=b'three', IfMatch='"0123456789abcdef0123456789abcdef"')
    second = s3.put_object(Bucket=bucket, Key='cw', Body=b'four', IfMatch=first['ETag'])
    assert status_of(second) == 200
    assert s3.get_object(Bucket=bucket, Key='cw')['Body'].read() == b'four'
    with raises_s3('NoSuchKey', 404):
        s3.put_object(Bucket=bucket, Key='cw-missing', Body=b'x', IfMatch=first['ETag'])
    # CompleteMultipartUpload honours If-None-Match too.
    up = s3.create_multipart_upload(Bucket=bucket, Key='cw')
    part = s3.upload_part(Bucket=bucket, Key='cw', UploadId=up['UploadId'], PartNumber=1, Body=b'mp')
    with raises_s3('PreconditionFailed', 412):
        s3.complete_multipart_upload(
            Bucket=bucket, Key='cw', UploadId=up['UploadId'], IfNoneMatch='*',
            MultipartUpload={'Parts': [{'ETag': part['ETag'], 'PartNumber': 1}]})
    assert s3.get_object(Bucket=bucket, Key='cw')['Body'].read() == b'four'
    s3.abort_multipart_upload(Bucket=bucket, Key='cw', UploadId=up['UploadId'])


@pytest.mark.parametrize('extra', [
    {'Tagging': 'project=alpha'},
    {'ServerSideEncryption': 'AES256'},
    {'ServerSideEncryption': 'aws:kms'},
])
def test_tagging_and_encryption_are_refused_not_dropped(s3, bucket, extra):
    """Tags and server-side encryption are not implemented: PutObject, CreateMultipartUpload and
    CopyObject asking for them get 501 NotImplemented and store nothing (not an untagged or
    unencrypted object the client would believe tagged or encrypted)."""
    with raises_s3('NotImplemented', 501):
        s3.put_object(Bucket=bucket, Key='refused', Body=b'x', **extra)
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='refused')
    with raises_s3('NotImplemented', 501):
        s3.create_multipart_upload(Bucket=bucket, Key='refused-mp', **extra)
    assert s3.list_multipart_uploads(Bucket=bucket).get('Uploads', []) == []
    s3.put_object(Bucket=bucket, Key='plain', Body=b'plain')
    with raises_s3('NotImplemented', 501):
        s3.copy_object(Bucket=bucket, Key='refused-copy', CopySource={'Bucket': bucket, 'Key': 'plain'}, **extra)
    keys = [o['Key'] for o in s3.list_objects_v2(Bucket=bucket).get('Contents', [])]
    assert keys == ['plain']
    # The connection stays usable after the refused PUT body.
    assert s3.get_object(Bucket=bucket, Key='plain')['Body'].read() == b'plain'
