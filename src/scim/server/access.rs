//! Who may call a tenant: the client's address (believing `X-Forwarded-For` only from
//! configured proxies) against the tenant's allowlist, its credentials (bearer tokens or
//! HTTP Basic, compared in constant time), the tenant's request rate, and the body size
//! limit.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use base64::Engine;
use ipnet::IpNet;
use subtle::ConstantTimeEq;
use tracing::warn;

use super::{ScimServer, Tenant};
use crate::config::{ScimTenantSettings, TenantAuth};
use crate::scim::error::ScimError;
use crate::scim::tokens;

/// A token's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// When each token's use was last written.
#[derive(Default)]
pub(super) struct TokenTouches(Mutex<HashMap<String, Instant>>);

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

fn trusted(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub(super) fn client_address(peer: SocketAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let mut client = peer.ip().to_canonical();
    if !trusted(proxies, client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    // Walk from the nearest hop back; stop at the first address no trusted proxy vouches
    // for (anything further left could have been written by the client itself). A hop
    // that does not parse was written by someone no trusted proxy vouches for either: the
    // client is the last address before it, never the proxy itself.
    for hop in hops.into_iter().rev() {
        let Some(address) = parse_hop(hop) else {
            break;
        };
        client = address.to_canonical();
        if !trusted(proxies, client) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port` or `[ipv6]:port` (some proxies append
/// the client's port).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Where the client reaches this server (`scheme://host[:port][/prefix]`), for the URLs
/// in answers: the tenant's `public_base_url`; else, from a trusted proxy only, its
/// `X-Forwarded-Proto` and `X-Forwarded-Host`; else the listener's own address. Never
/// the client's `Host` header, which anyone can forge.
pub(super) fn public_base(
    settings: &ScimTenantSettings,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    headers: &HeaderMap,
) -> String {
    if let Some(base) = &settings.public_base_url {
        return base.clone();
    }
    if trusted(&settings.trusted_proxies, peer.ip().to_canonical())
        && let Some(host) = forwarded(headers, "x-forwarded-host")
            .filter(|h| !h.contains('@'))
            .filter(|h| h.parse::<axum::http::uri::Authority>().is_ok())
    {
        let scheme = match forwarded(headers, "x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        return format!("{scheme}://{host}");
    }
    match local {
        Some(addr) => format!("http://{addr}"),
        None => "http://localhost".to_string(),
    }
}

/// The first entry of a forwarding header (the one the outermost proxy saw).
fn forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

pub(super) fn check_allowed(
    settings: &ScimTenantSettings,
    client: IpAddr,
) -> Result<(), ScimError> {
    if settings.allow_from.is_empty() || trusted(&settings.allow_from, client) {
        Ok(())
    } else {
        Err(ScimError::forbidden(format!(
            "client address {client} is not in this tenant's allow_from list"
        )))
    }
}

pub(super) fn check_rate(limiter: &governor::DefaultDirectRateLimiter) -> Result<(), ScimError> {
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

/// A failed authentication, counted against the client's budget: the 401 itself while
/// within it, 429 with Retry-After beyond. Server errors are passed through uncounted.
/// For tenants with HTTP Basic credentials (a password a person chose, not a random
/// token): a client that used up its failure budget is refused before its password is
/// looked at, so guessing stays limited to the budget.
pub(super) fn check_guessing(
    failures: &super::failures::AuthFailures,
    tenant: &Tenant,
    client: IpAddr,
) -> Result<(), ScimError> {
    if !matches!(tenant.settings.auth, TenantAuth::Basic { .. }) {
        return Ok(());
    }
    match failures.blocked(client, Instant::now()) {
        None => Ok(()),
        Some(secs) => Err(ScimError::too_many_requests(
            format!(
                "too many failed authentications from {client}; retry after the time in \
                 Retry-After"
            ),
            secs,
        )),
    }
}

pub(super) fn count_failure(
    failures: &super::failures::AuthFailures,
    client: IpAddr,
    error: ScimError,
) -> ScimError {
    if error.status != 401 {
        return error;
    }
    match failures.fail(client, Instant::now()) {
        None => error,
        Some(secs) => ScimError::too_many_requests(
            format!(
                "too many failed authentications from {client}; retry after the time in \
                 Retry-After"
            ),
            secs,
        ),
    }
}

/// Checks the request's credentials against the tenant's.
pub(super) async fn authenticate(
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

/// The whole body, or 413 when it is larger than `limit`.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ScimError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ScimError::payload_too_large(format!(
            "the request body is larger than the limit of {limit} bytes"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/24"]);
        let h = headers("203.0.113.9, 10.0.0.4");
        assert_eq!(
            client_address(proxy, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // From an untrusted peer the header is ignored.
        assert_eq!(
            client_address(stranger, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // A client cannot smuggle an address in front of its own.
        let h = headers("1.2.3.4, 203.0.113.9");
        assert_eq!(
            client_address(proxy, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Without a usable header, the proxy itself.
        assert_eq!(
            client_address(proxy, &HeaderMap::new(), &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        // A junk entry the client wrote in front does not make it look like the proxy.
        let h = headers("junk, 203.0.113.9");
        assert_eq!(
            client_address(proxy, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Proxies that append the client's port.
        for xff in ["203.0.113.9:51234", "[2001:db8::9]:443"] {
            let expected: IpAddr = if xff.starts_with('[') {
                "2001:db8::9".parse().unwrap()
            } else {
                "203.0.113.9".parse().unwrap()
            };
            assert_eq!(client_address(proxy, &headers(xff), &trusted), expected);
        }
    }

    #[test]
    fn allowlists_match_cidr_blocks() {
        let settings = ScimTenantSettings {
            allow_from: nets(&["203.0.113.0/24", "::1/128"]),
            ..ScimTenantSettings::default()
        };
        assert!(check_allowed(&settings, "203.0.113.200".parse().unwrap()).is_ok());
        assert!(check_allowed(&settings, "::1".parse().unwrap()).is_ok());
        let err = check_allowed(&settings, "198.51.100.1".parse().unwrap()).unwrap_err();
        assert_eq!(err.status, 403);
        assert!(check_allowed(&ScimTenantSettings::default(), "1.1.1.1".parse().unwrap()).is_ok());
    }
}
