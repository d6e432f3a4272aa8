//! What two independent SCIM conformance suites (scim2-tester, scim-sanity; run by
//! `.ci/scim-conformance`) found, pinned as tests on both backends: `POST /.search` at the
//! service root (RFC 7644 §3.4.3), an enterprise extension PATCHed with a value that
//! carries its own `schemas`, a member's `display` returned as sent, and the documented
//! 400 for a member id that names no resource.

use idsync::config::OnRemove;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestDb;
use crate::support::scim::{ScimHarness, tenant};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

async fn create(scim: &ScimHarness, path: &str, body: Value) -> String {
    let created = scim.call("acme", "POST", path, Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["id"].as_str().expect("id").to_string()
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name,
           "emails": [{"value": format!("{name}@example.com"), "primary": true}]})
}

async fn root_search_lists_users_then_groups(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    for name in ["ada", "bob"] {
        create(&scim, "/Users", user(name)).await;
    }
    for name in ["Staff", "Leads"] {
        create(
            &scim,
            "/Groups",
            json!({"schemas": [GROUP], "displayName": name}),
        )
        .await;
    }
    let all = scim
        .call(
            "acme",
            "POST",
            "/.search",
            Some(json!({"schemas": [SEARCH]})),
        )
        .await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["totalResults"], 4);
    let kinds: Vec<&str> = all.body["Resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["User", "User", "Group", "Group"]);

    // A page across the boundary between the types.
    let page = scim
        .call(
            "acme",
            "POST",
            "/.search",
            Some(json!({"schemas": [SEARCH], "startIndex": 2, "count": 2,
                        "attributes": ["id"]})),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["totalResults"], 4);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 2);
    let kinds: Vec<&str> = page.body["Resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap_or("shaped"))
        .collect();
    assert_eq!(kinds.len(), 2, "{}", page.body);

    // A filter on an attribute only users have finds no group.
    let filtered = scim
        .call(
            "acme",
            "POST",
            "/.search",
            Some(json!({"schemas": [SEARCH], "filter": "userName eq \"ada\""})),
        )
        .await;
    assert_eq!(filtered.status, 200, "{}", filtered.body);
    assert_eq!(filtered.body["totalResults"], 1);
    assert_eq!(filtered.body["Resources"][0]["userName"], "ada");
    // GET is not how a root search is made.
    let get = scim.call("acme", "GET", "/.search", None).await;
    assert_eq!(get.status, 405);
}
on_both_backends!(root_search_lists_users_then_groups);

async fn an_extension_patched_with_its_own_schemas_stays_valid(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let id = create(&scim, "/Users", user("ada")).await;
    for op in ["add", "replace"] {
        let patched = scim
            .call(
                "acme",
                "PATCH",
                &format!("/Users/{id}"),
                Some(json!({"schemas": [PATCH], "Operations": [{
                    "op": op, "path": ENTERPRISE,
                    "value": {"schemas": [ENTERPRISE], "employeeNumber": format!("{op}-7")}
                }]})),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        assert_eq!(
            patched.body[ENTERPRISE],
            json!({"employeeNumber": format!("{op}-7")}),
            "{}",
            patched.body
        );
    }
    let got = scim
        .call("acme", "GET", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(got.body[ENTERPRISE], json!({"employeeNumber": "replace-7"}));
    // A sub-attribute of the extension afterwards.
    let patched = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH], "Operations": [{
                "op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "IT"
            }]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body[ENTERPRISE],
        json!({"employeeNumber": "replace-7", "department": "IT"})
    );
}
on_both_backends!(an_extension_patched_with_its_own_schemas_stays_valid);

async fn a_members_display_is_returned_as_sent(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let ada = create(&scim, "/Users", user("ada")).await;
    let bob = create(&scim, "/Users", user("bob")).await;
    let group = create(
        &scim,
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Staff",
               "members": [{"value": ada, "display": "Ada Lovelace"}]}),
    )
    .await;
    let patched = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{group}"),
            Some(json!({"schemas": [PATCH], "Operations": [{
                "op": "add", "path": "members",
                "value": [{"value": bob, "type": "User", "display": "Bob B."}]
            }]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let got = scim
        .call("acme", "GET", &format!("/Groups/{group}"), None)
        .await;
    let mut members: Vec<(String, String)> = got.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["value"].as_str().expect("value").to_string(),
                m["display"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    members.sort();
    let mut expected = vec![
        (ada, "Ada Lovelace".to_string()),
        (bob, "Bob B.".to_string()),
    ];
    expected.sort();
    assert_eq!(members, expected, "{}", got.body);
    assert!(
        got.body.get("idsync:memberDisplay").is_none(),
        "{}",
        got.body
    );
}
on_both_backends!(a_members_display_is_returned_as_sent);

async fn a_member_id_that_names_no_resource_is_refused(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let group = create(
        &scim,
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Staff"}),
    )
    .await;
    let answer = scim
        .call(
            "acme",
            "PATCH",
            &format!("/Groups/{group}"),
            Some(json!({"schemas": [PATCH], "Operations": [{
                "op": "add", "path": "members", "value": [{"value": "fake-member-id"}]
            }]})),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["scimType"], "invalidValue", "{}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("fake-member-id")),
        "{}",
        answer.body
    );
    let got = scim
        .call("acme", "GET", &format!("/Groups/{group}"), None)
        .await;
    assert_eq!(got.body["members"], json!([]));
}
on_both_backends!(a_member_id_that_names_no_resource_is_refused);

async fn a_user_without_emails_is_treated_alike_on_both_backends(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    // The mapping needs an e-mail: an address-shaped userName stands in for one; a bare
    // login name leaves the user in the mirror only (skipped, with a warning).
    for name in ["carol@example.com", "bob"] {
        let created = scim
            .call(
                "acme",
                "POST",
                "/Users",
                Some(json!({"schemas": [USER], "userName": name})),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let carol = idsync::target::query::find_user(db.pool(), "carol@example.com")
        .await
        .expect("query");
    assert_eq!(
        carol.and_then(|u| u.email).as_deref(),
        Some("carol@example.com")
    );
    let bob = idsync::target::query::find_user(db.pool(), "bob")
        .await
        .expect("query");
    assert!(bob.is_none(), "{bob:?}");
}
on_both_backends!(a_user_without_emails_is_treated_alike_on_both_backends);
