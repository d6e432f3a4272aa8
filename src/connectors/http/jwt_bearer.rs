//! [`JwtBearerGrant`]: the OAuth 2.0 JWT-bearer authorization grant (RFC 7523 section 2.1).
//!
//! Each token request posts, form-encoded, `grant_type` =
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion` = a freshly signed JWT
//! made by the caller's function (its claims are the connector kind's business; see
//! [`super::JwtSigner`]). No refresh token is issued: a new assertion is signed whenever
//! a new token is needed.
//!
//! The access token is cached until 60 s before its `expires_in`, and fetched again when
//! the caller forces a refresh (after a 401 from the API), like
//! [`super::OAuthClientCredentials`]. Neither the key, the assertion nor the token is
//! ever logged.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::token::{AssertionFn, CachedToken, cached_token, request_token};
use super::{HttpError, TokenSource, redact_url};
use crate::spec::SecretString;

/// `grant_type` of the JWT-bearer authorization grant (RFC 7523).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// JWT-bearer token source with caching.
pub struct JwtBearerGrant {
    http: reqwest::Client,
    token_url: url::Url,
    assertion: Arc<AssertionFn>,
    cached: CachedToken,
}

impl std::fmt::Debug for JwtBearerGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtBearerGrant")
            .field("token_url", &redact_url(&self.token_url))
            .finish_non_exhaustive()
    }
}

impl JwtBearerGrant {
    /// A token source posting the assertions `assertion` makes to `token_url`.
    pub fn new(
        http: reqwest::Client,
        token_url: &str,
        assertion: Arc<AssertionFn>,
    ) -> Result<JwtBearerGrant, HttpError> {
        let token_url = url::Url::parse(token_url).map_err(|e| HttpError::InvalidUrl {
            what: "OAuth token endpoint".to_string(),
            reason: e.to_string(),
        })?;
        Ok(JwtBearerGrant {
            http,
            token_url,
            assertion,
            cached: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<(SecretString, Instant), HttpError> {
        let assertion = (self.assertion)()?;
        let form = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("assertion", assertion.expose()),
        ];
        request_token(
            &self.http,
            &self.token_url,
            &form,
            "token request (jwt-bearer)",
        )
        .await
    }
}

#[async_trait]
impl TokenSource for JwtBearerGrant {
    async fn token(&self, force_refresh: bool) -> Result<SecretString, HttpError> {
        cached_token(&self.cached, force_refresh, || self.fetch()).await
    }
}
