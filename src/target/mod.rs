//! The target directory: the users, groups and memberships the mappings project into.
//! The engine reaches it through [`Directory`] (what a run reads and writes) and
//! [`query::DirectoryReads`] (what the CLI lists); [`sql`] is the first implementation,
//! over the engine's own database, and [`ldap`] writes an LDAP server with those tables
//! as its record. The record of runs ([`runs`]) is engine state, not part
//! of the directory.
//!
//! Every call takes the run's transaction. The SQL directory writes in it, so that a run
//! changes mirror and target together or not at all; a directory elsewhere (LDAP) keeps
//! its record there and makes its writes safe to repeat ([`Directory::converge`]).

pub mod ldap;
pub mod query;
pub mod sql;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::AnyConnection;

use crate::db::{Batch, DbError};
use crate::pipeline::plan::{Current, Effective, ForeignNames, NamedGroup, NewIds, Plan};

pub use ldap::LdapDirectory;
pub use sql::SqlDirectory;

/// Why the target directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// A directory outside the engine's database failed.
    #[error("{context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Which of a connector's records to load.
#[derive(Debug, Clone, Copy)]
pub enum Owned<'a> {
    /// Every user, group and membership the connector owns.
    All,
    /// The users with these external ids, their memberships, and the connector's groups
    /// they are in (others through [`Directory::add_owned_groups`]). With `count_live`, the connector's whole live-user and membership
    /// counts too (what the percentage safety limits divide by).
    Users {
        external_ids: &'a [String],
        count_live: bool,
    },
}

/// The effective memberships to bring in line after a plan was applied.
pub enum EffectiveUpdate<'a> {
    /// The connector's groups hold exactly their direct users and the pairs of `wanted`
    /// that nesting gives ([`Effective::through_nesting_only`]); `wanted` covers every
    /// group nesting involves ([`crate::pipeline::plan::nesting_pairs`]).
    Whole { wanted: &'a Effective<'a> },
    /// These users (target id -> the connector's groups they are directly in) hold what
    /// their direct groups and the groups above them imply.
    Users {
        direct: &'a HashMap<String, Vec<String>>,
    },
}

/// The target directory as a run sees it. Object-safe: the engine holds `&dyn Directory`
/// (or `Arc<dyn Directory>`). Target ids of new records are chosen by the directory
/// through its [`NewIds`] half when the plan is built.
#[async_trait]
pub trait Directory: NewIds {
    /// Makes writers of the target take turns until the transaction ends, so that two
    /// runs claiming one new name see each other's claim.
    async fn lock_writes(&self, tx: &mut AnyConnection) -> Result<(), DirectoryError>;

    /// What the connector owns now, as the plan compares against.
    async fn load_owned(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        which: Owned<'_>,
    ) -> Result<Current, DirectoryError>;

    /// Adds to `current` the connector's groups of `external_ids` it does not hold yet:
    /// what [`Owned::Users`] loaded are the users' own groups; a plan over them reads
    /// the other groups it works with this way, O(those groups).
    async fn add_owned_groups(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        current: &mut Current,
        external_ids: &[String],
    ) -> Result<(), DirectoryError>;

    /// Adds to `current` the connector's groups of `parents`, their rows that nest groups
    /// in them, and the records of those groups: a plan over a nesting change sees every
    /// nesting row of the groups it covers, O(their group members).
    async fn add_nesting(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        current: &mut Current,
        parents: &[String],
    ) -> Result<(), DirectoryError>;

    /// The external ids of the connector's live users who are not direct members of the
    /// group named `group` that `owner` (a mapping's managed groups) holds: a default
    /// group applied `always` that an admin took from them, or that does not exist yet.
    async fn users_outside(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        owner: &str,
        group: &str,
    ) -> Result<Vec<String>, DirectoryError>;

    /// Of `keys`, the user names held by users of other connectors, and with `besides`
    /// also by this connector's users whose external id is not in it.
    async fn user_names_held(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        keys: &[String],
        besides: Option<&HashSet<String>>,
    ) -> Result<ForeignNames, DirectoryError>;

    /// Of `keys`, the group names held by groups of other connectors.
    async fn group_names_held(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        keys: &[String],
    ) -> Result<ForeignNames, DirectoryError>;

    /// Existing groups of any owner by name key, for the mapping's managed groups.
    async fn groups_by_name(
        &self,
        tx: &mut AnyConnection,
        keys: &[String],
    ) -> Result<HashMap<String, NamedGroup>, DirectoryError>;

    /// Writes the direct part of a plan: removals first (freeing names), then updates,
    /// creates and membership changes. With `defer`, the writes may be left in that batch
    /// instead: the caller guarantees that nothing in the transaction reads the target back
    /// before it sends them (with its own last statements, before committing), and a SCIM
    /// request then pays one round trip to SQLite's worker thread fewer (on PostgreSQL the
    /// statements only move). A directory that must see its writes at once (the LDAP target
    /// reads them to converge) writes them now all the same.
    async fn apply(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        plan: &Plan,
        defer: Option<&mut Batch>,
    ) -> Result<(), DirectoryError>;

    /// Brings the connector's groups' effective memberships in line with the direct ones
    /// after `apply`. Mapping-managed groups hold users only, so their effective members
    /// are their direct users and need nothing here.
    async fn update_effective(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        update: EffectiveUpdate<'_>,
    ) -> Result<(), DirectoryError>;

    /// Brings a directory kept outside the engine's database in line with the target
    /// tables, once a plan has been applied to them (`full`: a plan over the whole
    /// connector, not only changed users). Never called on a dry run. The SQL directory
    /// is the tables, so it has nothing to do.
    async fn converge(
        &self,
        _tx: &mut AnyConnection,
        _connector: &str,
        _plan: &Plan,
        _full: bool,
    ) -> Result<(), DirectoryError> {
        Ok(())
    }
}

/// Which directory the target is (`[target] kind`).
#[derive(Debug, Clone, Default)]
pub enum TargetKind {
    /// The target tables of the engine's database.
    #[default]
    Sql,
    /// An LDAP server, with the tables as its record.
    Ldap(Box<ldap::LdapTargetSettings>),
}

impl TargetKind {
    /// The directory runs write to.
    pub fn directory(&self) -> std::sync::Arc<dyn Directory> {
        match self {
            TargetKind::Sql => std::sync::Arc::new(SqlDirectory),
            TargetKind::Ldap(settings) => {
                std::sync::Arc::new(LdapDirectory::new((**settings).clone()))
            }
        }
    }

    /// `sql` or `ldap`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Sql => "sql",
            TargetKind::Ldap(_) => "ldap",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::query::DirectoryReads;
    use super::*;

    /// The engine and the CLI hold directories as trait objects.
    #[test]
    fn both_traits_are_object_safe() {
        let _directory: Arc<dyn Directory> = Arc::new(SqlDirectory);
        fn reads(_: Option<Arc<dyn DirectoryReads>>) {}
        reads(None);
    }
}
