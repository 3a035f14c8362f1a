//! Exposition: reads the store and serves it; never writes it.
//!
//! [`encode`] builds a `/metrics` body: the queue families straight from [`crate::state::Store`] (pre-rendered
//! bytes, never through the `prometheus` crate's encoder, which takes ~1.5 s for 300k series), then the exporter's
//! own registry (self-metrics and `process_*`). [`http::serve`] is the HTTP server around it.

pub mod api;
pub mod conn;
pub mod http;
pub mod lifecycle;
pub mod limits;
pub mod negotiate;
pub mod openmetrics;
pub mod otlp;
pub mod status;
pub mod stream;
pub mod webconfig;

pub use crate::state::Format;
pub use http::{serve, AppState, SummaryFn};
pub use lifecycle::ReloadFn;
pub use limits::Limits;
pub use webconfig::{LiveWebConfig, WebConfig};

use prometheus::{Encoder, Registry, TextEncoder};

/// Why a response could not be produced or the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExpositionError {
    #[error("could not encode the exporter's own metrics: {0}")]
    Encode(#[source] prometheus::Error),
    #[error("could not compress the response: {0}")]
    Compress(#[source] std::io::Error),
    #[error("rendering task failed: {0}")]
    Render(#[source] tokio::task::JoinError),
    #[error("listener error: {0}")]
    Listener(#[source] std::io::Error),
}

impl ExpositionError {
    /// Short cause, for logs and labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ExpositionError::Encode(_) => "encode",
            ExpositionError::Compress(_) => "compress",
            ExpositionError::Render(_) => "render",
            ExpositionError::Listener(_) => "listener",
        }
    }
}

/// Register the `process_*` collector (CPU, memory, file descriptors, start time) in `registry`; registering it
/// twice is not an error.
pub fn register_process_metrics(registry: &Registry) -> Result<(), prometheus::Error> {
    #[cfg(target_os = "linux")]
    {
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        match registry.register(Box::new(pc)) {
            Ok(()) | Err(prometheus::Error::AlreadyReg) => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = registry;
        Ok(())
    }
}

/// The complete `/metrics` body in `format` as of `now_ms`: queue families, then the registry, then (OpenMetrics)
/// `# EOF`.
pub fn encode(
    store: &crate::state::Store,
    registry: &Registry,
    format: Format,
    now_ms: i64,
) -> Result<Vec<u8>, ExpositionError> {
    let mut out = Vec::new();
    encode_into(store, registry, format, now_ms, &mut out)?;
    Ok(out)
}

/// [`encode`] appending to `out`, so a warm buffer can be reused between scrapes.
pub fn encode_into(
    store: &crate::state::Store,
    registry: &Registry,
    format: Format,
    now_ms: i64,
    out: &mut Vec<u8>,
) -> Result<(), ExpositionError> {
    store.write_text(format, now_ms, out);
    encode_tail(registry, format, out)
}

/// What follows the queue families: the registry's metrics, then (OpenMetrics) `# EOF`.
pub fn encode_tail(registry: &Registry, format: Format, out: &mut Vec<u8>) -> Result<(), ExpositionError> {
    let families = registry.gather();
    match format {
        Format::Prometheus => TextEncoder::new().encode(&families, out).map_err(ExpositionError::Encode)?,
        Format::OpenMetrics => {
            openmetrics::encode(&families, out);
            out.extend_from_slice(b"# EOF\n");
        }
    }
    Ok(())
}
