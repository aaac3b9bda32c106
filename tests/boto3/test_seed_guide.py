"""The seed boto3 guide, sections 4.1-4.5, run verbatim against ringstore.

The guide's code is copied unchanged (same calls, same variable names, `bucket_name = 'my-bucket'`);
only the assertions around it are added. No other test uses the bucket name 'my-bucket'.
"""

import filecmp

import pytest
from botocore.exceptions import ClientError

from s3util import empty_and_delete_bucket, raises_s3

HELLO = b'Hello from the ringstore seed guide test!\n' + bytes(range(256)) + b'\nbye\n'


@pytest.fixture
def cleanup_my_bucket(server):
    yield
    # Only matters when the test failed half-way; normally section 4.5 already deleted it.
    s3 = server.client()
    try:
        s3.head_bucket(Bucket='my-bucket')
    except ClientError:
        return
    empty_and_delete_bucket(s3, 'my-bucket')


def test_seed_guide_sections_4_1_to_4_5(s3, tmp_path, monkeypatch, capsys, cleanup_my_bucket):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'hello.txt').write_bytes(HELLO)
    capsys.readouterr()

    # ---- 4.1 Bucket erstellen ----------------------------------------------------------------
    bucket_name = 'my-bucket'

    try:
        s3.create_bucket(Bucket=bucket_name)
        print(f'Bucket {bucket_name} created.')
    except s3.exceptions.BucketAlreadyOwnedByYou:
        print(f'Bucket {bucket_name} already exists.')

    assert capsys.readouterr().out == 'Bucket my-bucket created.\n'

    # Run 4.1 again: the bucket exists and is ours. In us-east-1 (the default region) S3's legacy
    # rule answers 200, as AWS does there; the guide's code runs through without an error.
    try:
        s3.create_bucket(Bucket=bucket_name)
        print(f'Bucket {bucket_name} created.')
    except s3.exceptions.BucketAlreadyOwnedByYou:
        print(f'Bucket {bucket_name} already exists.')

    assert capsys.readouterr().out == 'Bucket my-bucket created.\n'

    # ---- 4.2 Datei hochladen -----------------------------------------------------------------
    s3.upload_file('hello.txt', bucket_name, 'hello.txt')
    print('File uploaded.')

    assert capsys.readouterr().out == 'File uploaded.\n'

    # ---- 4.3 Datei herunterladen -------------------------------------------------------------
    s3.download_file(bucket_name, 'hello.txt', 'hello-downloaded.txt')
    print('File downloaded.')

    assert capsys.readouterr().out == 'File downloaded.\n'
    assert filecmp.cmp('hello.txt', 'hello-downloaded.txt', shallow=False)
    assert (tmp_path / 'hello-downloaded.txt').read_bytes() == HELLO

    # ---- 4.4 Objekte auflisten ---------------------------------------------------------------
    response = s3.list_objects_v2(Bucket=bucket_name)
    for obj in response.get('Contents', []):
        print(f"- {obj['Key']} ({obj['Size']} bytes)")

    out = capsys.readouterr().out
    assert out == f'- hello.txt ({len(HELLO)} bytes)\n'

    # ---- 4.5 Objekt und Bucket löschen -------------------------------------------------------
    s3.delete_object(Bucket=bucket_name, Key='hello.txt')
    print('Object deleted.')

    s3.delete_bucket(Bucket=bucket_name)
    print('Bucket deleted.')

    assert capsys.readouterr().out == 'Object deleted.\nBucket deleted.\n'

    with raises_s3('404', 404):
        s3.head_bucket(Bucket=bucket_name)
    assert bucket_name not in [b['Name'] for b in s3.list_buckets()['Buckets']]
