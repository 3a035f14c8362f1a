//! The measured data gap of a fault scenario: while traffic flows and a fault is applied, scrape `/metrics` and
//! read the simulator's truth every ~100 ms, and track per queue how long one of its message groups matched none of
//! the truth's states of the last update period (Genesys publishes a queue at most once a second, so a second of lag
//! is the stream working, not a gap); the longest such run is the gap. Each scenario's figures go to
//! `target/reliability/<name>.json`; [`write_table`] renders them into `docs/reliability.md`.

use super::prom::Sample;
use super::{fault, truth, Env};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Genesys's (and the simulator's) update period per queue: at most one message a second.
pub const UPDATE_PERIOD: Duration = Duration::from_secs(1);
/// A message group of a queue agrees when it matches the truth of any moment this recent: one update period (Genesys
/// publishes a queue at most once a second) plus the simulator's 100 ms tick and the sampler's period. Groups (user
/// metrics; per media type observations and interval aggregates) are compared separately because each is a message
/// of its own: a healthy export mixes groups of different moments.
pub const AGREE_WINDOW: Duration = Duration::from_millis(1000 + 300);

/// How a scenario is observed.
pub struct Watch {
    /// Row name in the table and file name of its JSON (`socket_drop`).
    pub name: &'static str,
    /// What the fault is, for the table.
    pub fault: &'static str,
    /// The largest acceptable gap, and how it follows from the config (for the table).
    pub bound: Duration,
    pub bound_why: String,
    /// Observation before the fault is applied (a healthy baseline).
    pub lead: Duration,
    /// Observation after the fault at least; then it ends once recovered for `settle`, or fails at `max`.
    pub min_after: Duration,
    pub settle: Duration,
    pub max_after: Duration,
    /// Queues that recover on polling rather than the stream (a forbidden topic).
    pub polled: BTreeSet<String>,
    /// Put a customer on one queue after another this often (real time), so values change during the fault.
    pub pump_every: Duration,
    pub sample_every: Duration,
    /// Compare only every n-th queue of the truth (a large org: a full comparison per sample would be too slow).
    pub every_nth: usize,
}

impl Watch {
    pub fn new(name: &'static str, fault: &'static str, bound: Duration, bound_why: impl Into<String>) -> Watch {
        Watch {
            name,
            fault,
            bound,
            bound_why: bound_why.into(),
            lead: Duration::from_secs(2),
            min_after: Duration::from_secs(4),
            settle: Duration::from_secs(2),
            max_after: Duration::from_secs(40),
            polled: BTreeSet::new(),
            pump_every: Duration::from_secs(3),
            sample_every: Duration::from_millis(100),
            every_nth: 1,
        }
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub scenario: String,
    pub fault: String,
    pub bound_s: f64,
    pub bound_why: String,
    /// Longest time a queue's exported values matched none of the truth's states of the preceding
    /// [`AGREE_WINDOW`] (the lag of a healthy stream).
    pub gap_s: f64,
    /// The queue and the disagreement behind `gap_s`.
    pub worst: String,
    /// From the fault until every queue agrees with the truth and is served by its normal source again.
    pub recovery_s: f64,
    pub recovered: bool,
    pub reconnects: f64,
    pub rest_calls: f64,
    pub samples: usize,
    pub panics: usize,
    /// Mean of `genesys_notification_delivery_latency_seconds` over the observation: how far the exporter's
    /// reading of the socket trails the simulator's sending.
    #[serde(default)]
    pub delivery_latency_s: f64,
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Count panics on any thread of this test process (the exporter's tasks run here), keeping the default report.
pub fn count_panics() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            prev(info);
        }));
    });
}

pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

fn sum(s: &[Sample], name: &str) -> f64 {
    s.iter().filter(|x| x.name == name).map(|x| x.value).sum()
}

/// Every queue the truth has is served by the stream (or, for `polled`, by polling).
fn normal_source(s: &[Sample], truth_ids: &[String], polled: &BTreeSet<String>) -> bool {
    truth_ids.iter().all(|q| {
        let want = if polled.contains(q) { "poll" } else { "stream" };
        s.iter().any(|x| {
            x.name == "genesys_queue_source" && x.label("queue_id") == q && x.label("source") == want && x.value == 1.0
        })
    })
}

/// Observe `w` while `script` (the fault) runs, started after `w.lead`. Panics when the gap exceeds the bound, the
/// exporter does not recover within `w.max_after`, or anything panicked; writes the figures either way.
pub async fn observe(env: &Env, w: &Watch, script: impl Future<Output = ()>) -> Measured {
    count_panics();
    let panics_before = panics();
    let start = Instant::now();
    let fault_at = w.lead;
    let first = env.samples().await;
    let (rec0, rest0) =
        (sum(&first, "genesys_notification_reconnects_total"), sum(&first, "genesys_api_requests_total"));
    let lat0 = (
        sum(&first, "genesys_notification_delivery_latency_seconds_sum"),
        sum(&first, "genesys_notification_delivery_latency_seconds_count"),
    );

    let sampler = async {
        let mut open: BTreeMap<String, (Duration, String)> = BTreeMap::new();
        let mut worst = (Duration::ZERO, String::from("none"));
        // Last sample (since the fault) at which the exporter was not yet back to normal.
        let mut last_bad: Option<Duration> = None;
        let mut n = 0usize;
        let mut pumped = Duration::ZERO;
        let mut pump_i = 0usize;
        let mut last_samples;
        let mut history: VecDeque<(Duration, serde_json::Value)> = VecDeque::new();
        loop {
            let t = start.elapsed();
            if t >= pumped + w.pump_every {
                pumped = t;
                let ids: Vec<String> =
                    env.sim.truth().queues.iter().step_by(w.every_nth).map(|q| q.id.clone()).collect();
                if !ids.is_empty() {
                    let q = &ids[pump_i % ids.len()];
                    pump_i += 1;
                    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice"})));
                }
            }
            let text = env.scrape().await;
            let mut tr = env.sim.truth();
            let s = if w.every_nth > 1 {
                tr.queues = tr.queues.into_iter().step_by(w.every_nth).collect();
                let keep: BTreeSet<&str> = tr.queues.iter().map(|q| q.id.as_str()).collect();
                // Drop the other queues' lines before parsing: parsing all of them is most of a sample's cost.
                let kept: String = text
                    .lines()
                    .filter(|l| match l.find("queue_id=\"") {
                        Some(i) => l[i + 10..].split('"').next().is_some_and(|id| keep.contains(id)),
                        None => true,
                    })
                    .flat_map(|l| [l, "\n"])
                    .collect();
                super::prom::parse(&kept)
            } else {
                super::prom::parse(&text)
            };
            let truth_ids: Vec<String> = tr.queues.iter().map(|q| q.id.clone()).collect();
            let t = start.elapsed();
            history.push_back((t, serde_json::to_value(&tr).expect("truth as JSON")));
            while history.front().is_some_and(|(at, _)| t - *at > AGREE_WINDOW) {
                history.pop_front();
            }
            n += 1;
            // A queue disagrees when one of its message groups matches none of the truth's states of the last
            // window: each group is a message of its own, so a healthy export mixes groups of different moments.
            let mut d: Option<BTreeMap<(String, &'static str), String>> = None;
            for (_, tv) in &history {
                let this: BTreeMap<(String, &'static str), String> = truth::diff_by_queue(&s, tv, true)
                    .into_iter()
                    .flat_map(|(q, lines)| lines.into_iter().map(move |l| ((q.clone(), group(&l)), l)))
                    .collect();
                d = Some(match d {
                    None => this,
                    Some(prev) => prev.into_iter().filter(|(k, _)| this.contains_key(k)).collect(),
                });
            }
            let mut by_queue: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for ((q, _), line) in d.unwrap_or_default() {
                by_queue.entry(q).or_default().push(line);
            }
            let d = by_queue;
            for (q, lines) in &d {
                open.entry(q.clone()).or_insert_with(|| (t, lines.first().cloned().unwrap_or_default()));
            }
            let closed: Vec<String> = open.keys().filter(|q| !d.contains_key(*q)).cloned().collect();
            for q in closed {
                if let Some((since, what)) = open.remove(&q) {
                    if t - since > worst.0 {
                        worst = (t - since, what);
                    }
                }
            }
            let normal = normal_source(&s, &truth_ids, &w.polled);
            let lagging = open.values().any(|(since, _)| t - *since > UPDATE_PERIOD);
            if t >= fault_at && (lagging || !normal) {
                last_bad = Some(t);
            }
            last_samples = s;
            let after = t.saturating_sub(fault_at);
            let settled = last_bad.is_none_or(|b| t - b >= w.settle);
            if (after >= w.min_after && settled) || after >= w.max_after {
                for (q, (since, what)) in &open {
                    if t - *since > worst.0 {
                        worst = (t - *since, format!("{q} (still open) {what}"));
                    }
                }
                let recovered = settled;
                let recovery = last_bad.map_or(Duration::ZERO, |b| b.saturating_sub(fault_at) + w.sample_every);
                break (worst, recovery, recovered, n, last_samples);
            }
            tokio::time::sleep(w.sample_every).await;
        }
    };
    let faulted = async {
        tokio::time::sleep(fault_at).await;
        script.await;
    };
    let ((worst, recovery, recovered, n, last), ()) = tokio::join!(sampler, faulted);
    let gap = worst.0;
    let m = Measured {
        scenario: w.name.to_owned(),
        fault: w.fault.to_owned(),
        bound_s: w.bound.as_secs_f64(),
        bound_why: w.bound_why.clone(),
        gap_s: round(gap),
        worst: worst.1,
        recovery_s: round(recovery),
        recovered,
        reconnects: sum(&last, "genesys_notification_reconnects_total") - rec0,
        rest_calls: sum(&last, "genesys_api_requests_total") - rest0,
        samples: n,
        panics: panics() - panics_before,
        delivery_latency_s: {
            let n = sum(&last, "genesys_notification_delivery_latency_seconds_count") - lat0.1;
            let total = sum(&last, "genesys_notification_delivery_latency_seconds_sum") - lat0.0;
            if n > 0.0 {
                (total / n * 100.0).round() / 100.0
            } else {
                0.0
            }
        },
    };
    record(&m);
    eprintln!("{}: {m:#?}", w.name);
    assert_eq!(m.panics, 0, "{}: something panicked", w.name);
    assert!(m.recovered, "{}: not recovered {:?} after the fault: {m:?}", w.name, w.max_after);
    assert!(gap <= w.bound, "{}: data gap {gap:?} exceeds the bound {:?} ({}): {m:?}", w.name, w.bound, w.bound_why);
    m
}

/// The message group a disagreement line of [`truth::diff`] belongs to: Genesys sends the user metrics, each media
/// type's observations and each media type's interval aggregates of a queue as separate messages.
fn group(line: &str) -> &'static str {
    if line.contains(": interval_") {
        "aggregates"
    } else if line.contains(": waiting[") || line.contains(": alerting[") || line.contains(": interacting[") {
        "observations"
    } else {
        "user"
    }
}

fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

pub fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("reliability")
}

/// One file per scenario: tests run in separate processes under nextest, so none shares a file.
pub fn record(m: &impl Serialize) {
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("create target/reliability");
    let name = serde_json::to_value(m).expect("figures as JSON")["scenario"].as_str().unwrap_or("unnamed").to_owned();
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_vec_pretty(m).expect("JSON"))
        .expect("write figures");
}

pub const TABLE_BEGIN: &str =
    "<!-- fault-table:begin (generated by `cargo test --test faults -- --ignored write_reliability_table`) -->";
pub const TABLE_END: &str = "<!-- fault-table:end -->";

/// Render every recorded scenario into the table between the markers of `docs/reliability.md`.
pub fn write_table() -> usize {
    let mut rows: Vec<Measured> = std::fs::read_dir(results_dir())
        .expect("target/reliability exists: run the fault suite first")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    rows.sort_by_key(|r| ORDER.iter().position(|n| *n == r.scenario).unwrap_or(usize::MAX));
    let mut t = String::from(
        "| scenario | fault | bound | measured gap | recovery | reconnects | REST calls | delivery latency | bound from |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in &rows {
        t.push_str(&format!(
            "| {} | {} | {:.1} s | {:.1} s | {:.1} s | {} | {} | {:.2} s | {} |\n",
            r.scenario,
            r.fault,
            r.bound_s,
            r.gap_s,
            r.recovery_s,
            r.reconnects,
            r.rest_calls,
            r.delivery_latency_s,
            r.bound_why
        ));
    }
    replace_between(TABLE_BEGIN, TABLE_END, &t);
    write_soak_table();
    rows.len()
}

pub const SOAK_BEGIN: &str =
    "<!-- soak-table:begin (generated by `cargo test --test faults -- --ignored write_reliability_table`) -->";
pub const SOAK_END: &str = "<!-- soak-table:end -->";

/// The soak runs (`tests/soak.rs` records `soak-short.json`, `soak-long.json`).
fn write_soak_table() {
    let mut t = String::from(
        "| run | simulated | speed | real | faults | tokens issued | channels created | reconnects | RSS warm → end (peak) | fds warm → end (peak) | tasks warm → end (peak) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n",
    );
    for name in ["soak-short", "soak-long"] {
        let Ok(b) = std::fs::read(results_dir().join(format!("{name}.json"))) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else { continue };
        let u = |k: &str| {
            let f = |w: &str| v[w][k].as_u64().unwrap_or(0);
            if k == "rss_kib" {
                format!(
                    "{:.1} → {:.1} ({:.1}) MiB",
                    f("warm") as f64 / 1024.0,
                    f("end") as f64 / 1024.0,
                    f("peak") as f64 / 1024.0
                )
            } else {
                format!("{} → {} ({})", f("warm"), f("end"), f("peak"))
            }
        };
        t.push_str(&format!(
            "| {name} | {} h | {}× | {} s | {} | {} | {} | {} | {} | {} | {} |\n",
            v["simulated_hours"],
            v["speed"],
            v["real_seconds"],
            v["faults"],
            v["tokens_issued"],
            v["channels_created"],
            v["reconnects"],
            u("rss_kib"),
            u("fds"),
            u("tasks")
        ));
    }
    replace_between(SOAK_BEGIN, SOAK_END, &t);
}

/// Replace what lies between two marker lines of `docs/reliability.md`.
pub fn replace_between(begin: &str, end: &str, body: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let doc = std::fs::read_to_string(&path).expect("docs/reliability.md");
    let (Some(b), Some(e)) = (doc.find(begin), doc.find(end)) else { panic!("markers {begin} / {end} missing") };
    let new = format!("{}\n{body}{}", &doc[..b + begin.len()], &doc[e..]);
    std::fs::write(&path, new).expect("write docs/reliability.md");
}

/// Table order: the order of the list.
const ORDER: &[&str] = &[
    "baseline",
    "socket_drop",
    "silent_stall",
    "heartbeat_loss",
    "socket_closing",
    "channel_expiry",
    "channel_evicted",
    "token_expiry",
    "token_revocation",
    "subscribe_401",
    "subscribe_403",
    "rate_limit_storm",
    "error_burst_5xx",
    "slow_api",
    "malformed_frame",
    "oversized_frame",
    "queue_add_remove_rename",
    "over_1000_queues",
    "simulator_restart",
];
