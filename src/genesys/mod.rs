//! The only code that knows Genesys Cloud wire formats.

pub mod models;
