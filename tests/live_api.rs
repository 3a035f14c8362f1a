//! The live JSON API on a real server: snapshot (ETag, since, filters, removed), the stream (SSE and WebSocket:
//! deltas rebuild the snapshot, resume, ids unique across restarts, cap, a slow client among 500 is dropped with
//! a reason while the others get every change).

#[path = "support/live.rs"]
mod live;

use futures_util::StreamExt;
use genesys_cloud_exporter::model::Source;
use genesys_cloud_exporter::state::snapshot::apply_merge_patch;
use genesys_cloud_exporter::state::Store;
use live::*;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn store3() -> Store {
    let store = Store::default();
    store.set_queues(vec![
        meta("q1", "Sales EU", "Main"),
        meta("q2", "Sales US", "Main"),
        meta("q3", "Support", "Care"),
    ]);
    store.apply(update("q1", 3.0, Some(1_700_000_000_000), 2.0));
    store.set_stale("q1", false);
    store
}

#[tokio::test]
async fn snapshot_has_every_queue_with_etag_since_filters_and_removals() {
    let store = store3();
    let srv = start(store.clone(), |a| a).await;
    let r = get(srv.addr, "/api/v1/snapshot", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    let s = r.json();
    let v0 = s["version"].as_u64().unwrap();
    assert_eq!(v0, store.version());
    assert_eq!(s["full"], true);
    let qs = tracked(&s["queues"]);
    assert_eq!(qs.len(), 3);
    let q1 = &qs["q1"];
    assert_eq!(q1["name"], "Sales EU");
    assert_eq!(q1["division"], "Main");
    assert_eq!(q1["division_id"], "Main-id");
    assert_eq!(q1["media"]["voice"]["waiting"], 3);
    assert_eq!(q1["media"]["voice"]["longest_waiting_start_ms"], 1_700_000_000_000i64);
    assert_eq!(q1["agents"]["on_queue"]["idle"], 2);
    assert_eq!(q1["source"], "stream");
    assert_eq!(q1["stale"], false);
    assert_eq!(qs["q2"]["stale"], true, "nothing confirmed q2 yet");
    assert!(s["queues"][0]["data_age_seconds"].is_number());

    // ETag / If-None-Match.
    let etag = r.header("etag").unwrap();
    let r304 = get(srv.addr, "/api/v1/snapshot", &[("If-None-Match", &etag)]).await;
    assert_eq!(r304.status, 304);
    store.apply(update("q2", 1.0, None, 0.0));
    let r2 = get(srv.addr, "/api/v1/snapshot", &[("If-None-Match", &etag)]).await;
    assert_eq!(r2.status, 200);
    assert_ne!(r2.header("etag").unwrap(), etag);

    // since: only q2 changed; then q3 is removed.
    let d = get(srv.addr, &format!("/api/v1/snapshot?since={v0}"), &[]).await.json();
    assert_eq!(d["full"], false);
    assert_eq!(tracked(&d["queues"]).keys().collect::<Vec<_>>(), vec!["q2"]);
    let v1 = d["version"].as_u64().unwrap();
    store.set_queues(vec![meta("q1", "Sales EU", "Main"), meta("q2", "Sales US", "Main")]);
    let d = get(srv.addr, &format!("/api/v1/snapshot?since={v1}"), &[]).await.json();
    assert_eq!(d["removed"], serde_json::json!(["q3"]));
    assert!(d["queues"].as_array().unwrap().is_empty());
    let d = get(srv.addr, &format!("/api/v1/snapshot?since={v0}"), &[]).await.json();
    assert_eq!(d["removed"], serde_json::json!(["q3"]), "a removal stays visible to older readers");

    // Filters: name glob or id, division name or id.
    let f = |q: &str| {
        let addr = srv.addr;
        let q = q.to_owned();
        async move {
            let s = get(addr, &format!("/api/v1/snapshot?{q}"), &[]).await.json();
            tracked(&s["queues"]).into_keys().collect::<Vec<_>>()
        }
    };
    assert_eq!(f("queue=Sales%20E*").await, vec!["q1"]);
    assert_eq!(f("queue=q2").await, vec!["q2"]);
    assert_eq!(f("queue=Sales*&division=Main-id").await, vec!["q1", "q2"]);
    assert!(f("division=Care").await.is_empty());
    assert_eq!(get(srv.addr, "/api/v1/snapshot?since=abc", &[]).await.status, 400);
}

/// One operation of the property test.
#[derive(Debug, Clone)]
enum Op {
    Apply { q: usize, waiting: u8, since: Option<u8>, idle: u8 },
    Remove(usize),
    Add(usize),
    Stale(usize, bool),
    Source(usize, bool),
    Rename(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, 0..5u8, proptest::option::of(0..3u8), 0..4u8)
            .prop_map(|(q, waiting, since, idle)| Op::Apply { q, waiting, since, idle }),
        1 => (0..4usize).prop_map(Op::Remove),
        1 => (0..4usize).prop_map(Op::Add),
        1 => (0..4usize, any::<bool>()).prop_map(|(q, s)| Op::Stale(q, s)),
        1 => (0..4usize, any::<bool>()).prop_map(|(q, s)| Op::Source(q, s)),
        1 => (0..4usize, 0..3u8).prop_map(|(q, n)| Op::Rename(q, n)),
    ]
}

fn id(q: usize) -> String {
    format!("q{q}")
}

async fn ws_connect(addr: std::net::SocketAddr) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, resp) = tokio_tungstenite::client_async(format!("ws://{addr}/api/v1/stream"), tcp).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

async fn ws_next(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Apply a stream message to a client-side state; returns the message's version.
fn fold(state: &mut BTreeMap<String, Value>, msg: &Value) -> u64 {
    match msg["type"].as_str().unwrap() {
        "snapshot" => *state = tracked(&msg["queues"]),
        "delta" => {
            for (id, patch) in msg["queues"].as_object().unwrap() {
                let t = state.entry(id.clone()).or_insert(Value::Null);
                apply_merge_patch(t, patch);
            }
            for id in msg["removed"].as_array().unwrap() {
                state.remove(id.as_str().unwrap());
            }
        }
        _ => return 0,
    }
    msg["version"].as_u64().unwrap()
}

async fn deltas_rebuild_the_snapshot(ops: Vec<Op>) {
    let store = Store::default();
    let mut dir: BTreeMap<usize, (String, String)> =
        (0..3).map(|q| (q, (format!("Queue {q}"), "D".to_owned()))).collect();
    let set = |dir: &BTreeMap<usize, (String, String)>| {
        store.set_queues(dir.iter().map(|(q, (n, d))| meta(&id(*q), n, d)).collect());
    };
    set(&dir);
    let srv = start(store.clone(), |a| a).await;
    let mut sse = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
    assert_eq!(sse.head().await, 200);
    let mut ws = ws_connect(srv.addr).await;
    let mut sse_state = BTreeMap::new();
    let mut ws_state = BTreeMap::new();
    let first = sse.next().await.unwrap();
    assert_eq!(first.event, "snapshot");
    fold(&mut sse_state, &first.data);
    let ws_first = fold(&mut ws_state, &ws_next(&mut ws).await.unwrap());
    for op in ops {
        match op {
            Op::Apply { q, waiting, since, idle } => {
                store.apply(update(&id(q), waiting as f64, since.map(|s| 1_000 * s as i64), idle as f64));
            }
            Op::Remove(q) => {
                dir.remove(&q);
                set(&dir);
            }
            Op::Add(q) => {
                dir.entry(q).or_insert_with(|| (format!("Queue {q}"), "D".to_owned()));
                set(&dir);
            }
            Op::Stale(q, s) => store.set_stale(&id(q), s),
            Op::Source(q, s) => store.set_source(&id(q), if s { Source::Poll } else { Source::Stream }),
            Op::Rename(q, n) => {
                if let Some(e) = dir.get_mut(&q) {
                    *e = (format!("Queue {q}.{n}"), format!("D{n}"));
                }
                set(&dir);
            }
        }
    }
    let target = store.live().version();
    let mut seen = first.id.unwrap();
    while seen < target {
        let e = tokio::time::timeout(Duration::from_secs(10), sse.next()).await.unwrap().unwrap();
        let v = fold(&mut sse_state, &e.data);
        if e.event == "delta" {
            assert_eq!(e.id, Some(v), "event id = store version");
        }
        seen = seen.max(v);
    }
    let mut seen = ws_first;
    while seen < target {
        let m = tokio::time::timeout(Duration::from_secs(10), ws_next(&mut ws)).await.unwrap().unwrap();
        seen = seen.max(fold(&mut ws_state, &m));
    }
    let latest = get(srv.addr, "/api/v1/snapshot", &[]).await.json();
    assert_eq!(latest["version"].as_u64().unwrap(), target);
    let want = tracked(&latest["queues"]);
    assert_eq!(sse_state, want, "SSE: snapshot + deltas = latest snapshot");
    assert_eq!(ws_state, want, "WebSocket: snapshot + deltas = latest snapshot");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
    #[test]
    fn stream_deltas_applied_to_the_first_snapshot_equal_the_latest_snapshot(ops in proptest::collection::vec(op(), 0..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(deltas_rebuild_the_snapshot(ops));
    }
}

#[tokio::test]
async fn last_event_id_resumes_with_deltas_or_a_fresh_snapshot() {
    let store = store3();
    let srv = start(store.clone(), |a| a).await;
    let mut c = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
    c.head().await;
    let snap = c.next().await.unwrap();
    let v = snap.id.unwrap();
    drop(c);
    store.apply(update("q1", 7.0, None, 1.0));
    store.set_stale("q3", false);
    let mut c = SseClient::connect(srv.addr, "/api/v1/stream", &[("Last-Event-ID", &v.to_string())]).await;
    c.head().await;
    let a = c.next().await.unwrap();
    let b = c.next().await.unwrap();
    assert_eq!((a.event.as_str(), a.id), ("delta", Some(v + 1)));
    assert_eq!((b.event.as_str(), b.id), ("delta", Some(v + 2)));
    assert_eq!(a.data["queues"]["q1"]["media"]["voice"]["waiting"], 7);
    assert!(a.data["queues"]["q1"].get("name").is_none(), "a delta carries only changed fields");
    assert_eq!(b.data["queues"]["q3"]["stale"], false);
    // An id from the future (e.g. before a restart) gets a snapshot.
    let mut c = SseClient::connect(srv.addr, "/api/v1/stream", &[("Last-Event-ID", "999999")]).await;
    c.head().await;
    assert_eq!(c.next().await.unwrap().event, "snapshot");
}

#[tokio::test]
async fn stream_clients_beyond_the_cap_get_503() {
    let srv = start(store3(), |a| a.with_stream_limits(2, 16)).await;
    let mut a = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
    let mut b = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
    assert_eq!(a.head().await, 200);
    assert_eq!(b.head().await, 200);
    let mut c = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
    assert_eq!(c.head().await, 503);
    drop(a);
    // The slot frees once the server notices the closed connection.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store3();
        let mut d = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
        if d.head().await == 200 {
            ok = true;
            break;
        }
    }
    let _ = b.next().await;
    assert!(ok, "a closed client's slot is released");
}

/// Bulky changes (~1 KB deltas) on a plain thread until `done` (or 60 s); returns how many. A batch waits until
/// `caught_up(version)`: the readers share 2 cores with the server (and a debug build), so without this a reader
/// starved of CPU would fall 256 messages behind and be dropped like the slow one.
fn churn_until(store: &Store, done: impl Fn() -> bool, caught_up: impl Fn(u64) -> bool) -> usize {
    let t0 = Instant::now();
    let mut n = 0;
    while !done() && t0.elapsed() < Duration::from_secs(60) {
        while !caught_up(store.live().version()) && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(2));
        }
        for _ in 0..5 {
            store.apply(bulky_update(&format!("q{}", n % 50), n, 50));
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    n
}

/// What a fast reader saw: the last version, the deltas, and (for parsing readers) the rebuilt state.
type Seen = (u64, usize, BTreeMap<String, Value>);

/// Check one message of a fast reader: deltas come one per version, none missing.
fn next_version(last: &mut u64, kind: &str, version: u64, who: &str) {
    if kind == "delta" && *last > 0 {
        assert_eq!(version, *last + 1, "{who}: a change went missing");
    }
    *last = (*last).max(version);
}

/// Timing figures for this scenario come from `cargo bench --bench stream_clients`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_and_a_slow_one_is_dropped_with_a_reason_while_the_others_get_every_change() {
    const CLIENTS: usize = 500;
    const WS_CLIENTS: usize = 20;
    let store = Store::default();
    store.set_queues((0..50).map(|q| meta(&format!("q{q}"), &format!("Queue {q}"), "D")).collect());
    let mut app = None;
    let srv = start(store.clone(), |a| {
        app = Some(a.clone());
        a
    })
    .await;
    let app = app.unwrap();

    // The slow client: a tiny receive window, and after the response head it never reads.
    let mut slow = SseClient::over(tiny_window(srv.addr).await, "/api/v1/stream", &[]).await;
    assert_eq!(slow.head().await, 200);

    let mut readers: Vec<tokio::task::JoinHandle<Seen>> = Vec::new();
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..CLIENTS - 1).map(|_| AtomicU64::new(0)).collect());
    for i in 0..CLIENTS - 1 {
        let addr = srv.addr;
        let progress = progress.clone();
        if i < WS_CLIENTS {
            let mut ws = ws_connect(addr).await;
            readers.push(tokio::spawn(async move {
                let (mut state, mut last, mut deltas) = (BTreeMap::new(), 0, 0);
                while let Some(m) = ws_next(&mut ws).await {
                    assert_ne!(m["type"], "error", "WS client {i} dropped: {m}");
                    deltas += usize::from(m["type"] == "delta");
                    let v = fold(&mut state, &m);
                    if v > 0 {
                        next_version(&mut last, m["type"].as_str().unwrap(), v, &format!("WS client {i}"));
                        progress[i].store(last, Ordering::Release);
                    }
                    if deltas > 0 && last >= FINAL.load(Ordering::Acquire) {
                        break;
                    }
                }
                (last, deltas, state)
            }));
        } else {
            let mut c = SseClient::connect(addr, "/api/v1/stream", &[]).await;
            assert_eq!(c.head().await, 200, "client {i}");
            // A few readers rebuild the state; the others only check ids (the test's JSON parsing is most of the CPU).
            c.parse = i < WS_CLIENTS + 5;
            readers.push(tokio::spawn(async move {
                let (mut state, mut last, mut deltas) = (BTreeMap::new(), 0, 0);
                while let Some(e) = c.next().await {
                    assert_ne!(e.event, "error", "SSE client {i} dropped: {}", e.data);
                    deltas += usize::from(e.event == "delta");
                    if c.parse {
                        fold(&mut state, &e.data);
                    }
                    if let Some(id) = e.id {
                        next_version(&mut last, &e.event, id, &format!("SSE client {i}"));
                        progress[i].store(last, Ordering::Release);
                    }
                    if deltas > 0 && last >= FINAL.load(Ordering::Acquire) {
                        break;
                    }
                }
                (last, deltas, state)
            }));
        }
    }
    let first = store.live().version();

    // Change until the slow client is dropped.
    let (s, a, p) = (store.clone(), app.clone(), progress.clone());
    let caught_up = move |v: u64| p.iter().all(|r| r.load(Ordering::Acquire) + 100 >= v);
    let changes = tokio::task::spawn_blocking(move || churn_until(&s, || a.stream_clients_dropped() > 0, caught_up))
        .await
        .unwrap();
    assert_eq!(app.stream_clients_dropped(), 1, "the slow client is dropped, and only it ({changes} changes)");
    eprintln!("slow client dropped after {changes} bulky changes");
    // It is told why once it reads (within the close timeout), then the server closes the connection.
    slow.parse = false;
    let slow_reader = tokio::spawn(async move {
        let mut reason = None;
        while let Some(e) = tokio::time::timeout(Duration::from_secs(20), slow.next()).await.expect("stream ends") {
            if e.event == "error" {
                reason = e.data["reason"].as_str().map(str::to_owned);
            }
        }
        reason
    });

    let target = store.live().version();
    FINAL.store(target, Ordering::Release);
    // One more change so that a reader parked exactly at the target wakes up and sees FINAL.
    store.apply(update("q0", 99.0, None, 0.0));
    let want = tracked(&get(srv.addr, "/api/v1/snapshot", &[]).await.json()["queues"]);

    let reason = slow_reader.await.unwrap().expect("the slow client was told why it was dropped");
    assert!(reason.contains("too slow"), "{reason}");
    for r in readers {
        let (last, deltas, state) = tokio::time::timeout(Duration::from_secs(120), r).await.unwrap().unwrap();
        assert!(last >= target, "every fast client got every change");
        assert!(deltas as u64 >= target - first, "every change arrived as a delta ({deltas})");
        if last == target + 1 && !state.is_empty() {
            assert_eq!(state, want, "snapshot + deltas = latest snapshot");
        }
    }
    assert_eq!(app.stream_clients_dropped(), 1, "no fast client was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_gets_a_close_frame_with_the_reason() {
    let store = Store::default();
    store.set_queues((0..50).map(|q| meta(&format!("q{q}"), &format!("Queue {q}"), "D")).collect());
    let mut app = None;
    let srv = start(store.clone(), |a| {
        app = Some(a.with_stream_limits(10, 16));
        app.clone().unwrap()
    })
    .await;
    let app = app.unwrap();
    let tcp = tiny_window(srv.addr).await;
    let (mut ws, resp) =
        tokio_tungstenite::client_async(format!("ws://{}/api/v1/stream", srv.addr), tcp).await.unwrap();
    assert_eq!(resp.status(), 101);
    let (s, a) = (store.clone(), app.clone());
    let changes = tokio::task::spawn_blocking(move || churn_until(&s, || a.stream_clients_dropped() > 0, |_| true))
        .await
        .unwrap();
    assert_eq!(app.stream_clients_dropped(), 1, "dropped after {changes} changes");
    let close = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(f)) => return f,
                Ok(_) => {}
                Err(e) => panic!("WebSocket error before the close frame: {e}"),
            }
        }
        None
    })
    .await
    .expect("a close frame");
    let close = close.expect("the close frame has a reason");
    assert_eq!(close.code, tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy);
    assert!(close.reason.contains("too slow"), "{}", close.reason);
}

#[tokio::test]
async fn an_event_id_from_before_a_restart_gets_a_fresh_snapshot() {
    let before = store3();
    for i in 0..20 {
        before.apply(update("q1", i as f64, None, 1.0));
    }
    let old_id = before.live().version();
    std::thread::sleep(Duration::from_millis(5));
    // The restarted exporter: same queues, a few changes (so its own versions overlap small old counters).
    let after = store3();
    after.apply(update("q2", 4.0, None, 1.0));
    assert!(after.live().version() > old_id, "versions of a later process lie above an earlier one's");
    let srv = start(after.clone(), |a| a).await;
    for header in [("Last-Event-ID", old_id.to_string()), ("Last-Event-ID", "3".to_owned())] {
        let mut c = SseClient::connect(srv.addr, "/api/v1/stream", &[(header.0, &header.1)]).await;
        assert_eq!(c.head().await, 200);
        let e = c.next().await.unwrap();
        assert_eq!(e.event, "snapshot", "a foreign id {} resumes with a snapshot", header.1);
        assert_eq!(e.id, Some(after.live().version()));
        assert_eq!(tracked(&e.data["queues"]).len(), 3);
    }
    // The same for ?since= (WebSocket clients resume that way) and the snapshot API.
    let d = get(srv.addr, &format!("/api/v1/snapshot?since={old_id}"), &[]).await.json();
    assert_eq!(d["full"], true, "{d}");
}

static FINAL: AtomicU64 = AtomicU64::new(u64::MAX);

/// The inode of a TCP socket of this process on `local_port`: connected to `remote_port`, or listening.
fn socket_inode(local_port: u16, remote_port: Option<u16>) -> Option<String> {
    let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
    std::fs::read_to_string("/proc/net/tcp").ok()?.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let remote_ok = match remote_port {
            Some(r) => port(f[2]) == Some(r),
            None => f[3] == "0A",
        };
        (port(f[1]) == Some(local_port) && remote_ok).then(|| f[9].to_owned())
    })
}

/// This process's fd of the socket with `inode`.
fn fd_of_socket(inode: &str) -> Option<String> {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir("/proc/self/fd").unwrap().flatten().find_map(|e| {
        (std::fs::read_link(e.path()).ok()?.to_string_lossy() == want)
            .then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// The fds each epoll instance of this process watches: one instance per runtime's I/O driver (a driver holds
/// several fds of its instance; they show the same set and count once).
fn epoll_watch_sets() -> Vec<std::collections::BTreeSet<String>> {
    let mut sets: Vec<std::collections::BTreeSet<String>> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]"))
        .filter_map(|e| {
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{}", e.file_name().to_string_lossy())).ok()?;
            Some(
                info.lines()
                    .filter_map(|l| Some(l.strip_prefix("tfd:")?.split_whitespace().next()?.to_owned()))
                    .collect(),
            )
        })
        .collect();
    sets.sort();
    sets.dedup();
    sets
}

/// (nice value) of this process's threads named `name`.
fn nice_of_threads(name: &str) -> Vec<i64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()
        })
        .collect()
}

/// The live API must never slow the collector or scrapes: its connections leave the server's runtime for a
/// thread of their own at a lower priority (sockets and all), while `/metrics` stays where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_connections_move_to_their_own_lower_priority_thread_and_still_end_promptly_at_shutdown() {
    let store = store3();
    let srv = start(store.clone(), |a| a).await;
    let port = srv.addr.port();
    let mut sse = SseClient::connect(srv.addr, "/api/v1/stream", &[]).await;
    assert_eq!(sse.head().await, 200);
    assert_eq!(sse.next().await.unwrap().event, "snapshot");
    let mut ws = ws_connect(srv.addr).await;
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "snapshot");
    // A keep-alive connection that scrapes stays on the server's runtime.
    let mut scraper = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        scraper.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr).as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = scraper.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    }

    let nice: Vec<i64> = nice_of_threads("live-api");
    assert_eq!(nice.len(), 1, "one thread for the server's stream clients");
    let own: i64 = {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        stat.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap().parse().unwrap()
    };
    assert_eq!(nice[0], (own + 10).min(19), "the stream clients' thread runs nicer than the rest");

    let fd = |local: u16, remote: Option<u16>| fd_of_socket(&socket_inode(local, remote).unwrap()).unwrap();
    let listener = fd(port, None);
    let scrape = fd(port, Some(scraper.local_addr().unwrap().port()));
    let sse_fd = fd(port, Some(sse.stream.local_addr().unwrap().port()));
    let ws_fd = fd(port, Some(ws.get_ref().local_addr().unwrap().port()));
    let sets = epoll_watch_sets();
    let together = |a: &str, b: &str| sets.iter().any(|s| s.contains(a) && s.contains(b));
    assert!(together(&listener, &scrape), "a scrape's connection stays on the server's runtime: {sets:?}");
    for (what, stream) in [("SSE", &sse_fd), ("WebSocket", &ws_fd)] {
        assert_eq!(sets.iter().filter(|s| s.contains(stream)).count(), 1, "{what}: watched by one runtime: {sets:?}");
        assert!(!together(&listener, stream), "{what}: the socket moved to the stream clients' runtime: {sets:?}");
    }
    assert!(together(&sse_fd, &ws_fd), "both on the same (stream clients') runtime: {sets:?}");

    // Still live there, and shutdown still ends both at once, with the reason.
    store.apply(update("q2", 5.0, None, 1.0));
    assert_eq!(sse.next().await.unwrap().event, "delta");
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "delta");
    let t0 = Instant::now();
    srv.shutdown.cancel();
    let e = tokio::time::timeout(Duration::from_secs(5), sse.next()).await.unwrap().unwrap();
    assert_eq!(e.event, "error");
    assert_eq!(e.data["reason"], "server shutting down");
    assert!(tokio::time::timeout(Duration::from_secs(5), sse.next()).await.unwrap().is_none(), "the SSE stream ends");
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f,
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .unwrap()
    .expect("a close frame with the reason");
    assert_eq!(close.reason, "server shutting down");
    assert!(t0.elapsed() < Duration::from_secs(3), "prompt: {:?}", t0.elapsed());
}
