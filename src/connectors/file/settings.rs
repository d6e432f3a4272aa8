//! Settings of a file connector: `kind = "file"` and its `[file]` table.
//!
//! ```toml
//! kind = "file"
//! mapping = "default"
//! [file]
//! path = "exports/users.json"    # relative to the directory of idsync.toml
//! format = "json"                # optional: "json" or "csv"; default from the extension
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::connectors::kind::SettingsContext;
use crate::spec::path::resolve;
use crate::spec::problems::Problems;

/// What a file connector without its table is told.
const NEEDS: &str = "kind = \"file\" needs a [file] table with `path`";

crate::connectors::kind::kind_table!(RawFileSettings => FileSettings {
    needs: NEEDS, check: check, user_keys: super::records::user_keys, connect: super::FileConnector::connect
});

/// The settings of a `kind = "file"` connector (its `[file]` table).
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// The snapshot file (absolute); it existed when the configuration was
    /// loaded.
    pub path: PathBuf,
    /// How the snapshot file is written.
    pub format: FileFormat,
}

/// How a snapshot file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// A JSON document.
    Json,
    /// CSV with a header row.
    Csv,
}

impl FileFormat {
    /// The name used in the configuration: `json` or `csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
        }
    }

    /// The format a file name's extension stands for (`.json`, `.csv`, in
    /// any case).
    pub fn from_extension(path: &Path) -> Option<FileFormat> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("json") {
            Some(FileFormat::Json)
        } else if extension.eq_ignore_ascii_case("csv") {
            Some(FileFormat::Csv)
        } else {
            None
        }
    }
}

/// The `[file]` table of a `kind = "file"` connector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSettings {
    /// The snapshot file to read users from. A relative path resolves
    /// against the directory of `idsync.toml`, not the connectors
    /// directory. It must exist. Required.
    path: Spanned<PathBuf>,
    /// `json` or `csv`. Default: from the path's extension (`.json`,
    /// `.csv`); any other extension needs `format`.
    #[serde(default)]
    format: Option<FileFormat>,
}

/// Checks a `[file]` table: the file must exist and its format be known.
pub(super) fn check(
    table: &Spanned<RawFileSettings>,
    context: &SettingsContext<'_>,
    problems: &mut Problems,
) -> Option<FileSettings> {
    let (source, raw) = (context.source, table.get_ref());
    let written = raw.path.get_ref();
    if written.as_os_str().is_empty() {
        source.report(problems, &raw.path, "file.path", "must not be empty");
        return None;
    }
    let path = resolve(context.base_dir, written);
    let readable = match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_dir() => {
            Err(format!("{} is a directory, not a file", path.display()))
        }
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("file not found: {}", path.display()))
        }
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    };
    let ok = source
        .checked(problems, &raw.path, "file.path", readable)
        .is_some();
    let format = raw.format.or_else(|| FileFormat::from_extension(&path));
    if format.is_none() {
        source.report(
            problems,
            &raw.path,
            "file.format",
            format!(
                "cannot tell the format of `{}` from its extension; set format = \"json\" or \"csv\" in [file]",
                written.display()
            ),
        );
    }
    match (ok, format) {
        (true, Some(format)) => Some(FileSettings { path, format }),
        _ => None,
    }
}
