//! The `google` connector: a full read of a Google Workspace account through the Admin SDK
//! Directory API (`admin/directory/v1`), as a service account with domain-wide delegation.
//! See docs/connectors-google.md for what each step relies on.
//!
//! * Auth: a signed RS256 assertion (`iss` = the key's `client_email`, `sub` = the admin
//!   `subject`, `scope`, `aud` = the token URL, one hour) exchanged for an access token with
//!   the JWT-bearer grant ([`JwtBearerGrant`]); `Bearer` on every call.
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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::http::{
    AuthScheme, HttpClient, HttpError, HttpOptions, JwtBearerClaims, JwtBearerGrant, TokenSource,
    google_next_page_token, origin,
};
use super::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary, SourceBatch,
};
use crate::config::{GoogleDirectoryScope, GoogleSettings};
use crate::model::{Email, MemberRef, SourceGroup, SourceUser, json_kind};

/// The most users one batch carries.
pub const USER_BATCH_SIZE: usize = 1000;

/// The most groups one batch carries (each with its whole member list).
pub const GROUP_BATCH_SIZE: usize = 100;

/// `errors[].reason` values of the quota errors worth retrying
/// (<https://developers.google.com/admin-sdk/directory/v1/limits>).
const RATE_LIMIT_REASONS: [&str; 3] = [
    "userRateLimitExceeded",
    "rateLimitExceeded",
    "quotaExceeded",
];

const KIND: &str = "google";

/// Which listing a request belongs to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing<'a> {
    Users,
    Groups,
    Members(&'a str),
}

impl Listing<'_> {
    fn action(&self) -> String {
        match self {
            Listing::Users => "listing users".to_string(),
            Listing::Groups => "listing groups".to_string(),
            Listing::Members(group) => format!("listing the members of group {group}"),
        }
    }

    /// The read-only scope the listing needs.
    fn scope(&self) -> &'static str {
        match self {
            Listing::Users => crate::config::GOOGLE_SCOPE_USERS,
            Listing::Groups | Listing::Members(_) => crate::config::GOOGLE_SCOPE_GROUPS,
        }
    }

    /// The admin-role privilege the listing needs.
    fn privilege(&self) -> &'static str {
        match self {
            Listing::Users => "Users › Read",
            Listing::Groups | Listing::Members(_) => "Groups › Read",
        }
    }

    /// The JSON key holding the page's items.
    fn items_key(&self) -> &'static str {
        match self {
            Listing::Users => "users",
            Listing::Groups => "groups",
            Listing::Members(_) => "members",
        }
    }
}

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
    /// Configured plain-http URLs (`allow_insecure_http`), warned about on every read.
    plain_http: Vec<String>,
}

impl GoogleConnector {
    /// Builds the connector (HTTP client and token source) from its settings.
    pub fn new(settings: &GoogleSettings) -> Result<GoogleConnector, ConnectorError> {
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            metrics_label: "google",
            ..HttpOptions::default()
        };
        GoogleConnector::with_options(settings, options)
    }

    /// Builds the connector with explicit HTTP options (tests shorten the backoff).
    pub fn with_options(
        settings: &GoogleSettings,
        options: HttpOptions,
    ) -> Result<GoogleConnector, ConnectorError> {
        let fail = |source: HttpError| ConnectorError::Http {
            kind: KIND,
            what: "setting up the HTTP client".to_string(),
            source,
        };
        let retry_time = options.max_retry_time;
        // Credentials go only to the API root's origin and the token endpoint; both must be
        // https unless allow_insecure_http (loopback only).
        let http = HttpClient::new(options)
            .and_then(|http| {
                http.pinned_to(
                    &[(settings.api_base_url.as_str(), "google.api_base_url")],
                    settings.allow_insecure_http,
                )
            })
            .map_err(fail)?;
        origin::configured_origin(
            &settings.token_url,
            "google.token_url",
            settings.allow_insecure_http,
        )
        .map_err(fail)?;
        let token = JwtBearerGrant::new(
            http.reqwest_client(),
            &settings.token_url,
            JwtBearerClaims {
                issuer: settings.key.client_email.clone(),
                subject: Some(settings.subject.clone()),
                scopes: settings.scopes.clone(),
                audience: None,
            },
            &settings.key.private_key,
            settings.key.private_key_id.clone(),
        )
        .map_err(fail)?;
        let token = Arc::new(token);
        let http = http.with_auth(token.clone(), AuthScheme::Bearer);
        Ok(GoogleConnector {
            http,
            token,
            api: format!(
                "{}/admin/directory/v1",
                settings.api_base_url.trim_end_matches('/')
            ),
            directory: settings.directory.clone(),
            users_page_size: settings.page_size,
            groups_page_size: settings.groups_page_size(),
            include_suspended: settings.include_suspended,
            include_archived: settings.include_archived,
            scopes: settings.scopes.clone(),
            subject: settings.subject.clone(),
            client_email: settings.key.client_email.clone(),
            client_id: settings
                .key
                .client_id
                .clone()
                .unwrap_or_else(|| settings.key.client_email.clone()),
            project_id: settings.key.project_id.clone(),
            retry_time,
            plain_http: origin::plain_http_urls(&[&settings.api_base_url, &settings.token_url]),
        })
    }

    /// `{api}/seg1/seg2...`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> String {
        match url::Url::parse(&self.api) {
            Ok(mut url) => {
                if let Ok(mut path) = url.path_segments_mut() {
                    path.pop_if_empty().extend(segments);
                }
                url.to_string()
            }
            Err(_) => format!("{}/{}", self.api, segments.join("/")),
        }
    }

    /// GETs one page (`maxResults`, `pageToken` added), retrying 403 quota answers, and
    /// returns its items (a missing array is an empty page) and its `nextPageToken`.
    async fn page(
        &self,
        listing: Listing<'_>,
        url: &str,
        query: &[(&str, &str)],
        page_token: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
        let mut query = query.to_vec();
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        let body = self
            .get(url, &query)
            .await
            .map_err(|source| self.fail(listing, source))?;
        let decode = |reason: String| {
            self.fail(
                listing,
                HttpError::Decode {
                    url_path: url.to_string(),
                    reason,
                },
            )
        };
        let next = google_next_page_token(&body);
        let Value::Object(mut map) = body else {
            return Err(decode(format!(
                "expected a JSON object, got {}",
                json_kind(&body)
            )));
        };
        let items = match map.remove(listing.items_key()) {
            // An empty page omits the array (observed, not documented).
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(decode(format!(
                    "`{}` is {}, not an array",
                    listing.items_key(),
                    json_kind(&other)
                )));
            }
        };
        Ok((items, next))
    }

    /// `get_json`, plus retries of the 403s Google uses for quotas (`userRateLimitExceeded`,
    /// `quotaExceeded`), which the shared client does not retry: a 403 is usually final.
    async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<Value, HttpError> {
        let started = Instant::now();
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            match self.http.get_json(url, query).await {
                Ok((body, _)) => return Ok(body),
                Err(HttpError::Status {
                    status: 403,
                    body_excerpt,
                    url_path,
                }) if is_rate_limited(&body_excerpt) => {
                    let delay = self.http.options().retry.backoff(attempts);
                    if started.elapsed() + delay > self.retry_time {
                        return Err(HttpError::Throttled {
                            url_path,
                            attempts,
                            last_status: 403,
                        });
                    }
                    tracing::warn!(
                        url = %url_path,
                        attempt = attempts,
                        status = 403,
                        delay_ms = delay.as_millis() as u64,
                        "quota exceeded; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// The error for a failed request, with what to fix when the answer says it.
    fn fail(&self, listing: Listing<'_>, source: HttpError) -> ConnectorError {
        let action = match &source {
            HttpError::Auth { .. } => format!("getting an access token for {}", listing.action()),
            _ => listing.action(),
        };
        let what = match self.hint(listing, &source) {
            Some(hint) => format!("{action} ({hint})"),
            None => action,
        };
        ConnectorError::Http {
            kind: KIND,
            what,
            source,
        }
    }

    /// What the operator should do about `error`, when it is clear.
    fn hint(&self, listing: Listing<'_>, error: &HttpError) -> Option<String> {
        match error {
            HttpError::Auth { code, .. } if code == "unauthorized_client" => Some(format!(
                "domain-wide delegation is not granted for these scopes: in the Google Admin \
                 console (Security › Access and data control › API controls › Domain-wide \
                 delegation) authorise client ID {} for {}",
                self.client_id,
                self.scopes.join(",")
            )),
            HttpError::Auth {
                code, description, ..
            } if code == "invalid_grant" => Some(
                if description.contains("Invalid email") || description.contains("User ID") {
                    format!(
                        "`subject` {} is not a user of the Workspace account: give an admin's \
                     primary email",
                        self.subject
                    )
                } else {
                    "the token endpoint refused the assertion: check this machine's clock (it must \
                 be within minutes of Google's), that the key is not deleted or disabled, and \
                 `subject`"
                        .to_string()
                },
            ),
            HttpError::Status {
                status: 403,
                body_excerpt,
                ..
            } => {
                let reasons = error_reasons(body_excerpt);
                Some(
                    if reasons
                        .iter()
                        .any(|r| r == "insufficientPermissions" || r == "insufficient_scope")
                    {
                        format!(
                            "the access token lacks the scope {}: add it to `scopes` in [google] \
                             and to the domain-wide delegation of client ID {}",
                            listing.scope(),
                            self.client_id
                        )
                    } else {
                        format!(
                            "forbidden: the admin `subject` {} needs an admin role with the {} \
                             privilege, the token the scope {}, and the Admin SDK API must be \
                             enabled in Google Cloud project {}",
                            self.subject,
                            listing.privilege(),
                            listing.scope(),
                            self.project_id
                                .as_deref()
                                .unwrap_or("of the service account")
                        )
                    },
                )
            }
            HttpError::Status { status: 400, .. }
                if matches!(listing, Listing::Users | Listing::Groups) =>
            {
                let (name, value) = self.directory.query();
                Some(format!(
                    "the API refused the request: check `{name}` = `{value}` in [google]"
                ))
            }
            HttpError::Status { status: 404, .. } if matches!(listing, Listing::Members(_)) => {
                Some(
                    "the group disappeared during the read; the next run reads the directory \
                     again"
                        .to_string(),
                )
            }
            HttpError::Status { status: 401, .. } => Some(
                "the API refused a freshly issued token: check `subject` and the key".to_string(),
            ),
            _ => None,
        }
    }

    /// Every page of `listing`, handed to `on_page` as it arrives.
    async fn for_each_page(
        &self,
        listing: Listing<'_>,
        url: &str,
        query: &[(&str, &str)],
        mut on_page: impl FnMut(Vec<Value>) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let mut tokens = PageTokens::default();
        let mut token: Option<String> = None;
        loop {
            let (items, next) = self.page(listing, url, query, token.as_deref()).await?;
            on_page(items)?;
            match next {
                Some(next) => {
                    tokens.check(&next).map_err(|reason| {
                        self.fail(
                            listing,
                            HttpError::Decode {
                                url_path: url.to_string(),
                                reason,
                            },
                        )
                    })?;
                    token = Some(next);
                }
                None => return Ok(()),
            }
        }
    }

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
        let mut batch: Vec<SourceUser> = Vec::new();
        let mut tokens = PageTokens::default();
        let mut token: Option<String> = None;
        let mut left_out = 0usize;
        // Not for_each_page: batches reach the (async) sink as pages arrive.
        loop {
            let (items, next) = self
                .page(Listing::Users, &url, &query, token.as_deref())
                .await?;
            for item in items {
                let user = to_user(item, self.include_suspended, self.include_archived)
                    .map_err(|reason| self.malformed(Listing::Users, &url, reason))?;
                match user {
                    Some(user) => {
                        if seen.insert(user.external_id.clone()) {
                            batch.push(user);
                        }
                    }
                    None => left_out += 1,
                }
                if batch.len() >= USER_BATCH_SIZE {
                    sink.accept(SourceBatch::Users(std::mem::take(&mut batch)))
                        .await?;
                }
            }
            match next {
                Some(next) => {
                    tokens
                        .check(&next)
                        .map_err(|reason| self.malformed(Listing::Users, &url, reason))?;
                    token = Some(next);
                }
                None => break,
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Users(batch)).await?;
        }
        if left_out > 0 {
            tracing::info!(
                left_out,
                "suspended or archived users left out (include_suspended / include_archived)"
            );
        }
        Ok(seen)
    }

    fn malformed(&self, listing: Listing<'_>, url: &str, reason: String) -> ConnectorError {
        self.fail(
            listing,
            HttpError::Decode {
                url_path: url.to_string(),
                reason,
            },
        )
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
        let mut batch: Vec<SourceGroup> = Vec::new();
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
            batch.push(to_group(id, group, members));
            if batch.len() >= GROUP_BATCH_SIZE {
                sink.accept(SourceBatch::Groups(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        if !batch.is_empty() {
            sink.accept(SourceBatch::Groups(batch)).await?;
        }
        left_out.log();
        Ok(())
    }

    /// A `maxResults=1` read for `idsync check --connect`; returns the first item.
    async fn probe(&self, listing: Listing<'_>, url: &str) -> Result<Option<Value>, String> {
        let (scope_key, scope_value) = self.directory.query();
        let mut query = vec![("maxResults", "1")];
        if !matches!(listing, Listing::Members(_)) {
            query.insert(0, (scope_key, scope_value));
        }
        match self.page(listing, url, &query, None).await {
            Ok((items, _)) => Ok(items.into_iter().next()),
            Err(ConnectorError::Http { source, .. }) => Err(self.detail(listing, &source)),
            Err(other) => Err(other.to_string()),
        }
    }

    fn detail(&self, listing: Listing<'_>, error: &HttpError) -> String {
        match self.hint(listing, error) {
            Some(hint) => format!("{hint} ({error})"),
            None => error.to_string(),
        }
    }
}

#[async_trait]
impl PullConnector for GoogleConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A token, then `maxResults=1` reads of users, groups and one group's members.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        let mut checks = Vec::new();
        match self.token.token(true).await {
            Ok(_) => checks.push(Diagnosis::ok(
                "token",
                format!(
                    "issued to {} acting as {} for {}",
                    self.client_email,
                    self.subject,
                    self.scopes.join(" ")
                ),
            )),
            Err(error) => {
                checks.push(Diagnosis::failed(
                    "token",
                    self.detail(Listing::Users, &error),
                ));
                return checks;
            }
        }
        let users = self.endpoint(&["users"]);
        if let Err(detail) = self.probe(Listing::Users, &users).await {
            checks.push(Diagnosis::failed("list users", detail));
            return checks;
        }
        checks.push(Diagnosis::ok("list users", "permitted"));
        let groups = self.endpoint(&["groups"]);
        let first = match self.probe(Listing::Groups, &groups).await {
            Ok(first) => first,
            Err(detail) => {
                checks.push(Diagnosis::failed("list groups", detail));
                return checks;
            }
        };
        checks.push(Diagnosis::ok("list groups", "permitted"));
        match first.as_ref().and_then(|g| str_field(g, "id")) {
            Some(id) => {
                let url = self.endpoint(&["groups", &id, "members"]);
                match self.probe(Listing::Members(&id), &url).await {
                    Ok(_) => checks.push(Diagnosis::ok("list group members", "permitted")),
                    Err(detail) => checks.push(Diagnosis::failed("list group members", detail)),
                }
            }
            None => checks.push(Diagnosis::ok("list group members", "no group to try it on")),
        }
        checks
    }

    /// A full read of the account; the checkpoint is ignored (there is no delta).
    async fn read(
        &self,
        _checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        origin::warn_plain_http(KIND, &self.plain_http);
        let user_ids = self.read_users(sink).await?;
        self.read_groups(&user_ids, sink).await?;
        Ok(ReadSummary {
            mode: ReadMode::Full,
            complete: true,
            next_checkpoint: None,
        })
    }
}

/// Page tokens seen in one listing: a token handed out twice would loop forever.
#[derive(Default)]
struct PageTokens(HashSet<String>);

impl PageTokens {
    fn check(&mut self, token: &str) -> Result<(), String> {
        if self.0.insert(token.to_string()) {
            Ok(())
        } else {
            Err(
                "the server handed out the same nextPageToken twice; the listing would \
                 never end"
                    .to_string(),
            )
        }
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

/// Whether a 403's body names a quota reason (the excerpt may be cut, so it is scanned).
fn is_rate_limited(body: &str) -> bool {
    error_reasons(body)
        .iter()
        .any(|r| RATE_LIMIT_REASONS.contains(&r.as_str()))
}

/// The `"reason"` values in a Google error body, read even from a truncated excerpt.
fn error_reasons(body: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("\"reason\"") {
        rest = &rest[at + "\"reason\"".len()..];
        let value = rest.trim_start();
        let Some(value) = value.strip_prefix(':') else {
            continue;
        };
        let Some(value) = value.trim_start().strip_prefix('"') else {
            continue;
        };
        // An excerpt may end inside the value: take what is there.
        let end = value.find('"').unwrap_or(value.len());
        reasons.push(value[..end].trim_end_matches('…').to_string());
    }
    reasons
}

fn str_field(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn bool_field(value: &Value, key: &str) -> bool {
    match value.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Maps one `users.list` item. `Ok(None)`: left out (suspended or archived by setting, or
/// deleted); `Err`: the item is unusable, which fails the read.
fn to_user(
    value: Value,
    include_suspended: bool,
    include_archived: bool,
) -> Result<Option<SourceUser>, String> {
    let external_id = str_field(&value, "id").ok_or("a user without `id`")?;
    let user_name = str_field(&value, "primaryEmail")
        .ok_or_else(|| format!("user {external_id} has no `primaryEmail`"))?;
    let suspended = bool_field(&value, "suspended");
    let archived = bool_field(&value, "archived");
    if value.get("deletionTime").is_some_and(|t| !t.is_null())
        || (suspended && !include_suspended)
        || (archived && !include_archived)
    {
        return Ok(None);
    }
    let name = value.get("name").cloned().unwrap_or(Value::Null);
    let given_name = str_field(&name, "givenName");
    let family_name = str_field(&name, "familyName");
    let display_name = str_field(&name, "fullName").or_else(|| match (&given_name, &family_name) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        _ => None,
    });
    let mut emails = vec![Email {
        value: user_name.clone(),
        kind: None,
        primary: true,
    }];
    if let Some(Value::Array(items)) = value.get("emails") {
        for item in items {
            let Some(address) = str_field(item, "address") else {
                continue;
            };
            if emails
                .iter()
                .any(|e| e.value.eq_ignore_ascii_case(&address))
            {
                continue;
            }
            let kind = match str_field(item, "type").as_deref() {
                Some("custom") => str_field(item, "customType"),
                other => other.map(str::to_string),
            };
            emails.push(Email {
                value: address,
                kind,
                primary: false,
            });
        }
    }
    let attributes = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(Some(SourceUser {
        external_id,
        user_name,
        given_name,
        family_name,
        display_name,
        emails,
        active: !suspended && !archived,
        attributes,
    }))
}

/// Maps one `members.list` item to a member of this read, or counts why it is left out.
fn to_member(
    item: &Value,
    user_ids: &HashSet<String>,
    group_ids: &HashSet<String>,
    left_out: &mut LeftOut,
) -> Option<MemberRef> {
    let id = str_field(item, "id");
    match (str_field(item, "type").as_deref(), id) {
        (Some("USER"), Some(id)) if user_ids.contains(&id) => Some(MemberRef::user(id)),
        (Some("GROUP"), Some(id)) if group_ids.contains(&id) => Some(MemberRef::group(id)),
        (Some("USER"), _) => {
            left_out.users += 1;
            None
        }
        (Some("GROUP"), _) => {
            left_out.groups += 1;
            None
        }
        (Some("CUSTOMER"), _) => {
            left_out.customer += 1;
            None
        }
        _ => {
            left_out.other += 1;
            None
        }
    }
}

fn to_group(id: String, value: Value, members: Vec<MemberRef>) -> SourceGroup {
    let display_name = str_field(&value, "name")
        .or_else(|| str_field(&value, "email"))
        .unwrap_or_else(|| id.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_map_names_emails_and_state() {
        let user = to_user(
            json!({"id": "104", "primaryEmail": "alice@example.com",
                "name": {"givenName": "Alice", "familyName": "Smith", "fullName": "Alice Smith"},
                "emails": [{"address": "alice@example.com", "primary": true},
                           {"address": "a.smith@example.com", "type": "work"},
                           {"address": "al@example.org", "type": "custom", "customType": "legacy"}],
                "suspended": false, "archived": false, "orgUnitPath": "/Eng"}),
            true,
            true,
        )
        .expect("valid")
        .expect("kept");
        assert_eq!(user.external_id, "104");
        assert_eq!(user.user_name, "alice@example.com");
        assert_eq!(user.display_name.as_deref(), Some("Alice Smith"));
        assert_eq!(user.given_name.as_deref(), Some("Alice"));
        assert!(user.active);
        let emails: Vec<(&str, Option<&str>, bool)> = user
            .emails
            .iter()
            .map(|e| (e.value.as_str(), e.kind.as_deref(), e.primary))
            .collect();
        assert_eq!(
            emails,
            [
                ("alice@example.com", None, true),
                ("a.smith@example.com", Some("work"), false),
                ("al@example.org", Some("legacy"), false)
            ]
        );
        assert_eq!(user.attributes["orgUnitPath"], "/Eng");

        let suspended = json!({"id": "2", "primaryEmail": "b@example.com", "suspended": true});
        let archived = json!({"id": "3", "primaryEmail": "c@example.com", "archived": true});
        let user = to_user(suspended.clone(), true, true).unwrap().unwrap();
        assert!(!user.active);
        assert_eq!(user.display_name, None);
        assert!(to_user(suspended, false, true).unwrap().is_none());
        assert!(
            !to_user(archived.clone(), true, true)
                .unwrap()
                .unwrap()
                .active
        );
        assert!(to_user(archived, true, false).unwrap().is_none());
        let deleted = json!({"id": "4", "primaryEmail": "d@example.com",
            "deletionTime": "2024-05-01T12:00:00.000Z"});
        assert!(to_user(deleted, true, true).unwrap().is_none());
        assert_eq!(
            to_user(json!({"primaryEmail": "x@example.com"}), true, true).unwrap_err(),
            "a user without `id`"
        );
        assert_eq!(
            to_user(json!({"id": "9"}), true, true).unwrap_err(),
            "user 9 has no `primaryEmail`"
        );
    }

    #[test]
    fn members_keep_users_and_groups_of_the_read() {
        let users: HashSet<String> = ["u1".to_string()].into();
        let groups: HashSet<String> = ["g1".to_string()].into();
        let mut left = LeftOut::default();
        let items = [
            json!({"id": "u1", "email": "a@example.com", "type": "USER", "role": "OWNER"}),
            json!({"id": "g1", "email": "eng@example.com", "type": "GROUP"}),
            json!({"id": "C01abcd23", "type": "CUSTOMER"}),
            json!({"id": "1122", "email": "partner@gmail.com", "type": "USER"}),
            json!({"id": "g9", "email": "other@elsewhere.com", "type": "GROUP"}),
            json!({"email": "x@example.com", "type": "EXTERNAL"}),
        ];
        let kept: Vec<MemberRef> = items
            .iter()
            .filter_map(|i| to_member(i, &users, &groups, &mut left))
            .collect();
        assert_eq!(kept, [MemberRef::user("u1"), MemberRef::group("g1")]);
        assert_eq!(
            (left.users, left.groups, left.customer, left.other),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn groups_map_name_and_description() {
        let g = to_group(
            "03ep".into(),
            json!({"id": "03ep", "email": "eng@example.com", "name": "Engineering",
                "description": "", "directMembersCount": "12"}),
            vec![],
        );
        assert_eq!(g.display_name, "Engineering");
        assert_eq!(g.description, None);
        assert_eq!(g.attributes["directMembersCount"], "12");
        let g = to_group("x".into(), json!({"email": "x@example.com"}), vec![]);
        assert_eq!(g.display_name, "x@example.com");
    }

    #[test]
    fn quota_reasons_are_found_even_in_cut_bodies() {
        let body = r#"{"error": {"code": 403, "message": "Quota exceeded", "errors": [{"message": "Quota exceeded", "domain": "usageLimits", "reason" : "userRateLimitExceeded"}]}}"#;
        assert!(is_rate_limited(body));
        assert!(is_rate_limited(&body[..body.len() - 5]));
        assert!(!is_rate_limited(&format!("{}…", &body[..body.len() - 10])));
        let forbidden = r#"{"error":{"code":403,"message":"Not Authorized to access this resource/api","errors":[{"message":"Not Authorized to access this resource/api","domain":"global","reason":"forbidden"}]}}"#;
        assert!(!is_rate_limited(forbidden));
        assert_eq!(error_reasons(forbidden), ["forbidden"]);
        assert!(error_reasons("not json").is_empty());
        let mut tokens = PageTokens::default();
        assert!(tokens.check("a").is_ok());
        assert!(tokens.check("b").is_ok());
        assert!(tokens.check("a").is_err());
    }
}
