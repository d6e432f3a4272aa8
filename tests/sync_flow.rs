//! Runs of the sync engine against a real database (SQLite always, PostgreSQL when
//! configured): creates, updates, removals, conflicts, safety limits, atomicity.

use idsync::config::{MappingConfig, Nesting, OnRemove};
use idsync::connectors::{ReadMode, SourceBatch};
use idsync::db::Db;
use idsync::model::MemberRef;
use idsync::store::runs::{self, Outcome};
use idsync::sync::{self, NoProgress, RunOptions, RunReport, SyncError};
use idsync::target::query;

use crate::on_both_backends;
use crate::support::scripted::{Scripted, group, user, users};
use crate::support::{TestDb, inject_failure_on_effective_insert, remove_injected_failure};

fn mapping(on_remove: OnRemove) -> MappingConfig {
    MappingConfig::pass_through("default", on_remove, 500, 20.0)
}

async fn run(db: &Db, connector: &str, source: &Scripted, mapping: &MappingConfig) -> RunReport {
    run_with(db, connector, source, mapping, RunOptions::default())
        .await
        .expect("run succeeds")
}

async fn run_with(
    db: &Db,
    connector: &str,
    source: &Scripted,
    mapping: &MappingConfig,
    options: RunOptions,
) -> Result<RunReport, SyncError> {
    sync::sync(db, connector, mapping, source, options, &NoProgress).await
}

async fn counts(db: &Db) -> (i64, i64, i64, i64) {
    query::table_counts(db.pool()).await.expect("counts")
}

async fn user_names(db: &Db) -> Vec<(String, bool)> {
    query::list_users(db.pool(), None, 1000, 0)
        .await
        .expect("list users")
        .into_iter()
        .map(|u| (u.user_name, u.active))
        .collect()
}

async fn effective(db: &Db, group_name: &str) -> Vec<String> {
    let group = query::find_group(db.pool(), group_name)
        .await
        .expect("find group")
        .expect("group exists");
    query::effective_members(db.pool(), &group.id)
        .await
        .expect("effective members")
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// A small directory: Engineering contains Platform (nested), Platform contains u2.
fn directory() -> Scripted {
    Scripted::full(
        users(4),
        vec![
            group(
                "g-eng",
                "Engineering",
                vec![MemberRef::user("u0"), MemberRef::group("g-plat")],
            ),
            group("g-plat", "Platform", vec![MemberRef::user("u2")]),
            group(
                "g-all",
                "Everyone",
                (0..4).map(|i| MemberRef::user(format!("u{i}"))).collect(),
            ),
        ],
    )
}

async fn initial_sync_then_unchanged_resync_writes_nothing(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    let report = run(&db, "hr", &directory(), &m).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.counts.users_created, 4);
    assert_eq!(report.counts.groups_created, 3);
    assert_eq!(report.counts.memberships_added, 7);
    assert_eq!(report.records_read, 7);
    // 7 direct memberships; effective: Engineering {u0,u2}, Platform {u2}, Everyone {4}.
    assert_eq!(counts(&db).await, (4, 3, 7, 7));
    assert_eq!(
        effective(&db, "engineering").await,
        vec!["user0@example.com", "user2@example.com"]
    );
    let before = query::list_users(db.pool(), None, 100, 0).await.unwrap();

    let again = run(&db, "hr", &directory(), &m).await;
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.counts, Default::default());
    let after = query::list_users(db.pool(), None, 100, 0).await.unwrap();
    let stamps = |rows: &[query::UserRow]| -> Vec<String> {
        rows.iter().map(|u| u.updated_at.clone()).collect()
    };
    assert_eq!(stamps(&before), stamps(&after), "no user row was rewritten");

    let recorded = runs::recent_runs(db.pool(), Some("hr"), 10).await.unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].outcome, Outcome::Unchanged);
    assert_eq!(recorded[1].outcome, Outcome::Succeeded);
    assert_eq!(recorded[1].counts.users_created, 4);
}
on_both_backends!(initial_sync_then_unchanged_resync_writes_nothing);

async fn changes_updates_and_removals_apply(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(&db, "hr", &directory(), &m).await;

    let mut changed_users = users(4);
    changed_users[1].display_name = Some("Renamed Person".into());
    changed_users.remove(3); // u3 left
    let source = Scripted::full(
        changed_users,
        vec![
            group("g-eng", "Engineering", vec![MemberRef::user("u0")]), // Platform no longer nested
            group("g-plat", "Platform", vec![MemberRef::user("u2")]),
            group(
                "g-all",
                "Everyone",
                (0..3).map(|i| MemberRef::user(format!("u{i}"))).collect(),
            ),
        ],
    );
    let mut lenient = m.clone();
    lenient.limits.max_delete_percent = 50.0;
    let report = run(&db, "hr", &source, &lenient).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.counts.users_updated, 1);
    assert_eq!(report.counts.users_disabled, 1);
    assert_eq!(report.counts.memberships_removed, 2);
    assert_eq!(
        user_names(&db).await,
        vec![
            ("user0@example.com".to_string(), true),
            ("user1@example.com".to_string(), true),
            ("user2@example.com".to_string(), true),
            ("user3@example.com".to_string(), false),
        ]
    );
    let renamed = query::find_user(db.pool(), "user1@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.display_name.as_deref(), Some("Renamed Person"));
    let gone = query::find_user(db.pool(), "user3@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(gone.removed_at.is_some());
    assert_eq!(
        effective(&db, "Engineering").await,
        vec!["user0@example.com"]
    );
    assert_eq!(effective(&db, "Everyone").await.len(), 3);

    // The user comes back: re-enabled, not duplicated.
    let report = run(&db, "hr", &directory(), &lenient).await;
    assert_eq!(report.counts.users_updated, 2);
    assert_eq!(report.counts.users_created, 0);
    assert!(user_names(&db).await.iter().all(|(_, active)| *active));
}
on_both_backends!(changes_updates_and_removals_apply);

async fn delete_mode_removes_rows(db: TestDb) {
    let mut m = mapping(OnRemove::Delete);
    m.limits.max_delete_percent = 100.0;
    run(&db, "hr", &directory(), &m).await;
    let source = Scripted::full(
        users(2),
        vec![group("g-all", "Everyone", vec![MemberRef::user("u0")])],
    );
    let report = run(&db, "hr", &source, &m).await;
    assert_eq!(report.counts.users_deleted, 2);
    assert_eq!(report.counts.groups_deleted, 2);
    assert_eq!(counts(&db).await, (2, 1, 1, 1));
}
on_both_backends!(delete_mode_removes_rows);

async fn mass_removal_is_held_until_allowed(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(&db, "hr", &Scripted::full(users(10), vec![]), &m).await;
    // 3 of 10 users leave: 30% > 20%.
    let shrunk = Scripted::full(users(7), vec![]);
    let report = run(&db, "hr", &shrunk, &m).await;
    assert_eq!(report.outcome, Outcome::Held);
    assert_eq!(report.counts.users_disabled, 3);
    let message = report.message.unwrap();
    assert!(
        message.contains("the plan would disable 3 of 10 users (30.0%)"),
        "{message}"
    );
    assert!(message.contains("--allow-mass-delete"), "{message}");
    assert!(
        user_names(&db).await.iter().all(|(_, active)| *active),
        "nothing applied"
    );
    let recorded = runs::recent_runs(db.pool(), Some("hr"), 1).await.unwrap();
    assert_eq!(recorded[0].outcome, Outcome::Held);

    let options = RunOptions {
        allow_mass_delete: true,
        ..RunOptions::default()
    };
    let report = run_with(&db, "hr", &shrunk, &m, options).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let inactive = user_names(&db).await.iter().filter(|(_, a)| !a).count();
    assert_eq!(inactive, 3);
}
on_both_backends!(mass_removal_is_held_until_allowed);

async fn absolute_limit_holds_too(db: TestDb) {
    let mut m = mapping(OnRemove::Disable);
    m.limits.max_deletes = 2;
    m.limits.max_delete_percent = 100.0;
    run(&db, "hr", &Scripted::full(users(10), vec![]), &m).await;
    let report = run(&db, "hr", &Scripted::full(users(7), vec![]), &m).await;
    assert_eq!(report.outcome, Outcome::Held);
}
on_both_backends!(absolute_limit_holds_too);

async fn empty_snapshot_is_always_held(db: TestDb) {
    let mut m = mapping(OnRemove::Disable);
    m.limits.max_delete_percent = 100.0;
    m.limits.max_deletes = 1_000_000;
    run(&db, "hr", &directory(), &m).await;
    let report = run(&db, "hr", &Scripted::full(vec![], vec![]), &m).await;
    assert_eq!(report.outcome, Outcome::Held);
    assert!(
        report
            .message
            .unwrap()
            .contains("the source returned no users and no groups")
    );
    assert_eq!(counts(&db).await, (4, 3, 7, 7));
    assert!(user_names(&db).await.iter().all(|(_, active)| *active));
}
on_both_backends!(empty_snapshot_is_always_held);

async fn a_name_claimed_by_two_connectors_is_a_conflict(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(
        &db,
        "hr",
        &Scripted::full(vec![user("a1", "Alice@Example.com")], vec![]),
        &m,
    )
    .await;
    let other = Scripted::full(
        vec![
            user("x9", "alice@example.com"),
            user("x10", "bob@example.com"),
        ],
        vec![],
    );
    let report = run(&db, "okta", &other, &m).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.counts.users_created, 1);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.conflicts[0].external_id, "x9");
    assert!(report.conflicts[0].held_by.contains("connector \"hr\""));
    let alice = query::find_user(db.pool(), "alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.connector, "hr", "never overwritten");
    let recorded = runs::recent_runs(db.pool(), Some("okta"), 1).await.unwrap();
    assert_eq!(recorded[0].counts.conflicts, 1);
    let details = recorded[0].details.clone().unwrap();
    assert_eq!(details["conflicts"][0]["external_id"], "x9");
}
on_both_backends!(a_name_claimed_by_two_connectors_is_a_conflict);

async fn a_failure_midway_leaves_the_target_as_before(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(&db, "hr", &Scripted::full(users(2), vec![]), &m).await;
    let before = counts(&db).await;
    inject_failure_on_effective_insert(&db).await;
    // Users, groups and memberships are written before effective memberships fail.
    let error = run_with(&db, "hr", &directory(), &m, RunOptions::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert_eq!(counts(&db).await, before);
    let recorded = runs::recent_runs(db.pool(), Some("hr"), 1).await.unwrap();
    assert_eq!(recorded[0].outcome, Outcome::Failed);
    assert!(
        recorded[0]
            .message
            .as_deref()
            .unwrap()
            .contains("injected failure")
    );

    // The mirror was rolled back with the target: the next run applies everything.
    remove_injected_failure(&db).await;
    let report = run(&db, "hr", &directory(), &m).await;
    assert_eq!(report.counts.users_created, 2);
    assert_eq!(counts(&db).await, (4, 3, 7, 7));
}
on_both_backends!(a_failure_midway_leaves_the_target_as_before);

async fn a_snapshot_failing_on_its_last_page_changes_nothing(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(&db, "hr", &directory(), &m).await;
    let mut changed = users(4);
    changed[0].active = false;
    let source = Scripted::full(changed, vec![]).failing_on_last_page();
    let error = run_with(&db, "hr", &source, &m, RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("page 3 of 3 answered 503"),
        "{error}"
    );
    assert!(user_names(&db).await.iter().all(|(_, active)| *active));
    assert_eq!(counts(&db).await, (4, 3, 7, 7));
}
on_both_backends!(a_snapshot_failing_on_its_last_page_changes_nothing);

/// A read that fails records how far it got: the run record of the failure counts the
/// records the source had handed over.
async fn a_failed_read_records_how_many_records_it_had_read(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    // Six users in pages of two, then the read fails.
    let source = Scripted::full(users(6), vec![]).failing_on_last_page();
    run_with(&db, "hr", &source, &m, RunOptions::default())
        .await
        .unwrap_err();
    let last = runs::recent_runs(db.pool(), Some("hr"), 1)
        .await
        .expect("runs");
    assert_eq!(last[0].outcome, Outcome::Failed);
    assert_eq!(last[0].records_read, 6);
}
on_both_backends!(a_failed_read_records_how_many_records_it_had_read);

async fn duplicate_ids_fail_the_run(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    let source = Scripted::full(vec![user("u1", "a@x"), user("u1", "b@x")], vec![]);
    let error = run_with(&db, "hr", &source, &m, RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("duplicate id \"u1\" in one snapshot"),
        "{error}"
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));
}
on_both_backends!(duplicate_ids_fail_the_run);

async fn dry_run_writes_nothing(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let report = run_with(&db, "hr", &directory(), &m, options)
        .await
        .unwrap();
    assert_eq!(report.counts.users_created, 4);
    assert!(report.run_id.is_none());
    assert!(
        report
            .preview
            .contains(&"create user user0@example.com".to_string())
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));
    assert!(
        runs::recent_runs(db.pool(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing was stored in the mirror either: a real run still creates everything.
    let report = run(&db, "hr", &directory(), &m).await;
    assert_eq!(report.counts.users_created, 4);
}
on_both_backends!(dry_run_writes_nothing);

async fn nested_groups_with_a_cycle_resolve(db: TestDb) {
    // A -> B -> C -> A, C contains u0; D contains A.
    let m = mapping(OnRemove::Disable);
    let source = Scripted::full(
        users(2),
        vec![
            group("a", "A", vec![MemberRef::group("b")]),
            group("b", "B", vec![MemberRef::group("c"), MemberRef::user("u1")]),
            group("c", "C", vec![MemberRef::group("a"), MemberRef::user("u0")]),
            group("d", "D", vec![MemberRef::group("a"), MemberRef::group("d")]),
        ],
    );
    let report = run(&db, "hr", &source, &m).await;
    assert_eq!(report.warnings.len(), 1, "self-membership of D is reported");
    for name in ["A", "B", "C", "D"] {
        assert_eq!(
            effective(&db, name).await,
            vec!["user0@example.com", "user1@example.com"],
            "{name}"
        );
    }
}
on_both_backends!(nested_groups_with_a_cycle_resolve);

async fn inactive_users_are_left_out_of_a_full_projection_when_they_count_as_removed(db: TestDb) {
    // SCIM tenants see `active: false` as a removal. A full projection streams users from
    // the mirror and leaves such a user out of the target and of every group, nested or
    // flattened, as if the source had not listed it.
    let mut people = users(4);
    people[2].active = false;
    let mut source = directory();
    source
        .batches
        .retain(|b| !matches!(b, SourceBatch::Users(_)));
    source.batches.insert(0, SourceBatch::Users(people));
    let options = RunOptions {
        inactive_is_removal: true,
        ..RunOptions::default()
    };
    let mut m = mapping(OnRemove::Disable);
    let report = run_with(&db, "hr", &source, &m, options).await.unwrap();
    assert_eq!(report.projection, Some("full"));
    // The flattened mapping is a new fingerprint: the reconcile projects the whole mirror.
    m.nesting = Nesting::Flatten;
    let flattened = sync::reconcile(&db, "hr", &m, options, &NoProgress)
        .await
        .unwrap();
    assert_eq!(flattened.projection, Some("full"));
    for report in [&report, &flattened] {
        assert_eq!(report.excluded_users, 0, "not counted as excluded");
    }
    assert_eq!(report.counts.users_created, 3);
    let names: Vec<String> = user_names(&db).await.into_iter().map(|u| u.0).collect();
    assert!(!names.contains(&"user2@example.com".to_string()));
    assert_eq!(
        effective(&db, "Engineering").await,
        vec!["user0@example.com"]
    );
    assert_eq!(
        effective(&db, "Everyone").await,
        vec![
            "user0@example.com",
            "user1@example.com",
            "user3@example.com"
        ]
    );
    // Platform's only member is the inactive user.
    assert!(effective(&db, "Platform").await.is_empty());
}
on_both_backends!(inactive_users_are_left_out_of_a_full_projection_when_they_count_as_removed);

async fn a_merge_larger_than_its_chunk_writes_every_changed_user(db: TestDb) {
    // The merge parses back and writes changed users 2,000 at a time.
    let m = mapping(OnRemove::Disable);
    // The mirror's e-mail index reads the source attributes' `emails` (as SCIM pushes
    // them): each user carries its address there too.
    let with_address = |person: &mut idsync::model::SourceUser, address: String| {
        person.emails[0].value = address.clone();
        person.attributes.insert(
            "emails".into(),
            serde_json::json!([{"value": address, "type": "work"}]),
        );
    };
    let mut people = users(2_500);
    for person in &mut people {
        let address = person.emails[0].value.clone();
        with_address(person, address);
    }
    let report = run(&db, "hr", &Scripted::full(people.clone(), vec![]), &m).await;
    assert_eq!(report.counts.users_created, 2_500);
    // 2,001 users get a new address; 499 stay as they were.
    for person in people.iter_mut().take(2_001) {
        let address = format!("new-{}", person.emails[0].value);
        with_address(person, address);
    }
    let report = run(&db, "hr", &Scripted::full(people, vec![]), &m).await;
    assert_eq!(report.counts.users_updated, 2_001);
    assert_eq!(
        report.counts.users_created + report.counts.users_disabled,
        0
    );
    // The mirror's e-mail index follows on both sides of the chunk boundary.
    let mut conn = db.pool().acquire().await.unwrap();
    for (filter, expected) in [
        (r#"emails.value eq "new-user1999@example.com""#, 1),
        (r#"emails.value eq "new-user2000@example.com""#, 1),
        (r#"emails.value eq "user2000@example.com""#, 0),
        (r#"emails.value eq "user2001@example.com""#, 1),
        (r#"emails.value sw "new-""#, 2_001),
    ] {
        let parsed = idsync::filter::parse_filter(filter).unwrap();
        let (total, _) =
            idsync::store::mirror::query::find_users(&mut conn, "hr", Some(&parsed), 1, 1)
                .await
                .unwrap();
        assert_eq!(total, expected, "{filter}");
    }
    // The target took every new address.
    let renamed = query::list_users(db.pool(), None, 3_000, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.email.as_deref().is_some_and(|e| e.starts_with("new-")))
        .count();
    assert_eq!(renamed, 2_001);
}
on_both_backends!(a_merge_larger_than_its_chunk_writes_every_changed_user);

async fn a_plan_larger_than_a_batch_writes_every_update_and_removal(db: TestDb) {
    // 3,200 user updates bind about 35,000 values, more than a batch holds (30,000): the
    // apply runs the batch part way through its updates, then goes on.
    let m = mapping(OnRemove::Disable);
    let mut people = users(3_200);
    let team = |members: &[idsync::model::SourceUser]| {
        let refs = members
            .iter()
            .map(|u| MemberRef::user(u.external_id.clone()))
            .collect();
        vec![group("g1", "Team", refs)]
    };
    let report = run(
        &db,
        "hr",
        &Scripted::full(people.clone(), team(&people)),
        &m,
    )
    .await;
    assert_eq!(report.counts.users_created, 3_200);
    assert_eq!(report.counts.memberships_added, 3_200);
    for person in &mut people {
        person.given_name = Some(format!("Renamed {}", person.external_id));
    }
    // A user new to the mirror beside the changed ones: its index rows are written
    // without removing any first, theirs are replaced.
    let mut newcomer = user("u-new", "newcomer@example.com");
    newcomer.attributes.insert(
        "emails".into(),
        serde_json::json!([{"value": "newcomer@example.com", "type": "work"}]),
    );
    people.push(newcomer);
    // Emptying the team is past the deletion limits; it is meant.
    let options = RunOptions {
        allow_mass_delete: true,
        ..RunOptions::default()
    };
    let source = Scripted::full(people, team(&[]));
    let report = run_with(&db, "hr", &source, &m, options).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.counts.users_updated, 3_200);
    assert_eq!(report.counts.users_created, 1);
    assert_eq!(report.counts.memberships_removed, 3_200);
    let renamed = query::list_users(db.pool(), None, 4_000, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| {
            u.given_name
                .as_deref()
                .is_some_and(|g| g.starts_with("Renamed "))
        })
        .count();
    assert_eq!(renamed, 3_200);
    assert!(effective(&db, "Team").await.is_empty());
    let mut conn = db.pool().acquire().await.unwrap();
    let parsed = idsync::filter::parse_filter(r#"emails.value eq "newcomer@example.com""#).unwrap();
    let (total, _) = idsync::store::mirror::query::find_users(&mut conn, "hr", Some(&parsed), 1, 1)
        .await
        .unwrap();
    assert_eq!(total, 1);
}
on_both_backends!(a_plan_larger_than_a_batch_writes_every_update_and_removal);

async fn a_merge_past_its_group_chunk_writes_every_changed_group(db: TestDb) {
    // The merge writes changed groups 500 at a time: 1,201 groups span three chunks.
    let m = mapping(OnRemove::Disable);
    let people = users(1_201);
    let teams = |renamed: usize, last_member: &str| -> Vec<idsync::model::SourceGroup> {
        (0..1_201)
            .map(|i| {
                let name = match i < renamed {
                    true => format!("Team {i} (renamed)"),
                    false => format!("Team {i}"),
                };
                let member = match i {
                    1_200 => last_member.to_string(),
                    _ => format!("u{i}"),
                };
                group(&format!("g{i}"), &name, vec![MemberRef::user(member)])
            })
            .collect()
    };
    let report = run(
        &db,
        "hr",
        &Scripted::full(people.clone(), teams(0, "u1200")),
        &m,
    )
    .await;
    assert_eq!(report.counts.groups_created, 1_201);
    assert_eq!(report.counts.memberships_added, 1_201);
    // 501 groups renamed, on both sides of the first chunk's end; the last group, in the
    // third chunk, changes its member.
    let report = run(&db, "hr", &Scripted::full(people, teams(501, "u0")), &m).await;
    assert_eq!(report.counts.groups_updated, 501);
    assert_eq!(
        (
            report.counts.memberships_added,
            report.counts.memberships_removed
        ),
        (1, 1)
    );
    for (name, member) in [
        ("Team 0 (renamed)", "user0@example.com"),
        ("Team 499 (renamed)", "user499@example.com"),
        ("Team 500 (renamed)", "user500@example.com"),
        ("Team 501", "user501@example.com"),
        ("Team 1200", "user0@example.com"),
    ] {
        assert_eq!(effective(&db, name).await, vec![member], "{name}");
    }
    let renamed = query::list_groups(db.pool(), None, 2_000, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.name.ends_with("(renamed)"))
        .count();
    assert_eq!(renamed, 501);
}
on_both_backends!(a_merge_past_its_group_chunk_writes_every_changed_group);

async fn delta_reads_apply_changes_and_keep_the_checkpoint(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    let mut first = directory();
    first.next_checkpoint = Some("cursor-1".into());
    run(&db, "graph", &first, &m).await;

    let delta = Scripted::delta(
        vec![
            SourceBatch::Users(vec![user("u9", "new@example.com")]),
            SourceBatch::Removed {
                users: vec!["u3".into()],
                groups: vec![],
            },
            SourceBatch::MemberChanges {
                group: "g-plat".into(),
                added: vec![MemberRef::user("u9")],
                removed: vec![MemberRef::user("u2")],
            },
        ],
        "cursor-2",
    );
    let mut lenient = m.clone();
    lenient.limits.max_delete_percent = 50.0;
    let report = run(&db, "graph", &delta, &lenient).await;
    assert_eq!(report.read_mode, Some(ReadMode::Delta.as_str()));
    assert_eq!(
        delta.seen_checkpoints.lock().unwrap().as_slice(),
        &[Some("cursor-1".to_string())]
    );
    assert_eq!(report.counts.users_created, 1);
    assert_eq!(report.counts.users_disabled, 1);
    assert_eq!(effective(&db, "Platform").await, vec!["new@example.com"]);
    assert_eq!(
        effective(&db, "Engineering").await,
        vec!["new@example.com", "user0@example.com"]
    );
    let again = Scripted::delta(vec![], "cursor-3");
    let report = run(&db, "graph", &again, &lenient).await;
    assert_eq!(report.outcome, Outcome::Unchanged);
    assert_eq!(
        again.seen_checkpoints.lock().unwrap().as_slice(),
        &[Some("cursor-2".to_string())]
    );
}
on_both_backends!(delta_reads_apply_changes_and_keep_the_checkpoint);

async fn reconcile_reprojects_without_reading(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(&db, "hr", &directory(), &m).await;
    let report = sync::reconcile(&db, "hr", &m, RunOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Unchanged);
    assert_eq!(report.counts, Default::default());
    // Switching the mapping to delete mode changes the fingerprint: a full re-projection.
    let mut deleting = mapping(OnRemove::Delete);
    deleting.limits.max_delete_percent = 100.0;
    let report = sync::reconcile(&db, "hr", &deleting, RunOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Unchanged);
    let recorded = runs::recent_runs(db.pool(), Some("hr"), 5).await.unwrap();
    assert_eq!(recorded[0].operation, "reconcile");
}
on_both_backends!(reconcile_reprojects_without_reading);

async fn switching_to_delete_removes_users_disabled_earlier(db: TestDb) {
    let mut m = mapping(OnRemove::Disable);
    m.limits.max_delete_percent = 100.0;
    run(&db, "hr", &Scripted::full(users(3), vec![]), &m).await;
    run(&db, "hr", &Scripted::full(users(2), vec![]), &m).await; // user2 disabled
    // The admin switches to delete, and a new person takes the freed name.
    let mut deleting = mapping(OnRemove::Delete);
    deleting.limits.max_delete_percent = 100.0;
    let mut next = users(2);
    next.push(user("new", "user2@example.com"));
    let report = run(&db, "hr", &Scripted::full(next, vec![]), &deleting).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.counts.users_deleted, 1);
    assert_eq!(report.counts.users_created, 1);
    let user2 = query::find_user(db.pool(), "user2@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user2.external_id, "new");
    assert!(user2.active);
}
on_both_backends!(switching_to_delete_removes_users_disabled_earlier);

async fn a_rename_conflict_still_applies_other_changes_and_is_retried(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    run(
        &db,
        "okta",
        &Scripted::full(vec![user("o1", "taken@example.com")], vec![]),
        &m,
    )
    .await;
    run(
        &db,
        "hr",
        &Scripted::full(vec![user("h1", "old@example.com")], vec![]),
        &m,
    )
    .await;
    // The source renames h1 onto a name okta holds, and deactivates it.
    let mut renamed = user("h1", "taken@example.com");
    renamed.active = false;
    let source = Scripted::full(vec![renamed.clone()], vec![]);
    let report = run(&db, "hr", &source, &m).await;
    assert_eq!(report.conflicts.len(), 1);
    let h1 = query::find_user(db.pool(), "old@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !h1.active,
        "the deactivation went through under the old name"
    );
    // okta lets the name go; the next run of hr (same source) takes it.
    let mut lenient = m.clone();
    lenient.limits.max_delete_percent = 100.0;
    run(
        &db,
        "okta",
        &Scripted::full(vec![user("o2", "other@example.com")], vec![]),
        &{
            let mut d = lenient.clone();
            d.on_remove = OnRemove::Delete;
            d
        },
    )
    .await;
    let report = run(&db, "hr", &source, &m).await;
    assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
    assert_eq!(report.counts.users_updated, 1);
    let h1 = query::find_user(db.pool(), "taken@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h1.external_id, "h1");
}
on_both_backends!(a_rename_conflict_still_applies_other_changes_and_is_retried);

/// The users of a scenario, changed step by step.
type People = Vec<idsync::model::SourceUser>;
/// One change to the users of a scenario.
type Step = Box<dyn Fn(&mut People)>;

/// Runs that change only users plan just those users; after each, a full re-projection
/// (reconcile) must find nothing to change, which proves both paths agree.
async fn changed_users_only_planning_agrees_with_a_full_projection(db: TestDb) {
    let toml = "max_delete_percent = 100.0\n\
        [filter]\nexclude_users = 'title eq \"Contractor\"'\n\
        [groups]\ndefault = [\"all-staff\"]\n\
        [[applications]]\nname = \"jira\"\ngroups = [\"jira-users\"]\nwhen = 'groups eq \"Platform\"'\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idsync.toml"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    std::fs::write(dir.path().join("mappings/staff.toml"), toml).unwrap();
    let config = idsync::config::Config::load(&dir.path().join("idsync.toml")).unwrap();
    let m = config.mappings["staff"].clone();

    let mut people = users(6);
    for (i, u) in people.iter_mut().enumerate() {
        u.attributes.insert(
            "title".into(),
            serde_json::json!(if i == 5 { "Contractor" } else { "Engineer" }),
        );
    }
    let groups = || {
        vec![
            group(
                "g-eng",
                "Engineering",
                vec![MemberRef::user("u0"), MemberRef::group("g-plat")],
            ),
            group(
                "g-plat",
                "Platform",
                vec![MemberRef::user("u1"), MemberRef::user("u2")],
            ),
            group(
                "g-all",
                "Everyone",
                (0..6).map(|i| MemberRef::user(format!("u{i}"))).collect(),
            ),
        ]
    };
    run(&db, "hr", &Scripted::full(people.clone(), groups()), &m).await;

    let steps: Vec<Step> = vec![
        // Rename and deactivate.
        Box::new(|p| {
            p[0].user_name = "renamed0@example.com".into();
            p[3].active = false;
        }),
        // A user becomes a contractor (filtered out), another stops being one.
        Box::new(|p| {
            p[1].attributes
                .insert("title".into(), serde_json::json!("Contractor"));
            p[5].attributes
                .insert("title".into(), serde_json::json!("Engineer"));
        }),
        // A user leaves, a new one (in no group yet) arrives.
        Box::new(|p| {
            p.retain(|u| u.external_id != "u4");
            p.push(user("u9", "new9@example.com"));
        }),
        // A rename onto a name another user of the connector holds: a conflict.
        Box::new(|p| {
            p[0].user_name = "user2@example.com".into();
        }),
    ];
    for (i, step) in steps.iter().enumerate() {
        step(&mut people);
        let report = run(&db, "hr", &Scripted::full(people.clone(), groups()), &m).await;
        // Step 2 removes a user that groups listed: their member lists changed too, so
        // that run plans the groups that changed as well (their nesting did not change).
        let expected = if i == 2 {
            "changed users and groups"
        } else {
            "changed users"
        };
        assert_eq!(report.projection, Some(expected), "step {i}");
        let check = sync::reconcile(&db, "hr", &m, RunOptions::default(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(
            check.counts.users_created + check.counts.users_updated,
            0,
            "step {i}: {:?}",
            check.preview
        );
        assert_eq!(
            check.counts.users_disabled + check.counts.users_deleted,
            0,
            "step {i}: {:?}",
            check.preview
        );
        assert_eq!(
            check.counts.memberships_added + check.counts.memberships_removed,
            0,
            "step {i}: {:?}",
            check.preview
        );
        assert_eq!(
            check.counts.groups_created, 0,
            "step {i}: {:?}",
            check.preview
        );
    }
    // Effective membership followed the users: u1 (contractor) left Platform and jira.
    assert_eq!(
        effective(&db, "jira-users").await,
        vec!["user2@example.com"]
    );
    assert_eq!(
        effective(&db, "Engineering").await,
        vec!["renamed0@example.com", "user2@example.com"]
    );
}
on_both_backends!(changed_users_only_planning_agrees_with_a_full_projection);

/// The source's groups of [`group_changes_plan_only_what_they_affect`]: Engineering holds
/// Platform, and each of them, Ops and Everyone hold users.
type Groups = Vec<idsync::model::SourceGroup>;
/// One change to the groups of a scenario, and the projection the run must choose.
type GroupStep = (Box<dyn Fn(&mut Groups)>, &'static str);

/// Every effective membership of the target, as (group name, user name).
async fn effective_pairs(db: &Db) -> std::collections::BTreeSet<(String, String)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT g.name, u.user_name FROM effective_memberships e \
         JOIN groups g ON g.id = e.group_id JOIN users u ON u.id = e.user_id",
    )
    .fetch_all(db.pool())
    .await
    .expect("effective memberships")
    .iter()
    .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1)))
    .collect()
}

/// Runs that change groups plan only the users and groups the change affects (members
/// moved, a group renamed, a group of users created, a nesting edge added, a group moved
/// to another parent, a group removed, a nested group removed); after each, a full
/// re-projection (reconcile) must find nothing to change, and the effective memberships
/// are what a first full sync of the same source gives.
async fn group_changes_plan_only_what_they_affect(db: TestDb) {
    let toml = "max_delete_percent = 100.0\nmax_deletes = 1000\n\
        max_membership_removals = 100000\nmax_membership_removal_percent = 100.0\n\
        [[applications]]\nname = \"jira\"\ngroups = [\"jira-users\"]\nwhen = 'groups eq \"Platform\"'\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idsync.toml"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    std::fs::write(dir.path().join("mappings/staff.toml"), toml).unwrap();
    let config = idsync::config::Config::load(&dir.path().join("idsync.toml")).unwrap();
    let m = config.mappings["staff"].clone();
    let people = users(200);
    let range = |from: usize, to: usize| -> Vec<MemberRef> {
        (from..to)
            .map(|i| MemberRef::user(format!("u{i}")))
            .collect()
    };
    let mut groups: Groups = vec![
        group("g-eng", "Engineering", {
            let mut members = range(0, 100);
            members.push(MemberRef::group("g-plat"));
            members
        }),
        group("g-plat", "Platform", range(100, 150)),
        group("g-ops", "Ops", range(150, 200)),
        group("g-all", "Everyone", range(0, 200)),
    ];
    run(
        &db,
        "hr",
        &Scripted::full(people.clone(), groups.clone()),
        &m,
    )
    .await;
    assert_eq!(effective(&db, "jira-users").await.len(), 50);

    let steps: Vec<GroupStep> = vec![
        // 100 users move: 50 from Engineering to Ops, 50 from Ops to Engineering.
        (
            Box::new(move |g: &mut Groups| {
                g[0].members.retain(|m| !range(0, 50).contains(m));
                g[0].members.extend(range(150, 200));
                g[2].members = range(0, 50);
            }),
            "changed users and groups",
        ),
        // A rename: the application rule reads the name, so Platform's users leave jira.
        (
            Box::new(|g: &mut Groups| g[1].display_name = "Platform Team".into()),
            "changed users and groups",
        ),
        // A new group of users.
        (
            Box::new(move |g: &mut Groups| {
                g.push(group("g-sales", "Sales", range(10, 12)));
            }),
            "changed users and groups",
        ),
        // A nesting edge: Ops joins Engineering.
        (
            Box::new(|g: &mut Groups| g[0].members.push(MemberRef::group("g-ops"))),
            "changed users and groups",
        ),
        // A group moves: Platform leaves Engineering for Ops.
        (
            Box::new(|g: &mut Groups| {
                g[0].members.retain(|m| *m != MemberRef::group("g-plat"));
                g[2].members.push(MemberRef::group("g-plat"));
            }),
            "changed users and groups",
        ),
        // A group goes.
        (
            Box::new(|g: &mut Groups| {
                g.retain(|g| g.external_id != "g-sales");
            }),
            "changed users and groups",
        ),
        // A nested group goes: Platform, held by Ops (its users leave Ops and Engineering).
        (
            Box::new(|g: &mut Groups| {
                g.retain(|g| g.external_id != "g-plat");
            }),
            "changed users and groups",
        ),
    ];
    for (i, (step, expected)) in steps.iter().enumerate() {
        step(&mut groups);
        let report = run(
            &db,
            "hr",
            &Scripted::full(people.clone(), groups.clone()),
            &m,
        )
        .await;
        assert_eq!(report.projection, Some(*expected), "step {i}");
        let check = sync::reconcile(&db, "hr", &m, RunOptions::default(), &NoProgress)
            .await
            .unwrap();
        let mut left = check.counts;
        left.warnings = 0;
        assert_eq!(
            left,
            idsync::pipeline::plan::PlanCounts::default(),
            "step {i}: {:?}",
            check.preview
        );
        // The effective memberships too: as a first full sync of the same source gives.
        let fresh = crate::support::sqlite().await;
        run(
            &fresh,
            "hr",
            &Scripted::full(people.clone(), groups.clone()),
            &m,
        )
        .await;
        assert_eq!(
            effective_pairs(&db).await,
            effective_pairs(&fresh).await,
            "step {i}"
        );
    }
    // Engineering: its own 100 (50 stayed, 50 came from Ops) and, through Ops, Ops' 50
    // (Platform, which was under Ops, is gone).
    assert_eq!(effective(&db, "Engineering").await.len(), 150);
    assert_eq!(effective(&db, "Ops").await.len(), 50);
    assert!(effective(&db, "jira-users").await.is_empty());
    assert!(
        query::find_group(db.pool(), "Platform Team")
            .await
            .unwrap()
            .is_none()
    );
}
on_both_backends!(group_changes_plan_only_what_they_affect);

/// Two runs of one connector at once (two nodes, or a schedule and a manual run) take
/// turns: one applies, the other finds nothing left to do, and nothing is applied twice.
async fn concurrent_runs_of_one_connector_take_turns(db: TestDb) {
    let m = mapping(OnRemove::Disable);
    let (a, b) = (directory(), directory());
    let (first, second) = tokio::join!(
        run_with(&db, "hr", &a, &m, RunOptions::default()),
        run_with(&db, "hr", &b, &m, RunOptions::default()),
    );
    let mut outcomes = vec![first.unwrap().outcome, second.unwrap().outcome];
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, vec![Outcome::Succeeded, Outcome::Unchanged]);
    assert_eq!(counts(&db).await, (4, 3, 7, 7));
}
on_both_backends!(concurrent_runs_of_one_connector_take_turns);
