//! Connection: one accepted TCP stream, its read buffer and the raw byte I/O on it.
//!
//! Invariants: bytes read from the socket but not yet consumed live in `buf[start..end]` and are
//! always consumed before the socket is read again (so pipelined requests are never lost); the
//! buffer never grows past [`READ_BUF_BYTES`]; every socket has `TCP_NODELAY`. A connection is
//! plain TCP or TLS ([`Transport`]) from its handshake to its end; the plain path goes straight to
//! the socket (one `match` per call, no extra buffer or copy).

use crate::http::error::{http_err, HttpError};
use crate::http::head::{HeadParse, RequestHead, HEAD_SIZE_MAX_BYTES};
use crate::http::tls::{self, TlsStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use std::io;
use std::time::Duration;

/// Size of the per-connection read buffer (must hold a maximal head).
pub(crate) const READ_BUF_BYTES: usize = HEAD_SIZE_MAX_BYTES + 16 * 1024;
const _: () = assert!(READ_BUF_BYTES > HEAD_SIZE_MAX_BYTES);
/// A socket read (or write) that makes no progress for this long ends the connection.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A request head must be complete this long after its first byte arrived (slowloris).
pub(crate) const HEAD_DEADLINE: Duration = Duration::from_secs(30);

/// Outcome of waiting for the next request head.
pub(crate) enum NextHead {
    Head(RequestHead),
    /// The peer closed the connection (or went idle) between requests.
    Closed,
    /// The bytes received are not a valid head; answer with this error and close.
    Bad(HttpError),
}

/// The byte stream under a connection: the socket itself, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Transport {
    async fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(dst).await,
            Transport::Tls(s) => s.read(dst).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.write_all(bytes).await,
            // Flushed: the TLS socket gathers records until it is (see `tls::BatchedSocket`).
            Transport::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush().await,
            Transport::Tls(s) => s.flush().await,
        }
    }

    /// Flushes and closes (for TLS: sends close_notify first).
    async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = match self {
            Transport::Plain(s) => s.close().await,
            Transport::Tls(s) => s.close().await,
        };
    }
}

pub(crate) struct Connection {
    stream: Transport,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Connection {
    /// Sets up an accepted socket; with `tls`, runs the TLS handshake on it first.
    pub(crate) async fn open(
        stream: TcpStream,
        tls: Option<&TlsAcceptor>,
    ) -> io::Result<Connection> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
        let stream = match tls {
            None => Transport::Plain(stream),
            Some(acceptor) => Transport::Tls(Box::new(tls::handshake(acceptor, stream).await?)),
        };
        Ok(Connection {
            stream,
            buf: vec![0u8; READ_BUF_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        })
    }

    /// Bytes received and not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes from the socket into the buffer; returns how many (0 = EOF).
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(io::Error::other("read buffer full"));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Reads straight from the socket into `dst` (used for body bytes once the buffer is empty).
    pub(crate) async fn read_direct(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        debug_assert!(self.start == self.end);
        self.stream.read(dst).await
    }

    /// Waits for and parses the next request head.
    pub(crate) async fn next_head(&mut self) -> NextHead {
        let mut started: Option<std::time::Instant> = None;
        loop {
            if self.end > self.start {
                let t0 = *started.get_or_insert_with(std::time::Instant::now);
                if t0.elapsed() > HEAD_DEADLINE {
                    return NextHead::Bad(http_err!(
                        RequestTimeout,
                        "Your socket connection to the server was not read from or written to within the timeout period."
                    ));
                }
            }
            if self.end > self.start {
                match RequestHead::parse(&self.buf[self.start..self.end]) {
                    Ok(HeadParse::Complete(head, len)) => {
                        self.consume(len);
                        return NextHead::Head(head);
                    }
                    Ok(HeadParse::Partial) => {}
                    Err(e) => return NextHead::Bad(e),
                }
            }
            match self.fill().await {
                Ok(0) => {
                    if self.end > self.start {
                        return NextHead::Bad(http_err!(
                            IncompleteBody,
                            "The connection closed in the middle of a request head."
                        ));
                    }
                    return NextHead::Closed;
                }
                Ok(_) => {}
                // (A full buffer cannot happen here: `RequestHead::parse` rejects a partial head
                // of HEAD_SIZE_MAX_BYTES, which is smaller than the buffer.)
                Err(_) => return NextHead::Closed,
            }
        }
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }

    pub(crate) async fn close(&mut self) {
        self.stream.close().await;
    }
}
