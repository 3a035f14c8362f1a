//! A small parser of the Prometheus text format for assertions: samples with their labels.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> &str {
        self.labels.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Parse every sample line; panics on a line that is not valid text format (a test failure).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name_end, labels, rest) = match line.find('{') {
            Some(i) if line[..i].find(' ').is_none() => {
                let (labels, after) = parse_labels(&line[i + 1..]);
                (i, labels, after)
            }
            _ => {
                let i = line.find(' ').unwrap_or_else(|| panic!("no value in line {line:?}"));
                (i, BTreeMap::new(), &line[i..])
            }
        };
        let value_str = rest.split_whitespace().next().unwrap_or_else(|| panic!("no value in {line:?}"));
        let value = match value_str {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
        };
        out.push(Sample { name: line[..name_end].to_owned(), labels, value });
    }
    out
}

fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i] == b' ') {
            i += 1;
        }
        if i >= bytes.len() {
            panic!("unterminated labels in {s:?}");
        }
        if bytes[i] == b'}' {
            return (labels, &s[i + 1..]);
        }
        let eq = s[i..].find('=').map(|e| e + i).unwrap_or_else(|| panic!("no = in labels {s:?}"));
        let key = s[i..eq].trim().to_owned();
        assert_eq!(bytes[eq + 1], b'"', "label value not quoted in {s:?}");
        let mut j = eq + 2;
        let mut val = String::new();
        while bytes[j] != b'"' {
            if bytes[j] == b'\\' {
                j += 1;
                val.push(match bytes[j] {
                    b'n' => '\n',
                    c => c as char,
                });
            } else {
                let ch = s[j..].chars().next().unwrap_or('?');
                val.push(ch);
                j += ch.len_utf8() - 1;
            }
            j += 1;
        }
        labels.insert(key, val);
        i = j + 1;
    }
}

/// Samples of one metric name.
pub fn of<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.name == name).collect()
}

/// The value of the single sample of `name` whose labels include all of `want`.
pub fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let mut found = samples
        .iter()
        .filter(|s| s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)));
    let first = found.next()?;
    assert!(found.next().is_none(), "more than one {name} sample matches {want:?}");
    Some(first.value)
}

/// `promtool` on PATH (Debian package `prometheus`).
pub fn find_promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("promtool")).find(|p| p.is_file())
}

pub fn run_promtool(promtool: &PathBuf, text: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), msg)
}

/// Structural check of OpenMetrics 1.0 text; panics with the offending line.
pub fn check_om(text: &str) {
    assert!(text.ends_with("# EOF\n"), "OpenMetrics must end with # EOF");
    let body = &text[..text.len() - "# EOF\n".len()];
    assert!(!body.contains("# EOF"), "# EOF before the end");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut in_samples = false;
    let mut inf_buckets: HashSet<String> = HashSet::new();
    let mut bucket_series: HashSet<String> = HashSet::new();
    for line in body.lines() {
        assert!(!line.is_empty(), "blank line in OpenMetrics");
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kw, name, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(matches!(kw, "HELP" | "TYPE" | "UNIT"), "unknown metadata {line:?}");
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    done.insert(c);
                }
                assert!(!done.contains(name), "family {name} appears twice");
                current = Some(name.to_owned());
                in_samples = false;
            }
            assert!(!in_samples, "metadata after samples: {line:?}");
            match kw {
                "TYPE" => {
                    assert!(
                        matches!(rest, "counter" | "gauge" | "histogram" | "summary" | "unknown" | "info" | "stateset"),
                        "bad type {line:?}"
                    );
                    assert!(types.insert(name.to_owned(), rest.to_owned()).is_none(), "second TYPE for {name}");
                    if rest == "counter" {
                        assert!(!name.ends_with("_total"), "counter family {name} must not end in _total");
                    }
                }
                "UNIT" => assert!(name.ends_with(&format!("_{rest}")), "{name} does not end with its unit {rest}"),
                _ => {}
            }
            continue;
        }
        let sample_name = line.split(['{', ' ']).next().unwrap_or("");
        let family = current.clone().unwrap_or_else(|| panic!("sample before any metadata: {line:?}"));
        in_samples = true;
        let ty = types.get(&family).map(String::as_str).unwrap_or("unknown");
        let suffix = sample_name
            .strip_prefix(family.as_str())
            .unwrap_or_else(|| panic!("sample {sample_name} outside its family {family} (interleaved families?)"));
        let allowed: &[&str] = match ty {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        assert!(allowed.contains(&suffix), "sample {sample_name} not allowed in {ty} family {family}");
        let parsed = parse(line);
        assert_eq!(parsed.len(), 1, "unparsable sample {line:?}");
        if suffix == "_bucket" {
            let mut labels = parsed[0].labels.clone();
            let le = labels.remove("le").unwrap_or_else(|| panic!("bucket without le: {line:?}"));
            let key = format!("{family}{labels:?}");
            bucket_series.insert(key.clone());
            if le == "+Inf" {
                inf_buckets.insert(key);
            }
        }
    }
    for s in &bucket_series {
        assert!(inf_buckets.contains(s), "histogram series {s} has no +Inf bucket");
    }
}
