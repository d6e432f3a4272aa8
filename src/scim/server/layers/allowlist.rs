//! Refuses (403) a client whose address is outside the tenant's `allow_from` list, before
//! its credentials are looked at.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::{Route, refuse};
use crate::config::ScimTenantSettings;
use crate::scim::error::ScimError;

pub(super) async fn check(
    Extension(route): Extension<Arc<Route>>,
    request: Request,
    next: Next,
) -> Response {
    match allowed(&route.tenant.settings, route.client) {
        Ok(()) => next.run(request).await,
        Err(error) => refuse(error, route.version),
    }
}

fn allowed(settings: &ScimTenantSettings, client: IpAddr) -> Result<(), ScimError> {
    if settings.allow_from.is_empty() || settings.allow_from.iter().any(|n| n.contains(&client)) {
        Ok(())
    } else {
        Err(ScimError::forbidden(format!(
            "client address {client} is not in this tenant's allow_from list"
        )))
    }
}

#[cfg(test)]
mod tests {
    use ipnet::IpNet;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn allowlists_match_cidr_blocks() {
        let settings = ScimTenantSettings {
            allow_from: nets(&["203.0.113.0/24", "::1/128"]),
            ..ScimTenantSettings::default()
        };
        assert!(allowed(&settings, "203.0.113.200".parse().unwrap()).is_ok());
        assert!(allowed(&settings, "::1".parse().unwrap()).is_ok());
        let err = allowed(&settings, "198.51.100.1".parse().unwrap()).unwrap_err();
        assert_eq!(err.status, 403);
        assert!(allowed(&ScimTenantSettings::default(), "1.1.1.1".parse().unwrap()).is_ok());
    }
}
