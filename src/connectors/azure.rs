//! The `azure` connector: users, groups and memberships of an Entra ID tenant through
//! Microsoft Graph v1.0 (docs/connectors-azure.md lists what it relies on, with sources).
//!
//! * Auth: OAuth client credentials at `{authority}/{tenant}/oauth2/v2.0/token`, scope
//!   `{graph_url}/.default`, with a client secret or a certificate (a signed client
//!   assertion, see [`assertion`]). `Bearer` on every call.
//! * With `delta = true` (the default) a read is a **delta query**: the first read (and
//!   every full read) is the *initial round* of `/users/delta` and `/groups/delta`
//!   (`$select` with `members`), which returns every user and every group with its
//!   current members in `members@delta`; the two `@odata.deltaLink`s, the time of that
//!   full read and a fingerprint of the query are the checkpoint. The next read follows
//!   the stored deltaLinks: changed users, `@removed` users and groups, and
//!   `members@delta` additions/removals ([`SourceBatch::MemberChanges`]). The groups
//!   round asks `Prefer: return=minimal`, so a group whose properties changed (not just
//!   its members) is recognised and read again whole (`GET /groups/{id}` + `/members`).
//!   An expired or rejected delta token (410, or 400/404 `syncStateNotFound`) falls back to
//!   a full read in the same run; so do a changed query, unreadable checkpoint, or a last
//!   full read older than `full_sync_every`.
//! * With `delta = false`, or filters: plain listings `/users`, `/groups` (`$select`,
//!   `$top`, `$filter`) and `/groups/{id}/members` per group.
//! * Paging follows `@odata.nextLink` verbatim; links to another host are refused (the
//!   bearer token would go with them).
//! * Members: `#microsoft.graph.user` and `#microsoft.graph.group` (nested groups);
//!   devices, contacts and service principals are ignored. A full read keeps only members
//!   that are among the users and groups it read (guests excluded, filters).
//!
//! Any failed page (after the HTTP client's retries), 403 or truncated round fails the
//! whole read: a read is complete or an error.

mod assertion;
mod convert;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use assertion::{AssertionSigner, thumbprint_sha1, thumbprint_sha256};

use super::http::{
    AuthScheme, ClientAuth, HttpClient, HttpError, HttpOptions, OAuthClientCredentials,
    TokenSource, odata_next_link, origin,
};
use super::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use crate::config::{AzureCredential, AzureSettings};
use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser, content_hash, json_kind};
use convert::{attributes, has_properties, id_of, is_guest, is_removed, member_ref, to_group};

/// The most users one batch carries.
pub const USER_BATCH_SIZE: usize = 1000;
/// The most groups one batch carries (each with its whole member list).
pub const GROUP_BATCH_SIZE: usize = 100;

const KIND: &str = "azure";
/// Application permission reading users needs.
pub const USERS_PERMISSION: &str = "User.Read.All";
/// Application permission reading groups and their members needs.
pub const GROUPS_PERMISSION: &str = "GroupMember.Read.All (or Group.Read.All)";

/// What a delta run stores between runs (as JSON in the mirror's checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AzureCheckpoint {
    /// Format version (1).
    pub v: u32,
    /// The `@odata.deltaLink` of the last users round.
    pub users: String,
    /// The `@odata.deltaLink` of the last groups round.
    pub groups: String,
    /// When the last full read started.
    pub full_at: DateTime<Utc>,
    /// Fingerprint of what the links ask for (host, `$select`s, guests): a changed
    /// configuration needs a new initial round.
    pub query: String,
}

impl AzureCheckpoint {
    pub fn parse(text: &str) -> Option<AzureCheckpoint> {
        serde_json::from_str::<AzureCheckpoint>(text)
            .ok()
            .filter(|c| c.v == 1)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the next read will be, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadPlan {
    /// An initial delta round (or plain listing): everything.
    Full(String),
    /// Follow the stored deltaLinks.
    Delta(AzureCheckpoint),
}

/// Reads users and groups of one Entra ID tenant.
pub struct AzureConnector {
    http: HttpClient,
    token: Arc<OAuthClientCredentials>,
    token_url: String,
    /// `{graph_url}/v1.0`.
    api: String,
    origin: url::Origin,
    include_guests: bool,
    user_filter: Option<String>,
    group_filter: Option<String>,
    page_size: u32,
    delta: bool,
    full_sync_every: chrono::Duration,
    user_select: String,
    group_select: String,
    fingerprint: String,
    /// Configured plain-http URLs (`allow_insecure_http`), warned about on every read.
    plain_http: Vec<String>,
}

impl std::fmt::Debug for AzureConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureConnector")
            .field("api", &self.api)
            .field("delta", &self.delta)
            .finish_non_exhaustive()
    }
}

/// Items kept in first-seen order, replaced or removed by key (delta rounds repeat and
/// split objects).
struct Ordered<K, T> {
    items: Vec<Option<(K, T)>>,
    index: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone, T> Default for Ordered<K, T> {
    fn default() -> Self {
        Ordered {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, T> Ordered<K, T> {
    fn set(&mut self, key: K, value: T) {
        match self.index.get(&key) {
            Some(&i) => self.items[i] = Some((key, value)),
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push(Some((key, value)));
            }
        }
    }

    fn entry(&mut self, key: K, make: impl FnOnce() -> T) -> &mut T {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push(Some((key, make())));
                self.items.len() - 1
            }
        };
        &mut self.items[i].as_mut().expect("indexed items are present").1
    }

    fn remove(&mut self, key: &K) {
        if let Some(i) = self.index.remove(key) {
            self.items[i] = None;
        }
    }

    fn into_iter(self) -> impl Iterator<Item = (K, T)> {
        self.items.into_iter().flatten()
    }
}

/// A group collected from a delta round: its properties and members so far.
#[derive(Default)]
struct PendingGroup {
    properties: Map<String, Value>,
    members: Ordered<MemberRef, ()>,
}

/// What one incremental delta round pair changed.
struct DeltaChanges {
    /// `None`: removed (or a guest while guests are excluded).
    users: Ordered<String, Option<SourceUser>>,
    guests: HashSet<String>,
    groups: Ordered<String, GroupChange>,
    users_link: String,
    groups_link: String,
}

#[derive(Default)]
struct GroupChange {
    removed: bool,
    /// A property (not only members) changed: the group is read again whole.
    properties: bool,
    /// Member -> added (true) or removed (false); the last entry wins.
    members: Ordered<MemberRef, bool>,
}

/// Follows one listing or delta round page by page.
struct Pager<'c> {
    conn: &'c AzureConnector,
    next: Option<String>,
    /// Sent with the first request only (nextLinks carry their options).
    query: Vec<(&'static str, String)>,
    first: bool,
    minimal: bool,
    delta: bool,
    what: String,
    permission: &'static str,
    delta_link: Option<String>,
}

impl Pager<'_> {
    /// The next page's items, or `None` after the last page.
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let query: Vec<(&str, &str)> = if self.first {
            self.query.iter().map(|(k, v)| (*k, v.as_str())).collect()
        } else {
            Vec::new()
        };
        self.first = false;
        let mut body = self
            .conn
            .get(&url, &query, self.minimal, &self.what, self.permission)
            .await?;
        let items = match body.as_object_mut().and_then(|o| o.remove("value")) {
            Some(Value::Array(items)) => items,
            other => {
                let got = other.as_ref().map_or("nothing", json_kind);
                return Err(self.conn.fail(
                    &self.what,
                    self.permission,
                    decode_error(&url, format!("expected a `value` array, got {got}")),
                ));
            }
        };
        if let Some(next) = odata_next_link(&body) {
            self.conn
                .check_link(&next)
                .map_err(|e| self.conn.fail(&self.what, self.permission, e))?;
            if next == url {
                return Err(self.conn.fail(
                    &self.what,
                    self.permission,
                    decode_error(&url, "@odata.nextLink points at the same page".to_string()),
                ));
            }
            self.next = Some(next);
        } else if self.delta {
            match body.get("@odata.deltaLink").and_then(Value::as_str) {
                Some(link) if !link.is_empty() => {
                    self.conn
                        .check_link(link)
                        .map_err(|e| self.conn.fail(&self.what, self.permission, e))?;
                    self.delta_link = Some(link.to_string());
                }
                _ => {
                    return Err(self.conn.fail(
                        &self.what,
                        self.permission,
                        decode_error(
                            &url,
                            "a delta page has neither @odata.nextLink nor @odata.deltaLink \
                             (the round is truncated)"
                                .to_string(),
                        ),
                    ));
                }
            }
        }
        Ok(Some(items))
    }

    /// The deltaLink that ended the round (after the last page).
    fn delta_link(&self) -> Result<String, ConnectorError> {
        self.delta_link.clone().ok_or_else(|| {
            self.conn.fail(
                &self.what,
                self.permission,
                decode_error(
                    &self.conn.api,
                    "the delta round ended without @odata.deltaLink".to_string(),
                ),
            )
        })
    }
}

fn decode_error(url: &str, reason: String) -> HttpError {
    let shown = url::Url::parse(url)
        .map(|u| super::http::redact_url(&u))
        .unwrap_or_else(|_| "Graph".to_string());
    HttpError::Decode {
        url_path: shown,
        reason,
    }
}

/// Whether an error says the delta token expired or was rejected: 410, or 400/404 with
/// `syncStateNotFound` / `resyncRequired` (any case).
pub fn is_expired_token(err: &ConnectorError) -> bool {
    match err {
        ConnectorError::Http {
            source:
                HttpError::Status {
                    status,
                    body_excerpt,
                    ..
                },
            ..
        } => {
            let body = body_excerpt.to_ascii_lowercase();
            *status == 410
                || (matches!(status, 400 | 404)
                    && (body.contains("syncstatenotfound") || body.contains("resyncrequired")))
        }
        _ => false,
    }
}

/// Percent-encodes one path segment (ids are GUIDs, but never trust that).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl AzureConnector {
    /// Builds the connector (HTTP client, token source, assertion signer) from its settings.
    pub fn new(settings: &AzureSettings) -> Result<AzureConnector, ConnectorError> {
        let fail = |what: &str, source: HttpError| ConnectorError::Http {
            kind: KIND,
            what: what.to_string(),
            source,
        };
        let auth = match &settings.credential {
            AzureCredential::Secret(secret) => ClientAuth::Secret(secret.clone()),
            AzureCredential::Certificate {
                certificate_der,
                private_key_pem,
            } => {
                let signer = AssertionSigner::new(
                    &settings.client_id,
                    &settings.token_url,
                    certificate_der,
                    private_key_pem,
                )
                .map_err(|e| fail("loading the certificate key", e))?;
                ClientAuth::Assertion(Arc::new(move || signer.sign()))
            }
            AzureCredential::Unavailable { key, reason } => {
                return Err(ConnectorError::Io {
                    path: key.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, reason.clone()),
                });
            }
        };
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            max_retry_time: settings.max_retry_time,
            metrics_label: "azure",
            ..HttpOptions::default()
        };
        let graph_url = settings.graph_url.trim_end_matches('/').to_string();
        // Credentials go only to Graph's origin (paging and delta links included) and the
        // token endpoint; both must be https unless allow_insecure_http (loopback only).
        let http = HttpClient::new(options)
            .and_then(|http| {
                http.pinned_to(
                    &[(graph_url.as_str(), "azure.graph_url")],
                    settings.allow_insecure_http,
                )
            })
            .map_err(|e| fail("setting up the HTTP client", e))?;
        origin::configured_origin(
            &settings.token_url,
            "azure.token_url",
            settings.allow_insecure_http,
        )
        .map_err(|e| fail("setting up the token endpoint", e))?;
        let token = Arc::new(
            OAuthClientCredentials::new(
                http.reqwest_client(),
                &settings.token_url,
                settings.client_id.clone(),
                auth,
                Some(format!("{graph_url}/.default")),
            )
            .map_err(|e| fail("setting up the token endpoint", e))?,
        );
        let http = http.with_auth(token.clone(), AuthScheme::Bearer);
        let origin = url::Url::parse(&graph_url)
            .map_err(|e| {
                fail(
                    "reading graph_url",
                    HttpError::InvalidUrl {
                        what: "graph_url".to_string(),
                        reason: e.to_string(),
                    },
                )
            })?
            .origin();
        let user_select = settings.user_properties.join(",");
        let group_select = settings.group_properties.join(",");
        let fingerprint = content_hash(&(
            "azure-v1",
            &graph_url,
            &user_select,
            &group_select,
            settings.include_guests,
        ));
        Ok(AzureConnector {
            http,
            token,
            token_url: settings.token_url.clone(),
            api: format!("{graph_url}/v1.0"),
            origin,
            include_guests: settings.include_guests,
            user_filter: settings.user_filter.clone(),
            group_filter: settings.group_filter.clone(),
            page_size: settings.page_size.clamp(1, 999),
            delta: settings.delta,
            full_sync_every: chrono::Duration::from_std(settings.full_sync_every)
                .unwrap_or(chrono::Duration::MAX),
            user_select,
            group_select,
            fingerprint,
            plain_http: origin::plain_http_urls(&[&graph_url, &settings.token_url]),
        })
    }

    /// The error of a failed call; a 403 names the permission to grant.
    fn fail(&self, what: &str, permission: &str, source: HttpError) -> ConnectorError {
        let what = match &source {
            HttpError::Status { status: 403, .. } => format!(
                "{what} (forbidden: grant the app registration the Microsoft Graph application \
                 permission {permission}, with admin consent)"
            ),
            _ => what.to_string(),
        };
        ConnectorError::Http {
            kind: KIND,
            what,
            source,
        }
    }

    /// Refuses links to another scheme, host or port than `graph_url`.
    fn check_link(&self, link: &str) -> Result<(), HttpError> {
        let url = url::Url::parse(link).map_err(|e| HttpError::InvalidUrl {
            what: "a Graph paging link".to_string(),
            reason: e.to_string(),
        })?;
        if url.origin() != self.origin {
            return Err(HttpError::InvalidUrl {
                what: "a Graph paging link".to_string(),
                reason: format!(
                    "it points at {} instead of the configured graph_url; refusing to send the \
                     token there",
                    super::http::redact_url(&url)
                ),
            });
        }
        Ok(())
    }

    async fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        minimal: bool,
        what: &str,
        permission: &str,
    ) -> Result<Value, ConnectorError> {
        let headers: &[(&'static str, &str)] = if minimal {
            &[("Prefer", "return=minimal")]
        } else {
            &[]
        };
        self.http
            .get_json_with_headers(url, query, headers)
            .await
            .map(|(body, _)| body)
            .map_err(|e| self.fail(what, permission, e))
    }

    fn pager(
        &self,
        url: String,
        query: Vec<(&'static str, String)>,
        delta: bool,
        minimal: bool,
        what: impl Into<String>,
        permission: &'static str,
    ) -> Pager<'_> {
        Pager {
            conn: self,
            next: Some(url),
            query,
            first: true,
            minimal,
            delta,
            what: what.into(),
            permission,
            delta_link: None,
        }
    }

    /// What the next read will be, given the stored checkpoint and the time.
    pub fn plan(&self, checkpoint: Option<&str>, now: DateTime<Utc>) -> ReadPlan {
        if !self.delta {
            return ReadPlan::Full("delta = false".to_string());
        }
        let Some(text) = checkpoint else {
            return ReadPlan::Full("no checkpoint yet".to_string());
        };
        let Some(cp) = AzureCheckpoint::parse(text) else {
            return ReadPlan::Full("the checkpoint is not a Graph delta checkpoint".to_string());
        };
        if cp.query != self.fingerprint {
            return ReadPlan::Full(
                "graph_url, the selected attributes or include_guests changed".to_string(),
            );
        }
        if self.check_link(&cp.users).is_err() || self.check_link(&cp.groups).is_err() {
            return ReadPlan::Full("the stored delta links point at another host".to_string());
        }
        if now.signed_duration_since(cp.full_at) >= self.full_sync_every {
            return ReadPlan::Full(format!(
                "the last full read ({}) is older than full_sync_every",
                cp.full_at.to_rfc3339()
            ));
        }
        ReadPlan::Delta(cp)
    }

    /// A full read through the initial delta rounds; the checkpoint holds the new links.
    async fn read_full_delta(
        &self,
        sink: &mut dyn BatchSink,
        started: DateTime<Utc>,
    ) -> Result<ReadSummary, ConnectorError> {
        let mut users: Ordered<String, SourceUser> = Ordered::default();
        let mut pager = self.pager(
            format!("{}/users/delta", self.api),
            vec![("$select", self.user_select.clone())],
            true,
            false,
            "reading users (initial delta round)",
            USERS_PERMISSION,
        );
        while let Some(items) = pager.next_page().await? {
            for item in items {
                let Some(id) = id_of(&item) else { continue };
                if is_removed(&item) || (!self.include_guests && is_guest(&item)) {
                    users.remove(&id);
                } else if let Some(user) = convert::to_user(item) {
                    users.set(id, user);
                }
            }
        }
        let users_link = pager.delta_link()?;
        let user_ids: HashSet<String> = users.index.keys().cloned().collect();
        let mut batch = Vec::new();
        for (_, user) in users.into_iter() {
            batch.push(user);
            if batch.len() >= USER_BATCH_SIZE {
                sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(batch)).await?;
        }

        let mut groups: Ordered<String, PendingGroup> = Ordered::default();
        let mut pager = self.pager(
            format!("{}/groups/delta", self.api),
            vec![("$select", format!("{},members", self.group_select))],
            true,
            false,
            "reading groups and members (initial delta round)",
            GROUPS_PERMISSION,
        );
        while let Some(items) = pager.next_page().await? {
            for mut item in items {
                let Some(id) = id_of(&item) else { continue };
                if is_removed(&item) {
                    groups.remove(&id);
                    continue;
                }
                let entries = take_members_delta(&mut item);
                let group = groups.entry(id, PendingGroup::default);
                group.properties.extend(attributes(item));
                for entry in entries {
                    if let Some(member) = member_ref(&entry) {
                        if is_removed(&entry) {
                            group.members.remove(&member);
                        } else {
                            group.members.set(member, ());
                        }
                    }
                }
            }
        }
        let groups_link = pager.delta_link()?;
        let group_ids: HashSet<String> = groups.index.keys().cloned().collect();
        let mut batch = Vec::new();
        for (id, group) in groups.into_iter() {
            let members = group
                .members
                .into_iter()
                .map(|(m, ())| m)
                .filter(|m| known_member(m, &user_ids, &group_ids))
                .collect();
            batch.push(to_group(id, group.properties, members));
            if batch.len() >= GROUP_BATCH_SIZE {
                sink.accept(SourceBatch::Groups(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Groups(batch)).await?;
        }
        Ok(ReadSummary {
            mode: ReadMode::Full,
            complete: true,
            next_checkpoint: Some(
                AzureCheckpoint {
                    v: 1,
                    users: users_link,
                    groups: groups_link,
                    full_at: started,
                    query: self.fingerprint.clone(),
                }
                .to_json(),
            ),
        })
    }

    /// A full read through plain listings (`delta = false`).
    async fn read_full_listing(&self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
        let top = self.page_size.to_string();
        let mut query = vec![("$select", self.user_select.clone()), ("$top", top.clone())];
        if let Some(filter) = &self.user_filter {
            query.push(("$filter", filter.clone()));
        }
        let mut pager = self.pager(
            format!("{}/users", self.api),
            query,
            false,
            false,
            "listing users",
            USERS_PERMISSION,
        );
        let mut user_ids = HashSet::new();
        let mut batch = Vec::new();
        while let Some(items) = pager.next_page().await? {
            for item in items {
                if !self.include_guests && is_guest(&item) {
                    continue;
                }
                let Some(user) = convert::to_user(item) else {
                    continue;
                };
                if user_ids.insert(user.external_id.clone()) {
                    batch.push(user);
                }
                if batch.len() >= USER_BATCH_SIZE {
                    sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                        .await?;
                }
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                .await?;
        }

        let mut query = vec![("$select", self.group_select.clone()), ("$top", top)];
        if let Some(filter) = &self.group_filter {
            query.push(("$filter", filter.clone()));
        }
        let mut pager = self.pager(
            format!("{}/groups", self.api),
            query,
            false,
            false,
            "listing groups",
            GROUPS_PERMISSION,
        );
        let mut groups: Ordered<String, Value> = Ordered::default();
        while let Some(items) = pager.next_page().await? {
            for item in items {
                if let Some(id) = id_of(&item) {
                    groups.set(id, item);
                }
            }
        }
        let group_ids: HashSet<String> = groups.index.keys().cloned().collect();
        let mut batch = Vec::new();
        for (id, item) in groups.into_iter() {
            let members = self
                .members_of(&id)
                .await?
                .into_iter()
                .filter(|m| known_member(m, &user_ids, &group_ids))
                .collect();
            batch.push(to_group(id, attributes(item), members));
            if batch.len() >= GROUP_BATCH_SIZE {
                sink.accept(SourceBatch::Groups(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Groups(batch)).await?;
        }
        Ok(())
    }

    /// The direct user and group members of group `id` (guests left out when excluded).
    async fn members_of(&self, id: &str) -> Result<Vec<MemberRef>, ConnectorError> {
        let mut pager = self.pager(
            format!("{}/groups/{}/members", self.api, segment(id)),
            vec![
                ("$select", "id,userType".to_string()),
                ("$top", self.page_size.to_string()),
            ],
            false,
            false,
            format!("listing the members of group {id}"),
            GROUPS_PERMISSION,
        );
        let mut members: Ordered<MemberRef, ()> = Ordered::default();
        while let Some(items) = pager.next_page().await? {
            for item in items {
                if let Some(member) = member_ref(&item) {
                    if member.kind == MemberKind::User && !self.include_guests && is_guest(&item) {
                        continue;
                    }
                    members.set(member, ());
                }
            }
        }
        Ok(members.into_iter().map(|(m, ())| m).collect())
    }

    /// Follows both stored deltaLinks to their new deltaLinks, collecting the changes.
    /// Nothing reaches the sink yet, so an expired token can still fall back to a full read.
    async fn collect_delta(&self, cp: &AzureCheckpoint) -> Result<DeltaChanges, ConnectorError> {
        let mut users: Ordered<String, Option<SourceUser>> = Ordered::default();
        let mut guests = HashSet::new();
        let mut pager = self.pager(
            cp.users.clone(),
            Vec::new(),
            true,
            false,
            "reading user changes (delta)",
            USERS_PERMISSION,
        );
        while let Some(items) = pager.next_page().await? {
            for item in items {
                let Some(id) = id_of(&item) else { continue };
                if is_removed(&item) {
                    users.set(id, None);
                } else if !self.include_guests && is_guest(&item) {
                    guests.insert(id.clone());
                    users.set(id, None);
                } else {
                    users.set(id, convert::to_user(item));
                }
            }
        }
        let users_link = pager.delta_link()?;

        let mut groups: Ordered<String, GroupChange> = Ordered::default();
        let mut pager = self.pager(
            cp.groups.clone(),
            Vec::new(),
            true,
            true,
            "reading group and membership changes (delta)",
            GROUPS_PERMISSION,
        );
        while let Some(items) = pager.next_page().await? {
            for mut item in items {
                let Some(id) = id_of(&item) else { continue };
                let change = groups.entry(id, GroupChange::default);
                if is_removed(&item) {
                    *change = GroupChange {
                        removed: true,
                        ..GroupChange::default()
                    };
                    continue;
                }
                change.removed = false;
                let entries = take_members_delta(&mut item);
                change.properties |= has_properties(&item);
                for entry in entries {
                    if let Some(member) = member_ref(&entry) {
                        change.members.set(member, !is_removed(&entry));
                    }
                }
            }
        }
        let groups_link = pager.delta_link()?;
        Ok(DeltaChanges {
            users,
            guests,
            groups,
            users_link,
            groups_link,
        })
    }

    /// Sends the collected changes: users, removals, groups read again, member changes.
    async fn emit_delta(
        &self,
        changes: DeltaChanges,
        full_at: DateTime<Utc>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        let DeltaChanges {
            users,
            guests,
            groups,
            users_link,
            groups_link,
        } = changes;
        let mut removed_users = Vec::new();
        let mut batch = Vec::new();
        for (id, user) in users.into_iter() {
            match user {
                Some(user) => batch.push(user),
                None => removed_users.push(id),
            }
            if batch.len() >= USER_BATCH_SIZE {
                sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(batch)).await?;
        }

        let mut removed_groups = Vec::new();
        let mut reread = Vec::new();
        let mut member_changes = Vec::new();
        for (id, change) in groups.into_iter() {
            if change.removed {
                removed_groups.push(id);
                continue;
            }
            if change.properties {
                match self.group_whole(&id).await? {
                    Some(group) => reread.push(group),
                    None => removed_groups.push(id),
                }
                continue;
            }
            let mut added = Vec::new();
            let mut removed = Vec::new();
            for (member, is_added) in change.members.into_iter() {
                if is_added {
                    if !(member.kind == MemberKind::User && guests.contains(&member.id)) {
                        added.push(member);
                    }
                } else {
                    removed.push(member);
                }
            }
            if !added.is_empty() || !removed.is_empty() {
                member_changes.push(SourceBatch::MemberChanges {
                    group: id,
                    added,
                    removed,
                });
            }
        }
        if !removed_users.is_empty() || !removed_groups.is_empty() {
            sink.accept(SourceBatch::Removed {
                users: removed_users,
                groups: removed_groups,
            })
            .await?;
        }
        for chunk in reread.chunks(GROUP_BATCH_SIZE) {
            sink.accept(SourceBatch::Groups(chunk.to_vec())).await?;
        }
        for change in member_changes {
            sink.accept(change).await?;
        }
        Ok(ReadSummary {
            mode: ReadMode::Delta,
            complete: true,
            next_checkpoint: Some(
                AzureCheckpoint {
                    v: 1,
                    users: users_link,
                    groups: groups_link,
                    full_at,
                    query: self.fingerprint.clone(),
                }
                .to_json(),
            ),
        })
    }

    /// A group whose properties changed, read whole; `None` when it is gone (404).
    async fn group_whole(&self, id: &str) -> Result<Option<SourceGroup>, ConnectorError> {
        let what = format!("reading group {id}");
        let url = format!("{}/groups/{}", self.api, segment(id));
        let item = match self
            .get(
                &url,
                &[("$select", self.group_select.as_str())],
                false,
                &what,
                GROUPS_PERMISSION,
            )
            .await
        {
            Ok(item) => item,
            Err(ConnectorError::Http {
                source: HttpError::Status { status: 404, .. },
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let members = match self.members_of(id).await {
            Ok(members) => members,
            Err(ConnectorError::Http {
                source: HttpError::Status { status: 404, .. },
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(to_group(id.to_string(), attributes(item), members)))
    }

    /// One `$top=1` GET for `idsync check --connect`.
    async fn probe(
        &self,
        check: &'static str,
        url: &str,
        query: &[(&str, &str)],
        permission: &str,
    ) -> Result<Value, Diagnosis> {
        match self.get(url, query, false, check, permission).await {
            Ok(body) => Ok(body),
            Err(ConnectorError::Http { source, .. }) => Err(match &source {
                HttpError::Auth { .. } | HttpError::Status { status: 401, .. } => {
                    Diagnosis::failed("authenticate", source.to_string())
                }
                HttpError::Status { status: 403, .. } => Diagnosis::failed(
                    check,
                    format!(
                        "forbidden: grant the app registration the Microsoft Graph application \
                         permission {permission}, with admin consent"
                    ),
                ),
                _ => Diagnosis::failed(check, source.to_string()),
            }),
            Err(other) => Err(Diagnosis::failed(check, other.to_string())),
        }
    }
}

/// Takes `members@delta` out of a delta group object.
fn take_members_delta(item: &mut Value) -> Vec<Value> {
    match item.as_object_mut().and_then(|o| o.remove("members@delta")) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    }
}

/// Whether a member is among the users / groups a full read delivered.
fn known_member(member: &MemberRef, users: &HashSet<String>, groups: &HashSet<String>) -> bool {
    match member.kind {
        MemberKind::User => users.contains(&member.id),
        MemberKind::Group => groups.contains(&member.id),
    }
}

#[async_trait]
impl PullConnector for AzureConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A token, then `$top=1` reads of users, groups and one group's members (and, with
    /// delta, `$deltatoken=latest` of both delta functions); a 403 names the permission.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        let mut checks = Vec::new();
        match self.token.token(false).await {
            Ok(_) => checks.push(Diagnosis::ok(
                "authenticate",
                format!(
                    "token issued by {}",
                    url::Url::parse(&self.token_url)
                        .map(|u| super::http::redact_url(&u))
                        .unwrap_or_default()
                ),
            )),
            Err(e) => {
                checks.push(Diagnosis::failed("authenticate", e.to_string()));
                return checks;
            }
        }
        let top = [("$top", "1"), ("$select", "id")];
        let users = format!("{}/users", self.api);
        if let Err(d) = self
            .probe("list users", &users, &top, USERS_PERMISSION)
            .await
        {
            checks.push(d);
            return checks;
        }
        checks.push(Diagnosis::ok("list users", "permitted"));
        let groups = format!("{}/groups", self.api);
        let first_group = match self
            .probe("list groups", &groups, &top, GROUPS_PERMISSION)
            .await
        {
            Ok(body) => body.get("value").and_then(|v| v.get(0)).and_then(id_of),
            Err(d) => {
                checks.push(d);
                return checks;
            }
        };
        checks.push(Diagnosis::ok("list groups", "permitted"));
        if let Some(id) = first_group {
            let url = format!("{}/groups/{}/members", self.api, segment(&id));
            match self
                .probe("list group members", &url, &top, GROUPS_PERMISSION)
                .await
            {
                Ok(_) => checks.push(Diagnosis::ok("list group members", "permitted")),
                Err(d) => {
                    checks.push(d);
                    return checks;
                }
            }
        }
        if self.delta {
            let latest = [("$deltatoken", "latest")];
            for (check, path, permission) in [
                ("users delta", "users/delta", USERS_PERMISSION),
                ("groups delta", "groups/delta", GROUPS_PERMISSION),
            ] {
                let url = format!("{}/{path}", self.api);
                match self.probe(check, &url, &latest, permission).await {
                    Ok(_) => checks.push(Diagnosis::ok(check, "permitted")),
                    Err(d) => {
                        checks.push(d);
                        return checks;
                    }
                }
            }
        }
        checks
    }

    /// A delta read from the checkpoint when it is usable, else a full read.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        origin::warn_plain_http(KIND, &self.plain_http);
        if !self.delta {
            self.read_full_listing(sink).await?;
            return Ok(ReadSummary {
                mode: ReadMode::Full,
                complete: true,
                next_checkpoint: None,
            });
        }
        let now = crate::clock::now();
        match self.plan(checkpoint, now) {
            ReadPlan::Delta(cp) => match self.collect_delta(&cp).await {
                Ok(changes) => return self.emit_delta(changes, cp.full_at, sink).await,
                Err(e) if is_expired_token(&e) => {
                    tracing::info!(error = %e, "Graph delta token expired or rejected; reading everything");
                }
                Err(e) => return Err(e),
            },
            ReadPlan::Full(why) => tracing::info!(reason = %why, "full read"),
        }
        self.read_full_delta(sink, now).await
    }
}
