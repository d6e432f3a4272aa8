//! One write or read statement with its values, and the chunked statements the bulk helpers
//! build: multi-row `INSERT`s and `... WHERE key IN (...)` over a chunk of keys. Built in
//! one place so that a statement run at once ([`insert_rows`](super::insert_rows),
//! [`delete_in`](super::delete_in), [`select_in`](super::select_in)) and one sent with a
//! [`Batch`](super::Batch) are the same text with the same values.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe};

use super::{
    Context, DbError, MAX_BINDS, MAX_ROWS_PER_STATEMENT, Val, bind_val, insert_sql, param,
    placeholders,
};

/// One statement and its values, in placeholder order.
#[derive(Clone)]
pub(super) struct Statement {
    pub(super) sql: String,
    pub(super) values: Vec<Val>,
}

impl Statement {
    /// Multi-row `INSERT INTO <head> VALUES ... <tail>` statements over `values` (the rows
    /// one after another, `columns` values each), as many rows per statement as the bind
    /// limit allows. Lazy: a bulk insert holds one statement's text at a time.
    pub(super) fn inserts<'a>(
        anonymous: bool,
        head: &'a str,
        tail: &'a str,
        columns: usize,
        values: Vec<Val>,
    ) -> impl Iterator<Item = Statement> + 'a {
        debug_assert!(columns > 0 && values.len().is_multiple_of(columns));
        let rows_per_statement = (MAX_BINDS / columns).clamp(1, MAX_ROWS_PER_STATEMENT);
        let mut values = values.into_iter();
        std::iter::from_fn(move || {
            let chunk: Vec<Val> = values.by_ref().take(rows_per_statement * columns).collect();
            if chunk.is_empty() {
                return None;
            }
            let rows = chunk.len() / columns;
            Some(Statement {
                sql: insert_sql(anonymous, head, tail, columns, rows),
                values: chunk,
            })
        })
    }

    /// `<head> WHERE [<leading><param> AND ...] <key_column> IN (...)` over `keys` (one
    /// chunk). Each leading condition ends in an operator, such as `("connector = ", id)`,
    /// and is bound before the keys.
    pub(super) fn where_in(
        conn: &AnyConnection,
        head: &str,
        leading: &[(&str, &str)],
        key_column: &str,
        keys: &[String],
    ) -> Statement {
        let mut sql = format!("{head} WHERE ");
        let mut values = Vec::with_capacity(keys.len() + leading.len());
        for (condition, value) in leading {
            values.push(Val::Text(value.to_string()));
            sql.push_str(&format!("{condition}{} AND ", param(conn, values.len())));
        }
        sql.push_str(&format!(
            "{key_column} IN ({})",
            placeholders(conn, values.len() + 1, keys.len())
        ));
        values.extend(keys.iter().map(|k| Val::Text(k.clone())));
        Statement { sql, values }
    }

    /// `DELETE FROM <table> WHERE [<column> = <value> AND ...] <key_column> IN (...)` over
    /// `keys` (one chunk).
    pub(super) fn delete_in(
        conn: &AnyConnection,
        table: &str,
        filter: &[(&str, &str)],
        key_column: &str,
        keys: &[String],
    ) -> Statement {
        let conditions: Vec<String> = filter
            .iter()
            .map(|(column, _)| format!("{column} = "))
            .collect();
        let leading: Vec<(&str, &str)> = conditions
            .iter()
            .zip(filter)
            .map(|(condition, (_, value))| (condition.as_str(), *value))
            .collect();
        Statement::where_in(
            conn,
            &format!("DELETE FROM {table}"),
            &leading,
            key_column,
            keys,
        )
    }

    /// The query with every value bound.
    pub(super) fn query(self) -> Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for value in self.values {
            query = bind_val(query, value);
        }
        query
    }

    /// Runs the statement on its own; how many rows it changed.
    pub(super) async fn run(
        self,
        conn: &mut AnyConnection,
        context: &'static str,
    ) -> Result<u64, DbError> {
        let done = self.query().execute(conn).await.context(context)?;
        Ok(done.rows_affected())
    }
}
