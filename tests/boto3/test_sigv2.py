"""AWS Signature Version 2: boto3's `s3` signer (header auth) on ordinary operations, SigV2
presigned URLs from boto3, `aws s3 presign` (its default) and `s3cmd signurl`, fetched with requests
and curl; wrong signatures and expired URLs are refused."""

import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
import requests
from botocore.client import Config

from harness import REGION
from s3util import quoted_etag, raises_s3

BODY = b'signature version 2\n' + os.urandom(3000)
KEY = 'dir/ünï code+plus and space.txt'

CURL = shutil.which('curl')
needs_curl = pytest.mark.skipif(CURL is None, reason='curl is not installed')
VENV_BIN = Path(sys.executable).parent


def _v2_client(server, secret=None):
    return boto3.client(
        's3',
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        config=Config(signature_version='s3', s3={'addressing_style': 'path'}),
        region_name=REGION,
    )


def _curl_get(url):
    p = subprocess.run([CURL, '-sS', '--max-time', '60', '-w', '\n%{http_code}', url],
                       capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr.decode(errors='replace')
    body, _, status = p.stdout.rpartition(b'\n')
    return int(status), body


def _error_code(content):
    root = ET.fromstring(content)
    assert root.tag == 'Error', content
    return root.findtext('Code'), root.findtext('Message')


def test_boto3_header_v2_operations(server, bucket):
    s3 = _v2_client(server)
    put = s3.put_object(Bucket=bucket, Key=KEY, Body=BODY, ContentType='text/plain',
                        Metadata={'color': 'blue'})
    assert put['ETag'] == quoted_etag(BODY)
    got = s3.get_object(Bucket=bucket, Key=KEY)
    assert got['Body'].read() == BODY
    assert got['Metadata'] == {'color': 'blue'}
    # response-* overrides are sub-resources in the SigV2 canonical resource.
    got = s3.get_object(Bucket=bucket, Key=KEY, ResponseContentType='application/x-test')
    assert got['ContentType'] == 'application/x-test'
    assert s3.head_object(Bucket=bucket, Key=KEY)['ContentLength'] == len(BODY)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix='dir/')
    assert [o['Key'] for o in listed['Contents']] == [KEY]
    assert s3.get_bucket_acl(Bucket=bucket)['Grants']
    # Multipart: uploads, uploadId and partNumber are sub-resources too.
    mpu = s3.create_multipart_upload(Bucket=bucket, Key='mp')
    part = s3.upload_part(Bucket=bucket, Key='mp', UploadId=mpu['UploadId'], PartNumber=1,
                          Body=BODY)
    s3.complete_multipart_upload(Bucket=bucket, Key='mp', UploadId=mpu['UploadId'],
                                 MultipartUpload={'Parts': [{'PartNumber': 1,
                                                             'ETag': part['ETag']}]})
    assert s3.get_object(Bucket=bucket, Key='mp')['Body'].read() == BODY
    s3.delete_objects(Bucket=bucket, Delete={'Objects': [{'Key': 'mp'}]})
    s3.delete_object(Bucket=bucket, Key=KEY)
    assert s3.list_objects_v2(Bucket=bucket)['KeyCount'] == 0


def test_boto3_header_v2_wrong_secret_refused(server, bucket):
    s3 = _v2_client(server, secret='not-the-secret')
    with raises_s3('SignatureDoesNotMatch', 403):
        s3.list_objects_v2(Bucket=bucket)
    with raises_s3('SignatureDoesNotMatch', 403):
        s3.put_object(Bucket=bucket, Key='x', Body=b'x')


def test_boto3_presigned_v2_get_and_put(server, bucket):
    s3 = _v2_client(server)
    put_url = s3.generate_presigned_url('put_object', Params={'Bucket': bucket, 'Key': KEY},
                                        ExpiresIn=600)
    assert 'AWSAccessKeyId=' in put_url and 'Expires=' in put_url
    assert 'X-Amz-Signature' not in put_url
    r = requests.put(put_url, data=BODY, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers['ETag'] == quoted_etag(BODY)
    get_url = s3.generate_presigned_url('get_object', Params={'Bucket': bucket, 'Key': KEY},
                                        ExpiresIn=600)
    r = requests.get(get_url, timeout=60)
    assert r.status_code == 200, r.text
    assert r.content == BODY
    # The signature covers the path: the same query on another key is refused.
    other = get_url.replace(urllib.parse.quote(KEY.split('/')[1]), 'other.txt')
    assert other != get_url
    r = requests.get(other, timeout=60)
    assert r.status_code == 403
    assert _error_code(r.content)[0] == 'SignatureDoesNotMatch'


def test_presigned_v2_tampered_and_expired(server, bucket):
    s3 = _v2_client(server)
    s3.put_object(Bucket=bucket, Key='k', Body=BODY)
    url = s3.generate_presigned_url('get_object', Params={'Bucket': bucket, 'Key': 'k'},
                                    ExpiresIn=600)
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    sig = query['Signature']
    query['Signature'] = ('A' if sig[0] != 'A' else 'B') + sig[1:]
    r = requests.get(parts._replace(query=urllib.parse.urlencode(query)).geturl(), timeout=60)
    assert r.status_code == 403
    assert _error_code(r.content)[0] == 'SignatureDoesNotMatch'
    # A correctly signed URL whose Expires has passed.
    expired = s3.generate_presigned_url('get_object', Params={'Bucket': bucket, 'Key': 'k'},
                                        ExpiresIn=-5)
    assert int(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(expired).query))['Expires']) \
        < time.time()
    r = requests.get(expired, timeout=60)
    assert r.status_code == 403
    assert _error_code(r.content) == ('AccessDenied', 'Request has expired')


def _cli_env(server, tmp_path):
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=str(tmp_path / 'none'),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / 'none'), HOME=str(tmp_path))
    return env


@needs_curl
def test_aws_cli_presign_default(server, bucket, tmp_path):
    _v2_client(server).put_object(Bucket=bucket, Key=KEY, Body=BODY)
    p = subprocess.run([str(VENV_BIN / 'aws'), '--endpoint-url', server.endpoint, 's3', 'presign',
                        f's3://{bucket}/{KEY}'], capture_output=True, timeout=120,
                       env=_cli_env(server, tmp_path))
    assert p.returncode == 0, p.stderr.decode(errors='replace')
    url = p.stdout.decode().strip()
    assert 'AWSAccessKeyId=' in url and 'Signature=' in url, url
    status, body = _curl_get(url)
    assert status == 200, body
    assert hashlib.md5(body).hexdigest() == hashlib.md5(BODY).hexdigest()


@needs_curl
def test_s3cmd_signurl(server, bucket, tmp_path):
    _v2_client(server).put_object(Bucket=bucket, Key=KEY, Body=BODY)
    host = server.endpoint.split('://', 1)[1]
    tls = (f'use_https = True\nsignurl_use_https = True\nca_certs_file = {server.tls.ca}\n'
           if server.tls else 'use_https = False\n')
    cfg = tmp_path / 's3cfg'
    cfg.write_text(f'[default]\naccess_key = {server.access_key}\n'
                   f'secret_key = {server.secret_key}\nhost_base = {host}\n'
                   f'host_bucket = {host}\n{tls}signature_v2 = True\n')
    p = subprocess.run([str(VENV_BIN / 's3cmd'), '-c', str(cfg), 'signurl',
                        f's3://{bucket}/{KEY}', '+600'], capture_output=True, timeout=120,
                       env=_cli_env(server, tmp_path))
    assert p.returncode == 0, p.stderr.decode(errors='replace')
    url = p.stdout.decode().strip()
    assert 'AWSAccessKeyId=' in url, url
    status, body = _curl_get(url)
    assert status == 200, body
    assert body == BODY
    # s3cmd's own requests sign with SigV2 headers (x-amz-date, `+0000` dates).
    p = subprocess.run([str(VENV_BIN / 's3cmd'), '-c', str(cfg), 'get', f's3://{bucket}/{KEY}',
                        str(tmp_path / 'got')], capture_output=True, timeout=120,
                       env=_cli_env(server, tmp_path))
    assert p.returncode == 0, p.stderr.decode(errors='replace')
    assert (tmp_path / 'got').read_bytes() == BODY
