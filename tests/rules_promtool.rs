//! The Prometheus rule files, their unit tests and the example Alertmanager config, checked with the real tools:
//! `promtool check rules` on every alerts/*.yaml (and the test-only rule files under alerts/tests/fixtures/),
//! `promtool test rules` on every alerts/tests/*.yaml (whatever rule or test files exist, the KPI recording rules
//! included), `amtool check-config alerts/alertmanager.example.yml`. Without the tools (Debian packages
//! `prometheus`, `prometheus-alertmanager`) these tests warn and pass, unless `CI` is set.
//!
//! Tool-independent checks of the alert conventions run always: severity, summary, description, runbook_url with
//! an existing anchor in docs/runbooks.md, and a firing plus a "does not fire" unit test for every alert.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const RUNBOOK_PREFIX: &str =
    "https://github.com/genesys-cloud-exporter/genesys-cloud-exporter/blob/main/docs/runbooks.md#";
const SEVERITIES: &[&str] = &["page", "warning", "info"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files of `dir` whose name ends with `.yaml`, sorted. `.yml` files (the Alertmanager example) are not rules.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("alertmanager")))
        .collect();
    v.sort();
    v
}

fn rule_files() -> Vec<PathBuf> {
    let mut v = yaml_files(&root().join("alerts"));
    v.extend(yaml_files(&root().join("alerts/tests/fixtures")));
    v
}

fn test_files() -> Vec<PathBuf> {
    yaml_files(&root().join("alerts/tests"))
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// The tool at /usr/bin or on PATH; None (after a warning) when missing outside CI; panics when missing in CI.
fn tool(name: &str) -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin").join(name);
    let found = if fixed.is_file() {
        Some(fixed)
    } else {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
    };
    if found.is_none() {
        let msg = format!(
            "{name} not found (Debian: apt-get install prometheus prometheus-alertmanager); skipping its checks"
        );
        assert!(std::env::var_os("CI").is_none(), "{msg}, but CI is set");
        eprintln!("warning: {msg}");
    }
    found
}

fn run(tool: &Path, args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn promtool_check_rules() {
    let Some(promtool) = tool("promtool") else { return };
    let files = rule_files();
    assert!(files.iter().any(|f| f.ends_with("alerts/genesys-alerts.yaml")), "no alerts/genesys-alerts.yaml");
    for f in files {
        let (ok, out) = run(&promtool, &["check", "rules", &f.to_string_lossy()], &root());
        assert!(ok, "promtool check rules {}:\n{out}", f.display());
    }
}

#[test]
fn promtool_test_rules() {
    let Some(promtool) = tool("promtool") else { return };
    let files = test_files();
    assert!(!files.is_empty(), "no alerts/tests/*.yaml");
    for f in files {
        // rule_files in a test file are relative to the test file; promtool resolves them so from any directory.
        let dir = f.parent().expect("a test file has a directory");
        let name = f.file_name().expect("file name").to_string_lossy().into_owned();
        let (ok, out) = run(&promtool, &["test", "rules", &name], dir);
        assert!(ok, "promtool test rules {}:\n{out}", f.display());
    }
}

#[test]
fn amtool_check_config() {
    let Some(amtool) = tool("amtool") else { return };
    let f = root().join("alerts/alertmanager.example.yml");
    assert!(f.is_file(), "missing {}", f.display());
    let (ok, out) = run(&amtool, &["check-config", &f.to_string_lossy()], &root());
    assert!(ok, "amtool check-config {}:\n{out}", f.display());
}

/// Every alerting rule of alerts/*.yaml: (alert name, rule).
fn alerts() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in yaml_files(&root().join("alerts")) {
        let doc = load_yaml(&f);
        for g in doc["groups"].as_array().unwrap_or_else(|| panic!("{}: no groups", f.display())) {
            for r in g["rules"].as_array().into_iter().flatten() {
                if let Some(name) = r["alert"].as_str() {
                    out.push((name.to_owned(), r.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn alerts_follow_the_conventions() {
    let runbooks = std::fs::read_to_string(root().join("docs/runbooks.md")).expect("docs/runbooks.md");
    let anchors: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase().replace(' ', "-"))
        .collect();
    let all = alerts();
    assert!(all.len() >= 10, "expected the alert set of the spec, found {}", all.len());
    let mut names = BTreeSet::new();
    for (name, rule) in &all {
        assert!(names.insert(name.clone()), "alert {name} defined twice");
        assert!(
            name.starts_with("Genesys") && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}: alert names are CamelCase with the prefix Genesys"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(SEVERITIES.contains(&severity), "{name}: severity {severity:?} not one of {SEVERITIES:?}");
        for key in ["summary", "description", "runbook_url"] {
            let v = rule["annotations"][key].as_str().unwrap_or("");
            assert!(!v.trim().is_empty(), "{name}: annotation {key} missing");
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
        assert_eq!(url, format!("{RUNBOOK_PREFIX}{}", name.to_lowercase()), "{name}: runbook_url");
        assert!(anchors.contains(&name.to_lowercase()), "{name}: no '## {name}' section in docs/runbooks.md");
        assert!(rule["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "{name}: no expr");
    }
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_test() {
    // alertname -> (has a case with expected alerts, has a case expecting none)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for f in test_files() {
        let doc = load_yaml(&f);
        for t in doc["tests"].as_array().into_iter().flatten() {
            for case in t["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap_or("").to_owned();
                let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                let e = seen.entry(name).or_default();
                if fires {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
        }
    }
    for (name, _) in alerts() {
        let (fires, quiet) = seen.get(&name).copied().unwrap_or_default();
        assert!(fires, "{name}: no promtool test where it fires");
        assert!(quiet, "{name}: no promtool test where it does not fire (exp_alerts: [])");
    }
}
