//! The live view of the store for `/api/v1/snapshot`, `/api/v1/stream` and `/status`.
//!
//! Every publish of a queue also records what its JSON document is made of (shared pointers to the queue's maps,
//! no copy) and appends a [`Change`] to a bounded log; the document itself is built on first read, once, so
//! ingest pays for JSON only when a client reads it; a removal appends a tombstone. Readers clone `Arc`s under a short read
//! lock and serialise after releasing it. The writer's cost does not depend on the number of readers: it pushes
//! to the log and wakes one task ([`Live::notified`]), the stream hub, which fans changes out to clients.
//!
//! A document never contains `null` (absent means none), so the difference of two documents is an RFC 7386 JSON
//! merge patch ([`merge_patch`]) and applying it ([`apply_merge_patch`]) gives the newer document back.

use super::queue::{IntervalAggs, ObsKey, ObsMap, QueueState};
use super::render::{Freshness, QueueEntry};
use super::{PresenceTable, Store};
use crate::model::{ObsMetric, QueueMeta, Source};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::Notify;

/// Changes kept at most for `?since=` readers and `Last-Event-ID` resume; an older position gets a full snapshot.
pub const LOG_CAPACITY: usize = 16 * 1024;

/// What the log may pin, estimated ([`weight_of`]): the old versions it keeps are whole documents with their maps
/// and, once read, their JSON trees, kilobytes each (tens with every media type's aggregates). Bounded by count
/// alone the log held 16,384 of them, hundreds of MB; by bytes it is bounded at any queue count and rate.
pub const LOG_BYTES: usize = 24 << 20;

/// Estimated heap bytes per element, measured with a counting allocator (`cargo bench --bench rss`'s
/// breakdown): an observation's entry, an aggregate's entry (key strings included), and their
/// members in the lazily built JSON document (a presence entry or an aggregate is an object of its own there,
/// one B-tree node each).
mod weight {
    pub const DOC: usize = 1024;
    pub const OBS: usize = 64;
    pub const AGG: usize = 208;
    pub const OBS_JSON: usize = 400;
    pub const AGG_JSON: usize = 960;
}

/// One queue's document as of its last publish.
#[derive(Debug)]
pub struct QueueDoc {
    pub id: Arc<str>,
    pub version: u64,
    /// Built from `src` on first read.
    doc: OnceLock<Value>,
    src: DocSource,
    /// The queue's freshness inputs, without its rendered text: the change log keeps thousands of old documents,
    /// and holding each one's text too (kilobytes per version) was most of the exporter's memory.
    entry: QueueEntry,
}

/// The queue's state as of the publish, shared with the writer (which copies a map only when it changes it).
#[derive(Debug)]
struct DocSource {
    meta: Arc<QueueMeta>,
    source: Source,
    stale: bool,
    last_update_ms: Option<i64>,
    added_ms: i64,
    obs: Arc<ObsMap>,
    intervals: Arc<BTreeMap<String, Arc<IntervalAggs>>>,
    presence: Arc<PresenceTable>,
}

impl QueueDoc {
    pub fn name(&self) -> &str {
        &self.src.meta.name
    }
    pub fn division(&self) -> &str {
        &self.src.meta.division
    }
    pub fn division_id(&self) -> &str {
        &self.src.meta.division_id
    }

    /// The tracked document (a JSON object without nulls).
    pub fn doc(&self) -> &Value {
        self.doc.get_or_init(|| document(&self.src, self.version))
    }

    /// Freshness at `now_ms` (channel clock included).
    pub fn freshness(&self, now_ms: i64, max_age_ms: i64) -> Freshness {
        self.entry.freshness(now_ms, max_age_ms)
    }

    /// The document with its serve-time fields (`data_age_seconds`, `withdrawn`), which deltas do not track.
    pub fn with_freshness(&self, now_ms: i64, max_age_ms: i64) -> Value {
        let f = self.freshness(now_ms, max_age_ms);
        let mut v = self.doc().clone();
        if let Value::Object(m) = &mut v {
            m.insert("data_age_seconds".into(), num(f.age_ms as f64 / 1000.0));
            m.insert("withdrawn".into(), Value::Bool(f.withdrawn));
        }
        v
    }
}

/// The empty text a [`QueueDoc`]'s freshness entry carries (one shared allocation).
fn no_text() -> Arc<super::render::RenderedQueue> {
    static EMPTY: std::sync::OnceLock<Arc<super::render::RenderedQueue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Arc::default).clone()
}

/// One store version: a queue published (`new`) or removed (`new == None`).
#[derive(Debug, Clone)]
pub struct Change {
    pub version: u64,
    pub id: Arc<str>,
    pub old: Option<Arc<QueueDoc>>,
    pub new: Option<Arc<QueueDoc>>,
}

/// What a `since` reader gets.
#[derive(Debug, Clone)]
pub enum Since {
    /// `since` is older than the log: here is everything, replace your state.
    Full(Vec<Arc<QueueDoc>>),
    /// Queues changed after `since` (current documents) and ids removed after it.
    Changed { queues: Vec<Arc<QueueDoc>>, removed: Vec<Arc<str>> },
}

#[derive(Debug, Default)]
struct LiveState {
    version: u64,
    docs: BTreeMap<Arc<str>, Arc<QueueDoc>>,
    log: VecDeque<Logged>,
    /// Every change with a version above this is in `log`.
    log_from: u64,
    /// Sum of the logged changes' weights.
    log_bytes: usize,
}

#[derive(Debug)]
struct Logged {
    change: Change,
    /// What the change makes the log pin (see [`weight_of`]).
    weight: usize,
}

/// The heap bytes a change makes the log pin, estimated: the maps its new version copied (shared ones are counted
/// once, by the version that made them) and, once a version is replaced and only the log still holds it, its
/// JSON tree if a reader built it (a stream client builds every one; without readers none is).
fn weight_of(new: Option<&QueueDoc>, old: Option<&QueueDoc>) -> usize {
    let mut w = weight::DOC;
    if let Some(o) = old.filter(|o| o.doc.get().is_some()) {
        w += o.src.obs.len() * weight::OBS_JSON + aggregates(&o.src) * weight::AGG_JSON;
    }
    let Some(n) = new else { return w };
    let o = old.map(|o| &o.src);
    if !o.is_some_and(|o| Arc::ptr_eq(&o.obs, &n.src.obs)) {
        w += n.src.obs.len() * weight::OBS;
    }
    for (m, a) in n.src.intervals.iter() {
        if !o.and_then(|o| o.intervals.get(m)).is_some_and(|oa| Arc::ptr_eq(oa, a)) {
            w += a.values.len() * weight::AGG;
        }
    }
    w
}

fn aggregates(src: &DocSource) -> usize {
    src.intervals.values().map(|a| a.values.len()).sum()
}

/// The live documents and change log (one per store).
#[derive(Debug)]
pub struct Live {
    state: RwLock<LiveState>,
    notify: Notify,
    max_age_ms: i64,
}

impl Live {
    /// `start`: the store's first version; anything below it is from another process and gets a full snapshot.
    pub(crate) fn new(max_age_ms: i64, start: u64) -> Self {
        let state = LiveState { version: start, log_from: start, ..LiveState::default() };
        Live { state: RwLock::new(state), notify: Notify::new(), max_age_ms }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, LiveState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, LiveState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `freshness.max_age` in ms.
    pub fn max_age_ms(&self) -> i64 {
        self.max_age_ms
    }

    /// The version of the newest change in the live view.
    pub fn version(&self) -> u64 {
        self.read().version
    }

    /// Resolves once a change was recorded after the previous call (one waiter: the stream hub).
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Changes in the log and their estimated weight in bytes (see [`LOG_BYTES`]).
    pub fn log_size(&self) -> (usize, usize) {
        let s = self.read();
        (s.log.len(), s.log_bytes)
    }

    /// Every queue, ordered by id, and the version they are current at.
    pub fn docs(&self) -> (u64, Vec<Arc<QueueDoc>>) {
        let s = self.read();
        (s.version, s.docs.values().cloned().collect())
    }

    /// What changed after `since`, and the current version.
    pub fn since(&self, since: u64) -> (u64, Since) {
        let s = self.read();
        if since < s.log_from {
            return (s.version, Since::Full(s.docs.values().cloned().collect()));
        }
        let ids: BTreeSet<&Arc<str>> =
            s.log.iter().rev().take_while(|l| l.change.version > since).map(|l| &l.change.id).collect();
        let mut queues = Vec::new();
        let mut removed = Vec::new();
        for id in ids {
            match s.docs.get(id) {
                Some(d) => queues.push(d.clone()),
                None => removed.push(id.clone()),
            }
        }
        (s.version, Since::Changed { queues, removed })
    }

    /// The changes after `since` (oldest first), or `None` when the log no longer reaches back that far.
    pub fn changes_since(&self, since: u64) -> Option<(u64, Vec<Change>)> {
        let s = self.read();
        if since < s.log_from {
            return None;
        }
        let n = s.log.iter().rev().take_while(|l| l.change.version > since).count();
        Some((s.version, s.log.iter().skip(s.log.len() - n).map(|l| l.change.clone()).collect()))
    }

    fn record(&self, change: Change, doc: Option<Arc<QueueDoc>>) -> Option<Arc<QueueDoc>> {
        let mut s = self.write();
        let old = match doc {
            Some(d) => s.docs.insert(change.id.clone(), d),
            None => s.docs.remove(&change.id),
        };
        s.version = s.version.max(change.version);
        let weight = weight_of(change.new.as_deref(), old.as_deref());
        s.log.push_back(Logged { change: Change { old: old.clone(), ..change }, weight });
        s.log_bytes += weight;
        // The newest change always stays, so a reader that keeps up never falls off the log.
        while s.log.len() > 1 && (s.log.len() > LOG_CAPACITY || s.log_bytes > LOG_BYTES) {
            if let Some(l) = s.log.pop_front() {
                s.log_from = l.change.version;
                s.log_bytes -= l.weight;
            }
        }
        drop(s);
        self.notify.notify_one();
        old
    }

    /// Hook of `Store::publish`: `q` got `version`.
    pub(crate) fn publish(&self, version: u64, q: &QueueState, presence: &Arc<PresenceTable>, entry: &Arc<QueueEntry>) {
        let src = DocSource {
            meta: q.meta.clone(),
            source: q.source,
            stale: q.stale,
            last_update_ms: q.last_update_ms,
            added_ms: q.added_ms,
            obs: q.obs.clone(),
            intervals: q.intervals.clone(),
            presence: presence.clone(),
        };
        let entry = QueueEntry {
            text: no_text(),
            source: entry.source,
            stale: entry.stale,
            last_update_ms: entry.last_update_ms,
            added_ms: entry.added_ms,
            clock: entry.clock.clone(),
        };
        let doc = Arc::new(QueueDoc { id: q.key.1.clone(), version, doc: OnceLock::new(), src, entry });
        let change = Change { version, id: doc.id.clone(), old: None, new: Some(doc.clone()) };
        self.record(change, Some(doc));
    }

    /// Hook of `Store::set_queues`: the queue left the directory at `version`.
    pub(crate) fn remove(&self, version: u64, id: &str) {
        let change = Change { version, id: Arc::from(id), old: None, new: None };
        self.record(change, None);
    }
}

impl Store {
    /// The live JSON view (snapshot API, stream, status page).
    pub fn live(&self) -> &Live {
        &self.inner.live
    }
}

/// A JSON number: integral values as integers (`3`, not `3.0`); non-finite values as 0.
pub fn num(v: f64) -> Value {
    if !v.is_finite() {
        return Value::from(0);
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

fn obj<'a>(m: &'a mut Map<String, Value>, k: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(k.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(o) => o,
        _ => unreachable!("just made an object"),
    }
}

fn add(m: &mut Map<String, Value>, k: &str, v: f64) {
    let cur = m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    m.insert(k.to_owned(), num(cur + v));
}

/// The tracked document of `q` (see docs/live-api.md for the schema).
fn document(q: &DocSource, version: u64) -> Value {
    let presence = &*q.presence;
    let mut d = Map::new();
    d.insert("id".into(), Value::from(q.meta.id.as_str()));
    d.insert("name".into(), Value::from(q.meta.name.as_str()));
    d.insert("division".into(), Value::from(q.meta.division.as_str()));
    d.insert("division_id".into(), Value::from(q.meta.division_id.as_str()));
    d.insert("version".into(), Value::from(version));
    d.insert("source".into(), Value::from(q.source.as_str()));
    d.insert("stale".into(), Value::Bool(q.stale));
    if let Some(t) = q.last_update_ms {
        d.insert("updated_at_ms".into(), Value::from(t));
    }
    d.insert("listed_at_ms".into(), Value::from(q.added_ms));
    let mut media = Map::new();
    let mut agents = Map::new();
    for (ObsKey { metric, media: m, qualifier }, value) in q.obs.iter() {
        if let Some(m) = m {
            let mm = obj(&mut media, m);
            let (field, instant) = match metric {
                ObsMetric::Waiting => ("waiting", false),
                ObsMetric::Alerting => ("alerting", false),
                ObsMetric::Interacting => ("interacting", false),
                ObsMetric::LongestWaiting => ("longest_waiting_start_ms", true),
                ObsMetric::LongestInteracting => ("longest_interacting_start_ms", true),
                _ => continue,
            };
            if instant {
                if let Some(v) = value {
                    mm.insert(field.into(), num(v.round()));
                }
            } else {
                add(mm, field, value.unwrap_or(0.0));
            }
            continue;
        }
        let v = value.unwrap_or(0.0);
        match (metric, qualifier) {
            (ObsMetric::UserRoutingStatuses, Some(s)) => {
                add(obj(&mut agents, "routing_status"), &super::text::snake_case(s), v)
            }
            (ObsMetric::OnQueueUsers, Some(s)) => add(obj(&mut agents, "on_queue"), &super::text::snake_case(s), v),
            (ObsMetric::UserPresences | ObsMetric::OffQueueUsers, Some(p)) => {
                let group = if *metric == ObsMetric::UserPresences { "presence" } else { "off_queue" };
                let (name, system) = presence.get(&**p).map_or((super::render::UNKNOWN, super::render::UNKNOWN), |l| {
                    (l.name.as_str(), l.system_presence.as_str())
                });
                let e = obj(obj(&mut agents, group), p);
                e.insert("presence".into(), Value::from(name));
                e.insert("system_presence".into(), Value::from(system));
                add(e, "agents", v);
            }
            (ObsMetric::MemberUsers, _) => add(&mut agents, "members", v),
            (ObsMetric::ActiveUsers, _) => add(&mut agents, "active", v),
            _ => {}
        }
    }
    for (m, aggs) in q.intervals.iter() {
        let mm = obj(&mut media, m);
        let mut iv = Map::new();
        iv.insert("start_ms".into(), Value::from(aggs.interval.0));
        iv.insert("end_ms".into(), Value::from(aggs.interval.1));
        let mut values = Map::new();
        for ((metric, qual), s) in aggs.values.iter() {
            let key = match qual {
                Some(q) => format!("{metric}:{q}"),
                None => metric.clone(),
            };
            let mut st = Map::new();
            for (k, v) in [
                ("count", s.count),
                ("sum", s.sum),
                ("min", s.min),
                ("max", s.max),
                ("ratio", s.ratio),
                ("numerator", s.numerator),
                ("denominator", s.denominator),
                ("target", s.target),
            ] {
                if let Some(v) = v {
                    st.insert(k.into(), num(v));
                }
            }
            values.insert(key, Value::Object(st));
        }
        iv.insert("aggregates".into(), Value::Object(values));
        mm.insert("interval".into(), Value::Object(iv));
    }
    d.insert("media".into(), Value::Object(media));
    d.insert("agents".into(), Value::Object(agents));
    Value::Object(d)
}

/// RFC 7386 merge patch turning `old` into `new` (both without nulls): changed members only, `null` for removed
/// members. `None` when they are equal.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut p = Map::new();
            for (k, bv) in b {
                match a.get(k) {
                    Some(av) => {
                        if let Some(d) = merge_patch(av, bv) {
                            p.insert(k.clone(), d);
                        }
                    }
                    None => {
                        p.insert(k.clone(), bv.clone());
                    }
                }
            }
            for k in a.keys() {
                if !b.contains_key(k) {
                    p.insert(k.clone(), Value::Null);
                }
            }
            (!p.is_empty()).then_some(Value::Object(p))
        }
        (a, b) if a == b => None,
        // A member that became an object replaces wholesale; a merge patch cannot express "object to object"
        // otherwise, and an empty object patch would be a no-op.
        (_, b) => Some(b.clone()),
    }
}

/// Apply an RFC 7386 merge patch.
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            apply_merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Aggregate, AggregateStats, GroupUpdate, QueueMeta, QueueUpdate};

    fn heavy_update(k: usize) -> QueueUpdate {
        let aggregates = (0..40)
            .map(|m| Aggregate {
                metric: format!("tMetric{m}"),
                qualifier: None,
                stats: AggregateStats { count: Some(k as f64), sum: Some(1.0), ..AggregateStats::default() },
            })
            .collect();
        let group = |media: &str| GroupUpdate {
            media_type: Some(media.to_owned()),
            observations: vec![],
            interval: Some((0, i64::MAX)),
            aggregates,
        };
        QueueUpdate {
            queue_id: "q1".into(),
            source: Source::Stream,
            event_ms: None,
            complete: false,
            groups: vec![group("voice")],
        }
    }

    #[test]
    fn the_log_is_bounded_by_the_bytes_it_pins_and_resumes_or_falls_back() {
        let store = Store::default();
        let meta = QueueMeta { id: "q1".into(), name: "Q".into(), division_id: "d".into(), division: "D".into() };
        store.set_queues(vec![meta]);
        let live = store.live();
        let start = live.version();
        let mut recent = start;
        for k in 0..LOG_CAPACITY {
            if k == LOG_CAPACITY - 10 {
                recent = live.version();
            }
            store.apply_at(heavy_update(k + 1), 0);
        }
        let (kept, bytes) = live.log_size();
        assert!(bytes <= LOG_BYTES, "{bytes} bytes estimated");
        assert!(kept < LOG_CAPACITY / 2, "heavy versions shorten the log: {kept} kept");
        // Each version copied its 40 aggregates: the estimate counts them, not just a pointer.
        assert!(bytes / kept >= 40 * weight::AGG, "{} bytes per change", bytes / kept);
        // A reader within the log gets what changed; one older than it gets everything.
        let (_, changes) = live.changes_since(recent).expect("recent position still in the log");
        assert_eq!(changes.len(), 10);
        assert!(changes.iter().all(|c| c.old.is_some() && c.new.is_some()));
        assert!(matches!(live.since(recent), (_, Since::Changed { queues, .. }) if queues.len() == 1));
        assert!(live.changes_since(start).is_none());
        assert!(matches!(live.since(start), (_, Since::Full(docs)) if docs.len() == 1));
    }

    #[test]
    fn a_version_that_shares_its_maps_weighs_only_its_document() {
        let store = Store::default();
        let meta = QueueMeta { id: "q1".into(), name: "Q".into(), division_id: "d".into(), division: "D".into() };
        store.set_queues(vec![meta]);
        store.apply_at(heavy_update(1), 0);
        let (n0, b0) = store.live().log_size();
        // Only the source changes: obs and aggregates stay shared with the previous version, which nobody read.
        store.set_source("q1", Source::Poll);
        let (n1, b1) = store.live().log_size();
        assert_eq!((n1, b1 - b0), (n0 + 1, weight::DOC), "shared maps are not counted again");
        // Once a reader built the current document, replacing it leaves its JSON tree to the log.
        let _ = store.live().docs().1[0].doc();
        store.set_stale("q1", false);
        let (_, b2) = store.live().log_size();
        assert_eq!(b2 - b1, weight::DOC + 40 * weight::AGG_JSON);
    }
}
