//! Logging setup and the exporter's own metrics. (SelfMetrics written by the lead so the client compiles; the
//! owner of this file may restructure it but must keep these field names.)

use prometheus::{Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::sync::Arc;

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
}

impl SelfMetrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definitions are static and valid");
                registry.register(Box::new(m.clone())).expect("metric names are unique");
                m
            }};
        }
        let s = SelfMetrics {
            up: reg!(IntGauge::new("genesys_up", "1 when authenticated and serving fresh data.")),
            build_info: reg!(IntGaugeVec::new(Opts::new("genesys_exporter_build_info", "Build information, value 1."), &["version", "revision"])),
            notification_channels: reg!(IntGauge::new("genesys_notification_channels", "Notification channels in use.")),
            notification_topics: reg!(IntGauge::new("genesys_notification_topics", "Topics subscribed across all channels.")),
            notification_messages_total: reg!(IntCounterVec::new(Opts::new("genesys_notification_messages_total", "WebSocket frames received, by kind."), &["kind"])),
            notification_reconnects_total: reg!(IntCounterVec::new(Opts::new("genesys_notification_reconnects_total", "WebSocket reconnects, by reason."), &["reason"])),
            notification_heartbeat_age_seconds: reg!(Gauge::new("genesys_notification_heartbeat_age_seconds", "Seconds since the last frame on the least recently heard channel.")),
            notification_delivery_latency_seconds: reg!(Histogram::with_opts(HistogramOpts::new("genesys_notification_delivery_latency_seconds", "Seconds from a notification's event time to its application in the store.").buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]))),
            api_requests_total: reg!(IntCounterVec::new(Opts::new("genesys_api_requests_total", "REST requests to Genesys, by endpoint and HTTP status."), &["endpoint", "code"])),
            api_request_duration_seconds: reg!(HistogramVec::new(HistogramOpts::new("genesys_api_request_duration_seconds", "REST request duration in seconds."), &["endpoint"])),
            api_rate_limit_remaining: reg!(Gauge::new("genesys_api_rate_limit_remaining", "Requests left in the current rate-limit window, from inin-ratelimit headers.")),
            api_throttled_total: reg!(IntCounter::new("genesys_api_throttled_total", "REST requests answered 429.")),
            payload_errors_total: reg!(IntCounterVec::new(Opts::new("genesys_payload_errors_total", "Payloads or parts of payloads that could not be used, by kind."), &["kind"])),
            token_expiry_timestamp_seconds: reg!(Gauge::new("genesys_token_expiry_timestamp_seconds", "Unix time at which the current OAuth token expires.")),
            stream_drift_total: reg!(IntCounter::new("genesys_stream_drift_total", "Values corrected by reconciliation because the stream disagreed with REST.")),
            poll_cycle_seconds: reg!(Gauge::new("genesys_poll_cycle_seconds", "Achieved period of polling stale queues, in seconds.")),
            otlp_export_failures_total: reg!(IntCounter::new("genesys_otlp_export_failures_total", "OTLP pushes that failed or were dropped.")),
            registry,
        };
        for kind in ["malformed", "unknown_topic", "unknown_metric", "wrong_type", "oversized", "unknown_queue"] {
            s.payload_errors_total.with_label_values(&[kind]);
        }
        s.build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), option_env!("GIT_REVISION").unwrap_or("unknown")]).set(1);
        Arc::new(s)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// "Log once per kind per period": repeated problems (a stream of malformed frames) give one log line a minute per
/// kind, while the counter still counts every one.
pub struct LogLimiter {
    period: std::time::Duration,
    last: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl LogLimiter {
    pub fn new(period: std::time::Duration) -> Self {
        LogLimiter { period, last: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    /// True when `kind` was not logged within the period (and records that it is now).
    pub fn allow(&self, kind: &str) -> bool {
        let now = std::time::Instant::now();
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
