//! Loading the configuration through the library API: file + environment overlay, region mapping, error texts,
//! and that the client secret never shows in Debug output or any error.

use genesys_cloud_exporter::config::{Config, ConfigError, OtlpCompression, OtlpProtocol};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const FILE_SECRET: &str = "file-secret-8f2c41";
const ENV_SECRET: &str = "env-secret-77d0a9";

/// A YAML file in a fresh temporary directory (removed on drop).
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(text: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gce-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, text).unwrap();
        TempFile { dir, path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn no_env() -> impl Fn(&str) -> Option<String> {
    env(&[])
}

const FULL: &str = r#"
genesys:
  region: eu-west-1
  client_id: file-client
  client_secret: file-secret-8f2c41
queues:
  include: ["Sales*", "7c0e9d4a-0000-4000-8000-000000000001"]
  exclude: ["*Test*"]
  divisions: [Home]
  media_types: [voice, chat]
  refresh_interval: 10m
freshness:
  heartbeat_timeout: 50s
  poll_interval: 15s
  reconcile_interval: 1h
  max_age: 5m
notifications:
  topics_per_channel: 500
  max_channels: 4
  ping_interval: 25s
api:
  budget_share: 0.25
  timeout: 5s
histograms:
  wait_buckets: [1, 2.5, 10]
otlp:
  endpoint: http://127.0.0.1:4317
  protocol: grpc
  interval: 30s
  timeout: 3s
  compression: gzip
  headers: {x-api-key: hdr-secret-1}
  resource_attributes: {deployment.environment: prod}
web:
  metrics_enabled: false
"#;

#[test]
fn a_full_file_is_read_key_by_key() {
    let f = TempFile::new(FULL);
    let c = Config::load(Some(&f.path), &no_env()).unwrap();
    assert_eq!(c.file.as_deref(), Some(f.path.as_path()));
    assert_eq!(c.api_base_url(), "https://api.mypurecloud.ie");
    assert_eq!(c.login_base_url(), "https://login.mypurecloud.ie");
    assert_eq!(c.client_id(), Some("file-client"));
    assert_eq!(c.client_secret().map(|s| s.expose()), Some(FILE_SECRET));
    assert_eq!(c.queues.include, ["Sales*", "7c0e9d4a-0000-4000-8000-000000000001"]);
    assert_eq!(c.queues.exclude, ["*Test*"]);
    assert_eq!(c.queues.divisions, ["Home"]);
    assert_eq!(c.queues.media_types, ["voice", "chat"]);
    assert_eq!(c.queues.refresh_interval, Duration::from_secs(600));
    assert_eq!(c.freshness.heartbeat_timeout, Duration::from_secs(50));
    assert_eq!(c.freshness.poll_interval, Duration::from_secs(15));
    assert_eq!(c.freshness.reconcile_interval, Duration::from_secs(3600));
    assert_eq!(c.freshness.max_age, Duration::from_secs(300));
    assert_eq!(c.notifications.topics_per_channel, 500);
    assert_eq!(c.notifications.max_channels, 4);
    assert_eq!(c.notifications.ping_interval, Duration::from_secs(25));
    assert_eq!(c.api.budget_share, 0.25);
    assert_eq!(c.api.timeout, Duration::from_secs(5));
    assert_eq!(c.histograms.wait_buckets, [1.0, 2.5, 10.0]);
    assert_eq!(c.otlp.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
    assert_eq!(c.otlp.protocol, OtlpProtocol::Grpc);
    assert_eq!(c.otlp.interval, Duration::from_secs(30));
    assert_eq!(c.otlp.timeout, Duration::from_secs(3));
    assert_eq!(c.otlp.compression, OtlpCompression::Gzip);
    assert!(c.otlp_enabled(), "an endpoint turns OTLP on by default");
    assert_eq!(c.otlp.headers.get("x-api-key").map(String::as_str), Some("hdr-secret-1"));
    assert_eq!(c.otlp.resource_attributes.get("deployment.environment").map(String::as_str), Some("prod"));
    assert!(!c.web.metrics_enabled);
    let problems = c.validate();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(c.credential_problems().is_empty());
}

#[test]
fn environment_wins_over_the_file() {
    let f = TempFile::new(FULL);
    let e = env(&[
        ("GENESYS_CLIENT_ID", "env-client"),
        ("GENESYS_CLIENT_SECRET", ENV_SECRET),
        ("GENESYS_REGION", "mypurecloud.jp"),
    ]);
    let c = Config::load(Some(&f.path), &e).unwrap();
    assert_eq!(c.client_id(), Some("env-client"));
    assert_eq!(c.client_secret().map(|s| s.expose()), Some(ENV_SECRET));
    assert_eq!(c.api_base_url(), "https://api.mypurecloud.jp");
    // Keys the environment does not name keep the file's values.
    assert_eq!(c.api.budget_share, 0.25);

    let e =
        env(&[("GENESYS_API_BASE_URL", "http://127.0.0.1:9300"), ("GENESYS_LOGIN_BASE_URL", "http://127.0.0.1:9301")]);
    let c = Config::load(Some(&f.path), &e).unwrap();
    assert_eq!(c.api_base_url(), "http://127.0.0.1:9300");
    assert_eq!(c.login_base_url(), "http://127.0.0.1:9301");
    assert_eq!(c.client_secret().map(|s| s.expose()), Some(FILE_SECRET), "no env secret: the file's is used");

    // An empty variable is unset, not an empty secret.
    let c = Config::load(Some(&f.path), &env(&[("GENESYS_CLIENT_SECRET", "")])).unwrap();
    assert_eq!(c.client_secret().map(|s| s.expose()), Some(FILE_SECRET));
}

#[test]
fn no_file_means_defaults_plus_environment() {
    let c = Config::load(None, &env(&[("GENESYS_CLIENT_ID", "id"), ("GENESYS_CLIENT_SECRET", ENV_SECRET)])).unwrap();
    assert_eq!(c.api_base_url(), "https://api.mypurecloud.com");
    assert_eq!(c.freshness.max_age, Duration::from_secs(180));
    assert!(c.validate().is_empty());
    assert!(c.credential_problems().is_empty());
    let c = Config::load(None, &no_env()).unwrap();
    let missing: Vec<String> = c.credential_problems().into_iter().map(|p| p.field).collect();
    assert_eq!(missing, ["GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"]);
}

#[test]
fn region_mapping() {
    let cases = [
        ("mypurecloud.com", "mypurecloud.com"),
        ("mypurecloud.ie", "mypurecloud.ie"),
        ("usw2.pure.cloud", "usw2.pure.cloud"),
        ("eu-west-1", "mypurecloud.ie"),
        ("eu_west_1", "mypurecloud.ie"),
        ("us_east_1", "mypurecloud.com"),
        ("us-west-2", "usw2.pure.cloud"),
        ("ap-southeast-2", "mypurecloud.com.au"),
        ("ap-northeast-1", "mypurecloud.jp"),
        ("eu-central-1", "mypurecloud.de"),
        ("ca-central-1", "cac1.pure.cloud"),
        ("eu-west-2", "euw2.pure.cloud"),
        ("ap-south-1", "aps1.pure.cloud"),
        ("us-east-2", "use2.us-gov-pure.cloud"),
        ("sa-east-1", "sae1.pure.cloud"),
        ("me-central-1", "mec1.pure.cloud"),
        ("mx-central-1", "mxc1.pure.cloud"),
    ];
    for (region, domain) in cases {
        let c = Config::load(None, &env(&[("GENESYS_REGION", region)])).unwrap();
        assert_eq!(c.api_base_url(), format!("https://api.{domain}"), "{region}");
        assert_eq!(c.login_base_url(), format!("https://login.{domain}"), "{region}");
        assert!(c.validate().is_empty(), "{region}: {:?}", c.validate());
    }
    let f = TempFile::new("genesys:\n  region: mars-north-1\n");
    let c = Config::load(Some(&f.path), &no_env()).unwrap();
    let p = c.validate();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].field, "genesys.region");
    assert!(p[0].fix.contains("eu-west-1"), "{}", p[0].fix);
    let c = Config::load(None, &env(&[("GENESYS_REGION", "mars-north-1")])).unwrap();
    assert_eq!(c.validate()[0].field, "GENESYS_REGION", "a problem names where the value came from");
}

#[test]
fn unknown_keys_name_the_nearest_valid_one() {
    let f = TempFile::new("freshnes:\n  max_age: 3m\nqueues:\n  incldue: [a]\n");
    let e = Config::load(Some(&f.path), &no_env()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("unknown key `freshnes.max_age`; did you mean `freshness.max_age`?"), "{text}");
    assert!(text.contains("did you mean `queues.include`?"), "{text}");
    assert_eq!(e.problems().len(), 2);
}

#[test]
fn a_missing_file_names_the_path() {
    let path = std::env::temp_dir().join("gce-config-test-does-not-exist.yaml");
    let e = Config::load(Some(&path), &no_env()).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("gce-config-test-does-not-exist.yaml"), "{e}");
    assert_eq!(e.problems()[0].field, "--config.file");
}

#[test]
fn the_secret_never_appears_in_debug_or_errors() {
    // Debug of a loaded config, with the secret from the file and from the environment.
    let f = TempFile::new(FULL);
    let c = Config::load(Some(&f.path), &no_env()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(FILE_SECRET), "{debug}");
    assert!(!debug.contains("hdr-secret-1"), "OTLP header values are redacted: {debug}");
    assert!(debug.contains("***"));
    let c = Config::load(None, &env(&[("GENESYS_CLIENT_SECRET", ENV_SECRET)])).unwrap();
    assert!(!format!("{c:?} {:#?}", c).contains(ENV_SECRET));
    assert_eq!(format!("{}", c.client_secret().unwrap()), "***");

    // Errors of every kind, with the secret in the file.
    let broken = [
        // Other keys wrong: the secret must not be dragged into the message.
        format!("genesys:\n  client_secret: {FILE_SECRET}\napi:\n  budget_share: [1]\nfreshnes:\n  x: 1\n"),
        // The secret itself of the wrong shape.
        format!("genesys:\n  client_secret: [{FILE_SECRET}]\n"),
        format!("genesys:\n  client_secret: {{a: {FILE_SECRET}}}\n"),
        // YAML syntax errors on and right after the secret's line.
        format!("genesys:\n  client_secret: \"{FILE_SECRET}\n  client_id: x\n"),
        format!("genesys:\n  client_secret: {FILE_SECRET}\n   bad: [\n"),
        format!("genesys:\n  client_secret: '{FILE_SECRET}\n"),
        format!("genesys:\n\tclient_secret: {FILE_SECRET}\n"),
    ];
    for yaml in &broken {
        let f = TempFile::new(yaml);
        let e = Config::load(Some(&f.path), &no_env()).unwrap_err();
        let all = format!("{e} {e:?} {:?}", e.problems());
        assert!(!all.contains(FILE_SECRET), "secret leaked for {yaml:?}: {all}");
    }

    // Validation problems of a config holding a secret.
    let f = TempFile::new(&format!(
        "genesys:\n  client_secret: {FILE_SECRET}\n  api_base_url: nope\napi:\n  budget_share: 3\n"
    ));
    let c = Config::load(Some(&f.path), &no_env()).unwrap();
    let p = format!("{:?}", c.validate());
    assert!(p.contains("budget_share") && !p.contains(FILE_SECRET), "{p}");
}
