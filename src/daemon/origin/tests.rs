//! Tests of the admin API's origin checks.

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().expect("value"));
    }
    map
}

fn loopback() -> AllowedOrigins {
    AllowedOrigins::new("127.0.0.1:5502".parse().expect("addr"), None)
}

#[test]
fn requests_without_browser_headers_pass() {
    assert_eq!(loopback().refusal(&HeaderMap::new()), None);
    assert_eq!(
        loopback().refusal(&headers(&[("sec-fetch-site", "same-origin")])),
        None
    );
}

#[test]
fn the_listener_itself_is_its_own_origin() {
    let allowed = loopback();
    for origin in [
        "http://127.0.0.1:5502",
        "http://localhost:5502",
        "http://[::1]:5502",
    ] {
        assert_eq!(
            allowed.refusal(&headers(&[("origin", origin)])),
            None,
            "{origin}"
        );
    }
}

#[test]
fn foreign_origins_are_refused() {
    let allowed = loopback();
    for origin in [
        "http://evil.example",
        "https://evil.example:5502",
        // DNS rebinding: the page's own host name on the admin port.
        "http://evil.example:5502",
        "http://localhost:3000",
        "https://127.0.0.1:5502",
        "null",
    ] {
        let refusal = allowed.refusal(&headers(&[("origin", origin)]));
        assert!(
            refusal.as_deref().is_some_and(|r| r.contains(origin)),
            "{origin}: {refusal:?}"
        );
    }
    assert!(
        allowed
            .refusal(&headers(&[
                ("origin", "http://127.0.0.1:5502"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_some()
    );
}

#[test]
fn a_rebound_host_name_on_loopback_is_refused() {
    let allowed = loopback();
    for host in ["127.0.0.1:5502", "localhost:5502", "[::1]:5502"] {
        assert_eq!(allowed.refusal(&headers(&[("host", host)])), None, "{host}");
    }
    let refusal = allowed.refusal(&headers(&[("host", "evil.example:5502")]));
    assert!(refusal.is_some_and(|r| r.contains("evil.example")));
    // Off loopback, monitoring may use any name.
    let any = AllowedOrigins::new("0.0.0.0:5502".parse().expect("addr"), None);
    assert_eq!(
        any.refusal(&headers(&[("host", "idsync-node1:5502")])),
        None
    );
}

#[test]
fn a_public_url_is_allowed_too() {
    let public = url::Url::parse("https://idsync.example.com/admin").expect("url");
    let allowed = AllowedOrigins::new("0.0.0.0:5502".parse().expect("addr"), Some(&public));
    assert_eq!(
        allowed.refusal(&headers(&[("origin", "https://idsync.example.com")])),
        None
    );
    // On every address, an address origin is the listener's own only when the page
    // was served by it: the same address and port as the request's Host.
    assert_eq!(
        allowed.refusal(&headers(&[
            ("origin", "http://10.1.2.3:5502"),
            ("host", "10.1.2.3:5502")
        ])),
        None
    );
    assert!(
        allowed
            .refusal(&headers(&[
                ("origin", "http://203.0.113.9:5502"),
                ("host", "10.1.2.3:5502")
            ]))
            .is_some()
    );
    assert!(
        allowed
            .refusal(&headers(&[("origin", "https://other.example.com")]))
            .is_some()
    );
}
