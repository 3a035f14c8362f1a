//! One queue's state and how an update merges into it.
//!
//! Pure data, owned by the store's single writer: no locks, no rendering, no clock reads (the caller passes `now`).

use super::aggregates::{MediaTotals, Step};
use super::render::{MediaTotalsText, RenderMemo, RenderedQueue};
use super::{ApplyOutcome, PresenceTable};
use crate::model::{AggregateStats, ChannelClock, ObsMetric, QueueMeta, QueueUpdate, Source};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where one observation value lives. `metric` sorts first so a family's values are one contiguous range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObsKey {
    pub metric: ObsMetric,
    /// Set only for per-media metrics.
    pub media: Option<Arc<str>>,
    /// Set only for qualified metrics (routing status or presence id, as Genesys spells it).
    pub qualifier: Option<Arc<str>>,
}

/// The aggregates of one media type's current interval.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IntervalAggs {
    /// `[start, end)` in epoch ms.
    pub interval: (i64, i64),
    pub values: AggValues,
}

/// (Genesys metric name, qualifier).
pub(crate) type AggKey = (String, Option<String>);

/// An interval's aggregates by key.
pub(crate) type AggValues = VecMap<AggKey, AggregateStats>;

/// A small map kept as a `Vec` sorted by key. For the few dozen entries of a queue's observations or of an
/// interval's aggregates, a `BTreeMap`'s nodes (eleven slots each, mostly empty) took about twice the entries' own
/// bytes: several KB per queue, and again per version the live view keeps. Same iteration order (by key).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap(Vec::new())
    }
}

impl<K: Ord, V> VecMap<K, V> {
    pub fn get(&self, k: &K) -> Option<&V> {
        self.0.binary_search_by(|(e, _)| e.cmp(k)).ok().map(|i| &self.0[i].1)
    }

    pub fn insert(&mut self, k: K, v: V) {
        match self.0.binary_search_by(|(e, _)| e.cmp(&k)) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (k, v)),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    pub fn iter(&self) -> <&Self as IntoIterator>::IntoIter {
        self.into_iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The entries from the first key not less than `from`, in key order.
    pub fn iter_from(&self, from: &K) -> impl Iterator<Item = (&K, &V)> {
        let start = self.0.partition_point(|(e, _)| e < from);
        self.0[start..].iter().map(|(k, v)| (k, v))
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

pub(crate) type ObsMap = VecMap<ObsKey, Option<f64>>;

/// The current intervals' aggregates, by media type.
pub(crate) type IntervalMap = BTreeMap<String, Arc<IntervalAggs>>;

/// The sort key of the published map: queues come out ordered by name, then id.
pub(crate) type SortKey = (Arc<str>, Arc<str>);

#[derive(Debug)]
pub(crate) struct QueueState {
    /// Shared with the live view's documents, like `obs` and `intervals`: a publish copies pointers, and a
    /// change copies the one map it touches (`Arc::make_mut`) while a document still holds the old one.
    pub meta: Arc<QueueMeta>,
    pub key: SortKey,
    /// Counts, or start instants (epoch ms) for instant metrics (`None` = nobody).
    pub obs: Arc<ObsMap>,
    /// By media type.
    pub intervals: Arc<IntervalMap>,
    /// Counters and histograms grown from the intervals, by media type. Unlike `intervals`, never withdrawn by
    /// an interval's end: they live as long as the queue is in the directory.
    pub totals: BTreeMap<String, MediaTotals>,
    /// The formatted lines of `totals`, by media type; an entry is dropped when its text would change.
    pub totals_text: BTreeMap<String, Arc<MediaTotalsText>>,
    pub last_update_ms: Option<i64>,
    /// Wall-clock time of the first update applied: the exporter has watched the queue since then, so an
    /// interval starting later happened entirely under its eyes (no baseline needed for it).
    pub watched_since_ms: Option<i64>,
    /// Start of an interval a complete aggregates read found empty for the media types it did not list.
    pub zero_read_interval: Option<i64>,
    /// The source of the last applied update (the active source is `source`, set by the collector).
    pub last_source: Source,
    pub source: Source,
    pub stale: bool,
    pub clock: Option<Arc<ChannelClock>>,
    /// When the queue entered the directory: the age base until something confirms it.
    pub added_ms: i64,
    pub version: u64,
    pub text: Arc<RenderedQueue>,
    /// What `text` was rendered from, so the next render formats only what changed.
    pub render_memo: RenderMemo,
}

/// Which media types are kept (empty = all).
#[derive(Debug, Clone, Default)]
pub(crate) struct MediaFilter(pub Vec<String>);

impl MediaFilter {
    pub fn allows(&self, media: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|m| m.eq_ignore_ascii_case(media))
    }
}

fn is_qualified(m: ObsMetric) -> bool {
    matches!(
        m,
        ObsMetric::UserRoutingStatuses | ObsMetric::OnQueueUsers | ObsMetric::UserPresences | ObsMetric::OffQueueUsers
    )
}

pub(crate) fn is_presence(m: ObsMetric) -> bool {
    matches!(m, ObsMetric::UserPresences | ObsMetric::OffQueueUsers)
}

impl QueueState {
    pub fn new(meta: QueueMeta, now_ms: i64) -> Self {
        let key: SortKey = (Arc::from(meta.name.as_str()), Arc::from(meta.id.as_str()));
        QueueState {
            meta: Arc::new(meta),
            key,
            obs: Arc::default(),
            intervals: Arc::default(),
            totals: BTreeMap::new(),
            totals_text: BTreeMap::new(),
            last_update_ms: None,
            watched_since_ms: None,
            zero_read_interval: None,
            last_source: Source::None,
            source: Source::None,
            // Nothing has confirmed a new queue yet.
            stale: true,
            clock: None,
            added_ms: now_ms,
            version: 0,
            text: Arc::new(RenderedQueue::default()),
            render_memo: RenderMemo::default(),
        }
    }

    /// Merge `update` (already known to be for this queue). Returns whether any rendered value changed.
    /// `buckets` are the histogram bounds in seconds.
    pub fn merge(
        &mut self,
        update: QueueUpdate,
        media: &MediaFilter,
        buckets: &[f64],
        presence: &PresenceTable,
        now_ms: i64,
        outcome: &mut ApplyOutcome,
    ) -> bool {
        let at = update.event_ms.unwrap_or(now_ms);
        self.last_update_ms = Some(self.last_update_ms.map_or(at, |t| t.max(at)));
        self.watched_since_ms.get_or_insert(now_ms);
        self.last_source = update.source;
        // The collector decides which source serves a queue (`set_source`); a REST reconcile of a queue the
        // stream serves must not flip it to `poll`. The first confirmation of a new queue names its source.
        if self.source == Source::None && update.source != Source::None {
            self.source = update.source;
        }

        let mut changed = false;
        let mut seen: Vec<ObsKey> = Vec::new();
        for group in update.groups {
            let group_media: Option<Arc<str>> = match group.media_type {
                Some(m) if !media.allows(&m) => {
                    outcome.filtered += group.observations.len() + group.aggregates.len();
                    continue;
                }
                m => m.map(Arc::from),
            };
            for o in group.observations {
                let key_media = if o.metric.per_media_type() {
                    match &group_media {
                        Some(m) => Some(m.clone()),
                        // A per-media metric without a media type has no series to go to.
                        None => {
                            outcome.filtered += 1;
                            continue;
                        }
                    }
                } else {
                    None
                };
                let qualifier = if is_qualified(o.metric) {
                    match o.qualifier {
                        Some(q) => Some(Arc::<str>::from(q)),
                        // An unqualified total would double-count next to the per-status series.
                        None => {
                            outcome.filtered += 1;
                            continue;
                        }
                    }
                } else {
                    None
                };
                if is_presence(o.metric) {
                    if let Some(q) = &qualifier {
                        if !presence.contains_key(&**q) {
                            outcome.unknown_presence = true;
                        }
                    }
                }
                let value = if o.metric.is_instant() { o.value } else { Some(o.value.unwrap_or(0.0)) };
                let key = ObsKey { metric: o.metric, media: key_media, qualifier };
                if update.complete {
                    seen.push(key.clone());
                }
                if self.obs.get(&key) != Some(&value) {
                    Arc::make_mut(&mut self.obs).insert(key, value);
                    changed = true;
                }
            }
            if let Some(interval) = group.interval {
                if group.aggregates.is_empty() {
                    if group_media.is_none() {
                        self.zero_read_interval = Some(interval.0);
                    }
                    continue;
                }
                let Some(m) = group_media else {
                    // Interval families are per media type; a queue-wide aggregate has no series to go to.
                    outcome.filtered += group.aggregates.len();
                    continue;
                };
                changed |= self.merge_interval(&m, interval, group.aggregates, buckets, outcome);
            }
        }

        if update.complete {
            // A complete read is the whole truth: what it does not mention is zero (counts) or nobody (instants).
            // Series once seen stay, at 0: wallboards want 0, not a gap.
            seen.sort();
            for (key, value) in Arc::make_mut(&mut self.obs).iter_mut() {
                if seen.binary_search(key).is_err() {
                    let zero = if key.metric.is_instant() { None } else { Some(0.0) };
                    if *value != zero {
                        *value = zero;
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    fn merge_interval(
        &mut self,
        media: &str,
        interval: (i64, i64),
        aggregates: Vec<crate::model::Aggregate>,
        buckets: &[f64],
        outcome: &mut ApplyOutcome,
    ) -> bool {
        // Counters and histograms first, while the aggregates are borrowed: they keep their own marks, and
        // their own view of which interval is current (the same as `intervals` below, which they outlive).
        let changed = match self.totals.get_mut(media) {
            None => {
                // First sight of this media type. An interval that started before the exporter watched the queue
                // is the baseline (series appear at 0: no jump at restart); one that started later happened
                // entirely while watching, so it counts from zero like a rollover.
                let watched = self.watched_since_ms.is_some_and(|t| t <= interval.0)
                    || self.zero_read_interval == Some(interval.0);
                let totals = if watched {
                    let mut t = MediaTotals::baseline(buckets, interval.0, &[]);
                    t.apply(buckets, interval.0, &aggregates);
                    t
                } else {
                    MediaTotals::baseline(buckets, interval.0, &aggregates)
                };
                self.totals.insert(media.to_owned(), totals);
                true
            }
            Some(t) => t.apply(buckets, interval.0, &aggregates) == Step::Changed,
        };
        if changed {
            self.totals_text.remove(media);
        }
        // Each media type's aggregates are shared on their own: the live view's documents keep old versions, and
        // a message about one media type then copies that media type's values, not every media type's.
        if !self.intervals.contains_key(media) {
            let fresh = Arc::new(IntervalAggs { interval, values: AggValues::default() });
            Arc::make_mut(&mut self.intervals).insert(media.to_owned(), fresh);
        }
        let Some(cur) = self.intervals.get(media) else { return changed };
        if interval.0 < cur.interval.0 {
            // A late message about an interval already superseded.
            outcome.old_interval = true;
            return changed;
        }
        // A newer interval replaces the old one's values wholesale.
        let newer = interval != cur.interval;
        let updates: Vec<(AggKey, AggregateStats)> = aggregates
            .into_iter()
            .map(|a| ((a.metric, a.qualifier), a.stats))
            .filter(|(k, stats)| newer || cur.values.get(k) != Some(stats))
            .collect();
        if !newer && updates.is_empty() {
            return changed;
        }
        let Some(slot) = Arc::make_mut(&mut self.intervals).get_mut(media) else { return changed };
        let entry = Arc::make_mut(slot);
        if newer {
            entry.interval = interval;
            entry.values.clear();
        }
        for (k, v) in updates {
            entry.values.insert(k, v);
        }
        entry.values.shrink_to_fit();
        true
    }

    /// The presence ids this queue's values mention.
    pub fn presence_ids(&self) -> impl Iterator<Item = &str> {
        self.obs.keys().filter(|k| is_presence(k.metric)).filter_map(|k| k.qualifier.as_deref())
    }

    /// Change the queue's listing facts. Returns whether the rendered labels change.
    pub fn set_meta(&mut self, meta: QueueMeta) -> bool {
        if *self.meta == meta {
            return false;
        }
        self.totals_text.clear();
        if self.meta.name != meta.name {
            self.key = (Arc::from(meta.name.as_str()), self.key.1.clone());
        }
        self.meta = Arc::new(meta);
        true
    }
}
