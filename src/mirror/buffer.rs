//! Collects what a connector read during one run, checking the batches as they arrive:
//! duplicate external ids in one snapshot are an error; a group listing itself, and
//! members that reference records the read never produced, are warnings.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::connectors::{BatchSink, ReadMode, SinkError, SourceBatch};
use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser};

/// The records of one read, held until the read is known to be complete.
#[derive(Default)]
pub struct ReadBuffer {
    pub users: Vec<SourceUser>,
    pub groups: Vec<SourceGroup>,
    pub removed_users: Vec<String>,
    pub removed_groups: Vec<String>,
    pub member_changes: Vec<(String, Vec<MemberRef>, Vec<MemberRef>)>,
    user_ids: HashSet<String>,
    group_ids: HashSet<String>,
    pub records_read: u64,
    pub warnings: Vec<String>,
}

impl ReadBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks references once the whole read is in. For a full read every member must be
    /// a record of this read; for a delta, references are checked later against the mirror.
    /// Dangling members and self-membership are dropped with a warning.
    pub fn finish(&mut self, mode: ReadMode) {
        let mut warnings = Vec::new();
        for group in &mut self.groups {
            let group_id = group.external_id.clone();
            let user_ids = &self.user_ids;
            let group_ids = &self.group_ids;
            group.members.retain(|member| {
                if member.kind == MemberKind::Group && member.id == group_id {
                    warnings.push(format!(
                        "group {group_id:?} lists itself as a member; the self-membership is ignored"
                    ));
                    return false;
                }
                if mode == ReadMode::Delta {
                    return true;
                }
                let known = match member.kind {
                    MemberKind::User => user_ids.contains(&member.id),
                    MemberKind::Group => group_ids.contains(&member.id),
                };
                if !known {
                    warnings.push(format!(
                        "group {group_id:?} has member {} {:?} that is not in the source; the member is ignored",
                        member.kind.as_str(),
                        member.id
                    ));
                }
                known
            });
            let mut seen = HashSet::with_capacity(group.members.len());
            group.members.retain(|m| seen.insert(m.clone()));
        }
        self.warnings.extend(warnings);
    }
}

#[async_trait]
impl BatchSink for ReadBuffer {
    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        let n = batch.len();
        match batch {
            SourceBatch::Users(users) => {
                for user in users {
                    if user.external_id.is_empty() {
                        return Err(SinkError(format!(
                            "user {:?} has an empty id",
                            user.user_name
                        )));
                    }
                    if !self.user_ids.insert(user.external_id.clone()) {
                        return Err(SinkError(format!(
                            "duplicate user id {:?} in one snapshot",
                            user.external_id
                        )));
                    }
                    self.users.push(user);
                }
            }
            SourceBatch::Groups(groups) => {
                for group in groups {
                    if group.external_id.is_empty() {
                        return Err(SinkError(format!(
                            "group {:?} has an empty id",
                            group.display_name
                        )));
                    }
                    if !self.group_ids.insert(group.external_id.clone()) {
                        return Err(SinkError(format!(
                            "duplicate group id {:?} in one snapshot",
                            group.external_id
                        )));
                    }
                    self.groups.push(group);
                }
            }
            SourceBatch::Removed { users, groups } => {
                self.removed_users.extend(users);
                self.removed_groups.extend(groups);
            }
            SourceBatch::MemberChanges {
                group,
                added,
                removed,
            } => self.member_changes.push((group, added, removed)),
        }
        self.records_read += n as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn user(id: &str) -> SourceUser {
        SourceUser {
            external_id: id.into(),
            user_name: format!("{id}@example.com"),
            given_name: None,
            family_name: None,
            display_name: None,
            emails: vec![],
            active: true,
            attributes: Map::new(),
        }
    }

    fn group(id: &str, members: Vec<MemberRef>) -> SourceGroup {
        SourceGroup {
            external_id: id.into(),
            display_name: id.into(),
            description: None,
            members,
            attributes: Map::new(),
        }
    }

    #[tokio::test]
    async fn duplicate_ids_across_batches_are_refused() {
        let mut buffer = ReadBuffer::new();
        buffer
            .accept(SourceBatch::Users(vec![user("u1")]))
            .await
            .unwrap();
        let err = buffer
            .accept(SourceBatch::Users(vec![user("u1")]))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "duplicate user id \"u1\" in one snapshot");
    }

    #[tokio::test]
    async fn self_membership_and_dangling_members_are_dropped_with_warnings() {
        let mut buffer = ReadBuffer::new();
        buffer
            .accept(SourceBatch::Users(vec![user("u1")]))
            .await
            .unwrap();
        buffer
            .accept(SourceBatch::Groups(vec![group(
                "g1",
                vec![
                    MemberRef::user("u1"),
                    MemberRef::user("u1"),
                    MemberRef::group("g1"),
                    MemberRef::user("ghost"),
                ],
            )]))
            .await
            .unwrap();
        buffer.finish(ReadMode::Full);
        assert_eq!(buffer.groups[0].members, vec![MemberRef::user("u1")]);
        assert_eq!(
            buffer.warnings,
            vec![
                "group \"g1\" lists itself as a member; the self-membership is ignored",
                "group \"g1\" has member user \"ghost\" that is not in the source; the member is ignored",
            ]
        );
        assert_eq!(buffer.records_read, 2);
    }
}
