//! `genesys-cloud-exporter check` against the simulator: a good setup passes with a summary; a bad secret, a
//! missing permission and a queue count over the channel limit fail with the fix in words and a non-zero exit.

mod support;

use genesys_cloud_exporter::sim::SimConfig;
use std::process::{Command, Output};

fn check(base: &str, secret: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_genesys-cloud-exporter"))
        .arg("check")
        .args(extra)
        .env("GENESYS_CLIENT_ID", "sim-client")
        .env("GENESYS_CLIENT_SECRET", secret)
        .env("GENESYS_API_BASE_URL", base)
        .env("GENESYS_LOGIN_BASE_URL", base)
        .env_remove("GENESYS_EXPORTER_CONFIG_FILE")
        .output()
        .expect("run check")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn org(queues: usize) -> SimConfig {
    let mut cfg = SimConfig::default();
    cfg.model.queues = queues;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_setup_passes_with_a_summary() {
    let sim = support::start_sim(org(25)).await;
    let base = sim.base_url();
    let out = tokio::task::spawn_blocking(move || check(&base, "sim-secret", &[])).await.expect("join");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("25 listed, 25 exported"), "{t}");
    assert!(t.contains("notification channels: 1"), "{t}");
    assert!(t.contains("requests/min with healthy streams"), "{t}");
    assert!(t.contains("check passed"), "{t}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_fails_naming_the_credentials() {
    let sim = support::start_sim(org(3)).await;
    let base = sim.base_url();
    let out = tokio::task::spawn_blocking(move || check(&base, "wrong-secret", &[])).await.expect("join");
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("[FAIL] credentials") && t.contains("GENESYS_CLIENT_SECRET"), "{t}");
    assert!(!t.contains("wrong-secret"), "the secret is not echoed: {t}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_named() {
    let mut cfg = org(3);
    cfg.denied_permissions = vec!["analytics:conversationAggregate:view".to_owned()];
    let sim = support::start_sim(cfg).await;
    let base = sim.base_url();
    let out = tokio::task::spawn_blocking(move || check(&base, "sim-secret", &[])).await.expect("join");
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("FAIL") && t.contains("analytics:conversationAggregate:view"), "{t}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_queues_for_the_channel_limit_says_to_shard() {
    let sim = support::start_sim(org(30)).await;
    let base = sim.base_url();
    let dir = std::env::temp_dir().join(format!("check-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("small-channels.yaml");
    std::fs::write(&file, "notifications:\n  topics_per_channel: 10\n  max_channels: 2\n").expect("config");
    let path = file.to_string_lossy().into_owned();
    let out =
        tokio::task::spawn_blocking(move || check(&base, "sim-secret", &["--config.file", &path])).await.expect("join");
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("--shard") || t.contains("shard"), "the fix says to shard: {t}");
    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
}
