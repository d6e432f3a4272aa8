//! [`HttpClient`]: authenticated, rate-limited, retrying JSON GETs.
//!
//! Each request waits for the client-side rate limiter, adds the
//! `Authorization` header from the [`TokenSource`], and is retried on 429,
//! 5xx and connection errors until `max_retry_time` would be exceeded. A 401
//! triggers one forced token refresh and one retry. Waits use
//! `tokio::time::sleep`, so tests can run with paused time.
//!
//! The client is pinned to origins ([`HttpClient::pinned_to`]; unpinned, to the origin of
//! its first request): a request URL elsewhere fails before anything is sent. Redirects
//! are not followed (a 3xx fails the request, naming the `Location`), and bodies are read
//! up to `max_response_bytes`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::body::{BodyError, error_text, read_capped, redirect_error};
use super::origin::{self, Origin};
use super::retry::{is_retryable, server_delay, small_jitter};
use super::token::transport_error;
use super::{HttpError, HttpOptions, TokenSource, excerpt, redact_url};

/// Scheme word put before the token in the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>` (OAuth).
    Bearer,
    /// `Authorization: SSWS <token>` (Okta API token).
    Ssws,
}

impl AuthScheme {
    fn word(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "Bearer",
            AuthScheme::Ssws => "SSWS",
        }
    }
}

/// Shared HTTP client of one connector. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    options: HttpOptions,
    /// The ceiling of [`HttpOptions::requests_per_second`], if any.
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// No request before this: the provider's rate-limit headers asked for a pause
    /// ([`super::pacing`]). Shared by clones.
    paced_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    auth: Option<(Arc<dyn TokenSource>, AuthScheme)>,
    /// Where requests may go; empty until [`HttpClient::pinned_to`].
    origins: Vec<Origin>,
    /// Unpinned clients: the origin of the first request, which all later ones must share.
    first_origin: Arc<OnceLock<Origin>>,
    /// The configured URLs credentials go to that are plain `http` (redacted), for
    /// [`HttpClient::warn_plain_http`].
    plain_http: Vec<String>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("options", &self.options)
            .field("auth", &self.auth.as_ref().map(|(_, scheme)| scheme))
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

/// Outcome of one attempt, before deciding whether to retry.
enum Attempt {
    Done(serde_json::Value, HeaderMap),
    Answer(StatusCode, HeaderMap, String),
    Transport(HttpError),
}

impl HttpClient {
    /// Builds the client (rustls, timeouts, user agent, rate limiter).
    pub fn new(options: HttpOptions) -> Result<HttpClient, HttpError> {
        // Redirects are never followed: a Location elsewhere must not receive credentials.
        let mut builder = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none());
        if let Some(t) = options.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = options.read_timeout {
            builder = builder.read_timeout(t);
        }
        let inner = builder.build().map_err(|e| HttpError::Build {
            reason: e.to_string(),
        })?;
        let limiter = options
            .requests_per_second
            .map(|rate| Arc::new(RateLimiter::direct(Quota::per_second(rate))));
        Ok(HttpClient {
            inner,
            options,
            limiter,
            paced_until: Arc::new(std::sync::Mutex::new(None)),
            auth: None,
            origins: Vec::new(),
            first_origin: Arc::new(OnceLock::new()),
            plain_http: Vec::new(),
        })
    }

    /// The same client, allowed to send requests only to the origins of `urls` (each a
    /// configured URL and the setting it comes from). Each must be `https`, or `http` on a
    /// loopback host with `allow_insecure_http`.
    pub fn pinned_to(
        mut self,
        urls: &[(&str, &str)],
        allow_insecure_http: bool,
    ) -> Result<HttpClient, HttpError> {
        for (url, what) in urls {
            let origin = origin::configured_origin(url, what, allow_insecure_http)?;
            if !self.origins.contains(&origin) {
                self.origins.push(origin);
            }
            self.plain_http.extend(origin::plain_http_urls(&[url]));
        }
        Ok(self)
    }

    /// The same client, knowing that its credentials also go to the token endpoint
    /// `token_url` (`what` names the setting), checked by the same rule as a pinned origin;
    /// requests still go only to the pinned origins.
    pub fn with_token_endpoint(
        mut self,
        token_url: &str,
        what: &str,
        allow_insecure_http: bool,
    ) -> Result<HttpClient, HttpError> {
        origin::configured_origin(token_url, what, allow_insecure_http)?;
        self.plain_http
            .extend(origin::plain_http_urls(&[token_url]));
        Ok(self)
    }

    /// Logs, at WARN, each plain-`http` URL this client was allowed to use
    /// (`allow_insecure_http`); connectors call it at the start of every read.
    pub fn warn_plain_http(&self, kind: &str) {
        origin::warn_plain_http(kind, &self.plain_http);
    }

    /// A connector's client: built from `options` and pinned to the origin of `api` (its
    /// URL and the setting it comes from), and, when it has one, `token_url` checked by the
    /// same rule, so credentials go nowhere else.
    pub fn for_api(
        options: HttpOptions,
        api: (&str, &str),
        token_url: Option<(&str, &str)>,
        allow_insecure_http: bool,
    ) -> Result<HttpClient, HttpError> {
        let http = HttpClient::new(options)?.pinned_to(&[api], allow_insecure_http)?;
        match token_url {
            Some((url, what)) => http.with_token_endpoint(url, what, allow_insecure_http),
            None => Ok(http),
        }
    }

    /// `Ok` when `url` may receive this client's requests (and credentials).
    fn check_origin(&self, url: &url::Url) -> Result<(), HttpError> {
        if !self.origins.is_empty() {
            return origin::check(url, &self.origins, "the request URL");
        }
        let Some(offered) = Origin::of(url) else {
            return origin::check(url, &[], "the request URL");
        };
        let first = self.first_origin.get_or_init(|| offered);
        origin::check(url, std::slice::from_ref(first), "the request URL")
    }

    /// The same client with an `Authorization` header from `source`.
    pub fn with_auth(mut self, source: Arc<dyn TokenSource>, scheme: AuthScheme) -> HttpClient {
        self.auth = Some((source, scheme));
        self
    }

    /// The underlying reqwest client (for token endpoints sharing TLS/timeouts).
    pub fn reqwest_client(&self) -> reqwest::Client {
        self.inner.clone()
    }

    /// The options this client was built with.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// GETs `url` with `query` appended and decodes the JSON body. Returns the
    /// body and the response headers (for `Link` paging).
    pub async fn get_json(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<(serde_json::Value, HeaderMap), HttpError> {
        self.get_json_with_headers(url, query, &[]).await
    }

    /// [`HttpClient::get_json`] with extra request headers (such as Graph's
    /// `Prefer: return=minimal`). Header values are never logged.
    pub async fn get_json_with_headers(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&'static str, &str)],
    ) -> Result<(serde_json::Value, HeaderMap), HttpError> {
        let url = url::Url::parse(url).map_err(|e| HttpError::InvalidUrl {
            what: "API request".to_string(),
            reason: e.to_string(),
        })?;
        let shown = redact_url(&url);
        self.check_origin(&url)?;
        let started = Instant::now();
        let mut attempts: u32 = 0;
        let mut refreshed = false;
        let mut force_refresh = false;
        loop {
            attempts += 1;
            self.wait_for_rate_limit().await;
            let outcome = self
                .attempt(&url, query, headers, &shown, attempts, force_refresh)
                .await?;
            force_refresh = false;
            let counted = match &outcome {
                Attempt::Done(..) => "ok",
                Attempt::Answer(status, ..) if *status == StatusCode::TOO_MANY_REQUESTS => {
                    "throttled"
                }
                Attempt::Answer(..) => "error",
                Attempt::Transport(_) => "transport",
            };
            crate::metrics::IDP_REQUESTS
                .with_label_values(&[self.options.metrics_label, counted])
                .inc();
            let (delay, last_status, transport) = match outcome {
                Attempt::Done(value, headers) => {
                    self.pace(&headers);
                    return Ok((value, headers));
                }
                Attempt::Answer(status, _, _)
                    if status == StatusCode::UNAUTHORIZED && !refreshed && self.auth.is_some() =>
                {
                    tracing::info!(url = %shown, attempt = attempts, "HTTP 401: refreshing the token once");
                    refreshed = true;
                    force_refresh = true;
                    continue;
                }
                Attempt::Answer(status, headers, body) => {
                    if !is_retryable(status) {
                        return Err(HttpError::Status {
                            status: status.as_u16(),
                            url_path: shown,
                            body_excerpt: excerpt(&body),
                        });
                    }
                    let delay = match server_delay(&headers, crate::clock::system_now()) {
                        Some(d) => d + small_jitter(),
                        None => self.options.retry.backoff(attempts),
                    };
                    (delay, Some(status.as_u16()), None)
                }
                Attempt::Transport(err) => (self.options.retry.backoff(attempts), None, Some(err)),
            };
            if started.elapsed() + delay > self.options.max_retry_time
                || attempts >= self.options.max_attempts
            {
                return Err(give_up(shown, attempts, last_status, transport));
            }
            tracing::warn!(
                url = %shown,
                attempt = attempts,
                status = last_status,
                delay_ms = delay.as_millis() as u64,
                "transient failure; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One request; `Err` only for failures that must not be retried.
    async fn attempt(
        &self,
        url: &url::Url,
        query: &[(&str, &str)],
        headers: &[(&'static str, &str)],
        shown: &str,
        attempt: u32,
        force_refresh: bool,
    ) -> Result<Attempt, HttpError> {
        let mut request = self
            .inner
            .get(url.clone())
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((source, scheme)) = &self.auth {
            let token = source.token(force_refresh).await?;
            let mut value = HeaderValue::from_str(&format!("{} {}", scheme.word(), token.expose()))
                .map_err(|_| HttpError::Auth {
                    token_url: shown.to_string(),
                    status: 0,
                    code: "invalid_token_characters".to_string(),
                    description: "the token cannot be sent in an HTTP header".to_string(),
                })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let query_keys: Vec<&str> = query.iter().map(|(k, _)| *k).collect();
        let sent = Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(method = "GET", url = %shown, ?query_keys, attempt, error = "transport", "http request");
                return Ok(Attempt::Transport(transport_error(shown, &e)));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        tracing::debug!(
            method = "GET",
            url = %shown,
            ?query_keys,
            status = status.as_u16(),
            duration_ms = sent.elapsed().as_millis() as u64,
            attempt,
            "http request"
        );
        if status.is_redirection() {
            return Err(redirect_error(url, status.as_u16(), &headers));
        }
        if !status.is_success() {
            let body = error_text(response).await;
            return Ok(Attempt::Answer(status, headers, body));
        }
        let body = match read_capped(response, self.options.max_response_bytes).await {
            Ok(body) => body,
            Err(BodyError::Transport(e)) => {
                return Ok(Attempt::Transport(transport_error(shown, &e)));
            }
            Err(BodyError::TooLarge) => {
                return Err(HttpError::TooLarge {
                    url_path: shown.to_string(),
                    limit: self.options.max_response_bytes,
                    setting: "max_response_bytes",
                });
            }
        };
        let value = serde_json::from_slice(&body).map_err(|e| HttpError::Decode {
            url_path: shown.to_string(),
            reason: format!(
                "body is not JSON ({e}): {}",
                excerpt(&String::from_utf8_lossy(&body[..body.len().min(4096)]))
            ),
        })?;
        Ok(Attempt::Done(value, headers))
    }

    /// Waits (on the tokio clock) until the provider's pacing has passed and the rate
    /// limiter, if any, admits one request.
    async fn wait_for_rate_limit(&self) {
        let paced = *self
            .paced_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = paced {
            tokio::time::sleep_until(until).await;
        }
        let Some(limiter) = &self.limiter else {
            return;
        };
        let clock = DefaultClock::default();
        while let Err(not_until) = limiter.check() {
            let wait = not_until.wait_time_from(clock.now());
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Reads an answer's rate-limit headers: when the provider's bucket runs low, the
    /// next request waits ([`super::pacing::pause`]).
    fn pace(&self, headers: &HeaderMap) {
        let pause = super::pacing::pause(headers, crate::clock::system_now());
        if let Some(pause) = pause {
            tracing::info!(
                kind = self.options.metrics_label,
                pause_ms = pause.as_millis() as u64,
                "the provider's rate-limit bucket is low; pacing requests until it resets"
            );
        }
        *self
            .paced_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            pause.map(|p| tokio::time::Instant::now() + p);
    }
}

/// The error returned when retrying must stop.
fn give_up(
    url: String,
    attempts: u32,
    last_status: Option<u16>,
    transport: Option<HttpError>,
) -> HttpError {
    match (last_status, transport) {
        (Some(last_status), _) => HttpError::Throttled {
            url_path: url,
            attempts,
            last_status,
        },
        (None, Some(HttpError::Connect { reason, .. })) => HttpError::Connect {
            url,
            attempts,
            reason,
        },
        (None, Some(HttpError::Timeout { .. })) => HttpError::Timeout { url, attempts },
        (None, Some(other)) => other,
        (None, None) => HttpError::Connect {
            url,
            attempts,
            reason: "no answer".to_string(),
        },
    }
}
