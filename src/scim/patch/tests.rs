//! Table tests on Users: request bodies from RFC 7644 §3.5.2 and from what Entra ID and
//! Okta send (create-time attributes, updates, deactivation, reactivation, renames,
//! filtered e-mail updates, enterprise manager and department), each with the resource
//! expected afterwards. Shared fixtures and the runner live here; Group cases are in
//! `tests_members.rs`, errors in `tests_errors.rs`.

use serde_json::{Value, json};

use super::*;

pub(super) const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(super) const ENT: &str = ENTERPRISE_USER_URN;
pub(super) const BJENSEN: &str = "2819c223-7f76-453a-919d-413861904646";

/// The RFC 7643 §8.2 user, trimmed, with the enterprise extension.
pub(super) fn user() -> Value {
    json!({
        "schemas": [CORE_USER, ENT],
        "id": BJENSEN,
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "country": "USA", "primary": true},
            {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "country": "USA"}
        ],
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
        ENT: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        }
    })
}

/// A user as Entra ID first creates it: no e-mails, phones or extension yet.
pub(super) fn new_user() -> Value {
    json!({
        "schemas": [CORE_USER],
        "id": "u-1",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7b2c4b9d9e1a",
        "userName": "Test_User_dfeef4c5@contoso.com",
        "active": true,
        "displayName": "Test User",
        "name": {"givenName": "Test", "familyName": "User"}
    })
}

/// `base` after `edit`.
pub(super) fn edited(mut base: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut base);
    base
}

/// A PatchOp body around `operations`.
pub(super) fn body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": operations})
}

/// Parses `operations` and applies them to `resource`.
pub(super) fn run(
    resource: &mut Value,
    operations: Value,
    schema: &ResourceSchema,
) -> Result<PatchOutcome, PatchError> {
    apply(resource, &parse_request(&body(operations))?, schema)
}

/// (name, resource before, operations, resource after)
type Case = (&'static str, Value, Value, Value);

fn user_cases() -> Vec<Case> {
    vec![
        (
            "rfc 3.5.2.1: path-less add appends an e-mail and sets nickName",
            user(),
            json!([{"op": "add", "value": {"emails": [{"value": "babs@example.net", "type": "other"}], "nickName": "Babs"}}]),
            edited(user(), |u| {
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "babs@example.net", "type": "other"}));
                u["nickName"] = json!("Babs");
            }),
        ),
        (
            "rfc 3.5.2.1: adding a value already present changes nothing (key order aside)",
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"type": "home", "value": "babs@jensen.org"}]}]),
            user(),
        ),
        (
            "rfc 3.5.2.3: path-less replace replaces a multi-valued attribute whole",
            user(),
            json!([{"op": "replace", "value": {"emails": [{"value": "bjensen@example.com", "type": "work"}], "nickName": "Babs"}}]),
            edited(user(), |u| {
                u["emails"] = json!([{"value": "bjensen@example.com", "type": "work"}]);
                u["nickName"] = json!("Babs");
            }),
        ),
        (
            "rfc 3.5.2.3: replace addresses[type eq \"work\"] replaces the element",
            user(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
                "type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood",
                "region": "CA", "postalCode": "91608", "country": "US", "primary": true
            }}]),
            edited(user(), |u| {
                u["addresses"][0] = json!({
                    "type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood",
                    "region": "CA", "postalCode": "91608", "country": "US", "primary": true
                });
            }),
        ),
        (
            "rfc 3.5.2.3: replace addresses[type eq \"work\"].streetAddress",
            user(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
            edited(user(), |u| {
                u["addresses"][0]["streetAddress"] = json!("1010 Broadway Ave")
            }),
        ),
        (
            "rfc 3.5.2.2: remove emails[type eq \"work\" and value ew \"example.com\"]",
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
            edited(user(), |u| {
                u["emails"] = json!([{"value": "babs@jensen.org", "type": "home"}])
            }),
        ),
        (
            "entra: replace the work e-mail and the family name",
            user(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
            ]),
            edited(user(), |u| {
                u["emails"][0]["value"] = json!("updatedEmail@microsoft.com");
                u["name"]["familyName"] = json!("updatedFamilyName");
            }),
        ),
        (
            "entra: disable with active \"False\"",
            user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            edited(user(), |u| u["active"] = json!(false)),
        ),
        (
            "entra: reactivate with active \"True\"",
            edited(user(), |u| u["active"] = json!(false)),
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
            user(),
        ),
        (
            "okta: deactivate with a path-less replace",
            user(),
            json!([{"op": "replace", "value": {"active": false}}]),
            edited(user(), |u| u["active"] = json!(false)),
        ),
        (
            "okta: rename path-less, echoing the id; name is merged",
            user(),
            json!([{"op": "replace", "value": {
                "id": BJENSEN, "userName": "babs@example.com",
                "name": {"givenName": "Barb", "familyName": "Jensen-Smith"}
            }}]),
            edited(user(), |u| {
                u["userName"] = json!("babs@example.com");
                u["name"]["givenName"] = json!("Barb");
                u["name"]["familyName"] = json!("Jensen-Smith");
            }),
        ),
        (
            "entra: path-less replace with dotted and extension-path keys",
            user(),
            json!([{"op": "Replace", "value": {
                "displayName": "Babs J", "name.givenName": "Barb",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales"
            }}]),
            edited(user(), |u| {
                u["displayName"] = json!("Babs J");
                u["name"]["givenName"] = json!("Barb");
                u[ENT]["department"] = json!("Sales");
            }),
        ),
        (
            "entra: add emails[type eq \"work\"].value to a user without e-mails creates it",
            new_user(),
            json!([
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "Test_User@contoso.com"},
                {"op": "Add", "path": "emails[type eq \"work\"].primary", "value": "True"}
            ]),
            edited(new_user(), |u| {
                u["emails"] =
                    json!([{"type": "work", "value": "Test_User@contoso.com", "primary": true}]);
            }),
        ),
        (
            "entra: replace phoneNumbers[type eq \"mobile\"].value with no mobile yet creates it",
            new_user(),
            json!([{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}]),
            edited(new_user(), |u| {
                u["phoneNumbers"] = json!([{"type": "mobile", "value": "+1 555 0100"}])
            }),
        ),
        (
            "entra: enterprise manager sent as a bare id, department and employee number",
            new_user(),
            json!([
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "26118915-6090-4610-87e4-49d8ca9f808d"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Finance"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "8812"}
            ]),
            edited(new_user(), |u| {
                u["schemas"] = json!([CORE_USER, ENT]);
                u[ENT] = json!({"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}, "department": "Finance", "employeeNumber": "8812"});
            }),
        ),
        (
            "entra: a new manager as a bare id drops the old manager's display name",
            user(),
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "d1a9e3f0"}]),
            edited(user(), |u| u[ENT]["manager"] = json!({"value": "d1a9e3f0"})),
        ),
        (
            "remove the enterprise manager",
            user(),
            json!([{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]),
            edited(user(), |u| {
                u[ENT].as_object_mut().unwrap().remove("manager");
            }),
        ),
        (
            "removing the last extension attribute drops the extension and its schema",
            edited(new_user(), |u| {
                u["schemas"] = json!([CORE_USER, ENT]);
                u[ENT] = json!({"department": "Finance"});
            }),
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]),
            new_user(),
        ),
        (
            "remove the whole extension by its URN, in any case",
            user(),
            json!([{"op": "remove", "path": "URN:ietf:params:scim:schemas:extension:enterprise:2.0:user"}]),
            edited(user(), |u| {
                u.as_object_mut().unwrap().remove(ENT);
                u["schemas"] = json!([CORE_USER]);
            }),
        ),
        (
            "a path that is the extension URN merges into the extension",
            user(),
            json!([{"op": "add", "path": ENT, "value": {"department": "Sales", "costCenter": "4130"}}]),
            edited(user(), |u| {
                u[ENT]["department"] = json!("Sales");
                u[ENT]["costCenter"] = json!("4130");
            }),
        ),
        (
            "a path-less value with the extension URN as a key",
            new_user(),
            json!([{"op": "replace", "value": {ENT: {"organization": "Universal Studios", "division": "Theme Park"}}}]),
            edited(new_user(), |u| {
                u["schemas"] = json!([CORE_USER, ENT]);
                u[ENT] = json!({"organization": "Universal Studios", "division": "Theme Park"});
            }),
        ),
        (
            "a path prefixed with the core schema URN",
            user(),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "B. Jensen"}]),
            edited(user(), |u| u["displayName"] = json!("B. Jensen")),
        ),
        (
            "a path that is the core schema URN acts as no path",
            user(),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": {"title": "Guide"}}]),
            edited(user(), |u| u["title"] = json!("Guide")),
        ),
        (
            "replace of an absent attribute adds it",
            new_user(),
            json!([{"op": "replace", "path": "nickName", "value": "Tester"}]),
            edited(new_user(), |u| u["nickName"] = json!("Tester")),
        ),
        (
            "a one-element array where a single value is expected is unwrapped",
            user(),
            json!([{"op": "replace", "path": "displayName", "value": ["Babs"]}]),
            edited(user(), |u| u["displayName"] = json!("Babs")),
        ),
        (
            "making the home e-mail primary demotes the work one",
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
            edited(user(), |u| {
                u["emails"][0]["primary"] = json!(false);
                u["emails"][1]["primary"] = json!(true);
            }),
        ),
        (
            "adding a primary e-mail demotes the existing primary",
            user(),
            json!([{"op": "add", "path": "emails", "value": {"value": "b@example.org", "type": "other", "primary": "true"}}]),
            edited(user(), |u| {
                u["emails"][0]["primary"] = json!(false);
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "b@example.org", "type": "other", "primary": true}));
            }),
        ),
        (
            "remove a sub-attribute of matching elements, and of a complex attribute",
            user(),
            json!([
                {"op": "remove", "path": "addresses[type eq \"work\"].country"},
                {"op": "remove", "path": "name.formatted"}
            ]),
            edited(user(), |u| {
                u["addresses"][0].as_object_mut().unwrap().remove("country");
                u["name"].as_object_mut().unwrap().remove("formatted");
            }),
        ),
        (
            "remove a whole attribute",
            user(),
            json!([{"op": "remove", "path": "addresses"}]),
            edited(user(), |u| {
                u.as_object_mut().unwrap().remove("addresses");
            }),
        ),
        (
            "remove an e-mail listed in the value",
            user(),
            json!([{"op": "remove", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "home"}]}]),
            edited(
                user(),
                |u| {
                    u["emails"] =
                        json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
                },
            ),
        ),
        (
            "remove matching nothing changes nothing",
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"other\"]"}, {"op": "remove", "path": "nickName"}]),
            user(),
        ),
        (
            "names match in any case and keep the existing spelling; op names in any case",
            user(),
            json!([
                {"op": "REPLACE", "path": "DISPLAYNAME", "value": "B"},
                {"op": "aDd", "path": "Name.GivenName", "value": "Barb"},
                {"op": "Remove", "path": "EMAILS[TYPE EQ \"HOME\"]"}
            ]),
            edited(user(), |u| {
                u["displayName"] = json!("B");
                u["name"]["givenName"] = json!("Barb");
                u["emails"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "a null value unassigns",
            user(),
            json!([{"op": "replace", "path": "displayName", "value": null}, {"op": "add", "value": {"nickName": null, "title": "Tour Guide"}}]),
            edited(user(), |u| {
                u.as_object_mut().unwrap().remove("displayName");
                u["title"] = json!("Tour Guide");
            }),
        ),
        (
            "add to a multi-valued attribute's sub-attribute without a filter creates an element",
            new_user(),
            json!([{"op": "add", "path": "roles.value", "value": "admin"}]),
            edited(new_user(), |u| u["roles"] = json!([{"value": "admin"}])),
        ),
    ]
}

#[test]
fn user_table() {
    for (name, before, operations, expected) in user_cases() {
        let mut resource = before.clone();
        let outcome = run(&mut resource, operations, &USER_SCHEMA)
            .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.scim_type()));
        assert_eq!(resource, expected, "{name}");
        assert_eq!(outcome.changed, before != expected, "{name}: changed");
        assert!(
            outcome.members_added.is_empty() && outcome.members_removed.is_empty(),
            "{name}"
        );
    }
}

#[test]
fn existing_key_spelling_is_kept() {
    let mut resource = edited(new_user(), |u| {
        u.as_object_mut().unwrap().remove("displayName");
        u["DisplayName"] = json!("Old");
    });
    run(
        &mut resource,
        json!([{"op": "replace", "path": "displayName", "value": "New"}]),
        &USER_SCHEMA,
    )
    .unwrap();
    assert_eq!(resource["DisplayName"], json!("New"));
    assert!(resource.get("displayName").is_none());
}

#[test]
fn new_keys_take_the_schema_spelling_of_known_attributes() {
    let mut resource = new_user();
    run(
        &mut resource,
        json!([{"op": "add", "path": "PHONENUMBERS", "value": [{"value": "555", "type": "work"}]}]),
        &USER_SCHEMA,
    )
    .unwrap();
    assert_eq!(
        resource["phoneNumbers"],
        json!([{"value": "555", "type": "work"}])
    );
}

#[test]
fn parse_request_reads_operations() {
    let request = parse_request(&json!({
        "Schemas": ["URN:ietf:params:scim:api:messages:2.0:PatchOp"],
        "operations": [
            {"Op": "Replace", "Path": " displayName ", "Value": "x"},
            {"op": "remove", "path": "nickName"},
            {"op": "add", "path": "", "value": {"title": "t"}},
            {"op": "add", "path": null, "value": {"title": "t"}}
        ]
    }))
    .unwrap();
    assert_eq!(
        request.operations,
        vec![
            PatchOp {
                op: OpKind::Replace,
                path: Some("displayName".into()),
                value: Some(json!("x"))
            },
            PatchOp {
                op: OpKind::Remove,
                path: Some("nickName".into()),
                value: None
            },
            PatchOp {
                op: OpKind::Add,
                path: None,
                value: Some(json!({"title": "t"}))
            },
            PatchOp {
                op: OpKind::Add,
                path: None,
                value: Some(json!({"title": "t"}))
            },
        ]
    );
}

#[test]
fn unchanged_resource_reports_no_change() {
    let mut resource = user();
    let outcome = run(
        &mut resource,
        json!([{"op": "replace", "path": "displayName", "value": "Babs Jensen"}]),
        &USER_SCHEMA,
    )
    .unwrap();
    assert_eq!(outcome, PatchOutcome::default());
    assert_eq!(resource, user());
}

mod errors;
mod members;
