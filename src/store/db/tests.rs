#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_and_its_wal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.db");
    let url = format!("sqlite://{}", path.display());
    let db = super::Db::open(&url).await.expect("open");
    sqlx::query("INSERT INTO audit_log (at, actor, action, target) VALUES ('t', 'a', 'b', 'c')")
        .execute(db.pool())
        .await
        .expect("write");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let wal = dir.path().join("state.db-wal");
    assert!(wal.exists(), "WAL mode writes a -wal file");
    assert_eq!(mode(&wal), 0o600);
    assert_eq!(mode(&dir.path().join("state.db-shm")), 0o600);
    db.close().await;

    // A file made readable by others is tightened when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let db = super::Db::open(&url).await.expect("reopen");
    assert_eq!(mode(&path), 0o600);
    db.close().await;
}

#[test]
fn sqlite_paths_come_from_the_url() {
    use std::path::PathBuf;
    assert_eq!(
        super::sqlite_path("sqlite://idsync.db"),
        Some(PathBuf::from("idsync.db"))
    );
    assert_eq!(
        super::sqlite_path("sqlite:idsync.db?mode=rwc"),
        Some(PathBuf::from("idsync.db"))
    );
    assert_eq!(
        super::sqlite_path("sqlite:///var/lib/idsync/state.db"),
        Some(PathBuf::from("/var/lib/idsync/state.db"))
    );
    assert_eq!(super::sqlite_path("sqlite::memory:"), None);
    assert_eq!(
        super::sqlite_path("sqlite:///srv/id%20sync/state+1.db"),
        Some(PathBuf::from("/srv/id sync/state+1.db"))
    );
}

use super::*;

#[test]
fn insert_sql_numbers_placeholders_across_rows() {
    assert_eq!(
        insert_sql(false, "t (a, b)", "ON CONFLICT DO NOTHING", 2, 2),
        "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING"
    );
}

#[test]
fn passwords_are_redacted_from_urls() {
    assert_eq!(
        redact_url("postgres://idsync:s3cret@db:5432/idsync"),
        "postgres://idsync:****@db:5432/idsync"
    );
    assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
}

#[test]
fn sqlite_urls_create_missing_files() {
    assert_eq!(sqlite_url("sqlite://a.db"), "sqlite://a.db?mode=rwc");
    assert_eq!(sqlite_url("sqlite::memory:"), "sqlite::memory:");
}

#[test]
fn nodelay_is_set_for_tcp_urls_only() {
    assert_eq!(
        postgres_tcp_port("postgres://idsync@db.example.com/idsync"),
        Some(5432)
    );
    assert_eq!(
        postgres_tcp_port("postgres://idsync:pw@10.0.0.5:6432/idsync?sslmode=require"),
        Some(6432)
    );
    // A Unix socket, as a path in the host or in `host=`: no TCP, nothing to set.
    assert_eq!(
        postgres_tcp_port("postgres://idsync@%2Fvar%2Frun%2Fpostgresql/idsync"),
        None
    );
    assert_eq!(
        postgres_tcp_port("postgres:///idsync?host=/var/run/postgresql"),
        None
    );
}
