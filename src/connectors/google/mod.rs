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
//! Every read is full: the Directory API has no delta for users, groups or members. Any
//! failed page (after retries), any 403, any malformed page or repeated page token fails
//! the whole read, so nothing is removed on the strength of a partial listing.

mod assertion;
mod client;
mod records;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::batch::Batcher;
use super::http::{HttpClient, JwtBearerGrant, TokenSource};
use super::probe::{ListingProbe, ProbeListing, token_then_listings};
use super::{BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary};
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

/// Reads users and groups of one Google Workspace account.
#[derive(Debug, Clone)]
pub struct GoogleConnector {
    http: HttpClient,
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
        token_then_listings(self, Some(("token", token))).await.0
    }

    /// A full read of the account; the checkpoint is ignored (there is no delta).
    async fn read(
        &self,
        _checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.http.warn_plain_http(KIND);
        let user_ids = self.read_users(sink).await?;
        self.read_groups(&user_ids, sink).await?;
        Ok(ReadSummary::complete(ReadMode::Full, None))
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
