//! Where credentials may go: the origins (scheme, host, port) a client was configured for.
//!
//! A connector's [`super::HttpClient`] is pinned to the origin of its configured base URL;
//! every request URL, including paging links a server hands back (Okta's `Link`, Graph's
//! `@odata.nextLink` and delta links), must have that origin, or the request fails before
//! any header is sent. Token endpoints are their own origin and only ever receive the
//! client's secret or assertion. Configured URLs must be `https`; plain `http` is accepted
//! only for loopback hosts and only when the connector sets `allow_insecure_http = true`
//! (labs and tests).

use std::fmt;

use super::HttpError;
/// The URL rule the configuration checks and the connectors share lives with the other
/// typed checks; it is re-exported here because every request is held to it.
pub use crate::spec::check::{insecure_reason, is_loopback_host};

/// Scheme, host and port of a URL (port made explicit from the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of `url`; `None` for URLs without a host or a known port.
    pub fn of(url: &url::Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_ascii_lowercase(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// Whether the host is a loopback name or address (`localhost`, 127.0.0.0/8, `::1`).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Parses a configured URL (`what` names it) and checks that credentials may be sent to
/// it; returns its origin.
pub fn configured_origin(
    text: &str,
    what: &str,
    allow_insecure_http: bool,
) -> Result<Origin, HttpError> {
    let url = url::Url::parse(text).map_err(|e| HttpError::InvalidUrl {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(reason) = insecure_reason(&url, allow_insecure_http) {
        return Err(HttpError::Insecure {
            what: what.to_string(),
            url: super::redact_url(&url),
            reason,
        });
    }
    Origin::of(&url).ok_or_else(|| HttpError::InvalidUrl {
        what: what.to_string(),
        reason: "the URL has no host".to_string(),
    })
}

/// The configured URLs (of `urls`) that are plain `http`, redacted, for
/// [`warn_plain_http`].
pub fn plain_http_urls(urls: &[&str]) -> Vec<String> {
    urls.iter()
        .filter_map(|text| url::Url::parse(text).ok())
        .filter(|url| url.scheme() == "http")
        .map(|url| super::redact_url(&url))
        .collect()
}

/// Logs, at WARN, each plain-`http` URL a connector was allowed to use
/// (`allow_insecure_http`); connectors call it at the start of every read.
pub fn warn_plain_http(kind: &str, urls: &[String]) {
    for url in urls {
        tracing::warn!(
            kind,
            url = %url,
            "allow_insecure_http: credentials and directory data travel unencrypted over \
             plain http; use only in a lab"
        );
    }
}

/// `Ok` when `url` has one of `allowed` origins; else the error naming both.
pub fn check(url: &url::Url, allowed: &[Origin], what: &str) -> Result<(), HttpError> {
    let offered = Origin::of(url);
    if offered.as_ref().is_some_and(|o| allowed.contains(o)) {
        return Ok(());
    }
    Err(HttpError::ForeignOrigin {
        what: what.to_string(),
        expected: allowed
            .iter()
            .map(Origin::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
        offered: offered.map_or_else(|| super::redact_url(url), |o| o.to_string()),
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).expect("url")
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let base = Origin::of(&url("https://Acme.okta.com/api/v1")).unwrap();
        assert_eq!(base.to_string(), "https://acme.okta.com:443");
        let allowed = [base];
        assert!(
            check(
                &url("https://acme.okta.com:443/api/v1/users?after=x"),
                &allowed,
                "l"
            )
            .is_ok()
        );
        for other in [
            "http://acme.okta.com/api/v1/users",
            "https://acme.okta.com:8443/api/v1/users",
            "https://evil.example/api/v1/users",
            "https://acme.okta.com.evil.example/api/v1/users",
        ] {
            let err = check(&url(other), &allowed, "the next link").expect_err(other);
            let text = err.to_string();
            assert!(text.contains("https://acme.okta.com:443"), "{text}");
            assert!(text.contains("the next link"), "{text}");
        }
    }

    #[test]
    fn http_only_for_loopback_with_the_option() {
        assert_eq!(insecure_reason(&url("https://x.example"), false), None);
        assert_eq!(insecure_reason(&url("http://127.0.0.1:8080"), true), None);
        assert_eq!(insecure_reason(&url("http://[::1]:8080"), true), None);
        assert_eq!(insecure_reason(&url("http://localhost:8080"), true), None);
        assert!(insecure_reason(&url("http://127.0.0.1:8080"), false).is_some());
        assert!(insecure_reason(&url("http://10.0.0.1"), true).is_some());
        assert!(insecure_reason(&url("http://idp.example"), true).is_some());
        assert!(insecure_reason(&url("ftp://idp.example"), true).is_some());
        let err = configured_origin("http://idp.example", "okta.base_url", true).unwrap_err();
        assert!(err.to_string().contains("okta.base_url"), "{err}");
    }
}
