//! What a merge changed in a connector's groups, for the scope phase: which groups were
//! written or removed, which users joined or left them, which groups changed their own
//! record (a rename), which groups gained or lost groups (the nesting), and which went.
//! A plan then covers the affected users and groups only.

use std::collections::{BTreeSet, HashSet};

use crate::model::{MemberKind, MemberRef, SourceGroup};

/// The group side of a merge (see the module doc).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupChanges {
    /// External ids of the groups written (created or changed) or removed.
    pub groups: Vec<String>,
    /// Users who joined or left one of them directly.
    pub users: BTreeSet<String>,
    /// Groups whose own record changed (name, description, attributes): rules that read
    /// group names may now judge every user below them differently.
    pub records: Vec<String>,
    /// Groups that gained or lost groups (new groups holding groups included).
    pub parents: Vec<String>,
    /// The groups they gained or lost: every user below them may hold other groups now.
    pub children: BTreeSet<String>,
    /// Groups removed: the groups that held them lose a nesting row.
    pub gone: Vec<String>,
}

impl GroupChanges {
    /// Takes in one group written by the merge, as it was (`None`: new) and as it is.
    pub fn written(&mut self, before: Option<&SourceGroup>, after: &SourceGroup) {
        self.groups.push(after.external_id.clone());
        let members_after = members(after);
        let Some(before) = before else {
            if !members_after.1.is_empty() {
                self.parents.push(after.external_id.clone());
                self.children.extend(members_after.1.into_iter().cloned());
            }
            self.users.extend(members_after.0.into_iter().cloned());
            return;
        };
        let members_before = members(before);
        if members_before.1 != members_after.1 {
            self.parents.push(after.external_id.clone());
            self.children.extend(
                members_before
                    .1
                    .symmetric_difference(&members_after.1)
                    .map(|id| (*id).clone()),
            );
        }
        self.users.extend(
            members_before
                .0
                .symmetric_difference(&members_after.0)
                .map(|id| (*id).clone()),
        );
        if !same_record(before, after) {
            self.records.push(after.external_id.clone());
        }
    }

    /// Takes in one group the merge removed, as it was: its users and the users below
    /// its groups lose it.
    pub fn removed(&mut self, before: &SourceGroup) {
        self.groups.push(before.external_id.clone());
        self.gone.push(before.external_id.clone());
        let (users, groups) = members(before);
        self.users.extend(users.into_iter().cloned());
        self.children.extend(groups.into_iter().cloned());
    }

    /// Whether any group was written or removed.
    pub fn any(&self) -> bool {
        !self.groups.is_empty()
    }
}

/// A group's user members and group members, by id.
fn members(group: &SourceGroup) -> (HashSet<&String>, HashSet<&String>) {
    let ids = |kind: MemberKind| {
        group
            .members
            .iter()
            .filter(move |m: &&MemberRef| m.kind == kind)
            .map(|m| &m.id)
            .collect()
    };
    (ids(MemberKind::User), ids(MemberKind::Group))
}

/// Whether two versions of a group differ in nothing but their members.
fn same_record(a: &SourceGroup, b: &SourceGroup) -> bool {
    a.display_name == b.display_name
        && a.description == b.description
        && a.attributes == b.attributes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn group(id: &str, name: &str, members: Vec<MemberRef>) -> SourceGroup {
        SourceGroup {
            external_id: id.into(),
            display_name: name.into(),
            description: None,
            members,
            attributes: Map::new(),
        }
    }

    #[test]
    fn members_moving_names_the_users_that_moved() {
        let mut changes = GroupChanges::default();
        let before = group(
            "g1",
            "Eng",
            vec![MemberRef::user("u1"), MemberRef::user("u2")],
        );
        let after = group(
            "g1",
            "Eng",
            vec![MemberRef::user("u2"), MemberRef::user("u3")],
        );
        changes.written(Some(&before), &after);
        assert_eq!(changes.groups, ["g1"]);
        assert_eq!(changes.users.iter().collect::<Vec<_>>(), ["u1", "u3"]);
        assert!(changes.records.is_empty());
        assert!(changes.parents.is_empty() && changes.gone.is_empty());
    }

    #[test]
    fn a_rename_is_a_record_change_without_users() {
        let mut changes = GroupChanges::default();
        let before = group("g1", "Eng", vec![MemberRef::user("u1")]);
        let after = group("g1", "Engineering", vec![MemberRef::user("u1")]);
        changes.written(Some(&before), &after);
        assert_eq!(changes.records, ["g1"]);
        assert!(changes.users.is_empty() && changes.parents.is_empty());
    }

    #[test]
    fn nesting_names_the_parents_and_the_children_that_moved() {
        let mut changes = GroupChanges::default();
        changes.written(None, &group("g1", "New", vec![MemberRef::user("u1")]));
        assert_eq!(changes.users.iter().collect::<Vec<_>>(), ["u1"]);
        assert!(changes.parents.is_empty());

        changes.written(None, &group("g2", "Parent", vec![MemberRef::group("g1")]));
        assert_eq!(changes.parents, ["g2"]);
        assert_eq!(changes.children.iter().collect::<Vec<_>>(), ["g1"]);

        let mut moved = GroupChanges::default();
        let before = group(
            "g3",
            "P",
            vec![MemberRef::group("g1"), MemberRef::group("g4")],
        );
        let after = group(
            "g3",
            "P",
            vec![MemberRef::group("g2"), MemberRef::group("g4")],
        );
        moved.written(Some(&before), &after);
        assert_eq!(moved.parents, ["g3"]);
        assert_eq!(moved.children.iter().collect::<Vec<_>>(), ["g1", "g2"]);
        assert!(moved.gone.is_empty());

        let mut gone = GroupChanges::default();
        gone.removed(&group(
            "g9",
            "Old",
            vec![MemberRef::user("u7"), MemberRef::group("g8")],
        ));
        assert_eq!(gone.gone, ["g9"]);
        assert_eq!(gone.users.iter().collect::<Vec<_>>(), ["u7"]);
        assert_eq!(gone.children.iter().collect::<Vec<_>>(), ["g8"]);
        assert!(gone.any());
    }
}
