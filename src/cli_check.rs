//! `idsync check`: the configuration's summary, attribute warnings, and with `--connect`
//! each enabled connector's source and the LDAP target probed as a run would reach them.
//! As text for people, or with `--format json` one object for scripts and CI.

use anyhow::Result;
use idsync::config::{Config, ConfigErrors};
use idsync::connectors::{self, Diagnosis};
use serde_json::{Value, json};

use crate::cli_output::Format;

/// One probe's outcome, with what it probed (`hr (okta)`, `target (ldap)`).
struct Probe {
    subject: String,
    kind: String,
    diagnosis: Diagnosis,
}

/// Prints what `check` found; exit code 1 when a probe failed.
pub async fn check(config: &Config, connect: bool, format: Format) -> Result<u8> {
    let state = idsync::db::redact_url(config.engine.database_url.expose());
    let target = match &config.engine.target {
        idsync::target::TargetKind::Sql => state,
        idsync::target::TargetKind::Ldap(ldap) => format!(
            "{} below {} and {} (state in {state})",
            ldap.transport.url, ldap.users_dn, ldap.groups_dn
        ),
    };
    // Attribute names no record of the connector's kind has: warnings, since a custom
    // attribute may be missing from the lists; the skip limit guards runs.
    let warnings = idsync::config::attributes::check(config);
    if format == Format::Table {
        println!(
            "configuration ok: {} connector(s), {} mapping(s), target {target}",
            config.connectors.len(),
            config.mappings.len(),
        );
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
    }
    let mut probes = Vec::new();
    if connect {
        probes = probe(config, format).await;
    }
    let failed = probes.iter().any(|p| !p.diagnosis.ok);
    if format == Format::Json {
        let checks: Vec<Value> = probes
            .iter()
            .map(|p| {
                json!({
                    "subject": p.subject,
                    "kind": p.kind,
                    "check": p.diagnosis.check,
                    "ok": p.diagnosis.ok,
                    "detail": p.diagnosis.detail,
                })
            })
            .collect();
        let report = json!({
            "ok": !failed,
            "connectors": config.connectors.len(),
            "mappings": config.mappings.len(),
            "target": target,
            "problems": [],
            "warnings": warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "checks": checks,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if failed { 1 } else { 0 })
}

/// `--format json` for a configuration that does not load: its problems, each with file,
/// line and key.
pub fn print_problems(errors: &ConfigErrors) -> Result<()> {
    let problems: Vec<Value> = errors
        .0
        .iter()
        .map(|p| {
            json!({
                "file": p.file.display().to_string(),
                "line": p.line,
                "key": p.key,
                "message": p.message,
            })
        })
        .collect();
    let report = json!({"ok": false, "problems": problems, "warnings": [], "checks": []});
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Every enabled connector's probes and the LDAP target's, printed as they come when the
/// output is text.
async fn probe(config: &Config, format: Format) -> Vec<Probe> {
    let mut probes = Vec::new();
    let state = state_database(config).await;
    let mut record = |subject: &str, kind: &str, diagnosis: Diagnosis| {
        if format == Format::Table {
            println!(
                "{subject} ({kind}): {}: {} — {}",
                diagnosis.check,
                if diagnosis.ok { "ok" } else { "FAILED" },
                diagnosis.detail
            );
        }
        probes.push(Probe {
            subject: subject.to_owned(),
            kind: kind.to_owned(),
            diagnosis,
        });
    };
    record("state", "database", state);
    for connector in config.connectors.values().filter(|c| c.enabled) {
        let kind = connector.settings.kind();
        if kind == "scim" {
            if format == Format::Table {
                println!(
                    "{} (scim): pushed to by the identity provider; nothing to connect to",
                    connector.id
                );
            }
            continue;
        }
        let checks = match connector.build() {
            Ok(pull) => {
                let mut checks = pull.diagnose().await;
                // Only a source that answered is worth sampling.
                if checks.iter().all(|c| c.ok) {
                    let mapping = config.mapping_for(connector);
                    checks
                        .extend(idsync::sync::sample::check_mapping(pull.as_ref(), mapping).await);
                }
                checks
            }
            Err(e) => vec![connectors::Diagnosis::failed("start", e.to_string())],
        };
        for check in checks {
            record(&connector.id, kind, check);
        }
    }
    if let idsync::target::TargetKind::Ldap(ldap) = &config.engine.target {
        for check in idsync::target::ldap::diagnose(ldap).await {
            record("target", "ldap", check);
        }
    }
    probes
}

/// The state database: it answers within a few seconds, and its schema is one this idsync
/// can use (none yet is fine: the first sync or `idsync migrate` creates it). Nothing is
/// migrated.
async fn state_database(config: &Config) -> Diagnosis {
    let url = config.engine.database_url.expose();
    let shown = idsync::db::redact_url(url);
    let wait = std::time::Duration::from_secs(5);
    let db = match idsync::db::Db::connect_within(url, wait).await {
        Ok(db) => db,
        Err(error) => return Diagnosis::failed("connect", format!("{shown}: {error}")),
    };
    let (applied, latest) = db.schema_versions().await;
    db.close().await;
    match applied {
        None => Diagnosis::ok(
            "connect",
            format!(
                "{shown} answers; no schema yet (the first sync or `idsync migrate` creates it)"
            ),
        ),
        Some(version) if version == latest => Diagnosis::ok(
            "connect",
            format!("{shown} answers; schema up to date ({version})"),
        ),
        Some(version) if version < latest => Diagnosis::ok(
            "connect",
            format!("{shown} answers; schema {version}, `idsync migrate` brings it to {latest}"),
        ),
        Some(version) => Diagnosis::failed(
            "connect",
            format!(
                "{shown}: schema {version} is newer than this idsync ({latest}): use the idsync that migrated it"
            ),
        ),
    }
}
