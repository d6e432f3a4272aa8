//! The `private_key_jwt` client assertion of an Okta service app
//! (<https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/main/>):
//! `iss` = `sub` = client id, `aud` = the token URL, a fresh `jti`, `iat`, and `exp` five
//! minutes later (Okta accepts at most an hour), signed RS256 or ES256 with the app's key,
//! `kid` in the header when configured.

use std::sync::Arc;

use serde::Serialize;

use super::settings::{KeyAlgorithm, ServiceApp};
use crate::connectors::http::{
    AssertionFn, HttpError, JwtSigner, SigningAlgorithm, assertion_refused, unix_seconds,
    usable_algorithm,
};
use crate::spec::SecretString;

/// Makes one signed assertion (what [`crate::connectors::http::ClientAuth::Assertion`] takes).
pub type MakeAssertion = AssertionFn;

/// Lifetime of one assertion, in seconds.
pub const LIFETIME_SECS: u64 = 300;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

fn signing_algorithm(algorithm: KeyAlgorithm) -> SigningAlgorithm {
    match algorithm {
        KeyAlgorithm::Rs256 => SigningAlgorithm::Rs256,
        KeyAlgorithm::Es256 => SigningAlgorithm::Es256,
    }
}

/// A function making a fresh signed assertion for each token request.
pub fn assertion_fn(app: &ServiceApp) -> Result<Arc<MakeAssertion>, HttpError> {
    let signer = JwtSigner::from_pem(&app.private_key, signing_algorithm(app.algorithm))
        .map_err(|e| key_error(&app.token_url, &e))?
        .with_key_id(app.key_id.clone());
    let client_id = app.client_id.clone();
    let audience = app.token_url.clone();
    Ok(Arc::new(move || {
        let iat = unix_seconds(crate::clock::system_now());
        let claims = Claims {
            iss: &client_id,
            sub: &client_id,
            aud: &audience,
            iat,
            exp: iat + LIFETIME_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        signer.sign(&claims).map_err(|e| key_error(&audience, &e))
    }))
}

fn key_error(token_url: &str, error: &dyn std::fmt::Display) -> HttpError {
    assertion_refused(
        token_url.to_string(),
        "invalid_private_key",
        format!("cannot sign the client assertion: {error}"),
    )
}

/// Which algorithm `pem` signs with, proven by signing a test token; `None` when it is
/// not a usable RSA or EC P-256 private key.
pub fn key_algorithm(pem: &SecretString) -> Option<KeyAlgorithm> {
    let found = usable_algorithm(pem, &[SigningAlgorithm::Rs256, SigningAlgorithm::Es256])?;
    Some(match found {
        SigningAlgorithm::Es256 => KeyAlgorithm::Es256,
        SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => KeyAlgorithm::Rs256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn key(name: &str) -> String {
        let path = format!("{}/tests/support/keys/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).expect("test key")
    }

    /// A service app `0oa1` of acme.okta.com signing with the key file `key_file`.
    fn app(key_file: &str, algorithm: KeyAlgorithm, key_id: Option<&str>) -> ServiceApp {
        ServiceApp {
            client_id: "0oa1".into(),
            private_key: SecretString::new(key(key_file)),
            algorithm,
            key_id: key_id.map(str::to_string),
            scopes: vec!["okta.users.read".into()],
            token_url: "https://acme.okta.com/oauth2/v1/token".into(),
        }
    }

    #[test]
    fn claims_and_header() {
        let app = app("okta_test_key.pem", KeyAlgorithm::Rs256, Some("k1"));
        let make = assertion_fn(&app).expect("key loads");
        let first = make().expect("signs");
        let second = make().expect("signs");
        let public = DecodingKey::from_rsa_pem(key("okta_test_key.pub.pem").as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://acme.okta.com/oauth2/v1/token"]);
        validation.set_issuer(&["0oa1"]);
        validation.sub = Some("0oa1".into());
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(first.expose(), &public, &validation)
                .expect("valid assertion");
        assert_eq!(decoded.header.kid.as_deref(), Some("k1"));
        let claims = decoded.claims;
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        let other =
            jsonwebtoken::decode::<serde_json::Value>(second.expose(), &public, &validation)
                .unwrap()
                .claims;
        assert_ne!(claims["jti"], other["jti"], "a fresh jti each time");
    }

    #[test]
    fn ec_keys_sign_es256() {
        let app = app("okta_test_ec_key.pem", KeyAlgorithm::Es256, None);
        let token = assertion_fn(&app).unwrap()().unwrap();
        let public = DecodingKey::from_ec_pem(key("okta_test_ec_key.pub.pem").as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://acme.okta.com/oauth2/v1/token"]);
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(token.expose(), &public, &validation)
                .unwrap();
        assert_eq!(decoded.header.kid, None);
        assert_eq!(decoded.claims["sub"], "0oa1");
    }
}
