//! `/metrics` of a real `idsync serve` right after start: the build, the process, every
//! enabled connector's and tenant's series at zero, the next run of the scheduled
//! connector, the last success carried over from the run records; after a run its new
//! last-success time; and every metric name the shipped alert rules and dashboard use.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};

use crate::daemon::{Node, Tree, eventually_with, get_json};
use crate::support::conformance::{Directory, Knobs};
use crate::support::fake_keycloak::FakeKeycloak;

async fn scrape(node: &Node) -> String {
    let response = reqwest::get(format!("{}/metrics", node.admin))
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// The names of the samples in a scrape (a histogram's `_bucket`, `_sum` and `_count`).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn now_seconds() -> f64 {
    idsync::metrics::timestamp_seconds(idsync::clock::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_complete_from_the_first_scrape() {
    let fake = FakeKeycloak::start_concrete(Directory::generated(20, 2, 4), Knobs::default()).await;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/target.db", db_dir.path().display());
    // Scheduled on the 1st of January only: no scheduled run during the test.
    let tree = Tree::new(&url, fake.base_url(), "0 0 1 1 *");
    // An on-demand connector that never ran, and a disabled one.
    tree.write(
        "snapshot.json",
        &std::fs::read_to_string("examples/snapshot.json").expect("example snapshot"),
    );
    tree.write(
        "connectors/hr.toml",
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"snapshot.json\"\n",
    );
    tree.write(
        "connectors/old.toml",
        "kind = \"file\"\nmapping = \"default\"\nenabled = false\n[file]\npath = \"snapshot.json\"\n",
    );
    let (code, stdout, stderr) = tree.run(&["tenant", "create", "okta"]);
    assert_eq!(code, 0, "{stderr}");
    let scim_token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .expect("token")
        .trim()
        .to_string();
    // A successful run before the node starts: its time is the node's starting point.
    let before_cli = now_seconds();
    let (code, _, stderr) = tree.run(&["sync", "kc"]);
    assert_eq!(code, 0, "{stderr}");
    let after_cli = now_seconds();

    let client = tree.client();
    let node = Node::start(&tree, "metrics");
    eventually_with(Duration::from_secs(20), "/readyz", &[&node], async || {
        get_json(&client, &format!("{}/readyz", node.admin)).await
    })
    .await;
    let first = scrape(&node).await;

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(
            &first,
            &format!("idsync_build_info{{version=\"{version}\"}}")
        ),
        1.0
    );
    // Each enabled pull connector's series, at zero although kc has run before: counters
    // count what this process did.
    for connector in ["kc", "hr"] {
        for outcome in ["succeeded", "unchanged", "held", "failed"] {
            let series = format!(
                "idsync_sync_runs_total{{connector=\"{connector}\",outcome=\"{outcome}\"}}"
            );
            assert_eq!(value(&first, &series), 0.0, "{series}");
        }
        for change in ["created", "updated", "removed"] {
            let series = format!(
                "idsync_sync_records_total{{change=\"{change}\",connector=\"{connector}\"}}"
            );
            assert_eq!(value(&first, &series), 0.0, "{series}");
        }
        let count = format!("idsync_sync_run_duration_seconds_count{{connector=\"{connector}\"}}");
        assert_eq!(value(&first, &count), 0.0);
        let held = format!("idsync_held_runs{{connector=\"{connector}\"}}");
        assert_eq!(value(&first, &held), 0.0);
    }
    for outcome in ["ok", "throttled", "error", "transport"] {
        let series =
            format!("idsync_idp_requests_total{{kind=\"keycloak\",outcome=\"{outcome}\"}}");
        assert_eq!(value(&first, &series), 0.0, "{series}");
    }
    // The SCIM tenant: its held gauge and its request count.
    assert_eq!(value(&first, "idsync_held_runs{connector=\"okta\"}"), 0.0);
    assert_eq!(
        value(
            &first,
            "idsync_scim_request_duration_seconds_count{tenant=\"okta\"}"
        ),
        0.0
    );
    assert!(
        !first.contains("connector=\"old\""),
        "a disabled connector has no series:\n{first}"
    );

    // The last success of kc is the CLI run's, read from the run records; hr never had one.
    let last = value(
        &first,
        "idsync_last_success_timestamp_seconds{connector=\"kc\"}",
    );
    assert!(
        (before_cli - 1.0..=after_cli + 1.0).contains(&last),
        "{before_cli} <= {last} <= {after_cli}"
    );
    assert_eq!(
        value(
            &first,
            "idsync_last_success_timestamp_seconds{connector=\"hr\"}"
        ),
        0.0
    );
    assert!(
        sample(
            &first,
            "idsync_last_success_timestamp_seconds{connector=\"okta\"}"
        )
        .is_none()
    );

    // The next run: the coming 1st of January, 00:00 UTC; none for the on-demand connector.
    let next = value(
        &first,
        "idsync_next_run_timestamp_seconds{connector=\"kc\"}",
    );
    let new_year = Utc
        .with_ymd_and_hms(idsync::clock::now().year() + 1, 1, 1, 0, 0, 0)
        .single()
        .expect("new year")
        .timestamp() as f64;
    assert_eq!(next, new_year);
    assert!(
        sample(
            &first,
            "idsync_next_run_timestamp_seconds{connector=\"hr\"}"
        )
        .is_none()
    );

    // The process: resident memory, open files, CPU time and a start time just now.
    assert!(value(&first, "process_resident_memory_bytes") > 1_000_000.0);
    assert!(value(&first, "process_open_fds") >= 3.0);
    assert!(value(&first, "process_max_fds") > 0.0);
    assert!(value(&first, "process_cpu_seconds_total") >= 0.0);
    let started = value(&first, "process_start_time_seconds");
    assert!(
        (after_cli - 2.0..=now_seconds() + 1.0).contains(&started),
        "started at {started}"
    );

    // A run (unchanged: the CLI synced already) moves the last success to its end.
    let triggered = now_seconds();
    let accepted = client
        .post(format!("{}/api/connectors/kc/run", node.admin))
        .send()
        .await
        .expect("run now");
    assert_eq!(accepted.status(), 202);
    let after_run = eventually_with(
        Duration::from_secs(20),
        "a finished run",
        &[&node],
        async || {
            let text = scrape(&node).await;
            let ran = value(
                &text,
                "idsync_sync_runs_total{connector=\"kc\",outcome=\"succeeded\"}",
            ) + value(
                &text,
                "idsync_sync_runs_total{connector=\"kc\",outcome=\"unchanged\"}",
            );
            (ran >= 1.0).then_some(text)
        },
    )
    .await;
    let last = value(
        &after_run,
        "idsync_last_success_timestamp_seconds{connector=\"kc\"}",
    );
    assert!(
        (triggered - 1.0..=now_seconds()).contains(&last),
        "{triggered} <= {last}"
    );
    assert_eq!(
        value(
            &after_run,
            "idsync_sync_run_duration_seconds_count{connector=\"kc\"}"
        ),
        1.0
    );
    assert!(
        value(
            &after_run,
            "idsync_idp_requests_total{kind=\"keycloak\",outcome=\"ok\"}"
        ) > 0.0
    );

    // A SCIM request, so that a status is counted; then every metric the shipped alert
    // rules and dashboard name is in the scrape.
    let listed = client
        .get(format!("{}/Users", node.scim))
        .bearer_auth(&scim_token)
        .send()
        .await
        .expect("SCIM GET");
    assert_eq!(listed.status(), 200);
    let full = scrape(&node).await;
    assert_eq!(
        value(
            &full,
            "idsync_scim_requests_total{status=\"200\",tenant=\"okta\"}"
        ),
        1.0
    );
    let names = sample_names(&full);
    let used = regex::Regex::new(r"\b(?:idsync|process)_[a-z0-9_]+").expect("regex");
    for file in [
        "examples/prometheus-alerts.yml",
        "examples/grafana-dashboard.json",
    ] {
        let text = std::fs::read_to_string(file).expect("example file");
        let mentioned: BTreeSet<&str> = used.find_iter(&text).map(|m| m.as_str()).collect();
        assert!(mentioned.len() >= 5, "{file} names metrics: {mentioned:?}");
        let missing: Vec<&&str> = mentioned.iter().filter(|n| !names.contains(**n)).collect();
        assert!(
            missing.is_empty(),
            "{file} uses {missing:?}, not in:\n{full}"
        );
    }
    assert_eq!(node.stop(libc::SIGTERM), Some(0));
}

/// What `idsync_last_success_timestamp_seconds` starts from: per connector, the end of its
/// latest run that succeeded or was unchanged, on both backends.
async fn last_successes_of(db: &idsync::db::Db) {
    use idsync::store::runs::{self, Outcome, RunEnd};
    let end = RunEnd::default();
    let finish = async |connector: &str, outcome: Outcome| {
        let id = runs::start_run(db, connector, "sync").await.expect("start");
        runs::finish_run(db, id, outcome, &end)
            .await
            .expect("finish");
    };
    finish("a", Outcome::Succeeded).await;
    finish("b", Outcome::Failed).await;
    finish("c", Outcome::Unchanged).await;
    finish("d", Outcome::Held).await;
    // a's latest run failed: its last success stays the earlier one.
    finish("a", Outcome::Failed).await;
    let recorded = runs::recent_runs(db.pool(), None, 10).await.expect("runs");
    let finished = |id: i64| recorded.iter().find(|r| r.id == id)?.finished_at.clone();
    let found = runs::last_successes(db.pool())
        .await
        .expect("last successes");
    let connectors: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(connectors, ["a", "c"], "{found:?}");
    let first_of_a = recorded.iter().map(|r| r.id).min().expect("a run");
    assert_eq!(Some(found[0].1.clone()), finished(first_of_a));
}

#[tokio::test]
async fn last_successes_come_from_the_run_records_on_sqlite() {
    let db = crate::support::sqlite().await;
    last_successes_of(&db).await;
}

#[tokio::test]
async fn last_successes_come_from_the_run_records_on_postgres() {
    let Some(db) = crate::support::postgres().await else {
        return;
    };
    last_successes_of(&db).await;
}
