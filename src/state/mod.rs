//! The queue store: the one place queue state lives between the collector and the exposition.
//!
//! One writer (the collector task) applies [`QueueUpdate`]s and directory changes; many readers (scrapes, later the
//! JSON API) read. Like kube-state-metrics' `MetricsStore`, each change re-renders the queue's static metric
//! families once, so a scrape only concatenates bytes and formats the few values that move with the clock. No I/O,
//! no wire types, and no metric name outside [`families::FAMILIES`].
//!
//! Locking: the writer mutates its private state under a `Mutex` and publishes an immutable [`QueueEntry`] per
//! queue in an ordered map under an `RwLock`. Readers clone the entries' `Arc`s under the read lock and format
//! after releasing it, so a slow client never holds up the writer. Both are std locks: nothing is awaited inside.

pub mod aggregates;
pub mod families;
mod queue;
pub mod render;
pub mod snapshot;
pub mod text;

use crate::model::{ChannelClock, QueueMeta, QueueUpdate, Source};
use queue::{MediaFilter, QueueState, SortKey};
use render::QueueEntry;
pub use render::{Freshness, RenderedQueue};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

/// What the store needs from the configuration.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Media types kept (`queues.media_types`); empty = all. Other media types are dropped on apply.
    pub media_types: Vec<String>,
    /// `freshness.max_age`: a queue whose state no source confirmed for longer shows no value series.
    pub max_age: Duration,
    /// `histograms.wait_buckets`: upper bounds in seconds of the wait and handle histograms (ascending; `+Inf`
    /// is implied). Unsorted, duplicate or non-finite bounds are dropped (the config validation rejects them).
    pub wait_buckets: Vec<f64>,
}

/// `histograms.wait_buckets`' default.
pub const DEFAULT_WAIT_BUCKETS: [f64; 11] = [5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0];

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            media_types: Vec::new(),
            max_age: Duration::from_secs(180),
            wait_buckets: DEFAULT_WAIT_BUCKETS.to_vec(),
        }
    }
}

/// An organization presence definition, to name the presence ids of `oUserPresences`/`oOffQueueUsers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceDef {
    pub id: String,
    /// Display name (`presence` label).
    pub name: String,
    /// System presence (`system_presence` label); normalised to lower snake case by the store.
    pub system_presence: String,
}

/// The labels a presence id resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PresenceLabels {
    pub name: String,
    pub system_presence: String,
}

pub(crate) type PresenceTable = HashMap<String, PresenceLabels>;

/// What [`Store::apply`] did, for the caller to count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The queue is not in the directory (another shard's, or removed): nothing was applied.
    pub unknown_queue: bool,
    /// A presence id without a definition was seen (labelled `unknown`): refresh the definitions.
    pub unknown_presence: bool,
    /// Aggregates for an interval older than the stored one were ignored.
    pub old_interval: bool,
    /// Values dropped: media type not configured, per-media value without a media type, qualified metric
    /// without a qualifier.
    pub filtered: usize,
    /// A rendered value changed.
    pub changed: bool,
}

/// What [`Store::set_queues`] changed (queue ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Name or division changed.
    pub renamed: Vec<String>,
}

/// A summary for the landing page and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSummary {
    pub queues: usize,
    /// Stale, including withdrawn.
    pub stale: usize,
    /// Older than `max_age`: values withdrawn.
    pub withdrawn: usize,
    pub stream: usize,
    pub poll: usize,
    pub none: usize,
    /// Distinct notification channels attached to queues.
    pub channels: usize,
    pub version: u64,
    /// Bytes of pre-rendered text.
    pub rendered_bytes: usize,
}

/// The exposition format, which decides the family headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text (without the final `# EOF`, which the caller writes after everything else).
    OpenMetrics,
}

/// The queue store. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    media: MediaFilter,
    max_age_ms: i64,
    /// Histogram bounds in seconds, strictly ascending and finite.
    buckets: Box<[f64]>,
    /// Family headers per format, computed once (index: `Format as usize`).
    headers: [Vec<Box<[u8]>>; 2],
    version: AtomicU64,
    writer: Mutex<Writer>,
    published: RwLock<BTreeMap<SortKey, Arc<QueueEntry>>>,
    /// JSON documents and the change log for the live API ([`snapshot`]).
    live: snapshot::Live,
}

struct Writer {
    queues: HashMap<String, QueueState>,
    /// Shared with the live view's documents; replaced whole.
    presence: Arc<PresenceTable>,
    /// Reused render buffers: each render then costs one exact allocation per part.
    scratch: render::Scratch,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("queues", &self.len()).field("version", &self.version()).finish()
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new(StoreConfig::default())
    }
}

/// A poisoned lock only means another thread panicked mid-update; the data is still the best we have, and a
/// scrape must not take the process down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        let max_age_ms = i64::try_from(config.max_age.as_millis()).unwrap_or(i64::MAX);
        let mut buckets: Vec<f64> = config.wait_buckets.into_iter().filter(|b| b.is_finite()).collect();
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        // Versions start at the creation time in µs, so those of an earlier process (which made fewer than a
        // million changes a second) lie below this one's: a stream client resuming across a restart with an old
        // event id gets a fresh snapshot instead of deltas against the wrong base. Below 2^53 (JS-safe) until 2255.
        let start = u64::try_from(crate::model::now_ms()).unwrap_or(0).saturating_mul(1000);
        Store {
            inner: Arc::new(Inner {
                media: MediaFilter(config.media_types),
                max_age_ms,
                buckets: buckets.into_boxed_slice(),
                headers: [families::headers(false), families::headers(true)],
                version: AtomicU64::new(start),
                writer: Mutex::new(Writer {
                    queues: HashMap::new(),
                    presence: Arc::default(),
                    scratch: Default::default(),
                }),
                published: RwLock::new(BTreeMap::new()),
                live: snapshot::Live::new(max_age_ms, start),
            }),
        }
    }

    /// Store-wide version: bumped by every change.
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Queues in the directory.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bump(&self) -> u64 {
        self.inner.version.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<SortKey, Arc<QueueEntry>>> {
        self.inner.published.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<SortKey, Arc<QueueEntry>>> {
        self.inner.published.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-render `q`'s text (when `rerender`), give it a new version and publish it.
    fn publish(&self, w: &mut Writer, id: &str, rerender: bool) {
        let version = self.bump();
        let Writer { queues, presence, scratch } = w;
        let Some(q) = queues.get_mut(id) else { return };
        if rerender {
            // Counter/histogram lines are formatted only for the media types whose totals changed.
            render::fill_totals_text(q, &self.inner.buckets, scratch);
            render::render(q, presence, scratch);
        }
        q.version = version;
        let entry = Arc::new(entry_of(q));
        self.inner.live.publish(version, q, presence, &entry);
        self.write().insert(q.key.clone(), entry);
    }

    /// Apply one update. A topic message (`complete == false`) upserts what it carries; a complete REST read
    /// replaces every observation value (what it omits becomes 0, or nobody for instant metrics). Aggregates of
    /// an interval older than the stored one are ignored; a newer interval replaces the older one. The queue's
    /// active source is the collector's to set ([`Store::set_source`]); an update only names it for a queue
    /// nothing confirmed before.
    pub fn apply(&self, update: QueueUpdate) -> ApplyOutcome {
        self.apply_at(update, crate::model::now_ms())
    }

    /// [`Store::apply`] with an explicit clock (tests, replay).
    pub fn apply_at(&self, update: QueueUpdate, now_ms: i64) -> ApplyOutcome {
        let mut outcome = ApplyOutcome::default();
        let mut w = lock(&self.inner.writer);
        let id = update.queue_id.clone();
        let Writer { queues, presence, .. } = &mut *w;
        let Some(q) = queues.get_mut(&id) else {
            outcome.unknown_queue = true;
            return outcome;
        };
        outcome.changed = q.merge(update, &self.inner.media, &self.inner.buckets, presence, now_ms, &mut outcome);
        self.publish(&mut w, &id, outcome.changed);
        outcome
    }

    /// Replace the directory with `queues`: new ones appear (source none, stale), missing ones are dropped with
    /// all their series, and a name or division change re-renders the queue's labels.
    pub fn set_queues(&self, queues: Vec<QueueMeta>) -> DirectoryChange {
        self.set_queues_at(queues, crate::model::now_ms())
    }

    /// [`Store::set_queues`] with an explicit clock.
    pub fn set_queues_at(&self, queues: Vec<QueueMeta>, now_ms: i64) -> DirectoryChange {
        let mut change = DirectoryChange::default();
        let mut w = lock(&self.inner.writer);
        let wanted: HashSet<String> = queues.iter().map(|q| q.id.clone()).collect();
        let gone: Vec<String> = w.queues.keys().filter(|id| !wanted.contains(*id)).cloned().collect();
        for id in gone {
            if let Some(q) = w.queues.remove(&id) {
                self.write().remove(&q.key);
                let version = self.bump();
                self.inner.live.remove(version, &id);
                change.removed.push(id);
            }
        }
        for meta in queues {
            let id = meta.id.clone();
            match w.queues.get_mut(&id) {
                Some(q) => {
                    let old_key = q.key.clone();
                    if q.set_meta(meta) {
                        if q.key != old_key {
                            self.write().remove(&old_key);
                        }
                        self.publish(&mut w, &id, true);
                        change.renamed.push(id);
                    }
                }
                None => {
                    w.queues.insert(id.clone(), QueueState::new(meta, now_ms));
                    self.publish(&mut w, &id, true);
                    change.added.push(id);
                }
            }
        }
        change.added.sort();
        change.removed.sort();
        change.renamed.sort();
        change
    }

    /// Replace the presence definitions, re-rendering the queues whose presence labels change.
    pub fn set_presence_definitions(&self, defs: Vec<PresenceDef>) {
        let table: PresenceTable = defs
            .into_iter()
            .map(|d| {
                let system = text::snake_case(&d.system_presence);
                let labels = PresenceLabels {
                    name: d.name,
                    system_presence: if system.is_empty() { render::UNKNOWN.to_owned() } else { system },
                };
                (d.id, labels)
            })
            .collect();
        let mut w = lock(&self.inner.writer);
        let affected: Vec<String> = w
            .queues
            .values()
            .filter(|q| q.presence_ids().any(|p| w.presence.get(p) != table.get(p)))
            .map(|q| q.meta.id.clone())
            .collect();
        w.presence = Arc::new(table);
        for id in affected {
            self.publish(&mut w, &id, true);
        }
    }

    /// Attach these queues to a notification channel's clock (`None` detaches): while a queue's source is
    /// `stream`, the channel's last frame confirms it.
    pub fn attach_channel(&self, queue_ids: &[String], clock: Option<Arc<ChannelClock>>) {
        let mut w = lock(&self.inner.writer);
        for id in queue_ids {
            let Some(q) = w.queues.get_mut(id) else { continue };
            let same = match (&q.clock, &clock) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                q.clock = clock.clone();
                self.publish(&mut w, id, false);
            }
        }
    }

    /// The source now serving the queue (decided by the collector).
    pub fn set_source(&self, queue_id: &str, source: Source) {
        let mut w = lock(&self.inner.writer);
        let Some(q) = w.queues.get_mut(queue_id) else { return };
        if q.source != source {
            q.source = source;
            self.publish(&mut w, queue_id, false);
        }
    }

    /// Mark the queue stale (its source is unhealthy) or not.
    pub fn set_stale(&self, queue_id: &str, stale: bool) {
        let mut w = lock(&self.inner.writer);
        let Some(q) = w.queues.get_mut(queue_id) else { return };
        if q.stale != stale {
            q.stale = stale;
            self.publish(&mut w, queue_id, false);
        }
    }

    /// The published entries, in output order (by queue name, then id). The lock is held only for the clone.
    fn snapshot(&self) -> Vec<Arc<QueueEntry>> {
        self.read().values().cloned().collect()
    }

    /// Append every queue family in `format` as of `now_ms` (without OpenMetrics' `# EOF`).
    pub fn write_text(&self, format: Format, now_ms: i64, out: &mut Vec<u8>) {
        let entries = self.snapshot();
        let headers = &self.inner.headers[format as usize];
        render::write_all(&entries, headers, now_ms, self.inner.max_age_ms, out);
    }

    /// Counts for the landing page.
    pub fn summary(&self, now_ms: i64) -> StoreSummary {
        let entries = self.snapshot();
        let mut s = StoreSummary { queues: entries.len(), version: self.version(), ..StoreSummary::default() };
        let mut clocks: HashSet<*const ChannelClock> = HashSet::new();
        for e in &entries {
            let f = e.freshness(now_ms, self.inner.max_age_ms);
            s.stale += usize::from(f.stale);
            s.withdrawn += usize::from(f.withdrawn);
            match f.source {
                Source::Stream => s.stream += 1,
                Source::Poll => s.poll += 1,
                Source::None => s.none += 1,
            }
            if let Some(c) = &e.clock {
                clocks.insert(Arc::as_ptr(c));
            }
            s.rendered_bytes += e.text.len();
        }
        s.channels = clocks.len();
        s
    }

    /// A queue's freshness and version, by id (for the collector's decisions and the JSON API).
    pub fn queue_freshness(&self, queue_id: &str, now_ms: i64) -> Option<(Freshness, u64)> {
        let w = lock(&self.inner.writer);
        let q = w.queues.get(queue_id)?;
        let e = entry_of(q);
        Some((e.freshness(now_ms, self.inner.max_age_ms), q.version))
    }
}

fn entry_of(q: &QueueState) -> QueueEntry {
    QueueEntry {
        text: q.text.clone(),
        source: q.source,
        stale: q.stale,
        last_update_ms: q.last_update_ms,
        added_ms: q.added_ms,
        clock: q.clock.clone(),
    }
}

#[cfg(test)]
mod tests;
