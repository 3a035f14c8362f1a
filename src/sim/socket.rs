//! One WebSocket at a channel's `connectUri`: frames queued by the router, heartbeats, `{"message":"ping"}` →
//! pong, and the faults that act on sockets (stall, heartbeat loss, kick, drop, close).

use super::server::Shared;
use futures_util::{SinkExt as _, StreamExt as _};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

const HEARTBEAT: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
const PONG: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;

/// What the router and the faults queue for a socket.
pub(crate) enum Out {
    Text(Utf8Bytes),
    /// Close (with a close frame) after the frames queued before it.
    Close {
        code: u16,
        reason: &'static str,
    },
}

/// The socket's registration in its channel.
#[derive(Clone)]
pub(crate) struct SocketHandle {
    pub(crate) conn_id: u64,
    pub(crate) tx: mpsc::Sender<Out>,
    pub(crate) ctl: Arc<SocketCtl>,
}

/// Out-of-band control: close now (with a close frame) or drop the TCP connection.
#[derive(Default)]
pub(crate) struct SocketCtl {
    close: CancellationToken,
    abrupt: AtomicBool,
    why: Mutex<Option<(u16, String)>>,
}

impl SocketCtl {
    pub(crate) fn close_now(&self, code: u16, reason: &str) {
        let mut w = self.why.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some((code, reason.to_owned()));
        }
        drop(w);
        self.close.cancel();
    }
    pub(crate) fn drop_now(&self) {
        self.abrupt.store(true, Relaxed);
        self.close.cancel();
    }
    pub(crate) fn is_closing(&self) -> bool {
        self.close.is_cancelled()
    }
}

type Ws = tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

fn close_msg(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
}

pub(crate) async fn run(
    sh: Arc<Shared>,
    channel: String,
    conn_id: u64,
    ws: Ws,
    mut rx: mpsc::Receiver<Out>,
    ctl: Arc<SocketCtl>,
) {
    sh.stats.sockets_open.fetch_add(1, Relaxed);
    tracing::debug!(channel = %channel, conn_id, "socket open");
    let (mut sink, mut stream) = ws.split();
    let period = sh.cfg.heartbeat_interval;
    let mut hb = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Sends give way to a close request, so a client that stops reading cannot pin the task.
    macro_rules! send {
        ($m:expr) => {
            tokio::select! {
                r = sink.send($m) => r.is_ok(),
                _ = ctl.close.cancelled() => false,
            }
        };
    }
    let stalled = |sh: &Shared| sh.flags().stalled(&channel, Instant::now());
    let mut close_sent = false;
    loop {
        tokio::select! {
            biased;
            _ = ctl.close.cancelled() => break,
            _ = sh.shutdown.cancelled() => {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(close_msg(1001, "simulator shutting down"))).await;
                close_sent = true;
                break;
            }
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if stalled(&sh) {
                        sh.stats.frames_dropped_stalled.fetch_add(1, Relaxed);
                        continue;
                    }
                    if !send!(Message::Text(t)) {
                        break;
                    }
                    sh.stats.messages_sent.fetch_add(1, Relaxed);
                }
                Some(Out::Close { code, reason }) => {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(close_msg(code, reason))).await;
                    close_sent = true;
                    break;
                }
                None => break,
            },
            _ = hb.tick() => {
                let (st, lost) = { let f = sh.flags(); let now = Instant::now(); (f.stalled(&channel, now), f.heartbeat_lost(now)) };
                if st || lost {
                    continue;
                }
                if !send!(Message::Text(HEARTBEAT.into())) {
                    break;
                }
                sh.stats.heartbeats_sent.fetch_add(1, Relaxed);
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let is_ping = serde_json::from_str::<serde_json::Value>(t.as_str())
                        .ok()
                        .is_some_and(|v| v.get("message").and_then(|m| m.as_str()) == Some("ping"));
                    if is_ping {
                        let (st, lost) = { let f = sh.flags(); let now = Instant::now(); (f.stalled(&channel, now), f.heartbeat_lost(now)) };
                        if st || lost {
                            continue;
                        }
                        if !send!(Message::Text(PONG.into())) {
                            break;
                        }
                        sh.stats.pongs_sent.fetch_add(1, Relaxed);
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    sh.stats.sockets_closed_by_client.fetch_add(1, Relaxed);
                    break;
                }
                None | Some(Err(_)) => {
                    sh.stats.sockets_dropped_by_client.fetch_add(1, Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    // Closed by the server (kick, expiry, slow consumer, …): a close frame unless the fault is a TCP drop.
    if !close_sent && ctl.is_closing() && !ctl.abrupt.load(Relaxed) {
        let (code, reason) = ctl.why.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or((1000, String::new()));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(close_msg(code, &reason))).await;
    }
    sh.stats.sockets_open.fetch_sub(1, Relaxed);
    tracing::debug!(channel = %channel, conn_id, "socket closed");
}
