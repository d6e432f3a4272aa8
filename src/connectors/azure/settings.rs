//! Settings of a Microsoft Graph (Entra ID) connector: `kind = "azure"`, its `[azure]` table.
//!
//! ```toml
//! kind = "azure"
//! mapping = "default"
//! [azure]
//! tenant_id = "contoso.onmicrosoft.com"          # tenant GUID or a verified domain
//! client_id = "11111111-2222-3333-4444-555555555555"
//! client_secret = { env = "AZURE_CLIENT_SECRET" }  # or the certificate pair below
//! # certificate = { file = "secrets/idsync.crt" }  # PEM, registered on the app
//! # private_key = { file = "secrets/idsync.key" }  # PEM, unencrypted (PKCS#8 or PKCS#1)
//! # authority = "https://login.microsoftonline.com"  # national clouds: their login host
//! # graph_url = "https://graph.microsoft.com"        # national clouds: their Graph host
//! # token_url = "https://login.example/tenant/oauth2/v2.0/token"  # default from authority
//! include_guests = true
//! delta = true                                     # delta query; false: plain listing
//! full_sync_every = "7d"                           # a full read at least this often
//! page_size = 999                                  # $top of plain listings, 1-999
//! requests_per_second = 20                         # a ceiling; default: none
//! extra_user_attributes = ["jobTitle", "department"]
//! # user_filter = "accountEnabled eq true"          # OData $filter; needs delta = false
//! # group_filter = "securityEnabled eq true"
//! # max_retry_time = "5m"
//! ```
//!
//! Secrets come only from `{ env }` / `{ file }` references. The secret (or the key) of a
//! *disabled* connector that cannot be looked up is not a configuration problem: the
//! connector is still checked, and it is refused only when it is started (the bundled
//! example connector can then ship without its secret).

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::connectors::kind::SettingsContext;
use crate::spec::check::{duration, endpoint_url, range, rate};
use crate::spec::problems::Problems;
use crate::spec::{SecretRef, SecretString};

use super::credential::credential;
#[cfg(test)]
pub(crate) use super::credential::pem_block;

/// What an azure connector without its table is told.
const NEEDS: &str = "kind = \"azure\" needs an [azure] table with `tenant_id`, \
     `client_id` and `client_secret` (or `certificate` and `private_key`)";

crate::connectors::kind::kind_table!(RawAzureSettings => AzureSettings {
    needs: NEEDS, check: check, user_keys: super::records::user_keys, connect: super::AzureConnector::new
});

/// Default login host (Entra ID, global cloud).
pub const AZURE_DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Default Microsoft Graph host (global cloud).
pub const AZURE_DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// Largest `$top` Graph accepts on users, groups and members.
pub const AZURE_MAX_PAGE_SIZE: u32 = 999;
/// Default client-side ceiling: none. Graph's identity read limits (a small tenant allows
/// 3,500 resource units per 10 s per app; a `$select`ed list page costs 1-2) are far above
/// what one request at a time reaches, and a throttled request is answered 429 with
/// `Retry-After`, which the client waits for
/// (<https://learn.microsoft.com/graph/throttling-limits>).
pub const AZURE_DEFAULT_REQUESTS_PER_SECOND: Option<NonZeroU32> = None;
/// Default longest time between two full reads (delta tokens expire after 7 days anyway).
pub const AZURE_DEFAULT_FULL_SYNC_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default cap on the time one request is retried (429, 5xx, connection errors).
pub const AZURE_DEFAULT_MAX_RETRY_TIME: Duration = Duration::from_secs(300);

/// User properties always asked for (`$select`); the connector and the usual mappings need
/// them. Every name is a `user` property of Graph v1.0.
pub const AZURE_USER_PROPERTIES: [&str; 26] = [
    "id",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
    "accountEnabled",
    "userType",
    "otherMails",
    "proxyAddresses",
    "jobTitle",
    "department",
    "companyName",
    "employeeId",
    "employeeType",
    "officeLocation",
    "mobilePhone",
    "businessPhones",
    "preferredLanguage",
    "externalUserState",
    "creationType",
    "createdDateTime",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesSyncEnabled",
    "onPremisesExtensionAttributes",
];

/// Group properties always asked for.
pub const AZURE_GROUP_PROPERTIES: [&str; 11] = [
    "id",
    "displayName",
    "description",
    "mail",
    "mailNickname",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "createdDateTime",
    "onPremisesSyncEnabled",
    "onPremisesSamAccountName",
];

/// How the connector proves who it is to the token endpoint.
#[derive(Clone)]
pub enum AzureCredential {
    /// `client_secret`.
    Secret(SecretString),
    /// A certificate registered on the app registration: a client assertion (JWT) is
    /// signed with its private key.
    Certificate {
        /// The certificate, DER (its thumbprints go in the assertion header).
        certificate_der: Vec<u8>,
        /// The private key block, PEM (`PRIVATE KEY` or `RSA PRIVATE KEY`).
        private_key_pem: SecretString,
    },
    /// A disabled connector whose secret or key could not be looked up: starting it fails
    /// with this reason.
    Unavailable {
        /// The setting (`azure.client_secret`, ...).
        key: String,
        /// Why it could not be looked up.
        reason: String,
    },
}

impl std::fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AzureCredential::Secret(_) => f.write_str("Secret(********)"),
            AzureCredential::Certificate {
                certificate_der, ..
            } => write!(
                f,
                "Certificate({} DER bytes, key ********)",
                certificate_der.len()
            ),
            AzureCredential::Unavailable { key, reason } => {
                write!(f, "Unavailable({key}: {reason})")
            }
        }
    }
}

/// The settings of a `kind = "azure"` connector.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// Tenant GUID or verified domain.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    pub credential: AzureCredential,
    /// The token endpoint (also the `aud` of a client assertion).
    pub token_url: String,
    /// Graph host, without a trailing `/` and without `/v1.0`; the token scope is
    /// `{graph_url}/.default`.
    pub graph_url: String,
    /// Whether guests (`userType = Guest`) are read.
    pub include_guests: bool,
    /// `$filter` of the users listing (plain listing only).
    pub user_filter: Option<String>,
    /// `$filter` of the groups listing (plain listing only).
    pub group_filter: Option<String>,
    /// `$top` of plain listings (1-999).
    pub page_size: u32,
    pub requests_per_second: Option<NonZeroU32>,
    /// Incremental reads through delta query.
    pub delta: bool,
    /// A delta run becomes a full read when the last full read is older than this.
    pub full_sync_every: Duration,
    /// `$select` of users: [`AZURE_USER_PROPERTIES`] and the extra ones.
    pub user_properties: Vec<String>,
    /// `$select` of groups: [`AZURE_GROUP_PROPERTIES`] and the extra ones.
    pub group_properties: Vec<String>,
    /// Cap on the time one request is retried.
    pub max_retry_time: Duration,
    /// Plain `http` URLs are accepted (loopback hosts only; labs and tests). Default
    /// false; every run logs a warning when set.
    pub allow_insecure_http: bool,
}

impl AzureSettings {
    /// Settings with every default, for `tenant_id`/`client_id`/`credential` (tests and
    /// programmatic use; a configuration file goes through the loader).
    pub fn new(tenant_id: &str, client_id: &str, credential: AzureCredential) -> AzureSettings {
        AzureSettings {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            credential,
            token_url: default_token_url(AZURE_DEFAULT_AUTHORITY, tenant_id),
            graph_url: AZURE_DEFAULT_GRAPH_URL.to_owned(),
            include_guests: true,
            user_filter: None,
            group_filter: None,
            page_size: AZURE_MAX_PAGE_SIZE,
            requests_per_second: AZURE_DEFAULT_REQUESTS_PER_SECOND,
            delta: true,
            full_sync_every: AZURE_DEFAULT_FULL_SYNC_EVERY,
            user_properties: AZURE_USER_PROPERTIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            group_properties: AZURE_GROUP_PROPERTIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_retry_time: AZURE_DEFAULT_MAX_RETRY_TIME,
            allow_insecure_http: false,
        }
    }
}

/// `{authority}/{tenant}/oauth2/v2.0/token`.
pub fn default_token_url(authority: &str, tenant_id: &str) -> String {
    format!(
        "{}/{tenant_id}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

/// The `[azure]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAzureSettings {
    /// The directory (tenant) id, or a verified domain such as `contoso.onmicrosoft.com`.
    /// Required; `common`, `organizations` and `consumers` do not work for a daemon.
    tenant_id: Spanned<String>,
    /// The application (client) id of the app registration. Required.
    pub(super) client_id: Spanned<String>,
    /// The client secret: `{ env = "NAME" }` or `{ file = "path" }`. Either this or
    /// `certificate` + `private_key`.
    #[serde(default)]
    pub(super) client_secret: Option<Spanned<SecretRef>>,
    /// The certificate registered on the app (PEM), `{ file = "path" }` or `{ env }`.
    #[serde(default)]
    pub(super) certificate: Option<Spanned<SecretRef>>,
    /// The certificate's private key (PEM, unencrypted), `{ file = "path" }` or `{ env }`.
    #[serde(default)]
    pub(super) private_key: Option<Spanned<SecretRef>>,
    /// The login host. Default `https://login.microsoftonline.com`.
    #[serde(default)]
    authority: Option<Spanned<String>>,
    /// The Graph host. Default `https://graph.microsoft.com`.
    #[serde(default)]
    graph_url: Option<Spanned<String>>,
    /// The token endpoint. Default `{authority}/{tenant_id}/oauth2/v2.0/token`.
    #[serde(default)]
    token_url: Option<Spanned<String>>,
    /// Whether guest accounts are read. Default true.
    #[serde(default)]
    include_guests: Option<bool>,
    /// An OData `$filter` for `/users` (plain listing only).
    #[serde(default)]
    user_filter: Option<Spanned<String>>,
    /// An OData `$filter` for `/groups` (plain listing only).
    #[serde(default)]
    group_filter: Option<Spanned<String>>,
    /// `$top` of plain listings, 1-999. Default 999.
    #[serde(default)]
    page_size: Option<Spanned<i64>>,
    /// Requests per second at most, at least 1. Default: no ceiling (Graph answers 429
    /// with `Retry-After` when throttled).
    #[serde(default)]
    requests_per_second: Option<Spanned<i64>>,
    /// Incremental reads with delta query. Default true.
    #[serde(default)]
    delta: Option<bool>,
    /// A full read at least this often (`"12h"`, `"7d"`). Default `"7d"`.
    #[serde(default)]
    full_sync_every: Option<Spanned<String>>,
    /// User properties read besides the built-in list.
    #[serde(default)]
    extra_user_attributes: Vec<Spanned<String>>,
    /// Group properties read besides the built-in list.
    #[serde(default)]
    extra_group_attributes: Vec<Spanned<String>>,
    /// How long one request is retried (throttling, 5xx). Default `"5m"`.
    #[serde(default)]
    max_retry_time: Option<Spanned<String>>,
    /// Accept plain `http` URLs for loopback hosts (labs, tests). Default false.
    #[serde(default)]
    allow_insecure_http: bool,
}

/// Whether `name` can be a Graph property name in `$select` (letters, digits, `_`; this
/// covers directory extensions `extension_<appid>_<name>`).
pub(crate) fn is_property_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks an `[azure]` table, resolving its secrets. `enabled = false` connectors whose
/// secrets cannot be looked up are accepted with [`AzureCredential::Unavailable`].
pub(super) fn check(
    table: &Spanned<RawAzureSettings>,
    at: &SettingsContext<'_>,
    problems: &mut Problems,
) -> Option<AzureSettings> {
    let (source, base_dir, enabled, raw) = (at.source, at.base_dir, at.enabled, table.get_ref());
    let before = problems.len();
    let tenant_id = raw.tenant_id.get_ref().trim().to_owned();
    if tenant_id.is_empty() {
        source.report(
            problems,
            &raw.tenant_id,
            "azure.tenant_id",
            "must not be empty",
        );
    } else if ["common", "organizations", "consumers"]
        .iter()
        .any(|t| tenant_id.eq_ignore_ascii_case(t))
    {
        source.report(
            problems,
            &raw.tenant_id,
            "azure.tenant_id",
            format!(
                "`{tenant_id}` is not a tenant: a daemon needs the directory (tenant) id or a \
                 verified domain such as contoso.onmicrosoft.com"
            ),
        );
    } else if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        source.report(
            problems,
            &raw.tenant_id,
            "azure.tenant_id",
            format!("`{tenant_id}` is not a tenant id (a GUID) or a domain name"),
        );
    }
    let client_id = raw.client_id.get_ref().trim().to_owned();
    if client_id.is_empty() {
        source.report(
            problems,
            &raw.client_id,
            "azure.client_id",
            "must not be empty",
        );
    }

    let mut check_url = |spanned: &Spanned<String>, key: &str, host_only: bool| -> String {
        let text = spanned.get_ref().trim().trim_end_matches('/').to_owned();
        let url = endpoint_url(&text, raw.allow_insecure_http).and_then(|url| {
            if host_only && url.path() != "/" && !url.path().is_empty() {
                let hint = if key == "azure.graph_url" {
                    "without `/v1.0`, such as https://graph.microsoft.com"
                } else {
                    "without the tenant or path, such as https://login.microsoftonline.com"
                };
                Err(format!("`{text}` must be the host only, {hint}"))
            } else {
                Ok(url)
            }
        });
        source.checked(problems, spanned, key, url);
        text
    };
    let authority = raw
        .authority
        .as_ref()
        .map(|a| check_url(a, "azure.authority", true))
        .unwrap_or_else(|| AZURE_DEFAULT_AUTHORITY.to_owned());
    let graph_url = raw
        .graph_url
        .as_ref()
        .map(|g| check_url(g, "azure.graph_url", true))
        .unwrap_or_else(|| AZURE_DEFAULT_GRAPH_URL.to_owned());
    let token_url = match &raw.token_url {
        Some(t) => check_url(t, "azure.token_url", false),
        None => default_token_url(&authority, &tenant_id),
    };

    let credential = credential(source, base_dir, raw, enabled, problems);

    let page_size = range(
        source,
        raw.page_size.as_ref(),
        "azure.page_size",
        (AZURE_MAX_PAGE_SIZE, AZURE_MAX_PAGE_SIZE),
        ", Graph's largest $top",
        problems,
    );
    let requests_per_second = rate(
        source,
        raw.requests_per_second.as_ref(),
        "azure.requests_per_second",
        AZURE_DEFAULT_REQUESTS_PER_SECOND,
        problems,
    );
    let full_sync_every = duration(
        source,
        raw.full_sync_every.as_ref(),
        "azure.full_sync_every",
        (AZURE_DEFAULT_FULL_SYNC_EVERY, true),
        problems,
    );
    let max_retry_time = duration(
        source,
        raw.max_retry_time.as_ref(),
        "azure.max_retry_time",
        (AZURE_DEFAULT_MAX_RETRY_TIME, true),
        problems,
    );

    let delta = raw.delta.unwrap_or(true);
    let mut filter = |value: &Option<Spanned<String>>, key: &str| -> Option<String> {
        let spanned = value.as_ref()?;
        let text = spanned.get_ref().trim();
        if text.is_empty() {
            source.report(problems, spanned, key, "must not be empty (leave it out)");
            return None;
        }
        if delta {
            source.report(
                problems,
                spanned,
                key,
                "needs delta = false: Graph's delta query filters only by id, so a filtered \
                 connector reads with plain listings",
            );
            return None;
        }
        Some(text.to_owned())
    };
    let user_filter = filter(&raw.user_filter, "azure.user_filter");
    let group_filter = filter(&raw.group_filter, "azure.group_filter");

    let mut properties = |builtin: &[&str], extra: &[Spanned<String>], key: &str| -> Vec<String> {
        let mut list: Vec<String> = builtin.iter().map(|s| s.to_string()).collect();
        for name in extra {
            let text = name.get_ref().trim();
            if !is_property_name(text) {
                source.report(
                    problems,
                    name,
                    key,
                    format!(
                        "`{text}` is not a Graph property name (letters, digits and `_`, \
                             such as jobTitle or extension_<appid>_costCenter)"
                    ),
                );
            } else if text == "members" {
                source.report(problems, name, key, "`members` is always read");
            } else if !list.iter().any(|p| p == text) {
                list.push(text.to_owned());
            }
        }
        list
    };
    let user_properties = properties(
        &AZURE_USER_PROPERTIES,
        &raw.extra_user_attributes,
        "azure.extra_user_attributes",
    );
    let group_properties = properties(
        &AZURE_GROUP_PROPERTIES,
        &raw.extra_group_attributes,
        "azure.extra_group_attributes",
    );

    if problems.len() != before {
        return None;
    }
    Some(AzureSettings {
        tenant_id,
        client_id,
        credential: credential?,
        token_url,
        graph_url,
        include_guests: raw.include_guests.unwrap_or(true),
        user_filter,
        group_filter,
        page_size: page_size?,
        requests_per_second: requests_per_second?,
        delta,
        full_sync_every: full_sync_every?,
        user_properties,
        group_properties,
        max_retry_time: max_retry_time?,
        allow_insecure_http: raw.allow_insecure_http,
    })
}
