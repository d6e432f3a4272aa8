//! The Okta connector against the fake Okta org (testkit/src/fake_okta.rs), through real
//! sync runs into SQLite: full reads over many pages, throttling, token expiry, both kinds
//! of credentials, failures that must change nothing, incremental reads, status policies
//! and the periodic full read.

use std::sync::Arc;
use std::time::Duration;

use idsync::config::{MappingConfig, OktaSettings, OnRemove, SecretString, StatusPolicy};
use idsync::connectors::{PullConnector, ReadMode};
use idsync::db::Db;
use idsync::store::mirror;
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions, RunReport, SyncError};
use idsync::target::query;

use crate::support::conformance::{
    Directory, FakeGroup, FakeMember, FakeProvider, FakeUser, Knobs, Listing, UserStatus,
};
use crate::support::fake_okta::{self, FakeAuth, FakeOkta, OktaOptions};
use crate::support::{sqlite, target_users};

const CONNECTOR: &str = "okta";

fn mapping() -> MappingConfig {
    MappingConfig::pass_through("default", OnRemove::Disable, 100_000, 100.0)
}

async fn run(db: &Db, connector: &dyn PullConnector) -> Result<RunReport, SyncError> {
    sync::sync(
        db,
        CONNECTOR,
        &mapping(),
        connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
}

async fn run_ok(db: &Db, connector: &dyn PullConnector) -> RunReport {
    run(db, connector).await.expect("run succeeds")
}

async fn counts(db: &Db) -> (i64, i64, i64, i64) {
    query::table_counts(db.pool()).await.expect("counts")
}

async fn members(db: &Db, group: &str) -> Vec<String> {
    let group = query::find_group(db.pool(), group)
        .await
        .expect("find group")
        .unwrap_or_else(|| panic!("group {group} exists"));
    query::direct_members(db.pool(), &group.id)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.name)
        .collect()
}

async fn checkpoint(db: &Db) -> Option<String> {
    let mut conn = db.pool().acquire().await.expect("connection");
    mirror::load_state(&mut conn, CONNECTOR)
        .await
        .expect("state")
        .checkpoint
}

async fn set_checkpoint(db: &Db, text: Option<String>) {
    let mut conn = db.pool().acquire().await.expect("connection");
    let mut state = mirror::load_state(&mut conn, CONNECTOR)
        .await
        .expect("state");
    state.checkpoint = text;
    mirror::save_state(&mut conn, CONNECTOR, &state)
        .await
        .expect("save state");
}

fn person(id: &str, name: &str, status: UserStatus) -> FakeUser {
    FakeUser {
        id: id.to_string(),
        user_name: format!("{name}@example.com"),
        email: format!("{name}@example.com"),
        given_name: name[..1].to_uppercase() + &name[1..],
        family_name: "Example".to_string(),
        status,
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

/// alice and bob active, carol suspended, dave deprovisioned, erin a guest, svc a service
/// account; Engineering {alice, bob, group Ops}, Ops {carol, dave, svc}, Empty {}.
fn small() -> Directory {
    Directory {
        users: vec![
            person("00ualice", "alice", UserStatus::Active),
            person("00ubob", "bob", UserStatus::Active),
            person("00ucarol", "carol", UserStatus::Suspended),
            person("00udave", "dave", UserStatus::Deleted),
            person("00uerin", "erin", UserStatus::Guest),
            person("00usvc", "svc", UserStatus::Service),
        ],
        groups: vec![
            group(
                "00geng",
                "Engineering",
                &["00ualice", "00ubob", "group:00gops"],
            ),
            group("00gops", "Ops", &["00ucarol", "00udave", "00usvc"]),
            group("00gempty", "Empty", &[]),
        ],
    }
}

/// A connector with the settings an admin gets by default (incremental reads,
/// deprovisioned users inactive); `FakeProvider::connector` is the conformance variant.
fn admin(fake: &FakeOkta) -> idsync::connectors::okta::OktaConnector {
    fake.connector_with(&fake.settings())
}

async fn start(directory: Directory, knobs: Knobs) -> Arc<FakeOkta> {
    fake_okta::start_okta(directory, knobs, OktaOptions::default()).await
}

/// Users and direct memberships the fake serves for `directory` (no service accounts,
/// no nested groups).
fn expected(directory: &Directory) -> (usize, usize, usize) {
    let served = |id: &str| {
        directory
            .user(id)
            .is_some_and(|u| u.status != UserStatus::Service)
    };
    let users = directory
        .users
        .iter()
        .filter(|u| u.status != UserStatus::Service)
        .count();
    let inactive = directory
        .users
        .iter()
        .filter(|u| matches!(u.status, UserStatus::Suspended | UserStatus::Deleted))
        .count();
    let memberships = directory
        .groups
        .iter()
        .flat_map(|g| &g.members)
        .filter(|m| matches!(m, FakeMember::User(id) if served(id)))
        .count();
    (users, inactive, memberships)
}

fn count_requests(fake: &FakeOkta, prefix: &str) -> usize {
    fake.log().iter().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test]
async fn a_full_read_over_many_pages_lands_in_the_target() {
    let db = sqlite().await;
    let directory = Directory::generated(120, 8, 30);
    let (n_users, n_inactive, n_memberships) = expected(&directory);
    let fake = start(
        directory.clone(),
        Knobs {
            page_size: 7,
            ..Knobs::default()
        },
    )
    .await;
    let report = run_ok(&db, &admin(&fake)).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.read_mode, Some("full"));
    assert_eq!(report.counts.users_created as usize, n_users);
    assert_eq!(
        report.counts.groups_created, 8,
        "Everyone (BUILT_IN) is not read"
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let (users_n, groups_n, memberships, effective) = counts(&db).await;
    assert_eq!(users_n as usize, n_users);
    assert_eq!(groups_n, 8);
    assert_eq!(
        memberships as usize, n_memberships,
        "nested groups are not served"
    );
    assert_eq!(effective, memberships);
    let listed = target_users(&db).await;
    assert_eq!(listed.iter().filter(|(_, a)| !a).count(), n_inactive);
    assert!(
        !listed.iter().any(|(n, _)| n == "user000003@example.com"),
        "the service account does not exist in Okta"
    );
    let deprovisioned = query::find_user(db.pool(), "user000005@example.com")
        .await
        .unwrap()
        .expect("deprovisioned users are read (filter=status eq \"DEPROVISIONED\")");
    assert!(!deprovisioned.active);
    let guest = query::find_user(db.pool(), "user000024@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(guest.active);
    assert_eq!(guest.attributes["profile"]["userType"], "Guest");
    assert_eq!(guest.attributes["status"], "ACTIVE");

    // Users came a page of 7 at a time, and the deprovisioned ones from their own filter.
    let log = fake.log();
    let user_pages = log
        .iter()
        .filter(|l| l.starts_with("/api/v1/users?") && !l.contains("filter"))
        .count();
    let listed_plainly = directory
        .users
        .iter()
        .filter(|u| !matches!(u.status, UserStatus::Service | UserStatus::Deleted))
        .count();
    assert_eq!(user_pages, listed_plainly.div_ceil(7), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l == "/api/v1/users?filter=status eq \"DEPROVISIONED\"&limit=200"),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "/api/v1/groups?filter=type eq \"OKTA_GROUP\"&limit=200"),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains(fake_okta::EVERYONE_ID)),
        "Everyone's members are never read"
    );
    let checkpoint = checkpoint(&db).await.expect("a checkpoint is kept");
    assert!(checkpoint.contains("\"since\""), "{checkpoint}");

    // Read everything again: nothing changed, nothing is written (lastLogin, which the fake
    // moves at every request, is not part of the record).
    set_checkpoint(&db, None).await;
    let again = run_ok(&db, &admin(&fake)).await;
    assert_eq!(again.read_mode, Some("full"));
    assert_eq!(again.outcome, Outcome::Unchanged, "{:?}", again.preview);
}

#[tokio::test]
async fn throttling_and_token_expiry_mid_run_are_absorbed() {
    let db = sqlite().await;
    let directory = Directory::generated(60, 4, 10);
    let (n_users, _, n_memberships) = expected(&directory);
    let fake = start(
        directory,
        Knobs {
            page_size: 10,
            throttle_every: Some(4),
            token_lifetime_requests: Some(5),
            ..Knobs::default()
        },
    )
    .await;
    let report = run_ok(&db, &admin(&fake)).await;
    assert_eq!(report.counts.users_created as usize, n_users);
    let (_, groups, memberships, _) = counts(&db).await;
    assert_eq!(groups, 4);
    assert_eq!(memberships as usize, n_memberships);
    let stats = fake.stats();
    assert!(stats.throttled >= 3, "{stats:?}");
    assert!(stats.tokens_issued >= 3, "{stats:?}");
}

#[tokio::test]
async fn an_api_token_reads_the_same() {
    let db = sqlite().await;
    let directory = small();
    let fake = fake_okta::start_okta(
        directory,
        Knobs::default(),
        OktaOptions {
            auth: FakeAuth::ApiToken,
            ..OktaOptions::default()
        },
    )
    .await;
    let report = run_ok(&db, &admin(&fake)).await;
    assert_eq!(report.counts.users_created, 5);
    assert_eq!(fake.stats().tokens_issued, 0);
    assert_eq!(
        members(&db, "Engineering").await,
        vec!["alice@example.com", "bob@example.com"]
    );
    assert_eq!(
        members(&db, "Ops").await,
        vec!["carol@example.com", "dave@example.com"],
        "suspended and deprovisioned members stay (as inactive users)"
    );

    let mut wrong = fake.settings();
    wrong.auth = idsync::config::OktaAuth::ApiToken(SecretString::new("00revoked"));
    let error = run(&db, &fake.connector_with(&wrong)).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(text.contains("expired after 30 days unused"), "{text}");
}

#[tokio::test]
async fn the_token_endpoint_checks_key_and_scopes() {
    let db = sqlite().await;
    let fake = start(small(), Knobs::default()).await;

    let mut other_key = fake.settings();
    if let idsync::config::OktaAuth::ServiceApp(app) = &mut other_key.auth {
        app.private_key = SecretString::new(fake_okta::test_key("okta_other_key.pem"));
    }
    let error = run(&db, &fake.connector_with(&other_key))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(text.contains("public key"), "{text}");

    let mut more_scopes = fake.settings();
    if let idsync::config::OktaAuth::ServiceApp(app) = &mut more_scopes.auth {
        app.scopes.push("okta.logs.read".into());
    }
    let connector = fake.connector_with(&more_scopes);
    let error = run(&db, &connector).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("invalid_scope"), "{text}");
    assert!(text.contains("okta.logs.read"), "{text}");
    let checks = connector.diagnose().await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].check, "authenticate");
    assert!(!checks[0].ok);
    assert!(
        checks[0].detail.contains("Okta API Scopes tab"),
        "{checks:?}"
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));

    // A good key: every check passes.
    fake.clear_log();
    let checks = admin(&fake).diagnose().await;
    let names: Vec<(&str, bool)> = checks.iter().map(|c| (c.check, c.ok)).collect();
    assert_eq!(
        names,
        [
            ("authenticate", true),
            ("list users", true),
            ("list groups", true),
            ("list group members", true)
        ],
        "{checks:?}"
    );
    // The groups probe lists what a sync lists: groups by type.
    let log = fake.log();
    assert!(
        log.iter()
            .any(|r| r.starts_with("/api/v1/groups?") && r.contains("type eq \"OKTA_GROUP\"")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_failing_last_page_changes_nothing() {
    for listing in [Listing::Users, Listing::Groups, Listing::Members] {
        let db = sqlite().await;
        let good = start(small(), Knobs::default()).await;
        run_ok(&db, &admin(&good)).await;
        let before = (counts(&db).await, target_users(&db).await);
        let saved = checkpoint(&db).await;

        let mut changed = small();
        changed.users[0].status = UserStatus::Suspended;
        changed.users.remove(1);
        changed.groups[0].members.clear();
        let failing = start(
            changed,
            Knobs {
                page_size: 2,
                fail_last_page: Some(listing),
                ..Knobs::default()
            },
        )
        .await;
        let error = run(&db, &admin(&failing)).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("HTTP 500"), "{listing:?}: {text}");
        assert_eq!(
            (counts(&db).await, target_users(&db).await),
            before,
            "{listing:?}: nothing changed"
        );
        assert_eq!(checkpoint(&db).await, saved, "{listing:?}: checkpoint kept");
    }
}

#[tokio::test]
async fn a_403_names_the_missing_scope_and_changes_nothing() {
    for (listing, scope) in [
        (Listing::Users, "okta.users.read"),
        (Listing::Groups, "okta.groups.read"),
        (Listing::Members, "okta.groups.read"),
    ] {
        let db = sqlite().await;
        run_ok(&db, &admin(&*start(small(), Knobs::default()).await)).await;
        let before = counts(&db).await;
        let fake = start(
            small(),
            Knobs {
                deny: Some(listing),
                ..Knobs::default()
            },
        )
        .await;
        assert_eq!(fake.missing_permission_hint(), scope);
        let error = run(&db, &admin(&fake)).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains(scope), "{listing:?}: {text}");
        assert!(text.contains("HTTP 403"), "{listing:?}: {text}");
        assert!(text.contains("Okta API Scopes tab"), "{listing:?}: {text}");
        assert_eq!(counts(&db).await, before, "{listing:?}");
        let checks = admin(&fake).diagnose().await;
        let failed = checks.last().expect("a check");
        assert!(!failed.ok, "{listing:?}: {checks:?}");
        assert!(failed.detail.contains(scope), "{listing:?}: {checks:?}");
        let expected_check = match listing {
            Listing::Users => "list users",
            Listing::Groups => "list groups",
            Listing::Members => "list group members",
        };
        assert_eq!(failed.check, expected_check);
    }

    // With an API token, the admin role is what is missing.
    let fake = fake_okta::start_okta(
        small(),
        Knobs {
            deny: Some(Listing::Users),
            ..Knobs::default()
        },
        OktaOptions {
            auth: FakeAuth::ApiToken,
            ..OktaOptions::default()
        },
    )
    .await;
    let checks = admin(&fake).diagnose().await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].check, "list users");
    assert!(
        checks[0].detail.contains("give that admin a role")
            && checks[0].detail.contains("okta.users.read"),
        "{checks:?}"
    );
}

#[tokio::test]
async fn an_incremental_read_touches_only_what_changed() {
    let db = sqlite().await;
    let fake = start(small(), Knobs::default()).await;
    let first = run_ok(&db, &admin(&fake)).await;
    assert_eq!(first.read_mode, Some("full"));

    // bob is renamed, alice suspended, frank joins Engineering, Ops is renamed; Empty
    // and the other users stay as they were.
    let mut changed = small();
    changed.users[1].given_name = "Robert".into();
    changed.users[0].status = UserStatus::Suspended;
    changed
        .users
        .push(person("00ufrank", "frank", UserStatus::Active));
    changed.groups[0]
        .members
        .push(FakeMember::User("00ufrank".into()));
    changed.groups[1].name = "Operations".into();
    fake.set_directory(changed);
    fake.clear_log();

    let second = run_ok(&db, &admin(&fake)).await;
    assert_eq!(second.read_mode, Some(ReadMode::Delta.as_str()));
    assert_eq!(second.records_read, 5, "3 users and 2 groups");
    assert_eq!(second.counts.users_created, 1);
    assert_eq!(second.counts.users_updated, 2, "{:?}", second.preview);
    assert_eq!(second.counts.users_disabled, 0);
    assert_eq!(second.counts.groups_updated, 2, "{:?}", second.preview);
    assert_eq!(second.counts.memberships_added, 1);
    assert_eq!(second.counts.memberships_removed, 0);
    let log = fake.log();
    assert_eq!(
        count_requests(&fake, "/api/v1/users?filter=lastUpdated gt \""),
        1,
        "{log:#?}"
    );
    assert_eq!(
        count_requests(
            &fake,
            "/api/v1/groups?filter=type eq \"OKTA_GROUP\" and (lastUpdated gt \""
        ),
        1,
        "{log:#?}"
    );
    assert_eq!(
        count_requests(&fake, "/api/v1/groups/00geng/users"),
        1,
        "{log:#?}"
    );
    assert_eq!(count_requests(&fake, "/api/v1/groups/00gops/users"), 1);
    assert_eq!(
        count_requests(&fake, "/api/v1/groups/00gempty/users"),
        0,
        "an unchanged group is not re-read"
    );
    // Hard deletions: one listing of the ids of users, deprovisioned users and each
    // group type, so that deleted records leave at this run.
    assert_eq!(count_requests(&fake, "/api/v1/users?limit="), 1, "{log:#?}");
    assert_eq!(
        count_requests(&fake, "/api/v1/users?filter=status eq \"DEPROVISIONED\""),
        1,
        "{log:#?}"
    );
    assert_eq!(
        count_requests(&fake, "/api/v1/groups?filter=type eq \"OKTA_GROUP\"&"),
        1,
        "{log:#?}"
    );
    assert_eq!(
        members(&db, "Engineering").await,
        vec!["alice@example.com", "bob@example.com", "frank@example.com"]
    );
    assert_eq!(members(&db, "Operations").await.len(), 2);
    let alice = query::find_user(db.pool(), "alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!alice.active);
    let bob = query::find_user(db.pool(), "bob@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.given_name.as_deref(), Some("Robert"));

    // Nothing new: the overlap re-reads the last changes, which are already applied.
    let third = run_ok(&db, &admin(&fake)).await;
    assert_eq!(third.read_mode, Some("delta"));
    assert_eq!(third.outcome, Outcome::Unchanged);

    // Group types are part of what a checkpoint continues: changing them reads in full.
    let mut only_okta = fake.settings();
    only_okta.group_types = vec!["OKTA_GROUP".into(), "BUILT_IN".into()];
    let fourth = run_ok(&db, &fake.connector_with(&only_okta)).await;
    assert_eq!(fourth.read_mode, Some("full"));
    assert_eq!(fourth.counts.groups_created, 1, "Everyone");
    assert_eq!(members(&db, "Everyone").await.len(), 6);
}

#[tokio::test]
async fn skipped_statuses_stay_out_and_leave_when_they_change() {
    let db = sqlite().await;
    let fake = start(small(), Knobs::default()).await;
    let mut settings: OktaSettings = fake.settings();
    settings.deprovisioned = StatusPolicy::Skip;
    settings.suspended = StatusPolicy::Skip;
    let connector = fake.connector_with(&settings);
    let report = run_ok(&db, &connector).await;
    assert_eq!(report.counts.users_created, 3, "alice, bob, erin");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(
        !fake.log().iter().any(|l| l.contains("DEPROVISIONED")),
        "no deprovisioned listing when they are skipped"
    );
    assert!(members(&db, "Ops").await.is_empty());

    // alice is suspended: the incremental read reports her removed.
    let mut changed = small();
    changed.users[0].status = UserStatus::Suspended;
    fake.set_directory(changed);
    let report = run_ok(&db, &connector).await;
    assert_eq!(report.read_mode, Some("delta"));
    assert_eq!(report.counts.users_disabled, 1);
    assert_eq!(
        target_users(&db).await,
        vec![
            ("alice@example.com".to_string(), false),
            ("bob@example.com".to_string(), true),
            ("erin@example.com".to_string(), true),
        ]
    );
    assert_eq!(members(&db, "Engineering").await, vec!["bob@example.com"]);
}

#[tokio::test]
async fn a_stale_or_unusable_checkpoint_reads_everything() {
    let db = sqlite().await;
    let fake = start(small(), Knobs::default()).await;
    run_ok(&db, &admin(&fake)).await;

    // erin is hard-deleted: filters cannot see that, but the incremental read's id
    // listing does, and she leaves at once.
    let mut changed = small();
    changed.users.retain(|u| u.id != "00uerin");
    fake.set_directory(changed);
    let delta = run_ok(&db, &admin(&fake)).await;
    assert_eq!(delta.read_mode, Some("delta"));
    assert_eq!(delta.counts.users_disabled, 1, "erin is gone");

    // The last full read is two days old (full_sync_every is 24h): read everything.
    let stored = checkpoint(&db).await.expect("checkpoint");
    let mut value: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let two_days_ago = idsync::clock::now() - chrono::Duration::days(2);
    value["full_read_at"] =
        serde_json::json!(two_days_ago.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    set_checkpoint(&db, Some(value.to_string())).await;
    let full = run_ok(&db, &admin(&fake)).await;
    assert_eq!(full.read_mode, Some("full"));
    assert_eq!(full.outcome, Outcome::Unchanged, "erin left already");
    let renewed: serde_json::Value = serde_json::from_str(&checkpoint(&db).await.unwrap()).unwrap();
    assert_ne!(renewed["full_read_at"], value["full_read_at"]);

    // A shorter full_sync_every applies at once.
    let mut hourly = fake.settings();
    hourly.full_sync_every = Duration::from_secs(1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = run_ok(&db, &fake.connector_with(&hourly)).await;
    assert_eq!(report.read_mode, Some("full"));

    // Garbage is not trusted.
    set_checkpoint(&db, Some("{\"since\": 42}".into())).await;
    let report = run_ok(&db, &admin(&fake)).await;
    assert_eq!(report.read_mode, Some("full"));
    assert_eq!(report.outcome, Outcome::Unchanged);
}

#[tokio::test]
async fn app_groups_are_read_by_type() {
    let db = sqlite().await;
    let fake = fake_okta::start_okta(
        small(),
        Knobs::default(),
        OktaOptions {
            app_groups: vec!["00gops".into()],
            ..OktaOptions::default()
        },
    )
    .await;
    run_ok(&db, &admin(&fake)).await;
    let ops = query::find_group(db.pool(), "Ops")
        .await
        .unwrap()
        .expect("Ops");
    assert_eq!(ops.description.as_deref(), Some("corp.example.com/Ops"));
    assert!(
        fake.log()
            .iter()
            .any(|l| l == "/api/v1/groups?filter=type eq \"APP_GROUP\"&limit=200")
    );

    let db = sqlite().await;
    let mut settings = fake.settings();
    settings.group_types = vec!["OKTA_GROUP".into()];
    run_ok(&db, &fake.connector_with(&settings)).await;
    assert!(query::find_group(db.pool(), "Ops").await.unwrap().is_none());
    assert!(
        query::find_group(db.pool(), "Engineering")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_conformance_connector_reads_in_full_and_leaves_deprovisioned_users_out() {
    let db = sqlite().await;
    let fake = start(small(), Knobs::default()).await;
    let first = run_ok(&db, &*fake.connector()).await;
    assert_eq!(first.read_mode, Some("full"));
    assert!(
        query::find_user(db.pool(), "dave@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let mut changed = small();
    changed.users.retain(|u| u.id != "00uerin");
    fake.set_directory(changed);
    let second = run_ok(&db, &*fake.connector()).await;
    assert_eq!(second.read_mode, Some("full"));
    assert_eq!(second.counts.users_disabled, 1, "the hard deletion is seen");
    assert!(!fake.served().is_empty());
}
