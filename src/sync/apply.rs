//! The apply phase: the directory writes the plan, then brings effective memberships in
//! line (for a plan over changed users, just theirs), and the mirror state is stored as
//! applied. For a pushed change (`Staged::defer_state`) the state, and the plan's writes
//! when nothing reads them back, are handed to the caller to send with its last
//! statements: on SQLite each round trip is a large part of a SCIM write's cost.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use crate::config::OnRemove;
use crate::db::Batch;
use crate::pipeline::plan::{self, Plan};
use crate::store::mirror;
use crate::store::runs::Outcome;
use crate::target::EffectiveUpdate;

use super::context::{RunContext, Staged};
use super::plan::Planned;
use super::{Progress, SyncError};

pub(super) async fn apply(
    conn: &mut AnyConnection,
    ctx: &RunContext<'_>,
    staged: Staged,
    planned: Planned,
    progress: &dyn Progress,
) -> Result<(Outcome, Option<Batch>), SyncError> {
    let id = ctx.connector_id;
    let directory = ctx.directory;
    let Planned {
        plan,
        own_group_ids,
        scoped_user_ids,
        ..
    } = planned;
    let scoped = staged.scope.is_some();
    let mut deferred = staged.defer_state.then(|| Batch::new(REQUEST_WRITES));
    let effective_follows = effective_changed(&plan, scoped);
    // Not deferred when the effective step reads the memberships just written, nor for a
    // plan over the whole tenant, which may be large and is written within the request's
    // time limit.
    let defer = deferred.as_mut().filter(|_| scoped && !effective_follows);
    directory.apply(conn, id, &plan, defer).await?;
    if effective_follows {
        progress.phase("effective memberships");
        match staged.scope {
            Some(_) => {
                let direct = direct_groups(&plan, &scoped_user_ids, &own_group_ids);
                let update = EffectiveUpdate::Users { direct: &direct };
                directory.update_effective(conn, id, update).await?;
            }
            None => {
                let own_groups = plan
                    .membership_adds
                    .iter()
                    .chain(&plan.membership_kept)
                    .filter(|m| !plan.managed_group_ids.contains(&*m.group_id));
                let wanted = plan::nesting_pairs(own_groups);
                let update = EffectiveUpdate::Whole { wanted: &wanted };
                directory.update_effective(conn, id, update).await?;
            }
        }
    }
    if !ctx.options.dry_run {
        directory
            .converge(conn, id, &plan, staged.scope.is_none())
            .await?;
    }
    let mut state = staged.state;
    // With conflicts left, the target has not fully caught up: the next run projects
    // again, so a name freed meanwhile (by another connector, or by a rename of this run)
    // is taken then.
    if plan.conflicts.is_empty() {
        state.applied_generation = state.generation;
    }
    state.applied_mapping_hash = Some(ctx.fingerprint.clone());
    let outcome = match plan.is_empty() {
        true => Outcome::Unchanged,
        false => Outcome::Succeeded,
    };
    if let Some(mut writes) = deferred {
        mirror::save_state_into(&mut writes, conn, id, &state);
        return Ok((outcome, Some(writes)));
    }
    mirror::save_state(conn, id, &state).await?;
    Ok((outcome, None))
}

/// What the statements a pushed change sends with its event do, for a failure's message.
pub(crate) const REQUEST_WRITES: &str =
    "writing a request's target changes, mirror state, removal count and event";

/// Whether effective memberships are to be brought in line. They follow the direct
/// memberships alone, so for a plan over changed users a user's removal is not a reason of
/// its own: its direct memberships leave through `membership_removes` (or stay, and so do
/// their effective rows), and a deleted user's effective rows go with it in `apply_plan`.
/// A plan over the whole connector recomputes on removals too, which also repairs rows
/// that drifted.
fn effective_changed(plan: &Plan, scoped: bool) -> bool {
    !plan.membership_adds.is_empty()
        || !plan.membership_removes.is_empty()
        || !plan.group_deletes.is_empty()
        || (!scoped && !plan.user_removals.is_empty())
}

/// For a plan over changed users: each of those users still in the target (target id),
/// with the connector's groups it is directly in after the plan.
fn direct_groups(
    plan: &Plan,
    scoped_user_ids: &[String],
    own_group_ids: &HashSet<String>,
) -> HashMap<String, Vec<String>> {
    let deleted: HashSet<&str> = match plan.on_remove {
        Some(OnRemove::Delete) => plan.user_removals.iter().map(|r| r.id.as_str()).collect(),
        _ => HashSet::new(),
    };
    let mut direct: HashMap<String, Vec<String>> = scoped_user_ids
        .iter()
        .filter(|id| !deleted.contains(id.as_str()))
        .map(|id| (id.clone(), Vec::new()))
        .collect();
    for m in plan.membership_adds.iter().chain(&plan.membership_kept) {
        if own_group_ids.contains(&*m.group_id)
            && let Some(groups) = direct.get_mut(&*m.member_id)
        {
            groups.push(m.group_id.to_string());
        }
    }
    direct
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberKind;
    use crate::pipeline::Origin;
    use crate::pipeline::plan::{Membership, Removal};

    fn member(group: &str, user: &str) -> Membership {
        Membership {
            group_id: group.into(),
            member_id: user.into(),
            kind: MemberKind::User,
            origin: Origin::Source,
        }
    }

    #[test]
    fn scoped_users_keep_their_own_groups_and_deleted_ones_drop_out() {
        let plan = Plan {
            on_remove: Some(OnRemove::Delete),
            membership_adds: vec![member("g1", "u1"), member("managed", "u1")],
            membership_kept: vec![member("g2", "u1"), member("g2", "outside")],
            user_removals: vec![Removal {
                already_disabled: false,
                id: "u3".into(),
                external_id: "3".into(),
                name: "c".into(),
            }],
            ..Plan::default()
        };
        let users = ["u1", "u2", "u3"].map(String::from);
        let own: HashSet<String> = ["g1", "g2"].map(String::from).into();
        let mut direct: Vec<_> = direct_groups(&plan, &users, &own).into_iter().collect();
        direct.sort();
        assert_eq!(
            direct,
            vec![
                ("u1".to_string(), vec!["g1".to_string(), "g2".to_string()]),
                ("u2".to_string(), vec![]),
            ]
        );
        assert!(effective_changed(&plan, true));
        assert!(!effective_changed(&Plan::default(), false));
        let removal_only = Plan {
            user_removals: plan.user_removals.clone(),
            ..Plan::default()
        };
        assert!(
            !effective_changed(&removal_only, true),
            "a removed user without memberships leaves the effective rows as they are"
        );
        assert!(
            effective_changed(&removal_only, false),
            "a whole-connector run recomputes on removals, repairing drifted rows"
        );
    }
}
