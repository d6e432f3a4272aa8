//! A generated directory as a file connector's JSON snapshot, for the benches: USERS users,
//! GROUPS groups, MEMBERSHIPS random memberships and nested groups ([`nesting`]: one per
//! ten groups, or chains of a given depth with cycles); the same data every run.

// Test code may unwrap: a failure is the bench's answer ([lints] in Cargo.toml denies it
// in production code).
#![allow(clippy::unwrap_used)]

use std::io::{BufWriter, Write};
use std::path::Path;

/// Deterministic pseudo-random numbers (no dependency, same data every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound
    }
}

/// The memberships of the generated directory: (group index, user index), plus one
/// nested group per 10 groups.
pub fn memberships(users: usize, groups: usize, count: usize) -> Vec<Vec<usize>> {
    let mut rng = Lcg(42);
    let mut members = vec![Vec::new(); groups];
    let mut seen = std::collections::HashSet::with_capacity(count);
    while seen.len() < count {
        let (g, u) = (rng.next(groups), rng.next(users));
        if seen.insert((g, u)) {
            members[g].push(u);
        }
    }
    members
}

/// The groups each group holds, by index. Without a depth, one nested group per ten
/// groups: group g holds g + 1 when g is a multiple of ten. With `depth`, one chain of
/// `depth` groups per 1,000 groups, from the block's first group down (group b + i holds
/// b + i + 1), and every second chain, the first included, closed into a cycle (its last
/// group holds its first): every user in such a chain is in all of its groups.
pub fn nesting(groups: usize, depth: Option<usize>) -> Vec<Vec<usize>> {
    let mut nested = vec![Vec::new(); groups];
    match depth {
        None => {
            for (g, holds) in nested.iter_mut().enumerate() {
                if g % 10 == 0 && g + 1 < groups {
                    holds.push(g + 1);
                }
            }
        }
        Some(depth) => {
            for (chain, start) in (0..groups).step_by(1_000).enumerate() {
                let end = (start + depth).min(groups);
                let last = end.saturating_sub(1).max(start);
                for (offset, holds) in nested[start..last].iter_mut().enumerate() {
                    holds.push(start + offset + 1);
                }
                if chain % 2 == 0 && end - start > 1 {
                    nested[end - 1].push(start);
                }
            }
        }
    }
    nested
}

/// Writes the snapshot of `users` users and the groups of `members` to `path`, one nested
/// group per ten groups; with `changed_every`, every n-th user has another title (a
/// re-sync with changes).
pub fn write_snapshot(
    path: &Path,
    users: usize,
    members: &[Vec<usize>],
    changed_every: Option<usize>,
) {
    let nested = nesting(members.len(), None);
    write_snapshot_renaming(path, users, members, &nested, changed_every, None);
}

/// [`write_snapshot`] with the groups each group holds (`nested`, by index) and group
/// `renamed` (an index) under another name.
pub fn write_snapshot_renaming(
    path: &Path,
    users: usize,
    members: &[Vec<usize>],
    nested: &[Vec<usize>],
    changed_every: Option<usize>,
    renamed: Option<usize>,
) {
    let file = std::fs::File::create(path).expect("create snapshot");
    let mut out = BufWriter::new(file);
    write!(out, "{{\"users\":[").unwrap();
    for u in 0..users {
        if u > 0 {
            write!(out, ",").unwrap();
        }
        let title = match changed_every {
            Some(every) if u % every == 0 => "Principal Engineer",
            _ => "Engineer",
        };
        let record = serde_json::json!({
            "id": format!("u{u:07}"),
            "userName": format!("user{u}@example.com"),
            "givenName": format!("Given{u}"),
            "familyName": format!("Family{u}"),
            "emails": [{"value": format!("user{u}@example.com"), "type": "work", "primary": true}],
            "active": u % 50 != 0,
            "department": format!("Dept {}", u % 40),
            "title": title,
        });
        serde_json::to_writer(&mut out, &record).unwrap();
    }
    write!(out, "],\"groups\":[").unwrap();
    for (g, users_in) in members.iter().enumerate() {
        if g > 0 {
            write!(out, ",").unwrap();
        }
        let mut list: Vec<serde_json::Value> = users_in
            .iter()
            .map(|u| serde_json::json!({"type": "user", "id": format!("u{u:07}")}))
            .collect();
        for child in nested.get(g).into_iter().flatten() {
            list.push(serde_json::json!({"type": "group", "id": format!("g{child:06}")}));
        }
        let name = match renamed {
            Some(r) if r == g => format!("Group {g} (renamed)"),
            _ => format!("Group {g}"),
        };
        let record = serde_json::json!({
            "id": format!("g{g:06}"),
            "displayName": name,
            "description": "generated",
            "members": list,
        });
        serde_json::to_writer(&mut out, &record).unwrap();
    }
    write!(out, "]}}").unwrap();
    out.flush().unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_in_ten_holds_the_next_by_default() {
        let nested = nesting(21, None);
        assert_eq!(nested[0], vec![1]);
        assert_eq!(nested[10], vec![11]);
        assert_eq!(nested[20], Vec::<usize>::new());
        assert_eq!(nested.iter().map(Vec::len).sum::<usize>(), 2);
    }

    #[test]
    fn deep_nesting_is_a_chain_per_thousand_groups_every_second_one_a_cycle() {
        let nested = nesting(2_500, Some(20));
        // The first chain: 0 holds 1, ..., 18 holds 19, and 19 holds 0 (a cycle).
        assert_eq!(nested[0], vec![1]);
        assert_eq!(nested[18], vec![19]);
        assert_eq!(nested[19], vec![0]);
        // The second chain ends without a cycle.
        assert_eq!(nested[1_000], vec![1_001]);
        assert_eq!(nested[1_019], Vec::<usize>::new());
        // The third is a cycle again; nothing outside the chains is nested.
        assert_eq!(nested[2_019], vec![2_000]);
        assert_eq!(nested.iter().map(Vec::len).sum::<usize>(), 20 + 19 + 20);
    }
}
