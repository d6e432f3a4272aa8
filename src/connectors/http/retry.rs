//! Retry decisions: which answers are retried and how long to wait first.
//!
//! Retried: 429, 5xx and connection errors. Waits come from `Retry-After`
//! (seconds, fractional seconds as Graph sends, or an HTTP date), from Okta's
//! `X-Rate-Limit-Reset` when `X-Rate-Limit-Remaining` is 0, or else from an
//! exponential backoff with jitter. Everything here is pure and unit-tested.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};

/// Shape of the exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry (before jitter).
    pub base_delay: Duration,
    /// Largest computed backoff (server-given waits are not capped).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `attempt` (1-based): half the exponential
    /// value plus a random part of the other half ("equal jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)))
            .min(self.max_delay);
        let half = exp / 2;
        half + random_up_to(half)
    }
}

/// Whether an answer with this status is worth retrying.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Wait the server asks for, if any: `Retry-After`, then Okta's reset header.
pub(crate) fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok())
        && let Some(delay) = parse_retry_after(value, now)
    {
        return Some(delay);
    }
    okta_reset_delay(headers, now)
}

/// Parses a `Retry-After` value: seconds (`2`, `2.128`) or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Duration::try_from_secs_f64(secs).ok();
        }
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Okta: when `X-Rate-Limit-Remaining` is 0, wait until `X-Rate-Limit-Reset`
/// (epoch seconds), measured against the server's `Date` to absorb skew.
fn okta_reset_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let remaining = header_u64(headers, "x-rate-limit-remaining")?;
    if remaining != 0 {
        return None;
    }
    let reset =
        SystemTime::UNIX_EPOCH + Duration::from_secs(header_u64(headers, "x-rate-limit-reset")?);
    let server_now = headers
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or(now);
    Some(reset.duration_since(server_now).unwrap_or(Duration::ZERO))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A small random extra wait added to server-given delays so that many
/// clients do not come back at the same instant.
pub(crate) fn small_jitter() -> Duration {
    random_up_to(Duration::from_millis(250))
}

/// A pseudo-random duration in `[0, max]` (std-only; quality is irrelevant).
fn random_up_to(max: Duration) -> Duration {
    let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    let seed = crate::clock::system_now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let r = RandomState::new().hash_one(seed);
    Duration::from_nanos(r % (nanos + 1))
}

#[cfg(test)]
mod unit {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_seconds_fraction_and_date() {
        let now = at(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 2.128 ", now),
            Some(Duration::from_millis(2128))
        );
        let date = httpdate::fmt_http_date(at(1_700_000_030));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(at(1_600_000_000));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn okta_reset_uses_server_date() {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
        h.insert("x-rate-limit-reset", HeaderValue::from_static("1700000010"));
        let date = httpdate::fmt_http_date(at(1_700_000_004));
        h.insert(DATE, HeaderValue::from_str(&date).unwrap());
        // Local clock is far off; the server's Date wins.
        assert_eq!(server_delay(&h, at(1_000)), Some(Duration::from_secs(6)));
        h.insert("x-rate-limit-remaining", HeaderValue::from_static("5"));
        assert_eq!(server_delay(&h, at(1_000)), None);
    }

    #[test]
    fn retry_after_wins_over_okta_headers() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
        h.insert("x-rate-limit-reset", HeaderValue::from_static("1700000100"));
        assert_eq!(
            server_delay(&h, at(1_700_000_000)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        };
        for _ in 0..20 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
            let d3 = p.backoff(3);
            assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4));
            let d30 = p.backoff(30);
            assert!(d30 >= Duration::from_secs(4) && d30 <= Duration::from_secs(8));
        }
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable(StatusCode::BAD_GATEWAY));
        assert!(!is_retryable(StatusCode::FORBIDDEN));
        assert!(!is_retryable(StatusCode::UNAUTHORIZED));
        assert!(!is_retryable(StatusCode::NOT_FOUND));
    }
}
