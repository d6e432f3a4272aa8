//! One connector run, end to end: read the source into a buffer (no transaction is open
//! while the network or disk is read), then in ONE transaction merge the buffer into the
//! mirror, project the mirror through the mapping, diff against the target, check the
//! safety limits and apply. A failure anywhere, a held run or a dry run rolls the whole
//! transaction back, so the target is always as before the run or fully after it.
//!
//! `reconcile` is the same without the read: it re-projects the stored mirror.

use serde::Serialize;
use tracing::{Instrument, info, info_span, warn};

use crate::config::MappingConfig;
use crate::connectors::{ConnectorError, PullConnector, ReadMode, ReadSummary};
use crate::db::{Db, DbError};
use crate::mirror::{self, ReadBuffer};
use crate::model::name_key;
use crate::pipeline::plan::{self, Conflict, Plan, PlanCounts};
use crate::pipeline::{limits, mapping_fingerprint, project};
use crate::target::runs::{self, Outcome, RunEnd};
use crate::target::{apply, state};

/// How a run is to behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Compute and report the plan, write nothing.
    pub dry_run: bool,
    /// Apply even when the plan exceeds the mapping's deletion limits.
    pub allow_mass_delete: bool,
    /// Treat users marked inactive in the source as removed (the mapping's `on_remove`
    /// applies): how SCIM tenants see `active: false`.
    pub inactive_is_removal: bool,
}

/// Receives progress of a run (the CLI draws a progress bar from it).
pub trait Progress: Send + Sync {
    fn records_read(&self, _count: u64) {}
    fn phase(&self, _name: &str) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Entries shown per kind in a plan preview.
const PREVIEW_PER_KIND: usize = 10;
/// Runs that changed at most this many users (and nothing else) plan just those users.
const INCREMENTAL_MAX_USERS: usize = 20_000;
/// Conflicts and warnings kept in a run record.
const DETAILS_CAP: usize = 100;

/// What a run did (or, for a dry run or held run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub connector: String,
    pub outcome: Outcome,
    pub dry_run: bool,
    pub read_mode: Option<&'static str>,
    pub records_read: u64,
    pub counts: PlanCounts,
    /// The first entries of each kind of change, in words.
    pub preview: Vec<String>,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<String>,
    /// `full` (the whole mirror re-projected) or `changed users` (only they were planned).
    pub projection: Option<&'static str>,
    /// Users and groups the mapping's filters kept out of the target.
    pub excluded_users: u64,
    pub excluded_groups: u64,
    /// Live users disabled or deleted plus groups deleted: what deletion limits count.
    pub removals: u64,
    pub message: Option<String>,
    /// For a pushed change: the mirror state the caller stores in its transaction (with
    /// the request's event, one round trip fewer).
    #[serde(skip)]
    pub(crate) state_to_store: Option<mirror::MirrorState>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the source of connector `{connector}` failed: {source}")]
    Read {
        connector: String,
        #[source]
        source: ConnectorError,
    },
    #[error(
        "connector `{0}` reported an incomplete read; nothing was changed (removals need a complete read)"
    )]
    Incomplete(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Reads `connector` and applies what changed.
pub async fn sync(
    db: &Db,
    connector_id: &str,
    mapping: &MappingConfig,
    connector: &dyn PullConnector,
    options: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, SyncError> {
    let span = info_span!(
        "sync_run",
        connector = connector_id,
        kind = connector.kind(),
        dry_run = options.dry_run
    );
    async move {
        let run_id = match options.dry_run {
            true => None,
            false => Some(runs::start_run(db, connector_id, "sync").await?),
        };
        let result = read_and_apply(
            db,
            connector_id,
            mapping,
            connector,
            options,
            progress,
            run_id,
        )
        .await;
        finish(db, run_id, connector_id, options, result).await
    }
    .instrument(span)
    .await
}

/// Re-projects the stored mirror of `connector_id` through its mapping, fetching nothing.
pub async fn reconcile(
    db: &Db,
    connector_id: &str,
    mapping: &MappingConfig,
    options: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, SyncError> {
    let span = info_span!(
        "reconcile_run",
        connector = connector_id,
        dry_run = options.dry_run
    );
    async move {
        let run_id = match options.dry_run {
            true => None,
            false => Some(runs::start_run(db, connector_id, "reconcile").await?),
        };
        let result = async {
            let mut tx = db.begin_write().await?;
            lock_connector(&mut tx, connector_id).await?;
            let report = project_and_apply(
                &mut tx,
                connector_id,
                mapping,
                options,
                progress,
                Staged::reconcile(run_id),
            )
            .await?;
            if !report.dry_run && report.outcome != Outcome::Held {
                // A SCIM tenant held by a burst of removals is released once its mirror
                // has been applied.
                sqlx::query("DELETE FROM scim_holds WHERE tenant = $1")
                    .bind(connector_id.to_string())
                    .execute(tx.conn())
                    .await
                    .map_err(|source| DbError::Query {
                        context: "releasing the tenant's hold",
                        source,
                    })?;
            }
            close_tx(tx, &report).await?;
            Ok(report)
        }
        .await;
        finish(db, run_id, connector_id, options, result).await
    }
    .instrument(span)
    .await
}

/// What the read phase hands to the projection.
struct Staged {
    run_id: Option<i64>,
    /// When only some users changed (and nothing else), their external ids: the plan then
    /// covers just them.
    scope: Option<Vec<String>>,
    read_mode: Option<ReadMode>,
    records_read: u64,
    empty_full_read: bool,
    force: bool,
    warnings: Vec<String>,
    /// For pushed changes: how many more removals the tenant's window allows; the plan is
    /// held when it would remove more. None: the mapping's per-run limits apply.
    removal_allowance: Option<u64>,
    /// With `scope`: the scoped users' records, when the caller has them (not re-read).
    known_users: Option<Vec<crate::model::SourceUser>>,
    /// The mirror state, when the caller has it (not re-read); stored as applied.
    known_state: Option<mirror::MirrorState>,
    /// With `scope`: groups written or deleted, planned too.
    scope_groups: Vec<String>,
    /// A pushed change: the state to store is handed back in the report
    /// (`state_to_store`), for the caller to write with its last statements.
    defer_state: bool,
}

impl Staged {
    fn reconcile(run_id: Option<i64>) -> Staged {
        Staged {
            run_id,
            scope: None,
            read_mode: None,
            records_read: 0,
            empty_full_read: false,
            force: true,
            warnings: Vec::new(),
            removal_allowance: None,
            known_users: None,
            known_state: None,
            scope_groups: Vec::new(),
            defer_state: false,
        }
    }
}

async fn read_and_apply(
    db: &Db,
    connector_id: &str,
    mapping: &MappingConfig,
    connector: &dyn PullConnector,
    options: RunOptions,
    progress: &dyn Progress,
    run_id: Option<i64>,
) -> Result<RunReport, SyncError> {
    let checkpoint = {
        let mut conn = db.pool().acquire().await.map_err(|source| DbError::Query {
            context: "reading the mirror state",
            source,
        })?;
        mirror::load_state(&mut conn, connector_id)
            .await?
            .checkpoint
    };
    progress.phase("reading");
    let mut buffer = ReadBuffer::new();
    let summary: ReadSummary = {
        let mut counting = CountingSink {
            inner: &mut buffer,
            progress,
        };
        connector
            .read(checkpoint.as_deref(), &mut counting)
            .await
            .map_err(|source| SyncError::Read {
                connector: connector_id.to_string(),
                source,
            })?
    };
    if !summary.complete {
        return Err(SyncError::Incomplete(connector_id.to_string()));
    }
    buffer.finish(summary.mode).map_err(|e| SyncError::Read {
        connector: connector_id.to_string(),
        source: ConnectorError::Sink(e),
    })?;
    let mut staged = Staged {
        run_id,
        scope: None,
        read_mode: Some(summary.mode),
        records_read: buffer.records_read,
        empty_full_read: summary.mode == ReadMode::Full
            && buffer.users.is_empty()
            && buffer.groups.is_empty(),
        force: false,
        warnings: std::mem::take(&mut buffer.warnings),
        removal_allowance: None,
        known_users: None,
        known_state: None,
        scope_groups: Vec::new(),
        defer_state: false,
    };
    info!(
        records = staged.records_read,
        mode = summary.mode.as_str(),
        "source read"
    );

    progress.phase("merging");
    let mut tx = db.begin_write().await?;
    lock_connector(&mut tx, connector_id).await?;
    let before = mirror::load_state(tx.conn(), connector_id).await?;
    let mut merged = mirror::merge(tx.conn(), connector_id, buffer, &summary).await?;
    info!(
        users_upserted = merged.users_upserted,
        users_removed = merged.users_removed,
        groups_upserted = merged.groups_upserted,
        groups_removed = merged.groups_removed,
        "mirror merged"
    );
    staged.warnings.append(&mut merged.warnings);
    // Only users changed, the target had caught up before, and the mapping is the same:
    // plan just those users instead of re-projecting the whole mirror.
    let caught_up = before.generation == before.applied_generation
        && before.applied_mapping_hash.as_deref() == Some(mapping_fingerprint(mapping).as_str());
    // Default groups applied "always" promise a grant on every run to every user, so such
    // mappings always re-project (which also repairs memberships removed by hand).
    let always_defaults = mapping.groups.default_apply == crate::config::DefaultApply::Always
        && !mapping.groups.default.is_empty();
    if caught_up
        && !always_defaults
        && merged.groups_upserted == 0
        && merged.groups_removed == 0
        && !merged.changed_user_ids.is_empty()
        && merged.changed_user_ids.len() <= INCREMENTAL_MAX_USERS
        && !staged.empty_full_read
    {
        staged.scope = Some(std::mem::take(&mut merged.changed_user_ids));
    }
    let report =
        project_and_apply(&mut tx, connector_id, mapping, options, progress, staged).await?;
    progress.phase("committing");
    close_tx(tx, &report).await?;
    Ok(report)
}

/// What one SCIM request changed in a tenant's mirror, for [`apply_pushed`].
#[derive(Debug, Clone)]
pub struct PushedChange {
    /// The tenant's mirror state before the request wrote to it.
    pub before: mirror::MirrorState,
    /// Users whose record changed, or who joined or left a group.
    pub user_ids: Vec<String>,
    /// The records of `user_ids` as now stored (a deleted user absent), when the caller
    /// has them; else they are read.
    pub users: Option<Vec<crate::model::SourceUser>>,
    /// Groups whose record the request wrote or deleted: a plan over changed users covers
    /// them too.
    pub group_ids: Vec<String>,
    /// A group was created, renamed, deleted or had groups join or leave it: the tenant is
    /// re-projected whole.
    pub groups_changed: bool,
    /// How many more removals the tenant's burst window allows.
    pub removal_allowance: u64,
}

/// Projects what one SCIM request wrote to a tenant's mirror into the target, inside the
/// request's transaction (which already holds the tenant's lock). Only the changed users
/// are planned when nothing else is pending; otherwise the whole tenant. The mirror's
/// generation is stored bumped past `before` with the applied generation (the caller does
/// not store the bump itself unless the report says `Held`). A plan removing
/// more than the allowance is not applied: the report says `Held` and the caller commits
/// the mirror write alone, leaving the target behind until an admin reconciles.
pub async fn apply_pushed(
    tx: &mut crate::db::WriteTx,
    connector_id: &str,
    mapping: &MappingConfig,
    change: PushedChange,
) -> Result<RunReport, SyncError> {
    let caught_up = change.before.generation == change.before.applied_generation
        && change.before.applied_mapping_hash.as_deref()
            == Some(mapping_fingerprint(mapping).as_str());
    let always_defaults = mapping.groups.default_apply == crate::config::DefaultApply::Always
        && !mapping.groups.default.is_empty();
    let scope = (caught_up
        && !always_defaults
        && !change.groups_changed
        && change.user_ids.len() <= INCREMENTAL_MAX_USERS)
        .then_some(change.user_ids);
    let scoped_users = change.users.filter(|_| scope.is_some());
    let staged = Staged {
        run_id: None,
        scope,
        read_mode: None,
        records_read: 1,
        empty_full_read: false,
        force: false,
        warnings: Vec::new(),
        removal_allowance: Some(change.removal_allowance),
        known_users: scoped_users,
        scope_groups: change.group_ids,
        defer_state: true,
        known_state: Some(mirror::MirrorState {
            generation: change.before.generation + 1,
            ..change.before
        }),
    };
    let options = RunOptions {
        inactive_is_removal: true,
        ..RunOptions::default()
    };
    project_and_apply(tx, connector_id, mapping, options, &NoProgress, staged).await
}

/// On PostgreSQL, runs of one connector on several nodes take turns from the mirror merge
/// on (a transaction-scoped advisory lock keyed by the connector), so their generation
/// counters and checkpoints never interleave. SQLite writers already queue in-process.
pub async fn lock_connector(
    tx: &mut crate::db::WriteTx,
    connector_id: &str,
) -> Result<(), DbError> {
    let conn = tx.conn();
    if !crate::db::is_postgres(conn) {
        return Ok(());
    }
    let key = i64::from_str_radix(&crate::model::content_hash(&connector_id)[..15], 16)
        .unwrap_or_default();
    sqlx::query("SELECT pg_advisory_xact_lock(7342002, $1)")
        .bind(key as i32)
        .execute(&mut *conn)
        .await
        .map_err(|source| DbError::Query {
            context: "waiting for the connector's run lock",
            source,
        })?;
    Ok(())
}

/// Commits, unless the run was a dry run or was held.
async fn close_tx(tx: crate::db::WriteTx, report: &RunReport) -> Result<(), DbError> {
    if report.dry_run || report.outcome == Outcome::Held {
        tx.rollback().await
    } else {
        tx.commit().await
    }
}

async fn project_and_apply(
    tx: &mut crate::db::WriteTx,
    connector_id: &str,
    mapping: &MappingConfig,
    options: RunOptions,
    progress: &dyn Progress,
    staged: Staged,
) -> Result<RunReport, SyncError> {
    let conn = tx.conn();
    if crate::db::is_postgres(conn) {
        // PostgreSQL: writers of the target take turns, so that two nodes or connectors
        // claiming one new name see each other's claim instead of failing on the unique key.
        sqlx::query("SELECT pg_advisory_xact_lock(7342001)")
            .execute(&mut *conn)
            .await
            .map_err(|source| DbError::Query {
                context: "waiting for the target write lock",
                source,
            })?;
    }
    let fingerprint = mapping_fingerprint(mapping);
    let mut mirror_state = match staged.known_state {
        Some(state) => state,
        None => mirror::load_state(conn, connector_id).await?,
    };
    let mut report = RunReport {
        run_id: staged.run_id,
        connector: connector_id.to_string(),
        outcome: Outcome::Unchanged,
        dry_run: options.dry_run,
        read_mode: staged.read_mode.map(ReadMode::as_str),
        records_read: staged.records_read,
        counts: PlanCounts::default(),
        preview: Vec::new(),
        conflicts: Vec::new(),
        warnings: staged.warnings,
        projection: None,
        excluded_users: 0,
        excluded_groups: 0,
        removals: 0,
        message: None,
        state_to_store: None,
    };
    let up_to_date = mirror_state.generation == mirror_state.applied_generation
        && mirror_state.applied_mapping_hash.as_deref() == Some(fingerprint.as_str());
    if up_to_date && !staged.force && !staged.empty_full_read {
        report.counts.warnings = report.warnings.len() as u64;
        report.message = Some("the target already matches the source".into());
        return Ok(report);
    }

    progress.phase("projecting");
    report.projection = Some(if staged.scope.is_some() {
        "changed users"
    } else {
        "full"
    });
    // A plan over changed users reads the target first: the groups they are in there
    // join the groups read from the mirror (see `mirror::load_groups_around`).
    let scoped_current = match &staged.scope {
        Some(ids) => {
            let count_live = staged.removal_allowance.is_none();
            Some(state::load_current_for_users(conn, connector_id, ids, count_live).await?)
        }
        None => None,
    };
    let mut loaded_groups: Option<std::collections::HashSet<String>> = None;
    let desired = {
        let users = match (&staged.scope, staged.known_users) {
            (Some(_), Some(users)) => users,
            (Some(ids), None) => mirror::load_users_by_ids(conn, connector_id, ids).await?,
            (None, _) => mirror::load_users(conn, connector_id).await?,
        };
        let users = match options.inactive_is_removal {
            true => users.into_iter().filter(|u| u.active).collect(),
            false => users,
        };
        let groups = match (&staged.scope, &scoped_current) {
            (Some(ids), Some(current)) => {
                let by_id: std::collections::HashMap<&str, &str> = current
                    .groups
                    .iter()
                    .map(|(ext, g)| (g.id.as_str(), ext.as_str()))
                    .collect();
                let held_now: Vec<String> = current
                    .memberships
                    .iter()
                    .chain(&current.sticky)
                    .filter_map(|(group_id, _)| by_id.get(group_id.as_str()))
                    .map(|ext| ext.to_string())
                    .chain(staged.scope_groups.iter().cloned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let groups = mirror::load_groups_around(conn, connector_id, ids, &held_now).await?;
                loaded_groups = Some(groups.iter().map(|g| g.external_id.clone()).collect());
                groups
            }
            _ => mirror::load_groups(conn, connector_id).await?,
        };
        let mut desired = project(mapping, users, groups);
        if staged.scope.is_some() {
            // Groups did not change, so neither did the groups nested in them; the plan
            // covers the changed users' memberships only.
            desired
                .memberships
                .retain(|m| m.kind == crate::model::MemberKind::User);
        }
        desired
    };
    report.excluded_users = desired.excluded_users;
    report.excluded_groups = desired.excluded_groups;
    let current = match scoped_current {
        Some(mut current) => {
            // The plan sees the groups it projected, no others: unchanged groups it did
            // not read are neither updated nor deleted.
            // A group the request deleted was not read but must be seen, to go.
            if let Some(loaded) = &loaded_groups {
                let planned: Vec<String> =
                    loaded.iter().chain(&staged.scope_groups).cloned().collect();
                state::add_groups_by_external_id(conn, connector_id, &mut current, &planned)
                    .await?;
                current
                    .groups
                    .retain(|ext, _| loaded.contains(ext) || staged.scope_groups.contains(ext));
            }
            current
        }
        None => state::load_current(conn, connector_id).await?,
    };
    let user_keys: Vec<String> = desired
        .users
        .iter()
        .filter(|u| {
            current
                .users
                .get(&u.external_id)
                .is_none_or(|c| c.user_name_key != name_key(&u.user_name))
        })
        .map(|u| name_key(&u.user_name))
        .collect();
    let group_keys: Vec<String> = desired
        .groups
        .iter()
        .filter(|g| {
            current
                .groups
                .get(&g.external_id)
                .is_none_or(|c| c.name_key != name_key(&g.name))
        })
        .map(|g| name_key(&g.name))
        .collect();
    let foreign_users = match &staged.scope {
        Some(ids) => {
            let scope: std::collections::HashSet<String> = ids.iter().cloned().collect();
            state::user_names_held_outside(conn, connector_id, &scope, &user_keys).await?
        }
        None => state::foreign_user_names(conn, connector_id, &user_keys).await?,
    };
    let foreign_groups = state::foreign_group_names(conn, connector_id, &group_keys).await?;
    let managed_names: Vec<String> = desired
        .managed
        .iter()
        .map(|g| name_key(&g.group))
        .chain(desired.default_on_create.iter().map(|g| name_key(g)))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let named_groups = state::groups_by_name(conn, &managed_names).await?;
    let plan = plan::build(
        desired,
        &current,
        &plan::Context {
            mapping_name: &mapping.name,
            on_remove: mapping.on_remove,
            foreign_users: &foreign_users,
            foreign_groups: &foreign_groups,
            named_groups: &named_groups,
        },
    );
    report.counts = plan.counts();
    report.preview = preview(&plan, &current);
    let own_group_ids: std::collections::HashSet<String> =
        current.groups.values().map(|g| g.id.clone()).collect();
    let scoped_user_ids: Vec<String> = match &staged.scope {
        Some(_) => current
            .users
            .values()
            .map(|u| u.id.clone())
            .chain(plan.user_creates.iter().map(|w| w.id.clone()))
            .collect(),
        None => Vec::new(),
    };
    drop(current);
    report.conflicts = plan.conflicts.clone();
    report.warnings.extend(plan.warnings.iter().cloned());
    report.counts.warnings = report.warnings.len() as u64;
    for conflict in &plan.conflicts {
        warn!(kind = conflict.kind, name = %conflict.name, held_by = %conflict.held_by, "name conflict");
    }

    report.removals = plan
        .user_removals
        .iter()
        .filter(|r| !r.already_disabled)
        .count() as u64
        + plan.group_deletes.len() as u64;
    let hold = match staged.removal_allowance {
        Some(allowance) => (report.removals > allowance).then(|| {
            format!(
                "the request would remove {} users or groups, beyond the {allowance} more \
                 removals the tenant's window allows",
                report.removals
            )
        }),
        None => limits::hold_reason(&plan, mapping, staged.empty_full_read),
    };
    if let Some(reason) = hold
        && !options.allow_mass_delete
    {
        warn!(%reason, "run held by a safety limit");
        report.outcome = Outcome::Held;
        report.message = Some(format!(
            "{reason}; nothing was changed. If this is expected, run again with --allow-mass-delete"
        ));
        return Ok(report);
    }

    progress.phase("applying");
    apply::apply_plan(conn, connector_id, &plan).await?;
    let membership_changed = !plan.membership_adds.is_empty()
        || !plan.membership_removes.is_empty()
        || !plan.group_deletes.is_empty()
        || !plan.user_removals.is_empty();
    if membership_changed && staged.scope.is_some() {
        progress.phase("effective memberships");
        let deleted: std::collections::HashSet<&str> = match plan.on_remove {
            Some(crate::config::OnRemove::Delete) => {
                plan.user_removals.iter().map(|r| r.id.as_str()).collect()
            }
            _ => Default::default(),
        };
        let mut direct: std::collections::HashMap<String, Vec<String>> = scoped_user_ids
            .iter()
            .filter(|id| !deleted.contains(id.as_str()))
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        for m in plan.membership_adds.iter().chain(&plan.membership_kept) {
            if own_group_ids.contains(&m.group_id)
                && let Some(groups) = direct.get_mut(&m.member_id)
            {
                groups.push(m.group_id.clone());
            }
        }
        apply::sync_effective_for_users(conn, connector_id, &direct).await?;
        apply::sync_managed_effective(conn, &plan.managed_group_ids).await?;
    } else if membership_changed {
        progress.phase("effective memberships");
        let own_groups = plan
            .membership_adds
            .iter()
            .chain(&plan.membership_kept)
            .filter(|m| !plan.managed_group_ids.contains(&m.group_id));
        let wanted = plan::effective_pairs(own_groups);
        apply::sync_effective(conn, connector_id, &wanted).await?;
        apply::sync_managed_effective(conn, &plan.managed_group_ids).await?;
    }
    // With conflicts left, the target has not fully caught up: the next run projects
    // again, so a name freed meanwhile (by another connector, or by a rename of this run)
    // is taken then.
    if plan.conflicts.is_empty() {
        mirror_state.applied_generation = mirror_state.generation;
    }
    mirror_state.applied_mapping_hash = Some(fingerprint);
    if staged.defer_state {
        report.state_to_store = Some(mirror_state);
    } else {
        mirror::save_state(conn, connector_id, &mirror_state).await?;
    }

    report.outcome = if plan.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Succeeded
    };
    Ok(report)
}

fn preview(plan: &Plan, current: &plan::Current) -> Vec<String> {
    let mut lines = Vec::new();
    let removal_verb = match plan.on_remove {
        Some(crate::config::OnRemove::Delete) => "delete",
        _ => "disable",
    };
    // Target ids to names, for the membership lines.
    let mut names: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for user in current.users.values() {
        names.insert(&user.id, &user.user_name);
    }
    for group in current.groups.values() {
        names.insert(&group.id, &group.name);
    }
    for write in plan.user_creates.iter().chain(&plan.user_updates) {
        names.insert(&write.id, &write.record.user_name);
    }
    for write in plan
        .group_creates
        .iter()
        .chain(&plan.group_updates)
        .chain(&plan.managed_creates)
    {
        names.insert(&write.id, &write.record.name);
    }
    let name = |id: &str| -> String { names.get(id).map_or(id, |n| *n).to_string() };
    let add = |lines: &mut Vec<String>, items: Vec<String>| {
        let total = items.len();
        lines.extend(items.into_iter().take(PREVIEW_PER_KIND));
        if total > PREVIEW_PER_KIND {
            lines.push(format!("  ... and {} more", total - PREVIEW_PER_KIND));
        }
    };
    add(
        &mut lines,
        plan.user_creates
            .iter()
            .map(|w| format!("create user {}", w.record.user_name))
            .collect(),
    );
    add(
        &mut lines,
        plan.user_updates
            .iter()
            .map(|w| format!("update user {}", w.record.user_name))
            .collect(),
    );
    add(
        &mut lines,
        plan.user_removals
            .iter()
            .map(|r| {
                format!(
                    "{removal_verb} user {} (left the source or its filter)",
                    r.name
                )
            })
            .collect(),
    );
    add(
        &mut lines,
        plan.group_creates
            .iter()
            .map(|w| format!("create group {}", w.record.name))
            .collect(),
    );
    add(
        &mut lines,
        plan.managed_creates
            .iter()
            .map(|w| format!("create group {} (managed by the mapping)", w.record.name))
            .collect(),
    );
    add(
        &mut lines,
        plan.group_updates
            .iter()
            .map(|w| format!("update group {}", w.record.name))
            .collect(),
    );
    add(
        &mut lines,
        plan.group_deletes
            .iter()
            .map(|r| format!("delete group {} (left the source or its filter)", r.name))
            .collect(),
    );
    add(
        &mut lines,
        plan.membership_adds
            .iter()
            .map(|m| {
                format!(
                    "add {} {} to group {}",
                    m.kind.as_str(),
                    name(&m.member_id),
                    name(&m.group_id)
                )
            })
            .collect(),
    );
    add(
        &mut lines,
        plan.membership_removes
            .iter()
            .map(|(g, m)| format!("remove {} from group {}", name(m), name(g)))
            .collect(),
    );
    lines
}

/// Records how the run ended and turns failures into the error the caller sees.
async fn finish(
    db: &Db,
    run_id: Option<i64>,
    connector_id: &str,
    options: RunOptions,
    result: Result<RunReport, SyncError>,
) -> Result<RunReport, SyncError> {
    let Some(run_id) = run_id else {
        return result;
    };
    match &result {
        Ok(report) => {
            let mut details = serde_json::Map::new();
            if !report.conflicts.is_empty() {
                let capped: Vec<_> = report.conflicts.iter().take(DETAILS_CAP).collect();
                details.insert("conflicts".into(), serde_json::json!(capped));
            }
            if !report.warnings.is_empty() {
                let capped: Vec<_> = report.warnings.iter().take(DETAILS_CAP).collect();
                details.insert("warnings".into(), serde_json::json!(capped));
            }
            let end = RunEnd {
                read_mode: report.read_mode,
                records_read: report.records_read,
                counts: report.counts,
                message: report.message.clone(),
                details: (!details.is_empty()).then_some(serde_json::Value::Object(details)),
            };
            runs::finish_run(db, run_id, report.outcome, &end).await?;
            info!(run_id, outcome = report.outcome.as_str(), counts = ?report.counts, "run finished");
        }
        Err(error) => {
            warn!(run_id, %error, connector = connector_id, dry_run = options.dry_run, "run failed");
            let end = RunEnd {
                message: Some(error.to_string()),
                ..RunEnd::default()
            };
            runs::finish_run(db, run_id, Outcome::Failed, &end).await?;
        }
    }
    result
}

/// Forwards batches to the buffer and reports the running count.
struct CountingSink<'a> {
    inner: &'a mut ReadBuffer,
    progress: &'a dyn Progress,
}

#[async_trait::async_trait]
impl crate::connectors::BatchSink for CountingSink<'_> {
    async fn accept(
        &mut self,
        batch: crate::connectors::SourceBatch,
    ) -> Result<(), crate::connectors::SinkError> {
        self.inner.accept(batch).await?;
        self.progress.records_read(self.inner.records_read);
        Ok(())
    }
}
