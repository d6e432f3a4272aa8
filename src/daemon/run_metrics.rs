//! The run metrics the daemon keeps: every configured connector's and SCIM tenant's series
//! started at zero (so that `/metrics` shows them before the first run, and a rate or an
//! absence alert has a series to work on), each finished run counted with what it changed,
//! when each pull connector last succeeded (starting from the run records in the database,
//! so that a restart neither hides a stale connector nor flags a fresh one), and the held
//! gauge refreshed from the database (held pull runs and held SCIM tenants).
//! The registry itself is `crate::metrics`, which depends on nothing above it.

use std::collections::BTreeSet;
use std::sync::{LazyLock, Mutex, PoisonError};

use tracing::warn;

use crate::config::{Config, ConnectorSettings};
use crate::metrics;
use crate::store::runs::Outcome;

/// The connector kinds whose API requests `idsync_idp_requests_total` counts (the
/// `metrics_label` of their HTTP clients); file and LDAP connectors make none.
const HTTP_KINDS: [&str; 4] = ["azure", "google", "keycloak", "okta"];

/// The enabled connectors the series were started for.
#[derive(Default)]
struct Known {
    /// Pull connectors: theirs is the last-success time.
    pull: BTreeSet<String>,
    /// Pull connectors and SCIM tenants: the held gauge is 0 or 1 for each.
    held: BTreeSet<String>,
}

static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Mutex::default);

fn known() -> std::sync::MutexGuard<'static, Known> {
    KNOWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the series of every enabled connector and tenant of `config` at zero, and each
/// pull connector's last-success time at its latest successful run in the database (0 when
/// it never had one). Disabled connectors never run, so they get no series to alert on.
/// Called at start-up; calling it again (a reload) adds the series of new connectors.
pub async fn initialise(config: &Config, db: &crate::db::Db) {
    let mut pull = BTreeSet::new();
    let mut held = BTreeSet::new();
    for connector in config.connectors.values().filter(|c| c.enabled) {
        let id = connector.id.as_str();
        held.insert(id.to_owned());
        if let ConnectorSettings::Scim(_) = connector.settings {
            // Statuses are open-ended, so the per-status counter appears with each status;
            // the latency histogram's `_count` is the tenant's total from zero.
            metrics::SCIM_SECONDS.with_label_values(&[id]);
            continue;
        }
        pull.insert(id.to_owned());
        for outcome in metrics::RUN_OUTCOMES {
            metrics::RUNS.with_label_values(&[id, outcome]);
        }
        for change in metrics::RECORD_CHANGES {
            metrics::RECORDS.with_label_values(&[id, change]);
        }
        metrics::RUN_SECONDS.with_label_values(&[id]);
        metrics::LAST_SUCCESS.with_label_values(&[id]);
        let kind = connector.settings.kind();
        if HTTP_KINDS.contains(&kind) {
            for outcome in metrics::IDP_OUTCOMES {
                metrics::IDP_REQUESTS.with_label_values(&[kind, outcome]);
            }
        }
    }
    match crate::store::runs::last_successes(db.pool()).await {
        Ok(found) => {
            for (connector, finished_at) in found {
                if !pull.contains(&connector) {
                    continue;
                }
                match chrono::DateTime::parse_from_rfc3339(&finished_at) {
                    Ok(at) => metrics::LAST_SUCCESS
                        .with_label_values(&[connector.as_str()])
                        .set(metrics::timestamp_seconds(at.to_utc())),
                    Err(error) => {
                        warn!(%connector, %finished_at, %error, "unreadable time of a run")
                    }
                }
            }
        }
        Err(error) => warn!(%error, "last successful runs not read; their metric starts at 0"),
    }
    {
        let mut known = known();
        known.pull.extend(pull);
        known.held.extend(held);
    }
    refresh_held(db).await;
}

/// Counts a finished run: its outcome, what it changed, whether it is held, and (for a pull
/// connector's real run that succeeded) when it last succeeded.
pub fn record_run(connector: &str, report: &crate::sync::RunReport) {
    metrics::RUNS
        .with_label_values(&[connector, report.outcome.as_str()])
        .inc();
    let counts = &report.counts;
    if !report.dry_run && report.outcome != Outcome::Held {
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
    metrics::HELD
        .with_label_values(&[connector])
        .set(i64::from(report.outcome == Outcome::Held));
    // A SCIM tenant's reconcile (confirming its hold) is no schedule to fall behind on.
    let succeeded = matches!(report.outcome, Outcome::Succeeded | Outcome::Unchanged);
    if succeeded && !report.dry_run && known().pull.contains(connector) {
        metrics::LAST_SUCCESS
            .with_label_values(&[connector])
            .set(metrics::timestamp_seconds(crate::clock::now()));
    }
}

/// Sets the held gauge from the database: held pull runs and held SCIM tenants at 1, the
/// other configured ones at 0.
pub async fn refresh_held(db: &crate::db::Db) {
    let mut held = BTreeSet::new();
    if let Ok(runs) = crate::store::runs::held_runs(db.pool()).await {
        held.extend(runs.into_iter().map(|run| run.connector));
    }
    if let Ok(holds) = crate::store::holds::list(db).await {
        held.extend(holds.into_iter().map(|hold| hold.tenant));
    }
    // No await from here on: a scrape never sees the gauge between reset and set.
    let known = known();
    metrics::HELD.reset();
    for id in &known.held {
        metrics::HELD.with_label_values(&[id.as_str()]).set(0);
    }
    for id in &held {
        metrics::HELD.with_label_values(&[id.as_str()]).set(1);
    }
}
