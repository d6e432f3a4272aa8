//! A fake Microsoft Graph v1.0 (and its Entra ID token endpoint) on 127.0.0.1, serving a
//! conformance [`Directory`] in Graph's shapes, as Microsoft documents them (the pages listed
//! under "Sources" in docs/connectors-azure.md, e.g.
//! <https://learn.microsoft.com/en-us/graph/delta-query-overview>).
//!
//! * `POST /{tenant}/oauth2/v2.0/token`: client credentials with `client_secret`, or a
//!   `client_assertion` JWT verified against the test certificate
//!   (tests/support/keys/graph-test-cert.pem: signature, `x5t#S256`/`x5t`, `aud` = this
//!   token URL, `iss` = `sub` = client id, `exp`, `nbf`, `jti`). Errors in Entra's OAuth
//!   form (`invalid_client`, `AADSTS...`).
//! * `GET /v1.0/users`, `/groups`, `/groups/{id}`, `/groups/{id}/members`: `$select` (the
//!   documented default set without it; unknown properties are a 400), `$top` (default
//!   100, clamped to 999, capped by [`Knobs::page_size`]), `$filter` (one `prop eq value`
//!   clause), `$skip` refused; absolute `@odata.nextLink` with an opaque `$skiptoken` that
//!   carries the original options; `@odata.context`; members carry `@odata.type`.
//! * `GET /v1.0/users/delta`, `/groups/delta`: rounds of nextLinks ending in a deltaLink;
//!   the initial round returns everything (never-set properties left out), a deltaLink
//!   returns exactly the differences between the directory it was issued for and the
//!   current one ([`FakeProvider::set_directory`] makes a new version): changed objects,
//!   `@removed` (`changed` for a user marked deleted, `deleted` when gone), `members@delta`
//!   additions and `@removed` removals, a group's entries split over consecutive items
//!   (and pages). `Prefer: return=minimal` on a deltaLink round returns only changed
//!   properties. `$deltatoken=latest` returns just a deltaLink. Expired tokens
//!   ([`FakeAzure::expire_delta_tokens`]) get 410 (or 400) `syncStateNotFound`.
//! * Directory mapping: `UserStatus::Suspended` is `accountEnabled: false`, `Guest` is
//!   `userType: Guest`, `Deleted` users are not listed (soft-deleted), `Service` users are
//!   service principals (members of type `#microsoft.graph.servicePrincipal`, never users).
//!   The first group also holds a device.
//! * Knobs: 429 with `Retry-After` (1, 0.2 or 0 s) and `x-ms-throttle-*` headers; tokens
//!   that stop working (401 `InvalidAuthenticationToken`); a last page that fails with 500
//!   (Users: `/users` and the users delta round; Groups: `/groups` and the groups delta
//!   round; Members: the last group's `/members` and the groups delta round, which carries
//!   the members); 403 `Authorization_RequestDenied` for a listing (same mapping).
//!
//! Scale: every version (each `set_directory`, `set_user_properties`, expiry) keeps its
//! directory indexed by id, shared with the versions it did not change, and a change log:
//! the users and groups whose Graph shape may differ from the version before. A page walks
//! from a cursor in its skiptoken and renders only what it returns: an initial round and a
//! plain listing walk the current directory; an incremental round walks the ids the log
//! names between the token's version and the current one (compared in both versions, so
//! a change undone lists nothing), not a diff of whole snapshots.
//!
//! Not emulated: `/transitiveMembers`, `$count`/`$search`/`ConsistencyLevel`, `$orderby`,
//! `$batch`, 410 with `Location`, throttling scopes and resource units.

// Handlers return axum responses as errors; their size does not matter in a test fake.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::future::BoxFuture;
use idsync::config::{AzureCredential, AzureSettings, SecretString};
use idsync::connectors::PullConnector;
use idsync::connectors::azure::{AzureConnector, thumbprint_sha1, thumbprint_sha256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, Listing, Stats, UserStatus,
};

/// The fake tenant (a GUID, as Entra tenants are).
pub const TENANT: &str = "7c1f3e52-4a8b-4d6e-9f10-2b3c4d5e6f70";
/// The app registration's client id.
pub const CLIENT_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// The app registration's client secret.
pub const CLIENT_SECRET: &str = "fake~graph~client~secret";
/// The id of the device the first group holds.
pub const DEVICE_ID: &str = "d0d0d0d0-0000-4000-8000-000000000001";
/// Items per delta page (and `members@delta` entries per group item) unless
/// [`Knobs::page_size`] is set.
pub const DELTA_PAGE: usize = 100;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Properties Graph returns for users without `$select`.
const USER_DEFAULT_SELECT: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// User properties the fake knows (a `$select` of anything else is a 400, like Graph's
/// "Could not find a property named ..."), besides `extension_*` names and extra ones set
/// with [`FakeAzure::set_user_properties`].
const USER_PROPERTIES: [&str; 32] = [
    "id",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
    "accountEnabled",
    "userType",
    "otherMails",
    "proxyAddresses",
    "jobTitle",
    "department",
    "companyName",
    "employeeId",
    "employeeType",
    "officeLocation",
    "mobilePhone",
    "businessPhones",
    "preferredLanguage",
    "externalUserState",
    "creationType",
    "createdDateTime",
    "deletedDateTime",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesSyncEnabled",
    "onPremisesExtensionAttributes",
    "onPremisesSecurityIdentifier",
    "securityIdentifier",
    "identities",
    "usageLocation",
    "costCenter",
];

const GROUP_PROPERTIES: [&str; 17] = [
    "id",
    "displayName",
    "description",
    "mail",
    "mailNickname",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "createdDateTime",
    "deletedDateTime",
    "onPremisesSyncEnabled",
    "onPremisesSamAccountName",
    "securityIdentifier",
    "membershipRule",
    "membershipRuleProcessingState",
    "visibility",
    "uniqueName",
];

/// A directory as the fake serves it, indexed once (per [`FakeProvider::set_directory`]).
#[derive(Debug, Default)]
struct Dir {
    directory: Directory,
    /// The first position of each user id (as [`Directory::user`] finds it).
    users: HashMap<String, usize>,
    /// The first position of each group id.
    groups: HashMap<String, usize>,
    /// The positions of the users Graph lists, in order.
    listed: Vec<usize>,
}

impl Dir {
    fn new(directory: Directory) -> Dir {
        let mut users = HashMap::new();
        for (i, user) in directory.users.iter().enumerate() {
            users.entry(user.id.clone()).or_insert(i);
        }
        let mut groups = HashMap::new();
        for (i, group) in directory.groups.iter().enumerate() {
            groups.entry(group.id.clone()).or_insert(i);
        }
        let listed = (0..directory.users.len())
            .filter(|&i| listed(&directory.users[i]))
            .collect();
        Dir {
            directory,
            users,
            groups,
            listed,
        }
    }

    fn user(&self, id: &str) -> Option<&FakeUser> {
        self.users.get(id).map(|&i| &self.directory.users[i])
    }

    /// The position of the user with this id, if Graph lists it.
    fn listed_position(&self, id: &str) -> Option<usize> {
        self.users
            .get(id)
            .copied()
            .filter(|&i| listed(&self.directory.users[i]))
    }

    fn group(&self, id: &str) -> Option<&FakeGroup> {
        self.groups.get(id).map(|&i| &self.directory.groups[i])
    }

    /// Whether this group holds the device (the directory's first group does).
    fn is_first_group(&self, id: &str) -> bool {
        self.directory.groups.first().is_some_and(|g| g.id == id)
    }
}

/// Extra user properties by user id (merged over the built-in ones).
type Extra = HashMap<String, Map<String, Value>>;

/// One version of what the fake serves (versions share what did not change).
#[derive(Debug, Clone, Default)]
struct Snapshot {
    dir: Arc<Dir>,
    extra: Arc<Extra>,
}

/// What a version changed from the one before: the ids whose delta entries may differ
/// (a delta round from version `f` to `t` looks only at the ids changed in between).
#[derive(Debug, Clone, Default)]
struct Changes {
    users: HashSet<String>,
    groups: HashSet<String>,
}

impl Changes {
    /// The users and groups whose Graph shape may differ between `old` and `new`: users
    /// that changed, appeared or left; groups that changed, appeared or left, whose
    /// members resolve differently (a member user deleted, suspended into a service
    /// principal, gone; a member group gone or back), or that gained or lost the device.
    fn between(old: &Dir, new: &Dir) -> Changes {
        let mut changes = Changes::default();
        for user in new.directory.users.iter().chain(&old.directory.users) {
            if old.user(&user.id) != new.user(&user.id) {
                changes.users.insert(user.id.clone());
            }
        }
        // How a member user resolves: not at all, as a service principal, or as a user.
        let class = |dir: &Dir, id: &str| match dir.user(id).map(|u| u.status) {
            None | Some(UserStatus::Deleted) => 0,
            Some(UserStatus::Service) => 1,
            Some(_) => 2,
        };
        let reclassed: HashSet<&str> = changes
            .users
            .iter()
            .map(String::as_str)
            .filter(|id| class(old, id) != class(new, id))
            .collect();
        let appeared_or_left: HashSet<&str> = new
            .directory
            .groups
            .iter()
            .chain(&old.directory.groups)
            .map(|g| g.id.as_str())
            .filter(|id| old.group(id).is_some() != new.group(id).is_some())
            .collect();
        for group in new.directory.groups.iter().chain(&old.directory.groups) {
            let id = group.id.as_str();
            let changed = match (old.group(id), new.group(id)) {
                (Some(o), Some(n)) => {
                    o.name != n.name
                        || o.members != n.members
                        || old.is_first_group(id) != new.is_first_group(id)
                        || ((!reclassed.is_empty() || !appeared_or_left.is_empty())
                            && n.members.iter().any(|m| match m {
                                FakeMember::User(u) => reclassed.contains(u.as_str()),
                                FakeMember::Group(g) => appeared_or_left.contains(g.as_str()),
                            }))
                }
                _ => true,
            };
            if changed {
                changes.groups.insert(id.to_string());
            }
        }
        changes
    }
}

/// A request the fake answered (API requests only).
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// The `Prefer` header, if any.
    pub prefer: Option<String>,
}

impl Logged {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the client authenticated at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenGrant {
    Secret,
    Assertion,
}

struct FakeState {
    knobs: Knobs,
    versions: Vec<Snapshot>,
    /// What each version changed from the one before (none for the first).
    changes: Vec<Changes>,
    /// The units of recent incremental delta rounds, by (kind, from, to).
    rounds: HashMap<(String, usize, usize), Arc<Vec<Unit>>>,
    /// Delta tokens of versions below this are expired.
    expired_before: usize,
    expired_status: u16,
    stats: Stats,
    calls_with_token: usize,
    log: Vec<Logged>,
    grants: Vec<TokenGrant>,
    /// Assertion JWT ids seen (a replayed `jti` is refused).
    jtis: HashSet<String>,
    /// The last page of a delta round carries no deltaLink (a truncated round).
    truncate_delta_rounds: bool,
}

impl FakeState {
    fn push_version(&mut self, snapshot: Snapshot, changes: Changes) {
        self.versions.push(snapshot);
        self.changes.push(changes);
    }
}

struct Inner {
    base: String,
    state: Mutex<FakeState>,
}

type App = Arc<Inner>;

/// A running fake Graph. Dropping it stops the server.
pub struct FakeAzure {
    inner: App,
    server: tokio::task::JoinHandle<()>,
    served: crate::conformance::ServedLog,
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a fake Graph serving `directory` with `knobs`.
pub async fn start(directory: Directory, knobs: Knobs) -> Arc<FakeAzure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let inner = Arc::new(Inner {
        base,
        state: Mutex::new(FakeState {
            knobs,
            versions: vec![Snapshot {
                dir: Arc::new(Dir::new(directory)),
                extra: Arc::default(),
            }],
            changes: vec![Changes::default()],
            rounds: HashMap::new(),
            expired_before: 0,
            expired_status: 410,
            stats: Stats::default(),
            calls_with_token: 0,
            log: Vec::new(),
            grants: Vec::new(),
            jtis: HashSet::new(),
            truncate_delta_rounds: false,
        }),
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/users", get(users))
        .route("/v1.0/users/delta", get(users_delta))
        .route("/v1.0/groups", get(groups))
        .route("/v1.0/groups/delta", get(groups_delta))
        .route("/v1.0/groups/{id}", get(group))
        .route("/v1.0/groups/{id}/members", get(members))
        .fallback(|| async {
            graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Resource not found for the segment.",
            )
        })
        .with_state(inner.clone());
    let served = crate::conformance::ServedLog::default();
    let app = crate::conformance::recording(app, inner.base.clone(), served.clone());
    // Replies go out at once (no Nagle delay on the tail of a large page).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Arc::new(FakeAzure {
        inner,
        server,
        served,
    })
}

/// [`start`] in the conformance seam's shape (`StartFake`).
pub fn start_provider(
    directory: Directory,
    knobs: Knobs,
) -> BoxFuture<'static, Arc<dyn FakeProvider>> {
    Box::pin(async move { start(directory, knobs).await as Arc<dyn FakeProvider> })
}

/// The test certificate (DER) and its private key (PEM), as the connector's settings take
/// them.
pub fn test_certificate() -> AzureCredential {
    credential_with_key("graph-test-key.pem")
}

/// The registered certificate with another, unregistered key: assertions fail to verify.
pub fn wrong_key_certificate() -> AzureCredential {
    credential_with_key("graph-other-key.pem")
}

fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/keys")
}

fn credential_with_key(key_file: &str) -> AzureCredential {
    let key = std::fs::read_to_string(keys_dir().join(key_file)).expect("test key");
    AzureCredential::Certificate {
        certificate_der: certificate_der(),
        private_key_pem: SecretString::new(key),
    }
}

fn certificate_pem() -> String {
    std::fs::read_to_string(keys_dir().join("graph-test-cert.pem")).expect("test certificate")
}

fn certificate_der() -> Vec<u8> {
    let pem = certificate_pem();
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD.decode(body).expect("certificate base64")
}

impl FakeAzure {
    /// `http://127.0.0.1:<port>`: both the authority and the Graph host.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The fake's token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.inner.base)
    }

    /// Settings an admin would write for this tenant (client secret), with the hosts
    /// pointed at the fake, a high request rate and a 3-second retry budget.
    pub fn settings(&self) -> AzureSettings {
        let mut s = AzureSettings::new(
            TENANT,
            CLIENT_ID,
            AzureCredential::Secret(SecretString::new(CLIENT_SECRET)),
        );
        s.token_url = self.token_url();
        s.graph_url = self.inner.base.clone();
        // The default: no client-side ceiling (Graph paces with 429 and Retry-After).
        s.requests_per_second = None;
        s.max_retry_time = std::time::Duration::from_secs(3);
        // The fake serves plain http on loopback.
        s.allow_insecure_http = true;
        s
    }

    /// A connector built from `settings`.
    pub fn connector_with(&self, settings: &AzureSettings) -> AzureConnector {
        AzureConnector::new(settings).expect("connector")
    }

    /// Replaces the knobs (for example to make the next run fail).
    pub fn set_knobs(&self, knobs: Knobs) {
        self.inner.state.lock().unwrap().knobs = knobs;
    }

    /// Sets extra properties of a user (a new version: the next delta round reports it).
    pub fn set_user_properties(&self, id: &str, properties: Map<String, Value>) {
        let mut state = self.inner.state.lock().unwrap();
        let mut next = state.versions.last().cloned().unwrap_or_default();
        Arc::make_mut(&mut next.extra).insert(id.to_string(), properties);
        let changes = Changes {
            users: HashSet::from([id.to_string()]),
            groups: HashSet::new(),
        };
        state.push_version(next, changes);
    }

    /// Every delta token issued so far expires: using one gets 410 `syncStateNotFound`.
    pub fn expire_delta_tokens(&self) {
        self.expire_delta_tokens_with(410);
    }

    /// Like [`FakeAzure::expire_delta_tokens`], answering `status` (400 or 410).
    pub fn expire_delta_tokens_with(&self, status: u16) {
        let mut state = self.inner.state.lock().unwrap();
        let current = state.versions.last().cloned().unwrap_or_default();
        state.push_version(current, Changes::default());
        state.expired_before = state.versions.len() - 1;
        state.expired_status = status;
    }

    /// Delta rounds end without `@odata.deltaLink` (a truncated answer) while `on`.
    pub fn truncate_delta_rounds(&self, on: bool) {
        self.inner.state.lock().unwrap().truncate_delta_rounds = on;
    }

    /// The API requests answered so far (token requests not included).
    pub fn requests(&self) -> Vec<Logged> {
        self.inner.state.lock().unwrap().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.inner.state.lock().unwrap().log.clear();
    }

    /// How each token was obtained, in order.
    pub fn grants(&self) -> Vec<TokenGrant> {
        self.inner.state.lock().unwrap().grants.clone()
    }

    /// The directory served now.
    pub fn directory(&self) -> Directory {
        let state = self.inner.state.lock().unwrap();
        state
            .versions
            .last()
            .map(|s| s.dir.directory.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl FakeProvider for FakeAzure {
    fn kind(&self) -> &'static str {
        "azure"
    }

    fn connector(&self) -> Box<dyn PullConnector> {
        Box::new(self.connector_with(&self.settings()))
    }

    fn stats(&self) -> Stats {
        self.inner.state.lock().unwrap().stats
    }

    fn set_directory(&self, directory: Directory) {
        let dir = Dir::new(directory);
        let mut state = self.inner.state.lock().unwrap();
        let last = state.versions.last().cloned().unwrap_or_default();
        let changes = Changes::between(&last.dir, &dir);
        let next = Snapshot {
            dir: Arc::new(dir),
            extra: last.extra,
        };
        state.push_version(next, changes);
    }

    fn missing_permission_hint(&self) -> &'static str {
        match self.inner.state.lock().unwrap().knobs.deny {
            Some(Listing::Users) => "User.Read.All",
            _ => "GroupMember.Read.All",
        }
    }

    fn served(&self) -> Vec<(String, String)> {
        self.served.lock().expect("log").clone()
    }
}

// ---------------------------------------------------------------------------------------
// Responses

/// Graph's error envelope.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    (
        status,
        axum::Json(json!({"error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2024-05-02T10:00:00",
                "request-id": id,
                "client-request-id": id,
            }
        }})),
    )
        .into_response()
}

/// Entra's OAuth error body.
fn oauth_error(status: StatusCode, error: &str, aadsts: u32, description: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": format!("AADSTS{aadsts}: {description} Trace ID: 0 Correlation ID: 0 Timestamp: 2024-05-02 10:00:00Z"),
            "error_codes": [aadsts],
            "timestamp": "2024-05-02 10:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        })),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn parse_query(raw: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn encode_token<T: Serialize>(token: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(token).expect("token json"))
}

/// A paging or delta link back to `path` on this fake, carrying `token` in the query
/// parameter `param` (`$skiptoken` or `$deltatoken`).
fn link_with<T: Serialize>(base: &str, path: &str, param: &str, token: &T) -> Value {
    json!(format!("{base}{path}?{param}={}", encode_token(token)))
}

fn decode_token<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Common gate of every API request: log, throttle, authenticate, deny. `listings` are
/// the knob listings this request belongs to.
fn gate(
    app: &Inner,
    headers: &HeaderMap,
    path: &str,
    query: &[(String, String)],
    listings: &[Listing],
) -> Result<(), Response> {
    let mut state = app.state.lock().unwrap();
    state.stats.requests += 1;
    state.log.push(Logged {
        path: path.to_string(),
        query: query.to_vec(),
        prefer: headers
            .get("prefer")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    if let Some(n) = state.knobs.throttle_every
        && n > 0
        && state.stats.requests.is_multiple_of(n)
    {
        state.stats.throttled += 1;
        let wait = match state.stats.throttled % 3 {
            1 => "1",
            2 => "0.2",
            _ => "0",
        };
        let mut response = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        );
        let h = response.headers_mut();
        h.insert("retry-after", wait.parse().expect("header"));
        h.insert(
            "x-ms-throttle-scope",
            format!("Tenant_Application/ReadWrite/{CLIENT_ID}/{TENANT}")
                .parse()
                .expect("header"),
        );
        h.insert(
            "x-ms-throttle-information",
            "ResourceUnitLimitExceeded".parse().expect("header"),
        );
        return Err(response);
    }
    let current = format!("Bearer fake-graph-token-{}", state.stats.tokens_issued);
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut valid = state.stats.tokens_issued > 0 && presented == current;
    if valid && let Some(lifetime) = state.knobs.token_lifetime_requests {
        state.calls_with_token += 1;
        valid = state.calls_with_token <= lifetime;
    }
    if !valid {
        let message = if presented.is_empty() {
            "Access token is empty."
        } else {
            "Access token has expired or is not yet valid."
        };
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        ));
    }
    if let Some(denied) = state.knobs.deny
        && listings.contains(&denied)
    {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    if param(query, "$skip").is_some() {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "'$skip' is not supported by the service.",
        ));
    }
    Ok(())
}

fn fails_last_page(app: &Inner, listings: &[Listing]) -> bool {
    let state = app.state.lock().unwrap();
    state
        .knobs
        .fail_last_page
        .is_some_and(|l| listings.contains(&l))
}

fn page_cap(app: &Inner) -> usize {
    app.state.lock().unwrap().knobs.page_size
}

fn current(app: &Inner) -> (usize, Snapshot) {
    let state = app.state.lock().unwrap();
    let v = state.versions.len() - 1;
    (v, state.versions[v].clone())
}

fn server_error() -> Response {
    graph_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UnknownError",
        "An internal server error occurred.",
    )
}

// ---------------------------------------------------------------------------------------
// The directory in Graph's shapes

fn listed(user: &FakeUser) -> bool {
    !matches!(user.status, UserStatus::Deleted | UserStatus::Service)
}

/// Every property of a user, nulls included (as a listing shows them).
fn user_json(user: &FakeUser, extra: &Extra) -> Map<String, Value> {
    let guest = user.status == UserStatus::Guest;
    let mut m = Map::new();
    m.insert("id".into(), json!(user.id));
    m.insert("userPrincipalName".into(), json!(user.user_name));
    m.insert("mail".into(), json!(user.email));
    m.insert("givenName".into(), json!(user.given_name));
    m.insert("surname".into(), json!(user.family_name));
    m.insert(
        "displayName".into(),
        json!(format!("{} {}", user.given_name, user.family_name)),
    );
    m.insert(
        "accountEnabled".into(),
        json!(user.status != UserStatus::Suspended),
    );
    m.insert(
        "userType".into(),
        json!(if guest { "Guest" } else { "Member" }),
    );
    m.insert("otherMails".into(), json!([]));
    m.insert(
        "proxyAddresses".into(),
        json!([format!("SMTP:{}", user.email)]),
    );
    for key in [
        "jobTitle",
        "department",
        "companyName",
        "employeeId",
        "employeeType",
        "officeLocation",
        "mobilePhone",
        "preferredLanguage",
        "onPremisesImmutableId",
        "onPremisesSamAccountName",
        "onPremisesSyncEnabled",
        "deletedDateTime",
        "usageLocation",
    ] {
        m.insert(key.into(), Value::Null);
    }
    m.insert("businessPhones".into(), json!([]));
    m.insert(
        "externalUserState".into(),
        if guest {
            json!("Accepted")
        } else {
            Value::Null
        },
    );
    m.insert(
        "creationType".into(),
        if guest {
            json!("Invitation")
        } else {
            Value::Null
        },
    );
    m.insert("createdDateTime".into(), json!("2024-01-15T09:00:00Z"));
    m.insert(
        "onPremisesExtensionAttributes".into(),
        json!({"extensionAttribute1": null}),
    );
    if let Some(extra) = extra.get(&user.id) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

fn group_json(group: &FakeGroup) -> Map<String, Value> {
    let nickname: String = group
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let mut m = Map::new();
    m.insert("id".into(), json!(group.id));
    m.insert("displayName".into(), json!(group.name));
    m.insert("description".into(), Value::Null);
    m.insert("mail".into(), Value::Null);
    m.insert("mailNickname".into(), json!(nickname));
    m.insert("mailEnabled".into(), json!(false));
    m.insert("securityEnabled".into(), json!(true));
    m.insert("groupTypes".into(), json!([]));
    m.insert("createdDateTime".into(), json!("2023-06-01T08:00:00Z"));
    for key in [
        "deletedDateTime",
        "onPremisesSyncEnabled",
        "onPremisesSamAccountName",
        "securityIdentifier",
        "membershipRule",
        "membershipRuleProcessingState",
        "visibility",
        "uniqueName",
    ] {
        m.insert(key.into(), Value::Null);
    }
    m
}

/// `$select` as a list; `None` when absent.
fn selection(query: &[(String, String)]) -> Option<Vec<String>> {
    param(query, "$select").map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

/// The selected properties of an object (`id` always).
fn select(
    object: &Map<String, Value>,
    select: Option<&[String]>,
    defaults: &[&str],
) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| {
            k.as_str() == "id"
                || match select {
                    Some(list) => list.iter().any(|s| s == *k),
                    None => defaults.contains(&k.as_str()),
                }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A 400 when a selected property is not one of the type's.
fn check_selection(
    select: Option<&[String]>,
    known: &[&str],
    extra: &Extra,
    type_name: &str,
) -> Result<(), Response> {
    for name in select.unwrap_or(&[]) {
        let extra = extra.values().any(|m| m.contains_key(name));
        if !known.contains(&name.as_str())
            && !name.starts_with("extension_")
            && !extra
            && name != "members"
        {
            return Err(bad_request(&format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )));
        }
    }
    Ok(())
}

/// The members of a group as Graph shows them: (`@odata.type`, id).
fn resolved_members(group: &FakeGroup, dir: &Dir) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for member in &group.members {
        let entry = match member {
            FakeMember::User(id) => match dir.user(id) {
                Some(u) if u.status == UserStatus::Deleted => None,
                Some(u) if u.status == UserStatus::Service => {
                    Some(("#microsoft.graph.servicePrincipal", id.clone()))
                }
                Some(_) => Some(("#microsoft.graph.user", id.clone())),
                None => None,
            },
            FakeMember::Group(id) => dir
                .group(id)
                .is_some()
                .then(|| ("#microsoft.graph.group", id.clone())),
        };
        if let Some((t, id)) = entry
            && seen.insert(id.clone())
        {
            out.push((t.to_string(), id));
        }
    }
    if dir.is_first_group(&group.id) {
        out.push(("#microsoft.graph.device".to_string(), DEVICE_ID.to_string()));
    }
    out
}

fn context(base: &str, entity_set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(list) if !list.is_empty() => {
            format!("{base}/v1.0/$metadata#{entity_set}({})", list.join(","))
        }
        _ => format!("{base}/v1.0/$metadata#{entity_set}"),
    }
}

/// A simple `$filter`: one `property eq value` clause (string in quotes, or a boolean).
struct Filter {
    property: String,
    expected: Value,
}

impl Filter {
    fn parse(filter: &str) -> Result<Filter, Response> {
        let Some((property, value)) = filter.split_once(" eq ") else {
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified.",
            ));
        };
        let value = value.trim();
        let expected = if let Some(s) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
        {
            json!(s)
        } else if value == "true" || value == "false" {
            json!(value == "true")
        } else {
            return Err(bad_request("Invalid filter clause"));
        };
        Ok(Filter {
            property: property.trim().to_string(),
            expected,
        })
    }

    fn matches(&self, object: &Map<String, Value>) -> bool {
        object.get(&self.property) == Some(&self.expected)
    }
}

/// One page of at most `size` items of units `cursor.0..len` (the first `cursor.1` items
/// of the first unit already listed), and where the next page starts: `None` when no item
/// follows (the last page). `items` gives a unit's items, maybe none; only the units of
/// this page and those up to the next item are looked at.
fn page_of(
    len: usize,
    cursor: (usize, usize),
    size: usize,
    mut items: impl FnMut(usize) -> Vec<Value>,
) -> (Vec<Value>, Option<(usize, usize)>) {
    let (mut unit, mut skip) = cursor;
    let mut page = Vec::new();
    while unit < len {
        for (i, item) in items(unit).into_iter().enumerate().skip(skip) {
            if page.len() >= size {
                return (page, Some((unit, i)));
            }
            page.push(item);
        }
        unit += 1;
        skip = 0;
    }
    (page, None)
}

// ---------------------------------------------------------------------------------------
// Plain listings

#[derive(Serialize, Deserialize)]
struct ListToken {
    /// The request path this token pages.
    p: String,
    /// The candidate (a listed user, a group, a member) the next page starts at.
    o: usize,
    /// Page size.
    t: usize,
    /// `$select`, `$filter` of the first request.
    s: Option<Vec<String>>,
    f: Option<String>,
}

/// What a plain listing is.
struct ListSpec<'a> {
    path: &'a str,
    entity_set: &'a str,
    /// The knob listings it belongs to.
    listings: &'a [Listing],
    /// Whether its last page is one a [`Knobs::fail_last_page`] fails.
    last_group: bool,
    /// Whether `$filter` applies.
    filters: bool,
}

/// One page of a listing of `len` candidates; the options come from the skiptoken, or
/// from the query of a first request. `check` vets the `$select`; `item` gives a
/// candidate as listed, or `None` when the `$filter` leaves it out.
fn list_page(
    app: &Inner,
    query: &[(String, String)],
    spec: ListSpec<'_>,
    len: usize,
    check: impl FnOnce(Option<&[String]>) -> Result<(), Response>,
    item: impl Fn(usize, Option<&[String]>, Option<&Filter>) -> Option<Value>,
) -> Response {
    let path = spec.path;
    let token = match param(query, "$skiptoken") {
        Some(text) => match decode_token::<ListToken>(text) {
            Some(t) if t.p == path => t,
            _ => return bad_request("Invalid $skiptoken."),
        },
        None => {
            let top = match param(query, "$top") {
                None => 100,
                Some(text) => match text.parse::<usize>() {
                    Ok(n) if n >= 1 => n.min(999),
                    _ => return bad_request("Invalid page size specified."),
                },
            };
            ListToken {
                p: path.to_string(),
                o: 0,
                t: top,
                s: selection(query),
                f: param(query, "$filter").map(str::to_string),
            }
        }
    };
    let cap = page_cap(app);
    let size = if cap > 0 { token.t.min(cap) } else { token.t };
    let sel = token.s.as_deref();
    if let Err(response) = check(sel) {
        return response;
    }
    // A bad filter fails on the first candidate it is applied to.
    let filter = match token.f.as_deref() {
        Some(text) if spec.filters && len > 0 => match Filter::parse(text) {
            Ok(filter) => Some(filter),
            Err(response) => return response,
        },
        _ => None,
    };
    let (value, next) = page_of(len, (token.o, 0), size, |i| {
        item(i, sel, filter.as_ref()).into_iter().collect()
    });
    if next.is_none() && spec.last_group && fails_last_page(app, spec.listings) {
        return server_error();
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(&app.base, spec.entity_set, sel)),
    );
    if let Some((o, _)) = next {
        let next = ListToken { o, ..token };
        body.insert(
            "@odata.nextLink".into(),
            link_with(&app.base, path, "$skiptoken", &next),
        );
    }
    body.insert("value".into(), Value::Array(value));
    axum::Json(Value::Object(body)).into_response()
}

async fn users(State(app): State<App>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let query = parse_query(raw);
    let path = "/v1.0/users";
    if let Err(r) = gate(&app, &headers, path, &query, &[Listing::Users]) {
        return r;
    }
    let (_, snapshot) = current(&app);
    let dir = &snapshot.dir;
    let spec = ListSpec {
        path,
        entity_set: "users",
        listings: &[Listing::Users],
        last_group: true,
        filters: true,
    };
    list_page(
        &app,
        &query,
        spec,
        dir.listed.len(),
        |sel| check_selection(sel, &USER_PROPERTIES, &snapshot.extra, "user"),
        |i, sel, filter| {
            let full = user_json(&dir.directory.users[dir.listed[i]], &snapshot.extra);
            if filter.is_some_and(|f| !f.matches(&full)) {
                return None;
            }
            Some(Value::Object(select(&full, sel, &USER_DEFAULT_SELECT)))
        },
    )
}

async fn groups(State(app): State<App>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let query = parse_query(raw);
    let path = "/v1.0/groups";
    if let Err(r) = gate(&app, &headers, path, &query, &[Listing::Groups]) {
        return r;
    }
    let (_, snapshot) = current(&app);
    let dir = &snapshot.dir;
    let spec = ListSpec {
        path,
        entity_set: "groups",
        listings: &[Listing::Groups],
        last_group: true,
        filters: true,
    };
    list_page(
        &app,
        &query,
        spec,
        dir.directory.groups.len(),
        |sel| check_selection(sel, &GROUP_PROPERTIES, &snapshot.extra, "group"),
        |i, sel, filter| {
            let full = group_json(&dir.directory.groups[i]);
            if filter.is_some_and(|f| !f.matches(&full)) {
                return None;
            }
            Some(Value::Object(select(&full, sel, &GROUP_PROPERTIES)))
        },
    )
}

async fn group(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = parse_query(raw);
    let path = format!("/v1.0/groups/{id}");
    if let Err(r) = gate(&app, &headers, &path, &query, &[Listing::Groups]) {
        return r;
    }
    let (_, snapshot) = current(&app);
    let sel = selection(&query);
    if let Err(r) = check_selection(sel.as_deref(), &GROUP_PROPERTIES, &snapshot.extra, "group") {
        return r;
    }
    match snapshot.dir.group(&id) {
        Some(g) => {
            let mut body = select(&group_json(g), sel.as_deref(), &GROUP_PROPERTIES);
            body.insert(
                "@odata.context".into(),
                json!(format!("{}/v1.0/$metadata#groups/$entity", app.base)),
            );
            axum::Json(Value::Object(body)).into_response()
        }
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        ),
    }
}

async fn members(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = parse_query(raw);
    let path = format!("/v1.0/groups/{id}/members");
    if let Err(r) = gate(&app, &headers, &path, &query, &[Listing::Members]) {
        return r;
    }
    let (_, snapshot) = current(&app);
    let dir = &snapshot.dir;
    let Some(group) = dir.group(&id) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let is_last_group = dir.directory.groups.last().is_some_and(|g| g.id == id);
    let resolved = resolved_members(group, dir);
    let spec = ListSpec {
        path: &path,
        entity_set: "directoryObjects",
        listings: &[Listing::Members],
        last_group: is_last_group,
        filters: false,
    };
    list_page(
        &app,
        &query,
        spec,
        resolved.len(),
        |_| Ok(()),
        |i, sel, _| {
            let (odata_type, member_id) = &resolved[i];
            let full = match odata_type.as_str() {
                "#microsoft.graph.user" => dir
                    .user(member_id)
                    .map(|u| user_json(u, &snapshot.extra))
                    .unwrap_or_default(),
                "#microsoft.graph.group" => {
                    dir.group(member_id).map(group_json).unwrap_or_default()
                }
                _ => {
                    let mut m = Map::new();
                    m.insert("id".into(), json!(member_id));
                    m.insert("displayName".into(), json!(format!("object {member_id}")));
                    m
                }
            };
            let mut item = Map::new();
            item.insert("@odata.type".into(), json!(odata_type));
            item.extend(select(&full, sel, &["id", "displayName"]));
            Some(Value::Object(item))
        },
    )
}

// ---------------------------------------------------------------------------------------
// Delta

#[derive(Serialize, Deserialize, Clone)]
struct DeltaToken {
    /// `users` or `groups`.
    k: String,
    /// The version the round started from (`None`: initial round).
    from: Option<usize>,
    /// The version the round reads up to.
    to: usize,
    /// Where the next page starts (skiptokens only): a unit of the round, and how many of
    /// its items earlier pages listed.
    o: usize,
    #[serde(default)]
    c: usize,
    s: Option<Vec<String>>,
}

/// A user or group of a delta round; its items are none (unchanged after all), one, or
/// (a group with `members@delta`) one per slice of member entries.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// At this position of the version the round reads up to.
    Current(usize),
    /// At this position of the version the round started from, and gone since.
    Gone(usize),
}

/// The units of an incremental round from version `from` to `to`: the users (or groups)
/// the change log names in between, those present at `to` in its order, then those gone
/// in the order of `from` (as Graph lists changes, then removals). Cached: every page of
/// the round reads them.
fn round_units(state: &mut FakeState, kind: &str, from: usize, to: usize) -> Arc<Vec<Unit>> {
    let key = (kind.to_string(), from, to);
    if let Some(units) = state.rounds.get(&key) {
        return units.clone();
    }
    let users = kind == "users";
    let (old, new) = (&state.versions[from].dir, &state.versions[to].dir);
    let mut ids: HashSet<&str> = HashSet::new();
    for changes in state.changes.iter().take(to + 1).skip(from + 1) {
        let changed = if users {
            &changes.users
        } else {
            &changes.groups
        };
        ids.extend(changed.iter().map(String::as_str));
    }
    let position = |dir: &Dir, id: &str| {
        if users {
            dir.listed_position(id)
        } else {
            dir.groups.get(id).copied()
        }
    };
    let mut current = Vec::new();
    let mut gone = Vec::new();
    for id in ids {
        if let Some(at) = position(new, id) {
            current.push(at);
        } else if let Some(at) = position(old, id) {
            gone.push(at);
        }
    }
    current.sort_unstable();
    gone.sort_unstable();
    let units: Arc<Vec<Unit>> = Arc::new(
        current
            .into_iter()
            .map(Unit::Current)
            .chain(gone.into_iter().map(Unit::Gone))
            .collect(),
    );
    if state.rounds.len() >= 16 {
        state.rounds.clear();
    }
    state.rounds.insert(key, units.clone());
    units
}

fn without_nulls(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().filter(|(_, v)| !v.is_null()).collect()
}

/// The properties of `new` that differ from `old` (removed ones as null), `id` always.
fn changed(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in new {
        if k == "id" || old.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

/// The items of a user unit of a round from `from` (`None`: initial round) to `to`: the
/// user when new or changed (only the changed properties when `minimal`), `@removed`
/// when gone (`changed` for a user marked deleted, `deleted` when gone for good).
fn user_items(
    unit: Unit,
    from: Option<&Snapshot>,
    to: &Snapshot,
    sel: Option<&[String]>,
    minimal: bool,
) -> Vec<Value> {
    let render = |snap: &Snapshot, u: &FakeUser| {
        without_nulls(select(
            &user_json(u, &snap.extra),
            sel,
            &USER_DEFAULT_SELECT,
        ))
    };
    match unit {
        Unit::Current(at) => {
            let user = &to.dir.directory.users[at];
            let new = render(to, user);
            let old = from.and_then(|f| {
                f.dir
                    .listed_position(&user.id)
                    .map(|at| render(f, &f.dir.directory.users[at]))
            });
            match old {
                None => vec![Value::Object(new)],
                Some(old) if old != new => vec![Value::Object(if minimal {
                    changed(&old, &new)
                } else {
                    new
                })],
                Some(_) => Vec::new(),
            }
        }
        Unit::Gone(at) => {
            let Some(from) = from else {
                return Vec::new();
            };
            let user = &from.dir.directory.users[at];
            let reason = if to
                .dir
                .user(&user.id)
                .is_some_and(|u| u.status == UserStatus::Deleted)
            {
                "changed"
            } else {
                "deleted"
            };
            vec![json!({"id": user.id, "@removed": {"reason": reason}})]
        }
    }
}

/// The items of a group unit: the group when new or changed, with its `members@delta`
/// entries (all members on the initial round, else additions and `@removed` removals)
/// split over consecutive items of at most `slice` entries; `@removed` when gone.
fn group_items(
    unit: Unit,
    from: Option<&Snapshot>,
    to: &Snapshot,
    sel: Option<&[String]>,
    minimal: bool,
    slice: usize,
) -> Vec<Value> {
    let group = match unit {
        Unit::Current(at) => &to.dir.directory.groups[at],
        Unit::Gone(at) => {
            return match from {
                Some(from) => vec![json!({
                    "id": from.dir.directory.groups[at].id,
                    "@removed": {"reason": "deleted"}
                })],
                None => Vec::new(),
            };
        }
    };
    let with_members = sel.is_some_and(|s| s.iter().any(|p| p == "members"));
    let render = |g: &FakeGroup| without_nulls(select(&group_json(g), sel, &GROUP_PROPERTIES));
    let members = |g: &FakeGroup, dir: &Dir| {
        if with_members {
            resolved_members(g, dir)
        } else {
            Vec::new()
        }
    };
    let new = render(group);
    let now = members(group, &to.dir);
    let old = from.and_then(|f| {
        f.dir
            .group(&group.id)
            .map(|g| (render(g), members(g, &f.dir)))
    });
    let (properties, entries): (Map<String, Value>, Vec<Value>) = match &old {
        None => (
            new.clone(),
            now.iter()
                .map(|(t, id)| json!({"@odata.type": t, "id": id}))
                .collect(),
        ),
        Some((old_props, old_members)) => {
            let old_ids: HashSet<&str> = old_members.iter().map(|(_, id)| id.as_str()).collect();
            let now_ids: HashSet<&str> = now.iter().map(|(_, id)| id.as_str()).collect();
            let mut entries = Vec::new();
            for (t, id) in &now {
                if !old_ids.contains(id.as_str()) {
                    entries.push(json!({"@odata.type": t, "id": id}));
                }
            }
            for (t, id) in old_members {
                if !now_ids.contains(id.as_str()) {
                    entries.push(
                        json!({"@odata.type": t, "id": id, "@removed": {"reason": "deleted"}}),
                    );
                }
            }
            if *old_props == new && entries.is_empty() {
                return Vec::new();
            }
            let properties = if minimal {
                changed(old_props, &new)
            } else {
                new.clone()
            };
            (properties, entries)
        }
    };
    let chunks: Vec<&[Value]> = if entries.is_empty() {
        vec![&[]]
    } else {
        entries.chunks(slice.max(1)).collect()
    };
    let mut out = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut item = if i == 0 || !minimal {
            properties.clone()
        } else {
            let mut m = Map::new();
            m.insert("id".into(), json!(group.id));
            m
        };
        if with_members {
            item.insert("members@delta".into(), Value::Array(chunk.to_vec()));
        }
        out.push(Value::Object(item));
    }
    out
}

async fn users_delta(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delta(&app, &headers, raw, "users").await
}

async fn groups_delta(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delta(&app, &headers, raw, "groups").await
}

async fn delta(app: &Inner, headers: &HeaderMap, raw: Option<String>, kind: &str) -> Response {
    let query = parse_query(raw);
    let path = format!("/v1.0/{kind}/delta");
    let listings: &[Listing] = if kind == "users" {
        &[Listing::Users]
    } else {
        &[Listing::Groups, Listing::Members]
    };
    if let Err(r) = gate(app, headers, &path, &query, listings) {
        return r;
    }
    let (version, _) = current(app);
    let expired = |app: &Inner| {
        let state = app.state.lock().unwrap();
        let status = StatusCode::from_u16(state.expired_status).unwrap_or(StatusCode::GONE);
        graph_error(
            status,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        )
    };
    let token = if let Some(text) = param(&query, "$skiptoken") {
        match decode_token::<DeltaToken>(text) {
            Some(t) if t.k == kind => t,
            _ => return bad_request("Invalid $skiptoken."),
        }
    } else if let Some(text) = param(&query, "$deltatoken") {
        if text == "latest" {
            let link = DeltaToken {
                k: kind.to_string(),
                from: None,
                to: version,
                o: 0,
                c: 0,
                s: selection(&query),
            };
            return axum::Json(json!({
                "@odata.context": context(&app.base, kind, None),
                "@odata.deltaLink": link_with(&app.base, &path, "$deltatoken", &link),
                "value": [],
            }))
            .into_response();
        }
        match decode_token::<DeltaToken>(text) {
            Some(t) if t.k == kind => {
                if t.to < app.state.lock().unwrap().expired_before {
                    return expired(app);
                }
                DeltaToken {
                    k: t.k,
                    from: Some(t.to),
                    to: version,
                    o: 0,
                    c: 0,
                    s: t.s,
                }
            }
            _ => return expired(app),
        }
    } else {
        DeltaToken {
            k: kind.to_string(),
            from: None,
            to: version,
            o: 0,
            c: 0,
            s: selection(&query),
        }
    };
    let (from, to, units) = {
        let mut state = app.state.lock().unwrap();
        let unknown = token.to >= state.versions.len() || token.from.is_some_and(|f| f > token.to);
        if unknown || token.from.is_some_and(|f| f < state.expired_before) {
            drop(state);
            return expired(app);
        }
        let units = token
            .from
            .map(|f| round_units(&mut state, kind, f, token.to));
        (
            token.from.map(|f| state.versions[f].clone()),
            state.versions[token.to].clone(),
            units,
        )
    };
    if let Err(r) = check_selection(
        token.s.as_deref(),
        if kind == "users" {
            &USER_PROPERTIES
        } else {
            &GROUP_PROPERTIES
        },
        &to.extra,
        if kind == "users" { "user" } else { "group" },
    ) {
        return r;
    }
    let minimal = from.is_some()
        && headers
            .get("prefer")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("return=minimal"));
    let cap = page_cap(app);
    let size = if cap > 0 { cap } else { DELTA_PAGE };
    let users = kind == "users";
    // The initial round lists every user Graph lists (every group), in order; an
    // incremental one the units the change log names.
    let len = match &units {
        Some(units) => units.len(),
        None if users => to.dir.listed.len(),
        None => to.dir.directory.groups.len(),
    };
    let unit = |i: usize| match &units {
        Some(units) => units[i],
        None if users => Unit::Current(to.dir.listed[i]),
        None => Unit::Current(i),
    };
    let sel = token.s.as_deref();
    let (value, next) = page_of(len, (token.o, token.c), size, |i| {
        if users {
            user_items(unit(i), from.as_ref(), &to, sel, minimal)
        } else {
            group_items(unit(i), from.as_ref(), &to, sel, minimal, size)
        }
    });
    if next.is_none() && fails_last_page(app, listings) {
        return server_error();
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(&app.base, kind, None)),
    );
    let truncated = app.state.lock().unwrap().truncate_delta_rounds;
    match next {
        // Neither link: the client cannot know whether the round is complete.
        None if truncated => {}
        None => {
            let link = DeltaToken {
                o: 0,
                c: 0,
                from: None,
                ..token.clone()
            };
            body.insert(
                "@odata.deltaLink".into(),
                link_with(&app.base, &path, "$deltatoken", &link),
            );
        }
        Some((o, c)) => {
            let next = DeltaToken {
                o,
                c,
                ..token.clone()
            };
            body.insert(
                "@odata.nextLink".into(),
                link_with(&app.base, &path, "$skiptoken", &next),
            );
        }
    }
    body.insert("value".into(), Value::Array(value));
    axum::Json(Value::Object(body)).into_response()
}

// ---------------------------------------------------------------------------------------
// Token endpoint

#[derive(Deserialize)]
struct AssertionClaims {
    jti: Option<String>,
}

async fn token(State(app): State<App>, Path(tenant): Path<String>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    if tenant != TENANT {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if field("scope") != Some(format!("{}/.default", app.base).as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    if field("client_id") != Some(CLIENT_ID) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    let grant = if let Some(secret) = field("client_secret") {
        if secret != CLIENT_SECRET {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        TokenGrant::Secret
    } else if field("client_assertion_type") == Some(JWT_BEARER)
        && let Some(assertion) = field("client_assertion")
    {
        let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", app.base);
        match verify_assertion(assertion, &token_url) {
            Ok(jti) => {
                let mut state = app.state.lock().unwrap();
                if !state.jtis.insert(jti) {
                    return oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        700024,
                        "Client assertion is a replay (jti seen before).",
                    );
                }
                TokenGrant::Assertion
            }
            Err(why) => {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 700027, &why);
            }
        }
    } else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    let mut state = app.state.lock().unwrap();
    state.stats.tokens_issued += 1;
    state.calls_with_token = 0;
    state.grants.push(grant);
    let token = format!("fake-graph-token-{}", state.stats.tokens_issued);
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": token,
    }))
    .into_response()
}

/// Verifies a client assertion against the registered test certificate; returns its `jti`.
fn verify_assertion(assertion: &str, token_url: &str) -> Result<String, String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let header =
        decode_header(assertion).map_err(|e| format!("Client assertion is not a JWT: {e}."))?;
    if !matches!(header.alg, Algorithm::PS256 | Algorithm::RS256) {
        return Err(format!(
            "Client assertion algorithm {:?} is not supported.",
            header.alg
        ));
    }
    let der = certificate_der();
    let by_sha256 = header.x5t_s256.as_deref() == Some(thumbprint_sha256(&der).as_str());
    let by_sha1 = header.x5t.as_deref() == Some(thumbprint_sha1(&der).as_str());
    if !(by_sha256 || by_sha1) {
        return Err(
            "Client assertion contains an invalid signature. [Reason - The key was not found.]"
                .to_string(),
        );
    }
    let key = DecodingKey::from_rsa_pem(certificate_pem().as_bytes()).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.sub = Some(CLIENT_ID.to_string());
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    let data = decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|e| format!("Client assertion failed validation: {e}."))?;
    data.claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| "Client assertion has no jti.".to_string())
}
