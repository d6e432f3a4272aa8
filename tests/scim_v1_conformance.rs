//! SCIM 1.1 conformance of `/scim/{tenant}/v1`, written from the 1.1 specification since no
//! public tester speaks 1.1: "SCIM Protocol 1.1" (draft-scim-api-01,
//! http://www.simplecloud.info/specs/draft-scim-api-01.html) and "SCIM Core Schema 1.1"
//! (draft-scim-core-schema-01, http://www.simplecloud.info/specs/draft-scim-core-schema-01.html),
//! plus Okta's "SCIM 1.1 Protocol Reference"
//! (https://developer.okta.com/docs/reference/scim/scim-11/) for what the on-premises agent
//! sends. One test per spec area, each over real HTTP against a real database (SQLite, and
//! PostgreSQL when `IDSYNC_TEST_POSTGRES_URL` is set), asserting status, `Content-Type`,
//! the 1.1 body shape and, where a request writes, the rows in the target.

use idsync::config::OnRemove;
use idsync::db::Db;
use idsync::target::query;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestDb;
use crate::support::scim::{Answer, ScimHarness, tenant};

const CORE: &str = "urn:scim:schemas:core:1.0";
const ENTERPRISE: &str = "urn:scim:schemas:extension:enterprise:1.0";
const TENANT: &str = "onprem";

/// The 1.1 media type (Protocol 1.1 §3.6: JSON is the default format).
const JSON: &str = "application/json";

async fn start(db: &Db) -> ScimHarness {
    ScimHarness::start(db, vec![tenant(TENANT, OnRemove::Disable)]).await
}

/// A request to the tenant's 1.1 base, with a body sent as `application/json` as Okta's
/// agent does.
async fn v1(
    scim: &ScimHarness,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let url = scim.url_v1(TENANT, path);
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = scim
        .client
        .request(method, url)
        .bearer_auth(&scim.tokens[TENANT])
        .header("accept", JSON)
        .header("user-agent", "Okta SCIM Client 1.0.0");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.header("content-type", JSON).body(body.to_string());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn assert_json(answer: &Answer) {
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some(JSON),
        "Content-Type of {}",
        answer.body
    );
}

/// Protocol 1.1 §3.9: an error is `{"Errors":[{"description":…,"code":"<status>"}]}`.
fn assert_v1_error(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "body: {}", answer.body);
    assert_json(answer);
    let errors = answer.body["Errors"].as_array().expect("an Errors array");
    assert_eq!(errors.len(), 1, "{}", answer.body);
    assert_eq!(errors[0]["code"], json!(status.to_string()));
    assert!(
        errors[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        answer.body
    );
    assert!(answer.body.get("schemas").is_none(), "{}", answer.body);
}

/// Core Schema 1.1 "Common Schema Attributes": `id`, `meta.created`, `meta.lastModified`,
/// `meta.location` (this resource under /v1), `meta.version` (equal to the ETag header,
/// Protocol 1.1 §3.11).
fn assert_v1_resource(answer: &Answer, endpoint: &str) -> String {
    assert_json(answer);
    let body = &answer.body;
    assert_eq!(body["schemas"][0], CORE, "{body}");
    for schema in body["schemas"].as_array().expect("schemas") {
        let urn = schema.as_str().expect("a string");
        assert!(
            !urn.starts_with("urn:ietf:params:scim"),
            "2.0 URN in {body}"
        );
    }
    let id = body["id"].as_str().expect("id").to_string();
    let location = body["meta"]["location"].as_str().expect("meta.location");
    assert!(
        location.ends_with(&format!("/scim/{TENANT}/v1/{endpoint}/{id}")),
        "{location}"
    );
    assert!(body["meta"]["created"].is_string(), "{body}");
    assert!(body["meta"]["lastModified"].is_string(), "{body}");
    let etag = answer.header("etag").expect("ETag");
    assert_eq!(body["meta"]["version"], json!(etag));
    id
}

fn user(name: &str) -> Value {
    json!({
        "schemas": [CORE],
        "userName": name,
        "externalId": format!("okta-{name}"),
        "name": {"givenName": "Given", "familyName": name},
        "displayName": format!("Given {name}"),
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
        "active": true,
        "password": "t1meMa$heen"
    })
}

async fn create_user(scim: &ScimHarness, name: &str) -> String {
    let created = v1(scim, "POST", "/Users", Some(user(name)), &[]).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["id"].as_str().expect("id").to_string()
}

async fn target_user(db: &Db, name: &str) -> Option<query::UserRow> {
    query::find_user(db.pool(), name).await.expect("find user")
}

async fn target_members(db: &Db, group: &str) -> Vec<String> {
    let group = query::find_group(db.pool(), group)
        .await
        .expect("find group")
        .unwrap_or_else(|| panic!("group {group} is in the target"));
    let mut names: Vec<String> = query::direct_members(db.pool(), &group.id)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

/// Protocol 1.1 §4 and Core Schema 1.1 "Service Provider Configuration Schema":
/// `GET /ServiceProviderConfigs` in the 1.1 shape (`…Url` keys, `xmlDataFormat`), with
/// Bulk declared unsupported (Protocol 1.1 §3.5 lets a provider leave it out) and Okta's
/// capability list the on-premises agent reads.
async fn discovery(db: TestDb) {
    let scim = start(&db).await;
    let config = v1(&scim, "GET", "/ServiceProviderConfigs", None, &[]).await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_json(&config);
    let body = &config.body;
    assert_eq!(body["schemas"][0], CORE);
    assert!(
        body["meta"]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/scim/{TENANT}/v1/ServiceProviderConfigs"))),
        "{body}"
    );
    for feature in ["patch", "filter", "sort", "etag"] {
        assert_eq!(body[feature]["supported"], json!(true), "{feature}: {body}");
    }
    for feature in ["bulk", "changePassword", "xmlDataFormat"] {
        assert_eq!(
            body[feature]["supported"],
            json!(false),
            "{feature}: {body}"
        );
    }
    assert!(body["filter"]["maxResults"].as_u64().is_some_and(|n| n > 0));
    let schemes = body["authenticationSchemes"].as_array().expect("schemes");
    assert_eq!(schemes[0]["type"], "oauthbearertoken");
    assert!(schemes[0]["specUrl"].is_string(), "1.1 spells it specUrl");
    assert!(schemes[0].get("specUri").is_none());
    let capabilities =
        body["urn:okta:schemas:scim:providerconfig:1.0"]["userManagementCapabilities"]
            .as_array()
            .expect("Okta capabilities");
    assert!(capabilities.contains(&json!("PUSH_NEW_USERS")));
    assert!(!capabilities.contains(&json!("PUSH_PASSWORD_UPDATES")));

    // The singular 2.0 name is served too (clients that probe both).
    let singular = v1(&scim, "GET", "/ServiceProviderConfig", None, &[]).await;
    assert_eq!(singular.status, 200);
    assert_eq!(singular.body["schemas"][0], CORE);

    // Protocol 1.1 §3.5: Bulk is optional; unsupported, it answers with a 1.1 error.
    let bulk = v1(
        &scim,
        "POST",
        "/Bulk",
        Some(json!({"schemas": ["urn:scim:schemas:core:1.0"], "Operations": []})),
        &[],
    )
    .await;
    assert_v1_error(&bulk, 501);

    // Protocol 1.1 §4: /Schemas describes the resources; listed in the 1.1 list shape.
    let schemas = v1(&scim, "GET", "/Schemas", None, &[]).await;
    assert_eq!(schemas.status, 200, "{}", schemas.body);
    assert_json(&schemas);
    assert_eq!(schemas.body["schemas"], json!([CORE]), "{}", schemas.body);
    assert!(
        schemas.body["totalResults"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    );
    scim.stop().await;
}
on_both_backends!(discovery);

/// Protocol 1.1 §3.1 (create: 201, the resource with `id` and `meta`, `Location`; a
/// duplicate `userName` is 409) and §3.2.1 (GET of a known resource; 404 for an unknown
/// id). Okta's agent sends `password`, which is never stored or returned.
async fn create_and_get(db: TestDb) {
    let scim = start(&db).await;
    let mut body = user("sam");
    body["schemas"] = json!([CORE, ENTERPRISE]);
    body[ENTERPRISE] = json!({"employeeNumber": "701984", "department": "Tour Operations"});
    let created = v1(&scim, "POST", "/Users", Some(body), &[]).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = assert_v1_resource(&created, "Users");
    assert_eq!(
        created.header("location").as_deref(),
        created.body["meta"]["location"].as_str()
    );
    assert_eq!(created.body["schemas"], json!([CORE, ENTERPRISE]));
    assert_eq!(created.body[ENTERPRISE]["department"], "Tour Operations");
    assert_eq!(created.body["userName"], "sam");
    assert!(created.body.get("password").is_none());
    let row = target_user(&db, "sam").await.expect("sam in the target");
    assert_eq!(row.connector, TENANT);
    assert_eq!(row.email.as_deref(), Some("sam@example.com"));
    assert_eq!(row.given_name.as_deref(), Some("Given"));
    assert!(row.active);

    let got = v1(&scim, "GET", &format!("/Users/{id}"), None, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(assert_v1_resource(&got, "Users"), id);
    assert_eq!(got.body["emails"][0]["value"], "sam@example.com");
    assert!(got.body.get("password").is_none());

    // Protocol 1.1 §3.1: a duplicate userName (compared case-insensitively) is a conflict.
    let again = v1(&scim, "POST", "/Users", Some(user("SAM")), &[]).await;
    assert_v1_error(&again, 409);

    let missing = v1(&scim, "GET", "/Users/no-such-id", None, &[]).await;
    assert_v1_error(&missing, 404);

    // A group, as Okta pushes one, with a member.
    let group = v1(
        &scim,
        "POST",
        "/Groups",
        Some(json!({"schemas": [CORE], "displayName": "Ops", "members": [{"value": id, "display": "sam"}]})),
        &[],
    )
    .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = assert_v1_resource(&group, "Groups");
    assert_eq!(group.body["members"][0]["value"], json!(id));
    assert_eq!(target_members(&db, "Ops").await, vec!["sam"]);
    let got = v1(&scim, "GET", &format!("/Groups/{gid}"), None, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["displayName"], "Ops");
    scim.stop().await;
}
on_both_backends!(create_and_get);

/// Protocol 1.1 §3.2.2: list and query. The answer has `schemas` (the 1.1 core URN),
/// `totalResults`, `itemsPerPage`, `startIndex` (integers, as Okta requires) and
/// `Resources`; §3.2.2.1 filters (`eq`, `co`, `sw`, `pr`, `gt` on `meta.lastModified`,
/// `and`/`or`; attribute names case-insensitive); §3.2.2.2 `sortBy`/`sortOrder`;
/// §3.2.2.3 `startIndex` (1-based) and `count`, stable across pages. Also §3.2.3's
/// `attributes`.
async fn list_filter_sort_page(db: TestDb) {
    let scim = start(&db).await;
    for name in ["carol", "alice", "erin", "bob", "dave"] {
        create_user(&scim, name).await;
    }
    let all = v1(&scim, "GET", "/Users", None, &[]).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_json(&all);
    assert_eq!(all.body["schemas"], json!([CORE]));
    assert_eq!(all.body["totalResults"], json!(5));
    assert_eq!(all.body["itemsPerPage"], json!(5));
    assert_eq!(all.body["startIndex"], json!(1));
    for resource in all.body["Resources"].as_array().expect("Resources") {
        assert_eq!(resource["schemas"][0], CORE);
        assert!(
            resource["meta"]["location"]
                .as_str()
                .unwrap()
                .contains("/v1/Users/")
        );
    }

    // Okta's match: userName eq, with startIndex=1&count=100.
    let found = v1(
        &scim,
        "GET",
        "/Users?filter=userName%20eq%20%22ALICE%22&startIndex=1&count=100",
        None,
        &[],
    )
    .await;
    assert_eq!(found.body["totalResults"], json!(1), "{}", found.body);
    assert_eq!(found.body["Resources"][0]["userName"], "alice");
    let none = v1(
        &scim,
        "GET",
        "/Users?filter=userName%20eq%20%22nobody%40example.com%22&startIndex=1&count=100",
        None,
        &[],
    )
    .await;
    assert_eq!(none.status, 200);
    assert_eq!(
        (
            &none.body["totalResults"],
            &none.body["itemsPerPage"],
            &none.body["Resources"]
        ),
        (&json!(0), &json!(0), &json!([]))
    );

    let names = |answer: &Answer| -> Vec<String> {
        answer.body["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let filters = [
        ("USERNAME%20co%20%22a%22", vec!["alice", "carol", "dave"]),
        ("userName%20sw%20%22b%22", vec!["bob"]),
        (
            "userName%20eq%20%22bob%22%20or%20userName%20eq%20%22erin%22",
            vec!["bob", "erin"],
        ),
        (
            "userName%20pr%20and%20userName%20sw%20%22d%22",
            vec!["dave"],
        ),
        (
            "meta.lastModified%20gt%20%222000-01-01T00%3A00%3A00Z%22",
            vec!["alice", "bob", "carol", "dave", "erin"],
        ),
    ];
    for (filter, expected) in filters {
        let answer = v1(
            &scim,
            "GET",
            &format!("/Users?filter={filter}&sortBy=userName"),
            None,
            &[],
        )
        .await;
        assert_eq!(answer.status, 200, "{filter}: {}", answer.body);
        assert_eq!(names(&answer), expected, "{filter}");
        assert_eq!(answer.body["totalResults"], json!(expected.len()));
    }

    // §3.2.2.2: sortOrder descending.
    let sorted = v1(
        &scim,
        "GET",
        "/Users?sortBy=userName&sortOrder=descending",
        None,
        &[],
    )
    .await;
    assert_eq!(names(&sorted), ["erin", "dave", "carol", "bob", "alice"]);

    // §3.2.2.3: pages of two, 1-based, totalResults on every page, no overlap.
    let mut paged = Vec::new();
    for start in [1, 3, 5] {
        let page = v1(
            &scim,
            "GET",
            &format!("/Users?sortBy=userName&startIndex={start}&count=2"),
            None,
            &[],
        )
        .await;
        assert_eq!(page.body["startIndex"], json!(start));
        assert_eq!(page.body["totalResults"], json!(5));
        let expected = if start == 5 { 1 } else { 2 };
        assert_eq!(page.body["itemsPerPage"], json!(expected), "{}", page.body);
        paged.extend(names(&page));
    }
    assert_eq!(paged, ["alice", "bob", "carol", "dave", "erin"]);
    // Without sortBy the order is still the same on every page (Okta relies on it).
    let mut unsorted = Vec::new();
    for start in [1, 3, 5] {
        let page = v1(
            &scim,
            "GET",
            &format!("/Users?startIndex={start}&count=2"),
            None,
            &[],
        )
        .await;
        unsorted.extend(names(&page));
    }
    unsorted.sort();
    assert_eq!(unsorted, ["alice", "bob", "carol", "dave", "erin"]);

    // §3.2.3: attributes limits the answer (id is always returned).
    let shaped = v1(
        &scim,
        "GET",
        "/Users?filter=userName%20eq%20%22bob%22&attributes=userName",
        None,
        &[],
    )
    .await;
    let bob = &shaped.body["Resources"][0];
    assert_eq!(bob["userName"], "bob");
    assert!(bob["id"].is_string());
    assert!(bob.get("emails").is_none(), "{bob}");

    // An unparsable filter is a 400 with the 1.1 error body.
    let bad = v1(&scim, "GET", "/Users?filter=userName%20eq", None, &[]).await;
    assert_v1_error(&bad, 400);

    // Groups list the same way.
    let groups = v1(&scim, "GET", "/Groups?startIndex=1&count=100", None, &[]).await;
    assert_eq!(groups.status, 200);
    assert_eq!(groups.body["schemas"], json!([CORE]));
    assert_eq!(groups.body["totalResults"], json!(0));
    assert_eq!(groups.body["Resources"], json!([]));
    scim.stop().await;
}
on_both_backends!(list_filter_sort_page);

/// Protocol 1.1 §3.3.1: PUT replaces the whole resource (attributes left out are removed),
/// answering 200 with it; Okta's agent deactivates users this way, with `id`, `meta` and
/// `groups` in the body as it read them.
async fn replace_with_put(db: TestDb) {
    let scim = start(&db).await;
    let mut body = user("ana");
    body["nickName"] = json!("Annie");
    let created = v1(&scim, "POST", "/Users", Some(body), &[]).await;
    let id = created.body["id"].as_str().unwrap().to_string();

    let mut read = v1(&scim, "GET", &format!("/Users/{id}"), None, &[])
        .await
        .body;
    read["active"] = json!(false);
    read["name"]["givenName"] = json!("Ana");
    read["groups"] = json!([]);
    read.as_object_mut().unwrap().remove("nickName");
    let put = v1(&scim, "PUT", &format!("/Users/{id}"), Some(read), &[]).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(assert_v1_resource(&put, "Users"), id);
    assert_eq!(put.body["active"], json!(false));
    assert!(put.body.get("nickName").is_none(), "{}", put.body);
    assert_ne!(put.body["meta"]["version"], created.body["meta"]["version"]);
    assert!(
        !target_user(&db, "ana")
            .await
            .expect("kept, disabled")
            .active
    );

    // Reactivation, also by PUT; the target now carries the new name too.
    let mut on = put.body.clone();
    on["active"] = json!(true);
    let put = v1(&scim, "PUT", &format!("/Users/{id}"), Some(on), &[]).await;
    assert_eq!(put.status, 200);
    let row = target_user(&db, "ana").await.unwrap();
    assert!(row.active);
    assert_eq!(row.given_name.as_deref(), Some("Ana"));

    // Groups: PUT of the full member list.
    let other = create_user(&scim, "ben").await;
    let group = v1(
        &scim,
        "POST",
        "/Groups",
        Some(json!({"schemas": [CORE], "displayName": "Sales", "members": [{"value": id}]})),
        &[],
    )
    .await;
    let gid = group.body["id"].as_str().unwrap().to_string();
    let put = v1(
        &scim,
        "PUT",
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [CORE], "id": gid, "displayName": "Sales EMEA", "members": [{"value": other, "display": "ben"}]})),
        &[],
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["displayName"], "Sales EMEA");
    assert_eq!(target_members(&db, "Sales EMEA").await, vec!["ben"]);

    let missing = v1(&scim, "PUT", "/Users/no-such-id", Some(user("x")), &[]).await;
    assert_v1_error(&missing, 404);
    scim.stop().await;
}
on_both_backends!(replace_with_put);

/// Protocol 1.1 §3.3.2: PATCH with a partial resource. `meta.attributes` lists attributes
/// to remove (sub-attributes in dot notation), processed before the rest of the body, so an
/// attribute both listed and sent is replaced; singular attributes in the body replace,
/// complex ones are merged sub-attribute by sub-attribute; elements of multi-valued
/// attributes are added, or merged into the element with the same `value`; an element
/// with `"operation": "delete"` is removed (matched on `value`, or on all its
/// sub-attributes when it has none), and such deletes are ignored for an attribute also
/// listed in `meta.attributes`. The answer is 200 with the whole resource.
async fn patch_partial_resources(db: TestDb) {
    let scim = start(&db).await;
    let mut body = user("lee");
    body["nickName"] = json!("Lee");
    body["title"] = json!("Engineer");
    body["phoneNumbers"] = json!([{"value": "555-0100", "type": "work"}]);
    body["addresses"] = json!([
        {"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"},
        {"type": "home", "streetAddress": "2 Side St", "locality": "Shelbyville"}
    ]);
    body[ENTERPRISE] = json!({"department": "R&D", "costCenter": "4130"});
    body["schemas"] = json!([CORE, ENTERPRISE]);
    let created = v1(&scim, "POST", "/Users", Some(body), &[]).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let patch = |body: Value| {
        let path = format!("/Users/{id}");
        let scim = &scim;
        async move { v1(scim, "PATCH", &path, Some(body), &[]).await }
    };

    // Okta's deactivation: the id and one attribute.
    let off = patch(json!({"schemas": [CORE], "id": id, "active": false})).await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(assert_v1_resource(&off, "Users"), id);
    assert_eq!(off.body["active"], json!(false));
    assert_eq!(off.body["userName"], "lee", "the rest is kept");
    assert!(!target_user(&db, "lee").await.unwrap().active);

    // meta.attributes: removal of a simple attribute, a sub-attribute, and one that is
    // not there (nothing to do); complex attributes merge.
    let answer = patch(json!({
        "schemas": [CORE],
        "name": {"givenName": "Lena"},
        "active": true,
        "meta": {"attributes": ["nickName", "name.familyName", "profileUrl"]}
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("nickName").is_none(), "{}", answer.body);
    assert_eq!(answer.body["name"], json!({"givenName": "Lena"}));
    assert_eq!(answer.body["title"], "Engineer");
    let row = target_user(&db, "lee").await.unwrap();
    assert!(row.active);
    assert_eq!(row.given_name.as_deref(), Some("Lena"));
    assert_eq!(row.family_name, None);

    // Merge of a complex attribute keeps the sub-attributes not sent.
    let answer = patch(json!({"schemas": [CORE], "name": {"familyName": "Park"}})).await;
    assert_eq!(
        answer.body["name"],
        json!({"givenName": "Lena", "familyName": "Park"})
    );

    // Listed and sent: replaced by the sent value (removed first, then added).
    let answer = patch(json!({
        "schemas": [CORE],
        "phoneNumbers": [{"value": "555-0199", "type": "mobile"}],
        "meta": {"attributes": ["phoneNumbers"]}
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body["phoneNumbers"],
        json!([{"value": "555-0199", "type": "mobile"}])
    );

    // Multi-valued: a new value is added; a value already there is merged, not doubled.
    let answer = patch(json!({
        "schemas": [CORE],
        "emails": [
            {"value": "lee@example.com", "type": "home"},
            {"value": "lena@example.org", "type": "other"}
        ]
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let emails = answer.body["emails"].as_array().expect("emails");
    assert_eq!(emails.len(), 2, "{}", answer.body);
    assert!(emails.contains(&json!({"value": "lee@example.com", "type": "home", "primary": true})));
    assert!(emails.contains(&json!({"value": "lena@example.org", "type": "other"})));

    // operation: delete on a value, and on an element without a value (all its
    // sub-attributes must match).
    let answer = patch(json!({
        "schemas": [CORE],
        "emails": [{"value": "lena@example.org", "operation": "delete"}],
        "addresses": [{"type": "home", "streetAddress": "2 Side St", "locality": "Shelbyville", "operation": "delete"}]
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["emails"].as_array().unwrap().len(), 1);
    assert_eq!(
        answer.body["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}])
    );

    // A delete for an attribute listed in meta.attributes is ignored: the attribute is
    // removed, and the new values added.
    let answer = patch(json!({
        "schemas": [CORE],
        "emails": [
            {"value": "nobody@example.com", "operation": "delete"},
            {"value": "lee@example.net", "type": "work"}
        ],
        "meta": {"attributes": ["emails"]}
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body["emails"],
        json!([{"value": "lee@example.net", "type": "work"}])
    );
    assert_eq!(
        target_user(&db, "lee").await.unwrap().email.as_deref(),
        Some("lee@example.net")
    );

    // Extension attributes: merged, and removable with their URN-qualified names
    // (Protocol 1.1 §3.8 attribute notation).
    let answer = patch(json!({
        "schemas": [CORE, ENTERPRISE],
        ENTERPRISE: {"department": "Research"},
        "meta": {"attributes": [format!("{ENTERPRISE}:costCenter"), format!("{CORE}:title")]}
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body[ENTERPRISE], json!({"department": "Research"}));
    assert!(answer.body.get("title").is_none(), "{}", answer.body);
    assert_eq!(answer.body["schemas"], json!([CORE, ENTERPRISE]));

    // Errors: a meta.attributes entry that is not a name, an unknown attribute.
    let bad = patch(json!({"schemas": [CORE], "meta": {"attributes": [42]}})).await;
    assert_v1_error(&bad, 400);
    let bad = patch(json!({"schemas": [CORE], "shoeSize": 44})).await;
    assert_v1_error(&bad, 400);
    let missing = v1(
        &scim,
        "PATCH",
        "/Users/no-such-id",
        Some(json!({"active": true})),
        &[],
    )
    .await;
    assert_v1_error(&missing, 404);
    scim.stop().await;
}
on_both_backends!(patch_partial_resources);

/// Protocol 1.1 §3.3.2 on groups, as Okta's agent sends it: a rename, members added with
/// `display`, a member removed with `"operation": "delete"`; and `meta.attributes:
/// ["members"]` to clear the list. Each change reaches the target's memberships.
async fn patch_group_members(db: TestDb) {
    let scim = start(&db).await;
    let a = create_user(&scim, "amy").await;
    let b = create_user(&scim, "bo").await;
    let group = v1(
        &scim,
        "POST",
        "/Groups",
        Some(json!({"schemas": [CORE], "displayName": "Test SCIMv1"})),
        &[],
    )
    .await;
    assert_eq!(group.status, 201, "{}", group.body);
    assert_eq!(group.body["members"], json!([]));
    let gid = group.body["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");

    let renamed = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"schemas": [CORE], "id": gid, "displayName": "Test SCIMv11"})),
        &[],
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(assert_v1_resource(&renamed, "Groups"), gid);
    assert_eq!(renamed.body["displayName"], "Test SCIMv11");

    let added = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"schemas": [CORE], "members": [
            {"value": a, "display": "amy"},
            {"value": b, "display": "bo"}
        ]})),
        &[],
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(target_members(&db, "Test SCIMv11").await, vec!["amy", "bo"]);

    // The same member again is merged, not doubled.
    let again = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"schemas": [CORE], "members": [{"value": a, "display": "amy"}]})),
        &[],
    )
    .await;
    assert_eq!(again.body["members"].as_array().unwrap().len(), 2);

    let removed = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"schemas": [CORE], "members": [{"value": b, "display": "bo", "operation": "delete"}]})),
        &[],
    )
    .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        removed.body["members"],
        json!([{"value": a, "type": "User", "display": "amy",
                "$ref": removed.body["members"][0]["$ref"]}])
    );
    assert_eq!(target_members(&db, "Test SCIMv11").await, vec!["amy"]);

    let cleared = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"schemas": [CORE], "meta": {"attributes": ["members"]}})),
        &[],
    )
    .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["members"], json!([]));
    assert!(target_members(&db, "Test SCIMv11").await.is_empty());

    // A member that is not a user of the tenant.
    let unknown = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"schemas": [CORE], "members": [{"value": "no-such-user"}]})),
        &[],
    )
    .await;
    assert_v1_error(&unknown, 400);
    scim.stop().await;
}
on_both_backends!(patch_group_members);

/// Protocol 1.1 §3.4: DELETE removes the resource; every later request for its id is 404
/// and it is left out of queries; its name may be used again. idsync answers 204 No
/// Content, as Okta's 1.1 reference shows for group deletion (the 1.1 text shows 200 OK;
/// both are the success class the agent checks). The user leaves the groups that listed
/// it, and the target follows the tenant's `on_remove` (here: disabled).
async fn delete(db: TestDb) {
    let scim = start(&db).await;
    let id = create_user(&scim, "kim").await;
    let group = v1(
        &scim,
        "POST",
        "/Groups",
        Some(json!({"schemas": [CORE], "displayName": "Team", "members": [{"value": id}]})),
        &[],
    )
    .await;
    let gid = group.body["id"].as_str().unwrap().to_string();

    let deleted = v1(&scim, "DELETE", &format!("/Users/{id}"), None, &[]).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null);
    assert!(
        !target_user(&db, "kim")
            .await
            .expect("kept, disabled")
            .active
    );
    for method in ["GET", "DELETE"] {
        let gone = v1(&scim, method, &format!("/Users/{id}"), None, &[]).await;
        assert_v1_error(&gone, 404);
    }
    let patch = v1(
        &scim,
        "PATCH",
        &format!("/Users/{id}"),
        Some(json!({"active": true})),
        &[],
    )
    .await;
    assert_v1_error(&patch, 404);
    let listed = v1(
        &scim,
        "GET",
        "/Users?filter=userName%20eq%20%22kim%22",
        None,
        &[],
    )
    .await;
    assert_eq!(listed.body["totalResults"], json!(0));
    let group = v1(&scim, "GET", &format!("/Groups/{gid}"), None, &[]).await;
    assert_eq!(group.body["members"], json!([]));
    // Not in conflict any more: the name can be pushed again.
    let again = v1(&scim, "POST", "/Users", Some(user("kim")), &[]).await;
    assert_eq!(again.status, 201, "{}", again.body);

    let deleted = v1(&scim, "DELETE", &format!("/Groups/{gid}"), None, &[]).await;
    assert_eq!(deleted.status, 204);
    assert!(
        query::find_group(db.pool(), "Team")
            .await
            .unwrap()
            .is_none()
    );
    assert_v1_error(
        &v1(&scim, "GET", &format!("/Groups/{gid}"), None, &[]).await,
        404,
    );
    scim.stop().await;
}
on_both_backends!(delete);

/// Protocol 1.1 §3.11 (versioning): `meta.version` is the ETag; `If-Match` with another
/// version makes PUT, PATCH and DELETE fail with 412 and change nothing; `If-None-Match`
/// with the current version makes GET answer 304.
async fn versions(db: TestDb) {
    let scim = start(&db).await;
    let created = v1(&scim, "POST", "/Users", Some(user("max")), &[]).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let etag = created.header("etag").expect("ETag");
    let path = format!("/Users/{id}");

    let not_modified = v1(&scim, "GET", &path, None, &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, 304);
    let stale = [("if-match", "W/\"stale\"")];
    let put = v1(&scim, "PUT", &path, Some(user("max")), &stale).await;
    assert_v1_error(&put, 412);
    let patch = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"active": false})),
        &stale,
    )
    .await;
    assert_v1_error(&patch, 412);
    let delete = v1(&scim, "DELETE", &path, None, &stale).await;
    assert_v1_error(&delete, 412);
    assert!(
        target_user(&db, "max").await.unwrap().active,
        "nothing changed"
    );

    let patched = v1(
        &scim,
        "PATCH",
        &path,
        Some(json!({"active": false})),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_ne!(patched.header("etag"), Some(etag));
    assert!(!target_user(&db, "max").await.unwrap().active);
    scim.stop().await;
}
on_both_backends!(versions);

/// Protocol 1.1 §3.9 (HTTP response codes): every failure answers its status with the
/// 1.1 `Errors` body in `application/json`: 401 without or with a wrong token, 404 for an
/// unknown endpoint, 405 for a method an endpoint does not take, 400 for a body that is
/// not JSON or a resource missing `userName`, 415 for a non-JSON media type.
#[tokio::test]
async fn errors() {
    let db = crate::support::sqlite().await;
    let scim = start(&db).await;
    let url = scim.url_v1(TENANT, "/Users");
    let anonymous = scim.client.get(&url).send().await.expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(anonymous.headers()["content-type"].to_str().unwrap(), JSON);
    let body: Value = anonymous.json().await.expect("JSON");
    assert_eq!(body["Errors"][0]["code"], "401");
    let wrong = scim
        .client
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status().as_u16(), 401);

    assert_v1_error(&v1(&scim, "GET", "/Nothing", None, &[]).await, 404);
    assert_v1_error(&v1(&scim, "DELETE", "/Users", None, &[]).await, 405);
    let no_name = v1(
        &scim,
        "POST",
        "/Users",
        Some(json!({"schemas": [CORE]})),
        &[],
    )
    .await;
    assert_v1_error(&no_name, 400);
    let not_json = scim
        .client
        .post(&url)
        .bearer_auth(&scim.tokens[TENANT])
        .header("content-type", JSON)
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status().as_u16(), 400);
    let body: Value = not_json.json().await.expect("JSON");
    assert_eq!(body["Errors"][0]["code"], "400");
    let xml = scim
        .client
        .post(&url)
        .bearer_auth(&scim.tokens[TENANT])
        .header("content-type", "application/xml")
        .body("<User/>")
        .send()
        .await
        .expect("request");
    assert_eq!(xml.status().as_u16(), 415);
    assert_eq!(mirror_users(&db).await, 0, "nothing was stored");
    scim.stop().await;
}

async fn mirror_users(db: &Db) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) FROM mirror_users")
        .fetch_one(db.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("count")
}
