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
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::problems::{Problems, Source};
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

/// What the 5- and 6/7-field forms of a schedule look like, for messages.
const SCHEDULE_FORMS: &str = "expected 5 fields (minute hour day-of-month month day-of-week) \
     or 6-7 fields with seconds first (second minute hour day-of-month month day-of-week [year])";

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

/// A cron schedule, as written and as parsed.
///
/// Two forms are accepted:
/// - 5 fields, as in crontab: `minute hour day-of-month month day-of-week`,
///   with day-of-week 0-7 (0 and 7 are Sunday) or `sun`-`sat`; it runs at
///   second 0.
/// - the `cron` crate's 6 or 7 fields, seconds first:
///   `second minute hour day-of-month month day-of-week [year]`, with
///   day-of-week 1-7 (1 is Sunday) or `sun`-`sat`.
///
/// `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly` work too. When
/// both day-of-month and day-of-week are restricted, a time must match both
/// (crontab would take either).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule as written in the configuration.
    pub text: String,
    /// The parsed schedule (always in the 6/7-field form).
    pub cron: cron::Schedule,
}

impl Schedule {
    /// Parses either form of schedule.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError {
            text: text.to_owned(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (expression, names, offset): (String, &[&str], usize) = match fields.len() {
            1 if text.trim_start().starts_with('@') => (text.trim().to_owned(), &["shorthand"], 0),
            5 => {
                let day_of_week = crontab_day_of_week(fields[4]).map_err(invalid)?;
                let expression = format!(
                    "0 {} {} {} {} {day_of_week}",
                    fields[0], fields[1], fields[2], fields[3]
                );
                (expression, &FIVE_FIELDS, 1)
            }
            6 | 7 => (fields.join(" "), &SEVEN_FIELDS, 0),
            0 => return Err(invalid("it is empty".to_owned())),
            1 => return Err(invalid("1 field".to_owned())),
            n => return Err(invalid(format!("{n} fields"))),
        };
        match cron::Schedule::from_str(&expression) {
            Ok(cron) => Ok(Schedule {
                text: text.to_owned(),
                cron,
            }),
            Err(err) => Err(invalid(explain_cron_error(
                &err.to_string(),
                &expression,
                &fields,
                names,
                offset,
            ))),
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

/// Shows the schedule as written.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A schedule that is not valid cron.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid cron schedule ({reason}); {SCHEDULE_FORMS}")]
pub struct ScheduleError {
    /// The schedule as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

const FIVE_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const SEVEN_FIELDS: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

/// Turns the `cron` crate's error (the expression, a line with a `^` under
/// the trouble, then sometimes a detail line) into a reason naming the
/// field, as the user wrote it. `offset` is how many fields were put in front
/// of the user's (the seconds of the 5-field form).
fn explain_cron_error(
    error: &str,
    expression: &str,
    fields: &[&str],
    names: &[&str],
    offset: usize,
) -> String {
    let mut lines = error.lines();
    let _expression_line = lines.next();
    let caret = lines.next().and_then(|line| line.find('^'));
    let detail = lines
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Which field of `expression` the caret is under.
    let field_index = caret.map(|column| {
        let before = expression.get(..column).unwrap_or(expression);
        let mut index = before.split_whitespace().count();
        if before.ends_with(|c: char| !c.is_whitespace()) {
            index -= 1;
        }
        index
    });
    let user_field = field_index
        .and_then(|index| index.checked_sub(offset))
        .filter(|&index| index < fields.len() && index < names.len());
    let detail = if detail.is_empty() {
        "cannot be parsed".to_owned()
    } else {
        detail
    };
    match user_field {
        Some(index) => format!("{} field `{}`: {detail}", names[index], fields[index]),
        None => detail,
    }
}

/// Rewrites a crontab day-of-week field (0-7, 0 and 7 being Sunday) into the
/// `cron` crate's numbering (1-7, 1 being Sunday), as an explicit list of
/// days. Names (`mon`, `monday`) are accepted anywhere a number is.
fn crontab_day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (range, Some(step)),
                _ => {
                    return Err(format!(
                        "day-of-week field `{field}`: `{step}` is not a step (a whole number from 1)"
                    ));
                }
            },
            None => (item, None),
        };
        let (first, last) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((first, last)) = range.split_once('-') {
            (day_number(field, first)?, day_number(field, last)?)
        } else {
            let day = day_number(field, range)?;
            // `day/step` runs from `day` to the end of the week.
            match step {
                Some(_) => (day, 6.max(day)),
                None => (day, day),
            }
        };
        if first > last {
            return Err(format!(
                "day-of-week field `{field}`: range `{range}` runs backwards"
            ));
        }
        for day in (first..=last).step_by(step.unwrap_or(1)) {
            days[day % 7] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|&day| days[day])
        .map(|day| (day + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A crontab day of the week: 0-7 (0 and 7 are Sunday) or a name; 7 stays 7
/// so ranges like `5-7` work.
fn day_number(field: &str, text: &str) -> Result<usize, String> {
    const NAMES: [(&str, &str); 7] = [
        ("sun", "sunday"),
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
    ];
    if let Ok(number) = text.parse::<usize>()
        && number <= 7
    {
        return Ok(number);
    }
    let lower = text.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| {
            format!("day-of-week field `{field}`: `{text}` is not a day (0-7, 0 and 7 are Sunday, or sun-sat)")
        })
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
    if kind != "scim"
        && let Some(table) = &raw.scim
    {
        source.report(
            problems,
            table,
            "scim",
            format!("[scim] does not apply to kind = \"{kind}\""),
        );
    }
    if kind != "file"
        && let Some(table) = &raw.file
    {
        source.report(
            problems,
            table,
            "file",
            format!("[file] does not apply to kind = \"{kind}\""),
        );
    }
    if kind != "azure"
        && let Some(table) = &raw.azure
    {
        source.report(
            problems,
            table,
            "azure",
            format!("[azure] does not apply to kind = \"{kind}\""),
        );
    }
    if kind != "okta"
        && let Some(table) = &raw.okta
    {
        source.report(
            problems,
            table,
            "okta",
            format!("[okta] does not apply to kind = \"{kind}\""),
        );
    }
    if kind != "google"
        && let Some(table) = &raw.google
    {
        source.report(
            problems,
            table,
            "google",
            format!("[google] does not apply to kind = \"{kind}\""),
        );
    }
    if kind != "keycloak"
        && let Some(table) = &raw.keycloak
    {
        source.report(
            problems,
            table,
            "keycloak",
            format!("[keycloak] does not apply to kind = \"{kind}\""),
        );
    }
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
    let mut settings = None;
    if kind == "file" {
        match &raw.file {
            Some(table) => {
                settings = FileKind::settings(source, &kind_context, table, problems)
                    .map(ConnectorSettings::File)
            }
            None => source.report(problems, &raw.kind, "kind", FileKind::NEEDS),
        }
    } else if kind == "keycloak" {
        match &raw.keycloak {
            Some(table) => {
                settings = Keycloak::settings(source, &kind_context, table, problems)
                    .map(ConnectorSettings::Keycloak)
            }
            None => source.report(problems, &raw.kind, "kind", Keycloak::NEEDS),
        }
    } else if kind == "azure" {
        match &raw.azure {
            Some(table) => {
                settings = Azure::settings(source, &kind_context, table, problems)
                    .map(ConnectorSettings::Azure)
            }
            None => source.report(problems, &raw.kind, "kind", Azure::NEEDS),
        }
    } else if kind == "okta" {
        match &raw.okta {
            Some(table) => {
                settings = Okta::settings(source, &kind_context, table, problems)
                    .map(ConnectorSettings::Okta)
            }
            None => source.report(problems, &raw.kind, "kind", Okta::NEEDS),
        }
    } else if kind == "google" {
        match &raw.google {
            Some(table) => {
                settings = Google::settings(source, &kind_context, table, problems)
                    .map(ConnectorSettings::Google)
            }
            None => source.report(problems, &raw.kind, "kind", Google::NEEDS),
        }
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

/// `UTC`, `Z` or a fixed offset `±HH:MM` (also `±HHMM`, `±HH`).
fn parse_timezone(text: &str) -> Option<chrono::FixedOffset> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("utc") || text == "Z" || text.eq_ignore_ascii_case("gmt") {
        return chrono::FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
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
