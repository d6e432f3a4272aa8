//! Test support: fresh migrated databases of both backends, a scripted pull connector that
//! replays pages (and fails where told to), the SCIM harness, and the test kit's fake
//! identity providers under their old paths.

#![allow(dead_code)]

pub mod scim;
pub mod scripted;

// The fake identity providers and their conformance seam live in the test kit crate, which
// the benches import too; the tests keep their `crate::support::...` paths.
pub use idsync_testkit::{conformance, fake_azure, fake_google, fake_keycloak, fake_okta};

use idsync::db::{Backend, Db};
use sqlx::Executor;

/// A migrated database that is dropped when the test ends.
pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// The database's URL, for a configuration file (PostgreSQL only).
    pub fn postgres_url(&self) -> Option<String> {
        let (admin, name) = self.postgres.as_ref()?;
        Some(replace_database(admin, name))
    }
}

impl std::ops::Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop may run inside the test's runtime, which must not be blocked on: a small
        // runtime on its own thread drops the database, FORCE ends the test's connections.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = Db::connect(&admin_url).await {
                    let _ = admin
                        .pool()
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/idsync.db", dir.path().display());
    let db = Db::open(&url).await.expect("open sqlite");
    assert_eq!(db.backend(), Backend::Sqlite);
    TestDb {
        db,
        _dir: Some(dir),
        postgres: None,
    }
}

/// A fresh PostgreSQL database, or None (with a printed reason) when
/// IDSYNC_TEST_POSTGRES_URL is not set.
pub async fn postgres() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("IDSYNC_TEST_POSTGRES_URL") else {
        eprintln!("skipping the PostgreSQL case: IDSYNC_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("idsync_t_{}", uuid::Uuid::new_v4().simple());
    let admin = Db::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    admin
        .pool()
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    admin.close().await;
    let url = replace_database(&admin_url, &name);
    let db = Db::open(&url).await.expect("open postgres");
    Some(TestDb {
        db,
        _dir: None,
        postgres: Some((admin_url, name)),
    })
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs an async test body against SQLite always and PostgreSQL when configured.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::sqlite().await).await;
            }

            #[tokio::test]
            #[cfg_attr(
                not(idsync_postgres_tests),
                ignore = "IDSYNC_TEST_POSTGRES_URL is not set"
            )]
            async fn postgres() {
                if let Some(db) = $crate::support::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

/// Makes every insert of an effective membership that nesting gives (`effective_nested`)
/// fail, the last table a run writes: a failure there proves earlier writes of the same
/// run are rolled back.
pub async fn inject_failure_on_effective_insert(db: &Db) {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "CREATE TRIGGER inject_failure BEFORE INSERT ON effective_nested \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        }
        Backend::Postgres => {
            "CREATE FUNCTION inject_failure() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER inject_failure BEFORE INSERT ON effective_nested \
             FOR EACH ROW EXECUTE FUNCTION inject_failure()"
        }
    };
    db.pool()
        .execute(sql)
        .await
        .expect("install failure trigger");
}

pub async fn remove_injected_failure(db: &Db) {
    let sql = match db.backend() {
        Backend::Sqlite => "DROP TRIGGER inject_failure",
        Backend::Postgres => "DROP TRIGGER inject_failure ON effective_nested",
    };
    db.pool().execute(sql).await.expect("drop failure trigger");
}

#[test]
fn database_name_is_replaced_in_urls() {
    assert_eq!(
        replace_database("postgres://u@127.0.0.1:5432/test", "x"),
        "postgres://u@127.0.0.1:5432/x"
    );
    assert_eq!(
        replace_database("postgres://127.0.0.1/test?sslmode=disable", "x"),
        "postgres://127.0.0.1/x?sslmode=disable"
    );
    assert_eq!(
        replace_database("postgres://127.0.0.1", "x"),
        "postgres://127.0.0.1/x"
    );
}

/// (user name, active) of every target user, by name.
pub async fn target_users(db: &Db) -> Vec<(String, bool)> {
    idsync::target::query::list_users(db.pool(), None, 100_000, 0)
        .await
        .expect("list users")
        .into_iter()
        .map(|u| (u.user_name, u.active))
        .collect()
}

/// The names of the users effectively in target group `group` (directly or through
/// nesting).
pub async fn effective_names(db: &Db, group: &str) -> std::collections::BTreeSet<String> {
    let found = idsync::target::query::find_group(db.pool(), group)
        .await
        .expect("find group")
        .unwrap_or_else(|| panic!("group {group} in the target"));
    idsync::target::query::effective_members(db.pool(), &found.id)
        .await
        .expect("effective members")
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// Syncs `connector` as connector `dir` through a pass-through mapping that deletes
/// removed users (the directory connectors' tests).
pub async fn sync_directory(
    db: &Db,
    connector: &dyn idsync::connectors::PullConnector,
) -> Result<idsync::sync::RunReport, idsync::sync::SyncError> {
    let mapping = idsync::config::MappingConfig::pass_through(
        "default",
        idsync::config::OnRemove::Delete,
        100_000,
        100.0,
    );
    idsync::sync::sync(
        db,
        "dir",
        &mapping,
        connector,
        idsync::sync::RunOptions::default(),
        &idsync::sync::NoProgress,
    )
    .await
}
