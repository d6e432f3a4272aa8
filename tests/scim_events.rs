//! The SCIM event log end to end: secrets masked in what is stored (bodies that are not
//! valid JSON, tokens in the query string), retention per outcome, and the event of an
//! acknowledged write surviving a SIGKILL of `idsync serve`.

use idsync::config::ScimTenantSettings;
use idsync::db::Db;
use idsync::store::events::{self, Event, EventQuery};

use crate::support::TestDb;
use crate::support::scim::{ScimHarness, tenant_with};

async fn tenant_events(db: &Db, tenant: &str) -> Vec<Event> {
    events::query(
        db,
        &EventQuery {
            tenant: Some(tenant.into()),
            limit: 1000,
            ..EventQuery::default()
        },
    )
    .await
    .expect("events")
}

async fn secrets_never_reach_the_event_log(db: TestDb) {
    let scim = ScimHarness::start(
        &db,
        vec![tenant_with("acme", ScimTenantSettings::default())],
    )
    .await;
    // A body cut short: not JSON, so the server answers 400, but the log masks it anyway.
    let url = scim.url("acme", "/Users?access_token=qs-s3cret&count=5");
    let token = scim.tokens["acme"].clone();
    let cut = scim
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(r#"{"userName":"ada","password":"hunter2","emails":[{"va"#)
        .send()
        .await
        .expect("request");
    assert_eq!(cut.status(), 400);
    let form = scim
        .client
        .post(scim.url("acme", "/Users?token=t0k"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("userName=ada&password=form-s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 415);
    scim.events.flush().await;
    let logged = tenant_events(&db, "acme").await;
    assert_eq!(logged.len(), 2);
    let everything = serde_json::to_string(&logged).unwrap();
    for secret in ["qs-s3cret", "hunter2", "t0k", "form-s3cret"] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }
    assert_eq!(logged[1].path, "/Users?access_token=[redacted]&count=5");
    assert_eq!(
        logged[1].request_body.as_deref(),
        Some(r#"{"userName":"ada","password":"[redacted]","emails":[{"va"#)
    );
    assert_eq!(logged[0].path, "/Users?token=[redacted]");
    assert_eq!(
        logged[0].request_body.as_deref(),
        Some("userName=ada&password=[redacted]")
    );
    scim.stop().await;
}
crate::on_both_backends!(secrets_never_reach_the_event_log);

async fn rejected_requests_cannot_evict_accepted_ones(db: TestDb) {
    let settings = ScimTenantSettings {
        event_retention: 3,
        rejected_event_retention: 2,
        ..ScimTenantSettings::default()
    };
    let limited = ScimTenantSettings {
        requests_per_second: std::num::NonZeroU32::new(1).unwrap(),
        burst: std::num::NonZeroU32::new(1).unwrap(),
        ..ScimTenantSettings::default()
    };
    let scim = ScimHarness::start(
        &db,
        vec![tenant_with("acme", settings), tenant_with("slow", limited)],
    )
    .await;
    for path in ["/Schemas", "/ResourceTypes", "/Users/missing"] {
        scim.call("acme", "GET", path, None).await;
    }
    // A flood without credentials: 401 each, logged under the rejected cap only.
    for _ in 0..10 {
        let url = scim.url("acme", "/Users");
        let refused = scim
            .send(
                "no-token",
                "GET",
                &url,
                None,
                &[("authorization", "Bearer wrong")],
            )
            .await;
        assert_eq!(refused.status, 401);
    }
    scim.events.flush().await;
    let kept = tenant_events(&db, "acme").await;
    let accepted: Vec<&str> = kept
        .iter()
        .filter(|e| !e.rejected)
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(accepted, ["/Users/missing", "/ResourceTypes", "/Schemas"]);
    let rejected: Vec<u16> = kept
        .iter()
        .filter(|e| e.rejected)
        .map(|e| e.status)
        .collect();
    assert_eq!(rejected, [401, 401]);
    // The accepted cap still applies to accepted requests.
    scim.call("acme", "GET", "/ServiceProviderConfig", None)
        .await;
    scim.events.flush().await;
    let kept = tenant_events(&db, "acme").await;
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[0].path, "/ServiceProviderConfig");
    assert!(!kept.iter().any(|e| e.path == "/Schemas"));

    // 429 from the limiter comes before authentication: rejected too.
    let first = scim.call("slow", "GET", "/Schemas", None).await;
    let second = scim.call("slow", "GET", "/Schemas", None).await;
    assert_eq!((first.status, second.status), (200, 429));
    scim.events.flush().await;
    let slow: Vec<(u16, bool)> = tenant_events(&db, "slow")
        .await
        .iter()
        .map(|e| (e.status, e.rejected))
        .collect();
    assert_eq!(slow, [(429, true), (200, false)]);
    scim.stop().await;
}
crate::on_both_backends!(rejected_requests_cannot_evict_accepted_ones);

/// Writes an event of `at` (RFC 3339) directly, as if logged then.
async fn old_event(db: &Db, at: chrono::DateTime<chrono::Utc>, path: &str, rejected: bool) {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let sql = format!(
        "INSERT INTO scim_events (tenant, at, method, path, status, duration_ms, operation, \
         rejected) VALUES ('acme', '{at}', 'GET', '{path}', 200, 1.0, 'old', {})",
        i64::from(rejected)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(db.pool())
        .await
        .expect("insert an old event");
}

async fn events_past_the_maximum_age_are_deleted(db: TestDb) {
    let now = idsync::clock::now();
    old_event(&db, now - chrono::Duration::days(3), "/three-days", false).await;
    old_event(
        &db,
        now - chrono::Duration::hours(25),
        "/a-day-rejected",
        true,
    )
    .await;
    old_event(&db, now - chrono::Duration::hours(23), "/yesterday", false).await;
    let settings = ScimTenantSettings {
        event_max_age: std::time::Duration::from_secs(86_400),
        ..ScimTenantSettings::default()
    };
    let scim = ScimHarness::start(&db, vec![tenant_with("acme", settings)]).await;
    scim.call("acme", "GET", "/Schemas", None).await;
    scim.events.flush().await;
    let paths: Vec<String> = tenant_events(&db, "acme")
        .await
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["/Schemas", "/yesterday"]);
    scim.stop().await;
}
crate::on_both_backends!(events_past_the_maximum_age_are_deleted);

/// `idsync serve` over `database_url` with one SCIM tenant `okta`, killed when dropped.
struct Served {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    scim: String,
    token: String,
}

impl Served {
    async fn start(database_url: &str) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write(
            "idsync.toml",
            &format!("[target]\ndatabase_url = \"{database_url}\"\n"),
        );
        write(
            "mappings/default.toml",
            "on_remove = \"disable\"\nmax_deletes = 1000\nmax_delete_percent = 100.0\n",
        );
        write(
            "connectors/okta.toml",
            "kind = \"scim\"\nmapping = \"default\"\n",
        );
        let command = |args: &[&str]| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idsync"));
            command
                .arg("--config")
                .arg(dir.path().join("idsync.toml"))
                .args(args)
                .env_remove("IDSYNC_CONFIG")
                .env_remove("RUST_LOG");
            command
        };
        let created = command(&["tenant", "create", "okta"])
            .output()
            .expect("idsync tenant create");
        let stdout = String::from_utf8_lossy(&created.stdout);
        let token = stdout
            .lines()
            .find_map(|l| l.strip_prefix("token:"))
            .unwrap_or_else(|| panic!("no token: {stdout}"))
            .trim()
            .to_string();
        let port = |()| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port()
        };
        let (scim_port, admin_port) = (port(()), port(()));
        let child = command(&[
            "serve",
            "--scim-listen",
            &format!("127.0.0.1:{scim_port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).expect("log file"))
        .spawn()
        .expect("start idsync serve");
        let served = Served {
            child: Some(child),
            scim: format!("http://127.0.0.1:{scim_port}/scim/okta/v2"),
            token,
            dir,
        };
        let ready = format!("http://127.0.0.1:{admin_port}/readyz");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(answer) = reqwest::get(&ready).await
                && answer.status().is_success()
            {
                return served;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "idsync serve not ready: {}",
                std::fs::read_to_string(served.dir.path().join("serve.log")).unwrap_or_default()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush of anything queued.
    fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        child.wait().expect("wait");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `count` creates, each acknowledged 201 before the next, SIGKILLs the server and
/// reads the log from the database: every acknowledged write has its event.
async fn acknowledged_writes_keep_their_events_through_sigkill(database_url: &str) {
    const WRITES: usize = 10;
    let served = Served::start(database_url).await;
    let client = reqwest::Client::new();
    for i in 0..WRITES {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("u{i}@example.com"),
            "password": "hunter2",
        });
        let created = client
            .post(format!("{}/Users", served.scim))
            .bearer_auth(&served.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .expect("SCIM POST");
        assert_eq!(created.status(), 201);
    }
    served.kill();
    let db = Db::open(database_url).await.expect("reopen the database");
    let mut operations: Vec<String> = tenant_events(&db, "okta")
        .await
        .into_iter()
        .filter(|e| e.method == "POST" && e.status == 201)
        .map(|e| {
            assert!(!e.request_body.unwrap_or_default().contains("hunter2"));
            e.operation
        })
        .collect();
    operations.sort();
    let expected: Vec<String> = (0..WRITES)
        .map(|i| format!("create user u{i}@example.com"))
        .collect();
    assert_eq!(operations, expected);
    db.close().await;
}

#[tokio::test]
async fn acknowledged_writes_keep_their_events_through_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", dir.path().display());
    acknowledged_writes_keep_their_events_through_sigkill(&url).await;
}

#[tokio::test]
async fn acknowledged_writes_keep_their_events_through_sigkill_on_postgres() {
    let Some(db) = crate::support::postgres().await else {
        return;
    };
    let url = db.postgres_url().expect("url");
    acknowledged_writes_keep_their_events_through_sigkill(&url).await;
}

fn logged(id: u32, method: &str, path: &str, status: u16, body: Option<&str>) -> Event {
    Event {
        id: None,
        tenant: "acme".into(),
        at: format!("2026-12-06T10:{id:02}:00.000Z"),
        method: method.into(),
        path: path.into(),
        status,
        duration_ms: 1.5,
        operation: format!("op {id}"),
        client: Some("10.0.0.1".into()),
        request_body: body.map(str::to_string),
        response_body: None,
        rejected: false,
    }
}

/// The admin page's filters: method, a time window, text in any case (LIKE's wildcards
/// taken literally) and the next page by id, answered alike by both backends.
async fn events_are_searched_by_method_time_and_text(db: TestDb) {
    let (log, _writer) = events::EventLog::start(db.db.clone(), Default::default(), 1000);
    log.record(logged(
        1,
        "POST",
        "/Users",
        201,
        Some(r#"{"userName":"Ada.Lovelace"}"#),
    ));
    log.record(logged(
        2,
        "PATCH",
        "/Users/1",
        200,
        Some(r#"{"Operations":[]}"#),
    ));
    log.record(logged(
        3,
        "GET",
        "/Users?filter=userName%20eq%20%22x_y%22",
        200,
        None,
    ));
    log.record(logged(4, "DELETE", "/Users/1", 204, None));
    log.record(logged(
        5,
        "POST",
        "/Users",
        201,
        Some(r#"{"userName":"Émile.Zola"}"#),
    ));
    log.flush().await;
    let search = |query: EventQuery| {
        let db = db.db.clone();
        async move {
            events::query(
                &db,
                &EventQuery {
                    tenant: Some("acme".into()),
                    limit: 100,
                    ..query
                },
            )
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.operation)
            .collect::<Vec<_>>()
        }
    };
    let by_method = search(EventQuery {
        method: Some("patch".into()),
        ..EventQuery::default()
    })
    .await;
    assert_eq!(by_method, ["op 2"]);
    let window = search(EventQuery {
        since: Some("2026-12-06T10:02:00.000Z".into()),
        until: Some("2026-12-06T10:04:00.000Z".into()),
        ..EventQuery::default()
    })
    .await;
    assert_eq!(window, ["op 3", "op 2"]);
    let any_case = search(EventQuery {
        text: Some("ada.LOVELACE".into()),
        ..EventQuery::default()
    })
    .await;
    assert_eq!(any_case, ["op 1"]);
    // `_` and `%` are literal: "x_y" matches, "x%y" and "a_a" do not.
    let literal = search(EventQuery {
        text: Some("x_y".into()),
        ..EventQuery::default()
    })
    .await;
    assert_eq!(literal, ["op 3"]);
    let wildcard = search(EventQuery {
        text: Some("x%y".into()),
        ..EventQuery::default()
    })
    .await;
    assert!(wildcard.is_empty(), "{wildcard:?}");
    let underscore = search(EventQuery {
        text: Some("a_a".into()),
        ..EventQuery::default()
    })
    .await;
    assert!(underscore.is_empty(), "{underscore:?}");
    // Letters fold in ASCII only, on both backends alike: "É" is not "é".
    let accented = search(EventQuery {
        text: Some("ÉMILE".into()),
        ..EventQuery::default()
    })
    .await;
    assert_eq!(accented, ["op 5"]);
    let folded = search(EventQuery {
        text: Some("émile".into()),
        ..EventQuery::default()
    })
    .await;
    assert!(folded.is_empty(), "{folded:?}");
    let all = events::query(
        &db,
        &EventQuery {
            tenant: Some("acme".into()),
            limit: 2,
            ..EventQuery::default()
        },
    )
    .await
    .expect("events");
    let older = search(EventQuery {
        before_id: all.last().and_then(|e| e.id),
        ..EventQuery::default()
    })
    .await;
    assert_eq!(older, ["op 3", "op 2", "op 1"]);
}
crate::on_both_backends!(events_are_searched_by_method_time_and_text);
