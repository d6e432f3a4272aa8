//! The Keycloak connector against a fake Keycloak (axum on 127.0.0.1:0).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::*;
use crate::config::SecretString;
use crate::connectors::testing::CollectingSink;
use crate::model::SourceGroup;

const REALM: &str = "acme";
const TOKEN: &str = "fake-access-token";

#[derive(Default)]
struct Fake {
    /// Everything `/users` lists (service accounts included, to check the filter).
    users: Vec<Value>,
    /// Top-level groups, possibly with inline `subGroups` (pre-23 servers).
    groups: Vec<Value>,
    /// `/groups/{id}/children`.
    children: HashMap<String, Vec<Value>>,
    /// `/groups/{id}/members`: user ids.
    members: HashMap<String, Vec<String>>,
    forbid_groups: bool,
    token_calls: AtomicUsize,
    unauthorized_calls: AtomicUsize,
    /// When set, a token stops working after this many API calls (it "expires").
    token_lifetime_calls: Option<usize>,
    /// API calls answered with the current token.
    calls_with_token: AtomicUsize,
    /// When set, `/users` answers 429 (Retry-After: 0) to this many first requests.
    throttle_users: AtomicUsize,
}

/// The token the fake issued last: `fake-access-token` + the issue count when tokens
/// expire, so an old one is recognisably stale.
fn current_token(fake: &Fake) -> String {
    match fake.token_lifetime_calls {
        Some(_) => format!("{TOKEN}-{}", fake.token_calls.load(Ordering::SeqCst)),
        None => TOKEN.to_string(),
    }
}

type Shared = Arc<Fake>;

fn page(items: &[Value], query: &HashMap<String, String>, default_max: usize) -> Vec<Value> {
    let first: usize = query.get("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = query
        .get("max")
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_max);
    items.iter().skip(first).take(max).cloned().collect()
}

/// The 401 answer when the request lacks the fake's bearer token.
fn unauthorized(headers: &HeaderMap, fake: &Fake) -> Option<Response> {
    let mut ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", current_token(fake)));
    if ok && let Some(lifetime) = fake.token_lifetime_calls {
        ok = fake.calls_with_token.fetch_add(1, Ordering::SeqCst) < lifetime;
    }
    if ok {
        None
    } else {
        fake.unauthorized_calls.fetch_add(1, Ordering::SeqCst);
        Some(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "HTTP 401 Unauthorized"})),
            )
                .into_response(),
        )
    }
}

async fn token(State(fake): State<Shared>, body: String) -> Response {
    fake.token_calls.fetch_add(1, Ordering::SeqCst);
    if !body.contains("grant_type=client_credentials")
        || !body.contains("client_id=idsync")
        || !body.contains("client_secret=s3cret")
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "unauthorized_client",
                "error_description": "Invalid client or Invalid client credentials"})),
        )
            .into_response();
    }
    fake.calls_with_token.store(0, Ordering::SeqCst);
    axum::Json(
        json!({"access_token": current_token(&fake), "expires_in": 300, "refresh_expires_in": 0,
        "token_type": "Bearer", "not-before-policy": 0}),
    )
    .into_response()
}

async fn users(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&headers, &fake) {
        return r;
    }
    let throttled = fake
        .throttle_users
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if throttled {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            axum::Json(json!({"error": "too many requests"})),
        )
            .into_response();
    }
    axum::Json(page(&fake.users, &query, 100)).into_response()
}

async fn groups(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&headers, &fake) {
        return r;
    }
    if fake.forbid_groups {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "HTTP 403 Forbidden"})),
        )
            .into_response();
    }
    axum::Json(page(&fake.groups, &query, usize::MAX)).into_response()
}

async fn children(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&headers, &fake) {
        return r;
    }
    match fake.children.get(&id) {
        Some(items) => axum::Json(page(items, &query, 10)).into_response(),
        None => axum::Json(json!([])).into_response(),
    }
}

async fn members(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&headers, &fake) {
        return r;
    }
    let ids = fake.members.get(&id).cloned().unwrap_or_default();
    let items: Vec<Value> = ids
        .iter()
        .map(|id| {
            fake.users
                .iter()
                .find(|u| u["id"] == json!(id))
                .cloned()
                .unwrap_or_else(|| json!({"id": id, "username": id}))
        })
        .collect();
    axum::Json(page(&items, &query, 100)).into_response()
}

/// Starts the fake; returns its base URL.
async fn serve(fake: Shared) -> String {
    let app = Router::new()
        .route(
            &format!("/realms/{REALM}/protocol/openid-connect/token"),
            post(token),
        )
        .route(&format!("/admin/realms/{REALM}/users"), get(users))
        .route(&format!("/admin/realms/{REALM}/groups"), get(groups))
        .route(
            &format!("/admin/realms/{REALM}/groups/{{id}}/children"),
            get(children),
        )
        .route(
            &format!("/admin/realms/{REALM}/groups/{{id}}/members"),
            get(members),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    format!("http://{addr}")
}

fn settings(base_url: &str, page_size: u32) -> KeycloakSettings {
    KeycloakSettings {
        base_url: base_url.to_string(),
        realm: REALM.to_string(),
        client_id: "idsync".to_string(),
        client_secret: Some(SecretString::new("s3cret")),
        password_grant: None,
        token_url: format!("{base_url}/realms/{REALM}/protocol/openid-connect/token"),
        page_size,
        requests_per_second: NonZeroU32::new(1000),
        admin_events: false,
        full_sync_every: std::time::Duration::ZERO,
        allow_insecure_http: true,
    }
}

fn user(id: &str, first: &str, last: &str) -> Value {
    json!({"id": id, "username": id, "firstName": first, "lastName": last,
        "email": format!("{id}@example.com"), "emailVerified": true, "enabled": true,
        "createdTimestamp": 1615392131000u64, "attributes": {"department": ["Eng"]}})
}

/// 7 users listed (3 pages of 3), one a service account, one disabled; groups:
/// Engineering (inline subGroups: Backend), Ops (children only from /children: Sre),
/// Backend's members u1, u2; Sre: u3; Engineering: u0 and the service account.
fn small_fake() -> Fake {
    let users = vec![
        user("u0", "Alice", "Smith"),
        user("u1", "Bob", "Jones"),
        json!({"id": "sa", "username": "service-account-idsync", "enabled": true,
            "serviceAccountClientLink": "idsync"}),
        user("u2", "Carol", "White"),
        json!({"id": "u3", "username": "dave", "enabled": false}),
        user("u4", "Eve", "Black"),
        json!({"id": "u5", "username": "service-account-other", "enabled": true}),
    ];
    let groups = vec![
        json!({"id": "g-eng", "name": "Engineering", "path": "/Engineering",
            "description": "All engineers",
            "subGroups": [{"id": "g-backend", "name": "Backend", "path": "/Engineering/Backend",
                "subGroups": []}]}),
        json!({"id": "g-ops", "name": "Ops", "path": "/Ops", "subGroupCount": 1, "subGroups": []}),
    ];
    let children = HashMap::from([(
        "g-ops".to_string(),
        vec![
            json!({"id": "g-sre", "name": "Sre", "path": "/Ops/Sre", "parentId": "g-ops",
            "subGroupCount": 0, "subGroups": []}),
        ],
    )]);
    let members = HashMap::from([
        (
            "g-eng".to_string(),
            vec!["u0".to_string(), "sa".to_string()],
        ),
        (
            "g-backend".to_string(),
            vec!["u1".to_string(), "u2".to_string()],
        ),
        ("g-sre".to_string(), vec!["u3".to_string()]),
    ]);
    Fake {
        users,
        groups,
        children,
        members,
        ..Fake::default()
    }
}

fn group<'a>(groups: &'a [SourceGroup], id: &str) -> &'a SourceGroup {
    groups
        .iter()
        .find(|g| g.external_id == id)
        .unwrap_or_else(|| panic!("group {id} missing"))
}

#[tokio::test]
async fn reads_users_groups_and_nesting() {
    let fake = Arc::new(small_fake());
    let base = serve(fake.clone()).await;
    let connector = KeycloakConnector::new(&settings(&base, 3)).expect("connector");
    let mut sink = CollectingSink::default();
    let summary = connector.read(None, &mut sink).await.expect("read");
    assert_eq!(
        summary,
        ReadSummary {
            mode: ReadMode::Full,
            complete: true,
            next_checkpoint: None
        }
    );
    let users = sink.users();
    let ids: Vec<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
    assert_eq!(ids, ["u0", "u1", "u2", "u3", "u4"]);
    let alice = &users[0];
    assert_eq!(alice.user_name, "u0");
    assert_eq!(alice.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(alice.given_name.as_deref(), Some("Alice"));
    assert_eq!(alice.primary_email(), Some("u0@example.com"));
    assert!(alice.emails[0].primary);
    assert!(alice.active);
    assert_eq!(
        alice.attributes["attributes"],
        json!({"department": ["Eng"]})
    );
    assert_eq!(
        alice.attributes["createdTimestamp"],
        json!(1615392131000u64)
    );
    let dave = &users[3];
    assert!(!dave.active);
    assert_eq!(dave.display_name, None);
    assert!(dave.emails.is_empty());

    let groups = sink.groups();
    let mut names: Vec<&str> = groups.iter().map(|g| g.display_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Backend", "Engineering", "Ops", "Sre"]);
    let eng = group(&groups, "g-eng");
    assert_eq!(eng.description.as_deref(), Some("All engineers"));
    assert_eq!(
        eng.members,
        [MemberRef::user("u0"), MemberRef::group("g-backend")]
    );
    assert!(!eng.attributes.contains_key("subGroups"));
    assert_eq!(
        group(&groups, "g-backend").members,
        [MemberRef::user("u1"), MemberRef::user("u2")]
    );
    assert_eq!(group(&groups, "g-ops").members, [MemberRef::group("g-sre")]);
    assert_eq!(group(&groups, "g-sre").members, [MemberRef::user("u3")]);

    assert_eq!(fake.token_calls.load(Ordering::SeqCst), 1);
    assert_eq!(fake.unauthorized_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn all_members_beyond_the_first_hundred_arrive() {
    let users: Vec<Value> = (0..250)
        .map(|i| user(&format!("u{i:03}"), "F", "L"))
        .collect();
    let ids: Vec<String> = (0..250).map(|i| format!("u{i:03}")).collect();
    let fake = Arc::new(Fake {
        users,
        groups: vec![json!({"id": "g-all", "name": "All", "subGroupCount": 0, "subGroups": []})],
        members: HashMap::from([("g-all".to_string(), ids.clone())]),
        ..Fake::default()
    });
    let base = serve(fake.clone()).await;
    let connector = KeycloakConnector::new(&settings(&base, 100)).expect("connector");
    let mut sink = CollectingSink::default();
    connector.read(None, &mut sink).await.expect("read");
    assert_eq!(sink.users().len(), 250);
    let groups = sink.groups();
    let members: Vec<String> = group(&groups, "g-all")
        .members
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(members, ids);
    assert_eq!(fake.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_forbidden_groups_listing_fails_the_read() {
    let mut fake = small_fake();
    fake.forbid_groups = true;
    let fake = Arc::new(fake);
    let base = serve(fake.clone()).await;
    let connector = KeycloakConnector::new(&settings(&base, 3)).expect("connector");
    let mut sink = CollectingSink::default();
    let err = connector
        .read(None, &mut sink)
        .await
        .expect_err("403 fails the read");
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            ConnectorError::Http {
                kind: "keycloak",
                source: HttpError::Status { status: 403, .. },
                ..
            }
        ),
        "{message}"
    );
    assert!(message.starts_with("keycloak connector: "), "{message}");
    assert!(
        message.contains(&format!("/admin/realms/{REALM}/groups")),
        "{message}"
    );
    assert!(sink.groups().is_empty());
}

#[tokio::test]
async fn bad_client_credentials_fail_the_read() {
    let fake = Arc::new(small_fake());
    let base = serve(fake.clone()).await;
    let mut settings = settings(&base, 3);
    settings.client_secret = Some(SecretString::new("wrong"));
    let connector = KeycloakConnector::new(&settings).expect("connector");
    let mut sink = CollectingSink::default();
    let err = connector.read(None, &mut sink).await.expect_err("fails");
    assert!(
        matches!(
            &err,
            ConnectorError::Http {
                source: HttpError::Auth { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(sink.batches.is_empty());
}

/// The engine end to end: a sync run with the connector into a temp SQLite database.
#[tokio::test]
async fn syncs_into_sqlite() {
    use crate::config::{MappingConfig, OnRemove};
    use crate::db::Db;
    use crate::sync::{self, NoProgress, RunOptions};
    use crate::target::query;

    let fake = Arc::new(small_fake());
    let base = serve(fake.clone()).await;
    let connector = KeycloakConnector::new(&settings(&base, 3)).expect("connector");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&format!("sqlite://{}/idsync.db", dir.path().display()))
        .await
        .expect("open sqlite");
    let mapping = MappingConfig::pass_through("default", OnRemove::Disable, 500, 20.0);
    let report = sync::sync(
        &db,
        "sso",
        &mapping,
        &connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .expect("sync");
    // dave (u3) has no email: the default mapping skips him with a warning.
    assert_eq!(report.counts.users_created, 4, "{report:?}");
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert_eq!(report.counts.groups_created, 4);
    let users = query::list_users(db.pool(), None, 100, 0)
        .await
        .expect("list users");
    assert_eq!(users.len(), 4);
    let eng = query::find_group(db.pool(), "Engineering")
        .await
        .expect("find group")
        .expect("Engineering exists");
    let mut effective: Vec<String> = query::effective_members(db.pool(), &eng.id)
        .await
        .expect("effective members")
        .into_iter()
        .map(|m| m.name)
        .collect();
    effective.sort();
    assert_eq!(effective, ["u0", "u1", "u2"]);
}

/// The shared conformance cases: the token expires mid-run (every token works for 3 API
/// calls) and `/users` is throttled twice; the read still completes with every record,
/// fetching a new token each time the old one is refused.
#[tokio::test]
async fn survives_token_expiry_and_throttling_mid_run() {
    let fake = Arc::new(Fake {
        token_lifetime_calls: Some(3),
        throttle_users: AtomicUsize::new(2),
        ..small_fake()
    });
    let base = serve(fake.clone()).await;
    let connector = KeycloakConnector::new(&settings(&base, 2)).expect("connector");
    let mut sink = CollectingSink::default();
    connector
        .read(None, &mut sink)
        .await
        .expect("read completes");
    let ids: Vec<String> = sink.users().into_iter().map(|u| u.external_id).collect();
    assert_eq!(ids, ["u0", "u1", "u2", "u3", "u4"]);
    let groups = sink.groups();
    assert_eq!(groups.len(), 4);
    assert_eq!(
        group(&groups, "g-backend").members,
        vec![MemberRef::user("u1"), MemberRef::user("u2")]
    );
    assert_eq!(
        fake.throttle_users.load(Ordering::SeqCst),
        0,
        "both 429s were met"
    );
    let refused = fake.unauthorized_calls.load(Ordering::SeqCst);
    assert!(
        refused >= 2,
        "the token expired mid-run ({refused} refusals)"
    );
    // One token to start, one more after each refusal.
    assert_eq!(fake.token_calls.load(Ordering::SeqCst), 1 + refused);
}

#[tokio::test]
async fn diagnose_names_what_fails() {
    let fake = Arc::new(small_fake());
    let base = serve(fake.clone()).await;
    let connector = KeycloakConnector::new(&settings(&base, 10)).expect("connector");
    let checks = connector.diagnose().await;
    let names: Vec<(&str, bool)> = checks.iter().map(|c| (c.check, c.ok)).collect();
    assert_eq!(
        names,
        [
            ("list users", true),
            ("list groups", true),
            ("list group members", true)
        ]
    );

    let forbidden = Arc::new(Fake {
        forbid_groups: true,
        ..small_fake()
    });
    let base = serve(forbidden).await;
    let connector = KeycloakConnector::new(&settings(&base, 10)).expect("connector");
    let checks = connector.diagnose().await;
    assert_eq!(checks.len(), 2);
    assert!(checks[0].ok);
    assert_eq!(checks[1].check, "list groups");
    assert!(!checks[1].ok);
    assert_eq!(
        checks[1].detail,
        "forbidden: give the client's service account the realm-management role query-groups (or view-users)"
    );

    let base = serve(Arc::new(small_fake())).await;
    let mut wrong = settings(&base, 10);
    wrong.client_secret = Some(SecretString::new("wrong".to_string()));
    let connector = KeycloakConnector::new(&wrong).expect("connector");
    let checks = connector.diagnose().await;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].check, "authenticate");
    assert!(!checks[0].ok);
    assert!(
        checks[0].detail.contains("invalid") || checks[0].detail.contains("unauthorized_client"),
        "{}",
        checks[0].detail
    );
    assert!(
        !checks[0].detail.contains("wrong"),
        "the secret is never shown"
    );
}
