//! AWS's published SigV4 examples for S3 (access key AKIAIOSFODNN7EXAMPLE, secret
//! wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1): "Signature
//! Calculations for the Authorization Header" (single chunk), "Authenticating Requests: Using Query
//! Parameters" and "Transferring Payload in Multiple Chunks".

use super::crypto::sha256;
use super::{presign_url, sign_headers, Credentials, PayloadCheck, Verifier};
use crate::http::date::{parse_amz_date, system_time};
use crate::http::head::{HeadParse, RequestHead};
use std::time::SystemTime;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn creds() -> Credentials {
    Credentials {
        access_key: AK.into(),
        secret_key: SECRET.into(),
    }
}

fn now() -> SystemTime {
    system_time(parse_amz_date("20130524T000000Z").unwrap())
}

fn head(raw: &str) -> RequestHead {
    let wire = format!("{}\r\n\r\n", raw.replace('\n', "\r\n"));
    match RequestHead::parse(wire.as_bytes()).expect("test request parses") {
        HeadParse::Complete(h, _) => h,
        HeadParse::Partial => panic!("incomplete test request"),
    }
}

fn auth(signed: &str, sig: &str) -> String {
    format!(
        "Authorization: AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={sig}"
    )
}

const GET_OBJECT_SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

#[test]
fn example_get_object_with_range() {
    let raw = format!(
        "GET /test.txt HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\n{}\nRange: bytes=0-9\nx-amz-content-sha256:{EMPTY}\nx-amz-date: 20130524T000000Z ",
        auth("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG)
    );
    let out = Verifier::new(creds()).verify(&head(&raw), now()).unwrap();
    assert_eq!(out.access_key, AK);
    assert!(!out.presigned);
    assert_eq!(out.payload, PayloadCheck::Sha256(sha256(b"")));
}

#[test]
fn example_get_object_reproduced_by_sign_headers() {
    let mut headers = vec![
        (
            "host".to_string(),
            "examplebucket.s3.amazonaws.com".to_string(),
        ),
        ("range".to_string(), "bytes=0-9".to_string()),
    ];
    sign_headers(
        &creds(),
        "GET",
        "/test.txt",
        "",
        &mut headers,
        EMPTY,
        now(),
        "us-east-1",
    );
    let authz = &headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1;
    assert_eq!(
        authz,
        &format!("AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature={GET_OBJECT_SIG}")
    );
}

#[test]
fn example_put_object_with_date_and_raw_path() {
    // Request line `PUT test$file.text`; on the wire the path is `/test%24file.text`.
    let body_hash = hex::encode(sha256(b"Welcome to Amazon S3."));
    assert_eq!(
        body_hash,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let raw = format!(
        "PUT /test%24file.text HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nDate: Fri, 24 May 2013 00:00:00 GMT\n{}\nx-amz-date: 20130524T000000Z\nx-amz-storage-class: REDUCED_REDUNDANCY\nx-amz-content-sha256: {body_hash}",
        auth(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        )
    );
    Verifier::new(creds()).verify(&head(&raw), now()).unwrap();
}

#[test]
fn example_get_bucket_lifecycle() {
    let raw = format!(
        "GET /?lifecycle HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\n{}\nx-amz-date: 20130524T000000Z\nx-amz-content-sha256: {EMPTY}",
        auth(
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        )
    );
    Verifier::new(creds()).verify(&head(&raw), now()).unwrap();
}

#[test]
fn example_list_objects() {
    let raw = format!(
        "GET /?max-keys=2&prefix=J HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\n{}\nx-amz-date: 20130524T000000Z\nx-amz-content-sha256: {EMPTY}",
        auth(
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )
    );
    Verifier::new(creds()).verify(&head(&raw), now()).unwrap();
}

const PRESIGNED_SIG: &str = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn example_presigned_url() {
    let raw = format!(
        "GET /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature={PRESIGNED_SIG} HTTP/1.1\nHost: examplebucket.s3.amazonaws.com"
    );
    let v = Verifier::new(creds());
    let out = v.verify(&head(&raw), now()).unwrap();
    assert!(out.presigned);
    assert_eq!(out.payload, PayloadCheck::Unsigned);
    // Valid for a day, not a second more.
    let day = std::time::Duration::from_secs(86_400);
    v.verify(&head(&raw), now() + day).unwrap();
    let err = v
        .verify(&head(&raw), now() + day + std::time::Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.message, "Request has expired");
}

#[test]
fn example_presigned_url_reproduced_by_presign_url() {
    let url = presign_url(
        &creds(),
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        "",
        86_400,
        now(),
        "us-east-1",
        &[],
    );
    assert_eq!(
        url,
        format!("/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature={PRESIGNED_SIG}")
    );
}

#[test]
fn example_streaming_chunk_signatures() {
    let raw = format!(
        "PUT /examplebucket/chunkObject.txt HTTP/1.1\nHost: s3.amazonaws.com\nx-amz-date: 20130524T000000Z\nx-amz-storage-class: REDUCED_REDUNDANCY\n{}\nx-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\nContent-Encoding: aws-chunked\nx-amz-decoded-content-length: 66560\nContent-Length: 66824",
        auth(
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        )
    );
    let out = Verifier::new(creds()).verify(&head(&raw), now()).unwrap();
    let PayloadCheck::StreamingSigned(signer) = out.payload else {
        panic!("expected a streaming signer, got {:?}", out.payload);
    };
    assert!(!signer.trailer);
    assert_eq!(signer.amz_date, "20130524T000000Z");
    assert_eq!(signer.scope, "20130524/us-east-1/s3/aws4_request");
    assert_eq!(
        hex::encode(signer.seed_signature),
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );
    let chunks: [(usize, &str); 3] = [
        (
            65_536,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            1_024,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            0,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ];
    let mut prev = signer.seed_signature;
    for (len, want) in chunks {
        let sig = signer.chunk_signature(&prev, &sha256(&vec![b'a'; len]));
        assert_eq!(hex::encode(sig), want, "chunk of {len} bytes");
        prev = sig;
    }
}

#[test]
fn streaming_trailer_flag() {
    let raw = format!(
        "PUT /examplebucket/chunkObject.txt HTTP/1.1\nHost: s3.amazonaws.com\nx-amz-date: 20130524T000000Z\nx-amz-storage-class: REDUCED_REDUNDANCY\n{}\nx-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER\nContent-Encoding: aws-chunked\nx-amz-decoded-content-length: 66560\nContent-Length: 66824",
        auth(
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        )
    );
    // Same signature as the non-trailer example, but the payload hash line differs: must not verify.
    let err = Verifier::new(creds())
        .verify(&head(&raw), now())
        .unwrap_err();
    assert_eq!(err.code, crate::auth::AuthErrorCode::SignatureDoesNotMatch);
}
