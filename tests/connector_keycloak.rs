//! The Keycloak connector against the fake Keycloak realm (testkit/src/fake_keycloak.rs),
//! through real sync runs into SQLite: reads between full ones come from the realm's
//! admin events and touch only what changed, yet end where a full read does; a realm
//! that saves no admin events, or a server before 26.2 (no times in `dateFrom`), is read
//! in full every time; a deleted group takes its subgroups with it under one event; and a
//! checkpoint is continued only on its own realm and within `full_sync_every`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use idsync::config::{KeycloakSettings, MappingConfig, OnRemove};
use idsync::connectors::keycloak::KeycloakConnector;
use idsync::db::Db;
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions, RunReport};
use idsync::target::query;

use crate::support::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, UserStatus,
};
use crate::support::fake_keycloak::FakeKeycloak;
use crate::support::sqlite;

const CONNECTOR: &str = "idp";

/// Where the fake serves the realm's Admin REST API (its realm is `acme`).
const ADMIN: &str = "/admin/realms/acme";

fn mapping() -> MappingConfig {
    MappingConfig::pass_through("default", OnRemove::Disable, 100_000, 100.0)
}

fn connector(settings: &KeycloakSettings) -> KeycloakConnector {
    KeycloakConnector::new(settings).expect("connector")
}

async fn run(db: &Db, connector: &KeycloakConnector) -> RunReport {
    sync::sync(
        db,
        CONNECTOR,
        &mapping(),
        connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .expect("run succeeds")
}

/// A user of the target: active (and not removed), given name.
type TargetUser = (bool, Option<String>);

/// The target as (user name -> state) and (group name -> direct members, users as
/// `user:name` and groups as `group:name`).
async fn snapshot(
    db: &Db,
) -> (
    BTreeMap<String, TargetUser>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let pool = db.pool();
    let users = query::list_users(pool, Some(CONNECTOR), 1_000_000, 0)
        .await
        .expect("users")
        .into_iter()
        .map(|u| {
            (
                u.user_name,
                (u.active && u.removed_at.is_none(), u.given_name),
            )
        })
        .collect();
    let mut groups = BTreeMap::new();
    for group in query::list_groups(pool, Some(CONNECTOR), 1_000_000, 0)
        .await
        .expect("groups")
    {
        let members = query::direct_members(pool, &group.id)
            .await
            .expect("members")
            .into_iter()
            .map(|m| format!("{}:{}", m.kind, m.name))
            .collect();
        groups.insert(group.name, members);
    }
    (users, groups)
}

/// The names of the target's groups.
async fn group_names(db: &Db) -> BTreeSet<String> {
    query::list_groups(db.pool(), Some(CONNECTOR), 1_000_000, 0)
        .await
        .expect("groups")
        .into_iter()
        .map(|g| g.name)
        .collect()
}

/// The given name the target holds for `user_name`.
async fn given_name(db: &Db, user_name: &str) -> Option<String> {
    query::find_user(db.pool(), user_name)
        .await
        .expect("find user")
        .unwrap_or_else(|| panic!("{user_name} in the target"))
        .given_name
}

/// What a full read of the fake's present directory puts into a fresh target.
async fn full_read(
    fake: &FakeKeycloak,
) -> (
    BTreeMap<String, TargetUser>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let fresh = sqlite().await;
    let report = run(&fresh, &connector(&fake.settings(false))).await;
    assert_eq!(report.read_mode, Some("full"));
    snapshot(&fresh).await
}

/// The paths (under the realm's admin root, with their query) the fake served from
/// position `from` of its log on.
fn served_since(fake: &FakeKeycloak, from: usize) -> Vec<String> {
    let root = format!("{}{ADMIN}", fake.base_url());
    fake.served()[from..]
        .iter()
        .map(|(url, _)| url.strip_prefix(&root).unwrap_or(url).to_string())
        .collect()
}

fn count(paths: &[String], prefix: &str) -> usize {
    paths.iter().filter(|p| p.starts_with(prefix)).count()
}

fn person(id: &str, name: &str) -> FakeUser {
    FakeUser {
        id: id.to_string(),
        user_name: format!("{name}@example.com"),
        email: format!("{name}@example.com"),
        given_name: name[..1].to_uppercase() + &name[1..],
        family_name: "Example".to_string(),
        status: UserStatus::Active,
    }
}

fn group(id: &str, name: &str, members: &[&str]) -> FakeGroup {
    FakeGroup {
        id: id.to_string(),
        name: name.to_string(),
        members: members
            .iter()
            .map(|m| match m.strip_prefix("group:") {
                Some(g) => FakeMember::Group(g.to_string()),
                None => FakeMember::User(m.to_string()),
            })
            .collect(),
    }
}

/// `dir` with the given name of its first active user changed; returns that user's name.
fn rename_one(dir: &Directory) -> (Directory, String) {
    let mut changed = dir.clone();
    let user = changed
        .users
        .iter_mut()
        .find(|u| u.status == UserStatus::Active)
        .expect("an active user");
    user.given_name = "Renamed".into();
    let name = user.user_name.clone();
    (changed, name)
}

#[tokio::test]
async fn admin_events_read_only_what_changed() {
    let dir = Directory::generated(5000, 500, 20);
    let fake = FakeKeycloak::start_concrete(dir.clone(), Knobs::default()).await;
    let settings = fake.settings(true);
    let admin = connector(&settings);
    let db = sqlite().await;

    let first = run(&db, &admin).await;
    assert_eq!(first.read_mode, Some("full"));
    let first_requests = fake.stats().requests;

    // 100 changes: 50 users get a new given name, and 50 groups (none holding groups)
    // each gain one existing active user who was not their member.
    let changes = dir.with_hundred_changes();
    let changed = changes.directory.clone();
    fake.set_directory(changed);
    assert_eq!(fake.admin_event_count(), 100, "one event per change");

    let log_at = fake.served().len();
    let second = run(&db, &admin).await;
    assert_eq!(second.read_mode, Some("delta"));
    let second_requests = fake.stats().requests - first_requests;
    // What the delta needs: the events settings (1); the events, in pages of
    // `page_size` until a short one (100 events in pages of 100: one full page and one
    // empty one); each renamed user again (50 GETs); each group with a new member again:
    // its record and one page of members (50 x 2; none has subgroups, so no /children).
    let page = settings.page_size as usize;
    let bound = 1 + (100 / page + 1) + 50 + 50 * 2;
    assert!(
        second_requests <= bound,
        "{second_requests} requests, at most {bound} expected"
    );
    assert!(
        second_requests * 3 < first_requests,
        "{second_requests} requests, fewer than a third of the full read's {first_requests}"
    );
    let paths = served_since(&fake, log_at);
    assert_eq!(count(&paths, "/users?"), 0, "no user listing: {paths:#?}");
    assert_eq!(count(&paths, "/groups?"), 0, "no group listing: {paths:#?}");
    assert_eq!(count(&paths, "/admin-events?"), 100 / page + 1);
    for (id, _, _) in &changes.joined {
        assert_eq!(count(&paths, &format!("/groups/{id}/members?")), 1, "{id}");
    }
    assert_eq!(
        count(&paths, "/groups/00g00000/members?"),
        0,
        "an unchanged group is not read again"
    );

    // The target is what a full read of the changed realm gives.
    let target = snapshot(&db).await;
    assert_eq!(target, full_read(&fake).await);
    for (name, given) in &changes.renamed {
        assert_eq!(
            given_name(&db, name).await.as_deref(),
            Some(given.as_str()),
            "{name}"
        );
    }
    for (_, group, user) in &changes.joined {
        let name = &dir.user(user).expect("user").user_name;
        assert!(
            target.1[group].contains(&format!("user:{name}")),
            "{name} joined {group}"
        );
    }
}

#[tokio::test]
async fn without_admin_events_every_read_is_full() {
    let dir = Directory::generated(200, 12, 10);
    let fake = FakeKeycloak::start_concrete(dir.clone(), Knobs::default()).await;
    fake.set_admin_events(false);
    let admin = connector(&fake.settings(true));
    let db = sqlite().await;

    let first = run(&db, &admin).await;
    assert_eq!(first.read_mode, Some("full"));
    let (changed, renamed) = rename_one(&dir);
    fake.set_directory(changed);
    assert_eq!(
        fake.admin_event_count(),
        0,
        "the realm saves no admin events"
    );

    let second = run(&db, &admin).await;
    assert_eq!(second.read_mode, Some("full"));
    assert_eq!(second.outcome, Outcome::Succeeded);
    assert_eq!(given_name(&db, &renamed).await.as_deref(), Some("Renamed"));
    assert_eq!(snapshot(&db).await, full_read(&fake).await);
    assert_eq!(
        count(&served_since(&fake, 0), "/admin-events"),
        0,
        "the events are not asked for when the realm does not save them"
    );
}

#[tokio::test]
async fn a_server_before_26_2_reads_in_full() {
    let dir = Directory::generated(200, 12, 10);
    let fake = FakeKeycloak::start_concrete(dir.clone(), Knobs::default()).await;
    fake.set_legacy_dates(true);
    let admin = connector(&fake.settings(true));
    let db = sqlite().await;

    let first = run(&db, &admin).await;
    assert_eq!(first.read_mode, Some("full"));
    let (changed, renamed) = rename_one(&dir);
    fake.set_directory(changed);
    assert_eq!(fake.admin_event_count(), 1);

    let log_at = fake.served().len();
    let second = run(&db, &admin).await;
    assert_eq!(second.read_mode, Some("full"));
    assert_eq!(second.outcome, Outcome::Succeeded);
    let paths = served_since(&fake, log_at);
    assert_eq!(
        count(&paths, "/admin-events?"),
        1,
        "the events were asked for, refused (400), and the read went full: {paths:#?}"
    );
    assert!(count(&paths, "/users?") > 0, "users listed in full");
    assert_eq!(given_name(&db, &renamed).await.as_deref(), Some("Renamed"));
    assert_eq!(snapshot(&db).await, full_read(&fake).await);
}

#[tokio::test]
async fn a_deleted_group_and_its_subgroups_go() {
    // A > B > C (Keycloak makes a nested group its parent's child); D stands alone.
    let dir = Directory {
        users: vec![
            person("u-alice", "alice"),
            person("u-bob", "bob"),
            person("u-carol", "carol"),
            person("u-dave", "dave"),
        ],
        groups: vec![
            group("g-a", "A", &["u-alice", "group:g-b"]),
            group("g-b", "B", &["u-bob", "group:g-c"]),
            group("g-c", "C", &["u-carol"]),
            group("g-d", "D", &["u-alice", "u-dave"]),
        ],
    };
    let fake = FakeKeycloak::start_concrete(dir.clone(), Knobs::default()).await;
    let admin = connector(&fake.settings(true));
    let db = sqlite().await;

    let first = run(&db, &admin).await;
    assert_eq!(first.read_mode, Some("full"));
    assert_eq!(
        group_names(&db).await,
        BTreeSet::from(["A", "B", "C", "D"].map(String::from))
    );
    let (_, groups) = snapshot(&db).await;
    assert!(groups["A"].contains("group:B"), "{groups:?}");
    assert!(groups["B"].contains("group:C"), "{groups:?}");

    // Deleting A deletes its subgroups with it; Keycloak records one event, for A.
    let mut changed = dir.clone();
    changed.groups.retain(|g| g.id == "g-d");
    let events_before = fake.admin_event_count();
    fake.set_directory(changed);
    assert_eq!(
        fake.admin_event_count() - events_before,
        1,
        "one DELETE event for groups/g-a; the subgroups go unannounced"
    );

    let second = run(&db, &admin).await;
    assert_eq!(second.read_mode, Some("delta"));
    assert_eq!(
        group_names(&db).await,
        BTreeSet::from(["D".to_string()]),
        "A and its subgroups B and C are gone"
    );
    let (users, groups) = snapshot(&db).await;
    assert!(
        users.values().all(|(active, _)| *active),
        "the members stay: {users:?}"
    );
    assert_eq!(
        groups["D"],
        BTreeSet::from(["user:alice@example.com", "user:dave@example.com"].map(String::from))
    );
    assert_eq!((users, groups), full_read(&fake).await);
}

#[tokio::test]
async fn the_checkpoint_is_not_reused_for_another_realm_or_after_full_sync_every() {
    let dir = Directory::generated(200, 12, 10);
    let fake = FakeKeycloak::start_concrete(dir.clone(), Knobs::default()).await;
    let settings = fake.settings(true);
    let db = sqlite().await;
    let first = run(&db, &connector(&settings)).await;
    assert_eq!(first.read_mode, Some("full"));

    // full_sync_every = 0: every read is full, with the change in it.
    let (changed, renamed) = rename_one(&dir);
    fake.set_directory(changed);
    let mut always_full = settings.clone();
    always_full.full_sync_every = Duration::ZERO;
    let second = run(&db, &connector(&always_full)).await;
    assert_eq!(second.read_mode, Some("full"));
    assert_eq!(given_name(&db, &renamed).await.as_deref(), Some("Renamed"));

    // The checkpoint that full read left is continued with the default settings...
    let third = run(&db, &connector(&settings)).await;
    assert_eq!(third.read_mode, Some("delta"));
    assert_eq!(third.outcome, Outcome::Unchanged);

    // ...but not on another realm (the fake serves any realm name the same directory).
    let mut other_realm = settings.clone();
    other_realm.realm = "other".into();
    let fourth = run(&db, &connector(&other_realm)).await;
    assert_eq!(fourth.read_mode, Some("full"));
    assert!(
        fake.served()
            .iter()
            .any(|(url, _)| url.contains("/admin/realms/other/users?")),
        "the other realm was read"
    );
    assert_eq!(snapshot(&db).await, full_read(&fake).await);
}

#[tokio::test]
async fn check_connect_says_whether_runs_can_be_incremental() {
    use idsync::connectors::PullConnector;
    let fake = FakeKeycloak::start_concrete(Directory::generated(20, 3, 5), Knobs::default()).await;
    let checks = connector(&fake.settings(true)).diagnose().await;
    let last = checks.last().expect("checks");
    assert_eq!(last.check, "admin events");
    assert!(last.ok && last.detail.contains("incremental"), "{last:?}");

    fake.set_admin_events(false);
    let checks = connector(&fake.settings(true)).diagnose().await;
    let last = checks.last().expect("checks");
    assert_eq!(last.check, "admin events");
    // Not saving events is no failure: runs are full, and the step says what to turn on.
    assert!(last.ok, "{last:?}");
    assert!(
        last.detail.contains("every run reads in full") && last.detail.contains("view-events"),
        "{last:?}"
    );

    let checks = connector(&fake.settings(false)).diagnose().await;
    assert!(
        checks.iter().all(|c| c.check != "admin events"),
        "{checks:?}"
    );
}
