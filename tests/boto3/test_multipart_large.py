"""Large multipart uploads: a 1 GiB file through upload_file / download_file.

The file is made once per module under target/ (a real disk, like the server's data) from one
64 MiB random block repeated 16 times, with a 16-byte header (repetition, MiB index) at every
MiB, so every part of every part size differs. SHA-256 of the whole file and the MD5 of every
8 MiB and 5 MiB part are computed while it is written, so the expected ETags are known exactly.

1. default TransferConfig (both client configurations): s3transfer switches to multipart above
   8 MiB and uses 8 MiB parts, 10 threads -> 128 parts, ETag `...-128`;
2. TransferConfig(multipart_chunksize=5 MiB, max_concurrency=16) -> 205 parts, ETag `...-205`.
Each time: HEAD (ContentLength, ETag, PartsCount), ListObjectsV2, download_file, SHA-256 of the
download; then the object is deleted and no part data may stay on disk.
"""

import hashlib
import os
import shutil
import struct
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from s3util import file_sha256, status_of

MiB = 1024 * 1024
GiB = 1024 * MiB
FILE_SIZE = GiB
BLOCK = 64 * MiB
REPO_ROOT = Path(__file__).resolve().parents[2]

# Each test moves 2 GiB through the server (up and down) plus hashing; on a 2-core machine that
# takes well under a minute, but leave room above the suite's default 120 s per test.
pytestmark = pytest.mark.timeout(300)


def _etag_from_md5s(md5s):
    return '"%s-%d"' % (hashlib.md5(b''.join(md5s)).hexdigest(), len(md5s))


class _PartMd5s:
    """MD5 of consecutive `part_size` slices of a stream fed in arbitrary pieces."""

    def __init__(self, part_size):
        self.part_size = part_size
        self.digests = []
        self.cur = hashlib.md5()
        self.fill = 0

    def update(self, data):
        view = memoryview(data)
        while view:
            n = min(len(view), self.part_size - self.fill)
            self.cur.update(view[:n])
            self.fill += n
            view = view[n:]
            if self.fill == self.part_size:
                self.digests.append(self.cur.digest())
                self.cur = hashlib.md5()
                self.fill = 0

    def finish(self):
        if self.fill:
            self.digests.append(self.cur.digest())
            self.fill = 0
        return self.digests


@pytest.fixture(scope='module')
def big_file():
    """(path, sha256 hex, {part_size: [md5 digests]}) of a 1 GiB file under target/."""
    work = Path(tempfile.mkdtemp(prefix='mp-large-', dir=REPO_ROOT / 'target'))
    path = work / 'one-gib.bin'
    sha = hashlib.sha256()
    md5s = {8 * MiB: _PartMd5s(8 * MiB), 5 * MiB: _PartMd5s(5 * MiB)}
    base = bytearray(os.urandom(BLOCK))
    t0 = time.monotonic()
    try:
        with open(path, 'wb') as f, ThreadPoolExecutor(3) as pool:
            for rep in range(FILE_SIZE // BLOCK):
                for mib in range(BLOCK // MiB):
                    base[mib * MiB:mib * MiB + 16] = struct.pack('>QQ', rep, mib)
                block = bytes(base)
                # hashlib releases the GIL on large buffers: hash in parallel with the write.
                jobs = [pool.submit(sha.update, block)]
                jobs += [pool.submit(m.update, block) for m in md5s.values()]
                f.write(block)
                for j in jobs:
                    j.result()
        assert path.stat().st_size == FILE_SIZE
        print(f'\n1 GiB test file written and hashed in {time.monotonic() - t0:.1f} s')
        yield path, sha.hexdigest(), {k: m.finish() for k, m in md5s.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _round_trip(s3, bucket, key, big_file, config, part_size):
    path, sha_hex, md5s = big_file
    n_parts = -(-FILE_SIZE // part_size)
    assert len(md5s[part_size]) == n_parts

    t0 = time.monotonic()
    if config is None:
        s3.upload_file(str(path), bucket, key)
    else:
        s3.upload_file(str(path), bucket, key, Config=config)
    t_up = time.monotonic() - t0

    head = s3.head_object(Bucket=bucket, Key=key)
    assert status_of(head) == 200
    assert head['ContentLength'] == FILE_SIZE
    assert head['ETag'].endswith(f'-{n_parts}"'), head['ETag']
    assert head['ETag'] == _etag_from_md5s(md5s[part_size])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key)['Contents']
    assert [(o['Key'], o['Size'], o['ETag']) for o in listed] == [(key, FILE_SIZE, head['ETag'])]
    # partNumber reads agree with the part layout s3transfer chose.
    last = s3.head_object(Bucket=bucket, Key=key, PartNumber=n_parts)
    assert last['PartsCount'] == n_parts
    assert last['ContentLength'] == FILE_SIZE - (n_parts - 1) * part_size

    dst = path.with_name(path.name + '.downloaded')
    t0 = time.monotonic()
    try:
        if config is None:
            s3.download_file(bucket, key, str(dst))
        else:
            s3.download_file(bucket, key, str(dst), Config=config)
        t_down = time.monotonic() - t0
        assert dst.stat().st_size == FILE_SIZE
        assert file_sha256(dst) == sha_hex, 'downloaded bytes differ from the uploaded file'
    finally:
        dst.unlink(missing_ok=True)
    print(f'\n{key}: upload {t_up:.1f} s ({FILE_SIZE / MiB / t_up:.0f} MiB/s), '
          f'download {t_down:.1f} s ({FILE_SIZE / MiB / t_down:.0f} MiB/s)')


def _delete_and_check_disk(server, s3, bucket, key):
    s3.delete_object(Bucket=bucket, Key=key)
    uploads = server.data_dir / 'buckets' / bucket / 'uploads'
    left = sorted(os.listdir(uploads)) if uploads.exists() else []
    assert left == [], f'part data left on disk after deleting the object: {left}'


@pytest.mark.parametrize('kind', ['default', 'when_required'])
def test_upload_download_1gib_default_transfer_config(server, bucket, big_file, kind):
    s3 = server.client(kind)
    key = f'big/default-{kind}.bin'
    try:
        _round_trip(s3, bucket, key, big_file, None, 8 * MiB)
        _delete_and_check_disk(server, s3, bucket, key)
    finally:
        s3.delete_object(Bucket=bucket, Key=key)


def test_upload_download_1gib_5mib_parts_16_threads(server, s3, bucket, big_file):
    config = TransferConfig(multipart_chunksize=5 * MiB, max_concurrency=16)
    key = 'big/5mib-parts.bin'
    try:
        _round_trip(s3, bucket, key, big_file, config, 5 * MiB)
        _delete_and_check_disk(server, s3, bucket, key)
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
