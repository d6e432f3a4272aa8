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
//! requests_per_second = 20
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
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::SecretString;
use super::duration::parse_duration;
use super::problems::{Problems, Source};
use super::secret::SecretRef;
use crate::spec::check::insecure_reason;

/// Default login host (Entra ID, global cloud).
pub const AZURE_DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Default Microsoft Graph host (global cloud).
pub const AZURE_DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// Largest `$top` Graph accepts on users, groups and members.
pub const AZURE_MAX_PAGE_SIZE: u32 = 999;
/// Default client-side request rate: well below Graph's identity read limits (a small
/// tenant allows 3,500 resource units per 10 s per app; a `$select`ed list costs 1-2).
pub const AZURE_DEFAULT_REQUESTS_PER_SECOND: u32 = 20;
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
    pub requests_per_second: NonZeroU32,
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
            requests_per_second: NonZeroU32::new(AZURE_DEFAULT_REQUESTS_PER_SECOND)
                .unwrap_or(NonZeroU32::MIN),
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
pub(crate) struct RawAzureSettings {
    /// The directory (tenant) id, or a verified domain such as `contoso.onmicrosoft.com`.
    /// Required; `common`, `organizations` and `consumers` do not work for a daemon.
    tenant_id: Spanned<String>,
    /// The application (client) id of the app registration. Required.
    client_id: Spanned<String>,
    /// The client secret: `{ env = "NAME" }` or `{ file = "path" }`. Either this or
    /// `certificate` + `private_key`.
    #[serde(default)]
    client_secret: Option<Spanned<SecretRef>>,
    /// The certificate registered on the app (PEM), `{ file = "path" }` or `{ env }`.
    #[serde(default)]
    certificate: Option<Spanned<SecretRef>>,
    /// The certificate's private key (PEM, unencrypted), `{ file = "path" }` or `{ env }`.
    #[serde(default)]
    private_key: Option<Spanned<SecretRef>>,
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
    /// Requests per second, at least 1. Default 20.
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
fn is_property_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

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

/// Checks an `[azure]` table, resolving its secrets. `enabled = false` connectors whose
/// secrets cannot be looked up are accepted with [`AzureCredential::Unavailable`].
pub(crate) fn azure_settings(
    source: &Source<'_>,
    base_dir: &Path,
    raw: &RawAzureSettings,
    enabled: bool,
    problems: &mut Problems,
) -> Option<AzureSettings> {
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
        match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                if let Some(reason) = insecure_reason(&url, raw.allow_insecure_http) {
                    source.report(problems, spanned, key, format!("`{text}`: {reason}"));
                } else if url.query().is_some() || url.fragment().is_some() {
                    source.report(
                        problems,
                        spanned,
                        key,
                        format!("`{text}` must not have a query or fragment"),
                    );
                } else if host_only && url.path() != "/" && !url.path().is_empty() {
                    let hint = if key == "azure.graph_url" {
                        "without `/v1.0`, such as https://graph.microsoft.com"
                    } else {
                        "without the tenant or path, such as https://login.microsoftonline.com"
                    };
                    source.report(
                        problems,
                        spanned,
                        key,
                        format!("`{text}` must be the host only, {hint}"),
                    );
                }
            }
            Ok(_) => source.report(
                problems,
                spanned,
                key,
                format!("`{text}` must be an https:// URL"),
            ),
            Err(err) => source.report(
                problems,
                spanned,
                key,
                format!("`{text}` is not a URL: {err}"),
            ),
        }
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

    let page_size = match &raw.page_size {
        None => AZURE_MAX_PAGE_SIZE,
        Some(spanned) => match u32::try_from(*spanned.get_ref()) {
            Ok(n) if (1..=AZURE_MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                source.report(
                    problems,
                    spanned,
                    "azure.page_size",
                    format!(
                        "{} is out of range (1-{AZURE_MAX_PAGE_SIZE}, Graph's largest $top)",
                        spanned.get_ref()
                    ),
                );
                AZURE_MAX_PAGE_SIZE
            }
        },
    };
    let requests_per_second = crate::spec::check::rate(
        source,
        raw.requests_per_second.as_ref(),
        "azure.requests_per_second",
        AZURE_DEFAULT_REQUESTS_PER_SECOND,
        problems,
    );
    let mut duration = |value: &Option<Spanned<String>>, key: &str, default: Duration| match value {
        None => default,
        Some(spanned) => match parse_duration(spanned.get_ref()) {
            Ok(d) if d.is_zero() => {
                source.report(problems, spanned, key, "must be longer than 0s");
                default
            }
            Ok(d) => d,
            Err(err) => {
                source.report(problems, spanned, key, err);
                default
            }
        },
    };
    let full_sync_every = duration(
        &raw.full_sync_every,
        "azure.full_sync_every",
        AZURE_DEFAULT_FULL_SYNC_EVERY,
    );
    let max_retry_time = duration(
        &raw.max_retry_time,
        "azure.max_retry_time",
        AZURE_DEFAULT_MAX_RETRY_TIME,
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
        page_size,
        requests_per_second: requests_per_second?,
        delta,
        full_sync_every,
        user_properties,
        group_properties,
        max_retry_time,
        allow_insecure_http: raw.allow_insecure_http,
    })
}

/// The secret, or the certificate and its key; exactly one of the two forms.
fn credential(
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
                source.report(problems, spanned, key, err.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("7").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration("d")
                .unwrap_err()
                .contains("a number goes before")
        );
        assert!(
            parse_duration("7 days")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
    }

    #[test]
    fn property_names() {
        for ok in ["jobTitle", "extension_1a2b_costCenter", "a1"] {
            assert!(is_property_name(ok), "{ok}");
        }
        for bad in ["", "1a", "job Title", "a,b", "manager/id"] {
            assert!(!is_property_name(bad), "{bad}");
        }
    }

    #[test]
    fn pem_blocks() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        let (pem, der) = pem_block(text, &["CERTIFICATE"]).expect("block");
        assert_eq!(der, vec![0, 1, 2, 3]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem_block(text, &["PRIVATE KEY"]).is_none());
        assert!(
            pem_block(
                "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
                &["CERTIFICATE"]
            )
            .is_none()
        );
    }

    #[test]
    fn defaults() {
        let s = AzureSettings::new(
            "t",
            "c",
            AzureCredential::Unavailable {
                key: "azure.client_secret".into(),
                reason: "x".into(),
            },
        );
        assert_eq!(
            s.token_url,
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(s.page_size, 999);
        assert!(s.delta && s.include_guests);
        assert!(s.user_properties.iter().any(|p| p == "accountEnabled"));
        assert_eq!(
            format!("{:?}", s.credential),
            "Unavailable(azure.client_secret: x)"
        );
        let secret = AzureCredential::Secret(SecretString::new("hunter2"));
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    /// Loads `connectors/<id>.toml` (text) in a temp dir holding `files`, with mapping
    /// `default`.
    fn check(text: &str, files: &[(&str, &str)]) -> (Option<AzureSettings>, Vec<String>) {
        use std::collections::BTreeSet;
        use std::path::PathBuf;
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).expect("write");
        }
        let file = dir.path().join("connectors/graph.toml");
        let mut problems = Problems::new(dir.path());
        let known: BTreeSet<String> = ["default".to_owned()].into();
        let context = super::super::connector::Context {
            base_dir: dir.path(),
            known_mappings: &known,
            mappings_dir: PathBuf::from("mappings"),
        };
        let source = Source { file: &file, text };
        let connector = super::super::connector::load("graph", &source, &context, &mut problems);
        let problems = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect();
        let settings = connector.map(|c| match c.settings {
            super::super::ConnectorSettings::Azure(s) => s,
            other => panic!("not azure: {}", other.kind()),
        });
        (settings, problems)
    }

    const HEAD: &str = "kind = \"azure\"\nmapping = \"default\"\n[azure]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\n";
    const UNSET: &str = "IDSYNC_TEST_UNSET_AZURE_SECRET_5C1D";

    fn cert_and_key() -> (String, String) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/keys");
        (
            std::fs::read_to_string(dir.join("graph-test-cert.pem")).expect("cert"),
            std::fs::read_to_string(dir.join("graph-test-key.pem")).expect("key"),
        )
    }

    #[test]
    fn a_valid_connector_with_a_secret_and_defaults() {
        // PATH is set wherever the tests run; a real config names its own variable.
        let (settings, problems) = check(
            &format!("{HEAD}client_secret = {{ env = \"PATH\" }}\n"),
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let s = settings.expect("valid");
        assert_eq!(s.tenant_id, "contoso.onmicrosoft.com");
        assert_eq!(
            s.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(s.graph_url, "https://graph.microsoft.com");
        assert!(matches!(s.credential, AzureCredential::Secret(_)));
        assert!(s.include_guests && s.delta);
        assert_eq!(s.page_size, 999);
        assert_eq!(s.requests_per_second.get(), 20);
        assert_eq!(s.full_sync_every, Duration::from_secs(7 * 86_400));
        assert_eq!(s.max_retry_time, Duration::from_secs(300));
        for p in [
            "id",
            "userPrincipalName",
            "mail",
            "givenName",
            "surname",
            "displayName",
            "accountEnabled",
            "userType",
        ] {
            assert!(s.user_properties.iter().any(|x| x == p), "{p}");
        }
    }

    #[test]
    fn every_setting() {
        let (cert, key) = cert_and_key();
        let (settings, problems) = check(
            &format!(
                "{HEAD}certificate = {{ file = \"cert.pem\" }}\nprivate_key = {{ file = \"key.pem\" }}\n\
                 authority = \"https://login.microsoftonline.us/\"\ngraph_url = \"https://graph.microsoft.us\"\n\
                 include_guests = false\ndelta = false\nuser_filter = \"accountEnabled eq true\"\n\
                 group_filter = \"securityEnabled eq true\"\npage_size = 500\nrequests_per_second = 5\n\
                 full_sync_every = \"1d12h\"\nmax_retry_time = \"30s\"\n\
                 extra_user_attributes = [\"costCenter\", \"extension_abc_badge\", \"mail\"]\n\
                 extra_group_attributes = [\"visibility\"]\n"
            ),
            &[("cert.pem", &cert), ("key.pem", &key)],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let s = settings.expect("valid");
        assert_eq!(
            s.token_url,
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(s.graph_url, "https://graph.microsoft.us");
        let AzureCredential::Certificate {
            certificate_der,
            private_key_pem,
        } = &s.credential
        else {
            panic!("certificate credential: {:?}", s.credential);
        };
        assert!(certificate_der.len() > 500);
        assert!(
            private_key_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(!s.include_guests && !s.delta);
        assert_eq!(s.user_filter.as_deref(), Some("accountEnabled eq true"));
        assert_eq!(s.group_filter.as_deref(), Some("securityEnabled eq true"));
        assert_eq!(s.page_size, 500);
        assert_eq!(s.requests_per_second.get(), 5);
        assert_eq!(s.full_sync_every, Duration::from_secs(129_600));
        assert_eq!(s.max_retry_time, Duration::from_secs(30));
        assert_eq!(
            &s.user_properties[AZURE_USER_PROPERTIES.len()..],
            ["costCenter", "extension_abc_badge"]
        );
        assert_eq!(
            s.group_properties.last().map(String::as_str),
            Some("visibility")
        );

        // One PEM file holding both the key and the certificate works for both settings.
        let both = format!("{key}{cert}");
        let (settings, problems) = check(
            &format!(
                "{HEAD}certificate = {{ file = \"both.pem\" }}\nprivate_key = {{ file = \"both.pem\" }}\ntoken_url = \"http://127.0.0.1:9/t/token\"\nallow_insecure_http = true\n"
            ),
            &[("both.pem", &both)],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            settings.expect("valid").token_url,
            "http://127.0.0.1:9/t/token"
        );
    }

    #[test]
    fn mistakes_have_file_line_and_key() {
        let (settings, problems) = check(
            "kind = \"azure\"\nmapping = \"default\"\n[azure]\ntenant_id = \"common\"\nclient_id = \" \"\n\
                 client_secret = { env = \"PATH\" }\ngraph_url = \"https://graph.microsoft.com/v1.0\"\n\
                 authority = \"ftp://login\"\npage_size = 1000\nrequests_per_second = 0\n\
                 full_sync_every = \"7 days\"\nmax_retry_time = \"0s\"\nuser_filter = \"userType eq 'Member'\"\n\
                 extra_user_attributes = [\"job title\", \"members\"]\n",
            &[],
        );
        assert!(settings.is_none());
        assert_eq!(
            problems,
            [
                "connectors/graph.toml:4: azure.tenant_id: `common` is not a tenant: a daemon needs the directory (tenant) id or a verified domain such as contoso.onmicrosoft.com",
                "connectors/graph.toml:5: azure.client_id: must not be empty",
                "connectors/graph.toml:8: azure.authority: `ftp://login` must be an https:// URL",
                "connectors/graph.toml:7: azure.graph_url: `https://graph.microsoft.com/v1.0` must be the host only, without `/v1.0`, such as https://graph.microsoft.com",
                "connectors/graph.toml:9: azure.page_size: 1000 is out of range (1-999, Graph's largest $top)",
                "connectors/graph.toml:10: azure.requests_per_second: 0 is out of range (at least 1)",
                "connectors/graph.toml:11: azure.full_sync_every: `7 days` is not a duration (use s, m, h, d or w, such as \"7d\" or \"12h\")",
                "connectors/graph.toml:12: azure.max_retry_time: must be longer than 0s",
                "connectors/graph.toml:13: azure.user_filter: needs delta = false: Graph's delta query filters only by id, so a filtered connector reads with plain listings",
                "connectors/graph.toml:14: azure.extra_user_attributes: `job title` is not a Graph property name (letters, digits and `_`, such as jobTitle or extension_<appid>_costCenter)",
                "connectors/graph.toml:14: azure.extra_user_attributes: `members` is always read",
            ]
        );
    }

    #[test]
    fn credential_mistakes() {
        let (cert, key) = cert_and_key();
        let files = [
            ("cert.pem", cert.as_str()),
            ("key.pem", key.as_str()),
            ("junk.pem", "hello\n"),
        ];
        let cases: [(&str, &str); 7] = [
            (
                "",
                "connectors/graph.toml:5: azure.client_secret: [azure] needs client_secret = { env = \"NAME\" } (or { file = \"path\" }), or certificate and private_key",
            ),
            (
                "client_secret = { env = \"PATH\" }\ncertificate = { file = \"cert.pem\" }\nprivate_key = { file = \"key.pem\" }\n",
                "connectors/graph.toml:6: azure.client_secret: give either client_secret or certificate + private_key, not both",
            ),
            (
                "certificate = { file = \"cert.pem\" }\n",
                "connectors/graph.toml:6: azure.private_key: certificate needs private_key = { file = \"...\" } (the key of that certificate)",
            ),
            (
                "private_key = { file = \"key.pem\" }\n",
                "connectors/graph.toml:6: azure.certificate: private_key needs certificate = { file = \"...\" } (the certificate registered on the app)",
            ),
            (
                "certificate = { file = \"junk.pem\" }\nprivate_key = { file = \"key.pem\" }\n",
                "connectors/graph.toml:6: azure.certificate: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            ),
            (
                "certificate = { file = \"cert.pem\" }\nprivate_key = { file = \"cert.pem\" }\n",
                "connectors/graph.toml:7: azure.private_key: no PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----) in it",
            ),
            (
                "client_secret = \"inline\"\n",
                "connectors/graph.toml:6: azure.client_secret: secrets are given by reference, never inline: use { env = \"NAME\" } or { file = \"path\" }",
            ),
        ];
        for (tail, expected) in cases {
            let (settings, problems) = check(&format!("{HEAD}{tail}"), &files);
            assert!(settings.is_none(), "{tail}");
            assert_eq!(problems, [expected], "{tail}");
        }
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let (_, problems) = check(
            &format!(
                "{HEAD}certificate = {{ file = \"cert.pem\" }}\nprivate_key = {{ file = \"enc.pem\" }}\n"
            ),
            &[("cert.pem", &cert), ("enc.pem", encrypted)],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("azure.private_key: the private key is encrypted"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_secret_fails_an_enabled_connector_only() {
        let unset = SecretRef::Env(UNSET.to_owned())
            .resolve(Path::new("."))
            .expect_err("unset")
            .to_string();
        let (settings, problems) = check(
            &format!("{HEAD}client_secret = {{ env = \"{UNSET}\" }}\n"),
            &[],
        );
        assert!(settings.is_none());
        assert_eq!(
            problems,
            [format!(
                "connectors/graph.toml:6: azure.client_secret: {unset}"
            )]
        );
        let disabled = HEAD.replace(
            "mapping = \"default\"\n",
            "mapping = \"default\"\nenabled = false\n",
        );
        let (settings, problems) = check(
            &format!("{disabled}client_secret = {{ env = \"{UNSET}\" }}\n"),
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        match settings.expect("accepted").credential {
            AzureCredential::Unavailable { key, reason } => {
                assert_eq!(key, "azure.client_secret");
                assert_eq!(reason, unset);
            }
            other => panic!("{other:?}"),
        }
        // Everything else of a disabled connector is still checked.
        let (settings, problems) = check(
            &format!("{disabled}client_secret = {{ env = \"{UNSET}\" }}\npage_size = 0\n"),
            &[],
        );
        assert!(settings.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn the_table_must_match_the_kind() {
        let (_, problems) = check("kind = \"azure\"\nmapping = \"default\"\n", &[]);
        assert_eq!(
            problems,
            [
                "connectors/graph.toml:1: kind: kind = \"azure\" needs an [azure] table with `tenant_id`, `client_id` and `client_secret` (or `certificate` and `private_key`)"
            ]
        );
        let (_, problems) = check(
            "kind = \"scim\"\nmapping = \"default\"\n[azure]\ntenant_id = \"t\"\nclient_id = \"c\"\n",
            &[],
        );
        assert_eq!(
            problems,
            ["connectors/graph.toml:3: azure: [azure] does not apply to kind = \"scim\""]
        );
        let (_, problems) = check(
            &format!("{HEAD}client_secret = {{ env = \"PATH\" }}\nscope = \"x\"\n"),
            &[],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("unknown field `scope`"),
            "{problems:?}"
        );
    }
}
