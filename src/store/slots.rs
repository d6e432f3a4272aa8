//! Scheduled due slots (`schedule_slots`): the first node to reach a connector's due time
//! claims it, so that nodes whose clocks differ by a few seconds do not each run the same
//! slot. Claims are kept a while for diagnosis, then pruned.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::db::{Context, Db, DbError, now_text};

/// Claimed due slots are kept this long (for `idsync`'s own diagnosis), then pruned.
const SLOT_RETENTION_DAYS: i64 = 7;

/// Claims the run of `connector` due at `slot` for `node`: true when no node had claimed
/// it yet. Prunes the connector's claims past the retention in the same transaction.
pub async fn claim(
    db: &Db,
    connector: &str,
    slot: DateTime<Utc>,
    node: &str,
) -> Result<bool, DbError> {
    let due = slot.to_rfc3339_opts(SecondsFormat::Millis, true);
    let horizon = (slot - chrono::Duration::days(SLOT_RETENTION_DAYS))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut tx = db.begin_write().await?;
    let claimed = sqlx::query(
        "INSERT INTO schedule_slots (connector, due_at, node, claimed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (connector, due_at) DO NOTHING",
    )
    .bind(connector.to_string())
    .bind(due)
    .bind(node.to_string())
    .bind(now_text())
    .execute(tx.conn())
    .await
    .context("claiming a scheduled run")?
    .rows_affected()
        == 1;
    sqlx::query("DELETE FROM schedule_slots WHERE connector = $1 AND due_at < $2")
        .bind(connector.to_string())
        .bind(horizon)
        .execute(tx.conn())
        .await
        .context("pruning old scheduled runs")?;
    tx.commit().await?;
    Ok(claimed)
}
