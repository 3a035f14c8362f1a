//! The `/metrics` body as text: golden files for both formats, `promtool check metrics` on the Prometheus text,
//! and an OpenMetrics structure check of our own (promtool reads only the classic text format).
//!
//! Rewrite the golden files with `UPDATE_GOLDEN=1 cargo test --test exposition_golden`.

#[path = "support/prom.rs"]
#[allow(dead_code)]
mod prom;

use genesys_cloud_exporter::exposition::{self, Format};
use genesys_cloud_exporter::model::{
    Aggregate, AggregateStats, ChannelClock, GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Source,
};
use genesys_cloud_exporter::state::{PresenceDef, Store, StoreConfig};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use std::path::PathBuf;
use std::time::Duration;

/// 2024-12-30T09:40:00Z: inside the 09:30–10:00 interval.
const NOW: i64 = 1_735_551_600_000;
const INTERVAL: (i64, i64) = (1_735_551_000_000, 1_735_552_800_000);

fn meta(id: &str, name: &str, division: &str) -> QueueMeta {
    QueueMeta {
        id: id.into(),
        name: name.into(),
        division_id: format!("div-{}", division.to_lowercase()),
        division: division.into(),
    }
}

fn obs(metric: ObsMetric, qualifier: Option<&str>, value: Option<f64>) -> Observation {
    Observation { metric, qualifier: qualifier.map(str::to_owned), value }
}

fn count(n: f64) -> AggregateStats {
    AggregateStats { count: Some(n), ..AggregateStats::default() }
}

fn timed(n: f64, sum: f64) -> AggregateStats {
    AggregateStats {
        count: Some(n),
        sum: Some(sum),
        min: Some(sum / n),
        max: Some(sum / n),
        ..AggregateStats::default()
    }
}

/// A store with one queue in every interesting state.
fn fixture_store() -> Store {
    let store = Store::new(StoreConfig {
        media_types: vec!["voice".into(), "chat".into(), "email".into()],
        max_age: Duration::from_secs(180),
        ..StoreConfig::default()
    });
    store.set_queues_at(
        vec![
            meta("q-sales", "Sales", "Retail"),
            meta("q-support", "Support \"Tier 2\"\nback\\office", "Retail"),
            meta("q-new", "Escalations", "Corporate"),
            meta("q-old", "Archive", "Corporate"),
        ],
        NOW - 600_000,
    );
    store.set_presence_definitions(vec![
        PresenceDef { id: "p-avail".into(), name: "Available".into(), system_presence: "AVAILABLE".into() },
        PresenceDef { id: "p-onq".into(), name: "On Queue".into(), system_presence: "On Queue".into() },
        PresenceDef { id: "p-break".into(), name: "Break".into(), system_presence: "BREAK".into() },
        PresenceDef { id: "p-coffee".into(), name: "Break".into(), system_presence: "Break".into() },
    ]);

    // Sales: seeded by REST, then served by the stream, whose channel heard a heartbeat 2 s ago.
    let user_group = GroupUpdate {
        media_type: None,
        observations: vec![
            obs(ObsMetric::UserRoutingStatuses, Some("IDLE"), Some(3.0)),
            obs(ObsMetric::UserRoutingStatuses, Some("INTERACTING"), Some(4.0)),
            obs(ObsMetric::UserRoutingStatuses, Some("NOT_RESPONDING"), Some(1.0)),
            obs(ObsMetric::OnQueueUsers, Some("IDLE"), Some(3.0)),
            obs(ObsMetric::OnQueueUsers, Some("INTERACTING"), Some(4.0)),
            obs(ObsMetric::UserPresences, Some("p-onq"), Some(8.0)),
            obs(ObsMetric::UserPresences, Some("p-break"), Some(1.0)),
            obs(ObsMetric::UserPresences, Some("p-coffee"), Some(1.0)),
            obs(ObsMetric::OffQueueUsers, Some("p-break"), Some(1.0)),
            obs(ObsMetric::OffQueueUsers, Some("p-unknown"), Some(1.0)),
            obs(ObsMetric::MemberUsers, None, Some(12.0)),
            obs(ObsMetric::ActiveUsers, None, Some(10.0)),
        ],
        interval: None,
        aggregates: vec![],
    };
    let voice = GroupUpdate {
        media_type: Some("voice".into()),
        observations: vec![
            obs(ObsMetric::Waiting, None, Some(2.0)),
            obs(ObsMetric::Alerting, None, Some(1.0)),
            obs(ObsMetric::Interacting, None, Some(4.0)),
            obs(ObsMetric::LongestWaiting, None, Some((NOW - 42_500) as f64)),
            obs(ObsMetric::LongestInteracting, None, Some((NOW - 300_000) as f64)),
        ],
        interval: None,
        aggregates: vec![],
    };
    let chat = GroupUpdate {
        media_type: Some("chat".into()),
        observations: vec![obs(ObsMetric::Waiting, None, Some(0.0)), obs(ObsMetric::Interacting, None, Some(1.0))],
        interval: None,
        aggregates: vec![],
    };
    let callback = GroupUpdate {
        media_type: Some("callback".into()),
        observations: vec![obs(ObsMetric::Waiting, None, Some(5.0))],
        interval: None,
        aggregates: vec![],
    };
    store.apply_at(
        QueueUpdate {
            queue_id: "q-sales".into(),
            source: Source::Poll,
            event_ms: Some(NOW - 60_000),
            complete: true,
            groups: vec![user_group, voice, chat, callback],
        },
        NOW - 60_000,
    );
    let sl = AggregateStats {
        ratio: Some(0.8),
        numerator: Some(8.0),
        denominator: Some(10.0),
        target: Some(0.8),
        ..AggregateStats::default()
    };
    store.apply_at(
        QueueUpdate {
            queue_id: "q-sales".into(),
            source: Source::Stream,
            event_ms: Some(NOW - 30_000),
            complete: false,
            groups: vec![
                GroupUpdate {
                    media_type: Some("voice".into()),
                    observations: vec![],
                    interval: Some(INTERVAL),
                    aggregates: vec![
                        Aggregate { metric: "nOffered".into(), qualifier: None, stats: count(12.0) },
                        Aggregate { metric: "tAnswered".into(), qualifier: None, stats: timed(9.0, 81_000.0) },
                        Aggregate { metric: "tAbandon".into(), qualifier: None, stats: timed(1.0, 95_000.0) },
                        Aggregate { metric: "oServiceLevel".into(), qualifier: None, stats: sl },
                    ],
                },
                GroupUpdate {
                    media_type: Some("chat".into()),
                    observations: vec![],
                    interval: Some(INTERVAL),
                    aggregates: vec![Aggregate { metric: "nOffered".into(), qualifier: None, stats: count(3.0) }],
                },
            ],
        },
        NOW - 30_000,
    );
    // The first interval seen was the baseline (counters at 0); one more voice conversation answered after
    // 7.5 s and another abandoned after 2 minutes grow the counters and histograms.
    store.apply_at(
        QueueUpdate {
            queue_id: "q-sales".into(),
            source: Source::Stream,
            event_ms: Some(NOW - 20_000),
            complete: false,
            groups: vec![GroupUpdate {
                media_type: Some("voice".into()),
                observations: vec![],
                interval: Some(INTERVAL),
                aggregates: vec![
                    Aggregate { metric: "nOffered".into(), qualifier: None, stats: count(14.0) },
                    Aggregate {
                        metric: "tAnswered".into(),
                        qualifier: None,
                        stats: AggregateStats { count: Some(10.0), sum: Some(88_500.0), ..timed(9.0, 81_000.0) },
                    },
                    Aggregate {
                        metric: "tAbandon".into(),
                        qualifier: None,
                        stats: AggregateStats {
                            count: Some(2.0),
                            sum: Some(215_000.0),
                            max: Some(120_000.0),
                            ..timed(1.0, 95_000.0)
                        },
                    },
                ],
            }],
        },
        NOW - 20_000,
    );
    let clock = ChannelClock::new();
    clock.touch(NOW - 2_000);
    store.set_source("q-sales", Source::Stream);
    store.set_stale("q-sales", false);
    store.attach_channel(&["q-sales".to_owned()], Some(clock));

    // Support: polled (its topic was rejected), last read 8 s ago; nobody waits.
    store.apply_at(
        QueueUpdate {
            queue_id: "q-support".into(),
            source: Source::Poll,
            event_ms: Some(NOW - 8_000),
            complete: true,
            groups: vec![
                GroupUpdate {
                    media_type: Some("email".into()),
                    observations: vec![
                        obs(ObsMetric::Waiting, None, Some(0.0)),
                        obs(ObsMetric::LongestWaiting, None, None),
                    ],
                    interval: None,
                    aggregates: vec![],
                },
                GroupUpdate {
                    media_type: None,
                    observations: vec![obs(ObsMetric::MemberUsers, None, Some(2.0))],
                    interval: None,
                    aggregates: vec![],
                },
            ],
        },
        NOW - 8_000,
    );
    store.set_source("q-support", Source::Poll);

    // Archive: last confirmed 5 minutes ago, beyond max_age: withdrawn.
    store.apply_at(
        QueueUpdate {
            queue_id: "q-old".into(),
            source: Source::Poll,
            event_ms: Some(NOW - 300_000),
            complete: true,
            groups: vec![GroupUpdate {
                media_type: Some("voice".into()),
                observations: vec![obs(ObsMetric::Waiting, None, Some(7.0))],
                interval: None,
                aggregates: vec![],
            }],
        },
        NOW - 300_000,
    );
    store.set_stale("q-old", false);
    store
}

/// A registry with fixed content, so the golden files do not depend on the process.
fn fixed_registry() -> Registry {
    let r = Registry::new();
    let up = IntGauge::new("genesys_up", "1 when authenticated and serving fresh data.").unwrap();
    let msgs = IntCounterVec::new(
        Opts::new("genesys_notification_messages_total", "WebSocket frames received, by kind."),
        &["kind"],
    )
    .unwrap();
    r.register(Box::new(up.clone())).unwrap();
    r.register(Box::new(msgs.clone())).unwrap();
    up.set(1);
    msgs.with_label_values(&["heartbeat"]).inc_by(3);
    msgs.with_label_values(&["observation"]).inc_by(41);
    r
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn check_golden(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1 to create it", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected {e}\n  actual   {a}", i + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines); rerun with UPDATE_GOLDEN=1 if intended\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn render(store: &Store, registry: &Registry, format: Format) -> String {
    String::from_utf8(exposition::encode(store, registry, format, NOW).unwrap()).unwrap()
}

#[test]
fn golden_prometheus_text() {
    let text = render(&fixture_store(), &fixed_registry(), Format::Prometheus);
    check_golden("metrics.prom", &text);
}

#[test]
fn golden_openmetrics_text() {
    let text = render(&fixture_store(), &fixed_registry(), Format::OpenMetrics);
    prom::check_om(&text);
    check_golden("metrics-openmetrics.prom", &text);
}

/// Spot checks of the fixture's meaning, so that a golden rewrite cannot silently bless a regression.
#[test]
fn fixture_values_mean_what_they_should() {
    let text = render(&fixture_store(), &fixed_registry(), Format::Prometheus);
    let s = prom::parse(&text);
    let v = |name: &str, want: &[(&str, &str)]| prom::value(&s, name, want);
    let sales = ("queue_id", "q-sales");
    assert_eq!(v("genesys_queue_longest_waiting_seconds", &[sales, ("media_type", "voice")]), Some(42.5));
    assert_eq!(v("genesys_queue_waiting", &[sales, ("media_type", "callback")]), None, "media type not configured");
    assert_eq!(v("genesys_queue_presence_agents", &[sales, ("system_presence", "break")]), Some(2.0));
    assert_eq!(v("genesys_queue_off_queue_agents", &[sales, ("presence", "unknown")]), Some(1.0));
    assert_eq!(v("genesys_queue_agents", &[sales, ("routing_status", "not_responding")]), Some(1.0));
    assert_eq!(v("genesys_queue_service_level_ratio", &[sales, ("media_type", "voice")]), Some(0.8));
    assert_eq!(v("genesys_queue_interval_start_timestamp_seconds", &[sales]), Some(1_735_551_000.0));
    assert_eq!(v("genesys_queue_data_age_seconds", &[sales]), Some(2.0), "channel heartbeat confirms a quiet queue");
    assert_eq!(v("genesys_queue_source", &[sales, ("source", "stream")]), Some(1.0));
    let support = ("queue_id", "q-support");
    assert_eq!(v("genesys_queue_longest_waiting_seconds", &[support]), Some(0.0));
    assert_eq!(v("genesys_queue_data_age_seconds", &[support]), Some(8.0));
    assert_eq!(v("genesys_queue_info", &[support, ("queue", "Support \"Tier 2\"\nback\\office")]), Some(1.0));
    let new = ("queue_id", "q-new");
    assert_eq!(v("genesys_queue_stale", &[new]), Some(1.0));
    assert_eq!(v("genesys_queue_source", &[new, ("source", "none")]), Some(1.0));
    let old = ("queue_id", "q-old");
    assert_eq!(v("genesys_queue_waiting", &[old]), None, "withdrawn");
    assert_eq!(v("genesys_queue_stale", &[old]), Some(1.0));
    assert_eq!(v("genesys_queue_data_age_seconds", &[old]), Some(300.0));
    assert_eq!(v("genesys_queue_info", &[old]), Some(1.0));
}

/// The real output (store + the exporter's registry with process metrics) must pass `promtool check metrics`.
#[test]
fn promtool_accepts_the_prometheus_text() {
    let Some(promtool) = prom::find_promtool() else {
        if std::env::var_os("CI").is_some() {
            panic!("promtool is not on PATH and CI is set: install it (Debian package `prometheus`)");
        }
        eprintln!("WARNING: promtool not on PATH; skipping the promtool check (the OpenMetrics check still runs)");
        return;
    };
    let metrics = genesys_cloud_exporter::telemetry::SelfMetrics::new();
    exposition::register_process_metrics(metrics.registry()).unwrap();
    let text = render(&fixture_store(), metrics.registry(), Format::Prometheus);
    assert!(text.contains("process_start_time_seconds"), "process metrics missing");
    let (ok, out) = prom::run_promtool(&promtool, &text);
    assert!(ok, "promtool check metrics failed:\n{out}");
    // And the golden file itself.
    let (ok, out) = prom::run_promtool(&promtool, &render(&fixture_store(), &fixed_registry(), Format::Prometheus));
    assert!(ok, "promtool check metrics failed on the golden text:\n{out}");
}

#[test]
fn openmetrics_real_output_is_well_formed() {
    let metrics = genesys_cloud_exporter::telemetry::SelfMetrics::new();
    exposition::register_process_metrics(metrics.registry()).unwrap();
    metrics.notification_delivery_latency_seconds.observe(0.2);
    metrics.api_request_duration_seconds.with_label_values(&["observations_query"]).observe(0.3);
    let text = render(&fixture_store(), metrics.registry(), Format::OpenMetrics);
    prom::check_om(&text);
    assert!(text.contains("# TYPE process_cpu_seconds counter\n"));
    assert!(text.contains("\nprocess_cpu_seconds_total "));
}

#[test]
fn the_om_checker_rejects_broken_text() {
    let bad = [
        ("no eof", "# TYPE a gauge\na 1\n"),
        ("counter named _total", "# TYPE a_total counter\na_total 1\n# EOF\n"),
        ("counter sample without _total", "# TYPE a counter\na 1\n# EOF\n"),
        ("unit mismatch", "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n"),
        ("interleaved", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"y\"} 1\n# EOF\n"),
        ("metadata after samples", "# TYPE a gauge\na 1\n# HELP a late\n# EOF\n"),
        ("no +Inf bucket", "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_sum 1\nh_count 1\n# EOF\n"),
        ("text after eof", "# TYPE a gauge\na 1\n# EOF\na 2\n"),
    ];
    for (why, text) in bad {
        let r = std::panic::catch_unwind(|| prom::check_om(text));
        assert!(r.is_err(), "accepted broken OpenMetrics ({why})");
    }
    prom::check_om("# HELP a_seconds x\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n# EOF\n");
}
