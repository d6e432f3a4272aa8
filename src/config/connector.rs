//! Connector settings: one `connectors/<id>.toml` file per connector.
//!
//! ```toml
//! kind = "file"                  # which kind of source: "file", "azure", "okta", "google",
//!                                # "keycloak", "ldap" or "scim"
//! enabled = true                 # default true
//! mapping = "default"            # the stem of a file in mappings/
//! schedule = "*/15 * * * *"      # optional cron schedule
//! timezone = "Europe/Berlin"     # optional: the schedule's zone (IANA, UTC, +01:00); UTC
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
use super::schedule::{Schedule, ScheduleZone, parse_timezone};
use crate::connectors::kind::{KindTable, SettingsContext, UserKeys};
use crate::connectors::{ConnectorError, PullConnector};

/// Declares every connector kind once; the kind lists in messages, the settings enum, the
/// connector file's tables, the dispatch to each kind's check and the connector it builds
/// all come from this one list. A new pull kind is one line in `pull` (its name, its
/// variant and its `[<kind>]` table type, which implements `KindTable`).
///
/// Orders, as people see them: messages list the pull kinds, `scim`,
/// then the built-in `file`; the "unknown field" message lists the connector file's keys
/// with `file` first and `scim` last.
macro_rules! connector_kinds {
    (
        built_in: $(#[$file_doc:meta])* $file:ident => $File:ident($file_raw:ty),
        pull: [$($(#[$doc:meta])* $name:ident => $Variant:ident($raw:ty),)*],
    ) => {
        /// Every connector kind idsync knows of, in the order they are listed to people.
        const KINDS: &[&str] = &[
            $(stringify!($name),)* "scim", stringify!($file)
        ];

        /// The settings of one kind of connector.
        #[derive(Debug, Clone)]
        pub enum ConnectorSettings {
            $(#[$file_doc])*
            $File(<$file_raw as KindTable>::Settings),
            $($(#[$doc])* $Variant(<$raw as KindTable>::Settings),)*
            /// `kind = "scim"`: a SCIM tenant that identity providers push to.
            Scim(super::scim_tenant::ScimTenantSettings),
        }

        impl ConnectorSettings {
            /// The kind's name, as written in `kind = "..."`.
            pub fn kind(&self) -> &'static str {
                match self {
                    ConnectorSettings::$File(_) => stringify!($file),
                    $(ConnectorSettings::$Variant(_) => stringify!($name),)*
                    ConnectorSettings::Scim(_) => "scim",
                }
            }

            /// The running connector of a pull kind; `None` for `scim`, which is pushed to.
            fn connect(&self) -> Option<Result<Box<dyn PullConnector>, ConnectorError>> {
                match self {
                    ConnectorSettings::$File(settings) => Some(<$file_raw>::connect(settings)),
                    $(ConnectorSettings::$Variant(settings) => Some(<$raw>::connect(settings)),)*
                    ConnectorSettings::Scim(_) => None,
                }
            }

            /// The keys of a pull kind's user records; `None` for `scim`.
            pub(crate) fn pull_user_keys(&self) -> Option<UserKeys<'_>> {
                match self {
                    ConnectorSettings::$File(settings) => Some(<$file_raw>::user_keys(settings)),
                    $(ConnectorSettings::$Variant(settings) => Some(<$raw>::user_keys(settings)),)*
                    ConnectorSettings::Scim(_) => None,
                }
            }
        }

        /// `connectors/<id>.toml` as written.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawConnector {
            /// Which kind of source this connector reads (`KINDS`). The kind's own
            /// settings go in a table named after it, such as `[file]`.
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
            /// (`minute hour day-of-month month day-of-week`, as in crontab, where a
            /// day matching either day field runs) or 6-7 fields with seconds first.
            /// Default: none, it runs only on demand.
            #[serde(default)]
            schedule: Option<Spanned<String>>,
            /// The time zone `schedule` is read in: an IANA name such as
            /// `Europe/Berlin` (its daylight-saving changes followed), `UTC`, or a
            /// fixed offset such as `+01:00`. Default: UTC.
            #[serde(default)]
            timezone: Option<Spanned<String>>,
            /// Each scheduled run starts up to this many seconds late (the same delay
            /// every time for the same connector and time), to spread runs out.
            /// Default: 0.
            #[serde(default)]
            jitter_seconds: Option<Spanned<i64>>,
            #[doc = concat!("Settings for `kind = \"", stringify!($file), "\"`.")]
            #[serde(default)]
            $file: Option<Spanned<$file_raw>>,
            $(
                #[doc = concat!("Settings for `kind = \"", stringify!($name), "\"`.")]
                #[serde(default)]
                $name: Option<Spanned<$raw>>,
            )*
            /// Settings for `kind = "scim"` (all optional).
            #[serde(default)]
            scim: Option<Spanned<super::scim_tenant::RawScimSettings>>,
        }

        impl RawConnector {
            /// Reports every table of a kind other than `kind`: it is a mistake.
            fn report_other_tables(&self, source: &Source<'_>, problems: &mut Problems) {
                let kind = self.kind.get_ref().as_str();
                not_applicable(source, problems, kind, "scim", self.scim.as_ref());
                not_applicable(source, problems, kind, stringify!($file), self.$file.as_ref());
                $(not_applicable(source, problems, kind, stringify!($name), self.$name.as_ref());)*
            }

            /// The settings of a pull kind from its table; `None` when `kind` names no
            /// pull kind.
            fn pull_settings(
                &self,
                context: &SettingsContext<'_>,
                problems: &mut Problems,
            ) -> Option<Option<ConnectorSettings>> {
                let kind = self.kind.get_ref().as_str();
                if kind == stringify!($file) {
                    return Some(
                        self.table_settings(context, self.$file.as_ref(), problems)
                            .map(ConnectorSettings::$File),
                    );
                }
                $(
                    if kind == stringify!($name) {
                        return Some(
                            self.table_settings(context, self.$name.as_ref(), problems)
                                .map(ConnectorSettings::$Variant),
                        );
                    }
                )*
                None
            }
        }
    };
}

connector_kinds! {
    built_in:
        /// `kind = "file"`: users read from a JSON or CSV snapshot file.
        file => File(crate::connectors::file::RawFileSettings),
    pull: [
        /// `kind = "azure"`: users and groups of an Entra ID tenant (Microsoft Graph).
        azure => Azure(crate::connectors::azure::RawAzureSettings),
        /// `kind = "okta"`: users and groups of an Okta org (Management API).
        okta => Okta(crate::connectors::okta::RawOktaSettings),
        /// `kind = "google"`: users and groups of a Google Workspace account (Admin SDK
        /// Directory API, service account with domain-wide delegation).
        google => Google(crate::connectors::google::RawGoogleSettings),
        /// `kind = "keycloak"`: users and groups of a Keycloak realm (Admin REST API).
        keycloak => Keycloak(crate::connectors::keycloak::RawKeycloakSettings),
        /// `kind = "ldap"`: users and groups of an LDAP directory (Active Directory,
        /// OpenLDAP, 389-ds).
        ldap => Ldap(crate::connectors::ldap::RawLdapSettings),
    ],
}

/// A resolved and checked connector.
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
    pub timezone: ScheduleZone,
    /// Most delay added to each scheduled run.
    pub jitter: std::time::Duration,
    /// The settings of the connector's kind.
    pub settings: ConnectorSettings,
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

impl RawConnector {
    /// A kind's settings from its table; without the table, what the kind needs is
    /// reported at `kind`.
    fn table_settings<K: KindTable>(
        &self,
        context: &SettingsContext<'_>,
        table: Option<&Spanned<K>>,
        problems: &mut Problems,
    ) -> Option<K::Settings> {
        match table {
            Some(table) => K::check(table, context, problems),
            None => {
                context
                    .source
                    .report(problems, &self.kind, "kind", K::NEEDS);
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
    raw.report_other_tables(source, problems);
    let kind = raw.kind.get_ref().as_str();
    let kind_context = SettingsContext {
        source,
        base_dir: context.base_dir,
        enabled: raw.enabled,
    };
    let mut settings = None;
    if let Some(pulled) = raw.pull_settings(&kind_context, problems) {
        settings = pulled;
    } else if kind == "scim" {
        let defaults = super::scim_tenant::RawScimSettings::default();
        let table = raw.scim.as_ref().map_or(&defaults, |t| t.get_ref());
        settings = super::scim_tenant::scim_settings(source, context.base_dir, table, problems)
            .map(ConnectorSettings::Scim);
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
        None => ScheduleZone::default(),
        Some(text) => match parse_timezone(text.get_ref()) {
            Ok(zone) => zone,
            Err(message) => {
                source.report(problems, text, "timezone", message);
                ScheduleZone::default()
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
    pub fn build(&self) -> Result<Box<dyn PullConnector>, ConnectorError> {
        self.settings
            .connect()
            .unwrap_or_else(|| Err(ConnectorError::NotPullable(self.id.clone())))
    }
}

#[cfg(test)]
mod tests;
