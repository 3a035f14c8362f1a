//! The `/metrics` body (Prometheus text 0.0.4) as OTLP metrics.
//!
//! Why parse our own text rather than walk the store: the body is exactly what a scrape gets at that moment (the
//! store's pre-rendered queue families, values computed at scrape time, withdrawn stale series, then the registry
//! with `process_*`), so push and scrape cannot drift apart and every family, present or future, is pushed. The
//! text is ours (`state::text` and the `prometheus` crate's encoder), so the parser only needs what they write:
//! `# HELP`/`# TYPE` lines, then samples `name{k="v",…} value`. Values round-trip (shortest f64 form).
//!
//! Names stay the Prometheus names (`_total`, `_seconds` included), so dashboards and alerts work unchanged behind
//! an OTLP-to-Prometheus bridge; that bridge's suffix rules add nothing to a name that already ends in its unit.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    Sum,
};
use std::collections::HashMap;

/// One attribute of the text: name and unescaped value.
type Labels = Vec<(String, String)>;

/// Times stamped on every point: now, and the start of cumulative series (the exporter's start: its counters and
/// histograms begin at zero then, the Prometheus way).
#[derive(Debug, Clone, Copy)]
pub struct Stamps {
    pub start_unix_nano: u64,
    pub now_unix_nano: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    /// Summaries (none are written today) are skipped rather than mistyped.
    Other,
}

/// A histogram series being assembled from its `_bucket`, `_sum` and `_count` lines.
#[derive(Default)]
struct HistAcc {
    labels: Labels,
    /// `(le, cumulative count)`, in text order (ascending).
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    numbers: Vec<NumberDataPoint>,
    hists: Vec<HistAcc>,
    hist_index: HashMap<Labels, usize>,
}

/// UCUM unit from the Prometheus base-unit suffix: `s`, `1` (ratios), `By`; none otherwise.
pub fn unit_of(name: &str) -> &'static str {
    let base = name.strip_suffix("_total").unwrap_or(name);
    if base.ends_with("_seconds") {
        "s"
    } else if base.ends_with("_ratio") {
        "1"
    } else if base.ends_with("_bytes") {
        "By"
    } else {
        ""
    }
}

/// Every family of `body` as an OTLP metric: gauges (and untyped) as gauges, counters as monotonic cumulative sums,
/// histograms as explicit-bucket cumulative histograms with the text's bounds. Lines that do not parse are skipped
/// (the text is ours; a test keeps it parseable).
pub fn metrics_from_text(body: &[u8], stamps: Stamps) -> Vec<Metric> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut help: Option<(String, String)> = None;
    let mut fam: Option<Family> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, h) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name.to_owned(), unescape_help(h)));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(f) = fam.take() {
                out.push(finish(f, stamps));
            }
            let (name, t) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = match t.trim() {
                "gauge" | "untyped" => Kind::Gauge,
                "counter" => Kind::Counter,
                "histogram" => Kind::Histogram,
                _ => Kind::Other,
            };
            let help = match help.take() {
                Some((n, h)) if n == name => h,
                _ => String::new(),
            };
            fam = Some(Family {
                name: name.to_owned(),
                help,
                kind,
                numbers: Vec::new(),
                hists: Vec::new(),
                hist_index: HashMap::new(),
            });
        } else if line.starts_with('#') || line.trim().is_empty() {
            continue;
        } else if let (Some(f), Some((name, labels, value))) = (fam.as_mut(), parse_sample(line)) {
            add_sample(f, name, labels, value, stamps);
        }
    }
    if let Some(f) = fam.take() {
        out.push(finish(f, stamps));
    }
    out.retain(|m| m.data.is_some());
    out
}

fn add_sample(f: &mut Family, name: &str, mut labels: Labels, value: f64, stamps: Stamps) {
    match f.kind {
        Kind::Gauge | Kind::Counter if name == f.name => {
            let start = if f.kind == Kind::Counter { stamps.start_unix_nano } else { 0 };
            f.numbers.push(NumberDataPoint {
                attributes: attributes(&labels),
                start_time_unix_nano: start,
                time_unix_nano: stamps.now_unix_nano,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            });
        }
        Kind::Histogram => {
            let Some(suffix) = name.strip_prefix(f.name.as_str()) else { return };
            let le = if suffix == "_bucket" {
                let Some(pos) = labels.iter().position(|(k, _)| k == "le") else { return };
                let (_, le) = labels.remove(pos);
                let Some(le) = parse_value(&le) else { return };
                Some(le)
            } else {
                None
            };
            let i = match f.hist_index.get(&labels) {
                Some(&i) => i,
                None => {
                    f.hists.push(HistAcc { labels: labels.clone(), ..HistAcc::default() });
                    f.hist_index.insert(labels, f.hists.len() - 1);
                    f.hists.len() - 1
                }
            };
            let h = &mut f.hists[i];
            match (suffix, le) {
                ("_bucket", Some(le)) => h.buckets.push((le, value)),
                ("_sum", _) => h.sum = value,
                ("_count", _) => h.count = value,
                _ => {}
            }
        }
        _ => {}
    }
}

fn finish(f: Family, stamps: Stamps) -> Metric {
    let data = match f.kind {
        Kind::Gauge if !f.numbers.is_empty() => Some(metric::Data::Gauge(Gauge { data_points: f.numbers })),
        Kind::Counter if !f.numbers.is_empty() => Some(metric::Data::Sum(Sum {
            data_points: f.numbers,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        Kind::Histogram if !f.hists.is_empty() => Some(metric::Data::Histogram(Histogram {
            data_points: f.hists.into_iter().map(|h| histogram_point(h, stamps)).collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        _ => None,
    };
    Metric { unit: unit_of(&f.name).to_owned(), name: f.name, description: f.help, data, ..Default::default() }
}

/// Cumulative `le` buckets to OTLP's per-bucket counts; the `+Inf` bucket is the last count (OTLP has one more
/// count than bounds).
fn histogram_point(h: HistAcc, stamps: Stamps) -> HistogramDataPoint {
    let mut bounds = Vec::with_capacity(h.buckets.len());
    let mut counts = Vec::with_capacity(h.buckets.len() + 1);
    let mut prev = 0.0;
    let mut saw_inf = false;
    for (le, cum) in &h.buckets {
        counts.push(to_count(cum - prev));
        prev = *cum;
        if le.is_infinite() {
            saw_inf = true;
        } else {
            bounds.push(*le);
        }
    }
    if !saw_inf {
        counts.push(to_count(h.count - prev));
    }
    HistogramDataPoint {
        attributes: attributes(&h.labels),
        start_time_unix_nano: stamps.start_unix_nano,
        time_unix_nano: stamps.now_unix_nano,
        count: to_count(h.count),
        sum: Some(h.sum),
        bucket_counts: counts,
        explicit_bounds: bounds,
        ..Default::default()
    }
}

fn to_count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

pub(crate) fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| string_kv(k, v)).collect()
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// `name{k="v",…} value [timestamp]` → name, labels, value.
fn parse_sample(line: &str) -> Option<(&str, Labels, f64)> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    Some((name, labels, parse_value(value)?))
}

/// Labels up to and including the closing `}`; returns them and what follows.
fn parse_labels(mut s: &str) -> Option<(Labels, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.push((key.trim().to_owned(), value));
        s = &after[end + 1..];
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMPS: Stamps = Stamps { start_unix_nano: 1, now_unix_nano: 2 };

    fn attrs(kv: &[KeyValue]) -> Vec<(String, String)> {
        kv.iter()
            .map(|k| {
                let v = match k.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    _ => String::new(),
                };
                (k.key.clone(), v)
            })
            .collect()
    }

    #[test]
    fn gauges_counters_and_histograms_convert() {
        let body = br#"# HELP genesys_queue_waiting Conversations waiting.
# TYPE genesys_queue_waiting gauge
genesys_queue_waiting{queue_id="q1",queue="Sales \"EU\"\\x",media_type="voice"} 3
genesys_queue_waiting{queue_id="q2",queue="B",media_type="chat"} 0.25
# HELP genesys_queue_offered_total Offered.
# TYPE genesys_queue_offered_total counter
genesys_queue_offered_total{queue_id="q1",queue="A",media_type="voice"} 7
# HELP genesys_queue_answer_wait_seconds Wait.
# TYPE genesys_queue_answer_wait_seconds histogram
genesys_queue_answer_wait_seconds_bucket{queue_id="q1",queue="A",media_type="voice",le="5"} 1
genesys_queue_answer_wait_seconds_bucket{queue_id="q1",queue="A",media_type="voice",le="10"} 3
genesys_queue_answer_wait_seconds_bucket{queue_id="q1",queue="A",media_type="voice",le="+Inf"} 4
genesys_queue_answer_wait_seconds_sum{queue_id="q1",queue="A",media_type="voice"} 41.5
genesys_queue_answer_wait_seconds_count{queue_id="q1",queue="A",media_type="voice"} 4
# HELP genesys_queue_service_level_ratio SL.
# TYPE genesys_queue_service_level_ratio gauge
# HELP process_resident_memory_bytes RSS.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.5e7
"#;
        let m = metrics_from_text(body, STAMPS);
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        // A family without samples is left out, as a scrape shows none.
        assert_eq!(
            names,
            [
                "genesys_queue_waiting",
                "genesys_queue_offered_total",
                "genesys_queue_answer_wait_seconds",
                "process_resident_memory_bytes"
            ]
        );
        let Some(metric::Data::Gauge(g)) = &m[0].data else { panic!("gauge") };
        assert_eq!(m[0].description, "Conversations waiting.");
        assert_eq!(m[0].unit, "");
        assert_eq!(g.data_points.len(), 2);
        assert_eq!(g.data_points[0].value, Some(number_data_point::Value::AsDouble(3.0)));
        assert_eq!(
            attrs(&g.data_points[0].attributes),
            [
                ("queue_id".to_owned(), "q1".to_owned()),
                ("queue".to_owned(), "Sales \"EU\"\\x".to_owned()),
                ("media_type".to_owned(), "voice".to_owned())
            ]
        );
        assert_eq!(g.data_points[1].value, Some(number_data_point::Value::AsDouble(0.25)));
        let Some(metric::Data::Sum(s)) = &m[1].data else { panic!("sum") };
        assert!(s.is_monotonic);
        assert_eq!(s.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        assert_eq!(s.data_points[0].start_time_unix_nano, 1);
        assert_eq!(s.data_points[0].time_unix_nano, 2);
        let Some(metric::Data::Histogram(h)) = &m[2].data else { panic!("histogram") };
        assert_eq!(m[2].unit, "s");
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds, [5.0, 10.0]);
        assert_eq!(p.bucket_counts, [1, 2, 1]);
        assert_eq!((p.count, p.sum), (4, Some(41.5)));
        assert_eq!(attrs(&p.attributes).len(), 3, "le is not an attribute");
        assert_eq!(m[3].unit, "By");
    }

    #[test]
    fn units_follow_the_base_unit_suffix() {
        assert_eq!(unit_of("genesys_queue_data_age_seconds"), "s");
        assert_eq!(unit_of("process_cpu_seconds_total"), "s");
        assert_eq!(unit_of("genesys_queue_service_level_ratio"), "1");
        assert_eq!(unit_of("genesys_queue_offered_total"), "");
    }

    #[test]
    fn the_real_body_parses_completely() {
        // Every sample line of a real /metrics body lands in exactly one data point (or histogram line).
        let store = crate::state::Store::default();
        let metrics = crate::telemetry::SelfMetrics::new();
        metrics.api_request_duration_seconds.with_label_values(&["queues"]).observe(0.2);
        let body = crate::exposition::encode(&store, metrics.registry(), crate::state::Format::Prometheus, 0)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let samples = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
        let m = metrics_from_text(&body, STAMPS);
        let mut points = 0;
        for m in &m {
            points += match &m.data {
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::Histogram(h)) => {
                    h.data_points.iter().map(|p| p.explicit_bounds.len() + 1 + 2).sum::<usize>()
                }
                _ => 0,
            };
        }
        assert_eq!(points, samples);
    }
}
