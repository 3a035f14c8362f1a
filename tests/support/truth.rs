//! Compare an exporter's `/metrics` with the simulator's ground truth (`GET /sim/truth`).

use super::prom::Sample;
use serde_json::Value;
use std::collections::BTreeMap;

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Every disagreement between the samples and the truth, as readable lines (empty = equal). Compares every queue
/// in the truth; `interval` also compares the current-interval gauges.
pub fn diff(samples: &[Sample], truth: &Value, interval: bool) -> Vec<String> {
    diff_by_queue(samples, truth, interval).into_values().flatten().collect()
}

/// [`diff`] keyed by queue id: only queues with a disagreement are present. Queues the truth no longer has but
/// `/metrics` still exports (a removed queue) count as disagreeing too.
pub fn diff_by_queue(samples: &[Sample], truth: &Value, interval: bool) -> BTreeMap<String, Vec<String>> {
    let mut all = BTreeMap::new();
    let presence: BTreeMap<String, (String, String)> = truth["presence_definitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["id"].as_str().unwrap_or("").to_owned(),
                (d["name"].as_str().unwrap_or("").to_owned(), normalize(d["system_presence"].as_str().unwrap_or(""))),
            )
        })
        .collect();
    let by_queue = index(samples);
    for q in truth["queues"].as_array().into_iter().flatten() {
        let id = q["id"].as_str().unwrap_or("");
        let mut out = Vec::new();
        let Some(qs) = by_queue.get(id) else {
            all.insert(id.to_owned(), vec![format!("queue {id} ({}) missing from /metrics", q["name"])]);
            continue;
        };
        let get = |name: &str, want: &[(&str, &str)]| -> Option<f64> {
            qs.iter()
                .filter(|s| {
                    s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|s| s.value)
                .reduce(|a, b| a + b)
        };
        let check = |out: &mut Vec<String>, what: String, got: Option<f64>, want: f64| {
            let got_v = got.unwrap_or(0.0);
            if (got_v - want).abs() > 1e-9 || (got.is_none() && want != 0.0) {
                out.push(format!("queue {id}: {what}: exported {got:?}, truth {want}"));
            }
        };
        match get("genesys_queue_info", &[]) {
            Some(_) => {
                let info = qs.iter().find(|s| s.name == "genesys_queue_info");
                if let Some(info) = info {
                    if info.label("queue") != q["name"].as_str().unwrap_or("") {
                        out.push(format!("queue {id}: name {:?} != truth {}", info.label("queue"), q["name"]));
                    }
                }
            }
            None => out.push(format!("queue {id}: genesys_queue_info missing")),
        }
        check(&mut out, "members".into(), get("genesys_queue_member_agents", &[]), num(&q["members"]));
        check(&mut out, "active".into(), get("genesys_queue_active_agents", &[]), num(&q["active"]));
        for (metric, key) in
            [("genesys_queue_agents", "routing_statuses"), ("genesys_queue_on_queue_agents", "on_queue")]
        {
            let truth_map = q[key].as_object().cloned().unwrap_or_default();
            for (status, n) in &truth_map {
                check(
                    &mut out,
                    format!("{metric}{{{status}}}"),
                    get(metric, &[("routing_status", &lower(status))]),
                    num(n),
                );
            }
            for s in qs.iter().filter(|s| s.name == metric) {
                let st = s.label("routing_status");
                if !truth_map.keys().any(|k| lower(k) == st) && s.value != 0.0 {
                    out.push(format!("queue {id}: {metric}{{{st}}} = {} but truth has none", s.value));
                }
            }
        }
        for (metric, key) in
            [("genesys_queue_presence_agents", "presences"), ("genesys_queue_off_queue_agents", "off_queue")]
        {
            let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
            for (pid, n) in q[key].as_object().cloned().unwrap_or_default() {
                let labels = presence.get(&pid).cloned().unwrap_or(("unknown".into(), "unknown".into()));
                *want.entry(labels).or_default() += num(&n);
            }
            for ((name, sp), n) in &want {
                check(
                    &mut out,
                    format!("{metric}{{{name},{sp}}}"),
                    get(metric, &[("presence", name), ("system_presence", sp)]),
                    *n,
                );
            }
            for s in qs.iter().filter(|s| s.name == metric) {
                let k = (s.label("presence").to_owned(), s.label("system_presence").to_owned());
                if !want.contains_key(&k) && s.value != 0.0 {
                    out.push(format!("queue {id}: {metric}{k:?} = {} but truth has none", s.value));
                }
            }
        }
        for (media, m) in q["media"].as_object().cloned().unwrap_or_default() {
            let mt = [("media_type", media.as_str())];
            check(&mut out, format!("waiting[{media}]"), get("genesys_queue_waiting", &mt), num(&m["waiting"]));
            check(&mut out, format!("alerting[{media}]"), get("genesys_queue_alerting", &mt), num(&m["alerting"]));
            check(
                &mut out,
                format!("interacting[{media}]"),
                get("genesys_queue_interacting", &mt),
                num(&m["interacting"]),
            );
            if interval {
                let i = &m["interval"];
                check(
                    &mut out,
                    format!("interval_offered[{media}]"),
                    get("genesys_queue_interval_offered", &mt),
                    num(&i["offered"]),
                );
                check(
                    &mut out,
                    format!("interval_answered[{media}]"),
                    get("genesys_queue_interval_answered", &mt),
                    num(&i["answered"]["count"]),
                );
                check(
                    &mut out,
                    format!("interval_abandoned[{media}]"),
                    get("genesys_queue_interval_abandoned", &mt),
                    num(&i["abandoned"]["count"]),
                );
            }
        }
        if !out.is_empty() {
            all.insert(id.to_owned(), out);
        }
    }
    let known: std::collections::BTreeSet<&str> =
        truth["queues"].as_array().into_iter().flatten().filter_map(|q| q["id"].as_str()).collect();
    for id in by_queue.keys().filter(|id| !known.contains(id.as_str())) {
        all.insert(id.clone(), vec![format!("queue {id} exported but not in the truth")]);
    }
    all
}

fn index(samples: &[Sample]) -> BTreeMap<String, Vec<&Sample>> {
    let mut m: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        if let Some(id) = s.labels.get("queue_id") {
            m.entry(id.clone()).or_default().push(s);
        }
    }
    m
}

/// Same normalisation as the exporter: `On Queue`, `ON_QUEUE`, `OnQueue` → `on_queue`.
fn normalize(s: &str) -> String {
    genesys_cloud_exporter::genesys::models::normalize_system_presence(s)
}
