"""Conditional writes (PutObject and CompleteMultipartUpload) with full If-Match / If-None-Match
values: `*` or ETag lists, weak tags compared as RFC 9110 says (If-Match strongly: `W/"e"` never
matches; If-None-Match weakly: `W/"e"` matches `"e"`). If-Match on a missing key is 404
NoSuchKey, a failed condition 412 PreconditionFailed, and nothing is written then.

Small bodies take the inline path (the owner reserves the key), large ones the file path (the
owner checks at commit): both are exercised."""

import os

import pytest

from s3util import quoted_etag, raises_s3, status_of

OTHER = '"0123456789abcdef0123456789abcdef"'
MiB = 1024 * 1024
SIZES = {'small': 100, 'large': MiB + 1}


def _put(s3, bucket, key, body, **cond):
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **cond)


def _weak(etag):
    return f'W/{etag}'


@pytest.fixture(params=sorted(SIZES))
def body(request):
    return os.urandom(SIZES[request.param])


# Each case: headers built from the current ETag `e`, and whether the write happens.
CASES = {
    'if-match-list-hit': (lambda e: {'IfMatch': f'{OTHER}, {e}'}, True),
    'if-match-list-miss': (lambda e: {'IfMatch': f'{OTHER},"feedface"'}, False),
    'if-match-weak-never-matches': (lambda e: {'IfMatch': _weak(e)}, False),
    'if-match-star': (lambda e: {'IfMatch': '*'}, True),
    'if-none-match-star': (lambda e: {'IfNoneMatch': '*'}, False),
    'if-none-match-list-hit': (lambda e: {'IfNoneMatch': f'{OTHER} ,{e}'}, False),
    'if-none-match-weak-matches': (lambda e: {'IfNoneMatch': _weak(e)}, False),
    'if-none-match-list-miss': (lambda e: {'IfNoneMatch': f'{OTHER}, W/"feedface"'}, True),
    'both-hold': (lambda e: {'IfMatch': e, 'IfNoneMatch': OTHER}, True),
    'if-match-holds-if-none-match-fails': (lambda e: {'IfMatch': e, 'IfNoneMatch': '*'}, False),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_put_object_on_existing_key(s3, bucket, body, case):
    make, writes = CASES[case]
    old = s3.put_object(Bucket=bucket, Key='k', Body=b'old')['ETag']
    cond = make(old)
    if writes:
        assert status_of(_put(s3, bucket, 'k', body, **cond)) == 200
        expect = body
    else:
        with raises_s3('PreconditionFailed', 412):
            _put(s3, bucket, 'k', body, **cond)
        expect = b'old'
    got = s3.get_object(Bucket=bucket, Key='k')
    assert got['Body'].read() == expect
    assert got['ETag'] == quoted_etag(expect)


@pytest.mark.parametrize('cond', [{'IfMatch': '*'}, {'IfMatch': f'{OTHER}, "a"'},
                                  {'IfMatch': 'W/"a"'}], ids=['star', 'list', 'weak'])
def test_if_match_on_missing_key_is_no_such_key(s3, bucket, body, cond):
    with raises_s3('NoSuchKey', 404):
        _put(s3, bucket, 'missing', body, **cond)
    with raises_s3('NoSuchKey', 404):
        s3.get_object(Bucket=bucket, Key='missing')


@pytest.mark.parametrize('cond', [{'IfNoneMatch': '*'}, {'IfNoneMatch': f'{OTHER}, W/"a"'}],
                         ids=['star', 'list'])
def test_if_none_match_on_missing_key_writes(s3, bucket, body, cond):
    assert status_of(_put(s3, bucket, 'new', body, **cond)) == 200
    assert s3.get_object(Bucket=bucket, Key='new')['Body'].read() == body


def _complete(s3, bucket, key, **cond):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)['UploadId']
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b'mp-body')
    parts = {'Parts': [{'ETag': part['ETag'], 'PartNumber': 1}]}
    try:
        return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                            MultipartUpload=parts, **cond)
    except Exception:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up)
        raise


@pytest.mark.parametrize('case', sorted(CASES))
def test_complete_multipart_upload_on_existing_key(s3, bucket, case):
    make, writes = CASES[case]
    old = s3.put_object(Bucket=bucket, Key='k', Body=b'old')['ETag']
    if writes:
        assert status_of(_complete(s3, bucket, 'k', **make(old))) == 200
        expect = b'mp-body'
    else:
        with raises_s3('PreconditionFailed', 412):
            _complete(s3, bucket, 'k', **make(old))
        expect = b'old'
    assert s3.get_object(Bucket=bucket, Key='k')['Body'].read() == expect


def test_complete_multipart_upload_if_match_missing_key(s3, bucket):
    with raises_s3('NoSuchKey', 404):
        _complete(s3, bucket, 'missing', IfMatch=f'{OTHER}, "a"')
    assert status_of(_complete(s3, bucket, 'fresh', IfNoneMatch=f'{OTHER}')) == 200
