//! Connection loop: reads request heads, hands each request to the [`Handler`] it was given,
//! writes responses, keeps the connection alive until the client, an error or shutdown ends it.
//! It knows HTTP/1.1 only; what a request means is the handler's business.
//!
//! Invariants: requests on one connection are answered in order (pipelining); a request whose
//! body was not fully consumed ends the connection after its response (the stream position would
//! be unknown); a malformed head is answered with the handler's error response and the connection
//! is closed; every response carries a request id unique in the process.

use crate::http::body::{framing_of, BodyReader};
use crate::http::conn::{Connection, NextHead};
use crate::http::error::HttpError;
use crate::http::head::{Method, RequestHead};
use crate::http::response::{write_response, Response};
use crate::http::shutdown;
use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use std::cell::Cell;

/// Bytes of an unread request body the server reads and discards to keep the connection usable.
pub(crate) const UNREAD_BODY_DRAIN_MAX_BYTES: u64 = 1024 * 1024;
/// Longest time spent discarding an unread body before answering.
pub(crate) const UNREAD_BODY_DRAIN_DEADLINE: std::time::Duration =
    std::time::Duration::from_secs(1);
/// Size of the scratch buffer an unread body is drained through.
const DRAIN_SCRATCH_BYTES: usize = 64 * 1024;

/// What the server does with requests. Implemented by the S3 layer.
#[allow(async_fn_in_trait)]
pub(crate) trait Handler {
    /// Answers one request whose head parsed and whose body framing is known. Never fails:
    /// errors become error responses. May leave part of the body unread.
    async fn handle(
        &self,
        head: &RequestHead,
        body: &mut BodyReader<'_>,
        request_id: &str,
    ) -> Response;

    /// The response to a request that could not be parsed or framed, or that is refused.
    fn error_response(&self, err: &HttpError, resource: &str, request_id: &str) -> Response;
}

/// One core's HTTP server: its handler, request ids and in-flight count.
pub(crate) struct Server<H> {
    handler: H,
    request_prefix: String,
    request_seq: Cell<u64>,
    /// Requests between head parsed and response written (what shutdown waits for).
    active_requests: Cell<usize>,
}

impl<H: Handler> Server<H> {
    /// A server for `core`; `epoch_s` (the process start) makes request ids unique across runs.
    pub(crate) fn new(handler: H, core: usize, epoch_s: u64) -> Server<H> {
        Server {
            handler,
            request_prefix: format!("{:02X}{:08X}", core, epoch_s as u32),
            request_seq: Cell::new(0),
            active_requests: Cell::new(0),
        }
    }

    /// Requests being served right now.
    pub(crate) fn active_requests(&self) -> usize {
        self.active_requests.get()
    }

    /// A request id unique in this process: core, start time and a per-core counter.
    fn next_request_id(&self) -> String {
        let n = self.request_seq.get() + 1;
        self.request_seq.set(n);
        format!("{}{:08X}", self.request_prefix, n)
    }

    /// Serves one connection until it ends (over TLS with `tls`: handshake first).
    pub(crate) async fn serve_connection(&self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let Ok(mut conn) = Connection::open(stream, tls.as_ref()).await else {
            return;
        };
        loop {
            if shutdown::is_shutting_down() && conn.buffered().is_empty() {
                break;
            }
            let head = match conn.next_head().await {
                NextHead::Head(h) => h,
                NextHead::Closed => break,
                NextHead::Bad(err) => {
                    let id = self.next_request_id();
                    let mut resp = self.handler.error_response(&err, "/", &id);
                    resp.close = true;
                    let _ = write_response(&mut conn, resp, &id, false).await;
                    break;
                }
            };
            self.active_requests.set(self.active_requests.get() + 1);
            let keep_going = self.serve_request(&mut conn, head).await;
            self.active_requests.set(self.active_requests.get() - 1);
            if !keep_going {
                break;
            }
        }
        conn.close().await;
    }

    /// Serves one request; returns whether the connection may carry another.
    async fn serve_request(&self, conn: &mut Connection, head: RequestHead) -> bool {
        let request_id = self.next_request_id();
        let is_head = head.method == Method::Head;
        let (mut resp, body_clean) = match framing_of(&head) {
            Err(err) => (
                self.handler.error_response(&err, &head.path, &request_id),
                false,
            ),
            Ok(framing) => {
                let mut body = BodyReader::new(conn, framing, head.expects_continue());
                let resp = self.handler.handle(&head, &mut body, &request_id).await;
                let clean = body.is_done() || drain(&mut body).await;
                (resp, clean)
            }
        };
        if !body_clean || head.wants_close() || shutdown::is_shutting_down() {
            resp.close = true;
        }
        let close = resp.close;
        let written = write_response(conn, resp, &request_id, is_head).await;
        written.is_ok() && !close
    }

    /// Answers a connection over the limit with the handler's `err` response and closes it.
    pub(crate) async fn refuse_connection(
        &self,
        stream: TcpStream,
        tls: Option<TlsAcceptor>,
        err: &HttpError,
    ) {
        if let Ok(mut conn) = Connection::open(stream, tls.as_ref()).await {
            let id = self.next_request_id();
            let mut resp = self.handler.error_response(err, "/", &id);
            resp.close = true;
            let _ = write_response(&mut conn, resp, &id, false).await;
            conn.close().await;
        }
    }
}

/// Reads and discards a small unread body (only when the client is already sending it, and
/// only briefly: an error response is never held back by a slow or stalled client).
async fn drain(body: &mut BodyReader<'_>) -> bool {
    use futures_lite::future::FutureExt;
    if body.continue_pending() {
        return false;
    }
    let remaining = body
        .declared_length()
        .map(|n| n.saturating_sub(body.decoded_bytes()));
    if remaining.is_some_and(|r| r > UNREAD_BODY_DRAIN_MAX_BYTES) {
        return false;
    }
    drain_bounded(body)
        .or(async {
            glommio::timer::sleep(UNREAD_BODY_DRAIN_DEADLINE).await;
            false
        })
        .await
}

async fn drain_bounded(body: &mut BodyReader<'_>) -> bool {
    let mut scratch = vec![0u8; DRAIN_SCRATCH_BYTES];
    let mut total = 0u64;
    loop {
        match body.read(&mut scratch).await {
            Ok(0) => return true,
            Ok(n) => {
                total += n as u64;
                if total > UNREAD_BODY_DRAIN_MAX_BYTES {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}
