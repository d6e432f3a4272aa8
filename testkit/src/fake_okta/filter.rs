//! Okta's `filter` expressions, as far as the fake needs them: `attr op "value"` clauses
//! joined with `and` / `or` and grouped with parentheses (the `filter` parameters of
//! <https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/> and
//! <https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Group/>).
//! Attributes and operators are checked per listing the way Okta documents them; anything
//! else is the 400 `E0000031` "Invalid search criteria." the caller sends.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cmp(String, Op, String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// Which attributes a listing filters on, and which of them are timestamps (the only ones
/// allowing `gt`, `ge`, `lt`, `le`).
pub struct Allowed {
    pub attributes: &'static [&'static str],
    pub timestamps: &'static [&'static str],
}

pub const USERS: Allowed = Allowed {
    attributes: &[
        "status",
        "lastUpdated",
        "id",
        "profile.login",
        "profile.email",
        "profile.firstName",
        "profile.lastName",
    ],
    timestamps: &["lastUpdated"],
};

pub const GROUPS: Allowed = Allowed {
    attributes: &["id", "type", "lastUpdated", "lastMembershipUpdated"],
    timestamps: &["lastUpdated", "lastMembershipUpdated"],
};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Token::Text(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

/// Parses and checks a filter for a listing.
pub fn parse(text: &str, allowed: &Allowed) -> Result<Expr, String> {
    let tokens = tokens(text)?;
    let mut pos = 0;
    let expr = or_expr(&tokens, &mut pos, allowed)?;
    if pos != tokens.len() {
        return Err(format!("unexpected {:?}", tokens[pos]));
    }
    Ok(expr)
}

fn keyword(tokens: &[Token], pos: usize, word: &str) -> bool {
    matches!(tokens.get(pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn or_expr(tokens: &[Token], pos: &mut usize, allowed: &Allowed) -> Result<Expr, String> {
    let mut left = and_expr(tokens, pos, allowed)?;
    while keyword(tokens, *pos, "or") {
        *pos += 1;
        let right = and_expr(tokens, pos, allowed)?;
        left = Expr::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn and_expr(tokens: &[Token], pos: &mut usize, allowed: &Allowed) -> Result<Expr, String> {
    let mut left = primary(tokens, pos, allowed)?;
    while keyword(tokens, *pos, "and") {
        *pos += 1;
        let right = primary(tokens, pos, allowed)?;
        left = Expr::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn primary(tokens: &[Token], pos: &mut usize, allowed: &Allowed) -> Result<Expr, String> {
    if tokens.get(*pos) == Some(&Token::Open) {
        *pos += 1;
        let inner = or_expr(tokens, pos, allowed)?;
        if tokens.get(*pos) != Some(&Token::Close) {
            return Err("missing )".into());
        }
        *pos += 1;
        return Ok(inner);
    }
    let (Some(Token::Word(attr)), Some(Token::Word(op)), Some(Token::Text(value))) =
        (tokens.get(*pos), tokens.get(*pos + 1), tokens.get(*pos + 2))
    else {
        return Err("expected attribute operator \"value\"".into());
    };
    *pos += 3;
    if !allowed.attributes.contains(&attr.as_str()) {
        return Err(format!("cannot filter on {attr}"));
    }
    let op = match op.to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        other => return Err(format!("unknown operator {other}")),
    };
    let timestamp = allowed.timestamps.contains(&attr.as_str());
    if op != Op::Eq && !timestamp {
        return Err(format!("{attr} allows only eq"));
    }
    if timestamp && okta_timestamp(value).is_none() {
        return Err(format!("{value} is not yyyy-MM-dd'T'HH:mm:ss.SSSZ"));
    }
    Ok(Expr::Cmp(attr.clone(), op, value.clone()))
}

/// A timestamp in exactly Okta's filter format (milliseconds and `Z`).
pub fn okta_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let shape = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Expr {
    /// Whether a record matches; `get` gives an attribute's value as Okta would show it.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(get) && b.matches(get),
            Expr::Or(a, b) => a.matches(get) || b.matches(get),
            Expr::Cmp(attr, op, value) => {
                let Some(actual) = get(attr) else {
                    return false;
                };
                if *op == Op::Eq {
                    return actual == *value;
                }
                let (Some(actual), Some(value)) = (okta_timestamp(&actual), okta_timestamp(value))
                else {
                    return false;
                };
                match op {
                    Op::Gt => actual > value,
                    Op::Ge => actual >= value,
                    Op::Lt => actual < value,
                    Op::Le => actual <= value,
                    Op::Eq => unreachable!("handled above"),
                }
            }
        }
    }
}

#[test]
fn filters_parse_and_match() {
    let expr = parse(
        r#"type eq "OKTA_GROUP" and (lastUpdated gt "2024-01-01T00:00:00.000Z" or lastMembershipUpdated gt "2024-01-01T00:00:00.000Z")"#,
        &GROUPS,
    )
    .unwrap();
    let group = |t: &'static str, updated: &'static str| {
        move |attr: &str| match attr {
            "type" => Some(t.to_string()),
            "lastUpdated" => Some(updated.to_string()),
            "lastMembershipUpdated" => Some("2023-01-01T00:00:00.000Z".to_string()),
            _ => None,
        }
    };
    assert!(expr.matches(&group("OKTA_GROUP", "2024-06-01T00:00:00.000Z")));
    assert!(!expr.matches(&group("APP_GROUP", "2024-06-01T00:00:00.000Z")));
    assert!(!expr.matches(&group("OKTA_GROUP", "2023-06-01T00:00:00.000Z")));
    assert!(parse(r#"status gt "ACTIVE""#, &USERS).is_err());
    assert!(parse(r#"lastUpdated gt "2024-01-01T00:00:00Z""#, &USERS).is_err());
    assert!(parse(r#"profile.department eq "x""#, &USERS).is_err());
    assert!(parse(r#"(status eq "ACTIVE""#, &USERS).is_err());
}
