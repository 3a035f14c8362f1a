//! The queue store.
