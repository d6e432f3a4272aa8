//! SCIM 1.1 on `/scim/{tenant}/v1` (Okta's on-premises provisioning agent), sharing
//! everything with 2.0: resources are stored with the 2.0 schema names whichever version
//! pushed them, and translated at the edge. 1.1 names its core schema
//! `urn:scim:schemas:core:1.0` for users and groups alike, and its enterprise extension
//! `urn:scim:schemas:extension:enterprise:1.0`; its PATCH is a partial resource
//! (`meta.attributes` lists attributes to remove, multi-valued elements marked
//! `"operation": "delete"` are removed, the rest added or replaced), turned here into the
//! equivalent 2.0 operations.

use serde_json::{Map, Value, json};

use crate::scim::discovery;
use crate::scim::error::{ScimError, ScimType, ScimVersion};
use crate::scim::patch::{self, PatchRequest};

/// The SCIM 1.1 core schema.
pub(crate) const CORE_SCHEMA: &str = "urn:scim:schemas:core:1.0";
/// The SCIM 1.1 enterprise user extension.
const ENTERPRISE_V1: &str = "urn:scim:schemas:extension:enterprise:1.0";

fn rename_key(object: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(key) = object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(from))
        .cloned()
        && let Some(value) = object.remove(&key)
    {
        object.insert(to.to_string(), value);
    }
}

fn rewrite_schemas(object: &mut Map<String, Value>, map: &dyn Fn(&str) -> Option<&'static str>) {
    if let Some(Value::Array(schemas)) = object.get_mut("schemas") {
        for schema in schemas.iter_mut() {
            if let Some(text) = schema.as_str()
                && let Some(new) = map(text)
            {
                *schema = Value::String(new.to_string());
            }
        }
        let mut seen = Vec::new();
        schemas.retain(|s| {
            let keep = !seen.contains(s);
            seen.push(s.clone());
            keep
        });
    }
}

/// Okta's extension of the 1.1 service provider configuration.
const OKTA_PROVIDER_CONFIG: &str = "urn:okta:schemas:scim:providerconfig:1.0";

/// The 1.1 service provider configuration with Okta's capability list, from which Okta's
/// on-premises agent decides which provisioning features to turn on. Password pushes are
/// not offered: idsync never stores passwords.
pub(crate) fn with_okta_capabilities(mut config: Value) -> Value {
    if let Value::Object(object) = &mut config {
        if let Some(Value::Array(schemas)) = object.get_mut("schemas") {
            schemas.push(json!(OKTA_PROVIDER_CONFIG));
        }
        object.insert(
            OKTA_PROVIDER_CONFIG.to_string(),
            json!({"userManagementCapabilities": [
                "GROUP_PUSH",
                "IMPORT_NEW_USERS",
                "IMPORT_PROFILE_UPDATES",
                "PUSH_NEW_USERS",
                "PUSH_PENDING_USERS",
                "PUSH_PROFILE_UPDATES",
                "PUSH_USER_DEACTIVATION",
                "REACTIVATE_USERS"
            ]}),
        );
    }
    config
}

/// A pushed body with 1.1 schema names turned into 2.0 ones (any version may send them;
/// Okta's agent only ever does on /v1).
pub(crate) fn incoming<'a>(
    _version: ScimVersion,
    body: &'a mut Value,
    core_schema: &'static str,
) -> &'a mut Value {
    if let Value::Object(object) = body {
        rewrite_schemas(object, &|s| {
            if s.eq_ignore_ascii_case(CORE_SCHEMA) {
                Some(core_schema)
            } else if s.eq_ignore_ascii_case(ENTERPRISE_V1) {
                Some(discovery::ENTERPRISE_USER_SCHEMA)
            } else {
                None
            }
        });
        rename_key(object, ENTERPRISE_V1, discovery::ENTERPRISE_USER_SCHEMA);
    }
    body
}

/// A stored resource as the client's protocol version shows it.
pub(crate) fn outgoing(version: ScimVersion, mut resource: Value) -> Value {
    if version == ScimVersion::V2 {
        return resource;
    }
    if let Value::Object(object) = &mut resource {
        rewrite_schemas(object, &|s| {
            if s.eq_ignore_ascii_case(discovery::USER_SCHEMA)
                || s.eq_ignore_ascii_case(discovery::GROUP_SCHEMA)
            {
                Some(CORE_SCHEMA)
            } else if s.eq_ignore_ascii_case(discovery::ENTERPRISE_USER_SCHEMA) {
                Some(ENTERPRISE_V1)
            } else {
                None
            }
        });
        rename_key(object, discovery::ENTERPRISE_USER_SCHEMA, ENTERPRISE_V1);
    }
    resource
}

/// The PATCH request of either version, as 2.0 operations.
pub(crate) fn patch_request(
    version: ScimVersion,
    body: &Value,
    core_schema: &'static str,
) -> Result<PatchRequest, ScimError> {
    let v2 = match version {
        ScimVersion::V2 => body.clone(),
        ScimVersion::V1 => v1_patch_as_v2(body, core_schema)?,
    };
    Ok(patch::parse_request(&v2)?)
}

/// Protocol 1.1 §3.8: core attributes may carry the core URN as a prefix
/// (`urn:scim:schemas:core:1.0:userName`), extension attributes carry theirs (joined with
/// `:` or `.`). As a 2.0 path: core names bare, enterprise names under the 2.0 URN.
fn v1_path_as_v2(path: &str) -> String {
    let strip = |prefix: &str| -> Option<&str> {
        let head = path.get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix) {
            return None;
        }
        path[prefix.len()..]
            .strip_prefix(':')
            .or_else(|| path[prefix.len()..].strip_prefix('.'))
    };
    if let Some(rest) = strip(CORE_SCHEMA) {
        rest.to_string()
    } else if let Some(rest) = strip(ENTERPRISE_V1) {
        format!("{}:{rest}", discovery::ENTERPRISE_USER_SCHEMA)
    } else {
        path.to_string()
    }
}

/// Whether `name` can stand in a 2.0 path (RFC 7644 `ATTRNAME`), so that a filter built
/// from client-sent names cannot be bent into another filter.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
}

fn literal(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The 2.0 filter selecting the element a 1.1 element names: by `value` when it has one,
/// else by all its plain sub-attributes (Protocol 1.1 §3.3.2).
fn element_filter(key: &str, element: &Map<String, Value>) -> Result<String, ScimError> {
    if let Some(value) = element.get("value") {
        return Ok(format!("{key}[value eq {}]", literal(value)));
    }
    let mut terms = Vec::new();
    for (name, value) in element {
        if !matches!(value, Value::String(_) | Value::Bool(_) | Value::Number(_)) {
            continue;
        }
        if !is_attribute_name(name) {
            return Err(ScimError::bad_request(
                ScimType::InvalidPath,
                format!("`{key}.{name}` is not an attribute name"),
            ));
        }
        terms.push(format!("{name} eq {}", literal(value)));
    }
    if terms.is_empty() {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("an element of `{key}` marked for deletion needs a `value` or sub-attributes"),
        ));
    }
    Ok(format!("{key}[{}]", terms.join(" and ")))
}

/// The operations for one multi-valued attribute of a 1.1 PATCH body (Protocol 1.1
/// §3.3.2): elements marked `"operation": "delete"` are removed (unless the attribute is
/// also in `meta.attributes`, whose removal already covers them); an element with a
/// `value` is merged into the element of the same value, or added when there is none;
/// the rest are added. Members are added in one operation (the PATCH engine already
/// merges them by `value`), which keeps pushes of thousands of members linear.
fn multi_valued_ops(
    key: &str,
    items: &[Value],
    removed_whole: bool,
    operations: &mut Vec<Value>,
) -> Result<(), ScimError> {
    let mut added = Vec::new();
    for item in items {
        let Value::Object(element) = item else {
            added.push(item.clone());
            continue;
        };
        let deleting = element
            .get("operation")
            .and_then(Value::as_str)
            .is_some_and(|op| op.eq_ignore_ascii_case("delete"));
        let mut element = element.clone();
        element.remove("operation");
        if deleting {
            if !removed_whole {
                let path = element_filter(key, &element)?;
                operations.push(json!({"op": "remove", "path": path}));
            }
            continue;
        }
        let mergeable = !key.eq_ignore_ascii_case("members")
            && element
                .get("value")
                .is_some_and(|v| v.is_string() || v.is_number() || v.is_boolean())
            && element.keys().all(|name| is_attribute_name(name));
        if !mergeable {
            added.push(Value::Object(element));
            continue;
        }
        // `value` first: when no element has it, the engine creates one from the filter's
        // comparison; the other sub-attributes then land in that element.
        let filter = element_filter(key, &element)?;
        let value = element.remove("value").unwrap_or(Value::Null);
        operations.push(json!({"op": "add", "path": format!("{filter}.value"), "value": value}));
        for (name, sub) in element {
            operations.push(json!({"op": "add", "path": format!("{filter}.{name}"), "value": sub}));
        }
    }
    if !added.is_empty() {
        operations.push(json!({"op": "add", "path": key, "value": added}));
    }
    Ok(())
}

fn v1_patch_as_v2(body: &Value, core_schema: &'static str) -> Result<Value, ScimError> {
    let mut body = body.clone();
    incoming(ScimVersion::V1, &mut body, core_schema);
    let Value::Object(object) = body else {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "a SCIM 1.1 PATCH body must be a JSON object",
        ));
    };
    // Removals first: Protocol 1.1 §3.3.2 processes `meta.attributes` before the body.
    let mut operations = Vec::new();
    let mut removed = Vec::new();
    if let Some(meta) = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("meta"))
        .map(|(_, v)| v)
        && let Some(Value::Array(listed)) = meta.get("attributes")
    {
        for attribute in listed {
            let Some(path) = attribute.as_str() else {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    "meta.attributes must list attribute names",
                ));
            };
            let path = v1_path_as_v2(path);
            removed.push(path.to_ascii_lowercase());
            operations.push(json!({"op": "remove", "path": path}));
        }
    }
    for (key, value) in &object {
        if ["schemas", "meta", "id"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            continue;
        }
        match value {
            Value::Array(items) => {
                let removed_whole = removed.contains(&key.to_ascii_lowercase());
                multi_valued_ops(key, items, removed_whole, &mut operations)?;
            }
            other => operations.push(json!({"op": "replace", "path": key, "value": other})),
        }
    }
    Ok(json!({"schemas": [patch::PATCH_OP_URN], "Operations": operations}))
}

/// A discovery answer as the client's version shows it: on 1.1, lists carry the 1.1
/// core URN instead of the 2.0 `ListResponse` message URN (as resource lists do).
pub(crate) fn discovery_answer(version: ScimVersion, mut body: Value) -> Value {
    if version == ScimVersion::V1
        && let Value::Object(object) = &mut body
        && object.get("schemas") == Some(&json!([discovery::LIST_RESPONSE_SCHEMA]))
    {
        object.insert("schemas".into(), json!([CORE_SCHEMA]));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_patch_becomes_v2_operations() {
        let body = json!({
            "schemas": [CORE_SCHEMA],
            "displayName": "Ops",
            "members": [{"value": "u1"}, {"value": "u2", "operation": "delete"}],
            "meta": {"attributes": ["description"]}
        });
        let v2 = v1_patch_as_v2(&body, discovery::GROUP_SCHEMA).unwrap();
        let ops = v2["Operations"].as_array().unwrap();
        assert!(ops.contains(&json!({"op": "remove", "path": "description"})));
        assert!(ops.contains(&json!({"op": "replace", "path": "displayName", "value": "Ops"})));
        assert!(ops.contains(&json!({"op": "remove", "path": "members[value eq \"u2\"]"})));
        assert!(ops.contains(&json!({"op": "add", "path": "members", "value": [{"value": "u1"}]})));
        assert!(patch::parse_request(&v2).is_ok());
    }

    fn operations(body: Value) -> Vec<Value> {
        let v2 = v1_patch_as_v2(&body, discovery::USER_SCHEMA).unwrap();
        assert!(patch::parse_request(&v2).is_ok(), "{v2}");
        v2["Operations"].as_array().unwrap().clone()
    }

    #[test]
    fn elements_with_a_value_merge_into_the_element_with_that_value() {
        let ops = operations(json!({"emails": [{"value": "a@example.com", "type": "home"}]}));
        assert_eq!(
            ops,
            vec![
                json!({"op": "add", "path": "emails[value eq \"a@example.com\"].value", "value": "a@example.com"}),
                json!({"op": "add", "path": "emails[value eq \"a@example.com\"].type", "value": "home"}),
            ]
        );
        // Elements without a value cannot be matched: they are added.
        let ops = operations(json!({"addresses": [{"type": "work", "locality": "Oslo"}]}));
        assert_eq!(
            ops,
            vec![
                json!({"op": "add", "path": "addresses", "value": [{"type": "work", "locality": "Oslo"}]})
            ]
        );
    }

    #[test]
    fn deletes_match_on_value_or_on_every_sub_attribute() {
        let ops = operations(json!({"addresses": [
            {"type": "home", "locality": "Oslo", "operation": "delete"}
        ]}));
        assert_eq!(
            ops,
            vec![
                json!({"op": "remove", "path": "addresses[locality eq \"Oslo\" and type eq \"home\"]"})
            ]
        );
        let bent = v1_patch_as_v2(
            &json!({"addresses": [{"type or value": "x", "operation": "delete"}]}),
            discovery::USER_SCHEMA,
        )
        .unwrap_err();
        assert_eq!(bent.scim_type, Some(ScimType::InvalidPath));
        let empty = v1_patch_as_v2(
            &json!({"addresses": [{"operation": "delete"}]}),
            discovery::USER_SCHEMA,
        )
        .unwrap_err();
        assert_eq!(empty.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn meta_attributes_come_first_and_cover_deletes_of_the_same_attribute() {
        let ops = operations(json!({
            "emails": [{"value": "x@example.com", "operation": "delete"}, {"value": "y@example.com"}],
            "meta": {"attributes": ["Emails"]}
        }));
        assert_eq!(ops[0], json!({"op": "remove", "path": "Emails"}));
        assert!(
            ops.iter()
                .all(|op| op["path"] != json!("emails[value eq \"x@example.com\"]"))
        );
        assert_eq!(ops.len(), 2, "{ops:?}");
    }

    #[test]
    fn urn_qualified_names_become_2_0_paths() {
        assert_eq!(
            v1_path_as_v2("urn:scim:schemas:core:1.0:nickName"),
            "nickName"
        );
        assert_eq!(
            v1_path_as_v2("URN:SCIM:SCHEMAS:CORE:1.0:name.givenName"),
            "name.givenName"
        );
        assert_eq!(
            v1_path_as_v2("urn:scim:schemas:extension:enterprise:1.0.department"),
            format!("{}:department", discovery::ENTERPRISE_USER_SCHEMA)
        );
        assert_eq!(
            v1_path_as_v2("urn:scim:schemas:extension:enterprise:1.0:manager"),
            format!("{}:manager", discovery::ENTERPRISE_USER_SCHEMA)
        );
        assert_eq!(v1_path_as_v2("title"), "title");
        assert_eq!(
            v1_path_as_v2("urn:okta:custom:1.0:x"),
            "urn:okta:custom:1.0:x"
        );
    }

    #[test]
    fn discovery_lists_carry_the_1_1_urn_on_1_1_only() {
        let list = discovery::list_response(vec![]);
        assert_eq!(
            discovery_answer(ScimVersion::V1, list.clone())["schemas"],
            json!([CORE_SCHEMA])
        );
        assert_eq!(discovery_answer(ScimVersion::V2, list.clone()), list);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_1_1_patch_bodies_never_panic(
            body in crate::scim::patch::proptests::arb_json()
        ) {
            let _ = patch_request(ScimVersion::V1, &body, discovery::GROUP_SCHEMA);
            let mut copy = body.clone();
            incoming(ScimVersion::V1, &mut copy, discovery::USER_SCHEMA);
            let _ = outgoing(ScimVersion::V1, body);
        }
    }

    #[test]
    fn schemas_translate_both_ways() {
        let mut pushed = json!({
            "schemas": [CORE_SCHEMA, ENTERPRISE_V1],
            "userName": "ada",
            ENTERPRISE_V1: {"department": "R&D"}
        });
        incoming(ScimVersion::V1, &mut pushed, discovery::USER_SCHEMA);
        assert_eq!(
            pushed["schemas"],
            json!([discovery::USER_SCHEMA, discovery::ENTERPRISE_USER_SCHEMA])
        );
        assert_eq!(
            pushed[discovery::ENTERPRISE_USER_SCHEMA]["department"],
            "R&D"
        );
        let shown = outgoing(ScimVersion::V1, pushed.clone());
        assert_eq!(shown["schemas"], json!([CORE_SCHEMA, ENTERPRISE_V1]));
        assert_eq!(outgoing(ScimVersion::V2, pushed.clone()), pushed);
    }
}
