//! Reads an admitted request's whole body within the server's size limit (413) and body
//! deadline (408), so that handlers get it as bytes and a slow or endless body never
//! holds a handler. The bytes also go back on the response, for the event log.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{RequestBody, Route, refuse};
use crate::scim::error::ScimError;
use crate::scim::server::ScimServer;

pub(super) async fn read(
    State(server): State<Arc<ScimServer>>,
    Extension(route): Extension<Arc<Route>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let deadline = server.options.body_read_timeout;
    let bytes = match tokio::time::timeout(deadline, whole(body, server.options.max_body_bytes))
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return refuse(error, route.version),
        Err(_) => {
            let error = ScimError::new(
                408,
                None,
                format!(
                    "the request body did not arrive within {} seconds (body_read_timeout_seconds)",
                    deadline.as_secs()
                ),
            );
            return refuse(error, route.version);
        }
    };
    parts.extensions.insert(RequestBody(bytes.clone()));
    let mut response = next.run(Request::from_parts(parts, Body::empty())).await;
    response.extensions_mut().insert(RequestBody(bytes));
    response
}

/// The whole body, or 413 when it is larger than `limit`.
async fn whole(body: Body, limit: usize) -> Result<Bytes, ScimError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ScimError::payload_too_large(format!(
            "the request body is larger than the limit of {limit} bytes"
        ))
    })
}
