//! `/status`: the server-rendered table without JavaScript, and a real headless Chromium (DevTools protocol) that
//! sees a live change without reload, greys a stale queue, and saves target/status-page.png.

#[path = "support/live.rs"]
#[allow(dead_code)]
mod live;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use genesys_cloud_exporter::state::Store;
use live::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn store() -> Store {
    let store = Store::default();
    store.set_queues(vec![
        meta("q1", "Sales <EU>", "Main"),
        meta("q2", "Support", "Care"),
        meta("q3", "Billing", "Main"),
    ]);
    let now = genesys_cloud_exporter::model::now_ms();
    store.apply(update("q1", 3.0, Some(now - 95_000), 2.0));
    store.set_stale("q1", false);
    store.apply(update("q3", 0.0, None, 5.0));
    store.set_stale("q3", false);
    // q2: never confirmed, so stale.
    store
}

#[tokio::test]
async fn without_javascript_the_page_has_a_table_of_every_queue() {
    let srv = start(store(), |a| a).await;
    let r = get(srv.addr, "/status", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("<table id=\"queues-table\">"));
    for (id, name) in [("q1", "Sales &lt;EU&gt;"), ("q2", "Support"), ("q3", "Billing")] {
        assert!(r.body.contains(&format!("data-queue-id=\"{id}\"")), "row of {id}");
        assert!(r.body.contains(name), "name of {id} (escaped)");
    }
    assert!(!r.body.contains("Sales <EU>"), "names are escaped");
    assert!(r.body.contains("<tr class=\"stale\" data-queue-id=\"q2\">"), "stale rows are marked");
    assert!(!r.body.contains("http://") && !r.body.contains("https://"), "self-contained: no external resources");
}

fn chromium() -> Option<String> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
            return Some(c.to_owned());
        }
    }
    let ok = Command::new("apt-get").args(["install", "-y", "chromium"]).status().is_ok_and(|s| s.success());
    ok.then(|| "chromium".to_owned())
}

/// `GET` on the DevTools HTTP endpoint.
async fn devtools_json(port: u16, path: &str) -> Option<Value> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).await.unwrap();
        loop {
            let m = self.ws.next().await.unwrap().unwrap();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    return v["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }

    /// Poll `expr` until it returns `want`.
    async fn until(&mut self, expr: &str, want: Value, what: &str) {
        let mut last = Value::Null;
        for _ in 0..100 {
            last = self.eval(expr).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: {expr} = {last}, want {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "WIP: the DevTools exchange hangs on this machine; run with --ignored"]
async fn a_real_browser_sees_live_changes_and_grey_stale_tiles() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set and chromium could not be installed");
        }
        eprintln!("warning: chromium not available; skipping the browser test");
        return;
    };
    let store = store();
    let srv = start(store.clone(), |a| a).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let profile = std::env::temp_dir().join(format!("status-page-chromium-{}", std::process::id()));
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,800",
            &format!("--remote-debugging-port={port}"),
            &format!("--user-data-dir={}", profile.display()),
            &format!("http://{}/status", srv.addr),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut ws_url = None;
    for _ in 0..150 {
        if let Some(list) = devtools_json(port, "/json/list").await {
            ws_url = list.as_array().and_then(|l| {
                l.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if ws_url.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ws_url = ws_url.expect("chromium's DevTools endpoint");
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut cdp = Cdp { ws, next: 0 };

    let tile = |id: &str, sel: &str| {
        format!("(document.querySelector('.tile[data-queue-id=\"{id}\"] {sel}')||{{}}).textContent")
    };
    cdp.until(&tile("q1", ".waiting"), json!("3"), "tiles rendered from the page's data").await;
    cdp.until("document.getElementById('conn').className", json!("stream"), "the page is on the stream").await;
    // A live change arrives without reload.
    let reloads_before = cdp.eval("performance.timeOrigin").await;
    store.apply(update("q1", 7.0, Some(genesys_cloud_exporter::model::now_ms() - 125_000), 4.0));
    cdp.until(&tile("q1", ".waiting"), json!("7"), "a live change").await;
    cdp.until(&tile("q1", ".available"), json!("4"), "agents available").await;
    assert_eq!(cdp.eval("performance.timeOrigin").await, reloads_before, "no reload");
    // Stale queues are grey (a CSS class) and show their age; fresh ones are not.
    cdp.until(
        "document.querySelector('.tile[data-queue-id=\"q2\"]').classList.contains('stale')",
        json!(true),
        "q2 stale",
    )
    .await;
    store.set_stale("q3", true);
    cdp.until(
        "document.querySelector('.tile[data-queue-id=\"q3\"]').classList.contains('stale')",
        json!(true),
        "q3 turns stale",
    )
    .await;
    assert_eq!(
        cdp.eval("document.querySelector('.tile[data-queue-id=\"q1\"]').classList.contains('stale')").await,
        json!(false)
    );
    let grey = cdp.eval("getComputedStyle(document.querySelector('.tile.stale')).filter").await;
    assert_eq!(grey, json!("grayscale(1)"));
    // The longest wait ticks in the browser.
    let a = cdp.eval(&tile("q1", ".longest")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let b = cdp.eval(&tile("q1", ".longest")).await;
    assert_ne!(a, b, "longest wait ticks ({a} → {b})");
    assert!(a.as_str().unwrap().starts_with("2m"), "{a}");

    let shot = cdp.call("Page.captureScreenshot", json!({"format": "png"})).await;
    let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    std::fs::write(&out, png).unwrap();
    println!("screenshot: {}", out.display());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
}
