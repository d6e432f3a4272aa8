//! The hold phase: a plan that would take away more than allowed is not applied. A pull
//! run or reconcile is held by the mapping's safety limits (`pipeline::limits`); pushed
//! SCIM changes by how many more removals the tenant's window allows. `--allow-mass-delete`
//! lifts either.

use crate::pipeline::limits;
use crate::pipeline::plan::Plan;

use super::context::{RunContext, Staged};

/// Live users disabled or deleted plus groups deleted: what the limits count.
pub(super) fn removals(plan: &Plan) -> u64 {
    plan.user_removals
        .iter()
        .filter(|r| !r.already_disabled)
        .count() as u64
        + plan.group_deletes.len() as u64
}

/// Why the plan is held, if it is.
pub(super) fn reason(
    ctx: &RunContext<'_>,
    staged: &Staged,
    plan: &Plan,
    removals: u64,
) -> Option<String> {
    if ctx.options.allow_mass_delete {
        return None;
    }
    match staged.removal_allowance {
        Some(allowance) => (removals > allowance).then(|| {
            format!(
                "the request would remove {removals} users or groups, beyond the {allowance} more \
                 removals the tenant's window allows"
            )
        }),
        None => limits::hold_reason(plan, ctx.mapping, staged.empty_full_read),
    }
}

#[cfg(test)]
mod tests {
    use super::super::RunOptions;
    use super::super::context::tests::{mapping, state};
    use super::*;
    use crate::pipeline::plan::Removal;
    use crate::target::SqlDirectory;

    fn removal(id: &str, already_disabled: bool) -> Removal {
        Removal {
            already_disabled,
            id: id.into(),
            external_id: id.into(),
            name: id.into(),
        }
    }

    fn plan() -> Plan {
        Plan {
            user_removals: vec![removal("a", false), removal("b", true), removal("c", false)],
            group_deletes: vec![removal("g", false)],
            live_users_before: 4,
            groups_before: 1,
            ..Plan::default()
        }
    }

    #[test]
    fn users_already_disabled_are_not_counted_again() {
        assert_eq!(removals(&plan()), 3);
    }

    #[test]
    fn pushed_changes_are_held_beyond_the_tenant_allowance() {
        let mapping = mapping();
        let ctx = RunContext::new("t", &mapping, RunOptions::default(), &SqlDirectory);
        let mut staged = Staged::reconcile(None, state(1, 0, None));
        staged.removal_allowance = Some(3);
        assert_eq!(reason(&ctx, &staged, &plan(), 3), None);
        staged.removal_allowance = Some(2);
        let why = reason(&ctx, &staged, &plan(), 3).unwrap();
        assert!(
            why.contains("remove 3 users or groups, beyond the 2 more"),
            "{why}"
        );

        let options = RunOptions {
            allow_mass_delete: true,
            ..RunOptions::default()
        };
        let ctx = RunContext::new("t", &mapping, options, &SqlDirectory);
        assert_eq!(reason(&ctx, &staged, &plan(), 3), None);
    }

    #[test]
    fn pull_runs_are_held_by_the_mapping_limits() {
        let mapping = crate::config::MappingConfig::pass_through(
            "default",
            crate::config::OnRemove::Disable,
            1,
            100.0,
        );
        let ctx = RunContext::new("hr", &mapping, RunOptions::default(), &SqlDirectory);
        let staged = Staged::reconcile(None, state(1, 0, None));
        let why = reason(&ctx, &staged, &plan(), 3).unwrap();
        assert_eq!(
            Some(why),
            limits::hold_reason(&plan(), &mapping, false),
            "the mapping's limits decide"
        );
    }
}
