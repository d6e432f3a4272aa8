//! The SCIM server's edge against hostile or careless clients, over loopback: failed
//! authentications never spend a tenant's rate, strings PostgreSQL cannot store get the
//! same 400 on both backends, `Location` never comes from the client's `Host`, size
//! limits answer 413/400 naming the limit, and slow clients cannot hold the listener.

use idsync::config::{OnRemove, ScimTenantSettings};
use idsync::scim::server::ServerOptions;
use serde_json::{Value, json};

use crate::support::scim::{ScimHarness, tenant, tenant_with};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn user_body(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "active": true})
}

#[tokio::test]
async fn junk_tokens_never_spend_the_tenants_rate() {
    let db = crate::support::sqlite().await;
    let strict = tenant_with(
        "acme",
        ScimTenantSettings {
            requests_per_second: std::num::NonZeroU32::new(1).unwrap(),
            burst: std::num::NonZeroU32::new(2).unwrap(),
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(&db, vec![strict]).await;
    let url = scim.url("acme", "/Users");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..60 {
        let answer = scim
            .send(
                "nobody",
                "GET",
                &url,
                None,
                &[("authorization", "Bearer junk")],
            )
            .await;
        if answer.status == 429 {
            retry_after = answer.header("retry-after");
            assert!(
                answer.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("too many failed authentications from 127.0.0.1"),
                "{}",
                answer.body
            );
        }
        statuses.push(answer.status);
    }
    let default_budget = ServerOptions::default().auth_failures_per_minute as usize;
    assert!(
        statuses[..default_budget].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[default_budget..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // The tenant's own token still gets its answers: its quota was never touched.
    let valid = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    let valid = scim.call("acme", "GET", "/Users", None).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    scim.stop().await;
}

#[tokio::test]
async fn a_basic_password_cannot_be_guessed_past_the_budget() {
    use base64::Engine;
    let db = crate::support::sqlite().await;
    let password = "correct horse battery staple";
    let basic = tenant_with(
        "onprem",
        ScimTenantSettings {
            auth: idsync::config::TenantAuth::Basic {
                username: "okta".into(),
                password: idsync::config::SecretString::new(password),
            },
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(&db, vec![basic]).await;
    let url = scim.url("onprem", "/Users");
    let header = |pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("okta:{pass}"))
        )
    };
    let budget = ServerOptions::default().auth_failures_per_minute as usize;
    for guess in 0..budget {
        let wrong = header(&format!("guess-{guess}"));
        let answer = scim
            .send("nobody", "GET", &url, None, &[("authorization", &wrong)])
            .await;
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    // Over the budget, even the right password is not looked at: guessing stops here.
    let right = header(password);
    let answer = scim
        .send("nobody", "GET", &url, None, &[("authorization", &right)])
        .await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.header("retry-after").is_some());
    scim.stop().await;
}

fn assert_invalid_value(answer: &crate::support::scim::Answer, needle: &str) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["scimType"], "invalidValue", "{}", answer.body);
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{detail:?} should contain {needle:?}"
    );
}

async fn mirror_rows(db: &idsync::db::Db, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("count")
}

/// The same 400 on SQLite and PostgreSQL for strings PostgreSQL cannot store or index,
/// nothing stored, never a 5xx; the longest allowed names are stored on both.
async fn nul_and_overlong_strings_get_one_answer(db: crate::support::TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let long = "x".repeat(10_000);
    let cases = [
        (
            json!({"schemas": [USER], "userName": "a\u{0}b"}),
            "`userName` contains the character U+0000",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "name": {"givenName": "A\u{0}"}}),
            "`name.givenName` contains the character U+0000",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "externalId": "\u{0}"}),
            "`externalId` contains the character U+0000",
        ),
        (
            json!({"schemas": [USER], "userName": long}),
            "`userName` is 10000 characters long, over the limit of 512",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "displayName": long}),
            "`displayName` is 10000 characters long, over the limit of 512",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "externalId": long}),
            "`externalId` is 10000 characters long, over the limit of 512",
        ),
        (
            json!({"schemas": [USER], "userName": "ann", "emails": [{"value": long}]}),
            "`emails.value` is 10000 characters long, over the limit of 512",
        ),
    ];
    for (body, needle) in cases {
        let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
        assert_invalid_value(&answer, needle);
    }
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": long});
    let answer = scim.call("acme", "POST", "/Groups", Some(group)).await;
    assert_invalid_value(&answer, "`displayName` is 10000 characters long");
    assert_eq!(mirror_rows(&db, "mirror_users").await, 0);
    assert_eq!(mirror_rows(&db, "mirror_groups").await, 0);

    // NUL in a filter or an id in the URL: the same 400, not a database error.
    let answer = scim
        .call(
            "acme",
            "GET",
            "/Users?filter=userName%20eq%20%22a%00%22",
            None,
        )
        .await;
    assert_invalid_value(&answer, "U+0000");
    let answer = scim.call("acme", "GET", "/Users/a%00b", None).await;
    assert_invalid_value(&answer, "U+0000");

    // A PATCH cannot smuggle in what a POST may not.
    let created = scim
        .call("acme", "POST", "/Users", Some(user_body("ann")))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": long}]});
    let answer = scim
        .call("acme", "PATCH", &format!("/Users/{id}"), Some(patch))
        .await;
    assert_invalid_value(&answer, "`displayName` is 10000 characters long");

    // The longest allowed names, in 4-byte characters, are stored on both backends.
    let widest = "𝔘".repeat(idsync::scim::server::MAX_IDENTIFIER_CHARS);
    let body = json!({"schemas": [USER], "userName": widest, "displayName": widest,
        "externalId": widest, "emails": [{"value": widest, "primary": true}]});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["userName"], json!(widest));
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": widest});
    let answer = scim.call("acme", "POST", "/Groups", Some(group)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    scim.stop().await;
}
crate::on_both_backends!(nul_and_overlong_strings_get_one_answer);

/// Over the per-resource limits: 400/413 naming the limit, on both backends.
async fn resource_limits_are_named(db: crate::support::TestDb) {
    let scim = ScimHarness::start(&db, vec![tenant("acme", OnRemove::Disable)]).await;
    let limits = ServerOptions::default().limits;
    let body = json!({"schemas": [USER], "userName": "ann",
        "title": "t".repeat(limits.max_string_chars + 1)});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_invalid_value(&answer, "(max_string_length)");
    let emails: Vec<Value> = (0..=limits.max_values)
        .map(|i| json!({"value": format!("a{i}@example.com")}))
        .collect();
    let body = json!({"schemas": [USER], "userName": "ann", "emails": emails});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_invalid_value(&answer, "(max_values_per_attribute)");
    let roles: Vec<Value> = (0..limits.max_values)
        .map(|i| json!({"value": format!("role-{i}"), "display": "r".repeat(400)}))
        .collect();
    let body = json!({"schemas": [USER], "userName": "ann", "roles": roles});
    let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(
        answer.body["detail"].as_str().unwrap().contains(&format!(
            "over the limit of {} bytes (max_resource_bytes)",
            limits.max_resource_bytes
        )),
        "{}",
        answer.body
    );
    assert_eq!(mirror_rows(&db, "mirror_users").await, 0);
    scim.stop().await;
}
crate::on_both_backends!(resource_limits_are_named);

/// Waits (polling, up to 10 s) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Reads until the server closes the connection (up to 10 s); what it sent before.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server closes the connection");
        match read {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_header_connections_cannot_hold_the_listener() {
    use tokio::io::AsyncWriteExt;
    let db = crate::support::sqlite().await;
    let options = ServerOptions {
        header_read_timeout: std::time::Duration::from_secs(2),
        max_connections: 100,
        ..ServerOptions::default()
    };
    let scim = ScimHarness::start_with(&db, vec![tenant("acme", OnRemove::Disable)], options).await;
    let health = scim.server.health();
    until("the listener is up", || health.problem().is_none()).await;
    let mut slow = Vec::new();
    for i in 0..250 {
        let mut stream = tokio::net::TcpStream::connect(scim.addr)
            .await
            .expect("connect");
        // Half a header; some send nothing at all.
        if i % 5 != 0 {
            stream
                .write_all(b"GET /scim/acme/v2/Users HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("write");
        }
        slow.push(stream);
    }
    // At its cap the listener says so (and `/readyz` with it).
    until("the cap is reached", || {
        health
            .problem()
            .is_some_and(|p| p.contains("limit of 100 open connections (max_connections)"))
    })
    .await;
    // A well-behaved client still gets its answer once the slow ones are cut off.
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        scim.call("acme", "GET", "/Users", None),
    )
    .await
    .expect("the valid request is answered");
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Every slow connection was closed by the server, none answered as if complete.
    for stream in &mut slow {
        let seen = read_until_closed(stream).await;
        assert!(!seen.contains("200 OK"), "{seen}");
    }
    until("every connection is released", || {
        health.open_connections() <= 1 && health.problem().is_none()
    })
    .await;
    scim.stop().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    use tokio::io::AsyncWriteExt;
    let db = crate::support::sqlite().await;
    let options = ServerOptions {
        body_read_timeout: std::time::Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let scim = ScimHarness::start_with(&db, vec![tenant("acme", OnRemove::Disable)], options).await;
    let token = &scim.tokens["acme"];
    let mut stream = tokio::net::TcpStream::connect(scim.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /scim/acme/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"sche"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let seen = read_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("(body_read_timeout_seconds)"), "{seen}");
    scim.stop().await;
}

/// `Location` and `meta.location` come from configuration or a trusted proxy, never from
/// the client's `Host` (which would let anyone plant links to their own host).
#[tokio::test]
async fn locations_ignore_a_forged_host() {
    let db = crate::support::sqlite().await;
    let public = tenant_with(
        "public",
        ScimTenantSettings {
            public_base_url: Some("https://idsync.example.com/edge".into()),
            ..ScimTenantSettings::default()
        },
    );
    let proxied = tenant_with(
        "proxied",
        ScimTenantSettings {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start(
        &db,
        vec![tenant("plain", OnRemove::Disable), public, proxied],
    )
    .await;
    const FORGED: &[(&str, &str)] = &[
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    let forged = FORGED;
    let create = |tenant: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let url = scim.url(tenant, "/Users");
        let scim = &scim;
        async move {
            let answer = scim
                .send(tenant, "POST", &url, Some(user_body("ann")), headers)
                .await;
            assert_eq!(answer.status, 201, "{}", answer.body);
            let location = answer.header("location").expect("Location");
            assert_eq!(answer.body["meta"]["location"], json!(location));
            location
        }
    };
    let own = format!("http://{}/scim/plain/v2/Users/", scim.addr);
    let location = create("plain", forged).await;
    assert!(location.starts_with(&own), "{location}");
    let location = create("public", forged).await;
    assert!(
        location.starts_with("https://idsync.example.com/edge/scim/public/v2/Users/"),
        "{location}"
    );
    // Loopback is this tenant's trusted proxy: its forwarded host and scheme are used.
    let location = create(
        "proxied",
        &[
            ("host", "evil.example"),
            ("x-forwarded-host", "scim.example.org"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert!(
        location.starts_with("https://scim.example.org/scim/proxied/v2/Users/"),
        "{location}"
    );
    // A group's member references follow the same base.
    let user_id = location.rsplit('/').next().unwrap().to_string();
    assert!(!user_id.is_empty());
    let url = scim.url("plain", "/Groups");
    let plain_user = scim.call("plain", "GET", "/Users", None).await;
    let plain_id = plain_user.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let group_for_plain = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "g", "members": [{"value": plain_id}]});
    let answer = scim
        .send("plain", "POST", &url, Some(group_for_plain), forged)
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.body["members"][0]["$ref"],
        json!(format!("{own}{plain_id}"))
    );
    scim.stop().await;
}

/// List pages are read in chunks and stop at the page byte limit; paging on with
/// `startIndex` + `itemsPerPage` still visits every resource exactly once.
#[tokio::test]
async fn list_pages_are_bounded_in_bytes_and_page_on() {
    let db = crate::support::sqlite().await;
    let options = ServerOptions {
        max_page_bytes: 64 << 10,
        ..ServerOptions::default()
    };
    let fast = tenant_with(
        "acme",
        ScimTenantSettings {
            requests_per_second: std::num::NonZeroU32::new(10_000).unwrap(),
            burst: std::num::NonZeroU32::new(10_000).unwrap(),
            ..ScimTenantSettings::default()
        },
    );
    let scim = ScimHarness::start_with(&db, vec![fast], options).await;
    for i in 0..230 {
        let answer = scim
            .call(
                "acme",
                "POST",
                "/Users",
                Some(user_body(&format!("user{i:03}"))),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    // Small resources, a large page: the chunks (200 rows at a time) join up.
    let page = scim
        .call("acme", "GET", "/Users?attributes=userName&count=1000", None)
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["totalResults"], 230);
    assert_eq!(page.body["itemsPerPage"], 230);
    let names: std::collections::BTreeSet<String> = page.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 230);
    // Whole resources: each page stops before 64 KiB, and paging on visits them all once.
    let mut seen = std::collections::BTreeSet::new();
    let mut start = 1;
    let mut pages = 0;
    while start <= 230 {
        let page = scim
            .call(
                "acme",
                "GET",
                &format!("/Users?startIndex={start}&count=1000"),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["totalResults"], 230);
        let items = page.body["Resources"].as_array().unwrap();
        assert_eq!(page.body["itemsPerPage"], json!(items.len()));
        assert!(!items.is_empty() && items.len() < 230, "{}", items.len());
        assert!(page.body.to_string().len() <= 65 << 10);
        for item in items {
            assert!(seen.insert(item["id"].as_str().unwrap().to_string()));
        }
        start += items.len();
        pages += 1;
    }
    assert_eq!(seen.len(), 230);
    assert!(pages > 1);
    scim.stop().await;
}
