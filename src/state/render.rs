//! Rendering: each queue's static families once per change, and the family-major scrape output.
//!
//! A queue's families that only change when the queue does are rendered into one buffer (one allocation per
//! queue, not per family) with a slice per family, as kube-state-metrics does. A scrape then copies slices and
//! formats only what moves with the clock: data age, source, stale and the longest-waiting/interacting seconds.
//! Sample lines are identical in Prometheus text 0.0.4 and OpenMetrics 1.0; only the family headers differ.

use super::families::{LabelSet, Part, Stat, ValueSource, FAMILIES, FAMILY_COUNT};
use super::queue::QueueState;
use super::text::{escape_label, write_float_label, write_int, write_ms_as_seconds, write_value};
use super::PresenceTable;
use crate::model::{ChannelClock, Source};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Streaming the scrape output in pieces (perf-mem; apart from this module's code).
pub(crate) mod chunked;

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
    /// The counter and histogram families (up to ~200 lines per queue), apart: they change only when an
    /// aggregate grows, so a re-render for any other change shares them instead of rendering them again.
    totals: Arc<TotalsText>,
}

/// The counter and histogram families of a queue: family `i` is `buf[bounds[i]..bounds[i + 1]]` (empty for the
/// other families, whose text is in [`RenderedQueue::buf`]).
#[derive(Debug, Default)]
struct TotalsText {
    buf: Box<[u8]>,
    bounds: [u32; FAMILY_COUNT + 1],
}

impl RenderedQueue {
    fn family(&self, i: usize) -> &[u8] {
        let t = &self.totals;
        if t.bounds[i] != t.bounds[i + 1] {
            return &t.buf[t.bounds[i] as usize..t.bounds[i + 1] as usize];
        }
        &self.buf[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    fn dynamic(&self, i: usize) -> &[DynLine] {
        &self.dynamic[self.dyn_bounds[i] as usize..self.dyn_bounds[i + 1] as usize]
    }

    /// Bytes held (for the summary and tests).
    pub fn len(&self) -> usize {
        self.buf.len() + self.totals.buf.len()
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

/// Render `q`'s text: whole lines of the pre-rendered families and the heads of the scrape-time lines. `scratch`
/// is reused between calls so that the text costs exactly one allocation. The counter and histogram families
/// are taken from `reuse` when given (their values and the queue's labels have not changed since it was
/// rendered), and rendered otherwise.
pub(crate) fn render(
    q: &QueueState,
    presence: &PresenceTable,
    buckets: &[f64],
    reuse: Option<&RenderedQueue>,
    scratch: &mut Vec<u8>,
) -> RenderedQueue {
    let buf = scratch;
    buf.clear();
    buf.extend_from_slice(b"queue_id=\"");
    escape_label(buf, &q.meta.id);
    buf.extend_from_slice(b"\",queue=\"");
    escape_label(buf, &q.meta.name);
    buf.push(b'"');
    // The queue labels open every line; they are copied from here and cut off at the end.
    let prefix_end = buf.len();

    // The latest interval over all media types; media types still on an older one are not current.
    let latest = q.intervals.values().map(|a| a.interval).max_by_key(|i| i.0);
    let mut bounds = [0u32; FAMILY_COUNT + 1];
    let mut dyn_bounds = [0u32; FAMILY_COUNT + 1];
    let mut dynamic: Vec<DynLine> = Vec::new();
    // The totals' own buffer starts with the same queue-label prefix, so the line helpers work on it unchanged.
    let mut tbuf: Vec<u8> = Vec::new();
    let mut tbounds = [0u32; FAMILY_COUNT + 1];
    if reuse.is_none() {
        tbuf.reserve(prefix_end + 256 * q.totals.len());
        tbuf.extend_from_slice(&buf[..prefix_end]);
    }
    for def in &FAMILIES {
        tbounds[def.id as usize] = (tbuf.len().saturating_sub(prefix_end)) as u32;
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
            ValueSource::Counter(_) | ValueSource::Histogram(_) if reuse.is_some() => {}
            ValueSource::Counter(c) => {
                let buf = &mut tbuf;
                for (media, t) in &q.totals {
                    open_line(buf, def.name, prefix_end);
                    label(buf, "media_type", media);
                    close_int(buf, t.counter(c));
                }
            }
            ValueSource::Histogram(h) => {
                let buf = &mut tbuf;
                for (media, t) in &q.totals {
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
            }
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
    tbounds[FAMILY_COUNT] = (tbuf.len().saturating_sub(prefix_end)) as u32;
    let totals = match reuse {
        Some(prev) => prev.totals.clone(),
        None => Arc::new(TotalsText { buf: Box::from(tbuf.get(prefix_end..).unwrap_or_default()), bounds: tbounds }),
    };
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

    /// The value of a scrape-time line, with its newline, into `tmp`.
    fn value(&self, v: DynValue, now_ms: i64, tmp: &mut Vec<u8>) {
        tmp.clear();
        match v {
            DynValue::Since(start) => write_ms_as_seconds(tmp, start.map_or(0, |s| (now_ms - s).max(0))),
            DynValue::Age => write_ms_as_seconds(tmp, self.fresh.age_ms),
            DynValue::Source(s) => tmp.push(if s == self.fresh.source { b'1' } else { b'0' }),
            DynValue::Stale => tmp.push(if self.fresh.stale { b'1' } else { b'0' }),
        }
        tmp.push(b'\n');
    }

    /// Bytes family `i` of this queue takes in the output.
    fn len_of(&self, i: usize, pre_rendered: bool, now_ms: i64, tmp: &mut Vec<u8>) -> usize {
        if pre_rendered {
            return self.text.family(i).len();
        }
        self.text
            .dynamic(i)
            .iter()
            .map(|l| {
                self.value(l.value, now_ms, tmp);
                (l.head.1 - l.head.0) as usize + tmp.len()
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
    let mut tmp = Vec::with_capacity(32);
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
                    family_len[i] += row.len_of(i, def.pre_rendered(), now_ms, &mut tmp);
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

    for row in &rows {
        let t = row.text;
        for (i, def) in FAMILIES.iter().enumerate() {
            if !row.shows(def.part) {
                continue;
            }
            if def.pre_rendered() {
                put(out, &mut cursor[i], t.family(i));
            } else {
                for line in t.dynamic(i) {
                    put(out, &mut cursor[i], &t.buf[line.head.0 as usize..line.head.1 as usize]);
                    row.value(line.value, now_ms, &mut tmp);
                    put(out, &mut cursor[i], &tmp);
                }
            }
        }
    }
    // Pass 1 and pass 2 must agree to the byte, or the regions would overlap or leave gaps.
    debug_assert!((0..FAMILY_COUNT).all(|i| family_len[i] == 0 || cursor[i] == end[i]));
}
