//! The admin-access commands: `admin-token` (bearer tokens of the admin API, shown once and
//! stored hashed) and `audit` (who confirmed, discarded, ran or changed tokens).

use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use idsync::db::Db;
use idsync::store::admin_tokens::{self, AdminTokenError};
use idsync::store::audit;

use crate::Exit;
use crate::cli_output::Format;

#[derive(Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token; it is printed once and only its hash is kept.
    Create {
        /// Whose token this is (letters, digits, `-_.@`); the audit trail names it.
        #[arg(default_value = "admin")]
        name: String,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u64>,
    },
    /// Admin tokens (never the tokens themselves).
    List {
        /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke the active token of this name.
    Revoke {
        /// The token's name (from `admin-token list`).
        name: String,
    },
}

fn usage_error(error: AdminTokenError) -> anyhow::Error {
    match error {
        AdminTokenError::Db(e) => e.into(),
        other => Exit::usage(other.to_string()).into(),
    }
}

pub async fn admin_token(db: &Db, command: AdminTokenCommand) -> Result<u8> {
    let actor = audit::cli_actor();
    match command {
        AdminTokenCommand::Create {
            name,
            expires_in_days,
        } => {
            let ttl = expires_in_days.map(|d| Duration::from_secs(d.saturating_mul(86_400)));
            let issued = admin_tokens::create(db, &name, ttl, &actor)
                .await
                .map_err(usage_error)?;
            println!("name:     {}", issued.name);
            println!("token id: {}", issued.id);
            if let Some(expiry) = &issued.expires_at {
                println!("expires:  {expiry}");
            }
            println!("token:    {}", issued.token.expose());
            eprintln!(
                "The token is shown this once; idsync keeps only its hash. Send it as \
                 `Authorization: Bearer <token>`; `idsync sync --via URL` reads it from \
                 IDSYNC_ADMIN_TOKEN."
            );
            Ok(0)
        }
        AdminTokenCommand::List { format } => {
            let tokens = admin_tokens::list(db).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&tokens)?),
                Format::Table => {
                    println!(
                        "{:<20} {:<14} {:<24} {:<24} {:<24} STATE",
                        "NAME", "ID", "CREATED", "EXPIRES", "LAST USED"
                    );
                    let now = idsync::db::now_text();
                    for t in &tokens {
                        let state = if t.revoked_at.is_some() {
                            "revoked"
                        } else if t.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
                            "expired"
                        } else {
                            "active"
                        };
                        println!(
                            "{:<20} {:<14} {:<24} {:<24} {:<24} {state}",
                            t.name,
                            t.id,
                            t.created_at,
                            t.expires_at.as_deref().unwrap_or("never"),
                            t.last_used_at.as_deref().unwrap_or("never")
                        );
                    }
                }
            }
            Ok(0)
        }
        AdminTokenCommand::Revoke { name } => {
            admin_tokens::revoke(db, &name, &actor)
                .await
                .map_err(usage_error)?;
            println!("revoked admin token `{name}`");
            Ok(0)
        }
    }
}

pub async fn audit(db: &Db, since: Option<String>, limit: i64, format: Format) -> Result<u8> {
    let since = since
        .map(|s| crate::cli_scim::parse_since(&s))
        .transpose()?;
    let entries = audit::list(db, since.as_deref(), limit).await?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Table => {
            println!(
                "{:<24} {:<20} {:<20} {:<20} DETAIL",
                "AT", "WHO", "ACTION", "TARGET"
            );
            for e in &entries {
                println!(
                    "{:<24} {:<20} {:<20} {:<20} {}",
                    e.at,
                    e.actor,
                    e.action,
                    e.target,
                    e.detail.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(0)
}
