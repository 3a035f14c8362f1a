//! The command line: `run` (the default), `demo`, `simulate`, `check`, with Prometheus-exporter style dotted flags.
//!
//! Only parsing lives here; `main.rs` dispatches and `app.rs` acts. Flags carry no secrets, ever: credentials come
//! from the environment or the config file (see [`crate::config`]), so they never show up in `ps` or shell history.
//!
//! The default listen port is 9888: inside the exporter range 9100–9999 and not the port of any well-known exporter.

use crate::config::Problem;
use crate::telemetry::{LogFormat, LogLevel};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The default `--web.listen-address` (documented in the README).
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9888";

/// `--version` text: the crate version and the git revision it was built from (`unknown` outside a checkout).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("GIT_REVISION"), ")");

/// Git revision the binary was built from, or `unknown`.
pub const GIT_REVISION: &str = env!("GIT_REVISION");

/// Streams Genesys Cloud queue observations into Prometheus and OpenTelemetry metrics.
///
/// Credentials come from GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET (or the config file), never from flags.
#[derive(Debug, Clone, Parser)]
#[command(name = "genesys-cloud-exporter", version = VERSION, about, long_about = None)]
// Flags given before no subcommand belong to `run`; with a subcommand they would be silently ignored, so reject
// that combination instead.
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run`, accepted without the subcommand (`genesys-cloud-exporter --web.listen-address=:9888`).
    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// The command to execute: `run` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Collect from a Genesys Cloud org (or any API base URL) and serve metrics (the default).
    Run(RunArgs),
    /// Run the built-in simulator and the exporter against it in one process; needs no credentials.
    Demo(DemoArgs),
    /// Run the simulator alone: a fake Genesys Cloud org for other clients, tests and benchmarks.
    Simulate(SimulateArgs),
    /// Validate config, credentials, permissions, queue count and API budget; exit non-zero on any problem.
    Check(CheckArgs),
}

impl Command {
    /// The logging flags of whichever command this is.
    pub fn log(&self) -> &LogArgs {
        match self {
            Command::Run(a) => &a.log,
            Command::Demo(a) => &a.log,
            Command::Simulate(a) => &a.log,
            Command::Check(a) => &a.log,
        }
    }
}

/// Where and how the exporter serves HTTP.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Address to serve metrics on, HOST:PORT (`:PORT` means every interface).
    #[arg(
        long = "web.listen-address",
        value_name = "HOST:PORT",
        default_value = DEFAULT_LISTEN_ADDRESS,
        value_parser = parse_listen_address,
        env = "GENESYS_EXPORTER_WEB_LISTEN_ADDRESS"
    )]
    pub listen_address: SocketAddr,
    /// Path under which metrics are exposed.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics")]
    pub telemetry_path: String,
    /// Web configuration file (exporter-toolkit format: TLS, basic auth).
    #[arg(
        id = "web_config_file",
        long = "web.config.file",
        value_name = "FILE",
        env = "GENESYS_EXPORTER_WEB_CONFIG_FILE"
    )]
    pub config_file: Option<PathBuf>,
    /// Enable POST/PUT /-/reload (reload the config files, as SIGHUP does). Off by default, as in Prometheus:
    /// anyone who can reach the port could trigger it (basic auth from --web.config.file applies).
    #[arg(long = "web.enable-lifecycle", env = "GENESYS_EXPORTER_WEB_ENABLE_LIFECYCLE")]
    pub enable_lifecycle: bool,
}

impl Default for WebArgs {
    fn default() -> Self {
        WebArgs {
            listen_address: SocketAddr::from(([0, 0, 0, 0], 9888)),
            telemetry_path: "/metrics".to_owned(),
            config_file: None,
            enable_lifecycle: false,
        }
    }
}

impl WebArgs {
    fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if !self.telemetry_path.starts_with('/') || self.telemetry_path.len() < 2 {
            p.push(Problem::error(
                "--web.telemetry-path",
                format!("`{}` is not a URL path below `/`", self.telemetry_path),
                "give a path that starts with `/`, such as `/metrics`",
            ));
        }
        if let Some(file) = &self.config_file {
            p.extend(web_config_problems(file));
        }
        p
    }
}

/// A `--web.config.file` that is missing or that the server could not use.
fn web_config_problems(file: &std::path::Path) -> Option<Problem> {
    if !file.is_file() {
        return Some(Problem::error(
            "--web.config.file",
            format!("`{}` does not exist or is not a file", file.display()),
            "point --web.config.file at a readable exporter-toolkit web config, or drop the flag",
        ));
    }
    crate::exposition::webconfig::load(file).err().map(|e| {
        let (message, fix) = e.parts();
        Problem::error("--web.config.file", message, fix)
    })
}

/// Logging flags, shared by every command.
#[derive(Debug, Clone, Args, Default)]
pub struct LogArgs {
    /// Only log messages with the given severity or above. RUST_LOG, when set, overrides it.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, env = "GENESYS_EXPORTER_LOG_LEVEL")]
    pub level: LogLevel,
    /// Output format of log messages (to stderr).
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, env = "GENESYS_EXPORTER_LOG_FORMAT")]
    pub format: LogFormat,
}

/// `--shard`/`--total-shards`: split the queues across replicas by a hash of the queue id.
#[derive(Debug, Clone, Copy, Args)]
pub struct ShardArgs {
    /// This replica's shard index, 0-based (with --total-shards).
    #[arg(long = "shard", value_name = "N", default_value_t = 0, env = "GENESYS_EXPORTER_SHARD")]
    pub shard: u32,
    /// Number of replicas the queues are split across.
    #[arg(long = "total-shards", value_name = "N", default_value_t = 1, env = "GENESYS_EXPORTER_TOTAL_SHARDS")]
    pub total_shards: u32,
}

impl Default for ShardArgs {
    fn default() -> Self {
        ShardArgs { shard: 0, total_shards: 1 }
    }
}

impl ShardArgs {
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.total_shards == 0 {
            p.push(Problem::error("--total-shards", "must be at least 1", "set --total-shards to the replica count"));
        } else if self.shard >= self.total_shards {
            p.push(Problem::error(
                "--shard",
                format!("shard {} does not exist with --total-shards={}", self.shard, self.total_shards),
                format!("use a --shard from 0 to {}", self.total_shards - 1),
            ));
        }
        p
    }
}

/// `run`: collect from an org and serve metrics.
#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Configuration file (YAML). Every key is optional.
    #[arg(long = "config.file", value_name = "FILE", env = "GENESYS_EXPORTER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArgs,
}

impl RunArgs {
    /// Problems with the flags themselves, reported like config problems (before anything connects).
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = self.web.problems();
        p.extend(self.shard.problems());
        p
    }
}

/// `demo`: the simulator plus the exporter, on loopback, without credentials.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Configuration file (YAML); its genesys.* credentials and URLs are ignored in the demo.
    #[arg(long = "config.file", value_name = "FILE", env = "GENESYS_EXPORTER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Address of the embedded simulator (port 0 picks a free port).
    #[arg(long = "sim.listen-address", value_name = "HOST:PORT", default_value = "127.0.0.1:0", value_parser = parse_listen_address)]
    pub sim_listen_address: SocketAddr,
    /// Number of queues in the simulated org.
    #[arg(long, default_value_t = 50)]
    pub queues: usize,
    /// Agents who are members of each simulated queue.
    #[arg(long = "agents-per-queue", default_value_t = 8)]
    pub agents_per_queue: usize,
    /// Seed of the simulator's deterministic traffic model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time acceleration of the simulator: simulated seconds per real second.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            web: WebArgs::default(),
            log: LogArgs::default(),
            config_file: None,
            sim_listen_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            queues: 50,
            agents_per_queue: 8,
            seed: 1,
            speed: 1.0,
        }
    }
}

impl DemoArgs {
    pub fn problems(&self) -> Vec<Problem> {
        self.web.problems()
    }
}

/// `simulate`: the fake org alone.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub sim: crate::sim::SimArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Report format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// `check`: prove a setup works before it runs.
#[derive(Debug, Clone, Args, Default)]
pub struct CheckArgs {
    /// Configuration file (YAML). Every key is optional.
    #[arg(long = "config.file", value_name = "FILE", env = "GENESYS_EXPORTER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Only validate the configuration (file, environment, flags); do not contact Genesys Cloud.
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Web configuration file to validate as well (exporter-toolkit format: TLS, basic auth).
    #[arg(long = "web.config.file", value_name = "FILE", env = "GENESYS_EXPORTER_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl CheckArgs {
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = self.shard.problems();
        p.extend(self.web_config_file.as_deref().and_then(web_config_problems));
        p
    }
}

/// `HOST:PORT`, `:PORT` (every interface, as Go exporters accept), `[v6]:PORT`, or `name:PORT` (resolved once).
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| format!("`{port}` is not a port number (0-65535)"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !s.contains(':') {
        return Err(format!("`{s}` has no port; write HOST:PORT, e.g. 0.0.0.0:9888 or :9888"));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let mut v = vec!["genesys-cloud-exporter"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(Cli::into_command)
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_run_with_defaults() {
        let Ok(Command::Run(a)) = parse(&[]) else { panic!("expected run") };
        assert_eq!(a.web.listen_address, "0.0.0.0:9888".parse().unwrap());
        assert_eq!(a.web.telemetry_path, "/metrics");
        assert_eq!(a.log.level, LogLevel::Info);
        assert_eq!(a.log.format, LogFormat::Logfmt);
        assert_eq!((a.shard.shard, a.shard.total_shards), (0, 1));
        assert!(a.config_file.is_none() && a.web.config_file.is_none());
        assert!(a.problems().is_empty());
    }

    #[test]
    fn run_flags_work_with_and_without_the_subcommand() {
        for prefix in [&[][..], &["run"][..]] {
            let mut args = prefix.to_vec();
            args.extend([
                "--web.listen-address=:9999",
                "--web.telemetry-path=/m",
                "--config.file=/etc/g.yaml",
                "--log.level=debug",
                "--log.format=json",
                "--shard=1",
                "--total-shards=3",
            ]);
            let Ok(Command::Run(a)) = parse(&args) else { panic!("expected run for {args:?}") };
            assert_eq!(a.web.listen_address, "0.0.0.0:9999".parse().unwrap());
            assert_eq!(a.web.telemetry_path, "/m");
            assert_eq!(a.config_file.as_deref(), Some(std::path::Path::new("/etc/g.yaml")));
            assert_eq!(a.log.level, LogLevel::Debug);
            assert_eq!(a.log.format, LogFormat::Json);
            assert_eq!((a.shard.shard, a.shard.total_shards), (1, 3));
        }
    }

    #[test]
    fn top_level_flags_with_another_subcommand_are_rejected() {
        assert!(parse(&["--shard=1", "demo"]).is_err());
    }

    #[test]
    fn shard_must_be_below_total() {
        let Ok(Command::Run(a)) = parse(&["--shard=2", "--total-shards=2"]) else { panic!() };
        let p = a.problems();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "--shard");
        assert!(p[0].fix.contains("0 to 1"), "{}", p[0].fix);
        let Ok(Command::Run(a)) = parse(&["--total-shards=0"]) else { panic!() };
        assert_eq!(a.problems()[0].field, "--total-shards");
    }

    #[test]
    fn telemetry_path_must_be_a_path() {
        let Ok(Command::Run(a)) = parse(&["--web.telemetry-path=metrics"]) else { panic!() };
        assert_eq!(a.problems()[0].field, "--web.telemetry-path");
    }

    #[test]
    fn demo_takes_simulator_flags() {
        let Ok(Command::Demo(d)) = parse(&[
            "demo",
            "--queues=5",
            "--seed=7",
            "--speed=10",
            "--agents-per-queue=3",
            "--web.listen-address=127.0.0.1:0",
        ]) else {
            panic!("expected demo")
        };
        assert_eq!((d.queues, d.seed, d.speed, d.agents_per_queue), (5, 7, 10.0, 3));
        assert_eq!(d.sim_listen_address, "127.0.0.1:0".parse().unwrap());
        assert_eq!(d.web.listen_address, "127.0.0.1:0".parse().unwrap());
        assert!(parse(&["demo", "--speed=0"]).is_err());
        assert!(parse(&["demo", "--speed=-1"]).is_err());
    }

    #[test]
    fn demo_defaults_match_the_simulator() {
        let Ok(Command::Demo(d)) = parse(&["demo"]) else { panic!() };
        let Ok(Command::Simulate(s)) = parse(&["simulate"]) else { panic!() };
        assert_eq!(
            (d.queues, d.agents_per_queue, d.seed, d.speed),
            (s.sim.queues, s.sim.agents_per_queue, s.sim.seed, s.sim.speed)
        );
        let def = DemoArgs::default();
        assert_eq!(
            (def.queues, def.agents_per_queue, def.seed, def.speed),
            (d.queues, d.agents_per_queue, d.seed, d.speed)
        );
        assert_eq!(def.sim_listen_address, d.sim_listen_address);
    }

    #[test]
    fn check_flags() {
        let Ok(Command::Check(c)) = parse(&["check", "--config.file=c.yaml", "--config-only", "--output=json"]) else {
            panic!()
        };
        assert!(c.config_only);
        assert_eq!(c.output, OutputFormat::Json);
        assert_eq!(c.config_file.as_deref(), Some(std::path::Path::new("c.yaml")));
        assert!(parse(&["check", "--output=xml"]).is_err());
    }

    #[test]
    fn no_flag_takes_a_secret() {
        let mut names = Vec::new();
        fn walk(c: &clap::Command, names: &mut Vec<String>) {
            names.extend(c.get_arguments().filter_map(|a| a.get_long().map(str::to_owned)));
            for s in c.get_subcommands() {
                walk(s, names);
            }
        }
        walk(&Cli::command(), &mut names);
        // The simulator's own `--client-secret` is the fake org's test fixture, not a credential of the exporter,
        // and `--token-lifetime-seconds` is a duration.
        let sim = Cli::command();
        let sim_cmd = sim.find_subcommand("simulate").unwrap();
        let sim_flags: Vec<&str> = sim_cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        for n in names.iter().filter(|n| n.contains("secret") || n.contains("token") || n.contains("password")) {
            let sim_only =
                ["client-secret", "token-lifetime-seconds"].contains(&n.as_str()) && sim_flags.contains(&n.as_str());
            assert!(sim_only, "flag --{n} would put a secret on the command line");
        }
        let run = Cli::command();
        assert!(run.get_arguments().all(|a| !a.get_long().unwrap_or("").contains("secret")));
    }

    #[test]
    fn listen_address_forms() {
        assert_eq!(parse_listen_address(":9888").unwrap(), "0.0.0.0:9888".parse().unwrap());
        assert_eq!(parse_listen_address("127.0.0.1:80").unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(parse_listen_address("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(parse_listen_address("localhost:80").unwrap().port(), 80);
        assert!(parse_listen_address("9888").unwrap_err().contains("no port"));
        assert!(parse_listen_address(":99999").is_err());
    }
}
