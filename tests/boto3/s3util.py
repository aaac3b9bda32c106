"""Helpers shared by the boto3 client tests: error assertions, checksums, a listing model."""

import base64
import contextlib
import datetime
import hashlib
import hmac
import struct
import urllib.parse
import uuid
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError


# ---------------------------------------------------------------------------------------------
# Errors


@contextlib.contextmanager
def raises_s3(code, status):
    """Expect a botocore ClientError with this S3 error `Code` and HTTP status.

    For bodiless responses (HEAD, 304) botocore uses the status as the code, e.g. '404'.
    Yields the pytest ExceptionInfo so callers can look at the response.
    """
    with pytest.raises(ClientError) as excinfo:
        yield excinfo
    resp = excinfo.value.response
    got_code = resp.get('Error', {}).get('Code')
    got_status = resp.get('ResponseMetadata', {}).get('HTTPStatusCode')
    assert (got_code, got_status) == (code, status), (
        f'expected error {code} / HTTP {status}, got {got_code!r} / HTTP {got_status!r}: '
        f'{resp.get("Error")}'
    )


def status_of(resp):
    return resp['ResponseMetadata']['HTTPStatusCode']


def header(resp, name):
    """A response header as botocore received it (names are lowercased by botocore)."""
    return resp['ResponseMetadata']['HTTPHeaders'].get(name.lower())


# ---------------------------------------------------------------------------------------------
# Digests and checksums (S3 puts checksums in headers as base64 of the big-endian digest)


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def quoted_etag(data):
    return '"' + md5_hex(data) + '"'


def multipart_etag(parts):
    """S3's ETag of a multipart object: MD5 of the concatenated binary part MD5s, '-N' suffixed."""
    joined = b''.join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(joined).hexdigest(), len(parts))


def crc32_b64(data):
    return base64.b64encode(struct.pack('>I', zlib.crc32(data) & 0xFFFFFFFF)).decode()


def _reflected_crc_table(poly):
    """The byte-at-a-time table of a reflected CRC with polynomial `poly`."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _reflected_crc_table(0x82F63B78)  # Castagnoli, reflected


def crc32c(data):
    """CRC-32C (Castagnoli), pure Python; fine for the small bodies the tests use."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b'123456789') == 0xE3069283  # standard check value


def crc32c_b64(data):
    return base64.b64encode(struct.pack('>I', crc32c(data))).decode()


def sha1_b64(data):
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


_CRC64NVME_TABLE = _reflected_crc_table(0x9A6C9329AC4BC9B5)  # CRC-64/NVME, reflected


def crc64nvme_b64(data):
    """CRC-64/NVME as S3 encodes it (big-endian, base64); check value 0xae8b14860a799888."""
    crc = 0xFFFFFFFFFFFFFFFF
    table = _CRC64NVME_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return base64.b64encode(struct.pack('>Q', crc ^ 0xFFFFFFFFFFFFFFFF)).decode()


CHECKSUM_FUNCS = {
    'CRC32': crc32_b64,
    'CRC32C': crc32c_b64,
    'SHA1': sha1_b64,
    'SHA256': sha256_b64,
}


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Listing model: what S3 returns for ListObjects(V2) over a set of keys


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode('utf-8'))


def model_listing(keys, prefix='', delimiter=None, after=None):
    """All entries a listing returns, in order: ('key', k) or ('prefix', p).

    `after` is StartAfter / Marker (exclusive, compared as UTF-8 bytes).
    """
    entries = []
    seen = set()
    for k in utf8_sorted(set(keys)):
        if not k.startswith(prefix):
            continue
        if after is not None and k.encode('utf-8') <= after.encode('utf-8'):
            continue
        if delimiter:
            rest = k[len(prefix):]
            i = rest.find(delimiter)
            if i >= 0:
                cp = prefix + rest[: i + len(delimiter)]
                if cp not in seen:
                    seen.add(cp)
                    entries.append(('prefix', cp))
                continue
        entries.append(('key', k))
    return entries


def page_entries(page):
    """(sorted keys, sorted common prefixes) of one List response page."""
    keys = [o['Key'] for o in page.get('Contents', [])]
    prefixes = [p['Prefix'] for p in page.get('CommonPrefixes', [])]
    return keys, prefixes


def split_entries(entries):
    return ([v for t, v in entries if t == 'key'], [v for t, v in entries if t == 'prefix'])


# ---------------------------------------------------------------------------------------------
# Buckets


def unique_bucket_name(prefix='rs-test'):
    return f'{prefix}-{uuid.uuid4().hex[:20]}'


def empty_and_delete_bucket(s3, name):
    """Best effort: abort uploads, delete every object, delete the bucket. Warns on failure."""
    try:
        try:
            for page in s3.get_paginator('list_multipart_uploads').paginate(Bucket=name):
                for u in page.get('Uploads', []):
                    s3.abort_multipart_upload(Bucket=name, Key=u['Key'], UploadId=u['UploadId'])
        except ClientError:
            pass
        keys = []
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=name):
            keys.extend(o['Key'] for o in page.get('Contents', []))
        if len(keys) > 20:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda k: s3.delete_object(Bucket=name, Key=k), keys))
        else:
            for k in keys:
                s3.delete_object(Bucket=name, Key=k)
        s3.delete_bucket(Bucket=name)
    except ClientError as e:
        code = e.response.get('Error', {}).get('Code')
        if code not in ('NoSuchBucket', '404'):
            warnings.warn(f'cleanup of bucket {name} failed: {e}')
    except Exception as e:  # noqa: BLE001 - cleanup must not mask the test result
        warnings.warn(f'cleanup of bucket {name} failed: {e!r}')


# ---------------------------------------------------------------------------------------------
# A small independent SigV4 signer for raw HTTP tests (requests), so tests can sign with a
# chosen time or payload hash, or send a body different from the one that was signed.

EMPTY_SHA256 = hashlib.sha256(b'').hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode('utf-8'), hashlib.sha256).digest()


def sigv4_sign(method, url, access_key, secret_key, headers=None, payload_hash=EMPTY_SHA256,
               when=None, region='us-east-1'):
    """Headers (Host, X-Amz-Date, X-Amz-Content-SHA256, Authorization + given ones) for `url`.

    `url` must already be percent-encoded the way it goes on the wire; every given header is
    signed.
    """
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime('%Y%m%dT%H%M%SZ')
    day = when.strftime('%Y%m%d')
    parts = urllib.parse.urlsplit(url)
    hdrs = {k.lower(): ' '.join(str(v).split()) for k, v in (headers or {}).items()}
    hdrs['host'] = parts.netloc
    hdrs['x-amz-date'] = amz_date
    hdrs['x-amz-content-sha256'] = payload_hash
    signed = sorted(hdrs)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = '&'.join(
        f'{urllib.parse.quote(k, safe="-_.~")}={urllib.parse.quote(v, safe="-_.~")}'
        for k, v in sorted(query)
    )
    canonical_request = '\n'.join([
        method,
        parts.path or '/',
        canonical_query,
        ''.join(f'{k}:{hdrs[k]}\n' for k in signed),
        ';'.join(signed),
        payload_hash,
    ])
    scope = f'{day}/{region}/s3/aws4_request'
    string_to_sign = '\n'.join([
        'AWS4-HMAC-SHA256',
        amz_date,
        scope,
        hashlib.sha256(canonical_request.encode('utf-8')).hexdigest(),
    ])
    key = _hmac(('AWS4' + secret_key).encode('utf-8'), day)
    for part in (region, 's3', 'aws4_request'):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode('utf-8'), hashlib.sha256).hexdigest()
    out = {k: v for k, v in hdrs.items()}
    out['authorization'] = (
        f'AWS4-HMAC-SHA256 Credential={access_key}/{scope}, '
        f'SignedHeaders={";".join(signed)}, Signature={signature}'
    )
    return out
