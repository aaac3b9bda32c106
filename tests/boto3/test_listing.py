"""ListObjectsV2 and ListObjects (v1): prefixes, delimiters, pagination, ordering, key encoding.

Expected results come from a small model of S3 listing (s3util.model_listing): keys in UTF-8 byte
order, common prefixes rolled up at the first delimiter after the prefix, MaxKeys counting keys
and common prefixes together. boto3 always sends encoding-type=url and decodes the answer.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from s3util import (
    empty_and_delete_bucket,
    model_listing,
    page_entries,
    raises_s3,
    split_entries,
    unique_bucket_name,
    utf8_sorted,
)

TREE_KEYS = [
    'a.txt',
    'dir/b.txt',
    'dir/c.txt',
    'dir/sub/d.txt',
    'dir/sub/e.txt',
    'dir2/f.txt',
    'dir.txt',
    'z.txt',
    'Zebra',
    'sp ace/x y.txt',
    'sp ace/plain',
    'plus+sign',
    'plus sign',
    'ü/日本.txt',
    'ü.txt',
    'eq=amp&.txt',
    'pct%2Fnot-a-slash',
    'pct%20literal',
    'tilde~',
    '\uff21-fullwidth',
    '\U0001F600-emoji',
]

# 2500 keys mixing ASCII, upper/lower case, Latin-1, CJK, a BMP char above the surrogate range
# (U+FF21) and one outside the BMP (U+1F600): UTF-8 byte order differs from UTF-16 order there.
BIG_PREFIXES = ['A', 'B', 'a', 'b', 'Z-', 'z', '0', '9', '_', '~', 'ä', 'é', 'Ω', '日本',
                '\uff21', '\U0001F600', 'a b', 'a+b', 'p%41', 'dir/x', 'dir/y/z', 'dir/y/zz']
BIG_KEYS = [f'{BIG_PREFIXES[i % len(BIG_PREFIXES)]}-{i:05d}' for i in range(2500)]


def _fill(s3, bucket, keys, workers=8):
    def put(k):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode('utf-8'))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, keys))


@pytest.fixture(scope='module')
def tree_bucket(server):
    s3 = server.client()
    name = unique_bucket_name('rs-tree')
    s3.create_bucket(Bucket=name)
    _fill(s3, name, TREE_KEYS)
    yield name
    if server.alive():
        empty_and_delete_bucket(server.client(), name)


@pytest.fixture(scope='module')
def big_bucket(server):
    s3 = server.client()
    name = unique_bucket_name('rs-big')
    s3.create_bucket(Bucket=name)
    _fill(s3, name, BIG_KEYS)
    yield name
    if server.alive():
        empty_and_delete_bucket(server.client(), name)


def _check_page(page, entries):
    keys, prefixes = page_entries(page)
    exp_keys, exp_prefixes = split_entries(entries)
    assert keys == exp_keys
    assert prefixes == exp_prefixes


# ---------------------------------------------------------------------------------------------
# ListObjectsV2


def test_list_all(s3, tree_bucket):
    resp = s3.list_objects_v2(Bucket=tree_bucket)
    keys = [o['Key'] for o in resp['Contents']]
    assert keys == utf8_sorted(TREE_KEYS)
    assert resp['KeyCount'] == len(TREE_KEYS)
    assert resp['IsTruncated'] is False
    assert 'NextContinuationToken' not in resp
    assert resp['Name'] == tree_bucket
    assert resp['MaxKeys'] == 1000
    for o in resp['Contents']:
        assert o['Size'] == len(o['Key'].encode('utf-8'))
        assert o['ETag'].startswith('"') and o['ETag'].endswith('"')
        assert o.get('StorageClass', 'STANDARD') == 'STANDARD'


@pytest.mark.parametrize(
    'prefix, delimiter',
    [
        ('', '/'),
        ('dir/', '/'),
        ('dir', '/'),
        ('dir/sub/', '/'),
        ('sp ace/', '/'),
        ('ü/', '/'),
        ('plus', None),
        ('plus+', None),
        ('pct%', None),
        ('dir/', None),
        ('', '.txt'),
        ('d', 'sub'),
    ],
)
def test_prefix_and_delimiter(s3, tree_bucket, prefix, delimiter):
    kwargs = {'Bucket': tree_bucket, 'Prefix': prefix}
    if delimiter:
        kwargs['Delimiter'] = delimiter
    resp = s3.list_objects_v2(**kwargs)
    expected = model_listing(TREE_KEYS, prefix, delimiter)
    _check_page(resp, expected)
    assert resp['KeyCount'] == len(expected)
    assert resp['IsTruncated'] is False
    assert resp.get('Prefix', '') == prefix
    if delimiter:
        assert resp.get('Delimiter') == delimiter


def test_delimiter_top_level(s3, tree_bucket):
    resp = s3.list_objects_v2(Bucket=tree_bucket, Delimiter='/')
    keys, prefixes = page_entries(resp)
    assert prefixes == ['dir/', 'dir2/', 'sp ace/', 'ü/']
    assert 'a.txt' in keys and 'dir/b.txt' not in keys


def test_prefix_without_match(s3, tree_bucket):
    resp = s3.list_objects_v2(Bucket=tree_bucket, Prefix='no-such-prefix/')
    assert 'Contents' not in resp
    assert 'CommonPrefixes' not in resp
    assert resp['KeyCount'] == 0
    assert resp['IsTruncated'] is False


def test_max_keys_truncates(s3, tree_bucket):
    resp = s3.list_objects_v2(Bucket=tree_bucket, MaxKeys=3)
    assert [o['Key'] for o in resp['Contents']] == utf8_sorted(TREE_KEYS)[:3]
    assert resp['KeyCount'] == 3
    assert resp['MaxKeys'] == 3
    assert resp['IsTruncated'] is True
    assert resp.get('NextContinuationToken')


def test_max_keys_zero(s3, tree_bucket):
    resp = s3.list_objects_v2(Bucket=tree_bucket, MaxKeys=0)
    assert 'Contents' not in resp
    assert 'CommonPrefixes' not in resp
    assert resp['KeyCount'] == 0
    assert resp['MaxKeys'] == 0


@pytest.mark.parametrize('delimiter', [None, '/'])
@pytest.mark.parametrize('max_keys', [1, 2, 5])
def test_continuation_token_loop(s3, tree_bucket, max_keys, delimiter):
    expected = model_listing(TREE_KEYS, '', delimiter)
    kwargs = {'Bucket': tree_bucket, 'MaxKeys': max_keys}
    if delimiter:
        kwargs['Delimiter'] = delimiter
    pages = 0
    token = None
    while True:
        resp = s3.list_objects_v2(**kwargs, **({'ContinuationToken': token} if token else {}))
        chunk = expected[pages * max_keys:(pages + 1) * max_keys]
        _check_page(resp, chunk)
        assert resp['KeyCount'] == len(chunk)
        if token:
            assert resp.get('ContinuationToken') == token
        pages += 1
        assert pages <= len(expected), 'listing does not end'
        if not resp['IsTruncated']:
            assert 'NextContinuationToken' not in resp
            break
        token = resp['NextContinuationToken']
        assert token
    assert pages == max(1, math.ceil(len(expected) / max_keys))


def test_empty_continuation_token_is_absent(s3, tree_bucket):
    """`continuation-token=` (empty) lists from the start, as without it, and is echoed as sent
    (the s3-tests suite checks the empty `ContinuationToken`); a bad token is still refused."""
    resp = s3.list_objects_v2(Bucket=tree_bucket, ContinuationToken='', MaxKeys=2)
    assert [o['Key'] for o in resp['Contents']] == utf8_sorted(TREE_KEYS)[:2]
    assert resp['ContinuationToken'] == ''
    with raises_s3('InvalidArgument', 400):
        s3.list_objects_v2(Bucket=tree_bucket, ContinuationToken='not-a-token')


@pytest.mark.parametrize('start_after', ['dir/c.txt', 'dir', 'a', 'ü', '~~~', ''])
def test_start_after(s3, tree_bucket, start_after):
    resp = s3.list_objects_v2(Bucket=tree_bucket, StartAfter=start_after)
    expected = model_listing(TREE_KEYS, '', None, after=start_after or None)
    _check_page(resp, expected)
    if start_after:
        assert resp.get('StartAfter') == start_after


def test_start_after_with_prefix_and_pagination(s3, tree_bucket):
    pages = s3.get_paginator('list_objects_v2').paginate(
        Bucket=tree_bucket, Prefix='dir', StartAfter='dir/b.txt', PaginationConfig={'PageSize': 2}
    )
    keys = [o['Key'] for p in pages for o in p.get('Contents', [])]
    assert keys == [k for t, k in model_listing(TREE_KEYS, 'dir', None, after='dir/b.txt')]


def test_special_keys_come_back_exactly(s3, tree_bucket):
    keys = [o['Key'] for o in s3.list_objects_v2(Bucket=tree_bucket)['Contents']]
    for k in ('sp ace/x y.txt', 'plus+sign', 'plus sign', 'ü/日本.txt', 'eq=amp&.txt',
              'pct%2Fnot-a-slash', 'pct%20literal', '\U0001F600-emoji'):
        assert k in keys, f'{k!r} missing from {keys!r}'


def test_paginator_v2_2500_keys(s3, big_bucket):
    pages = list(s3.get_paginator('list_objects_v2').paginate(Bucket=big_bucket))
    keys = [o['Key'] for p in pages for o in p.get('Contents', [])]
    assert len(keys) == len(BIG_KEYS)
    assert len(set(keys)) == len(keys), 'a key was returned twice'
    assert keys == utf8_sorted(BIG_KEYS)
    assert [p['KeyCount'] for p in pages] == [1000, 1000, 500]
    assert [p['IsTruncated'] for p in pages] == [True, True, False]


def test_paginator_v2_2500_keys_small_pages_with_delimiter(s3, big_bucket):
    pages = list(s3.get_paginator('list_objects_v2').paginate(
        Bucket=big_bucket, Delimiter='/', Prefix='dir/', PaginationConfig={'PageSize': 7}
    ))
    keys = [o['Key'] for p in pages for o in p.get('Contents', [])]
    prefixes = [c['Prefix'] for p in pages for c in p.get('CommonPrefixes', [])]
    exp_keys, exp_prefixes = split_entries(model_listing(BIG_KEYS, 'dir/', '/'))
    assert keys == exp_keys
    assert prefixes == exp_prefixes == ['dir/y/']


def test_paginator_v2_2500_keys_odd_page_size(s3, big_bucket):
    pages = list(s3.get_paginator('list_objects_v2').paginate(
        Bucket=big_bucket, PaginationConfig={'PageSize': 333}
    ))
    keys = [o['Key'] for p in pages for o in p.get('Contents', [])]
    assert keys == utf8_sorted(BIG_KEYS)
    assert len(pages) == math.ceil(2500 / 333)


def test_list_missing_bucket_v2(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.list_objects_v2(Bucket=unique_bucket_name('rs-missing'))


# ---------------------------------------------------------------------------------------------
# ListObjects (v1)


def test_v1_list_all(s3, tree_bucket):
    resp = s3.list_objects(Bucket=tree_bucket)
    assert [o['Key'] for o in resp['Contents']] == utf8_sorted(TREE_KEYS)
    assert resp['IsTruncated'] is False
    assert resp['MaxKeys'] == 1000


@pytest.mark.parametrize('marker', ['dir/c.txt', 'dir', 'ü'])
def test_v1_marker(s3, tree_bucket, marker):
    resp = s3.list_objects(Bucket=tree_bucket, Marker=marker)
    expected = model_listing(TREE_KEYS, '', None, after=marker)
    _check_page(resp, expected)
    assert resp.get('Marker') == marker


def test_v1_prefix_delimiter(s3, tree_bucket):
    resp = s3.list_objects(Bucket=tree_bucket, Prefix='dir/', Delimiter='/')
    _check_page(resp, model_listing(TREE_KEYS, 'dir/', '/'))


def test_v1_truncated_with_delimiter_has_next_marker(s3, tree_bucket):
    resp = s3.list_objects(Bucket=tree_bucket, Delimiter='/', MaxKeys=2)
    expected = model_listing(TREE_KEYS, '', '/')
    _check_page(resp, expected[:2])
    assert resp['IsTruncated'] is True
    assert resp.get('NextMarker') == expected[1][1]


@pytest.mark.parametrize('delimiter', [None, '/'])
def test_v1_paginator_small_pages(s3, tree_bucket, delimiter):
    kwargs = {'Bucket': tree_bucket, 'PaginationConfig': {'PageSize': 2}}
    if delimiter:
        kwargs['Delimiter'] = delimiter
    pages = list(s3.get_paginator('list_objects').paginate(**kwargs))
    keys = [o['Key'] for p in pages for o in p.get('Contents', [])]
    prefixes = [c['Prefix'] for p in pages for c in p.get('CommonPrefixes', [])]
    exp_keys, exp_prefixes = split_entries(model_listing(TREE_KEYS, '', delimiter))
    assert keys == exp_keys
    assert prefixes == exp_prefixes


def test_v1_paginator_2500_keys(s3, big_bucket):
    pages = list(s3.get_paginator('list_objects').paginate(Bucket=big_bucket))
    keys = [o['Key'] for p in pages for o in p.get('Contents', [])]
    assert len(set(keys)) == len(keys), 'a key was returned twice'
    assert keys == utf8_sorted(BIG_KEYS)
    assert len(pages) == 3


def test_v1_max_keys_zero_and_no_match(s3, tree_bucket):
    resp = s3.list_objects(Bucket=tree_bucket, MaxKeys=0)
    assert 'Contents' not in resp
    resp = s3.list_objects(Bucket=tree_bucket, Prefix='nothing-here')
    assert 'Contents' not in resp
    assert resp['IsTruncated'] is False


def test_list_missing_bucket_v1(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.list_objects(Bucket=unique_bucket_name('rs-missing'))


def test_list_object_versions_unversioned(s3, bucket):
    """Unversioned buckets list each object once as version 'null' (what cleanup tools rely on)."""
    keys = ['a', 'b/1', 'b/2', 'c d+e', 'ü']
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    seen = []
    for page in s3.get_paginator('list_object_versions').paginate(Bucket=bucket, PaginationConfig={'PageSize': 2}):
        for v in page.get('Versions', []):
            assert v['VersionId'] == 'null' and v['IsLatest'] is True
            seen.append(v['Key'])
        assert page.get('DeleteMarkers', []) == []
    assert seen == sorted(keys, key=lambda k: k.encode())
    grouped = s3.list_object_versions(Bucket=bucket, Delimiter='/')
    assert [p['Prefix'] for p in grouped['CommonPrefixes']] == ['b/']
    assert s3.get_object(Bucket=bucket, Key='a', VersionId='null')['Body'].read() == b'a'
    with raises_s3('InvalidArgument', 400):
        s3.get_object(Bucket=bucket, Key='a', VersionId='3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY')
    # The usual "delete every version" cleanup empties the bucket.
    for v in s3.list_object_versions(Bucket=bucket).get('Versions', []):
        s3.delete_object(Bucket=bucket, Key=v['Key'], VersionId=v['VersionId'])
    assert s3.list_objects_v2(Bucket=bucket).get('KeyCount') == 0
