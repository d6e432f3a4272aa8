//! The request's credentials against the tenant's (bearer tokens or HTTP Basic, compared
//! in constant time), with the client's budget of failed authentications
//! (`server::failures`): a failure within the budget is answered 401, beyond it 429 with
//! `Retry-After`. Server errors are passed through uncounted.
//!
//! For tenants with HTTP Basic credentials (a password a person chose, not a random
//! token), a client that used up its budget is refused before its password is looked at,
//! so guessing stays limited to the budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use subtle::ConstantTimeEq;
use tracing::warn;

use super::{Route, refuse};
use crate::config::TenantAuth;
use crate::scim::error::ScimError;
use crate::scim::server::failures::AuthFailures;
use crate::scim::server::{ScimServer, Tenant};
use crate::store::tokens;

/// A token's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// When each token's use was last written.
#[derive(Default)]
pub(crate) struct TokenTouches(Mutex<HashMap<String, Instant>>);

impl TokenTouches {
    fn due(&self, token_id: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get(token_id) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                seen.insert(token_id.to_string(), now);
                true
            }
        }
    }
}

pub(super) async fn check(
    State(server): State<Arc<ScimServer>>,
    Extension(route): Extension<Arc<Route>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(error) = check_guessing(&server.failures, &route.tenant, route.client) {
        return refuse(error, route.version);
    }
    if let Err(error) = authenticate(&server, &route.tenant, request.headers()).await {
        let error = count_failure(&server.failures, route.client, error);
        return refuse(error, route.version);
    }
    next.run(request).await
}

fn too_many_failures(client: IpAddr, secs: u64) -> ScimError {
    ScimError::too_many_requests(
        format!(
            "too many failed authentications from {client}; retry after the time in \
             Retry-After"
        ),
        secs,
    )
}

/// A Basic tenant's client that used up its budget, refused unheard.
fn check_guessing(
    failures: &AuthFailures,
    tenant: &Tenant,
    client: IpAddr,
) -> Result<(), ScimError> {
    if !matches!(tenant.settings.auth, TenantAuth::Basic { .. }) {
        return Ok(());
    }
    match failures.blocked(client, Instant::now()) {
        None => Ok(()),
        Some(secs) => Err(too_many_failures(client, secs)),
    }
}

/// A failed authentication, counted against the client's budget.
fn count_failure(failures: &AuthFailures, client: IpAddr, error: ScimError) -> ScimError {
    if error.status != 401 {
        return error;
    }
    match failures.fail(client, Instant::now()) {
        None => error,
        Some(secs) => too_many_failures(client, secs),
    }
}

/// Checks the request's credentials against the tenant's.
async fn authenticate(
    server: &ScimServer,
    tenant: &Tenant,
    headers: &HeaderMap,
) -> Result<(), ScimError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let Some(value) = value else {
        return Err(ScimError::unauthorized(
            "this tenant needs credentials in the Authorization header",
        ));
    };
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    match &tenant.settings.auth {
        TenantAuth::Bearer => {
            if !scheme.eq_ignore_ascii_case("bearer") || credentials.is_empty() {
                return Err(ScimError::unauthorized(
                    "this tenant takes a bearer token: Authorization: Bearer <token>",
                ));
            }
            let found = tokens::verify(&server.db, &tenant.id, credentials).await?;
            let Some(token_id) = found else {
                return Err(ScimError::unauthorized(
                    "the bearer token is not valid for this tenant (unknown, expired or revoked)",
                ));
            };
            if server.access.due(&token_id) {
                // Best effort: a failed bookkeeping write must not fail the request.
                if let Err(error) = tokens::touch(&server.db, &token_id).await {
                    warn!(%error, "could not record the token's use");
                }
            }
            Ok(())
        }
        TenantAuth::Basic { username, password } => {
            let decoded = scheme
                .eq_ignore_ascii_case("basic")
                .then(|| {
                    base64::engine::general_purpose::STANDARD
                        .decode(credentials)
                        .ok()
                })
                .flatten()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let Some(decoded) = decoded else {
                return Err(ScimError::unauthorized(
                    "this tenant takes HTTP Basic credentials: Authorization: Basic <base64>",
                ));
            };
            let (user, pass) = decoded.split_once(':').unwrap_or((&decoded, ""));
            // Both compared, in constant time, whatever the first gave.
            let user_ok = user.as_bytes().ct_eq(username.as_bytes());
            let pass_ok = pass.as_bytes().ct_eq(password.expose().as_bytes());
            if bool::from(user_ok & pass_ok) {
                Ok(())
            } else {
                Err(ScimError::unauthorized(
                    "the user name or password is not valid for this tenant",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_credential_failures_spend_the_budget() {
        let failures = AuthFailures::new(1);
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        // A server error is the server's fault: passed through, not counted.
        let broken = count_failure(&failures, client, ScimError::internal("db down"));
        assert_eq!(broken.status, 500);
        let first = count_failure(&failures, client, ScimError::unauthorized("bad token"));
        assert_eq!(first.status, 401);
        let second = count_failure(&failures, client, ScimError::unauthorized("bad token"));
        assert_eq!(second.status, 429);
        assert!(second.retry_after_secs.is_some());
    }
}
