//! Serde types for every Genesys Cloud payload the exporter reads or the simulator writes.
//!
//! Names follow the Platform SDK models (camelCase on the wire) so that a reader can check a field against
//! `shared/genesys-api.md`. Readers are tolerant: unknown fields are ignored, everything the API may leave out is
//! an `Option` or defaults to empty. Writers (the simulator) skip `None` so the JSON looks like Genesys's.
//!
//! Two shapes are easy to confuse and are kept apart on purpose:
//! - the observations *topic* body ([`StatsNotification`]): `group` + `data[].interval/metrics[]`;
//! - the observations *query* response ([`QueueObservationQueryResponse`]): `results[].group` + `data[].metric/stats`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The topic every queue wallboard is built on.
pub const QUEUE_OBSERVATIONS_TOPIC_PREFIX: &str = "v2.analytics.queues.";
pub const QUEUE_OBSERVATIONS_TOPIC_SUFFIX: &str = ".observations";

/// `v2.analytics.queues.{id}.observations`
pub fn queue_observations_topic(queue_id: &str) -> String {
    format!("{QUEUE_OBSERVATIONS_TOPIC_PREFIX}{queue_id}{QUEUE_OBSERVATIONS_TOPIC_SUFFIX}")
}

/// The queue id of a `v2.analytics.queues.{id}.observations` topic name, if it is one.
pub fn queue_id_of_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(QUEUE_OBSERVATIONS_TOPIC_PREFIX)?
        .strip_suffix(QUEUE_OBSERVATIONS_TOPIC_SUFFIX)
        .filter(|id| !id.is_empty() && !id.contains('.'))
}

/// Topic of heartbeats and pongs.
pub const CHANNEL_METADATA_TOPIC: &str = "channel.metadata";
pub const HEARTBEAT_MESSAGE: &str = "WebSocket Heartbeat";
pub const PONG_MESSAGE: &str = "pong";
pub const SOCKET_CLOSING_TOPIC: &str = "v2.system.socket_closing";

/// Observation metrics of `POST /api/v2/analytics/queues/observations/query` (SDK enum, plus the 2025 longest-* pair).
pub const OBSERVATION_METRICS: [&str; 11] = [
    "oActiveUsers",
    "oAlerting",
    "oInteracting",
    "oMemberUsers",
    "oOffQueueUsers",
    "oOnQueueUsers",
    "oUserPresences",
    "oUserRoutingStatuses",
    "oWaiting",
    "oLongestInteracting",
    "oLongestWaiting",
];

/// Conversation aggregate metrics the exporter reads for the current interval.
pub const INTERVAL_METRICS: [&str; 9] =
    ["nOffered", "tAnswered", "tAbandon", "tWait", "tHandle", "tTalk", "tAcw", "nOverSla", "oServiceLevel"];

// ---------------------------------------------------------------------------------------------------------------
// OAuth and errors

/// `POST https://login.<domain>/oauth/token` response (client-credentials grant). Snake case on the wire.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default = "bearer")]
    pub token_type: String,
    /// Seconds until the token expires; read it, never assume 24 h.
    pub expires_in: u64,
}

fn bearer() -> String {
    "bearer".to_owned()
}

impl std::fmt::Debug for TokenResponse {
    // The token is a credential: never print it, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"***")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// OAuth error body (`{"error":"invalid_client","description":...}`) as the login service answers a bad secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OAuthError {
    #[serde(default)]
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// Genesys `ErrorBody`: the shape of every platform API error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_with_params: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------------------------
// Queues, divisions, presence definitions

/// `GET /api/v2/routing/queues` page (`QueueEntityListing`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntityListing {
    #[serde(default)]
    pub entities: Vec<Queue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_count: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<DivisionRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_member_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_member_count: Option<u32>,
    /// Keys `call, callback, chat, email, message` (note: `call`, where analytics says `voice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_settings: Option<BTreeMap<String, MediaSetting>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DivisionRef {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MediaSetting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level: Option<ServiceLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting_timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_answer: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevel {
    /// Fraction 0..1.
    #[serde(default)]
    pub percentage: f64,
    #[serde(default)]
    pub duration_ms: i64,
}

/// `GET /api/v2/presence/definitions` (not paged) or the deprecated, paged `GET /api/v2/presencedefinitions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDefinitionListing {
    #[serde(default)]
    pub entities: Vec<PresenceDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDefinition {
    pub id: String,
    /// `System` or `User`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub language_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_presence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Not in captured payloads; accepted if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl PresenceDefinition {
    /// Display name: `languageLabels.en_US`, else any label, else `name`, else the system presence.
    pub fn display_name(&self) -> String {
        self.language_labels
            .get("en_US")
            .or_else(|| self.language_labels.values().next())
            .or(self.name.as_ref())
            .or(self.system_presence.as_ref())
            .cloned()
            .unwrap_or_else(|| self.id.clone())
    }

    /// The system presence in lower snake case (`On Queue`, `ON_QUEUE`, `OnQueue` → `on_queue`).
    pub fn system_presence_normalized(&self) -> String {
        self.system_presence.as_deref().map(normalize_system_presence).unwrap_or_else(|| "unknown".to_owned())
    }
}

/// Normalise every spelling of a system presence to lower snake case: `On Queue`, `ON_QUEUE`, `OnQueue`, `on-queue`
/// → `on_queue`.
pub fn normalize_system_presence(s: &str) -> String {
    crate::model::snake_case(s)
}

// ---------------------------------------------------------------------------------------------------------------
// Notification channels

/// `POST /api/v2/notifications/channels` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    #[serde(default)]
    pub connect_uri: String,
    /// ISO-8601; 24 h after the last (re)subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// `GET /api/v2/notifications/channels`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelEntityListing {
    #[serde(default)]
    pub entities: Vec<Channel>,
}

/// One subscription; `state` is `Permitted` or `Rejected` in responses and absent in requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTopic {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl ChannelTopic {
    pub fn request(id: String) -> Self {
        ChannelTopic { id, ..Default::default() }
    }
    pub fn is_rejected(&self) -> bool {
        self.state.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("rejected"))
    }
}

/// `GET/PUT/POST /api/v2/notifications/channels/{id}/subscriptions` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTopicEntityListing {
    #[serde(default)]
    pub entities: Vec<ChannelTopic>,
}

// ---------------------------------------------------------------------------------------------------------------
// WebSocket messages

/// Every WebSocket text frame. `eventBody` stays raw until the topic says what it is, so a frame is parsed once and
/// a body the exporter does not care about costs nothing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationEnvelope<'a> {
    /// Absent in replies to socket-level requests (`{"result":"200",...}`).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub topic_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub event_body: Option<&'a RawValue>,
    /// Present in socket-level replies; its content is not read.
    #[serde(default)]
    pub result: Option<serde::de::IgnoredAny>,
}

/// An optional string that borrows from the input unless it has escapes (serde's `borrow` alone does not reach
/// through `Option`: `Option<Cow<str>>` would always allocate).
fn borrowed_opt<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

/// The owned form of an envelope, for writers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationEvent<T> {
    pub topic_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub event_body: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    /// Capital C on the wire (Java SDK `Metadata`).
    #[serde(rename = "CorrelationId", default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// `channel.metadata` body: heartbeat (`WebSocket Heartbeat`) or `pong`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChannelMetadata {
    #[serde(default)]
    pub message: String,
}

/// The client's health check, `{"message":"ping"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PingRequest {
    pub message: String,
}

/// Body of `v2.system.*` topics (`SystemMessageSystemMessage`); the exact `socket_closing` body is unconfirmed, so
/// every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SystemMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// `no_longer_subscribed`, `subscription_changed`, `token_revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_topic_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client_id: Option<String>,
    /// `another_channel_subscribed`, `user_tokens_revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics shared by the topic, the observations query and the aggregates query

/// `StatisticalSummary`. On the topic `stats` is a free-form map; the same optional fields cover it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatisticalSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_negative: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_positive: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculated_metric_value: Option<f64>,
}

/// One metric of one interval (`AggregateMetricData`, topic `…MetricStats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricStats {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    #[serde(default)]
    pub stats: StatisticalSummary,
}

/// `{interval: "start/end", metrics: [...]}`: the topic's `data[]` and the aggregates query's `StatisticalResponse`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IntervalMetrics {
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub metrics: Vec<MetricStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<Vec<serde_json::Value>>,
}

/// Body of `v2.analytics.queues.{id}.observations` (`StatEventQueueTopicStatsNotification`).
///
/// One topic carries two kinds of message: observations with a zero-length interval at event time, and the current
/// 30-minute interval's conversation aggregates (durations in ms).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatsNotification {
    /// `queueId` and, for media-split groups, `mediaType`.
    #[serde(default)]
    pub group: BTreeMap<String, String>,
    #[serde(default)]
    pub data: Vec<IntervalMetrics>,
}

/// The read side of [`StatsNotification`], for the ingest hot path: strings point into the frame (only escaped
/// ones are copied), and `group` keeps just the two keys the exporter reads.
#[derive(Debug, Default, Deserialize)]
pub struct StatsNotificationRef<'a> {
    #[serde(default, borrow)]
    pub group: GroupRef<'a>,
    #[serde(default, borrow)]
    pub data: Vec<IntervalMetricsRef<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub queue_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub media_type: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct IntervalMetricsRef<'a> {
    #[serde(default, borrow)]
    pub interval: Cow<'a, str>,
    #[serde(default, borrow)]
    pub metrics: Vec<MetricStatsRef<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MetricStatsRef<'a> {
    #[serde(borrow)]
    pub metric: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub qualifier: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stats: StatisticalSummary,
}

// ---------------------------------------------------------------------------------------------------------------
// POST /api/v2/analytics/queues/observations/query

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueObservationQuery {
    pub filter: QueryFilter,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_metrics: Option<Vec<String>>,
}

/// `{type: and|or, clauses?, predicates?}`; `type` is seen as `AND`/`and`, so compare case-insensitively.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryFilter {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clauses: Option<Vec<QueryClause>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicates: Option<Vec<QueryPredicate>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryClause {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub predicates: Vec<QueryPredicate>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryPredicate {
    /// `dimension` (default), `property`, `metric`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<String>,
    /// `matches` (default), `exists`, `notExists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<serde_json::Value>,
}

impl QueryPredicate {
    pub fn dimension(dimension: &str, value: &str) -> Self {
        QueryPredicate {
            kind: Some("dimension".to_owned()),
            dimension: Some(dimension.to_owned()),
            operator: Some("matches".to_owned()),
            value: Some(value.to_owned()),
            range: None,
        }
    }
}

impl QueryFilter {
    /// `queueId = a OR queueId = b …`: the batched form every client uses.
    pub fn queue_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        QueryFilter {
            kind: "or".to_owned(),
            clauses: None,
            predicates: Some(ids.into_iter().map(|id| QueryPredicate::dimension("queueId", id)).collect()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueObservationQueryResponse {
    /// System presence (`ON_QUEUE`, …) → org presence ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_to_organization_mappings: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub results: Vec<ObservationDataContainer>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservationDataContainer {
    #[serde(default)]
    pub group: BTreeMap<String, String>,
    #[serde(default)]
    pub data: Vec<ObservationMetricData>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservationMetricData {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    #[serde(default)]
    pub stats: StatisticalSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Ascending by `observationDate`; when truncated, the first half holds the oldest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations: Option<Vec<ObservationValue>>,
}

/// One conversation in a detail observation. The exporter reads `observationDate` only; ids never become labels.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservationValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_routing_skill_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_language_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ani: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_routing: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// POST /api/v2/analytics/conversations/aggregates/query

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAggregationQuery {
    /// ISO-8601 `start/end`.
    pub interval: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<QueryFilter>,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatten_multivalued_dimensions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_time_dimension: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAggregateQueryResponse {
    #[serde(default)]
    pub results: Vec<AggregateDataContainer>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AggregateDataContainer {
    #[serde(default)]
    pub group: BTreeMap<String, String>,
    #[serde(default)]
    pub data: Vec<IntervalMetrics>,
}

// ---------------------------------------------------------------------------------------------------------------
// Time

/// Genesys writes instants as `2024-12-30T09:46:54.839Z`.
pub fn format_time_ms(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parse an ISO-8601 instant to epoch milliseconds.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    parse_genesys_time_ms(s.as_bytes())
        .or_else(|| chrono::DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp_millis()))
}

/// The one spelling Genesys uses, `2024-12-30T09:46:54.839Z`, without chrono's general parser (every topic
/// message carries two). `None` for anything else, which then takes the general path.
fn parse_genesys_time_ms(b: &[u8]) -> Option<i64> {
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    // A leap second (`:60`) or an impossible date is left to the general parser.
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

/// Parse `start/end` to epoch milliseconds.
pub fn parse_interval_ms(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    Some((parse_time_ms(a)?, parse_time_ms(b)?))
}

/// `start/end` as Genesys writes it.
pub fn format_interval_ms(start: i64, end: i64) -> String {
    format!("{}/{}", format_time_ms(start), format_time_ms(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_round_trip() {
        let t = queue_observations_topic("abc-1");
        assert_eq!(t, "v2.analytics.queues.abc-1.observations");
        assert_eq!(queue_id_of_topic(&t), Some("abc-1"));
        assert_eq!(queue_id_of_topic("v2.analytics.queues.x.activity"), None);
        assert_eq!(queue_id_of_topic("v2.analytics.queues..observations"), None);
    }

    #[test]
    fn system_presence_spellings() {
        for s in ["On Queue", "ON_QUEUE", "OnQueue", "on-queue", "on_queue"] {
            assert_eq!(normalize_system_presence(s), "on_queue", "{s}");
        }
        assert_eq!(normalize_system_presence("Available"), "available");
        assert_eq!(normalize_system_presence("AWAY"), "away");
    }

    #[test]
    fn time_round_trip() {
        let ms = parse_time_ms("2024-12-30T09:46:54.839Z").unwrap();
        assert_eq!(format_time_ms(ms), "2024-12-30T09:46:54.839Z");
        let (a, b) = parse_interval_ms("2024-12-30T09:30:00.000Z/2024-12-30T10:00:00.000Z").unwrap();
        assert_eq!(b - a, 30 * 60 * 1000);
    }

    #[test]
    fn fast_time_path_agrees_with_chrono() {
        let chrono_ms = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis());
        for s in [
            "1970-01-01T00:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "2024-12-30T09:46:54.839Z",
            "2000-03-01T00:00:00.001Z",
            "1969-12-31T23:59:59.500Z",
            "2100-02-28T12:00:00.000Z",
            "2026-12-01T21:30:00.000Z",
        ] {
            assert_eq!(parse_genesys_time_ms(s.as_bytes()), chrono_ms(s), "{s}");
        }
        // Not the fixed spelling, or not a valid instant: left to chrono (which accepts the offset form).
        for s in
            ["2023-02-29T00:00:00.000Z", "2024-12-30T24:00:00.000Z", "2024-12-30T09:46:54Z", "2024-13-01T00:00:00.000Z"]
        {
            assert_eq!(parse_genesys_time_ms(s.as_bytes()), None, "{s}");
        }
        assert_eq!(parse_time_ms("2024-12-30T10:46:54.839+01:00"), parse_time_ms("2024-12-30T09:46:54.839Z"));
    }

    #[test]
    fn token_debug_redacts() {
        let t = TokenResponse { access_token: "s3cr3t".into(), token_type: "bearer".into(), expires_in: 5 };
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
