//! The target directory as tables of the engine's own database (`users`, `groups`,
//! `memberships`, `effective_nested` behind the `effective_memberships` view): the first
//! implementation of [`Directory`] and [`DirectoryReads`]. Writes happen only inside the
//! run's transaction.

mod apply;
#[cfg(test)]
mod migration_tests;
pub(crate) mod query;
pub(crate) mod search;
mod state;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{AnyConnection, AnyPool};

use super::query::{DirectoryReads, GroupRow, MemberRow, UserRow};
use super::{Directory, DirectoryError, EffectiveUpdate, Owned};
use crate::db::Batch;
use crate::pipeline::plan::{Current, ForeignNames, NamedGroup, NewIds, Plan};
use crate::pipeline::{PlannedUser, TargetGroup};

/// The target tables of the engine's database, written in the run's transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlDirectory;

/// A new target id. Version 7 UUIDs grow with time, so a bulk create appends to the
/// primary-key index instead of inserting at random places in it.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl NewIds for SqlDirectory {
    fn user_id(&self, _user: &PlannedUser) -> String {
        new_id()
    }
    fn group_id(&self, _group: &TargetGroup) -> String {
        new_id()
    }
}

#[async_trait]
impl Directory for SqlDirectory {
    async fn lock_writes(&self, tx: &mut AnyConnection) -> Result<(), DirectoryError> {
        // SQLite writers already queue (BEGIN IMMEDIATE); PostgreSQL ones take turns here
        // instead of failing on the unique name key.
        use crate::store::locks::{LockSpace, lock_for_transaction};
        Ok(lock_for_transaction(tx, LockSpace::TargetWrite, None).await?)
    }

    async fn load_owned(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        which: Owned<'_>,
    ) -> Result<Current, DirectoryError> {
        Ok(match which {
            Owned::All => state::load_current(tx, connector).await?,
            Owned::Users {
                external_ids,
                count_live,
            } => state::load_current_for_users(tx, connector, external_ids, count_live).await?,
        })
    }

    async fn add_owned_groups(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        current: &mut Current,
        external_ids: &[String],
    ) -> Result<(), DirectoryError> {
        Ok(state::add_groups_by_external_id(tx, connector, current, external_ids).await?)
    }

    async fn add_nesting(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        current: &mut Current,
        parents: &[String],
    ) -> Result<(), DirectoryError> {
        Ok(state::add_nesting(tx, connector, current, parents).await?)
    }

    async fn users_outside(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        owner: &str,
        group: &str,
    ) -> Result<Vec<String>, DirectoryError> {
        Ok(state::users_outside(tx, connector, owner, group).await?)
    }

    async fn user_names_held(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        keys: &[String],
        besides: Option<&HashSet<String>>,
    ) -> Result<ForeignNames, DirectoryError> {
        Ok(match besides {
            Some(scope) => state::user_names_held_outside(tx, connector, scope, keys).await?,
            None => state::foreign_user_names(tx, connector, keys).await?,
        })
    }

    async fn group_names_held(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        keys: &[String],
    ) -> Result<ForeignNames, DirectoryError> {
        Ok(state::foreign_group_names(tx, connector, keys).await?)
    }

    async fn groups_by_name(
        &self,
        tx: &mut AnyConnection,
        keys: &[String],
    ) -> Result<HashMap<String, NamedGroup>, DirectoryError> {
        Ok(state::groups_by_name(tx, keys).await?)
    }

    async fn apply(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        plan: &Plan,
        defer: Option<&mut Batch>,
    ) -> Result<(), DirectoryError> {
        match defer {
            Some(writes) => apply::add_plan(writes, tx, connector, plan).await?,
            None => apply::apply_plan(tx, connector, plan).await?,
        }
        Ok(())
    }

    async fn update_effective(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        update: EffectiveUpdate<'_>,
    ) -> Result<(), DirectoryError> {
        match update {
            EffectiveUpdate::Whole { wanted } => {
                apply::sync_effective(tx, connector, wanted).await?;
            }
            EffectiveUpdate::Users { direct } => {
                apply::sync_effective_for_users(tx, connector, direct).await?;
            }
        }
        Ok(())
    }
}

/// The CLI's reads over a pool of the engine's database.
#[derive(Debug, Clone)]
pub struct SqlReads {
    pool: AnyPool,
}

impl SqlReads {
    pub fn new(pool: AnyPool) -> SqlReads {
        SqlReads { pool }
    }
}

#[async_trait]
impl DirectoryReads for SqlReads {
    async fn list_users(
        &self,
        connector: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UserRow>, DirectoryError> {
        Ok(query::list_users(&self.pool, connector, limit, offset).await?)
    }
    async fn find_user(&self, key: &str) -> Result<Option<UserRow>, DirectoryError> {
        Ok(query::find_user(&self.pool, key).await?)
    }
    async fn user_groups(
        &self,
        user_id: &str,
    ) -> Result<(Vec<String>, Vec<String>), DirectoryError> {
        Ok(query::user_groups(&self.pool, user_id).await?)
    }
    async fn list_groups(
        &self,
        connector: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<GroupRow>, DirectoryError> {
        Ok(query::list_groups(&self.pool, connector, limit, offset).await?)
    }
    async fn find_group(&self, key: &str) -> Result<Option<GroupRow>, DirectoryError> {
        Ok(query::find_group(&self.pool, key).await?)
    }
    async fn direct_members(&self, group_id: &str) -> Result<Vec<MemberRow>, DirectoryError> {
        Ok(query::direct_members(&self.pool, group_id).await?)
    }
    async fn effective_members(&self, group_id: &str) -> Result<Vec<MemberRow>, DirectoryError> {
        Ok(query::effective_members(&self.pool, group_id).await?)
    }
}
