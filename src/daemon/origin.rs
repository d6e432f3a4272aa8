//! Which browser origins may talk to the admin listener: only the listener itself (by its
//! address, or `localhost` when it listens on loopback) and the configured
//! `[admin] public_url`. A web page open in a browser on the admin's host can send requests
//! to loopback ports; browsers label those with `Origin` and `Sec-Fetch-Site`, and the
//! admin API refuses them (403) instead of relying on the token alone. No CORS headers are
//! ever sent.
//!
//! A host name other than `localhost` is never accepted for the listener's own address: a
//! DNS-rebinding page keeps its own host name in `Origin` while it reaches the loopback
//! port.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The origins that are the admin listener itself.
#[derive(Debug, Clone)]
pub struct AllowedOrigins {
    listener: SocketAddr,
    public: Option<String>,
}

impl AllowedOrigins {
    /// For a listener bound at `listener`, reachable also at `public_url` when set.
    pub fn new(listener: SocketAddr, public_url: Option<&url::Url>) -> AllowedOrigins {
        AllowedOrigins {
            listener,
            public: public_url.map(|u| u.origin().ascii_serialization()),
        }
    }

    /// Whether a request with these headers may be served: `None` if so, else why not.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(site) = headers.get("sec-fetch-site")
            && site.as_bytes().eq_ignore_ascii_case(b"cross-site")
        {
            return Some("cross-site requests are refused (Sec-Fetch-Site: cross-site)".into());
        }
        let host = headers
            .get(axum::http::header::HOST)
            .map(|h| h.to_str().unwrap_or("<not text>"));
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Some(format!(
                "requests for host `{host}` are refused: on loopback the admin API answers \
                 only its address or `localhost` (a web page that rebinds its own name to \
                 this address must not reach it); set [admin] public_url for a proxy"
            ));
        }
        let origin = headers.get("origin")?;
        let origin = origin.to_str().unwrap_or("<not text>");
        if self.allows(origin, host) {
            None
        } else {
            Some(format!(
                "requests from origin `{origin}` are refused: the admin API answers only its own \
                 origin{}",
                self.public
                    .as_ref()
                    .map(|p| format!(" and `{p}` ([admin] public_url)"))
                    .unwrap_or_default()
            ))
        }
    }

    /// On a loopback listener, `Host` must be an address or `localhost` (or the public
    /// URL's host): only a browser following a rebound DNS name sends another. A listener
    /// on other addresses is reached by whatever names the network gives it (monitoring
    /// scrapes by host name), so there only `Origin` is checked.
    fn host_allowed(&self, host: &str) -> bool {
        if !self.listener.ip().is_loopback() {
            return true;
        }
        let Ok(url) = url::Url::parse(&format!("http://{host}")) else {
            return false;
        };
        if let Some(public) = &self.public
            && let Ok(public) = url::Url::parse(public)
            && public.host_str() == url.host_str()
        {
            return true;
        }
        match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
            None => false,
        }
    }

    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        let serialized = url.origin().ascii_serialization();
        if self.public.as_deref() == Some(serialized.as_str()) {
            return true;
        }
        if url.scheme() != "http" || url.port_or_known_default() != Some(self.listener.port()) {
            return false;
        }
        let ip: IpAddr = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
                return self.listener.ip().is_loopback() || self.listener.ip().is_unspecified();
            }
            _ => return false,
        };
        let ip = ip.to_canonical();
        let bound = self.listener.ip().to_canonical();
        if ip == bound || (bound.is_loopback() && ip.is_loopback()) {
            return true;
        }
        // Listening on every address: a page this listener served has the address the
        // browser used, which is also the request's `Host`; another site's page has its own.
        bound.is_unspecified()
            && host.is_some_and(|h| {
                url::Url::parse(&format!("http://{h}")).is_ok_and(|hu| {
                    hu.host() == url.host()
                        && hu.port_or_known_default() == url.port_or_known_default()
                })
            })
    }
}

#[cfg(test)]
mod tests;
