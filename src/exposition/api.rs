//! The live JSON API: `GET /api/v1/snapshot`, and the routing of `/api/v1/stream` and `/status`.
//!
//! Documents come pre-built from [`crate::state::snapshot::Live`]; a request clones `Arc`s under a short read
//! lock and serialises after releasing it. Schema: docs/live-api.md.

use super::http::AppState;
use crate::model::now_ms;
use crate::state::snapshot::{QueueDoc, Since};
use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The response body of every route: whole bodies and the event stream.
pub type AnyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

pub const SNAPSHOT_PATH: &str = "/api/v1/snapshot";
pub const STREAM_PATH: &str = "/api/v1/stream";
pub const STATUS_PATH: &str = "/status";

pub fn full(body: impl Into<Bytes>) -> AnyBody {
    Full::new(body.into()).boxed_unsync()
}

/// Whether this module answers `path`.
pub fn handles(path: &str) -> bool {
    matches!(path, SNAPSHOT_PATH | STREAM_PATH | STATUS_PATH)
}

pub(crate) fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<AnyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response<AnyBody> {
    let body = serde_json::json!({ "error": msg }).to_string();
    response(status, "application/json", body)
}

/// Serve one of [`handles`]' paths (authentication already passed).
pub async fn serve(req: Request<Incoming>, app: Arc<AppState>, shutdown: CancellationToken) -> Response<AnyBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let query = Query::parse(req.uri().query().unwrap_or(""));
    match req.uri().path() {
        SNAPSHOT_PATH => snapshot(&req, &app, &query),
        STREAM_PATH => super::stream::serve(req, app, query, shutdown).await,
        _ => super::status::page(&app, &query),
    }
}

/// Query parameters of the live API.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub since: Option<u64>,
    pub filter: Filter,
    /// Anything unparsable, reported as 400.
    pub bad: Option<String>,
}

/// `?queue=` and `?division=`: comma-separated name globs or ids; empty = all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    queues: Vec<String>,
    divisions: Vec<String>,
}

fn glob_or_id(patterns: &[String], id: &str, name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p == id || wildmatch::WildMatch::new(p).matches(name))
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty() && self.divisions.is_empty()
    }

    pub fn matches(&self, d: &QueueDoc) -> bool {
        glob_or_id(&self.queues, &d.id, d.name()) && glob_or_id(&self.divisions, d.division_id(), d.division())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: &str) -> Query {
        let mut out = Query::default();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            let list = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
            match k {
                "since" => match v.parse() {
                    Ok(n) => out.since = Some(n),
                    Err(_) => out.bad = Some(format!("since must be a store version, not {v:?}")),
                },
                "queue" => out.filter.queues.extend(list()),
                "division" => out.filter.divisions.extend(list()),
                _ => {}
            }
        }
        out
    }
}

/// The snapshot document: `full` says whether `queues` is every (matching) queue or only those changed since.
#[allow(clippy::too_many_arguments)] // one flat call site per endpoint reads better than a builder
pub fn snapshot_json(
    version: u64,
    since: Option<u64>,
    queues: &[Arc<QueueDoc>],
    removed: &[Arc<str>],
    full: bool,
    filter: &Filter,
    now: i64,
    max_age_ms: i64,
) -> Value {
    let mut m = Map::new();
    m.insert("version".into(), Value::from(version));
    if let Some(s) = since {
        m.insert("since".into(), Value::from(s));
    }
    m.insert("full".into(), Value::Bool(full));
    m.insert("time_ms".into(), Value::from(now));
    m.insert("max_age_seconds".into(), crate::state::snapshot::num(max_age_ms as f64 / 1000.0));
    let qs: Vec<Value> =
        queues.iter().filter(|d| filter.matches(d)).map(|d| d.with_freshness(now, max_age_ms)).collect();
    m.insert("queues".into(), Value::Array(qs));
    m.insert("removed".into(), Value::Array(removed.iter().map(|r| Value::from(&**r)).collect()));
    Value::Object(m)
}

fn snapshot(req: &Request<Incoming>, app: &AppState, query: &Query) -> Response<AnyBody> {
    if let Some(bad) = &query.bad {
        return error(StatusCode::BAD_REQUEST, bad);
    }
    let live = app.store.live();
    let version = live.version();
    // Weak: the serve-time fields (data age) move without a new version.
    let etag = format!("W/\"{version}\"");
    let inm = req.headers().get(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if inm.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(ETAG, v);
        }
        return r;
    }
    let now = now_ms();
    let (version, queues, removed, is_full) = match query.since {
        None => {
            let (v, docs) = live.docs();
            (v, docs, Vec::new(), true)
        }
        Some(s) => match live.since(s) {
            (v, Since::Full(docs)) => (v, docs, Vec::new(), true),
            (v, Since::Changed { queues, removed }) => (v, queues, removed, false),
        },
    };
    let doc = snapshot_json(version, query.since, &queues, &removed, is_full, &query.filter, now, live.max_age_ms());
    let mut r = response(StatusCode::OK, "application/json", doc.to_string());
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_and_percent_decoding() {
        let q = Query::parse("since=12&queue=Sales%20*,abc&division=Main+Div&x=1");
        assert_eq!(q.since, Some(12));
        assert_eq!(q.filter.queues, vec!["Sales *".to_owned(), "abc".to_owned()]);
        assert_eq!(q.filter.divisions, vec!["Main Div".to_owned()]);
        assert!(Query::parse("since=x").bad.is_some());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%"), "A%");
    }
}
