//! Sync run records: one row per run with what it read, what it changed and how it ended.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::db::{Context, Db, DbError, get_bool, now_text};
use crate::pipeline::plan::PlanCounts;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Succeeded,
    /// Nothing to do: the target already matched.
    Unchanged,
    Failed,
    /// Stopped before applying by a safety limit.
    Held,
    /// The process died while the run was in progress (found by the next run).
    Interrupted,
    /// A held run an admin chose not to apply.
    Discarded,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Held => "held",
            Outcome::Interrupted => "interrupted",
            Outcome::Discarded => "discarded",
        }
    }

    fn parse(text: &str) -> Outcome {
        match text {
            "running" => Outcome::Running,
            "succeeded" => Outcome::Succeeded,
            "unchanged" => Outcome::Unchanged,
            "held" => Outcome::Held,
            "interrupted" => Outcome::Interrupted,
            "discarded" => Outcome::Discarded,
            _ => Outcome::Failed,
        }
    }
}

/// A run as stored (the JSON shape of `idsync runs --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub connector: String,
    pub operation: String,
    pub dry_run: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Outcome,
    pub read_mode: Option<String>,
    pub records_read: i64,
    pub counts: PlanCounts,
    pub message: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// What a finished run records.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    pub read_mode: Option<&'static str>,
    pub records_read: u64,
    pub counts: PlanCounts,
    pub message: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// Records the start of a run; earlier runs of the connector still marked running were
/// cut off by a crash and are marked interrupted.
pub async fn start_run(db: &Db, connector: &str, operation: &str) -> Result<i64, DbError> {
    let mut tx = db.begin_write().await?;
    let now = now_text();
    sqlx::query(
        "UPDATE sync_runs SET outcome = 'interrupted', finished_at = $1 \
         WHERE connector = $2 AND outcome = 'running'",
    )
    .bind(now.clone())
    .bind(connector.to_string())
    .execute(tx.conn())
    .await
    .context("recording a run")?;
    let row = sqlx::query(
        "INSERT INTO sync_runs (connector, operation, dry_run, started_at, outcome) \
         VALUES ($1, $2, $3, $4, 'running') RETURNING id",
    )
    .bind(connector.to_string())
    .bind(operation.to_string())
    .bind(false)
    .bind(now)
    .fetch_one(tx.conn())
    .await
    .context("recording a run")?;
    let id: i64 = row.try_get(0).context("recording a run")?;
    tx.commit().await?;
    Ok(id)
}

pub async fn finish_run(db: &Db, id: i64, outcome: Outcome, end: &RunEnd) -> Result<(), DbError> {
    // The counts are parameters $5 onwards, in the order of PlanCounts::NAMES.
    let counts: Vec<String> = PlanCounts::NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} = ${}", i + 5))
        .collect();
    let after = PlanCounts::NAMES.len() + 5;
    let sql = format!(
        "UPDATE sync_runs SET finished_at = $1, outcome = $2, read_mode = $3, records_read = $4, \
         {}, message = ${after}, details = ${} WHERE id = ${}",
        counts.join(", "),
        after + 1,
        after + 2
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(now_text())
        .bind(outcome.as_str())
        .bind(end.read_mode)
        .bind(end.records_read as i64);
    for count in end.counts.values() {
        query = query.bind(count as i64);
    }
    let mut tx = db.begin_write().await?;
    query
        .bind(end.message.clone())
        .bind(end.details.as_ref().map(|d| d.to_string()))
        .bind(id)
        .execute(tx.conn())
        .await
        .context("recording the end of a run")?;
    tx.commit().await
}

/// The columns of a [`RunRecord`], in [`decode`]'s order.
fn run_columns() -> String {
    format!(
        "id, connector, operation, dry_run, started_at, finished_at, outcome, read_mode, \
         records_read, {}, message, details",
        PlanCounts::NAMES.join(", ")
    )
}

fn decode(row: &AnyRow, context: &'static str) -> Result<RunRecord, DbError> {
    let mut counts = PlanCounts::default();
    for (count, name) in counts.fields_mut().into_iter().zip(PlanCounts::NAMES) {
        *count = row.try_get::<i64, _>(name).context(context)? as u64;
    }
    let details: Option<String> = row.try_get("details").context(context)?;
    Ok(RunRecord {
        id: row.try_get("id").context(context)?,
        connector: row.try_get("connector").context(context)?,
        operation: row.try_get("operation").context(context)?,
        dry_run: get_bool(row, "dry_run").context(context)?,
        started_at: row.try_get("started_at").context(context)?,
        finished_at: row.try_get("finished_at").context(context)?,
        outcome: Outcome::parse(&row.try_get::<String, _>("outcome").context(context)?),
        read_mode: row.try_get("read_mode").context(context)?,
        records_read: row.try_get("records_read").context(context)?,
        counts,
        message: row.try_get("message").context(context)?,
        details: details.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// The most recent runs, newest first.
pub async fn recent_runs(
    pool: &AnyPool,
    connector: Option<&str>,
    limit: i64,
) -> Result<Vec<RunRecord>, DbError> {
    const CTX: &str = "reading sync runs";
    let sql = format!(
        "SELECT {} FROM sync_runs WHERE ($1 IS NULL OR connector = $1) ORDER BY id DESC LIMIT $2",
        run_columns()
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(connector.map(str::to_string))
        .bind(limit)
        .fetch_all(pool)
        .await
        .context(CTX)?;
    rows.iter().map(|row| decode(row, CTX)).collect()
}

/// The run with id `id`, if there is one.
pub async fn find(pool: &AnyPool, id: i64) -> Result<Option<RunRecord>, DbError> {
    const CTX: &str = "reading a sync run";
    let sql = format!("SELECT {} FROM sync_runs WHERE id = $1", run_columns());
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await
        .context(CTX)?;
    row.map(|row| decode(&row, CTX)).transpose()
}

/// The latest run of each connector that is held (not followed by any other run).
pub async fn held_runs(pool: &AnyPool) -> Result<Vec<RunRecord>, DbError> {
    const CTX: &str = "reading held runs";
    let sql = format!(
        "SELECT {} FROM sync_runs r \
         WHERE r.outcome = 'held' AND r.dry_run = $1 AND r.id = \
           (SELECT MAX(l.id) FROM sync_runs l WHERE l.connector = r.connector AND l.dry_run = $1) \
         ORDER BY r.connector",
        run_columns()
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(false)
        .fetch_all(pool)
        .await
        .context(CTX)?;
    rows.iter().map(|row| decode(row, CTX)).collect()
}

/// Marks a held run as discarded: it is no longer reported as waiting.
pub async fn discard(db: &Db, run_id: i64) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE sync_runs SET outcome = 'discarded', message = COALESCE(message, '') || \
         ' (discarded by an admin)' WHERE id = $1 AND outcome = 'held'",
    )
    .bind(run_id)
    .execute(tx.conn())
    .await
    .context("discarding a held run")?
    .rows_affected();
    tx.commit().await?;
    Ok(done == 1)
}

/// When each connector's latest successful run (succeeded or unchanged, not a dry run)
/// finished, as stored (RFC 3339): the daemon's `idsync_last_success_timestamp_seconds`
/// starts from these, so a restart does not make every connector look fresh or stale.
pub async fn last_successes(pool: &AnyPool) -> Result<Vec<(String, String)>, DbError> {
    const CTX: &str = "reading the last successful runs";
    // finished_at is always written by now_text (UTC, fixed width), so MAX is the latest.
    let rows = sqlx::query(
        "SELECT connector, MAX(finished_at) FROM sync_runs \
         WHERE outcome IN ('succeeded', 'unchanged') AND dry_run = $1 \
           AND finished_at IS NOT NULL \
         GROUP BY connector ORDER BY connector",
    )
    .bind(false)
    .fetch_all(pool)
    .await
    .context(CTX)?;
    rows.iter()
        .map(|row| Ok((row.try_get(0).context(CTX)?, row.try_get(1).context(CTX)?)))
        .collect()
}
