//! The exporter's HTTP server on a port-0 listener, driven with raw HTTP/1.1 so the bytes on the wire are what is
//! asserted: both formats, gzip, health and readiness, 404/405, HEAD, keep-alive and graceful shutdown.

#[path = "support/prom.rs"]
#[allow(dead_code)]
mod prom;

use genesys_cloud_exporter::exposition::{serve, AppState};
use genesys_cloud_exporter::model::{GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Readiness, Source};
use genesys_cloud_exporter::state::{Store, StoreConfig};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), genesys_cloud_exporter::exposition::ExpositionError>>,
}

fn store() -> Store {
    let store = Store::new(StoreConfig::default());
    store.set_queues(vec![QueueMeta {
        id: "q1".into(),
        name: "Sales <EU>".into(),
        division_id: "d1".into(),
        division: "Home".into(),
    }]);
    let outcome = store.apply(QueueUpdate {
        queue_id: "q1".into(),
        source: Source::Poll,
        event_ms: None,
        complete: true,
        groups: vec![GroupUpdate {
            media_type: Some("voice".into()),
            observations: vec![Observation { metric: ObsMetric::Waiting, qualifier: None, value: Some(4.0) }],
            interval: None,
            aggregates: vec![],
        }],
    });
    assert!(outcome.changed);
    store
}

async fn start(configure: impl FnOnce(AppState) -> AppState) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let readiness = Arc::new(Readiness::default());
    let registry = prometheus::Registry::new();
    let up = prometheus::IntGauge::new("genesys_up", "1 when authenticated and serving fresh data.").unwrap();
    up.set(1);
    registry.register(Box::new(up)).unwrap();
    let app = configure(AppState::new(store(), registry, readiness.clone(), "9.9.9-test"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, app, shutdown.clone()));
    Server { addr, readiness, shutdown, task }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read one response from `stream` (Content-Length framed; hyper frames a full body that way).
async fn read_response(stream: &mut TcpStream, head_request: bool) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let want = if head_request { 0 } else { len };
    let mut body = buf[head_end..].to_vec();
    while body.len() < want {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(body.len(), want, "more bytes than Content-Length");
    Resp { status, headers, body }
}

async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    read_response(&mut stream, method == "HEAD").await
}

async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[]).await
}

#[tokio::test]
async fn metrics_in_prometheus_text_by_default() {
    let s = start(|a| a).await;
    let r = get(s.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(r.header("content-encoding"), None);
    let text = r.text();
    let samples = prom::parse(&text);
    assert_eq!(
        prom::value(&samples, "genesys_queue_waiting", &[("queue", "Sales <EU>"), ("media_type", "voice")]),
        Some(4.0)
    );
    assert_eq!(prom::value(&samples, "genesys_up", &[]), Some(1.0));
    assert!(text.contains("# TYPE genesys_queue_waiting gauge\n"));
    assert!(text.contains("process_start_time_seconds"), "process metrics are part of the registry");
    assert!(!text.contains("# EOF"));
    assert!(!text.contains("# UNIT"));
}

#[tokio::test]
async fn metrics_in_openmetrics_when_asked() {
    let s = start(|a| a).await;
    let accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let r = request(s.addr, "GET", "/metrics", &[("Accept", accept)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    assert!(text.contains("# UNIT genesys_queue_data_age_seconds seconds\n"));
    assert!(text.contains("# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total "));
    let samples = prom::parse(&text);
    assert_eq!(prom::value(&samples, "genesys_queue_waiting", &[("queue_id", "q1")]), Some(4.0));
}

#[tokio::test]
async fn gzip_when_accepted() {
    let s = start(|a| a).await;
    let plain = get(s.addr, "/metrics").await;
    let r = request(s.addr, "GET", "/metrics", &[("Accept-Encoding", "deflate, gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.header("vary").is_some_and(|v| v.contains("Accept-Encoding")));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut text).unwrap();
    // The same content as uncompressed, up to the clock-driven values.
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("genesys_queue_data_age") && !l.starts_with("process_"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&text), strip(&plain.text()));
    // gzip and OpenMetrics together.
    let r =
        request(s.addr, "GET", "/metrics", &[("Accept-Encoding", "gzip"), ("Accept", "application/openmetrics-text")])
            .await;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut text).unwrap();
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn health_and_readiness() {
    let s = start(|a| a).await;
    let r = get(s.addr, "/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));

    let r = get(s.addr, "/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("not authenticated"), "{}", r.text());
    s.readiness.set_authenticated(true);
    let r = get(s.addr, "/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("first snapshot not loaded"), "{}", r.text());
    s.readiness.set_seeded(true);
    let r = get(s.addr, "/readyz").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = start(|a| a).await;
    assert_eq!(get(s.addr, "/nope").await.status, 404);
    assert_eq!(get(s.addr, "/metrics/extra").await.status, 404);
    for method in ["POST", "PUT", "DELETE"] {
        let r = request(s.addr, method, "/metrics", &[("Content-Length", "0")]).await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(request(s.addr, "POST", "/healthz", &[("Content-Length", "0")]).await.status, 405);
    // HEAD: headers of the GET, no body.
    let r = request(s.addr, "HEAD", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert!(r.header("content-length").and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > 100));
}

#[tokio::test]
async fn landing_page_links_and_summarises() {
    let s = start(|a| a.with_summary(Arc::new(|| vec![("notification channels".into(), "3 <healthy>".into())]))).await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    for needle in [
        "9.9.9-test",
        "href=\"/metrics\"",
        "href=\"/healthz\"",
        "href=\"/readyz\"",
        "<th>queues</th><td>1</td>",
        "3 &lt;healthy&gt;",
    ] {
        assert!(html.contains(needle), "landing page lacks {needle:?}:\n{html}");
    }
}

#[tokio::test]
async fn custom_telemetry_path() {
    let s = start(|a| a.with_telemetry_path("/custom")).await;
    assert_eq!(get(s.addr, "/metrics").await.status, 404);
    let r = get(s.addr, "/custom").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("genesys_queue_waiting"));
    assert!(get(s.addr, "/").await.text().contains("href=\"/custom\""));
}

#[tokio::test]
async fn keep_alive_and_graceful_shutdown() {
    let s = start(|a| a).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    for _ in 0..2 {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
        let r = read_response(&mut conn, false).await;
        assert_eq!(r.status, 200);
    }
    // Cancel: the idle keep-alive connection is closed and serve returns.
    s.shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), s.task).await.expect("serve did not stop").unwrap();
    assert!(result.is_ok());
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "idle connection should be closed without a response");
    assert!(TcpStream::connect(s.addr).await.is_err(), "listener should be closed");
}
