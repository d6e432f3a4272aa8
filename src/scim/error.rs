//! SCIM error responses. [`ScimError`] carries the HTTP status, the RFC 7644 §3.12
//! `scimType` keyword and a human-readable detail; it renders as the SCIM 2.0 error body
//! (`urn:ietf:params:scim:api:messages:2.0:Error`, with `status` as a JSON **string**) in
//! `application/scim+json`, or through [`V1Error`] as the SCIM 1.1 body
//! `{"Errors":[{"description":…,"code":"404"}]}` in `application/json`.
//!
//! A server error (5xx other than 501) never shows its detail to the client: the body
//! says [`INTERNAL_DETAIL`], and the caller logs [`ScimError::detail`] (also what
//! `Display` prints) itself. A 429 carries `Retry-After`, a 401 `WWW-Authenticate: Bearer`
//! (RFC 6750 §3).

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The `schemas` value of a SCIM 2.0 error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// Media type of SCIM 2.0 bodies (RFC 7644 §3.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
/// Media type of SCIM 1.1 bodies.
pub const V1_CONTENT_TYPE: &str = "application/json";
/// What a client is told about a server error instead of its detail.
pub const INTERNAL_DETAIL: &str = "internal error, see the server log";

/// The protocol version a response is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ScimVersion {
    /// SCIM 1.1 (the Okta on-premises provisioning agent).
    V1,
    /// SCIM 2.0 (RFC 7643/7644).
    #[default]
    V2,
}

/// The `scimType` keywords of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    /// The filter syntax is invalid, or the attribute and comparison are not supported.
    InvalidFilter,
    /// The filter yields more results than the server is willing to process.
    TooMany,
    /// One or more attribute values are already in use or reserved (409).
    Uniqueness,
    /// The change would modify an immutable or read-only attribute.
    Mutability,
    /// The request body is unparsable, syntactically incorrect or violates the schema.
    InvalidSyntax,
    /// The PATCH `path` is invalid or malformed.
    InvalidPath,
    /// The PATCH `path` did not yield an attribute or value that could be operated on.
    NoTarget,
    /// A required value was missing or a value is not compatible with the attribute.
    InvalidValue,
    /// The protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of personal information in the URI (403).
    Sensitive,
}

impl ScimType {
    /// Every keyword, in the order of Table 9.
    pub const ALL: [ScimType; 10] = [
        Self::InvalidFilter,
        Self::TooMany,
        Self::Uniqueness,
        Self::Mutability,
        Self::InvalidSyntax,
        Self::InvalidPath,
        Self::NoTarget,
        Self::InvalidValue,
        Self::InvalidVers,
        Self::Sensitive,
    ];

    /// The keyword as it appears in `scimType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }

    /// The HTTP status the keyword goes with: 409 for `uniqueness`, 403 for `sensitive`,
    /// 400 for the rest.
    pub fn status(self) -> u16 {
        match self {
            Self::Uniqueness => 409,
            Self::Sensitive => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SCIM error: what the handler failed with, rendered by `IntoResponse` (SCIM 2.0) or
/// [`V1Error`] (SCIM 1.1). `Display` shows the real detail, for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}: {detail}")]
pub struct ScimError {
    /// The HTTP status code.
    pub status: u16,
    /// The `scimType` keyword, where one applies.
    pub scim_type: Option<ScimType>,
    /// Human-readable detail; for server errors only for the log (see the module docs).
    pub detail: String,
    /// Seconds for the `Retry-After` header (set by [`ScimError::too_many_requests`]).
    pub retry_after_secs: Option<u64>,
}

impl ScimError {
    /// An error with any status.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    /// 400, with a `scimType` (`ScimType::InvalidValue`) or without (`None`).
    pub fn bad_request(scim_type: impl Into<Option<ScimType>>, detail: impl Into<String>) -> Self {
        Self::new(400, scim_type.into(), detail)
    }

    /// 401: no or an invalid bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// 403: authenticated, but not allowed (e.g. an address outside the allowlist).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }

    /// 403 `sensitive`: personal information in the URI (RFC 7644 §7.5.2).
    pub fn sensitive(detail: impl Into<String>) -> Self {
        Self::new(403, Some(ScimType::Sensitive), detail)
    }

    /// 404: no such resource or endpoint.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 405: the endpoint does not take this method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, None, detail)
    }

    /// 409 `uniqueness`: e.g. `userName` already taken.
    pub fn conflict_uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 412: `If-Match` does not match the resource's current version.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// 413: the request body is over the limit.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }

    /// 415: the body is not `application/scim+json` or `application/json`.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(415, None, detail)
    }

    /// 429 with `Retry-After: retry_after_secs`.
    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(429, None, detail)
        }
    }

    /// 503 with `Retry-After`: the server is overloaded for now (the request changed
    /// nothing).
    pub fn busy(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(503, None, detail)
        }
    }

    /// 500. `detail` is for the log only: the client is told [`INTERNAL_DETAIL`].
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// 501: an operation this server does not offer (e.g. `/Bulk`).
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }

    /// Whether the detail is withheld from the client (5xx other than 501).
    /// A fault of the server, whose detail is for the log only (501 and 503 say what the
    /// client can do about them, so their detail is shown).
    pub fn is_server_error(&self) -> bool {
        self.status >= 500 && self.status != 501 && self.status != 503
    }

    /// The detail as the client sees it.
    pub fn client_detail(&self) -> &str {
        if self.is_server_error() {
            INTERNAL_DETAIL
        } else {
            &self.detail
        }
    }

    /// The response body: RFC 7644 §3.12 for [`ScimVersion::V2`], the SCIM 1.1 `Errors`
    /// list for [`ScimVersion::V1`]. Both carry the status as a string.
    pub fn body(&self, version: ScimVersion) -> Value {
        let status = self.status.to_string();
        match version {
            ScimVersion::V2 => {
                let mut body = Map::new();
                body.insert("schemas".into(), json!([ERROR_SCHEMA]));
                body.insert("status".into(), Value::String(status));
                if let Some(scim_type) = self.scim_type {
                    body.insert("scimType".into(), scim_type.as_str().into());
                }
                body.insert("detail".into(), self.client_detail().into());
                Value::Object(body)
            }
            ScimVersion::V1 => json!({
                "Errors": [{ "description": self.client_detail(), "code": status }]
            }),
        }
    }

    /// The HTTP response for `version`, with its content type and headers.
    pub fn to_response(&self, version: ScimVersion) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = match version {
            ScimVersion::V2 => SCIM_CONTENT_TYPE,
            ScimVersion::V1 => V1_CONTENT_TYPE,
        };
        let mut response = (status, self.body(version).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == 401 {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl IntoResponse for ScimError {
    /// The SCIM 2.0 rendering.
    fn into_response(self) -> Response {
        self.to_response(ScimVersion::V2)
    }
}

/// `Retry-After` when the database pool is exhausted.
pub const BUSY_RETRY_SECS: u64 = 5;

/// A database failure as the client sees it: 503 with `Retry-After` when no connection
/// came free in time (load, not a fault: the request changed nothing), else 500. The
/// pool's timeout may sit anywhere in the chain of causes (a `DbError` wraps it, a
/// `SyncError` wraps that), so the whole chain is looked at.
fn db_failure(error: &(dyn std::error::Error + 'static)) -> ScimError {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(sqlx::Error::PoolTimedOut) = e.downcast_ref::<sqlx::Error>() {
            return ScimError::busy(
                "the server is busy: no database connection came free in time; nothing was \
                 changed, retry after the time in Retry-After",
                BUSY_RETRY_SECS,
            );
        }
        cause = e.source();
    }
    ScimError::internal(error.to_string())
}

impl From<sqlx::Error> for ScimError {
    fn from(error: sqlx::Error) -> Self {
        db_failure(&error)
    }
}

impl From<crate::db::DbError> for ScimError {
    fn from(error: crate::db::DbError) -> Self {
        db_failure(&error)
    }
}

impl From<crate::sync::SyncError> for ScimError {
    /// Only the projection of a write meets it, and fails there only in the database.
    fn from(error: crate::sync::SyncError) -> Self {
        db_failure(&error)
    }
}

impl From<crate::scim::patch::PatchError> for ScimError {
    /// 400 with the `scimType` the PATCH error names.
    fn from(error: crate::scim::patch::PatchError) -> Self {
        let scim_type = ScimType::ALL
            .into_iter()
            .find(|t| t.as_str() == error.scim_type());
        ScimError::bad_request(scim_type, error.message().to_string())
    }
}

impl From<crate::scim::resource::ResourceError> for ScimError {
    fn from(error: crate::scim::resource::ResourceError) -> Self {
        use crate::scim::resource::ResourceError;
        let scim_type = match error {
            ResourceError::InvalidSyntax(_) => ScimType::InvalidSyntax,
            ResourceError::InvalidValue(_) => ScimType::InvalidValue,
        };
        ScimError::bad_request(scim_type, error.to_string())
    }
}

impl From<crate::store::mirror::query::QueryError> for ScimError {
    /// What a list's filter or `sortBy` asks that the mirror cannot answer is the client's
    /// to fix (400); the database failing is not.
    fn from(error: crate::store::mirror::query::QueryError) -> Self {
        use crate::store::mirror::query::QueryError;
        match error {
            QueryError::NotFilterable(m) => ScimError::bad_request(ScimType::InvalidFilter, m),
            QueryError::InvalidValue(m) => ScimError::bad_request(ScimType::InvalidFilter, m),
            QueryError::NotSortable(m) => ScimError::bad_request(ScimType::InvalidValue, m),
            QueryError::Db(e) => ScimError::from(e),
        }
    }
}

/// A [`ScimError`] answered on a SCIM 1.1 route: the 1.1 body, `application/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Error(pub ScimError);

impl From<ScimError> for V1Error {
    fn from(error: ScimError) -> Self {
        Self(error)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        self.0.to_response(ScimVersion::V1)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Status, content type, Retry-After and parsed body of a response.
    fn parts(response: Response) -> (u16, String, Option<String>, Value) {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        let retry_after = header(header::RETRY_AFTER);
        let status = response.status().as_u16();
        // The body is a buffered string, so its future is ready on the first poll.
        let mut future = pin!(axum::body::to_bytes(response.into_body(), usize::MAX));
        let Poll::Ready(Ok(bytes)) = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("body not ready");
        };
        let body = serde_json::from_slice(&bytes).expect("JSON body");
        (status, content_type, retry_after, body)
    }

    #[test]
    fn v2_body_has_the_rfc_shape_with_status_as_a_string() {
        let error = ScimError::bad_request(ScimType::InvalidFilter, "bad filter");
        assert_eq!(
            error.body(ScimVersion::V2),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad filter"
            })
        );
        let plain = ScimError::not_found("Resource 2819c223 not found").body(ScimVersion::V2);
        assert_eq!(plain["status"], json!("404"));
        assert!(plain.get("scimType").is_none());
        assert_eq!(ScimError::bad_request(None, "x").scim_type, None);
    }

    #[test]
    fn v1_body_is_the_errors_list() {
        let error = ScimError::conflict_uniqueness("userName taken");
        assert_eq!(
            error.body(ScimVersion::V1),
            json!({"Errors": [{"description": "userName taken", "code": "409"}]})
        );
    }

    #[test]
    fn constructors_set_status_and_type() {
        let cases = [
            (ScimError::unauthorized("x"), 401, None),
            (ScimError::forbidden("x"), 403, None),
            (ScimError::sensitive("x"), 403, Some(ScimType::Sensitive)),
            (ScimError::not_found("x"), 404, None),
            (ScimError::method_not_allowed("x"), 405, None),
            (
                ScimError::conflict_uniqueness("x"),
                409,
                Some(ScimType::Uniqueness),
            ),
            (ScimError::precondition_failed("x"), 412, None),
            (ScimError::payload_too_large("x"), 413, None),
            (ScimError::unsupported_media_type("x"), 415, None),
            (ScimError::too_many_requests("x", 3), 429, None),
            (ScimError::internal("x"), 500, None),
            (ScimError::not_implemented("x"), 501, None),
        ];
        for (error, status, scim_type) in cases {
            assert_eq!(
                (error.status, error.scim_type),
                (status, scim_type),
                "{error}"
            );
        }
    }

    #[test]
    fn scim_type_strings_and_statuses_follow_rfc_7644() {
        let names: Vec<_> = ScimType::ALL.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            names,
            [
                "invalidFilter",
                "tooMany",
                "uniqueness",
                "mutability",
                "invalidSyntax",
                "invalidPath",
                "noTarget",
                "invalidValue",
                "invalidVers",
                "sensitive"
            ]
        );
        assert_eq!(ScimType::Uniqueness.status(), 409);
        assert_eq!(ScimType::Sensitive.status(), 403);
        assert_eq!(ScimType::InvalidPath.status(), 400);
    }

    #[test]
    fn internal_detail_is_withheld_from_the_client_but_kept_for_the_log() {
        let error = ScimError::internal("database is locked at /var/lib/idsync.db");
        assert_eq!(
            error.body(ScimVersion::V2)["detail"],
            json!(INTERNAL_DETAIL)
        );
        assert_eq!(
            error.body(ScimVersion::V1)["Errors"][0]["description"],
            json!(INTERNAL_DETAIL)
        );
        assert_eq!(
            error.to_string(),
            "SCIM 500: database is locked at /var/lib/idsync.db"
        );
        let not_implemented = ScimError::not_implemented("bulk is not supported");
        assert_eq!(not_implemented.client_detail(), "bulk is not supported");
    }

    #[test]
    fn into_response_is_scim_json_with_retry_after() {
        let (status, content_type, retry_after, body) =
            parts(ScimError::too_many_requests("slow down", 30).into_response());
        assert_eq!(
            (status, content_type.as_str()),
            (429, "application/scim+json")
        );
        assert_eq!(retry_after.as_deref(), Some("30"));
        assert_eq!(body["status"], json!("429"));
        assert_eq!(body["detail"], json!("slow down"));

        let (status, _, retry_after, body) =
            parts(ScimError::precondition_failed("version mismatch").into_response());
        assert_eq!((status, retry_after), (412, None));
        assert_eq!(body["schemas"], json!([ERROR_SCHEMA]));
    }

    #[test]
    fn an_exhausted_pool_is_busy_not_broken() {
        let busy = ScimError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(
            (busy.status, busy.retry_after_secs),
            (503, Some(BUSY_RETRY_SECS))
        );
        let wrapped = ScimError::from(crate::db::DbError::Query {
            context: "reading a resource",
            source: sqlx::Error::PoolTimedOut,
        });
        assert_eq!(wrapped.status, 503);
        let broken = ScimError::from(sqlx::Error::RowNotFound);
        assert_eq!((broken.status, broken.retry_after_secs), (500, None));
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let response = ScimError::unauthorized("missing token").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn v1_error_renders_the_1_1_body_as_plain_json() {
        let error = V1Error::from(ScimError::internal("secret"));
        let (status, content_type, _, body) = parts(error.into_response());
        assert_eq!((status, content_type.as_str()), (500, "application/json"));
        assert_eq!(
            body,
            json!({"Errors": [{"description": INTERNAL_DETAIL, "code": "500"}]})
        );
    }
}
