//! OTLP push: every `interval`, the `/metrics` body as of that moment is converted ([`convert`]) and pushed to an
//! OpenTelemetry backend over gRPC or HTTP/protobuf ([`send`]).
//!
//! Why not the SDK's instruments: they cannot carry histograms aggregated elsewhere, and `opentelemetry_sdk` no longer
//! lets a caller build its `ResourceMetrics`, so `opentelemetry-otlp`'s exporter cannot be fed our data. We build the
//! `opentelemetry-proto` request ourselves and send it with its tonic client (gRPC) or reqwest (HTTP).
//!
//! Backpressure: building (the ticker) and sending (one request in flight) are separate tasks joined by a queue of
//! encoded requests capped at [`OtlpOptions::max_pending`] and [`MAX_PENDING_BYTES`]. A slow or absent backend fills the queue; then the oldest
//! push is dropped (counted in `genesys_otlp_export_failures_total`), so memory stays bounded and the newest state
//! wins. Failed sends retry with jittered backoff, oldest first, so a recovered backend sees points in order. The
//! collector and scrapes never wait on any of it.
//!
//! Shutdown pushes the state of that moment once more (bounded by [`FINAL_PUSH_TIMEOUT`]), so a backend sees the
//! counters up to the end rather than up to the last tick; older pending pushes are not retried then.

pub mod convert;
mod send;

use crate::collector::backoff::Backoff;
use crate::config::{OtlpCompression, OtlpProtocol};
use crate::state::{Format, Store};
use crate::telemetry::{LogLimiter, SelfMetrics};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::Registry;
use prost::Message as _;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Everything the pusher needs, resolved from `otlp.*` and the exporter's identity.
#[derive(Clone)]
pub struct OtlpOptions {
    /// Base URL (HTTP: `/v1/metrics` is appended unless the path already ends with it; gRPC: scheme, host, port).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub interval: Duration,
    pub timeout: Duration,
    pub compression: OtlpCompression,
    /// Often carry an API key: redacted in `Debug`, never logged.
    pub headers: BTreeMap<String, String>,
    /// The final resource attributes (defaults overlaid by `otlp.resource_attributes`).
    pub resource: BTreeMap<String, String>,
    /// Encoded pushes kept while the backend does not accept them; older ones are dropped.
    pub max_pending: usize,
}

/// Pushes kept by default: a minute of history at the default 15 s interval.
pub const DEFAULT_MAX_PENDING: usize = 4;

/// The final push on shutdown waits at most this long (or `otlp.timeout`, if shorter): SIGTERM must still end the
/// process within seconds when the backend is down.
pub const FINAL_PUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Whatever the count, pending pushes beyond this many bytes are dropped (the newest is always kept). A push is
/// about as large as the `/metrics` body: ~6 KB per queue, so 10,000 queues make ~60 MB pushes and keep one.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

impl fmt::Debug for OtlpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self.headers.keys().map(|k| (k.as_str(), "***")).collect();
        f.debug_struct("OtlpOptions")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("headers", &headers)
            .field("resource", &self.resource)
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl OtlpOptions {
    /// From `otlp.*`; `None` when push is off. `identity` are the default resource attributes (service.*,
    /// genesys.*), which `otlp.resource_attributes` may override.
    pub fn from_config(cfg: &crate::config::Config, identity: BTreeMap<String, String>) -> Option<Self> {
        if !cfg.otlp_enabled() {
            return None;
        }
        let o = &cfg.otlp;
        let mut resource = identity;
        resource.extend(o.resource_attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        Some(OtlpOptions {
            endpoint: o.endpoint.clone()?.trim().to_owned(),
            protocol: o.protocol,
            interval: o.interval.max(Duration::from_millis(100)),
            timeout: if o.timeout.is_zero() { o.interval } else { o.timeout },
            compression: o.compression,
            headers: o.headers.clone(),
            resource,
            max_pending: DEFAULT_MAX_PENDING,
        })
    }
}

/// Default resource attributes: `service.name`, `service.version`, `service.instance.id` (host and listen port,
/// stable across restarts like Prometheus' `instance`), and `genesys.region` (the org's domain or API host).
pub fn default_resource(instance: &str, region: &str) -> BTreeMap<String, String> {
    let mut r = BTreeMap::new();
    r.insert("service.name".to_owned(), env!("CARGO_PKG_NAME").to_owned());
    r.insert("service.version".to_owned(), env!("CARGO_PKG_VERSION").to_owned());
    r.insert("service.instance.id".to_owned(), instance.to_owned());
    r.insert("genesys.region".to_owned(), region.to_owned());
    r
}

/// This host's name: `HOSTNAME` (set in containers and most shells), else the kernel's, else `localhost`.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The queue between the ticker and the sender.
struct Pending {
    queue: Mutex<VecDeque<(u64, Bytes)>>,
    ready: Notify,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Bytes)>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Run the pusher until `shutdown`.
pub async fn run(
    opts: OtlpOptions,
    store: Store,
    registry: Registry,
    metrics: Arc<SelfMetrics>,
    shutdown: CancellationToken,
) {
    let sender = match send::Sender::new(&opts) {
        Ok(s) => s,
        Err(e) => {
            // Config validation checks the endpoint; this is the rest (TLS setup). Scraping goes on regardless.
            tracing::error!(err = %e, endpoint = %opts.endpoint, "OTLP push disabled");
            return;
        }
    };
    tracing::info!(endpoint = %opts.endpoint, protocol = opts.protocol.as_str(), interval = ?opts.interval, "pushing metrics over OTLP");
    let pending = Arc::new(Pending { queue: Mutex::new(VecDeque::new()), ready: Notify::new() });
    // The sender stops when the ticker has queued the final push, not at the shutdown signal itself.
    let closing = CancellationToken::new();
    let final_timeout = FINAL_PUSH_TIMEOUT.min(opts.timeout);
    let send_task = tokio::spawn(send_loop(
        sender,
        pending.clone(),
        metrics.clone(),
        opts.interval,
        closing.clone(),
        final_timeout,
    ));
    let started = unix_nanos(SystemTime::now());
    let resource = Arc::new(resource_of(&opts.resource));
    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drops = LogLimiter::new(Duration::from_secs(300));
    let mut seq = 0u64;
    loop {
        let last = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let (store, registry, resource) = (store.clone(), registry.clone(), resource.clone());
        // Rendering and converting a large org takes milliseconds to a few hundred: off the async workers.
        let built = tokio::task::spawn_blocking(move || build(&store, &registry, &resource, started)).await;
        match built {
            Ok(Some(body)) => {
                seq += 1;
                let len = enqueue(&pending, (seq, body), opts.max_pending, &metrics, &drops);
                metrics.otlp_pending_exports.set(len as i64);
                pending.ready.notify_one();
            }
            _ => metrics.otlp_export_failures_total.inc(),
        }
        if last {
            break;
        }
    }
    closing.cancel();
    let _ = send_task.await;
}

/// Queue a built push, dropping the oldest beyond `max_pending` pushes or [`MAX_PENDING_BYTES`] (the newest is
/// always kept). Returns the queue's length.
fn enqueue(
    pending: &Pending,
    item: (u64, Bytes),
    max_pending: usize,
    metrics: &SelfMetrics,
    drops: &LogLimiter,
) -> usize {
    let mut q = pending.lock();
    q.push_back(item);
    let bytes = |q: &VecDeque<(u64, Bytes)>| q.iter().map(|(_, b)| b.len()).sum::<usize>();
    while q.len() > max_pending.max(1) || (q.len() > 1 && bytes(&q) > MAX_PENDING_BYTES) {
        q.pop_front();
        metrics.otlp_export_failures_total.inc();
        if drops.allow("dropped") {
            tracing::warn!(max_pending, "OTLP backend is not keeping up: dropped the oldest pending push");
        }
    }
    q.len()
}

/// The `/metrics` body as of now, as an encoded `ExportMetricsServiceRequest`.
fn build(store: &Store, registry: &Registry, resource: &Resource, started: u64) -> Option<Bytes> {
    let now = SystemTime::now();
    let now_ms = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let body = match super::encode(store, registry, Format::Prometheus, now_ms) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(err = %e, "could not render metrics for OTLP");
            return None;
        }
    };
    let stamps = convert::Stamps { start_unix_nano: started, now_unix_nano: unix_nanos(now) };
    let request = request_of(resource.clone(), convert::metrics_from_text(&body, stamps));
    Some(Bytes::from(request.encode_to_vec()))
}

/// One resource, one scope (this exporter), all metrics.
pub fn request_of(
    resource: Resource,
    metrics: Vec<opentelemetry_proto::tonic::metrics::v1::Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: env!("CARGO_PKG_NAME").to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn resource_of(attrs: &BTreeMap<String, String>) -> Resource {
    Resource { attributes: attrs.iter().map(|(k, v)| convert::string_kv(k, v)).collect(), ..Default::default() }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Send the oldest pending push; on success drop it, on a retryable failure back off and try again, on a
/// permanent one (the backend rejected the data itself) drop it.
async fn send_loop(
    sender: send::Sender,
    pending: Arc<Pending>,
    metrics: Arc<SelfMetrics>,
    interval: Duration,
    closing: CancellationToken,
    final_timeout: Duration,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), interval.max(Duration::from_secs(1)) * 4);
    let failures = LogLimiter::new(Duration::from_secs(60));
    loop {
        let front = pending.lock().front().cloned();
        let Some((seq, body)) = front else {
            tokio::select! {
                _ = closing.cancelled() => break,
                _ = pending.ready.notified() => continue,
            }
        };
        let outcome = tokio::select! {
            _ = closing.cancelled() => break,
            r = sender.send(body) => r,
        };
        let done = match &outcome {
            Ok(()) => {
                metrics.otlp_exports_total.inc();
                if backoff.attempts() > 0 {
                    tracing::info!("OTLP backend accepts pushes again");
                }
                backoff.reset();
                tracing::debug!(seq, "OTLP push accepted");
                true
            }
            Err(e) => {
                metrics.otlp_export_failures_total.inc();
                if failures.allow(e.kind()) {
                    tracing::warn!(err = %e, retry = e.retryable(), "OTLP push failed");
                }
                !e.retryable()
            }
        };
        if done {
            let mut q = pending.lock();
            if q.front().is_some_and(|(s, _)| *s == seq) {
                q.pop_front();
            }
            metrics.otlp_pending_exports.set(q.len() as i64);
        } else if !backoff.sleep(&closing).await {
            break;
        }
    }
    // Closing: only the newest push (the state at shutdown) is worth the wait.
    let newest = pending.lock().back().cloned();
    if let Some((seq, body)) = newest {
        match tokio::time::timeout(final_timeout, sender.send(body)).await {
            Ok(Ok(())) => {
                metrics.otlp_exports_total.inc();
                tracing::debug!(seq, "final OTLP push accepted");
            }
            Ok(Err(e)) => {
                metrics.otlp_export_failures_total.inc();
                tracing::warn!(err = %e, "final OTLP push at shutdown failed");
            }
            Err(_) => {
                metrics.otlp_export_failures_total.inc();
                tracing::warn!(timeout = ?final_timeout, "final OTLP push at shutdown timed out");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_header_values_and_config_overrides_the_resource() {
        let mut cfg = crate::config::Config::default();
        cfg.otlp.endpoint = Some("http://c:4318".to_owned());
        cfg.otlp.headers.insert("authorization".to_owned(), "Bearer hunter2".to_owned());
        cfg.otlp.resource_attributes.insert("service.name".to_owned(), "cc-metrics".to_owned());
        let o = OtlpOptions::from_config(&cfg, default_resource("h:9400", "mypurecloud.ie")).unwrap();
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("hunter2") && dbg.contains("authorization"), "{dbg}");
        assert_eq!(o.resource["service.name"], "cc-metrics");
        assert_eq!(o.resource["service.instance.id"], "h:9400");
        assert_eq!(o.resource["genesys.region"], "mypurecloud.ie");
        cfg.otlp.enabled = Some(false);
        assert!(OtlpOptions::from_config(&cfg, BTreeMap::new()).is_none());
    }
}
