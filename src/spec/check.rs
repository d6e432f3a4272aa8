//! Typed checks every settings file uses, so the same mistake reads the same in every
//! kind: URLs (https, or http for loopback hosts with `allow_insecure_http`), page sizes in
//! a range, request rates, values that must not be empty.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::duration::parse_duration;
use super::problems::{Problems, Source};
use super::secret::{SecretRef, SecretString};

/// Whether `host` (as in a URL, IPv6 possibly bracketed) is loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a configured URL may not be used, if it may not: it must be `https`, or `http` on a
/// loopback host with `allow_insecure_http`. Shared by the settings checks and the
/// HTTP client, so both say the same.
pub fn insecure_reason(url: &url::Url, allow_insecure_http: bool) -> Option<String> {
    match url.scheme() {
        "https" => None,
        "http" => {
            let loopback = url.host_str().is_some_and(is_loopback_host);
            match (loopback, allow_insecure_http) {
                (true, true) => None,
                (true, false) => Some(
                    "plain http sends credentials unencrypted: use https, or set \
                     allow_insecure_http = true (loopback hosts only, for labs and tests)"
                        .to_string(),
                ),
                (false, _) => Some(
                    "plain http sends credentials unencrypted: use https (http is allowed \
                     only for loopback hosts, with allow_insecure_http = true)"
                        .to_string(),
                ),
            }
        }
        other => Some(format!("`{other}` is not http or https")),
    }
}

/// A configured endpoint: an http(s) URL with a host, allowed by [`insecure_reason`], and
/// without query or fragment. `text` is the URL as it is shown in the message.
pub fn endpoint_url(text: &str, allow_insecure_http: bool) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            if let Some(reason) = insecure_reason(&url, allow_insecure_http) {
                Err(format!("`{text}`: {reason}"))
            } else if url.query().is_some() || url.fragment().is_some() {
                Err(format!("`{text}` must not have a query or fragment"))
            } else {
                Ok(url)
            }
        }
        Ok(_) => Err(format!("`{text}` must be an https:// URL")),
        Err(err) => Err(format!("`{text}` is not a URL: {err}")),
    }
}

/// A kind's `requests_per_second` ceiling: `default` when unset (`None`: no ceiling, the
/// provider's headers pace the requests), otherwise at least 1 (a problem, and None, when
/// not).
pub(crate) fn rate(
    source: &Source<'_>,
    value: Option<&Spanned<i64>>,
    key: &str,
    default: Option<NonZeroU32>,
    problems: &mut Problems,
) -> Option<Option<NonZeroU32>> {
    source.checked_or(problems, value, key, default, |&n| {
        u32::try_from(n)
            .ok()
            .and_then(NonZeroU32::new)
            .map(Some)
            .ok_or_else(|| format!("{n} is out of range (at least 1)"))
    })
}

/// A count from 1 to `max`: `default` when unset; out of range is a problem (the message
/// ends with `note`, such as `, Graph's largest $top`) and None.
pub(crate) fn range(
    source: &Source<'_>,
    value: Option<&Spanned<i64>>,
    key: &str,
    (default, max): (u32, u32),
    note: &str,
    problems: &mut Problems,
) -> Option<u32> {
    source.checked_or(problems, value, key, default, |&n| {
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("{n} is out of range (1-{max}{note})"))
    })
}

/// A secret setting looked up (relative files from `base_dir`); None, and a problem, when
/// it cannot be.
pub(crate) fn secret(
    source: &Source<'_>,
    spanned: &Spanned<SecretRef>,
    key: &str,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<SecretString> {
    spanned
        .get_ref()
        .resolve(base_dir)
        .map_err(|err| source.report_secret(problems, spanned, key, err.to_string()))
        .ok()
}

/// A duration setting (`"90m"`, `"7d"`): `default` when unset; with `positive`, zero is
/// refused. None, and a problem, when it is not a (usable) duration.
pub(crate) fn duration(
    source: &Source<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    (default, positive): (Duration, bool),
    problems: &mut Problems,
) -> Option<Duration> {
    source.checked_or(
        problems,
        value,
        key,
        default,
        |text| match parse_duration(text)? {
            duration if positive && duration.is_zero() => Err("must be longer than 0s".to_owned()),
            duration => Ok(duration),
        },
    )
}

/// Whether `spanned` has more than white space; a problem saying `message` when not.
pub(crate) fn non_empty(
    source: &Source<'_>,
    spanned: &Spanned<String>,
    key: &str,
    message: &str,
    problems: &mut Problems,
) -> bool {
    let filled = !spanned.get_ref().trim().is_empty();
    if !filled {
        source.report(problems, spanned, key, message);
    }
    filled
}

/// Checks a percentage (`max_delete_percent` and the like): a number from 0 to 100.
pub fn percent(percent: f64) -> Result<(), String> {
    if (0.0..=100.0).contains(&percent) {
        Ok(())
    } else {
        Err(format!("must be between 0 and 100, got {percent}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_without_query() {
        assert!(endpoint_url("https://idp.example/base", false).is_ok());
        assert!(endpoint_url("http://127.0.0.1:8080", true).is_ok());
        assert_eq!(
            endpoint_url("https://idp.example/?a=b", false).unwrap_err(),
            "`https://idp.example/?a=b` must not have a query or fragment"
        );
        assert_eq!(
            endpoint_url("mailto:x@example.com", false).unwrap_err(),
            "`mailto:x@example.com` must be an https:// URL"
        );
        assert!(
            endpoint_url("nope", false)
                .unwrap_err()
                .starts_with("`nope` is not a URL: ")
        );
    }
}
