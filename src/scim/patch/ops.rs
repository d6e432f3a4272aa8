//! The three operations on one attribute of one object (the resource, or an extension
//! object): [`write`] for `add` and `replace` (they differ only for whole multi-valued
//! attributes and for elements selected by a filter) and [`remove`]. The object is the
//! working copy; errors leave it half-changed, and the caller throws it away.

use crate::model::json_kind;
use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::filter::Filter;

use super::PatchError;
use super::paths::Target;
use super::values::{
    coerce_boolean, element_from_equalities, element_key, enforce_single_primary, filter_matches,
    find_key, member_id, normalize_element, unwrap_single, unwrap_single_object,
};

/// `add` or `replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Add,
    Replace,
}

/// What is known about the attribute an operation writes.
#[derive(Debug, Clone)]
pub(super) struct AttrInfo {
    /// Declared multi-valued by the schema (an existing array counts too).
    pub declared_multi: bool,
    /// Group members: elements must carry an id and are identified by it.
    pub is_members: bool,
    /// The spelling for a new key.
    pub spelling: String,
}

impl AttrInfo {
    /// A sub-attribute or unknown attribute called `name`.
    fn plain(name: &str) -> Self {
        AttrInfo {
            declared_multi: false,
            is_members: false,
            spelling: name.to_owned(),
        }
    }
}

fn no_target(target: &Target) -> PatchError {
    PatchError::NoTarget(format!("path {:?} matched no value", target.text))
}

/// `invalidPath`: the attribute holds `found`, which `target` cannot reach into: a value
/// filter needs multiple values, a sub-attribute (without a filter) a complex value.
fn wrong_kind(target: &Target, found: &Value) -> PatchError {
    let (path, attr, kind) = (&target.text, &target.attr, json_kind(found));
    PatchError::InvalidPath(if target.filter.is_some() {
        format!("path {path:?} filters {attr:?}, which holds {kind} rather than multiple values")
    } else {
        format!("path {path:?}: {attr:?} holds {kind}, which has no sub-attributes")
    })
}

/// `add` or `replace` of `value` at `target` in `container`. A null value unassigns.
pub(super) fn write(
    container: &mut Map<String, Value>,
    target: &Target,
    attr: &AttrInfo,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    if value.is_null() {
        return remove(container, target, attr, None);
    }
    match (&target.filter, &target.sub) {
        (None, None) => write_attr(container, &target.attr, attr, mode, value),
        (None, Some(sub)) => write_sub_all(container, target, sub, attr, mode, value),
        (Some(filter), None) => write_matching(container, target, filter, attr, mode, value),
        (Some(filter), Some(sub)) => {
            write_matching_sub(container, target, filter, sub, attr, mode, value)
        }
    }
}

/// Sets attribute `name`: multi-valued ones are appended to or replaced, complex ones
/// merged, anything else replaced.
fn write_attr(
    container: &mut Map<String, Value>,
    name: &str,
    attr: &AttrInfo,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    let key = find_key(container, name);
    if value.is_null() {
        if let Some(key) = key {
            container.remove(&key);
        }
        return Ok(());
    }
    let existing_is_array = key
        .as_ref()
        .and_then(|k| container.get(k))
        .is_some_and(Value::is_array);
    if attr.declared_multi || existing_is_array {
        return write_multi(container, key, attr, mode, value);
    }
    let value = coerce_boolean(name, unwrap_single(value))?;
    let key = key.unwrap_or_else(|| attr.spelling.clone());
    match (container.get_mut(&key), value) {
        (Some(Value::Object(existing)), Value::Object(incoming)) => merge(existing, incoming, mode),
        (_, Value::Object(incoming)) => {
            let mut fresh = Map::new();
            merge(&mut fresh, incoming, mode)?;
            container.insert(key, Value::Object(fresh));
            Ok(())
        }
        (Some(Value::Object(_)), value) => Err(PatchError::InvalidValue(format!(
            "{name:?} is complex, so its value must be an object of sub-attributes, found {}",
            json_kind(&value)
        ))),
        (_, value) => {
            container.insert(key, value);
            Ok(())
        }
    }
}

/// Merges `incoming`'s sub-attributes into `existing` (RFC 7644: sub-attributes not
/// given are left unchanged).
fn merge(
    existing: &mut Map<String, Value>,
    incoming: Map<String, Value>,
    mode: Mode,
) -> Result<(), PatchError> {
    for (key, value) in incoming {
        write_attr(existing, &key, &AttrInfo::plain(&key), mode, value)?;
    }
    Ok(())
}

/// Appends to (`add`) or replaces (`replace`) a multi-valued attribute.
fn write_multi(
    container: &mut Map<String, Value>,
    key: Option<String>,
    attr: &AttrInfo,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let items = items
        .into_iter()
        .filter(|item| !item.is_null())
        .map(|item| normalize_element(item, attr.is_members))
        .collect::<Result<Vec<_>, _>>()?;
    let key = key.unwrap_or_else(|| attr.spelling.clone());
    match mode {
        Mode::Replace => {
            let mut items = super::values::dedup(items, attr.is_members);
            let written: Vec<usize> = (0..items.len()).collect();
            enforce_single_primary(&mut items, &written);
            container.insert(key, Value::Array(items));
        }
        Mode::Add => {
            if items.is_empty() {
                return Ok(());
            }
            let slot = container.entry(key).or_insert(Value::Null);
            if !slot.is_array() {
                let old = slot.take();
                *slot = Value::Array(if old.is_null() { Vec::new() } else { vec![old] });
            }
            if let Value::Array(elements) = slot {
                append_unique(elements, items, attr.is_members);
            }
        }
    }
    Ok(())
}

/// Appends the items not already present, by [`element_key`], in time linear in both.
pub(super) fn append_unique(elements: &mut Vec<Value>, items: Vec<Value>, is_members: bool) {
    let mut seen: HashSet<String> = elements
        .iter()
        .map(|e| element_key(e, is_members))
        .collect();
    let mut written = Vec::new();
    for item in items {
        if seen.insert(element_key(&item, is_members)) {
            written.push(elements.len());
            elements.push(item);
        }
    }
    enforce_single_primary(elements, &written);
}

/// `attr.sub`: sets `sub` in a complex attribute, or in every element of a multi-valued
/// one (creating one element when there is none).
fn write_sub_all(
    container: &mut Map<String, Value>,
    target: &Target,
    sub: &str,
    attr: &AttrInfo,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    let key = find_key(container, &target.attr);
    match key.as_ref().and_then(|k| container.get_mut(k)) {
        Some(Value::Object(object)) => write_sub(object, sub, mode, value),
        Some(Value::Array(elements)) => {
            let objects: Vec<usize> = (0..elements.len())
                .filter(|&i| elements[i].is_object())
                .collect();
            if objects.is_empty() {
                let element = with_sub(Map::new(), sub, mode, value)?;
                push_written(elements, Value::Object(element));
                return Ok(());
            }
            write_sub_at(elements, &objects, sub, mode, value)
        }
        None | Some(Value::Null) => {
            let element = with_sub(Map::new(), sub, mode, value)?;
            let new = if attr.declared_multi {
                Value::Array(vec![Value::Object(element)])
            } else {
                Value::Object(element)
            };
            container.insert(key.unwrap_or_else(|| attr.spelling.clone()), new);
            Ok(())
        }
        Some(other) => Err(wrong_kind(target, other)),
    }
}

/// `attr[filter]`: merges the value into (`add`) or replaces it for (`replace`) every
/// matching element; no match is `noTarget`.
fn write_matching(
    container: &mut Map<String, Value>,
    target: &Target,
    filter: &Filter,
    attr: &AttrInfo,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    let value = match unwrap_single_object(value) {
        value @ Value::Object(_) => {
            normalize_element(value, attr.is_members && mode == Mode::Replace)?
        }
        other => {
            return Err(PatchError::InvalidValue(format!(
                "path {:?} selects elements, so the value must be an object, found {}",
                target.text,
                json_kind(&other)
            )));
        }
    };
    let key = find_key(container, &target.attr);
    let elements = match key.as_ref().and_then(|k| container.get_mut(k)) {
        Some(Value::Array(elements)) => elements,
        None | Some(Value::Null) => return Err(no_target(target)),
        Some(other) => return Err(wrong_kind(target, other)),
    };
    let matched = matching_indexes(elements, filter, attr.is_members);
    if matched.is_empty() {
        return Err(no_target(target));
    }
    for &index in &matched {
        match (mode, elements.get_mut(index), &value) {
            (Mode::Add, Some(Value::Object(element)), Value::Object(incoming)) => {
                merge(element, incoming.clone(), mode)?;
            }
            (Mode::Replace, Some(element), value) => *element = value.clone(),
            _ => {}
        }
    }
    enforce_single_primary(elements, &matched);
    Ok(())
}

/// `attr[filter].sub`: sets `sub` on every matching element. With no match, a filter of
/// `eq` comparisons describes a new element to create; any other filter is `noTarget`.
fn write_matching_sub(
    container: &mut Map<String, Value>,
    target: &Target,
    filter: &Filter,
    sub: &str,
    attr: &AttrInfo,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    let key = find_key(container, &target.attr);
    let slot = match key.as_ref().and_then(|k| container.get_mut(k)) {
        Some(slot @ Value::Array(_)) => slot,
        None | Some(Value::Null) => {
            let key = key.unwrap_or_else(|| attr.spelling.clone());
            container.entry(key).or_insert(Value::Null)
        }
        Some(other) => return Err(wrong_kind(target, other)),
    };
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(elements) = slot else {
        return Err(no_target(target));
    };
    let matched = matching_indexes(elements, filter, attr.is_members);
    if matched.is_empty() {
        let Some(seed) = element_from_equalities(filter) else {
            return Err(no_target(target));
        };
        let element = with_sub(seed, sub, mode, value)?;
        push_written(
            elements,
            normalize_element(Value::Object(element), attr.is_members)?,
        );
        return Ok(());
    }
    write_sub_at(elements, &matched, sub, mode, value)
}

/// Sets sub-attribute `sub` of one complex value.
fn write_sub(
    object: &mut Map<String, Value>,
    sub: &str,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    write_attr(object, sub, &AttrInfo::plain(sub), mode, value)
}

/// `seed` with sub-attribute `sub` set: a new element.
fn with_sub(
    mut seed: Map<String, Value>,
    sub: &str,
    mode: Mode,
    value: Value,
) -> Result<Map<String, Value>, PatchError> {
    write_sub(&mut seed, sub, mode, value)?;
    Ok(seed)
}

/// Sets `sub` on the object elements at `indexes`; of those, at most one stays primary.
fn write_sub_at(
    elements: &mut [Value],
    indexes: &[usize],
    sub: &str,
    mode: Mode,
    value: Value,
) -> Result<(), PatchError> {
    for &index in indexes {
        if let Some(Value::Object(element)) = elements.get_mut(index) {
            write_sub(element, sub, mode, value.clone())?;
        }
    }
    enforce_single_primary(elements, indexes);
    Ok(())
}

/// Appends an element this operation made; if it is primary, no other stays so.
fn push_written(elements: &mut Vec<Value>, element: Value) {
    let index = elements.len();
    elements.push(element);
    enforce_single_primary(elements, &[index]);
}

/// `remove` at `target`. `listed` is the operation's value: on a multi-valued attribute
/// without a filter, only the listed elements are removed (Entra ID's member removal).
/// Removing what is not there is not an error.
pub(super) fn remove(
    container: &mut Map<String, Value>,
    target: &Target,
    attr: &AttrInfo,
    listed: Option<&Value>,
) -> Result<(), PatchError> {
    let Some(key) = find_key(container, &target.attr) else {
        return Ok(());
    };
    let listed = listed.filter(|v| !v.is_null());
    let mut drop_key = false;
    match (&target.filter, &target.sub, container.get_mut(&key)) {
        (None, None, Some(Value::Array(elements))) if listed.is_some() => {
            if let Some(listed) = listed {
                remove_listed(elements, listed, attr.is_members)?;
            }
            drop_key = elements.is_empty();
        }
        (None, None, _) => drop_key = true,
        (_, _, None | Some(Value::Null)) => {}
        (None, Some(sub), Some(Value::Object(object))) => remove_key(object, sub),
        (None, Some(sub), Some(Value::Array(elements))) => {
            for element in elements.iter_mut() {
                if let Value::Object(object) = element {
                    remove_key(object, sub);
                }
            }
        }
        (None, Some(_), Some(other)) => return Err(wrong_kind(target, other)),
        (Some(filter), sub, Some(Value::Array(elements))) => match sub {
            None => {
                elements.retain(|e| !filter_matches(filter, e, attr.is_members));
                drop_key = elements.is_empty();
            }
            Some(sub) => {
                for element in elements.iter_mut() {
                    if filter_matches(filter, element, attr.is_members)
                        && let Value::Object(object) = element
                    {
                        remove_key(object, sub);
                    }
                }
            }
        },
        (Some(_), _, Some(other)) => return Err(wrong_kind(target, other)),
    }
    if drop_key {
        container.remove(&key);
    }
    Ok(())
}

fn remove_key(object: &mut Map<String, Value>, name: &str) {
    if let Some(key) = find_key(object, name) {
        object.remove(&key);
    }
}

/// Removes the elements equal (by [`element_key`]) to those listed.
fn remove_listed(
    elements: &mut Vec<Value>,
    listed: &Value,
    is_members: bool,
) -> Result<(), PatchError> {
    let items = match listed {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    let mut keys = HashSet::with_capacity(items.len());
    for item in items {
        if is_members && member_id(item).is_none() {
            return Err(PatchError::InvalidValue(format!(
                "members to remove must be objects with a string \"value\", found {}",
                json_kind(item)
            )));
        }
        let item = normalize_element(item.clone(), false)?;
        keys.insert(element_key(&item, is_members));
    }
    elements.retain(|e| !keys.contains(&element_key(e, is_members)));
    Ok(())
}

/// Indexes of the elements `filter` matches.
fn matching_indexes(elements: &[Value], filter: &Filter, is_members: bool) -> Vec<usize> {
    elements
        .iter()
        .enumerate()
        .filter(|(_, e)| filter_matches(filter, e, is_members))
        .map(|(i, _)| i)
        .collect()
}
