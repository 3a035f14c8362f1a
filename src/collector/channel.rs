//! One notification channel's life: create, subscribe, connect, re-seed, stream, and recover.
//!
//! Genesys keeps nothing for a closed socket, so every (re)connect is followed by a REST re-seed of the channel's
//! queues; topic messages that arrive while a complete read of their queue (re-seed or reconcile) is in flight are
//! held back and applied after it ([`HoldBack`]), so an older REST snapshot never overwrites a newer streamed value.
//! Recovery picks the cheapest step that works:
//! - `socket_closing`, a server close, a heartbeat timeout: reconnect to the same `connectUri` (the channel and its
//!   subscriptions survive, as the Java SDK does);
//! - 404/401 on upgrade, `no_longer_subscribed`, `token_revoked`, an expired channel: create a new channel and
//!   subscribe again.
//!
//! REST work that happens while the socket is open (re-seed, renewal, subscription changes) runs as side futures
//! polled in the same `select!`, so a slow or throttled API never stops the socket from being read.

use super::backoff::Backoff;
use super::holdback::HoldBack;
use super::seed::ReadResult;
use super::Shared;
use crate::genesys::decode::{decode_frame, Frame, SystemKind};
use crate::genesys::models::{parse_time_ms, queue_id_of_topic, queue_observations_topic, ChannelTopic};
use crate::genesys::{Error, Priority};
use crate::model::{now_ms, ChannelClock};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

/// Largest WebSocket message accepted. Genesys caps request bodies at 512,000 bytes; a bigger frame is counted as
/// oversized and costs a reconnect instead of unbounded memory.
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// How one connected session ended, and what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Reconnect to the same `connectUri`; `immediate` skips the backoff (maintenance warning).
    Reconnect {
        reason: &'static str,
        immediate: bool,
    },
    /// The channel is gone: create a new one.
    NewChannel {
        reason: &'static str,
    },
    Shutdown,
}

#[derive(Debug, Clone)]
struct ChannelInfo {
    id: String,
    connect_uri: String,
    /// Channel lifetime as first granted (24 h on Genesys); every resubscription extends it by this much.
    lifetime: Duration,
    renew_at: Instant,
}

impl ChannelInfo {
    /// Resubscribe when three quarters of the lifetime have passed: hours of slack on Genesys's 24 h.
    fn schedule_renewal(&mut self) {
        self.renew_at = Instant::now() + self.lifetime.mul_f64(0.75);
    }
}

/// Results of REST work done beside an open socket.
enum Side {
    Reseed {
        ids: Vec<String>,
        result: Result<ReadResult, Error>,
    },
    /// A periodic full read while the stream is healthy, compared with what the stream said.
    Reconciled {
        ids: Vec<String>,
        result: Result<ReadResult, Error>,
    },
    Renewed(Result<Vec<ChannelTopic>, Error>),
    /// The channel's subscriptions replaced with `wanted`'s topics on the open socket (queue list changed).
    Resubscribed {
        wanted: Vec<String>,
        result: Result<Vec<ChannelTopic>, Error>,
    },
    ReseedRetry(Vec<String>),
}

pub struct ChannelRunner {
    pub index: usize,
    pub shared: Arc<Shared>,
    /// Queue ids this channel should carry; the manager changes it on re-discovery.
    pub queues: watch::Receiver<Vec<String>>,
    pub clock: Arc<ChannelClock>,
}

impl ChannelRunner {
    pub async fn run(self, shutdown: CancellationToken) {
        use tracing::Instrument as _;
        // Instrumented rather than entered: a guard held across awaits would tag other tasks' events on this
        // worker thread with this channel's span.
        let span = tracing::info_span!("channel", index = self.index);
        self.run_in_span(shutdown).instrument(span).await
    }

    async fn run_in_span(mut self, shutdown: CancellationToken) {
        let mut channel: Option<ChannelInfo> = None;
        // Topics the channel is subscribed to and Genesys permitted.
        let mut permitted: Vec<String> = Vec::new();
        let mut subscribed_for: Vec<String> = Vec::new();
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let wanted = self.queues.borrow_and_update().clone();
            if wanted.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.queues.changed() => if r.is_err() { return },
                }
                continue;
            }

            // 1. A channel with the wanted subscriptions.
            if channel.is_none() {
                match self.create().await {
                    Ok(c) => {
                        tracing::info!(channel_id = %c.id, "notification channel created");
                        channel = Some(c);
                        subscribed_for.clear();
                    }
                    Err(e) => {
                        self.unhealthy(&wanted, "channel_error");
                        tracing::warn!(err = %e, "could not create a notification channel");
                        if !backoff.sleep(&shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let Some(info) = channel.as_mut() else { continue };
            if subscribed_for != wanted {
                match self.subscribe(info, &wanted).await {
                    Ok(p) => {
                        permitted = p;
                        subscribed_for = wanted.clone();
                    }
                    Err(e) => {
                        self.unhealthy(&wanted, "subscribe_error");
                        tracing::warn!(err = %e, channel_id = %info.id, "subscribing failed");
                        if matches!(e, Error::Status { status: 404, .. } | Error::Auth { .. }) {
                            channel = None;
                        }
                        if !backoff.sleep(&shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            }

            // 2. Connect.
            let ws = match self.connect(&info.connect_uri).await {
                Ok(ws) => ws,
                Err(gone) => {
                    self.unhealthy(&permitted, "connect_error");
                    self.shared.metrics.notification_reconnects_total.with_label_values(&[gone.reason()]).inc();
                    if let ConnectError::ChannelGone { .. } = gone {
                        tracing::info!(channel_id = %info.id, "channel gone on connect; creating a new one");
                        channel = None;
                    }
                    if !backoff.sleep(&shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!(channel_id = %info.id, topics = permitted.len(), "notification socket connected");

            // 3. Stream until something ends the session.
            let (exit, healthy) = self.session(ws, info, &mut permitted, &mut subscribed_for, &shutdown).await;
            if healthy {
                backoff.reset();
            }
            match exit {
                Exit::Shutdown => return,
                Exit::Reconnect { reason, immediate } => {
                    tracing::info!(reason, "reconnecting to the same channel");
                    self.shared.metrics.notification_reconnects_total.with_label_values(&[reason]).inc();
                    self.unhealthy(&permitted, reason);
                    if !immediate && !backoff.sleep(&shutdown).await {
                        return;
                    }
                }
                Exit::NewChannel { reason } => {
                    tracing::info!(reason, "channel lost; creating a new channel");
                    self.shared.metrics.notification_reconnects_total.with_label_values(&[reason]).inc();
                    self.unhealthy(&permitted, reason);
                    channel = None;
                    if !backoff.sleep(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// The channel's queues go to polling until it is healthy and re-seeded again.
    fn unhealthy(&self, ids: &[String], reason: &'static str) {
        self.shared.to_poll(ids, reason);
    }

    async fn create(&self) -> Result<ChannelInfo, Error> {
        let c = self.shared.reader.api().create_channel().await?;
        let lifetime = c
            .expires
            .as_deref()
            .and_then(parse_time_ms)
            .map(|exp| Duration::from_millis((exp - now_ms()).max(60_000) as u64))
            .unwrap_or(Duration::from_secs(24 * 3600));
        let mut info = ChannelInfo { id: c.id, connect_uri: c.connect_uri, lifetime, renew_at: Instant::now() };
        info.schedule_renewal();
        Ok(info)
    }

    /// Replace the subscriptions with `ids`' topics. Rejected topics are logged once, and served by polling.
    async fn subscribe(&self, info: &mut ChannelInfo, ids: &[String]) -> Result<Vec<String>, Error> {
        let topics: Vec<String> = ids.iter().map(|id| queue_observations_topic(id)).collect();
        let result = self.shared.reader.api().put_subscriptions(&info.id, &topics, true).await;
        let entities = match result {
            Ok(e) => e,
            Err(Error::Forbidden { code, message, .. }) => {
                // An API that ignores ignoreErrors answers 403 for the whole request: nothing was subscribed.
                tracing::error!(code, message, "subscription refused (403); all of this channel's queues are polled");
                self.shared.set_rejected(ids, true);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        info.schedule_renewal();
        Ok(self.permitted_from(ids, &entities))
    }

    fn permitted_from(&self, ids: &[String], entities: &[ChannelTopic]) -> Vec<String> {
        let rejected: BTreeSet<&str> =
            entities.iter().filter(|t| t.is_rejected()).filter_map(|t| queue_id_of_topic(&t.id)).collect();
        if !rejected.is_empty() {
            let sample: Vec<_> = entities.iter().filter(|t| t.is_rejected()).take(3).collect();
            tracing::warn!(
                rejected = rejected.len(),
                example = ?sample.first().map(|t| (&t.id, &t.rejection_reason, &t.missing_permissions)),
                "Genesys rejected topics; those queues are served by polling"
            );
        }
        let (rej, ok): (Vec<String>, Vec<String>) = ids.iter().cloned().partition(|id| rejected.contains(id.as_str()));
        self.shared.set_rejected(&rej, true);
        self.shared.set_rejected(&ok, false);
        ok
    }

    async fn connect(&self, uri: &str) -> Result<WsStream, ConnectError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let fut = tokio_tungstenite::connect_async_with_config(uri, Some(config), false);
        match tokio::time::timeout(Duration::from_secs(15), fut).await {
            Err(_) => Err(ConnectError::Failed("timeout".into())),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let status = resp.status().as_u16();
                if status == 401 {
                    let tokens = self.shared.reader.api().tokens();
                    tokens.invalidate(tokens.current_generation());
                }
                if matches!(status, 401 | 403 | 404 | 410) {
                    Err(ConnectError::ChannelGone { status })
                } else {
                    Err(ConnectError::Failed(format!("HTTP {status}")))
                }
            }
            Ok(Err(e)) => Err(ConnectError::Failed(e.to_string())),
        }
    }

    /// Read the socket until the session ends. Returns the exit and whether the session became healthy (re-seeded).
    async fn session(
        &mut self,
        ws: WsStream,
        info: &mut ChannelInfo,
        permitted: &mut Vec<String>,
        subscribed_for: &mut Vec<String>,
        shutdown: &CancellationToken,
    ) -> (Exit, bool) {
        let mut settings = self.shared.settings();
        let (mut sink, mut stream) = ws.split();
        // The watchdog runs from the connect; the channel's clock (the queues' data age) only moves on a frame, so
        // a socket that connects but never speaks (a stalled server) never makes its queues look fresh.
        let mut last_frame = Instant::now();
        let mut side: FuturesUnordered<BoxFuture<'static, Side>> = FuturesUnordered::new();
        // The re-seed begins with the socket's first frame, before that frame is read (so its messages are held back
        // behind it). An upgrade alone proves nothing (a stalled server accepts and stays silent), so the REST budget
        // is spent on a re-seed only once the socket has spoken; the first ping goes out at once so a live server
        // proves itself in one round trip.
        let mut healthy = permitted.is_empty();
        let mut seen_frame = false;
        let _ = sink.send(Message::Text(r#"{"message":"ping"}"#.into())).await;
        let mut hold = HoldBack::default();
        let mut ping = tokio::time::interval(settings.ping_interval.max(Duration::from_secs(1)));
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        let mut renewing = false;
        let mut resubscribing = false;
        let mut reconcile = tokio::time::interval(settings.reconcile_interval.max(Duration::from_secs(1)));
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.reset();

        let exit = loop {
            // A config reload changes the heartbeat timeout of open sessions too.
            settings = self.shared.settings();
            let watchdog = tokio::time::sleep_until(last_frame + settings.heartbeat_timeout);
            let renew = tokio::time::sleep_until(info.renew_at);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // A close frame, so the server sees an orderly goodbye rather than a dropped connection.
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
                    break Exit::Shutdown;
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break Exit::Reconnect { reason: "server_closed", immediate: false } };
                    let text = match msg {
                        Ok(Message::Text(t)) => t,
                        Ok(Message::Close(_)) => break Exit::Reconnect { reason: "server_closed", immediate: false },
                        Ok(Message::Binary(b)) => {
                            last_frame = Instant::now();
                            self.frame_seen(&mut seen_frame, &side, &mut hold, permitted.as_slice());
                            self.shared.payload_error("malformed", None, &String::from_utf8_lossy(&b));
                            continue;
                        }
                        Ok(_) => {
                            // RFC 6455 ping/pong: alive, but Genesys's health check is the app-level ping.
                            last_frame = Instant::now();
                            self.frame_seen(&mut seen_frame, &side, &mut hold, permitted.as_slice());
                            continue;
                        }
                        Err(tungstenite::Error::Capacity(e)) => {
                            self.shared.payload_error("oversized", None, &e.to_string());
                            break Exit::Reconnect { reason: "oversized_frame", immediate: false };
                        }
                        Err(e) => {
                            tracing::info!(err = %e, "socket error");
                            break Exit::Reconnect { reason: "error", immediate: false };
                        }
                    };
                    last_frame = Instant::now();
                    self.frame_seen(&mut seen_frame, &side, &mut hold, permitted.as_slice());
                    match self.on_text(text.as_str(), &mut hold) {
                        Some(exit) => break exit,
                        None => continue,
                    }
                }
                Some(done) = side.next(), if !side.is_empty() => {
                    match done {
                        Side::Reseed { ids, result } => match result {
                            Ok(read) => {
                                self.shared.apply_read(read);
                                self.release(&mut hold, &ids);
                                self.shared.healthy(&ids, &self.clock);
                                healthy = true;
                            }
                            Err(e) => {
                                tracing::warn!(err = %e, queues = ids.len(), "re-seed failed; queues stay on polling, retrying");
                                self.shared.to_poll(&ids, "reseed_failed");
                                self.release(&mut hold, &ids);
                                let delay = if let Error::RateLimited { retry_after, .. } = e { retry_after } else { settings.poll_interval };
                                side.push(async move { tokio::time::sleep(delay).await; Side::ReseedRetry(ids) }.boxed());
                            }
                        },
                        Side::Reconciled { ids, result } => {
                            match result {
                                Ok(read) => {
                                    let drift = self.shared.apply_read(read);
                                    if drift > 0 {
                                        self.shared.metrics.stream_drift_total.inc_by(drift as u64);
                                        tracing::info!(values = drift, queues = ids.len(), "reconciliation corrected values the stream had not delivered");
                                    }
                                }
                                Err(e) => tracing::warn!(err = %e, "reconciliation read failed; trying again next interval"),
                            }
                            self.release(&mut hold, &ids);
                        }
                        Side::ReseedRetry(ids) => {
                            side.push(self.reseed_future(&mut hold, ids));
                        }
                        Side::Resubscribed { wanted, result } => {
                            resubscribing = false;
                            match result {
                                Ok(entities) => {
                                    info.schedule_renewal();
                                    let now = self.permitted_from(&wanted, &entities);
                                    let added: Vec<String> = now.iter().filter(|q| !permitted.contains(q)).cloned().collect();
                                    tracing::info!(channel_id = %info.id, added = added.len(), topics = now.len(), "subscriptions changed on the open channel");
                                    *permitted = now;
                                    *subscribed_for = wanted;
                                    if !added.is_empty() {
                                        // New queues are seeded like a fresh connect's: polled, then re-seeded with
                                        // their topic messages held back meanwhile.
                                        self.shared.to_poll(&added, "resubscribe");
                                        side.push(self.reseed_future(&mut hold, added));
                                    }
                                }
                                Err(Error::Status { status: 404, .. }) => break Exit::NewChannel { reason: "channel_expired" },
                                Err(e) => {
                                    // Take the long way: a fresh session subscribes, reconnects and re-seeds.
                                    tracing::warn!(err = %e, "changing subscriptions failed; reconnecting to resubscribe");
                                    break Exit::Reconnect { reason: "resubscribe", immediate: true };
                                }
                            }
                        }
                        Side::Renewed(result) => {
                            renewing = false;
                            match result {
                                Ok(entities) => {
                                    tracing::debug!(channel_id = %info.id, "channel lifetime extended by resubscribing");
                                    info.schedule_renewal();
                                    let _ = self.permitted_from(permitted.as_slice(), &entities);
                                }
                                Err(Error::Status { status: 404, .. }) => break Exit::NewChannel { reason: "channel_expired" },
                                Err(e) => {
                                    tracing::warn!(err = %e, "channel renewal failed; retrying in a minute");
                                    info.renew_at = Instant::now() + Duration::from_secs(60);
                                }
                            }
                        }
                    }
                }
                _ = ping.tick() => {
                    // Genesys answers `{"message":"ping"}` with a pong: proof of life between 30 s heartbeats.
                    if last_frame.elapsed() >= settings.ping_interval
                        && sink.send(Message::Text(r#"{"message":"ping"}"#.into())).await.is_err()
                    {
                        break Exit::Reconnect { reason: "error", immediate: false };
                    }
                }
                _ = reconcile.tick(), if healthy && !hold.reading() => {
                    // Hold topic messages back during the read, as for a re-seed, so the REST snapshot cannot
                    // overwrite a newer streamed value.
                    let reader = self.shared.reader.clone();
                    let ids = permitted.to_vec();
                    hold.begin(&ids);
                    side.push(async move {
                        let result = reader.read(&ids, Priority::Reconcile).await;
                        Side::Reconciled { ids, result }
                    }.boxed());
                }
                _ = watchdog => break Exit::Reconnect { reason: "heartbeat_timeout", immediate: false },
                _ = renew, if !renewing => {
                    renewing = true;
                    let api = self.shared.reader.api().clone();
                    let id = info.id.clone();
                    let topics: Vec<String> = self.queues.borrow().iter().map(|q| queue_observations_topic(q)).collect();
                    side.push(async move { Side::Renewed(api.put_subscriptions(&id, &topics, true).await) }.boxed());
                }
                r = self.queues.changed(), if !resubscribing => {
                    if r.is_err() {
                        break Exit::Shutdown;
                    }
                    // New or removed queues: replace the subscriptions on the open socket, so the other queues of
                    // the channel keep streaming (a config reload or a re-listing never drops a socket).
                    let wanted = self.queues.borrow_and_update().clone();
                    if wanted.is_empty() {
                        break Exit::Reconnect { reason: "resubscribe", immediate: true };
                    }
                    resubscribing = true;
                    let api = self.shared.reader.api().clone();
                    let id = info.id.clone();
                    side.push(async move {
                        let topics: Vec<String> = wanted.iter().map(|q| queue_observations_topic(q)).collect();
                        let result = api.put_subscriptions(&id, &topics, true).await;
                        Side::Resubscribed { wanted, result }
                    }.boxed());
                }
            }
        };
        if !matches!(exit, Exit::Shutdown) {
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
        }
        (exit, healthy)
    }

    /// A frame arrived: the channel's clock moves; the first one of a session starts its re-seed.
    fn frame_seen(
        &self,
        seen: &mut bool,
        side: &FuturesUnordered<BoxFuture<'static, Side>>,
        hold: &mut HoldBack,
        permitted: &[String],
    ) {
        self.clock.touch(now_ms());
        if !std::mem::replace(seen, true) && !permitted.is_empty() {
            side.push(self.reseed_future(hold, permitted.to_vec()));
        }
    }

    /// A re-seed of `ids`, their topic messages held back from now until it has landed ([`Self::release`]).
    fn reseed_future(&self, hold: &mut HoldBack, ids: Vec<String>) -> BoxFuture<'static, Side> {
        hold.begin(&ids);
        let reader = self.shared.reader.clone();
        async move {
            let result = reader.read(&ids, Priority::Reseed).await;
            Side::Reseed { ids, result }
        }
        .boxed()
    }

    /// The read of `ids` has landed (applied, or failed): apply the messages held back behind it.
    fn release(&self, hold: &mut HoldBack, ids: &[String]) {
        for d in hold.end(ids) {
            self.shared.apply_decoded(d, None);
        }
    }

    /// Handle one text frame; `Some(exit)` ends the session.
    fn on_text(&self, text: &str, hold: &mut HoldBack) -> Option<Exit> {
        let m = &self.shared.metrics.notification_messages_total;
        match decode_frame(text) {
            Ok(Frame::Heartbeat) => m.with_label_values(&["heartbeat"]).inc(),
            Ok(Frame::Pong) => m.with_label_values(&["pong"]).inc(),
            Ok(Frame::Reply) | Ok(Frame::Metadata(_)) => m.with_label_values(&["other"]).inc(),
            Ok(Frame::Queue(d)) => {
                let kind =
                    if d.update.groups.iter().any(|g| g.interval.is_some()) { "aggregates" } else { "observations" };
                m.with_label_values(&[kind]).inc();
                if let Some(d) = hold.hold(d) {
                    self.shared.apply_decoded(d, Some(text));
                }
            }
            Ok(Frame::SocketClosing) => {
                m.with_label_values(&["system"]).inc();
                // Maintenance: the server closes in about a minute. Reconnect now, not when it cuts.
                return Some(Exit::Reconnect { reason: "socket_closing", immediate: true });
            }
            Ok(Frame::System { topic, kind, message }) => {
                m.with_label_values(&["system"]).inc();
                match kind {
                    SystemKind::TokenRevoked => {
                        tracing::warn!(topic, reason = ?message.reason, "token revoked; logging in again on a new channel");
                        let tokens = self.shared.reader.api().tokens();
                        tokens.invalidate(tokens.current_generation());
                        return Some(Exit::NewChannel { reason: "token_revoked" });
                    }
                    SystemKind::NoLongerSubscribed => {
                        tracing::warn!(topic, reason = ?message.reason, "no longer subscribed; creating a new channel");
                        return Some(Exit::NewChannel { reason: "no_longer_subscribed" });
                    }
                    SystemKind::SubscriptionChanged | SystemKind::Other => {
                        tracing::info!(topic, message = ?message.message, "system message");
                    }
                }
            }
            Err(e) => {
                self.shared.payload_error(e.kind(), None, text);
                if self.shared.log.allow(e.kind()) {
                    tracing::warn!(kind = e.kind(), err = %e, excerpt = %excerpt(text), "unusable notification frame");
                }
            }
        }
        None
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug)]
enum ConnectError {
    /// The upgrade was refused in a way that means the channel (or its token) is gone.
    ChannelGone {
        status: u16,
    },
    Failed(String),
}

impl ConnectError {
    fn reason(&self) -> &'static str {
        match self {
            ConnectError::ChannelGone { .. } => "channel_gone",
            ConnectError::Failed(_) => "connect_failed",
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::ChannelGone { status } => write!(f, "upgrade refused with HTTP {status}"),
            ConnectError::Failed(e) => f.write_str(e),
        }
    }
}

/// The first 200 characters of a payload, for logs.
pub fn excerpt(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = text[..end].to_owned();
    if end < text.len() {
        s.push('…');
    }
    s
}
