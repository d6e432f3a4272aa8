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
mod client;
mod records;
mod settings;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use self::records::{Disposition, Policies};
use super::batch::Batcher;
use super::checkpoint::{self, Checkpoint, Plan};
use super::http::{HttpClient, HttpError, TokenSource};
use super::probe::token_then_listings;
use super::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use crate::model::{MemberKind, MemberRef, content_hash};
use client::*;
pub use settings::*;

pub use super::checkpoint::OVERLAP as CHECKPOINT_OVERLAP;

const KIND: &str = "okta";

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
        let mut batch = Batcher::users();
        for (extra, what) in listings {
            let mut pager = self.pager("/users", extra, what.to_string(), Need::Users);
            while let Some(page) = pager.next_page().await? {
                for item in page {
                    if let Disposition::Keep(user) = records::to_user(item, &self.policies)
                        && seen.insert(user.external_id.clone())
                    {
                        batch.push(user, sink).await?;
                    }
                }
            }
            started = started.or(pager.started);
        }
        batch.finish(sink).await?;
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
        let mut batch = Batcher::users();
        let mut removed: Vec<String> = Vec::new();
        while let Some(page) = pager.next_page().await? {
            for item in page {
                match records::to_user(item, &self.policies) {
                    Disposition::Keep(user) => batch.push(user, sink).await?,
                    Disposition::Skip(id) => removed.push(id),
                    Disposition::Invalid => {}
                }
            }
        }
        batch.finish(sink).await?;
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
        let mut batch = Batcher::groups();
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
                        batch.push(group, sink).await?;
                    }
                }
            }
        }
        batch.finish(sink).await?;
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
}

#[async_trait]
impl PullConnector for OktaConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A token (service apps), then one-item reads of users, groups and a group's members.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        let token = match &self.scopes {
            Some(scopes) => Some((
                "authenticate",
                match self.token.token(false).await {
                    Ok(_) => Ok(format!("token issued for {}", scopes.join(" "))),
                    Err(error) => Err(match &error {
                        HttpError::Auth { code, .. } => match token_advice(code, Some(scopes)) {
                            Some(advice) => format!("{error}; {advice}"),
                            None => error.to_string(),
                        },
                        _ => error.to_string(),
                    }),
                },
            )),
            None => None,
        };
        token_then_listings(self, token).await.0
    }

    /// A full read, or an incremental one from a usable checkpoint.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.http.warn_plain_http(KIND);
        let now = crate::clock::system_now();
        let plan = checkpoint::plan(checkpoint, &self.fingerprint, now, self.full_sync_every);
        match plan {
            Plan::Full { reason } => {
                tracing::info!(reason, "okta: full read");
                let started = self.full_users(sink).await?.unwrap_or(now);
                self.groups(|clause| clause.to_string(), sink).await?;
                Ok(ReadSummary::complete(
                    ReadMode::Full,
                    Some(Checkpoint::new(started, now, &self.fingerprint).encode()),
                ))
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
                Ok(ReadSummary::complete(
                    ReadMode::Delta,
                    Some(Checkpoint::new(started, full_read_at, &self.fingerprint).encode()),
                ))
            }
        }
    }
}
