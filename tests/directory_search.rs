//! The directory browser's search: SCIM filters over the target's users and groups,
//! answered alike by SQLite and PostgreSQL, and the nesting a user's effective groups come
//! through (issue 16).

use idsync::config::FileFormat;
use idsync::connectors::file::FileConnector;
use idsync::filter::parse_filter;
use idsync::target::query;

use crate::support::{TestDb, sync_directory};

async fn seeded(db: &TestDb) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/snapshot.json");
    let connector = FileConnector::new(path, FileFormat::Json);
    sync_directory(db, &connector)
        .await
        .expect("sync the example snapshot");
}

async fn user_names(db: &TestDb, filter: &str) -> Vec<String> {
    let filter = parse_filter(filter).expect("filter");
    query::search_users(db.pool(), Some(&filter), None, 100, 0)
        .await
        .expect("search")
        .into_iter()
        .map(|u| u.user_name)
        .collect()
}

async fn users_and_groups_are_searched_with_scim_filters(db: TestDb) {
    seeded(&db).await;
    assert_eq!(
        user_names(&db, r#"userName sw "ALICE""#).await,
        ["alice.nguyen@example.com"]
    );
    assert_eq!(
        user_names(
            &db,
            r#"name.familyName eq "chen" or displayName co "TANAKA""#
        )
        .await,
        ["chen.wei@example.com", "hiro.tanaka@example.com"]
    );
    assert_eq!(
        user_names(&db, "active eq false").await,
        ["hiro.tanaka@example.com"]
    );
    assert_eq!(
        user_names(&db, r#"emails ew "@example.com" and not (userName lt "k")"#).await,
        ["kofi.mensah@example.com", "laura.schmidt@example.com"]
    );
    // `_` is literal: it matches only itself.
    assert!(user_names(&db, r#"userName co "a_i""#).await.is_empty());
    let groups: Vec<String> = query::search_groups(
        db.pool(),
        Some(&parse_filter(r#"displayName co "team" or externalId eq "g-sales""#).expect("filter")),
        Some("dir"),
        100,
        0,
    )
    .await
    .expect("search groups")
    .into_iter()
    .map(|g| g.name)
    .collect();
    assert_eq!(groups, ["Platform Team", "Sales"]);
    // The connector narrows, a page is a page.
    let none = query::search_users(db.pool(), None, Some("other"), 100, 0)
        .await
        .expect("search");
    assert!(none.is_empty());
    let second = query::search_users(db.pool(), None, None, 5, 5)
        .await
        .expect("search");
    assert_eq!(second.len(), 5);
    assert_eq!(second[0].user_name, "farid.haddad@example.com");
    // What it cannot answer is an error, not a scan.
    let unsupported = query::search_users(
        db.pool(),
        Some(&parse_filter(r#"title eq "x""#).expect("filter")),
        None,
        10,
        0,
    )
    .await
    .expect_err("title is not searchable");
    assert!(
        unsupported.to_string().contains("not supported"),
        "{unsupported}"
    );

    // Bob is in Platform Team only; the rest of his groups come through nesting.
    let bob = query::find_user(db.pool(), "bob.martin@example.com")
        .await
        .expect("find")
        .expect("bob");
    let (direct, effective) = query::user_group_refs(db.pool(), &bob.id)
        .await
        .expect("groups");
    let names =
        |groups: &[query::GroupRef]| groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&direct), ["Platform Team"]);
    assert_eq!(
        names(&effective),
        [
            "All Departments",
            "Company Announcements",
            "Engineering",
            "Platform Team"
        ]
    );
    let edges = query::nesting_edges(db.pool()).await.expect("edges");
    assert_eq!(edges.len(), 5, "{edges:?}");
}
crate::on_both_backends!(users_and_groups_are_searched_with_scim_filters);
