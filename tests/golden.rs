//! Golden tests: small, realistic directories (`tests/golden/<case>/snapshot.json` or
//! `snapshot.csv`) run through the real file connector and the case's `mapping.toml` into a
//! fresh target, which must equal the reviewed `expected.json` exactly (target ids and
//! timestamps left out).
//!
//! `IDSYNC_UPDATE_GOLDEN=1 cargo test --test integration golden` (re)writes every
//! `expected.json` from the SQLite run; review the diff before committing it.

use std::path::{Path, PathBuf};

use idsync::config::FileFormat;
use idsync::connectors::file::FileConnector;
use idsync::db::Backend;
use idsync::store::runs::Outcome;
use idsync::sync::{self, NoProgress, RunOptions};
use serde_json::{Value, json};

use crate::mapping_flow::{load_mapping, target_json};
use crate::on_both_backends;
use crate::support::TestDb;

/// Differences listed in a failure message.
const SHOWN_DIFFERENCES: usize = 25;

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
}

/// Runs one case and compares (or, with IDSYNC_UPDATE_GOLDEN=1, rewrites) its expected.json.
async fn golden(db: TestDb, case: &str) {
    let dir = case_dir(case);
    let (path, format) = ["json", "csv"]
        .iter()
        .map(|ext| dir.join(format!("snapshot.{ext}")))
        .find(|p| p.exists())
        .map(|p| {
            let format = if p.extension().is_some_and(|e| e == "csv") {
                FileFormat::Csv
            } else {
                FileFormat::Json
            };
            (p, format)
        })
        .unwrap_or_else(|| panic!("{} has no snapshot.json or snapshot.csv", dir.display()));
    let mapping_text = std::fs::read_to_string(dir.join("mapping.toml")).expect("mapping.toml");
    let mapping = load_mapping(case, &mapping_text);
    let connector = FileConnector::new(path, format);

    let report = sync::sync(
        &db,
        case,
        &mapping,
        &connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_or_else(|e| panic!("{case}: the run fails: {e}"));
    assert_eq!(report.outcome, Outcome::Succeeded, "{case}: {report:?}");
    let mut warnings = report.warnings.clone();
    warnings.sort();
    let actual = json!({
        "counts": report.counts,
        "warnings": warnings,
        "conflicts": report.conflicts,
        "target": target_json(&db).await,
    });

    let expected_path = dir.join("expected.json");
    if std::env::var_os("IDSYNC_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        if db.backend() == Backend::Sqlite {
            let text = serde_json::to_string_pretty(&actual).expect("json") + "\n";
            std::fs::write(&expected_path, text).expect("write expected.json");
            eprintln!("wrote {}", expected_path.display());
        }
    } else {
        let text = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with IDSYNC_UPDATE_GOLDEN=1 to create it",
                expected_path.display()
            )
        });
        let expected: Value = serde_json::from_str(&text).expect("expected.json is JSON");
        let differences = diff(&expected, &actual);
        if !differences.is_empty() {
            let shown: Vec<&str> = differences
                .iter()
                .take(SHOWN_DIFFERENCES)
                .map(String::as_str)
                .collect();
            panic!(
                "golden case {case} ({:?}): the target differs from {} in {} place(s):\n  {}{}\n\
                 If the change is intended, rerun with IDSYNC_UPDATE_GOLDEN=1 and review the diff.",
                db.backend(),
                expected_path.display(),
                differences.len(),
                shown.join("\n  "),
                if differences.len() > SHOWN_DIFFERENCES {
                    "\n  ..."
                } else {
                    ""
                }
            );
        }
    }

    // The same snapshot again changes nothing, and neither does a reconcile.
    let again = sync::sync(
        &db,
        case,
        &mapping,
        &connector,
        RunOptions::default(),
        &NoProgress,
    )
    .await
    .expect("second run");
    assert_eq!(
        again.outcome,
        Outcome::Unchanged,
        "{case}: {:?}",
        again.preview
    );
    let reconciled = sync::reconcile(&db, case, &mapping, RunOptions::default(), &NoProgress)
        .await
        .expect("reconcile");
    assert_eq!(
        reconciled.counts,
        idsync::pipeline::plan::PlanCounts {
            // Skipped records and name conflicts are reported on every projection.
            warnings: reconciled.counts.warnings,
            conflicts: report.counts.conflicts,
            ..Default::default()
        },
        "{case}: {:?}",
        reconciled.preview
    );
    assert_eq!(
        target_json(&db).await,
        actual["target"],
        "{case}: unchanged"
    );
}

/// Every difference between two JSON values, each as `path: what`, in document order.
fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("$", expected, actual, &mut out);
    out
}

fn diff_at(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, e_value) in e {
                let child = format!("{path}[{key:?}]");
                match a.get(key) {
                    Some(a_value) => diff_at(&child, e_value, a_value, out),
                    None => out.push(format!("{child}: missing (expected {e_value})")),
                }
            }
            for (key, a_value) in a {
                if !e.contains_key(key) {
                    out.push(format!("{path}[{key:?}]: unexpected {a_value}"));
                }
            }
        }
        (Value::Array(e), Value::Array(a))
            if e.iter().chain(a).all(|v| v.is_string()) && e != a =>
        {
            // Sorted name lists: say which names are missing and which are extra.
            let missing: Vec<&Value> = e.iter().filter(|v| !a.contains(v)).collect();
            let extra: Vec<&Value> = a.iter().filter(|v| !e.contains(v)).collect();
            let mut what = Vec::new();
            if !missing.is_empty() {
                what.push(format!("missing {}", json!(missing)));
            }
            if !extra.is_empty() {
                what.push(format!("unexpected {}", json!(extra)));
            }
            if what.is_empty() {
                what.push(format!("order differs: expected {expected}, got {actual}"));
            }
            out.push(format!("{path}: {}", what.join(", ")));
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (e_item, a_item)) in e.iter().zip(a).enumerate() {
                diff_at(&format!("{path}[{i}]"), e_item, a_item, out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}",
                    e.len(),
                    a.len()
                ));
            }
        }
        _ if expected != actual => out.push(format!("{path}: expected {expected}, got {actual}")),
        _ => {}
    }
}

#[test]
fn diff_names_the_differing_paths() {
    let expected = json!({"groups": {"A": {"effective_users": ["ann", "bob"], "owner": "hr"}},
        "users": {"ann": {"active": true}}});
    let actual = json!({"groups": {"A": {"effective_users": ["ann", "cat"], "owner": "hr"}},
        "users": {"ann": {"active": false}, "cat": {}}});
    assert_eq!(
        diff(&expected, &actual),
        [
            r#"$["groups"]["A"]["effective_users"]: missing ["bob"], unexpected ["cat"]"#,
            r#"$["users"]["ann"]["active"]: expected true, got false"#,
            r#"$["users"]["cat"]: unexpected {}"#,
        ]
    );
    assert!(diff(&expected, &expected).is_empty());
}

async fn graph_tenant(db: TestDb) {
    golden(db, "graph-tenant").await;
}
on_both_backends!(graph_tenant);

async fn okta_apps(db: TestDb) {
    golden(db, "okta-apps").await;
}
on_both_backends!(okta_apps);

async fn hr_csv(db: TestDb) {
    golden(db, "hr-csv").await;
}
on_both_backends!(hr_csv);

async fn ad_export(db: TestDb) {
    golden(db, "ad-export").await;
}
on_both_backends!(ad_export);
