//! A fake Okta org (axum on 127.0.0.1:0) serving a [`Directory`] the way the Management API
//! does (the sources listed in docs/connectors-okta.md, e.g.
//! <https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/>):
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
//!
//! Scale: the directory is indexed once per `set_directory` (`index.rs`): each listing's
//! records in cursor order, the records of each `status` / `type` / `id` value, the
//! records sorted by each timestamp (`lastUpdated gt "..."` is a range), and each group's
//! resolved member list. A request walks only the candidates its filter allows, from its
//! `after` cursor, and renders only the page it returns, so a 100,000-user org answers as
//! fast as a small one.

mod filter;
mod index;
mod routes;

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
use chrono::SecondsFormat;
use futures_util::future::BoxFuture;
use idsync::config::{
    KeyAlgorithm, OktaAuth, OktaSettings, SecretString, ServiceApp, StatusPolicy,
};
use idsync::connectors::PullConnector;
use idsync::connectors::http::{HttpOptions, RetryPolicy};
use idsync::connectors::okta::OktaConnector;
use serde_json::{Value, json};

use crate::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, Listing, ServedLog, Stats,
    UserStatus, recording,
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
    /// Default: 1,000,000, so that no test or bench paces by accident (a 100,000-user
    /// read sends more than 10,000 member requests a minute); Okta's published values
    /// are 600, 500 and 1200.
    pub bucket_limits: [u64; 3],
}

impl Default for OktaOptions {
    fn default() -> Self {
        OktaOptions {
            auth: FakeAuth::ServiceApp,
            app_groups: Vec::new(),
            granted_scopes: vec!["okta.users.read".into(), "okta.groups.read".into()],
            bucket_limits: [1_000_000; 3],
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

use index::Served;

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
    /// What [`FakeProvider::served`] returns.
    recorded: ServedLog,
}

/// Starts a fake with a service app (the conformance seam: a [`crate::conformance::StartFake`]).
pub fn start(directory: Directory, knobs: Knobs) -> BoxFuture<'static, Arc<dyn FakeProvider>> {
    Box::pin(async move {
        let fake: Arc<dyn FakeProvider> =
            start_okta(directory, knobs, OktaOptions::default()).await;
        fake
    })
}

// `start` is what the conformance suite takes.
const _: crate::conformance::StartFake = start;

/// Starts a fake with Okta-specific options.
pub async fn start_okta(directory: Directory, knobs: Knobs, options: OktaOptions) -> Arc<FakeOkta> {
    let served = Served::new(
        directory,
        &HashMap::new(),
        &HashMap::new(),
        &options.app_groups,
    );
    let shared = Arc::new(Shared {
        served: Mutex::new(served),
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    shared.base.set(base.clone()).expect("base set once");
    let recorded = ServedLog::default();
    let app = recording(
        routes::router(shared.clone()),
        base.clone(),
        recorded.clone(),
    );
    // Replies go out at once (no Nagle delay on the tail of a large page).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Arc::new(FakeOkta {
        shared,
        base,
        recorded,
    })
}

fn now_text() -> String {
    idsync::clock::now().to_rfc3339_opts(SecondsFormat::Millis, true)
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
            requests_per_second: idsync::connectors::okta::OKTA_DEFAULT_REQUESTS_PER_SECOND,
            full_sync_every: Duration::from_secs(24 * 3600),
            // The fake serves plain http on loopback.
            allow_insecure_http: true,
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
    let path = format!(
        "{}/../tests/support/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[async_trait]
impl FakeProvider for FakeOkta {
    fn kind(&self) -> &'static str {
        "okta"
    }

    /// The conformance suite's connector: the admin defaults except that every read is a
    /// full one (`full_sync_every = "0s"`: Okta's filters cannot see hard deletions, which
    /// the suite expects the next read to remove) and deprovisioned users are skipped
    /// (the suite expects deleted users left out, not inactive).
    fn connector(&self) -> Box<dyn PullConnector> {
        let mut settings = self.settings();
        settings.full_sync_every = Duration::ZERO;
        settings.deprovisioned = StatusPolicy::Skip;
        Box::new(self.connector_with(&settings))
    }

    fn default_connector(&self) -> Box<dyn PullConnector> {
        Box::new(self.connector_with(&self.settings()))
    }

    fn served(&self) -> Vec<(String, String)> {
        self.recorded.lock().expect("log").clone()
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
        let (old_user_times, old_group_times) = served.times();
        let old_users: HashMap<&str, &FakeUser> = served
            .directory
            .users
            .iter()
            .map(|u| (u.id.as_str(), u))
            .collect();
        let old_groups: HashMap<&str, &FakeGroup> = served
            .directory
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g))
            .collect();
        let mut users = HashMap::new();
        for user in &directory.users {
            let times = match (
                old_users.get(user.id.as_str()),
                old_user_times.get(&user.id),
            ) {
                (Some(old), Some(times)) if *old == user => times.clone(),
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
            let times = match (
                old_groups.get(group.id.as_str()),
                old_group_times.get(&group.id),
            ) {
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
        let next = Served::new(directory, &users, &groups, &self.shared.options.app_groups);
        *served = next;
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

/// A user as `/api/v1/users` shows it; `last_login` is the time of the request.
fn user_json(base: &str, user: &FakeUser, times: &Times, last_login: &str) -> Option<Value> {
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
        "lastLogin": last_login,
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
