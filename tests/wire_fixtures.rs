//! The payloads quoted in shared/genesys-api.md (tests/fixtures/*.json) parse with `genesys::models` and decode
//! with `genesys::decode` — the shapes the simulator writes and the exporter reads.

use genesys_cloud_exporter::genesys::decode::{self, Frame, SystemKind};
use genesys_cloud_exporter::genesys::models::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn topic_observation_message() {
    let text = fixture("topic_observation_message.json");
    let ev: NotificationEvent<StatsNotification> = serde_json::from_str(&text).unwrap();
    assert_eq!(ev.version.as_deref(), Some("2"));
    assert!(ev.metadata.unwrap().correlation_id.is_some());
    assert_eq!(ev.event_body.group["mediaType"], "voice");
    let d = &ev.event_body.data[0];
    let (a, b) = parse_interval_ms(&d.interval).unwrap();
    assert_eq!(a, b, "observations carry a zero-length interval at event time");
    assert_eq!(d.metrics.iter().map(|m| m.metric.as_str()).collect::<Vec<_>>(), ["oAlerting", "oWaiting"]);
    assert_eq!(d.metrics[1].stats.count, Some(0.0));
    match decode::decode_frame(&text).unwrap() {
        Frame::Queue(dec) => {
            assert_eq!(dec.update.queue_id, "1d1af111-5a11-4b2c-9d3e-0123456789ab");
            assert!(dec.unknown_metrics.is_empty() && dec.bad_metrics.is_empty(), "{dec:?}");
            assert!(!dec.update.groups.is_empty());
        }
        f => panic!("{f:?}"),
    }
}

#[test]
fn topic_aggregate_message() {
    let text = fixture("topic_aggregate_message.json");
    let ev: NotificationEvent<StatsNotification> = serde_json::from_str(&text).unwrap();
    let d = &ev.event_body.data[0];
    let (a, b) = parse_interval_ms(&d.interval).unwrap();
    assert_eq!(b - a, 30 * 60 * 1000, "the current 30-minute bucket");
    let sl = d.metrics.iter().find(|m| m.metric == "oServiceLevel").unwrap();
    assert_eq!((sl.stats.numerator, sl.stats.denominator, sl.stats.target), (Some(0.0), Some(2.0), Some(0.5)));
    let ab = d.metrics.iter().find(|m| m.metric == "tAbandon").unwrap();
    assert_eq!(
        (ab.stats.count, ab.stats.sum, ab.stats.min, ab.stats.max),
        (Some(2.0), Some(86168.0), Some(11781.0), Some(74387.0))
    );
    assert!(matches!(decode::decode_frame(&text).unwrap(), Frame::Queue(_)));
}

#[test]
fn observations_query_tutorial_response() {
    let r: QueueObservationQueryResponse = serde_json::from_str(&fixture("observations_query_tutorial.json")).unwrap();
    assert_eq!(r.results.len(), 3);
    assert!(!r.results[0].group.contains_key("mediaType"), "user metrics come without mediaType");
    let d = &r.results[1].data[0];
    assert_eq!(d.truncated, Some(false));
    let o = &d.observations.as_ref().unwrap()[0];
    assert_eq!(o.observation_date.as_deref(), Some("2020-08-03T04:28:15.134Z"));
    assert_eq!(o.direction.as_deref(), Some("inbound"));
    assert_eq!(o.routing_priority, Some(0));
    let decoded = decode::decode_observation_query(r, parse_time_ms("2020-08-03T04:30:00Z").unwrap());
    assert_eq!(decoded.len(), 1, "one queue");
    assert!(decoded[0].update.complete, "a query is a complete read");
}

#[test]
fn observations_query_splunk_mock() {
    let r: QueueObservationQueryResponse =
        serde_json::from_str(&fixture("observations_query_splunk_mock.json")).unwrap();
    let m = r.system_to_organization_mappings.as_ref().unwrap();
    assert_eq!(m["ON_QUEUE"], ["e08eaf1b-ee47-4fa9-a231-1200e284798f"]);
    let d = &r.results[0].data;
    assert_eq!(d[0].metric, "oMemberUsers");
    assert_eq!(d[0].stats.count, Some(23.0));
    assert_eq!(d[2].qualifier.as_deref(), Some("e08eaf1b-ee47-4fa9-a231-1200e284798f"));
    let decoded = decode::decode_observation_query(r, 0);
    assert_eq!(decoded.len(), 1);
    assert!(decoded[0].unknown_metrics.is_empty());
}

#[test]
fn aggregates_response() {
    let r: ConversationAggregateQueryResponse = serde_json::from_str(&fixture("aggregates_response.json")).unwrap();
    let d = &r.results[0].data[0];
    assert_eq!(d.metrics[1].metric, "tIvr");
    assert_eq!(d.metrics[1].stats.sum, Some(18784.0));
    // No queueId in this group (it is grouped by division): nothing for the exporter, and no panic.
    assert!(decode::decode_aggregates(r).is_empty());
}

#[test]
fn channel_and_subscriptions() {
    let c: Channel = serde_json::from_str(&fixture("channel.json")).unwrap();
    assert_eq!(c.id, "streaming-0-fmtdmf8cdis7jh14udg5p89t6z");
    assert!(c.connect_uri.ends_with(&c.id));
    assert!(parse_time_ms(c.expires.as_deref().unwrap()).is_some());
    let l: ChannelTopicEntityListing = serde_json::from_str(&fixture("channel_topics.json")).unwrap();
    assert!(!l.entities[0].is_rejected());
    assert!(l.entities[1].is_rejected());
    assert_eq!(l.entities[1].missing_permissions, ["analytics:queueObservation:view"]);
}

#[test]
fn error_429_body() {
    let e: ErrorBody = serde_json::from_str(&fixture("error_429.json")).unwrap();
    assert_eq!(e.status, 429);
    assert_eq!(e.code, "too.many.requests.retry.after");
    assert_eq!(e.context_id.as_deref(), Some("<correlationId>"));
    assert!(e.details.is_empty() && e.errors.is_empty());
    // Writing it back gives the same keys (the simulator's 429 body).
    let v = serde_json::to_value(&e).unwrap();
    let want: serde_json::Value = serde_json::from_str(&fixture("error_429.json")).unwrap();
    assert_eq!(v, want);
}

#[test]
fn heartbeat_pong_and_system_messages() {
    assert_eq!(decode::decode_frame(&fixture("heartbeat.json")).unwrap(), Frame::Heartbeat);
    assert_eq!(decode::decode_frame(&fixture("pong.json")).unwrap(), Frame::Pong);
    let hb: NotificationEvent<ChannelMetadata> = serde_json::from_str(&fixture("heartbeat.json")).unwrap();
    assert_eq!(hb.topic_name, CHANNEL_METADATA_TOPIC);
    assert_eq!(hb.event_body.message, HEARTBEAT_MESSAGE);
    assert_eq!(decode::decode_frame(&fixture("system_socket_closing.json")).unwrap(), Frame::SocketClosing);
    let text = fixture("system_token_revoked.json");
    match decode::decode_frame(&text).unwrap() {
        Frame::System { kind, message, .. } => {
            assert_eq!(kind, SystemKind::TokenRevoked);
            assert_eq!(message.reason.as_deref(), Some("user_tokens_revoked"));
            assert_eq!(message.channel_id.as_deref(), Some("streaming-0-fmtdmf8cdis7jh14udg5p89t6z"));
        }
        f => panic!("{f:?}"),
    }
    let ev: NotificationEvent<SystemMessage> = serde_json::from_str(&text).unwrap();
    assert_eq!(ev.event_body.system_topic_type.as_deref(), Some("token_revoked"));
}
