//! Browser sessions of the admin pages (`admin_sessions`): an admin signs in with an admin
//! token and gets a session cookie. Only the cookie's SHA-256 hash is stored. A session
//! ends when the admin signs out, after its idle time without a request, or when the
//! admin token it was opened with is revoked or expires. Sessions live in the database,
//! not in one node's memory, so nodes behind one URL share them and a restart keeps them.

use std::time::Duration;

use sqlx::Row;

use crate::db::{Context, Db, DbError, now_text};
use crate::store::tokens::{hash, random_secret};

/// A session cookie's value: shown to the browser once, stored only hashed.
pub struct SessionSecret(String);

impl SessionSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Who a live session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The admin token's name: the actor of what the session does.
    pub actor: String,
    /// The CSRF token every form of this session carries: derived from the session's
    /// secret (a hash of it under another label), so it is neither stored nor guessable.
    pub csrf: String,
}

/// How often a live session's last request is written: a page that polls must not queue
/// behind every other writer.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// The CSRF token of the session whose cookie is `secret`.
fn csrf_of(secret: &str) -> String {
    hash(&format!("csrf:{secret}"))
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opens a session for `actor`, who signed in with admin token `token_id` (None: the
/// `[admin] token` of idsync.toml). Sessions idle longer than `idle` are removed first.
pub async fn open(
    db: &Db,
    actor: &str,
    token_id: Option<&str>,
    idle: Duration,
) -> Result<SessionSecret, DbError> {
    let secret = random_secret();
    let now = now_text();
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM admin_sessions WHERE last_seen_at <= $1")
        .bind(idle_cutoff(idle))
        .execute(tx.conn())
        .await
        .context("removing idle admin sessions")?;
    sqlx::query(
        "INSERT INTO admin_sessions (session_hash, actor, token_id, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&secret))
    .bind(actor.to_string())
    .bind(token_id.map(str::to_string))
    .bind(now.clone())
    .bind(now)
    .execute(tx.conn())
    .await
    .context("opening an admin session")?;
    tx.commit().await?;
    Ok(SessionSecret(secret))
}

fn idle_cutoff(idle: Duration) -> String {
    let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
    rfc3339(
        crate::clock::now()
            .checked_sub_signed(idle)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
    )
}

/// The live session whose cookie is `secret`, if any, noting the request. A session
/// opened with the `[admin] token` lives only while `config_token_set`.
pub async fn check(
    db: &Db,
    secret: &str,
    idle: Duration,
    config_token_set: bool,
) -> Result<Option<Session>, DbError> {
    const CTX: &str = "checking an admin session";
    let now = now_text();
    let row = sqlx::query(
        "SELECT s.actor, s.token_id, s.last_seen_at FROM admin_sessions s \
         LEFT JOIN admin_tokens t ON t.id = s.token_id \
         WHERE s.session_hash = $1 AND s.last_seen_at > $2 \
         AND (s.token_id IS NULL OR (t.id IS NOT NULL AND t.revoked_at IS NULL \
              AND (t.expires_at IS NULL OR t.expires_at > $3)))",
    )
    .bind(hash(secret))
    .bind(idle_cutoff(idle))
    .bind(now.clone())
    .fetch_optional(db.pool())
    .await
    .context(CTX)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let actor: String = row.try_get("actor").context(CTX)?;
    let token_id: Option<String> = row.try_get("token_id").context(CTX)?;
    let last_seen: String = row.try_get("last_seen_at").context(CTX)?;
    if token_id.is_none() && !config_token_set {
        return Ok(None);
    }
    if last_seen < rfc3339(crate::clock::now() - TOUCH_EVERY) {
        let mut tx = db.begin_write().await?;
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE session_hash = $2")
            .bind(now)
            .bind(hash(secret))
            .execute(tx.conn())
            .await
            .context("noting an admin session's request")?;
        tx.commit().await?;
    }
    Ok(Some(Session {
        actor,
        csrf: csrf_of(secret),
    }))
}

/// Ends the session whose cookie is `secret` (nothing when there is none).
pub async fn close(db: &Db, secret: &str) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM admin_sessions WHERE session_hash = $1")
        .bind(hash(secret))
        .execute(tx.conn())
        .await
        .context("closing an admin session")?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::admin_tokens;

    async fn db() -> Db {
        Db::open("sqlite::memory:").await.expect("db")
    }

    const IDLE: Duration = Duration::from_secs(30 * 60);

    #[tokio::test]
    async fn a_session_lives_until_closed_and_its_csrf_token_is_its_own() {
        let db = db().await;
        let token = admin_tokens::create(&db, "ops", None, "cli:root")
            .await
            .expect("token");
        let one = open(&db, "ops", Some(&token.id), IDLE).await.expect("open");
        let two = open(&db, "ops", Some(&token.id), IDLE).await.expect("open");
        let first = check(&db, one.expose(), IDLE, false).await.expect("check");
        let second = check(&db, two.expose(), IDLE, false).await.expect("check");
        let (Some(first), Some(second)) = (first, second) else {
            panic!("both sessions are live");
        };
        assert_eq!(first.actor, "ops");
        assert_ne!(first.csrf, second.csrf);
        assert_ne!(
            first.csrf,
            hash(one.expose()),
            "the CSRF token is not the cookie's hash"
        );
        assert_eq!(
            check(&db, "forged", IDLE, false).await.expect("check"),
            None
        );
        close(&db, one.expose()).await.expect("close");
        assert_eq!(
            check(&db, one.expose(), IDLE, false).await.expect("check"),
            None
        );
        assert!(
            check(&db, two.expose(), IDLE, false)
                .await
                .expect("check")
                .is_some()
        );
    }

    #[tokio::test]
    async fn revoking_the_token_ends_its_sessions() {
        let db = db().await;
        let token = admin_tokens::create(&db, "ops", None, "cli:root")
            .await
            .expect("token");
        let secret = open(&db, "ops", Some(&token.id), IDLE).await.expect("open");
        admin_tokens::revoke(&db, "ops", "cli:root")
            .await
            .expect("revoke");
        assert_eq!(
            check(&db, secret.expose(), IDLE, false)
                .await
                .expect("check"),
            None
        );
    }

    #[tokio::test]
    async fn an_idle_session_ends_and_the_config_token_session_needs_the_config_token() {
        let db = db().await;
        let secret = open(&db, "config", None, IDLE).await.expect("open");
        assert!(
            check(&db, secret.expose(), IDLE, true)
                .await
                .expect("check")
                .is_some()
        );
        assert_eq!(
            check(&db, secret.expose(), IDLE, false)
                .await
                .expect("check"),
            None,
            "[admin] token removed from idsync.toml"
        );
        assert_eq!(
            check(&db, secret.expose(), Duration::ZERO, true)
                .await
                .expect("check"),
            None,
            "idle longer than allowed"
        );
    }
}
