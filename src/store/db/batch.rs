//! Write statements sent together. On SQLite every statement costs a hand-off to sqlx's
//! worker thread and back (two thread wake-ups, which a SCIM write paid 15 to 23 times); a
//! batch of statements whose results nobody reads goes over in one hand-off, as one
//! multi-statement query. PostgreSQL's extended protocol takes one statement per query, so
//! there the statements run one after another, exactly as they would unbatched.
//!
//! Statements are built with [`param`](super::param) numbering from 1 within each
//! statement: on SQLite that is the anonymous `?`, which sqlx binds in order across the
//! statements of one query.

use sqlx::AnyConnection;

use super::statement::Statement;
use super::{
    DbError, MAX_BINDS, MAX_ROWS_PER_STATEMENT, Val, anonymous_params, insert_sql,
    rows_per_statement,
};

/// Batches binding more values than this run statement by statement.
const JOIN_UP_TO_BINDS: usize = 2_000;

/// Write statements to run in order, in as few round trips as the backend allows.
#[derive(Clone)]
pub struct Batch {
    statements: Vec<Statement>,
    /// The values the statements bind, kept as they are added so that checking the
    /// batch's size after every statement costs nothing.
    bound: usize,
    context: &'static str,
}

/// Says what the batch is for and how big it is; never the values it binds (user data).
impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("context", &self.context)
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl Batch {
    /// An empty batch; `context` names what it does in a failure.
    pub fn new(context: &'static str) -> Batch {
        Batch {
            statements: Vec::new(),
            bound: 0,
            context,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Adds a statement whose placeholders (see the module doc) take `values`.
    pub fn push(&mut self, sql: String, values: Vec<Val>) {
        self.add(Statement { sql, values });
    }

    fn add(&mut self, statement: Statement) {
        self.bound += statement.values.len();
        self.statements.push(statement);
    }

    /// Adds multi-row `INSERT`s, chunked as [`insert_rows`](super::insert_rows) chunks
    /// them. Each full chunk runs as soon as the batch holds more than `MAX_BINDS` values,
    /// so a bulk insert (a plan's creates, a merge's mirror rows) holds one chunk at a
    /// time, never all of them; a few rows (an event) wait for the statements after them.
    pub async fn insert_many(
        &mut self,
        conn: &mut AnyConnection,
        head: &str,
        tail: &str,
        columns: usize,
        values: Vec<Val>,
    ) -> Result<(), DbError> {
        let anonymous = anonymous_params(conn);
        for statement in Statement::inserts(anonymous, head, tail, columns, values) {
            self.add(statement);
            self.flush_if_large(conn).await?;
        }
        Ok(())
    }

    /// Adds multi-row `INSERT`s of `rows`, each made into `columns` values by `row`, a
    /// statement's rows at a time: made for every row first, a million users' values were
    /// a large share of an initial sync's peak. Runs as [`insert_many`](Self::insert_many).
    pub async fn insert_each<T>(
        &mut self,
        conn: &mut AnyConnection,
        head: &str,
        columns: usize,
        rows: &[T],
        mut row: impl FnMut(&T, &mut Vec<Val>),
    ) -> Result<(), DbError> {
        let anonymous = anonymous_params(conn);
        for chunk in rows.chunks(rows_per_statement(columns)) {
            let mut values = Vec::with_capacity(chunk.len() * columns);
            for item in chunk {
                row(item, &mut values);
            }
            debug_assert_eq!(values.len(), chunk.len() * columns);
            self.add(Statement {
                sql: insert_sql(anonymous, head, "", columns, chunk.len()),
                values,
            });
            self.flush_if_large(conn).await?;
        }
        Ok(())
    }

    /// Adds `DELETE FROM <table> WHERE [<column> = <value> AND ...] <key_column> IN (...)`
    /// over `keys`, chunked as [`delete_in`](super::delete_in) chunks them.
    pub fn delete_in(
        &mut self,
        conn: &AnyConnection,
        table: &str,
        filter: &[(&str, &str)],
        key_column: &str,
        keys: &[String],
    ) {
        for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
            let statement = Statement::delete_in(conn, table, filter, key_column, chunk);
            self.add(statement);
        }
    }

    /// How many values the statements held now bind.
    fn bound(&self) -> usize {
        self.bound
    }

    /// Runs what the batch holds now if it binds more than `MAX_BINDS` values, and starts
    /// afresh: a bulk write (a pull run's plan, a large merge) then holds one section's
    /// values at a time, as unbatched chunks did, while a small one (a SCIM request's)
    /// still waits to go with the statements after it. Costs nothing when it does not
    /// run, so callers check after every statement they add.
    pub async fn flush_if_large(&mut self, conn: &mut AnyConnection) -> Result<(), DbError> {
        if self.bound() > MAX_BINDS {
            let full = std::mem::replace(self, Batch::new(self.context));
            full.execute(conn).await?;
        }
        Ok(())
    }

    /// Runs the statements in order: on SQLite, a batch of small statements (up to
    /// `JOIN_UP_TO_BINDS` values in all) goes as one query; anything larger, and anything
    /// on PostgreSQL, statement by statement.
    pub async fn execute(self, conn: &mut AnyConnection) -> Result<(), DbError> {
        if self.statements.is_empty() {
            return Ok(());
        }
        let context = self.context;
        let bound = self.bound();
        // A bulk write gains nothing from joining statements (each is thousands of values
        // already) and would only prepare longer texts: it goes statement by statement,
        // exactly as unbatched. Joining is for the many small statements of one request.
        if !anonymous_params(conn) || bound > JOIN_UP_TO_BINDS {
            for statement in self.statements {
                statement.run(conn, context).await?;
            }
            return Ok(());
        }
        let mut joined = Statement {
            sql: String::new(),
            values: Vec::with_capacity(bound),
        };
        for statement in self.statements {
            if !joined.sql.is_empty() {
                joined.sql.push_str(";\n");
            }
            joined.sql.push_str(&statement.sql);
            joined.values.extend(statement.values);
        }
        joined.run(conn, context).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    async fn sqlite() -> AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:")
            .await
            .expect("connect");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)")
            .execute(&mut conn)
            .await
            .expect("create");
        conn
    }

    #[tokio::test]
    async fn statements_of_a_batch_bind_their_own_values_in_order() {
        let mut conn = sqlite().await;
        let mut batch = Batch::new("testing");
        let p = |n| super::super::param(&conn, n);
        batch.push(
            format!("INSERT INTO t (k, n) VALUES ({}, {})", p(1), p(2)),
            vec![Val::Text("a".into()), Val::Int(1)],
        );
        batch.push(
            format!("INSERT INTO t (k, n) VALUES ({}, {})", p(1), p(2)),
            vec![Val::Text("b".into()), Val::Int(2)],
        );
        batch.push(
            format!("UPDATE t SET n = {} WHERE k = {}", p(1), p(2)),
            vec![Val::Int(5), Val::Text("a".into())],
        );
        batch.execute(&mut conn).await.expect("batch");
        let rows = sqlx::query("SELECT k, n FROM t ORDER BY k")
            .fetch_all(&mut conn)
            .await
            .expect("select");
        let got: Vec<(String, i64)> = rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect();
        assert_eq!(got, vec![("a".into(), 5), ("b".into(), 2)]);
    }

    #[tokio::test]
    async fn a_failing_statement_fails_the_batch_with_its_context() {
        let mut conn = sqlite().await;
        let mut batch = Batch::new("writing twice");
        for _ in 0..2 {
            batch.push(
                "INSERT INTO t (k, n) VALUES (?, ?)".into(),
                vec![Val::Text("a".into()), Val::Int(1)],
            );
        }
        let error = batch.execute(&mut conn).await.expect_err("duplicate key");
        assert!(error.to_string().contains("writing twice"), "{error}");
    }

    #[tokio::test]
    async fn many_rows_are_inserted_a_chunk_at_a_time_and_a_few_wait() {
        let mut conn = sqlite().await;
        let mut batch = Batch::new("many");
        let rows = MAX_BINDS; // two values a row: about two statements' worth
        let values: Vec<Val> = (0..rows)
            .flat_map(|i| [Val::Text(format!("k{i}")), Val::Int(i as i64)])
            .collect();
        batch
            .insert_many(&mut conn, "t (k, n)", "", 2, values)
            .await
            .expect("insert many");
        assert!(
            batch.bound() <= MAX_BINDS,
            "the batch holds at most one chunk, not all of them ({} values)",
            batch.bound()
        );
        let written: i64 = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get(0);
        assert!(written > 0, "full chunks ran as they were added");
        batch.execute(&mut conn).await.expect("the rest");
        let written: i64 = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get(0);
        assert_eq!(written as usize, rows);

        let mut few = Batch::new("few");
        few.insert_many(
            &mut conn,
            "t (k, n)",
            "",
            2,
            vec![Val::Text("x".into()), Val::Int(0)],
        )
        .await
        .expect("insert few");
        assert_eq!(
            few.bound(),
            2,
            "a few rows wait for the statements after them"
        );
    }

    #[tokio::test]
    async fn rows_made_one_by_one_are_inserted_a_statement_at_a_time() {
        let mut conn = sqlite().await;
        let mut batch = Batch::new("built");
        let rows: Vec<usize> = (0..MAX_BINDS).collect(); // two values a row
        batch
            .insert_each(&mut conn, "t (k, n)", 2, &rows, |i, values| {
                values.extend([Val::Text(format!("k{i}")), Val::Int(*i as i64)])
            })
            .await
            .expect("insert each");
        assert!(
            batch.bound() <= MAX_BINDS,
            "the batch holds at most one statement's rows ({} values)",
            batch.bound()
        );
        batch.execute(&mut conn).await.expect("the rest");
        let rows = sqlx::query("SELECT k, n FROM t ORDER BY n")
            .fetch_all(&mut conn)
            .await
            .expect("select");
        assert_eq!(rows.len(), MAX_BINDS);
        let last = &rows[MAX_BINDS - 1];
        assert_eq!(last.get::<String, _>(0), format!("k{}", MAX_BINDS - 1));
        assert_eq!(last.get::<i64, _>(1), (MAX_BINDS - 1) as i64);
    }

    #[tokio::test]
    async fn a_bulk_batch_runs_statement_by_statement() {
        let mut conn = sqlite().await;
        let mut batch = Batch::new("bulk");
        let per_statement = 500;
        let statements = MAX_BINDS / (2 * per_statement) + 3;
        for s in 0..statements {
            let mut values = Vec::new();
            let mut rows = Vec::new();
            for i in 0..per_statement {
                rows.push("(?, ?)");
                values.push(Val::Text(format!("{s}-{i}")));
                values.push(Val::Int(i as i64));
            }
            batch.push(
                format!("INSERT INTO t (k, n) VALUES {}", rows.join(",")),
                values,
            );
        }
        batch.execute(&mut conn).await.expect("batch");
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get(0);
        assert_eq!(count as usize, statements * per_statement);
    }
}
