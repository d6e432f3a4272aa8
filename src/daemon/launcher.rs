//! Runs one connector for the scheduler (or the admin API): claims the schedule's due slot
//! (so nodes whose clocks differ run it once between them), builds the connector, takes the
//! connector's run lock so that exactly one node runs it at a time (PostgreSQL), runs the
//! sync, and records metrics. A run keeps the configuration it started with even when a
//! reload replaces it meanwhile.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::Connection;
use tracing::{info, warn};

use chrono::{DateTime, Utc};

use super::reload::LiveConfig;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::scheduler::{RunLauncher, RunResult, Trigger};
use crate::store::locks::{self, LockSpace};
use crate::store::runs::Outcome;
use crate::store::slots;
use crate::sync::{self, NoProgress, RunOptions};

/// Launches runs of the configured connectors.
pub struct Launcher {
    config: LiveConfig,
    db: Db,
    /// This node's name in claimed slots: host name and process id.
    node: String,
}

/// This node's name: the host name (as the kernel reports it) and the process id.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string());
    format!("{host}:{}", std::process::id())
}

/// Holds a connector's run lock for as long as it lives: a connection of its own, so the
/// lock ends with the connection when the process dies.
struct RunLock {
    conn: Option<sqlx::AnyConnection>,
}

impl RunLock {
    async fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the connection releases the session lock.
            let _ = conn.close().await;
        }
    }
}

impl Launcher {
    pub fn new(config: Arc<Config>, db: Db) -> Launcher {
        Launcher::live(LiveConfig::new(config), db)
    }

    /// A launcher that reads the configuration reloads swap into `config`.
    pub fn live(config: LiveConfig, db: Db) -> Launcher {
        Launcher {
            config,
            db,
            node: node_name(),
        }
    }

    /// Claims the run of `connector` due at `slot` for this node: true when no node had
    /// claimed it yet.
    pub async fn claim_slot(&self, connector: &str, slot: DateTime<Utc>) -> Result<bool, DbError> {
        slots::claim(&self.db, connector, slot, &self.node).await
    }

    /// Whether another process holds `connector`'s run lock (PostgreSQL; SQLite has one
    /// node by nature).
    pub async fn running_elsewhere(&self, connector: &str) -> Result<bool, DbError> {
        if self.db.backend() != crate::db::Backend::Postgres {
            return Ok(false);
        }
        locks::is_held(self.db.pool(), LockSpace::ConnectorRun, connector).await
    }

    /// On PostgreSQL, the connector's run lock (None when another node holds it); on
    /// SQLite, which is one node by nature, nothing to take.
    async fn lock(&self, connector: &str) -> Result<Option<RunLock>, String> {
        if self.db.backend() != crate::db::Backend::Postgres {
            return Ok(Some(RunLock { conn: None }));
        }
        // The database URL is restart-only: every snapshot has the one the node started with.
        let current = self.config.current();
        let url = current.engine.database_url.expose();
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .map_err(|e| format!("connecting for the run lock: {e}"))?;
        let taken = locks::try_lock_for_session(&mut conn, LockSpace::ConnectorRun, connector)
            .await
            .map_err(|e| e.to_string())?;
        if taken {
            Ok(Some(RunLock { conn: Some(conn) }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Runs `connector` once with `options`; the result the scheduler records.
    pub async fn run_with(&self, connector: &str, options: RunOptions) -> RunResult {
        let snapshot = self.config.current();
        let Some(config) = snapshot.connector(connector) else {
            return RunResult::Failed(format!("no connector `{connector}`"));
        };
        let pull = match config.build() {
            Ok(pull) => pull,
            Err(error) => return RunResult::Failed(error.to_string()),
        };
        let lock = match self.lock(connector).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                info!(connector, "another node is running this connector; skipped");
                return RunResult::Skipped("another node is running it".into());
            }
            Err(error) => return RunResult::Failed(error),
        };
        info!(
            connector,
            "run started (this node holds the connector's run lock)"
        );
        let mapping = snapshot.mapping_for(config);
        let started = Instant::now();
        let result = sync::sync_to(
            &self.db,
            &*snapshot.engine.target.directory(),
            connector,
            mapping,
            pull.as_ref(),
            options,
            &NoProgress,
        )
        .await;
        lock.release().await;
        crate::metrics::RUN_SECONDS
            .with_label_values(&[connector])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(report) => {
                super::run_metrics::record_run(connector, &report);
                match report.outcome {
                    Outcome::Held => {
                        RunResult::Failed(format!("held: {}", report.message.unwrap_or_default()))
                    }
                    _ => RunResult::Finished,
                }
            }
            Err(error) => {
                warn!(connector, %error, "run failed");
                crate::metrics::RUNS
                    .with_label_values(&[connector, Outcome::Failed.as_str()])
                    .inc();
                RunResult::Failed(error.to_string())
            }
        }
    }
}

#[async_trait]
impl RunLauncher for Launcher {
    async fn run(&self, connector: &str, trigger: Trigger) -> RunResult {
        info!(connector, trigger = trigger.as_str(), "run starting");
        self.run_with(connector, RunOptions::default()).await
    }

    async fn run_scheduled(&self, connector: &str, slot: DateTime<Utc>) -> RunResult {
        match self.claim_slot(connector, slot).await {
            Ok(true) => {
                info!(connector, %slot, "run starting (this node claimed the scheduled slot)");
                self.run_with(connector, RunOptions::default()).await
            }
            Ok(false) => {
                info!(connector, %slot, "another node already ran this scheduled slot; skipped");
                RunResult::Skipped(format!("another node claimed the run due at {slot}"))
            }
            Err(error) => RunResult::Failed(format!("claiming the scheduled run: {error}")),
        }
    }
}
