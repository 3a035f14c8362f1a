//! Unit tests of the store: merge semantics, freshness, presence, directory changes and rendering.

use super::*;
use crate::model::{Aggregate, AggregateStats, GroupUpdate, ObsMetric, Observation, QueueMeta, QueueUpdate, Source};

const T0: i64 = 1_735_550_000_000;

fn meta(id: &str, name: &str) -> QueueMeta {
    QueueMeta { id: id.into(), name: name.into(), division_id: "d1".into(), division: "Home".into() }
}

fn store() -> Store {
    let s =
        Store::new(StoreConfig { media_types: vec![], max_age: Duration::from_secs(180), ..StoreConfig::default() });
    s.set_queues_at(vec![meta("q1", "Sales")], T0);
    s
}

fn obs(metric: ObsMetric, qualifier: Option<&str>, value: Option<f64>) -> Observation {
    Observation { metric, qualifier: qualifier.map(str::to_owned), value }
}

fn group(media: Option<&str>, observations: Vec<Observation>) -> GroupUpdate {
    GroupUpdate { media_type: media.map(str::to_owned), observations, interval: None, aggregates: vec![] }
}

fn update(complete: bool, groups: Vec<GroupUpdate>) -> QueueUpdate {
    QueueUpdate { queue_id: "q1".into(), source: Source::Stream, event_ms: None, complete, groups }
}

fn agg(metric: &str, stats: AggregateStats) -> Aggregate {
    Aggregate { metric: metric.into(), qualifier: None, stats }
}

fn count(n: f64) -> AggregateStats {
    AggregateStats { count: Some(n), ..AggregateStats::default() }
}

fn interval_group(media: &str, start: i64, aggregates: Vec<Aggregate>) -> GroupUpdate {
    GroupUpdate {
        media_type: Some(media.into()),
        observations: vec![],
        interval: Some((start, start + 1_800_000)),
        aggregates,
    }
}

fn text(s: &Store, now: i64) -> String {
    let mut out = Vec::new();
    s.write_text(Format::Prometheus, now, &mut out);
    assert!(!out.contains(&0), "a family region was not filled exactly");
    String::from_utf8(out).unwrap_or_default()
}

fn sample_lines(s: &Store, now: i64) -> Vec<String> {
    text(s, now).lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

fn has(s: &Store, now: i64, line: &str) -> bool {
    sample_lines(s, now).iter().any(|l| l == line)
}

fn lines_of(s: &Store, now: i64, name: &str) -> Vec<String> {
    let prefix = format!("{name}{{");
    sample_lines(s, now).into_iter().filter(|l| l.starts_with(&prefix)).collect()
}

const Q: &str = r#"queue_id="q1",queue="Sales""#;

#[test]
fn topic_message_upserts_only_what_it_carries() {
    let s = store();
    s.apply_at(
        update(
            false,
            vec![group(
                Some("voice"),
                vec![obs(ObsMetric::Waiting, None, Some(3.0)), obs(ObsMetric::Alerting, None, Some(1.0))],
            )],
        ),
        T0,
    );
    let o = s.apply_at(update(false, vec![group(Some("voice"), vec![obs(ObsMetric::Waiting, None, Some(5.0))])]), T0);
    assert!(o.changed && !o.unknown_queue);
    let now = T0 + 1000;
    assert!(has(&s, now, &format!(r#"genesys_queue_waiting{{{Q},media_type="voice"}} 5"#)));
    assert!(has(&s, now, &format!(r#"genesys_queue_alerting{{{Q},media_type="voice"}} 1"#)), "{}", text(&s, now));
}

#[test]
fn complete_read_zeroes_what_it_does_not_mention_and_keeps_the_series() {
    let s = store();
    s.apply_at(
        update(
            false,
            vec![
                group(
                    Some("voice"),
                    vec![
                        obs(ObsMetric::Waiting, None, Some(3.0)),
                        obs(ObsMetric::LongestWaiting, None, Some(T0 as f64)),
                    ],
                ),
                group(Some("chat"), vec![obs(ObsMetric::Waiting, None, Some(2.0))]),
                group(
                    None,
                    vec![
                        obs(ObsMetric::UserRoutingStatuses, Some("IDLE"), Some(4.0)),
                        obs(ObsMetric::UserRoutingStatuses, Some("INTERACTING"), Some(2.0)),
                    ],
                ),
            ],
        ),
        T0,
    );
    let now = T0 + 10_000;
    assert!(has(&s, now, &format!(r#"genesys_queue_longest_waiting_seconds{{{Q},media_type="voice"}} 10"#)));
    // REST says: only chat waits, and only one agent idles (zero counts are omitted by Genesys).
    let o = s.apply_at(
        update(
            true,
            vec![
                group(Some("chat"), vec![obs(ObsMetric::Waiting, None, Some(1.0))]),
                group(None, vec![obs(ObsMetric::UserRoutingStatuses, Some("IDLE"), Some(1.0))]),
            ],
        ),
        T0,
    );
    assert!(o.changed);
    assert_eq!(
        lines_of(&s, now, "genesys_queue_waiting"),
        vec![
            format!(r#"genesys_queue_waiting{{{Q},media_type="chat"}} 1"#),
            format!(r#"genesys_queue_waiting{{{Q},media_type="voice"}} 0"#),
        ]
    );
    assert_eq!(
        lines_of(&s, now, "genesys_queue_agents"),
        vec![
            format!(r#"genesys_queue_agents{{{Q},routing_status="idle"}} 1"#),
            format!(r#"genesys_queue_agents{{{Q},routing_status="interacting"}} 0"#),
        ]
    );
    // Nobody waits any more: the series stays, at 0.
    assert_eq!(
        lines_of(&s, now, "genesys_queue_longest_waiting_seconds"),
        vec![format!(r#"genesys_queue_longest_waiting_seconds{{{Q},media_type="voice"}} 0"#)]
    );
}

#[test]
fn a_topic_message_does_not_zero_what_it_omits() {
    let s = store();
    s.apply_at(update(false, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(7.0))])]), T0);
    s.apply_at(update(false, vec![group(None, vec![obs(ObsMetric::ActiveUsers, None, Some(5.0))])]), T0);
    assert!(has(&s, T0, &format!("genesys_queue_member_agents{{{Q}}} 7")));
    assert!(has(&s, T0, &format!("genesys_queue_active_agents{{{Q}}} 5")));
}

#[test]
fn unknown_queue_is_reported_and_changes_nothing() {
    let s = store();
    let v = s.version();
    let before = text(&s, T0);
    let mut u = update(false, vec![group(Some("voice"), vec![obs(ObsMetric::Waiting, None, Some(3.0))])]);
    u.queue_id = "nope".into();
    let o = s.apply_at(u, T0);
    assert!(o.unknown_queue);
    assert_eq!(s.version(), v);
    assert_eq!(text(&s, T0), before);
}

#[test]
fn only_configured_media_types_are_kept_and_any_name_flows_through() {
    let s = Store::new(StoreConfig {
        media_types: vec!["voice".into(), "workitem".into()],
        max_age: Duration::from_secs(60),
        ..StoreConfig::default()
    });
    s.set_queues_at(vec![meta("q1", "Sales")], T0);
    let o = s.apply_at(
        update(
            false,
            vec![
                group(Some("voice"), vec![obs(ObsMetric::Waiting, None, Some(1.0))]),
                group(Some("email"), vec![obs(ObsMetric::Waiting, None, Some(9.0))]),
                group(Some("workitem"), vec![obs(ObsMetric::Waiting, None, Some(2.0))]),
            ],
        ),
        T0,
    );
    assert_eq!(o.filtered, 1);
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_waiting"),
        vec![
            format!(r#"genesys_queue_waiting{{{Q},media_type="voice"}} 1"#),
            format!(r#"genesys_queue_waiting{{{Q},media_type="workitem"}} 2"#),
        ]
    );
    // Every media type when the list is empty.
    let all = store();
    all.apply_at(update(false, vec![group(Some("cobrowse"), vec![obs(ObsMetric::Interacting, None, Some(1.0))])]), T0);
    assert!(has(&all, T0, &format!(r#"genesys_queue_interacting{{{Q},media_type="cobrowse"}} 1"#)));
}

#[test]
fn values_without_a_series_to_go_to_are_filtered() {
    let s = store();
    let o = s.apply_at(
        update(
            false,
            vec![group(
                None,
                vec![obs(ObsMetric::Waiting, None, Some(1.0)), obs(ObsMetric::OnQueueUsers, None, Some(3.0))],
            )],
        ),
        T0,
    );
    assert_eq!(o.filtered, 2);
    assert!(lines_of(&s, T0, "genesys_queue_waiting").is_empty());
    assert!(lines_of(&s, T0, "genesys_queue_on_queue_agents").is_empty());
}

#[test]
fn presence_ids_resolve_sum_and_report_unknown_ones() {
    let s = store();
    s.set_presence_definitions(vec![
        PresenceDef { id: "p-avail".into(), name: "Available".into(), system_presence: "AVAILABLE".into() },
        PresenceDef { id: "p-onq".into(), name: "On Queue".into(), system_presence: "On Queue".into() },
        // A second id with the same labels (e.g. a copy in another division).
        PresenceDef { id: "p-avail2".into(), name: "Available".into(), system_presence: "Available".into() },
    ]);
    let o = s.apply_at(
        update(
            false,
            vec![group(
                None,
                vec![
                    obs(ObsMetric::UserPresences, Some("p-avail"), Some(2.0)),
                    obs(ObsMetric::UserPresences, Some("p-avail2"), Some(3.0)),
                    obs(ObsMetric::UserPresences, Some("p-onq"), Some(4.0)),
                    obs(ObsMetric::OffQueueUsers, Some("p-new1"), Some(1.0)),
                    obs(ObsMetric::OffQueueUsers, Some("p-new2"), Some(1.0)),
                ],
            )],
        ),
        T0,
    );
    assert!(o.unknown_presence);
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_presence_agents"),
        vec![
            format!(r#"genesys_queue_presence_agents{{{Q},presence="Available",system_presence="available"}} 5"#),
            format!(r#"genesys_queue_presence_agents{{{Q},presence="On Queue",system_presence="on_queue"}} 4"#),
        ]
    );
    // Two unknown ids are one `unknown` series, not two identical ones.
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_off_queue_agents"),
        vec![format!(r#"genesys_queue_off_queue_agents{{{Q},presence="unknown",system_presence="unknown"}} 2"#)]
    );
    // The caller refreshes the definitions: the queue is re-rendered with the new names.
    let v = s.version();
    s.set_presence_definitions(vec![
        PresenceDef { id: "p-avail".into(), name: "Available".into(), system_presence: "AVAILABLE".into() },
        PresenceDef { id: "p-avail2".into(), name: "Available".into(), system_presence: "Available".into() },
        PresenceDef { id: "p-onq".into(), name: "On Queue".into(), system_presence: "ON_QUEUE".into() },
        PresenceDef { id: "p-new1".into(), name: "Break".into(), system_presence: "Break".into() },
        PresenceDef { id: "p-new2".into(), name: "Meal".into(), system_presence: "MEAL".into() },
    ]);
    assert!(s.version() > v);
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_off_queue_agents"),
        vec![
            format!(r#"genesys_queue_off_queue_agents{{{Q},presence="Break",system_presence="break"}} 1"#),
            format!(r#"genesys_queue_off_queue_agents{{{Q},presence="Meal",system_presence="meal"}} 1"#),
        ]
    );
    let o = s
        .apply_at(update(false, vec![group(None, vec![obs(ObsMetric::OffQueueUsers, Some("p-new1"), Some(2.0))])]), T0);
    assert!(!o.unknown_presence);
}

#[test]
fn routing_statuses_are_lower_snake_case_and_spellings_are_summed() {
    let s = store();
    s.apply_at(
        update(
            false,
            vec![group(
                None,
                vec![
                    obs(ObsMetric::OnQueueUsers, Some("NOT_RESPONDING"), Some(1.0)),
                    obs(ObsMetric::OnQueueUsers, Some("IDLE"), Some(2.0)),
                    obs(ObsMetric::OnQueueUsers, Some("Idle"), Some(1.0)),
                ],
            )],
        ),
        T0,
    );
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_on_queue_agents"),
        vec![
            format!(r#"genesys_queue_on_queue_agents{{{Q},routing_status="idle"}} 3"#),
            format!(r#"genesys_queue_on_queue_agents{{{Q},routing_status="not_responding"}} 1"#),
        ]
    );
}

#[test]
fn intervals_newer_replaces_older_is_ignored_and_ended_ones_are_withdrawn() {
    let s = store();
    let i1 = T0 - 60_000;
    let sl = AggregateStats { ratio: Some(0.75), target: Some(0.8), ..AggregateStats::default() };
    s.apply_at(
        QueueUpdate {
            queue_id: "q1".into(),
            source: Source::Poll,
            event_ms: None,
            complete: false,
            groups: vec![
                interval_group(
                    "voice",
                    i1,
                    vec![agg("nOffered", count(4.0)), agg("oServiceLevel", sl), agg("tAbandon", count(1.0))],
                ),
                interval_group("chat", i1, vec![agg("nOffered", count(2.0))]),
            ],
        },
        T0,
    );
    let now = T0;
    assert!(has(&s, now, &format!(r#"genesys_queue_interval_offered{{{Q},media_type="voice"}} 4"#)));
    assert!(has(&s, now, &format!(r#"genesys_queue_interval_abandoned{{{Q},media_type="voice"}} 1"#)));
    assert!(has(&s, now, &format!(r#"genesys_queue_service_level_ratio{{{Q},media_type="voice"}} 0.75"#)));
    assert!(has(&s, now, &format!(r#"genesys_queue_service_level_target_ratio{{{Q},media_type="voice"}} 0.8"#)));
    assert!(has(&s, now, &format!("genesys_queue_interval_start_timestamp_seconds{{{Q}}} 1735549940")));
    assert!(lines_of(&s, now, "genesys_queue_interval_answered").is_empty(), "absent metric means no series");

    // The next interval for voice: it replaces voice's values; chat, still on the old interval, is not current.
    let i2 = i1 + 1_800_000;
    let after = i2 + 1000;
    s.apply_at(update(false, vec![interval_group("voice", i2, vec![agg("nOffered", count(1.0))])]), after);
    assert_eq!(
        lines_of(&s, after, "genesys_queue_interval_offered"),
        vec![format!(r#"genesys_queue_interval_offered{{{Q},media_type="voice"}} 1"#)]
    );
    assert!(lines_of(&s, after, "genesys_queue_interval_abandoned").is_empty());
    assert!(has(&s, after, &format!("genesys_queue_interval_start_timestamp_seconds{{{Q}}} {}", i2 / 1000)));

    // A late message about the old interval is ignored.
    let o = s.apply_at(update(false, vec![interval_group("voice", i1, vec![agg("nOffered", count(9.0))])]), after);
    assert!(o.old_interval && !o.changed);
    assert!(has(&s, after, &format!(r#"genesys_queue_interval_offered{{{Q},media_type="voice"}} 1"#)));

    // Once the interval has ended without news, its values are not presented as current.
    s.apply_at(update(false, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(1.0))])]), i2 + 1_800_000);
    let later = i2 + 1_800_000 + 1;
    assert!(lines_of(&s, later, "genesys_queue_interval_offered").is_empty());
    assert!(lines_of(&s, later, "genesys_queue_interval_start_timestamp_seconds").is_empty());
    assert!(!lines_of(&s, later, "genesys_queue_member_agents").is_empty());
}

#[test]
fn longest_waiting_ticks_with_the_clock() {
    let s = store();
    s.apply_at(
        update(
            false,
            vec![group(Some("voice"), vec![obs(ObsMetric::LongestWaiting, None, Some((T0 - 5_000) as f64))])],
        ),
        T0,
    );
    let line = |now: i64| lines_of(&s, now, "genesys_queue_longest_waiting_seconds");
    assert_eq!(line(T0), vec![format!(r#"genesys_queue_longest_waiting_seconds{{{Q},media_type="voice"}} 5"#)]);
    assert_eq!(
        line(T0 + 2_500),
        vec![format!(r#"genesys_queue_longest_waiting_seconds{{{Q},media_type="voice"}} 7.5"#)]
    );
    // A start in the future (clock skew) reads 0, never negative.
    s.apply_at(
        update(
            false,
            vec![group(Some("voice"), vec![obs(ObsMetric::LongestWaiting, None, Some((T0 + 9_000) as f64))])],
        ),
        T0,
    );
    assert_eq!(line(T0), vec![format!(r#"genesys_queue_longest_waiting_seconds{{{Q},media_type="voice"}} 0"#)]);
    s.apply_at(update(false, vec![group(Some("voice"), vec![obs(ObsMetric::LongestWaiting, None, None)])]), T0);
    assert_eq!(
        line(T0 + 60_000),
        vec![format!(r#"genesys_queue_longest_waiting_seconds{{{Q},media_type="voice"}} 0"#)]
    );
}

#[test]
fn data_age_follows_updates_and_the_channel_clock_of_streamed_queues() {
    let s = store();
    s.apply_at(update(false, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(3.0))])]), T0);
    assert!(has(&s, T0 + 12_345, &format!("genesys_queue_data_age_seconds{{{Q}}} 12.345")));

    let clock = ChannelClock::new();
    clock.touch(T0 + 100_000);
    s.attach_channel(&["q1".to_owned()], Some(clock.clone()));
    // The first confirmation came from the stream, so the queue's source is stream and its channel confirms it.
    assert!(has(&s, T0 + 101_000, &format!("genesys_queue_data_age_seconds{{{Q}}} 1")));
    // Polled queues do not get the channel's heartbeat.
    s.set_source("q1", Source::Poll);
    assert!(has(&s, T0 + 101_000, &format!("genesys_queue_data_age_seconds{{{Q}}} 101")));
    assert!(has(&s, T0 + 101_000, &format!(r#"genesys_queue_source{{{Q},source="poll"}} 1"#)));
    assert!(has(&s, T0 + 101_000, &format!(r#"genesys_queue_source{{{Q},source="stream"}} 0"#)));
    s.set_source("q1", Source::Stream);
    s.attach_channel(&["q1".to_owned()], None);
    assert!(has(&s, T0 + 101_000, &format!("genesys_queue_data_age_seconds{{{Q}}} 101")));
}

#[test]
fn a_rest_read_does_not_take_a_streamed_queue_off_the_stream() {
    let s = store();
    s.set_source("q1", Source::Stream);
    let mut u = update(true, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(3.0))])]);
    u.source = Source::Poll;
    s.apply_at(u, T0);
    assert!(has(&s, T0, &format!(r#"genesys_queue_source{{{Q},source="stream"}} 1"#)));
}

#[test]
fn old_data_is_withdrawn_never_frozen_as_fresh() {
    let s = store();
    s.set_stale("q1", false);
    s.apply_at(
        update(
            false,
            vec![
                group(
                    Some("voice"),
                    vec![
                        obs(ObsMetric::Waiting, None, Some(3.0)),
                        obs(ObsMetric::LongestWaiting, None, Some(T0 as f64)),
                    ],
                ),
                group(None, vec![obs(ObsMetric::MemberUsers, None, Some(3.0))]),
                interval_group("voice", T0, vec![agg("nOffered", count(4.0))]),
            ],
        ),
        T0,
    );
    let fresh = T0 + 180_000;
    assert!(has(&s, fresh, &format!(r#"genesys_queue_waiting{{{Q},media_type="voice"}} 3"#)));
    assert!(has(&s, fresh, &format!("genesys_queue_stale{{{Q}}} 0")));

    let old = T0 + 180_001;
    let names: Vec<String> = sample_lines(&s, old)
        .iter()
        .map(|l| l.split('{').next().unwrap_or_default().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        names,
        ["genesys_queue_data_age_seconds", "genesys_queue_info", "genesys_queue_source", "genesys_queue_stale"]
    );
    assert!(has(&s, old, &format!("genesys_queue_stale{{{Q}}} 1")));
    assert!(has(&s, old, &format!(r#"genesys_queue_source{{{Q},source="none"}} 1"#)));
    assert!(has(&s, old, &format!("genesys_queue_data_age_seconds{{{Q}}} 180.001")));
    // No header is left behind for a family without samples.
    assert!(!text(&s, old).contains("genesys_queue_waiting"));

    // A new confirmation brings the values back.
    s.apply_at(update(false, vec![]), old);
    assert!(has(&s, old, &format!(r#"genesys_queue_waiting{{{Q},media_type="voice"}} 3"#)));
}

#[test]
fn directory_changes_add_drop_and_rename() {
    let s = store();
    s.apply_at(update(false, vec![group(Some("voice"), vec![obs(ObsMetric::Waiting, None, Some(3.0))])]), T0);
    let change = s.set_queues_at(
        vec![
            QueueMeta {
                id: "q1".into(),
                name: "Zales \"EU\"".into(),
                division_id: "d2".into(),
                division: "Europe".into(),
            },
            meta("q2", "Billing"),
        ],
        T0,
    );
    assert_eq!(change, DirectoryChange { added: vec!["q2".into()], removed: vec![], renamed: vec!["q1".into()] });
    let now = T0 + 1000;
    // Sorted by name: Billing before the renamed queue; labels re-rendered, values kept.
    assert_eq!(
        lines_of(&s, now, "genesys_queue_info"),
        vec![
            r#"genesys_queue_info{queue_id="q2",queue="Billing",division="Home",division_id="d1"} 1"#.to_owned(),
            r#"genesys_queue_info{queue_id="q1",queue="Zales \"EU\"",division="Europe",division_id="d2"} 1"#.to_owned(),
        ]
    );
    assert!(has(&s, now, r#"genesys_queue_waiting{queue_id="q1",queue="Zales \"EU\"",media_type="voice"} 3"#));
    // A new queue: listed, stale, source none, no values.
    assert!(has(&s, now, r#"genesys_queue_stale{queue_id="q2",queue="Billing"} 1"#));
    assert!(has(&s, now, r#"genesys_queue_source{queue_id="q2",queue="Billing",source="none"} 1"#));
    assert!(has(&s, now, r#"genesys_queue_data_age_seconds{queue_id="q2",queue="Billing"} 1"#));

    let change = s.set_queues_at(vec![meta("q2", "Billing")], T0);
    assert_eq!(change, DirectoryChange { added: vec![], removed: vec!["q1".into()], renamed: vec![] });
    assert!(!text(&s, now).contains("q1"));
    assert_eq!(s.len(), 1);
    // Unchanged listing: nothing to do.
    let v = s.version();
    assert_eq!(s.set_queues_at(vec![meta("q2", "Billing")], T0), DirectoryChange::default());
    assert_eq!(s.version(), v);
}

#[test]
fn label_values_are_escaped() {
    let s = Store::default();
    s.set_queues_at(
        vec![QueueMeta {
            id: "q\\1".into(),
            name: "Line\nBreak \"quoted\" back\\slash".into(),
            division_id: "d".into(),
            division: "Div".into(),
        }],
        T0,
    );
    assert!(text(&s, T0).contains(
        r#"genesys_queue_info{queue_id="q\\1",queue="Line\nBreak \"quoted\" back\\slash",division="Div",division_id="d"} 1"#
    ));
}

#[test]
fn output_is_family_major_with_one_header_each() {
    let s = store();
    s.set_queues_at(vec![meta("q1", "Sales"), meta("q2", "Billing")], T0);
    for id in ["q1", "q2"] {
        let mut u = update(false, vec![group(Some("voice"), vec![obs(ObsMetric::Waiting, None, Some(1.0))])]);
        u.queue_id = id.into();
        s.apply_at(u, T0);
    }
    let t = text(&s, T0);
    assert_eq!(t.matches("# TYPE genesys_queue_waiting gauge\n").count(), 1);
    let lines: Vec<&str> = t.lines().collect();
    let at = lines.iter().position(|l| *l == "# TYPE genesys_queue_waiting gauge").unwrap_or(usize::MAX);
    assert!(lines[at + 1].starts_with(r#"genesys_queue_waiting{queue_id="q2""#), "{t}");
    assert!(lines[at + 2].starts_with(r#"genesys_queue_waiting{queue_id="q1""#), "{t}");
    // Families come in table order.
    let order: Vec<&str> =
        t.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap_or("")).collect();
    let table: Vec<&str> = families::FAMILIES.iter().map(|d| d.name).filter(|n| order.contains(n)).collect();
    assert_eq!(order, table);
    // OpenMetrics headers for the same samples.
    let mut om = Vec::new();
    s.write_text(Format::OpenMetrics, T0, &mut om);
    let om = String::from_utf8(om).unwrap_or_default();
    assert!(om.contains("# TYPE genesys_queue_data_age_seconds gauge\n# UNIT genesys_queue_data_age_seconds seconds\n"));
    assert_eq!(
        om.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
        t.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>()
    );
}

#[test]
fn versions_and_summary() {
    let s = store();
    let v0 = s.version();
    s.apply_at(update(false, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(1.0))])]), T0);
    let v1 = s.version();
    assert!(v1 > v0);
    let (f, qv) = s
        .queue_freshness("q1", T0 + 1000)
        .unwrap_or((Freshness { age_ms: -1, withdrawn: true, source: Source::None, stale: true }, 0));
    assert_eq!(qv, v1);
    assert_eq!(f.age_ms, 1000);
    s.set_stale("q1", false);
    assert!(s.version() > v1);
    let clock = ChannelClock::new();
    s.set_queues_at(vec![meta("q1", "Sales"), meta("q2", "Billing")], T0);
    s.attach_channel(&["q1".into(), "q2".into()], Some(clock));
    let sum = s.summary(T0 + 1000);
    assert_eq!((sum.queues, sum.stale, sum.stream, sum.none, sum.channels), (2, 1, 1, 1, 1));
    assert!(sum.rendered_bytes > 0);
}

#[test]
fn data_age_uses_the_event_time_when_given_and_never_goes_backwards() {
    let s = store();
    let mut u = update(false, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(1.0))])]);
    u.event_ms = Some(T0 - 4_000);
    s.apply_at(u.clone(), T0);
    assert!(has(&s, T0, &format!("genesys_queue_data_age_seconds{{{Q}}} 4")));
    // A late message with an older event time does not make the queue look older.
    u.event_ms = Some(T0 - 9_000);
    s.apply_at(u, T0);
    assert!(has(&s, T0, &format!("genesys_queue_data_age_seconds{{{Q}}} 4")));
}

// Counters and histograms grown from the interval aggregates.

fn timed(n: f64, sum: f64, min: f64, max: f64) -> AggregateStats {
    AggregateStats { count: Some(n), sum: Some(sum), min: Some(min), max: Some(max), ..AggregateStats::default() }
}

fn kpi_update(start: i64, offered: f64, answered: AggregateStats, abandon: AggregateStats) -> QueueUpdate {
    update(
        false,
        vec![interval_group(
            "voice",
            start,
            vec![agg("nOffered", count(offered)), agg("tAnswered", answered), agg("tAbandon", abandon)],
        )],
    )
}

const V: &str = r#"queue_id="q1",queue="Sales",media_type="voice""#;

fn counter_value(s: &Store, now: i64, name: &str) -> Option<String> {
    lines_of(s, now, name).first().map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
}

#[test]
fn counters_start_at_zero_on_the_first_interval_and_grow_after() {
    let s = store();
    let i1 = T0 - 600_000;
    s.apply_at(
        kpi_update(i1, 10.0, timed(8.0, 80_000.0, 1_000.0, 30_000.0), timed(1.0, 50_000.0, 50_000.0, 50_000.0)),
        T0,
    );
    // The baseline: series at 0, no jump to the interval's 10 so far.
    assert_eq!(counter_value(&s, T0, "genesys_queue_offered_total").as_deref(), Some("0"));
    assert_eq!(counter_value(&s, T0, "genesys_queue_answered_total").as_deref(), Some("0"));
    assert!(has(&s, T0, &format!(r#"genesys_queue_answer_wait_seconds_bucket{{{V},le="+Inf"}} 0"#)));
    assert!(has(&s, T0, &format!("genesys_queue_answer_wait_seconds_count{{{V}}} 0")));
    assert!(has(&s, T0, &format!("genesys_queue_handle_seconds_count{{{V}}} 0")));

    // One more answered after 7.25 s, one more offered.
    let o = s.apply_at(
        kpi_update(i1, 11.0, timed(9.0, 87_250.0, 1_000.0, 30_000.0), timed(1.0, 50_000.0, 50_000.0, 50_000.0)),
        T0,
    );
    assert!(o.changed);
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_answer_wait_seconds_bucket"),
        [("5.0", 0), ("10.0", 1), ("20.0", 1), ("30.0", 1), ("45.0", 1), ("60.0", 1), ("90.0", 1), ("120.0", 1)]
            .iter()
            .chain([("180.0", 1), ("300.0", 1), ("600.0", 1), ("+Inf", 1)].iter())
            .map(|(le, n)| format!(r#"genesys_queue_answer_wait_seconds_bucket{{{V},le="{le}"}} {n}"#))
            .collect::<Vec<_>>()
    );
    assert!(has(&s, T0, &format!("genesys_queue_answer_wait_seconds_sum{{{V}}} 7.25")));
    assert!(has(&s, T0, &format!("genesys_queue_answer_wait_seconds_count{{{V}}} 1")));
    assert!(has(&s, T0, &format!("genesys_queue_offered_total{{{V}}} 1")));
    assert!(has(&s, T0, &format!("genesys_queue_answered_total{{{V}}} 1")));
    assert!(has(&s, T0, &format!("genesys_queue_abandoned_total{{{V}}} 0")));

    // A restart: a fresh store sees the same interval, further on. Its first sight is its baseline: no jump.
    let restarted = store();
    restarted.apply_at(
        kpi_update(i1, 15.0, timed(12.0, 120_000.0, 1_000.0, 30_000.0), timed(2.0, 60_000.0, 10_000.0, 50_000.0)),
        T0,
    );
    assert_eq!(counter_value(&restarted, T0, "genesys_queue_offered_total").as_deref(), Some("0"));
    assert_eq!(counter_value(&restarted, T0, "genesys_queue_abandoned_total").as_deref(), Some("0"));
}

#[test]
fn re_seeds_and_older_reads_add_nothing_through_the_store() {
    let s = store();
    let i1 = T0 - 600_000;
    let a = |n: f64, sum: f64| timed(n, sum, 2_000.0, 40_000.0);
    s.apply_at(kpi_update(i1, 5.0, a(4.0, 40_000.0), count(0.0)), T0);
    s.apply_at(kpi_update(i1, 8.0, a(6.0, 80_000.0), count(0.0)), T0);
    // The totals' lines only: the interval gauges mirror the latest read, older or not.
    let totals = |s: &Store| -> Vec<String> {
        sample_lines(s, T0).into_iter().filter(|l| l.contains("_total{") || l.contains("_seconds_")).collect()
    };
    let before = totals(&s);
    // The REST re-seed reads the same values after the topic message: nothing changes.
    let v = s.version();
    let o = s.apply_at(kpi_update(i1, 8.0, a(6.0, 80_000.0), count(0.0)), T0);
    assert!(!o.changed);
    assert_eq!(totals(&s), before);
    assert!(s.version() > v, "an apply still confirms the queue");
    // A REST read older than the topic message: lower values, no negative growth.
    s.apply_at(kpi_update(i1, 7.0, a(5.0, 60_000.0), count(0.0)), T0);
    assert_eq!(totals(&s), before);
    // The newer values again (topic message repeated): not counted twice.
    s.apply_at(kpi_update(i1, 8.0, a(6.0, 80_000.0), count(0.0)), T0);
    assert_eq!(totals(&s), before);
    assert!(has(&s, T0, &format!("genesys_queue_offered_total{{{V}}} 3")));
    assert!(has(&s, T0, &format!("genesys_queue_answer_wait_seconds_count{{{V}}} 2")));
    assert!(has(&s, T0, &format!("genesys_queue_answer_wait_seconds_sum{{{V}}} 40")));
}

#[test]
fn totals_cross_rollovers_outlive_the_interval_and_follow_freshness() {
    let s = store();
    let i1 = T0 - 600_000;
    let i2 = i1 + 1_800_000;
    let i3 = i2 + 1_800_000;
    s.apply_at(kpi_update(i1, 2.0, count(0.0), count(0.0)), T0);
    s.apply_at(kpi_update(i1, 3.0, count(0.0), count(0.0)), T0);
    // Two rollovers: each new interval's values count in full.
    s.apply_at(kpi_update(i2, 4.0, count(0.0), count(0.0)), i2 + 60_000);
    assert!(has(&s, i2 + 60_000, &format!("genesys_queue_offered_total{{{V}}} 5")));
    s.apply_at(kpi_update(i3, 1.0, count(0.0), count(0.0)), i3 + 60_000);
    let now = i3 + 60_000;
    assert!(has(&s, now, &format!("genesys_queue_offered_total{{{V}}} 6")));
    // A late message of an older interval changes nothing.
    let o = s.apply_at(kpi_update(i2, 9.0, count(0.0), count(0.0)), now);
    assert!(o.old_interval && !o.changed);
    assert!(has(&s, now, &format!("genesys_queue_offered_total{{{V}}} 6")));

    // The interval ends without news: the interval gauges go, the totals stay.
    s.apply_at(update(false, vec![group(None, vec![obs(ObsMetric::MemberUsers, None, Some(1.0))])]), i3 + 1_800_000);
    let later = i3 + 1_800_001;
    assert!(lines_of(&s, later, "genesys_queue_interval_offered").is_empty());
    assert!(has(&s, later, &format!("genesys_queue_offered_total{{{V}}} 6")));
    // Older than max_age: withdrawn with the other values, never frozen as fresh...
    let old = i3 + 1_800_000 + 180_001;
    assert!(lines_of(&s, old, "genesys_queue_offered_total").is_empty());
    assert!(!text(&s, old).contains("genesys_queue_answer_wait_seconds"));
    // ...and back with the same totals when data returns.
    s.apply_at(update(false, vec![]), old);
    assert!(has(&s, old, &format!("genesys_queue_offered_total{{{V}}} 6")));

    // Removed from the directory: its series go.
    s.set_queues_at(vec![meta("q2", "Billing")], old);
    assert!(lines_of(&s, old, "genesys_queue_offered_total").is_empty());
}

#[test]
fn histogram_buckets_come_from_the_config_and_render_in_both_formats() {
    let s = Store::new(StoreConfig { wait_buckets: vec![30.0, 0.5, 120.0], ..StoreConfig::default() });
    s.set_queues_at(vec![meta("q1", "Sales")], T0);
    let i1 = T0 - 600_000;
    s.apply_at(kpi_update(i1, 0.0, count(0.0), count(0.0)), T0);
    s.apply_at(kpi_update(i1, 1.0, count(0.0), timed(1.0, 400.0, 400.0, 400.0)), T0);
    assert_eq!(
        lines_of(&s, T0, "genesys_queue_abandon_wait_seconds_bucket"),
        ["0.5", "30.0", "120.0", "+Inf"]
            .iter()
            .map(|le| format!(r#"genesys_queue_abandon_wait_seconds_bucket{{{V},le="{le}"}} 1"#))
            .collect::<Vec<_>>()
    );
    assert!(has(&s, T0, &format!("genesys_queue_abandon_wait_seconds_sum{{{V}}} 0.4")));
    let prom = text(&s, T0);
    assert!(prom.contains("# TYPE genesys_queue_offered_total counter\n"));
    assert!(prom.contains("# TYPE genesys_queue_abandon_wait_seconds histogram\n"));
    let mut om = Vec::new();
    s.write_text(Format::OpenMetrics, T0, &mut om);
    let om = String::from_utf8(om).unwrap_or_default();
    assert!(om.contains("# HELP genesys_queue_offered Conversations offered"));
    assert!(om.contains("# TYPE genesys_queue_offered counter\n"));
    assert!(om.contains(&format!("\ngenesys_queue_offered_total{{{V}}} 1\n")));
    assert!(om.contains(
        "# TYPE genesys_queue_abandon_wait_seconds histogram\n# UNIT genesys_queue_abandon_wait_seconds seconds\n"
    ));
}

#[test]
fn a_media_type_first_seen_in_an_interval_that_started_after_the_exporter_counts_from_zero() {
    let s = store();
    let i1 = T0 - 600_000;
    s.apply_at(kpi_update(i1, 10.0, count(0.0), count(0.0)), T0);
    // Chat first appears in the same (baseline) interval: its first values are its baseline.
    let chat = |start: i64, n: f64| update(false, vec![interval_group("chat", start, vec![agg("nOffered", count(n))])]);
    s.apply_at(chat(i1, 2.0), T0 + 1_000);
    assert!(has(&s, T0 + 1_000, &format!(r#"genesys_queue_offered_total{{{Q},media_type="chat"}} 0"#)));
    // Email first appears in the next interval, which started while the exporter watched: counted in full.
    let i2 = i1 + 1_800_000;
    s.apply_at(update(false, vec![interval_group("email", i2, vec![agg("nOffered", count(1.0))])]), i2 + 5_000);
    assert!(has(&s, i2 + 5_000, &format!(r#"genesys_queue_offered_total{{{Q},media_type="email"}} 1"#)));
}

#[test]
fn totals_text_is_kept_across_other_changes_and_follows_renames() {
    let s = store();
    let i1 = T0 - 600_000;
    s.apply_at(kpi_update(i1, 1.0, count(0.0), count(0.0)), T0);
    s.apply_at(kpi_update(i1, 3.0, count(0.0), count(0.0)), T0);
    // An observation-only change re-renders the queue but not its totals: they are still there, unchanged.
    s.apply_at(update(false, vec![group(Some("voice"), vec![obs(ObsMetric::Waiting, None, Some(4.0))])]), T0);
    assert!(has(&s, T0, &format!("genesys_queue_offered_total{{{V}}} 2")));
    assert!(has(&s, T0, &format!(r#"genesys_queue_waiting{{{Q},media_type="voice"}} 4"#)));
    let t = text(&s, T0);
    assert_eq!(t.matches("# TYPE genesys_queue_answer_wait_seconds histogram\n").count(), 1);
    // A rename re-renders the totals with the new labels.
    s.set_queues_at(vec![meta("q1", "Sales EU")], T0);
    assert!(has(&s, T0, r#"genesys_queue_offered_total{queue_id="q1",queue="Sales EU",media_type="voice"} 2"#));
    assert!(!text(&s, T0).contains(r#"queue="Sales""#));
    assert!(s.summary(T0).rendered_bytes > t.len() / 2);
}

#[test]
fn a_complete_read_that_found_nothing_makes_the_first_sight_count_from_zero() {
    let i1 = T0 - 600_000;
    // A complete aggregates read of the interval starting at `start` that listed nothing for the queue.
    let marker = |s: &Store, start: i64| {
        s.apply_at(
            update(
                false,
                vec![GroupUpdate {
                    media_type: None,
                    observations: vec![],
                    interval: Some((start, start + 1_800_000)),
                    aggregates: vec![],
                }],
            ),
            T0,
        )
    };
    let t = timed(3.0, 30_000.0, 5_000.0, 15_000.0);
    let none = timed(0.0, 0.0, 0.0, 0.0);
    // Without the read, the first sight of an interval that began before the exporter is the baseline.
    let s = store();
    s.apply_at(kpi_update(i1, 3.0, t, none), T0);
    assert_eq!(counter_value(&s, T0, "genesys_queue_offered_total").as_deref(), Some("0"));
    // With a complete read of that interval that listed nothing for voice, voice had nothing then: all counts.
    let s = store();
    assert!(!marker(&s, i1).changed, "the marker itself renders nothing");
    s.apply_at(kpi_update(i1, 3.0, t, none), T0);
    assert_eq!(counter_value(&s, T0, "genesys_queue_offered_total").as_deref(), Some("3"));
    assert!(has(&s, T0, &format!("genesys_queue_answer_wait_seconds_count{{{V}}} 3")));
    // A read of another interval says nothing about this one.
    let s = store();
    marker(&s, i1 - 1_800_000);
    s.apply_at(kpi_update(i1, 3.0, t, none), T0);
    assert_eq!(counter_value(&s, T0, "genesys_queue_offered_total").as_deref(), Some("0"));
}
