//! What a plan amounts to: its counts as recorded on the run, the membership removals the
//! safety limits weigh, and whether it changes anything at all.

use serde::Serialize;

use std::collections::HashSet;

use super::{Plan, effective_pairs};
use crate::pipeline::settings::OnRemove;

/// Counts of a plan, as recorded on the run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    pub users_created: u64,
    pub users_updated: u64,
    pub users_disabled: u64,
    pub users_deleted: u64,
    pub groups_created: u64,
    pub groups_updated: u64,
    pub groups_deleted: u64,
    pub memberships_added: u64,
    pub memberships_removed: u64,
    pub conflicts: u64,
    pub warnings: u64,
}

impl PlanCounts {
    /// The counts' names (the run record's columns), in the order of [`PlanCounts::fields_mut`].
    pub const NAMES: [&'static str; 11] = [
        "users_created",
        "users_updated",
        "users_disabled",
        "users_deleted",
        "groups_created",
        "groups_updated",
        "groups_deleted",
        "memberships_added",
        "memberships_removed",
        "conflicts",
        "warnings",
    ];

    /// The counts in the order of [`PlanCounts::NAMES`], to set them one by one.
    pub fn fields_mut(&mut self) -> [&mut u64; 11] {
        [
            &mut self.users_created,
            &mut self.users_updated,
            &mut self.users_disabled,
            &mut self.users_deleted,
            &mut self.groups_created,
            &mut self.groups_updated,
            &mut self.groups_deleted,
            &mut self.memberships_added,
            &mut self.memberships_removed,
            &mut self.conflicts,
            &mut self.warnings,
        ]
    }

    /// The counts in the order of [`PlanCounts::NAMES`].
    pub fn values(mut self) -> [u64; 11] {
        self.fields_mut().map(|count| *count)
    }

    /// Target rows the plan writes: users, groups and memberships created, updated or
    /// removed (conflicts and warnings are not writes).
    pub fn writes(self) -> u64 {
        self.values().iter().take(9).sum()
    }
}

/// `users_created=12 users_updated=0 ...`: the counts as one log field, readable in text
/// logs and splittable in JSON ones (a `Debug` dump names the Rust type).
impl std::fmt::Display for PlanCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, value)) in Self::NAMES.iter().zip(self.values()).enumerate() {
            let gap = if i == 0 { "" } else { " " };
            write!(f, "{gap}{name}={value}")?;
        }
        Ok(())
    }
}

impl Plan {
    pub fn counts(&self) -> PlanCounts {
        let removals = self.user_removals.len() as u64;
        let (disabled, deleted) = match self.on_remove {
            Some(OnRemove::Delete) => (0, removals),
            _ => (removals, 0),
        };
        PlanCounts {
            users_created: self.user_creates.len() as u64,
            users_updated: self.user_updates.len() as u64,
            users_disabled: disabled,
            users_deleted: deleted,
            groups_created: (self.group_creates.len() + self.managed_creates.len()) as u64,
            groups_updated: self.group_updates.len() as u64,
            groups_deleted: self.group_deletes.len() as u64,
            memberships_added: self.membership_adds.len() as u64,
            memberships_removed: self.membership_removes.len() as u64,
            conflicts: self.conflicts.len() as u64,
            warnings: self.warnings.len() as u64,
        }
    }

    /// Membership removals from users and groups that stay: those of removed users,
    /// deleted groups and members of deleted groups are counted by the deletion limits.
    pub fn staying_membership_removals(&self) -> Vec<&(String, String)> {
        let leaving: HashSet<&str> = self
            .user_removals
            .iter()
            .chain(&self.group_deletes)
            .map(|r| r.id.as_str())
            .collect();
        self.membership_removes
            .iter()
            .filter(|(group, member)| {
                !leaving.contains(group.as_str()) && !leaving.contains(member.as_str())
            })
            .collect()
    }

    /// Of `removes`, those that take access away: a user removed from a group it is no
    /// longer in, even through nesting, after the plan; a nested group removed from a
    /// group while some of its users are not otherwise in it. A switch between kept and
    /// flattened nesting rewrites direct memberships and takes nothing away.
    pub fn access_removals(&self, removes: &[&(String, String)]) -> u64 {
        let after = effective_pairs(self.membership_adds.iter().chain(&self.membership_kept));
        let has = |group: &str, user: &str| -> bool {
            match (after.group_index.get(group), after.user_index.get(user)) {
                (Some(&g), Some(&u)) => after.pairs.binary_search(&(g, u)).is_ok(),
                _ => false,
            }
        };
        let users_of = |group: &str| -> &[(u32, u32)] {
            match after.group_index.get(group) {
                Some(&g) => {
                    let start = after.pairs.partition_point(|&(pg, _)| pg < g);
                    let end = after.pairs.partition_point(|&(pg, _)| pg <= g);
                    &after.pairs[start..end]
                }
                None => &[],
            }
        };
        removes
            .iter()
            .filter(|(group, member)| {
                if self.own_group_ids.contains(member) {
                    users_of(member)
                        .iter()
                        .any(|&(_, u)| !has(group, after.users[u as usize]))
                } else {
                    !has(group, member)
                }
            })
            .count() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.user_creates.is_empty()
            && self.managed_creates.is_empty()
            && self.user_updates.is_empty()
            && self.user_removals.is_empty()
            && self.group_creates.is_empty()
            && self.group_updates.is_empty()
            && self.group_deletes.is_empty()
            && self.membership_adds.is_empty()
            && self.membership_removes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::PlanCounts;

    #[test]
    fn counts_show_as_name_value_pairs_for_logs() {
        let counts = PlanCounts {
            users_created: 12,
            memberships_added: 18,
            ..PlanCounts::default()
        };
        assert_eq!(
            counts.to_string(),
            "users_created=12 users_updated=0 users_disabled=0 users_deleted=0 \
             groups_created=0 groups_updated=0 groups_deleted=0 memberships_added=18 \
             memberships_removed=0 conflicts=0 warnings=0"
        );
    }
}
