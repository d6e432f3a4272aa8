//! The Google connector's record mapping and quota detection.

use super::*;
use crate::model::MemberRef;
use serde_json::json;

#[test]
fn users_map_names_emails_and_state() {
    let user = to_user(
        json!({"id": "104", "primaryEmail": "alice@example.com",
            "name": {"givenName": "Alice", "familyName": "Smith", "fullName": "Alice Smith"},
            "emails": [{"address": "alice@example.com", "primary": true},
                       {"address": "a.smith@example.com", "type": "work"},
                       {"address": "al@example.org", "type": "custom", "customType": "legacy"}],
            "suspended": false, "archived": false, "orgUnitPath": "/Eng"}),
        true,
        true,
    )
    .expect("valid")
    .expect("kept");
    assert_eq!(user.external_id, "104");
    assert_eq!(user.user_name, "alice@example.com");
    assert_eq!(user.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(user.given_name.as_deref(), Some("Alice"));
    assert!(user.active);
    let emails: Vec<(&str, Option<&str>, bool)> = user
        .emails
        .iter()
        .map(|e| (e.value.as_str(), e.kind.as_deref(), e.primary))
        .collect();
    assert_eq!(
        emails,
        [
            ("alice@example.com", None, true),
            ("a.smith@example.com", Some("work"), false),
            ("al@example.org", Some("legacy"), false)
        ]
    );
    assert_eq!(user.attributes["orgUnitPath"], "/Eng");

    let suspended = json!({"id": "2", "primaryEmail": "b@example.com", "suspended": true});
    let archived = json!({"id": "3", "primaryEmail": "c@example.com", "archived": true});
    let user = to_user(suspended.clone(), true, true).unwrap().unwrap();
    assert!(!user.active);
    assert_eq!(user.display_name, None);
    assert!(to_user(suspended, false, true).unwrap().is_none());
    assert!(
        !to_user(archived.clone(), true, true)
            .unwrap()
            .unwrap()
            .active
    );
    assert!(to_user(archived, true, false).unwrap().is_none());
    let deleted = json!({"id": "4", "primaryEmail": "d@example.com",
        "deletionTime": "2024-05-01T12:00:00.000Z"});
    assert!(to_user(deleted, true, true).unwrap().is_none());
    assert_eq!(
        to_user(json!({"primaryEmail": "x@example.com"}), true, true).unwrap_err(),
        "a user without `id`"
    );
    assert_eq!(
        to_user(json!({"id": "9"}), true, true).unwrap_err(),
        "user 9 has no `primaryEmail`"
    );
}

#[test]
fn members_keep_users_and_groups_of_the_read() {
    let users: HashSet<String> = ["u1".to_string()].into();
    let groups: HashSet<String> = ["g1".to_string()].into();
    let mut left = LeftOut::default();
    let items = [
        json!({"id": "u1", "email": "a@example.com", "type": "USER", "role": "OWNER"}),
        json!({"id": "g1", "email": "eng@example.com", "type": "GROUP"}),
        json!({"id": "C01abcd23", "type": "CUSTOMER"}),
        json!({"id": "1122", "email": "partner@gmail.com", "type": "USER"}),
        json!({"id": "g9", "email": "other@elsewhere.com", "type": "GROUP"}),
        json!({"email": "x@example.com", "type": "EXTERNAL"}),
    ];
    let kept: Vec<MemberRef> = items
        .iter()
        .filter_map(|i| to_member(i, &users, &groups, &mut left))
        .collect();
    assert_eq!(kept, [MemberRef::user("u1"), MemberRef::group("g1")]);
    assert_eq!(
        (left.users, left.groups, left.customer, left.other),
        (1, 1, 1, 1)
    );
}

#[test]
fn groups_map_name_and_description() {
    let g = to_group(
        "03ep".into(),
        json!({"id": "03ep", "email": "eng@example.com", "name": "Engineering",
            "description": "", "directMembersCount": "12"}),
        vec![],
    );
    assert_eq!(g.display_name, "Engineering");
    assert_eq!(g.description, None);
    assert_eq!(g.attributes["directMembersCount"], "12");
    let g = to_group("x".into(), json!({"email": "x@example.com"}), vec![]);
    assert_eq!(g.display_name, "x@example.com");
}

#[test]
fn quota_reasons_are_found_even_in_cut_bodies() {
    let body = r#"{"error": {"code": 403, "message": "Quota exceeded", "errors": [{"message": "Quota exceeded", "domain": "usageLimits", "reason" : "userRateLimitExceeded"}]}}"#;
    assert!(is_rate_limited(body));
    assert!(is_rate_limited(&body[..body.len() - 5]));
    assert!(!is_rate_limited(&format!("{}…", &body[..body.len() - 10])));
    let forbidden = r#"{"error":{"code":403,"message":"Not Authorized to access this resource/api","errors":[{"message":"Not Authorized to access this resource/api","domain":"global","reason":"forbidden"}]}}"#;
    assert!(!is_rate_limited(forbidden));
    assert_eq!(error_reasons(forbidden), ["forbidden"]);
    assert!(error_reasons("not json").is_empty());
    let mut tokens = PageTokens::default();
    assert!(tokens.check("a").is_ok());
    assert!(tokens.check("b").is_ok());
    assert!(tokens.check("a").is_err());
}
