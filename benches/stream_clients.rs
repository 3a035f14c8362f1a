//! Stream fan-out cost: does a crowd of `/api/v1/stream` clients (one of them never reading) slow the path from a
//! change to `/metrics`?
//!
//! One process: the exporter's HTTP server on a store of 50 queues, then the same run twice — without stream
//! clients, and with N SSE clients (N−1 reading, one with a 4 KiB window that never reads). A round applies 5
//! changes (~1 KB deltas each) and times the last one: `Store::apply` itself, event → visible in a `/metrics`
//! scrape (a new connection per scrape, as Prometheus does), and event → received by every reading client.
//! 200 changes a second, so the slow client's buffers fill and it is dropped during the run.
//!
//! Server, clients and the measuring scraper run on separate runtimes (see [`run`]). The runs alternate
//! (without, with, without, with) so that a change in the shared machine's load shows instead of passing for the
//! clients' cost; the last lines compare event → `/metrics` with and without clients over all runs.
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
    /// On-CPU time of the stream clients' thread (`live-api`) during the measured rounds, and its nice value.
    lane_cpu: Duration,
    lane_nice: Option<i64>,
    /// On-CPU time of the readers' threads (standing in for other machines) during the measured rounds.
    readers_cpu: Duration,
}

/// The process's threads named `name`: (on-CPU ns, nice) each, from `/proc/self/task`.
fn threads_named(name: &str) -> Vec<(u64, i64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| {
            let cpu =
                std::fs::read_to_string(t.path().join("schedstat")).ok()?.split_whitespace().next()?.parse().ok()?;
            // Field 19 of stat is the nice value; the command name (field 2) may hold spaces, so count after ')'.
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let nice = stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()?;
            Some((cpu, nice))
        })
        .collect()
}

fn cpu_ns_of(name: &str) -> u64 {
    threads_named(name).iter().map(|t| t.0).sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
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
        .thread_name("bench-readers")
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
    let (lane0, readers0) = (cpu_ns_of("live-api"), cpu_ns_of("bench-readers"));
    let f = main_rt.block_on(measure(&store, srv.addr, rounds, clients, &progress));
    let lane_cpu = Duration::from_nanos(cpu_ns_of("live-api").saturating_sub(lane0));
    let readers_cpu = Duration::from_nanos(cpu_ns_of("bench-readers").saturating_sub(readers0));
    let lane_nice = threads_named("live-api").first().map(|t| t.1);
    let f = Figures { dropped: app.stream_clients_dropped(), lane_cpu, lane_nice, readers_cpu, ..f };
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

/// A fast reader that only takes ids and event names, reading into one reused buffer: the readers stand in for
/// clients on other machines, so what they cost this one should be as little as possible.
struct LeanReader {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    /// Where the unread events start in `buf`, and how far it was searched for an event's end.
    start: usize,
    scanned: usize,
}

impl LeanReader {
    async fn connect(addr: std::net::SocketAddr) -> LeanReader {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"GET /api/v1/stream HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n").await.expect("request");
        let mut r = LeanReader { stream, buf: Vec::with_capacity(1 << 16), start: 0, scanned: 0 };
        let head = loop {
            if let Some(p) = r.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            assert!(r.fill().await, "connection closed before the response head");
        };
        let status = String::from_utf8_lossy(&r.buf[..head]).into_owned();
        assert!(status.split(' ').nth(1) == Some("200"), "{status}");
        (r.start, r.scanned) = (head + 4, head + 4);
        r
    }

    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.reserve(1 << 16);
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// The next event: (id, event name, data); `None` at the end of the stream.
    async fn next(&mut self) -> Option<(Option<u64>, String, String)> {
        loop {
            let from = self.scanned.saturating_sub(1).max(self.start);
            if let Some(p) = self.buf[from..].windows(2).position(|w| w == b"\n\n") {
                let end = from + p;
                let block = std::str::from_utf8(&self.buf[self.start..end]).ok()?;
                let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        if kind == "error" {
                            data.push_str(v);
                        }
                    }
                }
                (self.start, self.scanned) = (end + 2, end + 2);
                return Some((id, kind, data));
            }
            self.scanned = self.buf.len();
            if !self.fill().await {
                return None;
            }
        }
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
            let mut c = LeanReader::connect(addr).await;
            let progress = progress.clone();
            readers.push(tokio::spawn(async move {
                let (mut first, mut deltas) = (0, 0usize);
                while let Some((id, kind, data)) = c.next().await {
                    if kind == "error" {
                        assert!(data.contains("shutting down"), "reader {i} dropped: {data}");
                        break;
                    }
                    if let Some(id) = id {
                        if kind == "snapshot" {
                            first = id;
                        }
                        deltas += usize::from(kind == "delta");
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
    let mut f = Figures {
        apply: vec![],
        to_metrics: vec![],
        to_clients: vec![],
        dropped: 0,
        complete: 0,
        lane_cpu: Duration::ZERO,
        lane_nice: None,
        readers_cpu: Duration::ZERO,
    };
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

/// The `q`-th quantile (0..=1) in ms.
fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).map_or(f64::NAN, |d| ms(*d))
}

/// (p50, p99, max) in ms.
fn pct(v: &[Duration]) -> String {
    if v.is_empty() {
        return "— | — | —".to_owned();
    }
    format!("{:.3} | {:.3} | {:.3}", quantile(v, 0.5), quantile(v, 0.99), quantile(v, 1.0))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (clients, rounds) = if quick { (50, 120) } else { (500, 400) };
    let phases: &[usize] = if quick { &[0, clients] } else { &[0, clients, 0, clients] };
    println!("load average before: {}", loadavg());
    println!(
        "| stream clients | apply p50 | p99 | max (ms) | event → /metrics p50 | p99 | max (ms) | event → every client p50 | p99 | max (ms) | slow one dropped | readers with every change | live-api thread CPU | its nice | readers' CPU |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|---:|---:|");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for &n in phases {
        let f = run(n, rounds);
        let seconds = rounds as f64 * 0.025;
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pct(&f.apply),
            pct(&f.to_metrics),
            pct(&f.to_clients),
            if n == 0 { "—".to_owned() } else { format!("{} of 1", f.dropped) },
            if n == 0 { "—".to_owned() } else { format!("{} of {}", f.complete, n - 1) },
            if n == 0 { "—".to_owned() } else { format!("{:.0} ms/s", ms(f.lane_cpu) / seconds) },
            f.lane_nice.map_or("—".to_owned(), |n| n.to_string()),
            if n == 0 { "—".to_owned() } else { format!("{:.0} ms/s", ms(f.readers_cpu) / seconds) },
        );
        if n > 0 {
            assert_eq!(f.dropped, 1, "the slow client is dropped, and only it");
            assert_eq!(f.complete, n - 1, "every reading client got every change");
            with.extend(f.to_metrics);
        } else {
            without.extend(f.to_metrics);
        }
    }
    println!("load average after: {}", loadavg());
    let (p50, p99) = (quantile(&without, 0.5), quantile(&without, 0.99));
    let (c50, c99) = (quantile(&with, 0.5), quantile(&with, 0.99));
    println!("event → /metrics without stream clients: p50 {p50:.2} ms, p99 {p99:.2} ms ({} rounds)", without.len());
    println!(
        "event → /metrics with {clients} (one slow):     p50 {c50:.2} ms, p99 {c99:.2} ms ({} rounds)",
        with.len()
    );
    println!("ratio with/without: p50 {:.2}×, p99 {:.2}×", c50 / p50, c99 / p99);
}
