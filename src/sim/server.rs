//! The simulator's server: HTTP (hyper 1) and WebSocket on one port, the model task, tokens, channels,
//! subscriptions, rate limits and fault state. Wire shapes follow `shared/genesys-api.md` §1, 5, 5.1, 6, 7, 8.

use super::fault::Fault;
use super::model::{Model, TopicMessage, Truth};
use super::socket::{self, Out, SocketCtl, SocketHandle};
use super::{SimClock, SimConfig, SimError};
use crate::genesys::models::{self, ChannelTopic, ErrorBody, OAuthError, TokenResponse};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) type Body = Full<Bytes>;

/// Genesys's `request.bytes.max`.
const MAX_REQUEST_BYTES: usize = 512_000;
/// The permission an observations topic needs (reported in `missingPermissions`).
const OBSERVATION_PERMISSION: &str = "analytics:queueObservation:view";
/// Predicates an observations query may carry (what clients report Genesys enforcing).
const MAX_PREDICATES: usize = 200;
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Starts simulators.
pub struct Simulator;

/// A running simulator. Dropping it stops it too (without waiting).
pub struct SimHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Simulator {
    /// Serve `cfg` on `listener` (HTTP API, login, admin and WebSocket on the one port) and run the model task.
    pub async fn start(cfg: SimConfig, listener: TcpListener) -> Result<SimHandle, SimError> {
        if !(cfg.speed.is_finite() && cfg.speed > 0.0) {
            return Err(SimError::Config(format!("speed must be > 0, got {}", cfg.speed)));
        }
        for (name, d) in
            [("tick", cfg.tick), ("topic_period", cfg.topic_period), ("heartbeat_interval", cfg.heartbeat_interval)]
        {
            if d.is_zero() {
                return Err(SimError::Config(format!("{name} must be > 0")));
            }
        }
        if cfg.max_channels == 0 || cfg.socket_queue == 0 || cfg.max_page_size == 0 {
            return Err(SimError::Config("max_channels, socket_queue and max_page_size must be > 0".into()));
        }
        let addr = listener.local_addr()?;
        let clock = SimClock::new(cfg.start_ms, cfg.speed);
        let model = Model::new(cfg.model.clone(), clock.now_ms());
        let state = State { forbidden: cfg.forbidden_queue_ids.iter().cloned().collect(), ..Default::default() };
        let shared = Arc::new(Shared {
            clock,
            model: Mutex::new(model),
            state: Mutex::new(state),
            flags: Mutex::new(Flags::default()),
            stats: Counters::default(),
            shutdown: CancellationToken::new(),
            rt: tokio::runtime::Handle::current(),
            tasks: TaskTracker::new(),
            addr,
            cfg,
        });
        shared.tasks.spawn(accept_loop(shared.clone(), listener));
        shared.tasks.spawn(model_task(shared.clone()));
        if let Some(s) = shared.cfg.scenario.clone() {
            let sh = shared.clone();
            shared.tasks.spawn(async move {
                let start = tokio::time::Instant::now();
                for step in s.steps {
                    let at = start + Duration::from_secs_f64(step.at);
                    tokio::select! {
                        _ = sh.shutdown.cancelled() => return,
                        _ = tokio::time::sleep_until(at) => {}
                    }
                    tracing::info!(at = step.at, kind = step.fault.kind(), "scenario step");
                    if let Err(e) = sh.apply(step.fault) {
                        tracing::warn!(err = %e, "scenario step had no effect");
                    }
                }
            });
        }
        tracing::info!(address = %addr, "simulator listening");
        Ok(SimHandle { addr, shared })
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: the API and the login base URL.
    pub fn base_url(&self) -> String {
        base_url(self.addr)
    }

    /// The model's true state now (what `GET /sim/truth` answers).
    pub fn truth(&self) -> Truth {
        self.shared.model().truth()
    }

    /// Apply a fault (what `POST /sim/faults` does). Faults naming something that does not exist are logged.
    pub fn inject(&self, fault: Fault) {
        if let Err(e) = self.shared.apply(fault) {
            tracing::warn!(err = %e, "fault had no effect");
        }
    }

    /// Every access token issued so far (tests look for them where they must never appear: logs, metrics).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.st().tokens.keys().cloned().collect()
    }

    /// Counters (what `GET /sim/stats` answers).
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Stop accepting, close every socket, stop the model task.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tasks.wait()).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn base_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        if addr.is_ipv4() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        }
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

// ---------------------------------------------------------------------------------------------------------------
// Shared state

pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) clock: SimClock,
    model: Mutex<Model>,
    state: Mutex<State>,
    /// What sockets consult per frame (kept apart from `state` so sockets never wait for the router).
    flags: Mutex<Flags>,
    pub(crate) stats: Counters,
    pub(crate) shutdown: CancellationToken,
    rt: tokio::runtime::Handle,
    pub(crate) tasks: TaskTracker,
    addr: SocketAddr,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, TokenInfo>,
    channels: Vec<ChannelState>,
    rate: HashMap<String, RateWindow>,
    throttled: HashMap<String, Throttled>,
    forbidden: HashSet<String>,
    storm_until: Option<Instant>,
    /// (responses left, status)
    error_burst: Option<(u32, u16)>,
    latency: Option<(Duration, Option<Instant>)>,
    /// Queues whose observations answers are held (`hold_answers`), and the answers held: the queues each names
    /// and what sends it.
    hold_queues: HashSet<String>,
    held: Vec<(HashSet<String>, Arc<tokio::sync::Notify>)>,
    next_conn: u64,
    channel_seq: u64,
    fault_counts: BTreeMap<String, u64>,
}

#[derive(Default)]
pub(crate) struct Flags {
    stall_all: Option<Instant>,
    stall: HashMap<String, Instant>,
    heartbeat_loss_until: Option<Instant>,
    silenced: HashSet<String>,
}

impl Flags {
    pub(crate) fn stalled(&self, channel: &str, now: Instant) -> bool {
        self.stall_all.is_some_and(|t| now < t) || self.stall.get(channel).is_some_and(|t| now < *t)
    }
    pub(crate) fn heartbeat_lost(&self, now: Instant) -> bool {
        self.heartbeat_loss_until.is_some_and(|t| now < t)
    }
}

struct TokenInfo {
    expires_at: Instant,
    revoked: bool,
}

struct RateWindow {
    start: Instant,
    count: u32,
}

/// A 429 answered to a token: when it was sent and the `Retry-After` it named.
struct Throttled {
    at: Instant,
    not_before: Instant,
}

/// Requests already on the wire when a 429 is answered are not the client's fault: only a request that arrives this
/// long after the 429 and before its `Retry-After` counts as early.
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(500);

struct ChannelState {
    id: String,
    token: String,
    seq: u64,
    last_used: Instant,
    expires_at: Instant,
    expires_wall_ms: i64,
    topics: Vec<String>,
    topic_set: HashSet<String>,
    socket: Option<SocketHandle>,
}

impl ChannelState {
    fn wire(&self, host: &str) -> models::Channel {
        models::Channel {
            id: self.id.clone(),
            connect_uri: format!("ws://{host}/channels/{}", self.id),
            expires: Some(models::format_time_ms(self.expires_wall_ms)),
        }
    }
}

/// Counters of `GET /sim/stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) api_requests: AtomicU64,
    pub(crate) responses_429: AtomicU64,
    pub(crate) responses_4xx: AtomicU64,
    pub(crate) responses_5xx: AtomicU64,
    pub(crate) tokens_issued: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) heartbeats_sent: AtomicU64,
    pub(crate) pongs_sent: AtomicU64,
    pub(crate) frames_dropped_stalled: AtomicU64,
    pub(crate) messages_silenced: AtomicU64,
    pub(crate) sockets_opened: AtomicU64,
    pub(crate) sockets_open: AtomicU64,
    pub(crate) sockets_closed_slow: AtomicU64,
    pub(crate) sockets_closed_by_client: AtomicU64,
    pub(crate) sockets_dropped_by_client: AtomicU64,
    pub(crate) channels_created: AtomicU64,
    pub(crate) channels_evicted: AtomicU64,
    pub(crate) early_after_429: AtomicU64,
}

/// `GET /sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct SimStats {
    pub requests: u64,
    pub api_requests: u64,
    pub responses_429: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    pub tokens_issued: u64,
    /// Topic and system messages written to sockets.
    pub messages_sent: u64,
    pub heartbeats_sent: u64,
    pub pongs_sent: u64,
    pub frames_dropped_stalled: u64,
    pub messages_silenced: u64,
    pub sockets_opened: u64,
    pub sockets_open: u64,
    pub sockets_closed_slow: u64,
    /// Sockets the client closed cleanly: it sent a close frame.
    pub sockets_closed_by_client: u64,
    /// Sockets whose client went away without a close frame (TCP reset or EOF).
    pub sockets_dropped_by_client: u64,
    pub channels: u64,
    pub channels_created: u64,
    pub channels_evicted: u64,
    /// Requests a token sent after being answered 429 and before the `Retry-After` it was given (past an in-flight
    /// grace of 500 ms): a well-behaved client keeps this at 0.
    pub early_after_429: u64,
    /// Every channel: id, whether a socket is connected, and the queues its topics name.
    pub channel_list: Vec<ChannelStats>,
    pub model_now_ms: i64,
    pub paused: bool,
    /// Fault kind → times applied.
    pub faults: BTreeMap<String, u64>,
    /// Observations answers held by `hold_answers`, oldest first: the queues each names (sorted).
    #[serde(default)]
    pub answers_held: Vec<Vec<String>>,
}

/// One channel in `GET /sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ChannelStats {
    pub id: String,
    pub connected: bool,
    pub topics: usize,
    pub queue_ids: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn new_uuid() -> String {
    let mut b = [0u8; 16];
    b.iter_mut().for_each(|x| *x = fastrand::u8(..));
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn random_token(len: usize) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    (0..len).map(|_| A[fastrand::usize(..A.len())] as char).collect()
}

fn random_lower(len: usize) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| A[fastrand::usize(..A.len())] as char).collect()
}

/// A `v2.system.*` message as a complete frame.
pub(crate) fn system_frame(topic: &str, body: models::SystemMessage) -> String {
    let env = models::NotificationEvent {
        topic_name: topic.to_owned(),
        version: Some("2".to_owned()),
        event_body: body,
        metadata: Some(models::Metadata { correlation_id: Some(new_uuid()) }),
    };
    serde_json::to_string(&env).unwrap_or_default()
}

/// `v2.system.<kind>.<channel>`: the system message a channel's socket gets before it is closed for `kind`.
fn channel_notice(client_id: &str, channel_id: &str, kind: &str, reason: &str, message: &str) -> String {
    let body = models::SystemMessage {
        channel_id: Some(channel_id.to_owned()),
        system_topic_type: Some(kind.to_owned()),
        correlation_id: Some(new_uuid()),
        oauth_client_id: Some(client_id.to_owned()),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        ..Default::default()
    };
    system_frame(&format!("v2.system.{kind}.{channel_id}"), body)
}

impl Shared {
    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }
    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
    pub(crate) fn flags(&self) -> MutexGuard<'_, Flags> {
        lock(&self.flags)
    }

    fn stats(&self) -> SimStats {
        let c = &self.stats;
        let (channels, faults, channel_list, answers_held) = {
            let st = self.st();
            let list = st
                .channels
                .iter()
                .map(|c| ChannelStats {
                    id: c.id.clone(),
                    connected: c.socket.is_some(),
                    topics: c.topics.len(),
                    queue_ids: c
                        .topics
                        .iter()
                        .filter_map(|t| models::queue_id_of_topic(t).map(str::to_owned))
                        .collect(),
                })
                .collect();
            let held = st
                .held
                .iter()
                .map(|(qs, _)| {
                    let mut v: Vec<String> = qs.iter().cloned().collect();
                    v.sort();
                    v
                })
                .collect();
            (st.channels.len() as u64, st.fault_counts.clone(), list, held)
        };
        SimStats {
            requests: c.requests.load(Relaxed),
            api_requests: c.api_requests.load(Relaxed),
            responses_429: c.responses_429.load(Relaxed),
            responses_4xx: c.responses_4xx.load(Relaxed),
            responses_5xx: c.responses_5xx.load(Relaxed),
            tokens_issued: c.tokens_issued.load(Relaxed),
            messages_sent: c.messages_sent.load(Relaxed),
            heartbeats_sent: c.heartbeats_sent.load(Relaxed),
            pongs_sent: c.pongs_sent.load(Relaxed),
            frames_dropped_stalled: c.frames_dropped_stalled.load(Relaxed),
            messages_silenced: c.messages_silenced.load(Relaxed),
            sockets_opened: c.sockets_opened.load(Relaxed),
            sockets_open: c.sockets_open.load(Relaxed),
            sockets_closed_slow: c.sockets_closed_slow.load(Relaxed),
            sockets_closed_by_client: c.sockets_closed_by_client.load(Relaxed),
            sockets_dropped_by_client: c.sockets_dropped_by_client.load(Relaxed),
            channels,
            channels_created: c.channels_created.load(Relaxed),
            channels_evicted: c.channels_evicted.load(Relaxed),
            early_after_429: c.early_after_429.load(Relaxed),
            channel_list,
            model_now_ms: self.model().now_ms(),
            paused: self.clock.is_paused(),
            faults,
            answers_held,
        }
    }

    /// Real-time lifetime of channels and tokens.
    fn channel_lifetime(&self) -> Duration {
        self.clock.to_real(self.cfg.channel_lifetime)
    }

    /// Called by a socket task when it ends.
    pub(crate) fn socket_ended(&self, channel: &str, conn_id: u64) {
        let mut st = self.st();
        if let Some(c) = st.channels.iter_mut().find(|c| c.id == channel) {
            if c.socket.as_ref().is_some_and(|s| s.conn_id == conn_id) {
                c.socket = None;
                c.last_used = Instant::now();
            }
        }
    }

    // -----------------------------------------------------------------------------------------------------------
    // Faults

    /// Apply one fault; `Ok` carries details for the admin API (e.g. the new queue's id).
    pub(crate) fn apply(&self, fault: Fault) -> Result<Value, String> {
        let kind = fault.kind();
        *self.st().fault_counts.entry(kind.to_owned()).or_default() += 1;
        let now = Instant::now();
        let secs = |s: f64| Duration::from_secs_f64(if s.is_finite() { s.max(0.0) } else { 0.0 });
        let not_found = |what: &str, id: &str| Err(format!("{kind}: no {what} {id}"));
        let mut detail = json!({});
        match fault {
            Fault::DropSockets { channel } => {
                let n = self.close_sockets(channel.as_deref(), |s| s.ctl.drop_now());
                detail = json!({ "sockets": n });
            }
            Fault::StallSockets { channel, seconds } => {
                let until = now + secs(seconds);
                let mut f = self.flags();
                match channel {
                    Some(c) => {
                        f.stall.insert(c, until);
                    }
                    None => f.stall_all = Some(until),
                }
            }
            Fault::HeartbeatLoss { seconds } => self.flags().heartbeat_loss_until = Some(now + secs(seconds)),
            Fault::SocketClosing { grace_seconds } => {
                let grace = grace_seconds.map(secs).unwrap_or(self.cfg.socket_closing_grace);
                let mut ctls = Vec::new();
                {
                    let st = self.st();
                    for c in &st.channels {
                        if let Some(s) = &c.socket {
                            let body = models::SystemMessage {
                                channel_id: Some(c.id.clone()),
                                correlation_id: Some(new_uuid()),
                                oauth_client_id: Some(self.cfg.client_id.clone()),
                                message: Some(format!(
                                    "The WebSocket will be closed in {} seconds for maintenance; reconnect to the same connectUri",
                                    grace.as_secs_f64()
                                )),
                                ..Default::default()
                            };
                            let _ = s.tx.try_send(Out::Text(system_frame(models::SOCKET_CLOSING_TOPIC, body).into()));
                            ctls.push(s.ctl.clone());
                        }
                    }
                }
                detail = json!({ "sockets": ctls.len() });
                let shutdown = self.shutdown.clone();
                self.rt.spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(grace) => {
                            for c in ctls { c.close_now(1001, "socket closing for maintenance"); }
                        }
                    }
                });
            }
            Fault::ExpireChannel { channel } => {
                let mut st = self.st();
                let before = st.channels.len();
                st.channels.retain(|c| {
                    let hit = channel.as_deref().is_none_or(|id| id == c.id);
                    if hit {
                        if let Some(s) = &c.socket {
                            s.ctl.close_now(1000, "channel expired");
                        }
                    }
                    !hit
                });
                let n = before - st.channels.len();
                if n == 0 && channel.is_some() {
                    return not_found("channel", channel.as_deref().unwrap_or(""));
                }
                detail = json!({ "channels": n });
            }
            Fault::RevokeTokens => {
                let mut st = self.st();
                st.tokens.values_mut().for_each(|t| t.revoked = true);
                for c in &st.channels {
                    if let Some(s) = &c.socket {
                        let notice = channel_notice(
                            &self.cfg.client_id,
                            &c.id,
                            "token_revoked",
                            "user_tokens_revoked",
                            "The access token of this channel was revoked",
                        );
                        let _ = s.tx.try_send(Out::Text(notice.into()));
                        let _ = s.tx.try_send(Out::Close { code: 1000, reason: "token revoked" });
                    }
                }
                detail = json!({ "tokens": st.tokens.len() });
            }
            Fault::ErrorBurst { count, status } => {
                if !(400..=599).contains(&status) {
                    return Err(format!("{kind}: status {status} is not an HTTP error status"));
                }
                self.st().error_burst = (count > 0).then_some((count, status));
            }
            Fault::RateLimitStorm { seconds } => self.st().storm_until = Some(now + secs(seconds)),
            Fault::HoldAnswers { queue_id } => {
                self.st().hold_queues.insert(queue_id);
            }
            Fault::ReleaseAnswers { queue_id } => {
                let mut st = self.st();
                match &queue_id {
                    Some(q) => st.hold_queues.remove(q),
                    None => std::mem::take(&mut st.hold_queues).is_empty(),
                };
                let (go, keep) = std::mem::take(&mut st.held)
                    .into_iter()
                    .partition(|(qs, _)| queue_id.as_ref().is_none_or(|q| qs.contains(q)));
                st.held = keep;
                let go: Vec<(HashSet<String>, Arc<tokio::sync::Notify>)> = go;
                detail = json!({ "released": go.len() });
                for (_, n) in go {
                    n.notify_one();
                }
            }
            Fault::Latency { ms, seconds } => {
                self.st().latency = (ms > 0).then(|| (Duration::from_millis(ms), seconds.map(|s| now + secs(s))));
            }
            Fault::MalformedFrame { channel } => {
                let n = self
                    .send_frame(channel.as_deref(), r#"{"topicName":"v2.analytics.queues.#garbled", "eventBody": {"#);
                detail = json!({ "sockets": n });
            }
            Fault::OversizedFrame { bytes, channel } => {
                let head = r#"{"topicName":"channel.metadata","eventBody":{"message":""#;
                let tail = r#""}}"#;
                let pad = bytes.saturating_sub(head.len() + tail.len());
                let mut s = String::with_capacity(bytes.max(head.len() + tail.len()));
                s.push_str(head);
                s.extend(std::iter::repeat_n('x', pad));
                s.push_str(tail);
                let n = self.send_frame(channel.as_deref(), &s);
                detail = json!({ "sockets": n, "bytes": s.len() });
            }
            Fault::AddQueue { name, division } => {
                let id = self.model().add_queue(&name, division.as_deref());
                detail = json!({ "queue_id": id });
            }
            Fault::RemoveQueue { id } => {
                if !self.model().remove_queue(&id) {
                    return not_found("queue", &id);
                }
            }
            Fault::RenameQueue { id, name } => {
                if !self.model().rename_queue(&id, &name) {
                    return not_found("queue", &id);
                }
            }
            Fault::AddPresenceDefinition { label, system_presence } => {
                let id = self.model().add_presence_definition(&label, &system_presence);
                detail = json!({ "presence_definition_id": id });
            }
            Fault::ForbidTopic { queue_id } => {
                self.st().forbidden.insert(queue_id);
            }
            Fault::SilenceTopic { queue_id, on } => {
                let mut f = self.flags();
                if on {
                    f.silenced.insert(queue_id);
                } else {
                    f.silenced.remove(&queue_id);
                }
            }
            Fault::Arrive { queue_id, media_type, count } => {
                if !self.model().arrive(&queue_id, &media_type, count) {
                    return not_found("queue", &queue_id);
                }
            }
            Fault::AbandonWaiting { queue_id } => {
                let Some(n) = self.model().abandon_waiting(&queue_id) else { return not_found("queue", &queue_id) };
                detail = json!({ "abandoned": n });
            }
            Fault::SetArrivals { per_hour } => {
                if !(per_hour.is_finite() && per_hour >= 0.0) {
                    return Err(format!("{kind}: per_hour must be >= 0"));
                }
                self.model().set_arrivals_per_hour(per_hour);
            }
            Fault::Advance { seconds } => {
                if !(seconds.is_finite() && seconds >= 0.0) {
                    return Err(format!("{kind}: seconds must be >= 0"));
                }
                self.clock.skip(Duration::from_secs_f64(seconds));
                let now = self.clock.now_ms();
                self.model().advance_to(now);
                detail = json!({ "model_now_ms": now });
            }
            Fault::Pause => self.clock.pause(),
            Fault::Resume => self.clock.resume(),
            Fault::Restart => {
                let mut st = self.st();
                for c in st.channels.drain(..) {
                    if let Some(s) = c.socket {
                        s.ctl.drop_now();
                    }
                }
                st.tokens.clear();
                st.rate.clear();
                st.storm_until = None;
                st.error_burst = None;
                drop(st);
                let mut f = self.flags();
                f.stall_all = None;
                f.stall.clear();
                f.heartbeat_loss_until = None;
            }
        }
        Ok(json!({ "applied": kind, "detail": detail }))
    }

    /// Close the sockets of `channel` (or all) with `how`; returns how many.
    fn close_sockets(&self, channel: Option<&str>, how: impl Fn(&SocketHandle)) -> usize {
        let st = self.st();
        let mut n = 0;
        for c in st.channels.iter().filter(|c| channel.is_none_or(|id| id == c.id)) {
            if let Some(s) = &c.socket {
                how(s);
                n += 1;
            }
        }
        n
    }

    fn send_frame(&self, channel: Option<&str>, text: &str) -> usize {
        let frame: Utf8Bytes = text.into();
        self.close_sockets(channel, |s| {
            let _ = s.tx.try_send(Out::Text(frame.clone()));
        })
    }

    // -----------------------------------------------------------------------------------------------------------
    // Model task

    /// Send topic messages to every socket whose channel subscribes to their topic. Never waits: a full socket
    /// queue closes that socket.
    fn route(&self, msgs: &mut Vec<TopicMessage>) {
        if msgs.is_empty() {
            return;
        }
        let silenced = {
            let f = self.flags();
            (!f.silenced.is_empty()).then(|| f.silenced.clone())
        };
        let st = self.st();
        let live: Vec<&ChannelState> =
            st.channels.iter().filter(|c| c.socket.is_some() && !c.topic_set.is_empty()).collect();
        for m in msgs.drain(..) {
            if silenced.as_ref().is_some_and(|s| s.contains(&m.queue_id)) {
                self.stats.messages_silenced.fetch_add(1, Relaxed);
                continue;
            }
            // Serialised once by the model, shared by every subscriber (no copy per socket).
            let mut frame: Option<Utf8Bytes> = None;
            let mut json = Some(m.json);
            for c in live.iter().filter(|c| c.topic_set.contains(&m.topic)) {
                let Some(s) = &c.socket else { continue };
                let f = frame.get_or_insert_with(|| json.take().unwrap_or_default().into());
                if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = s.tx.try_send(Out::Text(f.clone())) {
                    if !s.ctl.is_closing() {
                        self.stats.sockets_closed_slow.fetch_add(1, Relaxed);
                        tracing::warn!(channel = %c.id, "socket cannot keep up; closing it");
                    }
                    s.ctl.close_now(1008, "client too slow");
                }
            }
        }
    }

    /// Expired channels close and vanish; ended faults clear.
    fn housekeeping(&self) {
        let now = Instant::now();
        let mut st = self.st();
        st.channels.retain(|c| {
            let alive = c.expires_at > now;
            if !alive {
                if let Some(s) = &c.socket {
                    s.ctl.close_now(1000, "channel expired");
                }
            }
            alive
        });
        if st.storm_until.is_some_and(|t| t <= now) {
            st.storm_until = None;
        }
        if st.latency.as_ref().is_some_and(|(_, until)| until.is_some_and(|u| u <= now)) {
            st.latency = None;
        }
        st.tokens.retain(|_, t| t.expires_at + Duration::from_secs(3600) > now);
        drop(st);
        let mut f = self.flags();
        f.stall.retain(|_, t| *t > now);
        if f.stall_all.is_some_and(|t| t <= now) {
            f.stall_all = None;
        }
    }
}

async fn model_task(sh: Arc<Shared>) {
    let mut tick = tokio::time::interval(sh.cfg.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let gap_ms = sh.cfg.topic_period.as_millis().min(i64::MAX as u128) as i64;
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            _ = sh.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Every tick, each queue whose last message is at least a topic period old sends its earliest change.
        let clock_ms = started.elapsed().as_millis().min(i64::MAX as u128) as i64;
        {
            let mut m = sh.model();
            m.advance_to(sh.clock.now_ms());
            m.take_messages_spaced(clock_ms, gap_ms, &mut buf);
        }
        if !buf.is_empty() {
            sh.route(&mut buf);
        }
        sh.housekeeping();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

async fn accept_loop(sh: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, _) = tokio::select! {
            _ = sh.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(err = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let sh2 = sh.clone();
        sh.tasks.spawn(async move {
            let svc_sh = sh2.clone();
            let svc = hyper::service::service_fn(move |req| handle(svc_sh.clone(), req));
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = sh2.shutdown.cancelled() => {}
            }
        });
    }
}

/// Everything a handler needs from the request.
struct Req {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: http::HeaderMap,
    body: Bytes,
    corr: String,
}

impl Req {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn host(&self, sh: &Shared) -> String {
        self.headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| base_url(sh.addr).trim_start_matches("http://").to_owned())
    }
}

async fn handle(sh: Arc<Shared>, mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    sh.stats.requests.fetch_add(1, Relaxed);
    let corr = new_uuid();
    let latency = {
        let st = sh.st();
        st.latency.and_then(|(d, until)| until.is_none_or(|u| Instant::now() < u).then_some(d))
    };
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    let path = req.uri().path().to_owned();
    let mut resp = if let Some(id) = path.strip_prefix("/channels/") {
        upgrade(&sh, id, &mut req, &corr)
    } else {
        let method = req.method().clone();
        let query = parse_query(req.uri().query().unwrap_or(""));
        let headers = std::mem::take(req.headers_mut());
        let too_big = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_REQUEST_BYTES);
        let body = if too_big {
            Bytes::new()
        } else {
            match http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BYTES).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    return Ok(finish(
                        &sh,
                        error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request.entity.too.large",
                            &format!("The request is over the size limit. Maximum bytes: {MAX_REQUEST_BYTES}"),
                            &corr,
                        ),
                        &corr,
                    ))
                }
            }
        };
        let r = Req { method, path, query, headers, body, corr: corr.clone() };
        if too_big {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.entity.too.large",
                &format!("The request is over the size limit. Maximum bytes: {MAX_REQUEST_BYTES}"),
                &corr,
            )
        } else if r.path == "/oauth/token" {
            oauth_token(&sh, &r)
        } else if r.path.starts_with("/sim/") {
            admin(&sh, &r)
        } else if r.path.starts_with("/api/v2/") {
            sh.stats.api_requests.fetch_add(1, Relaxed);
            api(&sh, &r)
        } else {
            not_found(&r.path, &corr)
        }
    };
    resp = finish(&sh, resp, &corr);
    if let Some(Held(release)) = resp.extensions_mut().remove::<Held>() {
        tokio::select! {
            _ = release.notified() => {}
            _ = sh.shutdown.cancelled() => {}
        }
    }
    Ok(resp)
}

/// Marks an answer computed now but sent only at its `release_answers`.
#[derive(Clone)]
struct Held(Arc<tokio::sync::Notify>);

/// `hold_answers`: an answer naming a held queue waits (already computed) for its release.
fn hold_if_asked(sh: &Shared, resp: &models::QueueObservationQueryResponse, out: &mut Response<Body>) {
    let mut st = sh.st();
    if st.hold_queues.is_empty() {
        return;
    }
    let named: HashSet<String> = resp.results.iter().filter_map(|r| r.group.get("queueId").cloned()).collect();
    if named.iter().any(|q| st.hold_queues.contains(q)) {
        let release = Arc::new(tokio::sync::Notify::new());
        st.held.push((named, release.clone()));
        out.extensions_mut().insert(Held(release));
    }
}

fn finish(sh: &Shared, mut resp: Response<Body>, corr: &str) -> Response<Body> {
    let s = resp.status().as_u16();
    match s {
        429 => {
            sh.stats.responses_429.fetch_add(1, Relaxed);
            sh.stats.responses_4xx.fetch_add(1, Relaxed);
        }
        400..=499 => {
            sh.stats.responses_4xx.fetch_add(1, Relaxed);
        }
        500..=599 => {
            sh.stats.responses_5xx.fetch_add(1, Relaxed);
        }
        _ => {}
    }
    if let Ok(v) = HeaderValue::from_str(corr) {
        resp.headers_mut().insert("inin-correlation-id", v);
    }
    resp
}

/// JSON as Genesys writes it: integral numbers without `.0` (the models hold counts as f64).
fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let bytes = crate::sim::model::genesys_json(body).into_bytes();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A Genesys `ErrorBody` with `contextId` = the correlation id.
fn error(status: StatusCode, code: &str, message: &str, corr: &str) -> Response<Body> {
    let body = ErrorBody {
        message: message.to_owned(),
        code: code.to_owned(),
        status: status.as_u16(),
        context_id: Some(corr.to_owned()),
        ..Default::default()
    };
    json_response(status, &body)
}

fn not_found(path: &str, corr: &str) -> Response<Body> {
    error(StatusCode::NOT_FOUND, "resource.not.found", &format!("Resource not found: {path}"), corr)
}

fn bad_request(message: &str, corr: &str) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, "bad.request", message, corr)
}

fn too_many(retry_after: u64, corr: &str) -> Response<Body> {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too.many.requests.retry.after",
        &format!("Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"),
        corr,
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => {
                        out.push(x);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// OAuth

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    json_response(
        status,
        &OAuthError { error: error.to_owned(), description: Some(description.to_owned()), error_description: None },
    )
}

fn oauth_token(sh: &Shared, r: &Req) -> Response<Body> {
    use base64::Engine as _;
    if r.method != Method::POST {
        return oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "use POST");
    }
    let form = parse_query(std::str::from_utf8(&r.body).unwrap_or(""));
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be client_credentials");
    }
    let basic = r
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match &basic {
        Some(s) => s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap_or_default(),
        None => (field("client_id").unwrap_or("").to_owned(), field("client_secret").unwrap_or("").to_owned()),
    };
    if id != sh.cfg.client_id || secret != sh.cfg.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client not found or the secret does not match",
        );
    }
    let lifetime = sh.clock.to_real(sh.cfg.token_lifetime).max(Duration::from_secs(1));
    let token = random_token(64);
    sh.st().tokens.insert(token.clone(), TokenInfo { expires_at: Instant::now() + lifetime, revoked: false });
    sh.stats.tokens_issued.fetch_add(1, Relaxed);
    let resp =
        TokenResponse { access_token: token, token_type: "bearer".into(), expires_in: lifetime.as_secs().max(1) };
    let mut r = json_response(StatusCode::OK, &resp);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---------------------------------------------------------------------------------------------------------------
// Admin

fn admin(sh: &Shared, r: &Req) -> Response<Body> {
    match (&r.method, r.path.as_str()) {
        (&Method::GET, "/sim/truth") => json_response(StatusCode::OK, &sh.model().truth()),
        (&Method::GET, "/sim/stats") => json_response(StatusCode::OK, &sh.stats()),
        (&Method::POST, "/sim/faults") => {
            let faults: Vec<Fault> = match serde_json::from_slice::<Value>(&r.body) {
                Ok(Value::Array(a)) => match a.into_iter().map(serde_json::from_value).collect() {
                    Ok(f) => f,
                    Err(e) => return bad_request(&format!("not a list of faults: {e}"), &r.corr),
                },
                Ok(v) => match serde_json::from_value(v) {
                    Ok(f) => vec![f],
                    Err(e) => return bad_request(&format!("not a fault: {e}"), &r.corr),
                },
                Err(e) => return bad_request(&format!("invalid JSON: {e}"), &r.corr),
            };
            let mut results = Vec::new();
            for f in faults {
                match sh.apply(f) {
                    Ok(v) => results.push(v),
                    Err(e) => return error(StatusCode::NOT_FOUND, "resource.not.found", &e, &r.corr),
                }
            }
            if results.len() == 1 {
                json_response(StatusCode::OK, &results[0])
            } else {
                json_response(StatusCode::OK, &results)
            }
        }
        (_, "/sim/truth" | "/sim/stats" | "/sim/faults") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method.not.allowed",
            &format!("{} not allowed here", r.method),
            &r.corr,
        ),
        _ => not_found(&r.path, &r.corr),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// API: auth, faults, rate limit, then the endpoint

fn api(sh: &Shared, r: &Req) -> Response<Body> {
    let limit = sh.cfg.rate_limit_per_minute;
    let auth = r.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = match auth {
        None => None,
        Some(a) => match a.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => Some(t.trim().to_owned()),
            _ => Some(String::new()),
        },
    };
    let mut headers = (0u32, 60u64);
    let resp = 'resp: {
        let Some(token) = token else {
            break 'resp error(
                StatusCode::UNAUTHORIZED,
                "authentication.required",
                "No authentication bearer token specified in authorization header.",
                &r.corr,
            );
        };
        let now = Instant::now();
        let mut st = sh.st();
        let valid = st.tokens.get(&token).is_some_and(|t| !t.revoked && t.expires_at > now);
        if !valid {
            break 'resp error(StatusCode::UNAUTHORIZED, "bad.credentials", "Invalid login credentials.", &r.corr);
        }
        let w = st.rate.entry(token.clone()).or_insert(RateWindow { start: now, count: 0 });
        if now.duration_since(w.start) >= RATE_WINDOW {
            *w = RateWindow { start: now, count: 0 };
        }
        w.count = w.count.saturating_add(1);
        let reset = (RATE_WINDOW.saturating_sub(now.duration_since(w.start)).as_secs_f64().ceil() as u64).max(1);
        headers = (w.count, reset);
        let over = w.count > limit;
        if let Some(t) = st.throttled.get(&token) {
            if now < t.not_before && now.duration_since(t.at) > IN_FLIGHT_GRACE {
                sh.stats.early_after_429.fetch_add(1, Relaxed);
            }
        }
        let retry_after = match st.storm_until.filter(|u| *u > now) {
            Some(until) => Some((until.duration_since(now).as_secs_f64().ceil() as u64).max(1)),
            None => over.then_some(reset),
        };
        if let Some(secs) = retry_after {
            st.throttled.insert(token.clone(), Throttled { at: now, not_before: now + Duration::from_secs(secs) });
            break 'resp too_many(secs, &r.corr);
        }
        if let Some((left, status)) = st.error_burst {
            st.error_burst = (left > 1).then_some((left - 1, status));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let code = match status.as_u16() {
                500 => "internal.server.error",
                502 => "bad.gateway",
                503 => "service.unavailable",
                504 => "gateway.timeout",
                _ => "error",
            };
            break 'resp error(
                status,
                code,
                &format!("Simulated failure ({})", status.canonical_reason().unwrap_or("error")),
                &r.corr,
            );
        }
        drop(st);
        endpoint(sh, r, &token)
    };
    let mut resp = resp;
    let h = resp.headers_mut();
    h.insert("inin-ratelimit-count", HeaderValue::from(headers.0));
    h.insert("inin-ratelimit-allowed", HeaderValue::from(limit));
    h.insert("inin-ratelimit-reset", HeaderValue::from(headers.1));
    resp
}

fn endpoint(sh: &Shared, r: &Req, token: &str) -> Response<Body> {
    let segs: Vec<&str> = r.path.trim_start_matches("/api/v2/").trim_end_matches('/').split('/').collect();
    let m = &r.method;
    let wrong_method = || {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method.not.allowed",
            &format!("{m} is not allowed on {}", r.path),
            &r.corr,
        )
    };
    let needs = match segs.as_slice() {
        ["routing", "queues"] => Some("routing:queue:view"),
        ["presence", "definitions"] | ["presencedefinitions"] => Some("presence:presenceDefinition:view"),
        ["analytics", "queues", "observations", "query"] => Some(OBSERVATION_PERMISSION),
        ["analytics", "conversations", "aggregates", "query"] => Some("analytics:conversationAggregate:view"),
        _ => None,
    };
    if let Some(p) = needs.filter(|p| sh.cfg.denied_permissions.iter().any(|d| d == p)) {
        return error(StatusCode::FORBIDDEN, "missing.permissions", &format!("Missing permission(s): {p}"), &r.corr);
    }
    match segs.as_slice() {
        ["routing", "queues"] => match *m {
            Method::GET => list_queues(sh, r),
            _ => wrong_method(),
        },
        ["presence", "definitions"] => match *m {
            Method::GET => {
                let defs = sh.model().presence_definitions();
                json_response(
                    StatusCode::OK,
                    &json!({ "total": defs.len(), "entities": defs, "selfUri": "/api/v2/presence/definitions" }),
                )
            }
            _ => wrong_method(),
        },
        ["presencedefinitions"] => match *m {
            Method::GET => {
                let defs: Vec<Value> = sh
                    .model()
                    .presence_definitions()
                    .into_iter()
                    .map(|d| serde_json::to_value(d).unwrap_or_default())
                    .collect();
                page(sh, r, "/api/v2/presencedefinitions", defs)
            }
            _ => wrong_method(),
        },
        ["analytics", "queues", "observations", "query"] => match *m {
            Method::POST => {
                let q: models::QueueObservationQuery = match serde_json::from_slice(&r.body) {
                    Ok(q) => q,
                    Err(e) => return bad_request(&format!("Unable to parse the query: {e}"), &r.corr),
                };
                let n = q.filter.predicates.as_ref().map_or(0, Vec::len)
                    + q.filter.clauses.iter().flatten().map(|c| c.predicates.len()).sum::<usize>();
                if n > MAX_PREDICATES {
                    return bad_request(
                        &format!("The query has {n} predicates; at most {MAX_PREDICATES} are allowed"),
                        &r.corr,
                    );
                }
                let result = sh.model().observations_query(&q);
                match result {
                    Ok(resp) => {
                        let mut out = json_response(StatusCode::OK, &resp);
                        hold_if_asked(sh, &resp, &mut out);
                        out
                    }
                    Err(e) => bad_request(&e.0, &r.corr),
                }
            }
            _ => wrong_method(),
        },
        ["analytics", "conversations", "aggregates", "query"] => match *m {
            Method::POST => {
                let q: models::ConversationAggregationQuery = match serde_json::from_slice(&r.body) {
                    Ok(q) => q,
                    Err(e) => return bad_request(&format!("Unable to parse the query: {e}"), &r.corr),
                };
                if models::parse_interval_ms(&q.interval).is_none() {
                    return bad_request(&format!("interval {:?} is not an ISO-8601 start/end", q.interval), &r.corr);
                }
                let result = sh.model().aggregates_query(&q);
                match result {
                    Ok(resp) => json_response(StatusCode::OK, &resp),
                    Err(e) => bad_request(&e.0, &r.corr),
                }
            }
            _ => wrong_method(),
        },
        ["notifications", "channels"] => match *m {
            Method::POST => create_channel(sh, r, token),
            Method::GET => {
                let all = r.param("includechannels").is_some_and(|v| v.eq_ignore_ascii_case("oauthclient"));
                let host = r.host(sh);
                let st = sh.st();
                let list: Vec<models::Channel> =
                    st.channels.iter().filter(|c| all || c.token == token).map(|c| c.wire(&host)).collect();
                json_response(StatusCode::OK, &json!({ "entities": list }))
            }
            _ => wrong_method(),
        },
        ["notifications", "channels", id] => match *m {
            Method::HEAD => {
                let exists = sh.st().channels.iter().any(|c| c.id == *id && c.expires_at > Instant::now());
                empty(if exists { StatusCode::OK } else { StatusCode::NOT_FOUND })
            }
            _ => wrong_method(),
        },
        ["notifications", "channels", id, "subscriptions"] => subscriptions(sh, r, id, token),
        _ => not_found(&r.path, &r.corr),
    }
}

/// Parse `pageSize` / `pageNumber` (Genesys defaults 25 and 1).
fn paging(sh: &Shared, r: &Req) -> Result<(usize, usize), String> {
    let num = |name: &str, default: usize| -> Result<usize, String> {
        match r.param(name) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("{name} must be a positive integer, got {v:?}")),
            },
        }
    };
    let size = num("pageSize", 25)?.min(sh.cfg.max_page_size as usize);
    let number = num("pageNumber", 1)?;
    Ok((size, number))
}

/// A paged listing: `{entities,pageSize,pageNumber,total,firstUri,nextUri?,previousUri?,lastUri,selfUri,pageCount}`.
fn page(sh: &Shared, r: &Req, path: &str, all: Vec<Value>) -> Response<Body> {
    let (size, number) = match paging(sh, r) {
        Ok(x) => x,
        Err(msg) => return bad_request(&msg, &r.corr),
    };
    let extra: String = r
        .query
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("pageSize") && !k.eq_ignore_ascii_case("pageNumber"))
        .map(|(k, v)| format!("&{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    let uri = |n: usize| format!("{path}?pageSize={size}&pageNumber={n}{extra}");
    let total = all.len();
    let page_count = total.div_ceil(size);
    let entities: Vec<Value> = all.into_iter().skip((number - 1).saturating_mul(size)).take(size).collect();
    let mut body = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "firstUri": uri(1),
        "lastUri": uri(page_count.max(1)),
        "selfUri": uri(number),
        "pageCount": page_count,
    });
    if number < page_count {
        body["nextUri"] = json!(uri(number + 1));
    }
    if number > 1 {
        body["previousUri"] = json!(uri((number - 1).min(page_count.max(1))));
    }
    json_response(StatusCode::OK, &body)
}

fn list_queues(sh: &Shared, r: &Req) -> Response<Body> {
    let mut queues = sh.model().queues();
    let ids: Vec<&str> = r.query.iter().filter(|(k, _)| k == "id" || k == "id[]").map(|(_, v)| v.as_str()).collect();
    if !ids.is_empty() {
        queues.retain(|q| ids.contains(&q.id.as_str()));
    }
    let divisions: Vec<&str> =
        r.query.iter().filter(|(k, _)| k == "divisionId" || k == "divisionId[]").map(|(_, v)| v.as_str()).collect();
    if !divisions.is_empty() {
        queues.retain(|q| q.division.as_ref().is_some_and(|d| divisions.contains(&d.id.as_str())));
    }
    if let Some(name) = r.param("name").filter(|n| !n.is_empty()) {
        let pat = wildmatch::WildMatch::new(&name.to_lowercase());
        queues.retain(|q| pat.matches(&q.name.to_lowercase()));
    }
    if r.param("sortOrder").is_some_and(|s| s.eq_ignore_ascii_case("desc")) {
        queues.reverse();
    }
    let all: Vec<Value> = queues.into_iter().map(|q| serde_json::to_value(q).unwrap_or_default()).collect();
    page(sh, r, "/api/v2/routing/queues", all)
}

// ---------------------------------------------------------------------------------------------------------------
// Channels and subscriptions

fn create_channel(sh: &Shared, r: &Req, token: &str) -> Response<Body> {
    let now = Instant::now();
    let host = r.host(sh);
    let lifetime = sh.channel_lifetime();
    let mut st = sh.st();
    st.channels.retain(|c| c.expires_at > now);
    if st.channels.len() >= sh.cfg.max_channels {
        // The oldest by last use among those without a connection, else the oldest overall.
        let victim = st
            .channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.socket.is_none())
            .min_by_key(|(_, c)| (c.last_used, c.seq))
            .or_else(|| st.channels.iter().enumerate().min_by_key(|(_, c)| (c.last_used, c.seq)))
            .map(|(i, _)| i);
        if let Some(i) = victim {
            let c = st.channels.remove(i);
            sh.stats.channels_evicted.fetch_add(1, Relaxed);
            if let Some(s) = c.socket {
                let notice = channel_notice(
                    &sh.cfg.client_id,
                    &c.id,
                    "no_longer_subscribed",
                    "another_channel_subscribed",
                    "The channel limit was reached; this channel was replaced by a new one",
                );
                let _ = s.tx.try_send(Out::Text(notice.into()));
                let _ = s.tx.try_send(Out::Close { code: 1000, reason: "channel removed: channel limit reached" });
            }
        }
    }
    st.channel_seq += 1;
    let c = ChannelState {
        id: format!("streaming-0-{}", random_lower(26)),
        token: token.to_owned(),
        seq: st.channel_seq,
        last_used: now,
        expires_at: now + lifetime,
        expires_wall_ms: sh.clock.wall_ms() + lifetime.as_millis() as i64,
        topics: Vec::new(),
        topic_set: HashSet::new(),
        socket: None,
    };
    let wire = c.wire(&host);
    st.channels.push(c);
    sh.stats.channels_created.fetch_add(1, Relaxed);
    json_response(StatusCode::OK, &wire)
}

enum Verdict {
    Permitted,
    Forbidden,
    Missing,
}

fn permitted(id: &str) -> ChannelTopic {
    ChannelTopic { id: id.to_owned(), state: Some("Permitted".into()), ..Default::default() }
}

fn subscriptions(sh: &Shared, r: &Req, channel_id: &str, token: &str) -> Response<Body> {
    let now = Instant::now();
    let gone = || {
        error(
            StatusCode::NOT_FOUND,
            "resource.not.found",
            &format!("Channel {channel_id} not found or expired"),
            &r.corr,
        )
    };
    match r.method {
        Method::GET | Method::DELETE => {
            let mut st = sh.st();
            let Some(c) = st.channels.iter_mut().find(|c| c.id == channel_id && c.expires_at > now) else {
                return gone();
            };
            c.last_used = now;
            if r.method == Method::DELETE {
                c.topics.clear();
                c.topic_set.clear();
                return empty(StatusCode::NO_CONTENT);
            }
            let entities: Vec<ChannelTopic> = c.topics.iter().map(|t| permitted(t)).collect();
            json_response(StatusCode::OK, &json!({ "entities": entities }))
        }
        Method::PUT | Method::POST => {
            let ignore = r.param("ignoreErrors").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let requested: Vec<ChannelTopic> = match serde_json::from_slice(&r.body) {
                Ok(t) => t,
                Err(e) => {
                    return bad_request(&format!("The body must be a list of topics ({{\"id\": ...}}): {e}"), &r.corr)
                }
            };
            let mut ids: Vec<String> = Vec::new();
            let mut seen = HashSet::new();
            for t in requested {
                if seen.insert(t.id.clone()) {
                    ids.push(t.id);
                }
            }
            let forbidden = sh.st().forbidden.clone();
            let verdicts: Vec<Verdict> = {
                let m = sh.model();
                ids.iter()
                    .map(|t| match models::queue_id_of_topic(t) {
                        Some(q) if forbidden.contains(q) => Verdict::Forbidden,
                        Some(q) if m.has_queue(q) => Verdict::Permitted,
                        _ => Verdict::Missing,
                    })
                    .collect()
            };
            let mut st = sh.st();
            let lifetime = sh.channel_lifetime();
            let wall = sh.clock.wall_ms();
            let max = sh.cfg.max_topics_per_channel;
            let Some(c) = st.channels.iter_mut().find(|c| c.id == channel_id && c.expires_at > now) else {
                return gone();
            };
            let total = if r.method == Method::PUT {
                ids.len()
            } else {
                c.topics.len() + ids.iter().filter(|t| !c.topic_set.contains(*t)).count()
            };
            if total > max {
                return bad_request(
                    &format!("Each channel is limited to {max} topics; this request would subscribe to {total}"),
                    &r.corr,
                );
            }
            if !ignore {
                if let Some(t) =
                    ids.iter().zip(&verdicts).find(|(_, v)| matches!(v, Verdict::Forbidden)).map(|(t, _)| t)
                {
                    return error(
                        StatusCode::FORBIDDEN,
                        "missing.permissions",
                        &format!(
                            "Missing permission {OBSERVATION_PERMISSION} for topic {t}; no subscription was changed"
                        ),
                        &r.corr,
                    );
                }
            }
            if r.method == Method::PUT {
                c.topics.clear();
                c.topic_set.clear();
            }
            let mut rejected = Vec::new();
            for (t, v) in ids.into_iter().zip(verdicts) {
                match v {
                    Verdict::Permitted => {
                        if c.topic_set.insert(t.clone()) {
                            c.topics.push(t);
                        }
                    }
                    Verdict::Forbidden => rejected.push(ChannelTopic {
                        id: t.clone(),
                        state: Some("Rejected".into()),
                        rejection_reason: Some(format!("Missing permission {OBSERVATION_PERMISSION} for topic {t}")),
                        missing_permissions: vec![OBSERVATION_PERMISSION.to_owned()],
                        self_uri: None,
                    }),
                    Verdict::Missing => rejected.push(ChannelTopic {
                        id: t.clone(),
                        state: Some("Rejected".into()),
                        rejection_reason: Some(format!("Topic {t} does not exist")),
                        missing_permissions: Vec::new(),
                        self_uri: None,
                    }),
                }
            }
            // Resubscribing keeps the channel alive and binds it to the token that did it.
            c.expires_at = now + lifetime;
            c.expires_wall_ms = wall + lifetime.as_millis() as i64;
            c.last_used = now;
            c.token = token.to_owned();
            let mut entities: Vec<ChannelTopic> = c.topics.iter().map(|t| permitted(t)).collect();
            entities.extend(rejected);
            json_response(StatusCode::OK, &json!({ "entities": entities }))
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method.not.allowed",
            &format!("{} is not allowed on {}", r.method, r.path),
            &r.corr,
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// WebSocket upgrade at the connectUri

fn upgrade(sh: &Arc<Shared>, channel_id: &str, req: &mut Request<Incoming>, corr: &str) -> Response<Body> {
    let h = req.headers();
    let is_ws =
        h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec()) else {
        return bad_request("a WebSocket upgrade (Sec-WebSocket-Key) is required at a connectUri", corr);
    };
    if !is_ws || req.method() != Method::GET {
        return bad_request("a WebSocket upgrade (GET, Upgrade: websocket) is required at a connectUri", corr);
    }
    let now = Instant::now();
    let (conn_id, rx, ctl) = {
        let mut st = sh.st();
        let Some(idx) = st.channels.iter().position(|c| c.id == channel_id && c.expires_at > now) else {
            return not_found(&format!("/channels/{channel_id}"), corr);
        };
        let token_ok = st.tokens.get(&st.channels[idx].token).is_some_and(|t| !t.revoked && t.expires_at > now);
        if !token_ok {
            return error(
                StatusCode::UNAUTHORIZED,
                "bad.credentials",
                "The access token of this channel is no longer valid",
                corr,
            );
        }
        st.next_conn += 1;
        let conn_id = st.next_conn;
        let (tx, rx) = tokio::sync::mpsc::channel(sh.cfg.socket_queue);
        let ctl = Arc::new(SocketCtl::default());
        let c = &mut st.channels[idx];
        if let Some(old) = c.socket.replace(SocketHandle { conn_id, tx, ctl: ctl.clone() }) {
            // One socket per channel: the second connect kicks the first.
            old.ctl.close_now(1000, "another WebSocket connected to this channel");
        }
        c.last_used = now;
        (conn_id, rx, ctl)
    };
    sh.stats.sockets_opened.fetch_add(1, Relaxed);
    let on_upgrade = hyper::upgrade::on(req);
    let sh2 = sh.clone();
    let channel = channel_id.to_owned();
    sh.tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                socket::run(sh2.clone(), channel.clone(), conn_id, ws, rx, ctl).await;
            }
            Err(e) => tracing::debug!(err = %e, "WebSocket upgrade failed"),
        }
        sh2.socket_ended(&channel, conn_id);
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let hm = r.headers_mut();
    hm.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    hm.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hm.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
