"""The multipart API surface, operation by operation, with boto3's low-level calls.

CreateMultipartUpload (metadata, checksum algorithm), UploadPart (any order, replacing a part,
checksum echo), CompleteMultipartUpload (ETag, composite checksum, part list with and without
checksums, up to 10000 listed parts), reads of the result (full, ranges across part boundaries,
`partNumber`), every documented error, ListParts / ListMultipartUploads pagination, UploadPartCopy,
uploads surviving a restart, no part data left behind on disk, concurrent part uploads, and reads
racing an overwrite of a multipart object. (The seed guide's section 5.2 verbatim and
upload_file/download_file are in test_multipart_transfer.py.)
"""

import hashlib
import os
import struct
import threading
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import make_client
from s3util import (
    crc32_b64,
    multipart_etag,
    quoted_etag,
    raises_s3,
    sigv4_sign,
    status_of,
    unique_bucket_name,
)

MiB = 1024 * 1024
MIN_PART = 5 * MiB
CLIENT_KINDS = ['default', 'when_required']


# ---------------------------------------------------------------------------------------------
# Helpers


def composite_crc32(parts):
    """S3's composite CRC32 of a multipart object: CRC32 of the parts' raw CRC32s, '-N'."""
    raw = b''.join(struct.pack('>I', zlib.crc32(p) & 0xFFFFFFFF) for p in parts)
    return f'{crc32_b64(raw)}-{len(parts)}'


def upload_parts(s3, bucket, key, upload_id, parts, first=1, **extra):
    """Uploads `parts` as part numbers first, first+1, ...; returns the Complete part list."""
    listed = []
    for i, data in enumerate(parts):
        n = first + i
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data,
                           **extra)
        assert r['ETag'] == quoted_etag(data), n
        listed.append({'ETag': r['ETag'], 'PartNumber': n})
    return listed


def complete(s3, bucket, key, upload_id, parts):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={'Parts': parts})


def multipart_object(s3, bucket, key, parts, **create_extra):
    """Creates, uploads and completes a multipart object; returns (upload_id, complete response)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_extra)['UploadId']
    listed = upload_parts(s3, bucket, key, upload_id, parts)
    return upload_id, complete(s3, bucket, key, upload_id, listed)


def get_bytes(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)['Body'].read()


def same_bytes(a, b):
    """Compare large byte strings without pytest printing megabytes on failure."""
    return len(a) == len(b) and hashlib.sha256(a).digest() == hashlib.sha256(b).digest()


def bucket_dir(server, bucket):
    return server.data_dir / 'buckets' / bucket


def tree_size(path):
    """Total size of every regular file under `path`."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except FileNotFoundError:
                pass
    return total


def tree_files(path):
    """Relative paths of every regular file under `path`, sorted."""
    out = []
    for root, _dirs, files in os.walk(path):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), path))
    return sorted(out)


def objects_bytes(server, bucket):
    """Bytes in DATA/buckets/NAME/objects: the files of file-backed objects (small objects live
    in the log, see README, on-disk format)."""
    return tree_size(bucket_dir(server, bucket) / 'objects')


def uploads_entries(server, bucket):
    d = bucket_dir(server, bucket) / 'uploads'
    return sorted(os.listdir(d)) if d.exists() else []


def parts_of(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------------------------------------
# CreateMultipartUpload


def test_create_keeps_content_type_and_metadata_on_the_object(s3, bucket):
    resp = s3.create_multipart_upload(
        Bucket=bucket, Key='meta.bin', ContentType='text/plain; charset=utf-8',
        CacheControl='no-cache', ContentDisposition='attachment; filename="m.txt"',
        Metadata={'color': 'blue', 'Mixed-Case': 'Some Value'},
    )
    assert resp['Bucket'] == bucket and resp['Key'] == 'meta.bin'
    upload_id = resp['UploadId']
    assert upload_id
    p1, p2 = os.urandom(MIN_PART), b'tail bytes'
    # The parts carry no metadata of their own: what Create got is what the object gets.
    listed = upload_parts(s3, bucket, 'meta.bin', upload_id, [p1, p2])
    complete(s3, bucket, 'meta.bin', upload_id, listed)
    for r in (s3.head_object(Bucket=bucket, Key='meta.bin'),
              s3.get_object(Bucket=bucket, Key='meta.bin')):
        assert r['ContentType'] == 'text/plain; charset=utf-8'
        assert r['CacheControl'] == 'no-cache'
        assert r['ContentDisposition'] == 'attachment; filename="m.txt"'
        assert r['Metadata'] == {'color': 'blue', 'mixed-case': 'Some Value'}
        assert r['ContentLength'] == MIN_PART + len(p2)
        assert r['ETag'] == multipart_etag([p1, p2])


def test_create_without_content_type_gives_the_default(s3, bucket):
    _, done = multipart_object(s3, bucket, 'plain', [b'only part'])
    assert done['ETag'] == multipart_etag([b'only part'])
    head = s3.head_object(Bucket=bucket, Key='plain')
    assert head['ContentType'] == 'binary/octet-stream'
    assert head['Metadata'] == {}


@pytest.mark.parametrize('kind', CLIENT_KINDS)
def test_create_with_checksum_algorithm_crc32(server, bucket, kind):
    s3 = server.client(kind)
    resp = s3.create_multipart_upload(Bucket=bucket, Key='crc.bin', ChecksumAlgorithm='CRC32')
    assert resp.get('ChecksumAlgorithm') == 'CRC32'
    upload_id = resp['UploadId']
    parts = [os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(777)]
    listed = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key='crc.bin', UploadId=upload_id, PartNumber=n,
                           Body=data, ChecksumAlgorithm='CRC32')
        assert r['ETag'] == quoted_etag(data)
        assert r.get('ChecksumCRC32') == crc32_b64(data)
        listed.append({'ETag': r['ETag'], 'PartNumber': n, 'ChecksumCRC32': r['ChecksumCRC32']})

    lp = s3.list_parts(Bucket=bucket, Key='crc.bin', UploadId=upload_id)
    assert lp.get('ChecksumAlgorithm') == 'CRC32'
    assert [(p['PartNumber'], p.get('ChecksumCRC32')) for p in lp['Parts']] == [
        (n, crc32_b64(d)) for n, d in enumerate(parts, 1)]
    ups = s3.list_multipart_uploads(Bucket=bucket)['Uploads']
    assert [(u['Key'], u['UploadId'], u.get('ChecksumAlgorithm')) for u in ups] == [
        ('crc.bin', upload_id, 'CRC32')]

    done = complete(s3, bucket, 'crc.bin', upload_id, listed)
    assert done['ETag'] == multipart_etag(parts)
    assert done.get('ChecksumCRC32') == composite_crc32(parts)
    head = s3.head_object(Bucket=bucket, Key='crc.bin', ChecksumMode='ENABLED')
    assert head.get('ChecksumCRC32') == composite_crc32(parts)
    assert head['ContentLength'] == sum(map(len, parts))
    # boto3 does not validate composite ('-N') checksums, so the full GET just works.
    assert same_bytes(get_bytes(s3, bucket, 'crc.bin', ChecksumMode='ENABLED'), b''.join(parts))
    # Never a full-object checksum on a part or a range.
    r = s3.get_object(Bucket=bucket, Key='crc.bin', PartNumber=3, ChecksumMode='ENABLED')
    assert r['Body'].read() == parts[2]
    assert not any(h.startswith('x-amz-checksum-crc32')
                   for h in r['ResponseMetadata']['HTTPHeaders'])


def test_create_with_unsupported_checksum_algorithm(server, bucket):
    url = f'{server.endpoint}/{bucket}/k?uploads'
    hdrs = sigv4_sign('POST', url, server.access_key, server.secret_key,
                      headers={'x-amz-checksum-algorithm': 'MD17'})
    r = requests.post(url, headers=hdrs, timeout=30)
    assert r.status_code == 400, r.text
    assert '<Code>InvalidRequest</Code>' in r.text
    assert 'Uploads' not in server.client().list_multipart_uploads(Bucket=bucket)


# ---------------------------------------------------------------------------------------------
# UploadPart, CompleteMultipartUpload and reading the result


@pytest.mark.parametrize('kind', CLIENT_KINDS)
def test_parts_out_of_order_and_replaced(server, bucket, kind):
    s3 = server.client(kind)
    key = 'ooo.bin'
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)['UploadId']
    p1, p2, p3 = os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(1234)
    etags = {}
    for n, data in ((3, p3), (1, p1), (2, p2)):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)
        assert r['ETag'] == quoted_etag(data)
        if kind == 'default':
            # boto3 sends x-amz-checksum-crc32 on UploadPart by default; it is echoed.
            assert r.get('ChecksumCRC32') == crc32_b64(data)
        else:
            assert 'ChecksumCRC32' not in r
        etags[n] = r['ETag']

    # Re-upload part 2 with other bytes (and another size): it replaces the first one.
    p2b = os.urandom(MIN_PART + 4321)
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=p2b)
    assert r['ETag'] == quoted_etag(p2b)
    old_p2_etag, etags[2] = etags[2], r['ETag']

    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [(p['PartNumber'], p['ETag'], p['Size']) for p in lp['Parts']] == [
        (1, quoted_etag(p1), len(p1)),
        (2, quoted_etag(p2b), len(p2b)),
        (3, quoted_etag(p3), len(p3)),
    ]
    assert lp['IsTruncated'] is False

    # The replaced part's ETag is no longer a part of this upload.
    with raises_s3('InvalidPart', 400):
        complete(s3, bucket, key, upload_id, [{'ETag': etags[1], 'PartNumber': 1},
                                               {'ETag': old_p2_etag, 'PartNumber': 2},
                                               {'ETag': etags[3], 'PartNumber': 3}])

    done = complete(s3, bucket, key, upload_id,
                    [{'ETag': etags[n], 'PartNumber': n} for n in (1, 2, 3)])
    assert done['Bucket'] == bucket and done['Key'] == key
    assert done['ETag'] == multipart_etag([p1, p2b, p3])
    expected_etag = '"%s-3"' % hashlib.md5(
        hashlib.md5(p1).digest() + hashlib.md5(p2b).digest() + hashlib.md5(p3).digest()
    ).hexdigest()
    assert done['ETag'] == expected_etag
    data = p1 + p2b + p3
    size = len(data)

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head['ContentLength'] == size
    assert head['ETag'] == expected_etag
    assert 'PartsCount' not in head
    got = s3.get_object(Bucket=bucket, Key=key)
    assert status_of(got) == 200 and got['ETag'] == expected_etag
    assert same_bytes(got['Body'].read(), data)
    listed = s3.list_objects_v2(Bucket=bucket)['Contents']
    assert [(o['Key'], o['Size'], o['ETag']) for o in listed] == [(key, size, expected_etag)]

    # Ranges across part boundaries.
    b1, b2 = len(p1), len(p1) + len(p2b)
    for start, end in [(b1 - 10, b1 + 9),          # last 10 of part 1 + first 10 of part 2
                       (b2 - 1, b2),               # one byte each side of the 2/3 boundary
                       (b1 - 1, b2),               # all of part 2 plus a byte each side
                       (0, size - 1),
                       (b1, b1),
                       (b2, size - 1)]:
        r = s3.get_object(Bucket=bucket, Key=key, Range=f'bytes={start}-{end}')
        assert status_of(r) == 206
        assert r['ContentRange'] == f'bytes {start}-{end}/{size}'
        assert r['ContentLength'] == end - start + 1
        assert same_bytes(r['Body'].read(), data[start:end + 1]), (start, end)
    r = s3.get_object(Bucket=bucket, Key=key, Range=f'bytes=-{len(p3) + 5}')
    assert r['Body'].read() == data[-(len(p3) + 5):]

    # GET / HEAD ?partNumber=N return exactly part N, with x-amz-mp-parts-count.
    for n, part, start in ((1, p1, 0), (2, p2b, b1), (3, p3, b2)):
        r = s3.get_object(Bucket=bucket, Key=key, PartNumber=n)
        assert status_of(r) == 206
        assert r['ContentLength'] == len(part)
        assert r['PartsCount'] == 3
        assert r['ContentRange'] == f'bytes {start}-{start + len(part) - 1}/{size}'
        assert r['ETag'] == expected_etag
        assert same_bytes(r['Body'].read(), part), n
        h = s3.head_object(Bucket=bucket, Key=key, PartNumber=n)
        assert h['ContentLength'] == len(part) and h['PartsCount'] == 3


@pytest.mark.parametrize('part_number', [4, 10000])
def test_get_part_number_beyond_the_parts_is_416(s3, bucket, part_number):
    multipart_object(s3, bucket, 'two', [os.urandom(MIN_PART), b'x'])
    # S3: 416 InvalidPartNumber "The requested partnumber is not satisfiable".
    with raises_s3('InvalidPartNumber', 416):
        s3.get_object(Bucket=bucket, Key='two', PartNumber=part_number)
    with raises_s3('416', 416):
        s3.head_object(Bucket=bucket, Key='two', PartNumber=part_number)


def test_upload_part_response_and_etag_forms(s3, bucket):
    """ETags in the Complete list are accepted with or without their quotes."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='q')['UploadId']
    parts = [os.urandom(MIN_PART), os.urandom(10)]
    listed = upload_parts(s3, bucket, 'q', upload_id, parts)
    listed[0]['ETag'] = listed[0]['ETag'].strip('"')
    done = complete(s3, bucket, 'q', upload_id, listed)
    assert done['ETag'] == multipart_etag(parts)
    assert same_bytes(get_bytes(s3, bucket, 'q'), b''.join(parts))


@pytest.mark.parametrize('with_checksums', [True, False], ids=['with-crc32', 'without-crc32'])
@pytest.mark.parametrize('algorithm', [None, 'CRC32'], ids=['plain-upload', 'crc32-upload'])
def test_complete_with_and_without_part_checksums(s3, bucket, with_checksums, algorithm):
    """s3transfer lists <ChecksumCRC32> per part only when UploadPart echoed it: accept both."""
    extra = {'ChecksumAlgorithm': algorithm} if algorithm else {}
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='c', **extra)['UploadId']
    parts = [os.urandom(MIN_PART), os.urandom(3333)]
    listed = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key='c', UploadId=upload_id, PartNumber=n, Body=data)
        assert r.get('ChecksumCRC32') == crc32_b64(data)  # default client: CRC32 on every part
        entry = {'ETag': r['ETag'], 'PartNumber': n}
        if with_checksums:
            entry['ChecksumCRC32'] = r['ChecksumCRC32']
        listed.append(entry)
    done = complete(s3, bucket, 'c', upload_id, listed)
    assert done['ETag'] == multipart_etag(parts)
    if algorithm:
        assert done.get('ChecksumCRC32') == composite_crc32(parts)
    assert same_bytes(get_bytes(s3, bucket, 'c'), b''.join(parts))


def test_single_part_upload_of_any_size(client, bucket):
    # The last (here: only) part may be smaller than 5 MiB, even empty.
    for key, data in (('one-byte', b'z'), ('empty', b'')):
        _, done = multipart_object(client, bucket, key, [data])
        assert done['ETag'] == multipart_etag([data])
        assert get_bytes(client, bucket, key) == data
        assert client.head_object(Bucket=bucket, Key=key)['ContentLength'] == len(data)


def test_part_numbers_with_gaps(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='gaps')['UploadId']
    parts = {2: os.urandom(MIN_PART), 7: os.urandom(MIN_PART), 10000: b'last'}
    listed = []
    for n in (10000, 2, 7):
        r = s3.upload_part(Bucket=bucket, Key='gaps', UploadId=upload_id, PartNumber=n,
                           Body=parts[n])
        listed.append({'ETag': r['ETag'], 'PartNumber': n})
    listed.sort(key=lambda p: p['PartNumber'])
    done = complete(s3, bucket, 'gaps', upload_id, listed)
    ordered = [parts[n] for n in (2, 7, 10000)]
    assert done['ETag'] == multipart_etag(ordered)
    assert same_bytes(get_bytes(s3, bucket, 'gaps'), b''.join(ordered))


# ---------------------------------------------------------------------------------------------
# Errors


def test_complete_invalid_part(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    parts = [os.urandom(MIN_PART), b'end']
    listed = upload_parts(s3, bucket, 'k', upload_id, parts)
    # Wrong ETag for an uploaded part.
    with raises_s3('InvalidPart', 400):
        complete(s3, bucket, 'k', upload_id,
                 [listed[0], {'ETag': quoted_etag(b'other'), 'PartNumber': 2}])
    # A part that was never uploaded.
    with raises_s3('InvalidPart', 400):
        complete(s3, bucket, 'k', upload_id,
                 listed + [{'ETag': quoted_etag(b'never'), 'PartNumber': 3}])
    with raises_s3('InvalidPart', 400):
        complete(s3, bucket, 'k', upload_id, [{'ETag': listed[1]['ETag'], 'PartNumber': 1}])
    # The failed attempts changed nothing: the upload completes normally afterwards.
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='k')
    done = complete(s3, bucket, 'k', upload_id, listed)
    assert done['ETag'] == multipart_etag(parts)


def test_complete_invalid_part_order(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    parts = [os.urandom(MIN_PART), os.urandom(MIN_PART), b'end']
    listed = upload_parts(s3, bucket, 'k', upload_id, parts)
    with raises_s3('InvalidPartOrder', 400):
        complete(s3, bucket, 'k', upload_id, list(reversed(listed)))
    with raises_s3('InvalidPartOrder', 400):
        complete(s3, bucket, 'k', upload_id, [listed[0], listed[2], listed[1]])
    with raises_s3('InvalidPartOrder', 400):  # the same part twice is not ascending either
        complete(s3, bucket, 'k', upload_id, [listed[0], listed[0], listed[2]])
    assert complete(s3, bucket, 'k', upload_id, listed)['ETag'] == multipart_etag(parts)


def test_complete_entity_too_small(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    parts = [os.urandom(MIN_PART - 1), os.urandom(MIN_PART), b'end']
    listed = upload_parts(s3, bucket, 'k', upload_id, parts)
    with raises_s3('EntityTooSmall', 400):
        complete(s3, bucket, 'k', upload_id, listed)
    # Only the non-last parts count: without part 1 the upload is fine.
    assert complete(s3, bucket, 'k', upload_id, listed[1:])['ETag'] == multipart_etag(parts[1:])
    assert same_bytes(get_bytes(s3, bucket, 'k'), parts[1] + parts[2])


def test_no_such_upload(s3, bucket):
    bogus = '0123456789abcdef0123456789abcdef'
    for bad_id in (bogus, 'not-an-upload-id', 'ABC/../x'):
        with raises_s3('NoSuchUpload', 404):
            s3.upload_part(Bucket=bucket, Key='k', UploadId=bad_id, PartNumber=1, Body=b'x')
        with raises_s3('NoSuchUpload', 404):
            s3.list_parts(Bucket=bucket, Key='k', UploadId=bad_id)
        with raises_s3('NoSuchUpload', 404):
            complete(s3, bucket, 'k', bad_id, [{'ETag': quoted_etag(b'x'), 'PartNumber': 1}])
        with raises_s3('NoSuchUpload', 404):
            s3.abort_multipart_upload(Bucket=bucket, Key='k', UploadId=bad_id)

    # An upload id is bound to its key.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='right')['UploadId']
    with raises_s3('NoSuchUpload', 404):
        s3.upload_part(Bucket=bucket, Key='wrong', UploadId=upload_id, PartNumber=1, Body=b'x')
    with raises_s3('NoSuchUpload', 404):
        s3.list_parts(Bucket=bucket, Key='wrong', UploadId=upload_id)

    # After abort.
    listed = upload_parts(s3, bucket, 'right', upload_id, [b'data'])
    assert status_of(s3.abort_multipart_upload(Bucket=bucket, Key='right',
                                               UploadId=upload_id)) == 204
    with raises_s3('NoSuchUpload', 404):
        s3.upload_part(Bucket=bucket, Key='right', UploadId=upload_id, PartNumber=2, Body=b'x')
    with raises_s3('NoSuchUpload', 404):
        s3.list_parts(Bucket=bucket, Key='right', UploadId=upload_id)
    with raises_s3('NoSuchUpload', 404):
        complete(s3, bucket, 'right', upload_id, listed)
    with raises_s3('NoSuchUpload', 404):
        s3.abort_multipart_upload(Bucket=bucket, Key='right', UploadId=upload_id)
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='right')

    # After complete.
    upload_id, _ = multipart_object(s3, bucket, 'done', [b'abc'])
    with raises_s3('NoSuchUpload', 404):
        s3.upload_part(Bucket=bucket, Key='done', UploadId=upload_id, PartNumber=2, Body=b'x')
    with raises_s3('NoSuchUpload', 404):
        s3.list_parts(Bucket=bucket, Key='done', UploadId=upload_id)
    # A repeated Complete answers as the first did (test_complete_retry.py has the details).
    again = complete(s3, bucket, 'done', upload_id, [{'ETag': quoted_etag(b'abc'), 'PartNumber': 1}])
    assert again['ETag'] == s3.head_object(Bucket=bucket, Key='done')['ETag']
    with raises_s3('NoSuchUpload', 404):
        s3.abort_multipart_upload(Bucket=bucket, Key='done', UploadId=upload_id)
    assert get_bytes(s3, bucket, 'done') == b'abc'  # the failed calls did not touch the object
    assert 'Uploads' not in s3.list_multipart_uploads(Bucket=bucket)


@pytest.mark.parametrize('part_number', [0, 10001, -1])
def test_part_number_out_of_range(s3, bucket, part_number):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    with raises_s3('InvalidArgument', 400):
        s3.upload_part(Bucket=bucket, Key='k', UploadId=upload_id, PartNumber=part_number,
                       Body=b'x')
    s3.put_object(Bucket=bucket, Key='src', Body=b'source')
    with raises_s3('InvalidArgument', 400):
        s3.upload_part_copy(Bucket=bucket, Key='k', UploadId=upload_id, PartNumber=part_number,
                            CopySource={'Bucket': bucket, 'Key': 'src'})
    assert s3.list_parts(Bucket=bucket, Key='k', UploadId=upload_id).get('Parts', []) == []
    # The limits themselves are fine.
    for n in (1, 10000):
        s3.upload_part(Bucket=bucket, Key='k', UploadId=upload_id, PartNumber=n, Body=b'x')
    assert [p['PartNumber'] for p in s3.list_parts(Bucket=bucket, Key='k',
                                                    UploadId=upload_id)['Parts']] == [1, 10000]


def test_complete_with_empty_part_list_is_malformed_xml(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    upload_parts(s3, bucket, 'k', upload_id, [b'data'])
    # S3 answers 400 MalformedXML for a CompleteMultipartUpload that lists no part.
    with raises_s3('MalformedXML', 400):
        complete(s3, bucket, 'k', upload_id, [])
    with raises_s3('MalformedXML', 400):
        s3.complete_multipart_upload(Bucket=bucket, Key='k', UploadId=upload_id,
                                     MultipartUpload={})
    # The upload is still there.
    assert len(s3.list_parts(Bucket=bucket, Key='k', UploadId=upload_id)['Parts']) == 1


def test_no_such_bucket(s3):
    missing = unique_bucket_name('rs-missing')
    with raises_s3('NoSuchBucket', 404):
        s3.create_multipart_upload(Bucket=missing, Key='k')
    with raises_s3('NoSuchBucket', 404):
        s3.list_multipart_uploads(Bucket=missing)
    with raises_s3('NoSuchBucket', 404):
        s3.list_parts(Bucket=missing, Key='k', UploadId='0123456789abcdef0123456789abcdef')
    with raises_s3('NoSuchBucket', 404):
        s3.upload_part(Bucket=missing, Key='k', UploadId='0123456789abcdef0123456789abcdef',
                       PartNumber=1, Body=b'x')


# ---------------------------------------------------------------------------------------------
# ListParts and ListMultipartUploads


def test_list_parts_pagination(client, bucket):
    upload_id = client.create_multipart_upload(Bucket=bucket, Key='lp')['UploadId']
    numbers = [1, 2, 3, 5, 8, 13, 21]
    data = {n: os.urandom(100 + n) for n in numbers}
    for n in reversed(numbers):
        client.upload_part(Bucket=bucket, Key='lp', UploadId=upload_id, PartNumber=n,
                           Body=data[n])

    first = client.list_parts(Bucket=bucket, Key='lp', UploadId=upload_id, MaxParts=2)
    assert first['IsTruncated'] is True
    assert first['MaxParts'] == 2
    assert [p['PartNumber'] for p in first['Parts']] == [1, 2]
    assert first['NextPartNumberMarker'] == 2
    assert first['Bucket'] == bucket and first['Key'] == 'lp' and first['UploadId'] == upload_id
    mid = client.list_parts(Bucket=bucket, Key='lp', UploadId=upload_id, MaxParts=2,
                            PartNumberMarker=3)
    assert [p['PartNumber'] for p in mid['Parts']] == [5, 8]
    assert mid['PartNumberMarker'] == 3

    seen = []
    pages = 0
    for page in client.get_paginator('list_parts').paginate(
            Bucket=bucket, Key='lp', UploadId=upload_id, PaginationConfig={'PageSize': 2}):
        pages += 1
        assert len(page.get('Parts', [])) <= 2
        seen.extend(page.get('Parts', []))
    assert pages == 4
    assert [p['PartNumber'] for p in seen] == numbers
    for p in seen:
        n = p['PartNumber']
        assert p['Size'] == len(data[n])
        assert p['ETag'] == quoted_etag(data[n])
        assert p['LastModified'] is not None
    last = client.list_parts(Bucket=bucket, Key='lp', UploadId=upload_id, PartNumberMarker=21)
    assert last.get('Parts', []) == [] and last['IsTruncated'] is False


def _create_uploads(s3, bucket, keys):
    uploads = []
    for key in keys:
        uploads.append((key, s3.create_multipart_upload(Bucket=bucket, Key=key)['UploadId']))
        time.sleep(0.005)  # distinct initiation times: S3 orders a key's uploads by them
    return uploads


def test_list_multipart_uploads(client, bucket):
    keys = ['a/1', 'c', 'a/1', 'a/2', 'b/x y ü', 'd/e/f', 'a/1/deeper', 'e']
    created = _create_uploads(client, bucket, keys)
    # Sorted by key (UTF-8 bytes), then initiation time.
    expected = sorted(created, key=lambda u: u[0].encode())
    first_a1, second_a1 = [u for u in created if u[0] == 'a/1']
    assert expected.index(first_a1) < expected.index(second_a1)

    resp = client.list_multipart_uploads(Bucket=bucket)
    assert resp['Bucket'] == bucket
    assert resp['IsTruncated'] is False
    assert [(u['Key'], u['UploadId']) for u in resp['Uploads']] == expected
    for u in resp['Uploads']:
        assert u['Initiated'] is not None and u['StorageClass'] == 'STANDARD'

    # Pagination with KeyMarker / UploadIdMarker through the paginator: each upload once.
    for size in (1, 2, 3):
        seen = []
        for page in client.get_paginator('list_multipart_uploads').paginate(
                Bucket=bucket, PaginationConfig={'PageSize': size}):
            assert len(page.get('Uploads', [])) <= size
            seen.extend((u['Key'], u['UploadId']) for u in page.get('Uploads', []))
        assert seen == expected, size

    # The markers by hand: after the first upload of a/1 comes the second one.
    r = client.list_multipart_uploads(Bucket=bucket, KeyMarker='a/1', UploadIdMarker=first_a1[1])
    after_first = expected[expected.index(first_a1) + 1:]
    assert [(u['Key'], u['UploadId']) for u in r['Uploads']] == after_first
    # KeyMarker alone: uploads of keys after it.
    r = client.list_multipart_uploads(Bucket=bucket, KeyMarker='a/1')
    assert [u['Key'] for u in r['Uploads']] == [k for k, _ in expected if k.encode() > b'a/1']
    r = client.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert r['IsTruncated'] is True
    assert (r['NextKeyMarker'], r['NextUploadIdMarker']) == expected[1]

    # Prefix.
    r = client.list_multipart_uploads(Bucket=bucket, Prefix='a/')
    assert [(u['Key'], u['UploadId']) for u in r['Uploads']] == [
        u for u in expected if u[0].startswith('a/')]
    assert r['Prefix'] == 'a/'
    r = client.list_multipart_uploads(Bucket=bucket, Prefix='zzz')
    assert 'Uploads' not in r

    # Delimiter: keys with the delimiter after the prefix roll up into CommonPrefixes.
    r = client.list_multipart_uploads(Bucket=bucket, Delimiter='/')
    assert [u['Key'] for u in r['Uploads']] == ['c', 'e']
    assert [p['Prefix'] for p in r['CommonPrefixes']] == ['a/', 'b/', 'd/']
    r = client.list_multipart_uploads(Bucket=bucket, Delimiter='/', Prefix='a/')
    assert [(u['Key'], u['UploadId']) for u in r['Uploads']] == [
        u for u in expected if u[0] in ('a/1', 'a/2')]
    assert [p['Prefix'] for p in r['CommonPrefixes']] == ['a/1/']
    r = client.list_multipart_uploads(Bucket=bucket, Delimiter='/', Prefix='d/')
    assert 'Uploads' not in r
    assert [p['Prefix'] for p in r['CommonPrefixes']] == ['d/e/']

    # Delimiter + paginator: every upload and every common prefix exactly once.
    for size in (1, 2):
        uploads, prefixes = [], []
        for page in client.get_paginator('list_multipart_uploads').paginate(
                Bucket=bucket, Delimiter='/', PaginationConfig={'PageSize': size}):
            assert len(page.get('Uploads', [])) + len(page.get('CommonPrefixes', [])) <= size
            uploads.extend(u['Key'] for u in page.get('Uploads', []))
            prefixes.extend(p['Prefix'] for p in page.get('CommonPrefixes', []))
        assert uploads == ['c', 'e'], size
        assert prefixes == ['a/', 'b/', 'd/'], size

    # Completed and aborted uploads leave the listing.
    client.abort_multipart_upload(Bucket=bucket, Key='c', UploadId=dict(created)['c'])
    client.upload_part(Bucket=bucket, Key='e', UploadId=dict(created)['e'], PartNumber=1,
                       Body=b'e')
    complete(client, bucket, 'e', dict(created)['e'],
             [{'ETag': quoted_etag(b'e'), 'PartNumber': 1}])
    r = client.list_multipart_uploads(Bucket=bucket)
    assert [(u['Key'], u['UploadId']) for u in r['Uploads']] == [
        u for u in expected if u[0] not in ('c', 'e')]


def test_list_multipart_uploads_empty(s3, bucket):
    r = s3.list_multipart_uploads(Bucket=bucket)
    assert status_of(r) == 200
    assert 'Uploads' not in r and r['IsTruncated'] is False


# ---------------------------------------------------------------------------------------------
# UploadPartCopy


def test_upload_part_copy(s3, bucket):
    src = os.urandom(MIN_PART + 1000)
    small = os.urandom(777)
    s3.put_object(Bucket=bucket, Key='src/big', Body=src)
    s3.put_object(Bucket=bucket, Key='src/small ü', Body=small)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']

    start, end = 100, 100 + MIN_PART - 1
    r1 = s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=1,
                             CopySource={'Bucket': bucket, 'Key': 'src/big'},
                             CopySourceRange=f'bytes={start}-{end}')
    assert r1['CopyPartResult']['ETag'] == quoted_etag(src[start:end + 1])
    assert r1['CopyPartResult']['LastModified'] is not None
    r2 = s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=2,
                             CopySource=f'{bucket}/src/small ü')
    assert r2['CopyPartResult']['ETag'] == quoted_etag(small)

    lp = s3.list_parts(Bucket=bucket, Key='dst', UploadId=upload_id)['Parts']
    assert [(p['PartNumber'], p['Size']) for p in lp] == [(1, MIN_PART), (2, len(small))]
    done = complete(s3, bucket, 'dst', upload_id, [
        {'ETag': r1['CopyPartResult']['ETag'], 'PartNumber': 1},
        {'ETag': r2['CopyPartResult']['ETag'], 'PartNumber': 2},
    ])
    expected = src[start:end + 1] + small
    assert done['ETag'] == multipart_etag([src[start:end + 1], small])
    assert same_bytes(get_bytes(s3, bucket, 'dst'), expected)
    # The sources are unchanged.
    assert same_bytes(get_bytes(s3, bucket, 'src/big'), src)


def test_upload_part_copy_from_a_multipart_object_across_its_parts(s3, bucket):
    a, b, c = os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(5000)
    multipart_object(s3, bucket, 'mp-src', [a, b, c])
    whole = a + b + c
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']
    start = MIN_PART - 1000  # spans the 1/2 boundary of the source
    end = start + MIN_PART - 1
    r1 = s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=1,
                             CopySource={'Bucket': bucket, 'Key': 'mp-src'},
                             CopySourceRange=f'bytes={start}-{end}')
    start2 = 2 * MIN_PART - 10  # spans the 2/3 boundary, to the end
    r2 = s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=2,
                             CopySource={'Bucket': bucket, 'Key': 'mp-src'},
                             CopySourceRange=f'bytes={start2}-{len(whole) - 1}')
    complete(s3, bucket, 'dst', upload_id, [
        {'ETag': r1['CopyPartResult']['ETag'], 'PartNumber': 1},
        {'ETag': r2['CopyPartResult']['ETag'], 'PartNumber': 2},
    ])
    assert same_bytes(get_bytes(s3, bucket, 'dst'), whole[start:end + 1] + whole[start2:])


def test_upload_part_copy_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key='src', Body=b'0123456789')
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']
    with raises_s3('NoSuchKey', 404):
        s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=1,
                            CopySource={'Bucket': bucket, 'Key': 'missing'})
    with raises_s3('NoSuchUpload', 404):
        s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId='0123456789abcdef0123456789abcdef',
                            PartNumber=1, CopySource={'Bucket': bucket, 'Key': 'src'})
    assert s3.list_parts(Bucket=bucket, Key='dst', UploadId=upload_id).get('Parts', []) == []


@pytest.mark.parametrize('copy_range', ['bytes=5', '5-8', 'bytes=-3', 'bytes=4-', 'bytes=x-y',
                                        'bytes=6-2', 'bytes=0-1,3-4'])
def test_upload_part_copy_malformed_range(s3, bucket, copy_range):
    """x-amz-copy-source-range must be exactly bytes=first-last (no suffix, no open end)."""
    s3.put_object(Bucket=bucket, Key='src', Body=b'0123456789')
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']
    with raises_s3('InvalidArgument', 400):
        s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=1,
                            CopySource={'Bucket': bucket, 'Key': 'src'},
                            CopySourceRange=copy_range)
    assert s3.list_parts(Bucket=bucket, Key='dst', UploadId=upload_id).get('Parts', []) == []


@pytest.mark.parametrize('copy_range', ['bytes=5-20', 'bytes=10-12', 'bytes=0-10'])
def test_upload_part_copy_range_beyond_the_source(s3, bucket, copy_range):
    """S3 answers 400 InvalidArgument 'Range specified is not valid for source object of size:
    N' when x-amz-copy-source-range reaches past the source; it never copies a shorter part."""
    s3.put_object(Bucket=bucket, Key='src', Body=b'0123456789')
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']
    with raises_s3('InvalidArgument', 400):
        s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=upload_id, PartNumber=1,
                            CopySource={'Bucket': bucket, 'Key': 'src'},
                            CopySourceRange=copy_range)
    assert s3.list_parts(Bucket=bucket, Key='dst', UploadId=upload_id).get('Parts', []) == []


# ---------------------------------------------------------------------------------------------
# Large Complete bodies


def test_complete_body_listing_10000_parts(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='many')['UploadId']
    parts = [os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(4321)]
    listed = upload_parts(s3, bucket, 'many', upload_id, parts, ChecksumAlgorithm='CRC32')

    # 10000 parts that do not exist (with checksums, ~1 MB of XML): not too big, not malformed,
    # just InvalidPart.
    fake = [{'ETag': '"%032x"' % n, 'PartNumber': n, 'ChecksumCRC32': 'AAAAAA=='}
            for n in range(1, 10001)]
    with raises_s3('InvalidPart', 400):
        complete(s3, bucket, 'many', upload_id, fake)
    # The three real parts followed by 9997 that do not exist.
    mixed = listed + [{'ETag': '"%032x"' % n, 'PartNumber': n} for n in range(4, 10001)]
    assert len(mixed) == 10000
    with raises_s3('InvalidPart', 400):
        complete(s3, bucket, 'many', upload_id, mixed)

    # Nothing was consumed: the real list completes.
    done = complete(s3, bucket, 'many', upload_id, listed)
    assert done['ETag'] == multipart_etag(parts)
    assert same_bytes(get_bytes(s3, bucket, 'many'), b''.join(parts))


# ---------------------------------------------------------------------------------------------
# Restart


def test_upload_survives_restart(server, bucket):
    s3 = server.client()
    p1, p2, p3 = os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(999)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='restart/mp.bin',
                                           ContentType='application/x-test',
                                           Metadata={'k': 'v'})['UploadId']
    listed = upload_parts(s3, bucket, 'restart/mp.bin', upload_id, [p1, p2])
    other = s3.create_multipart_upload(Bucket=bucket, Key='restart/other')['UploadId']
    upload_parts(s3, bucket, 'restart/other', other, [os.urandom(1000)])
    other_dir = bucket_dir(server, bucket) / 'uploads' / other
    assert other_dir.is_dir(), 'README: DATA/buckets/NAME/uploads/U/ holds an upload'

    assert server.restart() == 0, 'server did not exit with code 0 after SIGTERM'
    s3 = server.client()

    ups = s3.list_multipart_uploads(Bucket=bucket)['Uploads']
    assert sorted((u['Key'], u['UploadId']) for u in ups) == sorted(
        [('restart/mp.bin', upload_id), ('restart/other', other)])
    lp = s3.list_parts(Bucket=bucket, Key='restart/mp.bin', UploadId=upload_id)['Parts']
    assert [(p['PartNumber'], p['ETag'], p['Size']) for p in lp] == [
        (1, quoted_etag(p1), len(p1)), (2, quoted_etag(p2), len(p2))]

    r = s3.upload_part(Bucket=bucket, Key='restart/mp.bin', UploadId=upload_id, PartNumber=3,
                       Body=p3)
    listed.append({'ETag': r['ETag'], 'PartNumber': 3})
    done = complete(s3, bucket, 'restart/mp.bin', upload_id, listed)
    assert done['ETag'] == multipart_etag([p1, p2, p3])
    got = s3.get_object(Bucket=bucket, Key='restart/mp.bin')
    assert same_bytes(got['Body'].read(), p1 + p2 + p3)
    assert got['ContentType'] == 'application/x-test' and got['Metadata'] == {'k': 'v'}

    # The other upload, aborted after the restart, leaves no directory behind.
    assert status_of(s3.abort_multipart_upload(Bucket=bucket, Key='restart/other',
                                               UploadId=other)) == 204
    assert not other_dir.exists()
    assert [u['Key'] for u in s3.list_multipart_uploads(Bucket=bucket).get('Uploads', [])] == []

    # And the completed object is still whole after another restart.
    assert server.restart() == 0
    s3 = server.client()
    assert same_bytes(get_bytes(s3, bucket, 'restart/mp.bin'), p1 + p2 + p3)
    assert uploads_entries(server, bucket) == [upload_id]
    assert sorted(os.listdir(bucket_dir(server, bucket) / 'uploads' / upload_id)) == [
        'part-1', 'part-2', 'part-3']


# ---------------------------------------------------------------------------------------------
# No orphans: part data leaves the disk with its upload / object


def test_abort_leaves_nothing(server, s3, bucket):
    before = tree_size(bucket_dir(server, bucket))
    files_before = tree_files(bucket_dir(server, bucket))
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='ab')['UploadId']
    upload_parts(s3, bucket, 'ab', upload_id, [os.urandom(MIN_PART), os.urandom(MIN_PART), b'x'])
    assert tree_size(bucket_dir(server, bucket)) >= before + 2 * MIN_PART
    s3.abort_multipart_upload(Bucket=bucket, Key='ab', UploadId=upload_id)
    assert tree_size(bucket_dir(server, bucket)) == before
    assert tree_files(bucket_dir(server, bucket)) == files_before
    assert uploads_entries(server, bucket) == []


@pytest.mark.parametrize('replacement', ['put_object', 'multipart', 'copy_object'])
def test_overwriting_a_multipart_object_removes_its_parts(server, s3, bucket, replacement):
    d = bucket_dir(server, bucket)
    s3.put_object(Bucket=bucket, Key='copy-src', Body=b'copy source bytes')
    before = tree_size(d)
    old_id, _ = multipart_object(s3, bucket, 'obj', [os.urandom(MIN_PART), os.urandom(MIN_PART)])
    assert uploads_entries(server, bucket) == [old_id]
    assert tree_size(d) >= before + 2 * MIN_PART

    if replacement == 'put_object':
        s3.put_object(Bucket=bucket, Key='obj', Body=b'small replacement')
        keep = []
        expected = b'small replacement'
    elif replacement == 'copy_object':
        s3.copy_object(Bucket=bucket, Key='obj', CopySource={'Bucket': bucket, 'Key': 'copy-src'})
        keep = []
        expected = b'copy source bytes'
    else:
        new_id, _ = multipart_object(s3, bucket, 'obj', [os.urandom(MIN_PART), b'new tail'])
        keep = [new_id]
        expected = None

    assert uploads_entries(server, bucket) == keep
    assert not (d / 'uploads' / old_id).exists()
    obj_size = objects_bytes(server, bucket)
    extra = tree_size(d / 'uploads' / keep[0]) if keep else 0
    assert tree_size(d) == before + obj_size + extra
    if expected is not None:
        assert obj_size < 64 * 1024
        assert get_bytes(s3, bucket, 'obj') == expected


def test_deleting_a_multipart_object_removes_its_parts(server, s3, bucket):
    d = bucket_dir(server, bucket)
    before = tree_size(d)
    files_before = tree_files(d)
    multipart_object(s3, bucket, 'obj', [os.urandom(MIN_PART), os.urandom(MIN_PART), b'z'])
    assert tree_size(d) >= before + 2 * MIN_PART
    s3.delete_object(Bucket=bucket, Key='obj')
    assert tree_size(d) == before
    assert tree_files(d) == files_before
    assert uploads_entries(server, bucket) == []
    # Also through DeleteObjects.
    multipart_object(s3, bucket, 'obj2', [os.urandom(MIN_PART), b'z'])
    s3.delete_objects(Bucket=bucket, Delete={'Objects': [{'Key': 'obj2'}]})
    assert tree_size(d) == before
    assert uploads_entries(server, bucket) == []


def test_unlisted_parts_are_removed_on_complete(server, s3, bucket):
    d = bucket_dir(server, bucket)
    before = tree_size(d)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='sel')['UploadId']
    p1, p2, p3, p4 = (os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(MIN_PART),
                      os.urandom(10))
    listed = upload_parts(s3, bucket, 'sel', upload_id, [p1, p2, p3, p4])
    up = d / 'uploads' / upload_id
    assert sorted(os.listdir(up)) == ['part-1', 'part-2', 'part-3', 'part-4', 'upload.meta']
    done = complete(s3, bucket, 'sel', upload_id, [listed[0], listed[2]])  # parts 1 and 3
    assert done['ETag'] == multipart_etag([p1, p3])
    assert sorted(os.listdir(up)) == ['part-1', 'part-3']
    assert tree_size(d) == (before + objects_bytes(server, bucket)
                            + (up / 'part-1').stat().st_size + (up / 'part-3').stat().st_size)
    assert same_bytes(get_bytes(s3, bucket, 'sel'), p1 + p3)
    s3.delete_object(Bucket=bucket, Key='sel')
    assert tree_size(d) == before


def test_failed_part_upload_leaves_nothing(server, s3, bucket):
    """A part whose checksum does not match is not stored, nor left in the staging dir."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='bad')['UploadId']
    d = bucket_dir(server, bucket)
    before = tree_size(d)
    with raises_s3('BadDigest', 400):
        s3.upload_part(Bucket=bucket, Key='bad', UploadId=upload_id, PartNumber=1,
                       Body=os.urandom(MiB), ChecksumCRC32=crc32_b64(b'other'))
    assert tree_size(d) == before
    assert s3.list_parts(Bucket=bucket, Key='bad', UploadId=upload_id).get('Parts', []) == []
    tmp = server.data_dir / 'tmp'
    assert not tmp.exists() or tree_size(tmp) == 0


# ---------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_part_uploads(server, bucket):
    s3 = server.client()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='conc')['UploadId']
    n_threads = 10
    parts = {n: os.urandom(MIN_PART + n) for n in range(1, 2 * n_threads)}
    parts[2 * n_threads] = os.urandom(12345)
    barrier = threading.Barrier(n_threads)
    results = {}

    def worker(i):
        c = make_client(server.endpoint)  # one client (connection pool) per thread
        barrier.wait(timeout=30)
        for n in (i + 1, i + 1 + n_threads):
            r = c.upload_part(Bucket=bucket, Key='conc', UploadId=upload_id, PartNumber=n,
                              Body=parts[n])
            results[n] = r['ETag']

    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(worker, range(n_threads)))
    assert sorted(results) == sorted(parts)
    for n, etag in results.items():
        assert etag == quoted_etag(parts[n]), n
    lp = s3.list_parts(Bucket=bucket, Key='conc', UploadId=upload_id)['Parts']
    assert [(p['PartNumber'], p['ETag']) for p in lp] == [
        (n, quoted_etag(parts[n])) for n in sorted(parts)]
    done = complete(s3, bucket, 'conc', upload_id,
                    [{'ETag': results[n], 'PartNumber': n} for n in sorted(parts)])
    ordered = [parts[n] for n in sorted(parts)]
    assert done['ETag'] == multipart_etag(ordered)
    assert same_bytes(get_bytes(s3, bucket, 'conc'), b''.join(ordered))


def test_concurrent_uploads_of_the_same_part_number(server, bucket):
    """Racing uploads of one part number: the survivor is whole, and ListParts names it."""
    s3 = server.client()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='race')['UploadId']
    variants = [os.urandom(MIN_PART) for _ in range(6)]
    barrier = threading.Barrier(len(variants))

    def worker(data):
        c = make_client(server.endpoint)
        barrier.wait(timeout=30)
        return c.upload_part(Bucket=bucket, Key='race', UploadId=upload_id, PartNumber=1,
                             Body=data)['ETag']

    with ThreadPoolExecutor(len(variants)) as pool:
        etags = list(pool.map(worker, variants))
    assert etags == [quoted_etag(v) for v in variants]
    lp = s3.list_parts(Bucket=bucket, Key='race', UploadId=upload_id)['Parts']
    assert len(lp) == 1
    winner = [v for v in variants if quoted_etag(v) == lp[0]['ETag']]
    assert len(winner) == 1
    tail = b'tail'
    s3.upload_part(Bucket=bucket, Key='race', UploadId=upload_id, PartNumber=2, Body=tail)
    done = complete(s3, bucket, 'race', upload_id, [
        {'ETag': lp[0]['ETag'], 'PartNumber': 1}, {'ETag': quoted_etag(tail), 'PartNumber': 2}])
    assert done['ETag'] == multipart_etag([winner[0], tail])
    assert same_bytes(get_bytes(s3, bucket, 'race'), winner[0] + tail)
    # Exactly the parts that were kept remain on disk.
    assert sorted(os.listdir(bucket_dir(server, bucket) / 'uploads' / upload_id)) == [
        'part-1', 'part-2']


def test_complete_racing_part_uploads(server, bucket):
    """Completing while other parts still arrive: the object is exactly the listed parts, and
    late parts either land before completion (unlisted, removed) or get NoSuchUpload."""
    s3 = server.client()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='cr')['UploadId']
    p1, p2 = os.urandom(MIN_PART), b'second'
    listed = upload_parts(s3, bucket, 'cr', upload_id, [p1, p2])
    errors = []

    def late(n):
        c = make_client(server.endpoint)
        try:
            c.upload_part(Bucket=bucket, Key='cr', UploadId=upload_id, PartNumber=n,
                          Body=os.urandom(MiB))
        except Exception as e:  # noqa: BLE001
            code = getattr(e, 'response', {}).get('Error', {}).get('Code')
            errors.append(code)

    threads = [threading.Thread(target=late, args=(n,)) for n in range(3, 9)]
    for t in threads:
        t.start()
    done = complete(s3, bucket, 'cr', upload_id, listed)
    for t in threads:
        t.join(timeout=60)
    assert set(errors) <= {'NoSuchUpload'}, errors
    assert done['ETag'] == multipart_etag([p1, p2])
    assert same_bytes(get_bytes(s3, bucket, 'cr'), p1 + p2)
    assert sorted(os.listdir(bucket_dir(server, bucket) / 'uploads' / upload_id)) == [
        'part-1', 'part-2']
    tmp = server.data_dir / 'tmp'
    assert not tmp.exists() or tree_size(tmp) == 0


# ---------------------------------------------------------------------------------------------
# A read racing an overwrite or delete of a multipart object


def _raw_get_slow(server, bucket, key):
    """Starts a signed GET on a socket with a small receive buffer.

    Returns (socket, status line, headers, body bytes already received)."""
    path = f'/{bucket}/{urllib.parse.quote(key)}'
    url = f'{server.endpoint}{path}'
    hdrs = sigv4_sign('GET', url, server.access_key, server.secret_key)
    sock = server.connect(timeout=30, rcvbuf=32 * 1024)
    head = f'GET {path} HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in hdrs.items()) + '\r\n'
    sock.sendall(head.encode())
    buf = b''
    while b'\r\n\r\n' not in buf:
        chunk = sock.recv(65536)
        assert chunk, 'connection closed before the response head'
        buf += chunk
    head_raw, rest = buf.split(b'\r\n\r\n', 1)
    lines = head_raw.decode('latin-1').split('\r\n')
    headers = {}
    for line in lines[1:]:
        k, v = line.split(':', 1)
        headers[k.strip().lower()] = v.strip()
    return sock, lines[0], headers, rest


@pytest.mark.parametrize('action', ['overwrite', 'delete'])
def test_get_racing_an_overwrite_sees_the_whole_old_object(server, s3, bucket, action):
    """README: 'an overwrite racing a read is seen whole or not at all (the open file is a
    snapshot)'. For a multipart object the parts must stay readable to a GET that began before
    the object was replaced or deleted."""
    parts = [os.urandom(MIN_PART) for _ in range(4)]
    data = b''.join(parts)
    multipart_object(s3, bucket, 'snap', parts)
    sock, status, headers, got = _raw_get_slow(server, bucket, 'snap')
    try:
        assert status.startswith('HTTP/1.1 200'), status
        assert int(headers['content-length']) == len(data)
        # Read a little of part 1 only, then replace the object while the GET is in flight.
        while len(got) < 64 * 1024:
            got += sock.recv(16 * 1024)
        if action == 'overwrite':
            s3.put_object(Bucket=bucket, Key='snap', Body=b'new content')
        else:
            s3.delete_object(Bucket=bucket, Key='snap')
        while len(got) < len(data):
            try:
                chunk = sock.recv(1 << 20)
            except OSError as e:
                pytest.fail(f'GET connection failed after {len(got)} of {len(data)} bytes: {e!r}')
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    assert len(got) == len(data), (
        f'the GET that started before the {action} ended after {len(got)} of {len(data)} '
        'bytes: the part files of the multipart object were removed under it')
    assert same_bytes(got, data), 'the GET returned bytes other than the old object'
