//! The write path every changing request shares: one transaction that takes the tenant's
//! lock, lets the handler change the mirror, then projects the change into the target
//! (only the users it touched when nothing else is pending), or holds the tenant when the
//! change would remove more than its burst window allows. A failure anywhere rolls it all
//! back: the IdP sees an error and nothing is stored.
//!
//! The transaction is not committed by the handler: `finish` leaves it pending on the call,
//! and the request's end (`commit`) adds the request's event to it and commits, before the
//! answer goes out. A write acknowledged with 2xx therefore has its event stored with it,
//! and a crash after the answer loses neither.

use std::sync::atomic::Ordering;

use tracing::warn;

use super::{Call, ScimServer};
use crate::db::{Batch, WriteTx};
use crate::model::SourceUser;
use crate::scim::error::ScimError;
use crate::store::events::{self, Event};
use crate::store::holds;
use crate::store::pushed as store;
use crate::store::runs::{self, Outcome, RunEnd};
use crate::sync::{self, PushedChange};

/// Removal records are pruned on one write in this many.
const PRUNE_EVERY: u64 = 64;

/// What a request changed in the mirror.
#[derive(Debug, Default)]
pub(crate) struct Change {
    /// Users whose record changed, or who joined or left a group.
    pub user_ids: Vec<String>,
    /// The records of `user_ids` as the handler just wrote them (a deleted user absent),
    /// when it has them: the projection then does not read them back.
    pub users: Option<Vec<SourceUser>>,
    /// Groups whose record the request wrote or deleted.
    pub group_ids: Vec<String>,
    /// Groups themselves changed in a way that needs the whole tenant re-projected
    /// (nesting changed).
    pub groups_changed: bool,
    /// `user_ids` were created by this request: nothing refers to them yet.
    pub new_users: bool,
}

/// How the target took the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    Applied,
    /// The tenant is held; the change waits in the mirror.
    Held(String),
}

impl Applied {
    /// Words for the event log.
    pub fn note(&self) -> &'static str {
        match self {
            Applied::Applied => "",
            Applied::Held(_) => " (tenant held: target not changed)",
        }
    }
}

/// Starts the request's transaction, holding the tenant's lock.
pub(crate) async fn begin(call: &Call<'_>) -> Result<WriteTx, ScimError> {
    let mut tx = call.db().begin_write().await?;
    sync::lock_connector(&mut tx, &call.tenant.id).await?;
    Ok(tx)
}

/// A write's transaction, done but not yet committed: it waits for the request's event.
pub(crate) struct Pending {
    tx: WriteTx,
    /// Statements still to run before the commit (the mirror state, the plan's writes
    /// that nothing read back, removal counts), sent with the event: on SQLite in one
    /// round trip.
    last: Batch,
    /// A hold this write started, reported as a run once committed.
    held_run: Option<(String, sync::RunReport)>,
}

impl Call<'_> {
    /// Leaves `tx` for the request's end to commit with its event.
    fn defer_commit(&self, tx: WriteTx, last: Batch, held_run: Option<(String, sync::RunReport)>) {
        let pending = Pending { tx, last, held_run };
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(pending);
    }

    /// The write transaction a handler finished, if any.
    pub(crate) fn take_pending(&self) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Adds the request's event to the finished write's transaction and commits both (the
/// event goes with the write's last statements); then reports a hold the write started.
pub(crate) async fn commit(
    server: &ScimServer,
    tenant: &str,
    pending: Pending,
    event: &Event,
) -> Result<(), ScimError> {
    let Pending {
        mut tx,
        mut last,
        held_run,
    } = pending;
    events::insert(&mut last, tx.conn(), event).await?;
    last.execute(tx.conn()).await?;
    tx.commit().await?;
    if let Some((reason, report)) = held_run {
        record_held_run(server, tenant, &reason, &report).await;
    }
    Ok(())
}

/// Projects the change; the transaction is committed with the request's event ([`commit`]).
pub(crate) async fn finish(
    call: &Call<'_>,
    mut tx: WriteTx,
    change: Change,
) -> Result<Applied, ScimError> {
    let tenant = call.tenant;
    let window = tenant.settings.removal_window_minutes;
    let (before, held, recent) = store::write_state(tx.conn(), &tenant.id, window).await?;
    // The mirror changed: its generation moves on. The projection stores it together with
    // the applied generation (one statement); a held write stores it alone.
    let bumped = crate::store::mirror::MirrorState {
        generation: before.generation + 1,
        ..before.clone()
    };
    if let Some(reason) = held {
        save_state(&mut tx, &tenant.id, &bumped).await?;
        call.defer_commit(tx, Batch::new(sync::REQUEST_WRITES), None);
        return Ok(Applied::Held(reason));
    }
    let mut report = sync::apply_pushed_deferred(
        &mut tx,
        &*tenant.target.directory(),
        &tenant.id,
        &tenant.mapping,
        PushedChange {
            before,
            user_ids: change.user_ids,
            users: change.users,
            group_ids: change.group_ids,
            groups_changed: change.groups_changed,
            removal_allowance: tenant.max_removals.saturating_sub(recent),
            new_users: change.new_users,
        },
    )
    .await?;
    if report.outcome == Outcome::Held {
        let reason = format!(
            "{}; {recent} removals were applied in the last {window} minutes (limit {}). \
             Pushes keep landing in the mirror; `idsync reconcile {}` applies them \
             (with --allow-mass-delete if the removals are intended)",
            report.message.as_deref().unwrap_or("too many removals"),
            tenant.max_removals,
            tenant.id
        );
        save_state(&mut tx, &tenant.id, &bumped).await?;
        holds::hold(tx.conn(), &tenant.id, &reason).await?;
        warn!(tenant = %tenant.id, %reason, "SCIM tenant held by its removal limit");
        call.defer_commit(
            tx,
            Batch::new(sync::REQUEST_WRITES),
            Some((reason.clone(), report)),
        );
        return Ok(Applied::Held(reason));
    }
    let mut last = report
        .deferred_writes
        .take()
        .unwrap_or_else(|| Batch::new(sync::REQUEST_WRITES));
    if report.removals > 0 {
        // Old rows only cost space (the count looks at the window alone): forget them now
        // and then rather than on every removal.
        let prune = tenant
            .removal_writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY);
        holds::record_removals(
            &mut last,
            tx.conn(),
            &tenant.id,
            report.removals,
            window,
            prune,
        );
    }
    call.defer_commit(tx, last, None);
    Ok(Applied::Applied)
}

async fn save_state(
    tx: &mut WriteTx,
    tenant: &str,
    state: &crate::store::mirror::MirrorState,
) -> Result<(), ScimError> {
    Ok(crate::store::mirror::save_state(tx.conn(), tenant, state).await?)
}

/// Reports the hold as a run, so that `idsync runs` and the metrics show it.
async fn record_held_run(
    server: &ScimServer,
    tenant: &str,
    reason: &str,
    report: &sync::RunReport,
) {
    let db = &server.db;
    let result = async {
        let id = runs::start_run(db, tenant, "scim").await?;
        let end = RunEnd {
            read_mode: None,
            records_read: report.records_read,
            counts: report.counts,
            message: Some(reason.to_string()),
            details: None,
        };
        runs::finish_run(db, id, Outcome::Held, &end).await?;
        holds::set_run(db, tenant, id).await
    }
    .await;
    if let Err(error) = result {
        warn!(%error, "could not record the held run");
    }
}
