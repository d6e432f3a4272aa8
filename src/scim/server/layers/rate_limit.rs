//! The tenant's request rate (429 with `Retry-After` beyond it). It sits inside
//! authentication so that only authenticated requests spend it; a request it lets through
//! is marked [`Admitted`] for the event log.

use std::sync::Arc;

use axum::Extension;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::{Admitted, Route, refuse};
use crate::scim::error::ScimError;

pub(super) async fn check(
    Extension(route): Extension<Arc<Route>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(error) = within_rate(&route.tenant.limiter) {
        return refuse(error, route.version);
    }
    let mut response = next.run(request).await;
    response.extensions_mut().insert(Admitted);
    response
}

fn within_rate(limiter: &governor::DefaultDirectRateLimiter) -> Result<(), ScimError> {
    use governor::clock::Clock;
    match limiter.check() {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Err(ScimError::too_many_requests(
                "too many requests for this tenant; retry after the time in Retry-After",
                secs.max(1),
            ))
        }
    }
}
