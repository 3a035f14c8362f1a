//! `/status`: the server-rendered table without JavaScript, and a real headless Chromium (DevTools protocol) that
//! sees a live change without reload, greys a stale queue, and saves target/status-page.png; then the same browser
//! on the `demo` binary (simulator + exporter): a simulated arrival shows up in the DOM, a stalled socket greys
//! the tiles (target/status-page-demo.png).

#[path = "support/demo.rs"]
mod demo;
#[path = "support/live.rs"]
#[allow(dead_code)]
mod live;
#[path = "support/promstack.rs"]
#[allow(dead_code)]
mod promstack;

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

/// Debian's Chromium (tests/run-all.sh installs the `chromium` package).
fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
            return c.to_owned();
        }
    }
    panic!("no chromium on PATH: install Debian's `chromium` package (tests/run-all.sh does)");
}

/// Bound on every exchange with the browser, so a stuck browser fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(20);

/// A headless Chromium with a fresh profile; killed (and its profile removed) on drop, also when the test panics.
struct Browser {
    child: std::process::Child,
    profile: std::path::PathBuf,
    port: u16,
}

impl Browser {
    fn start(exe: &str, url: &str) -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let profile = std::env::temp_dir().join(format!(
            "status-page-chromium-{}-{}",
            std::process::id(),
            genesys_cloud_exporter::model::now_ms()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        // Without the background-networking flags Chromium keeps dialling Google services, which a closed network
        // refuses, and can stall before it serves DevTools.
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1920,1080",
                &format!("--remote-debugging-port={port}"),
                &format!("--user-data-dir={}", profile.display()),
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        Browser { child, profile, port }
    }

    /// The page target's DevTools WebSocket, once the browser serves it.
    async fn page(&self) -> Cdp {
        let deadline = tokio::time::Instant::now() + STEP;
        let url = loop {
            let list = tokio::time::timeout(Duration::from_secs(2), devtools_json(self.port, "/json/list")).await;
            let found = list.ok().flatten().and_then(|l| {
                l.as_array()?
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if let Some(u) = found {
                break u;
            }
            assert!(tokio::time::Instant::now() < deadline, "chromium's DevTools endpoint did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
            .await
            .expect("DevTools WebSocket connect timed out")
            .unwrap();
        Cdp { ws, next: 0 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `GET` on the DevTools HTTP endpoint; the body is read up to its Content-Length (the endpoint may keep the
/// connection open).
async fn devtools_json(port: u16, path: &str) -> Option<Value> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|l| body.len() >= l) || n == 0 {
                return serde_json::from_str(body).ok();
            }
        }
        if n == 0 {
            return None;
        }
    }
}

struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let exchange = async {
            let msg = json!({"id": id, "method": method, "params": params}).to_string();
            self.ws.send(Message::text(msg)).await.unwrap();
            loop {
                let m = self.ws.next().await.expect("DevTools connection closed").unwrap();
                if let Message::Text(t) = m {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["id"] == id {
                        return v["result"].clone();
                    }
                }
            }
        };
        tokio::time::timeout(STEP, exchange).await.unwrap_or_else(|_| panic!("DevTools {method} timed out"))
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }

    /// Save the page as `target/<name>` (a test artifact).
    async fn screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(name);
        std::fs::write(&out, png).unwrap();
        println!("screenshot: {}", out.display());
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
async fn a_real_browser_sees_live_changes_and_grey_stale_tiles() {
    let exe = chromium();
    let store = store();
    let srv = start(store.clone(), |a| a).await;
    let browser = Browser::start(&exe, &format!("http://{}/status", srv.addr));
    let mut cdp = browser.page().await;

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

    // TV-readable: the waiting count is big at 1920×1080.
    let px = cdp.eval("parseFloat(getComputedStyle(document.querySelector('.tile .waiting')).fontSize)").await;
    assert!(px.as_f64().unwrap() >= 60.0, "waiting figure is {px} px tall at 1920×1080");

    cdp.screenshot("status-page.png").await;
    drop(cdp);
    drop(browser);
}

/// Every media type's waiting count of one queue in the simulator's ground truth (what a tile's figure sums).
fn truth_waiting(truth: &Value, id: &str) -> Option<u64> {
    let q = truth["queues"].as_array()?.iter().find(|q| q["id"] == id)?;
    Some(q["media"].as_object()?.values().filter_map(|m| m["waiting"].as_u64()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_follows_the_simulator_and_greys_stalled_queues() {
    let exe = chromium();
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
    let dir = promstack::TempDir::new("status-demo");
    let demo =
        demo::Demo::start(&dir, &["--queues", "4", "--seed", "7", "--agents-per-queue", "0"], &demo::fast_config(3))
            .await;
    // No random arrivals, and no agents to answer: the only change is the one made below.
    demo.fault(json!({"kind": "set_arrivals", "per_hour": 0})).await;
    let t = demo.truth().await;
    let target = t["queues"][0]["id"].as_str().expect("a queue").to_owned();

    let browser = Browser::start(&exe, &format!("http://{}/status", demo.exporter));
    let mut cdp = browser.page().await;
    cdp.until("document.querySelectorAll('.tile').length", json!(4), "a tile per simulated queue").await;
    cdp.until("document.getElementById('conn').className", json!("stream"), "the page is on the stream").await;
    cdp.until("document.querySelectorAll('.tile.stale').length", json!(0), "every queue fresh while streaming").await;
    let waiting = format!("(document.querySelector('.tile[data-queue-id=\"{target}\"] .waiting')||{{}}).textContent");
    let before = cdp.eval(&waiting).await;
    let origin = cdp.eval("performance.timeOrigin").await;

    // Three callers arrive in the simulator: the tile shows the simulator's count, without a reload.
    demo.fault(json!({"kind": "arrive", "queue_id": target, "media_type": "voice", "count": 3})).await;
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (dom, want) = (cdp.eval(&waiting).await, truth_waiting(&demo.truth().await, &target));
        if dom != before && want.map(|w| Value::from(w.to_string())) == Some(dom.clone()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "tile {target}: DOM {dom} (was {before}), truth {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cdp.eval("performance.timeOrigin").await, origin, "no reload");

    // The sockets go silent: past the heartbeat timeout every queue is polled, and its tile turns grey with its age.
    demo.fault(json!({"kind": "stall_sockets", "seconds": 30})).await;
    cdp.until("document.querySelectorAll('.tile.stale').length", json!(4), "every tile grey after the stall").await;
    let foot =
        cdp.eval(&format!("document.querySelector('.tile[data-queue-id=\"{target}\"] .foot').textContent")).await;
    assert!(foot.as_str().is_some_and(|f| f.starts_with("stale · data age")), "stale footer: {foot}");
    let grey = cdp.eval("getComputedStyle(document.querySelector('.tile.stale')).filter").await;
    assert_eq!(grey, json!("grayscale(1)"));

    cdp.screenshot("status-page-demo.png").await;
}
