//! Shared HTTP plumbing for the pull connectors (Graph, Okta, Google, Keycloak).
//!
//! * [`HttpClient`]: reqwest over rustls, a client-side rate limit (governor),
//!   retries with exponential backoff and jitter on 429/5xx/connection errors
//!   (honouring `Retry-After` and Okta's `X-Rate-Limit-*` headers), bearer or
//!   `SSWS` authorization, and one token refresh on a 401.
//! * [`TokenSource`]: [`OAuthClientCredentials`] (cached client-credentials
//!   token), [`JwtBearerGrant`] (RFC 7523 JWT-bearer grant) and [`StaticToken`]
//!   (a fixed API token).
//! * [`JwtSigner`]: the one signer of JWT assertions (RS256/PS256/ES256, `kid`,
//!   `x5t`/`x5t#S256`); each kind brings only its claims.
//! * The pager ([`Pages`]): RFC 8288 `Link` headers, OData `@odata.nextLink`,
//!   page tokens and `first`/`max` offsets, with a repeated-page check.
//!
//! Credentials stay with the origin they belong to (see [`origin`]): every request URL
//! must have the origin the client was pinned to, redirects are never followed, and
//! response bodies are read in chunks up to a cap (`max_response_bytes`).
//!
//! Logging never includes headers, tokens or query-string values.

mod assertion;
mod body;
mod client;
mod jwt_bearer;
pub mod origin;
mod pacing;
mod paging;
mod retry;
mod token;

#[cfg(test)]
mod tests;

use std::num::NonZeroU32;
use std::time::Duration;

pub use assertion::{
    JwtSigner, SignError, SigningAlgorithm, assertion_refused, thumbprint_sha1, thumbprint_sha256,
    unix_seconds, usable_algorithm,
};
pub use client::{AuthScheme, HttpClient};
pub use jwt_bearer::{JWT_BEARER_GRANT_TYPE, JwtBearerGrant};
pub use paging::{
    Cursor, Pages, RepeatedPage, next_link_from_header, next_offset, next_page_token,
    odata_next_link,
};
pub use retry::{RetryPolicy, parse_retry_after};
pub use token::{AssertionFn, ClientAuth, OAuthClientCredentials, StaticToken, TokenSource};

/// Most characters of a response body kept in [`HttpError::Status`].
pub const BODY_EXCERPT_CHARS: usize = 500;

/// Default cap on one API response body (a page of users is a few MiB at most).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Cap on a token endpoint's response body (a token response is a few KiB).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// Settings for one [`HttpClient`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time allowed to open a TCP/TLS connection; `None` = no limit.
    pub connect_timeout: Option<Duration>,
    /// Time allowed between two reads of a response; `None` = no limit.
    pub read_timeout: Option<Duration>,
    /// Cap on the total time spent retrying one request.
    pub max_retry_time: Duration,
    /// Cap on the attempts at one request (the first included): a server that keeps
    /// failing while asking to retry at once is given up on, too.
    pub max_attempts: u32,
    /// Client-side ceiling on the request rate; `None`: no ceiling (requests go one at a
    /// time, paced by the provider's rate-limit headers and `Retry-After`). Each kind sets
    /// its default from its provider's documented limits.
    pub requests_per_second: Option<NonZeroU32>,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// Backoff shape used between retries.
    pub retry: RetryPolicy,
    /// The `kind` label of this client's requests in the metrics (`keycloak`, `okta`, ...).
    pub metrics_label: &'static str,
    /// Largest response body read; a larger one fails the request
    /// ([`HttpError::TooLarge`]). Default [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub max_response_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            max_retry_time: Duration::from_secs(300),
            max_attempts: 10,
            requests_per_second: None,
            user_agent: concat!("idsync/", env!("CARGO_PKG_VERSION")).to_string(),
            retry: RetryPolicy::default(),
            metrics_label: "http",
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Everything that can go wrong talking to an identity provider over HTTP.
///
/// `url` fields hold only scheme, host and path: query values may be secret.
/// Why retrying ended: a provider throttling us (429) is advised differently from one
/// failing on its side (5xx), where lowering our rate would not help.
fn gave_up_message(url_path: &str, attempts: u32, last_status: u16) -> String {
    match last_status {
        429 => format!(
            "{url_path} still throttled or failing after {attempts} attempt(s) (last HTTP \
             429): the provider keeps throttling; lower requests_per_second or raise \
             max_retry_time"
        ),
        status => format!(
            "{url_path} still throttled or failing after {attempts} attempt(s) (last HTTP \
             {status}): the provider is failing on its side; check its status page and try \
             again later (raising max_retry_time waits longer)"
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {reason}; check the TLS and user-agent settings")]
    Build {
        /// What reqwest reported.
        reason: String,
    },
    /// A URL could not be parsed.
    #[error("invalid URL for {what}: {reason}; check the configured base URL")]
    InvalidUrl {
        /// Which URL (never its query).
        what: String,
        /// The parse error.
        reason: String,
    },
    /// No connection could be made (after retrying).
    #[error(
        "cannot connect to {url} after {attempts} attempt(s): {reason}; check the host name, \
         DNS, proxy and firewall"
    )]
    Connect {
        /// Host and path.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What the transport reported (without URL).
        reason: String,
    },
    /// The request timed out (after retrying).
    #[error(
        "request to {url} timed out after {attempts} attempt(s); check network reachability \
         and the provider's status page, or raise max_retry_time"
    )]
    Timeout {
        /// Host and path.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The server answered with a status that is not retried.
    #[error(
        "{url_path} answered HTTP {status}: {body_excerpt}; check the credentials' \
         permissions/scopes and the request"
    )]
    Status {
        /// HTTP status code.
        status: u16,
        /// Host and path.
        url_path: String,
        /// First characters of the body (≤ [`BODY_EXCERPT_CHARS`]).
        body_excerpt: String,
    },
    /// Retrying went on until `max_retry_time` would be exceeded.
    #[error("{}", gave_up_message(url_path, *attempts, *last_status))]
    Throttled {
        /// Host and path.
        url_path: String,
        /// Attempts made.
        attempts: u32,
        /// Status of the last answer.
        last_status: u16,
    },
    /// The token endpoint refused to issue a token.
    #[error(
        "token endpoint {token_url} refused the client (HTTP {status}, error `{code}`: \
         {description}); check client_id, the secret or key, tenant and scopes"
    )]
    Auth {
        /// Host and path of the token endpoint.
        token_url: String,
        /// HTTP status code.
        status: u16,
        /// OAuth error code such as `invalid_client` (or `unknown`).
        code: String,
        /// `error_description`, truncated.
        description: String,
    },
    /// A request URL (a paging link, a delta link) has another scheme, host or port than
    /// the configured one; nothing was sent.
    #[error(
        "refused to send a request to {offered}: {what} points outside the configured \
         {expected}; credentials are only sent to the host they were configured for"
    )]
    ForeignOrigin {
        /// Which URL (`the next page link`, ...).
        what: String,
        /// The configured origin(s).
        expected: String,
        /// The origin offered.
        offered: String,
    },
    /// A configured URL would send credentials in clear text.
    #[error("{what} `{url}` is refused: {reason}")]
    Insecure {
        /// Which setting.
        what: String,
        /// Scheme, host and path.
        url: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The server answered with a redirect; redirects are never followed, so credentials
    /// never reach the `Location`.
    #[error(
        "{url_path} answered a redirect (HTTP {status}) to {location}; idsync follows no \
         redirects, so no credential was sent there: configure the final URL{hint}"
    )]
    Redirect {
        /// Host and path asked.
        url_path: String,
        /// HTTP status code.
        status: u16,
        /// Scheme, host and path of the `Location` (or `no Location`).
        location: String,
        /// Extra words when the redirect leaves the configured host.
        hint: String,
    },
    /// A response body is larger than the cap.
    #[error(
        "the response of {url_path} is larger than {limit} bytes, the most idsync reads \
         ({setting}); check that the URL points at the provider's API"
    )]
    TooLarge {
        /// Host and path.
        url_path: String,
        /// The cap in bytes.
        limit: usize,
        /// Which cap (`max_response_bytes`, `the token response limit`).
        setting: &'static str,
    },
    /// A body could not be read or decoded as the expected JSON.
    #[error(
        "cannot decode the response of {url_path}: {reason}; check that the URL points at the provider's API"
    )]
    Decode {
        /// Host and path.
        url_path: String,
        /// The decoding error.
        reason: String,
    },
}

/// `scheme://host[:port]/path` of a URL: what may be logged or shown.
pub(crate) fn redact_url(url: &url::Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    out
}

/// The first [`BODY_EXCERPT_CHARS`] characters of `body`, with an ellipsis if cut.
pub(crate) fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let head: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
