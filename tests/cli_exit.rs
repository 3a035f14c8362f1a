//! The binary's command line and exit codes: a bad configuration or flag exits 2 with `config error: <field>: …
//! (fix: …)` before anything connects; `check --config-only` validates without Genesys; help and version; and no
//! secret ever reaches the output.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_genesys-cloud-exporter");
const SECRET: &str = "env-secret-3b9e1f";

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gce-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stand-in for Genesys that must never be contacted: a bound, never-accepting listener.
struct Tripwire(TcpListener);

impl Tripwire {
    fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Tripwire(l)
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    fn assert_untouched(&self) {
        match self.0.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("the exporter connected to the API ({peer}) despite a bad configuration"),
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Run the binary with exactly `env` (the test's own environment is not inherited) and a time limit.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // A binary that started serving instead of failing would never exit: kill it after a generous limit.
    let deadline = started + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (out, started.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn creds(api: &str) -> Vec<(&str, &str)> {
    vec![
        ("GENESYS_CLIENT_ID", "client"),
        ("GENESYS_CLIENT_SECRET", SECRET),
        ("GENESYS_API_BASE_URL", api),
        ("GENESYS_LOGIN_BASE_URL", api),
    ]
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bad_configuration_exits_2_before_connecting() {
    // (file, field named in the error, words of the fix)
    let cases = [
        ("freshnes:\n  max_age: 3m\n", "freshnes.max_age", "rename `freshnes.max_age` to `freshness.max_age`"),
        ("freshness:\n  poll_interval: 10 seconds\n", "freshness.poll_interval", "`45s`"),
        ("freshness:\n  max_age: 180\n", "freshness.max_age", "`180s`"),
        ("api:\n  budget_share: 2\n", "api.budget_share", "0.5"),
        ("histograms:\n  wait_buckets: [5, 30, 10]\n", "histograms.wait_buckets", "increasing order"),
        ("otlp:\n  endpoint: 127.0.0.1:4318\n", "otlp.endpoint", "http://127.0.0.1:4318"),
        ("otlp:\n  protocol: thrift\n", "otlp.protocol", "`grpc`"),
        ("notifications:\n  topics_per_channel: 5000\n", "notifications.topics_per_channel", "1 to 1000"),
        ("freshness:\n  heartbeat_timeout: 20s\n", "freshness.heartbeat_timeout", "notifications.ping_interval"),
    ];
    let tmp = TempDir::new();
    let api = Tripwire::new();
    let url = api.url();
    for (i, (yaml, field, fix)) in cases.iter().enumerate() {
        let file = tmp.file(&format!("bad{i}.yaml"), yaml);
        for command in [&["run"][..], &[][..], &["check"][..]] {
            let mut args = command.to_vec();
            args.extend(["--config.file", path(&file)]);
            if command != ["check"] {
                args.extend(["--web.listen-address", "127.0.0.1:0"]);
            }
            let (out, took) = run(&args, &creds(&url));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} with {yaml:?}: {err}");
            let line = err
                .lines()
                .find(|l| l.starts_with(&format!("config error: {field}: ")))
                .unwrap_or_else(|| panic!("no error line for {field} in {err}"));
            assert!(line.contains("(fix: ") && line.contains(fix), "fix `{fix}` missing: {line}");
            assert!(took < Duration::from_secs(10), "took {took:?}: it must fail before connecting");
            assert!(!err.contains(SECRET) && !stdout(&out).contains(SECRET));
        }
    }
    api.assert_untouched();
}

#[test]
fn a_bad_url_from_the_environment_is_named_by_its_variable() {
    let api = Tripwire::new();
    let url = api.url();
    let mut env = creds(&url);
    env.retain(|(k, _)| *k != "GENESYS_API_BASE_URL");
    env.push(("GENESYS_API_BASE_URL", "ftp://example.test"));
    let (out, _) = run(&["run", "--web.listen-address", "127.0.0.1:0"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("config error: GENESYS_API_BASE_URL: "), "{}", stderr(&out));
    api.assert_untouched();
}

#[test]
fn shard_must_be_below_total_shards() {
    let api = Tripwire::new();
    let url = api.url();
    for args in [&["--shard", "2", "--total-shards", "2"][..], &["run", "--shard=5", "--total-shards=3"][..]] {
        let (out, _) = run(args, &creds(&url));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("config error: --shard: ") && err.contains("(fix: use a --shard from 0 to"), "{err}");
    }
    let (out, _) = run(&["check", "--config-only", "--shard=1", "--total-shards=1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    api.assert_untouched();
}

#[test]
fn run_without_credentials_exits_2_naming_the_variables() {
    let api = Tripwire::new();
    let url = api.url();
    let (out, _) = run(&["run"], &[("GENESYS_API_BASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("config error: GENESYS_CLIENT_ID: "), "{err}");
    assert!(err.contains("config error: GENESYS_CLIENT_SECRET: "), "{err}");
    api.assert_untouched();
}

#[test]
fn check_config_only() {
    let tmp = TempDir::new();
    let good = tmp.file("good.yaml", "queues:\n  include: [\"Sales*\"]\nfreshness:\n  max_age: 5m\n");
    // No credentials: the Helm chart test validates the file alone.
    let (out, _) = run(&["check", "--config-only", "--config.file", path(&good)], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "config ok");

    let (out, _) = run(&["check", "--config-only", "--config.file", path(&good), "--output", "json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["ok"], true);

    let bad = tmp.file("bad.yaml", "api:\n  budget_share: 0\n");
    let (out, _) = run(&["check", "--config-only", "--config.file", path(&bad)], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stdout(&out).contains("config ok"));
    assert!(stderr(&out).contains("config error: api.budget_share: "), "{}", stderr(&out));

    let (out, _) = run(&["check", "--config-only", "--config.file", path(&bad), "--output=json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["field"], "api.budget_share");
    assert!(v["problems"][0]["fix"].as_str().unwrap().contains("0.5"));

    let missing = tmp.0.join("missing.yaml");
    let (out, _) = run(&["check", "--config-only", "--config.file", path(&missing)], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("config error: --config.file: cannot read"), "{}", stderr(&out));
}

#[test]
fn demo_rejects_a_bad_config_but_ignores_genesys_settings() {
    let tmp = TempDir::new();
    let bad = tmp.file("bad.yaml", "genesys:\n  region: atlantis\napi:\n  budget_share: 7\n");
    let (out, _) = run(&["demo", "--config.file", path(&bad), "--web.listen-address", "127.0.0.1:0"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("config error: api.budget_share: "), "{err}");
    assert!(!err.contains("genesys.region"), "the demo brings its own org: {err}");
    assert!(!err.contains("GENESYS_CLIENT"), "the demo needs no credentials: {err}");
}

#[test]
fn help_lists_the_four_commands() {
    let (out, _) = run(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for cmd in ["run", "demo", "simulate", "check"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} "))), "{cmd} missing:\n{text}");
    }
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.config.file",
        "--web.enable-lifecycle",
        "--config.file",
        "--log.level",
    ] {
        assert!(text.contains(flag), "{flag} missing:\n{text}");
    }
    assert!(text.contains("0.0.0.0:9888"), "default listen address missing");
    assert!(!text.to_lowercase().contains("--client-secret"), "no secret flag on run");
}

#[test]
fn version_names_the_revision() {
    let (out, _) = run(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("genesys-cloud-exporter {} (revision ", env!("CARGO_PKG_VERSION"))), "{text}");
}

#[test]
fn unknown_flags_and_secret_flags_are_usage_errors() {
    let (out, _) = run(&["--client-secret", "x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = run(&["--shard=1", "demo"], &[]);
    assert_eq!(out.status.code(), Some(2), "flags of `run` before another subcommand are rejected");
}

#[test]
fn secrets_stay_out_of_the_output() {
    let tmp = TempDir::new();
    let file_secret = "file-secret-51c2aa";
    let file = tmp.file(
        "secret.yaml",
        &format!("genesys:\n  client_id: c\n  client_secret: {file_secret}\napi:\n  budget_share: 9\n"),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let env = [("GENESYS_CLIENT_SECRET", SECRET)];
    for args in
        [&["run", "--config.file", path(&file)][..], &["check", "--config.file", path(&file), "--output=json"][..]]
    {
        let (out, _) = run(args, &env);
        assert_eq!(out.status.code(), Some(2));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(SECRET) && !all.contains(file_secret), "secret leaked: {all}");
        #[cfg(unix)]
        assert!(
            all.contains("readable by every user") && all.contains("secret.yaml"),
            "a world-readable file with a secret is named in a warning: {all}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (out, _) = run(&["check", "--config-only", "--config.file", path(&file)], &env);
        assert!(!stderr(&out).contains("readable by every user"), "{}", stderr(&out));
    }
}

#[test]
fn json_logs_are_json() {
    let tmp = TempDir::new();
    let file = tmp.file("warn.yaml", "freshness:\n  heartbeat_timeout: 22s\n");
    let (out, _) = run(&["check", "--config-only", "--config.file", path(&file), "--log.format=json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stderr(&out).lines().next().unwrap_or_default().to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "WARN");
    assert_eq!(v["field"], "freshness.heartbeat_timeout");

    let (out, _) = run(&["check", "--config-only", "--config.file", path(&file)], &[]);
    let line = stderr(&out);
    assert!(line.contains(" level=warn ") && line.contains("field=freshness.heartbeat_timeout"), "{line}");
    let (out, _) = run(&["check", "--config-only", "--config.file", path(&file), "--log.level=error"], &[]);
    assert_eq!(stderr(&out), "", "--log.level=error hides warnings");
}
