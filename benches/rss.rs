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
//! `cargo bench --bench rss` prints the table (several minutes); `-- --quick` runs 100 queues for a few seconds.

use genesys_cloud_exporter::sim::{SimConfig, Simulator};
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
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
    hwm: f64,
}

/// The exporter process; killed when dropped so a failed run leaves nothing behind.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let child = Command::new(env!("CARGO_BIN_EXE_genesys-cloud-exporter"))
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
    let exporter = Exporter(child);
    let pid = exporter.0.id();
    let base = format!("http://127.0.0.1:{port}");

    let t0 = Instant::now();
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        if t0.elapsed() > Duration::from_secs(400) {
            println!("| {} | {queues} | not ready after {:.0} s | | | | | | | |", w.name, t0.elapsed().as_secs_f64());
            sim.shutdown().await;
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(stream_for).await;
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
    row.hwm = memory(pid).1;
    drop(exporter);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Some(row)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("HTTP client");
    let plan: Vec<(&Workload, usize, Duration)> = if quick {
        vec![(&TARGET, 100, Duration::from_secs(2))]
    } else {
        let mut p: Vec<(&Workload, usize, Duration)> =
            [100, 1_000, 10_000, 20_000].into_iter().map(|n| (&TARGET, n, Duration::from_secs(30))).collect();
        p.push((&WORST, 10_000, Duration::from_secs(60)));
        p
    };
    println!("| workload | queues | series | /metrics plain | gzip | scrape plain | scrape gzip | RSS streaming | RSS after scrapes | peak (VmHWM) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (w, queues, stream_for) in plan {
        let Some(r) = run(w, queues, stream_for, &http).await else { continue };
        println!(
            "| {} | {} | {} | {:.1} MB | {:.1} MB | {:.0} ms | {:.0} ms | {:.0} MiB | {:.0} MiB | {:.0} MiB |",
            r.workload,
            r.queues,
            r.series,
            r.plain_bytes as f64 / 1e6,
            r.gzip_bytes as f64 / 1e6,
            r.scrape_plain.as_secs_f64() * 1e3,
            r.scrape_gzip.as_secs_f64() * 1e3,
            r.rss_streaming,
            r.rss_after,
            r.hwm,
        );
    }
}
