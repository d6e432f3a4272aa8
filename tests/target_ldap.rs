//! The LDAP target against a real OpenLDAP (testkit/src/slapd.rs), configured through
//! `idsync.toml` as an admin writes it: a scripted source synced into the server and read
//! back; a second run of the same source writes nothing; a few changes touch only their
//! entries (a rename is a modrdn that keeps the entry, a member leaving is one value
//! deleted); entries idsync did not create are left alone; a run that fails halfway is
//! recorded as failed and the next one converges; deactivated users are locked or moved;
//! a dry run writes nothing. The engine's own state is SQLite, and PostgreSQL where
//! configured.
//!
//! Each test skips (and says why) where slapd is not installed.

use std::collections::BTreeMap;

use idsync::config::{Config, MappingConfig, OnRemove};
use idsync::db::Db;
use idsync::model::{MemberRef, SourceUser};
use idsync::store::runs::{self, Outcome};
use idsync::sync::{self, NoProgress, RunOptions, RunReport, SyncError};
use idsync::target::TargetKind;
use idsync_testkit::slapd::{
    ROOT_DN, ROOT_PASSWORD, Slapd, WRITER_DN, WRITER_PASSWORD, target_ldif,
};
use ldap3::{LdapConnAsync, Scope, SearchEntry};

use crate::on_both_backends;
use crate::support::TestDb;
use crate::support::scripted::{Scripted, group, user};

const PEOPLE: &str = "ou=people,ou=apps,dc=example,dc=com";
const GROUPS: &str = "ou=groups,ou=apps,dc=example,dc=com";
const DISABLED: &str = "ou=disabled,ou=apps,dc=example,dc=com";

/// The server with the target's subtree and `ldif`, or `None` (the reason printed).
fn start(ldif: &str) -> Option<Slapd> {
    if let Some(why) = Slapd::unavailable() {
        eprintln!("skipped: {why}");
        return None;
    }
    let ldif = format!("{}\n{ldif}", target_ldif());
    Some(Slapd::start(&ldif).unwrap_or_else(|e| panic!("slapd: {e}")))
}

/// The target as `idsync.toml` configures it; `extra` is more of `[target.ldap]`.
fn target(slapd: &Slapd, extra: &str) -> TargetKind {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for sub in ["connectors", "mappings"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    std::fs::write(root.join("writer-password"), WRITER_PASSWORD).expect("write");
    let toml = format!(
        "[target]\nkind = \"ldap\"\n[target.ldap]\nurl = \"{}\"\nallow_insecure_ldap = true\n\
         bind_dn = \"{WRITER_DN}\"\nbind_password = {{ file = \"writer-password\" }}\n\
         users_dn = \"{PEOPLE}\"\ngroups_dn = \"{GROUPS}\"\n{extra}\n",
        slapd.url()
    );
    std::fs::write(root.join("idsync.toml"), toml).expect("write");
    let config = Config::load(&root.join("idsync.toml")).unwrap_or_else(|e| panic!("{e}"));
    config.engine.target
}

fn mapping() -> MappingConfig {
    MappingConfig::pass_through("default", OnRemove::Disable, 500, 50.0)
}

async fn run(
    db: &Db,
    target: &TargetKind,
    source: &Scripted,
    options: RunOptions,
) -> Result<RunReport, SyncError> {
    let directory = target.directory();
    sync::sync_to(
        db,
        &*directory,
        "cloud",
        &mapping(),
        source,
        options,
        &NoProgress,
    )
    .await
}

/// An entry as the rootdn reads it, with the operational attributes that tell writes
/// apart (`entryCSN` changes with every write, `entryUUID` never).
#[derive(Debug, Clone)]
struct Read {
    attrs: BTreeMap<String, Vec<String>>,
}

impl Read {
    fn one(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }
    fn all(&self, name: &str) -> Vec<String> {
        let mut values = self.attrs.get(name).cloned().unwrap_or_default();
        values.sort();
        values
    }
}

/// Every entry directly under `container`, by lower-case RDN.
async fn read(slapd: &Slapd, container: &str) -> BTreeMap<String, Read> {
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.expect("connect");
    ldap3::drive!(conn);
    ldap.simple_bind(ROOT_DN, ROOT_PASSWORD)
        .await
        .and_then(|r| r.success())
        .expect("bind");
    let (entries, _) = ldap
        .search(
            container,
            Scope::OneLevel,
            "(objectClass=*)",
            vec![
                "*",
                "entryCSN",
                "entryUUID",
                "creatorsName",
                "pwdAccountLockedTime",
            ],
        )
        .await
        .and_then(|r| r.success())
        .expect("search");
    let _ = ldap.unbind().await;
    entries
        .into_iter()
        .map(|e| {
            let entry = SearchEntry::construct(e);
            let rdn = entry.dn.split(',').next().unwrap_or("").to_lowercase();
            (
                rdn,
                Read {
                    attrs: entry.attrs.into_iter().collect(),
                },
            )
        })
        .collect()
}

/// Which entries' `entryCSN` differ between two reads (and which appeared or went).
fn written(before: &BTreeMap<String, Read>, after: &BTreeMap<String, Read>) -> Vec<String> {
    let mut keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            before.get(k).map(|r| r.one("entryCSN")) != after.get(k).map(|r| r.one("entryCSN"))
        })
        .collect()
}

fn people(users: &[(&str, &str)]) -> Vec<SourceUser> {
    users.iter().map(|(id, name)| user(id, name)).collect()
}

/// The users and two groups: Staff (with `staff`) and Everyone (Staff nested).
fn source_of(users: Vec<SourceUser>, staff: &[&str]) -> Scripted {
    let members = staff.iter().map(|id| MemberRef::user(*id)).collect();
    Scripted::full(
        users,
        vec![
            group("g-staff", "Staff", members),
            group("g-all", "Everyone", vec![MemberRef::group("g-staff")]),
        ],
    )
}

fn source(users: &[(&str, &str)], staff: &[&str]) -> Scripted {
    source_of(people(users), staff)
}

const USERS: &[(&str, &str)] = &[("u1", "ann"), ("u2", "bob"), ("u3", "cat"), ("u4", "dan")];

async fn round_trip_writes_only_what_changed(db: TestDb) {
    let Some(slapd) = start("") else { return };
    let target = target(&slapd, "");
    let first = source(USERS, &["u1", "u2", "u3", "u4"]);
    let report = run(&db.db, &target, &first, RunOptions::default())
        .await
        .expect("the first run succeeds");
    assert_eq!(report.outcome, Outcome::Succeeded);

    let entries = read(&slapd, PEOPLE).await;
    assert_eq!(
        entries.keys().cloned().collect::<Vec<_>>(),
        ["uid=ann", "uid=bob", "uid=cat", "uid=dan"]
    );
    let ann = &entries["uid=ann"];
    assert_eq!(ann.one("mail"), "ann");
    assert_eq!(ann.one("cn"), "Given u1 Family u1");
    assert_eq!(ann.one("sn"), "Family u1");
    assert_eq!(ann.all("objectClass").len(), 4);
    assert_eq!(ann.one("creatorsName").to_lowercase(), WRITER_DN);
    let groups = read(&slapd, GROUPS).await;
    assert_eq!(
        groups["cn=staff"].all("member"),
        ["uid=ann", "uid=bob", "uid=cat", "uid=dan"].map(|u| format!("{u},{PEOPLE}"))
    );
    assert_eq!(
        groups["cn=everyone"].all("member"),
        [format!("cn=Staff,{GROUPS}")],
        "nesting is kept as the mapping keeps it"
    );

    // The same source again: no entry is written.
    run(&db.db, &target, &first, RunOptions::default())
        .await
        .expect("the second run succeeds");
    assert_eq!(
        written(&entries, &read(&slapd, PEOPLE).await),
        Vec::<String>::new()
    );
    assert_eq!(
        written(&groups, &read(&slapd, GROUPS).await),
        Vec::<String>::new()
    );

    // ann's mail changes, bob is renamed rob, cat leaves the source, dan leaves Staff.
    let mut users = people(&[("u1", "ann"), ("u2", "rob"), ("u4", "dan")]);
    users[0].emails[0].value = "ann@example.com".into();
    let changed = source_of(users, &["u1", "u2"]);
    run(&db.db, &target, &changed, RunOptions::default())
        .await
        .expect("the third run succeeds");
    let people_after = read(&slapd, PEOPLE).await;
    assert_eq!(
        written(&entries, &people_after),
        ["uid=ann", "uid=bob", "uid=cat", "uid=rob"],
        "dan's entry is not written"
    );
    assert_eq!(people_after["uid=ann"].one("mail"), "ann@example.com");
    assert_eq!(
        people_after["uid=rob"].one("entryUUID"),
        entries["uid=bob"].one("entryUUID"),
        "a rename is a modrdn of the same entry"
    );
    assert_eq!(people_after["uid=rob"].all("uid"), ["rob"]);
    assert_eq!(
        people_after["uid=cat"].one("pwdAccountLockedTime"),
        "000001010000Z",
        "a removed user is locked (the default)"
    );
    let groups_after = read(&slapd, GROUPS).await;
    assert_eq!(written(&groups, &groups_after), ["cn=staff"]);
    assert_eq!(
        groups_after["cn=staff"].all("member"),
        [format!("uid=ann,{PEOPLE}"), format!("uid=rob,{PEOPLE}")]
    );
}
on_both_backends!(round_trip_writes_only_what_changed);

#[tokio::test]
async fn entries_idsync_did_not_create_are_left_alone() {
    let theirs = format!(
        "dn: uid=bob,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob Theirs\nsn: Theirs\n\
         mail: bob@theirs.example\n\n\
         dn: uid=zed,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: zed\ncn: Zed\nsn: Zed\n"
    );
    let Some(slapd) = start(&theirs) else { return };
    let db = crate::support::sqlite().await;
    let target = target(&slapd, "");
    let before = read(&slapd, PEOPLE).await;
    let report = run(
        &db.db,
        &target,
        &source(USERS, &["u2"]),
        RunOptions::default(),
    )
    .await
    .expect("the run succeeds");
    assert_eq!(report.outcome, Outcome::Succeeded);
    let after = read(&slapd, PEOPLE).await;
    assert_eq!(after["uid=bob"].one("mail"), "bob@theirs.example");
    assert_eq!(
        after["uid=bob"].one("entryCSN"),
        before["uid=bob"].one("entryCSN")
    );
    assert_eq!(
        after["uid=zed"].one("entryCSN"),
        before["uid=zed"].one("entryCSN")
    );
    assert_eq!(
        after["uid=ann"].one("mail"),
        "ann",
        "the others are written"
    );
}

#[tokio::test]
async fn a_run_failing_halfway_is_recorded_and_the_next_run_converges() {
    let Some(slapd) = start("") else { return };
    let db = crate::support::sqlite().await;
    let target = target(&slapd, "writes_in_flight = 1");
    // `mail` is an IA5 string: the server refuses a non-ASCII address.
    let mut users = people(USERS);
    users[2].emails[0].value = "cät@example.com".into();
    let bad = source_of(users, &["u1"]);
    let error = run(&db.db, &target, &bad, RunOptions::default())
        .await
        .expect_err("the server refuses cat's entry");
    let message = error.to_string();
    assert!(message.contains("2 of 6 writes were applied"), "{message}");
    assert!(message.contains("adding `uid=cat"), "{message}");
    assert!(message.contains("LDAP has no transactions"), "{message}");
    let runs = runs::recent_runs(db.db.pool(), Some("cloud"), 1)
        .await
        .expect("runs");
    assert_eq!(runs[0].outcome, Outcome::Failed);
    assert!(
        runs[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("2 of 6 writes")),
        "{:?}",
        runs[0].message
    );
    assert_eq!(
        read(&slapd, PEOPLE)
            .await
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["uid=ann", "uid=bob"],
        "what was written stays"
    );

    let fixed = source(USERS, &["u1"]);
    let report = run(&db.db, &target, &fixed, RunOptions::default())
        .await
        .expect("the next run succeeds");
    assert_eq!(report.outcome, Outcome::Succeeded);
    let people = read(&slapd, PEOPLE).await;
    assert_eq!(
        people.keys().cloned().collect::<Vec<_>>(),
        ["uid=ann", "uid=bob", "uid=cat", "uid=dan"]
    );
    assert_eq!(people["uid=cat"].one("mail"), "cat");
}

#[tokio::test]
async fn deactivated_users_move_to_the_disabled_container_and_back() {
    let Some(slapd) = start("") else { return };
    let db = crate::support::sqlite().await;
    let extra = format!("on_deactivate = \"move\"\ndisabled_dn = \"{DISABLED}\"");
    let target = target(&slapd, &extra);
    run(
        &db.db,
        &target,
        &source(USERS, &["u1", "u3"]),
        RunOptions::default(),
    )
    .await
    .expect("first run");
    let uuid = read(&slapd, PEOPLE).await["uid=cat"]
        .one("entryUUID")
        .to_owned();
    let mut users = people(USERS);
    users[2].active = false;
    let inactive = source_of(users, &["u1", "u3"]);
    run(&db.db, &target, &inactive, RunOptions::default())
        .await
        .expect("second run");
    let disabled = read(&slapd, DISABLED).await;
    assert_eq!(
        disabled["uid=cat"].one("entryUUID"),
        uuid,
        "moved, not re-created"
    );
    assert!(!read(&slapd, PEOPLE).await.contains_key("uid=cat"));
    assert_eq!(
        read(&slapd, GROUPS).await["cn=staff"].all("member"),
        [format!("uid=ann,{PEOPLE}"), format!("uid=cat,{DISABLED}")],
        "the member value follows the move"
    );
    run(
        &db.db,
        &target,
        &source(USERS, &["u1", "u3"]),
        RunOptions::default(),
    )
    .await
    .expect("third run");
    assert_eq!(read(&slapd, PEOPLE).await["uid=cat"].one("entryUUID"), uuid);
    assert!(read(&slapd, DISABLED).await.is_empty());
}

#[tokio::test]
async fn a_dry_run_writes_nothing_to_the_server() {
    let Some(slapd) = start("") else { return };
    let db = crate::support::sqlite().await;
    let target = target(&slapd, "");
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let report = run(&db.db, &target, &source(USERS, &["u1"]), options)
        .await
        .expect("dry run");
    assert_eq!(report.counts.users_created, 4);
    assert!(read(&slapd, PEOPLE).await.is_empty());
    assert!(read(&slapd, GROUPS).await.is_empty());
}

#[tokio::test]
async fn a_refused_bind_fails_the_run_with_a_clear_message() {
    let Some(slapd) = start("") else { return };
    let db = crate::support::sqlite().await;
    let TargetKind::Ldap(mut settings) = target(&slapd, "") else {
        panic!("an LDAP target")
    };
    settings.bind_password = idsync::spec::SecretString::new("wrong");
    let error = run(
        &db.db,
        &TargetKind::Ldap(settings),
        &source(USERS, &[]),
        RunOptions::default(),
    )
    .await
    .expect_err("the bind is refused");
    let message = error.to_string();
    assert!(message.contains("invalid credentials"), "{message}");
    assert!(
        !message.contains("wrong"),
        "the password is not echoed: {message}"
    );
    assert_eq!(
        crate::support::target_users(&db.db).await,
        vec![],
        "nothing applied"
    );
}

/// SCIM writes into an LDAP target touch only their entries: an entry changed behind
/// idsync's back stays as it is until a full run repairs it.
#[tokio::test]
async fn scim_writes_touch_only_their_entries_and_a_full_run_repairs_drift() {
    use crate::support::scim::{ScimHarness, tenant};
    use serde_json::json;

    let Some(slapd) = start("") else { return };
    let db = crate::support::sqlite().await;
    let kind = target(&slapd, "");
    let acme = tenant("acme", OnRemove::Disable).with_target(kind.clone());
    let scim = ScimHarness::start(&db.db, vec![acme]).await;
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cat"] {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "name": {"givenName": name, "familyName": "Lee"},
            "emails": [{"value": format!("{name}@example.com"), "primary": true}],
            "active": true,
        });
        let answer = scim.call("acme", "POST", "/Users", Some(body)).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        ids.push(answer.body["id"].as_str().expect("id").to_owned());
    }
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Staff",
        "members": [{"value": ids[0]}, {"value": ids[1]}],
    });
    let answer = scim.call("acme", "POST", "/Groups", Some(body)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let group = answer.body["id"].as_str().expect("id").to_owned();
    let people = read(&slapd, PEOPLE).await;
    assert_eq!(people.len(), 3);
    assert_eq!(
        read(&slapd, GROUPS).await["cn=staff"].all("member"),
        [format!("uid=ann,{PEOPLE}"), format!("uid=bob,{PEOPLE}")]
    );

    // cat's mail is changed behind idsync's back.
    slapd
        .modify(&format!(
            "dn: uid=cat,{PEOPLE}\nchangetype: modify\nreplace: mail\nmail: drift@example.com\n"
        ))
        .expect("modify");
    let drifted = read(&slapd, PEOPLE).await;
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.familyName", "value": "Smith"}],
    });
    let answer = scim
        .call("acme", "PATCH", &format!("/Users/{}", ids[0]), Some(patch))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let after = read(&slapd, PEOPLE).await;
    assert_eq!(written(&drifted, &after), ["uid=ann"]);
    assert_eq!(after["uid=ann"].one("sn"), "Smith");
    assert_eq!(after["uid=cat"].one("mail"), "drift@example.com");

    let groups = read(&slapd, GROUPS).await;
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}],
    });
    let answer = scim
        .call("acme", "PATCH", &format!("/Groups/{group}"), Some(patch))
        .await;
    assert!(matches!(answer.status, 200 | 204), "{}", answer.body);
    assert_eq!(
        written(&after, &read(&slapd, PEOPLE).await),
        Vec::<String>::new()
    );
    let groups_after = read(&slapd, GROUPS).await;
    assert_eq!(written(&groups, &groups_after), ["cn=staff"]);
    assert_eq!(
        groups_after["cn=staff"].all("member"),
        [format!("uid=ann,{PEOPLE}")]
    );
    scim.stop().await;

    // A full run (a reconcile of the tenant) compares every entry and repairs cat's.
    let directory = kind.directory();
    let mapping = MappingConfig::pass_through("default", OnRemove::Disable, 1000, 100.0);
    let options = RunOptions {
        inactive_is_removal: true,
        ..RunOptions::default()
    };
    sync::reconcile_to(&db.db, &*directory, "acme", &mapping, options, &NoProgress)
        .await
        .expect("reconcile");
    let repaired = read(&slapd, PEOPLE).await;
    assert_eq!(repaired["uid=cat"].one("mail"), "cat@example.com");
}

/// `check --connect` for the target: the bind and each container.
#[tokio::test]
async fn check_connect_reports_the_bind_and_each_container() {
    let Some(slapd) = start("") else { return };
    let TargetKind::Ldap(mut settings) = target(&slapd, "") else {
        panic!("an LDAP target")
    };
    let checks = idsync::target::ldap::diagnose(&settings).await;
    let lines: Vec<String> = checks
        .iter()
        .map(|c| format!("{}: {} — {}", c.check, c.ok, c.detail))
        .collect();
    assert_eq!(
        lines,
        [
            format!("bind: true — bound to {} as {WRITER_DN}", slapd.url()),
            format!("users_dn: true — {PEOPLE} exists and is readable (no entries yet)"),
            format!("groups_dn: true — {GROUPS} exists and is readable (no entries yet)"),
        ]
    );
    settings.groups_dn = "ou=missing,ou=apps,dc=example,dc=com".into();
    let checks = idsync::target::ldap::diagnose(&settings).await;
    assert!(!checks[2].ok);
    assert!(
        checks[2]
            .detail
            .contains("the container `ou=missing,ou=apps,dc=example,dc=com` does not exist"),
        "{}",
        checks[2].detail
    );
}

/// `group_class = "groupOfUniqueNames"`, `on_deactivate = "delete"` and
/// `[target.ldap.attributes]`: the entry of an inactive user is deleted (and its member
/// value with it) and comes back when the user is active again; a mapped attribute is
/// written from the target user's attributes.
#[tokio::test]
async fn unique_names_delete_on_deactivation_and_mapped_attributes() {
    let Some(slapd) = start("") else { return };
    let db = crate::support::sqlite().await;
    let extra = "group_class = \"groupOfUniqueNames\"\non_deactivate = \"delete\"\n\
                 [target.ldap.attributes]\nemployeeNumber = \"employee_id\"";
    let target = target(&slapd, extra);
    let mut users = people(USERS);
    for (n, user) in users.iter_mut().enumerate() {
        user.attributes
            .insert("employee_id".into(), serde_json::json!(1000 + n));
    }
    run(
        &db.db,
        &target,
        &source_of(users.clone(), &["u1", "u3"]),
        RunOptions::default(),
    )
    .await
    .expect("first run");
    let entries = read(&slapd, PEOPLE).await;
    assert_eq!(entries["uid=ann"].one("employeeNumber"), "1000");
    assert_eq!(entries["uid=cat"].one("employeeNumber"), "1002");
    let groups = read(&slapd, GROUPS).await;
    assert!(
        groups["cn=staff"]
            .all("objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case("groupOfUniqueNames")),
        "{:?}",
        groups["cn=staff"].all("objectClass")
    );
    assert_eq!(
        groups["cn=staff"].all("uniqueMember"),
        [format!("uid=ann,{PEOPLE}"), format!("uid=cat,{PEOPLE}")]
    );

    users[2].active = false;
    run(
        &db.db,
        &target,
        &source_of(users.clone(), &["u1", "u3"]),
        RunOptions::default(),
    )
    .await
    .expect("second run");
    assert!(!read(&slapd, PEOPLE).await.contains_key("uid=cat"));
    assert_eq!(
        read(&slapd, GROUPS).await["cn=staff"].all("uniqueMember"),
        [format!("uid=ann,{PEOPLE}")]
    );

    users[2].active = true;
    run(
        &db.db,
        &target,
        &source_of(users, &["u1", "u3"]),
        RunOptions::default(),
    )
    .await
    .expect("third run");
    assert_eq!(
        read(&slapd, PEOPLE).await["uid=cat"].one("employeeNumber"),
        "1002"
    );
    // cat is a member again: the group follows the user's entry coming back (a run over
    // changed users only, which reads the groups naming a record whose DN it changed).
    assert_eq!(
        read(&slapd, GROUPS).await["cn=staff"].all("uniqueMember"),
        [format!("uid=ann,{PEOPLE}"), format!("uid=cat,{PEOPLE}")]
    );
}
