//! Value helpers for PATCH: case-insensitive key lookup, the tolerances applied to
//! incoming values (boolean strings, arrays of one), element identity for duplicate
//! detection, the single-`primary` rule, and turning an `eq` filter into the element it
//! describes.

use crate::model::json_kind;
use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::filter::{AttrPath, CompValue, EvalOptions, Filter, Junction};

use super::PatchError;

/// Attributes and sub-attributes that are booleans, for the `"True"` tolerance.
const BOOLEANS: &[&str] = &["active", "primary"];

/// The sub-attribute that marks the preferred element of a multi-valued attribute.
const PRIMARY: &str = "primary";

/// The sub-attribute holding an element's value (a member's id).
pub(super) const VALUE: &str = "value";

/// The value under `key`, matched exactly first, then ignoring ASCII case.
pub(super) fn get_ci<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The existing key spelling `name` in any case.
pub(super) fn find_key(object: &Map<String, Value>, name: &str) -> Option<String> {
    if object.contains_key(name) {
        return Some(name.to_owned());
    }
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

/// `value` as a boolean when `name` is a known boolean attribute: `"true"`/`"false"` in
/// any case become booleans, and any other non-boolean is an error.
pub(super) fn coerce_boolean(name: &str, value: Value) -> Result<Value, PatchError> {
    if !BOOLEANS.iter().any(|b| b.eq_ignore_ascii_case(name)) {
        return Ok(value);
    }
    match value {
        Value::Bool(_) | Value::Null => Ok(value),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        other => Err(PatchError::InvalidValue(format!(
            "{name:?} must be a boolean, found {}",
            json_kind(&other)
        ))),
    }
}

/// A one-element array holding a scalar, unwrapped; anything else as is.
pub(super) fn unwrap_single(value: Value) -> Value {
    match value {
        Value::Array(mut items)
            if items.len() == 1
                && !matches!(items.first(), Some(Value::Array(_) | Value::Object(_))) =>
        {
            items.pop().unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// A one-element array holding an object, unwrapped; anything else as is.
pub(super) fn unwrap_single_object(value: Value) -> Value {
    match value {
        Value::Array(mut items)
            if items.len() == 1 && matches!(items.first(), Some(Value::Object(_))) =>
        {
            items.pop().unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// An element of a multi-valued attribute, checked and with its booleans coerced. A
/// member must be an object with a string `value`.
pub(super) fn normalize_element(value: Value, is_members: bool) -> Result<Value, PatchError> {
    let value = match value {
        Value::Object(object) => {
            let mut normalized = Map::with_capacity(object.len());
            for (key, v) in object {
                let v = coerce_boolean(&key, v)?;
                normalized.insert(key, v);
            }
            Value::Object(normalized)
        }
        other => other,
    };
    if is_members && member_id(&value).is_none() {
        return Err(PatchError::InvalidValue(format!(
            "a member must be an object with a string \"value\" (the member's id), found {}",
            json_kind(&value)
        )));
    }
    Ok(value)
}

/// The id of a member element: its string `value`.
pub(super) fn member_id(element: &Value) -> Option<&str> {
    element
        .as_object()
        .and_then(|o| get_ci(o, VALUE))
        .and_then(Value::as_str)
}

/// The identity of an element for duplicate detection: a member's id, or the element's
/// canonical JSON (keys sorted, so key order does not matter).
pub(super) fn element_key(element: &Value, is_members: bool) -> String {
    if is_members && let Some(id) = member_id(element) {
        return format!("id:{id}");
    }
    let mut out = String::from("json:");
    canonical(element, &mut out);
    out
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<_> = object.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (key, v) in entries {
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(v, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `items` without elements whose [`element_key`] repeats an earlier one.
pub(super) fn dedup(items: Vec<Value>, is_members: bool) -> Vec<Value> {
    let mut seen = HashSet::with_capacity(items.len());
    items
        .into_iter()
        .filter(|item| seen.insert(element_key(item, is_members)))
        .collect()
}

/// RFC 7644 §3.5.2: when an operation sets `"primary": true` on an element (one of
/// `written`, indices into `elements`), every other element's `primary` becomes false.
/// The last written primary element wins.
pub(super) fn enforce_single_primary(elements: &mut [Value], written: &[usize]) {
    let is_primary = |v: &Value| {
        v.as_object()
            .and_then(|o| get_ci(o, PRIMARY))
            .is_some_and(|p| p == &Value::Bool(true))
    };
    let Some(&winner) = written
        .iter()
        .rev()
        .find(|&&i| elements.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (index, element) in elements.iter_mut().enumerate() {
        if index == winner || !is_primary(element) {
            continue;
        }
        if let Some(object) = element.as_object_mut()
            && let Some(key) = find_key(object, PRIMARY)
        {
            object.insert(key, Value::Bool(false));
        }
    }
}

/// The element a filter of only `attr eq literal` comparisons joined by `and`
/// describes, e.g. `{"type": "work"}` for `type eq "work"`; `None` for any other filter.
pub(super) fn element_from_equalities(filter: &Filter) -> Option<Map<String, Value>> {
    filter
        .equalities(Junction::And)?
        .into_iter()
        .map(|(attr, value)| {
            let value = match value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            Some((attr.to_string(), value))
        })
        .collect()
}

/// Whether `element` matches a value filter on an attribute: only objects match, and a
/// member's `value` compares case-exactly (ids are case-exact).
pub(super) fn filter_matches(filter: &Filter, element: &Value, is_members: bool) -> bool {
    let case_exact = |path: &AttrPath| {
        is_members
            && path.schema.is_none()
            && path.sub_attr.is_none()
            && path.attr.eq_ignore_ascii_case(VALUE)
    };
    let options = EvalOptions {
        case_exact: &case_exact,
    };
    element.is_object() && filter.matches_with(element, &options)
}
