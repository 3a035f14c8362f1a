//! Content negotiation for `/metrics`: which text format (`Accept`) and whether to gzip (`Accept-Encoding`).
//!
//! Prometheus asks for OpenMetrics with `Accept: application/openmetrics-text;version=1.0.0;q=0.5,…,
//! text/plain;version=0.0.4;q=0.3,*/*;q=0.2`; the media range with the highest `q` that we can produce wins, ties
//! go to the earlier one, and anything unknown falls back to Prometheus text 0.0.4, as client_golang does.

use crate::state::Format;

/// `(media range parameters…, q)` of each element of a comma-separated header; `q` defaults to 1.
fn elements(header: &str) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f32)> {
    header.split(',').filter_map(|element| {
        let mut parts = element.split(';').map(str::trim);
        let value = parts.next().filter(|v| !v.is_empty())?;
        let mut q = 1.0f32;
        let mut params = Vec::new();
        for p in parts {
            let Some((k, v)) = p.split_once('=') else { continue };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k.eq_ignore_ascii_case("q") {
                q = v.parse().unwrap_or(0.0);
            } else {
                params.push((k, v));
            }
        }
        Some((value, params, q))
    })
}

/// The format to answer with for this `Accept` header.
pub fn format_for(accept: Option<&str>) -> Format {
    let Some(accept) = accept else { return Format::Prometheus };
    let mut best: Option<(f32, Format)> = None;
    for (range, params, q) in elements(accept) {
        if q <= 0.0 {
            continue;
        }
        let version = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("version")).map(|(_, v)| *v);
        let format = if range.eq_ignore_ascii_case("application/openmetrics-text") {
            // 0.0.1 is the pre-1.0 draft, which our 1.0 output satisfies.
            match version {
                None | Some("1.0.0") | Some("0.0.1") => Format::OpenMetrics,
                Some(_) => continue,
            }
        } else if range.eq_ignore_ascii_case("text/plain") {
            match version {
                None | Some("0.0.4") => Format::Prometheus,
                Some(_) => continue,
            }
        } else if range == "*/*" || range.eq_ignore_ascii_case("text/*") {
            Format::Prometheus
        } else {
            continue;
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::Prometheus, |(_, f)| f)
}

/// Whether `Accept-Encoding` accepts gzip (explicitly or through `*`), with a non-zero q.
pub fn wants_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else { return false };
    let mut gzip: Option<f32> = None;
    let mut star: Option<f32> = None;
    for (coding, _, q) in elements(header) {
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            star = Some(q);
        }
    }
    gzip.or(star).is_some_and(|q| q > 0.0)
}

/// `Content-Type` of a format.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_scrape_headers_pick_openmetrics() {
        let prom3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
                     application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
                     text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(format_for(Some(prom3)), Format::OpenMetrics);
        assert_eq!(format_for(Some("application/openmetrics-text")), Format::OpenMetrics);
        let prom2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                     text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format_for(Some(prom2)), Format::OpenMetrics);
    }

    #[test]
    fn everything_else_gets_prometheus_text() {
        assert_eq!(format_for(None), Format::Prometheus);
        assert_eq!(format_for(Some("*/*")), Format::Prometheus);
        assert_eq!(format_for(Some("text/plain;version=0.0.4")), Format::Prometheus);
        assert_eq!(format_for(Some("text/html,application/xhtml+xml")), Format::Prometheus);
        // Preferred text, OpenMetrics only as a fallback.
        assert_eq!(format_for(Some("text/plain;q=0.9,application/openmetrics-text;q=0.5")), Format::Prometheus);
        // Refused explicitly, or a version we cannot produce.
        assert_eq!(format_for(Some("application/openmetrics-text;q=0")), Format::Prometheus);
        assert_eq!(format_for(Some("application/openmetrics-text;version=2.0.0")), Format::Prometheus);
    }

    #[test]
    fn gzip_when_accepted() {
        assert!(wants_gzip(Some("gzip")));
        assert!(wants_gzip(Some("deflate, gzip;q=0.8")));
        assert!(wants_gzip(Some("*")));
        assert!(!wants_gzip(Some("gzip;q=0")));
        assert!(!wants_gzip(Some("identity")));
        assert!(!wants_gzip(Some("*;q=0.5, gzip;q=0")));
        assert!(!wants_gzip(None));
    }
}
