//! Scrape cost: render the queue store as Prometheus text for 100 … 20,000 queues, against two baselines:
//! copying the same bytes (the floor) and the `prometheus` crate's standard encoder on the same series.
//!
//! A second table prices an OTLP push of the same store: converting the text to OTLP metrics and encoding the
//! request (what the pusher does every `otlp.interval`), and the request's size, which bounds the pusher's queue.
//!
//! `cargo bench --bench scrape` prints the tables; `cargo bench --bench scrape -- --quick` runs one tiny size (the
//! test command does this so the bench keeps compiling and working). `-- --sizes 10000 --runs 50` takes the best of 50
//! runs instead of 5; `--render-only` leaves out the `prometheus` crate column and the OTLP table (quick iterations).

mod common;
use common::cpu_ns;

use genesys_cloud_exporter::model::{GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Source};
use genesys_cloud_exporter::state::{Format, PresenceDef, Store, StoreConfig};
use std::time::{Duration, Instant};

const MEDIA: [&str; 5] = ["voice", "chat", "email", "callback", "message"];
const STATUSES: [&str; 5] = ["IDLE", "INTERACTING", "COMMUNICATING", "NOT_RESPONDING", "OFF_QUEUE"];

fn populate(n: usize) -> Store {
    let store =
        Store::new(StoreConfig { media_types: vec![], max_age: Duration::from_secs(3600), ..StoreConfig::default() });
    let presences: Vec<PresenceDef> = ["Available", "On Queue", "Break", "Meal", "Offline"]
        .iter()
        .enumerate()
        .map(|(i, n)| PresenceDef { id: format!("p{i}"), name: (*n).to_owned(), system_presence: (*n).to_owned() })
        .collect();
    store.set_presence_definitions(presences);
    store.set_queues(
        (0..n)
            .map(|i| QueueMeta {
                id: format!("{i:08x}-0000-4000-8000-{i:012x}"),
                name: format!("Queue {i:05}"),
                division_id: format!("d{}", i % 7),
                division: format!("Division {}", i % 7),
            })
            .collect(),
    );
    let now = genesys_cloud_exporter::model::now_ms();
    for i in 0..n {
        let mut groups = vec![GroupUpdate {
            media_type: None,
            observations: STATUSES
                .iter()
                .flat_map(|s| {
                    [ObsMetric::UserRoutingStatuses, ObsMetric::OnQueueUsers].map(|m| Observation {
                        metric: m,
                        qualifier: Some((*s).to_owned()),
                        value: Some((i % 5) as f64),
                    })
                })
                .chain((0..5).flat_map(|p| {
                    [ObsMetric::UserPresences, ObsMetric::OffQueueUsers].map(|m| Observation {
                        metric: m,
                        qualifier: Some(format!("p{p}")),
                        value: Some(1.0),
                    })
                }))
                .chain([ObsMetric::MemberUsers, ObsMetric::ActiveUsers].map(|m| Observation {
                    metric: m,
                    qualifier: None,
                    value: Some(8.0),
                }))
                .collect(),
            interval: None,
            aggregates: vec![],
        }];
        for m in MEDIA {
            groups.push(GroupUpdate {
                media_type: Some(m.to_owned()),
                observations: [ObsMetric::Waiting, ObsMetric::Alerting, ObsMetric::Interacting]
                    .map(|o| Observation { metric: o, qualifier: None, value: Some((i % 3) as f64) })
                    .into_iter()
                    .chain([Observation {
                        metric: ObsMetric::LongestWaiting,
                        qualifier: None,
                        value: Some((now - 5000) as f64),
                    }])
                    .collect(),
                interval: None,
                aggregates: vec![],
            });
        }
        store.apply(QueueUpdate {
            queue_id: format!("{i:08x}-0000-4000-8000-{i:012x}"),
            source: Source::Poll,
            event_ms: Some(now),
            complete: true,
            groups,
        });
    }
    store
}

/// The same samples through the `prometheus` crate: one GaugeVec per family, then `TextEncoder`.
fn prometheus_crate_encode(text: &str) -> Duration {
    use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};
    use std::collections::BTreeMap;
    let registry = Registry::new();
    /// Label names, then (label values, value) per sample.
    type Family = (Vec<String>, Vec<(Vec<String>, f64)>);
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (head, value) = line.rsplit_once(' ').unwrap_or((line, "0"));
        let (name, labels) = head.split_once('{').unwrap_or((head, "}"));
        let labels = labels.trim_end_matches('}');
        let pairs: Vec<(String, String)> = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned())))
            .collect();
        let e =
            families.entry(name.to_owned()).or_insert_with(|| (pairs.iter().map(|p| p.0.clone()).collect(), vec![]));
        e.1.push((pairs.into_iter().map(|p| p.1).collect(), value.parse().unwrap_or(0.0)));
    }
    for (name, (label_names, samples)) in &families {
        let names: Vec<&str> = label_names.iter().map(String::as_str).collect();
        let Ok(g) = GaugeVec::new(Opts::new(name.clone(), "help"), &names) else { continue };
        for (values, v) in samples {
            let vals: Vec<&str> = values.iter().map(String::as_str).collect();
            if let Ok(m) = g.get_metric_with_label_values(&vals) {
                m.set(*v);
            }
        }
        let _ = registry.register(Box::new(g));
    }
    let mut out = Vec::with_capacity(text.len());
    let t = Instant::now();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    t.elapsed()
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`), so a figure on this shared machine
/// can be given per CPU second as well as per wall second; `None` where the file does not exist.
fn best_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or_default()
}

/// `--runs N`: how many runs the best-of figures take (5 without it; more steadies them on a busy machine and
/// gives a profiler attached to the bench mostly renders to see).
fn runs() -> usize {
    std::env::args().skip_while(|a| a != "--runs").nth(1).and_then(|n| n.parse().ok()).unwrap_or(5)
}

fn main() {
    let (quick, sizes) = common::sizes();
    let runs = runs();
    let render_only = std::env::args().any(|a| a == "--render-only");
    println!("| queues | series | bytes | render (best of {runs}) | render CPU time | memcpy same bytes | ratio | prometheus crate encoder | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let store = populate(n);
        let mut buf = Vec::new();
        let now = genesys_cloud_exporter::model::now_ms();
        store.write_text(Format::Prometheus, now, &mut buf);
        let series = buf.split(|b| *b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#').count();
        let mut render_cpu = u64::MAX;
        let render = best_of(runs, || {
            buf.clear();
            let t = Instant::now();
            let cpu0 = cpu_ns();
            store.write_text(Format::Prometheus, now, &mut buf);
            if let (Some(a), Some(b)) = (cpu0, cpu_ns()) {
                render_cpu = render_cpu.min(b.saturating_sub(a));
            }
            t.elapsed()
        });
        let mut copy = Vec::with_capacity(buf.len());
        let memcpy = best_of(runs, || {
            copy.clear();
            let t = Instant::now();
            copy.extend_from_slice(std::hint::black_box(&buf));
            t.elapsed()
        });
        let crate_time = if (quick || n <= 10_000) && !render_only {
            Some(prometheus_crate_encode(&String::from_utf8_lossy(&buf)))
        } else {
            None
        };
        println!(
            "| {n} | {series} | {} | {:.2} ms | {} | {:.2} ms | {:.1}× | {} | {} |",
            buf.len(),
            render.as_secs_f64() * 1e3,
            // schedstat moves at scheduler events: a run shorter than a tick can read 0, which means "unknown".
            if render_cpu == u64::MAX || render_cpu == 0 {
                "—".to_owned()
            } else {
                format!("{:.2} ms", render_cpu as f64 / 1e6)
            },
            memcpy.as_secs_f64() * 1e3,
            render.as_secs_f64() / memcpy.as_secs_f64().max(1e-9),
            crate_time.map_or("—".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3)),
            crate_time.map_or("—".to_owned(), |d| format!(
                "{:.0}× slower",
                d.as_secs_f64() / render.as_secs_f64().max(1e-9)
            )),
        );
    }
    if !render_only {
        otlp_table(&sizes);
    }
}

fn otlp_table(sizes: &[usize]) {
    use genesys_cloud_exporter::exposition::otlp::{convert, request_of};
    use prost::Message as _;
    println!();
    println!("| queues | OTLP convert (best of 3) | protobuf encode | request bytes | gzip bytes |");
    println!("|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let store = populate(n);
        let mut buf = Vec::new();
        store.write_text(Format::Prometheus, genesys_cloud_exporter::model::now_ms(), &mut buf);
        let stamps = convert::Stamps { start_unix_nano: 1, now_unix_nano: 2 };
        let mut metrics = Vec::new();
        let conv = best_of(3, || {
            let t = Instant::now();
            metrics = convert::metrics_from_text(&buf, stamps);
            t.elapsed()
        });
        let request = request_of(Default::default(), metrics);
        let mut bytes = Vec::new();
        let enc = best_of(3, || {
            let t = Instant::now();
            bytes = request.encode_to_vec();
            t.elapsed()
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &bytes).unwrap_or_default();
        let gz_len = gz.finish().map(|v| v.len()).unwrap_or(0);
        println!(
            "| {n} | {:.1} ms | {:.1} ms | {} | {gz_len} |",
            conv.as_secs_f64() * 1e3,
            enc.as_secs_f64() * 1e3,
            bytes.len()
        );
    }
}
