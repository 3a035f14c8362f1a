//! Real output of an exporter streaming from the simulator: `promtool check metrics` on the Prometheus text, the
//! OpenMetrics structure check, and no secret or token anywhere — not in trace logs, not in /metrics.

mod support;

use genesys_cloud_exporter::sim::SimConfig;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fault;
use support::prom;

fn busy_org(queues: usize) -> SimConfig {
    support::org(queues, 600.0)
}

async fn get(http: &reqwest::Client, url: &str, accept: &str) -> String {
    http.get(url).header("accept", accept).send().await.expect("scrape").text().await.expect("scrape body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_output_passes_promtool_in_both_formats() {
    let env = support::start(busy_org(40), |_| {}).await;
    env.until(Duration::from_secs(30), "queue series with traffic", |s| {
        s.iter().any(|x| x.name == "genesys_queue_waiting" || x.name == "genesys_queue_interacting")
            && s.iter().any(|x| x.name == "genesys_queue_interval_offered")
    })
    .await;
    let url = format!("{}/metrics", env.exporter.url());
    let text = get(&env.http, &url, "text/plain").await;
    for family in [
        "genesys_queue_info",
        "genesys_queue_agents",
        "genesys_queue_source",
        "genesys_up",
        "process_cpu_seconds_total",
    ] {
        assert!(text.contains(family), "{family} missing from real output");
    }
    let om = get(&env.http, &url, "application/openmetrics-text;version=1.0.0").await;
    prom::check_om(&om);
    match prom::find_promtool() {
        Some(promtool) => {
            let (ok, out) = prom::run_promtool(&promtool, &text);
            assert!(ok, "promtool check metrics failed on real output:\n{out}");
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("promtool missing and CI is set (Debian package prometheus)")
        }
        None => eprintln!("WARNING: promtool not on PATH; only the OpenMetrics structure was checked"),
    }
    env.exporter.stop().await.expect("exporter stops");
    env.sim.shutdown().await;
}

/// The exporter binary at trace level against a simulator with a known secret, through a token revocation (error
/// paths log the most): neither the secret nor any token the simulator issued shows up anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_trace_logs_or_metrics() {
    const SECRET: &str = "s3cr3t-7f1c9e0b-never-print-me";
    let mut cfg = busy_org(10);
    cfg.client_secret = SECRET.to_owned();
    let sim = support::start_sim(cfg).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_genesys-cloud-exporter"))
        .args(["run", "--web.listen-address", &listen, "--log.level", "trace"])
        .env("GENESYS_CLIENT_ID", "sim-client")
        .env("GENESYS_CLIENT_SECRET", SECRET)
        .env("GENESYS_API_BASE_URL", sim.base_url())
        .env("GENESYS_LOGIN_BASE_URL", sim.base_url())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exporter binary starts");
    let http = reqwest::Client::new();
    let url = format!("http://{listen}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Ok(r) = http.get(&url).send().await {
            metrics = r.text().await.unwrap_or_default();
            if metrics.contains("genesys_queue_agents") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(metrics.contains("genesys_queue_agents"), "exporter never served queue metrics");
    sim.inject(fault(serde_json::json!({"kind": "revoke_tokens"})));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics_after = http.get(&url).send().await.expect("scrape").text().await.expect("body");
    let tokens = sim.issued_tokens();
    assert!(tokens.len() >= 2, "the revocation made the exporter log in again: {} tokens", tokens.len());
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut logs = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut logs).expect("read stderr");
    }
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut logs).expect("read stdout");
    }
    let _ = child.wait();
    assert!(logs.contains("level=debug") || logs.contains("level=trace"), "trace logging is on: {logs}");
    for (what, text) in [("logs", &logs), ("/metrics", &metrics), ("/metrics after revocation", &metrics_after)] {
        assert!(!text.contains(SECRET), "the client secret appears in {what}");
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "an access token appears in {what}");
        }
    }
    sim.shutdown().await;
}
