//! Engine settings: the `idsync.toml` file at the root of the configuration.
//!
//! Every table and key is optional, so an empty `idsync.toml` is valid:
//!
//! ```toml
//! [target]
//! database_url = "sqlite://idsync.db"   # or { env = "NAME" } or { file = "path" }
//! [scim]
//! listen = "0.0.0.0:5501"
//! header_read_timeout_seconds = 10    # a request's headers must arrive within this
//! body_read_timeout_seconds = 30      # a request's body must arrive within this (else 408)
//! max_connections = 1024              # open SCIM connections; at the cap, stop accepting
//! auth_failures_per_minute = 20       # failed authentications per client address (then 429)
//! max_string_length = 4096            # characters in any string attribute
//! max_values_per_attribute = 100      # entries of a multi-valued attribute (not members)
//! max_resource_bytes = 16384          # a resource without its members, serialised
//! max_page_bytes = 1048576            # a list page stops growing past this
//! [admin]
//! listen = "127.0.0.1:5502"
//! session_idle = "30m"                # an admin page session ends after this without a request
//! [paths]
//! connectors = "connectors"
//! mappings = "mappings"
//! [log]
//! level = "info"
//! format = "text"
//! [safety]
//! max_deletes = 500
//! max_delete_percent = 20.0
//! min_deletes = 3
//! max_membership_removals = 1000
//! min_membership_removals = 10
//! max_membership_removal_percent = 20.0
//! max_skipped_percent = 10.0
//! [scheduler]
//! max_concurrent_runs = 2
//! shutdown_grace_seconds = 30
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::problems::{Problems, Source, defaulted};
use super::scim_server::{RawScim, scim_options};
use super::secret::{SecretString, StringOrSecret};

/// Engine settings from `idsync.toml`, resolved and checked.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where idsync keeps its state, resolved from `[target] database_url`:
    /// a relative sqlite path is made absolute. May hold a password, hence
    /// secret.
    pub database_url: SecretString,
    /// The directory runs write to (`[target] kind` and `[target.ldap]`).
    pub target: crate::target::TargetKind,
    /// Address the SCIM server listens on (`[scim] listen`).
    pub scim_listen: SocketAddr,
    /// The SCIM server's limits (the rest of `[scim]`).
    pub scim_options: super::ServerOptions,
    /// Address the admin server listens on (`[admin] listen`).
    pub admin_listen: SocketAddr,
    /// A bearer token the admin API accepts besides the created ones (`[admin] token`).
    pub admin_token: Option<SecretString>,
    /// Where browsers reach the admin listener through a proxy (`[admin] public_url`).
    pub admin_public_url: Option<url::Url>,
    /// How long an admin page session lives without a request (`[admin] session_idle`).
    pub admin_session_idle: std::time::Duration,
    /// Most sync runs at once (`[scheduler] max_concurrent_runs`).
    pub max_concurrent_runs: usize,
    /// How long `serve` waits for runs in progress at shutdown
    /// (`[scheduler] shutdown_grace_seconds`).
    pub shutdown_grace: std::time::Duration,
    /// Directory of connector files (`[paths] connectors`), absolute.
    pub connectors_dir: PathBuf,
    /// Directory of mapping files (`[paths] mappings`), absolute.
    pub mappings_dir: PathBuf,
    /// Log filter, an `EnvFilter` directive string (`[log] level`).
    pub log_level: String,
    /// Log output format (`[log] format`).
    pub log_format: LogFormat,
    /// `[safety]`: the limits of every mapping that does not set its own.
    pub safety: crate::pipeline::settings::SafetyLimits,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The name used in the configuration: `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `idsync.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    /// `[target]`: where idsync keeps its state.
    #[serde(default)]
    target: RawTarget,
    /// `[scim]`: the SCIM server.
    #[serde(default)]
    scim: RawScim,
    /// `[admin]`: the admin server.
    #[serde(default)]
    admin: RawAdmin,
    /// `[paths]`: where the other configuration files are.
    #[serde(default)]
    paths: RawPaths,
    /// `[log]`: logging.
    #[serde(default)]
    log: RawLog,
    /// `[safety]`: limits on deletions, defaults for every mapping.
    #[serde(default)]
    safety: RawSafety,
    /// `[scheduler]`: scheduled runs of `idsync serve`.
    #[serde(default)]
    scheduler: RawScheduler,
}

/// `[target]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTarget {
    /// The state database. `sqlite://path` (a relative path resolves against
    /// the directory of `idsync.toml`), `sqlite::memory:`, or
    /// `postgres://user@host/db`. Give it as `{ env = "NAME" }` or
    /// `{ file = "path" }` when it carries a password.
    /// Default: `sqlite://idsync.db`.
    database_url: Spanned<StringOrSecret>,
    /// `sql` (the target tables of the database above) or `ldap` (an LDAP server, set in
    /// `[target.ldap]`; the engine's state stays in the database). Default: sql.
    kind: Option<Spanned<String>>,
    /// `[target.ldap]`: the LDAP target.
    ldap: Option<Spanned<crate::target::ldap::RawLdapTarget>>,
}

/// `[admin]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAdmin {
    /// `IP:PORT` the admin server listens on. Default: `127.0.0.1:5502`.
    listen: Spanned<String>,
    /// A bearer token the admin API accepts besides those of `idsync admin-token create`
    /// (its audit name is `config`): `{ env = "NAME" }` or `{ file = "path" }`. Default: none.
    token: Option<Spanned<super::SecretRef>>,
    /// The URL browsers reach the admin listener at through a proxy (its origin is
    /// accepted besides the listener's own). Default: none.
    public_url: Option<Spanned<String>>,
    /// How long an admin page session lives without a request, such as `"30m"` or `"8h"`.
    /// Default: `"30m"`.
    session_idle: Option<Spanned<String>>,
}

/// `[scheduler]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawScheduler {
    /// Most sync runs at once across all connectors. Default: 2.
    max_concurrent_runs: Spanned<i64>,
    /// Seconds `serve` waits for runs in progress at shutdown before abandoning them
    /// (an abandoned run is rolled back). Default: 30.
    shutdown_grace_seconds: Spanned<i64>,
}

/// `[paths]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPaths {
    /// Directory holding one `<id>.toml` per connector, relative to the
    /// directory of `idsync.toml`. Default: `connectors`.
    connectors: PathBuf,
    /// Directory holding one `<name>.toml` per mapping, relative to the
    /// directory of `idsync.toml`. Default: `mappings`.
    mappings: PathBuf,
}

/// `[log]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLog {
    /// What to log, as a tracing `EnvFilter` directive string such as
    /// `info` or `idsync=debug,info`. Default: `info`.
    level: Spanned<String>,
    /// `text` (human-readable lines) or `json` (one object per line).
    /// Default: `text`.
    format: LogFormat,
}

/// `[safety]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSafety {
    /// The most users one run of a mapping may delete (or disable) in the
    /// target before it stops; mappings may set their own. Default: 500.
    max_deletes: u64,
    /// The most users one run of a mapping may delete (or disable), as a
    /// percentage (0 to 100) of the users in the target; mappings may set
    /// their own. Default: 20.0.
    max_delete_percent: Spanned<f64>,
    /// Below this many removals (or skipped users) no percentage limit holds a run, so
    /// one of four users leaving a tiny directory goes through. Default: 3.
    min_deletes: u64,
    /// The most memberships one run may remove from users and groups that stay in the
    /// target (an application group emptied by a mapping mistake). Default: 1000.
    max_membership_removals: u64,
    /// The same as a percentage (0 to 100) of the memberships the connector granted.
    /// Default: 20.0.
    max_membership_removal_percent: Spanned<f64>,
    /// Below this many membership removals the percentage above never holds (a user
    /// is in several groups, so the floor is higher than `min_deletes`). Default: 10.
    min_membership_removals: u64,
    /// The most users the mapping may skip (an expression gave nothing for a required
    /// field) among those it projected before, as a percentage (0 to 100). Default: 10.0.
    max_skipped_percent: Spanned<f64>,
}

// The defaults of every key, in one place: each table is `#[serde(default)]`, so a key
// left out takes its value from here.

impl Default for RawTarget {
    fn default() -> Self {
        RawTarget {
            database_url: defaulted(StringOrSecret::Plain("sqlite://idsync.db".to_owned())),
            kind: None,
            ldap: None,
        }
    }
}

/// `[admin] session_idle` when unset.
const DEFAULT_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: defaulted("127.0.0.1:5502".to_owned()),
            token: None,
            public_url: None,
            session_idle: None,
        }
    }
}

impl Default for RawScheduler {
    fn default() -> Self {
        RawScheduler {
            max_concurrent_runs: defaulted(2),
            shutdown_grace_seconds: defaulted(30),
        }
    }
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            connectors: PathBuf::from("connectors"),
            mappings: PathBuf::from("mappings"),
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: defaulted("info".to_owned()),
            format: LogFormat::Text,
        }
    }
}

impl Default for RawSafety {
    fn default() -> Self {
        RawSafety {
            max_deletes: 500,
            max_delete_percent: defaulted(20.0),
            min_deletes: 3,
            max_membership_removals: 1000,
            max_membership_removal_percent: defaulted(20.0),
            min_membership_removals: 10,
            max_skipped_percent: defaulted(10.0),
        }
    }
}

/// `[target] kind` and its table.
fn target_kind(
    source: &Source<'_>,
    base_dir: &Path,
    raw: &RawTarget,
    problems: &mut Problems,
) -> crate::target::TargetKind {
    use crate::target::TargetKind;
    let kind = raw.kind.as_ref().map(|k| (k, k.get_ref().trim()));
    match (kind, &raw.ldap) {
        (None | Some((_, "sql")), None) => TargetKind::Sql,
        (None | Some((_, "sql")), Some(table)) => {
            let message = "[target.ldap] is set but `kind` is not \"ldap\": set kind = \"ldap\" \
                           or remove the table";
            source.report(problems, table, "target.ldap", message);
            TargetKind::Sql
        }
        (Some((_, "ldap")), Some(table)) => {
            match crate::target::ldap::settings::check(table, source, base_dir, problems) {
                Some(settings) => TargetKind::Ldap(Box::new(settings)),
                None => TargetKind::Sql,
            }
        }
        (Some((spanned, "ldap")), None) => {
            let message = "kind = \"ldap\" needs a [target.ldap] table with `url`, `bind_dn`, \
                           `bind_password`, `users_dn` and `groups_dn`";
            source.report(problems, spanned, "target.kind", message);
            TargetKind::Sql
        }
        (Some((spanned, other)), _) => {
            let message = format!("unknown target kind `{other}` (expected \"sql\" or \"ldap\")");
            source.report(problems, spanned, "target.kind", message);
            TargetKind::Sql
        }
    }
}

/// Reads and checks `idsync.toml`, recording problems.
///
/// Always returns settings, so the rest of the tree can still be checked:
/// where the file or a value is bad, defaults stand in (the load fails anyway
/// because of the recorded problem). When the file does not deserialise, the
/// `[paths]` are still taken from it if they can be read.
pub(crate) fn load(source: &Source<'_>, base_dir: &Path, problems: &mut Problems) -> EngineConfig {
    let raw = match source.parse::<RawEngine>(problems) {
        Some(raw) => raw,
        None => RawEngine {
            paths: salvage_paths(source.text),
            ..RawEngine::default()
        },
    };
    let database_url = match raw.target.database_url.get_ref().resolve(base_dir) {
        Ok(url) => match normalize_database_url(url.expose(), base_dir) {
            Ok(url) => SecretString::new(url),
            Err(message) => {
                source.report(
                    problems,
                    &raw.target.database_url,
                    "target.database_url",
                    message,
                );
                url
            }
        },
        Err(err) => {
            source.report(
                problems,
                &raw.target.database_url,
                "target.database_url",
                err.to_string(),
            );
            SecretString::default()
        }
    };
    let target = target_kind(source, base_dir, &raw.target, problems);
    let scim_listen = listen_address(source, problems, &raw.scim.listen, "scim.listen");
    let scim_options = scim_options(source, problems, &raw.scim);
    let admin_listen = listen_address(source, problems, &raw.admin.listen, "admin.listen");
    let admin_token = raw.admin.token.as_ref().and_then(|token| {
        token
            .get_ref()
            .resolve(base_dir)
            .map_err(|err| source.report_secret(problems, token, "admin.token", err.to_string()))
            .ok()
    });
    let admin_session_idle = crate::spec::check::duration(
        source,
        raw.admin.session_idle.as_ref(),
        "admin.session_idle",
        (DEFAULT_SESSION_IDLE, true),
        problems,
    )
    .unwrap_or(DEFAULT_SESSION_IDLE);
    let admin_public_url =
        raw.admin
            .public_url
            .as_ref()
            .and_then(|text| match url::Url::parse(text.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    Some(url)
                }
                _ => {
                    source.report(
                        problems,
                        text,
                        "admin.public_url",
                        format!(
                            "`{}` is not an http(s) URL, e.g. https://idsync.example.com",
                            text.get_ref()
                        ),
                    );
                    None
                }
            });
    let mut at_least_one = |value: &Spanned<i64>, key: &str| -> u64 {
        if *value.get_ref() >= 1 {
            *value.get_ref() as u64
        } else {
            source.report(
                problems,
                value,
                key,
                format!("{} is out of range (at least 1)", value.get_ref()),
            );
            1
        }
    };
    let max_concurrent_runs = at_least_one(
        &raw.scheduler.max_concurrent_runs,
        "scheduler.max_concurrent_runs",
    );
    let shutdown_grace_seconds = at_least_one(
        &raw.scheduler.shutdown_grace_seconds,
        "scheduler.shutdown_grace_seconds",
    );
    if raw.log.level.get_ref().trim().is_empty() {
        source.report(
            problems,
            &raw.log.level,
            "log.level",
            "must not be empty; use a directive such as \"info\"",
        );
    }
    let [
        max_delete_percent,
        max_membership_removal_percent,
        max_skipped_percent,
    ] = [
        (&raw.safety.max_delete_percent, "safety.max_delete_percent"),
        (
            &raw.safety.max_membership_removal_percent,
            "safety.max_membership_removal_percent",
        ),
        (
            &raw.safety.max_skipped_percent,
            "safety.max_skipped_percent",
        ),
    ]
    .map(|(value, key)| crate::pipeline::settings::checked_percent(source, problems, value, key));
    EngineConfig {
        database_url,
        target,
        scim_listen,
        scim_options,
        admin_listen,
        admin_token,
        admin_public_url,
        admin_session_idle,
        max_concurrent_runs: max_concurrent_runs as usize,
        shutdown_grace: std::time::Duration::from_secs(shutdown_grace_seconds),
        connectors_dir: super::resolve(base_dir, &raw.paths.connectors),
        mappings_dir: super::resolve(base_dir, &raw.paths.mappings),
        log_level: raw.log.level.into_inner(),
        log_format: raw.log.format,
        safety: crate::pipeline::settings::SafetyLimits {
            max_deletes: raw.safety.max_deletes,
            max_delete_percent,
            min_deletes: raw.safety.min_deletes,
            max_membership_removals: raw.safety.max_membership_removals,
            max_membership_removal_percent,
            min_membership_removals: raw.safety.min_membership_removals,
            max_skipped_percent,
        },
    }
}

/// The `[paths]` of an `idsync.toml` that did not deserialise, as far as
/// they can be read, so the right directories are still checked.
fn salvage_paths(text: &str) -> RawPaths {
    let mut paths = RawPaths::default();
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return paths;
    };
    let dir = |key: &str| {
        table
            .get("paths")
            .and_then(|paths| paths.get(key))
            .and_then(|dir| dir.as_str())
            .map(PathBuf::from)
    };
    if let Some(connectors) = dir("connectors") {
        paths.connectors = connectors;
    }
    if let Some(mappings) = dir("mappings") {
        paths.mappings = mappings;
    }
    paths
}

/// Parses a listen address, recording a problem (and standing in
/// `0.0.0.0:0`) when it is not `IP:PORT`.
fn listen_address(
    source: &Source<'_>,
    problems: &mut Problems,
    listen: &Spanned<String>,
    key: &str,
) -> SocketAddr {
    match listen.get_ref().parse() {
        Ok(address) => address,
        Err(_) => {
            source.report(
                problems,
                listen,
                key,
                format!(
                    "`{}` is not a valid listen address; expected IP:PORT, e.g. 0.0.0.0:5501 or [::]:5501",
                    listen.get_ref()
                ),
            );
            SocketAddr::from(([0, 0, 0, 0], 0))
        }
    }
}

mod database_url;

use database_url::normalize_database_url;

#[cfg(test)]
mod tests;
