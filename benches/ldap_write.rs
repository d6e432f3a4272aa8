//! Write benchmark of the LDAP target (prints figures; not a test): a file source of USERS
//! users and GROUPS groups of MEMBERS members each is synced into an empty subtree of a
//! throwaway slapd (`idsync_testkit::slapd`), the engine's state in SQLite. The same source
//! synced into the SQL target alone shows the engine's own share. The floor is `ldapadd`
//! adding the same entries (same attributes and member values) into the empty subtree of a
//! second, fresh slapd, as the same writer account.
//!
//! `cargo bench --bench ldap_write` (sizes: IDSYNC_BENCH_USERS, _GROUPS, _MEMBERS).
//! Skips, saying why, where slapd is not installed.

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use idsync::config::{Config, FileFormat, MappingConfig, OnRemove};
use idsync::connectors::file::FileConnector;
use idsync::db::Db;
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions};
use idsync_testkit::memory::{peak_memory_mib, reset_peak_memory};
use idsync_testkit::slapd::{APPS_DN, Slapd, WRITER_DN, WRITER_PASSWORD, target_ldif};

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The members of group `g`: MEMBERS consecutive users from a place that moves with `g`.
fn members(g: usize, users: usize, per_group: usize) -> impl Iterator<Item = usize> {
    (0..per_group.min(users)).map(move |i| (g * 37 + i) % users)
}

/// The source as a file connector's JSON snapshot.
fn write_snapshot(path: &Path, users: usize, groups: usize, per_group: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    write!(out, "{{\"users\":[").unwrap();
    for u in 0..users {
        if u > 0 {
            write!(out, ",").unwrap();
        }
        let record = serde_json::json!({
            "id": format!("u{u:07}"),
            "userName": format!("user{u}"),
            "givenName": format!("Given{u}"),
            "familyName": format!("Family{u}"),
            "emails": [{"value": format!("user{u}@example.com"), "type": "work", "primary": true}],
            "active": true,
        });
        serde_json::to_writer(&mut out, &record).unwrap();
    }
    write!(out, "],\"groups\":[").unwrap();
    for g in 0..groups {
        if g > 0 {
            write!(out, ",").unwrap();
        }
        let list: Vec<serde_json::Value> = members(g, users, per_group)
            .map(|u| serde_json::json!({"type": "user", "id": format!("u{u:07}")}))
            .collect();
        let record = serde_json::json!({
            "id": format!("g{g:06}"),
            "displayName": format!("Group {g}"),
            "description": "generated",
            "members": list,
        });
        serde_json::to_writer(&mut out, &record).unwrap();
    }
    write!(out, "]}}").unwrap();
    out.flush().unwrap();
}

/// The entries the LDAP target writes for that source, as LDIF for `ldapadd`.
fn write_ldif(path: &Path, users: usize, groups: usize, per_group: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let people = format!("ou=people,{APPS_DN}");
    for u in 0..users {
        writeln!(
            out,
            "dn: uid=user{u},{people}\nobjectClass: inetOrgPerson\nobjectClass: \
             organizationalPerson\nobjectClass: person\nobjectClass: top\nuid: user{u}\n\
             cn: Given{u} Family{u}\nsn: Family{u}\ngivenName: Given{u}\n\
             mail: user{u}@example.com\n"
        )
        .unwrap();
    }
    for g in 0..groups {
        write!(
            out,
            "dn: cn=Group {g},ou=groups,{APPS_DN}\nobjectClass: groupOfNames\n\
             objectClass: top\ncn: Group {g}\ndescription: generated\n"
        )
        .unwrap();
        for u in members(g, users, per_group) {
            writeln!(out, "member: uid=user{u},{people}").unwrap();
        }
        writeln!(out).unwrap();
    }
    out.flush().unwrap();
}

/// A configuration whose target is `slapd`'s subtree.
fn ldap_config(dir: &Path, slapd: &Slapd) -> Config {
    std::fs::create_dir_all(dir.join("connectors")).unwrap();
    std::fs::create_dir_all(dir.join("mappings")).unwrap();
    std::fs::write(dir.join("writer-password"), WRITER_PASSWORD).unwrap();
    let toml = format!(
        "[target]\nkind = \"ldap\"\n[target.ldap]\nurl = \"{}\"\nallow_insecure_ldap = true\n\
         bind_dn = \"{WRITER_DN}\"\nbind_password = {{ file = \"writer-password\" }}\n\
         users_dn = \"ou=people,{APPS_DN}\"\ngroups_dn = \"ou=groups,{APPS_DN}\"\n",
        slapd.url()
    );
    std::fs::write(dir.join("idsync.toml"), toml).unwrap();
    Config::load(&dir.join("idsync.toml")).unwrap_or_else(|e| panic!("{e}"))
}

async fn fresh_db(dir: &Path, name: &str) -> Db {
    let url = format!("sqlite://{}", dir.join(name).display());
    Db::open(&url).await.unwrap()
}

#[tokio::main]
async fn main() {
    if let Some(why) = Slapd::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let users = size("IDSYNC_BENCH_USERS", 100_000);
    let groups = size("IDSYNC_BENCH_GROUPS", 1_000);
    let per_group = size("IDSYNC_BENCH_MEMBERS", 50);
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot.json");
    write_snapshot(&snapshot, users, groups, per_group);
    let ldif = dir.path().join("entries.ldif");
    write_ldif(&ldif, users, groups, per_group);
    let entries = users + groups;
    let mapping = MappingConfig::pass_through("default", OnRemove::Disable, 500, 20.0);
    let source = FileConnector::new(snapshot, FileFormat::Json);
    println!(
        "LDAP target write: {users} users, {groups} groups of {per_group} members \
         ({entries} entries) into an empty slapd subtree"
    );

    // The engine's own share: the same run into the SQL target.
    let db = fresh_db(dir.path(), "sql.db").await;
    let started = Instant::now();
    let report = sync::sync(
        &db,
        "hr",
        &mapping,
        &source,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let sql_seconds = started.elapsed().as_secs_f64();
    db.close().await;

    let slapd = Slapd::start(&target_ldif()).unwrap_or_else(|e| panic!("slapd: {e}"));
    let config = ldap_config(&dir.path().join("config"), &slapd);
    let directory = config.engine.target.directory();
    let db = fresh_db(dir.path(), "ldap.db").await;
    reset_peak_memory();
    let started = Instant::now();
    let report = sync::sync_to(
        &db,
        &*directory,
        "hr",
        &mapping,
        &source,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let ldap_seconds = started.elapsed().as_secs_f64();
    let peak = peak_memory_mib();
    db.close().await;
    drop(slapd);

    let floor_slapd = Slapd::start(&target_ldif()).unwrap_or_else(|e| panic!("slapd: {e}"));
    let started = Instant::now();
    let status = Command::new("ldapadd")
        .args([
            "-x",
            "-H",
            &floor_slapd.url(),
            "-D",
            WRITER_DN,
            "-w",
            WRITER_PASSWORD,
        ])
        .arg("-f")
        .arg(&ldif)
        .stdout(Stdio::null())
        .status()
        .expect("ldapadd");
    assert!(status.success(), "ldapadd: {status}");
    let floor = started.elapsed().as_secs_f64();

    println!(
        "idsync sync into the LDAP target: {ldap_seconds:.2} s, {:.0} entries/s, peak RSS \
         {peak:.0} MiB",
        entries as f64 / ldap_seconds
    );
    println!(
        "  of which the engine's own run (the same sync into the SQL target): {sql_seconds:.2} s"
    );
    println!(
        "floor (ldapadd, the same entries, one at a time): {floor:.2} s, {:.0} entries/s",
        entries as f64 / floor
    );
    println!(
        "ratio to the floor: whole run {:.2}x; LDAP share (run minus the SQL-target run) \
         {:.2}x (aim: within 2x)",
        ldap_seconds / floor,
        (ldap_seconds - sql_seconds).max(0.0) / floor
    );
}
