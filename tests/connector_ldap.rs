//! The ldap connector against a real OpenLDAP (testkit/src/slapd.rs), configured through a
//! connector file and synced into SQLite: paging past the reader's size limit, nested
//! groups with a cycle, groupOfUniqueNames and posixGroup members, a ppolicy-locked user,
//! a refused bind, a paged total cut by the server's limit, a connection dropped mid-read
//! (nothing changes), StartTLS and ldaps with the test CA, overrides (`inactive_filter`, an
//! attribute, a one-level scope), incremental reads (content sync, change filters, and
//! `modifyTimestamp` on a server without syncprov), and `check --connect`.
//!
//! Each test skips (and says why) where slapd is not installed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use idsync::config::Config;
use idsync::connectors::PullConnector;
use idsync::db::Db;
use idsync::store::runs::Outcome;
use idsync::sync::SyncError;
use idsync::target::query;

use crate::support::{effective_names, sync_directory, target_users};
use idsync_testkit::slapd::{
    READER_DN, READER_PASSWORD, READER_SIZE_LIMIT, STRICT_DN, STRICT_PASSWORD, SUFFIX, Slapd,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The server with `ldif`, or `None` (the reason printed) where slapd cannot run.
fn start(ldif: &str) -> Option<Slapd> {
    if let Some(why) = Slapd::unavailable() {
        eprintln!("skipped: {why}");
        return None;
    }
    Some(Slapd::start(ldif).unwrap_or_else(|e| panic!("slapd: {e}")))
}

fn person(uid: &str, extra: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
         cn: {uid} Example\nsn: Example\ngivenName: {uid}\nmail: {uid}@example.com\n{extra}\n\n"
    )
}

fn people(count: usize) -> String {
    (0..count)
        .map(|n| person(&format!("user{n:04}"), "description: generated"))
        .collect()
}

/// A connector built from a connector file, as `idsync` builds it; `table` is the rest of
/// its `[ldap]` table after the URL and account.
fn connector(url: &str, dn: &str, password: &str, table: &str) -> Box<dyn PullConnector> {
    connector_with_users(url, dn, password, table, "")
}

/// [`connector`] with more keys in `[ldap.users]`.
fn connector_with_users(
    url: &str,
    dn: &str,
    password: &str,
    table: &str,
    users: &str,
) -> Box<dyn PullConnector> {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("connectors")).expect("mkdir");
    std::fs::create_dir_all(root.join("mappings")).expect("mkdir");
    std::fs::write(root.join("idsync.toml"), "").expect("write");
    std::fs::write(root.join("mappings/default.toml"), "").expect("write");
    std::fs::write(root.join("password"), password).expect("write");
    let file = format!(
        "kind = \"ldap\"\nmapping = \"default\"\n[ldap]\nurl = \"{url}\"\n\
         bind_dn = \"{dn}\"\nbind_password = {{ file = \"password\" }}\n\
         preset = \"openldap\"\n{table}\n\
         [ldap.users]\nbase_dn = \"ou=people,{SUFFIX}\"\n{users}\n\
         [ldap.groups]\nbase_dn = \"ou=groups,{SUFFIX}\"\n"
    );
    std::fs::write(root.join("connectors/dir.toml"), file).expect("write");
    let config = Config::load(&root.join("idsync.toml")).unwrap_or_else(|e| panic!("{e}"));
    config.connectors["dir"].build().expect("connector")
}

/// The reader over plain ldap:// on loopback.
fn plain(server_url: &str, table: &str) -> Box<dyn PullConnector> {
    connector(
        server_url,
        READER_DN,
        READER_PASSWORD,
        &format!("allow_insecure_ldap = true\n{table}"),
    )
}

#[tokio::test]
async fn paging_reads_past_the_size_limit_into_sqlite() {
    let users = 250;
    assert!(users > READER_SIZE_LIMIT);
    let ldif = people(users)
        + &format!(
            "dn: cn=everyone,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: everyone\n{}\n",
            (0..users)
                .map(|n| format!("member: uid=user{n:04},ou=people,{SUFFIX}\n"))
                .collect::<String>()
        );
    let Some(server) = start(&ldif) else { return };
    let db = crate::support::sqlite().await;
    let report = sync_directory(&db, plain(&server.url(), "page_size = 50").as_ref())
        .await
        .expect("sync");
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.read_mode, Some("full"));
    assert_eq!(report.counts.users_created, users as u64, "{report:?}");
    assert_eq!(report.counts.groups_created, 1);
    let target = target_users(&db).await;
    assert_eq!(target.len(), users);
    assert!(target.iter().all(|(_, active)| *active));
    assert_eq!(effective_names(&db, "everyone").await.len(), users);

    // The default page (500) is more than the reader may have: slapd refuses it
    // (adminLimitExceeded) and the connector asks for smaller pages until one is taken.
    let again = sync_directory(&db, plain(&server.url(), "").as_ref())
        .await
        .expect("second sync");
    assert_eq!(again.outcome, Outcome::Unchanged, "{again:?}");
    assert_eq!(target_users(&db).await.len(), users);
}

#[tokio::test]
async fn a_paged_total_cut_by_the_server_is_an_incomplete_read() {
    let Some(server) = start(&people(150)) else {
        return;
    };
    let connector = connector(
        &server.url(),
        STRICT_DN,
        STRICT_PASSWORD,
        "allow_insecure_ldap = true\npage_size = 50",
    );
    let db = crate::support::sqlite().await;
    let err = sync_directory(&db, connector.as_ref())
        .await
        .expect_err("the size limit ends the read");
    let message = err.to_string();
    assert!(matches!(err, SyncError::Read { .. }), "{message}");
    assert!(message.contains("sizeLimitExceeded"), "{message}");
    assert!(target_users(&db).await.is_empty());
}

#[tokio::test]
async fn nesting_with_a_cycle_member_kinds_and_a_locked_user() {
    let ldif = person("ann", "title: first")
        + &person("bob", "pwdAccountLockedTime: 000001010000Z")
        + &person("carol", "title: third")
        + &format!(
            // a ⊃ b ⊃ a (a cycle), with member DNs in other cases and spacing.
            "dn: cn=a,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: a\n\
             member: UID=ann , OU=People,DC=example,DC=com\n\
             member: cn=B,ou=GROUPS,{SUFFIX}\n\
             member: uid=ghost,ou=elsewhere,{SUFFIX}\n\n\
             dn: cn=b,ou=groups,{SUFFIX}\nobjectClass: groupOfUniqueNames\ncn: b\n\
             uniqueMember: uid=bob,ou=people,{SUFFIX}\n\
             uniqueMember: cn=a,ou=groups,{SUFFIX}\n\n\
             dn: cn=posix,ou=groups,{SUFFIX}\nobjectClass: posixGroup\ncn: posix\n\
             gidNumber: 5000\nmemberUid: CAROL\nmemberUid: nobody\n"
        );
    let Some(server) = start(&ldif) else { return };
    assert!(
        server.overlays.contains(&"ppolicy"),
        "the ppolicy module defines pwdAccountLockedTime"
    );
    let db = crate::support::sqlite().await;
    let report = sync_directory(&db, plain(&server.url(), "").as_ref())
        .await
        .expect("sync");
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let users: BTreeSet<(String, bool)> = target_users(&db).await.into_iter().collect();
    assert_eq!(
        users,
        BTreeSet::from([
            ("ann".to_owned(), true),
            ("bob".to_owned(), false),
            ("carol".to_owned(), true)
        ])
    );
    let both = BTreeSet::from(["ann".to_owned(), "bob".to_owned()]);
    assert_eq!(effective_names(&db, "a").await, both);
    assert_eq!(effective_names(&db, "b").await, both);
    assert_eq!(
        effective_names(&db, "posix").await,
        BTreeSet::from(["carol".to_owned()])
    );
}

#[tokio::test]
async fn a_refused_bind_is_a_clear_error() {
    let Some(server) = start("") else { return };
    let connector = connector(
        &server.url(),
        READER_DN,
        "wrong",
        "allow_insecure_ldap = true",
    );
    let db = crate::support::sqlite().await;
    let message = sync_directory(&db, connector.as_ref())
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        message.contains(&format!(
            "ldap connector: binding to {} failed: bind as `{READER_DN}` refused: invalid \
             credentials (invalidCredentials): check `bind_dn` and `bind_password`",
            server.url()
        )),
        "{message}"
    );
    let checks = connector.diagnose().await;
    let last = checks.last().expect("a step");
    assert_eq!((last.check, last.ok), ("bind", false), "{checks:?}");
}

/// A loopback proxy to `upstream` that cuts every connection once `cut_after` bytes
/// have come back from the server (no cut while it is `usize::MAX`).
async fn cutting_proxy(upstream: u16, cut_after: Arc<AtomicUsize>) -> u16 {
    proxy(upstream, cut_after, Arc::new(AtomicUsize::new(0))).await
}

/// A loopback proxy to `upstream` that adds the bytes coming back from the server to
/// `received`.
async fn counting_proxy(upstream: u16, received: Arc<AtomicUsize>) -> u16 {
    proxy(upstream, Arc::new(AtomicUsize::new(usize::MAX)), received).await
}

/// [`cutting_proxy`] that also counts what it passes on in `received`.
async fn proxy(upstream: u16, cut_after: Arc<AtomicUsize>, received: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let cut_after = cut_after.clone();
            let received = received.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let up = tokio::io::copy(&mut client_read, &mut server_write);
                let down = async {
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let limit = cut_after.load(Ordering::SeqCst);
                        let n = n.min(limit.saturating_sub(sent));
                        if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                        received.fetch_add(n, Ordering::SeqCst);
                    }
                };
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_connection_dropped_mid_read_changes_nothing() {
    let Some(server) = start(&people(300)) else {
        return;
    };
    let cut_after = Arc::new(AtomicUsize::new(usize::MAX));
    let port = cutting_proxy(server.port, cut_after.clone()).await;
    let via_proxy = plain(&format!("ldap://127.0.0.1:{port}"), "page_size = 50");
    let db = crate::support::sqlite().await;
    let first = sync_directory(&db, via_proxy.as_ref())
        .await
        .expect("first sync");
    assert_eq!(first.counts.users_created, 300);
    let before = query::table_counts(db.pool()).await.expect("counts");

    // The users change, but the connection drops after ~20 KB (a few pages in).
    server
        .modify(&format!(
            "dn: uid=user0000,ou=people,{SUFFIX}\nchangetype: delete\n\n\
             dn: uid=user0001,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\n\
             mail: changed@example.com\n"
        ))
        .expect("modify");
    cut_after.store(20_000, Ordering::SeqCst);
    let err = sync_directory(&db, via_proxy.as_ref())
        .await
        .expect_err("the read fails");
    let message = err.to_string();
    assert!(matches!(err, SyncError::Read { .. }), "{message}");
    assert!(
        message.contains("ldap connector: searching users"),
        "{message}"
    );
    assert_eq!(
        query::table_counts(db.pool()).await.expect("counts"),
        before
    );
    assert_eq!(target_users(&db).await.len(), 300);
}

#[tokio::test]
async fn starttls_and_ldaps_with_the_test_ca() {
    let Some(server) = start(&person("ann", "title: only")) else {
        return;
    };
    let ca = server.ca_file();
    let ca = ca.display();
    let cases = [
        (
            server.url(),
            format!("starttls = true\nca_file = \"{ca}\"\npage_size = 100"),
        ),
        (
            server.ldaps_url(),
            format!("ca_file = \"{ca}\"\npage_size = 100"),
        ),
        // Loudly insecure, but it connects.
        (
            server.ldaps_url(),
            "danger_skip_tls_verify = true".to_owned(),
        ),
    ];
    for (url, table) in cases {
        let connector = connector(&url, READER_DN, READER_PASSWORD, &table);
        let db = crate::support::sqlite().await;
        let report = sync_directory(&db, connector.as_ref())
            .await
            .unwrap_or_else(|e| panic!("{url} {table}: {e}"));
        assert_eq!(report.counts.users_created, 1, "{url} {table}");
    }
    // Without the test CA the server's certificate is not trusted.
    let untrusted = connector(&server.ldaps_url(), READER_DN, READER_PASSWORD, "");
    let db = crate::support::sqlite().await;
    let message = sync_directory(&db, untrusted.as_ref())
        .await
        .expect_err("untrusted")
        .to_string();
    assert!(message.contains("cannot connect to"), "{message}");
    assert!(Path::new(&server.ca_file()).exists());
}

#[tokio::test]
async fn check_connect_reports_every_step() {
    let group = format!(
        "dn: cn=staff,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: staff\n\
         member: uid=ann,ou=people,{SUFFIX}\n\n"
    );
    let Some(server) = start(&(person("ann", "title: only") + &group)) else {
        return;
    };
    let connector = connector(
        &server.url(),
        READER_DN,
        READER_PASSWORD,
        &format!(
            "starttls = true\nca_file = \"{}\"",
            server.ca_file().display()
        ),
    );
    let checks = connector.diagnose().await;
    let steps: Vec<(&str, bool)> = checks.iter().map(|c| (c.check, c.ok)).collect();
    assert_eq!(
        steps,
        [
            ("connect", true),
            ("bind", true),
            ("paged results", true),
            ("server limits", true),
            ("users base DN", true),
            ("groups base DN", true),
            ("list users", true),
            ("list groups", true),
            ("list group members", true),
            ("operational attributes", true),
        ],
        "{checks:?}"
    );
}

#[tokio::test]
async fn overrides_an_inactive_filter_and_a_one_level_scope() {
    let ldif = person("ann", "title: staff")
        + &person("bob", "title: former")
        + &format!(
            "dn: ou=contractors,ou=people,{SUFFIX}\nobjectClass: organizationalUnit\n\
             ou: contractors\n\n\
             dn: uid=cid,ou=contractors,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n\
             uid: cid\ncn: cid\nsn: Example\nmail: cid@example.com\n\n"
        );
    let Some(server) = start(&ldif) else { return };
    let table = "allow_insecure_ldap = true\ninactive_filter = \"(title=former)\"\n\
                 [ldap.attributes]\nuser_name = \"mail\"";
    let db = crate::support::sqlite().await;
    let url = server.url();
    let deep = connector_with_users(&url, READER_DN, READER_PASSWORD, table, "");
    sync_directory(&db, deep.as_ref()).await.expect("sync");
    let users: BTreeSet<(String, bool)> = target_users(&db).await.into_iter().collect();
    assert_eq!(
        users,
        BTreeSet::from([
            ("ann@example.com".to_owned(), true),
            ("bob@example.com".to_owned(), false),
            ("cid@example.com".to_owned(), true),
        ])
    );

    // One level: the contractor below ou=contractors is no longer read, so removed.
    let one = connector_with_users(&url, READER_DN, READER_PASSWORD, table, "scope = \"one\"");
    sync_directory(&db, one.as_ref()).await.expect("sync");
    let names: BTreeSet<String> = target_users(&db).await.into_iter().map(|u| u.0).collect();
    assert_eq!(
        names,
        BTreeSet::from(["ann@example.com".to_owned(), "bob@example.com".to_owned()])
    );
}

#[tokio::test]
async fn incremental_reads_take_changes_and_notice_deletions() {
    let ldif = people(5)
        + &format!(
            "dn: cn=team,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: team\n\
             member: uid=user0000,ou=people,{SUFFIX}\n\
             member: uid=user0001,ou=people,{SUFFIX}\n\n"
        );
    let Some(server) = start(&ldif) else { return };
    assert!(
        server.overlays.contains(&"syncprov"),
        "contextCSN needs syncprov"
    );
    let connector = plain(&server.url(), "incremental = true");
    let db = crate::support::sqlite().await;
    let first = sync_directory(&db, connector.as_ref())
        .await
        .expect("first sync");
    assert_eq!(first.read_mode, Some("full"), "{first:?}");
    assert_eq!(first.counts.users_created, 5);

    server
        .modify(&format!(
            "dn: uid=user0002,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\n\
             mail: changed@example.com\n\n\
             dn: uid=user0003,ou=people,{SUFFIX}\nchangetype: delete\n\n\
             dn: cn=team,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\n\
             member: uid=user0004,ou=people,{SUFFIX}\n\n\
             dn: uid=newcomer,ou=people,{SUFFIX}\nchangetype: add\n\
             objectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\n\
             mail: newcomer@example.com\n"
        ))
        .expect("modify");
    let second = sync_directory(&db, connector.as_ref())
        .await
        .expect("second sync");
    assert_eq!(second.read_mode, Some("delta"), "{second:?}");
    // The changed user, the new one and the changed group; not the 3 others.
    assert_eq!(second.records_read, 3, "{second:?}");
    let names: BTreeSet<String> = target_users(&db).await.into_iter().map(|u| u.0).collect();
    assert_eq!(
        names,
        ["newcomer", "user0000", "user0001", "user0002", "user0004"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(
        effective_names(&db, "team").await,
        ["user0000", "user0001", "user0004"]
            .map(str::to_owned)
            .into()
    );
    let changed = query::list_users(db.pool(), None, 100, 0)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.user_name == "user0002")
        .expect("user0002");
    assert_eq!(changed.email.as_deref(), Some("changed@example.com"));

    // Nothing changed: a delta with nothing in it.
    let third = sync_directory(&db, connector.as_ref())
        .await
        .expect("third sync");
    assert_eq!(third.read_mode, Some("delta"));
    assert_eq!(third.outcome, Outcome::Unchanged, "{third:?}");
}

/// What the content sync tests start from: 150 users (more than the reader may have in
/// one search), a groupOfNames and a posixGroup.
fn synced_directory() -> String {
    people(150)
        + &format!(
            "dn: cn=team,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: team\n\
             member: uid=user0000,ou=people,{SUFFIX}\n\
             member: uid=user0001,ou=people,{SUFFIX}\n\n\
             dn: cn=posix,ou=groups,{SUFFIX}\nobjectClass: posixGroup\ncn: posix\n\
             gidNumber: 5000\nmemberUid: user0005\n\n"
        )
}

/// A modified, a deleted and a new user; an unchanged user joins `team` (by DN) and
/// another `posix` (by login).
fn synced_changes() -> String {
    format!(
        "dn: uid=user0002,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\n\
         mail: changed@example.com\n\n\
         dn: uid=user0003,ou=people,{SUFFIX}\nchangetype: delete\n\n\
         dn: cn=team,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\n\
         member: uid=user0004,ou=people,{SUFFIX}\n\n\
         dn: cn=posix,ou=groups,{SUFFIX}\nchangetype: modify\nadd: memberUid\n\
         memberUid: USER0006\n\n\
         dn: uid=newcomer,ou=people,{SUFFIX}\nchangetype: add\n\
         objectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\n\
         mail: newcomer@example.com\n"
    )
}

/// RFC 4533 refreshOnly polls, without a session log (syncprov answers with a present
/// phase: the entryUUIDs of all unchanged entries) and with one (a delete phase: the
/// deleted entryUUIDs only). Either way the second run reads the changed entries only,
/// and far fewer bytes than the full read.
#[tokio::test]
async fn content_sync_reads_only_the_changes() {
    for session_log in [None, Some(100)] {
        if let Some(why) = Slapd::unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let ldif = synced_directory();
        let server = match session_log {
            None => Slapd::start(&ldif),
            Some(entries) => Slapd::start_with_session_log(&ldif, entries),
        }
        .unwrap_or_else(|e| panic!("slapd: {e}"));
        assert!(
            server.overlays.contains(&"syncprov"),
            "content sync needs syncprov"
        );
        let received = Arc::new(AtomicUsize::new(0));
        let port = counting_proxy(server.port, received.clone()).await;
        let connector = plain(
            &format!("ldap://127.0.0.1:{port}"),
            "incremental = true\npage_size = 50",
        );
        let db = crate::support::sqlite().await;
        let first = sync_directory(&db, connector.as_ref())
            .await
            .expect("first sync");
        assert_eq!(first.read_mode, Some("full"), "{first:?}");
        assert_eq!(first.counts.users_created, 150);
        let full_bytes = received.swap(0, Ordering::SeqCst);

        server.modify(&synced_changes()).expect("modify");
        let second = sync_directory(&db, connector.as_ref())
            .await
            .expect("second sync");
        let delta_bytes = received.swap(0, Ordering::SeqCst);
        assert_eq!(second.read_mode, Some("delta"), "{second:?}");
        // Two users and two groups; with a session log the deletion too (syncprov names
        // it to both polls, so it counts twice).
        let expected = match session_log {
            None => 4,
            Some(_) => 6,
        };
        assert_eq!(second.records_read, expected, "{session_log:?} {second:?}");
        // The present phase still names every unchanged entry (16 octets each); the
        // listing it replaces sent every DN and id.
        let factor = if session_log.is_some() { 10 } else { 5 };
        eprintln!(
            "session log {session_log:?}: full read {full_bytes} bytes, changes {delta_bytes}"
        );
        assert!(
            delta_bytes * factor < full_bytes,
            "{session_log:?}: {delta_bytes} bytes read for the changes, {full_bytes} for \
             the full read"
        );
        let names: BTreeSet<String> = target_users(&db).await.into_iter().map(|u| u.0).collect();
        assert_eq!(names.len(), 150, "one deleted, one added");
        assert!(names.contains("newcomer") && !names.contains("user0003"));
        assert_eq!(
            effective_names(&db, "team").await,
            ["user0000", "user0001", "user0004"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            effective_names(&db, "posix").await,
            ["user0005", "user0006"].map(str::to_owned).into()
        );
        let changed = query::list_users(db.pool(), None, 1000, 0)
            .await
            .expect("users")
            .into_iter()
            .find(|u| u.user_name == "user0002")
            .expect("user0002");
        assert_eq!(changed.email.as_deref(), Some("changed@example.com"));

        // Nothing changed: a delta with nothing in it.
        let third = sync_directory(&db, connector.as_ref())
            .await
            .expect("third sync");
        assert_eq!(third.read_mode, Some("delta"));
        assert_eq!(third.outcome, Outcome::Unchanged, "{third:?}");
        assert_eq!(third.records_read, 0, "{third:?}");
    }
}

async fn stored_checkpoint(db: &Db) -> serde_json::Value {
    let mut conn = db.pool().acquire().await.expect("connection");
    let state = idsync::store::mirror::load_state(&mut conn, "dir")
        .await
        .expect("state");
    serde_json::from_str(state.checkpoint.as_deref().expect("a checkpoint")).expect("json")
}

/// A cookie the server will not continue from (here one ahead of it, as after restoring
/// the server from a backup: slapd answers "consumer state is newer than provider")
/// makes the run a full read, and the next run is incremental again.
#[tokio::test]
async fn a_refused_cookie_means_a_full_read() {
    let Some(server) = start(&synced_directory()) else {
        return;
    };
    let connector = plain(&server.url(), "incremental = true\npage_size = 50");
    let db = crate::support::sqlite().await;
    sync_directory(&db, connector.as_ref())
        .await
        .expect("first sync");
    let mut checkpoint = stored_checkpoint(&db).await;
    let ahead: String = b"rid=000,csn=20991231000000.000000Z#000000#000#000000"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(checkpoint["cookies"]["users"].is_string(), "{checkpoint}");
    checkpoint["cookies"]["users"] = ahead.clone().into();
    {
        let mut conn = db.pool().acquire().await.expect("connection");
        let mut state = idsync::store::mirror::load_state(&mut conn, "dir")
            .await
            .expect("state");
        state.checkpoint = Some(checkpoint.to_string());
        idsync::store::mirror::save_state(&mut conn, "dir", &state)
            .await
            .expect("save");
    }
    server
        .modify(&format!(
            "dn: uid=user0003,ou=people,{SUFFIX}\nchangetype: delete\n"
        ))
        .expect("modify");
    let second = sync_directory(&db, connector.as_ref())
        .await
        .expect("second sync");
    assert_eq!(second.read_mode, Some("full"), "{second:?}");
    assert_eq!(second.outcome, Outcome::Succeeded, "{second:?}");
    assert_eq!(target_users(&db).await.len(), 149);
    assert_ne!(
        stored_checkpoint(&db).await["cookies"]["users"],
        ahead.as_str()
    );

    server
        .modify(&format!(
            "dn: uid=user0004,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\n\
             mail: again@example.com\n"
        ))
        .expect("modify");
    let third = sync_directory(&db, connector.as_ref())
        .await
        .expect("third sync");
    assert_eq!(third.read_mode, Some("delta"), "{third:?}");
    assert_eq!(third.records_read, 1, "{third:?}");
}

/// An OpenLDAP without syncprov (no contextCSN, no content sync): incremental reads by
/// `modifyTimestamp`. The users carry timestamps from long ago (user0004's the latest, so
/// the marker), a change, a new user and a deletion are read, and a run after
/// `full_read_every` is full. The 60 s margin makes it independent of timing: what falls
/// within it is read again and changes nothing.
#[tokio::test]
async fn modify_timestamps_where_the_server_has_no_syncprov() {
    if let Some(why) = Slapd::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let stamps = |at: &str| format!("createTimestamp: {at}\nmodifyTimestamp: {at}");
    let ldif: String = (0..5)
        .map(|n| {
            let at = if n == 4 {
                "20210101000000Z".to_owned()
            } else {
                format!("2020010{}000000Z", n + 1)
            };
            person(&format!("user{n:04}"), &stamps(&at))
        })
        .collect::<String>()
        + &format!(
            "dn: cn=team,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: team\n\
             member: uid=user0000,ou=people,{SUFFIX}\n\
             member: uid=user0001,ou=people,{SUFFIX}\n{}\n\n",
            stamps("20200201000000Z")
        );
    let server =
        Slapd::start_without(&["syncprov"], &ldif).unwrap_or_else(|e| panic!("slapd: {e}"));
    assert!(!server.overlays.contains(&"syncprov"));
    let connector = plain(&server.url(), "incremental = true");
    let db = crate::support::sqlite().await;
    let first = sync_directory(&db, connector.as_ref())
        .await
        .expect("first sync");
    assert_eq!(first.read_mode, Some("full"), "{first:?}");
    assert_eq!(first.counts.users_created, 5);
    let checkpoint = stored_checkpoint(&db).await;
    assert_eq!(checkpoint["method"], "modifyTimestamp", "{checkpoint}");
    assert_eq!(checkpoint["marker"], "20210101000000Z", "{checkpoint}");
    assert_eq!(checkpoint["server"], SUFFIX, "{checkpoint}");

    server
        .modify(&format!(
            "dn: uid=user0002,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\n\
             mail: changed@example.com\n\n\
             dn: uid=user0003,ou=people,{SUFFIX}\nchangetype: delete\n\n\
             dn: uid=newcomer,ou=people,{SUFFIX}\nchangetype: add\n\
             objectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\n\
             mail: newcomer@example.com\n"
        ))
        .expect("modify");
    let second = sync_directory(&db, connector.as_ref())
        .await
        .expect("second sync");
    assert_eq!(second.read_mode, Some("delta"), "{second:?}");
    // The changed user, the new one, and user0004 again (its timestamp is the marker);
    // the deletion found by the listing.
    assert_eq!(second.records_read, 3, "{second:?}");
    assert_eq!(second.counts.users_created, 1, "{second:?}");
    assert_eq!(second.counts.users_updated, 1, "{second:?}");
    assert_eq!(second.counts.users_deleted, 1, "{second:?}");
    let names: BTreeSet<String> = target_users(&db).await.into_iter().map(|u| u.0).collect();
    assert_eq!(
        names,
        ["newcomer", "user0000", "user0001", "user0002", "user0004"]
            .map(str::to_owned)
            .into()
    );
    let changed = query::list_users(db.pool(), None, 100, 0)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.user_name == "user0002")
        .expect("user0002");
    assert_eq!(changed.email.as_deref(), Some("changed@example.com"));
    assert_eq!(
        effective_names(&db, "team").await,
        ["user0000", "user0001"].map(str::to_owned).into()
    );
    let checkpoint = stored_checkpoint(&db).await;
    let marker = checkpoint["marker"].as_str().expect("a marker").to_owned();
    assert!(
        marker.as_str() > "2025",
        "the changes' own time: {checkpoint}"
    );

    // Nothing changed: the two changed entries fall within the margin and are read
    // again; nothing changes.
    let third = sync_directory(&db, connector.as_ref())
        .await
        .expect("third sync");
    assert_eq!(third.read_mode, Some("delta"), "{third:?}");
    assert_eq!(third.outcome, Outcome::Unchanged, "{third:?}");
    assert_eq!(third.records_read, 2, "{third:?}");

    // Past `full_read_every` (the stored full read a day and a second ago): full.
    let mut checkpoint = stored_checkpoint(&db).await;
    let full_at = checkpoint["full_at"].as_u64().expect("full_at");
    checkpoint["full_at"] = (full_at - 86_401).into();
    {
        let mut conn = db.pool().acquire().await.expect("connection");
        let mut state = idsync::store::mirror::load_state(&mut conn, "dir")
            .await
            .expect("state");
        state.checkpoint = Some(checkpoint.to_string());
        idsync::store::mirror::save_state(&mut conn, "dir", &state)
            .await
            .expect("save");
    }
    let fourth = sync_directory(&db, connector.as_ref())
        .await
        .expect("fourth sync");
    assert_eq!(fourth.read_mode, Some("full"), "{fourth:?}");
    assert_eq!(fourth.outcome, Outcome::Unchanged, "{fourth:?}");
    assert!(stored_checkpoint(&db).await["full_at"].as_u64() > Some(full_at - 86_401));
}
