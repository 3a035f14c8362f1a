//! Shared helpers of the exporter's integration tests: start the simulator and an exporter against it over real
//! sockets, scrape, and compare with the simulator's ground truth.
#![allow(dead_code)]

pub mod bin;
pub mod dashboards;
pub mod demo;
pub mod gap;
pub mod otlp;
pub mod prom;
pub mod promstack;
pub mod truth;

use genesys_cloud_exporter::app::{Exporter, ExporterOptions};
use genesys_cloud_exporter::sim::{Fault, SimConfig, SimHandle, Simulator};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub sim: SimHandle,
    pub exporter: Exporter,
    pub http: reqwest::Client,
    pub opts: ExporterOptions,
}

/// A fault from its JSON form (`{"kind": "arrive", ...}`), as `POST /sim/faults` takes it.
pub fn fault(v: serde_json::Value) -> Fault {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("fault {v}: {e}"))
}

/// An org of `queues` with `arrivals_per_hour` random arrivals per queue (0: the truth only moves when a test says
/// so) and a 1 s heartbeat.
pub fn org(queues: usize, arrivals_per_hour: f64) -> SimConfig {
    let mut cfg = SimConfig::default();
    cfg.model.queues = queues;
    cfg.model.arrivals_per_hour = arrivals_per_hour;
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg
}

/// Exporter options tuned for tests: short heartbeats, fast polling, no long waits.
pub fn fast_options(base_url: &str) -> ExporterOptions {
    let mut o = ExporterOptions::for_simulator(base_url);
    o.collector.heartbeat_timeout = Duration::from_secs(3);
    o.collector.poll_interval = Duration::from_secs(1);
    o.collector.ping_interval = Duration::from_secs(1);
    o.collector.refresh_interval = Duration::from_secs(2);
    o.collector.reconcile_interval = Duration::from_secs(3600);
    o.budget_share = 1.0;
    o
}

pub async fn start_sim(cfg: SimConfig) -> SimHandle {
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind simulator");
    Simulator::start(cfg, l).await.expect("simulator starts")
}

pub async fn start_exporter(opts: ExporterOptions) -> Exporter {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind exporter");
    Exporter::start(opts, l, CancellationToken::new()).expect("exporter starts")
}

pub async fn start(sim_cfg: SimConfig, tweak: impl FnOnce(&mut ExporterOptions)) -> Env {
    let sim = start_sim(sim_cfg).await;
    let mut opts = fast_options(&sim.base_url());
    tweak(&mut opts);
    let exporter = start_exporter(opts.clone()).await;
    Env { sim, exporter, http: reqwest::Client::new(), opts }
}

impl Env {
    pub async fn scrape(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.exporter.url()))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("scrape body")
    }

    pub async fn samples(&self) -> Vec<prom::Sample> {
        prom::parse(&self.scrape().await)
    }

    /// Wait until /metrics equals the ground truth (the simulator should be paused so the truth holds still).
    pub async fn converge(&self, within: Duration, interval: bool) -> Result<Duration, Vec<String>> {
        let start = std::time::Instant::now();
        loop {
            let truth = serde_json::to_value(self.sim.truth()).expect("truth as JSON");
            let d = truth::diff(&self.samples().await, &truth, interval);
            if d.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > within {
                return Err(d);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until `f(samples)` holds.
    pub async fn until(&self, within: Duration, what: &str, f: impl Fn(&[prom::Sample]) -> bool) {
        let start = std::time::Instant::now();
        loop {
            let s = self.samples().await;
            if f(&s) {
                return;
            }
            assert!(start.elapsed() < within, "timed out after {within:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn metric(samples: &[prom::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        prom::value(samples, name, labels).unwrap_or(0.0)
    }
}

/// `assert!` that a convergence succeeded, printing the first differences.
pub fn assert_converged(r: Result<Duration, Vec<String>>, what: &str) -> Duration {
    match r {
        Ok(d) => d,
        Err(diffs) => panic!(
            "/metrics did not match the simulator's truth {what}; {} differences, first: {:#?}",
            diffs.len(),
            &diffs[..diffs.len().min(10)]
        ),
    }
}
