//! Where API credentials come from: [`TokenSource`] and its implementations.
//!
//! * [`OAuthClientCredentials`]: OAuth 2.0 client-credentials grant (Graph,
//!   Okta service apps, Keycloak). The token is cached until 60 s before its
//!   `expires_in` and fetched again when the caller forces a refresh (after a
//!   401 from the API).
//! * [`StaticToken`]: a long-lived token such as Okta's `SSWS` API token.
//!
//! Tokens and secrets stay in [`SecretString`] and are never logged.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::body::{BodyError, error_text, read_capped, redirect_error};
use super::{HttpError, MAX_TOKEN_RESPONSE_BYTES, excerpt, redact_url};
use crate::spec::SecretString;

/// Safety margin: a cached token is replaced this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// `client_assertion_type` for a JWT client assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Something that hands out access tokens for the `Authorization` header.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A valid token; `force_refresh` asks for a new one (the API said 401).
    async fn token(&self, force_refresh: bool) -> Result<SecretString, HttpError>;
}

/// A fixed token (Okta `SSWS` API token, or a pre-issued bearer token).
#[derive(Debug, Clone)]
pub struct StaticToken(SecretString);

impl StaticToken {
    /// Wraps the token.
    pub fn new(token: SecretString) -> StaticToken {
        StaticToken(token)
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self, _force_refresh: bool) -> Result<SecretString, HttpError> {
        Ok(self.0.clone())
    }
}

/// Produces a fresh signed client assertion (JWT) for each token request.
pub type AssertionFn = dyn Fn() -> Result<SecretString, HttpError> + Send + Sync;

/// How the client proves its identity to the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret` form field.
    Secret(SecretString),
    /// `client_assertion` (JWT) made by the given function, sent with
    /// `client_assertion_type` = [`JWT_BEARER_ASSERTION`].
    Assertion(Arc<AssertionFn>),
    /// A public client (such as Keycloak's `admin-cli`): the client id alone.
    Public,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("Secret(********)"),
            ClientAuth::Assertion(_) => f.write_str("Assertion(<fn>)"),
            ClientAuth::Public => f.write_str("Public"),
        }
    }
}

/// The OAuth grant a token source uses.
#[derive(Clone)]
enum Grant {
    ClientCredentials,
    /// Resource-owner password grant (Keycloak's `admin-cli` with a service user).
    Password {
        username: String,
        password: SecretString,
    },
}

/// OAuth 2.0 token source with caching: client credentials, or a password grant.
pub struct OAuthClientCredentials {
    endpoint: TokenEndpoint,
    client_id: String,
    auth: ClientAuth,
    grant: Grant,
    scope: Option<String>,
}

impl std::fmt::Debug for OAuthClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientCredentials")
            .field("token_url", &self.endpoint.shown())
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthClientCredentials {
    /// A token source posting to `token_url`; `http` is usually
    /// [`super::HttpClient::reqwest_client`] so timeouts and TLS are shared.
    pub fn new(
        http: reqwest::Client,
        token_url: &str,
        client_id: impl Into<String>,
        auth: ClientAuth,
        scope: Option<String>,
    ) -> Result<OAuthClientCredentials, HttpError> {
        Ok(OAuthClientCredentials {
            endpoint: TokenEndpoint::new(http, token_url)?,
            client_id: client_id.into(),
            auth,
            grant: Grant::ClientCredentials,
            scope,
        })
    }

    /// The same source using the resource-owner password grant for `username`.
    pub fn with_password_grant(
        mut self,
        username: impl Into<String>,
        password: SecretString,
    ) -> OAuthClientCredentials {
        self.grant = Grant::Password {
            username: username.into(),
            password,
        };
        self
    }

    async fn fetch(&self) -> Result<(SecretString, Instant), HttpError> {
        let mut form: Vec<(&str, String)> = match &self.grant {
            Grant::ClientCredentials => vec![("grant_type", "client_credentials".to_string())],
            Grant::Password { username, password } => vec![
                ("grant_type", "password".to_string()),
                ("username", username.clone()),
                ("password", password.expose().to_string()),
            ],
        };
        form.push(("client_id", self.client_id.clone()));
        match &self.auth {
            ClientAuth::Secret(s) => form.push(("client_secret", s.expose().to_string())),
            ClientAuth::Assertion(make) => {
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_string()));
                form.push(("client_assertion", make()?.expose().to_string()));
            }
            ClientAuth::Public => {}
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.clone()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.endpoint.request(&form, "token request").await
    }
}

#[async_trait]
impl TokenSource for OAuthClientCredentials {
    async fn token(&self, force_refresh: bool) -> Result<SecretString, HttpError> {
        self.endpoint.token(force_refresh, || self.fetch()).await
    }
}

/// A cached access token and the instant it stops being used.
type CachedToken = Mutex<Option<(SecretString, Instant)>>;

/// A token endpoint and the token it last issued: what every token source posts its
/// grant to and caches, whatever the grant.
pub(crate) struct TokenEndpoint {
    http: reqwest::Client,
    url: url::Url,
    cached: CachedToken,
}

impl TokenEndpoint {
    /// The endpoint at `token_url`, reached through `http`.
    pub(crate) fn new(http: reqwest::Client, token_url: &str) -> Result<TokenEndpoint, HttpError> {
        let url = url::Url::parse(token_url).map_err(|e| HttpError::InvalidUrl {
            what: "OAuth token endpoint".to_string(),
            reason: e.to_string(),
        })?;
        Ok(TokenEndpoint {
            http,
            url,
            cached: Mutex::new(None),
        })
    }

    /// The endpoint's URL as it may be shown (redacted).
    pub(crate) fn shown(&self) -> String {
        redact_url(&self.url)
    }

    /// POSTs `form` (see [`request_token`]).
    pub(crate) async fn request(
        &self,
        form: &[(&str, &str)],
        what: &'static str,
    ) -> Result<(SecretString, Instant), HttpError> {
        request_token(&self.http, &self.url, form, what).await
    }

    /// The cached token while it is valid (and no refresh is forced), else a fresh one
    /// from `fetch`, retried while it fails transiently. Holding the lock while fetching
    /// makes concurrent callers share one refresh.
    pub(crate) async fn token<F, Fut>(
        &self,
        force_refresh: bool,
        fetch: F,
    ) -> Result<SecretString, HttpError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(SecretString, Instant), HttpError>>,
    {
        let mut cached = self.cached.lock().await;
        if !force_refresh
            && let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(token.clone());
        }
        let (token, valid_until) = fetch_with_retries(fetch).await?;
        *cached = Some((token.clone(), valid_until));
        Ok(token)
    }
}

/// POSTs `form` to a token endpoint and reads the access token and its lifetime; the
/// endpoint's OAuth error (`error`, `error_description`) becomes [`HttpError::Auth`].
/// `http` must not follow redirects (as [`super::HttpClient::reqwest_client`]): a
/// redirect fails the request, so the secret or assertion only ever goes to `token_url`.
/// The body is read up to [`MAX_TOKEN_RESPONSE_BYTES`].
pub(crate) async fn request_token(
    http: &reqwest::Client,
    token_url: &url::Url,
    form: &[(&str, &str)],
    what: &'static str,
) -> Result<(SecretString, Instant), HttpError> {
    let where_ = redact_url(token_url);
    let started = Instant::now();
    let resp = http
        .post(token_url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| transport_error(&where_, &e))?;
    let status = resp.status();
    tracing::debug!(
        method = "POST",
        url = %where_,
        status = status.as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        what
    );
    if status.is_redirection() {
        // Never followed (the client has no redirect policy): the secret stays here.
        return Err(redirect_error(token_url, status.as_u16(), resp.headers()));
    }
    let body = if status.is_success() {
        match read_capped(resp, MAX_TOKEN_RESPONSE_BYTES).await {
            Ok(body) => String::from_utf8_lossy(&body).into_owned(),
            Err(BodyError::TooLarge) => {
                return Err(HttpError::TooLarge {
                    url_path: where_,
                    limit: MAX_TOKEN_RESPONSE_BYTES,
                    setting: "the token response limit",
                });
            }
            Err(BodyError::Transport(e)) => {
                return Err(HttpError::Decode {
                    url_path: where_,
                    reason: e.without_url().to_string(),
                });
            }
        }
    } else {
        error_text(resp).await
    };
    if !status.is_success() {
        return Err(match serde_json::from_str::<TokenErrorBody>(&body) {
            Ok(err) => HttpError::Auth {
                token_url: where_,
                status: status.as_u16(),
                code: err.error,
                description: excerpt(err.error_description.as_deref().unwrap_or("")),
            },
            Err(_) if status.is_client_error() => HttpError::Auth {
                token_url: where_,
                status: status.as_u16(),
                code: "unknown".to_string(),
                description: excerpt(&body),
            },
            Err(_) => HttpError::Status {
                status: status.as_u16(),
                url_path: where_,
                body_excerpt: excerpt(&body),
            },
        });
    }
    let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| HttpError::Decode {
        url_path: where_,
        reason: format!("token response is not the expected JSON: {e}"),
    })?;
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
    let valid_until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
    Ok((SecretString::new(parsed.access_token), valid_until))
}

/// Attempts at a token request when the endpoint fails transiently.
const TOKEN_ATTEMPTS: u32 = 5;

/// Whether a failed token request is worth repeating: the endpoint was unreachable, timed
/// out, throttled (429) or failed on its side (5xx). A refusal of the credentials is not.
pub(crate) fn transient(error: &HttpError) -> bool {
    match error {
        HttpError::Connect { .. } | HttpError::Timeout { .. } => true,
        HttpError::Status { status, .. } | HttpError::Auth { status, .. } => {
            *status == 429 || *status >= 500
        }
        _ => false,
    }
}

/// Runs a token request, repeating it with backoff while it fails transiently (token
/// endpoints throttle and fail like any API).
pub(crate) async fn fetch_with_retries<T, F, Fut>(mut fetch: F) -> Result<T, HttpError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, HttpError>>,
{
    let policy = super::RetryPolicy::default();
    let mut attempt = 1;
    loop {
        match fetch().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < TOKEN_ATTEMPTS && transient(&error) => {
                let delay = policy.backoff(attempt);
                tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, %error, "token request failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Maps a reqwest transport error (never its URL: it may carry secrets).
pub(crate) fn transport_error(url: &str, e: &reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout {
            url: url.to_string(),
            attempts: 1,
        }
    } else {
        HttpError::Connect {
            url: url.to_string(),
            attempts: 1,
            reason: error_chain(e),
        }
    }
}

/// The error and its sources, joined, without the URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = match e.url() {
        Some(_) => {
            let mut msg = e.to_string();
            if let Some(idx) = msg.find(" for url (") {
                msg.truncate(idx);
            }
            msg
        }
        None => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
