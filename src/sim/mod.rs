//! A fake Genesys Cloud org speaking the real wire format (`shared/genesys-api.md`): OAuth, REST, notification
//! channels and their WebSocket, rate limits, fault injection, scenario files and a ground-truth endpoint.
//!
//! - [`model`]: the traffic model (one org, advanced in model time by a single task).
//! - [`server`]: HTTP + WebSocket on one port (hyper 1), the model task, channels, tokens, rate limits.
//! - [`fault`]: [`Fault`] (admin API `POST /sim/faults`, [`SimHandle::inject`]) and [`Scenario`] files.
//! - [`clock`]: [`SimClock`], real time → model time (speed, pause).
//!
//! See `docs/simulator.md` for the command, flags, endpoints and JSON shapes.

pub mod clock;
pub mod fault;
pub mod model;
pub mod server;
mod socket;

pub use clock::SimClock;
pub use fault::{Fault, Scenario, ScenarioStep};
pub use model::{LongestForm, ModelConfig, Truth};
pub use server::{SimHandle, SimStats, Simulator};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Options of `genesys-cloud-exporter simulate` (and the simulator half of `demo`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address the simulator listens on (HTTP API, login and WebSocket on one port).
    #[arg(long, default_value = "127.0.0.1:9300")]
    pub listen: SocketAddr,
    /// Number of queues in the fake org.
    #[arg(long, default_value_t = 50)]
    pub queues: usize,
    /// Agents who are members of each queue.
    #[arg(long = "agents-per-queue", default_value_t = 8)]
    pub agents_per_queue: usize,
    /// Seed of the deterministic traffic model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time acceleration: simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// OAuth client id the simulator accepts.
    #[arg(long = "client-id", default_value = "sim-client")]
    pub client_id: String,
    /// OAuth client secret the simulator accepts (a test fixture, not a real secret).
    #[arg(long = "client-secret", default_value = "sim-secret")]
    pub client_secret: String,
    /// Scenario file (YAML): timed faults and traffic changes.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Mean customer arrivals per hour (model time) per queue for voice (other media get a fraction of it).
    #[arg(long = "arrivals-per-hour")]
    pub arrivals_per_hour: Option<f64>,
    /// Seconds between WebSocket heartbeats (real time).
    #[arg(long = "heartbeat-seconds", default_value_t = 30.0)]
    pub heartbeat_seconds: f64,
    /// API requests allowed per token per minute (real time) before 429.
    #[arg(long = "rate-limit-per-minute", default_value_t = 300)]
    pub rate_limit_per_minute: u32,
    /// Access token lifetime in model seconds (`expires_in` is this divided by the speed).
    #[arg(long = "token-lifetime-seconds", default_value_t = 86_400)]
    pub token_lifetime_seconds: u64,
    /// Queue ids whose observation topics are forbidden (403, or `Rejected` with ignoreErrors=true).
    #[arg(long = "forbid-queue", value_name = "QUEUE_ID")]
    pub forbid_queue: Vec<String>,
}

impl Default for SimArgs {
    fn default() -> Self {
        SimArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
            queues: 50,
            agents_per_queue: 8,
            seed: 1,
            speed: 1.0,
            client_id: "sim-client".to_owned(),
            client_secret: "sim-secret".to_owned(),
            scenario: None,
            arrivals_per_hour: None,
            heartbeat_seconds: 30.0,
            rate_limit_per_minute: 300,
            token_lifetime_seconds: 86_400,
            forbid_queue: Vec::new(),
        }
    }
}

/// Everything the simulator needs: the org ([`ModelConfig`]) plus the server's knobs. Durations marked "model" are
/// divided by `speed` before a client sees them; "real" ones are wall-clock.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub model: ModelConfig,
    /// Used by [`serve`] only ([`Simulator::start`] takes a bound listener).
    pub listen: SocketAddr,
    /// Simulated seconds per real second (> 0).
    pub speed: f64,
    /// Model time at start, epoch ms; `None` = the wall clock at start.
    pub start_ms: Option<i64>,
    pub client_id: String,
    pub client_secret: String,
    /// Access token lifetime (model time; `expires_in` = lifetime / speed).
    pub token_lifetime: Duration,
    /// WebSocket heartbeat interval (real time).
    pub heartbeat_interval: Duration,
    /// API requests per token per fixed 60 s real-time window.
    pub rate_limit_per_minute: u32,
    /// How often topic messages are taken from the model (real time; Genesys: at most one per queue per second).
    pub topic_period: Duration,
    /// Real time between model advances.
    pub tick: Duration,
    /// Channel lifetime after creation or the last (re)subscription (model time; Genesys: 24 h).
    pub channel_lifetime: Duration,
    pub max_topics_per_channel: usize,
    pub max_channels: usize,
    /// Queue ids whose topics need a permission the client lacks.
    pub forbidden_queue_ids: Vec<String>,
    /// Permissions the OAuth client lacks (`analytics:conversationAggregate:view`, …): the endpoints that need one
    /// answer 403 `missing.permissions` naming it, as Genesys does.
    pub denied_permissions: Vec<String>,
    /// Grace between `v2.system.socket_closing` and the close when a fault does not say (real time).
    pub socket_closing_grace: Duration,
    /// Frames queued per socket; a socket that falls further behind is closed (the model never waits).
    pub socket_queue: usize,
    /// Largest `pageSize` honoured by listings.
    pub max_page_size: u32,
    /// Timed faults applied after start.
    pub scenario: Option<Scenario>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            model: ModelConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
            speed: 1.0,
            start_ms: None,
            client_id: "sim-client".to_owned(),
            client_secret: "sim-secret".to_owned(),
            token_lifetime: Duration::from_secs(86_400),
            heartbeat_interval: Duration::from_secs(30),
            rate_limit_per_minute: 300,
            topic_period: Duration::from_secs(1),
            tick: Duration::from_millis(100),
            channel_lifetime: Duration::from_secs(86_400),
            max_topics_per_channel: 1000,
            max_channels: 20,
            forbidden_queue_ids: Vec::new(),
            denied_permissions: Vec::new(),
            socket_closing_grace: Duration::from_secs(60),
            socket_queue: 8192,
            max_page_size: 500,
            scenario: None,
        }
    }
}

impl From<&SimArgs> for SimConfig {
    /// Everything but the scenario file, which [`serve`] reads (reading can fail; `From` cannot).
    fn from(a: &SimArgs) -> Self {
        let mut model =
            ModelConfig { queues: a.queues, agents_per_queue: a.agents_per_queue, seed: a.seed, ..Default::default() };
        if let Some(r) = a.arrivals_per_hour {
            model.arrivals_per_hour = r;
        }
        SimConfig {
            model,
            listen: a.listen,
            speed: a.speed,
            client_id: a.client_id.clone(),
            client_secret: a.client_secret.clone(),
            token_lifetime: Duration::from_secs(a.token_lifetime_seconds.max(1)),
            heartbeat_interval: Duration::from_secs_f64(a.heartbeat_seconds.max(0.01)),
            rate_limit_per_minute: a.rate_limit_per_minute,
            forbidden_queue_ids: a.forbid_queue.clone(),
            ..Default::default()
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("simulator listener: {0}")]
    Io(#[from] std::io::Error),
}

/// `genesys-cloud-exporter simulate`: bind `args.listen`, print what is served and how to point a client at it,
/// run until `shutdown`.
pub async fn serve(args: SimArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut cfg = SimConfig::from(&args);
    if let Some(path) = &args.scenario {
        cfg.scenario = Some(Scenario::load(path).with_context(|| format!("scenario file {}", path.display()))?);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let steps = cfg.scenario.as_ref().map_or(0, |s| s.steps.len());
    let sim = Simulator::start(cfg, listener).await.context("starting the simulator")?;
    let base = sim.base_url();
    println!(
        "simulate: a fake Genesys Cloud org ({} queues, {} agents per queue, seed {}, speed {}x) on {base}",
        args.queues, args.agents_per_queue, args.seed, args.speed
    );
    println!("simulate: OAuth   POST {base}/oauth/token  (client id {:?})", args.client_id);
    println!("simulate: API     {base}/api/v2/...   WebSocket  {}/channels/<id>", base.replacen("http", "ws", 1));
    println!("simulate: admin   GET {base}/sim/truth   GET {base}/sim/stats   POST {base}/sim/faults");
    if steps > 0 {
        println!("simulate: scenario with {steps} step(s)");
    }
    println!("simulate: point a client at it with:");
    println!("  export GENESYS_API_BASE_URL={base} GENESYS_LOGIN_BASE_URL={base}");
    println!("  export GENESYS_CLIENT_ID={} GENESYS_CLIENT_SECRET={}", args.client_id, args.client_secret);
    println!("simulate: Ctrl-C to stop");
    shutdown.cancelled().await;
    sim.shutdown().await;
    Ok(())
}
