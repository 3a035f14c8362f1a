//! genesys-cloud-exporter: Genesys Cloud queue state as Prometheus and OpenTelemetry metrics.
//!
//! # Layout
//! The modules follow the path a notification travels:
//!
//! - [`genesys`]: the only code that knows Genesys wire formats: serde models, OAuth, the REST client, decoding of
//!   topic bodies and query responses into [`model::QueueUpdate`]s.
//! - [`collector`]: keeps the sources alive (discovery, notification channels, re-seed) and feeds the store.
//! - [`state`]: the queue store; no I/O, no wire types. Renders each queue's metric block on change.
//! - [`exposition`]: reads the store, never writes it: `/metrics`, landing page, health endpoints.
//! - [`sim`]: a fake Genesys Cloud org speaking the real wire format, for `demo`, `simulate`, tests and benchmarks.
//! - [`config`], [`cli`], [`telemetry`]: configuration, command line, logging and the exporter's own metrics.
//!
//! Dependencies point one way: `genesys` and `state` depend on [`model`]; `collector` uses `genesys` and `state`;
//! `exposition` reads `state`; `sim` uses `genesys::models` only.

pub mod app;
pub mod check;
pub mod cli;
pub mod collector;
pub mod config;
pub mod exposition;
pub mod genesys;
pub mod model;
pub mod reload;
pub mod sim;
pub mod state;
pub mod telemetry;
