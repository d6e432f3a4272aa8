//! Table tests of mapping expressions: evaluation against a Microsoft Graph-like and an
//! Okta-like user, exact parse errors, canonical text, `paths` and the limits.

use serde_json::{Value, json};

use super::{ExprError, MAX_DEPTH, parse};

fn graph_user() -> Value {
    json!({
        "id": "8f2a1c3e-5b7d-4e9f-a1b2-c3d4e5f60718",
        "userPrincipalName": "Alice.Smith@Contoso.com",
        "mail": null,
        "givenName": "Alice",
        "surname": "Smith",
        "displayName": "Alice Smith",
        "jobTitle": "  Senior Engineer  ",
        "department": "",
        "officeLocation": "EMEA/London/Building 2",
        "employeeNumber": 10042,
        "accountEnabled": true,
        "proxyAddresses": ["SMTP:Alice.Smith@contoso.com", "smtp:asmith@contoso.onmicrosoft.com"],
        "businessPhones": [],
        "otherMails": ["alice.smith@gmail.com"],
        "onPremisesExtensionAttributes": {
            "extensionAttribute1": "CC-4711",
            "extensionAttribute2": null,
            "extensionAttribute3": "   "
        },
        "manager": { "id": "0b9e", "displayName": "Bob Jones" },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "R&D",
            "costCenter": "4711"
        }
    })
}

fn okta_user() -> Value {
    json!({
        "id": "00ub0oNGTSWTBKOLGLNR",
        "status": "ACTIVE",
        "profile": {
            "login": "bob.jones@example.org",
            "email": "Bob.Jones@Example.org",
            "firstName": "Bob",
            "lastName": "Jones",
            "secondEmail": null,
            "costCenter": "CC-12",
            "department": "Sales/EMEA"
        },
        "credentials": { "provider": { "type": "OKTA", "name": "OKTA" } }
    })
}

const URN: &str = "`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`";

#[test]
fn evaluates_against_graph_and_okta_users() {
    let graph = graph_user();
    let okta = okta_user();
    let urn_department = format!("{URN}.department");
    let urn_template = format!("\"{{{URN}.costCenter}}-{{surname}}\"");
    let cases: Vec<(&str, &Value, Option<&str>)> = vec![
        (
            "userPrincipalName | lower",
            &graph,
            Some("alice.smith@contoso.com"),
        ),
        (
            "mail ?? userPrincipalName | lower",
            &graph,
            Some("alice.smith@contoso.com"),
        ),
        (
            "displayName ?? \"{givenName} {surname}\"",
            &graph,
            Some("Alice Smith"),
        ),
        (
            "nickname ?? \"{givenName} {surname}\"",
            &graph,
            Some("Alice Smith"),
        ),
        (
            "\"{givenName}.{surname}@example.com\" | lower",
            &graph,
            Some("alice.smith@example.com"),
        ),
        ("\"{givenName} {middleName}\"", &graph, None),
        ("\"{middleName}\" ?? givenName", &graph, Some("Alice")),
        ("givenName | trim", &graph, Some("Alice")),
        ("jobTitle | trim", &graph, Some("Senior Engineer")),
        ("department ?? \"Unassigned\"", &graph, Some("Unassigned")),
        ("department", &graph, None),
        (
            "userPrincipalName | strip_domain | lower",
            &graph,
            Some("alice.smith"),
        ),
        (
            "onPremisesExtensionAttributes.extensionAttribute1 | replace(\"^CC-\", \"\")",
            &graph,
            Some("4711"),
        ),
        (
            "proxyAddresses[0] | replace(\"^(?i)smtp:\", \"\")",
            &graph,
            Some("Alice.Smith@contoso.com"),
        ),
        (
            "proxyAddresses[1] | replace(\"(?i)^smtp:\", \"\")",
            &graph,
            Some("asmith@contoso.onmicrosoft.com"),
        ),
        ("proxyAddresses[5]", &graph, None),
        (
            "proxyAddresses",
            &graph,
            Some("SMTP:Alice.Smith@contoso.com"),
        ),
        ("businessPhones ?? \"n/a\"", &graph, Some("n/a")),
        (
            "officeLocation | split(\"/\", 0) | upper",
            &graph,
            Some("EMEA"),
        ),
        (
            "officeLocation | split(\"/\", 2)",
            &graph,
            Some("Building 2"),
        ),
        (
            "officeLocation | split(\"/\", 3) ?? \"HQ\"",
            &graph,
            Some("HQ"),
        ),
        ("employeeNumber", &graph, Some("10042")),
        ("accountEnabled", &graph, Some("true")),
        (
            "\"{employeeNumber}-{accountEnabled}\"",
            &graph,
            Some("10042-true"),
        ),
        ("manager", &graph, None),
        ("\"{manager}\"", &graph, None),
        ("manager.displayName", &graph, Some("Bob Jones")),
        (&urn_department, &graph, Some("R&D")),
        (&urn_template, &graph, Some("4711-Smith")),
        (
            "USERPRINCIPALNAME | lower",
            &graph,
            Some("alice.smith@contoso.com"),
        ),
        (
            "`userPrincipalName` | upper",
            &graph,
            Some("ALICE.SMITH@CONTOSO.COM"),
        ),
        (
            "onPremisesExtensionAttributes.extensionAttribute2 | default(\"none\")",
            &graph,
            Some("none"),
        ),
        (
            "onPremisesExtensionAttributes.extensionAttribute3 | trim | default(\"blank\")",
            &graph,
            Some("blank"),
        ),
        (
            "(mail ?? userPrincipalName) | lower",
            &graph,
            Some("alice.smith@contoso.com"),
        ),
        (
            "mail | lower ?? otherMails[0]",
            &graph,
            Some("alice.smith@gmail.com"),
        ),
        (
            r#"userPrincipalName | replace("^([^.]+)\\.([^@]+)@.*$", "$2, $1")"#,
            &graph,
            Some("Smith, Alice"),
        ),
        (
            r#"displayName | replace("\\s+", "_") | lower"#,
            &graph,
            Some("alice_smith"),
        ),
        (
            r#"employeeNumber | replace("^", "E-")"#,
            &graph,
            Some("E-10042"),
        ),
        (
            r#"surname | replace("(?i)S", "${0}${0}")"#,
            &graph,
            Some("SSmith"),
        ),
        (
            "\"{{literal}} {givenName}\"",
            &graph,
            Some("{literal} Alice"),
        ),
        (r#""Caf\u{e9}\t{surname}""#, &graph, Some("Café\tSmith")),
        (
            "\"{manager.displayName} <{proxyAddresses[0]}>\"",
            &graph,
            Some("Bob Jones <SMTP:Alice.Smith@contoso.com>"),
        ),
        (
            "userPrincipalName | split(\"@\", 1) | lower",
            &graph,
            Some("contoso.com"),
        ),
        ("userPrincipalName.domain", &graph, None),
        ("proxyAddresses.value", &graph, None),
        ("givenName[0]", &graph, None),
        ("\"static\"", &graph, Some("static")),
        ("\"\"", &graph, None),
        ("\"\" ?? givenName", &graph, Some("Alice")),
        ("mail | default(\"\")", &graph, None),
        ("\"  \" | trim ?? \"fallback\"", &graph, Some("fallback")),
        ("( ( givenName ) )", &graph, Some("Alice")),
        ("givenName|upper??surname", &graph, Some("ALICE")),
        ("profile.login | strip_domain", &okta, Some("bob.jones")),
        (
            "profile.email | lower",
            &okta,
            Some("bob.jones@example.org"),
        ),
        (
            "profile.secondEmail ?? profile.email ?? profile.login",
            &okta,
            Some("Bob.Jones@Example.org"),
        ),
        (
            "\"{profile.firstName} {profile.lastName}\"",
            &okta,
            Some("Bob Jones"),
        ),
        (
            "profile.costCenter | replace(\"^CC-\", \"\")",
            &okta,
            Some("12"),
        ),
        ("Profile.Login", &okta, Some("bob.jones@example.org")),
        (
            "profile.department | split(\"/\", 1) | lower",
            &okta,
            Some("emea"),
        ),
        ("credentials.provider.type | lower", &okta, Some("okta")),
        (
            "userPrincipalName ?? profile.login",
            &okta,
            Some("bob.jones@example.org"),
        ),
    ];
    let mut failures = Vec::new();
    for (text, record, expected) in &cases {
        match parse(text) {
            Ok(expr) => {
                let got = expr.eval(record);
                if got.as_deref() != *expected {
                    failures.push(format!("{text}: got {got:?}, expected {expected:?}"));
                }
            }
            Err(e) => failures.push(format!("{text}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn key_lookup_prefers_the_exact_spelling() {
    let record = json!({ "Mail": "first@x", "mail": "exact@x", "other": "o" });
    let eval = |text: &str| parse(text).ok().and_then(|e| e.eval(&record));
    assert_eq!(eval("mail").as_deref(), Some("exact@x"));
    assert_eq!(eval("Mail").as_deref(), Some("first@x"));
    assert_eq!(eval("MAIL").as_deref(), Some("first@x"));
    assert_eq!(eval("OTHER").as_deref(), Some("o"));
}

#[test]
fn strip_domain_drops_from_the_last_at() {
    let record = json!({ "a": "\"x@y\"@example.com", "b": "no-domain", "c": "@example.com" });
    let eval = |text: &str| parse(text).ok().and_then(|e| e.eval(&record));
    assert_eq!(eval("a | strip_domain").as_deref(), Some("\"x@y\""));
    assert_eq!(eval("b | strip_domain").as_deref(), Some("no-domain"));
    assert_eq!(eval("c | strip_domain"), None);
}

#[test]
fn rejects_invalid_expressions_with_exact_errors() {
    let split_usage = "split(\"separator\", index)";
    let too_deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let too_long = "a".repeat(4097);
    let too_long_wide = "é".repeat(2049);
    let cases: Vec<(&str, usize, String)> = vec![
        ("", 1, "empty expression".into()),
        ("   ", 1, "empty expression".into()),
        ("givenName ?? ", 14, "expected a path, a string or `(`, found end of expression".into()),
        ("a ?? ?? b", 6, "expected a path, a string or `(`, found `??`".into()),
        ("\"abc", 1, "unterminated string (no closing `\"`)".into()),
        ("mail | replace(\"x\\\", \"\")", 23, "unterminated string (no closing `\"`)".into()),
        (
            "mail | lowr",
            8,
            "unknown transform `lowr` (known: lower, upper, trim, strip_domain, replace, split, default)"
                .into(),
        ),
        ("mail | replace(\"(\", \"\")", 16, "invalid regex: unclosed group".into()),
        ("a | replace(\"[a-\", \"\")", 13, "invalid regex: unclosed character class".into()),
        (
            "(mail ?? upn",
            13,
            "expected `)` to close the `(` at column 1, found end of expression".into(),
        ),
        ("mail)", 5, "unbalanced `)` (no `(` to close)".into()),
        ("()", 2, "expected a path, a string or `(`, found `)`".into()),
        (
            "office | split(0, \"/\")",
            16,
            format!("argument 1 of `split` must be a string: {split_usage}"),
        ),
        (
            "office | split(\"/\", \"0\")",
            21,
            format!("argument 2 of `split` must be a number: {split_usage}"),
        ),
        ("office | split(\"/\")", 19, format!("`split` needs 2 arguments: {split_usage}")),
        ("office | split", 10, format!("`split` needs arguments: {split_usage}")),
        ("office | split(\"/\", 0, 1)", 24, format!("`split` takes 2 arguments: {split_usage}")),
        ("a | split(\"\", 0)", 11, "`split` separator must not be empty".into()),
        ("a | split(\"/\" 0)", 15, "expected `,` or `)` after an argument, found number 0".into()),
        (
            "a | default(\"x\", \"y\")",
            18,
            "`default` takes 1 argument: default(\"text\")".into(),
        ),
        (
            "a | replace(\"x\", 1)",
            18,
            "argument 2 of `replace` must be a string: replace(\"pattern\", \"replacement\")".into(),
        ),
        (
            "a | lower | replace(x)",
            21,
            "expected a string or a number as argument, found `x`".into(),
        ),
        ("mail | lower()", 13, "`lower` takes no arguments".into()),
        ("a |", 4, "expected a transform after `|`, found end of expression".into()),
        (
            "\"a\\qb\"",
            3,
            "unknown escape `\\q` (known: \\\" \\\\ \\n \\t \\u{...}; write \\\\ for a backslash, \
             e.g. \\\\d in a regex)"
                .into(),
        ),
        (
            "\"\\u41\"",
            2,
            "invalid unicode escape (expected \\u{...} with 1 to 6 hex digits)".into(),
        ),
        (
            "\"\\u{110000}\"",
            2,
            "invalid unicode escape: 110000 is not a Unicode scalar value".into(),
        ),
        (
            "\"{givenName | lower}\"",
            13,
            "a placeholder holds only a path (write transforms after the string)".into(),
        ),
        ("\"{a\"", 2, "unclosed placeholder `{` (write `{{` for a literal brace)".into()),
        ("\"a}\"", 3, "single `}` in a string (write `}}` for a literal brace)".into()),
        ("\"x{ }\"", 3, "empty placeholder `{}`".into()),
        ("\"{a.}\"", 5, "expected a key after `.`, found end of expression".into()),
        (&too_deep, 33, "parentheses nested deeper than 32".into()),
        ("a ? b", 3, "a single `?` is not an operator (the fallback is `??`)".into()),
        ("a[x]", 3, "expected an array index (a number) after `[`, found `x`".into()),
        ("a[0", 4, "expected `]`, found end of expression".into()),
        ("a.", 3, "expected a key after `.`, found end of expression".into()),
        ("a b", 3, "expected `|`, `??` or end of expression, found `b`".into()),
        ("1", 1, "expected a path, a string or `(`, found number 1".into()),
        ("`abc", 1, "unterminated backquoted key (no closing '`')".into()),
        ("``", 1, "empty backquoted key".into()),
        ("a # b", 3, "unexpected character '#'".into()),
        (
            "a[99999999999999999999999]",
            3,
            "number 99999999999999999999999 is too large".into(),
        ),
        (&too_long, 4097, "expression is longer than 4096 bytes".into()),
        (&too_long_wide, 2049, "expression is longer than 4096 bytes".into()),
    ];
    let mut failures = Vec::new();
    for (text, column, message) in &cases {
        let expected = ExprError {
            column: *column,
            message: message.clone(),
        };
        match parse(text) {
            Ok(expr) => failures.push(format!("{text}: parsed as {expr}")),
            Err(e) if e != expected => failures.push(format!("{text}: got {e}")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_display_names_the_column() {
    let error = parse("mail | lowr").err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "column 8: unknown transform `lowr` (known: lower, upper, trim, strip_domain, \
             replace, split, default)"
        )
    );
}

#[test]
fn limits_are_inclusive() {
    let deepest = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&deepest).map(|e| e.to_string()), Ok("a".to_string()));
    let longest = "a".repeat(4096);
    assert_eq!(parse(&longest).map(|e| e.to_string()), Ok(longest.clone()));
}

#[test]
fn display_is_canonical() {
    let cases = [
        ("mail|lower??upn", "mail | lower ?? upn"),
        ("( mail ?? upn ) | lower", "(mail ?? upn) | lower"),
        ("(a | lower) | upper", "a | lower | upper"),
        ("a ?? (b ?? c)", "a ?? b ?? c"),
        ("((a))", "a"),
        ("a . b [ 2 ] . c", "a.b[2].c"),
        ("`givenName`", "givenName"),
        ("`urn:x:User`.`my key`[0]", "`urn:x:User`.`my key`[0]"),
        (r#""{{x}} { a.b[0] }\n""#, r#""{{x}} {a.b[0]}\n""#),
        (r#""\u{e9}\u{7}""#, r#""é\u{7}""#),
        (r#""\u{7B}""#, r#""{{""#),
        (
            r#"a | replace("\\d{3}", "${1}x")"#,
            r#"a | replace("\\d{3}", "${1}x")"#,
        ),
        (
            r#"a | split( "/" , 1 ) | default( "{x}" )"#,
            r#"a | split("/", 1) | default("{x}")"#,
        ),
    ];
    for (text, canonical) in cases {
        let shown = parse(text).map(|e| e.to_string());
        assert_eq!(shown.as_deref(), Ok(canonical), "{text}");
        let again = parse(canonical).map(|e| e.to_string());
        assert_eq!(again.as_deref(), Ok(canonical), "{canonical}");
    }
}

#[test]
fn paths_lists_every_read_path_once() {
    let expr = parse("mail ?? \"{givenName} {surname}\" | lower ?? givenName ?? a.b[2].c");
    assert_eq!(
        expr.map(|e| e.paths()),
        Ok(vec![
            "mail".to_string(),
            "givenName".to_string(),
            "surname".to_string(),
            "a.b[2].c".to_string(),
        ])
    );
    let urn = parse(&format!(
        "(x ?? {URN}.department) | default(\"{{ignored}}\")"
    ));
    assert_eq!(
        urn.map(|e| e.paths()),
        Ok(vec!["x".to_string(), format!("{URN}.department")])
    );
}

#[test]
fn root_keys_are_the_top_level_attributes_read() {
    let expr = parse(
        "mail | lower ?? \"{givenName}.{name.familyName}\" ?? `urn:x:User`.department ?? mail",
    )
    .unwrap();
    assert_eq!(
        expr.root_keys(),
        ["mail", "givenName", "name", "urn:x:User"]
    );
}
