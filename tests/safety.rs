//! The safety limits that keep a run from silently taking access away (SQLite always,
//! PostgreSQL when configured): a mapping typo that skips every user, membership removals
//! over their limit, and the floor under the percentage limits.

use idsync::config::MappingConfig;
use idsync::db::Db;
use idsync::model::{MemberRef, SourceUser};
use idsync::store::runs::{self, Outcome};
use idsync::sync::{self, NoProgress, RunOptions, RunReport};
use serde_json::json;

use crate::mapping_flow::{load_mapping, target_json};
use crate::on_both_backends;
use crate::support::TestDb;
use crate::support::scripted::{Scripted, group, user};

async fn run(db: &Db, source: &Scripted, mapping: &MappingConfig) -> RunReport {
    run_with(db, source, mapping, RunOptions::default()).await
}

async fn run_with(
    db: &Db,
    source: &Scripted,
    mapping: &MappingConfig,
    options: RunOptions,
) -> RunReport {
    sync::sync(db, "azure", mapping, source, options, &NoProgress)
        .await
        .expect("run completes")
}

/// `n` Graph-like users (a `userPrincipalName` attribute).
fn graph_users(n: usize) -> Vec<SourceUser> {
    (0..n)
        .map(|i| {
            let upn = format!("User{i}@Contoso.com");
            let mut u = user(&format!("u{i}"), &upn);
            u.attributes.insert("userPrincipalName".into(), json!(upn));
            u
        })
        .collect()
}

/// `users`, all in group Staff.
fn directory_of(users: Vec<SourceUser>) -> Scripted {
    let members = users
        .iter()
        .map(|u| MemberRef::user(u.external_id.clone()))
        .collect();
    Scripted::full(users, vec![group("g-staff", "Staff", members)])
}

fn graph_directory(n: usize) -> Scripted {
    directory_of(graph_users(n))
}

fn app_mapping(user_name_expression: &str) -> MappingConfig {
    load_mapping(
        "azure",
        &format!(
            "[attributes]\nuser_name = \"{user_name_expression}\"\n\n\
             [[applications]]\nname = \"jira\"\ngroups = [\"jira-users\"]\n"
        ),
    )
}

/// The scenario: `userPrinciplName` (a typo) skips every user. Before the skip limit
/// the run removed every application-group membership and "succeeded"; now it is held,
/// names the expression and one user, and changes nothing.
async fn a_mapping_typo_that_skips_every_user_is_held(db: TestDb) {
    let source = graph_directory(8);
    let report = run(&db, &source, &app_mapping("userPrincipalName | lower")).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    // 8 in Staff, 8 in jira-users.
    assert_eq!(report.counts.memberships_added, 16);
    let before = target_json(&db).await;
    assert_eq!(
        before["groups"]["jira-users"]["effective_users"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );

    let typo = app_mapping("userPrinciplName | lower");
    let report = run(&db, &source, &typo).await;
    assert_eq!(report.outcome, Outcome::Held, "{:?}", report.message);
    let message = report.message.expect("a reason");
    assert!(
        message.contains("the mapping skipped 8 of the 8 users it projected before (100.0%)"),
        "{message}"
    );
    assert!(
        message.contains("`attributes.user_name = \"userPrinciplName | lower\"` gave nothing"),
        "{message}"
    );
    assert!(
        message.contains("e.g. for user \"User0@Contoso.com\" (external id \"u0\")"),
        "{message}"
    );
    assert_eq!(target_json(&db).await, before, "the target is unchanged");
    let recorded = runs::recent_runs(db.pool(), Some("azure"), 1)
        .await
        .unwrap();
    assert_eq!(recorded[0].outcome, Outcome::Held);
    assert_eq!(recorded[0].message.as_deref(), Some(message.as_str()));

    // Fixed, the next run has nothing to do.
    let report = run(&db, &source, &app_mapping("userPrincipalName | lower")).await;
    assert_eq!(report.outcome, Outcome::Unchanged, "{:?}", report.message);
    assert_eq!(target_json(&db).await, before);
}
on_both_backends!(a_mapping_typo_that_skips_every_user_is_held);

/// A few users whose data lacks a field are skipped (and reported) without holding.
async fn a_few_skipped_users_do_not_hold(db: TestDb) {
    let mapping = app_mapping("userPrincipalName | lower");
    run(&db, &graph_directory(50), &mapping).await;
    let mut users = graph_users(50);
    for u in users.iter_mut().take(4) {
        u.attributes.remove("userPrincipalName");
    }
    let before = target_json(&db).await;
    let report = run(&db, &directory_of(users), &mapping).await;
    assert_eq!(report.outcome, Outcome::Unchanged, "{:?}", report.message);
    assert_eq!(report.counts.warnings, 4);
    // The skipped users keep what they had, their application group included.
    assert_eq!(report.counts.memberships_removed, 0);
    assert_eq!(target_json(&db).await, before);
}
on_both_backends!(a_few_skipped_users_do_not_hold);

/// With the default floor (`min_deletes = 3`), 1 of 4 users leaving (25%, over the 20%
/// limit) is applied, and so are 2 of 8; 5 of 20 leaving (25%) is held.
async fn one_of_four_users_leaving_is_not_held_by_the_percentage(db: TestDb) {
    let mapping = load_mapping("small", "");
    assert_eq!(mapping.limits.min_deletes, 3);
    assert_eq!(mapping.limits.max_delete_percent, 20.0);
    run(&db, &graph_directory(4), &mapping).await;
    let report = run(&db, &graph_directory(3), &mapping).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.message);
    assert_eq!(report.counts.users_disabled, 1);
    run(&db, &graph_directory(8), &mapping).await;
    let report = run(&db, &graph_directory(6), &mapping).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.message);
    assert_eq!(report.counts.users_disabled, 2);

    run(&db, &graph_directory(20), &mapping).await;
    let report = run(&db, &graph_directory(15), &mapping).await;
    assert_eq!(report.outcome, Outcome::Held);
    assert!(
        report
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("the plan would disable 5 of 20 users (25.0%)"),
        "{:?}",
        report.message
    );
}
on_both_backends!(one_of_four_users_leaving_is_not_held_by_the_percentage);

/// An application whose `when` stops matching takes the group away from users who stay:
/// over `max_membership_removal_percent` the run is held; --allow-mass-delete applies it.
async fn membership_removals_over_the_limit_are_held(db: TestDb) {
    let granted = load_mapping(
        "apps",
        "[[applications]]\nname = \"jira\"\ngroups = [\"jira-users\"]\nwhen = 'groups eq \"Staff\"'\n",
    );
    let source = graph_directory(10);
    run(&db, &source, &granted).await;
    let before = target_json(&db).await;
    let narrowed = load_mapping(
        "apps",
        "[[applications]]\nname = \"jira\"\ngroups = [\"jira-users\"]\nwhen = 'groups eq \"Stuff\"'\n",
    );
    let report = run(&db, &source, &narrowed).await;
    assert_eq!(report.outcome, Outcome::Held);
    assert_eq!(report.counts.memberships_removed, 10);
    let message = report.message.expect("a reason");
    assert!(
        message.contains(
            "the plan would remove 10 of 20 group memberships from users and groups that stay \
             (50.0%), above the limits of mapping `apps` (max_membership_removals = 1000, \
             max_membership_removal_percent = 20"
        ),
        "{message}"
    );
    assert_eq!(target_json(&db).await, before, "the target is unchanged");

    let options = RunOptions {
        allow_mass_delete: true,
        ..RunOptions::default()
    };
    let report = run_with(&db, &source, &narrowed, options).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    let after = target_json(&db).await;
    assert_eq!(after["groups"]["jira-users"]["effective_users"], json!([]));
    assert_eq!(
        after["groups"]["Staff"]["effective_users"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
}
on_both_backends!(membership_removals_over_the_limit_are_held);

/// Memberships of users who leave are counted by the user limit, not a second time.
async fn memberships_of_leaving_users_do_not_count_twice(db: TestDb) {
    let mut mapping = app_mapping("userPrincipalName | lower");
    mapping.limits.max_delete_percent = 100.0;
    mapping.limits.max_membership_removals = 0;
    run(&db, &graph_directory(10), &mapping).await;
    let report = run(&db, &graph_directory(4), &mapping).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.message);
    assert_eq!(report.counts.users_disabled, 6);
    assert_eq!(report.counts.memberships_removed, 12);
}
on_both_backends!(memberships_of_leaving_users_do_not_count_twice);

/// `idsync check` names the typo with file, line, key and the attribute meant.
#[test]
fn check_flags_an_attribute_no_record_of_the_kind_has() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "idsync.toml",
        "[target]\ndatabase_url = \"sqlite://target.db\"\n",
    );
    write(
        "connectors/okta-push.toml",
        "kind = \"scim\"\nmapping = \"push\"\n[scim]\n",
    );
    write(
        "mappings/push.toml",
        "[attributes]\nuser_name = \"userName | lower\"\n\
         email = \"emails[0].value ?? usrName\"\n\
         [attributes.custom]\n\
         department = '`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.department'\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idsync"))
        .arg("--config")
        .arg(dir.path().join("idsync.toml"))
        .arg("check")
        .env_remove("IDSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run idsync");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "warning: mappings/push.toml:3: attributes.email: `usrName` is not an attribute of \
         the users of connector `okta-push` (kind scim); did you mean `userName`?"
    );
}
