//! How long each admin page takes with a large target (prints figures; not a test): a
//! generated directory of USERS users, GROUPS groups and MEMBERSHIPS memberships (one
//! nested group per ten) is synced into SQLite, 10,000 SCIM events are logged, then a real
//! `idsync serve` answers each page to a signed-in admin. Each page is asked once to warm
//! up, then 9 times; the median and the slowest are printed against the 200 ms aim.
//!
//! `cargo bench --bench admin_pages` (sizes: IDSYNC_BENCH_USERS, _GROUPS, _MEMBERSHIPS).

// Test code may unwrap and panic: a failure is the bench's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use idsync::config::{FileFormat, MappingConfig, OnRemove};
use idsync::connectors::file::FileConnector;
use idsync::db::Db;
use idsync::store::events::{Event, EventLog};
use idsync::sync::{self, NoProgress, RunOptions};
use idsync_testkit::snapshot::{memberships, write_snapshot};

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

const AIM_MS: f64 = 200.0;
const RUNS: usize = 9;

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

fn idsync(config: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_idsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run idsync");
    assert!(
        output.status.success(),
        "idsync {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the first hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn first_link(html: &str, prefix: &str) -> String {
    let start = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link"));
    html[start..].split('"').next().unwrap().to_string()
}

fn main() {
    let users = size("IDSYNC_BENCH_USERS", 100_000);
    let groups = size("IDSYNC_BENCH_GROUPS", 10_000);
    let membership_count = size("IDSYNC_BENCH_MEMBERSHIPS", 500_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = dir.path().join("snapshot.json");
    write_snapshot(
        &snapshot,
        users,
        &memberships(users, groups, membership_count),
        None,
    );
    let database = dir.path().join("idsync.db");
    let database_url = format!("sqlite://{}", database.display());
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "idsync.toml",
        &format!("[target]\ndatabase_url = \"{database_url}\"\n[log]\nlevel = \"warn\"\n"),
    );
    write(
        "mappings/default.toml",
        "on_remove = \"disable\"\nmax_deletes = 1000000\nmax_delete_percent = 100.0\n",
    );
    write(
        "connectors/hr.toml",
        &format!(
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"{}\"\nformat = \"json\"\n",
            snapshot.display()
        ),
    );
    write(
        "connectors/okta.toml",
        "kind = \"scim\"\nmapping = \"default\"\n",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    rt.block_on(async {
        let db = Db::open(&database_url).await.expect("open");
        let connector = FileConnector::new(snapshot.clone(), FileFormat::Json);
        let mapping = MappingConfig::pass_through("default", OnRemove::Disable, 1_000_000, 100.0);
        let options = RunOptions {
            allow_mass_delete: true,
            ..RunOptions::default()
        };
        sync::sync(&db, "hr", &mapping, &connector, options, &NoProgress)
            .await
            .expect("sync");
        let (log, _writer) = EventLog::start(db.clone(), Default::default(), 1_000_000);
        for i in 0..10_000u32 {
            log.record(Event {
                id: None,
                tenant: "okta".into(),
                at: format!("2026-12-06T{:02}:{:02}:{:02}.000Z", i / 3600 % 24, i / 60 % 60, i % 60),
                method: if i % 3 == 0 { "PATCH" } else { "GET" }.into(),
                path: format!("/Users?filter=userName%20eq%20%22user{i}%40example.com%22"),
                status: if i % 10 == 0 { 404 } else { 200 },
                duration_ms: 1.0,
                operation: format!("lookup user{i}@example.com"),
                client: Some("10.0.0.1".into()),
                request_body: (i % 3 == 0).then(|| format!("{{\"Operations\":[{{\"op\":\"replace\",\"value\":{{\"active\":false}}}}],\"n\":{i}}}")),
                response_body: Some("{\"totalResults\":1}".into()),
                rejected: false,
            });
        }
        log.flush().await;
        db.close().await;
    });
    println!(
        "admin_pages: {users} users, {groups} groups, {membership_count} memberships, 10,000 SCIM events (seeded in {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let config = dir.path().join("idsync.toml");
    let created = idsync(&config, &["admin-token", "create", "bench"]);
    let token = created
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .expect("token")
        .trim()
        .to_string();
    let admin_port = free_port();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_idsync"))
            .arg("--config")
            .arg(&config)
            .args([
                "serve",
                "--scim-listen",
                &format!("127.0.0.1:{}", free_port()),
                "--admin-listen",
                &format!("127.0.0.1:{admin_port}"),
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("start idsync serve"),
    );
    let base = format!("http://127.0.0.1:{admin_port}");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut ready = false;
        for _ in 0..600 {
            if http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "idsync serve did not become ready");
        // Sign in as a browser does.
        let form = http.get(format!("{base}/ui/login")).send().await.unwrap();
        let login_cookie = form
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("idsync_login="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let nonce = hidden(&form.text().await.unwrap(), "csrf");
        let signed_in = http
            .post(format!("{base}/ui/login"))
            .header("cookie", &login_cookie)
            .form(&[("csrf", nonce.as_str()), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        let session = signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("idsync_session="))
            .expect("signed in")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{base}{path}");
            let session = session.clone();
            async move {
                let response = http
                    .get(&url)
                    .header("cookie", session)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap())
            }
        };
        // The pages of one user and one group found through the search, as an admin would.
        let (_, found) =
            get("/ui/directory?filter=userName+eq+%22user4242%40example.com%22".into()).await;
        let user = first_link(&found, "/ui/directory/users/");
        let (_, found) =
            get("/ui/directory?kind=groups&filter=displayName+eq+%22Group+0%22".into()).await;
        let nested_group = first_link(&found, "/ui/directory/groups/");
        let (_, found) =
            get("/ui/directory?kind=groups&filter=displayName+eq+%22Group+7%22".into()).await;
        let group = first_link(&found, "/ui/directory/groups/");
        let pages: Vec<(&str, String)> = vec![
            ("overview", "/ui/".into()),
            ("connector (charts, runs)", "/ui/connectors/hr".into()),
            ("run", "/ui/runs/1".into()),
            ("held runs", "/ui/held".into()),
            ("directory, users, first page", "/ui/directory".into()),
            (
                "directory, users, page 1000",
                "/ui/directory?kind=users&page=1000".into(),
            ),
            (
                "directory, userName sw",
                "/ui/directory?filter=userName+sw+%22user4242%22".into(),
            ),
            (
                "directory, emails co (a scan)",
                "/ui/directory?filter=emails+co+%2299999%22".into(),
            ),
            (
                "directory, groups displayName sw",
                "/ui/directory?kind=groups&filter=displayName+sw+%22group+12%22".into(),
            ),
            ("a user (effective groups, paths)", user),
            ("a group (members)", group),
            ("a group with nesting (tree)", nested_group),
            ("event log, first page", "/ui/events".into()),
            (
                "event log, 4xx of a tenant",
                "/ui/events?tenant=okta&status=4xx".into(),
            ),
            ("event log, text search", "/ui/events?q=USER9999%40".into()),
            ("event log CSV, 10,000 rows", "/ui/events.csv".into()),
        ];
        println!(
            "{:<36} {:>6} {:>10} {:>10}  aim",
            "page", "status", "median ms", "max ms"
        );
        for (name, path) in pages {
            let (status, _) = get(path.clone()).await;
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let start = Instant::now();
                let (_, body) = get(path.clone()).await;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                assert!(!body.is_empty(), "{path}");
            }
            times.sort_by(f64::total_cmp);
            let median = times[RUNS / 2];
            let max = times[RUNS - 1];
            let verdict = if median <= AIM_MS { "met" } else { "MISSED" };
            println!("{name:<36} {status:>6} {median:>10.1} {max:>10.1}  {verdict}");
        }
    });
}
