"""POST Object (browser form uploads): boto3 `generate_presigned_post` forms sent with
`requests.post(files=...)`, SigV2-signed policies, `${filename}`, success_action_status /
success_action_redirect, checksums, a streamed multi-MiB file, and each policy violation refused
with S3's error (and nothing stored)."""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

import pytest
import requests

from s3util import quoted_etag, raises_s3

BODY = b'form upload\n' + os.urandom(5000)


def _post(form, body=BODY, filename='photo.jpg', extra=None):
    data = dict(form['fields'])
    data.update(extra or {})
    return requests.post(form['url'], data=data, files={'file': (filename, body)},
                         allow_redirects=False, timeout=120)


def _error(r):
    root = ET.fromstring(r.content)
    assert root.tag == 'Error', r.text
    return r.status_code, root.findtext('Code'), root.findtext('Message')


def _absent(s3, bucket, key):
    with raises_s3('404', 404):
        s3.head_object(Bucket=bucket, Key=key)


def test_presigned_post_round_trip_with_metadata(s3, bucket):
    form = s3.generate_presigned_post(
        bucket, 'uploads/a.bin',
        Fields={'Content-Type': 'image/jpeg', 'x-amz-meta-color': 'blue'},
        Conditions=[{'Content-Type': 'image/jpeg'}, {'x-amz-meta-color': 'blue'},
                    ['content-length-range', 1, 1 << 20]],
        ExpiresIn=600)
    r = _post(form)
    assert r.status_code == 204, r.text
    assert r.headers['ETag'] == quoted_etag(BODY)
    got = s3.get_object(Bucket=bucket, Key='uploads/a.bin')
    assert got['Body'].read() == BODY
    assert got['ContentType'] == 'image/jpeg'
    assert got['Metadata'] == {'color': 'blue'}


def test_form_uploads_are_counted_as_post_object(s3, bucket, server):
    def posted():
        text = requests.get(server.endpoint + '/metrics', timeout=30).text
        prefix = 'ringstore_requests_total{op="PostObject",status="204"} '
        return sum(float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))

    before = posted()
    form = s3.generate_presigned_post(bucket, 'counted.bin', ExpiresIn=600)
    assert _post(form).status_code == 204
    assert posted() == before + 1


def test_filename_substitution_and_201_xml(s3, bucket):
    form = s3.generate_presigned_post(
        bucket, 'up/${filename}', Fields={'success_action_status': '201'},
        Conditions=[{'success_action_status': '201'}], ExpiresIn=600)
    r = _post(form, filename='holiday pic.jpg')
    assert r.status_code == 201, r.text
    root = ET.fromstring(r.content)
    assert root.tag == 'PostResponse'
    assert root.findtext('Bucket') == bucket
    assert root.findtext('Key') == 'up/holiday pic.jpg'
    assert root.findtext('ETag') == quoted_etag(BODY)
    assert s3.get_object(Bucket=bucket, Key='up/holiday pic.jpg')['Body'].read() == BODY


def test_success_action_redirect_303(s3, bucket):
    target = 'https://example.com/done?x=1'
    form = s3.generate_presigned_post(
        bucket, 'r.txt', Fields={'success_action_redirect': target},
        Conditions=[{'success_action_redirect': target}], ExpiresIn=600)
    r = _post(form)
    assert r.status_code == 303, r.text
    loc = urllib.parse.urlsplit(r.headers['Location'])
    assert loc.netloc == 'example.com' and loc.path == '/done'
    q = dict(urllib.parse.parse_qsl(loc.query))
    assert q == {'x': '1', 'bucket': bucket, 'key': 'r.txt', 'etag': quoted_etag(BODY)}


def test_large_file_streams_with_md5_etag(s3, bucket):
    big = os.urandom(7 * 1024 * 1024 + 12345)
    form = s3.generate_presigned_post(bucket, 'big.bin', ExpiresIn=600)
    r = _post(form, body=big)
    assert r.status_code == 204, r.text
    assert r.headers['ETag'] == f'"{hashlib.md5(big).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key='big.bin')['Body'].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()


def test_checksum_field_verified(s3, bucket):
    good = base64.b64encode(zlib.crc32(BODY).to_bytes(4, 'big')).decode()
    for key, value, status in [('ck-good', good, 204), ('ck-bad', 'AAAAAA==', 400)]:
        form = s3.generate_presigned_post(
            bucket, key, Fields={'x-amz-checksum-crc32': value},
            Conditions=[{'x-amz-checksum-crc32': value}], ExpiresIn=600)
        r = _post(form)
        assert r.status_code == status, r.text
    assert s3.get_object(Bucket=bucket, Key='ck-good')['Body'].read() == BODY
    _absent(s3, bucket, 'ck-bad')


def test_v2_signed_policy(server, s3, bucket):
    policy = base64.b64encode(json.dumps({
        'expiration': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(time.time() + 600)),
        'conditions': [{'bucket': bucket}, ['starts-with', '$key', 'v2/']],
    }).encode()).decode()
    sig = base64.b64encode(hmac.new(server.secret_key.encode(), policy.encode(),
                                    hashlib.sha1).digest()).decode()
    form = {'url': f'{server.endpoint}/{bucket}',
            'fields': {'key': 'v2/x', 'AWSAccessKeyId': server.access_key, 'policy': policy,
                       'signature': sig}}
    r = _post(form)
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key='v2/x')['Body'].read() == BODY
    form['fields']['signature'] = base64.b64encode(b'\0' * 20).decode()
    assert _error(_post(form))[:2] == (403, 'SignatureDoesNotMatch')


def test_policy_violations_refused(s3, bucket):
    def form(key='p/k', conditions=(), expires=600, fields=None):
        return s3.generate_presigned_post(bucket, key, Fields=fields,
                                          Conditions=list(conditions), ExpiresIn=expires)

    prefix = s3.generate_presigned_post(bucket, 'p/${filename}', ExpiresIn=600)
    prefix['fields']['key'] = 'elsewhere/k'
    status, code, msg = _error(_post(prefix))
    assert (status, code) == (403, 'AccessDenied')
    assert msg.startswith('Invalid according to Policy: Policy Condition failed: ')
    assert '"$key"' in msg

    rng = [['content-length-range', 10, 100]]
    assert _error(_post(form(conditions=rng)))[:2] == (400, 'EntityTooLarge')
    assert _error(_post(form(conditions=rng), body=b'tiny'))[:2] == (400, 'EntityTooSmall')

    assert _error(_post(form(expires=-10))) == (
        403, 'AccessDenied', 'Invalid according to Policy: Policy expired.')

    assert _error(_post(form(), extra={'x-amz-meta-extra': '1'})) == (
        403, 'AccessDenied', 'Invalid according to Policy: Extra input fields: x-amz-meta-extra')

    bad_sig = form()
    bad_sig['fields']['x-amz-signature'] = '0' * 64
    assert _error(_post(bad_sig))[:2] == (403, 'SignatureDoesNotMatch')

    no_policy = form()
    del no_policy['fields']['policy']
    assert _error(_post(no_policy))[:2] == (400, 'InvalidArgument')

    unsigned = {'url': form()['url'], 'fields': {'key': 'p/k'}}
    assert _error(_post(unsigned))[:2] == (403, 'AccessDenied')
    _absent(s3, bucket, 'p/k')
    _absent(s3, bucket, 'elsewhere/k')


def test_hand_built_form_with_boundary_lookalikes(server, s3, bucket):
    """The file holds near-boundaries (split across reads too) and a part follows it; preamble,
    header case and quoting vary as browsers vary them."""
    boundary = 'XyZzy42'
    content = (b'\r\n--XyZzy4' + os.urandom(70000) + b'\r\n--XyZz' + b'\r\n-' + b'--XyZzy42' +
               os.urandom(200000) + b'\r\n')
    form = s3.generate_presigned_post(bucket, 'hand/${filename}', ExpiresIn=600)
    parts = [b'preamble ignored\r\n']
    for name, value in form['fields'].items():
        parts.append(f'--{boundary}\r\ncontent-disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode() + b'\r\n')
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                 + content + b'\r\n')
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="after"\r\n\r\nx\r\n'
                 .encode())
    parts.append(f'--{boundary}--\r\n'.encode())
    r = requests.post(form['url'], data=b''.join(parts), timeout=120,
                      headers={'Content-Type': f'multipart/form-data; boundary="{boundary}"'})
    assert r.status_code == 204, r.text
    assert r.headers['ETag'] == f'"{hashlib.md5(content).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key='hand/f.bin')['Body'].read() == content
    # Truncated before the file's closing boundary: refused, nothing stored.
    cut = b''.join(parts[:-2]).replace(b'filename="f.bin"', b'filename="g.bin"')[:-1002]
    r = requests.post(form['url'], data=cut, timeout=120,
                      headers={'Content-Type': f'multipart/form-data; boundary={boundary}'})
    assert _error(r)[:2] == (400, 'MalformedPOSTRequest')
    with raises_s3('404', 404):
        s3.head_object(Bucket=bucket, Key='hand/g.bin')
