//! The `idsync` command line. Exit codes: 0 ok, 1 failed run, 2 bad configuration or
//! usage, 3 run held by a safety limit.

mod cli_admin;
mod cli_check;
mod cli_directory;
mod cli_exit;
mod cli_output;
mod cli_scim;
mod cli_serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use idsync::config::{Config, LogFormat};
use idsync::db::Db;
use idsync::store::runs;
use idsync::sync::{self, RunOptions, RunReport};

use cli_exit::{Exit, config_problems, error_text};
use cli_output::{Format, ProgressDisplay};

/// The allocator (see `idsync::Allocator`).
#[global_allocator]
static ALLOCATOR: idsync::Allocator = idsync::Allocator;

#[derive(Parser)]
#[command(
    name = "idsync",
    version,
    about = "Directory sync: identity providers into your application's directory"
)]
struct Cli {
    /// Path of idsync.toml.
    #[arg(
        long,
        global = true,
        env = "IDSYNC_CONFIG",
        default_value = "idsync.toml"
    )]
    config: PathBuf,
    /// Log filter (e.g. `info`, `idsync=debug`); defaults to `warn` on a terminal, else the
    /// configured level.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log lines as `text` or `json` (one object per line, for log shippers); default
    /// `[log] format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<CliLogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the whole configuration and print every problem.
    Check {
        /// Also connect to every enabled connector's source and check its credentials and
        /// read permissions.
        #[arg(long)]
        connect: bool,
        /// How to print: text for people, or one JSON object (problems, warnings, checks).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Read one connector's source and apply what changed to the target.
    Sync {
        /// The connector id (file stem in connectors/).
        connector: String,
        /// Ask the running node whose admin API is at this URL to run it instead
        /// (`http://127.0.0.1:5502`; the admin token from IDSYNC_ADMIN_TOKEN, see
        /// `idsync admin-token create`).
        #[arg(long)]
        via: Option<String>,
        #[command(flatten)]
        run: RunFlags,
    },
    /// Re-project stored mirrors through the current mappings, fetching nothing.
    Reconcile {
        /// Only this connector or SCIM tenant (default: every enabled connector); the same
        /// as `--connector`.
        #[arg(conflicts_with = "connector", value_name = "CONNECTOR")]
        named: Option<String>,
        /// Only this connector (default: every enabled connector).
        #[arg(long)]
        connector: Option<String>,
        #[command(flatten)]
        run: RunFlags,
    },
    /// Users in the target directory.
    Users {
        #[command(subcommand)]
        command: cli_directory::ListShow,
    },
    /// Groups in the target directory.
    Groups {
        #[command(subcommand)]
        command: cli_directory::ListShow,
    },
    /// Run this node until SIGINT or SIGTERM: the SCIM server (every enabled connector of
    /// kind "scim" is a tenant), the scheduler of the pull connectors and the admin API.
    Serve {
        /// Listen for SCIM here instead of `[scim] listen`.
        #[arg(long)]
        scim_listen: Option<std::net::SocketAddr>,
        /// Serve the admin API here instead of `[admin] listen`.
        #[arg(long)]
        admin_listen: Option<std::net::SocketAddr>,
        /// Keep trying to reach the database this many seconds at start-up.
        #[arg(long, default_value_t = 0)]
        wait_for_db: u64,
    },
    /// Ask a node's admin API whether it is ready (`GET /readyz`): exit 0 when it is, 1
    /// otherwise. For container health checks, where the image has no HTTP client; it
    /// reads no configuration.
    Healthcheck {
        /// The node's readiness URL (set the variable in an image whose node listens for
        /// the admin API elsewhere).
        #[arg(
            long,
            env = "IDSYNC_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:5502/readyz"
        )]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Bearer tokens of the admin API of `idsync serve` (shown once, stored hashed).
    AdminToken {
        #[command(subcommand)]
        command: cli_admin::AdminTokenCommand,
    },
    /// The audit trail: held runs confirmed or discarded, runs started by hand, token
    /// changes; newest first.
    Audit {
        /// Only entries since: an RFC 3339 time or a duration back (30m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Bearer tokens of SCIM tenants.
    Tenant {
        #[command(subcommand)]
        command: cli_scim::TenantCommand,
    },
    /// The SCIM request log, newest first.
    Events {
        /// Only this tenant's requests.
        #[arg(long)]
        tenant: Option<String>,
        /// A status (404) or a class (4xx, 5xx).
        #[arg(long)]
        status: Option<String>,
        /// Only events since: an RFC 3339 time or a duration back (30m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// How to print: a table, JSON or CSV.
        #[arg(long, value_enum, default_value_t = cli_scim::EventFormat::Table)]
        format: cli_scim::EventFormat,
    },
    /// Bring the state database's schema up to this idsync's (what `idsync serve` also does
    /// when it starts; the commands that only read never do).
    Migrate,
    /// Recent sync runs.
    Runs {
        /// Only this connector.
        #[arg(long)]
        connector: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliLogFormat {
    Text,
    Json,
}

#[derive(Args, Clone, Copy)]
struct RunFlags {
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply even when more would be removed than the mapping's limits allow.
    #[arg(long)]
    allow_mass_delete: bool,
    /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl RunFlags {
    /// Writes to the audit trail that `command` lifts `connector`'s mass-delete limits, when
    /// it does and will write. Called before the run: a crash in the middle must not lose
    /// who lifted the limits.
    async fn record_override(&self, db: &Db, connector: &str, command: &str) -> Result<()> {
        if self.allow_mass_delete && !self.dry_run {
            idsync::store::audit::record(
                db,
                &idsync::store::audit::cli_actor(),
                idsync::store::audit::Action::AllowMassDelete,
                connector,
                Some(&format!("{command} --allow-mass-delete")),
            )
            .await?;
        }
        Ok(())
    }

    fn options(&self, inactive_is_removal: bool) -> RunOptions {
        RunOptions {
            dry_run: self.dry_run,
            allow_mass_delete: self.allow_mass_delete,
            inactive_is_removal,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error.downcast_ref::<Exit>().map_or(1, |e| e.code);
            eprintln!("error: {}", error_text(&error));
            ExitCode::from(code)
        }
    }
}

impl Command {
    /// Commands that only read the state database: they load the configuration without
    /// its secrets, never migrate, and give up on a database that does not answer soon.
    fn reads_only(&self) -> bool {
        matches!(
            self,
            Command::Users { .. }
                | Command::Groups { .. }
                | Command::Runs { .. }
                | Command::Events { .. }
                | Command::Audit { .. }
                | Command::Tenant {
                    command: cli_scim::TenantCommand::List { .. }
                }
        )
    }
}

/// How long a command that only reads waits for the database.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn init_logging(level: &str, format: LogFormat, ansi: bool) {
    // PostgreSQL's notices (`relation "_sqlx_migrations" already exists, skipping` at every
    // start) are the server talking to itself: shown only when asked for by name.
    let quiet = ",sqlx::postgres::notice=warn";
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(format!("{level}{quiet}")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}

async fn open_db(config: &Config) -> Result<Db> {
    let url = config.engine.database_url.expose();
    Db::open(url).await.with_context(|| {
        format!(
            "opening the state database at {}",
            idsync::db::redact_url(url)
        )
    })
}

/// Runs a command that needs only the database, closing it once the command is done. A
/// command that only reads opens it without migrating.
async fn with_db(config: &Config, command: impl AsyncFnOnce(&Db) -> Result<u8>) -> Result<u8> {
    let db = open_db(config).await?;
    let code = command(&db).await?;
    db.close().await;
    Ok(code)
}

/// [`with_db`] for a command that only reads.
async fn reading_db(config: &Config, command: impl AsyncFnOnce(&Db) -> Result<u8>) -> Result<u8> {
    let url = config.engine.database_url.expose();
    let db = Db::open_for_reading(url, READ_WAIT)
        .await
        .with_context(|| {
            format!(
                "opening the state database at {}",
                idsync::db::redact_url(url)
            )
        })?;
    let code = command(&db).await?;
    db.close().await;
    Ok(code)
}

async fn run(cli: Cli) -> Result<u8> {
    // A probe runs every few seconds with neither the configuration nor its secrets.
    if let Command::Healthcheck { url, timeout } = &cli.command {
        return cli_serve::healthcheck(url, std::time::Duration::from_secs(*timeout)).await;
    }
    let reads_only = cli.command.reads_only();
    let config = match reads_only {
        true => Config::load_for_reading(&cli.config).map_err(config_problems)?,
        false => match (&cli.command, Config::load(&cli.config)) {
            (_, Ok(config)) => config,
            // `check --format json` reports the problems as JSON too.
            (Command::Check { format, .. }, Err(errors)) if *format == Format::Json => {
                cli_check::print_problems(&errors)?;
                return Ok(Exit::USAGE);
            }
            (_, Err(errors)) => return Err(config_problems(errors)),
        },
    };
    let interactive = std::io::stderr().is_terminal();
    // A node logs at its configured level even when started from a terminal.
    let serving = matches!(cli.command, Command::Serve { .. });
    let level = cli.log_level.clone().unwrap_or_else(|| {
        if interactive && !serving {
            // The command prints a failed run's error as its result: not a second time.
            format!("warn,{}=off", sync::FAILED_LOG)
        } else {
            config.engine.log_level.clone()
        }
    });
    let log_format = match cli.log_format {
        Some(CliLogFormat::Json) => LogFormat::Json,
        Some(CliLogFormat::Text) => LogFormat::Text,
        None => config.engine.log_format,
    };
    init_logging(&level, log_format, interactive);

    match cli.command {
        Command::Check { connect, format } => cli_check::check(&config, connect, format).await,
        Command::Sync {
            connector,
            via: Some(via),
            ..
        } => cli_serve::run_via(&via, &connector).await,
        Command::Sync { connector, run, .. } => {
            let connector_config = config.connector(&connector).ok_or_else(|| {
                Exit::usage(format!(
                    "no connector `{connector}` in {} (known: {})",
                    config.engine.connectors_dir.display(),
                    config
                        .connectors
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let mapping = config.mapping_for(connector_config);
            let pull = connector_config
                .build()
                .with_context(|| format!("starting connector `{connector}`"))?;
            let db = open_db(&config).await?;
            run.record_override(&db, &connector, "sync").await?;
            let progress = ProgressDisplay::new(interactive, &connector);
            let options = run.options(false);
            let directory = config.engine.target.directory();
            let result = sync::sync_to(
                &db,
                &*directory,
                &connector,
                mapping,
                pull.as_ref(),
                options,
                &progress,
            )
            .await;
            progress.finish();
            db.close().await;
            report_run(result, run.format)
        }
        Command::Reconcile {
            named,
            connector,
            run,
        } => {
            let ids: Vec<String> = match named.or(connector) {
                Some(id) => {
                    if config.connector(&id).is_none() {
                        return Err(Exit::usage(format!("no connector `{id}`")).into());
                    }
                    vec![id]
                }
                None => config
                    .connectors
                    .values()
                    .filter(|c| c.enabled)
                    .map(|c| c.id.clone())
                    .collect(),
            };
            let db = open_db(&config).await?;
            let mut worst = 0;
            for id in ids {
                let Some(connector_config) = config.connector(&id) else {
                    continue;
                };
                let mapping = config.mapping_for(connector_config);
                run.record_override(&db, &id, "reconcile").await?;
                let progress = ProgressDisplay::new(interactive, &id);
                let options = run.options(matches!(
                    connector_config.settings,
                    idsync::config::ConnectorSettings::Scim(_)
                ));
                let directory = config.engine.target.directory();
                let result =
                    sync::reconcile_to(&db, &*directory, &id, mapping, options, &progress).await;
                progress.finish();
                let code = match report_run(result, run.format) {
                    Ok(code) => code,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        1
                    }
                };
                worst = worst.max(code);
            }
            db.close().await;
            Ok(worst)
        }
        Command::Users { command } => {
            reading_db(&config, async |db| {
                cli_directory::users_command(db, command).await
            })
            .await
        }
        Command::Groups { command } => {
            reading_db(&config, async |db| {
                cli_directory::groups_command(db, command).await
            })
            .await
        }
        Command::Serve {
            scim_listen,
            admin_listen,
            wait_for_db,
        } => {
            let options = idsync::daemon::ServeOptions {
                scim_listen,
                admin_listen,
                wait_for_database: std::time::Duration::from_secs(wait_for_db),
            };
            cli_serve::serve(config, options).await
        }
        Command::AdminToken { command } => {
            with_db(&config, async |db| {
                cli_admin::admin_token(db, command).await
            })
            .await
        }
        Command::Audit {
            since,
            limit,
            format,
        } => {
            reading_db(&config, async |db| {
                cli_admin::audit(db, since, limit, format).await
            })
            .await
        }
        Command::Tenant { command } if reads_only => {
            reading_db(&config, async |db| {
                cli_scim::tenant(&config, db, command).await
            })
            .await
        }
        Command::Tenant { command } => {
            with_db(&config, async |db| {
                cli_scim::tenant(&config, db, command).await
            })
            .await
        }
        Command::Events {
            tenant,
            status,
            since,
            limit,
            format,
        } => {
            reading_db(&config, async |db| {
                cli_scim::events(db, tenant, status, since, limit, format).await
            })
            .await
        }
        // Answered before the configuration is loaded (above); kept whole for the match.
        Command::Healthcheck { url, timeout } => {
            cli_serve::healthcheck(&url, std::time::Duration::from_secs(timeout)).await
        }
        Command::Migrate => {
            with_db(&config, async |db| {
                println!(
                    "{}: {}",
                    idsync::db::redact_url(config.engine.database_url.expose()),
                    db.ready()
                        .await
                        .map_or_else(|e| e, |()| "schema up to date".to_owned())
                );
                Ok(0)
            })
            .await
        }
        Command::Runs {
            connector,
            limit,
            format,
        } => {
            reading_db(&config, async |db| {
                let records = runs::recent_runs(db.pool(), connector.as_deref(), limit).await?;
                cli_output::print_runs(&records, format)?;
                Ok(0)
            })
            .await
        }
    }
}

fn report_run(result: Result<RunReport, sync::SyncError>, format: Format) -> Result<u8> {
    let report = result?;
    cli_output::print_report(&report, format)?;
    Ok(match report.outcome {
        runs::Outcome::Held => 3,
        runs::Outcome::Failed => 1,
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand, argument and flag says what it is for in `--help`.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "idsync", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
    }
}
