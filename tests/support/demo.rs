//! The `demo` binary (simulator + exporter in one process) on free loopback ports, with the simulator's fault
//! and ground-truth endpoints.

use super::promstack::{self, Proc, TempDir};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// Test timings: a stall is noticed in seconds, not the default 45 s.
pub fn fast_config(heartbeat_timeout_s: u64) -> String {
    format!(
        "freshness:\n  heartbeat_timeout: {heartbeat_timeout_s}s\n  poll_interval: 2s\nnotifications:\n  ping_interval: 1s\n"
    )
}

pub struct Demo {
    pub proc: Proc,
    /// host:port of the exporter.
    pub exporter: String,
    /// Base URL of the simulator.
    pub sim: String,
    http: reqwest::Client,
}

impl Demo {
    /// Start `demo` with `args` (e.g. `--queues`) and `config` as its `--config.file`; returns once `/readyz` is 200.
    pub async fn start(dir: &TempDir, args: &[&str], config: &str) -> Demo {
        let (port, sim_port) = (promstack::free_port(), promstack::free_port());
        let cfg = dir.write("demo.yaml", config);
        let proc = Proc::spawn(
            Command::new(env!("CARGO_BIN_EXE_genesys-cloud-exporter"))
                .arg("demo")
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--sim.listen-address=127.0.0.1:{sim_port}"))
                .arg(format!("--config.file={}", cfg.display())),
            dir.0.join("demo.log"),
        );
        let d = Demo {
            proc,
            exporter: format!("127.0.0.1:{port}"),
            sim: format!("http://127.0.0.1:{sim_port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = d.http.get(format!("http://{}/readyz", d.exporter)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "demo never became ready:\n{}", d.proc.log_tail());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        d
    }

    pub async fn fault(&self, f: Value) {
        let r = self.http.post(format!("{}/sim/faults", self.sim)).json(&f).send().await.expect("POST /sim/faults");
        assert!(r.status().is_success(), "fault {f} refused: {}", r.status());
    }

    pub async fn truth(&self) -> Value {
        self.http.get(format!("{}/sim/truth", self.sim)).send().await.expect("truth").json().await.expect("truth JSON")
    }
}
