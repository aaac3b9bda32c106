"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation."""

import datetime
import uuid

import pytest

from s3util import empty_and_delete_bucket, raises_s3, status_of, unique_bucket_name


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def test_list_buckets_names_and_creation_dates(s3, bucket_factory):
    before = _now() - datetime.timedelta(minutes=5)
    names = {bucket_factory(), bucket_factory()}
    resp = s3.list_buckets()
    assert status_of(resp) == 200
    listed = {b['Name']: b for b in resp['Buckets']}
    assert names <= set(listed), f'created {names}, listed {sorted(listed)}'
    after = _now() + datetime.timedelta(minutes=5)
    for name in names:
        created = listed[name]['CreationDate']
        assert isinstance(created, datetime.datetime)
        assert created.tzinfo is not None
        assert before <= created <= after, f'{name}: CreationDate {created} is not about now'


def test_list_buckets_sorted_by_name(s3, bucket_factory):
    suffix = uuid.uuid4().hex[:12]
    for prefix in ('rs-z', 'rs-a', 'rs-m'):
        bucket_factory(f'{prefix}-{suffix}')
    names = [b['Name'] for b in s3.list_buckets()['Buckets']]
    assert names == sorted(names)


def test_create_bucket_then_head_and_delete(s3):
    name = unique_bucket_name()
    resp = s3.create_bucket(Bucket=name)
    try:
        assert status_of(resp) == 200
        assert status_of(s3.head_bucket(Bucket=name)) == 200
        assert name in [b['Name'] for b in s3.list_buckets()['Buckets']]
    finally:
        resp = s3.delete_bucket(Bucket=name)
    assert status_of(resp) == 204
    with raises_s3('404', 404):
        s3.head_bucket(Bucket=name)
    assert name not in [b['Name'] for b in s3.list_buckets()['Buckets']]


def test_create_bucket_returns_location(s3):
    name = unique_bucket_name()
    resp = s3.create_bucket(Bucket=name)
    try:
        # S3 answers CreateBucket (us-east-1) with `Location: /<bucket>`.
        assert resp.get('Location') == f'/{name}'
    finally:
        empty_and_delete_bucket(s3, name)


@pytest.mark.parametrize(
    'name',
    [
        'ab',  # too short
        'UPPER',  # upper case
        'a..b',  # adjacent periods
        '192.168.1.1',  # formatted like an IP address
        'bad_name',  # underscore
        'a' * 64,  # too long
        '-startdash',  # must start with a letter or digit
        'enddash-',  # must end with a letter or digit
    ],
    ids=['too-short', 'uppercase', 'double-dot', 'ip-address', 'underscore', '64-chars',
         'leading-dash', 'trailing-dash'],
)
def test_create_bucket_invalid_name(s3, name):
    with raises_s3('InvalidBucketName', 400):
        s3.create_bucket(Bucket=name)
    assert name not in [b['Name'] for b in s3.list_buckets()['Buckets']]


@pytest.mark.parametrize(
    'make_name',
    [
        lambda: 'b' + uuid.uuid4().hex[:2],  # 3 chars, the minimum
        lambda: ('rs-63-' + uuid.uuid4().hex * 2)[:63],  # 63 chars, the maximum
        lambda: f'rs.dots-and-dashes.{uuid.uuid4().hex[:12]}',
    ],
    ids=['3-chars', '63-chars', 'dots-and-dashes'],
)
def test_create_bucket_valid_edge_names(s3, make_name):
    name = make_name()
    try:
        assert status_of(s3.create_bucket(Bucket=name)) == 200
        assert status_of(s3.head_bucket(Bucket=name)) == 200
    finally:
        empty_and_delete_bucket(s3, name)


def test_create_bucket_twice_in_us_east_1_is_200_and_keeps_the_bucket(s3, bucket):
    # AWS's legacy us-east-1 rule: re-creating a bucket you own answers 200 (409
    # BucketAlreadyOwnedByYou in every other region: test_region.py).
    s3.put_object(Bucket=bucket, Key='kept', Body=b'still here')
    assert status_of(s3.create_bucket(Bucket=bucket)) == 200
    assert s3.get_object(Bucket=bucket, Key='kept')['Body'].read() == b'still here'
    assert [b['Name'] for b in s3.list_buckets()['Buckets']].count(bucket) == 1


def test_head_bucket(s3, bucket):
    resp = s3.head_bucket(Bucket=bucket)
    assert status_of(resp) == 200


def test_head_missing_bucket_is_404(s3):
    with raises_s3('404', 404):
        s3.head_bucket(Bucket=unique_bucket_name('rs-missing'))


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key='keep.txt', Body=b'x')
    with raises_s3('BucketNotEmpty', 409):
        s3.delete_bucket(Bucket=bucket)
    # Nothing was lost.
    assert status_of(s3.head_bucket(Bucket=bucket)) == 200
    assert s3.get_object(Bucket=bucket, Key='keep.txt')['Body'].read() == b'x'


def test_delete_bucket_after_emptying(s3, bucket_factory):
    name = bucket_factory()
    s3.put_object(Bucket=name, Key='a', Body=b'1')
    s3.delete_object(Bucket=name, Key='a')
    assert status_of(s3.delete_bucket(Bucket=name)) == 204
    with raises_s3('NoSuchBucket', 404):
        s3.list_objects_v2(Bucket=name)


def test_delete_missing_bucket(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.delete_bucket(Bucket=unique_bucket_name('rs-missing'))


def test_get_bucket_location(s3, bucket):
    resp = s3.get_bucket_location(Bucket=bucket)
    assert status_of(resp) == 200
    # S3 answers an empty LocationConstraint (None in boto3) for us-east-1.
    assert resp.get('LocationConstraint') in (None, 'us-east-1')


def test_get_bucket_location_missing_bucket(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.get_bucket_location(Bucket=unique_bucket_name('rs-missing'))


def test_create_bucket_with_empty_location_constraint(s3, bucket_factory):
    # The server is us-east-1 (the default --region): an empty constraint names it.
    name = bucket_factory(CreateBucketConfiguration={'LocationConstraint': ''})
    assert status_of(s3.head_bucket(Bucket=name)) == 200
    assert name in [b['Name'] for b in s3.list_buckets()['Buckets']]


def test_acls_are_private_and_only_private(s3, bucket):
    """Single-tenant: the owner has FULL_CONTROL; asking for anything wider is refused, not ignored."""
    s3.put_object(Bucket=bucket, Key='k', Body=b'x')
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key='k')):
        assert [g['Permission'] for g in acl['Grants']] == ['FULL_CONTROL']
        assert acl['Grants'][0]['Grantee']['Type'] == 'CanonicalUser'
        assert acl['Owner']['ID'] == acl['Grants'][0]['Grantee']['ID']
    assert status_of(s3.put_bucket_acl(Bucket=bucket, ACL='private')) == 200
    assert status_of(s3.put_object_acl(Bucket=bucket, Key='k', ACL='private')) == 200
    with raises_s3('NotImplemented', 501):
        s3.put_bucket_acl(Bucket=bucket, ACL='public-read')
    with raises_s3('NotImplemented', 501):
        s3.put_object_acl(Bucket=bucket, Key='k', ACL='public-read')
    with raises_s3('NoSuchKey', 404):
        s3.get_object_acl(Bucket=bucket, Key='missing')


def test_list_buckets_pages_and_prefix(make_server):
    """ListBuckets with MaxBuckets / ContinuationToken / Prefix (the paginated form)."""
    srv = make_server()
    s3 = srv.client()
    names = sorted(f'page-{i:02d}-bucket' for i in range(7)) + ['zz-other-bucket']
    for n in names:
        s3.create_bucket(Bucket=n)
    seen, token, pages = [], None, 0
    while True:
        kwargs = {'MaxBuckets': 3, 'Prefix': 'page-'}
        if token:
            kwargs['ContinuationToken'] = token
        resp = s3.list_buckets(**kwargs)
        pages += 1
        seen += [b['Name'] for b in resp['Buckets']]
        assert resp.get('Prefix') == 'page-'
        token = resp.get('ContinuationToken')
        if not token:
            break
    assert seen == [n for n in names if n.startswith('page-')]
    assert pages == 3
    assert [b['Name'] for b in s3.list_buckets()['Buckets']] == names
    with raises_s3('InvalidArgument', 400):
        s3.list_buckets(MaxBuckets=10001)
