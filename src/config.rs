//! Configuration: a YAML file (every key optional) plus an environment overlay, checked before anything connects.
//!
//! Sits before the data path: `main.rs` loads and validates a [`Config`], `app.rs` turns it into the settings of
//! the client, collector, store and exporters. Nothing here does network I/O. Key names are the public contract of
//! shared/interface.md (tests and the Helm chart write them), so a misspelt key is an error naming the nearest valid
//! one, never silently ignored.
//!
//! Secrets (the OAuth client secret, OTLP header values) live in [`Secret`] or are redacted in `Debug`, and no error
//! text quotes a value read from the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A credential. `Debug` and `Display` print `***`, so it can sit in structs that get logged; only [`Secret::expose`]
/// gives the value, at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Whether a [`Problem`] stops the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    /// Works, but probably not as intended; logged and carried on.
    Warning,
}

/// One thing wrong with the configuration, with the fix in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Config key (`freshness.max_age`), environment variable or flag (`--shard`).
    pub field: String,
    pub message: String,
    pub fix: String,
    pub severity: Severity,
}

impl Problem {
    pub fn error(field: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem { field: field.into(), message: message.into(), fix: fix.into(), severity: Severity::Error }
    }

    pub fn warning(field: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem { field: field.into(), message: message.into(), fix: fix.into(), severity: Severity::Warning }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `config error: <field>: <message> (fix: <fix>)` (or `config warning: …`), the line `run` and `check` print.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_error() { "error" } else { "warning" };
        write!(f, "config {kind}: {}: {} (fix: {})", self.field, self.message, self.fix)
    }
}

/// Why a configuration could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML. `message` never quotes the file's text (it may hold a secret), only positions.
    #[error("config file {} is not valid YAML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// YAML, but with unknown keys or values of the wrong shape.
    #[error("{}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(p: &[Problem]) -> String {
    p.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}

impl ConfigError {
    /// The error as problems, so every configuration failure prints the same way.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { path, source } => vec![Problem::error(
                "--config.file",
                format!("cannot read {}: {source}", path.display()),
                "check the path and that the exporter's user may read it",
            )],
            ConfigError::Syntax { path, message } => vec![Problem::error(
                "--config.file",
                format!("{} is not valid YAML: {message}", path.display()),
                "correct the YAML syntax at the position given",
            )],
            ConfigError::Invalid(p) => p.clone(),
        }
    }
}

/// `genesys.*`: where the org is and how to log in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenesysConfig {
    /// A domain (`mypurecloud.ie`) or an AWS-style region name (`eu-west-1`); default `mypurecloud.com`.
    pub region: Option<String>,
    pub api_base_url: Option<String>,
    pub login_base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
}

/// `queues.*`: which queues and media types are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuesConfig {
    /// Queue names (globs) or ids; empty = all.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Division names or ids; empty = all.
    pub divisions: Vec<String>,
    pub media_types: Vec<String>,
    /// How often the queue list is re-read (adds, removes, renames).
    pub refresh_interval: Duration,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            include: Vec::new(),
            exclude: Vec::new(),
            divisions: Vec::new(),
            media_types: ["voice", "chat", "email", "callback", "message"].map(String::from).to_vec(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// `freshness.*`: when a source is distrusted and when a value is withdrawn.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshnessConfig {
    /// No frame at all on a channel for this long: reconnect, and poll its queues meanwhile.
    pub heartbeat_timeout: Duration,
    /// Observations-query period for queues served by polling.
    pub poll_interval: Duration,
    /// Full REST re-read even when the stream is healthy.
    pub reconcile_interval: Duration,
    /// A value no source confirmed for this long is withdrawn from /metrics.
    pub max_age: Duration,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        FreshnessConfig {
            heartbeat_timeout: Duration::from_secs(45),
            poll_interval: Duration::from_secs(10),
            reconcile_interval: Duration::from_secs(300),
            max_age: Duration::from_secs(180),
        }
    }
}

/// `notifications.*`: channel sizing (Genesys caps both) and keep-alive.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationsConfig {
    /// At most 1000 (Genesys's per-channel limit).
    pub topics_per_channel: usize,
    /// At most 20 (Genesys's per-client limit).
    pub max_channels: usize,
    /// Application-level ping when a channel has been idle this long.
    pub ping_interval: Duration,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig { topics_per_channel: 1000, max_channels: 20, ping_interval: Duration::from_secs(20) }
    }
}

/// `api.*`: the REST client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// Share of the token's request budget (300/min) this exporter may spend, in (0, 1].
    pub budget_share: f64,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { budget_share: 0.5, timeout: Duration::from_secs(10) }
    }
}

/// `histograms.*`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramsConfig {
    /// Upper bounds (seconds) of the wait-time histogram buckets, strictly increasing.
    pub wait_buckets: Vec<f64>,
}

impl Default for HistogramsConfig {
    fn default() -> Self {
        HistogramsConfig { wait_buckets: vec![5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0] }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    #[default]
    HttpProtobuf,
    Grpc,
}

impl OtlpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::Grpc => "grpc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpCompression {
    #[default]
    None,
    Gzip,
}

/// `otlp.*`: push to an OpenTelemetry collector.
#[derive(Clone, PartialEq)]
pub struct OtlpConfig {
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    pub interval: Duration,
    pub timeout: Duration,
    pub compression: OtlpCompression,
    /// As written; use [`Config::otlp_enabled`] for the effective value (default: on iff an endpoint is set).
    pub enabled: Option<bool>,
    /// Often carry an API key: redacted in `Debug`.
    pub headers: BTreeMap<String, String>,
    pub resource_attributes: BTreeMap<String, String>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            compression: OtlpCompression::None,
            enabled: None,
            headers: BTreeMap::new(),
            resource_attributes: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self.headers.keys().map(|k| (k.as_str(), "***")).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("enabled", &self.enabled)
            .field("headers", &headers)
            .field("resource_attributes", &self.resource_attributes)
            .finish()
    }
}

/// `web.*`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// Serve the Prometheus endpoint; `false` leaves OTLP push as the only output.
    pub metrics_enabled: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { metrics_enabled: true }
    }
}

/// `log.*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogConfig {
    /// Overrides `--log.level` when set; unlike the flag, a config reload changes it in the running process.
    pub level: Option<crate::telemetry::LogLevel>,
}

/// The whole configuration: defaults, overlaid by the file, overlaid by the environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub genesys: GenesysConfig,
    pub queues: QueuesConfig,
    pub freshness: FreshnessConfig,
    pub notifications: NotificationsConfig,
    pub api: ApiConfig,
    pub histograms: HistogramsConfig,
    pub otlp: OtlpConfig,
    pub web: WebConfig,
    pub log: LogConfig,
    /// The file this was read from, if any.
    pub file: Option<PathBuf>,
    /// Config keys whose value came from the environment, for naming the right source in problems.
    env_keys: BTreeSet<&'static str>,
}

/// Every valid key, `section.key`. The only place key names are spelled besides `set_key`.
pub const KEYS: &[&str] = &[
    "genesys.region",
    "genesys.api_base_url",
    "genesys.login_base_url",
    "genesys.client_id",
    "genesys.client_secret",
    "queues.include",
    "queues.exclude",
    "queues.divisions",
    "queues.media_types",
    "queues.refresh_interval",
    "freshness.heartbeat_timeout",
    "freshness.poll_interval",
    "freshness.reconcile_interval",
    "freshness.max_age",
    "notifications.topics_per_channel",
    "notifications.max_channels",
    "notifications.ping_interval",
    "api.budget_share",
    "api.timeout",
    "histograms.wait_buckets",
    "otlp.endpoint",
    "otlp.protocol",
    "otlp.interval",
    "otlp.timeout",
    "otlp.compression",
    "otlp.enabled",
    "otlp.headers",
    "otlp.resource_attributes",
    "web.metrics_enabled",
    "log.level",
];

/// Environment variables and the key each overrides.
const ENV_KEYS: &[(&str, &str)] = &[
    ("GENESYS_REGION", "genesys.region"),
    ("GENESYS_API_BASE_URL", "genesys.api_base_url"),
    ("GENESYS_LOGIN_BASE_URL", "genesys.login_base_url"),
    ("GENESYS_CLIENT_ID", "genesys.client_id"),
    ("GENESYS_CLIENT_SECRET", "genesys.client_secret"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp.endpoint"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "otlp.headers"),
];

/// Genesys Cloud regions by AWS-style name (genesys-api.md §6).
pub const REGIONS: &[(&str, &str)] = &[
    ("us_east_1", "mypurecloud.com"),
    ("eu_west_1", "mypurecloud.ie"),
    ("ap_southeast_2", "mypurecloud.com.au"),
    ("ap_northeast_1", "mypurecloud.jp"),
    ("eu_central_1", "mypurecloud.de"),
    ("us_west_2", "usw2.pure.cloud"),
    ("ca_central_1", "cac1.pure.cloud"),
    ("eu_central_2", "euc2.pure.cloud"),
    ("ap_southeast_1", "apse1.pure.cloud"),
    ("ap_northeast_2", "apne2.pure.cloud"),
    ("eu_west_2", "euw2.pure.cloud"),
    ("ap_south_1", "aps1.pure.cloud"),
    ("us_east_2", "use2.us-gov-pure.cloud"),
    ("sa_east_1", "sae1.pure.cloud"),
    ("me_central_1", "mec1.pure.cloud"),
    ("ap_northeast_3", "apne3.pure.cloud"),
    ("mx_central_1", "mxc1.pure.cloud"),
];

/// The domain used when no region is configured (the SDKs' default).
pub const DEFAULT_DOMAIN: &str = "mypurecloud.com";

/// The org's domain from a region setting: a domain as is (`mypurecloud.ie`, also `https://api.mypurecloud.ie/`),
/// or an AWS-style region name in any spelling (`eu-west-1`, `EU_WEST_1`). `None` when it is neither.
pub fn resolve_region(region: &str) -> Option<String> {
    let mut s = region.trim().to_ascii_lowercase();
    for prefix in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_owned();
        }
    }
    let s = s.trim_end_matches('/');
    if s.contains('.') {
        let domain = s.strip_prefix("api.").or_else(|| s.strip_prefix("login.")).unwrap_or(s);
        let valid = !domain.is_empty()
            && domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        return valid.then(|| domain.to_owned());
    }
    let name = s.replace('-', "_");
    REGIONS.iter().find(|(n, _)| *n == name).map(|(_, d)| (*d).to_owned())
}

/// Parse `45s`, `5m`, `1h`, `500ms`, `1d`, or sums such as `1m30s`. A bare `0` is zero; other bare numbers are
/// rejected because the unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: &str = "ms, s, m, h, d";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; write a number and a unit ({UNITS}), e.g. `45s`"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` is negative; durations are positive"));
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!("`{s}` is not a duration; write a number and a unit ({UNITS}), e.g. `45s`"));
        }
        let value: f64 = num.parse().map_err(|_| format!("`{num}` in `{s}` is not a number"))?;
        let unit_len = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "" => return Err(format!("`{s}` has no unit; write e.g. `{num}s` (units: {UNITS})")),
            other => return Err(format!("unknown unit `{other}` in `{s}` (units: {UNITS})")),
        };
        total += value * scale;
        rest = after.trim_start();
    }
    // Past ~300 years Duration::from_secs_f64 would panic; nothing sensible is configured that long.
    if !total.is_finite() || total > 1e10 {
        return Err(format!("`{s}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// `1m30s`-style rendering for messages.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut s = (ms / 1000) as u64;
    let mut out = String::new();
    for (unit, len) in [("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// The nearest valid key to `unknown`, if any is plausibly meant.
fn suggest(unknown: &str) -> Option<&'static str> {
    let leaf = unknown.rsplit('.').next().unwrap_or(unknown);
    let sections: Vec<&'static str> = section_names();
    let candidates = KEYS.iter().copied().chain(sections.iter().copied());
    let best = candidates.map(|k| (levenshtein(unknown, k), k)).min_by_key(|(d, _)| *d);
    if let Some((d, k)) = best {
        if d <= (k.len() / 4).max(2) {
            return Some(k);
        }
    }
    // Right key, wrong section (`queues.max_age`).
    let mut same_leaf = KEYS.iter().copied().filter(|k| k.rsplit('.').next() == Some(leaf));
    match (same_leaf.next(), same_leaf.next()) {
        (Some(k), None) => Some(k),
        _ => None,
    }
}

fn section_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = KEYS.iter().filter_map(|k| k.split('.').next()).collect();
    v.dedup();
    v
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_key(path: &str) -> Problem {
    match suggest(path) {
        Some(s) => Problem::error(
            path,
            format!("unknown key `{path}`; did you mean `{s}`?"),
            format!("rename `{path}` to `{s}`"),
        ),
        None => {
            let section = path.split('.').next().unwrap_or(path);
            let valid: Vec<&str> = KEYS.iter().copied().filter(|k| k.starts_with(&format!("{section}."))).collect();
            let fix = if valid.is_empty() {
                format!("remove it; the sections are {}", section_names().join(", "))
            } else {
                format!("remove it; the keys of `{section}` are {}", valid.join(", "))
            };
            Problem::error(path, format!("unknown key `{path}`"), fix)
        }
    }
}

/// What a YAML value is, for messages that must not quote the value itself.
fn kind_of(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn wrong_type(path: &str, v: &serde_json::Value, expected: &str, example: &str) -> Problem {
    Problem::error(path, format!("expected {expected}, found {}", kind_of(v)), format!("write it as {example}"))
}

/// A scalar as text: YAML reads `911` as a number, but as a queue name it is text.
fn scalar_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_string(path: &str, v: &serde_json::Value) -> Result<String, Problem> {
    scalar_string(v).ok_or_else(|| wrong_type(path, v, "a string", &format!("`{path}: text`")))
}

fn get_string_list(path: &str, v: &serde_json::Value) -> Result<Vec<String>, Problem> {
    let example = format!("a list, e.g. `{path}: [a, b]`");
    let serde_json::Value::Array(items) = v else { return Err(wrong_type(path, v, "a list of strings", &example)) };
    items
        .iter()
        .map(|i| scalar_string(i).ok_or_else(|| wrong_type(path, i, "list items that are strings", &example)))
        .collect()
}

fn get_duration(path: &str, v: &serde_json::Value) -> Result<Duration, Problem> {
    match v {
        serde_json::Value::String(s) => parse_duration(s)
            .map_err(|m| Problem::error(path, m, "write a number and a unit: `500ms`, `45s`, `5m`, `1h`".to_owned())),
        serde_json::Value::Number(n) => Err(Problem::error(
            path,
            format!("`{n}` has no unit"),
            format!("write `{n}s` for seconds (units: ms, s, m, h, d)"),
        )),
        _ => Err(wrong_type(path, v, "a duration", "`45s`, `5m` or `500ms`")),
    }
}

fn get_f64(path: &str, v: &serde_json::Value) -> Result<f64, Problem> {
    v.as_f64().ok_or_else(|| wrong_type(path, v, "a number", &format!("`{path}: 0.5`")))
}

fn get_usize(path: &str, v: &serde_json::Value) -> Result<usize, Problem> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| wrong_type(path, v, "a whole number ≥ 0", &format!("`{path}: 10`")))
}

fn get_bool(path: &str, v: &serde_json::Value) -> Result<bool, Problem> {
    v.as_bool().ok_or_else(|| wrong_type(path, v, "true or false", &format!("`{path}: true`")))
}

fn get_map(path: &str, v: &serde_json::Value) -> Result<BTreeMap<String, String>, Problem> {
    let example = format!("a mapping, e.g. `{path}: {{name: value}}`");
    let serde_json::Value::Object(m) = v else { return Err(wrong_type(path, v, "a mapping", &example)) };
    m.iter()
        .map(|(k, val)| {
            scalar_string(val)
                .map(|s| (k.clone(), s))
                .ok_or_else(|| wrong_type(&format!("{path}.{k}"), val, "a string", "a plain string value"))
        })
        .collect()
}

/// Non-empty URL with http(s) scheme and a host; the message names what is wrong, never echoes query strings.
fn check_url(s: &str) -> Result<(), String> {
    match reqwest::Url::parse(s) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Err(format!("`{s}` has scheme `{}`; only http and https are supported", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Err(format!("`{s}` has no host")),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("`{s}` is not a URL ({e})")),
    }
}

/// `k1=v1,k2=v2` with percent-encoded values, as OTEL_EXPORTER_OTLP_HEADERS is defined.
fn parse_otel_headers(s: &str) -> Result<BTreeMap<String, String>, Problem> {
    let mut out = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Problem::error(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "an entry has no `=`",
                "write name=value pairs separated by commas, e.g. `api-key=abc,tenant=x`",
            ));
        };
        out.insert(k.trim().to_owned(), percent_decode(v.trim()));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replace every value written after `client_secret:` (or a header-ish key) in `text` by `***` in `message`, so a
/// YAML syntax error can never carry the secret out.
fn redact_from(message: &str, text: &str) -> String {
    let mut msg = message.to_owned();
    for line in text.lines() {
        let t = line.trim_start().trim_start_matches("- ");
        let Some((key, value)) = t.split_once(':') else { continue };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase();
        let sensitive = ["secret", "token", "password", "authorization", "api-key", "api_key", "apikey"];
        if !sensitive.iter().any(|s| key.contains(s)) {
            continue;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        if value.len() >= 3 {
            msg = msg.replace(value, "***");
        }
    }
    msg
}

impl Config {
    /// Defaults, then `file` (if any), then the variables `env` returns. `env` stands in for the process
    /// environment so tests need not touch it.
    pub fn load(file: Option<&Path>, env: &impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            cfg.apply_yaml(&text, path)?;
            cfg.file = Some(path.to_owned());
            if cfg.genesys.client_secret.is_some() {
                warn_if_world_readable(path);
            }
        }
        cfg.apply_env(env)?;
        Ok(cfg)
    }

    /// [`Config::load`] with the process environment.
    pub fn load_from_process_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(file, &|k| std::env::var(k).ok())
    }

    /// Defaults overlaid by YAML text only (no environment); for tests and tools.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        cfg.apply_yaml(text, Path::new("<yaml>"))?;
        Ok(cfg)
    }

    fn apply_yaml(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let mut options = serde_saphyr::Options::default();
        // The snippet would quote the file, and the file may hold the client secret.
        options.with_snippet = false;
        let doc: Option<serde_json::Value> = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            // The parser's advice about its own options means nothing to a user.
            let mut message =
                e.without_snippet().to_string().replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            if let Some(l) = e.location().filter(|_| !message.contains("line")) {
                message.push_str(&format!(" (line {}, column {})", l.line(), l.column()));
            }
            ConfigError::Syntax { path: path.to_owned(), message: redact_from(&message, text) }
        })?;
        let root = match doc {
            None | Some(serde_json::Value::Null) => return Ok(()),
            Some(serde_json::Value::Object(m)) => m,
            Some(other) => {
                return Err(ConfigError::Invalid(vec![Problem::error(
                    "(top level)",
                    format!("the file holds {}, not a mapping of sections", kind_of(&other)),
                    format!("start the file with one of the sections: {}", section_names().join(", ")),
                )]))
            }
        };
        let sections = section_names();
        let mut problems = Vec::new();
        for (section, body) in &root {
            let known = sections.contains(&section.as_str());
            match body {
                serde_json::Value::Null => {}
                serde_json::Value::Object(keys) => {
                    for (key, value) in keys {
                        let path = format!("{section}.{key}");
                        if !known || !KEYS.contains(&path.as_str()) {
                            problems.push(unknown_key(&path));
                        } else if !value.is_null() {
                            // An empty value (`max_age:`) keeps the default, as Helm templates often write them.
                            if let Err(p) = self.set_key(&path, value) {
                                problems.push(p);
                            }
                        }
                    }
                }
                other if known => problems.push(wrong_type(
                    section,
                    other,
                    "a mapping of keys",
                    &format!("`{section}:` followed by indented keys"),
                )),
                _ => problems.push(unknown_key(section)),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn set_key(&mut self, path: &str, v: &serde_json::Value) -> Result<(), Problem> {
        match path {
            "genesys.region" => self.genesys.region = Some(get_string(path, v)?),
            "genesys.api_base_url" => self.genesys.api_base_url = Some(get_string(path, v)?),
            "genesys.login_base_url" => self.genesys.login_base_url = Some(get_string(path, v)?),
            "genesys.client_id" => self.genesys.client_id = Some(get_string(path, v)?),
            "genesys.client_secret" => self.genesys.client_secret = Some(Secret(get_string(path, v)?)),
            "queues.include" => self.queues.include = get_string_list(path, v)?,
            "queues.exclude" => self.queues.exclude = get_string_list(path, v)?,
            "queues.divisions" => self.queues.divisions = get_string_list(path, v)?,
            "queues.media_types" => self.queues.media_types = get_string_list(path, v)?,
            "queues.refresh_interval" => self.queues.refresh_interval = get_duration(path, v)?,
            "freshness.heartbeat_timeout" => self.freshness.heartbeat_timeout = get_duration(path, v)?,
            "freshness.poll_interval" => self.freshness.poll_interval = get_duration(path, v)?,
            "freshness.reconcile_interval" => self.freshness.reconcile_interval = get_duration(path, v)?,
            "freshness.max_age" => self.freshness.max_age = get_duration(path, v)?,
            "notifications.topics_per_channel" => self.notifications.topics_per_channel = get_usize(path, v)?,
            "notifications.max_channels" => self.notifications.max_channels = get_usize(path, v)?,
            "notifications.ping_interval" => self.notifications.ping_interval = get_duration(path, v)?,
            "api.budget_share" => self.api.budget_share = get_f64(path, v)?,
            "api.timeout" => self.api.timeout = get_duration(path, v)?,
            "histograms.wait_buckets" => {
                let serde_json::Value::Array(items) = v else {
                    return Err(wrong_type(path, v, "a list of numbers", "`[5, 10, 30, 60]`"));
                };
                self.histograms.wait_buckets = items.iter().map(|i| get_f64(path, i)).collect::<Result<_, _>>()?;
            }
            "otlp.endpoint" => self.otlp.endpoint = Some(get_string(path, v)?),
            "otlp.protocol" => {
                self.otlp.protocol = match get_string(path, v)?.as_str() {
                    "http/protobuf" => OtlpProtocol::HttpProtobuf,
                    "grpc" => OtlpProtocol::Grpc,
                    other => {
                        return Err(Problem::error(
                            path,
                            format!("unsupported protocol `{other}`"),
                            "use `http/protobuf` or `grpc`",
                        ))
                    }
                }
            }
            "otlp.interval" => self.otlp.interval = get_duration(path, v)?,
            "otlp.timeout" => self.otlp.timeout = get_duration(path, v)?,
            "otlp.compression" => {
                self.otlp.compression = match get_string(path, v)?.as_str() {
                    "none" => OtlpCompression::None,
                    "gzip" => OtlpCompression::Gzip,
                    other => {
                        return Err(Problem::error(
                            path,
                            format!("unsupported compression `{other}`"),
                            "use `none` or `gzip`",
                        ))
                    }
                }
            }
            "otlp.enabled" => self.otlp.enabled = Some(get_bool(path, v)?),
            "otlp.headers" => self.otlp.headers = get_map(path, v)?,
            "otlp.resource_attributes" => self.otlp.resource_attributes = get_map(path, v)?,
            "web.metrics_enabled" => self.web.metrics_enabled = get_bool(path, v)?,
            "log.level" => {
                let text = get_string(path, v)?;
                let level = <crate::telemetry::LogLevel as clap::ValueEnum>::from_str(&text, true).map_err(|_| {
                    Problem::error(
                        path,
                        format!("unknown level `{text}`"),
                        "use `error`, `warn`, `info`, `debug` or `trace`",
                    )
                })?;
                self.log.level = Some(level);
            }
            // KEYS and this match are kept in step by the `every_key_is_settable` test.
            _ => return Err(unknown_key(path)),
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        // An empty variable counts as unset: Kubernetes manifests often render `value: ""`.
        let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        for (var, key) in ENV_KEYS {
            let Some(value) = get(var) else { continue };
            match *key {
                "genesys.region" => self.genesys.region = Some(value),
                "genesys.api_base_url" => self.genesys.api_base_url = Some(value),
                "genesys.login_base_url" => self.genesys.login_base_url = Some(value),
                "genesys.client_id" => self.genesys.client_id = Some(value),
                "genesys.client_secret" => self.genesys.client_secret = Some(Secret(value)),
                "otlp.endpoint" => self.otlp.endpoint = Some(value),
                "otlp.headers" => {
                    // Per header, the environment wins over the file.
                    let headers = parse_otel_headers(&value).map_err(|p| ConfigError::Invalid(vec![p]))?;
                    self.otlp.headers.extend(headers);
                }
                _ => continue,
            }
            self.env_keys.insert(key);
        }
        Ok(())
    }

    /// How a key is named in a problem: the environment variable when the value came from there.
    fn source_of(&self, key: &str) -> String {
        if self.env_keys.contains(key) {
            if let Some((var, _)) = ENV_KEYS.iter().find(|(_, k)| *k == key) {
                return (*var).to_owned();
            }
        }
        key.to_owned()
    }

    /// The org's domain: `genesys.region` resolved, or [`DEFAULT_DOMAIN`] when unset or unknown (`validate`
    /// reports an unknown region).
    pub fn domain(&self) -> String {
        self.genesys.region.as_deref().and_then(resolve_region).unwrap_or_else(|| DEFAULT_DOMAIN.to_owned())
    }

    /// REST base URL, without a trailing slash: `genesys.api_base_url`, else `https://api.<domain>`.
    pub fn api_base_url(&self) -> String {
        match &self.genesys.api_base_url {
            Some(u) => u.trim().trim_end_matches('/').to_owned(),
            None => format!("https://api.{}", self.domain()),
        }
    }

    /// Login (OAuth) base URL, without a trailing slash: `genesys.login_base_url`; else, when only the API URL is
    /// given, that URL with `//api.` turned into `//login.` as the SDKs do (or the same URL, as the simulator and
    /// most proxies serve both); else `https://login.<domain>`.
    pub fn login_base_url(&self) -> String {
        match (&self.genesys.login_base_url, &self.genesys.api_base_url) {
            (Some(u), _) => u.trim().trim_end_matches('/').to_owned(),
            (None, Some(_)) => self.api_base_url().replacen("//api.", "//login.", 1),
            (None, None) => format!("https://login.{}", self.domain()),
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        self.genesys.client_id.as_deref()
    }

    pub fn client_secret(&self) -> Option<&Secret> {
        self.genesys.client_secret.as_ref()
    }

    /// OTLP push is on when `otlp.enabled` says so, or by default when an endpoint is set.
    pub fn otlp_enabled(&self) -> bool {
        self.otlp.enabled.unwrap_or(self.otlp.endpoint.is_some())
    }

    /// Everything wrong with the values, except missing credentials (see [`Config::credential_problems`]), so the
    /// credential-free `demo` can use it too. Errors and warnings; only errors stop the exporter.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        self.validate_genesys(&mut p);
        self.validate_queues(&mut p);
        self.validate_timing(&mut p);
        self.validate_outputs(&mut p);
        p
    }

    /// Missing OAuth client id or secret (`run` and `check`; `demo` brings its own).
    pub fn credential_problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.client_id().is_none_or(|s| s.trim().is_empty()) {
            p.push(Problem::error(
                "GENESYS_CLIENT_ID",
                "no OAuth client id is configured",
                "set GENESYS_CLIENT_ID, or genesys.client_id in the config file, to the id of a client-credentials OAuth client",
            ));
        }
        if self.client_secret().is_none_or(|s| s.expose().trim().is_empty()) {
            p.push(Problem::error(
                "GENESYS_CLIENT_SECRET",
                "no OAuth client secret is configured",
                "set GENESYS_CLIENT_SECRET in the environment; secrets are never taken from flags",
            ));
        }
        p
    }

    fn validate_genesys(&self, p: &mut Vec<Problem>) {
        if let Some(region) = &self.genesys.region {
            if resolve_region(region).is_none() {
                let names: Vec<String> = REGIONS.iter().map(|(n, _)| n.replace('_', "-")).collect();
                p.push(Problem::error(
                    self.source_of("genesys.region"),
                    format!("`{region}` is neither a Genesys Cloud domain nor a known region name"),
                    format!("use a domain such as `mypurecloud.ie` or one of: {}", names.join(", ")),
                ));
            }
        }
        for key in ["genesys.api_base_url", "genesys.login_base_url"] {
            let value =
                if key == "genesys.api_base_url" { &self.genesys.api_base_url } else { &self.genesys.login_base_url };
            if let Some(u) = value {
                if let Err(m) = check_url(u.trim()) {
                    p.push(Problem::error(
                        self.source_of(key),
                        m,
                        "give a full http(s) URL such as `https://api.mypurecloud.ie`, or set the region instead",
                    ));
                }
            }
        }
    }

    fn validate_queues(&self, p: &mut Vec<Problem>) {
        for (key, list) in [
            ("queues.include", &self.queues.include),
            ("queues.exclude", &self.queues.exclude),
            ("queues.divisions", &self.queues.divisions),
        ] {
            if list.iter().any(|s| s.trim().is_empty()) {
                p.push(Problem::error(
                    key,
                    "contains an empty entry",
                    "remove the empty entry (an empty list means all)",
                ));
            }
        }
        let media = &self.queues.media_types;
        if media.iter().any(|m| m.trim().is_empty() || m.contains(char::is_whitespace)) {
            p.push(Problem::error(
                "queues.media_types",
                "contains an empty entry or one with spaces",
                "list Genesys media types such as voice, chat, email, callback, message",
            ));
        }
        if media.is_empty() {
            p.push(Problem::warning(
                "queues.media_types",
                "is empty, so every media type is exported",
                "list the media types you want, or leave the key out for the default five",
            ));
        }
        let b = &self.histograms.wait_buckets;
        if b.is_empty() {
            p.push(Problem::error(
                "histograms.wait_buckets",
                "has no buckets",
                "give bounds in seconds, e.g. [5, 10, 30, 60]",
            ));
        } else if let Some(bad) = b.iter().find(|x| !x.is_finite() || **x <= 0.0) {
            p.push(Problem::error(
                "histograms.wait_buckets",
                format!("bound {bad} is not a positive number of seconds"),
                "use positive bounds in seconds; +Inf is added automatically",
            ));
        } else if let Some(w) = b.windows(2).find(|w| w[1] <= w[0]) {
            p.push(Problem::error(
                "histograms.wait_buckets",
                format!("bounds are not strictly increasing ({} then {})", w[0], w[1]),
                "sort the bounds in increasing order and remove duplicates",
            ));
        }
        let n = &self.notifications;
        if !(1..=1000).contains(&n.topics_per_channel) {
            p.push(Problem::error(
                "notifications.topics_per_channel",
                format!(
                    "{} is outside 1..=1000 (Genesys allows at most 1000 topics per channel)",
                    n.topics_per_channel
                ),
                "use a value from 1 to 1000 (default 1000)",
            ));
        }
        if !(1..=20).contains(&n.max_channels) {
            p.push(Problem::error(
                "notifications.max_channels",
                format!("{} is outside 1..=20 (Genesys allows at most 20 channels per OAuth client)", n.max_channels),
                "use a value from 1 to 20 (default 20)",
            ));
        }
    }

    fn validate_timing(&self, p: &mut Vec<Problem>) {
        let f = &self.freshness;
        let fmt = format_duration;
        let positive = [
            ("queues.refresh_interval", self.queues.refresh_interval),
            ("freshness.reconcile_interval", f.reconcile_interval),
            ("notifications.ping_interval", self.notifications.ping_interval),
            ("api.timeout", self.api.timeout),
            ("otlp.interval", self.otlp.interval),
            ("otlp.timeout", self.otlp.timeout),
        ];
        for (key, d) in positive {
            if d.is_zero() {
                p.push(Problem::error(key, "is zero", "give a positive duration such as `10s`"));
            }
        }
        if f.poll_interval < Duration::from_secs(1) {
            p.push(Problem::error(
                "freshness.poll_interval",
                format!("{} is below 1s; the observations query would eat the API budget", fmt(f.poll_interval)),
                "use 1s or more (default 10s)",
            ));
        }
        // A live channel proves itself within the shorter of Genesys's 30 s heartbeat and the exporter's app-level
        // ping (sent after `ping_interval` of quiet, answered with a pong). A timeout at or below that reconnects
        // healthy channels; one just above it reconnects on ordinary network jitter.
        let proof = self.notifications.ping_interval.min(Duration::from_secs(30));
        if f.heartbeat_timeout <= proof {
            p.push(Problem::error(
                "freshness.heartbeat_timeout",
                format!(
                    "{} is not longer than the {} in which a live channel proves itself (Genesys heartbeats every \
                     30s; notifications.ping_interval is {})",
                    fmt(f.heartbeat_timeout),
                    fmt(proof),
                    fmt(self.notifications.ping_interval)
                ),
                "use more than that plus a few seconds of slack (default 45s), or lower notifications.ping_interval",
            ));
        } else if f.heartbeat_timeout < proof + Duration::from_secs(5) {
            p.push(Problem::warning(
                "freshness.heartbeat_timeout",
                format!("{} leaves under 5s of slack over the {} proof of life", fmt(f.heartbeat_timeout), fmt(proof)),
                "add slack (default 45s), or lower notifications.ping_interval",
            ));
        }
        if f.max_age <= f.heartbeat_timeout {
            p.push(Problem::error(
                "freshness.max_age",
                format!(
                    "{} is not longer than freshness.heartbeat_timeout ({}); values would vanish before a dead stream is noticed",
                    fmt(f.max_age),
                    fmt(f.heartbeat_timeout)
                ),
                "make max_age longer than heartbeat_timeout (defaults 3m and 45s)",
            ));
        }
        if f.max_age <= f.poll_interval {
            p.push(Problem::error(
                "freshness.max_age",
                format!(
                    "{} is not longer than freshness.poll_interval ({}); polled values would vanish between polls",
                    fmt(f.max_age),
                    fmt(f.poll_interval)
                ),
                "make max_age several times poll_interval (defaults 3m and 10s)",
            ));
        }
        if !f.reconcile_interval.is_zero() && f.reconcile_interval < Duration::from_secs(30) {
            p.push(Problem::warning(
                "freshness.reconcile_interval",
                format!("{} re-reads every queue very often and spends API budget", fmt(f.reconcile_interval)),
                "use a few minutes (default 5m)",
            ));
        }
        let ping = self.notifications.ping_interval;
        if !ping.is_zero() && ping >= f.heartbeat_timeout {
            p.push(Problem::warning(
                "notifications.ping_interval",
                format!("{} is not shorter than freshness.heartbeat_timeout ({})", fmt(ping), fmt(f.heartbeat_timeout)),
                "ping more often than the heartbeat timeout (default 20s)",
            ));
        }
        let share = self.api.budget_share;
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            p.push(Problem::error(
                "api.budget_share",
                format!("{share} is outside (0, 1]; it is the share of the token's 300 requests/min"),
                "use a fraction such as 0.5, half the budget",
            ));
        }
    }

    fn validate_outputs(&self, p: &mut Vec<Problem>) {
        let o = &self.otlp;
        if let Some(e) = &o.endpoint {
            if let Err(m) = check_url(e.trim()) {
                p.push(Problem::error(
                    self.source_of("otlp.endpoint"),
                    m,
                    "give the collector's URL, e.g. `http://127.0.0.1:4318` (http/protobuf) or `http://127.0.0.1:4317` (grpc)",
                ));
            }
        }
        if o.enabled == Some(true) && o.endpoint.is_none() {
            p.push(Problem::error(
                "otlp.enabled",
                "is true but no otlp.endpoint is set",
                "set otlp.endpoint, or drop otlp.enabled",
            ));
        }
        for (name, value) in &o.headers {
            // Names and values are checked as HTTP would; the message names the header, never its value.
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                p.push(Problem::error(
                    self.source_of("otlp.headers"),
                    format!("`{name}` is not a valid HTTP header name"),
                    "use letters, digits and `-` in header names",
                ));
            } else if http::HeaderValue::from_str(value).is_err() {
                p.push(Problem::error(
                    self.source_of("otlp.headers"),
                    format!("the value of header `{name}` is not a valid HTTP header value"),
                    "remove control characters and line breaks from the value",
                ));
            }
        }
        if o.resource_attributes.keys().any(|k| k.trim().is_empty()) {
            p.push(Problem::error("otlp.resource_attributes", "has an empty name", "give every attribute a name"));
        }
        if !o.timeout.is_zero() && o.timeout > o.interval {
            p.push(Problem::warning(
                "otlp.timeout",
                format!(
                    "{} is longer than otlp.interval ({})",
                    format_duration(o.timeout),
                    format_duration(o.interval)
                ),
                "keep the push timeout below the push interval",
            ));
        }
        if !self.web.metrics_enabled && !self.otlp_enabled() {
            p.push(Problem::error(
                "web.metrics_enabled",
                "is false and OTLP push is off, so no metrics would leave the exporter",
                "set otlp.endpoint, or set web.metrics_enabled to true",
            ));
        }
    }
}

/// A secret in a file others can read is a leak waiting to happen: say so, naming the file, never the secret.
fn warn_if_world_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    "config file holds genesys.client_secret and is readable by every user; \
                     restrict it (chmod 600) or pass the secret in GENESYS_CLIENT_SECRET"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(p: &[Problem]) -> Vec<&Problem> {
        p.iter().filter(|p| p.is_error()).collect()
    }

    fn invalid(yaml: &str) -> Vec<Problem> {
        match Config::from_yaml(yaml) {
            Err(ConfigError::Invalid(p)) => p,
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("45s", 45_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            (" 2d ", 172_800_000),
            ("0", 0),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).map(|d| d.as_millis()), Ok(ms), "{s}");
        }
        assert!(parse_duration("45").unwrap_err().contains("no unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("99999999999999h").unwrap_err().contains("too long"));
    }

    #[test]
    fn format_duration_round_trips() {
        for s in ["45s", "5m", "1h", "500ms", "1m30s", "1h1m1s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("freshnes.max_age"), Some("freshness.max_age"));
        assert_eq!(suggest("freshness.maxage"), Some("freshness.max_age"));
        assert_eq!(suggest("queues.max_age"), Some("freshness.max_age"));
        assert_eq!(suggest("otlp.header"), Some("otlp.headers"));
        assert_eq!(suggest("totally.unrelated"), None);
    }

    #[test]
    fn every_key_is_settable() {
        let values = [
            serde_json::json!("x"),
            serde_json::json!(["a"]),
            serde_json::json!("5m"),
            serde_json::json!(0.5),
            serde_json::json!(3),
            serde_json::json!([1, 2]),
            serde_json::json!("grpc"),
            serde_json::json!("gzip"),
            serde_json::json!(true),
            serde_json::json!({"a": "b"}),
            serde_json::json!("debug"),
        ];
        for key in KEYS {
            let mut cfg = Config::default();
            let accepted = values.iter().any(|v| cfg.set_key(key, v).is_ok());
            assert!(accepted, "{key} is in KEYS but set_key accepts nothing for it");
        }
    }

    #[test]
    fn log_level_is_a_known_level() {
        let c = Config::from_yaml("log:\n  level: DEBUG\n").unwrap();
        assert_eq!(c.log.level, Some(crate::telemetry::LogLevel::Debug));
        let p = Config::from_yaml("log:\n  level: loud\n").unwrap_err().problems();
        assert!(p.iter().any(|p| p.field == "log.level" && p.fix.contains("`trace`")), "{p:?}");
    }

    #[test]
    fn empty_and_comment_only_files_are_defaults() {
        assert_eq!(Config::from_yaml("").unwrap(), Config::default());
        assert_eq!(Config::from_yaml("# nothing\n").unwrap(), Config::default());
        assert_eq!(Config::from_yaml("freshness:\n").unwrap(), Config::default());
        assert_eq!(Config::from_yaml("freshness:\n  max_age:\n").unwrap(), Config::default());
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = Config::default();
        assert!(errors(&c.validate()).is_empty(), "{:?}", c.validate());
        assert_eq!(c.freshness.heartbeat_timeout, Duration::from_secs(45));
        assert_eq!(c.freshness.poll_interval, Duration::from_secs(10));
        assert_eq!(c.freshness.reconcile_interval, Duration::from_secs(300));
        assert_eq!(c.freshness.max_age, Duration::from_secs(180));
        assert_eq!(c.queues.refresh_interval, Duration::from_secs(300));
        assert_eq!(c.queues.media_types, ["voice", "chat", "email", "callback", "message"]);
        assert_eq!(c.api.budget_share, 0.5);
        assert_eq!(c.api.timeout, Duration::from_secs(10));
        assert_eq!(
            c.notifications,
            NotificationsConfig { topics_per_channel: 1000, max_channels: 20, ping_interval: Duration::from_secs(20) }
        );
        assert_eq!(c.histograms.wait_buckets.len(), 11);
        assert_eq!(c.otlp.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.otlp.interval, Duration::from_secs(15));
        assert!(!c.otlp_enabled());
        assert!(c.web.metrics_enabled);
        assert_eq!(c.api_base_url(), "https://api.mypurecloud.com");
        assert_eq!(c.login_base_url(), "https://login.mypurecloud.com");
        assert_eq!(c.credential_problems().len(), 2);
    }

    #[test]
    fn wrong_shapes_name_the_key() {
        let p = invalid("api:\n  budget_share: lots\nqueues:\n  include: Sales\nfreshness:\n  max_age: 45\n");
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["api.budget_share", "freshness.max_age", "queues.include"]);
        assert!(p[1].message.contains("no unit") && p[1].fix.contains("45s"), "{:?}", p[1]);
        let p = invalid("freshness: 5\n");
        assert_eq!(p[0].field, "freshness");
        let p = invalid("- a\n- b\n");
        assert_eq!(p[0].field, "(top level)");
        let p = invalid("otlp:\n  protocol: http\n  compression: zstd\n");
        assert!(p.iter().any(|p| p.field == "otlp.protocol" && p.fix.contains("grpc")));
        assert!(p.iter().any(|p| p.field == "otlp.compression" && p.fix.contains("gzip")));
    }

    #[test]
    fn unknown_section_reports_each_key_with_suggestion() {
        let p = invalid("freshnes:\n  max_age: 3m\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message, "unknown key `freshnes.max_age`; did you mean `freshness.max_age`?");
        let p = invalid("queues:\n  bogus_thing: 1\n");
        assert!(p[0].fix.contains("queues.include"), "{}", p[0].fix);
    }

    #[test]
    fn numeric_queue_names_are_text() {
        let c = Config::from_yaml("queues:\n  include: [911, \"Sales*\"]\n").unwrap();
        assert_eq!(c.queues.include, ["911", "Sales*"]);
    }

    #[test]
    fn validation_rules() {
        let check = |yaml: &str, field: &str| {
            let c = Config::from_yaml(yaml).unwrap();
            let p = c.validate();
            assert!(
                p.iter().any(|p| p.is_error() && p.field == field),
                "{yaml}: expected an error on {field}, got {p:?}"
            );
        };
        check("api:\n  budget_share: 2\n", "api.budget_share");
        check("api:\n  budget_share: 0\n", "api.budget_share");
        check("freshness:\n  poll_interval: 500ms\n", "freshness.poll_interval");
        check("freshness:\n  heartbeat_timeout: 20s\n", "freshness.heartbeat_timeout");
        check(
            "freshness:\n  heartbeat_timeout: 5s\nnotifications:\n  ping_interval: 5s\n",
            "freshness.heartbeat_timeout",
        );
        check("freshness:\n  max_age: 40s\n", "freshness.max_age");
        check("notifications:\n  topics_per_channel: 1001\n", "notifications.topics_per_channel");
        check("notifications:\n  topics_per_channel: 0\n", "notifications.topics_per_channel");
        check("notifications:\n  max_channels: 21\n", "notifications.max_channels");
        check("histograms:\n  wait_buckets: [5, 30, 10]\n", "histograms.wait_buckets");
        check("histograms:\n  wait_buckets: [0, 10]\n", "histograms.wait_buckets");
        check("histograms:\n  wait_buckets: [5, 5]\n", "histograms.wait_buckets");
        check("histograms:\n  wait_buckets: []\n", "histograms.wait_buckets");
        check("queues:\n  media_types: [voice, \"\"]\n", "queues.media_types");
        check("otlp:\n  endpoint: not a url\n", "otlp.endpoint");
        check("otlp:\n  endpoint: ftp://x\n", "otlp.endpoint");
        check("otlp:\n  enabled: true\n", "otlp.enabled");
        check("otlp:\n  endpoint: http://c:4318\n  headers: {\"bad name\": x}\n", "otlp.headers");
        check("genesys:\n  api_base_url: localhost:9300\n", "genesys.api_base_url");
        check("genesys:\n  login_base_url: http://\n", "genesys.login_base_url");
        check("genesys:\n  region: atlantis\n", "genesys.region");
        check("web:\n  metrics_enabled: false\n", "web.metrics_enabled");
        check("api:\n  timeout: 0s\n", "api.timeout");
    }

    #[test]
    fn heartbeat_slack_is_a_warning() {
        // The default 20s ping interval proves a live channel within 20s; 22s leaves 2s of slack.
        let c = Config::from_yaml("freshness:\n  heartbeat_timeout: 22s\n").unwrap();
        let p = c.validate();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].field.as_str(), p[0].severity), ("freshness.heartbeat_timeout", Severity::Warning));
        // A short ping interval allows a short timeout (tests, demos that must notice a stall in seconds).
        let c = Config::from_yaml(
            "freshness:\n  heartbeat_timeout: 8s\n  max_age: 60s\nnotifications:\n  ping_interval: 2s\n",
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn regions() {
        assert_eq!(resolve_region("mypurecloud.ie").as_deref(), Some("mypurecloud.ie"));
        assert_eq!(resolve_region("eu-west-1").as_deref(), Some("mypurecloud.ie"));
        assert_eq!(resolve_region("EU_WEST_1").as_deref(), Some("mypurecloud.ie"));
        assert_eq!(resolve_region("us-east-2").as_deref(), Some("use2.us-gov-pure.cloud"));
        assert_eq!(resolve_region("https://api.usw2.pure.cloud/").as_deref(), Some("usw2.pure.cloud"));
        assert_eq!(resolve_region("atlantis"), None);
        assert_eq!(resolve_region("bad domain.com"), None);
        assert_eq!(REGIONS.len(), 17);
    }

    #[test]
    fn base_url_resolution() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let c = Config::load(None, &env(&[("GENESYS_REGION", "ap-southeast-2")])).unwrap();
        assert_eq!(c.api_base_url(), "https://api.mypurecloud.com.au");
        assert_eq!(c.login_base_url(), "https://login.mypurecloud.com.au");
        let c = Config::load(None, &env(&[("GENESYS_API_BASE_URL", "http://127.0.0.1:9300/")])).unwrap();
        assert_eq!(c.api_base_url(), "http://127.0.0.1:9300");
        assert_eq!(c.login_base_url(), "http://127.0.0.1:9300");
        let c = Config::load(None, &env(&[("GENESYS_API_BASE_URL", "https://api.example.test")])).unwrap();
        assert_eq!(c.login_base_url(), "https://login.example.test");
        let c = Config::load(
            None,
            &env(&[("GENESYS_REGION", "mypurecloud.de"), ("GENESYS_LOGIN_BASE_URL", "http://proxy:1/")]),
        )
        .unwrap();
        assert_eq!(c.api_base_url(), "https://api.mypurecloud.de");
        assert_eq!(c.login_base_url(), "http://proxy:1");
    }

    #[test]
    fn env_problems_name_the_variable() {
        let c = Config::load(None, &|k: &str| (k == "GENESYS_API_BASE_URL").then(|| "nope".to_owned())).unwrap();
        let p = c.validate();
        assert_eq!(p[0].field, "GENESYS_API_BASE_URL");
    }

    #[test]
    fn otel_headers_from_env() {
        let c = Config::load(None, &|k: &str| {
            (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| "api-key=a%20b, tenant=t1".to_owned())
        })
        .unwrap();
        assert_eq!(c.otlp.headers.get("api-key").map(String::as_str), Some("a b"));
        assert_eq!(c.otlp.headers.get("tenant").map(String::as_str), Some("t1"));
        assert!(!format!("{c:?}").contains("a b"));
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
    }

    #[test]
    fn syntax_errors_do_not_quote_secrets() {
        let yaml = "genesys:\n  client_secret: \"s3cr3t-value\n  client_id: x\n";
        match Config::from_yaml(yaml) {
            Err(e @ ConfigError::Syntax { .. }) => assert!(!e.to_string().contains("s3cr3t"), "{e}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert_eq!(redact_from("near s3cr3t here", "client_secret: s3cr3t"), "near *** here");
    }
}
