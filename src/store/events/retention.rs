//! How much of a tenant's event log is kept: accepted requests and requests rejected before
//! authentication (401, 403, 429) each under their own count, so a flood of rejected ones
//! never pushes accepted ones out, and nothing older than a maximum age. Every trim is a
//! range over an index (`scim_events_by_outcome`, `scim_events_by_age`).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::config::ScimTenantSettings;
use crate::db::{Context, DbError, param};

const CTX: &str = "trimming SCIM events";

/// One tenant's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Accepted requests kept, newest first.
    pub accepted: u64,
    /// Requests rejected before authentication kept, newest first.
    pub rejected: u64,
    /// Events older than this go, whatever their number.
    pub max_age: Duration,
}

impl Retention {
    /// A tenant's retention as its settings give it.
    pub fn of(settings: &ScimTenantSettings) -> Retention {
        Retention {
            accepted: settings.event_retention,
            rejected: settings.rejected_event_retention,
            max_age: settings.event_max_age,
        }
    }

    /// The default retention with `accepted` kept.
    pub fn keeping(accepted: u64) -> Retention {
        Retention {
            accepted,
            ..Retention::of(&ScimTenantSettings::default())
        }
    }
}

/// Deletes `tenant`'s events older than its maximum age at `now`, then all but the newest
/// of each outcome.
pub async fn trim(
    conn: &mut AnyConnection,
    tenant: &str,
    retention: &Retention,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let (p1, p2) = (param(conn, 1), param(conn, 2));
    // Timestamps are stored as fixed-width RFC 3339 UTC (`db::now_text`), so text order
    // is time order.
    let cutoff = chrono::Duration::from_std(retention.max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age));
    if let Some(cutoff) = cutoff {
        let sql = format!("DELETE FROM scim_events WHERE tenant = {p1} AND at < {p2}");
        sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(cutoff.to_rfc3339_opts(SecondsFormat::Millis, true))
            .execute(&mut *conn)
            .await
            .context(CTX)?;
    }
    trim_outcome(conn, tenant, false, retention.accepted).await?;
    trim_outcome(conn, tenant, true, retention.rejected).await
}

/// Deletes all but the newest `keep` events of one outcome.
async fn trim_outcome(
    conn: &mut AnyConnection,
    tenant: &str,
    rejected: bool,
    keep: u64,
) -> Result<(), DbError> {
    let (p1, p2, p3) = (param(conn, 1), param(conn, 2), param(conn, 3));
    let sql = format!(
        "SELECT id FROM scim_events WHERE tenant = {p1} AND rejected = {p2} \
         ORDER BY id DESC LIMIT 1 OFFSET {keep}"
    );
    let boundary = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(i64::from(rejected))
        .fetch_optional(&mut *conn)
        .await
        .context(CTX)?;
    if let Some(row) = boundary {
        let id: i64 = row.try_get(0).context(CTX)?;
        let sql = format!(
            "DELETE FROM scim_events WHERE tenant = {p1} AND rejected = {p2} AND id <= {p3}"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(i64::from(rejected))
            .bind(id)
            .execute(&mut *conn)
            .await
            .context(CTX)?;
    }
    Ok(())
}
