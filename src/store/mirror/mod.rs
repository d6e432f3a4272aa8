//! The mirror: the stored last-known state of each connector's source (normalised, nothing
//! filtered), plus the connector's delta checkpoint and the generation counters that say
//! whether the target has caught up with it.
//!
//! A pull run collects what the connector read in a [`ReadBuffer`], then [`merge`]s it
//! into the mirror inside the run's transaction: changed records (by content hash) are
//! upserted, and only a complete read removes: a full one what it did not see, a delta
//! what it reported removed or left out of a complete id listing (`SourceBatch::Present`).

mod around;
mod buffer;
mod group_changes;
pub mod query;
mod query_values;
mod store;
pub mod values;

pub use around::{load_groups_around, users_below};
use buffer::Drain;
pub use buffer::ReadBuffer;
#[cfg(test)]
pub(crate) use buffer::tests::user as test_user;
pub use group_changes::GroupChanges;
pub use store::{
    MirrorState, delete_groups, delete_users, load_groups_by_ids, load_state, load_users_by_ids,
    save_state, save_state_into, upsert_groups, upsert_users,
};
pub(crate) use store::{
    Mirrored, ToWrite, for_each, hashes, ids, load_all, rewrite_groups_and_delete, upsert_at,
};

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use crate::connectors::{ReadMode, ReadSummary};
use crate::db::DbError;
use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser, content_hash};

/// What a merge changed in the mirror.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// What was dropped while merging: self-memberships, members that are not records
    /// of a full read, member changes for groups never seen.
    pub warnings: Vec<String>,
    /// External ids of the users upserted or removed.
    pub changed_user_ids: Vec<String>,
    pub users_upserted: u64,
    pub users_removed: u64,
    pub groups_upserted: u64,
    pub groups_removed: u64,
    /// What changed in the groups (for the scope phase).
    pub group_changes: GroupChanges,
}

impl MergeOutcome {
    pub fn changed(&self) -> bool {
        self.users_upserted + self.users_removed + self.groups_upserted + self.groups_removed > 0
    }
}

/// Users parsed and written at a time by [`merge`].
const USER_CHUNK: usize = 2_000;

/// Groups parsed and written at a time by [`merge`] (each with its member list), unless
/// the read carries member changes, which may touch any group of the read.
const GROUP_CHUNK: usize = 500;

/// Merges a finished read into the mirror of `connector` and stores the next checkpoint.
/// Bumps the mirror generation when anything changed.
pub async fn merge(
    conn: &mut AnyConnection,
    connector: &str,
    buffer: ReadBuffer,
    summary: &ReadSummary,
) -> Result<MergeOutcome, DbError> {
    let mut state = load_state(conn, connector).await?;
    let mut outcome = MergeOutcome::default();
    let mut read = buffer.drain(summary.mode)?;
    let users = std::mem::take(&mut read.users);
    let groups = std::mem::take(&mut read.groups);

    // The users the mirror holds that this read has not sent (yet): each one read is
    // taken out, so that what remains is what a complete read removes.
    let mut unseen_users = hashes::<SourceUser>(conn, connector).await?;
    // Changed users are read back a chunk at a time, so that the read's users are never
    // all held parsed; those new to the mirror apart (`upsert_at` says why).
    let mut changed_users = Vec::with_capacity(USER_CHUNK);
    let mut new_users = Vec::new();
    let now = crate::db::now_text();
    for user in users {
        let hash = user.hash();
        let held = unseen_users.remove(user.external_id.as_ref());
        if held.as_ref() != Some(&hash) {
            let (record, data) = read.user(&user)?;
            outcome.changed_user_ids.push(user.external_id.to_string());
            let new = held.is_none();
            let chunk = match new {
                true => &mut new_users,
                false => &mut changed_users,
            };
            chunk.push(ToWrite {
                record,
                hash,
                data: Some(data),
            });
            if chunk.len() == USER_CHUNK {
                let chunk = std::mem::take(chunk);
                store::upsert_buffered_users(conn, connector, chunk, &now, new).await?;
            }
        }
    }
    outcome.users_upserted = outcome.changed_user_ids.len() as u64;
    store::upsert_buffered_users(conn, connector, changed_users, &now, false).await?;
    store::upsert_buffered_users(conn, connector, new_users, &now, true).await?;

    let known_groups = hashes::<SourceGroup>(conn, connector).await?;
    let mut seen_groups = HashSet::with_capacity(groups.len());
    let mut changed_groups = Vec::new();
    let chunked = read.member_changes.is_empty();
    for buffered in &groups {
        let group = read.group(buffered, &mut outcome.warnings)?;
        let hash = content_hash(&group);
        seen_groups.insert(group.external_id.clone());
        if known_groups.get(&group.external_id) != Some(&hash) {
            changed_groups.push((group, hash));
            if chunked && changed_groups.len() == GROUP_CHUNK {
                let chunk = std::mem::take(&mut changed_groups);
                write_groups(conn, connector, &known_groups, chunk, &now, &mut outcome).await?;
            }
        }
    }
    drop(groups);
    let Drain {
        removed_users,
        removed_groups,
        member_changes,
        present_users,
        present_groups,
        ..
    } = read;

    // Graph-style member deltas apply to groups already in the mirror (or just read).
    if !member_changes.is_empty() {
        let mut stored: HashMap<String, SourceGroup> = load_all::<SourceGroup>(conn, connector)
            .await?
            .into_iter()
            .map(|g| (g.external_id.clone(), g))
            .collect();
        let mut position: HashMap<String, usize> = changed_groups
            .iter()
            .enumerate()
            .map(|(i, (g, _))| (g.external_id.clone(), i))
            .collect();
        for (group_id, added, removed) in member_changes {
            let index = match position.get(&group_id) {
                Some(&index) => index,
                None => match stored.remove(&group_id) {
                    Some(group) => {
                        position.insert(group_id.clone(), changed_groups.len());
                        changed_groups.push((group, String::new()));
                        changed_groups.len() - 1
                    }
                    // A member change for a group never seen: the next full read fixes it.
                    None => {
                        outcome.warnings.push(format!(
                            "member changes for unknown group {group_id:?} were ignored"
                        ));
                        continue;
                    }
                },
            };
            let group = &mut changed_groups[index].0;
            let removed: HashSet<_> = removed.into_iter().collect();
            group.members.retain(|m| !removed.contains(m));
            let mut present: HashSet<MemberRef> = group.members.iter().cloned().collect();
            for member in added {
                if member.kind == MemberKind::Group && member.id == group_id {
                    outcome.warnings.push(format!(
                        "group {group_id:?} lists itself as a member; the self-membership is ignored"
                    ));
                } else if present.insert(member.clone()) {
                    group.members.push(member);
                }
            }
        }
        for (group, hash) in changed_groups.iter_mut() {
            *hash = content_hash(group);
        }
        changed_groups.retain(|(g, h)| known_groups.get(&g.external_id) != Some(h));
    }
    write_groups(
        conn,
        connector,
        &known_groups,
        changed_groups,
        &now,
        &mut outcome,
    )
    .await?;

    let complete_full = summary.complete && summary.mode == ReadMode::Full;
    // A complete delta that listed every id of a kind (`present`) says the rest is gone.
    let listing = summary.complete && !complete_full;
    let gone = |removed: Vec<String>,
                unseen: &mut dyn Iterator<Item = &String>,
                present: &Option<HashSet<String>>| {
        let present = present.as_ref().filter(|_| listing);
        gone_ids(removed, unseen, complete_full, present)
    };
    let gone_users = gone(removed_users, &mut unseen_users.keys(), &present_users);
    let mut unseen_groups = known_groups.keys().filter(|id| !seen_groups.contains(*id));
    let gone_groups = gone(removed_groups, &mut unseen_groups, &present_groups);
    if summary.complete {
        outcome.users_removed = delete_users(conn, connector, &gone_users).await?;
        outcome.changed_user_ids.extend(gone_users);
        for group in store::load_by_ids::<SourceGroup>(conn, connector, &gone_groups).await? {
            outcome.group_changes.removed(&group);
        }
        outcome.groups_removed = delete_groups(conn, connector, &gone_groups).await?;
    }

    if outcome.changed() {
        state.generation += 1;
    }
    if summary.complete {
        state.checkpoint = summary.next_checkpoint.clone();
    }
    save_state(conn, connector, &state).await?;
    Ok(outcome)
}

/// Writes changed groups to the mirror (their hashes beside them), stamped `now`, noting
/// in `outcome` what changed in each against the version it replaces (`known`: the
/// groups the mirror held before the merge).
async fn write_groups(
    conn: &mut AnyConnection,
    connector: &str,
    known: &HashMap<String, String>,
    groups: Vec<(SourceGroup, String)>,
    now: &str,
    outcome: &mut MergeOutcome,
) -> Result<(), DbError> {
    if groups.is_empty() {
        return Ok(());
    }
    outcome.groups_upserted += groups.len() as u64;
    // The versions being replaced, to tell what changed in them.
    let replaced: Vec<String> = groups
        .iter()
        .map(|(g, _)| g.external_id.clone())
        .filter(|id| known.contains_key(id))
        .collect();
    let before: HashMap<String, SourceGroup> =
        store::load_by_ids::<SourceGroup>(conn, connector, &replaced)
            .await?
            .into_iter()
            .map(|g| (g.external_id.clone(), g))
            .collect();
    for (group, _) in &groups {
        outcome
            .group_changes
            .written(before.get(&group.external_id), group);
    }
    let (replacing, new): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .partition(|(g, _)| known.contains_key(&g.external_id));
    upsert_at(conn, connector, replacing, now, false).await?;
    upsert_at(conn, connector, new, now, true).await
}

/// The ids a read removes from the mirror, sorted, once each: those it reported `removed`,
/// and of those the mirror holds that the read did not send (`unseen`), all after a
/// complete full read, or those a complete delta's id listing (`present`) left out
/// (records read in this run are kept even if the id listing missed them).
fn gone_ids(
    removed: Vec<String>,
    unseen: &mut dyn Iterator<Item = &String>,
    complete_full: bool,
    present: Option<&HashSet<String>>,
) -> Vec<String> {
    let mut gone = removed;
    if complete_full {
        gone.extend(unseen.cloned());
    } else if let Some(present) = present {
        gone.extend(unseen.filter(|id| !present.contains(*id)).cloned());
    }
    gone.sort();
    gone.dedup();
    gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{BatchSink, SourceBatch};
    use crate::db::Db;

    /// Users with float attributes, groups with a dangling member and a self-membership.
    fn batches() -> Vec<SourceBatch> {
        let users = (0..50)
            .map(|i| {
                let mut user = test_user(&format!("u{i}"));
                user.attributes.insert(
                    "score".into(),
                    serde_json::json!(914.4446394025773 + f64::from(i)),
                );
                user
            })
            .collect();
        let groups = (0..5)
            .map(|g| SourceGroup {
                external_id: format!("g{g}"),
                display_name: format!("Group {g}"),
                description: None,
                members: vec![
                    MemberRef::user(format!("u{g}")),
                    MemberRef::user("ghost"),
                    MemberRef::group(format!("g{g}")),
                ],
                attributes: serde_json::json!({"weight": 0.1 + f64::from(g) / 3.0})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        vec![SourceBatch::Users(users), SourceBatch::Groups(groups)]
    }

    async fn merged(
        db: &Db,
        batches: Vec<SourceBatch>,
        limit: usize,
        summary: &ReadSummary,
    ) -> MergeOutcome {
        let mut buffer = ReadBuffer::with_memory_limit(limit);
        for batch in batches {
            buffer.accept(batch).await.unwrap();
        }
        buffer.finish(summary.mode).unwrap();
        let mut tx = db.begin_write().await.unwrap();
        let outcome = merge(tx.conn(), "hr", buffer, summary).await.unwrap();
        tx.commit().await.unwrap();
        outcome
    }

    async fn mirrored(db: &Db) -> (Vec<SourceUser>, Vec<SourceGroup>, Vec<(String, String)>) {
        let mut tx = db.begin_write().await.unwrap();
        let users = load_all::<SourceUser>(tx.conn(), "hr").await.unwrap();
        let groups = load_all::<SourceGroup>(tx.conn(), "hr").await.unwrap();
        let mut hashes: Vec<_> = hashes::<SourceUser>(tx.conn(), "hr")
            .await
            .unwrap()
            .into_iter()
            .chain(hashes::<SourceGroup>(tx.conn(), "hr").await.unwrap())
            .collect();
        hashes.sort();
        (users, groups, hashes)
    }

    #[tokio::test]
    async fn a_read_set_aside_in_a_file_merges_as_one_held_in_memory() {
        let full = ReadSummary::complete(ReadMode::Full, None);
        let in_memory = Db::open("sqlite::memory:").await.unwrap();
        let spilled = Db::open("sqlite::memory:").await.unwrap();
        let a = merged(&in_memory, batches(), usize::MAX, &full).await;
        let b = merged(&spilled, batches(), 0, &full).await;
        assert_eq!(a, b);
        assert_eq!((a.users_upserted, a.groups_upserted), (50, 5));
        assert_eq!(a.warnings.len(), 10, "{:?}", a.warnings);
        let (users, groups, hashes) = mirrored(&in_memory).await;
        assert_eq!((users.len(), groups.len()), (50, 5));
        assert_eq!(groups[0].members, vec![MemberRef::user("u0")]);
        // The hashes are those of the records as the source sent them.
        let sent = match &batches()[0] {
            SourceBatch::Users(users) => users[7].clone(),
            _ => unreachable!(),
        };
        assert_eq!(users.iter().find(|u| u.external_id == "u7"), Some(&sent));
        assert!(hashes.contains(&("u7".to_string(), content_hash(&sent))));
        assert_eq!(mirrored(&spilled).await, (users, groups, hashes));
        // Read again, unchanged: nothing is written, from memory or from the file.
        assert!(
            !merged(&in_memory, batches(), usize::MAX, &full)
                .await
                .changed()
        );
        assert!(!merged(&spilled, batches(), 0, &full).await.changed());
    }

    #[tokio::test]
    async fn a_delta_listing_removes_what_it_left_out_but_not_what_it_sent() {
        let db = Db::open("sqlite::memory:").await.unwrap();
        let full = ReadSummary::complete(ReadMode::Full, None);
        let three = vec!["u1", "u2", "u3"].into_iter().map(test_user).collect();
        merged(&db, vec![SourceBatch::Users(three)], usize::MAX, &full).await;
        // u3 changed and was sent; the id listing names u1 only.
        let mut u3 = test_user("u3");
        u3.display_name = Some("Changed".into());
        let delta = ReadSummary {
            mode: ReadMode::Delta,
            complete: true,
            next_checkpoint: Some("c2".into()),
        };
        let batches = vec![
            SourceBatch::Users(vec![u3]),
            SourceBatch::Present {
                kind: MemberKind::User,
                ids: vec!["u1".into()],
            },
        ];
        let outcome = merged(&db, batches, 0, &delta).await;
        assert_eq!((outcome.users_upserted, outcome.users_removed), (1, 1));
        let (users, _, _) = mirrored(&db).await;
        let mut ids: Vec<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["u1", "u3"]);
    }
}
