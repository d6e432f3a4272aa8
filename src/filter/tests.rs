//! Table tests for valid filters: parsing, canonical text, round trip and evaluation
//! against a realistic SCIM user, plus evaluation edge cases and case-exact attributes.
//! Invalid input, the caps and PATCH paths are in `tests_invalid.rs`.

use serde_json::json;

use super::*;

/// A SCIM user in the shape RFC 7643 §8.2 shows, with an enterprise extension.
fn user() -> serde_json::Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara"
        },
        "displayName": "Babs Jensen",
        "nickName": "",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "manager": null,
        "loginCount": 42,
        "score": 3.5,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [],
        "groups": [
            {"value": "e9e30dba", "display": "Tour Guides", "$ref": "../Groups/e9e30dba"},
            {"value": "fc348aa8", "display": "Employees"}
        ],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z"
        },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915", "displayName": "John Smith"}
        }
    })
}

pub(super) const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// (input, canonical text, whether `user()` matches)
const VALID: &[(&str, &str, bool)] = &[
    (
        r#"userName eq "bjensen@example.com""#,
        r#"userName eq "bjensen@example.com""#,
        true,
    ),
    (
        r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#,
        r#"USERNAME eq "BJENSEN@EXAMPLE.COM""#,
        true,
    ),
    (r#"userName Eq "nobody""#, r#"userName eq "nobody""#, false),
    (
        r#"name.familyName co "ens""#,
        r#"name.familyName co "ens""#,
        true,
    ),
    (
        r#"name.FAMILYNAME sw "j""#,
        r#"name.FAMILYNAME sw "j""#,
        true,
    ),
    (
        r#"name.familyName ew "SEN""#,
        r#"name.familyName ew "SEN""#,
        true,
    ),
    (r#"name co "Jensen""#, r#"name co "Jensen""#, false),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#,
        true,
    ),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
        true,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Tour Operations""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Tour Operations""#,
        true,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName sw "john""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName sw "john""#,
        true,
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr",
        false,
    ),
    ("title pr", "title pr", true),
    ("nickName pr", "nickName pr", false),
    ("phoneNumbers pr", "phoneNumbers pr", false),
    ("manager PR", "manager pr", false),
    ("manager eq null", "manager eq null", true),
    ("noSuchAttr eq NULL", "noSuchAttr eq null", true),
    ("title eq null", "title eq null", false),
    ("title ne null", "title ne null", true),
    (
        r#"userType ne "Employee""#,
        r#"userType ne "Employee""#,
        false,
    ),
    ("active eq true", "active eq true", true),
    ("active eq False", "active eq false", false),
    ("active ne false", "active ne false", true),
    ("loginCount gt 41", "loginCount gt 41", true),
    ("loginCount ge 42", "loginCount ge 42", true),
    ("loginCount lt 42", "loginCount lt 42", false),
    ("loginCount le 42.0", "loginCount le 42.0", true),
    ("loginCount gt 41.5", "loginCount gt 41.5", true),
    (r#"loginCount eq "42""#, r#"loginCount eq "42""#, false),
    ("score gt -1.5e2", "score gt -150.0", true),
    ("score eq 3.5", "score eq 3.5", true),
    ("score eq 35E-1", "score eq 3.5", true),
    (
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        false,
    ),
    (
        r#"meta.lastModified ge "2011-05-13T06:42:34+02:00""#,
        r#"meta.lastModified ge "2011-05-13T06:42:34+02:00""#,
        true,
    ),
    (
        r#"meta.lastModified eq "2011-05-13T04:42:34.000Z""#,
        r#"meta.lastModified eq "2011-05-13T04:42:34.000Z""#,
        true,
    ),
    (
        r#"meta.created lt "2011-01-01T00:00:00Z""#,
        r#"meta.created lt "2011-01-01T00:00:00Z""#,
        true,
    ),
    (
        r#"emails co "example.com""#,
        r#"emails co "example.com""#,
        true,
    ),
    (
        r#"emails.value ew "JENSEN.ORG""#,
        r#"emails.value ew "JENSEN.ORG""#,
        true,
    ),
    (r#"emails.type eq "home""#, r#"emails.type eq "home""#, true),
    (
        r#"emails[type eq "work" and primary eq true]"#,
        r#"emails[type eq "work" and primary eq true]"#,
        true,
    ),
    (
        r#"emails[type eq "home" and primary eq true]"#,
        r#"emails[type eq "home" and primary eq true]"#,
        false,
    ),
    (
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        true,
    ),
    (
        r#"emails [ (type eq "work" or type eq "home") and not (primary eq false) ]"#,
        r#"emails[(type eq "work" or type eq "home") and not (primary eq false)]"#,
        true,
    ),
    (
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        true,
    ),
    (
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        false,
    ),
    (
        r#"title pr and userType eq "Employee""#,
        r#"title pr and userType eq "Employee""#,
        true,
    ),
    (
        r#"title pr or userType eq "Intern""#,
        r#"title pr or userType eq "Intern""#,
        true,
    ),
    (
        "a pr or b pr and title pr",
        "a pr or b pr and title pr",
        false,
    ),
    (
        "(a pr or b pr) and title pr",
        "(a pr or b pr) and title pr",
        false,
    ),
    (
        "title pr and (b pr and c pr)",
        "title pr and (b pr and c pr)",
        false,
    ),
    (
        "(title pr and b pr) and c pr",
        "title pr and b pr and c pr",
        false,
    ),
    (
        "title pr or (b pr or c pr)",
        "title pr or (b pr or c pr)",
        true,
    ),
    (
        "a pr AND title pr Or c pr",
        "a pr and title pr or c pr",
        false,
    ),
    (
        "title pr AND a pr Or c pr",
        "title pr and a pr or c pr",
        false,
    ),
    (
        "a pr Or title pr and c pr",
        "a pr or title pr and c pr",
        false,
    ),
    (
        "a pr Or title pr and active pr",
        "a pr or title pr and active pr",
        true,
    ),
    ("((title pr))", "title pr", true),
    ("not(title pr)", "not (title pr)", false),
    ("NOT (title pr)", "not (title pr)", false),
    ("not (not (title pr))", "not (not (title pr))", true),
    (
        r#"groups[display eq "employees"]"#,
        r#"groups[display eq "employees"]"#,
        true,
    ),
    ("groups.$ref pr", "groups.$ref pr", true),
    (
        r#"groups[$ref sw "../Groups/"]"#,
        r#"groups[$ref sw "../Groups/"]"#,
        true,
    ),
    (r#"groups eq "FC348AA8""#, r#"groups eq "FC348AA8""#, true),
    (
        r#"displayName eq "Babs \"Jensen\"""#,
        r#"displayName eq "Babs \"Jensen\"""#,
        false,
    ),
    (
        r#"displayName eq "caf\u00e9 \\ \/ \t \u0000""#,
        "displayName eq \"caf\u{e9} \\\\ / \\t \\u0000\"",
        false,
    ),
    (
        r#"displayName eq "\ud83d\ude00""#,
        "displayName eq \"\u{1F600}\"",
        false,
    ),
    ("userName   eq\t\"x\"", r#"userName eq "x""#, false),
    (
        r#"userName eq"x"or(title pr)"#,
        r#"userName eq "x" or title pr"#,
        true,
    ),
    ("not pr", "not pr", false),
    (r#"and eq "x" or pr pr"#, r#"and eq "x" or pr pr"#, false),
    (
        "x eq 18446744073709551615",
        "x eq 18446744073709551615",
        false,
    ),
    (
        "x eq -9223372036854775808",
        "x eq -9223372036854775808",
        false,
    ),
    ("x eq 0.5e-3", "x eq 0.0005", false),
    (r#"id sw "2819C223""#, r#"id sw "2819C223""#, true),
    ("x-custom_attr9 pr", "x-custom_attr9 pr", false),
    (
        r#"emails[type eq "work"] and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        r#"emails[type eq "work"] and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        true,
    ),
    // A sub-attribute after the brackets: one element matches both conditions.
    (
        r#"emails[type eq "work"].value eq "BJENSEN@example.com""#,
        r#"emails[type eq "work" and value eq "BJENSEN@example.com"]"#,
        true,
    ),
    (
        r#"emails[type eq "home"].value eq "bjensen@example.com""#,
        r#"emails[type eq "home" and value eq "bjensen@example.com"]"#,
        false,
    ),
    (
        r#"emails[type eq "work" or type eq "home"].value sw "babs""#,
        r#"emails[(type eq "work" or type eq "home") and value sw "babs"]"#,
        true,
    ),
    (
        r#"emails[primary eq true].display pr"#,
        r#"emails[primary eq true and display pr]"#,
        false,
    ),
];

#[test]
fn valid_filters_parse_print_round_trip_and_evaluate() {
    assert!(VALID.len() >= 40);
    let user = user();
    for &(input, canonical, expected) in VALID {
        let parsed = parse_filter(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(parsed.to_string(), canonical, "canonical text of {input}");
        assert_eq!(
            parse_filter(canonical),
            Ok(parsed.clone()),
            "round trip of {input}"
        );
        assert_eq!(parsed.matches(&user), expected, "evaluation of {input}");
    }
}

#[test]
fn case_exact_attributes() {
    let user = user();
    let filter = parse_filter(r#"userName eq "BJENSEN@example.com""#);
    let filter = filter.unwrap_or_else(|e| panic!("{e}"));
    assert!(filter.matches(&user));
    assert!(!filter.matches_with(&user, &EvalOptions::all_case_exact()));

    // The callback sees attributes inside a value path qualified by the outer one.
    let only_email_type =
        |path: &AttrPath| path.eq_ignore_case(&AttrPath::new("emails").with_sub_attr("type"));
    let options = EvalOptions {
        case_exact: &only_email_type,
    };
    let upper_type = parse_filter(r#"emails[type eq "WORK"]"#).unwrap_or_else(|e| panic!("{e}"));
    assert!(upper_type.matches(&user));
    assert!(!upper_type.matches_with(&user, &options));
    let upper_value =
        parse_filter(r#"emails[value sw "BJENSEN"]"#).unwrap_or_else(|e| panic!("{e}"));
    assert!(upper_value.matches_with(&user, &options));
}

#[test]
fn evaluation_edge_cases() {
    let cases: &[(&str, serde_json::Value, bool)] = &[
        ("x eq null", json!("not an object"), true),
        ("x pr", json!([1, 2]), false),
        ("tags eq \"b\"", json!({"tags": ["a", "B"]}), true),
        ("tags ne \"b\"", json!({"tags": ["a", "B"]}), false),
        ("tags eq null", json!({"tags": []}), true),
        ("tags pr", json!({"tags": [null, ""]}), false),
        ("n gt 18446744073709551615", json!({"n": -1}), false),
        ("n lt 18446744073709551615", json!({"n": -1}), true),
        ("n eq 2", json!({"n": 2.0}), true),
        ("s gt \"apple\"", json!({"s": "Banana"}), true),
        ("s co \"\"", json!({"s": 5}), false),
        ("s ge 5", json!({"s": "5"}), false),
        ("flag eq true", json!({"FLAG": true}), true),
        ("e[v eq 1]", json!({"e": {"v": 1}}), true),
        ("e[v eq 1]", json!({"e": [1, {"v": 2}]}), false),
        (
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr",
            json!({"displayName": "Admins"}),
            true,
        ),
        (
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:DEPARTMENT eq \"x\"",
            json!({ENT: {"department": "X"}}),
            true,
        ),
    ];
    for (input, record, expected) in cases {
        let filter = parse_filter(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(filter.matches(record), *expected, "{input} on {record}");
    }
}

mod invalid;
