//! The SCIM server's edge against hostile or careless clients, over loopback: failed
//! authentications never spend a tenant's rate, strings PostgreSQL cannot store get the
//! same 400 on both backends, `Location` never comes from the client's `Host`, size
//! limits answer 413/400 naming the limit, and slow clients cannot hold the listener.

use idsync::config::{OnRemove, ScimTenantSettings};
use idsync::scim::server::ServerOptions;
use serde_json::{Value, json};

use crate::support::scim::{ScimHarness, tenant, tenant_with};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn user_body(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "active": true})
}

#[tokio::test]
async fn junk_tokens_never_spend_the_tenants_rate() {
    let db = crate::support::sqlite().await;
    let strict = tenant_with(
        "acme",
        ScimTenantSettings {
            requests_per_second: std::num::NonZeroU32::new(1).unwrap(),
            burst: std::num::NonZeroU32::new(2).unwrap(),
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(&db, vec![strict]).await;
    let url = scim.url("acme", "/Users");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..60 {
        let answer = scim
            .send(
                "nobody",
                "GET",
                &url,
                None,
                &[("authorization", "Bearer junk")],
            )
            .await;
        if answer.status == 429 {
            retry_after = answer.header("retry-after");
            assert!(
                answer.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("too many failed authentications from 127.0.0.1"),
                "{}",
                answer.body
            );
        }
        statuses.push(answer.status);
    }
    let default_budget = ServerOptions::default().auth_failures_per_minute as usize;
    assert!(statuses[..default_budget].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[default_budget..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // The tenant's own token still gets its answers: its quota was never touched.
    let valid = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    let valid = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    scim.stop().await;
}
