//! A fake Google Workspace: the OAuth token endpoint (JWT-bearer grant, RS256 assertions
//! checked with the test key) and the Admin SDK Directory API's `users`, `groups` and
//! `groups/{key}/members` listings, in Google's JSON shapes, paging and error envelopes
//! (the pages listed under "Sources" in docs/connectors-google.md, e.g.
//! <https://developers.google.com/admin-sdk/directory/reference/rest/v1/users/list>).
//! axum on 127.0.0.1:0.
//!
//! * `POST /token`: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`; the assertion
//!   must verify with `tests/support/keys/google-service-account.pub.pem` and carry `iss` = the test
//!   key's `client_email`, `aud` = this endpoint, `exp - iat <= 3600`, a `sub` the account
//!   knows, and only scopes the domain-wide delegation allowlist holds (else 401
//!   `unauthorized_client`).
//! * `GET /admin/directory/v1/users|groups`: `customer` (`my_customer` or the customer id)
//!   or `domain` required (400 `badRequest`); `maxResults` capped (users 500, groups 200);
//!   opaque `pageToken`s tied to the query; `nextPageToken` left out on the last page and
//!   the `users`/`groups` key left out when a page is empty; `showDeleted=true` lists only
//!   deleted users, with `deletionTime`; `projection=full` adds `customSchemas`.
//! * `GET /admin/directory/v1/groups/{groupKey}/members`: the key is the group's id, email
//!   or alias; members carry `type` USER or GROUP (and CUSTOMER / external accounts when
//!   [`GoogleExtras::external_members`] is set), `maxResults` ≤ 200,
//!   `includeDerivedMembership` flattens users.
//! * Errors: `{"error":{"code","message","errors":[{"message","domain","reason"}],"status"}}`.
//!   Throttling alternates 429 `rateLimitExceeded` and 403 `userRateLimitExceeded`; an
//!   expired token gets 401 `authError`; a failing last page 503 `backendError`; a denied
//!   listing 403 `forbidden` or `insufficientPermissions` ([`DenyForm`]).
//!
//! * `GET /admin/directory/v1/groups?userKey=`: the groups a user is a direct member of.
//! * `GET /admin/directory/v1/users/{userKey}`, `/groups/{groupKey}`: one record by id,
//!   primary address or alias; 404 `notFound` when there is none (deleted users too).
//! * `GET /admin/reports/v1/activity/users/all/applications/admin`: the admin log (needs
//!   the `admin.reports.audit.readonly` scope), newest first, `startTime` inclusive,
//!   `maxResults` ≤ 1000, page tokens. Every [`FakeProvider::set_directory`] records the
//!   activities Google would for the difference: `CREATE_USER`, `DELETE_USER`,
//!   `RENAME_USER`, `SUSPEND_USER`/`UNSUSPEND_USER`, `CHANGE_FIRST_NAME`/`CHANGE_LAST_NAME`
//!   (`USER_SETTINGS`, by `USER_EMAIL`), `CREATE_GROUP`, `DELETE_GROUP`,
//!   `CHANGE_GROUP_NAME` (this fake's group address follows its name, so a rename is also
//!   `CHANGE_GROUP_EMAIL`), `ADD_GROUP_MEMBER`/`REMOVE_GROUP_MEMBER` (`GROUP_SETTINGS`, by
//!   `GROUP_EMAIL` and the member's `USER_EMAIL`). No event carries an id, as in Google's.
//!
//! Directory mapping: `Service` users are not Workspace users (Google service accounts are
//! not listed by `users.list`); as group members they appear as `type: USER` accounts
//! outside the directory. `Deleted` users, and users taken out of the directory by
//! `set_directory`, are listed only with `showDeleted=true` and are no group's members. `Guest` users carry `isGuestUser: true`.

// Handlers answer early with a whole `Response` as the error: its size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use idsync::config::{GoogleDirectoryScope, GoogleSettings, parse_service_account_key};
use idsync::connectors::PullConnector;
use idsync::connectors::google::GoogleConnector;
use idsync::connectors::http::{HttpOptions, RetryPolicy};
use serde_json::{Value, json};

use crate::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, IndexedDirectory, Knobs, Listing,
    Stats, UserStatus,
};

/// The test service-account key file (a throwaway key).
pub const KEY_FILE: &str = include_str!("../../tests/support/keys/google-service-account.json");
/// Its public key, which the token endpoint verifies assertions with.
pub const PUBLIC_KEY: &str =
    include_str!("../../tests/support/keys/google-service-account.pub.pem");
/// `client_email` of the test key.
pub const CLIENT_EMAIL: &str = "idsync-reader@idsync-test.iam.gserviceaccount.com";
/// `client_id` of the test key (what an admin authorises for domain-wide delegation).
pub const CLIENT_ID: &str = "100000000000000000042";
/// The admin the connector impersonates.
pub const ADMIN: &str = "admin@example.com";
/// A user of the account who is not an admin.
pub const NOT_ADMIN: &str = "clerk@example.com";
/// The account's primary domain and customer id.
pub const DOMAIN: &str = "example.com";
pub const CUSTOMER_ID: &str = "C01abcd23";

pub const SCOPE_USER: &str = "https://www.googleapis.com/auth/admin.directory.user";
pub const SCOPE_USER_RO: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
pub const SCOPE_GROUP: &str = "https://www.googleapis.com/auth/admin.directory.group";
pub const SCOPE_GROUP_RO: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";
pub const SCOPE_MEMBER_RO: &str =
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly";
pub const SCOPE_REPORTS: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const USERS_MAX: usize = 500;
const USERS_DEFAULT: usize = 100;
const GROUPS_MAX: usize = 200;
const GROUPS_DEFAULT: usize = 200;

/// How a [`Knobs::deny`]ed listing is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyForm {
    /// 403 `forbidden` "Not Authorized to access this resource/api": the admin lacks the
    /// privilege (what Google answers a non-admin `sub`).
    #[default]
    Forbidden,
    /// 403 `insufficientPermissions` "Request had insufficient authentication scopes.",
    /// with `WWW-Authenticate: Bearer ... error="insufficient_scope", scope="..."`.
    InsufficientScope,
}

/// Google-only behaviour on top of the shared [`Knobs`].
#[derive(Debug, Clone)]
pub struct GoogleExtras {
    /// Scopes authorised for the client ID in domain-wide delegation.
    pub allowed_scopes: Vec<String>,
    /// Subjects that are admins (with Users › Read and Groups › Read).
    pub admins: Vec<String>,
    /// Subjects that exist but are not admins (their listings answer 403 `forbidden`).
    pub non_admins: Vec<String>,
    /// Ids of users shown with `archived: true`.
    pub archived: Vec<String>,
    /// Adds a CUSTOMER member and an external (gmail.com) USER member to the first group.
    pub external_members: bool,
    /// How [`Knobs::deny`] refuses.
    pub deny_form: DenyForm,
}

impl Default for GoogleExtras {
    fn default() -> Self {
        GoogleExtras {
            allowed_scopes: [
                SCOPE_USER_RO,
                SCOPE_GROUP_RO,
                SCOPE_MEMBER_RO,
                SCOPE_USER,
                SCOPE_GROUP,
                SCOPE_REPORTS,
            ]
            .map(String::from)
            .to_vec(),
            admins: vec![ADMIN.to_string()],
            non_admins: vec![NOT_ADMIN.to_string()],
            archived: Vec::new(),
            external_members: false,
            deny_form: DenyForm::Forbidden,
        }
    }
}

/// An access token the fake issued.
#[derive(Debug, Clone)]
struct Issued {
    scopes: Vec<String>,
    subject: Option<String>,
    uses: usize,
}

struct Shared {
    addr: SocketAddr,
    directory: Mutex<Arc<IndexedDirectory>>,
    knobs: Mutex<Knobs>,
    extras: Mutex<GoogleExtras>,
    tokens: Mutex<HashMap<String, Issued>>,
    requests: AtomicUsize,
    throttled: AtomicUsize,
    throttled_429: AtomicUsize,
    throttled_403: AtomicUsize,
    tokens_issued: AtomicUsize,
    token_requests: AtomicUsize,
    /// Largest `maxResults` asked, per listing (users, groups, members).
    max_results: Mutex<HashMap<&'static str, usize>>,
    /// Failed token requests, with the OAuth error code.
    token_errors: Mutex<Vec<String>>,
    /// The admin log, oldest first.
    activities: Mutex<Vec<Value>>,
    /// Users taken out of the directory by `set_directory`: Google lists deleted users
    /// with `showDeleted=true` for about 20 days.
    deleted: Mutex<Vec<FakeUser>>,
}

/// A running fake Google Workspace.
pub struct FakeGoogle {
    shared: Arc<Shared>,
    served: crate::conformance::ServedLog,
}

/// Starts a fake (the conformance suite's [`crate::conformance::StartFake`]).
pub fn start(directory: Directory, knobs: Knobs) -> BoxFuture<'static, Arc<dyn FakeProvider>> {
    Box::pin(async move {
        let fake: Arc<dyn FakeProvider> =
            FakeGoogle::start(directory, knobs, GoogleExtras::default()).await;
        fake
    })
}

impl FakeGoogle {
    /// Starts a fake serving `directory`, misbehaving as `knobs` and `extras` say.
    pub async fn start(
        directory: Directory,
        knobs: Knobs,
        extras: GoogleExtras,
    ) -> Arc<FakeGoogle> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            addr,
            directory: Mutex::new(Arc::new(IndexedDirectory::new(directory))),
            knobs: Mutex::new(knobs),
            extras: Mutex::new(extras),
            tokens: Mutex::new(HashMap::new()),
            requests: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            throttled_429: AtomicUsize::new(0),
            throttled_403: AtomicUsize::new(0),
            tokens_issued: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
            max_results: Mutex::new(HashMap::new()),
            token_errors: Mutex::new(Vec::new()),
            activities: Mutex::new(Vec::new()),
            deleted: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/admin/directory/v1/users", get(users))
            .route("/admin/directory/v1/groups", get(groups))
            .route("/admin/directory/v1/groups/{key}/members", get(members))
            .route("/admin/directory/v1/users/{key}", get(one_user))
            .route("/admin/directory/v1/groups/{key}", get(one_group))
            .route(
                "/admin/reports/v1/activity/users/all/applications/admin",
                get(admin_activities),
            )
            .with_state(shared.clone());
        let served = crate::conformance::ServedLog::default();
        let app = crate::conformance::recording(app, format!("http://{addr}"), served.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Arc::new(FakeGoogle { shared, served })
    }

    /// `http://127.0.0.1:port`: the API root and the token endpoint's host.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The settings an admin would write (defaults), pointed at this fake.
    pub fn settings(&self) -> GoogleSettings {
        GoogleSettings {
            key: parse_service_account_key(KEY_FILE).expect("the test key file parses"),
            subject: ADMIN.to_string(),
            directory: GoogleDirectoryScope::Customer("my_customer".to_string()),
            scopes: vec![SCOPE_USER_RO.to_string(), SCOPE_GROUP_RO.to_string()],
            token_url: self.token_url(),
            api_base_url: self.base_url(),
            include_suspended: true,
            include_archived: true,
            page_size: USERS_MAX as u32,
            // Above Google's documented quota (the default, 40): the fake has none.
            requests_per_second: NonZeroU32::new(1000),
            activity_reports: true,
            full_sync_every: idsync::connectors::google::GOOGLE_DEFAULT_FULL_SYNC_EVERY,
            // The fake serves plain http on loopback.
            allow_insecure_http: true,
        }
    }

    /// How many admin activities the fake has recorded.
    pub fn activity_count(&self) -> usize {
        self.shared.activities.lock().unwrap().len()
    }

    /// A connector for `settings`, with short retry waits (the fake asks for none).
    pub fn connector_for(settings: &GoogleSettings) -> GoogleConnector {
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            max_retry_time: Duration::from_secs(1),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(40),
            },
            ..HttpOptions::default()
        };
        GoogleConnector::with_options(settings, options).expect("connector")
    }

    pub fn set_knobs(&self, knobs: Knobs) {
        *self.shared.knobs.lock().unwrap() = knobs;
    }

    pub fn set_extras(&self, extras: GoogleExtras) {
        *self.shared.extras.lock().unwrap() = extras;
    }

    /// Largest `maxResults` the client asked for on `listing` (`users`, `groups`, `members`).
    pub fn max_results_asked(&self, listing: &str) -> Option<usize> {
        self.shared
            .max_results
            .lock()
            .unwrap()
            .get(listing)
            .copied()
    }

    /// Throttled answers as (429 `rateLimitExceeded`, 403 `userRateLimitExceeded`).
    pub fn throttled_by_form(&self) -> (usize, usize) {
        (
            self.shared.throttled_429.load(Ordering::SeqCst),
            self.shared.throttled_403.load(Ordering::SeqCst),
        )
    }

    /// OAuth error codes of the refused token requests.
    pub fn token_errors(&self) -> Vec<String> {
        self.shared.token_errors.lock().unwrap().clone()
    }
}

#[async_trait]
impl FakeProvider for FakeGoogle {
    fn kind(&self) -> &'static str {
        "google"
    }

    /// Every read full (the suite compares full reads).
    fn connector(&self) -> Box<dyn PullConnector> {
        let mut settings = self.settings();
        settings.activity_reports = false;
        Box::new(FakeGoogle::connector_for(&settings))
    }

    /// Reads from the admin log between full reads, as an admin gets by default.
    fn default_connector(&self) -> Box<dyn PullConnector> {
        Box::new(FakeGoogle::connector_for(&self.settings()))
    }

    fn requests_per_second(&self) -> Option<NonZeroU32> {
        self.settings().requests_per_second
    }

    fn stats(&self) -> Stats {
        Stats {
            requests: self.shared.requests.load(Ordering::SeqCst),
            throttled: self.shared.throttled.load(Ordering::SeqCst),
            tokens_issued: self.shared.tokens_issued.load(Ordering::SeqCst),
        }
    }

    fn set_directory(&self, directory: Directory) {
        let new = Arc::new(IndexedDirectory::new(directory));
        let mut current = self.shared.directory.lock().unwrap();
        let mut log = self.shared.activities.lock().unwrap();
        for (kind, name, parameters) in activities(&current, &new) {
            let n = log.len();
            let time = idsync::clock::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let parameters: Vec<Value> = parameters
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            log.push(json!({"kind": "admin#reports#activity",
                "id": {"time": time, "uniqueQualifier": format!("{}", 1000 + n),
                    "applicationName": "admin", "customerId": CUSTOMER_ID},
                "etag": format!("\"a-{n}\""),
                "actor": {"email": ADMIN, "profileId": "100000000000000000001",
                    "callerType": "USER"},
                "ipAddress": "192.0.2.10",
                "events": [{"type": kind, "name": name, "parameters": parameters}]}));
        }
        let mut deleted = self.shared.deleted.lock().unwrap();
        for user in &current.users {
            if workspace_user(&current, &user.id).is_some() && new.user(&user.id).is_none() {
                deleted.push(user.clone());
            }
        }
        *current = new;
    }

    fn missing_permission_hint(&self) -> &'static str {
        match self.shared.knobs.lock().unwrap().deny {
            Some(Listing::Users) => SCOPE_USER_RO,
            _ => SCOPE_GROUP_RO,
        }
    }

    fn served(&self) -> Vec<(String, String)> {
        self.served.lock().expect("log").clone()
    }
}

// ---------------------------------------------------------------------------------------
// Answers

/// Google's JSON error envelope.
fn google_error(status: StatusCode, message: &str, domain: &str, reason: &str) -> Response {
    let rpc = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    (
        status,
        axum::Json(json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": rpc,
        }})),
    )
        .into_response()
}

fn oauth_error(shared: &Shared, status: StatusCode, error: &str, description: &str) -> Response {
    shared.token_errors.lock().unwrap().push(error.to_string());
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, message, "global", "badRequest")
}

// ---------------------------------------------------------------------------------------
// Token endpoint

#[derive(serde::Deserialize)]
struct AssertionClaims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    iat: u64,
    exp: u64,
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[format!("http://{}/token", shared.addr)]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            let description = match e.kind() {
                ErrorKind::InvalidSignature => "Invalid JWT Signature.",
                ErrorKind::InvalidAudience => "Invalid JWT: Failed audience check.",
                ErrorKind::ExpiredSignature => {
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
                }
                _ => "Invalid JWT.",
            };
            return oauth_error(
                &shared,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                description,
            );
        }
    };
    let now = idsync::clock::system_now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if claims.exp < claims.iat || claims.exp - claims.iat > 3600 || claims.iat > now + 300 {
        return oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if claims.iss != CLIENT_EMAIL {
        return oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    }
    let extras = shared.extras.lock().unwrap().clone();
    if let Some(sub) = &claims.sub
        && !extras.admins.contains(sub)
        && !extras.non_admins.contains(sub)
    {
        return oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid email or User ID",
        );
    }
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    // Delegation is checked only when impersonating (sub set).
    if claims.sub.is_some() && scopes.iter().any(|s| !extras.allowed_scopes.contains(s)) {
        return oauth_error(
            &shared,
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    let n = shared.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let access_token = format!("ya29.c.fake-{n}-{}", uuid::Uuid::new_v4().simple());
    shared.tokens.lock().unwrap().insert(
        access_token.clone(),
        Issued {
            scopes,
            subject: claims.sub,
            uses: 0,
        },
    );
    axum::Json(json!({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

// ---------------------------------------------------------------------------------------
// API gatekeeping

/// Counts the request, then throttles, authenticates and authorises it: `Err` is the
/// answer to send instead of the listing.
fn admit(shared: &Shared, headers: &HeaderMap, listing: Listing) -> Result<(), Response> {
    let needed: &[&str] = match listing {
        Listing::Users => &[SCOPE_USER, SCOPE_USER_RO],
        Listing::Groups => &[SCOPE_GROUP, SCOPE_GROUP_RO],
        Listing::Members => &[SCOPE_GROUP, SCOPE_GROUP_RO, SCOPE_MEMBER_RO],
    };
    admit_with(shared, headers, needed, Some(listing))
}

/// [`admit`] for a call that needs one of `needed`; `listing` is what [`Knobs::deny`]
/// may refuse.
fn admit_with(
    shared: &Shared,
    headers: &HeaderMap,
    needed: &[&str],
    listing: Option<Listing>,
) -> Result<(), Response> {
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let knobs = shared.knobs.lock().unwrap().clone();
    if let Some(every) = knobs.throttle_every
        && every > 0
        && n.is_multiple_of(every)
    {
        let k = shared.throttled.fetch_add(1, Ordering::SeqCst);
        // Alternate Google's two throttling answers
        // (https://developers.google.com/admin-sdk/directory/v1/limits).
        return Err(if k.is_multiple_of(2) {
            shared.throttled_429.fetch_add(1, Ordering::SeqCst);
            google_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate Limit Exceeded",
                "usageLimits",
                "rateLimitExceeded",
            )
        } else {
            shared.throttled_403.fetch_add(1, Ordering::SeqCst);
            google_error(
                StatusCode::FORBIDDEN,
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com'.",
                "usageLimits",
                "userRateLimitExceeded",
            )
        });
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let unauthenticated = || {
        let mut response = google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "global",
            "authError",
        );
        response.headers_mut().insert(
            "www-authenticate",
            "Bearer realm=\"https://accounts.google.com/\""
                .parse()
                .expect("header"),
        );
        response
    };
    let issued = {
        let mut tokens = shared.tokens.lock().unwrap();
        let Some(issued) = tokens.get_mut(bearer) else {
            return Err(unauthenticated());
        };
        if let Some(lifetime) = knobs.token_lifetime_requests
            && issued.uses >= lifetime
        {
            return Err(unauthenticated());
        }
        issued.uses += 1;
        issued.clone()
    };
    if !issued.scopes.iter().any(|s| needed.contains(&s.as_str())) {
        return Err(insufficient_scope(needed));
    }
    let extras = shared.extras.lock().unwrap().clone();
    let is_admin = issued
        .subject
        .as_ref()
        .is_some_and(|s| extras.admins.contains(s));
    if !is_admin {
        return Err(forbidden());
    }
    if listing.is_some() && knobs.deny == listing {
        return Err(match extras.deny_form {
            DenyForm::Forbidden => forbidden(),
            DenyForm::InsufficientScope => insufficient_scope(needed),
        });
    }
    Ok(())
}

fn forbidden() -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "Not Authorized to access this resource/api",
        "global",
        "forbidden",
    )
}

fn insufficient_scope(needed: &[&str]) -> Response {
    let mut response = google_error(
        StatusCode::FORBIDDEN,
        "Request had insufficient authentication scopes.",
        "global",
        "insufficientPermissions",
    );
    let value = format!(
        "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{}\"",
        needed.join(" ")
    );
    response
        .headers_mut()
        .insert("www-authenticate", value.parse().expect("header"));
    response
}

/// `maxResults` as asked (recorded), capped at the provider's and the knob's maximum.
fn page_size(
    shared: &Shared,
    query: &HashMap<String, String>,
    name: &'static str,
    default: usize,
    max: usize,
) -> Result<usize, Response> {
    let asked = match query.get("maxResults") {
        None => default,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => {
                let mut seen = shared.max_results.lock().unwrap();
                let entry = seen.entry(name).or_insert(0);
                *entry = (*entry).max(n);
                n
            }
            _ => {
                return Err(bad_request(&format!(
                    "Invalid value '{text}'. Values must be within the range: [1, {max}]"
                )));
            }
        },
    };
    let cap = shared.knobs.lock().unwrap().page_size;
    let mut size = asked.min(max);
    if cap > 0 {
        size = size.min(cap);
    }
    Ok(size)
}

/// Which slice of the directory `customer`/`domain` selects; `Err` when neither is valid.
fn directory_scope(query: &HashMap<String, String>) -> Result<String, Response> {
    match (query.get("customer"), query.get("domain")) {
        (Some(customer), _) if customer == "my_customer" || customer == CUSTOMER_ID => {
            Ok(format!("customer={customer}"))
        }
        (Some(_), _) => Err(bad_request("Bad Request")),
        (None, Some(domain)) if domain.eq_ignore_ascii_case(DOMAIN) => {
            Ok(format!("domain={}", domain.to_ascii_lowercase()))
        }
        // A domain the admin does not administer [unverified wording].
        (None, Some(_)) => Err(forbidden()),
        (None, None) => Err(bad_request("Bad Request")),
    }
}

/// An opaque page token: the offset, bound to the listing and its query.
fn encode_page_token(binding: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{binding}\n{offset}"))
}

fn decode_page_token(binding: &str, token: &str) -> Result<usize, Response> {
    let invalid = || bad_request("Invalid page token");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (bound, offset) = text.rsplit_once('\n').ok_or_else(invalid)?;
    if bound != binding {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

/// One page of `items` as Google sends it: the array under `key` only when non-empty,
/// `nextPageToken` only when more follow; the last page fails when `fail_last` says so.
/// One page of a listing of `total` items (`item(i)` renders the i-th, only for the page).
#[allow(clippy::too_many_arguments)]
fn page_of(
    query: &HashMap<String, String>,
    kind: &str,
    key: &str,
    binding: &str,
    total: usize,
    item: impl Fn(usize) -> Value,
    size: usize,
    fail_last: bool,
) -> Response {
    let offset = match query.get("pageToken") {
        Some(token) if !token.is_empty() => match decode_page_token(binding, token) {
            Ok(offset) => offset,
            Err(response) => return response,
        },
        _ => 0,
    };
    let end = (offset + size).min(total);
    let last = end >= total;
    if last && fail_last {
        return google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Backend Error",
            "global",
            "backendError",
        );
    }
    let mut body = serde_json::Map::new();
    body.insert("kind".into(), json!(kind));
    body.insert("etag".into(), json!(format!("\"etag-{binding}-{offset}\"")));
    let slice: Vec<Value> = (offset.min(end)..end).map(item).collect();
    if !slice.is_empty() {
        body.insert(key.into(), Value::Array(slice));
    }
    if !last {
        body.insert(
            "nextPageToken".into(),
            json!(encode_page_token(binding, end)),
        );
    }
    axum::Json(Value::Object(body)).into_response()
}

// ---------------------------------------------------------------------------------------
// Shapes

fn user_json(user: &FakeUser, archived: bool, full: bool, deleted: bool) -> Value {
    let mut value = json!({
        "kind": "admin#directory#user",
        "id": user.id,
        "etag": format!("\"etag-{}\"", user.id),
        "primaryEmail": user.user_name,
        "name": {"givenName": user.given_name, "familyName": user.family_name,
                 "fullName": format!("{} {}", user.given_name, user.family_name)},
        "isAdmin": user.user_name == ADMIN,
        "isDelegatedAdmin": false,
        "lastLoginTime": "1970-01-01T00:00:00.000Z",
        "creationTime": "2021-03-10T16:02:11.000Z",
        "agreedToTerms": true,
        "suspended": user.status == UserStatus::Suspended,
        "archived": archived,
        "changePasswordAtNextLogin": false,
        "ipWhitelisted": false,
        "emails": [{"address": user.email, "primary": true},
                   {"address": format!("{}.alias@{DOMAIN}", user.id), "type": "work"}],
        "aliases": [format!("{}.alias@{DOMAIN}", user.id)],
        "customerId": CUSTOMER_ID,
        "orgUnitPath": "/",
        "isMailboxSetup": true,
        "isEnrolledIn2Sv": false,
        "isEnforcedIn2Sv": false,
        "includeInGlobalAddressList": true,
    });
    let map = value.as_object_mut().expect("object");
    if user.status == UserStatus::Suspended {
        map.insert("suspensionReason".into(), json!("ADMIN"));
    }
    if user.status == UserStatus::Guest {
        map.insert("isGuestUser".into(), json!(true));
    }
    if deleted {
        map.insert("deletionTime".into(), json!("2024-05-01T12:00:00.000Z"));
    }
    if full {
        map.insert(
            "customSchemas".into(),
            json!({"Employment": {"costCenter": format!("cc-{}", user.id)}}),
        );
    }
    value
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn group_email(group: &FakeGroup) -> String {
    format!("{}@{DOMAIN}", slug(&group.name))
}

fn group_alias(group: &FakeGroup) -> String {
    format!("{}-alias@{DOMAIN}", slug(&group.name))
}

fn group_json(group: &FakeGroup) -> Value {
    json!({
        "kind": "admin#directory#group",
        "id": group.id,
        "etag": format!("\"etag-{}\"", group.id),
        "email": group_email(group),
        "name": group.name,
        "directMembersCount": group.members.len().to_string(),
        "description": format!("The {} group", group.name),
        "adminCreated": true,
        "aliases": [group_alias(group)],
        "nonEditableAliases": [format!("{}@{DOMAIN}.test-google-a.com", slug(&group.name))],
    })
}

/// The member entries of `group`, as `members.list` lists them.
fn member_entries(
    dir: &IndexedDirectory,
    group: &FakeGroup,
    extras: &GoogleExtras,
    first: bool,
) -> Vec<Value> {
    let mut out = Vec::new();
    for member in &group.members {
        match member {
            FakeMember::User(id) => {
                let (email, status) = match dir.user(id) {
                    // Deleting a user removes it from its groups.
                    Some(u) if u.status == UserStatus::Deleted => continue,
                    Some(u) if u.status == UserStatus::Service => (
                        format!("{}@idsync-test.iam.gserviceaccount.com", u.id),
                        "ACTIVE",
                    ),
                    Some(u) if u.status == UserStatus::Suspended => (u.email.clone(), "SUSPENDED"),
                    Some(u) => (u.email.clone(), "ACTIVE"),
                    None => (format!("{id}@external.example.org"), "ACTIVE"),
                };
                out.push(
                    json!({"kind": "admin#directory#member", "etag": format!("\"m-{id}\""),
                    "id": id, "email": email, "role": "MEMBER", "type": "USER", "status": status}),
                );
            }
            FakeMember::Group(id) => {
                let email = dir
                    .group(id)
                    .map(group_email)
                    .unwrap_or_else(|| format!("{id}@elsewhere.example.org"));
                out.push(json!({"kind": "admin#directory#member", "etag": format!("\"m-{id}\""),
                    "id": id, "email": email, "role": "MEMBER", "type": "GROUP", "status": "ACTIVE"}));
            }
        }
    }
    if first && extras.external_members {
        out.push(
            json!({"kind": "admin#directory#member", "etag": "\"m-customer\"",
            "id": CUSTOMER_ID, "role": "MEMBER", "type": "CUSTOMER"}),
        );
        out.push(
            json!({"kind": "admin#directory#member", "etag": "\"m-ext\"",
            "id": "112233445566778899001", "email": "partner@gmail.com", "role": "MEMBER",
            "type": "USER", "status": "ACTIVE"}),
        );
    }
    out
}

/// `includeDerivedMembership=true`: every user below `group`, nested groups walked once.
fn derived_members(dir: &IndexedDirectory, group: &FakeGroup, extras: &GoogleExtras) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen_users = HashSet::new();
    let mut visited = HashSet::new();
    let mut stack = vec![group.clone()];
    while let Some(g) = stack.pop() {
        if !visited.insert(g.id.clone()) {
            continue;
        }
        let first = dir.groups.first().is_some_and(|f| f.id == g.id);
        for entry in member_entries(dir, &g, extras, first) {
            if entry["type"] == "GROUP" {
                if let Some(child) = dir.groups.iter().find(|c| entry["id"] == json!(c.id)) {
                    stack.push(child.clone());
                }
            } else if entry["type"] == "USER" && seen_users.insert(entry["id"].clone()) {
                out.push(entry);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Listings

async fn users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, Listing::Users) {
        return response;
    }
    let scope = match directory_scope(&query) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let size = match page_size(&shared, &query, "users", USERS_DEFAULT, USERS_MAX) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let full = match query.get("projection").map(String::as_str) {
        None | Some("basic") => false,
        Some("full") | Some("custom") => true,
        Some(other) => return bad_request(&format!("Invalid value '{other}'")),
    };
    let show_deleted = query.get("showDeleted").is_some_and(|v| v == "true");
    let dir = shared.directory.lock().unwrap().clone();
    let extras = shared.extras.lock().unwrap().clone();
    let deleted = shared.deleted.lock().unwrap().clone();
    let listed: Vec<&FakeUser> = dir
        .users
        .iter()
        .filter(|u| u.status != UserStatus::Service)
        .filter(|u| (u.status == UserStatus::Deleted) == show_deleted)
        .chain(deleted.iter().filter(|_| show_deleted))
        .collect();
    let render = |i: usize| {
        let u = listed[i];
        user_json(u, extras.archived.contains(&u.id), full, show_deleted)
    };
    let fail_last = shared.knobs.lock().unwrap().fail_last_page == Some(Listing::Users);
    let binding = format!("users?{scope}&showDeleted={show_deleted}");
    page_of(
        &query,
        "admin#directory#users",
        "users",
        &binding,
        listed.len(),
        render,
        size,
        fail_last,
    )
}

async fn groups(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, Listing::Groups) {
        return response;
    }
    let size = match page_size(&shared, &query, "groups", GROUPS_DEFAULT, GROUPS_MAX) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let dir = shared.directory.lock().unwrap().clone();
    // `userKey`: the groups the user is a direct member of (no customer or domain then).
    if let Some(key) = query.get("userKey") {
        let key = key.to_ascii_lowercase();
        let Some(user) = dir.user(&key).or_else(|| {
            dir.users
                .iter()
                .find(|u| u.user_name.eq_ignore_ascii_case(&key))
        }) else {
            return not_found("userKey");
        };
        let member = FakeMember::User(user.id.clone());
        let of: Vec<&FakeGroup> = dir
            .groups
            .iter()
            .filter(|g| g.members.contains(&member))
            .collect();
        let binding = format!("groups?userKey={}", user.id);
        return page_of(
            &query,
            "admin#directory#groups",
            "groups",
            &binding,
            of.len(),
            |i| group_json(of[i]),
            size,
            false,
        );
    }
    let scope = match directory_scope(&query) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let render = |i: usize| group_json(&dir.groups[i]);
    let fail_last = shared.knobs.lock().unwrap().fail_last_page == Some(Listing::Groups);
    let binding = format!("groups?{scope}");
    page_of(
        &query,
        "admin#directory#groups",
        "groups",
        &binding,
        dir.groups.len(),
        render,
        size,
        fail_last,
    )
}

async fn members(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, Listing::Members) {
        return response;
    }
    let size = match page_size(&shared, &query, "members", GROUPS_DEFAULT, GROUPS_MAX) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let dir = shared.directory.lock().unwrap().clone();
    let extras = shared.extras.lock().unwrap().clone();
    let key_lower = key.to_ascii_lowercase();
    // By id through the index first (how the connector asks): a scan formatting every
    // group's addresses per request made a million-user read quadratic in groups.
    let Some(group) = dir.group(&key).or_else(|| {
        dir.groups
            .iter()
            .find(|g| group_email(g) == key_lower || group_alias(g) == key_lower)
    }) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "Resource Not Found: groupKey",
            "global",
            "notFound",
        );
    };
    let derived = query
        .get("includeDerivedMembership")
        .is_some_and(|v| v == "true");
    let first = dir.groups.first().is_some_and(|f| f.id == group.id);
    let items = if derived {
        derived_members(&dir, group, &extras)
    } else {
        member_entries(&dir, group, &extras, first)
    };
    let is_last_group = dir.groups.last().is_some_and(|l| l.id == group.id);
    let fail_last =
        is_last_group && shared.knobs.lock().unwrap().fail_last_page == Some(Listing::Members);
    let binding = format!("members/{}?derived={derived}", group.id);
    page_of(
        &query,
        "admin#directory#members",
        "members",
        &binding,
        items.len(),
        |i| items[i].clone(),
        size,
        fail_last,
    )
}

// ---------------------------------------------------------------------------------------
// Single records and the admin log

fn not_found(key: &str) -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        &format!("Resource Not Found: {key}"),
        "global",
        "notFound",
    )
}

/// The users `users.list` shows (not deleted, not service accounts).
fn workspace_user<'a>(dir: &'a IndexedDirectory, id: &str) -> Option<&'a FakeUser> {
    dir.user(id)
        .filter(|u| !matches!(u.status, UserStatus::Deleted | UserStatus::Service))
}

async fn one_user(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, Listing::Users) {
        return response;
    }
    let dir = shared.directory.lock().unwrap().clone();
    let extras = shared.extras.lock().unwrap().clone();
    let key = key.to_ascii_lowercase();
    let by_id = dir
        .user(&key)
        .filter(|u| workspace_user(&dir, &u.id).is_some());
    let found = by_id.or_else(|| {
        dir.users.iter().find(|u| {
            workspace_user(&dir, &u.id).is_some()
                && (u.user_name.eq_ignore_ascii_case(&key)
                    || format!("{}.alias@{DOMAIN}", u.id) == key)
        })
    });
    let full = query.get("projection").is_some_and(|p| p == "full");
    match found {
        Some(u) => {
            axum::Json(user_json(u, extras.archived.contains(&u.id), full, false)).into_response()
        }
        None => not_found("userKey"),
    }
}

async fn one_group(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, Listing::Groups) {
        return response;
    }
    let dir = shared.directory.lock().unwrap().clone();
    let key = key.to_ascii_lowercase();
    match dir.group(&key).or_else(|| {
        dir.groups
            .iter()
            .find(|g| group_email(g) == key || group_alias(g) == key)
    }) {
        Some(group) => axum::Json(group_json(group)).into_response(),
        None => not_found("groupKey"),
    }
}

async fn admin_activities(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit_with(&shared, &headers, &[SCOPE_REPORTS], None) {
        return response;
    }
    let since = match query.get("startTime") {
        None => None,
        Some(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(time) => Some(time),
            Err(_) => return bad_request(&format!("Invalid value '{text}'")),
        },
    };
    let size = match page_size(&shared, &query, "activities", 1000, 1000) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let log = shared.activities.lock().unwrap().clone();
    // Newest first.
    let listed: Vec<Value> = log
        .into_iter()
        .rev()
        .filter(|a| {
            let time = a["id"]["time"].as_str().unwrap_or_default();
            match (since, chrono::DateTime::parse_from_rfc3339(time)) {
                (Some(since), Ok(time)) => time >= since,
                _ => true,
            }
        })
        .collect();
    let binding = format!("activities?{}", query.get("startTime").map_or("", |v| v));
    page_of(
        &query,
        "admin#reports#activities",
        "items",
        &binding,
        listed.len(),
        |i| listed[i].clone(),
        size,
        false,
    )
}

/// An admin log event: its `type`, `name` and parameters.
type Activity = (&'static str, &'static str, Vec<(&'static str, String)>);

/// The admin log events Google records when the account goes from `old` to `new`.
fn activities(old: &IndexedDirectory, new: &IndexedDirectory) -> Vec<Activity> {
    let mut out: Vec<Activity> = Vec::new();
    let user_event = |name, email: &str, more: Vec<(&'static str, String)>| -> Activity {
        let mut parameters = vec![("USER_EMAIL", email.to_string())];
        parameters.extend(more);
        ("USER_SETTINGS", name, parameters)
    };
    for user in &new.users {
        let Some(after) = workspace_user(new, &user.id) else {
            continue;
        };
        let Some(before) = workspace_user(old, &user.id) else {
            out.push(user_event("CREATE_USER", &after.user_name, vec![]));
            continue;
        };
        if before.user_name != after.user_name {
            out.push(user_event(
                "RENAME_USER",
                &before.user_name,
                vec![("NEW_VALUE", after.user_name.clone())],
            ));
        }
        for (name, was, is) in [
            ("CHANGE_FIRST_NAME", &before.given_name, &after.given_name),
            ("CHANGE_LAST_NAME", &before.family_name, &after.family_name),
        ] {
            if was != is {
                out.push(user_event(
                    name,
                    &after.user_name,
                    vec![("OLD_VALUE", was.clone()), ("NEW_VALUE", is.clone())],
                ));
            }
        }
        let suspended = |u: &FakeUser| u.status == UserStatus::Suspended;
        if suspended(before) != suspended(after) {
            let name = if suspended(after) {
                "SUSPEND_USER"
            } else {
                "UNSUSPEND_USER"
            };
            out.push(user_event(name, &after.user_name, vec![]));
        }
    }
    for user in &old.users {
        if let Some(before) = workspace_user(old, &user.id)
            && workspace_user(new, &user.id).is_none()
        {
            out.push(user_event("DELETE_USER", &before.user_name, vec![]));
        }
    }
    let group_event = |name, group: &str, more: Vec<(&'static str, String)>| -> Activity {
        let mut parameters = more;
        parameters.push(("GROUP_EMAIL", group.to_string()));
        ("GROUP_SETTINGS", name, parameters)
    };
    for group in &old.groups {
        if new.group(&group.id).is_none() {
            out.push(group_event("DELETE_GROUP", &group_email(group), vec![]));
        }
    }
    // A member's address as `members.list` shows it; deleted users are in no group.
    let member_email = |dir: &IndexedDirectory, member: &FakeMember| match member {
        FakeMember::User(id) => match dir.user(id) {
            Some(u) if u.status == UserStatus::Deleted => None,
            Some(u) => Some(u.email.clone()),
            None => Some(format!("{id}@external.example.org")),
        },
        FakeMember::Group(id) => dir.group(id).map(group_email),
    };
    for group in &new.groups {
        let email = group_email(group);
        let before = old.group(&group.id);
        match before {
            None => out.push(group_event("CREATE_GROUP", &email, vec![])),
            Some(before) if before.name != group.name => {
                out.push(group_event(
                    "CHANGE_GROUP_EMAIL",
                    &group_email(before),
                    vec![("NEW_VALUE", email.clone())],
                ));
                out.push(group_event(
                    "CHANGE_GROUP_NAME",
                    &email,
                    vec![("NEW_VALUE", group.name.clone())],
                ));
            }
            Some(_) => {}
        }
        let was: Vec<&FakeMember> = before
            .map(|b| b.members.iter().collect())
            .unwrap_or_default();
        for member in &group.members {
            if !was.contains(&member)
                && let Some(address) = member_email(new, member)
            {
                out.push(group_event(
                    "ADD_GROUP_MEMBER",
                    &email,
                    vec![("USER_EMAIL", address)],
                ));
            }
        }
        for member in was {
            if !group.members.contains(member)
                && let Some(address) = member_email(new, member)
            {
                out.push(group_event(
                    "REMOVE_GROUP_MEMBER",
                    &email,
                    vec![("USER_EMAIL", address)],
                ));
            }
        }
    }
    out
}
