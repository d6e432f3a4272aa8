//! Runs of the mapping pipeline against a real database (SQLite always, PostgreSQL when
//! configured): filters, attribute expressions, default and application groups, group
//! names, nesting kept or flattened (a case matrix over chains, cycles, diamonds and
//! excluded groups), and reconciling after a mapping change.
//!
//! Mappings are written as TOML and loaded through the real configuration loader, so the
//! fingerprint that decides re-projection is the real one too.

use idsync::config::{Config, MappingConfig};
use idsync::db::{Backend, Db};
use idsync::model::{MemberRef, SourceUser};
use idsync::pipeline::plan::PlanCounts;
use idsync::store::runs::{self, Outcome};
use idsync::sync::{self, NoProgress, RunOptions, RunReport};
use idsync::target::query;
use serde_json::{Map, Value, json};

use crate::on_both_backends;
use crate::support::scripted::{Scripted, group, user};
use crate::support::{self, TestDb};

// ---------------------------------------------------------------------------------------
// Helpers shared with golden.rs

/// Loads mapping `name` written as `text` through the real configuration loader (a
/// temporary tree: `idsync.toml` + `mappings/<name>.toml`).
pub(crate) fn load_mapping(name: &str, text: &str) -> MappingConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("idsync.toml"),
        "[target]\ndatabase_url = \"sqlite://unused.db\"\n",
    )
    .expect("write idsync.toml");
    std::fs::create_dir(dir.path().join("mappings")).expect("mkdir mappings");
    std::fs::write(dir.path().join(format!("mappings/{name}.toml")), text).expect("write mapping");
    let mut config = Config::load(&dir.path().join("idsync.toml"))
        .unwrap_or_else(|e| panic!("mapping {name} must load:\n{e}\n---\n{text}"));
    config.mappings.remove(name).expect("the mapping is loaded")
}

/// The whole target as canonical JSON, by name (ids and timestamps left out):
/// `{"users": {user_name: {...}}, "groups": {name: {...}}}`.
pub(crate) async fn target_json(db: &Db) -> Value {
    let pool = db.pool();
    let mut users = Map::new();
    for u in query::list_users(pool, None, 100_000, 0)
        .await
        .expect("list users")
    {
        users.insert(
            u.user_name.clone(),
            json!({
                "connector": u.connector,
                "external_id": u.external_id,
                "display_name": u.display_name,
                "given_name": u.given_name,
                "family_name": u.family_name,
                "email": u.email,
                "active": u.active,
                "removed": u.removed_at.is_some(),
                "attributes": u.attributes,
            }),
        );
    }
    let mut groups = Map::new();
    for g in query::list_groups(pool, None, 100_000, 0)
        .await
        .expect("list groups")
    {
        let direct = query::direct_members(pool, &g.id)
            .await
            .expect("direct members");
        let names = |kind: &str| -> Vec<String> {
            let mut names: Vec<String> = direct
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| m.name.clone())
                .collect();
            names.sort();
            names
        };
        let mut effective: Vec<String> = query::effective_members(pool, &g.id)
            .await
            .expect("effective members")
            .into_iter()
            .map(|m| m.name)
            .collect();
        effective.sort();
        groups.insert(
            g.name.clone(),
            json!({
                "owner": g.connector,
                "external_id": g.external_id,
                "description": g.description,
                "member_users": names("user"),
                "member_groups": names("group"),
                "effective_users": effective,
            }),
        );
    }
    json!({"users": users, "groups": groups})
}

async fn run(db: &Db, connector: &str, source: &Scripted, mapping: &MappingConfig) -> RunReport {
    let report = sync::sync(
        db,
        connector,
        mapping,
        source,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .expect("run succeeds");
    assert_ne!(report.outcome, Outcome::Held, "{:?}", report.message);
    report
}

async fn reconcile(db: &Db, connector: &str, mapping: &MappingConfig, dry_run: bool) -> RunReport {
    let options = RunOptions {
        dry_run,
        ..RunOptions::default()
    };
    sync::reconcile(db, connector, mapping, options, &NoProgress)
        .await
        .expect("reconcile succeeds")
}

async fn group_row(db: &Db, name: &str) -> query::GroupRow {
    query::find_group(db.pool(), name)
        .await
        .expect("find group")
        .unwrap_or_else(|| panic!("group {name:?} exists"))
}

async fn has_group(db: &Db, name: &str) -> bool {
    query::find_group(db.pool(), name)
        .await
        .expect("find group")
        .is_some()
}

async fn user_row(db: &Db, name: &str) -> query::UserRow {
    query::find_user(db.pool(), name)
        .await
        .expect("find user")
        .unwrap_or_else(|| panic!("user {name:?} exists"))
}

async fn has_user(db: &Db, name: &str) -> bool {
    query::find_user(db.pool(), name)
        .await
        .expect("find user")
        .is_some()
}

/// Direct members of a group of one kind ("user" or "group"), by name, sorted.
async fn direct(db: &Db, group: &str, kind: &str) -> Vec<String> {
    let g = group_row(db, group).await;
    let mut names: Vec<String> = query::direct_members(db.pool(), &g.id)
        .await
        .expect("direct members")
        .into_iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

/// Effective users of a group, by user name, sorted.
async fn effective(db: &Db, group: &str) -> Vec<String> {
    let g = group_row(db, group).await;
    let mut names: Vec<String> = query::effective_members(db.pool(), &g.id)
        .await
        .expect("effective members")
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

async fn group_names(db: &Db) -> Vec<String> {
    let mut names: Vec<String> = query::list_groups(db.pool(), None, 10_000, 0)
        .await
        .expect("list groups")
        .into_iter()
        .map(|g| g.name)
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    names
}

async fn active_user_names(db: &Db) -> Vec<String> {
    let mut names: Vec<String> = query::list_users(db.pool(), None, 10_000, 0)
        .await
        .expect("list users")
        .into_iter()
        .filter(|u| u.active)
        .map(|u| u.user_name)
        .collect();
    names.sort();
    names
}

/// Removes one direct membership the way an admin would in the target (the effective row it
/// implied goes with it: `effective_memberships` shows direct memberships through a view).
async fn admin_removes_membership(db: &Db, group: &str, user: &str) {
    let g = group_row(db, group).await;
    let u = user_row(db, user).await;
    let removed = sqlx::query("DELETE FROM memberships WHERE group_id = $1 AND member_id = $2")
        .bind(g.id.clone())
        .bind(u.id.clone())
        .execute(db.pool())
        .await
        .expect("delete membership")
        .rows_affected();
    assert_eq!(removed, 1, "{user} was a direct member of {group}");
}

/// A user whose user name is `id` and whose email is `id@example.com`.
fn person(id: &str) -> SourceUser {
    let mut u = user(id, &format!("{id}@example.com"));
    u.user_name = id.to_string();
    u
}

fn people(ids: &[&str]) -> Vec<SourceUser> {
    ids.iter().map(|id| person(id)).collect()
}

fn users_in(ids: &[&str]) -> Vec<MemberRef> {
    ids.iter().map(|id| MemberRef::user(*id)).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn attrs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Filters

const FILTERS: &str = r#"
max_delete_percent = 100.0

[filter]
include_users = 'emails.value ew "@example.com" and active eq true'
exclude_users = 'userName sw "svc-"'
include_groups = 'displayName sw "team-"'
exclude_groups = 'displayName eq "team-secret"'
"#;

fn filter_source(dan_email: &str, with_gus: bool) -> Scripted {
    let mut users = vec![
        user("ann", "ann@example.com"),
        user("bob", "bob@partner.org"),
        {
            let mut cat = user("cat", "cat@example.com");
            cat.active = false;
            cat
        },
        user("svc", "svc-backup@example.com"),
        user("dan", dan_email),
    ];
    let mut all_hands = users_in(&["ann", "dan"]);
    if with_gus {
        users.push(user("gus", "gus@example.com"));
        all_hands.push(MemberRef::user("gus"));
    }
    Scripted::full(
        users,
        vec![
            group(
                "g-eng",
                "team-eng",
                users_in(&["ann", "bob", "cat", "svc", "dan"]),
            ),
            group("g-secret", "team-secret", users_in(&["ann"])),
            group("g-all", "all-hands", all_hands),
        ],
    )
}

async fn filters_choose_users_and_groups(db: TestDb) {
    let m = load_mapping("staff", FILTERS);
    let report = run(&db, "hr", &filter_source("dan@example.com", true), &m).await;
    // ann, dan and gus match; bob (wrong domain) and cat (inactive) do not; svc-backup
    // matches the include filter but the exclusion wins.
    assert_eq!(
        report.counts,
        PlanCounts {
            users_created: 3,
            groups_created: 1,
            memberships_added: 2,
            ..PlanCounts::default()
        }
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        active_user_names(&db).await,
        ["ann@example.com", "dan@example.com", "gus@example.com"]
    );
    for gone in [
        "bob@partner.org",
        "cat@example.com",
        "svc-backup@example.com",
    ] {
        assert!(!has_user(&db, gone).await, "{gone} is filtered out");
    }
    // team-secret is excluded although it matches the include filter; all-hands does not
    // match it.
    assert_eq!(group_names(&db).await, ["team-eng"]);
    assert!(!has_group(&db, "team-secret").await);
    assert_eq!(
        direct(&db, "team-eng", "user").await,
        ["ann@example.com", "dan@example.com"]
    );
    assert_eq!(
        effective(&db, "team-eng").await,
        ["ann@example.com", "dan@example.com"]
    );

    // dan moves to another domain (stops matching) and gus leaves the source: both are
    // disabled the same way.
    let report = run(&db, "hr", &filter_source("dan@partner.org", false), &m).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(
        report.counts,
        PlanCounts {
            users_disabled: 2,
            memberships_removed: 1,
            ..PlanCounts::default()
        }
    );
    assert!(
        report
            .preview
            .contains(&"disable user dan@example.com (left the source or its filter)".to_string()),
        "{:?}",
        report.preview
    );
    for name in ["dan@example.com", "gus@example.com"] {
        let u = user_row(&db, name).await;
        assert!(!u.active, "{name} is disabled");
        assert!(u.removed_at.is_some(), "{name} is marked removed");
    }
    assert_eq!(active_user_names(&db).await, ["ann@example.com"]);
    assert_eq!(direct(&db, "team-eng", "user").await, ["ann@example.com"]);
    assert_eq!(effective(&db, "team-eng").await, ["ann@example.com"]);

    // dan matches again: re-enabled under the same record, back in the group.
    let report = run(&db, "hr", &filter_source("dan@example.com", false), &m).await;
    assert_eq!(
        report.counts,
        PlanCounts {
            users_updated: 1,
            memberships_added: 1,
            ..PlanCounts::default()
        }
    );
    let dan = user_row(&db, "dan@example.com").await;
    assert!(dan.active && dan.removed_at.is_none());
    assert_eq!(
        effective(&db, "team-eng").await,
        ["ann@example.com", "dan@example.com"]
    );
}
on_both_backends!(filters_choose_users_and_groups);

async fn a_group_that_stops_matching_is_deleted(db: TestDb) {
    let m = load_mapping(
        "staff",
        "max_delete_percent = 100.0\n[filter]\ninclude_groups = 'displayName sw \"team-\"'\n",
    );
    let source = |name: &str| {
        Scripted::full(
            people(&["ann"]),
            vec![
                group("g1", "team-a", users_in(&["ann"])),
                group("g2", name, users_in(&["ann"])),
            ],
        )
    };
    run(&db, "hr", &source("team-b"), &m).await;
    assert_eq!(group_names(&db).await, ["team-a", "team-b"]);
    let report = run(&db, "hr", &source("archive-b"), &m).await;
    assert_eq!(report.counts.groups_deleted, 1);
    assert_eq!(report.counts.memberships_removed, 1);
    assert_eq!(group_names(&db).await, ["team-a"]);
}
on_both_backends!(a_group_that_stops_matching_is_deleted);

// ---------------------------------------------------------------------------------------
// 2. Attributes

const ATTRIBUTES: &str = r#"
max_delete_percent = 100.0

[attributes]
user_name = "userPrincipalName | lower"
email = "mail ?? otherMails[0] | lower"
display_name = 'displayName ?? "{givenName} {surname}"'
given_name = "givenName"
family_name = "surname | upper"

[attributes.custom]
login = "userPrincipalName | strip_domain | lower"
phone = 'mobilePhone | replace("[^0-9+]", "")'
department = 'department | default("Unassigned")'
employee_id = "employeeId"
"#;

/// A Graph-like user: the normalised fields plus the raw attributes a mapping reads.
fn graph_user(id: &str, attributes: Value) -> SourceUser {
    let attributes = attrs(attributes);
    let text = |key: &str| {
        attributes
            .get(key)
            .and_then(Value::as_str)
            .map(String::from)
    };
    SourceUser {
        external_id: id.into(),
        user_name: text("userPrincipalName").unwrap_or_else(|| format!("{id}@fallback")),
        given_name: text("givenName"),
        family_name: text("surname"),
        display_name: text("displayName"),
        emails: Vec::new(),
        active: true,
        attributes,
    }
}

fn attribute_source() -> Scripted {
    Scripted::full(
        vec![
            graph_user(
                "u-ann",
                json!({"userPrincipalName": "Ann.Lee@Contoso.com", "mail": "Ann.Lee@Contoso.com",
                    "givenName": "Ann", "surname": "Lee", "displayName": "Ann Lee",
                    "mobilePhone": "+49 (151) 234-567", "department": "Engineering",
                    "employeeId": "E1001"}),
            ),
            graph_user(
                "u-bob",
                json!({"userPrincipalName": "BOB.RAY@contoso.com",
                    "otherMails": ["Bob.Ray@Home.example"],
                    "givenName": "Bob", "surname": "Ray"}),
            ),
            // No user principal name: the user name ends up empty.
            graph_user(
                "u-eve",
                json!({"mail": "eve@contoso.com", "displayName": "Eve"}),
            ),
            // No mail and no other mails: no email.
            graph_user(
                "u-cat",
                json!({"userPrincipalName": "cat@contoso.com", "displayName": "Cat Kim"}),
            ),
            // No display name, and the template misses the surname: no display name.
            graph_user(
                "u-dan",
                json!({"userPrincipalName": "dan@contoso.com", "mail": "dan@contoso.com",
                    "givenName": "Dan"}),
            ),
        ],
        vec![group(
            "g-all",
            "All",
            users_in(&["u-ann", "u-bob", "u-eve", "u-cat", "u-dan"]),
        )],
    )
}

async fn attributes_are_computed_by_expressions(db: TestDb) {
    let m = load_mapping("graph", ATTRIBUTES);
    let report = run(&db, "graph", &attribute_source(), &m).await;
    assert_eq!(report.counts.users_created, 2);

    let ann = user_row(&db, "ann.lee@contoso.com").await;
    // `??` binds looser than `|`: mail is taken as it is, only the fallback is lowered.
    assert_eq!(ann.email.as_deref(), Some("Ann.Lee@Contoso.com"));
    assert_eq!(ann.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(ann.given_name.as_deref(), Some("Ann"));
    assert_eq!(ann.family_name.as_deref(), Some("LEE"));
    assert_eq!(
        ann.attributes,
        json!({"department": "Engineering", "employee_id": "E1001", "login": "ann.lee",
            "phone": "+49151234567"}),
        "custom attributes replace the source attributes"
    );

    let bob = user_row(&db, "bob.ray@contoso.com").await;
    assert_eq!(bob.user_name, "bob.ray@contoso.com");
    assert_eq!(bob.email.as_deref(), Some("bob.ray@home.example"));
    // The template fills in when displayName is missing.
    assert_eq!(bob.display_name.as_deref(), Some("Bob Ray"));
    assert_eq!(bob.family_name.as_deref(), Some("RAY"));
    // A missing value is left out; default() fills one in.
    assert_eq!(
        bob.attributes,
        json!({"department": "Unassigned", "login": "bob.ray"})
    );
    assert_eq!(
        effective(&db, "All").await,
        ["ann.lee@contoso.com", "bob.ray@contoso.com"]
    );
}
on_both_backends!(attributes_are_computed_by_expressions);

async fn a_user_whose_required_field_is_empty_is_skipped_and_reported(db: TestDb) {
    let m = load_mapping("graph", ATTRIBUTES);
    let report = run(&db, "graph", &attribute_source(), &m).await;
    let mut warnings = report.warnings.clone();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "user \"u-cat\" skipped: user \"cat@contoso.com\" has no email",
            "user \"u-dan\" skipped: user \"dan@contoso.com\" has no display name",
            "user \"u-eve\" skipped: its user name is empty",
        ]
    );
    assert_eq!(report.counts.warnings, 3);
    assert_eq!(report.counts.users_created, 2);
    for name in ["cat@contoso.com", "dan@contoso.com", "eve@contoso.com"] {
        assert!(!has_user(&db, name).await, "{name} is not written");
    }
    let (users, _, memberships, _) = query::table_counts(db.pool()).await.unwrap();
    assert_eq!((users, memberships), (2, 2));
    // The warnings are kept with the run.
    let recorded = runs::recent_runs(db.pool(), Some("graph"), 1)
        .await
        .unwrap();
    assert_eq!(recorded[0].counts.warnings, 3);
    let details = recorded[0].details.clone().expect("details");
    assert_eq!(details["warnings"].as_array().map(Vec::len), Some(3));
}
on_both_backends!(a_user_whose_required_field_is_empty_is_skipped_and_reported);

async fn without_attribute_rules_the_source_fields_pass_through(db: TestDb) {
    let m = load_mapping("plain", "");
    let mut ann = person("ann");
    ann.display_name = None;
    ann.attributes = attrs(json!({"department": "Sales", "location": {"office": "Berlin"}}));
    let mut upn_only = person("bob@example.com");
    upn_only.emails.clear();
    run(&db, "hr", &Scripted::full(vec![ann, upn_only], vec![]), &m).await;
    let ann = user_row(&db, "ann").await;
    assert_eq!(ann.display_name.as_deref(), Some("Given ann Family ann"));
    assert_eq!(ann.email.as_deref(), Some("ann@example.com"));
    assert_eq!(
        ann.attributes,
        json!({"department": "Sales", "location": {"office": "Berlin"}})
    );
    // Without an email, a user name that is an address serves.
    let bob = user_row(&db, "bob@example.com").await;
    assert_eq!(bob.email.as_deref(), Some("bob@example.com"));
}
on_both_backends!(without_attribute_rules_the_source_fields_pass_through);

/// A user who is still in the source but whose mapped email becomes empty is skipped and
/// reported. "Not written" must hold for users already in the target too: the record stays
/// as it was (active, old email) instead of being disabled as if the person had left.
async fn an_existing_user_whose_required_field_becomes_empty_is_left_alone(db: TestDb) {
    let m = load_mapping(
        "graph",
        "max_delete_percent = 100.0\n[attributes]\nemail = \"mail\"\n",
    );
    let source = |mail: Option<&str>| {
        let mut ann = person("ann");
        let mut bob = person("bob");
        bob.attributes = attrs(json!({"mail": "bob@contoso.com"}));
        if let Some(mail) = mail {
            ann.attributes = attrs(json!({"mail": mail}));
        }
        ann.emails.clear();
        bob.emails.clear();
        Scripted::full(
            vec![ann, bob],
            vec![group("g", "Staff", users_in(&["ann", "bob"]))],
        )
    };
    run(&db, "graph", &source(Some("ann@contoso.com")), &m).await;
    assert!(user_row(&db, "ann").await.active);

    let report = run(&db, "graph", &source(None), &m).await;
    assert_eq!(
        report.warnings,
        ["user \"ann\" skipped: user \"ann\" has no email"]
    );
    assert_eq!(report.counts.users_disabled, 0, "{:?}", report.preview);
    let ann = user_row(&db, "ann").await;
    assert!(ann.active, "ann is still in the source");
    assert_eq!(ann.email.as_deref(), Some("ann@contoso.com"));
    assert_eq!(effective(&db, "Staff").await, ["ann", "bob"]);
}
on_both_backends!(an_existing_user_whose_required_field_becomes_empty_is_left_alone);

/// A display name of spaces is no display name: the given and family names serve, as they
/// do when the display name is absent.
async fn a_blank_display_name_falls_back_to_the_names(db: TestDb) {
    let mut ann = person("ann");
    ann.display_name = Some("   ".into());
    let report = run(
        &db,
        "hr",
        &Scripted::full(vec![ann], vec![]),
        &load_mapping("plain", ""),
    )
    .await;
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        user_row(&db, "ann").await.display_name.as_deref(),
        Some("Given ann Family ann")
    );
}
on_both_backends!(a_blank_display_name_falls_back_to_the_names);

// ---------------------------------------------------------------------------------------
// 3. Default groups, renames and prefixes

fn staff_source(ann_title: &str, extra: &[&str]) -> Scripted {
    let mut users = people(&["ann", "bob"]);
    users[0].display_name = Some(ann_title.to_string());
    users.extend(people(extra));
    Scripted::full(users, vec![])
}

async fn default_groups_on_create_are_not_forced_back(db: TestDb) {
    let m = load_mapping(
        "staff",
        "[groups]\ndefault = [\"All Staff\", \"VPN Users\"]\ndefault_apply = \"on_create\"\n",
    );
    let report = run(&db, "hr", &staff_source("Ann", &[]), &m).await;
    assert_eq!(report.counts.users_created, 2);
    assert_eq!(report.counts.memberships_added, 4);
    let all = group_row(&db, "All Staff").await;
    assert_eq!(all.connector, "mapping:staff", "owned by the mapping");
    assert_eq!(
        all.description.as_deref(),
        Some("managed by idsync mapping `staff`")
    );
    for g in ["All Staff", "VPN Users"] {
        assert_eq!(direct(&db, g, "user").await, ["ann", "bob"], "{g}");
        assert_eq!(effective(&db, g).await, ["ann", "bob"], "{g}");
    }

    // An admin takes bob out of VPN Users; a change in the source forces a run.
    admin_removes_membership(&db, "VPN Users", "bob").await;
    let report = run(&db, "hr", &staff_source("Ann Lee", &[]), &m).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(
        report.counts,
        PlanCounts {
            users_updated: 1,
            ..PlanCounts::default()
        }
    );
    assert_eq!(direct(&db, "VPN Users", "user").await, ["ann"]);
    assert_eq!(effective(&db, "VPN Users").await, ["ann"]);

    // A new user gets the defaults; bob is still not put back, also not by a reconcile.
    let report = run(&db, "hr", &staff_source("Ann Lee", &["cat"]), &m).await;
    assert_eq!(report.counts.users_created, 1);
    assert_eq!(report.counts.memberships_added, 2);
    let report = reconcile(&db, "hr", &m, false).await;
    assert_eq!(report.counts, PlanCounts::default());
    assert_eq!(direct(&db, "VPN Users", "user").await, ["ann", "cat"]);
    assert_eq!(effective(&db, "VPN Users").await, ["ann", "cat"]);
    assert_eq!(effective(&db, "All Staff").await, ["ann", "bob", "cat"]);
    let (_, bob_effective) = query::user_groups(db.pool(), &user_row(&db, "bob").await.id)
        .await
        .unwrap();
    assert_eq!(bob_effective, ["All Staff"]);
}
on_both_backends!(default_groups_on_create_are_not_forced_back);

async fn default_groups_always_are_re_added(db: TestDb) {
    let m = load_mapping(
        "staff",
        "max_delete_percent = 100.0\n[groups]\ndefault = [\"All Staff\"]\ndefault_apply = \"always\"\n",
    );
    run(&db, "hr", &staff_source("Ann", &[]), &m).await;
    assert_eq!(group_row(&db, "All Staff").await.connector, "mapping:staff");
    assert_eq!(effective(&db, "All Staff").await, ["ann", "bob"]);

    admin_removes_membership(&db, "All Staff", "bob").await;
    let report = run(&db, "hr", &staff_source("Ann Lee", &[]), &m).await;
    // Only Ann changed: the plan covers her and bob, who is outside the default group,
    // not every user.
    assert_eq!(report.projection, Some("changed users"));
    assert_eq!(
        report.counts,
        PlanCounts {
            users_updated: 1,
            memberships_added: 1,
            ..PlanCounts::default()
        }
    );
    assert_eq!(direct(&db, "All Staff", "user").await, ["ann", "bob"]);
    assert_eq!(effective(&db, "All Staff").await, ["ann", "bob"]);

    // Applied on every run: a user who leaves loses it.
    let report = run(&db, "hr", &Scripted::full(people(&["ann"]), vec![]), &m).await;
    assert_eq!(report.counts.users_disabled, 1);
    assert_eq!(report.counts.memberships_removed, 1);
    assert_eq!(effective(&db, "All Staff").await, ["ann"]);
}
on_both_backends!(default_groups_always_are_re_added);

/// Switching a mapping from `always` to `on_create` changes who gets the default groups
/// from now on. The users who hold them already keep them: on_create means "an admin's
/// later change is not overridden", and nothing was changed by an admin here.
async fn switching_default_apply_to_on_create_keeps_existing_members(db: TestDb) {
    let always = load_mapping(
        "staff",
        "[groups]\ndefault = [\"All Staff\"]\ndefault_apply = \"always\"\n",
    );
    run(&db, "hr", &staff_source("Ann", &[]), &always).await;
    assert_eq!(effective(&db, "All Staff").await, ["ann", "bob"]);
    let on_create = load_mapping(
        "staff",
        "[groups]\ndefault = [\"All Staff\"]\ndefault_apply = \"on_create\"\n",
    );
    let report = reconcile(&db, "hr", &on_create, false).await;
    assert_eq!(report.counts.memberships_removed, 0, "{:?}", report.preview);
    assert_eq!(direct(&db, "All Staff", "user").await, ["ann", "bob"]);
    assert_eq!(effective(&db, "All Staff").await, ["ann", "bob"]);
}
on_both_backends!(switching_default_apply_to_on_create_keeps_existing_members);

async fn source_groups_are_renamed_and_prefixed(db: TestDb) {
    let m = load_mapping(
        "corp",
        r#"
[groups]
prefix = "idp-"
rename = { "Engineering" = "eng-all", "Domain Admins" = "admins" }
"#,
    );
    let source = Scripted::full(
        people(&["ann", "bob"]),
        vec![
            // Rename keys match case-insensitively; a renamed group gets no prefix.
            group(
                "g-eng",
                "ENGINEERING",
                vec![MemberRef::user("ann"), MemberRef::group("g-plat")],
            ),
            group("g-plat", "Platform", users_in(&["bob"])),
            group("g-adm", "Domain Admins", users_in(&["ann"])),
        ],
    );
    run(&db, "corp", &source, &m).await;
    assert_eq!(
        group_names(&db).await,
        ["admins", "eng-all", "idp-Platform"]
    );
    assert_eq!(direct(&db, "eng-all", "group").await, ["idp-Platform"]);
    assert_eq!(effective(&db, "eng-all").await, ["ann", "bob"]);
    assert_eq!(effective(&db, "admins").await, ["ann"]);
    let report = run(&db, "corp", &source, &m).await;
    assert_eq!(report.outcome, Outcome::Unchanged);
}
on_both_backends!(source_groups_are_renamed_and_prefixed);

/// A default group named like a group of the source: one name, two records. The mapping
/// must not fail the run on the unique name; it reports a conflict (as it does for a
/// group another connector already holds) and the source group keeps the name.
async fn a_default_group_named_like_a_source_group_is_a_conflict(db: TestDb) {
    let m = load_mapping("staff", "[groups]\ndefault = [\"Everyone\"]\n");
    let source = Scripted::full(
        people(&["ann", "bob"]),
        vec![group("g-all", "Everyone", users_in(&["ann"]))],
    );
    let report = sync::sync(&db, "hr", &m, &source, RunOptions::default(), &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("the run must not fail: {e}"));
    assert_eq!(report.conflicts.len(), 1, "{:?}", report.conflicts);
    assert_eq!(group_row(&db, "Everyone").await.connector, "hr");
    assert_eq!(active_user_names(&db).await, ["ann", "bob"]);
}
on_both_backends!(a_default_group_named_like_a_source_group_is_a_conflict);

/// The same clash when the source group is there first: reported as a conflict, the source
/// group is left alone and the users are still written.
async fn a_default_group_named_like_an_existing_source_group_is_a_conflict(db: TestDb) {
    let source = || {
        Scripted::full(
            people(&["ann", "bob"]),
            vec![group("g-all", "Everyone", users_in(&["ann"]))],
        )
    };
    run(&db, "hr", &source(), &load_mapping("staff", "")).await;
    let m = load_mapping(
        "staff",
        "[groups]\ndefault = [\"Everyone\"]\ndefault_apply = \"always\"\n",
    );
    let report = run(&db, "hr", &source(), &m).await;
    assert_eq!(report.conflicts.len(), 1, "{:?}", report.conflicts);
    let conflict = &report.conflicts[0];
    assert_eq!(conflict.kind, "managed group");
    assert_eq!(conflict.name, "Everyone");
    assert_eq!(conflict.held_by, "a group of this connector");
    let everyone = group_row(&db, "Everyone").await;
    assert_eq!(everyone.connector, "hr");
    assert_eq!(
        direct(&db, "Everyone", "user").await,
        ["ann"],
        "the mapping never writes into it"
    );
}
on_both_backends!(a_default_group_named_like_an_existing_source_group_is_a_conflict);

// ---------------------------------------------------------------------------------------
// 4. Application groups

const APPLICATIONS: &str = r#"
[[applications]]
name = "jira"
groups = ["jira-software-users"]
when = 'groups eq "Engineering"'

[[applications]]
name = "wiki"
groups = ["wiki-readers"]
"#;

/// Engineering ⊃ Platform; ann in Engineering, bob in Platform, cat in Sales.
fn app_source(bob_in_platform: bool) -> Scripted {
    let platform = if bob_in_platform {
        users_in(&["bob"])
    } else {
        vec![]
    };
    Scripted::full(
        people(&["ann", "bob", "cat"]),
        vec![
            group(
                "g-eng",
                "Engineering",
                vec![MemberRef::user("ann"), MemberRef::group("g-plat")],
            ),
            group("g-plat", "Platform", platform),
            group("g-sales", "Sales", users_in(&["cat"])),
        ],
    )
}

async fn application_groups_follow_effective_membership(db: TestDb) {
    let m = load_mapping("apps", APPLICATIONS);
    let report = run(&db, "hr", &app_source(true), &m).await;
    // 4 source memberships + jira {ann, bob} + wiki {ann, bob, cat}.
    assert_eq!(report.counts.memberships_added, 9);
    let jira = group_row(&db, "jira-software-users").await;
    assert_eq!(jira.connector, "mapping:apps");
    assert_eq!(
        direct(&db, "jira-software-users", "user").await,
        ["ann", "bob"],
        "bob is in Engineering through Platform"
    );
    assert_eq!(effective(&db, "jira-software-users").await, ["ann", "bob"]);
    assert_eq!(effective(&db, "wiki-readers").await, ["ann", "bob", "cat"]);

    // bob leaves Platform, so Engineering: he loses jira on the next run, keeps the wiki.
    let report = run(&db, "hr", &app_source(false), &m).await;
    assert_eq!(
        report.counts,
        PlanCounts {
            memberships_removed: 2,
            ..PlanCounts::default()
        }
    );
    assert_eq!(direct(&db, "jira-software-users", "user").await, ["ann"]);
    assert_eq!(effective(&db, "jira-software-users").await, ["ann"]);
    assert_eq!(effective(&db, "wiki-readers").await, ["ann", "bob", "cat"]);
    assert_eq!(effective(&db, "Engineering").await, ["ann"]);

    // And gets it back when he returns.
    let report = run(&db, "hr", &app_source(true), &m).await;
    assert_eq!(report.counts.memberships_added, 2);
    assert_eq!(effective(&db, "jira-software-users").await, ["ann", "bob"]);
}
on_both_backends!(application_groups_follow_effective_membership);

async fn application_groups_use_source_names_and_survive_excluded_groups(db: TestDb) {
    // `when` reads source group names, through nesting, even of groups the mapping
    // renames or keeps out of the target.
    let m = load_mapping(
        "apps",
        &format!(
            "[filter]\nexclude_groups = 'displayName eq \"Platform\"'\n[groups]\nrename = {{ \"Engineering\" = \"eng\" }}\n{APPLICATIONS}"
        ),
    );
    run(&db, "hr", &app_source(true), &m).await;
    assert_eq!(
        group_names(&db).await,
        ["eng", "jira-software-users", "Sales", "wiki-readers"]
    );
    assert_eq!(effective(&db, "jira-software-users").await, ["ann", "bob"]);
    // Platform is bridged: eng holds bob directly.
    assert_eq!(direct(&db, "eng", "user").await, ["ann", "bob"]);
    assert_eq!(direct(&db, "eng", "group").await, Vec::<String>::new());
}
on_both_backends!(application_groups_use_source_names_and_survive_excluded_groups);

/// A dry run is how an admin reviews a new mapping before it writes: the groups the
/// mapping would create must be in the plan it shows, as the source's groups are.
async fn a_dry_run_shows_the_mapping_groups_it_would_create(db: TestDb) {
    let m = load_mapping("apps", APPLICATIONS);
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let report = sync::sync(&db, "hr", &m, &app_source(true), options, &NoProgress)
        .await
        .expect("dry run");
    assert!(
        report
            .preview
            .contains(&"create group Engineering".to_string()),
        "{:?}",
        report.preview
    );
    for name in ["jira-software-users", "wiki-readers"] {
        assert!(
            report
                .preview
                .contains(&format!("create group {name} (managed by the mapping)")),
            "{name} is not in the preview: {:?}",
            report.preview
        );
    }
    assert_eq!(
        report.counts.groups_created, 5,
        "3 source groups + 2 mapping groups"
    );
}
on_both_backends!(a_dry_run_shows_the_mapping_groups_it_would_create);

// ---------------------------------------------------------------------------------------
// 5. Nesting: the same cases kept and flattened

/// What keep mode must hold for one group: direct member groups, direct member users,
/// effective users.
struct Expect {
    group: &'static str,
    groups: &'static [&'static str],
    users: &'static [&'static str],
    effective: &'static [&'static str],
}

const fn x(
    group: &'static str,
    groups: &'static [&'static str],
    users: &'static [&'static str],
    effective: &'static [&'static str],
) -> Expect {
    Expect {
        group,
        groups,
        users,
        effective,
    }
}

/// One step of a nesting case: the source, and what keep mode must hold after it.
type Step<'a> = (fn() -> Scripted, &'a [Expect]);

fn nesting_mapping(nesting: &str, extra: &str) -> MappingConfig {
    load_mapping(
        "nest",
        &format!("nesting = \"{nesting}\"\nmax_delete_percent = 100.0\n{extra}"),
    )
}

/// A second fresh database of the same backend.
async fn second_db(db: &TestDb) -> TestDb {
    match db.backend() {
        Backend::Sqlite => support::sqlite().await,
        Backend::Postgres => support::postgres()
            .await
            .expect("IDSYNC_TEST_POSTGRES_URL is set"),
    }
}

async fn check_keep(db: &Db, step: usize, expected: &[Expect]) {
    let mut names: Vec<&str> = expected.iter().map(|e| e.group).collect();
    names.sort_by_key(|n| n.to_lowercase());
    assert_eq!(group_names(db).await, names, "keep, step {step}: groups");
    for e in expected {
        let g = e.group;
        assert_eq!(
            direct(db, g, "group").await,
            strings(e.groups),
            "keep, step {step}: member groups of {g}"
        );
        assert_eq!(
            direct(db, g, "user").await,
            strings(e.users),
            "keep, step {step}: member users of {g}"
        );
        assert_eq!(
            effective(db, g).await,
            strings(e.effective),
            "keep, step {step}: effective users of {g}"
        );
    }
}

async fn check_flatten(db: &Db, step: usize, expected: &[Expect]) {
    let mut names: Vec<&str> = expected.iter().map(|e| e.group).collect();
    names.sort_by_key(|n| n.to_lowercase());
    assert_eq!(group_names(db).await, names, "flatten, step {step}: groups");
    for e in expected {
        let g = e.group;
        assert!(
            direct(db, g, "group").await.is_empty(),
            "flatten, step {step}: {g} holds no groups"
        );
        assert_eq!(
            direct(db, g, "user").await,
            strings(e.effective),
            "flatten, step {step}: {g} holds its effective users directly"
        );
        assert_eq!(
            effective(db, g).await,
            strings(e.effective),
            "flatten, step {step}: effective users of {g}"
        );
    }
}

/// Runs each step's source kept (on `db`) and flattened (on a second database of the same
/// backend) and checks both after every step; effective membership must be the same in
/// both modes. After the last step `db` is switched to flatten (it must then equal the
/// flattened database) and back to keep (it must equal what it was). Returns the keep
/// runs' reports.
async fn nesting_matrix(db: TestDb, extra: &str, steps: &[Step<'_>]) -> Vec<RunReport> {
    let keep = nesting_mapping("keep", extra);
    let flatten = nesting_mapping("flatten", extra);
    let flat_db = second_db(&db).await;
    let mut reports = Vec::new();
    for (step, (source, expected)) in steps.iter().enumerate() {
        let report = run(&db, "nest", &source(), &keep).await;
        check_keep(&db, step, expected).await;
        let flat_report = run(&flat_db, "nest", &source(), &flatten).await;
        check_flatten(&flat_db, step, expected).await;
        assert_eq!(
            report.warnings, flat_report.warnings,
            "the same warnings in both modes"
        );
        reports.push(report);
    }
    let (last_source, _) = steps.last().expect("a step");
    let kept = target_json(&db).await;
    run(&db, "nest", &last_source(), &flatten).await;
    assert_eq!(
        target_json(&db).await,
        target_json(&flat_db).await,
        "switched to flatten = flattened from the start"
    );
    run(&db, "nest", &last_source(), &keep).await;
    assert_eq!(target_json(&db).await, kept, "switched back to keep");
    reports
}

/// ```text
///   A ── B ── C         A{ann} ⊃ B{bob} ⊃ C{cat}
/// ```
async fn nesting_chain(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![MemberRef::user("ann"), MemberRef::group("b")],
                ),
                group(
                    "b",
                    "B",
                    vec![MemberRef::user("bob"), MemberRef::group("c")],
                ),
                group("c", "C", users_in(&["cat"])),
            ],
        )
    }
    nesting_matrix(
        db,
        "",
        &[(
            source,
            &[
                x("A", &["B"], &["ann"], &["ann", "bob", "cat"]),
                x("B", &["C"], &["bob"], &["bob", "cat"]),
                x("C", &[], &["cat"], &["cat"]),
            ],
        )],
    )
    .await;
}
on_both_backends!(nesting_chain);

/// ```text
///        ┌──────────────┐
///        ▼              │
///   D ─► B ─► C ─► A ───┘      B{}, C{bob}, A{ann}; D{dan} ⊃ B; C ⊃ E{eve}
///             │
///             ▼
///             E
/// ```
async fn nesting_cycle(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "dan", "eve"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![MemberRef::user("ann"), MemberRef::group("b")],
                ),
                group("b", "B", vec![MemberRef::group("c")]),
                group(
                    "c",
                    "C",
                    vec![
                        MemberRef::user("bob"),
                        MemberRef::group("a"),
                        MemberRef::group("e"),
                    ],
                ),
                group(
                    "d",
                    "D",
                    vec![MemberRef::user("dan"), MemberRef::group("b")],
                ),
                group("e", "E", users_in(&["eve"])),
            ],
        )
    }
    let cycle = &["ann", "bob", "eve"];
    nesting_matrix(
        db,
        "",
        &[(
            source,
            &[
                x("A", &["B"], &["ann"], cycle),
                x("B", &["C"], &[], cycle),
                x("C", &["A", "E"], &["bob"], cycle),
                x("D", &["B"], &["dan"], &["ann", "bob", "dan", "eve"]),
                x("E", &[], &["eve"], &["eve"]),
            ],
        )],
    )
    .await;
}
on_both_backends!(nesting_cycle);

/// Two cycles through B (a figure eight), holding a third cycle:
/// ```text
///   A ⇄ B ⇄ C ──► D ⇄ E      A{ann} B{bob} C{cat} D{dan} E{eve}
/// ```
async fn nesting_multi_cycle(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat", "dan", "eve"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![MemberRef::user("ann"), MemberRef::group("b")],
                ),
                group(
                    "b",
                    "B",
                    vec![
                        MemberRef::user("bob"),
                        MemberRef::group("a"),
                        MemberRef::group("c"),
                    ],
                ),
                group(
                    "c",
                    "C",
                    vec![
                        MemberRef::user("cat"),
                        MemberRef::group("b"),
                        MemberRef::group("d"),
                    ],
                ),
                group(
                    "d",
                    "D",
                    vec![MemberRef::user("dan"), MemberRef::group("e")],
                ),
                group(
                    "e",
                    "E",
                    vec![MemberRef::user("eve"), MemberRef::group("d")],
                ),
            ],
        )
    }
    let all = &["ann", "bob", "cat", "dan", "eve"];
    nesting_matrix(
        db,
        "",
        &[(
            source,
            &[
                x("A", &["B"], &["ann"], all),
                x("B", &["A", "C"], &["bob"], all),
                x("C", &["B", "D"], &["cat"], all),
                x("D", &["E"], &["dan"], &["dan", "eve"]),
                x("E", &["D"], &["eve"], &["dan", "eve"]),
            ],
        )],
    )
    .await;
}
on_both_backends!(nesting_multi_cycle);

/// ```text
///       A            A{ann}, B{bob, dan}, C{cat}, D{dan}
///      ╱ ╲
///     B   C          dan reaches A on three paths and is listed once
///      ╲ ╱
///       D
/// ```
async fn nesting_diamond(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat", "dan"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![
                        MemberRef::user("ann"),
                        MemberRef::group("b"),
                        MemberRef::group("c"),
                    ],
                ),
                group(
                    "b",
                    "B",
                    vec![
                        MemberRef::user("bob"),
                        MemberRef::user("dan"),
                        MemberRef::group("d"),
                    ],
                ),
                group(
                    "c",
                    "C",
                    vec![MemberRef::user("cat"), MemberRef::group("d")],
                ),
                group("d", "D", users_in(&["dan"])),
            ],
        )
    }
    nesting_matrix(
        db,
        "",
        &[(
            source,
            &[
                x("A", &["B", "C"], &["ann"], &["ann", "bob", "cat", "dan"]),
                x("B", &["D"], &["bob", "dan"], &["bob", "dan"]),
                x("C", &["D"], &["cat"], &["cat", "dan"]),
                x("D", &[], &["dan"], &["dan"]),
            ],
        )],
    )
    .await;
}
on_both_backends!(nesting_diamond);

/// ```text
///   ┌─┐
///   ▼ │
///   A ┘ ── B         A{ann} lists itself (ignored, warned) and B{bob}
/// ```
async fn nesting_self_membership(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![
                        MemberRef::user("ann"),
                        MemberRef::group("a"),
                        MemberRef::group("b"),
                    ],
                ),
                group("b", "B", users_in(&["bob"])),
            ],
        )
    }
    let reports = nesting_matrix(
        db,
        "",
        &[(
            source,
            &[
                x("A", &["B"], &["ann"], &["ann", "bob"]),
                x("B", &[], &["bob"], &["bob"]),
            ],
        )],
    )
    .await;
    assert_eq!(
        reports[0].warnings,
        ["group \"a\" lists itself as a member; the self-membership is ignored"]
    );
    assert_eq!(reports[0].counts.warnings, 1);
}
on_both_backends!(nesting_self_membership);

/// ```text
///   A ── (B) ── C      A{ann} ⊃ B{bob} ⊃ C{cat}; B excluded by exclude_groups
///   A ────────── C     keep: A holds C (bridged) and B's users directly
/// ```
async fn nesting_excluded_group_in_a_chain(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![MemberRef::user("ann"), MemberRef::group("b")],
                ),
                group(
                    "b",
                    "B",
                    vec![MemberRef::user("bob"), MemberRef::group("c")],
                ),
                group("c", "C", users_in(&["cat"])),
            ],
        )
    }
    nesting_matrix(
        db,
        "[filter]\nexclude_groups = 'displayName eq \"B\"'\n",
        &[(
            source,
            &[
                x("A", &["C"], &["ann", "bob"], &["ann", "bob", "cat"]),
                x("C", &[], &["cat"], &["cat"]),
            ],
        )],
    )
    .await;
}
on_both_backends!(nesting_excluded_group_in_a_chain);

/// Two excluded groups in a row, and an excluded group reached on two paths:
/// ```text
///   A ── (B) ── (X) ── C       A{ann}, B{bob}, X{xia}, C{cat}
///   A ── (Y) ── C              Y{} excluded too: C is listed in A once
/// ```
async fn nesting_excluded_groups_bridge_on_every_path(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat", "xia"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![
                        MemberRef::user("ann"),
                        MemberRef::group("b"),
                        MemberRef::group("y"),
                    ],
                ),
                group(
                    "b",
                    "B",
                    vec![MemberRef::user("bob"), MemberRef::group("x")],
                ),
                group(
                    "x",
                    "X",
                    vec![MemberRef::user("xia"), MemberRef::group("c")],
                ),
                group("y", "Y", vec![MemberRef::group("c")]),
                group("c", "C", users_in(&["cat"])),
            ],
        )
    }
    nesting_matrix(
        db,
        "[filter]\ninclude_groups = 'displayName eq \"A\" or displayName eq \"C\"'\n",
        &[(
            source,
            &[
                x(
                    "A",
                    &["C"],
                    &["ann", "bob", "xia"],
                    &["ann", "bob", "cat", "xia"],
                ),
                x("C", &[], &["cat"], &["cat"]),
            ],
        )],
    )
    .await;
}
on_both_backends!(nesting_excluded_groups_bridge_on_every_path);

/// A cycle through an excluded group:
/// ```text
///   A ⇄ (B)        A{ann} ⊃ B{bob} ⊃ A; B excluded
/// ```
/// Bridging B leads back to A itself. A self-membership is what the engine drops (with a
/// warning) when a source sends it, so the projection must not write one either: A holds
/// ann and bob directly and no group.
async fn nesting_cycle_through_an_excluded_group(db: TestDb) {
    fn source() -> Scripted {
        Scripted::full(
            people(&["ann", "bob"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![MemberRef::user("ann"), MemberRef::group("b")],
                ),
                group(
                    "b",
                    "B",
                    vec![MemberRef::user("bob"), MemberRef::group("a")],
                ),
            ],
        )
    }
    nesting_matrix(
        db,
        "[filter]\nexclude_groups = 'displayName eq \"B\"'\n",
        &[(source, &[x("A", &[], &["ann", "bob"], &["ann", "bob"])])],
    )
    .await;
}
on_both_backends!(nesting_cycle_through_an_excluded_group);

/// ```text
///   step 0:  A ─► B ─► C ─► A,  D ─► C      A{ann} B{bob} C{cat} D{dan}
///   step 1:  B is deleted (and A no longer lists it):  D ─► C ─► A
/// ```
async fn nesting_deleting_a_group_in_a_cycle(db: TestDb) {
    fn before() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat", "dan"]),
            vec![
                group(
                    "a",
                    "A",
                    vec![MemberRef::user("ann"), MemberRef::group("b")],
                ),
                group(
                    "b",
                    "B",
                    vec![MemberRef::user("bob"), MemberRef::group("c")],
                ),
                group(
                    "c",
                    "C",
                    vec![MemberRef::user("cat"), MemberRef::group("a")],
                ),
                group(
                    "d",
                    "D",
                    vec![MemberRef::user("dan"), MemberRef::group("c")],
                ),
            ],
        )
    }
    fn after() -> Scripted {
        Scripted::full(
            people(&["ann", "bob", "cat", "dan"]),
            vec![
                group("a", "A", users_in(&["ann"])),
                group(
                    "c",
                    "C",
                    vec![MemberRef::user("cat"), MemberRef::group("a")],
                ),
                group(
                    "d",
                    "D",
                    vec![MemberRef::user("dan"), MemberRef::group("c")],
                ),
            ],
        )
    }
    let cycle = &["ann", "bob", "cat"];
    let reports = nesting_matrix(
        db,
        "",
        &[
            (
                before,
                &[
                    x("A", &["B"], &["ann"], cycle),
                    x("B", &["C"], &["bob"], cycle),
                    x("C", &["A"], &["cat"], cycle),
                    x("D", &["C"], &["dan"], &["ann", "bob", "cat", "dan"]),
                ],
            ),
            (
                after,
                &[
                    x("A", &[], &["ann"], &["ann"]),
                    x("C", &["A"], &["cat"], &["ann", "cat"]),
                    x("D", &["C"], &["dan"], &["ann", "cat", "dan"]),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(reports[1].counts.groups_deleted, 1);
    assert_eq!(reports[1].counts.users_disabled, 0, "bob stays a user");
}
on_both_backends!(nesting_deleting_a_group_in_a_cycle);

// ---------------------------------------------------------------------------------------
// 6. Reconcile after a mapping change

fn reconcile_source() -> Scripted {
    Scripted::full(
        people(&["ann", "bob", "cat", "svc-ci"]),
        vec![
            group(
                "g-eng",
                "Engineering",
                vec![
                    MemberRef::user("ann"),
                    MemberRef::user("svc-ci"),
                    MemberRef::group("g-plat"),
                ],
            ),
            group("g-plat", "Platform", users_in(&["bob", "cat"])),
        ],
    )
}

async fn reconcile_applies_a_changed_mapping(db: TestDb) {
    let before = load_mapping("corp", "max_delete_percent = 100.0\n");
    run(&db, "hr", &reconcile_source(), &before).await;
    let synced = target_json(&db).await;
    assert_eq!(
        effective(&db, "Engineering").await,
        ["ann", "bob", "cat", "svc-ci"]
    );

    // The admin keeps service accounts out and flattens nesting.
    let after = load_mapping(
        "corp",
        "max_delete_percent = 100.0\nnesting = \"flatten\"\n[filter]\nexclude_users = 'userName sw \"svc-\"'\n",
    );
    let preview = reconcile(&db, "hr", &after, true).await;
    assert!(preview.dry_run);
    assert!(preview.run_id.is_none());
    assert_eq!(preview.outcome, Outcome::Succeeded);
    // svc-ci disabled; Engineering: svc-ci and Platform out, bob and cat in.
    assert_eq!(
        preview.counts,
        PlanCounts {
            users_disabled: 1,
            memberships_added: 2,
            memberships_removed: 2,
            ..PlanCounts::default()
        }
    );
    assert!(
        preview
            .preview
            .contains(&"disable user svc-ci (left the source or its filter)".to_string()),
        "{:?}",
        preview.preview
    );
    assert_eq!(target_json(&db).await, synced, "a dry run writes nothing");
    assert_eq!(
        runs::recent_runs(db.pool(), Some("hr"), 10)
            .await
            .unwrap()
            .len(),
        1,
        "a dry run is not recorded"
    );

    let applied = reconcile(&db, "hr", &after, false).await;
    assert_eq!(applied.outcome, Outcome::Succeeded);
    assert_eq!(applied.counts, preview.counts);
    assert_eq!(
        direct(&db, "Engineering", "group").await,
        Vec::<String>::new()
    );
    assert_eq!(
        direct(&db, "Engineering", "user").await,
        ["ann", "bob", "cat"]
    );
    assert_eq!(effective(&db, "Engineering").await, ["ann", "bob", "cat"]);
    assert!(!user_row(&db, "svc-ci").await.active);
    let recorded = runs::recent_runs(db.pool(), Some("hr"), 1).await.unwrap();
    assert_eq!(recorded[0].operation, "reconcile");
    assert_eq!(recorded[0].counts, applied.counts);

    // The same mapping again: nothing to do, nothing written.
    let stamps =
        |v: &[query::UserRow]| -> Vec<String> { v.iter().map(|u| u.updated_at.clone()).collect() };
    let users_before = query::list_users(db.pool(), None, 100, 0).await.unwrap();
    let applied_json = target_json(&db).await;
    let again = reconcile(&db, "hr", &after, false).await;
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.counts, PlanCounts::default());
    assert_eq!(target_json(&db).await, applied_json);
    let users_after = query::list_users(db.pool(), None, 100, 0).await.unwrap();
    assert_eq!(stamps(&users_before), stamps(&users_after));
    // And a sync of the unchanged source under it skips the projection altogether.
    let report = run(&db, "hr", &reconcile_source(), &after).await;
    assert_eq!(report.outcome, Outcome::Unchanged);
    assert_eq!(
        report.message.as_deref(),
        Some("the target already matches the source")
    );
}
on_both_backends!(reconcile_applies_a_changed_mapping);

/// A mapping whose text changes re-projects on the next sync even when the source did not.
async fn a_changed_mapping_reprojects_an_unchanged_source(db: TestDb) {
    run(
        &db,
        "hr",
        &reconcile_source(),
        &load_mapping("corp", "max_delete_percent = 100.0\n"),
    )
    .await;
    let renamed = load_mapping(
        "corp",
        "max_delete_percent = 100.0\n[groups]\nprefix = \"hr-\"\n",
    );
    let report = run(&db, "hr", &reconcile_source(), &renamed).await;
    assert_eq!(
        report.counts,
        PlanCounts {
            groups_updated: 2,
            ..PlanCounts::default()
        }
    );
    assert_eq!(group_names(&db).await, ["hr-Engineering", "hr-Platform"]);
    assert_eq!(effective(&db, "hr-Engineering").await.len(), 4);
}
on_both_backends!(a_changed_mapping_reprojects_an_unchanged_source);
