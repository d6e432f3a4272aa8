//! The plan: what must change in the target so that one connector's slice matches the
//! desired one. Pure: it compares the projection with the current state (loaded by the
//! target directory) and decides creates, updates, removals, membership changes and name
//! conflicts. Nothing here touches the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::model::{MemberKind, content_hash_value, hash_is, name_key};
use crate::pipeline::settings::OnRemove;
use crate::pipeline::{
    Desired, Origin, PlannedUser, SkippedUser, TargetGroup, UserHead, UserRecords,
};

mod counts;
mod effective;

pub use counts::PlanCounts;
pub use effective::{Effective, effective_pairs, nesting_pairs};

/// A user the connector already owns in the target.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub user_name: String,
    pub user_name_key: String,
    pub content_hash: String,
    /// Already disabled because it left the source.
    pub removed: bool,
}

/// A group the connector already owns in the target.
#[derive(Debug, Clone)]
pub struct CurrentGroup {
    pub id: String,
    pub name: String,
    pub name_key: String,
    pub content_hash: String,
}

/// What the target holds for one connector, keyed by external id.
#[derive(Debug, Default)]
pub struct Current {
    pub users: HashMap<String, CurrentUser>,
    pub groups: HashMap<String, CurrentGroup>,
    /// (group id, member id) of the direct memberships this connector granted, except
    /// the sticky ones.
    pub memberships: HashSet<(String, String)>,
    /// Default-group memberships given at creation: never removed, never re-added.
    pub sticky: HashSet<(String, String)>,
    /// The connector's live users in the whole target, when `users` holds only some of
    /// them (a plan over changed users only); the safety limits count against it.
    pub live_users_total: Option<u64>,
    /// The connector's memberships in the whole target (sticky ones left out), when
    /// `memberships` holds only some of them; the membership limit counts against it.
    pub memberships_total: Option<u64>,
}

/// name key -> who holds it outside this connector (for conflict messages).
pub type ForeignNames = HashMap<String, String>;

/// A name two records claim. The record that already holds it keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub kind: &'static str,
    pub name: String,
    pub external_id: String,
    pub held_by: String,
}

/// A record to write, with its target id (shared with the plan's memberships) and
/// content hash (a number: as text it was an allocation per write; the target stores it
/// as `model::hash_text` writes it).
#[derive(Debug, Clone)]
pub struct Write<T> {
    pub id: Arc<str>,
    pub record: T,
    pub hash: u128,
}

/// A record that leaves the target (or is disabled).
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    /// Already disabled by an earlier run (counted apart by the safety limits).
    pub already_disabled: bool,
    pub id: String,
    pub external_id: String,
    pub name: String,
}

/// A direct membership in target ids. The ids are shared with every other membership of
/// the same group or member (a plan of five million memberships held two strings each,
/// about 100 bytes, before; see docs/PERFORMANCE.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Membership {
    pub group_id: Arc<str>,
    pub member_id: Arc<str>,
    pub kind: MemberKind,
    pub origin: Origin,
}

impl Membership {
    /// (group id, member id), as the target's current memberships are keyed.
    pub fn pair(&self) -> (String, String) {
        (self.group_id.to_string(), self.member_id.to_string())
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    pub on_remove: Option<OnRemove>,
    /// Users to create and to update; their records are in `users` (see
    /// [`UserRecords::load_writes`]).
    pub user_creates: Vec<Write<PlannedUser>>,
    pub user_updates: Vec<Write<PlannedUser>>,
    /// The projected users' records the user writes point into.
    pub users: UserRecords,
    pub user_removals: Vec<Removal>,
    pub group_creates: Vec<Write<TargetGroup>>,
    pub group_updates: Vec<Write<TargetGroup>>,
    pub group_deletes: Vec<Removal>,
    pub membership_adds: Vec<Membership>,
    /// Direct memberships the target already has and keeps (with the adds, every direct
    /// membership the connector grants after the plan).
    pub membership_kept: Vec<Membership>,
    pub membership_removes: Vec<(String, String)>,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<String>,
    /// Mapping-managed groups (default and application groups) to create, and their owner.
    pub managed_creates: Vec<Write<TargetGroup>>,
    pub managed_owner: String,
    /// Ids of the managed groups the plan grants memberships in.
    pub managed_group_ids: HashSet<String>,
    /// Users the connector owns and has not removed, before the plan.
    pub live_users_before: u64,
    pub groups_before: u64,
    /// Memberships the connector granted before the plan (sticky ones left out).
    pub memberships_before: u64,
    /// Target ids of the connector's groups, before and created by the plan.
    pub own_group_ids: HashSet<String>,
    /// Users the target holds live for the connector (it projected them before) that
    /// the mapping now skips: what the skip limit counts.
    pub skipped_before: Vec<SkippedUser>,
}

/// Chooses the target id of a record the plan creates. The target directory decides (the
/// SQL one a time-ordered UUID; an LDAP one would derive a DN from the record); the plan
/// asks when it decides on the create, so that its memberships, preview and the effective
/// memberships can name the new record within the same run.
pub trait NewIds: Send + Sync {
    fn user_id(&self, user: &PlannedUser) -> String;
    fn group_id(&self, group: &TargetGroup) -> String;
}

/// A group name outside the connector, as the plan needs it for managed groups.
#[derive(Debug, Clone)]
pub struct NamedGroup {
    pub id: String,
    /// The owner: a connector id, or `mapping:<name>` for managed groups.
    pub owner: String,
    /// Its name as written (for the plan's preview).
    pub name: String,
}

/// What the plan is built from besides the desired and current slices.
pub struct Context<'a> {
    pub mapping_name: &'a str,
    pub on_remove: OnRemove,
    /// Names (keys) held by users of other connectors.
    pub foreign_users: &'a ForeignNames,
    /// Names (keys) held by groups of other connectors.
    pub foreign_groups: &'a ForeignNames,
    /// Existing groups by name key, for the mapping's managed group names.
    pub named_groups: &'a HashMap<String, NamedGroup>,
    /// Target ids for the records the plan creates.
    pub ids: &'a dyn NewIds,
}

/// Compares the desired slice with the current one. Fails only when a projected user's
/// record cannot be read back from where the projection set it aside.
pub fn build(desired: Desired, current: &Current, ctx: &Context<'_>) -> std::io::Result<Plan> {
    let (heads, records) = desired.users.into_parts();
    let foreign_users = ctx.foreign_users;
    let foreign_groups = ctx.foreign_groups;
    let on_remove = ctx.on_remove;
    let mut plan = Plan {
        managed_owner: format!("mapping:{}", ctx.mapping_name),
        on_remove: Some(on_remove),
        warnings: desired.skipped,
        live_users_before: current
            .live_users_total
            .unwrap_or_else(|| current.users.values().filter(|u| !u.removed).count() as u64),
        groups_before: current.groups.len() as u64,
        memberships_before: current
            .memberships_total
            .unwrap_or(current.memberships.len() as u64),
        skipped_before: desired
            .skipped_users
            .iter()
            .filter(|s| {
                current
                    .users
                    .get(&s.external_id)
                    .is_some_and(|u| !u.removed)
            })
            .cloned()
            .collect(),
        ..Plan::default()
    };

    // Users.
    // The connector's users the desired slice no longer holds, borrowed from `current`
    // (a first run has none, and builds no set of the desired ids to find that out).
    let leaving: HashSet<&str> = match current.users.is_empty() {
        true => HashSet::new(),
        false => {
            let desired_ids: HashSet<&str> = heads.iter().map(|u| &*u.external_id).collect();
            current
                .users
                .keys()
                .map(String::as_str)
                .filter(|ext| !desired_ids.contains(ext))
                .collect()
        }
    };
    // Name key -> the external id holding it. The ids are shared with the users' heads
    // and writes (at a million users, copies here and in `user_ids` were about 100 MiB).
    // Both maps are sized for the desired users up front: grown by doubling, each held its
    // old table beside the new one at its last growth, late in the loop below (at a
    // million users, where a full run's memory peaks).
    let mut taken: HashMap<String, Arc<str>> = HashMap::with_capacity(heads.len());
    // Users that leave keep their name when they are only disabled.
    for (ext, user) in &current.users {
        if desired.held_back.contains(ext) {
            taken.insert(user.user_name_key.clone(), Arc::from(ext.as_str()));
        }
    }
    if on_remove == OnRemove::Disable {
        for (ext, user) in &current.users {
            if leaving.contains(ext.as_str()) {
                taken.insert(user.user_name_key.clone(), Arc::from(ext.as_str()));
            }
        }
    }
    // Users that keep their name first, in the slice's order, then the others by external
    // id. They are taken out of the slice by index rather than moved into lists of their
    // own: at a million users each such list was a few hundred MiB.
    let mut keys: Vec<String> = heads.iter().map(|u| name_key(&u.user_name)).collect();
    let (mut keep_name, mut change_name) = (Vec::new(), Vec::new());
    let mut creates = 0;
    for (i, (user, key)) in heads.iter().zip(&keys).enumerate() {
        match current.users.get(&*user.external_id) {
            Some(c) if &c.user_name_key == key => keep_name.push(i),
            Some(_) => change_name.push(i),
            None => {
                change_name.push(i);
                creates += 1;
            }
        }
    }
    for &i in &keep_name {
        taken.insert(keys[i].clone(), heads[i].external_id.clone());
    }
    // A user being renamed keeps its old name until the rename is known to succeed.
    for &i in &change_name {
        let ext = &heads[i].external_id;
        if let Some(c) = current.users.get(&**ext) {
            taken.insert(c.user_name_key.clone(), ext.clone());
        }
    }
    // External ids are unique: unstable sorts the same, without a scratch half the size.
    change_name.sort_unstable_by(|&a, &b| heads[a].external_id.cmp(&heads[b].external_id));
    plan.user_creates.reserve_exact(creates);
    let mut users: Vec<Option<UserHead>> = heads.into_iter().map(Some).collect();
    let mut user_ids: HashMap<Arc<str>, Arc<str>> =
        HashMap::with_capacity(users.len() + desired.held_back.len());
    for i in keep_name.into_iter().chain(change_name) {
        let (Some(head), key) = (users[i].take(), std::mem::take(&mut keys[i])) else {
            continue;
        };
        let existing = current.users.get(&*head.external_id);
        let renamed = existing.is_some_and(|c| c.user_name_key != key);
        let mut hash = head.hash;
        let mut user = PlannedUser::spooled(head);
        if existing.is_none() || renamed {
            let holder = name_holder(foreign_users, &taken, "user", &key, &user.external_id);
            if let Some(held_by) = holder {
                plan.conflicts.push(Conflict {
                    kind: "user",
                    name: user.user_name.clone(),
                    external_id: user.external_id.to_string(),
                    held_by,
                });
                let Some(c) = existing else { continue };
                // The rename waits, every other change (a deactivation above all) goes
                // through under the name the user already has.
                let mut record = records.record(&user)?;
                record.user_name = c.user_name.clone();
                hash = content_hash_value(&record);
                user = PlannedUser::held(record);
            } else {
                taken.insert(key, user.external_id.clone());
            }
        }
        let held = existing.map(|c| (c.id.as_str(), !hash_is(&c.content_hash, hash) || c.removed));
        let writes = (&mut plan.user_updates, &mut plan.user_creates);
        let external_id = user.external_id.clone();
        let id = place(writes, held, user, hash, |u| ctx.ids.user_id(u));
        user_ids.insert(external_id, id);
    }
    // Under delete, users disabled by earlier runs (under disable) are deleted too; they
    // do not count against the safety limits, which guard the users still active.
    for ext in &desired.held_back {
        if let Some(c) = current.users.get(ext) {
            user_ids.insert(Arc::from(ext.as_str()), Arc::from(c.id.as_str()));
        }
    }
    let mut removals: Vec<Removal> = current
        .users
        .iter()
        .filter(|(ext, u)| {
            leaving.contains(ext.as_str())
                && !desired.held_back.contains(*ext)
                && (!u.removed || on_remove == OnRemove::Delete)
        })
        .map(|(ext, u)| Removal {
            already_disabled: u.removed,
            id: u.id.clone(),
            external_id: ext.clone(),
            name: u.user_name.clone(),
        })
        .collect();
    removals.sort_by(|a, b| a.name.cmp(&b.name));
    plan.user_removals = removals;
    // The users' names and heads are decided: their maps and lists are not held beside
    // the memberships below.
    drop((taken, keys, users, leaving));

    // Groups.
    let desired_group_ids: HashSet<String> = desired
        .groups
        .iter()
        .map(|g| g.external_id.clone())
        .collect();
    let mut group_taken: HashMap<String, String> = HashMap::new();
    let mut groups = desired.groups;
    groups.sort_by(|a, b| {
        let holds = |g: &TargetGroup| {
            current
                .groups
                .get(&g.external_id)
                .is_some_and(|c| c.name_key == name_key(&g.name))
        };
        holds(b)
            .cmp(&holds(a))
            .then_with(|| a.external_id.cmp(&b.external_id))
    });
    for group in &groups {
        if let Some(c) = current.groups.get(&group.external_id) {
            group_taken
                .entry(c.name_key.clone())
                .or_insert_with(|| group.external_id.clone());
        }
    }
    let mut group_ids: HashMap<String, Arc<str>> = HashMap::new();
    for mut group in groups {
        let key = name_key(&group.name);
        let existing = current.groups.get(&group.external_id);
        if existing.is_none_or(|c| c.name_key != key) {
            let holder = name_holder(
                foreign_groups,
                &group_taken,
                "group",
                &key,
                &group.external_id,
            );
            if let Some(held_by) = holder {
                plan.conflicts.push(Conflict {
                    kind: "group",
                    name: group.name.clone(),
                    external_id: group.external_id.clone(),
                    held_by,
                });
                let Some(c) = existing else { continue };
                group.name = c.name.clone();
            } else {
                group_taken.insert(key, group.external_id.clone());
            }
        }
        let hash = content_hash_value(&group);
        let held = existing.map(|c| (c.id.as_str(), !hash_is(&c.content_hash, hash)));
        let writes = (&mut plan.group_updates, &mut plan.group_creates);
        let external_id = group.external_id.clone();
        let id = place(writes, held, group, hash, |g| ctx.ids.group_id(g));
        group_ids.insert(external_id, id);
    }
    let mut deletes: Vec<Removal> = current
        .groups
        .iter()
        .filter(|(ext, _)| !desired_group_ids.contains(*ext))
        .map(|(ext, g)| Removal {
            already_disabled: false,
            id: g.id.clone(),
            external_id: ext.clone(),
            name: g.name.clone(),
        })
        .collect();
    deletes.sort_by(|a, b| a.name.cmp(&b.name));
    plan.group_deletes = deletes;
    plan.own_group_ids = current
        .groups
        .values()
        .map(|g| g.id.clone())
        .chain(plan.group_creates.iter().map(|w| w.id.to_string()))
        .collect();

    // Direct memberships from the source.
    let mut wanted: Vec<Membership> = desired
        .memberships
        .into_iter()
        .filter_map(|m| {
            let group_id = group_ids.get(&*m.group)?.clone();
            let member_id = match m.kind {
                MemberKind::User => user_ids.get(&*m.member)?,
                MemberKind::Group => group_ids.get(&*m.member)?,
            }
            .clone();
            Some(Membership {
                group_id,
                member_id,
                kind: m.kind,
                origin: Origin::Source,
            })
        })
        .collect();

    // Mapping-managed groups: resolved by name to a managed group, or created. A name held
    // by a connector's group is a conflict: the mapping never writes into such a group.
    let mut grants: Vec<(String, &str, Origin)> = desired
        .managed
        .iter()
        .map(|g| (g.group.clone(), g.user.as_str(), Origin::Mapping))
        .collect();
    if !desired.default_on_create.is_empty() {
        let created: HashSet<&str> = plan
            .user_creates
            .iter()
            .map(|w| &*w.record.external_id)
            .collect();
        for user in created {
            for group in &desired.default_on_create {
                grants.push((group.clone(), user, Origin::Default));
            }
        }
    }
    let mut managed_ids: HashMap<String, Option<Arc<str>>> = HashMap::new();
    for (group, user, origin) in grants {
        let key = name_key(&group);
        let id = managed_ids
            .entry(key.clone())
            .or_insert_with(|| match ctx.named_groups.get(&key) {
                _ if group_taken.contains_key(&key) => {
                    plan.conflicts.push(Conflict {
                        kind: "managed group",
                        name: group.clone(),
                        external_id: key.clone(),
                        held_by: "a group of this connector".to_string(),
                    });
                    None
                }
                Some(named)
                    if named.owner == plan.managed_owner || named.owner.starts_with("mapping:") =>
                {
                    Some(Arc::from(named.id.as_str()))
                }
                Some(named) => {
                    plan.conflicts.push(Conflict {
                        kind: "managed group",
                        name: group.clone(),
                        external_id: key.clone(),
                        held_by: format!("a group of connector {:?}", named.owner),
                    });
                    None
                }
                None => {
                    let record = TargetGroup {
                        external_id: key.clone(),
                        name: group.clone(),
                        description: Some(format!(
                            "managed by idsync mapping `{}`",
                            ctx.mapping_name
                        )),
                        attributes: serde_json::Map::new(),
                    };
                    let id: Arc<str> = Arc::from(ctx.ids.group_id(&record));
                    plan.managed_creates.push(Write {
                        id: id.clone(),
                        hash: content_hash_value(&group),
                        record,
                    });
                    Some(id)
                }
            })
            .clone();
        let (Some(group_id), Some(member_id)) = (id, user_ids.get(user)) else {
            continue;
        };
        plan.managed_group_ids.insert(group_id.to_string());
        wanted.push(Membership {
            group_id,
            member_id: member_id.clone(),
            kind: MemberKind::User,
            origin,
        });
    }
    // Sticky default memberships stay as they are.
    // (Each check allocates its pair, as a set of borrowed pairs over the whole target
    // would hold millions of entries at once.)
    if !current.sticky.is_empty() {
        wanted.retain(|m| !current.sticky.contains(&m.pair()));
    }
    // Of a pair granted twice the source's grant is kept, then the mapping's, then the
    // default one (`Origin`'s order, the order they were pushed in). Sorted unstably with
    // the origin in the key: a stable sort would allocate half of five million
    // memberships again.
    wanted.sort_unstable_by(|a, b| {
        (&a.group_id, &a.member_id, a.origin).cmp(&(&b.group_id, &b.member_id, b.origin))
    });
    wanted.dedup_by(|a, b| a.group_id == b.group_id && a.member_id == b.member_id);
    // `wanted` is sorted by (group, member): a lookup in it needs no set of its pairs
    // beside it (five million borrowed pairs and their table were a large share of a
    // full plan's peak).
    let is_wanted = |group_id: &str, member_id: &str| {
        wanted
            .binary_search_by(|m| (&*m.group_id, &*m.member_id).cmp(&(group_id, member_id)))
            .is_ok()
    };
    let mut removes: Vec<(String, String)> = current
        .memberships
        .iter()
        .filter(|(g, m)| !is_wanted(g, m))
        .cloned()
        .collect();
    removes.sort();
    // With default groups given on creation only, memberships in them are never taken
    // away, even those granted while they were applied on every run.
    let default_group_ids: HashSet<&str> = desired
        .default_on_create
        .iter()
        .filter_map(|name| {
            let key = name_key(name);
            match managed_ids.get(&key) {
                Some(id) => id.as_deref(),
                None => ctx.named_groups.get(&key).map(|g| g.id.as_str()),
            }
        })
        .collect();
    removes.retain(|(group_id, _)| !default_group_ids.contains(group_id.as_str()));
    // Removals from groups the connector does not own are removals from managed groups.
    let own_group_ids: HashSet<&str> = current.groups.values().map(|g| g.id.as_str()).collect();
    // A held-back user keeps its managed groups (application and default groups) like the
    // rest of its record: a field that came out empty, a mapping typo above all, is a
    // data problem to report, not a reason to take access away.
    let held_back_ids: HashSet<&str> = desired
        .held_back
        .iter()
        .filter_map(|ext| current.users.get(ext))
        .map(|u| u.id.as_str())
        .collect();
    removes.retain(|(group_id, member_id)| {
        own_group_ids.contains(group_id.as_str()) || !held_back_ids.contains(member_id.as_str())
    });
    for (group_id, _) in &removes {
        if !own_group_ids.contains(group_id.as_str()) {
            plan.managed_group_ids.insert(group_id.clone());
        }
    }
    let (kept, adds): (Vec<Membership>, Vec<Membership>) = match current.memberships.is_empty() {
        // A first run: every membership is new (no pair to allocate for each lookup).
        true => (Vec::new(), wanted),
        false => wanted
            .into_iter()
            .partition(|m| current.memberships.contains(&m.pair())),
    };
    plan.membership_removes = removes;
    // `wanted` is sorted, so the adds are in primary-key order for the inserts.
    plan.membership_adds = adds;
    plan.membership_kept = kept;
    plan.users = records;
    Ok(plan)
}

/// Who holds the name `key` that the record `external_id` of `kind` wants, if anyone
/// else: a record of another connector, or another record of this one (`taken`).
fn name_holder<Id: std::ops::Deref<Target = str>>(
    foreign: &ForeignNames,
    taken: &HashMap<String, Id>,
    kind: &str,
    key: &str,
    external_id: &str,
) -> Option<String> {
    foreign.get(key).cloned().or_else(|| match taken.get(key) {
        Some(ext) if &**ext != external_id => Some(format!(
            "{kind} with external id {:?} of this connector",
            &**ext
        )),
        _ => None,
    })
}

/// Puts a desired record into the plan: an update of the target's record when `held`
/// (its id, and whether it must be written) says one must be written, a create under a
/// new id when the target holds none. Returns the record's target id (shared with the
/// write).
fn place<T>(
    (updates, creates): (&mut Vec<Write<T>>, &mut Vec<Write<T>>),
    held: Option<(&str, bool)>,
    record: T,
    hash: u128,
    new_id: impl FnOnce(&T) -> String,
) -> Arc<str> {
    match held {
        Some((id, changed)) => {
            let id: Arc<str> = Arc::from(id);
            if changed {
                updates.push(Write {
                    id: id.clone(),
                    record,
                    hash,
                });
            }
            id
        }
        None => {
            let id: Arc<str> = Arc::from(new_id(&record));
            creates.push(Write {
                id: id.clone(),
                record,
                hash,
            });
            id
        }
    }
}
