//! Bearer tokens of the admin API (`idsync admin-token create|list|revoke`): shown once when
//! created, stored as SHA-256 hashes, each with a name that the audit trail records as the
//! actor. Verification compares the presented token's hash with every active hash in
//! constant time.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::config::SecretString;
use crate::db::{Context, Db, DbError, now_text};
use crate::store::audit::{self, Action};
use crate::store::tokens::{hash, matching_row, random_secret, timestamp_after};

/// Admin tokens start with this, so that secret scanners and people recognise them (and
/// do not mistake them for tenant tokens).
const TOKEN_PREFIX: &str = "idsync_admin_";

/// Why a token could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error(
        "an active admin token named `{0}` exists; revoke it first (`idsync admin-token revoke {0}`) or pick another name"
    )]
    NameTaken(String),
    #[error("no active admin token named `{0}` (see `idsync admin-token list`)")]
    Unknown(String),
    #[error(
        "admin token names are 1-64 letters, digits, `-`, `_`, `.` or `@` (got `{0}`): the name appears in the audit trail"
    )]
    BadName(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A freshly created token. `token` is shown once and never stored.
#[derive(Debug)]
pub struct IssuedAdminToken {
    pub id: String,
    pub name: String,
    pub token: SecretString,
    pub expires_at: Option<String>,
}

/// What `admin-token list` shows (never the token or its hash); read by column name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminTokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Creates a token named `name`, valid for `ttl` (forever when None), and records who did it.
pub async fn create(
    db: &Db,
    name: &str,
    ttl: Option<Duration>,
    actor: &str,
) -> Result<IssuedAdminToken, AdminTokenError> {
    if !valid_name(name) {
        return Err(AdminTokenError::BadName(name.to_string()));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let expires_at = ttl.map(timestamp_after);
    let now = now_text();
    let mut tx = db.begin_write().await?;
    let taken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM admin_tokens WHERE name = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(name.to_string())
    .bind(now.clone())
    .fetch_one(tx.conn())
    .await
    .context("checking admin token names")?;
    if taken > 0 {
        return Err(AdminTokenError::NameTaken(name.to_string()));
    }
    // An expired token of the name is retired for good, so that the name's one
    // unrevoked row (a unique index) can be the new token.
    sqlx::query("UPDATE admin_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(now.clone())
        .bind(name.to_string())
        .execute(tx.conn())
        .await
        .context("retiring an expired admin token")?;
    sqlx::query(
        "INSERT INTO admin_tokens (id, name, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.clone())
    .bind(name.to_string())
    .bind(hash(&token))
    .bind(now)
    .bind(expires_at.clone())
    .execute(tx.conn())
    .await
    .map_err(|e| match &e {
        // Another create of the same name committed between the check and the insert.
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            AdminTokenError::NameTaken(name.to_string())
        }
        _ => AdminTokenError::Db(DbError::Query {
            context: "storing an admin token",
            source: e,
        }),
    })?;
    let detail = format!("token id {id}");
    audit::record_in(
        tx.conn(),
        actor,
        Action::AdminTokenCreate,
        name,
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(IssuedAdminToken {
        id,
        name: name.to_string(),
        token: SecretString::new(token),
        expires_at,
    })
}

/// Revokes the active token named `name`.
pub async fn revoke(db: &Db, name: &str, actor: &str) -> Result<(), AdminTokenError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE admin_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
    )
    .bind(now_text())
    .bind(name.to_string())
    .execute(tx.conn())
    .await
    .context("revoking an admin token")?
    .rows_affected();
    if done == 0 {
        return Err(AdminTokenError::Unknown(name.to_string()));
    }
    audit::record_in(tx.conn(), actor, Action::AdminTokenRevoke, name, None).await?;
    tx.commit().await?;
    Ok(())
}

/// The active token `presented` is: its id and its name (the actor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub id: String,
    pub name: String,
}

/// The active token `presented` is, if any.
pub async fn verify(db: &Db, presented: &str) -> Result<Option<VerifiedToken>, DbError> {
    const CTX: &str = "checking an admin token";
    let presented_hash = hash(presented);
    let rows = sqlx::query(
        "SELECT id, name, token_hash, last_used_at FROM admin_tokens WHERE revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now_text())
    .fetch_all(db.pool())
    .await
    .context(CTX)?;
    let Some(row) = matching_row(&rows, &presented_hash, CTX)? else {
        return Ok(None);
    };
    let id: String = row.try_get("id").context(CTX)?;
    let name: String = row.try_get("name").context(CTX)?;
    let last_used: Option<String> = row.try_get("last_used_at").context(CTX)?;
    // The last use is written at most once a minute: a page that polls must not queue
    // behind every other writer.
    let stale = crate::clock::now() - chrono::Duration::minutes(1);
    let stale = stale.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if last_used.is_none_or(|at| at < stale) {
        let mut tx = db.begin_write().await?;
        sqlx::query("UPDATE admin_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now_text())
            .bind(id.clone())
            .execute(tx.conn())
            .await
            .context("recording an admin token's use")?;
        tx.commit().await?;
    }
    Ok(Some(VerifiedToken { id, name }))
}

/// Whether any admin token is active (a node must not expose an open admin API).
pub async fn any_active(db: &Db) -> Result<bool, DbError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM admin_tokens WHERE revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now_text())
    .fetch_one(db.pool())
    .await
    .context("counting admin tokens")?;
    Ok(count > 0)
}

/// Every admin token, oldest first.
pub async fn list(db: &Db) -> Result<Vec<AdminTokenInfo>, DbError> {
    sqlx::query_as(
        "SELECT id, name, created_at, expires_at, revoked_at, last_used_at FROM admin_tokens \
         ORDER BY created_at, id",
    )
    .fetch_all(db.pool())
    .await
    .context("listing admin tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> Db {
        Db::open("sqlite::memory:").await.expect("db")
    }

    #[tokio::test]
    async fn a_created_token_opens_until_revoked_and_both_are_audited() {
        let db = db().await;
        assert!(!any_active(&db).await.expect("count"));
        let issued = create(&db, "ops", None, "cli:root").await.expect("create");
        assert!(issued.token.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(
            verify(&db, issued.token.expose())
                .await
                .expect("verify")
                .map(|token| token.name),
            Some("ops".to_string())
        );
        assert_eq!(
            verify(&db, "idsync_admin_wrong").await.expect("verify"),
            None
        );
        assert!(any_active(&db).await.expect("count"));
        assert!(matches!(
            create(&db, "ops", None, "cli:root").await,
            Err(AdminTokenError::NameTaken(_))
        ));
        revoke(&db, "ops", "cli:root").await.expect("revoke");
        assert_eq!(
            verify(&db, issued.token.expose()).await.expect("verify"),
            None
        );
        assert!(matches!(
            revoke(&db, "ops", "cli:root").await,
            Err(AdminTokenError::Unknown(_))
        ));
        let trail = audit::list(&db, None, 10).await.expect("audit");
        let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["admin_token.revoke", "admin_token.create"]);
        assert!(
            trail
                .iter()
                .all(|e| e.actor == "cli:root" && e.target == "ops")
        );
        // The stored row holds the hash, never the token.
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM admin_tokens")
            .fetch_one(db.pool())
            .await
            .expect("row");
        assert_ne!(stored, issued.token.expose());
        assert_eq!(stored, hash(issued.token.expose()));
    }

    #[tokio::test]
    async fn names_are_checked() {
        let db = db().await;
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(
                matches!(
                    create(&db, bad, None, "cli:root").await,
                    Err(AdminTokenError::BadName(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_database_keeps_one_unrevoked_token_per_name() {
        let db = db().await;
        create(&db, "ops", None, "cli:root").await.expect("create");
        // As if another node's create had passed the name check at the same moment.
        let second = sqlx::query(
            "INSERT INTO admin_tokens (id, name, token_hash, created_at) VALUES ('x', 'ops', 'h', 't')",
        )
        .execute(db.pool())
        .await;
        assert!(
            second.is_err(),
            "the unique index refuses a second unrevoked `ops`"
        );
        // An expired token's name can be taken again.
        create(&db, "short", Some(Duration::ZERO), "cli:root")
            .await
            .expect("create");
        create(&db, "short", None, "cli:root")
            .await
            .expect("the expired token's name is free");
    }

    #[tokio::test]
    async fn expired_tokens_do_not_open() {
        let db = db().await;
        let issued = create(&db, "short", Some(Duration::ZERO), "cli:root")
            .await
            .expect("create");
        assert_eq!(
            verify(&db, issued.token.expose()).await.expect("verify"),
            None
        );
        assert!(!any_active(&db).await.expect("count"));
    }
}
