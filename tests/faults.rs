//! The fault-scenario suite: one test per fault Genesys can throw, each with traffic flowing, the measured data gap
//! (the longest time any queue's exported values disagreed with the simulator's truth beyond one update period)
//! asserted against a bound derived from the config, automatic recovery and no panic. Figures go to
//! `target/reliability/`; `cargo test --test faults -- --ignored write_reliability_table` renders them into
//! `docs/reliability.md`.

mod support;

use genesys_cloud_exporter::app::ExporterOptions;
use genesys_cloud_exporter::sim::SimConfig;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::gap::{observe, Watch};
use support::{assert_converged, fault, Env};

const QUEUES: usize = 20;
/// Model arrivals per queue and hour, on top of the suite's own pump of one caller every 3 s round the queues (light load: the truth moves every few seconds).
const ARRIVALS_PER_HOUR: f64 = 30.0;
/// Slack for scheduling, the sampler's period and a reconnect's backoff (base 500 ms … jittered).
const MARGIN: Duration = Duration::from_secs(2);

/// Voice only: a queue's changes then span at most three message groups (see `support::gap::AGREE_WINDOW`).
fn traffic(queues: usize) -> SimConfig {
    let mut cfg = support::org(queues, ARRIVALS_PER_HOUR);
    cfg.model.media_types = vec!["voice".to_owned()];
    cfg
}

fn secs(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64())
}

/// The stream lost: noticed within the heartbeat timeout, served by the next poll, plus a margin.
fn stream_loss(o: &ExporterOptions) -> (Duration, String) {
    let c = &o.collector;
    (
        c.heartbeat_timeout + c.poll_interval + MARGIN,
        format!(
            "heartbeat_timeout {} s + poll_interval {} s + {} s",
            secs(c.heartbeat_timeout),
            secs(c.poll_interval),
            secs(MARGIN)
        ),
    )
}

/// Start, wait for every queue on the stream and one exact match with the truth (paused), resume traffic.
async fn ready(cfg: SimConfig, tweak: impl FnOnce(&mut ExporterOptions)) -> Env {
    let env = support::start(cfg, tweak).await;
    streaming(&env, Duration::from_secs(60)).await;
    env.sim.inject(fault(json!({"kind": "pause"})));
    assert_converged(env.converge(Duration::from_secs(30), true).await, "before the fault");
    env.sim.inject(fault(json!({"kind": "resume"})));
    env
}

async fn streaming(env: &Env, within: Duration) {
    env.until(within, "every queue served by the stream", |s| {
        let n = s.iter().filter(|x| x.name == "genesys_queue_info").count();
        n > 0
            && s.iter()
                .filter(|x| x.name == "genesys_queue_source" && x.label("source") == "stream" && x.value == 1.0)
                .count()
                == n
    })
    .await;
}

async fn finish(env: Env) {
    env.exporter.stop().await.expect("exporter stops cleanly");
    env.sim.shutdown().await;
}

fn reasons(s: &[support::prom::Sample]) -> Vec<(String, f64)> {
    s.iter()
        .filter(|x| x.name == "genesys_notification_reconnects_total")
        .map(|x| (x.label("reason").to_owned(), x.value))
        .collect()
}

async fn assert_reason(env: &Env, want: &str) {
    let r = reasons(&env.samples().await);
    assert!(r.iter().any(|(k, v)| k == want && *v >= 1.0), "reconnect reason {want} counted: {r:?}");
}

/// One scenario: a traffic org, `fault` applied after the lead, the generic stream-loss bound plus `extra`.
async fn scenario(name: &'static str, what: &'static str, faults: Vec<Value>) -> Env {
    let env = ready(traffic(QUEUES), |_| {}).await;
    let (bound, why) = stream_loss(&env.opts);
    let w = Watch::new(name, what, bound, why);
    observe(&env, &w, async {
        for f in faults {
            env.sim.inject(fault(f));
        }
    })
    .await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline() {
    let env = scenario("baseline", "none (traffic only)", vec![]).await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_drop() {
    let env =
        scenario("socket_drop", "TCP connection dropped, no close frame", vec![json!({"kind": "drop_sockets"})]).await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_stall() {
    let env = scenario(
        "silent_stall",
        "socket silent for 6 s (no frames, TCP open)",
        vec![json!({"kind": "stall_sockets", "seconds": 6})],
    )
    .await;
    assert_reason(&env, "heartbeat_timeout").await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_loss() {
    let env = scenario(
        "heartbeat_loss",
        "no heartbeats or pongs for 6 s, messages still flow",
        vec![json!({"kind": "heartbeat_loss", "seconds": 6})],
    )
    .await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_closing() {
    let env = scenario(
        "socket_closing",
        "`v2.system.socket_closing`, closed after 2 s",
        vec![json!({"kind": "socket_closing", "grace_seconds": 2})],
    )
    .await;
    assert_reason(&env, "socket_closing").await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_expiry() {
    let env =
        scenario("channel_expiry", "channel expired (404 from then on)", vec![json!({"kind": "expire_channel"})]).await;
    assert_reason(&env, "channel_gone").await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry() {
    // A 4 s token: expires (and is refreshed at 90 %) twice during the observation.
    let mut cfg = traffic(QUEUES);
    cfg.token_lifetime = Duration::from_secs(4);
    let env = ready(cfg, |_| {}).await;
    let (bound, why) = stream_loss(&env.opts);
    let mut w = Watch::new("token_expiry", "4 s token lifetime, refreshed throughout", bound, why);
    w.min_after = Duration::from_secs(9);
    observe(&env, &w, async {}).await;
    assert!(env.sim.stats().tokens_issued >= 3, "the token was refreshed: {:?}", env.sim.stats().tokens_issued);
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_revocation() {
    let env = scenario(
        "token_revocation",
        "`token_revoked` on the socket, every token 401",
        vec![json!({"kind": "revoke_tokens"})],
    )
    .await;
    assert_reason(&env, "token_revoked").await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_401() {
    // The channel expires and the calls that rebuild it (create, subscribe, re-seed) answer 401 three times.
    let env = scenario(
        "subscribe_401",
        "channel expired, then 3 × 401 on the rebuilding calls",
        vec![json!({"kind": "error_burst", "count": 3, "status": 401}), json!({"kind": "expire_channel"})],
    )
    .await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_403() {
    // Two topics become forbidden; the channel expires, so the new subscription rejects them: those two queues are
    // served by polling from then on, the rest by the stream.
    let env = ready(traffic(QUEUES), |_| {}).await;
    let ids: Vec<String> = env.sim.truth().queues.iter().map(|q| q.id.clone()).collect();
    let forbidden: BTreeSet<String> = ids[..2].iter().cloned().collect();
    let (bound, why) = stream_loss(&env.opts);
    let mut w = Watch::new("subscribe_403", "2 topics rejected (missing permission) on resubscribe", bound, why);
    w.polled = forbidden.clone();
    observe(&env, &w, async {
        for q in &forbidden {
            env.sim.inject(fault(json!({"kind": "forbid_topic", "queue_id": q})));
        }
        env.sim.inject(fault(json!({"kind": "expire_channel"})));
    })
    .await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_storm() {
    // The socket drops while every API call answers 429 for 4 s: the re-seed waits the storm out.
    let env = ready(traffic(QUEUES), |_| {}).await;
    let storm = Duration::from_secs(4);
    let (b, why) = stream_loss(&env.opts);
    let w = Watch::new(
        "rate_limit_storm",
        "socket dropped during a 4 s 429 storm",
        b + storm + Duration::from_secs(1),
        format!("{why} + storm 4 s + Retry-After rounding 1 s"),
    );
    observe(&env, &w, async {
        env.sim.inject(fault(json!({"kind": "rate_limit_storm", "seconds": storm.as_secs_f64()})));
        env.sim.inject(fault(json!({"kind": "drop_sockets"})));
    })
    .await;
    let st = env.sim.stats();
    assert!(st.responses_429 >= 1, "the storm was hit");
    assert_eq!(st.early_after_429, 0, "no request before its Retry-After");
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_burst_5xx() {
    let env = scenario(
        "error_burst_5xx",
        "socket dropped, next 8 API calls 503",
        vec![json!({"kind": "error_burst", "count": 8, "status": 503}), json!({"kind": "drop_sockets"})],
    )
    .await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_api() {
    // Every HTTP answer takes 2 s for 8 s, and the socket drops at its start: the re-seed (observations +
    // aggregates) takes two slow calls.
    let env = ready(traffic(QUEUES), |_| {}).await;
    let latency = Duration::from_secs(2);
    let (b, why) = stream_loss(&env.opts);
    let w = Watch::new(
        "slow_api",
        "socket dropped, every API call takes 2 s for 8 s",
        b + latency * 2,
        format!("{why} + 2 × 2 s latency"),
    );
    observe(&env, &w, async {
        env.sim.inject(fault(json!({"kind": "latency", "ms": latency.as_millis() as u64, "seconds": 8})));
        env.sim.inject(fault(json!({"kind": "drop_sockets"})));
    })
    .await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame() {
    let env =
        scenario("malformed_frame", "a text frame that is not JSON", vec![json!({"kind": "malformed_frame"})]).await;
    let s = env.samples().await;
    let errors: f64 = s.iter().filter(|x| x.name == "genesys_payload_errors_total").map(|x| x.value).sum();
    assert!(errors >= 1.0, "the bad frame is counted");
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame() {
    let env = scenario(
        "oversized_frame",
        "a 5 MiB frame (over the 4 MiB cap)",
        vec![json!({"kind": "oversized_frame", "bytes": 5 << 20})],
    )
    .await;
    assert_reason(&env, "oversized_frame").await;
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_add_remove_rename() {
    let env = ready(traffic(QUEUES), |_| {}).await;
    let ids: Vec<String> = env.sim.truth().queues.iter().map(|q| q.id.clone()).collect();
    let c = &env.opts.collector;
    let bound = c.refresh_interval + c.poll_interval + MARGIN;
    let why = format!(
        "refresh_interval {} s + poll_interval {} s + {} s",
        secs(c.refresh_interval),
        secs(c.poll_interval),
        secs(MARGIN)
    );
    let w = Watch::new("queue_add_remove_rename", "a queue added, one removed, one renamed", bound, why);
    observe(&env, &w, async {
        env.sim.inject(fault(json!({"kind": "add_queue", "name": "Added Mid-Stream"})));
        env.sim.inject(fault(json!({"kind": "remove_queue", "id": ids[0]})));
        env.sim.inject(fault(json!({"kind": "rename_queue", "id": ids[1], "name": "Renamed Mid-Stream"})));
    })
    .await;
    let s = env.samples().await;
    assert!(!s.iter().any(|x| x.label("queue_id") == ids[0]), "the removed queue's series are gone");
    assert!(s.iter().any(|x| x.name == "genesys_queue_info" && x.label("queue") == "Renamed Mid-Stream"));
    assert!(s.iter().any(|x| x.name == "genesys_queue_info" && x.label("queue") == "Added Mid-Stream"));
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_1000_queues() {
    // 1500 queues on two channels; both sockets drop. Re-seeding 1500 queues is 15 observations + 15 aggregates
    // calls, paced by the budget (300/min at share 1.0 = 5/s).
    // Traffic from the pump only (on the compared queues): 1500 queues of model traffic keep the simulator's
    // one-message-per-queue-per-second publishing seconds behind, which is not the exporter's gap.
    let mut cfg = traffic(1500);
    cfg.model.arrivals_per_hour = 0.0;
    let env = ready(cfg, |_| {}).await;
    let (b, why) = stream_loss(&env.opts);
    let reseed = Duration::from_secs(30 / 5);
    let mut w = Watch::new(
        "over_1000_queues",
        "1500 queues on 2 channels, both sockets dropped",
        b + reseed,
        format!("{why} + re-seed 30 calls at 5/s"),
    );
    // Every 15th queue (100, on both channels) is compared: a full comparison of 1500 per sample is too slow.
    w.every_nth = 15;
    w.pump_every = Duration::from_millis(300);
    observe(&env, &w, async {
        env.sim.inject(fault(json!({"kind": "drop_sockets"})));
    })
    .await;
    assert_eq!(Env::metric(&env.samples().await, "genesys_notification_channels", &[]), 2.0);
    finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_restart() {
    let env = scenario(
        "simulator_restart",
        "service restarted: every channel, socket and token gone",
        vec![json!({"kind": "restart"})],
    )
    .await;
    finish(env).await;
}

/// Wait until the simulator holds answers matching `f` (see `hold_answers`).
async fn until_held(env: &Env, what: &str, f: impl Fn(&[Vec<String>]) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let held = env.sim.stats().answers_held;
        if f(&held) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}: held {held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_reads_hold_messages_per_queue() {
    // Two complete reads in flight on one channel: the re-seed after a reconnect, and the re-seed of a queue added
    // meanwhile. The first must not let the added queue's topic messages through while the second is still in
    // flight: that read was answered before them and would land over them, and with the org paused nothing would
    // correct it. Answers are held by the simulator (computed on arrival, sent on release), so the order is forced.
    let mut cfg = support::org(3, 0.0);
    cfg.model.media_types = vec!["voice".to_owned()];
    let env = support::start(cfg, |_| {}).await;
    streaming(&env, Duration::from_secs(60)).await;
    env.sim.inject(fault(json!({"kind": "pause"})));
    assert_converged(env.converge(Duration::from_secs(30), true).await, "before the reads");
    let old: Vec<String> = env.sim.truth().queues.iter().map(|q| q.id.clone()).collect();

    // The reconnect's re-seed (and the poll of the disconnected queues) are held.
    env.sim.inject(fault(json!({"kind": "hold_answers", "queue_id": old[0]})));
    env.sim.inject(fault(json!({"kind": "drop_sockets"})));
    until_held(&env, "the re-seed and the poll of the old queues", |h| h.len() >= 2).await;
    // A queue appears; the channel subscribes to it on the open socket and re-seeds it: held too.
    env.sim.inject(fault(json!({"kind": "add_queue", "name": "Added While Re-seeding"})));
    let added = env
        .sim
        .truth()
        .queues
        .iter()
        .find(|q| q.name == "Added While Re-seeding")
        .map(|q| q.id.clone())
        .expect("added queue");
    env.sim.inject(fault(json!({"kind": "hold_answers", "queue_id": added})));
    until_held(&env, "the added queue's re-seed", |h| h.iter().any(|q| q == std::slice::from_ref(&added))).await;

    // The first re-seed lands; the old queues are back on the stream.
    env.sim.inject(fault(json!({"kind": "release_answers", "queue_id": old[0]})));
    env.until(Duration::from_secs(10), "the old queues on the stream", |s| {
        old.iter().all(|q| {
            s.iter().any(|x| {
                x.name == "genesys_queue_source"
                    && x.label("queue_id") == q
                    && x.label("source") == "stream"
                    && x.value == 1.0
            })
        })
    })
    .await;
    // A topic message for the added queue, newer than its held re-seed.
    let sent = env.sim.stats().messages_sent;
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": added, "media_type": "voice", "count": 2})));
    let start = std::time::Instant::now();
    while env.sim.stats().messages_sent == sent {
        assert!(start.elapsed() < Duration::from_secs(10), "the arrival was published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The added queue's re-seed (and poll) land, older than that message: the message must win.
    env.sim.inject(fault(json!({"kind": "release_answers"})));
    assert_converged(env.converge(Duration::from_secs(10), true).await, "after the held reads landed");
    streaming(&env, Duration::from_secs(10)).await;
    finish(env).await;
}

/// An OAuth token for the test's own client calls (the same OAuth client as the exporter's, as Genesys counts
/// channels per client).
async fn token(env: &Env) -> String {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("sim-client:sim-secret");
    let r: Value = env
        .http
        .post(format!("{}/oauth/token", env.sim.base_url()))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    r["access_token"].as_str().expect("access_token").to_owned()
}

async fn create_channel(env: &Env, token: &str) -> Value {
    env.http
        .post(format!("{}/api/v2/notifications/channels", env.sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("create channel")
        .json()
        .await
        .expect("channel JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_evicted() {
    // Another user of the same OAuth client opens 19 channels with sockets, then a 21st: Genesys removes the
    // least recently used channel, the exporter's, with `no_longer_subscribed`.
    let env = ready(traffic(QUEUES), |_| {}).await;
    let tok = token(&env).await;
    let mut sockets = Vec::new();
    for _ in 0..19 {
        let c = create_channel(&env, &tok).await;
        let uri = c["connectUri"].as_str().expect("connectUri").to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(uri.as_str()).await.expect("socket connects");
        sockets.push(ws);
    }
    let (bound, why) = stream_loss(&env.opts);
    let w = Watch::new("channel_evicted", "a 21st channel of the same client evicts the exporter's", bound, why);
    observe(&env, &w, async {
        create_channel(&env, &tok).await;
    })
    .await;
    assert!(env.sim.stats().channels_evicted >= 1, "a channel was evicted");
    assert_reason(&env, "no_longer_subscribed").await;
    drop(sockets);
    finish(env).await;
}

/// Renders `target/reliability/*.json` into `docs/reliability.md` (run after the suite).
#[test]
#[ignore]
fn write_reliability_table() {
    let n = support::gap::write_table();
    eprintln!("{n} scenarios written to docs/reliability.md");
}
