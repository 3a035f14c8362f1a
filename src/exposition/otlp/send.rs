//! One OTLP export request on the wire: gRPC through the `opentelemetry-proto` tonic client, HTTP/protobuf
//! through reqwest (the exporter's rustls client). TLS: `https://` endpoints verify against the bundled webpki
//! roots for both protocols. Header values (auth tokens) go into the request only; no error here quotes them.

use super::OtlpOptions;
use crate::config::{OtlpCompression, OtlpProtocol};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message as _;
use std::io::Write as _;
use std::time::Duration;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::Channel;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid OTLP endpoint (check otlp.endpoint): {0}")]
    Endpoint(String),
    /// With its causes (reqwest's own text says only "error sending request").
    #[error("OTLP HTTP request failed: {0}")]
    Http(String),
    #[error("OTLP backend answered HTTP {0}")]
    Status(u16),
    #[error("OTLP gRPC call failed: {code:?}: {message}")]
    Grpc { code: tonic::Code, message: String, retryable: bool },
    #[error("could not compress the OTLP request: {0}")]
    Compress(#[source] std::io::Error),
    #[error("could not re-read the encoded OTLP request: {0}")]
    Decode(#[source] prost::DecodeError),
}

impl SendError {
    /// Worth trying again later (the backend is down, slow or overloaded), as opposed to a rejection of the data
    /// itself, which would fail the same way forever.
    pub fn retryable(&self) -> bool {
        match self {
            SendError::Http(_) => true,
            SendError::Status(s) => matches!(*s, 408 | 429) || *s >= 500,
            SendError::Grpc { retryable, .. } => *retryable,
            SendError::Endpoint(_) | SendError::Compress(_) | SendError::Decode(_) => false,
        }
    }

    /// Short cause, for rate-limited logging.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::Endpoint(_) => "endpoint",
            SendError::Http(_) => "http",
            SendError::Status(_) => "status",
            SendError::Grpc { .. } => "grpc",
            SendError::Compress(_) => "compress",
            SendError::Decode(_) => "decode",
        }
    }
}

pub enum Sender {
    Http { client: reqwest::Client, url: String, headers: reqwest::header::HeaderMap, gzip: bool },
    Grpc { client: MetricsServiceClient<Channel>, metadata: MetadataMap },
}

/// `endpoint` + `/v1/metrics`, unless it already names that path (as OTEL_EXPORTER_OTLP_METRICS_ENDPOINT would).
pub fn http_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/metrics") {
        e.to_owned()
    } else {
        format!("{e}/v1/metrics")
    }
}

impl Sender {
    pub fn new(opts: &OtlpOptions) -> Result<Sender, SendError> {
        let gzip = opts.compression == OtlpCompression::Gzip;
        match opts.protocol {
            OtlpProtocol::HttpProtobuf => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in &opts.headers {
                    // Validated with the config; a bad one here is skipped, named by its name only.
                    let (Ok(name), Ok(mut value)) = (
                        reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                        reqwest::header::HeaderValue::from_str(v),
                    ) else {
                        tracing::warn!(header = %k, "skipping an invalid OTLP header");
                        continue;
                    };
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                let client = crate::genesys::client::http_client(opts.timeout);
                Ok(Sender::Http { client, url: http_url(&opts.endpoint), headers, gzip })
            }
            OtlpProtocol::Grpc => {
                let mut endpoint = Channel::from_shared(opts.endpoint.clone())
                    .map_err(|e| SendError::Endpoint(e.to_string()))?
                    .timeout(opts.timeout)
                    .connect_timeout(opts.timeout.min(Duration::from_secs(10)));
                if opts.endpoint.starts_with("https://") {
                    let tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
                    endpoint = endpoint.tls_config(tls).map_err(|e| SendError::Endpoint(e.to_string()))?;
                }
                let mut client = MetricsServiceClient::new(endpoint.connect_lazy())
                    .max_decoding_message_size(4 << 20)
                    .max_encoding_message_size(usize::MAX);
                if gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                let mut metadata = MetadataMap::new();
                for (k, v) in &opts.headers {
                    let (Ok(key), Ok(value)) = (
                        MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                        MetadataValue::try_from(v.as_str()),
                    ) else {
                        tracing::warn!(header = %k, "skipping an invalid OTLP header");
                        continue;
                    };
                    metadata.insert(key, value);
                }
                Ok(Sender::Grpc { client, metadata })
            }
        }
    }

    /// Send one encoded `ExportMetricsServiceRequest`.
    pub async fn send(&self, body: Bytes) -> Result<(), SendError> {
        match self {
            Sender::Http { client, url, headers, gzip } => {
                let mut req = client
                    .post(url.as_str())
                    .headers(headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
                req = if *gzip {
                    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(&body).map_err(SendError::Compress)?;
                    let zipped = enc.finish().map_err(SendError::Compress)?;
                    req.header(reqwest::header::CONTENT_ENCODING, "gzip").body(zipped)
                } else {
                    req.body(body)
                };
                let resp = req.send().await.map_err(|e| SendError::Http(with_causes(&e.without_url())))?;
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(SendError::Status(status.as_u16()))
                }
            }
            Sender::Grpc { client, metadata } => {
                let msg = ExportMetricsServiceRequest::decode(body).map_err(SendError::Decode)?;
                let mut req = tonic::Request::new(msg);
                *req.metadata_mut() = metadata.clone();
                let mut client = client.clone();
                client.export(req).await.map(|_| ()).map_err(|s| {
                    use tonic::Code as C;
                    let retryable = matches!(
                        s.code(),
                        C::Unavailable
                            | C::DeadlineExceeded
                            | C::ResourceExhausted
                            | C::Aborted
                            | C::Cancelled
                            | C::OutOfRange
                            | C::DataLoss
                            | C::Unknown
                    );
                    SendError::Grpc { code: s.code(), message: s.message().to_owned(), retryable }
                })
            }
        }
    }
}

/// `e: cause: cause …`, for errors whose own text hides why (connection refused, timeout).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_path_is_appended_once() {
        assert_eq!(http_url("http://c:4318"), "http://c:4318/v1/metrics");
        assert_eq!(http_url("http://c:4318/"), "http://c:4318/v1/metrics");
        assert_eq!(http_url("https://c/otlp/v1/metrics"), "https://c/otlp/v1/metrics");
        assert_eq!(http_url("https://c/otlp"), "https://c/otlp/v1/metrics");
    }

    #[test]
    fn rejections_are_not_retried() {
        assert!(SendError::Status(503).retryable());
        assert!(SendError::Status(429).retryable());
        assert!(!SendError::Status(400).retryable());
        assert!(!SendError::Status(401).retryable());
    }
}
