//! The audit trail: what admins did to the engine, who did it and when. Confirming or
//! discarding a held run, starting a run by hand and every change of an admin or tenant
//! token is recorded; `idsync audit` and `GET /api/audit` read it back.
//!
//! Who: the name of the admin token that authorised the request (`config` for the token of
//! `[admin] token`), or `cli:<user>` for a command run on the host (the login name is what
//! the environment says: on a shared host it is a hint, not proof). Admin token changes are
//! written in the same transaction as their entry; the other actions are recorded once they
//! were carried out.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::{Context, Db, DbError, now_text};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A held run (or held SCIM tenant) was applied with the limits lifted.
    ConfirmHeld,
    /// A held run was dropped.
    DiscardHeld,
    /// A run was started from the command line with the deletion limits lifted
    /// (`--allow-mass-delete`): the CLI's way of confirming a held run.
    AllowMassDelete,
    /// A run was started by hand.
    RunNow,
    /// A mapping edited on disk was applied from the admin pages (reload and reconcile).
    MappingApply,
    /// An admin token was created.
    AdminTokenCreate,
    /// An admin token was revoked.
    AdminTokenRevoke,
    /// A SCIM tenant token was issued.
    TenantTokenCreate,
    /// A SCIM tenant token was rotated.
    TenantTokenRotate,
    /// SCIM tenant tokens were revoked.
    TenantTokenRevoke,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ConfirmHeld => "held.confirm",
            Action::DiscardHeld => "held.discard",
            Action::AllowMassDelete => "run.allow_mass_delete",
            Action::RunNow => "run.start",
            Action::MappingApply => "mapping.apply",
            Action::AdminTokenCreate => "admin_token.create",
            Action::AdminTokenRevoke => "admin_token.revoke",
            Action::TenantTokenCreate => "tenant_token.create",
            Action::TenantTokenRotate => "tenant_token.rotate",
            Action::TenantTokenRevoke => "tenant_token.revoke",
        }
    }
}

/// One entry, as read back (by column name).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

/// The actor of a command run on this host: `cli:<login name>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("cli:{user}")
}

/// Records an entry inside the caller's transaction.
pub async fn record_in(
    conn: &mut AnyConnection,
    actor: &str,
    action: Action,
    target: &str,
    detail: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now_text())
    .bind(actor.to_string())
    .bind(action.as_str())
    .bind(target.to_string())
    .bind(detail.map(str::to_string))
    .execute(conn)
    .await
    .context("recording an audit entry")?;
    Ok(())
}

/// Records an entry in a transaction of its own.
pub async fn record(
    db: &Db,
    actor: &str,
    action: Action,
    target: &str,
    detail: Option<&str>,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    record_in(tx.conn(), actor, action, target, detail).await?;
    tx.commit().await
}

/// Entries newest first, at or after `since` (RFC 3339 UTC text) when given.
pub async fn list(db: &Db, since: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>, DbError> {
    sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM audit_log \
         WHERE ($1 IS NULL OR at >= $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(since.map(str::to_string))
    .bind(limit.clamp(1, 10_000))
    .fetch_all(db.pool())
    .await
    .context("reading the audit trail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_come_back_newest_first() {
        let db = Db::open("sqlite::memory:").await.expect("db");
        record(&db, "ops", Action::RunNow, "hr", None)
            .await
            .expect("record");
        record(
            &db,
            "cli:root",
            Action::AdminTokenCreate,
            "ops",
            Some("id abc"),
        )
        .await
        .expect("record");
        let entries = list(&db, None, 10).await.expect("list");
        let seen: Vec<_> = entries
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("cli:root", "admin_token.create", "ops"),
                ("ops", "run.start", "hr")
            ]
        );
        assert_eq!(entries[0].detail.as_deref(), Some("id abc"));
        let later = list(&db, Some("9999-01-01T00:00:00.000Z"), 10)
            .await
            .expect("list");
        assert!(later.is_empty());
    }
}
