//! The Grafana dashboards (dashboards/*.json), statically: valid JSON with the structure Grafana's current schema
//! needs, the datasource only through the `datasource` variable, the division/queue/media_type variables, the
//! wallboard's refresh and dark theme, unique panel ids and a gridPos for each, every target an `expr` naming only
//! metrics of shared/interface.md or recording rules of alerts/*.yaml, and (with promtool) valid PromQL once the
//! variables are substituted by their "All" values.

#[path = "support/dashboards.rs"]
mod dashboards;

use dashboards::{all_panels, dashboard_files, load, panel_targets, panel_targets_detailed, substitute_all};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Metric names of shared/interface.md (the contract). Histograms also allow `_bucket`, `_sum`, `_count`.
const INTERFACE_METRICS: &[&str] = &[
    "genesys_queue_info",
    "genesys_queue_waiting",
    "genesys_queue_alerting",
    "genesys_queue_interacting",
    "genesys_queue_longest_waiting_seconds",
    "genesys_queue_longest_interacting_seconds",
    "genesys_queue_agents",
    "genesys_queue_on_queue_agents",
    "genesys_queue_presence_agents",
    "genesys_queue_off_queue_agents",
    "genesys_queue_member_agents",
    "genesys_queue_active_agents",
    "genesys_queue_interval_offered",
    "genesys_queue_interval_answered",
    "genesys_queue_interval_abandoned",
    "genesys_queue_service_level_ratio",
    "genesys_queue_service_level_target_ratio",
    "genesys_queue_interval_start_timestamp_seconds",
    "genesys_queue_offered_total",
    "genesys_queue_answered_total",
    "genesys_queue_abandoned_total",
    "genesys_queue_data_age_seconds",
    "genesys_queue_source",
    "genesys_queue_stale",
    "genesys_up",
    "genesys_exporter_build_info",
    "genesys_notification_channels",
    "genesys_notification_topics",
    "genesys_notification_messages_total",
    "genesys_notification_reconnects_total",
    "genesys_notification_heartbeat_age_seconds",
    "genesys_api_requests_total",
    "genesys_api_rate_limit_remaining",
    "genesys_api_throttled_total",
    "genesys_payload_errors_total",
    "genesys_token_expiry_timestamp_seconds",
    "genesys_stream_drift_total",
    "genesys_poll_cycle_seconds",
    "genesys_otlp_export_failures_total",
    "up",
];
const INTERFACE_HISTOGRAMS: &[&str] = &[
    "genesys_queue_answer_wait_seconds",
    "genesys_queue_abandon_wait_seconds",
    "genesys_queue_handle_seconds",
    "genesys_notification_delivery_latency_seconds",
    "genesys_api_request_duration_seconds",
];
const VARIABLES: &[&str] = &["division", "queue", "media_type"];
const DATASOURCE: &str = "${datasource}";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files() -> Vec<PathBuf> {
    let f = dashboard_files();
    for want in ["queue-wallboard.json", "agents-capacity.json", "exporter-health.json"] {
        assert!(f.iter().any(|p| p.ends_with(want)), "missing dashboards/{want}");
    }
    f
}

fn name(p: &Path) -> String {
    p.file_name().unwrap_or_default().to_string_lossy().into_owned()
}

/// Metric names a PromQL expression refers to: identifiers outside string literals that are in our namespace
/// (`genesys_…`, `genesys:…`) or directly followed by a selector `{`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut unquoted = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                unquoted.push(' ');
            }
            None if c == '"' || c == '\'' || c == '`' => {
                quote = Some(c);
                unquoted.push(' ');
            }
            None => unquoted.push(c),
        }
    }
    let bytes = unquoted.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts = c.is_ascii_alphabetic() || c == b'_' || c == b':';
        let after_ident =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'$');
        if starts && !after_ident {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
                i += 1;
            }
            let ident = &unquoted[start..i];
            let next = unquoted[i..].trim_start().chars().next();
            // A range like [5m] or a duration is not an identifier here: they follow '[' and start with a digit.
            if ident.starts_with("genesys") || next == Some('{') {
                out.insert(ident.to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn recording_rules() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = root().join("alerts");
    for e in std::fs::read_dir(&dir).into_iter().flatten() {
        let p = e.expect("directory entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&p).expect("read rule file"))
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", p.display()));
            for g in doc["groups"].as_array().into_iter().flatten() {
                for r in g["rules"].as_array().into_iter().flatten() {
                    if let Some(n) = r["record"].as_str() {
                        out.insert(n.to_owned());
                    }
                }
            }
        }
    }
    out
}

fn known(metric: &str, rules: &BTreeSet<String>) -> bool {
    INTERFACE_METRICS.contains(&metric)
        || rules.contains(metric)
        || INTERFACE_HISTOGRAMS
            .iter()
            .any(|h| metric.strip_prefix(h).is_some_and(|s| ["", "_bucket", "_sum", "_count"].contains(&s)))
}

fn is_template_datasource(ds: &Value) -> bool {
    match ds {
        Value::String(s) => s == DATASOURCE,
        Value::Object(o) => {
            o.get("uid").and_then(Value::as_str) == Some(DATASOURCE)
                && o.get("type").and_then(Value::as_str).is_none_or(|t| t == "prometheus")
        }
        _ => false,
    }
}

#[test]
fn dashboards_have_grafana_structure() {
    for f in files() {
        let d = load(&f);
        let n = name(&f);
        assert!(d.is_object(), "{n}: not a JSON object");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{n}: title");
        assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 39), "{n}: schemaVersion must be >= 39");
        assert!(d.get("uid").is_none_or(Value::is_null), "{n}: uid must be null or absent (no hard-coded uid)");
        assert!(d.get("id").is_none_or(Value::is_null), "{n}: id must be null or absent");
        assert!(d["panels"].as_array().is_some_and(|p| !p.is_empty()), "{n}: panels");
        assert!(d["templating"]["list"].is_array(), "{n}: templating.list");
        assert!(d["time"]["from"].is_string() && d["time"]["to"].is_string(), "{n}: time range");
        assert!(d["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == "genesys")), "{n}: tag genesys");
        let mut ids = BTreeSet::new();
        for p in all_panels(&d) {
            let title = p["title"].as_str().unwrap_or("?");
            let id = p["id"].as_u64().unwrap_or_else(|| panic!("{n}: panel {title:?} has no numeric id"));
            assert!(ids.insert(id), "{n}: panel id {id} used twice");
            assert!(p["type"].as_str().is_some_and(|t| !t.is_empty()), "{n}: panel {title:?} has no type");
            let g = &p["gridPos"];
            let (h, w, x, y) = (g["h"].as_u64(), g["w"].as_u64(), g["x"].as_u64(), g["y"].as_u64());
            let (Some(h), Some(w), Some(x), Some(_)) = (h, w, x, y) else {
                panic!("{n}: panel {title:?} has no complete gridPos {{h,w,x,y}}")
            };
            assert!(h > 0 && w > 0 && x + w <= 24, "{n}: panel {title:?} gridPos outside the 24-column grid");
            if p["type"] != "row" {
                assert!(p["targets"].as_array().is_some_and(|t| !t.is_empty()), "{n}: panel {title:?} has no targets");
            }
        }
    }
}

#[test]
fn datasource_is_always_the_variable() {
    for f in files() {
        let d = load(&f);
        let n = name(&f);
        let vars = d["templating"]["list"].as_array().expect("templating.list");
        let ds =
            vars.iter().find(|v| v["name"] == "datasource").unwrap_or_else(|| panic!("{n}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{n}: the datasource variable must be of type datasource");
        assert_eq!(ds["query"], "prometheus", "{n}: the datasource variable must list Prometheus data sources");
        for v in vars.iter().filter(|v| v["name"] != "datasource") {
            assert!(is_template_datasource(&v["datasource"]), "{n}: variable {} datasource", v["name"]);
        }
        for p in all_panels(&d) {
            let title = p["title"].as_str().unwrap_or("?");
            if !p["datasource"].is_null() {
                assert!(
                    is_template_datasource(&p["datasource"]),
                    "{n}: panel {title:?} datasource {}",
                    p["datasource"]
                );
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                assert!(
                    is_template_datasource(&t["datasource"]),
                    "{n}: panel {title:?} target datasource {}",
                    t["datasource"]
                );
            }
        }
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(!text.contains("\"DS_"), "{n}: uses an __inputs datasource instead of the variable");
    }
}

#[test]
fn variables_exist_with_all_option() {
    for f in files() {
        let d = load(&f);
        let n = name(&f);
        let vars = d["templating"]["list"].as_array().expect("templating.list");
        for want in VARIABLES {
            let v = vars.iter().find(|v| v["name"] == *want).unwrap_or_else(|| panic!("{n}: no variable {want}"));
            assert_eq!(v["type"], "query", "{n}: {want} is a query variable");
            assert_eq!(v["multi"], true, "{n}: {want} multi");
            assert_eq!(v["includeAll"], true, "{n}: {want} includeAll");
            assert_eq!(v["allValue"], ".*", "{n}: {want} allValue must be .* (dashboards::ALL_SUBSTITUTIONS)");
            let q = v["definition"].as_str().unwrap_or("");
            assert!(q.starts_with("label_values(") && q.contains(want), "{n}: {want} query {q:?}");
        }
    }
}

#[test]
fn wallboard_is_made_for_a_tv() {
    let f = root().join("dashboards/queue-wallboard.json");
    let d = load(&f);
    assert_eq!(d["refresh"], "5s", "wallboard refresh");
    assert_eq!(d["style"], "dark", "wallboard theme");
    let panels = all_panels(&d);
    assert!(panels.iter().any(|p| p["repeat"] == "queue"), "wallboard repeats per queue");
    let stats: Vec<_> = panels.iter().filter(|p| p["type"] == "stat").collect();
    assert!(stats.len() >= 7, "wallboard tiles are stat panels");
    for p in &stats {
        let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array();
        assert!(steps.is_some_and(|s| !s.is_empty()), "stat {:?} has thresholds", p["title"]);
    }
    let longest =
        stats.iter().find(|p| p["repeat"].is_null() && p["title"] == "Longest wait").expect("a Longest wait tile");
    let colors: Vec<_> = longest["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["color"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(colors, ["green", "orange", "red"], "longest wait is green / amber / red");
    // The stale indicator: a stat on genesys_queue_stale mapping 1 to a grey STALE, next to the data age.
    let stale = stats
        .iter()
        .find(|p| p["fieldConfig"]["defaults"]["mappings"].to_string().contains("STALE"))
        .expect("a stat panel mapping genesys_queue_stale 1 to STALE");
    let exprs: Vec<&str> =
        stale["targets"].as_array().into_iter().flatten().filter_map(|t| t["expr"].as_str()).collect();
    assert!(exprs.iter().any(|e| e.contains("genesys_queue_stale")), "the STALE tile reads genesys_queue_stale");
    let mapping = stale["fieldConfig"]["defaults"]["mappings"].to_string();
    assert!(mapping.contains("STALE") && mapping.contains("#8e8e8e"), "1 -> STALE in grey: {mapping}");
    assert!(stale.to_string().contains("genesys_queue_data_age_seconds"), "the stale tile shows the data age");
}

#[test]
fn every_target_names_known_metrics_and_uses_the_variables() {
    let rules = recording_rules();
    for f in files() {
        let n = name(&f);
        let targets = panel_targets(&f);
        assert!(!targets.is_empty(), "{n}: no targets");
        for (title, expr) in &targets {
            assert!(!expr.trim().is_empty(), "{n}: panel {title:?} has an empty expr");
            for m in metric_names(expr) {
                assert!(known(&m, &rules), "{n}: panel {title:?} uses {m}, not in interface.md nor a recording rule");
            }
            // A queue series is filtered by the queue variable (self-metrics have no queue label).
            if expr.contains("genesys_queue_") && !expr.contains("$queue") {
                panic!("{n}: panel {title:?} reads queue series without queue=~\"$queue\": {expr}");
            }
            assert!(!substitute_all(expr).contains('$'), "{n}: {title:?}: a variable is left after substitution");
        }
        // Variable queries too.
        for v in load(&f)["templating"]["list"].as_array().into_iter().flatten() {
            for m in metric_names(v["definition"].as_str().unwrap_or("")) {
                assert!(known(&m, &rules), "{n}: variable {} uses unknown metric {m}", v["name"]);
            }
        }
    }
}

#[test]
fn targets_are_valid_promql() {
    // promtool parses PromQL in rule files: every target (variables substituted) becomes a recording rule.
    let promtool = PathBuf::from("/usr/bin/promtool");
    if !promtool.is_file() {
        assert!(std::env::var_os("CI").is_none(), "promtool missing, but CI is set");
        eprintln!("warning: promtool not found; PromQL of the dashboards not checked");
        return;
    }
    let mut yaml = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut index = Vec::new();
    for f in files() {
        for t in panel_targets_detailed(&f) {
            index.push(format!("{} / {} / {}", name(&f), t.title, t.ref_id));
            let expr = substitute_all(&t.expr);
            yaml.push_str(&format!(
                "      - record: dashboard:target:{}\n        expr: {}\n",
                index.len(),
                serde_json::to_string(&expr).expect("a string serialises")
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!("dashboards-promql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("targets.yaml");
    std::fs::write(&file, &yaml).expect("write temp rule file");
    let out = std::process::Command::new(&promtool).args(["check", "rules"]).arg(&file).output().expect("promtool");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "invalid PromQL in a dashboard target:\n{text}\ntargets: {index:#?}");
}

#[test]
fn few_panels_may_be_empty() {
    // The end-to-end test accepts an empty result only from panels whose description says "may be empty"; keep
    // that list short and deliberate (fallbacks such as `or vector(0)` are preferred).
    let mut marked = BTreeSet::new();
    for f in files() {
        for t in panel_targets_detailed(&f).into_iter().filter(|t| t.may_be_empty) {
            marked.insert(format!("{}: {}", name(&f), t.title));
        }
    }
    let want: BTreeSet<String> = ["queue-wallboard.json: Service level".to_owned()].into_iter().collect();
    assert_eq!(marked, want, "panels marked 'may be empty'");
}

#[test]
fn substitute_all_replaces_every_form() {
    assert_eq!(
        substitute_all(r#"rate(x{queue=~"$queue",d=~"${division}",m=~"${media_type:regex}"}[$__rate_interval])"#),
        r#"rate(x{queue=~".*",d=~".*",m=~".*"}[1m])"#
    );
    assert_eq!(substitute_all("$__interval $__range [[queue]]"), "15s 1h .*");
    assert_eq!(substitute_all("$queue_id"), "$queue_id", "a longer identifier is not a variable");
}

#[test]
fn metric_names_skips_labels_strings_and_functions() {
    let got = metric_names(
        r#"sum by (queue) (genesys_queue_waiting{queue=~"genesys_x"} and on (queue_id) genesys_queue_info) / up{job="a"}"#,
    );
    let want: BTreeSet<String> =
        ["genesys_queue_info", "genesys_queue_waiting", "up"].iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want);
}
