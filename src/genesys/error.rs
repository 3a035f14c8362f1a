//! Errors of the Genesys API client, one variant per cause, each with a stable `kind()` for logs and labels.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request never got an HTTP answer (connect, TLS, timeout, body read).
    #[error("{endpoint}: request failed: {source}")]
    Http {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The login service refused the client credentials.
    #[error("authentication failed ({status}): {reason}; check GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET")]
    Auth { status: u16, reason: String },
    /// 403: the OAuth client lacks a permission.
    #[error("{endpoint}: forbidden ({code}): {message}")]
    Forbidden { endpoint: &'static str, code: String, message: String },
    /// 429: wait `retry_after` before the next call.
    #[error("{endpoint}: rate limited, retry after {retry_after:?}")]
    RateLimited { endpoint: &'static str, retry_after: Duration },
    /// Any other non-2xx answer, with Genesys's error body when there was one.
    #[error("{endpoint}: HTTP {status} {code}: {message}{}", context_id.as_deref().map(|c| format!(" (correlation id {c})")).unwrap_or_default())]
    Status { endpoint: &'static str, status: u16, code: String, message: String, context_id: Option<String> },
    /// A 2xx answer whose body is not the documented shape.
    #[error("{endpoint}: unexpected response body: {source}")]
    Decode {
        endpoint: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The caller gave up (shutdown).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Stable label/log value.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Http { .. } => "http",
            Error::Auth { .. } => "auth",
            Error::Forbidden { .. } => "forbidden",
            Error::RateLimited { .. } => "rate_limited",
            Error::Status { status, .. } if *status >= 500 => "server_error",
            Error::Status { status: 404, .. } => "not_found",
            Error::Status { .. } => "client_error",
            Error::Decode { .. } => "decode",
            Error::Cancelled => "cancelled",
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Auth { status, .. } | Error::Status { status, .. } => Some(*status),
            Error::Forbidden { .. } => Some(403),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Worth retrying after a pause (server trouble, throttling, network), as opposed to a request that will
    /// fail the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Http { .. } | Error::RateLimited { .. })
            || matches!(self, Error::Status { status, .. } if *status >= 500 || *status == 409)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
