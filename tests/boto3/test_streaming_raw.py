"""aws-chunked request bodies over real sockets, split at every awkward place.

A small raw-socket HTTP/1.1 client (python `socket`, TCP_NODELAY) sends PutObject and UploadPart
requests whose bodies are aws-chunked exactly as boto3 sends them over HTTPS
(`https_put_object_default.txt` in the boto3 wire captures):

    Transfer-Encoding: chunked                      (outer HTTP framing; or Content-Length)
    Content-Encoding: aws-chunked
    X-Amz-Trailer: x-amz-checksum-crc32
    X-Amz-Decoded-Content-Length: <payload size>
    X-Amz-Content-SHA256: STREAMING-UNSIGNED-PAYLOAD-TRAILER

    hex(size)\\r\\n<data>\\r\\n ... 0\\r\\nx-amz-checksum-crc32:<b64>\\r\\n\\r\\n

and the signed form `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` with chained chunk signatures computed
here. The bytes go out 1 per send, split at every single offset, and split inside chunk-size
lines, CRLFs and the trailer, with short sleeps so the server really sees separate segments.
Every accepted request must store exactly the payload; every rejected one must store nothing.
"""

import base64
import datetime
import hashlib
import hmac
import os
import socket
import time
import urllib.parse

import pytest
from harness import half_close

from s3util import (
    EMPTY_SHA256,
    crc32_b64,
    multipart_etag,
    quoted_etag,
    raises_s3,
    sigv4_sign,
)

MiB = 1024 * 1024
UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'
SIGNED_PAYLOAD = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
SIGNED_PAYLOAD_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
FRAMINGS = ['te-chunked', 'content-length']


# ---------------------------------------------------------------------------------------------
# Building bodies


class Stream:
    """An aws-chunked stream and the offsets of its interesting places (name -> [offsets])."""

    def __init__(self):
        self.data = bytearray()
        self.marks = {}

    def mark(self, name, delta=0):
        self.marks.setdefault(name, []).append(len(self.data) + delta)

    def add(self, b):
        self.data += b


def unsigned_stream(payload, chunk_sizes=None, checksum=None, trailer_name='x-amz-checksum-crc32'):
    """aws-chunked (STREAMING-UNSIGNED-PAYLOAD-TRAILER) with a CRC32 trailer, as boto3 sends it."""
    s = Stream()
    for piece in _pieces(payload, chunk_sizes):
        line = b'%x' % len(piece)
        s.mark('size-line', 1 if len(line) > 1 else 0)   # inside the hex digits (if >1 digit)
        s.mark('size-cr-lf', len(line) + 1)                # between CR and LF after the size
        s.add(line + b'\r\n')
        s.mark('data-start')
        s.mark('data-middle', len(piece) // 2)
        s.add(piece)
        s.mark('data-cr-lf', 1)                            # between CR and LF after the data
        s.add(b'\r\n')
    s.mark('final-chunk', 1)
    s.add(b'0\r\n')
    value = crc32_b64(payload) if checksum is None else checksum
    s.mark('trailer-name', 7)
    s.mark('trailer-colon', len(trailer_name))
    s.mark('trailer-value', len(trailer_name) + 3)
    s.mark('trailer-cr-lf', len(trailer_name) + 1 + len(value) + 1)
    s.add(f'{trailer_name}:{value}\r\n'.encode())
    s.mark('final-cr-lf', 1)
    s.add(b'\r\n')
    return s


def _pieces(payload, chunk_sizes):
    if chunk_sizes is None:
        chunk_sizes = [64 * 1024]
    out, i, k = [], 0, 0
    while i < len(payload):
        n = chunk_sizes[min(k, len(chunk_sizes) - 1)]
        out.append(payload[i:i + n])
        i += n
        k += 1
    return out


def signing_key(secret, day, region='us-east-1'):
    key = hmac.new(('AWS4' + secret).encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, 's3', 'aws4_request'):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def chunk_signature(key, amz_date, scope, prev_sig, chunk):
    """AWS's chunk string to sign: the previous signature chains the chunks together."""
    sts = '\n'.join(['AWS4-HMAC-SHA256-PAYLOAD', amz_date, scope, prev_sig, EMPTY_SHA256,
                     hashlib.sha256(chunk).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def trailer_signature(key, amz_date, scope, prev_sig, trailer_bytes):
    """AWS's trailer string to sign, chained from the final (empty) chunk's signature."""
    sts = '\n'.join(['AWS4-HMAC-SHA256-TRAILER', amz_date, scope, prev_sig,
                     hashlib.sha256(trailer_bytes).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def _flip(sig):
    return sig[:10] + ('0' if sig[10] != '0' else '1') + sig[11:]


def signed_stream(payload, chunk_sizes, key, amz_date, scope, seed, tamper=None, trailer=None):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD body. `tamper`: ('sig', i) flips a character of chunk
    i's signature (i == number of data chunks: the final empty chunk); ('data', i) flips a byte of
    chunk i's data after signing it; ('trailer-sig',) flips the trailer signature.
    `trailer`: a CRC32 value to send as a signed trailer (STREAMING-...-PAYLOAD-TRAILER)."""
    s = Stream()
    prev = seed
    pieces = _pieces(payload, chunk_sizes) + [b'']
    for i, piece in enumerate(pieces):
        sig = chunk_signature(key, amz_date, scope, prev, piece)
        prev = sig
        sent_sig = _flip(sig) if tamper == ('sig', i) else sig
        if tamper == ('data', i):
            piece = piece[:5] + bytes([piece[5] ^ 1]) + piece[6:]
        line = b'%x;chunk-signature=%s' % (len(piece), sent_sig.encode())
        s.mark('size-line', 1)
        s.mark('signature', line.index(b'=') + 5)
        s.mark('size-cr-lf', len(line) + 1)
        s.add(line + b'\r\n')
        if i == len(pieces) - 1 and trailer is not None:
            break
        s.add(piece)
        s.mark('data-cr-lf', 1)
        s.add(b'\r\n')
    if trailer is not None:
        canonical = f'x-amz-checksum-crc32:{trailer}\n'.encode()
        tsig = trailer_signature(key, amz_date, scope, prev, canonical)
        if tamper == ('trailer-sig',):
            tsig = _flip(tsig)
        s.mark('trailer-value', len('x-amz-checksum-crc32:') + 2)
        s.add(f'x-amz-checksum-crc32:{trailer}\r\n'.encode())
        s.mark('trailer-signature', len('x-amz-trailer-signature:') + 3)
        s.add(f'x-amz-trailer-signature:{tsig}\r\n'.encode())
        s.mark('final-cr-lf', 1)
        s.add(b'\r\n')
    return s


def outer_chunked(stream, sizes=(128 * 1024,), ext=b'', http_trailers=b''):
    """HTTP Transfer-Encoding: chunked around `stream` (bytes); returns (wire, offset map, marks).

    `sizes` are the HTTP chunk sizes (the last repeats). They deliberately do not line up with
    the aws chunks, as urllib3's 128 KiB chunks do not. The map turns stream offsets into wire
    offsets; marks name places inside the HTTP framing itself."""
    wire = bytearray()
    pos_map = []  # (stream_start, wire_start_of_data)
    marks = {'outer-size-line': [], 'outer-cr-lf': []}
    i = k = 0
    while i < len(stream):
        n = min(sizes[min(k, len(sizes) - 1)], len(stream) - i)
        head = b'%x' % n + ext + b'\r\n'
        marks['outer-size-line'].append(len(wire) + 1)
        pos_map.append((i, len(wire) + len(head)))
        wire += head + stream[i:i + n]
        marks['outer-cr-lf'].append(len(wire) + 1)
        wire += b'\r\n'
        i += n
        k += 1
    marks['outer-final'] = [len(wire) + 1, len(wire) + 2, len(wire) + 4]
    wire += b'0' + ext + b'\r\n' + http_trailers + b'\r\n'

    def to_wire(off):
        for start, wstart in reversed(pos_map):
            if off >= start:
                return wstart + (off - start)
        return 0

    return bytes(wire), to_wire, marks


# ---------------------------------------------------------------------------------------------
# The raw client


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self):
        b = self.body.decode('utf-8', 'replace')
        if '<Code>' in b:
            return b.split('<Code>', 1)[1].split('</Code>', 1)[0]
        return None

    def __repr__(self):
        return f'<Response {self.status} {self.headers} {self.body[:300]!r}>'


def _read_head(sock, buf):
    while b'\r\n\r\n' not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b'\r\n\r\n', 1)
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(':', 1)
        headers[k.strip().lower()] = v.strip()
    return (status, headers), rest


def read_response(sock, buf=b''):
    """The next final response on `sock` (skipping 1xx), or None if the connection ended first."""
    return read_response_and_rest(sock, buf)[0]


def read_response_and_rest(sock, buf=b''):
    """(next final response or None, bytes received after it)."""
    try:
        while True:
            parsed, buf = _read_head(sock, buf)
            if parsed is None:
                return None, b''
            status, headers = parsed
            if 100 <= status < 200:
                continue
            n = int(headers.get('content-length', '0'))
            while len(buf) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return Response(status, headers, bytes(buf[:n])), buf[n:]
    except (ConnectionResetError, socket.timeout):
        return None, b''


def bytewise_plan(wire, budget_s=1.5):
    """1 byte per send; a ~1 ms sleep every few sends, at most ~budget_s of sleeping in total."""
    sleeps = max(1, min(len(wire), int(budget_s / 0.0012)))
    every = -(-len(wire) // sleeps)
    return [(wire[i:i + 1], 0.001 if (i + 1) % every == 0 else 0) for i in range(len(wire))]


def split_plan(wire, offsets, pause=0.01):
    """Pieces cut at `offsets` with a pause between them."""
    cuts = sorted({o for o in offsets if 0 < o < len(wire)})
    out, prev = [], 0
    for c in cuts + [len(wire)]:
        out.append((wire[prev:c], pause))
        prev = c
    return out


class RawClient:
    def __init__(self, server):
        self.server = server

    def request(self, method, path, query='', sign_headers=None, payload_hash=EMPTY_SHA256,
                body=b'', framing='content-length', plan=None, expect=False, close_after=None,
                when=None, extra_headers=None):
        """Sends one request on a fresh connection; returns (Response or None, signature).

        `body` is the request body exactly as it goes on the wire after the head (already
        HTTP-chunked for framing='te-chunked'); for framing='content-length' a Content-Length
        header is added (signed, as AWS SDKs do) unless sign_headers has one.
        `plan`: [(bytes, sleep_after)], default: one send. `close_after`: stop sending after this
        many body bytes and shut the socket down for writing (a truncated body)."""
        head, signature = self.build(method, path, query, sign_headers, payload_hash, body,
                                     framing, expect, when, extra_headers)
        sock = self.server.connect(timeout=30)
        try:
            sock.sendall(head)
            buf = b''
            if expect:
                parsed, buf = _read_head(sock, b'')
                if parsed is None:
                    return None, signature
                status, headers = parsed
                if status != 100:
                    n = int(headers.get('content-length', '0'))
                    while len(buf) < n:
                        buf += sock.recv(65536)
                    return Response(status, headers, buf[:n]), signature
            if plan is None:
                plan = [(body, 0)]
            assert b''.join(p for p, _ in plan) == body
            sent = 0
            try:
                for piece, pause in plan:
                    if close_after is not None and sent + len(piece) >= close_after:
                        sock.sendall(piece[:close_after - sent])
                        sent = close_after
                        time.sleep(0.05)
                        half_close(sock)
                        break
                    sock.sendall(piece)
                    sent += len(piece)
                    if pause:
                        time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early (an error): read what it said
            return read_response(sock, buf), signature
        finally:
            sock.close()

    def build(self, method, path, query='', sign_headers=None, payload_hash=EMPTY_SHA256,
              body=b'', framing='content-length', expect=False, when=None, extra_headers=None):
        """The request head (bytes) and its signature."""
        srv = self.server
        url = f'{srv.endpoint}{path}' + (f'?{query}' if query else '')
        sign = dict(sign_headers or {})
        unsigned = dict(extra_headers or {})
        if framing == 'content-length':
            sign.setdefault('content-length', str(len(body)))
        elif framing == 'te-chunked':
            unsigned['transfer-encoding'] = 'chunked'
        if expect:
            unsigned['expect'] = '100-continue'
        hdrs = sigv4_sign(method, url, srv.access_key, srv.secret_key, headers=sign,
                          payload_hash=payload_hash, when=when)
        signature = hdrs['authorization'].rsplit('Signature=', 1)[1]
        hdrs.update(unsigned)
        target = path + (f'?{query}' if query else '')
        head = f'{method} {target} HTTP/1.1\r\n' + ''.join(
            f'{k}: {v}\r\n' for k, v in hdrs.items()) + '\r\n'
        return head.encode('latin-1'), signature

    # -- aws-chunked PutObject / UploadPart helpers ---------------------------------------------

    def put_unsigned(self, bucket, key, payload, stream=None, framing='te-chunked',
                     outer_sizes=(128 * 1024,), splits=None, bytewise=False, query='',
                     content_encoding='aws-chunked', expect=False, close_after=None,
                     decoded_length=None, sign_extra=None):
        """PUT with STREAMING-UNSIGNED-PAYLOAD-TRAILER, boto3's HTTPS format.

        `splits`: names of Stream marks (or 'outer-*' marks) to cut the wire at."""
        stream = stream or unsigned_stream(payload)
        wire, to_wire, outer_marks = self._frame(stream, framing, outer_sizes)
        sign = {
            'content-encoding': content_encoding,
            'x-amz-decoded-content-length': str(len(payload) if decoded_length is None
                                                else decoded_length),
            'x-amz-sdk-checksum-algorithm': 'CRC32',
            'x-amz-trailer': 'x-amz-checksum-crc32',
        }
        sign.update(sign_extra or {})
        plan = self._plan(wire, stream, to_wire, outer_marks, splits, bytewise)
        resp, _ = self.request('PUT', object_path(bucket, key), query=query, sign_headers=sign,
                               payload_hash=UNSIGNED_TRAILER, body=wire, framing=framing,
                               plan=plan, expect=expect, close_after=close_after)
        return resp

    def put_signed(self, bucket, key, payload, chunk_sizes, framing='content-length',
                   tamper=None, splits=None, bytewise=False, query='', outer_sizes=(100_000,),
                   trailer=None):
        """PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD and real chained chunk signatures.

        The seed (the request's own signature) depends on the signed headers, which include
        Content-Length; the body length does not depend on the signatures' values (always 64
        hex digits), so the body is built twice: once to learn its length, once for real."""
        when = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = when.strftime('%Y%m%dT%H%M%SZ'), when.strftime('%Y%m%d')
        scope = f'{day}/us-east-1/s3/aws4_request'
        key_bytes = signing_key(self.server.secret_key, day)
        probe = signed_stream(payload, chunk_sizes, key_bytes, amz_date, scope, '0' * 64,
                              trailer=trailer)
        sign = {
            'content-encoding': 'aws-chunked',
            'x-amz-decoded-content-length': str(len(payload)),
        }
        payload_hash = SIGNED_PAYLOAD
        if trailer is not None:
            sign['x-amz-trailer'] = 'x-amz-checksum-crc32'
            payload_hash = SIGNED_PAYLOAD_TRAILER
        if framing == 'content-length':
            sign['content-length'] = str(len(probe.data))
        url = f'{self.server.endpoint}{object_path(bucket, key)}' + (f'?{query}' if query else '')
        seed = sigv4_sign('PUT', url, self.server.access_key, self.server.secret_key,
                          headers=sign, payload_hash=payload_hash,
                          when=when)['authorization'].rsplit('Signature=', 1)[1]
        stream = signed_stream(payload, chunk_sizes, key_bytes, amz_date, scope, seed, tamper,
                               trailer)
        assert len(stream.data) == len(probe.data)
        wire, to_wire, outer_marks = self._frame(stream, framing, outer_sizes)
        plan = self._plan(wire, stream, to_wire, outer_marks, splits, bytewise)
        resp, signature = self.request('PUT', object_path(bucket, key), query=query,
                                       sign_headers=sign, payload_hash=payload_hash,
                                       body=wire, framing=framing, plan=plan, when=when)
        assert signature == seed
        return resp

    @staticmethod
    def _frame(stream, framing, outer_sizes):
        data = bytes(stream.data)
        if framing == 'te-chunked':
            return outer_chunked(data, outer_sizes)
        return data, (lambda off: off), {}

    @staticmethod
    def _plan(wire, stream, to_wire, outer_marks, splits, bytewise):
        if bytewise:
            return bytewise_plan(wire)
        if not splits:
            return None
        offsets = []
        for name in splits:
            if name.startswith('outer-'):
                offsets += outer_marks.get(name, [])
            else:
                offsets += [to_wire(o) for o in stream.marks.get(name, [])]
        assert offsets, f'no split offsets for {splits}'
        return split_plan(wire, offsets)


def object_path(bucket, key):
    return f'/{bucket}/{urllib.parse.quote(key, safe="/~")}'


@pytest.fixture
def raw(server):
    return RawClient(server)


def assert_stored(s3, bucket, key, payload, resp):
    assert resp is not None, 'no response'
    assert resp.status == 200, resp
    assert resp.headers.get('etag') == quoted_etag(payload), resp
    got = s3.get_object(Bucket=bucket, Key=key)
    body = got['Body'].read()
    assert len(body) == len(payload) and body == payload, (
        f'stored {len(body)} bytes, expected {len(payload)}')
    assert got['ContentLength'] == len(payload)
    assert got['ETag'] == quoted_etag(payload)
    assert 'aws-chunked' not in (got.get('ContentEncoding') or '')


def assert_nothing_stored(server, s3, bucket, key, old=None):
    """No object (or the old one, untouched) and no staging file left behind."""
    if old is None:
        with raises_s3('NoSuchKey', 404):
            s3.get_object(Bucket=bucket, Key=key)
        assert key not in [o['Key'] for o in s3.list_objects_v2(Bucket=bucket).get('Contents', [])]
    else:
        assert s3.get_object(Bucket=bucket, Key=key)['Body'].read() == old
    tmp = server.data_dir / 'tmp'
    deadline = time.monotonic() + 3
    while True:
        left = sorted(os.listdir(tmp)) if tmp.exists() else []
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == [], f'staging files left in {tmp}: {left}'


def assert_error(resp, status, code):
    assert resp is not None, (
        f'expected {status} {code}, but the connection ended without a response')
    assert (resp.status, resp.code) == (status, code), resp


# ---------------------------------------------------------------------------------------------
# The helpers themselves


def test_chunk_signature_matches_the_aws_documentation_example():
    """AWS's SigV4 streaming example (64 KiB of 'a', then 1 KiB, then the final chunk)."""
    key = signing_key('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524')
    scope = '20130524/us-east-1/s3/aws4_request'
    seed = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'
    s1 = chunk_signature(key, '20130524T000000Z', scope, seed, b'a' * 65536)
    assert s1 == 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648'
    s2 = chunk_signature(key, '20130524T000000Z', scope, s1, b'a' * 1024)
    assert s2 == '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497'
    s3 = chunk_signature(key, '20130524T000000Z', scope, s2, b'')
    assert s3 == 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9'


def test_stream_format_is_boto3s():
    """The body of https_put_object_default.txt, byte for byte."""
    s = unsigned_stream(b'hello world\n')
    assert bytes(s.data) == (b'c\r\nhello world\n\r\n0\r\nx-amz-checksum-crc32:rwg7LQ==\r\n\r\n')
    wire, _, _ = outer_chunked(bytes(s.data))
    assert wire == b'35\r\n' + bytes(s.data) + b'\r\n0\r\n\r\n'


# ---------------------------------------------------------------------------------------------
# STREAMING-UNSIGNED-PAYLOAD-TRAILER: accepted bodies


@pytest.mark.parametrize('framing', FRAMINGS)
@pytest.mark.parametrize('size', [0, 1, 12, 64 * 1024, 300_001, 2 * MiB + 3])
def test_unsigned_trailer_put(raw, s3, bucket, framing, size):
    payload = os.urandom(size)
    resp = raw.put_unsigned(bucket, 'obj', payload, framing=framing)
    assert_stored(s3, bucket, 'obj', payload, resp)
    assert resp.headers.get('x-amz-checksum-crc32') == crc32_b64(payload)


@pytest.mark.parametrize('framing', FRAMINGS)
def test_unsigned_trailer_put_with_expect_100_continue(raw, s3, bucket, framing):
    payload = os.urandom(100_000)
    resp = raw.put_unsigned(bucket, 'obj', payload, framing=framing, expect=True)
    assert_stored(s3, bucket, 'obj', payload, resp)


@pytest.mark.parametrize('framing', FRAMINGS)
def test_one_byte_per_send(raw, s3, bucket, framing):
    payload = os.urandom(300)
    stream = unsigned_stream(payload, chunk_sizes=[100, 7, 193])
    t0 = time.monotonic()
    resp = raw.put_unsigned(bucket, 'bytewise', payload, stream=stream, framing=framing,
                            outer_sizes=(11, 5, 29), bytewise=True)
    assert time.monotonic() - t0 < 10
    assert_stored(s3, bucket, 'bytewise', payload, resp)


@pytest.mark.parametrize('framing', FRAMINGS)
def test_split_at_every_offset(raw, s3, bucket, framing):
    """Two sends, cut at each offset of the whole body in turn (every boundary there is)."""
    payload = b'0123456789abcdefghijklmnopqrstuvwxyz!'
    stream = unsigned_stream(payload, chunk_sizes=[16, 21])
    wire, _, _ = RawClient._frame(stream, framing, (9, 23))
    for cut in range(1, len(wire)):
        key = f'cut-{cut}'
        resp, _ = raw.request(
            'PUT', object_path(bucket, key),
            sign_headers={'content-encoding': 'aws-chunked',
                          'x-amz-decoded-content-length': str(len(payload)),
                          'x-amz-sdk-checksum-algorithm': 'CRC32',
                          'x-amz-trailer': 'x-amz-checksum-crc32'},
            payload_hash=UNSIGNED_TRAILER, body=wire, framing=framing,
            plan=split_plan(wire, [cut], pause=0.003))
        assert resp is not None and resp.status == 200, (cut, wire[:cut], resp)
        assert resp.headers.get('etag') == quoted_etag(payload), cut
    keys = []
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket):
        keys += [(o['Key'], o['Size']) for o in page.get('Contents', [])]
    assert sorted(keys) == sorted((f'cut-{c}', len(payload)) for c in range(1, len(wire)))
    for cut in (1, len(wire) // 2, len(wire) - 1):
        assert s3.get_object(Bucket=bucket, Key=f'cut-{cut}')['Body'].read() == payload


AWKWARD = ['size-line', 'size-cr-lf', 'data-start', 'data-middle', 'data-cr-lf', 'final-chunk',
           'trailer-name', 'trailer-colon', 'trailer-value', 'trailer-cr-lf', 'final-cr-lf']


OUTER = ['outer-size-line', 'outer-cr-lf', 'outer-final']


@pytest.mark.parametrize('framing,where', [
    (f, w) for f in FRAMINGS for w in AWKWARD + ['all']] + [('te-chunked', w) for w in OUTER])
def test_split_at_awkward_places(raw, s3, bucket, framing, where):
    payload = os.urandom(200_000)
    # Multi-digit sizes (0x10000, 0x123) so a cut can fall between hex digits.
    stream = unsigned_stream(payload, chunk_sizes=[0x10000, 0x123, 0x10000])
    splits = [where]
    if where == 'all':
        splits = AWKWARD + (OUTER if framing == 'te-chunked' else [])
    resp = raw.put_unsigned(bucket, 'awk', payload, stream=stream, framing=framing,
                            outer_sizes=(70_001, 3, 65_536), splits=splits)
    assert_stored(s3, bucket, 'awk', payload, resp)


@pytest.mark.parametrize('variant', ['uppercase-hex', 'leading-zeros', 'outer-extensions',
                                     'outer-http-trailers'])
def test_other_valid_framings(raw, s3, bucket, variant):
    """Valid variations of either layer: uppercase / zero-padded aws chunk sizes, HTTP chunk
    extensions and HTTP trailers on the outer Transfer-Encoding: chunked layer."""
    payload = os.urandom(70_000)
    stream = Stream()
    fmt = {'uppercase-hex': b'%X', 'leading-zeros': b'%08x'}.get(variant, b'%x')
    for piece in _pieces(payload, [0xABCD]):
        stream.add(fmt % len(piece) + b'\r\n' + piece + b'\r\n')
    stream.add(b'0\r\nx-amz-checksum-crc32:' + crc32_b64(payload).encode() + b'\r\n\r\n')
    ext = b';name=value;flag' if variant == 'outer-extensions' else b''
    trailers = b'X-Http-Trailer: ignored\r\n' if variant == 'outer-http-trailers' else b''
    wire, _, _ = outer_chunked(bytes(stream.data), (30_000,), ext=ext, http_trailers=trailers)
    resp, _ = raw.request('PUT', object_path(bucket, 'v'), sign_headers={
        'content-encoding': 'aws-chunked',
        'x-amz-decoded-content-length': str(len(payload)),
        'x-amz-sdk-checksum-algorithm': 'CRC32',
        'x-amz-trailer': 'x-amz-checksum-crc32'},
        payload_hash=UNSIGNED_TRAILER, body=wire, framing='te-chunked')
    assert_stored(s3, bucket, 'v', payload, resp)


@pytest.mark.parametrize('encoding,stored', [
    ('aws-chunked', None),
    ('gzip,aws-chunked', 'gzip'),
    ('gzip, aws-chunked', 'gzip'),
    ('aws-chunked,gzip', 'gzip'),
    ('aws-chunked, gzip, br', 'gzip, br'),
    ('gzip, aws-chunked, br', 'gzip, br'),
])
@pytest.mark.parametrize('framing', FRAMINGS)
def test_stored_content_encoding_drops_aws_chunked(raw, s3, bucket, framing, encoding, stored):
    payload = b'\x1f\x8b pretend gzip ' * 50
    resp = raw.put_unsigned(bucket, 'enc', payload, framing=framing, content_encoding=encoding)
    assert_stored(s3, bucket, 'enc', payload, resp)
    for r in (s3.head_object(Bucket=bucket, Key='enc'), s3.get_object(Bucket=bucket, Key='enc')):
        assert r.get('ContentEncoding') == stored, r.get('ContentEncoding')


def test_content_type_and_metadata_are_kept(raw, s3, bucket):
    payload = os.urandom(5000)
    resp = raw.put_unsigned(bucket, 'meta', payload,
                            sign_extra={'content-type': 'text/csv', 'x-amz-meta-origin': 'raw'})
    assert_stored(s3, bucket, 'meta', payload, resp)
    head = s3.head_object(Bucket=bucket, Key='meta')
    assert head['ContentType'] == 'text/csv' and head['Metadata'] == {'origin': 'raw'}


# ---------------------------------------------------------------------------------------------
# STREAMING-UNSIGNED-PAYLOAD-TRAILER: rejected bodies store nothing


TRAILER_DIGEST_BYTES = {'crc32': 4, 'crc32c': 4, 'crc64nvme': 8, 'sha1': 20, 'sha256': 32}


@pytest.mark.parametrize('algorithm', sorted(TRAILER_DIGEST_BYTES))
@pytest.mark.parametrize('target', ['put-object', 'upload-part'])
def test_wrong_trailer_checksum_every_algorithm(server, raw, s3, bucket, algorithm, target):
    """A trailer checksum (any algorithm) that does not match: BadDigest with S3's message,
    for PutObject and UploadPart; nothing is stored."""
    payload = os.urandom(70_000)
    name = f'x-amz-checksum-{algorithm}'
    wrong = base64.b64encode(b'\x33' * TRAILER_DIGEST_BYTES[algorithm]).decode()
    stream = unsigned_stream(payload, checksum=wrong, trailer_name=name)
    query = ''
    if target == 'upload-part':
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key='bad')['UploadId']
        query = f'partNumber=1&uploadId={upload_id}'
    resp = raw.put_unsigned(bucket, 'bad', payload, stream=stream, query=query, sign_extra={
        'x-amz-sdk-checksum-algorithm': algorithm.upper(), 'x-amz-trailer': name})
    assert_error(resp, 400, 'BadDigest')
    message = f'The {algorithm.upper()} you specified did not match the calculated checksum.'
    assert f'<Message>{message}</Message>'.encode() in resp.body, resp.body
    if target == 'upload-part':
        assert s3.list_parts(Bucket=bucket, Key='bad', UploadId=upload_id).get('Parts', []) == []
    assert_nothing_stored(server, s3, bucket, 'bad')


@pytest.mark.parametrize('framing', FRAMINGS)
@pytest.mark.parametrize('existing', [False, True], ids=['new-key', 'overwrite'])
def test_wrong_trailer_checksum_is_bad_digest(server, raw, s3, bucket, framing, existing):
    old = b'the old object' if existing else None
    if existing:
        s3.put_object(Bucket=bucket, Key='bad', Body=old)
    payload = os.urandom(150_000)
    stream = unsigned_stream(payload, checksum=crc32_b64(b'something else'))
    resp = raw.put_unsigned(bucket, 'bad', payload, stream=stream, framing=framing)
    assert_error(resp, 400, 'BadDigest')
    assert_nothing_stored(server, s3, bucket, 'bad', old)


@pytest.mark.parametrize('framing', FRAMINGS)
@pytest.mark.parametrize('cut', ['mid-chunk', 'in-size-line', 'before-trailer', 'in-trailer',
                                 'before-final-crlf'])
def test_truncated_body_stores_nothing(server, raw, s3, bucket, framing, cut):
    payload = os.urandom(200_000)
    stream = unsigned_stream(payload, chunk_sizes=[0x10000])
    m = stream.marks
    at = {
        'mid-chunk': m['data-middle'][1],
        'in-size-line': m['size-line'][2],
        'before-trailer': m['trailer-name'][0] - 7,
        'in-trailer': m['trailer-value'][0],
        'before-final-crlf': m['final-cr-lf'][0] - 1,
    }[cut]
    wire, to_wire, _ = RawClient._frame(stream, framing, (128 * 1024,))
    resp = raw.put_unsigned(bucket, 'trunc', payload, stream=stream, framing=framing,
                            close_after=to_wire(at))
    # The client stopped sending and half-closed (it still reads): the server answers 400
    # IncompleteBody and stores nothing.
    assert_error(resp, 400, 'IncompleteBody')
    assert_nothing_stored(server, s3, bucket, 'trunc')


BAD_STREAMS = {
    # A chunk size that is not hexadecimal.
    'non-hex-size': lambda p: b'zz\r\n' + p + b'\r\n0\r\nx-amz-checksum-crc32:'
                              + crc32_b64(p).encode() + b'\r\n\r\n',
    # A chunk that claims more bytes than follow (and than X-Amz-Decoded-Content-Length).
    'size-too-large': lambda p: b'%x\r\n' % (len(p) + 10) + p + b'\r\n0\r\nx-amz-checksum-crc32:'
                                + crc32_b64(p).encode() + b'\r\n\r\n',
    # A chunk that claims fewer bytes than follow: its data is not followed by CRLF.
    'size-too-small': lambda p: b'%x\r\n' % (len(p) - 10) + p + b'\r\n0\r\nx-amz-checksum-crc32:'
                                + crc32_b64(p).encode() + b'\r\n\r\n',
    # A negative-looking / empty size line.
    'empty-size': lambda p: b'\r\n' + p + b'\r\n0\r\n\r\n',
    # Data not followed by CRLF at all.
    'missing-crlf': lambda p: b'%x\r\n' % len(p) + p + b'0\r\nx-amz-checksum-crc32:'
                              + crc32_b64(p).encode() + b'\r\n\r\n',
    # Garbage after the terminating empty line.
    'trailing-garbage': lambda p: b'%x\r\n' % len(p) + p + b'\r\n0\r\nx-amz-checksum-crc32:'
                                  + crc32_b64(p).encode() + b'\r\n\r\nXYZ',
}


@pytest.mark.parametrize('framing', FRAMINGS)
@pytest.mark.parametrize('kind', sorted(BAD_STREAMS))
def test_malformed_chunking_is_incomplete_body(server, raw, s3, bucket, framing, kind):
    payload = os.urandom(1000)
    stream = Stream()
    stream.add(BAD_STREAMS[kind](payload))
    resp = raw.put_unsigned(bucket, 'malformed', payload, stream=stream, framing=framing)
    assert_error(resp, 400, 'IncompleteBody')
    assert_nothing_stored(server, s3, bucket, 'malformed')


@pytest.mark.parametrize('declared', [999, 1001, 0])
def test_decoded_length_mismatch_is_incomplete_body(server, raw, s3, bucket, declared):
    payload = os.urandom(1000)
    resp = raw.put_unsigned(bucket, 'len', payload, decoded_length=declared)
    assert_error(resp, 400, 'IncompleteBody')
    assert_nothing_stored(server, s3, bucket, 'len')


# ---------------------------------------------------------------------------------------------
# STREAMING-AWS4-HMAC-SHA256-PAYLOAD: signed chunks


SIGNED_CHUNKS = [64 * 1024, 64 * 1024, 100]
SIGNED_SIZE = sum(SIGNED_CHUNKS)


@pytest.mark.parametrize('framing', FRAMINGS)
def test_signed_chunks_put(raw, s3, bucket, framing):
    payload = os.urandom(SIGNED_SIZE)
    resp = raw.put_signed(bucket, 'signed', payload, SIGNED_CHUNKS, framing=framing)
    assert_stored(s3, bucket, 'signed', payload, resp)


@pytest.mark.parametrize('framing', FRAMINGS)
@pytest.mark.parametrize('mode', ['bytewise', 'awkward'])
def test_signed_chunks_put_split(raw, s3, bucket, framing, mode):
    if mode == 'bytewise':
        payload = os.urandom(200)
        resp = raw.put_signed(bucket, 'signed-split', payload, [64, 64, 72], framing=framing,
                              bytewise=True, outer_sizes=(13, 50))
    else:
        payload = os.urandom(SIGNED_SIZE)
        resp = raw.put_signed(bucket, 'signed-split', payload, SIGNED_CHUNKS, framing=framing,
                              splits=['size-line', 'signature', 'size-cr-lf', 'data-cr-lf',
                                      'outer-size-line', 'outer-cr-lf', 'outer-final'])
    assert_stored(s3, bucket, 'signed-split', payload, resp)


@pytest.mark.parametrize('chunk', [0, 1, 2, 3], ids=['chunk1', 'chunk2', 'chunk3', 'final'])
@pytest.mark.parametrize('existing', [False, True], ids=['new-key', 'overwrite'])
def test_signed_chunks_flipped_signature(server, raw, s3, bucket, chunk, existing):
    old = b'previous version' if existing else None
    if existing:
        s3.put_object(Bucket=bucket, Key='sig', Body=old)
    payload = os.urandom(SIGNED_SIZE)
    resp = raw.put_signed(bucket, 'sig', payload, SIGNED_CHUNKS, tamper=('sig', chunk))
    assert_error(resp, 403, 'SignatureDoesNotMatch')
    assert_nothing_stored(server, s3, bucket, 'sig', old)


@pytest.mark.parametrize('chunk', [0, 1, 2], ids=['chunk1', 'chunk2', 'chunk3'])
def test_signed_chunks_tampered_data(server, raw, s3, bucket, chunk):
    payload = os.urandom(SIGNED_SIZE)
    resp = raw.put_signed(bucket, 'tampered', payload, SIGNED_CHUNKS, tamper=('data', chunk))
    assert_error(resp, 403, 'SignatureDoesNotMatch')
    assert_nothing_stored(server, s3, bucket, 'tampered')


def test_signed_chunks_missing_signature(server, raw, s3, bucket):
    """A signed-payload body whose chunks carry no chunk-signature is rejected."""
    payload = os.urandom(1000)
    stream = unsigned_stream(payload)  # no ;chunk-signature= and a trailer: not signed chunks
    wire = bytes(stream.data)
    resp, _ = raw.request('PUT', object_path(bucket, 'nosig'),
                          sign_headers={'content-encoding': 'aws-chunked',
                                        'x-amz-decoded-content-length': str(len(payload))},
                          payload_hash=SIGNED_PAYLOAD, body=wire)
    assert_error(resp, 403, 'SignatureDoesNotMatch')
    assert_nothing_stored(server, s3, bucket, 'nosig')


@pytest.mark.parametrize('framing', FRAMINGS)
def test_signed_chunks_with_signed_trailer(raw, s3, bucket, framing):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks, then a CRC32 trailer signed
    with x-amz-trailer-signature."""
    payload = os.urandom(SIGNED_SIZE)
    resp = raw.put_signed(bucket, 'st', payload, SIGNED_CHUNKS, framing=framing,
                          trailer=crc32_b64(payload))
    assert_stored(s3, bucket, 'st', payload, resp)
    assert resp.headers.get('x-amz-checksum-crc32') == crc32_b64(payload)
    payload = os.urandom(333)
    resp = raw.put_signed(bucket, 'st', payload, [100], framing=framing,
                          trailer=crc32_b64(payload), bytewise=True, outer_sizes=(17,))
    assert_stored(s3, bucket, 'st', payload, resp)


@pytest.mark.parametrize('framing', FRAMINGS)
def test_signed_trailer_errors(server, raw, s3, bucket, framing):
    payload = os.urandom(SIGNED_SIZE)
    resp = raw.put_signed(bucket, 'st-bad', payload, SIGNED_CHUNKS, framing=framing,
                          trailer=crc32_b64(payload), tamper=('trailer-sig',))
    assert_error(resp, 403, 'SignatureDoesNotMatch')
    assert_nothing_stored(server, s3, bucket, 'st-bad')
    # A correctly signed trailer whose checksum does not match the data.
    resp = raw.put_signed(bucket, 'st-bad', payload, SIGNED_CHUNKS, framing=framing,
                          trailer=crc32_b64(b'other data'))
    assert_error(resp, 400, 'BadDigest')
    assert_nothing_stored(server, s3, bucket, 'st-bad')
    resp = raw.put_signed(bucket, 'st-bad', payload, SIGNED_CHUNKS, framing=framing,
                          trailer=crc32_b64(payload), tamper=('sig', 3))
    assert_error(resp, 403, 'SignatureDoesNotMatch')
    assert_nothing_stored(server, s3, bucket, 'st-bad')


# ---------------------------------------------------------------------------------------------
# Keep-alive: an aws-chunked body ends exactly where the next request begins


@pytest.mark.parametrize('pipelined', [False, True], ids=['sequential', 'pipelined'])
@pytest.mark.parametrize('framing', FRAMINGS)
def test_keep_alive_after_aws_chunked_bodies(raw, s3, bucket, framing, pipelined):
    payloads = [os.urandom(n) for n in (0, 1000, 70_000, 12)]
    requests_ = []
    for i, p in enumerate(payloads):
        wire, _, _ = RawClient._frame(unsigned_stream(p, [30_000]), framing, (4096,))
        head, _ = raw.build('PUT', object_path(bucket, f'ka-{i}'), sign_headers={
            'content-encoding': 'aws-chunked',
            'x-amz-decoded-content-length': str(len(p)),
            'x-amz-sdk-checksum-algorithm': 'CRC32',
            'x-amz-trailer': 'x-amz-checksum-crc32'},
            payload_hash=UNSIGNED_TRAILER, body=wire, framing=framing)
        requests_.append(head + wire)
    head, _ = raw.build('GET', object_path(bucket, 'ka-2'), framing=None)
    requests_.append(head)
    sock = raw.server.connect(timeout=30)
    responses = []
    try:
        rest = b''
        if pipelined:
            sock.sendall(b''.join(requests_))
            for _ in requests_:
                r, rest = read_response_and_rest(sock, rest)
                responses.append(r)
        else:
            for req in requests_:
                sock.sendall(req)
                r, rest = read_response_and_rest(sock, rest)
                responses.append(r)
                assert rest == b''
    finally:
        sock.close()
    for p, r in zip(payloads, responses):
        assert r is not None and r.status == 200, r
        assert r.headers.get('etag') == quoted_etag(p)
        assert r.headers.get('connection', '').lower() != 'close'
    get = responses[-1]
    assert get is not None and get.status == 200 and get.body == payloads[2]
    for i, p in enumerate(payloads):
        assert s3.get_object(Bucket=bucket, Key=f'ka-{i}')['Body'].read() == p


# ---------------------------------------------------------------------------------------------
# UploadPart with aws-chunked bodies


def test_upload_part_aws_chunked(server, raw, s3, bucket):
    key = 'mp/chunked parts.bin'
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)['UploadId']
    q = lambda n: f'partNumber={n}&uploadId={upload_id}'  # noqa: E731
    p1 = os.urandom(5 * MiB + 3)        # unsigned trailer, boto3 HTTPS form, TE chunked
    p2 = os.urandom(5 * MiB)            # signed chunks, Content-Length
    p3 = os.urandom(SIGNED_SIZE)        # signed chunks, last part, TE chunked, split awkwardly

    r1 = raw.put_unsigned(bucket, key, p1, stream=unsigned_stream(p1, [MiB]), query=q(1),
                          framing='te-chunked', expect=True)
    assert r1 is not None and r1.status == 200, r1
    assert r1.headers.get('etag') == quoted_etag(p1)
    assert r1.headers.get('x-amz-checksum-crc32') == crc32_b64(p1)
    r2 = raw.put_signed(bucket, key, p2, [MiB], query=q(2), framing='content-length')
    assert r2 is not None and r2.status == 200, r2
    assert r2.headers.get('etag') == quoted_etag(p2)
    r3 = raw.put_signed(bucket, key, p3, SIGNED_CHUNKS, query=q(3), framing='te-chunked',
                        splits=['size-line', 'signature', 'data-cr-lf', 'outer-size-line'])
    assert r3 is not None and r3.status == 200, r3

    # Rejected part uploads leave the upload as it was.
    bad = raw.put_unsigned(bucket, key, p3, stream=unsigned_stream(p3, checksum=crc32_b64(b'x')),
                           query=q(4))
    assert_error(bad, 400, 'BadDigest')
    bad = raw.put_signed(bucket, key, p3, SIGNED_CHUNKS, query=q(3), tamper=('sig', 1))
    assert_error(bad, 403, 'SignatureDoesNotMatch')
    bad = raw.put_unsigned(bucket, key, p3, query=q(3), close_after=100_000,
                           framing='content-length')
    assert_error(bad, 400, 'IncompleteBody')

    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)['Parts']
    assert [(p['PartNumber'], p['Size'], p['ETag']) for p in parts] == [
        (1, len(p1), quoted_etag(p1)), (2, len(p2), quoted_etag(p2)), (3, len(p3), quoted_etag(p3))]
    tmp = server.data_dir / 'tmp'
    assert not tmp.exists() or os.listdir(tmp) == []

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={'Parts': [{'ETag': quoted_etag(p), 'PartNumber': n}
                                   for n, p in ((1, p1), (2, p2), (3, p3))]})
    assert done['ETag'] == multipart_etag([p1, p2, p3])
    got = s3.get_object(Bucket=bucket, Key=key)
    body = got['Body'].read()
    assert len(body) == len(p1) + len(p2) + len(p3)
    assert hashlib.sha256(body).digest() == hashlib.sha256(p1 + p2 + p3).digest()
    assert 'aws-chunked' not in (got.get('ContentEncoding') or '')
