//! Attribute mapping expressions: the right-hand sides of a mapping's `[attributes]`
//! table in `mappings/*.toml`, e.g. `email = "mail ?? userPrincipalName | lower"`.
//!
//! [`parse`] turns the text into an [`Expr`] (all errors, bad regexes included, are
//! reported then, with a 1-based column); [`Expr::eval`] computes the value for one
//! source record (a JSON object), [`Expr::paths`] lists the source attributes it reads
//! (as canonical path text: `a.b[0]`, backquotes kept for keys that need them).
//!
//! # Rules for admins
//!
//! **Paths.** `userPrincipalName`, `onPremisesExtensionAttributes.extensionAttribute1`,
//! `proxyAddresses[0]`, `emails[0].value`. A key is `[A-Za-z_$@][A-Za-z0-9_$@-]*`; any
//! other key (SCIM URNs, keys with spaces or dots) is written in backquotes and taken
//! literally, as one key: `` `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.department ``.
//! Key lookup ignores case (`UserPrincipalName` finds `userPrincipalName`); when several
//! keys match, the exact spelling wins, then the first matching key in the record's order.
//! `[N]` (0-based) indexes an array. A key on an array or an index on a non-array is
//! missing: write `emails[0].value`, not `emails.value`.
//!
//! **Values.** Strings are used as they are; numbers and booleans as their JSON text
//! (`42`, `true`); `null`, objects and anything missing are missing. An array used
//! without an index gives its first element (if that is a string, number or boolean).
//!
//! **Missing and empty are the same.** An empty string is treated as missing
//! everywhere: when read from the record, after every transform and as the final result
//! (the target attribute is then left unset).
//!
//! **Strings.** `"..."` with the escapes `\"`, `\\`, `\n`, `\t` and `\u{1F600}`; any
//! other backslash is an error, so a regex `\d` is written `\\d` in the expression (and,
//! inside a TOML basic string, `\\\\d`; a TOML literal string `'...'` avoids one level).
//!
//! **Templates.** A string used as a value may contain placeholders:
//! `"{givenName}.{surname}@example.com"`. A placeholder holds a path only (no transforms;
//! transform the whole string instead, `"{givenName}.{surname}" | lower`); `{{` and `}}`
//! are literal braces. Placeholder text is read raw: escapes are not decoded inside
//! `{...}`. A string without placeholders is a constant (`department ?? "Unassigned"`).
//! **If any placeholder is missing (or empty) the whole template is missing**,
//! so `displayName ?? "{givenName} {surname}"` falls through rather than producing
//! `"Alice "`; add a `?? ...` alternative or a `default(...)` for partial data.
//!
//! **Transforms** apply left to right with `|`: `lower`, `upper`, `trim` (Unicode
//! case mapping and whitespace); `strip_domain` (drops the last `@` and everything after
//! it, as a quoted local part may itself hold an `@`: `alice@contoso.com` gives `alice`); `replace("regex", "replacement")` (every match
//! is replaced; Rust `regex` syntax, `(?i)` for case-insensitive; `$1`, `${name}` refer
//! to groups in the replacement, write `${1}x` when a letter, digit or `_` follows and `$$`
//! for a literal `$`); `split("separator", n)` (the n-th part, 0-based; missing when out
//! of range; the separator is plain text, not a regex, and must not be empty);
//! `default("text")` (the text when the value is missing). A missing value stays
//! missing through every transform except `default`. Transform arguments are plain
//! strings, never templates: braces in them are literal (`replace("^\\d{3}", "")`).
//!
//! **Fallback.** `a ?? b ?? c` is the first alternative that is present and not empty,
//! each after its own transforms: `|` binds tighter than `??`, so `mail | lower ?? upn`
//! is `(mail | lower) ?? upn`; parentheses group: `(mail ?? upn) | lower`.
//!
//! **Limits.** An expression is at most 4096 bytes and parentheses nest at most 32 deep.
//! Whitespace between tokens is insignificant.

mod lexer;
mod parser;
#[cfg(test)]
mod proptests;
mod template;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::{Map, Value};

use template::{write_escaped, write_quoted};

/// The longest expression text accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// The deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 32;

/// A parse error: where (1-based character index in the expression) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

impl ExprError {
    fn new(column: usize, message: impl Into<String>) -> Self {
        ExprError {
            column,
            message: message.into(),
        }
    }
}

/// A parsed mapping expression. Its [`Display`](fmt::Display) is a canonical text that
/// parses back to an equal `Expr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    node: Node,
}

/// Parses one mapping expression.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    parser::parse(text).map(|node| Expr { node })
}

impl Expr {
    /// The value for one source record, `None` when missing or empty.
    pub fn eval(&self, record: &Value) -> Option<String> {
        eval(&self.node, record)
    }

    /// Every path the expression reads (placeholders included), in canonical text,
    /// in order of first appearance, without duplicates.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        each_path(&self.node, &mut |path| push_new(&mut out, path.to_string()));
        out
    }
}

impl Expr {
    /// The first key of every path the expression reads (the top-level attribute of the
    /// record), as written, in order of first appearance, without duplicates.
    pub fn root_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        each_path(&self.node, &mut |path| {
            if let Some(Segment::Key(key)) = path.0.first() {
                push_new(&mut out, key.clone());
            }
        });
        out
    }
}

fn push_new(out: &mut Vec<String>, text: String) {
    if !out.contains(&text) {
        out.push(text);
    }
}

/// Calls `visit` with every path `node` reads (placeholders included), in order.
fn each_path(node: &Node, visit: &mut impl FnMut(&Path)) {
    match node {
        Node::Path(path) => visit(path),
        Node::Text(parts) => {
            for part in parts {
                if let Part::Field(path) = part {
                    visit(path);
                }
            }
        }
        Node::Pipe(base, _) => each_path(base, visit),
        Node::Fallback(alternatives) => {
            for alternative in alternatives {
                each_path(alternative, visit);
            }
        }
    }
}

/// The syntax tree. The parser keeps it canonical: a `Pipe` base is never a `Pipe`
/// (chains are flattened), a `Fallback` has at least two alternatives and none of them
/// is a `Fallback`, a `Text` never holds an empty or two adjacent `Lit` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Path(Path),
    /// A string literal; with `Field` parts, a template.
    Text(Vec<Part>),
    Pipe(Box<Node>, Vec<Transform>),
    Fallback(Vec<Node>),
}

/// A path: a key, then keys and indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(Path),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Transform {
    Lower,
    Upper,
    Trim,
    StripDomain,
    Replace {
        pattern: Pattern,
        replacement: String,
    },
    Split {
        separator: String,
        index: usize,
    },
    Default(String),
}

/// A compiled regex, equal to another when their source texts are equal.
#[derive(Debug, Clone)]
struct Pattern(regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Path(path) => path.fmt(f),
            Node::Text(parts) => {
                f.write_str("\"")?;
                for part in parts {
                    match part {
                        Part::Lit(text) => write_escaped(f, text, true)?,
                        Part::Field(path) => write!(f, "{{{path}}}")?,
                    }
                }
                f.write_str("\"")
            }
            Node::Pipe(base, transforms) => {
                if matches!(**base, Node::Fallback(_)) {
                    write!(f, "({base})")?;
                } else {
                    base.fmt(f)?;
                }
                for transform in transforms {
                    write!(f, " | {transform}")?;
                }
                Ok(())
            }
            Node::Fallback(alternatives) => {
                for (i, alternative) in alternatives.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ?? ")?;
                    }
                    if matches!(alternative, Node::Fallback(_)) {
                        write!(f, "({alternative})")?;
                    } else {
                        alternative.fmt(f)?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if lexer::is_identifier(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "`{key}`")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Lower => f.write_str("lower"),
            Transform::Upper => f.write_str("upper"),
            Transform::Trim => f.write_str("trim"),
            Transform::StripDomain => f.write_str("strip_domain"),
            Transform::Replace {
                pattern,
                replacement,
            } => {
                f.write_str("replace(")?;
                write_quoted(f, pattern.0.as_str())?;
                f.write_str(", ")?;
                write_quoted(f, replacement)?;
                f.write_str(")")
            }
            Transform::Split { separator, index } => {
                f.write_str("split(")?;
                write_quoted(f, separator)?;
                write!(f, ", {index})")
            }
            Transform::Default(text) => {
                f.write_str("default(")?;
                write_quoted(f, text)?;
                f.write_str(")")
            }
        }
    }
}

// Evaluation. Everything is `Option<String>` with the empty string normalised to `None`
// at every step, so "missing" and "empty" can never be told apart (see the rules above).

fn eval(node: &Node, record: &Value) -> Option<String> {
    match node {
        Node::Path(path) => lookup(record, path),
        Node::Text(parts) => {
            let mut out = String::new();
            for part in parts {
                match part {
                    Part::Lit(text) => out.push_str(text),
                    // Any missing placeholder makes the whole template missing.
                    Part::Field(path) => out.push_str(&lookup(record, path)?),
                }
            }
            present(out)
        }
        Node::Pipe(base, transforms) => transforms
            .iter()
            .fold(eval(base, record), |value, transform| {
                apply(transform, value)
            }),
        Node::Fallback(alternatives) => alternatives
            .iter()
            .find_map(|alternative| eval(alternative, record)),
    }
}

fn present(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn apply(transform: &Transform, value: Option<String>) -> Option<String> {
    if let Transform::Default(text) = transform {
        return value.or_else(|| present(text.clone()));
    }
    let value = value?;
    let out = match transform {
        Transform::Lower => value.to_lowercase(),
        Transform::Upper => value.to_uppercase(),
        Transform::Trim => value.trim().to_string(),
        Transform::StripDomain => match value.rsplit_once('@') {
            Some((local, _)) => local.to_string(),
            None => value,
        },
        Transform::Replace {
            pattern,
            replacement,
        } => pattern
            .0
            .replace_all(&value, replacement.as_str())
            .into_owned(),
        Transform::Split { separator, index } => {
            value.split(separator.as_str()).nth(*index)?.to_string()
        }
        Transform::Default(_) => value,
    };
    present(out)
}

/// The scalar text at `path` in `record`.
fn lookup(record: &Value, path: &Path) -> Option<String> {
    let mut value = record;
    for segment in &path.0 {
        value = match segment {
            Segment::Key(key) => get_key(value.as_object()?, key)?,
            Segment::Index(index) => value.as_array()?.get(*index)?,
        };
    }
    match value {
        Value::Array(items) => items.first().and_then(scalar),
        other => scalar(other),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => present(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The value under `key`: the exact key if present, else the first key equal to it
/// ignoring case.
fn get_key<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(candidate, _)| equal_ignoring_case(candidate, key))
            .map(|(_, value)| value)
    })
}

fn equal_ignoring_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}
