//! The `idsync` binary end to end on a temporary configuration tree with an SQLite target:
//! outputs, JSON shapes and exit codes (0 ok, 1 failed run, 2 bad config, 3 held).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    /// idsync.toml + one file connector `hr` reading `snapshot.json` through mapping `default`.
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("temp dir");
        let tree = Tree { dir };
        tree.write(
            "idsync.toml",
            "[target]\ndatabase_url = \"sqlite://target.db\"\n",
        );
        tree.write(
            "connectors/hr.toml",
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"snapshot.json\"\n",
        );
        tree.write(
            "mappings/default.toml",
            "on_remove = \"disable\"\nmax_deletes = 500\nmax_delete_percent = 20.0\n",
        );
        tree.snapshot(5);
        tree
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// `n` users; group `Staff` holds them all, group `Leads` holds u0 and nests `Staff`.
    fn snapshot(&self, n: usize) {
        let users: Vec<Value> = (0..n)
            .map(|i| {
                serde_json::json!({"id": format!("u{i}"), "userName": format!("user{i}@example.com"),
                    "givenName": "Given", "familyName": format!("F{i}")})
            })
            .collect();
        let members: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"type": "user", "id": format!("u{i}")}))
            .collect();
        let snapshot = serde_json::json!({
            "users": users,
            "groups": [
                {"id": "g1", "displayName": "Staff", "members": members},
                {"id": "g2", "displayName": "Leads", "members": [
                    {"type": "user", "id": "u0"}, {"type": "group", "id": "g1"}]},
            ]
        });
        self.write("snapshot.json", &snapshot.to_string());
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_idsync"))
            .arg("--config")
            .arg(self.path("idsync.toml"))
            .args(args)
            .env_remove("IDSYNC_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .expect("run idsync");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> Value {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }
}

#[test]
fn the_repository_configuration_checks_clean() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = idsync::config::Config::load(&repo.join("idsync.toml"))
        .unwrap_or_else(|e| panic!("the bundled configuration must be valid:\n{e}"));
    assert!(config.connectors.contains_key("example-hr"));
    assert!(config.connectors.contains_key("example-csv"));
    assert!(matches!(
        config.connectors["example-okta-scim"].settings,
        idsync::config::ConnectorSettings::Scim(_)
    ));
    // Disabled, so its unset AZURE_CLIENT_SECRET is looked up only when it is started.
    let azure = &config.connectors["example-azure"];
    assert!(!azure.enabled);
    assert!(matches!(
        azure.settings,
        idsync::config::ConnectorSettings::Azure(_)
    ));
    let okta = &config.connectors["example-okta"];
    assert!(!okta.enabled);
    assert!(matches!(
        okta.settings,
        idsync::config::ConnectorSettings::Okta(_)
    ));
    assert!(config.mappings.contains_key("default"));
    // The Google example is disabled but still checked: its key file is a bundled
    // throwaway key (examples/google-service-account.example.json).
    let google = &config.connectors["example-google"];
    assert!(!google.enabled);
    assert!(matches!(
        google.settings,
        idsync::config::ConnectorSettings::Google(_)
    ));
}

#[test]
fn sync_then_list_and_show_as_json() {
    let tree = Tree::new();
    let (code, stdout, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("hr: succeeded (run 1, read 7 records (full))"),
        "{stdout}"
    );
    assert!(stdout.contains("users:       5 created"), "{stdout}");

    let users = tree.json(&["users", "list", "--format", "json"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 5);
    assert_eq!(names[0], "user0@example.com");
    assert_eq!(users[0]["display_name"], "Given F0");
    assert_eq!(users[0]["active"], true);
    assert_eq!(users[0]["connector"], "hr");

    let user = tree.json(&["users", "show", "USER0@example.com", "--format", "json"]);
    assert_eq!(user["groups"], serde_json::json!(["Leads", "Staff"]));
    assert_eq!(
        user["effective_groups"],
        serde_json::json!(["Leads", "Staff"])
    );

    let leads = tree.json(&["groups", "show", "leads", "--effective", "--format", "json"]);
    assert_eq!(leads["name"], "Leads");
    assert_eq!(leads["effective"], true);
    assert_eq!(leads["members"].as_array().unwrap().len(), 5);
    let direct = tree.json(&["groups", "show", "Leads", "--format", "json"]);
    let kinds: Vec<&str> = direct["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["user", "group"]);

    let (code, stdout, _) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("hr: unchanged"), "{stdout}");
    let runs = tree.json(&["runs", "--format", "json"]);
    assert_eq!(runs[0]["outcome"], "unchanged");
    assert_eq!(runs[1]["outcome"], "succeeded");
    assert_eq!(runs[1]["counts"]["users_created"], 5);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let tree = Tree::new();
    let (code, stdout, stderr) = tree.run(&["sync", "hr", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("dry run, nothing written"), "{stdout}");
    assert!(stdout.contains("create user user0@example.com"), "{stdout}");
    assert_eq!(
        tree.json(&["users", "list", "--format", "json"]),
        serde_json::json!([])
    );
    assert_eq!(
        tree.json(&["runs", "--format", "json"]),
        serde_json::json!([])
    );
}

#[test]
fn a_held_run_exits_3_and_allow_mass_delete_applies_it() {
    let tree = Tree::new();
    assert_eq!(tree.run(&["sync", "hr"]).0, 0);
    tree.snapshot(2);
    let (code, stdout, _) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("hr: held"), "{stdout}");
    assert!(stdout.contains("--allow-mass-delete"), "{stdout}");
    let users = tree.json(&["users", "list", "--format", "json"]);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["active"] == true)
    );

    let (code, stdout, _) = tree.run(&["sync", "hr", "--allow-mass-delete"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("3 disabled"), "{stdout}");
    // Lifting the limits is an admin's decision: it is in the audit trail.
    let (code, stdout, stderr) = tree.run(&["audit", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let trail: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(trail[0]["action"], "run.allow_mass_delete", "{trail}");
    assert_eq!(trail[0]["target"], "hr");
    assert!(
        trail[0]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("cli:"))
    );
}

#[test]
fn a_malformed_snapshot_fails_with_file_and_line_and_exit_1() {
    let tree = Tree::new();
    tree.write(
        "snapshot.json",
        "{\n  \"users\": [\n    {\"id\": \"u1\",, }\n  ]\n}\n",
    );
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("snapshot.json:3:"), "{stderr}");
    let runs = tree.json(&["runs", "--format", "json"]);
    assert_eq!(runs[0]["outcome"], "failed");
    assert_eq!(
        tree.json(&["users", "list", "--format", "json"]),
        serde_json::json!([])
    );
}

#[test]
fn csv_users_sync() {
    let tree = Tree::new();
    tree.write(
        "connectors/csv.toml",
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"users.csv\"\n",
    );
    tree.write(
        "users.csv",
        "id,userName,givenName,familyName,email,active,department\n\
         c1,ann@example.com,Ann,Lee,ann@example.com,true,Sales\n\
         c2,bo@example.com,Bo,Kim,bo@example.com,no,Ops\n",
    );
    let (code, _, stderr) = tree.run(&["sync", "csv"]);
    assert_eq!(code, 0, "{stderr}");
    let bo = tree.json(&["users", "show", "bo@example.com", "--format", "json"]);
    assert_eq!(bo["active"], false);
    assert_eq!(bo["attributes"]["department"], "Ops");
    assert_eq!(bo["email"], "bo@example.com");
}

#[test]
fn bad_configuration_exits_2_listing_every_problem() {
    let tree = Tree::new();
    tree.write(
        "connectors/broken.toml",
        "kind = \"file\"\nmapping = \"nope\"\nschedule = \"61 * * * *\"\ncolour = \"blue\"\n[file]\npath = \"snapshot.json\"\n",
    );
    tree.write(
        "connectors/secretive.toml",
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"missing.json\"\n",
    );
    let (code, _, stderr) = tree.run(&["check"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("connectors/broken.toml:4"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
    assert!(stderr.contains("connectors/secretive.toml:4"), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    // sync refuses to run with a broken configuration too.
    let (code, _, _) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 2);
}

#[test]
fn unknown_connector_is_a_usage_error() {
    let tree = Tree::new();
    let (code, _, stderr) = tree.run(&["sync", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no connector `nope`"), "{stderr}");
    assert!(stderr.contains("known: hr"), "{stderr}");
}

#[test]
fn check_connect_evaluates_the_mapping_against_sampled_records() {
    let tree = Tree::new();
    // The file format's columns are free-form, so only a look at real records can tell
    // that `familyNam` never arrives.
    tree.write(
        "mappings/default.toml",
        "on_remove = \"disable\"\n[attributes]\nuser_name = \"userName | lower\"\n\
         [attributes.custom]\nsurname = \"familyNam\"\n",
    );
    let (code, stdout, stderr) = tree.run(&["check", "--connect"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "hr (file): mapping sample: FAILED — mappings/default.toml: attributes.custom.surname \
             reads `familyNam`, which none of the 5 sampled user(s) has"
        ),
        "{stdout}"
    );
    tree.write(
        "mappings/default.toml",
        "on_remove = \"disable\"\n[attributes.custom]\nsurname = \"familyName\"\n",
    );
    let (code, stdout, stderr) = tree.run(&["check", "--connect"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("hr (file): mapping sample: ok — every attribute the mapping reads is present in the 5 sampled user(s)"),
        "{stdout}"
    );
}

#[test]
fn check_connect_tries_each_enabled_connector() {
    let tree = Tree::new();
    let (code, stdout, stderr) = tree.run(&["check", "--connect"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("configuration ok: 1 connector(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hr (file): open the file: ok —"),
        "{stdout}"
    );
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `idsync serve` as a child process, stopped with SIGTERM (killed if a test fails first).
struct Served {
    child: Option<std::process::Child>,
}

impl Served {
    fn start(tree: &Tree, port: u16) -> Served {
        let child = Command::new(env!("CARGO_BIN_EXE_idsync"))
            .arg("--config")
            .arg(tree.path("idsync.toml"))
            .args([
                "serve",
                "--scim-listen",
                &format!("127.0.0.1:{port}"),
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .env_remove("IDSYNC_CONFIG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start idsync serve");
        let served = Served { child: Some(child) };
        // Wait (in short steps) until it accepts connections.
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return served;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("idsync serve did not start listening on {port}");
    }

    /// SIGTERM, then the exit code and what it printed.
    fn stop(mut self) -> (i32, String) {
        let child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let output = child.wait_with_output().expect("wait");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
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

#[tokio::test]
async fn serve_takes_pushes_for_a_tenant_and_logs_them() {
    let tree = Tree::new();
    tree.write(
        "connectors/okta.toml",
        "kind = \"scim\"\nmapping = \"default\"\n",
    );
    let (code, stdout, stderr) = tree.run(&[
        "tenant",
        "create",
        "okta",
        "--base-url",
        "https://idsync.example.com",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("https://idsync.example.com/scim/okta/v2"),
        "{stdout}"
    );
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .map(|t| t.trim().to_string())
        .expect("the token is printed");
    let (code, _, stderr) = tree.run(&["tenant", "create", "hr"]);
    assert_eq!(code, 2, "a pull connector is not a tenant: {stderr}");

    let port = free_port();
    let served = Served::start(&tree, port);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/scim/okta/v2/Users");
    let created = client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "pushed@example.com",
                "emails": [{"value": "pushed@example.com", "primary": true}],
                "password": "s3cret-never-logged"
            })
            .to_string(),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let unauthorised = client.get(&url).send().await.expect("GET");
    assert_eq!(unauthorised.status(), 401);

    let users = tree.json(&["users", "list", "--connector", "okta", "--format", "json"]);
    assert_eq!(users[0]["user_name"], "pushed@example.com");
    let tenants = tree.json(&["tenant", "list", "--format", "json"]);
    assert_eq!(tenants[0]["tenant"], "okta");
    assert_eq!(tenants[0]["tokens"].as_array().map(Vec::len), Some(1));

    let (code, _, stderr) = tree.run(&["tenant", "revoke", "okta", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    let revoked = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(revoked.status(), 401);

    let (code, stderr) = served.stop();
    assert_eq!(code, 0, "SIGTERM stops serve cleanly: {stderr}");
    let events = tree.json(&["events", "--tenant", "okta", "--format", "json"]);
    let events = events.as_array().expect("events");
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[2]["operation"], "create user pushed@example.com");
    assert!(
        !events[2]["request_body"]
            .as_str()
            .unwrap()
            .contains("s3cret")
    );
    let failures = tree.json(&[
        "events", "--status", "4xx", "--since", "1h", "--format", "json",
    ]);
    assert_eq!(failures.as_array().map(Vec::len), Some(2));
    let (code, csv, _) = tree.run(&["events", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with("id,tenant,at,method,path,status"), "{csv}");
}

#[test]
fn serve_names_a_port_in_use() {
    let tree = Tree::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let (code, _, stderr) = tree.run(&[
        "serve",
        "--scim-listen",
        &format!("127.0.0.1:{port}"),
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&format!("port {port}")), "{stderr}");
}

/// Commands that only read never migrate, and say what to run instead.
#[test]
fn reading_commands_never_migrate_and_say_to_run_migrate() {
    let tree = Tree::new();
    let (code, _, stderr) = tree.run(&["runs"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("holds no idsync schema yet: run `idsync migrate` (or a sync) first"),
        "{stderr}"
    );
    assert!(
        stderr.contains("opening the state database at sqlite://"),
        "{stderr}"
    );
    let (code, stdout, stderr) = tree.run(&["migrate"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("schema up to date"), "{stdout}");
    assert_eq!(
        tree.json(&["runs", "--format", "json"]),
        serde_json::json!([])
    );

    // A schema newer than this build (a newer idsync migrated it) is not read.
    let db = tree.path("target.db");
    let status = Command::new("sqlite3").arg(&db).arg(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from the future', 1, x'00', 0)",
    ).status();
    if status.is_ok_and(|s| s.success()) {
        let (code, _, stderr) = tree.run(&["users", "list"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("has schema version 99999, newer than this idsync"),
            "{stderr}"
        );
    } else {
        eprintln!("skipped the newer-schema case: no sqlite3 CLI");
    }
}

/// `users`, `groups`, `runs`, `events` and `tenant list` need only the database: a
/// connector whose secret is not set does not stop them (it does stop `check` and runs).
#[test]
fn reading_commands_work_without_connector_secrets() {
    let tree = Tree::new();
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0, "{stderr}");
    tree.write(
        "connectors/okta.toml",
        "kind = \"okta\"\nmapping = \"default\"\n[okta]\ndomain = \"example.okta.com\"\n\
         api_token = { env = \"IDSYNC_TEST_SECRET_THAT_IS_NOT_SET\" }\n",
    );
    let users = tree.json(&["users", "list", "--format", "json"]);
    assert_eq!(users.as_array().map(Vec::len), Some(5));
    for args in [
        &["groups", "list"][..],
        &["runs"],
        &["events"],
        &["tenant", "list"],
        &["audit"],
    ] {
        let (code, _, stderr) = tree.run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
    let (code, _, stderr) = tree.run(&["check"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("IDSYNC_TEST_SECRET_THAT_IS_NOT_SET"),
        "{stderr}"
    );
}

/// A database that does not answer fails a reading command with where it was tried.
#[test]
fn reading_commands_name_the_database_they_could_not_reach() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "idsync.toml",
        &format!(
            "[target]\ndatabase_url = \"postgres://idsync:hunter2@127.0.0.1:{port}/idsync\"\n"
        ),
    );
    let (code, _, stderr) = tree.run(&["runs"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "opening the state database at postgres://idsync:****@127.0.0.1:{port}/idsync"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Each cause is said once (the connect error names its cause already).
    let parts: Vec<&str> = stderr.trim().split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "`{part}` repeats in {stderr}"
        );
    }
}

/// `idsync reconcile <connector>`, as the hold messages and docs write it, is the same as
/// `--connector`.
#[test]
fn reconcile_takes_the_connector_by_position_or_flag() {
    let tree = Tree::new();
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0, "{stderr}");
    for args in [
        &["reconcile", "hr"][..],
        &["reconcile", "--connector", "hr"],
    ] {
        let (code, stdout, stderr) = tree.run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(stdout.contains("hr: "), "{args:?}: {stdout}");
    }
    let (code, _, stderr) = tree.run(&["reconcile", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no connector `nope`"), "{stderr}");
}

/// `check --format json`: one object with the summary and the probes, or the problems
/// (file, line, key) of a configuration that does not load.
#[test]
fn check_prints_json_for_scripts() {
    let tree = Tree::new();
    let report = tree.json(&["check", "--connect", "--format", "json"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["connectors"], 1);
    assert_eq!(report["problems"], serde_json::json!([]));
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|c| c["ok"] == true), "{report}");
    // The state database first (answering, no schema yet: nothing ran), then the source.
    assert_eq!(checks[0]["subject"], "state", "{report}");
    assert!(
        checks[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no schema yet")),
        "{report}"
    );
    assert!(checks[1..].iter().all(|c| c["subject"] == "hr"), "{report}");

    tree.write(
        "connectors/hr.toml",
        "kind = \"file\"\nmapping = \"default\"\nschedule = \"*/5 * *\"\n[file]\npath = \"snapshot.json\"\n",
    );
    let (code, stdout, stderr) = tree.run(&["check", "--format", "json"]);
    assert_eq!(code, 2, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["ok"], false);
    let problem = &report["problems"][0];
    assert_eq!(problem["file"], "connectors/hr.toml", "{report}");
    assert_eq!(problem["line"], 3, "{report}");
    assert_eq!(problem["key"], "schedule", "{report}");
}

/// Columns in error positions count from 1, as docs/file-formats.md says, also where the
/// JSON parser reports the end of the input after a newline as column 0.
#[test]
fn error_columns_count_from_one() {
    let tree = Tree::new();
    tree.write("snapshot.json", "{\"users\": [\n\n");
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("snapshot.json:3:1: EOF while parsing"),
        "{stderr}"
    );
    assert!(!stderr.contains(":3:0:"), "{stderr}");
}
