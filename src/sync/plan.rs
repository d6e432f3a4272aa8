//! The plan phase: the desired slice against what the target directory holds for the
//! connector, after asking the directory who holds the names the plan would claim. The
//! directory also chooses the ids of records the plan creates. The plan's preview (its
//! first changes in words) is drawn here, while the target's names are at hand.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::AnyConnection;

use crate::config::OnRemove;
use crate::model::name_key;
use crate::pipeline::Desired;
use crate::pipeline::plan::{self, Current, NamedGroup, Plan};
use crate::target::Owned;

use super::SyncError;
use super::context::{RunContext, Staged};
use super::project::Projected;

/// Entries shown per kind in a plan preview.
const PREVIEW_PER_KIND: usize = 10;

/// A plan, and what the apply phase needs of the target as it was.
pub(super) struct Planned {
    pub plan: Plan,
    pub preview: Vec<String>,
    /// Target ids of the connector's groups before the plan.
    pub own_group_ids: HashSet<String>,
    /// For a plan over changed users: the target ids of those users (existing and
    /// created), whose effective memberships the apply phase recomputes.
    pub scoped_user_ids: Vec<String>,
}

pub(super) async fn plan(
    conn: &mut AnyConnection,
    ctx: &RunContext<'_>,
    staged: &Staged,
    projected: Projected,
) -> Result<Planned, SyncError> {
    let id = ctx.connector_id;
    let directory = ctx.directory;
    let Projected {
        desired,
        scoped_current,
    } = projected;
    let current = match scoped_current {
        Some(current) => current,
        None => directory.load_owned(conn, id, Owned::All).await?,
    };
    let (user_keys, group_keys) = claimed_names(&desired, &current);
    let besides: Option<HashSet<String>> = staged
        .scope
        .as_ref()
        .map(|scope| scope.user_ids.iter().cloned().collect());
    let foreign_users = directory
        .user_names_held(conn, id, &user_keys, besides.as_ref())
        .await?;
    let foreign_groups = directory.group_names_held(conn, id, &group_keys).await?;
    // A first run claims every user's name: a million keys, not to be held beside the
    // plan's own.
    drop((user_keys, group_keys, besides));
    let named_groups = directory
        .groups_by_name(conn, &managed_names(&desired))
        .await?;
    let plan = plan::build(
        desired,
        &current,
        &plan::Context {
            mapping_name: &ctx.mapping.name,
            on_remove: ctx.mapping.on_remove,
            foreign_users: &foreign_users,
            foreign_groups: &foreign_groups,
            named_groups: &named_groups,
            ids: directory,
        },
    )
    .map_err(|e| crate::db::DbError::spool("reading a projected user back for the plan", e))?;
    let preview = preview(&plan, &current, &named_groups);
    // The connector's groups after the plan: those it held and those it creates.
    let own_group_ids = current
        .groups
        .values()
        .map(|g| g.id.clone())
        .chain(plan.group_creates.iter().map(|w| w.id.to_string()))
        .collect();
    let scoped_user_ids = match &staged.scope {
        Some(_) => current
            .users
            .values()
            .map(|u| u.id.clone())
            .chain(plan.user_creates.iter().map(|w| w.id.to_string()))
            .collect(),
        None => Vec::new(),
    };
    Ok(Planned {
        plan,
        preview,
        own_group_ids,
        scoped_user_ids,
    })
}

/// The name keys of users and groups the plan would give a name they do not hold yet
/// (new, or renamed): whoever else holds them is a conflict.
fn claimed_names(desired: &Desired, current: &Current) -> (Vec<String>, Vec<String>) {
    let users = claimed(
        desired.users.heads(),
        |u| (&u.external_id, &u.user_name),
        |ext| current.users.get(ext).map(|c| c.user_name_key.as_str()),
    );
    let groups = claimed(
        &desired.groups,
        |g| (&g.external_id, &g.name),
        |ext| current.groups.get(ext).map(|c| c.name_key.as_str()),
    );
    (users, groups)
}

/// The name keys of `records` (external id and name by `id_and_name`) that differ from
/// the key the target's record of the external id holds (`held_key`), or that no record
/// holds yet.
fn claimed<'c, T>(
    records: &[T],
    id_and_name: impl Fn(&T) -> (&str, &str),
    held_key: impl Fn(&str) -> Option<&'c str>,
) -> Vec<String> {
    records
        .iter()
        .filter_map(|record| {
            let (external_id, name) = id_and_name(record);
            let key = name_key(name);
            (held_key(external_id) != Some(key.as_str())).then_some(key)
        })
        .collect()
}

/// The name keys of the mapping's managed groups the plan grants, sorted, once each.
fn managed_names(desired: &Desired) -> Vec<String> {
    desired
        .managed
        .iter()
        .map(|g| name_key(&g.group))
        .chain(desired.default_on_create.iter().map(|g| name_key(g)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The first changes of each kind, in words. Only the lines shown are drawn, and only
/// the names they show are looked up: drawing every line (five million membership lines
/// at a million users) and mapping every record's name was a third of an initial sync's
/// heap at its peak in a profile at 100,000 users (docs/PERFORMANCE.md).
fn preview(
    plan: &Plan,
    current: &Current,
    named_groups: &HashMap<String, NamedGroup>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let removal_verb = match plan.on_remove {
        Some(OnRemove::Delete) => "delete",
        _ => "disable",
    };
    // The target ids the lines name.
    let mut shown_ids: HashSet<&str> = HashSet::new();
    for write in plan.user_updates.iter().take(PREVIEW_PER_KIND) {
        shown_ids.insert(&write.id);
    }
    for write in plan.group_updates.iter().take(PREVIEW_PER_KIND) {
        shown_ids.insert(&write.id);
    }
    for m in plan.membership_adds.iter().take(PREVIEW_PER_KIND) {
        shown_ids.extend([&*m.group_id, &*m.member_id]);
    }
    for (g, m) in plan.membership_removes.iter().take(PREVIEW_PER_KIND) {
        shown_ids.extend([g.as_str(), m.as_str()]);
    }
    let shown_id = |id: &str| shown_ids.contains(id);
    // The names records have in the target now, for renames.
    let before: HashMap<&str, &str> = current
        .users
        .values()
        .map(|u| (u.id.as_str(), u.user_name.as_str()))
        .chain(
            current
                .groups
                .values()
                .map(|g| (g.id.as_str(), g.name.as_str())),
        )
        .filter(|(id, _)| shown_id(id))
        .collect();
    let update = |kind: &str, id: &str, now: &str| match before.get(id) {
        Some(old) if *old != now => format!("rename {kind} {old} → {now}"),
        _ => format!("update {kind} {now}"),
    };
    // Target ids to names, for the membership lines: as the target holds them, managed
    // groups another owner holds (a default group every connector's users join), then as
    // the plan writes them.
    let user_writes = plan.user_creates.iter().chain(&plan.user_updates);
    let group_writes = plan
        .group_creates
        .iter()
        .chain(&plan.group_updates)
        .chain(&plan.managed_creates);
    let names: HashMap<&str, &str> = before
        .iter()
        .map(|(id, name)| (*id, *name))
        .chain(
            named_groups
                .values()
                .map(|g| (g.id.as_str(), g.name.as_str())),
        )
        .chain(user_writes.map(|w| (&*w.id, w.record.user_name.as_str())))
        .chain(group_writes.map(|w| (&*w.id, w.record.name.as_str())))
        .filter(|(id, _)| shown_id(id))
        .collect();
    let name = |id: &str| -> String { names.get(id).map_or(id, |n| *n).to_string() };
    push_first(
        &mut lines,
        plan.user_creates
            .iter()
            .map(|w| format!("create user {}", w.record.user_name)),
    );
    push_first(
        &mut lines,
        plan.user_updates
            .iter()
            .map(|w| update("user", &w.id, &w.record.user_name)),
    );
    push_first(
        &mut lines,
        plan.user_removals.iter().map(|r| {
            format!(
                "{removal_verb} user {} (left the source or its filter)",
                r.name
            )
        }),
    );
    push_first(
        &mut lines,
        plan.group_creates
            .iter()
            .map(|w| format!("create group {}", w.record.name)),
    );
    push_first(
        &mut lines,
        plan.managed_creates
            .iter()
            .map(|w| format!("create group {} (managed by the mapping)", w.record.name)),
    );
    push_first(
        &mut lines,
        plan.group_updates
            .iter()
            .map(|w| update("group", &w.id, &w.record.name)),
    );
    push_first(
        &mut lines,
        plan.group_deletes
            .iter()
            .map(|r| format!("delete group {} (left the source or its filter)", r.name)),
    );
    push_first(
        &mut lines,
        plan.membership_adds.iter().map(|m| {
            format!(
                "add {} {} to group {}",
                m.kind.as_str(),
                name(&m.member_id),
                name(&m.group_id)
            )
        }),
    );
    push_first(
        &mut lines,
        plan.membership_removes
            .iter()
            .map(|(g, m)| format!("remove {} from group {}", name(m), name(g))),
    );
    lines
}

/// Adds the first [`PREVIEW_PER_KIND`] of `items` to `lines`, and a line counting the
/// rest. Only those are drawn: `items` maps each change to its line lazily.
fn push_first(lines: &mut Vec<String>, items: impl ExactSizeIterator<Item = String>) {
    let total = items.len();
    lines.extend(items.take(PREVIEW_PER_KIND));
    if total > PREVIEW_PER_KIND {
        lines.push(format!("  ... and {} more", total - PREVIEW_PER_KIND));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberKind;
    use crate::pipeline::plan::{CurrentUser, Membership, Removal, Write};
    use crate::pipeline::{DesiredUsers, Origin, PlannedUser, TargetGroup, TargetUser};

    fn target_user(ext: &str, name: &str) -> TargetUser {
        TargetUser {
            external_id: ext.into(),
            user_name: name.into(),
            display_name: None,
            given_name: None,
            family_name: None,
            email: None,
            active: true,
            attributes: Default::default(),
        }
    }

    fn current_user(id: &str, name: &str) -> CurrentUser {
        CurrentUser {
            id: id.into(),
            user_name: name.into(),
            user_name_key: name_key(name),
            content_hash: String::new(),
            removed: false,
        }
    }

    #[test]
    fn only_new_and_changed_names_are_checked_against_other_holders() {
        let mut current = Current::default();
        current.users.insert("1".into(), current_user("u1", "Ann"));
        current.users.insert("2".into(), current_user("u2", "Bob"));
        let desired = Desired {
            users: DesiredUsers::from_records(&[
                target_user("1", "ANN"),
                target_user("2", "Robert"),
                target_user("3", "Cy"),
            ])
            .unwrap(),
            groups: vec![TargetGroup {
                external_id: "g".into(),
                name: "Staff".into(),
                description: None,
                attributes: Default::default(),
            }],
            ..Desired::default()
        };
        let (users, groups) = claimed_names(&desired, &current);
        assert_eq!(users, vec![name_key("Robert"), name_key("Cy")]);
        assert_eq!(groups, vec![name_key("Staff")]);
    }

    #[test]
    fn managed_names_are_asked_for_once_each() {
        let desired = Desired {
            managed: vec![
                crate::pipeline::ManagedGrant {
                    group: "App".into(),
                    user: "1".into(),
                },
                crate::pipeline::ManagedGrant {
                    group: "app".into(),
                    user: "2".into(),
                },
            ],
            default_on_create: vec!["Staff".into()],
            ..Desired::default()
        };
        assert_eq!(
            managed_names(&desired),
            vec![name_key("App"), name_key("Staff")]
        );
    }

    #[test]
    fn the_preview_names_records_and_caps_each_kind() {
        let mut current = Current::default();
        current.users.insert("1".into(), current_user("u1", "ann"));
        let mut plan = Plan {
            on_remove: Some(OnRemove::Delete),
            ..Plan::default()
        };
        for i in 0..12 {
            plan.user_creates.push(Write {
                id: format!("new{i}").into(),
                record: PlannedUser::held(target_user(&format!("n{i}"), &format!("user{i:02}"))),
                hash: 0,
            });
        }
        plan.group_creates.push(Write {
            id: "g1".into(),
            record: TargetGroup {
                external_id: "g".into(),
                name: "staff".into(),
                description: None,
                attributes: Default::default(),
            },
            hash: 0,
        });
        plan.user_removals.push(Removal {
            already_disabled: false,
            id: "u9".into(),
            external_id: "9".into(),
            name: "gone".into(),
        });
        plan.membership_adds.push(Membership {
            group_id: "g1".into(),
            member_id: "u1".into(),
            kind: MemberKind::User,
            origin: Origin::Source,
        });
        plan.membership_removes
            .push(("g1".into(), "unknown".into()));
        // A managed group another connector's mapping created: named, not its id.
        plan.membership_adds.push(Membership {
            group_id: "g-all".into(),
            member_id: "u1".into(),
            kind: MemberKind::User,
            origin: Origin::Mapping,
        });
        let named = HashMap::from([(
            name_key("All Staff"),
            NamedGroup {
                id: "g-all".into(),
                owner: "mapping:other".into(),
                name: "All Staff".into(),
            },
        )]);
        let lines = preview(&plan, &current, &named);
        assert_eq!(lines[0], "create user user00");
        assert_eq!(lines[10], "  ... and 2 more");
        assert_eq!(
            &lines[11..],
            [
                "delete user gone (left the source or its filter)",
                "create group staff",
                "add user ann to group staff",
                "add user ann to group All Staff",
                "remove unknown from group staff",
            ]
        );
    }

    #[test]
    fn a_preview_draws_only_the_lines_it_shows() {
        let drawn = std::cell::Cell::new(0);
        let mut lines = Vec::new();
        push_first(
            &mut lines,
            (0..1000).map(|i| {
                drawn.set(drawn.get() + 1);
                format!("line {i}")
            }),
        );
        assert_eq!(drawn.get(), PREVIEW_PER_KIND);
        assert_eq!(lines.len(), PREVIEW_PER_KIND + 1);
        assert_eq!(lines[PREVIEW_PER_KIND], "  ... and 990 more");
    }

    #[test]
    fn a_renamed_record_shows_its_old_and_new_name() {
        let mut current = Current::default();
        current.users.insert("1".into(), current_user("u1", "ann"));
        current.users.insert("2".into(), current_user("u2", "bob"));
        let plan = Plan {
            user_updates: vec![
                Write {
                    id: "u1".into(),
                    record: PlannedUser::held(target_user("1", "ann.lee")),
                    hash: 0,
                },
                Write {
                    id: "u2".into(),
                    record: PlannedUser::held(target_user("2", "bob")),
                    hash: 0,
                },
            ],
            ..Plan::default()
        };
        let lines = preview(&plan, &current, &HashMap::new());
        assert_eq!(lines, ["rename user ann → ann.lee", "update user bob"]);
    }
}
