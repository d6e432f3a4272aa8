//! The ldap connector's `active_directory` preset against a real Samba AD DC
//! (testkit/src/samba.rs), configured through a connector file and synced into SQLite:
//! objectGUID ids equal to what Samba itself prints, disabled accounts
//! (userAccountControl ACCOUNTDISABLE, set by the test or by Samba) inactive, a computer
//! left out by `objectCategory=person`, nested groups, 1,600 users paged past 1,000 and a
//! group of 1,600 members read whole, a wrong password refused with AD's reason (data
//! 52e), a simple bind over plain ldap:// refused by Samba (`ldap server require strong
//! auth`) with the StartTLS hint, StartTLS and ldaps with the test CA, an incremental run
//! by highestCommittedUSN and invocationId, and the `idsync check --connect` lines (the
//! Default Query Policy's limits read by an ordinary user).
//!
//! Samba (4.17) does not range `member`: asked for `member` (or `*`), it returns all 1,600
//! values in one attribute, and it serves `member;range=<low>-<high>` only when a client
//! asks for it, as asked (`member;range=0-*` gives all 1,600), never cutting at its
//! MaxValRange of 1,500. So the connector's ranged retrieval (`member;range=0-1499` coming
//! back, then `member;range=1500-*` asked for) is not exercised here; it is tested over an
//! in-memory directory (src/connectors/ldap/tests.rs). Nor does Samba hold paged searches
//! to MaxPageSize (1,000; a page of 1,500 comes back whole) or plain searches to a size
//! limit: what the paging test shows is that the connector follows Samba's cookies to the
//! last page.
//!
//! One DC (provisioned, loaded and started in some 8 s here) serves every test; each test reads its own
//! organisational units, and the one that changes entries changes only its own. Each test
//! skips (and says why) where the Samba packages are missing, the process is not root, or
//! Samba's fixed ports (389, 636, 3268, 3269) are taken.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use idsync::config::Config;
use idsync::connectors::PullConnector;
use idsync::db::Db;
use idsync::store::runs::Outcome;
use idsync::target::query;

use crate::support::{effective_names, sync_directory, target_users};
use idsync_testkit::samba::{BASE_DN, DISABLED, ENABLED, READER_DN, READER_PASSWORD, SambaDc};

/// Users in the bulk OU and members of its one group: more than a page of 1,000 and
/// more than MaxValRange (1,500).
const BULK: usize = 1_600;

/// What the shared DC came to.
enum Shared {
    Running(SambaDc),
    /// Samba cannot run here (the reason).
    Skipped(String),
    /// Samba should have started and did not.
    Failed(String),
}

static DC: OnceLock<Shared> = OnceLock::new();

/// The shared DC, or `None` (the reason printed) where Samba cannot run.
fn dc() -> Option<&'static SambaDc> {
    let shared = DC.get_or_init(|| {
        if let Some(why) = SambaDc::unavailable() {
            return Shared::Skipped(why);
        }
        match SambaDc::start(&directory_ldif()) {
            Ok(dc) => {
                eprintln!("samba DC ready: {:?}", dc.took);
                Shared::Running(dc)
            }
            Err(why) => Shared::Failed(why),
        }
    });
    match shared {
        Shared::Running(dc) => Some(dc),
        Shared::Skipped(why) => {
            eprintln!("skipped: {why}");
            None
        }
        Shared::Failed(why) => panic!("samba: {why}"),
    }
}

fn ou(name: &str) -> String {
    format!("OU={name},{BASE_DN}")
}

fn ou_ldif(name: &str) -> String {
    format!(
        "dn: {}\nobjectClass: organizationalUnit\nou: {name}\n\n",
        ou(name)
    )
}

/// A user below `ou` with `userAccountControl` `uac` (none: Samba sets it).
fn user_ldif(name: &str, ou_name: &str, uac: Option<u32>) -> String {
    let uac = uac.map_or(String::new(), |uac| format!("userAccountControl: {uac}\n"));
    format!(
        "dn: CN={name},{}\nobjectClass: user\nsAMAccountName: {name}\n{uac}\
         givenName: {name}\nsn: Example\ndisplayName: {name} Example\n\
         mail: {name}@idsync.test\n\n",
        ou(ou_name)
    )
}

/// A global security group below `ou` with `members` (DNs).
fn group_ldif(name: &str, ou_name: &str, members: &[String]) -> String {
    let members: String = members.iter().map(|m| format!("member: {m}\n")).collect();
    format!(
        "dn: CN={name},{}\nobjectClass: group\nsAMAccountName: {name}\n\
         description: the {name} group\n{members}\n",
        ou(ou_name)
    )
}

fn user_dn(name: &str, ou_name: &str) -> String {
    format!("CN={name},{}", ou(ou_name))
}

/// Every test's entries, each test in its own OUs:
/// * `staff`, `staff-groups`: ann, bob (disabled), carol, erin (disabled by Samba), a
///   computer; `platform` (carol) inside `engineering` (ann).
/// * `bulk`, `bulk-groups`: [`BULK`] users, all in `everyone`.
/// * `delta`, `delta-groups`: five users and `team`, changed by the incremental test.
fn directory_ldif() -> String {
    let mut ldif = String::new();
    for name in [
        "staff",
        "staff-groups",
        "bulk",
        "bulk-groups",
        "delta",
        "delta-groups",
    ] {
        ldif.push_str(&ou_ldif(name));
    }
    ldif.push_str(&user_ldif("ann", "staff", Some(ENABLED)));
    ldif.push_str(&user_ldif("bob", "staff", Some(DISABLED)));
    ldif.push_str(&user_ldif("carol", "staff", Some(ENABLED)));
    // Added without a password or userAccountControl: Samba disables the account.
    ldif.push_str(&user_ldif("erin", "staff", None));
    // objectClass user too, but objectCategory computer: not a person.
    ldif.push_str(&format!(
        "dn: CN=WS01,{}\nobjectClass: computer\nsAMAccountName: WS01$\n\
         userAccountControl: 4096\n\n",
        ou("staff")
    ));
    ldif.push_str(&group_ldif(
        "platform",
        "staff-groups",
        &[user_dn("carol", "staff")],
    ));
    ldif.push_str(&group_ldif(
        "engineering",
        "staff-groups",
        &[
            user_dn("ann", "staff"),
            format!("CN=platform,{}", ou("staff-groups")),
        ],
    ));
    let bulk: Vec<String> = (0..BULK).map(|n| format!("user{n:04}")).collect();
    for name in &bulk {
        ldif.push_str(&user_ldif(name, "bulk", Some(ENABLED)));
    }
    let members: Vec<String> = bulk.iter().map(|n| user_dn(n, "bulk")).collect();
    ldif.push_str(&group_ldif("everyone", "bulk-groups", &members));
    for n in 0..5 {
        ldif.push_str(&user_ldif(&format!("d{n}"), "delta", Some(ENABLED)));
    }
    ldif.push_str(&group_ldif(
        "team",
        "delta-groups",
        &[user_dn("d0", "delta"), user_dn("d1", "delta")],
    ));
    ldif
}

/// A configuration tree (idsync.toml with an SQLite target, mapping `default`, and
/// connector `dir` reading users below `OU=<area>` and groups below `OU=<area>-groups`);
/// `table` is the rest of its `[ldap]` table after the URL, account and preset.
fn config_tree(url: &str, area: &str, table: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("connectors")).expect("mkdir");
    std::fs::create_dir_all(root.join("mappings")).expect("mkdir");
    std::fs::write(
        root.join("idsync.toml"),
        "[target]\ndatabase_url = \"sqlite://target.db\"\n",
    )
    .expect("write");
    std::fs::write(root.join("mappings/default.toml"), "").expect("write");
    std::fs::write(root.join("password"), READER_PASSWORD).expect("write");
    let file = format!(
        "kind = \"ldap\"\nmapping = \"default\"\n[ldap]\nurl = \"{url}\"\n\
         bind_dn = \"{READER_DN}\"\nbind_password = {{ file = \"password\" }}\n\
         preset = \"active_directory\"\n{table}\n\
         [ldap.users]\nbase_dn = \"{}\"\n\
         [ldap.groups]\nbase_dn = \"{}\"\n",
        ou(area),
        ou(&format!("{area}-groups"))
    );
    std::fs::write(root.join("connectors/dir.toml"), file).expect("write");
    dir
}

/// The connector of [`config_tree`], built as `idsync` builds it.
fn connector(url: &str, area: &str, table: &str) -> Box<dyn PullConnector> {
    let tree = config_tree(url, area, table);
    let config = Config::load(&tree.path().join("idsync.toml")).unwrap_or_else(|e| panic!("{e}"));
    config.connectors["dir"].build().expect("connector")
}

/// [`connector`] binding with `password` instead of the reader's.
fn connector_with_password(
    url: &str,
    area: &str,
    table: &str,
    password: &str,
) -> Box<dyn PullConnector> {
    let tree = config_tree(url, area, table);
    std::fs::write(tree.path().join("password"), password).expect("write");
    let config = Config::load(&tree.path().join("idsync.toml")).unwrap_or_else(|e| panic!("{e}"));
    config.connectors["dir"].build().expect("connector")
}

/// Over ldaps with the test CA.
fn ldaps(dc: &SambaDc, area: &str, table: &str) -> Box<dyn PullConnector> {
    connector(&dc.ldaps_url(), area, &with_ca(dc, table))
}

/// `table` with the test CA as `ca_file`.
fn with_ca(dc: &SambaDc, table: &str) -> String {
    format!("ca_file = \"{}\"\n{table}", dc.ca_file().display())
}

/// Target user name -> external id.
async fn user_ids(db: &Db) -> BTreeMap<String, String> {
    query::list_users(db.pool(), None, 100_000, 0)
        .await
        .expect("users")
        .into_iter()
        .map(|u| (u.user_name, u.external_id))
        .collect()
}

/// Target group name -> external id.
async fn group_ids(db: &Db) -> BTreeMap<String, String> {
    query::list_groups(db.pool(), None, 100_000, 0)
        .await
        .expect("groups")
        .into_iter()
        .map(|g| (g.name, g.external_id))
        .collect()
}

/// `sAMAccountName` -> objectGUID as Samba prints it, of every entry `filter` finds
/// below `base`.
fn samba_guids(dc: &SambaDc, base: &str, filter: &str) -> BTreeMap<String, String> {
    let names: BTreeMap<String, String> = dc
        .ldb_values(base, filter, "sAMAccountName")
        .expect("ldbsearch")
        .into_iter()
        .collect();
    dc.ldb_values(base, filter, "objectGUID")
        .expect("ldbsearch")
        .into_iter()
        .map(|(dn, guid)| (names[&dn].clone(), guid))
        .collect()
}

fn strings<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.map(str::to_owned).into()
}

#[tokio::test]
async fn guids_disabled_accounts_computers_and_nested_groups() {
    let Some(dc) = dc() else { return };
    let db = crate::support::sqlite().await;
    let report = sync_directory(&db, ldaps(dc, "staff", "").as_ref())
        .await
        .expect("sync");
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");

    // bob's userAccountControl has ACCOUNTDISABLE, and so has erin's, set by Samba
    // when the account was added without one; the computer (objectClass user,
    // objectCategory computer) is not read.
    let uac: BTreeMap<String, String> = dc
        .ldb_values(
            &ou("staff"),
            "(objectCategory=person)",
            "userAccountControl",
        )
        .expect("ldbsearch")
        .into_iter()
        .collect();
    let erin = uac[&user_dn("erin", "staff")].parse::<u32>().expect("uac");
    assert_eq!(erin & 0x2, 0x2, "{uac:?}");
    let users: BTreeSet<(String, bool)> = target_users(&db).await.into_iter().collect();
    assert_eq!(
        users,
        BTreeSet::from([
            ("ann".to_owned(), true),
            ("bob".to_owned(), false),
            ("carol".to_owned(), true),
            ("erin".to_owned(), false),
        ])
    );

    // The ids are the objectGUIDs as Samba renders them (lower case, no braces).
    let samba_users = samba_guids(dc, &ou("staff"), "(objectCategory=person)");
    assert_eq!(samba_users.len(), 4);
    assert_eq!(user_ids(&db).await, samba_users);
    let samba_groups = samba_guids(dc, &ou("staff-groups"), "(objectClass=group)");
    assert_eq!(group_ids(&db).await, samba_groups);
    assert!(
        samba_groups
            .values()
            .all(|g| g.len() == 36 && *g == g.to_lowercase()),
        "{samba_groups:?}"
    );

    // The user record keeps the entry's text attributes and the rendered objectGUID.
    let ann = query::find_user(db.pool(), "ann")
        .await
        .expect("find")
        .expect("ann");
    assert_eq!(ann.email.as_deref(), Some("ann@idsync.test"));
    assert_eq!(ann.display_name.as_deref(), Some("ann Example"));
    assert_eq!(
        ann.attributes["objectGUID"].as_str(),
        Some(samba_users["ann"].as_str()),
        "{}",
        ann.attributes
    );

    assert_eq!(effective_names(&db, "platform").await, strings(["carol"]));
    assert_eq!(
        effective_names(&db, "engineering").await,
        strings(["ann", "carol"])
    );
}

#[tokio::test]
async fn paging_past_a_thousand_users_and_a_group_of_1600_members() {
    let Some(dc) = dc() else { return };
    let db = crate::support::sqlite().await;
    let report = sync_directory(&db, ldaps(dc, "bulk", "page_size = 1000").as_ref())
        .await
        .expect("sync");
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.counts.users_created, BULK as u64, "{report:?}");
    assert_eq!(report.counts.groups_created, 1);
    assert_eq!(
        user_ids(&db).await,
        samba_guids(dc, &ou("bulk"), "(objectClass=user)")
    );
    assert!(target_users(&db).await.iter().all(|(_, active)| *active));
    assert_eq!(effective_names(&db, "everyone").await.len(), BULK);

    // Smaller pages read the same directory: nothing changes.
    let again = sync_directory(&db, ldaps(dc, "bulk", "page_size = 300").as_ref())
        .await
        .expect("second sync");
    assert_eq!(again.outcome, Outcome::Unchanged, "{again:?}");
    assert_eq!(effective_names(&db, "everyone").await.len(), BULK);
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_samba_s_ad_style_reason() {
    let Some(dc) = dc() else { return };
    let wrong =
        connector_with_password(&dc.ldaps_url(), "staff", &with_ca(dc, ""), "Wrong-Secret-1");
    let db = crate::support::sqlite().await;
    let message = sync_directory(&db, wrong.as_ref())
        .await
        .expect_err("refused")
        .to_string();
    // Samba answers as AD does: data 52e is "wrong password" (Microsoft's LDAP error
    // codes for AcceptSecurityContext).
    assert!(
        message.contains(&format!(
            "ldap connector: binding to {} failed: bind as `{READER_DN}` refused: invalid \
             credentials (invalidCredentials): check `bind_dn` and `bind_password`; server \
             says: 80090308: LdapErr: DSID-",
            dc.ldaps_url()
        )) && message.contains("AcceptSecurityContext error, data 52e"),
        "{message}"
    );
    assert!(target_users(&db).await.is_empty());
}

#[tokio::test]
async fn a_simple_bind_over_plain_ldap_is_refused_and_starttls_works() {
    let Some(dc) = dc() else { return };
    let plain = connector(&dc.url(), "staff", "allow_insecure_ldap = true");
    let db = crate::support::sqlite().await;
    let message = sync_directory(&db, plain.as_ref())
        .await
        .expect_err("Samba requires strong auth")
        .to_string();
    assert!(
        message.contains(&format!(
            "ldap connector: binding to {} failed: the server requires a protected \
             connection for a simple bind (strongerAuthRequired): use StartTLS \
             (`starttls = true`) or an ldaps:// URL",
            dc.url()
        )),
        "{message}"
    );
    assert!(target_users(&db).await.is_empty());
    let checks = plain.diagnose().await;
    let last = checks.last().expect("a step");
    assert_eq!((last.check, last.ok), ("bind", false), "{checks:?}");

    let ca = dc.ca_file();
    let starttls = connector(
        &dc.url(),
        "staff",
        &format!("starttls = true\nca_file = \"{}\"", ca.display()),
    );
    let report = sync_directory(&db, starttls.as_ref())
        .await
        .expect("StartTLS");
    assert_eq!(report.counts.users_created, 4, "{report:?}");
}

#[tokio::test]
async fn an_incremental_run_reads_what_changed_since_the_usn() {
    let Some(dc) = dc() else { return };
    let connector = ldaps(dc, "delta", "incremental = true");
    let db = crate::support::sqlite().await;
    let first = sync_directory(&db, connector.as_ref())
        .await
        .expect("first sync");
    assert_eq!(first.read_mode, Some("full"), "{first:?}");
    assert_eq!(first.counts.users_created, 5);

    let delta = ou("delta");
    dc.modify(&format!(
        "dn: CN=d1,{delta}\nchangetype: modify\nreplace: userAccountControl\n\
         userAccountControl: {DISABLED}\n\n\
         dn: CN=d2,{delta}\nchangetype: modify\nreplace: mail\nmail: changed@idsync.test\n\n\
         dn: CN=d3,{delta}\nchangetype: delete\n\n\
         dn: CN=team,{}\nchangetype: modify\nadd: member\nmember: CN=d4,{delta}\n\n\
         dn: CN=newcomer,{delta}\nchangetype: add\nobjectClass: user\n\
         sAMAccountName: newcomer\nuserAccountControl: {ENABLED}\nmail: newcomer@idsync.test\n",
        ou("delta-groups")
    ))
    .expect("modify");
    let second = sync_directory(&db, connector.as_ref())
        .await
        .expect("second sync");
    assert_eq!(second.read_mode, Some("delta"), "{second:?}");
    // d1, d2, the newcomer and team; not d0 or d4.
    assert_eq!(second.records_read, 4, "{second:?}");
    let users: BTreeSet<(String, bool)> = target_users(&db).await.into_iter().collect();
    assert_eq!(
        users,
        BTreeSet::from([
            ("d0".to_owned(), true),
            ("d1".to_owned(), false),
            ("d2".to_owned(), true),
            ("d4".to_owned(), true),
            ("newcomer".to_owned(), true),
        ])
    );
    assert_eq!(
        effective_names(&db, "team").await,
        strings(["d0", "d1", "d4"])
    );
    let d2 = query::find_user(db.pool(), "d2")
        .await
        .expect("find")
        .expect("d2");
    assert_eq!(d2.email.as_deref(), Some("changed@idsync.test"));
    assert_eq!(
        user_ids(&db).await,
        samba_guids(dc, &delta, "(objectCategory=person)")
    );

    // Nothing changed: a delta with nothing in it.
    let third = sync_directory(&db, connector.as_ref())
        .await
        .expect("third sync");
    assert_eq!(third.read_mode, Some("delta"));
    assert_eq!(third.outcome, Outcome::Unchanged, "{third:?}");
}

#[test]
fn check_connect_prints_each_step_for_the_ad_preset() {
    let Some(dc) = dc() else { return };
    let tree = config_tree(&dc.ldaps_url(), "staff", &with_ca(dc, ""));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idsync"))
        .arg("--config")
        .arg(tree.path().join("idsync.toml"))
        .args(["check", "--connect"])
        .env_remove("IDSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run idsync");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    // The reader (an ordinary domain user) may read the Default Query Policy.
    let expected = [
        "dir (ldap): connect: ok — ldaps://127.0.0.1 (TLS)".to_owned(),
        format!("dir (ldap): bind: ok — as {READER_DN}"),
        "dir (ldap): paged results: ok — supported; pages of 500".to_owned(),
        "dir (ldap): server limits: ok — MaxPageSize 1000, MaxValRange 1500".to_owned(),
        format!("dir (ldap): users base DN: ok — {}", ou("staff")),
        format!("dir (ldap): groups base DN: ok — {}", ou("staff-groups")),
        "dir (ldap): list users: ok — permitted".to_owned(),
        "dir (ldap): list groups: ok — permitted".to_owned(),
        "dir (ldap): list group members: ok — permitted".to_owned(),
        "dir (ldap): operational attributes: ok — `objectGUID` readable".to_owned(),
        "dir (ldap): mapping sample: ok — every attribute the mapping reads is present in \
         the 4 sampled user(s)"
            .to_owned(),
    ];
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("dir (ldap): "))
        .collect();
    assert_eq!(lines, expected, "{stdout}");
}
