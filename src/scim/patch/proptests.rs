//! Property tests: random sequences of plausible operations never panic [`apply`], leave
//! the resource an object, and leave it untouched on error; arbitrary JSON never panics
//! [`parse_request`]; and member additions and removals agree with a simple model
//! (final members, ids added and removed). Case counts are proptest's default (256, or
//! `PROPTEST_CASES`).

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::tests::{ENT, body, new_user, user};
use super::*;

/// JSON of every shape, with SCIM-ish keys and strings (also used by the server's
/// property tests).
pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9 .:\\[\\]\"$-]{0,16}".prop_map(Value::from),
        prop::sample::select(vec![
            PATCH_OP_URN,
            "add",
            "Remove",
            "REPLACE",
            "True",
            "false",
            "members",
            "emails[type eq \"work\"].value",
            ENT,
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:x",
            "a[",
            "]",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "schemas",
            "Schemas",
            "Operations",
            "operations",
            "op",
            "Op",
            "path",
            "value",
            "Value",
            "id",
            "members",
            "emails",
            "active",
            "primary",
            "displayName",
            "name.givenName",
            ENT,
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z$][a-zA-Z0-9]{0,6}",
    ]
}

fn arb_path() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.85,
        prop::sample::select(vec![
            "displayName",
            "active",
            "name",
            "name.givenName",
            "emails",
            "emails.value",
            "Emails[TYPE eq \"work\"].value",
            "emails[type eq \"home\"]",
            "emails[value co \"x\"].primary",
            "emails[primary eq true]",
            "members",
            "members[value eq \"m1\"]",
            "members[value eq \"m1\" or value eq \"m3\"].display",
            "members[display pr]",
            ENT,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "id",
            "phoneNumbers.value",
            "nickName",
            "roles[primary eq true]",
            "addresses[type eq \"work\"].streetAddress",
            "groups",
            "meta.version",
            "schemas",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "urn:x:y:attr",
            "x509Certificates[value sw \"M\"]",
            "displayName.sub",
            "name[givenName eq \"Test\"]",
        ])
        .prop_map(str::to_owned),
    )
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec![
            json!(null), json!("x"), json!("True"), json!(true), json!(3), json!([]), json!(["y"]), json!({"value": "m1"}),
            json!([{"value": "m2"}, {"value": "m1", "display": "One"}]), json!({"type": "work", "value": "a@b.c", "primary": true}),
            json!({"givenName": "G", "formatted": null}), json!({"department": "D", "manager": "id-9"}),
            json!({"active": "false", "name.familyName": "F", "id": "u-1", "schemas": []}),
            json!({ENT: {"costCenter": 1}, "emails[type eq \"work\"].value": "w@x.y"}), json!([{"value": "m3"}]),
        ]),
        1 => arb_json(),
    ]
}

fn arb_op() -> impl Strategy<Value = PatchOp> {
    (
        prop::sample::select(vec![OpKind::Add, OpKind::Remove, OpKind::Replace]),
        arb_path(),
        prop::option::weighted(0.8, arb_value()),
    )
        .prop_map(|(op, path, value)| PatchOp { op, path, value })
}

fn arb_resource() -> impl Strategy<Value = (Value, &'static ResourceSchema)> {
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "G",
        "members": [{"value": "m1"}, {"value": "m2", "display": "Two"}, {"value": "m1"}, "junk", null]});
    prop_oneof![
        Just((user(), &USER_SCHEMA)),
        Just((new_user(), &USER_SCHEMA)),
        Just((group, &GROUP_SCHEMA)),
        Just((json!({}), &GROUP_SCHEMA)),
        (arb_json(), prop::bool::ANY)
            .prop_map(|(v, u)| (v, if u { &USER_SCHEMA } else { &GROUP_SCHEMA })),
    ]
}

proptest! {
    #[test]
    fn random_operations_never_panic((resource, schema) in arb_resource(), operations in prop::collection::vec(arb_op(), 1..8)) {
        let request = PatchRequest { operations };
        let mut patched = resource.clone();
        match apply(&mut patched, &request, schema) {
            Ok(outcome) => {
                prop_assert!(patched.is_object());
                prop_assert_eq!(outcome.changed, patched != resource);
                // Applying again must not panic either.
                let _ = apply(&mut patched, &request, schema);
                prop_assert!(patched.is_object());
            }
            Err(err) => {
                prop_assert_eq!(&patched, &resource, "{}", err);
                prop_assert!(!err.message().is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(candidate in arb_json()) {
        if let Ok(request) = parse_request(&candidate) {
            let mut resource = user();
            let _ = apply(&mut resource, &request, &USER_SCHEMA);
            prop_assert!(resource.is_object());
        }
    }

    #[test]
    fn arbitrary_resources_never_panic_the_resource_parsers(candidate in arb_json()) {
        let _ = crate::scim::resource::user_from_scim("id", &candidate);
        let _ = crate::scim::resource::group_from_scim("id", &candidate);
    }

    #[test]
    fn almost_valid_bodies_never_panic(operations in prop::collection::vec(arb_json(), 1..6)) {
        if let Ok(request) = parse_request(&body(Value::Array(operations))) {
            let mut resource = new_user();
            let _ = apply(&mut resource, &request, &USER_SCHEMA);
            prop_assert!(resource.is_object());
        }
    }

    #[test]
    fn members_agree_with_a_model(
        initial in prop::collection::vec(0u8..12, 0..8),
        steps in prop::collection::vec((0u8..4, prop::collection::vec(0u8..12, 1..4)), 1..12),
    ) {
        let id = |n: &u8| format!("m{n}");
        let mut model: Vec<String> = Vec::new();
        for n in &initial {
            if !model.contains(&id(n)) {
                model.push(id(n));
            }
        }
        let start = model.clone();
        let members: Vec<Value> = model.iter().map(|m| json!({"value": m})).collect();
        let mut group = json!({"id": "g", "displayName": "G", "members": members});
        if model.is_empty() {
            group.as_object_mut().map(|g| g.remove("members"));
        }
        let mut operations = Vec::new();
        for (kind, ids) in &steps {
            let listed: Vec<Value> = ids.iter().map(|n| json!({"value": id(n)})).collect();
            let filter = ids.iter().map(|n| format!("value eq \"{}\"", id(n))).collect::<Vec<_>>().join(" or ");
            operations.push(match kind {
                0 => json!({"op": "add", "path": "members", "value": listed}),
                1 => json!({"op": "remove", "path": "members", "value": listed}),
                2 => json!({"op": "remove", "path": format!("members[{filter}]")}),
                _ => json!({"op": "remove", "path": format!("members[{filter} or display pr]")}),
            });
            for n in ids {
                let m = id(n);
                if *kind == 0 {
                    if !model.contains(&m) {
                        model.push(m);
                    }
                } else {
                    model.retain(|x| x != &m);
                }
            }
        }
        let outcome = apply(&mut group, &parse_request(&body(Value::Array(operations))).unwrap(), &GROUP_SCHEMA).unwrap();
        let after: Vec<String> = group.get("members").and_then(Value::as_array).map(|a| {
            a.iter().filter_map(|m| m["value"].as_str().map(str::to_owned)).collect()
        }).unwrap_or_default();
        prop_assert_eq!(&after, &model);
        let start_set: HashSet<&String> = start.iter().collect();
        let model_set: HashSet<&String> = model.iter().collect();
        let added: Vec<String> = model.iter().filter(|m| !start_set.contains(m)).cloned().collect();
        let removed: Vec<String> = start.iter().filter(|m| !model_set.contains(m)).cloned().collect();
        prop_assert_eq!(outcome.members_added, added);
        prop_assert_eq!(outcome.members_removed, removed);
        prop_assert_eq!(group.get("members").is_some(), !model.is_empty());
    }
}
