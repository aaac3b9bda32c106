//! The handler each core's HTTP server runs: answers the unsigned observability endpoints
//! (`/metrics`, `/health/live`, `/health/ready`), answers S3 requests `503 ServiceUnavailable`
//! while the data directory is being recovered, and hands every other request to the core's
//! [`S3Service`] once it exists.
//!
//! Invariants: a request carrying any signature (an `Authorization` header, or a presigned
//! query's `X-Amz-Signature` / `Signature` / `X-Amz-Credential`) is never taken by the
//! observability endpoints, so a bucket named `metrics` or `health` stays reachable; `/health/ready`
//! answers 200 only once every core has opened its store after recovery.

use crate::http::body::BodyReader;
use crate::http::error::HttpError;
use crate::http::head::{Method, RequestHead};
use crate::http::response::{Response, ResponseBody};
use crate::http::server::Handler;
use crate::obs::{Labels, Sampled};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::S3Service;
use std::cell::OnceCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Query parameters that make a request signed (presigned URLs, SigV4 and SigV2).
const SIGNATURE_QUERY_PARAMS: &[&str] = &["X-Amz-Signature", "Signature", "X-Amz-Credential"];
/// The operation index `/metrics` scrapes are counted under (after the S3 operations).
const METRICS_OP: usize = crate::s3::router::OP_NAMES.len();
/// The operation index `/health/*` probes are counted under.
const HEALTH_OP: usize = METRICS_OP + 1;

/// The operation and error code names metrics and the access log use.
pub(crate) fn labels() -> Labels {
    let mut ops = crate::s3::router::OP_NAMES.to_vec();
    ops.extend(["Metrics", "Health"]);
    assert_eq!(ops[HEALTH_OP], "Health");
    Labels {
        ops,
        codes: crate::s3::error_code_names(),
    }
}

/// One core's request handler (see the module documentation).
pub(crate) struct Front {
    service: OnceCell<S3Service>,
    shared: Arc<super::Shared>,
}

impl Front {
    pub(crate) fn new(shared: Arc<super::Shared>) -> Front {
        Front {
            service: OnceCell::new(),
            shared,
        }
    }

    /// Starts serving S3 with `service` (once, after recovery).
    pub(crate) fn serve_s3(&self, service: S3Service) {
        assert!(
            self.service.set(service).is_ok(),
            "the S3 service is set once"
        );
    }

    /// The answer of an observability endpoint, if `head` asks for one.
    fn observability(&self, head: &RequestHead) -> Option<Response> {
        if !matches!(head.method, Method::Get | Method::Head) || is_signed(head) {
            return None;
        }
        let ready = self.shared.ready.load(Ordering::Acquire);
        let (status, body, op) = match head.path.as_str() {
            "/metrics" => (200, self.render_metrics(), METRICS_OP),
            "/health/live" => (200, "live\n".to_string(), HEALTH_OP),
            "/health/ready" if ready => (200, "ready\n".to_string(), HEALTH_OP),
            "/health/ready" => (503, "recovering\n".to_string(), HEALTH_OP),
            _ => return None,
        };
        let content_type = match op {
            METRICS_OP => "text/plain; version=0.0.4; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        let mut resp = Response::new(status).header("Content-Type", content_type);
        resp.body = ResponseBody::Bytes(body.into_bytes());
        resp.op = op;
        Some(resp)
    }

    /// Every core's metrics, plus what storage and the runtime can tell cheaply.
    fn render_metrics(&self) -> String {
        let s = &self.shared;
        let flag = |b: bool| u64::from(b);
        let mut sampled = vec![
            gauge(
                "ringstore_ready",
                "1 once recovery finished and every core serves S3.",
                flag(s.ready.load(Ordering::Acquire)),
            ),
            counter(
                "ringstore_log_lines_dropped_total",
                "Access-log lines dropped because the writer fell behind.",
                s.access_log.as_ref().map_or(0, |l| l.dropped()),
            ),
            counter(
                "ringstore_read_cache_hits_total",
                "Read cache lookups that found the body.",
                s.cache.stats().hits,
            ),
            counter(
                "ringstore_read_cache_misses_total",
                "Read cache lookups that missed.",
                s.cache.stats().misses,
            ),
            counter(
                "ringstore_upload_memory_waits_total",
                "Upload buffers that waited for the upload memory budget.",
                s.budget.stats().1,
            ),
        ];
        if let Some(r) = s.recovered.get() {
            let u = crate::storage::usage(&r.engine);
            sampled.extend([
                gauge("ringstore_buckets", "Buckets.", u.buckets),
                gauge("ringstore_objects", "Objects in all buckets.", u.objects),
                gauge(
                    "ringstore_object_bytes",
                    "Bytes of all stored objects (the sum of their sizes).",
                    u.object_bytes,
                ),
                gauge(
                    "ringstore_log_segments",
                    "Log segment files.",
                    u.log_segments,
                ),
                gauge(
                    "ringstore_log_live_bytes",
                    "Log record bytes not known to be dead (inline bodies, metadata).",
                    u.log_live_bytes,
                ),
                counter(
                    "ringstore_log_records_total",
                    "Log records written since the start.",
                    u.log_records,
                ),
                counter(
                    "ringstore_log_flushes_total",
                    "Log batch writes (group commits) since the start.",
                    u.log_flushes,
                ),
            ]);
        }
        s.registry.render(&sampled)
    }
}

fn gauge(name: &'static str, help: &'static str, value: u64) -> Sampled {
    Sampled {
        name,
        help,
        kind: "gauge",
        value,
    }
}

fn counter(name: &'static str, help: &'static str, value: u64) -> Sampled {
    Sampled {
        name,
        help,
        kind: "counter",
        value,
    }
}

/// Whether `head` carries a signature (header or presigned query).
fn is_signed(head: &RequestHead) -> bool {
    head.header("authorization").is_some()
        || head.query.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            SIGNATURE_QUERY_PARAMS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
        })
}

impl Handler for Front {
    async fn handle(
        &self,
        head: &RequestHead,
        body: &mut BodyReader<'_>,
        request_id: &str,
    ) -> Response {
        if let Some(resp) = self.observability(head) {
            return resp;
        }
        match self.service.get() {
            Some(service) => service.handle(head, body, request_id).await,
            None => {
                let err = S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "The server is recovering its data; please retry.",
                );
                let mut resp = crate::s3::error_response(&err, &head.path, request_id);
                let domain = self.shared.config.domain.as_deref();
                resp.op = crate::s3::router::route(head, domain).map_or(0, |r| r.op.index());
                resp
            }
        }
    }

    fn error_response(&self, err: &HttpError, resource: &str, request_id: &str) -> Response {
        crate::s3::error_response(&S3Error::from(err.clone()), resource, request_id)
    }
}
