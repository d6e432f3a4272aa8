//! The checkpoint of the connectors that read a change feed by time (Okta's `lastUpdated`
//! filters, Keycloak's admin events, Google's Reports API): when the next incremental read
//! starts, when the last full read happened, and a fingerprint of the settings that shape a
//! read. Each connector decides with [`plan`] between a full and an incremental read.
//!
//! Stored as JSON, for example
//! `{"v":1,"since":"2026-05-01T09:59:00.000Z","full_read_at":"2026-05-01T02:00:00.000Z","settings":"3f0c…"}`.
//! `since` is the server time of the start of the last complete read, less the connector's
//! overlap ([`OVERLAP`] for Okta and Keycloak): everything changed after the last read
//! began is dated later, whatever the order the pages were read in.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Version of the checkpoint format.
const VERSION: u32 = 1;

/// How far before the last read's start the next incremental read looks, by default:
/// absorbs the one-second resolution of `Date`, clock differences between the provider's
/// servers and writes committed while the last read ran. Records seen twice are merged
/// idempotently. A feed that lags (Google's Reports API) passes a longer overlap.
pub const OVERLAP: Duration = Duration::from_secs(60);

/// A checkpoint's own clock reading may be this far in the future (local clock skew)
/// before the checkpoint is distrusted.
const FUTURE_TOLERANCE: Duration = Duration::from_secs(3600);

/// What the connector stores after a complete read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    v: u32,
    /// Incremental reads ask for records updated after this (RFC 3339, ms, `Z`).
    pub since: String,
    /// When the last full read started (local clock, RFC 3339).
    pub full_read_at: String,
    /// The connector's settings fingerprint when the checkpoint was made.
    pub settings: String,
}

/// How the next read goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Read everything; the reason is logged.
    Full { reason: &'static str },
    /// Read what changed after `since`; keep `full_read_at`.
    Delta { since: String, full_read_at: String },
}

impl Checkpoint {
    /// The checkpoint of a read that started at `server_start` (server clock) and whose
    /// last full read started at `full_read_at` (local clock); the next read looks back
    /// [`OVERLAP`] before `server_start`.
    pub fn new(server_start: SystemTime, full_read_at: SystemTime, settings: &str) -> Checkpoint {
        Checkpoint::with_overlap(server_start, full_read_at, settings, OVERLAP)
    }

    /// As [`Checkpoint::new`], looking back `overlap` instead.
    pub fn with_overlap(
        server_start: SystemTime,
        full_read_at: SystemTime,
        settings: &str,
        overlap: Duration,
    ) -> Checkpoint {
        Checkpoint {
            v: VERSION,
            since: rfc3339_millis(server_start.checked_sub(overlap).unwrap_or(server_start)),
            full_read_at: rfc3339_millis(full_read_at),
            settings: settings.to_string(),
        }
    }

    /// The JSON text stored by the engine.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Decides between a full and an incremental read.
pub fn plan(
    stored: Option<&str>,
    settings: &str,
    now: SystemTime,
    full_sync_every: Duration,
) -> Plan {
    let Some(text) = stored else {
        return Plan::Full {
            reason: "no checkpoint (first read)",
        };
    };
    let Ok(checkpoint) = serde_json::from_str::<Checkpoint>(text) else {
        return Plan::Full {
            reason: "the checkpoint is unusable",
        };
    };
    let (Some(since), Some(full_read_at)) = (
        parse_time(&checkpoint.since),
        parse_time(&checkpoint.full_read_at),
    ) else {
        return Plan::Full {
            reason: "the checkpoint is unusable",
        };
    };
    if checkpoint.v != VERSION {
        return Plan::Full {
            reason: "the checkpoint is of another version",
        };
    }
    if checkpoint.settings != settings {
        return Plan::Full {
            reason: "the settings that shape a read changed",
        };
    }
    let future = now + FUTURE_TOLERANCE;
    if full_read_at > future || since > future {
        return Plan::Full {
            reason: "the checkpoint lies in the future",
        };
    }
    if now.duration_since(full_read_at).unwrap_or(Duration::ZERO) >= full_sync_every {
        return Plan::Full {
            reason: "the last full read is older than full_sync_every",
        };
    }
    Plan::Delta {
        since: rfc3339_millis(since),
        full_read_at: checkpoint.full_read_at,
    }
}

/// The server's clock, from an answer's `Date` header: a checkpoint's `since` is taken on
/// the clock that dates the changes.
pub fn server_time(headers: &reqwest::header::HeaderMap) -> Option<SystemTime> {
    let value = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

/// A time as the checkpoint (and Okta's filters, and Google's `startTime`) write it:
/// RFC 3339 UTC with milliseconds and `Z`.
pub fn rfc3339_millis(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(text: &str) -> SystemTime {
        parse_time(text).expect("time")
    }

    #[test]
    fn times_are_written_the_way_okta_filters_want_them() {
        assert_eq!(
            rfc3339_millis(at("2026-05-01T10:00:00.5+02:00")),
            "2026-05-01T08:00:00.500Z"
        );
        let checkpoint = Checkpoint::new(
            at("2026-05-01T10:00:00Z"),
            at("2026-05-01T02:00:00Z"),
            "abc",
        );
        assert_eq!(
            checkpoint.encode(),
            r#"{"v":1,"since":"2026-05-01T09:59:00.000Z","full_read_at":"2026-05-01T02:00:00.000Z","settings":"abc"}"#
        );
    }

    #[test]
    fn a_fresh_checkpoint_reads_incrementally_from_its_since() {
        let stored = Checkpoint::new(
            at("2026-05-01T10:00:00Z"),
            at("2026-05-01T02:00:00Z"),
            "abc",
        )
        .encode();
        assert_eq!(
            plan(Some(&stored), "abc", at("2026-05-01T11:00:00Z"), DAY),
            Plan::Delta {
                since: "2026-05-01T09:59:00.000Z".into(),
                full_read_at: "2026-05-01T02:00:00.000Z".into(),
            }
        );
    }

    #[test]
    fn full_reads_and_their_reasons() {
        let stored = Checkpoint::new(
            at("2026-05-01T10:00:00Z"),
            at("2026-05-01T02:00:00Z"),
            "abc",
        )
        .encode();
        let reason = |stored: Option<&str>, settings: &str, now: &str| match plan(
            stored,
            settings,
            at(now),
            DAY,
        ) {
            Plan::Full { reason } => reason,
            Plan::Delta { .. } => "delta",
        };
        assert_eq!(
            reason(None, "abc", "2026-05-01T11:00:00Z"),
            "no checkpoint (first read)"
        );
        assert_eq!(
            reason(Some("not json"), "abc", "2026-05-01T11:00:00Z"),
            "the checkpoint is unusable"
        );
        assert_eq!(
            reason(
                Some(
                    r#"{"v":1,"since":"yesterday","full_read_at":"2026-05-01T02:00:00.000Z","settings":"abc"}"#
                ),
                "abc",
                "2026-05-01T11:00:00Z"
            ),
            "the checkpoint is unusable"
        );
        assert_eq!(
            reason(
                Some(&stored.replace("\"v\":1", "\"v\":7")),
                "abc",
                "2026-05-01T11:00:00Z"
            ),
            "the checkpoint is of another version"
        );
        assert_eq!(
            reason(Some(&stored), "xyz", "2026-05-01T11:00:00Z"),
            "the settings that shape a read changed"
        );
        assert_eq!(
            reason(Some(&stored), "abc", "2026-05-02T02:00:00Z"),
            "the last full read is older than full_sync_every"
        );
        assert_eq!(
            reason(Some(&stored), "abc", "2026-05-02T01:59:59Z"),
            "delta"
        );
        assert_eq!(
            match plan(
                Some(&stored),
                "abc",
                at("2026-05-01T10:00:01Z"),
                Duration::ZERO
            ) {
                Plan::Full { reason } => reason,
                Plan::Delta { .. } => "delta",
            },
            "the last full read is older than full_sync_every",
            "zero: every read is full"
        );
        assert_eq!(
            reason(Some(&stored), "abc", "2026-04-30T00:00:00Z"),
            "the checkpoint lies in the future"
        );
    }
}
