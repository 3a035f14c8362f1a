//! The notification WebSocket with a plain tokio-tungstenite client: heartbeats, ping/pong, pushed changes, the
//! second-socket kick, channel eviction with a socket, and every socket-side fault. Scenario steps too.

#[path = "common/sim.rs"]
mod sim;

use genesys_cloud_exporter::sim::{Fault, Scenario, ScenarioStep};
use reqwest::Method;
use serde_json::{json, Value};
use sim::*;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

fn parse(t: &str) -> Value {
    serde_json::from_str(t).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {t}"))
}

fn is_topic(t: &str, topic: &str) -> bool {
    serde_json::from_str::<Value>(t).is_ok_and(|v| v["topicName"] == topic)
}

#[tokio::test]
async fn heartbeat_and_ping_pong() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (_, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    let started = Instant::now();
    let hb = wait_text(&mut ws, 2 * SECOND, "heartbeat", is_heartbeat).await;
    assert_eq!(parse(&hb), json!({"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}));
    assert!(started.elapsed() >= Duration::from_millis(200), "heartbeat comes after the interval");
    wait_text(&mut ws, 2 * SECOND, "second heartbeat", is_heartbeat).await;
    ping(&mut ws).await;
    let pong = wait_text(&mut ws, 2 * SECOND, "pong", |t| t.contains("pong")).await;
    assert_eq!(parse(&pong), json!({"topicName":"channel.metadata","eventBody":{"message":"pong"}}));
    assert!(s.stats().heartbeats_sent >= 2 && s.stats().pongs_sent == 1);
    s.shutdown().await;
}

#[tokio::test]
async fn pushed_change_after_arrival() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (_, mut ws, q) = subscribed_socket(&c, &s, &t).await;
    let tp = topic(&q);
    s.inject(Fault::Arrive { queue_id: q.clone(), media_type: "voice".into(), count: 3 });
    let m = wait_text(&mut ws, 3 * SECOND, "topic message", |x| is_topic(x, &tp)).await;
    let v = parse(&m);
    assert_eq!(v["topicName"], tp.as_str());
    assert!(v["version"].is_string());
    assert!(v["metadata"]["CorrelationId"].is_string(), "metadata.CorrelationId: {v}");
    let body = &v["eventBody"];
    assert_eq!(body["group"]["queueId"], q.as_str());
    let data = body["data"].as_array().expect("eventBody.data");
    assert!(!data.is_empty());
    for d in data {
        let iv = d["interval"].as_str().expect("interval");
        let (a, b) = iv.split_once('/').expect("start/end");
        assert!(chrono::DateTime::parse_from_rfc3339(a).is_ok() && chrono::DateTime::parse_from_rfc3339(b).is_ok());
        for m in d["metrics"].as_array().expect("metrics") {
            assert!(m["metric"].is_string());
            assert!(m["stats"].as_object().expect("stats").values().all(Value::is_number), "{m}");
        }
    }
    // The exporter's decoder reads it.
    let f = genesys_cloud_exporter::genesys::decode::decode_frame(&m).expect("decodes");
    assert!(matches!(f, genesys_cloud_exporter::genesys::decode::Frame::Queue(_)));
    // Arrivals through the admin API push too, and an unknown queue is a 404.
    let r = inject_http(&c, &s, json!({"kind": "arrive", "queue_id": q, "media_type": "voice", "count": 1})).await;
    assert_eq!(r.status, 200);
    wait_text(&mut ws, 3 * SECOND, "second topic message", |x| is_topic(x, &tp)).await;
    let r = inject_http(&c, &s, json!({"kind": "arrive", "queue_id": "no-such-queue", "count": 1})).await;
    assert_eq!(r.status, 404);
    assert!(s.stats().messages_sent >= 2);
    s.shutdown().await;
}

#[tokio::test]
async fn unsubscribed_queue_is_not_pushed_and_silence_topic() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (_, mut ws, q) = subscribed_socket(&c, &s, &t).await;
    let other = queue_ids(&s).into_iter().find(|x| *x != q).unwrap();
    let tp = topic(&q);
    // Silence the subscribed queue, change it and another queue: nothing arrives for either.
    s.inject(Fault::SilenceTopic { queue_id: q.clone(), on: true });
    s.inject(Fault::Arrive { queue_id: q.clone(), media_type: "voice".into(), count: 2 });
    s.inject(Fault::Arrive { queue_id: other.clone(), media_type: "voice".into(), count: 2 });
    let deadline = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < deadline {
        match next(&mut ws, deadline.saturating_duration_since(Instant::now())).await {
            Ev::Text(x) => assert!(is_heartbeat(&x), "only heartbeats while silenced: {x}"),
            Ev::Timeout => break,
            e => panic!("{e:?}"),
        }
    }
    assert!(s.stats().messages_silenced >= 1, "the model produced a message that was held back");
    s.inject(Fault::SilenceTopic { queue_id: q.clone(), on: false });
    s.inject(Fault::Arrive { queue_id: q.clone(), media_type: "voice".into(), count: 1 });
    wait_text(&mut ws, 3 * SECOND, "message after unsilence", |x| is_topic(x, &tp)).await;
    s.shutdown().await;
}

#[tokio::test]
async fn second_socket_kicks_the_first() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, mut ws1, _) = subscribed_socket(&c, &s, &t).await;
    let mut ws2 = connect(ch["connectUri"].as_str().unwrap()).await;
    match wait_end(&mut ws1, 3 * SECOND).await {
        Ev::Close(_) | Ev::Dropped(_) => {}
        e => panic!("{e:?}"),
    }
    wait_text(&mut ws2, 2 * SECOND, "heartbeat on the second socket", is_heartbeat).await;
    ping(&mut ws2).await;
    wait_text(&mut ws2, 2 * SECOND, "pong", |x| x.contains("pong")).await;
    s.shutdown().await;
}

#[tokio::test]
async fn upgrade_refused_for_unknown_channel_and_revoked_token() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let port = s.addr.port();
    assert_eq!(connect_status(&format!("ws://127.0.0.1:{port}/channels/streaming-0-unknown")).await, 404);
    let (ch, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    let id = ch["id"].as_str().unwrap().to_owned();
    // revoke_tokens: the socket gets v2.system.token_revoked.<id>, then a close; the channel's token is dead.
    s.inject(Fault::RevokeTokens);
    let m = wait_text(&mut ws, 2 * SECOND, "token_revoked", |x| x.contains("v2.system.token_revoked")).await;
    let v = parse(&m);
    assert_eq!(v["topicName"], format!("v2.system.token_revoked.{id}"));
    assert_eq!(v["eventBody"]["systemTopicType"], "token_revoked");
    assert_eq!(v["eventBody"]["channelId"], id.as_str());
    assert!(v["eventBody"]["reason"].is_string());
    let f = genesys_cloud_exporter::genesys::decode::decode_frame(&m).unwrap();
    assert!(matches!(
        f,
        genesys_cloud_exporter::genesys::decode::Frame::System {
            kind: genesys_cloud_exporter::genesys::decode::SystemKind::TokenRevoked,
            ..
        }
    ));
    assert!(matches!(wait_end(&mut ws, 2 * SECOND).await, Ev::Close(_)));
    assert_eq!(connect_status(ch["connectUri"].as_str().unwrap()).await, 401);
    // Resubscribing with a new token rebinds the channel to it: connecting works again.
    let t2 = token(&c, &s).await;
    let q = queue_ids(&s)[0].clone();
    assert_eq!(put_topics(&c, &s, &t2, &id, &[topic(&q)]).await.status, 200);
    connect(ch["connectUri"].as_str().unwrap()).await;
    // A plain GET at a connectUri is not an upgrade.
    let r = send(&c, Method::GET, &format!("http://127.0.0.1:{port}/channels/{id}"), None, None).await;
    assert_error_body(&r, 400, "bad.request");
    s.shutdown().await;
}

#[tokio::test]
async fn eviction_closes_the_socket_when_all_are_connected() {
    let mut cfg = small_cfg();
    cfg.max_channels = 2;
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch1, mut ws1, _) = subscribed_socket(&c, &s, &t).await;
    let (_ch2, mut ws2, _) = subscribed_socket(&c, &s, &t).await;
    create_channel(&c, &s, &t).await;
    let m = wait_text(&mut ws1, 2 * SECOND, "no_longer_subscribed", |x| x.contains("no_longer_subscribed")).await;
    assert_eq!(parse(&m)["topicName"], format!("v2.system.no_longer_subscribed.{}", ch1["id"].as_str().unwrap()));
    assert!(matches!(wait_end(&mut ws1, 2 * SECOND).await, Ev::Close(_)));
    assert_eq!(connect_status(ch1["connectUri"].as_str().unwrap()).await, 404);
    wait_text(&mut ws2, 2 * SECOND, "heartbeat on the survivor", is_heartbeat).await;
    s.shutdown().await;
}

#[tokio::test]
async fn fault_drop_sockets_then_reconnect() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    inject_http(&c, &s, json!({"kind": "drop_sockets"})).await;
    match wait_end(&mut ws, 2 * SECOND).await {
        Ev::Dropped(_) => {}
        e => panic!("dropped without a close frame, got {e:?}"),
    }
    let mut ws = connect(ch["connectUri"].as_str().unwrap()).await;
    wait_text(&mut ws, 2 * SECOND, "heartbeat after reconnect", is_heartbeat).await;
    s.shutdown().await;
}

#[tokio::test]
async fn fault_stall_sockets_sends_nothing_but_keeps_tcp() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, mut ws, q) = subscribed_socket(&c, &s, &t).await;
    wait_text(&mut ws, 2 * SECOND, "heartbeat", is_heartbeat).await;
    s.inject(Fault::StallSockets { channel: Some(ch["id"].as_str().unwrap().to_owned()), seconds: 1.2 });
    ping(&mut ws).await;
    s.inject(Fault::Arrive { queue_id: q, media_type: "voice".into(), count: 1 });
    let t0 = Instant::now();
    assert!(matches!(next(&mut ws, Duration::from_millis(1000)).await, Ev::Timeout), "no frame at all while stalled");
    // Frames resume after the stall on the same connection.
    wait_text(&mut ws, 2 * SECOND, "heartbeat after the stall", is_heartbeat).await;
    assert!(t0.elapsed() >= Duration::from_millis(1000));
    assert!(s.stats().frames_dropped_stalled >= 1 || s.stats().messages_sent == 0);
    s.shutdown().await;
}

#[tokio::test]
async fn fault_heartbeat_loss_messages_still_flow() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (_, mut ws, q) = subscribed_socket(&c, &s, &t).await;
    let tp = topic(&q);
    inject_http(&c, &s, json!({"kind": "heartbeat_loss", "seconds": 1.5})).await;
    ping(&mut ws).await;
    s.inject(Fault::Arrive { queue_id: q, media_type: "voice".into(), count: 1 });
    let deadline = Instant::now() + Duration::from_millis(1200);
    let mut got_topic = false;
    while Instant::now() < deadline {
        match next(&mut ws, deadline.saturating_duration_since(Instant::now())).await {
            Ev::Text(x) => {
                assert!(!is_heartbeat(&x) && !x.contains("pong"), "no heartbeat/pong during the loss: {x}");
                got_topic |= is_topic(&x, &tp);
            }
            Ev::Timeout => break,
            e => panic!("{e:?}"),
        }
    }
    assert!(got_topic, "topic messages flow during a heartbeat loss");
    wait_text(&mut ws, 2 * SECOND, "heartbeats come back", is_heartbeat).await;
    s.shutdown().await;
}

#[tokio::test]
async fn fault_socket_closing_then_close_after_grace() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    let t0 = Instant::now();
    inject_http(&c, &s, json!({"kind": "socket_closing", "grace_seconds": 0.6})).await;
    let m = wait_text(&mut ws, 2 * SECOND, "socket_closing", |x| x.contains("v2.system.socket_closing")).await;
    let v = parse(&m);
    assert_eq!(v["topicName"], "v2.system.socket_closing");
    assert!(v["eventBody"].is_object());
    assert!(matches!(
        genesys_cloud_exporter::genesys::decode::decode_frame(&m).unwrap(),
        genesys_cloud_exporter::genesys::decode::Frame::SocketClosing
    ));
    // Messages keep flowing during the grace; then the server closes.
    match wait_end(&mut ws, 3 * SECOND).await {
        Ev::Close(_) => {}
        e => panic!("{e:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(550), "closed after the grace: {:?}", t0.elapsed());
    // Same connectUri works: the channel survived.
    let mut ws = connect(ch["connectUri"].as_str().unwrap()).await;
    wait_text(&mut ws, 2 * SECOND, "heartbeat", is_heartbeat).await;
    s.shutdown().await;
}

#[tokio::test]
async fn fault_expire_channel() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    let id = ch["id"].as_str().unwrap().to_owned();
    inject_http(&c, &s, json!({"kind": "expire_channel", "channel": id})).await;
    assert!(matches!(wait_end(&mut ws, 2 * SECOND).await, Ev::Close(_)));
    let b = s.base_url();
    assert_eq!(
        send(&c, Method::HEAD, &format!("{b}/api/v2/notifications/channels/{id}"), Some(&t), None).await.status,
        404
    );
    let r = get(&c, &format!("{b}/api/v2/notifications/channels/{id}/subscriptions"), &t).await;
    assert_error_body(&r, 404, "resource.not.found");
    assert_eq!(connect_status(ch["connectUri"].as_str().unwrap()).await, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn channel_lifetime_expiry_and_extension() {
    let mut cfg = small_cfg();
    cfg.channel_lifetime = Duration::from_millis(800);
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, _ws, q) = subscribed_socket(&c, &s, &t).await;
    let id = ch["id"].as_str().unwrap().to_owned();
    let b = s.base_url();
    let url = format!("{b}/api/v2/notifications/channels/{id}");
    let head = || send(&c, Method::HEAD, &url, Some(&t), None);
    // Resubscribing extends the life.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r = put_topics(&c, &s, &t, &id, &[topic(&q)]).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(head().await.status, 200, "kept alive past its lifetime by resubscribing");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(head().await.status, 404, "expired");
    s.shutdown().await;
}

#[tokio::test]
async fn fault_malformed_and_oversized_frames() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (_, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    inject_http(&c, &s, json!({"kind": "malformed_frame"})).await;
    let m = wait_text(&mut ws, 2 * SECOND, "malformed", |x| !is_heartbeat(x)).await;
    assert!(serde_json::from_str::<Value>(&m).is_err(), "not JSON: {m}");
    let bytes = 2 * 1024 * 1024;
    inject_http(&c, &s, json!({"kind": "oversized_frame", "bytes": bytes})).await;
    let m = wait_text(&mut ws, 3 * SECOND, "oversized", |x| x.len() > 1000).await;
    assert_eq!(m.len(), bytes);
    assert!(serde_json::from_str::<Value>(&m).is_ok(), "valid JSON, just big");
    assert!(matches!(
        genesys_cloud_exporter::genesys::decode::decode_frame(&m),
        Err(genesys_cloud_exporter::genesys::decode::DecodeError::Oversized(_))
    ));
    s.shutdown().await;
}

#[tokio::test]
async fn fault_restart_drops_sockets() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let (ch, mut ws, _) = subscribed_socket(&c, &s, &t).await;
    s.inject(Fault::Restart);
    assert!(matches!(wait_end(&mut ws, 2 * SECOND).await, Ev::Dropped(_)));
    assert_eq!(connect_status(ch["connectUri"].as_str().unwrap()).await, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn scenario_steps_apply_at_their_times() {
    let mut cfg = small_cfg();
    cfg.scenario = Some(Scenario {
        steps: vec![
            ScenarioStep { at: 0.4, fault: Fault::AddQueue { name: "From Scenario".into(), division: None } },
            ScenarioStep { at: 0.8, fault: Fault::Pause },
        ],
    });
    let t0 = Instant::now();
    let s = start(cfg).await;
    assert!(!s.truth().queues.iter().any(|q| q.name == "From Scenario"), "not before its time");
    let deadline = Instant::now() + 3 * SECOND;
    while !s.truth().queues.iter().any(|q| q.name == "From Scenario") {
        assert!(Instant::now() < deadline, "scenario step applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t0.elapsed() >= Duration::from_millis(380), "{:?}", t0.elapsed());
    while !s.stats().paused {
        assert!(Instant::now() < deadline, "second step applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t0.elapsed() >= Duration::from_millis(780));
    assert_eq!(s.stats().faults.get("add_queue"), Some(&1));
    s.shutdown().await;
}

#[tokio::test]
async fn slow_socket_is_closed_not_waited_for() {
    let mut cfg = small_cfg();
    cfg.socket_queue = 2;
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let qs = queue_ids(&s);
    assert!(qs.len() >= 3);
    let ch = create_channel(&c, &s, &t).await;
    let topics: Vec<String> = qs.iter().map(|q| topic(q)).collect();
    put_topics(&c, &s, &t, ch["id"].as_str().unwrap(), &topics).await;
    let mut ws = connect(ch["connectUri"].as_str().unwrap()).await;
    // One round of messages for every queue is more than the socket's queue of 2 holds: the router does not wait,
    // it closes the socket (the test runtime is single-threaded, so the socket cannot drain in between).
    for q in &qs {
        s.inject(Fault::Arrive { queue_id: q.clone(), media_type: "voice".into(), count: 1 });
    }
    match wait_end(&mut ws, 3 * SECOND).await {
        Ev::Close(code) => assert_eq!(code, Some(1008)),
        e => panic!("{e:?}"),
    }
    assert_eq!(s.stats().sockets_closed_slow, 1);
    let before = s.truth().now_ms;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.truth().now_ms > before, "model keeps advancing");
    s.shutdown().await;
}
