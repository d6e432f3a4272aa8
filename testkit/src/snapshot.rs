//! A generated directory as a file connector's JSON snapshot, for the benches: USERS users,
//! GROUPS groups, MEMBERSHIPS random memberships and one nested group per ten groups; the
//! same data every run.

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

/// Writes the snapshot of `users` users and the groups of `members` to `path`; with
/// `changed_every`, every n-th user has another title (a re-sync with changes).
pub fn write_snapshot(
    path: &Path,
    users: usize,
    members: &[Vec<usize>],
    changed_every: Option<usize>,
) {
    write_snapshot_renaming(path, users, members, changed_every, None);
}

/// [`write_snapshot`], with group `renamed` (an index) under another name.
pub fn write_snapshot_renaming(
    path: &Path,
    users: usize,
    members: &[Vec<usize>],
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
        if g % 10 == 0 && g + 1 < members.len() {
            list.push(serde_json::json!({"type": "group", "id": format!("g{:06}", g + 1)}));
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
