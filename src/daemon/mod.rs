//! `idsync serve`: one process per node with the SCIM server, the scheduler of the pull
//! connectors and the admin API, started together and stopped together.
//!
//! Start-up binds both listeners before anything runs (a port in use is named and the
//! process exits), waits for the database if asked to, and migrates it. Shutdown (SIGINT or
//! SIGTERM) stops accepting on both listeners, lets SCIM requests in flight finish, lets
//! runs in progress finish for up to the grace period and abandons the rest (an abandoned
//! run's transaction is rolled back, so nothing is half-applied), writes the last events,
//! and returns. SIGHUP reloads the connectors, mappings and SCIM tenants (`reload`).
//!
//! Several nodes may share one PostgreSQL target: SCIM requests are stateless, and a run
//! of a connector first takes a session-level advisory lock on a connection of its own, so
//! exactly one node runs it; a node that finds the lock taken skips that run. If the node
//! holding it dies, its connection closes, the lock goes with it, and the run's
//! transaction never committed.

mod actions;
pub mod admin;
mod launcher;
mod origin;
mod pages;
pub mod reload;
mod run_metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{Config, ConnectorSettings};
use crate::db::{Db, DbError};
use crate::scheduler::{Job, Scheduler};
use crate::scim::server::ScimServer;
use crate::store::events::EventLog;

pub use launcher::Launcher;

/// What can stop `serve` from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen for {what} on {addr}: {source}{hint}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
        hint: String,
    },
    #[error("the target database is not reachable ({url}): {source}")]
    Database {
        url: String,
        #[source]
        source: DbError,
    },
    #[error(
        "the admin API would listen on {addr}, which is not loopback, without any admin token: \
         anyone who reaches that address could confirm mass removals and read personal data. \
         Create a token first (`idsync admin-token create <name>`) or set `[admin] token`, or \
         listen on 127.0.0.1"
    )]
    AdminUnprotected { addr: SocketAddr },
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Overrides `[scim] listen`.
    pub scim_listen: Option<SocketAddr>,
    /// Overrides `[admin] listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Keep trying to reach the database this long before giving up.
    pub wait_for_database: Duration,
}

/// Opens the database, retrying for up to `wait` (a database starting next to idsync,
/// as under docker compose or systemd ordering, is not an error).
pub async fn open_database(url: &str, wait: Duration) -> Result<Db, ServeError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(200);
    loop {
        // PostgreSQL: one direct connection first; the pool would keep retrying a refused
        // connection for its whole acquire timeout before saying so. (SQLite creates its
        // file when opened through the pool.)
        sqlx::any::install_default_drivers();
        let probe = if !url.starts_with("postgres") {
            Ok(())
        } else {
            match tokio::time::timeout(
                Duration::from_secs(10),
                <sqlx::AnyConnection as sqlx::Connection>::connect(url),
            )
            .await
            {
                Ok(Ok(conn)) => {
                    let _ = sqlx::Connection::close(conn).await;
                    Ok(())
                }
                Ok(Err(source)) => Err(DbError::Connect {
                    backend: if url.starts_with("postgres") {
                        "postgres"
                    } else {
                        "sqlite"
                    },
                    source,
                }),
                Err(_) => Err(DbError::Corrupt {
                    context: "connecting to the database",
                    message: "no answer within 10 s".into(),
                }),
            }
        };
        let opened = match probe {
            Ok(()) => Db::open(url).await,
            Err(error) => Err(error),
        };
        match opened {
            Ok(db) => return Ok(db),
            Err(source) if tokio::time::Instant::now() + delay > deadline => {
                return Err(ServeError::Database {
                    url: crate::db::redact_url(url),
                    source,
                });
            }
            Err(error) => {
                warn!(%error, retry_in_ms = delay.as_millis() as u64, "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| {
        let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                " (port {} is taken by another process; set `listen` in idsync.toml or pass \
                 --{}-listen)",
                addr.port(),
                if what == "SCIM" { "scim" } else { "admin" }
            )
        } else {
            String::new()
        };
        ServeError::Listen {
            what,
            addr,
            source,
            hint,
        }
    })
}

/// The scheduler's jobs: every enabled pull connector (those without a schedule run only
/// when asked).
pub fn jobs_of(config: &Config) -> Vec<Job> {
    config
        .connectors
        .values()
        .filter(|c| c.enabled && !matches!(c.settings, ConnectorSettings::Scim(_)))
        .map(|c| {
            Job::new(c.id.clone(), c.schedule.clone())
                .with_timezone(c.timezone)
                .with_jitter(c.jitter)
        })
        .collect()
}

/// The addresses `serve` ended up listening on.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub scim: SocketAddr,
    pub admin: SocketAddr,
}

/// Runs the node until `shutdown` completes. `on_bound` is told the listening addresses
/// once both listeners are up.
pub async fn serve(
    config: Arc<Config>,
    db: Db,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    // Every admin endpoint but the probes needs a token; off loopback, a node without any
    // would be one that nobody can administer safely, so it does not start (nor listen).
    let admin_addr = options.admin_listen.unwrap_or(config.engine.admin_listen);
    if !admin_addr.ip().is_loopback() && config.engine.admin_token.is_none() {
        let any = crate::store::admin_tokens::any_active(&db)
            .await
            .map_err(|source| ServeError::Database {
                url: crate::db::redact_url(config.engine.database_url.expose()),
                source,
            })?;
        if !any {
            return Err(ServeError::AdminUnprotected { addr: admin_addr });
        }
    }
    let scim_listener = bind(
        "SCIM",
        options.scim_listen.unwrap_or(config.engine.scim_listen),
    )
    .await?;
    let admin_listener = bind("the admin API", admin_addr).await?;
    let bound = Bound {
        scim: scim_listener.local_addr()?,
        admin: admin_listener.local_addr()?,
    };

    let tenants = ScimServer::tenants_of(&config);
    let (events, event_writer) = EventLog::start(
        db.clone(),
        ScimServer::retention_of(&tenants),
        crate::config::ScimTenantSettings::default().event_retention,
    );
    let scim = Arc::new(ScimServer::new(
        db.clone(),
        tenants,
        config.engine.scim_options.clone(),
        events.clone(),
    ));

    let live = reload::LiveConfig::new(config.clone());
    let launcher = Arc::new(Launcher::live(live.clone(), db.clone()));
    let scheduler = Scheduler::new(
        jobs_of(&config),
        launcher.clone(),
        config.engine.max_concurrent_runs,
    );
    let handle = scheduler.handle();
    // Every connector's series from the first scrape, not from its first run.
    run_metrics::initialise(&config, &db).await;

    // One signal fans out to the three parts.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let reloader = reload::Reloader {
        live: live.clone(),
        scheduler: handle.clone(),
        scim: scim.clone(),
        events: events.clone(),
        db: db.clone(),
    };
    #[cfg(unix)]
    let reload_task = reload::on_sighup(reloader.clone(), stopped(stop_rx.clone()))?;
    let admin = admin::AdminState {
        config: live,
        db: db.clone(),
        scheduler: handle,
        launcher: launcher.clone(),
        token: config.engine.admin_token.clone(),
        origins: origin::AllowedOrigins::new(bound.admin, config.engine.admin_public_url.as_ref()),
        scim_health: Some(scim.health()),
        sign_in_failures: admin::sign_in_limiter(),
        reloader,
    };
    info!(scim = %bound.scim, admin = %bound.admin, tenants = ?scim.tenant_ids(), "idsync serving");
    on_bound(bound);

    let scim_task = tokio::spawn(crate::scim::server::serve(
        scim_listener,
        scim,
        stopped(stop_rx.clone()),
    ));
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin,
        stopped(stop_rx.clone()),
    ));
    let scheduler_rx = stop_rx.clone();
    let mut scheduler_task = tokio::spawn(scheduler.run(stopped(scheduler_rx)));

    shutdown.await;
    info!("shutting down: no new requests or runs");
    let _ = stop_tx.send(true);
    let grace = config.engine.shutdown_grace;
    if tokio::time::timeout(grace, &mut scheduler_task)
        .await
        .is_err()
    {
        warn!(
            grace_seconds = grace.as_secs(),
            "runs still in progress after the grace period are abandoned (rolled back)"
        );
        // Dropping a run drops its transaction uncommitted.
        scheduler_task.abort();
        let _ = scheduler_task.await;
    }
    let _ = tokio::time::timeout(grace, scim_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), admin_task).await;
    #[cfg(unix)]
    let _ = tokio::time::timeout(Duration::from_secs(5), reload_task).await;
    events.flush().await;
    drop(events);
    let _ = tokio::time::timeout(Duration::from_secs(5), event_writer).await;
    info!("stopped");
    Ok(())
}
