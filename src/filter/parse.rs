//! The recursive-descent parser for filters and PATCH paths. `or` and `and` chains are
//! parsed iteratively into left-associative trees; recursion happens only for
//! parentheses, `not` and value paths, which [`MAX_DEPTH`] bounds.

use super::ast::{AttrPath, CompValue, CompareOp, Filter, Path};
use super::lex::{Lexer, TokKind, Token};
use super::{FilterError, FilterErrorKind, MAX_DEPTH, MAX_INPUT_BYTES, MAX_TERMS};

const EXPECT_OPERATOR: &str = "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)";
const EXPECT_VALUE: &str = "a value (a \"string\", a number, true, false or null)";
const EXPECT_EXPRESSION: &str = "an attribute path, \"not\" or \"(\"";

/// A parser over one input; consumed by [`Parser::filter`] or [`Parser::path`].
pub(super) struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
    /// Attribute expressions parsed so far (bounded by [`MAX_TERMS`]).
    terms: usize,
}

fn error(column: usize, kind: FilterErrorKind) -> FilterError {
    FilterError { column, kind }
}

fn expected(expected: &'static str, found: &Token<'_>) -> FilterError {
    error(
        found.column,
        FilterErrorKind::Expected {
            expected,
            found: found.describe(),
        },
    )
}

/// Checks `name` against `ATTRNAME = (ALPHA / "$") *(ALPHA / DIGIT / "-" / "_" / "$")`.
fn attr_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("an attribute name is empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '$') => {
            Some("an attribute name must start with a letter or '$'")
        }
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$')) => {
            Some("an attribute name may only contain letters, digits, '-', '_' and '$'")
        }
        _ => None,
    }
}

/// Splits a word into `[schema ":"] attr ["." sub_attr]`. The schema URN is everything
/// up to the last ':' (URNs contain dots, as in `…:enterprise:2.0:User:department`).
fn attr_path(token: &Token<'_>) -> Result<AttrPath, FilterError> {
    let text = token.text;
    let invalid = |reason| {
        let path = text.to_owned();
        error(
            token.column,
            FilterErrorKind::InvalidAttrPath { path, reason },
        )
    };
    let (schema, rest) = match text.rsplit_once(':') {
        Some((schema, rest)) => {
            if !schema.contains(':') {
                return Err(invalid(
                    "a schema URI needs a scheme, as in urn:…:attribute",
                ));
            }
            if schema.split(':').any(str::is_empty) {
                return Err(invalid("the schema URI has an empty segment"));
            }
            if !schema.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Err(invalid("a schema URI must start with a letter"));
            }
            (Some(schema.to_owned()), rest)
        }
        None => (None, text),
    };
    let (attr, sub_attr) = match rest.split_once('.') {
        Some((_, sub)) if sub.contains('.') => {
            return Err(invalid("only one sub-attribute level is allowed"));
        }
        Some((attr, sub)) => (attr, Some(sub)),
        None => (rest, None),
    };
    if let Some(problem) = attr_name_problem(attr).or(sub_attr.and_then(attr_name_problem)) {
        return Err(invalid(problem));
    }
    Ok(AttrPath {
        schema,
        attr: attr.to_owned(),
        sub_attr: sub_attr.map(str::to_owned),
    })
}

impl<'a> Parser<'a> {
    /// Checks the input's length and starts reading it.
    pub fn new(input: &'a str) -> Result<Self, FilterError> {
        if input.len() > MAX_INPUT_BYTES {
            let column = input
                .char_indices()
                .take_while(|(i, _)| *i < MAX_INPUT_BYTES)
                .count()
                + 1;
            let kind = FilterErrorKind::TooLong { len: input.len() };
            return Err(error(column, kind));
        }
        Ok(Self {
            lexer: Lexer::new(input),
            peeked: None,
            terms: 0,
        })
    }

    fn peek(&mut self) -> Result<&Token<'a>, FilterError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token<'a>, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn ensure_not_empty(&mut self, what: &'static str) -> Result<(), FilterError> {
        if self.peek()?.kind == TokKind::Eof {
            return Err(error(1, FilterErrorKind::Empty { what }));
        }
        Ok(())
    }

    /// Parses the whole input as a filter.
    pub fn filter(mut self) -> Result<Filter, FilterError> {
        self.ensure_not_empty("filter")?;
        let filter = self.or_expr(0, false)?;
        let token = self.next()?;
        match token.kind {
            TokKind::Eof => Ok(filter),
            TokKind::RParen => Err(error(token.column, FilterErrorKind::Unmatched(')'))),
            TokKind::RBracket => Err(error(token.column, FilterErrorKind::Unmatched(']'))),
            _ => Err(expected("\"and\", \"or\" or end of input", &token)),
        }
    }

    /// Parses the whole input as a PATCH path.
    pub fn path(mut self) -> Result<Path, FilterError> {
        self.ensure_not_empty("path")?;
        let token = self.next()?;
        if token.kind != TokKind::Word {
            return Err(expected("an attribute path", &token));
        }
        let attr = attr_path(&token)?;
        let token = self.next()?;
        let filter = match token.kind {
            TokKind::Eof => {
                return Ok(Path {
                    attr,
                    filter: None,
                    sub_attr: None,
                });
            }
            TokKind::LBracket => self.value_filter(0, &token)?,
            _ => return Err(expected("\"[\" or end of input", &token)),
        };
        let token = self.next()?;
        let sub_attr = match token.kind {
            TokKind::Eof => None,
            TokKind::Dot => Some(self.sub_attr_after_bracket()?),
            _ => {
                return Err(expected(
                    "\".\" and a sub-attribute, or end of input",
                    &token,
                ));
            }
        };
        let token = self.next()?;
        if token.kind != TokKind::Eof {
            return Err(expected("end of input", &token));
        }
        Ok(Path {
            attr,
            filter: Some(filter),
            sub_attr,
        })
    }

    /// The name after `].` in a PATCH path.
    fn sub_attr_after_bracket(&mut self) -> Result<String, FilterError> {
        let token = self.next()?;
        if token.kind != TokKind::Word || token.space_before {
            return Err(expected("a sub-attribute name right after \".\"", &token));
        }
        if let Some(reason) = attr_name_problem(token.text) {
            let path = token.text.to_owned();
            let kind = FilterErrorKind::InvalidAttrPath { path, reason };
            return Err(error(token.column, kind));
        }
        Ok(token.text.to_owned())
    }

    /// One more nesting level, opened at `column`.
    fn deeper(depth: usize, column: usize) -> Result<usize, FilterError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(error(column, FilterErrorKind::TooDeep));
        }
        Ok(depth)
    }

    /// `and_expr *("or" and_expr)`.
    fn or_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        self.chain("or", Filter::Or, Self::and_expr, depth, in_value)
    }

    /// `unary *("and" unary)`.
    fn and_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        self.chain("and", Filter::And, Self::unary, depth, in_value)
    }

    /// `operand *(keyword operand)`, joined left to right (both operators are
    /// left-associative).
    fn chain(
        &mut self,
        keyword: &str,
        join: fn(Box<Filter>, Box<Filter>) -> Filter,
        operand: fn(&mut Self, usize, bool) -> Result<Filter, FilterError>,
        depth: usize,
        in_value: bool,
    ) -> Result<Filter, FilterError> {
        let mut left = operand(self, depth, in_value)?;
        while self.peek()?.is_word(keyword) {
            self.next()?;
            let right = operand(self, depth, in_value)?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// A group, `not ( … )` or an attribute expression.
    fn unary(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        let token = self.next()?;
        match token.kind {
            TokKind::LParen => self.group(depth, in_value, token.column),
            TokKind::Word if token.is_word("not") => {
                let next = self.peek()?;
                if next.kind == TokKind::LParen {
                    self.next()?;
                    let inner = self.group(depth, in_value, token.column)?;
                    return Ok(Filter::Not(Box::new(inner)));
                }
                // An attribute may be called "not"; otherwise "(" is missing.
                let is_attribute = next.kind == TokKind::LBracket
                    || (next.kind == TokKind::Word
                        && (next.is_word("pr") || CompareOp::from_keyword(next.text).is_some()));
                if is_attribute {
                    self.attr_expr(&token, depth, in_value)
                } else {
                    Err(expected("\"(\" after \"not\"", next))
                }
            }
            TokKind::Word => self.attr_expr(&token, depth, in_value),
            _ => Err(expected(EXPECT_EXPRESSION, &token)),
        }
    }

    /// The rest of `( filter )` after the "(" (or `not (`) opened at `column`.
    fn group(
        &mut self,
        depth: usize,
        in_value: bool,
        column: usize,
    ) -> Result<Filter, FilterError> {
        let close = "\"and\", \"or\" or \")\"";
        self.enclosed(depth, in_value, column, ('(', ')'), close)
    }

    /// The filter of a value path and its "]", after the "[" token `open`.
    fn value_filter(&mut self, depth: usize, open: &Token<'_>) -> Result<Filter, FilterError> {
        let close = "\"and\", \"or\" or \"]\"";
        self.enclosed(depth, true, open.column, ('[', ']'), close)
    }

    /// A nested filter and its closing bracket, one level deeper than `depth`, after the
    /// opening bracket at `open_column`; `expect_close` says what may follow the filter.
    fn enclosed(
        &mut self,
        depth: usize,
        in_value: bool,
        open_column: usize,
        (open, close): (char, char),
        expect_close: &'static str,
    ) -> Result<Filter, FilterError> {
        let depth = Self::deeper(depth, open_column)?;
        let inner = self.or_expr(depth, in_value)?;
        let token = self.next()?;
        match token.kind {
            TokKind::RParen if close == ')' => Ok(inner),
            TokKind::RBracket if close == ']' => Ok(inner),
            TokKind::Eof => Err(error(
                token.column,
                FilterErrorKind::Unclosed {
                    open,
                    close,
                    open_column,
                },
            )),
            _ => Err(expected(expect_close, &token)),
        }
    }

    /// `path pr`, `path op value` or `path[filter]`, after the path's word `word`.
    fn attr_expr(
        &mut self,
        word: &Token<'_>,
        depth: usize,
        in_value: bool,
    ) -> Result<Filter, FilterError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(error(word.column, FilterErrorKind::TooManyTerms));
        }
        let path = attr_path(word)?;
        let token = self.next()?;
        if token.kind == TokKind::LBracket {
            if in_value {
                return Err(error(token.column, FilterErrorKind::NestedValuePath));
            }
            let mut filter = self.value_filter(depth, &token)?;
            // `emails[type eq "work"].value eq "x"` is what several IdPs send; it means
            // one element matching both, so it becomes `emails[type eq "work" and value
            // eq "x"]`.
            if self.peek()?.kind == TokKind::Dot {
                self.next()?;
                let sub = AttrPath::new(self.sub_attr_after_bracket()?);
                let token = self.next()?;
                let condition = self.condition(sub, &token)?;
                filter = Filter::And(Box::new(filter), Box::new(condition));
            }
            return Ok(Filter::ValuePath {
                attr: path,
                filter: Box::new(filter),
            });
        }
        self.condition(path, &token)
    }

    /// `pr` or `op value` after `path`, starting at `token`.
    fn condition(&mut self, path: AttrPath, token: &Token<'_>) -> Result<Filter, FilterError> {
        if token.is_word("pr") {
            let after = self.peek()?;
            let is_value = matches!(after.kind, TokKind::Str(_) | TokKind::Num(_))
                || ["true", "false", "null"].iter().any(|k| after.is_word(k));
            if is_value {
                let found = after.describe();
                let kind = FilterErrorKind::PresentWithValue { found };
                return Err(error(after.column, kind));
            }
            return Ok(Filter::Present(path));
        }
        let op = match token.kind {
            TokKind::Word => CompareOp::from_keyword(token.text),
            _ => None,
        };
        let Some(op) = op else {
            return Err(expected(EXPECT_OPERATOR, token));
        };
        let value = self.comp_value(op)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// The JSON literal after operator `op`.
    fn comp_value(&mut self, op: CompareOp) -> Result<CompValue, FilterError> {
        let token = self.next()?;
        let value = match token.kind {
            TokKind::Str(s) => CompValue::String(s),
            TokKind::Num(n) => CompValue::Number(n),
            TokKind::Word if token.is_word("true") => CompValue::Bool(true),
            TokKind::Word if token.is_word("false") => CompValue::Bool(false),
            TokKind::Word if token.is_word("null") => CompValue::Null,
            _ => return Err(expected(EXPECT_VALUE, &token)),
        };
        if op.is_ordering() {
            let unordered = match value {
                CompValue::Bool(true) => Some("true"),
                CompValue::Bool(false) => Some("false"),
                CompValue::Null => Some("null"),
                _ => None,
            };
            if let Some(value) = unordered {
                let op = op.as_str();
                let kind = FilterErrorKind::OrderingWithoutOrder { op, value };
                return Err(error(token.column, kind));
            }
        }
        Ok(value)
    }
}
