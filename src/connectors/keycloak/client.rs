//! The Keycloak Admin REST API client: the token (client credentials or the password
//! grant) and `first`/`max` paged listings under `/admin/realms/{realm}`.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{KIND, KeycloakConnector, KeycloakSettings};
use crate::connectors::ConnectorError;
use crate::connectors::http::{
    AuthScheme, ClientAuth, Cursor, HttpClient, HttpError, HttpOptions, OAuthClientCredentials,
    Pages,
};
use crate::model::{content_hash, json_kind};

impl KeycloakConnector {
    /// Builds the connector (HTTP client and token source) from its settings.
    pub fn new(settings: &KeycloakSettings) -> Result<KeycloakConnector, ConnectorError> {
        let fail = ConnectorError::setting_up(KIND);
        let options = HttpOptions {
            requests_per_second: settings.requests_per_second,
            metrics_label: KIND,
            ..HttpOptions::default()
        };
        // Credentials go only to the server's origin and the token endpoint; both must be
        // https unless allow_insecure_http (loopback only).
        let http = HttpClient::for_api(
            options,
            (&settings.base_url, "keycloak.base_url"),
            Some((&settings.token_url, "keycloak.token_url")),
            settings.allow_insecure_http,
        )
        .map_err(&fail)?;
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
        .map_err(&fail)?;
        if let Some((username, password)) = &settings.password_grant {
            token = token.with_password_grant(username.clone(), password.clone());
        }
        let http = http.with_auth(Arc::new(token), AuthScheme::Bearer);
        let base = settings.base_url.trim_end_matches('/');
        let admin = format!("{base}/admin/realms/{}", settings.realm);
        Ok(KeycloakConnector {
            http,
            // A checkpoint continues only on the realm it was made on.
            fingerprint: content_hash(&serde_json::json!({ "admin": admin })),
            admin,
            page_size: settings.page_size.max(1),
            admin_events: settings.admin_events,
            full_sync_every: settings.full_sync_every,
        })
    }

    /// GETs one record (`/users/{id}`, `/groups/{id}`, or the events config) with its
    /// answer's headers; `None` when the server answers 404 (the record is gone).
    pub(super) async fn fetch_one(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Option<(Value, HeaderMap)>, ConnectorError> {
        let url = format!("{}{path}", self.admin);
        match self.http.get_json(&url, &[]).await {
            Ok(answer) => Ok(Some(answer)),
            Err(HttpError::Status { status: 404, .. }) => Ok(None),
            Err(source) => Err(ConnectorError::Http {
                kind: KIND,
                what: what.to_string(),
                source,
            }),
        }
    }

    /// GETs one page of `path` (relative to the admin root) at offset `first`, with an
    /// explicit `max`; the body must be a JSON array.
    pub(super) async fn fetch_page(
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
        let (body, _) = self.http.get_json(&url, &query).await.map_err(&fail)?;
        match body {
            Value::Array(items) => Ok(items),
            other => Err(fail(HttpError::Decode {
                url_path: path.to_string(),
                reason: format!("expected a JSON array, got {}", json_kind(&other)),
            })),
        }
    }

    /// GETs every page of `path`, `first`/`max` paged; `on_page` receives each page.
    pub(super) async fn for_each_page(
        &self,
        path: &str,
        extra: &[(&str, &str)],
        what: &str,
        mut on_page: impl FnMut(Vec<Value>),
    ) -> Result<(), ConnectorError> {
        let mut pages = Pages::start(Cursor::Offset(0));
        while let Some(Cursor::Offset(first)) = pages.next_cursor() {
            let page = self.fetch_page(path, first, extra, what).await?;
            let len = page.len();
            on_page(page);
            pages.follow_offset(first, self.page_size, len);
        }
        Ok(())
    }
}
