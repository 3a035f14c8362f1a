//! The simulator's traffic model: one fake org, advanced in model time by a single task.
//!
//! CONTRACT STUB (lead): the public items below are the interface the simulator's server (`sim::server`,
//! `sim::channels`, …) is written against. Their signatures are fixed; the bodies here are a minimal placeholder
//! (a handful of queues, waiting counts only) to be replaced by the real model.
//!
//! Everything the API shows is derived from this one model, so REST answers, topic messages and the ground truth
//! always agree. Time is model time in epoch milliseconds (`advance_to`); the server maps real time to model time
//! with its clock (speed), so the model itself never reads a clock and is deterministic for a given seed and
//! sequence of `advance_to` calls.

use crate::genesys::models::{
    self, ConversationAggregateQueryResponse, ConversationAggregationQuery, PresenceDefinition, Queue,
    QueueObservationQuery, QueueObservationQueryResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The media types Genesys analytics reports (`call` in queue media settings is `voice` here).
pub const MEDIA_TYPES: [&str; 5] = ["voice", "chat", "email", "callback", "message"];

/// How `oLongestWaiting` / `oLongestInteracting` carry `stats.calculatedMetricValue` (genesys-api.md §3 says both
/// are seen): elapsed milliseconds, or the epoch milliseconds of the oldest start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongestForm {
    #[default]
    Duration,
    Epoch,
}

/// What the org looks like and how busy it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub queues: usize,
    pub agents_per_queue: usize,
    pub seed: u64,
    /// Number of divisions the queues are spread over.
    pub divisions: usize,
    /// Media types with traffic (subset of [`MEDIA_TYPES`]).
    pub media_types: Vec<String>,
    /// Mean customer arrivals per hour (model time) per queue for voice; other media get a fixed fraction of it.
    pub arrivals_per_hour: f64,
    pub longest_form: LongestForm,
    /// Detail observations listed per metric before `truncated: true` (Genesys: 100).
    pub detail_cap: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            queues: 10,
            agents_per_queue: 8,
            seed: 1,
            divisions: 3,
            media_types: MEDIA_TYPES.iter().map(|s| s.to_string()).collect(),
            arrivals_per_hour: 60.0,
            longest_form: LongestForm::Duration,
            detail_cap: 100,
        }
    }
}

/// A complete WebSocket text frame for one topic, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMessage {
    pub queue_id: String,
    /// `v2.analytics.queues.{id}.observations`
    pub topic: String,
    /// The whole envelope `{"topicName":…,"version":"2","eventBody":…,"metadata":{"CorrelationId":…}}`.
    pub json: String,
}

/// A query the model cannot answer: the server turns it into a Genesys `400 bad.request` with this message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// `{count, sum_ms, min_ms, max_ms}` of a `t*` interval metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthStat {
    pub count: u64,
    pub sum_ms: u64,
    pub min_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthServiceLevel {
    pub ratio: Option<f64>,
    pub numerator: u64,
    pub denominator: u64,
    pub target: f64,
}

/// The current 30-minute interval of one (queue, media type).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthInterval {
    pub start_ms: i64,
    pub end_ms: i64,
    pub offered: u64,
    pub answered: TruthStat,
    pub abandoned: TruthStat,
    pub wait: TruthStat,
    pub handle: TruthStat,
    pub talk: TruthStat,
    pub acw: TruthStat,
    pub over_sla: u64,
    pub service_level: TruthServiceLevel,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthMedia {
    pub waiting: u64,
    pub alerting: u64,
    pub interacting: u64,
    pub longest_waiting_start_ms: Option<i64>,
    pub longest_interacting_start_ms: Option<i64>,
    pub interval: TruthInterval,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthQueue {
    pub id: String,
    pub name: String,
    pub division_id: String,
    pub division_name: String,
    pub members: u64,
    pub active: u64,
    /// Routing status (`IDLE`, `INTERACTING`, …) → members in it (zero counts omitted).
    pub routing_statuses: BTreeMap<String, u64>,
    /// The same, for on-queue members only.
    pub on_queue: BTreeMap<String, u64>,
    /// Org presence definition id → members in it (zero counts omitted).
    pub presences: BTreeMap<String, u64>,
    /// The same, for members not on queue.
    pub off_queue: BTreeMap<String, u64>,
    /// Media type → conversation state and the current interval.
    pub media: BTreeMap<String, TruthMedia>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthPresence {
    pub id: String,
    pub name: String,
    pub system_presence: String,
}

/// The model's true state now (`GET /sim/truth`): the same numbers the API reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub now_ms: i64,
    pub queues: Vec<TruthQueue>,
    pub presence_definitions: Vec<TruthPresence>,
}

/// The fake org.
#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    now_ms: i64,
    queues: Vec<StubQueue>,
}

#[derive(Debug)]
struct StubQueue {
    id: String,
    name: String,
    waiting: BTreeMap<String, u64>,
    dirty: bool,
}

impl Model {
    /// A new org at model time `now_ms`, deterministic for `cfg.seed`.
    pub fn new(cfg: ModelConfig, now_ms: i64) -> Model {
        let queues = (0..cfg.queues)
            .map(|i| StubQueue {
                id: format!("00000000-0000-4000-8000-{i:012}"),
                name: format!("Queue {i:03}"),
                waiting: BTreeMap::new(),
                dirty: false,
            })
            .collect();
        Model { cfg, now_ms, queues }
    }

    /// Model time of the last `advance_to`.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Run the traffic model forward to model time `now_ms` (never backwards). Work is O(events), not O(queues).
    pub fn advance_to(&mut self, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Change the arrival rate of every queue (scenarios, tests); 0 stops new arrivals.
    pub fn set_arrivals_per_hour(&mut self, per_hour: f64) {
        self.cfg.arrivals_per_hour = per_hour;
    }

    /// Put `count` new customers in `queue_id`'s `media_type` queue now. False when no such queue.
    pub fn arrive(&mut self, queue_id: &str, media_type: &str, count: u64) -> bool {
        let Some(q) = self.queues.iter_mut().find(|q| q.id == queue_id) else { return false };
        *q.waiting.entry(media_type.to_owned()).or_default() += count;
        q.dirty = true;
        true
    }

    /// Every queue as `GET /api/v2/routing/queues` lists it, sorted by name (the server pages this list).
    pub fn queues(&self) -> Vec<Queue> {
        self.queues.iter().map(|q| Queue { id: q.id.clone(), name: q.name.clone(), ..Default::default() }).collect()
    }

    /// Whether a queue with this id exists now.
    pub fn has_queue(&self, queue_id: &str) -> bool {
        self.queues.iter().any(|q| q.id == queue_id)
    }

    /// The org's presence definitions as `GET /api/v2/presence/definitions` lists them.
    pub fn presence_definitions(&self) -> Vec<PresenceDefinition> {
        Vec::new()
    }

    /// `POST /api/v2/analytics/queues/observations/query`.
    pub fn observations_query(&self, q: &QueueObservationQuery) -> Result<QueueObservationQueryResponse, QueryError> {
        if q.metrics.is_empty() {
            return Err(QueryError("metrics: may not be empty".into()));
        }
        Ok(QueueObservationQueryResponse::default())
    }

    /// `POST /api/v2/analytics/conversations/aggregates/query` (the current interval).
    pub fn aggregates_query(
        &self,
        q: &ConversationAggregationQuery,
    ) -> Result<ConversationAggregateQueryResponse, QueryError> {
        if q.metrics.is_empty() {
            return Err(QueryError("metrics: may not be empty".into()));
        }
        Ok(ConversationAggregateQueryResponse::default())
    }

    /// Topic messages due now: at most one per queue per call (the server calls this once per topic period, i.e.
    /// once a second at Genesys's rate), and only for queues whose state changed since their last message.
    pub fn take_messages(&mut self, out: &mut Vec<TopicMessage>) {
        let at = models::format_time_ms(self.now_ms);
        for q in self.queues.iter_mut().filter(|q| q.dirty) {
            q.dirty = false;
            for (media, n) in &q.waiting {
                let topic = models::queue_observations_topic(&q.id);
                let json = serde_json::json!({
                    "topicName": topic, "version": "2",
                    "eventBody": {"group": {"queueId": q.id, "mediaType": media},
                        "data": [{"interval": format!("{at}/{at}"), "metrics": [{"metric": "oWaiting", "stats": {"count": n}}]}]},
                    "metadata": {"CorrelationId": "00000000-0000-4000-8000-000000000000"}
                })
                .to_string();
                out.push(TopicMessage { queue_id: q.id.clone(), topic, json });
            }
        }
    }

    /// The true state now.
    pub fn truth(&self) -> Truth {
        Truth {
            now_ms: self.now_ms,
            queues: self
                .queues
                .iter()
                .map(|q| TruthQueue {
                    id: q.id.clone(),
                    name: q.name.clone(),
                    media: q
                        .waiting
                        .iter()
                        .map(|(m, n)| (m.clone(), TruthMedia { waiting: *n, ..Default::default() }))
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            presence_definitions: Vec::new(),
        }
    }

    /// Add a queue (fault `add_queue`); its id is returned. `division` is a division name or id, else the first.
    pub fn add_queue(&mut self, name: &str, division: Option<&str>) -> String {
        let _ = division;
        let id = format!("00000000-0000-4000-9000-{:012}", self.queues.len());
        self.queues.push(StubQueue { id: id.clone(), name: name.to_owned(), waiting: BTreeMap::new(), dirty: false });
        id
    }

    /// Remove a queue and its members' membership (fault `remove_queue`). False when no such queue.
    pub fn remove_queue(&mut self, queue_id: &str) -> bool {
        let before = self.queues.len();
        self.queues.retain(|q| q.id != queue_id);
        before != self.queues.len()
    }

    /// Rename a queue (fault `rename_queue`). False when no such queue.
    pub fn rename_queue(&mut self, queue_id: &str, name: &str) -> bool {
        let Some(q) = self.queues.iter_mut().find(|q| q.id == queue_id) else { return false };
        q.name = name.to_owned();
        true
    }

    /// Add an org presence definition (fault `add_presence_definition`) with an `en_US` label and a system
    /// presence; some agents move into it soon after. Returns its id.
    pub fn add_presence_definition(&mut self, label: &str, system_presence: &str) -> String {
        let _ = (label, system_presence);
        "00000000-0000-4000-a000-000000000000".to_owned()
    }
}
