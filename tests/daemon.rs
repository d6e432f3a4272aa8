//! `idsync serve` as real processes: a node with a scheduled Keycloak connector (against the
//! fake Keycloak) and a SCIM tenant, checked through its admin API, its metrics, SCIM and
//! the target; and two nodes sharing one PostgreSQL target, one of them killed (SIGKILL)
//! in the middle of a run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::conformance::{Directory, Knobs};
use crate::support::fake_keycloak::FakeKeycloak;

/// A configuration tree in a temporary directory.
pub(crate) struct Tree {
    dir: tempfile::TempDir,
    /// The admin token, created on first use (`idsync admin-token create`).
    admin_token: std::sync::OnceLock<String>,
}

impl Tree {
    pub(crate) fn new(database_url: &str, keycloak_base: &str, schedule: &str) -> Tree {
        let tree = Tree {
            dir: tempfile::tempdir().expect("temp dir"),
            admin_token: std::sync::OnceLock::new(),
        };
        tree.write(
            "idsync.toml",
            &format!(
                "[target]\ndatabase_url = \"{database_url}\"\n[scheduler]\nshutdown_grace_seconds = 5\n"
            ),
        );
        tree.write(
            "mappings/default.toml",
            "on_remove = \"disable\"\nmax_deletes = 100000\nmax_delete_percent = 100.0\n",
        );
        tree.write(
            "connectors/kc.toml",
            &format!(
                "kind = \"keycloak\"\nmapping = \"default\"\nschedule = \"{schedule}\"\n\
                 [keycloak]\nbase_url = \"{keycloak_base}\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nallow_insecure_http = true\n\
                 client_secret = {{ env = \"KC_SECRET\" }}\npage_size = 10\nrequests_per_second = 1000\n"
            ),
        );
        tree.write(
            "connectors/okta.toml",
            "kind = \"scim\"\nmapping = \"default\"\n",
        );
        tree
    }

    /// An admin token of this tree's database, created once through the CLI.
    pub(crate) fn admin_token(&self) -> &str {
        self.admin_token.get_or_init(|| {
            let (code, stdout, stderr) = self.run(&["admin-token", "create", "tests"]);
            assert_eq!(code, 0, "admin-token create: {stderr}");
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("token:"))
                .expect("token line")
                .trim()
                .to_string()
        })
    }

    /// An HTTP client that sends the admin token.
    pub(crate) fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", self.admin_token())
                .parse()
                .expect("header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_idsync"));
        command
            .arg("--config")
            .arg(self.path("idsync.toml"))
            .args(args)
            .env("KC_SECRET", "s3cret")
            .env(
                "IDSYNC_ADMIN_TOKEN",
                self.admin_token.get().map(String::as_str).unwrap_or(""),
            )
            .env_remove("IDSYNC_CONFIG")
            .env_remove("RUST_LOG");
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.command(args).output().expect("run idsync");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// A [`Tree`] whose `kc` connector reads a fake Keycloak serving a directory, on a SQLite
/// target in a temporary directory that lives as long as it.
pub(crate) struct KeycloakTree {
    pub(crate) fake: std::sync::Arc<FakeKeycloak>,
    pub(crate) tree: Tree,
    _database_dir: tempfile::TempDir,
}

pub(crate) async fn keycloak_tree(directory: Directory, schedule: &str) -> KeycloakTree {
    let fake = FakeKeycloak::start_concrete(directory, Knobs::default()).await;
    let database_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", database_dir.path().display());
    let tree = Tree::new(&url, fake.base_url(), schedule);
    KeycloakTree {
        fake,
        tree,
        _database_dir: database_dir,
    }
}

/// A [`keycloak_tree`] whose `kc` connector has a held run: 30 users synced, then the
/// source shrunk to 5 against `max_deletes = 3`.
pub(crate) async fn held_keycloak_tree() -> KeycloakTree {
    use crate::support::conformance::FakeProvider;
    let dir = Directory::generated(30, 2, 5);
    let site = keycloak_tree(dir.clone(), "0 0 1 1 *").await;
    site.tree.write(
        "mappings/default.toml",
        "on_remove = \"disable\"\nmax_deletes = 3\nmax_delete_percent = 100.0\n",
    );
    let (code, _, stderr) = site.tree.run(&["sync", "kc"]);
    assert_eq!(code, 0, "{stderr}");
    let mut shrunk = dir;
    shrunk.users.truncate(5);
    site.fake.set_directory(shrunk);
    let (code, _, _) = site.tree.run(&["sync", "kc"]);
    assert_eq!(code, 3, "held");
    site
}

impl Tree {
    /// A file connector `id` over the repository's example HR snapshot (nested groups),
    /// through mapping `mapping`.
    pub(crate) fn add_example_snapshot(&self, id: &str, mapping: &str) {
        let snapshot =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/snapshot.json");
        self.write(
            &format!("connectors/{id}.toml"),
            &format!(
                "kind = \"file\"\nmapping = \"{mapping}\"\n[file]\npath = \"{}\"\nformat = \"json\"\n",
                snapshot.display()
            ),
        );
    }

    /// A new token of SCIM tenant `tenant`, issued through the CLI.
    pub(crate) fn tenant_token(&self, tenant: &str) -> String {
        let (code, stdout, stderr) = self.run(&["tenant", "create", tenant]);
        assert_eq!(code, 0, "tenant create: {stderr}");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("token:"))
            .expect("token line")
            .trim()
            .to_string()
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `idsync serve`, its stderr in a file; killed if the test ends first.
pub(crate) struct Node {
    child: Option<Child>,
    pub(crate) admin: String,
    pub(crate) scim: String,
    log: PathBuf,
}

impl Node {
    pub(crate) fn start(tree: &Tree, name: &str) -> Node {
        let (scim_port, admin_port) = (free_port(), free_port());
        let log = tree.path(&format!("{name}.log"));
        let child = tree
            .command(&[
                "--log-level",
                "info,sqlx=warn",
                "--log-format",
                "json",
                "serve",
                "--scim-listen",
                &format!("127.0.0.1:{scim_port}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin_port}"),
            ])
            .stderr(std::fs::File::create(&log).expect("log file"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start idsync serve");
        Node {
            child: Some(child),
            admin: format!("http://127.0.0.1:{admin_port}"),
            scim: format!("http://127.0.0.1:{scim_port}/scim/okta/v2"),
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Sends `signal` and waits for the exit code.
    pub(crate) fn stop(mut self, signal: i32) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        child.wait().expect("wait").code()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `probe` every 50 ms until it gives a value, for at most `limit`; on a timeout the
/// panic shows the logs of `nodes`.
pub(crate) async fn eventually_with<T>(
    limit: Duration,
    what: &str,
    nodes: &[&Node],
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = nodes.iter().map(|n| n.log()).collect();
            panic!(
                "timed out waiting for {what}; logs:\n{}",
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn eventually<T>(
    limit: Duration,
    what: &str,
    probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    eventually_with(limit, what, &[], probe).await
}

async fn metrics_of(client: &reqwest::Client, node: &Node) -> String {
    client
        .get(format!("{}/metrics", node.admin))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_schedules_serves_scim_and_reports_metrics() {
    let fake = FakeKeycloak::start_concrete(Directory::generated(40, 4, 8), Knobs::default()).await;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let tree = Tree::new(&url, fake.base_url(), "* * * * * *");
    let (code, stdout, stderr) = tree.run(&["tenant", "create", "okta"]);
    assert_eq!(code, 0, "{stderr}");
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .expect("token")
        .trim()
        .to_string();

    let client = tree.client();
    let node = Node::start(&tree, "a");
    let ready = eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&client, &format!("{}/readyz", node.admin)).await
    })
    .await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        get_json(&client, &format!("{}/healthz", node.admin))
            .await
            .expect("healthz")["status"],
        "ok"
    );

    // The every-second schedule runs the Keycloak connector by itself.
    let connectors = eventually(Duration::from_secs(20), "a scheduled run", async || {
        let list = get_json(&client, &format!("{}/api/connectors", node.admin)).await?;
        let kc = list.as_array()?.iter().find(|c| c["id"] == "kc")?.clone();
        (kc["last_run"]["outcome"] == "succeeded").then_some(list)
    })
    .await;
    let kc = connectors
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "kc")
        .unwrap();
    assert_eq!(kc["kind"], "keycloak");
    assert_eq!(kc["schedule"], "* * * * * *");

    // A push over SCIM lands in the same target.
    let pushed = client
        .post(format!("{}/Users", node.scim))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "pushed@example.com", "emails": [{"value": "pushed@example.com"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("SCIM POST");
    assert_eq!(pushed.status(), 201);
    let (code, stdout, _) = tree.run(&["users", "list", "--format", "json", "--limit", "1000"]);
    assert_eq!(code, 0);
    let users: Value = serde_json::from_str(&stdout).expect("json");
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"pushed@example.com"));
    assert!(names.contains(&"user000000@example.com"), "{names:?}");

    // Run now, through the admin API and through the CLI.
    let accepted = client
        .post(format!("{}/api/connectors/kc/run", node.admin))
        .send()
        .await
        .expect("run now");
    assert!(
        [202, 409].contains(&accepted.status().as_u16()),
        "{}",
        accepted.status()
    );
    let unknown = client
        .post(format!("{}/api/connectors/nope/run", node.admin))
        .send()
        .await
        .expect("run now");
    assert_eq!(unknown.status(), 404);
    let (code, _, stderr) = tree.run(&["sync", "kc", "--via", &node.admin]);
    assert!(code == 0 || stderr.contains("already running"), "{stderr}");

    let metrics = metrics_of(&client, &node).await;
    assert!(
        metrics.contains("idsync_sync_runs_total{connector=\"kc\",outcome=\"succeeded\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("idsync_scim_requests_total{status=\"201\",tenant=\"okta\"} 1"));
    assert!(metrics.contains("idsync_idp_requests_total{kind=\"keycloak\",outcome=\"ok\"}"));
    assert!(metrics.contains("idsync_sync_records_total{change=\"created\",connector=\"kc\"}"));
    let events = get_json(&client, &format!("{}/api/events?tenant=okta", node.admin))
        .await
        .expect("events");
    assert_eq!(events[0]["status"], 201);
    let held = get_json(&client, &format!("{}/api/held", node.admin))
        .await
        .expect("held");
    assert_eq!(held, json!({"runs": [], "tenants": []}));

    let log = node.log();
    assert!(
        log.lines().any(|l| l.starts_with('{')),
        "JSON log lines: {log}"
    );
    assert!(!log.contains("s3cret"), "no secret in the log");
    assert_eq!(node.stop(libc::SIGTERM), Some(0), "SIGTERM stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_is_reported_until_confirmed() {
    let dir = Directory::generated(40, 4, 8);
    let fake = FakeKeycloak::start_concrete(dir.clone(), Knobs::default()).await;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    // On demand only: a schedule that never fires in the test's lifetime.
    let tree = Tree::new(&url, fake.base_url(), "0 0 1 1 *");
    tree.write(
        "mappings/default.toml",
        "on_remove = \"disable\"\nmax_deletes = 5\nmax_delete_percent = 100.0\n",
    );
    let (code, _, stderr) = tree.run(&["sync", "kc"]);
    assert_eq!(code, 0, "{stderr}");
    let mut shrunk = dir.clone();
    shrunk.users.truncate(10);
    use crate::support::conformance::FakeProvider;
    fake.set_directory(shrunk);

    let client = tree.client();
    let node = Node::start(&tree, "held");
    eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&client, &format!("{}/readyz", node.admin)).await
    })
    .await;
    let started = client
        .post(format!("{}/api/connectors/kc/run", node.admin))
        .send()
        .await
        .expect("run");
    assert_eq!(started.status(), 202);
    let held = eventually(Duration::from_secs(20), "a held run", async || {
        let held = get_json(&client, &format!("{}/api/held", node.admin)).await?;
        (!held["runs"].as_array()?.is_empty()).then_some(held)
    })
    .await;
    assert_eq!(held["runs"][0]["connector"], "kc");
    let metrics = metrics_of(&client, &node).await;
    assert!(
        metrics.contains("idsync_held_runs{connector=\"kc\"} 1"),
        "{metrics}"
    );
    let confirmed = client
        .post(format!("{}/api/held/kc/confirm", node.admin))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), 200, "{:?}", confirmed.text().await);
    let held = get_json(&client, &format!("{}/api/held", node.admin))
        .await
        .expect("held");
    assert_eq!(held["runs"], json!([]));
    // The confirmation is in the audit trail, under the admin token's name.
    let trail = get_json(&client, &format!("{}/api/audit", node.admin))
        .await
        .expect("audit");
    assert!(
        trail
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["action"] == "held.confirm" && e["actor"] == "tests" && e["target"] == "kc"),
        "{trail}"
    );
    // A user that left the source (it was active) is disabled once confirmed.
    let (_, stdout, _) = tree.run(&[
        "users",
        "show",
        "user000038@example.com",
        "--format",
        "json",
    ]);
    let user: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(user["active"], false, "{user}");
    assert!(user["removed_at"].is_string(), "{user}");
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_postgres_and_survive_a_killed_node() {
    let Some(db) = crate::support::postgres().await else {
        return;
    };
    let url = db.postgres_url().expect("url");
    let dir = Directory::generated(60, 6, 10);
    // Slow pages, so a run is still going when its node is killed.
    let fake = FakeKeycloak::start_concrete(
        dir.clone(),
        Knobs {
            request_delay: Duration::from_millis(60),
            ..Knobs::default()
        },
    )
    .await;
    let tree = Tree::new(&url, fake.base_url(), "* * * * * *");
    let (code, _, stderr) = tree.run(&["check"]);
    assert_eq!(code, 0, "{stderr}");
    let a = Node::start(&tree, "a");
    let b = Node::start(&tree, "b");

    // Wait until one node is in a run (its run record says so), and kill that node.
    let pool = db.pool().clone();
    // A node is in a run when it logged more starts than ends.
    let in_run = |node: &Node| {
        let log = node.log();
        // The lock line of the launcher, and the end of the run as `sync` logs it.
        let started = log.matches("holds the connector's run lock").count();
        let ended = log
            .lines()
            // `idsync::sync` and `idsync::sync::failed`.
            .filter(|l| l.contains("\"target\":\"idsync::sync"))
            .filter(|l| l.contains("\"run finished\"") || l.contains("\"run failed\""))
            .count();
        started > ended
    };
    let runner = eventually(Duration::from_secs(30), "a run in progress", async || {
        let runs = idsync::store::runs::recent_runs(&pool, Some("kc"), 1)
            .await
            .ok()?;
        if runs.first()?.outcome != idsync::store::runs::Outcome::Running {
            return None;
        }
        match (in_run(&a), in_run(&b)) {
            (true, false) => Some("a"),
            (false, true) => Some("b"),
            _ => None,
        }
    })
    .await;
    let (victim, survivor) = if runner == "a" { (a, b) } else { (b, a) };
    assert!(victim.pid() > 0);
    victim.stop(libc::SIGKILL);

    // The survivor takes over on a later tick and completes a run.
    let client = tree.client();
    eventually_with(
        Duration::from_secs(40),
        "a run on the surviving node",
        &[&survivor],
        async || {
            let list = get_json(&client, &format!("{}/api/connectors", survivor.admin)).await?;
            let kc = list.as_array()?.iter().find(|c| c["id"] == "kc")?.clone();
            (kc["last_run"]["outcome"] == "succeeded").then_some(())
        },
    )
    .await;

    // Never two runs at once: the survivor skipped while the lock was held, or ran alone.
    let runs = idsync::store::runs::recent_runs(db.pool(), Some("kc"), 100)
        .await
        .expect("runs");
    let mut spans: Vec<(String, String)> = runs
        .iter()
        .filter_map(|r| Some((r.started_at.clone(), r.finished_at.clone()?)))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping runs: {pair:?}");
    }
    assert!(
        runs.iter()
            .any(|r| r.outcome == idsync::store::runs::Outcome::Interrupted),
        "the killed node's run is recorded as interrupted: {runs:?}"
    );
    // The killed node's run never committed: the target is complete and consistent.
    let users = idsync::target::query::list_users(db.pool(), Some("kc"), 1000, 0)
        .await
        .expect("users");
    let expected = dir
        .users
        .iter()
        .filter(|u| {
            !matches!(
                u.status,
                crate::support::conformance::UserStatus::Deleted
                    | crate::support::conformance::UserStatus::Service
            )
        })
        .count();
    assert_eq!(users.len(), expected);
    assert_eq!(survivor.stop(libc::SIGTERM), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_whose_idp_is_down_fails_and_the_others_go_on() {
    let up = FakeKeycloak::start_concrete(Directory::generated(20, 2, 5), Knobs::default()).await;
    // "Down": every users page answers 500 (asking for an immediate retry) until the
    // client's attempt cap gives up.
    let down = FakeKeycloak::start_concrete(
        Directory::generated(5, 1, 2),
        Knobs {
            fail_last_page: Some(crate::support::conformance::Listing::Users),
            ..Knobs::default()
        },
    )
    .await;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let tree = Tree::new(&url, up.base_url(), "* * * * * *");
    tree.write(
        "connectors/broken.toml",
        &format!(
            "kind = \"keycloak\"\nmapping = \"default\"\nschedule = \"* * * * * *\"\n\
             [keycloak]\nbase_url = \"{}\"\nrealm = \"acme\"\nclient_id = \"idsync\"\nallow_insecure_http = true\n\
             client_secret = {{ env = \"KC_SECRET\" }}\n",
            down.base_url()
        ),
    );
    let client = tree.client();
    let node = Node::start(&tree, "down");
    // Both run every second; the broken one's runs fail, the other's succeed.
    let ran = async |id: &str, outcome: &str| -> Option<Value> {
        let runs = get_json(&client, &format!("{}/api/runs?connector={id}", node.admin)).await?;
        runs.as_array()?
            .iter()
            .find(|r| r["outcome"] == outcome)
            .cloned()
    };
    let failed = eventually_with(
        Duration::from_secs(30),
        "a failed run of the broken connector and a good one of the other",
        &[&node],
        async || {
            let failed = ran("broken", "failed").await?;
            ran("kc", "succeeded").await?;
            Some(failed)
        },
    )
    .await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("500"),
        "{failed}"
    );
    let metrics = metrics_of(&client, &node).await;
    assert!(metrics.contains("idsync_sync_runs_total{connector=\"broken\",outcome=\"failed\"}"));
    assert!(metrics.contains("idsync_sync_runs_total{connector=\"kc\",outcome=\"succeeded\"}"));
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_clear_error() {
    let tree = Tree::new(
        "postgres://idsync@127.0.0.1:1/idsync",
        "http://127.0.0.1:9",
        "0 0 1 1 *",
    );
    let started = Instant::now();
    let (code, _, stderr) = tree.run(&[
        "serve",
        "--scim-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("database is not reachable"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "names where: {stderr}");
    assert!(
        stderr.contains("--wait-for-db"),
        "says how to wait: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_can_be_discarded() {
    let site = held_keycloak_tree().await;
    let tree = &site.tree;
    let client = tree.client();
    let node = Node::start(tree, "discard");
    let held = eventually(Duration::from_secs(20), "/api/held", async || {
        get_json(&client, &format!("{}/api/held", node.admin)).await
    })
    .await;
    assert_eq!(held["runs"][0]["connector"], "kc");
    let discarded = client
        .post(format!("{}/api/held/kc/discard", node.admin))
        .send()
        .await
        .expect("discard");
    assert_eq!(discarded.status(), 200);
    let held = get_json(&client, &format!("{}/api/held", node.admin))
        .await
        .expect("held");
    assert_eq!(held["runs"], json!([]));
    let again = client
        .post(format!("{}/api/held/kc/discard", node.admin))
        .send()
        .await
        .expect("discard");
    assert_eq!(again.status(), 409);
    let trail = get_json(&client, &format!("{}/api/audit", node.admin))
        .await
        .expect("audit");
    let discards: Vec<&Value> = trail
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == "held.discard")
        .collect();
    assert_eq!(discards.len(), 1, "only the discard that happened: {trail}");
    assert_eq!(discards[0]["actor"], "tests");
    let tenant = client
        .post(format!("{}/api/held/okta/discard", node.admin))
        .send()
        .await
        .expect("discard");
    assert_eq!(tenant.status(), 409, "a SCIM hold cannot be discarded");
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_exits_in_bounded_time_with_nothing_half_applied() {
    // Slow pages: the first run takes far longer than the grace period.
    let fake = FakeKeycloak::start_concrete(
        Directory::generated(100, 5, 10),
        Knobs {
            page_size: 5,
            request_delay: Duration::from_millis(150),
            ..Knobs::default()
        },
    )
    .await;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    let tree = Tree::new(&url, fake.base_url(), "* * * * * *");
    tree.write(
        "idsync.toml",
        &format!("[target]\ndatabase_url = \"{url}\"\n[scheduler]\nshutdown_grace_seconds = 1\n"),
    );
    let node = Node::start(&tree, "term");
    eventually_with(
        Duration::from_secs(20),
        "a run in progress",
        &[&node],
        async || {
            node.log()
                .contains("holds the connector's run lock")
                .then_some(())
        },
    )
    .await;
    let stopping = Instant::now();
    assert_eq!(node.stop(libc::SIGTERM), Some(0), "exit 0");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "bounded: {:?}",
        stopping.elapsed()
    );
    // The abandoned run's transaction was rolled back: nothing of it in the target.
    let (code, stdout, stderr) = tree.run(&["users", "list", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "[]", "nothing half-applied");
}
