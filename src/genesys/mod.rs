//! The only code that knows Genesys Cloud wire formats: serde models, OAuth, the rate budget, the REST client
//! and decoding into [`crate::model::QueueUpdate`]s. Nothing outside this module parses or writes Genesys JSON
//! (the simulator reuses [`models`]).

pub mod auth;
pub mod budget;
pub mod client;
pub mod decode;
pub mod error;
pub mod models;

pub use auth::{Credential, TokenSource};
pub use budget::{Priority, RateBudget};
pub use client::ApiClient;
pub use error::Error;
