//! The exporter's own observability: log setup (logfmt or JSON on stderr) and the self-metrics registry.
//!
//! Beside the data path, used by every stage. Metric names of the exporter itself are spelled here only (queue
//! metrics live in `state::families`); they are the contract of shared/interface.md. Nothing here may record a
//! secret: values reach logs only through `tracing` fields, and callers pass `Secret`s, which print `***`.

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// Filter directives for this level. Debug and trace apply to this crate only: the HTTP, TLS and WebSocket
    /// libraries are extremely chatty at those levels (RUST_LOG can still ask for them).
    pub fn directives(self) -> String {
        match self {
            LogLevel::Debug | LogLevel::Trace => format!("info,genesys_cloud_exporter={}", self.as_str()),
            _ => self.as_str().to_owned(),
        }
    }
}

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `ts=… level=info target=… msg="…" key=value`, as Go exporters log.
    #[default]
    Logfmt,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// The filter: RUST_LOG when set and valid, else `level`. The second value is a warning to log once logging works
/// (an invalid RUST_LOG).
fn build_filter(level: LogLevel, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(spec) => match EnvFilter::try_new(spec) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(level.directives()),
                Some(format!("ignoring invalid RUST_LOG ({e}); using --log.level={}", level.as_str())),
            ),
        },
        None => (EnvFilter::new(level.directives()), None),
    }
}

/// Changes the global logger's level (installed by [`init_logging`]).
type SetLevel = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static SET_LEVEL: std::sync::OnceLock<SetLevel> = std::sync::OnceLock::new();

/// Install the global logger: `format` on stderr, at `level` unless RUST_LOG says otherwise. Call once, first
/// thing in `main`.
pub fn init_logging(level: LogLevel, format: LogFormat) -> Result<(), TelemetryError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, warning) = build_filter(level, rust_log.as_deref());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    macro_rules! install {
        ($b:expr) => {{
            let b = $b.with_filter_reloading();
            let handle = b.reload_handle();
            b.try_init().map_err(|_| TelemetryError::AlreadyInstalled)?;
            let _ = SET_LEVEL.set(Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())));
        }};
    }
    match format {
        LogFormat::Logfmt => install!(builder.event_format(Logfmt).fmt_fields(LogfmtFields)),
        LogFormat::Json => {
            install!(builder.json().flatten_event(true).with_current_span(false).with_span_list(true))
        }
    }
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    Ok(())
}

/// Change the log level of the running process (config reload). RUST_LOG, when set, still wins: it is the
/// operator's override. Does nothing before [`init_logging`].
pub fn set_log_level(level: LogLevel) -> Result<(), String> {
    let Some(set) = SET_LEVEL.get() else { return Ok(()) };
    let (filter, _) = build_filter(level, std::env::var("RUST_LOG").ok().as_deref());
    set(filter)
}

/// Event formatter for logfmt: `ts=<RFC 3339> level=<lvl> target=<module> msg="<message>" <fields> <span fields>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = meta.level().as_str().to_ascii_lowercase();
        write!(writer, "ts={ts} level={level} target={}", meta.target())?;
        let mut visitor = LogfmtVisitor { out: &mut writer, first: false, result: Ok(()) };
        event.record(&mut visitor);
        visitor.result?;
        // Span fields (channel_id, queue_id …) root first, already rendered by LogfmtFields.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, " {fields}")?;
                    }
                }
            }
        }
        writeln!(writer)
    }
}

/// Field formatter for logfmt (span fields): `key=value` pairs separated by spaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = LogfmtVisitor { out: &mut writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct LogfmtVisitor<'a, W: fmt::Write> {
    out: &'a mut W,
    /// No separator before the first pair.
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> LogfmtVisitor<'_, W> {
    fn pair(&mut self, field: &Field, value: &str, always_quote: bool) {
        if self.result.is_err() {
            return;
        }
        let key = match field.name() {
            "message" => "msg",
            // `r#type` and friends arrive with the raw prefix.
            n => n.strip_prefix("r#").unwrap_or(n),
        };
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = write!(self.out, "{sep}{key}=").and_then(|()| write_value(self.out, value, always_quote));
    }
}

impl<W: fmt::Write> Visit for LogfmtVisitor<'_, W> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let is_msg = field.name() == "message";
        self.pair(field, &format!("{value:?}"), is_msg);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value, field.name() == "message");
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, so `err=` says why and not just what.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(text, ": {s}");
            source = s.source();
        }
        self.pair(field, &text, false);
    }
}

/// A logfmt value: bare when it is a simple token, else double-quoted with `\`, `"` and control characters
/// escaped, so each record stays on one line.
fn write_value(out: &mut impl fmt::Write, value: &str, always_quote: bool) -> fmt::Result {
    let needs_quotes =
        always_quote || value.is_empty() || value.chars().any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !needs_quotes {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// The payload-error kinds pre-set to 0, so `rate()` and alerts work before the first error.
pub const PAYLOAD_ERROR_KINDS: [&str; 6] =
    ["malformed", "unknown_topic", "unknown_metric", "wrong_type", "oversized", "unknown_queue"];

/// The exporter's own metrics (names from shared/interface.md), in a registry of their own.
pub struct SelfMetrics {
    registry: Registry,
    pub up: IntGauge,
    pub build_info: IntGaugeVec,
    pub notification_channels: IntGauge,
    pub notification_topics: IntGauge,
    pub notification_messages_total: IntCounterVec,
    pub notification_reconnects_total: IntCounterVec,
    pub notification_heartbeat_age_seconds: Gauge,
    pub notification_delivery_latency_seconds: Histogram,
    pub api_requests_total: IntCounterVec,
    pub api_request_duration_seconds: HistogramVec,
    pub api_rate_limit_remaining: Gauge,
    pub api_throttled_total: IntCounter,
    pub payload_errors_total: IntCounterVec,
    pub token_expiry_timestamp_seconds: Gauge,
    pub stream_drift_total: IntCounter,
    pub poll_cycle_seconds: Gauge,
    pub otlp_export_failures_total: IntCounter,
    pub otlp_exports_total: IntCounter,
    pub otlp_pending_exports: IntGauge,
    /// Config reloads (SIGHUP, `POST /-/reload`) by `result` (`success`, `failure`).
    pub config_reloads_total: IntCounterVec,
    /// 1 when the last reload applied (or none was tried), 0 when it was refused: as Prometheus's own
    /// `prometheus_config_last_reload_successful`.
    pub config_last_reload_successful: IntGauge,
    /// Unix time of the last configuration that applied (the start, then each successful reload).
    pub config_last_reload_success_timestamp_seconds: Gauge,
}

impl SelfMetrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        // The definitions below are constants: a failure is a programming error caught by the first test run,
        // never a runtime condition, so panicking with the reason is right.
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definitions are static and valid");
                registry.register(Box::new(m.clone())).expect("metric names are unique");
                m
            }};
        }
        let counter_vec = |name: &str, help: &str, label: &str| IntCounterVec::new(Opts::new(name, help), &[label]);
        let s = SelfMetrics {
            up: reg!(IntGauge::new("genesys_up", "1 when the exporter is authenticated and serving fresh data.")),
            build_info: reg!(IntGaugeVec::new(
                Opts::new("genesys_exporter_build_info", "Version and git revision of the exporter, value 1."),
                &["version", "revision"]
            )),
            notification_channels: reg!(IntGauge::new(
                "genesys_notification_channels",
                "Notification channels (WebSockets) in use."
            )),
            notification_topics: reg!(IntGauge::new(
                "genesys_notification_topics",
                "Topics subscribed across all notification channels."
            )),
            notification_messages_total: reg!(counter_vec(
                "genesys_notification_messages_total",
                "WebSocket frames received, by kind.",
                "kind"
            )),
            notification_reconnects_total: reg!(counter_vec(
                "genesys_notification_reconnects_total",
                "Notification channel reconnects, by reason.",
                "reason"
            )),
            notification_heartbeat_age_seconds: reg!(Gauge::new(
                "genesys_notification_heartbeat_age_seconds",
                "Seconds since the last frame on the least recently heard channel."
            )),
            notification_delivery_latency_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "genesys_notification_delivery_latency_seconds",
                    "Seconds from a notification's event time to its application in the store."
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            )),
            api_requests_total: reg!(IntCounterVec::new(
                Opts::new("genesys_api_requests_total", "REST requests to Genesys Cloud, by endpoint and HTTP status."),
                &["endpoint", "code"]
            )),
            api_request_duration_seconds: reg!(HistogramVec::new(
                HistogramOpts::new(
                    "genesys_api_request_duration_seconds",
                    "Duration of REST requests to Genesys Cloud in seconds, by endpoint."
                ),
                &["endpoint"]
            )),
            api_rate_limit_remaining: reg!(Gauge::new(
                "genesys_api_rate_limit_remaining",
                "Requests left in the current rate-limit window, from the inin-ratelimit headers."
            )),
            api_throttled_total: reg!(IntCounter::new(
                "genesys_api_throttled_total",
                "REST requests Genesys Cloud answered with 429 Too Many Requests."
            )),
            payload_errors_total: reg!(counter_vec(
                "genesys_payload_errors_total",
                "Payloads or parts of payloads that could not be used, by kind.",
                "kind"
            )),
            token_expiry_timestamp_seconds: reg!(Gauge::new(
                "genesys_token_expiry_timestamp_seconds",
                "Unix time at which the current OAuth token expires."
            )),
            stream_drift_total: reg!(IntCounter::new(
                "genesys_stream_drift_total",
                "Values corrected by reconciliation because the stream disagreed with REST."
            )),
            poll_cycle_seconds: reg!(Gauge::new(
                "genesys_poll_cycle_seconds",
                "Achieved period, in seconds, of polling the queues not served by a stream."
            )),
            otlp_export_failures_total: reg!(IntCounter::new(
                "genesys_otlp_export_failures_total",
                "OTLP pushes that failed or were dropped."
            )),
            otlp_exports_total: reg!(IntCounter::new(
                "genesys_otlp_exports_total",
                "OTLP pushes the backend accepted."
            )),
            otlp_pending_exports: reg!(IntGauge::new(
                "genesys_otlp_pending_exports",
                "OTLP pushes built but not yet accepted by the backend (bounded; the oldest is dropped when full)."
            )),
            config_reloads_total: reg!(counter_vec(
                "genesys_config_reloads_total",
                "Configuration reloads (SIGHUP or POST /-/reload), by result.",
                "result"
            )),
            config_last_reload_successful: reg!(IntGauge::new(
                "genesys_config_last_reload_successful",
                "1 when the last configuration reload was applied, 0 when it was refused."
            )),
            config_last_reload_success_timestamp_seconds: reg!(Gauge::new(
                "genesys_config_last_reload_success_timestamp_seconds",
                "Unix time of the last configuration that was applied (start or reload)."
            )),
            registry,
        };
        for kind in PAYLOAD_ERROR_KINDS {
            s.payload_errors_total.with_label_values(&[kind]);
        }
        for result in ["success", "failure"] {
            s.config_reloads_total.with_label_values(&[result]);
        }
        s.config_last_reload_successful.set(1);
        s.config_last_reload_success_timestamp_seconds.set(crate::model::now_ms() as f64 / 1000.0);
        s.build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), env!("GIT_REVISION")]).set(1);
        #[cfg(target_os = "linux")]
        {
            // process_* (CPU, memory, file descriptors, start time). The exposition module registers it too;
            // whichever comes second gets AlreadyReg, which is fine.
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            if let Err(e) = s.registry.register(Box::new(pc)) {
                tracing::debug!(err = %e, "process metrics not registered");
            }
        }
        Arc::new(s)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// "Log once per kind per period": repeated problems (a stream of malformed frames) give one log line a minute per
/// kind, while the counter still counts every one.
pub struct LogLimiter {
    period: Duration,
    /// A std Mutex: the critical section is a map lookup and nothing is awaited under it.
    last: Mutex<HashMap<String, Instant>>,
}

impl LogLimiter {
    pub fn new(period: Duration) -> Self {
        LogLimiter { period, last: Mutex::new(HashMap::new()) }
    }

    /// True when `kind` was not logged within the period (and records that it is now).
    pub fn allow(&self, kind: &str) -> bool {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&self, kind: &str, now: Instant) -> bool {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(kind) {
            Some(t) if now.duration_since(*t) < self.period => false,
            _ => {
                last.insert(kind.to_owned(), now);
                true
            }
        }
    }
}

impl Default for LogLimiter {
    /// Once a minute per kind.
    fn default() -> Self {
        LogLimiter::new(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture_logfmt(f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .event_format(Logfmt)
            .fmt_fields(LogfmtFields)
            .with_writer(move || out.clone())
            .with_env_filter(EnvFilter::new("trace"))
            .finish();
        tracing::subscriber::with_default(sub, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn logfmt_line_shape() {
        let out = capture_logfmt(|| {
            let span = tracing::info_span!("channel", channel_id = "ch-1");
            let _g = span.enter();
            let e = io::Error::other("boom");
            tracing::warn!(
                queue_id = "q1",
                count = 3,
                ok = true,
                note = "two words",
                err = &e as &dyn std::error::Error,
                "reconnect \"now\""
            );
        });
        let line = out.lines().next().unwrap();
        assert!(line.starts_with("ts=20"), "{line}");
        let rest = line.split_once(' ').unwrap().1;
        assert_eq!(
            rest,
            "level=warn target=genesys_cloud_exporter::telemetry::tests msg=\"reconnect \\\"now\\\"\" queue_id=q1 \
             count=3 ok=true note=\"two words\" err=boom channel_id=ch-1"
        );
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn logfmt_escapes_newlines() {
        let out = capture_logfmt(|| tracing::info!(detail = "a\nb", "x=y"));
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains(r#"msg="x=y" detail="a\nb""#), "{out}");
    }

    #[test]
    fn filters() {
        assert_eq!(LogLevel::Info.directives(), "info");
        assert_eq!(LogLevel::Debug.directives(), "info,genesys_cloud_exporter=debug");
        let (f, w) = build_filter(LogLevel::Info, Some("hyper=trace"));
        assert!(w.is_none());
        assert_eq!(f.to_string(), "hyper=trace");
        let (f, w) = build_filter(LogLevel::Warn, Some("=[bad"));
        assert!(w.unwrap().contains("RUST_LOG"));
        assert_eq!(f.to_string(), "warn");
        let (f, _) = build_filter(LogLevel::Error, Some("  "));
        assert_eq!(f.to_string(), "error");
    }

    #[test]
    fn self_metrics_names() {
        let m = SelfMetrics::new();
        m.notification_messages_total.with_label_values(&["heartbeat"]).inc();
        m.notification_reconnects_total.with_label_values(&["heartbeat_timeout"]).inc();
        m.api_requests_total.with_label_values(&["routing_queues", "200"]).inc();
        m.api_request_duration_seconds.with_label_values(&["routing_queues"]).observe(0.1);
        let names: std::collections::BTreeSet<String> =
            m.registry().gather().iter().map(|f| f.name().to_owned()).collect();
        for n in [
            "genesys_up",
            "genesys_exporter_build_info",
            "genesys_notification_channels",
            "genesys_notification_topics",
            "genesys_notification_messages_total",
            "genesys_notification_reconnects_total",
            "genesys_notification_heartbeat_age_seconds",
            "genesys_notification_delivery_latency_seconds",
            "genesys_api_requests_total",
            "genesys_api_request_duration_seconds",
            "genesys_api_rate_limit_remaining",
            "genesys_api_throttled_total",
            "genesys_payload_errors_total",
            "genesys_token_expiry_timestamp_seconds",
            "genesys_stream_drift_total",
            "genesys_poll_cycle_seconds",
            "genesys_otlp_export_failures_total",
            "genesys_otlp_exports_total",
            "genesys_otlp_pending_exports",
        ] {
            assert!(names.contains(n), "{n} missing from {names:?}");
        }
        #[cfg(target_os = "linux")]
        assert!(names.contains("process_start_time_seconds"));
        for kind in PAYLOAD_ERROR_KINDS {
            assert_eq!(m.payload_errors_total.with_label_values(&[kind]).get(), 0);
        }
        let fam = m.registry().gather();
        let info = fam.iter().find(|f| f.name() == "genesys_exporter_build_info").unwrap();
        assert_eq!(info.get_metric()[0].get_gauge().get_value(), 1.0);
        let labels: Vec<(&str, &str)> =
            info.get_metric()[0].get_label().iter().map(|l| (l.name(), l.value())).collect();
        assert!(labels.contains(&("version", env!("CARGO_PKG_VERSION"))));
        assert!(labels.iter().any(|(n, v)| *n == "revision" && !v.is_empty()));
        let payload = fam.iter().find(|f| f.name() == "genesys_payload_errors_total").unwrap();
        assert_eq!(payload.get_metric().len(), PAYLOAD_ERROR_KINDS.len());
    }

    #[test]
    fn log_limiter_once_per_kind_per_period() {
        let l = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.allow_at("malformed", t0));
        assert!(!l.allow_at("malformed", t0 + Duration::from_secs(59)));
        assert!(l.allow_at("oversized", t0 + Duration::from_secs(1)));
        assert!(l.allow_at("malformed", t0 + Duration::from_secs(61)));
        assert!(!l.allow_at("malformed", t0 + Duration::from_secs(62)));
    }
}
