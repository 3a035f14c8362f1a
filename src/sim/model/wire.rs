//! Hand-written JSON for topic messages. A topic message is built for every changed queue every second (20,000
//! queues on one core), so it is appended to one `String` with `itoa` and a civil-date formatter instead of going
//! through `serde_json::Value` or `chrono` formatting (see `benches/sim_throughput.rs`).

use std::fmt::Write as _;

/// Append `v` as a JSON integer.
pub(super) fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

pub(super) fn push_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Append `v` as a JSON number (Rust's shortest round-trip form; `1` for 1.0 is valid JSON). Non-finite → 0.
pub(super) fn push_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push('0');
    }
}

/// Append `s` as the inside of a JSON string (no quotes).
pub(super) fn push_escaped(out: &mut String, s: &str) {
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn push_2(out: &mut String, v: u32) {
    out.push((b'0' + (v / 10) as u8) as char);
    out.push((b'0' + (v % 10) as u8) as char);
}

/// Append epoch milliseconds as Genesys writes instants: `2024-12-30T09:46:54.839Z` (same text as
/// `models::format_time_ms`, about 20× cheaper).
pub(super) fn push_time(out: &mut String, epoch_ms: i64) {
    let secs = epoch_ms.div_euclid(1000);
    let ms = epoch_ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    if (0..10_000).contains(&y) {
        let y = y as u32;
        push_2(out, y / 100);
        push_2(out, y % 100);
    } else {
        push_i64(out, y);
    }
    out.push('-');
    push_2(out, m);
    out.push('-');
    push_2(out, d);
    out.push('T');
    push_2(out, sod / 3600);
    out.push(':');
    push_2(out, sod / 60 % 60);
    out.push(':');
    push_2(out, sod % 60);
    out.push('.');
    out.push((b'0' + (ms / 100) as u8) as char);
    push_2(out, ms % 100);
    out.push('Z');
}

/// `start/end`.
pub(super) fn push_interval(out: &mut String, start: i64, end: i64) {
    push_time(out, start);
    out.push('/');
    push_time(out, end);
}

/// Append `,` unless this is the first item of a list.
pub(super) fn sep(out: &mut String, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
}

/// `{"metric":"…"[,"qualifier":"…"],"stats":{` — the caller writes the stats and closes with `}}`.
pub(super) fn open_metric(out: &mut String, metric: &str, qualifier: Option<&str>) {
    out.push_str("{\"metric\":\"");
    out.push_str(metric);
    out.push('"');
    if let Some(q) = qualifier {
        out.push_str(",\"qualifier\":\"");
        push_escaped(out, q);
        out.push('"');
    }
    out.push_str(",\"stats\":{");
}

/// `{"metric":…,"stats":{"count":n}}`
pub(super) fn count_metric(out: &mut String, metric: &str, qualifier: Option<&str>, count: u64) {
    open_metric(out, metric, qualifier);
    out.push_str("\"count\":");
    push_u64(out, count);
    out.push_str("}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesys::models::format_time_ms;

    #[test]
    fn time_matches_chrono() {
        for ms in [0i64, 1, 999, 1_735_551_414_839, 951_782_400_000, 4_102_444_799_999, 1_709_164_800_123] {
            let mut s = String::new();
            push_time(&mut s, ms);
            assert_eq!(s, format_time_ms(ms), "{ms}");
        }
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let ms = rng.i64(0..4_102_444_800_000);
            let mut s = String::new();
            push_time(&mut s, ms);
            assert_eq!(s, format_time_ms(ms));
        }
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        push_escaped(&mut s, "a\"b\\c\nd\u{1}é");
        let parsed: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }
}
