//! The `google` connector: a full read of a Google Workspace account through the Admin SDK
//! Directory API (`admin/directory/v1`), as a service account with domain-wide delegation.
//! See docs/connectors-google.md for what each step relies on.
//!
//! * Auth: a signed RS256 assertion (`iss` = the key's `client_email`, `sub` = the admin
//!   `subject`, `scope`, `aud` = the token URL, one hour) exchanged for an access token with
//!   the JWT-bearer grant ([`JwtBearerGrant`]); see [`assertion`]. `Bearer` on every call.
//! * Users: `GET /admin/directory/v1/users?customer|domain&maxResults=500&projection=full`,
//!   `pageToken` paged. Suspended and archived users are synced inactive (or left out, by
//!   setting). Deleted users are not listed: they drop out of the next full read.
//! * Groups: `GET /groups?customer|domain&maxResults=200`, `pageToken` paged.
//! * Members: `GET /groups/{id}/members?maxResults=200` per group, direct members only:
//!   `type` USER (a user of this read) and GROUP (nesting) are kept; CUSTOMER ("everyone in
//!   the account") and members outside the read (external accounts, users left out by
//!   setting) are left out and counted in the log.
//!
//! The Directory API has no delta for users, groups or members. Between full reads (the
//! first, and one every `full_sync_every`), where the domain-wide delegation grants the
//! Reports API's scope, a read lists the admin activities since the last one and reads
//! again only the users and groups they name ([`reports`]); without that scope (or the
//! Reports privilege) every read is full. Any failed page (after retries), any 403 of
//! the Directory API, any malformed page or repeated page token fails the whole read, so
//! nothing is removed on the strength of a partial listing.

mod assertion;
mod client;
mod records;
mod reports;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use super::batch::Batcher;
use super::checkpoint::{self, Checkpoint, Plan};
use super::http::{HttpClient, HttpError, JwtBearerGrant, TokenSource};
use super::probe::{ListingProbe, ProbeListing, token_then_listings};
use super::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use crate::model::{MemberKind, MemberRef};
use client::*;
use records::*;
pub use settings::*;

/// `errors[].reason` values of the quota errors worth retrying
/// (<https://developers.google.com/admin-sdk/directory/v1/limits>).
const RATE_LIMIT_REASONS: [&str; 3] = [
    "userRateLimitExceeded",
    "rateLimitExceeded",
    "quotaExceeded",
];

const KIND: &str = "google";

/// How far before the last read's start the next incremental read looks: admin log events
/// reach the Reports API "in near real time (a couple of minutes)", rarely later
/// (<https://support.google.com/a/answer/7061566>). Activities read twice cost a re-read.
const REPORTS_OVERLAP: Duration = Duration::from_secs(15 * 60);

/// Reads users and groups of one Google Workspace account.
#[derive(Debug, Clone)]
pub struct GoogleConnector {
    http: HttpClient,
    /// The Reports API's client, with a token of its own scope.
    reports: HttpClient,
    /// `{api_base_url}/admin/reports/v1/activity/users/all/applications/admin`.
    activities_url: String,
    /// Incremental reads from the admin activities are allowed.
    activity_reports: bool,
    full_sync_every: Duration,
    /// What a checkpoint must have been made with to be continued.
    fingerprint: String,
    token: Arc<JwtBearerGrant>,
    /// `{api_base_url}/admin/directory/v1`.
    api: String,
    directory: GoogleDirectoryScope,
    users_page_size: u32,
    groups_page_size: u32,
    include_suspended: bool,
    include_archived: bool,
    scopes: Vec<String>,
    subject: String,
    client_email: String,
    /// The number to authorise for domain-wide delegation (else the client email).
    client_id: String,
    project_id: Option<String>,
    /// Budget and backoff for retrying 403 quota answers (the shared client retries 429s).
    retry_time: Duration,
}

impl GoogleConnector {
    /// Sends every user (as batches) and returns the ids sent.
    async fn read_users(
        &self,
        sink: &mut dyn BatchSink,
    ) -> Result<HashSet<String>, ConnectorError> {
        let url = self.endpoint(&["users"]);
        let (scope_key, scope_value) = self.directory.query();
        let max = self.users_page_size.to_string();
        let query = [
            (scope_key, scope_value),
            ("maxResults", max.as_str()),
            ("projection", "full"),
        ];
        let mut seen = HashSet::new();
        let mut batch = Batcher::users();
        let mut walk = TokenWalk::default();
        let mut left_out = 0usize;
        // Not for_each_page: batches reach the (async) sink as pages arrive.
        while let Some(items) = self
            .next_page(&mut walk, Listing::Users, &url, &query)
            .await?
        {
            for item in items {
                let user = to_user(item, self.include_suspended, self.include_archived)
                    .map_err(|reason| self.malformed(Listing::Users, &url, reason))?;
                match user {
                    Some(user) => {
                        if seen.insert(user.external_id.clone()) {
                            batch.push(user, sink).await?;
                        }
                    }
                    None => left_out += 1,
                }
            }
        }
        batch.finish(sink).await?;
        if left_out > 0 {
            tracing::info!(
                left_out,
                "suspended or archived users left out (include_suspended / include_archived)"
            );
        }
        Ok(seen)
    }

    /// Lists every group, then each group's direct members, and sends the groups.
    async fn read_groups(
        &self,
        user_ids: &HashSet<String>,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let url = self.endpoint(&["groups"]);
        let (scope_key, scope_value) = self.directory.query();
        let max = self.groups_page_size.to_string();
        let query = [(scope_key, scope_value), ("maxResults", max.as_str())];
        let mut groups: Vec<(String, Value)> = Vec::new();
        let mut group_ids = HashSet::new();
        self.for_each_page(Listing::Groups, &url, &query, |items| {
            for item in items {
                let id = str_field(&item, "id").ok_or_else(|| {
                    self.malformed(Listing::Groups, &url, "a group without `id`".to_string())
                })?;
                if group_ids.insert(id.clone()) {
                    groups.push((id, item));
                }
            }
            Ok(())
        })
        .await?;

        let member_query = [("maxResults", max.as_str())];
        let mut left_out = LeftOut::default();
        let mut batch = Batcher::groups();
        for (id, group) in groups {
            let url = self.endpoint(&["groups", &id, "members"]);
            let listing = Listing::Members(&id);
            let mut members = Vec::new();
            let mut seen = HashSet::new();
            self.for_each_page(listing, &url, &member_query, |items| {
                for item in items {
                    if let Some(member) = to_member(&item, user_ids, &group_ids, &mut left_out)
                        && seen.insert(member.clone())
                    {
                        members.push(member);
                    }
                }
                Ok(())
            })
            .await?;
            batch.push(to_group(id, group, members), sink).await?;
        }
        batch.finish(sink).await?;
        left_out.log();
        Ok(())
    }
}

#[async_trait]
impl PullConnector for GoogleConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A token, then `maxResults=1` reads of users, groups and one group's members.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        let token = self.token.token(true).await.map_or_else(
            |error| Err(self.detail(Listing::Users, &error)),
            |_| {
                Ok(format!(
                    "issued to {} acting as {} for {}",
                    self.client_email,
                    self.subject,
                    self.scopes.join(" ")
                ))
            },
        );
        let (mut checks, passed) = token_then_listings(self, Some(("token", token))).await;
        if passed && self.activity_reports {
            checks.push(self.diagnose_admin_log().await);
        }
        checks
    }

    /// An incremental read from the admin activities where the checkpoint and the
    /// delegation allow it, else a full read of the account.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.http.warn_plain_http(KIND);
        if !self.activity_reports {
            let user_ids = self.read_users(sink).await?;
            self.read_groups(&user_ids, sink).await?;
            return Ok(ReadSummary::complete(ReadMode::Full, None));
        }
        // Taken before any request: a change made while the read runs is dated later, and
        // so read again next time.
        let now = crate::clock::system_now();
        let reason =
            match checkpoint::plan(checkpoint, &self.fingerprint, now, self.full_sync_every) {
                Plan::Full { reason } => reason,
                Plan::Delta {
                    since,
                    full_read_at,
                } => match self.read_delta(now, &since, &full_read_at, sink).await? {
                    Ok(summary) => return Ok(summary),
                    Err(reason) => reason,
                },
            };
        tracing::info!(reason, "google: full read");
        let user_ids = self.read_users(sink).await?;
        self.read_groups(&user_ids, sink).await?;
        Ok(ReadSummary::complete(
            ReadMode::Full,
            Some(self.checkpoint(now, now)),
        ))
    }
}

impl GoogleConnector {
    fn checkpoint(&self, started: SystemTime, full_read_at: SystemTime) -> String {
        Checkpoint::with_overlap(started, full_read_at, &self.fingerprint, REPORTS_OVERLAP).encode()
    }

    /// An incremental read from `since`, or `Err(reason)` when the activities cannot be
    /// read (the delegation lacks the Reports scope, the admin the Reports privilege).
    async fn read_delta(
        &self,
        now: SystemTime,
        since: &str,
        full_read_at: &str,
        sink: &mut dyn BatchSink,
    ) -> Result<Result<ReadSummary, &'static str>, ConnectorError> {
        let changes = match self.activities(since).await? {
            Ok(changes) => changes,
            Err(reason) => return Ok(Err(reason)),
        };
        tracing::info!(
            events = changes.events,
            users = changes.users.len(),
            groups = changes.groups.len(),
            users_deleted = changes.users_deleted,
            groups_deleted = changes.groups_deleted,
            "google: incremental read from admin activities"
        );
        self.read_changes(&changes, sink).await?;
        let full_read_at = checkpoint::parse_time(full_read_at).unwrap_or(now);
        Ok(Ok(ReadSummary::complete(
            ReadMode::Delta,
            Some(self.checkpoint(now, full_read_at)),
        )))
    }

    /// `check --connect`'s admin-log step: a closed Reports API is no failure (every run
    /// is then full), so the step passes and says what makes runs incremental.
    async fn diagnose_admin_log(&self) -> Diagnosis {
        const STEP: &str = "admin log";
        let query = [("maxResults", "1")];
        match self
            .page(Listing::Activities, &self.activities_url, &query, None)
            .await
        {
            Ok(_) => Diagnosis::ok(
                STEP,
                "the Reports API answers: runs between full reads are incremental",
            ),
            Err(ConnectorError::Http { source, .. }) if refuses_reports(&source) => Diagnosis::ok(
                STEP,
                format!(
                    "the Reports API is not open to this connector: every run reads in full \
                     (authorise client ID {} for {GOOGLE_SCOPE_REPORTS} in the domain-wide \
                     delegation, and give `subject` the Reports privilege)",
                    self.client_id
                ),
            ),
            Err(error) => Diagnosis::failed(STEP, error.to_string()),
        }
    }

    /// The admin activities from `since` on, every page.
    async fn activities(
        &self,
        since: &str,
    ) -> Result<Result<reports::Changes, &'static str>, ConnectorError> {
        let query = [("startTime", since), ("maxResults", "1000")];
        let mut changes = reports::Changes::default();
        let mut walk = TokenWalk::default();
        loop {
            match self
                .next_page(&mut walk, Listing::Activities, &self.activities_url, &query)
                .await
            {
                Ok(Some(items)) => items.iter().for_each(|a| changes.note(a)),
                Ok(None) => return Ok(Ok(changes)),
                Err(ConnectorError::Http { source, .. }) if refuses_reports(&source) => {
                    tracing::warn!(
                        error = %source,
                        "google: the Reports API is not open to this connector: authorise \
                         client ID {} for {GOOGLE_SCOPE_REPORTS} in the domain-wide delegation \
                         (and give `subject` the Reports privilege) to read changes \
                         incrementally; reading in full",
                        self.client_id
                    );
                    return Ok(Err("the Reports API is not open to this connector"));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads again what `changes` names: users by address, deleted users by listing
    /// them, groups by address, and every group's id when one was deleted.
    async fn read_changes(
        &self,
        changes: &reports::Changes,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let mut removed_users = Vec::new();
        let mut batch = Batcher::users();
        let mut seen = HashSet::new();
        let mut joined: Vec<(String, String)> = Vec::new();
        for address in &changes.users {
            let url = self.endpoint(&["users", address]);
            let Some(item) = self
                .get_one(Listing::Users, &url, &[("projection", "full")])
                .await?
            else {
                continue;
            };
            let id = str_field(&item, "id");
            let user = to_user(item, self.include_suspended, self.include_archived)
                .map_err(|reason| self.malformed(Listing::Users, &url, reason))?;
            match (user, id) {
                (Some(user), _) => {
                    if changes.rejoined.contains(address) {
                        for group in self.groups_of(&user.external_id).await? {
                            joined.push((group, user.external_id.clone()));
                        }
                    }
                    if seen.insert(user.external_id.clone()) {
                        batch.push(user, sink).await?;
                    }
                }
                // Suspended or archived, and left out by setting: as a full read would.
                (None, Some(id)) => removed_users.push(id),
                (None, None) => {}
            }
        }
        batch.finish(sink).await?;
        for (group, user) in joined {
            sink.accept(SourceBatch::MemberChanges {
                group,
                added: vec![MemberRef::user(user)],
                removed: Vec::new(),
            })
            .await?;
        }
        if changes.users_deleted {
            removed_users.extend(self.deleted_user_ids().await?);
        }
        let mut batch = Batcher::groups();
        for address in &changes.groups {
            let url = self.endpoint(&["groups", address]);
            let Some(group) = self.get_one(Listing::Groups, &url, &[]).await? else {
                continue;
            };
            let id = str_field(&group, "id").ok_or_else(|| {
                self.malformed(Listing::Groups, &url, "a group without `id`".into())
            })?;
            let members = self.members_of(&id).await?;
            batch.push(to_group(id, group, members), sink).await?;
        }
        batch.finish(sink).await?;
        if changes.groups_deleted {
            let ids = self.group_ids().await?;
            sink.accept(SourceBatch::Present {
                kind: MemberKind::Group,
                ids,
            })
            .await?;
        }
        if !removed_users.is_empty() {
            sink.accept(SourceBatch::Removed {
                users: removed_users,
                groups: Vec::new(),
            })
            .await?;
        }
        Ok(())
    }

    /// `users.get` or `groups.get`; `None` on 404 (deleted, or an old address).
    async fn get_one(
        &self,
        listing: Listing<'_>,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, ConnectorError> {
        match self.get(url, query).await {
            Ok(item) => Ok(Some(item)),
            Err(HttpError::Status { status: 404, .. }) => Ok(None),
            Err(source) => Err(self.fail(listing, source)),
        }
    }

    /// The direct members of group `id` that are users or groups. Which of them are
    /// synced is the mirror's to say: it drops members it does not hold.
    async fn members_of(&self, id: &str) -> Result<Vec<MemberRef>, ConnectorError> {
        let url = self.endpoint(&["groups", id, "members"]);
        let max = self.groups_page_size.to_string();
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        self.for_each_page(
            Listing::Members(id),
            &url,
            &[("maxResults", &max)],
            |items| {
                for item in items {
                    if let Some(member) = any_member(&item)
                        && seen.insert(member.clone())
                    {
                        members.push(member);
                    }
                }
                Ok(())
            },
        )
        .await?;
        Ok(members)
    }

    /// The ids of the groups user `id` is a direct member of (`groups.list?userKey=`).
    async fn groups_of(&self, id: &str) -> Result<Vec<String>, ConnectorError> {
        let max = self.groups_page_size.to_string();
        let query = [("userKey", id), ("maxResults", max.as_str())];
        self.ids(Listing::Groups, &query).await
    }

    /// The ids of the users deleted lately (`users.list?showDeleted=true`).
    async fn deleted_user_ids(&self) -> Result<Vec<String>, ConnectorError> {
        let (scope_key, scope_value) = self.directory.query();
        let max = self.users_page_size.to_string();
        let query = [
            (scope_key, scope_value),
            ("maxResults", max.as_str()),
            ("showDeleted", "true"),
        ];
        self.ids(Listing::Users, &query).await
    }

    /// The id of every group (`groups.list`), so that the mirror drops deleted ones.
    async fn group_ids(&self) -> Result<Vec<String>, ConnectorError> {
        let (scope_key, scope_value) = self.directory.query();
        let max = self.groups_page_size.to_string();
        let query = [(scope_key, scope_value), ("maxResults", max.as_str())];
        self.ids(Listing::Groups, &query).await
    }

    /// The `id` of every item of the users or groups listing asked with `query`.
    async fn ids(
        &self,
        listing: Listing<'_>,
        query: &[(&str, &str)],
    ) -> Result<Vec<String>, ConnectorError> {
        let url = self.endpoint(&[listing.items_key()]);
        let mut ids = Vec::new();
        self.for_each_page(listing, &url, query, |items| {
            ids.extend(items.iter().filter_map(|item| str_field(item, "id")));
            Ok(())
        })
        .await?;
        Ok(ids)
    }
}

/// Whether `error` says the Reports API is closed to this connector (a token refused for
/// its scope, or a 403), rather than that something failed on the way.
fn refuses_reports(error: &HttpError) -> bool {
    match error {
        HttpError::Auth { code, .. } => code == "unauthorized_client" || code == "invalid_scope",
        HttpError::Status { status: 403, .. } => true,
        _ => false,
    }
}

/// Members that are not synced, by why.
#[derive(Default)]
struct LeftOut {
    /// `type: USER` not among the users read: accounts outside the directory (external
    /// members), or users left out by `include_suspended`/`include_archived`.
    users: usize,
    /// `type: GROUP` not among the groups read (a group of another account).
    groups: usize,
    /// `type: CUSTOMER`: "every user of the account".
    customer: usize,
    /// Any other `type`, or no id.
    other: usize,
}

impl LeftOut {
    fn log(&self) {
        if self.users + self.groups + self.customer + self.other > 0 {
            tracing::info!(
                external_or_unsynced_users = self.users,
                external_groups = self.groups,
                customer_entries = self.customer,
                other = self.other,
                "group members outside the users and groups read were left out"
            );
        }
    }
}

#[async_trait]
impl ListingProbe for GoogleConnector {
    async fn probe_listing(&self, listing: ProbeListing<'_>) -> Result<Option<String>, Diagnosis> {
        let (ours, url) = match listing {
            ProbeListing::Users => (Listing::Users, self.endpoint(&["users"])),
            ProbeListing::Groups => (Listing::Groups, self.endpoint(&["groups"])),
            ProbeListing::Members(id) => (
                Listing::Members(id),
                self.endpoint(&["groups", id, "members"]),
            ),
        };
        match self.probe(ours, &url).await {
            Ok(first) => Ok(first.as_ref().and_then(|g| str_field(g, "id"))),
            Err(detail) => Err(Diagnosis::failed(listing.check(), detail)),
        }
    }

    fn no_group_note(&self) -> Option<&'static str> {
        Some("no group to try it on")
    }
}
