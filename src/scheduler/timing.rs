//! When a connector runs: the next fire time of its cron schedule, and the stable jitter
//! added to it (a hash of the connector and the fire time, so every node agrees).

use std::hash::Hasher;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};

use crate::config::{Schedule, ScheduleZone};

/// The next fire time of `schedule`, read in `timezone`, strictly after
/// `after`; `None` when it never fires again.
///
/// Across a daylight-saving change, crontab's rule: a schedule that names times
/// of day ([`Schedule::fixed_times`], such as `30 2 * * *` or `0,30 2 * * *`)
/// runs once. Its times that the clocks skip run when they have gone forward (at
/// the end of the gap), and its times that happen twice run the first time only.
/// A schedule whose minute or hour is `*`-based (`*/15 * * * *`) follows the
/// clock: nothing at the times skipped, both passes of the times repeated
/// (croner's walk in the zone).
pub fn next_fire(
    schedule: &Schedule,
    timezone: ScheduleZone,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match timezone {
        ScheduleZone::Fixed(offset) => in_zone(schedule, &after.with_timezone(&offset)),
        ScheduleZone::Named(zone) if schedule.fixed_times => on_the_wall(schedule, zone, after),
        ScheduleZone::Named(zone) => in_zone(schedule, &after.with_timezone(&zone)),
    }
}

/// croner's next fire after `after`, walked in `after`'s zone.
fn in_zone<Z: TimeZone>(schedule: &Schedule, after: &DateTime<Z>) -> Option<DateTime<Utc>> {
    schedule
        .cron
        .find_next_occurrence(after, false)
        .ok()
        .map(|fire| fire.with_timezone(&Utc))
}

/// The next fire of a schedule of fixed times: the next matching wall clock
/// time after `after`'s, placed in `zone`: at the end of the gap when the
/// clocks skip it, at its first pass when they repeat it.
fn on_the_wall(
    schedule: &Schedule,
    zone: chrono_tz::Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut wall = after.with_timezone(&zone).naive_local();
    // A candidate at or before `after` is a repeated time whose first pass is over;
    // the wall clock leaves a repeated range within hours, so this ends.
    loop {
        wall = schedule.cron.find_next_occurrence(&wall, false).ok()?;
        let fire = match zone.from_local_datetime(&wall) {
            LocalResult::Single(fire) | LocalResult::Ambiguous(fire, _) => fire,
            LocalResult::None => end_of_gap(zone, wall)?,
        };
        let fire = fire.with_timezone(&Utc);
        if fire > after {
            return Some(fire);
        }
    }
}

/// The first instant after the gap that `wall` falls in: the first whole minute
/// after it that the zone's clocks show (time zones move their clocks on whole
/// minutes).
fn end_of_gap(zone: chrono_tz::Tz, wall: NaiveDateTime) -> Option<DateTime<chrono_tz::Tz>> {
    let minute = wall.with_second(0)?.with_nanosecond(0)?;
    (1..=24 * 60).find_map(|step| {
        let later = minute.checked_add_signed(TimeDelta::minutes(step))?;
        zone.from_local_datetime(&later).earliest()
    })
}

/// The delay in `[0, jitter)` added to `connector`'s fire at `fire`, in
/// whole milliseconds (tokio's timer resolution): a hash of both, so it is
/// stable across runs and processes (zero when `jitter` is under 1 ms).
pub fn jitter_delay(connector: &str, fire: DateTime<Utc>, jitter: Duration) -> Duration {
    let range = jitter.as_millis().min(u128::from(u64::MAX));
    if range == 0 {
        return Duration::ZERO;
    }
    let mut hasher = Fnv1a::default();
    hasher.write(connector.as_bytes());
    hasher.write_u8(0xff);
    hasher.write_i64(fire.timestamp());
    hasher.write_u32(fire.timestamp_subsec_nanos());
    let hash = u128::from(mix(hasher.finish()));
    // `hash % range` < range <= u64::MAX.
    Duration::from_millis(u64::try_from(hash % range).unwrap_or(0))
}

/// FNV-1a (64 bits): a fixed, portable hash (std's hasher may change
/// between releases).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// splitmix64's finaliser, to spread FNV's low bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
