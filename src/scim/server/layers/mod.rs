//! The edges every SCIM request passes before a handler sees it, as tower layers around
//! the router's two tenant routes, outermost first:
//!
//! 1. `tenant`: the version and the tenant from the path (404 for neither, not logged),
//!    the client's address, the trace span;
//! 2. `metrics`: counts the request by its final status and times it;
//! 3. `event_log`: writes the request to the event log, and commits a write's pending
//!    transaction together with its event before the answer goes out;
//! 4. `allowlist`: the client's address against the tenant's `allow_from`;
//! 5. `authentication`: the credentials, with the client's failure budget;
//! 6. `rate_limit`: the tenant's request rate, spent only by authenticated requests;
//! 7. `body_limit`: reads the body within the size limit and the body deadline.
//!
//! The order is the contract: credentials before the tenant's rate (a flood of bad
//! tokens never spends its quota), nothing reads the body of a request not yet
//! admitted, and the event log sees every refusal of the layers inside it.
//!
//! Layers hand the request on with what they found in its extensions ([`Route`],
//! [`RequestBody`]); what the event log needs back travels in the response's extensions
//! (the error a layer or handler refused with, the handler's [`Answered`], [`Admitted`],
//! the body read, a [`PendingWrite`]), taken out again by the event log.

mod allowlist;
mod authentication;
mod body_limit;
mod event_log;
mod metrics;
mod rate_limit;
mod tenant;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;

pub(super) use authentication::TokenTouches;

use super::ScimServer;
use super::Tenant;
use super::write::Pending;
use crate::scim::error::{ScimError, ScimVersion};

/// `router`'s routes wrapped in the layers, outermost first (see the module
/// documentation). Route layers: the fallback's 404 passes none of them.
pub(super) fn around(
    router: Router<Arc<ScimServer>>,
    server: &Arc<ScimServer>,
) -> Router<Arc<ScimServer>> {
    router.route_layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(server.clone(), tenant::resolve))
            .layer(from_fn(metrics::count))
            .layer(from_fn_with_state(server.clone(), event_log::record))
            .layer(from_fn(allowlist::check))
            .layer(from_fn_with_state(server.clone(), authentication::check))
            .layer(from_fn(rate_limit::check))
            .layer(from_fn_with_state(server.clone(), body_limit::read)),
    )
}

/// Which tenant and version a request is for, and from whom (set by `tenant`).
pub(crate) struct Route {
    pub tenant: Arc<Tenant>,
    pub version: ScimVersion,
    /// The path below the version (`/Users/42`), as routed.
    pub rest: String,
    /// `rest` with secrets masked, for traces and messages.
    pub path: String,
    /// The path and query with secrets masked, for the event log.
    pub target: String,
    /// The client's address (`access::client_address`).
    pub client: IpAddr,
    /// When the request arrived.
    pub started: Instant,
}

/// The request's body, read within its limits (set by `body_limit`; on the response, for
/// the event log).
#[derive(Clone)]
pub(crate) struct RequestBody(pub Bytes);

/// On a response: the request passed its credentials and the tenant's rate (set by
/// `rate_limit`). Without it the event is logged under the rejected cap.
#[derive(Clone, Copy)]
pub(crate) struct Admitted;

/// On a response: what a handler did, and its body as the event log keeps it.
#[derive(Clone)]
pub(crate) struct Answered {
    pub operation: String,
    pub logged_body: Option<String>,
}

/// On a response: a write's transaction, to be committed with the request's event.
#[derive(Clone)]
pub(crate) struct PendingWrite(Arc<Mutex<Option<Pending>>>);

impl PendingWrite {
    pub fn new(pending: Pending) -> PendingWrite {
        PendingWrite(Arc::new(Mutex::new(Some(pending))))
    }

    fn take(&self) -> Option<Pending> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A refusal: the error rendered for `version`, and carried along for the event log.
pub(crate) fn refuse(error: ScimError, version: ScimVersion) -> Response {
    let mut response = error.to_response(version);
    response.extensions_mut().insert(error);
    response
}

/// What a handler gets from the layers: the request's route and its body. A request
/// without them did not come through [`stack`], which is the server's own fault.
pub(crate) struct Admission {
    pub route: Arc<Route>,
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequestParts<S> for Admission {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let route = parts.extensions.get::<Arc<Route>>().cloned();
        let body = parts.extensions.get::<RequestBody>().cloned();
        match (route, body) {
            (Some(route), Some(RequestBody(body))) => Ok(Admission { route, body }),
            _ => Err(
                ScimError::internal("a SCIM request reached its handler without the layers")
                    .into_response(),
            ),
        }
    }
}

/// A body as the event log keeps it, holding no more memory than its (capped) length:
/// queued events must not each pin a whole list page.
pub(crate) fn loggable(body: &str) -> Option<String> {
    crate::store::events::loggable_body(body.as_bytes()).map(|mut text| {
        text.shrink_to_fit();
        text
    })
}
