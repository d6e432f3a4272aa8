//! The admin pages over HTTP against a real `idsync serve` (issue 16): signing in with an
//! admin token, the session cookie's flags, the CSRF token every post must carry, run now
//! and the run's page, held runs confirmed and discarded behind a second page, signing out,
//! and sessions ended by revoking their token.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Node, Tree, eventually, get_json, held_keycloak_tree, keycloak_tree};
use crate::support::conformance::Directory;

/// A client that keeps cookies by hand (so the test sees their flags) and does not follow
/// redirects (so it sees where they point).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// What a page answered.
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        for set in &set_cookies {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || set.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Answer {
            status,
            location,
            set_cookies,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Signs in with `token` through the form; the answer of the post.
    async fn sign_in(&mut self, token: &str) -> Answer {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let nonce = hidden(&form.body, "csrf");
        self.post(
            "/ui/login",
            &[("csrf", &nonce), ("token", token), ("next", "/ui/")],
        )
        .await
    }
}

/// The first link in `html` whose address starts with `prefix`.
fn first_link(html: &str, prefix: &str) -> String {
    let start = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no link to {prefix} in {html}"));
    html[start..].split('"').next().expect("href").to_string()
}

/// The value of the hidden input `name` in `html` (the first one).
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().expect("value").to_string()
}

async fn ready_node(tree: &Tree, name: &str) -> Node {
    let client = tree.client();
    let node = Node::start(tree, name);
    eventually(Duration::from_secs(20), "/readyz", async || {
        get_json(&client, &format!("{}/readyz", node.admin)).await
    })
    .await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_opens_the_pages_and_every_post_needs_the_csrf_token() {
    let site = keycloak_tree(Directory::generated(12, 3, 4), "0 0 1 1 *").await;
    let tree = &site.tree;
    let token = tree.admin_token().to_string();
    let node = ready_node(tree, "pages").await;
    let mut browser = Browser::new(&node.admin);

    // Not signed in: pages send the browser to the sign-in form, which comes back after.
    let answer = browser.get("/ui/runs/1").await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.location.as_deref(),
        Some("/ui/login?next=%2Fui%2Fruns%2F1")
    );
    // A post without a session is refused, not redirected (it would be lost).
    let answer = browser.post("/ui/connectors/kc/run", &[]).await;
    assert_eq!(answer.status, 403);

    // The sign-in form's own token is a double-submit cookie, scoped to the form.
    let form = browser.get("/ui/login").await;
    let login_cookie = form
        .set_cookies
        .iter()
        .find(|c| c.starts_with("idsync_login="))
        .expect("login cookie");
    assert!(login_cookie.contains("HttpOnly"), "{login_cookie}");
    assert!(login_cookie.contains("SameSite=Strict"), "{login_cookie}");
    assert!(login_cookie.contains("Path=/ui/login"), "{login_cookie}");
    let nonce = hidden(&form.body, "csrf");
    assert_eq!(browser.cookies.get("idsync_login"), Some(&nonce));
    // Without it the right token is refused; with a wrong token it says so.
    let answer = browser
        .post("/ui/login", &[("csrf", "forged"), ("token", &token)])
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(!browser.cookies.contains_key("idsync_session"));
    let form = browser.get("/ui/login").await;
    let nonce = hidden(&form.body, "csrf");
    let answer = browser
        .post(
            "/ui/login",
            &[("csrf", &nonce), ("token", "idsync_admin_guess")],
        )
        .await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("not valid"), "{}", answer.body);

    // The right token opens a session: an HttpOnly, SameSite=Strict cookie on /ui, not
    // Secure here (no https public URL), and the page asked for.
    let answer = browser.sign_in(&token).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/ui/"));
    let session_cookie = answer
        .set_cookies
        .iter()
        .find(|c| c.starts_with("idsync_session="))
        .expect("session cookie");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(
        session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );
    assert!(session_cookie.contains("Path=/ui"), "{session_cookie}");
    assert!(!session_cookie.contains("Secure"), "{session_cookie}");

    let overview = browser.get("/ui/").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview
            .body
            .contains("Signed in as <strong>tests</strong>")
    );
    assert!(overview.body.contains(">kc<") || overview.body.contains(">kc "));
    assert!(
        overview.body.contains("pushed by the IdP"),
        "the SCIM tenant"
    );
    assert!(overview.body.contains("never run"));
    let csrf = hidden(&overview.body, "csrf");

    // A post without the session's CSRF token, or with another, is refused and starts nothing.
    for form in [vec![], vec![("csrf", "0000")]] {
        let answer = browser.post("/ui/connectors/kc/run", &form).await;
        assert_eq!(answer.status, 403, "{}", answer.body);
    }
    // Another site's page cannot post either, even with the token (the origin check).
    let foreign = browser
        .http
        .post(format!("{}/ui/connectors/kc/run", node.admin))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())]);
    let answer = browser.send(foreign).await;
    assert_eq!(answer.status, 403);
    let (_, runs, _) = tree.run(&["runs", "--connector", "kc", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&runs).expect("json"),
        Value::Array(vec![])
    );

    // Run now: back to the overview, which reloads until the run shows.
    let answer = browser
        .post("/ui/connectors/kc/run", &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/ui/?started=kc"));
    let started = browser.get("/ui/?started=kc").await;
    assert!(
        started
            .body
            .contains("A run of <strong>kc</strong> started")
    );
    assert!(started.body.contains("http-equiv=\"refresh\""));
    let run_link = eventually(
        Duration::from_secs(20),
        "the run on the overview",
        async || {
            let page = browser.get("/ui/").await;
            (page.body.contains("badge succeeded")).then(|| first_link(&page.body, "/ui/runs/"))
        },
    )
    .await;
    let run = browser.get(&run_link).await;
    assert_eq!(run.status, 200);
    assert!(run.body.contains("Run 1 of kc"), "{}", run.body);
    assert!(
        run.body.contains("create user"),
        "the changes by name: {}",
        run.body
    );
    assert!(run.body.contains("<time datetime="));
    // The run was started by the signed-in admin.
    let trail = get_json(&tree.client(), &format!("{}/api/audit", node.admin))
        .await
        .expect("audit");
    assert!(
        trail
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["action"] == "run.start" && e["actor"] == "tests")
    );

    // Pages are not cached and not framed.
    let overview = browser
        .http
        .get(format!("{}/ui/", node.admin))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .expect("get");
    assert_eq!(overview.headers()["cache-control"], "no-store");
    assert_eq!(overview.headers()["x-frame-options"], "DENY");
    assert!(
        overview.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );

    // Signing out ends the session: the old cookie no longer opens a page.
    let old_cookie = browser
        .cookies
        .get("idsync_session")
        .cloned()
        .expect("cookie");
    let answer = browser.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.location.as_deref(), Some("/ui/login"));
    browser.cookies.insert("idsync_session".into(), old_cookie);
    let answer = browser.get("/ui/").await;
    assert_eq!(answer.status, 303, "a closed session opens nothing");

    // Revoking the token ends the sessions opened with it.
    browser.cookies.clear();
    assert_eq!(browser.sign_in(&token).await.status, 303);
    assert_eq!(browser.get("/ui/").await.status, 200);
    let (code, _, stderr) = tree.run(&["admin-token", "revoke", "tests"]);
    assert_eq!(code, 0, "{stderr}");
    let answer = browser.get("/ui/").await;
    assert_eq!(answer.status, 303, "revoked token, ended session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_runs_are_confirmed_and_discarded_behind_a_second_page() {
    let site = held_keycloak_tree().await;
    let tree = &site.tree;
    let token = tree.admin_token().to_string();
    let node = ready_node(tree, "held-pages").await;
    let mut browser = Browser::new(&node.admin);
    assert_eq!(browser.sign_in(&token).await.status, 303);

    // The held run: what it would remove, by count against the limit and by name.
    let held = browser.get("/ui/held").await;
    assert_eq!(held.status, 200);
    assert!(
        held.body.contains("users would be disabled or deleted"),
        "{}",
        held.body
    );
    assert!(held.body.contains("(limit 3,"), "{}", held.body);
    assert!(held.body.contains("disable user"), "names: {}", held.body);
    assert!(held.body.contains("href=\"/ui/held/kc/discard\""));
    // The first click only asks again; nothing changed.
    let ask = browser.get("/ui/held/kc/discard").await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Yes, discard it"));
    let csrf = hidden(&ask.body, "csrf");
    assert!(
        browser
            .get("/ui/held")
            .await
            .body
            .contains("/ui/held/kc/discard")
    );
    // The second click (with its CSRF token) discards, recorded under the admin's name.
    let answer = browser
        .post("/ui/held/kc/discard", &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(
        browser
            .get("/ui/held")
            .await
            .body
            .contains("Nothing is held.")
    );

    // Held again, then confirmed: the users are disabled, and the run's page is shown.
    let (code, _, _) = tree.run(&["sync", "kc"]);
    assert_eq!(code, 3, "held again");
    let held = browser.get("/ui/held").await;
    let named: Vec<String> = held
        .body
        .split("<li>disable user ")
        .skip(1)
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect();
    assert_eq!(named.len(), 10, "the first ten by name: {}", held.body);
    let ask = browser.get("/ui/held/kc/confirm").await;
    assert!(ask.body.contains("Yes, remove them"), "{}", ask.body);
    let without_token = browser.post("/ui/held/kc/confirm", &[]).await;
    assert_eq!(without_token.status, 403);
    let answer = browser
        .post("/ui/held/kc/confirm", &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer.location.expect("location");
    assert!(location.starts_with("/ui/runs/"), "{location}");
    let run = browser.get(&location).await;
    assert!(run.body.contains("badge succeeded"), "{}", run.body);
    assert!(
        run.body.contains("disable user user000006@example.com"),
        "{}",
        run.body
    );
    assert!(
        browser
            .get("/ui/held")
            .await
            .body
            .contains("Nothing is held.")
    );
    let trail = get_json(&tree.client(), &format!("{}/api/audit", node.admin))
        .await
        .expect("audit");
    let actions: Vec<(String, String)> = trail
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("held.discard".to_string(), "tests".to_string())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("held.confirm".to_string(), "tests".to_string())),
        "{actions:?}"
    );
    // The connector's page: a bar per run in each chart, held runs in amber.
    let connector = browser.get("/ui/connectors/kc").await;
    assert_eq!(connector.status, 200);
    let (_, runs, _) = tree.run(&["runs", "--connector", "kc", "--format", "json"]);
    let runs = serde_json::from_str::<Value>(&runs).expect("json");
    let run_count = runs.as_array().expect("array").len();
    assert_eq!(connector.body.matches("<svg").count(), 2);
    assert_eq!(
        connector.body.matches("<rect").count(),
        2 * run_count,
        "{}",
        connector.body
    );
    assert!(
        connector.body.contains("fill=\"#9a6700\""),
        "a held run: {}",
        connector.body
    );
    assert!(
        connector
            .body
            .contains("role=\"img\" aria-label=\"Duration of each run:")
    );
    // The users the page named are disabled now.
    let (_, users, _) = tree.run(&["users", "list", "--format", "json", "--limit", "1000"]);
    let users: Value = serde_json::from_str(&users).expect("json");
    for name in &named {
        let user = users
            .as_array()
            .expect("array")
            .iter()
            .find(|u| u["user_name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} in the target"));
        assert_eq!(user["active"], false, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_forms_and_repeated_failed_sign_ins_are_refused() {
    let site = keycloak_tree(Directory::generated(3, 1, 1), "0 0 1 1 *").await;
    let tree = &site.tree;
    let token = tree.admin_token().to_string();
    let node = ready_node(tree, "limits").await;
    let mut browser = Browser::new(&node.admin);

    // A form over 16 KiB is refused before it is read further, signed in or not.
    let form = browser.get("/ui/login").await;
    let nonce = hidden(&form.body, "csrf");
    let padding = "x".repeat(20 * 1024);
    let answer = browser
        .post(
            "/ui/login",
            &[("csrf", &nonce), ("token", &token), ("pad", &padding)],
        )
        .await;
    assert_eq!(answer.status, 413);
    assert!(!browser.cookies.contains_key("idsync_session"));
    assert_eq!(browser.sign_in(&token).await.status, 303);
    let csrf = hidden(&browser.get("/ui/").await.body, "csrf");
    let answer = browser
        .post(
            "/ui/connectors/kc/run",
            &[("csrf", &csrf), ("pad", &padding)],
        )
        .await;
    assert_eq!(answer.status, 413);

    // Failed sign-ins: 20 a minute on the listener, then 429 (even for the right token's
    // neighbours: the limit counts failures, a success is not held back by it).
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let form = browser.get("/ui/login").await;
        let nonce = hidden(&form.body, "csrf");
        let answer = browser
            .post(
                "/ui/login",
                &[("csrf", &nonce), ("token", "idsync_admin_guess")],
            )
            .await;
        statuses.push(answer.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[20], 429, "{statuses:?}");
    assert_eq!(
        browser.sign_in(&token).await.status,
        303,
        "a valid token still signs in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_is_filtered_and_exported_as_csv() {
    let site = keycloak_tree(Directory::generated(3, 1, 1), "0 0 1 1 *").await;
    let tree = &site.tree;
    let scim_token = tree.tenant_token("okta");
    let admin_token = tree.admin_token().to_string();
    let node = ready_node(tree, "events").await;

    // An IdP's requests: a create, a lookup that finds nothing, a bad filter, a password
    // (masked in the log) and a user name a spreadsheet would run as a formula.
    let scim = reqwest::Client::new();
    let post = |body: Value| {
        scim.post(format!("{}/Users", node.scim))
            .bearer_auth(&scim_token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let created = post(serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com", "password": "hunter2-secret"
    }))
    .await
    .expect("create");
    assert_eq!(created.status(), 201);
    let formula = post(serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "=HYPERLINK(\"http://evil.example\")"
    }))
    .await
    .expect("create");
    assert_eq!(formula.status(), 201);
    for filter in ["userName eq \"nobody@example.com\"", "userName zz \"x\""] {
        scim.get(format!("{}/Users", node.scim))
            .query(&[("filter", filter)])
            .bearer_auth(&scim_token)
            .send()
            .await
            .expect("get");
    }
    // The events reach the log in the background; wait until all four are there.
    let api = tree.client();
    eventually(Duration::from_secs(20), "four events", async || {
        let events = get_json(&api, &format!("{}/api/events?tenant=okta", node.admin)).await?;
        (events.as_array()?.len() >= 4).then_some(())
    })
    .await;

    let mut browser = Browser::new(&node.admin);
    assert_eq!(browser.sign_in(&admin_token).await.status, 303);
    let all = browser.get("/ui/events").await;
    assert_eq!(all.status, 200);
    assert!(
        all.body.contains("4 requests, newest first"),
        "{}",
        all.body
    );
    assert!(all.body.contains("ada@example.com"));
    assert!(
        !all.body.contains("hunter2-secret"),
        "the password is masked"
    );
    // Filters: a status class, a method, text in another case.
    let bad = browser.get("/ui/events?status=4xx").await;
    assert!(bad.body.contains("1 request, newest first"), "{}", bad.body);
    assert!(bad.body.contains("zz"), "{}", bad.body);
    let posts = browser.get("/ui/events?method=POST&q=ADA%40EXAMPLE").await;
    assert!(
        posts.body.contains("1 request, newest first"),
        "{}",
        posts.body
    );
    let none = browser
        .get("/ui/events?tenant=okta&since=2099-01-01T00%3A00")
        .await;
    assert!(none.body.contains("No requests match."), "{}", none.body);
    // A filter it cannot read is said plainly, with 400.
    let wrong = browser.get("/ui/events?status=9xx").await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("is not a status"), "{}", wrong.body);

    // The CSV of the current filter: a header and one row per event, formulas made inert.
    assert!(
        posts
            .body
            .contains("href=\"/ui/events.csv?method=POST&amp;q=ADA%40EXAMPLE\""),
        "{}",
        posts.body
    );
    let csv = browser.get("/ui/events.csv?method=POST").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let headers = reader.headers().expect("header").clone();
    assert_eq!(&headers[0], "id");
    assert_eq!(&headers[4], "path");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| &r[3] == "POST" && &r[5] == "201"));
    let bodies: Vec<&str> = rows.iter().map(|r| &r[10]).collect();
    assert!(
        bodies.iter().any(|b| b.contains("ada@example.com")),
        "{bodies:?}"
    );
    assert!(
        bodies.iter().all(|b| !b.contains("hunter2-secret")),
        "{bodies:?}"
    );
    assert!(
        !csv.body.contains(",=HYPERLINK"),
        "no cell starts a formula: {}",
        csv.body
    );

    // Not signed in: the export is a page that needs a session like the others.
    let mut stranger = Browser::new(&node.admin);
    assert_eq!(stranger.get("/ui/events.csv").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_is_searched_and_shows_nesting() {
    let site = keycloak_tree(Directory::generated(3, 1, 1), "0 0 1 1 *").await;
    let tree = &site.tree;
    tree.add_example_snapshot("hr", "default");
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0, "{stderr}");
    let token = tree.admin_token().to_string();
    let node = ready_node(tree, "directory").await;
    let mut browser = Browser::new(&node.admin);
    assert_eq!(browser.sign_in(&token).await.status, 303);

    let found = browser
        .get("/ui/directory?kind=users&filter=userName+sw+%22BOB%22&connector=hr")
        .await;
    assert_eq!(found.status, 200);
    assert!(
        found.body.contains("1 users on this page"),
        "{}",
        found.body
    );
    let user_link = first_link(&found.body, "/ui/directory/users/");
    let bob = browser.get(&user_link).await;
    assert_eq!(bob.status, 200);
    assert!(bob.body.contains("bob.martin@example.com"));
    assert!(
        bob.body.contains(">hr "),
        "the owning connector: {}",
        bob.body
    );
    assert!(
        bob.body
            .contains("Platform Team → Engineering → All Departments → Company Announcements"),
        "the path of a nested group: {}",
        bob.body
    );
    assert!(bob.body.contains("direct membership"));

    let groups = browser
        .get("/ui/directory?kind=groups&filter=displayName+eq+%22all+departments%22")
        .await;
    let group_link = first_link(&groups.body, "/ui/directory/groups/");
    let departments = browser.get(&group_link).await;
    assert_eq!(departments.status, 200);
    // The tree: All Departments > Engineering > Platform Team > bob.
    let body = &departments.body;
    let (engineering, platform, bob_at) = (
        body.find(">Engineering<").expect("Engineering"),
        body.find(">Platform Team<").expect("Platform Team"),
        body.find(">bob.martin@example.com<").expect("bob"),
    );
    assert!(engineering < platform && platform < bob_at, "{body}");
    assert!(body.contains("Effective users</dt><dd>11 "), "{body}");

    let wrong = browser.get("/ui/directory?filter=userName+eq").await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("does not parse"), "{}", wrong.body);
    let unsupported = browser.get("/ui/directory?filter=title+eq+%22x%22").await;
    assert_eq!(unsupported.status, 400);
    assert!(
        unsupported.body.contains("not supported"),
        "{}",
        unsupported.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_edited_on_disk_is_previewed_then_applied() {
    let site = keycloak_tree(Directory::generated(3, 1, 1), "0 0 1 1 *").await;
    let tree = &site.tree;
    tree.add_example_snapshot("hr", "hr");
    let mapping = "on_remove = \"disable\"\nmax_deletes = 100\nmax_delete_percent = 100.0\n";
    tree.write("mappings/hr.toml", mapping);
    let (code, _, stderr) = tree.run(&["sync", "hr"]);
    assert_eq!(code, 0, "{stderr}");
    let token = tree.admin_token().to_string();
    let node = ready_node(tree, "mappings").await;
    let mut browser = Browser::new(&node.admin);
    assert_eq!(browser.sign_in(&token).await.status, 303);

    let list = browser.get("/ui/mappings").await;
    assert!(
        list.body.contains("href=\"/ui/mappings/hr\""),
        "{}",
        list.body
    );
    let unchanged = browser.get("/ui/mappings/hr").await;
    assert_eq!(unchanged.status, 200);
    assert!(
        unchanged.body.contains("is the one running"),
        "{}",
        unchanged.body
    );
    assert!(
        unchanged.body.contains("Nothing would change."),
        "{}",
        unchanged.body
    );
    assert!(!unchanged.body.contains("/apply"), "nothing to apply");

    // Edited on disk: the page shows what applying would change, and changes nothing yet.
    tree.write(
        "mappings/hr.toml",
        &format!("{mapping}[groups]\nrename = {{ \"Sales\" = \"sales-team\" }}\n"),
    );
    let edited = browser.get("/ui/mappings/hr").await;
    assert!(
        edited
            .body
            .contains("differs from the running configuration"),
        "{}",
        edited.body
    );
    assert!(
        edited.body.contains("rename group Sales → sales-team"),
        "the rename in the preview: {}",
        edited.body
    );
    let (_, groups, _) = tree.run(&["groups", "list", "--format", "json"]);
    assert!(!groups.contains("sales-team"), "a preview writes nothing");
    let csrf = hidden(&edited.body, "csrf");

    // A broken file is said, not previewed.
    tree.write("mappings/hr.toml", "on_remove = \"vanish\"\n");
    let broken = browser.get("/ui/mappings/hr").await;
    assert_eq!(broken.status, 422);
    assert!(broken.body.contains("hr.toml"), "{}", broken.body);
    tree.write(
        "mappings/hr.toml",
        &format!("{mapping}[groups]\nrename = {{ \"Sales\" = \"sales-team\" }}\n"),
    );

    // Apply: reloaded and reconciled, recorded under the admin's name.
    let without_token = browser.post("/ui/mappings/hr/apply", &[]).await;
    assert_eq!(without_token.status, 403);
    let applied = browser
        .post("/ui/mappings/hr/apply", &[("csrf", &csrf)])
        .await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert!(applied.body.contains("Applied"), "{}", applied.body);
    let (_, groups, _) = tree.run(&["groups", "list", "--format", "json"]);
    assert!(groups.contains("sales-team"), "{groups}");
    let trail = get_json(&tree.client(), &format!("{}/api/audit", node.admin))
        .await
        .expect("audit");
    assert!(
        trail
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["action"] == "mapping.apply"
                && e["actor"] == "tests"
                && e["target"] == "hr"),
        "{trail}"
    );
    let after = browser.get("/ui/mappings/hr").await;
    assert!(after.body.contains("is the one running"), "{}", after.body);
}
