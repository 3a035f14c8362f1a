//! No secret anywhere: the exporter binary at trace level (its own flag and RUST_LOG=trace, logfmt and JSON)
//! against a simulator with a known client secret, through a wrong secret (401 at login), token revocation, 401s
//! from the API, a refused config reload and a config file with a syntax error next to the secret. Searched: stdout
//! and stderr, /metrics, /api/v1/snapshot, /status, the landing page, health pages, the reload error, the Debug
//! and Display of every config and option type, and panic messages. Searched for: the client secret (from the
//! environment and from the file), every access token the simulator issued, and an OTLP header token.

mod support;

use genesys_cloud_exporter::app::ExporterOptions;
use genesys_cloud_exporter::config::Config;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::bin::{sim_env, Proc};
use support::fault;

const SECRET: &str = "s3cr3t-7f1c9e0b-never-print-me";
const WRONG_SECRET: &str = "wr0ng-5ecret-d41d8cd9-never-print";
const FILE_SECRET: &str = "f1le-secret-8e2a77c3-never-print";
const HEADER_TOKEN: &str = "otlp-hdr-token-c0ffee42-never-print";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn private_file(dir: &Dir, name: &str, text: &str) -> String {
    let p = dir.0.join(name);
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p.to_str().unwrap().to_owned()
}

/// A config holding every kind of secret; `extra` is appended (a bad value, a syntax error).
fn config_text(extra: &str) -> String {
    // Port 9 (discard) on loopback: nothing listens, so an OTLP push fails and its error path runs too.
    format!(
        "genesys:\n  client_secret: {FILE_SECRET}\notlp:\n  endpoint: http://127.0.0.1:9\n  interval: 1s\n  timeout: 500ms\n  headers:\n    authorization: \"Bearer {HEADER_TOKEN}\"\nfreshness:\n  heartbeat_timeout: 3s\n  poll_interval: 1s\nnotifications:\n  ping_interval: 1s\n{extra}"
    )
}

fn assert_clean(what: &str, text: &str, tokens: &[String]) {
    for (name, s) in [
        ("client secret", SECRET),
        ("wrong secret", WRONG_SECRET),
        ("file secret", FILE_SECRET),
        ("OTLP header", HEADER_TOKEN),
    ] {
        assert!(!text.contains(s), "the {name} appears in {what}");
    }
    for t in tokens {
        assert!(!text.contains(t.as_str()), "an access token appears in {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_anywhere_even_at_trace_level_and_on_errors() {
    let mut cfg = support::org(10, 600.0);
    cfg.client_secret = SECRET.to_owned();
    let sim = support::start_sim(cfg).await;
    let dir = Dir(std::env::temp_dir().join(format!("gce-secrets-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = private_file(&dir, "config.yaml", &config_text(""));
    let mut texts: Vec<(String, String)> = Vec::new();

    // 1. A wrong secret: the simulator's token endpoint answers 401 and the exporter gives up, exit 1.
    let mut env = sim_env(&sim.base_url(), WRONG_SECRET);
    env.push(("RUST_LOG".into(), "trace".into()));
    let mut p = Proc::spawn(&["run", "--web.listen-address", "127.0.0.1:0", "--config.file", &file], &env);
    let (status, _) = p.wait_exit(Duration::from_secs(30)).expect("a wrong secret ends the run");
    assert_eq!(status.code(), Some(1), "{}", p.stderr());
    assert!(p.stderr().contains("401") || p.stderr().to_lowercase().contains("authenticat"), "{}", p.stderr());
    texts.push(("output with a wrong secret".into(), p.stderr() + &p.stdout()));

    // 2. A syntax error next to the secret in the file: exit 2, the message quotes no line of the file.
    let broken = private_file(&dir, "broken.yaml", &config_text("api:\n  budget_share: [\n"));
    for args in [&["run", "--config.file", &broken][..], &["check", "--config.file", &broken, "--output=json"][..]] {
        let mut p = Proc::spawn(args, &sim_env(&sim.base_url(), SECRET));
        let (status, _) = p.wait_exit(Duration::from_secs(30)).expect("a broken file stops it");
        assert_eq!(status.code(), Some(2), "{}", p.stderr());
        texts.push((format!("output of {args:?} with a broken file"), p.stderr() + &p.stdout()));
    }

    // 3. A healthy run at trace level, JSON logs, lifecycle on.
    let mut env = sim_env(&sim.base_url(), SECRET);
    env.push(("RUST_LOG".into(), "trace".into()));
    let mut p = Proc::spawn(
        &[
            "run",
            "--web.listen-address",
            "127.0.0.1:0",
            "--config.file",
            &file,
            "--log.level",
            "trace",
            "--log.format",
            "json",
            "--web.enable-lifecycle",
        ],
        &env,
    );
    let addr = p.listen_addr(Duration::from_secs(30));
    let http = reqwest::Client::new();
    let get = async |path: &str| http.get(format!("http://{addr}{path}")).send().await.unwrap().text().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get("/metrics").await.contains("genesys_queue_agents") {
        assert!(Instant::now() < deadline, "exporter never served queue metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = get("/metrics").await;
    // 401s from the API itself, then revoked tokens: a new login, a new channel, each answered 401 first.
    let before_4xx = sim.stats().responses_4xx;
    sim.inject(fault(serde_json::json!({"kind": "error_burst", "count": 5, "status": 401})));
    sim.inject(fault(serde_json::json!({"kind": "revoke_tokens"})));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.issued_tokens().len() < 2 || sim.stats().responses_4xx < before_4xx + 5 {
        assert!(Instant::now() < deadline, "no new login and 401s after the revocation: {:?}", sim.stats());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A refused reload: its error text is served to the client.
    std::fs::write(&file, config_text("api:\n  budget_share: 9\n")).unwrap();
    let r = http.post(format!("http://{addr}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    texts.push(("the /-/reload error".into(), r.text().await.unwrap()));
    for path in ["/metrics", "/api/v1/snapshot", "/status", "/", "/healthz", "/readyz"] {
        texts.push((path.into(), get(path).await));
    }
    texts.push(("/metrics before the faults".into(), first));
    p.signal("TERM");
    let (status, _) = p.wait_exit(Duration::from_secs(20)).expect("exits on SIGTERM");
    assert_eq!(status.code(), Some(0));
    let logs = p.stderr() + &p.stdout();
    assert!(logs.contains("\"level\":\"TRACE\"") || logs.contains("\"level\":\"DEBUG\""), "trace logging is on");
    assert!(logs.contains("401"), "the 401s were logged");
    texts.push(("trace logs".into(), logs));

    // 4. Debug and Display of what holds the secrets.
    let env_lookup = |k: &str| match k {
        "GENESYS_CLIENT_SECRET" => Some(SECRET.to_owned()),
        "GENESYS_CLIENT_ID" => Some("sim-client".to_owned()),
        _ => None,
    };
    let ok = private_file(&dir, "ok.yaml", &config_text(""));
    let config = Config::load(Some(std::path::Path::new(&ok)), &env_lookup).expect("loads");
    assert_eq!(config.client_secret().map(|s| s.expose()), Some(SECRET), "the secret is really in there");
    texts.push(("Debug of Config".into(), format!("{config:?} {config:#?}")));
    let opts = ExporterOptions::from_config(&config, genesys_cloud_exporter::app::shard(0, 1), "/metrics").unwrap();
    texts.push(("Debug of ExporterOptions".into(), format!("{opts:?} {opts:#?}")));
    let bad = private_file(&dir, "bad.yaml", &config_text("api:\n  budget_share: [\n"));
    let err = Config::load(Some(std::path::Path::new(&bad)), &env_lookup).expect_err("a syntax error");
    texts.push(("a config error".into(), format!("{err} {err:?} {:?}", err.problems())));

    // 5. Panics that format those values carry no secret either (there is no custom panic hook; the default one
    // prints exactly the payload).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let o = opts.clone();
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || panic!("options: {o:?}"))).expect_err("panicked");
    texts.push(("a panic message".into(), payload.downcast_ref::<String>().cloned().unwrap_or_default()));
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        Config::load(Some(std::path::Path::new(&bad)), &env_lookup).unwrap()
    }))
    .expect_err("panicked");
    texts.push(("an unwrap panic".into(), payload.downcast_ref::<String>().cloned().unwrap_or_default()));
    std::panic::set_hook(hook);

    let tokens = sim.issued_tokens();
    assert!(tokens.len() >= 2, "tokens were issued: {}", tokens.len());
    for (what, text) in &texts {
        assert!(!text.is_empty() || what == "/healthz", "{what} is empty: nothing was searched");
        assert_clean(what, text, &tokens);
    }
    sim.shutdown().await;
}
