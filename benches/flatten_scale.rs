//! Scale benchmark of nested-group flattening (prints figures; not a test): GROUPS groups
//! in chains 20 deep, with 1% cross links (diamonds) and 1% back links (cycles of 20),
//! and MEMBERSHIPS memberships in all. Times the effective-membership closure on dense
//! indices (`flatten::effective_users`) and on string ids as the engine calls it
//! (`plan::effective_pairs`), with peak memory, at 10% and 100% of the size, and prints
//! the growth ratio.
//!
//! `cargo bench --bench flatten_scale` (IDSYNC_BENCH_GROUPS, IDSYNC_BENCH_MEMBERSHIPS).

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Instant;

use idsync::model::MemberKind;
use idsync::pipeline::Origin;
use idsync::pipeline::flatten::{Graph, effective_users};
use idsync::pipeline::plan::{Membership, effective_pairs};
use idsync_testkit::memory::{peak_memory_mib, reset_peak_memory};

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

const DEPTH: usize = 20;

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

struct Directory {
    child_groups: Vec<Vec<u32>>,
    direct_users: Vec<Vec<u32>>,
    memberships: usize,
}

fn generate(groups: usize, memberships: usize) -> Directory {
    let mut rng = Lcg(7);
    let chains = groups / DEPTH;
    // Group (chain c, level l) has index l * chains + c.
    let mut child_groups = vec![Vec::new(); groups];
    let mut edges = 0;
    for level in 0..DEPTH - 1 {
        for c in 0..chains {
            let g = level * chains + c;
            child_groups[g].push(((level + 1) * chains + c) as u32);
            edges += 1;
            if rng.next(100) == 0 {
                child_groups[g].push(((level + 1) * chains + rng.next(chains)) as u32);
                edges += 1;
            }
        }
    }
    for c in 0..chains {
        if rng.next(100) == 0 {
            child_groups[(DEPTH - 1) * chains + c].push(c as u32);
            edges += 1;
        }
    }
    let users = (memberships / 5).max(1);
    let mut direct_users = vec![Vec::new(); groups];
    for _ in edges..memberships {
        direct_users[rng.next(groups)].push(rng.next(users) as u32);
    }
    for list in &mut direct_users {
        list.sort_unstable();
        list.dedup();
    }
    Directory {
        child_groups,
        direct_users,
        memberships,
    }
}

/// (seconds on indices, pairs, peak MiB; seconds on strings, peak MiB)
fn measure(directory: &Directory) -> (f64, usize, f64, f64, f64) {
    reset_peak_memory();
    let start = Instant::now();
    let effective = effective_users(&Graph {
        child_groups: &directory.child_groups,
        direct_users: &directory.direct_users,
    });
    let index_secs = start.elapsed().as_secs_f64();
    let pairs: usize = effective.iter().map(Vec::len).sum();
    let index_peak = peak_memory_mib();
    drop(effective);

    let mut memberships = Vec::with_capacity(directory.memberships);
    for (g, children) in directory.child_groups.iter().enumerate() {
        for c in children {
            memberships.push(Membership {
                group_id: format!("g{g:07}").into(),
                member_id: format!("g{c:07}").into(),
                kind: MemberKind::Group,
                origin: Origin::Source,
            });
        }
        for u in &directory.direct_users[g] {
            memberships.push(Membership {
                group_id: format!("g{g:07}").into(),
                member_id: format!("u{u:07}").into(),
                kind: MemberKind::User,
                origin: Origin::Source,
            });
        }
    }
    reset_peak_memory();
    let start = Instant::now();
    let effective = effective_pairs(memberships.iter());
    let string_secs = start.elapsed().as_secs_f64();
    let string_peak = peak_memory_mib();
    assert_eq!(effective.pairs.len(), pairs);
    (index_secs, pairs, index_peak, string_secs, string_peak)
}

fn main() {
    let groups: usize = std::env::var("IDSYNC_BENCH_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let memberships: usize = std::env::var("IDSYNC_BENCH_MEMBERSHIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "flatten_scale: chains {DEPTH} deep, 1% diamonds, 1% cycles of {DEPTH}; \
         users = memberships / 5"
    );
    let mut results = Vec::new();
    for (g, m) in [(groups / 10, memberships / 10), (groups, memberships)] {
        let directory = generate(g, m);
        let (index_secs, pairs, index_peak, string_secs, string_peak) = measure(&directory);
        println!(
            "{g:>7} groups, {m:>8} memberships: closure on indices {index_secs:>6.3} s \
             (peak {index_peak:>5.0} MiB), on string ids {string_secs:>6.3} s (peak {string_peak:>5.0} MiB), \
             {pairs} effective pairs"
        );
        results.push((index_secs, string_secs));
    }
    println!(
        "growth for 10x the size: {:.1}x on indices, {:.1}x on string ids",
        results[1].0 / results[0].0,
        results[1].1 / results[0].1
    );
}
