//! Projection of one connector's mirror through its mapping: filters choose the users and
//! groups, expressions compute the target fields, group names are renamed or prefixed,
//! default and application groups are granted, and nesting is kept or flattened.
//!
//! Membership is always decided on the whole source graph, and filters only choose what
//! appears: a group excluded in the middle of a chain (A ⊃ B ⊃ C, B excluded) does not
//! change who is effectively in A. With `nesting = "keep"` A gets B's included members as
//! its own (the chain is bridged); with `"flatten"` A gets every included user it holds
//! through any path. Effective membership is therefore the same in both modes.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::{MemberKind, SourceGroup, SourceUser};
use crate::pipeline::context::{group_context, user_context};
use crate::pipeline::expr::Expr;
use crate::pipeline::flatten::{Graph, effective_users};
use crate::pipeline::settings::{DefaultApply, MappingConfig, Nesting};
use crate::pipeline::{
    Attributes, Desired, DesiredMembership, ManagedGrant, SkippedUser, TargetGroup, TargetUser,
};

/// The source's membership graph over dense indices.
struct SourceGraph {
    child_groups: Vec<Vec<u32>>,
    direct_users: Vec<Vec<u32>>,
}

impl SourceGraph {
    /// The graph over users `user_ids` (sorted) and `groups`.
    fn new(user_ids: &[Arc<str>], groups: &[SourceGroup]) -> SourceGraph {
        let group_index: HashMap<&str, u32> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.external_id.as_str(), i as u32))
            .collect();
        let mut child_groups = vec![Vec::new(); groups.len()];
        let mut direct_users = vec![Vec::new(); groups.len()];
        for (g, group) in groups.iter().enumerate() {
            for member in &group.members {
                // References to records not in the mirror were reported when read.
                match member.kind {
                    MemberKind::User => {
                        if let Some(u) = position(user_ids, &member.id) {
                            direct_users[g].push(u);
                        }
                    }
                    MemberKind::Group => {
                        if let Some(&c) = group_index.get(member.id.as_str())
                            && c as usize != g
                        {
                            child_groups[g].push(c);
                        }
                    }
                }
            }
        }
        SourceGraph {
            child_groups,
            direct_users,
        }
    }

    fn effective(&self) -> Vec<Vec<u32>> {
        effective_users(&Graph {
            child_groups: &self.child_groups,
            direct_users: &self.direct_users,
        })
    }
}

/// The index of `id` in the sorted `ids`.
fn position(ids: &[Arc<str>], id: &str) -> Option<u32> {
    ids.binary_search_by(|probe| (**probe).cmp(id))
        .ok()
        .map(|i| i as u32)
}

fn needs_user_groups(mapping: &MappingConfig) -> bool {
    mapping.filter.include_users.is_some()
        || mapping.filter.exclude_users.is_some()
        || mapping.groups.applications.iter().any(|a| a.when.is_some())
}

fn needs_user_context(mapping: &MappingConfig) -> bool {
    let a = &mapping.attributes;
    needs_user_groups(mapping)
        || a.user_name.is_some()
        || a.email.is_some()
        || a.display_name.is_some()
        || a.given_name.is_some()
        || a.family_name.is_some()
        || !a.custom.is_empty()
}

/// The target name of a source group.
fn group_name(mapping: &MappingConfig, source_name: &str) -> String {
    let name = source_name.trim();
    match mapping.groups.rename.get(&name.to_lowercase()) {
        Some(renamed) => renamed.clone(),
        None => match &mapping.groups.prefix {
            Some(prefix) => format!("{prefix}{name}"),
            None => name.to_string(),
        },
    }
}

/// Projects a connector's mirrored source through its mapping. Takes the users by value
/// so that each is dropped once projected (its attributes become the target user's JSON
/// text) and the groups' attributes move into the target groups.
pub fn project(
    mapping: &MappingConfig,
    users: Vec<SourceUser>,
    groups: Vec<SourceGroup>,
) -> std::io::Result<Desired> {
    let user_ids: Vec<String> = users.iter().map(|u| u.external_id.clone()).collect();
    let mut projector = Projector::new(mapping, user_ids, groups);
    for user in users {
        projector.user(user)?;
    }
    Ok(projector.finish())
}

/// The projection fed one user at a time, so that a full run never holds every source
/// user parsed at once: [`Projector::new`] takes the ids of every user the projection
/// covers (membership is decided on the whole graph) and the groups, [`Projector::user`]
/// each of those users in any order, [`Projector::finish`] the memberships and groups.
/// A user not handed in (a SCIM tenant's inactive one) is in no group and not in the
/// target, as if the source had not listed it; it does not count as excluded.
pub struct Projector<'a> {
    mapping: &'a MappingConfig,
    /// Every user's external id, sorted: the user indices of the graph. Shared with the
    /// projected users' heads and their memberships.
    user_ids: Vec<Arc<str>>,
    groups: Vec<SourceGroup>,
    graph: SourceGraph,
    effective: Option<Vec<Vec<u32>>>,
    /// Per user, the groups it is effectively in (only when rules read them).
    user_groups: Vec<Vec<u32>>,
    with_context: bool,
    included_user: Vec<bool>,
    desired: Desired,
}

impl<'a> Projector<'a> {
    pub fn new(
        mapping: &'a MappingConfig,
        mut user_ids: Vec<String>,
        mut groups: Vec<SourceGroup>,
    ) -> Projector<'a> {
        // Unstable: equal ids are the same text, and a stable sort would allocate half the
        // list again.
        user_ids.sort_unstable();
        user_ids.dedup();
        let user_ids: Vec<Arc<str>> = user_ids.into_iter().map(Arc::from).collect();
        let graph = SourceGraph::new(&user_ids, &groups);
        // The member lists are in the graph now, as indices. Kept, their ids (five million
        // strings at a million users) would sit beside every user the projection collects;
        // nothing after this reads them (a group's filter context leaves members out).
        for group in &mut groups {
            group.members = Vec::new();
        }
        let effective = (needs_user_groups(mapping) || mapping.nesting == Nesting::Flatten)
            .then(|| graph.effective());
        let mut user_groups: Vec<Vec<u32>> = Vec::new();
        if needs_user_groups(mapping)
            && let Some(effective) = &effective
        {
            user_groups = vec![Vec::new(); user_ids.len()];
            for (g, members) in effective.iter().enumerate() {
                for &u in members {
                    user_groups[u as usize].push(g as u32);
                }
            }
        }
        let mut desired = Desired::default();
        if mapping.groups.default_apply == DefaultApply::OnCreate {
            desired.default_on_create = mapping.groups.default.clone();
        }
        Projector {
            mapping,
            included_user: vec![false; user_ids.len()],
            user_ids,
            groups,
            graph,
            effective,
            user_groups,
            with_context: needs_user_context(mapping),
            desired,
        }
    }

    /// Projects one user; a user whose id was not given to [`Projector::new`] is ignored.
    /// Fails only when the projected user cannot be set aside (see [`DesiredUsers`]).
    ///
    /// [`DesiredUsers`]: super::DesiredUsers
    pub fn user(&mut self, user: SourceUser) -> std::io::Result<()> {
        let Some(u) = position(&self.user_ids, &user.external_id) else {
            return Ok(());
        };
        let u = u as usize;
        let (mapping, desired) = (self.mapping, &mut self.desired);
        let context = self.with_context.then(|| {
            let names: Vec<&str> = self
                .user_groups
                .get(u)
                .map(|gs| {
                    gs.iter()
                        .map(|&g| self.groups[g as usize].display_name.as_str())
                        .collect()
                })
                .unwrap_or_default();
            user_context(&user, &names)
        });
        if let Some(context) = &context {
            let included = mapping
                .filter
                .include_users
                .as_ref()
                .is_none_or(|f| f.matches(context))
                && !mapping
                    .filter
                    .exclude_users
                    .as_ref()
                    .is_some_and(|f| f.matches(context));
            if !included {
                desired.excluded_users += 1;
                return Ok(());
            }
        }
        let source_user_name = user.user_name.clone();
        match map_user(mapping, user, context.as_ref()) {
            Ok(target) => {
                for app in &mapping.groups.applications {
                    let granted = match (&app.when, &context) {
                        (None, _) => true,
                        (Some(when), Some(context)) => when.matches(context),
                        (Some(_), None) => false,
                    };
                    if granted {
                        for group in &app.groups {
                            desired.managed.push(ManagedGrant {
                                group: group.clone(),
                                user: target.external_id.clone(),
                            });
                        }
                    }
                }
                if mapping.groups.default_apply == DefaultApply::Always {
                    for group in &mapping.groups.default {
                        desired.managed.push(ManagedGrant {
                            group: group.clone(),
                            user: target.external_id.clone(),
                        });
                    }
                }
                self.included_user[u] = true;
                desired
                    .users
                    .push_shared(&target, self.user_ids[u].clone())?;
            }
            Err(skip) => {
                // The record stays as the target has it (if it has it): a field that
                // went empty is a data problem to report, not a reason to deprovision.
                let id = &self.user_ids[u];
                desired
                    .skipped
                    .push(format!("user {id:?} skipped: {}", skip.message));
                desired.held_back.insert(id.to_string());
                desired.skipped_users.push(SkippedUser {
                    external_id: id.to_string(),
                    user_name: source_user_name,
                    field: skip.field,
                    expression: skip.expression,
                });
                self.included_user[u] = true;
            }
        }
        Ok(())
    }

    /// The groups and memberships, once every user is in.
    pub fn finish(self) -> Desired {
        let Projector {
            mapping,
            user_ids,
            groups,
            graph,
            effective,
            included_user,
            mut desired,
            ..
        } = self;
        // Groups.
        let group_filters =
            mapping.filter.include_groups.is_some() || mapping.filter.exclude_groups.is_some();
        let mut included_group = vec![false; groups.len()];
        for (g, group) in groups.iter().enumerate() {
            if group.display_name.trim().is_empty() {
                desired.skipped.push(format!(
                    "group {:?} skipped: its name is empty",
                    group.external_id
                ));
                continue;
            }
            if group_filters {
                let context = group_context(group);
                let included = mapping
                    .filter
                    .include_groups
                    .as_ref()
                    .is_none_or(|f| f.matches(&context))
                    && !mapping
                        .filter
                        .exclude_groups
                        .as_ref()
                        .is_some_and(|f| f.matches(&context));
                if !included {
                    desired.excluded_groups += 1;
                    continue;
                }
            }
            included_group[g] = true;
        }

        // Memberships: each id shared by all its memberships, not copied into each.
        let group_ids: Vec<Arc<str>> = groups
            .iter()
            .map(|g| Arc::from(g.external_id.as_str()))
            .collect();
        // Reserved at about the size they come to: grown by doubling, five million
        // memberships took a capacity of eight, and giving the slack back below copied
        // them (both copies at once, the projection's peak).
        let expected: usize = (0..groups.len())
            .filter(|&g| included_group[g])
            .map(|g| match (&mapping.nesting, &effective) {
                (Nesting::Flatten, Some(effective)) => effective[g].len(),
                _ => graph.direct_users[g].len() + graph.child_groups[g].len(),
            })
            .sum();
        desired.memberships.reserve_exact(expected);
        for (g, group_id) in group_ids.iter().enumerate() {
            if !included_group[g] {
                continue;
            }
            let mut add = |kind: MemberKind, member: &Arc<str>| {
                desired.memberships.push(DesiredMembership {
                    group: group_id.clone(),
                    kind,
                    member: member.clone(),
                });
            };
            match (&mapping.nesting, &effective) {
                (Nesting::Flatten, Some(effective)) => {
                    for &u in &effective[g] {
                        if included_user[u as usize] {
                            add(MemberKind::User, &user_ids[u as usize]);
                        }
                    }
                }
                _ => {
                    // Direct members, bridging through excluded groups.
                    let mut visited = vec![g as u32];
                    let mut pending = vec![g as u32];
                    while let Some(current) = pending.pop() {
                        for &u in &graph.direct_users[current as usize] {
                            if included_user[u as usize] {
                                add(MemberKind::User, &user_ids[u as usize]);
                            }
                        }
                        for &c in &graph.child_groups[current as usize] {
                            if c as usize == g {
                                // A cycle through excluded groups back to this group.
                                continue;
                            }
                            if included_group[c as usize] {
                                add(MemberKind::Group, &group_ids[c as usize]);
                            } else if !visited.contains(&c) {
                                visited.push(c);
                                pending.push(c);
                            }
                        }
                    }
                }
            }
        }
        for (g, group) in groups.into_iter().enumerate() {
            if included_group[g] {
                desired.groups.push(TargetGroup {
                    name: group_name(mapping, &group.display_name),
                    external_id: group.external_id,
                    description: group.description,
                    attributes: group.attributes,
                });
            }
        }
        // Grown by doubling, the lists would keep up to as much again unused until the
        // plan is applied (five million memberships in a capacity of eight).
        desired.users.shrink_to_fit();
        desired.memberships.shrink_to_fit();
        desired
    }
}

/// Why a user was skipped: the required field that came out empty.
struct Skip {
    /// The mapping key, e.g. `attributes.user_name`.
    field: &'static str,
    expression: Option<String>,
    message: String,
}

impl Skip {
    fn new(field: &'static str, expr: &Option<Expr>, message: String) -> Skip {
        Skip {
            field,
            expression: expr.as_ref().map(ToString::to_string),
            message,
        }
    }
}

/// Computes the target fields of a user; a required field that ends up empty skips it.
fn map_user(
    mapping: &MappingConfig,
    user: SourceUser,
    context: Option<&Value>,
) -> Result<TargetUser, Skip> {
    let a = &mapping.attributes;
    let field = |expr: &Option<Expr>, fallback: Option<String>| match (expr, context) {
        (Some(expr), Some(context)) => expr.eval(context),
        _ => fallback.filter(|v| !v.trim().is_empty()),
    };
    let default_display = user
        .display_name
        .clone()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| match (&user.given_name, &user.family_name) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => Some(user.user_name.clone()),
        });
    let user_name = field(&a.user_name, Some(user.user_name.trim().to_string()));
    // Without an email, a user name that is an address (a UPN, an Okta login) serves.
    let fallback_email = user.primary_email().map(str::to_string).or_else(|| {
        user.user_name
            .contains('@')
            .then(|| user.user_name.trim().to_string())
    });
    let email = field(&a.email, fallback_email);
    let display_name = field(&a.display_name, default_display);
    let given_name = field(&a.given_name, user.given_name.clone());
    let family_name = field(&a.family_name, user.family_name.clone());
    let Some(user_name) = user_name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
    else {
        return Err(Skip::new(
            "attributes.user_name",
            &a.user_name,
            "its user name is empty".into(),
        ));
    };
    let Some(email) = email else {
        return Err(Skip::new(
            "attributes.email",
            &a.email,
            format!("user {user_name:?} has no email"),
        ));
    };
    let Some(display_name) = display_name else {
        return Err(Skip::new(
            "attributes.display_name",
            &a.display_name,
            format!("user {user_name:?} has no display name"),
        ));
    };
    let attributes = if a.custom.is_empty() {
        Attributes::new(&user.attributes)
    } else {
        let mut custom = Map::new();
        if let Some(context) = context {
            for (name, expr) in &a.custom {
                if let Some(value) = expr.eval(context) {
                    custom.insert(name.clone(), Value::String(value));
                }
            }
        }
        Attributes::new(&custom)
    };
    Ok(TargetUser {
        external_id: user.external_id,
        user_name,
        display_name: Some(display_name),
        given_name,
        family_name,
        email: Some(email),
        active: user.active,
        attributes,
    })
}
