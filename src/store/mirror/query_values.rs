//! SQL for filters on the indexed multi-valued attributes (`emails`, `phoneNumbers` on
//! Users, `members` on Groups), answered from `mirror_values` (see `super::values`) with
//! the semantics of RFC 7644 §3.4.2.2 and of the in-memory evaluator:
//!
//! - `emails.value eq "x"` (and `co`, `sw`, `ew`, `pr`) matches when ANY element's value
//!   does: `external_id IN (SELECT … FROM mirror_values WHERE …)`;
//! - `emails.value ne "x"` is `not (emails.value eq "x")`: NO element has the value (a
//!   user without e-mails matches), `NOT IN (…)`;
//! - `emails[type eq "work" and primary eq true]` applies the whole bracket filter to ONE
//!   element, i.e. one index row; inside it `ne` and `not` apply to that element;
//! - `emails pr`: some element holds a present value.
//!
//! Every condition on an index row is two-valued (never SQL NULL), so `NOT` and `ne` mean
//! what the evaluator means. `value` and `type` compare as strings (lower-cased unless the
//! sub-attribute is case-exact), `primary` as a boolean; ordering operators and `null` are
//! refused, as they would order differently on the two backends.

use sqlx::AnyConnection;

use crate::db::is_postgres;
use crate::filter::{AttrPath, CompValue, CompareOp, Filter};

use super::query::{Compiled, QueryError, Resource, like_pattern};
use super::values::{Indexed, fold, indexed, resource_key};

/// The indexed multi-valued attribute `path` names (any sub-attribute aside), if any.
pub(super) fn multi_valued(resource: Resource, path: &AttrPath) -> Option<Indexed> {
    if let Some(schema) = &path.schema
        && !schema.eq_ignore_ascii_case(resource.core_schema())
    {
        return None;
    }
    indexed(resource, &path.attr)
}

/// SQL for a filter on the multi-valued attribute `attr`: `Present` and `Compare` with
/// the attribute's path, or the filter of a value path `attr[…]`.
pub(super) fn compile(
    filter: &Filter,
    resource: Resource,
    attr: Indexed,
    conn: &AnyConnection,
    first: usize,
    out: &mut Compiled,
) -> Result<String, QueryError> {
    // Bound first: placeholders must be bound in the order they appear.
    let connector = out.bind(conn, first, out.connector.clone());
    let (negate, element_condition) = match filter {
        Filter::ValuePath { filter, .. } => (false, element(filter, attr, None, conn, first, out)?),
        Filter::Present(path) => match &path.sub_attr {
            None => (false, "v.present = 1".to_string()),
            Some(sub) => {
                let condition = Filter::Present(AttrPath::new(sub.clone()));
                (
                    false,
                    element(&condition, attr, Some(path), conn, first, out)?,
                )
            }
        },
        Filter::Compare { path, op, value } => {
            let Some(sub) = &path.sub_attr else {
                return Err(QueryError::NotFilterable(format!(
                    "filter on a sub-attribute of `{path}`, e.g. `{path}.value {op} …`, \
                     or use `{path}[…]`"
                )));
            };
            // `ne` is "no element has it", as `not (… eq …)`.
            let (negate, op) = match op {
                CompareOp::Ne => (true, CompareOp::Eq),
                other => (false, *other),
            };
            let condition = Filter::Compare {
                path: AttrPath::new(sub.clone()),
                op,
                value: value.clone(),
            };
            (
                negate,
                element(&condition, attr, Some(path), conn, first, out)?,
            )
        }
        Filter::And(..) | Filter::Or(..) | Filter::Not(..) => {
            return Err(QueryError::NotFilterable(format!(
                "`{filter}` is not an attribute expression"
            )));
        }
    };
    Ok(format!(
        "external_id {}IN (SELECT v.external_id FROM mirror_values v \
         WHERE v.connector = {connector} AND v.resource = '{}' AND v.attr = '{}' AND {element_condition})",
        if negate { "NOT " } else { "" },
        resource_key(resource),
        attr.attr,
    ))
}

/// A two-valued condition on one index row `v` for a filter over one element. `outer`
/// is the full path (`emails.value`) when the filter came from one, for messages.
fn element(
    filter: &Filter,
    attr: Indexed,
    outer: Option<&AttrPath>,
    conn: &AnyConnection,
    first: usize,
    out: &mut Compiled,
) -> Result<String, QueryError> {
    let unsupported = |path: &AttrPath| {
        QueryError::NotFilterable(format!(
            "filtering on `{path}` inside `{}` is not supported; filterable: value, type, primary",
            attr.attr
        ))
    };
    let column = |path: &AttrPath| -> Result<&'static str, QueryError> {
        if path.schema.is_some() || path.sub_attr.is_some() {
            return Err(unsupported(path));
        }
        match path.attr.to_ascii_lowercase().as_str() {
            "value" => Ok("v.value_key"),
            "type" => Ok("v.type_key"),
            "primary" => Ok("v.is_primary"),
            _ => Err(unsupported(path)),
        }
    };
    Ok(match filter {
        Filter::And(a, b) => format!(
            "({} AND {})",
            element(a, attr, outer, conn, first, out)?,
            element(b, attr, outer, conn, first, out)?
        ),
        Filter::Or(a, b) => format!(
            "({} OR {})",
            element(a, attr, outer, conn, first, out)?,
            element(b, attr, outer, conn, first, out)?
        ),
        Filter::Not(inner) => format!("NOT ({})", element(inner, attr, outer, conn, first, out)?),
        Filter::ValuePath { attr: path, .. } => return Err(unsupported(path)),
        Filter::Present(path) => {
            let col = column(path)?;
            format!("({col} IS NOT NULL AND {col} <> '')")
        }
        Filter::Compare { path, op, value } => {
            let col = column(path)?;
            let path = outer.unwrap_or(path);
            if col == "v.is_primary" {
                let CompValue::Bool(flag) = value else {
                    return Err(QueryError::InvalidValue(format!(
                        "`{path}` is a boolean; compare it with true or false, not {value}"
                    )));
                };
                let flag = if *flag { "'true'" } else { "'false'" };
                return match op {
                    CompareOp::Eq => Ok(format!("({col} IS NOT NULL AND {col} = {flag})")),
                    CompareOp::Ne => Ok(format!("NOT ({col} IS NOT NULL AND {col} = {flag})")),
                    _ => Err(QueryError::NotFilterable(format!(
                        "`{path}` supports eq, ne and pr, not {op}"
                    ))),
                };
            }
            let CompValue::String(text) = value else {
                return Err(QueryError::InvalidValue(match value {
                    CompValue::Null => format!(
                        "`{path}` cannot compare with null; use `not ({path} pr)` for an \
                         absent value"
                    ),
                    other => format!("`{path}` is a string; {other} does not compare with it"),
                }));
            };
            let case_exact = col == "v.value_key" && attr.value_case_exact;
            let needle = fold(text, case_exact);
            let matching = match op {
                CompareOp::Eq | CompareOp::Ne => {
                    format!("{col} = {}", out.bind(conn, first, needle))
                }
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew if !case_exact => {
                    let pattern = out.bind(conn, first, like_pattern(&needle, *op));
                    format!("{col} LIKE {pattern} ESCAPE '\\'")
                }
                // SQLite's LIKE ignores ASCII case: compare case-exact text by position.
                CompareOp::Co => {
                    let find = if is_postgres(conn) { "strpos" } else { "instr" };
                    format!("{find}({col}, {}) > 0", out.bind(conn, first, needle))
                }
                CompareOp::Sw => {
                    let a = out.bind(conn, first, needle.clone());
                    let b = out.bind(conn, first, needle);
                    format!("substr({col}, 1, length({a})) = {b}")
                }
                CompareOp::Ew => {
                    let a = out.bind(conn, first, needle.clone());
                    let b = out.bind(conn, first, needle.clone());
                    let c = out.bind(conn, first, needle);
                    format!(
                        "(length({col}) >= length({a}) AND \
                         substr({col}, length({col}) - length({b}) + 1) = {c})"
                    )
                }
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                    return Err(QueryError::NotFilterable(format!(
                        "`{path}` supports eq, ne, co, sw, ew and pr, not {op}"
                    )));
                }
            };
            let condition = format!("({col} IS NOT NULL AND {matching})");
            if *op == CompareOp::Ne {
                format!("NOT {condition}")
            } else {
                condition
            }
        }
    })
}
