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

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::http::{
    AuthScheme, ClientAuth, HttpClient, HttpError, HttpOptions, OAuthClientCredentials,
    keycloak_next_first, origin,
};
use super::{BatchSink, ConnectorError, PullConnector, ReadMode, ReadSummary, SourceBatch};
use crate::config::KeycloakSettings;
use crate::model::{Email, MemberRef, SourceGroup, SourceUser, json_kind};

#[cfg(test)]
mod tests;

/// The most users one batch carries.
pub const USER_BATCH_SIZE: usize = 1000;

/// The most groups one batch carries (each with its whole member list).
pub const GROUP_BATCH_SIZE: usize = 100;

const KIND: &str = "keycloak";

/// Reads users and groups of one Keycloak realm.
#[derive(Debug, Clone)]
pub struct KeycloakConnector {
    http: HttpClient,
    /// `{base_url}/admin/realms/{realm}`, without a trailing slash.
    admin: String,
    page_size: u32,
    /// Configured plain-http URLs (`allow_insecure_http`), warned about on every read.
    plain_http: Vec<String>,
}

impl KeycloakConnector {
    /// Builds the connector (HTTP client and token source) from its settings.
    pub fn new(settings: &KeycloakSettings) -> Result<KeycloakConnector, ConnectorError> {
        let fail = |source: HttpError| ConnectorError::Http {
            kind: KIND,
            what: "setting up the HTTP client".to_string(),
            source,
        };
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            metrics_label: KIND,
            ..HttpOptions::default()
        };
        // Credentials go only to the server's origin and the token endpoint; both must be
        // https unless allow_insecure_http (loopback only).
        let http = HttpClient::new(options)
            .and_then(|http| {
                http.pinned_to(
                    &[(settings.base_url.as_str(), "keycloak.base_url")],
                    settings.allow_insecure_http,
                )
            })
            .map_err(fail)?;
        origin::configured_origin(
            &settings.token_url,
            "keycloak.token_url",
            settings.allow_insecure_http,
        )
        .map_err(fail)?;
        let auth = match &settings.client_secret {
            Some(secret) => ClientAuth::Secret(secret.clone()),
            None => ClientAuth::Public,
        };
        let mut token = OAuthClientCredentials::new(
            http.reqwest_client(),
            &settings.token_url,
            settings.client_id.clone(),
            auth,
            None,
        )
        .map_err(fail)?;
        if let Some((username, password)) = &settings.password_grant {
            token = token.with_password_grant(username.clone(), password.clone());
        }
        let http = http.with_auth(Arc::new(token), AuthScheme::Bearer);
        let base = settings.base_url.trim_end_matches('/');
        Ok(KeycloakConnector {
            http,
            admin: format!("{base}/admin/realms/{}", settings.realm),
            page_size: settings.page_size.max(1),
            plain_http: origin::plain_http_urls(&[&settings.base_url, &settings.token_url]),
        })
    }

    /// GETs one page of `path` (relative to the admin root) at offset `first`, with an
    /// explicit `max`; the body must be a JSON array.
    async fn fetch_page(
        &self,
        path: &str,
        first: u32,
        extra: &[(&str, &str)],
        what: &str,
    ) -> Result<Vec<Value>, ConnectorError> {
        let url = format!("{}{path}", self.admin);
        let first_text = first.to_string();
        let max_text = self.page_size.to_string();
        let mut query: Vec<(&str, &str)> =
            vec![("first", first_text.as_str()), ("max", max_text.as_str())];
        query.extend_from_slice(extra);
        let fail = |source: HttpError| {
            // A 403 names the realm-management role to grant, as `check --connect` does.
            let what = match &source {
                HttpError::Status { status: 403, .. } => format!(
                    "{what} (forbidden: give the client's service account the realm-management \
                     role {})",
                    if path.starts_with("/users") {
                        "view-users"
                    } else {
                        "query-groups and view-users"
                    }
                ),
                _ => what.to_string(),
            };
            ConnectorError::Http {
                kind: KIND,
                what,
                source,
            }
        };
        let (body, _) = self.http.get_json(&url, &query).await.map_err(fail)?;
        match body {
            Value::Array(items) => Ok(items),
            other => Err(fail(HttpError::Decode {
                url_path: path.to_string(),
                reason: format!("expected a JSON array, got {}", json_kind(&other)),
            })),
        }
    }

    /// GETs every page of `path`, `first`/`max` paged; `on_page` receives each page.
    async fn for_each_page(
        &self,
        path: &str,
        extra: &[(&str, &str)],
        what: &str,
        mut on_page: impl FnMut(Vec<Value>),
    ) -> Result<(), ConnectorError> {
        let mut first: u32 = 0;
        loop {
            let page = self.fetch_page(path, first, extra, what).await?;
            let len = page.len();
            on_page(page);
            match keycloak_next_first(first, self.page_size, len) {
                Some(next) if len > 0 => first = next,
                _ => return Ok(()),
            }
        }
    }

    async fn read_users(&self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
        let mut seen = HashSet::new();
        let mut batch: Vec<SourceUser> = Vec::new();
        let mut first: u32 = 0;
        // Not for_each_page: batches reach the (async) sink as pages arrive.
        loop {
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
                    batch.push(user);
                }
                if batch.len() >= USER_BATCH_SIZE {
                    sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                        .await?;
                }
            }
            match keycloak_next_first(first, self.page_size, len) {
                Some(next) if len > 0 => first = next,
                _ => break,
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(batch)).await?;
        }
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
        let mut batch: Vec<SourceGroup> = Vec::new();
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
            batch.push(to_group(id, group, members));
            stack.extend(children.into_iter().rev());
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
        use super::Diagnosis;
        let mut checks = Vec::new();
        let steps: [(&'static str, String, &'static str); 2] = [
            ("list users", format!("{}/users", self.admin), "view-users"),
            (
                "list groups",
                format!("{}/groups", self.admin),
                "query-groups (or view-users)",
            ),
        ];
        let mut first_group = None;
        for (check, url, role) in steps {
            match self
                .http
                .get_json(&url, &[("first", "0"), ("max", "1")])
                .await
            {
                Ok((body, _)) => {
                    if check == "list groups" {
                        first_group = body
                            .get(0)
                            .and_then(|g| g.get("id"))
                            .and_then(Value::as_str)
                            .map(str::to_string);
                    }
                    checks.push(Diagnosis::ok(check, "permitted"));
                }
                Err(error) => {
                    let (check, detail) = match &error {
                        HttpError::Auth { .. } | HttpError::Status { status: 401, .. } => {
                            ("authenticate", error.to_string())
                        }
                        HttpError::Status { status: 403, .. } => (
                            check,
                            format!(
                                "forbidden: give the client's service account the \
                                 realm-management role {role}"
                            ),
                        ),
                        _ => (check, error.to_string()),
                    };
                    checks.push(Diagnosis::failed(check, detail));
                    return checks;
                }
            }
        }
        if let Some(id) = first_group {
            let url = format!("{}/groups/{id}/members", self.admin);
            match self.http.get_json(&url, &[("first", "0"), ("max", "1")]).await {
                Ok(_) => checks.push(Diagnosis::ok("list group members", "permitted")),
                Err(HttpError::Status { status: 403, .. }) => checks.push(Diagnosis::failed(
                    "list group members",
                    "forbidden: give the client's service account the realm-management role view-users",
                )),
                Err(e) => checks.push(Diagnosis::failed("list group members", e.to_string())),
            }
        }
        checks
    }

    /// A full read of the realm; the checkpoint is ignored.
    async fn read(
        &self,
        _checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        origin::warn_plain_http(KIND, &self.plain_http);
        self.read_users(sink).await?;
        self.read_groups(sink).await?;
        Ok(ReadSummary {
            mode: ReadMode::Full,
            complete: true,
            next_checkpoint: None,
        })
    }
}

fn str_field(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A service-account user: linked to a client, or named `service-account-...`.
fn is_service_account(user: &Value) -> bool {
    user.get("serviceAccountClientLink")
        .is_some_and(|v| !v.is_null())
        || user
            .get("serviceAccountClientId")
            .is_some_and(|v| !v.is_null())
        || user
            .get("username")
            .and_then(Value::as_str)
            .is_some_and(|name| name.starts_with("service-account-"))
}

/// Maps a full user representation; `None` for service accounts and users without
/// an id or user name.
fn to_user(value: Value) -> Option<SourceUser> {
    if is_service_account(&value) {
        return None;
    }
    let external_id = str_field(&value, "id")?;
    let user_name = str_field(&value, "username")?;
    let given_name = str_field(&value, "firstName");
    let family_name = str_field(&value, "lastName");
    let display_name = match (&given_name, &family_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        _ => None,
    };
    let emails = str_field(&value, "email")
        .map(|email| {
            vec![Email {
                value: email,
                kind: None,
                primary: true,
            }]
        })
        .unwrap_or_default();
    let active = value
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let attributes = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Some(SourceUser {
        external_id,
        user_name,
        given_name,
        family_name,
        display_name,
        emails,
        active,
        attributes,
    })
}

fn to_group(id: String, value: Value, members: Vec<MemberRef>) -> SourceGroup {
    let display_name = str_field(&value, "name").unwrap_or_else(|| id.clone());
    let description = str_field(&value, "description");
    let attributes = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    SourceGroup {
        external_id: id,
        display_name,
        description,
        members,
        attributes,
    }
}
