//! Byte-level helpers of the Prometheus and OpenMetrics text formats: escaping and number formatting.
//!
//! Shared by the queue renderer and the exposition's OpenMetrics encoder so both spell values the same way. No
//! allocation: everything appends to the caller's buffer.

/// Append a label value escaped per the text formats (`\\`, `\"`, `\n`).
pub fn escape_label(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most values need no escaping: copy them in one go. A fold without early exit vectorises; values are short.
    if !bytes.iter().fold(false, |any, &b| any | matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Append HELP text escaped: `\\` and `\n` in Prometheus text 0.0.4; OpenMetrics also escapes `"`.
pub fn escape_help(out: &mut Vec<u8>, s: &str, openmetrics: bool) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if openmetrics => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

/// Largest magnitude below which every integer is exact in an f64 (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Append a sample value. Integral values print without a fraction (`3`, not `3.0`) through `itoa`; others use
/// the shortest representation that round-trips.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if let Some(i) = exact_int(v) {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(i).as_bytes());
    } else {
        write_float(out, v);
    }
}

/// `v` as an integer when it is one (and exact in an f64). A round trip through `i64` rather than `fract()`,
/// which is a libm call on baseline x86-64.
fn exact_int(v: f64) -> Option<i64> {
    let i = v as i64;
    (v.abs() < EXACT_INT && i as f64 == v).then_some(i)
}

/// Append a value that must read as a float in OpenMetrics (`le`, `quantile`): integral values get `.0`.
pub fn write_float_label(out: &mut Vec<u8>, v: f64) {
    if let Some(i) = exact_int(v) {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(i).as_bytes());
        out.extend_from_slice(b".0");
    } else {
        write_value(out, v);
    }
}

fn write_float(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    // `Display` for f64 is the shortest round-trip form; writing to a Vec cannot fail.
    let _ = write!(out, "{v}");
}

/// Append an integer.
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Append milliseconds as seconds (`12345` → `12.345`), exact to the millisecond.
pub fn write_ms_as_seconds(out: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        out.push(b'-');
    }
    let ms = ms.unsigned_abs();
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(ms / 1000).as_bytes());
    let frac = ms % 1000;
    if frac != 0 {
        out.push(b'.');
        let digits = [b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
        let len = if digits[2] != b'0' {
            3
        } else if digits[1] != b'0' {
            2
        } else {
            1
        };
        out.extend_from_slice(&digits[..len]);
    }
}

pub use crate::model::snake_case;

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(s(|o| escape_label(o, "plain")), "plain");
        assert_eq!(s(|o| escape_label(o, "a\\b\"c\nd")), "a\\\\b\\\"c\\nd");
        assert_eq!(s(|o| escape_label(o, "Ventes – Île")), "Ventes – Île");
    }

    #[test]
    fn help_escaping_differs_by_format() {
        assert_eq!(s(|o| escape_help(o, "a \"b\"\n\\", false)), "a \"b\"\\n\\\\");
        assert_eq!(s(|o| escape_help(o, "a \"b\"", true)), "a \\\"b\\\"");
    }

    #[test]
    fn values_print_compactly_and_exactly() {
        assert_eq!(s(|o| write_value(o, 3.0)), "3");
        assert_eq!(s(|o| write_value(o, -0.0)), "0");
        assert_eq!(s(|o| write_value(o, 0.25)), "0.25");
        assert_eq!(s(|o| write_value(o, 1e20)), "100000000000000000000");
        assert_eq!(s(|o| write_value(o, f64::INFINITY)), "+Inf");
        assert_eq!(s(|o| write_value(o, f64::NEG_INFINITY)), "-Inf");
        assert_eq!(s(|o| write_value(o, f64::NAN)), "NaN");
        assert_eq!(s(|o| write_float_label(o, 5.0)), "5.0");
        assert_eq!(s(|o| write_float_label(o, 0.5)), "0.5");
        assert_eq!(s(|o| write_float_label(o, f64::INFINITY)), "+Inf");
    }

    #[test]
    fn milliseconds_become_seconds() {
        assert_eq!(s(|o| write_ms_as_seconds(o, 0)), "0");
        assert_eq!(s(|o| write_ms_as_seconds(o, 12_345)), "12.345");
        assert_eq!(s(|o| write_ms_as_seconds(o, 12_300)), "12.3");
        assert_eq!(s(|o| write_ms_as_seconds(o, 1_005)), "1.005");
        assert_eq!(s(|o| write_ms_as_seconds(o, 1_700_000_000_000)), "1700000000");
        assert_eq!(s(|o| write_ms_as_seconds(o, -1_500)), "-1.5");
    }

    #[test]
    fn statuses_become_lower_snake_case() {
        assert_eq!(snake_case("NOT_RESPONDING"), "not_responding");
        assert_eq!(snake_case("IDLE"), "idle");
        assert_eq!(snake_case("On Queue"), "on_queue");
        assert_eq!(snake_case("OnQueue"), "on_queue");
        assert_eq!(snake_case("on_queue"), "on_queue");
        assert_eq!(snake_case(" Meal-Break "), "meal_break");
    }
}
