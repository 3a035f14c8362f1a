//! The bundled Grafana dashboards (dashboards/*.json) as data for tests: every panel's query targets, and the
//! substitution of template variables by their "All" value, so a test can run each query against a real
//! Prometheus (the end-to-end test) or hand it to promtool (tests/dashboards_static.rs).
//!
//! Use from a test crate with `mod support;` (`support::dashboards`) or
//! `#[path = "support/dashboards.rs"] mod dashboards;`.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// What each template variable (and Grafana built-in) stands for when a query is run outside Grafana with every
/// variable on "All". Machine-readable on purpose: the end-to-end test and tests/dashboards_static.rs both use it.
/// Longer names come first so `$__rate_interval` is not read as `$__interval` + text.
pub const ALL_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("division", ".*"),
    ("queue", ".*"),
    ("media_type", ".*"),
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
];

/// The marker a panel's `description` carries when its queries may legitimately return nothing on a healthy
/// exporter (for example the service level before anything was answered in the current interval).
pub const MAY_BE_EMPTY: &str = "may be empty";

/// One query target of a panel.
#[derive(Debug, Clone)]
pub struct PanelTarget {
    pub title: String,
    pub ref_id: String,
    pub expr: String,
    /// The panel's description says "may be empty": an empty result is not a failure.
    pub may_be_empty: bool,
}

/// The repository's dashboards/*.json, sorted.
pub fn dashboard_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Every panel's targets as (panel title, expr), rows' nested panels included, in dashboard order.
pub fn panel_targets(path: impl AsRef<Path>) -> Vec<(String, String)> {
    panel_targets_detailed(path).into_iter().map(|t| (t.title, t.expr)).collect()
}

/// Like [`panel_targets`], with the target's refId and the panel's "may be empty" marker.
pub fn panel_targets_detailed(path: impl AsRef<Path>) -> Vec<PanelTarget> {
    let dash = load(path.as_ref());
    let mut out = Vec::new();
    for panel in all_panels(&dash) {
        let title = panel["title"].as_str().unwrap_or("").to_owned();
        let may_be_empty = panel["description"].as_str().unwrap_or("").to_lowercase().contains(MAY_BE_EMPTY);
        for t in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push(PanelTarget {
                    title: title.clone(),
                    ref_id: t["refId"].as_str().unwrap_or("").to_owned(),
                    expr: expr.to_owned(),
                    may_be_empty,
                });
            }
        }
    }
    out
}

/// Parse a dashboard file; panics (a test failure) on unreadable or invalid JSON.
pub fn load(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Every panel of a dashboard, depth first: top-level panels and the panels nested in (collapsed) rows.
pub fn all_panels(dash: &serde_json::Value) -> Vec<&serde_json::Value> {
    fn walk<'a>(panels: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// Replace every template variable by its "All" value ([`ALL_SUBSTITUTIONS`]), in the `$name`, `${name}` and
/// `${name:format}` forms, and `[[name]]`.
pub fn substitute_all(expr: &str) -> String {
    let mut s = expr.to_owned();
    for (name, value) in ALL_SUBSTITUTIONS {
        // ${name} and ${name:format}
        let open = format!("${{{name}");
        while let Some(start) = s.find(&open) {
            let rest = &s[start + open.len()..];
            let end = match rest.chars().next() {
                Some('}') => start + open.len() + 1,
                Some(':') => start + open.len() + rest.find('}').map_or(rest.len(), |i| i + 1),
                _ => break,
            };
            s.replace_range(start..end, value);
        }
        s = s.replace(&format!("[[{name}]]"), value);
        // $name, not followed by more identifier characters ($queue must not eat $queue_id).
        let bare = format!("${name}");
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find(&bare) {
            let after = &rest[i + bare.len()..];
            let continues = after.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            out.push_str(&rest[..i]);
            out.push_str(if continues { &bare } else { value });
            rest = after;
        }
        out.push_str(rest);
        s = out;
    }
    s
}
