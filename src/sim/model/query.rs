//! The two analytics queries, answered from the model state (genesys-api.md §3 and §4).

use super::*;
use crate::genesys::models::{
    AggregateDataContainer, IntervalMetrics, MetricStats, ObservationDataContainer, ObservationMetricData,
    ObservationValue, QueryFilter, QueryPredicate, StatisticalSummary,
};

/// Genesys rejects larger filters (a documented-by-clients limit, genesys-api.md §3).
pub const MAX_PREDICATES: usize = 200;

/// `ConversationAggregationQuery` metric names (Java SDK enum, genesys-api.md §4): asking for one of them is valid
/// even when the simulator produces no data for it (it is then absent, as Genesys does).
const AGGREGATE_METRICS: &[&str] = &[
    "nBlindTransferred",
    "nBotInteractions",
    "nCobrowseSessions",
    "nConnected",
    "nConsult",
    "nConsultTransferred",
    "nError",
    "nOffered",
    "nOutbound",
    "nOutboundAbandoned",
    "nOutboundAttempted",
    "nOutboundConnected",
    "nOverSla",
    "nStateTransitionError",
    "nTransferred",
    "oExternalMediaCount",
    "oMediaCount",
    "oMessageCount",
    "oMessageSegmentCount",
    "oMessageTurn",
    "oServiceLevel",
    "oServiceTarget",
    "tAbandon",
    "tAcd",
    "tActiveCallback",
    "tActiveCallbackComplete",
    "tAcw",
    "tAgentResponseTime",
    "tAlert",
    "tAnswered",
    "tAverageAgentResponseTime",
    "tAverageCustomerResponseTime",
    "tBarging",
    "tCoaching",
    "tCoachingComplete",
    "tConnected",
    "tContacting",
    "tDialing",
    "tFirstConnect",
    "tFirstDial",
    "tFirstEngagement",
    "tFirstResponse",
    "tFlowOut",
    "tHandle",
    "tHeld",
    "tHeldComplete",
    "tIvr",
    "tMonitoring",
    "tMonitoringComplete",
    "tNotResponding",
    "tPark",
    "tParkComplete",
    "tShortAbandon",
    "tTalk",
    "tTalkComplete",
    "tUserResponseTime",
    "tVoicemail",
    "tWait",
];

const USER_METRICS: [&str; 6] =
    ["oUserRoutingStatuses", "oOnQueueUsers", "oUserPresences", "oOffQueueUsers", "oMemberUsers", "oActiveUsers"];

/// What a predicate is evaluated against: one group of one queue.
struct Subject<'a> {
    queue_id: &'a str,
    /// `None` for the user-metrics group, where a mediaType predicate does not apply (and so holds).
    media: Option<&'a str>,
    division_id: &'a str,
}

fn predicates(f: &QueryFilter) -> impl Iterator<Item = &QueryPredicate> {
    f.predicates.iter().flatten().chain(f.clauses.iter().flatten().flat_map(|c| c.predicates.iter()))
}

/// Reject what the model cannot evaluate, before looking at any data.
fn validate(f: &QueryFilter, dims: &[&str]) -> Result<(), QueryError> {
    let n = predicates(f).count();
    if n > MAX_PREDICATES {
        return Err(QueryError(format!("filter: {n} predicates, at most {MAX_PREDICATES} are allowed")));
    }
    let kind_ok = |k: &str| k.is_empty() || k.eq_ignore_ascii_case("and") || k.eq_ignore_ascii_case("or");
    if !kind_ok(&f.kind) {
        return Err(QueryError(format!("filter.type: {:?} is not and/or", f.kind)));
    }
    for c in f.clauses.iter().flatten() {
        if !kind_ok(&c.kind) {
            return Err(QueryError(format!("filter.clauses.type: {:?} is not and/or", c.kind)));
        }
    }
    for p in predicates(f) {
        if let Some(k) = p.kind.as_deref() {
            if !k.eq_ignore_ascii_case("dimension") {
                return Err(QueryError(format!("predicate type {k:?} is not supported here")));
            }
        }
        let Some(d) = p.dimension.as_deref() else {
            return Err(QueryError("predicate: dimension is required".into()));
        };
        if !dims.contains(&d) {
            return Err(QueryError(format!("predicate dimension {d:?} is not one of {dims:?}")));
        }
        match p.operator.as_deref().unwrap_or("matches") {
            "matches" if p.value.is_none() => {
                return Err(QueryError(format!("predicate on {d}: value is required for matches")))
            }
            "matches" | "exists" | "notExists" => {}
            op => return Err(QueryError(format!("predicate operator {op:?} is not matches/exists/notExists"))),
        }
    }
    Ok(())
}

fn eval_predicate(p: &QueryPredicate, s: &Subject<'_>) -> bool {
    let value = match p.dimension.as_deref() {
        Some("queueId") => Some(s.queue_id),
        Some("divisionId") => Some(s.division_id),
        Some("mediaType") => match s.media {
            Some(m) => Some(m),
            None => return true,
        },
        _ => None,
    };
    match p.operator.as_deref().unwrap_or("matches") {
        "exists" => value.is_some(),
        "notExists" => value.is_none(),
        _ => match (value, p.value.as_deref()) {
            (Some(v), Some(want)) if p.dimension.as_deref() == Some("mediaType") => v.eq_ignore_ascii_case(want),
            (Some(v), Some(want)) => v == want,
            _ => false,
        },
    }
}

fn combine(kind: &str, mut items: impl Iterator<Item = bool>) -> bool {
    if kind.eq_ignore_ascii_case("or") {
        // An empty `or` selects nothing only when there was something to choose from; treat it as no filter.
        let mut any_item = false;
        let hit = items.any(|b| {
            any_item = true;
            b
        });
        hit || !any_item
    } else {
        items.all(|b| b)
    }
}

fn eval(f: &QueryFilter, s: &Subject<'_>) -> bool {
    let preds = f.predicates.iter().flatten().map(|p| eval_predicate(p, s));
    let clauses =
        f.clauses.iter().flatten().map(|c| combine(&c.kind, c.predicates.iter().map(|p| eval_predicate(p, s))));
    combine(&f.kind, preds.chain(clauses))
}

impl Model {
    /// Queues the filter can select, in the order the filter names them (all queues, in creation order, when a
    /// queue the filter does not name could match, e.g. a mediaType-only filter).
    fn candidate_queues(&self, f: &QueryFilter) -> Vec<u32> {
        let unnamed = |media: Option<&str>| {
            eval(f, &Subject { queue_id: "\u{0}not-a-queue", media, division_id: "\u{0}not-a-division" })
        };
        let any_unnamed = unnamed(None) || self.media.iter().any(|&p| unnamed(Some(PROFILES[p].name)));
        if any_unnamed {
            return (0..self.queues.len() as u32).filter(|&i| self.queues[i as usize].alive).collect();
        }
        let mut seen = std::collections::HashSet::new();
        predicates(f)
            .filter(|p| p.dimension.as_deref() == Some("queueId"))
            .filter_map(|p| p.value.as_deref())
            .filter_map(|id| self.by_id.get(id).copied())
            .filter(|qi| seen.insert(*qi))
            .collect()
    }

    fn detail(&self, ms: &MediaState, metric: &str, c: u64, cap: usize) -> (bool, Vec<ObservationValue>) {
        let set = match metric {
            "oWaiting" => &ms.waiting,
            "oAlerting" => &ms.alerting,
            _ => &ms.interacting,
        };
        let voice_like = matches!(PROFILES[ms.profile].name, "voice" | "callback");
        let value = |&(start, conv): &(i64, u64)| {
            let agent = self
                .convs
                .get(&conv)
                .filter(|_| metric != "oWaiting")
                .map(|cv| self.agents[cv.agent as usize].id.clone());
            ObservationValue {
                observation_date: Some(models::format_time_ms(start)),
                conversation_id: Some(derived_uuid(self.cfg.seed, conv, 1)),
                session_id: Some(derived_uuid(self.cfg.seed, conv, 2)),
                routing_priority: Some(0),
                participant_name: Some(format!("Customer {conv}")),
                user_id: agent,
                direction: Some("inbound".to_owned()),
                ani: voice_like.then(|| format!("tel:+1555{:07}", conv % 10_000_000)),
                dnis: voice_like.then(|| "tel:+18005550100".to_owned()),
                used_routing: (metric != "oWaiting").then(|| "Standard".to_owned()),
                ..Default::default()
            }
        };
        if set.len() <= cap {
            return (false, set.iter().map(value).collect());
        }
        let _ = c;
        let oldest = cap / 2;
        let newest = cap - oldest;
        let list = set.iter().take(oldest).chain(set.iter().skip(set.len() - newest)).map(value).collect();
        (true, list)
    }

    /// `POST /api/v2/analytics/queues/observations/query`.
    ///
    /// One group `{queueId}` with the user metrics asked for (zero-count qualifiers omitted, member/active counts
    /// always) and one group `{queueId, mediaType}` per configured media type with the conversation metrics (count
    /// 0 included). `detailMetrics` adds `observations` (ascending `observationDate`, at most `detail_cap`, first
    /// half oldest, second half newest) and `truncated`. A metric only in `detailMetrics` is reported too.
    pub fn observations_query(&self, q: &QueueObservationQuery) -> Result<QueueObservationQueryResponse, QueryError> {
        if q.metrics.is_empty() {
            return Err(QueryError("metrics: may not be empty".into()));
        }
        let details: Vec<&str> = q.detail_metrics.iter().flatten().map(String::as_str).collect();
        let mut asked: Vec<&str> = Vec::new();
        for m in q.metrics.iter().map(String::as_str).chain(details.iter().copied()) {
            if !models::OBSERVATION_METRICS.contains(&m) {
                return Err(QueryError(format!("metrics: unknown metric {m:?}")));
            }
            if !asked.contains(&m) {
                asked.push(m);
            }
        }
        validate(&q.filter, &["queueId", "mediaType"])?;
        let user_asked: Vec<&str> = asked.iter().copied().filter(|m| USER_METRICS.contains(m)).collect();
        let conv_asked: Vec<&str> = asked.iter().copied().filter(|m| !USER_METRICS.contains(m)).collect();
        let count = |n: u64| StatisticalSummary { count: Some(n as f64), ..Default::default() };
        let mut results = Vec::new();
        for qi in self.candidate_queues(&q.filter) {
            let qs = &self.queues[qi as usize];
            let division_id = &self.divisions[qs.division].0;
            let subject = |media| Subject { queue_id: &qs.id, media, division_id };
            if !user_asked.is_empty() && eval(&q.filter, &subject(None)) {
                let u = &qs.user;
                let mut data = Vec::new();
                let mut push = |metric: &str, qualifier: Option<&str>, n: u32| {
                    data.push(ObservationMetricData {
                        metric: metric.to_owned(),
                        qualifier: qualifier.map(str::to_owned),
                        stats: count(u64::from(n)),
                        truncated: None,
                        observations: None,
                    })
                };
                for &metric in &user_asked {
                    match metric {
                        "oUserRoutingStatuses" | "oOnQueueUsers" => {
                            let v = if metric == "oOnQueueUsers" { &u.on_queue } else { &u.routing };
                            for (r, &n) in v.iter().enumerate().filter(|(_, n)| **n > 0) {
                                push(metric, Some(ROUTING_STATUSES[r]), n);
                            }
                        }
                        "oUserPresences" | "oOffQueueUsers" => {
                            let v = if metric == "oOffQueueUsers" { &u.off_queue } else { &u.presence };
                            for (p, &n) in v.iter().enumerate().filter(|(_, n)| **n > 0) {
                                push(metric, Some(&self.presences[p].id), n);
                            }
                        }
                        "oMemberUsers" => push(metric, None, u.members),
                        _ => push(metric, None, u.active),
                    }
                }
                results.push(ObservationDataContainer {
                    group: BTreeMap::from([("queueId".to_owned(), qs.id.clone())]),
                    data,
                });
            }
            if conv_asked.is_empty() {
                continue;
            }
            for ms in &qs.media {
                let media = PROFILES[ms.profile].name;
                if !eval(&q.filter, &subject(Some(media))) {
                    continue;
                }
                let c = ms.counts();
                let data = conv_asked
                    .iter()
                    .map(|&metric| {
                        let (n, longest) = match metric {
                            "oWaiting" => (c.waiting, None),
                            "oAlerting" => (c.alerting, None),
                            "oInteracting" => (c.interacting, None),
                            "oLongestWaiting" => (c.waiting, Some(c.longest_waiting)),
                            _ => (c.interacting, Some(c.longest_interacting)),
                        };
                        let mut stats = count(n);
                        if let Some(Some(start)) = longest {
                            stats.calculated_metric_value =
                                Some(longest_value(self.cfg.longest_form, start, self.now_ms) as f64);
                        } else if longest.is_some() {
                            stats.count = Some(0.0);
                        }
                        let (truncated, observations) = if longest.is_none() && details.contains(&metric) {
                            let (t, o) = self.detail(ms, metric, n, self.cfg.detail_cap);
                            (Some(t), Some(o))
                        } else {
                            (None, None)
                        };
                        ObservationMetricData {
                            metric: metric.to_owned(),
                            qualifier: None,
                            stats,
                            truncated,
                            observations,
                        }
                    })
                    .collect();
                results.push(ObservationDataContainer {
                    group: BTreeMap::from([
                        ("queueId".to_owned(), qs.id.clone()),
                        ("mediaType".to_owned(), media.to_owned()),
                    ]),
                    data,
                });
            }
        }
        let mut mappings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &self.presences {
            mappings.entry(p.system.clone()).or_default().push(p.id.clone());
        }
        Ok(QueueObservationQueryResponse { system_to_organization_mappings: Some(mappings), results })
    }

    /// `POST /api/v2/analytics/conversations/aggregates/query` (the current interval).
    ///
    /// Only the current 30-minute interval exists in the model: a query whose `interval` overlaps it gets that
    /// interval's data (reported with the bucket's own `start/end`), any other gets no results. `groupBy`:
    /// `queueId`, `mediaType`, `divisionId`; groups are summed (t* stats merged, service level recomputed from the
    /// summed numerator and denominator, `target` of the group's first queue/media). Metrics nothing produced are
    /// absent and a group without any is left out, as Genesys does.
    pub fn aggregates_query(
        &self,
        q: &ConversationAggregationQuery,
    ) -> Result<ConversationAggregateQueryResponse, QueryError> {
        if q.metrics.is_empty() {
            return Err(QueryError("metrics: may not be empty".into()));
        }
        for m in &q.metrics {
            if !AGGREGATE_METRICS.contains(&m.as_str()) {
                return Err(QueryError(format!("metrics: unknown metric {m:?}")));
            }
        }
        let Some((qs_ms, qe_ms)) = models::parse_interval_ms(&q.interval) else {
            return Err(QueryError(format!("interval: {:?} is not an ISO-8601 start/end", q.interval)));
        };
        if qe_ms <= qs_ms {
            return Err(QueryError("interval: end must be after start".into()));
        }
        const DIMS: [&str; 3] = ["queueId", "mediaType", "divisionId"];
        let group_by: Vec<&str> = q.group_by.iter().flatten().map(String::as_str).collect();
        if let Some(d) = group_by.iter().find(|d| !DIMS.contains(d)) {
            return Err(QueryError(format!("groupBy: {d:?} is not supported (one of {DIMS:?})")));
        }
        let filter = q.filter.clone().unwrap_or_default();
        validate(&filter, &DIMS)?;
        let start = interval_start(self.now_ms);
        let end = start + INTERVAL_MS;
        if !(qs_ms < end && qe_ms > start) {
            return Ok(ConversationAggregateQueryResponse::default());
        }
        let mut order: Vec<Vec<(String, String)>> = Vec::new();
        let mut sums: HashMap<Vec<(String, String)>, (Agg, f64)> = HashMap::new();
        for qi in self.candidate_queues(&filter) {
            let qs = &self.queues[qi as usize];
            let division_id = &self.divisions[qs.division].0;
            for ms in &qs.media {
                let media = PROFILES[ms.profile].name;
                if !eval(&filter, &Subject { queue_id: &qs.id, media: Some(media), division_id }) {
                    continue;
                }
                let agg = ms.agg.view(self.now_ms);
                if agg.is_empty() {
                    continue;
                }
                let key: Vec<(String, String)> = group_by
                    .iter()
                    .map(|&d| {
                        let v = match d {
                            "queueId" => qs.id.clone(),
                            "mediaType" => media.to_owned(),
                            _ => division_id.clone(),
                        };
                        (d.to_owned(), v)
                    })
                    .collect();
                match sums.get_mut(&key) {
                    Some((sum, _)) => sum.merge(&agg),
                    None => {
                        order.push(key.clone());
                        sums.insert(key, (agg, ms.sl_percentage));
                    }
                }
            }
        }
        let results = order
            .into_iter()
            .filter_map(|key| {
                let (agg, target) = &sums[&key];
                let produced = agg.metrics(*target);
                let metrics: Vec<MetricStats> = q
                    .metrics
                    .iter()
                    .filter_map(|m| produced.iter().find(|(n, _)| n == m))
                    .map(|(n, stats)| MetricStats { metric: (*n).to_owned(), qualifier: None, stats: *stats })
                    .collect();
                (!metrics.is_empty()).then(|| AggregateDataContainer {
                    group: key.into_iter().collect(),
                    data: vec![IntervalMetrics {
                        interval: models::format_interval_ms(start, end),
                        metrics,
                        views: None,
                    }],
                })
            })
            .collect();
        Ok(ConversationAggregateQueryResponse { results })
    }
}
