//! Ingest cost: WebSocket text frames of the observations topic decoded (`genesys::decode::decode_frame`) and
//! applied to the store (upsert + re-render of the queue's block, i.e. visible to the next scrape), on one thread.
//!
//! Prints notifications per second and the per-notification latency (frame in → block published) as p50/p99, for
//! stores of 100 … 20,000 queues. `cargo bench --bench ingest`; `-- --quick` runs one tiny size (the test command).

mod common;
use common::cpu_ns;

use genesys_cloud_exporter::genesys::decode::{decode_frame, Frame};
use genesys_cloud_exporter::model::QueueMeta;
use genesys_cloud_exporter::state::{Store, StoreConfig};
use std::time::{Duration, Instant};

const MEDIA: [&str; 5] = ["voice", "chat", "email", "callback", "message"];
const STATUSES: [&str; 4] = ["IDLE", "INTERACTING", "COMMUNICATING", "NOT_RESPONDING"];

fn queue_id(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-{i:012x}")
}

/// A realistic mix, as the simulator and Genesys send them: conversation observations per media type (the
/// common case), queue-level user metrics, and current-interval aggregates.
fn frame(i: usize, k: usize, now_ms: i64) -> String {
    let q = queue_id(i);
    let at = genesys_cloud_exporter::genesys::models::format_time_ms(now_ms);
    let media = MEDIA[k % MEDIA.len()];
    let body = match k % 4 {
        0 | 1 => format!(
            r#"{{"group":{{"queueId":"{q}","mediaType":"{media}"}},"data":[{{"interval":"{at}/{at}","metrics":[{{"metric":"oWaiting","stats":{{"count":{}}}}},{{"metric":"oAlerting","stats":{{"count":{}}}}},{{"metric":"oLongestWaiting","stats":{{"count":1,"calculatedMetricValue":{}}}}}]}}]}}"#,
            k % 7,
            k % 3,
            1000 + k % 50_000
        ),
        2 => {
            let st = STATUSES[k % STATUSES.len()];
            format!(
                r#"{{"group":{{"queueId":"{q}"}},"data":[{{"interval":"{at}/{at}","metrics":[{{"metric":"oUserRoutingStatuses","qualifier":"{st}","stats":{{"count":{}}}}},{{"metric":"oOnQueueUsers","qualifier":"{st}","stats":{{"count":{}}}}},{{"metric":"oActiveUsers","stats":{{"count":8}}}}]}}]}}"#,
                k % 5,
                k % 4
            )
        }
        _ => {
            let n = 10 + k / 4;
            format!(
                r#"{{"group":{{"queueId":"{q}","mediaType":"{media}"}},"data":[{{"interval":"2026-12-01T21:30:00.000Z/2026-12-01T22:00:00.000Z","metrics":[{{"metric":"nOffered","stats":{{"count":{n}}}}},{{"metric":"tAnswered","stats":{{"count":{n},"sum":{},"min":1200,"max":90000}}}},{{"metric":"tAbandon","stats":{{"count":1,"sum":4000,"min":4000,"max":4000}}}},{{"metric":"oServiceLevel","stats":{{"ratio":0.8,"numerator":8,"denominator":10,"target":0.8}}}}]}}]}}"#,
                n * 15_000
            )
        }
    };
    format!(
        r#"{{"topicName":"v2.analytics.queues.{q}.observations","version":"2","eventBody":{body},"metadata":{{"CorrelationId":"c0ffee00-0000-4000-8000-{k:012}"}}}}"#
    )
}

fn store(n: usize) -> Store {
    let store = Store::new(StoreConfig { max_age: Duration::from_secs(3600), ..StoreConfig::default() });
    store.set_queues(
        (0..n)
            .map(|i| QueueMeta {
                id: queue_id(i),
                name: format!("Queue {i:05}"),
                division_id: format!("d{}", i % 7),
                division: format!("Division {}", i % 7),
            })
            .collect(),
    );
    store
}

fn ingest(store: &Store, frame: &str) {
    match decode_frame(frame) {
        Ok(Frame::Queue(d)) => {
            store.apply(d.update);
        }
        other => panic!("not a queue frame: {other:?}"),
    }
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`), so a figure on this shared machine
/// can be given per CPU second as well as per wall second; `None` where the file does not exist.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let (quick, sizes) = common::sizes();
    let per_size = if quick { 20_000 } else { 400_000 };
    println!("| queues | notifications | applied/s (wall, one thread) | applied per CPU second | latency p50 | latency p99 | max |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let now = genesys_cloud_exporter::model::now_ms();
    for &n in &sizes {
        let store = store(n);
        // Every queue gets each kind once first, so the measured run updates existing series (the steady state).
        let frames: Vec<String> = (0..per_size).map(|k| frame(k % n, k / n, now)).collect();
        for f in frames.iter().take(n * 4) {
            ingest(&store, f);
        }
        let t = Instant::now();
        let cpu0 = cpu_ns();
        for f in &frames {
            ingest(&store, f);
        }
        let rate = frames.len() as f64 / t.elapsed().as_secs_f64();
        let cpu_rate = match (cpu0, cpu_ns()) {
            (Some(a), Some(b)) if b > a => format!("{:.0}", frames.len() as f64 / ((b - a) as f64 / 1e9)),
            _ => "—".to_owned(),
        };
        let mut lat: Vec<Duration> = frames
            .iter()
            .take(50_000)
            .map(|f| {
                let t = Instant::now();
                ingest(&store, f);
                t.elapsed()
            })
            .collect();
        lat.sort();
        println!(
            "| {n} | {} | {:.0} | {cpu_rate} | {:.1} µs | {:.1} µs | {:.1} µs |",
            frames.len(),
            rate,
            percentile(&lat, 0.5).as_secs_f64() * 1e6,
            percentile(&lat, 0.99).as_secs_f64() * 1e6,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6
        );
    }
}
