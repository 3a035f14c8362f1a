//! Wiring of the long-running commands. (Being written by the lead.)

use crate::cli::{CheckArgs, DemoArgs, RunArgs};
use crate::config::Config;
use tokio_util::sync::CancellationToken;

/// `run`: collect from an org and serve metrics until `shutdown`.
pub async fn run(_config: Config, _args: RunArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("run: not wired yet")
}

/// `demo`: the simulator and the exporter in one process.
pub async fn demo(_config: Config, _args: DemoArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("demo: not wired yet")
}

/// `check`: validate config, credentials, permissions and budget; the report goes to stdout.
pub async fn check(_config: Config, _args: CheckArgs) -> anyhow::Result<bool> {
    anyhow::bail!("check: not wired yet")
}
