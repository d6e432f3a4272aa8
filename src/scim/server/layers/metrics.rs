//! Counts each request by tenant and final status (after the event log's commit, which
//! may still turn a write into an error) and observes how long it took.

use std::sync::Arc;

use axum::Extension;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::Route;

pub(super) async fn count(
    Extension(route): Extension<Arc<Route>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let tenant = route.tenant.id.as_str();
    crate::metrics::SCIM_REQUESTS
        .with_label_values(&[tenant, response.status().as_str()])
        .inc();
    crate::metrics::SCIM_SECONDS
        .with_label_values(&[tenant])
        .observe(route.started.elapsed().as_secs_f64());
    response
}
