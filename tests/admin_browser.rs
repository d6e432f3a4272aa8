//! The admin pages in a real browser (issue 16): Debian's headless chromium, driven through
//! chromedriver (WebDriver), against a real `idsync serve`. An admin signs in, runs a
//! connector and watches the run appear, opens the run, discards one held run and confirms
//! another, filters the SCIM event log and downloads it as CSV, and a form stripped of its
//! CSRF token is refused. Each page is saved as a
//! screenshot under the test's output directory (`CARGO_TARGET_TMPDIR/admin-pages`).
//!
//! Without chromium and chromedriver the test is skipped with a reason, unless
//! `IDSYNC_REQUIRE_BROWSER` is set (as `.ci/run` does), where it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::daemon::{Node, Tree, eventually, free_port, get_json, keycloak_tree};
use crate::support::conformance::{Directory, FakeProvider};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver and a headless chromium session, or None (with the reason printed) when
/// they are not installed and not required.
async fn browser(downloads: &Path) -> Option<(Driver, Client)> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let reason = format!(
            "skipping the browser test: {CHROMIUM} or {CHROMEDRIVER} is missing (Debian packages chromium and chromium-driver)"
        );
        if std::env::var_os("IDSYNC_REQUIRE_BROWSER").is_some() {
            panic!("{reason}, and IDSYNC_REQUIRE_BROWSER is set");
        }
        eprintln!("{reason}");
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let status = reqwest::Client::new();
    eventually(Duration::from_secs(20), "chromedriver", async || {
        get_json(&status, &format!("{}/status", driver.url))
            .await
            .filter(|s| s["value"]["ready"] == true)
    })
    .await;
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_string(),
        json!({
            "binary": CHROMIUM,
            // --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            },
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session");
    Some((driver, client))
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-pages");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write png");
}

/// The page's text once it contains `needle`: a click that submits a form returns before
/// the next page has loaded, so the test waits for what it expects to see.
async fn text_with(client: &Client, needle: &str) -> String {
    eventually(Duration::from_secs(20), needle, async || {
        let text = client
            .find(Locator::Css("body"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains(needle).then_some(text)
    })
    .await
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_works_through_the_pages_in_chromium() {
    let downloads = tempfile::tempdir().expect("downloads dir");
    let Some((_driver, client)) = browser(downloads.path()).await else {
        return;
    };
    let dir = Directory::generated(30, 3, 6);
    let site = keycloak_tree(dir.clone(), "30 2 * * *").await;
    let (fake, tree) = (&site.fake, &site.tree);
    tree.write(
        "mappings/default.toml",
        "on_remove = \"disable\"\nmax_deletes = 3\nmax_delete_percent = 100.0\n",
    );
    // The example HR snapshot, with nested groups, for the directory browser.
    tree.add_example_snapshot("hr", "default");
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0, "{stderr}");
    let token = tree.admin_token().to_string();
    let scim_token = tree.tenant_token("okta");
    let node = Node::start(tree, "browser");
    let api = tree.client();
    eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&api, &format!("{}/readyz", node.admin)).await
    })
    .await;

    // Signing in: the pages send the browser to the form and back.
    client
        .goto(&format!("{}/ui/", node.admin))
        .await
        .expect("goto");
    assert!(
        client
            .current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/ui/login")
    );
    screenshot(&client, "login").await;
    client
        .find(Locator::Css("input#token"))
        .await
        .expect("token field")
        .send_keys(&token)
        .await
        .expect("type");
    click(&client, "form button[type=submit]").await;
    let overview = text_with(&client, "Signed in as tests").await;
    assert!(overview.contains("never run"), "{overview}");

    // Run now, and the overview shows the run when it ends (it reloads itself meanwhile).
    click(&client, "form[action='/ui/connectors/kc/run'] button").await;
    text_with(&client, "A run of kc started").await;
    let link = eventually(
        Duration::from_secs(30),
        "the run on the overview",
        async || {
            client.goto(&format!("{}/ui/", node.admin)).await.ok()?;
            let run = client
                .find(Locator::Css(
                    "#connector-kc a[href^='/ui/runs/'] .badge.succeeded",
                ))
                .await
                .ok()?;
            run.text().await.ok()?;
            client
                .find(Locator::Css("#connector-kc a[href^='/ui/runs/']"))
                .await
                .ok()?
                .attr("href")
                .await
                .ok()?
        },
    )
    .await;
    screenshot(&client, "overview").await;
    client
        .goto(&format!("{}{link}", node.admin))
        .await
        .expect("goto run");
    let run = text_with(&client, " of kc").await;
    assert!(run.contains("create user"), "{run}");
    screenshot(&client, "run").await;

    // Two held runs in turn: the first discarded, the second confirmed.
    let mut shrunk = dir.clone();
    shrunk.users.truncate(5);
    fake.set_directory(shrunk);
    for (step, action) in [(1, "discard"), (2, "confirm")] {
        let (code, _, _) = tree.run(&["sync", "kc"]);
        assert_eq!(code, 3, "held ({step})");
        client
            .goto(&format!("{}/ui/held", node.admin))
            .await
            .expect("held");
        text_with(&client, "users would be disabled or deleted").await;
        if step == 1 {
            screenshot(&client, "held").await;
        }
        click(&client, &format!("a[href='/ui/held/kc/{action}']")).await;
        // The first click only asked; the page asks again.
        text_with(&client, "Yes,").await;
        if step == 2 {
            screenshot(&client, "held-confirm").await;
        }
        click(&client, "button.danger").await;
        if step == 1 {
            // Discarded: back on the held runs, with nothing left.
            text_with(&client, "Nothing is held.").await;
        }
    }
    // Confirmed: the page of the run that applied it.
    text_with(&client, "succeeded").await;
    client
        .goto(&format!("{}/ui/held", node.admin))
        .await
        .expect("held");
    text_with(&client, "Nothing is held.").await;
    let trail = get_json(&api, &format!("{}/api/audit", node.admin))
        .await
        .expect("audit");
    for action in ["held.discard", "held.confirm", "run.start"] {
        assert!(
            trail
                .as_array()
                .expect("array")
                .iter()
                .any(|e| e["action"] == action && e["actor"] == "tests"),
            "{action} by the signed-in admin: {trail}"
        );
    }

    // A form without its CSRF token is refused, and nothing runs.
    client
        .goto(&format!("{}/ui/", node.admin))
        .await
        .expect("overview");
    let runs_before = runs_of(tree);
    client
        .execute(
            "document.querySelectorAll(\"form[action='/ui/connectors/kc/run'] input[name=csrf]\").forEach(e => e.remove());",
            vec![],
        )
        .await
        .expect("strip the token");
    click(&client, "form[action='/ui/connectors/kc/run'] button").await;
    text_with(&client, "security token is missing or stale").await;
    assert_eq!(runs_of(tree), runs_before, "nothing ran");

    // The SCIM event log: an IdP's requests, filtered in the form, exported as CSV.
    let scim = reqwest::Client::new();
    for (user, status) in [("ada@example.com", 201), ("grace@example.com", 201)] {
        let created = scim
            .post(format!("{}/Users", node.scim))
            .bearer_auth(&scim_token)
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user}).to_string())
            .send()
            .await
            .expect("create");
        assert_eq!(created.status().as_u16(), status);
    }
    let lookup = scim
        .get(format!("{}/Users", node.scim))
        .query(&[("filter", "userName eq \"nobody@example.com\"")])
        .bearer_auth(&scim_token)
        .send()
        .await
        .expect("lookup");
    assert_eq!(lookup.status().as_u16(), 200);
    eventually(Duration::from_secs(20), "three events", async || {
        let events = get_json(&api, &format!("{}/api/events?tenant=okta", node.admin)).await?;
        (events.as_array()?.len() >= 3).then_some(())
    })
    .await;
    client
        .goto(&format!("{}/ui/events", node.admin))
        .await
        .expect("events");
    text_with(&client, "3 requests, newest first").await;
    client
        .find(Locator::Css("select#method option[value='POST']"))
        .await
        .expect("POST")
        .click()
        .await
        .expect("choose POST");
    client
        .find(Locator::Css("input#q"))
        .await
        .expect("text field")
        .send_keys("GRACE")
        .await
        .expect("type");
    click(&client, "form.filters button[type=submit]").await;
    let filtered = text_with(&client, "1 request, newest first").await;
    assert!(filtered.contains("POST /Users"), "{filtered}");
    screenshot(&client, "events").await;
    click(&client, "a[href^='/ui/events.csv']").await;
    let csv_path = downloads.path().join("idsync-scim-events.csv");
    let csv_text = eventually(Duration::from_secs(20), "the downloaded CSV", async || {
        std::fs::read_to_string(&csv_path)
            .ok()
            .filter(|t| t.lines().count() >= 2)
    })
    .await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 1, "{csv_text}");
    assert_eq!(&rows[0][3], "POST");
    assert!(rows[0][10].contains("grace@example.com"), "{csv_text}");

    // The directory: a search with a SCIM filter, a user's nested groups, a group's tree.
    client
        .goto(&format!("{}/ui/directory", node.admin))
        .await
        .expect("directory");
    client
        .find(Locator::Css("input#filter"))
        .await
        .expect("filter field")
        .send_keys(r#"emails co "example.com" and name.familyName sw "M""#)
        .await
        .expect("type");
    click(&client, "form.filters button[type=submit]").await;
    let found = text_with(&client, "users on this page").await;
    assert!(found.contains("bob.martin@example.com"), "{found}");
    assert!(found.contains("kofi.mensah@example.com"), "{found}");
    screenshot(&client, "directory").await;
    click(&client, "a[href^='/ui/directory/users/'][href]").await;
    let user = text_with(&client, "Effective groups").await;
    screenshot(&client, "user").await;
    if user.contains("bob.martin") {
        assert!(
            user.contains("Platform Team → Engineering → All Departments"),
            "{user}"
        );
    }
    client
        .goto(&format!(
            "{}/ui/directory?kind=groups&filter=displayName+eq+%22All+Departments%22",
            node.admin
        ))
        .await
        .expect("groups");
    click(&client, "a[href^='/ui/directory/groups/']").await;
    let group = text_with(&client, "Members").await;
    assert!(group.contains("Platform Team"), "{group}");
    screenshot(&client, "group").await;

    // A mapping edited on disk, previewed.
    tree.write(
        "mappings/default.toml",
        "on_remove = \"disable\"\nmax_deletes = 3\nmax_delete_percent = 100.0\n\
         [groups]\nrename = { \"Engineering\" = \"eng\" }\n",
    );
    client
        .goto(&format!("{}/ui/mappings", node.admin))
        .await
        .expect("mappings");
    text_with(&client, "Edit a mapping file on disk").await;
    click(&client, "a[href='/ui/mappings/default']").await;
    let preview = text_with(&client, "differs from the running configuration").await;
    assert!(
        preview.contains("rename group Engineering → eng"),
        "{preview}"
    );
    screenshot(&client, "mapping").await;

    // A connector's page with its charts.
    client
        .goto(&format!("{}/ui/connectors/kc", node.admin))
        .await
        .expect("connector");
    text_with(&client, "Duration of each run").await;
    assert!(
        client
            .find(Locator::Css("figure.chart svg rect"))
            .await
            .is_ok()
    );
    screenshot(&client, "connector").await;

    // The overview on a phone's screen.
    client.set_window_size(390, 844).await.expect("resize");
    client
        .goto(&format!("{}/ui/", node.admin))
        .await
        .expect("overview");
    screenshot(&client, "overview-phone").await;

    client.close().await.expect("close the browser");
}

fn runs_of(tree: &Tree) -> usize {
    let (_, runs, _) = tree.run(&["runs", "--connector", "kc", "--format", "json"]);
    serde_json::from_str::<Value>(&runs)
        .expect("json")
        .as_array()
        .map_or(0, Vec::len)
}
