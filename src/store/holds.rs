//! The SCIM side of the deletion limits: removals (deletions and deactivations of users,
//! deletions of groups) applied to the target are counted per tenant in a sliding window;
//! a request that would go beyond the tenant's limit is not applied to the target, and the
//! tenant is held. While held, pushes still land in the tenant's mirror (the IdP sees a
//! normal SCIM server) but the target waits for an admin: `idsync reconcile <tenant>`
//! applies the mirror (with `--allow-mass-delete` when the removals are intended) and
//! releases the hold.

use serde::Serialize;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Batch, Context, Db, DbError, Val, now_text, param};

/// A held tenant.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hold {
    pub tenant: String,
    pub held_at: String,
    pub reason: String,
    pub run_id: Option<i64>,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<Hold, sqlx::Error> {
    Ok(Hold {
        tenant: row.try_get(0)?,
        held_at: row.try_get(1)?,
        reason: row.try_get(2)?,
        run_id: row.try_get(3)?,
    })
}

/// Every held tenant.
pub async fn list(db: &Db) -> Result<Vec<Hold>, DbError> {
    let rows =
        sqlx::query("SELECT tenant, held_at, reason, run_id FROM scim_holds ORDER BY tenant")
            .fetch_all(db.pool())
            .await
            .context("reading held tenants")?;
    rows.iter()
        .map(decode)
        .collect::<Result<_, _>>()
        .context("reading held tenants")
}

/// Holds the tenant (keeping an earlier hold's time and reason).
pub async fn hold(conn: &mut AnyConnection, tenant: &str, reason: &str) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO scim_holds (tenant, held_at, reason) VALUES ({}, {}, {}) \
         ON CONFLICT (tenant) DO NOTHING",
        param(conn, 1),
        param(conn, 2),
        param(conn, 3)
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(now_text())
        .bind(reason.to_string())
        .execute(&mut *conn)
        .await
        .context("holding the tenant")?;
    Ok(())
}

/// Links the hold to the run record that reports it.
/// Releases the tenant's hold (its mirror has been applied), in the caller's transaction.
pub async fn release(conn: &mut AnyConnection, tenant: &str) -> Result<(), DbError> {
    let sql = format!("DELETE FROM scim_holds WHERE tenant = {}", param(conn, 1));
    sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .execute(&mut *conn)
        .await
        .context("releasing the tenant's hold")?;
    Ok(())
}

pub async fn set_run(db: &Db, tenant: &str, run_id: i64) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE scim_holds SET run_id = $1 WHERE tenant = $2 AND run_id IS NULL")
        .bind(run_id)
        .bind(tenant.to_string())
        .execute(tx.conn())
        .await
        .context("recording the held run")?;
    tx.commit().await
}

pub(crate) fn window_start(window_minutes: u64) -> String {
    let minutes = i64::try_from(window_minutes).unwrap_or(i64::MAX / 120_000);
    (crate::clock::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Counts `count` removals applied now; with `prune`, forgets those older than the window
/// (added to `batch`, which the write commits with its event).
pub fn record_removals(
    batch: &mut Batch,
    conn: &AnyConnection,
    tenant: &str,
    count: u64,
    window_minutes: u64,
    prune: bool,
) {
    let (p1, p2, p3) = (param(conn, 1), param(conn, 2), param(conn, 3));
    batch.push(
        format!("INSERT INTO scim_removals (tenant, at, count) VALUES ({p1}, {p2}, {p3})"),
        vec![
            Val::Text(tenant.to_string()),
            Val::Text(now_text()),
            Val::Int(i64::try_from(count).unwrap_or(i64::MAX)),
        ],
    );
    if prune {
        batch.push(
            format!("DELETE FROM scim_removals WHERE tenant = {p1} AND at < {p2}"),
            vec![
                Val::Text(tenant.to_string()),
                Val::Text(window_start(window_minutes)),
            ],
        );
    }
}
