//! Reloading the configuration of a running `idsync serve` (SIGHUP, or `systemctl reload`).
//!
//! The whole tree is loaded again as `idsync check` would (every problem, plus each enabled
//! pull connector built once). A tree with problems is refused: the problems are logged and
//! the node keeps the configuration it runs. A tree that loads replaces the connectors, the
//! mappings and the SCIM tenants (with their schedules, event retention and deletion limits)
//! without closing either listener; a run or a SCIM request in progress finishes with the
//! configuration it started with.
//!
//! What the node was started with stays until a restart, and a change to it is logged as
//! such: the listen addresses and `[admin] public_url` (the listeners are bound), the
//! database URL and the target (every part holds its connections), `[admin] token`,
//! `[scim]` server limits, `[scheduler]` settings and `[log]`.

use std::sync::{Arc, PoisonError, RwLock};

use tracing::{error, info, warn};

use crate::config::{Config, ConnectorSettings, EngineConfig};
use crate::scheduler::SchedulerHandle;
use crate::scim::server::ScimServer;
use crate::store::events::EventLog;

/// The configuration the node runs now; cheap to clone, shared by the parts of `serve`.
/// Whoever reads it takes a snapshot ([`LiveConfig::current`]) and keeps it for the
/// request or run at hand.
#[derive(Clone)]
pub struct LiveConfig(Arc<RwLock<Arc<Config>>>);

impl LiveConfig {
    pub fn new(config: Arc<Config>) -> LiveConfig {
        LiveConfig(Arc::new(RwLock::new(config)))
    }

    /// The configuration as of now.
    pub fn current(&self) -> Arc<Config> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, config: Arc<Config>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = config;
    }
}

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the configuration has problems:\n{0}")]
    Invalid(crate::config::ConfigErrors),
    #[error("connector `{connector}` cannot be started: {reason}")]
    Connector { connector: String, reason: String },
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Settings that changed in idsync.toml but take effect only after a restart.
    pub need_restart: Vec<&'static str>,
}

/// The parts of a serving node a reload swaps configuration into.
#[derive(Clone)]
pub struct Reloader {
    pub live: LiveConfig,
    pub scheduler: SchedulerHandle,
    pub scim: Arc<ScimServer>,
    pub events: EventLog,
    /// For the metric series of connectors and tenants a reload adds.
    pub db: crate::db::Db,
}

impl Reloader {
    /// Loads the configuration again from the file the node was started with and, when it
    /// has no problems, swaps it in.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let old = self.live.current();
        let loaded = Config::load(&old.path).map_err(ReloadError::Invalid)?;
        for connector in loaded.connectors.values().filter(|c| c.enabled) {
            if matches!(connector.settings, ConnectorSettings::Scim(_)) {
                continue;
            }
            if let Err(error) = connector.build() {
                return Err(ReloadError::Connector {
                    connector: connector.id.clone(),
                    reason: error.to_string(),
                });
            }
        }
        for warning in crate::config::attributes::check(&loaded) {
            warn!(%warning, "configuration reload");
        }
        let need_restart = restart_only_changes(&old.engine, &loaded.engine);
        let config = Arc::new(Config {
            engine: keep_restart_only(&old.engine, loaded.engine.clone()),
            ..loaded
        });
        let changes = Reloaded {
            added: config
                .connectors
                .keys()
                .filter(|id| !old.connectors.contains_key(*id))
                .cloned()
                .collect(),
            removed: old
                .connectors
                .keys()
                .filter(|id| !config.connectors.contains_key(*id))
                .cloned()
                .collect(),
            need_restart,
        };

        let tenants = ScimServer::tenants_of(&config);
        self.events
            .set_retention(ScimServer::retention_of(&tenants))
            .await;
        self.scim.replace_tenants(tenants);
        self.scheduler.replace_jobs(super::jobs_of(&config));
        // Added connectors and tenants get their series at zero, as at start-up.
        super::run_metrics::initialise(&config, &self.db).await;
        self.live.replace(config);
        Ok(changes)
    }

    /// [`Reloader::reload`], logged.
    pub async fn reload_logged(&self) {
        info!("reloading the configuration (SIGHUP)");
        match self.reload().await {
            Ok(changes) => {
                for setting in &changes.need_restart {
                    warn!(
                        setting,
                        "changed in idsync.toml, but takes effect only after a restart; the \
                         node keeps the value it started with"
                    );
                }
                info!(
                    added = ?changes.added,
                    removed = ?changes.removed,
                    tenants = ?self.scim.tenant_ids(),
                    "configuration reloaded: connectors, mappings and SCIM tenants replaced"
                );
            }
            Err(ReloadError::Invalid(errors)) => {
                for problem in &errors.0 {
                    error!(%problem, "configuration reload refused");
                }
                error!(
                    problems = errors.0.len(),
                    "configuration reload refused; the node keeps running its previous \
                     configuration (run `idsync check` to see the problems)"
                );
            }
            Err(refused) => error!(
                error = %refused,
                "configuration reload refused; the node keeps running its previous configuration"
            ),
        }
    }
}

/// The settings of `old` a reload cannot apply, by their place in idsync.toml, that differ
/// in `new`.
fn restart_only_changes(old: &EngineConfig, new: &EngineConfig) -> Vec<&'static str> {
    let debug = |value: &dyn std::fmt::Debug| format!("{value:?}");
    let checks: [(&'static str, bool); 9] = [
        (
            "[target] database_url",
            old.database_url.expose() != new.database_url.expose(),
        ),
        ("[target]", debug(&old.target) != debug(&new.target)),
        ("[scim] listen", old.scim_listen != new.scim_listen),
        (
            "[scim] server limits",
            debug(&old.scim_options) != debug(&new.scim_options),
        ),
        ("[admin] listen", old.admin_listen != new.admin_listen),
        (
            "[admin] token",
            old.admin_token.as_ref().map(|t| t.expose())
                != new.admin_token.as_ref().map(|t| t.expose()),
        ),
        (
            "[admin] public_url",
            old.admin_public_url != new.admin_public_url,
        ),
        (
            "[scheduler]",
            old.max_concurrent_runs != new.max_concurrent_runs
                || old.shutdown_grace != new.shutdown_grace,
        ),
        (
            "[log]",
            old.log_level != new.log_level || old.log_format != new.log_format,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

/// `new` with the settings only a restart applies taken from `old`.
fn keep_restart_only(old: &EngineConfig, new: EngineConfig) -> EngineConfig {
    EngineConfig {
        database_url: old.database_url.clone(),
        target: old.target.clone(),
        scim_listen: old.scim_listen,
        scim_options: old.scim_options.clone(),
        admin_listen: old.admin_listen,
        admin_token: old.admin_token.clone(),
        admin_public_url: old.admin_public_url.clone(),
        max_concurrent_runs: old.max_concurrent_runs,
        shutdown_grace: old.shutdown_grace,
        log_level: old.log_level.clone(),
        log_format: old.log_format,
        ..new
    }
}

/// Reloads on every SIGHUP until `stop`. The handler is installed before this returns, so
/// a SIGHUP that arrives once the node is serving never takes the default action (exit).
#[cfg(unix)]
pub fn on_sighup(
    reloader: Reloader,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                received = hangups.recv() => match received {
                    Some(()) => reloader.reload_logged().await,
                    None => break,
                },
            }
        }
    }))
}
