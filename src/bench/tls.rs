//! HTTPS for the bench: the client's rustls configuration (which certificates it trusts), the
//! socket under a client TLS stream, and the self-signed certificate of the null responder's
//! HTTPS mode.
//!
//! Trust: by default the system's certificate store (rustls-native-certs); `--ca-bundle FILE`
//! (or `AWS_CA_BUNDLE`) replaces it with the certificates of one PEM file, as the aws tools do;
//! `--insecure` accepts any certificate but still checks the handshake signatures with the
//! provider's algorithms (the peer must hold the key of the certificate it sent).
//!
//! Invariants: every configuration uses rustls's `ring` provider (as the server does), the safe
//! default protocol versions and ALPN `http/1.1` only; a trust store is never empty (an empty
//! one is an error naming its source); a [`BufferedSocket`] hands out every byte it received,
//! in order, before it reads the socket again.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The one application protocol offered in ALPN.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";
/// Receive buffer under a client TLS stream: rustls reads the socket 4 KiB at a time, the buffer
/// turns sixteen of those into one `read` (16 MiB GETs against `--null --tls`: 660 and 688 MiB/s
/// against 612 and 668 reading straight from the socket).
const TLS_RX_BUFFER_BYTES: usize = 64 * 1024;
/// Encrypted bytes a TLS connection (client or null responder) queues before it writes them:
/// up to 16 records per `writev` instead of 4 with rustls's default 64 KiB (16 MiB GETs against
/// `--null --tls`: 792 and 700 MiB/s against 660 and 688; 16 MiB PUTs 732 and 664 against 696
/// and 592, two rounds each on the shared 2-core VM).
pub(crate) const TLS_SEND_BUFFER_BYTES: usize = 256 * 1024;

/// How the client decides whether to trust a server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    /// The system's certificate store.
    System,
    /// Only the certificates in this PEM file (`--ca-bundle` or `AWS_CA_BUNDLE`).
    Bundle(PathBuf),
    /// Any certificate (`--insecure`): handshake signatures are still verified.
    Insecure,
}

impl Trust {
    /// How the report names this trust: `system-roots`, `ca-bundle` or `insecure`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Trust::System => "system-roots",
            Trust::Bundle(_) => "ca-bundle",
            Trust::Insecure => "insecure",
        }
    }

    /// The client configuration trusting what `self` says.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        match self {
            Trust::System => with_roots(system_roots()?),
            Trust::Bundle(path) => with_roots(bundle_roots(path)?),
            Trust::Insecure => {
                let provider = provider();
                let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
                let mut config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS: {e}"))?
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth();
                config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
                Ok(Arc::new(config))
            }
        }
    }
}

/// The crypto provider of every configuration here (the server's: `ring`).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration verifying certificates against `roots` (never empty).
fn with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    assert!(!roots.is_empty(), "an empty trust store verifies nothing");
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// The system's trust roots; an error when none can be read.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or(String::new(), |e| format!(" ({e})"));
        return Err(format!(
            "TLS: no trusted certificates found in the system's store{why}; name the CA with \
             --ca-bundle FILE, or use --insecure for a self-signed test setup"
        ));
    }
    Ok(roots)
}

/// The certificates of the PEM file `path`, every one trusted; an error naming the file when it
/// cannot be read or holds no usable certificate.
fn bundle_roots(path: &Path) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("--ca-bundle {}: cannot read: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--ca-bundle {}: not a valid PEM file: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            format!(
                "--ca-bundle {}: a certificate cannot be used as a trust anchor: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "--ca-bundle {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(roots)
}

/// `--insecure`: accepts any certificate chain for any name, but checks the handshake
/// signatures with the provider's algorithms, so the peer still proves it holds the key of the
/// certificate it presented.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A certificate for 127.0.0.1 and localhost made in this process: the null responder serves
/// it, and a client configuration trusts exactly it.
pub(crate) struct SelfSigned {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
}

impl SelfSigned {
    /// A new key pair and self-signed certificate (ECDSA P-256).
    pub(crate) fn generate() -> Result<SelfSigned, String> {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("TLS: making a self-signed certificate: {e}"))?;
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .map_err(|e| format!("TLS: the self-signed certificate: {e}"))?;
        server.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        let mut roots = RootCertStore::empty();
        roots
            .add(cert)
            .map_err(|e| format!("TLS: trusting the self-signed certificate: {e}"))?;
        Ok(SelfSigned {
            server: Arc::new(server),
            client: with_roots(roots)?,
        })
    }
}

/// What a failed TLS handshake means to the user: a certificate that did not verify says so and
/// how to trust it; anything else is passed on.
pub(crate) fn handshake_error(e: &io::Error) -> String {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(
            r @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented),
        ) => format!(
            "TLS: the server's certificate did not verify ({r}); trust its CA with --ca-bundle \
             FILE (or AWS_CA_BUNDLE), or skip verification for a self-signed test setup with \
             --insecure"
        ),
        Some(r @ rustls::Error::InvalidMessage(_)) => format!(
            "TLS handshake: {r} (does the server speak plain HTTP on this port? then use http://)"
        ),
        _ => format!("TLS handshake: {e}"),
    }
}

/// The socket under a client TLS stream: reads through a [`TLS_RX_BUFFER_BYTES`] buffer, writes
/// go straight through.
pub(crate) struct BufferedSocket {
    inner: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
}

impl BufferedSocket {
    pub(crate) fn new(inner: TcpStream) -> BufferedSocket {
        BufferedSocket {
            inner,
            buf: vec![0u8; TLS_RX_BUFFER_BYTES],
            pos: 0,
            end: 0,
        }
    }
}

impl Read for BufferedSocket {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            if out.len() >= self.buf.len() {
                return self.inner.read(out);
            }
            self.end = self.inner.read(&mut self.buf)?;
            self.pos = 0;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for BufferedSocket {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.inner.write(data)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Trust::Bundle(missing).client_config().unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let e = Trust::Bundle(empty).client_config().unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Trust::Bundle(broken).client_config().unwrap_err();
        assert!(e.contains("--ca-bundle"), "{e}");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, made.cert.pem()).unwrap();
        let config = Trust::Bundle(good).client_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(Trust::Insecure.client_config().is_ok());
    }

    #[test]
    fn handshake_errors_say_what_to_do() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let unknown = rustls::CertificateError::UnknownIssuer;
        let m = handshake_error(&wrap(rustls::Error::InvalidCertificate(unknown)));
        assert!(
            m.contains("did not verify") && m.contains("--ca-bundle") && m.contains("--insecure")
        );
        let plain = rustls::InvalidMessage::InvalidContentType;
        let m = handshake_error(&wrap(rustls::Error::InvalidMessage(plain)));
        assert!(m.contains("use http://"), "{m}");
        let m = handshake_error(&io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(m.starts_with("TLS handshake: "), "{m}");
    }
}
