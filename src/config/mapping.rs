//! Mapping settings: one `mappings/<name>.toml` file per mapping.
//!
//! A mapping says how users from a connector land in the target. Every key
//! is optional, so an empty file is a valid mapping:
//!
//! ```toml
//! on_remove = "disable"        # or "delete"
//! max_deletes = 500            # default from idsync.toml [safety]
//! max_delete_percent = 20.0    # default from idsync.toml [safety]
//! ```

use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

use super::engine::{EngineConfig, check_percent};
use super::problems::{Problems, Source};

/// A mapping, resolved and checked.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    /// The mapping's name: the stem of its file.
    pub name: String,
    /// The mapping's file (absolute).
    pub file: PathBuf,
    /// What happens in the target to a user who left the source.
    pub on_remove: OnRemove,
    /// The most users one run may delete (or disable) before it stops.
    pub max_deletes: u64,
    /// The most users one run may delete (or disable), as a percentage
    /// (0 to 100) of the users in the target.
    pub max_delete_percent: f64,
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
}

fn default_on_remove() -> OnRemove {
    OnRemove::Disable
}

/// Reads and checks one mapping file, recording problems. Returns the
/// mapping only when it has none; `engine` gives the defaults.
pub(crate) fn load(
    name: &str,
    source: &Source<'_>,
    engine: &EngineConfig,
    problems: &mut Problems,
) -> Option<MappingConfig> {
    let raw = source.parse::<RawMapping>(problems)?;
    let max_delete_percent = match &raw.max_delete_percent {
        Some(percent) => {
            if let Err(message) = check_percent(*percent.get_ref()) {
                source.report(problems, percent, "max_delete_percent", message);
                return None;
            }
            *percent.get_ref()
        }
        None => engine.max_delete_percent,
    };
    Some(MappingConfig {
        name: name.to_owned(),
        file: source.file.to_path_buf(),
        on_remove: raw.on_remove,
        max_deletes: raw.max_deletes.unwrap_or(engine.max_deletes),
        max_delete_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretString;
    use std::path::Path;

    fn engine() -> EngineConfig {
        EngineConfig {
            database_url: SecretString::new("sqlite::memory:"),
            scim_listen: ([127, 0, 0, 1], 1).into(),
            admin_listen: ([127, 0, 0, 1], 2).into(),
            connectors_dir: "/c".into(),
            mappings_dir: "/m".into(),
            log_level: "info".into(),
            log_format: crate::config::LogFormat::Text,
            max_deletes: 7,
            max_delete_percent: 3.5,
        }
    }

    fn check(text: &str) -> (Option<MappingConfig>, Vec<String>) {
        let mut problems = Problems::new(Path::new("/etc/idsync"));
        let source = Source {
            file: Path::new("/etc/idsync/mappings/staff.toml"),
            text,
        };
        let mapping = load("staff", &source, &engine(), &mut problems);
        let problems = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect();
        (mapping, problems)
    }

    #[test]
    fn an_empty_mapping_takes_the_engine_defaults() {
        let (mapping, problems) = check("");
        assert!(problems.is_empty(), "{problems:?}");
        let mapping = mapping.expect("valid");
        assert_eq!(mapping.name, "staff");
        assert_eq!(mapping.file, Path::new("/etc/idsync/mappings/staff.toml"));
        assert_eq!(mapping.on_remove, OnRemove::Disable);
        assert_eq!(mapping.on_remove.as_str(), "disable");
        assert_eq!(mapping.max_deletes, 7);
        assert_eq!(mapping.max_delete_percent, 3.5);
    }

    #[test]
    fn a_mapping_overrides_the_defaults() {
        let (mapping, problems) =
            check("on_remove = \"delete\"\nmax_deletes = 0\nmax_delete_percent = 0\n");
        assert!(problems.is_empty(), "{problems:?}");
        let mapping = mapping.expect("valid");
        assert_eq!(mapping.on_remove, OnRemove::Delete);
        assert_eq!(mapping.on_remove.as_str(), "delete");
        assert_eq!(mapping.max_deletes, 0);
        assert_eq!(mapping.max_delete_percent, 0.0);
    }

    #[test]
    fn bad_values_are_reported_with_line_and_key() {
        let (mapping, problems) = check("\nmax_delete_percent = 101\n");
        assert!(mapping.is_none());
        assert_eq!(
            problems,
            ["mappings/staff.toml:2: max_delete_percent: must be between 0 and 100, got 101"]
        );
        let (_, problems) = check("on_remove = \"archive\"\n");
        assert_eq!(
            problems,
            [
                "mappings/staff.toml:1: on_remove: unknown variant `archive`, expected `disable` or `delete`"
            ]
        );
    }
}
