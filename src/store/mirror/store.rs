//! SQL for the mirror tables: records stored as JSON with their content hash (and their
//! multi-valued attributes' index rows, `super::values`), and the per-connector state row.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Batch, Context, DbError, Val, delete_in, now_text, select_in};
use crate::model::{SourceGroup, SourceUser, name_key};

use super::query::Resource;
use super::values::{self, Element};

/// Per-connector bookkeeping stored beside the mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorState {
    /// The delta cursor to resume from.
    pub checkpoint: Option<String>,
    /// Bumped whenever the mirror changes.
    pub generation: i64,
    /// The generation the target was last projected from.
    pub applied_generation: i64,
    /// The fingerprint of the mapping the target was last projected through.
    pub applied_mapping_hash: Option<String>,
}

pub async fn load_state(conn: &mut AnyConnection, connector: &str) -> Result<MirrorState, DbError> {
    let row = sqlx::query(
        "SELECT checkpoint, generation, applied_generation, applied_mapping_hash \
         FROM mirror_state WHERE connector = $1",
    )
    .bind(connector.to_string())
    .fetch_optional(&mut *conn)
    .await
    .context("reading the mirror state")?;
    let Some(row) = row else {
        return Ok(MirrorState::default());
    };
    Ok(MirrorState {
        checkpoint: row
            .try_get("checkpoint")
            .context("reading the mirror state")?,
        generation: row
            .try_get("generation")
            .context("reading the mirror state")?,
        applied_generation: row
            .try_get("applied_generation")
            .context("reading the mirror state")?,
        applied_mapping_hash: row
            .try_get("applied_mapping_hash")
            .context("reading the mirror state")?,
    })
}

pub async fn save_state(
    conn: &mut AnyConnection,
    connector: &str,
    state: &MirrorState,
) -> Result<(), DbError> {
    let mut batch = Batch::new("saving the mirror state");
    save_state_into(&mut batch, conn, connector, state);
    batch.execute(conn).await
}

/// [`save_state`] as a statement of `batch`.
pub fn save_state_into(
    batch: &mut Batch,
    conn: &AnyConnection,
    connector: &str,
    state: &MirrorState,
) {
    let p = |n| crate::db::param(conn, n);
    batch.push(
        format!(
            "INSERT INTO mirror_state \
               (connector, checkpoint, generation, applied_generation, applied_mapping_hash, \
                updated_at) \
             VALUES ({}, {}, {}, {}, {}, {}) \
             ON CONFLICT (connector) DO UPDATE SET checkpoint = excluded.checkpoint, \
               generation = excluded.generation, applied_generation = excluded.applied_generation, \
               applied_mapping_hash = excluded.applied_mapping_hash, updated_at = excluded.updated_at",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        ),
        vec![
            Val::Text(connector.to_string()),
            Val::OptText(state.checkpoint.clone()),
            Val::Int(state.generation),
            Val::Int(state.applied_generation),
            Val::OptText(state.applied_mapping_hash.clone()),
            Val::Text(now_text()),
        ],
    );
}

/// external id -> content hash of every mirrored record of the kind of the connector.
pub(crate) async fn hashes<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
) -> Result<HashMap<String, String>, DbError> {
    let sql = format!(
        "SELECT external_id, content_hash FROM {} WHERE connector = $1",
        T::LAYOUT.resource.table()
    );
    let mut hashes = HashMap::new();
    each_row(conn, sql, connector, "reading mirror hashes", |row| {
        let id = row.try_get(0).context("reading mirror hashes")?;
        hashes.insert(id, row.try_get(1).context("reading mirror hashes")?);
        Ok(())
    })
    .await?;
    Ok(hashes)
}

/// Runs `sql` (whose `$1` is the connector) and hands each row to `each`, streamed: only
/// one row's text is held at a time besides what `each` keeps.
async fn each_row(
    conn: &mut AnyConnection,
    sql: String,
    connector: &str,
    context: &'static str,
    mut each: impl FnMut(&AnyRow) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let mut rows = sqlx::query(AssertSqlSafe(sql))
        .bind(connector.to_string())
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.context(context)? {
        each(&row)?;
    }
    Ok(())
}

/// The columns filters are answered from: (name key, client externalId).
type FilterColumns = (String, Option<String>);

/// How one kind of record is stored: its table, columns and indexed values.
pub(crate) struct Layout<T> {
    resource: Resource,
    /// What removing records of the kind is called in a failure.
    removing: &'static str,
    name_column: &'static str,
    id_of: fn(&T) -> &str,
    filter_columns: fn(&T) -> FilterColumns,
    index: Index<T>,
}

/// How a kind's multi-valued attributes reach `mirror_values`.
enum Index<T> {
    /// Elements computed here and bound (users: e-mails fold case as Unicode does, which
    /// SQL's `LOWER` does not on every backend).
    Bound(fn(&T) -> Vec<Element>),
    /// Rows derived in SQL from the mirror rows just written (groups' members, see
    /// `values::derive_members`).
    Derived,
}

const USERS: Layout<SourceUser> = Layout {
    resource: Resource::User,
    removing: "removing users from the mirror",
    name_column: "user_name_key",
    id_of: |u| &u.external_id,
    filter_columns: |u| (name_key(&u.user_name), client_external_id(&u.attributes)),
    index: Index::Bound(values::user_elements),
};

const GROUPS: Layout<SourceGroup> = Layout {
    resource: Resource::Group,
    removing: "removing groups from the mirror",
    name_column: "name_key",
    id_of: |g| &g.external_id,
    filter_columns: |g| (name_key(&g.display_name), client_external_id(&g.attributes)),
    index: Index::Derived,
};

/// A kind of record the mirror stores (users, groups), with how it is stored.
pub(crate) trait Mirrored: Serialize + DeserializeOwned + 'static {
    const LAYOUT: &'static Layout<Self>;
}

impl Mirrored for SourceUser {
    const LAYOUT: &'static Layout<SourceUser> = &USERS;
}

impl Mirrored for SourceGroup {
    const LAYOUT: &'static Layout<SourceGroup> = &GROUPS;
}

/// A record to write, its content hash and, where the caller holds it already, its JSON
/// (what the `data` column stores).
pub(crate) struct ToWrite<T> {
    pub record: T,
    pub hash: String,
    pub data: Option<Box<str>>,
}

fn to_write<T>(records: Vec<(T, String)>) -> Vec<ToWrite<T>> {
    records
        .into_iter()
        .map(|(record, hash)| ToWrite {
            record,
            hash,
            data: None,
        })
        .collect()
}

/// Writes records and, in the same transaction, their indexed values.
async fn upsert<T: Serialize>(
    conn: &mut AnyConnection,
    now: &str,
    layout: &Layout<T>,
    connector: &str,
    records: Vec<ToWrite<T>>,
    fresh: bool,
) -> Result<(), DbError> {
    // The record rows and their index rows go in one round trip (see `db::Batch`).
    let mut batch = Batch::new("writing the mirror");
    upsert_into(&mut batch, conn, now, layout, connector, records, fresh).await?;
    batch.execute(conn).await
}

/// Adds to `batch` the writes of [`upsert`].
async fn upsert_into<T: Serialize>(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    now: &str,
    layout: &Layout<T>,
    connector: &str,
    records: Vec<ToWrite<T>>,
    fresh: bool,
) -> Result<(), DbError> {
    if records.is_empty() {
        return Ok(());
    }
    let Layout {
        resource,
        name_column,
        id_of,
        filter_columns,
        ref index,
        removing: _,
    } = *layout;
    let table = resource.table();
    let now = now.to_string();
    let mut values = Vec::with_capacity(records.len() * 8);
    let mut indexed = Vec::with_capacity(records.len());
    let mut ids = Vec::with_capacity(records.len());
    for ToWrite { record, hash, data } in records {
        match index {
            Index::Bound(elements) => indexed.push((id_of(&record).to_string(), elements(&record))),
            Index::Derived => ids.push(id_of(&record).to_string()),
        }
        let data = match data {
            Some(data) => data.into_string(),
            None => serde_json::to_string(&record).map_err(|e| DbError::Corrupt {
                context: "encoding a mirror record",
                message: e.to_string(),
            })?,
        };
        let (name_key, client_external_id) = filter_columns(&record);
        values.push(Val::Text(connector.to_string()));
        values.push(Val::Text(id_of(&record).to_string()));
        values.push(Val::Text(data));
        values.push(Val::Text(hash));
        values.push(Val::Text(now.clone()));
        values.push(Val::Text(name_key));
        values.push(Val::OptText(client_external_id));
        values.push(Val::Text(now.clone()));
    }
    batch
        .insert_many(
            conn,
            &format!(
                "{table} (connector, external_id, data, content_hash, updated_at, {name_column}, \
             client_external_id, created_at)"
            ),
            &format!(
                "ON CONFLICT (connector, external_id) DO UPDATE SET data = excluded.data, \
             content_hash = excluded.content_hash, updated_at = excluded.updated_at, \
             {name_column} = excluded.{name_column}, \
             client_external_id = excluded.client_external_id"
            ),
            8,
            values,
        )
        .await?;
    match index {
        Index::Bound(_) => {
            values::replace(batch, conn, resource, connector, indexed, fresh).await?;
        }
        Index::Derived => {
            if !fresh {
                values::delete(batch, conn, resource, connector, &ids);
            }
            values::derive_members(batch, conn, connector, &ids);
        }
    }
    Ok(())
}

/// The client's `externalId` among a record's source attributes (SCIM pushes it).
fn client_external_id(attributes: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    crate::filter::get_ci(attributes, "externalId")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

pub async fn upsert_users(
    conn: &mut AnyConnection,
    connector: &str,
    users: Vec<(SourceUser, String)>,
) -> Result<(), DbError> {
    upsert_at(conn, connector, users, &now_text(), false).await
}

pub async fn upsert_groups(
    conn: &mut AnyConnection,
    connector: &str,
    groups: Vec<(SourceGroup, String)>,
) -> Result<(), DbError> {
    upsert_at(conn, connector, groups, &now_text(), false).await
}

/// Upserts records stamped with `now` (which the caller then knows). `new`: the mirror
/// holds none of them (ids just minted by a SCIM create, or records a merge read for the
/// first time), so none has index rows to remove first. That matters beyond the
/// statements saved: PostgreSQL plans those removals against a value index it has no
/// statistics for while a first read fills it in one transaction, and scanned the whole
/// table for each chunk (a 100,000-user first sync spent 196 s merging, see
/// docs/PERFORMANCE.md).
pub(crate) async fn upsert_at<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
    records: Vec<(T, String)>,
    now: &str,
    new: bool,
) -> Result<(), DbError> {
    upsert(conn, now, T::LAYOUT, connector, to_write(records), new).await
}

/// Upserts users read into the buffer, with the JSON the buffer holds, stamped with `now`;
/// `new` as for [`upsert_at`].
pub(crate) async fn upsert_buffered_users(
    conn: &mut AnyConnection,
    connector: &str,
    users: Vec<ToWrite<SourceUser>>,
    now: &str,
    new: bool,
) -> Result<(), DbError> {
    upsert(conn, now, &USERS, connector, users, new).await
}

pub async fn delete_users(
    conn: &mut AnyConnection,
    connector: &str,
    ids: &[String],
) -> Result<u64, DbError> {
    delete(conn, &USERS, connector, ids).await
}

pub async fn delete_groups(
    conn: &mut AnyConnection,
    connector: &str,
    ids: &[String],
) -> Result<u64, DbError> {
    delete(conn, &GROUPS, connector, ids).await
}

/// Rewrites `groups` (each with its hash) and removes the records `ids` of kind `T` with
/// their indexed values, as one batch (one round trip on SQLite): a SCIM deletion takes
/// its resource out of the groups that listed it and removes it (two round trips more,
/// and one more per group, before).
pub(crate) async fn rewrite_groups_and_delete<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
    groups: Vec<(SourceGroup, String)>,
    ids: &[String],
) -> Result<(), DbError> {
    let layout = T::LAYOUT;
    let mut batch = Batch::new("removing a resource from the mirror and from its groups");
    let now = now_text();
    upsert_into(
        &mut batch,
        conn,
        &now,
        &GROUPS,
        connector,
        to_write(groups),
        false,
    )
    .await?;
    values::delete(&mut batch, conn, layout.resource, connector, ids);
    let filter = [("connector", connector)];
    batch.delete_in(conn, layout.resource.table(), &filter, "external_id", ids);
    batch.execute(conn).await
}

/// Removes records and their indexed values; how many records were removed.
async fn delete<T>(
    conn: &mut AnyConnection,
    layout: &Layout<T>,
    connector: &str,
    ids: &[String],
) -> Result<u64, DbError> {
    let mut batch = Batch::new("removing indexed values");
    values::delete(&mut batch, conn, layout.resource, connector, ids);
    batch.execute(conn).await?;
    let table = layout.resource.table();
    let filter = [("connector", connector)];
    delete_in(conn, table, &filter, "external_id", ids, layout.removing).await
}

/// A record from its stored JSON.
fn decode<T: DeserializeOwned>(row: &AnyRow) -> Result<T, DbError> {
    let data: &str = row.try_get(0).context("reading the mirror")?;
    serde_json::from_str(data).map_err(|e| DbError::Corrupt {
        context: "decoding a mirror record",
        message: e.to_string(),
    })
}

/// Every mirrored record of the kind of the connector, in external id order.
pub(crate) async fn load_all<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
) -> Result<Vec<T>, DbError> {
    let mut records = Vec::new();
    for_each(conn, connector, |record| records.push(record)).await?;
    Ok(records)
}

/// Hands every mirrored record of the kind of the connector to `each`, one at a time in
/// external id order, parsed as it streams in: a caller that keeps less than the record
/// never holds them all parsed.
pub(crate) async fn for_each<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
    mut each: impl FnMut(T),
) -> Result<(), DbError> {
    let sql = format!(
        "SELECT data FROM {} WHERE connector = $1 ORDER BY external_id",
        T::LAYOUT.resource.table()
    );
    each_row(conn, sql, connector, "reading the mirror", |row| {
        each(decode(row)?);
        Ok(())
    })
    .await
}

/// The external ids of every mirrored record of the kind of the connector.
pub(crate) async fn ids<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
) -> Result<Vec<String>, DbError> {
    let sql = format!(
        "SELECT external_id FROM {} WHERE connector = $1",
        T::LAYOUT.resource.table()
    );
    let mut ids = Vec::new();
    each_row(conn, sql, connector, "reading mirror ids", |row| {
        ids.push(row.try_get(0).context("reading mirror ids")?);
        Ok(())
    })
    .await?;
    Ok(ids)
}

/// The mirrored users of the connector with the given external ids (those that exist).
pub async fn load_users_by_ids(
    conn: &mut AnyConnection,
    connector: &str,
    ids: &[String],
) -> Result<Vec<SourceUser>, DbError> {
    load_by_ids(conn, connector, ids).await
}

/// The mirrored groups of the connector with the given external ids (those that exist).
pub async fn load_groups_by_ids(
    conn: &mut AnyConnection,
    connector: &str,
    ids: &[String],
) -> Result<Vec<SourceGroup>, DbError> {
    load_by_ids(conn, connector, ids).await
}

/// The mirrored records of the kind of the connector with the given external ids (those
/// that exist), in no particular order.
pub(crate) async fn load_by_ids<T: Mirrored>(
    conn: &mut AnyConnection,
    connector: &str,
    ids: &[String],
) -> Result<Vec<T>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let select = format!("SELECT data FROM {}", T::LAYOUT.resource.table());
    let rows = select_in(
        conn,
        &select,
        Some(("connector = ", connector)),
        "external_id",
        ids,
        "reading the mirror",
    )
    .await?;
    rows.iter().map(decode).collect()
}
