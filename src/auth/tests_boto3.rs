//! Tests against real boto3 1.44.8 requests captured on the wire
//! (`/work/shared/reference/boto3-wire/*.txt`, copied verbatim below), signed with access key
//! `rustfsadmin` / secret `rustfssecret`: every request must verify at its own X-Amz-Date, and any
//! tampering must be refused with S3's error code.

use super::{AuthOutcome, Credentials, PayloadCheck, Verifier};
use crate::auth::{AuthError, AuthErrorCode};
use crate::http::date::{parse_amz_date, system_time};
use crate::http::head::{HeadParse, RequestHead};
use std::time::{Duration, SystemTime};

/// `put_object_default.txt`, request #4.
const PUT_CRC32: &str = r#"PUT /bkt/small.txt HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8
Expect: 100-continue
x-amz-checksum-crc32: rwg7LQ==
x-amz-sdk-checksum-algorithm: CRC32
X-Amz-Date: 20261125T143414Z
X-Amz-Content-SHA256: a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=78a8dff0fbc46e5fdc3324cbb7c9eceef654934591182099991bdbb48c1bee3d
amz-sdk-invocation-id: 5b2d76a1-0b36-4fbf-b3fb-f4367a898c88
amz-sdk-request: attempt=1; max=3
Content-Length: 12"#;

/// `list_objects_v2.txt`, request #33.
const LIST_V2_PREFIX: &str = r#"GET /bkt?list-type=2&prefix=dir%2F&delimiter=%2F&encoding-type=url HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,e,Z cfg/retry-mode#standard Botocore/1.44.8
X-Amz-Date: 20261125T143418Z
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=77946a4cb581873708b9a217e1f80a91c56cba1e8d31e6cbf15a9c20ece192bb
amz-sdk-invocation-id: 6be3cac8-eb7f-4a32-a610-b285370b49e6
amz-sdk-request: attempt=1; max=3"#;

/// `list_objects_v2.txt`, request #35.
const LIST_V2_TOKEN: &str = r#"GET /bkt?list-type=2&max-keys=2&continuation-token=dir%2F&encoding-type=url HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,e,Z cfg/retry-mode#standard Botocore/1.44.8
X-Amz-Date: 20261125T143418Z
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=6eda2cfa27bdec009ece686ee23244a9aa08888c8957af7cea488002591322da
amz-sdk-invocation-id: abafea66-c153-4cbb-8b74-a083d2a1ca8e
amz-sdk-request: attempt=1; max=3"#;

/// `multipart_lowlevel.txt`, request #14.
const MPU_CREATE: &str = r#"POST /bkt/mpu.bin?uploads HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,e,Z cfg/retry-mode#standard Botocore/1.44.8
X-Amz-Date: 20261125T143416Z
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=4b078e78851ff2a71711ca5bda33b74e3620284ad0aeb95fbd4fd7d6988db3e2
amz-sdk-invocation-id: fe59f374-02cb-47e9-8792-d142fce5941c
amz-sdk-request: attempt=1; max=3
Content-Length: 0"#;

/// `multipart_lowlevel.txt`, request #15.
const MPU_UPLOAD_PART: &str = r#"PUT /bkt/mpu.bin?uploadId=upl-3a7994212a494cc3&partNumber=1 HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8
Expect: 100-continue
x-amz-checksum-crc32: JRTCyQ==
x-amz-sdk-checksum-algorithm: CRC32
X-Amz-Date: 20261125T143416Z
X-Amz-Content-SHA256: dbbe5517996826bd5861ac22b745d21d11219055d89243ca1aea0ad31f552b12
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=023cac30730448120017b6c4bb2b16527dd1428d0363046c74c6fbd01f86e47b
amz-sdk-invocation-id: 178eab59-2171-4580-8ff5-5b52edf3bb18
amz-sdk-request: attempt=1; max=3
Content-Length: 5242880"#;

/// `presigned_get.txt`, request #88.
const PRESIGNED_GET: &str = r#"GET /bkt/small.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=rustfsadmin%2F20261125%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261125T143429Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=6df0b6e645e48a53548fa931e6a9bdeaf82e3aefd2d481970acc929602a60027 HTTP/1.1
Host: 127.0.0.1:9000
User-Agent: curl/7.88.1
Accept: */*"#;

/// `presigned_get.txt`, request #91.
const PRESIGNED_GET_SPECIAL: &str = r#"GET /bkt/a%20dir/%C3%BC%2Bx%3D1%26y.txt?response-content-type=text%2Fplain&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=rustfsadmin%2F20261125%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261125T143429Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=6db3f778ba550316fb95772d4d862a88a55b9f6359dafb06dedfec6b2a35494b HTTP/1.1
Host: 127.0.0.1:9000
User-Agent: curl/7.88.1
Accept: */*"#;

/// `presigned_put.txt`, request #92.
const PRESIGNED_PUT_CURL: &str = r#"PUT /bkt/presigned-put.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=rustfsadmin%2F20261125%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261125T143429Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=039dd800cab90a104e1c410f5d5d6e8bfd31f47848d6a037a3dc0680f9bf6e62 HTTP/1.1
Host: 127.0.0.1:9000
User-Agent: curl/7.88.1
Accept: */*
Content-Length: 24
Content-Type: application/x-www-form-urlencoded"#;

/// `presigned_put.txt`, request #96.
const PRESIGNED_PUT_CT: &str = r#"PUT /bkt/presigned-put-ct.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=rustfsadmin%2F20261125%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261125T143429Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=f7eee2c1b0bdd3faad3762da5942c8482fd7a53e6b161c7e2cf1024ea06f53bc HTTP/1.1
Host: 127.0.0.1:9000
User-Agent: curl/7.88.1
Accept: */*
Content-Type: text/plain
Content-Length: 1024
Expect: 100-continue"#;

/// `copy_object.txt`, request #45.
const COPY_OBJECT: &str = r#"PUT /bkt/copy2.txt HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
x-amz-copy-source: bkt/a%20dir/%C3%BC%2Bx%3D1%26y.txt
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,e,Z cfg/retry-mode#standard Botocore/1.44.8
X-Amz-Date: 20261125T143420Z
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-copy-source;x-amz-date, Signature=9590bffc70a03337ef096ff8011a0d461915b7a6253a659268a3e72af3536d91
amz-sdk-invocation-id: 84780986-5217-46c1-ada4-84d0b0239584
amz-sdk-request: attempt=1; max=3
Content-Length: 0"#;

/// `put_object_metadata.txt`, request #7.
const PUT_METADATA: &str = r#"PUT /bkt/a%20dir/%C3%BC%2Bx%3D1%26y.txt HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
Content-Type: text/plain
x-amz-meta-Foo: Bar baz
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8
Expect: 100-continue
x-amz-checksum-crc32: 1/IUNQ==
x-amz-sdk-checksum-algorithm: CRC32
X-Amz-Date: 20261125T143415Z
X-Amz-Content-SHA256: ea3bd73e2b506e00527232b3ed743c066da83a8e3066f62a71e75eb9b4aa1db6
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-meta-foo;x-amz-sdk-checksum-algorithm, Signature=3400aa1a7b66750c4b51ca9dc296db3a696887a176008e2c0544f9b6ada74550
amz-sdk-invocation-id: 5e9eb4ec-e5e3-4eff-8121-79e8658ab667
amz-sdk-request: attempt=1; max=3
Content-Length: 4"#;

/// `https_put_object_default.txt`, request #72.
const HTTPS_PUT_TRAILER: &str = r#"PUT /bkt/tls-small.txt HTTP/1.1
Host: 127.0.0.1:9443
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8
Expect: 100-continue
Transfer-Encoding: chunked
Content-Encoding: aws-chunked
X-Amz-Trailer: x-amz-checksum-crc32
X-Amz-Decoded-Content-Length: 12
x-amz-sdk-checksum-algorithm: CRC32
X-Amz-Date: 20261125T143425Z
X-Amz-Content-SHA256: STREAMING-UNSIGNED-PAYLOAD-TRAILER
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-sdk-checksum-algorithm;x-amz-trailer, Signature=3b5a84f16c95bb704fdb60221e1acb58e337003517a7895c7e716b8c098908f2
amz-sdk-invocation-id: 07d6a0fa-374a-41eb-841d-6f09d0ac7c37
amz-sdk-request: attempt=1; max=3"#;

/// `put_object_payload_signing_disabled.txt`, request #83.
const PUT_UNSIGNED_PAYLOAD: &str = r#"PUT /bkt/nosign.txt HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8
Expect: 100-continue
x-amz-checksum-crc32: rwg7LQ==
x-amz-sdk-checksum-algorithm: CRC32
X-Amz-Date: 20261125T143428Z
X-Amz-Content-SHA256: UNSIGNED-PAYLOAD
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=eb5b1a264ec1dfa2cd6733c791be5390b0f5d0b6c3bea49585e42bd8cc3ae6ac
amz-sdk-invocation-id: 94a65312-fdae-462e-82bc-e0ab5c2ec12c
amz-sdk-request: attempt=1; max=3
Content-Length: 12"#;

/// `download_file_20MiB.txt`, request #28.
const GET_RANGE_IF_MATCH: &str = r#"GET /bkt/file20m.txt HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
Range: bytes=16777216-
If-Match: "d8895501723968192ee3e9d651985f5d"
x-amz-checksum-mode: ENABLED
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,e,Z,G cfg/retry-mode#standard Botocore/1.44.8
X-Amz-Date: 20261125T143417Z
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;if-match;range;x-amz-checksum-mode;x-amz-content-sha256;x-amz-date, Signature=6d205d68e1c687cbc45280e9787841a77a6ece9031aa1dd9949d4e117dd483a2
amz-sdk-invocation-id: fec16c85-8e2a-4e7c-a397-e6a35a53166e
amz-sdk-request: attempt=1; max=3"#;

/// `delete_objects.txt`, request #47.
const DELETE_OBJECTS: &str = r#"POST /bkt?delete HTTP/1.1
Host: 127.0.0.1:9000
Accept-Encoding: identity
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8
x-amz-checksum-crc32: Cc4rBg==
x-amz-sdk-checksum-algorithm: CRC32
X-Amz-Date: 20261125T143420Z
X-Amz-Content-SHA256: 58a69c19df81928387d419a879b5fd34b880b2725c6300a4748621cf6672583d
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=d7ac639f1ff5d21b11bbe2ff871af00cc5beb50f3240facbc57f0cc0edeb116f
amz-sdk-invocation-id: 2684838e-4528-461f-8e36-f3ceb0ed1bd8
amz-sdk-request: attempt=1; max=3
Content-Length: 161"#;

const ALL: [&str; 15] = [
    PUT_CRC32,
    LIST_V2_PREFIX,
    LIST_V2_TOKEN,
    MPU_CREATE,
    MPU_UPLOAD_PART,
    PRESIGNED_GET,
    PRESIGNED_GET_SPECIAL,
    PRESIGNED_PUT_CURL,
    PRESIGNED_PUT_CT,
    COPY_OBJECT,
    PUT_METADATA,
    HTTPS_PUT_TRAILER,
    PUT_UNSIGNED_PAYLOAD,
    GET_RANGE_IF_MATCH,
    DELETE_OBJECTS,
];

fn head(raw: &str) -> RequestHead {
    let wire = format!("{}\r\n\r\n", raw.replace('\n', "\r\n"));
    match RequestHead::parse(wire.as_bytes()).expect("test request parses") {
        HeadParse::Complete(h, _) => h,
        HeadParse::Partial => panic!("incomplete test request"),
    }
}

/// The request's own timestamp (X-Amz-Date header or query parameter).
fn request_time(h: &RequestHead) -> SystemTime {
    let date = match h.header("x-amz-date") {
        Some(d) => d.to_string(),
        None => {
            let i = h.query.find("X-Amz-Date=").expect("a date");
            h.query[i + 11..i + 27].to_string()
        }
    };
    parse_amz_date(&date).map(system_time).expect("valid date")
}

fn verifier() -> Verifier {
    Verifier::new(Credentials {
        access_key: "rustfsadmin".into(),
        secret_key: "rustfssecret".into(),
    })
}

fn verify_at(raw: &str, offset_secs: i64) -> Result<AuthOutcome, AuthError> {
    let h = head(raw);
    let t = request_time(&h);
    let now = if offset_secs >= 0 {
        t + Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        t - Duration::from_secs(offset_secs.unsigned_abs())
    };
    verifier().verify(&h, now)
}

fn verify(raw: &str) -> Result<AuthOutcome, AuthError> {
    verify_at(raw, 0)
}

fn code(r: Result<AuthOutcome, AuthError>) -> AuthErrorCode {
    match r {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e.code,
    }
}

/// Replaces the first `from` (which must occur) by `to`.
fn edit(raw: &str, from: &str, to: &str) -> String {
    assert!(raw.contains(from), "test edit target {from:?} missing");
    raw.replacen(from, to, 1)
}

#[test]
fn every_captured_request_verifies() {
    for raw in ALL {
        let out = verify(raw).unwrap_or_else(|e| panic!("{e}\n{raw}"));
        assert_eq!(out.access_key, "rustfsadmin");
        assert_eq!(out.presigned, raw.contains("X-Amz-Signature="));
    }
}

#[test]
fn payload_checks_follow_content_sha256() {
    let sha =
        hex::decode("a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447").unwrap();
    assert_eq!(
        verify(PUT_CRC32).unwrap().payload,
        PayloadCheck::Sha256(sha.try_into().unwrap())
    );
    assert_eq!(
        verify(HTTPS_PUT_TRAILER).unwrap().payload,
        PayloadCheck::StreamingUnsignedTrailer
    );
    assert_eq!(
        verify(PUT_UNSIGNED_PAYLOAD).unwrap().payload,
        PayloadCheck::Unsigned
    );
    for raw in [PRESIGNED_GET, PRESIGNED_PUT_CURL, PRESIGNED_PUT_CT] {
        let out = verify(raw).unwrap();
        assert!(out.presigned);
        assert_eq!(out.payload, PayloadCheck::Unsigned);
    }
}

#[test]
fn tampered_path_fails() {
    let cases = [
        edit(PUT_CRC32, "PUT /bkt/small.txt", "PUT /bkt/small.txT"),
        // The raw path is signed: an equivalent encoding is still a different path.
        edit(PUT_METADATA, "%C3%BC", "%c3%bc"),
        edit(PRESIGNED_GET, "GET /bkt/small.txt", "GET /bkt/other.txt"),
        edit(MPU_CREATE, "POST /bkt/mpu.bin", "POST /bkt/mpu.bin/"),
    ];
    for raw in cases {
        assert_eq!(
            code(verify(&raw)),
            AuthErrorCode::SignatureDoesNotMatch,
            "{raw}"
        );
    }
}

#[test]
fn tampered_query_fails() {
    let cases = [
        edit(LIST_V2_PREFIX, "prefix=dir%2F", "prefix=dix%2F"),
        edit(LIST_V2_PREFIX, "&encoding-type=url", ""),
        edit(LIST_V2_TOKEN, "max-keys=2", "max-keys=1000"),
        edit(MPU_UPLOAD_PART, "partNumber=1", "partNumber=2"),
        edit(MPU_CREATE, "?uploads", "?uploads&versionId=1"),
        edit(DELETE_OBJECTS, "?delete", "?deletes"),
        edit(PRESIGNED_GET_SPECIAL, "text%2Fplain", "text%2Fhtml"),
        edit(PRESIGNED_GET, "X-Amz-Expires=3600", "X-Amz-Expires=7200"),
        edit(PRESIGNED_GET, " HTTP/1.1", "&x-id=GetObject HTTP/1.1"),
    ];
    for raw in cases {
        assert_eq!(
            code(verify(&raw)),
            AuthErrorCode::SignatureDoesNotMatch,
            "{raw}"
        );
    }
}

#[test]
fn query_order_and_escape_case_do_not_matter() {
    let reordered = edit(
        LIST_V2_PREFIX,
        "list-type=2&prefix=dir%2F&delimiter=%2F&encoding-type=url",
        "encoding-type=url&delimiter=%2f&prefix=dir%2F&list-type=2",
    );
    verify(&reordered).unwrap();
    let presigned = edit(
        PRESIGNED_GET_SPECIAL,
        "response-content-type=text%2Fplain&",
        "",
    )
    .replace(" HTTP/1.1", "&response-content-type=text%2fplain HTTP/1.1");
    verify(&presigned).unwrap();
}

#[test]
fn tampered_signed_header_fails() {
    let cases = [
        edit(
            PUT_CRC32,
            "x-amz-checksum-crc32: rwg7LQ==",
            "x-amz-checksum-crc32: rwg7LA==",
        ),
        edit(PUT_CRC32, "Host: 127.0.0.1:9000", "Host: 127.0.0.1:9001"),
        edit(
            COPY_OBJECT,
            "x-amz-copy-source: bkt/a%20dir",
            "x-amz-copy-source: bkt/b%20dir",
        ),
        edit(
            GET_RANGE_IF_MATCH,
            "Range: bytes=16777216-",
            "Range: bytes=0-",
        ),
        edit(
            PUT_METADATA,
            "Content-Type: text/plain",
            "Content-Type: text/html",
        ),
        edit(
            PUT_METADATA,
            "x-amz-meta-Foo: Bar baz",
            "x-amz-meta-Foo: Bar",
        ),
        edit(
            PUT_CRC32,
            "X-Amz-Content-SHA256: a948",
            "X-Amz-Content-SHA256: b948",
        ),
        edit(
            HTTPS_PUT_TRAILER,
            "X-Amz-Decoded-Content-Length: 12",
            "X-Amz-Decoded-Content-Length: 13",
        ),
        edit(
            PRESIGNED_PUT_CT,
            "Content-Type: text/plain",
            "Content-Type: text/html",
        ),
    ];
    for raw in cases {
        assert_eq!(
            code(verify(&raw)),
            AuthErrorCode::SignatureDoesNotMatch,
            "{raw}"
        );
    }
    // Whitespace inside a value is collapsed, and header name case is irrelevant.
    verify(&edit(PUT_METADATA, "Bar baz", "Bar    baz")).unwrap();
    verify(&edit(
        PUT_CRC32,
        "x-amz-checksum-crc32:",
        "X-AMZ-CHECKSUM-CRC32:",
    ))
    .unwrap();
}

#[test]
fn removed_signed_header_fails() {
    let raw = edit(GET_RANGE_IF_MATCH, "Range: bytes=16777216-\n", "");
    assert_eq!(code(verify(&raw)), AuthErrorCode::SignatureDoesNotMatch);
}

#[test]
fn tampered_signature_fails() {
    let cases = [
        edit(PUT_CRC32, "c1bee3d\n", "c1bee3e\n"),
        edit(PUT_CRC32, "c1bee3d\n", "c1bee3\n"),
        edit(PUT_CRC32, "Signature=78a8dff0", "Signature=78A8DFF0"),
        edit(PRESIGNED_GET, "a60027 HTTP", "a60028 HTTP"),
    ];
    for raw in cases {
        let err = verify(&raw).unwrap_err();
        assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch, "{raw}");
        assert_eq!(
            err.message,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        );
    }
}

#[test]
fn wrong_secret_fails() {
    let v = Verifier::new(Credentials {
        access_key: "rustfsadmin".into(),
        secret_key: "not-the-secret".into(),
    });
    let h = head(PUT_CRC32);
    let err = v.verify(&h, request_time(&h)).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch);
    assert!(!format!("{err:?}").contains("not-the-secret"));
}

#[test]
fn unknown_access_key() {
    let raw = edit(
        PUT_CRC32,
        "Credential=rustfsadmin/",
        "Credential=someoneelse/",
    );
    assert_eq!(code(verify(&raw)), AuthErrorCode::InvalidAccessKeyId);
    let raw = edit(
        PRESIGNED_GET,
        "X-Amz-Credential=rustfsadmin",
        "X-Amz-Credential=someone",
    );
    assert_eq!(code(verify(&raw)), AuthErrorCode::InvalidAccessKeyId);
}

#[test]
fn clock_skew() {
    assert_eq!(
        code(verify_at(PUT_CRC32, 15 * 60 + 1)),
        AuthErrorCode::RequestTimeTooSkewed
    );
    assert_eq!(
        code(verify_at(PUT_CRC32, -(15 * 60 + 1))),
        AuthErrorCode::RequestTimeTooSkewed
    );
    verify_at(PUT_CRC32, 15 * 60).unwrap();
    verify_at(PUT_CRC32, -(14 * 60)).unwrap();
    let err = verify_at(LIST_V2_PREFIX, 3600).unwrap_err();
    assert_eq!(crate::s3::error::S3Error::from(err.clone()).status(), 403);
    assert!(err
        .extra
        .iter()
        .any(|(k, v)| *k == "RequestTime" && v == "20261125T143418Z"));
}

#[test]
fn presigned_expiry() {
    // PRESIGNED_GET_SPECIAL was signed with X-Amz-Expires=60.
    verify_at(PRESIGNED_GET_SPECIAL, 60).unwrap();
    let err = verify_at(PRESIGNED_GET_SPECIAL, 61).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
    assert_eq!(err.message, "Request has expired");
    // A presigned URL is usable long after the 15-minute skew window, until it expires.
    verify_at(PRESIGNED_GET, 3600).unwrap();
    assert_eq!(
        code(verify_at(PRESIGNED_GET, 3601)),
        AuthErrorCode::AccessDenied
    );
    // Dated in the future beyond the allowed skew.
    verify_at(PRESIGNED_GET, -(15 * 60)).unwrap();
    assert_eq!(
        code(verify_at(PRESIGNED_GET, -(15 * 60 + 1))),
        AuthErrorCode::RequestTimeTooSkewed
    );
}

#[test]
fn presigned_expires_out_of_range() {
    for bad in [
        "X-Amz-Expires=0",
        "X-Amz-Expires=604801",
        "X-Amz-Expires=",
        "X-Amz-Expires=x",
    ] {
        let raw = edit(PRESIGNED_GET, "X-Amz-Expires=3600", bad);
        assert_eq!(
            code(verify(&raw)),
            AuthErrorCode::AuthorizationQueryParametersError,
            "{bad}"
        );
    }
    let raw = edit(PRESIGNED_GET, "&X-Amz-SignedHeaders=host", "");
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationQueryParametersError
    );
    let raw = edit(
        PRESIGNED_GET,
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=HMAC",
    );
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationQueryParametersError
    );
}

#[test]
fn presigned_ignores_unsigned_headers() {
    // curl --data-binary adds Content-Type; it is not signed, so any value is fine.
    verify(&edit(
        PRESIGNED_PUT_CURL,
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: image/png",
    ))
    .unwrap();
    verify(&edit(
        PRESIGNED_GET,
        "Accept: */*",
        "Accept: */*\nX-Forwarded-For: 10.0.0.1\nContent-Type: x/y",
    ))
    .unwrap();
}

#[test]
fn unsigned_amz_header_is_refused() {
    let raw = edit(
        PUT_CRC32,
        "Content-Length: 12",
        "Content-Length: 12\nx-amz-acl: public-read",
    );
    let err = verify(&raw).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
    assert!(err
        .extra
        .iter()
        .any(|(k, v)| *k == "HeadersNotSigned" && v == "x-amz-acl"));
    let raw = edit(PRESIGNED_GET, "Accept: */*", "Accept: */*\nx-amz-meta-a: 1");
    assert_eq!(code(verify(&raw)), AuthErrorCode::AccessDenied);
    // Unsigned headers outside x-amz-* are ignored for header auth too.
    verify(&edit(
        PUT_CRC32,
        "Content-Length: 12",
        "Content-Length: 12\nX-Forwarded-For: 1.2.3.4",
    ))
    .unwrap();
}

#[test]
fn both_mechanisms_refused() {
    let raw = edit(
        PUT_CRC32,
        "PUT /bkt/small.txt HTTP/1.1",
        "PUT /bkt/small.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00 HTTP/1.1",
    );
    assert_eq!(code(verify(&raw)), AuthErrorCode::InvalidArgument);
}

#[test]
fn anonymous_refused() {
    let raw = "GET /bkt/small.txt HTTP/1.1\nHost: 127.0.0.1:9000";
    let err = verify_at_time(raw).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
    assert_eq!(crate::s3::error::S3Error::from(err.clone()).status(), 403);
    let v2 =
        "GET /bkt/small.txt?AWSAccessKeyId=rustfsadmin&Expires=1&Signature=abc HTTP/1.1\nHost: h";
    // SigV2 query auth is verified now (src/auth/tests_v2.rs): Expires=1 is long past.
    let err = verify_at_time(v2).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
    assert_eq!(err.message, "Request has expired");
}

fn verify_at_time(raw: &str) -> Result<AuthOutcome, AuthError> {
    verifier().verify(
        &head(raw),
        system_time(parse_amz_date("20261125T143418Z").unwrap()),
    )
}

#[test]
fn content_sha256_required_and_checked() {
    let raw = edit(
        LIST_V2_PREFIX,
        "X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
        "",
    );
    let err = verify(&raw).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::InvalidRequest);
    assert_eq!(
        err.message,
        "Missing required header for this request: x-amz-content-sha256"
    );
    for bad in [
        "e3b0c442",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "unsigned-payload",
    ] {
        let raw = edit(
            LIST_V2_PREFIX,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            bad,
        );
        assert_eq!(code(verify(&raw)), AuthErrorCode::InvalidArgument, "{bad}");
    }
}

#[test]
fn bad_dates() {
    let raw = edit(PUT_CRC32, "rustfsadmin/20261125/", "rustfsadmin/20261124/");
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationHeaderMalformed
    );
    let raw = edit(
        PRESIGNED_GET,
        "rustfsadmin%2F20261125",
        "rustfsadmin%2F20261124",
    );
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationQueryParametersError
    );
    let raw = edit(
        PUT_CRC32,
        "X-Amz-Date: 20261125T143414Z",
        "X-Amz-Date: 2026-11-25",
    );
    assert_eq!(code(verify_at_time(&raw)), AuthErrorCode::AccessDenied);
    let raw = edit(PUT_CRC32, "X-Amz-Date: 20261125T143414Z\n", "");
    assert_eq!(code(verify_at_time(&raw)), AuthErrorCode::AccessDenied);
}

#[test]
fn malformed_or_foreign_authorization() {
    let raw = edit(
        PUT_CRC32,
        "/us-east-1/s3/aws4_request",
        "/us-east-1/ec2/aws4_request",
    );
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationHeaderMalformed
    );
    let raw = edit(PUT_CRC32, "SignedHeaders=host;", "SignedHeaders=");
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationHeaderMalformed
    );
    let raw = edit(
        PUT_CRC32,
        "Content-Length: 12",
        "Content-Length: 12\nAuthorization: AWS4-HMAC-SHA256 x",
    );
    assert_eq!(
        code(verify(&raw)),
        AuthErrorCode::AuthorizationHeaderMalformed
    );
    let v2 = "GET / HTTP/1.1\nHost: h\nAuthorization: AWS rustfsadmin:frJIUN8DYpKDtOLCwo//yllqDzg=";
    // SigV2 is verified now (src/auth/tests_v2.rs): this one has no Date header.
    let err = verify_at_time(v2).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
    assert!(err.message.contains("requires a valid Date"));
}

#[test]
fn region_is_not_enforced_but_is_signed() {
    // A different region in the scope changes the key: the captured signature no longer matches,
    // and the error is a signature mismatch, not a region error.
    let raw = edit(PUT_CRC32, "/us-east-1/", "/eu-west-1/");
    assert_eq!(code(verify(&raw)), AuthErrorCode::SignatureDoesNotMatch);
}
