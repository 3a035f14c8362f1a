//! REST reads of queue state: the observations query (complete observation snapshots) and the aggregates query
//! (the current 30-minute interval), batched so that a whole channel's worth of queues costs a handful of calls.
//! Used to seed at start, re-seed after every (re)connect, poll stale queues and reconcile.

use crate::genesys::decode::{decode_aggregates, decode_observation_query, Decoded};
use crate::genesys::models::*;
use crate::genesys::{ApiClient, Error, Priority};
use crate::model::{GroupUpdate, QueueUpdate};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Queue-id predicates per query. Public clients report a 200-predicate limit (splunk/genesys_cloud_ta); 100
/// keeps responses small and leaves room.
pub const QUERY_BATCH: usize = 100;

const INTERVAL_MS: i64 = 30 * 60 * 1000;

/// Reads queue state over REST.
#[derive(Clone, Debug)]
pub struct Reader {
    api: ApiClient,
    /// `oLongestWaiting`/`oLongestInteracting` were added to the query in 2025; an org that rejects them gets the
    /// detail-observation form instead (the oldest `observationDate`).
    longest_metrics: Arc<AtomicBool>,
}

/// One batch's observations and interval aggregates.
#[derive(Debug, Default)]
pub struct ReadResult {
    pub observations: Vec<Decoded>,
    pub aggregates: Vec<QueueUpdate>,
}

impl Reader {
    pub fn new(api: ApiClient) -> Self {
        Reader { api, longest_metrics: Arc::new(AtomicBool::new(true)) }
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    fn observation_query(&self, ids: &[String]) -> QueueObservationQuery {
        let with_longest = self.longest_metrics.load(Ordering::Relaxed);
        let metrics = OBSERVATION_METRICS
            .iter()
            .filter(|m| with_longest || !m.starts_with("oLongest"))
            .map(|m| (*m).to_owned())
            .collect();
        QueueObservationQuery {
            filter: QueryFilter::queue_ids(ids.iter().map(String::as_str)),
            metrics,
            detail_metrics: (!with_longest).then(|| vec!["oWaiting".to_owned(), "oInteracting".to_owned()]),
        }
    }

    /// Complete observation snapshots of `ids` (any number; batched).
    pub async fn observations(&self, ids: &[String], priority: Priority) -> Result<Vec<Decoded>, Error> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(QUERY_BATCH) {
            let q = self.observation_query(batch);
            let resp = match self.api.observations_query(&q, priority).await {
                Err(Error::Status { status: 400, .. }) if self.longest_metrics.swap(false, Ordering::Relaxed) => {
                    tracing::warn!(
                        "observations query rejected oLongestWaiting/oLongestInteracting; using detail observations"
                    );
                    self.api.observations_query(&self.observation_query(batch), priority).await?
                }
                r => r?,
            };
            let now = crate::model::now_ms();
            let mut decoded = decode_observation_query(resp, now);
            // A queue the API returned nothing for is still a complete read: everything is zero.
            for id in batch {
                if !decoded.iter().any(|d| &d.update.queue_id == id) {
                    decoded.push(Decoded {
                        update: QueueUpdate {
                            queue_id: id.clone(),
                            source: crate::model::Source::Poll,
                            event_ms: Some(now),
                            complete: true,
                            groups: vec![],
                        },
                        unknown_metrics: vec![],
                        bad_metrics: vec![],
                    });
                }
            }
            out.extend(decoded);
        }
        Ok(out)
    }

    /// The current 30-minute interval's aggregates of `ids`, by queue and media type.
    pub async fn aggregates(&self, ids: &[String], priority: Priority) -> Result<Vec<QueueUpdate>, Error> {
        let now = crate::model::now_ms();
        let start = now - now.rem_euclid(INTERVAL_MS);
        let mut out = Vec::new();
        for batch in ids.chunks(QUERY_BATCH) {
            let q = ConversationAggregationQuery {
                interval: format_interval_ms(start, start + INTERVAL_MS),
                granularity: Some("PT30M".to_owned()),
                group_by: Some(vec!["queueId".to_owned(), "mediaType".to_owned()]),
                filter: Some(QueryFilter::queue_ids(batch.iter().map(String::as_str))),
                metrics: INTERVAL_METRICS.iter().map(|m| (*m).to_owned()).collect(),
                ..Default::default()
            };
            out.extend(decode_aggregates(self.api.aggregates_query(&q, priority).await?));
            // After the batch's data: the read was complete, so a media type it did not list had nothing yet.
            out.extend(batch.iter().map(|id| QueueUpdate {
                queue_id: id.clone(),
                source: crate::model::Source::Poll,
                event_ms: Some(now),
                complete: false,
                groups: vec![GroupUpdate {
                    media_type: None,
                    observations: vec![],
                    interval: Some((start, start + INTERVAL_MS)),
                    aggregates: vec![],
                }],
            }));
        }
        Ok(out)
    }

    /// Observations and aggregates together; a failed aggregates read does not discard the observations.
    pub async fn read(&self, ids: &[String], priority: Priority) -> Result<ReadResult, Error> {
        let observations = self.observations(ids, priority).await?;
        let aggregates = match self.aggregates(ids, priority).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(err = %e, queues = ids.len(), "aggregates query failed; interval metrics wait for the next read");
                Vec::new()
            }
        };
        Ok(ReadResult { observations, aggregates })
    }
}
