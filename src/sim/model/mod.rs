//! The simulator's traffic model: one fake org, advanced in model time by a single task.
//!
//! Everything the API shows is derived from this one model, so REST answers, topic messages and the ground truth
//! always agree. Time is model time in epoch milliseconds (`advance_to`); the server maps real time to model time
//! with its clock (speed), so the model itself never reads a clock and is deterministic for a given seed and
//! sequence of `advance_to` calls (`take_messages` and the queries never touch the traffic rng).
//!
//! # Rules of the model
//! - **Org.** `queues` queues ("Sales 001", "Support 002", …) spread round-robin over `divisions` divisions (the
//!   first is "Home"). Queue *i* has `agents_per_queue` members; consecutive queues share a quarter of their
//!   members, so agents are in one or two queues. Ids are UUIDs from the seeded rng.
//! - **Presence.** Org presence definitions Available, On Queue, Break, Meal, Away, Busy, Offline (+ any added
//!   later), `systemPresence` in display form ("On Queue") on the entity and enum form (`ON_QUEUE`) as the keys of
//!   `systemToOrganizationMappings`. An On Queue agent leaves for Break/Meal/Available/Away/Busy/Offline after
//!   ~75 min on average and comes back after a dwell typical of that presence. An agent with a conversation defers
//!   leaving until after-call work ends.
//! - **Routing status.** `OFF_QUEUE` unless the presence is On Queue; on queue: `IDLE`, `INTERACTING` (alerting,
//!   talking and ACW), `NOT_RESPONDING` (missed an alert, ~30 s), `COMMUNICATING` (a non-ACD call after some
//!   conversations, ~2 min).
//! - **Counting.** A member is *active* unless their presence is Offline. `routing_statuses` /
//!   `oUserRoutingStatuses` count active members (so they sum to `active`); `on_queue` / `oOnQueueUsers` count On
//!   Queue members by routing status; `presences` / `oUserPresences` count every member by presence (sum =
//!   members, Offline included); `off_queue` / `oOffQueueUsers` count active members not On Queue.
//! - **Traffic.** Poisson arrivals per (queue, media type): `arrivals_per_hour` × a media factor (voice 1, chat
//!   0.2, email 0.1, callback 0.1, message 0.2) × a per-queue factor 0.5–1.5. A customer waits (FIFO per queue and
//!   media) until an idle On Queue member (longest idle first) is offered the conversation: ALERTING 2–6 s (5 %
//!   are not answered within `alertingTimeoutSeconds`: the agent goes NOT_RESPONDING and the customer waits
//!   again), then talk, then ACW, then IDLE and the agent takes the oldest customer waiting in any of its queues.
//!   Patience is exponential per media; a customer still waiting when it runs out abandons.
//! - **Interval aggregates** per (queue, media) over the 30-minute bucket of model time aligned on :00/:30,
//!   recorded at the event: `nOffered` on arrival, `tAnswered`+`tWait` (+`nOverSla` when over the SL duration) on
//!   answer, `tAbandon`+`tWait` on abandon, `tTalk` at talk end, `tAcw`+`tHandle` (talk + ACW) at ACW end. An
//!   interval's numbers reset lazily: a bucket with nothing recorded reads as empty. Service level: numerator =
//!   answered − over SLA, denominator = answered + abandoned, ratio = numerator / denominator; with denominator
//!   0 there is no ratio (`None` in the truth) and `oServiceLevel` is absent from the API, like every metric
//!   nothing produced (Genesys: "there will be no data returned").
//! - **Topic messages** (`take_messages`, on `v2.analytics.queues.{id}.observations`): per queue there are
//!   observation groups (`{queueId}` for user metrics, `{queueId, mediaType}` for conversation metrics) and
//!   aggregate groups (`{queueId, mediaType}`, interval = the bucket). A group is due when it changed since its
//!   last message; per call at most one message per queue, the group that changed earliest first. Observation
//!   messages carry the metrics that differ from what that group last sent (a qualifier that dropped to zero is
//!   sent as `{"count":0}`); a group whose values came back to what was last sent sends nothing. The initial
//!   state counts as sent (clients seed it from the query); an added queue sends its whole state.
//!   `oLongestWaiting`/`oLongestInteracting` count as changed when the oldest start changes; their
//!   `calculatedMetricValue` follows `longest_form`, and with nobody waiting they are `{"count":0}` alone.
//!   Aggregate messages carry every metric of the bucket that has data. Bodies are written by hand (`wire`).
//! - **Queries** read the same state: `observations_query` (§3) and `aggregates_query` (§4, the current bucket
//!   only) — see their docs. Their f64 stats serialize as `2.0`; send them with [`genesys_json`] to get `2`.
//! - **Truth** (`truth()`) is that state again, in the documented ground-truth JSON: equal to what the query
//!   reports at the same model time, and to what a delta reader of the topic holds once messages are drained.

mod query;
#[cfg(test)]
mod tests;
mod wire;

pub use query::MAX_PREDICATES;

use crate::genesys::models::{
    self, ConversationAggregateQueryResponse, ConversationAggregationQuery, PresenceDefinition, Queue,
    QueueObservationQuery, QueueObservationQueryResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

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

/// Length of an interval aggregate bucket (Genesys: 30 minutes, aligned on :00 and :30).
pub const INTERVAL_MS: i64 = 30 * 60 * 1000;

/// Start of the 30-minute bucket containing `ms`.
pub fn interval_start(ms: i64) -> i64 {
    ms.div_euclid(INTERVAL_MS) * INTERVAL_MS
}

/// JSON of a response as Genesys writes it: integral numbers without a fraction (`"count":2`, not `2.0`).
///
/// `models::StatisticalSummary` holds `f64`s (the exporter reads any number), so plain serde would write `2.0`;
/// a strict client (e.g. Go decoding into an int) would reject that. Servers should send query answers through this.
pub fn genesys_json<T: Serialize>(value: &T) -> String {
    fn ints(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Number(n) if !n.is_u64() && !n.is_i64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => {
                    if f >= 0.0 {
                        Value::from(f as u64)
                    } else {
                        Value::from(f as i64)
                    }
                }
                _ => Value::Number(n),
            },
            Value::Array(a) => Value::Array(a.into_iter().map(ints).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, ints(v))).collect()),
            v => v,
        }
    }
    serde_json::to_value(value).map(ints).map(|v| v.to_string()).unwrap_or_else(|_| "null".to_owned())
}

/// Routing statuses, indexed by the `R_*` constants.
pub const ROUTING_STATUSES: [&str; 5] = ["OFF_QUEUE", "IDLE", "INTERACTING", "COMMUNICATING", "NOT_RESPONDING"];
const R_OFF_QUEUE: u8 = 0;
const R_IDLE: u8 = 1;
const R_INTERACTING: u8 = 2;
const R_COMMUNICATING: u8 = 3;
const R_NOT_RESPONDING: u8 = 4;

/// How one media type behaves. Means are in model seconds.
#[derive(Debug, Clone, Copy)]
struct MediaProfile {
    name: &'static str,
    /// Key of the queue's `mediaSettings` (`call` for voice).
    settings_key: &'static str,
    rate_factor: f64,
    talk_s: f64,
    acw_s: f64,
    patience_s: f64,
    alert_timeout_s: u32,
    sl_duration_ms: i64,
}

const PROFILES: [MediaProfile; 5] = [
    MediaProfile {
        name: "voice",
        settings_key: "call",
        rate_factor: 1.0,
        talk_s: 120.0,
        acw_s: 15.0,
        patience_s: 90.0,
        alert_timeout_s: 8,
        sl_duration_ms: 20_000,
    },
    MediaProfile {
        name: "chat",
        settings_key: "chat",
        rate_factor: 0.2,
        talk_s: 180.0,
        acw_s: 20.0,
        patience_s: 180.0,
        alert_timeout_s: 30,
        sl_duration_ms: 30_000,
    },
    MediaProfile {
        name: "email",
        settings_key: "email",
        rate_factor: 0.1,
        talk_s: 240.0,
        acw_s: 30.0,
        patience_s: 14_400.0,
        alert_timeout_s: 30,
        sl_duration_ms: 3_600_000,
    },
    MediaProfile {
        name: "callback",
        settings_key: "callback",
        rate_factor: 0.1,
        talk_s: 120.0,
        acw_s: 15.0,
        patience_s: 1_800.0,
        alert_timeout_s: 30,
        sl_duration_ms: 60_000,
    },
    MediaProfile {
        name: "message",
        settings_key: "message",
        rate_factor: 0.2,
        talk_s: 180.0,
        acw_s: 20.0,
        patience_s: 600.0,
        alert_timeout_s: 30,
        sl_duration_ms: 60_000,
    },
];

fn profile(name: &str) -> Option<&'static MediaProfile> {
    PROFILES.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// `ON_QUEUE` → `On Queue` (the entity's spelling); unknown enums become title case words.
fn display_system_presence(enum_form: &str) -> String {
    match enum_form {
        "ON_QUEUE" => "On Queue".to_owned(),
        other => other
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect()).unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" "),
    }
}

/// Any spelling (`On Queue`, `OnQueue`, `on_queue`) → `ON_QUEUE`.
fn enum_system_presence(s: &str) -> String {
    crate::model::snake_case(s).to_uppercase()
}

#[derive(Debug, Clone)]
struct PresenceDef {
    id: String,
    label: String,
    /// Enum form, e.g. `ON_QUEUE`.
    system: String,
    kind: &'static str,
    primary: bool,
    on_queue: bool,
    offline: bool,
}

/// Mean dwell in a presence before the next change, model minutes.
fn dwell_min(system: &str) -> f64 {
    match system {
        "ON_QUEUE" => 75.0,
        "AVAILABLE" => 4.0,
        "BREAK" => 12.0,
        "MEAL" => 30.0,
        "AWAY" => 6.0,
        "BUSY" => 15.0,
        "OFFLINE" => 90.0,
        _ => 20.0,
    }
}

/// `{count, sum, min, max}` in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stat {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl Stat {
    fn add(&mut self, v: u64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
    }

    fn merge(&mut self, o: &Stat) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    fn truth(&self) -> TruthStat {
        TruthStat {
            count: self.count,
            sum_ms: self.sum,
            min_ms: (self.count > 0).then_some(self.min),
            max_ms: (self.count > 0).then_some(self.max),
        }
    }
}

/// The interval aggregates of one (queue, media) for the bucket starting at `start`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Agg {
    start: i64,
    offered: u64,
    answered: Stat,
    abandoned: Stat,
    wait: Stat,
    handle: Stat,
    talk: Stat,
    acw: Stat,
    over_sla: u64,
}

impl Agg {
    /// The aggregates as of `now`: empty when nothing was recorded in `now`'s bucket (lazy reset).
    fn view(&self, now: i64) -> Agg {
        let start = interval_start(now);
        if self.start == start {
            self.clone()
        } else {
            Agg { start, ..Agg::default() }
        }
    }

    /// Ready to record an event at `t` (resets on entering a new bucket).
    fn at(&mut self, t: i64) -> &mut Agg {
        let start = interval_start(t);
        if self.start != start {
            *self = Agg { start, ..Agg::default() };
        }
        self
    }

    fn merge(&mut self, o: &Agg) {
        self.offered += o.offered;
        self.answered.merge(&o.answered);
        self.abandoned.merge(&o.abandoned);
        self.wait.merge(&o.wait);
        self.handle.merge(&o.handle);
        self.talk.merge(&o.talk);
        self.acw.merge(&o.acw);
        self.over_sla += o.over_sla;
    }

    /// (numerator, denominator, ratio when the denominator is not 0).
    fn service_level(&self) -> (u64, u64, Option<f64>) {
        let num = self.answered.count.saturating_sub(self.over_sla);
        let den = self.answered.count + self.abandoned.count;
        (num, den, (den > 0).then(|| num as f64 / den as f64))
    }

    fn is_empty(&self) -> bool {
        self.offered == 0
            && self.answered.count == 0
            && self.abandoned.count == 0
            && self.wait.count == 0
            && self.handle.count == 0
            && self.talk.count == 0
            && self.acw.count == 0
    }

    /// The metrics of this interval that have data, in Genesys's order, as (name, stats).
    fn metrics(&self, target: f64) -> Vec<(&'static str, models::StatisticalSummary)> {
        let mut out = Vec::with_capacity(9);
        let count = |n: u64| models::StatisticalSummary { count: Some(n as f64), ..Default::default() };
        let stat = |s: &Stat| models::StatisticalSummary {
            count: Some(s.count as f64),
            sum: Some(s.sum as f64),
            min: Some(s.min as f64),
            max: Some(s.max as f64),
            ..Default::default()
        };
        if self.offered > 0 {
            out.push(("nOffered", count(self.offered)));
        }
        for (name, s) in [
            ("tAnswered", &self.answered),
            ("tAbandon", &self.abandoned),
            ("tWait", &self.wait),
            ("tHandle", &self.handle),
            ("tTalk", &self.talk),
            ("tAcw", &self.acw),
        ] {
            if s.count > 0 {
                out.push((name, stat(s)));
            }
        }
        if self.over_sla > 0 {
            out.push(("nOverSla", count(self.over_sla)));
        }
        let (num, den, ratio) = self.service_level();
        if den > 0 {
            out.push((
                "oServiceLevel",
                models::StatisticalSummary {
                    ratio,
                    numerator: Some(num as f64),
                    denominator: Some(den as f64),
                    target: Some(target),
                    ..Default::default()
                },
            ));
        }
        out
    }
}

/// User metrics of one queue. Vectors are indexed by presence definition.
#[derive(Debug, Clone, Default, PartialEq)]
struct UserCounts {
    members: u32,
    active: u32,
    routing: [u32; 5],
    on_queue: [u32; 5],
    presence: Vec<u32>,
    off_queue: Vec<u32>,
}

impl UserCounts {
    fn with_presences(n: usize) -> UserCounts {
        UserCounts { presence: vec![0; n], off_queue: vec![0; n], ..Default::default() }
    }

    /// Add (or remove) one member in presence `p` (with its flags) and routing status `r`.
    fn apply(&mut self, p: usize, on_queue: bool, offline: bool, r: u8, add: bool) {
        fn step(v: &mut u32, add: bool) {
            if add {
                *v += 1
            } else {
                *v = v.saturating_sub(1)
            }
        }
        step(&mut self.members, add);
        step(&mut self.presence[p], add);
        if !offline {
            step(&mut self.active, add);
            step(&mut self.routing[r as usize], add);
            if on_queue {
                step(&mut self.on_queue[r as usize], add);
            } else {
                step(&mut self.off_queue[p], add);
            }
        }
    }
}

/// The conversation observations of one (queue, media).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ConvCounts {
    waiting: u64,
    alerting: u64,
    interacting: u64,
    longest_waiting: Option<i64>,
    longest_interacting: Option<i64>,
}

/// Conversations in one state, ordered by the start that state reports (`observationDate`), then by arrival.
type ConvSet = BTreeSet<(i64, u64)>;

#[derive(Debug)]
struct MediaState {
    /// Index into `PROFILES`.
    profile: usize,
    waiting: ConvSet,
    alerting: ConvSet,
    interacting: ConvSet,
    agg: Agg,
    sent: ConvCounts,
    obs_changed: Option<(i64, u64)>,
    agg_changed: Option<(i64, u64)>,
    sl_percentage: f64,
    alert_timeout_s: u32,
}

impl MediaState {
    fn counts(&self) -> ConvCounts {
        ConvCounts {
            waiting: self.waiting.len() as u64,
            alerting: self.alerting.len() as u64,
            interacting: self.interacting.len() as u64,
            longest_waiting: self.waiting.first().map(|k| k.0),
            longest_interacting: self.interacting.first().map(|k| k.0),
        }
    }
}

#[derive(Debug)]
struct QueueState {
    id: String,
    name: String,
    division: usize,
    alive: bool,
    date_created: i64,
    members: Vec<u32>,
    user: UserCounts,
    sent_user: UserCounts,
    user_changed: Option<(i64, u64)>,
    /// Parallel to `Model::media`.
    media: Vec<MediaState>,
    in_dirty: bool,
    /// Caller's clock (real ms) of this queue's last topic message, for the per-queue rate.
    last_sent_ms: i64,
    arrival_gen: u32,
    rate_factor: f64,
    topic: String,
    /// `{"topicName":"…","version":"2","eventBody":{"group":{"queueId":"…"` — every message of this queue starts so.
    prefix: String,
}

#[derive(Debug)]
struct Agent {
    id: String,
    queues: Vec<u32>,
    presence: u16,
    routing: u8,
    conv: Option<u64>,
    /// A presence change waiting for the current conversation to end.
    pending: Option<u16>,
    /// Invalidates scheduled `StatusEnd` events.
    status_gen: u32,
    /// Invalidates scheduled untargeted `Presence` events.
    presence_gen: u32,
    idle_since: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvState {
    Waiting,
    Alerting,
    Talking,
    Acw,
}

#[derive(Debug, Clone)]
struct Conv {
    q: u32,
    m: u8,
    arrival: i64,
    state: ConvState,
    agent: u32,
    alert_start: i64,
    answer: i64,
    talk_end: i64,
    patience_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Arrival { q: u32, m: u8, gen: u32 },
    Patience { c: u64 },
    AlertEnd { c: u64, answered: bool },
    TalkEnd { c: u64 },
    AcwEnd { c: u64 },
    Presence { a: u32, gen: u32, target: Option<u16> },
    StatusEnd { a: u32, gen: u32 },
}

#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    t: i64,
    seq: u64,
    ev: Ev,
}

impl Ord for Scheduled {
    // BinaryHeap is a max-heap: reverse so the earliest (then first scheduled) pops first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.t.cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// One of a queue's message groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    User,
    Obs(usize),
    Agg(usize),
}

const QUEUE_NAMES: [&str; 8] = ["Sales", "Support", "Billing", "Technical", "Retention", "Claims", "Orders", "Returns"];

fn new_uuid(rng: &mut fastrand::Rng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

/// A stable pseudo-random UUID for (seed, n, salt) without touching an rng (queries take `&self`).
fn derived_uuid(seed: u64, n: u64, salt: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let a = mix(seed ^ mix(n ^ salt.rotate_left(17)));
    let b = mix(a ^ salt);
    let bytes = ((u128::from(a) << 64) | u128::from(b)).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Conversation ids are sequence numbers: a multiply-xorshift hash is enough and much cheaper than SipHash on the
/// model's hottest map.
#[derive(Debug, Default, Clone, Copy)]
struct SeqHasher(u64);

impl std::hash::Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let z = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = z ^ (z >> 29);
    }
}

type ConvMap = HashMap<u64, Conv, std::hash::BuildHasherDefault<SeqHasher>>;

/// Exponential sample with mean `mean_ms`.
fn exp_ms(rng: &mut fastrand::Rng, mean_ms: f64) -> i64 {
    let u = rng.f64();
    (-(1.0 - u).ln() * mean_ms).round() as i64
}

/// The fake org.
#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    now_ms: i64,
    start_ms: i64,
    rng: fastrand::Rng,
    /// Correlation ids only, so that message taking never changes traffic.
    msg_rng: fastrand::Rng,
    /// Indices into `PROFILES` of the configured media types, in configuration order.
    media: Vec<usize>,
    divisions: Vec<(String, String)>,
    presences: Vec<PresenceDef>,
    queues: Vec<QueueState>,
    by_id: HashMap<String, u32>,
    agents: Vec<Agent>,
    convs: ConvMap,
    events: BinaryHeap<Scheduled>,
    event_seq: u64,
    conv_seq: u64,
    change_seq: u64,
    /// Queues with at least one group due, in the order they became due.
    dirty: Vec<u32>,
}

/// Mark a group of queue `qi` as changed now (keeps the first change time until its message is sent).
fn touch(q: &mut QueueState, qi: u32, g: Group, dirty: &mut Vec<u32>, seq: &mut u64, now: i64) {
    let slot = match g {
        Group::User => &mut q.user_changed,
        Group::Obs(m) => &mut q.media[m].obs_changed,
        Group::Agg(m) => &mut q.media[m].agg_changed,
    };
    if slot.is_none() {
        *seq += 1;
        *slot = Some((now, *seq));
    }
    if !q.in_dirty && q.alive {
        q.in_dirty = true;
        dirty.push(qi);
    }
}

impl Model {
    /// A new org at model time `now_ms`, deterministic for `cfg.seed`.
    pub fn new(cfg: ModelConfig, now_ms: i64) -> Model {
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let msg_rng = fastrand::Rng::with_seed(cfg.seed ^ 0x5eed_c0de_0bad_cafe);
        let mut media: Vec<usize> = Vec::new();
        for name in &cfg.media_types {
            if let Some(i) = PROFILES.iter().position(|p| p.name.eq_ignore_ascii_case(name)) {
                if !media.contains(&i) {
                    media.push(i);
                }
            }
        }
        let divisions = (0..cfg.divisions.max(1))
            .map(|i| {
                let name = if i == 0 { "Home".to_owned() } else { format!("Division {i}") };
                (new_uuid(&mut rng).to_string(), name)
            })
            .collect();
        let presences = [
            ("Available", "AVAILABLE"),
            ("On Queue", "ON_QUEUE"),
            ("Break", "BREAK"),
            ("Meal", "MEAL"),
            ("Away", "AWAY"),
            ("Busy", "BUSY"),
            ("Offline", "OFFLINE"),
        ]
        .into_iter()
        .map(|(label, system)| PresenceDef {
            id: new_uuid(&mut rng).to_string(),
            label: label.to_owned(),
            system: system.to_owned(),
            kind: "System",
            primary: true,
            on_queue: system == "ON_QUEUE",
            offline: system == "OFFLINE",
        })
        .collect();
        let mut m = Model {
            cfg,
            now_ms,
            start_ms: now_ms,
            rng,
            msg_rng,
            media,
            divisions,
            presences,
            queues: Vec::new(),
            by_id: HashMap::new(),
            agents: Vec::new(),
            convs: ConvMap::default(),
            events: BinaryHeap::new(),
            event_seq: 0,
            conv_seq: 0,
            change_seq: 0,
            dirty: Vec::new(),
        };
        m.build_org();
        m
    }

    fn build_org(&mut self) {
        let n = self.cfg.queues;
        let apq = self.cfg.agents_per_queue;
        let stride = (apq - apq / 4).max(1);
        let n_agents = if n == 0 || apq == 0 { 0 } else { (n * stride).max(apq) };
        for _ in 0..n_agents {
            let id = new_uuid(&mut self.rng).to_string();
            let presence = self.initial_presence();
            let routing = if self.presences[presence as usize].on_queue { R_IDLE } else { R_OFF_QUEUE };
            self.agents.push(Agent {
                id,
                queues: Vec::new(),
                presence,
                routing,
                conv: None,
                pending: None,
                status_gen: 0,
                presence_gen: 0,
                idle_since: self.now_ms - self.rng.i64(0..600_000),
            });
        }
        for i in 0..n {
            let name = format!("{} {:03}", QUEUE_NAMES[i % QUEUE_NAMES.len()], i + 1);
            let members: Vec<u32> = (0..apq).map(|j| ((i * stride + j) % n_agents.max(1)) as u32).collect();
            self.push_queue(name, i % self.divisions.len(), members);
        }
        for a in 0..self.agents.len() {
            self.schedule_presence(a as u32);
        }
        // The initial state is what a client seeds from the query: it counts as already sent.
        for q in &mut self.queues {
            q.sent_user = q.user.clone();
            q.user_changed = None;
            q.in_dirty = false;
        }
        self.dirty.clear();
    }

    fn initial_presence(&mut self) -> u16 {
        let r = self.rng.u32(0..100);
        let system = match r {
            0..70 => "ON_QUEUE",
            70..74 => "AVAILABLE",
            74..80 => "BREAK",
            80..84 => "MEAL",
            84..87 => "AWAY",
            87..90 => "BUSY",
            _ => "OFFLINE",
        };
        self.presence_for(system)
    }

    /// The primary definition of a system presence (enum form), else the first with it, else On Queue's.
    fn presence_for(&self, system: &str) -> u16 {
        let find = |primary: bool| self.presences.iter().position(|p| p.system == system && (p.primary || !primary));
        find(true).or_else(|| find(false)).or_else(|| self.presences.iter().position(|p| p.on_queue)).unwrap_or(0)
            as u16
    }

    fn push_queue(&mut self, name: String, division: usize, members: Vec<u32>) -> u32 {
        let qi = self.queues.len() as u32;
        let id = new_uuid(&mut self.rng).to_string();
        let topic = models::queue_observations_topic(&id);
        let mut prefix = String::with_capacity(128);
        prefix.push_str("{\"topicName\":\"");
        prefix.push_str(&topic);
        prefix.push_str("\",\"version\":\"2\",\"eventBody\":{\"group\":{\"queueId\":\"");
        prefix.push_str(&id);
        prefix.push('"');
        let sl_choices = [0.8, 0.8, 0.9, 0.5, 0.7];
        let media = self
            .media
            .iter()
            .map(|&p| MediaState {
                profile: p,
                waiting: ConvSet::new(),
                alerting: ConvSet::new(),
                interacting: ConvSet::new(),
                agg: Agg { start: interval_start(self.now_ms), ..Agg::default() },
                sent: ConvCounts::default(),
                obs_changed: None,
                agg_changed: None,
                sl_percentage: sl_choices[self.rng.usize(0..sl_choices.len())],
                alert_timeout_s: PROFILES[p].alert_timeout_s,
            })
            .collect();
        let rate_factor = 0.5 + self.rng.f64();
        let mut q = QueueState {
            id: id.clone(),
            name,
            division,
            alive: true,
            date_created: self.start_ms - 86_400_000,
            members: Vec::new(),
            user: UserCounts::with_presences(self.presences.len()),
            sent_user: UserCounts::with_presences(self.presences.len()),
            user_changed: None,
            media,
            in_dirty: false,
            last_sent_ms: i64::MIN / 2,
            arrival_gen: 0,
            rate_factor,
            topic,
            prefix,
        };
        for a in members {
            if q.members.contains(&a) {
                continue;
            }
            q.members.push(a);
            let ag = &mut self.agents[a as usize];
            ag.queues.push(qi);
            let p = &self.presences[ag.presence as usize];
            q.user.apply(ag.presence as usize, p.on_queue, p.offline, ag.routing, true);
        }
        self.queues.push(q);
        self.by_id.insert(id, qi);
        self.schedule_arrivals(qi);
        qi
    }

    fn schedule(&mut self, t: i64, ev: Ev) {
        self.event_seq += 1;
        self.events.push(Scheduled { t, seq: self.event_seq, ev });
    }

    fn arrival_mean_ms(&self, qi: u32, m: usize) -> Option<f64> {
        let q = &self.queues[qi as usize];
        let rate = self.cfg.arrivals_per_hour * PROFILES[q.media[m].profile].rate_factor * q.rate_factor;
        (rate > 0.0 && rate.is_finite()).then(|| 3_600_000.0 / rate)
    }

    fn schedule_arrivals(&mut self, qi: u32) {
        for m in 0..self.media.len() {
            if let Some(mean) = self.arrival_mean_ms(qi, m) {
                let t = self.now_ms + exp_ms(&mut self.rng, mean).max(1);
                let gen = self.queues[qi as usize].arrival_gen;
                self.schedule(t, Ev::Arrival { q: qi, m: m as u8, gen });
            }
        }
    }

    fn schedule_presence(&mut self, a: u32) {
        let ag = &mut self.agents[a as usize];
        ag.presence_gen += 1;
        let gen = ag.presence_gen;
        let mean = dwell_min(&self.presences[ag.presence as usize].system) * 60_000.0;
        let t = self.now_ms + exp_ms(&mut self.rng, mean).max(1000);
        self.schedule(t, Ev::Presence { a, gen, target: None });
    }

    /// Model time of the last `advance_to`.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The configuration the model runs with (arrival rate as last set).
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Ids of every queue, in creation order.
    pub fn queue_ids(&self) -> Vec<String> {
        self.queues.iter().filter(|q| q.alive).map(|q| q.id.clone()).collect()
    }

    /// Pending events (arrivals, timers): a size figure for the bench and `/sim/stats`.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Run the traffic model forward to model time `now_ms` (never backwards). Work is O(events), not O(queues).
    pub fn advance_to(&mut self, now_ms: i64) {
        while self.events.peek().is_some_and(|e| e.t <= now_ms) {
            let Some(s) = self.events.pop() else { break };
            self.now_ms = self.now_ms.max(s.t);
            self.handle(s.ev);
        }
        self.now_ms = self.now_ms.max(now_ms);
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Arrival { q, m, gen } => {
                let qs = &self.queues[q as usize];
                if !qs.alive || qs.arrival_gen != gen {
                    return;
                }
                self.new_conversation(q, m as usize);
                if let Some(mean) = self.arrival_mean_ms(q, m as usize) {
                    let t = self.now_ms + exp_ms(&mut self.rng, mean).max(1);
                    self.schedule(t, Ev::Arrival { q, m, gen });
                }
            }
            Ev::Patience { c } => {
                if self.convs.get(&c).is_some_and(|cv| cv.state == ConvState::Waiting) {
                    self.abandon(c);
                }
            }
            Ev::AlertEnd { c, answered } => self.alert_end(c, answered),
            Ev::TalkEnd { c } => self.talk_end(c),
            Ev::AcwEnd { c } => self.acw_end(c),
            Ev::Presence { a, gen, target } => {
                let ag = &self.agents[a as usize];
                if target.is_none() && ag.presence_gen != gen {
                    return;
                }
                let next = target.unwrap_or_else(|| self.next_presence(a));
                if (next as usize) >= self.presences.len() {
                    return;
                }
                if self.agents[a as usize].conv.is_some() && !self.presences[next as usize].on_queue {
                    self.agents[a as usize].pending = Some(next);
                } else {
                    self.set_presence(a, next);
                }
            }
            Ev::StatusEnd { a, gen } => {
                let ag = &self.agents[a as usize];
                if ag.status_gen == gen && matches!(ag.routing, R_COMMUNICATING | R_NOT_RESPONDING) {
                    self.set_agent(a, ag.presence, R_IDLE);
                    self.dispatch_agent(a);
                }
            }
        }
    }

    fn next_presence(&mut self, a: u32) -> u16 {
        let cur = &self.presences[self.agents[a as usize].presence as usize];
        if !cur.on_queue {
            return self.presence_for("ON_QUEUE");
        }
        let system = match self.rng.u32(0..100) {
            0..35 => "BREAK",
            35..55 => "MEAL",
            55..65 => "AVAILABLE",
            65..75 => "AWAY",
            75..85 => "BUSY",
            _ => "OFFLINE",
        };
        self.presence_for(system)
    }

    /// Change an agent's presence (routing status follows) and schedule the next change.
    fn set_presence(&mut self, a: u32, p: u16) {
        let ag = &self.agents[a as usize];
        let on_queue = self.presences[p as usize].on_queue;
        let routing = match (on_queue, self.presences[ag.presence as usize].on_queue) {
            (false, _) => R_OFF_QUEUE,
            (true, true) => ag.routing,
            (true, false) => R_IDLE,
        };
        self.agents[a as usize].pending = None;
        self.set_agent(a, p, routing);
        self.schedule_presence(a);
        if routing == R_IDLE {
            self.dispatch_agent(a);
        }
    }

    /// Set an agent's presence and routing status, keeping every member queue's user counts in step.
    fn set_agent(&mut self, a: u32, p: u16, r: u8) {
        let ag = &mut self.agents[a as usize];
        let (op, or) = (ag.presence, ag.routing);
        if r == R_IDLE && or != R_IDLE {
            ag.idle_since = self.now_ms;
        }
        if r != or {
            ag.status_gen += 1;
        }
        if (op, or) == (p, r) {
            return;
        }
        ag.presence = p;
        ag.routing = r;
        let (old, new) = (&self.presences[op as usize], &self.presences[p as usize]);
        for &qi in &ag.queues {
            let q = &mut self.queues[qi as usize];
            q.user.apply(op as usize, old.on_queue, old.offline, or, false);
            q.user.apply(p as usize, new.on_queue, new.offline, r, true);
            touch(q, qi, Group::User, &mut self.dirty, &mut self.change_seq, self.now_ms);
        }
    }

    fn touch(&mut self, qi: u32, g: Group) {
        let q = &mut self.queues[qi as usize];
        touch(q, qi, g, &mut self.dirty, &mut self.change_seq, self.now_ms);
    }

    fn new_conversation(&mut self, qi: u32, m: usize) {
        self.conv_seq += 1;
        let c = self.conv_seq;
        let now = self.now_ms;
        let patience = exp_ms(&mut self.rng, PROFILES[self.queues[qi as usize].media[m].profile].patience_s * 1000.0);
        let patience_at = now + patience.max(1000);
        self.convs.insert(
            c,
            Conv {
                q: qi,
                m: m as u8,
                arrival: now,
                state: ConvState::Waiting,
                agent: 0,
                alert_start: 0,
                answer: 0,
                talk_end: 0,
                patience_at,
            },
        );
        let ms = &mut self.queues[qi as usize].media[m];
        ms.agg.at(now).offered += 1;
        ms.waiting.insert((now, c));
        self.touch(qi, Group::Obs(m));
        self.touch(qi, Group::Agg(m));
        self.schedule(patience_at, Ev::Patience { c });
        self.dispatch_queue(qi, m);
    }

    fn abandon(&mut self, c: u64) {
        let Some(cv) = self.convs.remove(&c) else { return };
        let now = self.now_ms;
        let waited = (now - cv.arrival).max(0) as u64;
        let ms = &mut self.queues[cv.q as usize].media[cv.m as usize];
        ms.waiting.remove(&(cv.arrival, c));
        let agg = ms.agg.at(now);
        agg.abandoned.add(waited);
        agg.wait.add(waited);
        self.touch(cv.q, Group::Obs(cv.m as usize));
        self.touch(cv.q, Group::Agg(cv.m as usize));
    }

    fn is_idle(&self, a: u32) -> bool {
        let ag = &self.agents[a as usize];
        ag.routing == R_IDLE && ag.conv.is_none() && self.presences[ag.presence as usize].on_queue
    }

    /// Offer the oldest waiting customers of (queue, media) to idle members, longest idle first.
    fn dispatch_queue(&mut self, qi: u32, m: usize) {
        loop {
            let q = &self.queues[qi as usize];
            let Some(&(_, c)) = q.media[m].waiting.first() else { return };
            let best = q
                .members
                .iter()
                .copied()
                .filter(|&a| self.is_idle(a))
                .min_by_key(|&a| (self.agents[a as usize].idle_since, a));
            let Some(a) = best else { return };
            self.offer(c, a);
        }
    }

    /// An agent became idle: offer it the oldest customer waiting in any of its queues.
    fn dispatch_agent(&mut self, a: u32) {
        if !self.is_idle(a) {
            return;
        }
        let mut best: Option<(i64, u64)> = None;
        for &qi in &self.agents[a as usize].queues {
            let q = &self.queues[qi as usize];
            for ms in &q.media {
                if let Some(&k) = ms.waiting.first() {
                    if best.is_none_or(|b| k < b) {
                        best = Some(k);
                    }
                }
            }
        }
        if let Some((_, c)) = best {
            self.offer(c, a);
        }
    }

    fn offer(&mut self, c: u64, a: u32) {
        let now = self.now_ms;
        let Some(cv) = self.convs.get_mut(&c) else { return };
        cv.state = ConvState::Alerting;
        cv.agent = a;
        cv.alert_start = now;
        let (qi, m, arrival) = (cv.q, cv.m as usize, cv.arrival);
        let ms = &mut self.queues[qi as usize].media[m];
        ms.waiting.remove(&(arrival, c));
        ms.alerting.insert((now, c));
        let timeout_ms = i64::from(ms.alert_timeout_s) * 1000;
        self.touch(qi, Group::Obs(m));
        self.agents[a as usize].conv = Some(c);
        let p = self.agents[a as usize].presence;
        self.set_agent(a, p, R_INTERACTING);
        let answered = self.rng.u32(0..100) >= 5;
        let after = if answered { (2000 + self.rng.i64(0..4000)).min(timeout_ms.max(1)) } else { timeout_ms };
        self.schedule(now + after, Ev::AlertEnd { c, answered });
    }

    fn alert_end(&mut self, c: u64, answered: bool) {
        let now = self.now_ms;
        let Some(cv) = self.convs.get_mut(&c) else { return };
        if cv.state != ConvState::Alerting {
            return;
        }
        let (qi, m, a, arrival, alert_start) = (cv.q, cv.m as usize, cv.agent, cv.arrival, cv.alert_start);
        if answered {
            cv.state = ConvState::Talking;
            cv.answer = now;
            let ms = &mut self.queues[qi as usize].media[m];
            ms.alerting.remove(&(alert_start, c));
            ms.interacting.insert((now, c));
            let waited = (now - arrival).max(0) as u64;
            let sl_ms = PROFILES[ms.profile].sl_duration_ms as u64;
            let talk_mean = PROFILES[ms.profile].talk_s * 1000.0;
            let agg = ms.agg.at(now);
            agg.answered.add(waited);
            agg.wait.add(waited);
            if waited > sl_ms {
                agg.over_sla += 1;
            }
            self.touch(qi, Group::Obs(m));
            self.touch(qi, Group::Agg(m));
            let talk = exp_ms(&mut self.rng, talk_mean).max(10_000);
            self.schedule(now + talk, Ev::TalkEnd { c });
            return;
        }
        // Not answered: the agent is NOT_RESPONDING, the customer waits again in arrival order.
        cv.state = ConvState::Waiting;
        let patience_at = cv.patience_at;
        let alive = self.queues[qi as usize].alive;
        {
            let ms = &mut self.queues[qi as usize].media[m];
            ms.alerting.remove(&(alert_start, c));
            if alive {
                ms.waiting.insert((arrival, c));
            }
        }
        self.touch(qi, Group::Obs(m));
        self.agents[a as usize].conv = None;
        if let Some(p) = self.agents[a as usize].pending {
            self.set_presence(a, p);
        } else {
            let p = self.agents[a as usize].presence;
            self.set_agent(a, p, R_NOT_RESPONDING);
            let gen = self.agents[a as usize].status_gen;
            let t = now + 15_000 + self.rng.i64(0..30_000);
            self.schedule(t, Ev::StatusEnd { a, gen });
        }
        if !alive {
            self.convs.remove(&c);
        } else if patience_at <= now {
            self.abandon(c);
        } else {
            self.dispatch_queue(qi, m);
        }
    }

    fn talk_end(&mut self, c: u64) {
        let now = self.now_ms;
        let Some(cv) = self.convs.get_mut(&c) else { return };
        if cv.state != ConvState::Talking {
            return;
        }
        cv.state = ConvState::Acw;
        cv.talk_end = now;
        let (qi, m, answer) = (cv.q, cv.m as usize, cv.answer);
        let ms = &mut self.queues[qi as usize].media[m];
        ms.interacting.remove(&(answer, c));
        let acw_mean = PROFILES[ms.profile].acw_s * 1000.0;
        ms.agg.at(now).talk.add((now - answer).max(0) as u64);
        self.touch(qi, Group::Obs(m));
        self.touch(qi, Group::Agg(m));
        let acw = exp_ms(&mut self.rng, acw_mean).max(2_000);
        self.schedule(now + acw, Ev::AcwEnd { c });
    }

    fn acw_end(&mut self, c: u64) {
        let now = self.now_ms;
        let Some(cv) = self.convs.remove(&c) else { return };
        let agg = self.queues[cv.q as usize].media[cv.m as usize].agg.at(now);
        agg.acw.add((now - cv.talk_end).max(0) as u64);
        agg.handle.add((now - cv.answer).max(0) as u64);
        self.touch(cv.q, Group::Agg(cv.m as usize));
        let a = cv.agent;
        self.agents[a as usize].conv = None;
        let p = self.agents[a as usize].presence;
        if let Some(next) = self.agents[a as usize].pending {
            self.set_presence(a, next);
        } else if self.rng.u32(0..100) < 3 {
            self.set_agent(a, p, R_COMMUNICATING);
            let gen = self.agents[a as usize].status_gen;
            let t = now + exp_ms(&mut self.rng, 120_000.0).max(5_000);
            self.schedule(t, Ev::StatusEnd { a, gen });
        } else {
            self.set_agent(a, p, R_IDLE);
            self.dispatch_agent(a);
        }
    }

    /// Change the arrival rate of every queue (scenarios, tests); 0 stops new arrivals.
    pub fn set_arrivals_per_hour(&mut self, per_hour: f64) {
        self.cfg.arrivals_per_hour = per_hour.max(0.0);
        for qi in 0..self.queues.len() as u32 {
            if self.queues[qi as usize].alive {
                self.queues[qi as usize].arrival_gen += 1;
                self.schedule_arrivals(qi);
            }
        }
    }

    /// Put `count` new customers in `queue_id`'s `media_type` queue now; they are then handled like any other.
    /// False when no such queue or the media type is not configured.
    pub fn arrive(&mut self, queue_id: &str, media_type: &str, count: u64) -> bool {
        let Some(&qi) = self.by_id.get(queue_id) else { return false };
        let Some(p) = profile(media_type) else { return false };
        let Some(m) = self.media.iter().position(|&i| PROFILES[i].name == p.name) else { return false };
        for _ in 0..count {
            self.new_conversation(qi, m);
        }
        true
    }

    /// Every customer waiting in `queue_id` (all media types) abandons now. `None` when no such queue.
    pub fn abandon_waiting(&mut self, queue_id: &str) -> Option<u64> {
        let &qi = self.by_id.get(queue_id)?;
        let waiting: Vec<u64> =
            self.queues[qi as usize].media.iter().flat_map(|m| m.waiting.iter().map(|&(_, c)| c)).collect();
        for &c in &waiting {
            self.abandon(c);
        }
        Some(waiting.len() as u64)
    }

    fn media_settings(&self, q: &QueueState) -> BTreeMap<String, models::MediaSetting> {
        PROFILES
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                let ms = q.media.iter().find(|m| m.profile == pi);
                (
                    p.settings_key.to_owned(),
                    models::MediaSetting {
                        service_level: Some(models::ServiceLevel {
                            percentage: ms.map_or(0.8, |m| m.sl_percentage),
                            duration_ms: p.sl_duration_ms,
                        }),
                        alerting_timeout_seconds: Some(ms.map_or(p.alert_timeout_s, |m| m.alert_timeout_s)),
                        enable_auto_answer: Some(false),
                    },
                )
            })
            .collect()
    }

    /// Every queue as `GET /api/v2/routing/queues` lists it, sorted by name (the server pages this list).
    pub fn queues(&self) -> Vec<Queue> {
        let mut out: Vec<Queue> = self
            .queues
            .iter()
            .filter(|q| q.alive)
            .map(|q| {
                let (div_id, div_name) = &self.divisions[q.division];
                let members = q.members.len() as u32;
                Queue {
                    id: q.id.clone(),
                    name: q.name.clone(),
                    division: Some(models::DivisionRef {
                        id: div_id.clone(),
                        name: Some(div_name.clone()),
                        self_uri: Some(format!("/api/v2/authorization/divisions/{div_id}")),
                    }),
                    description: None,
                    date_created: Some(models::format_time_ms(q.date_created)),
                    date_modified: Some(models::format_time_ms(q.date_created)),
                    member_count: Some(members),
                    user_member_count: Some(members),
                    joined_member_count: Some(q.user.active),
                    media_settings: Some(self.media_settings(q)),
                    self_uri: Some(format!("/api/v2/routing/queues/{}", q.id)),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Whether a queue with this id exists now.
    pub fn has_queue(&self, queue_id: &str) -> bool {
        self.by_id.contains_key(queue_id)
    }

    /// The org's presence definitions as `GET /api/v2/presence/definitions` lists them.
    pub fn presence_definitions(&self) -> Vec<PresenceDefinition> {
        self.presences
            .iter()
            .map(|p| PresenceDefinition {
                id: p.id.clone(),
                kind: Some(p.kind.to_owned()),
                language_labels: BTreeMap::from([("en_US".to_owned(), p.label.clone())]),
                system_presence: Some(display_system_presence(&p.system)),
                division_id: None,
                deactivated: Some(false),
                primary: Some(p.primary),
                name: None,
                self_uri: Some(format!("/api/v2/presence/definitions/{}", p.id)),
            })
            .collect()
    }

    /// Topic messages due now: at most one per queue per call (the server calls this once per topic period, i.e.
    /// once a second at Genesys's rate), and only for queues whose state changed since their last message.
    pub fn take_messages(&mut self, out: &mut Vec<TopicMessage>) {
        self.take_messages_spaced(0, 0, out);
    }

    /// [`Model::take_messages`] with Genesys's per-queue rate applied here: a queue whose last message was less
    /// than `min_gap_ms` ago on the caller's clock (`clock_ms`, real time: the rate is real) waits. Called every
    /// tick, this sends a change as soon as its queue may send, as Genesys publishes "when there is a change but
    /// at most once per second", instead of holding every change for a fixed one-second beat.
    pub fn take_messages_spaced(&mut self, clock_ms: i64, min_gap_ms: i64, out: &mut Vec<TopicMessage>) {
        let now = self.now_ms;
        let mut at = String::with_capacity(24);
        wire::push_time(&mut at, now);
        let dirty = std::mem::take(&mut self.dirty);
        let mut keep = Vec::new();
        let Model { queues, presences, msg_rng, cfg, .. } = self;
        let ctx = RenderCtx { presences, longest_form: cfg.longest_form, now, at: &at };
        for qi in dirty {
            let q = &mut queues[qi as usize];
            if !q.alive {
                q.in_dirty = false;
                continue;
            }
            if clock_ms.saturating_sub(q.last_sent_ms) < min_gap_ms {
                keep.push(qi);
                continue;
            }
            while let Some(g) = earliest_group(q) {
                match g {
                    Group::User => q.user_changed = None,
                    Group::Obs(m) => q.media[m].obs_changed = None,
                    Group::Agg(m) => q.media[m].agg_changed = None,
                }
                let mut corr = [0u8; uuid::fmt::Hyphenated::LENGTH];
                let corr = new_uuid(msg_rng).hyphenated().encode_lower(&mut corr);
                if let Some(json) = render_group(q, g, &ctx, corr) {
                    out.push(TopicMessage { queue_id: q.id.clone(), topic: q.topic.clone(), json });
                    q.last_sent_ms = clock_ms;
                    break;
                }
            }
            if earliest_group(q).is_some() {
                keep.push(qi);
            } else {
                q.in_dirty = false;
            }
        }
        // Anything touched meanwhile was appended to `self.dirty` (empty now: take_messages changes no state).
        keep.append(&mut self.dirty);
        self.dirty = keep;
    }

    fn truth_queue(&self, q: &QueueState) -> TruthQueue {
        let nz = |names: &mut dyn Iterator<Item = (String, u32)>| -> BTreeMap<String, u64> {
            names.filter(|(_, n)| *n > 0).map(|(k, n)| (k, u64::from(n))).collect()
        };
        let (div_id, div_name) = &self.divisions[q.division];
        let u = &q.user;
        TruthQueue {
            id: q.id.clone(),
            name: q.name.clone(),
            division_id: div_id.clone(),
            division_name: div_name.clone(),
            members: u64::from(u.members),
            active: u64::from(u.active),
            routing_statuses: nz(&mut ROUTING_STATUSES.iter().zip(u.routing).map(|(k, n)| (k.to_string(), n))),
            on_queue: nz(&mut ROUTING_STATUSES.iter().zip(u.on_queue).map(|(k, n)| (k.to_string(), n))),
            presences: nz(&mut self.presences.iter().zip(u.presence.iter()).map(|(p, n)| (p.id.clone(), *n))),
            off_queue: nz(&mut self.presences.iter().zip(u.off_queue.iter()).map(|(p, n)| (p.id.clone(), *n))),
            media: q
                .media
                .iter()
                .map(|ms| {
                    let c = ms.counts();
                    let agg = ms.agg.view(self.now_ms);
                    let (numerator, denominator, ratio) = agg.service_level();
                    let interval = TruthInterval {
                        start_ms: agg.start,
                        end_ms: agg.start + INTERVAL_MS,
                        offered: agg.offered,
                        answered: agg.answered.truth(),
                        abandoned: agg.abandoned.truth(),
                        wait: agg.wait.truth(),
                        handle: agg.handle.truth(),
                        talk: agg.talk.truth(),
                        acw: agg.acw.truth(),
                        over_sla: agg.over_sla,
                        service_level: TruthServiceLevel { ratio, numerator, denominator, target: ms.sl_percentage },
                    };
                    let media = TruthMedia {
                        waiting: c.waiting,
                        alerting: c.alerting,
                        interacting: c.interacting,
                        longest_waiting_start_ms: c.longest_waiting,
                        longest_interacting_start_ms: c.longest_interacting,
                        interval,
                    };
                    (PROFILES[ms.profile].name.to_owned(), media)
                })
                .collect(),
        }
    }

    /// The true state now.
    pub fn truth(&self) -> Truth {
        Truth {
            now_ms: self.now_ms,
            queues: self.queues.iter().filter(|q| q.alive).map(|q| self.truth_queue(q)).collect(),
            presence_definitions: self
                .presences
                .iter()
                .map(|p| TruthPresence {
                    id: p.id.clone(),
                    name: p.label.clone(),
                    system_presence: display_system_presence(&p.system),
                })
                .collect(),
        }
    }

    /// The true state of one queue now.
    pub fn truth_of(&self, queue_id: &str) -> Option<TruthQueue> {
        let &qi = self.by_id.get(queue_id)?;
        Some(self.truth_queue(&self.queues[qi as usize]))
    }

    /// Add a queue (fault `add_queue`); its id is returned. `division` is a division name or id, else the first.
    /// Its members are `agents_per_queue` existing agents (so they join a further queue); its first message
    /// carries its whole state.
    pub fn add_queue(&mut self, name: &str, division: Option<&str>) -> String {
        let div = division
            .and_then(|d| self.divisions.iter().position(|(id, n)| id == d || n.eq_ignore_ascii_case(d)))
            .unwrap_or(0);
        let apq = self.cfg.agents_per_queue;
        let members: Vec<u32> = if self.agents.is_empty() {
            (0..apq)
                .map(|_| {
                    let id = new_uuid(&mut self.rng).to_string();
                    let presence = self.presence_for("ON_QUEUE");
                    self.agents.push(Agent {
                        id,
                        queues: Vec::new(),
                        presence,
                        routing: R_IDLE,
                        conv: None,
                        pending: None,
                        status_gen: 0,
                        presence_gen: 0,
                        idle_since: self.now_ms,
                    });
                    let a = (self.agents.len() - 1) as u32;
                    self.schedule_presence(a);
                    a
                })
                .collect()
        } else {
            let n = self.agents.len();
            let start = self.rng.usize(0..n);
            (0..apq.min(n)).map(|j| ((start + j) % n) as u32).collect()
        };
        let qi = self.push_queue(name.to_owned(), div, members);
        self.touch(qi, Group::User);
        self.queues[qi as usize].id.clone()
    }

    /// Remove a queue and its members' membership (fault `remove_queue`). False when no such queue. Customers
    /// waiting in it vanish; conversations already with an agent finish normally.
    pub fn remove_queue(&mut self, queue_id: &str) -> bool {
        let Some(qi) = self.by_id.remove(queue_id) else { return false };
        let q = &mut self.queues[qi as usize];
        q.alive = false;
        q.arrival_gen += 1;
        for ms in &mut q.media {
            for (_, c) in std::mem::take(&mut ms.waiting) {
                self.convs.remove(&c);
            }
        }
        for a in std::mem::take(&mut q.members) {
            self.agents[a as usize].queues.retain(|&x| x != qi);
        }
        true
    }

    /// Rename a queue (fault `rename_queue`). False when no such queue.
    pub fn rename_queue(&mut self, queue_id: &str, name: &str) -> bool {
        let Some(&qi) = self.by_id.get(queue_id) else { return false };
        self.queues[qi as usize].name = name.to_owned();
        true
    }

    /// Add an org presence definition (fault `add_presence_definition`) with an `en_US` label and a system
    /// presence (any spelling); some agents (a tenth, at least one) move into it within 30 s of model time.
    /// Returns its id.
    pub fn add_presence_definition(&mut self, label: &str, system_presence: &str) -> String {
        let system = enum_system_presence(system_presence);
        let id = new_uuid(&mut self.rng).to_string();
        self.presences.push(PresenceDef {
            id: id.clone(),
            label: label.to_owned(),
            on_queue: system == "ON_QUEUE",
            offline: system == "OFFLINE",
            system,
            kind: "User",
            primary: false,
        });
        let p = (self.presences.len() - 1) as u16;
        for q in &mut self.queues {
            for v in
                [&mut q.user.presence, &mut q.user.off_queue, &mut q.sent_user.presence, &mut q.sent_user.off_queue]
            {
                v.resize(self.presences.len(), 0);
            }
        }
        let n = self.agents.len();
        if n > 0 {
            let movers = (n / 10).max(n.min(3));
            for _ in 0..movers {
                let a = self.rng.usize(0..n) as u32;
                let t = self.now_ms + 1_000 + self.rng.i64(0..29_000);
                self.schedule(t, Ev::Presence { a, gen: 0, target: Some(p) });
            }
        }
        id
    }
}

struct RenderCtx<'a> {
    presences: &'a [PresenceDef],
    longest_form: LongestForm,
    now: i64,
    at: &'a str,
}

fn earliest_group(q: &QueueState) -> Option<Group> {
    let mut best: Option<((i64, u64), Group)> = q.user_changed.map(|k| (k, Group::User));
    for (m, ms) in q.media.iter().enumerate() {
        for (k, g) in [(ms.obs_changed, Group::Obs(m)), (ms.agg_changed, Group::Agg(m))] {
            if let Some(k) = k {
                if best.is_none_or(|(b, _)| k < b) {
                    best = Some((k, g));
                }
            }
        }
    }
    best.map(|(_, g)| g)
}

/// `calculatedMetricValue` of a longest-* metric whose oldest start is `start`.
fn longest_value(form: LongestForm, start: i64, now: i64) -> i64 {
    match form {
        LongestForm::Duration => (now - start).max(0),
        LongestForm::Epoch => start,
    }
}

/// The JSON of one group's message, updating what the group last sent; `None` when nothing differs.
fn render_group(q: &mut QueueState, g: Group, ctx: &RenderCtx<'_>, corr: &str) -> Option<String> {
    let mut out = String::with_capacity(512);
    out.push_str(&q.prefix);
    let media_name = match g {
        Group::User => None,
        Group::Obs(m) | Group::Agg(m) => Some(PROFILES[q.media[m].profile].name),
    };
    if let Some(mt) = media_name {
        out.push_str(",\"mediaType\":\"");
        out.push_str(mt);
        out.push('"');
    }
    out.push_str("},\"data\":[{\"interval\":\"");
    let mut first = true;
    match g {
        Group::User => {
            out.push_str(ctx.at);
            out.push('/');
            out.push_str(ctx.at);
            out.push_str("\",\"metrics\":[");
            let (cur, sent) = (&q.user, &q.sent_user);
            for (metric, c, s) in [
                ("oUserRoutingStatuses", &cur.routing, &sent.routing),
                ("oOnQueueUsers", &cur.on_queue, &sent.on_queue),
            ] {
                for r in 0..5 {
                    if c[r] != s[r] {
                        wire::sep(&mut out, &mut first);
                        wire::count_metric(&mut out, metric, Some(ROUTING_STATUSES[r]), u64::from(c[r]));
                    }
                }
            }
            for (metric, c, s) in
                [("oUserPresences", &cur.presence, &sent.presence), ("oOffQueueUsers", &cur.off_queue, &sent.off_queue)]
            {
                for (p, def) in ctx.presences.iter().enumerate() {
                    let (cv, sv) = (c.get(p).copied().unwrap_or(0), s.get(p).copied().unwrap_or(0));
                    if cv != sv {
                        wire::sep(&mut out, &mut first);
                        wire::count_metric(&mut out, metric, Some(&def.id), u64::from(cv));
                    }
                }
            }
            for (metric, c, s) in
                [("oMemberUsers", cur.members, sent.members), ("oActiveUsers", cur.active, sent.active)]
            {
                if c != s {
                    wire::sep(&mut out, &mut first);
                    wire::count_metric(&mut out, metric, None, u64::from(c));
                }
            }
            q.sent_user = q.user.clone();
        }
        Group::Obs(m) => {
            out.push_str(ctx.at);
            out.push('/');
            out.push_str(ctx.at);
            out.push_str("\",\"metrics\":[");
            let ms = &mut q.media[m];
            let (c, s) = (ms.counts(), ms.sent);
            for (metric, cv, sv) in [
                ("oWaiting", c.waiting, s.waiting),
                ("oAlerting", c.alerting, s.alerting),
                ("oInteracting", c.interacting, s.interacting),
            ] {
                if cv != sv {
                    wire::sep(&mut out, &mut first);
                    wire::count_metric(&mut out, metric, None, cv);
                }
            }
            for (metric, cv, sv, n) in [
                ("oLongestWaiting", c.longest_waiting, s.longest_waiting, c.waiting),
                ("oLongestInteracting", c.longest_interacting, s.longest_interacting, c.interacting),
            ] {
                if cv != sv {
                    wire::sep(&mut out, &mut first);
                    wire::open_metric(&mut out, metric, None);
                    out.push_str("\"count\":");
                    match cv {
                        Some(start) => {
                            wire::push_u64(&mut out, n);
                            out.push_str(",\"calculatedMetricValue\":");
                            wire::push_i64(&mut out, longest_value(ctx.longest_form, start, ctx.now));
                        }
                        None => out.push('0'),
                    }
                    out.push_str("}}");
                }
            }
            ms.sent = c;
        }
        Group::Agg(m) => {
            let ms = &q.media[m];
            wire::push_interval(&mut out, ms.agg.start, ms.agg.start + INTERVAL_MS);
            out.push_str("\",\"metrics\":[");
            for (metric, st) in ms.agg.metrics(ms.sl_percentage) {
                wire::sep(&mut out, &mut first);
                wire::open_metric(&mut out, metric, None);
                let mut f = true;
                for (k, v) in [
                    ("count", st.count),
                    ("sum", st.sum),
                    ("min", st.min),
                    ("max", st.max),
                    ("ratio", st.ratio),
                    ("numerator", st.numerator),
                    ("denominator", st.denominator),
                    ("target", st.target),
                ] {
                    if let Some(v) = v {
                        wire::sep(&mut out, &mut f);
                        out.push('"');
                        out.push_str(k);
                        out.push_str("\":");
                        if k == "ratio" || k == "target" {
                            wire::push_f64(&mut out, v);
                        } else {
                            wire::push_u64(&mut out, v as u64);
                        }
                    }
                }
                out.push_str("}}");
            }
        }
    }
    if first {
        return None;
    }
    out.push_str("]}]},\"metadata\":{\"CorrelationId\":\"");
    out.push_str(corr);
    out.push_str("\"}}");
    Some(out)
}
