//! Property tests: random syntax trees round-trip through `Display` and `parse`, and
//! arbitrary text never panics `parse` (what does parse also round-trips and evaluates).
//!
//! The case count is proptest's default (256), so `PROPTEST_CASES=2000 cargo test`
//! runs a longer search.

use proptest::prelude::*;
use serde_json::json;

use super::{Expr, Node, Part, Path, Pattern, Segment, Transform, parse};

/// A key as a top-level path may spell it: anything but a backquote.
fn key() -> impl Strategy<Value = String> + Clone {
    prop_oneof!["[A-Za-z_$@][A-Za-z0-9_$@-]{0,8}", "[^`]{1,8}"]
}

/// A key inside a template placeholder also avoids `"` and `\`, which the string around
/// it would take as its end or an escape.
fn placeholder_key() -> impl Strategy<Value = String> + Clone {
    prop_oneof!["[A-Za-z_$@][A-Za-z0-9_$@-]{0,8}", "[^`\"\\\\]{1,8}"]
}

fn path(key: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Path> {
    let segment = prop_oneof![
        key.clone().prop_map(Segment::Key),
        any::<usize>().prop_map(Segment::Index),
    ];
    (key, prop::collection::vec(segment, 0..3)).prop_map(|(first, rest)| {
        let mut segments = vec![Segment::Key(first)];
        segments.extend(rest);
        Path(segments)
    })
}

/// Text with the characters that need escaping or doubling well represented.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,8}", "[{}\"\\\\\n\t\u{0}\u{7f}é x]{0,6}"]
}

fn template() -> impl Strategy<Value = Vec<Part>> {
    let part = prop_oneof![
        text().prop_map(Part::Lit),
        path(placeholder_key()).prop_map(Part::Field),
    ];
    prop::collection::vec(part, 0..4).prop_map(|parts| {
        // Canonical: no empty literal, no two literals in a row.
        let mut out: Vec<Part> = Vec::new();
        for part in parts {
            match (part, out.last_mut()) {
                (Part::Lit(text), _) if text.is_empty() => {}
                (Part::Lit(text), Some(Part::Lit(previous))) => previous.push_str(&text),
                (part, _) => out.push(part),
            }
        }
        out
    })
}

fn transform() -> impl Strategy<Value = Transform> {
    let pattern = prop::sample::select(vec![
        "^CC-",
        "^(?i)smtp:",
        "\\d{3}",
        "[\"\\\\]",
        "(?P<user>[^@]+)@.*",
        "",
        "é|\t",
    ])
    .prop_filter_map("valid regex", |p| regex::Regex::new(p).ok().map(Pattern));
    prop_oneof![
        Just(Transform::Lower),
        Just(Transform::Upper),
        Just(Transform::Trim),
        Just(Transform::StripDomain),
        (pattern, text()).prop_map(|(pattern, replacement)| Transform::Replace {
            pattern,
            replacement
        }),
        (
            text().prop_filter("non-empty", |s| !s.is_empty()),
            any::<usize>()
        )
            .prop_map(|(separator, index)| Transform::Split { separator, index }),
        text().prop_map(Transform::Default),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        path(key()).prop_map(Node::Path),
        template().prop_map(Node::Text),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (inner.clone(), prop::collection::vec(transform(), 1..3)).prop_map(
                |(base, mut transforms)| match base {
                    Node::Pipe(base, mut first) => {
                        first.append(&mut transforms);
                        Node::Pipe(base, first)
                    }
                    other => Node::Pipe(Box::new(other), transforms),
                }
            ),
            prop::collection::vec(inner, 2..4).prop_map(|alternatives| {
                let mut flat = Vec::new();
                for alternative in alternatives {
                    match alternative {
                        Node::Fallback(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                Node::Fallback(flat)
            }),
        ]
    })
}

/// Text made of expression fragments, valid and broken, to reach deep into the parser.
fn fragments() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "a",
        "b.c",
        "[0]",
        "[",
        "]",
        "(",
        ")",
        "??",
        "?",
        "|",
        " ",
        "lower",
        "trim",
        "split",
        "(\"/\", 1)",
        "replace(\"(\", \"\")",
        "replace(\"x\", \"$1\")",
        "\"{a}\"",
        "\"{{\"",
        "\"",
        "`urn:x`",
        "`",
        "\\",
        "{",
        "}",
        ",",
        "0",
        "default(\"\")",
        "\"\\u{41}\"",
        "é",
        "\"{`k}`}\"",
        "\\\"",
        ".",
        "-",
    ]);
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

/// The canonical text of a random tree with a few characters deleted or inserted:
/// near misses of valid expressions.
fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        any::<usize>(),
        prop::option::of(prop::sample::select(vec![
            '(', ')', '"', '{', '}', '`', '\\', '|', '?', '[', ']', '.', ',', ' ', 'a', '0',
        ])),
    );
    (node(), prop::collection::vec(edit, 1..4)).prop_map(|(node, edits)| {
        let mut chars: Vec<char> = Expr { node }.to_string().chars().collect();
        for (at, insert) in edits {
            let at = at % (chars.len() + 1);
            match insert {
                Some(c) => chars.insert(at, c),
                None if at < chars.len() => {
                    chars.remove(at);
                }
                None => {}
            }
        }
        chars.into_iter().collect()
    })
}

fn sample_record() -> serde_json::Value {
    json!({
        "a": "Alice@Example.com",
        "b": { "c": ["x/y", 2] },
        "urn:x": true,
        "k}": "brace"
    })
}

proptest! {
    #[test]
    fn random_trees_round_trip(node in node()) {
        let expr = Expr { node };
        let text = expr.to_string();
        prop_assert_eq!(parse(&text), Ok(expr), "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in prop_oneof![".{0,64}", fragments(), mutated()]) {
        if let Ok(expr) = parse(&text) {
            let canonical = expr.to_string();
            prop_assert_eq!(parse(&canonical), Ok(expr.clone()), "{} -> {}", text, canonical);
            let _ = expr.eval(&sample_record());
            let _ = expr.paths();
        }
    }
}
