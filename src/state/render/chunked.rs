//! The scrape output in bounded pieces, so `/metrics` never holds a whole body (tens of MB at 300k series, more
//! when every queue × media type has histograms) per scrape.
//!
//! Same bytes as [`super::write_all`], family-major, but walked family by family: a [`Cursor`] resumes where the
//! previous piece ended. Freshness is decided once per queue when the cursor is made, so every family of one
//! scrape agrees even if a channel clock moves while a slow client reads.

use super::{Freshness, QueueEntry, Row, FAMILIES, FAMILY_COUNT};
use std::sync::Arc;

/// Where the next piece starts: family `family`, queue `queue` (its header first when `queue == 0`).
pub(crate) struct Cursor {
    entries: Vec<Arc<QueueEntry>>,
    /// Per queue: its freshness and whether its interval is live, as of the cursor's creation.
    rows: Vec<(Freshness, bool)>,
    /// Families with at least one sample (the others get no header).
    has: [bool; FAMILY_COUNT],
    now_ms: i64,
    family: usize,
    queue: usize,
}

impl Cursor {
    pub(crate) fn new(entries: Vec<Arc<QueueEntry>>, now_ms: i64, max_age_ms: i64) -> Cursor {
        let mut has = [false; FAMILY_COUNT];
        let rows: Vec<(Freshness, bool)> = entries
            .iter()
            .map(|e| {
                let fresh = e.freshness(now_ms, max_age_ms);
                let live = e.text.interval_end.is_some_and(|end| now_ms < end);
                let row = Row { text: &e.text, fresh, interval_live: live };
                for (i, def) in FAMILIES.iter().enumerate() {
                    has[i] = has[i]
                        || (row.shows(def.part)
                            && if def.pre_rendered() {
                                !row.text.family(i).is_empty()
                            } else {
                                !row.text.dynamic(i).is_empty()
                            });
                }
                (fresh, live)
            })
            .collect();
        Cursor { entries, rows, has, now_ms, family: 0, queue: 0 }
    }

    /// Append to `out` until it holds at least `limit` bytes or the text ends; false once everything is written.
    /// A piece ends between whole queue slices, so it may pass `limit` by one queue's family.
    pub(crate) fn fill(&mut self, headers: &[Box<[u8]>], out: &mut Vec<u8>, limit: usize) -> bool {
        let mut tmp = Vec::with_capacity(32);
        while self.family < FAMILY_COUNT {
            let i = self.family;
            if !self.has[i] {
                self.family += 1;
                continue;
            }
            let def = &FAMILIES[i];
            if self.queue == 0 {
                out.extend_from_slice(&headers[i]);
            }
            while self.queue < self.entries.len() {
                if out.len() >= limit && self.queue > 0 {
                    return true;
                }
                let e = &self.entries[self.queue];
                let (fresh, interval_live) = self.rows[self.queue];
                self.queue += 1;
                let row = Row { text: &e.text, fresh, interval_live };
                if !row.shows(def.part) {
                    continue;
                }
                if def.pre_rendered() {
                    out.extend_from_slice(row.text.family(i));
                } else {
                    let t = row.text;
                    for line in t.dynamic(i) {
                        out.extend_from_slice(&t.buf[line.head.0 as usize..line.head.1 as usize]);
                        row.value(line.value, self.now_ms, &mut tmp);
                        out.extend_from_slice(&tmp);
                    }
                }
            }
            self.family += 1;
            self.queue = 0;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{
        Aggregate, AggregateStats, GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Source,
    };
    use crate::state::{Format, Store, StoreConfig};

    const T0: i64 = 1_735_550_000_000;

    /// Queues with observations, interval aggregates (counters and histograms), a withdrawn one and a quiet one.
    fn store() -> Store {
        let s = Store::new(StoreConfig::default());
        let meta = |i: usize| QueueMeta {
            id: format!("q{i}"),
            name: format!("Queue {i:03}"),
            division_id: "d1".into(),
            division: "Home".into(),
        };
        s.set_queues_at((0..40).map(meta).collect(), T0);
        for i in 0..39 {
            let stats = |n: f64| AggregateStats { count: Some(n), sum: Some(n * 9000.0), ..AggregateStats::default() };
            for step in 0..2 {
                let at = if i == 5 { T0 - 3_600_000 } else { T0 };
                let n = (i + step) as f64;
                s.apply_at(
                    QueueUpdate {
                        queue_id: format!("q{i}"),
                        source: Source::Stream,
                        event_ms: None,
                        complete: step == 0,
                        groups: vec![
                            GroupUpdate {
                                media_type: Some("voice".into()),
                                observations: vec![
                                    Observation { metric: ObsMetric::Waiting, qualifier: None, value: Some(n) },
                                    Observation {
                                        metric: ObsMetric::LongestWaiting,
                                        qualifier: None,
                                        value: Some((at - 5_000) as f64),
                                    },
                                ],
                                interval: None,
                                aggregates: vec![],
                            },
                            GroupUpdate {
                                media_type: Some("chat".into()),
                                observations: vec![],
                                interval: Some((T0 - 60_000, T0 + 1_740_000)),
                                aggregates: vec![
                                    Aggregate { metric: "nOffered".into(), qualifier: None, stats: stats(n + 1.0) },
                                    Aggregate { metric: "tAnswered".into(), qualifier: None, stats: stats(n) },
                                ],
                            },
                        ],
                    },
                    at,
                );
            }
        }
        s
    }

    #[test]
    fn pieces_concatenate_to_the_whole_text_at_any_piece_size() {
        let s = store();
        let now = T0 + 2_000;
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let mut whole = Vec::new();
            s.write_text(format, now, &mut whole);
            assert!(whole.len() > 20_000, "a text of many pieces");
            for limit in [1, 100, 4096, usize::MAX] {
                let mut pieces = s.text_pieces(format, now);
                let mut joined = Vec::new();
                let mut calls = 0;
                loop {
                    let mut piece = Vec::new();
                    let more = pieces.next_into(&mut piece, limit);
                    calls += 1;
                    joined.extend_from_slice(&piece);
                    if !more {
                        break;
                    }
                }
                assert_eq!(String::from_utf8_lossy(&joined), String::from_utf8_lossy(&whole), "limit {limit}");
                assert!(limit == usize::MAX || calls > 4, "limit {limit}: {calls} pieces");
            }
        }
    }
}
