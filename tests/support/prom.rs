//! A small parser of the Prometheus text format for assertions: samples with their labels.

use std::collections::BTreeMap;

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
