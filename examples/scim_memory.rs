//! Peak memory of the SCIM server under many concurrent list requests (prints figures; not
//! a test). Starts the real `idsync serve` binary as a child process on loopback over a
//! SQLite database, fills a tenant with users of the largest allowed size (just under
//! `max_resource_bytes`, strings at `max_string_length`), then fires concurrent GETs of
//! full pages (`count` = `maxResults`) and prints the server's resident memory before and
//! its peak (VmHWM, reset before the phase) during it.
//!
//! ```sh
//! cargo build --bin idsync && cargo run --example scim_memory
//! ```
//!
//! Sizes: IDSYNC_MEMORY_USERS (default 1000), IDSYNC_MEMORY_GETS (default 500, all in
//! flight at once). Bounded to well under two minutes on a small machine.

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The `idsync` binary next to this example's directory (target/<profile>/idsync).
fn idsync_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = dir.join("idsync");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --bin idsync` first",
        binary.display()
    );
    binary
}

/// A field of /proc/<pid>/status, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Server {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(binary: &Path) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "idsync.toml",
        "[target]\ndatabase_url = \"sqlite://idsync.db\"\n[log]\nlevel = \"warn\"\n",
    );
    write(
        "mappings/default.toml",
        "on_remove = \"disable\"\nmax_deletes = 1000000\nmax_delete_percent = 100.0\n",
    );
    write(
        "connectors/mem.toml",
        "kind = \"scim\"\nmapping = \"default\"\n[scim]\nrequests_per_second = 1000000\n\
         burst = 1000000\n",
    );
    let config = dir.path().join("idsync.toml");
    let created = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .args(["tenant", "create", "mem"])
        .output()
        .expect("idsync tenant create");
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8_lossy(&created.stdout)
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
    let child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .args([
            "serve",
            "--scim-listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::null())
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
        base: format!("http://127.0.0.1:{port}/scim/mem/v2"),
        token,
        _dir: dir,
    }
}

/// A user just under the default `max_resource_bytes` (16 KiB), its strings at the
/// default `max_string_length` or under.
fn largest_user(i: usize) -> serde_json::Value {
    let filler = |c: char, n: usize| std::iter::repeat_n(c, n).collect::<String>();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:params:big"],
        "userName": format!("user{i:05}@example.com"),
        "active": true,
        "urn:example:params:big": {
            "a": filler('a', 4000),
            "b": filler('b', 4000),
            "c": filler('c', 4000),
            "d": filler('d', 3800),
        }
    })
}

#[tokio::main]
async fn main() {
    let users = size("IDSYNC_MEMORY_USERS", 1000);
    let gets = size("IDSYNC_MEMORY_GETS", 500);
    let binary = idsync_binary();
    let server = start_server(&binary);
    let pid = server.child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(gets)
        .build()
        .expect("client");

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..users {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let request = client
            .post(format!("{}/Users", server.base))
            .bearer_auth(&server.token)
            .header("content-type", "application/scim+json")
            .body(largest_user(i).to_string());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let response = request.send().await.expect("create");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, 201, "{text}");
        }));
    }
    for task in tasks {
        task.await.expect("create task");
    }
    println!(
        "filled {users} users of ~16 KiB in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Reset the server's peak so the figure is this phase's own.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let before = status_mib(pid, "VmRSS:");
    let started = Instant::now();
    let go = Arc::new(tokio::sync::Barrier::new(gets));
    let mut tasks = Vec::new();
    for _ in 0..gets {
        let request = client
            .get(format!("{}/Users?count=1000", server.base))
            .bearer_auth(&server.token);
        let go = go.clone();
        tasks.push(tokio::spawn(async move {
            go.wait().await;
            let mut response = request.send().await.expect("list");
            let status = response.status().as_u16();
            // Read and drop: the client keeps nothing.
            let mut bytes = 0usize;
            while let Some(chunk) = response.chunk().await.expect("body") {
                bytes += chunk.len();
            }
            (status, bytes)
        }));
    }
    let mut total = 0usize;
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        let (status, bytes) = task.await.expect("list task");
        *statuses.entry(status).or_insert(0) += 1;
        total += bytes;
    }
    println!("statuses: {statuses:?}");
    let peak = status_mib(pid, "VmHWM:");
    println!(
        "{gets} concurrent GET /Users?count=1000: {:.1} s, {:.0} MiB sent ({:.0} KiB a page)",
        started.elapsed().as_secs_f64(),
        total as f64 / (1 << 20) as f64,
        total as f64 / gets as f64 / 1024.0
    );
    println!("server RSS before: {before:.0} MiB; peak during the GETs: {peak:.0} MiB");
}
