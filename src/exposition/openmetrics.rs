//! OpenMetrics 1.0 text for the exporter's own registry (the `prometheus` crate only writes text 0.0.4).
//!
//! Converts gathered `MetricFamily`s: counters are declared without `_total` and sampled with it, untyped
//! becomes `unknown`, histograms always end with a `+Inf` bucket and `le`/`quantile` read as floats. The final
//! `# EOF` is the caller's, because the queue families come first in the same response.

use crate::state::text::{escape_help, escape_label, write_float_label, write_value};
use prometheus::proto::{LabelPair, MetricFamily, MetricType};

fn sample(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &[LabelPair], extra: Option<(&str, f64)>, value: f64) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || extra.is_some() {
        out.push(b'{');
        let mut first = true;
        for l in labels {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(l.name().as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label(out, l.value());
            out.push(b'"');
        }
        if let Some((k, v)) = extra {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            write_float_label(out, v);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    write_value(out, value);
    out.push(b'\n');
}

/// Append `families` in OpenMetrics text.
pub fn encode(families: &[MetricFamily], out: &mut Vec<u8>) {
    for mf in families {
        if mf.get_metric().is_empty() {
            continue;
        }
        let kind = mf.get_field_type();
        let (name, type_word) = match kind {
            MetricType::COUNTER => (mf.name().strip_suffix("_total").unwrap_or(mf.name()), "counter"),
            MetricType::GAUGE => (mf.name(), "gauge"),
            MetricType::HISTOGRAM => (mf.name(), "histogram"),
            MetricType::SUMMARY => (mf.name(), "summary"),
            MetricType::UNTYPED => (mf.name(), "unknown"),
        };
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        escape_help(out, mf.help(), true);
        out.extend_from_slice(b"\n# TYPE ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(type_word.as_bytes());
        out.push(b'\n');
        for m in mf.get_metric() {
            let labels = m.get_label();
            match kind {
                MetricType::COUNTER => sample(out, name, "_total", labels, None, m.get_counter().get_value()),
                MetricType::GAUGE => sample(out, name, "", labels, None, m.get_gauge().get_value()),
                // The crate offers no non-deprecated accessor (its own text encoder panics on untyped).
                #[allow(deprecated)]
                MetricType::UNTYPED => sample(out, name, "", labels, None, m.get_untyped().get_value()),
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    let mut has_inf = false;
                    for b in h.get_bucket() {
                        has_inf |= b.upper_bound() == f64::INFINITY;
                        let le = Some(("le", b.upper_bound()));
                        sample(out, name, "_bucket", labels, le, b.cumulative_count() as f64);
                    }
                    if !has_inf {
                        let le = Some(("le", f64::INFINITY));
                        sample(out, name, "_bucket", labels, le, h.get_sample_count() as f64);
                    }
                    sample(out, name, "_sum", labels, None, h.get_sample_sum());
                    sample(out, name, "_count", labels, None, h.get_sample_count() as f64);
                }
                MetricType::SUMMARY => {
                    let s = m.get_summary();
                    for q in s.get_quantile() {
                        sample(out, name, "", labels, Some(("quantile", q.quantile())), q.value());
                    }
                    sample(out, name, "_sum", labels, None, s.sample_sum());
                    sample(out, name, "_count", labels, None, s.sample_count() as f64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

    #[test]
    fn registry_families_become_openmetrics() {
        let r = Registry::new();
        let c = IntCounterVec::new(Opts::new("x_requests_total", "Requests \"made\"."), &["code"])
            .unwrap_or_else(|e| panic!("{e}"));
        let g = IntGauge::new("x_up", "Up.").unwrap_or_else(|e| panic!("{e}"));
        let h = Histogram::with_opts(HistogramOpts::new("x_latency_seconds", "Latency.").buckets(vec![0.5, 1.0]))
            .unwrap_or_else(|e| panic!("{e}"));
        for m in [Box::new(c.clone()) as Box<dyn prometheus::core::Collector>, Box::new(g.clone()), Box::new(h.clone())]
        {
            r.register(m).unwrap_or_else(|e| panic!("{e}"));
        }
        c.with_label_values(&["a\"b"]).inc_by(3);
        g.set(1);
        h.observe(0.7);
        let mut out = Vec::new();
        encode(&r.gather(), &mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        let expected = "# HELP x_latency_seconds Latency.\n# TYPE x_latency_seconds histogram\n\
            x_latency_seconds_bucket{le=\"0.5\"} 0\nx_latency_seconds_bucket{le=\"1.0\"} 1\n\
            x_latency_seconds_bucket{le=\"+Inf\"} 1\nx_latency_seconds_sum 0.7\nx_latency_seconds_count 1\n\
            # HELP x_requests Requests \\\"made\\\".\n# TYPE x_requests counter\nx_requests_total{code=\"a\\\"b\"} 3\n\
            # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n";
        assert_eq!(text, expected);
    }
}
