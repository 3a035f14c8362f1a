//! OTLP push end to end: the exporter runs against the simulator and pushes to an in-test receiver (gRPC via tonic,
//! HTTP/protobuf via hyper). A push equals the scrape of the same moment for gauges, counters and histograms, with
//! their types, temporality, units, attributes and resource; an auth header reaches the receiver and never the
//! logs (captured at trace level); a receiver that goes away costs bounded memory and no collection, and pushes
//! resume when it is back.

mod support;

use genesys_cloud_exporter::app::ExporterOptions;
use genesys_cloud_exporter::config::{OtlpCompression, OtlpProtocol};
use genesys_cloud_exporter::exposition::otlp::{default_resource, OtlpOptions};
use genesys_cloud_exporter::model::now_ms;
use genesys_cloud_exporter::state::DEFAULT_WAIT_BUCKETS;
use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use support::otlp::{metrics_of, normalise_le, samples_of, string_attrs, Inbox, Proto, Received, Receiver};
use support::prom::{self, Sample};
use support::{fault, Env};

const SECRET: &str = "Bearer s3cr3t-otlp-token-4b1d";
const INTERVAL_MS: i64 = 30 * 60 * 1000;

/// Everything logged by this process, at trace level for every crate (HTTP/2, TLS and tonic included).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let make = move || Capture(writer.clone());
        let sub = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(make)
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(sub);
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn otlp_options(rx: &Receiver, proto: Proto, gzip: bool, interval: Duration) -> OtlpOptions {
    let mut resource = default_resource("otlp-test:9999", "sim.example");
    resource.insert("deployment.environment".to_owned(), "e2e".to_owned());
    OtlpOptions {
        endpoint: rx.url(),
        protocol: if proto == Proto::Grpc { OtlpProtocol::Grpc } else { OtlpProtocol::HttpProtobuf },
        interval,
        timeout: Duration::from_secs(2),
        compression: if gzip { OtlpCompression::Gzip } else { OtlpCompression::None },
        headers: BTreeMap::from([("authorization".to_owned(), SECRET.to_owned())]),
        resource,
        max_pending: 3,
    }
}

/// An exporter on a paused simulator whose model time starts a second into the current interval (no rollover
/// while the test runs), pushing to `rx`.
async fn exporter_on_paused_org(queues: usize, tweak: impl FnOnce(&mut ExporterOptions)) -> Env {
    let wall = now_ms();
    let mut cfg = support::org(queues, 0.0);
    cfg.start_ms = Some(wall - wall.rem_euclid(INTERVAL_MS) + 1_000);
    let sim = support::start_sim(cfg).await;
    sim.inject(fault(json!({"kind": "pause"})));
    let mut opts = support::fast_options(&sim.base_url());
    tweak(&mut opts);
    let env = Env { exporter: support::start_exporter(opts.clone()).await, sim, http: reqwest::Client::new(), opts };
    env.until(Duration::from_secs(20), "ready", |s| Env::metric(s, "genesys_up", &[]) == 1.0).await;
    env
}

/// The samples that hold still on a paused org: queue series except those computed from the clock.
/// A sample as a comparable key: name, labels, value bits.
type Key = (String, Vec<(String, String)>, u64);

fn steady(samples: &[Sample]) -> Vec<Key> {
    let mut v: Vec<_> = samples
        .iter()
        .filter(|s| {
            s.name.starts_with("genesys_queue_") && !s.name.contains("data_age") && !s.name.contains("_longest_")
        })
        .map(|s| (s.name.clone(), s.labels.clone().into_iter().collect(), s.value.to_bits()))
        .collect();
    v.sort();
    v
}

async fn wait_pushes(inbox: &Inbox, more_than: usize, within: Duration) {
    let start = Instant::now();
    while inbox.lock().unwrap().len() <= more_than {
        assert!(start.elapsed() < within, "no OTLP push within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A push received between two scrapes that agree, and equal to them on the steady samples (retried while values
/// settle).
async fn push_between_equal_scrapes(env: &Env, inbox: &Inbox) -> (Received, Vec<Sample>) {
    let start = Instant::now();
    loop {
        let before = env.samples().await;
        let n = inbox.lock().unwrap().len();
        wait_pushes(inbox, n + 1, Duration::from_secs(10)).await;
        let push = inbox.lock().unwrap().last().cloned().expect("a push");
        let after = env.samples().await;
        let (b, a) = (steady(&normalise_le(before)), steady(&normalise_le(after.clone())));
        let p = steady(&normalise_le(samples_of(&push.request)));
        if b == a && a == p {
            return (push, after);
        }
        // Generous: on a loaded 2-core machine a settle can take a while; a real mismatch never settles.
        if start.elapsed() > Duration::from_secs(45) {
            let only_scrape: Vec<_> = a.iter().filter(|x| !p.contains(x)).take(10).collect();
            let only_push: Vec<_> = p.iter().filter(|x| !a.contains(x)).take(10).collect();
            panic!(
                "push never equalled the scrape (scrapes equal: {}): only scraped {only_scrape:?}; only pushed {only_push:?}",
                a == b
            );
        }
    }
}

async fn push_equals_scrape(proto: Proto, gzip: bool) {
    let logs = logs();
    let inbox: Inbox = Arc::default();
    let rx = Receiver::start(proto, "127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let otlp = otlp_options(&rx, proto, gzip, Duration::from_millis(300));
    let env = exporter_on_paused_org(3, |o| o.otlp = Some(otlp.clone())).await;
    assert!(!format!("{:?}", env.opts).contains("s3cr3t"), "options Debug shows the header");

    // Known traffic on one queue, then 28 model minutes so it has ended: counters and histograms have values.
    let q = env.sim.truth().queues[0].id.clone();
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 12})));
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "chat", "count": 4})));
    env.sim.inject(fault(json!({"kind": "advance", "seconds": 28.0 * 60.0})));
    let voice = [("queue_id", q.as_str()), ("media_type", "voice")];
    env.until(Duration::from_secs(20), "answered voice counted", |s| {
        Env::metric(s, "genesys_queue_answered_total", &voice) > 0.0
            && Env::metric(s, "genesys_queue_answer_wait_seconds_count", &voice) > 0.0
    })
    .await;

    let (push, scrape) = push_between_equal_scrapes(&env, &inbox).await;
    assert!(steady(&scrape).len() > 50, "too few steady samples to compare: {:?}", steady(&scrape).len());

    // Every family the scrape shows is pushed (process_* and self-metrics too).
    let pushed = samples_of(&push.request);
    let scraped_names: std::collections::BTreeSet<&str> = scrape.iter().map(|s| s.name.as_str()).collect();
    let pushed_names: std::collections::BTreeSet<&str> = pushed.iter().map(|s| s.name.as_str()).collect();
    let missing: Vec<_> = scraped_names.difference(&pushed_names).collect();
    assert!(missing.is_empty(), "scraped but not pushed: {missing:?}");
    assert!(pushed_names.contains("process_resident_memory_bytes"));

    // Types, temporality, units.
    let by_name: BTreeMap<&str, _> = metrics_of(&push.request).into_iter().map(|m| (m.name.as_str(), m)).collect();
    let m = by_name["genesys_queue_waiting"];
    assert!(matches!(m.data, Some(metric::Data::Gauge(_))), "waiting is a gauge");
    assert_eq!(m.unit, "");
    assert!(!m.description.is_empty());
    let m = by_name["genesys_queue_service_level_ratio"];
    assert!(matches!(m.data, Some(metric::Data::Gauge(_))));
    assert_eq!(m.unit, "1");
    for name in ["genesys_queue_offered_total", "genesys_queue_answered_total", "genesys_otlp_exports_total"] {
        let Some(metric::Data::Sum(s)) = &by_name[name].data else { panic!("{name} is not a sum") };
        assert!(s.is_monotonic, "{name} monotonic");
        assert_eq!(s.aggregation_temporality, AggregationTemporality::Cumulative as i32, "{name} cumulative");
        let p = &s.data_points[0];
        assert!(p.start_time_unix_nano > 0 && p.start_time_unix_nano < p.time_unix_nano, "{name} start time");
    }
    for name in [
        "genesys_queue_answer_wait_seconds",
        "genesys_queue_abandon_wait_seconds",
        "genesys_queue_handle_seconds",
        "genesys_api_request_duration_seconds",
    ] {
        let m = by_name[name];
        assert_eq!(m.unit, "s", "{name} unit");
        let Some(metric::Data::Histogram(h)) = &m.data else { panic!("{name} is not a histogram") };
        assert_eq!(h.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        if name.starts_with("genesys_queue_") {
            assert!(h.data_points.iter().all(|p| p.explicit_bounds == DEFAULT_WAIT_BUCKETS), "{name} buckets");
        }
    }
    assert_eq!(by_name["genesys_queue_data_age_seconds"].unit, "s");

    // Resource and scope.
    let rm = &push.request.resource_metrics[0];
    let res = string_attrs(&rm.resource.as_ref().expect("resource").attributes);
    assert_eq!(res["service.name"], "genesys-cloud-exporter");
    assert_eq!(res["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(res["service.instance.id"], "otlp-test:9999");
    assert_eq!(res["genesys.region"], "sim.example");
    assert_eq!(res["deployment.environment"], "e2e");
    assert_eq!(rm.scope_metrics[0].scope.as_ref().map(|s| s.name.as_str()), Some("genesys-cloud-exporter"));

    // Transport: the header arrived, compression as configured; and the header is nowhere in the logs.
    assert_eq!(push.headers.get("authorization").map(String::as_str), Some(SECRET));
    assert_eq!(push.gzip, gzip);
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("pushing metrics over OTLP"), "logs were not captured");
    assert!(text.lines().count() > 50, "trace logs were not captured ({} lines)", text.lines().count());
    assert!(!text.contains("s3cr3t"), "the OTLP auth header leaked into the logs");
    env.exporter.stop().await.expect("exporter stops");
    rx.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_push_equals_the_scrape() {
    push_equals_scrape(Proto::Grpc, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_push_equals_the_scrape() {
    push_equals_scrape(Proto::Http, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_outage_is_bounded_and_pushes_resume() {
    let inbox: Inbox = Arc::default();
    let rx = Receiver::start(Proto::Http, "127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let addr = rx.addr;
    let otlp = otlp_options(&rx, Proto::Http, true, Duration::from_millis(200));
    let env = exporter_on_paused_org(2, |o| {
        o.otlp = Some(otlp.clone());
    })
    .await;
    wait_pushes(&inbox, 1, Duration::from_secs(10)).await;

    let before = steady(&env.samples().await);
    // The backend goes away. Collection and scraping go on: new arrivals show on /metrics.
    rx.stop();
    let q = env.sim.truth().queues[0].id.clone();
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 5})));
    support::assert_converged(env.converge(Duration::from_secs(15), false).await, "during the OTLP outage");
    assert_ne!(steady(&env.samples().await), before, "the arrivals changed nothing on /metrics");
    // Pushes pile up to the cap and no further; failures are counted.
    let start = Instant::now();
    let mut max_seen = 0.0f64;
    loop {
        let s = env.samples().await;
        let pending = Env::metric(&s, "genesys_otlp_pending_exports", &[]);
        max_seen = max_seen.max(pending);
        assert!(pending <= 3.0, "pending exports {pending} exceed the cap of 3");
        if pending == 3.0 && Env::metric(&s, "genesys_otlp_export_failures_total", &[]) >= 3.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "the queue never filled (max {max_seen})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = env.samples().await;
    assert!(Env::metric(&s, "genesys_otlp_pending_exports", &[]) <= 3.0);

    // The backend returns on the same address: pushes resume by themselves, the queue drains, and the newest
    // push carries what collection saw meanwhile.
    let inbox2: Inbox = Arc::default();
    let rx2 = Receiver::start(Proto::Http, addr, inbox2.clone()).await;
    wait_pushes(&inbox2, 3, Duration::from_secs(20)).await;
    env.until(Duration::from_secs(10), "queue drained", |s| Env::metric(s, "genesys_otlp_pending_exports", &[]) <= 1.0)
        .await;
    let (last, _) = push_between_equal_scrapes(&env, &inbox2).await;
    assert!(last.gzip);
    env.exporter.stop().await.expect("exporter stops");
    rx2.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_can_be_turned_off_while_pushing() {
    let inbox: Inbox = Arc::default();
    let rx = Receiver::start(Proto::Http, "127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let otlp = otlp_options(&rx, Proto::Http, false, Duration::from_millis(200));
    let sim = support::start_sim(support::org(1, 0.0)).await;
    let mut opts = support::fast_options(&sim.base_url());
    opts.otlp = Some(otlp);
    opts.metrics_enabled = false;
    let exporter = support::start_exporter(opts).await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/metrics", exporter.url())).send().await.expect("request");
    assert_eq!(r.status(), 404);
    let start = Instant::now();
    loop {
        let up = rx.last().map(|p| prom::value(&samples_of(&p.request), "genesys_up", &[]));
        if up == Some(Some(1.0)) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no push with genesys_up 1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    exporter.stop().await.expect("exporter stops");
    rx.stop();
}

/// Shutdown pushes the state of that moment, even between intervals, and still exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_pushes_the_final_state() {
    let inbox: Inbox = Arc::default();
    let rx = Receiver::start(Proto::Http, "127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    // One push at start (the first tick), then none for an hour: only the final push can carry what follows.
    let otlp = otlp_options(&rx, Proto::Http, false, Duration::from_secs(3600));
    let env = exporter_on_paused_org(2, |o| o.otlp = Some(otlp.clone())).await;
    wait_pushes(&inbox, 0, Duration::from_secs(10)).await;
    let q = env.sim.truth().queues[0].id.clone();
    env.sim.inject(fault(json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 5})));
    support::assert_converged(env.converge(Duration::from_secs(15), false).await, "after the arrivals");
    let scraped = steady(&normalise_le(env.samples().await));
    let at_start = inbox.lock().unwrap().len();
    assert!(
        steady(&normalise_le(samples_of(&inbox.lock().unwrap()[at_start - 1].request))) != scraped,
        "the arrivals were pushed before shutdown; the test proves nothing"
    );

    let Env { exporter, sim: _sim, .. } = env;
    let t = Instant::now();
    exporter.stop().await.expect("exporter stops");
    assert!(t.elapsed() < Duration::from_secs(5), "shutdown took {:?}", t.elapsed());
    let pushes = inbox.lock().unwrap().clone();
    assert_eq!(pushes.len(), at_start + 1, "one final push at shutdown");
    let last = pushes.last().expect("a push");
    assert_eq!(steady(&normalise_le(samples_of(&last.request))), scraped, "the final push is the state at shutdown");
    rx.stop();
}

/// A backend that accepts connections and never answers costs at most the final push's timeout at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_hung_backend_is_prompt() {
    // Bound and never accepted: the kernel completes the handshake, the request waits for an answer forever.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let inbox: Inbox = Arc::default();
    let rx = Receiver::start(Proto::Http, "127.0.0.1:0".parse().unwrap(), inbox).await;
    let mut otlp = otlp_options(&rx, Proto::Http, false, Duration::from_millis(200));
    rx.stop();
    otlp.endpoint = format!("http://{}", black_hole.local_addr().unwrap());
    otlp.timeout = Duration::from_secs(30);
    let env = exporter_on_paused_org(1, |o| o.otlp = Some(otlp.clone())).await;
    env.until(Duration::from_secs(10), "pushes pending", |s| {
        Env::metric(s, "genesys_otlp_pending_exports", &[]) >= 2.0
    })
    .await;
    let t = Instant::now();
    env.exporter.stop().await.expect("exporter stops");
    let took = t.elapsed();
    let bound = genesys_cloud_exporter::exposition::otlp::FINAL_PUSH_TIMEOUT + Duration::from_secs(2);
    assert!(took < bound, "shutdown took {took:?} with a hung backend (bound {bound:?})");
    drop(black_hole);
}
