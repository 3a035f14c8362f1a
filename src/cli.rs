//! The exporter command line: `run`, `demo`, `simulate`, `check`.
