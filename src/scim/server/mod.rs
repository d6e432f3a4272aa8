//! The SCIM server: one axum listener for every tenant (`/scim/{tenant}/v2/...`, and
//! `/scim/{tenant}/v1/...` for SCIM 1.1), separate from the admin listener.
//!
//! Every request goes through the same steps (`handle`): find the tenant, check the
//! client's address against its allowlist, its credentials (failures count against the
//! client's own budget, see `failures`), the tenant's rate limit, read the body within the
//! size limit and the body timeout, then dispatch by path and method within the request
//! timeout.
//! Writes change the tenant's mirror and project the change into the target in one
//! transaction (`write`), so an IdP's request either lands whole or not at all. Each
//! request ends up in the event log (`crate::store::events`).

mod access;
mod call;
mod failures;
mod groups;
mod limits;
mod listener;
mod listing;
mod params;
mod resources;
mod users;
mod v1;
mod write;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::{Instrument, info_span, warn};

use crate::config::{Config, ConnectorSettings, MappingConfig, ScimTenantSettings};
use crate::db::Db;
use crate::scim::discovery::{self, ProviderOptions};
use crate::scim::error::{SCIM_CONTENT_TYPE, ScimError, ScimVersion, V1_CONTENT_TYPE};
use crate::store::events::{Event, EventLog, Retention, loggable_body, mask_target};

pub(crate) use call::{Call, Reply};
pub use limits::{MAX_IDENTIFIER_CHARS, ResourceLimits};
use listener::LocalAddr;
pub use listener::ScimHealth;

/// Limits of the server as a whole.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// A request taking longer is answered 503 and its transaction rolled back.
    pub request_timeout: Duration,
    /// Most resources one list request returns.
    pub max_results: u32,
    /// Failed authentications one client address may make per minute before its
    /// failures are answered 429.
    pub auth_failures_per_minute: u32,
    /// What one resource may hold.
    pub limits: ResourceLimits,
    /// A connection that has not sent a request's whole header by then is closed.
    pub header_read_timeout: Duration,
    /// A request whose body has not arrived by then is answered 408.
    pub body_read_timeout: Duration,
    /// Most connections open at once; at the cap the listener stops accepting.
    pub max_connections: usize,
    /// A list page stops adding resources once its body would grow past this (it always
    /// holds at least one); clients page on with `startIndex` + `itemsPerPage`.
    pub max_page_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(60),
            max_results: 1000,
            auth_failures_per_minute: 20,
            limits: ResourceLimits::default(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_page_bytes: 1 << 20,
        }
    }
}

/// One tenant as the server runs it.
pub struct Tenant {
    pub id: String,
    pub settings: ScimTenantSettings,
    pub mapping: MappingConfig,
    limiter: governor::DefaultDirectRateLimiter,
    /// Removals within the window before the tenant is held.
    pub max_removals: u64,
    /// Requests that recorded removals (to prune old records now and then).
    removal_writes: std::sync::atomic::AtomicU64,
}

impl Tenant {
    pub fn new(id: &str, settings: ScimTenantSettings, mapping: MappingConfig) -> Tenant {
        let quota =
            governor::Quota::per_second(settings.requests_per_second).allow_burst(settings.burst);
        Tenant {
            id: id.to_string(),
            max_removals: settings.max_removals.unwrap_or(mapping.max_deletes),
            limiter: governor::RateLimiter::direct(quota),
            removal_writes: std::sync::atomic::AtomicU64::new(0),
            settings,
            mapping,
        }
    }
}

/// The server's shared state.
pub struct ScimServer {
    db: Db,
    tenants: HashMap<String, Arc<Tenant>>,
    options: ServerOptions,
    events: EventLog,
    access: access::TokenTouches,
    failures: failures::AuthFailures,
    health: ScimHealth,
}

impl ScimServer {
    pub fn new(
        db: Db,
        tenants: Vec<Tenant>,
        options: ServerOptions,
        events: EventLog,
    ) -> ScimServer {
        ScimServer {
            db,
            tenants: tenants
                .into_iter()
                .map(|t| (t.id.clone(), Arc::new(t)))
                .collect(),
            failures: failures::AuthFailures::new(options.auth_failures_per_minute),
            health: ScimHealth::new(options.max_connections),
            options,
            events,
            access: access::TokenTouches::default(),
        }
    }

    /// The tenants of a configuration: its enabled `kind = "scim"` connectors.
    pub fn tenants_of(config: &Config) -> Vec<Tenant> {
        config
            .connectors
            .values()
            .filter(|c| c.enabled)
            .filter_map(|c| match &c.settings {
                ConnectorSettings::Scim(settings) => Some(Tenant::new(
                    &c.id,
                    settings.clone(),
                    config.mapping_for(c).clone(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Each tenant's event retention, for [`EventLog::start`].
    pub fn retention_of(tenants: &[Tenant]) -> HashMap<String, Retention> {
        tenants
            .iter()
            .map(|t| (t.id.clone(), Retention::of(&t.settings)))
            .collect()
    }

    pub fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.tenants.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Whether the listener can take a connection now (for `/readyz`).
    pub fn health(&self) -> ScimHealth {
        self.health.clone()
    }

    /// The router: everything under `/scim/{tenant}/{version}/`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/scim/{tenant}/{version}", axum::routing::any(handle_root))
            .route(
                "/scim/{tenant}/{version}/{*rest}",
                axum::routing::any(handle),
            )
            .fallback(not_found)
            .with_state(self)
    }
}

/// Serves the SCIM router on `listener` until `shutdown` completes, then lets requests
/// in flight finish (see `listener` for the header deadline and the connection cap).
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<ScimServer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let health = server.health();
    let header_read_timeout = server.options.header_read_timeout;
    listener::run(
        listener,
        server.router(),
        health,
        header_read_timeout,
        shutdown,
    )
    .await
}

async fn not_found() -> Response {
    ScimError::not_found("no such endpoint; SCIM tenants are at /scim/{tenant}/v2").into_response()
}

#[allow(clippy::too_many_arguments)]
async fn handle_root(
    state: State<Arc<ScimServer>>,
    peer: ConnectInfo<SocketAddr>,
    local: Option<Extension<LocalAddr>>,
    Path((tenant, version)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        state,
        peer,
        local,
        Path((tenant, version, String::new())),
        method,
        uri,
        headers,
        body,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    State(server): State<Arc<ScimServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    local: Option<Extension<LocalAddr>>,
    Path((tenant_id, version_text, rest)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let local = local.map(|Extension(LocalAddr(addr))| addr);
    let version = match version_text.as_str() {
        "v2" => ScimVersion::V2,
        "v1" => ScimVersion::V1,
        _ => {
            return ScimError::not_found(format!(
                "unknown SCIM version `{version_text}`: use /scim/{tenant_id}/v2 (or v1 for SCIM 1.1)"
            ))
            .into_response();
        }
    };
    let Some(tenant) = server.tenants.get(&tenant_id).cloned() else {
        return ScimError::not_found(format!("no SCIM tenant `{tenant_id}`")).to_response(version);
    };
    // Secrets in the path or query (`?access_token=...`) reach neither traces nor the log.
    let raw_path = format!("/{rest}");
    let path = mask_target(&raw_path, None);
    let target = mask_target(&raw_path, uri.query());
    let span = info_span!("scim_request", tenant = %tenant.id, %method, path = %path);
    async move {
        let client = access::client_address(peer, &headers, &tenant.settings.trusted_proxies);
        let mut request_body = Bytes::new();
        // Until authenticated, a refusal is logged under the rejected cap (events::retention).
        let mut authenticated = false;
        // A write's transaction, left for the event to join (write::commit).
        let mut pending = None;
        let result = async {
            access::check_allowed(&tenant.settings, client)?;
            access::check_guessing(&server.failures, &tenant, client)?;
            // Credentials first: requests that fail them must not spend the tenant's rate.
            if let Err(error) = access::authenticate(&server, &tenant, &headers).await {
                return Err(access::count_failure(&server.failures, client, error));
            }
            access::check_rate(&tenant.limiter)?;
            authenticated = true;
            request_body = tokio::time::timeout(
                server.options.body_read_timeout,
                access::read_body(body, server.options.max_body_bytes),
            )
            .await
            .map_err(|_| {
                ScimError::new(
                    408,
                    None,
                    format!(
                        "the request body did not arrive within {} seconds (body_read_timeout_seconds)",
                        server.options.body_read_timeout.as_secs()
                    ),
                )
            })??;
            if let Some(target) = uri.path_and_query() {
                limits::reject_nul_in_target(target.as_str())?;
            }
            let origin = access::public_base(&tenant.settings, peer, local, &headers);
            let call = Call {
                server: &server,
                tenant: &tenant,
                version,
                base: format!("{origin}/scim/{}/{version_text}", tenant.id),
                query: uri.query(),
                headers: &headers,
                body: request_body.clone(),
                pending: std::sync::Mutex::new(None),
            };
            let outcome = match tokio::time::timeout(
                server.options.request_timeout,
                dispatch(&call, &method, &rest),
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
            pending = call.take_pending().filter(|_| outcome.is_ok());
            outcome
        }
        .await;
        let operation_fallback = || format!("{method} {path}");
        let (mut response, status, operation, response_body) = match result {
            Ok(reply) => {
                let status = reply.status;
                // What the event log keeps (redacted and cut) before the body moves out:
                // no second copy of a large page.
                let logged = reply.body.as_deref().and_then(loggable);
                let response = render(
                    reply.status,
                    reply.body,
                    version,
                    reply.etag,
                    reply.location,
                );
                (response, status.as_u16(), reply.operation, logged)
            }
            Err(error) => {
                if error.is_server_error() {
                    warn!(%error, "SCIM request failed");
                }
                let text = error.body(version).to_string();
                (
                    error.to_response(version),
                    error.status,
                    format!(
                        "{} (failed: {})",
                        operation_fallback(),
                        error.client_detail()
                    ),
                    loggable(&text),
                )
            }
        };
        let duration = started.elapsed();
        let mut event = Event {
            id: None,
            tenant: tenant.id.clone(),
            at: crate::db::now_text(),
            method: method.to_string(),
            path: target,
            status,
            duration_ms: duration.as_secs_f64() * 1000.0,
            operation,
            client: Some(client.to_string()),
            request_body: loggable_body(&request_body),
            response_body,
            rejected: !authenticated,
        };
        let mut stored = false;
        if let Some(pending) = pending {
            // Committed with its event before the answer goes out.
            match write::commit(&server, &tenant.id, pending, &event).await {
                Ok(()) => stored = true,
                Err(error) => {
                    warn!(%error, "SCIM write could not be committed");
                    event.status = error.status;
                    event.operation =
                        format!("{} (failed: {})", event.operation, error.client_detail());
                    event.response_body = loggable_body(error.body(version).to_string().as_bytes());
                    response = error.to_response(version);
                }
            }
        }
        let status = event.status;
        tracing::info!(status, duration_ms = event.duration_ms, "SCIM request");
        if stored {
            server.events.trim_later(&tenant.id);
        } else {
            server.events.record(event);
        }
        crate::metrics::SCIM_REQUESTS
            .with_label_values(&[tenant.id.as_str(), status.to_string().as_str()])
            .inc();
        crate::metrics::SCIM_SECONDS
            .with_label_values(&[tenant.id.as_str()])
            .observe(duration.as_secs_f64());
        response
    }
    .instrument(span)
    .await
}

/// A body as the event log keeps it, holding no more memory than its (capped) length:
/// queued events must not each pin a whole list page.
fn loggable(body: &str) -> Option<String> {
    loggable_body(body.as_bytes()).map(|mut text| {
        text.shrink_to_fit();
        text
    })
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
        (["Users"], &Method::GET) => users::list(call).await,
        (["Users"], &Method::POST) => users::create(call).await,
        (["Users", ".search"], &Method::POST) => users::search(call).await,
        (["Users", id], &Method::GET) => users::get(call, id).await,
        (["Users", id], &Method::PUT) => users::replace(call, id).await,
        (["Users", id], &Method::PATCH) => users::patch(call, id).await,
        (["Users", id], &Method::DELETE) => users::delete(call, id).await,
        (["Users"] | ["Users", _], _) => not_allowed(),
        (["Groups"], &Method::GET) => groups::list(call).await,
        (["Groups"], &Method::POST) => groups::create(call).await,
        (["Groups", ".search"], &Method::POST) => groups::search(call).await,
        (["Groups", id], &Method::GET) => groups::get(call, id).await,
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
