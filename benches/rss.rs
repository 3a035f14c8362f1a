//! Memory of the exporter process while it streams an org of 100 to 20,000 queues, and what its `/metrics` weighs.
//!
//! The simulator runs in this process; the exporter is the real binary (`genesys-cloud-exporter run`, built by
//! cargo for this bench) in a process of its own, so `/proc/PID/status` holds the exporter's memory only. Per
//! size: start, wait for `/readyz`, let the org stream for a while, read `VmRSS`; scrape `/metrics` twice plain and
//! twice gzipped (reading `VmRSS` after each); report the series, the body sizes, the scrape times and `VmHWM` (the
//! peak resident set over the whole run).
//!
//! Two workloads:
//! - **target** — the "~300,000 series at 10,000 queues": 8 agents per queue, voice traffic only, and the
//!   exporter configured for voice (`queues.media_types: [voice]`) with three wait buckets
//!   (`histograms.wait_buckets: [20, 60, 300]`).
//! - **worst** — every queue × media type has traffic (all five media, a busy contact center) and the default
//!   eleven buckets: every counter and histogram series exists.
//!
//! A second table is measured in this process, without HTTP: a store fed the target workload's shape through its
//! public API, its live heap bytes counted by a counting global allocator (exact, unlike RSS, which includes
//! allocator slack): per queue, the current state, its rendered text, the JSON documents once read; then a burst
//! of changes whose new documents are all read (as a stream client does), and what the live view's change log
//! then pins, against its own estimate.
//!
//! `cargo bench --bench rss` prints the tables (several minutes); `-- --quick` runs 100 queues for a few seconds;
//! `-- --breakdown` only the in-process table;
//! `-- --sizes 10000` runs only those sizes of the target workload. `RSS_BENCH_WRAP="heaptrack -o /tmp/rss"` runs
//! the exporter under that command (a heap profile of what dominates; its RSS figures then include the wrapper).

#[allow(dead_code)] // `cpu_ns` is the micro-benchmarks'
mod common;

use genesys_cloud_exporter::model::{
    AggregateStats, GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Source,
};
use genesys_cloud_exporter::sim::{SimConfig, Simulator};
use genesys_cloud_exporter::state::{PresenceDef, Store, StoreConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

struct Workload {
    name: &'static str,
    sim_media: &'static [&'static str],
    arrivals_per_hour: f64,
    config: &'static str,
}

const TARGET: Workload = Workload {
    name: "target",
    sim_media: &["voice"],
    arrivals_per_hour: 60.0,
    config: "queues:\n  media_types: [voice]\nhistograms:\n  wait_buckets: [20, 60, 300]\n",
};

const WORST: Workload = Workload {
    name: "worst",
    sim_media: &["voice", "chat", "email", "callback", "message"],
    arrivals_per_hour: 3600.0,
    config: "",
};

/// The system allocator, counting live bytes: the in-process breakdown's measure (the exporter's process is not
/// affected; it runs its own binary).
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE_BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// The aggregates the simulator reports for a voice queue's interval (a typical set).
const AGGREGATES: [&str; 14] = [
    "nOffered",
    "nConnected",
    "nOverSla",
    "nTransferred",
    "oServiceLevel",
    "tAbandon",
    "tAcd",
    "tAcw",
    "tAlert",
    "tAnswered",
    "tHandle",
    "tHeld",
    "tTalk",
    "tWait",
];
const STATUSES: [&str; 5] = ["IDLE", "INTERACTING", "COMMUNICATING", "NOT_RESPONDING", "OFF_QUEUE"];

/// A complete update of queue `i` in the target workload's shape; `k` varies the values.
fn update(i: usize, k: usize, now: i64, with_obs: bool, with_aggs: bool) -> QueueUpdate {
    let obs = |m, q: Option<String>, v: f64| Observation { metric: m, qualifier: q, value: Some(v) };
    let mut user: Vec<Observation> = Vec::new();
    let mut voice: Vec<Observation> = Vec::new();
    if with_obs {
        for s in STATUSES {
            user.push(obs(ObsMetric::UserRoutingStatuses, Some(s.to_owned()), ((i + k) % 3) as f64));
            user.push(obs(ObsMetric::OnQueueUsers, Some(s.to_owned()), ((i + k) % 4) as f64));
        }
        for p in 0..5 {
            user.push(obs(ObsMetric::UserPresences, Some(format!("p{p}")), 1.0));
            user.push(obs(ObsMetric::OffQueueUsers, Some(format!("p{p}")), 1.0));
        }
        user.push(obs(ObsMetric::MemberUsers, None, 8.0));
        user.push(obs(ObsMetric::ActiveUsers, None, 8.0));
        for m in [ObsMetric::Waiting, ObsMetric::Alerting, ObsMetric::Interacting] {
            voice.push(obs(m, None, ((i + k) % 3) as f64));
        }
        voice.push(obs(ObsMetric::LongestWaiting, None, (now - 5000) as f64));
    }
    let aggregates = if with_aggs {
        AGGREGATES
            .iter()
            .map(|m| genesys_cloud_exporter::model::Aggregate {
                metric: (*m).to_owned(),
                qualifier: None,
                stats: AggregateStats {
                    count: Some((k / 2 + 3) as f64),
                    sum: Some((k * 1000 + 90_000) as f64),
                    max: Some(60_000.0),
                    ..AggregateStats::default()
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    let start = now - now % 1_800_000;
    QueueUpdate {
        queue_id: format!("q{i:07}"),
        source: Source::Stream,
        event_ms: Some(now),
        complete: false,
        groups: vec![
            GroupUpdate { media_type: None, observations: user, interval: None, aggregates: vec![] },
            GroupUpdate {
                media_type: Some("voice".to_owned()),
                observations: voice,
                interval: with_aggs.then_some((start, start + 1_800_000)),
                aggregates,
            },
        ],
    }
}

struct Breakdown {
    queues: usize,
    state: f64,
    text: f64,
    json: f64,
    changes: usize,
    log_kept: usize,
    log_estimate: usize,
    log_measured: isize,
}

/// The store's heap, counted (see the module doc).
fn breakdown(queues: usize, changes: usize) -> Breakdown {
    let now = genesys_cloud_exporter::model::now_ms();
    let base = live_bytes();
    let store = Store::new(StoreConfig {
        media_types: vec!["voice".into()],
        max_age: Duration::from_secs(3600),
        wait_buckets: vec![20.0, 60.0, 300.0],
    });
    store.set_presence_definitions(
        (0..5)
            .map(|p| PresenceDef { id: format!("p{p}"), name: format!("Presence {p}"), system_presence: "AWAY".into() })
            .collect(),
    );
    store.set_queues(
        (0..queues)
            .map(|i| QueueMeta {
                id: format!("q{i:07}"),
                name: format!("Queue {i:05}"),
                division_id: format!("d{}", i % 7),
                division: format!("Division {}", i % 7),
            })
            .collect(),
    );
    for i in 0..queues {
        store.apply(update(i, 0, now, true, true));
    }
    let state = live_bytes() - base;
    let text = store.summary(now).rendered_bytes;
    let (_, docs) = store.live().docs();
    let before_json = live_bytes();
    docs.iter().for_each(|d| {
        let _ = d.doc();
    });
    let json = live_bytes() - before_json;
    drop(docs);
    // A burst of changes, every new document read as a stream client would, old ones kept by the log only.
    let before = live_bytes();
    let mut cursor = store.live().version();
    for k in 0..changes {
        let i = (k * 7919) % queues;
        store.apply(update(i, k + 1, now, k % 2 == 0, k % 2 == 1));
        if let Some((v, cs)) = store.live().changes_since(cursor) {
            cs.iter().filter_map(|c| c.new.as_ref()).for_each(|d| {
                let _ = d.doc();
            });
            cursor = v;
        }
    }
    let log_measured = live_bytes() - before;
    let (log_kept, log_estimate) = store.live().log_size();
    let per = |b: isize| b as f64 / queues as f64;
    Breakdown {
        queues,
        state: per(state),
        text: text as f64 / queues as f64,
        json: per(json),
        changes,
        log_kept,
        log_estimate,
        log_measured,
    }
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(19888)
}

struct Row {
    workload: &'static str,
    queues: usize,
    series: usize,
    plain_bytes: usize,
    gzip_bytes: usize,
    scrape_plain: Duration,
    scrape_gzip: Duration,
    rss_streaming: f64,
    rss_after: f64,
    /// After the scrape buffers' keep-warm time: what stays resident between scrapes.
    rss_idle: Option<f64>,
    hwm: f64,
}

/// The exporter process; stopped when dropped so a failed run leaves nothing behind.
struct Exporter {
    child: Child,
    wrapped: bool,
}

impl Exporter {
    /// The exporter's own pid: the child, or (wrapped) the descendant running the exporter binary.
    fn pid(&self) -> u32 {
        let root = self.child.id();
        if !self.wrapped {
            return root;
        }
        let bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_genesys-cloud-exporter")).ok();
        let mut todo = vec![root];
        while let Some(p) = todo.pop() {
            if std::fs::read_link(format!("/proc/{p}/exe")).ok() == bin {
                return p;
            }
            let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            todo.extend(kids.split_whitespace().filter_map(|k| k.parse::<u32>().ok()));
        }
        root
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if self.wrapped {
            // A graceful stop, so the wrapper (a profiler) sees the exit and writes its output.
            let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

async fn run(w: &Workload, queues: usize, stream_for: Duration, http: &reqwest::Client) -> Option<Row> {
    let mut cfg = SimConfig::default();
    cfg.model.queues = queues;
    cfg.model.agents_per_queue = 8;
    cfg.model.media_types = w.sim_media.iter().map(|s| s.to_string()).collect();
    cfg.model.arrivals_per_hour = w.arrivals_per_hour;
    // A seed of 20,000 queues at the real 300/min takes minutes; the bench measures memory, not the budget.
    cfg.rate_limit_per_minute = 6000;
    let sim = Simulator::start(cfg, TcpListener::bind("127.0.0.1:0").await.expect("bind")).await.expect("simulator");

    let dir = std::env::temp_dir().join(format!("genesys-rss-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config.yaml");
    std::fs::File::create(&config).and_then(|mut f| f.write_all(w.config.as_bytes())).expect("config file");
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_genesys-cloud-exporter");
    let wrap: Vec<String> =
        std::env::var("RSS_BENCH_WRAP").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let mut cmd = match wrap.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let child = cmd
        .args(["run", "--log.level", "warn", "--web.listen-address"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config.file")
        .arg(&config)
        .env("GENESYS_CLIENT_ID", "sim-client")
        .env("GENESYS_CLIENT_SECRET", "sim-secret")
        .env("GENESYS_API_BASE_URL", sim.base_url())
        .env("GENESYS_LOGIN_BASE_URL", sim.base_url())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the exporter binary");
    let exporter = Exporter { child, wrapped: !wrap.is_empty() };
    let base = format!("http://127.0.0.1:{port}");

    let t0 = Instant::now();
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        if t0.elapsed() > Duration::from_secs(400) {
            println!("| {} | {queues} | not ready after {:.0} s | | | | | | | | |", w.name, t0.elapsed().as_secs_f64());
            sim.shutdown().await;
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(stream_for).await;
    let pid = exporter.pid();
    let (rss_streaming, _) = memory(pid);

    let mut row = Row {
        workload: w.name,
        queues,
        series: 0,
        plain_bytes: 0,
        gzip_bytes: 0,
        scrape_plain: Duration::MAX,
        scrape_gzip: Duration::MAX,
        rss_streaming,
        rss_after: 0.0,
        rss_idle: None,
        hwm: 0.0,
    };
    for gzip in [false, false, true, true] {
        let t = Instant::now();
        let mut req = http.get(format!("{base}/metrics"));
        if gzip {
            req = req.header("accept-encoding", "gzip");
        }
        let body = req.send().await.expect("scrape").bytes().await.expect("scrape body");
        let took = t.elapsed();
        if gzip {
            row.gzip_bytes = body.len();
            row.scrape_gzip = row.scrape_gzip.min(took);
        } else {
            row.plain_bytes = body.len();
            row.scrape_plain = row.scrape_plain.min(took);
            row.series = body.split(|b| *b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#').count();
        }
        row.rss_after = row.rss_after.max(memory(pid).0);
    }
    if stream_for >= Duration::from_secs(10) {
        // The server releases idle scrape buffers after 5 s (`KEEP_WARM` in exposition/http.rs).
        tokio::time::sleep(Duration::from_secs(7)).await;
        row.rss_idle = Some(memory(pid).0);
    }
    row.hwm = memory(pid).1;
    drop(exporter);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Some(row)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (quick, sizes) = common::sizes();
    let only = std::env::args().any(|a| a == "--sizes");
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
    // Idle connections are dropped well before the server's 30 s header-read timeout closes them, or the first
    // scrape after the 30 s of streaming races that close on the connection `/readyz` used (IncompleteMessage).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client");
    let stream_for = Duration::from_secs(if quick { 2 } else { 30 });
    let mut plan: Vec<(&Workload, usize, Duration)> = sizes.into_iter().map(|n| (&TARGET, n, stream_for)).collect();
    if !quick && !only {
        plan.push((&WORST, 10_000, Duration::from_secs(60)));
    }
    println!("| workload | queues | series | /metrics plain | gzip | scrape plain | scrape gzip | RSS streaming | RSS after scrapes | 7 s later | peak (VmHWM) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut breakdown_sizes: Vec<usize> = plan.iter().map(|p| p.1).collect();
    breakdown_sizes.dedup();
    if std::env::args().any(|a| a == "--breakdown") {
        plan.clear();
    }
    for (w, queues, stream_for) in plan {
        let Some(r) = run(w, queues, stream_for, &http).await else { continue };
        println!(
            "| {} | {} | {} | {:.1} MB | {:.1} MB | {:.0} ms | {:.0} ms | {:.0} MiB | {:.0} MiB | {} | {:.0} MiB |",
            r.workload,
            r.queues,
            r.series,
            r.plain_bytes as f64 / 1e6,
            r.gzip_bytes as f64 / 1e6,
            r.scrape_plain.as_secs_f64() * 1e3,
            r.scrape_gzip.as_secs_f64() * 1e3,
            r.rss_streaming,
            r.rss_after,
            r.rss_idle.map_or("—".to_owned(), |m| format!("{m:.0} MiB")),
            r.hwm,
        );
    }

    println!();
    println!("In-process store, target shape (heap bytes counted; changes alternate observations and aggregates, every new document read):");
    println!();
    println!("| queues | state per queue | of it rendered text | JSON documents once read, per queue | changes | kept in the log | log estimate | log measured |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let changes = if quick { 2_000 } else { 3 * genesys_cloud_exporter::state::snapshot::LOG_CAPACITY };
    for queues in breakdown_sizes {
        let b = breakdown(queues, changes);
        println!(
            "| {} | {:.1} KB | {:.1} KB | {:.1} KB | {} | {} | {:.1} MB | {:.1} MB |",
            b.queues,
            b.state / 1e3,
            b.text / 1e3,
            b.json / 1e3,
            b.changes,
            b.log_kept,
            b.log_estimate as f64 / 1e6,
            b.log_measured as f64 / 1e6,
        );
    }
}
