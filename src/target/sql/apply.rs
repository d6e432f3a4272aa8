//! Writes a plan into the target, inside the caller's transaction: removals first (so that
//! freed names can be taken), then updates, creates and membership changes, in bulk
//! statements.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{
    Batch, Context, DbError, Val, now_text, param, placeholders, rows_per_statement, select_in,
};
use crate::model::{hash_text, name_key};
use crate::pipeline::plan::{Effective, Membership, Plan, Write};
use crate::pipeline::settings::OnRemove;
use crate::pipeline::{TargetGroup, TargetUser};

/// The attributes as stored: the same text as `Value::Object(..).to_string()`, without
/// copying the map first (one copy per written record was a visible share of a bulk apply).
/// Serialising a map with string keys cannot fail, so the fallback is never taken.
fn json(value: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// `UPDATE <table> SET <column> = <param>, ...[, <also>] WHERE id = <param>`: the columns'
/// values bind in order, then the id.
fn update_by_id(conn: &AnyConnection, table: &str, columns: &[&str], also: &str) -> String {
    let mut sets: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = {}", param(conn, i + 1)))
        .collect();
    if !also.is_empty() {
        sets.push(also.to_string());
    }
    format!(
        "UPDATE {table} SET {} WHERE id = {}",
        sets.join(", "),
        param(conn, columns.len() + 1)
    )
}

/// A record a plan writes into a table of its own: the columns it fills itself, besides
/// the id, owner, external id, hash and timestamps every such table has.
trait Stored {
    const TABLE: &'static str;
    /// In the order [`Stored::push_fields`] gives their values.
    const FIELDS: &'static [&'static str];
    /// The columns of its `INSERT` (see [`push_creates`]): the fields and those six.
    const INSERT_COLUMNS: usize = Self::FIELDS.len() + 6;
    fn external_id(&self) -> &str;
    fn push_fields(&self, values: &mut Vec<Val>);
}

impl Stored for TargetUser {
    const TABLE: &'static str = "users";
    const FIELDS: &'static [&'static str] = &[
        "user_name",
        "user_name_key",
        "display_name",
        "given_name",
        "family_name",
        "email",
        "active",
        "attributes",
    ];
    fn external_id(&self) -> &str {
        &self.external_id
    }
    fn push_fields(&self, values: &mut Vec<Val>) {
        values.extend([
            Val::Text(self.user_name.clone()),
            Val::Text(name_key(&self.user_name)),
            Val::OptText(self.display_name.clone()),
            Val::OptText(self.given_name.clone()),
            Val::OptText(self.family_name.clone()),
            Val::OptText(self.email.clone()),
            Val::Bool(self.active),
            Val::Text(self.attributes.as_str().to_string()),
        ]);
    }
}

impl Stored for TargetGroup {
    const TABLE: &'static str = "groups";
    const FIELDS: &'static [&'static str] = &["name", "name_key", "description", "attributes"];
    fn external_id(&self) -> &str {
        &self.external_id
    }
    fn push_fields(&self, values: &mut Vec<Val>) {
        values.extend([
            Val::Text(self.name.clone()),
            Val::Text(name_key(&self.name)),
            Val::OptText(self.description.clone()),
            Val::Text(json(&self.attributes)),
        ]);
    }
}

/// One `UPDATE ... WHERE id = ...` per write: the record's fields, its hash and `now`
/// (plus `also`, a fixed assignment). A bulk plan's updates run as they fill the batch
/// (`Batch::flush_if_large`), so a re-projection that updates every user never holds all
/// their statements.
async fn push_updates<R: Stored + Sync>(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    writes: &[Write<R>],
    also: &str,
    now: &str,
) -> Result<(), DbError> {
    let columns: Vec<&str> = R::FIELDS
        .iter()
        .copied()
        .chain(["content_hash", "updated_at"])
        .collect();
    let sql = update_by_id(conn, R::TABLE, &columns, also);
    for write in writes {
        let mut values = Vec::with_capacity(columns.len() + 1);
        write.record.push_fields(&mut values);
        values.extend([
            Val::Text(hash_text(write.hash)),
            Val::Text(now.to_string()),
            Val::Text(write.id.to_string()),
        ]);
        batch.push(sql.clone(), values);
        batch.flush_if_large(conn).await?;
    }
    Ok(())
}

fn read_back(source: std::io::Error) -> DbError {
    DbError::spool("reading projected users back for the apply", source)
}

/// Multi-row `INSERT`s of new records with their owner (a connector, or the mapping for
/// managed groups), a statement's rows at a time (see `Batch::insert_each`).
async fn push_creates<R: Stored + Sync>(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    writes: &[Write<R>],
    owner: &str,
    now: &str,
) -> Result<(), DbError> {
    let head = format!(
        "{} (id, connector, external_id, {}, content_hash, created_at, updated_at)",
        R::TABLE,
        R::FIELDS.join(", ")
    );
    batch
        .insert_each(conn, &head, R::INSERT_COLUMNS, writes, |write, values| {
            values.extend([
                Val::Text(write.id.to_string()),
                Val::Text(owner.to_string()),
                Val::Text(write.record.external_id().to_string()),
            ]);
            write.record.push_fields(values);
            values.extend([
                Val::Text(hash_text(write.hash)),
                Val::Text(now.to_string()),
                Val::Text(now.to_string()),
            ]);
        })
        .await
}

/// Applies the direct part of a plan (users, groups, direct memberships). Every statement
/// is a write whose result is not read, so they go as one batch (one round trip on SQLite,
/// see `db::Batch`).
pub async fn apply_plan(
    conn: &mut AnyConnection,
    connector: &str,
    plan: &Plan,
) -> Result<(), DbError> {
    let mut batch = Batch::new("applying the plan to the target");
    add_plan(&mut batch, conn, connector, plan).await?;
    batch.execute(conn).await
}

/// Adds the direct part of a plan to `batch`, to go with the caller's statements after
/// it; only a bulk plan's sections are run on the way (see `Batch::flush_if_large`).
pub async fn add_plan(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    connector: &str,
    plan: &Plan,
) -> Result<(), DbError> {
    let now = now_text();
    let removed_ids: Vec<String> = plan.user_removals.iter().map(|r| r.id.clone()).collect();
    match plan.on_remove.unwrap_or(OnRemove::Disable) {
        OnRemove::Delete => {
            batch.delete_in(conn, "memberships", &[], "member_id", &removed_ids);
            batch.delete_in(conn, "effective_nested", &[], "user_id", &removed_ids);
            batch.delete_in(conn, "users", &[], "id", &removed_ids);
        }
        OnRemove::Disable => {
            for chunk in removed_ids.chunks(500) {
                let sql = format!(
                    "UPDATE users SET active = {}, removed_at = {}, updated_at = {} WHERE id IN ({})",
                    param(conn, 1),
                    param(conn, 2),
                    param(conn, 3),
                    placeholders(conn, 4, chunk.len())
                );
                let mut values = vec![
                    Val::Bool(false),
                    Val::Text(now.clone()),
                    Val::Text(now.clone()),
                ];
                values.extend(chunk.iter().map(|id| Val::Text(id.clone())));
                batch.push(sql, values);
            }
        }
    }

    batch.flush_if_large(conn).await?;
    let deleted_groups: Vec<String> = plan.group_deletes.iter().map(|r| r.id.clone()).collect();
    batch.delete_in(conn, "memberships", &[], "group_id", &deleted_groups);
    batch.delete_in(conn, "memberships", &[], "member_id", &deleted_groups);
    batch.delete_in(conn, "effective_nested", &[], "group_id", &deleted_groups);
    batch.delete_in(conn, "groups", &[], "id", &deleted_groups);

    // Users' records come back from the projection's spool a few statements' worth at a
    // time, so that the apply never holds them all (see `pipeline::DesiredUsers`).
    let users_at_once = 4 * rows_per_statement(TargetUser::INSERT_COLUMNS);
    for writes in plan.user_updates.chunks(users_at_once) {
        let writes = plan.users.load_writes(writes).map_err(read_back)?;
        push_updates(batch, conn, &writes, "removed_at = NULL", &now).await?;
    }
    push_updates(batch, conn, &plan.group_updates, "", &now).await?;

    for writes in plan.user_creates.chunks(users_at_once) {
        let writes = plan.users.load_writes(writes).map_err(read_back)?;
        push_creates(batch, conn, &writes, connector, &now).await?;
    }
    batch.flush_if_large(conn).await?;

    push_creates(batch, conn, &plan.group_creates, connector, &now).await?;
    let managed_owner = plan.managed_owner.as_str();
    push_creates(batch, conn, &plan.managed_creates, managed_owner, &now).await?;
    batch.flush_if_large(conn).await?;

    for (group_id, member_id) in &plan.membership_removes {
        batch.push(
            format!(
                "DELETE FROM memberships WHERE group_id = {} AND member_id = {} AND connector = {}",
                param(conn, 1),
                param(conn, 2),
                param(conn, 3)
            ),
            vec![
                Val::Text(group_id.clone()),
                Val::Text(member_id.clone()),
                Val::Text(connector.to_string()),
            ],
        );
        batch.flush_if_large(conn).await?;
    }
    // In primary-key order, so that the inserts append to the key's b-tree instead of
    // splitting pages all over it. The plan gives them so (`plan::build`); a list of
    // references to sort was 40 MiB at five million memberships.
    let sorted_copy: Vec<Membership>;
    let adds = match plan
        .membership_adds
        .is_sorted_by(|a, b| primary_key(a) <= primary_key(b))
    {
        true => &plan.membership_adds,
        false => {
            let mut adds = plan.membership_adds.clone();
            adds.sort_unstable_by(|a, b| primary_key(a).cmp(&primary_key(b)));
            sorted_copy = adds;
            &sorted_copy
        }
    };
    batch
        .insert_each(
            conn,
            "memberships (group_id, member_id, member_kind, connector, origin)",
            5,
            adds,
            |m, values| {
                values.extend([
                    Val::Text(m.group_id.to_string()),
                    Val::Text(m.member_id.to_string()),
                    Val::Text(m.kind.as_str().to_string()),
                    Val::Text(connector.to_string()),
                    Val::Text(m.origin.as_str().to_string()),
                ])
            },
        )
        .await?;
    Ok(())
}

/// A membership's primary key in the target.
fn primary_key(m: &Membership) -> (&str, &str) {
    (&m.group_id, &m.member_id)
}

/// Brings the stored effective memberships of the connector's groups to `wanted`: only
/// the pairs nesting gives are stored (`effective_nested`; the `effective_memberships`
/// view adds the direct ones), streaming what the target holds now. Returns (added,
/// removed).
pub async fn sync_effective(
    conn: &mut AnyConnection,
    connector: &str,
    wanted: &Effective<'_>,
) -> Result<(u64, u64), DbError> {
    const CTX: &str = "reading effective memberships";
    let mut nested: Vec<(&str, &str)> = wanted.through_nesting_only().collect();
    nested.sort_unstable();
    let mut present = vec![false; nested.len()];
    let mut stale: Vec<(String, String)> = Vec::new();
    {
        let mut rows = sqlx::query(
            "SELECT e.group_id, e.user_id FROM effective_nested e \
             JOIN groups g ON g.id = e.group_id WHERE g.connector = $1",
        )
        .bind(connector.to_string())
        .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.context(CTX)? {
            let group_id: &str = row.try_get(0).context(CTX)?;
            let user_id: &str = row.try_get(1).context(CTX)?;
            match nested.binary_search(&(group_id, user_id)) {
                Ok(i) => present[i] = true,
                Err(_) => stale.push((group_id.to_string(), user_id.to_string())),
            }
        }
    }
    let mut removed = 0;
    for (group_id, user_id) in stale {
        removed += sqlx::query("DELETE FROM effective_nested WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .context("removing an effective membership")?
            .rows_affected();
    }
    // In key order, so that the inserts walk the primary key instead of jumping around
    // it.
    let missing: Vec<&(&str, &str)> = nested
        .iter()
        .zip(&present)
        .filter(|(_, present)| !**present)
        .map(|(pair, _)| pair)
        .collect();
    let mut batch = Batch::new("adding effective memberships");
    batch
        .insert_each(
            conn,
            "effective_nested (group_id, user_id)",
            2,
            &missing,
            |(group_id, user_id), values| {
                values.extend([
                    Val::Text(group_id.to_string()),
                    Val::Text(user_id.to_string()),
                ])
            },
        )
        .await?;
    batch.execute(conn).await?;
    // Each missing pair is absent from the table (read in this transaction), so each
    // insert adds one row or fails the run.
    let added = missing.len() as u64;
    Ok((added, removed))
}

/// Users whose effective rows are read with the nesting edges, in the same statement;
/// under SQLite's limit on bound values with room to spare.
const USERS_WITH_EDGES: usize = 1_000;

/// Brings the effective memberships of some users in the connector's groups to what their
/// final direct memberships imply (`direct`: user id -> the connector's groups it is
/// directly in), walking up the connector's nested groups: only the groups reached through
/// nesting are stored, as in [`sync_effective`]. Used by plans over changed users only;
/// gives the same rows as a full recomputation for those users.
pub async fn sync_effective_for_users(
    conn: &mut AnyConnection,
    connector: &str,
    direct: &HashMap<String, Vec<String>>,
) -> Result<(), DbError> {
    const CTX: &str = "updating effective memberships";
    if direct.is_empty() {
        return Ok(());
    }
    let user_ids: Vec<String> = direct.keys().cloned().collect();
    let (first, rest) = user_ids.split_at(user_ids.len().min(USERS_WITH_EDGES));
    // The connector's nesting edges and the first users' effective rows in one round trip
    // (a SCIM write, of one user, paid two).
    let sql = format!(
        "SELECT 'edge', group_id, member_id FROM memberships \
         WHERE connector = {} AND member_kind = 'group' \
         UNION ALL SELECT 'had', e.group_id, e.user_id FROM effective_nested e \
         JOIN groups g ON g.id = e.group_id WHERE g.connector = {} AND e.user_id IN ({})",
        param(conn, 1),
        param(conn, 2),
        placeholders(conn, 3, first.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(connector.to_string())
        .bind(connector.to_string());
    for id in first {
        query = query.bind(id.clone());
    }
    let rows = query.fetch_all(&mut *conn).await.context(CTX)?;
    let mut parents: HashMap<String, Vec<String>> = HashMap::new();
    let mut existing: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows {
        let what: &str = row.try_get(0).context(CTX)?;
        let group: String = row.try_get(1).context(CTX)?;
        let member: String = row.try_get(2).context(CTX)?;
        match what {
            "edge" => parents.entry(member).or_default().push(group),
            _ => {
                existing.entry(member).or_default().insert(group);
            }
        }
    }
    // The rest of a large write (a PATCH may add thousands of members at once), in
    // chunks rather than a query per user.
    let rows = select_in(
        conn,
        "SELECT e.group_id, e.user_id FROM effective_nested e \
         JOIN groups g ON g.id = e.group_id",
        Some(("g.connector = ", connector)),
        "e.user_id",
        rest,
        CTX,
    )
    .await?;
    for row in rows {
        let group: String = row.try_get(0).context(CTX)?;
        let user: String = row.try_get(1).context(CTX)?;
        existing.entry(user).or_default().insert(group);
    }
    let mut removals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut values = Vec::new();
    for (user_id, groups) in direct {
        let mut reached: HashSet<&str> = HashSet::new();
        let mut pending: Vec<&str> = groups.iter().map(String::as_str).collect();
        while let Some(group) = pending.pop() {
            if reached.insert(group) {
                for parent in parents.get(group).into_iter().flatten() {
                    pending.push(parent);
                }
            }
        }
        for group in groups {
            reached.remove(group.as_str());
        }
        let wanted = reached;
        let had = existing.remove(user_id).unwrap_or_default();
        for group_id in had.iter().filter(|g| !wanted.contains(g.as_str())) {
            removals
                .entry(group_id.clone())
                .or_default()
                .push(user_id.clone());
        }
        let mut adds: Vec<&str> = wanted.into_iter().filter(|g| !had.contains(*g)).collect();
        adds.sort_unstable();
        for group_id in adds {
            values.push(Val::Text(group_id.to_string()));
            values.push(Val::Text(user_id.clone()));
        }
    }
    // Small writes go as one batch (one round trip on SQLite, see `Batch`).
    let mut batch = Batch::new(CTX);
    for (group_id, users) in removals {
        batch.delete_in(
            conn,
            "effective_nested",
            &[("group_id", &group_id)],
            "user_id",
            &users,
        );
        batch.flush_if_large(conn).await?;
    }
    batch
        .insert_many(conn, "effective_nested (group_id, user_id)", "", 2, values)
        .await?;
    batch.execute(conn).await?;
    Ok(())
}
