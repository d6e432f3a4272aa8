//! The filter AST and its canonical text form. The AST is storage-neutral (no evaluation
//! state), so the in-memory evaluator and a SQL compiler can share it. `Display` prints
//! text that parses back to the same AST: operators and keywords in lower case, strings
//! quoted with JSON escapes, and parentheses only where precedence needs them.

use std::fmt;

/// A parsed filter (RFC 7644 §3.4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Both sides match.
    And(Box<Filter>, Box<Filter>),
    /// Either side matches.
    Or(Box<Filter>, Box<Filter>),
    /// `not ( … )`.
    Not(Box<Filter>),
    /// `path op value`, e.g. `userName eq "bjensen"`.
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `path pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `attr[filter]`: some element of the (multi-valued, complex) attribute matches
    /// `filter`, whose attribute paths are relative to the element.
    ValuePath { attr: AttrPath, filter: Box<Filter> },
}

/// `[schema ":"] attr ["." sub_attr]`. Names are kept as written; they compare
/// case-insensitively ([`AttrPath::eq_ignore_case`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, e.g.
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub schema: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

/// Attribute operators that take a value (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value: a JSON literal. Date-times are strings; they compare as instants
/// when both sides parse as RFC 3339 date-times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompValue {
    String(String),
    Bool(bool),
    Number(serde_json::Number),
    Null,
}

/// A PATCH path (RFC 7644 §3.5.2): `attrPath`, or `valuePath ["." subAttr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub attr: AttrPath,
    /// The filter of a value path, `emails[type eq "work"]`.
    pub filter: Option<Filter>,
    /// The sub-attribute after the brackets, `.value` in `emails[type eq "work"].value`.
    /// Only set together with `filter`; without one it lives in `attr.sub_attr`.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// A plain attribute name, `userName`.
    pub fn new(attr: impl Into<String>) -> Self {
        Self {
            schema: None,
            attr: attr.into(),
            sub_attr: None,
        }
    }

    /// This path with a sub-attribute, `name` → `name.familyName`.
    pub fn with_sub_attr(mut self, sub_attr: impl Into<String>) -> Self {
        self.sub_attr = Some(sub_attr.into());
        self
    }

    /// This path with a schema URN prefix.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Whether both paths name the same attribute, ignoring case (RFC 7644: attribute
    /// names in filters are case-insensitive). Schema URNs compare case-insensitively
    /// too.
    pub fn eq_ignore_case(&self, other: &AttrPath) -> bool {
        fn same(a: Option<&str>, b: Option<&str>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            }
        }
        same(self.schema.as_deref(), other.schema.as_deref())
            && self.attr.eq_ignore_ascii_case(&other.attr)
            && same(self.sub_attr.as_deref(), other.sub_attr.as_deref())
    }
}

impl CompareOp {
    /// All operators, in RFC order.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The operator's keyword, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator for a keyword, case-insensitively.
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        CompareOp::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// `gt`, `ge`, `lt` and `le`: these need an ordered value (not a boolean or null).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

impl CompValue {
    /// The value as an RFC 3339 date-time, if it is a string that parses as one.
    pub fn as_date_time(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        match self {
            CompValue::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok(),
            _ => None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::String(s) => write_json_string(f, s),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// Writes `s` as a JSON string literal: quotes, backslashes and control characters
/// escaped (as serde_json escapes them), everything else as is.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str(&serde_json::Value::from(s).to_string())
}

/// The logical operator joining a chain of comparisons ([`Filter::equalities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Junction {
    And,
    Or,
}

impl Filter {
    /// The `attr eq value` comparisons of a filter made only of them, on plain attributes
    /// (no schema, no sub-attribute), all joined by `junction`, left to right; `None` for
    /// any other filter. PATCH reads such filters as a list of member ids (`or`) or as the
    /// element to add (`and`).
    pub fn equalities(&self, junction: Junction) -> Option<Vec<(&str, &CompValue)>> {
        let mut found = Vec::new();
        self.collect_equalities(junction, &mut found)?;
        Some(found)
    }

    fn collect_equalities<'a>(
        &'a self,
        junction: Junction,
        found: &mut Vec<(&'a str, &'a CompValue)>,
    ) -> Option<()> {
        match (self, junction) {
            (Filter::And(left, right), Junction::And) | (Filter::Or(left, right), Junction::Or) => {
                left.collect_equalities(junction, found)?;
                right.collect_equalities(junction, found)
            }
            (
                Filter::Compare {
                    path:
                        AttrPath {
                            schema: None,
                            attr,
                            sub_attr: None,
                        },
                    op: CompareOp::Eq,
                    value,
                },
                _,
            ) => {
                found.push((attr, value));
                Some(())
            }
            _ => None,
        }
    }

    /// Writes `self`, in parentheses when `wrap` says so.
    fn fmt_wrapped(&self, f: &mut fmt::Formatter<'_>, wrap: bool) -> fmt::Result {
        if wrap {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Both operators are left-associative and `and` binds tighter than `or`, so a
        // child needs parentheses when it binds looser than its parent, or as tight but
        // on the right.
        match self {
            Filter::And(left, right) => {
                left.fmt_wrapped(f, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                right.fmt_wrapped(f, matches!(**right, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                right.fmt_wrapped(f, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}
