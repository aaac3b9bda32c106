"""`--region` (env RINGSTORE_REGION, default us-east-1): GetBucketLocation and HeadBucket report it,
and CreateBucket judges a LocationConstraint as a regional S3 endpoint does (us-east-1 takes none;
another region takes only its own name)."""

import boto3
import pytest
from botocore.client import Config

from harness import ACCESS_KEY, SECRET_KEY
from s3util import header, raises_s3, status_of, unique_bucket_name

UNSPECIFIED = ('The unspecified location constraint is incompatible for the region specific '
               'endpoint this request was sent to.')


def _client(srv, region):
    return boto3.client('s3', endpoint_url=srv.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=region,
                        config=Config(signature_version='s3v4'))


def _created(s3):
    return [b['Name'] for b in s3.list_buckets()['Buckets']]


def test_default_region_is_us_east_1(s3, bucket):
    assert s3.get_bucket_location(Bucket=bucket).get('LocationConstraint') is None
    assert header(s3.head_bucket(Bucket=bucket), 'x-amz-bucket-region') == 'us-east-1'


@pytest.mark.parametrize('constraint,code', [
    ('eu-west-1', 'IllegalLocationConstraintException'),
    # us-east-1 is the one region never named in a constraint.
    ('us-east-1', 'InvalidLocationConstraint'),
])
def test_default_region_refuses_other_constraints(s3, constraint, code):
    name = unique_bucket_name()
    with raises_s3(code, 400):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={'LocationConstraint': constraint})
    assert name not in _created(s3)


@pytest.mark.parametrize('how', ['flag', 'env'])
def test_other_region(make_server, how):
    if how == 'flag':
        srv = make_server(extra_args=['--region', 'eu-central-1'])
    else:
        srv = make_server(env={'RINGSTORE_REGION': 'eu-central-1'})
    s3 = _client(srv, 'eu-central-1')
    name = unique_bucket_name()
    # No constraint: this endpoint is not us-east-1.
    with raises_s3('IllegalLocationConstraintException', 400) as err:
        s3.create_bucket(Bucket=name)
    assert err.value.response['Error']['Message'] == UNSPECIFIED
    for other in ('us-east-1', 'eu-west-1'):
        with raises_s3('IllegalLocationConstraintException', 400):
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={'LocationConstraint': other})
    assert _created(s3) == []
    resp = s3.create_bucket(Bucket=name,
                            CreateBucketConfiguration={'LocationConstraint': 'eu-central-1'})
    assert status_of(resp) == 200
    assert s3.get_bucket_location(Bucket=name)['LocationConstraint'] == 'eu-central-1'
    assert header(s3.head_bucket(Bucket=name), 'x-amz-bucket-region') == 'eu-central-1'
    with raises_s3('BucketAlreadyOwnedByYou', 409):
        s3.create_bucket(Bucket=name,
                         CreateBucketConfiguration={'LocationConstraint': 'eu-central-1'})
    # Requests signed for another region's scope are still accepted (the scope is not checked).
    other = _client(srv, 'us-east-1')
    other.put_object(Bucket=name, Key='k', Body=b'x')
    assert s3.get_object(Bucket=name, Key='k')['Body'].read() == b'x'
