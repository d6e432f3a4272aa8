//! The benches' write floor as issue 17 defines it: the very rows a sync wrote into the
//! target (users, groups, memberships), inserted plainly through sqlx into an empty
//! database. `sync_scale` and `pull_scale` both divide by it, so that a connector whose
//! records carry more (attributes, e-mails) is measured against a floor that writes the
//! same bytes, not against short synthetic rows.

// Bench code may unwrap: a failure is the bench's answer ([lints] in Cargo.toml denies it
// in production code).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use idsync::db::{Db, Val, insert_rows};

/// The columns of each target table a sync writes: `active` is a boolean (INTEGER on
/// SQLite), every other column (nullable) text.
const TARGET_TABLES: [(&str, &[&str]); 3] = [
    (
        "users",
        &[
            "id",
            "connector",
            "external_id",
            "user_name",
            "user_name_key",
            "display_name",
            "given_name",
            "family_name",
            "email",
            "active",
            "attributes",
            "content_hash",
            "created_at",
            "updated_at",
            "removed_at",
        ],
    ),
    (
        "groups",
        &[
            "id",
            "connector",
            "external_id",
            "name",
            "name_key",
            "description",
            "attributes",
            "content_hash",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "memberships",
        &[
            "group_id",
            "member_id",
            "member_kind",
            "connector",
            "origin",
        ],
    ),
];

/// The floor as the issue defines it: the very rows the initial sync wrote into `synced`
/// (users, groups, memberships; every column, in primary-key order), read back and then
/// inserted plainly into the empty `fresh` database in one transaction. Returns the
/// insert's seconds (the read is not timed).
pub async fn same_rows(synced: &Db, fresh: &Db) -> f64 {
    let mut tables = Vec::new();
    for (table, columns) in TARGET_TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM {table} ORDER BY 1, 2",
            columns.join(", ")
        )))
        .fetch_all(synced.pool())
        .await
        .unwrap();
        let mut values = Vec::with_capacity(rows.len() * columns.len());
        for row in &rows {
            for column in columns.iter() {
                values.push(match *column {
                    "active" => Val::Bool(idsync::db::get_bool(row, column).unwrap()),
                    _ => Val::OptText(sqlx::Row::try_get(row, *column).unwrap()),
                });
            }
        }
        tables.push((table, columns, values));
    }
    let start = Instant::now();
    let mut tx = fresh.begin_write().await.unwrap();
    for (table, columns, values) in tables {
        insert_rows(
            tx.conn(),
            &format!("{table} ({})", columns.join(", ")),
            "",
            columns.len(),
            values,
            "floor rows",
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    start.elapsed().as_secs_f64()
}
