//! The SCIM server over loopback against a real database: each request's SCIM answer and
//! what it did to the target, on SQLite and PostgreSQL; every error path answers with the
//! right status and RFC 7644 error body and stores nothing.

use idsync::config::{OnRemove, ScimTenantSettings, TenantAuth};
use idsync::db::Db;
use idsync::scim::server::{ServerOptions, Tenant};
use idsync::store::events::{self, EventQuery};
use idsync::sync::{self, NoProgress, RunOptions};
use idsync::target::query;
use serde_json::{Value, json};

use crate::mapping_flow::load_mapping;
use crate::on_both_backends;
use crate::support::TestDb;
use crate::support::scim::{ScimHarness, tenant, tenant_with};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

fn user_body(name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {"givenName": "Given", "familyName": name},
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
        "active": true
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn target_user(db: &Db, name: &str) -> Option<query::UserRow> {
    query::find_user(db.pool(), name).await.expect("find user")
}

async fn members_of(db: &Db, group: &str, effective: bool) -> Vec<String> {
    let group = query::find_group(db.pool(), group)
        .await
        .expect("find group")
        .unwrap_or_else(|| panic!("group {group} is in the target"));
    let rows = if effective {
        query::effective_members(db.pool(), &group.id).await
    } else {
        query::direct_members(db.pool(), &group.id).await
    }
    .expect("members");
    let mut names: Vec<String> = rows.into_iter().map(|m| m.name).collect();
    names.sort();
    names
}

async fn mirror_count(db: &Db, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("count")
}

fn assert_error(answer: &crate::support::scim::Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.status, status, "body: {}", answer.body);
    assert_eq!(
        answer.body["schemas"],
        json!([ERROR]),
        "body: {}",
        answer.body
    );
    assert_eq!(answer.body["status"], json!(status.to_string()));
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    match scim_type {
        Some(t) => assert_eq!(answer.body["scimType"], json!(t), "body: {}", answer.body),
        None => assert!(
            answer.body.get("scimType").is_none(),
            "body: {}",
            answer.body
        ),
    }
}

async fn user_lifecycle(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;

    let created = scim
        .call("acme", "POST", "/Users", Some(user_body("ada")))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(created.body["userName"], "ada");
    assert_eq!(created.body["meta"]["resourceType"], "User");
    let location = created.header("location").expect("Location");
    assert!(location.ends_with(&format!("/scim/acme/v2/Users/{id}")));
    assert_eq!(created.body["meta"]["location"], json!(location));
    let etag = created.header("etag").expect("ETag");
    assert_eq!(created.body["meta"]["version"], json!(etag));
    assert!(etag.starts_with("W/\""));
    assert_eq!(
        created.header("content-type").as_deref(),
        Some("application/scim+json")
    );
    let row = target_user(&db, "ada").await.expect("ada is in the target");
    assert_eq!(row.connector, "acme");
    assert_eq!(row.email.as_deref(), Some("ada@example.com"));
    assert!(row.active);

    let got = scim
        .call("acme", "GET", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["emails"][0]["value"], "ada@example.com");
    let found = scim
        .call(
            "acme",
            "GET",
            "/Users?filter=userName%20eq%20%22ADA%22",
            None,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], json!(id));

    // Entra ID: capitalised ops, boolean as a string.
    let off = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["active"], json!(false));
    let row = target_user(&db, "ada")
        .await
        .expect("disabled, not deleted");
    assert!(!row.active);
    assert!(row.removed_at.is_some());

    let on = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "replace", "value": {"active": true, "name.givenName": "Augusta"}}]),
            )),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(on.body["name"]["givenName"], "Augusta");
    let row = target_user(&db, "ada").await.expect("reactivated");
    assert!(row.active);
    assert_eq!(row.given_name.as_deref(), Some("Augusta"));

    // Okta: PUT of the whole user, with a password that is never stored or returned.
    let mut body = user_body("ada.lovelace");
    body["password"] = json!("correct horse");
    let put = scim
        .call("acme", "PUT", &format!("/Users/{id}"), Some(body))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(put.body.get("password").is_none());
    assert!(target_user(&db, "ada.lovelace").await.is_some());
    assert!(target_user(&db, "ada").await.is_none());

    let deleted = scim
        .call("acme", "DELETE", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    let row = target_user(&db, "ada.lovelace")
        .await
        .expect("kept, disabled");
    assert!(!row.active);
    let gone = scim
        .call("acme", "GET", &format!("/Users/{id}"), None)
        .await;
    assert_error(&gone, 404, None);
    scim.stop().await;
}
on_both_backends!(user_lifecycle);

async fn deletion_follows_on_remove_delete(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Delete)]).await;
    let a = scim
        .call("acme", "POST", "/Users", Some(user_body("a")))
        .await;
    let b = scim
        .call("acme", "POST", "/Users", Some(user_body("b")))
        .await;
    let a_id = a.body["id"].as_str().unwrap().to_string();
    let b_id = b.body["id"].as_str().unwrap().to_string();
    let off = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Users/{a_id}"),
            Some(patch(
                json!([{"op": "replace", "value": {"active": false}}]),
            )),
        )
        .await;
    assert_eq!(off.status, 200);
    assert!(
        target_user(&db, "a").await.is_none(),
        "active:false deletes under on_remove = delete"
    );
    // The IdP still sees the user.
    let got = scim
        .call("acme", "GET", &format!("/Users/{a_id}"), None)
        .await;
    assert_eq!(got.body["active"], json!(false));
    let deleted = scim
        .call("acme", "DELETE", &format!("/Users/{b_id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(target_user(&db, "b").await.is_none());
    scim.stop().await;
}
on_both_backends!(deletion_follows_on_remove_delete);

async fn groups_members_and_nesting(db: TestDb) {
    let mapping = load_mapping("flat", "on_remove = \"disable\"\nnesting = \"flatten\"\n");
    let scim = ScimHarness::start(
        &db,
        vec![Tenant::new("acme", ScimTenantSettings::default(), mapping)],
    )
    .await;
    let mut ids = Vec::new();
    for name in ["u1", "u2", "u3"] {
        let r = scim
            .call("acme", "POST", "/Users", Some(user_body(name)))
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let team = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(
                json!({"schemas": [GROUP], "displayName": "Team", "members": [{"value": ids[0]}]}),
            ),
        )
        .await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_string();
    assert_eq!(team.body["members"][0]["type"], "User");
    assert_eq!(members_of(&db, "Team", false).await, vec!["u1"]);

    // A parent group with the team nested in it: flattened in the target.
    let org = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "Org", "members": [{"value": team_id, "type": "Group"}]})),
        )
        .await;
    assert_eq!(org.status, 201, "{}", org.body);
    assert_eq!(members_of(&db, "Org", false).await, vec!["u1"]);

    // Entra ID adds members with an Add op, and removes with the ids in `value`.
    let added = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{team_id}"),
            Some(patch(json!([{"op": "Add", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}]}]))),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["members"].as_array().unwrap().len(), 3);
    assert_eq!(members_of(&db, "Team", false).await, vec!["u1", "u2", "u3"]);
    assert_eq!(members_of(&db, "Org", true).await, vec!["u1", "u2", "u3"]);

    let removed = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{team_id}"),
            Some(patch(
                json!([{"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}]),
            )),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(members_of(&db, "Team", false).await, vec!["u2", "u3"]);
    assert_eq!(members_of(&db, "Org", true).await, vec!["u2", "u3"]);

    // Okta renames with a path-less replace carrying the id.
    let renamed = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{team_id}"),
            Some(patch(
                json!([{"op": "replace", "value": {"id": team_id, "displayName": "Crew"}}]),
            )),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(members_of(&db, "Crew", false).await, vec!["u2", "u3"]);
    assert!(
        query::find_group(db.pool(), "Team")
            .await
            .unwrap()
            .is_none()
    );

    // Filtered member removal, and members of a group that is then deleted.
    let filtered = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{team_id}"),
            Some(patch(
                json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}]),
            )),
        )
        .await;
    assert_eq!(filtered.status, 200);
    assert_eq!(members_of(&db, "Org", true).await, vec!["u3"]);
    let deleted = scim
        .call("acme", "DELETE", &format!("/Groups/{team_id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(
        query::find_group(db.pool(), "Crew")
            .await
            .unwrap()
            .is_none()
    );
    assert!(members_of(&db, "Org", true).await.is_empty());
    let org_now = scim
        .call(
            "acme",
            "GET",
            &format!("/Groups/{}", org.body["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        org_now.body["members"],
        json!([]),
        "the deleted group left its parent"
    );

    // Deleting a user takes it out of its groups.
    let solo = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(
                json!({"schemas": [GROUP], "displayName": "Solo", "members": [{"value": ids[2]}]}),
            ),
        )
        .await;
    let solo_id = solo.body["id"].as_str().unwrap();
    scim.call("acme", "DELETE", &format!("/Users/{}", ids[2]), None)
        .await;
    let solo_now = scim
        .call("acme", "GET", &format!("/Groups/{solo_id}"), None)
        .await;
    assert_eq!(solo_now.body["members"], json!([]));
    // The member index was rewritten with the group, in the deletion's one batch.
    let listing = scim
        .call(
            "acme",
            "GET",
            &format!("/Groups?filter=members.value%20eq%20%22{}%22", ids[2]),
            None,
        )
        .await;
    assert_eq!(listing.status, 200, "{}", listing.body);
    assert_eq!(listing.body["totalResults"], 0, "{}", listing.body);
    assert_eq!(
        mirror_count(&db, "mirror_users").await,
        (ids.len() - 1) as i64,
        "the user left the mirror"
    );
    scim.stop().await;
}
on_both_backends!(groups_members_and_nesting);

async fn thousands_of_members_in_one_patch(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    // Users straight into the mirror (the request path is tested above), then projected.
    let mut tx = db.begin_write().await.unwrap();
    // IDSYNC_TEST_BIG_GROUP raises the size (to time it by hand).
    let size: usize = std::env::var("IDSYNC_TEST_BIG_GROUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let users: Vec<_> = (0..size)
        .map(|i| {
            let u = crate::support::scripted::user(
                &format!("id{i:04}"),
                &format!("m{i:04}@example.com"),
            );
            let h = idsync::model::content_hash(&u);
            (u, h)
        })
        .collect();
    let ids: Vec<String> = users.iter().map(|(u, _)| u.external_id.clone()).collect();
    idsync::store::mirror::upsert_users(tx.conn(), "acme", users)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mapping =
        idsync::config::MappingConfig::pass_through("default", OnRemove::Disable, 1000, 100.0);
    sync::reconcile(
        &db,
        "acme",
        &mapping,
        RunOptions {
            inactive_is_removal: true,
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    let group = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "All"})),
        )
        .await;
    let gid = group.body["id"].as_str().unwrap();
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let started = std::time::Instant::now();
    let added = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{gid}?excludedAttributes=members"),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": members}]),
            )),
        )
        .await;
    eprintln!("PATCH adding {size} members took {:?}", started.elapsed());
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.get("members").is_none());
    assert_eq!(members_of(&db, "All", false).await.len(), size);
    scim.stop().await;
}
on_both_backends!(thousands_of_members_in_one_patch);

async fn lists_page_sort_and_shape(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    for name in ["carol", "alice", "bob", "dave", "erin"] {
        scim.call("acme", "POST", "/Users", Some(user_body(name)))
            .await;
    }
    let page = scim
        .call(
            "acme",
            "GET",
            "/Users?startIndex=2&count=2&sortBy=userName&sortOrder=descending&attributes=userName",
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["totalResults"], 5);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 2);
    let names: Vec<&str> = page.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["dave", "carol"]);
    assert!(page.body["Resources"][0].get("emails").is_none());
    assert!(page.body["Resources"][0].get("id").is_some());
    let only_total = scim.call("acme", "GET", "/Users?count=0", None).await;
    assert_eq!(only_total.body["totalResults"], 5);
    assert_eq!(only_total.body["Resources"], json!([]));
    let excluded = scim
        .call(
            "acme",
            "GET",
            "/Users?filter=userName%20sw%20%22b%22&excludedAttributes=emails,name",
            None,
        )
        .await;
    assert_eq!(excluded.body["totalResults"], 1);
    assert!(excluded.body["Resources"][0].get("emails").is_none());
    assert_eq!(excluded.body["Resources"][0]["userName"], "bob");
    let search = scim
        .call(
            "acme",
            "POST",
            "/Users/.search",
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"erin\"", "attributes": ["userName"]})),
        )
        .await;
    assert_eq!(search.body["totalResults"], 1, "{}", search.body);
    scim.stop().await;
}
on_both_backends!(lists_page_sort_and_shape);

async fn etags_and_preconditions(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let created = scim
        .call("acme", "POST", "/Users", Some(user_body("ada")))
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let etag = created.header("etag").unwrap();
    let url = scim.url("acme", &format!("/Users/{id}"));
    let same = scim
        .send("acme", "GET", &url, None, &[("if-none-match", &etag)])
        .await;
    assert_eq!(same.status, 304);
    let stale = scim
        .send(
            "acme",
            "PATCH",
            &url,
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "A"}]),
            )),
            &[("if-match", "W/\"not-the-version\"")],
        )
        .await;
    assert_error(&stale, 412, None);
    let fresh = scim
        .send(
            "acme",
            "PATCH",
            &url,
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "A"}]),
            )),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_ne!(fresh.header("etag").unwrap(), etag);
    scim.stop().await;
}
on_both_backends!(etags_and_preconditions);

async fn bad_requests_answer_scim_errors_and_store_nothing(db: TestDb) {
    let scim = ScimHarness::start_with(
        &db,
        vec![tenant("acme", OnRemove::Disable)],
        ServerOptions {
            max_body_bytes: 64 * 1024,
            ..ServerOptions::default()
        },
    )
    .await;
    let taken = scim
        .call("acme", "POST", "/Users", Some(user_body("ada")))
        .await;
    let id = taken.body["id"].as_str().unwrap().to_string();
    let users_before = mirror_count(&db, "mirror_users").await;
    let url = scim.url("acme", "/Users");
    let raw = |body: &'static str, content_type: &'static str| {
        let client = scim.client.clone();
        let token = scim.tokens["acme"].clone();
        let url = url.clone();
        async move {
            let r = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = raw("{\"schemas\": [", "application/scim+json").await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidSyntax"))
    );
    let (status, body) = raw("{}", "text/plain").await;
    assert_eq!((status, body["status"].as_str()), (415, Some("415")));
    let (status, body) = raw("[1, 2]", "application/json").await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidSyntax"))
    );

    let wrong_schema = scim
        .call(
            "acme",
            "POST",
            "/Users",
            Some(json!({"schemas": [GROUP], "userName": "x"})),
        )
        .await;
    assert_error(&wrong_schema, 400, Some("invalidSyntax"));
    let mut unknown = user_body("eve");
    unknown["favouriteColour"] = json!("blue");
    assert_error(
        &scim.call("acme", "POST", "/Users", Some(unknown)).await,
        400,
        Some("invalidSyntax"),
    );
    let no_name = json!({"schemas": [USER], "emails": []});
    assert_error(
        &scim.call("acme", "POST", "/Users", Some(no_name)).await,
        400,
        Some("invalidValue"),
    );
    let duplicate = scim
        .call("acme", "POST", "/Users", Some(user_body("ADA")))
        .await;
    assert_error(&duplicate, 409, Some("uniqueness"));
    let huge = json!({"schemas": [USER], "userName": "big", "displayName": "x".repeat(70_000)});
    let too_big = scim.call("acme", "POST", "/Users", Some(huge)).await;
    assert_error(&too_big, 413, None);

    assert_error(
        &scim
            .call("acme", "GET", "/Users?filter=userName%20eq", None)
            .await,
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &scim
            .call("acme", "GET", "/Users?filter=title%20eq%20%22x%22", None)
            .await,
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &scim.call("acme", "GET", "/Users?sortBy=title", None).await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &scim.call("acme", "GET", "/Users/nope", None).await,
        404,
        None,
    );
    assert_error(
        &scim
            .call(
                "acme",
                "PATCH",
                "/Users/nope",
                Some(patch(json!([{"op": "remove", "path": "title"}]))),
            )
            .await,
        404,
        None,
    );
    assert_error(&scim.call("acme", "GET", "/Widgets", None).await, 404, None);
    assert_error(
        &scim.call("acme", "DELETE", "/Users", None).await,
        405,
        None,
    );
    assert_error(
        &scim.call("acme", "POST", "/Bulk", Some(json!({}))).await,
        501,
        None,
    );

    let user_url = format!("/Users/{id}");
    let bad_path = patch(json!([{"op": "replace", "path": "emails[type eq]", "value": "x"}]));
    assert_error(
        &scim.call("acme", "PATCH", &user_url, Some(bad_path)).await,
        400,
        Some("invalidPath"),
    );
    let read_only = patch(json!([{"op": "replace", "path": "id", "value": "x"}]));
    assert_error(
        &scim.call("acme", "PATCH", &user_url, Some(read_only)).await,
        400,
        Some("mutability"),
    );
    let no_target = patch(
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@x"}}]),
    );
    assert_error(
        &scim.call("acme", "PATCH", &user_url, Some(no_target)).await,
        400,
        Some("noTarget"),
    );
    let many: Vec<Value> = (0..=idsync::scim::patch::MAX_OPERATIONS)
        .map(|_| json!({"op": "replace", "path": "displayName", "value": "x"}))
        .collect();
    assert_error(
        &scim
            .call("acme", "PATCH", &user_url, Some(patch(Value::Array(many))))
            .await,
        400,
        Some("tooMany"),
    );
    // All or nothing: a good first operation is not kept when the second fails.
    let half = patch(json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "frobnicate", "path": "title"}
    ]));
    assert_error(
        &scim.call("acme", "PATCH", &user_url, Some(half)).await,
        400,
        Some("invalidSyntax"),
    );
    let bad_member = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "G", "members": [{"value": "ghost"}]})),
        )
        .await;
    assert_error(&bad_member, 400, Some("invalidValue"));

    let unchanged = scim.call("acme", "GET", &user_url, None).await;
    assert!(
        unchanged.body.get("displayName").is_none(),
        "{}",
        unchanged.body
    );
    assert_eq!(mirror_count(&db, "mirror_users").await, users_before);
    assert_eq!(mirror_count(&db, "mirror_groups").await, 0);
    assert_eq!(
        query::list_users(db.pool(), None, 100, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    scim.stop().await;
}
on_both_backends!(bad_requests_answer_scim_errors_and_store_nothing);

#[tokio::test]
async fn credentials_are_per_tenant() {
    let db = crate::support::sqlite().await;
    let basic = tenant_with(
        "okta",
        ScimTenantSettings {
            auth: TenantAuth::Basic {
                username: "okta".into(),
                password: idsync::config::SecretString::new("s3cret"),
            },
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(
        &db,
        vec![
            tenant("acme", OnRemove::Disable),
            tenant("other", OnRemove::Disable),
            basic,
        ],
    )
    .await;
    let url = scim.url("acme", "/Users");
    let anonymous = scim.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["schemas"], json!([ERROR]));
    assert_eq!(body["status"], "401");
    // Another tenant's token does not open this one.
    let crossed = scim
        .client
        .get(&url)
        .bearer_auth(&scim.tokens["other"])
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), 401);
    let garbage = scim
        .client
        .get(&url)
        .bearer_auth("idsync_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let own = scim
        .client
        .get(&url)
        .bearer_auth(&scim.tokens["acme"])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    idsync::store::tokens::revoke(&db, "acme", None)
        .await
        .unwrap();
    let revoked = scim
        .client
        .get(&url)
        .bearer_auth(&scim.tokens["acme"])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);

    let okta = scim.url("okta", "/Users");
    let good = scim
        .client
        .get(&okta)
        .basic_auth("okta", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let bad = scim
        .client
        .get(&okta)
        .basic_auth("okta", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let unknown = scim
        .client
        .get(scim.url("nobody", "/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    scim.stop().await;
}

#[tokio::test]
async fn allowlist_rate_limit_and_forwarded_for() {
    let db = crate::support::sqlite().await;
    let fenced = tenant_with(
        "fenced",
        ScimTenantSettings {
            allow_from: vec!["10.0.0.0/8".parse().unwrap()],
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..ScimTenantSettings::default()
        },
    );
    let slow = tenant_with(
        "slow",
        ScimTenantSettings {
            requests_per_second: std::num::NonZeroU32::new(1).unwrap(),
            burst: std::num::NonZeroU32::new(2).unwrap(),
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(&db, vec![fenced, slow]).await;
    let url = scim.url("fenced", "/Users");
    let direct = scim.send("fenced", "GET", &url, None, &[]).await;
    assert_error(&direct, 403, None);
    // Through the trusted proxy on loopback, from an allowed client.
    let proxied = scim
        .send(
            "fenced",
            "GET",
            &url,
            None,
            &[("x-forwarded-for", "10.1.2.3")],
        )
        .await;
    assert_eq!(proxied.status, 200);
    let outsider = scim
        .send(
            "fenced",
            "GET",
            &url,
            None,
            &[("x-forwarded-for", "10.1.2.3, 192.0.2.1")],
        )
        .await;
    assert_eq!(
        outsider.status, 403,
        "the nearest untrusted hop is the client"
    );

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let answer = scim.call("slow", "GET", "/Users", None).await;
        if answer.status == 429 {
            retry_after = answer.header("retry-after");
            assert_eq!(answer.body["status"], "429");
        }
        statuses.push(answer.status);
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    scim.stop().await;
}

async fn removal_bursts_are_held(db: TestDb) {
    let held = Tenant::new(
        "acme",
        ScimTenantSettings {
            max_removals: Some(2),
            ..ScimTenantSettings::default()
        },
        idsync::config::MappingConfig::pass_through("default", OnRemove::Disable, 1000, 100.0),
    );
    let scim = ScimHarness::start(&db, vec![held]).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let r = scim
            .call("acme", "POST", "/Users", Some(user_body(name)))
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    for id in &ids[..3] {
        let r = scim
            .call("acme", "DELETE", &format!("/Users/{id}"), None)
            .await;
        assert_eq!(r.status, 204, "the IdP sees every deletion succeed");
    }
    assert!(!target_user(&db, "a").await.unwrap().active);
    assert!(!target_user(&db, "b").await.unwrap().active);
    assert!(
        target_user(&db, "c").await.unwrap().active,
        "the third removal is held"
    );
    let holds = idsync::store::holds::list(&db).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert!(
        holds[0].reason.contains("idsync reconcile acme"),
        "{}",
        holds[0].reason
    );
    let runs = idsync::store::runs::recent_runs(db.pool(), Some("acme"), 5)
        .await
        .unwrap();
    assert_eq!(runs[0].outcome, idsync::store::runs::Outcome::Held);
    // While held, pushes land in the mirror only.
    let e = scim
        .call("acme", "POST", "/Users", Some(user_body("e")))
        .await;
    assert_eq!(e.status, 201);
    assert!(target_user(&db, "e").await.is_none());
    // The admin confirms: everything pending is applied and the hold released.
    let mapping =
        idsync::config::MappingConfig::pass_through("default", OnRemove::Disable, 1000, 100.0);
    let options = RunOptions {
        allow_mass_delete: true,
        inactive_is_removal: true,
        ..RunOptions::default()
    };
    sync::reconcile(&db, "acme", &mapping, options, &NoProgress)
        .await
        .unwrap();
    assert!(!target_user(&db, "c").await.unwrap().active);
    assert!(target_user(&db, "e").await.unwrap().active);
    assert!(idsync::store::holds::list(&db).await.unwrap().is_empty());
    scim.stop().await;
}
on_both_backends!(removal_bursts_are_held);

async fn mapping_filters_defaults_and_applications(db: TestDb) {
    let mapping = load_mapping(
        "apps",
        r#"
on_remove = "disable"
[filter]
exclude_users = 'userName sw "svc-"'
[groups]
default = ["everyone"]
[[applications]]
name = "wiki"
groups = ["wiki-users"]
"#,
    );
    let scim = ScimHarness::start(
        &db,
        vec![Tenant::new("acme", ScimTenantSettings::default(), mapping)],
    )
    .await;
    let svc = scim
        .call("acme", "POST", "/Users", Some(user_body("svc-backup")))
        .await;
    assert_eq!(svc.status, 201);
    let svc_id = svc.body["id"].as_str().unwrap();
    assert!(
        target_user(&db, "svc-backup").await.is_none(),
        "excluded by the filter"
    );
    // The IdP can still read and change it.
    let patched = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Users/{svc_id}"),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Backup"}]),
            )),
        )
        .await;
    assert_eq!(patched.status, 200);
    let ada = scim
        .call("acme", "POST", "/Users", Some(user_body("ada")))
        .await;
    assert_eq!(ada.status, 201);
    assert_eq!(members_of(&db, "everyone", false).await, vec!["ada"]);
    assert_eq!(members_of(&db, "wiki-users", false).await, vec!["ada"]);
    scim.stop().await;
}
on_both_backends!(mapping_filters_defaults_and_applications);

#[tokio::test]
async fn scim_1_1_for_the_okta_agent() {
    let db = crate::support::sqlite().await;
    let scim = ScimHarness::start(&db, vec![tenant("onprem", OnRemove::Disable)]).await;
    let v1 = |path: &str| scim.url_v1("onprem", path);
    let body = json!({
        "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
        "userName": "grace",
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": "grace@example.com", "primary": true}],
        "password": "never-stored",
        "groups": [],
        "urn:scim:schemas:extension:enterprise:1.0": {"department": "Navy"}
    });
    let created = scim
        .send("onprem", "POST", &v1("/Users"), Some(body), &[])
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["schemas"][0], "urn:scim:schemas:core:1.0");
    assert_eq!(
        created.body["urn:scim:schemas:extension:enterprise:1.0"]["department"],
        "Navy"
    );
    assert!(created.body.get("password").is_none());
    assert_eq!(
        created.header("content-type").as_deref(),
        Some("application/json")
    );
    let id = created.body["id"].as_str().unwrap().to_string();
    // The same user through 2.0 carries the 2.0 names.
    let v2 = scim
        .call("onprem", "GET", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(v2.body["schemas"][0], USER);
    let listed = scim
        .send(
            "onprem",
            "GET",
            &v1("/Users?filter=userName%20eq%20%22grace%22&startIndex=1&count=100"),
            None,
            &[],
        )
        .await;
    assert_eq!(listed.body["schemas"], json!(["urn:scim:schemas:core:1.0"]));
    assert_eq!(listed.body["totalResults"], 1);
    // Deactivation by PUT, as the agent does it.
    let mut off = listed.body["Resources"][0].clone();
    off["active"] = json!(false);
    let put = scim
        .send(
            "onprem",
            "PUT",
            &v1(&format!("/Users/{id}")),
            Some(off),
            &[],
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(!target_user(&db, "grace").await.unwrap().active);
    let missing = scim
        .send("onprem", "GET", &v1("/Users/nope"), None, &[])
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["Errors"][0]["code"], "404");
    let spc = scim
        .send("onprem", "GET", &v1("/ServiceProviderConfigs"), None, &[])
        .await;
    assert_eq!(spc.status, 200);
    // 1.1 PATCH: members with operation delete.
    let group = scim
        .send("onprem", "POST", &v1("/Groups"), Some(json!({"schemas": ["urn:scim:schemas:core:1.0"], "displayName": "Ops", "members": [{"value": id}]})), &[])
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = group.body["id"].as_str().unwrap();
    let patched = scim
        .send("onprem", "PATCH", &v1(&format!("/Groups/{gid}")), Some(json!({"schemas": ["urn:scim:schemas:core:1.0"], "members": [{"value": id, "operation": "delete"}]})), &[])
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["members"], json!([]));
    scim.stop().await;
}

async fn tenant_events(db: &Db) -> Vec<idsync::store::events::Event> {
    events::query(
        db,
        &EventQuery {
            tenant: Some("acme".into()),
            limit: 10,
            ..EventQuery::default()
        },
    )
    .await
    .expect("events")
}

#[tokio::test]
async fn events_are_logged_with_secrets_redacted() {
    let db = crate::support::sqlite().await;
    let retained = tenant_with(
        "acme",
        ScimTenantSettings {
            event_retention: 3,
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(&db, vec![retained]).await;
    let mut body = user_body("ada");
    body["password"] = json!("hunter2");
    scim.call("acme", "POST", "/Users", Some(body)).await;
    scim.call(
        "acme",
        "GET",
        "/Users?filter=userName%20eq%20%22ada%22",
        None,
    )
    .await;
    scim.call("acme", "GET", "/Users/missing", None).await;
    scim.events.flush().await;
    let all = tenant_events(&db).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].status, 404);
    assert!(all[0].operation.contains("failed"), "{}", all[0].operation);
    assert_eq!(all[1].path, "/Users?filter=userName%20eq%20%22ada%22");
    assert!(all[1].operation.contains("1 found"), "{}", all[1].operation);
    let create = &all[2];
    assert_eq!((create.method.as_str(), create.status), ("POST", 201));
    assert_eq!(create.operation, "create user ada");
    let logged = create.request_body.as_deref().unwrap();
    assert!(
        !logged.contains("hunter2") && logged.contains("[redacted]"),
        "{logged}"
    );
    assert!(
        create
            .response_body
            .as_deref()
            .unwrap()
            .contains("\"userName\":\"ada\"")
    );
    // Retention: the oldest go once the tenant has more than it keeps.
    scim.call("acme", "GET", "/ServiceProviderConfig", None)
        .await;
    scim.events.flush().await;
    let kept = tenant_events(&db).await;
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0].path, "/ServiceProviderConfig");
    let failures = events::query(
        &db,
        &EventQuery {
            status: Some("4xx".parse().unwrap()),
            limit: 10,
            ..EventQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(failures.len(), 1);
    scim.stop().await;
}

#[tokio::test]
async fn discovery_documents_are_served() {
    let db = crate::support::sqlite().await;
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let spc = scim
        .call("acme", "GET", "/ServiceProviderConfig", None)
        .await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);
    let types = scim.call("acme", "GET", "/ResourceTypes", None).await;
    assert_eq!(types.body["totalResults"], 2);
    let user = scim.call("acme", "GET", "/ResourceTypes/User", None).await;
    assert_eq!(user.body["endpoint"], "/Users");
    let schema = scim
        .call("acme", "GET", &format!("/Schemas/{USER}"), None)
        .await;
    assert_eq!(schema.body["id"], USER);
    assert_error(
        &scim.call("acme", "GET", "/Schemas/urn:nope", None).await,
        404,
        None,
    );
    scim.stop().await;
}

#[tokio::test]
async fn a_request_over_the_timeout_is_abandoned_and_stores_nothing() {
    let db = crate::support::sqlite().await;
    let scim = ScimHarness::start_with(
        &db,
        vec![tenant("acme", OnRemove::Disable)],
        ServerOptions {
            request_timeout: std::time::Duration::from_millis(200),
            ..ServerOptions::default()
        },
    )
    .await;
    // The request cannot finish while another writer holds the database: it is over its
    // timeout whatever the machine's speed (a zero timeout raced a fast request). A first
    // request records the token's use, a write that would otherwise wait behind the
    // blocker before the request's own clock starts.
    let warm_up = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(warm_up.status, 200, "{}", warm_up.body);
    let blocker = db.begin_write().await.unwrap();
    let answer = scim
        .call("acme", "POST", "/Users", Some(user_body("slow")))
        .await;
    blocker.rollback().await.unwrap();
    assert_error(&answer, 503, None);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was changed")
    );
    assert_eq!(mirror_count(&db, "mirror_users").await, 0);
    assert!(target_user(&db, "slow").await.is_none());
    scim.stop().await;
}

/// Deterministic pseudo-random JSON (no two runs differ) with SCIM-looking keys and values.
struct Soup(u64);

impl Soup {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }

    fn word(&mut self) -> String {
        const WORDS: [&str; 24] = [
            "schemas",
            "userName",
            "members",
            "value",
            "op",
            "path",
            "Operations",
            "emails",
            "active",
            "displayName",
            "name.givenName",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:api:messages:2.0:PatchOp",
            "add",
            "Replace",
            "remove",
            "members[value eq \"x\"]",
            "emails[type eq \"work\"].value",
            "True",
            "",
            "[",
            "\"",
            "id",
            "meta",
        ];
        WORDS[self.next(WORDS.len())].to_string()
    }

    fn json(&mut self, depth: usize) -> Value {
        match self.next(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.next(2) == 0),
            2 => json!(self.next(1000) as i64 - 500),
            3 | 4 => json!(self.word()),
            5 => {
                let n = self.next(4);
                Value::Array((0..n).map(|_| self.json(depth - 1)).collect())
            }
            _ => {
                let n = self.next(5);
                Value::Object(
                    (0..n)
                        .map(|_| (self.word(), self.json(depth - 1)))
                        .collect(),
                )
            }
        }
    }
}

/// Hundreds of malformed or odd requests: none is a server error, every error is a SCIM
/// error body, and the server still answers normally afterwards.
#[tokio::test]
async fn request_soup_never_breaks_the_server() {
    let db = crate::support::sqlite().await;
    let unlimited = tenant_with(
        "acme",
        ScimTenantSettings {
            requests_per_second: std::num::NonZeroU32::new(100_000).unwrap(),
            burst: std::num::NonZeroU32::new(100_000).unwrap(),
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(&db, vec![unlimited]).await;
    let user = scim
        .call("acme", "POST", "/Users", Some(user_body("anchor")))
        .await;
    let uid = user.body["id"].as_str().unwrap().to_string();
    let group = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "G"})),
        )
        .await;
    let gid = group.body["id"].as_str().unwrap().to_string();
    let mut soup = Soup(7);
    let targets = [
        ("POST", "/Users".to_string()),
        ("POST", "/Groups".to_string()),
        ("PUT", format!("/Users/{uid}")),
        ("PATCH", format!("/Users/{uid}")),
        ("PATCH", format!("/Groups/{gid}")),
        ("POST", "/Users/.search".to_string()),
    ];
    for round in 0..400 {
        let (method, path) = &targets[round % targets.len()];
        let mut body = soup.json(4);
        if round % 3 == 0 {
            // Often almost valid: a PatchOp or resource envelope around the soup.
            body = json!({"schemas": [if method == &"PATCH" { PATCH } else { USER }],
                "Operations": [body.clone()], "userName": body});
        }
        let answer = scim.call("acme", method, path, Some(body.clone())).await;
        assert!(
            answer.status < 500,
            "{method} {path} with {body}: {} {}",
            answer.status,
            answer.body
        );
        if answer.status >= 400 {
            assert_eq!(answer.body["schemas"], json!([ERROR]), "{}", answer.body);
        }
        let filter = format!("{} {} {}", soup.word(), soup.word(), soup.word());
        let url = format!("/Users?filter={}", url_escape(&filter));
        let listed = scim.call("acme", "GET", &url, None).await;
        assert!(listed.status < 500, "filter {filter:?}: {}", listed.body);
    }
    let fine = scim
        .call("acme", "GET", &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(fine.status, 200);
    scim.stop().await;
}

fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET …?filter=<text>` with the filter percent-encoded.
fn filtered(endpoint: &str, filter: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    format!("{endpoint}?filter={}", encoded.replace('+', "%20"))
}

fn ids_of(answer: &crate::support::scim::Answer) -> Vec<String> {
    answer.body["Resources"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// IdPs look users up by e-mail before creating them, and groups by member: answered from
/// the per-element index, kept in step with every SCIM write.
async fn filters_on_emails_and_members(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Delete)]).await;
    let mut ids = Vec::new();
    for name in ["alice", "bob"] {
        let created = scim
            .call("acme", "POST", "/Users", Some(user_body(name)))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_string());
    }
    let get = |filter: &'static str| {
        let path = filtered("/Users", filter);
        let scim = &scim;
        async move { scim.call("acme", "GET", &path, None).await }
    };

    let found = get(r#"emails.value eq "BOB@example.com""#).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(ids_of(&found), [ids[1].clone()]);
    assert_eq!(found.body["Resources"][0]["userName"], "bob");

    // What Entra ID sends when the work e-mail is its matching attribute.
    let found = get(r#"emails[type eq "work"].value eq "alice@example.com""#).await;
    assert_eq!(ids_of(&found), [ids[0].clone()]);
    let found = get(r#"emails[type eq "home"].value eq "alice@example.com""#).await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);
    let found = get(r#"emails[primary eq true] and emails.value sw "ALI""#).await;
    assert_eq!(ids_of(&found), [ids[0].clone()]);
    let found = get(r#"emails.value ne "alice@example.com""#).await;
    assert_eq!(ids_of(&found), [ids[1].clone()]);

    // A PATCH replacing bob's e-mails moves him in the index.
    let patched = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Users/{}", ids[1]),
            Some(patch(json!([{"op": "replace", "path": "emails",
                "value": [{"value": "robert@example.org", "type": "home"}]}]))),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let found = get(r#"emails.value eq "bob@example.com""#).await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);
    let found = get(r#"emails[type eq "home" and value co "ROBERT"]"#).await;
    assert_eq!(ids_of(&found), [ids[1].clone()]);

    // Groups by member id.
    let team = scim
        .call(
            "acme",
            "POST",
            "/Groups",
            Some(
                json!({"schemas": [GROUP], "displayName": "Team", "members": [{"value": ids[0]}]}),
            ),
        )
        .await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_string();
    let by_member = format!(r#"members.value eq "{}""#, ids[0]);
    let found = scim
        .call("acme", "GET", &filtered("/Groups", &by_member), None)
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(ids_of(&found), [team_id]);
    let by_other = format!(r#"members[value eq "{}"]"#, ids[1]);
    let found = scim
        .call("acme", "GET", &filtered("/Groups", &by_other), None)
        .await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);

    // Deleting a user takes its values out of the index.
    let deleted = scim
        .call("acme", "DELETE", &format!("/Users/{}", ids[1]), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let found = get(r#"emails.value eq "robert@example.org""#).await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);

    // An attribute that is not indexed is still refused, never scanned.
    let refused = get(r#"addresses.value eq "x""#).await;
    assert_error(&refused, 400, Some("invalidFilter"));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("emails, phoneNumbers"),
        "{}",
        refused.body
    );
    let refused = get(r#"emails.value gt "a""#).await;
    assert_error(&refused, 400, Some("invalidFilter"));
    scim.stop().await;
}
on_both_backends!(filters_on_emails_and_members);
