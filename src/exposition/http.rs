//! The exporter's HTTP server: `/metrics` (or `--web.telemetry-path`), `/`, `/healthz`, `/readyz`.
//!
//! hyper 1 over HTTP/1.1 with keep-alive. On cancel the listener closes, idle connections close at once and
//! in-flight requests finish (bounded by [`DRAIN_TIMEOUT`]) before [`serve`] returns. Rendering and compression
//! run on the blocking pool: a 300k-series scrape is tens of milliseconds of CPU that must not stall the
//! collector's tasks on the same runtime.

use super::api::AnyBody;
use super::conn::ConnControl;
use super::lifecycle::ReloadFn;
use super::limits::Limits;
use super::negotiate::{content_type, format_for, wants_gzip};
use super::webconfig::{LiveWebConfig, WebConfig};
use super::{encode_into, ExpositionError};
use crate::model::{now_ms, Readiness};
use crate::state::Store;
use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
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
/// How long a connection with no request in flight may keep the server up after shutdown (a client that is
/// half-way through sending a head is not worth waiting the drain timeout for).
const IDLE_GRACE: Duration = Duration::from_millis(500);
/// Output buffers kept for reuse. A fresh 30–70 MB buffer costs page faults on the order of the render itself, so
/// the last buffers stay allocated for a burst (two: an HA pair of Prometheus servers scrapes at once) — but only
/// for [`KEEP_WARM`]: at a 15 s scrape interval a kept buffer would be a body's worth of idle memory (as much as
/// the whole store at 10,000 queues) resident between every two scrapes.
const POOLED_BUFFERS: usize = 2;
/// How long returned buffers stay pooled without another scrape returning one.
const KEEP_WARM: Duration = Duration::from_secs(5);
/// Scrapes rendered at once; more wait their turn. Each holds a whole body (tens of MB at 300k series), so
/// unbounded concurrency would turn a burst of scrapers into an out-of-memory kill.
const MAX_CONCURRENT_RENDERS: usize = 4;
/// A TLS client that has not finished its handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// `web.metrics_enabled`: `false` answers the telemetry path with 404 (OTLP push is then the only output).
    pub metrics_enabled: bool,
    pub version: &'static str,
    /// More lines for the landing page's summary.
    pub summary: Option<SummaryFn>,
    /// `--web.config.file`: TLS, basic auth, extra headers; a reload swaps it for new connections and requests.
    pub web: LiveWebConfig,
    /// Connection, head-size and slow-client limits.
    pub limits: Limits,
    /// `POST /-/reload`; `None` (403) without `--web.enable-lifecycle`.
    pub reload: Option<ReloadFn>,
    render_slots: Arc<tokio::sync::Semaphore>,
    buffers: Arc<BufferPool>,
    /// `/api/v1/stream` clients.
    pub(crate) streams: Arc<super::stream::Hub>,
}

/// Warm output buffers (see [`POOLED_BUFFERS`]).
#[derive(Debug, Default)]
struct BufferPool {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Buffers returned so far: a release timer empties the pool only if none came back after it was set.
    returned: std::sync::atomic::AtomicU64,
}

impl BufferPool {
    fn take(self: &Arc<Self>) -> Pooled {
        let buf = self.free.lock().map(|mut f| f.pop()).unwrap_or_default().unwrap_or_default();
        Pooled { buf, pool: self.clone() }
    }
}

/// A buffer that goes back to its pool when the response body that owns it is dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        // A buffer far larger than what it last held (the org shrank) is released rather than kept.
        if buf.capacity() > 2 * buf.len().max(1 << 20) {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.pool.free.lock() {
            if free.len() < POOLED_BUFFERS {
                free.push(buf);
            }
        }
        let n = self.pool.returned.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        // Outside a runtime (unit tests) the buffers simply stay.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pool = Arc::downgrade(&self.pool);
            rt.spawn(async move {
                tokio::time::sleep(KEEP_WARM).await;
                let Some(pool) = pool.upgrade() else { return };
                if pool.returned.load(std::sync::atomic::Ordering::Acquire) == n {
                    // Dropped outside the lock: freeing tens of MB (munmap) must not hold up a scrape taking one.
                    let idle = pool.free.lock().map(|mut f| std::mem::take(&mut *f)).unwrap_or_default();
                    drop(idle);
                }
            });
        }
    }
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
            metrics_enabled: true,
            version,
            summary: None,
            web: LiveWebConfig::default(),
            limits: Limits::default(),
            reload: None,
            render_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_RENDERS)),
            buffers: Arc::new(BufferPool::default()),
            streams: Arc::new(super::stream::Hub::new(super::stream::MAX_STREAM_CLIENTS, super::stream::CLIENT_BUFFER)),
        }
    }

    pub fn with_telemetry_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        // A path without its leading slash would never match a request.
        self.telemetry_path = if path.starts_with('/') { path } else { format!("/{path}") };
        self
    }

    pub fn with_metrics_enabled(mut self, enabled: bool) -> Self {
        self.metrics_enabled = enabled;
        self
    }

    pub fn with_summary(mut self, summary: SummaryFn) -> Self {
        self.summary = Some(summary);
        self
    }

    pub fn with_web_config(mut self, web: WebConfig) -> Self {
        self.web = LiveWebConfig::new(web);
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Enable `POST /-/reload` (`--web.enable-lifecycle`).
    pub fn with_reload(mut self, reload: ReloadFn) -> Self {
        self.reload = Some(reload);
        self
    }
}

type Body = Full<Bytes>;

/// Serve `app` on `listener` until `shutdown` is cancelled, then drain connections and return.
pub async fn serve(listener: TcpListener, app: AppState, shutdown: CancellationToken) -> Result<(), ExpositionError> {
    let addr = listener.local_addr().map_err(ExpositionError::Listener)?;
    tracing::info!(address = %addr, telemetry_path = %app.telemetry_path, "serving metrics");
    if app.web.get().tls.is_some() {
        tracing::info!("TLS enabled by --web.config.file");
    }
    let app = Arc::new(app);
    let tracker = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(app.limits.max_connections));
    let rejecting = Arc::new(tokio::sync::Semaphore::new(super::limits::MAX_REJECTING));
    loop {
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
        // Read per connection, so a reloaded certificate serves the next handshake.
        let tls = app.web.get().tls.map(tokio_rustls::TlsAcceptor::from);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the cap: a plain-HTTP client gets a 503 at once; a TLS one (a 503 would cost a handshake) and
            // anything past the few being turned away are closed.
            if let (None, Ok(permit)) = (&tls, rejecting.clone().try_acquire_owned()) {
                tokio::spawn(async move {
                    let _permit = permit;
                    super::limits::turn_away(stream).await;
                });
            }
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let (stream, ctl) = super::conn::Controlled::new(stream);
            match tls {
                None => serve_connection(TokioIo::new(stream), app, shutdown, ctl).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => serve_connection(TokioIo::new(s), app, shutdown, ctl).await,
                    Ok(Err(e)) => tracing::debug!(err = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    // WebSocket stream clients live past their HTTP connection: let them take their close frames.
    app.streams.wait_closed().await;
    tracing::info!("metrics server stopped");
    Ok(())
}

/// One HTTP/1.1 connection, plain or TLS, until it ends or shutdown drains it.
async fn serve_connection<I>(io: I, app: Arc<AppState>, shutdown: CancellationToken, ctl: Arc<ConnControl>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let token = shutdown.clone();
    let handle_ctl = ctl.clone();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let busy = in_flight.clone();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(app.limits.header_read_timeout)
        // hyper refuses buffers under 8 KiB.
        .max_buf_size(app.limits.max_head_bytes.max(8192))
        .max_headers(app.limits.max_headers);
    let svc = service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(handle_ctl.clone());
        handle(req, app.clone(), token.clone(), busy.clone())
    });
    // Upgrades: WebSocket clients of /api/v1/stream.
    let conn = Box::pin(builder.serve_connection(io, svc).with_upgrades());
    if let Some((conn, to)) = drive(conn, &ctl, &shutdown, &in_flight, true).await {
        // A stream client: the rest of the connection runs on the stream clients' runtime; this task stays (idle)
        // so that the server's drain on shutdown still waits for it.
        let moved = to.spawn(async move {
            drive(conn, &ctl, &shutdown, &in_flight, false).await;
        });
        if let Err(e) = moved.await {
            tracing::debug!(err = %e, "a stream connection's task ended abnormally");
        }
    }
}

/// A served connection that can be shut down gracefully.
trait Graceful: std::future::Future<Output = hyper::Result<()>> {
    fn graceful(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> Graceful for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Run `conn` until it ends or shutdown drains it; when `movable`, hand it back with the runtime a stream handler
/// asked for instead (see [`ConnControl::move_to`]).
async fn drive<C: Graceful>(
    mut conn: std::pin::Pin<Box<C>>,
    ctl: &ConnControl,
    shutdown: &CancellationToken,
    in_flight: &std::sync::atomic::AtomicUsize,
    movable: bool,
) -> Option<(std::pin::Pin<Box<C>>, tokio::runtime::Handle)> {
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(err = %e, "connection ended with an error");
            }
        }
        // A stream client that stopped reading, past its write deadline.
        _ = ctl.killed() => {}
        to = ctl.moved(), if movable => return Some((conn, to)),
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful();
            let drain = if in_flight.load(std::sync::atomic::Ordering::Acquire) > 0 { DRAIN_TIMEOUT } else { IDLE_GRACE };
            if tokio::time::timeout(drain, conn).await.is_err() {
                tracing::debug!("connection still busy after the drain timeout; dropped");
            }
        }
    }
    None
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
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
) -> Result<Response<AnyBody>, Infallible> {
    // Counted from the head until the body is sent (the guard lives in the body), for the drain on shutdown.
    let guard = InFlight::new(in_flight);
    let mut response = route(req, &app, shutdown).await;
    for (k, v) in &app.web.get().headers {
        response.headers_mut().insert(k.clone(), v.clone());
    }
    Ok(response.map(|inner| Guarded { inner, _guard: guard }.boxed_unsync()))
}

/// A response body that holds its request's [`InFlight`] until it is sent; sizes pass through, so
/// `Content-Length` stays.
struct Guarded {
    inner: AnyBody,
    _guard: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// One request in flight on a connection, until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn new(n: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        InFlight(n)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

async fn route(req: Request<Incoming>, app: &Arc<AppState>, shutdown: CancellationToken) -> Response<AnyBody> {
    if let Some(auth) = app.web.get().auth {
        let authorization = header(&req, http::header::AUTHORIZATION).map(str::to_owned);
        let auth = auth.clone();
        // bcrypt is deliberately slow: keep it off the async workers.
        let allowed = tokio::task::spawn_blocking(move || auth.allows(authorization.as_deref())).await.unwrap_or(false);
        if !allowed {
            let mut r = text_response(StatusCode::UNAUTHORIZED, "unauthorized\n");
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"genesys-cloud-exporter\""));
            return r.map(BodyExt::boxed_unsync);
        }
    }
    if req.uri().path() == super::lifecycle::RELOAD_PATH {
        return super::lifecycle::serve(req, app.reload.clone()).await;
    }
    if super::api::handles(req.uri().path()) {
        return super::api::serve(req, app.clone(), shutdown).await;
    }
    route_whole(req, app).await.map(BodyExt::boxed_unsync)
}

/// The routes with whole bodies.
async fn route_whole(req: Request<Incoming>, app: &Arc<AppState>) -> Response<Body> {
    let path = req.uri().path();
    let is_metrics = app.metrics_enabled && path == app.telemetry_path;
    let known = is_metrics || path == "/" || path == "/healthz" || path == "/readyz";
    if !known {
        return text_response(StatusCode::NOT_FOUND, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    // hyper drops the body of a HEAD response itself and keeps its Content-Length.
    if is_metrics {
        metrics(&req, app.clone()).await
    } else if path == "/healthz" {
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

async fn metrics(req: &Request<Incoming>, app: Arc<AppState>) -> Response<Body> {
    let format = format_for(header(req, http::header::ACCEPT));
    let gzip = wants_gzip(header(req, http::header::ACCEPT_ENCODING));
    // The semaphore is never closed, so acquiring only fails if that changes; then render without a slot.
    let permit = app.render_slots.clone().acquire_owned().await.ok();
    let result = tokio::task::spawn_blocking(move || -> Result<Bytes, ExpositionError> {
        let _permit = permit;
        let mut body = app.buffers.take();
        encode_into(&app.store, &app.registry, format, now_ms(), &mut body.buf)?;
        if !gzip {
            // The buffer returns to the pool once hyper has sent and dropped the body.
            return Ok(Bytes::from_owner(body));
        }
        // Fastest level: on a 30 MB scrape the default level costs several times the rendering for a few
        // percent of size.
        let mut enc =
            flate2::write::GzEncoder::new(Vec::with_capacity(body.buf.len() / 8), flate2::Compression::fast());
        enc.write_all(&body.buf).map_err(ExpositionError::Compress)?;
        enc.finish().map(Bytes::from).map_err(ExpositionError::Compress)
    })
    .await
    .map_err(ExpositionError::Render)
    .and_then(|r| r);
    match result {
        Ok(body) => {
            let mut r = Response::new(Full::new(body));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(format)));
            h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
            if gzip {
                h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r
        }
        Err(e) => {
            tracing::error!(err = %e, kind = e.kind(), "could not produce /metrics");
            text_response(StatusCode::INTERNAL_SERVER_ERROR, format!("error: {e}\n"))
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
    ]
    .into_iter()
    .filter(|(href, _)| app.metrics_enabled || *href != app.telemetry_path)
    {
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

    #[test]
    fn buffers_return_to_the_pool_warm_and_bounded() {
        let pool = Arc::new(BufferPool::default());
        let mut a = pool.take();
        a.buf.extend_from_slice(&[1u8; 4096]);
        let cap = a.buf.capacity();
        drop(Bytes::from_owner(a));
        let b = pool.take();
        assert!(b.buf.is_empty() && b.buf.capacity() == cap, "the same allocation comes back, cleared");
        drop(b);
        // Never more than POOLED_BUFFERS kept.
        let held: Vec<Pooled> = (0..POOLED_BUFFERS + 2).map(|_| pool.take()).collect();
        drop(held);
        assert_eq!(pool.free.lock().map(|f| f.len()).unwrap_or(0), POOLED_BUFFERS);
        // A buffer much larger than what it held is released.
        let pool = Arc::new(BufferPool::default());
        let mut big = pool.take();
        big.buf.reserve(8 << 20);
        big.buf.push(1);
        drop(big);
        assert_eq!(pool.free.lock().map(|f| f.len()).unwrap_or(1), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_buffers_are_released_after_the_keep_warm_time() {
        let pool = Arc::new(BufferPool::default());
        let (mut a, mut b) = (pool.take(), pool.take());
        a.buf.push(1);
        b.buf.push(1);
        drop(a);
        tokio::time::sleep(KEEP_WARM / 2).await;
        drop(b);
        let pooled = |p: &Arc<BufferPool>| p.free.lock().map(|f| f.len()).unwrap_or(0);
        // The first timer finds a later return and keeps the pool warm for a burst.
        tokio::time::sleep(KEEP_WARM / 2 + Duration::from_millis(100)).await;
        assert_eq!(pooled(&pool), 2, "a scrape within the keep-warm time finds warm buffers");
        tokio::time::sleep(KEEP_WARM).await;
        assert_eq!(pooled(&pool), 0, "idle buffers are freed between scrapes");
    }
}
