//! Migration 0012 turns the `effective_memberships` table into a view over the direct
//! memberships and `effective_nested`: a database written before it must read the same
//! effective memberships after it.

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};

/// The SQLite migrations up to and including `last`, in order, from the repository.
fn migrations_through(last: u32) -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("migrations")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.get(..4)
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= last)
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("read migration"))
        .collect()
}

async fn run(conn: &mut AnyConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .expect(sql);
}

async fn effective(conn: &mut AnyConnection, table: &str) -> Vec<(String, String)> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT group_id, user_id FROM {table} ORDER BY group_id, user_id"
    )))
    .fetch_all(&mut *conn)
    .await
    .expect("read effective")
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

#[tokio::test]
async fn effective_memberships_read_the_same_after_the_view_replaces_the_table() {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect("sqlite::memory:")
        .await
        .expect("connect");
    for sql in migrations_through(11) {
        run(&mut conn, &sql).await;
    }
    // eng holds plat, plat holds u2; eng holds u1 directly (granted by two connectors);
    // staff holds u2 directly and through nothing else.
    run(
        &mut conn,
        "INSERT INTO memberships (group_id, member_id, member_kind, connector, origin) VALUES \
         ('eng', 'plat', 'group', 'hr', 'source'), ('plat', 'u2', 'user', 'hr', 'source'), \
         ('eng', 'u1', 'user', 'hr', 'source'), ('eng', 'u1', 'user', 'mapping:m', 'mapping'), \
         ('staff', 'u2', 'user', 'hr', 'source'); \
         INSERT INTO effective_memberships (group_id, user_id) VALUES \
         ('eng', 'u1'), ('eng', 'u2'), ('plat', 'u2'), ('staff', 'u2');",
    )
    .await;
    let before = effective(&mut conn, "effective_memberships").await;

    for sql in &migrations_through(12)[11..] {
        run(&mut conn, sql).await;
    }
    assert_eq!(effective(&mut conn, "effective_memberships").await, before);
    assert_eq!(
        effective(&mut conn, "effective_nested").await,
        [("eng".to_string(), "u2".to_string())],
        "only the pair nesting gives is stored"
    );
    // A direct membership added later shows through the view once, even where nesting
    // already gave the pair.
    run(
        &mut conn,
        "INSERT INTO memberships (group_id, member_id, member_kind, connector, origin) \
         VALUES ('eng', 'u2', 'user', 'hr', 'source')",
    )
    .await;
    assert_eq!(effective(&mut conn, "effective_memberships").await, before);
}
