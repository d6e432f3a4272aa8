//! Many-tenants benchmark of the SCIM server (prints figures; not a test): does one node
//! carry many SCIM tenants with its memory at rest growing less than linearly in tenants,
//! and with a request's CPU cost independent of how many tenants exist?
//!
//! For each tenant count N it writes a fresh configuration tree (N `kind = "scim"`
//! connectors sharing one mapping) and a fresh SQLite database, issues each tenant a
//! token, and seeds every tenant's mirror and the target with USERS users through the
//! library (a sync of a generated file snapshot per tenant, with SCIM's `active: false`
//! semantics; user names are unique across tenants), not through HTTP. Then it starts the
//! real `idsync serve` binary over loopback, waits for `/readyz`, lets it settle 2 s and
//! reads its VmRSS and VmHWM from /proc/<pid>/status (memory at rest). It then loads
//! tenant 0 only, the same requests for every N: a short unmeasured warm-up, then ROUNDS
//! rounds of GETS filtered GETs by userName followed by CREATES user creates, CONCURRENCY
//! in flight. Per phase it prints the server's CPU time and context switches per request
//! (from /proc, as benches/scim_load.rs; the least of the rounds, since contention on a
//! shared box only adds to them) and the p50 latency; last the ratios between the
//! smallest and the largest N.
//!
//! `cargo bench --bench scim_tenants` (IDSYNC_BENCH_TENANTS: tenant counts, default
//! "10,50,200"; IDSYNC_BENCH_TENANT_USERS: users per tenant, default 5000;
//! IDSYNC_BENCH_TENANT_GETS, default 2000; IDSYNC_BENCH_TENANT_CREATES, default 500;
//! IDSYNC_BENCH_TENANT_ROUNDS, default 3; IDSYNC_BENCH_TENANT_CONCURRENCY, default 8).

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idsync::config::{Config, FileFormat};
use idsync::connectors::file::FileConnector;
use idsync::db::Db;
use idsync::sync::{self, NoProgress, RunOptions};
use idsync_testkit::process::{context_switches, cpu_time};
use serde_json::json;
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

/// A line of /proc/<pid>/status in MiB (`VmRSS`, `VmHWM`; the file gives kB).
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn tenant_id(t: usize) -> String {
    format!("t{t:03}")
}

fn user_name(tenant: &str, u: usize) -> String {
    format!("{tenant}.user{u:06}@example.com")
}

/// `idsync serve`, stopped (SIGTERM) when dropped (as in benches/scim_load.rs).
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// The configuration tree of `tenants` SCIM tenants (one mapping for all); its idsync.toml.
fn write_tree(dir: &Path, database_url: &str, tenants: usize) -> std::path::PathBuf {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
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
    for t in 0..tenants {
        write(
            &format!("connectors/{}.toml", tenant_id(t)),
            "kind = \"scim\"\nmapping = \"default\"\n[scim]\nrequests_per_second = 1000000\n\
             burst = 1000000\nmax_removals = 1000000\n",
        );
    }
    dir.join("idsync.toml")
}

/// A file connector's JSON snapshot of `users` users of `tenant`.
fn write_snapshot(path: &Path, tenant: &str, users: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    write!(out, "{{\"users\":[").unwrap();
    for u in 0..users {
        if u > 0 {
            write!(out, ",").unwrap();
        }
        let name = user_name(tenant, u);
        let record = json!({
            "id": format!("{tenant}-u{u:06}"),
            "userName": name,
            "givenName": format!("Given{u}"),
            "familyName": format!("Family{u}"),
            "emails": [{"value": name, "type": "work", "primary": true}],
            "active": true,
            "title": "Engineer",
        });
        serde_json::to_writer(&mut out, &record).unwrap();
    }
    write!(out, "],\"groups\":[]}}").unwrap();
    out.flush().unwrap();
}

/// Seeds every tenant with `users` users (a library sync of a snapshot each, deleted
/// afterwards) and issues each a token: tenant 0's token.
async fn seed(dir: &Path, config_path: &Path, tenants: usize, users: usize) -> String {
    let config = Config::load(config_path).unwrap_or_else(|e| panic!("config: {e:?}"));
    let db = Db::open(config.engine.database_url.expose())
        .await
        .expect("open the database");
    let mut first_token = None;
    for t in 0..tenants {
        let id = tenant_id(t);
        let connector = &config.connectors[&id];
        let snapshot = dir.join(format!("{id}.json"));
        write_snapshot(&snapshot, &id, users);
        let file = FileConnector::new(snapshot.clone(), FileFormat::Json);
        let options = RunOptions {
            inactive_is_removal: true,
            ..RunOptions::default()
        };
        let report = sync::sync(
            &db,
            &id,
            config.mapping_for(connector),
            &file,
            options,
            &NoProgress,
        )
        .await
        .expect("seed sync");
        assert_eq!(
            report.counts.users_created as usize, users,
            "tenant {id}: {report:?}"
        );
        std::fs::remove_file(&snapshot).unwrap();
        let issued = idsync::store::tokens::issue(&db, &id, None)
            .await
            .expect("issue a token");
        first_token.get_or_insert_with(|| issued.token.expose().to_string());
    }
    db.close().await;
    first_token.expect("at least one tenant")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `idsync serve` on `config`, once its `/readyz` answers 200: the server and the SCIM
/// listener's port.
async fn start_serve(config: &Path, client: &reqwest::Client) -> (Serve, u16) {
    let (scim, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_idsync"))
        .arg("--config")
        .arg(config)
        .args([
            "serve",
            "--scim-listen",
            &format!("127.0.0.1:{scim}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("start idsync serve");
    let serve = Serve(child);
    let ready = format!("http://127.0.0.1:{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = client.get(&ready).send().await
            && response.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "idsync serve did not get ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (serve, scim)
}

/// One request of a phase: a GET of `path`, or a POST of `body` to it.
struct Req {
    path: String,
    body: Option<String>,
}

/// What one phase measured.
struct Measured {
    /// The server's CPU time per request.
    cpu: Duration,
    /// The server's context switches per request.
    switches: f64,
    latencies: Vec<Duration>,
}

/// Runs `requests` against `base` with `concurrency` in flight, each expected to answer
/// `expect`.
async fn phase(
    pid: u32,
    client: &reqwest::Client,
    base: &str,
    token: &str,
    requests: Vec<Req>,
    concurrency: usize,
    expect: u16,
) -> Measured {
    let count = requests.len().max(1);
    let cpu_before = cpu_time(pid);
    let switches_before = context_switches(pid);
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(requests.len());
    for r in requests {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let url = format!("{base}{}", r.path);
        let builder = match &r.body {
            None => client.get(url),
            Some(body) => client
                .post(url)
                .header("content-type", "application/scim+json")
                .body(body.clone()),
        }
        .bearer_auth(token);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let response = builder.send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let took = t.elapsed();
            assert_eq!(status, expect, "{}: {text}", r.path);
            // A filtered GET finds its one user (else it measures an empty answer).
            assert!(
                r.body.is_some() || text.contains("\"totalResults\":1,"),
                "{}: {text}",
                r.path
            );
            took
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let switches = context_switches(pid).saturating_sub(switches_before);
    Measured {
        cpu: cpu / count as u32,
        switches: switches as f64 / count as f64,
        latencies,
    }
}

/// Phases of several rounds as one figure: the least CPU time and context switches per
/// request of any round (contention on a shared box only adds to them), the p50 latency
/// of all requests.
struct Phases {
    cpu: Duration,
    switches: f64,
    p50: Duration,
}

fn combine(rounds: Vec<Measured>) -> Phases {
    let cpu = rounds.iter().map(|m| m.cpu).min().unwrap_or_default();
    let switches = rounds
        .iter()
        .map(|m| m.switches)
        .fold(f64::INFINITY, f64::min);
    let mut latencies: Vec<Duration> = rounds.into_iter().flat_map(|m| m.latencies).collect();
    latencies.sort();
    Phases {
        cpu,
        switches,
        p50: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default(),
    }
}

fn gets(tenant: &str, users: usize, count: usize, salt: usize) -> Vec<Req> {
    (0..count)
        .map(|i| {
            // Spread over the tenant's users, not the first few pages of the index.
            let name = user_name(tenant, (i * 7919 + salt) % users).replace('@', "%40");
            Req {
                path: format!("/Users?filter=userName%20eq%20%22{name}%22"),
                body: None,
            }
        })
        .collect()
}

fn creates(tenant: &str, count: usize, round: usize) -> Vec<Req> {
    (0..count)
        .map(|i| {
            let name = format!("{tenant}.new{round}-{i:06}@example.com");
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "externalId": format!("new-{round}-{i}"),
                "name": {"givenName": "Given", "familyName": format!("F{i}")},
                "emails": [{"value": name, "type": "work", "primary": true}],
                "active": true
            });
            Req {
                path: "/Users".into(),
                body: Some(body.to_string()),
            }
        })
        .collect()
}

/// What one tenant count measured.
struct Figures {
    tenants: usize,
    seed: Duration,
    rss: f64,
    hwm: f64,
    rss_loaded: f64,
    get: Phases,
    create: Phases,
}

async fn run(tenants: usize, users: usize, client: &reqwest::Client) -> Figures {
    let get_count = size("IDSYNC_BENCH_TENANT_GETS", 2000);
    let create_count = size("IDSYNC_BENCH_TENANT_CREATES", 500);
    let concurrency = size("IDSYNC_BENCH_TENANT_CONCURRENCY", 8);
    let rounds = size("IDSYNC_BENCH_TENANT_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/idsync.db", dir.path().display());
    let config = write_tree(dir.path(), &database_url, tenants);
    let started = Instant::now();
    let token = seed(dir.path(), &config, tenants, users).await;
    let seed_time = started.elapsed();

    let (serve, port) = start_serve(&config, client).await;
    let pid = serve.0.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, hwm) = (status_mib(pid, "VmRSS"), status_mib(pid, "VmHWM"));

    let tenant = tenant_id(0);
    let base = format!("http://127.0.0.1:{port}/scim/{tenant}/v2");
    // Warm-up (connections, statement caches), not measured.
    phase(
        pid,
        client,
        &base,
        &token,
        gets(&tenant, users, 200, 1),
        concurrency,
        200,
    )
    .await;
    let (mut got, mut created) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let requests = gets(&tenant, users, get_count, round * 104_729);
        got.push(phase(pid, client, &base, &token, requests, concurrency, 200).await);
        let requests = creates(&tenant, create_count, round);
        created.push(phase(pid, client, &base, &token, requests, concurrency, 201).await);
    }
    let rss_loaded = status_mib(pid, "VmRSS");
    drop(serve);
    Figures {
        tenants,
        seed: seed_time,
        rss,
        hwm,
        rss_loaded,
        get: combine(got),
        create: combine(created),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let mut counts: Vec<usize> = std::env::var("IDSYNC_BENCH_TENANTS")
        .unwrap_or_else(|_| "10,50,200".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let users = size("IDSYNC_BENCH_TENANT_USERS", 5000).max(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    println!(
        "scim_tenants: {users} users per tenant; load on tenant 0: {} rounds of {} filtered GETs \
         then {} creates, {} in flight (CPU and switches: the least of the rounds)",
        size("IDSYNC_BENCH_TENANT_ROUNDS", 3).max(1),
        size("IDSYNC_BENCH_TENANT_GETS", 2000),
        size("IDSYNC_BENCH_TENANT_CREATES", 500),
        size("IDSYNC_BENCH_TENANT_CONCURRENCY", 8)
    );
    println!(
        "  {:>7} {:>9} {:>7} {:>8} {:>8} {:>10} {:>10} {:>7} {:>8} {:>11} {:>8} {:>9} {:>9}",
        "tenants",
        "users",
        "seed s",
        "RSS MiB",
        "HWM MiB",
        "MiB/tenant",
        "CPU/GET ms",
        "sw/GET",
        "p50 GET",
        "CPU/POST ms",
        "sw/POST",
        "p50 POST",
        "RSS load"
    );
    let mut all = Vec::new();
    for &tenants in &counts {
        let f = run(tenants, users, &client).await;
        println!(
            "  {:>7} {:>9} {:>7.1} {:>8.1} {:>8.1} {:>10.3} {:>10.3} {:>7.1} {:>8.2} {:>11.3} {:>8.1} {:>9.2} {:>9.1}",
            f.tenants,
            f.tenants * users,
            f.seed.as_secs_f64(),
            f.rss,
            f.hwm,
            f.rss / f.tenants as f64,
            ms(f.get.cpu),
            f.get.switches,
            ms(f.get.p50),
            ms(f.create.cpu),
            f.create.switches,
            ms(f.create.p50),
            f.rss_loaded
        );
        all.push(f);
    }
    let seeding: Duration = all.iter().map(|f| f.seed).sum();
    println!(
        "  (p50 in ms, RSS load in MiB after the load); seeding (library sync + tokens), all \
         counts: {:.1} s",
        seeding.as_secs_f64()
    );
    let (Some(small), Some(large)) = (all.first(), all.last()) else {
        return;
    };
    if large.tenants == small.tenants {
        return;
    }
    let factor = large.tenants as f64 / small.tenants as f64;
    println!(
        "  RSS at rest, {} / {} tenants: {:.2}x (linear would be {factor:.0}x); \
         {:.1} KiB more per added tenant",
        large.tenants,
        small.tenants,
        large.rss / small.rss,
        (large.rss - small.rss) * 1024.0 / (large.tenants - small.tenants) as f64
    );
    let ratio = |a: f64, b: f64| a / b.max(1e-9);
    println!(
        "  per request, {} / {} tenants: CPU GET {:.2}x, create {:.2}x; context switches GET \
         {:.2}x, create {:.2}x",
        large.tenants,
        small.tenants,
        ratio(large.get.cpu.as_secs_f64(), small.get.cpu.as_secs_f64()),
        ratio(
            large.create.cpu.as_secs_f64(),
            small.create.cpu.as_secs_f64()
        ),
        ratio(large.get.switches, small.get.switches),
        ratio(large.create.switches, small.create.switches)
    );
}
