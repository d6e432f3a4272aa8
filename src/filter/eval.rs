//! In-memory evaluation of a [`Filter`] against a record's JSON (a SCIM resource as a
//! JSON object), following RFC 7644 §3.4.2.2:
//!
//! - attribute names match keys case-insensitively; a schema-qualified path looks under
//!   the schema URN key first (where extension attributes live) and, for the core
//!   schemas (`urn:ietf:params:scim:schemas:core:2.0:…`), falls back to the top level;
//! - a comparison on a multi-valued attribute matches if any element matches; elements
//!   that are complex values compare by their `value` sub-attribute;
//! - `pr` needs a value that is not null, not an empty string, not an empty array and
//!   not an object without present values;
//! - `eq null` matches an absent or null attribute, and `ne` is always `not eq`;
//! - strings compare case-insensitively unless [`EvalOptions::case_exact`] says
//!   otherwise, and as instants when both sides are RFC 3339 date-times; numbers compare
//!   numerically; any other mix of types does not match.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::ast::{AttrPath, CompValue, CompareOp, Filter};

/// Knobs for [`Filter::matches_with`].
#[derive(Clone, Copy)]
pub struct EvalOptions<'a> {
    /// Whether string comparisons on an attribute are case-exact (`caseExact` in the
    /// SCIM schema). Inside a value path the attribute is passed qualified by the outer
    /// one: for `emails[type eq "work"]` this is asked about `emails.type`.
    pub case_exact: &'a dyn Fn(&AttrPath) -> bool,
}

fn never_case_exact(_: &AttrPath) -> bool {
    false
}

fn always_case_exact(_: &AttrPath) -> bool {
    true
}

impl Default for EvalOptions<'_> {
    /// Every attribute case-insensitive (`caseExact` is false by default in SCIM).
    fn default() -> Self {
        Self {
            case_exact: &never_case_exact,
        }
    }
}

impl EvalOptions<'_> {
    /// Every attribute case-exact.
    pub fn all_case_exact() -> Self {
        EvalOptions {
            case_exact: &always_case_exact,
        }
    }
}

impl Filter {
    /// Whether `record` matches, with every string attribute case-insensitive.
    pub fn matches(&self, record: &Value) -> bool {
        self.matches_with(record, &EvalOptions::default())
    }

    /// Whether `record` matches, under `options`.
    pub fn matches_with(&self, record: &Value, options: &EvalOptions<'_>) -> bool {
        eval(self, record, options, None)
    }
}

/// `parent` is the attribute of the enclosing value path, if any.
fn eval(
    filter: &Filter,
    record: &Value,
    options: &EvalOptions<'_>,
    parent: Option<&AttrPath>,
) -> bool {
    match filter {
        Filter::And(left, right) => {
            eval(left, record, options, parent) && eval(right, record, options, parent)
        }
        Filter::Or(left, right) => {
            eval(left, record, options, parent) || eval(right, record, options, parent)
        }
        Filter::Not(inner) => !eval(inner, record, options, parent),
        Filter::Present(path) => resolve(record, path).into_iter().any(is_present),
        Filter::Compare { path, op, value } => {
            let case_exact = is_case_exact(options, parent, path);
            compare(&comparables(record, path), *op, value, case_exact)
        }
        Filter::ValuePath { attr, filter } => resolve(record, attr)
            .into_iter()
            .flat_map(elements)
            .any(|element| element.is_object() && eval(filter, element, options, Some(attr))),
    }
}

/// Asks the case-exactness callback about `path`. Inside a value path on `emails` the
/// callback sees `type` as `emails.type`.
fn is_case_exact(options: &EvalOptions<'_>, parent: Option<&AttrPath>, path: &AttrPath) -> bool {
    match parent {
        Some(parent)
            if parent.sub_attr.is_none() && path.schema.is_none() && path.sub_attr.is_none() =>
        {
            let qualified = AttrPath {
                schema: parent.schema.clone(),
                attr: parent.attr.clone(),
                sub_attr: Some(path.attr.clone()),
            };
            (options.case_exact)(&qualified)
        }
        _ => (options.case_exact)(path),
    }
}

fn compare(candidates: &[&Value], op: CompareOp, value: &CompValue, case_exact: bool) -> bool {
    let equal = || match value {
        CompValue::Null => candidates.is_empty() || candidates.iter().any(|c| c.is_null()),
        _ => candidates.iter().any(|c| equals(c, value, case_exact)),
    };
    match op {
        CompareOp::Eq => equal(),
        CompareOp::Ne => !equal(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            let CompValue::String(needle) = value else {
                return false;
            };
            let needle = fold(needle, case_exact);
            candidates.iter().any(|c| {
                let Value::String(hay) = c else {
                    return false;
                };
                let hay = fold(hay, case_exact);
                match op {
                    CompareOp::Co => hay.contains(needle.as_str()),
                    CompareOp::Sw => hay.starts_with(needle.as_str()),
                    _ => hay.ends_with(needle.as_str()),
                }
            })
        }
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            candidates
                .iter()
                .any(|c| match order(c, value, case_exact) {
                    Some(Ordering::Greater) => matches!(op, CompareOp::Gt | CompareOp::Ge),
                    Some(Ordering::Equal) => matches!(op, CompareOp::Ge | CompareOp::Le),
                    Some(Ordering::Less) => matches!(op, CompareOp::Lt | CompareOp::Le),
                    None => false,
                })
        }
    }
}

/// `s`, lower-cased unless the comparison is case-exact.
fn fold(s: &str, case_exact: bool) -> String {
    if case_exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

fn date_time(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s).ok()
}

fn equals(candidate: &Value, value: &CompValue, case_exact: bool) -> bool {
    match (candidate, value) {
        (Value::Bool(a), CompValue::Bool(b)) => a == b,
        _ => order(candidate, value, case_exact) == Some(Ordering::Equal),
    }
}

/// How `candidate` orders against `value`, if they are comparable: two strings (as
/// instants when both are date-times) or two numbers.
fn order(candidate: &Value, value: &CompValue, case_exact: bool) -> Option<Ordering> {
    match (candidate, value) {
        (Value::String(a), CompValue::String(b)) => match (date_time(a), date_time(b)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(fold(a, case_exact).cmp(&fold(b, case_exact))),
        },
        (Value::Number(a), CompValue::Number(b)) => compare_numbers(a, b),
        _ => None,
    }
}

/// Integers exactly (across the signed and unsigned ranges), anything else as `f64`.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    fn integer(n: &serde_json::Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// The value under `key`, matched exactly first, then ignoring ASCII case (SCIM attribute
/// names are case-insensitive, RFC 7643 §2.1).
pub fn get_ci<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn is_core_schema(schema: &str) -> bool {
    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:";
    schema
        .get(..CORE.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(CORE))
}

/// The value of `path.schema` + `path.attr` in `record`.
fn attr_value<'v>(record: &'v Value, path: &AttrPath) -> Option<&'v Value> {
    let object = record.as_object()?;
    let Some(schema) = &path.schema else {
        return get_ci(object, &path.attr);
    };
    let in_extension = get_ci(object, schema)
        .and_then(Value::as_object)
        .and_then(|extension| get_ci(extension, &path.attr));
    match in_extension {
        Some(value) => Some(value),
        None if is_core_schema(schema) => get_ci(object, &path.attr),
        None => None,
    }
}

/// The values `path` names: the attribute itself, or its sub-attribute in the complex
/// value or in each element of a multi-valued complex attribute.
fn resolve<'v>(record: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    let Some(value) = attr_value(record, path) else {
        return Vec::new();
    };
    match &path.sub_attr {
        None => vec![value],
        Some(sub) => elements(value)
            .iter()
            .filter_map(|element| element.as_object().and_then(|o| get_ci(o, sub)))
            .collect(),
    }
}

/// The elements of an array, or the value itself.
fn elements(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}

/// The simple values a comparison on `path` looks at: arrays are flattened, and complex
/// values stand for their `value` sub-attribute.
fn comparables<'v>(record: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    resolve(record, path)
        .into_iter()
        .flat_map(elements)
        .filter_map(|value| match value {
            Value::Object(object) => get_ci(object, "value"),
            other => Some(other),
        })
        .collect()
}

/// Whether `value` counts as present for `pr` (not null, empty or all-empty).
pub(crate) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(object) => object.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}
