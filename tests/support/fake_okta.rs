//! A fake Okta org (axum on 127.0.0.1:0) serving a [`Directory`] the way the Management API
//! does (../shared/IDP_APIS.md sections 2 and 6):
//!
//! * `POST /oauth2/v1/token`: client credentials with a `private_key_jwt` assertion,
//!   verified with tests/support/keys/okta_test_key.pub.pem (`iss` = `sub` = client id,
//!   `aud` = this token URL, `exp` at most an hour ahead, a `jti` never seen before);
//!   scopes must be granted; answers `{token_type, expires_in: 3600, access_token, scope}`.
//!   Or, in [`FakeAuth::ApiToken`] mode, `Authorization: SSWS <token>` on every call.
//! * `GET /api/v1/users`: bare arrays, `limit` (≤ 200), `after` cursors in `Link: rel="next"`
//!   (absent on the last page), `filter` on `status`, `lastUpdated gt|ge|lt|le`, `id` and
//!   `profile.*` (eq); `DEPROVISIONED` users only when a filter or search is present.
//! * `GET /api/v1/groups`: `filter` on `type`, `lastUpdated`, `lastMembershipUpdated`, `id`;
//!   the built-in `Everyone` group (type `BUILT_IN`) is always there.
//! * `GET /api/v1/groups/{id}/users`: full user objects, `DEPROVISIONED` ones included,
//!   `limit` ≤ 1000. Okta has no nested groups: the directory's group members are not
//!   served; nor are service accounts (Okta lists none among users).
//! * Every answer carries `X-Rate-Limit-Limit/-Remaining/-Reset`; errors are Okta's
//!   `{errorCode, errorSummary, errorLink, errorId, errorCauses}`.
//!
//! Status mapping: Active → ACTIVE, Suspended → SUSPENDED, Deleted → DEPROVISIONED,
//! Guest → ACTIVE with `profile.userType = "Guest"`, Service → not served.
//! `set_directory` stamps changed records with the current time (`lastUpdated`,
//! `lastMembershipUpdated`), as Okta would; a user or group missing from the new directory
//! is hard-deleted (Okta's filters cannot see that).

mod filter;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SecondsFormat, Utc};
use futures_util::future::BoxFuture;
use idsync::config::{
    KeyAlgorithm, OktaAuth, OktaSettings, SecretString, ServiceApp, StatusPolicy,
};
use idsync::connectors::PullConnector;
use idsync::connectors::http::{HttpOptions, RetryPolicy};
use idsync::connectors::okta::OktaConnector;
use serde_json::{Value, json};

use super::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, Listing, Stats, UserStatus,
};

/// The service app's client id.
pub const CLIENT_ID: &str = "0oafakeidsync0000001";
/// The `kid` the fake's trusted key is registered under.
pub const KEY_ID: &str = "fake-okta-key-1";
/// The API token accepted in [`FakeAuth::ApiToken`] mode.
pub const API_TOKEN: &str = "00fakeSSWStoken-0123456789abcdef";
/// The built-in group every user is in.
pub const EVERYONE_ID: &str = "00gEveryone000000000";
/// When the records of the first directory were last updated.
pub const INITIAL_TIME: &str = "2024-01-01T00:00:00.000Z";

/// How the fake's connector authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeAuth {
    /// OAuth 2.0 service app with a private-key JWT (the recommended setup).
    ServiceApp,
    /// `SSWS` API token (no token requests; `token_lifetime_requests` does not apply).
    ApiToken,
}

/// Okta-specific settings of the fake.
#[derive(Debug, Clone)]
pub struct OktaOptions {
    pub auth: FakeAuth,
    /// Group ids served as `APP_GROUP` (imported from AD) instead of `OKTA_GROUP`.
    pub app_groups: Vec<String>,
    /// Scopes granted to the service app.
    pub granted_scopes: Vec<String>,
    /// Requests per minute of each rate-limit bucket (users, groups, everything else).
    /// Default: 10000, so that no test paces by accident; Okta's published values are
    /// 600, 500 and 1200.
    pub bucket_limits: [u64; 3],
}

impl Default for OktaOptions {
    fn default() -> Self {
        OktaOptions {
            auth: FakeAuth::ServiceApp,
            app_groups: Vec::new(),
            granted_scopes: vec!["okta.users.read".into(), "okta.groups.read".into()],
            bucket_limits: [10_000; 3],
        }
    }
}

/// The times Okta keeps on a record.
#[derive(Debug, Clone)]
struct Times {
    created: String,
    last_updated: String,
    status_changed: String,
    last_membership_updated: String,
}

impl Times {
    fn at(time: &str) -> Times {
        Times {
            created: time.to_string(),
            last_updated: time.to_string(),
            status_changed: time.to_string(),
            last_membership_updated: time.to_string(),
        }
    }
}

struct Served {
    directory: Directory,
    users: HashMap<String, Times>,
    groups: HashMap<String, Times>,
}

/// One rate-limit bucket's window.
#[derive(Default)]
struct Bucket {
    window_start: u64,
    used: u64,
}

struct Shared {
    served: Mutex<Served>,
    knobs: Knobs,
    options: OktaOptions,
    base: OnceLock<String>,
    requests: AtomicUsize,
    throttled: AtomicUsize,
    tokens_issued: AtomicUsize,
    /// The access token in force and how many API requests it has served.
    token: Mutex<Option<(String, usize)>>,
    jtis: Mutex<HashSet<String>>,
    buckets: Mutex<[Bucket; 3]>,
    /// `path?query` of every API request, in order.
    log: Mutex<Vec<String>>,
}

/// A running fake Okta org.
pub struct FakeOkta {
    shared: Arc<Shared>,
    base: String,
}

/// Starts a fake with a service app (the conformance seam: a [`super::conformance::StartFake`]).
pub fn start(directory: Directory, knobs: Knobs) -> BoxFuture<'static, Arc<dyn FakeProvider>> {
    Box::pin(async move {
        let fake: Arc<dyn FakeProvider> =
            start_okta(directory, knobs, OktaOptions::default()).await;
        fake
    })
}

/// Starts a fake with Okta-specific options.
pub async fn start_okta(directory: Directory, knobs: Knobs, options: OktaOptions) -> Arc<FakeOkta> {
    let users = directory
        .users
        .iter()
        .map(|u| (u.id.clone(), Times::at(INITIAL_TIME)))
        .collect();
    let groups = directory
        .groups
        .iter()
        .map(|g| (g.id.clone(), Times::at(INITIAL_TIME)))
        .collect();
    let shared = Arc::new(Shared {
        served: Mutex::new(Served {
            directory,
            users,
            groups,
        }),
        knobs,
        options,
        base: OnceLock::new(),
        requests: AtomicUsize::new(0),
        throttled: AtomicUsize::new(0),
        tokens_issued: AtomicUsize::new(0),
        token: Mutex::new(None),
        jtis: Mutex::new(HashSet::new()),
        buckets: Mutex::new(Default::default()),
        log: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/oauth2/v1/token", post(token))
        .route("/api/v1/users", get(users_listing))
        .route("/api/v1/groups", get(groups_listing))
        .route("/api/v1/groups/{id}/users", get(members_listing))
        .fallback(not_found)
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    shared.base.set(base.clone()).expect("base set once");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Arc::new(FakeOkta { shared, base })
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl FakeOkta {
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The settings an admin would write for this org (base and token URLs pointing here).
    pub fn settings(&self) -> OktaSettings {
        let auth = match self.shared.options.auth {
            FakeAuth::ApiToken => OktaAuth::ApiToken(SecretString::new(API_TOKEN)),
            FakeAuth::ServiceApp => OktaAuth::ServiceApp(ServiceApp {
                client_id: CLIENT_ID.to_string(),
                private_key: SecretString::new(test_key("okta_test_key.pem")),
                algorithm: KeyAlgorithm::Rs256,
                key_id: Some(KEY_ID.to_string()),
                scopes: vec!["okta.users.read".into(), "okta.groups.read".into()],
                token_url: format!("{}/oauth2/v1/token", self.base),
            }),
        };
        OktaSettings {
            base_url: self.base.clone(),
            auth,
            group_types: vec!["OKTA_GROUP".into(), "APP_GROUP".into()],
            deprovisioned: StatusPolicy::Inactive,
            suspended: StatusPolicy::Inactive,
            page_size: 200,
            requests_per_second: std::num::NonZeroU32::new(1000).expect("non-zero"),
            full_sync_every: Duration::from_secs(24 * 3600),
        }
    }

    /// A connector built from `settings`, with short retry limits (a failing page gives up
    /// after about 4 s instead of 5 minutes).
    pub fn connector_with(&self, settings: &OktaSettings) -> OktaConnector {
        let options = HttpOptions {
            max_retry_time: Duration::from_secs(4),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(400),
            },
            ..HttpOptions::default()
        };
        OktaConnector::with_http_options(settings, options).expect("connector builds")
    }

    /// Every API request so far, as `path?query` (query percent-decoded).
    pub fn log(&self) -> Vec<String> {
        self.shared.log.lock().expect("lock").clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.shared.log.lock().expect("lock").clear();
    }
}

/// A key from tests/support/keys.
pub fn test_key(name: &str) -> String {
    let path = format!("{}/tests/support/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[async_trait]
impl FakeProvider for FakeOkta {
    fn kind(&self) -> &'static str {
        "okta"
    }

    fn connector(&self) -> Box<dyn PullConnector> {
        Box::new(self.connector_with(&self.settings()))
    }

    fn stats(&self) -> Stats {
        Stats {
            requests: self.shared.requests.load(Ordering::SeqCst),
            throttled: self.shared.throttled.load(Ordering::SeqCst),
            tokens_issued: self.shared.tokens_issued.load(Ordering::SeqCst),
        }
    }

    fn set_directory(&self, directory: Directory) {
        let now = now_text();
        let mut served = self.shared.served.lock().expect("lock");
        let old_users: HashMap<String, FakeUser> = served
            .directory
            .users
            .iter()
            .map(|u| (u.id.clone(), u.clone()))
            .collect();
        let old_groups: HashMap<String, FakeGroup> = served
            .directory
            .groups
            .iter()
            .map(|g| (g.id.clone(), g.clone()))
            .collect();
        let mut users = HashMap::new();
        for user in &directory.users {
            let times = match (old_users.get(&user.id), served.users.get(&user.id)) {
                (Some(old), Some(times)) if old == user => times.clone(),
                (Some(old), Some(times)) => {
                    let mut times = times.clone();
                    times.last_updated = now.clone();
                    if old.status != user.status {
                        times.status_changed = now.clone();
                    }
                    times
                }
                _ => Times::at(&now),
            };
            users.insert(user.id.clone(), times);
        }
        let mut groups = HashMap::new();
        for group in &directory.groups {
            let times = match (old_groups.get(&group.id), served.groups.get(&group.id)) {
                (Some(old), Some(times)) => {
                    let mut times = times.clone();
                    if old.name != group.name {
                        times.last_updated = now.clone();
                    }
                    if served_members(old) != served_members(group) {
                        times.last_membership_updated = now.clone();
                    }
                    times
                }
                _ => Times::at(&now),
            };
            groups.insert(group.id.clone(), times);
        }
        *served = Served {
            directory,
            users,
            groups,
        };
    }

    fn missing_permission_hint(&self) -> &'static str {
        match self.shared.knobs.deny {
            Some(Listing::Users) | None => "okta.users.read",
            Some(Listing::Groups | Listing::Members) => "okta.groups.read",
        }
    }
}

/// The user ids Okta would list as a group's members (no nested groups).
fn served_members(group: &FakeGroup) -> Vec<&str> {
    group
        .members
        .iter()
        .filter_map(|m| match m {
            FakeMember::User(id) => Some(id.as_str()),
            FakeMember::Group(_) => None,
        })
        .collect()
}

fn okta_status(status: UserStatus) -> Option<&'static str> {
    match status {
        UserStatus::Active | UserStatus::Guest => Some("ACTIVE"),
        UserStatus::Suspended => Some("SUSPENDED"),
        UserStatus::Deleted => Some("DEPROVISIONED"),
        UserStatus::Service => None,
    }
}

/// A user as `/api/v1/users` shows it.
fn user_json(base: &str, user: &FakeUser, times: &Times) -> Option<Value> {
    let status = okta_status(user.status)?;
    let mut profile = json!({
        "login": user.user_name, "email": user.email,
        "firstName": user.given_name, "lastName": user.family_name,
        "secondEmail": null, "mobilePhone": null,
    });
    if user.status == UserStatus::Guest {
        profile["userType"] = json!("Guest");
    }
    let activated = if status == "ACTIVE" || status == "SUSPENDED" {
        json!(times.created)
    } else {
        Value::Null
    };
    Some(json!({
        "id": user.id,
        "status": status,
        "created": times.created,
        "activated": activated,
        "statusChanged": times.status_changed,
        // Changes at every sign-in; here at every request.
        "lastLogin": now_text(),
        "lastUpdated": times.last_updated,
        "passwordChanged": times.created,
        "type": {"id": "oty1fakeDefaultType01"},
        "profile": profile,
        "credentials": {
            "password": {},
            "emails": [{"value": user.email, "status": "VERIFIED", "type": "PRIMARY"}],
            "provider": {"type": "OKTA", "name": "OKTA"}
        },
        "_links": {"self": {"href": format!("{base}/api/v1/users/{}", user.id)}}
    }))
}

/// A group as `/api/v1/groups` shows it.
fn group_json(base: &str, id: &str, name: &str, kind: &str, times: &Times) -> Value {
    let (object_class, mut profile) = match kind {
        "APP_GROUP" => (
            "okta:windows_security_principal",
            json!({"name": name, "description": format!("corp.example.com/{name}"),
                "groupType": "Security", "samAccountName": name, "groupScope": "Global",
                "dn": format!("CN={name},OU=Groups,DC=corp,DC=example,DC=com"),
                "windowsDomainQualifiedName": format!("CORP\\{name}"),
                "externalId": format!("ext-{id}")}),
        ),
        _ => ("okta:user_group", json!({"name": name})),
    };
    if kind == "BUILT_IN" {
        profile["description"] = json!("All users in your organization");
    }
    let mut group = json!({
        "id": id,
        "created": times.created,
        "lastUpdated": times.last_updated,
        "lastMembershipUpdated": times.last_membership_updated,
        "objectClass": [object_class],
        "type": kind,
        "profile": profile,
        "_links": {
            "logo": [{"name": "medium", "href": format!("{base}/img/logos/groups/okta-medium.png"), "type": "image/png"}],
            "users": {"href": format!("{base}/api/v1/groups/{id}/users")},
            "apps": {"href": format!("{base}/api/v1/groups/{id}/apps")}
        }
    });
    if kind == "APP_GROUP" {
        group["_links"]["source"] =
            json!({"href": format!("{base}/api/v1/apps/0oafakeADapp0000001")});
    }
    group
}

/// An Okta error body.
fn error(status: StatusCode, code: &str, summary: &str) -> Response {
    let id = format!("oae{}", uuid::Uuid::new_v4().simple());
    (
        status,
        axum::Json(
            json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": id, "errorCauses": []}),
        ),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "E0000022",
        "The endpoint does not support the provided HTTP method",
    )
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed: a client_assertion is required.",
        );
    }
    if let Err(why) = verify_assertion(&shared, field("client_assertion"), field("client_id")) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why);
    }
    let requested: Vec<&str> = field("scope").split_whitespace().collect();
    if requested.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    let refused: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| !shared.options.granted_scopes.iter().any(|g| g == s))
        .collect();
    if !refused.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "The following scopes are not allowed: {}",
                refused.join(" ")
            ),
        );
    }
    let n = shared.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let access_token = format!("eyJraWQiOiJmYWtlIn0.fake-okta-access-token-{n}");
    *shared.token.lock().expect("lock") = Some((access_token.clone(), 0));
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600,
        "access_token": access_token, "scope": requested.join(" ")}))
    .into_response()
}

/// Checks a client assertion the way Okta documents it (IDP_APIS.md 2.1).
fn verify_assertion(shared: &Shared, assertion: &str, client_id: &str) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let token_url = format!("{}/oauth2/v1/token", shared.base.get().expect("base"));
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| format!("The client_assertion is not a JWT: {e}"))?;
    if header.kid.as_deref().is_some_and(|kid| kid != KEY_ID) {
        return Err("The client_assertion token has an invalid kid.".into());
    }
    let key = DecodingKey::from_rsa_pem(test_key("okta_test_key.pub.pem").as_bytes())
        .expect("public key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.sub = Some(CLIENT_ID.to_string());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("The client_assertion is invalid: {e}"))?
        .claims;
    if !client_id.is_empty() && client_id != CLIENT_ID {
        return Err("The client_id does not match the client_assertion.".into());
    }
    let now = Utc::now().timestamp() as u64;
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp > now + 3600 {
        return Err("The client_assertion token has an expiration too far into the future.".into());
    }
    let jti = claims["jti"].as_str().unwrap_or("");
    if !jti.is_empty() && !shared.jtis.lock().expect("lock").insert(jti.to_string()) {
        return Err("The client_assertion token has already been used.".into());
    }
    Ok(())
}

/// Rate-limit bucket of a path: users, groups, everything else.
fn bucket_of(path: &str) -> usize {
    match path {
        "/api/v1/users" => 0,
        "/api/v1/groups" => 1,
        _ => 2,
    }
}

/// Counts the request in its bucket and returns the `X-Rate-Limit-*` headers.
fn rate_headers(shared: &Shared, path: &str, exhausted: bool) -> [(&'static str, String); 3] {
    let index = bucket_of(path);
    let limit = shared.options.bucket_limits[index];
    let now = Utc::now().timestamp() as u64;
    let mut buckets = shared.buckets.lock().expect("lock");
    let bucket = &mut buckets[index];
    if now >= bucket.window_start + 60 {
        bucket.window_start = now;
        bucket.used = 0;
    }
    bucket.used += 1;
    let (remaining, reset) = if exhausted {
        // A 429 asks to come back now (or within the second).
        (0, now)
    } else {
        (limit.saturating_sub(bucket.used), bucket.window_start + 60)
    };
    [
        ("x-rate-limit-limit", limit.to_string()),
        ("x-rate-limit-remaining", remaining.to_string()),
        ("x-rate-limit-reset", reset.to_string()),
    ]
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(*name, value);
        }
    }
    response
}

/// What every API request goes through first: the count, throttling, authentication and
/// the deny knob. `Err` is the answer to send instead.
fn gate(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    query: &HashMap<String, String>,
    listing: Listing,
) -> Result<[(&'static str, String); 3], Box<Response>> {
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let mut shown: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    shown.sort();
    shared
        .log
        .lock()
        .expect("lock")
        .push(format!("{path}?{}", shown.join("&")));
    if shared
        .knobs
        .throttle_every
        .is_some_and(|every| every > 0 && n.is_multiple_of(every))
    {
        shared.throttled.fetch_add(1, Ordering::SeqCst);
        let rate = rate_headers(shared, path, true);
        return Err(Box::new(with_headers(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            ),
            &rate,
        )));
    }
    let rate = rate_headers(shared, path, false);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authorized = match shared.options.auth {
        FakeAuth::ApiToken => authorization == format!("SSWS {API_TOKEN}"),
        FakeAuth::ServiceApp => {
            let mut token = shared.token.lock().expect("lock");
            match token.as_mut() {
                Some((current, used)) if authorization == format!("Bearer {current}") => {
                    let lifetime = shared.knobs.token_lifetime_requests.unwrap_or(usize::MAX);
                    *used += 1;
                    *used <= lifetime
                }
                _ => false,
            }
        }
    };
    if !authorized {
        return Err(Box::new(with_headers(
            error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
            ),
            &rate,
        )));
    }
    if shared.knobs.deny == Some(listing) {
        let scope = match listing {
            Listing::Users => "okta.users.read",
            Listing::Groups | Listing::Members => "okta.groups.read",
        };
        let mut response = error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
        );
        if shared.options.auth == FakeAuth::ServiceApp {
            let base = shared.base.get().expect("base");
            let challenge = format!(
                "Bearer authorization_uri=\"{base}/oauth2/v1/authorize\", realm=\"{base}\", \
                 scope=\"{scope}\", error=\"insufficient_scope\", error_description=\"The access \
                 token provided does not contain the required scopes.\", resource=\"{path}\""
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert("www-authenticate", value);
            }
        }
        return Err(Box::new(with_headers(response, &rate)));
    }
    Ok(rate)
}

/// How one listing pages.
struct Paging<'a> {
    path: &'a str,
    query: &'a HashMap<String, String>,
    /// Okta's largest and default `limit` for the listing.
    max: usize,
    default: usize,
    /// The last page is a 500 instead.
    fail_last: bool,
}

/// One page of `items` (sorted by id) after the `after` cursor, with its `Link` headers.
fn page(
    shared: &Shared,
    paging: Paging<'_>,
    items: Vec<(String, Value)>,
    rate: &[(&'static str, String)],
) -> Response {
    let Paging {
        path,
        query,
        max,
        default,
        fail_last,
    } = paging;
    let mut limit = query
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max);
    if shared.knobs.page_size > 0 {
        limit = limit.min(shared.knobs.page_size);
    }
    let start = match query.get("after") {
        Some(after) => items.partition_point(|(id, _)| id.as_str() <= after.as_str()),
        None => 0,
    };
    let end = (start + limit).min(items.len());
    let more = end < items.len();
    if fail_last && !more {
        return with_headers(
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "E0000009",
                "Internal Server Error",
            ),
            rate,
        );
    }
    let body: Vec<Value> = items[start..end].iter().map(|(_, v)| v.clone()).collect();
    let base = shared.base.get().expect("base");
    let link = |after: Option<&str>| {
        let mut url = url::Url::parse(&format!("{base}{path}")).expect("url");
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(after) = after {
                pairs.append_pair("after", after);
            }
            pairs.append_pair("limit", &limit.to_string());
            for key in ["filter", "search"] {
                if let Some(value) = query.get(key) {
                    pairs.append_pair(key, value);
                }
            }
        }
        url.to_string()
    };
    let mut response = axum::Json(body).into_response();
    let self_link = format!(
        "<{}>; rel=\"self\"",
        link(query.get("after").map(String::as_str))
    );
    response
        .headers_mut()
        .append("link", HeaderValue::from_str(&self_link).expect("link"));
    if more && end > 0 {
        let next = format!("<{}>; rel=\"next\"", link(Some(&items[end - 1].0)));
        response
            .headers_mut()
            .append("link", HeaderValue::from_str(&next).expect("link"));
    }
    with_headers(response, rate)
}

fn bad_filter(why: &str) -> Response {
    let id = format!("oae{}", uuid::Uuid::new_v4().simple());
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"errorCode": "E0000031", "errorSummary": "Invalid search criteria.",
            "errorLink": "E0000031", "errorId": id,
            "errorCauses": [{"errorSummary": why}]}),
        ),
    )
        .into_response()
}

async fn users_listing(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = "/api/v1/users";
    let rate = match gate(&shared, &headers, path, &query, Listing::Users) {
        Ok(rate) => rate,
        Err(response) => return *response,
    };
    let expr = match query.get("filter") {
        Some(text) => match filter::parse(text, &filter::USERS) {
            Ok(expr) => Some(expr),
            Err(why) => return with_headers(bad_filter(&why), &rate),
        },
        None => None,
    };
    let filtered = expr.is_some() || query.contains_key("search");
    let base = shared.base.get().expect("base").clone();
    let mut items: Vec<(String, Value)> = {
        let served = shared.served.lock().expect("lock");
        served
            .directory
            .users
            .iter()
            .filter_map(|u| {
                let value = user_json(&base, u, served.users.get(&u.id)?)?;
                Some((u.id.clone(), value))
            })
            .filter(|(_, v)| filtered || v["status"] != "DEPROVISIONED")
            .filter(|(_, v)| {
                expr.as_ref().is_none_or(|e| {
                    e.matches(&|attr| {
                        let pointer = format!("/{}", attr.replace('.', "/"));
                        v.pointer(&pointer)
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                })
            })
            .collect()
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let fail = shared.knobs.fail_last_page == Some(Listing::Users);
    let paging = Paging {
        path,
        query: &query,
        max: 200,
        default: 200,
        fail_last: fail,
    };
    page(&shared, paging, items, &rate)
}

/// The groups Okta would list: the directory's, typed, plus `Everyone`.
fn all_groups(shared: &Shared, served: &Served) -> Vec<(String, Value)> {
    let base = shared.base.get().expect("base");
    let mut items: Vec<(String, Value)> = served
        .directory
        .groups
        .iter()
        .filter_map(|g| {
            let kind = if shared.options.app_groups.contains(&g.id) {
                "APP_GROUP"
            } else {
                "OKTA_GROUP"
            };
            Some((
                g.id.clone(),
                group_json(base, &g.id, &g.name, kind, served.groups.get(&g.id)?),
            ))
        })
        .collect();
    let latest_user = served
        .users
        .values()
        .map(|t| t.created.clone())
        .max()
        .unwrap_or_else(|| INITIAL_TIME.to_string());
    let mut everyone = Times::at(INITIAL_TIME);
    everyone.last_membership_updated = latest_user;
    items.push((
        EVERYONE_ID.to_string(),
        group_json(base, EVERYONE_ID, "Everyone", "BUILT_IN", &everyone),
    ));
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

async fn groups_listing(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = "/api/v1/groups";
    let rate = match gate(&shared, &headers, path, &query, Listing::Groups) {
        Ok(rate) => rate,
        Err(response) => return *response,
    };
    let expr = match query.get("filter") {
        Some(text) => match filter::parse(text, &filter::GROUPS) {
            Ok(expr) => Some(expr),
            Err(why) => return with_headers(bad_filter(&why), &rate),
        },
        None => None,
    };
    let items: Vec<(String, Value)> = {
        let served = shared.served.lock().expect("lock");
        all_groups(&shared, &served)
            .into_iter()
            .filter(|(_, v)| {
                expr.as_ref().is_none_or(|e| {
                    e.matches(&|attr| v.get(attr).and_then(Value::as_str).map(str::to_string))
                })
            })
            .collect()
    };
    let fail = shared.knobs.fail_last_page == Some(Listing::Groups);
    let paging = Paging {
        path,
        query: &query,
        max: 10_000,
        default: 10_000,
        fail_last: fail,
    };
    page(&shared, paging, items, &rate)
}

async fn members_listing(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/api/v1/groups/{id}/users");
    let rate = match gate(&shared, &headers, &path, &query, Listing::Members) {
        Ok(rate) => rate,
        Err(response) => return *response,
    };
    let base = shared.base.get().expect("base").clone();
    let (items, last_group) = {
        let served = shared.served.lock().expect("lock");
        let users: HashMap<&str, &FakeUser> = served
            .directory
            .users
            .iter()
            .map(|u| (u.id.as_str(), u))
            .collect();
        let member_ids: Option<Vec<&str>> = if id == EVERYONE_ID {
            Some(users.keys().copied().collect())
        } else {
            served
                .directory
                .groups
                .iter()
                .find(|g| g.id == id)
                .map(served_members)
        };
        let Some(member_ids) = member_ids else {
            return with_headers(
                error(
                    StatusCode::NOT_FOUND,
                    "E0000007",
                    &format!("Not found: Resource not found: {id} (UserGroup)"),
                ),
                &rate,
            );
        };
        let mut items: Vec<(String, Value)> = member_ids
            .into_iter()
            .filter_map(|uid| {
                let user = users.get(uid)?;
                let value = user_json(&base, user, served.users.get(uid)?)?;
                Some((uid.to_string(), value))
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.dedup_by(|a, b| a.0 == b.0);
        let last_group = served.directory.groups.iter().map(|g| g.id.clone()).max();
        (items, last_group)
    };
    let fail = shared.knobs.fail_last_page == Some(Listing::Members)
        && last_group.as_deref() == Some(id.as_str());
    let paging = Paging {
        path: &path,
        query: &query,
        max: 1000,
        default: 1000,
        fail_last: fail,
    };
    page(&shared, paging, items, &rate)
}
