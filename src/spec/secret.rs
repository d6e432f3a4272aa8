//! Secrets in the configuration: references to them, and the resolved values.
//!
//! Secrets are never written into configuration files. A setting that takes a
//! secret takes a reference instead, as a TOML table with exactly one key:
//!
//! ```toml
//! client_secret = { env = "OKTA_CLIENT_SECRET" }     # from an environment variable
//! client_secret = { file = "/run/secrets/okta" }     # from a file (trailing newlines trimmed)
//! ```
//!
//! A relative `file` resolves against the directory of `idsync.toml`.
//! Resolved values are held in a [`SecretString`], which never prints itself.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};

/// The message for a secret written inline as a plain string.
const INLINE_SECRET: &str =
    "secrets are given by reference, never inline: use { env = \"NAME\" } or { file = \"path\" }";

/// Where to find a secret: `{ env = "NAME" }` or `{ file = "path" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{ env = "NAME" }`: the value of environment variable `NAME`, which
    /// must be set and not empty.
    Env(String),
    /// `{ file = "path" }`: the contents of a file, without trailing newlines;
    /// relative to the directory of `idsync.toml`.
    File(PathBuf),
}

impl SecretRef {
    /// Looks the secret up. `base_dir` is where a relative `file` resolves
    /// (the directory of `idsync.toml`).
    pub fn resolve(&self, base_dir: &Path) -> Result<SecretString, SecretError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(value) if value.is_empty() => Err(SecretError::EnvEmpty { name: name.clone() }),
                Ok(value) => Ok(SecretString::new(value)),
                Err(std::env::VarError::NotPresent) => {
                    Err(SecretError::EnvNotSet { name: name.clone() })
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(SecretError::EnvNotUnicode { name: name.clone() })
                }
            },
            SecretRef::File(path) => {
                let path = super::path::resolve(base_dir, path);
                let text = std::fs::read_to_string(&path).map_err(|source| {
                    SecretError::FileUnreadable {
                        path: path.clone(),
                        source,
                    }
                })?;
                let value = text.trim_end_matches(['\n', '\r']);
                if value.is_empty() {
                    return Err(SecretError::FileEmpty { path });
                }
                Ok(SecretString::new(value))
            }
        }
    }
}

/// `env `NAME`` or `file `path``: says where the secret comes from, not what
/// it is.
impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env `{name}`"),
            SecretRef::File(path) => write!(f, "file `{}`", path.display()),
        }
    }
}

impl<'de> de::Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingVisitor {
            expecting: "a secret reference { env = \"NAME\" } or { file = \"path\" }",
            from_str: |_| Err(INLINE_SECRET.to_owned()),
            from_ref: Some(|secret| secret),
        })
    }
}

/// Reads one of the settings of this module: a string through `from_str`, a table (where
/// `from_ref` is given) as a secret reference. Errors rise while the value is read, so
/// they point at the value; `expecting` names it in type errors.
struct SettingVisitor<T> {
    expecting: &'static str,
    from_str: fn(&str) -> Result<T, String>,
    from_ref: Option<fn(SecretRef) -> T>,
}

impl<'de, T> Visitor<'de> for SettingVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.from_str)(value).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        match self.from_ref {
            Some(from_ref) => secret_from_map(map).map(from_ref),
            None => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }
}

/// Reads the table of a secret reference: exactly one of `env` or `file`.
fn secret_from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<SecretRef, A::Error> {
    let mut found: Option<SecretRef> = None;
    while let Some(key) = map.next_key::<String>()? {
        let secret = match key.as_str() {
            "env" => {
                let name = map.next_value::<EnvName>()?.0;
                SecretRef::Env(name)
            }
            "file" => {
                let path = map.next_value::<FilePath>()?.0;
                SecretRef::File(path)
            }
            other => {
                return Err(de::Error::custom(format!(
                    "unknown secret source `{other}`: use {{ env = \"NAME\" }} or {{ file = \"path\" }}"
                )));
            }
        };
        if found.is_some() {
            return Err(de::Error::custom(
                "a secret reference takes exactly one of `env` or `file`",
            ));
        }
        found = Some(secret);
    }
    found.ok_or_else(|| {
        de::Error::custom("empty secret reference: use { env = \"NAME\" } or { file = \"path\" }")
    })
}

/// The non-empty name in `{ env = "NAME" }`.
struct EnvName(String);

impl<'de> de::Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(SettingVisitor {
            expecting: "the name of an environment variable",
            from_str: |value| {
                if value.is_empty() || value.contains(['=', '\0']) {
                    Err(format!(
                        "`{value}` is not a usable environment variable name"
                    ))
                } else {
                    Ok(EnvName(value.to_owned()))
                }
            },
            from_ref: None,
        })
    }
}

/// The non-empty path in `{ file = "path" }`.
struct FilePath(PathBuf);

impl<'de> de::Deserialize<'de> for FilePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(SettingVisitor {
            expecting: "the path of a file",
            from_str: |value| {
                if value.is_empty() {
                    Err("the secret file path must not be empty".to_owned())
                } else {
                    Ok(FilePath(PathBuf::from(value)))
                }
            },
            from_ref: None,
        })
    }
}

/// A setting that may be written inline or, when it carries a password, as a
/// secret reference: `"sqlite://idsync.db"`, `{ env = "NAME" }` or
/// `{ file = "path" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringOrSecret {
    /// Written inline.
    Plain(String),
    /// Looked up through a secret reference.
    Secret(SecretRef),
}

impl StringOrSecret {
    /// The value: the inline string, or the resolved secret.
    pub fn resolve(&self, base_dir: &Path) -> Result<SecretString, SecretError> {
        match self {
            StringOrSecret::Plain(value) => Ok(SecretString::new(value.as_str())),
            StringOrSecret::Secret(secret) => secret.resolve(base_dir),
        }
    }
}

impl<'de> de::Deserialize<'de> for StringOrSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingVisitor {
            expecting: "a string, { env = \"NAME\" } or { file = \"path\" }",
            from_str: |value| Ok(StringOrSecret::Plain(value.to_owned())),
            from_ref: Some(StringOrSecret::Secret),
        })
    }
}

/// A resolved secret. It prints as `********` (in both `Debug` and
/// `Display`); [`SecretString::expose`] gives the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> SecretString {
        SecretString(value.into())
    }

    /// The secret value itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> SecretString {
        SecretString(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// Why a secret reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("environment variable `{name}` is not set")]
    EnvNotSet {
        /// The variable's name.
        name: String,
    },
    /// The environment variable is set but empty.
    #[error("environment variable `{name}` is empty")]
    EnvEmpty {
        /// The variable's name.
        name: String,
    },
    /// The environment variable's value is not valid UTF-8.
    #[error("environment variable `{name}` is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        name: String,
    },
    /// The secret file cannot be read (or is not UTF-8).
    #[error("cannot read secret file `{}`: {source}", path.display())]
    FileUnreadable {
        /// The file, resolved.
        path: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// The secret file holds nothing but newlines.
    #[error("secret file `{}` is empty", path.display())]
    FileEmpty {
        /// The file, resolved.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests;
