//! The database handle shared by the mirror and the target: one sqlx `Any` pool over
//! SQLite (embedded default, WAL) or PostgreSQL, the migrations of each backend, write
//! transactions, and the small helpers that let one SQL text serve both backends.
//!
//! Rules that keep the SQL portable: `$N` placeholders (SQLite accepts them too), only
//! TEXT / BIGINT / booleans as column types, timestamps as RFC 3339 UTC text, JSON as text.
//! Booleans are BOOLEAN on PostgreSQL and INTEGER on SQLite; read them with [`get_bool`].

mod batch;
mod nodelay;
mod statement;
pub use batch::Batch;
use statement::Statement;

use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database error with what was being done when it happened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database ({backend}): {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database URL must start with sqlite: or postgres:// (got `{0}`)")]
    UnsupportedUrl(String),
    #[error("database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database's schema is not the one this build reads (commands that only read
    /// never migrate).
    #[error("{0}")]
    Schema(String),
    /// Where a run sets records aside (see `crate::spool`: the read until the merge, the
    /// projected users until the apply): memory, then a temporary file in `dir`.
    #[error(
        "setting records aside (in memory, then in a temporary file in {dir}) \
         failed while {context}: {source}"
    )]
    Spool {
        context: &'static str,
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("stored data is corrupt ({context}): {message}")]
    Corrupt {
        context: &'static str,
        message: String,
    },
}

impl DbError {
    /// Setting records aside in a spool failed while `context` (see [`DbError::Spool`]).
    pub fn spool(context: &'static str, source: std::io::Error) -> DbError {
        DbError::Spool {
            context,
            dir: crate::spool::directory(),
            source,
        }
    }
}

/// Attaches what was being done to a sqlx error.
pub trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError::Query { context, source })
    }
}

/// The shared handle. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; writers inside this process queue here instead of
    /// failing with SQLITE_BUSY when a deferred transaction upgrades to a write.
    write_lock: Arc<Mutex<()>>,
}

/// A write transaction. On SQLite it also holds the process-wide write lock.
pub struct WriteTx {
    pub tx: Transaction<'static, sqlx::Any>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await.context("committing")
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.tx.rollback().await.context("rolling back")
    }
}

impl Db {
    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect_within(url, Duration::from_secs(30)).await
    }

    /// Connects for a command that only reads: a database that does not answer within
    /// `wait` fails, nothing is migrated, and a schema this build does not read (none
    /// yet, older, newer) is an error saying what to run.
    pub async fn open_for_reading(url: &str, wait: Duration) -> Result<Db, DbError> {
        let db = Db::connect_within(url, wait).await?;
        let (applied, latest) = db.schema_versions().await;
        let message = match applied {
            Some(version) if version == latest => return Ok(db),
            None => "holds no idsync schema yet: run `idsync migrate` (or a sync) first".to_owned(),
            Some(version) if version < latest => format!(
                "has schema version {version} and this idsync reads {latest}: run `idsync \
                 migrate` (nodes running `idsync serve` migrate when they start)"
            ),
            Some(version) => format!(
                "has schema version {version}, newer than this idsync ({latest}): use the \
                 idsync that migrated it"
            ),
        };
        db.close().await;
        Err(DbError::Schema(format!(
            "the database at {} {message}",
            redact_url(url)
        )))
    }

    /// The schema version the database is at (`None`: no idsync schema yet) and the one
    /// this build writes.
    pub async fn schema_versions(&self) -> (Option<i64>, i64) {
        let applied = self.applied_version().await.ok().flatten();
        (applied, self.latest_version())
    }

    /// This backend's migrations.
    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The newest migration this build knows.
    fn latest_version(&self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The newest migration applied (`Ok(None)`: none recorded).
    async fn applied_version(&self) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
            .bind(true)
            .fetch_one(&self.pool)
            .await
    }

    /// Connects without migrating, waiting at most `wait` for a connection.
    pub async fn connect_within(url: &str, wait: Duration) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(DbError::UnsupportedUrl(redact_url(url)));
        };
        let options: AnyConnectOptions = url.parse().map_err(|source| DbError::Connect {
            backend: backend.name(),
            source,
        })?;
        // A 50,000-user run has statements that take over sqlx's 1 s "slow" mark as a matter
        // of course: that is worth a debug line, not a WARN in every routine run.
        let options = options
            .log_statements(log::LevelFilter::Debug)
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let in_memory = url.contains(":memory:");
        if backend == Backend::Sqlite && !in_memory {
            restrict_sqlite_file(&url)?;
        }
        let mut pool = AnyPoolOptions::new().acquire_timeout(wait);
        pool = match backend {
            // An in-memory SQLite database exists per connection: keep exactly one.
            Backend::Sqlite if in_memory => pool.max_connections(1).min_connections(1),
            Backend::Sqlite => pool.max_connections(4),
            Backend::Postgres => pool.max_connections(10),
        };
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // 32 MiB of page cache per connection: bulk writes into indexes larger
                    // than SQLite's 2 MiB default otherwise go to the OS for every page.
                    conn.execute("PRAGMA cache_size = -32768").await?;
                    Ok(())
                })
            });
        }
        if backend == Backend::Postgres
            && let Some(port) = postgres_tcp_port(&url)
        {
            pool = pool.after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    match nodelay::set_on_connections_to(port) {
                        Ok(found) => tracing::trace!(port, found, "TCP_NODELAY set"),
                        Err(e) => tracing::debug!(port, "TCP_NODELAY not set: {e}"),
                    }
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|source| DbError::Connect {
                backend: backend.name(),
                source,
            })?;
        Ok(Db {
            pool,
            backend,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrator().run(&self.pool).await?;
        // Rows written before migration 0009 get their multi-valued index once, here.
        crate::store::mirror::values::backfill(self).await
    }

    /// Whether the database answers and every migration this build knows is applied
    /// (`Err` says which is not so).
    pub async fn ready(&self) -> Result<(), String> {
        let latest = self.latest_version();
        let applied = self
            .applied_version()
            .await
            .map_err(|e| format!("the database does not answer: {e}"))?;
        match applied {
            Some(v) if v >= latest => Ok(()),
            other => Err(format!(
                "migrations not applied: the database is at version {}, this build needs {latest}",
                other.unwrap_or(0)
            )),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction (queued behind other writers of this process on SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx, DbError> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        // IMMEDIATE takes SQLite's write lock up front (waiting up to busy_timeout): a
        // deferred transaction that reads first fails at once with SQLITE_BUSY when another
        // process committed in between.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .context("starting a transaction")?;
        Ok(WriteTx { tx, _guard: guard })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The file path of a `sqlite:` URL (`sqlite:path`, `sqlite://path`, `sqlite:///abs`).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    // sqlx percent-decodes the path; the file secured here must be the one it opens.
    let decoded = url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| path.to_string());
    Some(std::path::PathBuf::from(decoded))
}

/// The state database holds token hashes and personal data: it, and the WAL and shared
/// memory files SQLite creates beside it with the same permissions, are readable by their
/// owner only (0600). A new file is created so; an existing one that others may read is
/// tightened, with a warning.
fn restrict_sqlite_file(url: &str) -> Result<(), DbError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let Some(path) = sqlite_path(url) else {
            return Ok(());
        };
        let failed = |e: std::io::Error| DbError::Corrupt {
            context: "securing the SQLite file",
            message: format!("{}: {e}", path.display()),
        };
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => std::fs::File::open(&path),
                    _ => Err(e),
                })
                .map_err(failed)?;
        }
        let mut companions = vec![path.clone()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            companions.push(name.into());
        }
        for file in companions {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %file.display(),
                    mode = format!("{mode:o}"),
                    "the state database was readable by others; restricting it to its owner (0600)"
                );
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(failed)?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = url;
    Ok(())
}

/// Makes SQLite create the file when it does not exist yet.
fn sqlite_url(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Hides a password in a database URL before it goes into a message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:****{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Reads a boolean column: BOOLEAN on PostgreSQL, INTEGER on SQLite.
pub fn get_bool(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

/// The current time as stored: RFC 3339, UTC, milliseconds.
pub fn now_text() -> String {
    crate::clock::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One bound value of a bulk statement.
#[derive(Debug, Clone)]
pub enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Binds one value to a query.
pub fn bind_val<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    val: Val,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match val {
        Val::Text(v) => query.bind(v),
        Val::OptText(v) => query.bind(v),
        Val::Int(v) => query.bind(v),
        Val::Float(v) => query.bind(v),
        Val::Bool(v) => query.bind(v),
    }
}

/// Whether bulk statements on this connection use anonymous `?` placeholders. SQLite looks
/// a named parameter (`$N`, `?N`) up by a linear search each time sqlx binds one, which
/// makes a 10,000-parameter statement quadratic; anonymous ones bind in O(1). Statements
/// built this way must bind in the order the placeholders appear.
pub fn anonymous_params(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// Whether `conn` talks to PostgreSQL.
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
        || conn.backend_name().eq_ignore_ascii_case("postgres")
}

/// `expr` with its letters folded to lower case in ASCII only, so that both backends answer
/// one case-insensitive comparison alike: SQLite's LOWER folds only ASCII; PostgreSQL's
/// does so under the "C" collation (and every letter under others).
pub fn ascii_lower(postgres: bool, expr: &str) -> String {
    if postgres {
        format!("LOWER({expr} COLLATE \"C\")")
    } else {
        format!("LOWER({expr})")
    }
}

/// The placeholder for parameter `n` (1-based) of a statement built for `conn`.
pub fn param(conn: &AnyConnection, n: usize) -> String {
    if anonymous_params(conn) {
        "?".to_string()
    } else {
        format!("${n}")
    }
}

/// `count` placeholders for parameters `first..first + count`, comma separated.
pub fn placeholders(conn: &AnyConnection, first: usize, count: usize) -> String {
    let mut out = String::with_capacity(count * 6);
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&param(conn, first + i));
    }
    out
}

/// Bound variables per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_BINDS: usize = 30_000;
pub(crate) const MAX_ROWS_PER_STATEMENT: usize = 1_000;

/// The rows a multi-row `INSERT` of `columns` columns takes at the most.
pub(crate) fn rows_per_statement(columns: usize) -> usize {
    (MAX_BINDS / columns.max(1)).clamp(1, MAX_ROWS_PER_STATEMENT)
}

/// Inserts rows with multi-row `INSERT` statements. `head` is `table (col, col, ...)`,
/// `tail` is appended to each statement (e.g. `ON CONFLICT DO NOTHING`), `values` holds
/// the rows one after another, `columns` values each.
pub async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    columns: usize,
    values: Vec<Val>,
    context: &'static str,
) -> Result<u64, DbError> {
    let mut affected = 0;
    for statement in Statement::inserts(anonymous_params(conn), head, tail, columns, values) {
        affected += statement.run(conn, context).await?;
    }
    Ok(affected)
}

fn insert_sql(anonymous: bool, head: &str, tail: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 6 + 32);
    sql.push_str("INSERT INTO ");
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 1;
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..columns {
            if col > 0 {
                sql.push(',');
            }
            if anonymous {
                sql.push('?');
            } else {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            n += 1;
        }
        sql.push(')');
    }
    if !tail.is_empty() {
        sql.push(' ');
        sql.push_str(tail);
    }
    sql
}

/// Keys per `IN (...)` list of a chunked select. Large, because each statement costs a
/// round trip, and on PostgreSQL over TCP one that spans several segments can wait out a
/// delayed ACK (sqlx 0.9 does not set TCP_NODELAY): a 10,000-member PATCH went from 3.2 s
/// to 2.1 s going from 500 to 5,000 keys, and SQLite did not mind.
const KEYS_PER_SELECT: usize = 5_000;

/// Runs `<select> WHERE [<leading> <param> AND] <key_column> IN (...)` over `keys` in
/// chunks and returns every row. `leading` is a condition ending in an operator, such as
/// `("connector = ", id)`, bound first.
pub async fn select_in(
    conn: &mut AnyConnection,
    select: &str,
    leading: Option<(&str, &str)>,
    key_column: &str,
    keys: &[String],
    context: &'static str,
) -> Result<Vec<AnyRow>, DbError> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(KEYS_PER_SELECT) {
        let statement = Statement::where_in(conn, select, leading.as_slice(), key_column, chunk);
        rows.extend(
            statement
                .query()
                .fetch_all(&mut *conn)
                .await
                .context(context)?,
        );
    }
    Ok(rows)
}

/// Runs `DELETE FROM <table> WHERE <column> = <bind> AND ... <key_column> IN (...)` over
/// `keys` in chunks, one equality per `filter` entry; without a filter, just the `IN`.
pub async fn delete_in(
    conn: &mut AnyConnection,
    table: &str,
    filter: &[(&str, &str)],
    key_column: &str,
    keys: &[String],
    context: &'static str,
) -> Result<u64, DbError> {
    let mut affected = 0;
    for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
        let statement = Statement::delete_in(conn, table, filter, key_column, chunk);
        affected += statement.run(conn, context).await?;
    }
    Ok(affected)
}

/// The port of a PostgreSQL URL that connects over TCP; None for a Unix socket (a `host`
/// or `socket` that is a path), where there is no Nagle to turn off.
fn postgres_tcp_port(url: &str) -> Option<u16> {
    let options: sqlx::postgres::PgConnectOptions = url.parse().ok()?;
    let socket = options.get_socket().is_some() || options.get_host().starts_with('/');
    (!socket).then(|| options.get_port())
}

#[cfg(test)]
mod tests;
