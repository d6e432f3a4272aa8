//! Scale benchmark of the pull connectors (prints figures; not a test): each provider's
//! fake (`idsync_testkit::fake_<kind>`) serves USERS users, GROUPS groups and MEMBERSHIPS
//! memberships over loopback; the connector syncs them into an empty SQLite target. In the
//! same run it times two floors: a plain fetch of exactly the pages the connector fetched
//! (replayed with reqwest at the request rate the connector is held to, bodies parsed as
//! JSON, nothing else), and a plain bulk insert into SQLite of the very rows the sync
//! wrote (`idsync_testkit::floor`, as `sync_scale`'s; the earlier synthetic floor of short
//! rows is printed beside it). Then it changes 100 users and syncs again: a
//! delta-capable connector reads only what changed.
//!
//! `cargo bench --bench pull_scale` at 100,000 users; `-- --quick` and `-- --million` as
//! in `sync_scale` (`idsync_testkit::sizes`): with a nesting depth (both presets, or
//! IDSYNC_BENCH_NESTING_DEPTH) the fakes serve the same chains of nested groups with
//! cycles as the file snapshot (`snapshot::nesting`), each in its provider's form (Google
//! holds groups as members, cycles included; Keycloak's subgroups are a tree, so its fake
//! leaves out each chain's closing edge); without one, the generated directory's single
//! three-group cycle. IDSYNC_BENCH_USERS, _GROUPS, _MEMBERSHIPS override each figure,
//! IDSYNC_BENCH_PROVIDERS=keycloak,... picks providers.

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use idsync::config::{MappingConfig, OnRemove};
use idsync::db::{Db, Val, insert_rows};
use idsync::sync::{self, NoProgress, RunOptions};
use idsync_testkit::conformance::{Directory, FakeMember, FakeProvider, Knobs, StartFake};
use idsync_testkit::floor;
use idsync_testkit::memory::{PhaseTimer, reset_peak_memory, resident_memory_mib};
use idsync_testkit::sizes::Sizes;
use idsync_testkit::snapshot::nesting;
use idsync_testkit::{fake_azure, fake_google, fake_keycloak, fake_okta};

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

fn providers() -> Vec<(&'static str, StartFake)> {
    let all: Vec<(&'static str, StartFake)> = vec![
        ("keycloak", fake_keycloak::start),
        ("google", fake_google::start),
        ("azure", fake_azure::start_provider),
        ("okta", fake_okta::start),
    ];
    match std::env::var("IDSYNC_BENCH_PROVIDERS") {
        Ok(list) => all
            .into_iter()
            .filter(|(kind, _)| list.split(',').any(|k| k.trim() == *kind))
            .collect(),
        Err(_) => all,
    }
}

async fn fresh_db(dir: &std::path::Path, name: &str) -> Db {
    Db::open(&format!("sqlite://{}/{name}.db", dir.display()))
        .await
        .expect("open sqlite")
}

/// Replays the requests the connector made, one after another as the connector does,
/// held to the request rate its settings set as the connector is (the same `governor`
/// quota: a burst of one second's requests, then that rate), where they set one.
async fn fetch_floor(served: &[(String, String)], rate: Option<NonZeroU32>) -> f64 {
    let client = reqwest::Client::new();
    let pace = rate.map(|rate| governor::RateLimiter::direct(governor::Quota::per_second(rate)));
    let started = Instant::now();
    for (url, auth) in served {
        if let Some(pace) = &pace {
            pace.until_ready().await;
        }
        let response = client
            .get(url)
            .header("authorization", auth)
            .send()
            .await
            .expect("replay");
        let body = response.bytes().await.expect("body");
        let _: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    }
    started.elapsed().as_secs_f64()
}

/// Bulk inserts the same number of user and membership rows, short and without
/// attributes: the write floor until 2026-12-07, kept to compare with the figures recorded
/// against it ([`floor::same_rows`] is the floor now).
async fn synthetic_floor(db: &Db, dir: &Directory) -> f64 {
    let started = Instant::now();
    let mut tx = db.begin_write().await.expect("tx");
    let mut values = Vec::new();
    for (i, u) in dir.users.iter().enumerate() {
        values.extend([
            Val::Text(format!("id{i}")),
            Val::Text("idp".into()),
            Val::Text(u.id.clone()),
            Val::Text(u.user_name.clone()),
            Val::Text(u.user_name.clone()),
            Val::Bool(true),
            Val::Text("{}".into()),
            Val::Text("h".into()),
            Val::Text("2026-01-01T00:00:00.000Z".into()),
            Val::Text("2026-01-01T00:00:00.000Z".into()),
        ]);
    }
    insert_rows(
        tx.conn(),
        "users (id, connector, external_id, user_name, user_name_key, active, attributes, \
         content_hash, created_at, updated_at)",
        "",
        10,
        values,
        "floor",
    )
    .await
    .expect("users");
    let mut values = Vec::new();
    for (g, group) in dir.groups.iter().enumerate() {
        for (m, _) in group.members.iter().enumerate() {
            values.extend([
                Val::Text(format!("g{g}")),
                Val::Text(format!("m{g}-{m}")),
                Val::Text("user".into()),
                Val::Text("idp".into()),
            ]);
        }
    }
    insert_rows(
        tx.conn(),
        "memberships (group_id, member_id, member_kind, connector)",
        "",
        4,
        values,
        "floor",
    )
    .await
    .expect("memberships");
    tx.commit().await.expect("commit");
    started.elapsed().as_secs_f64()
}

async fn bench(kind: &str, start: StartFake, dir: &Directory, tmp: &std::path::Path) {
    let mapping = MappingConfig::pass_through("bench", OnRemove::Disable, 1_000_000, 100.0);
    let fake: Arc<dyn FakeProvider> = start(
        dir.clone(),
        Knobs {
            page_size: 1000,
            ..Knobs::default()
        },
    )
    .await;
    let db = fresh_db(tmp, &format!("{kind}-target")).await;
    reset_peak_memory();
    // The fake runs in this process: its directory and indexes are resident before the
    // sync starts, and count in the peak.
    let before = resident_memory_mib();
    let connector = fake.default_connector();
    let started = Instant::now();
    let timer = PhaseTimer::starting();
    let report = sync::sync(
        &db,
        "idp",
        &mapping,
        connector.as_ref(),
        RunOptions::default(),
        &timer,
    )
    .await
    .expect("sync");
    let secs = started.elapsed().as_secs_f64();
    let mem = timer.peak();
    let phases = timer.summary(Instant::now());
    let requests = fake.stats().requests;
    let served = fake.served();
    let rate = fake.requests_per_second();
    let fetch = fetch_floor(&served, rate).await;
    let floor_db = fresh_db(tmp, &format!("{kind}-floor")).await;
    let write = floor::same_rows(&db, &floor_db).await;
    let synthetic_db = fresh_db(tmp, &format!("{kind}-synthetic")).await;
    let synthetic = synthetic_floor(&synthetic_db, dir).await;
    println!(
        "{kind:>9}: sync {secs:>7.2} s, {requests} requests, peak {mem:.0} MiB; floors: fetch \
         {fetch:.2} s + write of the same rows {write:.2} s = {:.2} s; ratio {:.2}x (aim 2x: \
         {:.2} s)",
        fetch + write,
        secs / (fetch + write),
        2.0 * (fetch + write)
    );
    if let Some(rate) = rate {
        println!(
            "           the connector is held to {rate} requests/s (the fake's settings); the \
             fetch floor is paced the same"
        );
    }
    println!(
        "           against the earlier synthetic write floor ({synthetic:.2} s, short rows, \
         no attributes): ratio {:.2}x",
        secs / (fetch + synthetic)
    );
    println!(
        "           resident before the sync (the fake and its directory): {before:.0} MiB; \
         peak above that {:.0} MiB",
        mem - before
    );
    println!("           phases: {phases}");
    println!(
        "           created {} users, {} groups, {} memberships",
        report.counts.users_created, report.counts.groups_created, report.counts.memberships_added
    );

    // 100 users change their name; the next run reads (delta) or re-reads (full).
    let mut changed = dir.clone();
    for user in changed.users.iter_mut().take(100) {
        user.family_name.push_str(" (changed)");
    }
    fake.set_directory(changed);
    let before = fake.stats().requests;
    let started = Instant::now();
    let report = sync::sync(
        &db,
        "idp",
        &mapping,
        connector.as_ref(),
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .expect("sync");
    println!(
        "           after 100 changes: {:.2} s, {} requests, read mode {}, {} records read, {} users updated",
        started.elapsed().as_secs_f64(),
        fake.stats().requests - before,
        report.read_mode.unwrap_or("-"),
        report.records_read,
        report.counts.users_updated
    );
    db.close().await;
    floor_db.close().await;
    synthetic_db.close().await;
}

fn main() {
    let sizes = Sizes::from_args_and_env();
    let (users, groups, memberships) = (sizes.users, sizes.groups, sizes.memberships);
    let per_group = (memberships / groups.max(1)).max(1);
    let mut dir = Directory::generated(users, groups, per_group);
    if sizes.nesting_depth.is_some() {
        dir.nest(&nesting(groups, sizes.nesting_depth));
    }
    let nested = dir
        .groups
        .iter()
        .flat_map(|g| &g.members)
        .filter(|m| matches!(m, FakeMember::Group(_)))
        .count();
    println!(
        "pull_scale {}: {users} users, {groups} groups, {} memberships, {nested} group-in-group \
         memberships ({})",
        sizes.preset,
        groups * per_group,
        sizes.nesting_depth.map_or_else(
            || "one three-group cycle".to_string(),
            |d| format!("chains {d} deep, every second one a cycle")
        )
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for (kind, start) in providers() {
            bench(kind, start, &dir, tmp.path()).await;
        }
    });
}
