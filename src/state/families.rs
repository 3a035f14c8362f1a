//! The table of queue metric families: the only place a queue metric name is spelled.
//!
//! Each [`FamilyDef`] says what a family is called, how it is typed and documented, which labels it adds after the
//! queue labels, and where its values come from. The renderer walks this table in order, so output order, headers
//! and the docs all follow from it (kube-state-metrics' `FamilyGenerator` tables). Counters and histograms built
//! from interval growth (`state::aggregates`) are rows with [`ValueSource::Counter`] and [`ValueSource::Histogram`].

use crate::model::ObsMetric;
pub use crate::state::aggregates::{CounterMetric, HistogramMetric};

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    /// The word after `# TYPE` (the same in both text formats for these types).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// The labels a family adds after `queue_id` and `queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSet {
    None,
    /// `division`, `division_id` (only on `_info`).
    Division,
    MediaType,
    RoutingStatus,
    /// `presence`, `system_presence`, resolved from an org presence id.
    Presence,
    /// `source`.
    Source,
}

impl LabelSet {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            LabelSet::None => &[],
            LabelSet::Division => &["division", "division_id"],
            LabelSet::MediaType => &["media_type"],
            LabelSet::RoutingStatus => &["routing_status"],
            LabelSet::Presence => &["presence", "system_presence"],
            LabelSet::Source => &["source"],
        }
    }
}

/// Which statistic of an interval aggregate a family reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Count,
    Ratio,
    Target,
}

/// Where a family's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// The queue listing (constant 1).
    Meta,
    /// An observation metric. Instant metrics are rendered at scrape time as `now − start`.
    Obs(ObsMetric),
    /// One statistic of a current-interval aggregate (Genesys's metric name).
    Aggregate {
        metric: &'static str,
        stat: Stat,
    },
    /// The start of the queue's latest interval.
    IntervalStart,
    /// A counter grown from the interval aggregates (per media type).
    Counter(CounterMetric),
    /// A histogram grown from a `t*` interval aggregate (per media type; buckets from the configuration).
    Histogram(HistogramMetric),
    DataAge,
    Source,
    Stale,
}

/// When a family's samples are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Always, for every queue in the directory.
    Info,
    /// Only while the queue's data is younger than `max_age`.
    Observation,
    /// Only while the data is younger than `max_age` and the interval has not ended.
    Interval,
    /// Always; computed at scrape time.
    Freshness,
}

/// Index of a family in [`FAMILIES`]; the renderer's per-family slices are indexed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FamilyId {
    Info,
    Waiting,
    Alerting,
    Interacting,
    LongestWaiting,
    LongestInteracting,
    Agents,
    OnQueueAgents,
    PresenceAgents,
    OffQueueAgents,
    MemberAgents,
    ActiveAgents,
    IntervalOffered,
    IntervalAnswered,
    IntervalAbandoned,
    ServiceLevelRatio,
    ServiceLevelTargetRatio,
    IntervalStart,
    OfferedTotal,
    AnsweredTotal,
    AbandonedTotal,
    AnswerWait,
    AbandonWait,
    Handle,
    DataAge,
    Source,
    Stale,
}

impl FamilyId {
    pub fn def(self) -> &'static FamilyDef {
        &FAMILIES[self as usize]
    }
}

/// One metric family.
#[derive(Debug)]
pub struct FamilyDef {
    pub id: FamilyId,
    /// Full name; for counters including `_total` (OpenMetrics headers drop it).
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// OpenMetrics `# UNIT`; the name must end with it.
    pub unit: Option<&'static str>,
    pub labels: LabelSet,
    pub value: ValueSource,
    pub part: Part,
}

/// How a queue's lines of a family are kept between a change and the scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Whole lines, formatted when the queue changes.
    Lines,
    /// Whole lines in `n` equal-length variants, one per value the scrape may pick (the effective source, the
    /// stale flag): formatted when the queue changes, chosen at scrape time.
    Variants(u8),
    /// Line heads formatted when the queue changes; the values move with the clock and are formatted at scrape
    /// time.
    Dynamic,
}

impl FamilyId {
    /// The family of an observation metric.
    pub fn of_obs(m: ObsMetric) -> FamilyId {
        match m {
            ObsMetric::Waiting => FamilyId::Waiting,
            ObsMetric::Alerting => FamilyId::Alerting,
            ObsMetric::Interacting => FamilyId::Interacting,
            ObsMetric::LongestWaiting => FamilyId::LongestWaiting,
            ObsMetric::LongestInteracting => FamilyId::LongestInteracting,
            ObsMetric::UserRoutingStatuses => FamilyId::Agents,
            ObsMetric::OnQueueUsers => FamilyId::OnQueueAgents,
            ObsMetric::UserPresences => FamilyId::PresenceAgents,
            ObsMetric::OffQueueUsers => FamilyId::OffQueueAgents,
            ObsMetric::MemberUsers => FamilyId::MemberAgents,
            ObsMetric::ActiveUsers => FamilyId::ActiveAgents,
        }
    }
}

impl FamilyDef {
    pub fn shape(&self) -> Shape {
        match self.value {
            ValueSource::Obs(m) if m.is_instant() => Shape::Dynamic,
            ValueSource::DataAge => Shape::Dynamic,
            ValueSource::Source => Shape::Variants(crate::model::Source::ALL.len() as u8),
            ValueSource::Stale => Shape::Variants(2),
            ValueSource::Obs(_)
            | ValueSource::Meta
            | ValueSource::Aggregate { .. }
            | ValueSource::IntervalStart
            | ValueSource::Counter(_)
            | ValueSource::Histogram(_) => Shape::Lines,
        }
    }

    /// The family name as OpenMetrics spells it in metadata lines (counters without `_total`).
    pub fn openmetrics_name(&self) -> &'static str {
        match self.kind {
            Kind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            Kind::Gauge | Kind::Histogram => self.name,
        }
    }
}

pub const FAMILY_COUNT: usize = 27;

const fn f(
    id: FamilyId,
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    labels: LabelSet,
    value: ValueSource,
    part: Part,
) -> FamilyDef {
    FamilyDef { id, name, help, kind: Kind::Gauge, unit, labels, value, part }
}

/// A counter per media type, shown while the queue's data is younger than `max_age` (not tied to the interval:
/// totals outlive it).
const fn counter(id: FamilyId, name: &'static str, help: &'static str, c: CounterMetric) -> FamilyDef {
    FamilyDef {
        id,
        name,
        help,
        kind: Kind::Counter,
        unit: None,
        labels: LabelSet::MediaType,
        value: ValueSource::Counter(c),
        part: Part::Observation,
    }
}

/// A histogram in seconds per media type, shown like the counters.
const fn histogram(id: FamilyId, name: &'static str, help: &'static str, h: HistogramMetric) -> FamilyDef {
    FamilyDef {
        id,
        name,
        help,
        kind: Kind::Histogram,
        unit: SECONDS,
        labels: LabelSet::MediaType,
        value: ValueSource::Histogram(h),
        part: Part::Observation,
    }
}

const SECONDS: Option<&str> = Some("seconds");
const RATIO: Option<&str> = Some("ratio");

/// Every queue family, in output order. `FAMILIES[id as usize].id == id` (tested).
pub static FAMILIES: [FamilyDef; FAMILY_COUNT] = {
    use FamilyId as F;
    use LabelSet as L;
    use Part as P;
    use ValueSource as V;
    [
        f(F::Info, "genesys_queue_info", "Static facts of a queue; value 1.", None, L::Division, V::Meta, P::Info),
        f(
            F::Waiting,
            "genesys_queue_waiting",
            "Conversations waiting in the queue (oWaiting).",
            None,
            L::MediaType,
            V::Obs(ObsMetric::Waiting),
            P::Observation,
        ),
        f(
            F::Alerting,
            "genesys_queue_alerting",
            "Conversations alerting an agent (oAlerting).",
            None,
            L::MediaType,
            V::Obs(ObsMetric::Alerting),
            P::Observation,
        ),
        f(
            F::Interacting,
            "genesys_queue_interacting",
            "Conversations connected to an agent (oInteracting).",
            None,
            L::MediaType,
            V::Obs(ObsMetric::Interacting),
            P::Observation,
        ),
        f(
            F::LongestWaiting,
            "genesys_queue_longest_waiting_seconds",
            "Seconds the longest-waiting conversation has waited; 0 when none waits.",
            SECONDS,
            L::MediaType,
            V::Obs(ObsMetric::LongestWaiting),
            P::Observation,
        ),
        f(
            F::LongestInteracting,
            "genesys_queue_longest_interacting_seconds",
            "Seconds the longest-interacting conversation has been connected; 0 when none is.",
            SECONDS,
            L::MediaType,
            V::Obs(ObsMetric::LongestInteracting),
            P::Observation,
        ),
        f(
            F::Agents,
            "genesys_queue_agents",
            "Queue members by routing status (oUserRoutingStatuses).",
            None,
            L::RoutingStatus,
            V::Obs(ObsMetric::UserRoutingStatuses),
            P::Observation,
        ),
        f(
            F::OnQueueAgents,
            "genesys_queue_on_queue_agents",
            "On-queue members by routing status (oOnQueueUsers).",
            None,
            L::RoutingStatus,
            V::Obs(ObsMetric::OnQueueUsers),
            P::Observation,
        ),
        f(
            F::PresenceAgents,
            "genesys_queue_presence_agents",
            "Queue members by presence (oUserPresences).",
            None,
            L::Presence,
            V::Obs(ObsMetric::UserPresences),
            P::Observation,
        ),
        f(
            F::OffQueueAgents,
            "genesys_queue_off_queue_agents",
            "Off-queue members by presence (oOffQueueUsers).",
            None,
            L::Presence,
            V::Obs(ObsMetric::OffQueueUsers),
            P::Observation,
        ),
        f(
            F::MemberAgents,
            "genesys_queue_member_agents",
            "Members of the queue (oMemberUsers).",
            None,
            L::None,
            V::Obs(ObsMetric::MemberUsers),
            P::Observation,
        ),
        f(
            F::ActiveAgents,
            "genesys_queue_active_agents",
            "Active members of the queue (oActiveUsers).",
            None,
            L::None,
            V::Obs(ObsMetric::ActiveUsers),
            P::Observation,
        ),
        f(
            F::IntervalOffered,
            "genesys_queue_interval_offered",
            "Conversations offered in the current 30-minute interval (nOffered).",
            None,
            L::MediaType,
            V::Aggregate { metric: "nOffered", stat: Stat::Count },
            P::Interval,
        ),
        f(
            F::IntervalAnswered,
            "genesys_queue_interval_answered",
            "Conversations answered in the current 30-minute interval (tAnswered count).",
            None,
            L::MediaType,
            V::Aggregate { metric: "tAnswered", stat: Stat::Count },
            P::Interval,
        ),
        f(
            F::IntervalAbandoned,
            "genesys_queue_interval_abandoned",
            "Conversations abandoned in the current 30-minute interval (tAbandon count).",
            None,
            L::MediaType,
            V::Aggregate { metric: "tAbandon", stat: Stat::Count },
            P::Interval,
        ),
        f(
            F::ServiceLevelRatio,
            "genesys_queue_service_level_ratio",
            "Service level of the current 30-minute interval, 0 to 1 (oServiceLevel ratio).",
            RATIO,
            L::MediaType,
            V::Aggregate { metric: "oServiceLevel", stat: Stat::Ratio },
            P::Interval,
        ),
        f(
            F::ServiceLevelTargetRatio,
            "genesys_queue_service_level_target_ratio",
            "Service level target of the queue, 0 to 1 (oServiceLevel target).",
            RATIO,
            L::MediaType,
            V::Aggregate { metric: "oServiceLevel", stat: Stat::Target },
            P::Interval,
        ),
        f(
            F::IntervalStart,
            "genesys_queue_interval_start_timestamp_seconds",
            "Unix time at which the queue's current aggregate interval started.",
            SECONDS,
            L::None,
            V::IntervalStart,
            P::Interval,
        ),
        counter(
            F::OfferedTotal,
            "genesys_queue_offered_total",
            "Conversations offered to the queue (growth of nOffered across intervals).",
            CounterMetric::Offered,
        ),
        counter(
            F::AnsweredTotal,
            "genesys_queue_answered_total",
            "Conversations answered (growth of the tAnswered count across intervals).",
            CounterMetric::Answered,
        ),
        counter(
            F::AbandonedTotal,
            "genesys_queue_abandoned_total",
            "Conversations abandoned (growth of the tAbandon count across intervals).",
            CounterMetric::Abandoned,
        ),
        histogram(
            F::AnswerWait,
            "genesys_queue_answer_wait_seconds",
            "Time in queue of answered conversations (tAnswered); buckets approximate when one update adds several.",
            HistogramMetric::AnswerWait,
        ),
        histogram(
            F::AbandonWait,
            "genesys_queue_abandon_wait_seconds",
            "Time in queue of abandoned conversations (tAbandon); buckets approximate when one update adds several.",
            HistogramMetric::AbandonWait,
        ),
        histogram(
            F::Handle,
            "genesys_queue_handle_seconds",
            "Handle time of conversations (tHandle); buckets approximate when one update adds several.",
            HistogramMetric::Handle,
        ),
        f(
            F::DataAge,
            "genesys_queue_data_age_seconds",
            "Seconds since any source last confirmed the queue's state.",
            SECONDS,
            L::None,
            V::DataAge,
            P::Freshness,
        ),
        f(
            F::Source,
            "genesys_queue_source",
            "Source serving the queue: 1 for the active one (stream, poll, none).",
            None,
            L::Source,
            V::Source,
            P::Freshness,
        ),
        f(
            F::Stale,
            "genesys_queue_stale",
            "1 when the queue's data is not confirmed by a healthy source, or older than the maximum age.",
            None,
            L::None,
            V::Stale,
            P::Freshness,
        ),
    ]
};

/// Family headers (`# HELP`/`# TYPE`[/`# UNIT`]), one per family, for one format; computed once.
pub fn headers(openmetrics: bool) -> Vec<Box<[u8]>> {
    FAMILIES
        .iter()
        .map(|d| {
            let mut h = Vec::with_capacity(64 + d.help.len());
            let name = if openmetrics { d.openmetrics_name() } else { d.name };
            h.extend_from_slice(b"# HELP ");
            h.extend_from_slice(name.as_bytes());
            h.push(b' ');
            crate::state::text::escape_help(&mut h, d.help, openmetrics);
            h.extend_from_slice(b"\n# TYPE ");
            h.extend_from_slice(name.as_bytes());
            h.push(b' ');
            h.extend_from_slice(d.kind.as_str().as_bytes());
            h.push(b'\n');
            if let (true, Some(unit)) = (openmetrics, d.unit) {
                h.extend_from_slice(b"# UNIT ");
                h.extend_from_slice(name.as_bytes());
                h.push(b' ');
                h.extend_from_slice(unit.as_bytes());
                h.push(b'\n');
            }
            h.into_boxed_slice()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_indexed_by_id() {
        for (i, d) in FAMILIES.iter().enumerate() {
            assert_eq!(d.id as usize, i, "{} is out of place", d.name);
            assert_eq!(d.id.def().name, d.name);
        }
    }

    #[test]
    fn names_are_unique_valid_and_carry_their_unit() {
        let mut seen = HashSet::new();
        for d in &FAMILIES {
            assert!(seen.insert(d.name), "duplicate {}", d.name);
            assert!(d.name.starts_with("genesys_queue_"));
            assert!(d.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            if let Some(unit) = d.unit {
                assert!(d.openmetrics_name().ends_with(&format!("_{unit}")), "{} lacks unit {unit}", d.name);
            }
            assert_eq!(d.kind == Kind::Counter, d.name.ends_with("_total"), "{}", d.name);
            assert!(!d.help.is_empty());
        }
    }

    #[test]
    fn every_observation_metric_has_its_family() {
        for d in &FAMILIES {
            if let ValueSource::Obs(m) = d.value {
                assert_eq!(FamilyId::of_obs(m), d.id, "{}", d.name);
            }
        }
    }

    #[test]
    fn openmetrics_headers_add_unit_and_prometheus_ones_do_not() {
        let om = headers(true);
        let prom = headers(false);
        let i = FamilyId::LongestWaiting as usize;
        let om_text = String::from_utf8_lossy(&om[i]);
        assert!(om_text.contains("# UNIT genesys_queue_longest_waiting_seconds seconds\n"), "{om_text}");
        assert!(!String::from_utf8_lossy(&prom[i]).contains("# UNIT"));
        assert!(String::from_utf8_lossy(&prom[FamilyId::Info as usize]).starts_with(
            "# HELP genesys_queue_info Static facts of a queue; value 1.\n# TYPE genesys_queue_info gauge\n"
        ));
    }
}
