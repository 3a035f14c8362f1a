//! Configuration: YAML file + environment, validated before anything connects. (Stub: being written.)

#[derive(Debug, Clone, Default)]
pub struct Config {}
