//! Settings of a Keycloak pull connector: `kind = "keycloak"` and its `[keycloak]` table.
//!
//! ```toml
//! kind = "keycloak"
//! mapping = "default"
//! [keycloak]
//! base_url = "https://sso.example.com"     # without /realms (add /auth for old servers)
//! realm = "acme"
//! client_id = "idsync"                     # a confidential client with a service account
//! client_secret = { env = "KEYCLOAK_CLIENT_SECRET" }
//! # or the password grant, e.g. through admin-cli:
//! # username = "idsync-reader"
//! # password = { file = "/run/secrets/keycloak-password" }
//! # token_url = "https://sso.example.com/realms/acme/protocol/openid-connect/token"
//! # page_size = 100                        # 1-1000
//! # requests_per_second = 10            # a ceiling; default: none (see below)
//! # admin_events = true                    # read changes from the realm's admin events
//! # full_sync_every = "24h"
//! ```

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::connectors::kind::SettingsContext;
use crate::spec::check::{duration, endpoint_url, non_empty, range, rate, secret};
use crate::spec::problems::Problems;
use crate::spec::{SecretRef, SecretString};

/// What a keycloak connector without its table is told.
const NEEDS: &str = "kind = \"keycloak\" needs a [keycloak] table with `base_url`, \
     `realm`, `client_id` and `client_secret`";

crate::connectors::kind::kind_table!(RawKeycloakSettings => KeycloakSettings {
    needs: NEEDS, check: check, user_keys: super::records::user_keys, connect: super::KeycloakConnector::new
});

/// The settings of a `kind = "keycloak"` connector (its `[keycloak]` table).
#[derive(Debug, Clone)]
pub struct KeycloakSettings {
    /// The server's base URL, without a trailing `/` (and without `/realms`).
    pub base_url: String,
    /// The realm that is read (and whose token endpoint is used by default).
    pub realm: String,
    /// The client's `clientId` (a confidential client with a service account, or
    /// `admin-cli` with the password grant).
    pub client_id: String,
    /// The client's secret, resolved (none for a public client such as `admin-cli`).
    pub client_secret: Option<SecretString>,
    /// With the password grant: the user name and password to sign in as.
    pub password_grant: Option<(String, SecretString)>,
    /// The token endpoint.
    pub token_url: String,
    /// `max` of every paged request (1-1000).
    pub page_size: u32,
    /// Client-side ceiling on the request rate (`None`: none).
    pub requests_per_second: Option<NonZeroU32>,
    /// Reads between full reads come from the realm's admin events, where the realm
    /// records them (else every read is full).
    pub admin_events: bool,
    /// A checkpoint whose full read is older than this makes the next read a full one
    /// (zero: every read).
    pub full_sync_every: Duration,
    /// Plain `http` URLs are accepted (loopback hosts only; labs and tests). Default
    /// false; every run logs a warning when set.
    pub allow_insecure_http: bool,
}

/// Default `full_sync_every` of a Keycloak connector.
pub const KEYCLOAK_DEFAULT_FULL_SYNC_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Default `page_size` of a Keycloak connector.
pub const KEYCLOAK_DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest `page_size` of a Keycloak connector.
pub const KEYCLOAK_MAX_PAGE_SIZE: u32 = 1000;
/// Default `requests_per_second` of a Keycloak connector: no ceiling. Keycloak documents
/// no rate limit for its Admin REST API; requests go one at a time, and a gateway's
/// `RateLimit-*` headers or a 429's `Retry-After` slow them.
pub const KEYCLOAK_DEFAULT_REQUESTS_PER_SECOND: Option<NonZeroU32> = None;

/// The `[keycloak]` table of a `kind = "keycloak"` connector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeycloakSettings {
    /// The server's base URL, such as `https://sso.example.com` (add `/auth`
    /// for old or relocated servers), without `/realms`. Required.
    base_url: Spanned<String>,
    /// The realm to read. Required.
    realm: Spanned<String>,
    /// The client to authenticate as: a confidential client with a service account
    /// (client credentials), or `admin-cli` with `username`/`password`. Required.
    client_id: Spanned<String>,
    /// The client's secret: `{ env = "NAME" }` or `{ file = "path" }`. Required for
    /// client credentials; for the password grant only when the client is confidential.
    #[serde(default)]
    client_secret: Option<Spanned<SecretRef>>,
    /// With `password`: sign in with the password grant as this user (for example
    /// through `admin-cli`) instead of client credentials.
    #[serde(default)]
    username: Option<Spanned<String>>,
    /// The user's password: `{ env = "NAME" }` or `{ file = "path" }`.
    #[serde(default)]
    password: Option<Spanned<SecretRef>>,
    /// The token endpoint. Default:
    /// `{base_url}/realms/{realm}/protocol/openid-connect/token`.
    #[serde(default)]
    token_url: Option<Spanned<String>>,
    /// Users, groups or members per request, 1-1000. Default: 100.
    #[serde(default)]
    page_size: Option<Spanned<i64>>,
    /// Requests per second at most, at least 1. Default: no ceiling.
    #[serde(default)]
    requests_per_second: Option<Spanned<i64>>,
    /// Read what changed since the last run from the realm's admin events, where the realm
    /// saves them ("Save admin events" on; the client needs `view-events`). Default: true.
    #[serde(default = "yes")]
    admin_events: bool,
    /// How often a full read runs even when admin events are available. Default: `24h`.
    #[serde(default)]
    full_sync_every: Option<Spanned<String>>,
    /// Accept plain `http` URLs for loopback hosts (labs, tests). Default: false.
    #[serde(default)]
    allow_insecure_http: bool,
}

fn yes() -> bool {
    true
}

/// Checks a `[keycloak]` table and resolves its secret.
pub(super) fn check(
    table: &Spanned<RawKeycloakSettings>,
    context: &SettingsContext<'_>,
    problems: &mut Problems,
) -> Option<KeycloakSettings> {
    let (source, raw) = (context.source, table.get_ref());
    let mut ok = true;
    let mut check_url = |spanned: &Spanned<String>, key: &str, problems: &mut Problems| {
        let url = endpoint_url(spanned.get_ref().trim(), raw.allow_insecure_http);
        ok &= source.checked(problems, spanned, key, url).is_some();
    };
    check_url(&raw.base_url, "keycloak.base_url", problems);
    if let Some(token_url) = &raw.token_url {
        check_url(token_url, "keycloak.token_url", problems);
    }
    let base_url = raw
        .base_url
        .get_ref()
        .trim()
        .trim_end_matches('/')
        .to_owned();
    if base_url.ends_with("/realms") || base_url.contains("/realms/") {
        source.report(
            problems,
            &raw.base_url,
            "keycloak.base_url",
            "give the server's base URL without `/realms/...` (the realm goes in `realm`)",
        );
        ok = false;
    }
    for (spanned, key) in [
        (&raw.realm, "keycloak.realm"),
        (&raw.client_id, "keycloak.client_id"),
    ] {
        ok &= non_empty(source, spanned, key, "must not be empty", problems);
    }
    let realm = raw.realm.get_ref().trim().to_owned();
    if realm.contains(['/', '?', '#']) {
        source.report(
            problems,
            &raw.realm,
            "keycloak.realm",
            "a realm name cannot contain `/`, `?` or `#`",
        );
        ok = false;
    }
    let page_size = range(
        source,
        raw.page_size.as_ref(),
        "keycloak.page_size",
        (KEYCLOAK_DEFAULT_PAGE_SIZE, KEYCLOAK_MAX_PAGE_SIZE),
        "",
        problems,
    );
    ok &= page_size.is_some();
    let requests_per_second = rate(
        source,
        raw.requests_per_second.as_ref(),
        "keycloak.requests_per_second",
        KEYCLOAK_DEFAULT_REQUESTS_PER_SECOND,
        problems,
    );
    ok &= requests_per_second.is_some();
    let full_sync_every = duration(
        source,
        raw.full_sync_every.as_ref(),
        "keycloak.full_sync_every",
        (KEYCLOAK_DEFAULT_FULL_SYNC_EVERY, false),
        problems,
    );
    ok &= full_sync_every.is_some();
    let resolve = |spanned: &Spanned<SecretRef>, key: &str, problems: &mut Problems| {
        secret(source, spanned, key, context.base_dir, problems)
    };
    let client_secret = match &raw.client_secret {
        Some(secret) => resolve(secret, "keycloak.client_secret", problems).map(Some),
        None => Some(None),
    };
    let password_grant = match (&raw.username, &raw.password) {
        (None, None) => {
            if raw.client_secret.is_none() {
                source.report(
                    problems,
                    &raw.client_id,
                    "keycloak.client_secret",
                    "client credentials need `client_secret`; or sign in with the password \
                     grant by setting `username` and `password`",
                );
                ok = false;
            }
            Some(None)
        }
        (Some(user), Some(password)) => resolve(password, "keycloak.password", problems)
            .map(|p| Some((user.get_ref().trim().to_owned(), p))),
        (Some(user), None) => {
            source.report(
                problems,
                user,
                "keycloak.password",
                "`username` needs `password`",
            );
            None
        }
        (None, Some(password)) => {
            source.report(
                problems,
                password,
                "keycloak.username",
                "`password` needs `username`",
            );
            None
        }
    };
    let token_url = match &raw.token_url {
        Some(url) => url.get_ref().trim().to_owned(),
        None => format!("{base_url}/realms/{realm}/protocol/openid-connect/token"),
    };
    if !ok {
        return None;
    }
    Some(KeycloakSettings {
        base_url,
        realm,
        client_id: raw.client_id.get_ref().trim().to_owned(),
        client_secret: client_secret?,
        password_grant: password_grant?,
        token_url,
        page_size: page_size?,
        requests_per_second: requests_per_second?,
        admin_events: raw.admin_events,
        full_sync_every: full_sync_every?,
        allow_insecure_http: raw.allow_insecure_http,
    })
}
