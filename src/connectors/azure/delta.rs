//! Graph delta queries: collecting `/users/delta` and `/groups/delta` pages (with
//! `members@delta`) and sending them as batches in a stable order.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::*;
use crate::connectors::batch::{Batcher, GROUP_BATCH_SIZE};
use crate::connectors::{BatchSink, ConnectorError, SourceBatch};
use crate::model::{MemberKind, MemberRef, SourceUser};

/// Items kept in first-seen order, replaced or removed by key (delta rounds repeat and
/// split objects).
pub(super) struct Ordered<K, T> {
    pub(super) items: Vec<Option<(K, T)>>,
    pub(super) index: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone, T> Default for Ordered<K, T> {
    fn default() -> Self {
        Ordered {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, T> Ordered<K, T> {
    pub(super) fn set(&mut self, key: K, value: T) {
        match self.index.get(&key) {
            Some(&i) => self.items[i] = Some((key, value)),
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push(Some((key, value)));
            }
        }
    }

    pub(super) fn entry(&mut self, key: K, make: impl FnOnce() -> T) -> &mut T {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push(Some((key, make())));
                self.items.len() - 1
            }
        };
        &mut self.items[i].as_mut().expect("indexed items are present").1
    }

    pub(super) fn remove(&mut self, key: &K) {
        if let Some(i) = self.index.remove(key) {
            self.items[i] = None;
        }
    }

    pub(super) fn into_iter(self) -> impl Iterator<Item = (K, T)> {
        self.items.into_iter().flatten()
    }
}

/// A group collected from a delta round: its properties and members so far.
#[derive(Default)]
pub(super) struct PendingGroup {
    pub(super) properties: Map<String, Value>,
    pub(super) members: Ordered<MemberRef, ()>,
}

/// What one incremental delta round pair changed.
pub(super) struct DeltaChanges {
    /// `None`: removed (or a guest while guests are excluded).
    pub(super) users: Ordered<String, Option<SourceUser>>,
    pub(super) guests: HashSet<String>,
    pub(super) groups: Ordered<String, GroupChange>,
    pub(super) users_link: String,
    pub(super) groups_link: String,
}

#[derive(Default)]
pub(super) struct GroupChange {
    pub(super) removed: bool,
    /// A property (not only members) changed: the group is read again whole.
    pub(super) properties: bool,
    /// Member -> added (true) or removed (false); the last entry wins.
    pub(super) members: Ordered<MemberRef, bool>,
}

impl AzureConnector {
    /// Follows both stored deltaLinks to their new deltaLinks, collecting the changes.
    /// Nothing reaches the sink yet, so an expired token can still fall back to a full read.
    pub(super) async fn collect_delta(
        &self,
        cp: &AzureCheckpoint,
    ) -> Result<DeltaChanges, ConnectorError> {
        let mut users: Ordered<String, Option<SourceUser>> = Ordered::default();
        let mut guests = HashSet::new();
        let users_link = self
            .delta_round(
                (cp.users.clone(), Vec::new()),
                false,
                ("reading user changes (delta)", USERS_PERMISSION),
                |id, item| {
                    if is_removed(&item) {
                        users.set(id, None);
                    } else if !self.include_guests && is_guest(&item) {
                        guests.insert(id.clone());
                        users.set(id, None);
                    } else {
                        users.set(id, records::to_user(item));
                    }
                },
            )
            .await?;

        let mut groups: Ordered<String, GroupChange> = Ordered::default();
        let groups_link = self
            .delta_round(
                (cp.groups.clone(), Vec::new()),
                true,
                (
                    "reading group and membership changes (delta)",
                    GROUPS_PERMISSION,
                ),
                |id, mut item| {
                    let change = groups.entry(id, GroupChange::default);
                    if is_removed(&item) {
                        *change = GroupChange {
                            removed: true,
                            ..GroupChange::default()
                        };
                        return;
                    }
                    change.removed = false;
                    let entries = take_members_delta(&mut item);
                    change.properties |= has_properties(&item);
                    for entry in entries {
                        if let Some(member) = member_ref(&entry) {
                            change.members.set(member, !is_removed(&entry));
                        }
                    }
                },
            )
            .await?;
        Ok(DeltaChanges {
            users,
            guests,
            groups,
            users_link,
            groups_link,
        })
    }

    /// Sends the collected changes: users, removals, groups read again, member changes.
    pub(super) async fn emit_delta(
        &self,
        changes: DeltaChanges,
        full_at: DateTime<Utc>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        let DeltaChanges {
            users,
            guests,
            groups,
            users_link,
            groups_link,
        } = changes;
        let mut removed_users = Vec::new();
        let mut batch = Batcher::users();
        for (id, user) in users.into_iter() {
            match user {
                Some(user) => batch.push(user, sink).await?,
                None => removed_users.push(id),
            }
        }
        batch.finish(sink).await?;

        let mut removed_groups = Vec::new();
        let mut reread = Vec::new();
        let mut member_changes = Vec::new();
        for (id, change) in groups.into_iter() {
            if change.removed {
                removed_groups.push(id);
                continue;
            }
            if change.properties {
                match self.group_whole(&id).await? {
                    Some(group) => reread.push(group),
                    None => removed_groups.push(id),
                }
                continue;
            }
            let mut added = Vec::new();
            let mut removed = Vec::new();
            for (member, is_added) in change.members.into_iter() {
                if is_added {
                    if !(member.kind == MemberKind::User && guests.contains(&member.id)) {
                        added.push(member);
                    }
                } else {
                    removed.push(member);
                }
            }
            if !added.is_empty() || !removed.is_empty() {
                member_changes.push(SourceBatch::MemberChanges {
                    group: id,
                    added,
                    removed,
                });
            }
        }
        if !removed_users.is_empty() || !removed_groups.is_empty() {
            sink.accept(SourceBatch::Removed {
                users: removed_users,
                groups: removed_groups,
            })
            .await?;
        }
        for chunk in reread.chunks(GROUP_BATCH_SIZE) {
            sink.accept(SourceBatch::Groups(chunk.to_vec())).await?;
        }
        for change in member_changes {
            sink.accept(change).await?;
        }
        Ok(self.finished(ReadMode::Delta, (users_link, groups_link), full_at))
    }
}
