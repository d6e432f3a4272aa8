//! The shared conformance suite: every pull connector against its fake identity provider
//! (testkit/src/fake_<kind>.rs), with the same directory and the same misbehaviours,
//! synced into a real SQLite target. What must hold for every provider:
//!
//! - many pages: every user and group arrives, with its members (nested groups and a cycle
//!   in the directory);
//! - throttling (429) and tokens expiring mid-run: the read still completes, identically;
//! - a failing last page of users, groups or members: the run fails and the target is
//!   exactly as before (removals need a complete read);
//! - a missing permission: the run fails with an error naming what to grant, and the
//!   target is as before;
//! - with default settings, an incremental read after every kind of change ends where a
//!   full read of the changed directory does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use idsync::config::{MappingConfig, OnRemove};
use idsync::db::Db;
use idsync::sync::{self, NoProgress, RunOptions};
use idsync::target::query;

use crate::support::conformance::{
    Directory, FakeMember, FakeProvider, Knobs, Listing, StartFake, UserStatus,
};
use crate::support::{fake_azure, fake_google, fake_keycloak, fake_okta, sqlite};

/// Every provider with a fake.
fn providers() -> Vec<(&'static str, StartFake)> {
    vec![
        ("keycloak", fake_keycloak::start),
        ("okta", fake_okta::start),
        ("google", fake_google::start),
        ("azure", fake_azure::start_provider),
    ]
}

fn mapping() -> MappingConfig {
    MappingConfig::pass_through("default", OnRemove::Disable, 100_000, 100.0)
}

fn directory() -> Directory {
    Directory::generated(130, 9, 25)
}

/// The target as (user name -> active) and (group name -> sorted direct user members).
async fn snapshot(db: &Db) -> (BTreeMap<String, bool>, BTreeMap<String, BTreeSet<String>>) {
    let users = query::list_users(db.pool(), Some("idp"), 1_000_000, 0)
        .await
        .expect("users")
        .into_iter()
        .map(|u| (u.user_name, u.active && u.removed_at.is_none()))
        .collect();
    (users, direct_members(db, "user").await)
}

/// Each group's direct members of `kind` (`user` or `group`), by name.
async fn direct_members(db: &Db, kind: &str) -> BTreeMap<String, BTreeSet<String>> {
    let pool = db.pool();
    let mut groups = BTreeMap::new();
    for group in query::list_groups(pool, Some("idp"), 1_000_000, 0)
        .await
        .expect("groups")
    {
        let members = query::direct_members(pool, &group.id)
            .await
            .expect("members")
            .into_iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.name)
            .collect();
        groups.insert(group.name, members);
    }
    groups
}

async fn run(fake: &Arc<dyn FakeProvider>, db: &Db) -> Result<sync::RunReport, sync::SyncError> {
    let connector = fake.connector();
    sync::sync(
        db,
        "idp",
        &mapping(),
        connector.as_ref(),
        RunOptions::default(),
        &NoProgress,
    )
    .await
}

/// A run of the connector with the settings an admin gets by default (incremental or
/// delta reads where the provider has them).
async fn run_default(fake: &Arc<dyn FakeProvider>, db: &Db, kind: &str) -> sync::RunReport {
    let connector = fake.default_connector();
    sync::sync(
        db,
        "idp",
        &mapping(),
        connector.as_ref(),
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// What every provider must deliver from [`directory`]: synced users (service accounts and
/// deleted users left out; suspended ones inactive, or left out where the provider lists
/// them not), and each group's direct user members among them.
fn expected(
    dir: &Directory,
    fake: &dyn FakeProvider,
) -> (BTreeMap<String, bool>, BTreeMap<String, BTreeSet<String>>) {
    let mut users = BTreeMap::new();
    for user in &dir.users {
        match user.status {
            UserStatus::Active | UserStatus::Guest => {
                users.insert(user.user_name.clone(), true);
            }
            UserStatus::Suspended if fake.suspended_are_listed() => {
                users.insert(user.user_name.clone(), false);
            }
            _ => {}
        }
    }
    let mut groups = BTreeMap::new();
    for group in &dir.groups {
        let members = group
            .members
            .iter()
            .filter_map(|m| match m {
                FakeMember::User(id) => dir.user(id),
                FakeMember::Group(_) => None,
            })
            .filter(|u| users.contains_key(&u.user_name))
            .map(|u| u.user_name.clone())
            .collect();
        groups.insert(group.name.clone(), members);
    }
    (users, groups)
}

#[tokio::test]
async fn many_pages_arrive_whole() {
    for (kind, start) in providers() {
        let db = sqlite().await;
        let dir = directory();
        let fake = start(
            dir.clone(),
            Knobs {
                page_size: 7,
                ..Knobs::default()
            },
        )
        .await;
        let report = run(&fake, &db)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            report.outcome,
            idsync::store::runs::Outcome::Succeeded,
            "{kind}"
        );
        let (users, groups) = snapshot(&db).await;
        let (want_users, want_groups) = expected(&dir, fake.as_ref());
        assert_eq!(users, want_users, "{kind}: users");
        assert_eq!(groups, want_groups, "{kind}: direct user members");
        assert!(fake.stats().requests > 130 / 7, "{kind}: paged");
    }
}

#[tokio::test]
async fn throttling_and_expiring_tokens_still_give_a_complete_read() {
    for (kind, start) in providers() {
        let db = sqlite().await;
        let dir = directory();
        let fake = start(
            dir.clone(),
            Knobs {
                page_size: 10,
                throttle_every: Some(4),
                token_lifetime_requests: Some(5),
                ..Knobs::default()
            },
        )
        .await;
        run(&fake, &db)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let stats = fake.stats();
        assert!(stats.throttled > 0, "{kind}: {stats:?}");
        assert!(stats.tokens_issued > 1, "{kind}: {stats:?}");
        assert_eq!(snapshot(&db).await, expected(&dir, fake.as_ref()), "{kind}");
    }
}

#[tokio::test]
async fn a_failing_last_page_changes_nothing() {
    for (kind, start) in providers() {
        for listing in [Listing::Users, Listing::Groups, Listing::Members] {
            let db = sqlite().await;
            let dir = directory();
            let clean = start(
                dir.clone(),
                Knobs {
                    page_size: 10,
                    ..Knobs::default()
                },
            )
            .await;
            run(&clean, &db)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            let before = snapshot(&db).await;
            // The source loses users and a group; the next read fails on its last page.
            let mut shrunk = dir.clone();
            shrunk.users.truncate(100);
            shrunk.groups.pop();
            let failing = start(
                shrunk,
                Knobs {
                    page_size: 10,
                    fail_last_page: Some(listing),
                    ..Knobs::default()
                },
            )
            .await;
            let error = run(&failing, &db)
                .await
                .expect_err(&format!("{kind}: a failing {listing:?} page fails the run"));
            assert!(!error.to_string().is_empty());
            assert_eq!(
                snapshot(&db).await,
                before,
                "{kind}: {listing:?}: nothing changed"
            );
        }
    }
}

#[tokio::test]
async fn a_missing_permission_is_named_and_changes_nothing() {
    for (kind, start) in providers() {
        for listing in [Listing::Users, Listing::Groups, Listing::Members] {
            let db = sqlite().await;
            let dir = directory();
            let clean = start(dir.clone(), Knobs::default()).await;
            run(&clean, &db)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            let before = snapshot(&db).await;
            let denied = start(
                dir.clone(),
                Knobs {
                    deny: Some(listing),
                    ..Knobs::default()
                },
            )
            .await;
            let error = run(&denied, &db).await.expect_err(&format!(
                "{kind}: a denied {listing:?} listing fails the run"
            ));
            let text = format!("{error:#}");
            let hint = denied.missing_permission_hint();
            assert!(
                text.contains(hint),
                "{kind}: {listing:?}: {text:?} should name {hint:?}"
            );
            assert_eq!(snapshot(&db).await, before, "{kind}: {listing:?}");
        }
    }
}

#[tokio::test]
async fn removals_arrive_once_the_read_is_complete() {
    for (kind, start) in providers() {
        let db = sqlite().await;
        let dir = directory();
        let fake = start(
            dir.clone(),
            Knobs {
                page_size: 10,
                ..Knobs::default()
            },
        )
        .await;
        run(&fake, &db)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let mut changed = dir.clone();
        let gone = changed.users.remove(0);
        changed.groups.pop();
        fake.set_directory(changed.clone());
        run(&fake, &db)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let (users, groups) = snapshot(&db).await;
        assert_eq!(users.get(&gone.user_name), Some(&false), "{kind}: disabled");
        assert_eq!(groups.len(), changed.groups.len(), "{kind}: group removed");
    }
}

#[tokio::test]
async fn deletions_are_seen_at_the_next_run_with_default_settings() {
    // Default settings: Okta reads incrementally, Graph through delta links, Keycloak from
    // admin events, Google from its admin log. A user and a group deleted between two
    // runs must be gone after the second one, not only after the next periodic full read.
    for (kind, start) in providers() {
        let db = sqlite().await;
        let dir = directory();
        let fake = start(dir.clone(), Knobs::default()).await;
        run_default(&fake, &db, kind).await;
        let (_, groups_before) = snapshot(&db).await;
        let mut changed = dir.clone();
        let gone_user = changed
            .users
            .iter()
            .position(|u| {
                u.status == UserStatus::Active
                    && groups_before.values().any(|m| m.contains(&u.user_name))
            })
            .map(|i| changed.users.remove(i))
            .expect("an active group member");
        for group in &mut changed.groups {
            group
                .members
                .retain(|m| *m != FakeMember::User(gone_user.id.clone()));
        }
        let gone_group = changed.groups.pop().expect("a group");
        fake.set_directory(changed.clone());
        run_default(&fake, &db, kind).await;
        let (users, groups) = snapshot(&db).await;
        assert_eq!(
            users.get(&gone_user.user_name),
            Some(&false),
            "{kind}: the deleted user is disabled"
        );
        assert!(
            groups.values().all(|m| !m.contains(&gone_user.user_name)),
            "{kind}: the deleted user's memberships are revoked"
        );
        assert!(
            !groups.contains_key(&gone_group.name),
            "{kind}: the deleted group is removed"
        );
        assert_eq!(groups.len(), groups_before.len() - 1, "{kind}");
    }
}

/// Every kind of change a directory sees between two runs: a user changed, suspended,
/// created into a group, deleted; members added and removed; a group renamed, created
/// with members, deleted; a top-level group nested into another.
fn changed(dir: &Directory) -> Directory {
    let mut changed = dir.clone();
    let id = |i: usize| format!("00u{i:06}");
    let position = |d: &Directory, i: usize| d.users.iter().position(|u| u.id == id(i)).unwrap();
    let at = position(&changed, 10);
    changed.users[at].given_name = "Renamed".into();
    let at = position(&changed, 11);
    changed.users[at].status = UserStatus::Suspended;
    let mut newcomer = changed.users[at].clone();
    newcomer.id = "00u900000".into();
    newcomer.user_name = "newcomer@example.com".into();
    newcomer.email = newcomer.user_name.clone();
    newcomer.status = UserStatus::Active;
    changed.users.push(newcomer);
    changed.groups[1]
        .members
        .push(FakeMember::User("00u900000".into()));
    let at = position(&changed, 12);
    changed.users.remove(at);
    for group in &mut changed.groups {
        group.members.retain(|m| *m != FakeMember::User(id(12)));
    }
    if !changed.groups[4]
        .members
        .contains(&FakeMember::User(id(100)))
    {
        changed.groups[4].members.push(FakeMember::User(id(100)));
    }
    let first_user = changed.groups[5]
        .members
        .iter()
        .position(|m| matches!(m, FakeMember::User(_)))
        .unwrap();
    changed.groups[5].members.remove(first_user);
    changed.groups[6].name = "Group six".into();
    let nested = changed.groups[3].id.clone();
    changed.groups[7].members.push(FakeMember::Group(nested));
    changed.groups.pop();
    changed.groups.push(crate::support::conformance::FakeGroup {
        id: "00g90000".into(),
        name: "Group new".into(),
        members: vec![FakeMember::User(id(20)), FakeMember::User(id(21))],
    });
    changed
}

#[tokio::test]
async fn incremental_reads_end_where_a_full_read_does() {
    // Default settings read changes only (Okta's filters, Graph's delta links, Keycloak's
    // admin events, Google's admin log) after a first full read. After every kind of change, the target must
    // be what a full read of the changed directory gives.
    for (kind, start) in providers() {
        let dir = directory();
        let fake = start(
            dir.clone(),
            Knobs {
                page_size: 10,
                ..Knobs::default()
            },
        )
        .await;
        let db = sqlite().await;
        run_default(&fake, &db, kind).await;
        let changed = changed(&dir);
        fake.set_directory(changed.clone());
        let second = run_default(&fake, &db, kind).await;
        // The same settings, from no checkpoint: a full read.
        let fresh = sqlite().await;
        let full = run_default(&fake, &fresh, kind).await;
        assert_eq!(full.read_mode, Some("full"), "{kind}");
        // A user deleted in the source stays in the target disabled (on_remove); a fresh
        // target never had it. Everything else must match.
        let (users, groups) = snapshot(&db).await;
        let (fresh_users, fresh_groups) = snapshot(&fresh).await;
        let kept = |users: &BTreeMap<String, bool>| -> BTreeMap<String, bool> {
            users
                .iter()
                .filter(|(name, active)| **active || fresh_users.contains_key(*name))
                .map(|(name, active)| (name.clone(), *active))
                .collect()
        };
        assert_eq!(kept(&users), fresh_users, "{kind}");
        assert_eq!(users.get("user000012@example.com"), Some(&false), "{kind}");
        assert_eq!(groups, fresh_groups, "{kind}");
        assert_eq!(
            direct_members(&db, "group").await,
            direct_members(&fresh, "group").await,
            "{kind}"
        );
        assert_eq!(users.get("newcomer@example.com"), Some(&true), "{kind}");
        assert!(
            groups["Group 1"].contains("newcomer@example.com"),
            "{kind}: a user created into a group is its member"
        );
        assert!(groups.contains_key("Group six"), "{kind}");
        assert!(groups.contains_key("Group new"), "{kind}");
        assert_eq!(second.read_mode, Some("delta"), "{kind}");
    }
}
