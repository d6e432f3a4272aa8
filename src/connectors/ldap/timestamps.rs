//! Incremental reads by `modifyTimestamp`, for OpenLDAP servers that keep no change
//! marker (no syncprov overlay, so no `contextCSN` and no content sync) and for 389-ds.
//!
//! The marker is the highest `modifyTimestamp` or `createTimestamp` the server itself put
//! on the entries of the last read (asked for by name, as they are operational), never
//! the client's clock. The next read asks for entries stamped at or after the marker
//! minus [`MARGIN_SECS`] and minus how long the last read took:
//!
//! * timestamps have a resolution of one second, so changes in the marker's own second
//!   (made after the entry carrying it was read) must be read again;
//! * replicas stamp changes with their own clocks, and a provider read after a failover
//!   may be a few seconds behind the one read before;
//! * a change made during a paged read to an entry already passed carries a time earlier
//!   than entries read later, by at most the read's duration (measured on the client's
//!   monotonic clock, which no skew affects).
//!
//! Entries read again because of the margin are harmless: the mirror compares them and
//! finds nothing to change. What a timestamp filter cannot show (deletions, entries moved
//! out of the bases or out of the filters) is found by the listing of every DN and id each
//! incremental read makes (`reader.rs`), as with the other change filters (`changes.rs`),
//! and a full read still runs at least every `full_read_every`.

use std::time::Instant;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use super::changes::searched;
use super::directory::Entry;
use super::reader::Reader;
use super::settings::LdapSettings;
use crate::connectors::{BatchSink, ConnectorError, ReadMode, ReadSummary};

/// How far before the marker the next read starts (besides the last read's duration):
/// the one-second resolution of the timestamps and clock differences between replicas.
pub const MARGIN_SECS: i64 = 60;

/// The operational attributes a read asks for when this method is in use.
pub const ATTRIBUTES: [&str; 2] = ["modifyTimestamp", "createTimestamp"];

/// What the checkpoint's `method` says for this method; checkpoints of the other
/// methods have none.
const METHOD: &str = "modifyTimestamp";

/// A GeneralizedTime (RFC 4517 section 3.3.13) as a point in time: seconds since the
/// Unix epoch (UTC) and nanoseconds, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub secs: i64,
    pub nanos: u32,
}

/// Parses a GeneralizedTime: `YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|+hh[mm]|-hh[mm])`.
/// A fraction applies to the last unit given (RFC 4517); servers send `Z` with whole
/// seconds (OpenLDAP, 389-ds) or a fraction of seconds (Active Directory's `.0Z`).
pub fn parse(value: &str) -> Option<Stamp> {
    let value = value.trim();
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    if !matches!(digits, 10 | 12 | 14) {
        return None;
    }
    let number =
        |from: usize, len: usize| -> Option<u32> { value.get(from..from + len)?.parse().ok() };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let (month, day, hour) = (number(4, 2)?, number(6, 2)?, number(8, 2)?);
    let minute = if digits >= 12 { number(10, 2)? } else { 0 };
    // A leap second (60) counts as the second before it.
    let second = if digits == 14 {
        number(12, 2)?.min(59)
    } else {
        0
    };
    let mut rest = &value[digits..];
    let mut fraction_nanos: i64 = 0;
    if let Some(after) = rest.strip_prefix(['.', ',']) {
        let len = after.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let unit: i64 = match digits {
            10 => 3_600_000_000_000,
            12 => 60_000_000_000,
            _ => 1_000_000_000,
        };
        // Up to nanoseconds; further digits add nothing that matters here.
        let mut scaled: i64 = 0;
        let mut scale: i64 = 1;
        for digit in after.bytes().take(len.min(15)) {
            scaled = scaled * 10 + i64::from(digit - b'0');
            scale *= 10;
        }
        fraction_nanos =
            i64::try_from(i128::from(scaled) * i128::from(unit) / i128::from(scale)).ok()?;
        rest = &after[len..];
    }
    let offset_secs: i64 = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = &rest[1..];
            if !matches!(zone.len(), 2 | 4) || !zone.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = zone[..2].parse().ok()?;
            let minutes: i64 = if zone.len() == 4 {
                zone[2..].parse().ok()?
            } else {
                0
            };
            sign * (hours * 3_600 + minutes * 60)
        }
    };
    let local = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)?;
    let total_nanos = (local.and_utc().timestamp() - offset_secs)
        .checked_mul(1_000_000_000)?
        .checked_add(fraction_nanos)?;
    Some(Stamp {
        secs: total_nanos.div_euclid(1_000_000_000),
        nanos: u32::try_from(total_nanos.rem_euclid(1_000_000_000)).ok()?,
    })
}

/// `secs` (Unix, UTC) as a GeneralizedTime of whole seconds in UTC (`...Z`), the form
/// every server's ordering match takes.
pub fn format(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y%m%d%H%M%SZ").to_string())
}

/// The filter clause of entries stamped at or after `marker` minus the margin and
/// `window` (the duration of the read that found the marker, in seconds).
pub fn changed_since(marker: &str, window: u64) -> Option<String> {
    let stamp = parse(marker)?;
    let back = MARGIN_SECS.checked_add(i64::try_from(window).ok()?)?;
    let since = format(stamp.secs.checked_sub(back)?)?;
    Some(format!(
        "(|(modifyTimestamp>={since})(createTimestamp>={since}))"
    ))
}

/// The highest timestamp on the entries read, with the value as the server wrote it.
#[derive(Debug, Clone, Default)]
pub struct Highest {
    seen: Option<(Stamp, String)>,
}

impl Highest {
    /// Notes `entry`'s `modifyTimestamp` and `createTimestamp`.
    pub fn note(&mut self, entry: &Entry) {
        for attribute in ATTRIBUTES {
            for value in entry.values(attribute) {
                self.offer(value);
            }
        }
    }

    /// Notes one timestamp value; one that cannot be read is ignored.
    pub fn offer(&mut self, value: &str) {
        let Some(stamp) = parse(value) else { return };
        if self.seen.as_ref().is_none_or(|(seen, _)| stamp > *seen) {
            self.seen = Some((stamp, value.trim().to_owned()));
        }
    }

    /// The highest value seen, as the server wrote it.
    pub fn value(&self) -> Option<&str> {
        self.seen.as_ref().map(|(_, value)| value.as_str())
    }
}

/// The stored checkpoint of this method.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    /// [`METHOD`]; a checkpoint of another method means a full read.
    method: String,
    /// The database suffix holding the users' base (or that base).
    server: String,
    /// What was searched (`changes.rs`).
    searched: String,
    /// The highest timestamp read; empty when no entry carried one (the next read is
    /// full).
    marker: String,
    /// How long the read that found the marker took, in whole seconds (rounded up).
    window: u64,
    /// When the last full read started (Unix seconds, the client's clock: it only paces
    /// `full_read_every`).
    full_at: u64,
}

/// What this read is: the changed-since clause for an incremental read (`None`: a full
/// read), when the last full read started as of this one, and the stored marker (carried
/// forward when nothing newer is read).
pub fn plan(
    checkpoint: Option<&str>,
    server: &str,
    settings: &LdapSettings,
    now: u64,
) -> (Option<String>, u64, Option<String>) {
    let stored = checkpoint.and_then(|c| serde_json::from_str::<Checkpoint>(c).ok());
    match stored {
        Some(stored)
            if stored.method == METHOD
                && stored.server == server
                && stored.searched == searched(settings)
                && now.saturating_sub(stored.full_at) < settings.full_read_every.as_secs() =>
        {
            match changed_since(&stored.marker, stored.window) {
                Some(clause) => (Some(clause), stored.full_at, Some(stored.marker)),
                None => (None, now, None),
            }
        }
        _ => (None, now, None),
    }
}

/// The checkpoint to store after a complete read.
pub fn checkpoint(
    server: &str,
    settings: &LdapSettings,
    marker: Option<&str>,
    window: u64,
    full_at: u64,
) -> String {
    serde_json::json!({
        "method": METHOD,
        "server": server,
        "searched": searched(settings),
        "marker": marker.unwrap_or_default(),
        "window": window,
        "full_at": full_at,
    })
    .to_string()
}

impl Reader<'_> {
    /// A read by this method (`server` as [`plan`] takes it): full, or the entries
    /// stamped since the stored marker plus the listing of every DN and id; the
    /// checkpoint holds the highest timestamp read (or the stored one, if higher).
    pub(super) async fn read_by_timestamps(
        &mut self,
        checkpoint: Option<&str>,
        server: &str,
        now: u64,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        let (changed_since, full_at, stored) = plan(checkpoint, server, self.settings, now);
        let mode = match changed_since {
            Some(_) => ReadMode::Delta,
            None => ReadMode::Full,
        };
        self.changed_since = changed_since;
        let mut highest = Highest::default();
        if let Some(stored) = &stored {
            highest.offer(stored);
        }
        self.stamps = Some(highest);
        let started = Instant::now();
        self.read(sink).await?;
        let window = started.elapsed().as_secs().saturating_add(1);
        let highest = self.stamps.take().unwrap_or_default();
        if highest.value().is_none() {
            tracing::warn!(
                kind = super::KIND,
                "incremental: no entry read carries modifyTimestamp or createTimestamp \
                 (may the bind account read them?): the next read is full too"
            );
        }
        let next = self::checkpoint(server, self.settings, highest.value(), window, full_at);
        Ok(ReadSummary::complete(mode, Some(next)))
    }
}
