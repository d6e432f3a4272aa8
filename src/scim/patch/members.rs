//! Group members without quadratic cost. A request's member additions and removals by
//! id (`add members`, `remove members[value eq "…"]`, Entra ID's `remove members` with
//! a value) go through a [`MemberIndex`] built once per request: an id → position map
//! over the `members` array. Additions append in O(1) each, removals mark positions in
//! O(1) each, and the array is compacted once, when another kind of operation touches
//! `members` or the request ends. [`diff`] reports the member ids added and removed.

use crate::model::json_kind;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::filter::{CompValue, Filter, Junction};

use super::PatchError;
use super::paths::{MEMBERS, Target};
use super::request::OpKind;
use super::values::{VALUE, find_key, get_ci, member_id, normalize_element};

/// A member operation the index can run.
#[derive(Debug)]
pub(super) enum MemberOp<'a> {
    /// `add` of one member or an array of members.
    Add(&'a Value),
    /// `remove` of the members listed in the value (by id).
    RemoveListed(&'a Value),
    /// `remove` of `members[value eq "a" or value eq "b"]`.
    RemoveIds(Vec<&'a str>),
}

/// The member operation `kind` at `target` with `value` is, if the index can run it.
/// `target` must already be known to be the members attribute.
pub(super) fn member_op<'a>(
    kind: OpKind,
    target: &'a Target,
    value: Option<&'a Value>,
) -> Option<MemberOp<'a>> {
    if target.sub.is_some() {
        return None;
    }
    let value = value.filter(|v| !v.is_null());
    match (kind, &target.filter, value) {
        (OpKind::Add, None, Some(value)) => Some(MemberOp::Add(value)),
        (OpKind::Remove, None, Some(value)) => Some(MemberOp::RemoveListed(value)),
        (OpKind::Remove, Some(filter), _) => Some(MemberOp::RemoveIds(id_equalities(filter)?)),
        _ => None,
    }
}

/// The ids of a filter made only of `value eq "id"` joined by `or`.
fn id_equalities(filter: &Filter) -> Option<Vec<&str>> {
    filter
        .equalities(Junction::Or)?
        .into_iter()
        .map(|(attr, value)| match value {
            CompValue::String(id) if attr.eq_ignore_ascii_case(VALUE) => Some(id.as_str()),
            _ => None,
        })
        .collect()
}

/// An id → positions map over the resource's `members` array, with removals pending.
#[derive(Debug)]
pub(super) struct MemberIndex {
    /// The key `members` is stored under, once there is one.
    key: Option<String>,
    positions: HashMap<String, Vec<usize>>,
    /// Positions removed but not yet compacted away.
    removed: Vec<usize>,
}

impl MemberIndex {
    /// Indexes `root`'s members; `None` when `members` holds something other than an
    /// array (the generic operations deal with that).
    pub fn build(root: &Map<String, Value>) -> Option<Self> {
        let key = find_key(root, MEMBERS);
        let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
        match key.as_ref().and_then(|k| root.get(k)) {
            None | Some(Value::Null) => {}
            Some(Value::Array(elements)) => {
                for (index, element) in elements.iter().enumerate() {
                    if let Some(id) = member_id(element) {
                        positions.entry(id.to_owned()).or_default().push(index);
                    }
                }
            }
            Some(_) => return None,
        }
        Some(MemberIndex {
            key,
            positions,
            removed: Vec::new(),
        })
    }

    /// Runs `op` against `root`.
    pub fn run(
        &mut self,
        root: &mut Map<String, Value>,
        op: MemberOp<'_>,
    ) -> Result<(), PatchError> {
        match op {
            MemberOp::Add(value) => self.add(root, value),
            MemberOp::RemoveListed(value) => {
                let items = match value {
                    Value::Array(items) => items.as_slice(),
                    other => std::slice::from_ref(other),
                };
                for item in items {
                    let Some(id) = member_id(item) else {
                        return Err(PatchError::InvalidValue(format!(
                            "members to remove must be objects with a string \"value\", found {}",
                            json_kind(item)
                        )));
                    };
                    self.remove(id);
                }
                Ok(())
            }
            MemberOp::RemoveIds(ids) => {
                for id in ids {
                    self.remove(id);
                }
                Ok(())
            }
        }
    }

    fn add(&mut self, root: &mut Map<String, Value>, value: &Value) -> Result<(), PatchError> {
        let items = match value {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        let items = items
            .iter()
            .filter(|item| !item.is_null())
            .map(|item| normalize_element(item.clone(), true))
            .collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Ok(());
        }
        let key = self.key.get_or_insert_with(|| MEMBERS.to_owned()).clone();
        let slot = root.entry(key).or_insert(Value::Null);
        if slot.is_null() {
            *slot = Value::Array(Vec::new());
        }
        let Value::Array(elements) = slot else {
            return Ok(());
        };
        for item in items {
            let Some(id) = member_id(&item) else {
                continue;
            };
            if self.positions.contains_key(id) {
                continue;
            }
            self.positions.insert(id.to_owned(), vec![elements.len()]);
            elements.push(item);
        }
        Ok(())
    }

    fn remove(&mut self, id: &str) {
        if let Some(positions) = self.positions.remove(id) {
            self.removed.extend(positions);
        }
    }

    /// Applies the pending removals to `root`; a `members` left empty is removed.
    pub fn finish(self, root: &mut Map<String, Value>) {
        let Some(key) = self.key else {
            return;
        };
        if self.removed.is_empty() {
            return;
        }
        let Some(Value::Array(elements)) = root.get_mut(&key) else {
            return;
        };
        let mut dropped = vec![false; elements.len()];
        for index in self.removed {
            if let Some(slot) = dropped.get_mut(index) {
                *slot = true;
            }
        }
        let mut index = 0;
        elements.retain(|_| {
            let keep = !dropped.get(index).copied().unwrap_or(false);
            index += 1;
            keep
        });
        if elements.is_empty() {
            root.remove(&key);
        }
    }
}

/// The member ids in `resource`'s `members`, in order.
fn member_ids(resource: &Map<String, Value>) -> Vec<&str> {
    match get_ci(resource, MEMBERS) {
        Some(Value::Array(elements)) => elements.iter().filter_map(member_id).collect(),
        _ => Vec::new(),
    }
}

/// The member ids in `after` and not `before` (in `after`'s order), and those in
/// `before` and not `after` (in `before`'s order), each once.
pub(super) fn diff(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> (Vec<String>, Vec<String>) {
    let before = member_ids(before);
    let after = member_ids(after);
    let only_in = |these: &[&str], others: &[&str]| {
        let others: HashSet<&str> = others.iter().copied().collect();
        let mut seen = HashSet::new();
        these
            .iter()
            .copied()
            .filter(|id| !others.contains(id) && seen.insert(*id))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    (only_in(&after, &before), only_in(&before, &after))
}
