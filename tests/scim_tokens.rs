//! SCIM tenant tokens against a real database (SQLite always, PostgreSQL when configured):
//! issue, verify, isolation between tenants, expiry, rotation, revocation.

use std::time::Duration;

use idsync::store::tokens;

use crate::on_both_backends;
use crate::support::TestDb;

async fn a_token_opens_its_tenant_only(db: TestDb) {
    let acme = tokens::issue(&db, "acme", None).await.unwrap();
    let globex = tokens::issue(&db, "globex", None).await.unwrap();
    let presented = acme.token.expose();
    assert!(presented.starts_with("idsync_"));
    assert_eq!(format!("{:?}", acme.token), "********", "never printed");
    assert_eq!(
        tokens::verify(&db, "acme", presented).await.unwrap(),
        Some(acme.id.clone())
    );
    assert_eq!(
        tokens::verify(&db, "globex", presented).await.unwrap(),
        None
    );
    assert_eq!(
        tokens::verify(&db, "globex", globex.token.expose())
            .await
            .unwrap(),
        Some(globex.id.clone())
    );
    assert_eq!(
        tokens::verify(&db, "acme", "idsync_wrong").await.unwrap(),
        None
    );
    assert_eq!(tokens::verify(&db, "acme", "").await.unwrap(), None);
    // Only the hash is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM scim_tokens")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !h.contains("idsync_"))
    );
    tokens::touch(&db, &acme.id).await.unwrap();
    let listed = tokens::list(&db, Some("acme")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
}
on_both_backends!(a_token_opens_its_tenant_only);

async fn rotation_keeps_the_old_token_for_the_grace_period(db: TestDb) {
    let old = tokens::issue(&db, "acme", None).await.unwrap();
    let new = tokens::rotate(&db, "acme", None, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        tokens::verify(&db, "acme", old.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        tokens::verify(&db, "acme", new.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    let listed = tokens::list(&db, Some("acme")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|t| t.id == old.id && t.expires_at.is_some())
    );

    // Without grace the old one stops at once.
    let newest = tokens::rotate(&db, "acme", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        tokens::verify(&db, "acme", old.token.expose())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        tokens::verify(&db, "acme", new.token.expose())
            .await
            .unwrap(),
        None
    );
    assert!(
        tokens::verify(&db, "acme", newest.token.expose())
            .await
            .unwrap()
            .is_some()
    );
}
on_both_backends!(rotation_keeps_the_old_token_for_the_grace_period);

async fn revoked_and_expired_tokens_are_refused(db: TestDb) {
    let a = tokens::issue(&db, "acme", None).await.unwrap();
    let b = tokens::issue(&db, "acme", None).await.unwrap();
    let expired = tokens::issue(&db, "acme", Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        tokens::verify(&db, "acme", expired.token.expose())
            .await
            .unwrap(),
        None
    );
    assert_eq!(tokens::revoke(&db, "acme", Some(&a.id)).await.unwrap(), 1);
    assert_eq!(
        tokens::verify(&db, "acme", a.token.expose()).await.unwrap(),
        None
    );
    assert!(
        tokens::verify(&db, "acme", b.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(tokens::revoke(&db, "acme", None).await.unwrap(), 2);
    assert_eq!(
        tokens::verify(&db, "acme", b.token.expose()).await.unwrap(),
        None
    );
    let now = idsync::db::now_text();
    assert!(
        tokens::list(&db, None)
            .await
            .unwrap()
            .iter()
            .all(|t| !t.active_at(&now))
    );
}
on_both_backends!(revoked_and_expired_tokens_are_refused);
