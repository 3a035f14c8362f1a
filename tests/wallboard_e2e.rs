//! The wallboard end to end on real software: the `demo` binary (simulator + exporter), a real Prometheus
//! (Debian `prometheus`) scraping it every second with the shipped rule files, and a real Alertmanager (Debian
//! `prometheus-alertmanager`) delivering to a webhook here.
//!
//! - every dashboard panel's query runs through Prometheus's HTTP API and must return series;
//! - a long wait on one queue pages with that queue's labels, and resolves once the wait clears;
//! - a stalled socket shows on the exporter-health queries as polling and a rising heartbeat age.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::demo::{self, Demo};
use support::promstack::{self, Alertmanager, Prometheus, TempDir, Webhook};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dashboards() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .expect("dashboards/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_work_on_real_prometheus_and_alertmanager() {
    let (Some(_), Some(_)) = (
        promstack::require("prometheus", "prometheus"),
        promstack::require("prometheus-alertmanager", "prometheus-alertmanager"),
    ) else {
        return;
    };
    genesys_cloud_exporter::genesys::client::install_crypto_provider();
    let dir = TempDir::new("wallboard");
    let demo = Demo::start(&dir, &["--queues", "12", "--seed", "3"], &demo::fast_config(5)).await;
    let hook = Webhook::start().await;
    let am = Alertmanager::start(&dir, &hook).await;

    // One queue gets a 5 s long-wait threshold through the documented per-queue override; the rest keep 120 s.
    let truth = demo.truth().await;
    let target = truth["queues"][0]["id"].as_str().expect("a queue").to_owned();
    let target_name = truth["queues"][0]["name"].as_str().expect("a name").to_owned();
    let override_rules = dir.write(
        "threshold-override.yaml",
        &format!(
            "groups:\n  - name: test-thresholds\n    rules:\n      - record: genesys_queue_longest_wait_threshold_seconds\n        expr: 0 * genesys_queue_info{{queue_id=\"{target}\"}} + 5\n"
        ),
    );
    let mut rules = promstack::shipped_rule_files(&root());
    assert!(!rules.is_empty(), "alerts/ ships rule files");
    rules.push(override_rules);
    let prom = Prometheus::start(&dir, std::slice::from_ref(&demo.exporter), &rules, Some(&am.addr)).await;
    prom.until_nonempty("genesys_queue_info", Duration::from_secs(30)).await;
    prom.until_nonempty("genesys_queue_agents", Duration::from_secs(30)).await;
    // rate()/increase() over the panels' windows need a few samples.
    tokio::time::sleep(Duration::from_secs(12)).await;

    // Every panel's every target, template variables as "all".
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in dashboards() {
        for (title, expr) in support::dashboards::panel_targets(&file) {
            let q = support::dashboards::substitute_all(&expr);
            ran += 1;
            match prom.query(&q).await {
                Ok(r) if r.is_empty() => failures.push(format!("{}: panel {title:?}: no series for {q}", name(&file))),
                Ok(_) => {}
                Err(e) => failures.push(format!("{}: panel {title:?}: {e} in {q}", name(&file))),
            }
        }
    }
    assert!(ran >= 20, "the dashboards have panels with queries ({ran})");
    assert!(failures.is_empty(), "{} of {ran} panel queries failed:\n{}", failures.len(), failures.join("\n"));

    // A long wait pages: a crowd arrives on the target queue, more than its agents can take.
    demo.fault(json!({"kind": "arrive", "queue_id": target, "media_type": "voice", "count": 40})).await;
    let fired = wait_for_alert(&hook, "GenesysQueueLongestWaitHigh", &target, "firing", Duration::from_secs(150)).await;
    assert_eq!(fired["labels"]["queue"], target_name.as_str(), "the page names the queue: {fired}");
    assert_eq!(fired["labels"]["severity"], "page", "{fired}");
    assert!(fired["annotations"]["runbook_url"].as_str().is_some_and(|u| u.contains("runbooks.md#")), "{fired}");
    // Other queues (threshold 120 s) did not page.
    let others: Vec<Value> = alerts(&hook, "GenesysQueueLongestWaitHigh")
        .into_iter()
        .filter(|a| a["labels"]["queue_id"] != target.as_str())
        .collect();
    assert!(others.is_empty(), "only the target queue paged: {others:?}");

    // The wait clears: every waiting caller hangs up.
    demo.fault(json!({"kind": "abandon_waiting", "queue_id": target})).await;
    wait_for_alert(&hook, "GenesysQueueLongestWaitHigh", &target, "resolved", Duration::from_secs(60)).await;

    // A stalled socket: the health dashboard's queries show polling and a rising heartbeat age.
    demo.fault(json!({"kind": "stall_sockets", "seconds": 40})).await;
    prom.until_nonempty(r#"sum(genesys_queue_source{source="poll"}) > 0"#, Duration::from_secs(30)).await;
    let age = prom.until_nonempty("genesys_notification_heartbeat_age_seconds > 3", Duration::from_secs(30)).await;
    let age1: f64 = age[0]["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let age = prom.query("genesys_notification_heartbeat_age_seconds").await.expect("query");
    let age2: f64 = age.first().and_then(|s| s["value"][1].as_str()).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    assert!(age2 > age1, "heartbeat age rises during the stall: {age1} then {age2}");
    prom.until_nonempty(r#"max(genesys_queue_stale) == 1"#, Duration::from_secs(10)).await;
}

fn alerts(hook: &Webhook, alertname: &str) -> Vec<Value> {
    hook.all()
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == alertname)
        .collect()
}

async fn wait_for_alert(hook: &Webhook, alertname: &str, queue_id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(a) =
            alerts(hook, alertname).into_iter().find(|a| a["labels"]["queue_id"] == queue_id && a["status"] == status)
        {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no {status} {alertname} for {queue_id} within {within:?}; received: {:#?}",
            hook.all()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
