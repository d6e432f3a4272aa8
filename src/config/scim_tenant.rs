//! Settings of a SCIM tenant: a connector of `kind = "scim"` that identity providers push
//! to, at `/scim/{id}/v2` (and `/scim/{id}/v1` for SCIM 1.1).
//!
//! ```toml
//! kind = "scim"
//! mapping = "default"
//! [scim]
//! auth = "bearer"                     # "bearer" (tokens from `idsync tenant create`) or "basic"
//! # basic_username = "okta"           # with auth = "basic"
//! # basic_password = { env = "OKTA_SCIM_PASSWORD" }
//! allow_from = ["203.0.113.0/24"]     # optional: clients allowed, as CIDR; default any
//! trusted_proxies = ["10.0.0.5/32"]   # X-Forwarded-For is believed only from these
//! requests_per_second = 50            # per tenant; more get 429 with Retry-After
//! burst = 100
//! max_removals = 100                  # deletes/deactivations per window before holding
//! removal_window_minutes = 60
//! event_retention = 10000             # accepted requests kept in the event log
//! rejected_event_retention = 1000     # rejected-authentication requests kept, apart
//! event_max_age = "30d"               # events older than this are deleted
//! public_base_url = "https://idsync.example.com"  # for Location and meta.location
//! ```

use std::num::NonZeroU32;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::problems::{Problems, Source};
use super::{SecretRef, SecretString};

/// The shortest HTTP Basic password a tenant accepts.
pub const MIN_BASIC_PASSWORD_CHARS: usize = 16;

/// Default per-tenant request rate.
pub const SCIM_DEFAULT_REQUESTS_PER_SECOND: u32 = 50;
/// Default length of the window deletions are counted in.
pub const SCIM_DEFAULT_REMOVAL_WINDOW_MINUTES: u64 = 60;
/// Default number of requests kept in a tenant's event log.
pub const SCIM_DEFAULT_EVENT_RETENTION: u64 = 10_000;
/// Default number of rejected-authentication requests kept, apart from the others.
pub const SCIM_DEFAULT_REJECTED_EVENT_RETENTION: u64 = 1_000;
/// Default age past which events are deleted (30 days).
pub const SCIM_DEFAULT_EVENT_MAX_AGE: std::time::Duration =
    std::time::Duration::from_secs(30 * 86_400);

/// How clients of a tenant authenticate.
#[derive(Debug, Clone)]
pub enum TenantAuth {
    /// `Authorization: Bearer <token>`, tokens issued by `idsync tenant create|rotate`.
    Bearer,
    /// `Authorization: Basic`, one configured user name and password (some IdPs and
    /// Okta's on-premises agent offer only this).
    Basic {
        username: String,
        password: SecretString,
    },
}

/// The settings of a `kind = "scim"` connector (its `[scim]` table, all optional).
#[derive(Debug, Clone)]
pub struct ScimTenantSettings {
    pub auth: TenantAuth,
    /// Clients allowed to call; empty means any.
    pub allow_from: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub requests_per_second: NonZeroU32,
    pub burst: NonZeroU32,
    /// Deletions and deactivations applied within the window before further ones are held;
    /// None: the mapping's `max_deletes`.
    pub max_removals: Option<u64>,
    pub removal_window_minutes: u64,
    /// Accepted requests (answered after authentication) kept in the event log.
    pub event_retention: u64,
    /// Requests refused before authentication (401, 403, 429) kept, under their own cap
    /// so that a flood of them cannot push accepted requests out.
    pub rejected_event_retention: u64,
    /// Events older than this are deleted, whatever their number.
    pub event_max_age: std::time::Duration,
    /// Where clients reach the SCIM server (`https://host[:port][/prefix]`, no trailing
    /// slash): `Location`, `meta.location` and member `$ref`s start with it. None: a
    /// trusted proxy's `X-Forwarded-Proto`/`-Host`, else the listener's own address.
    pub public_base_url: Option<String>,
}

impl Default for ScimTenantSettings {
    fn default() -> Self {
        ScimTenantSettings {
            auth: TenantAuth::Bearer,
            allow_from: Vec::new(),
            trusted_proxies: Vec::new(),
            requests_per_second: NonZeroU32::new(SCIM_DEFAULT_REQUESTS_PER_SECOND)
                .expect("non-zero"),
            burst: NonZeroU32::new(SCIM_DEFAULT_REQUESTS_PER_SECOND * 2).expect("non-zero"),
            max_removals: None,
            removal_window_minutes: SCIM_DEFAULT_REMOVAL_WINDOW_MINUTES,
            event_retention: SCIM_DEFAULT_EVENT_RETENTION,
            rejected_event_retention: SCIM_DEFAULT_REJECTED_EVENT_RETENTION,
            event_max_age: SCIM_DEFAULT_EVENT_MAX_AGE,
            public_base_url: None,
        }
    }
}

/// The `[scim]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScimSettings {
    /// `bearer` (default) or `basic`.
    #[serde(default)]
    auth: Option<Spanned<String>>,
    /// With `auth = "basic"`: the user name clients send.
    #[serde(default)]
    basic_username: Option<Spanned<String>>,
    /// With `auth = "basic"`: the password, `{ env = "NAME" }` or `{ file = "path" }`.
    #[serde(default)]
    basic_password: Option<Spanned<SecretRef>>,
    /// CIDR blocks (or single addresses) allowed to call. Default: any.
    #[serde(default)]
    allow_from: Vec<Spanned<String>>,
    /// Proxies (CIDR) whose `X-Forwarded-For` header names the real client.
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    /// Requests per second per tenant. Default 50.
    #[serde(default)]
    requests_per_second: Option<Spanned<i64>>,
    /// Requests allowed at once above the rate. Default: twice the rate.
    #[serde(default)]
    burst: Option<Spanned<i64>>,
    /// Deletions/deactivations within the window before further ones are held.
    /// Default: the mapping's `max_deletes`.
    #[serde(default)]
    max_removals: Option<Spanned<i64>>,
    /// The window deletions are counted in, in minutes. Default 60.
    #[serde(default)]
    removal_window_minutes: Option<Spanned<i64>>,
    /// Accepted requests kept in the tenant's event log. Default 10000.
    #[serde(default)]
    event_retention: Option<Spanned<i64>>,
    /// Rejected-authentication requests kept, apart. Default 1000.
    #[serde(default)]
    rejected_event_retention: Option<Spanned<i64>>,
    /// Age past which events are deleted (`"30d"`, `"12h"`). Default 30 days.
    #[serde(default)]
    event_max_age: Option<Spanned<String>>,
    /// The URL clients reach the SCIM server at, for `Location` and `meta.location`.
    /// Default: a trusted proxy's `X-Forwarded-Proto`/`-Host`, else the listener's address.
    #[serde(default)]
    public_base_url: Option<Spanned<String>>,
}

fn parse_nets(
    source: &Source<'_>,
    key: &str,
    items: &[Spanned<String>],
    problems: &mut Problems,
) -> Option<Vec<IpNet>> {
    let mut nets = Vec::new();
    let mut ok = true;
    for item in items {
        let text = item.get_ref().trim();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => {
                source.report(
                    problems,
                    item,
                    key,
                    format!("`{text}` is not an IP address or CIDR block such as 10.0.0.0/8"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(nets)
}

fn positive(
    source: &Source<'_>,
    key: &str,
    value: Option<&Spanned<i64>>,
    default: u64,
    problems: &mut Problems,
) -> Option<u64> {
    match value {
        None => Some(default),
        Some(spanned) if *spanned.get_ref() >= 1 => Some(*spanned.get_ref() as u64),
        Some(spanned) => {
            source.report(
                problems,
                spanned,
                key,
                format!("{} is out of range (at least 1)", spanned.get_ref()),
            );
            None
        }
    }
}

fn non_zero(value: u64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(value).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

/// Checks a `[scim]` table (absent means all defaults).
pub(crate) fn scim_settings(
    source: &Source<'_>,
    base_dir: &std::path::Path,
    raw: &RawScimSettings,
    problems: &mut Problems,
) -> Option<ScimTenantSettings> {
    let before = problems.len();
    let auth = match raw.auth.as_ref().map(|a| a.get_ref().as_str()) {
        None | Some("bearer") => {
            if let Some(user) = &raw.basic_username {
                source.report(
                    problems,
                    user,
                    "scim.basic_username",
                    "applies only with auth = \"basic\"",
                );
            }
            if let Some(password) = &raw.basic_password {
                source.report(
                    problems,
                    password,
                    "scim.basic_password",
                    "applies only with auth = \"basic\"",
                );
            }
            Some(TenantAuth::Bearer)
        }
        Some("basic") => {
            let username = raw
                .basic_username
                .as_ref()
                .map(|u| u.get_ref().trim().to_owned())
                .filter(|u| !u.is_empty() && !u.contains(':'));
            let password = raw.basic_password.as_ref().and_then(|p| {
                let resolved = p
                    .get_ref()
                    .resolve(base_dir)
                    .map_err(|err| {
                        source.report_secret(problems, p, "scim.basic_password", err.to_string())
                    })
                    .ok()?;
                // A password is all that stands between the network and the tenant, and
                // guesses are limited only per client address: it must be long.
                if resolved.expose().chars().count() < MIN_BASIC_PASSWORD_CHARS {
                    source.report(
                        problems,
                        p,
                        "scim.basic_password",
                        format!(
                            "the password must be at least {MIN_BASIC_PASSWORD_CHARS} characters \
                             (a random one, e.g. `openssl rand -base64 24`)"
                        ),
                    );
                    return None;
                }
                Some(resolved)
            });
            let auth_span = raw.auth.as_ref().expect("auth is set");
            if username.is_none() {
                source.report(
                    problems,
                    auth_span,
                    "scim.basic_username",
                    "auth = \"basic\" needs `basic_username` (non-empty, without `:`)",
                );
            }
            if raw.basic_password.is_none() {
                source.report(
                    problems,
                    auth_span,
                    "scim.basic_password",
                    "auth = \"basic\" needs `basic_password` as { env = \"NAME\" } or { file = \"path\" }",
                );
            }
            match (username, password) {
                (Some(username), Some(password)) => Some(TenantAuth::Basic { username, password }),
                _ => None,
            }
        }
        Some(other) => {
            source.report(
                problems,
                raw.auth.as_ref().expect("auth is set"),
                "scim.auth",
                format!("unknown auth `{other}` (valid: bearer, basic)"),
            );
            None
        }
    };
    let allow_from = parse_nets(source, "scim.allow_from", &raw.allow_from, problems);
    let trusted_proxies = parse_nets(
        source,
        "scim.trusted_proxies",
        &raw.trusted_proxies,
        problems,
    );
    let rps = positive(
        source,
        "scim.requests_per_second",
        raw.requests_per_second.as_ref(),
        SCIM_DEFAULT_REQUESTS_PER_SECOND as u64,
        problems,
    );
    let burst = positive(
        source,
        "scim.burst",
        raw.burst.as_ref(),
        rps.unwrap_or(1) * 2,
        problems,
    );
    let max_removals = match &raw.max_removals {
        None => None,
        Some(spanned) if *spanned.get_ref() >= 0 => Some(*spanned.get_ref() as u64),
        Some(spanned) => {
            source.report(
                problems,
                spanned,
                "scim.max_removals",
                format!("{} is out of range (0 or more)", spanned.get_ref()),
            );
            None
        }
    };
    let window = positive(
        source,
        "scim.removal_window_minutes",
        raw.removal_window_minutes.as_ref(),
        SCIM_DEFAULT_REMOVAL_WINDOW_MINUTES,
        problems,
    );
    let retention = positive(
        source,
        "scim.event_retention",
        raw.event_retention.as_ref(),
        SCIM_DEFAULT_EVENT_RETENTION,
        problems,
    );
    let rejected_retention = positive(
        source,
        "scim.rejected_event_retention",
        raw.rejected_event_retention.as_ref(),
        SCIM_DEFAULT_REJECTED_EVENT_RETENTION,
        problems,
    );
    let event_max_age = match &raw.event_max_age {
        None => SCIM_DEFAULT_EVENT_MAX_AGE,
        Some(spanned) => match super::duration::parse_duration(spanned.get_ref()) {
            Ok(age) if !age.is_zero() => age,
            Ok(_) => {
                let message = "must be longer than 0s (events would be deleted as written)";
                source.report(problems, spanned, "scim.event_max_age", message);
                SCIM_DEFAULT_EVENT_MAX_AGE
            }
            Err(error) => {
                source.report(problems, spanned, "scim.event_max_age", error);
                SCIM_DEFAULT_EVENT_MAX_AGE
            }
        },
    };
    let public_base_url = raw.public_base_url.as_ref().and_then(|spanned| {
        public_base_url(spanned.get_ref())
            .map_err(|message| {
                source.report(problems, spanned, "scim.public_base_url", message);
            })
            .ok()
    });
    if problems.len() != before {
        return None;
    }
    Some(ScimTenantSettings {
        auth: auth?,
        allow_from: allow_from?,
        trusted_proxies: trusted_proxies?,
        requests_per_second: non_zero(rps?),
        burst: non_zero(burst?),
        max_removals,
        removal_window_minutes: window?,
        event_retention: retention?,
        rejected_event_retention: rejected_retention?,
        event_max_age,
        public_base_url,
    })
}

/// A public base URL as used in answers: http(s), a host, no query, user or fragment, no
/// trailing slash.
fn public_base_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| {
        format!("`{text}` is not a URL ({e}); expected e.g. https://idsync.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "`{text}` must be an http(s) URL with a host and nothing after the path, \
             e.g. https://idsync.example.com"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> (Option<ScimTenantSettings>, Vec<String>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("connectors/okta.toml");
        let raw: RawScimSettings = toml::from_str(text).expect("toml");
        let mut problems = Problems::new(dir.path());
        let source = Source { file: &file, text };
        let settings = scim_settings(&source, dir.path(), &raw, &mut problems);
        let problems = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect();
        (settings, problems)
    }

    #[test]
    fn basic_passwords_must_be_long() {
        let dir = tempfile::tempdir().expect("temp dir");
        let short = dir.path().join("short");
        let long = dir.path().join("long");
        std::fs::write(&short, "s3cret").expect("write");
        std::fs::write(&long, "correct horse battery staple").expect("write");
        let text = |file: &std::path::Path| {
            format!(
                "auth = \"basic\"\nbasic_username = \"okta\"\nbasic_password = {{ file = \"{}\" }}\n",
                file.display()
            )
        };
        let (none, problems) = settings(&text(&short));
        assert!(none.is_none());
        assert!(
            problems[0].contains("scim.basic_password: the password must be at least 16"),
            "{problems:?}"
        );
        let (set, problems) = settings(&text(&long));
        assert!(set.is_some(), "{problems:?}");
    }

    #[test]
    fn event_retention_settings_have_defaults_and_are_checked() {
        let (defaults, _) = settings("");
        let defaults = defaults.expect("defaults");
        assert_eq!(defaults.event_retention, 10_000);
        assert_eq!(defaults.rejected_event_retention, 1_000);
        assert_eq!(defaults.event_max_age.as_secs(), 30 * 86_400);
        let (set, problems) = settings(
            "event_retention = 50\nrejected_event_retention = 5\nevent_max_age = \"12h\"\n",
        );
        let set = set.unwrap_or_else(|| panic!("{problems:?}"));
        assert_eq!((set.event_retention, set.rejected_event_retention), (50, 5));
        assert_eq!(set.event_max_age.as_secs(), 12 * 3600);
        let (none, problems) = settings("rejected_event_retention = 0\nevent_max_age = \"0s\"\n");
        assert!(none.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("scim.rejected_event_retention"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("scim.event_max_age: must be longer than 0s"),
            "{problems:?}"
        );
    }

    #[test]
    fn public_base_urls_are_checked_and_trimmed() {
        assert_eq!(
            public_base_url("https://idsync.example.com/").as_deref(),
            Ok("https://idsync.example.com")
        );
        assert_eq!(
            public_base_url("http://10.0.0.1:8080/idsync").as_deref(),
            Ok("http://10.0.0.1:8080/idsync")
        );
        for bad in [
            "idsync.example.com",
            "ftp://x",
            "https://x/?a=1",
            "https://u:p@x",
            "https://x/#f",
        ] {
            assert!(public_base_url(bad).is_err(), "{bad}");
        }
    }
}
