//! Connector settings: one `connectors/<id>.toml` file per connector.
//!
//! ```toml
//! kind = "file"                  # which kind of source: "file", "azure", "okta", "google",
//!                                # "keycloak" or "scim" in this version
//! enabled = true                 # default true
//! mapping = "default"            # the stem of a file in mappings/
//! schedule = "*/15 * * * *"      # optional cron schedule
//! [file]                         # the kind's own settings, in a table named after it
//! path = "exports/users.json"    # relative to the directory of idsync.toml
//! format = "json"                # optional: "json" or "csv"; default from the extension
//! ```
//!
//! The connector's id is the file's stem. It appears in URLs, so it must be
//! 1 to 63 lower-case letters, digits, `-` or `_`, starting with a letter or
//! digit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::problems::{Problems, Source};
use super::schedule::{Schedule, parse_timezone};
use crate::connectors::azure::Azure;
use crate::connectors::file::{FileKind, FileSettings};
use crate::connectors::google::Google;
use crate::connectors::keycloak::{Keycloak, KeycloakSettings};
use crate::connectors::kind::{PullKind, SettingsContext};
use crate::connectors::okta::Okta;

/// Every connector kind idsync knows of, in the order they are listed to
/// people.
const KINDS: [&str; 7] = [
    "azure", "okta", "google", "keycloak", "ldap", "scim", "file",
];

/// The connector kinds this version can run.
const AVAILABLE_KINDS: [&str; 6] = ["azure", "okta", "google", "keycloak", "scim", "file"];

/// A connector, resolved and checked.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// The connector's id: the stem of its file.
    pub id: String,
    /// The connector's file (absolute).
    pub file: PathBuf,
    /// Whether the connector runs. A disabled connector stays configured
    /// (and checked) but is never synced.
    pub enabled: bool,
    /// The name of the mapping its users go through; it exists.
    pub mapping: String,
    /// When it runs by itself; `None` when it only runs on demand.
    pub schedule: Option<Schedule>,
    /// The time zone the schedule is read in.
    pub timezone: chrono::FixedOffset,
    /// Most delay added to each scheduled run.
    pub jitter: std::time::Duration,
    /// The settings of the connector's kind.
    pub settings: ConnectorSettings,
}

/// The settings of one kind of connector.
#[derive(Debug, Clone)]
pub enum ConnectorSettings {
    /// `kind = "file"`: users read from a JSON or CSV snapshot file.
    File(FileSettings),
    /// `kind = "azure"`: users and groups of an Entra ID tenant (Microsoft Graph).
    Azure(crate::connectors::azure::AzureSettings),
    /// `kind = "google"`: users and groups of a Google Workspace account (Admin SDK
    /// Directory API, service account with domain-wide delegation).
    Google(crate::connectors::google::GoogleSettings),
    /// `kind = "keycloak"`: users and groups of a Keycloak realm (Admin REST API).
    Keycloak(KeycloakSettings),
    /// `kind = "okta"`: users and groups of an Okta org (Management API).
    Okta(crate::connectors::okta::OktaSettings),
    /// `kind = "scim"`: a SCIM tenant that identity providers push to.
    Scim(super::scim_tenant::ScimTenantSettings),
}

impl ConnectorSettings {
    /// The kind's name, as written in `kind = "..."`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorSettings::File(_) => "file",
            ConnectorSettings::Azure(_) => "azure",
            ConnectorSettings::Google(_) => "google",
            ConnectorSettings::Keycloak(_) => "keycloak",
            ConnectorSettings::Okta(_) => "okta",
            ConnectorSettings::Scim(_) => "scim",
        }
    }
}

/// What the loader needs to know to check a connector.
pub(crate) struct Context<'a> {
    /// The directory of `idsync.toml`.
    pub(crate) base_dir: &'a Path,
    /// The names of all mappings with a file.
    pub(crate) known_mappings: &'a BTreeSet<String>,
    /// The mappings directory, as shown to people.
    pub(crate) mappings_dir: PathBuf,
}

/// `connectors/<id>.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    /// Which kind of source this connector reads: one of `azure`, `okta`,
    /// `google`, `keycloak`, `ldap`, `scim`, `file`. Only `file`, `azure`, `okta`, `google`, `keycloak` and
    /// `scim` are available in this version. The kind's own settings go in a table
    /// named after it, such as `[file]`.
    kind: Spanned<String>,
    /// Whether the connector runs; a disabled connector is still checked.
    /// Default: true.
    #[serde(default = "default_enabled")]
    enabled: bool,
    /// The mapping its users go through: the stem of a file in the mappings
    /// directory (`mapping = "default"` for `mappings/default.toml`).
    /// Required.
    mapping: Spanned<String>,
    /// When it runs by itself, as cron: 5 fields
    /// (`minute hour day-of-month month day-of-week`, as in crontab) or
    /// 6-7 fields with seconds first. Default: none, it runs only on demand.
    #[serde(default)]
    schedule: Option<Spanned<String>>,
    /// The time zone `schedule` is read in: `UTC` or a fixed offset such as
    /// `+01:00` (no daylight-saving changes). Default: UTC.
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    /// Each scheduled run starts up to this many seconds late (the same delay every
    /// time for the same connector and time), to spread runs out. Default: 0.
    #[serde(default)]
    jitter_seconds: Option<Spanned<i64>>,
    /// Settings for `kind = "file"`.
    #[serde(default)]
    file: Option<Spanned<crate::connectors::file::RawFileSettings>>,
    /// Settings for `kind = "azure"` (Microsoft Graph / Entra ID).
    #[serde(default)]
    azure: Option<Spanned<crate::connectors::azure::RawAzureSettings>>,
    /// Settings for `kind = "okta"`.
    #[serde(default)]
    okta: Option<Spanned<crate::connectors::okta::RawOktaSettings>>,
    /// Settings for `kind = "google"`.
    #[serde(default)]
    google: Option<Spanned<crate::connectors::google::RawGoogleSettings>>,
    /// Settings for `kind = "keycloak"`.
    #[serde(default)]
    keycloak: Option<Spanned<crate::connectors::keycloak::RawKeycloakSettings>>,
    /// Settings for `kind = "ldap"` (not available in this version).
    #[serde(default)]
    ldap: Option<Spanned<toml::Table>>,
    /// Settings for `kind = "scim"` (all optional).
    #[serde(default)]
    scim: Option<Spanned<super::scim_tenant::RawScimSettings>>,
}

/// Reports `[name]` when it is there but the connector is of another kind.
fn not_applicable<T>(
    source: &Source<'_>,
    problems: &mut Problems,
    kind: &str,
    name: &str,
    table: Option<&Spanned<T>>,
) {
    if let Some(table) = table
        && name != kind
    {
        source.report(
            problems,
            table,
            name,
            format!("[{name}] does not apply to kind = \"{kind}\""),
        );
    }
}

/// What reading a pull kind's table needs besides the table.
struct PullTable<'a> {
    source: &'a Source<'a>,
    context: &'a SettingsContext<'a>,
    /// `kind = "..."`, where a missing table is reported.
    kind: &'a Spanned<String>,
}

impl PullTable<'_> {
    /// The kind's settings from its table; without the table, what the kind needs is
    /// reported at `kind`.
    fn settings<K: PullKind>(
        &self,
        table: Option<&Spanned<K::Raw>>,
        problems: &mut Problems,
    ) -> Option<K::Settings> {
        match table {
            Some(table) => K::settings(self.source, self.context, table, problems),
            None => {
                self.source.report(problems, self.kind, "kind", K::NEEDS);
                None
            }
        }
    }
}

fn default_enabled() -> bool {
    true
}

/// Whether a connector id is 1-63 characters of `[a-z0-9_-]`, starting with
/// `[a-z0-9]`.
fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (1..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Reads and checks one connector file, recording problems. Returns the
/// connector only when it has none.
pub(crate) fn load(
    id: &str,
    source: &Source<'_>,
    context: &Context<'_>,
    problems: &mut Problems,
) -> Option<ConnectorConfig> {
    let mut ok = true;
    if !is_valid_id(id) {
        problems.push(
            source.file,
            None,
            None,
            format!(
                "connector id `{id}` (the file name) must be 1-63 lower-case letters, digits, \
                 `-` or `_`, starting with a letter or digit"
            ),
        );
        ok = false;
    }
    let raw = source.parse::<RawConnector>(problems)?;
    let before = problems.len();

    // Tables for kinds other than the chosen one are mistakes.
    let kind = raw.kind.get_ref().as_str();
    let kind_tables: [(&str, Option<&Spanned<toml::Table>>); 1] = [("ldap", raw.ldap.as_ref())];
    not_applicable(source, problems, kind, "scim", raw.scim.as_ref());
    not_applicable(source, problems, kind, "file", raw.file.as_ref());
    not_applicable(source, problems, kind, "azure", raw.azure.as_ref());
    not_applicable(source, problems, kind, "okta", raw.okta.as_ref());
    not_applicable(source, problems, kind, "google", raw.google.as_ref());
    not_applicable(source, problems, kind, "keycloak", raw.keycloak.as_ref());
    for (name, table) in kind_tables {
        if let Some(table) = table
            && name != kind
        {
            source.report(
                problems,
                table,
                name,
                format!("[{name}] does not apply to kind = \"{kind}\""),
            );
        }
    }

    let kind_context = SettingsContext {
        base_dir: context.base_dir,
        enabled: raw.enabled,
    };
    let pull = PullTable {
        source,
        context: &kind_context,
        kind: &raw.kind,
    };
    let mut settings = None;
    if let Some(pulled) = match kind {
        "file" => Some(
            pull.settings::<FileKind>(raw.file.as_ref(), problems)
                .map(ConnectorSettings::File),
        ),
        "keycloak" => Some(
            pull.settings::<Keycloak>(raw.keycloak.as_ref(), problems)
                .map(ConnectorSettings::Keycloak),
        ),
        "azure" => Some(
            pull.settings::<Azure>(raw.azure.as_ref(), problems)
                .map(ConnectorSettings::Azure),
        ),
        "okta" => Some(
            pull.settings::<Okta>(raw.okta.as_ref(), problems)
                .map(ConnectorSettings::Okta),
        ),
        "google" => Some(
            pull.settings::<Google>(raw.google.as_ref(), problems)
                .map(ConnectorSettings::Google),
        ),
        _ => None,
    } {
        settings = pulled;
    } else if kind == "scim" {
        let defaults = super::scim_tenant::RawScimSettings::default();
        let table = raw.scim.as_ref().map_or(&defaults, |t| t.get_ref());
        settings = super::scim_tenant::scim_settings(source, context.base_dir, table, problems)
            .map(ConnectorSettings::Scim);
    } else if KINDS.contains(&kind) {
        source.report(
            problems,
            &raw.kind,
            "kind",
            format!(
                "connector kind `{kind}` is not available in this version (available: {})",
                AVAILABLE_KINDS.join(", ")
            ),
        );
    } else {
        source.report(
            problems,
            &raw.kind,
            "kind",
            format!(
                "unknown connector kind `{kind}` (valid kinds: {})",
                KINDS.join(", ")
            ),
        );
    }

    let mapping = raw.mapping.get_ref();
    if !context.known_mappings.contains(mapping) {
        let known = if context.known_mappings.is_empty() {
            format!("no mappings in {}", context.mappings_dir.display())
        } else {
            let names: Vec<&str> = context.known_mappings.iter().map(String::as_str).collect();
            format!("known: {}", names.join(", "))
        };
        source.report(
            problems,
            &raw.mapping,
            "mapping",
            format!("mapping `{mapping}` does not exist ({known})"),
        );
    }

    let schedule = match &raw.schedule {
        Some(text) => match Schedule::parse(text.get_ref()) {
            Ok(schedule) => Some(schedule),
            Err(err) => {
                source.report(problems, text, "schedule", err.to_string());
                None
            }
        },
        None => None,
    };

    let timezone = match &raw.timezone {
        None => chrono::FixedOffset::east_opt(0).expect("UTC"),
        Some(text) => match parse_timezone(text.get_ref()) {
            Some(offset) => offset,
            None => {
                source.report(
                    problems,
                    text,
                    "timezone",
                    format!(
                        "`{}` is not a time zone idsync understands: give `UTC` or a fixed \
                         offset such as `+01:00` or `-05:30`",
                        text.get_ref()
                    ),
                );
                chrono::FixedOffset::east_opt(0).expect("UTC")
            }
        },
    };
    let jitter = match &raw.jitter_seconds {
        None => std::time::Duration::ZERO,
        Some(value) if (0..=86_400).contains(value.get_ref()) => {
            std::time::Duration::from_secs(*value.get_ref() as u64)
        }
        Some(value) => {
            source.report(
                problems,
                value,
                "jitter_seconds",
                format!("{} is out of range (0 to 86400)", value.get_ref()),
            );
            std::time::Duration::ZERO
        }
    };

    if !ok || problems.len() != before {
        return None;
    }
    let settings = settings?;
    Some(ConnectorConfig {
        id: id.to_owned(),
        file: source.file.to_path_buf(),
        enabled: raw.enabled,
        mapping: mapping.clone(),
        schedule,
        timezone,
        jitter,
        settings,
    })
}

impl ConnectorConfig {
    /// Turns the configuration into the running connector.
    pub fn build(
        &self,
    ) -> Result<Box<dyn crate::connectors::PullConnector>, crate::connectors::ConnectorError> {
        let config = self;
        match &config.settings {
            ConnectorSettings::File(settings) => Ok(Box::new(
                crate::connectors::file::FileConnector::new(settings.path.clone(), settings.format),
            )),
            ConnectorSettings::Azure(settings) => Ok(Box::new(
                crate::connectors::azure::AzureConnector::new(settings)?,
            )),
            ConnectorSettings::Google(settings) => Ok(Box::new(
                crate::connectors::google::GoogleConnector::new(settings)?,
            )),
            ConnectorSettings::Keycloak(settings) => Ok(Box::new(
                crate::connectors::keycloak::KeycloakConnector::new(settings)?,
            )),
            ConnectorSettings::Okta(settings) => Ok(Box::new(
                crate::connectors::okta::OktaConnector::new(settings)?,
            )),
            ConnectorSettings::Scim(_) => Err(crate::connectors::ConnectorError::NotPullable(
                config.id.clone(),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
