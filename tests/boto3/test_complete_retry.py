"""A repeated CompleteMultipartUpload (an SDK retrying after a lost response) answers 200 with
the first answer's ETag, checksum and location while the completed object is still the key's
current version, also after a clean restart (checkpoint) and after a kill (log replay); once
the key is overwritten or deleted, the upload is gone: NoSuchUpload."""

import os

import pytest

from s3util import raises_s3, status_of

MiB = 1024 * 1024
FIELDS = ('ETag', 'ChecksumCRC32', 'Location', 'Bucket', 'Key')


def _upload(s3, bucket, key):
    """A two-part upload with CRC32 checksums; returns (upload id, parts document)."""
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm='CRC32')['UploadId']
    parts = []
    for n, body in ((1, os.urandom(5 * MiB)), (2, b'tail')):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=body,
                           ChecksumAlgorithm='CRC32')
        parts.append({'ETag': r['ETag'], 'PartNumber': n, 'ChecksumCRC32': r['ChecksumCRC32']})
    return up, {'Parts': parts}


def _complete(s3, bucket, key, up, parts):
    resp = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                        MultipartUpload=parts)
    assert status_of(resp) == 200
    return {f: resp.get(f) for f in FIELDS}


@pytest.mark.parametrize('restart', ['none', 'clean', 'kill'])
def test_repeated_complete_answers_as_the_first(make_server, restart):
    srv = make_server()
    s3 = srv.client()
    s3.create_bucket(Bucket='retry')
    up, parts = _upload(s3, 'retry', 'obj')
    first = _complete(s3, 'retry', 'obj', up, parts)
    assert first['ETag'].endswith('-2"') and first['ChecksumCRC32']
    assert _complete(s3, 'retry', 'obj', up, parts) == first
    if restart == 'clean':
        assert srv.restart() == 0
    elif restart == 'kill':
        srv.kill_and_start()
    s3 = srv.client()
    assert _complete(s3, 'retry', 'obj', up, parts) == first
    assert s3.list_multipart_uploads(Bucket='retry').get('Uploads', []) == []
    # Another key never was this upload's object.
    with raises_s3('NoSuchUpload', 404):
        _complete(s3, 'retry', 'other', up, parts)
    # Overwritten: the upload is gone.
    s3.put_object(Bucket='retry', Key='obj', Body=b'new')
    with raises_s3('NoSuchUpload', 404):
        _complete(s3, 'retry', 'obj', up, parts)


def test_repeated_complete_after_delete_is_no_such_upload(s3, bucket):
    up, parts = _upload(s3, bucket, 'gone')
    _complete(s3, bucket, 'gone', up, parts)
    s3.delete_object(Bucket=bucket, Key='gone')
    with raises_s3('NoSuchUpload', 404):
        _complete(s3, bucket, 'gone', up, parts)


def test_complete_of_an_aborted_upload_stays_no_such_upload(s3, bucket):
    up, parts = _upload(s3, bucket, 'ab')
    s3.abort_multipart_upload(Bucket=bucket, Key='ab', UploadId=up)
    with raises_s3('NoSuchUpload', 404):
        _complete(s3, bucket, 'ab', up, parts)
