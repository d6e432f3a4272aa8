//! Property tests: random ASTs print to text that parses back to the same AST, and no
//! input (arbitrary characters, or a soup of filter tokens) panics the parsers; whatever
//! parses also round-trips and evaluates without panicking. The case count is
//! proptest's default (256, or `PROPTEST_CASES`).

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z$][A-Za-z0-9_$-]{0,8}",
        // Keywords are valid attribute names too; the parser decides by position.
        prop::sample::select(vec![
            "not", "and", "or", "pr", "eq", "true", "null", "NOT", "Or"
        ])
        .prop_map(str::to_owned),
    ]
}

fn schema() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("urn:ietf:params:scim:schemas:core:2.0:User".to_owned()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned()),
        "urn(:[A-Za-z0-9][A-Za-z0-9.$_-]{0,6}){1,4}",
    ]
}

fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::weighted(0.2, schema()),
        attr_name(),
        prop::option::weighted(0.3, attr_name()),
    )
        .prop_map(|(schema, attr, sub_attr)| AttrPath {
            schema,
            attr,
            sub_attr,
        })
}

fn string_value() -> impl Strategy<Value = String> {
    let char = prop_oneof![
        4 => any::<char>(),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('é'),
        1 => Just('\u{1F600}'),
        1 => Just('\n'),
        1 => Just('\u{0}'),
    ];
    prop::collection::vec(char, 0..12).prop_map(String::from_iter)
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        string_value().prop_map(CompValue::String),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| {
            serde_json::Number::from_f64(f).map(CompValue::Number)
        }),
    ]
}

fn leaf() -> impl Strategy<Value = Filter> {
    let compare = (
        attr_path(),
        prop::sample::select(CompareOp::ALL.to_vec()),
        comp_value(),
    )
        .prop_map(|(path, op, value)| {
            // gt/ge/lt/le with a boolean or null is a parse error; use eq there.
            let op = match value {
                CompValue::Bool(_) | CompValue::Null if op.is_ordering() => CompareOp::Eq,
                _ => op,
            };
            Filter::Compare { path, op, value }
        });
    prop_oneof![attr_path().prop_map(Filter::Present), compare]
}

fn combine(inner: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    prop_oneof![
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
        inner.prop_map(|f| Filter::Not(Box::new(f))),
    ]
}

/// A filter without value paths: what may appear inside brackets.
fn value_filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(4, 24, 2, |inner| combine(inner.boxed()))
}

fn filter() -> impl Strategy<Value = Filter> {
    let value_path = (attr_path(), value_filter()).prop_map(|(attr, filter)| Filter::ValuePath {
        attr,
        filter: Box::new(filter),
    });
    prop_oneof![3 => leaf(), 1 => value_path]
        .prop_recursive(5, 48, 2, |inner| combine(inner.boxed()))
}

fn path() -> impl Strategy<Value = Path> {
    prop_oneof![
        attr_path().prop_map(|attr| Path {
            attr,
            filter: None,
            sub_attr: None,
        }),
        (attr_path(), value_filter(), prop::option::of(attr_name())).prop_map(
            |(attr, filter, sub_attr)| Path {
                attr,
                filter: Some(filter),
                sub_attr,
            }
        ),
    ]
}

fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "userName",
        "emails",
        "name.givenName",
        "urn:a:b:c",
        "not",
        "NOT",
        "and",
        "or",
        "pr",
        "eq",
        "GT",
        "co",
        "true",
        "null",
        "\"x\"",
        "\"\\u00e9\"",
        "\"\\",
        "\"",
        "\\u",
        "(",
        ")",
        "[",
        "]",
        ".",
        ":",
        "1",
        "-2.5e3",
        "-",
        "01",
        " ",
        " ",
        "\t",
        "é",
        "$ref",
        "=",
    ])
}

/// Filter-ish text: tokens, fragments and stray characters glued with or without spaces.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|tokens| tokens.concat())
}

/// The text of a valid filter after a few random edits: a character deleted, a fragment
/// inserted, or the rest cut off. Many of these still parse, the others fail near
/// otherwise valid states.
fn mutated_filter() -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), 0..3u8, fragment());
    (filter(), prop::collection::vec(edit, 0..3)).prop_map(|(filter, edits)| {
        let mut chars: Vec<char> = filter.to_string().chars().collect();
        for (at, kind, fragment) in edits {
            let i = at.index(chars.len() + 1);
            match kind {
                0 if i < chars.len() => {
                    chars.remove(i);
                }
                1 => {
                    chars.splice(i..i, fragment.chars());
                }
                _ => chars.truncate(i),
            }
        }
        String::from_iter(chars)
    })
}

/// Parses arbitrary text; whatever parses must print, re-parse to itself and evaluate.
fn check_no_panic(input: &str) -> Result<(), TestCaseError> {
    if let Ok(filter) = parse_filter(input) {
        prop_assert_eq!(parse_filter(&filter.to_string()), Ok(filter.clone()));
        let record = json!({"userName": "x", "emails": [{"value": "a", "type": "work"}]});
        let _ = filter.matches(&record);
    }
    if let Ok(path) = parse_path(input) {
        prop_assert_eq!(parse_path(&path.to_string()), Ok(path));
    }
    Ok(())
}

proptest! {
    #[test]
    fn printed_filters_parse_back_to_the_same_ast(filter in filter()) {
        let text = filter.to_string();
        prop_assert_eq!(parse_filter(&text), Ok(filter), "text: {}", text);
    }

    #[test]
    fn printed_paths_parse_back_to_the_same_path(path in path()) {
        let text = path.to_string();
        prop_assert_eq!(parse_path(&text), Ok(path), "text: {}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(input in prop::collection::vec(any::<char>(), 0..200)) {
        check_no_panic(&String::from_iter(input))?;
    }

    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        check_no_panic(&input)?;
    }

    #[test]
    fn mutated_filters_never_panic(input in mutated_filter()) {
        check_no_panic(&input)?;
    }
}
