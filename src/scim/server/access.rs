//! Where a request comes from: the client's address (believing `X-Forwarded-For` only
//! from configured proxies), for the allowlist, the failure budget and the event log; and
//! the public base URL answers are written for.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::config::ScimTenantSettings;

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
}
