//! Certificate credentials: the signed client assertion (JWT) Entra ID accepts instead of a
//! client secret.
//!
//! Header: `alg` PS256, `typ` JWT, `x5t#S256` (base64url SHA-256 of the certificate DER) and,
//! for older tenants and clouds that look up the certificate by its SHA-1 thumbprint, `x5t`.
//! Claims: `aud` = the token endpoint, `iss` = `sub` = the client id, `jti` (a fresh UUID),
//! `nbf` = `iat` = now, `exp` = now + 5 minutes. A new assertion is made for every token
//! request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::connectors::http::HttpError;
use crate::spec::SecretString;

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

/// Base64url (no padding) SHA-256 thumbprint of a certificate's DER: `x5t#S256`.
pub fn thumbprint_sha256(der: &[u8]) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// Base64url (no padding) SHA-1 thumbprint of a certificate's DER: `x5t`.
pub fn thumbprint_sha1(der: &[u8]) -> String {
    use sha1::Digest;
    URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der))
}

/// Signs client assertions for one app registration and token endpoint.
pub struct AssertionSigner {
    key: EncodingKey,
    header: Header,
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
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes()).map_err(|e| {
            HttpError::Auth {
                token_url: token_url.to_string(),
                status: 0,
                code: "invalid_private_key".to_string(),
                description: format!("the private key cannot sign assertions: {e}"),
            }
        })?;
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".to_string());
        header.x5t_s256 = Some(thumbprint_sha256(certificate_der));
        header.x5t = Some(thumbprint_sha1(certificate_der));
        Ok(AssertionSigner {
            key,
            header,
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
        jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map(SecretString::new)
            .map_err(|e| HttpError::Auth {
                token_url: self.token_url.clone(),
                status: 0,
                code: "assertion_signing_failed".to_string(),
                description: e.to_string(),
            })
    }

    /// A fresh assertion, valid from now.
    pub fn sign(&self) -> Result<SecretString, HttpError> {
        self.sign_at(crate::clock::now().timestamp())
    }
}
