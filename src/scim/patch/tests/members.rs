//! Group tests: member additions and removals as RFC 7644, Entra ID and Okta send them,
//! with the member ids reported; renames; the member index across operations of other
//! kinds; and 10,000 members added to a group of 10,000.

use serde_json::{Value, json};

use super::super::*;
use super::{BJENSEN, body, edited, run};

const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const MANDY: &str = "902c246b-6245-4190-8e05-00816be7344a";
const GROUP_ID: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

fn group() -> Value {
    json!({
        "schemas": [CORE_GROUP],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
        "members": [
            {"value": BJENSEN, "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
            {"value": MANDY, "$ref": "https://example.com/v2/Users/902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}
        ],
        "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

fn babs() -> Value {
    group()["members"][0].clone()
}

fn mandy() -> Value {
    group()["members"][1].clone()
}

fn with_members(members: Value) -> Value {
    edited(group(), |g| g["members"] = members)
}

fn without_members() -> Value {
    edited(group(), |g| {
        g.as_object_mut().unwrap().remove("members");
    })
}

/// (name, before, operations, after, ids added, ids removed)
type Case = (
    &'static str,
    Value,
    Value,
    Value,
    &'static [&'static str],
    &'static [&'static str],
);

fn group_cases() -> Vec<Case> {
    vec![
        (
            "rfc 3.5.2.1: add a member",
            group(),
            json!([{"op": "add", "path": "members", "value": [{"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d", "value": "08e1d05d"}]}]),
            with_members(
                json!([babs(), mandy(), {"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d", "value": "08e1d05d"}]),
            ),
            &["08e1d05d"],
            &[],
        ),
        (
            "rfc 3.5.2.2: remove a member by filter",
            group(),
            json!([{"op": "remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"}]),
            with_members(json!([mandy()])),
            &[],
            &[BJENSEN],
        ),
        (
            "rfc 3.5.2.2: remove all members",
            group(),
            json!([{"op": "remove", "path": "members"}]),
            without_members(),
            &[],
            &[BJENSEN, MANDY],
        ),
        (
            "rfc 3.5.2.2: replace all members by remove then add",
            group(),
            json!([
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [{"value": "a1"}, {"value": BJENSEN}]}
            ]),
            with_members(json!([{"value": "a1"}, {"value": BJENSEN}])),
            &["a1"],
            &[MANDY],
        ),
        (
            "rfc 3.5.2.3: replace members",
            group(),
            json!([{"op": "replace", "path": "members", "value": [{"value": "a1", "display": "A"}, {"value": "a1"}, {"value": MANDY}]}]),
            with_members(json!([{"value": "a1", "display": "A"}, {"value": MANDY}])),
            &["a1"],
            &[BJENSEN],
        ),
        (
            "entra: add a member",
            group(),
            json!([{"op": "Add", "path": "members", "value": [{"value": "7a0e6f35-1a48-4d23-a8f4-d7b3c1e3a6a1"}]}]),
            with_members(
                json!([babs(), mandy(), {"value": "7a0e6f35-1a48-4d23-a8f4-d7b3c1e3a6a1"}]),
            ),
            &["7a0e6f35-1a48-4d23-a8f4-d7b3c1e3a6a1"],
            &[],
        ),
        (
            "entra: remove members listed in the value",
            group(),
            json!([{"op": "Remove", "path": "members", "value": [{"value": BJENSEN}, {"value": "not-a-member"}]}]),
            with_members(json!([mandy()])),
            &[],
            &[BJENSEN],
        ),
        (
            "entra: rename",
            group(),
            json!([{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]),
            edited(group(), |g| {
                g["displayName"] = json!("1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName")
            }),
            &[],
            &[],
        ),
        (
            "okta: rename path-less, echoing the id",
            group(),
            json!([{"op": "replace", "value": {"id": GROUP_ID, "displayName": "Tour Guides Intl"}}]),
            edited(group(), |g| g["displayName"] = json!("Tour Guides Intl")),
            &[],
            &[],
        ),
        (
            "okta: remove members by an or-filter of ids, one op per member too",
            with_members(json!([babs(), mandy(), {"value": "c3"}, {"value": "c4"}])),
            json!([
                {"op": "remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\" or value eq \"c3\"]"},
                {"op": "remove", "path": "members[value eq \"c4\"]"}
            ]),
            with_members(json!([mandy()])),
            &[],
            &[BJENSEN, "c3", "c4"],
        ),
        (
            "adding an existing member changes nothing; a single object is accepted",
            group(),
            json!([{"op": "add", "path": "members", "value": {"value": MANDY}}]),
            group(),
            &[],
            &[],
        ),
        (
            "add then remove the same member within a request nets out",
            group(),
            json!([
                {"op": "add", "path": "members", "value": [{"value": "x9"}]},
                {"op": "remove", "path": "members", "value": [{"value": "x9"}]}
            ]),
            group(),
            &[],
            &[],
        ),
        (
            "member ids compare case-exactly",
            group(),
            json!([{"op": "remove", "path": "members[value eq \"2819C223-7F76-453A-919D-413861904646\"]"}]),
            group(),
            &[],
            &[],
        ),
        (
            "members to a group without any, path-less",
            without_members(),
            json!([{"op": "add", "value": {"members": [{"value": "m1"}, {"value": "m2"}, {"value": "m1"}]}}]),
            with_members(json!([{"value": "m1"}, {"value": "m2"}])),
            &["m1", "m2"],
            &[],
        ),
        (
            "index, generic filter, index: removals settle before the generic operation",
            group(),
            json!([
                {"op": "add", "path": "members", "value": [{"value": "x1"}]},
                {"op": "remove", "path": "members", "value": [{"value": MANDY}]},
                {"op": "remove", "path": "members[display eq \"Babs Jensen\"]"},
                {"op": "add", "path": "members", "value": [{"value": BJENSEN}, {"value": MANDY}]},
                {"op": "remove", "path": "members[value eq \"x1\"]"}
            ]),
            with_members(json!([{"value": BJENSEN}, {"value": MANDY}])),
            &[],
            &[],
        ),
        (
            "replace one member element by filter reports both ids",
            group(),
            json!([{"op": "replace", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"]", "value": {"value": "n1"}}]),
            with_members(json!([babs(), {"value": "n1"}])),
            &["n1"],
            &[MANDY],
        ),
        (
            "set a member's display by filter and sub-attribute",
            group(),
            json!([{"op": "replace", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"].display", "value": "Mandy P."}]),
            edited(group(), |g| g["members"][1]["display"] = json!("Mandy P.")),
            &[],
            &[],
        ),
    ]
}

#[test]
fn group_table() {
    for (name, before, operations, expected, added, removed) in group_cases() {
        let mut resource = before.clone();
        let outcome = run(&mut resource, operations, &GROUP_SCHEMA)
            .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.scim_type()));
        assert_eq!(resource, expected, "{name}");
        assert_eq!(outcome.changed, before != expected, "{name}: changed");
        assert_eq!(outcome.members_added, added, "{name}: added");
        assert_eq!(outcome.members_removed, removed, "{name}: removed");
    }
}

#[test]
fn ten_thousand_members_added_to_ten_thousand() {
    let existing: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("old-{i}")}))
        .collect();
    let mut resource = with_members(Value::Array(existing));
    // 10,000 new members plus 100 already there, in one op; then 10,000 more, one op
    // each for the last 500 (Okta sends one op per member).
    let mut batch: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("new-{i}")}))
        .collect();
    batch.extend((0..100).map(|i| json!({"value": format!("old-{i}")})));
    let mut operations = vec![json!({"op": "add", "path": "members", "value": batch})];
    operations.extend(
        (0..500).map(|i| json!({"op": "remove", "path": format!("members[value eq \"old-{i}\"]")})),
    );
    let request = parse_request(&body(Value::Array(operations))).unwrap();
    let outcome = apply(&mut resource, &request, &GROUP_SCHEMA).unwrap();

    let members = resource["members"].as_array().unwrap();
    assert_eq!(members.len(), 19_500);
    assert_eq!(members[0], json!({"value": "old-500"}));
    assert_eq!(members[9_499], json!({"value": "old-9999"}));
    assert_eq!(members[9_500], json!({"value": "new-0"}));
    assert_eq!(members[19_499], json!({"value": "new-9999"}));
    assert_eq!(outcome.members_added.len(), 10_000);
    assert_eq!(
        outcome.members_added.first().map(String::as_str),
        Some("new-0")
    );
    let removed: Vec<String> = (0..500).map(|i| format!("old-{i}")).collect();
    assert_eq!(outcome.members_removed, removed);
    assert!(outcome.changed);
}

#[test]
fn members_are_not_tracked_for_users() {
    let mut resource = super::tests::user();
    let outcome = run(
        &mut resource,
        json!([{"op": "add", "path": "members", "value": [{"value": "x"}]}]),
        &USER_SCHEMA,
    )
    .unwrap();
    assert!(outcome.changed);
    assert!(outcome.members_added.is_empty());
    assert_eq!(resource["members"], json!([{"value": "x"}]));
}

#[test]
fn failure_after_member_changes_leaves_the_group_unchanged() {
    let mut resource = group();
    let err = run(
        &mut resource,
        json!([
            {"op": "add", "path": "members", "value": [{"value": "x1"}]},
            {"op": "remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"},
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": [{"display": "no id"}]}
        ]),
        &GROUP_SCHEMA,
    )
    .unwrap_err();
    assert_eq!(err.scim_type(), "invalidValue");
    assert!(
        err.message()
            .starts_with("operation 4: a member must be an object with a string \"value\""),
        "{err}"
    );
    assert_eq!(resource, group());
}
