//! The streaming collector end to end: the built-in simulator over real HTTP and WebSocket, the exporter in
//! process, and `/metrics` compared with the simulator's ground truth after each fault Genesys can throw.

mod support;

use genesys_cloud_exporter::sim::SimConfig;
use serde_json::json;
use std::time::Duration;
use support::fault;
use support::{assert_converged, Env};

/// A quiet org: no random arrivals, so the truth only moves when a test says so.
fn quiet(queues: usize) -> SimConfig {
    support::org(queues, 0.0)
}

fn queue_ids(env: &Env) -> Vec<String> {
    env.sim.truth().queues.iter().map(|q| q.id.clone()).collect()
}

/// Put a caller on `queue`, then wait until the exporter agrees with the truth again.
async fn arrive_and_converge(env: &Env, queue: &str, what: &str) {
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": queue, "media_type": "voice", "count": 1})));
    converge(env, what).await;
}

/// Freeze the model, converge, unfreeze: a moving truth could never be matched exactly.
async fn converge(env: &Env, what: &str) {
    env.sim.inject(fault(json!({"kind": "pause"})));
    let took = assert_converged(env.converge(Duration::from_secs(20), true).await, what);
    env.sim.inject(fault(json!({"kind": "resume"})));
    eprintln!("converged {what} in {took:?}");
}

/// Wait until every queue is back on the stream (a converged value may have come from polling meanwhile), so the
/// next fault hits a connected socket.
async fn streaming(env: &Env) {
    env.until(Duration::from_secs(20), "every queue served by the stream", |s| {
        let sources: Vec<_> =
            s.iter().filter(|x| x.name == "genesys_queue_source" && x.label("source") == "stream").collect();
        !sources.is_empty() && sources.iter().all(|x| x.value == 1.0)
    })
    .await;
    assert!(env.sim.stats().channel_list.iter().all(|c| c.connected), "every channel has its socket");
}

fn value(samples: &[support::prom::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    Env::metric(samples, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_truth_through_every_stream_fault() {
    let env = support::start(quiet(200), |_| {}).await;
    converge(&env, "after start").await;
    let ids = queue_ids(&env);
    let s = env.samples().await;
    assert_eq!(value(&s, "genesys_notification_channels", &[]), 1.0);
    assert_eq!(value(&s, "genesys_notification_topics", &[]), 200.0);
    assert_eq!(s.iter().filter(|x| x.name == "genesys_queue_info").count(), 200);
    assert!(
        s.iter().filter(|x| x.name == "genesys_queue_source" && x.label("source") == "stream").all(|x| x.value == 1.0),
        "every queue is served by the stream"
    );

    // A pushed change.
    arrive_and_converge(&env, &ids[0], "after a pushed change").await;

    // A dropped socket, with changes made while it is down.
    streaming(&env).await;
    env.sim.inject(fault(json!({"kind": "drop_sockets"})));
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": ids[1], "media_type": "chat", "count": 2})));
    converge(&env, "after a dropped socket with changes during the gap").await;

    // Maintenance warning: the exporter reconnects before the server cuts.
    streaming(&env).await;
    env.sim.inject(fault(json!({"kind": "socket_closing", "grace_seconds": 30})));
    arrive_and_converge(&env, &ids[2], "after socket_closing").await;

    // Channel expiry: a new channel, subscriptions and a re-seed.
    streaming(&env).await;
    env.sim.inject(fault(json!({"kind": "expire_channel"})));
    arrive_and_converge(&env, &ids[3], "after channel expiry").await;

    // Token revocation.
    eprintln!(
        "channels before revocation: {:?}",
        env.sim.stats().channel_list.iter().map(|c| (&c.id, c.connected)).collect::<Vec<_>>()
    );
    streaming(&env).await;
    env.sim.inject(fault(json!({"kind": "revoke_tokens"})));
    arrive_and_converge(&env, &ids[4], "after token revocation").await;

    let s = env.samples().await;
    let reasons: Vec<(String, f64)> = s
        .iter()
        .filter(|x| x.name == "genesys_notification_reconnects_total")
        .map(|x| (x.label("reason").to_owned(), x.value))
        .collect();
    for want in ["socket_closing", "token_revoked"] {
        assert!(reasons.iter().any(|(r, v)| r == want && *v >= 1.0), "reconnect reason {want} counted: {reasons:?}");
    }
    env.exporter.stop().await.expect("exporter stops cleanly");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_socket_and_an_expiring_token_do_not_lose_data() {
    let mut cfg = quiet(200);
    cfg.token_lifetime = Duration::from_secs(6);
    let env = support::start(cfg, |_| {}).await;
    converge(&env, "after start").await;
    let ids = queue_ids(&env);

    // Another client connects to the exporter's channel: Genesys kicks the first socket. The intruder then leaves,
    // and the exporter must be back on its channel with nothing lost.
    streaming(&env).await;
    let channel = env.sim.stats().channel_list.into_iter().find(|c| c.connected).expect("a connected channel");
    let url = format!("{}/channels/{}", env.sim.base_url().replacen("http://", "ws://", 1), channel.id);
    let (intruder, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("second socket connects");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(intruder);
    arrive_and_converge(&env, &ids[0], "after a second socket kicked the first").await;
    let s = env.samples().await;
    assert!(
        s.iter().any(|x| x.name == "genesys_notification_reconnects_total"
            && x.label("reason") == "server_closed"
            && x.value >= 1.0),
        "the kick was seen as a server close"
    );

    // Let the token expire at least once mid-stream (lifetime 6 s, refreshed at 90 %).
    tokio::time::sleep(Duration::from_secs(8)).await;
    arrive_and_converge(&env, &ids[1], "after the token expired mid-stream").await;
    env.exporter.stop().await.expect("exporter stops cleanly");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_topic_is_polled_and_queue_changes_are_followed() {
    let cfg = quiet(200);
    let sim = support::start_sim(cfg).await;
    let ids: Vec<String> = sim.truth().queues.iter().map(|q| q.id.clone()).collect();
    let forbidden = ids[5].clone();
    sim.inject(fault(json!({"kind": "forbid_topic", "queue_id": forbidden})));
    let opts = support::fast_options(&sim.base_url());
    let exporter = support::start_exporter(opts.clone()).await;
    let env = Env { sim, exporter, http: reqwest::Client::new(), opts };
    converge(&env, "with one rejected topic").await;
    let s = env.samples().await;
    assert_eq!(value(&s, "genesys_queue_source", &[("queue_id", &forbidden), ("source", "poll")]), 1.0);
    assert_eq!(value(&s, "genesys_queue_stale", &[("queue_id", &forbidden)]), 1.0);
    assert_eq!(value(&s, "genesys_queue_source", &[("queue_id", &ids[6]), ("source", "stream")]), 1.0);
    arrive_and_converge(&env, &forbidden, "after a change on the polled queue").await;

    // Queue added, renamed, removed: followed at the next re-listing (2 s in tests).
    env.sim.inject(fault(json!({"kind": "add_queue", "name": "Added Queue"})));
    env.sim.inject(fault(json!({"kind": "rename_queue", "id": ids[0], "name": "Renamed Queue"})));
    env.sim.inject(fault(json!({"kind": "remove_queue", "id": ids[1]})));
    converge(&env, "after queue add, rename and remove").await;
    let s = env.samples().await;
    assert!(!s.iter().any(|x| x.label("queue_id") == ids[1]), "a removed queue's series are dropped");
    assert!(s.iter().any(|x| x.name == "genesys_queue_info" && x.label("queue") == "Added Queue"));
    let added = env.sim.truth().queues.iter().find(|q| q.name == "Added Queue").map(|q| q.id.clone());
    let added = added.expect("the simulator lists the added queue");
    arrive_and_converge(&env, &added, "after a change on the added queue").await;
    env.exporter.stop().await.expect("exporter stops cleanly");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_queues_use_two_channels() {
    let env = support::start(quiet(1500), |_| {}).await;
    env.until(Duration::from_secs(60), "1500 queues exported", |s| {
        s.iter().filter(|x| x.name == "genesys_queue_info").count() == 1500
    })
    .await;
    converge(&env, "with 1500 queues").await;
    let s = env.samples().await;
    assert_eq!(value(&s, "genesys_notification_channels", &[]), 2.0);
    assert_eq!(value(&s, "genesys_notification_topics", &[]), 1500.0);
    let stats: serde_json::Value = env
        .http
        .get(format!("{}/sim/stats", env.sim.base_url()))
        .send()
        .await
        .expect("sim stats")
        .json()
        .await
        .expect("sim stats JSON");
    eprintln!("simulator stats: {stats}");
    env.exporter.stop().await.expect("exporter stops cleanly");
    env.sim.shutdown().await;
}
