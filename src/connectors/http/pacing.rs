//! Slowing down before a provider says 429, from the rate-limit headers of its answers.
//!
//! Two header families say how much of a bucket is left and when it refills:
//!
//! * `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (UTC epoch seconds), as Okta sends on
//!   every answer for the endpoint's bucket, which other integrations of the org share
//!   (<https://developer.okta.com/docs/reference/rl-best-practices/>; the sharing is
//!   observed, not documented);
//! * `RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until the reset), the IETF
//!   HTTPAPI draft's fields that gateways in front of self-hosted providers send
//!   (<https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/>).
//!
//! When less than a tenth of the bucket is left, the remaining requests are spread evenly
//! until the reset. (A 429 itself is retried by the client, which waits for `Retry-After`
//! or `X-Rate-Limit-Reset`.)

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::connectors::checkpoint::server_time;

/// The longest pause before one request.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The bucket an answer reports: (limit, remaining, time until the reset).
fn bucket(headers: &HeaderMap, now: SystemTime) -> Option<(u64, u64, Duration)> {
    if let (Some(limit), Some(remaining), Some(reset)) = (
        header_u64(headers, "x-rate-limit-limit"),
        header_u64(headers, "x-rate-limit-remaining"),
        header_u64(headers, "x-rate-limit-reset"),
    ) {
        let reset = SystemTime::UNIX_EPOCH + Duration::from_secs(reset);
        let server_now = server_time(headers).unwrap_or(now);
        return Some((limit, remaining, reset.duration_since(server_now).ok()?));
    }
    let limit = header_u64(headers, "ratelimit-limit")?;
    let remaining = header_u64(headers, "ratelimit-remaining")?;
    let reset = Duration::from_secs(header_u64(headers, "ratelimit-reset")?);
    Some((limit, remaining, reset))
}

/// How long to wait before the next request, given the last answer's headers; `None`
/// when plenty of the bucket is left (or the headers are missing).
pub fn pause(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let (limit, remaining, window) = bucket(headers, now)?;
    if limit == 0 || remaining.saturating_mul(10) >= limit {
        return None;
    }
    let pause = window / u32::try_from(remaining + 1).unwrap_or(u32::MAX);
    (!pause.is_zero()).then_some(pause.min(MAX_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{DATE, HeaderValue};

    fn headers(limit: u64, remaining: u64, reset: u64, date: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-limit", HeaderValue::from(limit));
        h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
        h.insert("x-rate-limit-reset", HeaderValue::from(reset));
        if let Some(date) = date {
            h.insert(DATE, HeaderValue::from_str(date).unwrap());
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn plenty_left_means_no_pause() {
        assert_eq!(
            pause(&headers(600, 599, 1_000_060, None), at(1_000_000)),
            None
        );
        assert_eq!(
            pause(&headers(600, 60, 1_000_060, None), at(1_000_000)),
            None
        );
        assert_eq!(pause(&HeaderMap::new(), at(1_000_000)), None);
    }

    #[test]
    fn a_low_bucket_spreads_the_rest_until_the_reset() {
        // 59 left of 600, reset in 60 s: one request a second.
        assert_eq!(
            pause(&headers(600, 59, 1_000_060, None), at(1_000_000)),
            Some(Duration::from_secs(1))
        );
        // Nothing left: wait for the reset, measured on the server's clock.
        let date = httpdate::fmt_http_date(at(1_000_030));
        assert_eq!(
            pause(&headers(600, 0, 1_000_060, Some(&date)), at(1_000_000)),
            Some(Duration::from_secs(30))
        );
        // Capped, and nothing when the reset has passed.
        assert_eq!(
            pause(&headers(600, 0, 1_001_000, None), at(1_000_000)),
            Some(MAX_PAUSE)
        );
        assert_eq!(pause(&headers(600, 0, 999_000, None), at(1_000_000)), None);
    }

    #[test]
    fn the_draft_standard_fields_count_the_reset_in_seconds() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", HeaderValue::from(100u64));
        h.insert("ratelimit-remaining", HeaderValue::from(4u64));
        h.insert("ratelimit-reset", HeaderValue::from(10u64));
        // 4 left, reset in 10 s: one request every 2 s.
        assert_eq!(pause(&h, at(1_000_000)), Some(Duration::from_secs(2)));
        h.insert("ratelimit-remaining", HeaderValue::from(50u64));
        assert_eq!(pause(&h, at(1_000_000)), None);
    }
}
