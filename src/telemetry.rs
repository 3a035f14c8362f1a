//! Logging setup and the exporter's own metrics.
