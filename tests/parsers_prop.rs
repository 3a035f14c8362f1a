//! Property tests over every parser of outside input: WebSocket frames and topic bodies, REST answers (observations
//! and aggregates queries, queue listings, presence definitions, tokens, channels, subscriptions, error bodies), the
//! config loader (YAML and environment) and the web config file.
//!
//! Four properties, each parser:
//! - arbitrary text or bytes never panic;
//! - JSON of roughly the right shape (the real field names, random types and values) decodes or gives a typed error;
//! - a payload generated in the documented wire shape (written here with `json!`, not with the crate's serde models,
//!   so a wrong field name in the models fails) decodes to the values generated;
//! - unknown fields are ignored.
//!
//! The same parsers have `cargo fuzz` targets in `fuzz/` (docs/fuzzing.md). Case counts keep the binary at a few
//! seconds.

use genesys_cloud_exporter::config::{Config, ConfigError, KEYS};
use genesys_cloud_exporter::exposition::webconfig::{self, WebConfigError};
use genesys_cloud_exporter::genesys::auth::read_token_answer;
use genesys_cloud_exporter::genesys::client::read_answer;
use genesys_cloud_exporter::genesys::decode::{
    decode_aggregates, decode_frame, decode_observation_query, DecodeError, Frame, SystemKind,
};
use genesys_cloud_exporter::genesys::models::*;
use genesys_cloud_exporter::genesys::Error;
use genesys_cloud_exporter::model::{ObsMetric, Source};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::path::Path;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------------------------
// Generators

/// Any JSON leaf, with the numbers that break naive code: huge, negative, fractional, NaN-adjacent extremes.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN/inf", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof![Just(1e300), Just(-1e300), Just(f64::MAX), Just(f64::MIN_POSITIVE), Just(-0.0)]
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "[0-9:.TZ/-]{0,30}".prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly `good`, sometimes any JSON at all: a field of the right name with a random type.
fn or_junk(good: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![3 => good, 1 => any_json()].boxed()
}

/// An object of the given fields, each sometimes left out or of a random type.
fn rough_object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = fields
        .into_iter()
        .map(|(k, s)| prop::option::weighted(0.8, or_junk(s).prop_map(move |v| (k, v))).boxed())
        .collect();
    parts.prop_map(|kv| Value::Object(kv.into_iter().flatten().map(|(k, v)| (k.to_owned(), v)).collect())).boxed()
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(OBSERVATION_METRICS.to_vec()).prop_map(str::to_owned),
        prop::sample::select(INTERVAL_METRICS.to_vec()).prop_map(str::to_owned),
        "[a-zA-Z]{0,10}",
    ]
}

fn rough_stats() -> BoxedStrategy<Value> {
    let names = ["count", "sum", "min", "max", "ratio", "numerator", "denominator", "target", "calculatedMetricValue"];
    rough_object(names.iter().map(|n| (*n, leaf().boxed())).collect())
}

fn rough_interval() -> BoxedStrategy<Value> {
    prop_oneof![
        (0i64..4_000_000_000_000, 0i64..3_600_000).prop_map(|(a, d)| Value::String(format_interval_ms(a, a + d))),
        (0i64..4_000_000_000_000).prop_map(|a| Value::String(format_interval_ms(a, a))),
        "[0-9TZ:./-]{0,40}".prop_map(Value::String),
    ]
    .boxed()
}

fn rough_topic_body() -> BoxedStrategy<Value> {
    let metric = rough_object(vec![
        ("metric", metric_name().prop_map(Value::String).boxed()),
        ("qualifier", prop_oneof![Just(Value::Null), "[A-Z_]{0,8}".prop_map(Value::String)].boxed()),
        ("stats", rough_stats()),
    ]);
    let entry = rough_object(vec![
        ("interval", rough_interval()),
        ("metrics", prop::collection::vec(metric, 0..5).prop_map(Value::Array).boxed()),
    ]);
    rough_object(vec![
        ("group", rough_group()),
        ("data", prop::collection::vec(entry, 0..3).prop_map(Value::Array).boxed()),
    ])
}

fn rough_group() -> BoxedStrategy<Value> {
    rough_object(vec![
        ("queueId", "[a-z0-9-]{0,8}".prop_map(Value::String).boxed()),
        ("mediaType", prop::sample::select(vec!["voice", "chat", "email", ""]).prop_map(Value::from).boxed()),
    ])
}

fn topic_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,8}".prop_map(|id| queue_observations_topic(&id)),
        Just(CHANNEL_METADATA_TOPIC.to_owned()),
        Just(SOCKET_CLOSING_TOPIC.to_owned()),
        "v2\\.system\\.(token_revoked|no_longer_subscribed)\\.[a-z0-9]{0,6}",
        Just("v2.subscription.updated".to_owned()),
        ".{0,30}",
    ]
}

fn rough_event_body() -> BoxedStrategy<Value> {
    prop_oneof![
        rough_topic_body(),
        rough_object(vec![(
            "message",
            prop_oneof![Just(HEARTBEAT_MESSAGE), Just(PONG_MESSAGE), Just("x")].prop_map(Value::from).boxed()
        )]),
        rough_object(vec![
            (
                "systemTopicType",
                prop::sample::select(vec!["no_longer_subscribed", "token_revoked", "subscription_changed", "?"])
                    .prop_map(Value::from)
                    .boxed(),
            ),
            ("channelId", ".{0,8}".prop_map(Value::String).boxed()),
            ("reason", ".{0,8}".prop_map(Value::String).boxed()),
            ("data", any_json().boxed()),
        ]),
    ]
    .boxed()
}

fn rough_envelope() -> BoxedStrategy<Value> {
    rough_object(vec![
        ("topicName", topic_name().prop_map(Value::String).boxed()),
        ("version", Just(Value::from("2")).boxed()),
        ("eventBody", rough_event_body()),
        ("metadata", rough_object(vec![("CorrelationId", ".{0,8}".prop_map(Value::String).boxed())])),
        ("result", prop_oneof![Just(Value::from("200")), Just(Value::from("404"))].boxed()),
    ])
}

fn rough_observation_response() -> BoxedStrategy<Value> {
    let obs = rough_object(vec![
        ("observationDate", rough_interval()),
        ("conversationId", ".{0,8}".prop_map(Value::String).boxed()),
        ("routingPriority", leaf().boxed()),
    ]);
    let data = rough_object(vec![
        ("metric", metric_name().prop_map(Value::String).boxed()),
        ("qualifier", "[A-Z_]{0,8}".prop_map(Value::String).boxed()),
        ("stats", rough_stats()),
        ("truncated", any::<bool>().prop_map(Value::Bool).boxed()),
        ("observations", prop::collection::vec(obs, 0..3).prop_map(Value::Array).boxed()),
    ]);
    let result = rough_object(vec![
        ("group", rough_group()),
        ("data", prop::collection::vec(data, 0..4).prop_map(Value::Array).boxed()),
    ]);
    rough_object(vec![
        ("systemToOrganizationMappings", any_json().boxed()),
        ("results", prop::collection::vec(result, 0..3).prop_map(Value::Array).boxed()),
    ])
}

fn rough_aggregates_response() -> BoxedStrategy<Value> {
    let result = rough_object(vec![
        ("group", rough_group()),
        (
            "data",
            prop::collection::vec(rough_topic_body(), 0..2)
                .prop_map(|v| {
                    Value::Array(v.into_iter().flat_map(|b| b["data"].as_array().cloned()).flatten().collect())
                })
                .boxed(),
        ),
    ]);
    rough_object(vec![("results", prop::collection::vec(result, 0..3).prop_map(Value::Array).boxed())])
}

fn rough_queue_listing() -> BoxedStrategy<Value> {
    let division = rough_object(vec![
        ("id", "[a-z0-9]{0,6}".prop_map(Value::String).boxed()),
        ("name", ".{0,6}".prop_map(Value::String).boxed()),
    ]);
    let queue = rough_object(vec![
        ("id", "[a-z0-9]{0,6}".prop_map(Value::String).boxed()),
        ("name", ".{0,8}".prop_map(Value::String).boxed()),
        ("division", division),
        ("memberCount", leaf().boxed()),
        ("mediaSettings", any_json().boxed()),
    ]);
    rough_object(vec![
        ("entities", prop::collection::vec(queue, 0..4).prop_map(Value::Array).boxed()),
        ("pageSize", leaf().boxed()),
        ("pageNumber", leaf().boxed()),
        ("pageCount", leaf().boxed()),
        ("total", leaf().boxed()),
        ("nextUri", ".{0,10}".prop_map(Value::String).boxed()),
    ])
}

/// Adds keys no model knows to every object of a struct-shaped value. Maps (`group`, `mediaSettings`, `data` of
/// system messages, mappings) keep their keys as data, so `skip` names the keys whose values are left alone.
fn with_unknown_fields(v: &mut Value, extra: &Value, skip: &[&str]) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if !skip.contains(&k.as_str()) {
                    with_unknown_fields(child, extra, skip);
                }
            }
            m.insert("zzUnknownField".to_owned(), extra.clone());
            m.insert("anotherFutureField".to_owned(), json!({"nested": [extra.clone()]}));
        }
        Value::Array(items) => items.iter_mut().for_each(|i| with_unknown_fields(i, extra, skip)),
        _ => {}
    }
}

const MAP_KEYS: &[&str] = &["group", "mediaSettings", "systemToOrganizationMappings", "languageLabels"];

const DECODE_KINDS: [&str; 4] = ["oversized", "malformed", "unknown_topic", "wrong_type"];

fn frame_outcome(text: &str) -> Result<Frame, &'static str> {
    decode_frame(text).map_err(|e| e.kind())
}

// ---------------------------------------------------------------------------------------------------------------
// WebSocket frames

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn frames_never_panic_on_arbitrary_text(s in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_frame(&s);
        let _ = decode_frame(&String::from_utf8_lossy(&bytes));
    }

    /// Valid frames cut or spliced at any point: the socket may deliver a truncated or corrupted text.
    #[test]
    fn damaged_frames_give_typed_errors(cut in any::<prop::sample::Index>(), junk in ".{0,4}") {
        let good = r#"{"topicName":"v2.analytics.queues.q1.observations","eventBody":{"group":{"queueId":"q1","mediaType":"voice"},"data":[{"interval":"2025-01-01T00:00:00.000Z/2025-01-01T00:00:00.000Z","metrics":[{"metric":"oWaiting","stats":{"count":2}}]}]}}"#;
        let mut at = cut.index(good.len());
        while !good.is_char_boundary(at) { at -= 1; }
        let spliced = format!("{}{junk}{}", &good[..at], &good[at..]);
        for text in [&good[..at], spliced.as_str()] {
            if let Err(k) = frame_outcome(text) { prop_assert!(DECODE_KINDS.contains(&k)); }
        }
    }

    #[test]
    fn rough_envelopes_decode_or_give_a_typed_error(v in rough_envelope()) {
        let text = v.to_string();
        match decode_frame(&text) {
            Ok(Frame::Queue(d)) => {
                let topic = v["topicName"].as_str().unwrap_or_default();
                prop_assert_eq!(queue_id_of_topic(topic), Some(d.update.queue_id.as_str()));
                prop_assert_eq!(d.update.source, Source::Stream);
                prop_assert!(!d.update.complete, "a topic message is never a complete read");
            }
            Ok(Frame::Heartbeat | Frame::Pong | Frame::Metadata(_)) => {
                prop_assert_eq!(v["topicName"].as_str(), Some(CHANNEL_METADATA_TOPIC));
            }
            Ok(Frame::SocketClosing) => prop_assert_eq!(v["topicName"].as_str(), Some(SOCKET_CLOSING_TOPIC)),
            Ok(Frame::System { topic, .. }) => {
                prop_assert!(topic.starts_with("v2.system.") || topic == "v2.subscription.updated");
            }
            Ok(Frame::Reply) => prop_assert!(v.get("topicName").is_none_or(Value::is_null)),
            Err(e @ DecodeError::WrongType { .. }) => {
                // Only the topics whose body is read can have a body of the wrong shape.
                let topic = v["topicName"].as_str().unwrap_or_default();
                prop_assert!(topic == CHANNEL_METADATA_TOPIC || queue_id_of_topic(topic).is_some(), "{e}");
            }
            Err(e) => prop_assert!(DECODE_KINDS.contains(&e.kind()), "{e}"),
        }
    }

    #[test]
    fn unknown_fields_in_frames_are_ignored(v in rough_envelope(), extra in any_json()) {
        let mut with = v.clone();
        // System message `data` is free-form and kept, so it is not struct-shaped.
        let mut skip = MAP_KEYS.to_vec();
        skip.push("data");
        skip.push("result");
        with_unknown_fields(&mut with, &extra, &skip);
        // The topic body's `data` is a list of structs: add unknown fields inside it too.
        if queue_id_of_topic(v["topicName"].as_str().unwrap_or_default()).is_some() {
            if let Some(entries) = with.pointer_mut("/eventBody/data").and_then(Value::as_array_mut) {
                for e in entries { with_unknown_fields(e, &extra, MAP_KEYS); }
            }
        }
        prop_assert_eq!(frame_outcome(&v.to_string()), frame_outcome(&with.to_string()));
    }
}

// Round trips: frames written in the documented wire shape decode to the values written.

#[derive(Debug, Clone)]
struct GenObservation {
    metric: ObsMetric,
    qualifier: Option<String>,
    count: u32,
}

fn count_metric() -> impl Strategy<Value = GenObservation> {
    let plain = [
        ObsMetric::Waiting,
        ObsMetric::Alerting,
        ObsMetric::Interacting,
        ObsMetric::MemberUsers,
        ObsMetric::ActiveUsers,
    ];
    let qualified =
        [ObsMetric::UserRoutingStatuses, ObsMetric::OnQueueUsers, ObsMetric::UserPresences, ObsMetric::OffQueueUsers];
    prop_oneof![
        (prop::sample::select(plain.to_vec()), 0u32..10_000).prop_map(|(metric, count)| GenObservation {
            metric,
            qualifier: None,
            count
        }),
        (prop::sample::select(qualified.to_vec()), "[A-Z_]{1,12}|[0-9a-f-]{36}", 0u32..10_000)
            .prop_map(|(metric, q, count)| GenObservation { metric, qualifier: Some(q), count }),
    ]
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn observation_messages_round_trip(
        queue_id in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        media in prop::sample::select(vec!["voice", "chat", "email", "callback", "message"]),
        // After 2001-09-09 (1e12 ms), so the epoch reading of a wait is told apart from a duration.
        at in 1_100_000_000_000i64..4_102_444_800_000,
        obs in prop::collection::vec(count_metric(), 0..8),
        longest_wait_ms in prop::option::of(1i64..86_400_000),
        epoch_form in any::<bool>(),
    ) {
        let mut metrics: Vec<Value> = obs.iter().map(|o| {
            let mut m = json!({"metric": o.metric.wire_name(), "stats": {"count": o.count}});
            if let Some(q) = &o.qualifier { m["qualifier"] = json!(q); }
            m
        }).collect();
        // Both UNCONFIRMED readings of oLongestWaiting.calculatedMetricValue (genesys-api.md §3): a duration in ms,
        // or the epoch ms of the oldest conversation's start. Either way it is the same instant.
        if let Some(w) = longest_wait_ms {
            let v = if epoch_form { at - w } else { w };
            metrics.push(json!({"metric": "oLongestWaiting", "stats": {"count": 1, "calculatedMetricValue": v}}));
        }
        let text = json!({
            "topicName": format!("v2.analytics.queues.{queue_id}.observations"),
            "version": "2",
            "eventBody": {
                "group": {"queueId": queue_id, "mediaType": media},
                "data": [{"interval": format!("{0}/{0}", format_time_ms(at)), "metrics": metrics}],
            },
            "metadata": {"CorrelationId": "c0ffee"},
        }).to_string();
        let Ok(Frame::Queue(d)) = decode_frame(&text) else { panic!("{text}") };
        prop_assert!(d.unknown_metrics.is_empty() && d.bad_metrics.is_empty(), "{:?}", d);
        prop_assert_eq!(&d.update.queue_id, &queue_id);
        prop_assert_eq!(d.update.event_ms, Some(at));
        let g = &d.update.groups[0];
        prop_assert_eq!(g.media_type.as_deref(), Some(media));
        prop_assert!(g.interval.is_none() && g.aggregates.is_empty());
        for (o, got) in obs.iter().zip(&g.observations) {
            prop_assert_eq!(got.metric, o.metric);
            prop_assert_eq!(&got.qualifier, &o.qualifier);
            prop_assert_eq!(got.value, Some(f64::from(o.count)));
        }
        if let Some(w) = longest_wait_ms {
            let l = g.observations.last().unwrap();
            prop_assert_eq!(l.metric, ObsMetric::LongestWaiting);
            prop_assert_eq!(l.value, Some((at - w) as f64));
        }
        prop_assert_eq!(g.observations.len(), obs.len() + usize::from(longest_wait_ms.is_some()));
    }

    #[test]
    fn aggregate_messages_round_trip(
        start_slot in 0i64..100_000,
        stats in prop::collection::vec((prop::sample::select(INTERVAL_METRICS.to_vec()), 0u32..1000, 0u32..1_000_000), 1..6),
    ) {
        let start = start_slot * 1_800_000;
        let metrics: Vec<Value> = stats.iter().map(|(m, count, sum)| {
            json!({"metric": m, "stats": {"count": count, "sum": sum, "min": 1, "max": sum}})
        }).collect();
        let text = json!({
            "topicName": "v2.analytics.queues.q.observations",
            "eventBody": {"group": {"queueId": "q", "mediaType": "chat"},
                          "data": [{"interval": format_interval_ms(start, start + 1_800_000), "metrics": metrics}]},
        }).to_string();
        let Ok(Frame::Queue(d)) = decode_frame(&text) else { panic!("{text}") };
        let g = &d.update.groups[0];
        prop_assert_eq!(g.interval, Some((start, start + 1_800_000)));
        prop_assert_eq!(g.aggregates.len(), stats.len());
        for ((m, count, sum), a) in stats.iter().zip(&g.aggregates) {
            prop_assert_eq!(&a.metric, m);
            prop_assert_eq!(a.stats.count, Some(f64::from(*count)));
            prop_assert_eq!(a.stats.sum, Some(f64::from(*sum)));
            prop_assert_eq!(a.stats.max, Some(f64::from(*sum)));
        }
    }

    #[test]
    fn control_and_system_frames_round_trip(
        kind in prop::sample::select(vec!["no_longer_subscribed", "token_revoked", "subscription_changed"]),
        channel in "[a-z0-9-]{1,20}",
        message in ".{0,40}",
        as_heartbeat in any::<bool>(),
    ) {
        let meta = if as_heartbeat { HEARTBEAT_MESSAGE } else { PONG_MESSAGE };
        let f = decode_frame(&json!({"topicName": "channel.metadata", "eventBody": {"message": meta}}).to_string());
        prop_assert_eq!(f.unwrap(), if as_heartbeat { Frame::Heartbeat } else { Frame::Pong });
        // socket_closing's exact body is UNCONFIRMED: any body means "reconnect now".
        let closing = json!({"topicName": "v2.system.socket_closing", "eventBody": {"channelId": channel, "message": message}});
        prop_assert_eq!(decode_frame(&closing.to_string()).unwrap(), Frame::SocketClosing);
        let sys = json!({
            "topicName": format!("v2.system.{kind}.{channel}"),
            "eventBody": {"channelId": channel, "systemTopicType": kind, "message": message, "reason": "user_tokens_revoked"},
        });
        let Ok(Frame::System { kind: k, message: m, .. }) = decode_frame(&sys.to_string()) else { panic!("{sys}") };
        let want = match kind {
            "no_longer_subscribed" => SystemKind::NoLongerSubscribed,
            "token_revoked" => SystemKind::TokenRevoked,
            _ => SystemKind::SubscriptionChanged,
        };
        prop_assert_eq!(k, want);
        prop_assert_eq!(m.channel_id.as_deref(), Some(channel.as_str()));
        prop_assert_eq!(m.message.as_deref(), Some(message.as_str()));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// REST answers

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn rest_bodies_never_panic_on_arbitrary_bytes(status in any::<u16>(), head in any::<bool>(), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_answer::<QueueObservationQueryResponse>("observations_query", status, head, &body, None);
        let _ = read_answer::<ConversationAggregateQueryResponse>("aggregates_query", status, head, &body, None);
        let _ = read_answer::<QueueEntityListing>("routing_queues", status, head, &body, None);
        let _ = read_answer::<PresenceDefinitionListing>("presence_definitions", status, head, &body, None);
        let _ = read_answer::<Channel>("notifications_channels", status, head, &body, None);
        let _ = read_answer::<ChannelTopicEntityListing>("notifications_subscriptions", status, head, &body, None);
        if let Err(e) = read_token_answer(status, &body) { let _ = (e.kind(), e.to_string()); }
    }

    #[test]
    fn rough_query_responses_decode_or_give_a_typed_error(obs in rough_observation_response(), agg in rough_aggregates_response()) {
        match read_answer::<QueueObservationQueryResponse>("observations_query", 200, false, obs.to_string().as_bytes(), None) {
            Ok(r) => {
                for d in decode_observation_query(r.unwrap(), 1_735_689_600_000) {
                    prop_assert!(d.update.complete && d.update.source == Source::Poll);
                }
            }
            Err(e) => prop_assert_eq!(e.kind(), "decode"),
        }
        match read_answer::<ConversationAggregateQueryResponse>("aggregates_query", 200, false, agg.to_string().as_bytes(), None) {
            Ok(r) => {
                for u in decode_aggregates(r.unwrap()) {
                    prop_assert!(u.groups.iter().all(|g| g.interval.is_some()), "aggregates without an interval are skipped");
                }
            }
            Err(e) => prop_assert_eq!(e.kind(), "decode"),
        }
    }

    #[test]
    fn rough_listings_decode_or_give_a_typed_error(l in rough_queue_listing()) {
        match read_answer::<QueueEntityListing>("routing_queues", 200, false, l.to_string().as_bytes(), None) {
            Ok(Some(got)) => prop_assert_eq!(Some(got.entities.len()), l["entities"].as_array().map(Vec::len).or(Some(0))),
            Ok(None) => prop_assert!(false, "a non-empty 2xx body is read"),
            Err(e) => prop_assert!(matches!(e, Error::Decode { endpoint: "routing_queues", .. }), "{e}"),
        }
    }

    #[test]
    fn unknown_fields_in_rest_bodies_are_ignored(obs in rough_observation_response(), l in rough_queue_listing(), extra in any_json()) {
        let decode_obs = |v: &Value| {
            read_answer::<QueueObservationQueryResponse>("observations_query", 200, false, v.to_string().as_bytes(), None)
                .map(|r| decode_observation_query(r.unwrap_or_default(), 0)).map_err(|e| e.kind())
        };
        let decode_listing = |v: &Value| {
            read_answer::<QueueEntityListing>("routing_queues", 200, false, v.to_string().as_bytes(), None).map_err(|e| e.kind())
        };
        let (mut obs2, mut l2) = (obs.clone(), l.clone());
        with_unknown_fields(&mut obs2, &extra, MAP_KEYS);
        with_unknown_fields(&mut l2, &extra, MAP_KEYS);
        prop_assert_eq!(decode_obs(&obs), decode_obs(&obs2));
        prop_assert_eq!(decode_listing(&l), decode_listing(&l2));
    }

    #[test]
    fn observation_query_responses_round_trip(
        queues in prop::collection::btree_map("[a-z0-9]{1,8}", (0u32..50, prop::collection::vec(0i64..60_000, 0..4), prop::collection::vec(("[A-Z_]{1,10}", 0u32..30), 0..3)), 1..5),
    ) {
        let now = 1_735_689_600_000i64;
        let mut results = Vec::new();
        for (id, (waiting, waits, statuses)) in &queues {
            let mut waits = waits.clone();
            waits.sort_unstable();
            let details: Vec<Value> = waits.iter().rev().map(|w| json!({"observationDate": format_time_ms(now - w), "conversationId": "c"})).collect();
            results.push(json!({"group": {"queueId": id},
                "data": statuses.iter().map(|(q, n)| json!({"metric": "oUserRoutingStatuses", "qualifier": q, "stats": {"count": n}})).collect::<Vec<_>>()}));
            results.push(json!({"group": {"queueId": id, "mediaType": "voice"},
                "data": [{"metric": "oWaiting", "stats": {"count": waiting}, "truncated": false, "observations": details}]}));
        }
        let body = json!({"systemToOrganizationMappings": {"ON_QUEUE": ["p1"]}, "results": results}).to_string();
        let r = read_answer::<QueueObservationQueryResponse>("observations_query", 200, false, body.as_bytes(), None).unwrap().unwrap();
        let decoded = decode_observation_query(r, now);
        prop_assert_eq!(decoded.len(), queues.len());
        for (d, (id, (waiting, waits, statuses))) in decoded.iter().zip(&queues) {
            prop_assert_eq!(&d.update.queue_id, id);
            prop_assert_eq!(d.update.event_ms, Some(now));
            let users = &d.update.groups[0];
            prop_assert_eq!(users.media_type.as_deref(), None);
            for ((q, n), o) in statuses.iter().zip(&users.observations) {
                prop_assert_eq!(o.qualifier.as_deref(), Some(q.as_str()));
                prop_assert_eq!(o.value, Some(f64::from(*n)));
            }
            let voice = &d.update.groups[1];
            prop_assert_eq!(voice.observations[0].value, Some(f64::from(*waiting)));
            // The oldest detail observation is the longest wait.
            let longest = voice.observations.iter().find(|o| o.metric == ObsMetric::LongestWaiting).map(|o| o.value);
            let want = waits.iter().max().map(|w| Some((now - w) as f64));
            prop_assert_eq!(longest, want);
        }
    }

    #[test]
    fn aggregates_query_responses_round_trip(
        rows in prop::collection::vec(("[a-z0-9]{1,8}", prop::sample::select(vec!["voice", "chat"]), 0i64..1000, 0u32..500), 1..6),
    ) {
        let results: Vec<Value> = rows.iter().map(|(q, media, slot, n)| json!({
            "group": {"queueId": q, "mediaType": media},
            "data": [{"interval": format_interval_ms(slot * 1_800_000, (slot + 1) * 1_800_000),
                      "metrics": [{"metric": "nOffered", "stats": {"count": n}}]}],
        })).collect();
        let body = json!({"results": results}).to_string();
        let r = read_answer::<ConversationAggregateQueryResponse>("aggregates_query", 200, false, body.as_bytes(), None).unwrap().unwrap();
        let updates = decode_aggregates(r);
        let groups: usize = updates.iter().map(|u| u.groups.len()).sum();
        prop_assert_eq!(groups, rows.len());
        for (q, media, slot, n) in &rows {
            let u = updates.iter().find(|u| &u.queue_id == q).unwrap();
            prop_assert!(u.groups.iter().any(|g| g.media_type.as_deref() == Some(*media)
                && g.interval == Some((slot * 1_800_000, (slot + 1) * 1_800_000))
                && g.aggregates[0].stats.count == Some(f64::from(*n))));
        }
    }

    #[test]
    fn queue_listing_pages_round_trip(
        queues in prop::collection::vec(("[a-z0-9-]{1,36}", ".{0,30}", prop::option::of(("[a-z0-9]{1,8}", ".{0,10}"))), 0..6),
        page in 1u32..50,
        next in prop::option::of("/api/v2/routing/queues\\?pageSize=100&pageNumber=[0-9]{1,3}"),
    ) {
        let entities: Vec<Value> = queues.iter().map(|(id, name, div)| {
            let mut q = json!({"id": id, "name": name, "memberCount": 3, "mediaSettings": {"call": {"serviceLevel": {"percentage": 0.8, "durationMs": 20000}}}, "selfUri": "/x"});
            if let Some((did, dname)) = div { q["division"] = json!({"id": did, "name": dname, "selfUri": "/d"}); }
            q
        }).collect();
        let mut body = json!({"entities": entities, "pageSize": 100, "pageNumber": page, "total": queues.len(), "pageCount": page + 1});
        if let Some(n) = &next { body["nextUri"] = json!(n); }
        let l = read_answer::<QueueEntityListing>("routing_queues", 200, false, body.to_string().as_bytes(), None).unwrap().unwrap();
        prop_assert_eq!(l.page_number, Some(page));
        prop_assert_eq!(l.page_count, Some(page + 1));
        prop_assert_eq!(&l.next_uri, &next);
        prop_assert_eq!(l.entities.len(), queues.len());
        for ((id, name, div), q) in queues.iter().zip(&l.entities) {
            prop_assert_eq!(&q.id, id);
            prop_assert_eq!(&q.name, name);
            prop_assert_eq!(q.division.as_ref().map(|d| (d.id.clone(), d.name.clone().unwrap_or_default())), div.clone());
            let sl = q.media_settings.as_ref().and_then(|m| m.get("call")).and_then(|c| c.service_level.clone()).unwrap();
            prop_assert_eq!((sl.percentage, sl.duration_ms), (0.8, 20000));
        }
    }

    #[test]
    fn token_answers_round_trip(token in "tok-[A-Za-z0-9_.-]{1,80}", expires_in in any::<u64>(), error in "[a-z_]{1,20}", description in "[ -~]{0,40}", status in prop::sample::select(vec![400u16, 401, 403, 500, 503])) {
        let ok = json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}).to_string();
        let t = read_token_answer(200, ok.as_bytes()).unwrap();
        prop_assert_eq!((&t.access_token, t.expires_in), (&token, expires_in));
        prop_assert!(!format!("{t:?}").contains(&token), "a token never shows in Debug");
        let err = json!({"error": error, "error_description": description}).to_string();
        let reason = if description.is_empty() { error.clone() } else { format!("{error}: {description}") };
        match read_token_answer(status, err.as_bytes()).unwrap_err() {
            Error::Auth { status: s, reason: r } => prop_assert_eq!((s, r), (status, reason)),
            Error::Status { status: s, message, .. } => prop_assert_eq!((s, message), (status, reason)),
            e => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn error_bodies_round_trip(status in 400u16..600, code in "[a-z.]{1,30}", message in ".{0,60}", ctx in "[0-9a-f-]{36}") {
        let body = json!({"message": message, "code": code, "status": status, "contextId": ctx, "details": [], "errors": []}).to_string();
        match read_answer::<Value>("observations_query", status, false, body.as_bytes(), Some("header-ctx".into())).unwrap_err() {
            Error::Forbidden { code: c, message: m, .. } => { prop_assert_eq!(status, 403); prop_assert_eq!((c, m), (code, message)); }
            Error::Status { status: s, code: c, message: m, context_id, .. } => {
                prop_assert_eq!((s, c, m), (status, code, message));
                prop_assert_eq!(context_id, Some(ctx), "the body's contextId wins over the header's");
            }
            e => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn channel_and_subscription_answers_round_trip(
        id in "streaming-[0-9]-[a-z0-9]{10,26}",
        expires in 946_684_800_000i64..4_102_444_800_000,
        topics in prop::collection::vec(("[a-z0-9]{1,8}", any::<bool>()), 0..6),
    ) {
        let uri = format!("wss://streaming.mypurecloud.com/channels/{id}");
        let body = json!({"connectUri": uri, "id": id, "expires": format_time_ms(expires)}).to_string();
        let c = read_answer::<Channel>("notifications_channels", 200, false, body.as_bytes(), None).unwrap().unwrap();
        prop_assert_eq!((&c.id, &c.connect_uri), (&id, &uri));
        prop_assert_eq!(c.expires.as_deref().and_then(parse_time_ms), Some(expires));
        let listing = json!({"entities": topics.iter().map(|(q, rejected)| {
            let mut t = json!({"id": queue_observations_topic(q), "state": if *rejected { "Rejected" } else { "Permitted" }});
            if *rejected { t["rejectionReason"] = json!("missing permission"); t["missingPermissions"] = json!(["analytics:queueObservation:view"]); }
            t
        }).collect::<Vec<_>>()}).to_string();
        let l = read_answer::<ChannelTopicEntityListing>("notifications_subscriptions", 200, false, listing.as_bytes(), None).unwrap().unwrap();
        prop_assert_eq!(l.entities.len(), topics.len());
        for ((q, rejected), t) in topics.iter().zip(&l.entities) {
            prop_assert_eq!(queue_id_of_topic(&t.id), Some(q.as_str()));
            prop_assert_eq!(t.is_rejected(), *rejected);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Config loader (YAML + environment)

fn key_value(key: &'static str) -> BoxedStrategy<Value> {
    let good: BoxedStrategy<Value> = match key {
        k if k.ends_with("interval") || k.ends_with("timeout") || k.ends_with("max_age") => {
            (1u32..100_000, prop::sample::select(vec!["ms", "s", "m", "h"]))
                .prop_map(|(n, u)| json!(format!("{n}{u}")))
                .boxed()
        }
        "queues.include" | "queues.exclude" | "queues.divisions" | "queues.media_types" => {
            prop::collection::vec("[A-Za-z0-9*? ]{0,8}", 0..3).prop_map(|v| json!(v)).boxed()
        }
        "notifications.topics_per_channel" | "notifications.max_channels" => {
            (0u32..2000).prop_map(|n| json!(n)).boxed()
        }
        "api.budget_share" => (0.0f64..2.0).prop_map(|f| json!(f)).boxed(),
        "histograms.wait_buckets" => prop::collection::vec(0.0f64..1000.0, 0..5).prop_map(|v| json!(v)).boxed(),
        "otlp.protocol" => prop::sample::select(vec!["grpc", "http/protobuf", "udp"]).prop_map(|s| json!(s)).boxed(),
        "otlp.compression" => prop::sample::select(vec!["gzip", "none", "zstd"]).prop_map(|s| json!(s)).boxed(),
        "otlp.enabled" | "web.metrics_enabled" => any::<bool>().prop_map(|b| json!(b)).boxed(),
        "otlp.headers" | "otlp.resource_attributes" => {
            prop::collection::btree_map("[a-z-]{0,6}", ".{0,6}", 0..3).prop_map(|m| json!(m)).boxed()
        }
        _ => ".{0,20}".prop_map(|s| json!(s)).boxed(),
    };
    or_junk(good)
}

/// A config document: known keys with values of the right or a random type, now and then an unknown key.
fn rough_config() -> impl Strategy<Value = (Value, Vec<String>)> {
    let entries = prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(KEYS.to_vec()).prop_flat_map(|k| key_value(k).prop_map(move |v| (k.to_owned(), v))),
            1 => ("[a-z]{1,6}\\.[a-z_]{1,10}", any_json()),
        ],
        0..8,
    );
    entries.prop_map(|kv| {
        let mut root = Map::new();
        let mut written = Vec::new();
        for (path, v) in kv {
            let (section, key) = path.split_once('.').unwrap();
            let s = root.entry(section.to_owned()).or_insert_with(|| json!({}));
            s[key] = v;
            written.push(path);
        }
        (Value::Object(root), written)
    })
}

/// JSON is YAML (flow style, every string quoted), once the characters YAML forbids in a stream are dropped.
fn yaml(v: &Value) -> String {
    fn printable(s: &str) -> String {
        s.chars()
            .filter(|&c| {
                c == '\t'
                    || (' '..='~').contains(&c)
                    || ('\u{A0}'..='\u{D7FF}').contains(&c)
                    || (('\u{E000}'..='\u{FFFD}').contains(&c) && c != '\u{FEFF}')
                    || c >= '\u{10000}'
            })
            .collect()
    }
    fn clean(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(printable(s)),
            Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (printable(k), clean(v))).collect()),
            other => other.clone(),
        }
    }
    clean(v).to_string()
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn config_never_panics_on_arbitrary_text(s in ".{0,200}", lines in prop::collection::vec("[ a-z_:\\-\\[\\]{}'\"#&*!|>0-9.]{0,30}", 0..8)) {
        let _ = Config::from_yaml(&s);
        let _ = Config::from_yaml(&lines.join("\n"));
    }

    #[test]
    fn rough_configs_load_or_name_the_key((doc, written) in rough_config()) {
        match Config::from_yaml(&yaml(&doc)) {
            Ok(cfg) => { let _ = cfg.validate(); }
            Err(ConfigError::Invalid(problems)) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    // Every problem names a key (or section) that was written, never something else.
                    prop_assert!(written.iter().any(|w| w == &p.field || w.starts_with(&format!("{}.", p.field)) || p.field.starts_with(&format!("{w}."))), "{p} not in {written:?}");
                }
            }
            Err(e) => prop_assert!(false, "generated YAML is valid syntax: {e}"),
        }
    }

    #[test]
    fn config_values_round_trip(
        heartbeat_s in 36u64..600, poll_s in 1u64..60, extra_age_s in 1u64..3600, share in 0.01f64..1.0,
        include in prop::collection::vec("[A-Za-z][A-Za-z0-9 *?]{0,10}", 0..4), channels in 1usize..=20, topics in 1usize..=1000,
        media in prop::collection::vec(prop::sample::select(vec!["voice", "chat", "email"]), 1..3),
    ) {
        let max_age_s = heartbeat_s.max(poll_s) + extra_age_s;
        let doc = json!({
            "queues": {"include": include, "media_types": media},
            "freshness": {"heartbeat_timeout": format!("{heartbeat_s}s"), "poll_interval": format!("{}ms", poll_s * 1000), "max_age": format!("{max_age_s}s")},
            "notifications": {"max_channels": channels, "topics_per_channel": topics},
            "api": {"budget_share": share},
        });
        let cfg = Config::from_yaml(&yaml(&doc)).unwrap();
        prop_assert_eq!(&cfg.queues.include, &include);
        prop_assert_eq!(cfg.queues.media_types.iter().map(String::as_str).collect::<Vec<_>>(), media);
        prop_assert_eq!(cfg.freshness.heartbeat_timeout.as_secs(), heartbeat_s);
        prop_assert_eq!(cfg.freshness.poll_interval.as_secs(), poll_s);
        prop_assert_eq!(cfg.freshness.max_age.as_secs(), max_age_s);
        prop_assert_eq!((cfg.notifications.max_channels, cfg.notifications.topics_per_channel), (channels, topics));
        prop_assert_eq!(cfg.api.budget_share, share);
        prop_assert!(cfg.validate().iter().all(|p| !p.is_error()), "{:?}", cfg.validate());
    }

    /// Block-style YAML the way people write it, with empty values (`max_age:`), comments and unknown sections.
    #[test]
    fn empty_values_keep_defaults_and_unknown_sections_are_named(key in prop::sample::select(KEYS.to_vec()), section in "[a-z]{3,8}") {
        let (s, k) = key.split_once('.').unwrap();
        let cfg = Config::from_yaml(&format!("# generated\n{s}:\n  {k}:   # empty: the default\n")).unwrap();
        prop_assert_eq!(cfg, Config::default());
        if !KEYS.iter().any(|k| k.starts_with(&format!("{section}."))) {
            let e = Config::from_yaml(&format!("{section}:\n  x: 1\n")).unwrap_err();
            prop_assert!(e.problems().iter().any(|p| p.field.starts_with(&section)), "{e}");
        }
    }

    #[test]
    fn environment_values_never_panic_and_trim(vals in prop::collection::vec(prop::option::of(".{0,30}"), 7)) {
        let names = ["GENESYS_REGION", "GENESYS_API_BASE_URL", "GENESYS_LOGIN_BASE_URL", "GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS"];
        let env = |k: &str| names.iter().position(|n| *n == k).and_then(|i| vals[i].clone());
        match Config::load(None, &env) {
            Ok(cfg) => {
                let secret = vals[4].as_deref().map(str::trim).filter(|s| !s.is_empty());
                prop_assert_eq!(cfg.client_secret().map(|s| s.expose()), secret);
                let _ = (cfg.validate(), cfg.api_base_url(), cfg.login_base_url());
            }
            Err(e) => prop_assert!(e.problems().iter().all(|p| p.field == "OTEL_EXPORTER_OTLP_HEADERS"), "{e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Web config file

/// Web config parsing with paths resolved under a directory that does not exist.
fn web(text: &str) -> Result<webconfig::WebConfig, WebConfigError> {
    webconfig::parse(text, Path::new("/nonexistent-prop-dir/web.yml"))
}

fn bcrypt_like() -> impl Strategy<Value = String> {
    prop_oneof!["\\$2[aby]\\$1[0-2]\\$[./A-Za-z0-9]{53}", ".{0,20}",]
}

fn rough_web_config() -> BoxedStrategy<Value> {
    let tls = rough_object(vec![
        ("cert_file", "[a-z]{1,6}\\.crt".prop_map(Value::String).boxed()),
        ("key_file", "[a-z]{1,6}\\.key".prop_map(Value::String).boxed()),
        (
            "client_auth_type",
            prop::sample::select(vec!["NoClientCert", "RequireAndVerifyClientCert", "VerifyClientCertIfGiven", "x"])
                .prop_map(Value::from)
                .boxed(),
        ),
        ("min_version", prop::sample::select(vec!["TLS10", "TLS12", "TLS13", "x"]).prop_map(Value::from).boxed()),
    ]);
    let http = rough_object(vec![(
        "headers",
        prop::collection::btree_map("[A-Za-z -]{0,12}", "[ -~\\t]{0,12}", 0..3).prop_map(|m| json!(m)).boxed(),
    )]);
    rough_object(vec![
        ("tls_server_config", tls),
        (
            "basic_auth_users",
            prop::collection::btree_map("[a-z:]{0,6}", bcrypt_like(), 0..3).prop_map(|m| json!(m)).boxed(),
        ),
        ("http_server_config", http),
    ])
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn web_config_never_panics_on_arbitrary_text(s in "[^/\\\\]{0,200}") {
        let _ = web(&s);
    }

    #[test]
    fn rough_web_configs_load_or_name_the_field(v in rough_web_config()) {
        match web(&yaml(&v)) {
            Ok(c) => prop_assert!(c.tls.is_none(), "no certificate exists under the directory"),
            Err(WebConfigError::Field { field, .. }) => {
                let section = field.split('.').next().unwrap();
                prop_assert!(v.get(section).is_some(), "{field} names a section that was written");
            }
            Err(WebConfigError::Parse { .. }) => {}
            Err(e @ WebConfigError::Read { .. }) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn web_configs_round_trip_and_ignore_unknown_keys(
        users in prop::collection::btree_map("[a-z]{1,8}", "\\$2[aby]\\$10\\$[./A-Za-z0-9]{53}", 1..4),
        headers in prop::collection::btree_map("X-[A-Za-z]{1,10}", "[!-~]{1,20}", 0..4),
        extra in any_json(),
    ) {
        let doc = json!({"basic_auth_users": users, "http_server_config": {"headers": headers}});
        let mut with = doc.clone();
        with["future_key"] = extra.clone();
        with["http_server_config"]["http2"] = extra;
        for text in [yaml(&doc), yaml(&with)] {
            let c = web(&text).unwrap();
            prop_assert!(c.auth.is_some() && c.tls.is_none());
            let got: Vec<(String, String)> = c.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
            let want: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
            prop_assert_eq!(got.len(), want.len());
            for w in &want { prop_assert!(got.contains(w), "{w:?} in {got:?}"); }
        }
    }
}
