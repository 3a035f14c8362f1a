//! Configuration reload (SIGHUP, `POST /-/reload` with `--web.enable-lifecycle`), as Prometheus does it: re-read and
//! validate the config file and the web config; on any error refuse the whole reload, keep the running
//! configuration and say which field is wrong; otherwise apply what can change in a running process.
//!
//! Live: `queues.include`/`exclude`/`divisions` (re-listed at once; channels change subscriptions on their open
//! sockets), `queues.refresh_interval`, `freshness.heartbeat_timeout`, `freshness.poll_interval`, `log.level`, and
//! the whole `--web.config.file` (users, certificates, headers; for the next connection and request). From each
//! channel's next connection: `freshness.reconcile_interval`, `notifications.ping_interval`.
//! Restart only (a reload that changes them says so in a warning and keeps the running values): `genesys.*`,
//! `queues.media_types`, `freshness.max_age`, `notifications.topics_per_channel`/`max_channels`, `api.*`,
//! `histograms.*`, `otlp.*`, `web.metrics_enabled`, and every command-line flag.

use crate::collector::shard::Shard;
use crate::config::{Config, Problem};
use crate::exposition::{webconfig, LiveWebConfig};
use crate::telemetry::{LogLevel, SelfMetrics};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the configuration comes from, for reading it again.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// `--config.file` (without one only the web config and the environment are re-read).
    pub config_file: Option<PathBuf>,
    /// `--web.config.file`.
    pub web_config_file: Option<PathBuf>,
    /// `demo` ignores `genesys.*` (it brings its own org).
    pub demo: bool,
    /// `--log.level`: what `log.level` falls back to when the file drops it.
    pub flag_log_level: LogLevel,
    /// `--web.enable-lifecycle`: serve `POST /-/reload`.
    pub lifecycle: bool,
    /// The configuration the exporter started with.
    pub config: Config,
}

/// Applies reloads to a running exporter; one at a time.
pub struct Reloader {
    source: ReloadSource,
    shard: Shard,
    /// As loaded at start: restart-only keys are compared with it.
    started: Config,
    /// The configuration in force (the start's, then each applied reload's); the lock serialises reloads.
    current: tokio::sync::Mutex<Config>,
    collector: Arc<crate::collector::Shared>,
    web: LiveWebConfig,
    metrics: Arc<SelfMetrics>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("source", &self.source).finish_non_exhaustive()
    }
}

/// Config keys whose new value needs a restart, and how to read each from a config.
type Key = (&'static str, fn(&Config, &Config) -> bool);

const RESTART_ONLY: &[Key] = &[
    ("genesys.region", |a, b| a.genesys.region != b.genesys.region),
    ("genesys.api_base_url", |a, b| a.api_base_url() != b.api_base_url()),
    ("genesys.login_base_url", |a, b| a.login_base_url() != b.login_base_url()),
    ("genesys.client_id", |a, b| a.genesys.client_id != b.genesys.client_id),
    ("genesys.client_secret", |a, b| a.genesys.client_secret != b.genesys.client_secret),
    ("queues.media_types", |a, b| a.queues.media_types != b.queues.media_types),
    ("freshness.max_age", |a, b| a.freshness.max_age != b.freshness.max_age),
    ("notifications.topics_per_channel", |a, b| {
        a.notifications.topics_per_channel != b.notifications.topics_per_channel
    }),
    ("notifications.max_channels", |a, b| a.notifications.max_channels != b.notifications.max_channels),
    ("api.budget_share", |a, b| a.api.budget_share != b.api.budget_share),
    ("api.timeout", |a, b| a.api.timeout != b.api.timeout),
    ("histograms.wait_buckets", |a, b| a.histograms != b.histograms),
    ("otlp", |a, b| a.otlp != b.otlp),
    ("web.metrics_enabled", |a, b| a.web != b.web),
];

const LIVE: &[Key] = &[
    ("queues.include", |a, b| a.queues.include != b.queues.include),
    ("queues.exclude", |a, b| a.queues.exclude != b.queues.exclude),
    ("queues.divisions", |a, b| a.queues.divisions != b.queues.divisions),
    ("queues.refresh_interval", |a, b| a.queues.refresh_interval != b.queues.refresh_interval),
    ("freshness.heartbeat_timeout", |a, b| a.freshness.heartbeat_timeout != b.freshness.heartbeat_timeout),
    ("freshness.poll_interval", |a, b| a.freshness.poll_interval != b.freshness.poll_interval),
    ("freshness.reconcile_interval", |a, b| a.freshness.reconcile_interval != b.freshness.reconcile_interval),
    ("notifications.ping_interval", |a, b| a.notifications.ping_interval != b.notifications.ping_interval),
    ("log.level", |a, b| a.log != b.log),
];

fn changed(keys: &[Key], a: &Config, b: &Config) -> Vec<&'static str> {
    keys.iter().filter(|(_, differs)| differs(a, b)).map(|(k, _)| *k).collect()
}

impl Reloader {
    pub fn new(
        source: ReloadSource,
        shard: Shard,
        collector: Arc<crate::collector::Shared>,
        web: LiveWebConfig,
        metrics: Arc<SelfMetrics>,
    ) -> Arc<Self> {
        Arc::new(Reloader {
            shard,
            started: source.config.clone(),
            current: tokio::sync::Mutex::new(source.config.clone()),
            source,
            collector,
            web,
            metrics,
        })
    }

    pub fn source(&self) -> &ReloadSource {
        &self.source
    }

    /// Reload now. `Ok` summarises what changed; `Err` is the reason it was refused (fields named, no secrets), and
    /// nothing was changed.
    pub async fn reload(&self) -> Result<String, String> {
        let mut current = self.current.lock().await;
        let result = self.load();
        let m = &self.metrics;
        match result {
            Err(problems) => {
                let text = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                for p in &problems {
                    tracing::error!(field = %p.field, fix = %p.fix, "configuration reload refused, keeping the running configuration: {}", p.message);
                }
                m.config_reloads_total.with_label_values(&["failure"]).inc();
                m.config_last_reload_successful.set(0);
                Err(text)
            }
            Ok((new, web, warnings)) => {
                for w in &warnings {
                    tracing::warn!(field = %w.field, fix = %w.fix, "config warning: {}", w.message);
                }
                let live = changed(LIVE, &current, &new);
                let restart = changed(RESTART_ONLY, &self.started, &new);
                self.collector.update_settings(crate::app::collector_settings(&new, self.shard));
                if let Some(web) = web {
                    self.web.set(web);
                }
                if current.log != new.log {
                    if let Err(e) = crate::telemetry::set_log_level(new.log.level.unwrap_or(self.source.flag_log_level))
                    {
                        tracing::warn!(err = %e, "could not change the log level");
                    }
                }
                if !restart.is_empty() {
                    tracing::warn!(
                        keys = %restart.join(","),
                        "configuration reloaded, but these keys only take effect after a restart; their running values stay"
                    );
                }
                let applied = if live.is_empty() { "none".to_owned() } else { live.join(",") };
                tracing::info!(applied = %applied, web_config = self.source.web_config_file.is_some(), "configuration reloaded");
                *current = new;
                m.config_reloads_total.with_label_values(&["success"]).inc();
                m.config_last_reload_successful.set(1);
                m.config_last_reload_success_timestamp_seconds.set(crate::model::now_ms() as f64 / 1000.0);
                let mut summary = format!("configuration reloaded; applied: {applied}");
                if !restart.is_empty() {
                    summary.push_str(&format!("; need a restart: {}", restart.join(",")));
                }
                Ok(summary)
            }
        }
    }

    /// Read and check both files; errors refuse the reload, warnings are returned to log.
    #[allow(clippy::type_complexity)] // one private call site
    fn load(&self) -> Result<(Config, Option<crate::exposition::WebConfig>, Vec<Problem>), Vec<Problem>> {
        let config = Config::load_from_process_env(self.source.config_file.as_deref()).map_err(|e| e.problems())?;
        let mut problems = config.validate();
        if self.source.demo {
            problems.retain(|p| !p.field.starts_with("genesys.") && !p.field.starts_with("GENESYS_"));
        } else {
            problems.extend(config.credential_problems());
        }
        let web = match &self.source.web_config_file {
            None => None,
            Some(path) => match webconfig::load(path) {
                Ok(w) => Some(w),
                Err(e) => {
                    let (message, fix) = e.parts();
                    problems.push(Problem::error("--web.config.file", message, fix));
                    None
                }
            },
        };
        let (errors, warnings): (Vec<Problem>, Vec<Problem>) = problems.into_iter().partition(Problem::is_error);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((config, web, warnings))
    }
}

/// Reload on every SIGHUP until `shutdown`. Registered before the server listens: SIGHUP's default action would
/// kill the process.
pub fn on_sighup(reloader: Arc<Reloader>, shutdown: tokio_util::sync::CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(err = %e, "cannot listen for SIGHUP; reload with POST /-/reload instead");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    s = hup.recv() => if s.is_none() { return },
                }
                tracing::info!("SIGHUP: reloading the configuration");
                let _ = reloader.reload().await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (reloader, shutdown);
}
