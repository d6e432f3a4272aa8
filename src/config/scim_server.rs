//! The SCIM server's settings in the `[scim]` table of `idsync.toml`: where it listens and
//! its limits against slow, hostile or careless clients (see docs/scim.md, "Limits and
//! hostile clients"). Per-tenant settings are the connectors' `[scim]` tables
//! (`super::scim_tenant`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::problems::{Problems, Source, defaulted};

/// `[scim]` in `idsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScim {
    /// `IP:PORT` the SCIM server listens on. Default: `0.0.0.0:5501`.
    #[serde(default = "default_scim_listen")]
    pub(super) listen: Spanned<String>,
    /// Seconds a connection has to send a request's headers before it is closed.
    /// Default: 10.
    #[serde(default)]
    header_read_timeout_seconds: Option<Spanned<i64>>,
    /// Seconds a request has to send its body before it is answered 408. Default: 30.
    #[serde(default)]
    body_read_timeout_seconds: Option<Spanned<i64>>,
    /// Most SCIM connections open at once; at the cap the listener stops accepting (and
    /// `/readyz` answers 503) until one closes. Default: 1024.
    #[serde(default)]
    max_connections: Option<Spanned<i64>>,
    /// Failed authentications one client address may make per minute before its further
    /// failures are answered 429. Default: 20.
    #[serde(default)]
    auth_failures_per_minute: Option<Spanned<i64>>,
    /// Most characters in one string attribute. Default: 4096.
    #[serde(default)]
    max_string_length: Option<Spanned<i64>>,
    /// Most entries in one multi-valued attribute (a group's members excepted).
    /// Default: 100.
    #[serde(default)]
    max_values_per_attribute: Option<Spanned<i64>>,
    /// Largest resource, serialised without its members, in bytes. Default: 16384.
    #[serde(default)]
    max_resource_bytes: Option<Spanned<i64>>,
    /// A list page stops adding resources once its body would grow past this many bytes
    /// (it always holds one). Default: 1048576 (1 MiB).
    #[serde(default)]
    max_page_bytes: Option<Spanned<i64>>,
}

fn default_scim_listen() -> Spanned<String> {
    defaulted("0.0.0.0:5501".to_owned())
}

impl Default for RawScim {
    fn default() -> Self {
        RawScim {
            listen: default_scim_listen(),
            header_read_timeout_seconds: None,
            body_read_timeout_seconds: None,
            max_connections: None,
            auth_failures_per_minute: None,
            max_string_length: None,
            max_values_per_attribute: None,
            max_resource_bytes: None,
            max_page_bytes: None,
        }
    }
}

/// The SCIM server's limits from `[scim]`, each a whole number of at least 1.
pub(super) fn scim_options(
    source: &Source<'_>,
    problems: &mut Problems,
    raw: &RawScim,
) -> ServerOptions {
    let mut options = ServerOptions::default();
    let mut read = |value: &Option<Spanned<i64>>, key: &str, default: u64| -> u64 {
        match value {
            None => default,
            Some(v) if *v.get_ref() >= 1 => *v.get_ref() as u64,
            Some(v) => {
                source.report(
                    problems,
                    v,
                    key,
                    format!("{} is out of range (at least 1)", v.get_ref()),
                );
                default
            }
        }
    };
    options.header_read_timeout = std::time::Duration::from_secs(read(
        &raw.header_read_timeout_seconds,
        "scim.header_read_timeout_seconds",
        options.header_read_timeout.as_secs(),
    ));
    options.body_read_timeout = std::time::Duration::from_secs(read(
        &raw.body_read_timeout_seconds,
        "scim.body_read_timeout_seconds",
        options.body_read_timeout.as_secs(),
    ));
    let narrow = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    options.max_connections = narrow(read(
        &raw.max_connections,
        "scim.max_connections",
        options.max_connections as u64,
    ));
    options.auth_failures_per_minute = u32::try_from(read(
        &raw.auth_failures_per_minute,
        "scim.auth_failures_per_minute",
        u64::from(options.auth_failures_per_minute),
    ))
    .unwrap_or(u32::MAX);
    options.limits.max_string_chars = narrow(read(
        &raw.max_string_length,
        "scim.max_string_length",
        options.limits.max_string_chars as u64,
    ));
    options.limits.max_values = narrow(read(
        &raw.max_values_per_attribute,
        "scim.max_values_per_attribute",
        options.limits.max_values as u64,
    ));
    options.limits.max_resource_bytes = narrow(read(
        &raw.max_resource_bytes,
        "scim.max_resource_bytes",
        options.limits.max_resource_bytes as u64,
    ));
    options.max_page_bytes = narrow(read(
        &raw.max_page_bytes,
        "scim.max_page_bytes",
        options.max_page_bytes as u64,
    ));
    options
}

/// Limits of the server as a whole.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// A request taking longer is answered 503 and its transaction rolled back.
    pub request_timeout: Duration,
    /// Most resources one list request returns.
    pub max_results: u32,
    /// Failed authentications one client address may make per minute before its
    /// failures are answered 429.
    pub auth_failures_per_minute: u32,
    /// What one resource may hold.
    pub limits: ResourceLimits,
    /// A connection that has not sent a request's whole header by then is closed.
    pub header_read_timeout: Duration,
    /// A request whose body has not arrived by then is answered 408.
    pub body_read_timeout: Duration,
    /// Most connections open at once; at the cap the listener stops accepting.
    pub max_connections: usize,
    /// A list page stops adding resources once its body would grow past this (it always
    /// holds at least one); clients page on with `startIndex` + `itemsPerPage`.
    pub max_page_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(60),
            max_results: 1000,
            auth_failures_per_minute: 20,
            limits: ResourceLimits::default(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_page_bytes: 1 << 20,
        }
    }
}

/// The limits of what one resource may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Longest string other than identifiers, in characters.
    pub max_string_chars: usize,
    /// Most entries in one multi-valued attribute (`members` excepted).
    pub max_values: usize,
    /// Largest resource, serialised without its members, in bytes.
    pub max_resource_bytes: usize,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            max_string_chars: 4096,
            max_values: 100,
            max_resource_bytes: 16 << 10,
        }
    }
}
