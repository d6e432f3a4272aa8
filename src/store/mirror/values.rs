//! The mirror's per-element index of multi-valued attributes (`mirror_values`, migration
//! 0009): a User's `emails` and `phoneNumbers`, a Group's `members`, one row per element,
//! written and removed together with the mirror row in the caller's transaction. Filters
//! such as `emails.value eq "…"` or `members[value eq "<id>"]` are answered from it (see
//! `crate::store::mirror::query`); it also finds the groups containing a member without loading
//! every group.
//!
//! The rows describe the resource as SCIM shows it (`crate::scim::resource::user_to_scim`
//! and `group_to_scim`), with the in-memory evaluator's rules (`crate::filter`): keys
//! match case-insensitively, only object elements count, `value` and `type` are indexed
//! when they are strings and `primary` when it is a JSON boolean. Values are lower-cased
//! unless the sub-attribute is case-exact (`members.value`, an `id`).

use serde_json::{Map, Value};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Batch, Context, Db, DbError, Val, param};
use crate::model::{MemberKind, SourceGroup, SourceUser};

use super::query::Resource;

/// A multi-valued attribute answered from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Indexed {
    /// The name stored in `mirror_values.attr`.
    pub attr: &'static str,
    /// Whether `value` compares case-exactly (RFC 7643: members.value holds an `id`).
    pub value_case_exact: bool,
}

const EMAILS: Indexed = Indexed {
    attr: "emails",
    value_case_exact: false,
};
const PHONE_NUMBERS: Indexed = Indexed {
    attr: "phonenumbers",
    value_case_exact: false,
};
const MEMBERS: Indexed = Indexed {
    attr: "members",
    value_case_exact: true,
};

/// The indexed multi-valued attribute `name` of `resource`, ignoring case.
pub(crate) fn indexed(resource: Resource, name: &str) -> Option<Indexed> {
    let name = name.to_ascii_lowercase();
    [EMAILS, PHONE_NUMBERS, MEMBERS]
        .into_iter()
        .find(|i| i.attr == name && resource_of(*i) == resource)
}

fn resource_of(indexed: Indexed) -> Resource {
    if indexed == MEMBERS {
        Resource::Group
    } else {
        Resource::User
    }
}

/// The text stored in `mirror_values.resource`.
pub(crate) fn resource_key(resource: Resource) -> &'static str {
    match resource {
        Resource::User => "user",
        Resource::Group => "group",
    }
}

/// `text` as the index stores it for a sub-attribute of the given case-exactness; the
/// same folding as the in-memory evaluator.
pub(crate) fn fold(text: &str, case_exact: bool) -> String {
    if case_exact {
        text.to_string()
    } else {
        text.to_lowercase()
    }
}

/// One indexed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub attr: &'static str,
    pub value_key: Option<String>,
    pub type_key: Option<String>,
    /// `true` or `false` for a JSON boolean, `other` for any other present value (which
    /// `primary pr` counts but `primary eq true` does not), None when absent.
    pub is_primary: Option<&'static str>,
    pub present: bool,
}

fn elements_of(attributes: &Map<String, Value>, indexed: Indexed) -> Vec<Element> {
    let Some(value) = crate::filter::get_ci(attributes, indexed.attr) else {
        return Vec::new();
    };
    let items = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|element| {
            let text = |key: &str| {
                crate::filter::get_ci(element, key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            Element {
                attr: indexed.attr,
                value_key: text("value").map(|v| fold(&v, indexed.value_case_exact)),
                type_key: text("type").map(|t| fold(&t, false)),
                is_primary: match crate::filter::get_ci(element, "primary") {
                    Some(Value::Bool(true)) => Some("true"),
                    Some(Value::Bool(false)) => Some("false"),
                    Some(other) if crate::filter::is_present(other) => Some("other"),
                    _ => None,
                },
                present: element.values().any(crate::filter::is_present),
            }
        })
        .collect()
}

/// A user's indexed elements: `emails`, then `phoneNumbers`, as pushed.
pub(crate) fn user_elements(user: &SourceUser) -> Vec<Element> {
    let mut elements = elements_of(&user.attributes, EMAILS);
    elements.extend(elements_of(&user.attributes, PHONE_NUMBERS));
    elements
}

/// A group's indexed elements: its members, as `group_to_scim` shows them.
pub(crate) fn group_elements(group: &SourceGroup) -> Vec<Element> {
    group
        .members
        .iter()
        .map(|member| Element {
            attr: MEMBERS.attr,
            value_key: Some(member.id.clone()),
            type_key: Some(
                match member.kind {
                    MemberKind::User => "user",
                    MemberKind::Group => "group",
                }
                .to_string(),
            ),
            is_primary: None,
            present: true,
        })
        .collect()
}

/// A record's external id and its indexed elements.
pub(crate) type IndexedRecord = (String, Vec<Element>);

/// Removes the index rows of the given records (added to `batch`).
pub(crate) fn delete(
    batch: &mut Batch,
    conn: &AnyConnection,
    resource: Resource,
    connector: &str,
    ids: &[String],
) {
    let filter = [
        ("connector", connector),
        ("resource", resource_key(resource)),
    ];
    batch.delete_in(conn, "mirror_values", &filter, "external_id", ids);
}

/// Replaces the index rows of the given records: (external id, its elements), added to
/// `batch`. `fresh` records (ids just minted) have no rows to remove first.
pub(crate) async fn replace(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    resource: Resource,
    connector: &str,
    records: Vec<IndexedRecord>,
    fresh: bool,
) -> Result<(), DbError> {
    if !fresh {
        let ids: Vec<String> = records.iter().map(|(id, _)| id.clone()).collect();
        delete(batch, conn, resource, connector, &ids);
    }
    const COLUMNS: usize = 9;
    let mut values = Vec::new();
    for (id, elements) in records {
        for (position, element) in elements.into_iter().enumerate() {
            values.push(Val::Text(connector.to_string()));
            values.push(Val::Text(resource_key(resource).to_string()));
            values.push(Val::Text(id.clone()));
            values.push(Val::Text(element.attr.to_string()));
            values.push(Val::Int(position as i64));
            values.push(Val::OptText(element.value_key));
            values.push(Val::OptText(element.type_key));
            values.push(Val::OptText(element.is_primary.map(str::to_string)));
            values.push(Val::Int(i64::from(element.present)));
        }
    }
    batch
        .insert_many(
            conn,
            "mirror_values (connector, resource, external_id, attr, position, value_key, \
             type_key, is_primary, present)",
            "",
            COLUMNS,
            values,
        )
        .await
}

/// Adds to `batch` the index rows of the members of groups `ids`, derived in SQL from
/// their mirror rows (written earlier in the same batch) instead of bound value by value:
/// group members are most of an initial sync's index rows (500,000 of 600,000 at 100,000
/// users), and binding nine values for each cost as much as writing the whole target. The
/// rows are those [`group_elements`] gives: `value` the member's id as stored (case-exact),
/// `type` its kind, no `primary`, present; the mirror row's `members` array holds them in
/// order as `{"type": ..., "id": ...}`.
pub(crate) fn derive_members(
    batch: &mut Batch,
    conn: &AnyConnection,
    connector: &str,
    ids: &[String],
) {
    const HEAD: &str = "INSERT INTO mirror_values (connector, resource, external_id, attr, \
                        position, value_key, type_key, is_primary, present) ";
    let select = if crate::db::is_postgres(conn) {
        "SELECT g.connector, 'group', g.external_id, 'members', e.ordinality - 1, \
         e.value ->> 'id', e.value ->> 'type', NULL, 1 \
         FROM mirror_groups g CROSS JOIN LATERAL \
         json_array_elements(g.data::json -> 'members') WITH ORDINALITY AS e(value, ordinality)"
    } else {
        "SELECT g.connector, 'group', g.external_id, 'members', e.key, \
         json_extract(e.value, '$.id'), json_extract(e.value, '$.type'), NULL, 1 \
         FROM mirror_groups g, json_each(g.data, '$.members') e"
    };
    for chunk in ids.chunks(crate::db::MAX_ROWS_PER_STATEMENT) {
        let sql = format!(
            "{HEAD}{select} WHERE g.connector = {} AND g.external_id IN ({})",
            param(conn, 1),
            crate::db::placeholders(conn, 2, chunk.len())
        );
        let mut values = Vec::with_capacity(chunk.len() + 1);
        values.push(Val::Text(connector.to_string()));
        values.extend(chunk.iter().map(|id| Val::Text(id.clone())));
        batch.push(sql, values);
    }
}

/// Records read per step of the backfill.
const BACKFILL_PAGE: i64 = 1_000;

/// Indexes the mirror rows written before migration 0009, once: the first process to
/// claim the marker row does it, in one transaction.
pub async fn backfill(db: &Db) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    let claimed = sqlx::query("DELETE FROM mirror_values_backfill")
        .execute(tx.conn())
        .await
        .context("indexing existing mirror values")?
        .rows_affected();
    if claimed == 0 {
        return tx.rollback().await;
    }
    for resource in [Resource::User, Resource::Group] {
        backfill_table(tx.conn(), resource).await?;
    }
    tx.commit().await
}

async fn backfill_table(conn: &mut AnyConnection, resource: Resource) -> Result<(), DbError> {
    const CTX: &str = "indexing existing mirror values";
    let sql = format!(
        "SELECT connector, external_id, data FROM {} \
         WHERE connector > {p1} OR (connector = {p2} AND external_id > {p3}) \
         ORDER BY connector, external_id LIMIT {BACKFILL_PAGE}",
        resource.table(),
        p1 = param(conn, 1),
        p2 = param(conn, 2),
        p3 = param(conn, 3),
    );
    let (mut after_connector, mut after_id) = (String::new(), String::new());
    loop {
        let rows = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(after_connector.clone())
            .bind(after_connector.clone())
            .bind(after_id.clone())
            .fetch_all(&mut *conn)
            .await
            .context(CTX)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after_connector = last.try_get(0).context(CTX)?;
        after_id = last.try_get(1).context(CTX)?;
        let mut by_connector: Vec<(String, Vec<IndexedRecord>)> = Vec::new();
        for row in &rows {
            let connector: String = row.try_get(0).context(CTX)?;
            let id: String = row.try_get(1).context(CTX)?;
            let data: &str = row.try_get(2).context(CTX)?;
            let corrupt = |e: serde_json::Error| DbError::Corrupt {
                context: "decoding a mirror record",
                message: e.to_string(),
            };
            let elements = match resource {
                Resource::User => user_elements(&serde_json::from_str(data).map_err(corrupt)?),
                Resource::Group => group_elements(&serde_json::from_str(data).map_err(corrupt)?),
            };
            match by_connector.last_mut() {
                Some((last, records)) if *last == connector => records.push((id, elements)),
                _ => by_connector.push((connector, vec![(id, elements)])),
            }
        }
        let mut batch = Batch::new("indexing existing mirror values");
        for (connector, records) in by_connector {
            replace(&mut batch, conn, resource, &connector, records, false).await?;
        }
        batch.execute(conn).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(attributes: Value) -> SourceUser {
        SourceUser {
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            ..crate::store::mirror::test_user("u1")
        }
    }

    #[test]
    fn elements_follow_the_scim_view() {
        let elements = user_elements(&user(json!({
            "Emails": [
                {"value": "Ann@Example.COM", "type": "Work", "primary": true},
                {"value": "x@example.org", "primary": "true"},
                "not an object",
                {}
            ],
            "phoneNumbers": {"value": "+1 555", "type": "mobile"}
        })));
        let summary: Vec<_> = elements
            .iter()
            .map(|e| {
                (
                    e.attr,
                    e.value_key.as_deref(),
                    e.type_key.as_deref(),
                    e.is_primary,
                    e.present,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "emails",
                    Some("ann@example.com"),
                    Some("work"),
                    Some("true"),
                    true
                ),
                ("emails", Some("x@example.org"), None, Some("other"), true),
                ("emails", None, None, None, false),
                ("phonenumbers", Some("+1 555"), Some("mobile"), None, true),
            ]
        );
    }

    #[test]
    fn member_ids_keep_their_case() {
        let group = SourceGroup {
            external_id: "g".into(),
            display_name: "G".into(),
            description: None,
            members: vec![crate::model::MemberRef::user("AbC")],
            attributes: Map::new(),
        };
        let elements = group_elements(&group);
        assert_eq!(elements[0].value_key.as_deref(), Some("AbC"));
        assert_eq!(elements[0].type_key.as_deref(), Some("user"));
        assert_eq!(indexed(Resource::Group, "MEMBERS"), Some(MEMBERS));
        assert_eq!(indexed(Resource::User, "members"), None);
        assert_eq!(indexed(Resource::User, "phoneNumbers"), Some(PHONE_NUMBERS));
    }
}
