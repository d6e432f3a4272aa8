//! The effective (group, user) pairs a set of direct memberships implies through nested
//! groups, as dense indices over borrowed ids (what the target's effective-membership
//! table is brought in line with).

use std::collections::{HashMap, HashSet};

use super::Membership;
use crate::model::MemberKind;
use crate::pipeline::flatten::{Graph, effective_users};

/// Effective membership as dense indices over borrowed ids: `pairs` holds
/// (index into `groups`, index into `users`), sorted, without duplicates; `direct[i]` says
/// whether `pairs[i]` is also a direct membership (a target stores only the others, see
/// [`Effective::through_nesting_only`]).
pub struct Effective<'a> {
    pub groups: Vec<&'a str>,
    pub users: Vec<&'a str>,
    pub group_index: HashMap<&'a str, u32>,
    pub user_index: HashMap<&'a str, u32>,
    pub pairs: Vec<(u32, u32)>,
    pub direct: Vec<bool>,
}

impl<'a> Effective<'a> {
    /// The pairs that only nesting gives, by id: where groups are flat, none.
    pub fn through_nesting_only(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs
            .iter()
            .zip(&self.direct)
            .filter(|(_, direct)| !**direct)
            .map(|(&(g, u), _)| (self.groups[g as usize], self.users[u as usize]))
    }
}

/// The effective (group, user) pairs implied by a set of direct memberships.
pub fn effective_pairs<'a>(
    memberships: impl Iterator<Item = &'a Membership> + Clone,
) -> Effective<'a> {
    let mut group_index: HashMap<&str, u32> = HashMap::new();
    let mut groups: Vec<&str> = Vec::new();
    for m in memberships.clone() {
        for id in std::iter::once(&*m.group_id)
            .chain((m.kind == MemberKind::Group).then_some(&*m.member_id))
        {
            group_index.entry(id).or_insert_with(|| {
                groups.push(id);
                groups.len() as u32 - 1
            });
        }
    }
    let mut user_index: HashMap<&str, u32> = HashMap::new();
    let mut users: Vec<&str> = Vec::new();
    let mut child_groups = vec![Vec::new(); groups.len()];
    let mut direct_users = vec![Vec::new(); groups.len()];
    for m in memberships {
        let g = group_index[&*m.group_id] as usize;
        match m.kind {
            MemberKind::Group => child_groups[g].push(group_index[&*m.member_id]),
            MemberKind::User => {
                let u = *user_index.entry(&*m.member_id).or_insert_with(|| {
                    users.push(&*m.member_id);
                    users.len() as u32 - 1
                });
                direct_users[g].push(u);
            }
        }
    }
    let effective = effective_users(&Graph {
        child_groups: &child_groups,
        direct_users: &direct_users,
    });
    // Groups in index order and each group's users sorted: the pairs come out sorted.
    let total = effective.iter().map(Vec::len).sum();
    let mut pairs = Vec::with_capacity(total);
    let mut direct = Vec::with_capacity(total);
    for (g, (members, direct_of_g)) in effective.iter().zip(&mut direct_users).enumerate() {
        direct_of_g.sort_unstable();
        pairs.extend(members.iter().map(|&u| (g as u32, u)));
        direct.extend(members.iter().map(|u| direct_of_g.binary_search(u).is_ok()));
    }
    Effective {
        groups,
        users,
        group_index,
        user_index,
        pairs,
        direct,
    }
}

/// [`effective_pairs`] over only the groups nesting involves: those holding other groups
/// and every group below them. Any other group's effective members are its direct users,
/// so its pairs are all direct and a target that stores only the pairs nesting gives
/// ([`Effective::through_nesting_only`]) needs nothing of them. Where groups are flat this
/// skips the closure over every membership.
pub fn nesting_pairs<'a>(
    memberships: impl Iterator<Item = &'a Membership> + Clone,
) -> Effective<'a> {
    let mut child_groups: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in memberships.clone().filter(|m| m.kind == MemberKind::Group) {
        child_groups
            .entry(&*m.group_id)
            .or_default()
            .push(&*m.member_id);
    }
    let mut involved: HashSet<&str> = HashSet::new();
    let mut pending: Vec<&str> = child_groups.keys().copied().collect();
    while let Some(group) = pending.pop() {
        if involved.insert(group) {
            pending.extend(child_groups.get(group).into_iter().flatten());
        }
    }
    let involved = &involved;
    effective_pairs(memberships.filter(move |m| involved.contains(&*m.group_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Origin;

    fn member(group: &str, id: &str, kind: MemberKind) -> Membership {
        Membership {
            group_id: group.into(),
            member_id: id.into(),
            kind,
            origin: Origin::Source,
        }
    }

    #[test]
    fn only_pairs_that_nesting_gives_are_marked_indirect() {
        // staff > eng > (ann); staff also holds ann directly; eng holds bob.
        let memberships = [
            member("staff", "eng", MemberKind::Group),
            member("eng", "ann", MemberKind::User),
            member("eng", "bob", MemberKind::User),
            member("staff", "ann", MemberKind::User),
        ];
        let effective = effective_pairs(memberships.iter());
        let mut all: Vec<(&str, &str)> = effective
            .pairs
            .iter()
            .map(|&(g, u)| (effective.groups[g as usize], effective.users[u as usize]))
            .collect();
        all.sort_unstable();
        assert_eq!(
            all,
            [
                ("eng", "ann"),
                ("eng", "bob"),
                ("staff", "ann"),
                ("staff", "bob")
            ]
        );
        let nested: Vec<_> = effective.through_nesting_only().collect();
        assert_eq!(nested, [("staff", "bob")]);
    }

    #[test]
    fn nesting_pairs_leave_out_groups_nesting_does_not_touch_and_lose_nothing() {
        // top > mid > leaf (cy); a cycle a <-> b holding dan; flat holds eve only.
        let memberships = [
            member("top", "mid", MemberKind::Group),
            member("mid", "leaf", MemberKind::Group),
            member("leaf", "cy", MemberKind::User),
            member("mid", "ann", MemberKind::User),
            member("a", "b", MemberKind::Group),
            member("b", "a", MemberKind::Group),
            member("b", "dan", MemberKind::User),
            member("flat", "eve", MemberKind::User),
        ];
        let all = effective_pairs(memberships.iter());
        let nesting = nesting_pairs(memberships.iter());
        assert!(!nesting.group_index.contains_key("flat"));
        let mut expected: Vec<_> = all.through_nesting_only().collect();
        let mut got: Vec<_> = nesting.through_nesting_only().collect();
        expected.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(
            got,
            [("a", "dan"), ("mid", "cy"), ("top", "ann"), ("top", "cy")]
        );
    }
}
