//! The PatchOp request message (RFC 7644 §3.5.2): checking a request body and reading
//! its operations. Keys and op names match in any case, as identity providers send
//! `"Operations"`, `"op": "Replace"` and the like.

use crate::model::json_kind;
use serde_json::{Map, Value};

use super::PatchError;
use super::values::get_ci;

/// The message schema a PATCH body must list in `schemas`.
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations accepted in one request; more is `tooMany`.
pub const MAX_OPERATIONS: usize = 1000;

/// A checked PATCH request: its operations, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOp>,
}

/// One operation of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub op: OpKind,
    /// The target path as sent (trimmed); `None` when absent, null or empty.
    pub path: Option<String>,
    /// The value as sent; always present for `add` and `replace` from [`parse_request`].
    pub value: Option<Value>,
}

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    /// The operation's name as RFC 7644 spells it, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }

    /// The operation named `name`, in any case.
    pub fn from_name(name: &str) -> Option<OpKind> {
        [OpKind::Add, OpKind::Remove, OpKind::Replace]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a PATCH request body and reads its operations: `schemas` must contain
/// [`PATCH_OP_URN`], `Operations` must be a non-empty array of at most
/// [`MAX_OPERATIONS`] objects, each with an `op` (add, remove or replace, any case), an
/// optional `path` that parses as a SCIM path, and a `value` for add and replace.
pub fn parse_request(body: &Value) -> Result<PatchRequest, PatchError> {
    let Value::Object(body) = body else {
        return Err(PatchError::InvalidSyntax(format!(
            "the request body must be a JSON object, found {}",
            json_kind(body)
        )));
    };
    check_schemas(body)?;
    let operations = match get_ci(body, "Operations") {
        None => {
            return Err(PatchError::InvalidSyntax(
                "\"Operations\" is missing".to_owned(),
            ));
        }
        Some(Value::Array(operations)) => operations,
        Some(other) => {
            return Err(PatchError::InvalidSyntax(format!(
                "\"Operations\" must be an array, found {}",
                json_kind(other)
            )));
        }
    };
    if operations.is_empty() {
        return Err(PatchError::InvalidSyntax(
            "\"Operations\" is empty; at least one operation is needed".to_owned(),
        ));
    }
    check_count(operations.len())?;
    let operations = operations
        .iter()
        .enumerate()
        .map(|(index, op)| parse_op(op).map_err(|e| e.in_operation(index + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PatchRequest { operations })
}

/// `tooMany` when `count` exceeds [`MAX_OPERATIONS`].
pub(super) fn check_count(count: usize) -> Result<(), PatchError> {
    if count > MAX_OPERATIONS {
        return Err(PatchError::TooMany(format!(
            "the request has {count} operations; at most {MAX_OPERATIONS} are accepted"
        )));
    }
    Ok(())
}

fn check_schemas(body: &Map<String, Value>) -> Result<(), PatchError> {
    let is_patch_op = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))
    };
    let listed = match get_ci(body, "schemas") {
        None => {
            return Err(PatchError::InvalidSyntax(format!(
                "\"schemas\" is missing; it must contain \"{PATCH_OP_URN}\""
            )));
        }
        Some(Value::Array(schemas)) => schemas.iter().any(is_patch_op),
        Some(other) => is_patch_op(other),
    };
    if !listed {
        return Err(PatchError::InvalidSyntax(format!(
            "\"schemas\" must contain \"{PATCH_OP_URN}\""
        )));
    }
    Ok(())
}

fn parse_op(op: &Value) -> Result<PatchOp, PatchError> {
    let Value::Object(op) = op else {
        return Err(PatchError::InvalidSyntax(format!(
            "an operation must be a JSON object, found {}",
            json_kind(op)
        )));
    };
    let kind = match get_ci(op, "op") {
        None => return Err(PatchError::InvalidSyntax("\"op\" is missing".to_owned())),
        Some(Value::String(name)) => OpKind::from_name(name).ok_or_else(|| {
            PatchError::InvalidSyntax(format!(
                "\"op\" must be add, remove or replace, found {name:?}"
            ))
        })?,
        Some(other) => {
            return Err(PatchError::InvalidSyntax(format!(
                "\"op\" must be a string, found {}",
                json_kind(other)
            )));
        }
    };
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) if path.trim().is_empty() => None,
        Some(Value::String(path)) => {
            let path = path.trim();
            crate::filter::parse_path(path)
                .map_err(|e| PatchError::InvalidPath(format!("path {path:?} is not valid: {e}")))?;
            Some(path.to_owned())
        }
        Some(other) => {
            return Err(PatchError::InvalidSyntax(format!(
                "\"path\" must be a string, found {}",
                json_kind(other)
            )));
        }
    };
    let value = get_ci(op, "value").cloned();
    if value.is_none() && kind != OpKind::Remove {
        return Err(PatchError::InvalidSyntax(format!(
            "{kind} needs a \"value\""
        )));
    }
    Ok(PatchOp {
        op: kind,
        path,
        value,
    })
}
