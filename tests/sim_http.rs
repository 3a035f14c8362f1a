//! The simulator's REST surface over real HTTP with a plain client: OAuth, paging, presence definitions, queries,
//! channels, Genesys-shaped errors, the rate limit and the HTTP-visible faults. Shapes are checked field by field
//! against shared/genesys-api.md with `serde_json::Value`.

#[path = "common/sim.rs"]
mod sim;

use reqwest::Method;
use serde_json::{json, Value};
use sim::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn token_good_and_bad_credentials() {
    let s = start(small_cfg()).await;
    let c = http();
    let r = login(&c, &s.base_url(), "sim-client", "sim-secret").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let o = v.as_object().unwrap();
    assert!(o["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(o["token_type"].as_str().map(str::to_lowercase).as_deref(), Some("bearer"));
    let exp = o["expires_in"].as_u64().expect("expires_in is an integer");
    assert!((86_000..=86_400).contains(&exp), "24 h at speed 1: {exp}");
    assert!(r.header("inin-correlation-id").is_some());

    for (id, secret) in [("sim-client", "wrong"), ("nobody", "sim-secret")] {
        let r = login(&c, &s.base_url(), id, secret).await;
        assert_eq!(r.status, 401);
        let v = r.json();
        assert_eq!(v["error"], "invalid_client");
        assert!(v["description"].is_string());
    }
    // Not the client-credentials grant: 400 with an OAuth error body.
    let r = c
        .post(format!("{}/oauth/token", s.base_url()))
        .basic_auth("sim-client", Some("sim-secret"))
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    s.shutdown().await;
}

#[tokio::test]
async fn token_lifetime_is_divided_by_speed() {
    let mut cfg = small_cfg();
    cfg.speed = 100.0;
    cfg.token_lifetime = Duration::from_secs(3600);
    let s = start(cfg).await;
    let r = login(&http(), &s.base_url(), "sim-client", "sim-secret").await;
    assert_eq!(r.json()["expires_in"], 36);
    s.shutdown().await;
}

#[tokio::test]
async fn expired_token_gets_401() {
    let mut cfg = small_cfg();
    cfg.token_lifetime = Duration::from_secs(1);
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let url = format!("{}/api/v2/routing/queues", s.base_url());
    assert_eq!(get(&c, &url, &t).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_error_body(&get(&c, &url, &t).await, 401, "bad.credentials");
    s.shutdown().await;
}

#[tokio::test]
async fn queue_paging_follows_next_uri() {
    let mut cfg = small_cfg();
    cfg.model.queues = 7;
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let truth_ids: Vec<String> = queue_ids(&s);
    let total = truth_ids.len();
    assert!(total >= 3, "need a few queues to page");
    let mut path = "/api/v2/routing/queues?pageSize=2&pageNumber=1".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = get(&c, &format!("{}{path}", s.base_url()), &t).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_rate_headers(&r);
        let v = r.json();
        pages += 1;
        assert_eq!(v["pageSize"], 2);
        assert_eq!(v["pageNumber"], pages);
        assert_eq!(v["total"], total);
        assert_eq!(v["pageCount"], total.div_ceil(2));
        for k in ["firstUri", "lastUri", "selfUri"] {
            assert!(v[k].as_str().is_some_and(|u| u.starts_with("/api/v2/routing/queues?")), "{k}: {v}");
        }
        if pages == 1 {
            assert!(v.get("previousUri").is_none(), "no previousUri on the first page");
        } else {
            assert!(v["previousUri"].is_string());
        }
        let ents = v["entities"].as_array().unwrap();
        assert!(ents.len() <= 2);
        for q in ents {
            assert!(q["id"].is_string() && q["name"].is_string(), "{q}");
            if let Some(d) = q.get("division") {
                assert!(d["id"].is_string(), "division.id: {d}");
            }
            if let Some(ms) = q.get("mediaSettings") {
                for (_, m) in ms.as_object().unwrap() {
                    if let Some(sl) = m.get("serviceLevel") {
                        assert!(sl["percentage"].is_number() && sl["durationMs"].is_number(), "{sl}");
                    }
                }
            }
            seen.push(q["id"].as_str().unwrap().to_owned());
        }
        match v.get("nextUri") {
            Some(n) => path = n.as_str().expect("nextUri is a string").to_owned(),
            None => {
                assert_eq!(v["pageNumber"], v["pageCount"], "nextUri absent only on the last page");
                break;
            }
        }
        assert!(pages < 100);
    }
    let mut a = seen.clone();
    a.sort();
    let mut b = truth_ids;
    b.sort();
    assert_eq!(a, b, "paging lists every queue once");
    // Default page size 25, and a page past the end is empty.
    let v = get(&c, &format!("{}/api/v2/routing/queues", s.base_url()), &t).await.json();
    assert_eq!(v["pageSize"], 25);
    assert_eq!(v["pageNumber"], 1);
    let v = get(&c, &format!("{}/api/v2/routing/queues?pageSize=2&pageNumber=99", s.base_url()), &t).await.json();
    assert_eq!(v["entities"].as_array().unwrap().len(), 0);
    assert!(v.get("nextUri").is_none());
    // Bad paging: Genesys-shaped 400.
    let r = get(&c, &format!("{}/api/v2/routing/queues?pageSize=abc", s.base_url()), &t).await;
    assert_error_body(&r, 400, "bad.request");
    s.shutdown().await;
}

#[tokio::test]
async fn presence_definitions_both_endpoints() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let r = get(&c, &format!("{}/api/v2/presence/definitions", s.base_url()), &t).await;
    assert_eq!(r.status, 200);
    assert_rate_headers(&r);
    let v = r.json();
    let ents = v["entities"].as_array().expect("entities");
    assert_eq!(v["total"], ents.len());
    assert_eq!(v["selfUri"], "/api/v2/presence/definitions");
    let truth = serde_json::to_value(s.truth()).unwrap();
    let truth_ids: Vec<&str> =
        truth["presence_definitions"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    for d in ents {
        assert!(d["id"].is_string());
        assert!(truth_ids.contains(&d["id"].as_str().unwrap()), "listed definitions are the truth's");
        assert!(d["languageLabels"].is_object(), "{d}");
        if let Some(sp) = d.get("systemPresence") {
            assert!(sp.is_string());
        }
        if let Some(k) = d.get("type") {
            assert!(k == "System" || k == "User", "{d}");
        }
    }
    let r = get(&c, &format!("{}/api/v2/presencedefinitions?pageSize=2", s.base_url()), &t).await;
    assert_eq!(r.status, 200);
    let p = r.json();
    assert_eq!(p["total"], ents.len());
    assert_eq!(p["pageSize"], 2);
    assert!(p["pageCount"].is_u64() && p["entities"].is_array() && p["selfUri"].is_string());
    s.shutdown().await;
}

#[tokio::test]
async fn observations_and_aggregates_queries() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let q = queue_ids(&s)[0].clone();
    let url = format!("{}/api/v2/analytics/queues/observations/query", s.base_url());
    let body = json!({
        "filter": {"type": "or", "predicates": [{"type": "dimension", "dimension": "queueId", "operator": "matches", "value": q}]},
        "metrics": ["oWaiting", "oInteracting", "oUserRoutingStatuses", "oOnQueueUsers"],
        "detailMetrics": ["oWaiting"]
    });
    let r = send(&c, Method::POST, &url, Some(&t), Some(&body.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_rate_headers(&r);
    let v = r.json();
    if let Some(m) = v.get("systemToOrganizationMappings") {
        for (_, ids) in m.as_object().unwrap() {
            assert!(ids.as_array().unwrap().iter().all(Value::is_string));
        }
    }
    for res in v["results"].as_array().expect("results") {
        assert_eq!(res["group"]["queueId"], q.as_str(), "{res}");
        for d in res["data"].as_array().expect("data") {
            assert!(d["metric"].is_string(), "{d}");
            assert!(d["stats"].is_object(), "{d}");
            if let Some(x) = d.get("qualifier") {
                assert!(x.is_string());
            }
            if let Some(x) = d.get("truncated") {
                assert!(x.is_boolean());
            }
            if let Some(obs) = d.get("observations") {
                for o in obs.as_array().unwrap() {
                    assert!(o["observationDate"].is_string(), "{o}");
                }
            }
        }
    }
    // The query's shape problems are Genesys 400s.
    for bad in [
        "{not json".to_owned(),
        json!({"metrics": ["oWaiting"]}).to_string(), // no filter
        json!({"filter": {"type": "or", "predicates":
            (0..201).map(|i| json!({"dimension": "queueId", "value": format!("q{i}")})).collect::<Vec<_>>()},
            "metrics": ["oWaiting"]})
        .to_string(),
    ] {
        let r = send(&c, Method::POST, &url, Some(&t), Some(&bad)).await;
        assert_error_body(&r, 400, "bad.request");
    }

    let url = format!("{}/api/v2/analytics/conversations/aggregates/query", s.base_url());
    let now = chrono::Utc::now();
    let interval = format!(
        "{}/{}",
        (now - chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        (now + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    let body = json!({"interval": interval, "groupBy": ["queueId", "mediaType"],
        "filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": q}]},
        "metrics": ["nOffered", "tAnswered", "tAbandon", "oServiceLevel"]});
    let r = send(&c, Method::POST, &url, Some(&t), Some(&body.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    for res in v["results"].as_array().expect("results") {
        assert!(res["group"].is_object());
        for d in res["data"].as_array().unwrap() {
            assert!(d["interval"].as_str().is_some_and(|i| i.contains('/')), "{d}");
            for m in d["metrics"].as_array().unwrap() {
                assert!(m["metric"].is_string() && m["stats"].is_object(), "{m}");
            }
        }
    }
    let r = send(
        &c,
        Method::POST,
        &url,
        Some(&t),
        Some(&json!({"interval": "yesterday", "metrics": ["nOffered"]}).to_string()),
    )
    .await;
    assert_error_body(&r, 400, "bad.request");
    s.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_genesys_errors() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let b = s.base_url();
    // No bearer / bad bearer.
    let r = send(&c, Method::GET, &format!("{b}/api/v2/routing/queues"), None, None).await;
    assert_error_body(&r, 401, "authentication.required");
    assert_rate_headers(&r);
    let r = get(&c, &format!("{b}/api/v2/routing/queues"), "not-a-token").await;
    assert_error_body(&r, 401, "bad.credentials");
    // Unknown paths, with and without the API prefix.
    let r = get(&c, &format!("{b}/api/v2/nothing/here"), &t).await;
    assert_error_body(&r, 404, "resource.not.found");
    let r = get(&c, &format!("{b}/nothing"), &t).await;
    assert_error_body(&r, 404, "resource.not.found");
    // Wrong method.
    let r = send(&c, Method::DELETE, &format!("{b}/api/v2/routing/queues"), Some(&t), None).await;
    assert_eq!(r.status, 405);
    assert_error_body(&r, 405, "method.not.allowed");
    // Bad JSON bodies.
    let ch = create_channel(&c, &s, &t).await;
    let id = ch["id"].as_str().unwrap();
    let url = format!("{b}/api/v2/notifications/channels/{id}/subscriptions");
    for body in ["{oops", r#"{"id": "not a list"}"#] {
        let r = send(&c, Method::PUT, &url, Some(&t), Some(body)).await;
        assert_error_body(&r, 400, "bad.request");
    }
    // Unknown channel.
    let r = get(&c, &format!("{b}/api/v2/notifications/channels/streaming-0-nope/subscriptions"), &t).await;
    assert_error_body(&r, 404, "resource.not.found");
    // Too large.
    let big = "x".repeat(600_000);
    let r = send(&c, Method::PUT, &url, Some(&t), Some(&big)).await;
    assert_error_body(&r, 413, "request.entity.too.large");
    // Bad fault.
    let r = inject_http(&c, &s, json!({"kind": "no_such_fault"})).await;
    assert_error_body(&r, 400, "bad.request");
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limit_429_after_300_calls() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let url = format!("{}/api/v2/routing/queues?pageSize=1", s.base_url());
    for i in 1..=300u64 {
        let r = get(&c, &url, &t).await;
        assert_eq!(r.status, 200, "call {i}: {}", r.text);
        let (count, allowed, reset) = assert_rate_headers(&r);
        assert_eq!((count, allowed), (i, 300));
        assert!((1..=60).contains(&reset));
    }
    let r = get(&c, &url, &t).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let v = r.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    let mut want = vec!["code", "contextId", "details", "errors", "message", "status"];
    want.sort();
    assert_eq!(keys, want, "exactly the §7 body: {v}");
    assert_eq!(v["code"], "too.many.requests.retry.after");
    assert_eq!(v["status"], 429);
    assert_eq!(v["message"], format!("Rate limit exceeded the maximum. Retry the request in [{retry}] seconds"));
    assert_eq!(v["contextId"], r.header("inin-correlation-id").unwrap());
    assert_eq!(v["details"], json!([]));
    assert_eq!(v["errors"], json!([]));
    // Per token: a second token is not limited.
    let t2 = token(&c, &s).await;
    assert_eq!(get(&c, &url, &t2).await.status, 200);
    assert!(s.stats().responses_429 >= 1);
    s.shutdown().await;
}

#[tokio::test]
async fn faults_error_burst_storm_latency() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let url = format!("{}/api/v2/routing/queues", s.base_url());
    let r = inject_http(&c, &s, json!({"kind": "error_burst", "count": 2, "status": 503})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..2 {
        let r = get(&c, &url, &t).await;
        assert_error_body(&r, 503, "service.unavailable");
        assert_rate_headers(&r);
    }
    assert_eq!(get(&c, &url, &t).await.status, 200);

    s.inject(genesys_cloud_exporter::sim::Fault::RateLimitStorm { seconds: 1.5 });
    let r = get(&c, &url, &t).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    assert_eq!(r.json()["code"], "too.many.requests.retry.after");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(get(&c, &url, &t).await.status, 200);

    inject_http(&c, &s, json!({"kind": "latency", "ms": 300, "seconds": 10})).await;
    let started = Instant::now();
    assert_eq!(get(&c, &url, &t).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    inject_http(&c, &s, json!({"kind": "latency", "ms": 0})).await;
    let started = Instant::now();
    get(&c, &url, &t).await;
    assert!(started.elapsed() < Duration::from_millis(250));
    let st = s.stats();
    assert_eq!(st.faults.get("latency"), Some(&2));
    assert!(st.responses_5xx >= 2);
    s.shutdown().await;
}

#[tokio::test]
async fn faults_queue_changes_and_presence() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let list = |c: reqwest::Client, b: String, t: String| async move {
        get(&c, &format!("{b}/api/v2/routing/queues?pageSize=500"), &t).await.json()["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["id"].as_str().unwrap().to_owned(), q["name"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let r = inject_http(&c, &s, json!({"kind": "add_queue", "name": "Added By Fault"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_id = r.json()["detail"]["queue_id"].as_str().expect("queue_id").to_owned();
    let qs = list(c.clone(), s.base_url(), t.clone()).await;
    assert!(qs.contains(&(new_id.clone(), "Added By Fault".to_owned())), "{qs:?}");
    assert!(s.truth().queues.iter().any(|q| q.id == new_id && q.name == "Added By Fault"));

    inject_http(&c, &s, json!({"kind": "rename_queue", "id": new_id, "name": "Renamed"})).await;
    let qs = list(c.clone(), s.base_url(), t.clone()).await;
    assert!(qs.contains(&(new_id.clone(), "Renamed".to_owned())));

    inject_http(&c, &s, json!({"kind": "remove_queue", "id": new_id})).await;
    let qs = list(c.clone(), s.base_url(), t.clone()).await;
    assert!(!qs.iter().any(|(id, _)| *id == new_id));
    assert!(!s.truth().queues.iter().any(|q| q.id == new_id));
    // A subscription to the removed queue's topic is rejected.
    let ch = create_channel(&c, &s, &t).await;
    let r = put_topics(&c, &s, &t, ch["id"].as_str().unwrap(), &[topic(&new_id)]).await;
    assert_eq!(r.json()["entities"][0]["state"], "Rejected");
    // Removing it again: the admin API says it does not exist.
    let r = inject_http(&c, &s, json!({"kind": "remove_queue", "id": new_id})).await;
    assert_eq!(r.status, 404);

    let r =
        inject_http(&c, &s, json!({"kind": "add_presence_definition", "label": "Coffee", "system_presence": "Break"}))
            .await;
    assert_eq!(r.status, 200);
    let pid = r.json()["detail"]["presence_definition_id"].as_str().expect("id").to_owned();
    let v = get(&c, &format!("{}/api/v2/presence/definitions", s.base_url()), &t).await.json();
    let ents = v["entities"].as_array().unwrap();
    // (The contract stub lists no definitions; the model lists them all, the new one included.)
    if !ents.is_empty() {
        assert!(ents.iter().any(|d| d["id"] == pid.as_str()), "new definition listed: {v}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn faults_pause_resume_and_admin_endpoints() {
    let mut cfg = small_cfg();
    cfg.speed = 50.0;
    let s = start(cfg).await;
    let c = http();
    inject_http(&c, &s, json!({"kind": "pause"})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let a = s.truth().now_ms;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = send(&c, Method::GET, &format!("{}/sim/truth", s.base_url()), None, None).await;
    assert_eq!(r.status, 200);
    let truth = r.json();
    assert_eq!(truth["now_ms"], a, "paused: model time holds still");
    for k in ["queues", "presence_definitions"] {
        assert!(truth[k].is_array(), "{k}");
    }
    for q in truth["queues"].as_array().unwrap() {
        for k in ["id", "name", "division_id", "division_name"] {
            assert!(q[k].is_string(), "{k}: {q}");
        }
        for k in ["members", "active"] {
            assert!(q[k].is_u64(), "{k}");
        }
        for k in ["routing_statuses", "on_queue", "presences", "off_queue", "media"] {
            assert!(q[k].is_object(), "{k}");
        }
    }
    inject_http(&c, &s, json!({"kind": "resume"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.truth().now_ms >= a + 5_000, "speed 50: 300 ms real is 15 s model");
    let r = send(&c, Method::GET, &format!("{}/sim/stats", s.base_url()), None, None).await;
    let st = r.json();
    for k in ["requests", "responses_429", "messages_sent", "sockets_open", "channels", "heartbeats_sent"] {
        assert!(st[k].is_u64(), "{k}: {st}");
    }
    assert_eq!(st["faults"]["pause"], 1);
    assert_eq!(st["faults"]["resume"], 1);
    assert_eq!(st["paused"], false);
    // A list of faults is accepted too.
    let r =
        inject_http(&c, &s, json!([{"kind": "set_arrivals", "per_hour": 0}, {"kind": "heartbeat_loss", "seconds": 0}]))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().is_array());
    s.shutdown().await;
}

#[tokio::test]
async fn faults_revoke_and_restart_invalidate_tokens() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let url = format!("{}/api/v2/routing/queues", s.base_url());
    assert_eq!(get(&c, &url, &t).await.status, 200);
    inject_http(&c, &s, json!({"kind": "revoke_tokens"})).await;
    assert_error_body(&get(&c, &url, &t).await, 401, "bad.credentials");
    let t2 = token(&c, &s).await;
    assert_eq!(get(&c, &url, &t2).await.status, 200);

    let ch = create_channel(&c, &s, &t2).await;
    let id = ch["id"].as_str().unwrap().to_owned();
    inject_http(&c, &s, json!({"kind": "restart"})).await;
    assert_error_body(&get(&c, &url, &t2).await, 401, "bad.credentials");
    let t3 = token(&c, &s).await;
    let r =
        send(&c, Method::HEAD, &format!("{}/api/v2/notifications/channels/{id}", s.base_url()), Some(&t3), None).await;
    assert_eq!(r.status, 404, "restart drops every channel");
    s.shutdown().await;
}

#[tokio::test]
async fn channel_create_list_head_shapes() {
    let mut cfg = small_cfg();
    cfg.speed = 10.0;
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let r = send(&c, Method::POST, &format!("{}/api/v2/notifications/channels", s.base_url()), Some(&t), None).await;
    assert_eq!(r.status, 200);
    assert_rate_headers(&r);
    let ch = r.json();
    let mut keys: Vec<&String> = ch.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["connectUri", "expires", "id"], "Channel{{connectUri,id,expires}}: {ch}");
    let id = ch["id"].as_str().unwrap();
    let port = s.addr.port();
    assert_eq!(ch["connectUri"], format!("ws://127.0.0.1:{port}/channels/{id}"));
    let exp =
        chrono::DateTime::parse_from_rfc3339(ch["expires"].as_str().unwrap()).expect("ISO-8601").timestamp_millis();
    let want = chrono::Utc::now().timestamp_millis() + 86_400_000 / 10;
    assert!((exp - want).abs() < 60_000, "expires = now + 24 h / speed");

    let l = get(&c, &format!("{}/api/v2/notifications/channels", s.base_url()), &t).await.json();
    let ents = l["entities"].as_array().unwrap();
    assert_eq!(ents.len(), 1);
    assert_eq!(ents[0]["id"], id);
    // Another token's channels are listed only with includechannels=oauthclient.
    let t2 = token(&c, &s).await;
    let l = get(&c, &format!("{}/api/v2/notifications/channels", s.base_url()), &t2).await.json();
    assert_eq!(l["entities"].as_array().unwrap().len(), 0);
    let l = get(&c, &format!("{}/api/v2/notifications/channels?includechannels=oauthclient", s.base_url()), &t2)
        .await
        .json();
    assert_eq!(l["entities"].as_array().unwrap().len(), 1);

    let head = |path: String| {
        let c = c.clone();
        let t = t.clone();
        async move { send(&c, Method::HEAD, &path, Some(&t), None).await.status }
    };
    assert_eq!(head(format!("{}/api/v2/notifications/channels/{id}", s.base_url())).await, 200);
    assert_eq!(head(format!("{}/api/v2/notifications/channels/streaming-0-none", s.base_url())).await, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn subscriptions_replace_add_list_delete_and_limits() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let ch = create_channel(&c, &s, &t).await;
    let id = ch["id"].as_str().unwrap();
    let qs = queue_ids(&s);
    let url = format!("{}/api/v2/notifications/channels/{id}/subscriptions", s.base_url());
    let r = put_topics(&c, &s, &t, id, &[topic(&qs[0]), "v2.users.someone.presence".to_owned()]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let ents = v["entities"].as_array().unwrap();
    let find = |tid: &str| ents.iter().find(|e| e["id"] == tid).cloned().unwrap_or_else(|| panic!("{tid} in {v}"));
    assert_eq!(find(&topic(&qs[0]))["state"], "Permitted");
    let rej = find("v2.users.someone.presence");
    assert_eq!(rej["state"], "Rejected");
    assert!(rej["rejectionReason"].is_string());
    for e in ents {
        for (k, val) in e.as_object().unwrap() {
            match k.as_str() {
                "id" | "state" | "rejectionReason" | "selfUri" => assert!(val.is_string(), "{k}"),
                "missingPermissions" => assert!(val.as_array().unwrap().iter().all(Value::is_string)),
                other => panic!("undocumented ChannelTopic key {other}"),
            }
        }
    }
    // POST adds.
    let body = json!([{"id": topic(&qs[1])}]).to_string();
    let r = send(&c, Method::POST, &url, Some(&t), Some(&body)).await;
    assert_eq!(r.status, 200);
    let listed = get(&c, &url, &t).await.json();
    let ids: Vec<&str> = listed["entities"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [topic(&qs[0]), topic(&qs[1])]);
    assert!(listed["entities"].as_array().unwrap().iter().all(|e| e["state"] == "Permitted"));
    // PUT replaces.
    put_topics(&c, &s, &t, id, &[topic(&qs[1])]).await;
    let listed = get(&c, &url, &t).await.json();
    assert_eq!(listed["entities"].as_array().unwrap().len(), 1);
    // DELETE clears.
    let r = send(&c, Method::DELETE, &url, Some(&t), None).await;
    assert!(r.status == 200 || r.status == 204);
    assert_eq!(get(&c, &url, &t).await.json()["entities"], json!([]));

    // 1000 topics are fine, 1001 are a 400 and change nothing.
    let mut many: Vec<String> = (0..999).map(|i| format!("v2.analytics.queues.nope-{i}.observations")).collect();
    many.push(topic(&qs[0]));
    assert_eq!(put_topics(&c, &s, &t, id, &many).await.status, 200);
    many.push(topic(&qs[1]));
    let r = put_topics(&c, &s, &t, id, &many).await;
    assert_error_body(&r, 400, "bad.request");
    let listed = get(&c, &url, &t).await.json();
    assert_eq!(listed["entities"].as_array().unwrap().len(), 1, "only the permitted topic of the 1000");
    // POST past the limit too.
    let r = send(&c, Method::POST, &url, Some(&t), Some(&json!([{"id": topic(&qs[1])}]).to_string())).await;
    assert_eq!(r.status, 200, "1000 requested + 1 is checked against the channel's topics, of which 1 is held");
    s.shutdown().await;
}

#[tokio::test]
async fn forbid_topic_403_or_rejected() {
    let mut cfg = small_cfg();
    cfg.model.queues = 3;
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let qs = queue_ids(&s);
    let ch = create_channel(&c, &s, &t).await;
    let id = ch["id"].as_str().unwrap();
    put_topics(&c, &s, &t, id, &[topic(&qs[0])]).await;
    inject_http(&c, &s, json!({"kind": "forbid_topic", "queue_id": qs[1]})).await;
    let r = put_topics(&c, &s, &t, id, &[topic(&qs[2]), topic(&qs[1])]).await;
    assert_eq!(r.status, 403);
    assert_error_body(&r, 403, "missing.permissions");
    let url = format!("{}/api/v2/notifications/channels/{id}/subscriptions", s.base_url());
    let listed = get(&c, &url, &t).await.json();
    assert_eq!(listed["entities"][0]["id"], topic(&qs[0]), "a 403 changes nothing");
    assert_eq!(listed["entities"].as_array().unwrap().len(), 1);

    let body = json!([{"id": topic(&qs[2])}, {"id": topic(&qs[1])}]).to_string();
    let r = send(&c, Method::PUT, &format!("{url}?ignoreErrors=true"), Some(&t), Some(&body)).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let e = v["entities"].as_array().unwrap();
    let f = e.iter().find(|x| x["id"] == topic(&qs[1])).unwrap();
    assert_eq!(f["state"], "Rejected");
    assert_eq!(f["missingPermissions"], json!(["analytics:queueObservation:view"]));
    assert!(f["rejectionReason"].is_string());
    assert_eq!(e.iter().find(|x| x["id"] == topic(&qs[2])).unwrap()["state"], "Permitted");
    s.shutdown().await;
}

#[tokio::test]
async fn forbidden_queue_ids_from_config() {
    let mut cfg = small_cfg();
    cfg.model.queues = 2;
    let probe = start(cfg.clone()).await;
    let qs = queue_ids(&probe);
    probe.shutdown().await;
    cfg.forbidden_queue_ids = vec![qs[0].clone()];
    let s = start(cfg).await;
    let c = http();
    let t = token(&c, &s).await;
    let ch = create_channel(&c, &s, &t).await;
    let r = put_topics(&c, &s, &t, ch["id"].as_str().unwrap(), &[topic(&qs[0])]).await;
    assert_eq!(r.status, 403);
    s.shutdown().await;
}

#[tokio::test]
async fn eviction_of_the_21st_channel() {
    let s = start(small_cfg()).await;
    let c = http();
    let t = token(&c, &s).await;
    let mut ids = Vec::new();
    let mut first = None;
    for i in 0..20 {
        let ch = create_channel(&c, &s, &t).await;
        if i == 0 {
            first = Some(ch.clone());
        }
        ids.push(ch["id"].as_str().unwrap().to_owned());
    }
    // The oldest channel has a socket, so the oldest *unconnected* one (the second) goes.
    let mut ws = connect(first.unwrap()["connectUri"].as_str().unwrap()).await;
    let head = |id: String| {
        let c = c.clone();
        let t = t.clone();
        let b = s.base_url();
        async move {
            send(&c, Method::HEAD, &format!("{b}/api/v2/notifications/channels/{id}"), Some(&t), None).await.status
        }
    };
    create_channel(&c, &s, &t).await;
    assert_eq!(head(ids[0].clone()).await, 200, "connected channel survives");
    assert_eq!(head(ids[1].clone()).await, 404, "oldest unconnected channel evicted");
    assert_eq!(head(ids[2].clone()).await, 200);
    let l = get(&c, &format!("{}/api/v2/notifications/channels", s.base_url()), &t).await.json();
    assert_eq!(l["entities"].as_array().unwrap().len(), 20);
    assert!(matches!(next(&mut ws, Duration::from_millis(500)).await, Ev::Text(_) | Ev::Timeout), "socket untouched");
    assert_eq!(s.stats().channels_evicted, 1);
    s.shutdown().await;
}
