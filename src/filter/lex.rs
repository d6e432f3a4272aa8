//! The lexer: turns filter text into tokens on demand, so the first error in reading
//! order is the one reported. Columns are 1-based and counted in characters.
//!
//! Words (attribute paths, operators, keywords) are runs of ASCII letters, digits and
//! `- _ $ : .` starting with a letter or `$`; strings and numbers follow JSON.

use super::{FilterError, FilterErrorKind};

/// What a token is. Keywords and operators are [`TokKind::Word`]s; the parser decides by
/// position what a word means, so an attribute may be called `not` or `pr`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokKind {
    Word,
    Str(String),
    Num(serde_json::Number),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Eof,
}

/// A token with its source text and position.
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    pub kind: TokKind,
    /// The token as written (with quotes and escapes for strings).
    pub text: &'a str,
    /// 1-based character column of the token's first character.
    pub column: usize,
    /// Whether whitespace separates this token from the previous one.
    pub space_before: bool,
}

impl Token<'_> {
    /// Whether this is a word equal to `keyword`, ignoring ASCII case.
    pub fn is_word(&self, keyword: &str) -> bool {
        self.kind == TokKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    /// How the token reads in an error message: `"equals"`, `the string "x"`, ….
    pub fn describe(&self) -> String {
        const MAX_CHARS: usize = 40;
        let text: String = if self.text.chars().count() > MAX_CHARS {
            let mut short: String = self.text.chars().take(MAX_CHARS).collect();
            short.push('…');
            short
        } else {
            self.text.to_owned()
        };
        match self.kind {
            TokKind::Eof => "end of input".to_owned(),
            TokKind::Str(_) => format!("the string {text}"),
            TokKind::Num(_) => format!("the number {text}"),
            _ => format!("{text:?}"),
        }
    }
}

/// A JSON number. serde_json checks the syntax and keeps integers exact; other numbers
/// are parsed with the standard library, which rounds correctly (serde_json's default
/// float parsing does not always), so every `f64` survives printing and re-parsing.
fn parse_number(text: &str) -> Option<serde_json::Number> {
    let number: serde_json::Number = serde_json::from_str(text).ok()?;
    if number.is_f64() {
        serde_json::Number::from_f64(text.parse::<f64>().ok()?)
    } else {
        Some(number)
    }
}

/// Reads tokens from a filter, one at a time.
pub(super) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// 1-based character column of the next character.
    column: usize,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '$'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | ':' | '.')
}

fn is_number_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_')
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            column: 1,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        self.column += 1;
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek_char().is_some_and(&keep) {
            self.bump();
        }
    }

    fn error(column: usize, kind: FilterErrorKind) -> FilterError {
        FilterError { column, kind }
    }

    /// The next token; [`TokKind::Eof`] (repeatedly) at the end.
    pub fn next_token(&mut self) -> Result<Token<'a>, FilterError> {
        let before = self.pos;
        self.bump_while(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        let space_before = self.pos > before;
        let start = self.pos;
        let column = self.column;
        let kind = match self.peek_char() {
            None => TokKind::Eof,
            Some(c) if is_word_start(c) => {
                self.bump_while(is_word_char);
                TokKind::Word
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                self.bump_while(is_number_char);
                let text = self.src.get(start..self.pos).unwrap_or_default();
                match parse_number(text) {
                    Some(n) => TokKind::Num(n),
                    None => {
                        let kind = FilterErrorKind::InvalidNumber(text.to_owned());
                        return Err(Self::error(column, kind));
                    }
                }
            }
            Some('"') => {
                self.bump();
                TokKind::Str(self.string_body(column)?)
            }
            Some(c) => {
                self.bump();
                match c {
                    '(' => TokKind::LParen,
                    ')' => TokKind::RParen,
                    '[' => TokKind::LBracket,
                    ']' => TokKind::RBracket,
                    '.' => TokKind::Dot,
                    other => {
                        return Err(Self::error(column, FilterErrorKind::UnexpectedChar(other)));
                    }
                }
            }
        };
        Ok(Token {
            kind,
            text: self.src.get(start..self.pos).unwrap_or_default(),
            column,
            space_before,
        })
    }

    /// Reads a JSON string after its opening quote (at `open_column`), through the
    /// closing quote, decoding escapes.
    fn string_body(&mut self, open_column: usize) -> Result<String, FilterError> {
        let mut out = String::new();
        loop {
            let column = self.column;
            match self.bump() {
                None => {
                    return Err(Self::error(
                        open_column,
                        FilterErrorKind::UnterminatedString,
                    ));
                }
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape(column)?),
                Some(c) if u32::from(c) < 0x20 => {
                    return Err(Self::error(column, FilterErrorKind::ControlChar(c.into())));
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Decodes one escape after its backslash (at `column`).
    fn escape(&mut self, column: usize) -> Result<char, FilterError> {
        let c = match self.bump() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => return self.unicode_escape(column),
            Some(other) => {
                let kind = FilterErrorKind::InvalidEscape(format!("\\{other}"));
                return Err(Self::error(column, kind));
            }
            None => return Err(Self::error(column, FilterErrorKind::UnterminatedString)),
        };
        Ok(c)
    }

    /// Decodes `\uXXXX` (after its `\u`), joining a UTF-16 surrogate pair.
    fn unicode_escape(&mut self, column: usize) -> Result<char, FilterError> {
        let start = self.pos.saturating_sub(2);
        let invalid = |lexer: &Self| {
            let seen = lexer.src.get(start..lexer.pos).unwrap_or_default();
            Self::error(
                column,
                FilterErrorKind::InvalidUnicodeEscape(seen.to_owned()),
            )
        };
        let high = self.hex4().ok_or_else(|| invalid(self))?;
        let code = match high {
            0xD800..=0xDBFF => {
                if self.bump() != Some('\\') || self.bump() != Some('u') {
                    return Err(invalid(self));
                }
                let low = self.hex4().ok_or_else(|| invalid(self))?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(invalid(self));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(invalid(self)),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| invalid(self))
    }

    /// Reads four hex digits.
    fn hex4(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = self.peek_char()?.to_digit(16)?;
            self.bump();
            value = value * 16 + digit;
        }
        Some(value)
    }
}
