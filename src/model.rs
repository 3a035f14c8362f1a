//! Domain words shared by every stage of the data path.
//!
//! `genesys/` turns wire payloads into [`QueueUpdate`]s, `state/` applies them, `exposition/` renders the result. Nothing
//! here knows a wire format or a metric name.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Which source last confirmed a queue's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The notification channel (WebSocket).
    Stream,
    /// The REST observations query (seed, re-seed, poll, reconcile).
    Poll,
    /// Nothing has confirmed the queue yet, or its data was withdrawn.
    None,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Stream, Source::Poll, Source::None];

    /// Label value of `genesys_queue_source{source}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stream => "stream",
            Source::Poll => "poll",
            Source::None => "none",
        }
    }
}

/// The static facts of a queue, from the queue listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMeta {
    pub id: String,
    pub name: String,
    pub division_id: String,
    pub division: String,
}

/// Live observation metrics of a queue. Conversation metrics come per media type; user metrics per queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObsMetric {
    Waiting,
    Alerting,
    Interacting,
    /// Value is a start instant, not a count.
    LongestWaiting,
    /// Value is a start instant, not a count.
    LongestInteracting,
    /// Qualifier: routing status.
    UserRoutingStatuses,
    /// Qualifier: routing status.
    OnQueueUsers,
    /// Qualifier: organization presence id.
    UserPresences,
    /// Qualifier: organization presence id.
    OffQueueUsers,
    MemberUsers,
    ActiveUsers,
}

impl ObsMetric {
    pub const ALL: [ObsMetric; 11] = [
        ObsMetric::Waiting,
        ObsMetric::Alerting,
        ObsMetric::Interacting,
        ObsMetric::LongestWaiting,
        ObsMetric::LongestInteracting,
        ObsMetric::UserRoutingStatuses,
        ObsMetric::OnQueueUsers,
        ObsMetric::UserPresences,
        ObsMetric::OffQueueUsers,
        ObsMetric::MemberUsers,
        ObsMetric::ActiveUsers,
    ];

    /// Genesys's metric name.
    pub fn wire_name(self) -> &'static str {
        match self {
            ObsMetric::Waiting => "oWaiting",
            ObsMetric::Alerting => "oAlerting",
            ObsMetric::Interacting => "oInteracting",
            ObsMetric::LongestWaiting => "oLongestWaiting",
            ObsMetric::LongestInteracting => "oLongestInteracting",
            ObsMetric::UserRoutingStatuses => "oUserRoutingStatuses",
            ObsMetric::OnQueueUsers => "oOnQueueUsers",
            ObsMetric::UserPresences => "oUserPresences",
            ObsMetric::OffQueueUsers => "oOffQueueUsers",
            ObsMetric::MemberUsers => "oMemberUsers",
            ObsMetric::ActiveUsers => "oActiveUsers",
        }
    }

    pub fn from_wire(name: &str) -> Option<ObsMetric> {
        ObsMetric::ALL.into_iter().find(|m| m.wire_name() == name)
    }

    /// Conversation metrics are split by media type; user metrics are not.
    pub fn per_media_type(self) -> bool {
        matches!(
            self,
            ObsMetric::Waiting
                | ObsMetric::Alerting
                | ObsMetric::Interacting
                | ObsMetric::LongestWaiting
                | ObsMetric::LongestInteracting
        )
    }

    /// The value is an instant (epoch ms) rather than a count.
    pub fn is_instant(self) -> bool {
        matches!(self, ObsMetric::LongestWaiting | ObsMetric::LongestInteracting)
    }
}

/// One observed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub metric: ObsMetric,
    /// Routing status (as Genesys spells it, e.g. `IDLE`) or org presence id; `None` for unqualified metrics.
    pub qualifier: Option<String>,
    /// A count; for `is_instant()` metrics the start instant in epoch ms, or `None` when nothing waits/interacts.
    pub value: Option<f64>,
}

/// Statistics of one conversation aggregate metric over the current interval. Durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AggregateStats {
    pub count: Option<f64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub ratio: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub target: Option<f64>,
}

/// One aggregate metric of the current interval (`nOffered`, `tAnswered`, `oServiceLevel`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Genesys's metric name, kept as is so new metrics flow through without code.
    pub metric: String,
    pub qualifier: Option<String>,
    pub stats: AggregateStats,
}

/// The values one message (or one query result group) carries for one group: a queue, optionally one media type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupUpdate {
    /// `None` for the queue-level group (user metrics).
    pub media_type: Option<String>,
    pub observations: Vec<Observation>,
    /// The aggregate interval `[start, end)` in epoch ms, when the group carries aggregates. On the queue-level
    /// group (`media_type: None`) with no aggregates, it records a complete aggregates read of that interval: every
    /// media type the read did not list had nothing yet (Genesys omits what nothing produced), so a later first
    /// sight of that media type in the same interval counts from zero instead of becoming the baseline.
    pub interval: Option<(i64, i64)>,
    pub aggregates: Vec<Aggregate>,
}

/// Everything that leaves `genesys/` for `state/`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueUpdate {
    pub queue_id: String,
    pub source: Source,
    /// When Genesys says the values were true (event time), epoch ms.
    pub event_ms: Option<i64>,
    /// A complete read (REST query): observation metrics/qualifiers not present are zero. A topic message is not
    /// guaranteed complete, so it only upserts what it carries.
    pub complete: bool,
    pub groups: Vec<GroupUpdate>,
}

/// Epoch milliseconds now (wall clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The wall-clock instant of the last frame a notification channel received (heartbeat, pong or message).
///
/// Genesys publishes only on change, so a quiet queue on a healthy channel is fresh: its data age is the age of
/// its channel's last frame. The channel's supervisor bumps this; the store reads it at scrape time, so a frame
/// costs one atomic store however many queues share the channel.
#[derive(Debug, Default)]
pub struct ChannelClock {
    last_frame_ms: AtomicI64,
}

impl ChannelClock {
    pub fn new() -> Arc<Self> {
        Arc::new(ChannelClock::default())
    }
    pub fn touch(&self, at_ms: i64) {
        self.last_frame_ms.fetch_max(at_ms, Ordering::Relaxed);
    }
    /// 0 when no frame was ever received.
    pub fn last_frame_ms(&self) -> i64 {
        self.last_frame_ms.load(Ordering::Relaxed)
    }
}

/// What `/readyz` reports: authenticated, and the first snapshot of every queue loaded.
#[derive(Debug, Default)]
pub struct Readiness {
    authenticated: std::sync::atomic::AtomicBool,
    seeded: std::sync::atomic::AtomicBool,
}

impl Readiness {
    pub fn set_authenticated(&self, v: bool) {
        self.authenticated.store(v, Ordering::Relaxed);
    }
    pub fn set_seeded(&self, v: bool) {
        self.seeded.store(v, Ordering::Relaxed);
    }
    pub fn authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Relaxed)
    }
    pub fn seeded(&self) -> bool {
        self.seeded.load(Ordering::Relaxed)
    }
    pub fn ready(&self) -> bool {
        self.authenticated() && self.seeded()
    }
}

/// Lower snake case for label values: `NOT_RESPONDING` → `not_responding`, `On Queue` / `OnQueue` → `on_queue`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for c in s.trim().chars() {
        if c == ' ' || c == '-' || c == '_' {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        } else if c.is_uppercase() {
            if prev_lower && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}
