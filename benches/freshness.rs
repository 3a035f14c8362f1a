//! Freshness lag: how long after a change in the org it shows, for this exporter (stream) and for the classic
//! design of polling the observations query every 5 s (the baseline every wallboard script uses).
//!
//! One process: the simulator (no agents, so a waiting email conversation stays waiting), this exporter against
//! it, and a 5 s poller of `POST /api/v2/analytics/queues/observations/query` (batches of 100 queues, `oWaiting`),
//! both reading the same org. Every 250 ms a customer arrives on a random queue; each side's lag is the time from
//! the arrival to the moment its view (the exporter's `/metrics`, the poller's last answer) shows it. Checked
//! every 20 ms, so figures are ±20 ms.
//!
//! Genesys publishes at most one message per queue per second, and an arrival changes two groups (the queue's
//! observations and its interval aggregates: two messages). An arrival on a queue that had one less than ~2 s
//! before therefore waits for that queue's turn on the wire, whoever the client is. The "uncontended" rows
//! leave those arrivals out: what remains is the delivery path (the simulator's 100 ms tick, the socket, the
//! exporter, the 20 ms check), without Genesys's throttle.
//!
//! A second table is the REST budget at 2,000 queues with a healthy stream: every request the simulator served
//! (token, queue listing, presence definitions, channel creation and subscriptions, the seed, reconciliation,
//! re-listing) over a window, as requests per minute and as a share of the 300/min budget.
//!
//! `cargo bench --bench freshness` prints the tables; `-- --quick` runs a few seconds (the test command).

use genesys_cloud_exporter::app::{Exporter, ExporterOptions};
use genesys_cloud_exporter::sim::SimHandle;
use genesys_cloud_exporter::sim::{Fault, SimConfig, Simulator};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type View = Arc<Mutex<HashMap<String, u64>>>;

/// One arrival: (queue, count it must reach, arrival time, exporter lag, poller lag).
type Event = (String, u64, Instant, Option<Duration>, Option<Duration>);

/// `genesys_queue_waiting{…,media_type="email"}` per queue id, from a scrape.
fn waiting_email(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("genesys_queue_waiting{") && l.contains(r#"media_type="email""#))
    {
        let id = line.split(r#"queue_id=""#).nth(1).and_then(|r| r.split('"').next());
        let v = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let (Some(id), Some(v)) = (id, v) {
            out.insert(id.to_owned(), v as u64);
        }
    }
    out
}

async fn poller(base: String, ids: Vec<String>, view: View, stop: CancellationToken) {
    use base64::Engine as _;
    let http = reqwest::Client::new();
    let basic = base64::engine::general_purpose::STANDARD.encode("sim-client:sim-secret");
    let token: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap_or_default());
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! { _ = stop.cancelled() => return, _ = tick.tick() => {} }
        for batch in ids.chunks(100) {
            let preds: Vec<_> = batch
                .iter()
                .map(|id| serde_json::json!({"type": "dimension", "dimension": "queueId", "value": id}))
                .collect();
            let q = serde_json::json!({"filter": {"type": "or", "predicates": preds}, "metrics": ["oWaiting"]});
            let Ok(r) = http
                .post(format!("{base}/api/v2/analytics/queues/observations/query"))
                .header("authorization", &bearer)
                .json(&q)
                .send()
                .await
            else {
                continue;
            };
            let Ok(v) = r.json::<serde_json::Value>().await else { continue };
            let mut seen = view.lock().unwrap_or_else(|e| e.into_inner());
            for g in v["results"].as_array().into_iter().flatten() {
                if g["group"]["mediaType"] != "email" {
                    continue;
                }
                let id = g["group"]["queueId"].as_str().unwrap_or_default().to_owned();
                let n = g["data"].as_array().into_iter().flatten().find(|d| d["metric"] == "oWaiting");
                seen.insert(id, n.and_then(|d| d["stats"]["count"].as_f64()).unwrap_or(0.0) as u64);
            }
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}

/// An arrival counts as contended when its queue had another one less than this before (two messages at 1/s).
const CONTENTION: Duration = Duration::from_secs(2);

struct Lags {
    queues: usize,
    changes: usize,
    exporter: Vec<Duration>,
    poller: Vec<Duration>,
    /// Exporter lags of arrivals on a queue with no arrival in the [`CONTENTION`] window before.
    uncontended: Vec<Duration>,
}

async fn start(queues: usize) -> (SimHandle, Exporter) {
    let mut cfg = SimConfig::default();
    cfg.model.queues = queues;
    cfg.model.agents_per_queue = 0;
    cfg.model.arrivals_per_hour = 0.0;
    let sim = Simulator::start(cfg, TcpListener::bind("127.0.0.1:0").await.expect("bind")).await.expect("sim");
    let exporter = Exporter::start(
        ExporterOptions::for_simulator(&sim.base_url()),
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        CancellationToken::new(),
    )
    .expect("exporter");
    while !exporter.readiness.ready() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (sim, exporter)
}

async fn lags(queues: usize, run: Duration) -> Lags {
    let (sim, exporter) = start(queues).await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", exporter.url());
    let ids: Vec<String> = sim.truth().queues.into_iter().map(|q| q.id).collect();
    let polled: View = Arc::default();
    let stop = CancellationToken::new();
    tokio::spawn(poller(sim.base_url(), ids.clone(), polled.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut events: Vec<Event> = Vec::new();
    let mut contended: Vec<bool> = Vec::new();
    let mut last_arrival: HashMap<String, Instant> = HashMap::new();
    let mut expected: HashMap<String, u64> = HashMap::new();
    let mut rng = fastrand::Rng::with_seed(7);
    let start = Instant::now();
    let mut next_arrival = Instant::now();
    while start.elapsed() < run + Duration::from_secs(6) {
        if start.elapsed() < run && Instant::now() >= next_arrival {
            let q = ids[rng.usize(..ids.len())].clone();
            let n = expected.entry(q.clone()).or_insert(0);
            *n += 1;
            sim.inject(Fault::Arrive { queue_id: q.clone(), media_type: "email".into(), count: 1 });
            let now = Instant::now();
            contended.push(last_arrival.insert(q.clone(), now).is_some_and(|t| now - t < CONTENTION));
            events.push((q, *n, now, None, None));
            next_arrival += Duration::from_millis(250);
        }
        let Ok(r) = http.get(&url).send().await else { continue };
        let exported = waiting_email(&r.text().await.unwrap_or_default());
        let polled_now = polled.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = Instant::now();
        for (q, n, t0, ex, po) in events.iter_mut() {
            if ex.is_none() && exported.get(q.as_str()).is_some_and(|v| v >= n) {
                *ex = Some(now - *t0);
            }
            if po.is_none() && polled_now.get(q.as_str()).is_some_and(|v| v >= n) {
                *po = Some(now - *t0);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let _ = exporter.stop().await;
    sim.shutdown().await;
    Lags {
        queues,
        changes: events.len(),
        exporter: events.iter().filter_map(|e| e.3).collect(),
        poller: events.iter().filter_map(|e| e.4).collect(),
        uncontended: events.iter().zip(&contended).filter(|(_, c)| !**c).filter_map(|(e, _)| e.3).collect(),
    }
}

/// Requests the simulator served for `queues` queues with a healthy stream: from start to streaming, then over
/// `window` with reconciliation and re-listing every `interval` (the defaults are 5 min; shorter here so the window
/// sees several, and scaled back to the defaults).
async fn rest_budget(queues: usize, interval: Duration, window: Duration) {
    let mut cfg = SimConfig::default();
    cfg.model.queues = queues;
    cfg.model.agents_per_queue = 8;
    let sim = Simulator::start(cfg, TcpListener::bind("127.0.0.1:0").await.expect("bind")).await.expect("sim");
    let mut opts = ExporterOptions::for_simulator(&sim.base_url());
    opts.collector.reconcile_interval = interval;
    opts.collector.refresh_interval = interval;
    let t0 = Instant::now();
    let exporter =
        Exporter::start(opts, TcpListener::bind("127.0.0.1:0").await.expect("bind"), CancellationToken::new())
            .expect("exporter");
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", exporter.url());
    loop {
        let text = match http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let streaming = text
            .lines()
            .filter(|l| l.starts_with("genesys_queue_source{") && l.contains(r#"source="stream"} 1"#))
            .count();
        if streaming == queues {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "{queues} queues not streaming after 5 min");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let obs_reads = || async {
        let text = match http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| l.starts_with("genesys_api_requests_total{") && l.contains(r#"endpoint="observations_query""#))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum::<f64>()
    };
    let setup = sim.stats().requests;
    let setup_time = t0.elapsed();
    let reads_before = obs_reads().await;
    tokio::time::sleep(window).await;
    let steady = sim.stats().requests - setup;
    let reads = obs_reads().await - reads_before;
    // A reconciliation reads every queue's observations, 100 queues a request; the rest of the steady spend
    // (aggregates, re-listing) comes once per interval too, so the cost per cycle is what a cycle costs at 5 min.
    let cycles = reads / queues.div_ceil(100) as f64;
    let per_cycle = steady as f64 / cycles.max(1.0);
    let minutes = window.as_secs_f64() / 60.0;
    let per_minute = steady as f64 / minutes;
    let at_defaults = per_cycle / 5.0;
    let budget = 300.0;
    println!("| REST, {queues} queues, healthy stream | requests | per minute | share of 300/min |");
    println!("|---|---:|---:|---:|");
    println!(
        "| start → all streaming ({:.0} s: token, listing, presences, channels, subscriptions, seed) | {setup} | — | — |",
        setup_time.as_secs_f64()
    );
    println!(
        "| {:.0} s window, reconcile and re-list every {} s: {cycles:.1} cycles, {per_cycle:.0} requests each | {steady} | {per_minute:.1} | {:.1} % |",
        window.as_secs_f64(),
        interval.as_secs(),
        per_minute / budget * 100.0
    );
    println!(
        "| one cycle per 5 min (the defaults) | — | {at_defaults:.1} | {:.1} % (target < 5 %) |",
        at_defaults / budget * 100.0
    );
    let _ = exporter.stop().await;
    sim.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
    let runs: &[(usize, Duration)] = if quick {
        &[(20, Duration::from_secs(8))]
    } else {
        &[(200, Duration::from_secs(60)), (2000, Duration::from_secs(60))]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut results = Vec::new();
    for &(queues, run) in runs {
        results.push(lags(queues, run).await);
    }
    println!("| queues | source | changes | seen | lag p50 | lag p99 | max |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for r in &mut results {
        let changes = r.changes;
        let uncontended = r.uncontended.len();
        for (name, v) in [
            ("exporter (stream)".to_owned(), &mut r.exporter),
            (format!("exporter, uncontended arrivals ({uncontended})"), &mut r.uncontended),
            ("5 s poller of the observations query".to_owned(), &mut r.poller),
        ] {
            let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
            println!(
                "| {} | {name} | {changes} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
                r.queues,
                v.len(),
                ms(p50),
                ms(p99),
                ms(v.last().copied().unwrap_or_default())
            );
        }
    }
    println!();
    println!("| queues | median: poller ÷ stream | p99: poller ÷ stream | target |");
    println!("|---:|---:|---:|---|");
    for r in &mut results {
        let (e50, p50) = (pct(&mut r.exporter, 0.5), pct(&mut r.poller, 0.5));
        let (e99, p99) = (pct(&mut r.exporter, 0.99), pct(&mut r.poller, 0.99));
        println!("| {} | {:.1}× | {:.1}× | ≥ 10× |", r.queues, ms(p50) / ms(e50).max(1.0), ms(p99) / ms(e99).max(1.0));
    }
    println!();
    if quick {
        rest_budget(50, Duration::from_secs(2), Duration::from_secs(4)).await;
    } else {
        rest_budget(2000, Duration::from_secs(30), Duration::from_secs(90)).await;
    }
}
