"""Checksum types of multipart uploads (`x-amz-checksum-type`): FULL_OBJECT uploads get the CRC
of the whole object, computed from the parts' CRCs; COMPOSITE uploads the checksum of the parts'
checksums with its `-N` suffix. A checksum sent with CompleteMultipartUpload is the object's (not
the request body's) and must match, or the completion fails with BadDigest and the upload stays.
"""

import base64
import hashlib

import pytest

from s3util import (
    CHECKSUM_FUNCS,
    crc32_b64,
    crc32c_b64,
    crc64nvme_b64,
    raises_s3,
    sha256_b64,
    status_of,
)

MIB = 1024 * 1024
# Three parts as in the public s3-tests suite: 5 MiB of 'A', 'B', 'C'.
PARTS = [bytes([c]) * (5 * MIB) for c in b'ABC']


def _upload(s3, bucket, key, algorithm, checksum_type=None, part_checksums=True, parts=PARTS):
    args = {'ChecksumAlgorithm': algorithm}
    if checksum_type:
        args['ChecksumType'] = checksum_type
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, **args)
    assert created['ChecksumAlgorithm'] == algorithm
    upload_id = created['UploadId']
    listed = []
    for n, body in enumerate(parts, start=1):
        # The value itself, not ChecksumAlgorithm: boto3 needs awscrt to compute CRC32C.
        extra = {f'Checksum{algorithm}': CHECKSUM_FUNCS[algorithm](body)} if part_checksums else {}
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=body,
                           **extra)
        part = {'PartNumber': n, 'ETag': r['ETag']}
        if f'Checksum{algorithm}' in r:
            part[f'Checksum{algorithm}'] = r[f'Checksum{algorithm}']
        listed.append(part)
    return created, upload_id, listed


def _complete(s3, bucket, key, upload_id, listed, **checksum):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={'Parts': listed}, **checksum)


@pytest.mark.parametrize('algorithm', ['CRC32', 'CRC32C'])
def test_full_object_upload_gets_the_crc_of_the_whole_object(s3, bucket, algorithm):
    whole = CHECKSUM_FUNCS[algorithm](b''.join(PARTS))
    if algorithm == 'CRC32':
        assert whole == 'WgDhBQ=='  # the value the s3-tests suite expects
    created, upload_id, listed = _upload(s3, bucket, 'full', algorithm, 'FULL_OBJECT')
    assert created['ChecksumType'] == 'FULL_OBJECT'
    parts = s3.list_parts(Bucket=bucket, Key='full', UploadId=upload_id)
    assert parts['ChecksumAlgorithm'] == algorithm and parts['ChecksumType'] == 'FULL_OBJECT'
    uploads = s3.list_multipart_uploads(Bucket=bucket)['Uploads']
    assert [(u['ChecksumAlgorithm'], u['ChecksumType']) for u in uploads] == \
        [(algorithm, 'FULL_OBJECT')]
    # A wrong object checksum fails the completion; the upload is still there to complete.
    wrong = CHECKSUM_FUNCS[algorithm](b'not the object')
    with raises_s3('BadDigest', 400):
        _complete(s3, bucket, 'full', upload_id, listed, **{f'Checksum{algorithm}': wrong})
    done = _complete(s3, bucket, 'full', upload_id, listed, **{f'Checksum{algorithm}': whole})
    assert done['ChecksumType'] == 'FULL_OBJECT'
    assert done[f'Checksum{algorithm}'] == whole
    head = s3.head_object(Bucket=bucket, Key='full', ChecksumMode='ENABLED')
    assert head[f'Checksum{algorithm}'] == whole and head['ChecksumType'] == 'FULL_OBJECT'
    assert head['ETag'].endswith('-3"')


def test_full_object_crc_is_computed_for_parts_sent_without_checksums(server, bucket):
    # CRC64NVME uploads are FULL_OBJECT by default (S3 offers no composite CRC64NVME); the parts
    # carry no checksum here (boto3 told to add none), the server computes the upload's
    # algorithm for each.
    s3 = server.client('when_required')
    parts = [b'x' * (5 * MIB), b'tail bytes']
    created, upload_id, listed = _upload(s3, bucket, 'crc64', 'CRC64NVME', part_checksums=False,
                                         parts=parts)
    assert created['ChecksumType'] == 'FULL_OBJECT'
    done = _complete(s3, bucket, 'crc64', upload_id, listed)
    assert done['ChecksumCRC64NVME'] == crc64nvme_b64(b''.join(parts))
    assert done['ChecksumType'] == 'FULL_OBJECT'


def test_composite_upload_accepts_its_value_with_or_without_the_part_count(s3, bucket):
    digests = b''.join(hashlib.sha256(p).digest() for p in PARTS)
    composite = base64.b64encode(hashlib.sha256(digests).digest()).decode()
    # The s3-tests suite's expected value for these parts.
    assert composite == 'uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4='
    for key, sent in (('with-n', f'{composite}-3'), ('bare', composite)):
        created, upload_id, listed = _upload(s3, bucket, key, 'SHA256')
        assert created['ChecksumType'] == 'COMPOSITE'
        with raises_s3('BadDigest', 400):
            _complete(s3, bucket, key, upload_id, listed, ChecksumSHA256=sha256_b64(b'x'))
        done = _complete(s3, bucket, key, upload_id, listed, ChecksumSHA256=sent)
        assert done['ChecksumSHA256'] == f'{composite}-3'
        assert done['ChecksumType'] == 'COMPOSITE'
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode='ENABLED')
        assert head['ChecksumType'] == 'COMPOSITE'


def test_put_object_checksum_is_full_object(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key='single', Body=b'hello world\n')
    assert r['ChecksumCRC32'] == 'rwg7LQ==' and r['ChecksumType'] == 'FULL_OBJECT'
    head = s3.head_object(Bucket=bucket, Key='single', ChecksumMode='ENABLED')
    assert head['ChecksumType'] == 'FULL_OBJECT'


@pytest.mark.parametrize('algorithm,checksum_type', [
    ('SHA256', 'FULL_OBJECT'),
    ('SHA1', 'FULL_OBJECT'),
    ('CRC64NVME', 'COMPOSITE'),
])
def test_unsupported_algorithm_and_type_pairs_are_refused(s3, bucket, algorithm, checksum_type):
    with raises_s3('InvalidRequest', 400):
        s3.create_multipart_upload(Bucket=bucket, Key='k', ChecksumAlgorithm=algorithm,
                                   ChecksumType=checksum_type)
    assert s3.list_multipart_uploads(Bucket=bucket).get('Uploads', []) == []


def test_type_without_algorithm_and_unknown_type_are_refused(s3, bucket):
    def type_header(value):
        def add(request, **_):
            request.headers['x-amz-checksum-type'] = value
        return add

    for value, algorithm in (('FULL_OBJECT', None), ('PARTIAL', 'CRC32')):
        handler = type_header(value)
        s3.meta.events.register('before-sign.s3.CreateMultipartUpload', handler)
        try:
            extra = {'ChecksumAlgorithm': algorithm} if algorithm else {}
            with raises_s3('InvalidRequest', 400):
                s3.create_multipart_upload(Bucket=bucket, Key='k', **extra)
        finally:
            s3.meta.events.unregister('before-sign.s3.CreateMultipartUpload', handler)


def test_completion_checksum_of_another_algorithm_is_refused(s3, bucket):
    _, upload_id, listed = _upload(s3, bucket, 'k', 'CRC32', 'FULL_OBJECT', parts=[b'small'])
    with raises_s3('InvalidRequest', 400):
        _complete(s3, bucket, 'k', upload_id, listed, ChecksumCRC32C=crc32c_b64(b'small'))
    # An upload created without an algorithm has no checksum to compare with.
    plain = s3.create_multipart_upload(Bucket=bucket, Key='plain')['UploadId']
    etag = s3.upload_part(Bucket=bucket, Key='plain', UploadId=plain, PartNumber=1,
                          Body=b'p')['ETag']
    with raises_s3('InvalidRequest', 400):
        _complete(s3, bucket, 'plain', plain, [{'PartNumber': 1, 'ETag': etag}],
                  ChecksumCRC32=crc32_b64(b'p'))
    done = _complete(s3, bucket, 'k', upload_id, listed, ChecksumCRC32=crc32_b64(b'small'))
    assert status_of(done) == 200


@pytest.mark.parametrize('restart', ['clean', 'kill'])
def test_full_object_type_survives_a_restart(make_server, restart):
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket='types')
    parts = [b'1' * (5 * MIB), b'2' * 10]
    _, upload_id, listed = _upload(s3, 'types', 'k', 'CRC32', 'FULL_OBJECT', parts=parts)
    if restart == 'clean':
        assert server.restart() == 0
    else:
        server.kill_and_start()
    s3 = server.client()
    assert s3.list_parts(Bucket='types', Key='k', UploadId=upload_id)['ChecksumType'] == \
        'FULL_OBJECT'
    done = _complete(s3, 'types', 'k', upload_id, listed)
    assert done['ChecksumCRC32'] == crc32_b64(b''.join(parts))
    assert done['ChecksumType'] == 'FULL_OBJECT'
    server.kill_and_start()
    head = server.client().head_object(Bucket='types', Key='k', ChecksumMode='ENABLED')
    assert head['ChecksumCRC32'] == crc32_b64(b''.join(parts))
    assert head['ChecksumType'] == 'FULL_OBJECT'
