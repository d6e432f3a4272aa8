//! Settings of an Okta pull connector: `kind = "okta"` and its `[okta]` table.
//!
//! ```toml
//! kind = "okta"
//! mapping = "default"
//! [okta]
//! domain = "acme.okta.com"                 # or base_url = "https://login.acme.com"
//! # Either an OAuth 2.0 service app (recommended) ...
//! client_id = "0oa1b2c3d4e5f6g7h8i9"
//! private_key = { file = "/run/secrets/okta-idsync.pem" }   # RSA or EC P-256, PEM
//! key_id = "idsync-2026"                   # the `kid` registered with the app (optional)
//! # scopes = ["okta.users.read", "okta.groups.read"]
//! # ... or an API token (SSWS), acting with its admin's permissions:
//! # api_token = { env = "OKTA_API_TOKEN" }
//! # group_types = ["OKTA_GROUP", "APP_GROUP"]
//! # deprovisioned = "inactive"             # or "skip"
//! # suspended = "inactive"                 # or "skip"
//! # page_size = 200                        # 1-200
//! # requests_per_second = 10            # a ceiling; default: none (paced by Okta's headers)
//! # full_sync_every = "24h"
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

pub use super::assertion::key_algorithm;
use crate::connectors::kind::SettingsContext;
use crate::spec::check::{duration, endpoint_url, range, rate, secret};
use crate::spec::problems::{Problems, Source};
use crate::spec::{SecretRef, SecretString};

/// What an okta connector without its table is told.
const NEEDS: &str = "kind = \"okta\" needs an [okta] table with `domain` and \
     credentials (`client_id` with `private_key`, or `api_token`)";

crate::connectors::kind::kind_table!(RawOktaSettings => OktaSettings {
    needs: NEEDS, check: check, user_keys: super::records::user_keys, connect: super::OktaConnector::new
});

/// Default and largest `page_size`: Okta's maximum `limit` for users (and the value it
/// recommends for groups and group members).
pub const OKTA_MAX_PAGE_SIZE: u32 = 200;
/// Default `requests_per_second`: no ceiling. Okta states its limits per endpoint and org
/// (and an app's share of them) in `X-Rate-Limit-*` on every answer; the client paces
/// itself on them when less than a tenth of a bucket is left, and waits for
/// `X-Rate-Limit-Reset` after a 429
/// (<https://developer.okta.com/docs/reference/rl-best-practices/>).
pub const OKTA_DEFAULT_REQUESTS_PER_SECOND: Option<NonZeroU32> = None;
/// Default `full_sync_every`.
pub const OKTA_DEFAULT_FULL_SYNC_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Default `scopes` of an OAuth service app.
pub const OKTA_DEFAULT_SCOPES: [&str; 2] = ["okta.users.read", "okta.groups.read"];
/// Default `group_types`.
pub const OKTA_DEFAULT_GROUP_TYPES: [&str; 2] = ["OKTA_GROUP", "APP_GROUP"];
/// Every group type Okta has.
const GROUP_TYPES: [&str; 3] = ["OKTA_GROUP", "APP_GROUP", "BUILT_IN"];

/// The settings of a `kind = "okta"` connector.
#[derive(Debug, Clone)]
pub struct OktaSettings {
    /// `https://{domain}` or the configured `base_url`, without a trailing `/`.
    pub base_url: String,
    /// How idsync authenticates.
    pub auth: OktaAuth,
    /// The group types read (`filter=type eq "..."`), upper case, no duplicates.
    pub group_types: Vec<String>,
    /// What becomes of `DEPROVISIONED` users.
    pub deprovisioned: StatusPolicy,
    /// What becomes of `SUSPENDED` users.
    pub suspended: StatusPolicy,
    /// `limit` of every listing (1-200).
    pub page_size: u32,
    /// Client-side request rate.
    pub requests_per_second: Option<NonZeroU32>,
    /// A checkpoint older than this makes the next read a full one (zero: every read).
    pub full_sync_every: Duration,
    /// Plain `http` base and token URLs are accepted (loopback hosts only; labs and
    /// tests). Default false; every run logs a warning when set.
    pub allow_insecure_http: bool,
}

/// How the connector authenticates to Okta.
#[derive(Debug, Clone)]
pub enum OktaAuth {
    /// `Authorization: SSWS <token>`: an API token, with its admin's permissions.
    ApiToken(SecretString),
    /// OAuth 2.0 client credentials with a `private_key_jwt` client assertion.
    ServiceApp(ServiceApp),
}

/// An OAuth 2.0 service app.
#[derive(Debug, Clone)]
pub struct ServiceApp {
    pub client_id: String,
    /// The private key, PEM (checked to sign with `algorithm`).
    pub private_key: SecretString,
    pub algorithm: KeyAlgorithm,
    /// `kid` of the JWT header, when configured.
    pub key_id: Option<String>,
    /// Requested scopes (space-joined in the token request).
    pub scopes: Vec<String>,
    /// `{base_url}/oauth2/v1/token` or the configured `token_url`; also the assertion's `aud`.
    pub token_url: String,
}

/// The signing algorithm of a service app's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA key (PKCS#1 or PKCS#8 PEM), RS256.
    Rs256,
    /// EC P-256 key (PKCS#8 PEM), ES256.
    Es256,
}

/// What a user in a given status becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusPolicy {
    /// Synced as an inactive user (and kept in its groups).
    Inactive,
    /// Left out: not synced, not a group member (a user already synced is removed).
    Skip,
}

impl StatusPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusPolicy::Inactive => "inactive",
            StatusPolicy::Skip => "skip",
        }
    }
}

/// The `[okta]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOktaSettings {
    /// The org's Okta domain, such as `acme.okta.com` (not the `-admin` host). Required
    /// unless `base_url` is given.
    #[serde(default)]
    domain: Option<Spanned<String>>,
    /// Instead of `domain`: the org's base URL, such as `https://login.acme.com` for a
    /// custom domain. Without `/api/v1`.
    #[serde(default)]
    base_url: Option<Spanned<String>>,
    /// OAuth only: the token endpoint. Default: `{base_url}/oauth2/v1/token`, the org
    /// authorization server (the only one that issues `okta.*` scopes).
    #[serde(default)]
    token_url: Option<Spanned<String>>,
    /// An API token, sent as `Authorization: SSWS ...`: `{ env = "NAME" }` or
    /// `{ file = "path" }`. Either this or `client_id` with `private_key`.
    #[serde(default)]
    api_token: Option<Spanned<SecretRef>>,
    /// The OAuth 2.0 service app's client id.
    #[serde(default)]
    client_id: Option<Spanned<String>>,
    /// The service app's private key (RSA, or EC P-256), PEM: `{ file = "path" }` or
    /// `{ env = "NAME" }`. Its public key is registered with the app.
    #[serde(default)]
    private_key: Option<Spanned<SecretRef>>,
    /// The key's id (`kid`) as registered with the app. Default: no `kid`.
    #[serde(default)]
    key_id: Option<Spanned<String>>,
    /// Scopes requested for the service app, as a list or one space-separated string.
    /// Default: `okta.users.read okta.groups.read`.
    #[serde(default)]
    scopes: Option<Spanned<Scopes>>,
    /// Group types to read: `OKTA_GROUP`, `APP_GROUP`, `BUILT_IN` (the `Everyone`
    /// group). Default: `["OKTA_GROUP", "APP_GROUP"]`.
    #[serde(default)]
    group_types: Option<Spanned<Vec<Spanned<String>>>>,
    /// `DEPROVISIONED` users: `inactive` (default) or `skip`.
    #[serde(default)]
    deprovisioned: Option<Spanned<StatusPolicy>>,
    /// `SUSPENDED` users: `inactive` (default) or `skip`.
    #[serde(default)]
    suspended: Option<Spanned<StatusPolicy>>,
    /// `limit` of every listing, 1-200. Default: 200.
    #[serde(default)]
    page_size: Option<Spanned<i64>>,
    /// Requests per second at most, at least 1. Default: no ceiling (paced by Okta's
    /// rate-limit headers).
    #[serde(default)]
    requests_per_second: Option<Spanned<i64>>,
    /// How old the last full read may get before a run reads everything again instead
    /// of only what changed (incremental reads list ids too, so hard deletions are seen
    /// at once): `90m`, `24h`, `7d`, `1h30m`; `0s` makes every read a full one.
    /// Default: `24h`.
    #[serde(default)]
    full_sync_every: Option<Spanned<String>>,
    /// Accept plain `http` URLs for loopback hosts (labs, tests). Default: false.
    #[serde(default)]
    allow_insecure_http: bool,
}

/// `scopes`: a list of strings, or one space-separated string.
#[derive(Debug)]
struct Scopes(Vec<String>);

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopesVisitor;

        impl<'de> Visitor<'de> for ScopesVisitor {
            type Value = Scopes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of scopes such as [\"okta.users.read\", \"okta.groups.read\"] \
                     or one space-separated string",
                )
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scopes, E> {
                Ok(Scopes(
                    value.split_whitespace().map(str::to_owned).collect(),
                ))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scopes, A::Error> {
                let mut scopes = Vec::new();
                while let Some(scope) = seq.next_element::<String>()? {
                    scopes.push(scope);
                }
                Ok(Scopes(scopes))
            }
        }

        deserializer.deserialize_any(ScopesVisitor)
    }
}

/// Checks an `[okta]` table (`table` is where it starts) and resolves its secrets.
pub(super) fn check(
    table: &Spanned<RawOktaSettings>,
    at: &SettingsContext<'_>,
    problems: &mut Problems,
) -> Option<OktaSettings> {
    let (source, base_dir, raw) = (at.source, at.base_dir, table.get_ref());
    let before = problems.len();
    let base_url = base_url(source, table, raw, problems);
    let auth = auth(source, base_dir, table, raw, base_url.as_deref(), problems);

    let group_types = match &raw.group_types {
        None => OKTA_DEFAULT_GROUP_TYPES.map(str::to_owned).to_vec(),
        Some(list) => {
            let mut types: Vec<String> = Vec::new();
            for item in list.get_ref() {
                let upper = item.get_ref().trim().to_ascii_uppercase();
                if !GROUP_TYPES.contains(&upper.as_str()) {
                    source.report(
                        problems,
                        item,
                        "okta.group_types",
                        format!(
                            "unknown group type `{}` (valid: {})",
                            item.get_ref(),
                            GROUP_TYPES.join(", ")
                        ),
                    );
                } else if types.contains(&upper) {
                    source.report(
                        problems,
                        item,
                        "okta.group_types",
                        format!("`{upper}` is listed twice"),
                    );
                } else {
                    types.push(upper);
                }
            }
            if list.get_ref().is_empty() {
                source.report(
                    problems,
                    list,
                    "okta.group_types",
                    format!(
                        "must name at least one group type ({})",
                        GROUP_TYPES.join(", ")
                    ),
                );
            }
            types
        }
    };

    let page_size = range(
        source,
        raw.page_size.as_ref(),
        "okta.page_size",
        (OKTA_MAX_PAGE_SIZE, OKTA_MAX_PAGE_SIZE),
        ": Okta returns at most 200 users a page",
        problems,
    )
    .unwrap_or(OKTA_MAX_PAGE_SIZE);
    let requests_per_second = rate(
        source,
        raw.requests_per_second.as_ref(),
        "okta.requests_per_second",
        OKTA_DEFAULT_REQUESTS_PER_SECOND,
        problems,
    );
    let full_sync_every = duration(
        source,
        raw.full_sync_every.as_ref(),
        "okta.full_sync_every",
        (OKTA_DEFAULT_FULL_SYNC_EVERY, false),
        problems,
    );
    if problems.len() != before {
        return None;
    }
    Some(OktaSettings {
        base_url: base_url?,
        auth: auth?,
        group_types,
        deprovisioned: raw
            .deprovisioned
            .as_ref()
            .map_or(StatusPolicy::Inactive, |p| *p.get_ref()),
        suspended: raw
            .suspended
            .as_ref()
            .map_or(StatusPolicy::Inactive, |p| *p.get_ref()),
        page_size,
        requests_per_second: requests_per_second?,
        full_sync_every: full_sync_every?,
        allow_insecure_http: raw.allow_insecure_http,
    })
}

/// `https://{domain}` or the checked `base_url`, without a trailing `/`.
fn base_url<T>(
    source: &Source<'_>,
    table: &Spanned<T>,
    raw: &RawOktaSettings,
    problems: &mut Problems,
) -> Option<String> {
    match (&raw.domain, &raw.base_url) {
        (Some(_), Some(base_url)) => {
            source.report(
                problems,
                base_url,
                "okta.base_url",
                "set either `domain` or `base_url`, not both",
            );
            None
        }
        (None, None) => {
            source.report(
                problems,
                table,
                "okta.domain",
                "[okta] needs `domain` (such as \"acme.okta.com\") or `base_url`",
            );
            None
        }
        (Some(domain), None) => {
            let text = domain.get_ref().trim();
            let valid = !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
                && url::Url::parse(&format!("https://{text}"))
                    .is_ok_and(|u| u.host_str().is_some());
            if !valid {
                source.report(
                    problems,
                    domain,
                    "okta.domain",
                    format!(
                        "`{text}` is not a domain: write the host alone, such as \
                         \"acme.okta.com\" (use base_url for a full URL)"
                    ),
                );
                return None;
            }
            let host = text.trim_end_matches('.').to_ascii_lowercase();
            if let Some((org, rest)) = host.split_once('.')
                && let Some(org) = org.strip_suffix("-admin")
            {
                source.report(
                    problems,
                    domain,
                    "okta.domain",
                    format!(
                        "`{host}` is the Admin Console's host; use the org's Okta domain \
                         \"{org}.{rest}\""
                    ),
                );
                return None;
            }
            Some(format!("https://{host}"))
        }
        (None, Some(base_url)) => {
            let text = check_url(source, base_url, "okta.base_url", raw, problems)?;
            if text.ends_with("/api/v1") || text.contains("/api/v1/") {
                source.report(
                    problems,
                    base_url,
                    "okta.base_url",
                    "give the org's base URL without `/api/v1`",
                );
                return None;
            }
            Some(text)
        }
    }
}

/// An https URL (http only on loopback with `allow_insecure_http`) without query or
/// fragment, trailing `/` trimmed.
fn check_url(
    source: &Source<'_>,
    spanned: &Spanned<String>,
    key: &str,
    raw: &RawOktaSettings,
    problems: &mut Problems,
) -> Option<String> {
    let text = spanned.get_ref().trim();
    let url = endpoint_url(text, raw.allow_insecure_http);
    source
        .checked(problems, spanned, key, url)
        .map(|_| text.trim_end_matches('/').to_owned())
}

/// Exactly one way to authenticate, its secrets resolved and the key checked.
fn auth<T>(
    source: &Source<'_>,
    base_dir: &Path,
    table: &Spanned<T>,
    raw: &RawOktaSettings,
    base_url: Option<&str>,
    problems: &mut Problems,
) -> Option<OktaAuth> {
    if let Some(token) = &raw.api_token {
        if let Some(client_id) = &raw.client_id {
            source.report(
                problems,
                client_id,
                "okta.client_id",
                "use either api_token (SSWS) or client_id with private_key (OAuth service app), not both",
            );
        }
        let oauth_only = [
            (
                raw.private_key.as_ref().map(|s| s.span()),
                "okta.private_key",
            ),
            (raw.key_id.as_ref().map(|s| s.span()), "okta.key_id"),
            (raw.scopes.as_ref().map(|s| s.span()), "okta.scopes"),
            (raw.token_url.as_ref().map(|s| s.span()), "okta.token_url"),
        ];
        for (span, key) in oauth_only {
            if let Some(span) = span {
                problems.push(
                    source.file,
                    source.span_line(&span),
                    Some(key),
                    "applies only to an OAuth service app (client_id with private_key), not to api_token",
                );
            }
        }
        return secret(source, token, "okta.api_token", base_dir, problems).map(OktaAuth::ApiToken);
    }
    let (client_id, key) = match (&raw.client_id, &raw.private_key) {
        (Some(client_id), Some(key)) => (client_id, key),
        (None, None) => {
            source.report(
                problems,
                table,
                "okta.client_id",
                "[okta] needs credentials: client_id with private_key (an OAuth service app), \
                 or api_token = { env = \"NAME\" } (SSWS)",
            );
            return None;
        }
        (Some(client_id), None) => {
            source.report(
                problems,
                client_id,
                "okta.private_key",
                "client_id needs private_key = { file = \"path\" } (the service app's key, PEM)",
            );
            return None;
        }
        (None, Some(key)) => {
            source.report(
                problems,
                key,
                "okta.client_id",
                "private_key needs client_id (the service app's client id)",
            );
            return None;
        }
    };
    let mut ok = true;
    let id = client_id.get_ref().trim().to_owned();
    if id.is_empty() {
        source.report(problems, client_id, "okta.client_id", "must not be empty");
        ok = false;
    }
    let key_id = match &raw.key_id {
        Some(kid) if kid.get_ref().trim().is_empty() => {
            source.report(
                problems,
                kid,
                "okta.key_id",
                "must not be empty (or leave it out)",
            );
            ok = false;
            None
        }
        Some(kid) => Some(kid.get_ref().trim().to_owned()),
        None => None,
    };
    let scopes = match &raw.scopes {
        None => OKTA_DEFAULT_SCOPES.map(str::to_owned).to_vec(),
        Some(spanned) => {
            let scopes: Vec<String> = spanned
                .get_ref()
                .0
                .iter()
                .map(|s| s.trim().to_owned())
                .collect();
            if scopes.is_empty() || scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
                source.report(
                    problems,
                    spanned,
                    "okta.scopes",
                    "must list one or more scopes, such as [\"okta.users.read\", \"okta.groups.read\"]",
                );
                ok = false;
            }
            scopes
        }
    };
    let token_url = match &raw.token_url {
        Some(url) => check_url(source, url, "okta.token_url", raw, problems),
        None => base_url.map(|base| format!("{base}/oauth2/v1/token")),
    };
    let (private_key, algorithm) = match secret(source, key, "okta.private_key", base_dir, problems)
    {
        Some(pem) => match key_algorithm(&pem) {
            Some(algorithm) => (Some(pem), Some(algorithm)),
            None => {
                source.report(
                    problems,
                    key,
                    "okta.private_key",
                    format!(
                        "{} does not hold an RSA or EC P-256 private key in PEM form \
                         (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)",
                        key.get_ref()
                    ),
                );
                (None, None)
            }
        },
        None => (None, None),
    };
    if !ok {
        return None;
    }
    Some(OktaAuth::ServiceApp(ServiceApp {
        client_id: id,
        private_key: private_key?,
        algorithm: algorithm?,
        key_id,
        scopes,
        token_url: token_url?,
    }))
}
