//! `[target.ldap]` in `idsync.toml`: where the LDAP target writes and how. The connection
//! keys are the LDAP connector's (checked by the same code, so they read the same).
//!
//! ```toml
//! [target]
//! kind = "ldap"                      # the engine's own state stays in database_url
//! [target.ldap]
//! url = "ldaps://ldap.example.com"   # or ldap://... with starttls = true
//! bind_dn = "cn=idsync,ou=services,dc=example,dc=com"
//! bind_password = { env = "IDSYNC_LDAP_TARGET_PASSWORD" }
//! users_dn = "ou=people,ou=idsync,dc=example,dc=com"
//! groups_dn = "ou=groups,ou=idsync,dc=example,dc=com"
//! # group_class = "groupOfNames"     # or "groupOfUniqueNames"
//! # on_deactivate = "lock"           # or "move" (with disabled_dn), or "delete"
//! # lock_attribute = "pwdAccountLockedTime"
//! # lock_value = "000001010000Z"     # ppolicy: locked until an administrator unlocks
//! # disabled_dn = "ou=disabled,ou=idsync,dc=example,dc=com"
//! # writes_in_flight = 8
//! # timeout_seconds = 120
//! # [target.ldap.attributes]         # more LDAP attributes from the target's attributes
//! # employeeNumber = "employee_id"
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::connectors::ldap::dn;
use crate::connectors::ldap::{RawTransport, Transport, check_transport};
use crate::spec::check::{non_empty, range};
use crate::spec::problems::{Problems, Source};
use crate::spec::{SecretRef, SecretString};

/// Default `writes_in_flight`.
pub const DEFAULT_WRITES_IN_FLIGHT: u32 = 8;
/// Default `lock_attribute`: the password-policy overlay's lock (slapo-ppolicy(5)).
pub const DEFAULT_LOCK_ATTRIBUTE: &str = "pwdAccountLockedTime";
/// Default `lock_value`: ppolicy's "locked until an administrator unlocks it".
pub const DEFAULT_LOCK_VALUE: &str = "000001010000Z";

/// The `[target.ldap]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdapTarget {
    /// `ldaps://host[:port]`, or `ldap://host[:port]` with `starttls = true`. Required.
    url: Spanned<String>,
    /// Upgrade an `ldap://` connection with StartTLS before binding. Default: false.
    #[serde(default)]
    starttls: Option<Spanned<bool>>,
    /// A PEM file of the CA certificates to trust. Default: the system's roots.
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    /// Accept any server certificate. Logged as a warning on every run. Default: false.
    #[serde(default)]
    danger_skip_tls_verify: bool,
    /// Accept `ldap://` without StartTLS for loopback hosts (labs, tests). Default: false.
    #[serde(default)]
    allow_insecure_ldap: bool,
    /// The account idsync writes as; the entries it creates carry it as `creatorsName`,
    /// which is how idsync tells its entries from others'. Required.
    bind_dn: Spanned<String>,
    /// Its password: `{ env = "NAME" }` or `{ file = "path" }`. Required.
    bind_password: Spanned<SecretRef>,
    /// The container of the users (an existing entry). Required.
    users_dn: Spanned<String>,
    /// The container of the groups (an existing entry). Required.
    groups_dn: Spanned<String>,
    /// `groupOfNames` (`member`) or `groupOfUniqueNames` (`uniqueMember`).
    #[serde(default)]
    group_class: Option<Spanned<String>>,
    /// What an inactive or removed user becomes: `lock`, `move` or `delete`. Default: lock.
    #[serde(default)]
    on_deactivate: Option<Spanned<String>>,
    /// With `lock`: the attribute set on a locked user. Default: pwdAccountLockedTime.
    #[serde(default)]
    lock_attribute: Option<Spanned<String>>,
    /// With `lock`: its value. Default: 000001010000Z.
    #[serde(default)]
    lock_value: Option<Spanned<String>>,
    /// With `move`: the container inactive users are moved to (an existing entry).
    #[serde(default)]
    disabled_dn: Option<Spanned<String>>,
    /// Writes sent before their answers arrive, 1-64. Default: 8.
    #[serde(default)]
    writes_in_flight: Option<Spanned<i64>>,
    /// Each operation's time limit in seconds, 1-3600. Default: 120.
    #[serde(default)]
    timeout_seconds: Option<Spanned<i64>>,
    /// LDAP attribute name = the target user's attribute it is written from.
    #[serde(default)]
    attributes: Option<Spanned<BTreeMap<String, String>>>,
}

/// The group entries' object class and member attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupClass {
    GroupOfNames,
    GroupOfUniqueNames,
}

impl GroupClass {
    pub fn object_class(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "groupOfNames",
            GroupClass::GroupOfUniqueNames => "groupOfUniqueNames",
        }
    }
    pub fn member_attribute(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "member",
            GroupClass::GroupOfUniqueNames => "uniqueMember",
        }
    }
}

/// What an inactive or removed user becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deactivate {
    /// Stays in place with `attribute: value` (removed again when the user is active).
    Lock { attribute: String, value: String },
    /// Moves to this container (and back when active again).
    Move { container: String },
    /// Is deleted (and created again when active again).
    Delete,
}

/// `[target.ldap]`, checked.
#[derive(Debug, Clone)]
pub struct LdapTargetSettings {
    pub transport: Transport,
    pub bind_dn: String,
    pub bind_password: SecretString,
    pub users_dn: String,
    pub groups_dn: String,
    pub group_class: GroupClass,
    pub deactivate: Deactivate,
    pub writes_in_flight: usize,
    pub timeout: Duration,
    /// (LDAP attribute, target attribute), in the table's order.
    pub attributes: Vec<(String, String)>,
}

/// The attributes idsync writes itself, which `[target.ldap.attributes]` may not name.
const WRITTEN: &[&str] = &[
    "objectclass",
    "uid",
    "cn",
    "sn",
    "givenname",
    "displayname",
    "mail",
    "member",
    "uniquemember",
    "description",
];

/// Checks `[target.ldap]`; None (with problems) when it is unusable.
pub fn check(
    table: &Spanned<RawLdapTarget>,
    source: &Source<'_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<LdapTargetSettings> {
    let raw = table.get_ref();
    let before = problems.len();
    let transport = check_transport(
        RawTransport {
            table: "target.ldap",
            dns_go_in: "the DNs go in users_dn and groups_dn",
            url: &raw.url,
            starttls: raw.starttls.as_ref(),
            ca_file: raw.ca_file.as_ref(),
            danger_skip_tls_verify: raw.danger_skip_tls_verify,
            allow_insecure_ldap: raw.allow_insecure_ldap,
        },
        source,
        base_dir,
        problems,
    );
    let mut checked_dn = |spanned: &Spanned<String>, key: &str| -> Option<String> {
        let text = spanned.get_ref().trim();
        if !non_empty(source, spanned, key, "must not be empty", problems) {
            return None;
        }
        if dn::normalize(text).is_none() {
            source.report(problems, spanned, key, format!("`{text}` is not a DN"));
            return None;
        }
        Some(text.to_owned())
    };
    let bind_dn = checked_dn(&raw.bind_dn, "target.ldap.bind_dn");
    let users_dn = checked_dn(&raw.users_dn, "target.ldap.users_dn");
    let groups_dn = checked_dn(&raw.groups_dn, "target.ldap.groups_dn");
    let disabled_dn = raw
        .disabled_dn
        .as_ref()
        .map(|spanned| (spanned, checked_dn(spanned, "target.ldap.disabled_dn")));
    let bind_password = crate::spec::check::secret(
        source,
        &raw.bind_password,
        "target.ldap.bind_password",
        base_dir,
        problems,
    );
    let group_class = match raw.group_class.as_ref().map(|s| (s, s.get_ref().trim())) {
        None | Some((_, "groupOfNames")) => Some(GroupClass::GroupOfNames),
        Some((_, "groupOfUniqueNames")) => Some(GroupClass::GroupOfUniqueNames),
        Some((spanned, other)) => {
            let message = format!(
                "unknown group class `{other}` (expected \"groupOfNames\" or \"groupOfUniqueNames\")"
            );
            source.report(problems, spanned, "target.ldap.group_class", message);
            None
        }
    };
    let deactivate = check_deactivate(raw, disabled_dn, source, problems);
    let writes_in_flight = range(
        source,
        raw.writes_in_flight.as_ref(),
        "target.ldap.writes_in_flight",
        (DEFAULT_WRITES_IN_FLIGHT, 64),
        "",
        problems,
    );
    let timeout = range(
        source,
        raw.timeout_seconds.as_ref(),
        "target.ldap.timeout_seconds",
        (120, 3600),
        "",
        problems,
    );
    let attributes = check_attributes(raw, source, problems);
    if problems.len() > before {
        return None;
    }
    Some(LdapTargetSettings {
        transport: transport?,
        bind_dn: bind_dn?,
        bind_password: bind_password?,
        users_dn: users_dn?,
        groups_dn: groups_dn?,
        group_class: group_class?,
        deactivate: deactivate?,
        writes_in_flight: writes_in_flight? as usize,
        timeout: Duration::from_secs(u64::from(timeout?)),
        attributes,
    })
}

/// `on_deactivate` and the keys that go with it.
fn check_deactivate(
    raw: &RawLdapTarget,
    disabled_dn: Option<(&Spanned<String>, Option<String>)>,
    source: &Source<'_>,
    problems: &mut Problems,
) -> Option<Deactivate> {
    let mode = raw.on_deactivate.as_ref().map(|s| (s, s.get_ref().trim()));
    let text = |value: &Option<Spanned<String>>, default: &str| {
        value
            .as_ref()
            .map_or(default.to_owned(), |s| s.get_ref().trim().to_owned())
    };
    match mode {
        None | Some((_, "lock")) => {
            let attribute = text(&raw.lock_attribute, DEFAULT_LOCK_ATTRIBUTE);
            let value = text(&raw.lock_value, DEFAULT_LOCK_VALUE);
            if attribute.is_empty() || value.is_empty() {
                let spanned = raw.lock_attribute.as_ref().or(raw.lock_value.as_ref())?;
                let key = "target.ldap.lock_attribute";
                source.report(
                    problems,
                    spanned,
                    key,
                    "lock_attribute and lock_value must not be empty",
                );
                return None;
            }
            Some(Deactivate::Lock { attribute, value })
        }
        Some((spanned, "move")) => match disabled_dn {
            Some((_, container)) => Some(Deactivate::Move {
                container: container?,
            }),
            None => {
                let message = "on_deactivate = \"move\" needs `disabled_dn`, the container \
                               inactive users are moved to";
                source.report(problems, spanned, "target.ldap.on_deactivate", message);
                None
            }
        },
        Some((_, "delete")) => Some(Deactivate::Delete),
        Some((spanned, other)) => {
            let message =
                format!("unknown value `{other}` (expected \"lock\", \"move\" or \"delete\")");
            source.report(problems, spanned, "target.ldap.on_deactivate", message);
            None
        }
    }
}

/// `[target.ldap.attributes]`: attribute names LDAP accepts, none that idsync writes itself.
fn check_attributes(
    raw: &RawLdapTarget,
    source: &Source<'_>,
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let Some(table) = &raw.attributes else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    for (ldap, target) in table.get_ref() {
        let key = format!("target.ldap.attributes.{ldap}");
        let valid = ldap.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && ldap.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            let message = format!("`{ldap}` is not an LDAP attribute name");
            source.report(problems, table, &key, message);
        } else if WRITTEN.contains(&ldap.to_ascii_lowercase().as_str()) {
            let message = format!("`{ldap}` is written by idsync from the user's own fields");
            source.report(problems, table, &key, message);
        } else if target.trim().is_empty() {
            source.report(problems, table, &key, "must name a target attribute");
        } else {
            pairs.push((ldap.clone(), target.trim().to_owned()));
        }
    }
    pairs
}
