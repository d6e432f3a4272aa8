//! The CLI's reads of the target directory in SQL: the first implementation of
//! [`crate::target::query::DirectoryReads`], and the pool-taking functions the CLI and the
//! tests call directly.

use super::search::{SearchError, Searched, search};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::db::{Context, DbError, get_bool};
use crate::model::name_key;
use crate::target::query::{GroupRow, MemberRow, UserRow};

const CTX: &str = "reading the target directory";

const USER_COLUMNS: &str = "id, connector, external_id, user_name, display_name, given_name, \
     family_name, email, active, attributes, created_at, updated_at, removed_at";

fn user_row(row: &AnyRow) -> Result<UserRow, DbError> {
    let attributes: String = row.try_get("attributes").context(CTX)?;
    Ok(UserRow {
        id: row.try_get("id").context(CTX)?,
        connector: row.try_get("connector").context(CTX)?,
        external_id: row.try_get("external_id").context(CTX)?,
        user_name: row.try_get("user_name").context(CTX)?,
        display_name: row.try_get("display_name").context(CTX)?,
        given_name: row.try_get("given_name").context(CTX)?,
        family_name: row.try_get("family_name").context(CTX)?,
        email: row.try_get("email").context(CTX)?,
        active: get_bool(row, "active").context(CTX)?,
        attributes: serde_json::from_str(&attributes).unwrap_or(serde_json::Value::Null),
        created_at: row.try_get("created_at").context(CTX)?,
        updated_at: row.try_get("updated_at").context(CTX)?,
        removed_at: row.try_get("removed_at").context(CTX)?,
    })
}

const GROUP_SELECT: &str = "SELECT g.id, g.connector, g.external_id, g.name, g.description, \
     g.created_at, g.updated_at, \
     (SELECT COUNT(*) FROM memberships m WHERE m.group_id = g.id) AS direct_members FROM groups g";

fn group_row(row: &AnyRow) -> Result<GroupRow, DbError> {
    Ok(GroupRow {
        id: row.try_get("id").context(CTX)?,
        connector: row.try_get("connector").context(CTX)?,
        external_id: row.try_get("external_id").context(CTX)?,
        name: row.try_get("name").context(CTX)?,
        description: row.try_get("description").context(CTX)?,
        direct_members: row.try_get("direct_members").context(CTX)?,
        created_at: row.try_get("created_at").context(CTX)?,
        updated_at: row.try_get("updated_at").context(CTX)?,
    })
}

/// One page of rows of `sql` (whose `$1` is an optional connector, `$2` the limit and
/// `$3` the offset), read by `read`.
async fn page<T>(
    pool: &AnyPool,
    sql: String,
    connector: Option<&str>,
    limit: i64,
    offset: i64,
    read: fn(&AnyRow) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(connector.map(str::to_string))
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
        .context(CTX)?;
    rows.iter().map(read).collect()
}

/// The row of `sql` (whose `$1` is a target id, `$2` a name key) that `key` names, read
/// by `read`.
async fn by_id_or_name<T>(
    pool: &AnyPool,
    sql: String,
    key: &str,
    read: fn(&AnyRow) -> Result<T, DbError>,
) -> Result<Option<T>, DbError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key.to_string())
        .bind(name_key(key))
        .fetch_optional(pool)
        .await
        .context(CTX)?;
    row.as_ref().map(read).transpose()
}

/// Users ordered by user name, optionally of one connector.
pub async fn list_users(
    pool: &AnyPool,
    connector: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRow>, DbError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR connector = $1) \
         ORDER BY user_name_key LIMIT $2 OFFSET $3"
    );
    page(pool, sql, connector, limit, offset, user_row).await
}

/// A user by target id or user name (case-insensitive).
pub async fn find_user(pool: &AnyPool, key: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR user_name_key = $2");
    by_id_or_name(pool, sql, key, user_row).await
}

/// Names of the groups a user is in: (direct, effective).
pub async fn user_groups(
    pool: &AnyPool,
    user_id: &str,
) -> Result<(Vec<String>, Vec<String>), DbError> {
    let direct = by_one_id(
        pool,
        "SELECT DISTINCT g.name FROM memberships m JOIN groups g ON g.id = m.group_id \
         WHERE m.member_id = $1 ORDER BY g.name",
        user_id,
        |r| r.try_get(0).context(CTX),
    )
    .await?;
    let effective = by_one_id(
        pool,
        "SELECT g.name FROM effective_memberships e JOIN groups g ON g.id = e.group_id \
         WHERE e.user_id = $1 ORDER BY g.name",
        user_id,
        |r| r.try_get(0).context(CTX),
    )
    .await?;
    Ok((direct, effective))
}

pub async fn list_groups(
    pool: &AnyPool,
    connector: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<GroupRow>, DbError> {
    let sql = format!(
        "{GROUP_SELECT} WHERE ($1 IS NULL OR g.connector = $1) ORDER BY g.name_key LIMIT $2 OFFSET $3"
    );
    page(pool, sql, connector, limit, offset, group_row).await
}

/// A group by target id or name (case-insensitive).
pub async fn find_group(pool: &AnyPool, key: &str) -> Result<Option<GroupRow>, DbError> {
    let sql = format!("{GROUP_SELECT} WHERE g.id = $1 OR g.name_key = $2");
    by_id_or_name(pool, sql, key, group_row).await
}

/// Every row of `sql` (whose `$1` is `id`), read by `read`.
async fn by_one_id<T>(
    pool: &AnyPool,
    sql: &'static str,
    id: &str,
    read: fn(&AnyRow) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let rows = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_all(pool)
        .await
        .context(CTX)?;
    rows.iter().map(read).collect()
}

/// A member row of `(type, id, name)` columns.
fn member_row(row: &AnyRow) -> Result<MemberRow, DbError> {
    Ok(MemberRow {
        kind: row.try_get(0).context(CTX)?,
        id: row.try_get(1).context(CTX)?,
        name: row.try_get(2).context(CTX)?,
    })
}

/// Direct members (users and groups) of a group, by name.
pub async fn direct_members(pool: &AnyPool, group_id: &str) -> Result<Vec<MemberRow>, DbError> {
    by_one_id(
        pool,
        "SELECT DISTINCT m.member_kind, m.member_id, COALESCE(u.user_name, g.name, m.member_id) AS name \
         FROM memberships m \
         LEFT JOIN users u ON m.member_kind = 'user' AND u.id = m.member_id \
         LEFT JOIN groups g ON m.member_kind = 'group' AND g.id = m.member_id \
         WHERE m.group_id = $1 ORDER BY m.member_kind DESC, name",
        group_id,
        member_row,
    )
    .await
}

/// Every user effectively in a group, nesting resolved.
pub async fn effective_members(pool: &AnyPool, group_id: &str) -> Result<Vec<MemberRow>, DbError> {
    by_one_id(
        pool,
        "SELECT 'user', u.id, u.user_name FROM effective_memberships e \
         JOIN users u ON u.id = e.user_id WHERE e.group_id = $1 ORDER BY u.user_name_key",
        group_id,
        member_row,
    )
    .await
}

/// Row counts of the target tables: (users, groups, memberships, effective memberships).
pub async fn table_counts(pool: &AnyPool) -> Result<(i64, i64, i64, i64), DbError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM groups), \
         (SELECT COUNT(*) FROM memberships), (SELECT COUNT(*) FROM effective_memberships)",
    )
    .fetch_one(pool)
    .await
    .context(CTX)?;
    Ok((
        row.try_get(0).context(CTX)?,
        row.try_get(1).context(CTX)?,
        row.try_get(2).context(CTX)?,
        row.try_get(3).context(CTX)?,
    ))
}

/// One page of the users `filter` matches (all without one), optionally of one connector,
/// ordered by user name.
pub async fn search_users(
    pool: &AnyPool,
    filter: Option<&crate::filter::Filter>,
    connector: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRow>, SearchError> {
    let select = format!("SELECT {USER_COLUMNS} FROM users");
    search(
        pool,
        Searched::Users,
        &select,
        filter,
        connector,
        (limit, offset),
        user_row,
    )
    .await
}

/// One page of the groups `filter` matches (all without one), optionally of one
/// connector, ordered by name.
pub async fn search_groups(
    pool: &AnyPool,
    filter: Option<&crate::filter::Filter>,
    connector: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<GroupRow>, SearchError> {
    search(
        pool,
        Searched::Groups,
        GROUP_SELECT,
        filter,
        connector,
        (limit, offset),
        group_row,
    )
    .await
}

/// A group a user is in, by id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

/// The groups a user is in, by id and name: (direct, effective).
pub async fn user_group_refs(
    pool: &AnyPool,
    user_id: &str,
) -> Result<(Vec<GroupRef>, Vec<GroupRef>), DbError> {
    let read = |r: &AnyRow| -> Result<GroupRef, DbError> {
        Ok(GroupRef {
            id: r.try_get(0).context(CTX)?,
            name: r.try_get(1).context(CTX)?,
        })
    };
    let direct = by_one_id(
        pool,
        "SELECT DISTINCT g.id, g.name, g.name_key FROM memberships m JOIN groups g ON g.id = m.group_id \
         WHERE m.member_id = $1 AND m.member_kind = 'user' ORDER BY g.name_key",
        user_id,
        read,
    )
    .await?;
    let effective = by_one_id(
        pool,
        "SELECT g.id, g.name FROM effective_memberships e JOIN groups g ON g.id = e.group_id \
         WHERE e.user_id = $1 ORDER BY g.name_key",
        user_id,
        read,
    )
    .await?;
    Ok((direct, effective))
}

/// Every nesting edge of the target: (parent group id, member group id).
pub async fn nesting_edges(pool: &AnyPool) -> Result<Vec<(String, String)>, DbError> {
    let rows = sqlx::query(
        "SELECT DISTINCT group_id, member_id FROM memberships WHERE member_kind = 'group'",
    )
    .fetch_all(pool)
    .await
    .context(CTX)?;
    rows.iter()
        .map(|r| Ok((r.try_get(0).context(CTX)?, r.try_get(1).context(CTX)?)))
        .collect()
}
