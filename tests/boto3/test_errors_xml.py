"""Error documents, authentication failures and x-amz-request-id on every response."""

import datetime
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from s3util import header, raises_s3, sigv4_sign, unique_bucket_name


def _error_xml(r):
    root = ET.fromstring(r.content)
    assert root.tag == 'Error', f'root element is {root.tag!r}: {r.text!r}'
    return {child.tag: (child.text or '') for child in root}


def _assert_s3_error(r, status, code):
    assert r.status_code == status, f'HTTP {r.status_code}: {r.text!r}'
    assert r.headers.get('Content-Type', '').startswith('application/xml'), r.headers
    fields = _error_xml(r)
    assert fields.get('Code') == code, fields
    assert fields.get('Message'), 'Message must not be empty'
    assert fields.get('RequestId'), 'RequestId element missing or empty'
    assert r.headers.get('x-amz-request-id'), 'x-amz-request-id header missing'
    assert fields['RequestId'] == r.headers['x-amz-request-id']
    return fields


# ---------------------------------------------------------------------------------------------
# Anonymous (unsigned) requests


def test_anonymous_list_buckets_is_access_denied(server):
    r = requests.get(server.endpoint + '/', timeout=30)
    _assert_s3_error(r, 403, 'AccessDenied')


def test_anonymous_get_object_is_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key='secret.txt', Body=b'secret')
    r = requests.get(f'{server.endpoint}/{bucket}/secret.txt', timeout=30)
    _assert_s3_error(r, 403, 'AccessDenied')
    assert b'secret' not in r.content.replace(b'secret.txt', b'')


def test_anonymous_put_is_denied_and_creates_nothing(server, s3, bucket):
    name = unique_bucket_name('rs-anon')
    r = requests.put(f'{server.endpoint}/{name}', timeout=30)
    _assert_s3_error(r, 403, 'AccessDenied')
    r = requests.put(f'{server.endpoint}/{bucket}/anon.txt', data=b'x' * 100_000, timeout=30)
    _assert_s3_error(r, 403, 'AccessDenied')
    assert name not in [b['Name'] for b in s3.list_buckets()['Buckets']]
    assert 'Contents' not in s3.list_objects_v2(Bucket=bucket)


def test_anonymous_head_is_403_with_request_id(server, bucket):
    r = requests.head(f'{server.endpoint}/{bucket}', timeout=30)
    assert r.status_code == 403
    assert r.headers.get('x-amz-request-id')


# ---------------------------------------------------------------------------------------------
# Bad credentials through boto3


def test_wrong_secret_is_signature_does_not_match(server, bucket):
    bad = server.client(secret_key=server.secret_key + 'x')
    with raises_s3('SignatureDoesNotMatch', 403):
        bad.list_buckets()
    with raises_s3('SignatureDoesNotMatch', 403):
        bad.list_objects_v2(Bucket=bucket)
    with raises_s3('SignatureDoesNotMatch', 403):
        bad.get_object(Bucket=bucket, Key='anything')


def test_wrong_secret_put_with_body_is_rejected_and_connection_survives(server, s3, bucket):
    """The server may reject before reading the body (Expect: 100-continue); either way the
    client gets the error, nothing is stored, and the next requests work."""
    bad = server.client(secret_key=server.secret_key + 'x')
    for i in range(3):
        with raises_s3('SignatureDoesNotMatch', 403):
            bad.put_object(Bucket=bucket, Key=f'bad-{i}', Body=b'z' * (1024 * 1024))
        # A good request over the same client type (pooled connections) afterwards works.
        s3.put_object(Bucket=bucket, Key=f'good-{i}', Body=b'ok')
    keys = [o['Key'] for o in s3.list_objects_v2(Bucket=bucket)['Contents']]
    assert keys == ['good-0', 'good-1', 'good-2']


@pytest.mark.parametrize('access_key', ['NOSUCHACCESSKEY00000', 'ringstoreadmin'])
def test_unknown_access_key_is_invalid_access_key_id(server, access_key):
    # 'ringstoreadmin' is the built-in dev key; with explicit keys configured it must not work.
    bad = server.client(access_key=access_key, secret_key='ringstoresecret')
    with raises_s3('InvalidAccessKeyId', 403):
        bad.list_buckets()
    with raises_s3('InvalidAccessKeyId', 403):
        bad.create_bucket(Bucket=unique_bucket_name('rs-badkey'))


def test_request_time_too_skewed(server):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    url = server.endpoint + '/'
    r = requests.get(url, headers=sigv4_sign('GET', url, server.access_key, server.secret_key,
                                             when=when), timeout=30)
    _assert_s3_error(r, 403, 'RequestTimeTooSkewed')


def test_raw_signed_request_works(server):
    """Control for the raw-signing tests: a correctly signed raw request succeeds."""
    url = server.endpoint + '/'
    r = requests.get(url, headers=sigv4_sign('GET', url, server.access_key, server.secret_key),
                     timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers.get('x-amz-request-id')
    root = ET.fromstring(r.content)
    assert root.tag.endswith('ListAllMyBucketsResult')


def test_malformed_authorization_header(server):
    r = requests.get(server.endpoint + '/', headers={'Authorization': 'AWS4-HMAC-SHA256 nonsense'},
                     timeout=30)
    _assert_s3_error(r, 400, 'AuthorizationHeaderMalformed')


# ---------------------------------------------------------------------------------------------
# x-amz-request-id everywhere


def test_every_response_has_request_id(server, s3):
    ids = []

    def check(resp):
        rid = header(resp, 'x-amz-request-id')
        assert rid, f'no x-amz-request-id in {resp["ResponseMetadata"]}'
        assert resp['ResponseMetadata'].get('RequestId') == rid
        ids.append(rid)

    def check_error(call, *args, **kwargs):
        with pytest.raises(ClientError) as ei:
            call(*args, **kwargs)
        check(ei.value.response)

    name = unique_bucket_name()
    check(s3.create_bucket(Bucket=name))
    try:
        check(s3.head_bucket(Bucket=name))
        check(s3.list_buckets())
        put = s3.put_object(Bucket=name, Key='k', Body=b'0123456789')
        check(put)
        check(s3.head_object(Bucket=name, Key='k'))
        got = s3.get_object(Bucket=name, Key='k')
        got['Body'].read()
        check(got)
        ranged = s3.get_object(Bucket=name, Key='k', Range='bytes=0-1')
        ranged['Body'].read()
        check(ranged)
        check(s3.list_objects_v2(Bucket=name))
        check(s3.list_objects(Bucket=name))
        check(s3.get_bucket_location(Bucket=name))

        check_error(s3.get_object, Bucket=name, Key='missing')  # NoSuchKey 404
        check_error(s3.head_object, Bucket=name, Key='missing')  # 404, no body
        check_error(s3.get_object, Bucket=unique_bucket_name('rs-missing'), Key='k')
        check_error(s3.create_bucket, Bucket=name,  # 400 IllegalLocationConstraintException
                    CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})
        check_error(s3.create_bucket, Bucket='UPPER')  # 400
        check_error(s3.delete_bucket, Bucket=name)  # BucketNotEmpty
        check_error(s3.get_object, Bucket=name, Key='k', Range='bytes=100-')  # 416
        check_error(s3.get_object, Bucket=name, Key='k', IfMatch='"nope"')  # 412
        check_error(s3.get_object, Bucket=name, Key='k', IfNoneMatch=put['ETag'])  # 304
        check_error(server.client(secret_key='wrong').list_buckets)  # 403

        check(s3.delete_object(Bucket=name, Key='k'))
    finally:
        try:
            s3.delete_object(Bucket=name, Key='k')
        finally:
            deleted = s3.delete_bucket(Bucket=name)
    check(deleted)
    assert len(set(ids)) == len(ids), f'request ids are not unique: {ids}'


def test_error_body_for_no_such_key(server, s3, bucket):
    """Raw look at an error document of a signed request."""
    url = f'{server.endpoint}/{bucket}/no/such/key.txt'
    r = requests.get(url, headers=sigv4_sign('GET', url, server.access_key, server.secret_key),
                     timeout=30)
    fields = _assert_s3_error(r, 404, 'NoSuchKey')
    assert fields.get('Key') in (None, 'no/such/key.txt')
    if 'Resource' in fields:
        assert fields['Resource'] == f'/{bucket}/no/such/key.txt'
