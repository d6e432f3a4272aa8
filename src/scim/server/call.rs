//! One request as the handlers see it (`Call`: the tenant, the protocol version, the
//! public base URL, the query, headers and body) and what they answer (`Reply`).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::{ScimServer, Tenant, limits};
use crate::db::Db;
use crate::scim::error::{ScimError, ScimType, ScimVersion};

/// What a handler answers: status, body (as the JSON text sent) and headers, and the
/// operation in words.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Option<String>,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub operation: String,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value, operation: impl Into<String>) -> Reply {
        Reply::text(status, body.to_string(), operation)
    }

    /// A reply whose JSON body is already written out (list pages, built piece by piece).
    pub fn text(status: StatusCode, body: String, operation: impl Into<String>) -> Reply {
        Reply {
            status,
            body: Some(body),
            etag: None,
            location: None,
            operation: operation.into(),
        }
    }

    pub fn empty(status: StatusCode, operation: impl Into<String>) -> Reply {
        Reply {
            status,
            body: None,
            etag: None,
            location: None,
            operation: operation.into(),
        }
    }
}

/// One request, as the handlers see it.
pub(crate) struct Call<'a> {
    pub server: &'a ScimServer,
    pub tenant: &'a Tenant,
    pub version: ScimVersion,
    /// The tenant's public base URL (`https://host/scim/t/v2`, see `access::public_base`).
    pub base: String,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    /// The write a handler finished, waiting to be committed with the request's event.
    pub(super) pending: std::sync::Mutex<Option<super::write::Pending>>,
}

impl Call<'_> {
    pub fn db(&self) -> &Db {
        &self.server.db
    }

    pub fn max_results(&self) -> u32 {
        self.server.options.max_results
    }

    /// The body as a JSON object, checked for a JSON media type.
    pub fn json_body(&self) -> Result<Value, ScimError> {
        if let Some(content_type) = self.headers.get(header::CONTENT_TYPE) {
            let text = content_type
                .to_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let essence = text.split(';').next().unwrap_or_default().trim();
            if essence != "application/scim+json" && essence != "application/json" {
                return Err(ScimError::unsupported_media_type(format!(
                    "Content-Type `{text}` is not accepted; send application/scim+json or \
                     application/json"
                )));
            }
        }
        if self.body.is_empty() {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "the request needs a JSON body",
            ));
        }
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        if !value.is_object() {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "the body must be a JSON object",
            ));
        }
        limits::reject_nul(&value)?;
        Ok(value)
    }

    /// Checks a resource as it is about to be stored against the server's limits.
    pub fn check_resource(&self, resource: &Value) -> Result<(), ScimError> {
        limits::check_resource(resource, &self.server.options.limits)
    }

    /// The entity tags of an `If-Match` / `If-None-Match` header (`*` as itself).
    pub fn entity_tags(&self, name: header::HeaderName) -> Option<Vec<String>> {
        let text = self.headers.get(name)?.to_str().ok()?;
        Some(
            text.split(',')
                .map(|t| {
                    t.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .to_string()
                })
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// Fails with 412 when `If-Match` is given and names another version.
    pub fn check_if_match(&self, version: &str) -> Result<(), ScimError> {
        match self.entity_tags(header::IF_MATCH) {
            Some(tags) if !tags.iter().any(|t| t == "*" || t == version) => {
                Err(ScimError::precondition_failed(format!(
                    "If-Match does not match the current version W/\"{version}\""
                )))
            }
            _ => Ok(()),
        }
    }
}
