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
mod client;
mod credential;
mod delta;
mod records;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use assertion::{AssertionSigner, thumbprint_sha1, thumbprint_sha256};

use super::batch::Batcher;
use super::http::{HttpClient, OAuthClientCredentials, TokenSource};
use super::probe::token_then_listings;
use super::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use crate::model::{MemberKind, MemberRef};
use client::*;
use delta::*;
use records::{attributes, has_properties, id_of, is_guest, is_removed, member_ref, to_group};
pub use settings::*;

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
}

impl std::fmt::Debug for AzureConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureConnector")
            .field("api", &self.api)
            .field("delta", &self.delta)
            .finish_non_exhaustive()
    }
}

impl AzureConnector {
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
        // Users go to the sink as they come, not held until the round ends (at 100,000
        // users that held about 400 MiB): the round may send a user again (the last
        // occurrence wins) or remove one it sent, which the sink resolves in order.
        sink.allow_repeats();
        let mut user_ids: HashSet<String> = HashSet::new();
        let mut batch = Batcher::users();
        let mut pager = self.delta_pager(
            (
                format!("{}/users/delta", self.api),
                vec![("$select", self.user_select.clone())],
            ),
            false,
            ("reading users (initial delta round)", USERS_PERMISSION),
        );
        while let Some(items) = pager.next_page().await? {
            let mut gone = Vec::new();
            for item in items {
                let Some(id) = id_of(&item) else { continue };
                if is_removed(&item) || (!self.include_guests && is_guest(&item)) {
                    if user_ids.remove(&id) {
                        gone.push(id);
                    }
                } else if let Some(user) = records::to_user(item) {
                    user_ids.insert(id);
                    batch.push(user, sink).await?;
                }
            }
            if !gone.is_empty() {
                // The removal follows the records it removes.
                batch.flush(sink).await?;
                sink.accept(SourceBatch::Removed {
                    users: gone,
                    groups: Vec::new(),
                })
                .await?;
            }
        }
        let users_link = pager.delta_link()?;
        batch.finish(sink).await?;

        let mut groups: Ordered<String, PendingGroup> = Ordered::default();
        let groups_link = self
            .delta_round(
                (
                    format!("{}/groups/delta", self.api),
                    vec![("$select", format!("{},members", self.group_select))],
                ),
                false,
                (
                    "reading groups and members (initial delta round)",
                    GROUPS_PERMISSION,
                ),
                |id, mut item| {
                    if is_removed(&item) {
                        groups.remove(&id);
                        return;
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
                },
            )
            .await?;
        let group_ids: HashSet<String> = groups.index.keys().cloned().collect();
        let mut batch = Batcher::groups();
        for (id, group) in groups.into_iter() {
            let members = group
                .members
                .into_iter()
                .map(|(m, ())| m)
                .filter(|m| known_member(m, &user_ids, &group_ids))
                .collect();
            batch
                .push(to_group(id, group.properties, members), sink)
                .await?;
        }
        batch.finish(sink).await?;
        Ok(self.finished(ReadMode::Full, (users_link, groups_link), started))
    }

    /// A complete read whose checkpoint holds the rounds' new deltaLinks (users, groups)
    /// and when the last full read started.
    fn finished(
        &self,
        mode: ReadMode,
        (users, groups): (String, String),
        full_at: DateTime<Utc>,
    ) -> ReadSummary {
        let checkpoint = AzureCheckpoint {
            v: 1,
            users,
            groups,
            full_at,
            query: self.fingerprint.clone(),
        };
        ReadSummary::complete(mode, Some(checkpoint.to_json()))
    }

    /// A full read through plain listings (`delta = false`).
    async fn read_full_listing(&self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
        let mut pager = self.listing(
            "users",
            self.user_select.clone(),
            self.user_filter.as_ref(),
            ("listing users".to_string(), USERS_PERMISSION),
        );
        let mut user_ids = HashSet::new();
        let mut batch = Batcher::users();
        while let Some(items) = pager.next_page().await? {
            for item in items {
                if !self.include_guests && is_guest(&item) {
                    continue;
                }
                let Some(user) = records::to_user(item) else {
                    continue;
                };
                if user_ids.insert(user.external_id.clone()) {
                    batch.push(user, sink).await?;
                }
            }
        }
        batch.finish(sink).await?;

        let mut pager = self.listing(
            "groups",
            self.group_select.clone(),
            self.group_filter.as_ref(),
            ("listing groups".to_string(), GROUPS_PERMISSION),
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
        let mut batch = Batcher::groups();
        for (id, item) in groups.into_iter() {
            let members = self
                .members_of(&id)
                .await?
                .into_iter()
                .filter(|m| known_member(m, &user_ids, &group_ids))
                .collect();
            batch
                .push(to_group(id, attributes(item), members), sink)
                .await?;
        }
        batch.finish(sink).await?;
        Ok(())
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
        let token = match self.token.token(false).await {
            Ok(_) => Ok(format!(
                "token issued by {}",
                url::Url::parse(&self.token_url)
                    .map(|u| super::http::redact_url(&u))
                    .unwrap_or_default()
            )),
            Err(e) => Err(e.to_string()),
        };
        let (mut checks, passed) = token_then_listings(self, Some(("authenticate", token))).await;
        if !passed {
            return checks;
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
        self.http.warn_plain_http(KIND);
        if !self.delta {
            self.read_full_listing(sink).await?;
            return Ok(ReadSummary::complete(ReadMode::Full, None));
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
