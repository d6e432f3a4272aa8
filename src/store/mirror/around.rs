//! The groups a plan over a few changed users needs, read through the member index
//! (`mirror_values`) instead of loading every group of the connector: the groups listing
//! any of those users, the groups named by the caller (the target groups the users are in
//! now), and every group above those (groups that list them as members, up the nesting),
//! so that the users' effective groups are complete. O(the users' groups), not O(groups).
//! And the other way: the users below some groups ([`users_below`]), for a plan over the
//! members of renamed groups.

use std::collections::BTreeSet;

use sqlx::{AssertSqlSafe, Row};

use crate::db::{Context, DbError, param, select_in};
use crate::model::SourceGroup;

const CTX: &str = "reading the changed users' groups";

/// The users of `connector` below `groups` (their members, and the members of the groups
/// nested in them, down the nesting), or `None` as soon as there are more than `cap`.
/// Reads a level of groups per statement: O(the groups below).
pub async fn users_below(
    conn: &mut sqlx::AnyConnection,
    connector: &str,
    groups: &[String],
    cap: usize,
) -> Result<Option<BTreeSet<String>>, DbError> {
    let mut users = BTreeSet::new();
    let mut seen: BTreeSet<String> = groups.iter().cloned().collect();
    let mut level: Vec<String> = groups.to_vec();
    while !level.is_empty() {
        let mut next = Vec::new();
        for group in super::store::load_by_ids::<SourceGroup>(conn, connector, &level).await? {
            for member in group.members {
                match member.kind {
                    crate::model::MemberKind::User => {
                        users.insert(member.id);
                    }
                    crate::model::MemberKind::Group => {
                        if seen.insert(member.id.clone()) {
                            next.push(member.id);
                        }
                    }
                }
            }
            if users.len() > cap {
                return Ok(None);
            }
        }
        level = next;
    }
    Ok(Some(users))
}

/// The mirrored groups of `connector` around `member_ids` (see the module doc), plus
/// `also` and their ancestors, in external id order (as `load_all` gives them).
pub async fn load_groups_around(
    conn: &mut sqlx::AnyConnection,
    connector: &str,
    member_ids: &[String],
    also: &[String],
) -> Result<Vec<SourceGroup>, DbError> {
    let mut groups = if member_ids.len() + also.len() <= ONE_STATEMENT_KEYS {
        in_one_statement(conn, connector, member_ids, also).await?
    } else {
        level_by_level(conn, connector, member_ids, also).await?
    };
    groups.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    Ok(groups)
}

/// Up to this many ids, one recursive statement reads the groups (one round trip, the
/// common case of a request touching a few users); beyond, a statement per nesting level
/// over chunked `IN` lists.
const ONE_STATEMENT_KEYS: usize = 2_000;

/// Index rows naming a group's members: their `external_id` is the group.
const PARENTS: &str = "resource = 'group' AND attr = 'members'";
const PARENTS_OF_CONNECTOR: &str = "resource = 'group' AND attr = 'members' AND connector = ";

async fn in_one_statement(
    conn: &mut sqlx::AnyConnection,
    connector: &str,
    member_ids: &[String],
    also: &[String],
) -> Result<Vec<SourceGroup>, DbError> {
    let Some((sql, binds)) = around_statement(conn, connector, member_ids, also) else {
        return Ok(Vec::new());
    };
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    let rows = query.fetch_all(&mut *conn).await.context(CTX)?;
    rows.iter().map(decode).collect()
}

/// The recursive statement of [`in_one_statement`] and its values; `None` when there is
/// nothing to start from.
fn around_statement(
    conn: &sqlx::AnyConnection,
    connector: &str,
    member_ids: &[String],
    also: &[String],
) -> Option<(String, Vec<String>)> {
    // Placeholders numbered in the order they appear, each bound once: the same text
    // serves SQLite's anonymous and PostgreSQL's numbered parameters.
    let mut binds: Vec<String> = Vec::new();
    let mut next = |conn: &sqlx::AnyConnection, value: &str| {
        binds.push(value.to_string());
        param(conn, binds.len())
    };
    let mut seeds = Vec::new();
    if !member_ids.is_empty() {
        let c = next(conn, connector);
        let keys: Vec<String> = member_ids.iter().map(|id| next(conn, id)).collect();
        seeds.push(format!(
            "SELECT external_id FROM mirror_values WHERE connector = {c} AND {PARENTS} \
             AND value_key IN ({})",
            keys.join(", ")
        ));
    }
    if !also.is_empty() {
        let c = next(conn, connector);
        let keys: Vec<String> = also.iter().map(|id| next(conn, id)).collect();
        seeds.push(format!(
            "SELECT external_id FROM mirror_groups WHERE connector = {c} \
             AND external_id IN ({})",
            keys.join(", ")
        ));
    }
    if seeds.is_empty() {
        return None;
    }
    let c1 = next(conn, connector);
    let c2 = next(conn, connector);
    // UNION (not UNION ALL) drops ids already found, so a nesting cycle ends. The
    // recursive step reads `around` first and looks each id up in the value index:
    // SQLite honours a CROSS JOIN's order, and without it its planner walked every
    // member row of the connector's groups once per id found (4.5 s instead of 12 ms
    // for 200 changed users of 20,000 in `benches/sync_scale.rs`).
    let sql = format!(
        "WITH RECURSIVE around(id) AS ({seeds} \
           UNION SELECT v.external_id FROM around CROSS JOIN mirror_values v \
           WHERE v.value_key = around.id AND v.connector = {c1} AND v.resource = 'group' \
           AND v.attr = 'members') \
         SELECT data FROM mirror_groups WHERE connector = {c2} \
         AND external_id IN (SELECT id FROM around)",
        seeds = seeds.join(" UNION "),
    );
    Some((sql, binds))
}

async fn level_by_level(
    conn: &mut sqlx::AnyConnection,
    connector: &str,
    member_ids: &[String],
    also: &[String],
) -> Result<Vec<SourceGroup>, DbError> {
    let mut wanted: BTreeSet<String> = also.iter().cloned().collect();
    let mut frontier: Vec<String> = member_ids.iter().chain(also).cloned().collect();
    // One query per nesting level; `wanted` stops cycles.
    while !frontier.is_empty() {
        let rows = select_in(
            conn,
            "SELECT DISTINCT external_id FROM mirror_values",
            Some((PARENTS_OF_CONNECTOR, connector)),
            "value_key",
            &frontier,
            CTX,
        )
        .await?;
        frontier.clear();
        for row in rows {
            let parent: String = row.try_get(0).context(CTX)?;
            if wanted.insert(parent.clone()) {
                frontier.push(parent);
            }
        }
    }
    let ids: Vec<String> = wanted.into_iter().collect();
    let rows = select_in(
        conn,
        "SELECT data FROM mirror_groups",
        Some(("connector = ", connector)),
        "external_id",
        &ids,
        CTX,
    )
    .await?;
    rows.iter().map(decode).collect()
}

fn decode(row: &sqlx::any::AnyRow) -> Result<SourceGroup, DbError> {
    let data: &str = row.try_get(0).context(CTX)?;
    serde_json::from_str(data).map_err(|e| DbError::Corrupt {
        context: "decoding a mirror record",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use sqlx::{AnyConnection, Connection, Row};

    use super::*;

    /// The query plan's lines for the statement over `member_ids` and `also`.
    async fn plan(member_ids: &[String], also: &[String]) -> Vec<String> {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:")
            .await
            .expect("connect");
        for schema in [
            include_str!("../../../migrations/sqlite/0009_mirror_values.sql"),
            include_str!("../../../migrations/sqlite/0013_mirror_values_without_rowid.sql"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(schema))
                .execute(&mut conn)
                .await
                .expect("mirror_values");
        }
        sqlx::query(
            "CREATE TABLE mirror_groups (connector TEXT NOT NULL, external_id TEXT NOT NULL, \
             data TEXT NOT NULL, PRIMARY KEY (connector, external_id))",
        )
        .execute(&mut conn)
        .await
        .expect("mirror_groups");
        let (sql, binds) = around_statement(&conn, "hr", member_ids, also).expect("a statement");
        let mut query = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&mut conn).await.expect("explain");
        rows.iter()
            .map(|row| row.try_get::<String, _>(3).expect("detail"))
            .collect()
    }

    #[tokio::test]
    async fn the_recursive_step_looks_ids_up_in_the_value_index() {
        let users: Vec<String> = (0..200).map(|i| format!("u{i}")).collect();
        let groups: Vec<String> = (0..50).map(|i| format!("g{i}")).collect();
        let lines = plan(&users, &groups).await;
        let step = lines
            .iter()
            .position(|line| line == "RECURSIVE STEP")
            .expect("a recursive step");
        let after = &lines[step + 1..];
        assert_eq!(
            after.first().map(String::as_str),
            Some("SCAN around"),
            "{lines:#?}"
        );
        assert!(
            after
                .get(1)
                .is_some_and(|line| line.starts_with("SEARCH v USING ")
                    && line.contains("INDEX mirror_values_by_value")),
            "{lines:#?}"
        );
    }
}
