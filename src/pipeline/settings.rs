//! Mapping settings: one `mappings/<name>.toml` file per mapping.
//!
//! A mapping says how users and groups from a connector land in the target: which ones
//! (`[filter]`, SCIM filter expressions), with which attributes (`[attributes]`, mapping
//! expressions), in which extra groups (`[groups]` defaults and `[[applications]]`), with
//! nesting kept or flattened, and what happens to records that leave. Every key is
//! optional, so an empty file is a valid pass-through mapping. `mappings/default.toml`
//! in the repository documents every key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::expr::{Expr, parse as parse_expr};
use crate::filter::{Filter, parse_filter};

use crate::spec::check::percent as check_percent;
use crate::spec::problems::{Problems, Source};

/// A mapping, resolved and checked.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    /// The mapping's name: the stem of its file.
    pub name: String,
    /// The mapping's file (absolute).
    pub file: PathBuf,
    /// What happens in the target to a user who left the source.
    pub on_remove: OnRemove,
    /// When a run stops and is held instead of applied.
    pub limits: SafetyLimits,
    /// Whether nested groups are kept or flattened in the target.
    pub nesting: Nesting,
    /// Which users and groups reach the target.
    pub filter: Filters,
    /// How target fields are computed from source records.
    pub attributes: Attributes,
    /// Default groups, group renames and prefixes, application groups.
    pub groups: GroupRules,
    /// A hash of the mapping file's text: when it changes, mirrors are re-projected.
    pub fingerprint: String,
    /// The line of each attribute expression in the file, by key
    /// (`attributes.user_name`, `attributes.custom.department`), for `check`.
    pub expression_lines: BTreeMap<String, usize>,
}

impl MappingConfig {
    /// A pass-through mapping with the given removal rules (for tests and tools). The
    /// other limits take the `[safety]` defaults, except the floor of the percentage
    /// limits, which is 0: the given percentage holds from the first removal.
    pub fn pass_through(
        name: &str,
        on_remove: OnRemove,
        max_deletes: u64,
        max_delete_percent: f64,
    ) -> Self {
        MappingConfig {
            name: name.to_string(),
            file: PathBuf::from(format!("mappings/{name}.toml")),
            on_remove,
            limits: SafetyLimits {
                max_deletes,
                max_delete_percent,
                min_deletes: 0,
                max_membership_removals: 1000,
                max_membership_removal_percent: 20.0,
                min_membership_removals: 0,
                max_skipped_percent: 10.0,
            },
            nesting: Nesting::Keep,
            filter: Filters::default(),
            attributes: Attributes::default(),
            groups: GroupRules::default(),
            fingerprint: String::new(),
            expression_lines: BTreeMap::new(),
        }
    }

    /// Every attribute expression of the mapping with its key (`attributes.user_name`,
    /// `attributes.custom.department`), in a stable order.
    pub fn expressions(&self) -> Vec<(String, &Expr)> {
        let a = &self.attributes;
        let mut out: Vec<(String, &Expr)> = [
            ("attributes.user_name", &a.user_name),
            ("attributes.email", &a.email),
            ("attributes.display_name", &a.display_name),
            ("attributes.given_name", &a.given_name),
            ("attributes.family_name", &a.family_name),
        ]
        .into_iter()
        .filter_map(|(key, expr)| Some((key.to_string(), expr.as_ref()?)))
        .collect();
        for (name, expr) in &a.custom {
            out.push((format!("attributes.custom.{name}"), expr));
        }
        out
    }
}

/// How nested groups reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nesting {
    /// Groups keep their group members; effective membership is computed.
    #[default]
    Keep,
    /// Every group gets all its transitive users as direct members and no group members,
    /// for applications that do not understand nesting.
    Flatten,
}

/// When default groups are granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultApply {
    /// Only to users this connector creates: an admin who later removes the group in the
    /// target is not overridden.
    #[default]
    OnCreate,
    /// On every run, to every user of the connector.
    Always,
}

/// Include/exclude filters (SCIM filter language); exclusion wins.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub include_users: Option<Filter>,
    pub exclude_users: Option<Filter>,
    pub include_groups: Option<Filter>,
    pub exclude_groups: Option<Filter>,
}

/// Target fields computed by mapping expressions; absent ones use the source's
/// normalised fields.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub user_name: Option<Expr>,
    pub email: Option<Expr>,
    pub display_name: Option<Expr>,
    pub given_name: Option<Expr>,
    pub family_name: Option<Expr>,
    /// Extra attributes stored with the user, by name.
    pub custom: BTreeMap<String, Expr>,
}

/// An application whose access groups are granted to (some of) the connector's users.
#[derive(Debug, Clone)]
pub struct Application {
    pub name: String,
    pub groups: Vec<String>,
    /// Only users matching this filter get the groups; all users when absent.
    pub when: Option<Filter>,
}

/// Group rules of a mapping.
#[derive(Debug, Clone, Default)]
pub struct GroupRules {
    pub default: Vec<String>,
    pub default_apply: DefaultApply,
    /// Put before every source group's name in the target; groups matched by `rename` take
    /// their new name as is.
    pub prefix: Option<String>,
    /// Source group name -> target group name, exact (case-insensitive) match.
    pub rename: BTreeMap<String, String>,
    pub applications: Vec<Application>,
}

/// What happens in the target to a user who left the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRemove {
    /// The user is kept but disabled.
    Disable,
    /// The user is deleted.
    Delete,
}

impl OnRemove {
    /// The name used in the configuration: `disable` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnRemove::Disable => "disable",
            OnRemove::Delete => "delete",
        }
    }
}

/// `mappings/<name>.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    /// What happens in the target to a user who left the source: `disable`
    /// (kept, but cannot sign in) or `delete`. Default: `disable`.
    #[serde(default = "default_on_remove")]
    on_remove: OnRemove,
    /// The most users one run may delete (or disable) before it stops and
    /// asks for a person. Default: `[safety] max_deletes` in `idsync.toml`.
    #[serde(default)]
    max_deletes: Option<u64>,
    /// The most users one run may delete (or disable), as a percentage
    /// (0 to 100) of the users in the target. Default:
    /// `[safety] max_delete_percent` in `idsync.toml`.
    #[serde(default)]
    max_delete_percent: Option<Spanned<f64>>,
    /// Below this many removals (or skipped users) no percentage limit holds a run.
    /// Default: `[safety] min_deletes`.
    #[serde(default)]
    min_deletes: Option<u64>,
    /// The most memberships one run may remove from users and groups that stay.
    /// Default: `[safety] max_membership_removals`.
    #[serde(default)]
    max_membership_removals: Option<u64>,
    /// The same as a percentage (0 to 100) of the connector's memberships. Default:
    /// `[safety] max_membership_removal_percent`.
    #[serde(default)]
    max_membership_removal_percent: Option<Spanned<f64>>,
    /// Below this many membership removals the membership percentage never holds.
    /// Default: `[safety] min_membership_removals`.
    #[serde(default)]
    min_membership_removals: Option<u64>,
    /// The most users the mapping may skip among those it projected before, as a
    /// percentage (0 to 100). Default: `[safety] max_skipped_percent`.
    #[serde(default)]
    max_skipped_percent: Option<Spanned<f64>>,
    /// `keep` (default): groups keep their group members in the target and effective
    /// membership is computed; `flatten`: every group gets all its transitive users as
    /// direct members.
    #[serde(default)]
    nesting: Nesting,
    /// Which users and groups reach the target.
    #[serde(default)]
    filter: RawFilters,
    /// How target fields are computed.
    #[serde(default)]
    attributes: RawAttributes,
    /// Default groups and group naming.
    #[serde(default)]
    groups: RawGroups,
    /// Applications whose access groups are granted.
    #[serde(default)]
    applications: Vec<RawApplication>,
}

fn default_on_remove() -> OnRemove {
    OnRemove::Disable
}

/// `[filter]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilters {
    /// Only users matching this SCIM filter reach the target.
    include_users: Option<Spanned<String>>,
    /// Users matching this filter never reach the target (wins over include).
    exclude_users: Option<Spanned<String>>,
    /// Only groups matching this filter reach the target.
    include_groups: Option<Spanned<String>>,
    /// Groups matching this filter never reach the target (wins over include).
    exclude_groups: Option<Spanned<String>>,
}

/// `[attributes]` as written: the target fields, each a mapping expression.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttributes {
    user_name: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    given_name: Option<Spanned<String>>,
    family_name: Option<Spanned<String>>,
    /// Extra attributes: name = expression.
    #[serde(default)]
    custom: BTreeMap<String, Spanned<String>>,
}

/// `[groups]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    /// Groups added to users of this connector (created in the target if missing).
    #[serde(default)]
    default: Vec<Spanned<String>>,
    /// `on_create` (default) or `always`.
    #[serde(default)]
    default_apply: DefaultApply,
    /// Prefix for source group names in the target.
    prefix: Option<Spanned<String>>,
    /// Exact renames: "Source name" = "target name".
    #[serde(default)]
    rename: BTreeMap<String, Spanned<String>>,
}

/// One `[[applications]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    /// The application's name, for reports.
    name: Spanned<String>,
    /// Access groups granted (created in the target if missing).
    groups: Option<Spanned<Vec<Spanned<String>>>>,
    /// Optional SCIM filter on the user; e.g. `groups eq "Engineering"`.
    when: Option<Spanned<String>>,
}

/// Why a group name cannot be used, if it cannot.
fn group_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("a group name must not be empty".into())
    } else if name.chars().count() > 256 {
        Some(format!("group name {name:?} is longer than 256 characters"))
    } else if name.chars().any(char::is_control) {
        Some(format!("group name {name:?} contains control characters"))
    } else if name != name.trim() {
        Some(format!(
            "group name {name:?} has leading or trailing spaces"
        ))
    } else {
        None
    }
}

fn custom_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The safety limits of a run: past any of them the run is held, not applied. `[safety]`
/// in `idsync.toml` gives the defaults; a mapping may set each of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyLimits {
    /// The most users one run may delete (or disable) before it stops.
    pub max_deletes: u64,
    /// The most users one run may delete (or disable), as a percentage
    /// (0 to 100) of the users in the target.
    pub max_delete_percent: f64,
    /// Below this many removals (or skipped users) no percentage limit holds a run.
    pub min_deletes: u64,
    /// The most memberships one run may remove from users and groups that stay.
    pub max_membership_removals: u64,
    /// The same as a percentage (0 to 100) of the memberships the connector granted.
    pub max_membership_removal_percent: f64,
    /// Below this many membership removals the membership percentage never holds.
    pub min_membership_removals: u64,
    /// The most users the mapping may skip among those it projected before, as a
    /// percentage (0 to 100).
    pub max_skipped_percent: f64,
}

/// A percentage limit as written (`max_delete_percent` and the like, in a mapping or in
/// `[safety]`), recording a problem at its line when it is not from 0 to 100.
pub(crate) fn checked_percent(
    source: &Source<'_>,
    problems: &mut Problems,
    value: &Spanned<f64>,
    key: &str,
) -> f64 {
    if let Err(message) = check_percent(*value.get_ref()) {
        source.report(problems, value, key, message);
    }
    *value.get_ref()
}

/// Reads and checks one mapping file, recording problems. Returns the
/// mapping only when it has none; `engine` gives the defaults.
pub(crate) fn load(
    name: &str,
    source: &Source<'_>,
    engine: &SafetyLimits,
    problems: &mut Problems,
) -> Option<MappingConfig> {
    let raw = source.parse::<RawMapping>(problems)?;
    let before = problems.len();
    let percent_or =
        |value: &Option<Spanned<f64>>, key: &str, default: f64, problems: &mut Problems| {
            value.as_ref().map_or(default, |percent| {
                checked_percent(source, problems, percent, key)
            })
        };
    let max_delete_percent = percent_or(
        &raw.max_delete_percent,
        "max_delete_percent",
        engine.max_delete_percent,
        problems,
    );
    let max_membership_removal_percent = percent_or(
        &raw.max_membership_removal_percent,
        "max_membership_removal_percent",
        engine.max_membership_removal_percent,
        problems,
    );
    let max_skipped_percent = percent_or(
        &raw.max_skipped_percent,
        "max_skipped_percent",
        engine.max_skipped_percent,
        problems,
    );
    let filter_of = |value: &Option<Spanned<String>>, key: &str, problems: &mut Problems| {
        let value = value.as_ref()?;
        match parse_filter(value.get_ref()) {
            Ok(filter) => Some(filter),
            Err(e) => {
                source.report(problems, value, key, format!("invalid filter: {e}"));
                None
            }
        }
    };
    let filter = Filters {
        include_users: filter_of(&raw.filter.include_users, "filter.include_users", problems),
        exclude_users: filter_of(&raw.filter.exclude_users, "filter.exclude_users", problems),
        include_groups: filter_of(
            &raw.filter.include_groups,
            "filter.include_groups",
            problems,
        ),
        exclude_groups: filter_of(
            &raw.filter.exclude_groups,
            "filter.exclude_groups",
            problems,
        ),
    };
    let mut expression_lines = BTreeMap::new();
    let mut expr_of = |value: &Option<Spanned<String>>, key: &str, problems: &mut Problems| {
        let value = value.as_ref()?;
        if let Some(line) = source.span_line(&value.span()) {
            expression_lines.insert(key.to_string(), line);
        }
        match parse_expr(value.get_ref()) {
            Ok(expr) => Some(expr),
            Err(e) => {
                source.report(problems, value, key, format!("invalid expression: {e}"));
                None
            }
        }
    };
    let a = &raw.attributes;
    let mut custom = BTreeMap::new();
    for (key, value) in &a.custom {
        let full_key = format!("attributes.custom.{key}");
        if !custom_name_ok(key) {
            source.report(
                problems,
                value,
                &full_key,
                format!(
                    "custom attribute name {key:?} must start with a letter and hold only letters, digits and _"
                ),
            );
            continue;
        }
        if let Some(expr) = expr_of(&Some(value.clone()), &full_key, problems) {
            custom.insert(key.clone(), expr);
        }
    }
    let attributes = Attributes {
        user_name: expr_of(&a.user_name, "attributes.user_name", problems),
        email: expr_of(&a.email, "attributes.email", problems),
        display_name: expr_of(&a.display_name, "attributes.display_name", problems),
        given_name: expr_of(&a.given_name, "attributes.given_name", problems),
        family_name: expr_of(&a.family_name, "attributes.family_name", problems),
        custom,
    };

    let check_group = |value: &Spanned<String>, key: &str, problems: &mut Problems| {
        if let Some(message) = group_name_problem(value.get_ref()) {
            source.report(problems, value, key, message);
        }
        value.get_ref().clone()
    };
    let default: Vec<String> = raw
        .groups
        .default
        .iter()
        .map(|g| check_group(g, "groups.default", problems))
        .collect();
    let mut rename = BTreeMap::new();
    for (from, to) in &raw.groups.rename {
        let to = check_group(to, &format!("groups.rename.{from}"), problems);
        rename.insert(from.to_lowercase(), to);
    }
    let prefix = raw.groups.prefix.as_ref().map(|p| {
        if p.get_ref().chars().any(char::is_control) {
            source.report(
                problems,
                p,
                "groups.prefix",
                "the prefix contains control characters",
            );
        }
        p.get_ref().clone()
    });
    let mut applications = Vec::new();
    for app in &raw.applications {
        let key = format!("applications.{}", app.name.get_ref());
        if app.name.get_ref().trim().is_empty() {
            source.report(
                problems,
                &app.name,
                "applications.name",
                "an application needs a name",
            );
        }
        let listed = app
            .groups
            .as_ref()
            .map(|g| g.get_ref().as_slice())
            .unwrap_or_default();
        if listed.is_empty() {
            let message = format!(
                "application {:?} grants no groups: list at least one in `groups`",
                app.name.get_ref()
            );
            match &app.groups {
                Some(groups) => source.report(problems, groups, &format!("{key}.groups"), message),
                None => source.report(problems, &app.name, &format!("{key}.groups"), message),
            }
        }
        let groups = listed
            .iter()
            .map(|g| check_group(g, &format!("{key}.groups"), problems))
            .collect();
        let when = filter_of(&app.when, &format!("{key}.when"), problems);
        applications.push(Application {
            name: app.name.get_ref().clone(),
            groups,
            when,
        });
    }
    if problems.len() > before {
        return None;
    }
    Some(MappingConfig {
        name: name.to_owned(),
        file: source.file.to_path_buf(),
        on_remove: raw.on_remove,
        limits: SafetyLimits {
            max_deletes: raw.max_deletes.unwrap_or(engine.max_deletes),
            max_delete_percent,
            min_deletes: raw.min_deletes.unwrap_or(engine.min_deletes),
            max_membership_removals: raw
                .max_membership_removals
                .unwrap_or(engine.max_membership_removals),
            max_membership_removal_percent,
            min_membership_removals: raw
                .min_membership_removals
                .unwrap_or(engine.min_membership_removals),
            max_skipped_percent,
        },
        nesting: raw.nesting,
        filter,
        attributes,
        groups: GroupRules {
            default,
            default_apply: raw.groups.default_apply,
            prefix,
            rename,
            applications,
        },
        fingerprint: crate::model::content_hash(&source.text),
        expression_lines,
    })
}

#[cfg(test)]
mod tests;
