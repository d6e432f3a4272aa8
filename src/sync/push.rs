//! The push phase: what one SCIM request wrote to a tenant's mirror goes on through the
//! same scope, project, plan, hold and apply phases as a pull run, inside the request's
//! transaction.

use crate::config::MappingConfig;
use crate::db::WriteTx;
use crate::model::SourceUser;
use crate::store::mirror::MirrorState;
use crate::target::SqlDirectory;

use super::context::{RunContext, Scope, Staged};
use super::scope::{self, Change};
use super::{NoProgress, RunOptions, RunReport, SyncError, project_and_apply};

/// What one SCIM request changed in a tenant's mirror, for [`apply_pushed`].
#[derive(Debug, Clone)]
pub struct PushedChange {
    /// The tenant's mirror state before the request wrote to it.
    pub before: MirrorState,
    /// Users whose record changed, or who joined or left a group.
    pub user_ids: Vec<String>,
    /// The records of `user_ids` as now stored (a deleted user absent), when the caller
    /// has them; else they are read.
    pub users: Option<Vec<SourceUser>>,
    /// Groups whose record the request wrote or deleted: a plan over changed users covers
    /// them too.
    pub group_ids: Vec<String>,
    /// A group was created, renamed, deleted or had groups join or leave it: the tenant is
    /// re-projected whole.
    pub groups_changed: bool,
    /// How many more removals the tenant's burst window allows.
    pub removal_allowance: u64,
    /// `user_ids` were created by this request (ids it minted): nothing refers to them yet.
    pub new_users: bool,
}

/// Projects what one SCIM request wrote to a tenant's mirror into the target, inside the
/// request's transaction (which already holds the tenant's lock). Only the changed users
/// are planned when nothing else is pending; otherwise the whole tenant. The mirror's
/// generation is stored bumped past `before` with the applied generation (the caller
/// stores the bump itself when the report says `Held`). A plan removing
/// more than the allowance is not applied: the report says `Held` and the caller commits
/// the mirror write alone, leaving the target behind until an admin reconciles.
pub async fn apply_pushed(
    tx: &mut WriteTx,
    connector_id: &str,
    mapping: &MappingConfig,
    change: PushedChange,
) -> Result<RunReport, SyncError> {
    let mut report =
        apply_pushed_deferred(tx, &SqlDirectory, connector_id, mapping, change).await?;
    if let Some(writes) = report.deferred_writes.take() {
        writes.execute(tx.conn()).await?;
    }
    Ok(report)
}

/// [`apply_pushed`] into `directory`, leaving the report's `deferred_writes` (the mirror
/// state, and the plan's writes that nothing read back) for the caller to send in the same
/// transaction before it commits: the SCIM write path sends them with the request's event.
pub(crate) async fn apply_pushed_deferred(
    tx: &mut WriteTx,
    directory: &dyn crate::target::Directory,
    connector_id: &str,
    mapping: &MappingConfig,
    change: PushedChange,
) -> Result<RunReport, SyncError> {
    let options = RunOptions {
        inactive_is_removal: true,
        ..RunOptions::default()
    };
    let ctx = RunContext::new(connector_id, mapping, options, directory);
    let staged = staged(&ctx, change);
    project_and_apply(tx, &ctx, &NoProgress, staged).await
}

/// The request's change as the phases from `project` on take it: the mirror state is the
/// one before the request with its generation moved on (not read again).
fn staged(ctx: &RunContext<'_>, change: PushedChange) -> Staged {
    let facts = Change {
        users: change.user_ids.len(),
        groups_changed: change.groups_changed,
        empty_full_read: false,
        defaults_checked: false,
    };
    let scope = scope::changed_users_only(ctx, &change.before, &facts).then_some(Scope {
        user_ids: change.user_ids,
        known_users: change.users,
        groups: change.group_ids,
        nesting: Vec::new(),
        new_users: change.new_users,
    });
    Staged {
        run_id: None,
        state: MirrorState {
            generation: change.before.generation + 1,
            ..change.before
        },
        scope,
        read_mode: None,
        records_read: 1,
        empty_full_read: false,
        force: false,
        warnings: Vec::new(),
        removal_allowance: Some(change.removal_allowance),
        defer_state: true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::tests::{mapping, state};
    use super::*;
    use crate::target::SqlDirectory;

    fn change(before: MirrorState, groups_changed: bool) -> PushedChange {
        PushedChange {
            before,
            user_ids: vec!["u1".into()],
            users: Some(vec![super::super::read::tests::user("u1")]),
            group_ids: vec!["g1".into()],
            groups_changed,
            removal_allowance: 7,
            new_users: false,
        }
    }

    #[test]
    fn a_request_on_a_caught_up_tenant_plans_its_users_and_groups_only() {
        let mapping = mapping();
        let ctx = RunContext::new("t", &mapping, RunOptions::default(), &SqlDirectory);
        let before = state(4, 4, Some(&ctx.fingerprint));
        let staged = staged(&ctx, change(before, false));
        assert_eq!(
            staged.state.generation, 5,
            "the request's write moves it on"
        );
        assert_eq!(staged.state.applied_generation, 4);
        assert_eq!(staged.removal_allowance, Some(7));
        assert!(!staged.up_to_date(&ctx));
        let scope = staged.scope.unwrap();
        assert_eq!(scope.user_ids, ["u1"]);
        assert_eq!(scope.groups, ["g1"]);
        assert_eq!(scope.known_users.map(|u| u.len()), Some(1));
    }

    #[test]
    fn a_request_that_changes_groups_or_finds_work_pending_plans_the_whole_tenant() {
        let mapping = mapping();
        let ctx = RunContext::new("t", &mapping, RunOptions::default(), &SqlDirectory);
        let caught_up = state(4, 4, Some(&ctx.fingerprint));
        assert!(staged(&ctx, change(caught_up, true)).scope.is_none());
        let behind = state(4, 3, Some(&ctx.fingerprint));
        assert!(staged(&ctx, change(behind, false)).scope.is_none());
    }
}
