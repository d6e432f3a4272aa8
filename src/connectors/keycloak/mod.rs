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
//!
//! Every read is full and complete, with no checkpoint. Any HTTP error fails the read.

mod client;
mod records;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use async_trait::async_trait;
use serde_json::Value;

use super::batch::Batcher;
use super::http::{Cursor, HttpClient, HttpError, Pages};
use super::probe::{ListingProbe, ProbeListing, token_then_listings};
use super::{BatchSink, ConnectorError, PullConnector, ReadMode, ReadSummary};
use crate::model::MemberRef;
use records::{is_service_account, to_group, to_user};
pub use settings::{
    KEYCLOAK_DEFAULT_PAGE_SIZE, KEYCLOAK_DEFAULT_REQUESTS_PER_SECOND, KEYCLOAK_MAX_PAGE_SIZE,
    KeycloakSettings, RawKeycloakSettings,
};

const KIND: &str = "keycloak";

/// Reads users and groups of one Keycloak realm.
#[derive(Debug, Clone)]
pub struct KeycloakConnector {
    http: HttpClient,
    /// `{base_url}/admin/realms/{realm}`, without a trailing slash.
    admin: String,
    page_size: u32,
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

    async fn read_groups(&self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
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
        Ok(())
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

    /// Token, then one item of each listing a run needs; a 403 names the role to grant.
    async fn diagnose(&self) -> Vec<super::Diagnosis> {
        token_then_listings(self, None).await.0
    }

    /// A full read of the realm; the checkpoint is ignored.
    async fn read(
        &self,
        _checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.http.warn_plain_http(KIND);
        self.read_users(sink).await?;
        self.read_groups(sink).await?;
        Ok(ReadSummary::complete(ReadMode::Full, None))
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
