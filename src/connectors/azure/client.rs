//! The Microsoft Graph client: the token (a client secret or a certificate-signed
//! assertion), requests pinned to the Graph origin, `@odata.nextLink` paging, and the
//! application permission a 403 asks for.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::connectors::http::*;
use crate::connectors::probe::{ListingProbe, ProbeListing};
use crate::connectors::{ConnectorError, Diagnosis};
use crate::model::{MemberKind, MemberRef, SourceGroup, content_hash, json_kind};

/// Follows one listing or delta round page by page.
pub(super) struct Pager<'c> {
    pub(super) conn: &'c AzureConnector,
    /// The first request's URL.
    pub(super) start: String,
    /// Sent with the first request only (nextLinks carry their options).
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) minimal: bool,
    pub(super) delta: bool,
    pub(super) what: String,
    pub(super) permission: &'static str,
    pub(super) delta_link: Option<String>,
    /// The page to read next, and the links followed: one handed out again would make
    /// the round endless.
    pub(super) seen: Pages,
}

impl Pager<'_> {
    /// The next page's items, or `None` after the last page.
    pub(super) async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        let (url, query): (String, Vec<(&str, &str)>) = match self.seen.next_cursor() {
            None => return Ok(None),
            Some(Cursor::Link(next)) => (next, Vec::new()),
            Some(_) => (
                std::mem::take(&mut self.start),
                self.query.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            ),
        };
        let mut body = self
            .conn
            .get(&url, &query, self.minimal, &self.what, self.permission)
            .await?;
        let items = match body.as_object_mut().and_then(|o| o.remove("value")) {
            Some(Value::Array(items)) => items,
            other => {
                let got = other.as_ref().map_or("nothing", json_kind);
                return Err(self.conn.fail(
                    &self.what,
                    self.permission,
                    decode_error(&url, format!("expected a `value` array, got {got}")),
                ));
            }
        };
        if let Some(next) = odata_next_link(&body) {
            self.conn
                .check_link(&next)
                .map_err(|e| self.conn.fail(&self.what, self.permission, e))?;
            if !self.seen.follow_link(&url, &next) {
                return Err(self.conn.fail(
                    &self.what,
                    self.permission,
                    decode_error(&url, "@odata.nextLink points at the same page".to_string()),
                ));
            }
        } else if self.delta {
            match body.get("@odata.deltaLink").and_then(Value::as_str) {
                Some(link) if !link.is_empty() => {
                    self.conn
                        .check_link(link)
                        .map_err(|e| self.conn.fail(&self.what, self.permission, e))?;
                    self.delta_link = Some(link.to_string());
                }
                _ => {
                    return Err(self.conn.fail(
                        &self.what,
                        self.permission,
                        decode_error(
                            &url,
                            "a delta page has neither @odata.nextLink nor @odata.deltaLink \
                             (the round is truncated)"
                                .to_string(),
                        ),
                    ));
                }
            }
        }
        Ok(Some(items))
    }

    /// The deltaLink that ended the round (after the last page).
    pub(super) fn delta_link(&self) -> Result<String, ConnectorError> {
        self.delta_link.clone().ok_or_else(|| {
            self.conn.fail(
                &self.what,
                self.permission,
                decode_error(
                    &self.conn.api,
                    "the delta round ended without @odata.deltaLink".to_string(),
                ),
            )
        })
    }
}

pub(super) fn decode_error(url: &str, reason: String) -> HttpError {
    let shown = url::Url::parse(url)
        .map(|u| crate::connectors::http::redact_url(&u))
        .unwrap_or_else(|_| "Graph".to_string());
    HttpError::Decode {
        url_path: shown,
        reason,
    }
}

/// Whether an error says the delta token expired or was rejected: 410, or 400/404 with
/// `syncStateNotFound` / `resyncRequired` (any case).
pub fn is_expired_token(err: &ConnectorError) -> bool {
    match err {
        ConnectorError::Http {
            source:
                HttpError::Status {
                    status,
                    body_excerpt,
                    ..
                },
            ..
        } => {
            let body = body_excerpt.to_ascii_lowercase();
            *status == 410
                || (matches!(status, 400 | 404)
                    && (body.contains("syncstatenotfound") || body.contains("resyncrequired")))
        }
        _ => false,
    }
}

/// Percent-encodes one path segment (ids are GUIDs, but never trust that).
pub(super) fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl AzureConnector {
    /// Builds the connector (HTTP client, token source, assertion signer) from its settings.
    pub fn new(settings: &AzureSettings) -> Result<AzureConnector, ConnectorError> {
        let fail = |what: &str, source: HttpError| ConnectorError::Http {
            kind: KIND,
            what: what.to_string(),
            source,
        };
        let auth = match &settings.credential {
            AzureCredential::Secret(secret) => ClientAuth::Secret(secret.clone()),
            AzureCredential::Certificate {
                certificate_der,
                private_key_pem,
            } => {
                let signer = AssertionSigner::new(
                    &settings.client_id,
                    &settings.token_url,
                    certificate_der,
                    private_key_pem,
                )
                .map_err(|e| fail("loading the certificate key", e))?;
                ClientAuth::Assertion(Arc::new(move || signer.sign()))
            }
            AzureCredential::Unavailable { key, reason } => {
                return Err(ConnectorError::Io {
                    path: key.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, reason.clone()),
                });
            }
        };
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            max_retry_time: settings.max_retry_time,
            metrics_label: "azure",
            ..HttpOptions::default()
        };
        let graph_url = settings.graph_url.trim_end_matches('/').to_string();
        // Credentials go only to Graph's origin (paging and delta links included) and the
        // token endpoint; both must be https unless allow_insecure_http (loopback only).
        let http = HttpClient::for_api(
            options,
            (&graph_url, "azure.graph_url"),
            None,
            settings.allow_insecure_http,
        )
        .map_err(|e| fail("setting up the HTTP client", e))?
        .with_token_endpoint(
            &settings.token_url,
            "azure.token_url",
            settings.allow_insecure_http,
        )
        .map_err(|e| fail("setting up the token endpoint", e))?;
        let token = Arc::new(
            OAuthClientCredentials::new(
                http.reqwest_client(),
                &settings.token_url,
                settings.client_id.clone(),
                auth,
                Some(format!("{graph_url}/.default")),
            )
            .map_err(|e| fail("setting up the token endpoint", e))?,
        );
        let http = http.with_auth(token.clone(), AuthScheme::Bearer);
        let origin = url::Url::parse(&graph_url)
            .map_err(|e| {
                fail(
                    "reading graph_url",
                    HttpError::InvalidUrl {
                        what: "graph_url".to_string(),
                        reason: e.to_string(),
                    },
                )
            })?
            .origin();
        let user_select = settings.user_properties.join(",");
        let group_select = settings.group_properties.join(",");
        let fingerprint = content_hash(&(
            "azure-v1",
            &graph_url,
            &user_select,
            &group_select,
            settings.include_guests,
        ));
        Ok(AzureConnector {
            http,
            token,
            token_url: settings.token_url.clone(),
            api: format!("{graph_url}/v1.0"),
            origin,
            include_guests: settings.include_guests,
            user_filter: settings.user_filter.clone(),
            group_filter: settings.group_filter.clone(),
            page_size: settings.page_size.clamp(1, 999),
            delta: settings.delta,
            full_sync_every: chrono::Duration::from_std(settings.full_sync_every)
                .unwrap_or(chrono::Duration::MAX),
            user_select,
            group_select,
            fingerprint,
        })
    }

    /// The error of a failed call; a 403 names the permission to grant.
    pub(super) fn fail(&self, what: &str, permission: &str, source: HttpError) -> ConnectorError {
        let what = match &source {
            HttpError::Status { status: 403, .. } => format!(
                "{what} (forbidden: grant the app registration the Microsoft Graph application \
                 permission {permission}, with admin consent)"
            ),
            _ => what.to_string(),
        };
        ConnectorError::Http {
            kind: KIND,
            what,
            source,
        }
    }

    /// Refuses links to another scheme, host or port than `graph_url`.
    pub(super) fn check_link(&self, link: &str) -> Result<(), HttpError> {
        let url = url::Url::parse(link).map_err(|e| HttpError::InvalidUrl {
            what: "a Graph paging link".to_string(),
            reason: e.to_string(),
        })?;
        if url.origin() != self.origin {
            return Err(HttpError::InvalidUrl {
                what: "a Graph paging link".to_string(),
                reason: format!(
                    "it points at {} instead of the configured graph_url; refusing to send the \
                     token there",
                    crate::connectors::http::redact_url(&url)
                ),
            });
        }
        Ok(())
    }

    pub(super) async fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        minimal: bool,
        what: &str,
        permission: &str,
    ) -> Result<Value, ConnectorError> {
        let headers: &[(&'static str, &str)] = if minimal {
            &[("Prefer", "return=minimal")]
        } else {
            &[]
        };
        self.http
            .get_json_with_headers(url, query, headers)
            .await
            .map(|(body, _)| body)
            .map_err(|e| self.fail(what, permission, e))
    }

    fn pager(
        &self,
        url: String,
        query: Vec<(&'static str, String)>,
        (delta, minimal): (bool, bool),
        (what, permission): (String, &'static str),
    ) -> Pager<'_> {
        Pager {
            conn: self,
            start: url,
            query,
            minimal,
            delta,
            what,
            permission,
            delta_link: None,
            seen: Pages::start(Cursor::First),
        }
    }

    /// A plain listing of `path` (under the API root), page by page: `$select` of
    /// `select`, `$top` of the page size, and `$filter` when there is one. `step` is what is
    /// being done and the permission it needs.
    pub(super) fn listing(
        &self,
        path: &str,
        select: String,
        filter: Option<&String>,
        step: (String, &'static str),
    ) -> Pager<'_> {
        let mut query = vec![("$select", select), ("$top", self.page_size.to_string())];
        if let Some(filter) = filter {
            query.push(("$filter", filter.clone()));
        }
        self.pager(format!("{}/{path}", self.api), query, (false, false), step)
    }

    /// The pages of one delta round from `url` (a stored deltaLink, or a delta function
    /// with its `query`); [`Pager::delta_link`] is the round's new deltaLink after the
    /// last page. `minimal` asks for changed properties only.
    pub(super) fn delta_pager(
        &self,
        (url, query): (String, Vec<(&'static str, String)>),
        minimal: bool,
        step: (&str, &'static str),
    ) -> Pager<'_> {
        self.pager(url, query, (true, minimal), (step.0.to_string(), step.1))
    }

    /// One delta round (see [`AzureConnector::delta_pager`]): each object with an id goes
    /// to `each`, in order; the round's new deltaLink.
    pub(super) async fn delta_round(
        &self,
        start: (String, Vec<(&'static str, String)>),
        minimal: bool,
        step: (&str, &'static str),
        mut each: impl FnMut(String, Value),
    ) -> Result<String, ConnectorError> {
        let mut pager = self.delta_pager(start, minimal, step);
        while let Some(items) = pager.next_page().await? {
            for item in items {
                let Some(id) = id_of(&item) else { continue };
                each(id, item);
            }
        }
        pager.delta_link()
    }

    /// The direct user and group members of group `id` (guests left out when excluded).
    pub(super) async fn members_of(&self, id: &str) -> Result<Vec<MemberRef>, ConnectorError> {
        let mut pager = self.listing(
            &format!("groups/{}/members", segment(id)),
            "id,userType".to_string(),
            None,
            (
                format!("listing the members of group {id}"),
                GROUPS_PERMISSION,
            ),
        );
        let mut members: Ordered<MemberRef, ()> = Ordered::default();
        while let Some(items) = pager.next_page().await? {
            for item in items {
                if let Some(member) = member_ref(&item) {
                    if member.kind == MemberKind::User && !self.include_guests && is_guest(&item) {
                        continue;
                    }
                    members.set(member, ());
                }
            }
        }
        Ok(members.into_iter().map(|(m, ())| m).collect())
    }

    /// A group whose properties changed, read whole; `None` when it is gone (404).
    pub(super) async fn group_whole(
        &self,
        id: &str,
    ) -> Result<Option<SourceGroup>, ConnectorError> {
        let what = format!("reading group {id}");
        let url = format!("{}/groups/{}", self.api, segment(id));
        let item = match self
            .get(
                &url,
                &[("$select", self.group_select.as_str())],
                false,
                &what,
                GROUPS_PERMISSION,
            )
            .await
        {
            Ok(item) => item,
            Err(ConnectorError::Http {
                source: HttpError::Status { status: 404, .. },
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let members = match self.members_of(id).await {
            Ok(members) => members,
            Err(ConnectorError::Http {
                source: HttpError::Status { status: 404, .. },
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(to_group(id.to_string(), attributes(item), members)))
    }

    /// One `$top=1` GET for `idsync check --connect`.
    pub(super) async fn probe(
        &self,
        check: &'static str,
        url: &str,
        query: &[(&str, &str)],
        permission: &str,
    ) -> Result<Value, Diagnosis> {
        match self.get(url, query, false, check, permission).await {
            Ok(body) => Ok(body),
            Err(ConnectorError::Http { source, .. }) => Err(match &source {
                HttpError::Auth { .. } | HttpError::Status { status: 401, .. } => {
                    Diagnosis::failed("authenticate", source.to_string())
                }
                HttpError::Status { status: 403, .. } => Diagnosis::failed(
                    check,
                    format!(
                        "forbidden: grant the app registration the Microsoft Graph application \
                         permission {permission}, with admin consent"
                    ),
                ),
                _ => Diagnosis::failed(check, source.to_string()),
            }),
            Err(other) => Err(Diagnosis::failed(check, other.to_string())),
        }
    }
}

#[async_trait::async_trait]
impl ListingProbe for AzureConnector {
    async fn probe_listing(&self, listing: ProbeListing<'_>) -> Result<Option<String>, Diagnosis> {
        // One page of what a sync asks for (its `$select` and `$filter`), so that a
        // property or filter Graph refuses shows here and not at the first sync.
        let (url, permission, select, filter) = match listing {
            ProbeListing::Users => (
                format!("{}/users", self.api),
                USERS_PERMISSION,
                self.user_select.as_str(),
                self.user_filter.as_deref(),
            ),
            ProbeListing::Groups => (
                format!("{}/groups", self.api),
                GROUPS_PERMISSION,
                self.group_select.as_str(),
                self.group_filter.as_deref(),
            ),
            ProbeListing::Members(id) => (
                format!("{}/groups/{}/members", self.api, segment(id)),
                GROUPS_PERMISSION,
                "id",
                None,
            ),
        };
        let mut query = vec![("$top", "1"), ("$select", select)];
        if let Some(filter) = filter {
            query.push(("$filter", filter));
        }
        let body = self
            .probe(listing.check(), &url, &query, permission)
            .await?;
        Ok(body.get("value").and_then(|v| v.get(0)).and_then(id_of))
    }
}
