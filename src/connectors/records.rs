//! Vendor-neutral pieces of turning an API's JSON into the common model, so every kind's
//! `records.rs` reads a string, a flag, an e-mail or a group the same way and keeps only
//! what its API says differently (which keys, which defaults).

use serde_json::{Map, Value};

use crate::model::{Email, MemberRef, SourceGroup};

/// A string with text in it, trimmed; None when absent, not a string, or blank.
pub(crate) fn trimmed_text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A non-empty string as the API sent it (not trimmed); None when absent, not a string,
/// or empty.
pub(crate) fn exact_text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A boolean field; `default` when absent or not a boolean (an account flag such as
/// `enabled` that an API may leave out).
pub(crate) fn flag_or(value: &Value, key: &str, default: bool) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// The object's members, as source attributes (none for anything but an object).
pub(crate) fn object_members(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// "given family" when both are known: the display name of APIs that have none of their own.
pub(crate) fn given_and_family(given: &Option<String>, family: &Option<String>) -> Option<String> {
    match (given, family) {
        (Some(given), Some(family)) => Some(format!("{given} {family}")),
        _ => None,
    }
}

/// The user's one address, marked primary, when it has one.
pub(crate) fn primary_only(address: Option<String>, kind: Option<&str>) -> Vec<Email> {
    address
        .map(|value| {
            vec![Email {
                value,
                kind: kind.map(str::to_string),
                primary: true,
            }]
        })
        .unwrap_or_default()
}

/// A group whose API object is kept whole as its attributes.
pub(crate) fn group_of_object(
    id: String,
    display_name: String,
    description: Option<String>,
    value: Value,
    members: Vec<MemberRef>,
) -> SourceGroup {
    SourceGroup {
        external_id: id,
        display_name,
        description,
        members,
        attributes: object_members(value),
    }
}
