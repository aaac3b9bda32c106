//! Connection loop: reads request heads, hands each request to the [`Handler`] it was given,
//! writes responses, keeps the connection alive until the client, an error or shutdown ends it.
//! It knows HTTP/1.1 only; what a request means is the handler's business.
//!
//! Invariants: requests on one connection are answered in order (pipelining); a request whose
//! body was not fully consumed ends the connection after its response (the stream position would
//! be unknown); a malformed head is answered with the handler's error response and the connection
//! is closed; every response carries a request id unique in the process; every answered request
//! is counted in this core's metrics and, with the access log on, gets one log line carrying
//! that request id.

use crate::http::body::{framing_of, BodyReader};
use crate::http::conn::{Connection, NextHead};
use crate::http::error::HttpError;
use crate::http::head::{Method, RequestHead};
use crate::http::response::{write_response, Response};
use crate::http::shutdown;
use crate::obs::access_log::AccessEntry;
use crate::obs::metrics::RequestSample;
use crate::obs::CoreObs;
use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Instant;

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
    core: usize,
    request_prefix: String,
    request_seq: Cell<u64>,
    /// Requests between head parsed and response written (what shutdown waits for).
    active_requests: Cell<usize>,
    /// This core's metrics and the access log.
    obs: CoreObs,
}

/// A request as it ends, for metrics and the access log.
struct Finished<'a> {
    head: Option<&'a RequestHead>,
    request_id: &'a str,
    remote: Option<SocketAddr>,
    started: Instant,
    op: usize,
    status: u16,
    error_code: usize,
    bytes_in: u64,
    bytes_out: u64,
}

impl<H: Handler> Server<H> {
    /// A server for `core`; `epoch_s` (the process start) makes request ids unique across runs.
    pub(crate) fn new(handler: H, core: usize, epoch_s: u64, obs: CoreObs) -> Server<H> {
        Server {
            handler,
            core,
            request_prefix: format!("{:02X}{:08X}", core, epoch_s as u32),
            request_seq: Cell::new(0),
            active_requests: Cell::new(0),
            obs,
        }
    }

    /// The handler requests go to.
    pub(crate) fn handler(&self) -> &H {
        &self.handler
    }

    /// Counts a finished request and writes its access-log line.
    fn finish(&self, f: Finished<'_>) {
        let elapsed = f.started.elapsed();
        if let Some(m) = &self.obs.metrics {
            m.record(&RequestSample {
                op: f.op,
                status: f.status,
                error: f.error_code,
                bytes_in: f.bytes_in,
                bytes_out: f.bytes_out,
                elapsed,
            });
        }
        if let Some(log) = &self.obs.log {
            let labels = &self.obs.labels;
            log.log(&AccessEntry {
                time_ms: crate::clock::now_ms(),
                request_id: f.request_id,
                core: self.core,
                remote: f.remote,
                method: f.head.map_or("-", |h| h.method_raw.as_str()),
                path: f.head.map_or("-", |h| h.path.as_str()),
                query: f.head.map_or("", |h| h.query.as_str()),
                op: labels.ops.get(f.op).copied().unwrap_or("-"),
                status: f.status,
                error: labels.codes.get(f.error_code).copied().unwrap_or(""),
                bytes_in: f.bytes_in,
                bytes_out: f.bytes_out,
                duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            });
        }
    }

    /// Answers `err` to a head that could not be parsed or a refused connection (the
    /// connection closes after it).
    async fn answer_error(
        &self,
        conn: &mut Connection,
        err: &HttpError,
        remote: Option<SocketAddr>,
    ) {
        let started = Instant::now();
        let id = self.next_request_id();
        let mut resp = self.handler.error_response(err, "/", &id);
        resp.close = true;
        let (op, status, error_code) = (resp.op, resp.status, resp.error_code);
        let bytes_out = resp.sent_body_len(false);
        let _ = write_response(conn, resp, &id, false).await;
        self.finish(Finished {
            head: None,
            request_id: &id,
            remote,
            started,
            op,
            status,
            error_code,
            bytes_in: 0,
            bytes_out,
        });
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
        let remote = match self.obs.log {
            Some(_) => stream.peer_addr().ok(),
            None => None,
        };
        let Ok(mut conn) = Connection::open(stream, tls.as_ref()).await else {
            return;
        };
        let metrics = self.obs.metrics.as_deref();
        metrics.inspect(|m| m.connections.add(1));
        loop {
            if shutdown::is_shutting_down() && conn.buffered().is_empty() {
                break;
            }
            let head = match conn.next_head().await {
                NextHead::Head(h) => h,
                NextHead::Closed => break,
                NextHead::Bad(err) => {
                    self.answer_error(&mut conn, &err, remote).await;
                    break;
                }
            };
            self.active_requests.set(self.active_requests.get() + 1);
            metrics.inspect(|m| m.in_flight.add(1));
            let keep_going = self.serve_request(&mut conn, head, remote).await;
            metrics.inspect(|m| m.in_flight.sub(1));
            self.active_requests.set(self.active_requests.get() - 1);
            if !keep_going {
                break;
            }
        }
        conn.close().await;
        metrics.inspect(|m| m.connections.sub(1));
    }

    /// Serves one request; returns whether the connection may carry another.
    async fn serve_request(
        &self,
        conn: &mut Connection,
        head: RequestHead,
        remote: Option<SocketAddr>,
    ) -> bool {
        let started = Instant::now();
        let request_id = self.next_request_id();
        let is_head = head.method == Method::Head;
        let (mut resp, body_clean, bytes_in) = match framing_of(&head) {
            Err(err) => (
                self.handler.error_response(&err, &head.path, &request_id),
                false,
                0,
            ),
            Ok(framing) => {
                let mut body = BodyReader::new(conn, framing, head.expects_continue());
                let resp = self.handler.handle(&head, &mut body, &request_id).await;
                let clean = body.is_done() || drain(&mut body).await;
                (resp, clean, body.decoded_bytes())
            }
        };
        if !body_clean || head.wants_close() || shutdown::is_shutting_down() {
            resp.close = true;
        }
        let close = resp.close;
        let (op, status, error_code) = (resp.op, resp.status, resp.error_code);
        let bytes_out = resp.sent_body_len(is_head);
        let written = write_response(conn, resp, &request_id, is_head).await;
        self.finish(Finished {
            head: Some(&head),
            request_id: &request_id,
            remote,
            started,
            op,
            status,
            error_code,
            bytes_in,
            bytes_out,
        });
        written.is_ok() && !close
    }

    /// Answers a connection over the limit with the handler's `err` response and closes it.
    pub(crate) async fn refuse_connection(
        &self,
        stream: TcpStream,
        tls: Option<TlsAcceptor>,
        err: &HttpError,
    ) {
        let remote = stream.peer_addr().ok().filter(|_| self.obs.log.is_some());
        if let Ok(mut conn) = Connection::open(stream, tls.as_ref()).await {
            self.answer_error(&mut conn, err, remote).await;
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
