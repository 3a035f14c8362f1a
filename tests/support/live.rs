//! Helpers of the live API tests: a server on a port-0 listener, raw HTTP requests, an SSE reader.

use genesys_cloud_exporter::exposition::{serve, AppState};
use genesys_cloud_exporter::model::{GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Readiness, Source};
use genesys_cloud_exporter::state::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct Server {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(store: Store, configure: impl FnOnce(AppState) -> AppState) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = configure(AppState::new(store, prometheus::Registry::new(), Arc::new(Readiness::default()), "test"));
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, app, shutdown.clone()));
    Server { addr, shutdown }
}

pub fn meta(id: &str, name: &str, division: &str) -> QueueMeta {
    QueueMeta { id: id.into(), name: name.into(), division_id: format!("{division}-id"), division: division.into() }
}

/// A topic-like update: `waiting` voice conversations waiting since `since_ms`, `idle` agents on queue and idle.
pub fn update(id: &str, waiting: f64, since_ms: Option<i64>, idle: f64) -> QueueUpdate {
    QueueUpdate {
        queue_id: id.into(),
        source: Source::Stream,
        event_ms: None,
        complete: false,
        groups: vec![
            GroupUpdate {
                media_type: Some("voice".into()),
                observations: vec![
                    Observation { metric: ObsMetric::Waiting, qualifier: None, value: Some(waiting) },
                    Observation {
                        metric: ObsMetric::LongestWaiting,
                        qualifier: None,
                        value: since_ms.map(|s| s as f64),
                    },
                ],
                interval: None,
                aggregates: vec![],
            },
            GroupUpdate {
                media_type: None,
                observations: vec![Observation {
                    metric: ObsMetric::OnQueueUsers,
                    qualifier: Some("IDLE".into()),
                    value: Some(idle),
                }],
                interval: None,
                aggregates: vec![],
            },
        ],
    }
}

pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One `GET` with `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Resp { status, head: head.to_owned(), body: body.to_owned() }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<u64>,
    pub event: String,
    pub data: serde_json::Value,
}

/// An SSE client over HTTP/1.0 (close-delimited body: no chunked decoding needed).
pub struct SseClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub status: u16,
    /// Parse `data` as JSON (off: only id and event name, for cheap readers).
    pub parse: bool,
}

impl SseClient {
    pub async fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let s = TcpStream::connect(addr).await.unwrap();
        Self::over(s, path, headers).await
    }

    pub async fn over(mut s: TcpStream, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let mut req = format!("GET {path} HTTP/1.0\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        SseClient { stream: s, buf: Vec::new(), status: 0, parse: true }
    }

    /// Read the response head (call before `next`).
    pub async fn head(&mut self) -> u16 {
        loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 4);
                self.status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                return self.status;
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the response head");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next event; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                let mut ev = Sse { id: None, event: "message".into(), data: serde_json::Value::Null };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                ev.data = if self.parse || ev.event == "error" {
                    serde_json::from_str(&data).unwrap()
                } else {
                    serde_json::Value::Null
                };
                return Some(ev);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Queue documents by id, without the serve-time fields deltas do not track.
pub fn tracked(queues: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let mut q = q.clone();
            let m = q.as_object_mut().unwrap();
            m.remove("data_age_seconds");
            m.remove("withdrawn");
            (m["id"].as_str().unwrap().to_owned(), q)
        })
        .collect()
}

/// An update with `statuses` routing-status counts: a bulky change (a few KB as a delta), to fill a client's
/// buffers fast.
pub fn bulky_update(id: &str, round: usize, statuses: usize) -> QueueUpdate {
    let mut u = update(id, (round % 9) as f64, None, 1.0);
    u.groups[1].observations = (0..statuses)
        .map(|j| Observation {
            metric: ObsMetric::UserRoutingStatuses,
            qualifier: Some(format!("STATUS_{j}")),
            value: Some(((round + j) % 7) as f64),
        })
        .collect();
    u
}

/// A client socket with a tiny receive window, for a client that never reads.
pub async fn tiny_window(addr: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(addr).await.unwrap()
}
