//! The exporter's HTTP server: `/metrics` (or `--web.telemetry-path`), `/`, `/healthz`, `/readyz`.
//!
//! hyper 1 over HTTP/1.1 with keep-alive. On cancel the listener closes, idle connections close at once and
//! in-flight requests finish (bounded by [`DRAIN_TIMEOUT`]) before [`serve`] returns. Rendering and compression
//! run on the blocking pool: a 300k-series scrape is tens of milliseconds of CPU that must not stall the
//! collector's tasks on the same runtime.
//!
//! A `/metrics` body larger than one piece ([`PIECE_BYTES`]) is streamed: rendered (and gzipped) a piece at a
//! time while the client reads, so a scrape holds a few pieces rather than the whole body (30–150 MB at 10,000
//! queues), and nothing of that size is kept between scrapes.

use super::api::AnyBody;
use super::negotiate::{content_type, format_for, wants_gzip};
use super::webconfig::WebConfig;
use super::{encode_tail, ExpositionError};
use crate::model::{now_ms, Readiness};
use crate::state::{Format, Store, TextPieces};
use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long in-flight requests may take to finish after shutdown was asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent its request headers by then is dropped (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Plain-text bytes rendered per piece of a streamed `/metrics` body: large enough that the per-piece overhead
/// (a blocking-pool hop, a chunk header) is noise, small enough to stay in cache.
const PIECE_BYTES: usize = 256 * 1024;
/// Pieces rendered ahead of a slow client.
const PIECES_AHEAD: usize = 2;
/// A client that takes no piece for this long is dropped: it holds a scrape slot and a snapshot of the store.
const PIECE_TIMEOUT: Duration = Duration::from_secs(30);
/// Scrapes in flight at once; more wait their turn. Each holds a few pieces and a snapshot of the store (which
/// keeps replaced queue texts alive until it ends), so unbounded concurrency would cost unbounded memory.
const MAX_CONCURRENT_RENDERS: usize = 4;
/// Connections served at once; past this, new ones wait in the kernel's backlog instead of costing memory here.
/// Stream clients hold theirs for long, so their cap comes on top: a full house of them leaves 512 for scrapes.
const MAX_CONNECTIONS: usize = 512 + super::stream::MAX_STREAM_CLIENTS;
/// A TLS client that has not finished its handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request head size limit (hyper's read buffer): a scrape request is a few hundred bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Extra `(label, value)` lines for the landing page's state summary (e.g. notification channels, shard).
pub type SummaryFn = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Everything the server reads. Build it with [`AppState::new`] and the `with_*` methods.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The exporter's own metrics, with `process_*` (registered by [`AppState::new`]).
    pub registry: prometheus::Registry,
    pub readiness: Arc<Readiness>,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    pub version: &'static str,
    /// More lines for the landing page's summary.
    pub summary: Option<SummaryFn>,
    /// `--web.config.file`: TLS, basic auth, extra headers.
    pub web: WebConfig,
    render_slots: Arc<tokio::sync::Semaphore>,
    /// `/api/v1/stream` clients.
    pub(crate) streams: Arc<super::stream::Hub>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("telemetry_path", &self.telemetry_path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Also registers the `process_*` collector in `registry` (idempotent), so `/metrics` always carries it.
    pub fn new(store: Store, registry: prometheus::Registry, readiness: Arc<Readiness>, version: &'static str) -> Self {
        if let Err(e) = super::register_process_metrics(&registry) {
            tracing::warn!(err = %e, "could not register process metrics");
        }
        AppState {
            store,
            registry,
            readiness,
            telemetry_path: "/metrics".to_owned(),
            version,
            summary: None,
            web: WebConfig::default(),
            render_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_RENDERS)),
            streams: Arc::new(super::stream::Hub::new(super::stream::MAX_STREAM_CLIENTS, super::stream::CLIENT_BUFFER)),
        }
    }

    pub fn with_telemetry_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        // A path without its leading slash would never match a request.
        self.telemetry_path = if path.starts_with('/') { path } else { format!("/{path}") };
        self
    }

    pub fn with_summary(mut self, summary: SummaryFn) -> Self {
        self.summary = Some(summary);
        self
    }

    pub fn with_web_config(mut self, web: WebConfig) -> Self {
        self.web = web;
        self
    }
}

type Body = Full<Bytes>;
/// A response body that can fail: a streamed `/metrics` body is cut (the connection aborted) rather than ended
/// cleanly when it cannot be finished, so no scraper takes a partial body for a whole one.
type WireBody = UnsyncBoxBody<Bytes, BodyError>;
type BodyError = Box<dyn std::error::Error + Send + Sync>;

fn wire(body: AnyBody) -> WireBody {
    body.map_err(|never| match never {}).boxed_unsync()
}

/// Serve `app` on `listener` until `shutdown` is cancelled, then drain connections and return.
pub async fn serve(listener: TcpListener, app: AppState, shutdown: CancellationToken) -> Result<(), ExpositionError> {
    let addr = listener.local_addr().map_err(ExpositionError::Listener)?;
    tracing::info!(address = %addr, telemetry_path = %app.telemetry_path, "serving metrics");
    let tls = app.web.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    if tls.is_some() {
        tracing::info!("TLS enabled by --web.config.file");
    }
    let app = Arc::new(app);
    let tracker = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let (stream, _peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning, and keep serving.
                    tracing::warn!(err = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(TokioIo::new(stream), app, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => serve_connection(TokioIo::new(s), app, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(err = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    tracing::info!("metrics server stopped");
    Ok(())
}

/// One HTTP/1.1 connection, plain or TLS, until it ends or shutdown drains it.
async fn serve_connection<I>(io: I, app: Arc<AppState>, shutdown: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let token = shutdown.clone();
    let svc = service_fn(move |req| handle(req, app.clone(), token.clone()));
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    // Upgrades: WebSocket clients of /api/v1/stream.
    let conn = builder.serve_connection(io, svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(err = %e, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            if tokio::time::timeout(DRAIN_TIMEOUT, conn).await.is_err() {
                tracing::debug!("connection still busy after the drain timeout; dropped");
            }
        }
    }
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn header(req: &Request<Incoming>, name: http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    req: Request<Incoming>,
    app: Arc<AppState>,
    shutdown: CancellationToken,
) -> Result<Response<WireBody>, Infallible> {
    let mut response = route(req, &app, shutdown).await;
    for (k, v) in &app.web.headers {
        response.headers_mut().insert(k.clone(), v.clone());
    }
    Ok(response)
}

async fn route(req: Request<Incoming>, app: &Arc<AppState>, shutdown: CancellationToken) -> Response<WireBody> {
    if let Some(auth) = &app.web.auth {
        let authorization = header(&req, http::header::AUTHORIZATION).map(str::to_owned);
        let auth = auth.clone();
        // bcrypt is deliberately slow: keep it off the async workers.
        let allowed = tokio::task::spawn_blocking(move || auth.allows(authorization.as_deref())).await.unwrap_or(false);
        if !allowed {
            let mut r = text_response(StatusCode::UNAUTHORIZED, "unauthorized\n");
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"genesys-cloud-exporter\""));
            return r.map(|b| wire(b.boxed_unsync()));
        }
    }
    if super::api::handles(req.uri().path()) {
        return super::api::serve(req, app.clone(), shutdown).await.map(wire);
    }
    if req.uri().path() == app.telemetry_path && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return metrics(&req, app.clone()).await;
    }
    route_whole(req, app).await.map(|b| wire(b.boxed_unsync()))
}

/// The routes with whole bodies.
async fn route_whole(req: Request<Incoming>, app: &Arc<AppState>) -> Response<Body> {
    let path = req.uri().path();
    let known = path == app.telemetry_path || path == "/" || path == "/healthz" || path == "/readyz";
    if !known {
        return text_response(StatusCode::NOT_FOUND, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == "/healthz" {
        text_response(StatusCode::OK, "ok\n")
    } else if path == "/readyz" {
        readyz(&app.readiness)
    } else {
        landing(app)
    }
}

fn readyz(readiness: &Readiness) -> Response<Body> {
    if !readiness.authenticated() {
        text_response(StatusCode::SERVICE_UNAVAILABLE, "not ready: not authenticated\n")
    } else if !readiness.seeded() {
        text_response(StatusCode::SERVICE_UNAVAILABLE, "not ready: first snapshot not loaded\n")
    } else {
        text_response(StatusCode::OK, "ready\n")
    }
}

/// One scrape's body, produced a piece at a time: the queue families, then the registry's text (encoded up
/// front, so an encoding error is a 500 before anything is sent), gzipped on the way when asked.
struct Producer {
    pieces: TextPieces,
    tail: Option<Vec<u8>>,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    done: bool,
}

impl Producer {
    fn new(app: &AppState, format: Format, gzip: bool) -> Result<Producer, ExpositionError> {
        let mut tail = Vec::new();
        encode_tail(&app.registry, format, &mut tail)?;
        // Fastest level: on a 30 MB scrape the default level costs several times the rendering for a few
        // percent of size.
        let gzip = gzip
            .then(|| flate2::write::GzEncoder::new(Vec::with_capacity(PIECE_BYTES / 4), flate2::Compression::fast()));
        Ok(Producer { pieces: app.store.text_pieces(format, now_ms()), tail: Some(tail), gzip, done: false })
    }

    /// The next non-empty piece of the body, `None` once it is complete.
    fn next(&mut self) -> Result<Option<Bytes>, ExpositionError> {
        while !self.done {
            let mut plain = Vec::with_capacity(PIECE_BYTES + PIECE_BYTES / 4);
            let more = self.pieces.next_into(&mut plain, PIECE_BYTES);
            if !more {
                plain.extend(self.tail.take().unwrap_or_default());
                self.done = true;
            }
            let out = match self.gzip.as_mut() {
                None => plain,
                Some(gz) => {
                    gz.write_all(&plain).map_err(ExpositionError::Compress)?;
                    if self.done {
                        match self.gzip.take() {
                            Some(gz) => gz.finish().map_err(ExpositionError::Compress)?,
                            None => Vec::new(),
                        }
                    } else {
                        std::mem::take(gz.get_mut())
                    }
                }
            };
            if !out.is_empty() {
                return Ok(Some(Bytes::from(out)));
            }
        }
        Ok(None)
    }
}

/// Run [`Producer::next`] on the blocking pool; the producer comes back unless it failed.
async fn next_piece(mut p: Producer) -> Result<(Producer, Option<Bytes>), ExpositionError> {
    tokio::task::spawn_blocking(move || p.next().map(|piece| (p, piece)))
        .await
        .map_err(ExpositionError::Render)
        .and_then(|r| r)
}

async fn metrics(req: &Request<Incoming>, app: Arc<AppState>) -> Response<WireBody> {
    let format = format_for(header(req, http::header::ACCEPT));
    let gzip = wants_gzip(header(req, http::header::ACCEPT_ENCODING));
    // The semaphore is never closed, so acquiring only fails if that changes; then render without a slot.
    let permit = app.render_slots.clone().acquire_owned().await.ok();
    let started = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || -> Result<(Producer, Option<Bytes>), ExpositionError> {
            let mut p = Producer::new(&app, format, gzip)?;
            let first = p.next()?;
            Ok((p, first))
        })
        .await
        .map_err(ExpositionError::Render)
        .and_then(|r| r)
    };
    let (producer, first) = match started {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(err = %e, kind = e.kind(), "could not produce /metrics");
            return text_response(StatusCode::INTERNAL_SERVER_ERROR, format!("error: {e}\n"))
                .map(|b| wire(b.boxed_unsync()));
        }
    };
    let first = first.unwrap_or_default();
    let body = if producer.done {
        // One piece holds it all (a small org): a whole body with its Content-Length, which hyper keeps for HEAD.
        drop(permit);
        Full::new(first).map_err(|never| match never {}).boxed_unsync()
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BodyError>>(PIECES_AHEAD);
        tokio::spawn(stream_pieces(producer, first, tx, permit));
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|piece| (piece.map(Frame::data), rx))
        });
        StreamBody::new(frames).boxed_unsync()
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(format)));
    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Feed a streamed body: the next piece is rendered while the client reads the previous ones. Stops when the
/// client goes away (HEAD, disconnect); cuts the body on an error or a client that reads nothing for
/// [`PIECE_TIMEOUT`].
async fn stream_pieces(
    mut producer: Producer,
    first: Bytes,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, BodyError>>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let mut piece = Some(first);
    while let Some(bytes) = piece.take() {
        match tokio::time::timeout(PIECE_TIMEOUT, tx.send(Ok(bytes))).await {
            Ok(Ok(())) => {}
            // The client is gone.
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!("a /metrics client read nothing for {PIECE_TIMEOUT:?}; dropped");
                let _ = tx.try_send(Err("client too slow".into()));
                return;
            }
        }
        match next_piece(producer).await {
            Ok((p, next)) => {
                producer = p;
                piece = next;
            }
            Err(e) => {
                tracing::error!(err = %e, kind = e.kind(), "could not produce /metrics");
                let _ = tx.send(Err(Box::new(e))).await;
                return;
            }
        }
    }
}

/// Escape text for HTML element content and attribute values.
pub(crate) fn html_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn landing(app: &AppState) -> Response<Body> {
    let s = app.store.summary(now_ms());
    let r = &app.readiness;
    let mut rows: Vec<(String, String)> = vec![
        ("ready".into(), if r.ready() { "yes".into() } else { "no".into() }),
        ("authenticated".into(), if r.authenticated() { "yes".into() } else { "no".into() }),
        ("first snapshot loaded".into(), if r.seeded() { "yes".into() } else { "no".into() }),
        ("queues".into(), s.queues.to_string()),
        ("stale queues".into(), s.stale.to_string()),
        ("queues withdrawn (older than max age)".into(), s.withdrawn.to_string()),
        ("queues by source".into(), format!("stream {}, poll {}, none {}", s.stream, s.poll, s.none)),
        ("notification channels in use".into(), s.channels.to_string()),
        ("store version".into(), s.version.to_string()),
    ];
    if let Some(extra) = &app.summary {
        rows.extend(extra());
    }
    let mut h = String::with_capacity(2048);
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Genesys Cloud Exporter</title>",
    );
    h.push_str("<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style>");
    h.push_str("</head><body>\n<h1>Genesys Cloud Exporter</h1>\n<p>genesys-cloud-exporter version ");
    html_escape(&mut h, app.version);
    h.push_str("</p>\n<ul>\n");
    for (href, what) in [
        (app.telemetry_path.as_str(), "Metrics"),
        ("/status", "Live status"),
        ("/api/v1/snapshot", "Snapshot (JSON)"),
        ("/healthz", "Health"),
        ("/readyz", "Readiness"),
    ] {
        h.push_str("<li><a href=\"");
        html_escape(&mut h, href);
        h.push_str("\">");
        h.push_str(what);
        h.push_str("</a></li>\n");
    }
    h.push_str("</ul>\n<h2>State</h2>\n<table>\n");
    for (k, v) in rows {
        h.push_str("<tr><th>");
        html_escape(&mut h, &k);
        h.push_str("</th><td>");
        html_escape(&mut h, &v);
        h.push_str("</td></tr>\n");
    }
    let _ = writeln!(h, "</table>\n</body></html>");
    let mut resp = text_response(StatusCode::OK, h);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QueueMeta;
    use std::io::Read as _;

    /// A body of many pieces arrives whole (chunked, no Content-Length), plain and gzipped, and equals the
    /// one-buffer encoding up to the values that move with the clock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_body_streams_in_pieces_and_arrives_whole() {
        let store = Store::default();
        let queue = |i: usize| QueueMeta {
            id: format!("q{i:05}"),
            name: format!("Queue {i:05}"),
            division_id: "d1".into(),
            division: "Home".into(),
        };
        store.set_queues((0..4000).map(queue).collect());
        let registry = prometheus::Registry::new();
        let app = AppState::new(store.clone(), registry.clone(), Arc::new(Readiness::default()), "test");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, shutdown.clone()));
        let want = super::super::encode(&store, &registry, Format::Prometheus, now_ms()).unwrap();
        assert!(want.len() > 4 * PIECE_BYTES, "{} bytes: several pieces", want.len());
        let steady = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with("genesys_queue_data_age") && !l.starts_with("process_"))
                .map(str::to_owned)
                .collect()
        };
        crate::genesys::client::install_crypto_provider();
        let http = reqwest::Client::new();
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("content-length").is_none(), "streamed, not one buffer");
        let plain = r.text().await.unwrap();
        assert_eq!(steady(&plain), steady(&String::from_utf8(want).unwrap()));
        let r = http.get(&url).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(r.headers().get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]));
        let zipped = r.bytes().await.unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&zipped[..]).read_to_string(&mut text).unwrap();
        assert_eq!(steady(&text), steady(&plain));
        // HEAD of a streamed body: headers only, and the connection stays usable.
        let r = http.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(steady(&http.get(&url).send().await.unwrap().text().await.unwrap()), steady(&plain));
        shutdown.cancel();
        server.await.unwrap().unwrap();
    }
}
