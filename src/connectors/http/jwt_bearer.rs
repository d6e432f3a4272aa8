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
use tokio::time::Instant;

use super::token::{AssertionFn, TokenEndpoint};
use super::{HttpError, TokenSource};
use crate::spec::SecretString;

/// `grant_type` of the JWT-bearer authorization grant (RFC 7523).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// JWT-bearer token source with caching.
pub struct JwtBearerGrant {
    endpoint: TokenEndpoint,
    assertion: Arc<AssertionFn>,
}

impl std::fmt::Debug for JwtBearerGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtBearerGrant")
            .field("token_url", &self.endpoint.shown())
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
        Ok(JwtBearerGrant {
            endpoint: TokenEndpoint::new(http, token_url)?,
            assertion,
        })
    }

    async fn fetch(&self) -> Result<(SecretString, Instant), HttpError> {
        let assertion = (self.assertion)()?;
        let form = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("assertion", assertion.expose()),
        ];
        self.endpoint
            .request(&form, "token request (jwt-bearer)")
            .await
    }
}

#[async_trait]
impl TokenSource for JwtBearerGrant {
    async fn token(&self, force_refresh: bool) -> Result<SecretString, HttpError> {
        self.endpoint.token(force_refresh, || self.fetch()).await
    }
}
