//! Wallboard KPIs end to end against the simulator: counters and histograms built from interval aggregates equal
//! the simulator's truth exactly over two interval rollovers and an exporter restart; the longest wait ticks
//! between messages and clears; both forms of `oLongestWaiting` give the same value; presence names resolve,
//! also for a definition added while running; message-media queues get their own series.

mod support;

use genesys_cloud_exporter::model::now_ms;
use genesys_cloud_exporter::sim::model::{LongestForm, TruthMedia};
use genesys_cloud_exporter::sim::SimHandle;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::prom::Sample;
use support::{fault, Env};

const INTERVAL_MS: i64 = 30 * 60 * 1000;

fn v(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    Env::metric(s, name, labels)
}

/// What the counters of one media type should read: the sum of the intervals the exporter has counted.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Totals {
    offered: u64,
    answered: (u64, u64),
    abandoned: (u64, u64),
    handle: (u64, u64),
}

impl Totals {
    fn add(&mut self, m: &TruthMedia) {
        let i = &m.interval;
        self.offered += i.offered;
        self.answered.0 += i.answered.count;
        self.answered.1 += i.answered.sum_ms;
        self.abandoned.0 += i.abandoned.count;
        self.abandoned.1 += i.abandoned.sum_ms;
        self.handle.0 += i.handle.count;
        self.handle.1 += i.handle.sum_ms;
    }
}

fn exported(s: &[Sample], q: &str, media: &str) -> Totals {
    let l = [("queue_id", q), ("media_type", media)];
    let n = |name: &str| v(s, name, &l).round() as u64;
    let ms = |name: &str| (v(s, name, &l) * 1000.0).round() as u64;
    Totals {
        offered: n("genesys_queue_offered_total"),
        answered: (n("genesys_queue_answer_wait_seconds_count"), ms("genesys_queue_answer_wait_seconds_sum")),
        abandoned: (n("genesys_queue_abandon_wait_seconds_count"), ms("genesys_queue_abandon_wait_seconds_sum")),
        handle: (n("genesys_queue_handle_seconds_count"), ms("genesys_queue_handle_seconds_sum")),
    }
}

/// Wait until the counters of `q` equal `want` for every media type, and the `_total` counters agree with the
/// histograms' counts.
async fn counters_equal(env: &Env, q: &str, want: &BTreeMap<String, Totals>, what: &str) {
    let start = Instant::now();
    loop {
        let s = env.samples().await;
        let got: BTreeMap<String, Totals> = want.keys().map(|m| (m.clone(), exported(&s, q, m))).collect();
        if &got == want {
            for m in want.keys() {
                let l = [("queue_id", q), ("media_type", m.as_str())];
                assert_eq!(
                    v(&s, "genesys_queue_answered_total", &l),
                    want[m].answered.0 as f64,
                    "{what}: answered {m}"
                );
                assert_eq!(
                    v(&s, "genesys_queue_abandoned_total", &l),
                    want[m].abandoned.0 as f64,
                    "{what}: abandoned {m}"
                );
            }
            eprintln!("{what}: counters equal the truth after {:?}: {want:?}", start.elapsed());
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: counters {got:?} never equalled the truth {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn media_of(sim: &SimHandle, q: &str) -> BTreeMap<String, TruthMedia> {
    sim.truth().queues.into_iter().find(|x| x.id == q).expect("queue in truth").media
}

/// Nothing in progress on `q`: every conversation so far has ended, so an interval boundary loses nothing.
fn assert_quiet(sim: &SimHandle, q: &str) {
    let t = sim.truth().queues.into_iter().find(|x| x.id == q).expect("queue");
    for (m, s) in &t.media {
        assert_eq!((s.waiting, s.alerting, s.interacting), (0, 0, 0), "{m} conversations still in progress");
    }
    assert!(!t.routing_statuses.contains_key("INTERACTING"), "an agent is still in after-call work");
}

async fn advance(env: &Env, seconds: f64) {
    env.sim.inject(fault(json!({"kind": "advance", "seconds": seconds})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_histograms_equal_the_truth_over_two_rollovers_and_a_restart() {
    // Model time starts a second into the current wall-clock interval and only moves when the test says so.
    let wall = now_ms();
    let i0 = wall - wall.rem_euclid(INTERVAL_MS);
    let mut cfg = support::org(4, 0.0);
    cfg.start_ms = Some(i0 + 1_000);
    let sim = support::start_sim(cfg).await;
    sim.inject(fault(json!({"kind": "pause"})));
    let opts = support::fast_options(&sim.base_url());
    let mut env =
        Env { exporter: support::start_exporter(opts.clone()).await, sim, http: reqwest::Client::new(), opts };
    env.until(Duration::from_secs(20), "ready", |s| v(s, "genesys_up", &[]) == 1.0).await;
    let q = env.sim.truth().queues[0].id.clone();
    let media = ["voice", "chat"];
    let mut want: BTreeMap<String, Totals> = media.iter().map(|m| (m.to_string(), Totals::default())).collect();
    counters_equal(&env, &q, &want, "at start (baseline interval, nothing counted)").await;

    // Interval 0: known arrivals; 28 model minutes later every conversation has ended.
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 14})));
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "chat", "count": 5})));
    advance(&env, 28.0 * 60.0).await;
    assert_quiet(&env.sim, &q);
    let m0 = media_of(&env.sim, &q);
    assert!(m0["voice"].interval.answered.count > 0 && m0["voice"].interval.abandoned.count > 0, "{m0:?}");
    for m in media {
        want.get_mut(m).expect("media").add(&m0[m]);
    }
    counters_equal(&env, &q, &want, "interval 0").await;

    // Rollover 1 into interval 1, more traffic.
    advance(&env, 4.0 * 60.0).await;
    assert!(env.sim.truth().now_ms >= i0 + INTERVAL_MS, "crossed into interval 1");
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 9})));
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "chat", "count": 7})));
    advance(&env, 24.0 * 60.0).await;
    assert_quiet(&env.sim, &q);
    let m1 = media_of(&env.sim, &q);
    for m in media {
        want.get_mut(m).expect("media").add(&m1[m]);
    }
    counters_equal(&env, &q, &want, "interval 0 + interval 1").await;

    // An exporter restart: the interval in progress is the new baseline, nothing jumps.
    env.exporter.stop().await.expect("exporter stops");
    env.exporter = support::start_exporter(env.opts.clone()).await;
    env.until(Duration::from_secs(20), "ready again", |s| v(s, "genesys_up", &[]) == 1.0).await;
    let mut want: BTreeMap<String, Totals> = media.iter().map(|m| (m.to_string(), Totals::default())).collect();
    counters_equal(&env, &q, &want, "after the restart (baseline)").await;

    // Rollover 2 into interval 2, counted from zero by the new exporter.
    advance(&env, 4.0 * 60.0).await;
    assert!(env.sim.truth().now_ms >= i0 + 2 * INTERVAL_MS, "crossed into interval 2");
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 11})));
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "chat", "count": 2})));
    advance(&env, 24.0 * 60.0).await;
    assert_quiet(&env.sim, &q);
    let m2 = media_of(&env.sim, &q);
    for m in media {
        want.get_mut(m).expect("media").add(&m2[m]);
    }
    counters_equal(&env, &q, &want, "interval 2 after the restart").await;
    // The per-interval gauges equal the topic's (the truth's) current interval.
    let s = env.samples().await;
    for m in media {
        let l = [("queue_id", q.as_str()), ("media_type", m)];
        assert_eq!(v(&s, "genesys_queue_interval_offered", &l), m2[m].interval.offered as f64, "interval_offered {m}");
        assert_eq!(v(&s, "genesys_queue_interval_answered", &l), m2[m].interval.answered.count as f64);
        assert_eq!(v(&s, "genesys_queue_interval_abandoned", &l), m2[m].interval.abandoned.count as f64);
    }
    env.exporter.stop().await.expect("exporter stops");
    env.sim.shutdown().await;
}

/// A queue with callers waiting and every agent busy: returns (env, queue id).
async fn crowded(form: LongestForm) -> (Env, String) {
    let mut cfg = support::org(3, 0.0);
    cfg.model.longest_form = form;
    cfg.model.agents_per_queue = 2;
    let env = support::start(cfg, |_| {}).await;
    env.until(Duration::from_secs(20), "ready", |s| v(s, "genesys_up", &[]) == 1.0).await;
    let q = env.sim.truth().queues[0].id.clone();
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 12})));
    (env, q)
}

fn longest(s: &[Sample], q: &str) -> Option<f64> {
    support::prom::value(s, "genesys_queue_longest_waiting_seconds", &[("queue_id", q), ("media_type", "voice")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_wait_ticks_between_messages_and_clears() {
    let (env, q) = crowded(LongestForm::Duration).await;
    env.until(Duration::from_secs(10), "a longest wait is exported", |s| longest(s, &q).is_some_and(|x| x > 0.0)).await;
    // Freeze the model: no message can arrive, yet the clock on the wallboard keeps going.
    env.sim.inject(fault(json!({"kind": "pause"})));
    // Changes made before the pause may still be in the one-message-per-second queue: let it drain.
    let mut sent = env.sim.stats().messages_sent;
    loop {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let now = env.sim.stats().messages_sent;
        if now == sent {
            break;
        }
        sent = now;
    }
    let a = longest(&env.samples().await, &q).expect("longest wait");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = longest(&env.samples().await, &q).expect("longest wait");
    assert_eq!(env.sim.stats().messages_sent, sent, "no message in between");
    assert!(b - a >= 1.5 && b - a <= 3.0, "the longest wait grew by the time between scrapes: {a} then {b}");
    // The oldest caller leaves: the longest wait drops.
    env.sim.inject(fault(json!({"kind": "resume"})));
    env.sim.inject(fault(json!({"kind": "abandon_waiting", "queue_id": q})));
    env.until(Duration::from_secs(10), "the longest wait clears", |s| longest(s, &q).is_none_or(|x| x == 0.0)).await;
    env.exporter.stop().await.expect("exporter stops");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_forms_of_longest_waiting_give_the_same_value() {
    for form in [LongestForm::Duration, LongestForm::Epoch] {
        let (env, q) = crowded(form).await;
        env.until(Duration::from_secs(10), "a longest wait is exported", |s| longest(s, &q).is_some_and(|x| x > 0.0))
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        env.sim.inject(fault(json!({"kind": "pause"})));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t = env.sim.truth();
        let start = t.queues.iter().find(|x| x.id == q).and_then(|x| x.media["voice"].longest_waiting_start_ms);
        let start = start.expect("someone waits");
        let got = longest(&env.samples().await, &q).expect("longest wait");
        let want = (now_ms() - start) as f64 / 1000.0;
        assert!((got - want).abs() < 1.0, "{form:?}: exported {got} s, truth {want} s");
        env.exporter.stop().await.expect("exporter stops");
        env.sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_names_resolve_also_for_a_definition_added_while_running() {
    let mut cfg = support::org(6, 0.0);
    cfg.model.agents_per_queue = 10;
    let env = support::start(cfg, |_| {}).await;
    env.until(Duration::from_secs(20), "ready", |s| v(s, "genesys_up", &[]) == 1.0).await;
    let names: Vec<String> = env.sim.truth().presence_definitions.iter().map(|d| d.name.clone()).collect();
    env.until(Duration::from_secs(10), "presence names", |s| {
        s.iter().any(|x| x.name == "genesys_queue_presence_agents" && names.iter().any(|n| n == x.label("presence")))
    })
    .await;
    env.sim
        .inject(fault(json!({"kind": "add_presence_definition", "label": "Coffee Run", "system_presence": "Break"})));
    // Agents move into it over the next model minutes.
    let t0 = Instant::now();
    loop {
        let t = env.sim.truth();
        let id = t.presence_definitions.iter().find(|d| d.name == "Coffee Run").map(|d| d.id.clone()).expect("added");
        if t.queues.iter().any(|q| q.presences.contains_key(&id)) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no agent moved into the new presence");
        env.sim.inject(fault(json!({"kind": "advance", "seconds": 60})));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.until(Duration::from_secs(15), "the new presence is exported by name", |s| {
        s.iter().any(|x| {
            x.name == "genesys_queue_presence_agents"
                && x.label("presence") == "Coffee Run"
                && x.label("system_presence") == "break"
                && x.value >= 1.0
        }) && !s.iter().any(|x| x.name == "genesys_queue_presence_agents" && x.label("presence") == "unknown")
    })
    .await;
    env.sim.inject(fault(json!({"kind": "pause"})));
    support::assert_converged(env.converge(Duration::from_secs(20), false).await, "with the added presence");
    env.exporter.stop().await.expect("exporter stops");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_media_has_its_own_series() {
    let env = support::start(support::org(3, 0.0), |_| {}).await;
    env.until(Duration::from_secs(20), "ready", |s| v(s, "genesys_up", &[]) == 1.0).await;
    let q = env.sim.truth().queues[1].id.clone();
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "message", "count": 3})));
    env.until(Duration::from_secs(10), "message offered", |s| {
        v(s, "genesys_queue_interval_offered", &[("queue_id", &q), ("media_type", "message")]) == 3.0
            && s.iter().any(|x| x.name == "genesys_queue_waiting" && x.label("media_type") == "message")
    })
    .await;
    env.exporter.stop().await.expect("exporter stops");
    env.sim.shutdown().await;
}
