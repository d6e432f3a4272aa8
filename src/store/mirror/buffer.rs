//! Collects what a connector read during one run, checking the batches as they arrive:
//! duplicate external ids in one full snapshot are an error (in a delta, or a full read
//! whose connector allows repeats, where an API may send an object twice, the last
//! occurrence wins, and a removal after an update removes);
//! a group listing itself, and members that reference records the read never produced, are
//! warnings (given as the merge reads the groups back).
//!
//! Records are held serialised, the way the mirror stores them, in a [`Spool`] (memory up
//! to a limit, then a temporary file); the buffer itself keeps each record's id, where its
//! bytes are and, for users, their content hash. A parsed record takes several times the
//! memory of its JSON, and a million users' JSON alone is about 400 MB (see
//! docs/PERFORMANCE.md).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::connectors::{BatchSink, ReadMode, SinkError, SourceBatch};
use crate::db::DbError;
use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser};

use crate::spool::{self, MEMORY_LIMIT, Spool, SpoolReader, Spot};

/// A record as read: its id, where its JSON is in the spool, and the content hash of that
/// JSON (for a user, what the mirror compares; a group's is taken again after the member
/// checks).
#[derive(Debug, Clone)]
pub struct Buffered {
    pub external_id: Box<str>,
    spot: Spot,
    hash: u128,
}

impl Buffered {
    /// The content hash, as the mirror stores it (`model::content_hash` of the record).
    pub fn hash(&self) -> String {
        crate::model::hash_text(self.hash)
    }
}

/// The records of one kind: in the order read, their positions by id, and the ids a
/// delta reported removed.
#[derive(Default)]
struct Records {
    read: Vec<Buffered>,
    positions: HashMap<Box<str>, usize>,
    removed: Vec<String>,
}

/// The records of one read, held until the read is known to be complete.
pub struct ReadBuffer {
    spool: Spool,
    /// Serialisation scratch, so that a record's JSON is not allocated per record.
    scratch: Vec<u8>,
    users: Records,
    groups: Records,
    pub member_changes: Vec<(String, Vec<MemberRef>, Vec<MemberRef>)>,
    /// Delta reads that listed every id of a kind ([`SourceBatch::Present`]): those ids.
    pub present_users: Option<HashSet<String>>,
    pub present_groups: Option<HashSet<String>>,
    /// The first id sent twice, if any.
    duplicate: Option<String>,
    /// The connector said its read may repeat records ([`BatchSink::allow_repeats`]).
    repeats_allowed: bool,
    pub records_read: u64,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self::with_memory_limit(MEMORY_LIMIT)
    }
}

impl ReadBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer that moves its records to a temporary file past `limit` bytes.
    pub fn with_memory_limit(limit: usize) -> Self {
        ReadBuffer {
            spool: Spool::new(limit),
            scratch: Vec::with_capacity(1024),
            users: Records::default(),
            groups: Records::default(),
            member_changes: Vec::new(),
            present_users: None,
            present_groups: None,
            duplicate: None,
            repeats_allowed: false,
            records_read: 0,
        }
    }

    /// Users and groups held (after [`ReadBuffer::finish`], those not removed later in
    /// the read).
    pub fn user_count(&self) -> usize {
        self.users.read.len()
    }

    pub fn group_count(&self) -> usize {
        self.groups.read.len()
    }

    /// Whether the records went to a temporary file.
    pub fn spilled(&self) -> bool {
        self.spool.spilled()
    }

    /// Checks the read once it is complete: for a full read, an id sent twice fails the
    /// read, unless the connector allowed repeats. Records removed later in the read than
    /// they were sent are dropped, and no longer count as records of the read. Members are
    /// checked as the merge reads the groups back ([`Drain::group`]).
    pub fn finish(&mut self, mode: ReadMode) -> Result<(), SinkError> {
        if mode == ReadMode::Full
            && !self.repeats_allowed
            && let Some(id) = &self.duplicate
        {
            return Err(SinkError(format!("duplicate id {id:?} in one snapshot")));
        }
        for records in [&mut self.users, &mut self.groups] {
            let removed: HashSet<&str> = records.removed.iter().map(String::as_str).collect();
            if !removed.is_empty() {
                records
                    .read
                    .retain(|r| !removed.contains(r.external_id.as_ref()));
                // What is left of `positions` only says which ids the read holds (a
                // group's members are checked against it).
                records
                    .positions
                    .retain(|id, _| !removed.contains(id.as_ref()));
            }
        }
        Ok(())
    }

    /// The read, finished as a read of `mode`, for the merge to take apart.
    pub(super) fn drain(self, mode: ReadMode) -> Result<Drain, DbError> {
        let reader = self
            .spool
            .reader()
            .map_err(|source| DbError::spool("opening the read for the merge", source))?;
        Ok(Drain {
            users: self.users.read,
            groups: self.groups.read,
            removed_users: self.users.removed,
            removed_groups: self.groups.removed,
            member_changes: self.member_changes,
            present_users: self.present_users,
            present_groups: self.present_groups,
            reader,
            user_ids: self.users.positions,
            group_ids: self.groups.positions,
            mode,
        })
    }

    /// Serialises `record` into the spool.
    fn spool<T: serde::Serialize>(
        &mut self,
        record: &T,
        external_id: &str,
        noun: &str,
    ) -> Result<Buffered, SinkError> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, record).map_err(|e| {
            SinkError(format!(
                "{noun} {external_id:?} could not be serialised: {e}"
            ))
        })?;
        let spot = self.spool.push(&self.scratch).map_err(|e| {
            SinkError(format!(
                "{noun} {external_id:?} could not be set aside in a temporary file in {}: {e}",
                spool::directory()
            ))
        })?;
        Ok(Buffered {
            external_id: external_id.into(),
            spot,
            hash: crate::model::hash_value(&self.scratch),
        })
    }
}

/// A finished read, taken apart by the merge: the records in the order read, read back
/// one at a time.
pub(super) struct Drain {
    pub users: Vec<Buffered>,
    pub groups: Vec<Buffered>,
    pub removed_users: Vec<String>,
    pub removed_groups: Vec<String>,
    pub member_changes: Vec<(String, Vec<MemberRef>, Vec<MemberRef>)>,
    pub present_users: Option<HashSet<String>>,
    pub present_groups: Option<HashSet<String>>,
    reader: SpoolReader,
    user_ids: HashMap<Box<str>, usize>,
    group_ids: HashMap<Box<str>, usize>,
    mode: ReadMode,
}

impl Drain {
    /// The user at `buffered`, and its JSON as read.
    pub fn user(&mut self, buffered: &Buffered) -> Result<(SourceUser, Box<str>), DbError> {
        let bytes = self.bytes(buffered)?;
        let unreadable = |e: &dyn std::fmt::Display| unreadable(buffered, e);
        let text = std::str::from_utf8(bytes).map_err(|e| unreadable(&e))?;
        let user = serde_json::from_str(text).map_err(|e| unreadable(&e))?;
        Ok((user, Box::from(text)))
    }

    /// The group at `buffered`, its members checked: a self-membership is dropped, and so
    /// is, in a full read, a member that is not a record of the read (each with a warning
    /// in `warnings`); a member listed twice is kept once. For a delta, references are
    /// checked against the mirror when it is merged.
    pub fn group(
        &mut self,
        buffered: &Buffered,
        warnings: &mut Vec<String>,
    ) -> Result<SourceGroup, DbError> {
        let bytes = self.bytes(buffered)?;
        let mut group: SourceGroup =
            serde_json::from_slice(bytes).map_err(|e| unreadable(buffered, &e))?;
        let group_id = &group.external_id;
        let full = self.mode == ReadMode::Full;
        let (user_ids, group_ids) = (&self.user_ids, &self.group_ids);
        group.members.retain(|member| {
            if member.kind == MemberKind::Group && &member.id == group_id {
                warnings.push(format!(
                    "group {group_id:?} lists itself as a member; the self-membership is ignored"
                ));
                return false;
            }
            if !full {
                return true;
            }
            let known = match member.kind {
                MemberKind::User => user_ids.contains_key(member.id.as_str()),
                MemberKind::Group => group_ids.contains_key(member.id.as_str()),
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
        Ok(group)
    }

    fn bytes(&mut self, buffered: &Buffered) -> Result<&[u8], DbError> {
        self.reader
            .get(buffered.spot)
            .map_err(|source| DbError::spool("reading a record of the read back", source))
    }
}

/// A record set aside that does not read back as one: the spool's bytes changed.
fn unreadable(buffered: &Buffered, error: &dyn std::fmt::Display) -> DbError {
    let message = format!("record {:?}: {error}", buffered.external_id);
    let source = std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    DbError::spool("reading a record of the read back", source)
}

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

impl Records {
    /// Keeps `record`: it replaces one read before under its id (noting the first id sent
    /// twice in `duplicate`), and its id is no longer removed when a removal came earlier
    /// in the read.
    fn keep(&mut self, duplicate: &mut Option<String>, record: Buffered) {
        let id = &record.external_id;
        if !self.removed.is_empty() {
            self.removed.retain(|r| r.as_str() != id.as_ref());
        }
        match self.positions.get(id) {
            Some(&pos) => {
                duplicate.get_or_insert_with(|| id.to_string());
                self.read[pos] = record;
            }
            None => {
                self.positions.insert(id.clone(), self.read.len());
                self.read.push(record);
            }
        }
    }
}

#[async_trait]
impl BatchSink for ReadBuffer {
    fn allow_repeats(&mut self) {
        self.repeats_allowed = true;
    }

    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        let n = batch.len();
        match batch {
            SourceBatch::Users(users) => {
                check_ids(&users, "user", |u| (&u.external_id, &u.user_name))?;
                for user in &users {
                    let buffered = self.spool(user, &user.external_id, "user")?;
                    self.users.keep(&mut self.duplicate, buffered);
                }
            }
            SourceBatch::Groups(groups) => {
                check_ids(&groups, "group", |g| (&g.external_id, &g.display_name))?;
                for group in &groups {
                    let buffered = self.spool(group, &group.external_id, "group")?;
                    self.groups.keep(&mut self.duplicate, buffered);
                }
            }
            SourceBatch::Removed { users, groups } => {
                self.users.removed.extend(users);
                self.groups.removed.extend(groups);
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

    /// Reads `batches` as one read of `mode` into a buffer that keeps `limit` bytes in
    /// memory, and takes it apart as the merge does.
    async fn drained(batches: Vec<SourceBatch>, mode: ReadMode, limit: usize) -> Drain {
        let mut buffer = ReadBuffer::with_memory_limit(limit);
        for batch in batches {
            buffer.accept(batch).await.unwrap();
        }
        buffer.finish(mode).unwrap();
        assert_eq!(buffer.spilled(), limit != usize::MAX);
        buffer.drain(mode).unwrap()
    }

    #[tokio::test]
    async fn a_buffered_user_hashes_and_reads_back_as_the_user_itself() {
        let mut u = user("u1");
        u.display_name = Some("Zoë \"Z\" Ångström\u{1F600}".into());
        u.attributes = serde_json::json!({
            "float": 0.1, "big": 18446744073709551615u64, "negative": -3,
            "nested": {"b": [1, null, true], "a": "\n"}
        })
        .as_object()
        .unwrap()
        .clone();
        // Held in memory, and set aside in a file.
        for limit in [usize::MAX, 0] {
            let batches = vec![SourceBatch::Users(vec![u.clone()])];
            let mut read = drained(batches, ReadMode::Full, limit).await;
            let buffered = read.users[0].clone();
            assert_eq!(buffered.external_id.as_ref(), "u1");
            assert_eq!(buffered.hash(), crate::model::content_hash(&u));
            let (back, data) = read.user(&buffered).unwrap();
            assert_eq!(back, u);
            assert_eq!(data.as_ref(), serde_json::to_string(&u).unwrap());
            assert_eq!(crate::model::content_hash(&back), buffered.hash());
        }
    }

    #[tokio::test]
    async fn a_read_set_aside_in_a_file_reads_back_as_one_held_in_memory() {
        let batches = || {
            vec![
                SourceBatch::Users((0..300).map(|i| user(&format!("u{i}"))).collect()),
                SourceBatch::Groups(
                    (0..30)
                        .map(|g| {
                            let members = (0..10)
                                .map(|m| MemberRef::user(format!("u{}", g * 10 + m)))
                                .collect();
                            group(&format!("g{g}"), members)
                        })
                        .collect(),
                ),
            ]
        };
        // All in memory; all in a file; the first records in memory, then moved.
        let mut reads = Vec::new();
        for limit in [usize::MAX, 0, 2_000] {
            let mut read = drained(batches(), ReadMode::Full, limit).await;
            let users = std::mem::take(&mut read.users);
            let groups = std::mem::take(&mut read.groups);
            let mut warnings = Vec::new();
            let users: Vec<(SourceUser, String)> = users
                .iter()
                .map(|b| (read.user(b).unwrap().0, b.hash()))
                .collect();
            let groups: Vec<SourceGroup> = groups
                .iter()
                .map(|b| read.group(b, &mut warnings).unwrap())
                .collect();
            assert!(warnings.is_empty(), "{warnings:?}");
            reads.push((users, groups));
        }
        assert_eq!(reads[0].0.len(), 300);
        assert_eq!(reads[0].1[29].members.len(), 10);
        assert_eq!(reads[0], reads[1]);
        assert_eq!(reads[0], reads[2]);
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
        let mut read = drained(batches, ReadMode::Delta, usize::MAX).await;
        let names: Vec<String> = std::mem::take(&mut read.users)
            .iter()
            .map(|u| read.user(u).unwrap().0.user_name)
            .collect();
        assert_eq!(names, vec!["second@example.com", "u3@example.com"]);
        assert_eq!(read.removed_users, vec!["u2".to_string()]);
    }

    /// Graph's initial delta round is a full read that may repeat a record: allowed, the
    /// last occurrence wins and a later removal removes, and a removed user is no longer
    /// a member any group may name.
    #[tokio::test]
    async fn a_full_read_that_allows_repeats_keeps_the_last_occurrence() {
        let mut renamed = user("u1");
        renamed.user_name = "second@example.com".into();
        let mut buffer = ReadBuffer::new();
        buffer.allow_repeats();
        for batch in [
            SourceBatch::Users(vec![user("u1"), user("u2")]),
            SourceBatch::Users(vec![renamed]),
            SourceBatch::Removed {
                users: vec!["u2".into()],
                groups: vec![],
            },
            SourceBatch::Groups(vec![group(
                "g1",
                vec![MemberRef::user("u1"), MemberRef::user("u2")],
            )]),
        ] {
            buffer.accept(batch).await.unwrap();
        }
        buffer.finish(ReadMode::Full).unwrap();
        let mut read = buffer.drain(ReadMode::Full).unwrap();
        let names: Vec<String> = std::mem::take(&mut read.users)
            .iter()
            .map(|u| read.user(u).unwrap().0.user_name)
            .collect();
        assert_eq!(names, vec!["second@example.com"]);
        assert_eq!(read.removed_users, vec!["u2".to_string()]);
        let groups = std::mem::take(&mut read.groups);
        let mut warnings = Vec::new();
        let g1 = read.group(&groups[0], &mut warnings).unwrap();
        assert_eq!(g1.members, vec![MemberRef::user("u1")]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[tokio::test]
    async fn self_membership_and_dangling_members_are_dropped_with_warnings() {
        let members = vec![
            MemberRef::user("u1"),
            MemberRef::user("u1"),
            MemberRef::group("g1"),
            MemberRef::user("ghost"),
        ];
        let batches = || {
            vec![
                SourceBatch::Users(vec![user("u1")]),
                SourceBatch::Groups(vec![group("g1", members.clone())]),
            ]
        };
        let mut read = drained(batches(), ReadMode::Full, usize::MAX).await;
        let mut warnings = Vec::new();
        let g1 = read.groups[0].clone();
        assert_eq!(
            read.group(&g1, &mut warnings).unwrap().members,
            vec![MemberRef::user("u1")]
        );
        assert_eq!(
            warnings,
            vec![
                "group \"g1\" lists itself as a member; the self-membership is ignored",
                "group \"g1\" has member user \"ghost\" that is not in the source; the member is ignored",
            ]
        );
        // A delta's references are checked against the mirror, not the read.
        let mut read = drained(batches(), ReadMode::Delta, usize::MAX).await;
        let mut warnings = Vec::new();
        let g1 = read.groups[0].clone();
        assert_eq!(
            read.group(&g1, &mut warnings).unwrap().members,
            vec![MemberRef::user("u1"), MemberRef::user("ghost")]
        );
        assert_eq!(warnings.len(), 1);
    }

    #[tokio::test]
    async fn records_read_counts_records_and_removals_not_id_listings() {
        let mut buffer = ReadBuffer::new();
        let batches = vec![
            SourceBatch::Users(vec![user("u1")]),
            SourceBatch::Groups(vec![group("g1", vec![])]),
            SourceBatch::Removed {
                users: vec!["u9".into()],
                groups: vec![],
            },
            SourceBatch::Present {
                kind: MemberKind::User,
                ids: vec!["u1".into(), "u2".into()],
            },
        ];
        for batch in batches {
            buffer.accept(batch).await.unwrap();
        }
        assert_eq!(buffer.records_read, 3);
    }
}
