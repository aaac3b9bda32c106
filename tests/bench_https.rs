//! `ringstore bench` over HTTPS: against a real `ringstore serve --tls-cert/--tls-key` whose
//! certificate a test CA (made here with rcgen) signed, the bench's PUTs and GETs are exact with
//! `--ca-bundle` (or `AWS_CA_BUNDLE`) and with `--insecure`; an untrusted certificate (a wrong
//! CA, through the flag or the system store's `SSL_CERT_FILE`) fails with a message that says
//! so; a bad CA file, a refused connection and mixed schemes are clear errors; the client's
//! ceiling of an https run is measured over TLS, and `--null --tls` has exact totals. No timing
//! is asserted.

mod common;

use common::bench::report;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// PEM files of a test CA and of a server certificate it signed for 127.0.0.1 and localhost.
struct TestCerts {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// Another CA, which signed nothing the server has.
    other_ca: PathBuf,
}

/// A CA certificate and its key, named `name`.
fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.self_signed(&key).unwrap(), key)
}

impl TestCerts {
    fn make() -> TestCerts {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (ca, ca_key) = make_ca("bench test CA");
        let (other, _) = make_ca("another test CA");
        let leaf_key = KeyPair::generate().unwrap();
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let write = |name: &str, pem: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        TestCerts {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", leaf.pem()),
            key: write("key.pem", leaf_key.serialize_pem()),
            other_ca: write("other-ca.pem", other.pem()),
            _dir: dir,
        }
    }

    /// A server speaking only HTTPS with the test certificate.
    fn server(&self) -> common::Server {
        let (cert, key) = (self.cert.to_str().unwrap(), self.key.to_str().unwrap());
        common::Server::start_with_args(2, &["--tls-cert", cert, "--tls-key", key])
    }
}

/// `ringstore bench --endpoint URL ARGS` with the test keys and `env` (no AWS_CA_BUNDLE or
/// SSL_CERT_FILE from the caller's environment).
fn bench(url: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringstore"));
    cmd.arg("bench")
        .arg("--endpoint")
        .arg(url)
        .args(args)
        .env("RINGSTORE_ACCESS_KEY", common::ACCESS_KEY)
        .env("RINGSTORE_SECRET_KEY", common::SECRET_KEY)
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ringstore bench")
}

/// `(total_ops, total_bytes, total_errors)` of operation `op` in report `r`.
fn totals(r: &Value, op: &str) -> (u64, u64, u64) {
    let o = r["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == op)
        .unwrap_or_else(|| panic!("no {op} in {r}"));
    let n = |k: &str| o[k].as_u64().unwrap();
    (n("total_ops"), n("total_bytes"), n("total_errors"))
}

/// The flags of a small timed run of `scenario`: 60 operations of 3000 bytes on 3 connections.
fn small(scenario: &str) -> Vec<&str> {
    vec![
        "--scenario",
        scenario,
        "--count",
        "60",
        "--objects",
        "20",
        "--object-size",
        "3000",
        "--concurrency",
        "3",
        "--no-ceiling",
        "--json",
    ]
}

/// A failed run: its exit status (1 or 2) and stderr.
fn failed(out: &Output) -> (i32, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code().expect("exited");
    assert!(code == 1 || code == 2, "exit {code}; stderr:\n{stderr}");
    (code, stderr)
}

#[test]
fn bench_over_https_verifies_the_server_certificate() {
    let certs = TestCerts::make();
    let server = certs.server();
    let url = format!("https://{}", server.host());
    let ca = certs.ca.to_str().unwrap();

    let mut args = small("put");
    args.extend(["--ca-bundle", ca]);
    let r = report(&bench(&url, &args, &[]));
    assert_eq!(totals(&r, "PUT"), (60, 60 * 3000, 0), "{r}");
    assert_eq!(r["params"]["endpoints"][0], url.as_str());
    assert_eq!(r["params"]["tls_verify"], "ca-bundle");

    // The CA from AWS_CA_BUNDLE, as the aws tools take it.
    let r = report(&bench(&url, &small("get"), &[("AWS_CA_BUNDLE", &certs.ca)]));
    assert_eq!(totals(&r, "GET"), (60, 60 * 3000, 0), "{r}");
    assert_eq!(r["params"]["tls_verify"], "ca-bundle");

    // --ca-bundle wins over AWS_CA_BUNDLE; an empty AWS_CA_BUNDLE means none (the system's
    // store, which does not know the test CA: the run fails).
    let mut args = small("put");
    args.extend(["--ca-bundle", ca]);
    let r = report(&bench(&url, &args, &[("AWS_CA_BUNDLE", &certs.other_ca)]));
    assert_eq!(totals(&r, "PUT").0, 60, "{r}");
    let empty = Path::new("");
    let env = [("AWS_CA_BUNDLE", empty), ("SSL_CERT_FILE", &certs.other_ca)];
    let (_, stderr) = failed(&bench(&url, &small("put"), &env));
    assert!(stderr.contains("certificate did not verify"), "{stderr}");

    // --insecure: no CA at all.
    let mut args = small("stat");
    args.push("--insecure");
    let r = report(&bench(&url, &args, &[]));
    assert_eq!(totals(&r, "STAT").0, 60, "{r}");
    assert_eq!(r["params"]["tls_verify"], "insecure");

    // A CA that did not sign the server's certificate: through the flag, and as the system
    // store (SSL_CERT_FILE is where rustls-native-certs reads it from when set).
    let other = certs.other_ca.to_str().unwrap();
    let mut args = small("put");
    args.extend(["--ca-bundle", other]);
    for out in [
        bench(&url, &args, &[]),
        bench(&url, &small("put"), &[("SSL_CERT_FILE", &certs.other_ca)]),
    ] {
        let (_, stderr) = failed(&out);
        assert!(
            stderr.contains("certificate did not verify")
                && stderr.contains("--ca-bundle")
                && stderr.contains("--insecure"),
            "{stderr}"
        );
    }
    drop(server);
}

#[test]
fn https_setup_errors_are_clear() {
    let certs = TestCerts::make();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let mut args = small("put");
    args.extend(["--ca-bundle", garbage.to_str().unwrap()]);
    let (code, stderr) = failed(&bench("https://127.0.0.1:9", &args, &[]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");

    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = small("put");
    args.extend(["--ca-bundle", certs.ca.to_str().unwrap()]);
    let url = format!("https://127.0.0.1:{port}");
    let (_, stderr) = failed(&bench(&url, &args, &[]));
    assert!(
        stderr.contains(&format!("connect 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");

    let mixed = format!("http://127.0.0.1:{port},https://127.0.0.1:{port}");
    let (code, stderr) = failed(&bench(&mixed, &small("put"), &[]));
    assert_eq!(code, 2);
    assert!(stderr.contains("mixes http:// and https://"), "{stderr}");

    // --tls belongs to --null.
    let (code, stderr) = failed(&bench(&url, &["--tls"], &[]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--null"), "{stderr}");
}

#[test]
fn the_ceiling_of_an_https_run_is_measured_over_tls() {
    let certs = TestCerts::make();
    let server = certs.server();
    let url = format!("https://{}", server.host());
    let mut args: Vec<&str> = small("put")
        .into_iter()
        .filter(|a| *a != "--no-ceiling")
        .collect();
    args.extend(["--insecure", "--duration-secs", "5"]);
    let out = bench(&url, &args, &[]);
    let r = report(&out);
    assert_eq!(totals(&r, "PUT"), (60, 60 * 3000, 0), "{r}");
    let ceiling = &r["client_ceiling"];
    assert_eq!(ceiling["tls"], true, "{r}");
    // The ceiling run stops at --count too: exact against the null responder.
    assert_eq!(totals(ceiling, "PUT"), (60, 60 * 3000, 0), "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("client ceiling (null responder over TLS)"),
        "{stderr}"
    );
}

#[test]
fn null_responder_over_tls_totals_are_exact() {
    let null = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringstore"));
        cmd.args(["bench", "--null", "--tls"]).args(args);
        cmd.output().expect("run ringstore bench")
    };
    let r = report(&null(&[
        "--scenario",
        "put",
        "--count",
        "500",
        "--object-size",
        "4KiB",
        "--concurrency",
        "3",
        "--json",
    ]));
    assert_eq!(totals(&r, "PUT"), (500, 500 * 4096, 0), "{r}");
    assert_eq!(r["params"]["tls_verify"], "self-signed");
    assert!(r["params"]["endpoints"][0]
        .as_str()
        .unwrap()
        .starts_with("https://127.0.0.1:"));
    // 1 MiB GETs: bodies larger than a TLS record, read and discarded over TLS.
    let r = report(&null(&[
        "--scenario",
        "get",
        "--count",
        "40",
        "--objects",
        "8",
        "--object-size",
        "1MiB",
        "--concurrency",
        "2",
        "--json",
    ]));
    assert_eq!(totals(&r, "GET"), (40, 40 << 20, 0), "{r}");
    // The basic scenarios, with an 8 MiB PUT over TLS: the responder answered exactly what the
    // client sent, 1 CreateBucket + 100 + 100 + 100 + 1 + (1 + 2 + 1) requests.
    let r = report(&null(&[
        "--scenario",
        "all",
        "--count",
        "100",
        "--size",
        "8MiB",
        "--part-size",
        "5MiB",
        "--concurrency",
        "4",
        "--json",
    ]));
    assert_eq!(r["null_responder"]["sent"], 206, "{r}");
    assert_eq!(r["null_responder"]["answered"], 206, "{r}");
    assert_eq!(r["endpoint"].as_str().map(|u| &u[..8]), Some("https://"));
}
