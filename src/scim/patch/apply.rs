//! Running a [`PatchRequest`] against a resource: each operation's path is resolved,
//! checked against read-only attributes and routed to the member index or the generic
//! operations, on a working copy that replaces the resource only when every operation
//! succeeded. Path-less `add`/`replace` values are split into one write per key.

use crate::model::json_kind;
use serde_json::{Map, Value};

use super::members::{MemberIndex, diff, member_op};
use super::ops::{AttrInfo, Mode, remove, write};
use super::paths::{
    ENTERPRISE_USER_URN, Resolved, ResourceSchema, SCHEMAS, Scope, Target, resolve,
};
use super::request::{OpKind, PatchOp, PatchRequest, check_count};
use super::values::{VALUE, find_key, get_ci, unwrap_single_object};
use super::{PatchError, PatchOutcome};

/// Applies `request` to `resource` (a SCIM resource as a JSON object) as RFC 7644
/// §3.5.2 describes, with the tolerances listed in the [module docs](super). All or
/// nothing: on error the resource is left exactly as it was, and the error names the
/// failing operation (1-based).
pub fn apply(
    resource: &mut Value,
    request: &PatchRequest,
    schema: &ResourceSchema,
) -> Result<PatchOutcome, PatchError> {
    check_count(request.operations.len())?;
    let Value::Object(original) = resource else {
        return Err(PatchError::InvalidValue(format!(
            "the resource must be a JSON object, found {}",
            json_kind(resource)
        )));
    };
    let mut run = Run {
        schema,
        root: original.clone(),
        members: None,
        members_touched: false,
        touched_extensions: Vec::new(),
    };
    for (index, op) in request.operations.iter().enumerate() {
        run.op(op).map_err(|e| e.in_operation(index + 1))?;
    }
    let members_touched = run.members_touched;
    let root = run.finish();
    let (members_added, members_removed) = if members_touched {
        diff(original, &root)
    } else {
        (Vec::new(), Vec::new())
    };
    let changed = root != *original;
    if changed {
        *original = root;
    }
    Ok(PatchOutcome {
        changed,
        members_added,
        members_removed,
    })
}

/// One request in progress.
struct Run<'s> {
    schema: &'s ResourceSchema,
    /// The working copy.
    root: Map<String, Value>,
    /// Built at the first member operation the index can run.
    members: Option<MemberIndex>,
    /// Whether any operation addressed `members` (only then are ids diffed).
    members_touched: bool,
    /// Extensions written or removed, whose `schemas` entry is settled at the end.
    touched_extensions: Vec<&'static str>,
}

impl Run<'_> {
    fn op(&mut self, op: &PatchOp) -> Result<(), PatchError> {
        let resolved = match &op.path {
            None => Resolved::Resource,
            Some(path) => resolve(path, self.schema)?,
        };
        match resolved {
            Resolved::Resource => self.resource(op),
            Resolved::Attribute(target) => self.attribute(op.op, &target, op.value.as_ref()),
        }
    }

    /// An operation without a path (or with the core schema URN as its path).
    fn resource(&mut self, op: &PatchOp) -> Result<(), PatchError> {
        if op.op == OpKind::Remove {
            return Err(PatchError::NoTarget(
                "remove needs a \"path\" naming what to remove".to_owned(),
            ));
        }
        let value = op.value.clone().map(unwrap_single_object);
        let attributes = match value {
            Some(Value::Object(attributes)) => attributes,
            Some(other) => {
                return Err(PatchError::InvalidValue(format!(
                    "{} without a path needs an object of attributes as its value, found {}",
                    op.op,
                    json_kind(&other)
                )));
            }
            None => return Err(missing_value(op.op)),
        };
        for (key, value) in attributes {
            if key.eq_ignore_ascii_case(SCHEMAS) {
                continue;
            }
            if key.eq_ignore_ascii_case("id") && get_ci(&self.root, "id") == Some(&value) {
                continue;
            }
            let target = match resolve(&key, self.schema)? {
                Resolved::Attribute(target) => target,
                Resolved::Resource => {
                    return Err(PatchError::InvalidPath(format!(
                        "value key {key:?} names the resource itself; give its attributes \
                         directly"
                    )));
                }
            };
            self.attribute(op.op, &target, Some(&value))?;
        }
        Ok(())
    }

    /// An operation on one attribute.
    fn attribute(
        &mut self,
        kind: OpKind,
        target: &Target,
        value: Option<&Value>,
    ) -> Result<(), PatchError> {
        let extension_object = match target.scope {
            Scope::Root => self.check_writable(target)?,
            Scope::Extension(_) => None,
        };
        let mut value = value.cloned();
        if let Some(urn) = extension_object {
            self.touch(urn);
            value = value.map(unwrap_single_object);
            if kind != OpKind::Remove
                && let Some(other) = value.as_ref().filter(|v| !v.is_object() && !v.is_null())
            {
                return Err(PatchError::InvalidValue(format!(
                    "path {:?} names the extension object, so the value must be an object \
                     of its attributes, found {}",
                    target.text,
                    json_kind(other)
                )));
            }
        }
        if is_manager(target) {
            value = value.map(manager_as_complex);
        } else if extension_object == Some(ENTERPRISE_USER_URN)
            && let Some(Value::Object(attributes)) = value.as_mut()
            && let Some(key) = find_key(attributes, MANAGER)
            && let Some(manager) = attributes.remove(&key)
        {
            attributes.insert(key, manager_as_complex(manager));
        }
        let is_members = target.is_members(self.schema);
        if is_members {
            self.members_touched = true;
            if let Some(op) = member_op(kind, target, value.as_ref()) {
                if self.members.is_none() {
                    self.members = MemberIndex::build(&self.root);
                }
                if let Some(index) = self.members.as_mut() {
                    return index.run(&mut self.root, op);
                }
            }
            // Any other operation on members sees the array with removals applied.
            if let Some(index) = self.members.take() {
                index.finish(&mut self.root);
            }
        }
        let attr = AttrInfo {
            declared_multi: target.declared_multi(self.schema),
            is_members,
            spelling: match target.scope {
                Scope::Root => self.schema.spelling(&target.attr),
                Scope::Extension(_) => target.attr.clone(),
            },
        };
        let container = match target.scope {
            Scope::Root => &mut self.root,
            Scope::Extension(urn) => match self.extension(urn, kind != OpKind::Remove)? {
                Some(container) => container,
                None => return Ok(()),
            },
        };
        match kind {
            OpKind::Add => write(container, target, &attr, Mode::Add, require(kind, value)?),
            OpKind::Replace => write(
                container,
                target,
                &attr,
                Mode::Replace,
                require(kind, value)?,
            ),
            OpKind::Remove => remove(container, target, &attr, value.as_ref()),
        }
    }

    /// Fails for read-only attributes and `schemas`; returns the extension URN when the
    /// target is a whole extension object.
    fn check_writable(&self, target: &Target) -> Result<Option<&'static str>, PatchError> {
        if self.schema.is_read_only(&target.attr) {
            return Err(PatchError::Mutability(format!(
                "attribute {:?} is read-only (path {:?})",
                target.attr, target.text
            )));
        }
        if target.attr.eq_ignore_ascii_case(SCHEMAS) {
            return Err(PatchError::Mutability(
                "attribute \"schemas\" is kept by the server from the extensions present"
                    .to_owned(),
            ));
        }
        Ok(self.schema.extension(&target.attr))
    }

    fn touch(&mut self, urn: &'static str) {
        if !self.touched_extensions.contains(&urn) {
            self.touched_extensions.push(urn);
        }
    }

    /// The extension object under `urn`, created when `create` says so.
    fn extension(
        &mut self,
        urn: &'static str,
        create: bool,
    ) -> Result<Option<&mut Map<String, Value>>, PatchError> {
        let key = find_key(&self.root, urn);
        if key.is_none() && !create {
            return Ok(None);
        }
        self.touch(urn);
        let slot = self
            .root
            .entry(key.unwrap_or_else(|| urn.to_owned()))
            .or_insert(Value::Null);
        if slot.is_null() {
            if !create {
                return Ok(None);
            }
            *slot = Value::Object(Map::new());
        }
        match slot {
            Value::Object(object) => Ok(Some(object)),
            other => Err(PatchError::InvalidValue(format!(
                "the resource's {urn:?} holds {}, not an object of extension attributes",
                json_kind(other)
            ))),
        }
    }

    /// Settles pending member removals and the `schemas` entries of touched extensions.
    fn finish(mut self) -> Map<String, Value> {
        if let Some(index) = self.members.take() {
            index.finish(&mut self.root);
        }
        for urn in &self.touched_extensions {
            sync_extension(&mut self.root, self.schema, urn);
        }
        self.root
    }
}

/// The enterprise extension's `manager`, complex in RFC 7643 §4.3.
const MANAGER: &str = "manager";

/// Whether `target` is the enterprise `manager` itself (no filter, no sub-attribute).
fn is_manager(target: &Target) -> bool {
    target.scope == Scope::Extension(ENTERPRISE_USER_URN)
        && target.attr.eq_ignore_ascii_case(MANAGER)
        && target.filter.is_none()
        && target.sub.is_none()
}

/// Entra ID sends the manager as a bare id string; RFC 7643 makes it `{"value": id}`.
/// The other sub-attributes are given as null so that the merge of a complex value
/// drops the previous manager's `displayName` and `$ref`. An empty id unassigns the
/// manager.
fn manager_as_complex(value: Value) -> Value {
    match value {
        Value::String(id) if id.trim().is_empty() => Value::Null,
        Value::String(id) => {
            let mut manager = Map::new();
            manager.insert(VALUE.to_owned(), Value::String(id));
            manager.insert("displayName".to_owned(), Value::Null);
            manager.insert("$ref".to_owned(), Value::Null);
            Value::Object(manager)
        }
        other => other,
    }
}

fn missing_value(kind: OpKind) -> PatchError {
    PatchError::InvalidSyntax(format!("{kind} needs a \"value\""))
}

fn require(kind: OpKind, value: Option<Value>) -> Result<Value, PatchError> {
    value.ok_or_else(|| missing_value(kind))
}

/// Removes an empty extension object, and lists the extension in `schemas` exactly when
/// its object has attributes.
fn sync_extension(root: &mut Map<String, Value>, schema: &ResourceSchema, urn: &str) {
    let key = find_key(root, urn);
    let slot = key.as_ref().and_then(|k| root.get(k));
    let present = slot.is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()));
    if let Some(key) = key.as_ref().filter(|_| !present)
        && matches!(root.get(key), Some(Value::Null | Value::Object(_)))
    {
        root.remove(key);
    }
    let is_urn = |s: &Value| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn));
    match find_key(root, SCHEMAS).and_then(|k| root.get_mut(&k)) {
        Some(Value::Array(listed)) => {
            let is_listed = listed.iter().any(is_urn);
            if present && !is_listed {
                listed.push(Value::String(urn.to_owned()));
            } else if !present && is_listed {
                listed.retain(|s| !is_urn(s));
            }
        }
        None if present => {
            let listed = vec![
                Value::String(schema.core_urn.to_owned()),
                Value::String(urn.to_owned()),
            ];
            root.insert(SCHEMAS.to_owned(), Value::Array(listed));
        }
        _ => {}
    }
}
