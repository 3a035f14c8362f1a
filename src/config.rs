//! Configuration: YAML file + environment, validated before anything connects.
