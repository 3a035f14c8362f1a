//! `genesys-cloud-exporter check`: prove a setup works before it runs. Obtains a token, exercises every permission
//! the exporter needs, counts the queues after filters and sharding, and estimates channels and API use. Every
//! problem comes with the fix in words.

use crate::collector::directory::{self, QueueFilter};
use crate::collector::seed::QUERY_BATCH;
use crate::collector::CollectorSettings;
use crate::genesys::models::{
    queue_observations_topic, ConversationAggregationQuery, QueryFilter, QueueObservationQuery,
};
use crate::genesys::{ApiClient, Error, Priority};
use serde::Serialize;
use std::fmt::Write as _;

/// One line of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckItem {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CheckReport {
    pub items: Vec<CheckItem>,
    pub queues_listed: usize,
    pub queues_selected: usize,
    pub channels_needed: usize,
    /// Expected REST requests per minute with healthy streams.
    pub requests_per_minute_streaming: f64,
    /// REST requests per minute if every queue had to be polled at `poll_interval`.
    pub requests_per_minute_polling: f64,
    /// The requests per minute the exporter may spend (`budget_share` × the token's limit).
    pub budget_per_minute: f64,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.items.iter().all(|i| i.ok)
    }

    fn push(&mut self, check: &'static str, ok: bool, detail: impl Into<String>, fix: Option<String>) {
        self.items.push(CheckItem { check, ok, detail: detail.into(), fix });
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for i in &self.items {
            let _ = writeln!(s, "[{}] {}: {}", if i.ok { " ok " } else { "FAIL" }, i.check, i.detail);
            if let Some(fix) = &i.fix {
                let _ = writeln!(s, "       fix: {fix}");
            }
        }
        let _ = writeln!(
            s,
            "\nqueues: {} listed, {} exported by this replica; notification channels: {}",
            self.queues_listed, self.queues_selected, self.channels_needed
        );
        let _ = writeln!(
            s,
            "API use: ~{:.1} requests/min with healthy streams ({:.1}% of the {:.0}/min budget); \
             ~{:.1} requests/min if every queue had to be polled",
            self.requests_per_minute_streaming,
            100.0 * self.requests_per_minute_streaming / self.budget_per_minute.max(1e-9),
            self.budget_per_minute,
            self.requests_per_minute_polling
        );
        let _ = writeln!(s, "{}", if self.ok() { "check passed" } else { "check FAILED" });
        s
    }
}

/// The permission a 403 on each endpoint points at.
fn permission_fix(endpoint: &str) -> String {
    let perm = match endpoint {
        "routing_queues" => "routing:queue:view",
        "presence_definitions" => "presence:presenceDefinition:view",
        "observations_query" | "notifications_subscriptions" => "analytics:queueObservation:view",
        "aggregates_query" => "analytics:conversationAggregate:view",
        _ => "the permission named in the error",
    };
    format!("grant the OAuth client's role the permission {perm}")
}

fn failure(e: &Error) -> (String, Option<String>) {
    match e {
        Error::Auth { .. } => (
            e.to_string(),
            Some(
                "check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (a client-credentials OAuth client) and the region"
                    .into(),
            ),
        ),
        Error::Forbidden { endpoint, .. } => (e.to_string(), Some(permission_fix(endpoint))),
        Error::Http { .. } => (e.to_string(), Some("check GENESYS_REGION / the base URLs and network access".into())),
        Error::RateLimited { .. } => {
            (e.to_string(), Some("the token's rate limit is exhausted; retry in a minute".into()))
        }
        _ => (e.to_string(), None),
    }
}

/// Run every check. `budget_share` is `api.budget_share`.
pub async fn run(api: &ApiClient, settings: &CollectorSettings, budget_share: f64) -> CheckReport {
    let mut r = CheckReport::default();

    match api.tokens().token().await {
        Ok(t) => {
            r.push("credentials", true, format!("token obtained, valid until unix {:.0}", t.expires_at_unix), None)
        }
        Err(e) => {
            let (d, f) = failure(&e);
            r.push("credentials", false, d, f);
            return r;
        }
    }

    let queues = match api.list_queues().await {
        Ok(q) => {
            r.push("queue listing", true, format!("{} queues listed", q.len()), None);
            q
        }
        Err(e) => {
            let (d, f) = failure(&e);
            r.push("queue listing", false, d, f);
            return r;
        }
    };
    r.queues_listed = queues.len();
    let filter = QueueFilter::new(&settings.include, &settings.exclude, &settings.divisions);
    let selected = directory::select(queues, &filter, settings.shard);
    r.queues_selected = selected.len();
    let per = settings.topics_per_channel.clamp(1, 1000);
    r.channels_needed = selected.len().div_ceil(per);
    let max = settings.max_channels.clamp(1, 20);
    if selected.is_empty() {
        r.push(
            "queue selection",
            false,
            "no queue matches queues.include/exclude/divisions and this shard".to_owned(),
            Some("widen queues.include, or check queues.divisions and --shard/--total-shards".into()),
        );
    } else if r.channels_needed > max {
        r.push(
            "queue selection",
            false,
            format!("{} queues need {} notification channels; Genesys allows {} per OAuth client", selected.len(), r.channels_needed, max),
            Some(format!(
                "run {} or more replicas with --shard/--total-shards, each with its own OAuth client, or narrow queues.include",
                r.channels_needed.div_ceil(max)
            )),
        );
    } else {
        r.push("queue selection", true, format!("{} queues on {} channels", selected.len(), r.channels_needed), None);
    }

    match api.presence_definitions().await {
        Ok(d) => r.push("presence definitions", true, format!("{} definitions", d.len()), None),
        Err(e) => {
            let (d, f) = failure(&e);
            r.push("presence definitions", false, d, f);
        }
    }

    let probe: Vec<&str> = selected.iter().take(1).map(|q| q.id.as_str()).collect();
    if let Some(&qid) = probe.first() {
        let q = QueueObservationQuery {
            filter: QueryFilter::queue_ids([qid]),
            metrics: vec!["oWaiting".into(), "oOnQueueUsers".into()],
            detail_metrics: None,
        };
        match api.observations_query(&q, Priority::Discovery).await {
            Ok(_) => r.push("observations query", true, "allowed", None),
            Err(e) => {
                let (d, f) = failure(&e);
                r.push("observations query", false, d, f);
            }
        }
        let now = crate::model::now_ms();
        let start = now - now.rem_euclid(1_800_000);
        let q = ConversationAggregationQuery {
            interval: crate::genesys::models::format_interval_ms(start, start + 1_800_000),
            group_by: Some(vec!["queueId".into()]),
            filter: Some(QueryFilter::queue_ids([qid])),
            metrics: vec!["nOffered".into()],
            ..Default::default()
        };
        match api.aggregates_query(&q, Priority::Discovery).await {
            Ok(_) => r.push("aggregates query", true, "allowed", None),
            Err(e) => {
                let (d, f) = failure(&e);
                r.push("aggregates query", false, d, f);
            }
        }
        // Notifications: subscribe one topic without ignoreErrors so a missing permission is a 403 here, then
        // remove the subscription again.
        match api.create_channel().await {
            Ok(ch) => {
                match api.put_subscriptions(&ch.id, &[queue_observations_topic(qid)], false).await {
                    Ok(t) if t.iter().any(|t| t.is_rejected()) => {
                        let t = t.into_iter().find(|t| t.is_rejected()).unwrap_or_default();
                        r.push(
                            "notifications",
                            false,
                            format!("topic {} rejected: {}", t.id, t.rejection_reason.unwrap_or_default()),
                            Some(if t.missing_permissions.is_empty() {
                                permission_fix("notifications_subscriptions")
                            } else {
                                format!("grant the OAuth client's role: {}", t.missing_permissions.join(", "))
                            }),
                        );
                    }
                    Ok(_) => {
                        r.push("notifications", true, "channel created and queue observations topic permitted", None)
                    }
                    Err(e) => {
                        let (d, f) = failure(&e);
                        r.push("notifications", false, d, f);
                    }
                }
                let _ = api.delete_subscriptions(&ch.id).await;
            }
            Err(e) => {
                let (d, f) = failure(&e);
                r.push("notifications", false, d, f);
            }
        }
    }

    // API use: with healthy streams, discovery (queue pages + presence) every refresh_interval, a full reconcile
    // read (observations + aggregates per batch) every reconcile_interval, and channel renewals (negligible).
    let n = selected.len();
    let batches = n.div_ceil(QUERY_BATCH) as f64;
    let pages = r.queues_listed.div_ceil(100).max(1) as f64 + 1.0;
    let per_min = |d: std::time::Duration| 60.0 / d.as_secs_f64().max(1.0);
    r.requests_per_minute_streaming =
        pages * per_min(settings.refresh_interval) + 2.0 * batches * per_min(settings.reconcile_interval);
    r.requests_per_minute_polling = 2.0 * batches * per_min(settings.poll_interval);
    r.budget_per_minute = api.budget().per_minute().max(300.0 * budget_share.clamp(0.0, 1.0));
    if r.requests_per_minute_streaming > r.budget_per_minute {
        r.push(
            "API budget",
            false,
            format!(
                "{:.1} requests/min needed with healthy streams, budget {:.0}/min",
                r.requests_per_minute_streaming, r.budget_per_minute
            ),
            Some("raise queues.refresh_interval and freshness.reconcile_interval, or api.budget_share".into()),
        );
    } else {
        r.push(
            "API budget",
            true,
            format!("{:.1} of {:.0} requests/min", r.requests_per_minute_streaming, r.budget_per_minute),
            None,
        );
    }
    r
}
