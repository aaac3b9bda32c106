"""`ringstore bench` timed-workload reports validate against the documented JSON schema.

The bench binary (the one under test) loads a plain-HTTP server (the bench client speaks no
TLS, so also in the suite's HTTPS pass) with the mixed, multipart and list workloads, with the
client ceiling measured; each `--json FILE` report must validate against
tuning/bench-run.schema.json, its `--plot` file must parse as SVG, and what it wrote must be
readable by boto3 when `--keep-data` keeps it.
"""

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from harness import make_client

SCHEMA = Path(__file__).resolve().parents[2] / 'tuning' / 'bench-run.schema.json'


def run_bench(ringstore_bin, server, args):
    env = {'RINGSTORE_ACCESS_KEY': server.access_key, 'RINGSTORE_SECRET_KEY': server.secret_key,
           'PATH': '/usr/bin:/bin'}
    cmd = [str(ringstore_bin), 'bench', '--endpoint', server.endpoint] + args
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return proc


def test_mixed_report_validates_against_the_schema(ringstore_bin, make_server, tmp_path):
    server = make_server(tls=False)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    report, plot = tmp_path / 'mixed.json', tmp_path / 'mixed.svg'
    run_bench(ringstore_bin, server, [
        '--scenario', 'mixed', '--objects', '60', '--count', '600', '--concurrency', '4',
        '--object-size', '1KiB', '--object-size-max', '32KiB', '--checksum', 'crc32c',
        '--json', str(report), '--plot', str(plot)])
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, schema)
    assert doc['client_ceiling'] is not None, 'the ceiling is measured by default'
    assert {o['op'] for o in doc['operations']} == {'GET', 'STAT', 'PUT', 'DELETE'}
    assert sum(o['total_ops'] for o in doc['operations']) == 600
    assert ET.parse(plot).getroot().tag.endswith('svg')
    # A document with a field the schema does not know is refused: the schema is strict.
    doc['params']['surprise'] = 1
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError('the schema accepted an unknown field')


@pytest.mark.parametrize('workload', ['multipart', 'list'])
def test_multipart_and_list_reports_validate(ringstore_bin, make_server, tmp_path, workload):
    server = make_server(tls=False)
    schema = json.loads(SCHEMA.read_text())
    report = tmp_path / f'{workload}.json'
    args = {
        'multipart': ['--size', '5243880', '--part-size', '5MiB', '--count', '3', '--checksum', 'crc32'],
        'list': ['--objects', '120', '--object-size', '10', '--pages', '30', '--page-size', '25'],
    }[workload]
    run_bench(ringstore_bin, server, ['--scenario', workload, '--concurrency', '2', '--json', str(report)]
              + args)
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, schema)
    assert doc['client_ceiling'] is not None, 'the ceiling is measured by default'
    if workload == 'multipart':
        assert {o['op'] for o in doc['operations']} == {'MPU-CREATE', 'MPU-PART', 'MPU-COMPLETE'}
        assert doc['multipart']['objects_completed'] == 3 and doc['multipart']['head_checked'] is True
        assert {o['op'] for o in doc['client_ceiling']['operations']} >= {'MPU-PART'}
    else:
        assert [o['op'] for o in doc['operations']] == ['LIST'] and doc['listed_keys'] == 120
    # Nothing is left on the server: no bucket, so no upload either.
    assert make_client(server.endpoint).list_buckets()['Buckets'] == []


def test_kept_objects_are_real_objects(ringstore_bin, make_server):
    server = make_server(tls=False)
    s3, bucket = make_client(server.endpoint), 'bench-kept'
    s3.create_bucket(Bucket=bucket)
    run_bench(ringstore_bin, server, [
        '--scenario', 'put', '--count', '25', '--concurrency', '2', '--bucket', bucket,
        '--prefix', 'bench/run-1/', '--object-size', '777', '--no-ceiling'])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix='bench/run-1/')
    assert listed['KeyCount'] == 25
    assert all(o['Size'] == 777 for o in listed['Contents'])
