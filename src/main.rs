//! `genesys-cloud-exporter`: wiring only. Parse the command line, start logging, load and validate the
//! configuration (any error: print it and exit 2 before connecting anything), then hand over to `app` with a
//! cancellation token that SIGINT/SIGTERM trip.
//!
//! Exit codes: 0 success, 1 runtime failure (or `check` found a problem), 2 bad configuration or flags.

use clap::Parser as _;
use genesys_cloud_exporter::cli::{Cli, Command, OutputFormat};
use genesys_cloud_exporter::config::{Config, Problem};
use genesys_cloud_exporter::{app, telemetry};
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Exit code of configuration and flag errors (as clap uses for usage errors).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let command = Cli::parse().into_command();
    let log = command.log().clone();
    if let Err(e) = telemetry::init_logging(log.level, log.format) {
        eprintln!("warning: logging not initialised: {e}");
    }
    genesys_cloud_exporter::genesys::client::install_crypto_provider();

    match command {
        Command::Run(args) => {
            let Some(config) = load_config(args.config_file.as_deref(), args.problems(), Mode::Run, OutputFormat::Text)
            else {
                return ExitCode::from(EXIT_CONFIG);
            };
            finish(block_on_with_shutdown(|token| app::run(config, args, token)))
        }
        Command::Demo(args) => {
            let Some(config) =
                load_config(args.config_file.as_deref(), args.problems(), Mode::Demo, OutputFormat::Text)
            else {
                return ExitCode::from(EXIT_CONFIG);
            };
            finish(block_on_with_shutdown(|token| app::demo(config, args, token)))
        }
        Command::Simulate(args) => {
            finish(block_on_with_shutdown(|token| genesys_cloud_exporter::sim::serve(args.sim, token)))
        }
        Command::Check(args) => {
            let mode = if args.config_only { Mode::ConfigOnly } else { Mode::Check };
            let Some(config) = load_config(args.config_file.as_deref(), args.problems(), mode, args.output) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            if args.config_only {
                match args.output {
                    OutputFormat::Text => println!("config ok"),
                    OutputFormat::Json => println!("{}", serde_json::json!({ "ok": true, "problems": [] })),
                }
                return ExitCode::SUCCESS;
            }
            match block_on_with_shutdown(|_token| app::check(config, args)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Demo,
    Check,
    /// `check --config-only`: the file and flags, not the credentials (the Helm chart test has none).
    ConfigOnly,
}

/// Load and validate. Errors are printed (`config error: <field>: <message> (fix: <fix>)`) and give `None`;
/// warnings are logged and the config is returned.
fn load_config(file: Option<&Path>, mut problems: Vec<Problem>, mode: Mode, output: OutputFormat) -> Option<Config> {
    let config = match Config::load_from_process_env(file) {
        Ok(config) => {
            let mut found = config.validate();
            match mode {
                Mode::Run | Mode::Check => found.extend(config.credential_problems()),
                // The demo talks to its own simulator with its own credentials and URLs.
                Mode::Demo => found.retain(|p| !p.field.starts_with("genesys.") && !p.field.starts_with("GENESYS_")),
                Mode::ConfigOnly => {}
            }
            problems.extend(found);
            Some(config)
        }
        Err(e) => {
            problems.extend(e.problems());
            None
        }
    };
    let (errors, warnings): (Vec<Problem>, Vec<Problem>) = problems.into_iter().partition(Problem::is_error);
    for w in &warnings {
        tracing::warn!(field = %w.field, fix = %w.fix, "config warning: {}", w.message);
    }
    if errors.is_empty() {
        return config;
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if output == OutputFormat::Json {
        let list: Vec<_> = errors
            .iter()
            .map(|p| serde_json::json!({ "field": p.field, "message": p.message, "fix": p.fix }))
            .collect();
        println!("{}", serde_json::json!({ "ok": false, "problems": list }));
    }
    None
}

/// Run `f` on a multi-thread runtime with a token cancelled by SIGINT or SIGTERM. A second signal exits at once,
/// for when a graceful shutdown hangs.
fn block_on_with_shutdown<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let token = CancellationToken::new();
        let signals = token.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down (signal again to exit immediately)");
            signals.cancel();
            shutdown_signal().await;
            tracing::warn!("second signal: exiting without waiting");
            std::process::exit(130);
        });
        f(token).await
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => tracing::error!(err = %e, "cannot listen for SIGTERM; only Ctrl-C stops the exporter cleanly"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(err = %e, "cannot listen for Ctrl-C");
        // Without a signal source, never resolve rather than shut down at once.
        std::future::pending::<()>().await;
    }
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
