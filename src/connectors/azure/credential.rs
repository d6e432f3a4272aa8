//! The Entra ID credential of an `[azure]` table: a client secret, or a certificate and its
//! private key read from PEM files (checked when the configuration loads, so a bad key is a
//! configuration problem with file and key, not a failure at the first token request).

use std::path::Path;

use toml::Spanned;

use super::settings::{AzureCredential, RawAzureSettings};
use crate::spec::problems::{Problems, Source};
use crate::spec::{SecretRef, SecretString};

/// The first PEM block labelled `label` in `text`, decoded.
pub(crate) fn pem_block(text: &str, labels: &[&str]) -> Option<(String, Vec<u8>)> {
    use base64::Engine;
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        if let Some(start) = text.find(&begin) {
            let rest = &text[start + begin.len()..];
            let stop = rest.find(&end)?;
            let body: String = rest[..stop]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?;
            return Some((format!("{begin}\n{}\n{end}\n", rest[..stop].trim()), der));
        }
    }
    None
}

/// The secret, or the certificate and its key; exactly one of the two forms.
pub(super) fn credential(
    source: &Source<'_>,
    base_dir: &Path,
    raw: &RawAzureSettings,
    enabled: bool,
    problems: &mut Problems,
) -> Option<AzureCredential> {
    // A reference that cannot be looked up: a problem when enabled, deferred otherwise.
    let mut unavailable: Option<(String, String)> = None;
    let mut resolve =
        |spanned: &Spanned<SecretRef>, key: &str, problems: &mut Problems| match spanned
            .get_ref()
            .resolve(base_dir)
        {
            Ok(secret) => Some(secret),
            Err(err) if !enabled => {
                unavailable.get_or_insert_with(|| (key.to_owned(), err.to_string()));
                None
            }
            Err(err) => {
                source.report_secret(problems, spanned, key, err.to_string());
                None
            }
        };
    match (&raw.client_secret, &raw.certificate, &raw.private_key) {
        (Some(secret), None, None) => {
            let resolved = resolve(secret, "azure.client_secret", problems);
            match (resolved, unavailable) {
                (Some(secret), _) => Some(AzureCredential::Secret(secret)),
                (None, Some((key, reason))) => Some(AzureCredential::Unavailable { key, reason }),
                (None, None) => None,
            }
        }
        (None, Some(cert), Some(key)) => {
            let cert_text = resolve(cert, "azure.certificate", problems);
            let key_text = resolve(key, "azure.private_key", problems);
            if let Some((key, reason)) = unavailable {
                return Some(AzureCredential::Unavailable { key, reason });
            }
            let mut ok = true;
            let certificate_der = match cert_text
                .as_ref()
                .and_then(|t| pem_block(t.expose(), &["CERTIFICATE"]))
            {
                Some((_, der)) => Some(der),
                None => {
                    if cert_text.is_some() {
                        source.report(
                            problems,
                            cert,
                            "azure.certificate",
                            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                        );
                    }
                    ok = false;
                    None
                }
            };
            let private_key_pem = match key_text.as_ref() {
                Some(text) => match private_key_block(text.expose()) {
                    Ok(pem) => Some(pem),
                    Err(why) => {
                        source.report(problems, key, "azure.private_key", why);
                        ok = false;
                        None
                    }
                },
                None => None,
            };
            if !ok {
                return None;
            }
            Some(AzureCredential::Certificate {
                certificate_der: certificate_der?,
                private_key_pem: private_key_pem?,
            })
        }
        (Some(secret), Some(_), _) | (Some(secret), _, Some(_)) => {
            source.report(
                problems,
                secret,
                "azure.client_secret",
                "give either client_secret or certificate + private_key, not both",
            );
            None
        }
        (None, Some(cert), None) => {
            source.report(
                problems,
                cert,
                "azure.private_key",
                "certificate needs private_key = { file = \"...\" } (the key of that certificate)",
            );
            None
        }
        (None, None, Some(key)) => {
            source.report(
                problems,
                key,
                "azure.certificate",
                "private_key needs certificate = { file = \"...\" } (the certificate registered on the app)",
            );
            None
        }
        (None, None, None) => {
            source.report(
                problems,
                &raw.client_id,
                "azure.client_secret",
                "[azure] needs client_secret = { env = \"NAME\" } (or { file = \"path\" }), or \
                 certificate and private_key",
            );
            None
        }
    }
}

/// The RSA private key block of a PEM file (which may also hold certificates), checked.
fn private_key_block(text: &str) -> Result<SecretString, String> {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "the private key is encrypted; store it unencrypted (for example \
                    `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-plain.pem`) and \
                    protect the file instead"
                .to_owned(),
        );
    }
    let Some((pem, _)) = pem_block(text, &["PRIVATE KEY", "RSA PRIVATE KEY"]) else {
        return Err("no PEM private key (-----BEGIN PRIVATE KEY----- or \
                    -----BEGIN RSA PRIVATE KEY-----) in it"
            .to_owned());
    };
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|err| format!("not a usable RSA private key: {err}"))?;
    Ok(SecretString::new(pem))
}
