//! Loads what the target holds for one connector, as the plan needs it, and finds which
//! names are held by records outside the connector.

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{Context, DbError, select_in};
use crate::pipeline::Origin;
use crate::pipeline::plan::{Current, CurrentGroup, CurrentUser, ForeignNames, NamedGroup};

pub async fn load_current(conn: &mut AnyConnection, connector: &str) -> Result<Current, DbError> {
    const CTX: &str = "reading the target";
    let mut current = Current::default();
    let rows = sqlx::query(
        "SELECT id, external_id, user_name, user_name_key, content_hash, removed_at \
         FROM users WHERE connector = $1",
    )
    .bind(connector.to_string())
    .fetch_all(&mut *conn)
    .await
    .context(CTX)?;
    for row in rows {
        let (ext, user) = current_user(&row)?;
        current.users.insert(ext, user);
    }
    load_groups_into(conn, connector, &mut current).await?;
    let mut rows =
        sqlx::query("SELECT group_id, member_id, origin FROM memberships WHERE connector = $1")
            .bind(connector.to_string())
            .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.context(CTX)? {
        file_membership(&mut current, &row)?;
    }
    Ok(current)
}

fn current_user(row: &AnyRow) -> Result<(String, CurrentUser), DbError> {
    const CTX: &str = "reading the target";
    let removed: Option<String> = row.try_get("removed_at").context(CTX)?;
    Ok((
        row.try_get("external_id").context(CTX)?,
        CurrentUser {
            id: row.try_get("id").context(CTX)?,
            user_name: row.try_get("user_name").context(CTX)?,
            user_name_key: row.try_get("user_name_key").context(CTX)?,
            content_hash: row.try_get("content_hash").context(CTX)?,
            removed: removed.is_some(),
        },
    ))
}

/// Every group the connector owns, by external id.
async fn load_groups_into(
    conn: &mut AnyConnection,
    connector: &str,
    current: &mut Current,
) -> Result<(), DbError> {
    const CTX: &str = "reading the target";
    let rows = sqlx::query(
        "SELECT id, external_id, name, name_key, content_hash FROM groups WHERE connector = $1",
    )
    .bind(connector.to_string())
    .fetch_all(&mut *conn)
    .await
    .context(CTX)?;
    for row in rows {
        insert_group(current, &row)?;
    }
    Ok(())
}

fn insert_group(current: &mut Current, row: &AnyRow) -> Result<(), DbError> {
    const CTX: &str = "reading the target";
    current.groups.insert(
        row.try_get("external_id").context(CTX)?,
        CurrentGroup {
            id: row.try_get("id").context(CTX)?,
            name: row.try_get("name").context(CTX)?,
            name_key: row.try_get("name_key").context(CTX)?,
            content_hash: row.try_get("content_hash").context(CTX)?,
        },
    );
    Ok(())
}

/// Files a membership row (group id, member id, origin) under current or sticky.
fn file_membership(current: &mut Current, row: &AnyRow) -> Result<(), DbError> {
    const CTX: &str = "reading the target";
    let pair = (
        row.try_get::<String, _>(0).context(CTX)?,
        row.try_get::<String, _>(1).context(CTX)?,
    );
    let origin: &str = row.try_get(2).context(CTX)?;
    file_pair(current, pair, origin);
    Ok(())
}

/// Files a membership (group id, member id) by its origin: default memberships are sticky.
fn file_pair(current: &mut Current, pair: (String, String), origin: &str) {
    if origin == Origin::Default.as_str() {
        current.sticky.insert(pair);
    } else {
        current.memberships.insert(pair);
    }
}

/// Of `keys`, the user names held by users of other connectors.
pub async fn foreign_user_names(
    conn: &mut AnyConnection,
    connector: &str,
    keys: &[String],
) -> Result<ForeignNames, DbError> {
    foreign_names(conn, "users", "user_name_key", connector, keys).await
}

/// Of `keys`, the group names held by groups of other connectors.
pub async fn foreign_group_names(
    conn: &mut AnyConnection,
    connector: &str,
    keys: &[String],
) -> Result<ForeignNames, DbError> {
    foreign_names(conn, "groups", "name_key", connector, keys).await
}

async fn foreign_names(
    conn: &mut AnyConnection,
    table: &'static str,
    key_column: &'static str,
    connector: &str,
    keys: &[String],
) -> Result<ForeignNames, DbError> {
    let select = format!("SELECT {key_column}, connector, external_id FROM {table}");
    let leading = Some(("connector <> ", connector));
    let context = "checking names against other connectors";
    let rows = select_in(conn, &select, leading, key_column, keys, context).await?;
    let owners = name_owners(rows)?;
    Ok(owners
        .into_iter()
        .map(|(key, owner, ext)| (key, format!("connector {owner:?} (external id {ext:?})")))
        .collect())
}

/// Rows of (name key, owning connector, external id) as owned text.
fn name_owners(rows: Vec<AnyRow>) -> Result<Vec<(String, String, String)>, DbError> {
    const CTX: &str = "reading a name owner";
    let mut owners = Vec::with_capacity(rows.len());
    for row in rows {
        owners.push((
            row.try_get(0).context(CTX)?,
            row.try_get(1).context(CTX)?,
            row.try_get(2).context(CTX)?,
        ));
    }
    Ok(owners)
}

/// Existing groups (of any owner) by name key, for the given keys.
pub async fn groups_by_name(
    conn: &mut AnyConnection,
    keys: &[String],
) -> Result<HashMap<String, NamedGroup>, DbError> {
    let mut found = HashMap::new();
    let rows = select_in(
        conn,
        "SELECT name_key, id, connector, name FROM groups",
        None,
        "name_key",
        keys,
        "looking up groups by name",
    )
    .await?;
    for row in rows {
        found.insert(
            row.try_get(0).context("reading a group")?,
            NamedGroup {
                id: row.try_get(1).context("reading a group")?,
                owner: row.try_get(2).context("reading a group")?,
                name: row.try_get(3).context("reading a group")?,
            },
        );
    }
    Ok(found)
}

/// What the target holds for some users of a connector (`user_ext_ids`): those users,
/// their memberships and the connector's groups they are in (not every group of the
/// connector: a plan over a few users reads O(their groups); the caller adds the other
/// groups it plans with [`add_groups_by_external_id`]).
/// With `count_live`, `live_users_total` and `memberships_total` are set to the
/// connector's whole counts, for the percentage safety limits (a count that costs a walk over the connector's users, which a
/// SCIM request, guarded by its removal window instead, skips).
pub async fn load_current_for_users(
    conn: &mut AnyConnection,
    connector: &str,
    user_ext_ids: &[String],
    count_live: bool,
) -> Result<Current, DbError> {
    const CTX: &str = "reading the target";
    let mut current = Current::default();
    // The users with their memberships (one row each, or one with no membership), and the
    // group of each membership: one statement, as a SCIM write pays per round trip. The
    // users are found by the connector's external-id key, their memberships through the
    // member index; other connectors' grants are dropped here, and the connector's own
    // groups are kept.
    let rows = select_in(
        conn,
        "SELECT u.id, u.external_id, u.user_name, u.user_name_key, u.content_hash, \
         u.removed_at, m.group_id, m.origin, m.connector AS granted_by, \
         g.external_id AS group_external_id, g.name, g.name_key, \
         g.content_hash AS group_hash, g.connector AS owner FROM users u \
         LEFT JOIN memberships m ON m.member_id = u.id \
         LEFT JOIN groups g ON g.id = m.group_id",
        Some(("u.connector = ", connector)),
        "u.external_id",
        user_ext_ids,
        CTX,
    )
    .await?;
    for row in rows {
        let (ext, user) = current_user(&row)?;
        let group_id: Option<String> = row.try_get("group_id").context(CTX)?;
        if let Some(group_id) = group_id {
            let granted_by: String = row.try_get("granted_by").context(CTX)?;
            if granted_by == connector {
                let origin: &str = row.try_get("origin").context(CTX)?;
                file_pair(&mut current, (group_id.clone(), user.id.clone()), origin);
            }
            let owner: Option<String> = row.try_get("owner").context(CTX)?;
            if owner.as_deref() == Some(connector) {
                current.groups.insert(
                    row.try_get("group_external_id").context(CTX)?,
                    CurrentGroup {
                        id: group_id,
                        name: row.try_get("name").context(CTX)?,
                        name_key: row.try_get("name_key").context(CTX)?,
                        content_hash: row.try_get("group_hash").context(CTX)?,
                    },
                );
            }
        }
        current.users.insert(ext, user);
    }
    if count_live {
        let row =
            sqlx::query("SELECT COUNT(*) FROM users WHERE connector = $1 AND removed_at IS NULL")
                .bind(connector.to_string())
                .fetch_one(&mut *conn)
                .await
                .context(CTX)?;
        current.live_users_total = Some(row.try_get::<i64, _>(0).context(CTX)? as u64);
        let row =
            sqlx::query("SELECT COUNT(*) FROM memberships WHERE connector = $1 AND origin <> $2")
                .bind(connector.to_string())
                .bind(Origin::Default.as_str())
                .fetch_one(&mut *conn)
                .await
                .context(CTX)?;
        current.memberships_total = Some(row.try_get::<i64, _>(0).context(CTX)? as u64);
    }
    Ok(current)
}

/// Adds the connector's groups of `external_ids` that `current` does not hold yet.
pub async fn add_groups_by_external_id(
    conn: &mut AnyConnection,
    connector: &str,
    current: &mut Current,
    external_ids: &[String],
) -> Result<(), DbError> {
    const CTX: &str = "reading the target";
    let missing: Vec<String> = external_ids
        .iter()
        .filter(|ext| !current.groups.contains_key(*ext))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = select_in(
        conn,
        "SELECT id, external_id, name, name_key, content_hash FROM groups",
        Some(("connector = ", connector)),
        "external_id",
        &missing,
        CTX,
    )
    .await?;
    for row in rows {
        insert_group(current, &row)?;
    }
    Ok(())
}

/// Adds the connector's groups `parents`, the rows nesting groups in them that the
/// connector granted, and the connector's groups so nested (see
/// [`crate::target::Directory::add_nesting`]).
pub async fn add_nesting(
    conn: &mut AnyConnection,
    connector: &str,
    current: &mut Current,
    parents: &[String],
) -> Result<(), DbError> {
    const CTX: &str = "reading the target's nested groups";
    add_groups_by_external_id(conn, connector, current, parents).await?;
    let rows = select_in(
        conn,
        "SELECT m.group_id, m.member_id, m.origin, m.connector AS granted_by, \
         c.id, c.external_id, c.name, c.name_key, c.content_hash, c.connector AS owner \
         FROM groups g JOIN memberships m ON m.group_id = g.id AND m.member_kind = 'group' \
         JOIN groups c ON c.id = m.member_id",
        Some(("g.connector = ", connector)),
        "g.external_id",
        parents,
        CTX,
    )
    .await?;
    for row in rows {
        let granted_by: String = row.try_get("granted_by").context(CTX)?;
        if granted_by == connector {
            let origin: &str = row.try_get("origin").context(CTX)?;
            let pair = (
                row.try_get("group_id").context(CTX)?,
                row.try_get("member_id").context(CTX)?,
            );
            file_pair(current, pair, origin);
        }
        let owner: String = row.try_get("owner").context(CTX)?;
        if owner == connector {
            insert_group(current, &row)?;
        }
    }
    Ok(())
}

/// See [`crate::target::Directory::users_outside`]: one anti-join over the connector's
/// live users.
pub async fn users_outside(
    conn: &mut AnyConnection,
    connector: &str,
    owner: &str,
    group: &str,
) -> Result<Vec<String>, DbError> {
    const CTX: &str = "reading the users outside a default group";
    let rows = sqlx::query(
        "SELECT u.external_id FROM users u WHERE u.connector = $1 AND u.removed_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM memberships m JOIN groups g ON g.id = m.group_id \
         WHERE m.member_id = u.id AND g.connector = $2 AND g.name_key = $3)",
    )
    .bind(connector.to_string())
    .bind(owner.to_string())
    .bind(crate::model::name_key(group))
    .fetch_all(&mut *conn)
    .await
    .context(CTX)?;
    rows.iter().map(|row| row.try_get(0).context(CTX)).collect()
}

/// Of `keys`, the user names held by any user except the connector's users in `scope`.
pub async fn user_names_held_outside(
    conn: &mut AnyConnection,
    connector: &str,
    scope: &HashSet<String>,
    keys: &[String],
) -> Result<ForeignNames, DbError> {
    let select = "SELECT user_name_key, connector, external_id FROM users";
    let context = "checking names against other users";
    let rows = select_in(conn, select, None, "user_name_key", keys, context).await?;
    let owners = name_owners(rows)?;
    let mut found = HashMap::new();
    for (key, owner, ext) in owners {
        if owner == connector && scope.contains(&ext) {
            continue;
        }
        let holder = if owner == connector {
            format!("user with external id {ext:?} of this connector")
        } else {
            format!("connector {owner:?} (external id {ext:?})")
        };
        found.insert(key, holder);
    }
    Ok(found)
}
