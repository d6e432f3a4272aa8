//! The assertion of a Google service account (RFC 7523 section 2.1, as
//! <https://developers.google.com/identity/protocols/oauth2/service-account> describes it):
//! an RS256 JWT whose claims are `iss` (the key's `client_email`), `sub` (the user to
//! impersonate, for domain-wide delegation), `scope` (space-separated), `aud` (the token
//! URL), `iat` and `exp` (`iat` + the lifetime, at most one hour); `kid` is the key file's
//! `private_key_id` when known. Signed by the shared [`JwtSigner`], posted by the shared
//! [`crate::connectors::http::JwtBearerGrant`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::connectors::http::{
    AssertionFn, HttpError, JwtSigner, SigningAlgorithm, assertion_refused, redact_url,
    unix_seconds,
};
use crate::spec::SecretString;

/// The longest assertion lifetime Google accepts.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// Who the assertion speaks for, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearerClaims {
    /// `iss`: the service account (`client_email`).
    pub issuer: String,
    /// `sub`: the user to act as (the Workspace admin, for domain-wide delegation);
    /// `None` leaves the claim out.
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

/// Signs the service account's assertions for one token URL.
pub struct ServiceAccountAssertion {
    claims: JwtBearerClaims,
    signer: JwtSigner,
    /// Scheme, host and path of the token URL, for errors.
    token_url: String,
    lifetime: Duration,
}

impl ServiceAccountAssertion {
    /// Assertions for `token_url`, signed with `private_key_pem`, an RSA private key
    /// (PKCS#8 `BEGIN PRIVATE KEY`, as in Google key files, or PKCS#1); `key_id` goes into
    /// the header's `kid`. Assertions live one hour.
    pub fn new(
        token_url: &str,
        claims: JwtBearerClaims,
        private_key_pem: &SecretString,
        key_id: Option<String>,
    ) -> Result<ServiceAccountAssertion, HttpError> {
        let mut claims = claims;
        if claims.audience.is_none() {
            claims.audience = Some(token_url.to_string());
        }
        let redacted = url::Url::parse(token_url)
            .map(|url| redact_url(&url))
            .unwrap_or_else(|_| token_url.to_string());
        let signer = JwtSigner::from_pem(private_key_pem, SigningAlgorithm::Rs256)
            .map_err(|e| {
                key_error(
                    &redacted,
                    format!("the private key is not an RSA PEM key: {e}"),
                )
            })?
            .with_key_id(key_id);
        let assertion = ServiceAccountAssertion {
            claims,
            signer,
            token_url: redacted,
            lifetime: MAX_ASSERTION_LIFETIME,
        };
        // Sign once now, so that a key that cannot sign fails here and not mid-run.
        assertion.assertion_at(crate::clock::system_now())?;
        Ok(assertion)
    }

    /// The same assertions with a shorter lifetime (capped at one hour); the connector
    /// always asks for the full hour, so only the cap is checked.
    #[cfg(test)]
    pub fn with_lifetime(mut self, lifetime: Duration) -> ServiceAccountAssertion {
        self.lifetime = lifetime.min(MAX_ASSERTION_LIFETIME);
        self
    }

    /// The claims an assertion made at `now` carries.
    pub fn claims_at(&self, now: SystemTime) -> AssertionClaims {
        let iat = unix_seconds(now);
        let scope = self.claims.scopes.join(" ");
        AssertionClaims {
            iss: self.claims.issuer.clone(),
            sub: self.claims.subject.clone(),
            scope: (!scope.is_empty()).then_some(scope),
            aud: self.claims.audience.clone().unwrap_or_default(),
            iat,
            exp: iat + self.lifetime.as_secs(),
        }
    }

    /// A signed assertion made at `now`.
    pub fn assertion_at(&self, now: SystemTime) -> Result<SecretString, HttpError> {
        self.signer
            .sign(&self.claims_at(now))
            .map_err(|e| key_error(&self.token_url, format!("cannot sign the assertion: {e}")))
    }

    /// A function making a fresh assertion for each token request.
    pub fn into_fn(self) -> Arc<AssertionFn> {
        Arc::new(move || self.assertion_at(crate::clock::system_now()))
    }
}

/// A key that cannot be used: reported like a refused client, before any request.
fn key_error(token_url: &str, description: String) -> HttpError {
    assertion_refused(token_url.to_string(), "invalid_private_key", description)
}

#[cfg(test)]
mod unit {
    use super::*;
    use jsonwebtoken::Algorithm;

    const KEY_FILE: &str = include_str!("../../../tests/support/keys/google-service-account.json");
    const PUBLIC_KEY: &str =
        include_str!("../../../tests/support/keys/google-service-account.pub.pem");

    fn private_key() -> SecretString {
        let file: serde_json::Value = serde_json::from_str(KEY_FILE).expect("key file");
        SecretString::new(file["private_key"].as_str().expect("private_key"))
    }

    fn grant(claims: JwtBearerClaims) -> ServiceAccountAssertion {
        ServiceAccountAssertion::new(
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
        let err = ServiceAccountAssertion::new(
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
        .err()
        .expect("bad key");
        let text = err.to_string();
        assert!(text.contains("invalid_private_key"), "{text}");
        assert!(!text.contains("AAAA"), "{text}");
    }
}
