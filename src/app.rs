//! Wiring of the long-running commands: builds the client, the store, the collector and the HTTP server from the
//! configuration and runs them until shutdown. The only module that knows every other one (with `main.rs`).

use crate::cli::{CheckArgs, DemoArgs, OutputFormat, RunArgs};
use crate::collector::shard::Shard;
use crate::collector::{Collector, CollectorSettings};
use crate::config::Config;
use crate::exposition::otlp::{self, OtlpOptions};
use crate::exposition::{AppState, WebConfig};
use crate::genesys::auth::{Credential, TokenSource};
use crate::genesys::client::{http_client, ApiClient};
use crate::genesys::RateBudget;
use crate::model::Readiness;
use crate::reload::{self, ReloadSource, Reloader};
use crate::state::{Store, StoreConfig};
use crate::telemetry::SelfMetrics;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Everything an exporter instance needs, resolved from config, environment and flags.
#[derive(Debug, Clone)]
pub struct ExporterOptions {
    pub api_base_url: String,
    pub login_base_url: String,
    pub client_id: String,
    pub client_secret: Credential,
    pub budget_share: f64,
    pub api_timeout: Duration,
    pub collector: CollectorSettings,
    pub store: StoreConfig,
    pub telemetry_path: String,
    /// `--web.config.file`, loaded: TLS, basic auth, response headers.
    pub web: WebConfig,
    /// `web.metrics_enabled`: serve the telemetry path (else OTLP push is the only output).
    pub metrics_enabled: bool,
    /// `otlp.*`, when push is on.
    pub otlp: Option<OtlpOptions>,
    /// Where to re-read the configuration on SIGHUP (and `POST /-/reload`); `None`: no reloads.
    pub reload: Option<ReloadSource>,
}

impl ExporterOptions {
    /// Options for a client of the built-in simulator at `base_url` (demo, tests, benchmarks).
    pub fn for_simulator(base_url: &str) -> Self {
        ExporterOptions {
            api_base_url: base_url.to_owned(),
            login_base_url: base_url.to_owned(),
            client_id: "sim-client".to_owned(),
            client_secret: Credential::new("sim-secret"),
            budget_share: 0.5,
            api_timeout: Duration::from_secs(10),
            collector: CollectorSettings::default(),
            store: StoreConfig::default(),
            telemetry_path: "/metrics".to_owned(),
            web: WebConfig::default(),
            metrics_enabled: true,
            otlp: None,
            reload: None,
        }
    }
}

/// A running exporter: collector + HTTP server.
pub struct Exporter {
    pub addr: SocketAddr,
    pub store: Store,
    pub metrics: Arc<SelfMetrics>,
    pub readiness: Arc<Readiness>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Exporter {
    /// Start collecting and serving on `listener`. Returns at once; `wait` reports how it ended.
    pub fn start(
        opts: ExporterOptions,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Exporter> {
        let addr = listener.local_addr().context("listener address")?;
        let metrics = SelfMetrics::new();
        let store = Store::new(opts.store.clone());
        let readiness = Arc::new(Readiness::default());

        let http = http_client(opts.api_timeout);
        let expiry_gauge = metrics.token_expiry_timestamp_seconds.clone();
        let tokens = TokenSource::new(
            http.clone(),
            &opts.login_base_url,
            opts.client_id.clone(),
            opts.client_secret.clone(),
            move |t| expiry_gauge.set(t.expires_at_unix),
        );
        let budget = Arc::new(RateBudget::new(opts.budget_share));
        let api = ApiClient::new(http, &opts.api_base_url, tokens, budget, metrics.clone());
        let collector = Collector::new(api, store.clone(), metrics.clone(), readiness.clone(), opts.collector.clone());

        let mut app =
            AppState::new(store.clone(), metrics.registry().clone(), readiness.clone(), env!("CARGO_PKG_VERSION"))
                .with_telemetry_path(opts.telemetry_path.clone())
                .with_web_config(opts.web.clone())
                .with_metrics_enabled(opts.metrics_enabled);
        if let Some(source) = opts.reload.clone() {
            let lifecycle = source.lifecycle;
            let reloader = Reloader::new(
                source,
                opts.collector.shard,
                collector.shared().clone(),
                app.web.clone(),
                metrics.clone(),
            );
            reload::on_sighup(reloader.clone(), shutdown.clone());
            if lifecycle {
                app = app.with_reload(Arc::new(move || {
                    let r = reloader.clone();
                    Box::pin(async move { r.reload().await })
                }));
            }
        }
        let pusher = opts.otlp.clone().map(|o| {
            let (store, registry, metrics, token) =
                (store.clone(), app.registry.clone(), metrics.clone(), shutdown.clone());
            tokio::spawn(otlp::run(o, store, registry, metrics, token))
        });

        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            let server = tokio::spawn(crate::exposition::serve(listener, app, token.clone()));
            let result = collector.run(token.clone()).await;
            if result.is_err() {
                // Nothing to serve without a collector: stop the server too, so the process exits non-zero.
                token.cancel();
            }
            let served = server.await;
            if let Some(p) = pusher {
                // It stops with the shutdown token; a panic in it must not hide the collector's result.
                let _ = p.await;
            }
            result.context("collector")?;
            served.context("HTTP server task")?.context("HTTP server")?;
            Ok(())
        });
        Ok(Exporter { addr, store, metrics, readiness, shutdown, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Wait until the exporter stops (shutdown or a fatal collector error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("exporter task")?
    }

    /// Stop and wait.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// `run`: collect from an org and serve metrics until `shutdown`.
pub async fn run_with(opts: ExporterOptions, listen: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let exporter = Exporter::start(opts, listener, shutdown)?;
    tracing::info!(address = %exporter.addr, "serving metrics");
    exporter.wait().await
}

/// `demo`: the simulator and the exporter in one process, on loopback, with no credentials.
pub async fn demo_with(
    sim: crate::sim::SimConfig,
    sim_listen: SocketAddr,
    mut opts: ExporterOptions,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sim_listener = TcpListener::bind(sim_listen).await.with_context(|| format!("cannot listen on {sim_listen}"))?;
    let sim = crate::sim::Simulator::start(sim, sim_listener).await.context("starting the simulator")?;
    let base = sim.base_url();
    opts.api_base_url = base.clone();
    opts.login_base_url = base.clone();
    opts.client_id = "sim-client".to_owned();
    opts.client_secret = Credential::new("sim-secret");
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let exporter = Exporter::start(opts, listener, shutdown.clone())?;
    let url = exporter.url().replace("0.0.0.0", "127.0.0.1");
    println!("demo: simulator (a fake Genesys Cloud org) on {base}  (ground truth: {base}/sim/truth)");
    println!("demo: exporter on {url}");
    println!("demo: try  curl -s {url}/metrics | grep -E '^genesys_queue_(waiting|agents)'");
    println!("demo: Ctrl-C to stop");
    let result = exporter.wait().await;
    sim.shutdown().await;
    result
}

/// Build the collector's shard from the flags.
pub fn shard(index: u32, total: u32) -> Shard {
    Shard::new(index, total)
}

impl ExporterOptions {
    /// Resolve the options from the configuration (file + environment) and the flags.
    pub fn from_config(cfg: &Config, shard: Shard, telemetry_path: &str) -> anyhow::Result<Self> {
        let client_id = cfg.client_id().context("GENESYS_CLIENT_ID is not set")?.to_owned();
        let client_secret = cfg.client_secret().context("GENESYS_CLIENT_SECRET is not set")?;
        Ok(ExporterOptions {
            api_base_url: cfg.api_base_url(),
            login_base_url: cfg.login_base_url(),
            client_id,
            client_secret: Credential::new(client_secret.expose()),
            budget_share: cfg.api.budget_share,
            api_timeout: cfg.api.timeout,
            collector: collector_settings(cfg, shard),
            store: store_config(cfg),
            telemetry_path: telemetry_path.to_owned(),
            web: WebConfig::default(),
            metrics_enabled: cfg.web.metrics_enabled,
            otlp: None,
            reload: None,
        })
    }
}

/// The store's part of the configuration.
pub fn store_config(cfg: &Config) -> StoreConfig {
    StoreConfig {
        media_types: cfg.queues.media_types.clone(),
        max_age: cfg.freshness.max_age,
        wait_buckets: cfg.histograms.wait_buckets.clone(),
    }
}

/// The collector's part of the configuration.
pub fn collector_settings(cfg: &Config, shard: Shard) -> CollectorSettings {
    CollectorSettings {
        include: cfg.queues.include.clone(),
        exclude: cfg.queues.exclude.clone(),
        divisions: cfg.queues.divisions.clone(),
        refresh_interval: cfg.queues.refresh_interval,
        heartbeat_timeout: cfg.freshness.heartbeat_timeout,
        poll_interval: cfg.freshness.poll_interval,
        reconcile_interval: cfg.freshness.reconcile_interval,
        ping_interval: cfg.notifications.ping_interval,
        topics_per_channel: cfg.notifications.topics_per_channel,
        max_channels: cfg.notifications.max_channels,
        shard,
    }
}

/// `run` from the command line.
pub async fn run(config: Config, args: RunArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut opts = ExporterOptions::from_config(
        &config,
        shard(args.shard.shard, args.shard.total_shards),
        &args.web.telemetry_path,
    )?;
    opts.web = load_web_config(&args.web)?;
    opts.otlp = otlp_options(&config, args.web.listen_address);
    opts.reload = Some(reload_source(&config, &args.web, args.config_file.clone(), args.log.level, false));
    run_with(opts, args.web.listen_address, shutdown).await
}

/// What a reload re-reads; also applies the file's `log.level`, which overrides the flag.
fn reload_source(
    config: &Config,
    web: &crate::cli::WebArgs,
    config_file: Option<std::path::PathBuf>,
    flag_log_level: crate::telemetry::LogLevel,
    demo: bool,
) -> ReloadSource {
    if let Some(level) = config.log.level {
        if let Err(e) = crate::telemetry::set_log_level(level) {
            tracing::warn!(err = %e, "could not apply log.level");
        }
    }
    ReloadSource {
        config_file,
        web_config_file: web.config_file.clone(),
        demo,
        flag_log_level,
        lifecycle: web.enable_lifecycle,
        config: config.clone(),
    }
}

/// `otlp.*` with this instance's identity: `service.instance.id` is `host:port` like Prometheus' `instance`.
pub fn otlp_options(config: &Config, listen: SocketAddr) -> Option<OtlpOptions> {
    let instance = format!("{}:{}", otlp::host_name(), listen.port());
    OtlpOptions::from_config(config, otlp::default_resource(&instance, &region_of(config)))
}

/// The org's region for `genesys.region`: its domain (`mypurecloud.ie`), or the API host when a base URL is given.
fn region_of(config: &Config) -> String {
    let url = config.api_base_url();
    let host = url.split_once("://").map_or(url.as_str(), |(_, h)| h);
    host.strip_prefix("api.").unwrap_or(host).trim_end_matches('/').to_owned()
}

/// `--web.config.file` (validated already with the other flags; read again here, it is tiny).
pub fn load_web_config(web: &crate::cli::WebArgs) -> anyhow::Result<WebConfig> {
    match &web.config_file {
        Some(path) => Ok(crate::exposition::webconfig::load(path)?),
        None => Ok(WebConfig::default()),
    }
}

/// `demo` from the command line: the simulator on `--sim.listen-address`, the exporter with the configuration's
/// collector and store settings (its genesys.* credentials and URLs are replaced by the simulator's).
pub async fn demo(config: Config, args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut sim = crate::sim::SimConfig::default();
    sim.model.queues = args.queues;
    sim.model.agents_per_queue = args.agents_per_queue;
    sim.model.seed = args.seed;
    sim.speed = args.speed;
    let mut opts = ExporterOptions::for_simulator("http://127.0.0.1");
    opts.collector = collector_settings(&config, shard(0, 1));
    opts.store = store_config(&config);
    opts.budget_share = config.api.budget_share;
    opts.api_timeout = config.api.timeout;
    opts.telemetry_path = args.web.telemetry_path.clone();
    opts.web = load_web_config(&args.web)?;
    opts.metrics_enabled = config.web.metrics_enabled;
    opts.otlp = otlp_options(&config, args.web.listen_address);
    opts.reload = Some(reload_source(&config, &args.web, args.config_file.clone(), args.log.level, true));
    demo_with(sim, args.sim_listen_address, opts, args.web.listen_address, shutdown).await
}

/// `check` from the command line: prints the report; `Ok(true)` when everything passed.
pub async fn check(config: Config, args: CheckArgs) -> anyhow::Result<bool> {
    let opts = ExporterOptions::from_config(&config, shard(args.shard.shard, args.shard.total_shards), "/metrics")?;
    let metrics = SelfMetrics::new();
    let http = http_client(opts.api_timeout);
    let tokens = TokenSource::new(
        http.clone(),
        &opts.login_base_url,
        opts.client_id.clone(),
        opts.client_secret.clone(),
        |_| {},
    );
    let budget = Arc::new(RateBudget::new(opts.budget_share));
    let api = ApiClient::new(http, &opts.api_base_url, tokens, budget, metrics);
    let report = crate::check::run(&api, &opts.collector, opts.budget_share).await;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report).context("report as JSON")?),
        OutputFormat::Text => print!("{}", report.to_text()),
    }
    Ok(report.ok())
}
