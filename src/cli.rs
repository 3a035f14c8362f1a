//! The exporter command line: `run`, `demo`, `simulate`, `check`. (Stub: being written.)

#[derive(Debug, Clone, Default)]
pub struct RunArgs {}
#[derive(Debug, Clone, Default)]
pub struct DemoArgs {}
#[derive(Debug, Clone, Default)]
pub struct CheckArgs {}
