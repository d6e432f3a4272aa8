//! The Admin SDK Directory API client: the JWT-bearer token, `pageToken` paged listings
//! with a repeated-token check, quota answers retried, and the privilege or scope a 403
//! asks for.

use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::assertion::{JwtBearerClaims, ServiceAccountAssertion};
use super::*;
use crate::connectors::ConnectorError;
use crate::connectors::http::{
    AuthScheme, Cursor, HttpClient, HttpError, HttpOptions, JwtBearerGrant, Pages, next_page_token,
};
use crate::model::{content_hash, json_kind};

/// Which listing a request belongs to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing<'a> {
    Users,
    Groups,
    Members(&'a str),
    /// The Reports API's admin activities (incremental reads).
    Activities,
}

impl Listing<'_> {
    pub(super) fn action(&self) -> String {
        match self {
            Listing::Users => "listing users".to_string(),
            Listing::Groups => "listing groups".to_string(),
            Listing::Members(group) => format!("listing the members of group {group}"),
            Listing::Activities => "listing admin activities (Reports API)".to_string(),
        }
    }

    /// The read-only scope the listing needs.
    pub(super) fn scope(&self) -> &'static str {
        match self {
            Listing::Users => super::settings::GOOGLE_SCOPE_USERS,
            Listing::Groups | Listing::Members(_) => super::settings::GOOGLE_SCOPE_GROUPS,
            Listing::Activities => super::settings::GOOGLE_SCOPE_REPORTS,
        }
    }

    /// The admin-role privilege the listing needs.
    pub(super) fn privilege(&self) -> &'static str {
        match self {
            Listing::Users => "Users › Read",
            Listing::Groups | Listing::Members(_) => "Groups › Read",
            Listing::Activities => "Reports",
        }
    }

    /// The JSON key holding the page's items.
    pub(super) fn items_key(&self) -> &'static str {
        match self {
            Listing::Users => "users",
            Listing::Groups => "groups",
            Listing::Members(_) => "members",
            Listing::Activities => "items",
        }
    }
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
        let fail = ConnectorError::setting_up(KIND);
        let retry_time = options.max_retry_time;
        // Credentials go only to the API root's origin and the token endpoint; both must be
        // https unless allow_insecure_http (loopback only).
        let http = HttpClient::for_api(
            options,
            (&settings.api_base_url, "google.api_base_url"),
            Some((&settings.token_url, "google.token_url")),
            settings.allow_insecure_http,
        )
        .map_err(&fail)?;
        let assertion = ServiceAccountAssertion::new(
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
        .map_err(&fail)?;
        let token = JwtBearerGrant::new(
            http.reqwest_client(),
            &settings.token_url,
            assertion.into_fn(),
        )
        .map_err(&fail)?;
        // The Reports API's scope on a token of its own: a delegation that lacks it must
        // not stop the directory token (and full reads) from working.
        let reports_assertion = ServiceAccountAssertion::new(
            &settings.token_url,
            JwtBearerClaims {
                issuer: settings.key.client_email.clone(),
                subject: Some(settings.subject.clone()),
                scopes: vec![GOOGLE_SCOPE_REPORTS.to_string()],
                audience: None,
            },
            &settings.key.private_key,
            settings.key.private_key_id.clone(),
        )
        .map_err(&fail)?;
        let reports_token = JwtBearerGrant::new(
            http.reqwest_client(),
            &settings.token_url,
            reports_assertion.into_fn(),
        )
        .map_err(&fail)?;
        let reports = http
            .clone()
            .with_auth(Arc::new(reports_token), AuthScheme::Bearer);
        let token = Arc::new(token);
        let http = http.with_auth(token.clone(), AuthScheme::Bearer);
        let base = settings.api_base_url.trim_end_matches('/');
        let fingerprint = content_hash(&serde_json::json!({
            "api": base,
            "directory": settings.directory.query(),
            "include_suspended": settings.include_suspended,
            "include_archived": settings.include_archived,
        }));
        Ok(GoogleConnector {
            http,
            reports,
            activities_url: format!(
                "{base}/admin/reports/v1/activity/users/all/applications/admin"
            ),
            activity_reports: settings.activity_reports,
            full_sync_every: settings.full_sync_every,
            fingerprint,
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
        })
    }

    /// `{api}/seg1/seg2...`, each segment percent-encoded.
    pub(super) fn endpoint(&self, segments: &[&str]) -> String {
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
    pub(super) async fn page(
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
        let http = match listing {
            Listing::Activities => &self.reports,
            _ => &self.http,
        };
        let body = self
            .get_with(http, url, &query)
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
        let next = next_page_token(&body);
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
    pub(super) async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<Value, HttpError> {
        self.get_with(&self.http, url, query).await
    }

    /// [`GoogleConnector::get`] on `http` (the directory's client or the Reports API's).
    pub(super) async fn get_with(
        &self,
        http: &HttpClient,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, HttpError> {
        let started = Instant::now();
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            match http.get_json(url, query).await {
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
    pub(super) fn fail(&self, listing: Listing<'_>, source: HttpError) -> ConnectorError {
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
    pub(super) fn hint(&self, listing: Listing<'_>, error: &HttpError) -> Option<String> {
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
    pub(super) async fn for_each_page(
        &self,
        listing: Listing<'_>,
        url: &str,
        query: &[(&str, &str)],
        mut on_page: impl FnMut(Vec<Value>) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let mut walk = TokenWalk::default();
        while let Some(items) = self.next_page(&mut walk, listing, url, query).await? {
            on_page(items)?;
        }
        Ok(())
    }

    /// The next page of `listing` (None after the last), read at the token `walk` holds.
    /// A next token handed out twice fails the read once this page's items are handled.
    pub(super) async fn next_page(
        &self,
        walk: &mut TokenWalk,
        listing: Listing<'_>,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Vec<Value>>, ConnectorError> {
        if let Some(refused) = walk.refused.take() {
            return Err(refused);
        }
        let Some(token) = walk.tokens.next_token() else {
            return Ok(None);
        };
        let (items, next) = self.page(listing, url, query, token.as_deref()).await?;
        if let Some(next) = next
            && let Err(reason) = walk.tokens.check(&next)
        {
            walk.refused = Some(self.malformed(listing, url, reason));
        }
        Ok(Some(items))
    }

    pub(super) fn malformed(
        &self,
        listing: Listing<'_>,
        url: &str,
        reason: String,
    ) -> ConnectorError {
        self.fail(
            listing,
            HttpError::Decode {
                url_path: url.to_string(),
                reason,
            },
        )
    }

    /// A `maxResults=1` read for `idsync check --connect`; returns the first item.
    pub(super) async fn probe(
        &self,
        listing: Listing<'_>,
        url: &str,
    ) -> Result<Option<Value>, String> {
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

    pub(super) fn detail(&self, listing: Listing<'_>, error: &HttpError) -> String {
        match self.hint(listing, error) {
            Some(hint) => format!("{hint} ({error})"),
            None => error.to_string(),
        }
    }
}

/// Where a `pageToken` listing is (see [`GoogleConnector::next_page`]).
#[derive(Default)]
pub(super) struct TokenWalk {
    tokens: PageTokens,
    /// The next token was one seen before: the read fails at the next page.
    refused: Option<ConnectorError>,
}

/// Page tokens seen in one listing: a token handed out twice would loop forever.
pub(super) struct PageTokens(Pages);

impl Default for PageTokens {
    fn default() -> Self {
        PageTokens(Pages::start(Cursor::First))
    }
}

impl PageTokens {
    /// The token of the page to read next (None for the first page), or None after the
    /// last page.
    fn next_token(&mut self) -> Option<Option<String>> {
        match self.0.next_cursor()? {
            Cursor::Token(token) => Some(Some(token)),
            _ => Some(None),
        }
    }

    /// Follows `token` to the next page; an error when it was handed out before.
    pub(super) fn check(&mut self, token: &str) -> Result<(), String> {
        self.0
            .follow("", Some(Cursor::Token(token.to_string())))
            .map_err(|_| {
                "the server handed out the same nextPageToken twice; the listing would \
                 never end"
                    .to_string()
            })
    }
}

/// Whether a 403's body names a quota reason (the excerpt may be cut, so it is scanned).
pub(super) fn is_rate_limited(body: &str) -> bool {
    error_reasons(body)
        .iter()
        .any(|r| RATE_LIMIT_REASONS.contains(&r.as_str()))
}

/// The `"reason"` values in a Google error body, read even from a truncated excerpt.
pub(super) fn error_reasons(body: &str) -> Vec<String> {
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
