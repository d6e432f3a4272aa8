//! Bearer tokens of SCIM tenants: issued once (the plaintext is shown to the admin and never
//! stored), kept as SHA-256 hashes, several active at once so that an IdP can be moved to a
//! new token before the old one stops working, each with an optional expiry, revocable.
//! Verification compares the presented token's hash with every active hash of the tenant in
//! constant time, so a token of one tenant never opens another.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;

use crate::config::SecretString;
use crate::db::{Context, Db, DbError, now_text};
use crate::store::audit::{self, Action};

/// Tokens start with this, so that secret scanners and people recognise them.
const TOKEN_PREFIX: &str = "idsync_";

/// A freshly issued token. `token` is shown once and never stored.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: String,
    pub token: SecretString,
    pub expires_at: Option<String>,
}

/// What `tenant list` shows of a token (never the token or its hash); read by column name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: String,
    pub tenant: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl TokenInfo {
    /// Neither revoked nor expired at `now` (RFC 3339 UTC text compares in time order).
    pub fn active_at(&self, now: &str) -> bool {
        self.revoked_at.is_none() && self.expires_at.as_deref().is_none_or(|e| e > now)
    }
}

/// The stored form of a token: hex SHA-256 (tokens are long random strings, so a fast
/// hash is enough; there is nothing to brute-force).
pub(crate) fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn timestamp_after(ttl: Duration) -> String {
    let delta = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let at = crate::clock::now()
        .checked_add_signed(delta)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// 244 random bits from two version-4 UUIDs (the OS random source), hex encoded.
pub(crate) fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Issues a new token for `tenant`, valid for `ttl` (forever when None).
pub async fn issue(db: &Db, tenant: &str, ttl: Option<Duration>) -> Result<IssuedToken, DbError> {
    issue_as(db, tenant, ttl, None).await
}

/// [`issue`], recorded in the audit trail under `actor` in the same transaction.
pub async fn issue_as(
    db: &Db,
    tenant: &str,
    ttl: Option<Duration>,
    actor: Option<&str>,
) -> Result<IssuedToken, DbError> {
    let mut tx = db.begin_write().await?;
    let issued = insert_token(tx.conn(), tenant, ttl).await?;
    let detail = format!("token id {}", issued.id);
    record_as(tx.conn(), actor, Action::TenantTokenCreate, tenant, &detail).await?;
    tx.commit().await?;
    Ok(issued)
}

async fn insert_token(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    ttl: Option<Duration>,
) -> Result<IssuedToken, DbError> {
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    // A short public handle (48 random bits) for list and revoke; not a secret.
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let expires_at = ttl.map(timestamp_after);
    sqlx::query(
        "INSERT INTO scim_tokens (id, tenant, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.clone())
    .bind(tenant.to_string())
    .bind(hash(&token))
    .bind(now_text())
    .bind(expires_at.clone())
    .execute(conn)
    .await
    .context("storing a token")?;
    Ok(IssuedToken {
        id,
        token: SecretString::new(token),
        expires_at,
    })
}

/// The id of the active token of `tenant` that `presented` is, if any.
pub async fn verify(db: &Db, tenant: &str, presented: &str) -> Result<Option<String>, DbError> {
    const CTX: &str = "checking a token";
    let presented_hash = hash(presented);
    let now = now_text();
    let rows = sqlx::query(
        "SELECT id, token_hash FROM scim_tokens WHERE tenant = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(tenant.to_string())
    .bind(now)
    .fetch_all(db.pool())
    .await
    .context(CTX)?;
    match matching_row(&rows, &presented_hash, CTX)? {
        Some(row) => Ok(Some(row.try_get::<String, _>("id").context(CTX)?)),
        None => Ok(None),
    }
}

/// The row whose `token_hash` is `presented_hash`, if any. Every candidate is compared, in
/// constant time, whatever matched before: the time taken says nothing about which
/// (or whether one) matched. Shared by tenant and admin tokens.
pub(crate) fn matching_row<'r>(
    rows: &'r [AnyRow],
    presented_hash: &str,
    context: &'static str,
) -> Result<Option<&'r AnyRow>, DbError> {
    let mut matched = None;
    for row in rows {
        let stored: String = row.try_get("token_hash").context(context)?;
        if bool::from(stored.as_bytes().ct_eq(presented_hash.as_bytes())) {
            matched = Some(row);
        }
    }
    Ok(matched)
}

/// Records that a token was used (best effort; callers may throttle this).
pub async fn touch(db: &Db, token_id: &str) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE scim_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now_text())
        .bind(token_id.to_string())
        .execute(tx.conn())
        .await
        .context("recording a token's use")?;
    tx.commit().await
}

/// Revokes one token of `tenant` (by id) or all of them. Returns how many were revoked.
pub async fn revoke(db: &Db, tenant: &str, token_id: Option<&str>) -> Result<u64, DbError> {
    revoke_as(db, tenant, token_id, None).await
}

/// [`revoke`], recorded in the audit trail under `actor` in the same transaction (when
/// anything was revoked).
pub async fn revoke_as(
    db: &Db,
    tenant: &str,
    token_id: Option<&str>,
    actor: Option<&str>,
) -> Result<u64, DbError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE scim_tokens SET revoked_at = $1 WHERE tenant = $2 AND revoked_at IS NULL \
         AND ($3 IS NULL OR id = $3)",
    )
    .bind(now_text())
    .bind(tenant.to_string())
    .bind(token_id.map(str::to_string))
    .execute(tx.conn())
    .await
    .context("revoking tokens")?
    .rows_affected();
    if done > 0 {
        let detail = match token_id {
            Some(id) => format!("token id {id}"),
            None => format!("all {done} active token(s)"),
        };
        record_as(tx.conn(), actor, Action::TenantTokenRevoke, tenant, &detail).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Records `action` on `tenant` in the caller's transaction when an actor is named: the
/// `*_as` forms are audited, the plain ones are not.
async fn record_as(
    conn: &mut sqlx::AnyConnection,
    actor: Option<&str>,
    action: Action,
    tenant: &str,
    detail: &str,
) -> Result<(), DbError> {
    match actor {
        Some(actor) => audit::record_in(conn, actor, action, tenant, Some(detail)).await,
        None => Ok(()),
    }
}

/// Issues a new token and lets the tenant's other active tokens expire after `grace`
/// (at once when zero), so the IdP can be switched over without an outage.
pub async fn rotate(
    db: &Db,
    tenant: &str,
    ttl: Option<Duration>,
    grace: Duration,
) -> Result<IssuedToken, DbError> {
    rotate_as(db, tenant, ttl, grace, None).await
}

/// [`rotate`] in one transaction, recorded in the audit trail under `actor`.
pub async fn rotate_as(
    db: &Db,
    tenant: &str,
    ttl: Option<Duration>,
    grace: Duration,
    actor: Option<&str>,
) -> Result<IssuedToken, DbError> {
    let old_until = timestamp_after(grace);
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE scim_tokens SET expires_at = $1 WHERE tenant = $2 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(old_until)
    .bind(tenant.to_string())
    .execute(tx.conn())
    .await
    .context("shortening old tokens")?;
    let issued = insert_token(tx.conn(), tenant, ttl).await?;
    let detail = format!(
        "new token id {}; older tokens end in {} h",
        issued.id,
        grace.as_secs() / 3600
    );
    record_as(tx.conn(), actor, Action::TenantTokenRotate, tenant, &detail).await?;
    tx.commit().await?;
    Ok(issued)
}

/// Tokens of one tenant, or of all, oldest first.
pub async fn list(db: &Db, tenant: Option<&str>) -> Result<Vec<TokenInfo>, DbError> {
    sqlx::query_as(
        "SELECT id, tenant, created_at, expires_at, revoked_at, last_used_at FROM scim_tokens \
         WHERE ($1 IS NULL OR tenant = $1) ORDER BY tenant, created_at, id",
    )
    .bind(tenant.map(str::to_string))
    .fetch_all(db.pool())
    .await
    .context("listing tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let a = random_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_secret());
    }

    #[test]
    fn activity_follows_revocation_and_expiry() {
        let info = TokenInfo {
            id: "t".into(),
            tenant: "acme".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            expires_at: Some("2026-06-01T00:00:00.000Z".into()),
            revoked_at: None,
            last_used_at: None,
        };
        assert!(info.active_at("2026-05-31T23:59:59.999Z"));
        assert!(!info.active_at("2026-06-01T00:00:00.000Z"));
        let revoked = TokenInfo {
            revoked_at: Some("2026-02-01T00:00:00.000Z".into()),
            ..info
        };
        assert!(!revoked.active_at("2026-01-02T00:00:00.000Z"));
    }
}
