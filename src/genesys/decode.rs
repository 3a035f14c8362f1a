//! Wire → domain: WebSocket frames, observation query responses and aggregate query responses become
//! [`QueueUpdate`]s. Both shapes of the observations data (topic and query) land in the same types here, so the store
//! never sees a wire format.
//!
//! Decoding never fails a whole batch for one bad part: an unknown metric is skipped and reported, a wrong type in
//! one metric drops that metric only.

use super::models::*;
use crate::model::{Aggregate, AggregateStats, GroupUpdate, ObsMetric, Observation, QueueUpdate, Source};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Frames larger than this are not parsed (Genesys caps payloads at 512,000 bytes; anything bigger is not
/// from a healthy service).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// `oLongestWaiting.calculatedMetricValue` above this is an epoch timestamp in ms (2001-09-09), below it a duration.
/// A live org was reported to send the epoch form; the SDK documents neither, so accept both.
const EPOCH_MS_THRESHOLD: f64 = 1e12;

/// What one WebSocket text frame was.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Heartbeat,
    Pong,
    /// An observations topic message.
    Queue(Decoded),
    /// `v2.system.socket_closing`: reconnect now, the server closes in about a minute.
    SocketClosing,
    /// Another `v2.system.*` message.
    System {
        topic: String,
        kind: SystemKind,
        message: SystemMessage,
    },
    /// A reply to a socket-level request (`{"result":"200",...}`).
    Reply,
    /// Another `channel.metadata` message.
    Metadata(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemKind {
    NoLongerSubscribed,
    TokenRevoked,
    SubscriptionChanged,
    Other,
}

/// A decoded queue update plus what was skipped in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub update: QueueUpdate,
    /// Metric names this exporter does not know (counted, not fatal).
    pub unknown_metrics: Vec<String>,
    /// Metrics whose stats had the wrong type or were missing (counted, not fatal).
    pub bad_metrics: Vec<String>,
}

/// Why a frame could not be used; `kind()` is the `genesys_payload_errors_total{kind}` label.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    Oversized(usize),
    #[error("not valid JSON of the documented shape: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("topic {0} is not one this exporter subscribes to")]
    UnknownTopic(String),
    #[error("topic {topic}: body has the wrong shape: {source}")]
    WrongType {
        topic: String,
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Oversized(_) => "oversized",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::UnknownTopic(_) => "unknown_topic",
            DecodeError::WrongType { .. } => "wrong_type",
        }
    }
}

/// Decode one WebSocket text frame.
pub fn decode_frame(text: &str) -> Result<Frame, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::Oversized(text.len()));
    }
    let env: NotificationEnvelope<'_> = serde_json::from_str(text)?;
    let Some(topic) = env.topic_name.as_deref() else {
        return if env.result.is_some() { Ok(Frame::Reply) } else { Err(DecodeError::UnknownTopic(String::new())) };
    };
    let body = env.event_body.map(|b| b.get()).unwrap_or("null");
    if topic == CHANNEL_METADATA_TOPIC {
        let m: ChannelMetadata =
            serde_json::from_str(body).map_err(|source| DecodeError::WrongType { topic: topic.to_owned(), source })?;
        return Ok(match m.message.as_str() {
            HEARTBEAT_MESSAGE => Frame::Heartbeat,
            PONG_MESSAGE => Frame::Pong,
            _ => Frame::Metadata(m.message),
        });
    }
    if let Some(queue_id) = queue_id_of_topic(topic) {
        let n: StatsNotificationRef<'_> =
            serde_json::from_str(body).map_err(|source| DecodeError::WrongType { topic: topic.to_owned(), source })?;
        return Ok(Frame::Queue(decode_stats_notification(queue_id, n)));
    }
    if topic == SOCKET_CLOSING_TOPIC {
        return Ok(Frame::SocketClosing);
    }
    if topic.starts_with("v2.system.") || topic == "v2.subscription.updated" {
        let message: SystemMessage = serde_json::from_str(body).unwrap_or_default();
        let kind = match message.system_topic_type.as_deref() {
            Some("no_longer_subscribed") => SystemKind::NoLongerSubscribed,
            Some("token_revoked") => SystemKind::TokenRevoked,
            Some("subscription_changed") => SystemKind::SubscriptionChanged,
            _ if topic.starts_with("v2.system.token_revoked") => SystemKind::TokenRevoked,
            _ if topic.starts_with("v2.system.no_longer_subscribed") => SystemKind::NoLongerSubscribed,
            _ => SystemKind::Other,
        };
        return Ok(Frame::System { topic: topic.to_owned(), kind, message });
    }
    Err(DecodeError::UnknownTopic(topic.to_owned()))
}

/// The topic body: each `data[]` entry is either observations (zero-length interval at event time) or the
/// current interval's aggregates (a real interval).
pub fn decode_stats_notification(queue_id: &str, n: StatsNotificationRef<'_>) -> Decoded {
    let media_type: Option<String> = n.group.media_type.map(Cow::into_owned);
    let mut unknown_metrics = Vec::new();
    let mut bad_metrics = Vec::new();
    let mut groups = Vec::new();
    let mut event_ms = None;
    for entry in n.data {
        let interval = parse_interval_ms(&entry.interval).or_else(|| parse_time_ms(&entry.interval).map(|t| (t, t)));
        let is_observation = match interval {
            Some((a, b)) => a == b,
            // No usable interval: decide by the metric names.
            None => entry.metrics.iter().all(|m| ObsMetric::from_wire(&m.metric).is_some()),
        };
        if is_observation {
            let at = interval.map(|(a, _)| a);
            event_ms = event_ms.max(at);
            let mut obs = Vec::with_capacity(entry.metrics.len());
            for m in entry.metrics {
                match ObsMetric::from_wire(&m.metric) {
                    Some(metric) => match observation_value(metric, &m.stats, at, None) {
                        Some(value) => {
                            obs.push(Observation { metric, qualifier: m.qualifier.map(Cow::into_owned), value })
                        }
                        None => bad_metrics.push(m.metric.into_owned()),
                    },
                    None => unknown_metrics.push(m.metric.into_owned()),
                }
            }
            groups.push(GroupUpdate {
                media_type: media_type.clone(),
                observations: obs,
                interval: None,
                aggregates: vec![],
            });
        } else {
            let aggregates = entry
                .metrics
                .into_iter()
                .map(|m| MetricStats {
                    metric: m.metric.into_owned(),
                    qualifier: m.qualifier.map(Cow::into_owned),
                    stats: m.stats,
                })
                .map(aggregate)
                .collect();
            groups.push(GroupUpdate { media_type: media_type.clone(), observations: vec![], interval, aggregates });
        }
    }
    Decoded {
        update: QueueUpdate {
            queue_id: queue_id.to_owned(),
            source: Source::Stream,
            event_ms,
            complete: false,
            groups,
        },
        unknown_metrics,
        bad_metrics,
    }
}

/// The value of an observation: a count, or for the longest-* metrics the start instant (epoch ms).
/// `None` when the stats do not carry what the metric needs.
fn observation_value(
    metric: ObsMetric,
    stats: &StatisticalSummary,
    event_ms: Option<i64>,
    oldest_detail_ms: Option<i64>,
) -> Option<Option<f64>> {
    if !metric.is_instant() {
        return stats.count.or(stats.calculated_metric_value).map(Some);
    }
    if let Some(start) = oldest_detail_ms {
        return Some(Some(start as f64));
    }
    let v = stats.calculated_metric_value.or(stats.max);
    match v {
        Some(v) if v >= EPOCH_MS_THRESHOLD => Some(Some(v)),
        Some(v) if v > 0.0 => {
            let at = event_ms.unwrap_or_else(crate::model::now_ms) as f64;
            Some(Some(at - v))
        }
        // Zero duration, count 0, or nothing at all: nobody is waiting.
        _ => Some(None),
    }
}

fn aggregate(m: MetricStats) -> Aggregate {
    let s = m.stats;
    Aggregate {
        metric: m.metric,
        qualifier: m.qualifier,
        stats: AggregateStats {
            count: s.count,
            sum: s.sum,
            min: s.min,
            max: s.max,
            ratio: s.ratio,
            numerator: s.numerator,
            denominator: s.denominator,
            target: s.target,
        },
    }
}

/// A query response as complete per-queue reads. Groups are collected per queue; user metrics (no `mediaType`)
/// and per-media conversation metrics end up in separate `GroupUpdate`s as on the topic.
pub fn decode_observation_query(resp: QueueObservationQueryResponse, now_ms: i64) -> Vec<Decoded> {
    let mut by_queue: BTreeMap<String, Decoded> = BTreeMap::new();
    for container in resp.results {
        let Some(queue_id) = container.group.get("queueId").cloned() else { continue };
        let media_type = container.group.get("mediaType").cloned();
        let d = by_queue.entry(queue_id.clone()).or_insert_with(|| Decoded {
            update: QueueUpdate {
                queue_id,
                source: Source::Poll,
                event_ms: Some(now_ms),
                complete: true,
                groups: vec![],
            },
            unknown_metrics: vec![],
            bad_metrics: vec![],
        });
        let mut obs = Vec::with_capacity(container.data.len());
        for m in container.data {
            let Some(metric) = ObsMetric::from_wire(&m.metric) else {
                d.unknown_metrics.push(m.metric);
                continue;
            };
            // Detail observations are ascending by date: the first is the oldest, also when truncated (the first
            // half of a truncated list holds the oldest).
            let oldest = m
                .observations
                .as_ref()
                .and_then(|o| o.first())
                .and_then(|o| o.observation_date.as_deref())
                .and_then(parse_time_ms);
            if metric.is_instant() {
                match observation_value(metric, &m.stats, Some(now_ms), oldest) {
                    Some(value) => obs.push(Observation { metric, qualifier: m.qualifier, value }),
                    None => d.bad_metrics.push(m.metric),
                }
                continue;
            }
            match observation_value(metric, &m.stats, Some(now_ms), None) {
                Some(value) => obs.push(Observation { metric, qualifier: m.qualifier.clone(), value }),
                None => {
                    d.bad_metrics.push(m.metric);
                    continue;
                }
            }
            // Longest waiting/interacting from the oldest detail observation, when the query asked for details
            // but not for the oLongest* metric itself.
            if let Some(start) = oldest {
                let derived = match metric {
                    ObsMetric::Waiting => Some(ObsMetric::LongestWaiting),
                    ObsMetric::Interacting => Some(ObsMetric::LongestInteracting),
                    _ => None,
                };
                if let Some(lm) = derived {
                    if !obs.iter().any(|o: &Observation| o.metric == lm) {
                        obs.push(Observation { metric: lm, qualifier: None, value: Some(start as f64) });
                    }
                }
            }
        }
        d.update.groups.push(GroupUpdate { media_type, observations: obs, interval: None, aggregates: vec![] });
    }
    by_queue.into_values().collect()
}

/// An aggregates query response as per-queue interval updates (one group per media type and interval).
pub fn decode_aggregates(resp: ConversationAggregateQueryResponse) -> Vec<QueueUpdate> {
    let mut by_queue: BTreeMap<String, QueueUpdate> = BTreeMap::new();
    for container in resp.results {
        let Some(queue_id) = container.group.get("queueId").cloned() else { continue };
        let media_type = container.group.get("mediaType").cloned();
        let u = by_queue.entry(queue_id.clone()).or_insert_with(|| QueueUpdate {
            queue_id,
            source: Source::Poll,
            event_ms: None,
            complete: false,
            groups: vec![],
        });
        for entry in container.data {
            let Some(interval) = parse_interval_ms(&entry.interval) else { continue };
            u.groups.push(GroupUpdate {
                media_type: media_type.clone(),
                observations: vec![],
                interval: Some(interval),
                aggregates: entry.metrics.into_iter().map(aggregate).collect(),
            });
        }
    }
    by_queue.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBS_MSG: &str = r#"{"topicName":"v2.analytics.queues.q1.observations","version":"2","eventBody":{"group":{"queueId":"q1","mediaType":"voice"},"data":[{"interval":"2024-12-30T09:46:54.839Z/2024-12-30T09:46:54.839Z","metrics":[{"metric":"oAlerting","stats":{"count":0}},{"metric":"oWaiting","stats":{"count":2}},{"metric":"oFuture","stats":{"count":1}}]}]},"metadata":{"CorrelationId":"c"}}"#;

    #[test]
    fn observation_message() {
        let Frame::Queue(d) = decode_frame(OBS_MSG).unwrap() else { panic!("not a queue frame") };
        assert_eq!(d.update.queue_id, "q1");
        assert!(!d.update.complete);
        assert_eq!(d.unknown_metrics, vec!["oFuture"]);
        let g = &d.update.groups[0];
        assert_eq!(g.media_type.as_deref(), Some("voice"));
        assert_eq!(g.observations.len(), 2);
        assert_eq!(g.observations[1], Observation { metric: ObsMetric::Waiting, qualifier: None, value: Some(2.0) });
        assert_eq!(d.update.event_ms, parse_time_ms("2024-12-30T09:46:54.839Z"));
    }

    #[test]
    fn aggregate_message() {
        let text = r#"{"topicName":"v2.analytics.queues.q1.observations","eventBody":{"group":{"queueId":"q1","mediaType":"voice"},"data":[{"interval":"2024-12-30T09:30:00.000Z/2024-12-30T10:00:00.000Z","metrics":[{"metric":"tAbandon","stats":{"count":2,"sum":86168,"min":11781,"max":74387}},{"metric":"oServiceLevel","stats":{"ratio":0,"numerator":0,"denominator":2,"target":0.5}}]}]}}"#;
        let Frame::Queue(d) = decode_frame(text).unwrap() else { panic!() };
        let g = &d.update.groups[0];
        assert_eq!(g.interval.map(|(a, b)| b - a), Some(1_800_000));
        assert_eq!(g.aggregates[0].stats.sum, Some(86168.0));
        assert_eq!(g.aggregates[1].stats.target, Some(0.5));
    }

    #[test]
    fn longest_waiting_both_forms_agree() {
        let at = parse_time_ms("2025-01-01T00:00:10.000Z").unwrap();
        let mk = |v: f64| {
            format!(
                r#"{{"topicName":"v2.analytics.queues.q.observations","eventBody":{{"group":{{"queueId":"q","mediaType":"voice"}},"data":[{{"interval":"2025-01-01T00:00:10.000Z/2025-01-01T00:00:10.000Z","metrics":[{{"metric":"oLongestWaiting","stats":{{"count":1,"calculatedMetricValue":{v}}}}}]}}]}}}}"#
            )
        };
        let get = |s: String| match decode_frame(&s).unwrap() {
            Frame::Queue(d) => d.update.groups[0].observations[0].value,
            f => panic!("{f:?}"),
        };
        let duration = get(mk(4000.0));
        let epoch = get(mk((at - 4000) as f64));
        assert_eq!(duration, Some((at - 4000) as f64));
        assert_eq!(duration, epoch);
    }

    #[test]
    fn control_frames() {
        assert_eq!(
            decode_frame(r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#).unwrap(),
            Frame::Heartbeat
        );
        assert_eq!(
            decode_frame(r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#).unwrap(),
            Frame::Pong
        );
        assert_eq!(
            decode_frame(r#"{"topicName":"v2.system.socket_closing","eventBody":{}}"#).unwrap(),
            Frame::SocketClosing
        );
        assert_eq!(decode_frame(r#"{"result":"200","status":"subscribed"}"#).unwrap(), Frame::Reply);
        let f = decode_frame(
            r#"{"topicName":"v2.system.token_revoked.x","eventBody":{"systemTopicType":"token_revoked"}}"#,
        );
        assert!(matches!(f, Ok(Frame::System { kind: SystemKind::TokenRevoked, .. })));
    }

    #[test]
    fn bad_frames_have_kinds() {
        assert_eq!(decode_frame("{not json").unwrap_err().kind(), "malformed");
        assert_eq!(
            decode_frame(r#"{"topicName":"v2.users.x.presence","eventBody":{}}"#).unwrap_err().kind(),
            "unknown_topic"
        );
        assert_eq!(
            decode_frame(r#"{"topicName":"v2.analytics.queues.q.observations","eventBody":{"data":"nope"}}"#)
                .unwrap_err()
                .kind(),
            "wrong_type"
        );
        assert_eq!(decode_frame(&"x".repeat(MAX_FRAME_BYTES + 1)).unwrap_err().kind(), "oversized");
    }

    #[test]
    fn query_response_detail_gives_longest() {
        let resp: QueueObservationQueryResponse = serde_json::from_str(
            r#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oUserRoutingStatuses","qualifier":"IDLE","stats":{"count":1}}]},
            {"group":{"queueId":"q","mediaType":"voice"},"data":[{"metric":"oWaiting","stats":{"count":2},"truncated":false,
            "observations":[{"observationDate":"2025-01-01T00:00:00.000Z"},{"observationDate":"2025-01-01T00:00:05.000Z"}]}]}]}"#,
        )
        .unwrap();
        let d = decode_observation_query(resp, 0);
        assert_eq!(d.len(), 1);
        let u = &d[0].update;
        assert!(u.complete);
        assert_eq!(u.groups.len(), 2);
        let voice = &u.groups[1].observations;
        assert_eq!(voice[1].metric, ObsMetric::LongestWaiting);
        assert_eq!(voice[1].value, parse_time_ms("2025-01-01T00:00:00.000Z").map(|v| v as f64));
    }
}
