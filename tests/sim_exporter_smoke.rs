//! The exporter against the simulator end to end over real sockets: it discovers every queue, and a pushed change
//! (an injected arrival, model paused) reaches its /metrics with the simulator's true waiting count.

use genesys_cloud_exporter::app::{Exporter, ExporterOptions};
use genesys_cloud_exporter::sim::{Fault, SimConfig, Simulator};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn scrape(c: &reqwest::Client, url: &str) -> String {
    c.get(format!("{url}/metrics")).send().await.expect("scrape").text().await.unwrap_or_default()
}

fn waiting(metrics: &str, queue_id: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("genesys_queue_waiting{")
                && l.contains(&format!("queue_id=\"{queue_id}\""))
                && l.contains("media_type=\"voice\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_follows_the_simulator() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = SimConfig::default();
    cfg.model.queues = 4;
    cfg.model.agents_per_queue = 3;
    cfg.model.arrivals_per_hour = 0.0;
    let sim = Simulator::start(cfg, TcpListener::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
    let mut opts = ExporterOptions::for_simulator(&sim.base_url());
    opts.budget_share = 1.0;
    let exporter =
        Exporter::start(opts, TcpListener::bind("127.0.0.1:0").await.unwrap(), CancellationToken::new()).unwrap();
    let c = reqwest::Client::new();
    let truth = sim.truth();
    let n = truth.queues.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = scrape(&c, &exporter.url()).await;
        if m.lines().filter(|l| l.starts_with("genesys_queue_info{")).count() == n {
            break;
        }
        assert!(Instant::now() < deadline, "exporter did not discover {n} queues:\n{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sim.inject(Fault::Pause);
    let q = truth.queues[0].id.clone();
    sim.inject(Fault::Arrive { queue_id: q.clone(), media_type: "voice".into(), count: 3 });
    let (started, deadline) = (Instant::now(), Instant::now() + Duration::from_secs(20));
    loop {
        let want =
            sim.truth().queues.iter().find(|x| x.id == q).and_then(|x| x.media.get("voice")).map_or(0, |m| m.waiting);
        let m = scrape(&c, &exporter.url()).await;
        // (A model that answers at once may leave nobody waiting: then 0 must hold for a while.)
        let settled = want > 0 || started.elapsed() > Duration::from_secs(3);
        if settled && waiting(&m, &q).unwrap_or(0.0) == want as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "waiting of {q} never reached the truth {want}: {:?}", waiting(&m, &q));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    exporter.stop().await.ok();
    sim.shutdown().await;
}
