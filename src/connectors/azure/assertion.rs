//! Certificate credentials: the signed client assertion (JWT) Entra ID accepts instead of a
//! client secret.
//!
//! Header: `alg` PS256, `typ` JWT, `x5t#S256` (base64url SHA-256 of the certificate DER) and,
//! for older tenants and clouds that look up the certificate by its SHA-1 thumbprint, `x5t`.
//! Claims: `aud` = the token endpoint, `iss` = `sub` = the client id, `jti` (a fresh UUID),
//! `nbf` = `iat` = now, `exp` = now + 5 minutes. A new assertion is made for every token
//! request. The signing is the shared [`JwtSigner`]'s; only the claims are Entra's.

use serde::Serialize;

use crate::connectors::http::{HttpError, JwtSigner, SigningAlgorithm, assertion_refused};
use crate::spec::SecretString;

pub use crate::connectors::http::{thumbprint_sha1, thumbprint_sha256};

/// How long an assertion is valid.
pub const ASSERTION_LIFETIME_SECS: i64 = 300;

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// Signs client assertions for one app registration and token endpoint.
pub struct AssertionSigner {
    signer: JwtSigner,
    client_id: String,
    token_url: String,
}

impl AssertionSigner {
    /// `private_key_pem` holds one `PRIVATE KEY` or `RSA PRIVATE KEY` block.
    pub fn new(
        client_id: &str,
        token_url: &str,
        certificate_der: &[u8],
        private_key_pem: &SecretString,
    ) -> Result<AssertionSigner, HttpError> {
        let signer = JwtSigner::from_pem(private_key_pem, SigningAlgorithm::Ps256)
            .map_err(|e| {
                assertion_refused(
                    token_url.to_string(),
                    "invalid_private_key",
                    format!("the private key cannot sign assertions: {e}"),
                )
            })?
            .with_certificate(certificate_der);
        Ok(AssertionSigner {
            signer,
            client_id: client_id.to_string(),
            token_url: token_url.to_string(),
        })
    }

    /// A fresh assertion, valid from `now` (Unix seconds) for [`ASSERTION_LIFETIME_SECS`].
    pub fn sign_at(&self, now: i64) -> Result<SecretString, HttpError> {
        let claims = Claims {
            aud: &self.token_url,
            iss: &self.client_id,
            sub: &self.client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        self.signer.sign(&claims).map_err(|e| {
            assertion_refused(
                self.token_url.clone(),
                "assertion_signing_failed",
                e.to_string(),
            )
        })
    }

    /// A fresh assertion, valid from now.
    pub fn sign(&self) -> Result<SecretString, HttpError> {
        self.sign_at(crate::clock::now().timestamp())
    }
}
