//! The Okta Management API client: the token (an OAuth service app's signed assertion or
//! an API token), `Link: rel="next"` paging pinned to the org, and the scope or admin
//! role a 401 or 403 asks for.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::*;
use crate::connectors::http::{
    AuthScheme, ClientAuth, Cursor, HttpClient, HttpError, HttpOptions, OAuthClientCredentials,
    Pages, StaticToken, TokenSource, next_link_from_header,
};
use crate::connectors::probe::{ListingProbe, ProbeListing};
use crate::connectors::{ConnectorError, Diagnosis};
use crate::model::json_kind;

/// Which permission a listing needs (named when Okta answers 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    Users,
    Groups,
}

impl Need {
    pub(super) fn scope(self) -> &'static str {
        match self {
            Need::Users => "okta.users.read",
            Need::Groups => "okta.groups.read",
        }
    }

    pub(super) fn things(self) -> &'static str {
        match self {
            Need::Users => "users",
            Need::Groups => "groups and their members",
        }
    }
}

impl OktaConnector {
    /// Builds the connector (HTTP client and token source) from its settings.
    pub fn new(settings: &OktaSettings) -> Result<OktaConnector, ConnectorError> {
        OktaConnector::with_http_options(settings, HttpOptions::default())
    }

    /// Like [`OktaConnector::new`], with other timeouts and retry limits (tests use short
    /// ones); the request rate always comes from the settings.
    pub fn with_http_options(
        settings: &OktaSettings,
        options: HttpOptions,
    ) -> Result<OktaConnector, ConnectorError> {
        let fail = ConnectorError::setting_up(KIND);
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            metrics_label: "okta",
            ..options
        };
        // Credentials go only to the org's origin (paging links included) and the token
        // endpoint; both must be https unless allow_insecure_http (loopback only).
        let token_url = match &settings.auth {
            OktaAuth::ServiceApp(app) => Some((app.token_url.as_str(), "okta.token_url")),
            OktaAuth::ApiToken(_) => None,
        };
        let http = HttpClient::for_api(
            options,
            (&settings.base_url, "okta.base_url"),
            token_url,
            settings.allow_insecure_http,
        )
        .map_err(&fail)?;
        let (token, scheme, scopes): (Arc<dyn TokenSource>, _, _) = match &settings.auth {
            OktaAuth::ApiToken(token) => (
                Arc::new(StaticToken::new(token.clone())),
                AuthScheme::Ssws,
                None,
            ),
            OktaAuth::ServiceApp(app) => {
                let make = assertion::assertion_fn(app).map_err(&fail)?;
                let source = OAuthClientCredentials::new(
                    http.reqwest_client(),
                    &app.token_url,
                    app.client_id.clone(),
                    ClientAuth::Assertion(make),
                    Some(app.scopes.join(" ")),
                )
                .map_err(&fail)?;
                (
                    Arc::new(source),
                    AuthScheme::Bearer,
                    Some(app.scopes.clone()),
                )
            }
        };
        let http = http.with_auth(token.clone(), scheme);
        let api = format!("{}/api/v1", settings.base_url.trim_end_matches('/'));
        let policies = Policies {
            deprovisioned: settings.deprovisioned,
            suspended: settings.suspended,
        };
        let fingerprint = content_hash(&serde_json::json!({
            "api": api,
            "group_types": settings.group_types,
            "deprovisioned": settings.deprovisioned.as_str(),
            "suspended": settings.suspended.as_str(),
        }));
        Ok(OktaConnector {
            http,
            token,
            scopes,
            api,
            group_types: settings.group_types.clone(),
            policies,
            page_size: settings.page_size.to_string(),
            full_sync_every: settings.full_sync_every,
            fingerprint,
        })
    }

    /// What the admin has to grant when Okta answers 403 to a listing.
    pub(super) fn permission_hint(&self, need: Need) -> String {
        match &self.scopes {
            Some(_) => format!(
                "grant the service app the scope {} (Okta API Scopes tab) and an admin role \
                 that may read {}, such as Read-Only Administrator",
                need.scope(),
                need.things()
            ),
            None => format!(
                "the API token acts with the permissions of the admin who created it; give \
                 that admin a role that may read {} ({}), such as Read-Only Administrator",
                need.things(),
                need.scope()
            ),
        }
    }

    /// What to look at when Okta answers 401.
    pub(super) fn unauthorized_hint(&self) -> &'static str {
        match &self.scopes {
            Some(_) => "Okta refused the access token even after a new one was issued",
            None => {
                "the API token is wrong, was revoked, expired after 30 days unused, or its \
                 admin was deactivated"
            }
        }
    }

    /// The connector error for a failed request while doing `what`.
    pub(super) fn fail(&self, what: &str, need: Need, source: HttpError) -> ConnectorError {
        let what = match &source {
            HttpError::Status { status: 403, .. } => {
                format!("{what} (forbidden: {})", self.permission_hint(need))
            }
            HttpError::Status { status: 401, .. } => {
                format!("{what} (unauthorized: {})", self.unauthorized_hint())
            }
            HttpError::Auth { code, .. } => match token_advice(code, self.scopes.as_deref()) {
                Some(advice) => format!("{what} ({advice})"),
                None => what.to_string(),
            },
            _ => what.to_string(),
        };
        ConnectorError::Http {
            kind: KIND,
            what,
            source,
        }
    }

    /// A pager over `path` (under `/api/v1`) with `limit` and `extra` query parameters.
    pub(super) fn pager(
        &self,
        path: &str,
        extra: Vec<(&'static str, String)>,
        what: String,
        need: Need,
    ) -> Pager<'_> {
        self.pager_at(format!("{}{path}", self.api), extra, what, need)
    }

    /// A pager over the absolute `url`.
    pub(super) fn pager_at(
        &self,
        url: String,
        extra: Vec<(&'static str, String)>,
        what: String,
        need: Need,
    ) -> Pager<'_> {
        let mut query = vec![("limit", self.page_size.clone())];
        query.extend(extra);
        Pager {
            okta: self,
            start: (url, query),
            what,
            need,
            seen: Pages::start(Cursor::First),
            started: None,
        }
    }

    /// One `limit=1` request for `idsync check --connect`.
    pub(super) async fn probe(
        &self,
        path: &str,
        check: &'static str,
        need: Need,
        filter: Option<&str>,
    ) -> Result<Value, Diagnosis> {
        let url = format!("{}{path}", self.api);
        let mut query = vec![("limit", "1")];
        if let Some(filter) = filter {
            query.push(("filter", filter));
        }
        match self.http.get_json(&url, &query).await {
            Ok((body, _)) => Ok(body),
            Err(error) => Err(match &error {
                HttpError::Auth { code, .. } => Diagnosis::failed(
                    "authenticate",
                    match token_advice(code, self.scopes.as_deref()) {
                        Some(advice) => format!("{error}; {advice}"),
                        None => error.to_string(),
                    },
                ),
                HttpError::Status { status: 401, .. } => Diagnosis::failed(
                    "authenticate",
                    format!("{}: {error}", self.unauthorized_hint()),
                ),
                HttpError::Status { status: 403, .. } => {
                    Diagnosis::failed(check, format!("forbidden: {}", self.permission_hint(need)))
                }
                _ => Diagnosis::failed(check, error.to_string()),
            }),
        }
    }
}

#[async_trait::async_trait]
impl ListingProbe for OktaConnector {
    async fn probe_listing(&self, listing: ProbeListing<'_>) -> Result<Option<String>, Diagnosis> {
        // One entry of what a sync lists: its groups come by type (`group_types`).
        let group_filter = self
            .group_types
            .first()
            .map(|group_type| format!("type eq \"{group_type}\""));
        let (path, need, filter) = match listing {
            ProbeListing::Users => ("/users".to_string(), Need::Users, None),
            ProbeListing::Groups => ("/groups".to_string(), Need::Groups, group_filter),
            ProbeListing::Members(id) => (format!("/groups/{id}/users"), Need::Groups, None),
        };
        let body = self
            .probe(&path, listing.check(), need, filter.as_deref())
            .await?;
        // Only an id that is safe in a path is tried.
        Ok(body
            .get(0)
            .and_then(|g| g.get("id"))
            .and_then(Value::as_str)
            .filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(str::to_string))
    }

    fn no_group_note(&self) -> Option<&'static str> {
        Some("no group to try (the org has none the token may see)")
    }
}

/// Advice for a token endpoint error code, when there is more to say than the framework's.
pub(super) fn token_advice(code: &str, scopes: Option<&[String]>) -> Option<String> {
    match code {
        "invalid_scope" => Some(format!(
            "grant the service app the scopes {} on its Okta API Scopes tab",
            scopes.map(|s| s.join(" ")).unwrap_or_default()
        )),
        "invalid_client" => Some(
            "check client_id, that the app authenticates with Public key / Private key, and \
             that the public key (and key_id) are registered with it"
                .to_string(),
        ),
        "invalid_dpop_proof" | "use_dpop_nonce" => Some(
            "idsync does not send DPoP proofs: turn off \"Require Demonstrating Proof of \
             Possession (DPoP)\" for the service app"
                .to_string(),
        ),
        _ => None,
    }
}

/// The `id` of a listed user or group.
pub(super) fn item_id(item: &Value) -> Option<String> {
    item.get("id").and_then(Value::as_str).map(str::to_string)
}

/// Follows one listing's `Link: rel="next"` headers, a page at a time.
pub(super) struct Pager<'a> {
    okta: &'a OktaConnector,
    /// The first request: a URL and its query (the next links carry theirs).
    start: (String, Vec<(&'static str, String)>),
    what: String,
    need: Need,
    /// The page to read next, and the links followed: one handed out again would make
    /// the listing endless.
    seen: Pages,
    /// Server time (`Date`) of the first answer, else the local time of the first request.
    pub(super) started: Option<SystemTime>,
}

impl Pager<'_> {
    /// The next page, or `None` after the last one.
    pub(super) async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        let (url, query) = match self.seen.next_cursor() {
            None => return Ok(None),
            Some(Cursor::Link(next)) => (next, Vec::new()),
            Some(_) => std::mem::take(&mut self.start),
        };
        let asked = crate::clock::system_now();
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (body, headers) = self
            .okta
            .http
            .get_json(&url, &query)
            .await
            .map_err(|e| self.okta.fail(&self.what, self.need, e))?;
        self.started.get_or_insert_with(|| {
            crate::connectors::checkpoint::server_time(&headers).unwrap_or(asked)
        });
        let items = match body {
            Value::Array(items) => items,
            other => {
                return Err(self.okta.fail(
                    &self.what,
                    self.need,
                    HttpError::Decode {
                        url_path: url.split('?').next().unwrap_or_default().to_string(),
                        reason: format!("expected a JSON array, got {}", json_kind(&other)),
                    },
                ));
            }
        };
        if let Some(next) = next_link_from_header(&headers)
            && !self.seen.follow_link(&url, &next)
        {
            return Err(self.okta.fail(
                &self.what,
                self.need,
                HttpError::Decode {
                    url_path: url.split('?').next().unwrap_or_default().to_string(),
                    reason: "the next link points at the page just read".to_string(),
                },
            ));
        }
        Ok(Some(items))
    }
}
