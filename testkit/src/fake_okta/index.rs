//! The fake Okta's directory, indexed once per [`FakeProvider::set_directory`] so that a
//! request costs work in proportion to the page it returns, not to the org: each listing's
//! records in `after`-cursor (id) order, the ranks of each `status` / `type` / `id` value,
//! the records sorted by each timestamp (so `lastUpdated gt "..."` is a range), and every
//! group's member list, resolved, sorted and deduplicated.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::filter::{Expr, Op, okta_timestamp};
use super::*;

/// One listing's records in the order its pages list them (by id; equal ids keep the
/// directory's order), and what its filters look up.
#[derive(Default)]
pub(super) struct Index {
    /// The id of each record, by rank.
    ids: Vec<String>,
    /// For `eq` on an indexed attribute: the ranks holding each value, ascending.
    eq: HashMap<&'static str, HashMap<String, Vec<usize>>>,
    /// For comparisons on a timestamp attribute: (time, rank), sorted.
    times: HashMap<&'static str, Vec<(DateTime<Utc>, usize)>>,
}

/// The records a filter may match: all of them, or these ranks (ascending). The filter
/// itself is still evaluated on every candidate, so candidates only have to be a superset.
pub(super) enum Candidates<'a> {
    All,
    Ranks(Cow<'a, [usize]>),
}

/// A record as [`Index::build`] takes it: its id, the values of its attributes indexed for
/// `eq`, and its timestamps.
type Record<'a> = (
    String,
    Vec<(&'static str, String)>,
    Vec<(&'static str, &'a str)>,
);

impl Index {
    /// An index of `records`, given in directory order. Returns the index and, by rank,
    /// each record's position in `records`.
    fn build(records: Vec<Record<'_>>) -> (Index, Vec<usize>) {
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| records[a].0.cmp(&records[b].0));
        let mut index = Index::default();
        let mut parsed: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
        for (rank, &at) in order.iter().enumerate() {
            let (id, values, times) = &records[at];
            index.ids.push(id.clone());
            for (attr, value) in values {
                index
                    .eq
                    .entry(attr)
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .push(rank);
            }
            for (attr, text) in times {
                let time = *parsed
                    .entry(text.to_string())
                    .or_insert_with(|| okta_timestamp(text));
                if let Some(time) = time {
                    index.times.entry(attr).or_default().push((time, rank));
                }
            }
        }
        for sorted in index.times.values_mut() {
            sorted.sort_unstable();
        }
        (index, order)
    }

    /// The records `expr` may match.
    pub(super) fn plan(&self, expr: &Expr) -> Candidates<'_> {
        match expr {
            Expr::And(a, b) => match (self.plan(a), self.plan(b)) {
                (Candidates::All, other) | (other, Candidates::All) => other,
                (Candidates::Ranks(x), Candidates::Ranks(y)) => {
                    Candidates::Ranks(if x.len() <= y.len() { x } else { y })
                }
            },
            Expr::Or(a, b) => match (self.plan(a), self.plan(b)) {
                (Candidates::Ranks(x), Candidates::Ranks(y)) => {
                    Candidates::Ranks(Cow::Owned(union(&x, &y)))
                }
                _ => Candidates::All,
            },
            Expr::Cmp(attr, op, value) => {
                if *op == Op::Eq
                    && let Some(values) = self.eq.get(attr.as_str())
                {
                    let ranks = values.get(value).map_or(&[][..], Vec::as_slice);
                    return Candidates::Ranks(Cow::Borrowed(ranks));
                }
                let (Some(sorted), Some(time)) =
                    (self.times.get(attr.as_str()), okta_timestamp(value))
                else {
                    return Candidates::All;
                };
                let after = sorted.partition_point(|(t, _)| *t <= time);
                let from = sorted.partition_point(|(t, _)| *t < time);
                let range = match op {
                    Op::Gt => &sorted[after..],
                    Op::Ge => &sorted[from..],
                    Op::Lt => &sorted[..from],
                    Op::Le => &sorted[..after],
                    Op::Eq => &sorted[from..after],
                };
                // A wide range is cheaper scanned in id order than sorted by id per request.
                if range.len() * 4 > self.ids.len() {
                    return Candidates::All;
                }
                let mut ranks: Vec<usize> = range.iter().map(|&(_, rank)| rank).collect();
                ranks.sort_unstable();
                Candidates::Ranks(Cow::Owned(ranks))
            }
        }
    }

    /// One page: up to `limit` ranks among `candidates` after the `after` cursor that
    /// `keep` accepts, and whether any further one does.
    pub(super) fn page(
        &self,
        candidates: &Candidates<'_>,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(usize) -> bool,
    ) -> (Vec<usize>, bool) {
        let start = match after {
            Some(after) => self.ids.partition_point(|id| id.as_str() <= after),
            None => 0,
        };
        let ranks: Box<dyn Iterator<Item = usize> + '_> = match candidates {
            Candidates::All => Box::new(start..self.ids.len()),
            Candidates::Ranks(ranks) => {
                let from = ranks.partition_point(|&rank| rank < start);
                Box::new(ranks[from..].iter().copied())
            }
        };
        let mut page = Vec::new();
        for rank in ranks.filter(|&rank| keep(rank)) {
            if page.len() == limit {
                return (page, true);
            }
            page.push(rank);
        }
        (page, false)
    }
}

/// The union of two ascending rank lists.
fn union(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let next = a[i].min(b[j]);
        out.push(next);
        i += usize::from(a[i] == next);
        j += usize::from(b[j] == next);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// A record of the groups listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupRecord {
    /// The directory's group at this position.
    Directory(usize),
    /// The built-in `Everyone`.
    Everyone,
}

/// What the fake serves: the directory, the times Okta keeps on its records, and the
/// indexes every request reads.
pub(super) struct Served {
    pub(super) directory: Directory,
    /// By directory position.
    user_times: Vec<Times>,
    group_times: Vec<Times>,
    everyone_times: Times,
    /// Group type by directory position.
    group_kinds: Vec<&'static str>,
    /// `/api/v1/users`: served users (service accounts are not), by rank.
    pub(super) users: Index,
    user_ranks: Vec<usize>,
    /// `/api/v1/groups`: the directory's groups and `Everyone`, by rank.
    pub(super) groups: Index,
    group_ranks: Vec<GroupRecord>,
    /// Group position by id.
    group_positions: HashMap<String, usize>,
    /// Each group's served member users (directory positions), by id, each once.
    members: Vec<Vec<usize>>,
    /// `Everyone`'s: every served user, by id, each once.
    everyone: Vec<usize>,
    /// The greatest group id (whose last member page the `Members` knob fails).
    pub(super) last_group: Option<String>,
}

impl Served {
    /// Indexes `directory`; `times` gives each user's and group's times by id.
    pub(super) fn new(
        directory: Directory,
        user_times: &HashMap<String, Times>,
        group_times: &HashMap<String, Times>,
        app_groups: &[String],
    ) -> Served {
        let initial = Times::at(INITIAL_TIME);
        let user_times: Vec<Times> = directory
            .users
            .iter()
            .map(|u| user_times.get(&u.id).unwrap_or(&initial).clone())
            .collect();
        let group_times: Vec<Times> = directory
            .groups
            .iter()
            .map(|g| group_times.get(&g.id).unwrap_or(&initial).clone())
            .collect();

        let served: Vec<usize> = (0..directory.users.len())
            .filter(|&i| okta_status(directory.users[i].status).is_some())
            .collect();
        let records = served
            .iter()
            .map(|&i| {
                let user = &directory.users[i];
                let status = okta_status(user.status).unwrap_or_default();
                (
                    user.id.clone(),
                    vec![("status", status.to_string()), ("id", user.id.clone())],
                    vec![("lastUpdated", user_times[i].last_updated.as_str())],
                )
            })
            .collect();
        let (users, order) = Index::build(records);
        let user_ranks: Vec<usize> = order.into_iter().map(|at| served[at]).collect();

        // Members resolve by id to the last record with that id (as a map of the users
        // would); service accounts are not served.
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        for (i, user) in directory.users.iter().enumerate() {
            by_id.insert(user.id.as_str(), i);
        }
        let resolve = |ids: &mut dyn Iterator<Item = &str>| -> Vec<usize> {
            let mut positions: Vec<usize> = ids
                .filter_map(|id| by_id.get(id).copied())
                .filter(|&i| okta_status(directory.users[i].status).is_some())
                .collect();
            positions.sort_by(|&a, &b| directory.users[a].id.cmp(&directory.users[b].id));
            positions.dedup_by(|a, b| directory.users[*a].id == directory.users[*b].id);
            positions
        };
        let members: Vec<Vec<usize>> = directory
            .groups
            .iter()
            .map(|g| resolve(&mut served_members(g).into_iter()))
            .collect();
        let everyone = resolve(&mut by_id.keys().copied());

        let mut everyone_times = Times::at(INITIAL_TIME);
        if let Some(latest) = user_times.iter().map(|t| &t.created).max() {
            everyone_times.last_membership_updated = latest.clone();
        }

        let group_kinds: Vec<&'static str> = directory
            .groups
            .iter()
            .map(|g| {
                if app_groups.contains(&g.id) {
                    "APP_GROUP"
                } else {
                    "OKTA_GROUP"
                }
            })
            .collect();
        let mut all: Vec<GroupRecord> = (0..directory.groups.len())
            .map(GroupRecord::Directory)
            .collect();
        all.push(GroupRecord::Everyone);
        let records = all
            .iter()
            .map(|record| {
                let (id, kind, times) = match *record {
                    GroupRecord::Directory(i) => (
                        directory.groups[i].id.as_str(),
                        group_kinds[i],
                        &group_times[i],
                    ),
                    GroupRecord::Everyone => (EVERYONE_ID, "BUILT_IN", &everyone_times),
                };
                (
                    id.to_string(),
                    vec![("type", kind.to_string()), ("id", id.to_string())],
                    vec![
                        ("lastUpdated", times.last_updated.as_str()),
                        (
                            "lastMembershipUpdated",
                            times.last_membership_updated.as_str(),
                        ),
                    ],
                )
            })
            .collect();
        let (groups, order) = Index::build(records);
        let group_ranks = order.into_iter().map(|at| all[at]).collect();
        let mut group_positions = HashMap::new();
        for (i, group) in directory.groups.iter().enumerate() {
            group_positions.entry(group.id.clone()).or_insert(i);
        }
        let last_group = directory.groups.iter().map(|g| g.id.clone()).max();
        Served {
            user_times,
            group_times,
            everyone_times,
            group_kinds,
            users,
            user_ranks,
            groups,
            group_ranks,
            group_positions,
            members,
            everyone,
            last_group,
            directory,
        }
    }

    /// The times of every user and group, by id.
    pub(super) fn times(&self) -> (HashMap<String, Times>, HashMap<String, Times>) {
        let users = self
            .directory
            .users
            .iter()
            .zip(&self.user_times)
            .map(|(u, t)| (u.id.clone(), t.clone()))
            .collect();
        let groups = self
            .directory
            .groups
            .iter()
            .zip(&self.group_times)
            .map(|(g, t)| (g.id.clone(), t.clone()))
            .collect();
        (users, groups)
    }

    /// The user of a `/api/v1/users` rank, with its times.
    pub(super) fn user_at(&self, rank: usize) -> (&FakeUser, &Times) {
        let i = self.user_ranks[rank];
        (&self.directory.users[i], &self.user_times[i])
    }

    /// A user attribute as a filter sees it (the user's JSON at `attr`).
    pub(super) fn user_attribute(&self, rank: usize, attr: &str) -> Option<String> {
        let (user, times) = self.user_at(rank);
        Some(match attr {
            "id" => user.id.clone(),
            "status" => okta_status(user.status)?.to_string(),
            "lastUpdated" => times.last_updated.clone(),
            "profile.login" => user.user_name.clone(),
            "profile.email" => user.email.clone(),
            "profile.firstName" => user.given_name.clone(),
            "profile.lastName" => user.family_name.clone(),
            _ => return None,
        })
    }

    /// The id, type and times of a `/api/v1/groups` rank.
    pub(super) fn group_at(&self, rank: usize) -> (&str, &str, &'static str, &Times) {
        match self.group_ranks[rank] {
            GroupRecord::Directory(i) => {
                let group = &self.directory.groups[i];
                (
                    &group.id,
                    &group.name,
                    self.group_kinds[i],
                    &self.group_times[i],
                )
            }
            GroupRecord::Everyone => (EVERYONE_ID, "Everyone", "BUILT_IN", &self.everyone_times),
        }
    }

    /// A group attribute as a filter sees it.
    pub(super) fn group_attribute(&self, rank: usize, attr: &str) -> Option<String> {
        let (id, _, kind, times) = self.group_at(rank);
        Some(match attr {
            "id" => id.to_string(),
            "type" => kind.to_string(),
            "lastUpdated" => times.last_updated.clone(),
            "lastMembershipUpdated" => times.last_membership_updated.clone(),
            _ => return None,
        })
    }

    /// The served member users of group `id` (directory positions, by id), if it exists.
    pub(super) fn members_of(&self, id: &str) -> Option<&[usize]> {
        if id == EVERYONE_ID {
            return Some(&self.everyone);
        }
        self.group_positions
            .get(id)
            .map(|&i| self.members[i].as_slice())
    }

    /// The user at a directory position, with its times.
    pub(super) fn user(&self, position: usize) -> (&FakeUser, &Times) {
        (&self.directory.users[position], &self.user_times[position])
    }
}
