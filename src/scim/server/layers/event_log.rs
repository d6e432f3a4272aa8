//! Writes every request that reached a tenant to its event log: what was done (or why it
//! was refused), by whom, with the bodies masked and cut (`crate::store::events`).
//!
//! A write's transaction is still open when its answer gets here ([`PendingWrite`]): the
//! event joins it and both are committed before the answer goes out, so a write answered
//! 2xx has its event stored with it. A failed commit turns the answer into that error.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tracing::warn;

use super::{Admitted, Answered, PendingWrite, RequestBody, Route, loggable};
use crate::scim::error::ScimError;
use crate::scim::server::{ScimServer, write};
use crate::store::events::{Event, loggable_body};

pub(super) async fn record(
    State(server): State<Arc<ScimServer>>,
    Extension(route): Extension<Arc<Route>>,
    method: Method,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let version = route.version;
    let extensions = response.extensions_mut();
    // Until authenticated, a refusal is logged under the rejected cap (events::retention).
    let admitted = extensions.remove::<Admitted>().is_some();
    let request_body = extensions.remove::<RequestBody>().map(|b| b.0);
    let pending = extensions.remove::<PendingWrite>().and_then(|p| p.take());
    let answered = extensions.remove::<Answered>();
    let (operation, response_body) = match extensions.remove::<ScimError>() {
        Some(error) => {
            if error.is_server_error() {
                warn!(%error, "SCIM request failed");
            }
            let operation = format!(
                "{method} {} (failed: {})",
                route.path,
                error.client_detail()
            );
            (operation, loggable(&error.body(version).to_string()))
        }
        None => match answered {
            Some(answered) => (answered.operation, answered.logged_body),
            None => (format!("{method} {}", route.path), None),
        },
    };
    let duration = route.started.elapsed();
    let mut event = Event {
        id: None,
        tenant: route.tenant.id.clone(),
        at: crate::db::now_text(),
        method: method.to_string(),
        path: route.target.clone(),
        status: response.status().as_u16(),
        duration_ms: duration.as_secs_f64() * 1000.0,
        operation,
        client: Some(route.client.to_string()),
        request_body: request_body.as_deref().and_then(loggable_body),
        response_body,
        rejected: !admitted,
    };
    let mut stored = false;
    if let Some(pending) = pending {
        // Committed with its event before the answer goes out.
        match write::commit(&server, &route.tenant.id, pending, &event).await {
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
    tracing::info!(
        status = event.status,
        duration_ms = event.duration_ms,
        "SCIM request"
    );
    if stored {
        server.events.trim_later(&route.tenant.id);
    } else {
        server.events.record(event);
    }
    response
}
