//! Interval aggregates → real counters and histograms.
//!
//! Genesys reports conversation aggregates per 30-minute interval (`nOffered`, `tAnswered`, …: count, sum, min,
//! max; durations in ms) and restarts them from zero at each boundary. Prometheus wants monotonic counters and
//! cumulative histograms, so this module keeps, per (queue, media type), the totals it has counted and, per
//! metric, a high-water mark of the interval values already counted. Only increases above the mark count:
//!
//! - the first interval seen for a (queue, media type) is the *baseline*: its values set the marks and count
//!   nothing, so a restarted exporter starts at 0 rather than jumping by the interval so far;
//! - the same values applied twice (a REST re-seed or reconcile after a topic message) add nothing, and a value
//!   lower than the mark (an older read arriving late) adds nothing and does not lower the mark;
//! - a newer interval resets the marks to zero: its values count in full. What the old interval gained after
//!   the last update we saw of it is lost (unavoidable: Genesys never sends it again);
//! - an older interval is ignored.
//!
//! `_count` and `_sum` are exact. The bucket of one new conversation is exact (its duration is the sum's growth);
//! several new conversations in one step are distributed by [`distribute`]. Pure data, no clock, no I/O, no
//! metric names (those are in `families`).

use crate::model::{Aggregate, AggregateStats};

/// The counters, each read from the count of one interval aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterMetric {
    /// `nOffered`.
    Offered,
    /// `tAnswered` count.
    Answered,
    /// `tAbandon` count.
    Abandoned,
}

/// The histograms, each distributing the durations of one `t*` interval aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramMetric {
    /// `tAnswered`: time in queue of the answered conversations.
    AnswerWait,
    /// `tAbandon`: time in queue of the abandoned conversations.
    AbandonWait,
    /// `tHandle`: talk + hold + after-call work of handled conversations.
    Handle,
}

impl HistogramMetric {
    fn index(self) -> usize {
        self as usize
    }
}

/// The aggregates this module follows (index into [`MediaTotals::marks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    Offered,
    Answered,
    Abandon,
    Handle,
}

impl Tracked {
    const ALL: [Tracked; 4] = [Tracked::Offered, Tracked::Answered, Tracked::Abandon, Tracked::Handle];

    fn wire_name(self) -> &'static str {
        match self {
            Tracked::Offered => "nOffered",
            Tracked::Answered => "tAnswered",
            Tracked::Abandon => "tAbandon",
            Tracked::Handle => "tHandle",
        }
    }

    fn counter(self) -> Option<CounterMetric> {
        match self {
            Tracked::Offered => Some(CounterMetric::Offered),
            Tracked::Answered => Some(CounterMetric::Answered),
            Tracked::Abandon => Some(CounterMetric::Abandoned),
            Tracked::Handle => None,
        }
    }

    fn histogram(self) -> Option<HistogramMetric> {
        match self {
            Tracked::Offered => None,
            Tracked::Answered => Some(HistogramMetric::AnswerWait),
            Tracked::Abandon => Some(HistogramMetric::AbandonWait),
            Tracked::Handle => Some(HistogramMetric::Handle),
        }
    }
}

/// What of one aggregate of the current interval has already been counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Mark {
    count: f64,
    /// ms.
    sum: f64,
    /// ms; `None` while the interval has no observation counted (or the source gave none).
    min: Option<f64>,
    max: Option<f64>,
}

/// A cumulative-at-render histogram: per-bucket counts (the last slot is `+Inf`), the exact count and sum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    /// Non-cumulative; `buckets.len() == bounds.len() + 1`.
    pub buckets: Box<[u64]>,
    pub count: u64,
    /// Milliseconds (Genesys's unit), so the sum stays an exact integer; rendered as seconds.
    pub sum_ms: f64,
}

impl Histogram {
    fn new(bounds: usize) -> Self {
        Histogram { buckets: vec![0; bounds + 1].into_boxed_slice(), count: 0, sum_ms: 0.0 }
    }

    /// Add `n` observations of `value_ms` to their bucket (`bounds` in seconds, ascending).
    fn observe(&mut self, bounds: &[f64], value_ms: f64, n: u64) {
        let secs = value_ms / 1000.0;
        let i = bounds.iter().position(|&b| secs <= b).unwrap_or(bounds.len());
        // Saturating: a garbage count from the wire must not wrap (or, in debug builds, panic) the counter.
        self.buckets[i] = self.buckets[i].saturating_add(n);
    }

    /// Cumulative counts, bucket by bucket, ending with `+Inf` (== `count`).
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().scan(0u64, |acc, &b| {
            *acc = acc.saturating_add(b);
            Some(*acc)
        })
    }
}

/// The counters and histograms of one (queue, media type), with the marks of the interval they are at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaTotals {
    /// Start (epoch ms) of the interval the marks belong to.
    interval_start: i64,
    marks: [Mark; 4],
    pub counters: [u64; 3],
    pub histograms: [Histogram; 3],
}

/// What one aggregate update did to a media type's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Counted (or baselined) without a visible change.
    Unchanged,
    /// A total grew (or the series are new): re-render.
    Changed,
    /// The update is about an interval older than the marks: ignored.
    OldInterval,
}

impl MediaTotals {
    /// The baseline: the first interval seen. Its values are marked and count nothing.
    pub fn baseline(bounds: &[f64], interval_start: i64, aggregates: &[Aggregate]) -> Self {
        let mut t = MediaTotals {
            interval_start,
            marks: [Mark::default(); 4],
            counters: [0; 3],
            histograms: [Histogram::new(bounds.len()), Histogram::new(bounds.len()), Histogram::new(bounds.len())],
        };
        for tr in Tracked::ALL {
            if let Some(s) = find(aggregates, tr) {
                t.marks[tr as usize] =
                    Mark { count: s.count.unwrap_or(0.0), sum: s.sum.unwrap_or(0.0), min: s.min, max: s.max };
            }
        }
        t
    }

    pub fn counter(&self, c: CounterMetric) -> u64 {
        self.counters[c as usize]
    }

    pub fn histogram(&self, h: HistogramMetric) -> &Histogram {
        &self.histograms[h.index()]
    }

    /// Count the growth of `aggregates` (the values of interval `interval_start`) above the marks.
    pub fn apply(&mut self, bounds: &[f64], interval_start: i64, aggregates: &[Aggregate]) -> Step {
        if interval_start < self.interval_start {
            return Step::OldInterval;
        }
        if interval_start > self.interval_start {
            // Rollover: the new interval counts from zero. Whatever the old one gained after our last update
            // of it is lost.
            self.interval_start = interval_start;
            self.marks = [Mark::default(); 4];
        }
        let mut changed = false;
        for tr in Tracked::ALL {
            let Some(s) = find(aggregates, tr) else { continue };
            let mark = &mut self.marks[tr as usize];
            let count = s.count.unwrap_or(0.0);
            // Within an interval count and sum only grow; a lower count is an older read: ignore all of it (its
            // sum/min/max are as old), and keep the mark so the newer values are not counted again later.
            if count <= mark.count {
                continue;
            }
            let k = (count - mark.count).round() as u64;
            if k == 0 {
                continue;
            }
            let sum = s.sum.unwrap_or(mark.sum);
            let grown = (sum - mark.sum).max(0.0);
            let before = *mark;
            mark.count = count;
            mark.sum = mark.sum.max(sum);
            mark.min = min_opt(mark.min, s.min);
            mark.max = max_opt(mark.max, s.max);
            changed = true;
            if let Some(c) = tr.counter() {
                self.counters[c as usize] = self.counters[c as usize].saturating_add(k);
            }
            if let Some(h) = tr.histogram() {
                let hist = &mut self.histograms[h.index()];
                hist.count = hist.count.saturating_add(k);
                hist.sum_ms += grown;
                for (value, n) in distribute(k, grown, before, s) {
                    hist.observe(bounds, value, n);
                }
            }
        }
        if changed {
            Step::Changed
        } else {
            Step::Unchanged
        }
    }
}

fn find(aggregates: &[Aggregate], tr: Tracked) -> Option<&AggregateStats> {
    aggregates.iter().find(|a| a.qualifier.is_none() && a.metric == tr.wire_name()).map(|a| &a.stats)
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Where `k` new observations whose durations add up to `sum_ms` go, as `(value_ms, how many)`.
///
/// - `k == 1`: the one observation is `sum_ms` (exact).
/// - `k > 1`: an observation is known exactly when the step moved an extreme of the interval: a new minimum
///   (lower than `before.min`, or the first observations of the interval) is one of the new conversations, and
///   so is a new maximum. Those are placed at their value; the rest of the mass, `(sum − placed) / (k − placed)`,
///   is placed at that mean for each remaining observation, clamped to the interval's `[min, max]`. With `k == 2`
///   and one extreme moved, or the interval's first two, this is exact. If the extremes do not fit the sum
///   (inconsistent source data), all `k` go at the mean `sum / k`.
///
/// Every observation is placed, so the buckets always add up to `_count`; `_sum` is kept separately and exact.
pub(crate) fn distribute(k: u64, sum_ms: f64, before: Mark, now: &AggregateStats) -> Vec<(f64, u64)> {
    if k == 0 {
        return Vec::new();
    }
    if k == 1 {
        return vec![(sum_ms, 1)];
    }
    let mut placed: Vec<f64> = Vec::with_capacity(2);
    // The interval's first observations: its min and max are two of them (distinct ones, as k >= 2).
    let first = before.count <= 0.0;
    if let Some(min) = now.min {
        if first || before.min.is_some_and(|m| min < m) {
            placed.push(min);
        }
    }
    if let Some(max) = now.max {
        if first || before.max.is_some_and(|m| max > m) {
            placed.push(max);
        }
    }
    let mass: f64 = placed.iter().sum();
    let rest = k - placed.len() as u64;
    if mass > sum_ms {
        return vec![(clamp(sum_ms / k as f64, now), k)];
    }
    let mut out: Vec<(f64, u64)> = placed.into_iter().map(|v| (v, 1)).collect();
    if rest > 0 {
        out.push((clamp((sum_ms - mass) / rest as f64, now), rest));
    }
    out
}

fn clamp(v: f64, s: &AggregateStats) -> f64 {
    let v = match s.min {
        Some(min) if v < min => min,
        _ => v,
    };
    match s.max {
        Some(max) if v > max => max,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &[f64] = &[5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0];
    const I1: i64 = 1_735_551_000_000;
    const I2: i64 = I1 + 1_800_000;
    const I3: i64 = I2 + 1_800_000;

    fn t(count: f64, sum: f64, min: f64, max: f64) -> AggregateStats {
        AggregateStats {
            count: Some(count),
            sum: Some(sum),
            min: Some(min),
            max: Some(max),
            ..AggregateStats::default()
        }
    }

    fn aggs(answered: AggregateStats, offered: f64) -> Vec<Aggregate> {
        vec![
            Aggregate { metric: "tAnswered".into(), qualifier: None, stats: answered },
            Aggregate {
                metric: "nOffered".into(),
                qualifier: None,
                stats: AggregateStats { count: Some(offered), ..AggregateStats::default() },
            },
        ]
    }

    #[test]
    fn absurd_counts_saturate_instead_of_overflowing() {
        // Found writing the `store` fuzz target: a wire count of 1e300 is u64::MAX conversations, and the next
        // interval's count added to it overflowed the counter (a panic in debug builds, a wrap in release).
        let huge = t(1e300, 1e300, 1.0, 1e300);
        let mut m = MediaTotals::baseline(B, I1, &[]);
        m.apply(B, I1, &aggs(huge, 1e300));
        m.apply(B, I2, &aggs(huge, 1e300));
        m.apply(B, I3, &aggs(huge, 1e300));
        assert_eq!(m.counter(CounterMetric::Offered), u64::MAX);
        let h = m.histogram(HistogramMetric::AnswerWait);
        assert_eq!(h.count, u64::MAX);
        assert_eq!(h.cumulative().last(), Some(u64::MAX), "+Inf saturates with the count");
    }

    fn answered(t: &MediaTotals) -> (u64, f64, Vec<u64>) {
        let h = t.histogram(HistogramMetric::AnswerWait);
        (h.count, h.sum_ms, h.buckets.to_vec())
    }

    /// Non-cumulative bucket vector with `n` in the bucket of each listed seconds value.
    fn buckets(obs: &[(f64, u64)]) -> Vec<u64> {
        let mut h = Histogram::new(B.len());
        for &(secs, n) in obs {
            h.observe(B, secs * 1000.0, n);
        }
        h.buckets.to_vec()
    }

    #[test]
    fn the_first_interval_is_the_baseline() {
        let mut m = MediaTotals::baseline(B, I1, &aggs(t(10.0, 100_000.0, 2_000.0, 30_000.0), 12.0));
        assert_eq!(m.counter(CounterMetric::Offered), 0);
        assert_eq!(m.counter(CounterMetric::Answered), 0);
        assert_eq!(answered(&m), (0, 0.0, vec![0; 12]));
        // Re-applying the baseline adds nothing.
        assert_eq!(m.apply(B, I1, &aggs(t(10.0, 100_000.0, 2_000.0, 30_000.0), 12.0)), Step::Unchanged);
        assert_eq!(m.counter(CounterMetric::Offered), 0);
        // Growth after it counts.
        assert_eq!(m.apply(B, I1, &aggs(t(11.0, 107_000.0, 2_000.0, 30_000.0), 13.0)), Step::Changed);
        assert_eq!(m.counter(CounterMetric::Offered), 1);
        assert_eq!(m.counter(CounterMetric::Answered), 1);
        assert_eq!(answered(&m), (1, 7_000.0, buckets(&[(7.0, 1)])));
    }

    #[test]
    fn a_single_step_is_an_exact_observation() {
        let mut m = MediaTotals::baseline(B, I1, &aggs(t(1.0, 4_000.0, 4_000.0, 4_000.0), 1.0));
        // 4 s → 64.5 s: the new conversation waited 60.5 s: bucket le=90, not le=60.
        m.apply(B, I1, &aggs(t(2.0, 64_500.0, 4_000.0, 60_500.0), 2.0));
        assert_eq!(answered(&m), (1, 60_500.0, buckets(&[(60.5, 1)])));
        // Exactly on a bound: le is inclusive.
        m.apply(B, I1, &aggs(t(3.0, 74_500.0, 4_000.0, 60_500.0), 3.0));
        assert_eq!(m.histogram(HistogramMetric::AnswerWait).buckets[1], 1, "10 s goes to le=10");
    }

    #[test]
    fn several_in_one_step_are_distributed_by_extremes_and_mean() {
        // k = 4, sum 100 s, the max moved to 70 s: one at 70, three at (100 − 70)/3 = 10 s.
        let before = Mark { count: 5.0, sum: 50_000.0, min: Some(2_000.0), max: Some(20_000.0) };
        let now = t(9.0, 150_000.0, 2_000.0, 70_000.0);
        assert_eq!(distribute(4, 100_000.0, before, &now), vec![(70_000.0, 1), (10_000.0, 3)]);
        // Both extremes moved: one at each, the other two at the mean of the rest.
        let now = t(9.0, 150_000.0, 1_000.0, 70_000.0);
        assert_eq!(distribute(4, 100_000.0, before, &now), vec![(1_000.0, 1), (70_000.0, 1), (14_500.0, 2)]);
        // Neither moved: all at the mean, clamped to the interval's range.
        let now = t(9.0, 150_000.0, 2_000.0, 20_000.0);
        assert_eq!(distribute(4, 100_000.0, before, &now), vec![(20_000.0, 4)]);
        assert_eq!(distribute(4, 40_000.0, before, &now), vec![(10_000.0, 4)]);
        // The interval's first two: min and max, exactly.
        let now = t(2.0, 50_000.0, 8_000.0, 42_000.0);
        assert_eq!(distribute(2, 50_000.0, Mark::default(), &now), vec![(8_000.0, 1), (42_000.0, 1)]);
        // Inconsistent extremes (more than the sum): all at the mean.
        let now = t(9.0, 150_000.0, 2_000.0, 170_000.0);
        assert_eq!(distribute(2, 100_000.0, before, &now), vec![(50_000.0, 2)]);
        // Through the totals: buckets add up to the count, sum exact.
        let mut m = MediaTotals::baseline(B, I1, &aggs(t(5.0, 50_000.0, 2_000.0, 20_000.0), 5.0));
        m.apply(B, I1, &aggs(t(9.0, 150_000.0, 2_000.0, 70_000.0), 9.0));
        assert_eq!(answered(&m), (4, 100_000.0, buckets(&[(70.0, 1), (10.0, 3)])));
    }

    #[test]
    fn duplicates_and_older_reads_add_nothing_and_do_not_lower_the_mark() {
        let mut m = MediaTotals::baseline(B, I1, &aggs(t(2.0, 20_000.0, 5_000.0, 15_000.0), 2.0));
        m.apply(B, I1, &aggs(t(4.0, 50_000.0, 5_000.0, 20_000.0), 4.0));
        let after = m.clone();
        // The same values again (REST re-seed after the topic message).
        assert_eq!(m.apply(B, I1, &aggs(t(4.0, 50_000.0, 5_000.0, 20_000.0), 4.0)), Step::Unchanged);
        assert_eq!(m, after);
        // An older read: lower values. Nothing counted, nothing negative.
        assert_eq!(m.apply(B, I1, &aggs(t(3.0, 30_000.0, 5_000.0, 15_000.0), 3.0)), Step::Unchanged);
        assert_eq!(m, after);
        // The newer values arrive again: not counted twice.
        assert_eq!(m.apply(B, I1, &aggs(t(4.0, 50_000.0, 5_000.0, 20_000.0), 4.0)), Step::Unchanged);
        assert_eq!(m.counter(CounterMetric::Answered), 2);
        assert_eq!(answered(&m).1, 30_000.0);
    }

    #[test]
    fn two_rollovers_stay_monotonic_and_old_intervals_are_ignored() {
        let mut m = MediaTotals::baseline(B, I1, &aggs(t(3.0, 30_000.0, 5_000.0, 15_000.0), 3.0));
        m.apply(B, I1, &aggs(t(4.0, 42_000.0, 5_000.0, 15_000.0), 5.0));
        assert_eq!((m.counter(CounterMetric::Offered), m.counter(CounterMetric::Answered)), (2, 1));
        // Rollover: the new interval's values count from zero.
        m.apply(B, I2, &aggs(t(1.0, 3_000.0, 3_000.0, 3_000.0), 2.0));
        assert_eq!((m.counter(CounterMetric::Offered), m.counter(CounterMetric::Answered)), (4, 2));
        assert_eq!(answered(&m), (2, 15_000.0, buckets(&[(12.0, 1), (3.0, 1)])));
        // A late message of the old interval: ignored.
        assert_eq!(m.apply(B, I1, &aggs(t(9.0, 99_000.0, 5_000.0, 15_000.0), 9.0)), Step::OldInterval);
        m.apply(B, I2, &aggs(t(2.0, 8_000.0, 3_000.0, 5_000.0), 2.0));
        // Second rollover, first seen with two conversations already: both counted, placed at min and max.
        m.apply(B, I3, &aggs(t(2.0, 700_000.0, 40_000.0, 660_000.0), 3.0));
        assert_eq!((m.counter(CounterMetric::Offered), m.counter(CounterMetric::Answered)), (7, 5));
        assert_eq!(answered(&m), (5, 720_000.0, buckets(&[(12.0, 1), (3.0, 1), (5.0, 1), (40.0, 1), (660.0, 1)])));
        assert_eq!(m.histogram(HistogramMetric::AnswerWait).buckets[B.len()], 1, "660 s is beyond 600: +Inf only");
        let cum: Vec<u64> = m.histogram(HistogramMetric::AnswerWait).cumulative().collect();
        assert_eq!(cum.last(), Some(&5));
        assert!(cum.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn metrics_without_a_sum_count_but_observe_nothing_wrong() {
        // nOffered has no sum; a t-metric without min/max falls back to the mean.
        let mut m = MediaTotals::baseline(B, I1, &[]);
        let s = AggregateStats { count: Some(3.0), sum: Some(30_000.0), ..AggregateStats::default() };
        m.apply(B, I1, &[Aggregate { metric: "tAbandon".into(), qualifier: None, stats: s }]);
        assert_eq!(m.counter(CounterMetric::Abandoned), 3);
        let h = m.histogram(HistogramMetric::AbandonWait);
        assert_eq!((h.count, h.sum_ms, h.buckets[1]), (3, 30_000.0, 3));
    }
}
