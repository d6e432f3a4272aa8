//! The `okta` connector: users and groups of an Okta org through the Management API
//! (`/api/v1`), read in full or incrementally. What it relies on, with sources:
//! docs/connectors-okta.md (its "Sources" list).
//!
//! * Auth: an OAuth 2.0 service app (client credentials with a `private_key_jwt`
//!   assertion at the org authorization server, then `Bearer`), or an API token (`SSWS`).
//! * Full read: `GET /api/v1/users?limit=N`, which leaves `DEPROVISIONED` users out, then
//!   (unless they are skipped) `filter=status eq "DEPROVISIONED"` for those; groups of each
//!   selected type with `filter=type eq "T"`; each group's members with
//!   `GET /api/v1/groups/{id}/users?limit=N`. Every listing follows `Link: rel="next"`.
//! * Incremental read, while the last full read is younger than `full_sync_every`: users
//!   with `filter=lastUpdated gt "since"` (which includes `DEPROVISIONED` ones), groups
//!   with `type eq "T" and (lastUpdated gt "since" or lastMembershipUpdated gt "since")`,
//!   each with its complete member list. Users a status policy skips are reported
//!   removed. Hard deletions are invisible to filters, so every incremental read also
//!   lists the ids of all users (and, when kept, deprovisioned users) and of all groups
//!   of the selected types, `limit` = `page_size` per page, and reports them as
//!   [`SourceBatch::Present`]: what the mirror holds beyond them is removed at this run.
//! * Okta has no nested groups: members are users only.
//! * Any failed page, 401 or 403 fails the whole read; nothing of it is kept.

mod assertion;
mod checkpoint;
mod pacing;
mod records;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use self::checkpoint::{Checkpoint, Plan};
use self::records::{Disposition, Policies};
use super::http::{
    AuthScheme, ClientAuth, HttpClient, HttpError, HttpOptions, OAuthClientCredentials,
    StaticToken, TokenSource, next_link_from_header, origin,
};
use super::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use crate::config::{OktaAuth, OktaSettings, StatusPolicy};
use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser, content_hash, json_kind};

pub use self::checkpoint::OVERLAP as CHECKPOINT_OVERLAP;

/// The most users one batch carries.
pub const USER_BATCH_SIZE: usize = 1000;
/// The most groups one batch carries (each with its whole member list).
pub const GROUP_BATCH_SIZE: usize = 100;

const KIND: &str = "okta";

/// Which permission a listing needs (named when Okta answers 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Users,
    Groups,
}

impl Need {
    fn scope(self) -> &'static str {
        match self {
            Need::Users => "okta.users.read",
            Need::Groups => "okta.groups.read",
        }
    }

    fn things(self) -> &'static str {
        match self {
            Need::Users => "users",
            Need::Groups => "groups and their members",
        }
    }
}

/// Reads users and groups of one Okta org.
pub struct OktaConnector {
    http: HttpClient,
    token: Arc<dyn TokenSource>,
    /// Scopes requested, for a service app; `None` with an API token.
    scopes: Option<Vec<String>>,
    /// `{base_url}/api/v1`.
    api: String,
    group_types: Vec<String>,
    policies: Policies,
    page_size: String,
    full_sync_every: Duration,
    /// What a checkpoint must have been made with to be continued.
    fingerprint: String,
    /// Configured plain-http URLs (`allow_insecure_http`), warned about on every read.
    plain_http: Vec<String>,
}

impl std::fmt::Debug for OktaConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaConnector")
            .field("api", &self.api)
            .field("service_app", &self.scopes.is_some())
            .field("group_types", &self.group_types)
            .finish_non_exhaustive()
    }
}

impl OktaConnector {
    /// Builds the connector (HTTP client and token source) from its settings.
    pub fn new(settings: &OktaSettings) -> Result<OktaConnector, ConnectorError> {
        OktaConnector::with_http_options(settings, HttpOptions::default())
    }

    /// Like [`OktaConnector::new`], with other timeouts and retry limits (tests use short
    /// ones); the request rate always comes from the settings.
    pub fn with_http_options(
        settings: &OktaSettings,
        options: HttpOptions,
    ) -> Result<OktaConnector, ConnectorError> {
        let fail = |source: HttpError| ConnectorError::Http {
            kind: KIND,
            what: "setting up the HTTP client".to_string(),
            source,
        };
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            metrics_label: "okta",
            ..options
        };
        // Credentials go only to the org's origin (paging links included) and the token
        // endpoint; both must be https unless allow_insecure_http (loopback only).
        let http = HttpClient::new(options)
            .and_then(|http| {
                http.pinned_to(
                    &[(settings.base_url.as_str(), "okta.base_url")],
                    settings.allow_insecure_http,
                )
            })
            .map_err(fail)?;
        let mut configured = vec![settings.base_url.as_str()];
        let (token, scheme, scopes): (Arc<dyn TokenSource>, _, _) = match &settings.auth {
            OktaAuth::ApiToken(token) => (
                Arc::new(StaticToken::new(token.clone())),
                AuthScheme::Ssws,
                None,
            ),
            OktaAuth::ServiceApp(app) => {
                origin::configured_origin(
                    &app.token_url,
                    "okta.token_url",
                    settings.allow_insecure_http,
                )
                .map_err(fail)?;
                configured.push(&app.token_url);
                let make = assertion::assertion_fn(app).map_err(fail)?;
                let source = OAuthClientCredentials::new(
                    http.reqwest_client(),
                    &app.token_url,
                    app.client_id.clone(),
                    ClientAuth::Assertion(make),
                    Some(app.scopes.join(" ")),
                )
                .map_err(fail)?;
                (
                    Arc::new(source),
                    AuthScheme::Bearer,
                    Some(app.scopes.clone()),
                )
            }
        };
        let http = http.with_auth(token.clone(), scheme);
        let api = format!("{}/api/v1", settings.base_url.trim_end_matches('/'));
        let policies = Policies {
            deprovisioned: settings.deprovisioned,
            suspended: settings.suspended,
        };
        let fingerprint = content_hash(&serde_json::json!({
            "api": api,
            "group_types": settings.group_types,
            "deprovisioned": settings.deprovisioned.as_str(),
            "suspended": settings.suspended.as_str(),
        }));
        Ok(OktaConnector {
            http,
            token,
            scopes,
            api,
            group_types: settings.group_types.clone(),
            policies,
            page_size: settings.page_size.to_string(),
            full_sync_every: settings.full_sync_every,
            fingerprint,
            plain_http: origin::plain_http_urls(&configured),
        })
    }

    /// What the admin has to grant when Okta answers 403 to a listing.
    fn permission_hint(&self, need: Need) -> String {
        match &self.scopes {
            Some(_) => format!(
                "grant the service app the scope {} (Okta API Scopes tab) and an admin role \
                 that may read {}, such as Read-Only Administrator",
                need.scope(),
                need.things()
            ),
            None => format!(
                "the API token acts with the permissions of the admin who created it; give \
                 that admin a role that may read {} ({}), such as Read-Only Administrator",
                need.things(),
                need.scope()
            ),
        }
    }

    /// What to look at when Okta answers 401.
    fn unauthorized_hint(&self) -> &'static str {
        match &self.scopes {
            Some(_) => "Okta refused the access token even after a new one was issued",
            None => {
                "the API token is wrong, was revoked, expired after 30 days unused, or its \
                 admin was deactivated"
            }
        }
    }

    /// The connector error for a failed request while doing `what`.
    fn fail(&self, what: &str, need: Need, source: HttpError) -> ConnectorError {
        let what = match &source {
            HttpError::Status { status: 403, .. } => {
                format!("{what} (forbidden: {})", self.permission_hint(need))
            }
            HttpError::Status { status: 401, .. } => {
                format!("{what} (unauthorized: {})", self.unauthorized_hint())
            }
            HttpError::Auth { code, .. } => match token_advice(code, self.scopes.as_deref()) {
                Some(advice) => format!("{what} ({advice})"),
                None => what.to_string(),
            },
            _ => what.to_string(),
        };
        ConnectorError::Http {
            kind: KIND,
            what,
            source,
        }
    }

    /// A pager over `path` (under `/api/v1`) with `limit` and `extra` query parameters.
    fn pager(
        &self,
        path: &str,
        extra: Vec<(&'static str, String)>,
        what: String,
        need: Need,
    ) -> Pager<'_> {
        self.pager_at(format!("{}{path}", self.api), extra, what, need)
    }

    /// A pager over the absolute `url`.
    fn pager_at(
        &self,
        url: String,
        extra: Vec<(&'static str, String)>,
        what: String,
        need: Need,
    ) -> Pager<'_> {
        let mut query = vec![("limit", self.page_size.clone())];
        query.extend(extra);
        Pager {
            okta: self,
            next: Some((url, query)),
            what,
            need,
            started: None,
        }
    }

    /// Users, in full. Returns the server time of the first answer.
    async fn full_users(
        &self,
        sink: &mut dyn BatchSink,
    ) -> Result<Option<SystemTime>, ConnectorError> {
        let mut listings = vec![(Vec::new(), "listing users")];
        if self.policies.deprovisioned == StatusPolicy::Inactive {
            listings.push((
                vec![("filter", "status eq \"DEPROVISIONED\"".to_string())],
                "listing deprovisioned users",
            ));
        }
        let mut started = None;
        let mut seen = HashSet::new();
        let mut batch: Vec<SourceUser> = Vec::new();
        for (extra, what) in listings {
            let mut pager = self.pager("/users", extra, what.to_string(), Need::Users);
            while let Some(page) = pager.next_page().await? {
                for item in page {
                    if let Disposition::Keep(user) = records::to_user(item, &self.policies)
                        && seen.insert(user.external_id.clone())
                    {
                        batch.push(user);
                    }
                    if batch.len() >= USER_BATCH_SIZE {
                        sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                            .await?;
                    }
                }
            }
            started = started.or(pager.started);
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(batch)).await?;
        }
        Ok(started)
    }

    /// Users updated after `since`; skipped ones are reported removed. Returns the server
    /// time of the first answer.
    async fn changed_users(
        &self,
        since: &str,
        sink: &mut dyn BatchSink,
    ) -> Result<Option<SystemTime>, ConnectorError> {
        let filter = format!("lastUpdated gt \"{since}\"");
        let mut pager = self.pager(
            "/users",
            vec![("filter", filter)],
            "listing changed users".to_string(),
            Need::Users,
        );
        let mut batch: Vec<SourceUser> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        while let Some(page) = pager.next_page().await? {
            for item in page {
                match records::to_user(item, &self.policies) {
                    Disposition::Keep(user) => batch.push(user),
                    Disposition::Skip(id) => removed.push(id),
                    Disposition::Invalid => {}
                }
                if batch.len() >= USER_BATCH_SIZE {
                    sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                        .await?;
                }
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(batch)).await?;
        }
        if !removed.is_empty() {
            sink.accept(SourceBatch::Removed {
                users: removed,
                groups: Vec::new(),
            })
            .await?;
        }
        Ok(pager.started)
    }

    /// Incremental reads: the ids of every user and group the org holds now, so that the
    /// mirror notices hard deletions ([`SourceBatch::Present`]). The users are those the
    /// full read would list (deprovisioned ones only when they are kept).
    async fn present_ids(&self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
        let mut listings = vec![(Vec::new(), "listing user ids")];
        if self.policies.deprovisioned == StatusPolicy::Inactive {
            listings.push((
                vec![("filter", "status eq \"DEPROVISIONED\"".to_string())],
                "listing deprovisioned user ids",
            ));
        }
        let mut users = Vec::new();
        for (extra, what) in listings {
            let mut pager = self.pager("/users", extra, what.to_string(), Need::Users);
            while let Some(page) = pager.next_page().await? {
                users.extend(page.iter().filter_map(item_id));
            }
        }
        let mut groups = Vec::new();
        for group_type in &self.group_types {
            let mut pager = self.pager(
                "/groups",
                vec![("filter", format!("type eq \"{group_type}\""))],
                format!("listing {group_type} group ids"),
                Need::Groups,
            );
            while let Some(page) = pager.next_page().await? {
                groups.extend(page.iter().filter_map(item_id));
            }
        }
        tracing::debug!(
            users = users.len(),
            groups = groups.len(),
            "okta: ids listed for deletions"
        );
        sink.accept(SourceBatch::Present {
            kind: MemberKind::User,
            ids: users,
        })
        .await?;
        sink.accept(SourceBatch::Present {
            kind: MemberKind::Group,
            ids: groups,
        })
        .await?;
        Ok(())
    }

    /// Groups of every selected type matching `filter` (a function of the type's own
    /// `type eq` clause), each with its complete member list.
    async fn groups(
        &self,
        filter: impl Fn(&str) -> String,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let mut seen = HashSet::new();
        let mut batch: Vec<SourceGroup> = Vec::new();
        for group_type in &self.group_types {
            let clause = format!("type eq \"{group_type}\"");
            let mut pager = self.pager(
                "/groups",
                vec![("filter", filter(&clause))],
                format!("listing {group_type} groups"),
                Need::Groups,
            );
            while let Some(page) = pager.next_page().await? {
                for item in page {
                    let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_string)
                    else {
                        continue;
                    };
                    // The server filtered by type already; a group of another type is not
                    // read even if it slips through.
                    let typed = item.get("type").and_then(Value::as_str);
                    if typed.is_some_and(|t| !self.group_types.iter().any(|g| g == t))
                        || !seen.insert(id.clone())
                    {
                        continue;
                    }
                    let members = self.members(&id).await?;
                    if let Some(group) = records::to_group(item, members) {
                        batch.push(group);
                    }
                    if batch.len() >= GROUP_BATCH_SIZE {
                        sink.accept(SourceBatch::Groups(std::mem::take(&mut batch)))
                            .await?;
                    }
                }
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Groups(batch)).await?;
        }
        Ok(())
    }

    /// The complete member list of group `id`, users the policies skip left out.
    async fn members(&self, id: &str) -> Result<Vec<MemberRef>, ConnectorError> {
        let mut url = url::Url::parse(&self.api).map_err(|e| ConnectorError::Http {
            kind: KIND,
            what: "building a group's members URL".to_string(),
            source: HttpError::InvalidUrl {
                what: "group members".to_string(),
                reason: e.to_string(),
            },
        })?;
        url.path_segments_mut()
            .map_err(|()| ConnectorError::Http {
                kind: KIND,
                what: "building a group's members URL".to_string(),
                source: HttpError::InvalidUrl {
                    what: "group members".to_string(),
                    reason: "the base URL cannot have a path".to_string(),
                },
            })?
            .push("groups")
            .push(id)
            .push("users");
        let mut pager = self.pager_at(
            url.to_string(),
            Vec::new(),
            format!("listing the members of group {id}"),
            Need::Groups,
        );
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        while let Some(page) = pager.next_page().await? {
            for user in page {
                if self.policies.skips(records::status(&user)) {
                    continue;
                }
                if let Some(user_id) = user.get("id").and_then(Value::as_str)
                    && seen.insert(user_id.to_string())
                {
                    members.push(MemberRef::user(user_id));
                }
            }
        }
        Ok(members)
    }

    /// One `limit=1` request for `idsync check --connect`.
    async fn probe(
        &self,
        path: &str,
        check: &'static str,
        need: Need,
    ) -> (Diagnosis, Option<Value>) {
        let url = format!("{}{path}", self.api);
        match self.http.get_json(&url, &[("limit", "1")]).await {
            Ok((body, _)) => (Diagnosis::ok(check, "permitted"), Some(body)),
            Err(error) => {
                let diagnosis = match &error {
                    HttpError::Auth { code, .. } => Diagnosis::failed(
                        "authenticate",
                        match token_advice(code, self.scopes.as_deref()) {
                            Some(advice) => format!("{error}; {advice}"),
                            None => error.to_string(),
                        },
                    ),
                    HttpError::Status { status: 401, .. } => Diagnosis::failed(
                        "authenticate",
                        format!("{}: {error}", self.unauthorized_hint()),
                    ),
                    HttpError::Status { status: 403, .. } => Diagnosis::failed(
                        check,
                        format!("forbidden: {}", self.permission_hint(need)),
                    ),
                    _ => Diagnosis::failed(check, error.to_string()),
                };
                (diagnosis, None)
            }
        }
    }
}

/// Advice for a token endpoint error code, when there is more to say than the framework's.
fn token_advice(code: &str, scopes: Option<&[String]>) -> Option<String> {
    match code {
        "invalid_scope" => Some(format!(
            "grant the service app the scopes {} on its Okta API Scopes tab",
            scopes.map(|s| s.join(" ")).unwrap_or_default()
        )),
        "invalid_client" => Some(
            "check client_id, that the app authenticates with Public key / Private key, and \
             that the public key (and key_id) are registered with it"
                .to_string(),
        ),
        "invalid_dpop_proof" | "use_dpop_nonce" => Some(
            "idsync does not send DPoP proofs: turn off \"Require Demonstrating Proof of \
             Possession (DPoP)\" for the service app"
                .to_string(),
        ),
        _ => None,
    }
}

/// The `id` of a listed user or group.
fn item_id(item: &Value) -> Option<String> {
    item.get("id").and_then(Value::as_str).map(str::to_string)
}

/// Follows one listing's `Link: rel="next"` headers, a page at a time.
struct Pager<'a> {
    okta: &'a OktaConnector,
    /// The next request: a URL and, for the first one only, its query.
    next: Option<(String, Vec<(&'static str, String)>)>,
    what: String,
    need: Need,
    /// Server time (`Date`) of the first answer, else the local time of the first request.
    started: Option<SystemTime>,
}

impl Pager<'_> {
    /// The next page, or `None` after the last one.
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        let Some((url, query)) = self.next.take() else {
            return Ok(None);
        };
        let asked = crate::clock::system_now();
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (body, headers) = self
            .okta
            .http
            .get_json(&url, &query)
            .await
            .map_err(|e| self.okta.fail(&self.what, self.need, e))?;
        self.started
            .get_or_insert_with(|| pacing::server_time(&headers).unwrap_or(asked));
        let items = match body {
            Value::Array(items) => items,
            other => {
                return Err(self.okta.fail(
                    &self.what,
                    self.need,
                    HttpError::Decode {
                        url_path: url.split('?').next().unwrap_or_default().to_string(),
                        reason: format!("expected a JSON array, got {}", json_kind(&other)),
                    },
                ));
            }
        };
        if let Some(next) = next_link_from_header(&headers) {
            if next == url {
                return Err(self.okta.fail(
                    &self.what,
                    self.need,
                    HttpError::Decode {
                        url_path: url.split('?').next().unwrap_or_default().to_string(),
                        reason: "the next link points at the page just read".to_string(),
                    },
                ));
            }
            self.next = Some((next, Vec::new()));
        }
        if let Some(pause) = pacing::pause(&headers, crate::clock::system_now()) {
            tracing::info!(
                pause_ms = pause.as_millis() as u64,
                "Okta rate-limit bucket low; pacing requests until it resets"
            );
            tokio::time::sleep(pause).await;
        }
        Ok(Some(items))
    }
}

#[async_trait]
impl PullConnector for OktaConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A token (service apps), then one-item reads of users, groups and a group's members.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        let mut checks = Vec::new();
        if let Some(scopes) = &self.scopes {
            match self.token.token(false).await {
                Ok(_) => checks.push(Diagnosis::ok(
                    "authenticate",
                    format!("token issued for {}", scopes.join(" ")),
                )),
                Err(error) => {
                    let detail = match &error {
                        HttpError::Auth { code, .. } => match token_advice(code, Some(scopes)) {
                            Some(advice) => format!("{error}; {advice}"),
                            None => error.to_string(),
                        },
                        _ => error.to_string(),
                    };
                    checks.push(Diagnosis::failed("authenticate", detail));
                    return checks;
                }
            }
        }
        let (users, _) = self.probe("/users", "list users", Need::Users).await;
        let ok = users.ok;
        checks.push(users);
        if !ok {
            return checks;
        }
        let (groups, body) = self.probe("/groups", "list groups", Need::Groups).await;
        let ok = groups.ok;
        checks.push(groups);
        if !ok {
            return checks;
        }
        let first = body
            .as_ref()
            .and_then(|b| b.get(0))
            .and_then(|g| g.get("id"))
            .and_then(Value::as_str)
            .filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric()));
        match first {
            Some(id) => {
                let (members, _) = self
                    .probe(
                        &format!("/groups/{id}/users"),
                        "list group members",
                        Need::Groups,
                    )
                    .await;
                checks.push(members);
            }
            None => checks.push(Diagnosis::ok(
                "list group members",
                "no group to try (the org has none the token may see)",
            )),
        }
        checks
    }

    /// A full read, or an incremental one from a usable checkpoint.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        origin::warn_plain_http(KIND, &self.plain_http);
        let now = crate::clock::system_now();
        let plan = checkpoint::plan(checkpoint, &self.fingerprint, now, self.full_sync_every);
        match plan {
            Plan::Full { reason } => {
                tracing::info!(reason, "okta: full read");
                let started = self.full_users(sink).await?.unwrap_or(now);
                self.groups(|clause| clause.to_string(), sink).await?;
                Ok(ReadSummary {
                    mode: ReadMode::Full,
                    complete: true,
                    next_checkpoint: Some(
                        Checkpoint::new(started, now, &self.fingerprint).encode(),
                    ),
                })
            }
            Plan::Delta {
                since,
                full_read_at,
            } => {
                tracing::info!(since = %since, "okta: incremental read");
                let started = self.changed_users(&since, sink).await?.unwrap_or(now);
                // After the changes: a record created meanwhile is either read above or
                // listed here, and so never taken for deleted.
                self.present_ids(sink).await?;
                let changed = |clause: &str| {
                    format!(
                        "{clause} and (lastUpdated gt \"{since}\" or lastMembershipUpdated gt \"{since}\")"
                    )
                };
                self.groups(changed, sink).await?;
                let full_read_at = checkpoint::parse_time(&full_read_at).unwrap_or(now);
                Ok(ReadSummary {
                    mode: ReadMode::Delta,
                    complete: true,
                    next_checkpoint: Some(
                        Checkpoint::new(started, full_read_at, &self.fingerprint).encode(),
                    ),
                })
            }
        }
    }
}
