//! The mapping pipeline: `project(mirror, mapping) -> desired slice of the target`, then a
//! diff of that slice against what the target holds gives the [`plan::Plan`].
//!
//! In this version the projection is a pass-through of the common model (the filters,
//! attribute mapping and group rules of `mappings/*.toml` plug in here, in
//! [`project`], without touching the mirror, plan or apply code around it).

pub mod flatten;
pub mod plan;

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::MappingConfig;
use crate::model::{MemberKind, SourceGroup, SourceUser, content_hash};

/// Bump when the projection's logic changes, so that every connector re-projects once.
const PROJECTION_VERSION: u32 = 1;

/// A user as the target should hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetUser {
    pub external_id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub attributes: Map<String, Value>,
}

/// A group as the target should hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetGroup {
    pub external_id: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Map<String, Value>,
}

/// A direct membership, by external ids of the connector's source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesiredMembership {
    pub group: String,
    pub kind: MemberKind,
    pub member: String,
}

/// The slice of the target that one connector should own.
#[derive(Debug, Default)]
pub struct Desired {
    pub users: Vec<TargetUser>,
    pub groups: Vec<TargetGroup>,
    pub memberships: Vec<DesiredMembership>,
    /// Records left out, each with the reason.
    pub skipped: Vec<String>,
}

/// A fingerprint of everything in the mapping that changes the projection: when it
/// differs from the one the target was built with, the whole mirror is re-projected.
pub fn mapping_fingerprint(mapping: &MappingConfig) -> String {
    content_hash(&(PROJECTION_VERSION, mapping.on_remove.as_str()))
}

/// Projects a connector's mirrored source through its mapping. Takes the records by value
/// so that their attributes move into the target records instead of being copied.
pub fn project(
    _mapping: &MappingConfig,
    users: Vec<SourceUser>,
    groups: Vec<SourceGroup>,
) -> Desired {
    let mut desired = Desired::default();
    let mut user_ids = HashSet::with_capacity(users.len());
    for user in users {
        match project_user(user) {
            Ok(target) => {
                user_ids.insert(target.external_id.clone());
                desired.users.push(target);
            }
            Err((id, reason)) => desired
                .skipped
                .push(format!("user {id:?} skipped: {reason}")),
        }
    }
    let group_ids: HashSet<String> = groups
        .iter()
        .filter(|g| !g.display_name.trim().is_empty())
        .map(|g| g.external_id.clone())
        .collect();
    for group in groups {
        if !group_ids.contains(&group.external_id) {
            desired.skipped.push(format!(
                "group {:?} skipped: its name is empty",
                group.external_id
            ));
            continue;
        }
        for member in &group.members {
            let present = match member.kind {
                MemberKind::User => user_ids.contains(&member.id),
                MemberKind::Group => group_ids.contains(&member.id),
            };
            if present {
                desired.memberships.push(DesiredMembership {
                    group: group.external_id.clone(),
                    kind: member.kind,
                    member: member.id.clone(),
                });
            }
        }
        desired.groups.push(TargetGroup {
            name: group.display_name.trim().to_string(),
            external_id: group.external_id,
            description: group.description,
            attributes: group.attributes,
        });
    }
    desired
}

fn project_user(user: SourceUser) -> Result<TargetUser, (String, &'static str)> {
    let user_name = user.user_name.trim();
    if user_name.is_empty() {
        return Err((user.external_id, "its user name is empty"));
    }
    let display_name =
        user.display_name
            .clone()
            .or_else(|| match (&user.given_name, &user.family_name) {
                (Some(g), Some(f)) => Some(format!("{g} {f}")),
                (Some(n), None) | (None, Some(n)) => Some(n.clone()),
                (None, None) => None,
            });
    Ok(TargetUser {
        user_name: user_name.to_string(),
        email: user.primary_email().map(str::to_string),
        display_name,
        external_id: user.external_id,
        given_name: user.given_name,
        family_name: user.family_name,
        active: user.active,
        attributes: user.attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnRemove;
    use crate::model::MemberRef;

    fn mapping() -> MappingConfig {
        MappingConfig {
            name: "m".into(),
            file: "m.toml".into(),
            on_remove: OnRemove::Disable,
            max_deletes: 500,
            max_delete_percent: 20.0,
        }
    }

    fn user(id: &str, name: &str) -> SourceUser {
        SourceUser {
            external_id: id.into(),
            user_name: name.into(),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            display_name: None,
            emails: vec![],
            active: true,
            attributes: Map::new(),
        }
    }

    #[test]
    fn pass_through_keeps_members_that_were_projected() {
        let users = vec![user("u1", "ada"), user("u2", "  ")];
        let groups = vec![SourceGroup {
            external_id: "g1".into(),
            display_name: "Eng".into(),
            description: None,
            members: vec![MemberRef::user("u1"), MemberRef::user("u2")],
            attributes: Map::new(),
        }];
        let desired = project(&mapping(), users, groups);
        assert_eq!(desired.users.len(), 1);
        assert_eq!(
            desired.users[0].display_name.as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(
            desired.skipped,
            vec!["user \"u2\" skipped: its user name is empty"]
        );
        assert_eq!(
            desired.memberships,
            vec![DesiredMembership {
                group: "g1".into(),
                kind: MemberKind::User,
                member: "u1".into()
            }]
        );
    }

    #[test]
    fn fingerprint_follows_on_remove() {
        let mut other = mapping();
        other.on_remove = OnRemove::Delete;
        assert_ne!(mapping_fingerprint(&mapping()), mapping_fingerprint(&other));
    }
}
