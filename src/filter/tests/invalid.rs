//! Table tests for invalid filters (each with its exact message and column), the nesting
//! and length caps, and PATCH paths, valid and invalid.

use super::super::*;
use super::ENT;

/// (input, exact error message)
const INVALID: &[(&str, &str)] = &[
    ("", "column 1: the filter is empty"),
    (" \t ", "column 1: the filter is empty"),
    (
        r#"userName equals "x""#,
        r#"column 10: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found "equals""#,
    ),
    (
        "userName",
        "column 9: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found end of input",
    ),
    (
        r#"userName eq "x"#,
        r#"column 13: unterminated string (no closing '"')"#,
    ),
    (
        r#"userName eq "x" garbage"#,
        r#"column 17: expected "and", "or" or end of input, found "garbage""#,
    ),
    (
        r#"title pr "x""#,
        r#"column 10: "pr" takes no value, found the string "x""#,
    ),
    (
        "title pr true",
        r#"column 10: "pr" takes no value, found "true""#,
    ),
    (
        "userName eq",
        r#"column 12: expected a value (a "string", a number, true, false or null), found end of input"#,
    ),
    (
        "userName eq and title pr",
        r#"column 13: expected a value (a "string", a number, true, false or null), found "and""#,
    ),
    (
        "userName eq bjensen",
        r#"column 13: expected a value (a "string", a number, true, false or null), found "bjensen""#,
    ),
    (
        "active gt true",
        r#"column 11: "gt" cannot compare with true; use a string, number or date-time"#,
    ),
    (
        "manager LE null",
        r#"column 12: "le" cannot compare with null; use a string, number or date-time"#,
    ),
    (
        r#"(userName eq "x""#,
        r#"column 17: missing ")" for the "(" at column 1"#,
    ),
    (r#"userName eq "x")"#, r#"column 16: unmatched ")""#),
    (
        r#"emails[type eq "work""#,
        r#"column 22: missing "]" for the "[" at column 7"#,
    ),
    (r#"emails[type eq "work"]]"#, r#"column 23: unmatched "]""#),
    (
        r#"emails[type eq "work"].value"#,
        r#"column 29: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found end of input"#,
    ),
    (
        r#"emails[type eq "work"]. value eq "x""#,
        r#"column 25: expected a sub-attribute name right after ".", found "value""#,
    ),
    (
        r#"emails[type eq "work"].value[type pr]"#,
        r#"column 29: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found "[""#,
    ),
    (
        "emails[type[value pr]]",
        "column 12: value paths cannot be nested inside a value path",
    ),
    (
        "not title pr",
        r#"column 5: expected "(" after "not", found "title""#,
    ),
    (
        r#"userName eq "a\x""#,
        r#"column 15: invalid escape "\\x" in string (use \" \\ \/ \b \f \n \r \t or \uXXXX)"#,
    ),
    (
        r#"userName eq "\ud800""#,
        r#"column 14: invalid unicode escape "\\ud800\"" in string"#,
    ),
    (
        r#"userName eq "\u12""#,
        r#"column 14: invalid unicode escape "\\u12" in string"#,
    ),
    (
        "userName eq 01",
        r#"column 13: invalid number "01" (a JSON number such as -12, 3.5 or 1e3 is expected)"#,
    ),
    (
        "loginCount eq 1and title pr",
        r#"column 15: invalid number "1and" (a JSON number such as -12, 3.5 or 1e3 is expected)"#,
    ),
    (
        "x eq 1e400",
        r#"column 6: invalid number "1e400" (a JSON number such as -12, 3.5 or 1e3 is expected)"#,
    ),
    (
        "name.givenName.x pr",
        r#"column 1: invalid attribute path "name.givenName.x": only one sub-attribute level is allowed"#,
    ),
    (
        "name.1st pr",
        r#"column 1: invalid attribute path "name.1st": an attribute name must start with a letter or '$'"#,
    ),
    (
        "foo:bar pr",
        r#"column 1: invalid attribute path "foo:bar": a schema URI needs a scheme, as in urn:…:attribute"#,
    ),
    (
        "urn:a::b pr",
        r#"column 1: invalid attribute path "urn:a::b": the schema URI has an empty segment"#,
    ),
    (
        "urn:ietf:params:scim:schemas:core:2.0:User: pr",
        r#"column 1: invalid attribute path "urn:ietf:params:scim:schemas:core:2.0:User:": an attribute name is empty"#,
    ),
    (
        r#"userName eq "x" and"#,
        r#"column 20: expected an attribute path, "not" or "(", found end of input"#,
    ),
    (
        "()",
        r#"column 2: expected an attribute path, "not" or "(", found ")""#,
    ),
    (
        "emails[]",
        r#"column 8: expected an attribute path, "not" or "(", found "]""#,
    ),
    (
        ".value pr",
        r#"column 1: expected an attribute path, "not" or "(", found ".""#,
    ),
    (r#"userName = "x""#, "column 10: unexpected character '='"),
    (
        r#"userName eq "a"b"#,
        r#"column 16: expected "and", "or" or end of input, found "b""#,
    ),
    (
        "userName eq \"line\nbreak\"",
        "column 18: control character U+000A must be escaped in a string",
    ),
    (
        r#"(title pr]"#,
        r#"column 10: expected "and", "or" or ")", found "]""#,
    ),
    (r#"émails pr"#, "column 1: unexpected character 'é'"),
];

#[test]
fn invalid_filters_report_column_and_expectation() {
    assert!(INVALID.len() >= 25);
    for &(input, message) in INVALID {
        match parse_filter(input) {
            Ok(filter) => panic!("{input:?} parsed as {filter}"),
            Err(e) => assert_eq!(e.to_string(), message, "error for {input:?}"),
        }
    }
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}title pr{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn nesting_is_capped_at_max_depth() {
    assert!(parse_filter(&nested(MAX_DEPTH, "(", ")")).is_ok());
    assert!(parse_filter(&nested(MAX_DEPTH, "not (", ")")).is_ok());
    let err = parse_filter(&nested(MAX_DEPTH + 1, "(", ")")).err();
    let message = "column 65: nesting is deeper than 64 levels (parentheses, not, value paths)";
    assert_eq!(err.map(|e| e.to_string()).as_deref(), Some(message));
    let err = parse_filter(&nested(MAX_DEPTH + 1, "not (", ")")).err();
    assert_eq!(err.map(|e| e.column), Some(5 * 64 + 1));
    // A value path counts as a level too.
    let deep = format!(
        "{}e[title pr]{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse_filter(&deep).is_ok());
    let deeper = format!(
        "{}e[title pr]{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    let err = parse_filter(&deeper).err();
    assert_eq!(
        err.map(|e| (e.column, e.kind)),
        Some((66, FilterErrorKind::TooDeep))
    );
    // Long flat chains are not nesting: they print without parentheses, and the longest
    // ones accepted print, compare, evaluate and drop without overflowing the stack (the
    // tree is as deep as the chain is long); one term more is refused.
    for op in [" and ", " or "] {
        let chain = vec!["t pr"; MAX_TERMS].join(op);
        assert!(chain.len() <= MAX_INPUT_BYTES);
        let parsed = parse_filter(&chain).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.to_string(), chain);
        assert_eq!(parse_filter(&chain), Ok(parsed.clone()));
        assert!(!parsed.matches(&serde_json::json!({"x": 1})));
        let longer = vec!["t pr"; MAX_TERMS + 1].join(op);
        assert_eq!(
            parse_filter(&longer).err().map(|e| e.kind),
            Some(FilterErrorKind::TooManyTerms)
        );
    }
}

#[test]
fn input_length_is_capped() {
    let ok = format!("title eq \"{}\"", "x".repeat(MAX_INPUT_BYTES - 11));
    assert_eq!(ok.len(), MAX_INPUT_BYTES);
    assert!(parse_filter(&ok).is_ok());
    let long = format!("title eq \"{}\"", "é".repeat(MAX_INPUT_BYTES));
    let err = parse_filter(&long).err();
    let message = format!(
        "column {}: the input is {} bytes long; the limit is 8192",
        10 + (MAX_INPUT_BYTES - 10) / 2 + 1,
        long.len()
    );
    assert_eq!(err.map(|e| e.to_string()), Some(message));
}

#[test]
fn patch_paths() {
    let work = parse_filter(r#"type eq "work""#).ok();
    let cases: &[(&str, Path)] = &[
        (
            "name.givenName",
            Path {
                attr: AttrPath::new("name").with_sub_attr("givenName"),
                filter: None,
                sub_attr: None,
            },
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            Path {
                attr: AttrPath::new("manager").with_schema(ENT),
                filter: None,
                sub_attr: None,
            },
        ),
        (
            r#"emails[type eq "work"]"#,
            Path {
                attr: AttrPath::new("emails"),
                filter: work.clone(),
                sub_attr: None,
            },
        ),
        (
            r#"emails[type eq "work"].value"#,
            Path {
                attr: AttrPath::new("emails"),
                filter: work,
                sub_attr: Some("value".to_owned()),
            },
        ),
    ];
    for (input, expected) in cases {
        let parsed = parse_path(input);
        assert_eq!(parsed.as_ref(), Ok(expected), "{input}");
        assert_eq!(expected.to_string(), *input);
    }
    let invalid = [
        ("", "column 1: the path is empty"),
        (
            r#"userName eq "x""#,
            r#"column 10: expected "[" or end of input, found "eq""#,
        ),
        (
            r#"emails[type eq "work"] x"#,
            r#"column 24: expected "." and a sub-attribute, or end of input, found "x""#,
        ),
        (
            r#"emails[type eq "work"]. value"#,
            r#"column 25: expected a sub-attribute name right after ".", found "value""#,
        ),
        (
            r#"emails[type eq "work"].value.x"#,
            r#"column 24: invalid attribute path "value.x": an attribute name may only contain letters, digits, '-', '_' and '$'"#,
        ),
        (
            r#"emails[type eq "work"].value)"#,
            r#"column 29: expected end of input, found ")""#,
        ),
        (
            r#""x""#,
            r#"column 1: expected an attribute path, found the string "x""#,
        ),
    ];
    for (input, message) in invalid {
        let err = parse_path(input).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(message), "{input}");
    }
}
