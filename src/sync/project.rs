//! The project phase: the mirror through the mapping into the desired slice of the
//! target. A plan over changed users projects just them, against the groups around them:
//! those the mirror relates them to and those the target says they are in now (so the
//! target is read first, through the directory).

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::AnyConnection;

use crate::db::DbError;
use crate::model::{MemberKind, SourceGroup, SourceUser};
use crate::pipeline::plan::Current;
use crate::pipeline::{Desired, Projector, project as project_mapping};
use crate::store::mirror;
use crate::target::Owned;

use super::SyncError;
use super::context::{RunContext, Scope, Staged};

/// The desired slice and, for a plan over changed users, what the target holds for them
/// (the whole of the connector's target is read by the plan phase instead).
pub(super) struct Projected {
    pub desired: Desired,
    pub scoped_current: Option<Current>,
}

/// What a failed spool was doing, in the error.
const SETTING_ASIDE: &str = "setting a projected user aside";

pub(super) async fn project(
    conn: &mut AnyConnection,
    ctx: &RunContext<'_>,
    staged: &mut Staged,
) -> Result<Projected, SyncError> {
    let id = ctx.connector_id;
    let Some(scope) = &mut staged.scope else {
        // Users stream through the projection one at a time: a full run never holds
        // every source user parsed (the largest share of its memory before).
        let groups = mirror::load_all::<SourceGroup>(conn, id).await?;
        let user_ids = mirror::ids::<SourceUser>(conn, id).await?;
        let mut projector = Projector::new(ctx.mapping, user_ids, groups);
        let mut set_aside = Ok(());
        mirror::for_each(conn, id, |user: SourceUser| {
            if set_aside.is_ok() && projected(ctx, &user) {
                set_aside = projector.user(user);
            }
        })
        .await?;
        set_aside.map_err(|e| DbError::spool(SETTING_ASIDE, e))?;
        let desired = projector.finish();
        return Ok(Projected {
            desired,
            scoped_current: None,
        });
    };
    let count_live = staged.removal_allowance.is_none();
    // New users (a SCIM create) have no target rows and sit in no group yet: two reads
    // that could only come back empty are skipped (two round trips of a create's eight).
    let fresh = scope.new_users && scope.groups.is_empty() && !count_live;
    let mut current = match fresh {
        true => Current::default(),
        false => {
            let which = Owned::Users {
                external_ids: &scope.user_ids,
                count_live,
            };
            ctx.directory.load_owned(conn, id, which).await?
        }
    };
    let users = match scope.known_users.take() {
        Some(users) => users,
        None => mirror::load_users_by_ids(conn, id, &scope.user_ids).await?,
    };
    let groups = match fresh {
        true => Vec::new(),
        false => {
            let held_now = groups_held(&current, &scope.groups);
            mirror::load_groups_around(conn, id, &scope.user_ids, &held_now).await?
        }
    };
    let loaded: HashSet<String> = groups.iter().map(|g| g.external_id.clone()).collect();
    let mut desired = project_mapping(ctx.mapping, active_only(ctx, users), groups)
        .map_err(|e| DbError::spool(SETTING_ASIDE, e))?;
    // The plan covers the users' memberships, and the nesting rows of the groups whose
    // group members changed (all of their group members were loaded); other groups'
    // nesting did not change.
    let nesting: HashSet<&str> = scope.nesting.iter().map(String::as_str).collect();
    desired
        .memberships
        .retain(|m| m.kind == MemberKind::User || nesting.contains(&*m.group));
    if !scope.nesting.is_empty() {
        ctx.directory
            .add_nesting(conn, id, &mut current, &scope.nesting)
            .await?;
    }
    // The target groups read with the users' memberships are theirs; the others the plan
    // works with (named by the mirror, or written by the change) are read now.
    let planned: Vec<String> = loaded.iter().chain(&scope.groups).cloned().collect();
    ctx.directory
        .add_owned_groups(conn, id, &mut current, &planned)
        .await?;
    see_only_projected(&mut current, &loaded, scope);
    Ok(Projected {
        desired,
        scoped_current: Some(current),
    })
}

/// Whether `user` is projected: SCIM tenants see inactive users as removed.
fn projected(ctx: &RunContext<'_>, user: &SourceUser) -> bool {
    user.active || !ctx.options.inactive_is_removal
}

/// The users of `users` that are projected.
fn active_only(ctx: &RunContext<'_>, users: Vec<SourceUser>) -> Vec<SourceUser> {
    match ctx.options.inactive_is_removal {
        true => users.into_iter().filter(|u| projected(ctx, u)).collect(),
        false => users,
    }
}

/// External ids of the groups the scoped users are in in the target now (their groups
/// read from the mirror join these), and the groups the change wrote itself; sorted.
fn groups_held(current: &Current, scope_groups: &[String]) -> Vec<String> {
    let by_id: HashMap<&str, &str> = current
        .groups
        .iter()
        .map(|(ext, g)| (g.id.as_str(), ext.as_str()))
        .collect();
    current
        .memberships
        .iter()
        .chain(&current.sticky)
        .filter_map(|(group_id, _)| by_id.get(group_id.as_str()))
        .map(|ext| ext.to_string())
        .chain(scope_groups.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The plan sees the groups it projected, no others: unchanged groups it did not read are
/// neither updated nor deleted. A group the change deleted was not read but must be seen,
/// to go.
fn see_only_projected(current: &mut Current, loaded: &HashSet<String>, scope: &Scope) {
    current
        .groups
        .retain(|ext, _| loaded.contains(ext) || scope.groups.contains(ext));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan::CurrentGroup;

    fn group(id: &str) -> CurrentGroup {
        CurrentGroup {
            id: id.to_string(),
            name: id.to_string(),
            name_key: id.to_string(),
            content_hash: String::new(),
        }
    }

    fn current() -> Current {
        let mut current = Current::default();
        for (ext, id) in [("eng", "g1"), ("ops", "g2"), ("all", "g3")] {
            current.groups.insert(ext.to_string(), group(id));
        }
        current.memberships.insert(("g1".into(), "u1".into()));
        current.sticky.insert(("g3".into(), "u1".into()));
        current
    }

    #[test]
    fn the_groups_around_changed_users_include_those_the_target_holds_them_in() {
        assert_eq!(groups_held(&current(), &[]), vec!["all", "eng"]);
        assert_eq!(
            groups_held(&current(), &["new".to_string(), "eng".to_string()]),
            vec!["all", "eng", "new"]
        );
    }

    #[test]
    fn a_scoped_plan_sees_only_the_groups_it_projected_and_those_the_change_wrote() {
        let mut current = current();
        let loaded: HashSet<String> = ["eng".to_string()].into();
        let scope = Scope {
            groups: vec!["ops".to_string()],
            ..Scope::default()
        };
        see_only_projected(&mut current, &loaded, &scope);
        let mut seen: Vec<&String> = current.groups.keys().collect();
        seen.sort();
        assert_eq!(seen, ["eng", "ops"]);
    }

    #[test]
    fn inactive_users_are_removals_only_where_the_options_say_so() {
        let mapping = super::super::context::tests::mapping();
        let mut inactive = super::super::read::tests::user("b");
        inactive.active = false;
        let users = vec![super::super::read::tests::user("a"), inactive];
        let mut options = super::super::RunOptions::default();
        let ctx = RunContext::new("t", &mapping, options, &crate::target::SqlDirectory);
        assert_eq!(active_only(&ctx, users.clone()).len(), 2);
        options.inactive_is_removal = true;
        let ctx = RunContext::new("t", &mapping, options, &crate::target::SqlDirectory);
        assert_eq!(active_only(&ctx, users).len(), 1);
    }
}
