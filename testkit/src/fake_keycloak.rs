//! A fake Keycloak (Admin REST API of one realm) serving a conformance [`Directory`]:
//! client-credentials tokens, `first`/`max` paging of bare arrays, top-level groups with
//! `subGroupCount` and `/children` (Keycloak 23+), direct `/members`, disabled users, a
//! service-account user, and the [`Knobs`] misbehaviours in Keycloak's own error shapes.
//!
//! Keycloak groups form a tree: a group nested in another becomes its child (its first
//! parent wins; nesting that would close a cycle is left out, as Keycloak cannot hold it).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use idsync::config::{KeycloakSettings, SecretString};
use idsync::connectors::PullConnector;
use idsync::connectors::keycloak::KeycloakConnector;
use serde_json::{Value, json};

use crate::conformance::{Directory, FakeMember, FakeProvider, Knobs, Listing, Stats, UserStatus};

const REALM: &str = "acme";

/// The directory with what the handlers look up, computed once per directory.
struct Indexed {
    dir: Directory,
    users: HashMap<String, usize>,
    groups: HashMap<String, usize>,
    parents: HashMap<String, String>,
    children: HashMap<String, Vec<String>>,
}

impl Indexed {
    fn new(dir: Directory) -> Indexed {
        let users = dir
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.clone(), i))
            .collect();
        let groups = dir
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        let parents = tree(&dir);
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        // In the directory's group order, so pages are stable.
        for group in &dir.groups {
            if let Some(parent) = parents.get(&group.id) {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(group.id.clone());
            }
        }
        Indexed {
            dir,
            users,
            groups,
            parents,
            children,
        }
    }

    fn user(&self, id: &str) -> Option<&crate::conformance::FakeUser> {
        self.users.get(id).map(|&i| &self.dir.users[i])
    }

    fn group_json(&self, id: &str) -> Value {
        let group = &self.dir.groups[self.groups[id]];
        let children = self.children.get(id).map_or(0, Vec::len);
        json!({"id": group.id, "name": group.name, "path": format!("/{}", group.name),
            "subGroupCount": children, "subGroups": [], "attributes": {}})
    }
}

struct Inner {
    directory: Mutex<Arc<Indexed>>,
    knobs: Knobs,
    requests: AtomicUsize,
    throttled: AtomicUsize,
    tokens: AtomicUsize,
    /// API requests made with the current token.
    used: AtomicUsize,
}

pub struct FakeKeycloak {
    inner: Arc<Inner>,
    base: String,
    served: crate::conformance::ServedLog,
}

impl FakeKeycloak {
    /// The base URL (for connector files written by tests).
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

type Shared = Arc<Inner>;

fn error(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({"error": text}))).into_response()
}

/// Parents by child id: the first group that lists a group as member, unless that would
/// close a cycle.
fn tree(directory: &Directory) -> HashMap<String, String> {
    let mut parent: HashMap<String, String> = HashMap::new();
    for group in &directory.groups {
        for member in &group.members {
            let FakeMember::Group(child) = member else {
                continue;
            };
            if parent.contains_key(child) || child == &group.id {
                continue;
            }
            // Walk up from the would-be parent: reaching the child means a cycle.
            let mut at = Some(group.id.clone());
            let mut cycle = false;
            while let Some(id) = at {
                if &id == child {
                    cycle = true;
                    break;
                }
                at = parent.get(&id).cloned();
            }
            if !cycle {
                parent.insert(child.clone(), group.id.clone());
            }
        }
    }
    parent
}

fn user_json(user: &crate::conformance::FakeUser) -> Value {
    let mut value = json!({
        "id": user.id, "username": user.user_name, "email": user.email,
        "firstName": user.given_name, "lastName": user.family_name,
        "enabled": user.status != UserStatus::Suspended, "emailVerified": true,
        "createdTimestamp": 1_700_000_000_000u64,
    });
    if user.status == UserStatus::Service {
        value["username"] = json!(format!("service-account-{}", user.id));
        value["serviceAccountClientLink"] = json!("client-1");
    }
    value
}

impl Inner {
    /// Counts the request, and answers for the knobs (401, 429) when they apply.
    fn gate(&self, headers: &HeaderMap) -> Option<Response> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("Bearer kc-token-{}", self.tokens.load(Ordering::SeqCst));
        let authorised = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == token);
        let expired = self
            .knobs
            .token_lifetime_requests
            .is_some_and(|life| self.used.fetch_add(1, Ordering::SeqCst) >= life);
        if !authorised || expired {
            return Some(error(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized"));
        }
        if self
            .knobs
            .throttle_every
            .is_some_and(|every| n.is_multiple_of(every))
        {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            response
                .headers_mut()
                .insert("retry-after", "0".parse().expect("header"));
            return Some(response);
        }
        None
    }

    /// One page of a listing of `total` items (`item(i)` renders the i-th), or the knobs'
    /// failure for `listing`.
    fn page(
        &self,
        listing: Listing,
        total: usize,
        item: impl Fn(usize) -> Value,
        query: &HashMap<String, String>,
        last_group: bool,
    ) -> Response {
        if self.knobs.deny == Some(listing) {
            return error(StatusCode::FORBIDDEN, "HTTP 403 Forbidden");
        }
        let first: usize = query.get("first").and_then(|v| v.parse().ok()).unwrap_or(0);
        let asked: usize = query.get("max").and_then(|v| v.parse().ok()).unwrap_or(100);
        let max = match self.knobs.page_size {
            0 => asked,
            cap => asked.min(cap),
        };
        let is_last = first + max >= total;
        if self.knobs.fail_last_page == Some(listing)
            && is_last
            && (listing != Listing::Members || last_group)
        {
            // Asks for an immediate retry, so the client gives up on its attempt cap fast.
            let mut response = error(StatusCode::INTERNAL_SERVER_ERROR, "unknown_error");
            response
                .headers_mut()
                .insert("retry-after", "0".parse().expect("header"));
            return response;
        }
        let page: Vec<Value> = (first..total.min(first.saturating_add(max)))
            .map(item)
            .collect();
        axum::Json(Value::Array(page)).into_response()
    }
}

async fn token(State(inner): State<Shared>, body: String) -> Response {
    if !body.contains("grant_type=client_credentials") || !body.contains("client_secret=s3cret") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "unauthorized_client",
                "error_description": "Invalid client or Invalid client credentials"})),
        )
            .into_response();
    }
    let n = inner.tokens.fetch_add(1, Ordering::SeqCst) + 1;
    inner.used.store(0, Ordering::SeqCst);
    axum::Json(
        json!({"access_token": format!("kc-token-{n}"), "expires_in": 300,
        "refresh_expires_in": 0, "token_type": "Bearer", "not-before-policy": 0}),
    )
    .into_response()
}

async fn users(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    tokio::time::sleep(inner.knobs.request_delay).await;
    if let Some(r) = inner.gate(&headers) {
        return r;
    }
    let index = inner.directory.lock().expect("lock").clone();
    let listed: Vec<&crate::conformance::FakeUser> = index
        .dir
        .users
        .iter()
        .filter(|u| u.status != UserStatus::Deleted)
        .collect();
    inner.page(
        Listing::Users,
        listed.len(),
        |i| user_json(listed[i]),
        &query,
        false,
    )
}

async fn groups(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    tokio::time::sleep(inner.knobs.request_delay).await;
    if let Some(r) = inner.gate(&headers) {
        return r;
    }
    let index = inner.directory.lock().expect("lock").clone();
    let top: Vec<&str> = index
        .dir
        .groups
        .iter()
        .filter(|g| !index.parents.contains_key(&g.id))
        .map(|g| g.id.as_str())
        .collect();
    inner.page(
        Listing::Groups,
        top.len(),
        |i| index.group_json(top[i]),
        &query,
        false,
    )
}

async fn children(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    tokio::time::sleep(inner.knobs.request_delay).await;
    if let Some(r) = inner.gate(&headers) {
        return r;
    }
    let index = inner.directory.lock().expect("lock").clone();
    let kids: Vec<String> = index.children.get(&id).cloned().unwrap_or_default();
    inner.page(
        Listing::Groups,
        kids.len(),
        |i| index.group_json(&kids[i]),
        &query,
        false,
    )
}

async fn members(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    tokio::time::sleep(inner.knobs.request_delay).await;
    if let Some(r) = inner.gate(&headers) {
        return r;
    }
    let index = inner.directory.lock().expect("lock").clone();
    let Some(&position) = index.groups.get(&id) else {
        return error(StatusCode::NOT_FOUND, "Could not find group by id");
    };
    let group = &index.dir.groups[position];
    let mut seen = HashSet::new();
    let listed: Vec<&crate::conformance::FakeUser> = group
        .members
        .iter()
        .filter_map(|m| match m {
            FakeMember::User(uid) => index.user(uid),
            FakeMember::Group(_) => None,
        })
        .filter(|u| u.status != UserStatus::Deleted && seen.insert(u.id.as_str()))
        .collect();
    let last_group = position + 1 == index.dir.groups.len();
    inner.page(
        Listing::Members,
        listed.len(),
        |i| {
            let u = listed[i];
            json!({"id": u.id, "username": u.user_name, "enabled": u.status != UserStatus::Suspended})
        },
        &query,
        last_group,
    )
}

impl FakeKeycloak {
    pub async fn start(directory: Directory, knobs: Knobs) -> Arc<dyn FakeProvider> {
        Self::start_concrete(directory, knobs).await
    }

    /// Starts a fake and keeps its concrete type (for tests that write connector files).
    pub async fn start_concrete(directory: Directory, knobs: Knobs) -> Arc<FakeKeycloak> {
        let inner = Arc::new(Inner {
            directory: Mutex::new(Arc::new(Indexed::new(directory))),
            knobs,
            requests: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            tokens: AtomicUsize::new(0),
            used: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/realms/{realm}/protocol/openid-connect/token", post(token))
            .route("/admin/realms/{realm}/users", get(users))
            .route("/admin/realms/{realm}/groups", get(groups))
            .route("/admin/realms/{realm}/groups/{id}/children", get(children))
            .route("/admin/realms/{realm}/groups/{id}/members", get(members))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let served = crate::conformance::ServedLog::default();
        let app = crate::conformance::recording(app, base.clone(), served.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Arc::new(FakeKeycloak {
            inner,
            base,
            served,
        })
    }
}

#[async_trait]
impl FakeProvider for FakeKeycloak {
    fn kind(&self) -> &'static str {
        "keycloak"
    }

    fn connector(&self) -> Box<dyn PullConnector> {
        let settings = KeycloakSettings {
            base_url: self.base.clone(),
            realm: REALM.to_string(),
            client_id: "idsync".to_string(),
            client_secret: Some(SecretString::new("s3cret")),
            password_grant: None,
            token_url: format!("{}/realms/{REALM}/protocol/openid-connect/token", self.base),
            // Keycloak returns as many as `max` asks, so many pages come from a small `max`.
            page_size: match self.inner.knobs.page_size {
                0 => 100,
                n => n as u32,
            },
            requests_per_second: NonZeroU32::new(10_000).expect("non-zero"),
            // The fake serves plain http on loopback.
            allow_insecure_http: true,
        };
        Box::new(KeycloakConnector::new(&settings).expect("connector"))
    }

    fn stats(&self) -> Stats {
        Stats {
            requests: self.inner.requests.load(Ordering::SeqCst),
            throttled: self.inner.throttled.load(Ordering::SeqCst),
            tokens_issued: self.inner.tokens.load(Ordering::SeqCst),
        }
    }

    fn set_directory(&self, directory: Directory) {
        *self.inner.directory.lock().expect("lock") = Arc::new(Indexed::new(directory));
    }

    fn missing_permission_hint(&self) -> &'static str {
        "view-users"
    }

    fn served(&self) -> Vec<(String, String)> {
        self.served.lock().expect("log").clone()
    }
}

/// [`crate::conformance::StartFake`] for Keycloak.
pub fn start(
    directory: Directory,
    knobs: Knobs,
) -> futures_util::future::BoxFuture<'static, Arc<dyn FakeProvider>> {
    Box::pin(FakeKeycloak::start(directory, knobs))
}
