//! Scale benchmark of the ldap connector (prints figures; not a test): a throwaway slapd
//! (`idsync_testkit::slapd`) holds USERS inetOrgPerson users and GROUPS groupOfNames groups
//! of MEMBERS members each; the connector reads them all with paged searches (pages of
//! 1,000, the reader's limit, as Active Directory allows) into a sink that only counts.
//! The floor is `ldapsearch` doing the same searches (users; group ids; groups) with the
//! same page size, its output discarded.
//!
//! `cargo bench --bench ldap_scale` (sizes: IDSYNC_BENCH_USERS, _GROUPS, _MEMBERS).
//! Skips, saying why, where slapd is not installed.

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use async_trait::async_trait;
use idsync::config::Config;
use idsync::connectors::{BatchSink, SinkError, SourceBatch};
use idsync_testkit::memory::{peak_memory_mib, reset_peak_memory};
use idsync_testkit::slapd::{READER_DN, READER_PASSWORD, SUFFIX, Slapd};

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

const PAGE: usize = 1000;

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Count {
    users: usize,
    groups: usize,
    members: usize,
}

#[async_trait]
impl BatchSink for Count {
    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        match batch {
            SourceBatch::Users(users) => self.users += users.len(),
            SourceBatch::Groups(groups) => {
                self.groups += groups.len();
                self.members += groups.iter().map(|g| g.members.len()).sum::<usize>();
            }
            _ => {}
        }
        Ok(())
    }
}

fn ldif(users: usize, groups: usize, members: usize) -> String {
    let mut out = String::with_capacity(users * 300);
    for n in 0..users {
        let _ = write!(
            out,
            "dn: uid=user{n:06},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n\
             uid: user{n:06}\ncn: User {n}\nsn: Number{n}\ngivenName: User\n\
             mail: user{n:06}@example.com\ndisplayName: User Number {n}\n\
             title: Engineer\ndepartmentNumber: {}\n\n",
            n % 50
        );
    }
    for g in 0..groups {
        let _ = writeln!(
            out,
            "dn: cn=group{g:04},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: group{g:04}"
        );
        for m in 0..members {
            let user = (g * members + m) % users.max(1);
            let _ = writeln!(out, "member: uid=user{user:06},ou=people,{SUFFIX}");
        }
        out.push('\n');
    }
    out
}

/// `ldapsearch` of `base` with `filter` and `attrs`, pages of PAGE, output discarded.
fn ldapsearch(url: &str, base: &str, filter: &str, attrs: &[&str]) {
    let status = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            url,
            "-D",
            READER_DN,
            "-w",
            READER_PASSWORD,
        ])
        .args(["-E", &format!("pr={PAGE}/noprompt"), "-b", base, filter])
        .args(attrs)
        .stdout(Stdio::null())
        .status()
        .expect("ldapsearch");
    assert!(status.success(), "ldapsearch {base} {filter}: {status}");
}

#[tokio::main]
async fn main() {
    if let Some(why) = Slapd::unavailable() {
        println!("ldap_scale skipped: {why}");
        return;
    }
    let users = size("IDSYNC_BENCH_USERS", 100_000);
    let groups = size("IDSYNC_BENCH_GROUPS", 200);
    let members = size("IDSYNC_BENCH_MEMBERS", 500);
    let loading = Instant::now();
    let server = Slapd::start_with_limit(&ldif(users, groups, members), PAGE).expect("slapd");
    println!(
        "slapd loaded {users} users, {groups} groups of {members} in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("connectors")).unwrap();
    std::fs::create_dir_all(root.join("mappings")).unwrap();
    std::fs::write(root.join("idsync.toml"), "").unwrap();
    std::fs::write(root.join("mappings/default.toml"), "").unwrap();
    std::fs::write(root.join("password"), READER_PASSWORD).unwrap();
    std::fs::write(
        root.join("connectors/dir.toml"),
        format!(
            "kind = \"ldap\"\nmapping = \"default\"\n[ldap]\nurl = \"{}\"\n\
             allow_insecure_ldap = true\nbind_dn = \"{READER_DN}\"\n\
             bind_password = {{ file = \"password\" }}\npreset = \"openldap\"\n\
             page_size = {PAGE}\n[ldap.users]\nbase_dn = \"ou=people,{SUFFIX}\"\n\
             [ldap.groups]\nbase_dn = \"ou=groups,{SUFFIX}\"\n",
            server.url()
        ),
    )
    .unwrap();
    let config = Config::load(&root.join("idsync.toml")).unwrap();
    let connector = config.connectors["dir"].build().unwrap();

    reset_peak_memory();
    let started = Instant::now();
    let mut count = Count::default();
    connector.read(None, &mut count).await.expect("read");
    let read = started.elapsed().as_secs_f64();
    let peak = peak_memory_mib();
    assert_eq!((count.users, count.groups), (users, groups));
    let entries = (users + groups) as f64;

    let url = server.url();
    let started = Instant::now();
    ldapsearch(
        &url,
        &format!("ou=people,{SUFFIX}"),
        "(objectClass=inetOrgPerson)",
        &["*", "entryUUID", "pwdAccountLockedTime"],
    );
    let groups_filter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
                         (objectClass=posixGroup))";
    let group_base = format!("ou=groups,{SUFFIX}");
    ldapsearch(&url, &group_base, groups_filter, &["entryUUID"]);
    ldapsearch(&url, &group_base, groups_filter, &["*", "entryUUID"]);
    let floor = started.elapsed().as_secs_f64();

    println!(
        "read: {users} users + {groups} groups ({} members) in {read:.2} s, {:.0} entries/s, \
         peak RSS {peak:.0} MiB",
        count.members,
        entries / read
    );
    println!(
        "floor (ldapsearch, same searches, pages of {PAGE}): {floor:.2} s, {:.0} entries/s; \
         ratio {:.2}x",
        entries / floor,
        read / floor
    );
}
