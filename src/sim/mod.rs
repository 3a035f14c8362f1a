//! A fake Genesys Cloud org. (Being written: see SimArgs for the command-line surface.)

pub mod model;

use std::net::SocketAddr;
use std::path::PathBuf;

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
}
