//! Stream fan-out cost: does a crowd of `/api/v1/stream` clients (one of them never reading) slow the path from a
//! change to `/metrics`?
//!
//! One process: the exporter's HTTP server on a store of 50 queues, then the same run twice — without stream
//! clients, and with N SSE clients (N−1 reading, one with a 4 KiB window that never reads). A round applies 5
//! changes (~1 KB deltas each) and times the last one: `Store::apply` itself, event → visible in a `/metrics`
//! scrape (a new connection per scrape, as Prometheus does), and event → received by every reading client.
//! 200 changes a second, so the slow client's buffers fill and it is dropped during the run.
//!
//! Server, clients and the measuring scraper run on separate runtimes (see [`run`]).
//!
//! `cargo bench --bench stream_clients` prints the table; `-- --quick` is a few seconds with 50 clients.

#[path = "../tests/support/live.rs"]
#[allow(dead_code)]
mod live;

use genesys_cloud_exporter::exposition::AppState;
use genesys_cloud_exporter::state::Store;
use live::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const QUEUES: usize = 50;

struct Figures {
    apply: Vec<Duration>,
    to_metrics: Vec<Duration>,
    to_clients: Vec<Duration>,
    dropped: u64,
    complete: usize,
}

/// `genesys_queue_waiting{…queue_id="<id>"…media_type="voice"…}` from a scrape.
fn waiting_voice(text: &str, id: &str) -> Option<f64> {
    let q = format!("queue_id=\"{id}\"");
    text.lines()
        .filter(|l| l.starts_with("genesys_queue_waiting{") && l.contains(&q) && l.contains("media_type=\"voice\""))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The server, the stream clients and the measuring scraper each get their own runtime, so that what the figures
/// show is the server's own work competing with its scrapes, not the readers' (which in real life run elsewhere;
/// here they still share the machine's cores).
fn run(clients: usize, rounds: usize) -> Figures {
    let rt = |threads| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("runtime")
    };
    // The readers stand in for clients on other machines: their threads get the lowest CPU priority, so the
    // server and the scraper are not queued behind the readers' own parsing.
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(lowest_priority)
        .build()
        .expect("runtime");
    let server_rt = rt(2);
    let main_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = Store::default();
    store.set_queues((0..QUEUES).map(|q| meta(&format!("q{q}"), &format!("Queue {q}"), "D")).collect());
    let mut app: Option<AppState> = None;
    let srv = server_rt.block_on(start(store.clone(), |a| {
        app = Some(a.clone());
        a
    }));
    let app = app.expect("configured");
    let (slow, readers, progress) = client_rt.block_on(connect(srv.addr, clients));
    let f = main_rt.block_on(measure(&store, srv.addr, rounds, clients, &progress));
    let f = Figures { dropped: app.stream_clients_dropped(), ..f };
    let target = store.live().version();
    drop(srv);
    let complete = client_rt.block_on(async {
        let mut complete = 0;
        for r in readers {
            if let Ok(Ok((first, d))) = tokio::time::timeout(Duration::from_secs(30), r).await {
                if d as u64 >= target - first {
                    complete += 1;
                }
            }
        }
        complete
    });
    drop(slow);
    Figures { complete, ..f }
}

/// `renice` the calling thread (Linux: nice values are per thread; `/proc/thread-self` names its id).
fn lowest_priority() {
    if let Some(tid) = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    {
        let _ = std::process::Command::new("renice")
            .args(["-n", "19", "-p", &tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

type Readers = Vec<tokio::task::JoinHandle<(u64, usize)>>;

async fn connect(addr: std::net::SocketAddr, clients: usize) -> (Option<SseClient>, Readers, Arc<Vec<AtomicU64>>) {
    let mut slow = None;
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..clients.saturating_sub(1)).map(|_| AtomicU64::new(0)).collect());
    let mut readers = Vec::new();
    if clients > 0 {
        let mut s = SseClient::over(tiny_window(addr).await, "/api/v1/stream", &[]).await;
        assert_eq!(s.head().await, 200);
        slow = Some(s);
        for i in 0..clients - 1 {
            let mut c = SseClient::connect(addr, "/api/v1/stream", &[]).await;
            assert_eq!(c.head().await, 200);
            c.parse = false;
            let progress = progress.clone();
            readers.push(tokio::spawn(async move {
                let (mut first, mut deltas) = (0, 0usize);
                while let Some(e) = c.next().await {
                    if e.event == "error" {
                        let reason = e.data["reason"].as_str().unwrap_or_default();
                        assert!(reason.contains("shutting down"), "reader {i} dropped: {reason}");
                        break;
                    }
                    if let Some(id) = e.id {
                        if e.event == "snapshot" {
                            first = id;
                        }
                        deltas += usize::from(e.event == "delta");
                        progress[i].store(id, Ordering::Release);
                    }
                }
                (first, deltas)
            }));
        }
    }
    (slow, readers, progress)
}

async fn measure(
    store: &Store,
    addr: std::net::SocketAddr,
    rounds: usize,
    clients: usize,
    progress: &[AtomicU64],
) -> Figures {
    let mut f = Figures { apply: vec![], to_metrics: vec![], to_clients: vec![], dropped: 0, complete: 0 };
    let started = Instant::now();
    for round in 0..rounds {
        for k in 0..4 {
            store.apply(bulky_update(&format!("q{}", (round * 5 + k) % QUEUES), round, 50));
        }
        let id = format!("q{}", (round * 5 + 4) % QUEUES);
        let mut u = bulky_update(&id, round, 50);
        let value = (round % 1000) as f64 + 1000.0;
        u.groups[0].observations[0].value = Some(value);
        let t0 = Instant::now();
        store.apply(u);
        f.apply.push(t0.elapsed());
        let version = store.live().version();
        loop {
            let r = get(addr, "/metrics", &[]).await;
            if waiting_voice(&r.body, &id) == Some(value) {
                f.to_metrics.push(t0.elapsed());
                break;
            }
        }
        if clients > 1 {
            while progress.iter().any(|p| p.load(Ordering::Acquire) < version) {
                if t0.elapsed() > Duration::from_secs(10) {
                    panic!("a reading client is 10 s behind");
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            f.to_clients.push(t0.elapsed());
        }
        // 5 changes per 25 ms: 200 changes a second.
        let next = started + Duration::from_millis(25 * (round as u64 + 1));
        tokio::time::sleep_until(next.into()).await;
    }
    f
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (p50, p99, max) in ms.
fn pct(v: &[Duration]) -> String {
    if v.is_empty() {
        return "— | — | —".to_owned();
    }
    let mut v = v.to_vec();
    v.sort();
    format!("{:.3} | {:.3} | {:.3}", ms(v[v.len() / 2]), ms(v[v.len() * 99 / 100]), ms(v[v.len() - 1]))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (clients, rounds) = if quick { (50, 120) } else { (500, 400) };
    println!(
        "| stream clients | apply p50 | p99 | max (ms) | event → /metrics p50 | p99 | max (ms) | event → every client p50 | p99 | max (ms) | slow one dropped | readers with every change |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|");
    for n in [0, clients] {
        let f = run(n, rounds);
        println!(
            "| {n} | {} | {} | {} | {} | {} |",
            pct(&f.apply),
            pct(&f.to_metrics),
            pct(&f.to_clients),
            if n == 0 { "—".to_owned() } else { format!("{} of 1", f.dropped) },
            if n == 0 { "—".to_owned() } else { format!("{} of {}", f.complete, n - 1) },
        );
        if n > 0 {
            assert_eq!(f.dropped, 1, "the slow client is dropped, and only it");
            assert_eq!(f.complete, n - 1, "every reading client got every change");
        }
    }
}
