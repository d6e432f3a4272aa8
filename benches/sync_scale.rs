//! Scale benchmark of the foundation (prints figures; not a test):
//! a file snapshot of USERS users, GROUPS groups and MEMBERSHIPS memberships is synced into
//! an empty SQLite target, then again unchanged, then with 1% of users changed, then with
//! 100 users moved between groups, then with one group renamed. In the same
//! run it times the floor: a plain bulk insert through sqlx, into an empty database, of
//! the very rows the initial sync wrote into users, groups and memberships (and, for the
//! figures recorded before that floor, of synthetic rows of the same shape). Peak memory
//! is the process's VmHWM, reset before each phase.
//!
//! With IDSYNC_TEST_POSTGRES_URL set, the initial sync also runs into fresh PostgreSQL
//! databases, over TCP (that URL) and over the Unix socket (IDSYNC_BENCH_POSTGRES_SOCKET_URL,
//! default: the same user and database through /var/run/postgresql), alternated twice;
//! after each run over TCP, the same-rows floor on PostgreSQL.
//!
//! `cargo bench --bench sync_scale` at 100,000 users; `-- --quick` at 2,000 (what CI runs,
//! to keep the bench working), `-- --million` at a million users, 100,000 groups and
//! 5,000,000 memberships nested 20 deep with cycles; IDSYNC_BENCH_USERS, _GROUPS,
//! _MEMBERSHIPS and _NESTING_DEPTH override each figure (`idsync_testkit::sizes`);
//! IDSYNC_BENCH_INITIAL_ROUNDS=N runs the initial sync and its same-rows floor N times,
//! alternated, and prints the median ratio (the upper one for an even N).

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use idsync::config::{FileFormat, MappingConfig, OnRemove};
use idsync::connectors::file::FileConnector;
use idsync::db::{Db, Val, insert_rows};
use idsync::sync::{self, RunOptions, RunReport};
use idsync_testkit::floor;
use idsync_testkit::memory::{PhaseTimer, peak_memory_mib, reset_peak_memory};
use idsync_testkit::sizes::Sizes;
use idsync_testkit::snapshot::{memberships, nesting, write_snapshot_renaming};
use sqlx::Executor;

/// Measures what ships: the allocator of the `idsync` binary (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

async fn fresh_db(dir: &Path, name: &str) -> Db {
    let url = format!("sqlite://{}/{name}.db", dir.display());
    Db::open(&url).await.expect("open sqlite")
}

/// A fresh, migrated PostgreSQL database beside the one `admin_url` names; the caller
/// drops it with [`drop_postgres`].
async fn fresh_postgres(admin_url: &str, name: &str) -> Db {
    let admin = Db::connect(admin_url).await.expect("connect to PostgreSQL");
    admin
        .pool()
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .unwrap();
    admin
        .pool()
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create bench database");
    admin.close().await;
    Db::open(&with_database(admin_url, name))
        .await
        .expect("open postgres")
}

async fn drop_postgres(admin_url: &str, name: &str) {
    let admin = Db::connect(admin_url).await.expect("connect to PostgreSQL");
    let _ = admin
        .pool()
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
    admin.close().await;
}

/// `url` with its database replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = base[scheme_end..]
        .find('/')
        .map_or(base, |slash| &base[..scheme_end + slash]);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The Unix-socket twin of a TCP URL: the same user and database through
/// /var/run/postgresql (Debian's socket directory).
fn socket_url(tcp_url: &str) -> String {
    let rest = tcp_url.split_once("://").map_or(tcp_url, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let user = authority
        .split_once('@')
        .map_or("postgres", |(user, _)| user);
    format!("postgres://{user}@%2Fvar%2Frun%2Fpostgresql/{path}")
}

/// The initial sync into fresh PostgreSQL databases over TCP and over the Unix socket,
/// alternated: the figure of TCP_NODELAY on sqlx's connections.
async fn postgres_transports(snapshot: &Path, mapping: &MappingConfig) {
    let Ok(tcp) = std::env::var("IDSYNC_TEST_POSTGRES_URL") else {
        println!("PostgreSQL skipped: IDSYNC_TEST_POSTGRES_URL is not set");
        return;
    };
    let socket =
        std::env::var("IDSYNC_BENCH_POSTGRES_SOCKET_URL").unwrap_or_else(|_| socket_url(&tcp));
    let mut times: Vec<(&str, f64)> = Vec::new();
    for round in 0..2 {
        for (transport, url) in [("TCP", &tcp), ("socket", &socket)] {
            let name = format!("idsync_bench_scale_{round}_{}", transport.to_lowercase());
            let db = fresh_postgres(url, &name).await;
            let (secs, _, report) = timed_sync(&db, snapshot, mapping).await;
            println!(
                "initial sync, PostgreSQL over {transport:<6}     {secs:>7.2} s  ({} users, {} memberships created)",
                report.counts.users_created, report.counts.memberships_added
            );
            if transport == "TCP" {
                let floor_name = format!("idsync_bench_floor_{round}");
                let floor_db = fresh_postgres(url, &floor_name).await;
                let floor_secs = floor::same_rows(&db, &floor_db).await;
                println!(
                    "floor, PostgreSQL over TCP (the same rows): {floor_secs:>7.2} s  \
                     (initial sync {:.2}x floor)",
                    secs / floor_secs
                );
                floor_db.close().await;
                drop_postgres(url, &floor_name).await;
            }
            db.close().await;
            drop_postgres(url, &name).await;
            times.push((transport, secs));
        }
    }
    let mean = |which: &str| {
        let of: Vec<f64> = times
            .iter()
            .filter(|(t, _)| *t == which)
            .map(|(_, s)| *s)
            .collect();
        of.iter().sum::<f64>() / of.len().max(1) as f64
    };
    println!(
        "PostgreSQL initial sync, TCP / socket: {:.2}x (mean of 2 alternated runs each)",
        mean("TCP") / mean("socket")
    );
}

/// The earlier floor (kept to compare with figures recorded before the same-rows floor):
/// rows of the same shape and count with short synthetic values.
async fn floor(db: &Db, users: usize, members: &[Vec<usize>]) -> f64 {
    let start = Instant::now();
    let mut tx = db.begin_write().await.unwrap();
    let now = idsync::db::now_text();
    let mut values = Vec::with_capacity(users * 14);
    for u in 0..users {
        values.extend([
            Val::Text(format!("id-u{u}")),
            Val::Text("floor".into()),
            Val::Text(format!("u{u:07}")),
            Val::Text(format!("user{u}@example.com")),
            Val::Text(format!("user{u}@example.com")),
            Val::OptText(Some(format!("Given{u} Family{u}"))),
            Val::OptText(Some(format!("Given{u}"))),
            Val::OptText(Some(format!("Family{u}"))),
            Val::OptText(Some(format!("user{u}@example.com"))),
            Val::Bool(true),
            Val::Text("{}".into()),
            Val::Text("hash".into()),
            Val::Text(now.clone()),
            Val::Text(now.clone()),
        ]);
    }
    insert_rows(
        tx.conn(),
        "users (id, connector, external_id, user_name, user_name_key, display_name, given_name, \
         family_name, email, active, attributes, content_hash, created_at, updated_at)",
        "",
        14,
        values,
        "floor users",
    )
    .await
    .unwrap();
    let mut values = Vec::new();
    for g in 0..members.len() {
        values.extend([
            Val::Text(format!("id-g{g}")),
            Val::Text("floor".into()),
            Val::Text(format!("g{g:06}")),
            Val::Text(format!("Group {g}")),
            Val::Text(format!("group {g}")),
            Val::OptText(None),
            Val::Text("{}".into()),
            Val::Text("hash".into()),
            Val::Text(now.clone()),
            Val::Text(now.clone()),
        ]);
    }
    insert_rows(
        tx.conn(),
        "groups (id, connector, external_id, name, name_key, description, attributes, \
         content_hash, created_at, updated_at)",
        "",
        10,
        values,
        "floor groups",
    )
    .await
    .unwrap();
    let mut values = Vec::new();
    for (g, users_in) in members.iter().enumerate() {
        for u in users_in {
            values.extend([
                Val::Text(format!("id-g{g}")),
                Val::Text(format!("id-u{u}")),
                Val::Text("user".into()),
                Val::Text("floor".into()),
            ]);
        }
    }
    insert_rows(
        tx.conn(),
        "memberships (group_id, member_id, member_kind, connector)",
        "",
        4,
        values,
        "floor memberships",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    start.elapsed().as_secs_f64()
}

async fn timed_sync(db: &Db, path: &Path, mapping: &MappingConfig) -> (f64, f64, RunReport) {
    reset_peak_memory();
    let connector = FileConnector::new(path.to_path_buf(), FileFormat::Json);
    let start = Instant::now();
    let options = RunOptions {
        allow_mass_delete: true,
        ..RunOptions::default()
    };
    let timer = PhaseTimer::starting();
    let report = sync::sync(db, "bench", mapping, &connector, options, &timer)
        .await
        .expect("sync");
    let secs = start.elapsed().as_secs_f64();
    println!("    phases: {}", timer.summary(Instant::now()));
    (secs, timer.peak(), report)
}

fn main() {
    let sizes = Sizes::from_args_and_env();
    let (users, groups) = (sizes.users, sizes.groups);
    let nested = nesting(groups, sizes.nesting_depth);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let members = memberships(users, groups, sizes.memberships);
    let snapshot = dir.path().join("snapshot.json");
    let changed = dir.path().join("changed.json");
    write_snapshot_renaming(&snapshot, users, &members, &nested, None, None);
    write_snapshot_renaming(&changed, users, &members, &nested, Some(100), None);
    // 100 users move: 50 from group 1 to group 3, 50 from group 2 to group 4 (at the
    // default sizes none of them holds groups and group 0 holds group 1; nested deeply,
    // all four are in the first chain, a cycle).
    let mut moved_members = members.clone();
    for (from, to) in [(1, 3), (2, 4)] {
        let take = 50.min(moved_members[from].len());
        let moving: Vec<usize> = moved_members[from].drain(..take).collect();
        for user in moving {
            if !moved_members[to].contains(&user) {
                moved_members[to].push(user);
            }
        }
    }
    let moved = dir.path().join("moved.json");
    write_snapshot_renaming(&moved, users, &moved_members, &nested, Some(100), None);
    let renamed = dir.path().join("renamed.json");
    write_snapshot_renaming(&renamed, users, &moved_members, &nested, Some(100), Some(5));
    // The generator's lists (about 80 MiB at a million users) would count in every
    // sync's peak below; the synthetic floor still needs `members`, dropped after it.
    drop((moved_members, nested));
    let mapping = MappingConfig::pass_through("bench", OnRemove::Disable, 500, 20.0);
    println!(
        "sync_scale {} (snapshot {:.1} MiB)",
        sizes.describe(),
        std::fs::metadata(&snapshot).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0
    );
    rt.block_on(async move {
        let floor_db = fresh_db(dir.path(), "floor").await;
        reset_peak_memory();
        let floor_secs = floor(&floor_db, users, &members).await;
        drop(members);
        let floor_mem = peak_memory_mib();
        floor_db.close().await;
        println!("floor (synthetic rows, same shape):   {floor_secs:>7.2} s  peak {floor_mem:>6.0} MiB");

        // IDSYNC_BENCH_INITIAL_ROUNDS=N alternates N initial syncs with their floors (each
        // into fresh databases) and prints the median ratio: on a shared box the floor
        // moves by a sixth between runs, so one ratio says little. The last round's
        // target goes on to the re-syncs.
        let rounds: usize = std::env::var("IDSYNC_BENCH_INITIAL_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        let mut ratios = Vec::with_capacity(rounds);
        let mut target: Option<Db> = None;
        for round in 0..rounds {
            if let Some(previous) = target.take() {
                previous.close().await;
            }
            let db = fresh_db(dir.path(), &format!("target-{round}")).await;
            let (secs, mem, report) = timed_sync(&db, &snapshot, &mapping).await;
            let same_db = fresh_db(dir.path(), &format!("floor-same-rows-{round}")).await;
            let same_secs = floor::same_rows(&db, &same_db).await;
            same_db.close().await;
            println!("floor (the same rows the sync wrote): {same_secs:>7.2} s");
            println!(
                "initial sync:                         {secs:>7.2} s  peak {mem:>6.0} MiB  ({:.2}x floor of the same rows, {:.2}x synthetic; {} users, {} groups, {} memberships created)",
                secs / same_secs,
                secs / floor_secs,
                report.counts.users_created,
                report.counts.groups_created,
                report.counts.memberships_added
            );
            ratios.push(secs / same_secs);
            target = Some(db);
        }
        if rounds > 1 {
            ratios.sort_by(f64::total_cmp);
            println!(
                "initial sync / same-rows floor over {rounds} rounds: median {:.2}x (from {:.2}x to {:.2}x)",
                ratios[rounds / 2],
                ratios[0],
                ratios[rounds - 1]
            );
        }
        let db = target.expect("at least one round");
        let (secs, mem, report) = timed_sync(&db, &snapshot, &mapping).await;
        let rows_written = report.counts.writes();
        // A bench that drifted from a correct sync would measure the wrong thing: the
        // unchanged re-sync and the reconcile below must find nothing to write (CI runs
        // this at the quick size, nested deeply with cycles).
        assert_eq!(rows_written, 0, "an unchanged re-sync wrote rows: {report:?}");
        println!(
            "unchanged re-sync:                    {secs:>7.2} s  peak {mem:>6.0} MiB  (outcome {}, target rows written: {rows_written})",
            report.outcome.as_str()
        );
        let (secs, mem, report) = timed_sync(&db, &changed, &mapping).await;
        println!(
            "re-sync, 1% of users changed:         {secs:>7.2} s  peak {mem:>6.0} MiB  ({} users updated)",
            report.counts.users_updated
        );
        for (what, path) in [
            ("re-sync, 100 users moved:            ", &moved),
            ("re-sync, one group renamed:          ", &renamed),
        ] {
            let (secs, mem, report) = timed_sync(&db, path, &mapping).await;
            println!(
                "{what}{secs:>7.2} s  peak {mem:>6.0} MiB  (projection {}, {} memberships added, {} removed, {} groups updated)",
                report.projection.unwrap_or("-"),
                report.counts.memberships_added,
                report.counts.memberships_removed,
                report.counts.groups_updated
            );
        }
        reset_peak_memory();
        let start = Instant::now();
        let report = sync::reconcile(&db, "bench", &mapping, RunOptions::default(), &sync::NoProgress)
            .await
            .expect("reconcile");
        let rows_written = report.counts.writes();
        assert_eq!(rows_written, 0, "a reconcile after the re-syncs wrote rows: {report:?}");
        println!(
            "reconcile, mapping unchanged:         {:>7.2} s  peak {:>6.0} MiB  (outcome {}, target rows written: {rows_written})",
            start.elapsed().as_secs_f64(),
            peak_memory_mib(),
            report.outcome.as_str()
        );
        db.close().await;
        postgres_transports(&snapshot, &mapping).await;
    });
}
