//! Replays what Microsoft Entra ID and Okta really send (tests/scim_replay/*.json, each
//! step's source in tests/scim_replay/README.md) against the real server, checking every
//! response, then the target rows the sequence leaves behind, on SQLite and PostgreSQL.
//!
//! Fixture steps: `method`, `path` (under the tenant's base), optional `headers` and
//! `body`, `expect_status`, `expect_body` (a JSON subset: `"$any"` for a value that must
//! be there, `"$absent"` for a key that must not, arrays matched as unordered subsets),
//! `expect_len` (JSON pointer -> array length) and `capture` (variable -> JSON pointer;
//! `${variable}` is substituted in later steps).

use std::collections::HashMap;

use idsync::config::OnRemove;
use idsync::db::Db;
use idsync::target::query;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::TestDb;
use crate::support::scim::{ScimHarness, tenant};

fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

fn substitute_json(value: &Value, vars: &HashMap<String, String>) -> Value {
    serde_json::from_str(&substitute(&value.to_string(), vars)).expect("substituted JSON")
}

/// Why `actual` does not contain `expected`, if it does not.
fn mismatch(expected: &Value, actual: &Value, at: &str) -> Option<String> {
    match (expected, actual) {
        (Value::String(s), _) if s == "$any" => None,
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(key, value)| {
            let here = format!("{at}/{key}");
            match (value, have.get(key)) {
                (Value::String(s), found) if s == "$absent" => {
                    found.map(|v| format!("{here}: expected no value, found {v}"))
                }
                (_, None) => Some(format!("{here}: missing")),
                (_, Some(found)) => mismatch(value, found, &here),
            }
        }),
        (Value::Array(want), Value::Array(have)) => {
            want.iter().enumerate().find_map(|(i, item)| {
                (!have.iter().any(|h| mismatch(item, h, "").is_none()))
                    .then(|| format!("{at}/{i}: no element matches {item}"))
            })
        }
        (Value::Number(a), Value::Number(b)) => {
            (a.as_f64() != b.as_f64()).then(|| format!("{at}: expected {a}, found {b}"))
        }
        _ => (expected != actual).then(|| format!("{at}: expected {expected}, found {actual}")),
    }
}

async fn replay(scim: &ScimHarness, tenant_id: &str, file: &str) {
    let path = format!("{}/tests/scim_replay/{file}", env!("CARGO_MANIFEST_DIR"));
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON");
    let v1 = file.contains("v1");
    let mut vars: HashMap<String, String> = HashMap::new();
    for step in fixture["steps"].as_array().expect("steps") {
        let name = step["name"].as_str().unwrap_or("?");
        let method = step["method"].as_str().expect("method");
        let rel = substitute(step["path"].as_str().expect("path"), &vars);
        let url = if v1 {
            scim.url_v1(tenant_id, &rel)
        } else {
            scim.url(tenant_id, &rel)
        };
        let headers: Vec<(String, String)> = step["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = step.get("body").map(|b| substitute_json(b, &vars));
        let answer = scim.send(tenant_id, method, &url, body, &header_refs).await;
        let context = format!("{file}: step {name:?} ({method} {rel})");
        if let Some(status) = step["expect_status"].as_u64() {
            assert_eq!(
                u64::from(answer.status),
                status,
                "{context}: status; body {}",
                answer.body
            );
        }
        if let Some(expected) = step.get("expect_body") {
            let expected = substitute_json(expected, &vars);
            if let Some(why) = mismatch(&expected, &answer.body, "") {
                panic!("{context}: {why}\nbody: {:#}", answer.body);
            }
        }
        if let Some(lengths) = step["expect_len"].as_object() {
            for (pointer, len) in lengths {
                let found = answer.body.pointer(pointer).and_then(Value::as_array);
                assert_eq!(
                    found.map(Vec::len) as Option<usize>,
                    len.as_u64().map(|n| n as usize),
                    "{context}: length of {pointer}; body {}",
                    answer.body
                );
            }
        }
        if let Some(captures) = step["capture"].as_object() {
            for (var, pointer) in captures {
                let value = answer
                    .body
                    .pointer(pointer.as_str().expect("pointer"))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{context}: nothing to capture at {pointer}"));
                vars.insert(var.clone(), value.to_string());
            }
        }
    }
}

async fn user(db: &Db, name: &str) -> query::UserRow {
    query::find_user(db.pool(), name)
        .await
        .expect("find user")
        .unwrap_or_else(|| panic!("user {name} is in the target"))
}

async fn member_names(db: &Db, group: &str) -> Vec<String> {
    let group = query::find_group(db.pool(), group)
        .await
        .expect("find group")
        .unwrap_or_else(|| panic!("group {group} is in the target"));
    let mut names: Vec<String> = query::direct_members(db.pool(), &group.id)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

async fn entra(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("entra", OnRemove::Disable)]).await;
    replay(&scim, "entra", "entra.json").await;
    // User 1 was hard-deleted (disabled under on_remove = disable); user 2 stays, alone in
    // the renamed group.
    assert!(!user(&db, "alex.wilber@contoso.example").await.active);
    assert!(user(&db, "megan.bowen@contoso.example").await.active);
    assert_eq!(
        member_names(&db, "Sales and Marketing").await,
        vec!["megan.bowen@contoso.example"]
    );
    assert!(
        query::find_group(db.pool(), "Sales Team")
            .await
            .unwrap()
            .is_none()
    );
    scim.stop().await;
}
on_both_backends!(entra);

async fn entra_with_the_compliance_flag(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("entra", OnRemove::Disable)]).await;
    replay(&scim, "entra", "entra_aadoptscim062020.json").await;
    assert!(user(&db, "alex.wilber@contoso.example").await.active);
    assert_eq!(
        member_names(&db, "Sales and Marketing").await,
        vec!["megan.bowen@contoso.example"]
    );
    scim.stop().await;
}
on_both_backends!(entra_with_the_compliance_flag);

async fn okta(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("okta", OnRemove::Disable)]).await;
    replay(&scim, "okta", "okta_v2.json").await;
    assert!(user(&db, "jane.doe@example.com").await.active);
    assert!(!user(&db, "john.smith@example.com").await.active);
    assert!(
        query::list_groups(db.pool(), Some("okta"), 10, 0)
            .await
            .unwrap()
            .is_empty(),
        "the unlinked group is deleted"
    );
    scim.stop().await;
}
on_both_backends!(okta);

async fn okta_on_premises_agent(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("onprem", OnRemove::Disable)]).await;
    replay(&scim, "onprem", "okta_v1.json").await;
    assert!(user(&db, "sam.lee@example.com").await.active);
    assert!(user(&db, "ana.ruiz@example.com").await.active);
    assert!(
        query::list_groups(db.pool(), Some("onprem"), 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    scim.stop().await;
}
on_both_backends!(okta_on_premises_agent);

/// Entra's match on the work e-mail (`emails[type eq "work"].value eq "…"`): none before
/// the user is created, the user after, from the multi-valued index.
async fn entra_email_matching(db: TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("entra", OnRemove::Disable)]).await;
    replay(&scim, "entra", "entra_email_matching.json").await;
    scim.stop().await;
}
on_both_backends!(entra_email_matching);

#[test]
fn the_subset_matcher_catches_differences() {
    use serde_json::json;
    let body = json!({"a": 1, "list": [{"v": "x"}, {"v": "y"}], "o": {"k": true}});
    assert_eq!(
        mismatch(&json!({"a": 1, "list": [{"v": "y"}]}), &body, ""),
        None
    );
    assert_eq!(
        mismatch(&json!({"o": "$any", "gone": "$absent"}), &body, ""),
        None
    );
    assert!(mismatch(&json!({"a": 2}), &body, "").is_some());
    assert!(mismatch(&json!({"list": [{"v": "z"}]}), &body, "").is_some());
    assert!(mismatch(&json!({"a": "$absent"}), &body, "").is_some());
    assert!(mismatch(&json!({"missing": "$any"}), &body, "").is_some());
}
