//! `GET /api/v1/stream`: the store's changes pushed as Server-Sent Events or WebSocket text messages.
//!
//! Both carry the same JSON messages: a `snapshot`, then one `delta` per store version (RFC 7386 merge patches of
//! the changed queues, ids of removed ones), `keepalive`s, and a final `error` with the reason when the server
//! drops the client. Event ids are store versions; `Last-Event-ID` resumes from the change log, or gets a fresh
//! snapshot when the log no longer reaches back.
//!
//! Fan-out: the store's writer only appends to its change log and wakes one task, the [`Hub`]. The hub builds
//! each change's message once and `try_send`s it into every client's bounded queue. A client whose queue is full,
//! or that took nothing from a non-empty queue for [`WRITE_TIMEOUT`], is dropped with a reason; nobody ever waits
//! for a client, so a slow one cannot slow the collector or the others.
//!
//! For "queue full" to mean "client not reading", the socket must push back early: a stream client's send buffer
//! is shrunk to [`SEND_BUFFER`] (kernel autotuning would otherwise absorb megabytes). A dropped client gets a final
//! `error` message (SSE) or close frame (WebSocket) with the reason; if it cannot take even that within
//! [`CLOSE_TIMEOUT`], the connection is cut.
//!
//! Where it runs: the hub and every stream connection (from its handler on) run on a runtime of their own, one
//! thread at a lower CPU priority ([`NICE`]), started with the first client. Hundreds of clients mean a hundred
//! thousand socket writes a second; on the server's worker threads they would queue the `/metrics` handlers and
//! the collector behind them. There, the store's writer pays one wake-up of that thread, and when the machine is
//! short of CPU it is the stream clients that wait, not the scrapes.

use super::api::{error, snapshot_json, AnyBody, Filter, Query};
use super::conn::ConnControl;
use super::http::AppState;
use crate::model::now_ms;
use crate::state::snapshot::{merge_patch, Change, QueueDoc};
use crate::state::Store;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

/// Stream clients served at once; more get 503.
pub const MAX_STREAM_CLIENTS: usize = 1000;
/// Messages queued per client before it counts as too slow and is dropped.
pub const CLIENT_BUFFER: usize = 256;
/// A keep-alive goes out when nothing else did for this long.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a dropped client gets to take its final message (SSE `error`, WebSocket close) before the
/// connection is cut.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// A client that took nothing from its (non-empty) queue for this long is dropped, however short the queue.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the store's wake-up the hub waits this long before fanning out, so that a burst of changes (one
/// notification often carries several queues; a re-seed carries all) leaves as one write per client instead of one
/// per change. Bounds each client's writes to a few hundred a second however fast the store changes.
pub const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// `SO_SNDBUF` of stream connections (the kernel doubles it): enough for a wallboard's deltas at any realistic
/// round-trip time, small enough that a client that stops reading fills its queue within seconds. The initial
/// snapshot of a large org then takes a few round trips more.
pub const SEND_BUFFER: usize = 64 * 1024;
/// How much nicer (in `nice` steps) the stream clients' thread runs than the process: under CPU contention the
/// collector and `/metrics` get about ten times its share.
pub const NICE: i32 = 10;

/// One message, serialised once (in both framings) and shared by every client it goes to.
#[derive(Debug)]
pub struct Event {
    /// The store version (SSE `id:`); `None` for keep-alives and errors.
    pub id: Option<u64>,
    /// `snapshot`, `delta`, `keepalive` or `error` (SSE `event:`, and the JSON's `type`).
    pub kind: &'static str,
    /// The JSON message, as a WebSocket text message carries it.
    pub json: Utf8Bytes,
    /// The same as one Server-Sent Event (`id:`, `event:` and `data:` lines).
    pub sse: Bytes,
}

fn event(id: Option<u64>, kind: &'static str, mut body: Map<String, Value>) -> Arc<Event> {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(kind));
    m.append(&mut body);
    let json = Value::Object(m).to_string();
    let sse = Bytes::from(sse_frame(id, kind, &json));
    Arc::new(Event { id, kind, json: json.into(), sse })
}

fn keepalive_event(store: &Store) -> Arc<Event> {
    let v = store.live().version();
    let mut m = Map::new();
    m.insert("version".into(), Value::from(v));
    m.insert("time_ms".into(), Value::from(now_ms()));
    event(None, "keepalive", m)
}

fn error_event(reason: &str) -> Arc<Event> {
    let mut m = Map::new();
    m.insert("reason".into(), Value::from(reason));
    event(None, "error", m)
}

fn snapshot_event(version: u64, docs: &[Arc<QueueDoc>], filter: &Filter, max_age_ms: i64) -> Arc<Event> {
    let Value::Object(m) = snapshot_json(version, None, docs, &[], true, filter, now_ms(), max_age_ms) else {
        unreachable!("snapshot_json returns an object")
    };
    event(Some(version), "snapshot", m)
}

/// The three shapes one change can take for a client, built at most once each.
#[derive(Default)]
struct Forms {
    patch: Option<Arc<Event>>,
    added: Option<Arc<Event>>,
    removed: Option<Arc<Event>>,
}

fn delta(version: u64, id: &str, patch: Option<Value>) -> Arc<Event> {
    let mut queues = Map::new();
    let mut removed = Vec::new();
    match patch {
        Some(p) => {
            queues.insert(id.to_owned(), p);
        }
        None => removed.push(Value::from(id)),
    }
    let mut m = Map::new();
    m.insert("version".into(), Value::from(version));
    m.insert("queues".into(), Value::Object(queues));
    m.insert("removed".into(), Value::Array(removed));
    event(Some(version), "delta", m)
}

impl Forms {
    /// The message `change` is for a client with `filter`; `None` when it does not concern the client.
    fn for_client(&mut self, c: &Change, filter: &Filter) -> Option<Arc<Event>> {
        let new = c.new.as_ref().filter(|d| filter.matches(d));
        let old = c.old.as_ref().filter(|d| filter.matches(d));
        match (new, old) {
            (Some(n), Some(o)) => Some(
                self.patch
                    .get_or_insert_with(|| {
                        delta(
                            c.version,
                            &c.id,
                            Some(merge_patch(o.doc(), n.doc()).unwrap_or(Value::Object(Map::new()))),
                        )
                    })
                    .clone(),
            ),
            (Some(n), None) => {
                Some(self.added.get_or_insert_with(|| delta(c.version, &c.id, Some(n.doc().clone()))).clone())
            }
            (None, Some(_)) => Some(self.removed.get_or_insert_with(|| delta(c.version, &c.id, None)).clone()),
            (None, None) => None,
        }
    }
}

/// Why a client was dropped, set once by the hub.
#[derive(Debug, Default)]
struct Dropped {
    reason: OnceLock<String>,
    notify: Notify,
}

impl Dropped {
    fn drop_with(&self, reason: String) {
        let _ = self.reason.set(reason);
        self.notify.notify_waiters();
    }

    fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// Resolves once a reason is set.
    async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.reason.get().is_some() {
                return;
            }
            n.await;
        }
    }
}

struct Client {
    /// Changes up to this version are in what the client got first.
    from: u64,
    filter: Filter,
    tx: mpsc::Sender<Arc<Event>>,
    dropped: Arc<Dropped>,
    /// Messages the client's task took from the queue (to the socket).
    taken: Arc<AtomicU64>,
    /// `taken` as the hub last saw it, and since when the client made no progress with a non-empty queue.
    seen: u64,
    since: Instant,
}

/// The fan-out of store changes to stream clients (one per server).
pub struct Hub {
    clients: Mutex<Vec<Client>>,
    active: AtomicUsize,
    dropped: AtomicU64,
    max_clients: usize,
    buffer: usize,
    started: std::sync::atomic::AtomicBool,
    /// WebSocket clients' tasks (they outlive their HTTP connection), so shutdown can wait for their close frames.
    sockets: tokio_util::task::TaskTracker,
    lane: Lane,
}

/// Where the hub and its clients' connections run.
enum Lane {
    /// The runtime of whoever subscribes (unit tests with a paused clock).
    #[cfg(test)]
    Ambient,
    /// A thread of its own at a lower priority, started with the first client and stopped with the hub.
    Own { handle: OnceLock<Handle>, stop: CancellationToken },
}

impl Drop for Hub {
    #[cfg_attr(not(test), allow(irrefutable_let_patterns))]
    fn drop(&mut self) {
        if let Lane::Own { stop, .. } = &self.lane {
            stop.cancel();
        }
    }
}

/// Start the stream clients' thread: a single-threaded runtime (the hub's fan-out and the clients' writes take
/// turns, so a burst of changes leaves in one write per client), at [`NICE`] steps below the process.
fn start_lane(stop: CancellationToken) -> std::io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    // The runtime is built and dropped on its own thread: dropping it on a runtime's worker would panic.
    std::thread::Builder::new().name("live-api".into()).spawn(move || {
        lower_priority();
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                let _ = tx.send(Ok(rt.handle().clone()));
                rt.block_on(stop.cancelled());
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    })?;
    rx.recv().map_err(|_| std::io::Error::other("the live API thread ended at start"))?
}

/// Renice the calling thread by [`NICE`] (on Linux the nice value is per thread).
#[cfg(target_os = "linux")]
fn lower_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let tid = rustix::thread::gettid();
    let now = getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = setpriority_process(Some(tid), (now + NICE).min(19)) {
        tracing::debug!(err = %e, "could not lower the live API thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("active", &self.active()).field("max_clients", &self.max_clients).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a new client gets before the live changes.
enum Initial {
    Snapshot(u64, Vec<Arc<QueueDoc>>),
    Replay(Vec<Change>),
}

/// A registered client's end.
pub struct Subscription {
    rx: mpsc::Receiver<Arc<Event>>,
    taken: Arc<AtomicU64>,
    initial: Option<Initial>,
    filter: Filter,
    dropped: Arc<Dropped>,
    _active: Active,
}

struct Active(Arc<Hub>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Subscription {
    /// The next queued message (`None` once the hub let go of the client).
    async fn recv(&mut self) -> Option<Arc<Event>> {
        let m = self.rx.recv().await;
        self.taken.fetch_add(1, Ordering::Relaxed);
        m
    }

    /// The next message if one is queued.
    fn try_recv(&mut self) -> Option<Arc<Event>> {
        let m = self.rx.try_recv().ok()?;
        self.taken.fetch_add(1, Ordering::Relaxed);
        Some(m)
    }

    /// The first messages: a snapshot, or the deltas since `Last-Event-ID`.
    fn initial_events(&mut self, max_age_ms: i64) -> Vec<Arc<Event>> {
        match self.initial.take() {
            Some(Initial::Snapshot(v, docs)) => vec![snapshot_event(v, &docs, &self.filter, max_age_ms)],
            Some(Initial::Replay(changes)) => {
                changes.iter().filter_map(|c| Forms::default().for_client(c, &self.filter)).collect()
            }
            None => Vec::new(),
        }
    }
}

impl Hub {
    /// A hub on its own thread (see [`start_lane`]).
    pub fn new(max_clients: usize, buffer: usize) -> Self {
        Self::on(Lane::Own { handle: OnceLock::new(), stop: CancellationToken::new() }, max_clients, buffer)
    }

    fn on(lane: Lane, max_clients: usize, buffer: usize) -> Self {
        Hub {
            clients: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            max_clients,
            buffer: buffer.max(1),
            started: false.into(),
            sockets: tokio_util::task::TaskTracker::new(),
            lane,
        }
    }

    /// The runtime the hub and its clients run on (called on a runtime: it is the fallback if no thread starts).
    fn runtime(&self) -> Handle {
        match &self.lane {
            #[cfg(test)]
            Lane::Ambient => Handle::current(),
            Lane::Own { handle, stop } => handle
                .get_or_init(|| {
                    start_lane(stop.clone()).unwrap_or_else(|e| {
                        tracing::warn!(err = %e, "no thread of their own for stream clients; they share the server's");
                        Handle::current()
                    })
                })
                .clone(),
        }
    }

    /// Clients connected now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Clients dropped for being too slow (or because the server fell behind) since start.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Register a client; `None` when [`Hub::new`]'s `max_clients` are already connected.
    fn subscribe(self: &Arc<Self>, store: &Store, filter: Filter, last_id: Option<u64>) -> Option<Subscription> {
        let mut clients = lock(&self.clients);
        if self.active() >= self.max_clients {
            return None;
        }
        let live = store.live();
        if !self.started.swap(true, Ordering::AcqRel) {
            // Started under the clients lock with the version as of now: every client registered from here on
            // starts at or after it, so the hub's cursor never skips a change a client needs.
            self.runtime().spawn(run(Arc::downgrade(self), store.clone(), live.version()));
        }
        let resume = last_id.and_then(|l| live.changes_since(l).filter(|(v, _)| l <= *v));
        let (from, initial) = match resume {
            Some((v, changes)) => (v, Initial::Replay(changes)),
            None => {
                let (v, docs) = live.docs();
                (v, Initial::Snapshot(v, docs))
            }
        };
        let (tx, rx) = mpsc::channel(self.buffer);
        let dropped = Arc::new(Dropped::default());
        let taken = Arc::new(AtomicU64::new(0));
        let since = Instant::now();
        clients.push(Client {
            from,
            filter: filter.clone(),
            tx,
            dropped: dropped.clone(),
            taken: taken.clone(),
            seen: 0,
            since,
        });
        self.active.fetch_add(1, Ordering::AcqRel);
        Some(Subscription { rx, taken, initial: Some(initial), filter, dropped, _active: Active(self.clone()) })
    }

    fn dispatch(&self, changes: &[Change]) {
        let mut clients = lock(&self.clients);
        clients.retain(|c| !c.tx.is_closed());
        let now = Instant::now();
        let mut dropped = 0;
        for change in changes {
            let mut forms = Forms::default();
            let buffer = self.buffer;
            clients.retain_mut(|c| {
                if change.version <= c.from {
                    return true;
                }
                let Some(ev) = forms.for_client(change, &c.filter) else { return true };
                let taken = c.taken.load(Ordering::Relaxed);
                if taken != c.seen || c.tx.capacity() == c.tx.max_capacity() {
                    (c.seen, c.since) = (taken, now);
                } else if now.duration_since(c.since) >= WRITE_TIMEOUT {
                    c.dropped.drop_with(format!(
                        "client too slow: nothing written to it for {} s; reconnect (with Last-Event-ID) to resume",
                        WRITE_TIMEOUT.as_secs()
                    ));
                    dropped += 1;
                    return false;
                }
                match c.tx.try_send(ev) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        c.dropped.drop_with(format!(
                            "client too slow: {buffer} messages queued unread; reconnect (with Last-Event-ID) to resume"
                        ));
                        dropped += 1;
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// After shutdown: wait until every WebSocket client has had its close frame (each is bounded by a timeout).
    pub(crate) async fn wait_closed(&self) {
        self.sockets.close();
        let _ = tokio::time::timeout(CLOSE_TIMEOUT + Duration::from_secs(1), self.sockets.wait()).await;
    }

    fn drop_all(&self, reason: &str) {
        let mut clients = lock(&self.clients);
        self.dropped.fetch_add(clients.len() as u64, Ordering::Relaxed);
        for c in clients.drain(..) {
            c.dropped.drop_with(reason.to_owned());
        }
    }
}

/// The hub's task: wait for the store, fan out what changed.
async fn run(hub: Weak<Hub>, store: Store, mut cursor: u64) {
    let live = store.live();
    loop {
        live.notified().await;
        tokio::time::sleep(BATCH_WINDOW).await;
        let Some(hub) = hub.upgrade() else { return };
        match live.changes_since(cursor) {
            Some((v, changes)) => {
                hub.dispatch(&changes);
                cursor = v;
            }
            None => {
                // More changes than the log holds arrived since the last wake-up: the clients cannot be brought
                // up to date with deltas.
                hub.drop_all("the server fell behind the store's change log; reconnect for a fresh snapshot");
                cursor = live.version();
            }
        }
    }
}

fn sse_frame(id: Option<u64>, kind: &str, json: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(json.len() + 48);
    if let Some(id) = id {
        b.extend_from_slice(b"id: ");
        b.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        b.push(b'\n');
    }
    b.extend_from_slice(b"event: ");
    b.extend_from_slice(kind.as_bytes());
    b.extend_from_slice(b"\ndata: ");
    b.extend_from_slice(json.as_bytes());
    b.extend_from_slice(b"\n\n");
    b
}

/// Messages already queued go out in one body frame up to this size: one write for a burst instead of one per
/// change, which is most of the fan-out's cost with hundreds of clients.
const COALESCE_BYTES: usize = 64 * 1024;

/// Serve `/api/v1/stream`: WebSocket when the request asks to upgrade, Server-Sent Events otherwise. Runs on the
/// stream clients' runtime, where the connection follows once it carries a stream.
pub async fn serve(
    req: Request<Incoming>,
    app: Arc<AppState>,
    query: Query,
    shutdown: CancellationToken,
) -> Response<AnyBody> {
    match app.streams.runtime().spawn(serve_here(req, app.clone(), query, shutdown)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(err = %e, "a stream request's handler failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "stream handler failed")
        }
    }
}

async fn serve_here(
    mut req: Request<Incoming>,
    app: Arc<AppState>,
    query: Query,
    shutdown: CancellationToken,
) -> Response<AnyBody> {
    if let Some(bad) = &query.bad {
        return error(StatusCode::BAD_REQUEST, bad);
    }
    let h = req.headers();
    let websocket = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")));
    let ws_key = h.get("sec-websocket-key").map(|k| k.as_bytes().to_vec());
    let last_id =
        h.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).or(query.since);
    if websocket && ws_key.is_none() {
        return error(StatusCode::BAD_REQUEST, "WebSocket upgrade without Sec-WebSocket-Key");
    }
    let Some(mut sub) = app.streams.subscribe(&app.store, query.filter.clone(), last_id) else {
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "too many stream clients");
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    };
    let store = app.store.clone();
    let ctl = req.extensions().get::<Arc<ConnControl>>().cloned();
    if let Some(ctl) = &ctl {
        ctl.set_send_buffer(SEND_BUFFER);
        // Only a stream's connection moves: it never serves another request (SSE closes after the body, WebSocket
        // upgrades), whereas one turned away with 503 may go on to scrape.
        ctl.move_to(Handle::current());
    }
    if let Some(key) = ws_key {
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
        let upgrade = hyper::upgrade::on(&mut req);
        app.streams.sockets.spawn(async move {
            match upgrade.await {
                Ok(io) => {
                    let ws =
                        tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
                    run_ws(ws, sub, store, shutdown).await;
                }
                Err(e) => tracing::debug!(err = %e, "WebSocket upgrade failed"),
            }
        });
        let mut r = Response::new(super::api::full(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert("sec-websocket-accept", v);
        }
        return r;
    }
    let initial: VecDeque<Arc<Event>> = sub.initial_events(store.live().max_age_ms()).into();
    let finished = CancellationToken::new();
    if let Some(ctl) = ctl {
        tokio::spawn(cut_when_stuck(sub.dropped.clone(), finished.clone(), ctl));
    }
    let state = SseState {
        initial,
        sub,
        store,
        shutdown: Box::pin(shutdown.cancelled_owned()),
        keepalive: Keepalive::new(),
        done: false,
        _finished: finished.drop_guard(),
    };
    let body = StreamBody::new(futures_util::stream::unfold(state, sse_next));
    let mut r = Response::new(BodyExt::boxed_unsync(body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // The connection is this stream's alone, so cutting it (see `cut_when_stuck`) never hits another request.
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Once the client is dropped, give it [`CLOSE_TIMEOUT`] to take the rest and the `error` message, then cut the
/// connection (hyper would otherwise wait forever on a client that does not read).
async fn cut_when_stuck(dropped: Arc<Dropped>, finished: CancellationToken, ctl: Arc<ConnControl>) {
    tokio::select! {
        _ = finished.cancelled() => return,
        _ = dropped.wait() => {}
    }
    tokio::time::sleep(CLOSE_TIMEOUT).await;
    ctl.kill();
}

/// When a keep-alive is due: [`KEEPALIVE`] after the last message. The timer is only re-armed when it fires early,
/// not at every message (hundreds of clients times every change would be that many timer-wheel updates).
struct Keepalive {
    tick: tokio::time::Interval,
    sent: Instant,
}

impl Keepalive {
    fn new() -> Self {
        let now = Instant::now();
        let mut tick = tokio::time::interval_at(now + KEEPALIVE, KEEPALIVE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Keepalive { tick, sent: now }
    }

    /// A message went out now.
    fn sent(&mut self) {
        self.sent = Instant::now();
    }

    /// Resolves when nothing went out for [`KEEPALIVE`] (and counts the keep-alive as sent). Cancel-safe.
    async fn due(&mut self) {
        loop {
            self.tick.tick().await;
            let due = self.sent + KEEPALIVE;
            if Instant::now() >= due {
                self.sent();
                return;
            }
            self.tick.reset_at(due);
        }
    }
}

struct SseState {
    initial: VecDeque<Arc<Event>>,
    sub: Subscription,
    store: Store,
    /// Kept across messages: a new `cancelled()` per message would register with the token each time.
    shutdown: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    keepalive: Keepalive,
    done: bool,
    /// Cancels when the body ends (or the client went away) before any drop.
    _finished: tokio_util::sync::DropGuard,
}

type SseItem = Result<Frame<Bytes>, Infallible>;

async fn sse_next(mut st: SseState) -> Option<(SseItem, SseState)> {
    if st.done {
        return None;
    }
    let frame = |e: &Event| Ok(Frame::data(e.sse.clone()));
    if let Some(e) = st.initial.pop_front() {
        st.keepalive.sent();
        return Some((frame(&e), st));
    }
    let ev = tokio::select! {
        biased;
        _ = &mut st.shutdown => {
            st.done = true;
            error_event("server shutting down")
        }
        m = st.sub.recv() => match (m, st.sub.dropped.reason()) {
            (Some(e), None) => {
                st.keepalive.sent();
                // Alone (the usual case): the shared bytes as they are.
                let Some(next) = st.sub.try_recv() else { return Some((frame(&e), st)) };
                let mut b = Vec::with_capacity(COALESCE_BYTES.min(4 * e.sse.len()));
                b.extend_from_slice(&e.sse);
                let mut next = Some(next);
                while let Some(e) = next.take() {
                    if let Some(reason) = st.sub.dropped.reason() {
                        st.done = true;
                        b.extend_from_slice(&error_event(reason).sse);
                        break;
                    }
                    b.extend_from_slice(&e.sse);
                    if b.len() < COALESCE_BYTES {
                        next = st.sub.try_recv();
                    }
                }
                return Some((Ok(Frame::data(Bytes::from(b))), st));
            }
            (_, reason) => {
                // Dropped: what is still queued would leave the client inconsistent anyway.
                st.done = true;
                error_event(reason.unwrap_or("stream closed"))
            }
        },
        _ = st.keepalive.due() => keepalive_event(&st.store),
    };
    Some((frame(&ev), st))
}

fn text(e: &Event) -> Message {
    Message::Text(e.json.clone())
}

/// Messages already queued that go out in one WebSocket flush.
const WS_BATCH: usize = 64;

async fn run_ws<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    mut sub: Subscription,
    store: Store,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    let dropped = sub.dropped.clone();
    let mut keepalive = Keepalive::new();
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);
    let mut queue: VecDeque<Arc<Event>> = sub.initial_events(store.live().max_age_ms()).into();
    let (code, reason) = 'outer: loop {
        if !queue.is_empty() {
            // Everything queued goes out in one flush (one write for a burst, as for SSE).
            let send = async {
                for e in queue.drain(..) {
                    sink.feed(text(&e)).await?;
                }
                sink.flush().await
            };
            tokio::select! {
                r = send => if r.is_err() { return },
                _ = dropped.wait() => break 'outer (CloseCode::Policy, dropped.reason().unwrap_or_default().to_owned()),
                _ = &mut stopping => break 'outer (CloseCode::Away, "server shutting down".to_owned()),
            }
        }
        tokio::select! {
            biased;
            _ = &mut stopping => break (CloseCode::Away, "server shutting down".to_owned()),
            m = sub.recv() => match (m, dropped.reason()) {
                (Some(e), None) => {
                    keepalive.sent();
                    queue.push_back(e);
                    while queue.len() < WS_BATCH {
                        let Some(e) = sub.try_recv() else { break };
                        queue.push_back(e);
                    }
                }
                (_, r) => break (CloseCode::Policy, r.unwrap_or("stream closed").to_owned()),
            },
            _ = keepalive.due() => queue.push_back(keepalive_event(&store)),
            m = incoming.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    };
    // A close reason is at most 123 bytes.
    let mut reason = reason;
    while reason.len() > 123 {
        reason.pop();
    }
    let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(close).await;
        // Wait for the client's close (or its end) so the frame is not lost to a reset.
        while let Some(Ok(m)) = incoming.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

impl AppState {
    /// Stream limits: concurrent clients (503 beyond) and messages queued per client before it is dropped.
    pub fn with_stream_limits(mut self, max_clients: usize, buffer: usize) -> Self {
        self.streams = Arc::new(Hub::new(max_clients, buffer));
        self
    }

    /// Stream clients connected now.
    pub fn stream_clients(&self) -> usize {
        self.streams.active()
    }

    /// Stream clients dropped for being too slow since start.
    pub fn stream_clients_dropped(&self) -> u64 {
        self.streams.dropped_total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QueueMeta;

    fn meta(id: &str) -> QueueMeta {
        QueueMeta { id: id.into(), name: id.into(), division_id: "d".into(), division: "D".into() }
    }

    /// Let the hub's task fan out what the store recorded.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_write_timeout_drops_a_client_that_takes_nothing_but_not_one_that_was_merely_idle() {
        let store = Store::default();
        store.set_queues(vec![meta("q1"), meta("q2")]);
        let hub = Arc::new(Hub::on(Lane::Ambient, 10, 256));
        let mut reader = hub.subscribe(&store, Filter::default(), None).unwrap();
        let stuck = hub.subscribe(&store, Filter::default(), None).unwrap();
        store.set_stale("q1", false);
        settle().await;
        assert!(reader.recv().await.is_some());
        // Nothing happens for longer than the write timeout: the reader's queue was empty all along.
        tokio::time::sleep(WRITE_TIMEOUT + Duration::from_secs(1)).await;
        store.set_stale("q2", false);
        settle().await;
        assert_eq!(reader.dropped.reason(), None, "an idle stream is not a stuck client");
        assert!(reader.recv().await.is_some());
        let why = stuck.dropped.reason().expect("the client that took nothing for the timeout is dropped");
        assert!(why.contains("nothing written to it for 10 s"), "{why}");
        assert_eq!(hub.dropped_total(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_keepalive_goes_out_after_keepalive_of_silence_counted_from_the_last_message() {
        let mut k = Keepalive::new();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        k.sent();
        k.due().await;
        let at = t0.elapsed();
        assert!(at >= Duration::from_secs(25) && at < Duration::from_millis(25_100), "{at:?}");
        k.due().await;
        let at = t0.elapsed();
        assert!(at >= Duration::from_secs(40) && at < Duration::from_millis(40_100), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_sse_stream_gets_keepalives_and_shutdown_ends_it_with_a_reason() {
        let store = Store::default();
        store.set_queues(vec![meta("q1")]);
        let hub = Arc::new(Hub::on(Lane::Ambient, 10, 16));
        let mut sub = hub.subscribe(&store, Filter::default(), None).unwrap();
        let shutdown = CancellationToken::new();
        let st = SseState {
            initial: sub.initial_events(store.live().max_age_ms()).into(),
            sub,
            store: store.clone(),
            shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            keepalive: Keepalive::new(),
            done: false,
            _finished: CancellationToken::new().drop_guard(),
        };
        let text = |item: SseItem| {
            let frame = item.unwrap().into_data().unwrap();
            String::from_utf8(frame.to_vec()).unwrap()
        };
        let t0 = Instant::now();
        let (first, st) = sse_next(st).await.unwrap();
        assert!(text(first).starts_with("id: "), "the snapshot first");
        let (second, st) = sse_next(st).await.unwrap();
        assert!(text(second).starts_with("event: keepalive\n"), "then, on an idle stream, a keep-alive");
        assert!(t0.elapsed() >= KEEPALIVE);
        store.set_stale("q1", false);
        let (third, st) = sse_next(st).await.unwrap();
        assert!(text(third).contains("event: delta\n"));
        shutdown.cancel();
        let (last, st) = sse_next(st).await.unwrap();
        let last = text(last);
        assert!(last.starts_with("event: error\n") && last.contains("server shutting down"), "{last}");
        assert!(sse_next(st).await.is_none(), "and the body ends");
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_client_with_a_reason() {
        let store = Store::default();
        store.set_queues(vec![meta("q1")]);
        let hub = Arc::new(Hub::on(Lane::Ambient, 10, 4));
        let sub = hub.subscribe(&store, Filter::default(), None).unwrap();
        for i in 0..6 {
            store.set_stale("q1", i % 2 == 0);
            settle().await;
        }
        let why = sub.dropped.reason().expect("dropped");
        assert!(why.contains("4 messages queued unread"), "{why}");
    }
}
