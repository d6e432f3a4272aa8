//! The wall clock, read in one place. Everything that needs the current time (timestamps
//! stored in the database, token expiry, JWT `iat`/`exp`, `Retry-After` dates, cron
//! schedules) asks here, so the rule is easy to see and a test double has one seam;
//! clippy's `disallowed-methods` (clippy.toml) refuses `Utc::now` and `SystemTime::now`
//! anywhere else. Monotonic time (`Instant`, tokio's clock) is not wall-clock time and is
//! read where it is used.

use std::time::SystemTime;

use chrono::{DateTime, Utc};

/// Now, as a UTC date-time.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place the wall clock is read"
)]
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Now, as a `SystemTime` (for APIs that take one: HTTP dates, JWT claims).
#[allow(
    clippy::disallowed_methods,
    reason = "the one place the wall clock is read"
)]
pub fn system_now() -> SystemTime {
    SystemTime::now()
}
