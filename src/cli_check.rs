//! `idsync check`: the configuration's summary, attribute warnings, and with `--connect`
//! each enabled connector's source and the LDAP target probed as a run would reach them.

use anyhow::Result;
use idsync::config::Config;
use idsync::connectors;

/// Prints what `check` found; exit code 1 when a probe failed.
pub async fn check(config: &Config, connect: bool) -> Result<u8> {
    let state = idsync::db::redact_url(config.engine.database_url.expose());
    let target = match &config.engine.target {
        idsync::target::TargetKind::Sql => state,
        idsync::target::TargetKind::Ldap(ldap) => format!(
            "{} below {} and {} (state in {state})",
            ldap.transport.url, ldap.users_dn, ldap.groups_dn
        ),
    };
    println!(
        "configuration ok: {} connector(s), {} mapping(s), target {target}",
        config.connectors.len(),
        config.mappings.len(),
    );
    // Attribute names no record of the connector's kind has: warnings, since a
    // custom attribute may be missing from the lists; the skip limit guards runs.
    for warning in idsync::config::attributes::check(config) {
        eprintln!("warning: {warning}");
    }
    if !connect {
        return Ok(0);
    }
    let mut failed = false;
    for connector in config.connectors.values().filter(|c| c.enabled) {
        let kind = connector.settings.kind();
        if kind == "scim" {
            println!(
                "{} (scim): pushed to by the identity provider; nothing to connect to",
                connector.id
            );
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
            failed |= !check.ok;
            println!(
                "{} ({kind}): {}: {} — {}",
                connector.id,
                check.check,
                if check.ok { "ok" } else { "FAILED" },
                check.detail
            );
        }
    }
    if let idsync::target::TargetKind::Ldap(ldap) = &config.engine.target {
        for check in idsync::target::ldap::diagnose(ldap).await {
            failed |= !check.ok;
            println!(
                "target (ldap): {}: {} — {}",
                check.check,
                if check.ok { "ok" } else { "FAILED" },
                check.detail
            );
        }
    }
    Ok(if failed { 1 } else { 0 })
}
