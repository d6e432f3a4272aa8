//! Settings of an LDAP pull connector: `kind = "ldap"` and its `[ldap]` table.
//!
//! ```toml
//! kind = "ldap"
//! mapping = "default"
//! [ldap]
//! url = "ldaps://dc1.example.com"            # or ldap://... with starttls = true
//! # starttls = true
//! # ca_file = "certs/corp-ca.pem"            # PEM; default: the system's roots
//! bind_dn = "CN=idsync,OU=Service,DC=example,DC=com"
//! bind_password = { env = "LDAP_BIND_PASSWORD" }
//! preset = "active_directory"                 # or "openldap"
//! # page_size = 500                           # 1-1000
//! # timeout_seconds = 120
//! # inactive_filter = "(nsAccountLock=TRUE)"  # replaces the preset's rule
//! # incremental = true                        # changes only, a full read every
//! # full_read_every = "1d"
//! [ldap.users]
//! base_dn = "OU=Staff,DC=example,DC=com"
//! # scope = "sub"                             # or "one"
//! # filter = "(&(objectCategory=person)(objectClass=user))"
//! [ldap.groups]                               # optional: no groups are read without it
//! base_dn = "OU=Groups,DC=example,DC=com"
//! # [ldap.attributes]                         # override the preset's attribute names
//! # user_name = "userPrincipalName"
//! ```

use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use toml::Spanned;

use super::directory::Scope;
use super::dn;
use super::presets::{Inactive, Preset, Profile};
use crate::connectors::kind::SettingsContext;
use crate::spec::check::{is_loopback_host, non_empty, range};
use crate::spec::problems::{Problems, Source};
use crate::spec::{SecretRef, SecretString};

/// What an ldap connector without its table is told.
const NEEDS: &str = "kind = \"ldap\" needs an [ldap] table with `url`, `bind_dn`, \
     `bind_password`, `preset` and [ldap.users] `base_dn`";

crate::connectors::kind::kind_table!(RawLdapSettings => LdapSettings {
    needs: NEEDS, check: check, user_keys: super::records::user_keys, connect: super::LdapConnector::new
});

/// Default `page_size`: below every server's usual limit (AD's MaxPageSize is 1,000).
pub const LDAP_DEFAULT_PAGE_SIZE: u32 = 500;
/// Largest `page_size`: Active Directory's default MaxPageSize.
pub const LDAP_MAX_PAGE_SIZE: u32 = 1000;
/// Default `full_read_every`.
pub const LDAP_DEFAULT_FULL_READ_EVERY: Duration = Duration::from_secs(86_400);
/// Default `timeout_seconds` of each operation.
pub const LDAP_DEFAULT_TIMEOUT_SECONDS: u32 = 120;

/// Where one kind of record is searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchBase {
    pub base_dn: String,
    pub scope: Scope,
    pub filter: String,
}

/// How the connection is protected.
#[derive(Debug, Clone)]
pub struct Transport {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// The CA certificates to trust (from `ca_file`); `None`: the system's roots.
    pub ca_certs: Option<Vec<CertificateDer<'static>>>,
    /// `danger_skip_tls_verify`: the server's certificate is not checked (warned about on
    /// every run).
    pub skip_verify: bool,
    /// A plain `ldap://` URL without StartTLS (loopback only, `allow_insecure_ldap`;
    /// warned about on every run).
    pub plain: bool,
}

/// The settings of a `kind = "ldap"` connector (its `[ldap]` table).
#[derive(Debug, Clone)]
pub struct LdapSettings {
    pub transport: Transport,
    pub bind_dn: String,
    /// The password, or why it could not be looked up (disabled connectors only).
    pub bind_password: Result<SecretString, String>,
    /// The preset with the table's overrides (boxed: it is most of the settings' size).
    pub profile: Box<Profile>,
    pub users: SearchBase,
    /// `None`: no groups are read.
    pub groups: Option<SearchBase>,
    /// Entries per page of a paged search (1-1000).
    pub page_size: u32,
    /// Each operation's time limit.
    pub timeout: Duration,
    /// Read only what changed since the last read, when the server has a change marker.
    pub incremental: bool,
    /// With `incremental`: a full read at least this often.
    pub full_read_every: Duration,
}

/// The `[ldap]` table of a `kind = "ldap"` connector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdapSettings {
    /// `ldaps://host[:port]`, or `ldap://host[:port]` with `starttls = true`. Required.
    url: Spanned<String>,
    /// Upgrade an `ldap://` connection with StartTLS before binding. Default: false.
    #[serde(default)]
    starttls: Option<Spanned<bool>>,
    /// A PEM file of the CA certificates to trust, relative to idsync.toml's directory.
    /// Default: the system's roots.
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    /// Accept any server certificate (no verification). Logged as a warning on every run.
    /// Default: false.
    #[serde(default)]
    danger_skip_tls_verify: bool,
    /// Accept `ldap://` without StartTLS for loopback hosts (labs, tests). Default: false.
    #[serde(default)]
    allow_insecure_ldap: bool,
    /// The account to bind as (a simple bind). Required.
    bind_dn: Spanned<String>,
    /// Its password: `{ env = "NAME" }` or `{ file = "path" }`. Required.
    bind_password: Spanned<SecretRef>,
    /// `"active_directory"` or `"openldap"` (also 389-ds). Required.
    preset: Spanned<String>,
    /// Where users are read. Required.
    users: Spanned<RawSearchBase>,
    /// Where groups are read. Default: no groups.
    #[serde(default)]
    groups: Option<Spanned<RawSearchBase>>,
    /// Entries per page, 1-1000, at most the server's limit. Default: 500.
    #[serde(default)]
    page_size: Option<Spanned<i64>>,
    /// Each operation's time limit in seconds, 1-3600. Default: 120.
    #[serde(default)]
    timeout_seconds: Option<Spanned<i64>>,
    /// Read only what changed since the last read (OpenLDAP's contextCSN with syncprov,
    /// AD's highestCommittedUSN). Default: false, every read is full.
    #[serde(default)]
    incremental: bool,
    /// With `incremental`: a full read at least this often (`"1d"`, `"12h"`). Default: 1d.
    #[serde(default)]
    full_read_every: Option<Spanned<String>>,
    /// Users matching this filter are inactive (instead of the preset's rule).
    #[serde(default)]
    inactive_filter: Option<Spanned<String>>,
    /// The preset's attribute names, overridden.
    #[serde(default)]
    attributes: Option<RawAttributes>,
}

/// `[ldap.users]` / `[ldap.groups]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearchBase {
    base_dn: Spanned<String>,
    #[serde(default)]
    scope: Option<Spanned<String>>,
    #[serde(default)]
    filter: Option<Spanned<String>>,
}

/// `[ldap.attributes]`: every key replaces the preset's attribute name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttributes {
    id: Option<Spanned<String>>,
    user_name: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    given_name: Option<Spanned<String>>,
    family_name: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    group_name: Option<Spanned<String>>,
    group_description: Option<Spanned<String>>,
    member: Option<Spanned<Vec<String>>>,
    member_uid: Option<Spanned<String>>,
}

/// Checks an `[ldap]` table, reads its CA file and resolves its password.
pub(super) fn check(
    table: &Spanned<RawLdapSettings>,
    context: &SettingsContext<'_>,
    problems: &mut Problems,
) -> Option<LdapSettings> {
    let (source, raw) = (context.source, table.get_ref());
    let before = problems.len();
    let transport = check_transport(
        RawTransport {
            table: "ldap",
            dns_go_in: "the base DNs go in [ldap.users] and [ldap.groups]",
            url: &raw.url,
            starttls: raw.starttls.as_ref(),
            ca_file: raw.ca_file.as_ref(),
            danger_skip_tls_verify: raw.danger_skip_tls_verify,
            allow_insecure_ldap: raw.allow_insecure_ldap,
        },
        source,
        context.base_dir,
        problems,
    );
    if dn::normalize(raw.bind_dn.get_ref()).is_none() {
        source.report(problems, &raw.bind_dn, "ldap.bind_dn", "is not a DN");
    }
    // A disabled connector is accepted with a password that cannot be looked up here
    // (its environment variable is set only where it runs); starting it says why.
    let bind_password = match raw.bind_password.get_ref().resolve(context.base_dir) {
        Ok(password) => Some(Ok(password)),
        Err(err) if !context.enabled => Some(Err(err.to_string())),
        Err(err) => {
            let key = "ldap.bind_password";
            source.report_secret(problems, &raw.bind_password, key, err.to_string());
            None
        }
    };
    let preset = Preset::parse(raw.preset.get_ref().trim());
    if preset.is_none() {
        source.report(
            problems,
            &raw.preset,
            "ldap.preset",
            format!(
                "unknown preset `{}` (expected \"active_directory\" or \"openldap\")",
                raw.preset.get_ref()
            ),
        );
    }
    let mut profile = Profile::of(preset.unwrap_or(Preset::OpenLdap));
    if let Some(attributes) = &raw.attributes {
        override_attributes(source, attributes, &mut profile, problems);
    }
    if let Some(filter) = &raw.inactive_filter
        && let Some(filter) = check_filter(source, filter, "ldap.inactive_filter", problems)
    {
        profile.inactive = Inactive::Filter(filter);
    }
    let users = check_base(source, &raw.users, "users", &profile.user_filter, problems);
    let groups = raw
        .groups
        .as_ref()
        .map(|groups| check_base(source, groups, "groups", &profile.group_filter, problems));
    let page_size = range(
        source,
        raw.page_size.as_ref(),
        "ldap.page_size",
        (LDAP_DEFAULT_PAGE_SIZE, LDAP_MAX_PAGE_SIZE),
        ", Active Directory's MaxPageSize",
        problems,
    );
    let timeout = range(
        source,
        raw.timeout_seconds.as_ref(),
        "ldap.timeout_seconds",
        (LDAP_DEFAULT_TIMEOUT_SECONDS, 3600),
        "",
        problems,
    );
    let full_read_every = match &raw.full_read_every {
        None => Some(LDAP_DEFAULT_FULL_READ_EVERY),
        Some(spanned) => match crate::spec::duration::parse_duration(spanned.get_ref()) {
            Ok(every) if !every.is_zero() => Some(every),
            Ok(_) => {
                let key = "ldap.full_read_every";
                source.report(problems, spanned, key, "must be longer than 0s");
                None
            }
            Err(err) => {
                source.report(problems, spanned, "ldap.full_read_every", err);
                None
            }
        },
    };
    if problems.len() > before {
        return None;
    }
    Some(LdapSettings {
        transport: transport?,
        bind_dn: raw.bind_dn.get_ref().trim().to_owned(),
        bind_password: bind_password?,
        profile: Box::new(profile),
        users: users?,
        groups: match groups {
            Some(groups) => Some(groups?),
            None => None,
        },
        page_size: page_size?,
        timeout: Duration::from_secs(u64::from(timeout?)),
        incremental: raw.incremental,
        full_read_every: full_read_every?,
    })
}

/// The connection keys of an LDAP table (a connector's `[ldap]` or the LDAP target's
/// `[target.ldap]`), as [`check_transport`] reads them.
pub struct RawTransport<'a> {
    /// The table's key path in messages: `ldap` or `target.ldap`.
    pub table: &'a str,
    /// Where the DNs go instead of the URL's path (the message of a URL that has one).
    pub dns_go_in: &'a str,
    pub url: &'a Spanned<String>,
    pub starttls: Option<&'a Spanned<bool>>,
    pub ca_file: Option<&'a Spanned<String>>,
    pub danger_skip_tls_verify: bool,
    pub allow_insecure_ldap: bool,
}

/// The URL, StartTLS, CA file and the two insecure options.
pub fn check_transport(
    raw: RawTransport<'_>,
    source: &Source<'_>,
    base_dir: &std::path::Path,
    problems: &mut Problems,
) -> Option<Transport> {
    let key = |name: &str| format!("{}.{name}", raw.table);
    let text = raw.url.get_ref().trim();
    let starttls = raw.starttls.is_some_and(|s| *s.get_ref());
    let url = match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "ldap" | "ldaps") && url.host_str().is_some() => url,
        Ok(_) => {
            let message = format!("`{text}` must be an ldaps:// or ldap:// URL with a host");
            source.report(problems, raw.url, &key("url"), message);
            return None;
        }
        Err(err) => {
            let message = format!("`{text}` is not a URL: {err}");
            source.report(problems, raw.url, &key("url"), message);
            return None;
        }
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        let message = format!("`{text}` must name only the server ({})", raw.dns_go_in);
        source.report(problems, raw.url, &key("url"), message);
    }
    let ldaps = url.scheme() == "ldaps";
    if ldaps && let Some(flag) = raw.starttls.filter(|s| *s.get_ref()) {
        let message = "StartTLS applies to ldap:// URLs; an ldaps:// URL is TLS from the start";
        source.report(problems, flag, &key("starttls"), message);
    }
    let plain = !ldaps && !starttls;
    if plain {
        let loopback = url.host_str().is_some_and(is_loopback_host);
        if !(loopback && raw.allow_insecure_ldap) {
            let message = format!(
                "`{text}`: plain ldap:// sends the bind password unencrypted: set \
                 `starttls = true` or use ldaps:// (plain ldap is allowed only for loopback \
                 hosts, with allow_insecure_ldap = true)"
            );
            source.report(problems, raw.url, &key("url"), message);
        }
    }
    let ca_certs = match raw.ca_file {
        None => None,
        Some(file) => {
            let path = crate::spec::path::resolve(base_dir, file.get_ref().trim().as_ref());
            let certs: Result<Vec<_>, _> =
                CertificateDer::pem_file_iter(&path).and_then(|certs| certs.collect());
            match certs {
                Ok(certs) if !certs.is_empty() => Some(certs),
                Ok(_) => {
                    let message = format!("{} holds no PEM certificate", path.display());
                    source.report(problems, file, &key("ca_file"), message);
                    None
                }
                Err(err) => {
                    let message = format!("cannot read {}: {err}", path.display());
                    source.report(problems, file, &key("ca_file"), message);
                    None
                }
            }
        }
    };
    Some(Transport {
        url: text.to_owned(),
        starttls,
        ca_certs,
        skip_verify: raw.danger_skip_tls_verify,
        plain,
    })
}

/// `[ldap.users]` or `[ldap.groups]`, with `default_filter` when it has none.
fn check_base(
    source: &Source<'_>,
    table: &Spanned<RawSearchBase>,
    name: &str,
    default_filter: &str,
    problems: &mut Problems,
) -> Option<SearchBase> {
    let raw = table.get_ref();
    let key = format!("ldap.{name}.base_dn");
    let mut ok = non_empty(source, &raw.base_dn, &key, "must not be empty", problems);
    if ok && dn::normalize(raw.base_dn.get_ref()).is_none() {
        source.report(problems, &raw.base_dn, &key, "is not a DN");
        ok = false;
    }
    let scope = match raw.scope.as_ref().map(|s| (s, s.get_ref().trim())) {
        None | Some((_, "sub")) => Some(Scope::Sub),
        Some((_, "one")) => Some(Scope::One),
        Some((spanned, other)) => {
            let message = format!("unknown scope `{other}` (expected \"sub\" or \"one\")");
            source.report(problems, spanned, &format!("ldap.{name}.scope"), message);
            None
        }
    };
    let filter = match &raw.filter {
        Some(filter) => check_filter(source, filter, &format!("ldap.{name}.filter"), problems),
        None => Some(default_filter.to_owned()),
    };
    Some(SearchBase {
        base_dn: ok.then(|| raw.base_dn.get_ref().trim().to_owned())?,
        scope: scope?,
        filter: filter?,
    })
}

/// An LDAP filter (RFC 4515) that parses.
fn check_filter(
    source: &Source<'_>,
    filter: &Spanned<String>,
    key: &str,
    problems: &mut Problems,
) -> Option<String> {
    let text = filter.get_ref().trim();
    // ldap3 also takes a bare `a=b`; RFC 4515 wants the parentheses.
    let parenthesised = text.starts_with('(') && text.ends_with(')');
    if !parenthesised || ldap3::parse_filter(text).is_err() {
        let message = format!("`{text}` is not an LDAP filter (RFC 4515), such as `(uid=*)`");
        source.report(problems, filter, key, message);
        return None;
    }
    Some(text.to_owned())
}

/// Applies `[ldap.attributes]` to `profile`; names must look like attribute names.
fn override_attributes(
    source: &Source<'_>,
    raw: &RawAttributes,
    profile: &mut Profile,
    problems: &mut Problems,
) {
    let mut name = |value: &Option<Spanned<String>>, key: &str, slot: &mut String| {
        if let Some(spanned) = value {
            let text = spanned.get_ref().trim();
            if is_attribute_name(text) {
                *slot = text.to_owned();
            } else {
                let message = format!("`{text}` is not an attribute name");
                source.report(
                    problems,
                    spanned,
                    &format!("ldap.attributes.{key}"),
                    message,
                );
            }
        }
    };
    name(&raw.id, "id", &mut profile.id);
    name(&raw.user_name, "user_name", &mut profile.user_name);
    name(&raw.email, "email", &mut profile.email);
    name(&raw.given_name, "given_name", &mut profile.given_name);
    name(&raw.family_name, "family_name", &mut profile.family_name);
    name(&raw.display_name, "display_name", &mut profile.display_name);
    name(&raw.group_name, "group_name", &mut profile.group_name);
    name(
        &raw.group_description,
        "group_description",
        &mut profile.group_description,
    );
    if let Some(spanned) = &raw.member_uid {
        // An empty name turns memberUid off.
        let text = spanned.get_ref().trim();
        if text.is_empty() {
            profile.member_uid = None;
        } else {
            let mut uid = String::new();
            name(&raw.member_uid, "member_uid", &mut uid);
            profile.member_uid = (!uid.is_empty()).then_some(uid);
        }
    }
    if let Some(spanned) = &raw.member {
        let names: Vec<String> = spanned
            .get_ref()
            .iter()
            .map(|m| m.trim().to_owned())
            .collect();
        if names.iter().all(|m| is_attribute_name(m)) {
            profile.member = names;
        } else {
            let message = "every entry must be an attribute name, such as \"member\"";
            source.report(problems, spanned, "ldap.attributes.member", message);
        }
    }
}

/// A descriptor or OID (RFC 4512): letters, digits, `-` and `.`, starting with a letter
/// or digit.
fn is_attribute_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
}
