//! Load benchmark of the SCIM server (prints figures; not a test). The real `idsync serve`
//! binary runs as a child process over loopback against SQLite (and PostgreSQL when
//! IDSYNC_TEST_POSTGRES_URL is set); a client with 16 requests in flight drives one phase
//! after another: create users, filtered GET by userName, PATCH group members (one member
//! per request), list with paging, deactivate, delete; then one PATCH adding every user
//! (10,000 by default) to a group. Per phase it prints requests/s, p50 and p99 latency, and
//! the server's CPU time per request, read from /proc/<pid>/stat, which stays comparable
//! on a noisy shared box where wall times do not, and the server's context switches per
//! request (thread hand-offs, steadier still).
//!
//! `cargo bench --bench scim_load` (sizes: IDSYNC_BENCH_SCIM_USERS, _GROUPS, _CONCURRENCY;
//! IDSYNC_BENCH_SCIM_BACKENDS=sqlite or postgres runs one only).

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idsync_testkit::process::{context_switches, cpu_time};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
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

fn start_server(database_url: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
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
        "connectors/bench.toml",
        "kind = \"scim\"\nmapping = \"default\"\n[scim]\nrequests_per_second = 1000000\n\
         burst = 1000000\nmax_removals = 1000000\n",
    );
    let config = dir.path().join("idsync.toml");
    let created = idsync(&config, &["tenant", "create", "bench"]);
    let token = created
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .expect("token")
        .trim()
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_idsync"))
        .arg("--config")
        .arg(&config)
        .args([
            "serve",
            "--scim-listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        // IDSYNC_BENCH_SERVER_STDERR set (to anything) shows the server's log (with RUST_LOG, e.g.
        // `sqlx::query=debug` for each statement a request runs).
        .stderr(match std::env::var_os("IDSYNC_BENCH_SERVER_STDERR") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        })
        .spawn()
        .expect("start idsync serve");
    for _ in 0..1000 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Server {
        child,
        base: format!("http://127.0.0.1:{port}/scim/bench/v2"),
        token,
        _dir: dir,
    }
}

/// One request of a phase.
#[derive(Clone)]
struct Req {
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
}

fn req(method: &str, path: String, body: Option<Value>) -> Req {
    Req {
        method: reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        path,
        body,
    }
}

struct PhaseResult {
    name: &'static str,
    requests: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    cpu_per_request: Duration,
    switches_per_request: f64,
    bodies: Vec<Value>,
}

async fn phase(
    server: &Server,
    client: &reqwest::Client,
    name: &'static str,
    requests: Vec<Req>,
    concurrency: usize,
    expect: u16,
) -> PhaseResult {
    let pid = server.child.id();
    let cpu_before = cpu_time(pid);
    let switches_before = context_switches(pid);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().cloned().enumerate() {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        let url = format!("{}{}", server.base, r.path);
        let token = server.token.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut builder = client.request(r.method, url).bearer_auth(token);
            if let Some(body) = r.body {
                builder = builder
                    .header("content-type", "application/scim+json")
                    .body(body.to_string());
            }
            let t = Instant::now();
            let response = builder.send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let took = t.elapsed();
            assert_eq!(status, expect, "{name} request {i}: {text}");
            (
                took,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut bodies = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (took, body) = task.await.unwrap();
        latencies.push(took);
        bodies.push(body);
    }
    let wall = started.elapsed();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let switches = context_switches(pid).saturating_sub(switches_before);
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    PhaseResult {
        name,
        requests: requests.len(),
        wall,
        p50: pick(0.50),
        p99: pick(0.99),
        cpu_per_request: cpu / requests.len().max(1) as u32,
        switches_per_request: switches as f64 / requests.len().max(1) as f64,
        bodies,
    }
}

fn print(results: &[PhaseResult]) {
    println!(
        "  {:<28} {:>8} {:>9} {:>9} {:>9} {:>12} {:>13}",
        "phase", "requests", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "switches/req"
    );
    for r in results {
        println!(
            "  {:<28} {:>8} {:>9.0} {:>9.2} {:>9.2} {:>12.3} {:>13.1}",
            r.name,
            r.requests,
            r.requests as f64 / r.wall.as_secs_f64(),
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.cpu_per_request.as_secs_f64() * 1000.0,
            r.switches_per_request
        );
    }
}

async fn run(backend: &str, database_url: &str) {
    let users = size("IDSYNC_BENCH_SCIM_USERS", 10_000);
    let groups = size("IDSYNC_BENCH_SCIM_GROUPS", 20);
    let concurrency = size("IDSYNC_BENCH_SCIM_CONCURRENCY", 16);
    let server = start_server(database_url);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    println!("{backend}: {users} users, {groups} groups, concurrency {concurrency}");
    let mut results = Vec::new();

    let creates = (0..users)
        .map(|i| {
            req(
                "POST",
                "/Users".into(),
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{i:06}@example.com"),
                    "externalId": format!("ext-{i}"),
                    "name": {"givenName": "Given", "familyName": format!("F{i}")},
                    "emails": [{"value": format!("user{i:06}@example.com"), "type": "work", "primary": true}],
                    "active": true
                })),
            )
        })
        .collect();
    let created = phase(&server, &client, "create user", creates, concurrency, 201).await;
    let ids: Vec<String> = created
        .bodies
        .iter()
        .map(|b| b["id"].as_str().expect("id").to_string())
        .collect();
    results.push(created);

    let gets = (0..users)
        .map(|i| {
            req(
                "GET",
                format!("/Users?filter=userName%20eq%20%22user{i:06}%40example.com%22"),
                None,
            )
        })
        .collect();
    results.push(
        phase(
            &server,
            &client,
            "GET filter userName",
            gets,
            concurrency,
            200,
        )
        .await,
    );

    let group_creates = (0..groups)
        .map(|g| {
            req(
                "POST",
                "/Groups".into(),
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("group-{g}")})),
            )
        })
        .collect();
    let made = phase(&server, &client, "create group", group_creates, 1, 201).await;
    let group_ids: Vec<String> = made
        .bodies
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    let patches = (0..users.min(5_000))
        .map(|i| {
            req(
                "PATCH",
                format!("/Groups/{}?excludedAttributes=members", group_ids[i % groups]),
                Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[i]}]}]})),
            )
        })
        .collect();
    results.push(
        phase(
            &server,
            &client,
            "PATCH group +1 member",
            patches,
            concurrency,
            200,
        )
        .await,
    );

    let pages = users.div_ceil(100);
    let lists = (0..pages)
        .map(|p| {
            req(
                "GET",
                format!("/Users?startIndex={}&count=100", p * 100 + 1),
                None,
            )
        })
        .collect();
    results.push(
        phase(
            &server,
            &client,
            "list users (pages of 100)",
            lists,
            concurrency,
            200,
        )
        .await,
    );

    let half = users / 2;
    let deactivations = ids[..half]
        .iter()
        .map(|id| {
            req(
                "PATCH",
                format!("/Users/{id}"),
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": {"active": false}}]}),
                ),
            )
        })
        .collect();
    results.push(
        phase(
            &server,
            &client,
            "deactivate user",
            deactivations,
            concurrency,
            200,
        )
        .await,
    );

    let deletes = ids[half..]
        .iter()
        .map(|id| req("DELETE", format!("/Users/{id}"), None))
        .collect();
    results.push(phase(&server, &client, "delete user", deletes, concurrency, 204).await);

    // One PATCH adding every user created (deactivated or deleted ones too: re-create the
    // deleted half first so all ids exist).
    let recreates: Vec<Req> = (half..users)
        .map(|i| {
            req(
                "POST",
                "/Users".into(),
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("again{i:06}@example.com"),
                    "emails": [{"value": format!("again{i:06}@example.com")}]}),
                ),
            )
        })
        .collect();
    let again = phase(
        &server,
        &client,
        "create user (again)",
        recreates,
        concurrency,
        201,
    )
    .await;
    let mut all_ids: Vec<String> = ids[..half].to_vec();
    all_ids.extend(
        again
            .bodies
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string()),
    );
    let big = made_group(&server, &client).await;
    let members: Vec<Value> = all_ids.iter().map(|id| json!({"value": id})).collect();
    let bulk = vec![req(
        "PATCH",
        format!("/Groups/{big}?excludedAttributes=members"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": members}]}),
        ),
    )];
    let mut one = phase(&server, &client, "PATCH group +all members", bulk, 1, 200).await;
    one.name = "PATCH +N members (1 req)";
    results.push(one);
    print(&results);
    println!("  ({} members in the one PATCH)\n", all_ids.len());
}

async fn made_group(server: &Server, client: &reqwest::Client) -> String {
    let response = client
        .post(format!("{}/Groups", server.base))
        .bearer_auth(&server.token)
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "everyone-big"}).to_string())
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

#[tokio::main]
async fn main() {
    let backends = std::env::var("IDSYNC_BENCH_SCIM_BACKENDS").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    if backends.is_empty() || backends.contains("sqlite") {
        let sqlite = format!("sqlite://{}/bench.db", dir.path().display());
        run("SQLite", &sqlite).await;
    }
    if !backends.is_empty() && !backends.contains("postgres") {
        return;
    }
    if let Ok(admin_url) = std::env::var("IDSYNC_TEST_POSTGRES_URL") {
        let name = format!("idsync_scim_bench_{}", std::process::id());
        let admin = idsync::db::Db::connect(&admin_url).await.expect("connect");
        use sqlx::Executor;
        admin
            .pool()
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let url = match admin_url.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{name}"),
            None => admin_url.clone(),
        };
        run("PostgreSQL", &url).await;
        let _ = admin
            .pool()
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    } else {
        println!("PostgreSQL skipped: IDSYNC_TEST_POSTGRES_URL is not set");
    }
}
