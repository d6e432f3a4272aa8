//! [`JwtBearerGrant`]: the OAuth 2.0 JWT-bearer authorization grant (RFC 7523 section 2.1),
//! as Google's service accounts use it.
//!
//! Each token request posts, form-encoded, `grant_type` =
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion` = a freshly signed RS256
//! JWT whose claims are `iss` (the service account's `client_email`), `sub` (the user to
//! impersonate, for Google's domain-wide delegation), `scope` (space-separated), `aud` (the
//! token URL), `iat` and `exp` (`iat` + the lifetime, at most one hour). The header carries
//! `kid` (the key file's `private_key_id`) when known. No refresh token is issued: a new
//! assertion is signed whenever a new token is needed
//! (<https://developers.google.com/identity/protocols/oauth2/service-account>).
//!
//! The access token is cached until 60 s before its `expires_in`, and fetched again when
//! the caller forces a refresh (after a 401 from the API), like
//! [`super::OAuthClientCredentials`]. Neither the key, the assertion nor the token is
//! ever logged.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::token::{CachedToken, cached_token, request_token};
use super::{HttpError, TokenSource, redact_url};
use crate::spec::SecretString;

/// `grant_type` of the JWT-bearer authorization grant (RFC 7523).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The longest assertion lifetime Google accepts
/// (<https://developers.google.com/identity/protocols/oauth2/service-account>).
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// Who the assertion speaks for, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearerClaims {
    /// `iss`: the service account (Google: `client_email`).
    pub issuer: String,
    /// `sub`: the user to act as (Google: the Workspace admin, for domain-wide
    /// delegation); `None` leaves the claim out.
    pub subject: Option<String>,
    /// `scope`: the scopes, joined with spaces; empty leaves the claim out.
    pub scopes: Vec<String>,
    /// `aud`; `None` means the token URL, as given.
    pub audience: Option<String>,
}

/// The claims as serialised into the assertion.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// JWT-bearer token source with caching (Google service accounts).
pub struct JwtBearerGrant {
    http: reqwest::Client,
    token_url: url::Url,
    claims: JwtBearerClaims,
    key: EncodingKey,
    key_id: Option<String>,
    lifetime: Duration,
    cached: CachedToken,
}

impl std::fmt::Debug for JwtBearerGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtBearerGrant")
            .field("token_url", &redact_url(&self.token_url))
            .field("claims", &self.claims)
            .field("key_id", &self.key_id)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtBearerGrant {
    /// A token source posting signed assertions to `token_url`. `private_key_pem` is an
    /// RSA private key (PKCS#8 `BEGIN PRIVATE KEY`, as in Google key files, or PKCS#1);
    /// `key_id` goes into the header's `kid`. Assertions live one hour.
    pub fn new(
        http: reqwest::Client,
        token_url: &str,
        claims: JwtBearerClaims,
        private_key_pem: &SecretString,
        key_id: Option<String>,
    ) -> Result<JwtBearerGrant, HttpError> {
        let mut claims = claims;
        if claims.audience.is_none() {
            claims.audience = Some(token_url.to_string());
        }
        let token_url = url::Url::parse(token_url).map_err(|e| HttpError::InvalidUrl {
            what: "OAuth token endpoint".to_string(),
            reason: e.to_string(),
        })?;
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes()).map_err(|e| {
            key_error(
                &token_url,
                format!("the private key is not an RSA PEM key: {e}"),
            )
        })?;
        let grant = JwtBearerGrant {
            http,
            token_url,
            claims,
            key,
            key_id,
            lifetime: MAX_ASSERTION_LIFETIME,
            cached: Mutex::new(None),
        };
        // Sign once now, so that a key that cannot sign fails here and not mid-run.
        grant.assertion_at(crate::clock::system_now())?;
        Ok(grant)
    }

    /// The same source with a shorter assertion lifetime (capped at one hour).
    pub fn with_lifetime(mut self, lifetime: Duration) -> JwtBearerGrant {
        self.lifetime = lifetime.min(MAX_ASSERTION_LIFETIME);
        self
    }

    /// The claims an assertion made at `now` carries.
    pub fn claims_at(&self, now: SystemTime) -> AssertionClaims {
        let iat = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let scope = self.claims.scopes.join(" ");
        AssertionClaims {
            iss: self.claims.issuer.clone(),
            sub: self.claims.subject.clone(),
            scope: (!scope.is_empty()).then_some(scope),
            aud: self
                .claims
                .audience
                .clone()
                .unwrap_or_else(|| self.token_url.to_string()),
            iat,
            exp: iat + self.lifetime.as_secs(),
        }
    }

    /// A signed assertion made at `now`.
    pub fn assertion_at(&self, now: SystemTime) -> Result<SecretString, HttpError> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_string());
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &self.claims_at(now), &self.key)
            .map(SecretString::new)
            .map_err(|e| key_error(&self.token_url, format!("cannot sign the assertion: {e}")))
    }

    async fn fetch(&self) -> Result<(SecretString, Instant), HttpError> {
        let assertion = self.assertion_at(crate::clock::system_now())?;
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

/// A key that cannot be used: reported like a refused client, before any request.
fn key_error(token_url: &url::Url, description: String) -> HttpError {
    HttpError::Auth {
        token_url: redact_url(token_url),
        status: 0,
        code: "invalid_private_key".to_string(),
        description,
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    const KEY_FILE: &str = include_str!("../../../tests/support/keys/google-service-account.json");
    const PUBLIC_KEY: &str =
        include_str!("../../../tests/support/keys/google-service-account.pub.pem");

    fn private_key() -> SecretString {
        let file: serde_json::Value = serde_json::from_str(KEY_FILE).expect("key file");
        SecretString::new(file["private_key"].as_str().expect("private_key"))
    }

    fn grant(claims: JwtBearerClaims) -> JwtBearerGrant {
        JwtBearerGrant::new(
            reqwest::Client::new(),
            "https://oauth2.googleapis.com/token",
            claims,
            &private_key(),
            Some("kid-1".to_string()),
        )
        .expect("grant")
    }

    #[test]
    fn assertions_carry_google_claims_and_verify() {
        let grant = grant(JwtBearerClaims {
            issuer: "sa@p.iam.gserviceaccount.com".to_string(),
            subject: Some("admin@example.com".to_string()),
            scopes: vec!["s1".to_string(), "s2".to_string()],
            audience: None,
        });
        let now = crate::clock::system_now();
        let jwt = grant.assertion_at(now).expect("signed");
        let header = jsonwebtoken::decode_header(jwt.expose()).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("pub");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://oauth2.googleapis.com/token"]);
        let data =
            jsonwebtoken::decode::<AssertionClaims>(jwt.expose(), &key, &validation).expect("ok");
        let claims = data.claims;
        assert_eq!(claims.iss, "sa@p.iam.gserviceaccount.com");
        assert_eq!(claims.sub.as_deref(), Some("admin@example.com"));
        assert_eq!(claims.scope.as_deref(), Some("s1 s2"));
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn lifetime_is_capped_and_empty_claims_are_left_out() {
        let grant = grant(JwtBearerClaims {
            issuer: "sa".to_string(),
            subject: None,
            scopes: Vec::new(),
            audience: Some("aud".to_string()),
        })
        .with_lifetime(Duration::from_secs(7200));
        let claims = grant.claims_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(
            claims,
            AssertionClaims {
                iss: "sa".to_string(),
                sub: None,
                scope: None,
                aud: "aud".to_string(),
                iat: 1000,
                exp: 4600,
            }
        );
    }

    #[test]
    fn a_bad_key_is_refused_up_front() {
        let err = JwtBearerGrant::new(
            reqwest::Client::new(),
            "https://oauth2.googleapis.com/token",
            JwtBearerClaims {
                issuer: "sa".to_string(),
                subject: None,
                scopes: Vec::new(),
                audience: None,
            },
            &SecretString::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            None,
        )
        .expect_err("bad key");
        let text = err.to_string();
        assert!(text.contains("invalid_private_key"), "{text}");
        assert!(!text.contains("AAAA"), "{text}");
    }
}
