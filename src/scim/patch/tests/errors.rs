//! Every error path, with its `scimType` and exact message, for request bodies
//! ([`parse_request`]) and for operations ([`apply`]); and all-or-nothing: a failing
//! operation leaves the resource exactly as it was.

use serde_json::{Value, json};

use super::super::*;
use super::{BJENSEN, ENT, body, edited, new_user, user};

/// (body, scimType, message) for bodies [`parse_request`] rejects.
fn bad_bodies() -> Vec<(Value, &'static str, String)> {
    let too_many: Vec<Value> = (0..=MAX_OPERATIONS)
        .map(|_| json!({"op": "remove", "path": "nickName"}))
        .collect();
    vec![
        (json!([]), "invalidSyntax", "the request body must be a JSON object, found an array".into()),
        (
            json!({"Operations": [{"op": "remove", "path": "nickName"}]}),
            "invalidSyntax",
            format!("\"schemas\" is missing; it must contain \"{PATCH_OP_URN}\""),
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": [{"op": "remove", "path": "nickName"}]}),
            "invalidSyntax",
            format!("\"schemas\" must contain \"{PATCH_OP_URN}\""),
        ),
        (json!({"schemas": [PATCH_OP_URN]}), "invalidSyntax", "\"Operations\" is missing".into()),
        (
            json!({"schemas": [PATCH_OP_URN], "Operations": {"op": "add"}}),
            "invalidSyntax",
            "\"Operations\" must be an array, found an object".into(),
        ),
        (body(json!([])), "invalidSyntax", "\"Operations\" is empty; at least one operation is needed".into()),
        (
            body(Value::Array(too_many)),
            "tooMany",
            "the request has 1001 operations; at most 1000 are accepted".into(),
        ),
        (body(json!(["add"])), "invalidSyntax", "operation 1: an operation must be a JSON object, found a string".into()),
        (body(json!([{"path": "x", "value": 1}])), "invalidSyntax", "operation 1: \"op\" is missing".into()),
        (body(json!([{"op": 1}])), "invalidSyntax", "operation 1: \"op\" must be a string, found a number".into()),
        (
            body(json!([{"op": "remove", "path": "nickName"}, {"op": "move", "path": "x"}])),
            "invalidSyntax",
            "operation 2: \"op\" must be add, remove or replace, found \"move\"".into(),
        ),
        (
            body(json!([{"op": "remove", "path": 5}])),
            "invalidSyntax",
            "operation 1: \"path\" must be a string, found a number".into(),
        ),
        (
            body(json!([{"op": "remove", "path": "emails[type eq \"work\""}])),
            "invalidPath",
            r#"operation 1: path "emails[type eq \"work\"" is not valid: column 22: missing "]" for the "[" at column 7"#.into(),
        ),
        (
            body(json!([{"op": "replace", "path": "displayName"}])),
            "invalidSyntax",
            "operation 1: replace needs a \"value\"".into(),
        ),
    ]
}

#[test]
fn bad_bodies_are_rejected() {
    for (request, scim_type, message) in bad_bodies() {
        let err = parse_request(&request).unwrap_err();
        assert_eq!(
            (err.scim_type(), err.message()),
            (scim_type, message.as_str())
        );
        assert_eq!(err.to_string(), message);
    }
}

/// (schema, resource, operations, scimType, message) for operations [`apply`] rejects.
type Bad = (
    &'static ResourceSchema,
    Value,
    Value,
    &'static str,
    &'static str,
);

fn bad_operations() -> Vec<Bad> {
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "G", "members": [{"value": "u1"}]});
    vec![
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "remove"}]),
            "noTarget",
            r#"operation 1: remove needs a "path" naming what to remove"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "x@example.com"}}]),
            "noTarget",
            r#"operation 1: path "emails[type eq \"other\"]" matched no value"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([
                {"op": "replace", "path": "displayName", "value": "B"},
                {"op": "add", "path": "nickName", "value": "Babs"},
                {"op": "add", "path": "emails[value co \"nomatch\"].display", "value": "x"}
            ]),
            "noTarget",
            r#"operation 3: path "emails[value co \"nomatch\"].display" matched no value"#,
        ),
        (
            &USER_SCHEMA,
            new_user(),
            json!([{"op": "add", "path": "phoneNumbers[type eq \"work\"]", "value": {"value": "555"}}]),
            "noTarget",
            r#"operation 1: path "phoneNumbers[type eq \"work\"]" matched no value"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "path": "name[givenName eq \"Barbara\"].familyName", "value": "J"}]),
            "invalidPath",
            r#"operation 1: path "name[givenName eq \"Barbara\"].familyName" filters "name", which holds an object rather than multiple values"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "displayName.first", "value": "B"}]),
            "invalidPath",
            r#"operation 1: path "displayName.first": "displayName" holds a string, which has no sub-attributes"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "urn:example:custom:2.0:User:badge", "value": "7"}]),
            "invalidPath",
            r#"operation 1: path "urn:example:custom:2.0:User:badge" names schema "urn:example:custom:2.0:User", which this resource does not have (known: urn:ietf:params:scim:schemas:core:2.0:User, urn:ietf:params:scim:schemas:extension:enterprise:2.0:User)"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "remove", "path": "emails.type[value eq \"x\"]"}]),
            "invalidPath",
            r#"operation 1: path "emails.type[value eq \"x\"]" filters a sub-attribute; put the filter on the attribute, as in emails[type eq "work"].value"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "remove", "path": "emails.type[value eq \"x\"].display"}]),
            "invalidPath",
            r#"operation 1: path "emails.type[value eq \"x\"].display" has a sub-attribute both before and after the filter"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User": {"displayName": "B"}}}]),
            "invalidPath",
            r#"operation 1: value key "urn:ietf:params:scim:schemas:core:2.0:User" names the resource itself; give its attributes directly"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "remove", "path": "displayName.first"}]),
            "invalidPath",
            r#"operation 1: path "displayName.first": "displayName" holds a string, which has no sub-attributes"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "remove", "path": "name[givenName eq \"Barbara\"]"}]),
            "invalidPath",
            r#"operation 1: path "name[givenName eq \"Barbara\"]" filters "name", which holds an object rather than multiple values"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "name[givenName eq \"Barbara\"]", "value": {"middleName": "J"}}]),
            "invalidPath",
            r#"operation 1: path "name[givenName eq \"Barbara\"]" filters "name", which holds an object rather than multiple values"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
            r#"operation 1: attribute "id" is read-only (path "id")"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "remove", "path": "meta.lastModified"}]),
            "mutability",
            r#"operation 1: attribute "meta" is read-only (path "meta.lastModified")"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "groups", "value": [{"value": "g2"}]}]),
            "mutability",
            r#"operation 1: attribute "groups" is read-only (path "groups")"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "value": {"id": "another-id", "displayName": "B"}}]),
            "mutability",
            r#"operation 1: attribute "id" is read-only (path "id")"#,
        ),
        (
            &GROUP_SCHEMA,
            group.clone(),
            json!([{"op": "replace", "value": {"displayName": "G2", "meta": {"version": "W/\"2\""}}}]),
            "mutability",
            r#"operation 1: attribute "meta" is read-only (path "meta")"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "schemas", "value": ["urn:example:other"]}]),
            "mutability",
            r#"operation 1: attribute "schemas" is kept by the server from the extensions present"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "path": "active", "value": "yes"}]),
            "invalidValue",
            r#"operation 1: "active" must be a boolean, found a string"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "b@x.org", "primary": 3}]}]),
            "invalidValue",
            r#"operation 1: "primary" must be a boolean, found a number"#,
        ),
        (
            &GROUP_SCHEMA,
            group.clone(),
            json!([{"op": "add", "path": "members", "value": ["u2"]}]),
            "invalidValue",
            r#"operation 1: a member must be an object with a string "value" (the member's id), found a string"#,
        ),
        (
            &GROUP_SCHEMA,
            group.clone(),
            json!([{"op": "remove", "path": "members", "value": [{"value": 7}]}]),
            "invalidValue",
            r#"operation 1: members to remove must be objects with a string "value", found an object"#,
        ),
        (
            &GROUP_SCHEMA,
            group,
            json!([{"op": "replace", "path": "members", "value": [{"value": "u2"}, {"display": "no id"}]}]),
            "invalidValue",
            r#"operation 1: a member must be an object with a string "value" (the member's id), found an object"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "path": "name", "value": "Barbara Jensen"}]),
            "invalidValue",
            r#"operation 1: "name" is complex, so its value must be an object of sub-attributes, found a string"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "value": "Babs"}]),
            "invalidValue",
            "operation 1: add without a path needs an object of attributes as its value, found a string",
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "replace", "path": ENT, "value": "Sales"}]),
            "invalidValue",
            r#"operation 1: path "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" names the extension object, so the value must be an object of its attributes, found a string"#,
        ),
        (
            &USER_SCHEMA,
            user(),
            json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": "b@x.org"}]),
            "invalidValue",
            r#"operation 1: path "emails[type eq \"work\"]" selects elements, so the value must be an object, found a string"#,
        ),
        (
            &USER_SCHEMA,
            edited(user(), |u| u[ENT] = json!("corrupt")),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}]),
            "invalidValue",
            r#"operation 1: the resource's "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" holds a string, not an object of extension attributes"#,
        ),
    ]
}

#[test]
fn bad_operations_are_rejected_and_change_nothing() {
    for (schema, before, operations, scim_type, message) in bad_operations() {
        let mut resource = before.clone();
        let request = parse_request(&body(operations)).unwrap();
        let err = apply(&mut resource, &request, schema).unwrap_err();
        assert_eq!((err.scim_type(), err.message()), (scim_type, message));
        assert_eq!(resource, before, "{message}");
    }
}

#[test]
fn hand_built_requests_are_checked_too() {
    let op = |op, path: Option<&str>, value| PatchOp {
        op,
        path: path.map(str::to_owned),
        value,
    };
    let cases = [
        (
            op(OpKind::Add, Some("displayName"), None),
            "invalidSyntax",
            r#"operation 1: add needs a "value""#,
        ),
        (
            op(OpKind::Replace, None, None),
            "invalidSyntax",
            r#"operation 1: replace needs a "value""#,
        ),
        (
            op(OpKind::Remove, Some("a b"), None),
            "invalidPath",
            r#"operation 1: path "a b" is not valid: column 3: expected "[" or end of input, found "b""#,
        ),
    ];
    for (op, scim_type, message) in cases {
        let mut resource = user();
        let err = apply(
            &mut resource,
            &PatchRequest {
                operations: vec![op],
            },
            &USER_SCHEMA,
        )
        .unwrap_err();
        assert_eq!((err.scim_type(), err.message()), (scim_type, message));
    }
    let operations = vec![op(OpKind::Remove, Some("nickName"), None); MAX_OPERATIONS + 1];
    let err = apply(&mut user(), &PatchRequest { operations }, &USER_SCHEMA).unwrap_err();
    assert_eq!(err.scim_type(), "tooMany");
    let mut not_an_object = json!([1]);
    let request = PatchRequest {
        operations: vec![op(OpKind::Remove, Some("nickName"), None)],
    };
    let err = apply(&mut not_an_object, &request, &USER_SCHEMA).unwrap_err();
    assert_eq!(
        (err.scim_type(), err.message()),
        (
            "invalidValue",
            "the resource must be a JSON object, found an array"
        )
    );
}

#[test]
fn all_or_nothing() {
    let mut resource = user();
    let err = super::tests::run(
        &mut resource,
        json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]},
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
            {"op": "replace", "path": "active", "value": "False"},
            {"op": "replace", "value": {"id": "not-the-id"}}
        ]),
        &USER_SCHEMA,
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::Mutability(r#"operation 5: attribute "id" is read-only (path "id")"#.into())
    );
    assert_eq!(resource, user());
}

#[test]
fn an_equal_id_in_a_path_less_value_is_ignored() {
    let mut resource = user();
    let outcome = super::tests::run(
        &mut resource,
        json!([{"op": "add", "value": {"id": BJENSEN}}]),
        &USER_SCHEMA,
    )
    .unwrap();
    assert!(!outcome.changed);
}

#[test]
fn every_variant_has_its_scim_type() {
    let all = [
        (PatchError::InvalidSyntax("m".into()), "invalidSyntax"),
        (PatchError::InvalidPath("m".into()), "invalidPath"),
        (PatchError::NoTarget("m".into()), "noTarget"),
        (PatchError::InvalidValue("m".into()), "invalidValue"),
        (PatchError::Mutability("m".into()), "mutability"),
        (PatchError::TooMany("m".into()), "tooMany"),
    ];
    for (err, scim_type) in all {
        assert_eq!(err.scim_type(), scim_type);
        assert_eq!(err.to_string(), "m");
        assert_eq!(err.in_operation(2).message(), "operation 2: m");
    }
}
