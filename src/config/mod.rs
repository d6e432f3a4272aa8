//! Loading and validating idsync's configuration tree.
//!
//! The configuration is a directory tree:
//!
//! ```text
//! idsync.toml            engine settings (see [`EngineConfig`])
//! connectors/<id>.toml   one per connector; its id is the file stem (see [`ConnectorConfig`])
//! mappings/<name>.toml   one per mapping; its name is the file stem (see [`MappingConfig`])
//! ```
//!
//! [`Config::load`] reads the whole tree and checks it. It never stops at the
//! first mistake: every problem in every file is collected, each with its file,
//! line and key, and returned together as [`ConfigErrors`], so an administrator
//! can fix them all in one go.
//!
//! Only `*.toml` files are read from the `connectors/` and `mappings/`
//! directories (hidden files, whose name starts with `.`, are skipped), in name
//! order. A missing directory counts as empty.

pub mod attributes;
mod connector;
mod engine;
mod schedule;
mod scim_server;
mod scim_tenant;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

pub use crate::connectors::azure::{AzureCredential, AzureSettings};
pub use crate::connectors::file::{FileFormat, FileSettings};
pub use crate::connectors::google::{
    GOOGLE_SCOPE_GROUPS, GOOGLE_SCOPE_USERS, GoogleDirectoryScope, GoogleSettings,
    ServiceAccountKey, parse_service_account_key,
};
pub use crate::connectors::keycloak::{
    KEYCLOAK_DEFAULT_PAGE_SIZE, KEYCLOAK_DEFAULT_REQUESTS_PER_SECOND, KEYCLOAK_MAX_PAGE_SIZE,
    KeycloakSettings,
};
pub use crate::connectors::okta::{KeyAlgorithm, OktaAuth, OktaSettings, ServiceApp, StatusPolicy};
pub use crate::pipeline::settings::{
    Application, Attributes, DefaultApply, Filters, GroupRules, MappingConfig, Nesting, OnRemove,
};
pub use crate::spec::{
    Problem, SecretError, SecretRef, SecretString, StringOrSecret, parse_duration,
};
pub use connector::{ConnectorConfig, ConnectorSettings};
pub use engine::{EngineConfig, LogFormat};
pub use schedule::{Schedule, ScheduleError, ScheduleZone};
pub use scim_server::{ResourceLimits, ServerOptions};
pub use scim_tenant::{ScimTenantSettings, TenantAuth};

// The machinery lives in `spec`; these names keep `super::problems::...` and the like
// working in the settings files that stay here.
pub(crate) use crate::spec::path::{normalize, resolve};
use crate::spec::problems::{self, Problems, Source};
use crate::spec::{duration, secret};

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `idsync.toml` that was loaded (absolute).
    pub path: PathBuf,
    /// The directory holding `idsync.toml` (absolute); relative paths in the
    /// configuration resolve against it.
    pub base_dir: PathBuf,
    /// Engine settings from `idsync.toml`.
    pub engine: EngineConfig,
    /// Connectors by id (the stem of their file in the connectors directory).
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// Mappings by name (the stem of their file in the mappings directory).
    pub mappings: BTreeMap<String, MappingConfig>,
}

impl Config {
    /// Loads and validates the whole tree, reporting every problem at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_with(path, false)
    }

    /// [`Config::load`] for commands that read only the state database (`users`, `runs`,
    /// ...): secrets that cannot be looked up are no problem (a connector or target whose
    /// secret is missing is left out), so an admin can look without every credential.
    pub fn load_for_reading(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_with(path, true)
    }

    fn load_with(path: &Path, without_secrets: bool) -> Result<Config, ConfigErrors> {
        let path = match std::path::absolute(path) {
            Ok(absolute) => normalize(&absolute),
            Err(err) => {
                return Err(ConfigErrors(vec![Problem::in_file(
                    path,
                    format!("cannot use this path: {err}"),
                )]));
            }
        };
        let base_dir = match path.parent() {
            Some(parent) => parent.to_path_buf(),
            None => {
                return Err(ConfigErrors(vec![Problem::in_file(
                    &path,
                    "is a directory root, not a configuration file",
                )]));
            }
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigErrors(vec![Problem::in_file(
                    &path,
                    "configuration file not found",
                )]));
            }
            Err(err) => {
                return Err(ConfigErrors(vec![Problem::in_file(
                    &path,
                    format!("cannot read configuration file: {err}"),
                )]));
            }
        };

        let mut problems = Problems::new(&base_dir);
        let engine = engine::load(
            &Source {
                file: &path,
                text: &text,
            },
            &base_dir,
            &mut problems,
        );

        let mut mappings = BTreeMap::new();
        let mapping_files = list_toml_files(&engine.mappings_dir, &mut problems);
        for (name, file) in &mapping_files {
            let Some(text) = read_file(file, &mut problems) else {
                continue;
            };
            let source = Source { file, text: &text };
            if let Some(mapping) =
                crate::pipeline::settings::load(name, &source, &engine.safety, &mut problems)
            {
                mappings.insert(name.clone(), mapping);
            }
        }

        // A mapping "exists" when its file does, even if the file has
        // problems of its own: those are reported once, at the mapping.
        let known_mappings: BTreeSet<String> =
            mapping_files.iter().map(|(name, _)| name.clone()).collect();
        let context = connector::Context {
            base_dir: &base_dir,
            known_mappings: &known_mappings,
            mappings_dir: problems.display_path(&engine.mappings_dir),
        };
        let mut connectors = BTreeMap::new();
        for (id, file) in list_toml_files(&engine.connectors_dir, &mut problems) {
            let Some(text) = read_file(&file, &mut problems) else {
                continue;
            };
            let source = Source {
                file: &file,
                text: &text,
            };
            if let Some(connector) = connector::load(&id, &source, &context, &mut problems) {
                connectors.insert(id, connector);
            }
        }

        if without_secrets {
            problems.forget_unavailable_secrets();
        }
        if !problems.is_empty() {
            return Err(ConfigErrors(problems.into_vec()));
        }
        Ok(Config {
            path,
            base_dir,
            engine,
            connectors,
            mappings,
        })
    }

    /// The connector with this id, if there is one.
    pub fn connector(&self, id: &str) -> Option<&ConnectorConfig> {
        self.connectors.get(id)
    }

    /// The mapping a connector uses.
    ///
    /// # Panics
    ///
    /// If `connector` does not come from this `Config`: [`Config::load`]
    /// checks that every connector's mapping exists.
    #[allow(
        clippy::panic,
        reason = "an invariant Config::load establishes, documented above"
    )]
    pub fn mapping_for(&self, connector: &ConnectorConfig) -> &MappingConfig {
        match self.mappings.get(&connector.mapping) {
            Some(mapping) => mapping,
            None => panic!(
                "connector `{}` names mapping `{}`, which this Config does not have",
                connector.id, connector.mapping
            ),
        }
    }
}

/// Everything wrong with a configuration tree, in the order found: the
/// engine file, then mappings, then connectors, each directory in name order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_problems(.0))]
pub struct ConfigErrors(pub Vec<Problem>);

/// One problem per line, without a trailing newline.
fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `*.toml` files directly in `dir`, as `(stem, path)` in name order.
/// A missing directory is empty; hidden files are skipped.
fn list_toml_files(dir: &Path, problems: &mut Problems) -> Vec<(String, PathBuf)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            problems.push(dir, None, None, format!("cannot read directory: {err}"));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                problems.push(dir, None, None, format!("cannot read directory: {err}"));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".")
            || path.extension().is_none_or(|ext| ext != "toml")
            || !path.is_file()
        {
            continue;
        }
        match path.file_stem().and_then(|stem| stem.to_str()) {
            Some(stem) => files.push((stem.to_owned(), path)),
            None => problems.push(&path, None, None, "file name is not valid UTF-8"),
        }
    }
    files.sort();
    files
}

/// The text of a configuration file, or a problem saying why not.
fn read_file(path: &Path, problems: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) => {
            problems.push(path, None, None, format!("cannot read file: {err}"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
