//! Collects what a connector read during one run, checking the batches as they arrive:
//! duplicate external ids in one full snapshot are an error (in a delta, where an API may
//! send an object twice, the last occurrence wins, and a removal after an update removes);
//! a group listing itself, and members that reference records the read never produced, are
//! warnings.
//!
//! Users are held serialised ([`BufferedUser`]): the mirror stores and hashes exactly
//! those bytes, and a parsed user with its source attributes takes several times the
//! memory of its JSON (at 100,000 users the buffer went from about 320 MiB to a third of
//! that; see docs/PERFORMANCE.md).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::connectors::{BatchSink, ReadMode, SinkError, SourceBatch};
use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser, hash_bytes};

/// A user as read, serialised the way the mirror stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferedUser {
    pub external_id: String,
    /// The user as JSON: what the mirror's `data` column holds.
    pub data: Box<str>,
}

impl BufferedUser {
    /// Serialises `user`, through `scratch` so that the text is allocated once, at its
    /// size (serialising straight into a `String` grows it several times, then shrinks it).
    pub fn new(user: &SourceUser, scratch: &mut Vec<u8>) -> Result<BufferedUser, SinkError> {
        let failed = |e: &dyn std::fmt::Display| {
            SinkError(format!(
                "user {:?} could not be serialised: {e}",
                user.external_id
            ))
        };
        scratch.clear();
        serde_json::to_writer(&mut *scratch, user).map_err(|e| failed(&e))?;
        let data = std::str::from_utf8(scratch).map_err(|e| failed(&e))?;
        Ok(BufferedUser {
            external_id: user.external_id.clone(),
            data: Box::from(data),
        })
    }

    /// The user's content hash: `model::content_hash` of the user.
    pub fn hash(&self) -> String {
        hash_bytes(self.data.as_bytes())
    }

    /// The user again.
    pub fn record(&self) -> Result<SourceUser, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}

/// The records of one read, held until the read is known to be complete.
#[derive(Default)]
pub struct ReadBuffer {
    pub users: Vec<BufferedUser>,
    pub groups: Vec<SourceGroup>,
    pub removed_users: Vec<String>,
    pub removed_groups: Vec<String>,
    pub member_changes: Vec<(String, Vec<MemberRef>, Vec<MemberRef>)>,
    /// Delta reads that listed every id of a kind ([`SourceBatch::Present`]): those ids.
    pub present_users: Option<HashSet<String>>,
    pub present_groups: Option<HashSet<String>>,
    /// external id -> position in `users` / `groups`.
    user_ids: HashMap<String, usize>,
    group_ids: HashMap<String, usize>,
    /// The first id sent twice, if any.
    duplicate: Option<String>,
    pub records_read: u64,
    pub warnings: Vec<String>,
}

impl ReadBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the read once it is complete. For a full read, an id sent twice fails the
    /// read and every member must be a record of this read; for a delta, references are
    /// checked against the mirror when it is merged. Dangling members and self-membership
    /// are dropped with a warning.
    pub fn finish(&mut self, mode: ReadMode) -> Result<(), SinkError> {
        if mode == ReadMode::Full
            && let Some(id) = &self.duplicate
        {
            return Err(SinkError(format!("duplicate id {id:?} in one snapshot")));
        }
        // Records removed later in a delta than they were sent are not upserted.
        let removed_users: HashSet<&String> = self.removed_users.iter().collect();
        self.users
            .retain(|u| !removed_users.contains(&u.external_id));
        let removed_groups: HashSet<&String> = self.removed_groups.iter().collect();
        self.groups
            .retain(|g| !removed_groups.contains(&g.external_id));
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
                    MemberKind::User => user_ids.contains_key(&member.id),
                    MemberKind::Group => group_ids.contains_key(&member.id),
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
        Ok(())
    }
}

/// One kind's records, their positions by external id, and the ids reported removed.
type Kind<'a, T> = (
    &'a mut Vec<T>,
    &'a mut HashMap<String, usize>,
    &'a mut Vec<String>,
);

/// Fails the read when a record of `batch` (`noun`; external id and name by
/// `id_and_name`) has an empty id.
fn check_ids<T>(
    batch: &[T],
    noun: &str,
    id_and_name: fn(&T) -> (&str, &str),
) -> Result<(), SinkError> {
    match batch.iter().map(id_and_name).find(|(id, _)| id.is_empty()) {
        Some((_, name)) => Err(SinkError(format!("{noun} {name:?} has an empty id"))),
        None => Ok(()),
    }
}

/// Buffers `records` of one kind (external id by `id_of`): each replaces one read before
/// under its id (noting the first id sent twice), and its id is no longer removed when a
/// removal came earlier in the read.
fn keep<T>(
    (records, positions, removed): Kind<'_, T>,
    duplicate: &mut Option<String>,
    batch: impl IntoIterator<Item = T>,
    id_of: fn(&T) -> &str,
) {
    for record in batch {
        let id = id_of(&record);
        if !removed.is_empty() {
            removed.retain(|r| r != id);
        }
        match positions.get(id) {
            Some(&pos) => {
                duplicate.get_or_insert_with(|| id.to_string());
                records[pos] = record;
            }
            None => {
                positions.insert(id.to_string(), records.len());
                records.push(record);
            }
        }
    }
}

#[async_trait]
impl BatchSink for ReadBuffer {
    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        let n = batch.len();
        match batch {
            SourceBatch::Users(users) => {
                check_ids(&users, "user", |u| (&u.external_id, &u.user_name))?;
                let mut scratch = Vec::with_capacity(1024);
                let users = users
                    .iter()
                    .map(|u| BufferedUser::new(u, &mut scratch))
                    .collect::<Result<Vec<_>, _>>()?;
                let kind = (&mut self.users, &mut self.user_ids, &mut self.removed_users);
                keep(kind, &mut self.duplicate, users, |u| &u.external_id);
            }
            SourceBatch::Groups(groups) => {
                let kind = (
                    &mut self.groups,
                    &mut self.group_ids,
                    &mut self.removed_groups,
                );
                check_ids(&groups, "group", |g| (&g.external_id, &g.display_name))?;
                keep(kind, &mut self.duplicate, groups, |g| &g.external_id);
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
            // Ids only, not records read.
            SourceBatch::Present { kind, ids } => {
                let present = match kind {
                    MemberKind::User => &mut self.present_users,
                    MemberKind::Group => &mut self.present_groups,
                };
                present.get_or_insert_with(HashSet::new).extend(ids);
                return Ok(());
            }
        }
        self.records_read += n as u64;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::Map;

    /// A bare active user `<id>@example.com`: the unit tests' one fixture of a source user.
    pub(crate) fn user(id: &str) -> SourceUser {
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

    #[test]
    fn a_buffered_user_hashes_and_reads_back_as_the_user_itself() {
        let mut u = user("u1");
        u.display_name = Some("Zoë \"Z\" Ångström\u{1F600}".into());
        u.attributes = serde_json::json!({
            "float": 0.1, "big": 18446744073709551615u64, "negative": -3,
            "nested": {"b": [1, null, true], "a": "\n"}
        })
        .as_object()
        .unwrap()
        .clone();
        let buffered = BufferedUser::new(&u, &mut Vec::new()).unwrap();
        assert_eq!(buffered.external_id, "u1");
        assert_eq!(buffered.hash(), crate::model::content_hash(&u));
        let back = buffered.record().unwrap();
        assert_eq!(back, u);
        assert_eq!(crate::model::content_hash(&back), buffered.hash());
    }

    #[tokio::test]
    async fn a_record_without_an_id_fails_the_read() {
        let mut buffer = ReadBuffer::new();
        let mut nameless = user("");
        nameless.user_name = "ann@example.com".into();
        let err = buffer
            .accept(SourceBatch::Users(vec![user("u1"), nameless]))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "user \"ann@example.com\" has an empty id");
        let err = buffer
            .accept(SourceBatch::Groups(vec![group("", vec![])]))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "group \"\" has an empty id");
    }

    #[tokio::test]
    async fn duplicate_ids_across_batches_fail_a_full_read() {
        let mut buffer = ReadBuffer::new();
        for _ in 0..2 {
            buffer
                .accept(SourceBatch::Users(vec![user("u1")]))
                .await
                .unwrap();
        }
        let err = buffer.finish(ReadMode::Full).unwrap_err();
        assert_eq!(err.to_string(), "duplicate id \"u1\" in one snapshot");
    }

    #[tokio::test]
    async fn in_a_delta_the_last_event_wins() {
        let mut buffer = ReadBuffer::new();
        let mut renamed = user("u1");
        renamed.user_name = "second@example.com".into();
        let batches = vec![
            SourceBatch::Users(vec![user("u1"), user("u2")]),
            SourceBatch::Users(vec![renamed]),
            SourceBatch::Removed {
                users: vec!["u2".into(), "u3".into()],
                groups: vec![],
            },
            SourceBatch::Users(vec![user("u3")]),
        ];
        for batch in batches {
            buffer.accept(batch).await.unwrap();
        }
        buffer.finish(ReadMode::Delta).unwrap();
        let names: Vec<String> = buffer
            .users
            .iter()
            .map(|u| u.record().unwrap().user_name)
            .collect();
        assert_eq!(names, vec!["second@example.com", "u3@example.com"]);
        assert_eq!(buffer.removed_users, vec!["u2".to_string()]);
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
        buffer.finish(ReadMode::Full).unwrap();
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
