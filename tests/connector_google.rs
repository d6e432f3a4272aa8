//! The Google Workspace connector against the fake Google (testkit/src/fake_google.rs),
//! through the sync engine into a real SQLite target: full reads over many pages, nested
//! groups, suspended/archived/deleted users, throttling in both of Google's forms, tokens
//! expiring mid-run, and failures (a failing last page, a 403, a delegation refusal) that
//! change nothing and say what to fix.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use idsync::config::{GoogleDirectoryScope, MappingConfig, OnRemove};
use idsync::connectors::{BatchSink, PullConnector, ReadMode, ReadSummary, SinkError, SourceBatch};
use idsync::db::Db;
use idsync::model::{MemberRef, SourceGroup, SourceUser};
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions, RunReport, SyncError};
use idsync::target::query;

use crate::support::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, Listing, UserStatus,
};
use crate::support::fake_google::{
    ADMIN, CLIENT_ID, DenyForm, FakeGoogle, GoogleExtras, NOT_ADMIN, SCOPE_GROUP_RO, SCOPE_USER_RO,
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
