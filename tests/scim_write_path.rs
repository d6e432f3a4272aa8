//! The SCIM write path's bookkeeping: one statement reads a tenant's mirror state, hold
//! and removal window (`store::write_state`), a write stores its generation once together
//! with the applied one (the mirror stays caught up, so the next write plans only its
//! users), a deleted user leaves exactly the groups the member index names, and a user's
//! write reads only the groups around that user, not every group of the tenant.

use idsync::config::OnRemove;
use idsync::db::Db;
use idsync::store::{holds, pushed as store};
use idsync::target::query;
use serde_json::{Value, json};

use crate::support::TestDb;
use crate::support::scim::{ScimHarness, tenant};

async fn state(db: &Db) -> (i64, i64, Option<String>, u64) {
    let mut conn = db.pool().acquire().await.expect("connection");
    let (state, held, removals) = store::write_state(&mut conn, "acme", 60)
        .await
        .expect("write state");
    (state.generation, state.applied_generation, held, removals)
}

async fn writes_keep_the_mirror_caught_up_in_one_state_read(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    // No state row yet: one row of defaults all the same.
    assert_eq!(state(&db).await, (0, 0, None, 0));

    let user = |name: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "name": {"givenName": "Given", "familyName": name},
            "emails": [{"value": format!("{name}@example.com"), "primary": true}],
            "active": true})
    };
    let ada = scim.call("acme", "POST", "/Users", Some(user("ada"))).await;
    assert_eq!(ada.status, 201, "{}", ada.body);
    let bo = scim.call("acme", "POST", "/Users", Some(user("bo"))).await;
    let (ada, bo) = (ada.body["id"].clone(), bo.body["id"].clone());
    // Each write bumped the generation and stored it as applied, in one upsert.
    assert_eq!(state(&db).await, (2, 2, None, 0));

    let mut group_ids = Vec::new();
    for (name, members) in [
        ("both", json!([{"value": ada}, {"value": bo}])),
        ("bo only", json!([{"value": bo}])),
        // Holds ada's id in its name, not as a member: the index does not name it.
        ("ada", json!([])),
    ] {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": format!("{name} {}", if name == "ada" { ada.as_str().unwrap() } else { "" }),
            "members": members});
        let made = scim.call("acme", "POST", "/Groups", Some(body)).await;
        assert_eq!(made.status, 201, "{}", made.body);
        group_ids.push(made.body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(state(&db).await, (5, 5, None, 0));

    let gone = scim
        .call(
            "acme",
            "DELETE",
            &format!("/Users/{}", ada.as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let members = |body: &Value| -> Vec<String> {
        body["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut after = Vec::new();
    for id in &group_ids {
        let group = scim
            .call("acme", "GET", &format!("/Groups/{id}"), None)
            .await;
        after.push(members(&group.body));
    }
    let bo = bo.as_str().unwrap().to_string();
    assert_eq!(after, [vec![bo.clone()], vec![bo], vec![]]);
    let ada_row = query::find_user(db.pool(), "ada")
        .await
        .expect("find user")
        .expect("ada stays in the target, disabled");
    assert!(ada_row.removed_at.is_some());
    // The deletion (disabled in the target) counts in the removal window.
    assert_eq!(state(&db).await, (6, 6, None, 1));

    // A held tenant's write stores the bump alone: the target is not caught up.
    let mut tx = db.begin_write().await.expect("tx");
    holds::hold(tx.conn(), "acme", "held by the test")
        .await
        .expect("hold");
    tx.commit().await.expect("commit");
    let cy = scim.call("acme", "POST", "/Users", Some(user("cy"))).await;
    assert_eq!(cy.status, 201, "{}", cy.body);
    assert_eq!(
        state(&db).await,
        (7, 6, Some("held by the test".to_string()), 1)
    );
    scim.stop().await;
}
crate::on_both_backends!(writes_keep_the_mirror_caught_up_in_one_state_read);

async fn a_user_write_reads_only_the_groups_around_the_user(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let user = |name: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "name": {"givenName": "Given", "familyName": name},
            "emails": [{"value": format!("{name}@example.com"), "primary": true}],
            "active": true})
    };
    let ada = scim.call("acme", "POST", "/Users", Some(user("ada"))).await;
    let ada = ada.body["id"].as_str().unwrap().to_string();
    let team = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Team", "members": [{"value": ada}]});
    assert_eq!(
        scim.call("acme", "POST", "/Groups", Some(team))
            .await
            .status,
        201
    );
    // A group row nobody could decode, beside the user's groups: a plan that read every
    // group of the tenant (as it did) fails on it; one reading the user's groups does not.
    sqlx::query(
        "INSERT INTO mirror_groups (connector, external_id, data, content_hash, updated_at) \
         VALUES ('acme', 'unrelated', 'not json', 'x', '2026-01-01T00:00:00.000Z')",
    )
    .execute(db.pool())
    .await
    .expect("insert");

    let bo = scim.call("acme", "POST", "/Users", Some(user("bo"))).await;
    assert_eq!(bo.status, 201, "{}", bo.body);
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let deactivated = scim
        .call("acme", "PATCH", &format!("/Users/{ada}"), Some(off))
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    let bo_row = query::find_user(db.pool(), "bo")
        .await
        .expect("find")
        .expect("bo");
    assert!(bo_row.removed_at.is_none());
    let ada_row = query::find_user(db.pool(), "ada")
        .await
        .expect("find")
        .expect("ada");
    assert!(ada_row.removed_at.is_some());
    scim.stop().await;
}
crate::on_both_backends!(a_user_write_reads_only_the_groups_around_the_user);

/// `sync::apply_pushed`, called as a library, leaves nothing for the caller to send: the
/// plan's writes and the caught-up mirror state are stored by the time it returns (the
/// SCIM server's own path sends them with its event instead).
async fn apply_pushed_as_a_library_writes_the_target_itself(db: TestDb) {
    use idsync::config::MappingConfig;
    use idsync::store::pushed::Put;
    use idsync::sync::{self, PushedChange};

    let mapping = MappingConfig::pass_through("default", OnRemove::Disable, 100, 100.0);
    let mut tx = db.begin_write().await.expect("begin");
    let before = store::write_state(tx.conn(), "acme", 60)
        .await
        .expect("state")
        .0;
    let ada = crate::support::scripted::user("u-ada", "ada@example.com");
    store::put_user(tx.conn(), "acme", ada.clone(), Put::New)
        .await
        .expect("mirror write");
    let report = sync::apply_pushed(
        &mut tx,
        "acme",
        &mapping,
        PushedChange {
            before,
            user_ids: vec!["u-ada".into()],
            users: Some(vec![ada]),
            group_ids: Vec::new(),
            groups_changed: false,
            removal_allowance: 10,
            new_users: true,
        },
    )
    .await
    .expect("apply");
    assert_eq!(report.counts.users_created, 1);
    tx.commit().await.expect("commit");

    let row = query::find_user(db.pool(), "ada@example.com")
        .await
        .expect("find")
        .expect("the target has the user");
    assert_eq!(row.connector, "acme");
    assert_eq!(
        state(&db).await,
        (1, 1, None, 0),
        "the state is stored caught up"
    );
}
crate::on_both_backends!(apply_pushed_as_a_library_writes_the_target_itself);
