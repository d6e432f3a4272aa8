//! When a connector runs: the next fire time of its cron schedule, and the stable jitter
//! added to it (a hash of the connector and the fire time, so every node agrees).

use std::hash::Hasher;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Schedule, ScheduleZone};

/// The next fire time of `schedule`, read in `timezone`, strictly after
/// `after`; `None` when it never fires again.
///
/// The schedule is walked on the zone's wall clock (croner). Across a
/// daylight-saving change a schedule at one fixed time of day (`30 2 * * *`)
/// runs once: when its time is skipped (clocks go forward) it runs at the
/// first instant after the gap, and when its time happens twice (clocks go
/// back) it runs at the first of the two. Schedules that repeat within the
/// day (`*/15 * * * *`) follow the clock: nothing in a skipped hour, both
/// passes of a repeated one.
pub fn next_fire(
    schedule: &Schedule,
    timezone: ScheduleZone,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let next = match timezone {
        ScheduleZone::Fixed(offset) => schedule
            .cron
            .find_next_occurrence(&after.with_timezone(&offset), false)
            .map(|fire| fire.with_timezone(&Utc)),
        ScheduleZone::Named(zone) => schedule
            .cron
            .find_next_occurrence(&after.with_timezone(&zone), false)
            .map(|fire| fire.with_timezone(&Utc)),
    };
    next.ok()
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
