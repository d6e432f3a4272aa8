//! A SCIM tenant's resources in its mirror: read one with what its `meta` is made of,
//! check uniqueness, find member kinds, write and remove, all inside the caller's
//! transaction. The mirror tables are the pull connectors' (see `crate::store::mirror`); a pushed
//! resource's server-assigned `id` is its `external_id` there.

use std::collections::HashMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Context, DbError, now_text, param, select_in};
use crate::model::{MemberKind, SourceGroup, SourceUser, content_hash, name_key};
use crate::store::mirror::query::{Resource, STORED_COLUMNS, StoredRow};
use crate::store::mirror::{self, Mirrored};

/// A resource as stored, with its timestamps and version.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub record: T,
    pub created: String,
    pub modified: String,
    /// The content hash: the resource's version (weak ETag).
    pub version: String,
}

impl<T: serde::de::DeserializeOwned> Stored<T> {
    pub fn from_row(row: &StoredRow) -> Result<Stored<T>, DbError> {
        Ok(Stored {
            record: row.decode()?,
            created: row.created_at.clone(),
            modified: row.updated_at.clone(),
            version: row.content_hash.clone(),
        })
    }
}

/// A resource of the tenant by id, with its meta.
pub async fn get<T: serde::de::DeserializeOwned>(
    conn: &mut AnyConnection,
    resource: Resource,
    tenant: &str,
    id: &str,
) -> Result<Option<Stored<T>>, DbError> {
    let sql = format!(
        "SELECT {STORED_COLUMNS} FROM {} WHERE connector = {} AND external_id = {}",
        resource.table(),
        param(conn, 1),
        param(conn, 2)
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .context("reading a resource")?;
    match row {
        None => Ok(None),
        Some(row) => {
            let stored = StoredRow::from_row(&row).context("reading a resource")?;
            Stored::from_row(&stored).map(Some)
        }
    }
}

/// The id of another resource of the tenant holding `name` (case-insensitively), if any.
pub async fn name_holder(
    conn: &mut AnyConnection,
    resource: Resource,
    tenant: &str,
    name: &str,
    except_id: &str,
) -> Result<Option<String>, DbError> {
    let column = match resource {
        Resource::User => "user_name_key",
        Resource::Group => "name_key",
    };
    let sql = format!(
        "SELECT external_id FROM {} WHERE connector = {} AND {column} = {} AND external_id <> {} \
         LIMIT 1",
        resource.table(),
        param(conn, 1),
        param(conn, 2),
        param(conn, 3)
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(name_key(name))
        .bind(except_id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .context("checking uniqueness")?;
    row.map(|r| r.try_get::<String, _>(0))
        .transpose()
        .context("checking uniqueness")
}

/// Which of `ids` are users and which groups of the tenant (ids that are neither are
/// missing from the map).
pub async fn member_kinds(
    conn: &mut AnyConnection,
    tenant: &str,
    ids: &[String],
) -> Result<HashMap<String, MemberKind>, DbError> {
    let mut kinds = HashMap::with_capacity(ids.len());
    for (table, kind) in [
        ("mirror_users", MemberKind::User),
        ("mirror_groups", MemberKind::Group),
    ] {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !kinds.contains_key(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        let rows = select_in(
            conn,
            &format!("SELECT external_id FROM {table}"),
            Some(("connector = ", tenant)),
            "external_id",
            &missing,
            "looking up members",
        )
        .await?;
        for row in rows {
            let id: String = row.try_get(0).context("looking up members")?;
            kinds.insert(id, kind);
        }
    }
    Ok(kinds)
}

/// What a write of a resource is.
#[derive(Debug, Clone, Copy)]
pub enum Put<'a> {
    /// A create: the id was just minted, so nothing of the resource is stored yet.
    New,
    /// A replacement of the stored resource created at this time.
    Replace(&'a str),
    /// A change the caller does not answer with (its creation time is not needed).
    Update,
}

impl Put<'_> {
    fn created(&self) -> Option<&str> {
        match self {
            Put::Replace(created) => Some(created),
            Put::New | Put::Update => None,
        }
    }
}

/// Writes a user; returns it as stored.
pub async fn put_user(
    conn: &mut AnyConnection,
    tenant: &str,
    user: SourceUser,
    put: Put<'_>,
) -> Result<Stored<SourceUser>, DbError> {
    put_record(conn, tenant, user, put).await
}

/// Writes a group; returns it as stored.
pub async fn put_group(
    conn: &mut AnyConnection,
    tenant: &str,
    group: SourceGroup,
    put: Put<'_>,
) -> Result<Stored<SourceGroup>, DbError> {
    put_record(conn, tenant, group, put).await
}

async fn put_record<T: Mirrored + Clone>(
    conn: &mut AnyConnection,
    tenant: &str,
    record: T,
    put: Put<'_>,
) -> Result<Stored<T>, DbError> {
    let now = now_text();
    let version = content_hash(&record);
    let records = vec![(record.clone(), version.clone())];
    // A create's id was just minted: nothing of it is in the value index yet.
    let new = matches!(put, Put::New);
    mirror::upsert_at(conn, tenant, records, &now, new).await?;
    Ok(Stored {
        record,
        created: put.created().map_or_else(|| now.clone(), str::to_string),
        modified: now,
        version,
    })
}

/// Removes resource `id` (of kind `T`) from the tenant's mirror, and from the groups that
/// listed it (`listing`, as [`groups_with_member`] found them), as one batch (one round
/// trip on SQLite, see `db::Batch`).
pub(crate) async fn remove<T: Mirrored>(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    listing: Vec<SourceGroup>,
) -> Result<(), DbError> {
    let groups = listing
        .into_iter()
        .map(|mut group| {
            group.members.retain(|m| m.id != id);
            let version = content_hash(&group);
            (group, version)
        })
        .collect();
    mirror::rewrite_groups_and_delete::<T>(conn, tenant, groups, &[id.to_string()]).await
}

/// Groups of the tenant that list `member_id` as a member, found through the mirror's
/// member index (`mirror_values`): O(the member's groups), not O(the tenant's groups).
/// Each candidate is still checked exactly.
pub async fn groups_with_member(
    conn: &mut AnyConnection,
    tenant: &str,
    member_id: &str,
) -> Result<Vec<SourceGroup>, DbError> {
    const CTX: &str = "finding a member's groups";
    let (p1, p2, p3, p4, p5) = (
        param(conn, 1),
        param(conn, 2),
        param(conn, 3),
        param(conn, 4),
        param(conn, 5),
    );
    let sql = format!(
        "SELECT data FROM mirror_groups WHERE connector = {p1} AND external_id IN \
         (SELECT external_id FROM mirror_values WHERE connector = {p2} AND resource = {p3} \
          AND attr = {p4} AND value_key = {p5})"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(tenant.to_string())
        .bind(crate::store::mirror::values::resource_key(Resource::Group))
        .bind("members")
        .bind(member_id.to_string())
        .fetch_all(&mut *conn)
        .await
        .context(CTX)?;
    let mut groups = Vec::new();
    for row in rows {
        let data: &str = row.try_get(0).context(CTX)?;
        let group: SourceGroup = serde_json::from_str(data).map_err(|e| DbError::Corrupt {
            context: "decoding a mirror record",
            message: e.to_string(),
        })?;
        if group.members.iter().any(|m| m.id == member_id) {
            groups.push(group);
        }
    }
    Ok(groups)
}

/// What a write needs to know before projecting, read in one statement: the tenant's
/// mirror state, its hold reason (if held) and the removals applied to its target within
/// the last `window_minutes`.
pub async fn write_state(
    conn: &mut AnyConnection,
    tenant: &str,
    window_minutes: u64,
) -> Result<(crate::store::mirror::MirrorState, Option<String>, u64), DbError> {
    const CTX: &str = "reading the tenant's mirror state and removal window";
    let (p1, p2, p3, p4) = (
        param(conn, 1),
        param(conn, 2),
        param(conn, 3),
        param(conn, 4),
    );
    // One row whether or not the tenant has a state row yet.
    let sql = format!(
        "SELECT s.checkpoint, s.generation, s.applied_generation, s.applied_mapping_hash, \
         (SELECT reason FROM scim_holds WHERE tenant = {p1}), \
         (SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM scim_removals \
          WHERE tenant = {p2} AND at >= {p3}) \
         FROM (SELECT 1 AS one) AS one LEFT JOIN mirror_state s ON s.connector = {p4}"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(tenant.to_string())
        .bind(crate::store::holds::window_start(window_minutes))
        .bind(tenant.to_string())
        .fetch_one(&mut *conn)
        .await
        .context(CTX)?;
    let state = crate::store::mirror::MirrorState {
        checkpoint: row.try_get(0).context(CTX)?,
        generation: row.try_get::<Option<i64>, _>(1).context(CTX)?.unwrap_or(0),
        applied_generation: row.try_get::<Option<i64>, _>(2).context(CTX)?.unwrap_or(0),
        applied_mapping_hash: row.try_get(3).context(CTX)?,
    };
    let reason: Option<String> = row.try_get(4).context(CTX)?;
    let removals: i64 = row.try_get(5).context(CTX)?;
    Ok((state, reason, removals.max(0) as u64))
}
