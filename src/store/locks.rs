//! The PostgreSQL advisory locks idsync takes, in one place. Each lock space is a variant of
//! [`LockSpace`]; every lock is the two-key form `(space, key of the name)`, the key being
//! the first 32 bits of the name's SHA-256 ([`lock_key`]). SQLite needs none of them: its
//! writers already queue (`BEGIN IMMEDIATE` behind one in-process write lock), and a SQLite
//! database has one node by nature.
//!
//! The keys are part of how several nodes on one database exclude each other, so a
//! change to them needs every node stopped before the new version starts
//! (docs/operations.md, "Upgrading several nodes").

use sqlx::{AnyConnection, AnyPool};

use crate::db::{Context, DbError, is_postgres};

/// What a lock guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSpace {
    /// Writers of the target directory take turns (transaction-scoped, no name), so that
    /// two runs claiming one new name see each other's claim.
    TargetWrite,
    /// One connector's (or SCIM tenant's) mirror, from the merge to the commit
    /// (transaction-scoped, keyed by the connector): generations and checkpoints never
    /// interleave.
    ConnectorMerge,
    /// One connector's run on one node (session-scoped, taken with a try): a scheduled
    /// run finding it held is skipped.
    ConnectorRun,
}

impl LockSpace {
    /// The first key of the two-key lock.
    pub const fn id(self) -> i32 {
        match self {
            LockSpace::TargetWrite => 7_342_001,
            LockSpace::ConnectorMerge => 7_342_002,
            LockSpace::ConnectorRun => 7_342_003,
        }
    }

    fn waiting(self) -> &'static str {
        match self {
            LockSpace::TargetWrite => "waiting for the target write lock",
            LockSpace::ConnectorMerge => "waiting for the connector's merge lock",
            LockSpace::ConnectorRun => "taking the connector's run lock",
        }
    }
}

/// The second key of a lock on `name`: the first 32 bits of its SHA-256.
pub fn lock_key(name: &str) -> i32 {
    let hash = crate::model::content_hash(&name);
    u32::from_str_radix(&hash[..8], 16).unwrap_or_default() as i32
}

/// The keys of the lock in `space` on `name` (`None`: the space's one lock).
pub fn lock_keys(space: LockSpace, name: Option<&str>) -> (i32, i32) {
    (space.id(), name.map_or(0, lock_key))
}

/// Takes the lock until the transaction on `conn` ends, waiting for it (PostgreSQL; on
/// SQLite nothing to take).
pub async fn lock_for_transaction(
    conn: &mut AnyConnection,
    space: LockSpace,
    name: Option<&str>,
) -> Result<(), DbError> {
    if !is_postgres(conn) {
        return Ok(());
    }
    let (first, second) = lock_keys(space, name);
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(first)
        .bind(second)
        .execute(&mut *conn)
        .await
        .context(space.waiting())?;
    Ok(())
}

/// Takes the lock for the session of `conn` if it is free; whether it was (PostgreSQL
/// only: the caller keeps `conn` open as long as it holds the lock).
pub async fn try_lock_for_session(
    conn: &mut AnyConnection,
    space: LockSpace,
    name: &str,
) -> Result<bool, DbError> {
    let (first, second) = lock_keys(space, Some(name));
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(first)
        .bind(second)
        .fetch_one(&mut *conn)
        .await
        .context(space.waiting())
}

/// Whether any session holds the lock (PostgreSQL only).
pub async fn is_held(pool: &AnyPool, space: LockSpace, name: &str) -> Result<bool, DbError> {
    let (first, second) = lock_keys(space, Some(name));
    // Two-key advisory locks show their keys as unsigned `classid` and `objid`.
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND objsubid = 2 AND classid::bigint = $1 AND objid::bigint = $2)",
    )
    .bind(i64::from(first as u32))
    .bind(i64::from(second as u32))
    .fetch_one(pool)
    .await
    .context("looking for a lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_are_distinct_and_names_key_stably() {
        let spaces = [
            LockSpace::TargetWrite,
            LockSpace::ConnectorMerge,
            LockSpace::ConnectorRun,
        ];
        let mut ids: Vec<i32> = spaces.iter().map(|s| s.id()).collect();
        ids.dedup();
        assert_eq!(ids.len(), spaces.len());
        assert_eq!(lock_key("hr"), lock_key("hr"));
        assert_ne!(lock_key("hr"), lock_key("okta"));
        assert_eq!(lock_keys(LockSpace::TargetWrite, None), (7_342_001, 0));
        // The run lock kept its keys: nodes of the previous version still see it.
        let legacy = i64::from_str_radix(&crate::model::content_hash(&"hr")[..8], 16)
            .unwrap_or_default() as i32;
        assert_eq!(lock_keys(LockSpace::ConnectorRun, Some("hr")).1, legacy);
    }
}
