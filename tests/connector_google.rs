//! The Google Workspace connector against the fake Google (testkit/src/fake_google.rs),
//! through the sync engine into a real SQLite target: full reads over many pages, nested
//! groups, suspended/archived/deleted users, throttling in both of Google's forms, tokens
//! expiring mid-run, and failures (a failing last page, a 403, a delegation refusal) that
//! change nothing and say what to fix.
//!
//! Reads between full ones come from the admin log (Reports API `activities.list`): they
//! re-read only the users and groups its activities name, with a bounded number of
//! requests and no listing, yet end where a full read does; a delegation without the
//! Reports scope (the token refused) makes every read full; deleted users (disabled,
//! their memberships gone, found by `showDeleted=true`) and deleted groups (found by
//! listing every group's id) go; renamed users and groups keep their target rows under
//! the new names; and a user suspended while `include_suspended = false` is removed by
//! the next incremental read, as a full read would leave them out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use idsync::config::{GoogleDirectoryScope, GoogleSettings, MappingConfig, OnRemove};
use idsync::connectors::google::GoogleConnector;
use idsync::connectors::{BatchSink, PullConnector, ReadMode, ReadSummary, SinkError, SourceBatch};
use idsync::db::Db;
use idsync::model::{MemberRef, SourceGroup, SourceUser};
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions, RunReport, SyncError};
use idsync::target::query::{self, UserRow};

use crate::support::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, Listing, UserStatus,
};
use crate::support::fake_google::{
    ADMIN, CLIENT_ID, DenyForm, FakeGoogle, GoogleExtras, NOT_ADMIN, SCOPE_GROUP_RO, SCOPE_REPORTS,
    SCOPE_USER_RO,
};
use crate::support::{effective_names, target_users};

fn mapping(on_remove: OnRemove) -> MappingConfig {
    MappingConfig::pass_through("default", on_remove, 500, 50.0)
}

async fn sync_with(
    db: &Db,
    connector: &dyn PullConnector,
    on_remove: OnRemove,
) -> Result<RunReport, SyncError> {
    sync::sync(
        db,
        "gws",
        &mapping(on_remove),
        connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
}

/// Collects what a read sends.
#[derive(Default)]
struct Collect {
    users: Vec<SourceUser>,
    groups: Vec<SourceGroup>,
}

#[async_trait]
impl BatchSink for Collect {
    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        match batch {
            SourceBatch::Users(users) => self.users.extend(users),
            SourceBatch::Groups(groups) => self.groups.extend(groups),
            other => return Err(SinkError(format!("a full read sent {other:?}"))),
        }
        Ok(())
    }
}

impl Collect {
    fn group(&self, id: &str) -> &SourceGroup {
        self.groups
            .iter()
            .find(|g| g.external_id == id)
            .unwrap_or_else(|| panic!("group {id} was not read"))
    }

    fn user(&self, id: &str) -> Option<&SourceUser> {
        self.users.iter().find(|u| u.external_id == id)
    }
}

async fn read_all(connector: &dyn PullConnector) -> (Result<ReadSummary, String>, Collect) {
    let mut sink = Collect::default();
    let result = connector
        .read(None, &mut sink)
        .await
        .map_err(|e| e.to_string());
    (result, sink)
}

fn user(id: &str, name: &str, status: UserStatus) -> FakeUser {
    FakeUser {
        id: id.to_string(),
        user_name: format!("{name}@example.com"),
        email: format!("{name}@example.com"),
        given_name: name[..1].to_uppercase() + &name[1..],
        family_name: "Example".to_string(),
        status,
    }
}

fn group(id: &str, name: &str, members: Vec<FakeMember>) -> FakeGroup {
    FakeGroup {
        id: id.to_string(),
        name: name.to_string(),
        members,
    }
}

fn u(id: &str) -> FakeMember {
    FakeMember::User(id.to_string())
}

fn g(id: &str) -> FakeMember {
    FakeMember::Group(id.to_string())
}

/// alice, bob, carol (suspended), dave (deleted), svc (a service account), erin (guest),
/// frank; Engineering ⊃ Backend (nested); Backend = bob, carol, dave, svc; Everyone.
fn small() -> Directory {
    Directory {
        users: vec![
            user("101", "alice", UserStatus::Active),
            user("102", "bob", UserStatus::Active),
            user("103", "carol", UserStatus::Suspended),
            user("104", "dave", UserStatus::Deleted),
            user("105", "svc", UserStatus::Service),
            user("106", "erin", UserStatus::Guest),
            user("107", "frank", UserStatus::Active),
        ],
        groups: vec![
            group("g-eng", "Engineering", vec![u("101"), g("g-backend")]),
            group(
                "g-backend",
                "Backend",
                vec![u("102"), u("103"), u("104"), u("105")],
            ),
            group(
                "g-all",
                "Everyone",
                vec![u("101"), u("102"), u("103"), u("106"), u("107")],
            ),
        ],
    }
}

async fn start(directory: Directory, knobs: Knobs) -> Arc<FakeGoogle> {
    FakeGoogle::start(directory, knobs, GoogleExtras::default()).await
}

fn ids(users: &[SourceUser]) -> Vec<&str> {
    users.iter().map(|u| u.external_id.as_str()).collect()
}

/// The users a group holds, nesting resolved, as the directory says (service and deleted
/// users are not Workspace users).
fn expected_effective(dir: &Directory, group_id: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut visited = BTreeSet::new();
    let mut stack = vec![group_id.to_string()];
    while let Some(id) = stack.pop() {
        if !visited.insert(id.clone()) {
            continue;
        }
        let group = dir.groups.iter().find(|g| g.id == id).expect("group");
        for member in &group.members {
            match member {
                FakeMember::User(uid) => {
                    let user = dir.user(uid).expect("user");
                    if !matches!(user.status, UserStatus::Service | UserStatus::Deleted) {
                        out.insert(user.user_name.clone());
                    }
                }
                FakeMember::Group(gid) => stack.push(gid.clone()),
            }
        }
    }
    out
}

#[tokio::test]
async fn a_full_read_over_many_pages_lands_in_sqlite() {
    // 60 users (one service account, one deleted, every 10th suspended, user 24 a guest),
    // 5 groups of 12 users, groups 0 ⊃ 1 ⊃ 2 ⊃ 0 nested in a cycle; 7 items per page.
    let dir = Directory::generated(60, 5, 12);
    let fake = start(
        dir.clone(),
        Knobs {
            page_size: 7,
            ..Knobs::default()
        },
    )
    .await;
    let db = crate::support::sqlite().await;
    let connector = fake.connector();
    let report = sync_with(&db, connector.as_ref(), OnRemove::Disable)
        .await
        .expect("sync");
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.read_mode, Some("full"));
    assert_eq!(report.counts.users_created, 58, "{report:?}");
    assert_eq!(report.counts.groups_created, 5);

    let users = target_users(&db).await;
    let active = |name: &str| {
        users
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("{name} in the target"))
    };
    assert!(active("user000000@example.com"));
    assert!(!active("user000009@example.com"), "suspended → inactive");
    assert!(active("user000024@example.com"), "guests are synced");
    assert!(
        !users.iter().any(|(n, _)| n == "user000003@example.com"),
        "service accounts are not Workspace users"
    );
    assert!(
        !users.iter().any(|(n, _)| n == "user000005@example.com"),
        "deleted users are not listed"
    );
    for (index, group) in dir.groups.iter().enumerate() {
        assert_eq!(
            effective_names(&db, &group.name).await,
            expected_effective(&dir, &group.id),
            "group {index}"
        );
    }

    // Every listing asked for Google's maximum page size; the fake's cap made many pages.
    assert_eq!(fake.max_results_asked("users"), Some(500));
    assert_eq!(fake.max_results_asked("groups"), Some(200));
    assert_eq!(fake.max_results_asked("members"), Some(200));
    let stats = fake.stats();
    // 9 pages of users, 1 of groups, 2 per group of members.
    assert_eq!(stats.requests, 9 + 1 + 5 * 2, "{stats:?}");
    assert_eq!(stats.tokens_issued, 1);

    let again = sync_with(&db, connector.as_ref(), OnRemove::Disable)
        .await
        .expect("second sync");
    assert_eq!(again.outcome, Outcome::Unchanged, "{again:?}");
}

#[tokio::test]
async fn users_groups_and_members_map_to_the_common_model() {
    let fake = FakeGoogle::start(
        small(),
        Knobs::default(),
        GoogleExtras {
            archived: vec!["107".to_string()],
            external_members: true,
            ..GoogleExtras::default()
        },
    )
    .await;
    let (summary, read) = read_all(fake.connector().as_ref()).await;
    assert_eq!(
        summary.expect("read"),
        ReadSummary {
            mode: ReadMode::Full,
            complete: true,
            next_checkpoint: None
        }
    );
    assert_eq!(ids(&read.users), ["101", "102", "103", "106", "107"]);
    let alice = read.user("101").expect("alice");
    assert_eq!(alice.user_name, "alice@example.com");
    assert_eq!(alice.display_name.as_deref(), Some("Alice Example"));
    assert_eq!(alice.given_name.as_deref(), Some("Alice"));
    assert_eq!(alice.family_name.as_deref(), Some("Example"));
    assert_eq!(alice.primary_email(), Some("alice@example.com"));
    assert_eq!(alice.emails.len(), 2);
    assert!(alice.active);
    // projection=full: custom schemas reach the mappings.
    assert_eq!(
        alice.attributes["customSchemas"]["Employment"]["costCenter"],
        "cc-101"
    );
    assert!(!read.user("103").expect("carol").active, "suspended");
    assert!(!read.user("107").expect("frank").active, "archived");
    assert!(read.user("106").expect("erin").active, "guest");

    // Engineering holds the CUSTOMER entry and an external gmail.com account: left out.
    assert_eq!(
        read.group("g-eng").members,
        [MemberRef::user("101"), MemberRef::group("g-backend")]
    );
    assert_eq!(read.group("g-eng").display_name, "Engineering");
    assert_eq!(
        read.group("g-eng").attributes["email"],
        "engineering@example.com"
    );
    // dave is deleted (no longer a member); svc is a service account, not a listed user.
    assert_eq!(
        read.group("g-backend").members,
        [MemberRef::user("102"), MemberRef::user("103")]
    );
    assert_eq!(read.group("g-all").members.len(), 5);

    // Left out by setting: suspended and archived users, and their memberships.
    let mut settings = fake.settings();
    settings.include_suspended = false;
    settings.include_archived = false;
    let (summary, read) = read_all(&FakeGoogle::connector_for(&settings)).await;
    summary.expect("read");
    assert_eq!(ids(&read.users), ["101", "102", "106"]);
    assert_eq!(read.group("g-backend").members, [MemberRef::user("102")]);
}

#[tokio::test]
async fn deleted_users_are_removed_by_the_next_full_read() {
    let fake = start(small(), Knobs::default()).await;
    let db = crate::support::sqlite().await;
    let connector = fake.connector();
    let first = sync_with(&db, connector.as_ref(), OnRemove::Delete)
        .await
        .expect("sync");
    assert_eq!(first.counts.users_created, 5);
    assert!(
        effective_names(&db, "Engineering")
            .await
            .contains("bob@example.com")
    );

    let mut dir = small();
    dir.users[1].status = UserStatus::Deleted; // bob
    fake.set_directory(dir);
    let second = sync_with(&db, connector.as_ref(), OnRemove::Delete)
        .await
        .expect("sync");
    assert_eq!(second.outcome, Outcome::Succeeded, "{second:?}");
    assert_eq!(second.counts.users_deleted, 1, "{second:?}");
    let names: Vec<String> = target_users(&db).await.into_iter().map(|u| u.0).collect();
    assert_eq!(
        names,
        [
            "alice@example.com",
            "carol@example.com",
            "erin@example.com",
            "frank@example.com"
        ]
    );
    assert_eq!(
        effective_names(&db, "Engineering").await,
        BTreeSet::from([
            "alice@example.com".to_string(),
            "carol@example.com".to_string()
        ])
    );
}

#[tokio::test]
async fn throttling_in_both_of_googles_forms_is_retried() {
    let dir = Directory::generated(40, 4, 10);
    let fake = start(
        dir,
        Knobs {
            page_size: 5,
            throttle_every: Some(3),
            ..Knobs::default()
        },
    )
    .await;
    let (summary, read) = read_all(fake.connector().as_ref()).await;
    assert!(summary.expect("read completes").complete);
    assert_eq!(read.users.len(), 38);
    assert_eq!(read.groups.len(), 4);
    let (as_429, as_403) = fake.throttled_by_form();
    assert!(as_429 >= 2 && as_403 >= 2, "429s {as_429}, 403s {as_403}");
    assert_eq!(fake.stats().throttled, as_429 + as_403);
}

#[tokio::test]
async fn tokens_expiring_mid_run_are_replaced() {
    let fake = start(
        Directory::generated(30, 3, 10),
        Knobs {
            page_size: 4,
            token_lifetime_requests: Some(3),
            ..Knobs::default()
        },
    )
    .await;
    let db = crate::support::sqlite().await;
    let report = sync_with(&db, fake.connector().as_ref(), OnRemove::Disable)
        .await
        .expect("sync");
    assert_eq!(report.counts.users_created, 28);
    let stats = fake.stats();
    assert!(stats.tokens_issued >= 4, "{stats:?}");
    assert!(fake.token_errors().is_empty());
}

#[tokio::test]
async fn a_failing_last_page_changes_nothing() {
    for listing in [Listing::Users, Listing::Groups, Listing::Members] {
        let fake = start(
            small(),
            Knobs {
                page_size: 2,
                ..Knobs::default()
            },
        )
        .await;
        let db = crate::support::sqlite().await;
        let connector = fake.connector();
        sync_with(&db, connector.as_ref(), OnRemove::Delete)
            .await
            .expect("first sync");
        let before_users = target_users(&db).await;
        let before_counts = query::table_counts(db.pool()).await.expect("counts");

        // Alice leaves and a newcomer arrives, but the last page of `listing` fails.
        let mut dir = small();
        dir.users.remove(0);
        dir.users.push(user("108", "grace", UserStatus::Active));
        fake.set_directory(dir);
        fake.set_knobs(Knobs {
            page_size: 2,
            fail_last_page: Some(listing),
            ..Knobs::default()
        });
        let err = sync_with(&db, connector.as_ref(), OnRemove::Delete)
            .await
            .expect_err("the read fails");
        let message = err.to_string();
        assert!(
            matches!(err, SyncError::Read { .. }),
            "{listing:?}: {message}"
        );
        assert!(message.contains("HTTP 503"), "{listing:?}: {message}");
        assert_eq!(target_users(&db).await, before_users, "{listing:?}");
        assert_eq!(
            query::table_counts(db.pool()).await.expect("counts"),
            before_counts,
            "{listing:?}"
        );
    }
}

#[tokio::test]
async fn a_forbidden_listing_names_the_scope_and_the_admin_privilege() {
    let cases = [
        (
            Listing::Users,
            SCOPE_USER_RO,
            "Users › Read",
            "listing users",
        ),
        (
            Listing::Groups,
            SCOPE_GROUP_RO,
            "Groups › Read",
            "listing groups",
        ),
        (
            Listing::Members,
            SCOPE_GROUP_RO,
            "Groups › Read",
            "listing the members of group",
        ),
    ];
    for (listing, scope, privilege, action) in cases {
        let fake = start(
            small(),
            Knobs {
                deny: Some(listing),
                ..Knobs::default()
            },
        )
        .await;
        assert_eq!(fake.missing_permission_hint(), scope);
        let db = crate::support::sqlite().await;
        let err = sync_with(&db, fake.connector().as_ref(), OnRemove::Disable)
            .await
            .expect_err("403 fails the read");
        let message = err.to_string();
        assert!(message.contains(action), "{message}");
        assert!(message.contains(scope), "{message}");
        assert!(message.contains(privilege), "{message}");
        assert!(message.contains(ADMIN), "{message}");
        assert!(message.contains("HTTP 403"), "{message}");
        assert_eq!(
            query::table_counts(db.pool()).await.expect("counts"),
            (0, 0, 0, 0)
        );
    }

    // A token without the scope: Google's insufficientPermissions form.
    let fake = FakeGoogle::start(
        small(),
        Knobs {
            deny: Some(Listing::Groups),
            ..Knobs::default()
        },
        GoogleExtras {
            deny_form: DenyForm::InsufficientScope,
            ..GoogleExtras::default()
        },
    )
    .await;
    let (result, _) = read_all(fake.connector().as_ref()).await;
    let message = result.expect_err("403");
    assert!(
        message.contains(&format!(
            "the access token lacks the scope {SCOPE_GROUP_RO}: add it to `scopes` in [google] \
             and to the domain-wide delegation of client ID {CLIENT_ID}"
        )),
        "{message}"
    );

    // The same, for real: the connector asks only for the users scope.
    let fake = start(small(), Knobs::default()).await;
    let mut settings = fake.settings();
    settings.scopes = vec![SCOPE_USER_RO.to_string()];
    let (result, read) = read_all(&FakeGoogle::connector_for(&settings)).await;
    let message = result.expect_err("403");
    assert!(message.contains("listing groups"), "{message}");
    assert!(message.contains("lacks the scope"), "{message}");
    assert_eq!(read.users.len(), 5, "users were read before groups failed");
}

#[tokio::test]
async fn a_refused_delegation_says_which_client_and_scopes_to_authorise() {
    let fake = FakeGoogle::start(
        small(),
        Knobs::default(),
        GoogleExtras {
            allowed_scopes: vec![SCOPE_USER_RO.to_string()],
            ..GoogleExtras::default()
        },
    )
    .await;
    let db = crate::support::sqlite().await;
    let err = sync_with(&db, fake.connector().as_ref(), OnRemove::Disable)
        .await
        .expect_err("no token");
    let message = err.to_string();
    let hint = format!(
        "domain-wide delegation is not granted for these scopes: in the Google Admin console \
         (Security › Access and data control › API controls › Domain-wide delegation) authorise \
         client ID {CLIENT_ID} for {SCOPE_USER_RO},{SCOPE_GROUP_RO}"
    );
    assert!(message.contains(&hint), "{message}");
    assert!(message.contains("unauthorized_client"), "{message}");
    assert!(!message.contains("PRIVATE KEY"), "{message}");
    assert_eq!(fake.token_errors(), ["unauthorized_client"]);
    assert_eq!(fake.stats().requests, 0);

    let checks = fake.connector().diagnose().await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!((checks[0].check, checks[0].ok), ("token", false));
    assert!(checks[0].detail.starts_with(&hint), "{}", checks[0].detail);
}

#[tokio::test]
async fn diagnose_names_what_fails() {
    let fake = start(small(), Knobs::default()).await;
    let checks = fake.connector().diagnose().await;
    let steps: Vec<(&str, bool)> = checks.iter().map(|c| (c.check, c.ok)).collect();
    assert_eq!(
        steps,
        [
            ("token", true),
            ("list users", true),
            ("list groups", true),
            ("list group members", true)
        ],
        "{checks:?}"
    );
    assert!(checks[0].detail.contains(ADMIN), "{}", checks[0].detail);

    let denied = start(
        small(),
        Knobs {
            deny: Some(Listing::Members),
            ..Knobs::default()
        },
    )
    .await;
    let checks = denied.connector().diagnose().await;
    assert_eq!(checks.len(), 4);
    assert_eq!(
        (checks[3].check, checks[3].ok),
        ("list group members", false)
    );
    assert!(
        checks[3].detail.starts_with(&format!(
            "forbidden: the admin `subject` {ADMIN} needs an admin role with the Groups › Read \
             privilege, the token the scope {SCOPE_GROUP_RO}, and the Admin SDK API must be \
             enabled in Google Cloud project idsync-test"
        )),
        "{}",
        checks[3].detail
    );

    // A subject who is a user but no admin: every listing is forbidden.
    let mut settings = fake.settings();
    settings.subject = NOT_ADMIN.to_string();
    let checks = FakeGoogle::connector_for(&settings).diagnose().await;
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert_eq!((checks[1].check, checks[1].ok), ("list users", false));
    assert!(
        checks[1].detail.contains("Users › Read"),
        "{}",
        checks[1].detail
    );

    // A subject the account does not know: the token is refused.
    settings.subject = "nobody@example.com".to_string();
    let checks = FakeGoogle::connector_for(&settings).diagnose().await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(
        checks[0]
            .detail
            .starts_with("`subject` nobody@example.com is not a user of the Workspace account"),
        "{}",
        checks[0].detail
    );

    // An empty account: nothing to try members on.
    let empty = start(Directory::default(), Knobs::default()).await;
    let checks = empty.connector().diagnose().await;
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert_eq!(checks[3].detail, "no group to try it on");
}

#[tokio::test]
async fn an_empty_account_and_the_customer_or_domain_choice() {
    // Google leaves the `users`/`groups` keys out of an empty page.
    let empty = start(Directory::default(), Knobs::default()).await;
    let (summary, read) = read_all(empty.connector().as_ref()).await;
    assert!(summary.expect("read").complete);
    assert!(read.users.is_empty() && read.groups.is_empty());

    let fake = start(small(), Knobs::default()).await;
    let mut settings = fake.settings();
    settings.directory = GoogleDirectoryScope::Domain("example.com".to_string());
    let (summary, read) = read_all(&FakeGoogle::connector_for(&settings)).await;
    summary.expect("read by domain");
    assert_eq!(read.users.len(), 5);

    settings.directory = GoogleDirectoryScope::Customer("C01abcd23".to_string());
    let (summary, _) = read_all(&FakeGoogle::connector_for(&settings)).await;
    summary.expect("read by customer id");

    settings.directory = GoogleDirectoryScope::Customer("C99nope".to_string());
    let (summary, _) = read_all(&FakeGoogle::connector_for(&settings)).await;
    let message = summary.expect_err("400");
    assert!(
        message.contains("check `customer` = `C99nope` in [google]"),
        "{message}"
    );
}

/// The wiring: a configuration tree with a `kind = "google"` connector, loaded and built
/// the way `idsync sync` does, reads the fake.
#[tokio::test]
async fn a_configured_google_connector_reads_the_fake() {
    let fake = start(small(), Knobs::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("connectors")).unwrap();
    std::fs::create_dir_all(root.join("mappings")).unwrap();
    std::fs::write(root.join("idsync.toml"), "").unwrap();
    std::fs::write(
        root.join("mappings/default.toml"),
        include_str!("../mappings/default.toml"),
    )
    .unwrap();
    std::fs::write(
        root.join("google-key.json"),
        crate::support::fake_google::KEY_FILE,
    )
    .unwrap();
    std::fs::write(
        root.join("connectors/gws.toml"),
        format!(
            "kind = \"google\"\nmapping = \"default\"\n[google]\n\
             service_account_key = {{ file = \"google-key.json\" }}\nsubject = \"{ADMIN}\"\n\
             token_url = \"{}\"\napi_base_url = \"{}\"\nrequests_per_second = 1000\nallow_insecure_http = true\n",
            fake.token_url(),
            fake.base_url()
        ),
    )
    .unwrap();
    let config = idsync::config::Config::load(&root.join("idsync.toml")).expect("config loads");
    let connector = config.connectors["gws"].build().expect("builds");
    assert_eq!(connector.kind(), "google");
    let (summary, read) = read_all(connector.as_ref()).await;
    assert!(summary.expect("read").complete);
    assert_eq!(read.users.len(), 5);
    assert_eq!(read.groups.len(), 3);
}

// ---------------------------------------------------------------------------------------
// Incremental reads from the admin log (Reports API `activities.list`, application admin)

/// Where the fake serves the Directory API; [`served_since`] strips it from the paths.
const DIRECTORY_API: &str = "/admin/directory/v1";

/// Where the fake serves the admin log (the Reports API's `activities.list`).
const ADMIN_LOG: &str = "/admin/reports/v1/activity/users/all/applications/admin";

/// A user of the target: active (and not removed), given name.
type TargetUser = (bool, Option<String>);

/// The target as (user name -> state) and (group name -> direct members, users as
/// `user:name` and groups as `group:name`).
type Snapshot = (
    BTreeMap<String, TargetUser>,
    BTreeMap<String, BTreeSet<String>>,
);

async fn snapshot(db: &Db) -> Snapshot {
    let pool = db.pool();
    let users = query::list_users(pool, Some("gws"), 1_000_000, 0)
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
    for group in query::list_groups(pool, Some("gws"), 1_000_000, 0)
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

/// What a full read (`activity_reports = false`, otherwise `settings`) of the fake's
/// present directory puts into a fresh target.
async fn full_read(settings: &GoogleSettings) -> Snapshot {
    let mut settings = settings.clone();
    settings.activity_reports = false;
    let fresh = crate::support::sqlite().await;
    let report = sync_with(
        &fresh,
        &FakeGoogle::connector_for(&settings),
        OnRemove::Disable,
    )
    .await
    .expect("full read");
    assert_eq!(report.read_mode, Some("full"));
    snapshot(&fresh).await
}

/// `target` without the users a fresh full read never saw and the target holds only
/// disabled (removed from the source, kept inactive by `OnRemove::Disable`).
fn without_disabled_leftovers(target: &Snapshot, fresh: &Snapshot) -> Snapshot {
    let users = target
        .0
        .iter()
        .filter(|(name, (active, _))| *active || fresh.0.contains_key(*name))
        .map(|(name, state)| (name.clone(), state.clone()))
        .collect();
    (users, target.1.clone())
}

/// The paths (with their query) the fake served from position `from` of its log on:
/// Directory API paths without their `/admin/directory/v1` root (`/users?...`,
/// `/groups/{key}/members?...`), the admin log under [`ADMIN_LOG`].
fn served_since(fake: &FakeGoogle, from: usize) -> Vec<String> {
    let root = fake.base_url();
    fake.served()[from..]
        .iter()
        .map(|(url, _)| {
            let path = url.strip_prefix(&root).unwrap_or(url);
            path.strip_prefix(DIRECTORY_API).unwrap_or(path).to_string()
        })
        .collect()
}

/// The small account, a connector with the default settings as `adjust` leaves them, and
/// a target after the connector's first read (a full one).
struct Synced {
    fake: Arc<FakeGoogle>,
    settings: GoogleSettings,
    connector: GoogleConnector,
    db: crate::support::TestDb,
}

async fn synced_small(adjust: impl FnOnce(&mut GoogleSettings)) -> Synced {
    let fake = start(small(), Knobs::default()).await;
    let mut settings = fake.settings();
    adjust(&mut settings);
    let connector = FakeGoogle::connector_for(&settings);
    let db = crate::support::sqlite().await;
    let first = sync_with(&db, &connector, OnRemove::Disable)
        .await
        .expect("first sync");
    assert_eq!(first.read_mode, Some("full"));
    Synced {
        fake,
        settings,
        connector,
        db,
    }
}

/// Serves `dir` (the fake logs `activities` admin-log entries for the change, named by
/// `what`) and runs `connector` again, which must read incrementally: its report, and
/// the paths it asked for.
async fn read_change(
    fake: &FakeGoogle,
    db: &Db,
    connector: &GoogleConnector,
    dir: Directory,
    activities: usize,
    what: &str,
) -> (RunReport, Vec<String>) {
    let logged = fake.activity_count();
    fake.set_directory(dir);
    assert_eq!(fake.activity_count() - logged, activities, "{what}");
    let log_at = fake.served().len();
    let report = sync_with(db, connector, OnRemove::Disable)
        .await
        .expect("the run after the change");
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.read_mode, Some("delta"));
    (report, served_since(fake, log_at))
}

fn count(paths: &[String], prefix: &str) -> usize {
    paths.iter().filter(|p| p.starts_with(prefix)).count()
}

/// `groups.get` requests: `/groups/{key}` without `/members`.
fn group_gets(paths: &[String]) -> usize {
    paths
        .iter()
        .filter(|p| p.starts_with("/groups/") && !p.contains("/members"))
        .count()
}

/// The target row of `user_name`.
async fn target_user(db: &Db, user_name: &str) -> UserRow {
    query::find_user(db.pool(), user_name)
        .await
        .expect("find user")
        .unwrap_or_else(|| panic!("{user_name} in the target"))
}

#[tokio::test]
async fn the_admin_log_reads_only_what_changed() {
    let dir = Directory::generated(5000, 500, 20);
    let fake = start(dir.clone(), Knobs::default()).await;
    let settings = fake.settings();
    assert!(settings.activity_reports, "on by default");
    let connector = FakeGoogle::connector_for(&settings);
    let db = crate::support::sqlite().await;

    let first = sync_with(&db, &connector, OnRemove::Disable)
        .await
        .expect("first sync");
    assert_eq!(first.outcome, Outcome::Succeeded, "{first:?}");
    assert_eq!(first.read_mode, Some("full"));
    let first_requests = fake.stats().requests;

    // 100 changes: 50 users get a new given name, and 50 groups (none holding groups)
    // each gain one existing active user who was not their member.
    let changes = dir.with_hundred_changes();
    let changed = changes.directory.clone();
    fake.set_directory(changed);
    assert_eq!(
        fake.activity_count(),
        100,
        "one CHANGE_FIRST_NAME or ADD_GROUP_MEMBER per change"
    );

    let log_at = fake.served().len();
    let second = sync_with(&db, &connector, OnRemove::Disable)
        .await
        .expect("second sync");
    assert_eq!(second.outcome, Outcome::Succeeded, "{second:?}");
    assert_eq!(second.read_mode, Some("delta"));
    let second_requests = fake.stats().requests - first_requests;
    // What the delta needs (token requests are not counted by the fake's stats): the
    // activities, `maxResults=1000` a page, so the 100 fit one page with no next token
    // (100 / 1000 + 1 = 1); each renamed user again by address (50 users.get, its
    // CHANGE_FIRST_NAME names only the user); each group with a new member again by
    // address (ADD_GROUP_MEMBER names the group; the member's USER_EMAIL is not re-read):
    // its record and one page of members (50 x (groups.get + members.list), 21 members
    // fit one page of 200). 151 in all, against 513 for the full read (10 pages of
    // users, 3 of groups, 500 member pages).
    let activity_pages = fake.activity_count() / 1000 + 1;
    let bound = activity_pages + 50 + 50 * 2;
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
    assert_eq!(count(&paths, ADMIN_LOG), 1, "{paths:#?}");
    assert_eq!(count(&paths, "/users/"), 50, "users.get: {paths:#?}");
    assert_eq!(group_gets(&paths), 50, "groups.get: {paths:#?}");
    for (id, _, _) in &changes.joined {
        assert_eq!(count(&paths, &format!("/groups/{id}/members?")), 1, "{id}");
    }
    assert_eq!(
        count(&paths, "/groups/00g00000/members?"),
        0,
        "an unchanged group is not read again"
    );

    // The target is what a full read of the changed account gives.
    let target = snapshot(&db).await;
    assert_eq!(target, full_read(&settings).await);
    for (name, given) in &changes.renamed {
        assert_eq!(
            target_user(&db, name).await.given_name.as_deref(),
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
async fn without_the_reports_scope_every_read_is_full() {
    let fake = start(small(), Knobs::default()).await;
    // The domain-wide delegation does not authorise the Reports API's scope.
    let mut extras = GoogleExtras::default();
    extras.allowed_scopes.retain(|s| s != SCOPE_REPORTS);
    fake.set_extras(extras);
    let settings = fake.settings();
    assert!(settings.activity_reports, "on by default");
    let connector = FakeGoogle::connector_for(&settings);
    let db = crate::support::sqlite().await;

    let first = sync_with(&db, &connector, OnRemove::Disable)
        .await
        .expect("first sync: the directory token is enough");
    assert_eq!(first.read_mode, Some("full"));
    assert!(
        fake.token_errors().is_empty(),
        "a read without a checkpoint asks for no Reports token: {:?}",
        fake.token_errors()
    );

    let mut dir = small();
    dir.users[0].given_name = "Alicia".into(); // alice
    fake.set_directory(dir);
    assert_eq!(fake.activity_count(), 1, "the admin log has the change");

    let log_at = fake.served().len();
    let second = sync_with(&db, &connector, OnRemove::Disable)
        .await
        .expect("second sync falls back to a full read");
    assert_eq!(second.outcome, Outcome::Succeeded, "{second:?}");
    assert_eq!(second.read_mode, Some("full"));
    assert_eq!(
        fake.token_errors(),
        ["unauthorized_client"],
        "the Reports token was asked for and refused"
    );
    let paths = served_since(&fake, log_at);
    assert_eq!(
        count(&paths, ADMIN_LOG),
        0,
        "no token, no activities: {paths:#?}"
    );
    assert_eq!(
        count(&paths, "/users?"),
        1,
        "users listed in full: {paths:#?}"
    );
    assert_eq!(
        count(&paths, "/groups?"),
        1,
        "groups listed in full: {paths:#?}"
    );
    assert_eq!(
        target_user(&db, "alice@example.com")
            .await
            .given_name
            .as_deref(),
        Some("Alicia")
    );
    assert_eq!(snapshot(&db).await, full_read(&settings).await);
}

#[tokio::test]
async fn deleted_users_and_groups_go() {
    let Synced {
        fake,
        settings,
        connector,
        db,
    } = synced_small(|_| {}).await;
    let (users, groups) = snapshot(&db).await;
    assert!(users["alice@example.com"].0);
    assert!(groups["Engineering"].contains("user:alice@example.com"));
    assert!(groups["Everyone"].contains("user:alice@example.com"));

    // alice (a member of Engineering and Everyone) is deleted, and so is Everyone. Google
    // logs DELETE_USER and DELETE_GROUP, nothing for the memberships that go with them,
    // and neither can be read by its address any more.
    let mut dir = small();
    dir.users.retain(|u| u.id != "101");
    dir.groups.retain(|g| g.id != "g-all");
    let (_, paths) = read_change(&fake, &db, &connector, dir, 2, "DELETE_USER, DELETE_GROUP").await;
    assert_eq!(
        count(&paths, "/users?"),
        1,
        "one user listing, of the deleted users: {paths:#?}"
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with("/users?") && p.contains("showDeleted=true"))
            .count(),
        1,
        "{paths:#?}"
    );
    assert_eq!(
        count(&paths, "/groups?"),
        1,
        "one listing of every group's id: {paths:#?}"
    );
    assert_eq!(
        paths.iter().filter(|p| p.contains("/members")).count(),
        0,
        "no group's members read again: {paths:#?}"
    );

    let target = snapshot(&db).await;
    let (users, groups) = &target;
    assert!(
        !users["alice@example.com"].0,
        "alice is disabled (OnRemove::Disable)"
    );
    assert!(
        groups
            .values()
            .all(|members| !members.contains("user:alice@example.com")),
        "no group lists alice: {groups:?}"
    );
    assert!(
        !effective_names(&db, "Engineering")
            .await
            .contains("alice@example.com")
    );
    assert_eq!(
        groups.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Backend", "Engineering"],
        "Everyone is gone"
    );
    let fresh = full_read(&settings).await;
    assert_eq!(without_disabled_leftovers(&target, &fresh), fresh);
}

#[tokio::test]
async fn a_renamed_user_and_a_renamed_group_are_followed() {
    let Synced {
        fake,
        settings,
        connector,
        db,
    } = synced_small(|_| {}).await;
    let users_before = target_users(&db).await.len();
    let bob = target_user(&db, "bob@example.com").await;
    let backend = query::find_group(db.pool(), "Backend")
        .await
        .expect("find group")
        .expect("Backend in the target");

    // bob's primary address changes (RENAME_USER), and Backend becomes Platform (its
    // address follows the name: CHANGE_GROUP_EMAIL, then CHANGE_GROUP_NAME).
    let mut dir = small();
    dir.users[1].user_name = "robert@example.com".into(); // bob
    dir.users[1].email = "robert@example.com".into();
    dir.groups[1].name = "Platform".into(); // Backend
    let (_, paths) = read_change(
        &fake,
        &db,
        &connector,
        dir,
        3,
        "RENAME_USER, CHANGE_GROUP_EMAIL, CHANGE_GROUP_NAME",
    )
    .await;
    assert_eq!(count(&paths, "/users?"), 0, "no user listing: {paths:#?}");
    assert_eq!(count(&paths, "/groups?"), 0, "no group listing: {paths:#?}");

    // The same rows, renamed.
    assert_eq!(
        target_users(&db).await.len(),
        users_before,
        "no new user for the new address"
    );
    let robert = target_user(&db, "robert@example.com").await;
    assert_eq!(robert.id, bob.id, "the same user row");
    assert!(robert.active);
    assert!(
        query::find_user(db.pool(), "bob@example.com")
            .await
            .expect("find user")
            .is_none(),
        "the old address is gone"
    );
    let platform = query::find_group(db.pool(), "Platform")
        .await
        .expect("find group")
        .expect("Platform in the target");
    assert_eq!(platform.id, backend.id, "the same group row");
    let target = snapshot(&db).await;
    let (_, groups) = &target;
    assert!(!groups.contains_key("Backend"), "{groups:?}");
    assert!(
        groups["Engineering"].contains("group:Platform"),
        "{groups:?}"
    );
    assert!(
        groups["Platform"].contains("user:robert@example.com"),
        "{groups:?}"
    );
    assert!(
        groups["Everyone"].contains("user:robert@example.com"),
        "{groups:?}"
    );
    assert!(
        effective_names(&db, "Engineering")
            .await
            .contains("robert@example.com")
    );
    assert_eq!(target, full_read(&settings).await);
}

#[tokio::test]
async fn suspended_users_left_out_by_setting_are_removed_incrementally() {
    let Synced {
        fake,
        settings,
        connector,
        db,
    } = synced_small(|s| s.include_suspended = false).await;
    let (users, groups) = snapshot(&db).await;
    assert!(
        !users.contains_key("carol@example.com"),
        "suspended: left out"
    );
    assert!(users["alice@example.com"].0);
    assert!(groups["Everyone"].contains("user:alice@example.com"));

    let mut dir = small();
    dir.users[0].status = UserStatus::Suspended; // alice
    let (_, paths) = read_change(&fake, &db, &connector, dir, 1, "SUSPEND_USER").await;
    assert_eq!(count(&paths, "/users?"), 0, "no user listing: {paths:#?}");
    assert_eq!(count(&paths, "/groups?"), 0, "no group listing: {paths:#?}");

    let target = snapshot(&db).await;
    assert!(
        !target.0["alice@example.com"].0,
        "alice is no longer active"
    );
    assert!(
        target
            .1
            .values()
            .all(|members| !members.contains("user:alice@example.com")),
        "no group lists alice: {:?}",
        target.1
    );
    // A full read with the same settings leaves alice out; the target keeps her disabled.
    let fresh = full_read(&settings).await;
    assert!(!fresh.0.contains_key("alice@example.com"));
    assert_eq!(without_disabled_leftovers(&target, &fresh), fresh);
}

/// A user left out while suspended (`include_suspended = false`) is in no group of the
/// mirror; unsuspended, the incremental read brings them back into their groups too, as
/// a full read would (UNSUSPEND_USER names only the user, so their groups are listed).
#[tokio::test]
async fn users_brought_back_rejoin_their_groups_incrementally() {
    let Synced {
        fake,
        settings,
        connector,
        db,
    } = synced_small(|s| s.include_suspended = false).await;
    assert!(!snapshot(&db).await.0.contains_key("carol@example.com"));

    let mut dir = small();
    dir.users[2].status = UserStatus::Active; // carol
    let (_, paths) = read_change(&fake, &db, &connector, dir, 1, "UNSUSPEND_USER").await;
    assert_eq!(count(&paths, "/groups?userKey=103"), 1, "{paths:#?}");

    let target = snapshot(&db).await;
    assert!(target.0["carol@example.com"].0, "carol is active");
    for group in ["Backend", "Everyone"] {
        assert!(
            target.1[group].contains("user:carol@example.com"),
            "{group}: {:?}",
            target.1[group]
        );
    }
    assert_eq!(target, full_read(&settings).await);
}
