"""Durability across a clean restart: SIGTERM, start again on the same data dir, all is there."""

import hashlib
import os

from s3util import quoted_etag

MiB = 1024 * 1024


def test_objects_and_buckets_survive_restart(server, bucket_factory):
    s3 = server.client()
    full = bucket_factory()
    empty = bucket_factory()

    objects = {
        'plain.txt': (b'plain text\n', {}),
        'empty': (b'', {}),
        'meta/obj.json': (b'{"a": 1}', {
            'ContentType': 'application/json',
            'CacheControl': 'no-cache',
            'ContentDisposition': 'inline',
            'ContentEncoding': 'identity',
            'Metadata': {'Foo': 'bar', 'Owner': 'ringstore tests'},
        }),
        'big/3mib.bin': (os.urandom(3 * MiB), {}),
        'ü nicode/日本 +&=%.txt': ('unicode ü'.encode(), {'Metadata': {'k': 'v'}}),
        'a': (b'a', {}),
        'a/b': (b'a/b', {}),
    }
    before = {}
    for key, (data, extra) in objects.items():
        put = s3.put_object(Bucket=full, Key=key, Body=data, **extra)
        assert put['ETag'] == quoted_etag(data)
        head = s3.head_object(Bucket=full, Key=key)
        before[key] = head
    s3.put_object(Bucket=full, Key='deleted-before-restart', Body=b'x')
    s3.delete_object(Bucket=full, Key='deleted-before-restart')
    s3.put_object(Bucket=full, Key='overwritten', Body=b'old')
    s3.put_object(Bucket=full, Key='overwritten', Body=b'new')
    objects['overwritten'] = (b'new', {})
    before['overwritten'] = s3.head_object(Bucket=full, Key='overwritten')
    listing_before = s3.list_objects_v2(Bucket=full)['Contents']

    rc = server.restart()
    assert rc == 0, f'server exit code after SIGTERM was {rc!r}, expected 0'

    s3 = server.client()
    names = [b['Name'] for b in s3.list_buckets()['Buckets']]
    assert full in names and empty in names
    assert s3.head_bucket(Bucket=empty)['ResponseMetadata']['HTTPStatusCode'] == 200
    assert 'Contents' not in s3.list_objects_v2(Bucket=empty)

    for key, (data, extra) in objects.items():
        got = s3.get_object(Bucket=full, Key=key)
        body = got['Body'].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), key
        b = before[key]
        assert got['ETag'] == b['ETag'] == quoted_etag(data), key
        assert got['ContentLength'] == len(data)
        assert got['Metadata'] == b['Metadata'], key
        assert got['ContentType'] == b['ContentType'], key
        assert got['LastModified'] == b['LastModified'], key
        for field in ('CacheControl', 'ContentDisposition', 'ContentEncoding'):
            assert got.get(field) == b.get(field), (key, field)
    assert before['meta/obj.json']['Metadata'] == {'foo': 'bar', 'owner': 'ringstore tests'}

    listing_after = s3.list_objects_v2(Bucket=full)['Contents']
    assert listing_after == listing_before
    assert [o['Key'] for o in listing_after] == sorted(objects, key=lambda k: k.encode())

    # The restarted server accepts writes and deletes as usual.
    s3.put_object(Bucket=full, Key='after-restart', Body=b'after')
    assert s3.get_object(Bucket=full, Key='after-restart')['Body'].read() == b'after'
    s3.delete_object(Bucket=full, Key='plain.txt')
    assert 'plain.txt' not in [o['Key'] for o in s3.list_objects_v2(Bucket=full)['Contents']]


def test_deleted_bucket_stays_deleted_after_restart(server):
    s3 = server.client()
    name = 'rs-deleted-' + os.urandom(8).hex()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key='k', Body=b'v')
    s3.delete_object(Bucket=name, Key='k')
    s3.delete_bucket(Bucket=name)

    assert server.restart() == 0

    s3 = server.client()
    assert name not in [b['Name'] for b in s3.list_buckets()['Buckets']]
    s3.create_bucket(Bucket=name)
    try:
        assert 'Contents' not in s3.list_objects_v2(Bucket=name)
    finally:
        s3.delete_bucket(Bucket=name)
