"""Multipart uploads: the seed guide's section 5.2 verbatim, and upload_file/download_file of a
20 MiB file (s3transfer goes multipart above 8 MiB: parts of 8, 8 and 4 MiB sent in parallel).
(1 GiB cases are added by a later task.)"""

import hashlib
import os

import pytest

from s3util import crc32_b64, file_sha256, multipart_etag, raises_s3, status_of

MiB = 1024 * 1024


def _make_file(path, size):
    with open(path, 'wb') as f:
        remaining = size
        while remaining:
            n = min(remaining, 4 * MiB)
            f.write(os.urandom(n))
            remaining -= n
    return path


def _parts(path, part_size):
    with open(path, 'rb') as f:
        return list(iter(lambda: f.read(part_size), b''))


@pytest.mark.parametrize('client_kind', ['default', 'when_required'])
def test_seed_guide_section_5_2(server, bucket, tmp_path, monkeypatch, capsys, client_kind):
    s3 = server.client(client_kind)
    monkeypatch.chdir(tmp_path)
    _make_file(tmp_path / 'largefile.bin', 12 * MiB)
    bucket_name = bucket
    capsys.readouterr()

    # ---- 5.2 Mehrteiliger Upload (verbatim) --------------------------------------------------
    import os  # noqa: F401,F811 (the guide imports it here)

    file_path = 'largefile.bin'
    key = 'largefile.bin'
    part_size = 5 * 1024 * 1024  # 5 MB

    # 1. Upload starten
    response = s3.create_multipart_upload(Bucket=bucket_name, Key=key)
    upload_id = response['UploadId']
    parts = []

    try:
        with open(file_path, 'rb') as f:
            part_number = 1
            while True:
                data = f.read(part_size)
                if not data:
                    break

                part = s3.upload_part(
                    Bucket=bucket_name,
                    Key=key,
                    PartNumber=part_number,
                    UploadId=upload_id,
                    Body=data
                )

                parts.append({'ETag': part['ETag'], 'PartNumber': part_number})
                print(f'Uploaded part {part_number}')
                part_number += 1

        # 2. Upload abschließen
        s3.complete_multipart_upload(
            Bucket=bucket_name,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={'Parts': parts}
        )
        print('Multipart upload complete.')

    except Exception as e:
        # Upload abbrechen
        s3.abort_multipart_upload(Bucket=bucket_name, Key=key, UploadId=upload_id)
        print('Multipart upload aborted due to error:', e)
    # ---- end of the guide's code -------------------------------------------------------------

    out = capsys.readouterr().out
    assert out == ('Uploaded part 1\nUploaded part 2\nUploaded part 3\n'
                   'Multipart upload complete.\n'), out

    chunks = _parts('largefile.bin', part_size)
    assert [p['ETag'] for p in parts] == ['"%s"' % hashlib.md5(c).hexdigest() for c in chunks]

    head = s3.head_object(Bucket=bucket_name, Key=key)
    assert head['ContentLength'] == 12 * MiB
    assert head['ETag'] == multipart_etag(chunks)

    s3.download_file(bucket_name, key, 'largefile.downloaded')
    assert file_sha256('largefile.downloaded') == file_sha256('largefile.bin')

    # The completed upload is gone.
    with raises_s3('NoSuchUpload', 404):
        s3.upload_part(Bucket=bucket_name, Key=key, PartNumber=4, UploadId=upload_id, Body=b'x')


def test_upload_part_echoes_crc32(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    data = os.urandom(5 * MiB)
    part = s3.upload_part(Bucket=bucket, Key='k', PartNumber=1, UploadId=upload_id, Body=data)
    assert part['ETag'] == '"%s"' % hashlib.md5(data).hexdigest()
    # boto3 sends x-amz-checksum-crc32 on UploadPart by default; S3 verifies and echoes it.
    assert part.get('ChecksumCRC32') == crc32_b64(data)
    s3.abort_multipart_upload(Bucket=bucket, Key='k', UploadId=upload_id)


@pytest.mark.parametrize('client_kind', ['default', 'when_required'])
def test_upload_download_file_20mib(server, bucket, tmp_path, client_kind):
    s3 = server.client(client_kind)
    src = _make_file(tmp_path / 'twenty.bin', 20 * MiB)
    s3.upload_file(str(src), bucket, 'nested/twenty.bin')
    head = s3.head_object(Bucket=bucket, Key='nested/twenty.bin')
    assert head['ContentLength'] == 20 * MiB
    # Default TransferConfig: 8 MiB parts -> 8 + 8 + 4 MiB.
    assert head['ETag'] == multipart_etag(_parts(src, 8 * MiB))
    listed = s3.list_objects_v2(Bucket=bucket)['Contents']
    assert [(o['Key'], o['Size']) for o in listed] == [('nested/twenty.bin', 20 * MiB)]

    dst = tmp_path / 'twenty.downloaded'
    s3.download_file(bucket, 'nested/twenty.bin', str(dst))
    assert file_sha256(dst) == file_sha256(src)


def test_ranges_across_part_boundaries(s3, bucket, tmp_path):
    src = _make_file(tmp_path / 'parts.bin', 20 * MiB)
    s3.upload_file(str(src), bucket, 'parts.bin')
    data = src.read_bytes()
    for start, end in [(8 * MiB - 3, 8 * MiB + 2), (0, 16 * MiB + 10), (16 * MiB - 1, 20 * MiB - 1)]:
        resp = s3.get_object(Bucket=bucket, Key='parts.bin', Range=f'bytes={start}-{end}')
        assert status_of(resp) == 206
        assert resp['ContentRange'] == f'bytes {start}-{end}/{20 * MiB}'
        assert resp['Body'].read() == data[start:end + 1]


def test_abort_multipart_upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key='aborted')['UploadId']
    s3.upload_part(Bucket=bucket, Key='aborted', PartNumber=1, UploadId=upload_id,
                   Body=os.urandom(MiB))
    resp = s3.abort_multipart_upload(Bucket=bucket, Key='aborted', UploadId=upload_id)
    assert status_of(resp) == 204
    with raises_s3('NoSuchUpload', 404):
        s3.complete_multipart_upload(
            Bucket=bucket, Key='aborted', UploadId=upload_id,
            MultipartUpload={'Parts': [{'ETag': '"x"', 'PartNumber': 1}]},
        )
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='aborted')


def test_multipart_object_survives_restart(server, bucket, tmp_path):
    s3 = server.client()
    src = _make_file(tmp_path / 'mp.bin', 20 * MiB)
    s3.upload_file(str(src), bucket, 'mp.bin')
    etag = s3.head_object(Bucket=bucket, Key='mp.bin')['ETag']

    assert server.restart() == 0, 'server did not exit with code 0 after SIGTERM'

    s3 = server.client()
    head = s3.head_object(Bucket=bucket, Key='mp.bin')
    assert head['ETag'] == etag
    assert head['ContentLength'] == 20 * MiB
    dst = tmp_path / 'mp.downloaded'
    s3.download_file(bucket, 'mp.bin', str(dst))
    assert file_sha256(dst) == file_sha256(src)
