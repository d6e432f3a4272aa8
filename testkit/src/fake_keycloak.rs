//! A fake Keycloak (Admin REST API of one realm) serving a conformance [`Directory`]:
//! client-credentials tokens, `first`/`max` paging of bare arrays, top-level groups with
//! `subGroupCount` and `/children` (Keycloak 23+), direct `/members`, disabled users, a
//! service-account user, and the [`Knobs`] misbehaviours in Keycloak's own error shapes.
//!
//! Keycloak groups form a tree: a group nested in another becomes its child (its first
//! parent wins; nesting that would close a cycle is left out, as Keycloak cannot hold it).
//!
//! Admin events (Keycloak 26.2+: `dateFrom` in epoch milliseconds, `direction`): every
//! [`FakeProvider::set_directory`] records the events Keycloak would for the difference,
//! in Keycloak's shapes: user create/update/delete, membership create/delete (none for
//! the groups a user is created with, nor for a deleted user or group), a subgroup made or
//! moved as `groups/{parent}/children`, a move to the top as `groups`, a group deletion
//! as one event (its subgroups go silently).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Admin events recorded so far, oldest first.
    events: Mutex<Vec<Value>>,
    /// "Save admin events" of the realm.
    admin_events: AtomicBool,
    /// The server takes only `yyyy-MM-dd` in `dateFrom` (Keycloak before 26.2).
    legacy_dates: AtomicBool,
    /// The time (epoch ms) of the last event, so that events are strictly ordered.
    last_event: AtomicU64,
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

    /// Turns the realm's "Save admin events" on or off (on by default).
    pub fn set_admin_events(&self, on: bool) {
        self.inner.admin_events.store(on, Ordering::SeqCst);
    }

    /// Makes the server answer `dateFrom` in epoch milliseconds with 400, as Keycloak
    /// before 26.2 does.
    pub fn set_legacy_dates(&self, on: bool) {
        self.inner.legacy_dates.store(on, Ordering::SeqCst);
    }

    /// The connector's settings against this fake, reading admin events or not.
    pub fn settings(&self, admin_events: bool) -> KeycloakSettings {
        KeycloakSettings {
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
            requests_per_second: idsync::connectors::keycloak::KEYCLOAK_DEFAULT_REQUESTS_PER_SECOND,
            admin_events,
            full_sync_every: idsync::connectors::keycloak::KEYCLOAK_DEFAULT_FULL_SYNC_EVERY,
            // The fake serves plain http on loopback.
            allow_insecure_http: true,
        }
    }

    /// How many admin events the fake has recorded.
    pub fn admin_event_count(&self) -> usize {
        self.inner.events.lock().expect("lock").len()
    }
}

/// The admin events (resource type, operation, path) Keycloak records when the realm
/// goes from `old` to `new`.
fn admin_events(old: &Indexed, new: &Indexed) -> Vec<(&'static str, &'static str, String)> {
    let mut events = Vec::new();
    let listed = |index: &Indexed, id: &str| {
        index
            .user(id)
            .filter(|u| u.status != UserStatus::Deleted)
            .cloned()
    };
    let mut created = HashSet::new();
    for user in &new.dir.users {
        let now = listed(new, &user.id);
        match (listed(old, &user.id), now) {
            (None, Some(_)) => {
                created.insert(user.id.clone());
                events.push(("USER", "CREATE", format!("users/{}", user.id)));
            }
            (Some(before), Some(after)) if before != after => {
                events.push(("USER", "UPDATE", format!("users/{}", user.id)));
            }
            _ => {}
        }
    }
    for user in &old.dir.users {
        if listed(old, &user.id).is_some() && listed(new, &user.id).is_none() {
            events.push(("USER", "DELETE", format!("users/{}", user.id)));
        }
    }
    // One event per deleted group whose parent stays: subgroups go with their parent.
    let gone = |id: &String| !new.groups.contains_key(id);
    for group in &old.dir.groups {
        let mut ancestor = old.parents.get(&group.id);
        let mut parent_gone = false;
        while let Some(id) = ancestor {
            parent_gone |= gone(id);
            ancestor = old.parents.get(id);
        }
        if gone(&group.id) && !parent_gone {
            events.push(("GROUP", "DELETE", format!("groups/{}", group.id)));
        }
    }
    let user_members = |index: &Indexed, id: &str| -> HashSet<String> {
        index.groups.get(id).map_or_else(HashSet::new, |&i| {
            index.dir.groups[i]
                .members
                .iter()
                .filter_map(|m| match m {
                    FakeMember::User(u) => Some(u.clone()),
                    FakeMember::Group(_) => None,
                })
                .collect()
        })
    };
    for group in &new.dir.groups {
        let parent = new.parents.get(&group.id);
        let Some(&before) = old.groups.get(&group.id) else {
            events.push(match parent {
                Some(p) => ("GROUP", "CREATE", format!("groups/{p}/children")),
                None => ("GROUP", "CREATE", format!("groups/{}", group.id)),
            });
            continue;
        };
        if old.dir.groups[before].name != group.name {
            events.push(("GROUP", "UPDATE", format!("groups/{}", group.id)));
        }
        if old.parents.get(&group.id) != parent {
            events.push(match parent {
                Some(p) => ("GROUP", "UPDATE", format!("groups/{p}/children")),
                None => ("GROUP", "UPDATE", "groups".to_string()),
            });
        }
        let (was, is) = (user_members(old, &group.id), user_members(new, &group.id));
        for user in is.difference(&was) {
            if !created.contains(user) && listed(new, user).is_some() {
                let path = format!("users/{user}/groups/{}", group.id);
                events.push(("GROUP_MEMBERSHIP", "CREATE", path));
            }
        }
        for user in was.difference(&is) {
            if listed(new, user).is_some() {
                let path = format!("users/{user}/groups/{}", group.id);
                events.push(("GROUP_MEMBERSHIP", "DELETE", path));
            }
        }
    }
    // A new group's members are added after it is made.
    for group in &new.dir.groups {
        if !old.groups.contains_key(&group.id) {
            for user in user_members(new, &group.id) {
                if !created.contains(&user) && listed(new, &user).is_some() {
                    let path = format!("users/{user}/groups/{}", group.id);
                    events.push(("GROUP_MEMBERSHIP", "CREATE", path));
                }
            }
        }
    }
    events
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
    /// The time of a new event: now in epoch ms, later than every earlier event.
    fn event_time(&self) -> u64 {
        let now = idsync::clock::system_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut last = self.last_event.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self
                .last_event
                .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// [`Inner::gate`], then the directory as it is now.
    // The early answer is a whole `Response` (as in fake_google.rs): its size does not
    // matter in a test fake.
    #[allow(clippy::result_large_err)]
    fn admit(&self, headers: &HeaderMap) -> Result<Arc<Indexed>, Response> {
        match self.gate(headers) {
            Some(refused) => Err(refused),
            None => Ok(self.directory.lock().expect("lock").clone()),
        }
    }

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
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
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
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
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
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
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
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
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

async fn events_config(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = inner.gate(&headers) {
        return r;
    }
    axum::Json(
        json!({"eventsEnabled": false, "eventsListeners": ["jboss-logging"],
        "enabledEventTypes": [],
        "adminEventsEnabled": inner.admin_events.load(Ordering::SeqCst),
        "adminEventsDetailsEnabled": false}),
    )
    .into_response()
}

async fn admin_events_listing(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = inner.gate(&headers) {
        return r;
    }
    let one = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let from = match one("dateFrom") {
        None => 0,
        Some(text) => match text.parse::<u64>() {
            Ok(ms) if !inner.legacy_dates.load(Ordering::SeqCst) => ms,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Invalid value for 'Date(From)', expected format is yyyy-MM-dd",
                );
            }
        },
    };
    let types: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "resourceTypes")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut events: Vec<Value> = inner
        .events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e["time"].as_u64().unwrap_or(0) >= from)
        .filter(|e| types.is_empty() || types.contains(&e["resourceType"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    // Newest first unless asked otherwise, as Keycloak.
    if one("direction").as_deref() != Some("asc") {
        events.reverse();
    }
    let map: HashMap<String, String> = query.into_iter().collect();
    inner.page(
        Listing::Users,
        events.len(),
        |i| events[i].clone(),
        &map,
        false,
    )
}

async fn one_user(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
    match index.user(&id).filter(|u| u.status != UserStatus::Deleted) {
        Some(user) => axum::Json(user_json(user)).into_response(),
        None => error(StatusCode::NOT_FOUND, "User not found"),
    }
}

async fn one_group(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
    if !index.groups.contains_key(&id) {
        return error(StatusCode::NOT_FOUND, "Could not find group by id");
    }
    axum::Json(index.group_json(&id)).into_response()
}

async fn groups_of_user(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let index = match inner.admit(&headers) {
        Ok(index) => index,
        Err(refused) => return refused,
    };
    if index
        .user(&id)
        .is_none_or(|u| u.status == UserStatus::Deleted)
    {
        return error(StatusCode::NOT_FOUND, "User not found");
    }
    let member = FakeMember::User(id);
    let of: Vec<&str> = index
        .dir
        .groups
        .iter()
        .filter(|g| g.members.contains(&member))
        .map(|g| g.id.as_str())
        .collect();
    inner.page(
        Listing::Groups,
        of.len(),
        |i| index.group_json(of[i]),
        &query,
        false,
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
            events: Mutex::new(Vec::new()),
            admin_events: AtomicBool::new(true),
            legacy_dates: AtomicBool::new(false),
            last_event: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/realms/{realm}/protocol/openid-connect/token", post(token))
            .route("/admin/realms/{realm}/users", get(users))
            .route("/admin/realms/{realm}/groups", get(groups))
            .route("/admin/realms/{realm}/groups/{id}/children", get(children))
            .route("/admin/realms/{realm}/groups/{id}/members", get(members))
            .route("/admin/realms/{realm}/groups/{id}", get(one_group))
            .route("/admin/realms/{realm}/users/{id}", get(one_user))
            .route(
                "/admin/realms/{realm}/users/{id}/groups",
                get(groups_of_user),
            )
            .route("/admin/realms/{realm}/events/config", get(events_config))
            .route(
                "/admin/realms/{realm}/admin-events",
                get(admin_events_listing),
            )
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

    /// Every read full (the suite compares full reads).
    fn connector(&self) -> Box<dyn PullConnector> {
        Box::new(KeycloakConnector::new(&self.settings(false)).expect("connector"))
    }

    /// Reads from admin events between full reads, as an admin gets by default.
    fn default_connector(&self) -> Box<dyn PullConnector> {
        Box::new(KeycloakConnector::new(&self.settings(true)).expect("connector"))
    }

    fn stats(&self) -> Stats {
        Stats {
            requests: self.inner.requests.load(Ordering::SeqCst),
            throttled: self.inner.throttled.load(Ordering::SeqCst),
            tokens_issued: self.inner.tokens.load(Ordering::SeqCst),
        }
    }

    fn set_directory(&self, directory: Directory) {
        let new = Arc::new(Indexed::new(directory));
        let mut current = self.inner.directory.lock().expect("lock");
        if self.inner.admin_events.load(Ordering::SeqCst) {
            let mut log = self.inner.events.lock().expect("lock");
            for (resource, operation, path) in admin_events(&current, &new) {
                let time = self.inner.event_time();
                log.push(json!({"time": time, "realmId": "acme-realm-id",
                    "authDetails": {"realmId": "master-realm-id", "clientId": "admin-cli-id",
                        "userId": "admin-id", "ipAddress": "127.0.0.1"},
                    "operationType": operation, "resourceType": resource,
                    "resourcePath": path}));
            }
        }
        *current = new;
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
