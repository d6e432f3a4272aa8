//! The recursive-descent parser of mapping expressions:
//!
//! ```text
//! expr      := pipeline ( "??" pipeline )*
//! pipeline  := primary ( "|" transform )*
//! primary   := path | string | "(" expr ")"
//! path      := key ( "." key | "[" number "]" )*
//! key       := identifier | `backquoted`
//! transform := identifier ( "(" ( arg ( "," arg )* )? ")" )?
//! arg       := string | number
//! ```
//!
//! Chains are flattened as they are built (see [`Node`]), so the tree is canonical.

use super::lexer::{Tok, Token, lex};
use super::template::{literal, template};
use super::{ExprError, MAX_DEPTH, MAX_LEN, Node, Path, Pattern, Segment, Transform};

const KNOWN_TRANSFORMS: &str = "lower, upper, trim, strip_domain, replace, split, default";

static END: Token = Token {
    tok: Tok::End,
    column: 1,
};

pub(super) fn parse(text: &str) -> Result<Node, ExprError> {
    if text.len() > MAX_LEN {
        let column = text
            .char_indices()
            .take_while(|(byte, c)| byte + c.len_utf8() <= MAX_LEN)
            .count()
            + 1;
        return Err(ExprError::new(
            column,
            format!("expression is longer than {MAX_LEN} bytes"),
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let tokens = lex(&chars, 1)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    if parser.peek().tok == Tok::End {
        return Err(ExprError::new(1, "empty expression"));
    }
    let node = parser.expr()?;
    let next = parser.peek();
    match &next.tok {
        Tok::End => Ok(node),
        Tok::RParen => Err(ExprError::new(
            next.column,
            "unbalanced `)` (no `(` to close)",
        )),
        other => Err(ExprError::new(
            next.column,
            format!(
                "expected `|`, `??` or end of expression, found {}",
                other.describe()
            ),
        )),
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    /// Open parentheses around the current position.
    depth: usize,
}

/// A transform argument.
enum Arg {
    Str(String),
    Number(usize),
}

/// A transform call's arguments (with their columns), checked against its signature.
struct Call<'n> {
    name: &'n str,
    /// How the call is written, for error messages.
    usage: &'static str,
    args: Vec<(Arg, usize)>,
    /// The column of the closing `)`.
    close: usize,
}

impl Call<'_> {
    fn arity(&self, count: usize) -> Result<(), ExprError> {
        let (name, usage) = (self.name, self.usage);
        let plural = if count == 1 { "" } else { "s" };
        match self.args.get(count) {
            Some((_, column)) => Err(ExprError::new(
                *column,
                format!("`{name}` takes {count} argument{plural}: {usage}"),
            )),
            None if self.args.len() < count => Err(ExprError::new(
                self.close,
                format!("`{name}` needs {count} argument{plural}: {usage}"),
            )),
            None => Ok(()),
        }
    }

    fn string(&self, i: usize) -> Result<(String, usize), ExprError> {
        match self.args.get(i) {
            Some((Arg::Str(text), column)) => Ok((text.clone(), *column)),
            other => Err(self.wrong_type(i, other, "a string")),
        }
    }

    fn number(&self, i: usize) -> Result<usize, ExprError> {
        match self.args.get(i) {
            Some((Arg::Number(n), _)) => Ok(*n),
            other => Err(self.wrong_type(i, other, "a number")),
        }
    }

    fn wrong_type(&self, i: usize, arg: Option<&(Arg, usize)>, what: &str) -> ExprError {
        let column = arg.map_or(self.close, |(_, column)| *column);
        let (name, usage) = (self.name, self.usage);
        ExprError::new(
            column,
            format!("argument {} of `{name}` must be {what}: {usage}", i + 1),
        )
    }
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .unwrap_or(&END)
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn expr(&mut self) -> Result<Node, ExprError> {
        let first = self.pipeline()?;
        if self.peek().tok != Tok::Fallback {
            return Ok(first);
        }
        let mut alternatives = Vec::new();
        push_alternative(&mut alternatives, first);
        while self.peek().tok == Tok::Fallback {
            self.bump();
            let next = self.pipeline()?;
            push_alternative(&mut alternatives, next);
        }
        Ok(Node::Fallback(alternatives))
    }

    fn pipeline(&mut self) -> Result<Node, ExprError> {
        let base = self.primary()?;
        let mut transforms = Vec::new();
        while self.peek().tok == Tok::Pipe {
            self.bump();
            transforms.push(self.transform()?);
        }
        Ok(match base {
            _ if transforms.is_empty() => base,
            Node::Pipe(inner, mut first) => {
                first.append(&mut transforms);
                Node::Pipe(inner, first)
            }
            other => Node::Pipe(Box::new(other), transforms),
        })
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let token = self.peek();
        match &token.tok {
            Tok::Ident(_) | Tok::Backquoted(_) => Ok(Node::Path(self.path()?)),
            Tok::Str(raw) => {
                self.bump();
                Ok(Node::Text(template(raw, token.column + 1)?))
            }
            Tok::LParen => {
                if self.depth >= MAX_DEPTH {
                    return Err(ExprError::new(
                        token.column,
                        format!("parentheses nested deeper than {MAX_DEPTH}"),
                    ));
                }
                self.depth += 1;
                self.bump();
                let inner = self.expr()?;
                let close = self.peek();
                if close.tok != Tok::RParen {
                    return Err(ExprError::new(
                        close.column,
                        format!(
                            "expected `)` to close the `(` at column {}, found {}",
                            token.column,
                            close.tok.describe()
                        ),
                    ));
                }
                self.bump();
                self.depth -= 1;
                Ok(inner)
            }
            other => Err(ExprError::new(
                token.column,
                format!(
                    "expected a path, a string or `(`, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn path(&mut self) -> Result<Path, ExprError> {
        let mut segments = vec![Segment::Key(self.key("expected a path")?)];
        loop {
            match self.peek().tok {
                Tok::Dot => {
                    self.bump();
                    segments.push(Segment::Key(self.key("expected a key after `.`")?));
                }
                Tok::LBracket => {
                    self.bump();
                    let token = self.peek();
                    let Tok::Number(index) = token.tok else {
                        return Err(ExprError::new(
                            token.column,
                            format!(
                                "expected an array index (a number) after `[`, found {}",
                                token.tok.describe()
                            ),
                        ));
                    };
                    self.bump();
                    self.expect(&Tok::RBracket)?;
                    segments.push(Segment::Index(index));
                }
                _ => return Ok(Path(segments)),
            }
        }
    }

    fn key(&mut self, expected: &str) -> Result<String, ExprError> {
        let token = self.peek();
        match &token.tok {
            Tok::Ident(key) | Tok::Backquoted(key) => {
                self.bump();
                Ok(key.clone())
            }
            other => Err(ExprError::new(
                token.column,
                format!("{expected}, found {}", other.describe()),
            )),
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), ExprError> {
        let token = self.peek();
        if token.tok != *tok {
            return Err(ExprError::new(
                token.column,
                format!(
                    "expected {}, found {}",
                    tok.describe(),
                    token.tok.describe()
                ),
            ));
        }
        self.bump();
        Ok(())
    }

    fn transform(&mut self) -> Result<Transform, ExprError> {
        let token = self.peek();
        let Tok::Ident(name) = &token.tok else {
            return Err(ExprError::new(
                token.column,
                format!(
                    "expected a transform after `|`, found {}",
                    token.tok.describe()
                ),
            ));
        };
        let name = name.as_str();
        let simple = match name {
            "lower" => Some(Transform::Lower),
            "upper" => Some(Transform::Upper),
            "trim" => Some(Transform::Trim),
            "strip_domain" => Some(Transform::StripDomain),
            _ => None,
        };
        let usage = match name {
            _ if simple.is_some() => "",
            "replace" => "replace(\"pattern\", \"replacement\")",
            "split" => "split(\"separator\", index)",
            "default" => "default(\"text\")",
            _ => {
                return Err(ExprError::new(
                    token.column,
                    format!("unknown transform `{name}` (known: {KNOWN_TRANSFORMS})"),
                ));
            }
        };
        self.bump();
        let next = self.peek();
        if let Some(transform) = simple {
            if next.tok == Tok::LParen {
                return Err(ExprError::new(
                    next.column,
                    format!("`{name}` takes no arguments"),
                ));
            }
            return Ok(transform);
        }
        if next.tok != Tok::LParen {
            return Err(ExprError::new(
                token.column,
                format!("`{name}` needs arguments: {usage}"),
            ));
        }
        let (args, close) = self.args()?;
        let call = Call {
            name,
            usage,
            args,
            close,
        };
        match name {
            "replace" => {
                call.arity(2)?;
                let (pattern, column) = call.string(0)?;
                let (replacement, _) = call.string(1)?;
                let regex = regex::Regex::new(&pattern)
                    .map_err(|e| ExprError::new(column, regex_message(&e)))?;
                Ok(Transform::Replace {
                    pattern: Pattern(regex),
                    replacement,
                })
            }
            "split" => {
                call.arity(2)?;
                let (separator, column) = call.string(0)?;
                let index = call.number(1)?;
                if separator.is_empty() {
                    return Err(ExprError::new(
                        column,
                        "`split` separator must not be empty",
                    ));
                }
                Ok(Transform::Split { separator, index })
            }
            _ => {
                call.arity(1)?;
                Ok(Transform::Default(call.string(0)?.0))
            }
        }
    }

    /// `( arg, ... )`, the current token being the `(`: the arguments with their
    /// columns, and the column of the `)`.
    fn args(&mut self) -> Result<(Vec<(Arg, usize)>, usize), ExprError> {
        self.bump();
        let mut args = Vec::new();
        let token = self.peek();
        if token.tok == Tok::RParen {
            self.bump();
            return Ok((args, token.column));
        }
        loop {
            let token = self.peek();
            let arg = match &token.tok {
                Tok::Str(raw) => Arg::Str(literal(raw, token.column + 1)?),
                Tok::Number(n) => Arg::Number(*n),
                other => {
                    return Err(ExprError::new(
                        token.column,
                        format!(
                            "expected a string or a number as argument, found {}",
                            other.describe()
                        ),
                    ));
                }
            };
            args.push((arg, token.column));
            self.bump();
            let token = self.peek();
            match token.tok {
                Tok::Comma => self.bump(),
                Tok::RParen => {
                    self.bump();
                    return Ok((args, token.column));
                }
                _ => {
                    return Err(ExprError::new(
                        token.column,
                        format!(
                            "expected `,` or `)` after an argument, found {}",
                            token.tok.describe()
                        ),
                    ));
                }
            }
        }
    }
}

fn push_alternative(alternatives: &mut Vec<Node>, node: Node) {
    match node {
        Node::Fallback(mut inner) => alternatives.append(&mut inner),
        other => alternatives.push(other),
    }
}

/// One line for a regex compile error (the crate's syntax errors span several lines).
fn regex_message(error: &regex::Error) -> String {
    let detail = match error {
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .or_else(|| text.lines().last())
            .unwrap_or("syntax error")
            .to_string(),
        other => other.to_string(),
    };
    format!("invalid regex: {detail}")
}

/// The path inside `{...}`; `column` is the column of `inner[0]`, `open` of the `{`.
pub(super) fn placeholder(inner: &[char], column: usize, open: usize) -> Result<Path, ExprError> {
    let tokens = lex(inner, column)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let first = parser.peek();
    match first.tok {
        Tok::End => return Err(ExprError::new(open, "empty placeholder `{}`")),
        Tok::Ident(_) | Tok::Backquoted(_) => {}
        _ => {
            return Err(ExprError::new(
                first.column,
                "a placeholder holds only a path (write transforms after the string)",
            ));
        }
    }
    let path = parser.path()?;
    let rest = parser.peek();
    if rest.tok != Tok::End {
        return Err(ExprError::new(
            rest.column,
            "a placeholder holds only a path (write transforms after the string)",
        ));
    }
    Ok(path)
}
