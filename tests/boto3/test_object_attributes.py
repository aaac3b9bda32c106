"""GetObjectAttributes (`GET /bucket/key?attributes`): only the attributes asked for, the ETag
without quotes, the checksum with its type, and `ObjectParts` for multipart objects only,
paginated like ListParts."""

from s3util import crc32_b64, md5_hex, raises_s3

MIB = 1024 * 1024
ALL = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize']


def test_single_object_attributes(s3, bucket):
    body = b'hello world\n'
    s3.put_object(Bucket=bucket, Key='one', Body=body)
    r = s3.get_object_attributes(Bucket=bucket, Key='one', ObjectAttributes=ALL)
    assert r['ETag'] == md5_hex(body)
    assert r['ObjectSize'] == len(body)
    assert r['StorageClass'] == 'STANDARD'
    assert r['Checksum'] == {'ChecksumCRC32': crc32_b64(body), 'ChecksumType': 'FULL_OBJECT'}
    assert 'ObjectParts' not in r
    assert r['LastModified'] == s3.head_object(Bucket=bucket, Key='one')['LastModified']
    # Only what was asked for.
    r = s3.get_object_attributes(Bucket=bucket, Key='one', ObjectAttributes=['ObjectSize'])
    assert r['ObjectSize'] == len(body)
    assert not {'ETag', 'Checksum', 'StorageClass'} & set(r)


def test_multipart_object_parts_are_paginated(s3, bucket):
    sizes = [5 * MIB, 5 * MIB, 5 * MIB, 123]
    up = s3.create_multipart_upload(Bucket=bucket, Key='mp')['UploadId']
    parts = []
    for n, size in enumerate(sizes, start=1):
        etag = s3.upload_part(Bucket=bucket, Key='mp', UploadId=up, PartNumber=n,
                              Body=bytes([n]) * size)['ETag']
        parts.append({'PartNumber': n, 'ETag': etag})
    done = s3.complete_multipart_upload(Bucket=bucket, Key='mp', UploadId=up,
                                        MultipartUpload={'Parts': parts})
    r = s3.get_object_attributes(Bucket=bucket, Key='mp', ObjectAttributes=ALL)
    assert r['ETag'] == done['ETag'].strip('"') and r['ETag'].endswith('-4')
    assert r['ObjectSize'] == sum(sizes)
    op = r['ObjectParts']
    assert op['TotalPartsCount'] == 4 and op['IsTruncated'] is False
    assert [(p['PartNumber'], p['Size']) for p in op['Parts']] == list(enumerate(sizes, start=1))
    r = s3.get_object_attributes(Bucket=bucket, Key='mp', ObjectAttributes=['ObjectParts'],
                                 MaxParts=2, PartNumberMarker=1)
    op = r['ObjectParts']
    assert [p['PartNumber'] for p in op['Parts']] == [2, 3]
    assert op['IsTruncated'] is True and op['NextPartNumberMarker'] == 3
    assert op['PartNumberMarker'] == 1 and op['MaxParts'] == 2 and op['TotalPartsCount'] == 4
    r = s3.get_object_attributes(Bucket=bucket, Key='mp', ObjectAttributes=['ObjectParts'],
                                 PartNumberMarker=3)
    assert [p['PartNumber'] for p in r['ObjectParts']['Parts']] == [4]
    assert r['ObjectParts']['IsTruncated'] is False


def test_errors(s3, bucket):
    with raises_s3('NoSuchKey', 404):
        s3.get_object_attributes(Bucket=bucket, Key='missing', ObjectAttributes=ALL)
    with raises_s3('NoSuchBucket', 404):
        s3.get_object_attributes(Bucket='no-such-bucket-attrs', Key='k', ObjectAttributes=ALL)
    s3.put_object(Bucket=bucket, Key='k', Body=b'k')
    with raises_s3('InvalidArgument', 400):
        s3.get_object_attributes(Bucket=bucket, Key='k', ObjectAttributes=['Colour'])
