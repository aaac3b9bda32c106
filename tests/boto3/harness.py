"""The ringstore server process and boto3 client construction used by the tests (see conftest.py)."""

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import boto3
from botocore.client import Config

ACCESS_KEY = 'RSTESTACCESSKEY00001'
SECRET_KEY = 'rsTestSecret/Key+0123456789abcdefghijKLMN'
REGION = 'us-east-1'

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

LISTEN_RE = re.compile(
    r'^ringstore listening on http://127\.0\.0\.1:(\d+) \((\d+) cores?, data (.+)\)$'
)


def make_client(endpoint, kind='default', access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """A boto3 S3 client built exactly like the seed guide does (plus the checksum variant)."""
    if kind == 'default':
        config = Config(signature_version='s3v4')
    elif kind == 'when_required':
        config = Config(
            signature_version='s3v4',
            request_checksum_calculation='when_required',
            response_checksum_validation='when_required',
        )
    else:
        raise ValueError(kind)
    return boto3.client(
        's3',
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
        region_name=REGION,
    )


class RingstoreServer:
    """One `ringstore serve` process on an ephemeral loopback port, restartable on its data dir."""

    def __init__(self, binary, data_dir, log_dir, name='server', extra_args=(), env=None):
        self.binary = str(binary)
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.name = name
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.proc = None
        self.port = None
        self.cores = None
        self.printed_data_dir = None
        self.listen_line = None
        self.stdout_lines = []
        self.log_path = None
        self.starts = 0
        self.exit_codes = []
        self._reader = None
        self._clients = {}

    # -- process control ----------------------------------------------------------------------
    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def url(self):
        return self.endpoint

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, 'already running'
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_path = self.log_dir / f'{self.name}-{self.starts}.stderr.log'
        env = dict(os.environ)
        env.update(
            RINGSTORE_ACCESS_KEY=self.access_key,
            RINGSTORE_SECRET_KEY=self.secret_key,
        )
        env.setdefault('RUST_BACKTRACE', '1')
        env.update(self.extra_env)
        cmd = [self.binary, 'serve', '--address', '127.0.0.1:0', '--data', str(self.data_dir)]
        cmd += self.extra_args
        self.stdout_lines = []
        self.listen_line = None
        lines = queue.Queue()
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env
            )
        proc = self.proc

        def read_stdout():
            for raw in proc.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\r\n')
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=read_stdout, name=f'{self.name}-stdout', daemon=True)
        self._reader.start()

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort_start()
                raise RuntimeError(
                    f'ringstore did not print its listening line within {START_TIMEOUT:.0f} s '
                    f'(stdout so far: {self.stdout_lines!r}); stderr tail:\n{self.stderr_tail()}'
                )
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = proc.wait()
                self.proc = None
                raise RuntimeError(
                    f'ringstore exited with code {rc} before it was ready '
                    f'(stdout: {self.stdout_lines!r}); stderr tail:\n{self.stderr_tail()}'
                )
            m = LISTEN_RE.match(line)
            if m:
                self.listen_line = line
                self.port = int(m.group(1))
                self.cores = int(m.group(2))
                self.printed_data_dir = m.group(3)
                self._clients = {}
                return self

    def _abort_start(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns the exit code (None if killed)."""
        self._close_clients()
        if self.proc is None:
            return None
        proc = self.proc
        killed = False
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.proc = None
        rc = None if killed else proc.returncode
        self.exit_codes.append(rc)
        return rc

    def restart(self):
        """Stop cleanly (SIGTERM) and start again on the same data dir; the port may change.

        Returns the exit code of the stopped process (0 expected; None if it had to be killed).
        """
        rc = self.stop()
        self.start()
        return rc

    def stderr_tail(self, n=40):
        try:
            text = Path(self.log_path).read_text(errors='replace')
        except OSError:
            return '(no log)'
        return '\n'.join(text.splitlines()[-n:])

    # -- clients ------------------------------------------------------------------------------
    def client(self, kind='default', access_key=None, secret_key=None):
        """A client for the current endpoint (cached per endpoint when using the server's keys)."""
        if access_key is not None or secret_key is not None:
            return make_client(
                self.endpoint, kind, access_key or self.access_key, secret_key or self.secret_key
            )
        key = (kind, self.endpoint)
        if key not in self._clients:
            self._clients[key] = make_client(self.endpoint, kind)
        return self._clients[key]

    def _close_clients(self):
        for c in self._clients.values():
            close = getattr(c, 'close', None)
            if close:
                close()
        self._clients = {}
