//! The Microsoft Graph connector (`kind = "azure"`) against the fake Graph
//! (testkit/src/fake_azure.rs), synced into a real SQLite target: full reads (delta
//! rounds and plain listings), paging, nesting, guests, throttling, token expiry,
//! certificate assertions, failures that must change nothing, permission errors, delta
//! runs (changes, removals, membership changes, expired tokens) and `full_sync_every`.

use std::collections::BTreeMap;
use std::time::Duration;

use idsync::config::{AzureSettings, MappingConfig, OnRemove};
use idsync::connectors::azure::{AzureCheckpoint, AzureConnector};
use idsync::connectors::{PullConnector, ReadMode};
use idsync::db::Db;
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions, RunReport, SyncError};
use idsync::target::query;
use serde_json::json;

use crate::support::conformance::{
    Directory, FakeMember, FakeProvider, Knobs, Listing, UserStatus,
};
use crate::support::fake_azure::{self, FakeAzure, TokenGrant};
use crate::support::sqlite;

const CONNECTOR: &str = "graph";

fn mapping(on_remove: OnRemove) -> MappingConfig {
    MappingConfig::pass_through("default", on_remove, 100_000, 100.0)
}

async fn try_run(
    db: &Db,
    connector: &dyn PullConnector,
    on_remove: OnRemove,
) -> Result<RunReport, SyncError> {
    sync::sync(
        db,
        CONNECTOR,
        &mapping(on_remove),
        connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
}

async fn run(db: &Db, connector: &dyn PullConnector) -> RunReport {
    let report = try_run(db, connector, OnRemove::Disable)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    assert_ne!(report.outcome, Outcome::Held, "{report:?}");
    report
}

/// The target as comparable data: users (name, active, display name) and groups with
/// their sorted direct members (`kind:name`).
type Target = (
    Vec<(String, bool, Option<String>)>,
    BTreeMap<String, Vec<String>>,
);

async fn target(db: &Db) -> Target {
    let users = query::list_users(db.pool(), None, 1_000_000, 0)
        .await
        .expect("users")
        .into_iter()
        .map(|u| (u.user_name, u.active, u.display_name))
        .collect();
    let mut groups = BTreeMap::new();
    for g in query::list_groups(db.pool(), None, 1_000_000, 0)
        .await
        .expect("groups")
    {
        let mut members: Vec<String> = query::direct_members(db.pool(), &g.id)
            .await
            .expect("members")
            .into_iter()
            .map(|m| format!("{}:{}", m.kind, m.name))
            .collect();
        members.sort();
        groups.insert(g.name, members);
    }
    (users, groups)
}

async fn checkpoint(db: &Db) -> Option<String> {
    let mut conn = db.pool().acquire().await.expect("connection");
    idsync::store::mirror::load_state(&mut conn, CONNECTOR)
        .await
        .expect("state")
        .checkpoint
}

/// What the target must hold after a full read of `dir`: the users Graph lists (not
/// deleted, not service principals; guests only when included) and each group's direct
/// user and group members among them.
fn expected(dir: &Directory, include_guests: bool) -> Target {
    let listed = |id: &str| {
        dir.user(id).is_some_and(|u| match u.status {
            UserStatus::Deleted | UserStatus::Service => false,
            UserStatus::Guest => include_guests,
            _ => true,
        })
    };
    let mut users: Vec<(String, bool, Option<String>)> = dir
        .users
        .iter()
        .filter(|u| listed(&u.id))
        .map(|u| {
            (
                u.user_name.clone(),
                u.status != UserStatus::Suspended,
                Some(format!("{} {}", u.given_name, u.family_name)),
            )
        })
        .collect();
    users.sort();
    let mut groups = BTreeMap::new();
    for g in &dir.groups {
        let mut members: Vec<String> = Vec::new();
        for m in &g.members {
            match m {
                FakeMember::User(id) if listed(id) => {
                    members.push(format!("user:{}", dir.user(id).unwrap().user_name));
                }
                FakeMember::Group(id) => {
                    if let Some(n) = dir.groups.iter().find(|x| &x.id == id) {
                        members.push(format!("group:{}", n.name));
                    }
                }
                _ => {}
            }
        }
        members.sort();
        members.dedup();
        groups.insert(g.name.clone(), members);
    }
    (users, groups)
}

fn sorted(mut t: Target) -> Target {
    t.0.sort();
    t
}

async fn fake(dir: Directory, knobs: Knobs) -> std::sync::Arc<FakeAzure> {
    fake_azure::start(dir, knobs).await
}

fn listing(fake: &FakeAzure) -> AzureSettings {
    let mut s = fake.settings();
    s.delta = false;
    s
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_full_read_pages_through_users_groups_and_nested_members() {
    let dir = Directory::generated(60, 6, 12);
    for delta in [true, false] {
        let fake = fake(
            dir.clone(),
            Knobs {
                page_size: 7,
                ..Knobs::default()
            },
        )
        .await;
        let mut settings = fake.settings();
        settings.delta = delta;
        let connector = fake.connector_with(&settings);
        let db = sqlite().await;
        let report = run(&db, &connector).await;
        assert_eq!(report.outcome, Outcome::Succeeded);
        assert_eq!(report.read_mode, Some("full"));
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(
            report.counts.users_created, 58,
            "60 minus a deleted user and a service principal"
        );
        assert_eq!(report.counts.groups_created, 6);
        assert_eq!(
            sorted(target(&db).await),
            expected(&dir, true),
            "delta = {delta}"
        );

        // Nesting: group 0 holds 1, 1 holds 2, 2 holds 0 (a cycle): all three reach the
        // same users.
        let g0 = query::find_group(db.pool(), "Group 0")
            .await
            .unwrap()
            .unwrap();
        let g2 = query::find_group(db.pool(), "Group 2")
            .await
            .unwrap()
            .unwrap();
        let e0 = query::effective_members(db.pool(), &g0.id).await.unwrap();
        let e2 = query::effective_members(db.pool(), &g2.id).await.unwrap();
        assert_eq!(e0.len(), e2.len());
        assert!(e0.len() > 30, "{}", e0.len());

        // Suspended users are inactive, guests are in.
        let suspended = query::find_user(db.pool(), "user000009@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(!suspended.active);
        assert!(
            query::find_user(db.pool(), "user000024@example.com")
                .await
                .unwrap()
                .is_some()
        );
        let user = query::find_user(db.pool(), "user000000@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.attributes["userType"], "Member");
        assert_eq!(user.attributes["createdDateTime"], "2024-01-15T09:00:00Z");
        assert!(
            user.attributes.get("jobTitle").is_none(),
            "nulls are not kept"
        );

        let requests = fake.requests();
        if delta {
            let users_pages = requests
                .iter()
                .filter(|r| r.path == "/v1.0/users/delta")
                .count();
            assert_eq!(users_pages, 9, "58 users, 7 per page");
            let first = requests
                .iter()
                .find(|r| r.path == "/v1.0/users/delta")
                .unwrap();
            let select = first.param("$select").unwrap();
            assert!(select.contains("accountEnabled") && select.contains("userType"));
            let groups = requests
                .iter()
                .find(|r| r.path == "/v1.0/groups/delta")
                .unwrap();
            assert!(groups.param("$select").unwrap().ends_with(",members"));
            assert!(
                requests.iter().all(|r| !r.path.ends_with("/members")),
                "members come from members@delta"
            );
            let cp =
                AzureCheckpoint::parse(&checkpoint(&db).await.expect("checkpoint")).expect("json");
            assert!(cp.users.starts_with(&format!(
                "{}/v1.0/users/delta?$deltatoken=",
                fake.base_url()
            )));
            assert!(cp.groups.contains("/v1.0/groups/delta?$deltatoken="));
        } else {
            let first = requests.iter().find(|r| r.path == "/v1.0/users").unwrap();
            assert_eq!(first.param("$top"), Some("999"));
            // Every later page is the nextLink, followed verbatim: only the skiptoken.
            let later: Vec<_> = requests
                .iter()
                .filter(|r| r.path == "/v1.0/users")
                .skip(1)
                .collect();
            assert_eq!(later.len(), 8);
            assert!(
                later
                    .iter()
                    .all(|r| r.query.len() == 1 && r.param("$skiptoken").is_some())
            );
            let member_pages = requests
                .iter()
                .filter(|r| r.path.ends_with("/members"))
                .count();
            assert!(
                member_pages >= 12,
                "{member_pages}: every group's members, paged by 7"
            );
            assert_eq!(checkpoint(&db).await, None);
        }
    }
}

#[tokio::test]
async fn guests_are_read_or_left_out() {
    let dir = Directory::generated(100, 4, 30);
    for delta in [true, false] {
        let fake = fake(dir.clone(), Knobs::default()).await;
        let mut settings = fake.settings();
        settings.delta = delta;
        settings.include_guests = false;
        let db = sqlite().await;
        let report = run(&db, &fake.connector_with(&settings)).await;
        assert!(
            report.warnings.is_empty(),
            "guest members are dropped quietly: {:?}",
            report.warnings
        );
        assert_eq!(report.counts.users_created, 98 - 4, "4 guests out");
        assert_eq!(
            sorted(target(&db).await),
            expected(&dir, false),
            "delta = {delta}"
        );
        assert!(
            query::find_user(db.pool(), "user000024@example.com")
                .await
                .unwrap()
                .is_none()
        );

        settings.include_guests = true;
        let report = run(&db, &fake.connector_with(&settings)).await;
        assert_eq!(
            report.read_mode,
            Some("full"),
            "a changed query needs a full read"
        );
        assert_eq!(report.counts.users_created, 4);
        assert_eq!(sorted(target(&db).await), expected(&dir, true));
    }
}

#[tokio::test]
async fn throttling_and_token_expiry_are_ridden_out() {
    let dir = Directory::generated(40, 5, 8);
    for delta in [true, false] {
        let knobs = Knobs {
            page_size: 5,
            throttle_every: Some(4),
            token_lifetime_requests: Some(3),
            ..Knobs::default()
        };
        let fake = fake(dir.clone(), knobs).await;
        let mut settings = fake.settings();
        settings.delta = delta;
        settings.max_retry_time = Duration::from_secs(10);
        let db = sqlite().await;
        let report = run(&db, &fake.connector_with(&settings)).await;
        assert_eq!(report.outcome, Outcome::Succeeded);
        assert_eq!(sorted(target(&db).await), expected(&dir, true));
        let stats = fake.stats();
        assert!(stats.throttled >= 3, "{stats:?}");
        assert!(
            stats.tokens_issued >= 3,
            "a new token after each expiry: {stats:?}"
        );
    }
}

#[tokio::test]
async fn a_certificate_signs_the_client_assertion() {
    let dir = Directory::generated(10, 2, 3);
    let fake = fake(dir.clone(), Knobs::default()).await;
    let mut settings = fake.settings();
    settings.credential = fake_azure::test_certificate();
    let db = sqlite().await;
    run(&db, &fake.connector_with(&settings)).await;
    assert_eq!(sorted(target(&db).await), expected(&dir, true));
    assert_eq!(fake.grants(), vec![TokenGrant::Assertion]);

    // A key that does not belong to the registered certificate is refused.
    settings.credential = fake_azure::wrong_key_certificate();
    let err = try_run(&db, &fake.connector_with(&settings), OnRemove::Disable)
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("invalid_client") && text.contains("AADSTS700027"),
        "{text}"
    );
    let checks = fake.connector_with(&settings).diagnose().await;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].check, "authenticate");
    assert!(
        !checks[0].ok && checks[0].detail.contains("invalid_client"),
        "{checks:?}"
    );

    // A wrong secret, likewise.
    let mut settings = fake.settings();
    settings.credential =
        idsync::config::AzureCredential::Secret(idsync::config::SecretString::new("nope"));
    let text = try_run(&db, &fake.connector_with(&settings), OnRemove::Disable)
        .await
        .expect_err("refused")
        .to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
}

#[tokio::test]
async fn a_failing_last_page_changes_nothing() {
    let dir = Directory::generated(30, 4, 6);
    for (delta, listing_knob) in [
        (true, Listing::Users),
        (true, Listing::Members),
        (false, Listing::Users),
        (false, Listing::Groups),
        (false, Listing::Members),
    ] {
        let fake = fake(
            dir.clone(),
            Knobs {
                page_size: 4,
                ..Knobs::default()
            },
        )
        .await;
        let mut settings = fake.settings();
        settings.delta = delta;
        settings.max_retry_time = Duration::from_secs(1);
        let connector = fake.connector_with(&settings);
        let db = sqlite().await;
        run(&db, &connector).await;
        let before = target(&db).await;
        let cp = checkpoint(&db).await;

        let mut changed = dir.clone();
        changed.users.truncate(10);
        changed.groups[1].members.clear();
        fake.set_directory(changed);
        fake.set_knobs(Knobs {
            page_size: 4,
            fail_last_page: Some(listing_knob),
            ..Knobs::default()
        });
        let err = try_run(&db, &connector, OnRemove::Delete)
            .await
            .expect_err("the read fails");
        let text = err.to_string();
        assert!(
            text.contains("HTTP 500") && text.contains("still throttled or failing"),
            "{text}"
        );
        assert_eq!(
            target(&db).await,
            before,
            "delta = {delta}, {listing_knob:?}"
        );
        assert_eq!(checkpoint(&db).await, cp, "the checkpoint stays");
    }
}

#[tokio::test]
async fn a_truncated_delta_round_fails_the_read() {
    let dir = Directory::generated(20, 3, 4);
    let fake = fake(dir.clone(), Knobs::default()).await;
    let connector = fake.connector();
    let db = sqlite().await;
    fake.truncate_delta_rounds(true);
    let text = try_run(&db, connector.as_ref(), OnRemove::Delete)
        .await
        .expect_err("truncated")
        .to_string();
    assert!(
        text.contains("neither @odata.nextLink nor @odata.deltaLink"),
        "{text}"
    );
    assert_eq!(target(&db).await, Default::default());

    fake.truncate_delta_rounds(false);
    run(&db, connector.as_ref()).await;
    let before = target(&db).await;
    let mut changed = dir.clone();
    changed.users.truncate(5);
    fake.set_directory(changed);
    fake.truncate_delta_rounds(true);
    try_run(&db, connector.as_ref(), OnRemove::Delete)
        .await
        .expect_err("truncated delta");
    assert_eq!(target(&db).await, before, "nothing removed");
}

#[tokio::test]
async fn a_403_names_the_missing_permission() {
    let dir = Directory::generated(10, 2, 3);
    for (deny, permission) in [
        (Listing::Users, "User.Read.All"),
        (Listing::Groups, "GroupMember.Read.All"),
        (Listing::Members, "GroupMember.Read.All"),
    ] {
        for delta in [true, false] {
            let fake = fake(
                dir.clone(),
                Knobs {
                    deny: Some(deny),
                    ..Knobs::default()
                },
            )
            .await;
            assert_eq!(fake.missing_permission_hint(), permission);
            let mut settings = fake.settings();
            settings.delta = delta;
            let connector = fake.connector_with(&settings);
            let db = sqlite().await;
            let text = try_run(&db, &connector, OnRemove::Disable)
                .await
                .expect_err("forbidden")
                .to_string();
            assert!(
                text.contains(permission) && text.contains("HTTP 403"),
                "{text}"
            );
            assert!(text.contains("Authorization_RequestDenied"), "{text}");
            assert_eq!(target(&db).await, Default::default());

            let checks = connector.diagnose().await;
            let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
            assert_eq!(failed.len(), 1, "{checks:?}");
            assert!(failed[0].detail.contains(permission), "{checks:?}");
        }
    }
}

#[tokio::test]
async fn diagnose_checks_token_listings_members_and_delta() {
    let fake = fake(Directory::generated(5, 2, 2), Knobs::default()).await;
    let checks = fake.connector().diagnose().await;
    let names: Vec<&str> = checks.iter().map(|c| c.check).collect();
    assert_eq!(
        names,
        [
            "authenticate",
            "list users",
            "list groups",
            "list group members",
            "users delta",
            "groups delta"
        ]
    );
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .filter(|r| !r.path.ends_with("/delta"))
            .all(|r| r.param("$top") == Some("1"))
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.ends_with("/delta"))
            .all(|r| r.param("$deltatoken") == Some("latest"))
    );
}

/// `check --connect` asks Graph for what a sync asks for: the same `$select` (and
/// `$filter`), one entry each, so a property Graph refuses fails the check, not the sync.
#[tokio::test]
async fn diagnose_lists_with_the_select_a_sync_sends() {
    let fake = fake(Directory::generated(5, 2, 2), Knobs::default()).await;
    let checks = fake.connector().diagnose().await;
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    let requests = fake.requests();
    let users = requests
        .iter()
        .find(|r| r.path.ends_with("/users"))
        .expect("a users listing");
    let select = users.param("$select").unwrap_or_default();
    for property in ["id", "userPrincipalName", "accountEnabled"] {
        assert!(select.split(',').any(|p| p == property), "{select}");
    }
    let groups = requests
        .iter()
        .find(|r| r.path.ends_with("/groups"))
        .expect("a groups listing");
    assert!(
        groups
            .param("$select")
            .unwrap_or_default()
            .contains("displayName"),
        "{:?}",
        groups.param("$select")
    );
}

#[tokio::test]
async fn a_delta_run_after_100_changes_touches_only_those_users() {
    let dir = Directory::generated(1000, 20, 30);
    let fake = fake(dir.clone(), Knobs::default()).await;
    let connector = fake.connector();
    let db = sqlite().await;
    let first = run(&db, connector.as_ref()).await;
    assert_eq!(first.read_mode, Some("full"));
    let before = target(&db).await;

    let mut changed = dir.clone();
    let mut touched = Vec::new();
    for user in changed.users.iter_mut().skip(100) {
        if matches!(
            user.status,
            UserStatus::Active | UserStatus::Suspended | UserStatus::Guest
        ) {
            user.given_name = format!("Renamed{}", user.id);
            touched.push(user.user_name.clone());
        }
        if touched.len() == 100 {
            break;
        }
    }
    fake.set_directory(changed.clone());
    fake.clear_requests();
    let report = run(&db, connector.as_ref()).await;
    assert_eq!(report.read_mode, Some(ReadMode::Delta.as_str()));
    assert_eq!(report.records_read, 100);
    assert_eq!(report.counts.users_updated, 100);
    assert_eq!(
        report.counts.users_created + report.counts.users_disabled,
        0
    );
    assert_eq!(
        report.counts.groups_updated
            + report.counts.memberships_added
            + report.counts.memberships_removed,
        0
    );
    assert_eq!(report.projection, Some("changed users"), "{report:?}");
    let after = target(&db).await;
    let differing: Vec<&String> = before
        .0
        .iter()
        .zip(&after.0)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| &b.0)
        .collect();
    assert_eq!(differing.len(), 100);
    assert!(differing.iter().all(|name| touched.contains(name)));
    assert_eq!(before.1, after.1, "groups untouched");
    assert_eq!(sorted(after), expected(&changed, true));

    let requests = fake.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/v1.0/users/delta", "/v1.0/groups/delta"],
        "one page each"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.param("$deltatoken").is_some() || r.param("$skiptoken").is_some())
    );
    assert_eq!(requests[1].prefer.as_deref(), Some("return=minimal"));
    assert_eq!(requests[0].prefer, None, "user changes come whole");

    // Nothing changed: an unchanged run.
    let report = run(&db, connector.as_ref()).await;
    assert_eq!(report.read_mode, Some("delta"));
    assert_eq!(report.outcome, Outcome::Unchanged);
    assert_eq!(report.records_read, 0);
}

#[tokio::test]
async fn removals_and_membership_changes_by_delta_match_a_full_read() {
    let dir = Directory::generated(200, 12, 25);
    let fake = fake(
        dir.clone(),
        Knobs {
            page_size: 9,
            ..Knobs::default()
        },
    )
    .await;
    let connector = fake.connector();
    let db = sqlite().await;
    try_run(&db, connector.as_ref(), OnRemove::Delete)
        .await
        .expect("first run");

    let mut changed = dir.clone();
    // Users: two deleted (soft), two gone for good, one suspended, one guest turned member,
    // one new.
    changed.users[10].status = UserStatus::Deleted;
    changed.users[11].status = UserStatus::Deleted;
    changed
        .users
        .retain(|u| u.id != "00u000012" && u.id != "00u000013");
    changed.users[20].status = UserStatus::Suspended;
    changed.users[48].status = UserStatus::Active;
    let mut new_user = changed.users[0].clone();
    new_user.id = "00u999999".into();
    new_user.user_name = "newcomer@example.com".into();
    new_user.email = "newcomer@example.com".into();
    changed.users.push(new_user);
    // Groups: members added and removed (more than a delta page), a nested group added,
    // one renamed (read again whole), one deleted.
    changed.groups[3]
        .members
        .extend((150..180).map(|i| FakeMember::User(format!("00u{i:06}"))));
    changed.groups[3]
        .members
        .push(FakeMember::User("00u999999".into()));
    changed.groups[4].members.truncate(3);
    let g6 = changed.groups[6].id.clone();
    changed.groups[5].members.push(FakeMember::Group(g6));
    changed.groups[7].name = "Group Seven".into();
    changed.groups[7]
        .members
        .push(FakeMember::User("00u000199".into()));
    let gone = changed.groups.remove(8).id;
    for g in changed.groups.iter_mut() {
        g.members.retain(|m| m != &FakeMember::Group(gone.clone()));
    }
    fake.set_directory(changed.clone());
    fake.clear_requests();

    let report = try_run(&db, connector.as_ref(), OnRemove::Delete)
        .await
        .expect("delta run");
    assert_eq!(report.read_mode, Some("delta"));
    assert_eq!(report.counts.users_deleted, 4);
    assert_eq!(report.counts.users_created, 1);
    assert_eq!(report.counts.groups_deleted, 1);
    assert_eq!(report.counts.groups_updated, 1, "the rename");

    // The same final directory read whole gives the same target.
    let full_db = sqlite().await;
    let full_fake = fake_azure::start(changed.clone(), Knobs::default()).await;
    try_run(&full_db, full_fake.connector().as_ref(), OnRemove::Delete)
        .await
        .expect("full run");
    assert_eq!(target(&db).await, target(&full_db).await);
    assert_eq!(sorted(target(&db).await), expected(&changed, true));

    // Only the renamed group was read again.
    let requests = fake.requests();
    let mut reread: Vec<&str> = requests
        .iter()
        .map(|r| r.path.as_str())
        .filter(|p| !p.ends_with("/delta"))
        .collect();
    reread.dedup();
    let g7 = &changed.groups[7].id;
    assert_eq!(
        reread,
        [
            format!("/v1.0/groups/{g7}"),
            format!("/v1.0/groups/{g7}/members")
        ]
    );
}

#[tokio::test]
async fn an_expired_delta_token_falls_back_to_a_full_read() {
    let dir = Directory::generated(50, 5, 10);
    for status in [410, 400] {
        let fake = fake(dir.clone(), Knobs::default()).await;
        let connector = fake.connector();
        let db = sqlite().await;
        try_run(&db, connector.as_ref(), OnRemove::Delete)
            .await
            .expect("first");
        let old = checkpoint(&db).await;

        let mut changed = dir.clone();
        changed.users.truncate(40);
        changed.groups[0].name = "Renamed".into();
        fake.set_directory(changed.clone());
        fake.expire_delta_tokens_with(status);
        fake.clear_requests();
        let report = try_run(&db, connector.as_ref(), OnRemove::Delete)
            .await
            .expect("fallback");
        assert_eq!(report.read_mode, Some("full"), "{status}");
        assert_eq!(report.outcome, Outcome::Succeeded);
        assert_eq!(sorted(target(&db).await), expected(&changed, true));
        let requests = fake.requests();
        assert!(
            requests[0].param("$deltatoken").is_some(),
            "the stored link was tried first"
        );
        assert!(
            requests
                .iter()
                .any(|r| r.path == "/v1.0/users/delta" && r.param("$select").is_some()),
            "then an initial round"
        );
        assert_ne!(checkpoint(&db).await, old);

        // The new links work.
        let report = run(&db, connector.as_ref()).await;
        assert_eq!(report.read_mode, Some("delta"));
        assert_eq!(report.outcome, Outcome::Unchanged);
    }
}

#[tokio::test]
async fn full_sync_every_forces_a_full_read() {
    let dir = Directory::generated(20, 3, 5);
    let fake = fake(dir.clone(), Knobs::default()).await;
    let db = sqlite().await;
    let mut settings = fake.settings();
    let weekly = fake.connector_with(&settings);
    assert_eq!(run(&db, &weekly).await.read_mode, Some("full"));
    assert_eq!(run(&db, &weekly).await.read_mode, Some("delta"));

    settings.full_sync_every = Duration::from_millis(1);
    let eager = fake.connector_with(&settings);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cp = AzureCheckpoint::parse(&checkpoint(&db).await.unwrap()).unwrap();
    let report = run(&db, &eager).await;
    assert_eq!(report.read_mode, Some("full"));
    assert_eq!(report.outcome, Outcome::Unchanged, "nothing changed");
    let after = AzureCheckpoint::parse(&checkpoint(&db).await.unwrap()).unwrap();
    assert!(after.full_at > cp.full_at, "the full read is recorded");
    // A delta run keeps the time of the last full read.
    assert_eq!(run(&db, &weekly).await.read_mode, Some("delta"));
    let again = AzureCheckpoint::parse(&checkpoint(&db).await.unwrap()).unwrap();
    assert_eq!(again.full_at, after.full_at);
}

#[tokio::test]
async fn extra_attributes_and_filters() {
    let dir = Directory::generated(30, 3, 5);
    let fake = fake(dir.clone(), Knobs::default()).await;
    fake.set_user_properties(
        "00u000000",
        serde_json::from_value(json!({"costCenter": "CC-1000", "department": "Sales"})).unwrap(),
    );
    let mut settings = fake.settings();
    settings.user_properties.push("costCenter".into());
    let connector = fake.connector_with(&settings);
    let db = sqlite().await;
    run(&db, &connector).await;
    let user = query::find_user(db.pool(), "user000000@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.attributes["costCenter"], "CC-1000");
    assert_eq!(user.attributes["department"], "Sales");

    // A changed extra attribute arrives by delta.
    fake.set_user_properties(
        "00u000000",
        serde_json::from_value(json!({"costCenter": "CC-2000", "department": "Sales"})).unwrap(),
    );
    let report = run(&db, &connector).await;
    assert_eq!(report.read_mode, Some("delta"));
    assert_eq!(report.records_read, 1);
    let user = query::find_user(db.pool(), "user000000@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.attributes["costCenter"], "CC-2000");

    // Filters go to the plain listings.
    let mut settings = listing(&fake);
    settings.user_filter = Some("accountEnabled eq true".into());
    settings.group_filter = Some("displayName eq 'Group 1'".into());
    let db = sqlite().await;
    let report = run(&db, &fake.connector_with(&settings)).await;
    assert_eq!(
        report.counts.users_created,
        28 - 3,
        "three suspended users filtered out"
    );
    assert_eq!(report.counts.groups_created, 1);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let requests = fake.requests();
    let users = requests
        .iter()
        .rev()
        .find(|r| r.path == "/v1.0/users" && r.param("$filter").is_some())
        .unwrap();
    assert_eq!(users.param("$filter"), Some("accountEnabled eq true"));
}

#[tokio::test]
async fn the_fake_serves_through_the_conformance_seam() {
    let provider = fake_azure::start_provider(
        Directory::generated(25, 3, 4),
        Knobs {
            page_size: 3,
            ..Knobs::default()
        },
    )
    .await;
    assert_eq!(provider.kind(), "azure");
    let connector = provider.connector();
    assert_eq!(connector.kind(), "azure");
    let db = sqlite().await;
    let report = run(&db, connector.as_ref()).await;
    assert_eq!(report.counts.users_created, 23);
    // 23 users by 3: 8 pages; 3 groups whose 6, 4 and 5 member entries are split by 3
    // into 6 items: 2 pages.
    assert_eq!(provider.stats().requests, 10, "{:?}", provider.stats());
    assert_eq!(provider.stats().tokens_issued, 1);

    let mut dir = Directory::generated(25, 3, 4);
    dir.users[0].status = UserStatus::Suspended;
    provider.set_directory(dir);
    let report = run(&db, connector.as_ref()).await;
    assert_eq!(report.read_mode, Some("delta"));
    assert_eq!(report.counts.users_updated, 1);
}

#[tokio::test]
async fn a_disabled_connector_without_its_secret_refuses_to_start() {
    let mut settings = AzureSettings::new(
        "contoso.onmicrosoft.com",
        "app",
        idsync::config::AzureCredential::Unavailable {
            key: "azure.client_secret".into(),
            reason: "environment variable `X` is not set".into(),
        },
    );
    settings.delta = true;
    let err = AzureConnector::new(&settings).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "cannot read azure.client_secret: environment variable `X` is not set"
    );
}

/// A Graph that answers one scripted initial delta round: the users round sends `ada`
/// twice (renamed in between) and removes `bob`, whom it sent on the first page, as a
/// round may when the directory changes while it is read ("the same resource may appear
/// more than once"; <https://learn.microsoft.com/graph/delta-query-overview>). Serves
/// the token, two users pages and one groups page on loopback.
async fn graph_repeating_in_its_initial_round() -> String {
    use axum::extract::{Query, State};
    use axum::routing::{get, post};

    async fn users(
        State(base): State<String>,
        Query(query): Query<std::collections::HashMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        let user = |id: &str, name: &str| {
            json!({"id": id, "userPrincipalName": format!("{id}@example.com"),
                   "displayName": name, "accountEnabled": true})
        };
        axum::Json(match query.get("$skiptoken").map(String::as_str) {
            None => json!({
                "value": [user("ada", "Ada Lovelace"), user("bob", "Bob"), user("cy", "Cy")],
                "@odata.nextLink": format!("{base}/v1.0/users/delta?$skiptoken=2"),
            }),
            Some(_) => json!({
                "value": [user("ada", "Ada King"),
                          {"id": "bob", "@removed": {"reason": "changed"}}],
                "@odata.deltaLink": format!("{base}/v1.0/users/delta?$deltatoken=u1"),
            }),
        })
    }
    async fn groups(State(base): State<String>) -> axum::Json<serde_json::Value> {
        let member = |id: &str| json!({"@odata.type": "#microsoft.graph.user", "id": id});
        axum::Json(json!({
            "value": [{"id": "g1", "displayName": "Staff",
                       "members@delta": [member("ada"), member("bob"), member("cy")]}],
            "@odata.deltaLink": format!("{base}/v1.0/groups/delta?$deltatoken=g1"),
        }))
    }
    async fn token() -> axum::Json<serde_json::Value> {
        axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "t"}))
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route("/v1.0/users/delta", get(users))
        .route("/v1.0/groups/delta", get(groups))
        .with_state(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn an_initial_round_that_repeats_a_user_and_removes_one_syncs_the_last_state() {
    let base = graph_repeating_in_its_initial_round().await;
    let mut settings = AzureSettings::new(
        "tenant",
        "client",
        idsync::config::AzureCredential::Secret(idsync::config::SecretString::new("secret")),
    );
    settings.token_url = format!("{base}/tenant/oauth2/v2.0/token");
    settings.graph_url = base;
    settings.allow_insecure_http = true;
    let connector = AzureConnector::new(&settings).unwrap();
    let db = sqlite().await;

    let report = run(&db, &connector).await;

    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.read_mode, Some("full"));
    let (users, groups) = target(&db).await;
    assert_eq!(
        users,
        vec![
            ("ada@example.com".into(), true, Some("Ada King".into())),
            ("cy@example.com".into(), true, Some("Cy".into())),
        ]
    );
    assert_eq!(
        groups["Staff"],
        vec!["user:ada@example.com", "user:cy@example.com"]
    );
}
