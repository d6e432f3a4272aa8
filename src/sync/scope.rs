//! The scope phase: one rule, shared by pull runs and SCIM writes, for when a plan may
//! cover only the users and groups that changed instead of re-projecting the whole
//! mirror.

use crate::store::mirror::MirrorState;

use super::context::RunContext;

/// Runs that affect at most this many users (and change no nesting) plan just those.
pub(super) const INCREMENTAL_MAX_USERS: usize = 20_000;

/// What changed in the mirror, as far as the scope rule cares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Change {
    /// Users affected: written or removed, joined or left a group, below a renamed group.
    pub users: usize,
    /// The groups changed beyond member users and their own records: the nesting changed
    /// or a group went (for a SCIM request: a group was created, renamed, deleted, or had
    /// groups join or leave it).
    pub groups_changed: bool,
    /// A complete full read that found nothing.
    pub empty_full_read: bool,
    /// For a mapping that applies default groups `always`: the users who are outside one
    /// of them (an admin took it away) are among the affected users.
    pub defaults_checked: bool,
}

/// Whether the plan covers only the affected users (and the groups written): the target
/// had caught up with the mirror as it was `before` under the same mapping, the groups
/// changed in ways such a plan covers (`merge::affected` says which), not too many users
/// are affected, and, where the mapping promises every user a default
/// group on every run, the users outside one are among them (a SCIM request does not
/// look for them, and re-projects such a tenant).
/// An empty full read is planned whole, for the safety limits to judge.
///
/// A run that changed nothing needs no case here: the mirror's generation did not move,
/// so the run stops before projecting.
pub(super) fn changed_users_only(
    ctx: &RunContext<'_>,
    before: &MirrorState,
    change: &Change,
) -> bool {
    ctx.caught_up(before)
        && (!ctx.always_defaults() || change.defaults_checked)
        && !change.groups_changed
        && !change.empty_full_read
        && change.users <= INCREMENTAL_MAX_USERS
}

#[cfg(test)]
mod tests {
    use super::super::RunOptions;
    use super::super::context::tests::{mapping, state};
    use super::*;
    use crate::config::DefaultApply;
    use crate::target::SqlDirectory;

    const USERS: Change = Change {
        users: 3,
        groups_changed: false,
        empty_full_read: false,
        defaults_checked: false,
    };

    #[test]
    fn only_changed_users_are_planned_when_nothing_else_is_pending() {
        let mapping = mapping();
        let ctx = RunContext::new("hr", &mapping, RunOptions::default(), &SqlDirectory);
        let caught_up = state(5, 5, Some(&ctx.fingerprint));
        assert!(changed_users_only(&ctx, &caught_up, &USERS));

        let behind = state(5, 4, Some(&ctx.fingerprint));
        assert!(!changed_users_only(&ctx, &behind, &USERS));
        let other_mapping = state(5, 5, Some("before the edit"));
        assert!(!changed_users_only(&ctx, &other_mapping, &USERS));

        let groups = Change {
            groups_changed: true,
            ..USERS
        };
        assert!(!changed_users_only(&ctx, &caught_up, &groups));
        let empty = Change {
            empty_full_read: true,
            ..USERS
        };
        assert!(!changed_users_only(&ctx, &caught_up, &empty));
        let many = Change {
            users: INCREMENTAL_MAX_USERS + 1,
            ..USERS
        };
        assert!(!changed_users_only(&ctx, &caught_up, &many));
        let most = Change {
            users: INCREMENTAL_MAX_USERS,
            ..USERS
        };
        assert!(changed_users_only(&ctx, &caught_up, &most));
    }

    #[test]
    fn default_groups_given_on_every_run_need_the_users_outside_them() {
        let mut mapping = mapping();
        mapping.groups.default = vec!["staff".into()];
        mapping.groups.default_apply = DefaultApply::Always;
        let ctx = RunContext::new("hr", &mapping, RunOptions::default(), &SqlDirectory);
        let caught_up = state(5, 5, Some(&ctx.fingerprint));
        assert!(!changed_users_only(&ctx, &caught_up, &USERS));
        let checked = Change {
            defaults_checked: true,
            ..USERS
        };
        assert!(changed_users_only(&ctx, &caught_up, &checked));

        mapping.groups.default_apply = DefaultApply::OnCreate;
        let ctx = RunContext::new("hr", &mapping, RunOptions::default(), &SqlDirectory);
        let caught_up = state(5, 5, Some(&ctx.fingerprint));
        assert!(changed_users_only(&ctx, &caught_up, &USERS));
    }
}
