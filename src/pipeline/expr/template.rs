//! String literals: decoding (escapes; in templates also `{{`, `}}` and `{path}`
//! placeholders) and printing them back in canonical form.
//!
//! The lexer hands string literals over raw; whether braces are placeholders depends on
//! where the string stands: a value is a template, a transform argument is plain text.

use std::fmt;

use super::parser::placeholder;
use super::{ExprError, Part};

/// Decodes the escape starting at `raw[k]` (a backslash); `column` is the column of
/// `raw[0]`. Returns the character and the index after the escape.
fn escape(raw: &[char], k: usize, column: usize) -> Result<(char, usize), ExprError> {
    let at = column + k;
    match raw.get(k + 1) {
        Some('"') => Ok(('"', k + 2)),
        Some('\\') => Ok(('\\', k + 2)),
        Some('n') => Ok(('\n', k + 2)),
        Some('t') => Ok(('\t', k + 2)),
        Some('u') => {
            let bad = || {
                ExprError::new(
                    at,
                    "invalid unicode escape (expected \\u{...} with 1 to 6 hex digits)",
                )
            };
            if raw.get(k + 2) != Some(&'{') {
                return Err(bad());
            }
            let close = (k + 3..raw.len())
                .find(|&j| raw.get(j) == Some(&'}'))
                .ok_or_else(bad)?;
            let digits: String = raw.get(k + 3..close).unwrap_or_default().iter().collect();
            if digits.is_empty()
                || digits.len() > 6
                || !digits.chars().all(|c| c.is_ascii_hexdigit())
            {
                return Err(bad());
            }
            let c = u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    ExprError::new(
                        at,
                        format!("invalid unicode escape: {digits} is not a Unicode scalar value"),
                    )
                })?;
            Ok((c, close + 1))
        }
        Some(other) => Err(ExprError::new(
            at,
            format!(
                "unknown escape `\\{other}` (known: \\\" \\\\ \\n \\t \\u{{...}}; \
                 write \\\\ for a backslash, e.g. \\\\d in a regex)"
            ),
        )),
        None => Err(ExprError::new(at, "unterminated escape")),
    }
}

/// A string literal used as an argument: escapes decoded, braces literal. `column` is
/// the column of `raw[0]`.
pub(super) fn literal(raw: &[char], column: usize) -> Result<String, ExprError> {
    let mut out = String::new();
    let mut k = 0;
    while let Some(&c) = raw.get(k) {
        if c == '\\' {
            let (decoded, next) = escape(raw, k, column)?;
            out.push(decoded);
            k = next;
        } else {
            out.push(c);
            k += 1;
        }
    }
    Ok(out)
}

/// A string literal used as a value: a template. `column` is the column of `raw[0]`.
pub(super) fn template(raw: &[char], column: usize) -> Result<Vec<Part>, ExprError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut k = 0;
    while let Some(&c) = raw.get(k) {
        let next = raw.get(k + 1).copied();
        match c {
            '\\' => {
                let (decoded, after) = escape(raw, k, column)?;
                text.push(decoded);
                k = after;
            }
            '{' | '}' if next == Some(c) => {
                text.push(c);
                k += 2;
            }
            '}' => {
                return Err(ExprError::new(
                    column + k,
                    "single `}` in a string (write `}}` for a literal brace)",
                ));
            }
            '{' => {
                // The closing brace, skipping backquoted keys (which may hold braces).
                let mut j = k + 1;
                let mut quoted = false;
                loop {
                    match raw.get(j) {
                        None => {
                            return Err(ExprError::new(
                                column + k,
                                "unclosed placeholder `{` (write `{{` for a literal brace)",
                            ));
                        }
                        Some('`') => quoted = !quoted,
                        Some('}') if !quoted => break,
                        Some(_) => {}
                    }
                    j += 1;
                }
                let inner = raw.get(k + 1..j).unwrap_or_default();
                let path = placeholder(inner, column + k + 1, column + k)?;
                if !text.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut text)));
                }
                parts.push(Part::Field(path));
                k = j + 1;
            }
            _ => {
                text.push(c);
                k += 1;
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Lit(text));
    }
    Ok(parts)
}

/// A plain (argument) string literal.
pub(super) fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    write_escaped(f, text, false)?;
    f.write_str("\"")
}

/// String literal contents; `template` doubles braces.
pub(super) fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, template: bool) -> fmt::Result {
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '{' if template => f.write_str("{{")?,
            '}' if template => f.write_str("}}")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}
