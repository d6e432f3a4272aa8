//! The admin API of `idsync serve`, on its own listener (default 127.0.0.1:5502). Every
//! endpoint but the probes and `/metrics` needs `Authorization: Bearer <admin token>` (from
//! `idsync admin-token create`, or `[admin] token`), also on loopback; requests that a
//! browser labels as coming from another origin are refused whatever they carry:
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET /healthz` | the process is alive |
//! | `GET /readyz` | the database answers and is migrated, and the SCIM listener can accept (503 with the reason otherwise) |
//! | `GET /metrics` | Prometheus text format (see `crate::metrics`) |
//! | `GET /api/connectors` | every connector: kind, schedule, next run, running, last run |
//! | `POST /api/connectors/{id}/run` | start a run now (202; 409 when running here or on another node; 404) |
//! | `GET /api/runs?connector=&limit=` | recent runs |
//! | `GET /api/events?tenant=&status=&since=&limit=` | the SCIM event log |
//! | `GET /api/held` | held pull runs and held SCIM tenants |
//! | `POST /api/held/{connector}/confirm` | apply what is held (deletion limits lifted) |
//! | `POST /api/held/{connector}/discard` | drop a held pull run (a SCIM hold cannot be) |
//! | `GET /api/audit?since=&limit=` | the audit trail: who confirmed, discarded, ran, changed tokens |

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Launcher;
use super::actions::{self, ActionError, Confirmed};
use super::origin::AllowedOrigins;
use super::reload::LiveConfig;
use crate::config::SecretString;
use crate::db::{Db, DbError};
use crate::scheduler::SchedulerHandle;
use crate::store::admin_tokens;
use crate::store::audit;
use crate::store::events::{self, EventQuery};
use crate::store::runs;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The configuration, as reloads leave it.
    pub config: LiveConfig,
    pub db: Db,
    pub scheduler: SchedulerHandle,
    pub launcher: Arc<Launcher>,
    /// The token of `[admin] token`, if configured (its actor name is `config`).
    pub token: Option<SecretString>,
    /// The browser origins that are this listener.
    pub origins: AllowedOrigins,
    /// The SCIM listener's health, for `/readyz` (None when not serving SCIM).
    pub scim_health: Option<crate::scim::server::ScimHealth>,
    /// Failed sign-ins on the admin pages allowed per minute (then 429).
    pub sign_in_failures: Arc<governor::DefaultDirectRateLimiter>,
    /// Reloads the configuration from disk, as SIGHUP does (the mapping preview's apply).
    pub reloader: super::reload::Reloader,
}

/// Failed sign-ins the admin pages take per minute before answering 429: a guessed token
/// cannot succeed (244 random bits), but each guess costs a database read.
pub const SIGN_IN_FAILURES_PER_MINUTE: u32 = 20;

/// The limiter of failed sign-ins for [`AdminState::sign_in_failures`].
pub fn sign_in_limiter() -> Arc<governor::DefaultDirectRateLimiter> {
    let per_minute =
        std::num::NonZeroU32::new(SIGN_IN_FAILURES_PER_MINUTE).unwrap_or(std::num::NonZeroU32::MIN);
    Arc::new(governor::RateLimiter::direct(governor::Quota::per_minute(
        per_minute,
    )))
}

/// Who made an authenticated admin request: the admin token's name.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// The actor name of the `[admin] token` of idsync.toml.
pub const CONFIG_TOKEN_ACTOR: &str = "config";

type Shared = State<Arc<AdminState>>;

fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": detail.into()}))).into_response()
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::warn!(%error, "admin request failed");
    problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(Arc::new(state)))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The admin routes.
pub fn router(state: Arc<AdminState>) -> Router {
    let protected = Router::new()
        .route("/api/connectors", get(connectors))
        .route("/api/connectors/{id}/run", post(run_now))
        .route("/api/runs", get(recent_runs))
        .route("/api/events", get(event_log))
        .route("/api/held", get(held))
        .route("/api/held/{id}/confirm", post(confirm))
        .route("/api/held/{id}/discard", post(discard))
        .route("/api/audit", get(audit_trail))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(protected)
        .merge(super::pages::router(state.clone()))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_origin_only,
        ))
        .with_state(state)
}

/// Refuses what a browser sends on behalf of another site (403), before anything else.
async fn same_origin_only(State(state): Shared, request: Request, next: Next) -> Response {
    match state.origins.refusal(request.headers()) {
        None => next.run(request).await,
        Some(why) => {
            tracing::warn!(reason = %why, path = %request.uri().path(), "admin request refused");
            problem(StatusCode::FORBIDDEN, why)
        }
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut response = problem(StatusCode::UNAUTHORIZED, detail);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"idsync-admin\""),
    );
    response
}

/// Lets the request through with its [`Actor`] when it carries an active admin token.
async fn require_token(State(state): Shared, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if presented.is_empty() {
        return unauthorized(
            "the admin API needs `Authorization: Bearer <admin token>`; create one with \
             `idsync admin-token create <name>`",
        );
    }
    let actor = match identify(&state, &presented).await {
        Ok(found) => found.map(|who| who.actor),
        Err(e) => return internal(e),
    };
    match actor {
        Some(name) => {
            request.extensions_mut().insert(Actor(name));
            next.run(request).await
        }
        None => unauthorized("the admin token is not valid (unknown, revoked or expired)"),
    }
}

/// Who presented an admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's name, the actor in the audit trail.
    pub actor: String,
    /// The created token's id; None for the `[admin] token` of idsync.toml.
    pub token_id: Option<String>,
}

/// Whose admin token `presented` is: the `[admin] token` of idsync.toml (compared in
/// constant time) or an active created token.
pub async fn identify(state: &AdminState, presented: &str) -> Result<Option<Identity>, DbError> {
    let config_match = state
        .token
        .as_ref()
        .is_some_and(|t| bool::from(presented.as_bytes().ct_eq(t.expose().as_bytes())));
    if config_match {
        return Ok(Some(Identity {
            actor: CONFIG_TOKEN_ACTOR.to_string(),
            token_id: None,
        }));
    }
    Ok(admin_tokens::verify(&state.db, presented)
        .await?
        .map(|token| Identity {
            actor: token.name,
            token_id: Some(token.id),
        }))
}

async fn ready(State(state): Shared) -> Response {
    let scim = || state.scim_health.as_ref().and_then(|h| h.problem());
    match state
        .db
        .ready()
        .await
        .and_then(|()| scim().map_or(Ok(()), Err))
    {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "reason": reason})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): Shared) -> Response {
    super::run_metrics::refresh_held(&state.db).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

/// A connector as the overview shows it (the JSON of `GET /api/connectors`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectorStatus {
    pub id: String,
    pub kind: &'static str,
    pub enabled: bool,
    pub mapping: String,
    pub schedule: Option<String>,
    pub next_run: Option<String>,
    pub running: bool,
    pub last_result: Option<String>,
    pub skipped_overlaps: u64,
    pub last_run: Option<runs::RunRecord>,
}

/// Every configured connector (or only connector `only`) with its schedule, whether it
/// runs and its last run.
pub async fn connector_statuses(
    state: &AdminState,
    only: Option<&str>,
) -> Result<Vec<ConnectorStatus>, DbError> {
    let status: HashMap<String, crate::scheduler::JobStatus> = state
        .scheduler
        .status()
        .into_iter()
        .map(|s| (s.connector.clone(), s))
        .collect();
    let mut out = Vec::new();
    let config = state.config.current();
    let chosen = config
        .connectors
        .values()
        .filter(|c| only.is_none_or(|id| c.id == id));
    for connector in chosen {
        let last = runs::recent_runs(state.db.pool(), Some(&connector.id), 1)
            .await?
            .pop();
        let job = status.get(&connector.id);
        out.push(ConnectorStatus {
            id: connector.id.clone(),
            kind: connector.settings.kind(),
            enabled: connector.enabled,
            mapping: connector.mapping.clone(),
            schedule: connector.schedule.as_ref().map(|s| s.text.clone()),
            next_run: job.and_then(|j| j.next_run).map(|t| t.to_rfc3339()),
            running: job.is_some_and(|j| j.running),
            last_result: job.and_then(|j| j.last_result.clone()),
            skipped_overlaps: job.map_or(0, |j| j.skipped_overlaps),
            last_run: last,
        });
    }
    Ok(out)
}

async fn connectors(State(state): Shared) -> Response {
    match connector_statuses(&state, None).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => internal(e),
    }
}

async fn run_now(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match actions::run_now(&state, &actor, &id).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"connector": id, "started": true})),
        )
            .into_response(),
        Err(e) => action_problem(e),
    }
}

fn action_problem(error: ActionError) -> Response {
    problem(error.status(), error.to_string())
}

async fn recent_runs(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    match runs::recent_runs(
        state.db.pool(),
        q.get("connector").map(String::as_str),
        limit,
    )
    .await
    {
        Ok(runs) => axum::Json(runs).into_response(),
        Err(e) => internal(e),
    }
}

async fn event_log(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let status = match q.get("status").map(|s| s.parse::<events::StatusMatch>()) {
        Some(Err(message)) => return problem(StatusCode::BAD_REQUEST, message),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let query = EventQuery {
        tenant: q.get("tenant").cloned(),
        status,
        since: q.get("since").cloned(),
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100),
        ..EventQuery::default()
    };
    match events::query(&state.db, &query).await {
        Ok(found) => axum::Json(found).into_response(),
        Err(e) => internal(e),
    }
}

async fn held(State(state): Shared) -> Response {
    let pulled = match runs::held_runs(state.db.pool()).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let tenants = match crate::store::holds::list(&state.db).await {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    axum::Json(json!({"runs": pulled, "tenants": tenants})).into_response()
}

async fn confirm(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match actions::confirm(&state, &actor, &id).await {
        Ok(Confirmed::Tenant(report)) => {
            axum::Json(json!({"connector": id, "report": report})).into_response()
        }
        Ok(Confirmed::Run(run)) => axum::Json(json!({"connector": id, "run": run})).into_response(),
        Err(e) => action_problem(e),
    }
}

async fn discard(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match actions::discard(&state, &actor, &id).await {
        Ok(run) => axum::Json(json!({"connector": id, "discarded_run": run})).into_response(),
        Err(e) => action_problem(e),
    }
}

async fn audit_trail(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    match audit::list(&state.db, q.get("since").map(String::as_str), limit).await {
        Ok(entries) => axum::Json(entries).into_response(),
        Err(e) => internal(e),
    }
}
