//! Read-side view of the target directory, for the CLI (and later the admin API): the row
//! shapes (the stable JSON of `--format json`) and [`DirectoryReads`], the narrow read
//! trait a directory implements. The free functions are the SQL implementation's, kept
//! here so that callers holding a pool read the target without naming a backend.

use async_trait::async_trait;
use serde::Serialize;

use super::DirectoryError;

pub use super::sql::query::{
    GroupRef, direct_members, effective_members, find_group, find_user, list_groups, list_users,
    nesting_edges, search_groups, search_users, table_counts, user_group_refs, user_groups,
};
pub use super::sql::search::SearchError;

#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: String,
    pub connector: String,
    pub external_id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub attributes: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    /// Set when the user left the source and was disabled.
    pub removed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub id: String,
    pub connector: String,
    pub external_id: String,
    pub name: String,
    pub description: Option<String>,
    pub direct_members: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A member of a group as listed by `groups show`.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
}

/// What the CLI reads from a target directory. Object-safe (`Arc<dyn DirectoryReads>`).
#[async_trait]
pub trait DirectoryReads: Send + Sync {
    /// Users ordered by user name, optionally of one connector.
    async fn list_users(
        &self,
        connector: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UserRow>, DirectoryError>;
    /// A user by target id or user name (case-insensitive).
    async fn find_user(&self, key: &str) -> Result<Option<UserRow>, DirectoryError>;
    /// Names of the groups a user is in: (direct, effective).
    async fn user_groups(
        &self,
        user_id: &str,
    ) -> Result<(Vec<String>, Vec<String>), DirectoryError>;
    /// Groups ordered by name, optionally of one connector.
    async fn list_groups(
        &self,
        connector: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<GroupRow>, DirectoryError>;
    /// A group by target id or name (case-insensitive).
    async fn find_group(&self, key: &str) -> Result<Option<GroupRow>, DirectoryError>;
    /// Direct members (users and groups) of a group, by name.
    async fn direct_members(&self, group_id: &str) -> Result<Vec<MemberRow>, DirectoryError>;
    /// Every user effectively in a group, nesting resolved.
    async fn effective_members(&self, group_id: &str) -> Result<Vec<MemberRow>, DirectoryError>;
}
