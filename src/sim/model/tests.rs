//! Model tests: invariants (property tests), wire shapes against genesys-api.md (as `serde_json::Value`, not the
//! model's own structs), the topic rate rule, and agreement of topic/query/truth through the exporter's decoder.

use super::*;
use crate::genesys::decode::{decode_frame, decode_observation_query, Frame};
use crate::genesys::models::{QueryClause, QueryFilter, QueryPredicate};
use proptest::prelude::*;
use serde_json::{json, Value};

/// 2026-01-01T00:10:00Z: 20 minutes before an interval boundary.
const T0: i64 = 1_767_226_200_000;

fn cfg(queues: usize, apq: usize, seed: u64, arrivals: f64) -> ModelConfig {
    ModelConfig { queues, agents_per_queue: apq, seed, arrivals_per_hour: arrivals, ..ModelConfig::default() }
}

fn all_query(m: &Model, details: bool) -> QueueObservationQuery {
    let ids = m.queue_ids();
    QueueObservationQuery {
        filter: QueryFilter::queue_ids(ids.iter().map(String::as_str)),
        metrics: models::OBSERVATION_METRICS.iter().map(|s| s.to_string()).collect(),
        detail_metrics: details.then(|| vec!["oWaiting".into(), "oInteracting".into(), "oAlerting".into()]),
    }
}

/// As the server sends it (integral numbers without `.0`).
fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::from_str(&genesys_json(t)).unwrap()
}

fn query_value(m: &Model, details: bool) -> Value {
    to_value(&m.observations_query(&all_query(m, details)).unwrap())
}

fn drain(m: &mut Model) -> Vec<TopicMessage> {
    let mut all = Vec::new();
    loop {
        let mut out = Vec::new();
        m.take_messages(&mut out);
        if out.is_empty() {
            return all;
        }
        all.extend(out);
    }
}

fn on_queue_id(t: &Truth) -> String {
    t.presence_definitions.iter().find(|p| p.system_presence == "On Queue").unwrap().id.clone()
}

/// The invariants that hold at every instant.
fn check_invariants(m: &Model) {
    let t = m.truth();
    let onq = on_queue_id(&t);
    let offline: Vec<&str> =
        t.presence_definitions.iter().filter(|p| p.system_presence == "Offline").map(|p| p.id.as_str()).collect();
    for q in &t.queues {
        let sum = |b: &BTreeMap<String, u64>| b.values().sum::<u64>();
        assert_eq!(sum(&q.routing_statuses), q.active, "routing statuses sum to active members: {q:?}");
        let on_queue_members = q.presences.get(&onq).copied().unwrap_or(0);
        assert_eq!(sum(&q.on_queue), on_queue_members, "on_queue sums to on-queue members");
        assert_eq!(q.routing_statuses.get("OFF_QUEUE").copied().unwrap_or(0), q.active - on_queue_members);
        assert_eq!(sum(&q.off_queue), q.active - on_queue_members);
        assert_eq!(sum(&q.presences), q.members);
        let offline_n: u64 = offline.iter().map(|id| q.presences.get(*id).copied().unwrap_or(0)).sum();
        assert_eq!(q.members - offline_n, q.active);
        assert!(q.routing_statuses.values().all(|&n| n > 0) && q.on_queue.values().all(|&n| n > 0));
        assert!(!q.on_queue.contains_key("OFF_QUEUE"));
        assert_eq!(q.media.len(), m.config().media_types.len());
        for (media, md) in &q.media {
            let i = &md.interval;
            let sl = &i.service_level;
            assert_eq!(sl.numerator, i.answered.count - i.over_sla, "{media}");
            assert_eq!(sl.denominator, i.answered.count + i.abandoned.count);
            match sl.ratio {
                Some(r) => assert!((r - sl.numerator as f64 / sl.denominator as f64).abs() < 1e-12),
                None => assert_eq!(sl.denominator, 0),
            }
            assert_eq!(i.end_ms - i.start_ms, INTERVAL_MS);
            assert_eq!(i.start_ms, interval_start(t.now_ms));
            assert_eq!(i.wait.count, i.answered.count + i.abandoned.count);
            assert_eq!(md.waiting == 0, md.longest_waiting_start_ms.is_none());
            assert_eq!(md.interacting == 0, md.longest_interacting_start_ms.is_none());
        }
    }
    // Agents hold at most one conversation and alerting+interacting conversations have an agent.
    let busy = m.agents.iter().filter(|a| a.conv.is_some()).count();
    let engaged: usize = m.convs.values().filter(|c| c.state != ConvState::Waiting).count();
    assert_eq!(busy, engaged);
}

/// The query says what the truth says, and oWaiting's count is its detail list's length unless truncated.
fn check_query_matches_truth(m: &Model) {
    let t = m.truth();
    let v = query_value(m, true);
    let results = v["results"].as_array().unwrap();
    for q in &t.queues {
        let user = results
            .iter()
            .find(|r| r["group"]["queueId"] == q.id.as_str() && r["group"].get("mediaType").is_none())
            .expect("user group");
        let counts = |metric: &str| -> BTreeMap<String, u64> {
            user["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["metric"] == metric)
                .map(|d| (d["qualifier"].as_str().unwrap().to_owned(), d["stats"]["count"].as_u64().unwrap()))
                .collect()
        };
        assert_eq!(counts("oUserRoutingStatuses"), q.routing_statuses);
        assert_eq!(counts("oOnQueueUsers"), q.on_queue);
        assert_eq!(counts("oUserPresences"), q.presences);
        assert_eq!(counts("oOffQueueUsers"), q.off_queue);
        let single = |metric: &str| {
            user["data"].as_array().unwrap().iter().find(|d| d["metric"] == metric).unwrap()["stats"]["count"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(single("oMemberUsers"), q.members);
        assert_eq!(single("oActiveUsers"), q.active);
        for (media, md) in &q.media {
            let g = results
                .iter()
                .find(|r| r["group"]["queueId"] == q.id.as_str() && r["group"]["mediaType"] == media.as_str())
                .expect("media group");
            let get = |metric: &str| g["data"].as_array().unwrap().iter().find(|d| d["metric"] == metric).unwrap();
            for (metric, want) in
                [("oWaiting", md.waiting), ("oAlerting", md.alerting), ("oInteracting", md.interacting)]
            {
                let d = get(metric);
                assert_eq!(d["stats"]["count"].as_u64(), Some(want), "{metric}");
                let obs = d["observations"].as_array().unwrap();
                if d["truncated"] == false {
                    assert_eq!(obs.len() as u64, want, "{metric} equals its detail observations");
                } else {
                    assert_eq!(obs.len(), m.config().detail_cap);
                    assert!(want > obs.len() as u64);
                }
                let dates: Vec<i64> = obs
                    .iter()
                    .map(|o| models::parse_time_ms(o["observationDate"].as_str().unwrap()).unwrap())
                    .collect();
                assert!(dates.windows(2).all(|w| w[0] <= w[1]), "ascending observationDate");
            }
            let lw = get("oLongestWaiting");
            match md.longest_waiting_start_ms {
                Some(start) => assert_eq!(lw["stats"]["calculatedMetricValue"].as_i64(), Some(t.now_ms - start)),
                None => {
                    assert_eq!(lw["stats"]["count"], 0);
                    assert!(lw["stats"].get("calculatedMetricValue").is_none());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_runs(
        queues in 1usize..5,
        apq in 0usize..7,
        seed in any::<u64>(),
        arrivals in prop_oneof![Just(0.0), 10.0f64..2000.0],
        steps in prop::collection::vec(1i64..900_000, 1..12),
        take in any::<bool>(),
    ) {
        let mut m = Model::new(cfg(queues, apq, seed, arrivals), T0);
        check_invariants(&m);
        check_query_matches_truth(&m);
        let mut now = T0;
        let mut prev = m.truth();
        for s in steps {
            now += s;
            m.advance_to(now);
            if take {
                let mut out = Vec::new();
                m.take_messages(&mut out);
            }
            check_invariants(&m);
            check_query_matches_truth(&m);
            let t = m.truth();
            for (a, b) in prev.queues.iter().zip(&t.queues) {
                for (media, bm) in &b.media {
                    let (ai, bi) = (&a.media[media].interval, &bm.interval);
                    if ai.start_ms == bi.start_ms {
                        prop_assert!(bi.offered >= ai.offered);
                        for (x, y) in [(&ai.answered, &bi.answered), (&ai.abandoned, &bi.abandoned), (&ai.wait, &bi.wait),
                                       (&ai.handle, &bi.handle), (&ai.talk, &bi.talk), (&ai.acw, &bi.acw)] {
                            prop_assert!(y.count >= x.count && y.sum_ms >= x.sum_ms);
                            if x.count > 0 {
                                prop_assert!(y.min_ms <= x.min_ms && y.max_ms >= x.max_ms);
                            }
                        }
                        prop_assert!(bi.over_sla >= ai.over_sla);
                    }
                }
            }
            prev = t;
        }
    }
}

#[test]
fn same_seed_same_truth_and_messages_do_not_change_traffic() {
    let run = |take: bool| {
        let mut m = Model::new(cfg(20, 6, 42, 600.0), T0);
        let mut msgs = 0;
        for i in 1..=120 {
            m.advance_to(T0 + i * 15_000);
            if take {
                let mut out = Vec::new();
                m.take_messages(&mut out);
                msgs += out.len();
            }
        }
        (m.truth(), msgs)
    };
    let (a, n) = run(true);
    let (b, _) = run(true);
    let (c, _) = run(false);
    assert_eq!(a, b);
    assert_eq!(a, c, "taking messages must not change the traffic");
    assert!(n > 0);
    let total: u64 = a.queues.iter().flat_map(|q| q.media.values()).map(|m| m.interval.offered).sum();
    assert!(total > 100, "traffic flows: {total}");
    let other = Model::new(cfg(20, 6, 43, 600.0), T0).truth();
    assert_ne!(a.queues[0].id, other.queues[0].id, "ids depend on the seed");
}

#[test]
fn advance_is_independent_of_step_size() {
    let mut a = Model::new(cfg(10, 5, 9, 900.0), T0);
    let mut b = Model::new(cfg(10, 5, 9, 900.0), T0);
    a.advance_to(T0 + 3_600_000);
    for i in 1..=3600 {
        b.advance_to(T0 + i * 1000);
    }
    assert_eq!(a.truth(), b.truth());
}

fn assert_keys(v: &Value, keys: &[&str]) {
    let mut got: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    got.sort();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(got, want, "keys of {v}");
}

fn is_uuid(s: &Value) -> bool {
    s.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36)
}

/// A quiet org (no random arrivals, presence events far away) with agents all on queue, for exact tests.
fn quiet(queues: usize, apq: usize) -> Model {
    let mut m = Model::new(cfg(queues, apq, 5, 0.0), T0);
    m.set_arrivals_per_hour(0.0);
    m
}

fn msg_value(msg: &TopicMessage) -> Value {
    serde_json::from_str(&msg.json).unwrap()
}

#[test]
fn topic_observation_messages_have_the_documented_shape() {
    let mut m = quiet(1, 0);
    let q = m.queue_ids()[0].clone();
    assert!(m.arrive(&q, "voice", 2));
    m.advance_to(T0 + 1500);
    let mut out = Vec::new();
    m.take_messages(&mut out);
    assert_eq!(out.len(), 1);
    let msg = &out[0];
    assert_eq!(msg.queue_id, q);
    assert_eq!(msg.topic, format!("v2.analytics.queues.{q}.observations"));
    let v = msg_value(msg);
    assert_keys(&v, &["topicName", "version", "eventBody", "metadata"]);
    assert_eq!(v["topicName"], msg.topic.as_str());
    assert_eq!(v["version"], "2");
    assert_keys(&v["metadata"], &["CorrelationId"]);
    assert!(is_uuid(&v["metadata"]["CorrelationId"]));
    let body = &v["eventBody"];
    assert_keys(body, &["group", "data"]);
    // The earliest change is the observation group (arrival touches it before the aggregate group).
    assert_eq!(body["group"], json!({"queueId": q, "mediaType": "voice"}));
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_keys(&data[0], &["interval", "metrics"]);
    let at = models::format_time_ms(T0 + 1500);
    assert_eq!(data[0]["interval"], format!("{at}/{at}"));
    let metrics = data[0]["metrics"].as_array().unwrap();
    assert_eq!(
        metrics,
        &vec![
            json!({"metric": "oWaiting", "stats": {"count": 2}}),
            json!({"metric": "oLongestWaiting", "stats": {"count": 2, "calculatedMetricValue": 1500}}),
        ]
    );
    // Next call: the aggregate message of the same (queue, media), with the 30-minute bucket.
    out.clear();
    m.take_messages(&mut out);
    assert_eq!(out.len(), 1);
    let v = msg_value(&out[0]);
    let body = &v["eventBody"];
    assert_eq!(body["group"], json!({"queueId": q, "mediaType": "voice"}));
    let start = interval_start(T0);
    assert_eq!(body["data"][0]["interval"], models::format_interval_ms(start, start + INTERVAL_MS));
    assert_eq!(body["data"][0]["metrics"], json!([{"metric": "nOffered", "stats": {"count": 2}}]));
    // Then nothing: nothing changed.
    out.clear();
    m.take_messages(&mut out);
    assert!(out.is_empty());
    // Both abandon (patience is finite, no agents): count 0 explicitly, longest without a value.
    m.advance_to(T0 + 86_400_000 / 4);
    let msgs = drain(&mut m);
    let obs =
        msgs.iter().map(msg_value).find(|v| v["eventBody"]["data"][0]["metrics"][0]["metric"] == "oWaiting").unwrap();
    assert_eq!(
        obs["eventBody"]["data"][0]["metrics"],
        json!([{"metric": "oWaiting", "stats": {"count": 0}}, {"metric": "oLongestWaiting", "stats": {"count": 0}}])
    );
}

#[test]
fn topic_user_messages_and_aggregate_messages() {
    let mut m = Model::new(cfg(1, 4, 11, 0.0), T0);
    let q = m.queue_ids()[0].clone();
    // Force every member on queue and idle through the public path: add a presence definition nobody uses,
    // then run until the scheduled movers have moved; the user group must report it.
    let pid = m.add_presence_definition("Training", "Busy");
    m.advance_to(T0 + 31_000);
    let t = m.truth();
    let msgs = drain(&mut m);
    let moved = t.queues[0].presences.get(&pid).copied().unwrap_or(0);
    let user_msgs: Vec<Value> =
        msgs.iter().map(msg_value).filter(|v| v["eventBody"]["group"].get("mediaType").is_none()).collect();
    assert!(moved > 0, "some agents moved into the new presence");
    {
        assert_eq!(user_msgs.len(), 1);
        let v = &user_msgs[0];
        assert_eq!(v["eventBody"]["group"], json!({"queueId": q}));
        let metrics = v["eventBody"]["data"][0]["metrics"].as_array().unwrap();
        for mm in metrics {
            assert_keys(
                mm,
                if mm.get("qualifier").is_some() { &["metric", "qualifier", "stats"] } else { &["metric", "stats"] },
            );
            assert_keys(&mm["stats"], &["count"]);
            assert!(mm["stats"]["count"].is_u64());
        }
        assert!(metrics.iter().any(|mm| mm["metric"] == "oUserPresences" && mm["qualifier"] == pid.as_str()));
    }
    // Conversations through to ACW: the aggregate message carries every t* metric with count/sum/min/max.
    m.set_arrivals_per_hour(0.0);
    for _ in 0..5 {
        m.arrive(&q, "voice", 1);
        m.advance_to(m.now_ms() + 1_000);
    }
    m.advance_to(m.now_ms() + 30 * 60_000 / 2);
    let msgs = drain(&mut m);
    let agg = msgs.iter().map(msg_value).rfind(|v| {
        let i = v["eventBody"]["data"][0]["interval"].as_str().unwrap();
        models::parse_interval_ms(i).is_some_and(|(a, b)| b - a == INTERVAL_MS)
    });
    let t = m.truth();
    let tm = &t.queues[0].media["voice"].interval;
    let v = agg.expect("an aggregate message");
    {
        assert_eq!(v["eventBody"]["group"], json!({"queueId": q, "mediaType": "voice"}));
        for mm in v["eventBody"]["data"][0]["metrics"].as_array().unwrap() {
            assert_keys(mm, &["metric", "stats"]);
            let name = mm["metric"].as_str().unwrap();
            match name {
                "nOffered" | "nOverSla" => assert_keys(&mm["stats"], &["count"]),
                "oServiceLevel" => {
                    assert_keys(&mm["stats"], &["ratio", "numerator", "denominator", "target"]);
                    assert_eq!(mm["stats"]["denominator"], tm.service_level.denominator);
                }
                n if n.starts_with('t') => {
                    assert_keys(&mm["stats"], &["count", "sum", "min", "max"]);
                    assert!(mm["stats"]["sum"].is_u64());
                }
                other => panic!("unexpected metric {other}"),
            }
        }
    }
}

#[test]
fn rate_rule_one_message_per_queue_earliest_group_first() {
    let mut m = quiet(3, 0);
    let ids = m.queue_ids();
    m.advance_to(T0 + 10);
    m.arrive(&ids[0], "chat", 1); // chat obs + chat agg of queue 0
    m.advance_to(T0 + 20);
    m.arrive(&ids[0], "voice", 1); // voice obs + agg, later
    m.arrive(&ids[1], "email", 3);
    m.advance_to(T0 + 30);
    let mut out = Vec::new();
    m.take_messages(&mut out);
    assert_eq!(out.len(), 2, "one message per changed queue");
    let first: Vec<Value> = out.iter().map(msg_value).collect();
    assert_eq!(first[0]["eventBody"]["group"], json!({"queueId": ids[0], "mediaType": "chat"}));
    assert_eq!(first[1]["eventBody"]["group"], json!({"queueId": ids[1], "mediaType": "email"}));
    let mut groups = Vec::new();
    loop {
        out.clear();
        m.take_messages(&mut out);
        if out.is_empty() {
            break;
        }
        let mut per_queue = std::collections::HashSet::new();
        for o in &out {
            assert!(per_queue.insert(o.queue_id.clone()), "at most one per queue per call");
            let v = msg_value(o);
            let kind = if v["eventBody"]["data"][0]["metrics"][0]["metric"] == "nOffered" { "agg" } else { "obs" };
            groups.push((o.queue_id.clone(), v["eventBody"]["group"]["mediaType"].as_str().unwrap().to_owned(), kind));
        }
    }
    let q0: Vec<_> = groups.iter().filter(|g| g.0 == ids[0]).map(|g| (g.1.as_str(), g.2)).collect();
    assert_eq!(q0, vec![("chat", "agg"), ("voice", "obs"), ("voice", "agg")], "in order of first change");
    assert!(!groups.iter().any(|g| g.0 == ids[2]), "never a message for an unchanged queue");
    // A change that comes back to what was last sent sends nothing.
    m.arrive(&ids[2], "voice", 1);
    let c = *m.queues[2].media[0].waiting.first().unwrap();
    let _ = drain(&mut m);
    m.convs.remove(&c.1);
    m.queues[2].media[0].waiting.clear();
    m.touch(2, Group::Obs(0));
    m.arrive(&ids[2], "voice", 0);
    let mut out = Vec::new();
    m.take_messages(&mut out);
    assert_eq!(out.len(), 1);
    m.queues[2].media[0].waiting.insert(c);
    m.touch(2, Group::Obs(0));
    let mut again = Vec::new();
    m.take_messages(&mut again);
    assert_eq!(again.len(), 1);
    m.queues[2].media[0].sent = m.queues[2].media[0].counts();
    m.touch(2, Group::Obs(0));
    let mut none = Vec::new();
    m.take_messages(&mut none);
    assert!(none.is_empty(), "unchanged values: no message");
}

#[test]
fn detail_observations_truncate_oldest_and_newest_halves() {
    let mut m = quiet(1, 0);
    let q = m.queue_ids()[0].clone();
    for i in 0..150 {
        m.advance_to(T0 + i * 10);
        m.arrive(&q, "chat", 1);
    }
    let mut query = all_query(&m, true);
    query.metrics = vec!["oWaiting".into()];
    query.detail_metrics = Some(vec!["oWaiting".into()]);
    query.filter = QueryFilter {
        kind: "and".into(),
        clauses: Some(vec![QueryClause {
            kind: "or".into(),
            predicates: vec![QueryPredicate {
                dimension: Some("queueId".into()),
                value: Some(q.clone()),
                ..Default::default()
            }],
        }]),
        predicates: Some(vec![QueryPredicate::dimension("mediaType", "chat")]),
    };
    let v = to_value(&m.observations_query(&query).unwrap());
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only the chat group: {v}");
    let d = &results[0]["data"][0];
    assert_eq!(d["stats"]["count"], 150);
    assert_eq!(d["truncated"], true);
    let obs = d["observations"].as_array().unwrap();
    assert_eq!(obs.len(), 100);
    let dates: Vec<i64> =
        obs.iter().map(|o| models::parse_time_ms(o["observationDate"].as_str().unwrap()).unwrap()).collect();
    assert_eq!(dates[0], T0);
    assert_eq!(dates[49], T0 + 490);
    assert_eq!(dates[50], T0 + 1000, "second half: the newest 50");
    assert_eq!(dates[99], T0 + 1490);
    for o in obs {
        assert!(is_uuid(&o["conversationId"]) && is_uuid(&o["sessionId"]));
        assert_eq!(o["direction"], "inbound");
        assert!(o["routingPriority"].is_i64());
    }
    // Under the cap: not truncated, everything listed.
    let mut small = Model::new(ModelConfig { detail_cap: 200, ..cfg(1, 0, 5, 0.0) }, T0);
    let q2 = small.queue_ids()[0].clone();
    small.arrive(&q2, "chat", 150);
    query.filter = QueryFilter::queue_ids([q2.as_str()]);
    let v = to_value(&small.observations_query(&query).unwrap());
    let chat = v["results"].as_array().unwrap().iter().find(|r| r["group"]["mediaType"] == "chat").unwrap().clone();
    assert_eq!(chat["data"][0]["truncated"], false);
    assert_eq!(chat["data"][0]["observations"].as_array().unwrap().len(), 150);
}

#[test]
fn observations_query_has_the_documented_shape() {
    let mut m = Model::new(cfg(2, 6, 3, 1200.0), T0);
    m.advance_to(T0 + 600_000);
    let v = query_value(&m, true);
    assert_keys(&v, &["systemToOrganizationMappings", "results"]);
    let mappings = v["systemToOrganizationMappings"].as_object().unwrap();
    for k in ["ON_QUEUE", "AVAILABLE", "OFFLINE", "BREAK", "MEAL", "AWAY", "BUSY"] {
        assert!(mappings[k].as_array().unwrap().iter().all(is_uuid), "{k}");
    }
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2 * (1 + MEDIA_TYPES.len()));
    for r in results {
        assert_keys(r, &["group", "data"]);
        let user = r["group"].get("mediaType").is_none();
        if user {
            assert_keys(&r["group"], &["queueId"]);
        } else {
            assert_keys(&r["group"], &["queueId", "mediaType"]);
            assert!(MEDIA_TYPES.contains(&r["group"]["mediaType"].as_str().unwrap()));
        }
        for d in r["data"].as_array().unwrap() {
            let metric = d["metric"].as_str().unwrap();
            assert!(models::OBSERVATION_METRICS.contains(&metric));
            assert_eq!(user, USER.contains(&metric), "{metric} in the right group");
            match metric {
                "oUserRoutingStatuses" | "oOnQueueUsers" => {
                    assert!(ROUTING_STATUSES.contains(&d["qualifier"].as_str().unwrap()));
                    assert!(d["stats"]["count"].as_u64().unwrap() > 0, "zero counts omitted");
                }
                "oUserPresences" | "oOffQueueUsers" => assert!(is_uuid(&d["qualifier"])),
                "oWaiting" | "oAlerting" | "oInteracting" => {
                    assert_keys(d, &["metric", "stats", "truncated", "observations"]);
                    assert!(d["truncated"].is_boolean());
                    for o in d["observations"].as_array().unwrap() {
                        assert!(models::parse_time_ms(o["observationDate"].as_str().unwrap()).is_some());
                    }
                }
                "oLongestWaiting" | "oLongestInteracting" => {
                    assert_keys(d, &["metric", "stats"]);
                    if d["stats"]["count"] == 0 {
                        assert_keys(&d["stats"], &["count"]);
                    } else {
                        assert_keys(&d["stats"], &["count", "calculatedMetricValue"]);
                    }
                }
                _ => assert_keys(d, &["metric", "stats"]),
            }
        }
    }
    // The tutorial's request shape answers the same user metrics.
    let q = m.queue_ids()[0].clone();
    let tut: QueueObservationQuery = serde_json::from_value(json!({
        "filter": {"type": "AND", "clauses": [{"type": "or", "predicates": [{"dimension": "queueId", "value": q}]}]},
        "detailMetrics": ["oInteracting"], "metrics": ["oUserRoutingStatuses"]}))
    .unwrap();
    let v = to_value(&m.observations_query(&tut).unwrap());
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[0]["group"], json!({"queueId": q}));
    assert!(results[0]["data"].as_array().unwrap().iter().all(|d| d["metric"] == "oUserRoutingStatuses"));
    assert!(results[1..]
        .iter()
        .all(|r| r["data"][0]["metric"] == "oInteracting" && r["data"][0].get("truncated").is_some()));
    // Unknown queue → no group; errors.
    let none = m.observations_query(&QueueObservationQuery {
        filter: QueryFilter::queue_ids(["nope"]),
        metrics: vec!["oWaiting".into()],
        detail_metrics: None,
    });
    assert!(none.unwrap().results.is_empty());
    let bad = QueueObservationQuery { metrics: vec!["oBogus".into()], ..all_query(&m, false) };
    assert!(m.observations_query(&bad).is_err());
    let ids: Vec<String> = (0..201).map(|i| format!("q{i}")).collect();
    let big = QueueObservationQuery {
        filter: QueryFilter::queue_ids(ids.iter().map(String::as_str)),
        metrics: vec!["oWaiting".into()],
        detail_metrics: None,
    };
    assert!(m.observations_query(&big).unwrap_err().0.contains("200"));
    let ok = QueueObservationQuery { filter: QueryFilter::queue_ids(ids[..200].iter().map(String::as_str)), ..big };
    assert!(m.observations_query(&ok).is_ok());
}

const INTERVAL_METRICS_ASKED: [&str; 9] =
    ["nOffered", "tAnswered", "tAbandon", "tWait", "tHandle", "tTalk", "tAcw", "nOverSla", "oServiceLevel"];

const USER: [&str; 6] =
    ["oUserRoutingStatuses", "oOnQueueUsers", "oUserPresences", "oOffQueueUsers", "oMemberUsers", "oActiveUsers"];

#[test]
fn aggregates_query_has_the_documented_shape() {
    let mut m = Model::new(cfg(3, 6, 8, 3000.0), T0);
    m.advance_to(T0 + 900_000);
    let start = interval_start(T0 + 900_000);
    let query = |v: Value| -> Value {
        let q: ConversationAggregationQuery = serde_json::from_value(v).unwrap();
        to_value(&m.aggregates_query(&q).unwrap())
    };
    let interval = models::format_interval_ms(start, start + INTERVAL_MS);
    let v = query(json!({"interval": interval, "groupBy": ["queueId", "mediaType"],
        "metrics": ["nOffered", "tAnswered", "tAbandon", "tWait", "tHandle", "tTalk", "tAcw", "nOverSla", "oServiceLevel"]}));
    assert_keys(&v, &["results"]);
    let t = m.truth();
    let results = v["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert_keys(r, &["group", "data"]);
        assert_keys(&r["group"], &["queueId", "mediaType"]);
        let tq = t.queues.iter().find(|q| r["group"]["queueId"] == q.id.as_str()).unwrap();
        let ti = &tq.media[r["group"]["mediaType"].as_str().unwrap()].interval;
        let data = r["data"].as_array().unwrap();
        assert_eq!(data.len(), 1);
        assert_keys(&data[0], &["interval", "metrics"]);
        assert_eq!(data[0]["interval"], interval.as_str());
        for mm in data[0]["metrics"].as_array().unwrap() {
            assert_keys(mm, &["metric", "stats"]);
            let s = &mm["stats"];
            match mm["metric"].as_str().unwrap() {
                "nOffered" => assert_eq!(s, &json!({"count": ti.offered})),
                "tAnswered" => assert_eq!(
                    s,
                    &json!({"count": ti.answered.count, "sum": ti.answered.sum_ms, "min": ti.answered.min_ms, "max": ti.answered.max_ms})
                ),
                "oServiceLevel" => {
                    assert_keys(s, &["ratio", "numerator", "denominator", "target"]);
                    assert_eq!(s["numerator"], ti.service_level.numerator);
                    assert!((s["ratio"].as_f64().unwrap() - ti.service_level.ratio.unwrap()).abs() < 1e-12);
                }
                _ => {}
            }
        }
    }
    // Only the metrics asked for; grouped by mediaType only sums the queues.
    let v = query(json!({"interval": interval, "groupBy": ["mediaType"], "metrics": ["nOffered"],
        "filter": {"type": "and", "predicates": [{"dimension": "mediaType", "value": "voice"}]}}));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["group"], json!({"mediaType": "voice"}));
    let offered: u64 = t.queues.iter().map(|q| q.media["voice"].interval.offered).sum();
    assert_eq!(results[0]["data"][0]["metrics"], json!([{"metric": "nOffered", "stats": {"count": offered}}]));
    // Another interval: nothing. Known-but-unproduced metric: absent. Unknown metric: error.
    let past = models::format_interval_ms(start - 2 * INTERVAL_MS, start - INTERVAL_MS);
    assert_eq!(query(json!({"interval": past, "metrics": ["nOffered"]})), json!({"results": []}));
    assert_eq!(query(json!({"interval": interval, "metrics": ["nTransferred"]})), json!({"results": []}));
    let bad: ConversationAggregationQuery =
        serde_json::from_value(json!({"interval": interval, "metrics": ["nBogus"]})).unwrap();
    assert!(m.aggregates_query(&bad).is_err());
}

#[test]
fn interval_rolls_over_on_the_half_hour() {
    let mut m = quiet(1, 0);
    let q = m.queue_ids()[0].clone();
    m.arrive(&q, "voice", 3);
    let before = m.truth().queues[0].media["voice"].interval.clone();
    assert_eq!(before.offered, 3);
    assert_eq!(before.start_ms, interval_start(T0));
    let boundary = interval_start(T0) + INTERVAL_MS;
    m.advance_to(boundary - 1);
    assert_eq!(m.truth().queues[0].media["voice"].interval.start_ms, before.start_ms);
    m.advance_to(boundary);
    let after = m.truth().queues[0].media["voice"].interval.clone();
    assert_eq!(after.start_ms, boundary);
    assert_eq!(after.offered, 0);
    assert_eq!(after.abandoned.count, 0);
    assert_eq!(after.service_level.ratio, None);
    m.arrive(&q, "voice", 1);
    let msgs = drain(&mut m);
    let agg =
        msgs.iter().map(msg_value).find(|v| v["eventBody"]["data"][0]["metrics"][0]["metric"] == "nOffered").unwrap();
    assert_eq!(agg["eventBody"]["data"][0]["interval"], models::format_interval_ms(boundary, boundary + INTERVAL_MS));
    assert_eq!(agg["eventBody"]["data"][0]["metrics"][0]["stats"]["count"], 1);
}

#[test]
fn longest_forms_duration_and_epoch() {
    for form in [LongestForm::Duration, LongestForm::Epoch] {
        let mut m = Model::new(ModelConfig { longest_form: form, ..cfg(1, 0, 2, 0.0) }, T0);
        let q = m.queue_ids()[0].clone();
        m.arrive(&q, "message", 1);
        m.advance_to(T0 + 4000);
        m.arrive(&q, "message", 1);
        m.advance_to(T0 + 7000);
        let want = match form {
            LongestForm::Duration => 7000,
            LongestForm::Epoch => T0,
        };
        let msgs = drain(&mut m);
        let obs = msg_value(&msgs[0]);
        let lw = obs["eventBody"]["data"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["metric"] == "oLongestWaiting")
            .unwrap()
            .clone();
        assert_eq!(lw["stats"], json!({"count": 2, "calculatedMetricValue": want}));
        let v = query_value(&m, false);
        let g = v["results"].as_array().unwrap().iter().find(|r| r["group"]["mediaType"] == "message").unwrap().clone();
        let d = g["data"].as_array().unwrap().iter().find(|x| x["metric"] == "oLongestWaiting").unwrap().clone();
        assert_eq!(d["stats"]["calculatedMetricValue"], want);
        assert_eq!(m.truth().queues[0].media["message"].longest_waiting_start_ms, Some(T0));
        // The decoder turns both forms into the same start instant.
        let Frame::Queue(dec) = decode_frame(&msgs[0].json).unwrap() else { panic!() };
        let o = dec.update.groups[0]
            .observations
            .iter()
            .find(|o| o.metric == crate::model::ObsMetric::LongestWaiting)
            .unwrap();
        assert_eq!(o.value, Some(T0 as f64));
    }
}

/// Values a delta reader holds: (queue, media, metric, qualifier) → value.
type Held = BTreeMap<(String, Option<String>, String, Option<String>), Option<f64>>;

fn apply(held: &mut Held, aggs: &mut BTreeMap<(String, String, String), f64>, u: crate::model::QueueUpdate) {
    for g in u.groups {
        if u.complete {
            held.retain(|k, _| !(k.0 == u.queue_id && k.1 == g.media_type));
        }
        for o in g.observations {
            held.insert(
                (u.queue_id.clone(), g.media_type.clone(), o.metric.wire_name().to_owned(), o.qualifier),
                o.value,
            );
        }
        if !g.aggregates.is_empty() {
            let mt = g.media_type.clone().unwrap_or_default();
            aggs.retain(|k, _| !(k.0 == u.queue_id && k.1 == mt));
            for a in g.aggregates {
                aggs.insert(
                    (u.queue_id.clone(), mt.clone(), a.metric),
                    a.stats.count.or(a.stats.denominator).unwrap_or(0.0),
                );
            }
        }
    }
}

#[test]
fn messages_decode_into_the_truth() {
    let mut m = Model::new(cfg(6, 6, 21, 1500.0), T0);
    m.advance_to(T0 + 60_000);
    let mut held = Held::new();
    let mut aggs = BTreeMap::new();
    let resp: QueueObservationQueryResponse = m.observations_query(&all_query(&m, false)).unwrap();
    for d in decode_observation_query(resp, m.now_ms()) {
        assert!(d.unknown_metrics.is_empty() && d.bad_metrics.is_empty());
        apply(&mut held, &mut aggs, d.update);
    }
    let agg_q: ConversationAggregationQuery = serde_json::from_value(json!({
        "interval": models::format_interval_ms(interval_start(T0), interval_start(T0) + INTERVAL_MS),
        "groupBy": ["queueId", "mediaType"], "metrics": INTERVAL_METRICS_ASKED}))
    .unwrap();
    for u in crate::genesys::decode::decode_aggregates(m.aggregates_query(&agg_q).unwrap()) {
        apply(&mut held, &mut aggs, u);
    }
    let _ = drain(&mut m); // messages up to the seed are covered by the queries
    for step in 1..=40 {
        m.advance_to(T0 + 60_000 + step * 7_000);
        for msg in drain(&mut m) {
            let Frame::Queue(d) = decode_frame(&msg.json).unwrap() else { panic!("not a queue frame") };
            assert!(d.unknown_metrics.is_empty() && d.bad_metrics.is_empty(), "{d:?}");
            assert_eq!(d.update.queue_id, msg.queue_id);
            apply(&mut held, &mut aggs, d.update);
        }
        let t = m.truth();
        for q in &t.queues {
            let get = |media: Option<&str>, metric: &str, qual: Option<&str>| {
                held.get(&(q.id.clone(), media.map(str::to_owned), metric.to_owned(), qual.map(str::to_owned)))
                    .copied()
                    .flatten()
                    .unwrap_or(0.0) as u64
            };
            for r in ROUTING_STATUSES {
                assert_eq!(get(None, "oUserRoutingStatuses", Some(r)), q.routing_statuses.get(r).copied().unwrap_or(0));
                assert_eq!(get(None, "oOnQueueUsers", Some(r)), q.on_queue.get(r).copied().unwrap_or(0));
            }
            for p in &t.presence_definitions {
                assert_eq!(get(None, "oUserPresences", Some(&p.id)), q.presences.get(&p.id).copied().unwrap_or(0));
                assert_eq!(get(None, "oOffQueueUsers", Some(&p.id)), q.off_queue.get(&p.id).copied().unwrap_or(0));
            }
            assert_eq!(get(None, "oMemberUsers", None), q.members);
            assert_eq!(get(None, "oActiveUsers", None), q.active);
            for (media, md) in &q.media {
                let mt = Some(media.as_str());
                assert_eq!(get(mt, "oWaiting", None), md.waiting);
                assert_eq!(get(mt, "oAlerting", None), md.alerting);
                assert_eq!(get(mt, "oInteracting", None), md.interacting);
                let lw =
                    held.get(&(q.id.clone(), Some(media.clone()), "oLongestWaiting".into(), None)).copied().flatten();
                assert_eq!(lw.map(|v| v as i64), md.longest_waiting_start_ms.filter(|s| *s < t.now_ms));
                let offered =
                    aggs.get(&(q.id.clone(), media.clone(), "nOffered".into())).copied().unwrap_or(0.0) as u64;
                if md.interval.start_ms == interval_start(T0) {
                    // Offers before the seed are only in the query's interval, which the topic then replaces.
                    assert!(offered <= md.interval.offered);
                }
            }
        }
    }
}

#[test]
fn org_changes() {
    let mut m = Model::new(cfg(4, 5, 13, 600.0), T0);
    let before = m.queues();
    assert_eq!(before.len(), 4);
    let names: Vec<&str> = before.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["Billing 003", "Sales 001", "Support 002", "Technical 004"]);
    let id = m.add_queue("Zeta 999", Some("Home"));
    assert!(m.has_queue(&id));
    assert_eq!(m.queues().last().unwrap().name, "Zeta 999");
    let msgs = drain(&mut m);
    let full = msgs.iter().find(|x| x.queue_id == id).expect("new queue announces its state");
    let v = msg_value(full);
    assert!(v["eventBody"]["data"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["metric"] == "oMemberUsers" && x["stats"]["count"] == 5));
    assert!(m.rename_queue(&id, "Alpha 000"));
    assert_eq!(m.queues()[0].name, "Alpha 000");
    m.advance_to(T0 + 600_000);
    check_invariants(&m);
    assert!(m.remove_queue(&id));
    assert!(!m.has_queue(&id) && !m.remove_queue(&id) && !m.rename_queue(&id, "x") && !m.arrive(&id, "voice", 1));
    assert!(m.truth().queues.iter().all(|q| q.id != id));
    m.advance_to(T0 + 1_200_000);
    check_invariants(&m);
    assert!(drain(&mut m).iter().all(|x| x.queue_id != id));
    let pid = m.add_presence_definition("Training", "BUSY");
    m.advance_to(T0 + 1_500_000);
    let t = m.truth();
    let def = t.presence_definitions.iter().find(|p| p.id == pid).unwrap();
    assert_eq!((def.name.as_str(), def.system_presence.as_str()), ("Training", "Busy"));
    assert!(t.queues.iter().any(|q| q.presences.contains_key(&pid)), "agents moved into the new presence");
    check_invariants(&m);
    check_query_matches_truth(&m);
    let v = query_value(&m, false);
    assert!(v["systemToOrganizationMappings"]["BUSY"].as_array().unwrap().iter().any(|x| x == pid.as_str()));
    assert!(!m.arrive(&m.queue_ids()[0], "fax", 1));
}

#[test]
fn queue_and_presence_entities_have_the_documented_shape() {
    let m = Model::new(cfg(3, 4, 1, 60.0), T0);
    for q in m.queues() {
        let v = serde_json::to_value(&q).unwrap();
        for k in ["id", "name", "division", "memberCount", "mediaSettings", "selfUri"] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        assert!(is_uuid(&v["id"]));
        assert_keys(&v["division"], &["id", "name", "selfUri"]);
        assert!(is_uuid(&v["division"]["id"]));
        assert_eq!(v["memberCount"], 4);
        let ms = v["mediaSettings"].as_object().unwrap();
        assert_eq!(ms.keys().map(String::as_str).collect::<Vec<_>>(), ["call", "callback", "chat", "email", "message"]);
        for s in ms.values() {
            let p = s["serviceLevel"]["percentage"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p));
            assert!(s["serviceLevel"]["durationMs"].as_i64().unwrap() > 0);
            assert!(s["alertingTimeoutSeconds"].as_u64().unwrap() > 0);
        }
        assert_eq!(v["selfUri"], format!("/api/v2/routing/queues/{}", q.id));
    }
    let t = m.truth();
    for (q, tq) in m.queues().iter().zip({
        let mut v = t.queues.clone();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }) {
        let target = q.media_settings.as_ref().unwrap()["call"].service_level.as_ref().unwrap().percentage;
        assert_eq!(tq.media["voice"].interval.service_level.target, target);
        assert_eq!(q.division.as_ref().unwrap().id, tq.division_id);
    }
    let defs = m.presence_definitions();
    assert_eq!(defs.len(), 7);
    for d in &defs {
        let v = serde_json::to_value(d).unwrap();
        assert_keys(&v, &["id", "type", "languageLabels", "systemPresence", "deactivated", "primary", "selfUri"]);
        assert!(is_uuid(&v["id"]));
        assert_keys(&v["languageLabels"], &["en_US"]);
        assert_eq!(v["type"], "System");
    }
    assert!(defs
        .iter()
        .any(|d| d.system_presence.as_deref() == Some("On Queue") && d.language_labels["en_US"] == "On Queue"));
}

#[test]
fn answered_conversations_flow_through_talk_and_acw() {
    let mut m = Model::new(cfg(1, 3, 17, 0.0), T0);
    m.set_arrivals_per_hour(0.0);
    let q = m.queue_ids()[0].clone();
    m.arrive(&q, "voice", 1);
    let t = m.truth();
    let v = &t.queues[0].media["voice"];
    let on_queue_idle = t.queues[0].on_queue.get("IDLE").copied().unwrap_or(0);
    assert!(
        on_queue_idle + t.queues[0].on_queue.get("INTERACTING").copied().unwrap_or(0) > 0,
        "seed with agents on queue"
    );
    assert_eq!(v.alerting + v.waiting, 1);
    m.advance_to(interval_start(T0) + INTERVAL_MS - 1);
    let t = m.truth();
    let i = &t.queues[0].media["voice"].interval;
    assert_eq!(i.offered, 1);
    assert_eq!(i.answered.count + i.abandoned.count, 1);
    assert_eq!(i.answered.count, 1);
    {
        assert_eq!((i.talk.count, i.acw.count, i.handle.count), (1, 1, 1));
        assert_eq!(i.handle.sum_ms, i.talk.sum_ms + i.acw.sum_ms);
    }
}

#[test]
fn demo_org_is_busy_but_not_saturated() {
    // The `simulate` defaults: 50 queues, 8 agents each, the default arrival rate.
    let mut m = Model::new(ModelConfig { queues: 50, ..ModelConfig::default() }, interval_start(T0));
    let mut changed_seconds = 0;
    let mut msgs = 0;
    for s in 1..=1800 {
        m.advance_to(interval_start(T0) + s * 1000 - 1);
        let mut out = Vec::new();
        m.take_messages(&mut out);
        msgs += out.len();
        changed_seconds += usize::from(!out.is_empty());
    }
    let t = m.truth();
    let sum = |f: &dyn Fn(&TruthInterval) -> u64| -> u64 {
        t.queues.iter().flat_map(|q| q.media.values()).map(|md| f(&md.interval)).sum()
    };
    let (offered, answered, abandoned) = (sum(&|i| i.offered), sum(&|i| i.answered.count), sum(&|i| i.abandoned.count));
    let num = sum(&|i| i.service_level.numerator);
    let den = sum(&|i| i.service_level.denominator);
    let sl = num as f64 / den.max(1) as f64;
    let on_queue: u64 = t.queues.iter().flat_map(|q| q.on_queue.values()).sum();
    let members: u64 = t.queues.iter().map(|q| q.members).sum();
    eprintln!("offered {offered} answered {answered} abandoned {abandoned} SL {sl:.2} on_queue {on_queue}/{members} msgs {msgs} seconds with messages {changed_seconds}/1800");
    assert!(changed_seconds > 1500, "a demo shows changes every few seconds");
    assert!(offered > 1000 && answered > offered / 2, "traffic is mostly answered");
    assert!((0.3..0.99).contains(&sl), "service level is interesting: {sl}");
}

#[test]
fn model_can_move_to_the_server_task() {
    fn send<T: Send + 'static>() {}
    send::<Model>();
    send::<TopicMessage>();
}

#[test]
fn user_qualifier_dropping_to_zero_is_sent_as_count_zero() {
    let mut m = Model::new(cfg(1, 1, 3, 0.0), T0);
    let q = m.queue_ids()[0].clone();
    let onq = m.presence_for("ON_QUEUE");
    let brk = m.presence_for("BREAK");
    m.set_presence(0, onq);
    let _ = drain(&mut m);
    m.set_presence(0, brk);
    let msgs = drain(&mut m);
    assert_eq!(msgs.len(), 1);
    let v = msg_value(&msgs[0]);
    assert_eq!(v["eventBody"]["group"], json!({"queueId": q}));
    let (onq_id, brk_id) = (m.presences[onq as usize].id.clone(), m.presences[brk as usize].id.clone());
    assert_eq!(
        v["eventBody"]["data"][0]["metrics"],
        json!([
            {"metric": "oUserRoutingStatuses", "qualifier": "OFF_QUEUE", "stats": {"count": 1}},
            {"metric": "oUserRoutingStatuses", "qualifier": "IDLE", "stats": {"count": 0}},
            {"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 0}},
            {"metric": "oUserPresences", "qualifier": onq_id, "stats": {"count": 0}},
            {"metric": "oUserPresences", "qualifier": brk_id, "stats": {"count": 1}},
            {"metric": "oOffQueueUsers", "qualifier": brk_id, "stats": {"count": 1}},
        ])
    );
    // Back on queue: the zeros come back up, nothing else is repeated.
    m.set_presence(0, onq);
    let v = msg_value(&drain(&mut m)[0]);
    let metrics = v["eventBody"]["data"][0]["metrics"].as_array().unwrap().clone();
    assert_eq!(metrics.len(), 6);
    assert!(metrics.contains(&json!({"metric": "oOffQueueUsers", "qualifier": brk_id, "stats": {"count": 0}})));
}

#[test]
fn abandon_waiting_clears_a_queue_and_counts_the_abandons() {
    let mut m = quiet(3, 4);
    let q = m.truth().queues[0].id.clone();
    assert!(m.arrive(&q, "voice", 30));
    m.advance_to(T0 + 10_000);
    let before = m.truth_of(&q).expect("queue");
    let waiting = before.media["voice"].waiting;
    assert!(waiting > 0, "more callers than agents: some wait");
    let abandoned = before.media["voice"].interval.abandoned.count;
    assert_eq!(m.abandon_waiting(&q), Some(waiting));
    let after = m.truth_of(&q).expect("queue");
    assert_eq!(after.media["voice"].waiting, 0);
    assert_eq!(after.media["voice"].longest_waiting_start_ms, None);
    assert_eq!(after.media["voice"].interval.abandoned.count, abandoned + waiting);
    assert_eq!(m.abandon_waiting("no-such-queue"), None);
    check_invariants(&m);
}

#[test]
fn spaced_messages_wait_for_the_queue_gap_and_then_go_at_once() {
    let mut m = quiet(2, 3);
    let q = m.truth().queues[0].id.clone();
    let mut out = Vec::new();
    m.take_messages_spaced(0, 1000, &mut out);
    out.clear();
    assert!(m.arrive(&q, "voice", 1));
    m.take_messages_spaced(10, 1000, &mut out);
    assert_eq!(out.len(), 1, "a change goes out at once when the queue has not sent for a while");
    assert!(m.arrive(&q, "chat", 1));
    out.clear();
    m.take_messages_spaced(500, 1000, &mut out);
    assert!(out.is_empty(), "within the gap: held");
    m.take_messages_spaced(1010, 1000, &mut out);
    assert_eq!(out.len(), 1, "one gap after the last message: sent");
    assert!(out[0].queue_id == q);
}
