//! An in-test OTLP metrics receiver: gRPC (the `opentelemetry-proto` tonic server on hyper HTTP/2) or HTTP/protobuf
//! (hyper HTTP/1), decoding every push with the OpenTelemetry proto types; and a flattening of a push into
//! Prometheus-style samples, to compare with a scrape.

use super::prom::Sample;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};
use prost::Message as _;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Grpc,
    Http,
}

/// One push as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub request: ExportMetricsServiceRequest,
    /// Request headers (gRPC: metadata), lower-case names.
    pub headers: BTreeMap<String, String>,
    pub gzip: bool,
}

pub type Inbox = Arc<Mutex<Vec<Received>>>;

pub struct Receiver {
    pub addr: SocketAddr,
    pub inbox: Inbox,
    stop: CancellationToken,
}

impl Receiver {
    /// Listen on `addr` (`127.0.0.1:0` for any port) and record every push into `inbox`.
    pub async fn start(proto: Proto, addr: SocketAddr, inbox: Inbox) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let inbox2 = inbox.clone();
        tokio::spawn(async move {
            loop {
                let (sock, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let io = hyper_util::rt::TokioIo::new(sock);
                let (inbox, token) = (inbox2.clone(), token.clone());
                tokio::spawn(async move {
                    let exec = hyper_util::rt::TokioExecutor::new();
                    match proto {
                        Proto::Grpc => {
                            let svc = MetricsServiceServer::new(Grpc { inbox })
                                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
                            let svc = hyper_util::service::TowerToHyperService::new(svc);
                            let conn = hyper::server::conn::http2::Builder::new(exec).serve_connection(io, svc);
                            tokio::select! { _ = token.cancelled() => {}, _ = conn => {} }
                        }
                        Proto::Http => {
                            let svc = hyper::service::service_fn(move |req| http_export(req, inbox.clone()));
                            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
                            tokio::select! { _ = token.cancelled() => {}, _ = conn => {} }
                        }
                    }
                });
            }
        });
        Receiver { addr, inbox, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Close the listener and every connection: the backend is down.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn count(&self) -> usize {
        self.inbox.lock().unwrap().len()
    }

    pub fn last(&self) -> Option<Received> {
        self.inbox.lock().unwrap().last().cloned()
    }
}

struct Grpc {
    inbox: Inbox,
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let meta = request.metadata().clone().into_headers();
        let headers = meta.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
        let gzip = meta.get("grpc-encoding").is_some_and(|v| v == "gzip");
        self.inbox.lock().unwrap().push(Received { request: request.into_inner(), headers, gzip });
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn http_export(
    req: hyper::Request<hyper::body::Incoming>,
    inbox: Inbox,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let headers: BTreeMap<String, String> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let path_ok = req.uri().path() == "/v1/metrics" && req.method() == hyper::Method::POST;
    let body = req.into_body().collect().await?.to_bytes();
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let raw = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).expect("gzip body");
        out
    } else {
        body.to_vec()
    };
    let ok = path_ok && headers.get("content-type").is_some_and(|v| v == "application/x-protobuf");
    let status = if ok { 200 } else { 400 };
    if ok {
        let request = ExportMetricsServiceRequest::decode(&raw[..]).expect("protobuf body");
        inbox.lock().unwrap().push(Received { request, headers, gzip });
    }
    let resp = ExportMetricsServiceResponse::default().encode_to_vec();
    Ok(hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(resp)))
        .unwrap())
}

pub fn string_attrs(kv: &[KeyValue]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|k| {
            let v = match k.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("attribute {} is not a string: {other:?}", k.key),
            };
            (k.key.clone(), v)
        })
        .collect()
}

pub fn metrics_of(r: &ExportMetricsServiceRequest) -> Vec<&Metric> {
    r.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|sm| &sm.metrics).collect()
}

fn number(v: &Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => panic!("a data point without a value"),
    }
}

/// A push as the samples a scrape would show: gauges and sums as one sample each, histograms as cumulative
/// `_bucket{le}` (the `le` spelled like the text format), `_sum` and `_count`.
pub fn samples_of(r: &ExportMetricsServiceRequest) -> Vec<Sample> {
    let mut out = Vec::new();
    for m in metrics_of(r) {
        match &m.data {
            Some(metric::Data::Gauge(g)) => {
                for p in &g.data_points {
                    out.push(Sample {
                        name: m.name.clone(),
                        labels: string_attrs(&p.attributes),
                        value: number(&p.value),
                    });
                }
            }
            Some(metric::Data::Sum(s)) => {
                for p in &s.data_points {
                    out.push(Sample {
                        name: m.name.clone(),
                        labels: string_attrs(&p.attributes),
                        value: number(&p.value),
                    });
                }
            }
            Some(metric::Data::Histogram(h)) => {
                for p in &h.data_points {
                    let labels = string_attrs(&p.attributes);
                    assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1, "{}: bucket count", m.name);
                    let mut cum = 0u64;
                    for (i, c) in p.bucket_counts.iter().enumerate() {
                        cum += c;
                        let le = p.explicit_bounds.get(i).map_or("+Inf".to_owned(), |b| le_label(*b));
                        let mut l = labels.clone();
                        l.insert("le".to_owned(), le);
                        out.push(Sample { name: format!("{}_bucket", m.name), labels: l, value: cum as f64 });
                    }
                    out.push(Sample {
                        name: format!("{}_sum", m.name),
                        labels: labels.clone(),
                        value: p.sum.unwrap_or(0.0),
                    });
                    out.push(Sample { name: format!("{}_count", m.name), labels, value: p.count as f64 });
                }
            }
            other => panic!("{}: unexpected data {other:?}", m.name),
        }
    }
    out
}

/// A bound as the text format spells `le`, normalised: `5`, `0.25`.
pub fn le_label(b: f64) -> String {
    format!("{b}")
}

/// Normalise a scrape's `le` labels (`5`, `5.0`) to [`le_label`]'s spelling.
pub fn normalise_le(mut s: Vec<Sample>) -> Vec<Sample> {
    for x in &mut s {
        if let Some(le) = x.labels.get_mut("le") {
            if le != "+Inf" {
                *le = le_label(le.parse().expect("numeric le"));
            }
        }
    }
    s
}
