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
    assert!(
        statuses[..default_budget].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[default_budget..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // The tenant's own token still gets its answers: its quota was never touched.
    let valid = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    let valid = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    scim.stop().await;
}

fn assert_invalid_value(answer: &crate::support::scim::Answer, needle: &str) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["scimType"], "invalidValue", "{}", answer.body);
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{detail:?} should contain {needle:?}"
    );
}

async fn mirror_rows(db: &idsync::db::Db, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("count")
}

/// The same 400 on SQLite and PostgreSQL for strings PostgreSQL cannot store or index,
/// nothing stored, never a 5xx; the longest allowed names are stored on both.
async fn nul_and_overlong_strings_get_one_answer(db: crate::support::TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let long = "x".repeat(10_000);
    let cases = [
        (
            json!({"schemas": [USER], "userName": "a\u{0}b"}),
            "`userName` contains the character U+0000",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "name": {"givenName": "A\u{0}"}}),
            "`name.givenName` contains the character U+0000",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "externalId": "\u{0}"}),
            "`externalId` contains the character U+0000",
        ),
        (
            json!({"schemas": [USER], "userName": long}),
            "`userName` is 10000 characters long, over the limit of 512",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "displayName": long}),
            "`displayName` is 10000 characters long, over the limit of 512",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "externalId": long}),
            "`externalId` is 10000 characters long, over the limit of 512",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "emails": [{"value": long}]}),
            "`emails.value` is 10000 characters long, over the limit of 512",
        ),
    ];
    for (body, needle) in cases {
        let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
        assert_invalid_value(&answer, needle);
    }
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": long});
    let answer = scim.call("acme", "POST", "/Groups", Some(group)).await;
    assert_invalid_value(&answer, "`displayName` is 10000 characters long");
    assert_eq!(mirror_rows(&db, "mirror_users").await, 0);
    assert_eq!(mirror_rows(&db, "mirror_groups").await, 0);

    // NUL in a filter or an id in the URL: the same 400, not a database error.
    let answer = scim
        .call(
            "acme",
            "GET",
            "/Users?filter=userName%20eq%20%22a%00%22",
            None,
        )
        .await;
    assert_invalid_value(&answer, "U+0000");
    let answer = scim.call("acme", "GET", "/Users/a%00b", None).await;
    assert_invalid_value(&answer, "U+0000");

    // A PATCH cannot smuggle in what a POST may not.
    let created = scim
        .call("acme", "POST", "/Users", Some(user_body("ann")))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": long}]});
    let answer = scim
        .call("acme", "PATCH", &format!("/Users/{id}"), Some(patch))
        .await;
    assert_invalid_value(&answer, "`displayName` is 10000 characters long");

    // The longest allowed names, in 4-byte characters, are stored on both backends.
    let widest = "𝔘".repeat(idsync::scim::server::MAX_IDENTIFIER_CHARS);
    let body = json!({"schemas": [USER], "userName": widest, "displayName": widest,
        "externalId": widest, "emails": [{"value": widest, "primary": true}]});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["userName"], json!(widest));
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": widest});
    let answer = scim.call("acme", "POST", "/Groups", Some(group)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    scim.stop().await;
}
crate::on_both_backends!(nul_and_overlong_strings_get_one_answer);

/// Over the per-resource limits: 400/413 naming the limit, on both backends.
async fn resource_limits_are_named(db: crate::support::TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let limits = ServerOptions::default().limits;
    let body = json!({"schemas": [USER], "userName": "ann",
        "title": "t".repeat(limits.max_string_chars + 1)});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_invalid_value(&answer, "(max_string_length)");
    let emails: Vec<Value> = (0..=limits.max_values)
        .map(|i| json!({"value": format!("a{i}@example.com")}))
        .collect();
    let body = json!({"schemas": [USER], "userName": "ann", "emails": emails});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_invalid_value(&answer, "(max_values_per_attribute)");
    let roles: Vec<Value> = (0..limits.max_values)
        .map(|i| json!({"value": format!("role-{i}"), "display": "r".repeat(400)}))
        .collect();
    let body = json!({"schemas": [USER], "userName": "ann", "roles": roles});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(
        answer.body["detail"].as_str().unwrap().contains(&format!(
            "over the limit of {} bytes (max_resource_bytes)",
            limits.max_resource_bytes
        )),
        "{}",
        answer.body
    );
    assert_eq!(mirror_rows(&db, "mirror_users").await, 0);
    scim.stop().await;
}
crate::on_both_backends!(resource_limits_are_named);
