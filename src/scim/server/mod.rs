//! The SCIM server: one axum listener for every tenant (`/scim/{tenant}/v2/...`, and
//! `/scim/{tenant}/v1/...` for SCIM 1.1), separate from the admin listener.
//!
//! Every request passes the same layers (`layers`), in this order: find the tenant and
//! version, count it (`metrics`), log it (the event log), check the client's address
//! against the tenant's allowlist, its credentials (failures count against the client's
//! own budget, see `failures`), the tenant's rate limit, and read the body within the size
//! limit and the body timeout. The one handler behind them (`dispatch`) routes by path and
//! method within the request timeout.
//! Writes change the tenant's mirror and project the change into the target in one
//! transaction (`write`), so an IdP's request either lands whole or not at all. Each
//! request ends up in the event log (`crate::store::events`).

mod access;
mod call;
mod dispatch;
mod failures;
mod groups;
mod layers;
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
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};

use crate::config::{Config, ConnectorSettings, MappingConfig, ScimTenantSettings};
use crate::db::Db;
use crate::scim::error::ScimError;
use crate::store::events::{EventLog, Retention};

pub use crate::config::{ResourceLimits, ServerOptions};
pub(crate) use call::{Call, Reply};
pub use limits::MAX_IDENTIFIER_CHARS;
pub use listener::ScimHealth;

/// One tenant as the server runs it.
pub struct Tenant {
    pub id: String,
    pub settings: ScimTenantSettings,
    /// Shared by the tenants of one mapping (hundreds of tenants often share one).
    pub mapping: Arc<MappingConfig>,
    limiter: governor::DefaultDirectRateLimiter,
    /// Removals within the window before the tenant is held.
    pub max_removals: u64,
    /// Requests that recorded removals (to prune old records now and then).
    removal_writes: std::sync::atomic::AtomicU64,
    /// The directory its writes are projected into (`[target]`).
    pub target: crate::target::TargetKind,
}

impl Tenant {
    /// The tenant writing into `target` instead of the SQL target.
    pub fn with_target(self, target: crate::target::TargetKind) -> Tenant {
        Tenant { target, ..self }
    }

    pub fn new(
        id: &str,
        settings: ScimTenantSettings,
        mapping: impl Into<Arc<MappingConfig>>,
    ) -> Tenant {
        let mapping = mapping.into();
        let quota =
            governor::Quota::per_second(settings.requests_per_second).allow_burst(settings.burst);
        Tenant {
            id: id.to_string(),
            max_removals: settings.max_removals.unwrap_or(mapping.limits.max_deletes),
            limiter: governor::RateLimiter::direct(quota),
            removal_writes: std::sync::atomic::AtomicU64::new(0),
            target: crate::target::TargetKind::Sql,
            settings,
            mapping,
        }
    }
}

/// The server's shared state.
pub struct ScimServer {
    db: Db,
    /// Replaced whole on a configuration reload; a request holds on to the tenant it
    /// started with.
    tenants: std::sync::RwLock<HashMap<String, Arc<Tenant>>>,
    options: ServerOptions,
    events: EventLog,
    access: layers::TokenTouches,
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
            tenants: std::sync::RwLock::new(by_id(tenants)),
            failures: failures::AuthFailures::new(options.auth_failures_per_minute),
            health: ScimHealth::new(options.max_connections),
            options,
            events,
            access: layers::TokenTouches::default(),
        }
    }

    /// The tenants of a configuration: its enabled `kind = "scim"` connectors.
    pub fn tenants_of(config: &Config) -> Vec<Tenant> {
        let mut mappings: HashMap<String, Arc<MappingConfig>> = HashMap::new();
        config
            .connectors
            .values()
            .filter(|c| c.enabled)
            .filter_map(|c| match &c.settings {
                ConnectorSettings::Scim(settings) => {
                    let mapping = config.mapping_for(c);
                    let shared = mappings
                        .entry(mapping.name.clone())
                        .or_insert_with(|| Arc::new(mapping.clone()))
                        .clone();
                    Some(
                        Tenant::new(&c.id, settings.clone(), shared)
                            .with_target(config.engine.target.clone()),
                    )
                }
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

    /// The tenant `id`, as configured now.
    pub fn tenant(&self, id: &str) -> Option<Arc<Tenant>> {
        self.tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Serves `tenants` from now on (a configuration reload). Requests in flight finish
    /// with the tenant they started with; a tenant's rate limit starts afresh.
    pub fn replace_tenants(&self, tenants: Vec<Tenant>) {
        *self
            .tenants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = by_id(tenants);
    }

    pub fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
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

    /// The router: everything under `/scim/{tenant}/{version}/`, one handler behind the
    /// layers (`layers`) that resolve, admit, log and count each request.
    pub fn router(self: Arc<Self>) -> Router {
        let routes = Router::new()
            .route(
                "/scim/{tenant}/{version}",
                axum::routing::any(dispatch::handle),
            )
            .route(
                "/scim/{tenant}/{version}/{*rest}",
                axum::routing::any(dispatch::handle),
            );
        layers::around(routes, &self)
            .fallback(not_found)
            .with_state(self)
    }
}

fn by_id(tenants: Vec<Tenant>) -> HashMap<String, Arc<Tenant>> {
    tenants
        .into_iter()
        .map(|t| (t.id.clone(), Arc::new(t)))
        .collect()
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
