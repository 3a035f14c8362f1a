//! `POST /-/reload`, Prometheus's lifecycle endpoint: off unless `--web.enable-lifecycle`, answered exactly as
//! Prometheus answers it (403 `Lifecycle API is not enabled.` when off, 405 for GET, 500 with the error when the new
//! configuration is refused). What a reload does is the app's business: the server only calls a [`ReloadFn`].

use super::api::{full, AnyBody};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;

pub const RELOAD_PATH: &str = "/-/reload";
/// A reload takes no body; anything bigger than this is refused (413) before it is read.
pub const MAX_RELOAD_BODY: usize = 4096;

/// Reloads the configuration: `Ok(summary)` or `Err(why)`, where `why` names the field and never holds a secret.
pub type ReloadFn = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<AnyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Serve [`RELOAD_PATH`] (authentication already passed); `reload` is `None` without `--web.enable-lifecycle`.
pub async fn serve(req: Request<Incoming>, reload: Option<ReloadFn>) -> Response<AnyBody> {
    if req.method() != Method::POST && req.method() != Method::PUT {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Only POST or PUT requests allowed\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, PUT"));
        return r;
    }
    let Some(reload) = reload else {
        return text(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RELOAD_BODY as u64) {
        return too_large();
    }
    // Read (and discard) what there is, so the connection stays usable, but never more than the limit.
    if Limited::new(req.into_body(), MAX_RELOAD_BODY).collect().await.is_err() {
        return too_large();
    }
    match reload().await {
        Ok(summary) => text(StatusCode::OK, format!("{summary}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")),
    }
}

fn too_large() -> Response<AnyBody> {
    let mut r =
        text(StatusCode::PAYLOAD_TOO_LARGE, format!("a reload takes no body (at most {MAX_RELOAD_BODY} bytes)\n"));
    r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}
