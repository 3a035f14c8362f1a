//! Rendering: each queue's static families once per change, and the family-major scrape output.
//!
//! A queue's families that only change when the queue does are rendered into one buffer (one allocation per
//! queue, not per family) with a slice per family, as kube-state-metrics does. A scrape then copies slices and
//! formats only what moves with the clock: data age, source, stale and the longest-waiting/interacting seconds.
//! Sample lines are identical in Prometheus text 0.0.4 and OpenMetrics 1.0; only the family headers differ.

use super::families::{FamilyId, LabelSet, Part, Stat, ValueSource, FAMILIES, FAMILY_COUNT};
use super::queue::QueueState;
use super::text::{escape_label, write_float_label, write_int, write_ms_as_seconds, write_value};
use super::PresenceTable;
use crate::model::{ChannelClock, Source};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Label values of a presence id that no definition names.
pub(crate) const UNKNOWN: &str = "unknown";

/// What a scrape-time line shows after its pre-rendered head.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DynValue {
    /// Seconds since this start instant (epoch ms); 0 when `None` (nobody waits) or in the future.
    Since(Option<i64>),
    /// The queue's data age.
    Age,
    /// 1 when this is the queue's effective source.
    Source(Source),
    /// The effective stale flag.
    Stale,
}

/// A line whose value moves with the clock or with freshness: its head (`name{labels} `) is pre-rendered, the
/// value is written at scrape time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DynLine {
    head: (u32, u32),
    value: DynValue,
}

/// The pre-rendered text of one queue.
#[derive(Debug, Default)]
pub struct RenderedQueue {
    /// Every family's bytes in table order: whole lines for pre-rendered families, line heads for the others.
    buf: Box<[u8]>,
    /// Family `i` is `buf[bounds[i]..bounds[i + 1]]`.
    bounds: [u32; FAMILY_COUNT + 1],
    /// Scrape-time lines, in family order; family `i`'s are `dynamic[dyn_bounds[i]..dyn_bounds[i + 1]]`.
    dynamic: Box<[DynLine]>,
    dyn_bounds: [u32; FAMILY_COUNT + 1],
    /// End of the queue's latest aggregate interval: interval families are withdrawn once it has passed.
    interval_end: Option<i64>,
    /// The counter and histogram lines of each media type (in media order), shared with the queue state's cache
    /// and with earlier renders: a change elsewhere re-renders none of them, an aggregate message one.
    totals: Box<[Arc<MediaTotalsText>]>,
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
        &self.dynamic[self.dyn_bounds[i] as usize..self.dyn_bounds[i + 1] as usize]
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
    value: DynValue,
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
#[derive(Debug)]
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
pub(crate) fn fill_totals_text(q: &mut QueueState, buckets: &[f64], scratch: &mut Vec<u8>) {
    let QueueState { totals, totals_text, .. } = &mut *q;
    if totals.keys().all(|m| totals_text.contains_key(m)) {
        return;
    }
    let buf = scratch;
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

/// Render `q`'s text: whole lines of the pre-rendered families and the heads of the scrape-time lines. `scratch`
/// is reused between calls so that the text costs exactly one allocation. The counter and histogram families
/// are not formatted here: they are shared from the queue's per-media cache, which [`fill_totals_text`] must
/// have completed.
pub(crate) fn render(q: &QueueState, presence: &PresenceTable, scratch: &mut Vec<u8>) -> RenderedQueue {
    let buf = scratch;
    buf.clear();
    queue_labels(buf, q);
    // The queue labels open every line; they are copied from here and cut off at the end.
    let prefix_end = buf.len();

    // The latest interval over all media types; media types still on an older one are not current.
    let latest = q.intervals.values().map(|a| a.interval).max_by_key(|i| i.0);
    let mut bounds = [0u32; FAMILY_COUNT + 1];
    let mut dyn_bounds = [0u32; FAMILY_COUNT + 1];
    let mut dynamic: Vec<DynLine> = Vec::new();
    for def in &FAMILIES {
        bounds[def.id as usize] = (buf.len() - prefix_end) as u32;
        dyn_bounds[def.id as usize] = dynamic.len() as u32;
        match def.value {
            ValueSource::Meta => {
                open_line(buf, def.name, prefix_end);
                label(buf, "division", &q.meta.division);
                label(buf, "division_id", &q.meta.division_id);
                close_line(buf, 1.0);
            }
            ValueSource::Obs(m) if m.is_instant() => {
                for (k, v) in q.obs.iter().filter(|(k, _)| k.metric == m) {
                    if let Some(media) = &k.media {
                        let since = DynValue::Since(v.map(|s| s as i64));
                        push_head(buf, prefix_end, &mut dynamic, def.name, Some(("media_type", media)), since);
                    }
                }
            }
            ValueSource::Obs(m) => match def.labels {
                LabelSet::MediaType => {
                    for (k, v) in q.obs.iter().filter(|(k, _)| k.metric == m) {
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
                    for (k, v) in q.obs.iter().filter(|(k, _)| k.metric == m) {
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
                    for (k, v) in q.obs.iter().filter(|(k, _)| k.metric == m) {
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
                    for (_, v) in q.obs.iter().filter(|(k, _)| k.metric == m) {
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
                let Some(latest) = latest else { continue };
                for (media, aggs) in q.intervals.iter().filter(|(_, a)| a.interval == latest) {
                    let Some(stats) = aggs.values.get(&(metric.to_owned(), None)) else { continue };
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
            // Shared from the per-media cache below.
            ValueSource::Counter(_) | ValueSource::Histogram(_) => {}
            ValueSource::DataAge => push_head(buf, prefix_end, &mut dynamic, def.name, None, DynValue::Age),
            ValueSource::Source => {
                for s in Source::ALL {
                    push_head(
                        buf,
                        prefix_end,
                        &mut dynamic,
                        def.name,
                        Some(("source", s.as_str())),
                        DynValue::Source(s),
                    );
                }
            }
            ValueSource::Stale => push_head(buf, prefix_end, &mut dynamic, def.name, None, DynValue::Stale),
        }
    }
    bounds[FAMILY_COUNT] = (buf.len() - prefix_end) as u32;
    dyn_bounds[FAMILY_COUNT] = dynamic.len() as u32;
    let totals = q.totals.keys().filter_map(|m| q.totals_text.get(m).cloned()).collect();
    RenderedQueue {
        buf: Box::from(&buf[prefix_end..]),
        bounds,
        dynamic: dynamic.into_boxed_slice(),
        dyn_bounds,
        interval_end: latest.map(|(_, end)| end),
        totals,
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

    /// Append the value of a scrape-time line, with its newline, to `out`.
    fn value(&self, v: DynValue, now_ms: i64, out: &mut Vec<u8>) {
        match v {
            DynValue::Since(start) => write_ms_as_seconds(out, start.map_or(0, |s| (now_ms - s).max(0))),
            DynValue::Age => write_ms_as_seconds(out, self.fresh.age_ms),
            DynValue::Source(s) => out.push(if s == self.fresh.source { b'1' } else { b'0' }),
            DynValue::Stale => out.push(if self.fresh.stale { b'1' } else { b'0' }),
        }
        out.push(b'\n');
    }

    /// Bytes family `i` of this queue takes in the output. Scrape-time values are formatted into `values` (and
    /// their lengths pushed to `lens`), in the order pass 2 copies them.
    fn len_of(&self, i: usize, pre_rendered: bool, now_ms: i64, values: &mut Vec<u8>, lens: &mut Vec<u8>) -> usize {
        if pre_rendered {
            let mut n = 0;
            self.text.family_parts(i, |p| n += p.len());
            return n;
        }
        self.text
            .dynamic(i)
            .iter()
            .map(|l| {
                let from = values.len();
                self.value(l.value, now_ms, values);
                let n = values.len() - from;
                // A value is at most 21 bytes (an i64 of milliseconds as seconds, plus the newline).
                lens.push(n as u8);
                (l.head.1 - l.head.0) as usize + n
            })
            .sum()
    }
}

/// Copy `src` to `out[*at..]` and advance `at`.
fn put(out: &mut [u8], at: &mut usize, src: &[u8]) {
    out[*at..*at + src.len()].copy_from_slice(src);
    *at += src.len();
}

/// Write every family, family-major: a header, then that family's samples of every queue. A family without
/// samples gets no header.
///
/// The text format wants each family's samples together, but each queue's text is stored queue-major. Walking
/// family by family would touch every queue's buffer 21 times at scattered addresses (a cache and TLB miss
/// each: ~100 ms for 10k queues). Instead, pass 1 sizes every family, and pass 2 reads each queue's buffer once,
/// front to back, scattering its slices into the family regions of the output.
pub(crate) fn write_all(
    entries: &[Arc<QueueEntry>],
    headers: &[Box<[u8]>],
    now_ms: i64,
    max_age_ms: i64,
    out: &mut Vec<u8>,
) {
    // Every scrape-time value, formatted once in pass 1 and copied in pass 2.
    let mut values: Vec<u8> = Vec::with_capacity(entries.len() * 48);
    let mut lens: Vec<u8> = Vec::with_capacity(entries.len() * 12);
    let mut family_len = [0usize; FAMILY_COUNT];
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| {
            let row = Row {
                text: &e.text,
                fresh: e.freshness(now_ms, max_age_ms),
                interval_live: e.text.interval_end.is_some_and(|end| now_ms < end),
            };
            for (i, def) in FAMILIES.iter().enumerate() {
                if row.shows(def.part) {
                    family_len[i] += row.len_of(i, def.pre_rendered(), now_ms, &mut values, &mut lens);
                }
            }
            row
        })
        .collect();

    // Lay out the regions: header + samples for each family that has samples.
    let base = out.len();
    let mut cursor = [0usize; FAMILY_COUNT];
    let mut end = [0usize; FAMILY_COUNT];
    let mut total = 0;
    for i in 0..FAMILY_COUNT {
        if family_len[i] > 0 {
            total += headers[i].len();
            cursor[i] = base + total;
            total += family_len[i];
            end[i] = base + total;
        }
    }
    // Headroom for what the caller appends next (the registry's metrics), so that does not regrow the buffer.
    out.reserve(total + 64 * 1024);
    out.resize(base + total, 0);
    for i in 0..FAMILY_COUNT {
        if family_len[i] > 0 {
            let mut at = cursor[i] - headers[i].len();
            put(out, &mut at, &headers[i]);
        }
    }

    let (mut vi, mut vo) = (0usize, 0usize);
    for row in &rows {
        let t = row.text;
        for (i, def) in FAMILIES.iter().enumerate() {
            if !row.shows(def.part) {
                continue;
            }
            if def.pre_rendered() {
                t.family_parts(i, |p| put(out, &mut cursor[i], p));
            } else {
                for line in t.dynamic(i) {
                    put(out, &mut cursor[i], &t.buf[line.head.0 as usize..line.head.1 as usize]);
                    let n = usize::from(lens[vi]);
                    put(out, &mut cursor[i], &values[vo..vo + n]);
                    vi += 1;
                    vo += n;
                }
            }
        }
    }
    // Pass 1 and pass 2 must agree to the byte, or the regions would overlap or leave gaps.
    debug_assert!((0..FAMILY_COUNT).all(|i| family_len[i] == 0 || cursor[i] == end[i]));
}
