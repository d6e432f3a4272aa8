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
use crate::connectors::file::{FileKind, FileSettings};
use crate::connectors::keycloak::{Keycloak, KeycloakSettings};
use crate::connectors::kind::{PullKind, SettingsContext};

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
    Azure(super::azure::AzureSettings),
    /// `kind = "google"`: users and groups of a Google Workspace account (Admin SDK
    /// Directory API, service account with domain-wide delegation).
    Google(super::google::GoogleSettings),
    /// `kind = "keycloak"`: users and groups of a Keycloak realm (Admin REST API).
    Keycloak(KeycloakSettings),
    /// `kind = "okta"`: users and groups of an Okta org (Management API).
    Okta(super::okta::OktaSettings),
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
    azure: Option<Spanned<super::azure::RawAzureSettings>>,
    /// Settings for `kind = "okta"`.
    #[serde(default)]
    okta: Option<Spanned<super::okta::RawOktaSettings>>,
    /// Settings for `kind = "google"`.
    #[serde(default)]
    google: Option<Spanned<super::google::RawGoogleSettings>>,
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
                settings = super::azure::azure_settings(
                    source,
                    context.base_dir,
                    table.get_ref(),
                    raw.enabled,
                    problems,
                )
                .map(ConnectorSettings::Azure)
            }
            None => source.report(
                problems,
                &raw.kind,
                "kind",
                "kind = \"azure\" needs an [azure] table with `tenant_id`, `client_id` and \
                 `client_secret` (or `certificate` and `private_key`)",
            ),
        }
    } else if kind == "okta" {
        match &raw.okta {
            Some(table) => {
                settings = super::okta::okta_settings(
                    source,
                    context.base_dir,
                    table,
                    table.get_ref(),
                    problems,
                )
                .map(ConnectorSettings::Okta);
            }
            None => source.report(
                problems,
                &raw.kind,
                "kind",
                "kind = \"okta\" needs an [okta] table with `domain` and credentials \
                 (`client_id` with `private_key`, or `api_token`)",
            ),
        }
    } else if kind == "google" {
        match &raw.google {
            Some(table) => {
                settings = super::google::google_settings(
                    source,
                    context.base_dir,
                    table.get_ref(),
                    problems,
                )
                .map(ConnectorSettings::Google)
            }
            None => source.report(problems, &raw.kind, "kind", super::google::GOOGLE_NEEDS),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::file::FileFormat;
    use crate::spec::SecretRef;
    use cron::TimeUnitSpec;

    fn schedule(text: &str) -> Result<Schedule, String> {
        Schedule::parse(text).map_err(|err| err.to_string())
    }

    fn schedule_error(text: &str) -> String {
        Schedule::parse(text).expect_err("invalid").to_string()
    }

    fn days_of_week(text: &str) -> Vec<u32> {
        let schedule = schedule(text).expect("valid");
        (1..=7)
            .filter(|&day| schedule.cron.days_of_week().includes(day))
            .collect()
    }

    #[test]
    fn time_zones_are_fixed_offsets() {
        assert_eq!(parse_timezone("UTC").unwrap().local_minus_utc(), 0);
        assert_eq!(parse_timezone("+01:00").unwrap().local_minus_utc(), 3600);
        assert_eq!(parse_timezone("-0530").unwrap().local_minus_utc(), -19800);
        assert!(parse_timezone("Europe/Paris").is_none());
        assert!(parse_timezone("+25:00").is_none());
    }

    #[test]
    fn five_field_cron_is_accepted() {
        let parsed = schedule("*/15 * * * *").expect("valid");
        assert_eq!(parsed.text, "*/15 * * * *");
        assert!(parsed.cron.seconds().includes(0));
        assert!(!parsed.cron.seconds().includes(1));
        assert!(parsed.cron.minutes().includes(45));
        assert!(!parsed.cron.minutes().includes(10));
    }

    #[test]
    fn six_and_seven_field_cron_is_accepted() {
        let parsed = schedule("30 0 9 * * Mon-Fri").expect("valid");
        assert!(parsed.cron.seconds().includes(30));
        assert_eq!(days_of_week("30 0 9 * * Mon-Fri"), [2, 3, 4, 5, 6]);
        assert!(schedule("0 0 9 * * * 2030").is_ok());
        assert!(schedule("@daily").is_ok());
    }

    #[test]
    fn five_field_day_of_week_follows_crontab() {
        // cron crate: 1 = Sunday ... 7 = Saturday.
        assert_eq!(days_of_week("0 9 * * 1-5"), [2, 3, 4, 5, 6]);
        assert_eq!(days_of_week("0 9 * * 0"), [1]);
        assert_eq!(days_of_week("0 9 * * 7"), [1]);
        assert_eq!(days_of_week("0 9 * * 5-7"), [1, 6, 7]);
        assert_eq!(days_of_week("0 9 * * sat,sun"), [1, 7]);
        assert_eq!(days_of_week("0 9 * * mon-fri/2"), [2, 4, 6]);
        assert_eq!(days_of_week("0 9 * * */2"), [1, 3, 5, 7]);
        assert_eq!(days_of_week("0 9 * * *"), [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn bad_cron_is_explained() {
        let forms = "expected 5 fields (minute hour day-of-month month day-of-week) or 6-7 fields \
                     with seconds first (second minute hour day-of-month month day-of-week [year])";
        assert_eq!(
            schedule_error("*/5 * *"),
            format!("`*/5 * *` is not a valid cron schedule (3 fields); {forms}")
        );
        assert_eq!(
            schedule_error(""),
            format!("`` is not a valid cron schedule (it is empty); {forms}")
        );
        assert_eq!(
            schedule_error("0 25 * * *"),
            format!(
                "`0 25 * * *` is not a valid cron schedule (hour field `25`: Hours must be less \
                 than 23. ('25' specified.)); {forms}"
            )
        );
        assert_eq!(
            schedule_error("0 0 * * * 0"),
            format!(
                "`0 0 * * * 0` is not a valid cron schedule (day-of-week field `0`: Days of Week \
                 must be greater than or equal to 1. ('0' specified.)); {forms}"
            )
        );
        assert_eq!(
            schedule_error("0 9 * * 8"),
            format!(
                "`0 9 * * 8` is not a valid cron schedule (day-of-week field `8`: `8` is not a \
                 day (0-7, 0 and 7 are Sunday, or sun-sat)); {forms}"
            )
        );
        assert_eq!(
            schedule_error("0 9 * * 5-1"),
            format!(
                "`0 9 * * 5-1` is not a valid cron schedule (day-of-week field `5-1`: range `5-1` \
                 runs backwards); {forms}"
            )
        );
        assert_eq!(
            schedule_error("x 9 * * *"),
            format!(
                "`x 9 * * *` is not a valid cron schedule (minute field `x`: The 'Minutes' field \
                 does not support using names. 'x' specified.); {forms}"
            )
        );
        assert_eq!(
            schedule_error("0 1-x * * * *"),
            format!(
                "`0 1-x * * * *` is not a valid cron schedule (minute field `1-x`: cannot be parsed); {forms}"
            )
        );
        assert_eq!(
            schedule_error("0 0 9 1,,2 * *"),
            format!(
                "`0 0 9 1,,2 * *` is not a valid cron schedule (day-of-month field `1,,2`: cannot be parsed); {forms}"
            )
        );
        assert_eq!(
            schedule_error("0 0 9 * * * 20x"),
            format!(
                "`0 0 9 * * * 20x` is not a valid cron schedule (year field `20x`: cannot be parsed); {forms}"
            )
        );
        assert_eq!(
            schedule_error("@sometimes"),
            format!(
                "`@sometimes` is not a valid cron schedule (shorthand field `@sometimes`: cannot be parsed); {forms}"
            )
        );
    }

    #[test]
    fn connector_ids() {
        for id in ["a", "okta", "hr-2", "x_y", "0abc", &"a".repeat(63)] {
            assert!(is_valid_id(id), "{id}");
        }
        for id in ["", "-a", "_a", "A", "a b", "é", "a.b", &"a".repeat(64)] {
            assert!(!is_valid_id(id), "{id}");
        }
    }

    #[test]
    fn file_formats_come_from_extensions() {
        assert_eq!(
            FileFormat::from_extension(Path::new("a/b.JSON")),
            Some(FileFormat::Json)
        );
        assert_eq!(
            FileFormat::from_extension(Path::new("b.csv")),
            Some(FileFormat::Csv)
        );
        assert_eq!(FileFormat::from_extension(Path::new("b.txt")), None);
        assert_eq!(FileFormat::from_extension(Path::new("json")), None);
        assert_eq!(FileFormat::Csv.as_str(), "csv");
    }

    /// Loads one connector file (at `connectors/<id>.toml` under a temp
    /// dir holding `extra` files), with mappings `default` and `staff`.
    fn check(id: &str, text: &str, extra: &[&str]) -> (Option<ConnectorConfig>, Vec<String>) {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in extra {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        let file = dir.path().join(format!("connectors/{id}.toml"));
        let mut problems = Problems::new(dir.path());
        let known: BTreeSet<String> = ["default".to_owned(), "staff".to_owned()].into();
        let context = Context {
            base_dir: dir.path(),
            known_mappings: &known,
            mappings_dir: PathBuf::from("mappings"),
        };
        let source = Source { file: &file, text };
        let connector = load(id, &source, &context, &mut problems);
        let problems = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect();
        (connector, problems)
    }

    #[test]
    fn kinds() {
        let (_, problems) = check(
            "a",
            "kind = \"ldap\"\nmapping = \"default\"\n[ldap]\nurl = \"ldap://x\"\n",
            &[],
        );
        assert_eq!(
            problems,
            [
                "connectors/a.toml:1: kind: connector kind `ldap` is not available in this version (available: azure, okta, google, keycloak, scim, file)"
            ]
        );
        let (_, problems) = check("a", "kind = \"ftp\"\nmapping = \"default\"\n", &[]);
        assert_eq!(
            problems,
            [
                "connectors/a.toml:1: kind: unknown connector kind `ftp` (valid kinds: azure, okta, google, keycloak, ldap, scim, file)"
            ]
        );
        let (_, problems) = check("a", "mapping = \"default\"\nkind = \"file\"\n", &[]);
        assert_eq!(
            problems,
            ["connectors/a.toml:2: kind: kind = \"file\" needs a [file] table with `path`"]
        );
        let (_, problems) = check(
            "a",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"x.json\"\n[ldap]\nurl = \"ldap://x\"\n",
            &["x.json"],
        );
        assert_eq!(
            problems,
            ["connectors/a.toml:5: ldap: [ldap] does not apply to kind = \"file\""]
        );
    }

    #[test]
    fn a_valid_file_connector() {
        let (connector, problems) = check(
            "hr",
            "kind = \"file\"\nmapping = \"staff\"\nenabled = false\nschedule = \"0 0 6 * * *\"\n[file]\npath = \"./users.data\"\nformat = \"csv\"\n",
            &["users.data"],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let connector = connector.expect("valid");
        assert_eq!(connector.id, "hr");
        assert!(!connector.enabled);
        assert_eq!(connector.mapping, "staff");
        assert_eq!(connector.settings.kind(), "file");
        assert_eq!(
            connector.schedule.map(|s| s.to_string()).as_deref(),
            Some("0 0 6 * * *")
        );
        let ConnectorSettings::File(file) = connector.settings else {
            panic!("a file connector");
        };
        assert_eq!(file.format, FileFormat::Csv);
        assert!(file.path.is_absolute());
        assert!(file.path.ends_with("users.data"));
    }

    #[test]
    fn a_directory_is_not_a_snapshot_file() {
        let (connector, problems) = check(
            "a",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \".\"\nformat = \"json\"\n",
            &[],
        );
        assert!(connector.is_none());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("connectors/a.toml:4: file.path: /")
                && problems[0].ends_with(" is a directory, not a file"),
            "{problems:?}"
        );
    }
    const KEYCLOAK: &str = "kind = \"keycloak\"\nmapping = \"default\"\n[keycloak]\n";

    #[test]
    fn a_valid_keycloak_connector() {
        // PATH is set wherever the tests run; a real config names its own variable.
        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com/\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\n"
            ),
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let connector = connector.expect("valid");
        assert_eq!(connector.settings.kind(), "keycloak");
        let ConnectorSettings::Keycloak(k) = connector.settings else {
            panic!("a keycloak connector");
        };
        assert_eq!(k.base_url, "https://sso.example.com");
        assert_eq!(k.realm, "acme");
        assert_eq!(k.client_id, "idsync");
        assert_eq!(
            k.token_url,
            "https://sso.example.com/realms/acme/protocol/openid-connect/token"
        );
        assert_eq!(k.page_size, 100);
        assert_eq!(k.requests_per_second.get(), 10);
        assert!(
            !k.client_secret
                .as_ref()
                .expect("secret")
                .expose()
                .is_empty()
        );

        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"http://localhost:8080/auth\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\ntoken_url = \"http://localhost:8080/auth/realms/master/protocol/openid-connect/token\"\npage_size = 1000\nrequests_per_second = 2\nallow_insecure_http = true\n"
            ),
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let ConnectorSettings::Keycloak(k) = connector.expect("valid").settings else {
            panic!("a keycloak connector");
        };
        assert_eq!(
            k.token_url,
            "http://localhost:8080/auth/realms/master/protocol/openid-connect/token"
        );
        assert_eq!(k.page_size, 1000);
        assert_eq!(k.requests_per_second.get(), 2);
        assert!(k.allow_insecure_http);

        // Plain http without the option, or to a host that is not loopback, is refused.
        for (base, option) in [
            ("http://localhost:8080/auth", ""),
            ("http://sso.example.com", "allow_insecure_http = true\n"),
        ] {
            let (connector, problems) = check(
                "sso",
                &format!(
                    "{KEYCLOAK}base_url = \"{base}\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\n{option}"
                ),
                &[],
            );
            assert!(connector.is_none());
            assert!(
                problems[0].starts_with("connectors/sso.toml:4: keycloak.base_url: ")
                    && problems[0].contains("plain http sends credentials unencrypted"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn keycloak_password_grant_through_admin_cli() {
        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"admin-cli\"\nusername = \"sync-bot\"\npassword = {{ env = \"PATH\" }}\n"
            ),
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let ConnectorSettings::Keycloak(k) = connector.expect("valid").settings else {
            panic!("a keycloak connector");
        };
        assert!(k.client_secret.is_none());
        assert_eq!(
            k.password_grant.as_ref().map(|(u, _)| u.as_str()),
            Some("sync-bot")
        );

        let (_, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"idsync\"\n"
            ),
            &[],
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("keycloak.client_secret")),
            "{problems:?}"
        );
        let (_, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"admin-cli\"\nusername = \"bot\"\n"
            ),
            &[],
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`username` needs `password`")),
            "{problems:?}"
        );
    }

    #[test]
    fn keycloak_problems() {
        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_secret = {{ env = \"PATH\" }}\n"
            ),
            &[],
        );
        assert!(connector.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("client_id"), "{problems:?}");

        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"PATH\" }}\nscope = \"x\"\n"
            ),
            &[],
        );
        assert!(connector.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("unknown field `scope`"),
            "{problems:?}"
        );

        let (connector, problems) = check(
            "sso",
            &format!(
                "{KEYCLOAK}base_url = \"https://sso.example.com/realms/acme\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nclient_secret = {{ env = \"IDSYNC_TEST_UNSET_KEYCLOAK_SECRET_7F3A\" }}\npage_size = 1001\nrequests_per_second = 0\n"
            ),
            &[],
        );
        assert!(connector.is_none());
        assert_eq!(
            problems,
            [
                "connectors/sso.toml:4: keycloak.base_url: give the server's base URL without `/realms/...` (the realm goes in `realm`)".to_owned(),
                "connectors/sso.toml:8: keycloak.page_size: 1001 is out of range (1-1000)".to_owned(),
                "connectors/sso.toml:9: keycloak.requests_per_second: 0 is out of range (at least 1)".to_owned(),
                format!("connectors/sso.toml:7: keycloak.client_secret: {}", SecretRef::Env("IDSYNC_TEST_UNSET_KEYCLOAK_SECRET_7F3A".to_owned()).resolve(Path::new(".")).expect_err("unset")),
            ]
        );

        let (_, problems) = check("sso", "kind = \"keycloak\"\nmapping = \"default\"\n", &[]);
        assert_eq!(
            problems,
            [
                "connectors/sso.toml:1: kind: kind = \"keycloak\" needs a [keycloak] table with `base_url`, `realm`, `client_id` and `client_secret`"
            ]
        );
        let (_, problems) = check(
            "a",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"x.json\"\n[keycloak]\nrealm = \"x\"\n",
            &["x.json"],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("keycloak"), "{problems:?}");
    }
}
