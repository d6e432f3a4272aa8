//! [`JwtSigner`]: the one signer of the JWT assertions that token endpoints take instead
//! of a client secret (RFC 7523: the JWT-bearer grant's `assertion`, and the
//! `client_assertion` of `private_key_jwt` client authentication).
//!
//! Claims in, signed compact JWT out. The connector kinds own their claims (which names,
//! which lifetime, whether a `jti`); what is shared is the key handling and the header:
//! the algorithm (RS256, PS256 or ES256), `typ` JWT, and, as options, `kid` and the
//! certificate thumbprints `x5t` (SHA-1) and `x5t#S256` (RFC 7515 sections 4.1.7-4.1.8).
//! Neither the key nor an assertion is ever logged.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::HttpError;
use crate::spec::SecretString;

/// The algorithms assertions are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, from an RSA key.
    Rs256,
    /// RSASSA-PSS with SHA-256, from an RSA key.
    Ps256,
    /// ECDSA on P-256 with SHA-256, from an EC key.
    Es256,
}

impl SigningAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Ps256 => Algorithm::PS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
        }
    }

    fn key(self, pem: &[u8]) -> Result<EncodingKey, jsonwebtoken::errors::Error> {
        match self {
            SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => EncodingKey::from_rsa_pem(pem),
            SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(pem),
        }
    }
}

/// A key that does not load, or a token that cannot be signed; shown as the underlying
/// library says it, for each kind to word in its own error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

/// Signs assertions with one private key and one header.
pub struct JwtSigner {
    key: EncodingKey,
    header: Header,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// A signer for `private_key_pem` (PKCS#8 `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE KEY` /
    /// SEC1 `EC PRIVATE KEY`), header `alg` = `algorithm`, `typ` = JWT.
    pub fn from_pem(
        private_key_pem: &SecretString,
        algorithm: SigningAlgorithm,
    ) -> Result<JwtSigner, SignError> {
        let key = algorithm.key(private_key_pem.expose().as_bytes())?;
        // `Header::new` sets `typ` JWT.
        let header = Header::new(algorithm.jwt());
        Ok(JwtSigner { key, header })
    }

    /// The header's `kid`, when known.
    pub fn with_key_id(mut self, key_id: Option<String>) -> JwtSigner {
        self.header.kid = key_id;
        self
    }

    /// The header's `x5t#S256` and `x5t`: the thumbprints of the certificate (DER) whose
    /// key signs, for servers that look the certificate up by either.
    pub fn with_certificate(mut self, certificate_der: &[u8]) -> JwtSigner {
        self.header.x5t_s256 = Some(thumbprint_sha256(certificate_der));
        self.header.x5t = Some(thumbprint_sha1(certificate_der));
        self
    }

    /// `claims`, signed: a compact JWT.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<SecretString, SignError> {
        Ok(SecretString::new(jsonwebtoken::encode(
            &self.header,
            claims,
            &self.key,
        )?))
    }
}

/// The first of `candidates` that `pem` can sign with, proven by signing a test token;
/// `None` when the key suits none of them.
pub fn usable_algorithm(
    pem: &SecretString,
    candidates: &[SigningAlgorithm],
) -> Option<SigningAlgorithm> {
    let claims = serde_json::json!({"check": true});
    candidates.iter().copied().find(|algorithm| {
        JwtSigner::from_pem(pem, *algorithm)
            .and_then(|signer| signer.sign(&claims))
            .is_ok()
    })
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

/// Seconds since the Unix epoch (0 before it): the `iat`/`exp` of a claim set.
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A key or assertion the token endpoint was never shown: reported like a refused client
/// (status 0), before any request.
pub fn assertion_refused(token_url: String, code: &str, description: String) -> HttpError {
    HttpError::Auth {
        token_url,
        status: 0,
        code: code.to_string(),
        description,
    }
}
