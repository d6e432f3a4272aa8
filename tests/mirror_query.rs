//! SCIM filters answered from the mirror's indexed columns, on both backends: every result
//! must equal what the same filter gives evaluated in memory on the SCIM resources.

use idsync::filter::{AttrPath, EvalOptions, parse_filter};
use idsync::model::content_hash;
use idsync::scim::discovery::{self, USER_SCHEMA};
use idsync::scim::resource::{Meta, group_from_scim, user_from_scim, user_to_scim};
use idsync::store::mirror::{self, query};
use serde_json::json;

use crate::on_both_backends;
use crate::support::TestDb;

fn scim_users() -> Vec<idsync::model::SourceUser> {
    let names = [
        "Ann.Lee@example.com",
        "bob@example.com",
        "BOB.smith@example.org",
        "carol_x@example.com",
        "dave%50@example.com",
        "Émile@example.fr",
        "zed@example.com",
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "active": i % 3 != 0,
            });
            if i % 2 == 0 {
                body["externalId"] = json!(format!("EXT-{i}"));
            }
            // Multi-valued attributes in the shapes IdPs send, some odd on purpose.
            body["emails"] = match i {
                0 => json!([
                    {"value": "Ann.Lee@Example.com", "type": "work", "primary": true},
                    {"value": "ann@home.example", "type": "Home"}
                ]),
                1 => json!([{"value": "bob@example.com", "type": "work", "primary": false}]),
                2 => json!([
                    {"value": "bob.smith@example.org", "type": "home", "primary": "true"},
                    {"value": "b_s@example.org", "type": "work"}
                ]),
                3 => json!([{"value": "carol%x@example.com", "primary": true}, {}]),
                4 => json!([{"type": "work", "primary": true}]),
                5 => json!([{"value": "ÉMILE@example.fr", "type": "WORK"}]),
                _ => json!([]),
            };
            if i % 3 == 1 {
                body["phoneNumbers"] =
                    json!([{"value": format!("+1 555 010{i}"), "type": "mobile"}]);
            }
            user_from_scim(&format!("id-{i}"), &body).unwrap()
        })
        .collect()
}

async fn filters_agree_with_in_memory_evaluation(db: TestDb) {
    let users = scim_users();
    let mut tx = db.begin_write().await.unwrap();
    let rows = users.iter().map(|u| (u.clone(), content_hash(u))).collect();
    mirror::upsert_users(tx.conn(), "acme", rows).await.unwrap();
    // Another tenant's users never show up.
    let other = vec![(users[0].clone(), content_hash(&users[0]))];
    mirror::upsert_users(tx.conn(), "globex", other)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let meta = Meta {
        resource_type: "User",
        created: String::new(),
        last_modified: String::new(),
        location: String::new(),
        version: String::new(),
    };
    let filters = [
        r#"userName eq "bob@example.com""#,
        r#"USERNAME eq "BOB@EXAMPLE.COM""#,
        r#"userName sw "bob""#,
        r#"userName ew "example.com""#,
        r#"userName co "_x""#,
        r#"userName co "%50""#,
        r#"userName co "é""#,
        r#"userName gt "c""#,
        r#"userName le "bob@example.com""#,
        r#"userName ne "zed@example.com""#,
        r#"externalId eq "EXT-2""#,
        r#"externalId eq "ext-2""#,
        r#"externalId pr"#,
        r#"not (externalId pr)"#,
        r#"id eq "id-3""#,
        r#"userName sw "b" and externalId pr"#,
        r#"userName sw "a" or userName sw "z""#,
        r#"not (userName sw "b") and not (id eq "id-0")"#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "zed@example.com""#,
        r#"not (externalId eq "EXT-2")"#,
        r#"not (userName co "example.com")"#,
        // Multi-valued attributes, from the per-element index.
        r#"emails.value eq "ann.lee@example.com""#,
        r#"EMAILS.VALUE eq "BOB@example.com""#,
        r#"emails.value eq "émile@example.fr""#,
        r#"emails.value ne "bob@example.com""#,
        r#"not (emails.value eq "bob@example.com")"#,
        r#"emails.value co "%x""#,
        r#"emails.value co "_s@""#,
        r#"emails.value sw "B""#,
        r#"emails.value ew ".ORG""#,
        r#"emails.value pr"#,
        r#"not (emails.value pr)"#,
        r#"emails pr"#,
        r#"not (emails pr)"#,
        r#"emails.type eq "work""#,
        r#"emails.type ne "work""#,
        r#"emails.primary eq true"#,
        r#"emails.primary eq false"#,
        r#"emails.primary ne true"#,
        r#"emails.primary pr"#,
        r#"emails[type eq "work"]"#,
        r#"emails[type eq "work" and primary eq true]"#,
        r#"emails[type eq "home" and value ew ".org"]"#,
        r#"emails[type eq "work"].value eq "b_s@example.org""#,
        r#"emails[type eq "work"].value eq "bob.smith@example.org""#,
        r#"emails[not (type eq "work")]"#,
        r#"emails[type ne "work"]"#,
        r#"emails[value ne "bob@example.com"]"#,
        r#"emails[primary eq true or type eq "home"]"#,
        r#"emails[not (value pr)]"#,
        r#"not (emails[type eq "work"])"#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:emails.value sw "ann""#,
        r#"phoneNumbers.value eq "+1 555 0101""#,
        r#"phoneNumbers[type eq "MOBILE"]"#,
        r#"phoneNumbers.value co "555" and not (emails.value pr)"#,
        r#"userName sw "b" or emails.value ew "example.fr""#,
        r#"externalId pr and emails[type eq "work"] or id eq "id-6""#,
    ];
    let mut conn = db.pool().acquire().await.unwrap();
    for text in filters {
        let filter = parse_filter(text).unwrap();
        let (total, page) = query::find_users(&mut conn, "acme", Some(&filter), 1, 100)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let got: Vec<&str> = page.iter().map(|u| u.external_id.as_str()).collect();
        // caseExact as RFC 7643 defines it (externalId and id are case-exact).
        let case_exact = |path: &AttrPath| {
            let name = match &path.sub_attr {
                Some(sub) => format!("{}.{sub}", path.attr),
                None => path.attr.clone(),
            };
            discovery::attribute(USER_SCHEMA, &name).is_some_and(|a| a.case_exact)
        };
        let options = EvalOptions {
            case_exact: &case_exact,
        };
        let mut expected: Vec<&str> = users
            .iter()
            .filter(|u| filter.matches_with(&user_to_scim(u, &meta), &options))
            .map(|u| u.external_id.as_str())
            .collect();
        expected.sort();
        assert_eq!(got, expected, "{text}");
        assert_eq!(total as usize, expected.len(), "{text}");
    }

    // Paging: 1-based start index, totals over all pages.
    let (total, page) = query::find_users(&mut conn, "acme", None, 3, 2)
        .await
        .unwrap();
    assert_eq!(total, 7);
    let ids: Vec<&str> = page.iter().map(|u| u.external_id.as_str()).collect();
    assert_eq!(ids, ["id-2", "id-3"]);

    // A filtered page carries its total along; a page past the last match, or a request
    // for the total alone, still says how many match.
    let all = parse_filter(r#"meta.lastModified ge "2000-01-01T00:00:00Z""#).unwrap();
    for (start, count, expected_ids) in [
        (3, 2, vec!["id-2", "id-3"]),
        (7, 5, vec!["id-6"]),
        (8, 5, vec![]),
        (50, 5, vec![]),
        (1, 0, vec![]),
    ] {
        let (total, page) = query::find_users(&mut conn, "acme", Some(&all), start, count)
            .await
            .unwrap();
        assert_eq!(total, 7, "start {start}, count {count}");
        let ids: Vec<&str> = page.iter().map(|u| u.external_id.as_str()).collect();
        assert_eq!(ids, expected_ids, "start {start}, count {count}");
    }

    // Time filters compare instants whatever the offset written.
    let future = parse_filter(r#"meta.lastModified gt "2999-01-01T01:00:00+01:00""#).unwrap();
    let (total, _) = query::find_users(&mut conn, "acme", Some(&future), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 0);
    let past = parse_filter(r#"meta.lastModified ge "2000-01-01T00:00:00Z""#).unwrap();
    let (total, _) = query::find_users(&mut conn, "acme", Some(&past), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 7);

    // What is not indexed is refused, not scanned.
    for (text, message) in [
        (
            r#"addresses.value eq "a""#,
            "filtering on `addresses.value` is not supported; filterable: userName, externalId, id, meta.lastModified, emails, phoneNumbers",
        ),
        (
            r#"ims[type eq "work"]"#,
            "filtering on `ims` is not supported; filterable: userName, externalId, id, meta.lastModified, emails, phoneNumbers",
        ),
        (
            r#"emails[display eq "x"]"#,
            "filtering on `display` inside `emails` is not supported; filterable: value, type, primary",
        ),
        (
            r#"emails.value gt "a""#,
            "`emails.value` supports eq, ne, co, sw, ew and pr, not gt",
        ),
        (
            r#"emails.value eq null"#,
            "`emails.value` cannot compare with null; use `not (emails.value pr)` for an absent value",
        ),
        (
            r#"emails.primary eq "true""#,
            "`emails.primary` is a boolean; compare it with true or false, not \"true\"",
        ),
        (
            r#"emails eq "a@example.com""#,
            "filter on a sub-attribute of `emails`, e.g. `emails.value eq …`, or use `emails[…]`",
        ),
        (
            r#"externalId co "EXT""#,
            "`externalId` supports eq, ne, gt, ge, lt, le and pr, not co",
        ),
        (
            r#"meta.lastModified gt "yesterday""#,
            "`meta.lastModified` compares with RFC 3339 date-times, got \"yesterday\"",
        ),
        (
            r#"userName eq true"#,
            "`userName` is a string; true does not compare with it",
        ),
    ] {
        let filter = parse_filter(text).unwrap();
        let err = query::find_users(&mut conn, "acme", Some(&filter), 1, 10)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), message, "{text}");
    }
}
on_both_backends!(filters_agree_with_in_memory_evaluation);

async fn group_filters_use_the_display_name(db: TestDb) {
    let mut tx = db.begin_write().await.unwrap();
    let groups: Vec<_> = ["Engineering", "Sales EMEA", "sales-us"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name, "externalId": format!("g{i}")});
            let (group, _) = group_from_scim(&format!("gid-{i}"), &body).unwrap();
            let hash = content_hash(&group);
            (group, hash)
        })
        .collect();
    mirror::upsert_groups(tx.conn(), "acme", groups)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let filter = parse_filter(r#"displayName sw "SALES""#).unwrap();
    let (total, page) = query::find_groups(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 2);
    let names: Vec<&str> = page.iter().map(|g| g.display_name.as_str()).collect();
    assert_eq!(names, ["Sales EMEA", "sales-us"]);
    let filter = parse_filter(r#"externalId eq "g0""#).unwrap();
    let (_, page) = query::find_groups(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(page[0].display_name, "Engineering");
}
on_both_backends!(group_filters_use_the_display_name);

/// `members` on Groups, from the per-element index: the member id compares case-exactly
/// (it is an `id`), and the answers equal the in-memory evaluation of the SCIM groups.
async fn member_filters_agree_with_in_memory_evaluation(db: TestDb) {
    use idsync::model::MemberRef;
    use idsync::scim::discovery::GROUP_SCHEMA;
    use idsync::scim::resource::group_to_scim;
    let members = [
        vec![MemberRef::user("u-1"), MemberRef::user("U-2")],
        vec![MemberRef::user("u-2"), MemberRef::group("gid-0")],
        vec![],
        vec![MemberRef::user("u-10")],
    ];
    let groups: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, members)| {
            let body = json!({"schemas": [GROUP_SCHEMA], "displayName": format!("G{i}")});
            let (mut group, _) = group_from_scim(&format!("gid-{i}"), &body).unwrap();
            group.members = members.clone();
            group
        })
        .collect();
    store_groups(&db, &groups).await;

    let meta = Meta {
        resource_type: "Group",
        created: String::new(),
        last_modified: String::new(),
        location: String::new(),
        version: String::new(),
    };
    let case_exact = |path: &AttrPath| {
        path.attr.eq_ignore_ascii_case("id")
            || (path.attr.eq_ignore_ascii_case("members")
                && path.sub_attr.as_deref() == Some("value"))
    };
    let options = EvalOptions {
        case_exact: &case_exact,
    };
    let mut conn = db.pool().acquire().await.unwrap();
    for text in [
        r#"members.value eq "u-2""#,
        r#"members.value eq "U-2""#,
        r#"members[value eq "u-1"]"#,
        r#"members[value eq "gid-0" and type eq "group"]"#,
        r#"members[type eq "Group"]"#,
        r#"members.value ne "u-2""#,
        r#"members.value sw "u-1""#,
        r#"members.value sw "U""#,
        r#"members.value co "-1""#,
        r#"members.value ew "-2""#,
        r#"members pr"#,
        r#"not (members pr)"#,
        r#"displayName eq "G1" and members[value eq "u-2"]"#,
    ] {
        let filter = parse_filter(text).unwrap();
        let (total, page) = query::find_groups(&mut conn, "acme", Some(&filter), 1, 100)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let got: Vec<&str> = page.iter().map(|g| g.external_id.as_str()).collect();
        let expected: Vec<&str> = groups
            .iter()
            .filter(|g| filter.matches_with(&group_to_scim(g, &meta, ""), &options))
            .map(|g| g.external_id.as_str())
            .collect();
        assert_eq!(got, expected, "{text}");
        assert_eq!(total as usize, expected.len(), "{text}");
    }

    // The index follows every write: a changed member list, then a removed group.
    let filter = parse_filter(r#"members.value eq "u-10""#).unwrap();
    let mut changed = groups[3].clone();
    changed.members = vec![MemberRef::user("u-11")];
    let mut tx = db.begin_write().await.unwrap();
    let hash = content_hash(&changed);
    mirror::upsert_groups(tx.conn(), "acme", vec![(changed, hash)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (total, _) = query::find_groups(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 0, "the old member is gone from the index");
    let filter = parse_filter(r#"members.value eq "u-11""#).unwrap();
    let (total, _) = query::find_groups(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 1);
    let mut tx = db.begin_write().await.unwrap();
    mirror::delete_groups(tx.conn(), "acme", &["gid-3".to_string()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (total, _) = query::find_groups(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 0, "a removed group leaves no index rows behind");
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mirror_values WHERE connector = 'acme' AND external_id = 'gid-3'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(left, 0);
}
on_both_backends!(member_filters_agree_with_in_memory_evaluation);

/// Rows written before migration 0009 are indexed once after migrating: the marker row
/// the migration leaves is claimed, the rows indexed, and a second run does nothing.
async fn existing_rows_are_indexed_once(db: TestDb) {
    let users = scim_users();
    let mut tx = db.begin_write().await.unwrap();
    let rows = users.iter().map(|u| (u.clone(), content_hash(u))).collect();
    mirror::upsert_users(tx.conn(), "acme", rows).await.unwrap();
    // As if written by a version without the index.
    sqlx::query("DELETE FROM mirror_values")
        .execute(tx.conn())
        .await
        .unwrap();
    sqlx::query("INSERT INTO mirror_values_backfill (pending) VALUES (1)")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let filter = parse_filter(r#"emails.value eq "bob@example.com""#).unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let (total, _) = query::find_users(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 0, "not indexed yet");
    drop(conn);

    db.migrate().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let (total, page) = query::find_users(&mut conn, "acme", Some(&filter), 1, 10)
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(page[0].external_id, "id-1");
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mirror_values_backfill")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    let indexed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mirror_values")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    idsync::store::mirror::values::backfill(&db).await.unwrap();
    let again: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mirror_values")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(again, indexed, "a second run changes nothing");
}
on_both_backends!(existing_rows_are_indexed_once);

/// Writes groups into tenant "acme"'s mirror in a transaction of their own.
async fn store_groups(db: &TestDb, groups: &[idsync::model::SourceGroup]) {
    let mut tx = db.begin_write().await.unwrap();
    let rows = groups
        .iter()
        .map(|g| (g.clone(), content_hash(g)))
        .collect();
    mirror::upsert_groups(tx.conn(), "acme", rows)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Every `mirror_values` row of groups, in key order.
async fn group_value_rows(db: &TestDb) -> Vec<(String, i64, Option<String>, Option<String>)> {
    let rows = sqlx::query(
        "SELECT external_id, position, value_key, type_key, is_primary, present \
         FROM mirror_values WHERE resource = 'group' ORDER BY external_id, position",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            use sqlx::Row;
            let is_primary: Option<String> = row.try_get(4).unwrap();
            let present: i64 = row.try_get(5).unwrap();
            assert_eq!(
                (is_primary, present),
                (None, 1),
                "members are present, no primary"
            );
            (
                row.try_get(0).unwrap(),
                row.try_get(1).unwrap(),
                row.try_get(2).unwrap(),
                row.try_get(3).unwrap(),
            )
        })
        .collect()
}

/// Group members' index rows are derived in SQL from the mirror row; they must be the rows
/// the element-by-element path (the backfill's) gives, ids byte for byte, on both backends,
/// and a rewritten group must leave only its new members.
async fn derived_member_rows_equal_the_bound_ones(db: TestDb) {
    use idsync::model::{MemberRef, SourceGroup};
    let group = |id: &str, members: Vec<MemberRef>| SourceGroup {
        external_id: id.to_string(),
        display_name: format!("Group {id}"),
        description: None,
        members,
        attributes: Default::default(),
    };
    let odd_ids = [
        "AbC",
        "ümlaut-Ä",
        "quote\"d",
        "back\\slash",
        "x,y",
        "  spaced ",
    ];
    let groups = vec![
        group(
            "g1",
            odd_ids
                .iter()
                .map(|id| MemberRef::user(*id))
                .chain([MemberRef::group("g2")])
                .collect(),
        ),
        group("g2", vec![MemberRef::user("AbC")]),
        group("g3", vec![]),
    ];
    store_groups(&db, &groups).await;
    let derived = group_value_rows(&db).await;
    assert_eq!(derived.len(), 8, "{derived:?}");
    assert_eq!(
        derived[2],
        (
            "g1".to_string(),
            2,
            Some("quote\"d".to_string()),
            Some("user".to_string())
        )
    );
    assert_eq!(
        derived[6],
        (
            "g1".to_string(),
            6,
            Some("g2".to_string()),
            Some("group".to_string())
        )
    );

    // The element-by-element path: what the backfill writes from the same mirror rows.
    sqlx::query("DELETE FROM mirror_values WHERE resource = 'group'")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO mirror_values_backfill (pending) VALUES (1)")
        .execute(db.pool())
        .await
        .unwrap();
    idsync::store::mirror::values::backfill(&db).await.unwrap();
    assert_eq!(group_value_rows(&db).await, derived);

    // A rewrite replaces the group's rows.
    store_groups(&db, &[group("g1", vec![MemberRef::user("new")])]).await;
    let after = group_value_rows(&db).await;
    assert_eq!(
        after,
        [
            (
                "g1".to_string(),
                0,
                Some("new".to_string()),
                Some("user".to_string())
            ),
            (
                "g2".to_string(),
                0,
                Some("AbC".to_string()),
                Some("user".to_string())
            ),
        ]
    );
}
on_both_backends!(derived_member_rows_equal_the_bound_ones);
