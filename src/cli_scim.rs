//! The SCIM commands: `tenant` (bearer tokens of SCIM tenants) and `events` (the SCIM
//! request log).

use std::time::Duration;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use idsync::config::{Config, ConnectorSettings, TenantAuth};
use idsync::db::Db;
use idsync::store::audit;
use idsync::store::events::{self, EventQuery, StatusMatch};
use idsync::store::{holds, tokens};
use serde::Serialize;

use crate::Exit;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Issue the first (or another) bearer token of a SCIM tenant and print its URL.
    Create {
        /// The tenant: a connector with kind = "scim".
        name: String,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u64>,
        /// The public base URL clients reach idsync at (default: the listen address).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Issue a new token; the tenant's other tokens keep working for the grace period.
    Rotate {
        /// The tenant: a connector with kind = "scim".
        name: String,
        /// Hours the old tokens keep working (0: stop at once).
        #[arg(long, default_value_t = 24)]
        grace_hours: u64,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u64>,
    },
    /// Revoke one token (by id), or every token of a tenant with --all.
    Revoke {
        /// The tenant: a connector with kind = "scim".
        name: String,
        /// The token's id (from `tenant list`).
        #[arg(long, conflicts_with = "all")]
        token: Option<String>,
        /// Revoke every token of the tenant (its identity provider stops provisioning).
        #[arg(long)]
        all: bool,
    },
    /// SCIM tenants, their tokens (never the tokens themselves) and holds.
    List {
        /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
        #[arg(long, value_enum, default_value_t = crate::cli_output::Format::Table)]
        format: crate::cli_output::Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventFormat {
    Table,
    Json,
    Csv,
}

fn days(n: Option<u64>) -> Option<Duration> {
    n.map(|d| Duration::from_secs(d.saturating_mul(86_400)))
}

fn scim_tenant<'a>(config: &'a Config, name: &str) -> Result<&'a idsync::config::ConnectorConfig> {
    match config.connector(name) {
        Some(c) if matches!(c.settings, ConnectorSettings::Scim(_)) => Ok(c),
        Some(c) => Err(Exit::usage(format!(
            "connector `{name}` is of kind `{}`, not a SCIM tenant",
            c.settings.kind()
        ))
        .into()),
        None => Err(Exit::usage(format!(
            "no SCIM tenant `{name}`: add {}/{name}.toml with kind = \"scim\"",
            config.engine.connectors_dir.display()
        ))
        .into()),
    }
}

fn tenant_url(config: &Config, base_url: Option<&str>, name: &str) -> String {
    let base = match base_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let addr = config.engine.scim_listen;
            let host = if addr.ip().is_unspecified() {
                "<this host>".to_string()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}", addr.port())
        }
    };
    format!("{base}/scim/{name}/v2")
}

pub async fn tenant(config: &Config, db: &Db, command: TenantCommand) -> Result<u8> {
    match command {
        TenantCommand::Create {
            name,
            expires_in_days,
            base_url,
        } => {
            let connector = scim_tenant(config, &name)?;
            if let ConnectorSettings::Scim(settings) = &connector.settings
                && matches!(settings.auth, TenantAuth::Basic { .. })
            {
                eprintln!(
                    "note: tenant `{name}` is configured with auth = \"basic\"; bearer tokens \
                     only work once it is set to auth = \"bearer\""
                );
            }
            let actor = audit::cli_actor();
            let issued = tokens::issue_as(db, &name, days(expires_in_days), Some(&actor)).await?;
            println!("tenant:     {name}");
            println!(
                "SCIM URL:   {}",
                tenant_url(config, base_url.as_deref(), &name)
            );
            println!(
                "SCIM 1.1:   {}",
                tenant_url(config, base_url.as_deref(), &name).replace("/v2", "/v1")
            );
            println!("token id:   {}", issued.id);
            if let Some(expiry) = &issued.expires_at {
                println!("expires:    {expiry}");
            }
            println!("token:      {}", issued.token.expose());
            eprintln!("The token is shown this once; idsync keeps only its hash.");
            Ok(0)
        }
        TenantCommand::Rotate {
            name,
            grace_hours,
            expires_in_days,
        } => {
            scim_tenant(config, &name)?;
            let grace = Duration::from_secs(grace_hours.saturating_mul(3600));
            let actor = audit::cli_actor();
            let issued =
                tokens::rotate_as(db, &name, days(expires_in_days), grace, Some(&actor)).await?;
            println!("token id:   {}", issued.id);
            println!("token:      {}", issued.token.expose());
            eprintln!(
                "The token is shown this once. The tenant's older tokens stop working in {grace_hours} hour(s)."
            );
            Ok(0)
        }
        TenantCommand::Revoke { name, token, all } => {
            scim_tenant(config, &name)?;
            if token.is_none() && !all {
                return Err(Exit::usage(format!(
                    "name the token to revoke (`--token ID`, see `idsync tenant list`), or \
                     pass --all to revoke every token of tenant `{name}` (its identity \
                     provider then stops provisioning)"
                ))
                .into());
            }
            let actor = audit::cli_actor();
            let revoked = tokens::revoke_as(db, &name, token.as_deref(), Some(&actor)).await?;
            if revoked == 0 {
                return Err(Exit::failed(match token {
                    Some(id) => format!("tenant `{name}` has no active token `{id}`"),
                    None => format!("tenant `{name}` has no active tokens"),
                })
                .into());
            }
            println!("revoked {revoked} token(s) of tenant `{name}`");
            Ok(0)
        }
        TenantCommand::List { format } => {
            #[derive(Serialize)]
            struct TenantInfo {
                tenant: String,
                enabled: bool,
                auth: &'static str,
                tokens: Vec<tokens::TokenInfo>,
                held: Option<holds::Hold>,
            }
            let all_tokens = tokens::list(db, None).await?;
            let all_holds = holds::list(db).await?;
            let tenants: Vec<TenantInfo> = config
                .connectors
                .values()
                .filter_map(|c| match &c.settings {
                    ConnectorSettings::Scim(s) => Some(TenantInfo {
                        tenant: c.id.clone(),
                        enabled: c.enabled,
                        auth: match s.auth {
                            TenantAuth::Bearer => "bearer",
                            TenantAuth::Basic { .. } => "basic",
                        },
                        tokens: all_tokens
                            .iter()
                            .filter(|t| t.tenant == c.id)
                            .cloned()
                            .collect(),
                        held: all_holds.iter().find(|h| h.tenant == c.id).cloned(),
                    }),
                    _ => None,
                })
                .collect();
            match format {
                crate::cli_output::Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&tenants)?)
                }
                crate::cli_output::Format::Table => {
                    let now = idsync::db::now_text();
                    println!(
                        "{:<20} {:<8} {:<7} {:<14} {:<24} {:<24} HELD",
                        "TENANT", "ENABLED", "AUTH", "TOKEN", "EXPIRES", "LAST USED"
                    );
                    for t in &tenants {
                        let held = t.held.as_ref().map_or("-", |_| "yes");
                        let active: Vec<_> =
                            t.tokens.iter().filter(|k| k.active_at(&now)).collect();
                        if active.is_empty() {
                            println!(
                                "{:<20} {:<8} {:<7} {:<14} {:<24} {:<24} {held}",
                                t.tenant, t.enabled, t.auth, "(none)", "-", "-"
                            );
                        }
                        for k in active {
                            println!(
                                "{:<20} {:<8} {:<7} {:<14} {:<24} {:<24} {held}",
                                t.tenant,
                                t.enabled,
                                t.auth,
                                k.id,
                                k.expires_at.as_deref().unwrap_or("never"),
                                k.last_used_at.as_deref().unwrap_or("never")
                            );
                        }
                    }
                }
            }
            Ok(0)
        }
    }
}

/// A `--since` value: RFC 3339, or a duration back from now in the settings' syntax
/// ([`idsync::spec::parse_duration`]) such as `15m`, `2h`, `7d` or `1h 30m`.
pub(crate) fn parse_since(text: &str) -> Result<String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let back = idsync::spec::parse_duration(text).map_err(|reason| {
        Exit::usage(format!(
            "--since {text:?}: give an RFC 3339 time or a duration such as 30m, 2h, 7d ({reason})"
        ))
    })?;
    let since = chrono::TimeDelta::from_std(back)
        .ok()
        .and_then(|back| idsync::clock::now().checked_sub_signed(back))
        .ok_or_else(|| Exit::usage(format!("--since {text:?}: that is too far back")))?;
    Ok(since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

pub async fn events(
    db: &Db,
    tenant: Option<String>,
    status: Option<String>,
    since: Option<String>,
    limit: u64,
    format: EventFormat,
) -> Result<u8> {
    let status = status
        .map(|s| s.parse::<StatusMatch>())
        .transpose()
        .map_err(Exit::usage)?;
    let since = since.map(|s| parse_since(&s)).transpose()?;
    let found = events::query(
        db,
        &EventQuery {
            tenant,
            status,
            since,
            limit,
            ..EventQuery::default()
        },
    )
    .await?;
    match format {
        EventFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        EventFormat::Csv => {
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            for event in &found {
                writer.serialize(event)?;
            }
            writer.flush()?;
        }
        EventFormat::Table => {
            println!(
                "{:<24} {:<14} {:<6} {:<40} {:>6} {:>9}  OPERATION",
                "AT", "TENANT", "METHOD", "PATH", "STATUS", "MS"
            );
            for e in &found {
                let path: String = e.path.chars().take(40).collect();
                println!(
                    "{:<24} {:<14} {:<6} {:<40} {:>6} {:>9.1}  {}",
                    e.at, e.tenant, e.method, path, e.status, e.duration_ms, e.operation
                );
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod since_tests {
    use chrono::{DateTime, TimeDelta};

    use super::parse_since;
    use crate::Exit;

    #[test]
    fn since_takes_an_rfc3339_time_or_the_settings_durations() {
        assert_eq!(
            parse_since("2026-01-02T03:04:05+01:00").expect("a time"),
            "2026-01-02T02:04:05.000Z"
        );
        for (text, seconds) in [
            ("30m", 1800),
            ("2h", 7200),
            ("7d", 604_800),
            ("1d", 86_400),
            ("2w", 1_209_600),
            ("1h 30m", 5400),
            ("1d12h", 129_600),
        ] {
            let back = TimeDelta::seconds(seconds);
            let before = idsync::clock::now();
            let since = parse_since(text).expect("a duration");
            let after = idsync::clock::now();
            let since = DateTime::parse_from_rfc3339(&since).expect("RFC 3339");
            // The result keeps milliseconds, so it may be up to 1 ms earlier.
            assert!(
                since >= before - back - TimeDelta::milliseconds(1),
                "{text}"
            );
            assert!(since <= after - back, "{text}");
        }
    }

    #[test]
    fn a_bad_since_is_a_usage_error_saying_why() {
        let err = parse_since("5x").expect_err("not a duration");
        assert_eq!(
            err.to_string(),
            "--since \"5x\": give an RFC 3339 time or a duration such as 30m, 2h, 7d (`5x` is \
             not a duration (`x` is not a unit; use s, m, h, d or w, such as \"7d\" or \"12h\"))"
        );
        assert_eq!(err.downcast_ref::<Exit>().map(|exit| exit.code), Some(2));
        assert!(parse_since("-1h").is_err());
        assert!(parse_since("500ms").is_err());
    }
}
