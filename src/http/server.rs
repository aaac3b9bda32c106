//! Connection loop: reads request heads, hands each request to the S3 layer, writes responses,
//! keeps the connection alive until the client, an error or shutdown ends it.
//!
//! Invariants: requests on one connection are answered in order (pipelining); a request whose
//! body was not fully consumed ends the connection after its response (the stream position would
//! be unknown); a malformed head gets a 400-class S3 error and the connection is closed.

use crate::http::body::{framing_of, BodyReader};
use crate::http::conn::{Connection, NextHead};
use crate::http::error::http_err;
use crate::http::head::Method;
use crate::http::response::{write_response, Response};
use crate::runtime::shutdown;
use crate::runtime::CoreCtx;
use crate::s3::error::S3Error;
use glommio::net::TcpStream;
use std::rc::Rc;

/// Bytes of an unread request body the server reads and discards to keep the connection usable.
pub const DRAIN_BODY_MAX_BYTES: u64 = 1024 * 1024;
/// Longest time spent discarding an unread body before answering.
pub const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn serve_connection(ctx: &Rc<CoreCtx>, stream: TcpStream) {
    let mut conn = match Connection::new(stream) {
        Ok(c) => c,
        Err(_) => return,
    };
    loop {
        if shutdown::is_shutting_down() && conn.buffered().is_empty() {
            break;
        }
        let head = match conn.next_head().await {
            NextHead::Head(h) => h,
            NextHead::Closed => break,
            NextHead::Bad(err) => {
                let id = ctx.next_request_id();
                let mut resp = crate::s3::error_response(&S3Error::from(err), "/", &id);
                resp.close = true;
                let _ = write_response(&mut conn, resp, &id, false).await;
                break;
            }
        };
        ctx.active_requests.set(ctx.active_requests.get() + 1);
        let keep_going = serve_request(ctx, &mut conn, head).await;
        ctx.active_requests.set(ctx.active_requests.get() - 1);
        if !keep_going {
            break;
        }
    }
    conn.close().await;
}

/// Serves one request; returns whether the connection may carry another.
async fn serve_request(
    ctx: &Rc<CoreCtx>,
    conn: &mut Connection,
    head: crate::http::head::RequestHead,
) -> bool {
    let request_id = ctx.next_request_id();
    let is_head = head.method == Method::Head;
    let (mut resp, body_clean) = match framing_of(&head) {
        Err(err) => (
            crate::s3::error_response(&S3Error::from(err), &head.path, &request_id),
            false,
        ),
        Ok(framing) => {
            let mut body = BodyReader::new(conn, framing, head.expects_continue());
            let resp = crate::s3::dispatch(ctx, &head, &mut body, &request_id).await;
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
    if remaining.is_some_and(|r| r > DRAIN_BODY_MAX_BYTES) {
        return false;
    }
    drain_bounded(body)
        .or(async {
            glommio::timer::sleep(DRAIN_DEADLINE).await;
            false
        })
        .await
}

async fn drain_bounded(body: &mut BodyReader<'_>) -> bool {
    let mut scratch = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match body.read(&mut scratch).await {
            Ok(0) => return true,
            Ok(n) => {
                total += n as u64;
                if total > DRAIN_BODY_MAX_BYTES {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// Answers a connection over the limit with 503 SlowDown and closes it.
pub async fn refuse_connection(ctx: Rc<CoreCtx>, stream: TcpStream) {
    if let Ok(mut conn) = Connection::new(stream) {
        let id = ctx.next_request_id();
        let err = http_err!(
            SlowDown,
            "Too many connections; please reduce your request rate."
        );
        let mut resp: Response = crate::s3::error_response(&S3Error::from(err), "/", &id);
        resp.close = true;
        let _ = write_response(&mut conn, resp, &id, false).await;
        conn.close().await;
    }
}
