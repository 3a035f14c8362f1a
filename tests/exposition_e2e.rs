//! Real output of an exporter streaming from the simulator: `promtool check metrics` on the Prometheus text, the
//! OpenMetrics structure check. (No secret or token anywhere: tests/secrets.rs.)

mod support;

use genesys_cloud_exporter::sim::SimConfig;
use std::time::Duration;
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
