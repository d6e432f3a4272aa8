//! What the phases of one run share: [`RunContext`] (the connector, its mapping and the
//! mapping's fingerprint, computed once; the options; the target directory) and
//! [`Staged`] (what the phases up to the scope hand to the projection, the mirror state
//! above all: loaded once per transaction and kept up to date in memory since).

use crate::config::{DefaultApply, MappingConfig};
use crate::connectors::ReadMode;
use crate::model::SourceUser;
use crate::pipeline::mapping_fingerprint;
use crate::pipeline::plan::PlanCounts;
use crate::store::mirror::MirrorState;
use crate::store::runs::Outcome;
use crate::target::Directory;

use super::{RunOptions, RunReport};

/// The fixed inputs of one run.
pub(super) struct RunContext<'a> {
    pub connector_id: &'a str,
    pub mapping: &'a MappingConfig,
    /// [`mapping_fingerprint`] of `mapping`, computed once per run.
    pub fingerprint: String,
    pub options: RunOptions,
    pub directory: &'a dyn Directory,
}

impl<'a> RunContext<'a> {
    pub fn new(
        connector_id: &'a str,
        mapping: &'a MappingConfig,
        options: RunOptions,
        directory: &'a dyn Directory,
    ) -> RunContext<'a> {
        RunContext {
            connector_id,
            mapping,
            fingerprint: mapping_fingerprint(mapping),
            options,
            directory,
        }
    }

    /// The target holds everything of `state` under this mapping: nothing is pending.
    pub fn caught_up(&self, state: &MirrorState) -> bool {
        state.generation == state.applied_generation
            && state.applied_mapping_hash.as_deref() == Some(self.fingerprint.as_str())
    }

    /// Default groups applied "always" promise a grant on every run to every user.
    pub fn always_defaults(&self) -> bool {
        self.mapping.groups.default_apply == DefaultApply::Always
            && !self.mapping.groups.default.is_empty()
    }
}

/// A plan over some users only (see `scope`).
#[derive(Debug, Default)]
pub(super) struct Scope {
    /// External ids of the users that changed.
    pub user_ids: Vec<String>,
    /// Their records as now stored, when the caller has them (not re-read).
    pub known_users: Option<Vec<SourceUser>>,
    /// Groups written or deleted, planned too (and, for a nesting change, the groups
    /// around it).
    pub groups: Vec<String>,
    /// Groups whose group members (nesting rows) the plan covers too.
    pub nesting: Vec<String>,
    /// The users were created by this change (ids just minted): the target holds nothing
    /// of theirs and no group lists them, so neither is read.
    pub new_users: bool,
}

/// What the phases before the projection hand on.
pub(super) struct Staged {
    pub run_id: Option<i64>,
    /// The mirror state as it stands in this transaction; stored as applied at the end.
    pub state: MirrorState,
    /// `Some` when only some users changed: the plan covers just them.
    pub scope: Option<Scope>,
    pub read_mode: Option<ReadMode>,
    pub records_read: u64,
    /// A complete full read that found nothing: the safety limits guard it.
    pub empty_full_read: bool,
    /// Project even when the target has caught up (`reconcile`).
    pub force: bool,
    pub warnings: Vec<String>,
    /// For pushed changes: how many more removals the tenant's window allows; the plan is
    /// held when it would remove more. None: the mapping's per-run limits apply.
    pub removal_allowance: Option<u64>,
    /// A pushed change: the applied state, and the plan's writes nothing reads back, are
    /// handed back in the report (`deferred_writes`) for the caller to send with its last
    /// statements.
    pub defer_state: bool,
}

impl Staged {
    pub fn reconcile(run_id: Option<i64>, state: MirrorState) -> Staged {
        Staged {
            run_id,
            state,
            scope: None,
            read_mode: None,
            records_read: 0,
            empty_full_read: false,
            force: true,
            warnings: Vec::new(),
            removal_allowance: None,
            defer_state: false,
        }
    }

    /// Nothing to project: the target has caught up and nothing asks to look again.
    pub fn up_to_date(&self, ctx: &RunContext<'_>) -> bool {
        ctx.caught_up(&self.state) && !self.force && !self.empty_full_read
    }

    /// The report of a run that has changed nothing yet; it takes over the warnings.
    pub fn report(&mut self, ctx: &RunContext<'_>) -> RunReport {
        RunReport {
            run_id: self.run_id,
            connector: ctx.connector_id.to_string(),
            outcome: Outcome::Unchanged,
            dry_run: ctx.options.dry_run,
            read_mode: self.read_mode.map(ReadMode::as_str),
            records_read: self.records_read,
            counts: PlanCounts::default(),
            preview: Vec::new(),
            conflicts: Vec::new(),
            warnings: std::mem::take(&mut self.warnings),
            projection: None,
            excluded_users: 0,
            excluded_groups: 0,
            removals: 0,
            message: None,
            deferred_writes: None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::OnRemove;
    use crate::target::SqlDirectory;

    pub fn mapping() -> MappingConfig {
        MappingConfig::pass_through("default", OnRemove::Disable, 1000, 100.0)
    }

    pub fn state(generation: i64, applied: i64, hash: Option<&str>) -> MirrorState {
        MirrorState {
            checkpoint: None,
            generation,
            applied_generation: applied,
            applied_mapping_hash: hash.map(str::to_string),
        }
    }

    #[test]
    fn caught_up_needs_the_generation_and_the_mapping_applied() {
        let mapping = mapping();
        let ctx = RunContext::new("hr", &mapping, RunOptions::default(), &SqlDirectory);
        let fp = ctx.fingerprint.clone();
        assert!(ctx.caught_up(&state(3, 3, Some(&fp))));
        assert!(!ctx.caught_up(&state(4, 3, Some(&fp))));
        assert!(!ctx.caught_up(&state(3, 3, Some("another mapping"))));
        assert!(!ctx.caught_up(&state(0, 0, None)));

        let mut staged = Staged::reconcile(None, state(3, 3, Some(&fp)));
        assert!(!staged.up_to_date(&ctx), "reconcile always projects");
        staged.force = false;
        assert!(staged.up_to_date(&ctx));
        staged.empty_full_read = true;
        assert!(
            !staged.up_to_date(&ctx),
            "an empty full read is checked by the limits"
        );
    }
}
