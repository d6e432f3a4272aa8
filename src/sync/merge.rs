//! The merge phase: inside the run's transaction and under the connector's lock, the
//! read is merged into the mirror. It first checks the cursor contract: a read continues
//! from the checkpoint the mirror stores, so a read that began from a checkpoint another
//! run has since replaced is refused (its changes are older than the mirror's). The
//! mirror state is read here once; the rest of the run keeps it in memory.

use std::collections::BTreeSet;

use sqlx::AnyConnection;
use tracing::info;

use crate::connectors::ReadSummary;
use crate::store::mirror::{self, MergeOutcome, MirrorState};

use super::context::{RunContext, Scope, Staged};
use super::read::Read;
use super::{LOG, SyncError, scope};

/// Merges `read` into the mirror and stages the rest of the run.
pub(super) async fn merge(
    conn: &mut AnyConnection,
    ctx: &RunContext<'_>,
    read: Read,
    run_id: Option<i64>,
) -> Result<Staged, SyncError> {
    let before = mirror::load_state(conn, ctx.connector_id).await?;
    if !cursor_holds(read.from.as_deref(), &before) {
        return Err(SyncError::StaleCheckpoint(ctx.connector_id.to_string()));
    }
    let empty_full_read = read.empty_full();
    let Read {
        buffer, summary, ..
    } = read;
    let records_read = buffer.records_read;
    let mut merged = mirror::merge(conn, ctx.connector_id, buffer, &summary).await?;
    info!(
        target: LOG,
        users_upserted = merged.users_upserted,
        users_removed = merged.users_removed,
        groups_upserted = merged.groups_upserted,
        groups_removed = merged.groups_removed,
        "mirror merged"
    );
    let warnings = std::mem::take(&mut merged.warnings);
    let affected = affected(conn, ctx, &mut merged).await?;
    let change = scope::Change {
        users: affected.users.len(),
        groups_changed: affected.whole,
        empty_full_read,
        defaults_checked: affected.defaults_checked,
    };
    let scope = scope::changed_users_only(ctx, &before, &change).then(|| Scope {
        user_ids: affected.users,
        groups: affected.groups,
        nesting: affected.nesting,
        ..Scope::default()
    });
    Ok(Staged {
        run_id,
        state: state_after(before, &merged, &summary),
        scope,
        read_mode: Some(summary.mode),
        records_read,
        empty_full_read,
        force: false,
        warnings,
        removal_allowance: None,
        defer_state: false,
    })
}

/// What a plan over the change must cover (see [`affected`]).
struct Affected {
    /// External ids of the users.
    users: Vec<String>,
    /// External ids of the groups written, and of the groups whose place in the nesting
    /// the plan may change.
    groups: Vec<String>,
    /// Groups whose group members the plan covers.
    nesting: Vec<String>,
    /// The change needs a plan over everything.
    whole: bool,
    /// The users outside a default group applied `always` are among `users`.
    defaults_checked: bool,
}

/// The users and groups a plan over what changed must cover: users written or removed,
/// users who joined or left a group, users below a group whose own record changed (rules
/// may read group names) or that joined or left another group (their effective groups
/// change), the groups written, and the groups that gained or lost groups with all their
/// group members (so that the plan sees every nesting row of theirs); a removed group
/// counts as leaving the groups that held it. A mapping that filters groups (members
/// bridge through excluded groups) with a nesting change, or too many users below the
/// change, plans everything.
async fn affected(
    conn: &mut AnyConnection,
    ctx: &RunContext<'_>,
    merged: &mut mirror::MergeOutcome,
) -> Result<Affected, SyncError> {
    let changes = std::mem::take(&mut merged.group_changes);
    let mut users: BTreeSet<String> = std::mem::take(&mut merged.changed_user_ids)
        .into_iter()
        .collect();
    let filters_groups =
        ctx.mapping.filter.include_groups.is_some() || ctx.mapping.filter.exclude_groups.is_some();
    let whole = |users: BTreeSet<String>| Affected {
        users: users.into_iter().collect(),
        groups: Vec::new(),
        nesting: Vec::new(),
        whole: true,
        defaults_checked: false,
    };
    let mut parents = changes.parents;
    // The groups that held a removed group lose that nesting row.
    if !changes.gone.is_empty() {
        let gone: BTreeSet<&String> = changes.gone.iter().collect();
        for holder in mirror::load_groups_around(conn, ctx.connector_id, &changes.gone, &[]).await?
        {
            let holds_gone = holder
                .members
                .iter()
                .any(|m| m.kind == crate::model::MemberKind::Group && gone.contains(&m.id));
            if holds_gone && !parents.contains(&holder.external_id) {
                parents.push(holder.external_id);
            }
        }
    }
    if (!parents.is_empty() || !changes.children.is_empty()) && filters_groups {
        return Ok(whole(users));
    }
    users.extend(changes.users);
    let mut groups: BTreeSet<String> = changes.groups.into_iter().collect();
    let below: Vec<String> = changes
        .records
        .iter()
        .chain(&changes.children)
        .cloned()
        .collect();
    if !below.is_empty() {
        let cap = scope::INCREMENTAL_MAX_USERS;
        match mirror::users_below(conn, ctx.connector_id, &below, cap).await? {
            Some(found) => users.extend(found),
            None => return Ok(whole(users)),
        }
    }
    groups.extend(changes.children);
    for parent in mirror::load_groups_by_ids(conn, ctx.connector_id, &parents).await? {
        groups.extend(
            parent
                .members
                .into_iter()
                .filter(|m| m.kind == crate::model::MemberKind::Group)
                .map(|m| m.id),
        );
    }
    // Default groups applied `always` are granted again to whoever lost one.
    let defaults_checked = ctx.always_defaults();
    if defaults_checked {
        let owner = format!("mapping:{}", ctx.mapping.name);
        for group in &ctx.mapping.groups.default {
            let outside = ctx
                .directory
                .users_outside(conn, ctx.connector_id, &owner, group)
                .await?;
            users.extend(outside);
        }
    }
    Ok(Affected {
        users: users.into_iter().collect(),
        groups: groups.into_iter().collect(),
        nesting: parents,
        whole: false,
        defaults_checked,
    })
}

/// The cursor contract: the read must have begun from the checkpoint stored now.
pub(super) fn cursor_holds(read_from: Option<&str>, stored: &MirrorState) -> bool {
    stored.checkpoint.as_deref() == read_from
}

/// The mirror state `mirror::merge` stored, from the state before it and what it did
/// (so that it is not read again): the generation moves on when anything changed, and a
/// complete read stores its next checkpoint.
pub(super) fn state_after(
    mut before: MirrorState,
    merged: &MergeOutcome,
    summary: &ReadSummary,
) -> MirrorState {
    if merged.changed() {
        before.generation += 1;
    }
    if summary.complete {
        before.checkpoint = summary.next_checkpoint.clone();
    }
    before
}

#[cfg(test)]
mod tests {
    use super::super::context::tests::{mapping, state};
    use super::super::read::tests::Memory;
    use super::super::{NoProgress, RunOptions, read};
    use super::*;
    use crate::connectors::ReadMode;
    use crate::db::Db;
    use crate::target::SqlDirectory;

    fn stored(checkpoint: Option<&str>) -> MirrorState {
        MirrorState {
            checkpoint: checkpoint.map(str::to_string),
            ..state(1, 1, None)
        }
    }

    #[test]
    fn a_read_from_a_replaced_checkpoint_is_refused() {
        assert!(cursor_holds(Some("c1"), &stored(Some("c1"))));
        assert!(cursor_holds(None, &stored(None)));
        for (from, now) in [
            (Some("c1"), Some("c2")),
            (None, Some("c2")),
            (Some("c1"), None),
        ] {
            assert!(
                !cursor_holds(from, &stored(now)),
                "{from:?} against {now:?}"
            );
        }
    }

    #[test]
    fn the_state_after_a_merge_is_derived_not_reread() {
        let summary = |complete| ReadSummary {
            mode: ReadMode::Delta,
            complete,
            next_checkpoint: Some("c2".into()),
        };
        let changed = MergeOutcome {
            users_upserted: 1,
            ..MergeOutcome::default()
        };
        let after = state_after(stored(Some("c1")), &changed, &summary(true));
        assert_eq!(
            (after.generation, after.checkpoint.as_deref()),
            (2, Some("c2"))
        );
        let after = state_after(stored(Some("c1")), &MergeOutcome::default(), &summary(true));
        assert_eq!(
            (after.generation, after.checkpoint.as_deref()),
            (1, Some("c2"))
        );
        assert_eq!(after.applied_generation, 1);
    }

    /// Two runs read from one checkpoint; the first merges and stores the next one; the
    /// second is refused at its merge, leaving the mirror as the first left it.
    #[tokio::test]
    async fn the_second_of_two_reads_from_one_checkpoint_is_refused() {
        let db = Db::open("sqlite::memory:").await.unwrap();
        let mapping = mapping();
        let ctx = RunContext::new("hr", &mapping, RunOptions::default(), &SqlDirectory);
        let first = read::read("hr", &Memory::full(&["a"]), None, &NoProgress)
            .await
            .unwrap();
        let second = read::read("hr", &Memory::full(&["a", "b"]), None, &NoProgress)
            .await
            .unwrap();

        let mut tx = db.begin_write().await.unwrap();
        let staged = merge(tx.conn(), &ctx, first, None).await.unwrap();
        assert_eq!(staged.state.checkpoint.as_deref(), Some("after"));
        assert_eq!(
            staged.state,
            mirror::load_state(tx.conn(), "hr").await.unwrap()
        );
        tx.commit().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        let err = merge(tx.conn(), &ctx, second, None).await.err().unwrap();
        assert!(
            matches!(err, SyncError::StaleCheckpoint(ref id) if id == "hr"),
            "{err}"
        );
        tx.rollback().await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        assert_eq!(
            mirror::load_all::<crate::model::SourceUser>(tx.conn(), "hr")
                .await
                .unwrap()
                .len(),
            1
        );
    }

    /// A source whose read takes so long that another run stores a new checkpoint
    /// meanwhile.
    struct Overtaken {
        db: Db,
        inner: Memory,
    }

    #[async_trait::async_trait]
    impl crate::connectors::PullConnector for Overtaken {
        fn kind(&self) -> &'static str {
            "memory"
        }
        async fn read(
            &self,
            checkpoint: Option<&str>,
            sink: &mut dyn crate::connectors::BatchSink,
        ) -> Result<ReadSummary, crate::connectors::ConnectorError> {
            let mut tx = self.db.begin_write().await.unwrap();
            let moved_on = MirrorState {
                checkpoint: Some("by another run".into()),
                ..mirror::load_state(tx.conn(), "hr").await.unwrap()
            };
            mirror::save_state(tx.conn(), "hr", &moved_on)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            self.inner.read(checkpoint, sink).await
        }
    }

    #[tokio::test]
    async fn a_run_overtaken_while_reading_fails_and_changes_nothing() {
        let db = Db::open("sqlite::memory:").await.unwrap();
        let mapping = mapping();
        let source = Overtaken {
            db: db.clone(),
            inner: Memory::full(&["a"]),
        };
        let err = super::super::sync(
            &db,
            "hr",
            &mapping,
            &source,
            RunOptions::default(),
            &NoProgress,
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(err, SyncError::StaleCheckpoint(_)), "{err}");
        let runs = crate::store::runs::recent_runs(db.pool(), Some("hr"), 1)
            .await
            .unwrap();
        assert_eq!(runs[0].outcome, crate::store::runs::Outcome::Failed);
        assert_eq!(runs[0].message.as_deref(), Some(err.to_string().as_str()));
        let mut tx = db.begin_write().await.unwrap();
        assert!(
            mirror::load_all::<crate::model::SourceUser>(tx.conn(), "hr")
                .await
                .unwrap()
                .is_empty()
        );
        let state = mirror::load_state(tx.conn(), "hr").await.unwrap();
        assert_eq!(state.checkpoint.as_deref(), Some("by another run"));
    }
}
