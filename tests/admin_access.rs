//! The admin API locked down (issue 11): tokens on every endpoint but the probes, foreign
//! browser origins refused, an audit trail of what admins did, a node that refuses to
//! listen off loopback without a token, scheduled slots run once across nodes, run-now
//! refused while another node runs the connector, and tenant tokens revoked only by name or
//! with `--all`.

use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Node, Tree, eventually, eventually_with, free_port, get_json};
use crate::support::conformance::{Directory, Knobs};
use crate::support::fake_keycloak::FakeKeycloak;

async fn status_of(request: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_endpoint_but_the_probes_needs_a_token() {
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let fake = FakeKeycloak::start_concrete(Directory::generated(5, 2, 2), Knobs::default()).await;
    let tree = Tree::new(&url, fake.base_url(), "0 0 1 1 *");
    // The token (and so the database) first: two processes must not migrate one new file.
    let admin = tree.client();
    let node = Node::start(&tree, "node");
    let anonymous = reqwest::Client::new();
    eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&anonymous, &format!("{}/readyz", node.admin)).await
    })
    .await;

    // The probes and metrics answer anyone.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = status_of(anonymous.get(format!("{}{path}", node.admin))).await;
        assert_eq!(status, 200, "{path}");
    }
    // Everything else answers 401 without a token, and with a wrong one; on loopback too.
    let gets = [
        "/api/connectors",
        "/api/runs",
        "/api/events",
        "/api/held",
        "/api/audit",
    ];
    let posts = [
        "/api/connectors/kc/run",
        "/api/held/kc/confirm",
        "/api/held/kc/discard",
    ];
    for path in gets {
        let (status, body, headers) =
            status_of(anonymous.get(format!("{}{path}", node.admin))).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(headers.contains_key("www-authenticate"), "{path}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("admin-token create"),
            "{path}: {body}"
        );
        let (status, _, _) = status_of(
            anonymous
                .get(format!("{}{path}", node.admin))
                .bearer_auth("idsync_admin_guess"),
        )
        .await;
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    for path in posts {
        let (status, body, _) = status_of(anonymous.post(format!("{}{path}", node.admin))).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Nothing ran and nothing was recorded for those attempts.
    let (_, stdout, _) = tree.run(&["runs", "--connector", "kc", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).expect("json"),
        Value::Array(vec![])
    );

    // With a token: served, and run-now is recorded under the token's name.
    let (status, list, _) = status_of(admin.get(format!("{}/api/connectors", node.admin))).await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|c| c["id"] == "kc"))
    );
    let (status, body, _) =
        status_of(admin.post(format!("{}/api/connectors/kc/run", node.admin))).await;
    assert_eq!(status, 202, "{body}");
    let trail = eventually_with(
        Duration::from_secs(20),
        "the audit entry",
        &[&node],
        async || {
            let trail = get_json(&admin, &format!("{}/api/audit", node.admin)).await?;
            trail
                .as_array()?
                .iter()
                .any(|e| e["action"] == "run.start")
                .then_some(trail)
        },
    )
    .await;
    let entries = trail.as_array().expect("array");
    let run = entries
        .iter()
        .find(|e| e["action"] == "run.start")
        .expect("run.start");
    assert_eq!(run["actor"], "tests");
    assert_eq!(run["target"], "kc");
    // The token's creation is in the trail too, by whoever ran the CLI.
    assert!(
        entries.iter().any(|e| e["action"] == "admin_token.create"
            && e["target"] == "tests"
            && e["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))),
        "{trail}"
    );
    // The CLI reads the same trail.
    let (code, stdout, stderr) = tree.run(&["audit", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let cli_trail: Value = serde_json::from_str(&stdout).expect("json");
    assert!(
        cli_trail
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["action"] == "run.start")
    );

    // A revoked token stops working at once.
    let (code, _, stderr) = tree.run(&["admin-token", "revoke", "tests"]);
    assert_eq!(code, 0, "{stderr}");
    let (status, _, _) = status_of(admin.get(format!("{}/api/connectors", node.admin))).await;
    assert_eq!(status, 401);
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_foreign_origins_are_refused_even_with_a_token() {
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let dir = Directory::generated(5, 2, 2);
    let fake = FakeKeycloak::start_concrete(dir, Knobs::default()).await;
    let tree = Tree::new(&url, fake.base_url(), "0 0 1 1 *");
    // The token (and so the database) first: two processes must not migrate one new file.
    let admin = tree.client();
    let node = Node::start(&tree, "node");
    eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&admin, &format!("{}/readyz", node.admin)).await
    })
    .await;
    let foreign = [
        ("origin", "http://evil.example"),
        // A DNS-rebinding page reaches the port under its own host name.
        (
            "origin",
            &*format!(
                "http://evil.example:{}",
                node.admin.rsplit(':').next().expect("port")
            ),
        ),
        ("sec-fetch-site", "cross-site"),
    ];
    for (header, value) in foreign {
        let (status, body, headers) = status_of(
            admin
                .post(format!("{}/api/connectors/kc/run", node.admin))
                .header(header, value),
        )
        .await;
        assert_eq!(status, 403, "{header}: {value}: {body}");
        assert!(!headers.contains_key("access-control-allow-origin"));
        let (status, _, _) = status_of(
            admin
                .get(format!("{}/api/events", node.admin))
                .header(header, value),
        )
        .await;
        assert_eq!(status, 403, "{header}: {value}");
    }
    // A preflight gets no CORS grant either.
    let (status, _, headers) = status_of(
        admin
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/held/kc/confirm", node.admin),
            )
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(!headers.contains_key("access-control-allow-origin"));
    // Nothing was started by the refused requests.
    let (_, stdout, _) = tree.run(&["runs", "--connector", "kc", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).expect("json"),
        Value::Array(vec![])
    );
    // The listener's own origin is fine.
    let (status, body, _) = status_of(
        admin
            .get(format!("{}/api/connectors", node.admin))
            .header("origin", node.admin.as_str())
            .header("sec-fetch-site", "same-origin"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

#[tokio::test]
async fn serve_refuses_an_admin_listener_off_loopback_without_a_token() {
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let tree = Tree::new(&url, "http://127.0.0.1:9", "0 0 1 1 *");
    let output = tree
        .command(&[
            "serve",
            "--scim-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--admin-listen",
            &format!("0.0.0.0:{}", free_port()),
        ])
        .output()
        .expect("run idsync serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not loopback"), "{stderr}");
    assert!(stderr.contains("idsync admin-token create"), "{stderr}");
}

#[tokio::test]
async fn tenant_revoke_needs_a_token_id_or_all() {
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let tree = Tree::new(&url, "http://127.0.0.1:9", "0 0 1 1 *");
    for _ in 0..2 {
        let (code, _, stderr) = tree.run(&["tenant", "create", "okta"]);
        assert_eq!(code, 0, "{stderr}");
    }
    let active = || {
        let (_, stdout, _) = tree.run(&["tenant", "list", "--format", "json"]);
        let tenants: Value = serde_json::from_str(&stdout).expect("json");
        tenants[0]["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .filter(|t| t["revoked_at"].is_null())
            .map(|t| t["id"].as_str().expect("id").to_string())
            .collect::<Vec<_>>()
    };
    let before = active();
    assert_eq!(before.len(), 2);
    let (code, _, stderr) = tree.run(&["tenant", "revoke", "okta"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--all"), "{stderr}");
    assert_eq!(active(), before, "nothing revoked without --token or --all");

    let (code, _, stderr) = tree.run(&["tenant", "revoke", "okta", "--token", &before[0]]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(active(), [before[1].clone()]);
    let (code, _, stderr) = tree.run(&["tenant", "revoke", "okta", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(active().is_empty());
    // Each change is in the audit trail.
    let (_, stdout, _) = tree.run(&["audit", "--format", "json"]);
    let trail: Value = serde_json::from_str(&stdout).expect("json");
    let actions: Vec<&str> = trail
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant_token.revoke",
            "tenant_token.revoke",
            "tenant_token.create",
            "tenant_token.create"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_slot_runs_once_across_nodes() {
    let Some(db) = crate::support::postgres().await else {
        return;
    };
    let url = db.postgres_url().expect("url");
    let fake = FakeKeycloak::start_concrete(Directory::generated(5, 2, 2), Knobs::default()).await;
    let tree = Tree::new(&url, fake.base_url(), "0 0 1 1 *");
    let (code, _, stderr) = tree.run(&["check"]);
    assert_eq!(code, 0, "{stderr}");
    // In this process the secret comes from a file (the environment is the test runner's).
    tree.write("kc-secret", "s3cret");
    let kc = std::fs::read_to_string(tree.path("connectors/kc.toml")).expect("kc.toml");
    let secret_file = tree.path("kc-secret");
    tree.write(
        "connectors/kc.toml",
        &kc.replace(
            "{ env = \"KC_SECRET\" }",
            &format!("{{ file = \"{}\" }}", secret_file.display()),
        ),
    );
    let config = std::sync::Arc::new(
        idsync::config::Config::load(&tree.path("idsync.toml")).expect("config"),
    );
    // Two nodes whose clocks differ reach the same due time one after the other: the first
    // runs it; the second, finding the run lock free again, must still not run it twice.
    let node_a = idsync::daemon::Launcher::new(config.clone(), db.db.clone());
    let node_b = idsync::daemon::Launcher::new(config, db.db.clone());
    let slot = chrono::DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    use idsync::scheduler::RunLauncher;
    let first = node_a.run_scheduled("kc", slot).await;
    let second = node_b.run_scheduled("kc", slot).await;
    assert_eq!(first, idsync::scheduler::RunResult::Finished);
    assert!(
        matches!(&second, idsync::scheduler::RunResult::Skipped(why) if why.contains("another node")),
        "{second:?}"
    );
    let runs = idsync::store::runs::recent_runs(db.pool(), Some("kc"), 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    // The next slot is a new claim.
    let next = slot + chrono::Duration::minutes(1);
    assert_eq!(
        node_b.run_scheduled("kc", next).await,
        idsync::scheduler::RunResult::Finished
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_answers_409_while_another_node_runs_the_connector() {
    let Some(db) = crate::support::postgres().await else {
        return;
    };
    let url = db.postgres_url().expect("url");
    // Slow pages keep the run going on node A while node B is asked.
    let fake = FakeKeycloak::start_concrete(
        Directory::generated(60, 6, 10),
        Knobs {
            request_delay: Duration::from_millis(100),
            ..Knobs::default()
        },
    )
    .await;
    let tree = Tree::new(&url, fake.base_url(), "0 0 1 1 *");
    let admin = tree.client();
    let a = Node::start(&tree, "a");
    let b = Node::start(&tree, "b");
    for node in [&a, &b] {
        eventually(Duration::from_secs(20), "/readyz", async || {
            get_json(&admin, &format!("{}/readyz", node.admin)).await
        })
        .await;
    }
    let (status, body, _) =
        status_of(admin.post(format!("{}/api/connectors/kc/run", a.admin))).await;
    assert_eq!(status, 202, "{body}");
    eventually_with(
        Duration::from_secs(20),
        "a run on node A",
        &[&a],
        async || {
            a.log()
                .contains("holds the connector's run lock")
                .then_some(())
        },
    )
    .await;
    let (status, body, _) =
        status_of(admin.post(format!("{}/api/connectors/kc/run", b.admin))).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("another node"),
        "{body}"
    );
    let (code, _, stderr) = tree.run(&["sync", "kc", "--via", &b.admin]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another node"), "{stderr}");
    assert_eq!(a.stop(libc::SIGTERM), Some(0));
    assert_eq!(b.stop(libc::SIGTERM), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_while_the_scim_listener_is_full() {
    use tokio::io::AsyncWriteExt;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let tree = Tree::new(&url, "http://127.0.0.1:9", "0 0 1 1 *");
    let toml = std::fs::read_to_string(tree.path("idsync.toml")).expect("idsync.toml");
    tree.write(
        "idsync.toml",
        &format!("{toml}[scim]\nmax_connections = 4\nheader_read_timeout_seconds = 30\n"),
    );
    let admin = tree.client();
    let node = Node::start(&tree, "full");
    let anonymous = reqwest::Client::new();
    eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&anonymous, &format!("{}/readyz", node.admin)).await
    })
    .await;
    // Four clients that send half a request header and wait hold every slot.
    let scim_addr = node
        .scim
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("address")
        .to_string();
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&scim_addr)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /scim/okta/v2/Users HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(stream);
    }
    let reason = eventually_with(
        Duration::from_secs(20),
        "/readyz 503",
        &[&node],
        async || {
            let response = anonymous
                .get(format!("{}/readyz", node.admin))
                .send()
                .await
                .ok()?;
            if response.status() != 503 {
                return None;
            }
            let body: Value = response.json().await.ok()?;
            body["reason"].as_str().map(str::to_string)
        },
    )
    .await;
    assert!(reason.contains("connection"), "{reason}");
    // The slots come back when the slow clients go: ready again.
    drop(slow);
    eventually(Duration::from_secs(20), "/readyz 200 again", async || {
        get_json(&anonymous, &format!("{}/readyz", node.admin)).await
    })
    .await;
    drop(admin);
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}
