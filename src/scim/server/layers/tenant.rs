//! The outermost layer: which tenant and protocol version a request is for (404 when
//! either is unknown; such requests are neither logged nor counted, having no tenant),
//! who the client is, and the trace span the rest of the request runs in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{Instrument, info_span};

use super::Route;
use crate::scim::error::{ScimError, ScimVersion};
use crate::scim::server::{ScimServer, access};
use crate::store::events::mask_target;

pub(super) async fn resolve(
    State(server): State<Arc<ScimServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let (tenant_id, version_text) = (param("tenant"), param("version"));
    let version = match version_text {
        "v2" => ScimVersion::V2,
        "v1" => ScimVersion::V1,
        _ => {
            return ScimError::not_found(format!(
                "unknown SCIM version `{version_text}`: use /scim/{tenant_id}/v2 (or v1 for SCIM 1.1)"
            ))
            .into_response();
        }
    };
    let Some(tenant) = server.tenant(tenant_id) else {
        return ScimError::not_found(format!("no SCIM tenant `{tenant_id}`")).to_response(version);
    };
    // Secrets in the path or query (`?access_token=...`) reach neither traces nor the log.
    let rest = param("rest").to_string();
    let raw_path = format!("/{rest}");
    let path = mask_target(&raw_path, None);
    let target = mask_target(&raw_path, request.uri().query());
    let span = info_span!("scim_request", tenant = %tenant.id, %method, path = %path);
    let client = access::client_address(peer, request.headers(), &tenant.settings.trusted_proxies);
    request.extensions_mut().insert(Arc::new(Route {
        tenant,
        version,
        rest,
        path,
        target,
        client,
        started,
    }));
    next.run(request).instrument(span).await
}
