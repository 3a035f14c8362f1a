//! Helpers of the simulator's own tests: start a small fast simulator, talk to it with plain reqwest and
//! tokio-tungstenite, and check wire shapes with `serde_json::Value` (never the simulator's own structs).
#![allow(dead_code)]

use futures_util::{SinkExt as _, StreamExt as _};
use genesys_cloud_exporter::sim::{SimConfig, SimHandle, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A small org, no spontaneous arrivals (determinism), short heartbeats and topic period.
pub fn small_cfg() -> SimConfig {
    let mut c = SimConfig::default();
    c.model.queues = 4;
    c.model.agents_per_queue = 3;
    c.model.arrivals_per_hour = 0.0;
    c.heartbeat_interval = Duration::from_millis(300);
    c.topic_period = Duration::from_millis(200);
    c.tick = Duration::from_millis(50);
    c
}

pub async fn start(cfg: SimConfig) -> SimHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Simulator::start(cfg, l).await.expect("simulator starts")
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let mut r = c.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_owned());
    }
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Resp { status, headers, text }
}

pub async fn get(c: &reqwest::Client, url: &str, token: &str) -> Resp {
    send(c, reqwest::Method::GET, url, Some(token), None).await
}

pub async fn login(c: &reqwest::Client, base: &str, id: &str, secret: &str) -> Resp {
    let resp = c
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Resp { status, headers, text }
}

pub async fn token(c: &reqwest::Client, sim: &SimHandle) -> String {
    token_at(c, &sim.base_url()).await
}

pub async fn token_at(c: &reqwest::Client, base: &str) -> String {
    let r = login(c, base, "sim-client", "sim-secret").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().expect("access_token").to_owned()
}

/// A documented Genesys `ErrorBody` with the expected status and code; `contextId` = `ININ-Correlation-Id`.
pub fn assert_error_body(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "status; body {}", r.text);
    let v = r.json();
    assert!(v["message"].is_string() && !v["message"].as_str().unwrap().is_empty(), "message: {v}");
    assert_eq!(v["code"], code, "code: {v}");
    assert_eq!(v["status"], status, "status field: {v}");
    assert!(v["status"].is_u64(), "status is an integer: {v}");
    let corr = r.header("inin-correlation-id").expect("ININ-Correlation-Id header");
    assert_eq!(v["contextId"], corr, "contextId = ININ-Correlation-Id: {v}");
    assert!(v["details"].is_array(), "details: {v}");
    assert!(v["errors"].is_array(), "errors: {v}");
}

/// `inin-ratelimit-count/allowed/reset` present and numeric.
pub fn assert_rate_headers(r: &Resp) -> (u64, u64, u64) {
    let n = |h: &str| -> u64 {
        r.header(h).unwrap_or_else(|| panic!("missing {h}")).parse().unwrap_or_else(|_| panic!("{h} not a number"))
    };
    (n("inin-ratelimit-count"), n("inin-ratelimit-allowed"), n("inin-ratelimit-reset"))
}

pub async fn create_channel(c: &reqwest::Client, sim: &SimHandle, token: &str) -> Value {
    let r =
        send(c, reqwest::Method::POST, &format!("{}/api/v2/notifications/channels", sim.base_url()), Some(token), None)
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

pub async fn put_topics(c: &reqwest::Client, sim: &SimHandle, token: &str, channel: &str, topics: &[String]) -> Resp {
    let body: Vec<Value> = topics.iter().map(|t| serde_json::json!({ "id": t })).collect();
    send(
        c,
        reqwest::Method::PUT,
        &format!("{}/api/v2/notifications/channels/{channel}/subscriptions", sim.base_url()),
        Some(token),
        Some(&Value::Array(body).to_string()),
    )
    .await
}

pub fn topic(queue_id: &str) -> String {
    format!("v2.analytics.queues.{queue_id}.observations")
}

/// Queue ids from the simulator's truth (never the stub's naming).
pub fn queue_ids(sim: &SimHandle) -> Vec<String> {
    sim.truth().queues.iter().map(|q| q.id.clone()).collect()
}

pub async fn connect(uri: &str) -> Ws {
    let (ws, resp) = tokio_tungstenite::connect_async(uri).await.unwrap_or_else(|e| panic!("connect {uri}: {e}"));
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// HTTP status of a WebSocket connect attempt (101 on success).
pub async fn connect_status(uri: &str) -> u16 {
    match tokio_tungstenite::connect_async(uri).await {
        Ok((_, r)) => r.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("connect {uri}: {e}"),
    }
}

/// What the next event on a socket was.
#[derive(Debug)]
pub enum Ev {
    Text(String),
    Close(Option<u16>),
    /// The stream ended or failed without a close frame.
    Dropped(String),
    Timeout,
}

pub async fn next(ws: &mut Ws, within: Duration) -> Ev {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Err(_) => return Ev::Timeout,
            Ok(None) => return Ev::Dropped("end of stream".into()),
            Ok(Some(Err(e))) => return Ev::Dropped(e.to_string()),
            Ok(Some(Ok(Message::Text(t)))) => return Ev::Text(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => return Ev::Close(f.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

pub fn is_heartbeat(t: &str) -> bool {
    serde_json::from_str::<Value>(t).is_ok_and(|v| {
        v == serde_json::json!({"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}})
    })
}

/// Wait for a text frame for which `pred` holds, skipping others; panics on close/timeout.
pub async fn wait_text(ws: &mut Ws, within: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(ws, left).await {
            Ev::Text(t) if pred(&t) => return t,
            Ev::Text(_) => continue,
            other => panic!("waiting for {what}: got {other:?}"),
        }
    }
}

/// Wait until the socket closes (frame or drop); returns which; panics on timeout.
pub async fn wait_end(ws: &mut Ws, within: Duration) -> Ev {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(ws, left).await {
            Ev::Text(_) => continue,
            Ev::Timeout => panic!("socket did not end within {within:?}"),
            e => return e,
        }
    }
}

pub async fn ping(ws: &mut Ws) {
    ws.send(Message::Text(r#"{"message":"ping"}"#.into())).await.expect("send ping");
}

pub async fn inject_http(c: &reqwest::Client, sim: &SimHandle, fault: Value) -> Resp {
    send(c, reqwest::Method::POST, &format!("{}/sim/faults", sim.base_url()), None, Some(&fault.to_string())).await
}

/// A channel with a connected socket subscribed to the first queue: (channel JSON, socket, queue id).
pub async fn subscribed_socket(c: &reqwest::Client, sim: &SimHandle, token: &str) -> (Value, Ws, String) {
    let ch = create_channel(c, sim, token).await;
    let q = queue_ids(sim).into_iter().next().expect("a queue");
    let r = put_topics(c, sim, token, ch["id"].as_str().unwrap(), &[topic(&q)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ws = connect(ch["connectUri"].as_str().unwrap()).await;
    (ch, ws, q)
}
