//! The run metrics the daemon keeps: each finished run counted with what it changed, and
//! the held gauge refreshed from the database (held pull runs and held SCIM tenants).
//! The registry itself is `crate::metrics`, which depends on nothing above it.

use crate::metrics;

/// Counts a finished run: its outcome, what it changed, and whether it is held.
pub fn record_run(connector: &str, report: &crate::sync::RunReport) {
    metrics::RUNS
        .with_label_values(&[connector, report.outcome.as_str()])
        .inc();
    let counts = &report.counts;
    if !report.dry_run && report.outcome != crate::store::runs::Outcome::Held {
        let created = counts.users_created + counts.groups_created;
        let updated = counts.users_updated + counts.groups_updated;
        let removed = counts.users_disabled + counts.users_deleted + counts.groups_deleted;
        for (change, n) in [
            ("created", created),
            ("updated", updated),
            ("removed", removed),
        ] {
            metrics::RECORDS
                .with_label_values(&[connector, change])
                .inc_by(n);
        }
    }
    metrics::HELD.with_label_values(&[connector]).set(i64::from(
        report.outcome == crate::store::runs::Outcome::Held,
    ));
}

/// Sets the held gauge from the database: held pull runs and held SCIM tenants.
pub async fn refresh_held(db: &crate::db::Db) {
    metrics::HELD.reset();
    if let Ok(runs) = crate::store::runs::held_runs(db.pool()).await {
        for run in runs {
            metrics::HELD
                .with_label_values(&[run.connector.as_str()])
                .set(1);
        }
    }
    if let Ok(holds) = crate::store::holds::list(db).await {
        for hold in holds {
            metrics::HELD
                .with_label_values(&[hold.tenant.as_str()])
                .set(1);
        }
    }
}
