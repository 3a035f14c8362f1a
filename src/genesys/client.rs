//! The REST client: one method per Genesys endpoint the exporter uses.
//!
//! Every call goes through [`ApiClient::send`], which waits for the shared [`RateBudget`], attaches the one bearer
//! token, counts the call (`genesys_api_requests_total{endpoint,code}`), learns from the `inin-ratelimit-*` headers,
//! turns a 429 into a pause of exactly `Retry-After`, and retries once with a fresh token after a 401.

use super::auth::TokenSource;
use super::budget::{Priority, RateBudget};
use super::error::{Error, Result};
use super::models::*;
use crate::telemetry::SelfMetrics;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest page the queue listing is asked for. Genesys does not document the maximum; 100 is accepted by every
/// public client.
const QUEUE_PAGE_SIZE: u32 = 100;

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Arc<str>,
    tokens: Arc<TokenSource>,
    budget: Arc<RateBudget>,
    metrics: Arc<SelfMetrics>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("base", &self.base).finish()
    }
}

/// reqwest and tokio-tungstenite are built without a default rustls crypto provider (one crypto library in the
/// binary, not two), so ring must be installed before the first client is built. Idempotent.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Build the HTTP client all Genesys calls share (connection pooling, timeouts, rustls).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("genesys-cloud-exporter/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl ApiClient {
    pub fn new(
        http: reqwest::Client,
        api_base_url: &str,
        tokens: Arc<TokenSource>,
        budget: Arc<RateBudget>,
        metrics: Arc<SelfMetrics>,
    ) -> Self {
        ApiClient { http, base: api_base_url.trim_end_matches('/').into(), tokens, budget, metrics }
    }

    pub fn tokens(&self) -> &Arc<TokenSource> {
        &self.tokens
    }

    pub fn budget(&self) -> &Arc<RateBudget> {
        &self.budget
    }

    /// Resolve a `nextUri`-style path (absolute path or full URL) against the API base.
    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{}", self.base, path_or_url)
        }
    }

    /// One call with budget, token, metrics, 401 retry and 429 pause. `None` body for GET/HEAD/DELETE.
    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        priority: Priority,
        method: reqwest::Method,
        url: &str,
        body: Option<&(impl serde::Serialize + ?Sized)>,
    ) -> Result<Option<T>> {
        let mut retried_auth = false;
        loop {
            self.budget.acquire(priority).await;
            let token = self.tokens.token().await?;
            let mut req = self.http.request(method.clone(), url).bearer_auth(token.value.expose());
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = Instant::now();
            let result = req.send().await;
            let elapsed = started.elapsed().as_secs_f64();
            self.metrics.api_request_duration_seconds.with_label_values(&[endpoint]).observe(elapsed);
            let resp = match result {
                Ok(r) => r,
                Err(source) => {
                    self.metrics.api_requests_total.with_label_values(&[endpoint, "error"]).inc();
                    return Err(Error::Http { endpoint, source: source.without_url() });
                }
            };
            let status = resp.status().as_u16();
            self.metrics.api_requests_total.with_label_values(&[endpoint, status_label(status)]).inc();
            self.observe_rate_headers(resp.headers());
            let context_id = header_str(resp.headers(), "inin-correlation-id").map(str::to_owned);
            let retry_after = header_f64(resp.headers(), "retry-after");
            tracing::debug!(endpoint, status, took_ms = (elapsed * 1000.0).round(), context_id = ?context_id, "Genesys API call");
            let bytes = resp.bytes().await.map_err(|source| Error::Http { endpoint, source: source.without_url() })?;

            match status {
                401 if !retried_auth => {
                    // The token expired early or was revoked: log in again once, then give up.
                    self.tokens.invalidate(token.generation);
                    retried_auth = true;
                    continue;
                }
                429 => {
                    // Genesys always sends Retry-After on 429 since 2021; fall back to the window reset or 5 s.
                    let secs = retry_after.unwrap_or(5.0).clamp(0.0, 3600.0);
                    let retry_after = Duration::from_secs_f64(secs);
                    self.budget.pause_for(retry_after);
                    self.metrics.api_throttled_total.inc();
                    tracing::warn!(endpoint, retry_after_seconds = secs, context_id = ?context_id, "rate limited by Genesys");
                    return Err(Error::RateLimited { endpoint, retry_after });
                }
                _ => return read_answer(endpoint, status, method == reqwest::Method::HEAD, &bytes, context_id),
            }
        }
    }

    fn observe_rate_headers(&self, h: &reqwest::header::HeaderMap) {
        let allowed = header_f64(h, "inin-ratelimit-allowed");
        let count = header_f64(h, "inin-ratelimit-count");
        let reset = header_f64(h, "inin-ratelimit-reset");
        if allowed.is_some() || count.is_some() {
            self.budget.observe(allowed, count, reset);
            if let (Some(a), Some(c)) = (allowed, count) {
                self.metrics.api_rate_limit_remaining.set((a - c).max(0.0));
            }
        }
    }

    // -------------------------------------------------------------------------------------------------------
    // Endpoints

    /// Every queue, following `nextUri` (or `pageNumber` when the API omits it).
    pub async fn list_queues(&self) -> Result<Vec<Queue>> {
        let mut out = Vec::new();
        let mut next = Some(format!("/api/v2/routing/queues?pageSize={QUEUE_PAGE_SIZE}&pageNumber=1"));
        let mut page = 1u32;
        while let Some(path) = next.take() {
            let url = self.url(&path);
            let listing: QueueEntityListing = self
                .send("routing_queues", Priority::Discovery, reqwest::Method::GET, &url, None::<&()>)
                .await?
                .unwrap_or_default();
            let got = listing.entities.len();
            out.extend(listing.entities);
            next = match (listing.next_uri, listing.page_count) {
                (Some(n), _) if !n.is_empty() => Some(n),
                (None, Some(pc)) if page < pc && got > 0 => {
                    Some(format!("/api/v2/routing/queues?pageSize={QUEUE_PAGE_SIZE}&pageNumber={}", page + 1))
                }
                _ => None,
            };
            page += 1;
            // A server that keeps answering nextUri would loop forever; 10,000 pages is a million queues.
            if page > 10_000 {
                break;
            }
        }
        Ok(out)
    }

    /// Presence definitions of the org (current endpoint, falling back to the deprecated paged one on 404).
    pub async fn presence_definitions(&self) -> Result<Vec<PresenceDefinition>> {
        let url = self.url("/api/v2/presence/definitions");
        match self
            .send::<PresenceDefinitionListing>(
                "presence_definitions",
                Priority::Discovery,
                reqwest::Method::GET,
                &url,
                None::<&()>,
            )
            .await
        {
            Ok(l) => Ok(l.unwrap_or_default().entities),
            Err(Error::Status { status: 404, .. }) => {
                let mut out = Vec::new();
                let mut page = 1;
                loop {
                    let url = self.url(&format!("/api/v2/presencedefinitions?pageSize=100&pageNumber={page}"));
                    let l: PresenceDefinitionListing = self
                        .send("presence_definitions", Priority::Discovery, reqwest::Method::GET, &url, None::<&()>)
                        .await?
                        .unwrap_or_default();
                    let n = l.entities.len();
                    out.extend(l.entities);
                    if n == 0 || l.page_count.is_none_or(|pc| page >= pc) || page >= 100 {
                        return Ok(out);
                    }
                    page += 1;
                }
            }
            Err(e) => Err(e),
        }
    }

    pub async fn create_channel(&self) -> Result<Channel> {
        let url = self.url("/api/v2/notifications/channels");
        self.send::<Channel>("notifications_channels", Priority::Channel, reqwest::Method::POST, &url, None::<&()>)
            .await?
            .ok_or(Error::Status {
                endpoint: "notifications_channels",
                status: 200,
                code: "empty".into(),
                message: "channel creation returned no body".into(),
                context_id: None,
            })
    }

    /// Replace the channel's subscriptions. With `ignore_errors`, topics the client may not read come back
    /// `Rejected` instead of failing the whole request with 403.
    pub async fn put_subscriptions(
        &self,
        channel_id: &str,
        topics: &[String],
        ignore_errors: bool,
    ) -> Result<Vec<ChannelTopic>> {
        let url = self
            .url(&format!("/api/v2/notifications/channels/{channel_id}/subscriptions?ignoreErrors={ignore_errors}"));
        let body: Vec<ChannelTopic> = topics.iter().map(|t| ChannelTopic::request(t.clone())).collect();
        Ok(self
            .send::<ChannelTopicEntityListing>(
                "notifications_subscriptions",
                Priority::Channel,
                reqwest::Method::PUT,
                &url,
                Some(&body),
            )
            .await?
            .unwrap_or_default()
            .entities)
    }

    /// Remove every subscription of a channel (used by `check`, which must not leave a subscribed channel behind).
    pub async fn delete_subscriptions(&self, channel_id: &str) -> Result<()> {
        let url = self.url(&format!("/api/v2/notifications/channels/{channel_id}/subscriptions"));
        self.send::<serde_json::Value>(
            "notifications_subscriptions",
            Priority::Channel,
            reqwest::Method::DELETE,
            &url,
            None::<&()>,
        )
        .await
        .map(|_| ())
    }

    pub async fn observations_query(
        &self,
        q: &QueueObservationQuery,
        priority: Priority,
    ) -> Result<QueueObservationQueryResponse> {
        let url = self.url("/api/v2/analytics/queues/observations/query");
        Ok(self.send("observations_query", priority, reqwest::Method::POST, &url, Some(q)).await?.unwrap_or_default())
    }

    pub async fn aggregates_query(
        &self,
        q: &ConversationAggregationQuery,
        priority: Priority,
    ) -> Result<ConversationAggregateQueryResponse> {
        let url = self.url("/api/v2/analytics/conversations/aggregates/query");
        Ok(self.send("aggregates_query", priority, reqwest::Method::POST, &url, Some(q)).await?.unwrap_or_default())
    }
}

/// What an answer other than a first 401 or a 429 means: a 2xx body decoded as `T` (`None` when empty or for HEAD),
/// else the typed error built from Genesys's `ErrorBody`. Pure, so every REST body can be fuzzed without a server.
pub fn read_answer<T: DeserializeOwned>(
    endpoint: &'static str,
    status: u16,
    head: bool,
    body: &[u8],
    context_id: Option<String>,
) -> Result<Option<T>> {
    if (200..=299).contains(&status) {
        if body.is_empty() || head {
            return Ok(None);
        }
        return serde_json::from_slice(body).map(Some).map_err(|source| Error::Decode { endpoint, source });
    }
    // Any body, including none or garbage, still gives the status's error.
    let body: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let context_id = body.context_id.clone().or(context_id);
    if status == 403 {
        return Err(Error::Forbidden { endpoint, code: body.code, message: body.message });
    }
    Err(Error::Status { endpoint, status, code: body.code, message: body.message, context_id })
}

fn header_str<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn header_f64(h: &reqwest::header::HeaderMap, name: &str) -> Option<f64> {
    header_str(h, name).and_then(|s| s.trim().parse::<f64>().ok()).filter(|v| v.is_finite())
}

/// Bounded label values for `code`.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
