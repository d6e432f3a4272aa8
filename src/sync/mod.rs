//! One connector run, end to end, as named phases: **read** the source into a buffer (no
//! transaction is open while the network or disk is read), then in ONE transaction
//! **merge** the buffer into the mirror, decide the **scope** (the whole mirror, or only
//! the users that changed), **project** the mirror through the mapping, **plan** the
//! diff against the target directory, **hold** a plan beyond the safety limits, and
//! **apply** it. **Push** is the same from `project` on for what one SCIM request wrote
//! ([`apply_pushed`]). A failure anywhere, a held run or a dry run rolls the whole
//! transaction back, so the target is always as before the run or fully after it.
//!
//! `reconcile` is the same without the read: it re-projects the stored mirror.
//!
//! Each phase is a file beside this one; `context::RunContext` carries what every phase
//! shares (the mapping and its fingerprint, computed once; the target directory) and
//! `context::Staged` what the phases before the projection hand on (the mirror state,
//! loaded once per transaction).

mod apply;
mod context;
mod hold;
mod merge;
mod plan;
mod project;
mod push;
mod read;
pub mod sample;
mod scope;

pub(crate) use apply::REQUEST_WRITES;
pub(crate) use push::apply_pushed_deferred;
pub use push::{PushedChange, apply_pushed};

use serde::Serialize;
use tracing::{Instrument, info, info_span, warn};

use crate::config::MappingConfig;
use crate::connectors::{ConnectorError, PullConnector};
use crate::db::{Db, DbError, WriteTx};
use crate::pipeline::plan::{Conflict, PlanCounts};
use crate::store::runs::{self, Outcome, RunEnd};
use crate::target::{Directory, DirectoryError, SqlDirectory};
use context::{RunContext, Staged};

/// The target of every log line of a run, whichever phase writes it: log filters and the
/// daemon's tests name `idsync::sync`.
const LOG: &str = "idsync::sync";

/// The target of the "run failed" line: `idsync sync` on a terminal prints the error as
/// its result and filters this line out, so the error is said once.
pub const FAILED_LOG: &str = "idsync::sync::failed";

/// How a run is to behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Compute and report the plan, write nothing.
    pub dry_run: bool,
    /// Apply even when the plan exceeds the mapping's deletion limits.
    pub allow_mass_delete: bool,
    /// Treat users marked inactive in the source as removed (the mapping's `on_remove`
    /// applies): how SCIM tenants see `active: false`.
    pub inactive_is_removal: bool,
}

/// Receives progress of a run (the CLI draws a progress bar from it).
pub trait Progress: Send + Sync {
    fn records_read(&self, _count: u64) {}
    fn phase(&self, _name: &str) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Conflicts and warnings kept in a run record.
const DETAILS_CAP: usize = 100;

/// What a run did (or, for a dry run or held run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub connector: String,
    pub outcome: Outcome,
    pub dry_run: bool,
    pub read_mode: Option<&'static str>,
    pub records_read: u64,
    pub counts: PlanCounts,
    /// The first entries of each kind of change, in words.
    pub preview: Vec<String>,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<String>,
    /// `full` (the whole mirror re-projected) or `changed users` (only they were planned).
    pub projection: Option<&'static str>,
    /// Users and groups the mapping's filters kept out of the target.
    pub excluded_users: u64,
    pub excluded_groups: u64,
    /// Live users disabled or deleted plus groups deleted: what deletion limits count.
    pub removals: u64,
    pub message: Option<String>,
    /// For a pushed change: writes the caller sends in its transaction with the request's
    /// event (one or two round trips fewer): the mirror state, and the plan's writes when
    /// nothing in the run read them back.
    #[serde(skip)]
    pub(crate) deferred_writes: Option<crate::db::Batch>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the source of connector `{connector}` failed: {source}")]
    Read {
        connector: String,
        /// Records the connector had handed over before it failed (the run records them).
        records_read: u64,
        #[source]
        source: ConnectorError,
    },
    #[error(
        "connector `{0}` reported an incomplete read; nothing was changed (removals need a complete read)"
    )]
    Incomplete(String),
    /// The cursor contract: a read continues from the checkpoint the mirror stored, and
    /// another run stored a newer one while this read was under way. Merging would apply
    /// changes older than the mirror's; nothing was changed, and the next run reads on.
    #[error(
        "connector `{0}`: another run moved the checkpoint on while this one was reading; \
         nothing was changed (the next run reads from the new checkpoint)"
    )]
    StaleCheckpoint(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Directory(DirectoryError),
}

impl From<DirectoryError> for SyncError {
    /// The SQL directory's failures stay database errors, as before the seam.
    fn from(error: DirectoryError) -> SyncError {
        match error {
            DirectoryError::Db(error) => SyncError::Db(error),
            other => SyncError::Directory(other),
        }
    }
}

/// Reads `connector` and applies what changed, into the SQL target (what the tests and
/// benches run; `idsync` itself runs [`sync_to`] with the configured target).
pub async fn sync(
    db: &Db,
    connector_id: &str,
    mapping: &MappingConfig,
    connector: &dyn PullConnector,
    options: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, SyncError> {
    sync_to(
        db,
        &SqlDirectory,
        connector_id,
        mapping,
        connector,
        options,
        progress,
    )
    .await
}

/// Reads `connector` and applies what changed to `directory`.
pub async fn sync_to(
    db: &Db,
    directory: &dyn Directory,
    connector_id: &str,
    mapping: &MappingConfig,
    connector: &dyn PullConnector,
    options: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, SyncError> {
    let span = info_span!(
        "sync_run",
        connector = connector_id,
        kind = connector.kind(),
        dry_run = options.dry_run
    );
    async move {
        let run_id = start(db, connector_id, "sync", options).await?;
        let ctx = RunContext::new(connector_id, mapping, options, directory);
        let result = read_and_apply(db, &ctx, connector, progress, run_id).await;
        finish(db, run_id, connector_id, options, result).await
    }
    .instrument(span)
    .await
}

/// Re-projects the stored mirror of `connector_id` through its mapping, fetching nothing,
/// into the SQL target (see [`sync`]).
pub async fn reconcile(
    db: &Db,
    connector_id: &str,
    mapping: &MappingConfig,
    options: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, SyncError> {
    reconcile_to(db, &SqlDirectory, connector_id, mapping, options, progress).await
}

/// Re-projects the stored mirror of `connector_id` into `directory`, fetching nothing.
pub async fn reconcile_to(
    db: &Db,
    directory: &dyn Directory,
    connector_id: &str,
    mapping: &MappingConfig,
    options: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, SyncError> {
    let span = info_span!(
        "reconcile_run",
        connector = connector_id,
        dry_run = options.dry_run
    );
    async move {
        let run_id = start(db, connector_id, "reconcile", options).await?;
        let ctx = RunContext::new(connector_id, mapping, options, directory);
        let result = async {
            let mut tx = db.begin_write().await?;
            lock_connector(&mut tx, connector_id).await?;
            let state = crate::store::mirror::load_state(tx.conn(), connector_id).await?;
            let report =
                project_and_apply(&mut tx, &ctx, progress, Staged::reconcile(run_id, state))
                    .await?;
            if !report.dry_run && report.outcome != Outcome::Held {
                // A SCIM tenant held by a burst of removals is released once its mirror
                // has been applied.
                crate::store::holds::release(tx.conn(), connector_id).await?;
            }
            close_tx(tx, &report).await?;
            Ok(report)
        }
        .await;
        finish(db, run_id, connector_id, options, result).await
    }
    .instrument(span)
    .await
}

/// The read phase, then merge and the rest in one transaction.
async fn read_and_apply(
    db: &Db,
    ctx: &RunContext<'_>,
    connector: &dyn PullConnector,
    progress: &dyn Progress,
    run_id: Option<i64>,
) -> Result<RunReport, SyncError> {
    let checkpoint = read::stored_checkpoint(db, ctx.connector_id).await?;
    progress.phase("reading");
    let read = read::read(ctx.connector_id, connector, checkpoint, progress).await?;

    progress.phase("merging");
    let mut tx = db.begin_write().await?;
    lock_connector(&mut tx, ctx.connector_id).await?;
    let staged = merge::merge(tx.conn(), ctx, read, run_id).await?;
    let report = project_and_apply(&mut tx, ctx, progress, staged).await?;
    progress.phase("committing");
    close_tx(tx, &report).await?;
    Ok(report)
}

/// The phases every run shares once the mirror is as it will be: project, plan, hold,
/// apply.
async fn project_and_apply(
    tx: &mut WriteTx,
    ctx: &RunContext<'_>,
    progress: &dyn Progress,
    mut staged: Staged,
) -> Result<RunReport, SyncError> {
    let conn = tx.conn();
    ctx.directory.lock_writes(conn).await?;
    let mut report = staged.report(ctx);
    if staged.up_to_date(ctx) {
        report.counts.warnings = report.warnings.len() as u64;
        report.message = Some("the target already matches the source".into());
        return Ok(report);
    }

    progress.phase("projecting");
    report.projection = Some(match &staged.scope {
        Some(scope) if scope.groups.is_empty() => "changed users",
        Some(_) => "changed users and groups",
        None => "full",
    });
    let projected = project::project(conn, ctx, &mut staged).await?;
    report.excluded_users = projected.desired.excluded_users;
    report.excluded_groups = projected.desired.excluded_groups;

    progress.phase("planning");
    let mut planned = plan::plan(conn, ctx, &staged, projected).await?;
    report.counts = planned.plan.counts();
    report.preview = std::mem::take(&mut planned.preview);
    report.conflicts = planned.plan.conflicts.clone();
    report
        .warnings
        .extend(planned.plan.warnings.iter().cloned());
    report.counts.warnings = report.warnings.len() as u64;
    for conflict in &planned.plan.conflicts {
        warn!(target: LOG, kind = conflict.kind, name = %conflict.name, held_by = %conflict.held_by, "name conflict");
    }

    report.removals = hold::removals(&planned.plan);
    if let Some(reason) = hold::reason(ctx, &staged, &planned.plan, report.removals) {
        warn!(target: LOG, %reason, "run held by a safety limit");
        report.outcome = Outcome::Held;
        report.message = Some(format!(
            "{reason}; nothing was changed. If this is expected, run again with --allow-mass-delete"
        ));
        return Ok(report);
    }

    progress.phase("applying");
    let (outcome, deferred_writes) = apply::apply(conn, ctx, staged, planned, progress).await?;
    report.outcome = outcome;
    report.deferred_writes = deferred_writes;
    Ok(report)
}

/// On PostgreSQL, runs of one connector on several nodes take turns from the mirror merge
/// on (a transaction-scoped advisory lock keyed by the connector), so their generation
/// counters and checkpoints never interleave. SQLite writers already queue in-process.
pub async fn lock_connector(tx: &mut WriteTx, connector_id: &str) -> Result<(), DbError> {
    use crate::store::locks::{LockSpace, lock_for_transaction};
    lock_for_transaction(tx.conn(), LockSpace::ConnectorMerge, Some(connector_id)).await
}

/// Commits, unless the run was a dry run or was held.
async fn close_tx(tx: WriteTx, report: &RunReport) -> Result<(), DbError> {
    if report.dry_run || report.outcome == Outcome::Held {
        tx.rollback().await
    } else {
        tx.commit().await
    }
}

/// Records the start of a run; a dry run is not recorded.
async fn start(
    db: &Db,
    connector_id: &str,
    operation: &str,
    options: RunOptions,
) -> Result<Option<i64>, DbError> {
    Ok(match options.dry_run {
        true => None,
        false => Some(runs::start_run(db, connector_id, operation).await?),
    })
}

/// Records how the run ended and turns failures into the error the caller sees.
async fn finish(
    db: &Db,
    run_id: Option<i64>,
    connector_id: &str,
    options: RunOptions,
    result: Result<RunReport, SyncError>,
) -> Result<RunReport, SyncError> {
    let Some(run_id) = run_id else {
        return result;
    };
    match &result {
        Ok(report) => {
            let end = RunEnd {
                read_mode: report.read_mode,
                records_read: report.records_read,
                counts: report.counts,
                message: report.message.clone(),
                details: run_details(report),
            };
            runs::finish_run(db, run_id, report.outcome, &end).await?;
            info!(run_id, outcome = report.outcome.as_str(), counts = %report.counts, "run finished");
        }
        Err(error) => {
            // Its own target, so that the command line (which prints the error itself) can
            // leave it out while a node's log keeps it.
            warn!(target: FAILED_LOG, run_id, %error, connector = connector_id, dry_run = options.dry_run, "run failed");
            let records_read = match error {
                SyncError::Read { records_read, .. } => *records_read,
                _ => 0,
            };
            let end = RunEnd {
                records_read,
                message: Some(error.to_string()),
                ..RunEnd::default()
            };
            runs::finish_run(db, run_id, Outcome::Failed, &end).await?;
        }
    }
    result
}

/// The changes (the first of each kind, in words), conflicts and warnings a run record
/// keeps, capped: what the admin pages show of a run and of a held run.
fn run_details(report: &RunReport) -> Option<serde_json::Value> {
    let mut details = serde_json::Map::new();
    if !report.preview.is_empty() {
        details.insert("changes".into(), serde_json::json!(report.preview));
    }
    if !report.conflicts.is_empty() {
        let capped: Vec<_> = report.conflicts.iter().take(DETAILS_CAP).collect();
        details.insert("conflicts".into(), serde_json::json!(capped));
    }
    if !report.warnings.is_empty() {
        let capped: Vec<_> = report.warnings.iter().take(DETAILS_CAP).collect();
        details.insert("warnings".into(), serde_json::json!(capped));
    }
    (!details.is_empty()).then_some(serde_json::Value::Object(details))
}
