//! The binary's lifecycle against an in-test simulator: SIGTERM/SIGINT stop it within seconds, exit 0, with the
//! Genesys sockets closed by a close frame and stream clients told why; SIGHUP and `POST /-/reload` apply a new
//! queue list without reconnecting anything, and refuse a bad file keeping the running configuration.

#[path = "support/live.rs"]
#[allow(dead_code)]
mod live;
mod support;

use futures_util::StreamExt as _;
use genesys_cloud_exporter::sim::SimHandle;
use live::SseClient;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::bin::{sim_env, Proc};
use support::prom;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

async fn scrape(http: &reqwest::Client, addr: std::net::SocketAddr) -> String {
    http.get(format!("http://{addr}/metrics")).send().await.expect("scrape").text().await.expect("body")
}

/// Queue ids on `genesys_queue_info`.
fn exported(text: &str) -> BTreeSet<String> {
    prom::parse(text)
        .into_iter()
        .filter(|s| s.name == "genesys_queue_info")
        .map(|s| s.labels["queue_id"].clone())
        .collect()
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn reconnects(text: &str) -> f64 {
    prom::parse(text).iter().filter(|s| s.name == "genesys_notification_reconnects_total").map(|s| s.value).sum()
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(tag: &str) -> TempFile {
    TempFile(std::env::temp_dir().join(format!("gce-lifecycle-{tag}-{}.yaml", std::process::id())))
}

/// A sim with a 1 s heartbeat and an exporter binary serving it, ready (queue metrics served).
async fn start(sim: &SimHandle, extra: &[&str]) -> (Proc, std::net::SocketAddr) {
    let mut args = vec!["run", "--web.listen-address", "127.0.0.1:0", "--log.format", "json"];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args, &sim_env(&sim.base_url(), "sim-secret"));
    let addr = p.listen_addr(WAIT);
    let http = reqwest::Client::new();
    until("queue metrics", async || scrape(&http, addr).await.contains("genesys_queue_agents")).await;
    (p, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_within_seconds_closing_everything_cleanly() {
    for signal in ["TERM", "INT"] {
        let sim = support::start_sim(support::org(5, 600.0)).await;
        let (mut p, addr) = start(&sim, &[]).await;
        until("the notification socket", async || sim.stats().sockets_open >= 1).await;

        // A Server-Sent Events client and a WebSocket client of /api/v1/stream.
        let mut sse = SseClient::connect(addr, "/api/v1/stream", &[]).await;
        assert_eq!(sse.head().await, 200);
        assert_eq!(sse.next().await.expect("snapshot").event, "snapshot");
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream")).await.expect("WebSocket client");
        assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))), "snapshot over the WebSocket");
        // Scrapes back to back while the signal arrives: each must be complete or refused, never cut.
        let http = reqwest::Client::new();
        let scraper = tokio::spawn(async move {
            let mut complete = 0;
            loop {
                match http.get(format!("http://{addr}/metrics")).send().await {
                    Ok(r) => match r.text().await {
                        Ok(body) => {
                            assert!(body.contains("process_start_time_seconds"), "a scrape was cut short");
                            complete += 1;
                        }
                        Err(_) => return complete,
                    },
                    Err(_) => return complete,
                }
            }
        });
        // And a client that has sent half a request head: it must not hold the exit up.
        let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut half, b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;

        p.signal(signal);
        let exited = tokio::task::spawn_blocking(move || {
            let r = p.wait_exit(Duration::from_secs(20));
            (r, p)
        });
        // The stream clients hear why, then the end.
        let ev = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match sse.next().await {
                    Some(e) if e.event == "error" => return Some(e),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .expect("SSE client ended in time")
        .expect("an error event before the end");
        assert_eq!(ev.data["reason"], "server shutting down");
        assert!(sse.next().await.is_none(), "the SSE stream ends");
        let close = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(m) = ws.next().await {
                if let Ok(Message::Close(c)) = m {
                    return c;
                }
            }
            None
        })
        .await
        .expect("WebSocket client ended in time")
        .expect("a close frame");
        assert_eq!(u16::from(close.code), 1001, "going away");
        // Reading on sends the client's half of the closing handshake, as a browser does.
        let _ = tokio::time::timeout(Duration::from_secs(10), async { while ws.next().await.is_some() {} }).await;

        let (r, p) = exited.await.unwrap();
        let (status, took) = r.unwrap_or_else(|| panic!("SIG{signal}: no exit within 20 s"));
        eprintln!("SIG{signal}: exited {status} {took:?} after the signal");
        assert_eq!(status.code(), Some(0), "SIG{signal} is a clean exit: {}", p.stderr());
        // Bounded below the 10 s drain timeout: an exit that waited it out would be a hang, not a clean stop.
        assert!(took < Duration::from_secs(8), "SIG{signal}: took {took:?} to exit");
        assert!(scraper.await.unwrap() > 0, "scrapes were served until the signal");
        assert!(std::net::TcpStream::connect(addr).is_err(), "no longer accepting connections");

        let s = sim.stats();
        assert_eq!(s.sockets_open, 0, "every Genesys socket closed");
        assert!(s.sockets_closed_by_client >= 1, "the exporter sent close frames: {s:?}");
        assert_eq!(s.sockets_dropped_by_client, 0, "no socket was just dropped: {s:?}");
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_the_queue_list_without_dropping_streams_and_refuses_bad_files() {
    let sim = support::start_sim(support::org(6, 600.0)).await;
    let ids: Vec<String> = sim.truth().queues.iter().map(|q| q.id.clone()).collect();
    let file = temp_file("reload");
    let write = |include: &[&String], extra: &str| {
        let list: Vec<String> = include.iter().map(|i| format!("\"{i}\"")).collect();
        let text = format!(
            "queues:\n  include: [{}]\n  refresh_interval: 1h\nfreshness:\n  heartbeat_timeout: 3s\n  poll_interval: 1s\nnotifications:\n  ping_interval: 1s\n{extra}",
            list.join(", ")
        );
        std::fs::write(&file.0, text).unwrap();
    };
    write(&[&ids[0], &ids[1]], "");
    let path = file.0.to_str().unwrap().to_owned();
    let (mut p, addr) = start(&sim, &["--config.file", &path, "--web.enable-lifecycle"]).await;
    let http = reqwest::Client::new();
    let want: BTreeSet<String> = ids[..2].iter().cloned().collect();
    assert_eq!(exported(&scrape(&http, addr).await), want);

    let mut sse = SseClient::connect(addr, "/api/v1/stream", &[]).await;
    assert_eq!(sse.head().await, 200);
    let snap = sse.next().await.expect("snapshot");
    assert_eq!(snap.data["queues"].as_array().map(Vec::len), Some(2));
    let before = sim.stats();
    let reconnects_before = reconnects(&scrape(&http, addr).await);

    // 1. SIGHUP with a third queue added.
    write(&[&ids[0], &ids[1], &ids[2]], "");
    p.signal("HUP");
    let want: BTreeSet<String> = ids[..3].iter().cloned().collect();
    until("the added queue on /metrics, seeded", async || {
        let text = scrape(&http, addr).await;
        exported(&text) == want
            && prom::parse(&text)
                .iter()
                .any(|s| s.name == "genesys_queue_member_agents" && s.labels["queue_id"] == ids[2])
    })
    .await;
    // The stream client stays connected and is told about the new queue.
    let added = tokio::time::timeout(WAIT, async {
        loop {
            let e = sse.next().await.expect("the stream stays open");
            if e.event == "delta" && e.data["queues"].get(&ids[2]).is_some() {
                return e;
            }
        }
    })
    .await
    .expect("a delta adding the queue");
    assert_eq!(added.data["removed"].as_array().map(Vec::len), Some(0));
    until("the simulator's channel subscribed to the new queue", async || {
        sim.stats().channel_list.iter().any(|c| c.queue_ids.contains(&ids[2]))
    })
    .await;

    // 2. A bad edit over POST /-/reload: 500 naming the field; the running configuration stays.
    write(&[&ids[0]], "api:\n  budget_share: 7\n");
    let r = http.post(format!("http://{addr}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.starts_with("failed to reload config: ") && body.contains("api.budget_share"), "{body}");
    let text = scrape(&http, addr).await;
    assert_eq!(exported(&text), want, "the old queue list is kept");
    let samples = prom::parse(&text);
    assert_eq!(prom::value(&samples, "genesys_config_reloads_total", &[("result", "failure")]), Some(1.0));
    assert_eq!(prom::value(&samples, "genesys_config_reloads_total", &[("result", "success")]), Some(1.0));
    assert_eq!(prom::value(&samples, "genesys_config_last_reload_successful", &[]), Some(0.0));

    // 3. A good one over POST /-/reload: two queues removed.
    write(&[&ids[0]], "");
    let r = http.post(format!("http://{addr}/-/reload")).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("queues.include"), "{body}");
    let want: BTreeSet<String> = ids[..1].iter().cloned().collect();
    until("the removed queues gone", async || exported(&scrape(&http, addr).await) == want).await;
    let removed = tokio::time::timeout(WAIT, async {
        loop {
            let e = sse.next().await.expect("the stream stays open");
            if e.event == "delta" && e.data["removed"].as_array().is_some_and(|r| !r.is_empty()) {
                return e;
            }
        }
    })
    .await
    .expect("a delta removing queues");
    assert!(removed.data["removed"].as_array().unwrap().iter().any(|r| r == &ids[1] || r == &ids[2]));
    let text = scrape(&http, addr).await;
    let samples = prom::parse(&text);
    assert_eq!(prom::value(&samples, "genesys_config_last_reload_successful", &[]), Some(1.0));
    assert_eq!(prom::value(&samples, "genesys_config_reloads_total", &[("result", "success")]), Some(2.0));

    // Nothing reconnected: the same socket and channel carried the changes.
    let after = sim.stats();
    assert_eq!(after.sockets_opened, before.sockets_opened, "no new socket");
    assert_eq!(after.channels_created, before.channels_created, "no new channel");
    assert_eq!(reconnects(&text), reconnects_before, "genesys_notification_reconnects_total unchanged");
    let channel = after.channel_list.iter().find(|c| c.connected).expect("a connected channel");
    assert_eq!(channel.queue_ids, vec![ids[0].clone()], "unsubscribed from the removed queues");

    // The refusal is in the log with the field; GET is not a reload.
    let logs = p.stderr();
    let refused = support::bin::log_lines(&logs, "configuration reload refused");
    assert!(refused.iter().any(|l| l["field"] == "api.budget_share"), "{logs}");
    assert_eq!(support::bin::log_lines(&logs, "SIGHUP: reloading").len(), 1);
    let r = http.get(format!("http://{addr}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 405);

    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(0));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_web_config_and_the_log_level() {
    let sim = support::start_sim(support::org(2, 0.0)).await;
    let web = temp_file("web");
    let users = |user: &str| {
        let hash = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(&web.0, format!("basic_auth_users:\n  {user}: '{hash}'\n")).unwrap();
    };
    users("alice");
    let cfg = temp_file("log");
    std::fs::write(&cfg.0, "log:\n  level: warn\n").unwrap();
    let (web_path, cfg_path) = (web.0.to_str().unwrap().to_owned(), cfg.0.to_str().unwrap().to_owned());
    let mut p = Proc::spawn(
        &[
            "run",
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            "--web.config.file",
            &web_path,
            "--config.file",
            &cfg_path,
        ],
        &sim_env(&sim.base_url(), "sim-secret"),
    );
    // log.level warn hides the info lines, the address among them: find the port from /proc instead.
    let addr = {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(a) = listening_port(p.child.id()) {
                break a;
            }
            assert!(Instant::now() < deadline, "never listened:\n{}", p.stderr());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let http = reqwest::Client::new();
    let status = async |user: &str| {
        http.get(format!("http://{addr}/healthz")).basic_auth(user, Some("pw")).send().await.unwrap().status()
    };
    assert_eq!(status("alice").await, 200);
    assert_eq!(status("bob").await, 401);
    assert!(support::bin::log_lines(&p.stderr(), "configuration reloaded").is_empty());

    users("bob");
    std::fs::write(&cfg.0, "log:\n  level: info\n").unwrap();
    p.signal("HUP");
    until("bob let in", async || status("bob").await == 200).await;
    assert_eq!(status("alice").await, 401, "alice is gone with the old file");
    // The info line of the reload itself shows the new level is in force.
    until("the reload logged at info", async || {
        !support::bin::log_lines(&p.stderr(), "configuration reloaded").is_empty()
    })
    .await;
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(0));
    sim.shutdown().await;
}

/// The TCP port process `pid` listens on, from /proc (its sockets' inodes matched against /proc/net/tcp).
fn listening_port(pid: u32) -> Option<std::net::SocketAddr> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // state 0A = LISTEN
        if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
            let port = u16::from_str_radix(f[1].split(':').nth(1)?, 16).ok()?;
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        } else {
            None
        }
    })
}
