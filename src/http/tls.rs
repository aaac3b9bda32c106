//! TLS (HTTPS): the certificate chain and private key a listener serves, loaded from PEM files
//! and reloadable while serving, and the server side of the handshake on an accepted socket.
//!
//! rustls with the `ring` provider does the cryptography; futures-rustls drives it over glommio's
//! `TcpStream` (futures-io). rustls reads 4 KiB at a time and writes one 16 KiB record at a time,
//! so the socket under a TLS stream ([`BatchedSocket`]) has a receive buffer of
//! [`TLS_RX_BUFFER_BYTES`] and gathers records into sends of up to [`TLS_TX_BATCH_BYTES`].
//!
//! Invariants: a [`TlsCerts`] always holds a configuration that loaded completely (chain parsed,
//! key parsed and matching the chain's first certificate); a failed reload leaves the previous
//! one in place; a connection keeps the configuration it was accepted with; the only ALPN
//! protocol offered is `http/1.1`; a handshake that does not finish within
//! [`TLS_HANDSHAKE_DEADLINE`]
//! ends the connection; bytes gathered by a [`BatchedSocket`] are on the wire once it is flushed
//! (the connection flushes after every `write_all` over TLS).

use futures_lite::{ready, AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use glommio::net::{Preallocated, TcpStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

/// Receive buffer of a TLS connection's socket: rustls asks for 4 KiB per read, the buffer turns
/// sixteen of those into one `recv`.
pub(crate) const TLS_RX_BUFFER_BYTES: usize = 64 * 1024;
/// Most encrypted bytes gathered before they are sent: 16 records per send instead of one
/// (16 MiB GETs over HTTPS: 240 MiB/s against 206 with about one record per send, measured with
/// tuning/tls-throughput.py on the shared 2-core VM).
pub(crate) const TLS_TX_BATCH_BYTES: usize = 256 * 1024;
/// A flushed batch buffer larger than this is freed (an idle connection keeps no large buffer).
const TLS_TX_IDLE_MAX_BYTES: usize = 32 * 1024;
/// A TLS handshake must be complete this long after the connection was accepted (the same bound
/// as a request head's, `conn::HEAD_DEADLINE`).
pub(crate) const TLS_HANDSHAKE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// The one application protocol offered in ALPN.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A server-side TLS stream over an accepted socket.
pub(crate) type TlsStream = futures_rustls::server::TlsStream<BatchedSocket>;

/// The socket under a TLS stream: reads through a receive buffer, writes gathered into
/// [`TLS_TX_BATCH_BYTES`] batches that go out when full or flushed.
pub(crate) struct BatchedSocket {
    inner: TcpStream<Preallocated>,
    out: Vec<u8>,
    /// Bytes of `out` already sent.
    sent: usize,
}

impl BatchedSocket {
    /// Sends everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Gathers from `bufs` what fits (sending a full batch first); how many bytes were taken.
    fn poll_gather(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.out.len() >= TLS_TX_BATCH_BYTES {
            ready!(self.poll_drain(cx))?;
        }
        let mut taken = 0;
        for b in bufs {
            let n = b.len().min(TLS_TX_BATCH_BYTES - self.out.len());
            self.out.extend_from_slice(&b[..n]);
            taken += n;
            if n < b.len() {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }
}

impl AsyncRead for BatchedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for BatchedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_gather(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_gather(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if this.out.capacity() > TLS_TX_IDLE_MAX_BYTES {
            this.out = Vec::new();
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

/// The certificate and key files of the HTTPS listener and the configuration last loaded from
/// them (shared by every core; [`TlsCerts::reload`] swaps it).
pub struct TlsCerts {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<TlsAcceptor>,
}

impl TlsCerts {
    /// Loads the certificate chain (`cert_path`) and private key (`key_path`), both PEM, or says
    /// clearly what is wrong with them.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsCerts, String> {
        let config = server_config(cert_path, key_path)?;
        Ok(TlsCerts {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(TlsAcceptor::from(Arc::new(config))),
        })
    }

    /// Reads both files again; new connections use them from now on. On error the previous
    /// certificate stays in use and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            TlsAcceptor::from(Arc::new(config));
        Ok(())
    }

    /// The acceptor for a connection accepted now (a cheap clone of the current one).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The server side of the TLS handshake on `stream` (already configured by the connection),
/// bounded by [`TLS_HANDSHAKE_DEADLINE`].
pub(crate) async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream) -> io::Result<TlsStream> {
    use futures_lite::future::FutureExt;
    let stream = BatchedSocket {
        inner: stream.buffered_with(Preallocated::new(TLS_RX_BUFFER_BYTES)),
        out: Vec::new(),
        sent: 0,
    };
    async { acceptor.accept(stream).await }
        .or(async {
            glommio::timer::sleep(TLS_HANDSHAKE_DEADLINE).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not finished in time",
            ))
        })
        .await
}

/// A rustls server configuration serving the chain in `cert_path` with the key in `key_path`.
fn server_config(cert_path: &Path, key_path: &Path) -> Result<rustls::ServerConfig, String> {
    let certs = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "TLS: the private key in {} does not match the certificate in {}",
                key_path.display(),
                cert_path.display()
            ),
            e => format!(
                "TLS: cannot use the certificate in {} with the key in {}: {e}",
                cert_path.display(),
                key_path.display()
            ),
        })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(config)
}

/// Reads a whole PEM file, naming it in the error.
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path)
        .map_err(|e| format!("TLS: cannot read the {what} file {}: {e}", path.display()))
}

/// The certificate chain in a PEM file (leaf first), at least one certificate.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "TLS: {} is not a valid PEM certificate file: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "TLS: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "TLS: {} holds no PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)",
            path.display()
        ),
        e => format!(
            "TLS: {} is not a valid PEM private key file: {e}",
            path.display()
        ),
    })
}
