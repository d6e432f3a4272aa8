//! The one handler behind the layers (`layers`): an admitted request, its tenant and
//! body already in hand, is routed by path and method to the resource handlers within
//! the request timeout (503 beyond it, its transaction rolled back), and the reply is
//! rendered with its content type, ETag and Location. A finished write's transaction
//! rides on the response to the event log, which commits it.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

use super::layers::{Admission, Answered, PendingWrite, loggable, refuse};
use super::listener::LocalAddr;
use super::{
    Call, Reply, ScimServer, access, groups, limits, listing, params, resources, users, v1,
};
use crate::model::{SourceGroup, SourceUser};
use crate::scim::discovery::{self, ProviderOptions};
use crate::scim::error::{SCIM_CONTENT_TYPE, ScimError, ScimVersion, V1_CONTENT_TYPE};
use crate::store::mirror::query::Resource;

pub(super) async fn handle(
    State(server): State<Arc<ScimServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    local: Option<Extension<LocalAddr>>,
    Admission { route, body }: Admission,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let version = route.version;
    if let Some(target) = uri.path_and_query()
        && let Err(error) = limits::reject_nul_in_target(target.as_str())
    {
        return refuse(error, version);
    }
    let local = local.map(|Extension(LocalAddr(addr))| addr);
    let origin = access::public_base(&route.tenant.settings, peer, local, &headers);
    let version_text = match version {
        ScimVersion::V2 => "v2",
        ScimVersion::V1 => "v1",
    };
    let call = Call {
        server: &server,
        tenant: &route.tenant,
        version,
        base: format!("{origin}/scim/{}/{version_text}", route.tenant.id),
        query: uri.query(),
        headers: &headers,
        body,
        pending: std::sync::Mutex::new(None),
    };
    let outcome = match tokio::time::timeout(
        server.options.request_timeout,
        dispatch(&call, &method, &route.rest),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(ScimError::new(
            503,
            None,
            "the request took too long and was abandoned; nothing was changed",
        )),
    };
    // A failed request's transaction (if any) is dropped: rolled back.
    let pending = call.take_pending().filter(|_| outcome.is_ok());
    match outcome {
        Ok(reply) => {
            // What the event log keeps (redacted and cut) before the body moves out: no
            // second copy of a large page.
            let logged_body = reply.body.as_deref().and_then(loggable);
            let mut response = render(
                reply.status,
                reply.body,
                version,
                reply.etag,
                reply.location,
            );
            let extensions = response.extensions_mut();
            extensions.insert(Answered {
                operation: reply.operation,
                logged_body,
            });
            if let Some(pending) = pending {
                extensions.insert(PendingWrite::new(pending));
            }
            response
        }
        Err(error) => refuse(error, version),
    }
}

fn render(
    status: StatusCode,
    body: Option<String>,
    version: ScimVersion,
    etag: Option<String>,
    location: Option<String>,
) -> Response {
    let mut response = match body {
        Some(text) => (status, text).into_response(),
        None => status.into_response(),
    };
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED {
        let content_type = match version {
            ScimVersion::V2 => SCIM_CONTENT_TYPE,
            ScimVersion::V1 => V1_CONTENT_TYPE,
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&format!("W/\"{t}\"")).ok()) {
        headers.insert(header::ETAG, tag);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

async fn dispatch(call: &Call<'_>, method: &Method, rest: &str) -> Result<Reply, ScimError> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let not_allowed = || {
        Err(ScimError::method_not_allowed(format!(
            "{method} is not allowed on /{rest}"
        )))
    };
    let base = call.base.as_str();
    let provider = ProviderOptions {
        max_results: call.max_results(),
        max_payload_size: call.server.options.max_body_bytes as u64,
        basic_auth: matches!(
            call.tenant.settings.auth,
            crate::config::TenantAuth::Basic { .. }
        ),
        documentation_uri: None,
    };
    let discovery_reply = |body: Option<Value>, what: &str| match body {
        Some(body) => Ok(Reply::json(
            StatusCode::OK,
            v1::discovery_answer(call.version, body),
            format!("read {what}"),
        )),
        None => Err(ScimError::not_found(format!("no {what}"))),
    };
    match (segments.as_slice(), method) {
        ([".search"], &Method::POST) => {
            let params = params::ListParams::from_search(&call.json_body()?)?;
            listing::search_all(call, params).await
        }
        ([".search"], _) => not_allowed(),
        (["Users"], &Method::GET) => listing::get(call, Resource::User).await,
        (["Users"], &Method::POST) => users::create(call).await,
        (["Users", ".search"], &Method::POST) => listing::search(call, Resource::User).await,
        (["Users", id], &Method::GET) => resources::get::<SourceUser>(call, id).await,
        (["Users", id], &Method::PUT) => users::replace(call, id).await,
        (["Users", id], &Method::PATCH) => users::patch(call, id).await,
        (["Users", id], &Method::DELETE) => users::delete(call, id).await,
        (["Users"] | ["Users", _], _) => not_allowed(),
        (["Groups"], &Method::GET) => listing::get(call, Resource::Group).await,
        (["Groups"], &Method::POST) => groups::create(call).await,
        (["Groups", ".search"], &Method::POST) => listing::search(call, Resource::Group).await,
        (["Groups", id], &Method::GET) => resources::get::<SourceGroup>(call, id).await,
        (["Groups", id], &Method::PUT) => groups::replace(call, id).await,
        (["Groups", id], &Method::PATCH) => groups::patch(call, id).await,
        (["Groups", id], &Method::DELETE) => groups::delete(call, id).await,
        (["Groups"] | ["Groups", _], _) => not_allowed(),
        (["ServiceProviderConfig" | "ServiceProviderConfigs"], &Method::GET) => {
            let body = match call.version {
                ScimVersion::V2 => discovery::service_provider_config(base, &provider),
                ScimVersion::V1 => v1::with_okta_capabilities(
                    discovery::service_provider_config_v1(base, &provider),
                ),
            };
            discovery_reply(Some(body), "service provider configuration")
        }
        (["ResourceTypes"], &Method::GET) => {
            discovery_reply(Some(discovery::resource_types(base)), "resource types")
        }
        (["ResourceTypes", name], &Method::GET) => {
            discovery_reply(discovery::resource_type(base, name), "resource type")
        }
        (["Schemas"], &Method::GET) => discovery_reply(Some(discovery::schemas(base)), "schemas"),
        (["Schemas", id], &Method::GET) => discovery_reply(discovery::schema(base, id), "schema"),
        (
            ["ServiceProviderConfig" | "ServiceProviderConfigs" | "ResourceTypes" | "Schemas"]
            | ["ResourceTypes" | "Schemas", _],
            _,
        ) => not_allowed(),
        (["Bulk"], _) => Err(ScimError::not_implemented(
            "bulk operations are not supported (see /ServiceProviderConfig)",
        )),
        (["Me"], _) => Err(ScimError::not_implemented(
            "/Me is not supported: tenants authenticate as the identity provider, not as a user",
        )),
        _ => Err(ScimError::not_found(format!("no endpoint /{rest}"))),
    }
}
