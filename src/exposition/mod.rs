//! Reads the store and serves it.
