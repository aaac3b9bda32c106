//! AWS's published Signature Version 2 examples ("Signing and authenticating REST requests",
//! RESTAuthentication: access key AKIAIOSFODNN7EXAMPLE, secret
//! wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, bucket johnsmith), then the refusals.

use super::v2::{canonical_amz_headers, canonical_resource, canonical_resources};
use super::{AuthErrorCode, Credentials, PayloadCheck, Verifier};
use crate::http::date::{parse_http_date, system_time};
use crate::http::head::{HeadParse, RequestHead};
use std::time::{Duration, SystemTime};

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DOMAIN: &str = "s3.amazonaws.com";

fn verifier() -> Verifier {
    Verifier::new(Credentials {
        access_key: AK.into(),
        secret_key: SECRET.into(),
    })
    .with_domain(Some(DOMAIN.into()))
}

fn at(date: &str) -> SystemTime {
    system_time(parse_http_date(date).expect("test date parses"))
}

fn head(raw: &str) -> RequestHead {
    let wire = format!("{}\r\n\r\n", raw.replace('\n', "\r\n"));
    match RequestHead::parse(wire.as_bytes()).expect("test request parses") {
        HeadParse::Complete(h, _) => h,
        HeadParse::Partial => panic!("incomplete test request"),
    }
}

const GET_OBJECT: &str = "GET /photos/puppy.jpg HTTP/1.1\nHost: johnsmith.s3.amazonaws.com\nDate: Tue, 27 Mar 2007 19:36:42 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=";
const GET_OBJECT_TIME: &str = "Tue, 27 Mar 2007 19:36:42 GMT";

#[test]
fn example_object_get_virtual_host() {
    let out = verifier()
        .verify(&head(GET_OBJECT), at(GET_OBJECT_TIME))
        .unwrap();
    assert_eq!(out.access_key, AK);
    assert!(!out.presigned);
    assert_eq!(out.payload, PayloadCheck::Unsigned);
}

#[test]
fn example_object_put() {
    let raw = "PUT /photos/puppy.jpg HTTP/1.1\nContent-Type: image/jpeg\nContent-Length: 94328\nHost: johnsmith.s3.amazonaws.com\nDate: Tue, 27 Mar 2007 21:15:45 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg=";
    verifier()
        .verify(&head(raw), at("Tue, 27 Mar 2007 21:15:45 GMT"))
        .unwrap();
}

#[test]
fn example_list_ignores_plain_parameters() {
    let raw = "GET /?prefix=photos&max-keys=50&marker=puppy HTTP/1.1\nUser-Agent: Mozilla/5.0\nHost: johnsmith.s3.amazonaws.com\nDate: Tue, 27 Mar 2007 19:42:41 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U=";
    verifier()
        .verify(&head(raw), at("Tue, 27 Mar 2007 19:42:41 GMT"))
        .unwrap();
}

#[test]
fn example_fetch_acl_subresource() {
    let raw = "GET /?acl HTTP/1.1\nHost: johnsmith.s3.amazonaws.com\nDate: Tue, 27 Mar 2007 19:44:46 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM=";
    verifier()
        .verify(&head(raw), at("Tue, 27 Mar 2007 19:44:46 GMT"))
        .unwrap();
}

#[test]
fn example_delete_with_x_amz_date_in_date_slot() {
    let raw = "DELETE /johnsmith/photos/puppy.jpg HTTP/1.1\nUser-Agent: dotnet\nHost: s3.amazonaws.com\nDate: Tue, 27 Mar 2007 21:20:27 +0000\nx-amz-date: Tue, 27 Mar 2007 21:20:26 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:lx3byBScXR6KzyMaifNkardMwNk=";
    verifier()
        .verify(&head(raw), at("Tue, 27 Mar 2007 21:20:26 GMT"))
        .unwrap();
}

#[test]
fn example_upload_with_amz_headers_path_style() {
    // The documented request uses the CNAME host static.johnsmith.net; path-style signs the same resource.
    let raw = "PUT /static.johnsmith.net/db-backup.dat.gz HTTP/1.1\nUser-Agent: curl/7.15.5\nHost: s3.amazonaws.com\nDate: Tue, 27 Mar 2007 21:06:08 +0000\nx-amz-acl: public-read\ncontent-type: application/x-download\nContent-MD5: 4gJE4saaMU4BqNR0kLY+lw==\nX-Amz-Meta-ReviewedBy: joe@johnsmith.net\nX-Amz-Meta-ReviewedBy: jane@johnsmith.net\nX-Amz-Meta-FileChecksum: 0x02661779\nX-Amz-Meta-ChecksumAlgorithm: crc32\nContent-Disposition: attachment; filename=database.dat\nContent-Encoding: gzip\nContent-Length: 5913339\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:ilyl83RwaSoYIEdixDQcA4OnAnc=";
    let h = head(raw);
    assert_eq!(
        canonical_amz_headers(&h.headers, None),
        "x-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\nx-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
    );
    verifier()
        .verify(&h, at("Tue, 27 Mar 2007 21:06:08 GMT"))
        .unwrap();
}

#[test]
fn example_list_all_buckets_and_unicode_keys() {
    let raw = "GET / HTTP/1.1\nHost: s3.amazonaws.com\nDate: Wed, 28 Mar 2007 01:29:59 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:qGdzdERIC03wnaRNKh6OqZehG9s=";
    verifier()
        .verify(&head(raw), at("Wed, 28 Mar 2007 01:29:59 GMT"))
        .unwrap();
    // The raw path is signed as sent, escapes in either case included.
    let raw = "GET /dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re HTTP/1.1\nHost: s3.amazonaws.com\nDate: Wed, 28 Mar 2007 01:49:49 +0000\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:DNEZGsoieTZ92F3bUfSPQcbGmlM=";
    verifier()
        .verify(&head(raw), at("Wed, 28 Mar 2007 01:49:49 GMT"))
        .unwrap();
}

const QUERY: &str = "GET /photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620 HTTP/1.1\nHost: johnsmith.s3.amazonaws.com";

#[test]
fn example_query_string_auth_and_expiry() {
    let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_139_620);
    let out = verifier().verify(&head(QUERY), before).unwrap();
    assert!(out.presigned);
    assert_eq!(out.payload, PayloadCheck::Unsigned);
    let err = verifier()
        .verify(&head(QUERY), before + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
    assert_eq!(err.message, "Request has expired");
    let tampered = QUERY.replace("NpgCjnDzrM", "NpgCjnDzrN");
    let err = verifier().verify(&head(&tampered), before).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch);
    let other_key = QUERY.replace("/photos/", "/photo/");
    let err = verifier().verify(&head(&other_key), before).unwrap_err();
    assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch);
    let err = verifier()
        .verify(&head(&QUERY.replace("&Expires=1175139620", "")), before)
        .unwrap_err();
    assert_eq!(err.code, AuthErrorCode::AccessDenied);
}

#[test]
fn header_refusals() {
    let now = at(GET_OBJECT_TIME);
    let v = verifier();
    let code = |raw: &str, now| v.verify(&head(raw), now).unwrap_err().code;
    let wrong_sig = GET_OBJECT.replace("bWq2s1WEIj", "bWq2s1WEIk");
    assert_eq!(code(&wrong_sig, now), AuthErrorCode::SignatureDoesNotMatch);
    let wrong_key = GET_OBJECT.replace("AWS AKIAIOSFODNN7EXAMPLE:", "AWS AKIAOTHER:");
    assert_eq!(code(&wrong_key, now), AuthErrorCode::InvalidAccessKeyId);
    for malformed in ["AWS AKIAIOSFODNN7EXAMPLE", "AWS :sig", "AWS AK:"] {
        let raw = GET_OBJECT.replace(
            "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            malformed,
        );
        assert_eq!(
            code(&raw, now),
            AuthErrorCode::InvalidArgument,
            "{malformed}"
        );
    }
    let later = now + Duration::from_secs(16 * 60);
    assert_eq!(code(GET_OBJECT, later), AuthErrorCode::RequestTimeTooSkewed);
    let no_date = GET_OBJECT.replace("Date: Tue, 27 Mar 2007 19:36:42 +0000\n", "");
    assert_eq!(code(&no_date, now), AuthErrorCode::AccessDenied);
    // An unsigned x-amz-* header is part of the StringToSign, so adding one breaks it.
    let extra = format!("{GET_OBJECT}\nx-amz-meta-a: b");
    assert_eq!(code(&extra, now), AuthErrorCode::SignatureDoesNotMatch);
    // Both a V2 header and V2 query parameters.
    let both = GET_OBJECT.replace(
        "puppy.jpg HTTP",
        "puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x&Expires=1 HTTP",
    );
    assert_eq!(code(&both, now), AuthErrorCode::InvalidArgument);
}

#[test]
fn virtual_host_needs_the_configured_domain() {
    // Without a domain the Host is not a bucket: the resource lacks /johnsmith and fails.
    let plain = Verifier::new(Credentials {
        access_key: AK.into(),
        secret_key: SECRET.into(),
    });
    let err = plain
        .verify(&head(GET_OBJECT), at(GET_OBJECT_TIME))
        .unwrap_err();
    assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch);
}

#[test]
fn canonical_resource_subresources_sorted_and_decoded() {
    let h = head("GET /b/k?versionId=null&uploadId=a%2Fb&list-type=2&acl&response-content-type=text%2Fplain HTTP/1.1\nHost: localhost");
    assert_eq!(
        canonical_resource(&h, None, false),
        "/b/k?acl&response-content-type=text/plain&uploadId=a/b&versionId=null"
    );
    let h = head("GET /k?partNumber=2&uploadId=x HTTP/1.1\nHost: b.example.com:9000");
    assert_eq!(
        canonical_resources(&h, Some("example.com")),
        ["/b/k?partNumber=2&uploadId=x"]
    );
    let h = head("GET /b?list-type=2&acl HTTP/1.1\nHost: localhost");
    assert_eq!(canonical_resources(&h, None), ["/b?acl", "/b/?acl"]);
}
