//! Rendering: each queue's static families once per change, and the family-major scrape output.
//!
//! A queue's families that only change when the queue does are rendered into one buffer (one allocation per
//! queue, not per family) with a slice per family, as kube-state-metrics does. A change formats only the
//! families whose inputs changed ([`RenderMemo`]) and copies the others from the queue's current text. A scrape
//! then copies slices and formats only what moves with the clock: data age and the longest-waiting/interacting
//! seconds (source and stale are pre-rendered in every variant). Sample lines are identical in Prometheus text
//! 0.0.4 and OpenMetrics 1.0; only the family headers differ.

use super::families::{FamilyDef, FamilyId, LabelSet, Part, Shape, Stat, ValueSource, FAMILIES, FAMILY_COUNT};
use super::queue::{IntervalMap, ObsKey, ObsMap, QueueState};
use super::text::{escape_label, write_float_label, write_int, write_ms_as_seconds, write_value};
use super::PresenceTable;
use crate::model::{ChannelClock, ObsMetric, QueueMeta, Source};
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::{Arc, Weak};

/// Label values of a presence id that no definition names.
pub(crate) const UNKNOWN: &str = "unknown";

/// A line whose value moves with the clock: its head (`name{labels} `) is pre-rendered, the value is written at
/// scrape time. `value` is a start instant (epoch ms: the line shows the seconds since), [`NOBODY`] (0) or
/// [`AGE`] (the queue's data age): one word, so a queue's lines fit inline in its text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct DynLine {
    head: (u32, u32),
    value: i64,
}

/// [`DynLine::value`] of a longest-waiting/interacting line when nobody waits or interacts.
const NOBODY: i64 = i64::MIN + 1;
/// [`DynLine::value`] of the data-age line.
const AGE: i64 = i64::MIN;

/// The [`DynLine::value`] of a start instant (`None`: nobody). Instants are clamped above the two markers.
fn since(start: Option<f64>) -> i64 {
    start.map_or(NOBODY, |s| (s as i64).max(NOBODY + 1))
}

/// Lines inline up to this many (a data age and the longest waiting and interacting of five media types).
const DYN_INLINE: usize = 11;

/// A queue's scrape-time lines, inline in its text when few, so sizing a scrape reads one allocation per queue.
#[derive(Debug, Default, PartialEq)]
struct DynLines {
    len: usize,
    inline: [DynLine; DYN_INLINE],
    /// All the lines, when more than fit inline.
    spill: Box<[DynLine]>,
}

impl DynLines {
    fn new(lines: &[DynLine]) -> Self {
        let mut d = DynLines { len: lines.len(), ..DynLines::default() };
        match d.inline.get_mut(..lines.len()) {
            Some(inline) => inline.copy_from_slice(lines),
            None => d.spill = Box::from(lines),
        }
        d
    }

    fn as_slice(&self) -> &[DynLine] {
        self.inline.get(..self.len).unwrap_or(&self.spill)
    }
}

/// The pre-rendered text of one queue. The fields a scrape sizes from come first and together (`repr(C)` keeps
/// the order): sizing 10,000 queues is then one run of cache lines per queue.
#[derive(Debug, Default, PartialEq)]
#[repr(C)]
pub struct RenderedQueue {
    /// Bytes family `i` takes in a scrape that shows it: its lines (with the shared counter and histogram
    /// lines), one variant, or the heads of its scrape-time lines (values not counted).
    sizes: [u32; FAMILY_COUNT],
    /// End of the queue's latest aggregate interval: interval families are withdrawn once it has passed.
    interval_end: Option<i64>,
    /// Scrape-time lines, in family order; family `i`'s are `dynamic[dyn_bounds[i]..dyn_bounds[i + 1]]`.
    dyn_bounds: [u32; FAMILY_COUNT + 1],
    dynamic: DynLines,
    /// Family `i` is `buf[bounds[i]..bounds[i + 1]]`.
    bounds: [u32; FAMILY_COUNT + 1],
    /// Every family's bytes in table order: whole lines, all variants of a variant family, line heads of the
    /// scrape-time families.
    buf: Box<[u8]>,
    /// The counter and histogram lines of each media type (in media order), shared with the queue state's cache
    /// and with earlier renders: a change elsewhere re-renders none of them, an aggregate message one.
    totals: Arc<[Arc<MediaTotalsText>]>,
}

impl RenderedQueue {
    /// Family `i`'s pre-rendered bytes, in one or (counters and histograms: one per media type) more parts.
    fn family_parts(&self, i: usize, mut f: impl FnMut(&[u8])) {
        if (TOTALS_FIRST..TOTALS_FIRST + TOTALS_COUNT).contains(&i) {
            self.totals.iter().for_each(|t| f(t.slot(i - TOTALS_FIRST)));
        } else {
            f(&self.buf[self.bounds[i] as usize..self.bounds[i + 1] as usize]);
        }
    }

    fn dynamic(&self, i: usize) -> &[DynLine] {
        &self.dynamic.as_slice()[self.dyn_bounds[i] as usize..self.dyn_bounds[i + 1] as usize]
    }

    /// Bytes held (for the summary and tests).
    pub fn len(&self) -> usize {
        self.buf.len() + self.totals.iter().map(|t| t.buf.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn resolve<'a>(presence: &'a PresenceTable, id: &str) -> (&'a str, &'a str) {
    presence.get(id).map_or((UNKNOWN, UNKNOWN), |p| (p.name.as_str(), p.system_presence.as_str()))
}

fn open_line(buf: &mut Vec<u8>, name: &str, prefix_end: usize) {
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'{');
    buf.extend_from_within(..prefix_end);
}

/// `open_line` for a histogram's `_bucket`/`_sum`/`_count` samples.
fn open_suffixed(buf: &mut Vec<u8>, name: &str, suffix: &str, prefix_end: usize) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(suffix.as_bytes());
    buf.push(b'{');
    buf.extend_from_within(..prefix_end);
}

fn close_int(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(b"} ");
    write_int(buf, i64::try_from(value).unwrap_or(i64::MAX));
    buf.push(b'\n');
}

fn label(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.push(b',');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"=\"");
    escape_label(buf, value);
    buf.push(b'"');
}

fn close_line(buf: &mut Vec<u8>, value: f64) {
    buf.extend_from_slice(b"} ");
    write_value(buf, value);
    buf.push(b'\n');
}

/// Append the head of a scrape-time line (`name{queue labels[,extra]} `) and remember it. Offsets are relative
/// to the end of the queue-label prefix, which is cut off the final buffer.
fn push_head(
    buf: &mut Vec<u8>,
    prefix_end: usize,
    dynamic: &mut Vec<DynLine>,
    name: &str,
    extra: Option<(&str, &str)>,
    value: i64,
) {
    let from = buf.len() - prefix_end;
    open_line(buf, name, prefix_end);
    if let Some((k, v)) = extra {
        label(buf, k, v);
    }
    buf.extend_from_slice(b"} ");
    dynamic.push(DynLine { head: (from as u32, (buf.len() - prefix_end) as u32), value });
}

/// `queue_id="…",queue="…"`: the labels that open every line of the queue.
fn queue_labels(buf: &mut Vec<u8>, q: &QueueState) {
    buf.extend_from_slice(b"queue_id=\"");
    escape_label(buf, &q.meta.id);
    buf.extend_from_slice(b"\",queue=\"");
    escape_label(buf, &q.meta.name);
    buf.push(b'"');
}

/// Index of the first counter/histogram family: [`MediaTotalsText`] slot `k` is family `TOTALS_FIRST + k`.
const TOTALS_FIRST: usize = FamilyId::OfferedTotal as usize;
const TOTALS_COUNT: usize = FamilyId::Handle as usize + 1 - TOTALS_FIRST;

/// One media type's counter and histogram lines (up to ~40), kept between renders: an aggregate message
/// changes one media type, so only its lines are formatted again and the others are copied.
#[derive(Debug, PartialEq)]
pub(crate) struct MediaTotalsText {
    buf: Box<[u8]>,
    bounds: [u32; TOTALS_COUNT + 1],
}

impl MediaTotalsText {
    fn slot(&self, k: usize) -> &[u8] {
        &self.buf[self.bounds[k] as usize..self.bounds[k + 1] as usize]
    }
}

/// Format the counter and histogram lines of every media type whose text was dropped (by a change of its
/// totals or of the queue's labels). Runs before [`render`], which then only copies.
pub(crate) fn fill_totals_text(q: &mut QueueState, buckets: &[f64], scratch: &mut Scratch) {
    let QueueState { totals, totals_text, .. } = &mut *q;
    // `totals_text` only ever holds media types of `totals`, which never loses one: the same count is the same
    // keys, and nothing to format.
    if totals.len() == totals_text.len() {
        return;
    }
    q.render_memo.totals_filled = true;
    let buf = &mut scratch.bytes;
    buf.clear();
    queue_labels(buf, q);
    let prefix_end = buf.len();
    let QueueState { totals, totals_text, .. } = &mut *q;
    for (media, t) in totals.iter() {
        if totals_text.contains_key(media) {
            continue;
        }
        buf.truncate(prefix_end);
        let mut bounds = [0u32; TOTALS_COUNT + 1];
        for (k, def) in FAMILIES[TOTALS_FIRST..TOTALS_FIRST + TOTALS_COUNT].iter().enumerate() {
            bounds[k] = (buf.len() - prefix_end) as u32;
            match def.value {
                ValueSource::Counter(c) => {
                    open_line(buf, def.name, prefix_end);
                    label(buf, "media_type", media);
                    close_int(buf, t.counter(c));
                }
                ValueSource::Histogram(h) => {
                    let hist = t.histogram(h);
                    // `le` as OpenMetrics' canonical float (`5.0`), which the 0.0.4 text reads as the same number
                    // (and Prometheus 3 normalises to): one spelling for both formats.
                    for (i, cum) in hist.cumulative().enumerate() {
                        open_suffixed(buf, def.name, "_bucket", prefix_end);
                        label(buf, "media_type", media);
                        buf.extend_from_slice(b",le=\"");
                        match buckets.get(i) {
                            Some(&b) => write_float_label(buf, b),
                            None => buf.extend_from_slice(b"+Inf"),
                        }
                        buf.push(b'"');
                        close_int(buf, cum);
                    }
                    open_suffixed(buf, def.name, "_sum", prefix_end);
                    label(buf, "media_type", media);
                    close_line(buf, hist.sum_ms / 1000.0);
                    open_suffixed(buf, def.name, "_count", prefix_end);
                    label(buf, "media_type", media);
                    close_int(buf, hist.count);
                }
                _ => {}
            }
        }
        bounds[TOTALS_COUNT] = (buf.len() - prefix_end) as u32;
        totals_text.insert(media.clone(), Arc::new(MediaTotalsText { buf: Box::from(&buf[prefix_end..]), bounds }));
    }
}

/// Which families a render formats; the others are copied from the queue's current text.
type Dirty = [bool; FAMILY_COUNT];

const OBS_METRICS: usize = ObsMetric::ALL.len();

/// The observation value a memo compares: `Option<f64>` as one word (`None` as a NaN no JSON number or
/// difference of finite instants produces).
fn value_bits(v: Option<f64>) -> u64 {
    v.map_or(0x7ff8_0000_dead_beef, f64::to_bits)
}

/// `w` still names the allocation `a` points to.
fn same<T>(w: &Weak<T>, a: &Arc<T>) -> bool {
    std::ptr::eq(w.as_ptr(), Arc::as_ptr(a))
}

/// What a queue's current text was rendered from, so that the next render formats only the families whose
/// inputs changed and copies the others from the current text (an observation message changes two or three of
/// ~20 families).
///
/// Exact, not a hash. The shared maps are compared by allocation: while a `Weak` names an allocation,
/// `Arc::make_mut` cannot change it in place (it moves or clones the map to a new one) and the address cannot be
/// reused, so the same pointer is the same content. Within the observation map, each metric's values are
/// compared in key order; keys are only ever added (a series once seen stays, at 0), so the same number of keys
/// of a metric is the same keys.
#[derive(Debug, Default)]
pub(crate) struct RenderMemo {
    text: Weak<RenderedQueue>,
    meta: Weak<QueueMeta>,
    presence: Weak<PresenceTable>,
    obs: Weak<ObsMap>,
    intervals: Weak<IntervalMap>,
    /// Every observation value of `obs`, in key order.
    obs_values: Vec<u64>,
    /// Keys of `obs` per metric (`ObsMetric as usize`).
    obs_counts: [u32; OBS_METRICS],
    /// [`fill_totals_text`] formatted a media type's counter and histogram lines since the last render.
    totals_filled: bool,
}

impl RenderMemo {
    /// Mark what changed since the last render and remember the inputs of this one.
    fn changes(&mut self, q: &QueueState, presence: &Arc<PresenceTable>) -> Dirty {
        let full = !same(&self.text, &q.text) || !same(&self.meta, &q.meta);
        let mut dirty = [full; FAMILY_COUNT];
        if std::mem::take(&mut self.totals_filled) {
            for d in &mut dirty[TOTALS_FIRST..TOTALS_FIRST + TOTALS_COUNT] {
                *d = true;
            }
        }
        if !same(&self.obs, &q.obs) {
            self.diff_obs(&q.obs, &mut dirty);
            self.obs = Arc::downgrade(&q.obs);
        }
        if !same(&self.presence, presence) {
            dirty[FamilyId::PresenceAgents as usize] = true;
            dirty[FamilyId::OffQueueAgents as usize] = true;
            self.presence = Arc::downgrade(presence);
        }
        if !same(&self.intervals, &q.intervals) {
            for def in &FAMILIES {
                if matches!(def.value, ValueSource::Aggregate { .. } | ValueSource::IntervalStart) {
                    dirty[def.id as usize] = true;
                }
            }
            self.intervals = Arc::downgrade(&q.intervals);
        }
        self.meta = Arc::downgrade(&q.meta);
        dirty
    }

    /// Mark the families of the metrics whose values differ from the memo's, and record the new values.
    fn diff_obs(&mut self, obs: &ObsMap, dirty: &mut Dirty) {
        let mut counts = [0u32; OBS_METRICS];
        for k in obs.keys() {
            counts[k.metric as usize] += 1;
        }
        // Where each metric's values start in the memo.
        let mut old_start = [0usize; OBS_METRICS];
        let mut at = 0;
        for (m, start) in old_start.iter_mut().enumerate() {
            *start = at;
            at += self.obs_counts[m] as usize;
        }
        let mut seen = [0usize; OBS_METRICS];
        let mut changed = [false; OBS_METRICS];
        for (k, v) in obs.iter() {
            let m = k.metric as usize;
            if counts[m] != self.obs_counts[m] {
                changed[m] = true;
            } else if !changed[m] {
                changed[m] = self.obs_values.get(old_start[m] + seen[m]) != Some(&value_bits(*v));
            }
            seen[m] += 1;
        }
        for m in ObsMetric::ALL {
            if changed[m as usize] {
                dirty[FamilyId::of_obs(m) as usize] = true;
            }
        }
        self.obs_values.clear();
        self.obs_values.extend(obs.values().map(|v| value_bits(*v)));
        self.obs_counts = counts;
    }
}

/// The writer's reusable buffers: a render then costs one exact allocation per part of its result.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    bytes: Vec<u8>,
    dynamic: Vec<DynLine>,
}

/// Render `q`'s text and make it the queue's current text. Families whose inputs did not change since the last
/// render are copied from the current text; the others are formatted. The counter and histogram families are
/// not formatted here: they are shared from the queue's per-media cache, which [`fill_totals_text`] must have
/// completed.
pub(crate) fn render(q: &mut QueueState, presence: &Arc<PresenceTable>, scratch: &mut Scratch) {
    let mut memo = std::mem::take(&mut q.render_memo);
    let dirty = memo.changes(q, presence);
    let text = Arc::new(build(q, presence, &dirty, &q.text, scratch));
    #[cfg(test)]
    {
        // Every unit test of the store also checks that the incremental render equals a full one.
        let full = build(q, presence, &[true; FAMILY_COUNT], &RenderedQueue::default(), scratch);
        assert_eq!(*text, full, "incremental render differs from a full render (dirty: {dirty:?})");
    }
    memo.text = Arc::downgrade(&text);
    q.render_memo = memo;
    q.text = text;
}

/// Render `q`'s text into a new [`RenderedQueue`]: families marked in `dirty` are formatted, the others copied
/// from `old` (the queue's current text, which `dirty` was computed against).
fn build(
    q: &QueueState,
    presence: &PresenceTable,
    dirty: &Dirty,
    old: &RenderedQueue,
    scratch: &mut Scratch,
) -> RenderedQueue {
    let Scratch { bytes: buf, dynamic } = scratch;
    buf.clear();
    dynamic.clear();
    queue_labels(buf, q);
    // The queue labels open every line; they are copied from here and cut off at the end.
    let prefix_end = buf.len();

    // The latest interval over all media types; media types still on an older one are not current.
    let latest = q.intervals.values().map(|a| a.interval).max_by_key(|i| i.0);
    let mut bounds = [0u32; FAMILY_COUNT + 1];
    let mut dyn_bounds = [0u32; FAMILY_COUNT + 1];
    for def in &FAMILIES {
        let i = def.id as usize;
        bounds[i] = (buf.len() - prefix_end) as u32;
        dyn_bounds[i] = dynamic.len() as u32;
        if dirty[i] {
            render_family(def, q, presence, latest, buf, prefix_end, dynamic);
        } else {
            // Same inputs as the current text: copy its lines, moving the scrape-time heads with them.
            let from = old.bounds[i];
            let to = bounds[i];
            buf.extend_from_slice(&old.buf[from as usize..old.bounds[i + 1] as usize]);
            dynamic.extend(
                old.dynamic(i)
                    .iter()
                    .map(|l| DynLine { head: (l.head.0 - from + to, l.head.1 - from + to), value: l.value }),
            );
        }
    }
    bounds[FAMILY_COUNT] = (buf.len() - prefix_end) as u32;
    dyn_bounds[FAMILY_COUNT] = dynamic.len() as u32;
    // The shared counter and histogram lines: the current text's list unless a media type's lines changed.
    let totals: Arc<[Arc<MediaTotalsText>]> = if dirty[TOTALS_FIRST..TOTALS_FIRST + TOTALS_COUNT].contains(&true) {
        q.totals.keys().filter_map(|m| q.totals_text.get(m).cloned()).collect()
    } else {
        old.totals.clone()
    };
    let mut sizes = [0u32; FAMILY_COUNT];
    for (i, def) in FAMILIES.iter().enumerate() {
        let own = bounds[i + 1] - bounds[i];
        sizes[i] = match def.shape() {
            Shape::Lines if (TOTALS_FIRST..TOTALS_FIRST + TOTALS_COUNT).contains(&i) => {
                totals.iter().map(|t| t.slot(i - TOTALS_FIRST).len() as u32).sum()
            }
            Shape::Lines => own,
            Shape::Variants(n) => own / u32::from(n),
            Shape::Dynamic => {
                dynamic[dyn_bounds[i] as usize..dyn_bounds[i + 1] as usize].iter().map(|l| l.head.1 - l.head.0).sum()
            }
        };
    }
    RenderedQueue {
        buf: Box::from(&buf[prefix_end..]),
        bounds,
        dynamic: DynLines::new(dynamic),
        dyn_bounds,
        sizes,
        interval_end: latest.map(|(_, end)| end),
        totals,
    }
}

/// The observations of metric `m`, in key order.
fn obs_of(obs: &ObsMap, m: ObsMetric) -> impl Iterator<Item = (&ObsKey, &Option<f64>)> {
    obs.iter_from(&ObsKey { metric: m, media: None, qualifier: None }).take_while(move |(k, _)| k.metric == m)
}

/// Format one family's lines (or heads) of `q`.
fn render_family(
    def: &FamilyDef,
    q: &QueueState,
    presence: &PresenceTable,
    latest: Option<(i64, i64)>,
    buf: &mut Vec<u8>,
    prefix_end: usize,
    dynamic: &mut Vec<DynLine>,
) {
    match def.value {
        ValueSource::Meta => {
            open_line(buf, def.name, prefix_end);
            label(buf, "division", &q.meta.division);
            label(buf, "division_id", &q.meta.division_id);
            close_line(buf, 1.0);
        }
        ValueSource::Obs(m) if m.is_instant() => {
            for (k, v) in obs_of(&q.obs, m) {
                if let Some(media) = &k.media {
                    push_head(buf, prefix_end, dynamic, def.name, Some(("media_type", media)), since(*v));
                }
            }
        }
        ValueSource::Obs(m) => match def.labels {
            LabelSet::MediaType => {
                for (k, v) in obs_of(&q.obs, m) {
                    if let Some(media) = &k.media {
                        open_line(buf, def.name, prefix_end);
                        label(buf, "media_type", media);
                        close_line(buf, v.unwrap_or(0.0));
                    }
                }
            }
            LabelSet::RoutingStatus => {
                // Spellings that normalise alike are one series.
                let mut sums: BTreeMap<String, f64> = BTreeMap::new();
                for (k, v) in obs_of(&q.obs, m) {
                    if let Some(qual) = &k.qualifier {
                        *sums.entry(super::text::snake_case(qual)).or_default() += v.unwrap_or(0.0);
                    }
                }
                for (status, v) in sums {
                    open_line(buf, def.name, prefix_end);
                    label(buf, "routing_status", &status);
                    close_line(buf, v);
                }
            }
            LabelSet::Presence => {
                // Several presence ids can resolve to the same labels (e.g. unknown ones): sum them, since
                // duplicate series would make the scrape invalid.
                let mut sums: BTreeMap<(&str, &str), f64> = BTreeMap::new();
                for (k, v) in obs_of(&q.obs, m) {
                    if let Some(qual) = &k.qualifier {
                        *sums.entry(resolve(presence, qual)).or_default() += v.unwrap_or(0.0);
                    }
                }
                for ((name, system), v) in sums {
                    open_line(buf, def.name, prefix_end);
                    label(buf, "presence", name);
                    label(buf, "system_presence", system);
                    close_line(buf, v);
                }
            }
            LabelSet::None | LabelSet::Division | LabelSet::Source => {
                let mut found = false;
                let mut sum = 0.0;
                for (_, v) in obs_of(&q.obs, m) {
                    found = true;
                    sum += v.unwrap_or(0.0);
                }
                if found {
                    open_line(buf, def.name, prefix_end);
                    close_line(buf, sum);
                }
            }
        },
        ValueSource::Aggregate { metric, stat } => {
            let Some(latest) = latest else { return };
            for (media, aggs) in q.intervals.iter().filter(|(_, a)| a.interval == latest) {
                // A short linear scan: a key of the map would need an owned `String` per lookup.
                let Some(stats) = aggs.values.iter().find(|((m, qual), _)| m == metric && qual.is_none()).map(|e| e.1)
                else {
                    continue;
                };
                let value = match stat {
                    Stat::Count => stats.count,
                    Stat::Ratio => stats.ratio,
                    Stat::Target => stats.target,
                };
                if let Some(v) = value {
                    open_line(buf, def.name, prefix_end);
                    label(buf, "media_type", media);
                    close_line(buf, v);
                }
            }
        }
        ValueSource::IntervalStart => {
            if let Some((start, _)) = latest {
                open_line(buf, def.name, prefix_end);
                buf.extend_from_slice(b"} ");
                write_ms_as_seconds(buf, start);
                buf.push(b'\n');
            }
        }
        // Shared from the per-media cache.
        ValueSource::Counter(_) | ValueSource::Histogram(_) => {}
        ValueSource::DataAge => push_head(buf, prefix_end, dynamic, def.name, None, AGE),
        ValueSource::Source => {
            // One variant per effective source, in `Source::ALL` order: the scrape copies one.
            for active in Source::ALL {
                for s in Source::ALL {
                    open_line(buf, def.name, prefix_end);
                    label(buf, "source", s.as_str());
                    buf.extend_from_slice(if s == active { b"} 1\n" } else { b"} 0\n" });
                }
            }
        }
        ValueSource::Stale => {
            // Not stale, then stale.
            for value in [b"} 0\n", b"} 1\n"] {
                open_line(buf, def.name, prefix_end);
                buf.extend_from_slice(value);
            }
        }
    }
}

/// What the readers see of a queue: immutable, replaced as a whole by the writer.
#[derive(Debug)]
pub(crate) struct QueueEntry {
    pub text: Arc<RenderedQueue>,
    pub source: Source,
    pub stale: bool,
    pub last_update_ms: Option<i64>,
    pub added_ms: i64,
    pub clock: Option<Arc<ChannelClock>>,
}

/// A queue's freshness at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Milliseconds since the state was last confirmed (never negative).
    pub age_ms: i64,
    /// Older than `max_age`: value series are not shown.
    pub withdrawn: bool,
    /// `Source::None` when withdrawn.
    pub source: Source,
    /// Forced to true when withdrawn.
    pub stale: bool,
}

impl QueueEntry {
    pub fn freshness(&self, now_ms: i64, max_age_ms: i64) -> Freshness {
        // A quiet queue on a healthy channel is fresh: Genesys publishes only on change, so the channel's last
        // frame confirms it. Before anything confirmed the queue, its age counts from when it was listed.
        let frame = match (&self.clock, self.source) {
            (Some(c), Source::Stream) => Some(c.last_frame_ms()).filter(|&t| t > 0),
            _ => None,
        };
        let base = match (self.last_update_ms, frame) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.added_ms,
        };
        let age_ms = (now_ms - base).max(0);
        let withdrawn = age_ms > max_age_ms;
        Freshness {
            age_ms,
            withdrawn,
            source: if withdrawn { Source::None } else { self.source },
            stale: self.stale || withdrawn,
        }
    }
}

/// Scrape-time values, each distinct one formatted once per scrape: queues confirmed by the same channel frame
/// share their data age, and most longest-waiting values are 0. A direct-mapped table: a collision only formats
/// a value again.
struct Values {
    bytes: Vec<u8>,
    /// (value in ms, its bytes in `bytes` with the newline); an empty range is an empty slot.
    slots: Box<[(i64, usize, usize)]>,
}

impl Values {
    const BITS: u32 = 10;

    fn new() -> Self {
        Values { bytes: Vec::with_capacity(16 * 1024), slots: vec![(0, 0, 0); 1 << Self::BITS].into_boxed_slice() }
    }

    /// `ms` as seconds with its newline.
    fn get(&mut self, ms: i64) -> &[u8] {
        let h = ((ms as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::BITS)) as usize;
        let (key, from, to) = self.slots[h];
        if key == ms && to > from {
            return &self.bytes[from..to];
        }
        let from = self.bytes.len();
        write_ms_as_seconds(&mut self.bytes, ms);
        self.bytes.push(b'\n');
        self.slots[h] = (ms, from, self.bytes.len());
        &self.bytes[from..]
    }
}

/// What the scrape needs of one queue, computed once so both passes agree even if a channel clock moves.
struct Row<'a> {
    text: &'a RenderedQueue,
    fresh: Freshness,
    interval_live: bool,
}

impl Row<'_> {
    fn shows(&self, part: Part) -> bool {
        match part {
            Part::Info | Part::Freshness => true,
            Part::Observation => !self.fresh.withdrawn,
            Part::Interval => !self.fresh.withdrawn && self.interval_live,
        }
    }

    /// The value of a scrape-time line, in ms.
    fn ms(&self, v: i64, now_ms: i64) -> i64 {
        match v {
            AGE => self.fresh.age_ms,
            NOBODY => 0,
            start => now_ms.saturating_sub(start).max(0),
        }
    }

    /// Which variant of a [`Shape::Variants`] family the scrape shows.
    fn variant(&self, def: &FamilyDef) -> usize {
        match def.value {
            ValueSource::Source => Source::ALL.iter().position(|&s| s == self.fresh.source).unwrap_or(0),
            _ => usize::from(self.fresh.stale),
        }
    }
}

/// The output's unused capacity, filled region by region; [`Vec::set_len`] claims it once every byte is written.
struct Spare<'a>(&'a mut [MaybeUninit<u8>]);

impl Spare<'_> {
    /// Copy `src` to `[*at..]` and advance `at`.
    fn put(&mut self, at: &mut usize, src: &[u8]) {
        let dst = &mut self.0[*at..*at + src.len()];
        // SAFETY: `dst` was just sliced to `src.len()` elements (bounds-checked), and the two cannot overlap:
        // `dst` is unused capacity of the output, borrowed mutably, while `src` is borrowed shared from
        // elsewhere. (`<[MaybeUninit<u8>]>::write_copy_of_slice` is this, safe, from Rust 1.93; the MSRV is 1.85.)
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), src.len()) };
        *at += src.len();
    }

    /// [`Spare::put`] for a scrape-time value (a few bytes): byte by byte, which is cheaper than a call to
    /// `memcpy` at this size.
    fn put_small(&mut self, at: &mut usize, src: &[u8]) {
        for (d, s) in self.0[*at..*at + src.len()].iter_mut().zip(src) {
            d.write(*s);
        }
        *at += src.len();
    }
}

/// Write every family, family-major: a header, then that family's samples of every queue. A family without
/// samples gets no header.
///
/// The text format wants each family's samples together, but each queue's text is stored queue-major. Walking
/// family by family would touch every queue's buffer 21 times at scattered addresses (a cache and TLB miss
/// each: ~100 ms for 10k queues). Instead, pass 1 sizes every family, and pass 2 reads each queue's buffer once,
/// front to back, scattering its slices into the family regions of the output. The regions are written straight
/// into the output's spare capacity: zero-filling it first would be one more write of every byte.
pub(crate) fn write_all(
    entries: &[Arc<QueueEntry>],
    headers: &[Box<[u8]>],
    now_ms: i64,
    max_age_ms: i64,
    out: &mut Vec<u8>,
) {
    let mut values = Values::new();
    let mut family_len = [0usize; FAMILY_COUNT];
    let shapes: [Shape; FAMILY_COUNT] = std::array::from_fn(|i| FAMILIES[i].shape());
    // Pass 1 in three short loops rather than one: each reads one allocation per queue (the entry, its text,
    // its scrape-time lines), so the cache misses of many queues overlap instead of forming one chain per queue.
    let mut rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row { text: &e.text, fresh: e.freshness(now_ms, max_age_ms), interval_live: false })
        .collect();
    let dynamic: Vec<usize> = (0..FAMILY_COUNT).filter(|&i| shapes[i] == Shape::Dynamic).collect();
    for k in 0..rows.len() {
        // Start loading a later queue's text while this one is summed (a prefetch by hand: the loop is bound by
        // cache misses, one run of lines per queue).
        if let Some(ahead) = rows.get(k + 4) {
            std::hint::black_box(ahead.text.sizes[0]);
        }
        let row = &mut rows[k];
        row.interval_live = row.text.interval_end.is_some_and(|end| now_ms < end);
        for (i, def) in FAMILIES.iter().enumerate() {
            if row.shows(def.part) {
                family_len[i] += row.text.sizes[i] as usize;
            }
        }
        for &i in &dynamic {
            if row.shows(FAMILIES[i].part) {
                family_len[i] +=
                    row.text.dynamic(i).iter().map(|l| values.get(row.ms(l.value, now_ms)).len()).sum::<usize>();
            }
        }
    }

    // Lay out the regions (relative to the end of `out`): header + samples for each family that has samples.
    let mut cursor = [0usize; FAMILY_COUNT];
    let mut end = [0usize; FAMILY_COUNT];
    let mut total = 0;
    for i in 0..FAMILY_COUNT {
        if family_len[i] > 0 {
            cursor[i] = total;
            total += headers[i].len() + family_len[i];
            end[i] = total;
        }
    }
    // Headroom for what the caller appends next (the registry's metrics), so that does not regrow the buffer.
    out.reserve(total + 64 * 1024);
    let mut spare = Spare(&mut out.spare_capacity_mut()[..total]);
    for i in 0..FAMILY_COUNT {
        if family_len[i] > 0 {
            spare.put(&mut cursor[i], &headers[i]);
        }
    }

    for (k, row) in rows.iter().enumerate() {
        // As in pass 1: the next queue's text, and the one after's sizes and bounds.
        if let Some(next) = rows.get(k + 1) {
            std::hint::black_box(next.text.buf.first());
        }
        if let Some(ahead) = rows.get(k + 2) {
            std::hint::black_box((ahead.text.sizes[0], ahead.text.bounds[0]));
        }
        let t = row.text;
        for (i, def) in FAMILIES.iter().enumerate() {
            if !row.shows(def.part) {
                continue;
            }
            let at = &mut cursor[i];
            match shapes[i] {
                Shape::Lines => t.family_parts(i, |p| spare.put(at, p)),
                Shape::Variants(_) => {
                    let len = t.sizes[i] as usize;
                    let from = t.bounds[i] as usize + row.variant(def) * len;
                    spare.put(at, &t.buf[from..from + len]);
                }
                Shape::Dynamic => {
                    for line in t.dynamic(i) {
                        spare.put(at, &t.buf[line.head.0 as usize..line.head.1 as usize]);
                        spare.put_small(at, values.get(row.ms(line.value, now_ms)));
                    }
                }
            }
        }
    }
    // Pass 1 and pass 2 must agree to the byte, or the regions would overlap or leave gaps. Each region was
    // written front to back from its start, and the regions tile `0..total`: with every cursor at its region's
    // end, every byte of `0..total` was written.
    let filled = (0..FAMILY_COUNT).all(|i| cursor[i] == end[i]);
    assert!(filled, "scrape regions were not filled exactly (sizing and copying disagree)");
    let len = out.len() + total;
    // SAFETY: `reserve` made room for `total` more bytes, and the check above shows that all `total` bytes after
    // the current length were initialised through `spare_capacity_mut` (a `MaybeUninit` is written only by
    // `Spare::put`, which copies whole slices within the regions).
    unsafe { out.set_len(len) };
}

#[cfg(test)]
mod tests {
    //! The incremental render against a full one: random sequences of updates (topic messages, complete reads,
    //! aggregates across intervals), presence definition changes and renames, each followed by a render that
    //! copies what its memo says is unchanged. A family left stale by a missed change fails the comparison.

    use super::*;
    use crate::model::{Aggregate, AggregateStats, GroupUpdate, Observation, QueueUpdate};
    use crate::state::queue::MediaFilter;
    use crate::state::{ApplyOutcome, PresenceLabels};
    use proptest::prelude::*;

    const T0: i64 = 1_735_550_400_000;
    const BUCKETS: [f64; 3] = [10.0, 60.0, 300.0];

    #[derive(Debug, Clone)]
    enum Op {
        Update(QueueUpdate),
        /// Replace the presence table with variant `n`.
        Presence(u8),
        Rename(String),
    }

    fn observation() -> impl Strategy<Value = Observation> {
        (
            prop::sample::select(ObsMetric::ALL.to_vec()),
            prop::sample::select(vec!["IDLE", "INTERACTING", "Idle", "p1", "p2", "p3"]),
            prop::option::weighted(0.8, 0u8..6),
        )
            .prop_map(|(metric, qualifier, value)| Observation {
                metric,
                qualifier: Some(qualifier.to_owned()),
                // Instants near T0 for the longest-* metrics, small counts for the others.
                value: value
                    .map(|v| if metric.is_instant() { (T0 - 1000 * i64::from(v)) as f64 } else { f64::from(v) }),
            })
    }

    fn aggregate() -> impl Strategy<Value = Aggregate> {
        (prop::sample::select(vec!["nOffered", "tAnswered", "tAbandon", "oServiceLevel", "tHandle"]), 0u8..20).prop_map(
            |(metric, n)| Aggregate {
                metric: metric.to_owned(),
                qualifier: None,
                stats: AggregateStats {
                    count: Some(f64::from(n)),
                    sum: Some(f64::from(n) * 15_000.0),
                    ratio: Some(f64::from(n) / 20.0),
                    target: Some(0.8),
                    ..AggregateStats::default()
                },
            },
        )
    }

    fn group() -> impl Strategy<Value = GroupUpdate> {
        (
            prop::option::weighted(0.7, prop::sample::select(vec!["voice", "chat", "email"])),
            prop::collection::vec(observation(), 0..5),
            prop::option::weighted(0.3, (0i64..3, prop::collection::vec(aggregate(), 0..4))),
        )
            .prop_map(|(media, observations, aggs)| {
                let (interval, aggregates) = match aggs {
                    Some((k, a)) => (Some((T0 + k * 1_800_000, T0 + (k + 1) * 1_800_000)), a),
                    None => (None, vec![]),
                };
                GroupUpdate { media_type: media.map(str::to_owned), observations, interval, aggregates }
            })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<bool>(), prop::collection::vec(group(), 1..4)).prop_map(|(complete, groups)| Op::Update(
                QueueUpdate { queue_id: "q1".into(), source: Source::Stream, event_ms: Some(T0), complete, groups }
            )),
            1 => (0u8..3).prop_map(Op::Presence),
            1 => prop::sample::select(vec!["Sales", "Support \"2\""]).prop_map(|n| Op::Rename(n.to_owned())),
        ]
    }

    fn presence(n: u8) -> PresenceTable {
        let mut t = PresenceTable::new();
        for (id, name) in [("p1", "Available"), ("p2", "Break")].into_iter().take(usize::from(n)) {
            t.insert(id.into(), PresenceLabels { name: format!("{name}{n}"), system_presence: "available".into() });
        }
        t
    }

    fn meta(name: &str) -> QueueMeta {
        QueueMeta { id: "q1".into(), name: name.into(), division_id: "d1".into(), division: "Home".into() }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn incremental_render_equals_a_full_render(ops in prop::collection::vec(op(), 1..25)) {
            let mut q = QueueState::new(meta("Sales"), T0);
            let mut table = Arc::new(presence(1));
            let mut scratch = Scratch::default();
            let media = MediaFilter::default();
            for op in ops {
                match op {
                    Op::Update(u) => {
                        q.merge(u, &media, &BUCKETS, &table, T0, &mut ApplyOutcome::default());
                    }
                    Op::Presence(n) => table = Arc::new(presence(n)),
                    Op::Rename(name) => {
                        q.set_meta(meta(&name));
                    }
                }
                fill_totals_text(&mut q, &BUCKETS, &mut scratch);
                render(&mut q, &table, &mut scratch);
                let full = build(&q, &table, &[true; FAMILY_COUNT], &RenderedQueue::default(), &mut scratch);
                prop_assert_eq!(&*q.text, &full);
            }
        }
    }

    #[test]
    fn an_unchanged_family_is_copied_and_a_changed_one_formatted() {
        let mut q = QueueState::new(meta("Sales"), T0);
        let table = Arc::new(presence(1));
        let mut scratch = Scratch::default();
        let obs = |metric, value| Observation { metric, qualifier: None, value: Some(value) };
        let update = |observations| QueueUpdate {
            queue_id: "q1".into(),
            source: Source::Stream,
            event_ms: Some(T0),
            complete: false,
            groups: vec![GroupUpdate {
                media_type: Some("voice".into()),
                observations,
                interval: None,
                aggregates: vec![],
            }],
        };
        let media = MediaFilter::default();
        q.merge(
            update(vec![obs(ObsMetric::Waiting, 1.0), obs(ObsMetric::Alerting, 1.0)]),
            &media,
            &BUCKETS,
            &table,
            T0,
            &mut ApplyOutcome::default(),
        );
        render(&mut q, &table, &mut scratch);
        q.merge(update(vec![obs(ObsMetric::Waiting, 2.0)]), &media, &BUCKETS, &table, T0, &mut ApplyOutcome::default());
        let mut memo = std::mem::take(&mut q.render_memo);
        let dirty = memo.changes(&q, &table);
        let marked: Vec<FamilyId> = FAMILIES.iter().filter(|d| dirty[d.id as usize]).map(|d| d.id).collect();
        assert_eq!(marked, vec![FamilyId::Waiting]);
    }
}
