//! What one client may cost the HTTP server, over real sockets with the limits shrunk: a slowloris is dropped at
//! the header timeout, oversized heads and too many headers get 431, the connection past the cap gets 503 at once
//! (and its slot comes back), and `/-/reload` is 403 unless enabled, 405 for GET, 413 for a body.
//! (Stream-client cap: live_api.rs `stream_clients_beyond_the_cap_get_503`; TLS and basic auth: web_security.rs.)

#[path = "support/live.rs"]
#[allow(dead_code)]
mod live;

use genesys_cloud_exporter::exposition::{AppState, Limits};
use genesys_cloud_exporter::state::{Store, StoreConfig};
use live::{get, start};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn small(max_connections: usize) -> Limits {
    Limits { max_connections, header_read_timeout: Duration::from_secs(1), max_head_bytes: 16 * 1024, max_headers: 20 }
}

async fn server(limits: Limits, f: impl FnOnce(AppState) -> AppState) -> live::Server {
    start(Store::new(StoreConfig::default()), |a| f(a.with_limits(limits))).await
}

/// Send `req` and read until the server closes; the status (0 if none came).
async fn raw(addr: SocketAddr, req: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(req).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), text)
}

#[tokio::test]
async fn a_slowloris_is_dropped_at_the_header_timeout() {
    let srv = server(small(8), |a| a).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One byte every 100 ms of a header that would take 30 s to finish.
    let started = Instant::now();
    let mut dropped = None;
    for b in b"X-Slow: ".iter().chain([b'a'; 292].iter()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(&[*b]).await.is_err() {
            dropped = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            // EOF, or a 408 before the close.
            assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).contains(" 408 "), "{:?}", &buf[..n]);
            dropped = Some(started.elapsed());
            break;
        }
    }
    let took = dropped.expect("the slow client was never dropped");
    // Bounded well below the 30 s it would take to send the head.
    assert!(took < Duration::from_secs(10), "dropped only after {took:?}");
    // A normal client is unaffected.
    assert_eq!(get(srv.addr, "/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn oversized_heads_and_too_many_headers_get_431() {
    let srv = server(small(8), |a| a).await;
    let big = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    let (status, text) = raw(srv.addr, big.as_bytes()).await;
    assert_eq!(status, 431, "{text}");
    let mut many = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for i in 0..30 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (status, text) = raw(srv.addr, many.as_bytes()).await;
    assert_eq!(status, 431, "{text}");
    // Within the limits it is served.
    let (status, _) = raw(srv.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_connection_past_the_cap_gets_503_at_once_and_the_slot_comes_back() {
    let srv = server(Limits { header_read_timeout: Duration::from_secs(30), ..small(3) }, |a| a).await;
    // Three idle keep-alive connections hold the three slots.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let started = Instant::now();
    let r = get(srv.addr, "/healthz", &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(5), "answered at once, not after a wait");
    drop(held.pop());
    // The slot frees once the server notices the closed connection.
    let mut status = 0;
    for _ in 0..50 {
        status = get(srv.addr, "/healthz", &[]).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "a freed slot serves again");
}

#[tokio::test]
async fn reload_endpoint_is_forbidden_unless_enabled_as_in_prometheus() {
    let post = |body: &str| {
        format!(
            "POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let off = server(small(8), |a| a).await;
    let (status, text) = raw(off.addr, post("").as_bytes()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("Lifecycle API is not enabled."), "{text}");

    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let on = server(small(8), move |a| {
        a.with_reload(Arc::new(move || {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    Ok("reloaded".to_owned())
                } else {
                    Err("api.budget_share: bad".to_owned())
                }
            })
        }))
    })
    .await;
    let (status, text) = raw(on.addr, post("").as_bytes()).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = raw(on.addr, post("").as_bytes()).await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("failed to reload config: api.budget_share: bad"), "{text}");
    let (status, _) = raw(on.addr, b"GET /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 405);
    let (status, _) = raw(on.addr, post(&"x".repeat(10_000)).as_bytes()).await;
    assert_eq!(status, 413, "a body is refused before it is read");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "refused requests did not reload");
}
