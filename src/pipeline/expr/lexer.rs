//! The lexer of mapping expressions: characters to tokens, each with its 1-based column.
//!
//! String literals are kept raw (the characters between the quotes, escapes undecoded):
//! whether braces are placeholders depends on where the string stands, which only the
//! parser knows. The same lexer reads the inside of template placeholders.

use super::ExprError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// A bare key or transform name.
    Ident(String),
    /// A `` `backquoted` `` key, without its backquotes.
    Backquoted(String),
    /// A string literal's raw characters, without its quotes; the first is at the
    /// token's column + 1.
    Str(Vec<char>),
    Number(usize),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Pipe,
    Fallback,
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub column: usize,
}

impl Tok {
    /// How an error message names the token.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Backquoted(key) => format!("`` `{key}` ``"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Number(n) => format!("number {n}"),
            Tok::Dot => "`.`".to_string(),
            Tok::LBracket => "`[`".to_string(),
            Tok::RBracket => "`]`".to_string(),
            Tok::LParen => "`(`".to_string(),
            Tok::RParen => "`)`".to_string(),
            Tok::Comma => "`,`".to_string(),
            Tok::Pipe => "`|`".to_string(),
            Tok::Fallback => "`??`".to_string(),
            Tok::End => "end of expression".to_string(),
        }
    }
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '_' | '$' | '@')
}

fn is_identifier_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '@' | '-')
}

/// Whether `key` can be written without backquotes.
pub(super) fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(is_identifier_start) && chars.all(is_identifier_continue)
}

/// Splits `chars` into tokens, the first character being at `first_column`; the last
/// token is always [`Tok::End`], at the column just past the input.
pub(super) fn lex(chars: &[char], first_column: usize) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = first_column + i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, next) = match c {
            '.' => (Tok::Dot, i + 1),
            '[' => (Tok::LBracket, i + 1),
            ']' => (Tok::RBracket, i + 1),
            '(' => (Tok::LParen, i + 1),
            ')' => (Tok::RParen, i + 1),
            ',' => (Tok::Comma, i + 1),
            '|' => (Tok::Pipe, i + 1),
            '?' if chars.get(i + 1) == Some(&'?') => (Tok::Fallback, i + 2),
            '?' => {
                return Err(ExprError::new(
                    column,
                    "a single `?` is not an operator (the fallback is `??`)",
                ));
            }
            '"' => {
                let end = string_end(chars, i).ok_or_else(|| {
                    ExprError::new(column, "unterminated string (no closing `\"`)")
                })?;
                let raw = chars.get(i + 1..end).unwrap_or_default();
                (Tok::Str(raw.to_vec()), end + 1)
            }
            '`' => {
                let end = (i + 1..chars.len())
                    .find(|&j| chars.get(j) == Some(&'`'))
                    .ok_or_else(|| {
                        ExprError::new(column, "unterminated backquoted key (no closing '`')")
                    })?;
                let key: String = chars.get(i + 1..end).unwrap_or_default().iter().collect();
                if key.is_empty() {
                    return Err(ExprError::new(column, "empty backquoted key"));
                }
                (Tok::Backquoted(key), end + 1)
            }
            c if is_identifier_start(c) => {
                let end = run_end(chars, i, is_identifier_continue);
                let name: String = chars.get(i..end).unwrap_or_default().iter().collect();
                (Tok::Ident(name), end)
            }
            c if c.is_ascii_digit() => {
                let end = run_end(chars, i, |c| c.is_ascii_digit());
                let digits: String = chars.get(i..end).unwrap_or_default().iter().collect();
                let n = digits
                    .parse()
                    .map_err(|_| ExprError::new(column, format!("number {digits} is too large")))?;
                (Tok::Number(n), end)
            }
            other => {
                return Err(ExprError::new(
                    column,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        tokens.push(Token { tok, column });
        i = next;
    }
    tokens.push(Token {
        tok: Tok::End,
        column: first_column + chars.len(),
    });
    Ok(tokens)
}

/// The index of the quote closing the string opened at `start`: a backslash escapes
/// the character after it (escapes are decoded later, see `template`).
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut j = start + 1;
    loop {
        match chars.get(j)? {
            '\\' => j += 2,
            '"' => return Some(j),
            _ => j += 1,
        }
    }
}

/// The index just past the run of characters from `start` that satisfy `keep`
/// (the character at `start` is taken as part of the run).
fn run_end(chars: &[char], start: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut j = start + 1;
    while chars.get(j).is_some_and(|&c| keep(c)) {
        j += 1;
    }
    j
}
