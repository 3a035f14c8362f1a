//! `GET /status`: the built-in wallboard. One self-contained page (HTML, CSS and JS from `status.html`, embedded
//! in the binary). The server renders every queue into a plain table, so the page works without JavaScript; the
//! script then replaces it with tiles fed by `/api/v1/stream` (SSE), falling back to polling the snapshot.
//! Only queue data from the snapshot documents reaches the page: no configuration, no credentials.

use super::api::{response, snapshot_json, AnyBody, Query};
use super::http::html_escape;
use super::http::AppState;
use crate::model::now_ms;
use http::header::{HeaderValue, CACHE_CONTROL};
use http::{Response, StatusCode};
use serde_json::Value;
use std::fmt::Write as _;

const PAGE: &str = include_str!("status.html");

/// The wallboard figures of one queue document (the page's script computes the same).
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub waiting: f64,
    /// Start of the longest wait over all media types, epoch ms.
    pub longest_wait_start_ms: Option<i64>,
    /// Agents on queue and idle.
    pub available: f64,
    /// Service level of the current interval, 0..1.
    pub service_level: Option<f64>,
}

impl Tile {
    pub fn of(doc: &Value) -> Tile {
        let mut t = Tile { waiting: 0.0, longest_wait_start_ms: None, available: 0.0, service_level: None };
        let (mut num, mut den, mut ratio) = (0.0, 0.0, None);
        if let Some(media) = doc.get("media").and_then(Value::as_object) {
            for m in media.values() {
                t.waiting += m.get("waiting").and_then(Value::as_f64).unwrap_or(0.0);
                if let Some(s) = m.get("longest_waiting_start_ms").and_then(Value::as_i64) {
                    t.longest_wait_start_ms = Some(t.longest_wait_start_ms.map_or(s, |c: i64| c.min(s)));
                }
                if let Some(sl) = m.pointer("/interval/aggregates/oServiceLevel") {
                    let n = sl.get("numerator").and_then(Value::as_f64);
                    let d = sl.get("denominator").and_then(Value::as_f64);
                    if let (Some(n), Some(d)) = (n, d) {
                        num += n;
                        den += d;
                    }
                    ratio = ratio.or(sl.get("ratio").and_then(Value::as_f64));
                }
            }
        }
        t.service_level = if den > 0.0 { Some(num / den) } else { ratio };
        t.available = doc.pointer("/agents/on_queue/idle").and_then(Value::as_f64).unwrap_or(0.0);
        t
    }
}

/// `1h 02m`, `3m 07s`, `12s`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The server-rendered table of every queue in `snapshot` (a snapshot document).
fn table(snapshot: &Value, now: i64) -> String {
    let mut h = String::with_capacity(4096);
    h.push_str("<table id=\"queues-table\"><thead><tr><th>Queue</th><th>Division</th><th>Waiting</th>");
    h.push_str(
        "<th>Longest wait</th><th>Available</th><th>SL</th><th>Source</th><th>Data age</th></tr></thead><tbody>\n",
    );
    for q in snapshot.get("queues").and_then(Value::as_array).into_iter().flatten() {
        let s = |k: &str| q.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let stale = q.get("stale").and_then(Value::as_bool).unwrap_or(false)
            || q.get("withdrawn").and_then(Value::as_bool).unwrap_or(false);
        let t = Tile::of(q);
        h.push_str(if stale { "<tr class=\"stale\" data-queue-id=\"" } else { "<tr data-queue-id=\"" });
        html_escape(&mut h, &s("id"));
        h.push_str("\"><td>");
        html_escape(&mut h, &s("name"));
        h.push_str("</td><td>");
        html_escape(&mut h, &s("division"));
        let _ = write!(h, "</td><td class=\"num\">{}</td><td class=\"num\">", t.waiting);
        h.push_str(&t.longest_wait_start_ms.map_or("–".to_owned(), |st| duration(now - st)));
        let _ = write!(h, "</td><td class=\"num\">{}</td><td class=\"num\">", t.available);
        h.push_str(&t.service_level.map_or("–".to_owned(), |r| format!("{:.0}%", r * 100.0)));
        h.push_str("</td><td>");
        html_escape(&mut h, &s("source"));
        h.push_str("</td><td>");
        let age = q.get("data_age_seconds").and_then(Value::as_f64).unwrap_or(0.0);
        h.push_str(&duration((age * 1000.0) as i64));
        if stale {
            h.push_str(" (stale)");
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</tbody></table>");
    h
}

/// The page, with the table and the same data as JSON (for the script's first paint).
pub fn page(app: &AppState, query: &Query) -> Response<AnyBody> {
    let live = app.store.live();
    let (version, docs) = live.docs();
    let now = now_ms();
    let snap = snapshot_json(version, None, &docs, &[], true, &query.filter, now, live.max_age_ms());
    // `</` cannot end the script element early once escaped.
    let json = snap.to_string().replace('<', "\\u003c");
    let body = PAGE.replacen("<!--TABLE-->", &table(&snap, now), 1).replacen("{/*SNAPSHOT*/}", &json, 1);
    let mut r = response(StatusCode::OK, "text/html; charset=utf-8", body);
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_figures_and_durations() {
        let doc = serde_json::json!({
            "media": {
                "voice": {"waiting": 3, "longest_waiting_start_ms": 5000,
                          "interval": {"aggregates": {"oServiceLevel": {"ratio": 0.5, "numerator": 1, "denominator": 2}}}},
                "chat": {"waiting": 1, "longest_waiting_start_ms": 2000,
                         "interval": {"aggregates": {"oServiceLevel": {"ratio": 1, "numerator": 2, "denominator": 2}}}}
            },
            "agents": {"on_queue": {"idle": 4, "interacting": 2}}
        });
        let t = Tile::of(&doc);
        assert_eq!(t.waiting, 4.0);
        assert_eq!(t.longest_wait_start_ms, Some(2000));
        assert_eq!(t.available, 4.0);
        assert_eq!(t.service_level, Some(0.75));
        assert_eq!(duration(3_725_000), "1h 02m");
        assert_eq!(duration(187_000), "3m 07s");
        assert_eq!(duration(-5), "0s");
    }
}
