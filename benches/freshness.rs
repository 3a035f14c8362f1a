//! Freshness lag: how long after a change in the org it shows, for this exporter (stream) and for the classic
//! design of polling the observations query every 5 s (the baseline every wallboard script uses).
//!
//! One process: the simulator (no agents, so a waiting email conversation stays waiting), this exporter against
//! it, and a 5 s poller of `POST /api/v2/analytics/queues/observations/query` (batches of 100 queues, `oWaiting`),
//! both reading the same org. Every 250 ms a customer arrives on a random queue; each side's lag is the time from
//! the arrival to the moment its view (the exporter's `/metrics`, the poller's last answer) shows it. Checked
//! every 20 ms, so figures are ±20 ms.
//!
//! `cargo bench --bench freshness` prints the table; `-- --quick` runs a few seconds (the test command).

use genesys_cloud_exporter::app::{Exporter, ExporterOptions};
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (queues, run) = if quick { (20, Duration::from_secs(8)) } else { (200, Duration::from_secs(60)) };
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
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
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", exporter.url());
    while !exporter.readiness.ready() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<String> = sim.truth().queues.into_iter().map(|q| q.id).collect();
    let polled: View = Arc::default();
    let stop = CancellationToken::new();
    tokio::spawn(poller(sim.base_url(), ids.clone(), polled.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut events: Vec<Event> = Vec::new();
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
            events.push((q, *n, Instant::now(), None, None));
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
    let mut ex: Vec<Duration> = events.iter().filter_map(|e| e.3).collect();
    let mut po: Vec<Duration> = events.iter().filter_map(|e| e.4).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| source | changes | seen | lag p50 | lag p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, v) in [("exporter (stream)", &mut ex), ("5 s poller of the observations query", &mut po)] {
        let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
        println!(
            "| {name} | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            events.len(),
            v.len(),
            ms(p50),
            ms(p99),
            ms(v.last().copied().unwrap_or_default())
        );
    }
    let (e50, p50) = (pct(&mut ex, 0.5), pct(&mut po, 0.5));
    let (e99, p99) = (pct(&mut ex, 0.99), pct(&mut po, 0.99));
    println!("\nmedian {:.1}× lower, p99 {:.1}× lower", ms(p50) / ms(e50).max(1.0), ms(p99) / ms(e99).max(1.0));
    let _ = exporter.stop().await;
    sim.shutdown().await;
}
