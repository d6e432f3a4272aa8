//! The `keycloak` connector: a full read of one realm through the Keycloak Admin REST API.
//!
//! * Auth: OAuth client credentials on the realm's token endpoint, `Bearer` on every call.
//! * Users: `GET /admin/realms/{realm}/users?first&max&briefRepresentation=false`, paged
//!   until a short (or empty) page. Service accounts (`serviceAccountClientLink` /
//!   `serviceAccountClientId`, or a `service-account-` user name) are skipped.
//! * Groups: top-level `GET /groups?first&max&briefRepresentation=false`; subgroups come
//!   from the inline `subGroups` array (Keycloak < 23) or, when that is empty and
//!   `subGroupCount > 0`, from `GET /groups/{id}/children` (paged). A subgroup is a
//!   member (of type group) of its parent.
//! * Members: `GET /groups/{id}/members?first&max&briefRepresentation=true`, paged with
//!   the configured page size (`max` is always sent: server defaults are 100 / 10).
//! * Incremental reads: where the realm saves admin events (and `admin_events` is on),
//!   reads between full ones list the events since the last read and read again only
//!   the users and groups they name ([`events`]). A full read runs first, every
//!   `full_sync_every`, and whenever the events cannot be read (events off, no
//!   `view-events` role, a server that does not take times in `dateFrom`).
//!
//! Any HTTP error fails the read.

mod client;
mod events;
mod records;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use super::batch::Batcher;
use super::checkpoint::{self, Checkpoint, Plan};
use super::http::{Cursor, HttpClient, HttpError, Pages};
use super::probe::{ListingProbe, ProbeListing, token_then_listings};
use super::{BatchSink, ConnectorError, PullConnector, ReadMode, ReadSummary, SourceBatch};
use crate::model::{MemberKind, MemberRef};
use events::Changes;
use records::{is_service_account, to_group, to_user};
pub use settings::{
    KEYCLOAK_DEFAULT_FULL_SYNC_EVERY, KEYCLOAK_DEFAULT_PAGE_SIZE,
    KEYCLOAK_DEFAULT_REQUESTS_PER_SECOND, KEYCLOAK_MAX_PAGE_SIZE, KeycloakSettings,
    RawKeycloakSettings,
};

const KIND: &str = "keycloak";

/// Reads users and groups of one Keycloak realm.
#[derive(Debug, Clone)]
pub struct KeycloakConnector {
    http: HttpClient,
    /// `{base_url}/admin/realms/{realm}`, without a trailing slash.
    admin: String,
    page_size: u32,
    /// Incremental reads from admin events are allowed.
    admin_events: bool,
    full_sync_every: Duration,
    /// What a checkpoint must have been made with to be continued.
    fingerprint: String,
}

/// Whether the realm's admin events can be read, on the server's clock.
struct Feed {
    /// Empty when the events can be read; else why not.
    unusable: Option<&'static str>,
    /// The server's time (`Date`) when asked, else the local time.
    server_now: SystemTime,
}

impl KeycloakConnector {
    async fn read_users(&self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
        let mut seen = HashSet::new();
        let mut batch = Batcher::users();
        let mut pages = Pages::start(Cursor::Offset(0));
        // Not for_each_page: batches reach the (async) sink as pages arrive.
        while let Some(Cursor::Offset(first)) = pages.next_cursor() {
            let page = self
                .fetch_page(
                    "/users",
                    first,
                    &[("briefRepresentation", "false")],
                    "listing users",
                )
                .await?;
            let len = page.len();
            for item in page {
                let Some(user) = to_user(item) else { continue };
                if seen.insert(user.external_id.clone()) {
                    batch.push(user, sink).await?;
                }
            }
            pages.follow_offset(first, self.page_size, len);
        }
        batch.finish(sink).await?;
        Ok(())
    }

    /// Sends every group (with its members) and returns their ids.
    async fn read_groups(
        &self,
        sink: &mut dyn BatchSink,
    ) -> Result<HashSet<String>, ConnectorError> {
        let mut stack: Vec<Value> = Vec::new();
        self.for_each_page(
            "/groups",
            &[("briefRepresentation", "false")],
            "listing top-level groups",
            |page| stack.extend(page),
        )
        .await?;
        // Depth-first, in source order.
        stack.reverse();
        let mut seen = HashSet::new();
        let mut batch = Batcher::groups();
        while let Some(mut group) = stack.pop() {
            let Some(id) = group.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            let children = self.children(&id, &mut group).await?;
            let mut members = self.user_members(&id).await?;
            let mut child_ids = HashSet::new();
            for child in &children {
                if let Some(child_id) = child.get("id").and_then(Value::as_str)
                    && child_ids.insert(child_id.to_string())
                {
                    members.push(MemberRef::group(child_id));
                }
            }
            batch.push(to_group(id, group, members), sink).await?;
            stack.extend(children.into_iter().rev());
        }
        batch.finish(sink).await?;
        Ok(seen)
    }

    /// The group `id` as the source holds it now (record, subgroups and user members),
    /// or `None` when it is gone.
    async fn read_group(
        &self,
        id: &str,
    ) -> Result<Option<crate::model::SourceGroup>, ConnectorError> {
        let Some((mut group, _)) = self
            .fetch_one(&format!("/groups/{id}"), &format!("reading group {id}"))
            .await?
        else {
            return Ok(None);
        };
        let children = self.children(id, &mut group).await?;
        let mut members = self.user_members(id).await?;
        let mut child_ids = HashSet::new();
        for child in &children {
            if let Some(child_id) = child.get("id").and_then(Value::as_str)
                && child_ids.insert(child_id.to_string())
            {
                members.push(MemberRef::group(child_id));
            }
        }
        Ok(Some(to_group(id.to_string(), group, members)))
    }

    /// The ids of the groups user `id` is a direct member of (`GET /users/{id}/groups`).
    async fn groups_of(&self, id: &str) -> Result<Vec<String>, ConnectorError> {
        let mut groups = Vec::new();
        self.for_each_page(
            &format!("/users/{id}/groups"),
            &[("briefRepresentation", "true")],
            &format!("listing the groups of user {id}"),
            |page| {
                groups.extend(
                    page.iter()
                        .filter_map(|g| g.get("id").and_then(Value::as_str))
                        .map(str::to_string),
                );
            },
        )
        .await?;
        Ok(groups)
    }

    /// `check --connect`'s admin-events step: not saving them is no failure (every run
    /// is then full), so the step passes and says what makes runs incremental.
    async fn diagnose_admin_events(&self) -> super::Diagnosis {
        const STEP: &str = "admin events";
        match self.feed().await {
            Ok(Feed { unusable: None, .. }) => super::Diagnosis::ok(
                STEP,
                "the realm saves admin events: runs between full reads are incremental",
            ),
            Ok(Feed {
                unusable: Some(reason),
                ..
            }) => super::Diagnosis::ok(
                STEP,
                format!(
                    "{reason}: every run reads in full (turn on Save events under Realm \
                     settings › Events › Admin events settings, and give the service account \
                     the realm-management role view-events)"
                ),
            ),
            Err(error) => super::Diagnosis::failed(STEP, error.to_string()),
        }
    }

    /// Whether the realm saves admin events (`GET /events/config`, role `view-events`),
    /// and the server's time.
    async fn feed(&self) -> Result<Feed, ConnectorError> {
        let local = crate::clock::system_now();
        let answer = self
            .fetch_one("/events/config", "reading the realm's events settings")
            .await;
        let (unusable, server_now) = match answer {
            Ok(Some((config, headers))) => (
                (!events::admin_events_enabled(&config))
                    .then_some("the realm does not save admin events"),
                checkpoint::server_time(&headers).unwrap_or(local),
            ),
            Ok(None) => (Some("the server has no events settings"), local),
            Err(ConnectorError::Http {
                source: HttpError::Status { status: 403, .. },
                ..
            }) => {
                tracing::warn!(
                    "keycloak: reading the realm's events settings is forbidden: give the \
                     client's service account the realm-management role view-events to read \
                     changes incrementally; reading in full"
                );
                (
                    Some("the events settings are forbidden (view-events)"),
                    local,
                )
            }
            Err(error) => return Err(error),
        };
        Ok(Feed {
            unusable,
            server_now,
        })
    }

    /// The admin events from `since` (server clock) on, oldest first; `Err(reason)` when
    /// the server refuses the query (400: servers before 26.2 take only days in
    /// `dateFrom`; 403: no view-events).
    /// No `dateTo`: Keycloak 26.2.0 answers nothing to it (keycloak/keycloak#38911), and
    /// events dated after the read began are read again next time anyway.
    async fn changes(
        &self,
        since: SystemTime,
    ) -> Result<Result<Changes, &'static str>, ConnectorError> {
        let from = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .to_string();
        let mut query = vec![("dateFrom", from.as_str()), ("direction", "asc")];
        query.extend(events::RESOURCE_TYPES.map(|t| ("resourceTypes", t)));
        let mut changes = Changes::default();
        let mut pages = Pages::start(Cursor::Offset(0));
        while let Some(Cursor::Offset(first)) = pages.next_cursor() {
            let page = match self
                .fetch_page("/admin-events", first, &query, "listing admin events")
                .await
            {
                Ok(page) => page,
                Err(ConnectorError::Http {
                    source: HttpError::Status { status: 400, .. },
                    ..
                }) => {
                    return Ok(Err(
                        "the server does not take times in dateFrom (Keycloak before 26.2)",
                    ));
                }
                Err(ConnectorError::Http {
                    source: HttpError::Status { status: 403, .. },
                    ..
                }) => {
                    tracing::warn!(
                        "keycloak: listing admin events is forbidden: give the client's service \
                         account the realm-management role view-events; reading in full"
                    );
                    return Ok(Err("listing admin events is forbidden (view-events)"));
                }
                Err(error) => return Err(error),
            };
            let len = page.len();
            page.iter().for_each(|event| changes.note(event));
            pages.follow_offset(first, self.page_size, len);
        }
        Ok(Ok(changes))
    }

    /// Reads again what `changes` names: users by id, then groups by id (or every group
    /// when the tree changed, with their ids listed so deleted ones go).
    async fn read_changes(
        &self,
        changes: &Changes,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let mut removed_users = Vec::new();
        let mut batch = Batcher::users();
        let mut joined: Vec<(String, String)> = Vec::new();
        for id in &changes.users {
            match self
                .fetch_one(&format!("/users/{id}"), &format!("reading user {id}"))
                .await?
            {
                Some((user, _)) => {
                    if let Some(user) = to_user(user) {
                        if changes.created.contains(id) {
                            for group in self.groups_of(id).await? {
                                joined.push((group, id.clone()));
                            }
                        }
                        batch.push(user, sink).await?;
                    }
                }
                None => removed_users.push(id.clone()),
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
        let mut removed_groups = Vec::new();
        if changes.tree {
            let ids = self.read_groups(sink).await?;
            sink.accept(SourceBatch::Present {
                kind: MemberKind::Group,
                ids: ids.into_iter().collect(),
            })
            .await?;
        } else {
            let mut batch = Batcher::groups();
            for id in &changes.groups {
                match self.read_group(id).await? {
                    Some(group) => batch.push(group, sink).await?,
                    None => removed_groups.push(id.clone()),
                }
            }
            batch.finish(sink).await?;
        }
        if !removed_users.is_empty() || !removed_groups.is_empty() {
            sink.accept(SourceBatch::Removed {
                users: removed_users,
                groups: removed_groups,
            })
            .await?;
        }
        Ok(())
    }

    /// An incremental read from `since`, or `Err(reason)` when the events cannot be used.
    async fn read_delta(
        &self,
        feed: &Feed,
        since: &str,
        full_read_at: &str,
        sink: &mut dyn BatchSink,
    ) -> Result<Result<ReadSummary, &'static str>, ConnectorError> {
        if let Some(reason) = feed.unusable {
            return Ok(Err(reason));
        }
        let Some(since) = checkpoint::parse_time(since) else {
            return Ok(Err("the checkpoint is unusable"));
        };
        let changes = match self.changes(since).await? {
            Ok(changes) => changes,
            Err(reason) => return Ok(Err(reason)),
        };
        tracing::info!(
            events = changes.events,
            users = changes.users.len(),
            groups = changes.groups.len(),
            group_tree_changed = changes.tree,
            "keycloak: incremental read from admin events"
        );
        self.read_changes(&changes, sink).await?;
        let full_read_at = checkpoint::parse_time(full_read_at).unwrap_or(feed.server_now);
        Ok(Ok(ReadSummary::complete(
            ReadMode::Delta,
            Some(Checkpoint::new(feed.server_now, full_read_at, &self.fingerprint).encode()),
        )))
    }

    /// The direct subgroups of `group`: its inline `subGroups` (taken out of it), or
    /// `/children` when those are empty but `subGroupCount > 0`.
    async fn children(&self, id: &str, group: &mut Value) -> Result<Vec<Value>, ConnectorError> {
        let inline = match group.as_object_mut().and_then(|g| g.remove("subGroups")) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        if !inline.is_empty() {
            return Ok(inline);
        }
        let count = group
            .get("subGroupCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut children = Vec::new();
        self.for_each_page(
            &format!("/groups/{id}/children"),
            &[("briefRepresentation", "false")],
            &format!("listing the subgroups of group {id}"),
            |page| children.extend(page),
        )
        .await?;
        Ok(children)
    }

    /// The direct user members of group `id` (service accounts left out).
    async fn user_members(&self, id: &str) -> Result<Vec<MemberRef>, ConnectorError> {
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        self.for_each_page(
            &format!("/groups/{id}/members"),
            &[("briefRepresentation", "true")],
            &format!("listing the members of group {id}"),
            |page| {
                for user in page {
                    if is_service_account(&user) {
                        continue;
                    }
                    if let Some(user_id) = user.get("id").and_then(Value::as_str)
                        && seen.insert(user_id.to_string())
                    {
                        members.push(MemberRef::user(user_id));
                    }
                }
            },
        )
        .await?;
        Ok(members)
    }
}

#[async_trait]
impl PullConnector for KeycloakConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Token, then one item of each listing a run needs (a 403 names the role to grant),
    /// then whether runs between full reads can be incremental.
    async fn diagnose(&self) -> Vec<super::Diagnosis> {
        let (mut checks, passed) = token_then_listings(self, None).await;
        if passed && self.admin_events {
            checks.push(self.diagnose_admin_events().await);
        }
        checks
    }

    /// An incremental read from the admin events where the checkpoint and the realm allow
    /// it, else a full read of the realm.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.http.warn_plain_http(KIND);
        if !self.admin_events {
            self.read_users(sink).await?;
            self.read_groups(sink).await?;
            return Ok(ReadSummary::complete(ReadMode::Full, None));
        }
        let now = crate::clock::system_now();
        // Taken before any listing: a change made while they run is dated later, and so
        // read again next time.
        let feed = self.feed().await?;
        let reason =
            match checkpoint::plan(checkpoint, &self.fingerprint, now, self.full_sync_every) {
                Plan::Full { reason } => reason,
                Plan::Delta {
                    since,
                    full_read_at,
                } => match self.read_delta(&feed, &since, &full_read_at, sink).await? {
                    Ok(summary) => return Ok(summary),
                    Err(reason) => reason,
                },
            };
        tracing::info!(reason, "keycloak: full read");
        self.read_users(sink).await?;
        self.read_groups(sink).await?;
        let checkpoint = feed
            .unusable
            .is_none()
            .then(|| Checkpoint::new(feed.server_now, now, &self.fingerprint).encode());
        Ok(ReadSummary::complete(ReadMode::Full, checkpoint))
    }
}

#[async_trait]
impl ListingProbe for KeycloakConnector {
    async fn probe_listing(
        &self,
        listing: ProbeListing<'_>,
    ) -> Result<Option<String>, super::Diagnosis> {
        use super::Diagnosis;
        // One entry of what a sync asks for, with its representation.
        let (url, role, brief) = match listing {
            ProbeListing::Users => (format!("{}/users", self.admin), "view-users", "false"),
            ProbeListing::Groups => (
                format!("{}/groups", self.admin),
                "query-groups (or view-users)",
                "false",
            ),
            ProbeListing::Members(id) => (
                format!("{}/groups/{id}/members", self.admin),
                "view-users",
                "true",
            ),
        };
        let check = listing.check();
        let query = [("first", "0"), ("max", "1"), ("briefRepresentation", brief)];
        match self.http.get_json(&url, &query).await {
            Ok((body, _)) => Ok(body
                .get(0)
                .and_then(|g| g.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)),
            Err(error) => Err(match &error {
                // A refused token shows at the first listing; by the members step the
                // token has worked, so what fails there is reported as that step.
                HttpError::Auth { .. } | HttpError::Status { status: 401, .. }
                    if !matches!(listing, ProbeListing::Members(_)) =>
                {
                    Diagnosis::failed("authenticate", error.to_string())
                }
                HttpError::Status { status: 403, .. } => Diagnosis::failed(
                    check,
                    format!(
                        "forbidden: give the client's service account the realm-management \
                         role {role}"
                    ),
                ),
                _ => Diagnosis::failed(check, error.to_string()),
            }),
        }
    }
}
