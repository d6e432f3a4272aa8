//! Settings of a Google Workspace connector: `kind = "google"`, read through the Admin SDK
//! Directory API with a service account and domain-wide delegation.
//!
//! ```toml
//! kind = "google"
//! mapping = "default"
//! [google]
//! service_account_key = { file = "/etc/idsync/google-key.json" }   # or { env = "NAME" } holding the JSON
//! subject = "idsync-admin@example.com"   # the admin to impersonate (domain-wide delegation)
//! customer = "my_customer"               # default; or domain = "example.com" (not both)
//! # scopes = ["https://www.googleapis.com/auth/admin.directory.user.readonly",
//! #           "https://www.googleapis.com/auth/admin.directory.group.readonly"]   # default
//! # token_url = "https://oauth2.googleapis.com/token"   # default: the key file's token_uri
//! # api_base_url = "https://admin.googleapis.com"       # default
//! # include_suspended = true             # suspended users synced as inactive (false: left out)
//! # include_archived = true              # archived users synced as inactive (false: left out)
//! # page_size = 500                      # users per page (1-500); groups and members cap at 200
//! # requests_per_second = 40
//! # activity_reports = true              # incremental reads from the Reports API (admin log)
//! # full_sync_every = "24h"
//! ```
//!
//! The key file is checked when the configuration loads: it must be a service-account key
//! (`"type": "service_account"`) with a `client_email` and an RSA `private_key` that can
//! sign. Nothing of it is ever shown but its `client_email` and `client_id`.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::connectors::kind::SettingsContext;
use crate::connectors::records::trimmed_text;
use crate::spec::check::{duration, insecure_reason, range, rate, secret};
use crate::spec::problems::Problems;
use crate::spec::{SecretRef, SecretString};

/// Google's OAuth token endpoint (<https://developers.google.com/identity/protocols/oauth2/service-account>),
/// used when the key file has no `token_uri`.
pub const GOOGLE_DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The Directory API's root: the `rootUrl` of its discovery document
/// (<https://admin.googleapis.com/$discovery/rest?version=directory_v1>).
pub const GOOGLE_DEFAULT_API_BASE_URL: &str = "https://admin.googleapis.com";
/// The customer alias meaning "the account the admin belongs to".
pub const GOOGLE_DEFAULT_CUSTOMER: &str = "my_customer";
/// `admin.directory.user.readonly`: enough for `users.list`.
pub const GOOGLE_SCOPE_USERS: &str =
    "https://www.googleapis.com/auth/admin.directory.user.readonly";
/// `admin.directory.group.readonly`: enough for `groups.list` and `members.list`.
pub const GOOGLE_SCOPE_GROUPS: &str =
    "https://www.googleapis.com/auth/admin.directory.group.readonly";
/// Most users per `users.list` page
/// (<https://developers.google.com/admin-sdk/directory/reference/rest/v1/users/list>).
pub const GOOGLE_MAX_USERS_PAGE_SIZE: u32 = 500;
/// Most groups or members per `groups.list` / `members.list` page
/// (<https://developers.google.com/admin-sdk/directory/reference/rest/v1/groups/list> and
/// <https://developers.google.com/admin-sdk/directory/reference/rest/v1/members/list>).
pub const GOOGLE_MAX_GROUPS_PAGE_SIZE: u32 = 200;
/// Default request rate: the documented default quota of 2,400 queries per minute per
/// user per project (40 per second;
/// <https://developers.google.com/admin-sdk/directory/v1/limits>). Google sends no
/// rate-limit headers; a quota answer (429, or 403 `userRateLimitExceeded`) is retried
/// with backoff.
pub const GOOGLE_DEFAULT_REQUESTS_PER_SECOND: Option<NonZeroU32> = NonZeroU32::new(40);

/// Scopes that allow `users.list` (its "Authorization scopes":
/// <https://developers.google.com/admin-sdk/directory/reference/rest/v1/users/list>).
const USER_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.user",
    GOOGLE_SCOPE_USERS,
];
/// Scopes that allow `groups.list` (and, with them, `members.list`).
const GROUP_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.group",
    GOOGLE_SCOPE_GROUPS,
];

/// Which accounts' users and groups are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoogleDirectoryScope {
    /// `customer=...`: every domain of the account (`my_customer` or a customer id).
    Customer(String),
    /// `domain=...`: one domain only.
    Domain(String),
}

impl GoogleDirectoryScope {
    /// The query parameter naming it: `("customer", id)` or `("domain", name)`.
    pub fn query(&self) -> (&'static str, &str) {
        match self {
            GoogleDirectoryScope::Customer(id) => ("customer", id),
            GoogleDirectoryScope::Domain(name) => ("domain", name),
        }
    }
}

/// The parts of a service-account key file idsync uses.
#[derive(Debug, Clone)]
pub struct ServiceAccountKey {
    /// `client_email`: the assertion's issuer.
    pub client_email: String,
    /// `client_id`: the number the admin authorises for domain-wide delegation.
    pub client_id: Option<String>,
    /// `private_key_id`: the assertion header's `kid`.
    pub private_key_id: Option<String>,
    /// `private_key`: RSA, PEM.
    pub private_key: SecretString,
    /// `token_uri`.
    pub token_uri: Option<String>,
    /// `project_id`, for messages.
    pub project_id: Option<String>,
}

/// The settings of a `kind = "google"` connector (its `[google]` table).
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub key: ServiceAccountKey,
    /// The admin whose privileges the service account borrows (the assertion's `sub`).
    pub subject: String,
    pub directory: GoogleDirectoryScope,
    pub scopes: Vec<String>,
    /// The token endpoint (and the assertion's `aud`).
    pub token_url: String,
    /// The API root, without a trailing `/`.
    pub api_base_url: String,
    /// Suspended users are synced as inactive (true) or left out (false).
    pub include_suspended: bool,
    /// Archived users are synced as inactive (true) or left out (false).
    pub include_archived: bool,
    /// `maxResults` of `users.list` (1-500); groups and members use at most 200.
    pub page_size: u32,
    pub requests_per_second: Option<NonZeroU32>,
    /// Reads between full reads come from the Reports API's admin activities, where
    /// the delegation grants [`GOOGLE_SCOPE_REPORTS`] (else every read is full).
    pub activity_reports: bool,
    /// A checkpoint whose full read is older than this makes the next read a full one
    /// (zero: every read).
    pub full_sync_every: Duration,
    /// Plain `http` URLs are accepted (loopback hosts only; labs and tests). Default
    /// false; every run logs a warning when set.
    pub allow_insecure_http: bool,
}

/// Default `full_sync_every` of a Google connector.
pub const GOOGLE_DEFAULT_FULL_SYNC_EVERY: Duration = Duration::from_secs(24 * 3600);

/// The scope of the Reports API's `activities.list`, asked for with a token of its own so
/// that a delegation without it still allows full reads
/// (<https://developers.google.com/workspace/admin/reports/v1/reference/activities/list>).
pub const GOOGLE_SCOPE_REPORTS: &str =
    "https://www.googleapis.com/auth/admin.reports.audit.readonly";

impl GoogleSettings {
    /// `maxResults` for `groups.list` and `members.list`.
    pub fn groups_page_size(&self) -> u32 {
        self.page_size.min(GOOGLE_MAX_GROUPS_PAGE_SIZE)
    }
}

/// The `[google]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGoogleSettings {
    /// The service account's JSON key: `{ file = "path" }` or `{ env = "NAME" }` holding
    /// the JSON. Required.
    service_account_key: Spanned<SecretRef>,
    /// The Workspace admin to impersonate (domain-wide delegation). Required.
    subject: Spanned<String>,
    /// `my_customer` (default) or a customer id such as `C01abcd23`.
    #[serde(default)]
    customer: Option<Spanned<String>>,
    /// One domain instead of the whole customer account.
    #[serde(default)]
    domain: Option<Spanned<String>>,
    /// OAuth scopes asked for. Default: the read-only user and group scopes.
    #[serde(default)]
    scopes: Option<Spanned<Vec<Spanned<String>>>>,
    /// Default: the key file's `token_uri`, else https://oauth2.googleapis.com/token.
    #[serde(default)]
    token_url: Option<Spanned<String>>,
    /// Default: https://admin.googleapis.com.
    #[serde(default)]
    api_base_url: Option<Spanned<String>>,
    /// Default true: suspended users synced as inactive.
    #[serde(default)]
    include_suspended: Option<bool>,
    /// Default true: archived users synced as inactive.
    #[serde(default)]
    include_archived: Option<bool>,
    /// Users per page, 1-500 (groups and members: at most 200). Default 500.
    #[serde(default)]
    page_size: Option<Spanned<i64>>,
    /// Requests per second at most, at least 1. Default 40.
    #[serde(default)]
    requests_per_second: Option<Spanned<i64>>,
    /// Read what changed since the last run from the Reports API (the admin log) where
    /// the delegation grants its scope. Default true.
    #[serde(default)]
    activity_reports: Option<bool>,
    /// How often a full read runs even when activity reports are available. Default 24h.
    #[serde(default)]
    full_sync_every: Option<Spanned<String>>,
    /// Accept plain `http` URLs for loopback hosts (labs, tests). Default false.
    #[serde(default)]
    allow_insecure_http: bool,
}

/// What the `kind` line says a `[google]` table needs.
const NEEDS: &str =
    "kind = \"google\" needs a [google] table with `service_account_key` and `subject`";

crate::connectors::kind::kind_table!(RawGoogleSettings => GoogleSettings {
    needs: NEEDS, check: check, user_keys: super::records::user_keys, connect: super::GoogleConnector::new
});

/// Reads a service-account key file's JSON. The error says what is wrong without quoting
/// the file (it holds the private key).
pub fn parse_service_account_key(json: &str) -> Result<ServiceAccountKey, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        format!(
            "is not a Google service-account key file: not JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(map) = value else {
        return Err("is not a Google service-account key file: expected a JSON object".to_owned());
    };
    let text = |key: &str| trimmed_text(map.get(key));
    match text("type").as_deref() {
        Some("service_account") => {}
        Some(other) => {
            return Err(format!(
                "is a `{other}` credential, not a service-account key: create a JSON key for a \
                 service account (Google Cloud console › IAM & Admin › Service accounts › Keys)"
            ));
        }
        None => {
            return Err(
                "is not a Google service-account key file: it has no `\"type\": \"service_account\"`"
                    .to_owned(),
            );
        }
    }
    let client_email = text("client_email")
        .ok_or("is a service-account key without `client_email`: download the key again")?;
    let private_key = text("private_key")
        .ok_or("is a service-account key without `private_key`: download the key again")?;
    check_private_key(&private_key)?;
    let token_uri = text("token_uri");
    if let Some(uri) = &token_uri
        && !is_http_url(uri)
    {
        return Err(format!(
            "has a `token_uri` that is not an http(s) URL: `{uri}`"
        ));
    }
    Ok(ServiceAccountKey {
        client_email,
        client_id: text("client_id"),
        private_key_id: text("private_key_id"),
        private_key: SecretString::new(private_key),
        token_uri,
        project_id: text("project_id"),
    })
}

/// Signs a test token with the key, so a key that cannot sign is caught at load time.
fn check_private_key(pem: &str) -> Result<(), String> {
    let unusable = |e: jsonwebtoken::errors::Error| {
        format!("has a `private_key` that is not a usable RSA private key in PEM form ({e})")
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(unusable)?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &serde_json::json!({"check": true}),
        &key,
    )
    .map(|_| ())
    .map_err(unusable)
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
}

/// Why `text` may not be used as an endpoint, if it may not: not an https URL (http only
/// for loopback hosts with `allow_insecure_http`).
fn url_problem(text: &str, allow_insecure_http: bool) -> Option<String> {
    match url::Url::parse(text) {
        Ok(url) if is_http_url(text) => {
            insecure_reason(&url, allow_insecure_http).map(|reason| format!("`{text}`: {reason}"))
        }
        _ => Some(format!("`{text}` must be an https:// URL")),
    }
}

/// Checks a `[google]` table and resolves and reads its key.
pub(super) fn check(
    table: &Spanned<RawGoogleSettings>,
    at: &SettingsContext<'_>,
    problems: &mut Problems,
) -> Option<GoogleSettings> {
    let (source, base_dir, raw) = (at.source, at.base_dir, table.get_ref());
    let before = problems.len();

    let key_setting = (&raw.service_account_key, "google.service_account_key");
    let key = secret(source, key_setting.0, key_setting.1, base_dir, problems).and_then(|json| {
        let parsed = parse_service_account_key(json.expose())
            .map_err(|why| format!("{} {why}", key_setting.0.get_ref()));
        source.checked(problems, key_setting.0, key_setting.1, parsed)
    });

    let subject = raw.subject.get_ref().trim().to_owned();
    if !looks_like_email(&subject) {
        source.report(
            problems,
            &raw.subject,
            "google.subject",
            format!(
                "`{subject}` is not an email address: give the Workspace admin the service \
                 account acts as (domain-wide delegation)"
            ),
        );
    }

    let directory = match (&raw.customer, &raw.domain) {
        (Some(_), Some(domain)) => {
            source.report(
                problems,
                domain,
                "google.domain",
                "set either `customer` or `domain`, not both",
            );
            None
        }
        (Some(customer), None) => {
            let text = customer.get_ref().trim();
            if text.is_empty() || text.contains(['/', '?', '#', '&', ' ']) {
                source.report(
                    problems,
                    customer,
                    "google.customer",
                    format!(
                        "`{text}` is not a customer id: use `my_customer` or an id such as C01abcd23"
                    ),
                );
                None
            } else {
                Some(GoogleDirectoryScope::Customer(text.to_owned()))
            }
        }
        (None, Some(domain)) => {
            let text = domain.get_ref().trim().to_ascii_lowercase();
            if text.is_empty()
                || !text.contains('.')
                || text.contains(['/', '?', '#', '&', ' ', '@'])
            {
                source.report(
                    problems,
                    domain,
                    "google.domain",
                    format!("`{text}` is not a domain name such as example.com"),
                );
                None
            } else {
                Some(GoogleDirectoryScope::Domain(text))
            }
        }
        (None, None) => Some(GoogleDirectoryScope::Customer(
            GOOGLE_DEFAULT_CUSTOMER.to_owned(),
        )),
    };

    let scopes = match &raw.scopes {
        None => vec![
            GOOGLE_SCOPE_USERS.to_owned(),
            GOOGLE_SCOPE_GROUPS.to_owned(),
        ],
        Some(list) => {
            let mut scopes: Vec<String> = Vec::new();
            for scope in list.get_ref() {
                let text = scope.get_ref().trim();
                if !text.starts_with("https://") || text.contains(char::is_whitespace) {
                    source.report(
                        problems,
                        scope,
                        "google.scopes",
                        format!("`{text}` is not an OAuth scope such as {GOOGLE_SCOPE_USERS}"),
                    );
                } else if !scopes.iter().any(|s| s == text) {
                    scopes.push(text.to_owned());
                }
            }
            let has = |allowed: &[&str]| scopes.iter().any(|s| allowed.contains(&s.as_str()));
            if !has(&USER_SCOPES) {
                source.report(
                    problems,
                    list,
                    "google.scopes",
                    format!("listing users needs the scope {GOOGLE_SCOPE_USERS} (or admin.directory.user)"),
                );
            }
            if !has(&GROUP_SCOPES) {
                source.report(
                    problems,
                    list,
                    "google.scopes",
                    format!(
                        "listing groups and their members needs the scope {GOOGLE_SCOPE_GROUPS} \
                         (or admin.directory.group)"
                    ),
                );
            }
            scopes
        }
    };

    let url_setting = |spanned: &Spanned<String>, key: &str, problems: &mut Problems| {
        let text = spanned.get_ref().trim().to_owned();
        if let Some(message) = url_problem(&text, raw.allow_insecure_http) {
            source.report(problems, spanned, key, message);
        } else if text.contains(['?', '#']) {
            source.report(
                problems,
                spanned,
                key,
                format!("`{text}` must not have a query or fragment"),
            );
        }
        text
    };
    let token_url = raw
        .token_url
        .as_ref()
        .map(|t| url_setting(t, "google.token_url", problems));
    let api_base_url = match &raw.api_base_url {
        Some(spanned) => {
            let text = url_setting(spanned, "google.api_base_url", problems)
                .trim_end_matches('/')
                .to_owned();
            if text.contains("/admin/directory") {
                source.report(
                    problems,
                    spanned,
                    "google.api_base_url",
                    "give the API root without `/admin/directory/v1` (such as https://admin.googleapis.com)",
                );
            }
            text
        }
        None => GOOGLE_DEFAULT_API_BASE_URL.to_owned(),
    };

    let page_size = range(
        source,
        raw.page_size.as_ref(),
        "google.page_size",
        (GOOGLE_MAX_USERS_PAGE_SIZE, GOOGLE_MAX_USERS_PAGE_SIZE),
        &format!("; groups and members pages are capped at {GOOGLE_MAX_GROUPS_PAGE_SIZE}"),
        problems,
    );
    let requests_per_second = rate(
        source,
        raw.requests_per_second.as_ref(),
        "google.requests_per_second",
        GOOGLE_DEFAULT_REQUESTS_PER_SECOND,
        problems,
    );
    let full_sync_every = duration(
        source,
        raw.full_sync_every.as_ref(),
        "google.full_sync_every",
        (GOOGLE_DEFAULT_FULL_SYNC_EVERY, false),
        problems,
    );

    if problems.len() != before {
        return None;
    }
    let key = key?;
    let token_url = match token_url {
        Some(url) => url,
        None => {
            let url = key
                .token_uri
                .clone()
                .unwrap_or_else(|| GOOGLE_DEFAULT_TOKEN_URL.to_owned());
            // The key file's token_uri receives the signed assertion: same rule.
            if let Some(message) = url_problem(&url, raw.allow_insecure_http) {
                source.report(
                    problems,
                    &raw.service_account_key,
                    "google.service_account_key",
                    format!("the key file's token_uri {message}"),
                );
                return None;
            }
            url
        }
    };
    Some(GoogleSettings {
        key,
        subject,
        directory: directory?,
        scopes,
        token_url,
        api_base_url,
        include_suspended: raw.include_suspended.unwrap_or(true),
        include_archived: raw.include_archived.unwrap_or(true),
        page_size: page_size?,
        requests_per_second: requests_per_second?,
        activity_reports: raw.activity_reports.unwrap_or(true),
        full_sync_every: full_sync_every?,
        allow_insecure_http: raw.allow_insecure_http,
    })
}

/// `local@domain.tld`, without spaces: enough to catch a user name or a typo.
fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}
