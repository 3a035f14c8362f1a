//! OAuth client-credentials tokens: one token shared by every call, refreshed before it expires and after a 401.
//!
//! Genesys rate-limits per token and warns against cycling tokens to dodge limits, so there is exactly one current
//! token per process. Refreshes are serialised: concurrent callers that find the token stale wait for the one
//! refresh in flight instead of each asking for a new token.

use super::error::{Error, Result};
use super::models::{OAuthError, TokenResponse};
use base64::Engine as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A credential or token: shown as `***` in every Debug/Display, so it cannot leak through a log line or error.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    pub fn new(s: impl Into<String>) -> Self {
        Credential(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A bearer token and when it stops working.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Credential,
    pub expires_at: Instant,
    pub expires_at_unix: f64,
    /// Increases with every refresh; a 401 invalidates only the generation that got it.
    pub generation: u64,
    lifetime: Duration,
}

impl Token {
    /// Refresh once 90 % of the lifetime has passed (at least 1 s before expiry): early enough that no call uses a
    /// token in its last seconds, late enough not to waste the login service's budget.
    fn needs_refresh(&self, now: Instant) -> bool {
        let margin = (self.lifetime / 10).max(Duration::from_secs(1));
        now + margin >= self.expires_at
    }

    /// When the proactive refresh is due.
    pub fn refresh_at(&self) -> Instant {
        let margin = (self.lifetime / 10).max(Duration::from_secs(1));
        self.expires_at.checked_sub(margin).unwrap_or(self.expires_at)
    }
}

pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: Credential,
    current: Mutex<Option<Token>>,
    refresh: tokio::sync::Mutex<()>,
    generation: std::sync::atomic::AtomicU64,
    /// Called with the unix expiry of each new token (for `genesys_token_expiry_timestamp_seconds`).
    on_refresh: Box<dyn Fn(&Token) + Send + Sync>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("token_url", &self.token_url).field("client_id", &self.client_id).finish()
    }
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        login_base_url: &str,
        client_id: String,
        client_secret: Credential,
        on_refresh: impl Fn(&Token) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(TokenSource {
            http,
            token_url: format!("{}/oauth/token", login_base_url.trim_end_matches('/')),
            client_id,
            client_secret,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
            on_refresh: Box::new(on_refresh),
        })
    }

    fn cached(&self) -> Option<Token> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current token, fetching a new one when there is none or it is about to expire.
    pub async fn token(&self) -> Result<Token> {
        if let Some(t) = self.cached().filter(|t| !t.needs_refresh(Instant::now())) {
            return Ok(t);
        }
        let _guard = self.refresh.lock().await;
        // Someone else may have refreshed while we waited for the lock.
        if let Some(t) = self.cached().filter(|t| !t.needs_refresh(Instant::now())) {
            return Ok(t);
        }
        let t = self.fetch().await?;
        // The token is a Credential: its Debug is redacted, so this can never print it.
        tracing::debug!(token = ?t.value, generation = t.generation, expires_at_unix = t.expires_at_unix, "access token obtained");
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
        (self.on_refresh)(&t);
        Ok(t)
    }

    /// Generation of the cached token (0 when none).
    pub fn current_generation(&self) -> u64 {
        self.cached().map_or(0, |t| t.generation)
    }

    /// Forget `generation` after the API answered 401 to it; the next `token()` logs in again.
    pub fn invalidate(&self, generation: u64) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().is_some_and(|t| t.generation == generation) {
            *cur = None;
        }
    }

    /// Refresh proactively before expiry until `shutdown`, so calls and channel creation never meet an expired
    /// token. Failures are retried with backoff; the old token keeps serving meanwhile.
    pub async fn keep_fresh(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = match self.token().await {
                Ok(t) => {
                    backoff = Duration::from_secs(1);
                    t.refresh_at().saturating_duration_since(Instant::now()).max(Duration::from_millis(200))
                }
                Err(e) => {
                    tracing::warn!(err = %e, retry_in = ?backoff, "token refresh failed");
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    w
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn fetch(&self) -> Result<Token> {
        const ENDPOINT: &str = "oauth_token";
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.client_id,
            self.client_secret.expose()
        ));
        let started = Instant::now();
        let resp = self
            .http
            .post(&self.token_url)
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|source| Error::Http { endpoint: ENDPOINT, source: source.without_url() })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|source| Error::Http { endpoint: ENDPOINT, source })?;
        let parsed = read_token_answer(status, &body)?;
        let generation = self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Ok(Token::issued(&parsed, started, generation))
    }
}

/// Longest token lifetime believed: 7 days (an OAuth client issues 5 min to 48 h, genesys-api.md §6).
const MAX_TOKEN_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// The login service's answer as a token response or a typed error. Pure, so it can be fuzzed without a server.
pub fn read_token_answer(status: u16, body: &[u8]) -> Result<TokenResponse> {
    const ENDPOINT: &str = "oauth_token";
    if status == 429 {
        return Err(Error::RateLimited { endpoint: ENDPOINT, retry_after: Duration::from_secs(5) });
    }
    if !(200..300).contains(&status) {
        // Never echo the body verbatim: it is the login service's text, but keep only the documented fields.
        let reason = serde_json::from_slice::<OAuthError>(body)
            .map(|e| {
                let d = e.error_description.or(e.description).unwrap_or_default();
                if d.is_empty() {
                    e.error
                } else {
                    format!("{}: {d}", e.error)
                }
            })
            .unwrap_or_else(|_| "no error body".to_owned());
        return if status == 400 || status == 401 || status == 403 {
            Err(Error::Auth { status, reason })
        } else {
            Err(Error::Status { endpoint: ENDPOINT, status, code: "login".into(), message: reason, context_id: None })
        };
    }
    serde_json::from_slice(body).map_err(|source| Error::Decode { endpoint: ENDPOINT, source })
}

impl Token {
    /// The token of `resp`, requested at `started`.
    pub fn issued(resp: &TokenResponse, started: Instant, generation: u64) -> Token {
        // `expires_in` comes from the wire: a huge value would overflow `Instant + Duration` (a panic). No token lives
        // longer than the cap; refreshing such a one early costs one login.
        let lifetime = Duration::from_secs(resp.expires_in.clamp(1, MAX_TOKEN_LIFETIME_SECS));
        let now_unix = crate::model::now_ms() as f64 / 1000.0;
        // Count the request time against the lifetime: the token's clock started when the server issued it.
        let expires_at = started + lifetime;
        Token {
            value: Credential::new(resp.access_token.clone()),
            expires_at,
            expires_at_unix: now_unix + lifetime.as_secs_f64() - started.elapsed().as_secs_f64(),
            generation,
            lifetime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_is_redacted() {
        let c = Credential::new("hunter2");
        assert_eq!(format!("{c:?} {c}"), "*** ***");
    }

    #[test]
    fn a_token_claiming_to_live_forever_does_not_overflow_the_clock() {
        // Found writing the `token` fuzz target: `expires_in: 18446744073709551615` panicked in `Instant + Duration`.
        let resp = read_token_answer(200, br#"{"access_token":"t","expires_in":18446744073709551615}"#).unwrap();
        let now = Instant::now();
        let t = Token::issued(&resp, now, 1);
        assert!(!t.needs_refresh(now));
        assert!(t.refresh_at() > now + Duration::from_secs(24 * 3600));
        assert!(t.expires_at_unix.is_finite());
    }

    #[test]
    fn refresh_margin() {
        let now = Instant::now();
        let t = Token {
            value: Credential::new("x"),
            expires_at: now + Duration::from_secs(100),
            expires_at_unix: 0.0,
            generation: 1,
            lifetime: Duration::from_secs(100),
        };
        assert!(!t.needs_refresh(now));
        assert!(t.needs_refresh(now + Duration::from_secs(91)));
        assert_eq!(t.refresh_at(), now + Duration::from_secs(90));
    }
}
