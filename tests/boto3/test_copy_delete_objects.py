"""CopyObject and DeleteObjects (POST ?delete), the way boto3 sends them.

DeleteObjects carries `x-amz-checksum-crc32` and no Content-MD5 in every boto3 configuration.
CopyObject's `x-amz-copy-source` arrives as `bucket/key` with the key percent-encoded (no leading
slash) for the dict form, and as given (leading slash allowed) for the string form.
"""

import os

import pytest

from s3util import quoted_etag, raises_s3, status_of, unique_bucket_name

MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# DeleteObjects


def test_delete_objects(client, bucket):
    keys = ['one', 'two', 'dir/three', 'sp ace+plus&amp<lt>.txt', 'ü/日本']
    for k in keys:
        client.put_object(Bucket=bucket, Key=k, Body=k.encode())
    client.put_object(Bucket=bucket, Key='survivor', Body=b's')
    resp = client.delete_objects(
        Bucket=bucket,
        Delete={'Objects': [{'Key': k} for k in keys + ['never-existed']]},
    )
    assert status_of(resp) == 200
    assert sorted(d['Key'] for d in resp.get('Deleted', [])) == sorted(keys + ['never-existed'])
    assert resp.get('Errors', []) == []
    assert [o['Key'] for o in client.list_objects_v2(Bucket=bucket)['Contents']] == ['survivor']
    for k in keys:
        with raises_s3('NoSuchKey', 404):
            client.get_object(Bucket=bucket, Key=k)


def test_delete_objects_quiet(s3, bucket):
    for k in ('q1', 'q2'):
        s3.put_object(Bucket=bucket, Key=k, Body=b'x')
    resp = s3.delete_objects(
        Bucket=bucket, Delete={'Objects': [{'Key': 'q1'}, {'Key': 'q2'}], 'Quiet': True}
    )
    assert status_of(resp) == 200
    assert resp.get('Deleted', []) == []
    assert resp.get('Errors', []) == []
    assert 'Contents' not in s3.list_objects_v2(Bucket=bucket)


def test_delete_objects_many(s3, bucket):
    from concurrent.futures import ThreadPoolExecutor

    keys = [f'many/{i:04d}' for i in range(1000)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b''), keys))
    resp = s3.delete_objects(Bucket=bucket, Delete={'Objects': [{'Key': k} for k in keys]})
    assert len(resp.get('Deleted', [])) == 1000
    assert 'Contents' not in s3.list_objects_v2(Bucket=bucket)


def test_delete_objects_missing_bucket(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.delete_objects(Bucket=unique_bucket_name('rs-missing'),
                          Delete={'Objects': [{'Key': 'k'}]})


# ---------------------------------------------------------------------------------------------
# CopyObject


@pytest.fixture
def source(s3, bucket):
    data = os.urandom(10_000)
    key = 'a dir/ü+x=1&y.txt'
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType='text/x-source',
                  Metadata={'Origin': 'source'}, CacheControl='no-store')
    return bucket, key, data


def test_copy_object_same_bucket(s3, source):
    bucket, key, data = source
    resp = s3.copy_object(Bucket=bucket, Key='copy/dst.txt', CopySource={'Bucket': bucket, 'Key': key})
    assert status_of(resp) == 200
    assert resp['CopyObjectResult']['ETag'] == quoted_etag(data)
    got = s3.get_object(Bucket=bucket, Key='copy/dst.txt')
    assert got['Body'].read() == data
    # MetadataDirective defaults to COPY: metadata and system headers travel with the data.
    assert got['Metadata'] == {'origin': 'source'}
    assert got['ContentType'] == 'text/x-source'
    assert got['CacheControl'] == 'no-store'
    # The source is untouched.
    assert s3.get_object(Bucket=bucket, Key=key)['Body'].read() == data


def test_copy_object_across_buckets(s3, source, bucket_factory):
    bucket, key, data = source
    other = bucket_factory()
    s3.copy_object(Bucket=other, Key=key, CopySource={'Bucket': bucket, 'Key': key})
    assert s3.get_object(Bucket=other, Key=key)['Body'].read() == data


def test_copy_object_string_source_with_leading_slash(s3, source):
    bucket, key, data = source
    s3.copy_object(Bucket=bucket, Key='from-string', CopySource=f'/{bucket}/{key}')
    assert s3.get_object(Bucket=bucket, Key='from-string')['Body'].read() == data


def test_copy_object_replace_metadata(s3, source):
    bucket, key, data = source
    s3.copy_object(
        Bucket=bucket, Key='replaced', CopySource={'Bucket': bucket, 'Key': key},
        MetadataDirective='REPLACE', Metadata={'New': 'yes'}, ContentType='application/x-new',
    )
    got = s3.get_object(Bucket=bucket, Key='replaced')
    assert got['Body'].read() == data
    assert got['Metadata'] == {'new': 'yes'}
    assert got['ContentType'] == 'application/x-new'
    assert got.get('CacheControl') is None


def test_copy_object_onto_itself_requires_replace(s3, source):
    bucket, key, data = source
    with raises_s3('InvalidRequest', 400):
        s3.copy_object(Bucket=bucket, Key=key, CopySource={'Bucket': bucket, 'Key': key})
    s3.copy_object(Bucket=bucket, Key=key, CopySource={'Bucket': bucket, 'Key': key},
                   MetadataDirective='REPLACE', Metadata={'Changed': '1'})
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got['Body'].read() == data
    assert got['Metadata'] == {'changed': '1'}


def test_copy_object_overwrites_destination(s3, source):
    bucket, key, data = source
    s3.put_object(Bucket=bucket, Key='dst', Body=b'old destination')
    s3.copy_object(Bucket=bucket, Key='dst', CopySource={'Bucket': bucket, 'Key': key})
    assert s3.get_object(Bucket=bucket, Key='dst')['Body'].read() == data


def test_copy_large_object(s3, bucket):
    data = os.urandom(17 * MiB + 1)
    s3.put_object(Bucket=bucket, Key='big-src', Body=data)
    resp = s3.copy_object(Bucket=bucket, Key='big-dst', CopySource={'Bucket': bucket, 'Key': 'big-src'})
    assert resp['CopyObjectResult']['ETag'] == quoted_etag(data)
    assert s3.get_object(Bucket=bucket, Key='big-dst')['Body'].read() == data


def test_copy_missing_source_key(s3, bucket):
    with raises_s3('NoSuchKey', 404):
        s3.copy_object(Bucket=bucket, Key='dst', CopySource={'Bucket': bucket, 'Key': 'nope'})
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='dst')


def test_copy_missing_source_bucket(s3, bucket):
    with raises_s3('NoSuchBucket', 404):
        s3.copy_object(Bucket=bucket, Key='dst',
                       CopySource={'Bucket': unique_bucket_name('rs-missing'), 'Key': 'k'})


def test_copy_into_missing_bucket(s3, source):
    bucket, key, _ = source
    with raises_s3('NoSuchBucket', 404):
        s3.copy_object(Bucket=unique_bucket_name('rs-missing'), Key='k',
                       CopySource={'Bucket': bucket, 'Key': key})


def test_copy_source_conditions(s3, source):
    """x-amz-copy-source-if-* decide whether the copy happens; a failed one is 412, never 304."""
    import datetime
    bucket, key, data = source
    etag = quoted_etag(data)
    src = {'Bucket': bucket, 'Key': key}
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    ok = [
        {'CopySourceIfMatch': etag},
        {'CopySourceIfNoneMatch': '"0123456789abcdef0123456789abcdef"'},
        {'CopySourceIfModifiedSince': past},
        {'CopySourceIfUnmodifiedSince': future},
    ]
    for i, cond in enumerate(ok):
        resp = s3.copy_object(Bucket=bucket, Key=f'cond/ok{i}', CopySource=src, **cond)
        assert status_of(resp) == 200, cond
        assert s3.get_object(Bucket=bucket, Key=f'cond/ok{i}')['Body'].read() == data
    failing = [
        {'CopySourceIfMatch': '"0123456789abcdef0123456789abcdef"'},
        {'CopySourceIfNoneMatch': etag},
        {'CopySourceIfModifiedSince': future},
        {'CopySourceIfUnmodifiedSince': past},
    ]
    for i, cond in enumerate(failing):
        with raises_s3('PreconditionFailed', 412):
            s3.copy_object(Bucket=bucket, Key=f'cond/bad{i}', CopySource=src, **cond)
        with raises_s3('NoSuchKey', 404):
            s3.get_object(Bucket=bucket, Key=f'cond/bad{i}')
