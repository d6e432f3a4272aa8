//! What an admin can do on the admin listener (start a run, confirm or discard what is
//! held), done once for both ways of asking: the JSON API (`admin`) and the pages
//! (`pages`). Each action checks, acts and records the admin in the audit trail.

use axum::http::StatusCode;

use super::admin::{Actor, AdminState};
use crate::config::ConnectorSettings;
use crate::scheduler::{RunResult, TriggerError};
use crate::store::audit::{self, Action};
use crate::store::runs::{self, RunRecord};
use crate::sync::{self, NoProgress, RunOptions, RunReport};

/// Why an action was not done, with the HTTP status it answers.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    /// The run itself failed (the identity provider, the target).
    #[error("{0}")]
    RunFailed(String),
    #[error("{0}")]
    Internal(String),
}

impl ActionError {
    pub fn status(&self) -> StatusCode {
        match self {
            ActionError::NotFound(_) => StatusCode::NOT_FOUND,
            ActionError::Conflict(_) => StatusCode::CONFLICT,
            ActionError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ActionError::RunFailed(_) => StatusCode::BAD_GATEWAY,
            ActionError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn internal(error: impl std::fmt::Display) -> ActionError {
    tracing::warn!(%error, "admin action failed");
    ActionError::Internal(error.to_string())
}

/// Audits an admin action; a failure to record it is logged, the action stands.
pub async fn audit(state: &AdminState, actor: &Actor, action: Action, target: &str, detail: &str) {
    if let Err(error) = audit::record(&state.db, &actor.0, action, target, Some(detail)).await {
        tracing::error!(%error, action = action.as_str(), target, "could not record an audit entry");
    }
}

/// Whether connector `id` is a SCIM tenant (pushed to, never run).
pub fn is_tenant(state: &AdminState, id: &str) -> bool {
    state
        .config
        .current()
        .connector(id)
        .is_some_and(|c| matches!(c.settings, ConnectorSettings::Scim(_)))
}

/// Starts a run of connector `id` now, in the background.
pub async fn run_now(state: &AdminState, actor: &Actor, id: &str) -> Result<(), ActionError> {
    let here = state
        .scheduler
        .status()
        .into_iter()
        .any(|job| job.connector == id && job.running);
    if here {
        return Err(ActionError::Conflict(format!(
            "connector `{id}` is already running"
        )));
    }
    // Another node holding the run lock would skip the run: say so now instead of 202.
    if state
        .launcher
        .running_elsewhere(id)
        .await
        .map_err(internal)?
    {
        return Err(ActionError::Conflict(format!(
            "connector `{id}` is already running on another node"
        )));
    }
    match state.scheduler.run_now(id) {
        Ok(()) => {
            audit(state, actor, Action::RunNow, id, "started on request").await;
            Ok(())
        }
        Err(TriggerError::UnknownConnector(_)) => Err(ActionError::NotFound(format!(
            "no enabled pull connector `{id}` (SCIM tenants are pushed to, not run)"
        ))),
        Err(TriggerError::AlreadyRunning(_)) => Err(ActionError::Conflict(format!(
            "connector `{id}` is already running"
        ))),
        Err(TriggerError::Stopped) => Err(ActionError::Unavailable(
            "the scheduler is shutting down".to_string(),
        )),
    }
}

/// What confirming a hold did.
pub enum Confirmed {
    /// A SCIM tenant's hold applied: the reconcile's report.
    Tenant(Box<RunReport>),
    /// A pull connector run again with the deletion limits lifted: its run record.
    Run(Option<Box<RunRecord>>),
}

/// Applies what is held for connector `id` (deletion limits lifted).
pub async fn confirm(
    state: &AdminState,
    actor: &Actor,
    id: &str,
) -> Result<Confirmed, ActionError> {
    let config = state.config.current();
    let Some(connector) = config.connector(id) else {
        return Err(ActionError::NotFound(format!("no connector `{id}`")));
    };
    let tenant = is_tenant(state, id);
    let options = RunOptions {
        allow_mass_delete: true,
        inactive_is_removal: tenant,
        ..RunOptions::default()
    };
    if tenant {
        let mapping = config.mapping_for(connector);
        // Recorded before the reconcile: a failure or a crash must not lose who confirmed.
        audit(
            state,
            actor,
            Action::ConfirmHeld,
            id,
            "applying the SCIM tenant's hold",
        )
        .await;
        let directory = config.engine.target.directory();
        let report = sync::reconcile_to(&state.db, &*directory, id, mapping, options, &NoProgress)
            .await
            .map_err(internal)?;
        super::run_metrics::record_run(id, &report);
        return Ok(Confirmed::Tenant(Box::new(report)));
    }
    let held = runs::held_runs(state.db.pool()).await.map_err(internal)?;
    if !held.iter().any(|r| r.connector == id) {
        return Err(ActionError::Conflict(format!(
            "connector `{id}` has no held run"
        )));
    }
    audit(
        state,
        actor,
        Action::ConfirmHeld,
        id,
        "running the connector with the deletion limits lifted",
    )
    .await;
    match state.launcher.run_with(id, options).await {
        RunResult::Finished => {
            let last = runs::recent_runs(state.db.pool(), Some(id), 1)
                .await
                .ok()
                .and_then(|mut r| r.pop());
            Ok(Confirmed::Run(last.map(Box::new)))
        }
        RunResult::Skipped(why) => Err(ActionError::Conflict(why)),
        RunResult::Failed(why) => Err(ActionError::RunFailed(why)),
    }
}

/// Drops the held run of pull connector `id`; returns the run's id.
pub async fn discard(state: &AdminState, actor: &Actor, id: &str) -> Result<i64, ActionError> {
    if is_tenant(state, id) {
        return Err(ActionError::Conflict(format!(
            "tenant `{id}`'s mirror already holds what its identity provider pushed; a hold \
             cannot be discarded. Fix the assignments in the identity provider (it pushes \
             the users again), then confirm"
        )));
    }
    let held = runs::held_runs(state.db.pool()).await.map_err(internal)?;
    let Some(run) = held.into_iter().find(|r| r.connector == id) else {
        return Err(ActionError::Conflict(format!(
            "connector `{id}` has no held run"
        )));
    };
    runs::discard(&state.db, run.id).await.map_err(internal)?;
    let detail = format!("discarded held run {}", run.id);
    audit(state, actor, Action::DiscardHeld, id, &detail).await;
    crate::metrics::HELD.with_label_values(&[id]).set(0);
    Ok(run.id)
}
