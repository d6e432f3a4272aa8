//! When the event writer trims a tenant's log: at most once per [`TRIM_INTERVAL`] per
//! tenant rather than after every batch. A trim is three statements and a write
//! transaction (on SQLite it takes the one write lock the requests' writes queue for), so
//! under load trimming after every stored write cost about as many round trips as the
//! write's own event. The price: a tenant's log may hold up to one interval's worth of
//! events beyond its retention until the next trim (and a flush trims every tenant due).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A tenant is trimmed at most this often (unless flushed).
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Tenants with events not yet trimmed, and when each was last trimmed.
#[derive(Debug)]
pub struct TrimSchedule {
    interval: Duration,
    pending: HashSet<String>,
    last: HashMap<String, Instant>,
}

impl TrimSchedule {
    pub fn new(interval: Duration) -> TrimSchedule {
        TrimSchedule {
            interval,
            pending: HashSet::new(),
            last: HashMap::new(),
        }
    }

    /// `tenant` has events beyond what its last trim saw.
    pub fn touch(&mut self, tenant: &str) {
        if !self.pending.contains(tenant) {
            self.pending.insert(tenant.to_string());
        }
    }

    /// Takes the tenants to trim at `now`: all pending ones when `all` (a flush), else
    /// those not trimmed within the interval (or never). They count as trimmed at `now`.
    pub fn take_due(&mut self, now: Instant, all: bool) -> Vec<String> {
        let interval = self.interval;
        let last = &self.last;
        let mut due: Vec<String> = self
            .pending
            .iter()
            .filter(|t| {
                all || last
                    .get(*t)
                    .is_none_or(|at| now.duration_since(*at) >= interval)
            })
            .cloned()
            .collect();
        due.sort_unstable();
        for tenant in &due {
            self.pending.remove(tenant);
            self.last.insert(tenant.clone(), now);
        }
        due
    }

    /// When the next pending tenant falls due (None when nothing waits).
    pub fn next_due(&self) -> Option<Instant> {
        self.pending
            .iter()
            .map(|t| {
                self.last
                    .get(t)
                    .map_or_else(Instant::now, |at| *at + self.interval)
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_trimmed_at_most_once_per_interval() {
        let start = Instant::now();
        let mut schedule = TrimSchedule::new(Duration::from_secs(1));
        assert_eq!(schedule.next_due(), None);
        schedule.touch("acme");
        // Never trimmed: due at once.
        assert_eq!(schedule.take_due(start, false), ["acme"]);
        // More writes within the interval: not trimmed again before it ends.
        for ms in [1, 10, 500, 999] {
            schedule.touch("acme");
            let now = start + Duration::from_millis(ms);
            assert!(schedule.take_due(now, false).is_empty(), "at {ms} ms");
        }
        assert_eq!(schedule.next_due(), Some(start + Duration::from_secs(1)));
        assert_eq!(
            schedule.take_due(start + Duration::from_secs(1), false),
            ["acme"]
        );
        // Nothing new since: nothing to trim, however long it has been.
        assert!(
            schedule
                .take_due(start + Duration::from_secs(60), false)
                .is_empty()
        );
        assert_eq!(schedule.next_due(), None);
    }

    #[test]
    fn a_flush_trims_every_pending_tenant_and_tenants_wait_apart() {
        let start = Instant::now();
        let mut schedule = TrimSchedule::new(Duration::from_secs(1));
        schedule.touch("acme");
        schedule.take_due(start, false);
        schedule.touch("acme");
        schedule.touch("beta");
        // beta was never trimmed; acme was just now.
        let soon = start + Duration::from_millis(10);
        assert_eq!(schedule.take_due(soon, false), ["beta"]);
        schedule.touch("beta");
        assert_eq!(schedule.take_due(soon, true), ["acme", "beta"]);
        assert!(schedule.take_due(soon, true).is_empty());
    }
}
