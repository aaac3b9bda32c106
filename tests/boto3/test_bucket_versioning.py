"""PutBucketVersioning: buckets are never versioned, so Enabled is 501 NotImplemented, Suspended is
accepted (a suspended bucket behaves exactly like an unversioned one: every version is `null`),
and a body that is not a VersioningConfiguration is 400 MalformedXML."""

import hashlib

import requests

from s3util import raises_s3, sigv4_sign, status_of, unique_bucket_name


def _raw_put_versioning(server, bucket, body):
    url = f'{server.url}/{bucket}?versioning'
    headers = sigv4_sign('PUT', url, server.access_key, server.secret_key,
                         payload_hash=hashlib.sha256(body).hexdigest())
    return requests.put(url, data=body, headers=headers, timeout=30)


def test_suspended_is_accepted_and_changes_nothing(s3, bucket):
    resp = s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={'Status': 'Suspended'})
    assert status_of(resp) == 200
    s3.put_object(Bucket=bucket, Key='k', Body=b'one')
    s3.put_object(Bucket=bucket, Key='k', Body=b'two')
    versions = s3.list_object_versions(Bucket=bucket)['Versions']
    assert [(v['Key'], v['VersionId']) for v in versions] == [('k', 'null')]
    # Not stored: GetBucketVersioning keeps answering as for a never-versioned bucket.
    assert 'Status' not in s3.get_bucket_versioning(Bucket=bucket)


def test_enabled_is_not_implemented(s3, bucket):
    with raises_s3('NotImplemented', 501):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={'Status': 'Enabled'})
    with raises_s3('NotImplemented', 501):
        s3.put_bucket_versioning(
            Bucket=bucket,
            VersioningConfiguration={'Status': 'Suspended', 'MFADelete': 'Enabled'},
            MFA='arn:aws:iam::123456789012:mfa/user 123456',
        )
    assert 'Status' not in s3.get_bucket_versioning(Bucket=bucket)


def test_missing_bucket(s3):
    with raises_s3('NoSuchBucket', 404):
        s3.put_bucket_versioning(Bucket=unique_bucket_name('rs-missing'),
                                 VersioningConfiguration={'Status': 'Suspended'})


def test_malformed_xml(server, bucket):
    for body in (b'<CreateBucketConfiguration/>', b'<VersioningConfiguration><Status>On</Status>'
                 b'</VersioningConfiguration>', b'<VersioningConfiguration>'):
        r = _raw_put_versioning(server, bucket, body)
        assert r.status_code == 400, (body, r.text)
        assert '<Code>MalformedXML</Code>' in r.text
    ok = (b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
          b'<Status>Suspended</Status></VersioningConfiguration>')
    assert _raw_put_versioning(server, bucket, ok).status_code == 200
