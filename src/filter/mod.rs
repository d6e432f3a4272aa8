//! The SCIM filter language (RFC 7644 §3.4.2.2), once for the whole product: parsing
//! filters such as `emails[type eq "work"] and not (userName sw "svc-")` and PATCH
//! paths such as `emails[type eq "work"].value` into a storage-neutral AST, printing
//! the AST back as canonical text, and evaluating a filter in memory against a record's
//! JSON.
//!
//! The mapping pipeline evaluates include/exclude filters with [`Filter::matches`]; a
//! SCIM server can compile the same [`Filter`] to SQL, as the AST holds no evaluation
//! state.
//!
//! # Grammar
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / "not" "(" FILTER ")" / "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"     ; no value path inside valFilter
//! attrExp   = attrPath "pr" / attrPath compareOp compValue
//!           / valuePath "." ATTRNAME ("pr" / compareOp compValue)
//!             ; read as attr[valFilter and ATTRNAME ...]: one element matches both
//! logExp    = FILTER ("and" / "or") FILTER  ; and binds tighter than or
//! compareOp = eq / ne / co / sw / ew / gt / lt / ge / le
//! compValue = false / null / true / number / string   ; JSON literals
//! attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]
//! ATTRNAME  = (ALPHA / "$") *(ALPHA / DIGIT / "-" / "_" / "$")
//! PATH      = attrPath / valuePath ["." ATTRNAME]      ; PATCH paths only
//! ```
//!
//! Keywords, operators and attribute names are case-insensitive. Tokens are separated by
//! any run of spaces, tabs or line breaks; none is needed next to quotes, parentheses or
//! brackets. Inputs are capped at [`MAX_INPUT_BYTES`] and nesting (parentheses, `not`,
//! value paths) at [`MAX_DEPTH`] levels.
//!
//! # Evaluation
//!
//! See [`Filter::matches`]: attribute names match JSON keys case-insensitively,
//! multi-valued attributes match when any element does, strings compare
//! case-insensitively (unless [`EvalOptions::case_exact`] says otherwise) and as instants
//! when both sides are RFC 3339 date-times, and a type mismatch is simply no match.
//!
//! ```
//! use idsync::filter::{parse_filter, parse_path, CompareOp, Filter};
//! use serde_json::json;
//!
//! let filter = parse_filter(r#"emails[type eq "work" and primary eq true] and not (active eq false)"#)?;
//! let user = json!({
//!     "userName": "bjensen",
//!     "active": true,
//!     "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
//! });
//! assert!(filter.matches(&user));
//!
//! // Canonical text parses back to the same tree.
//! assert_eq!(parse_filter(&filter.to_string())?, filter);
//!
//! let Filter::Compare { path, op, .. } = parse_filter("NAME.FamilyName SW \"J\"")? else {
//!     unreachable!()
//! };
//! assert_eq!((path.attr.as_str(), path.sub_attr.as_deref(), op), ("NAME", Some("FamilyName"), CompareOp::Sw));
//!
//! let path = parse_path(r#"emails[type eq "work"].value"#)?;
//! assert_eq!(path.sub_attr.as_deref(), Some("value"));
//!
//! let err = parse_filter(r#"userName equals "bjensen""#).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"column 10: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found "equals""#
//! );
//! # Ok::<(), idsync::filter::FilterError>(())
//! ```

mod ast;
mod eval;
mod lex;
mod parse;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use ast::{AttrPath, CompValue, CompareOp, Filter, Junction, Path};
pub use eval::{EvalOptions, get_ci};

/// Core User schema URN (RFC 7643 §4.1): the prefix of a fully qualified User attribute path.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The core User's multi-valued attributes (RFC 7643 §4.1.2): arrays of elements.
pub const USER_MULTI_VALUED: &[&str] = &[
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
];
pub(crate) use eval::is_present;

/// Longest accepted filter or path, in bytes.
pub const MAX_INPUT_BYTES: usize = 8 * 1024;

/// Deepest accepted nesting of parentheses, `not ( … )` and value paths `[ … ]`.
pub const MAX_DEPTH: usize = 64;

/// Most attribute expressions (`path op value`, `path pr`, `path[…]`) in one filter. An
/// `and`/`or` chain is a tree as deep as it is long, and every walk of the tree (SQL,
/// evaluation, printing, dropping) recurses: the chain must stay short enough for any
/// thread's stack.
pub const MAX_TERMS: usize = 128;

/// Parses a filter, e.g. `userName eq "bjensen" and emails[type eq "work"]`.
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    parse::Parser::new(input)?.filter()
}

/// Parses a PATCH path: an attribute path (`name.givenName`, with an optional schema
/// URN prefix), or a value path with an optional sub-attribute
/// (`emails[type eq "work"].value`).
pub fn parse_path(input: &str) -> Result<Path, FilterError> {
    parse::Parser::new(input)?.path()
}

/// Why a filter or path could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct FilterError {
    /// 1-based position, counted in characters, of the offending token.
    pub column: usize,
    pub kind: FilterErrorKind,
}

/// What went wrong; the message says what was expected where that is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterErrorKind {
    #[error("the {what} is empty")]
    Empty { what: &'static str },
    #[error("the input is {len} bytes long; the limit is {MAX_INPUT_BYTES}")]
    TooLong { len: usize },
    #[error("nesting is deeper than {MAX_DEPTH} levels (parentheses, not, value paths)")]
    TooDeep,
    #[error("the filter has more than {MAX_TERMS} attribute expressions")]
    TooManyTerms,
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("unterminated string (no closing '\"')")]
    UnterminatedString,
    #[error("invalid escape {0:?} in string (use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)")]
    InvalidEscape(String),
    #[error("invalid unicode escape {0:?} in string")]
    InvalidUnicodeEscape(String),
    #[error("control character U+{0:04X} must be escaped in a string")]
    ControlChar(u32),
    #[error("invalid number {0:?} (a JSON number such as -12, 3.5 or 1e3 is expected)")]
    InvalidNumber(String),
    #[error("invalid attribute path {path:?}: {reason}")]
    InvalidAttrPath { path: String, reason: &'static str },
    #[error("\"pr\" takes no value, found {found}")]
    PresentWithValue { found: String },
    #[error("\"{op}\" cannot compare with {value}; use a string, number or date-time")]
    OrderingWithoutOrder {
        op: &'static str,
        value: &'static str,
    },
    #[error("missing \"{close}\" for the \"{open}\" at column {open_column}")]
    Unclosed {
        open: char,
        close: char,
        open_column: usize,
    },
    #[error("unmatched \"{0}\"")]
    Unmatched(char),
    #[error("value paths cannot be nested inside a value path")]
    NestedValuePath,
}
