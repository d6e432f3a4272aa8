//! Answers SCIM filters over a connector's mirror in SQL, from indexed columns, so that a
//! `filter=userName eq "…"` costs an index lookup whatever the directory's size. The filter
//! AST (`crate::filter`) is compiled to a WHERE clause over the columns below; a filter on
//! any other attribute is refused as not filterable (HTTP 400 `invalidFilter` at the SCIM
//! layer) rather than answered by scanning rows.
//!
//! | resource | attribute | column | comparison |
//! | --- | --- | --- | --- |
//! | User | `userName` | `user_name_key` | case-insensitive, all operators |
//! | Group | `displayName` | `name_key` | case-insensitive, all operators |
//! | both | `externalId` | `client_external_id` | case-exact: eq ne gt ge lt le pr |
//! | both | `id` | `external_id` | case-exact: eq ne gt ge lt le pr |
//! | both | `meta.lastModified` | `updated_at` | as instants: eq ne gt ge lt le pr |
//! | User | `emails`, `phoneNumbers` (`.value`, `.type`, `.primary`, `[…]`) | `mirror_values` | case-insensitive: eq ne co sw ew pr |
//! | Group | `members` (`.value`, `.type`, `[…]`) | `mirror_values` | value case-exact: eq ne co sw ew pr |
//!
//! The multi-valued attributes are answered by `super::query_values`.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Context, DbError, param};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::model::{SourceGroup, SourceUser};

use super::query_values;

/// Which mirror table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    pub fn table(self) -> &'static str {
        match self {
            Resource::User => "mirror_users",
            Resource::Group => "mirror_groups",
        }
    }

    pub(super) fn core_schema(self) -> &'static str {
        match self {
            Resource::User => crate::filter::USER_SCHEMA,
            Resource::Group => crate::filter::GROUP_SCHEMA,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The filter uses an attribute or operator that is not answered from an index.
    #[error("{0}")]
    NotFilterable(String),
    /// `sortBy` names an attribute that is not answered from an index.
    #[error("{0}")]
    NotSortable(String),
    /// A value that cannot be compared with the attribute (e.g. a malformed date-time).
    #[error("{0}")]
    InvalidValue(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// The column holds the case-folded value.
    Folded,
    Exact,
    /// RFC 3339 UTC text with milliseconds: compares in time order.
    Instant,
}

fn column(resource: Resource, path: &AttrPath) -> Option<(&'static str, Comparison)> {
    if let Some(schema) = &path.schema
        && !schema.eq_ignore_ascii_case(resource.core_schema())
    {
        return None;
    }
    let attr = path.attr.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    match (resource, attr.as_str(), sub.as_deref()) {
        (Resource::User, "username", None) => Some(("user_name_key", Comparison::Folded)),
        (Resource::Group, "displayname", None) => Some(("name_key", Comparison::Folded)),
        (_, "externalid", None) => Some(("client_external_id", Comparison::Exact)),
        (_, "id", None) => Some(("external_id", Comparison::Exact)),
        (_, "meta", Some("lastmodified")) => Some(("updated_at", Comparison::Instant)),
        _ => None,
    }
}

/// A compiled WHERE clause and its bound values, in placeholder order.
pub(super) struct Compiled {
    pub binds: Vec<String>,
    /// The connector, for subqueries over the multi-valued index.
    pub connector: String,
}

impl Compiled {
    pub(super) fn bind(&mut self, conn: &AnyConnection, first: usize, value: String) -> String {
        self.binds.push(value);
        param(conn, first + self.binds.len() - 1)
    }
}

/// `value` as a LIKE pattern for `op` (`co`, `sw`, `ew`), its wildcards taken literally
/// (escaped with `\\`).
pub(crate) fn like_pattern(value: &str, op: CompareOp) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    match op {
        CompareOp::Sw => format!("{escaped}%"),
        CompareOp::Ew => format!("%{escaped}"),
        _ => format!("%{escaped}%"),
    }
}

fn compile(
    filter: &Filter,
    resource: Resource,
    conn: &AnyConnection,
    first: usize,
    out: &mut Compiled,
) -> Result<String, QueryError> {
    let not_filterable = |path: &AttrPath| {
        QueryError::NotFilterable(format!(
            "filtering on `{path}` is not supported; filterable: {}",
            match resource {
                Resource::User =>
                    "userName, externalId, id, meta.lastModified, emails, phoneNumbers",
                Resource::Group => "displayName, externalId, id, meta.lastModified, members",
            }
        ))
    };
    let path = match filter {
        Filter::ValuePath { attr, .. } | Filter::Present(attr) => Some(attr),
        Filter::Compare { path, .. } => Some(path),
        _ => None,
    };
    if let Some(indexed) = path.and_then(|p| query_values::multi_valued(resource, p)) {
        return query_values::compile(filter, resource, indexed, conn, first, out);
    }
    Ok(match filter {
        Filter::And(a, b) => format!(
            "({} AND {})",
            compile(a, resource, conn, first, out)?,
            compile(b, resource, conn, first, out)?
        ),
        Filter::Or(a, b) => format!(
            "({} OR {})",
            compile(a, resource, conn, first, out)?,
            compile(b, resource, conn, first, out)?
        ),
        Filter::Not(inner) => format!("NOT ({})", compile(inner, resource, conn, first, out)?),
        Filter::ValuePath { attr, .. } => return Err(not_filterable(attr)),
        Filter::Present(path) => {
            let (col, _) = column(resource, path).ok_or_else(|| not_filterable(path))?;
            format!("({col} IS NOT NULL AND {col} <> '')")
        }
        Filter::Compare { path, op, value } => {
            let (col, comparison) = column(resource, path).ok_or_else(|| not_filterable(path))?;
            let text = match value {
                CompValue::String(s) => s.clone(),
                CompValue::Null => {
                    return match op {
                        CompareOp::Eq => Ok(format!("({col} IS NULL OR {col} = '')")),
                        CompareOp::Ne => Ok(format!("({col} IS NOT NULL AND {col} <> '')")),
                        _ => Err(QueryError::InvalidValue(format!(
                            "`{path} {op}` cannot compare with null"
                        ))),
                    };
                }
                other => {
                    return Err(QueryError::InvalidValue(format!(
                        "`{path}` is a string; {other} does not compare with it"
                    )));
                }
            };
            let value = match comparison {
                Comparison::Folded => crate::model::name_key(&text),
                Comparison::Exact => text,
                Comparison::Instant => chrono::DateTime::parse_from_rfc3339(&text)
                    .map_err(|_| {
                        QueryError::InvalidValue(format!(
                            "`{path}` compares with RFC 3339 date-times, got {text:?}"
                        ))
                    })?
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            };
            let sql_op = match op {
                CompareOp::Eq => "=",
                CompareOp::Ne => "<>",
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
                CompareOp::Lt => "<",
                CompareOp::Le => "<=",
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                    if comparison != Comparison::Folded {
                        return Err(QueryError::NotFilterable(format!(
                            "`{path}` supports eq, ne, gt, ge, lt, le and pr, not {op}"
                        )));
                    }
                    let placeholder = out.bind(conn, first, like_pattern(&value, *op));
                    return Ok(format!(
                        "({col} IS NOT NULL AND {col} LIKE {placeholder} ESCAPE '\\')"
                    ));
                }
            };
            let placeholder = out.bind(conn, first, value);
            // Two-valued even where the column is NULL, so that `not (…)` means what the
            // in-memory evaluator means.
            if *op == CompareOp::Ne {
                format!("({col} IS NULL OR {col} <> {placeholder})")
            } else {
                format!("({col} IS NOT NULL AND {col} {sql_op} {placeholder})")
            }
        }
    })
}

/// A stored record as SQL returns it, with what SCIM's `meta` is made of.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub data: String,
    pub created_at: String,
    pub updated_at: String,
    pub content_hash: String,
}

/// The columns a stored record is selected with (see [`StoredRow::from_row`]).
pub const STORED_COLUMNS: &str = "data, COALESCE(created_at, updated_at), updated_at, content_hash";

impl StoredRow {
    pub fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredRow, sqlx::Error> {
        Ok(StoredRow {
            data: row.try_get(0)?,
            created_at: row.try_get(1)?,
            updated_at: row.try_get(2)?,
            content_hash: row.try_get(3)?,
        })
    }

    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, DbError> {
        serde_json::from_str(&self.data).map_err(|e| DbError::Corrupt {
            context: "decoding a mirror record",
            message: e.to_string(),
        })
    }
}

/// What a list request asks for.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub filter: Option<&'a Filter>,
    /// SCIM's 1-based index.
    pub start_index: u64,
    /// The page size; 0 asks for the total only.
    pub count: u64,
    /// `sortBy`, answered from the same indexed columns as filters.
    pub sort_by: Option<&'a AttrPath>,
    pub descending: bool,
    /// The total, when the caller counted it already (later chunks of one list page):
    /// the filter is then not evaluated over every matching row again.
    pub known_total: Option<u64>,
}

/// One page of records matching the request's filter (all when None), sorted by the
/// requested attribute (then by id; by id alone when none), and the total.
pub async fn find_page(
    conn: &mut AnyConnection,
    resource: Resource,
    connector: &str,
    request: PageRequest<'_>,
) -> Result<(u64, Vec<StoredRow>), QueryError> {
    const CTX: &str = "answering a filter";
    let mut compiled = Compiled {
        binds: Vec::new(),
        connector: connector.to_string(),
    };
    let connector_param = param(conn, 1);
    let clause = match request.filter {
        Some(filter) => format!(
            " AND {}",
            compile(filter, resource, conn, 2, &mut compiled)?
        ),
        None => String::new(),
    };
    let direction = if request.descending { "DESC" } else { "ASC" };
    // With a filter, order by an expression: SQLite (without statistics) would otherwise
    // walk the primary key to avoid a sort and test every row, instead of looking the
    // filter up in its index and sorting the few rows it finds.
    let id_order = match request.filter {
        Some(_) => "(external_id || '')",
        None => "external_id",
    };
    let order = match request.sort_by {
        None => format!("{id_order} {direction}"),
        Some(path) => {
            let (col, _) = column(resource, path).ok_or_else(|| {
                QueryError::NotSortable(format!(
                    "sorting by `{path}` is not supported; sortable: {}",
                    match resource {
                        Resource::User => "userName, externalId, id, meta.lastModified",
                        Resource::Group => "displayName, externalId, id, meta.lastModified",
                    }
                ))
            })?;
            format!("{col} {direction}, {id_order} {direction}")
        }
    };
    let table = resource.table();
    let count_matches = async |conn: &mut AnyConnection| -> Result<u64, QueryError> {
        let count_sql =
            format!("SELECT COUNT(*) FROM {table} WHERE connector = {connector_param}{clause}");
        let mut query = sqlx::query(AssertSqlSafe(count_sql)).bind(connector.to_string());
        for value in &compiled.binds {
            query = query.bind(value.clone());
        }
        let total: i64 = query
            .fetch_one(&mut *conn)
            .await
            .context(CTX)?
            .try_get(0)
            .context(CTX)?;
        Ok(total.max(0) as u64)
    };
    // A filtered page (an IdP looking a user up before creating it, mostly) brings its
    // total along (`COUNT(*) OVER ()`: the matches are counted anyway, from the index):
    // one round trip instead of two. An unfiltered list keeps its separate count, which
    // reads the index alone rather than every record before the page.
    // None: counted with the page.
    let total = match request.known_total {
        Some(total) => Some(total),
        None if request.filter.is_some() && request.count > 0 => None,
        None => Some(count_matches(conn).await?),
    };
    if let (Some(total), 0) = (total, request.count) {
        return Ok((total, Vec::new()));
    }
    let offset = request.start_index.max(1) - 1;
    let matched = if total.is_none() {
        ", COUNT(*) OVER ()"
    } else {
        ""
    };
    let page_sql = format!(
        "SELECT {STORED_COLUMNS}{matched} FROM {table} WHERE connector = {connector_param}{clause} \
         ORDER BY {order} LIMIT {} OFFSET {offset}",
        request.count
    );
    let mut query = sqlx::query(AssertSqlSafe(page_sql)).bind(connector.to_string());
    for value in &compiled.binds {
        query = query.bind(value.clone());
    }
    let rows = query.fetch_all(&mut *conn).await.context(CTX)?;
    let total = match total {
        Some(total) => total,
        None => match rows.first() {
            Some(row) => row.try_get::<i64, _>(4).context(CTX)?.max(0) as u64,
            // No row: nothing matched, or the page starts after the last match.
            None if offset == 0 => 0,
            None => count_matches(conn).await?,
        },
    };
    let rows = rows
        .iter()
        .map(StoredRow::from_row)
        .collect::<Result<Vec<_>, _>>()
        .context(CTX)?;
    Ok((total, rows))
}

fn decode<T: serde::de::DeserializeOwned>(rows: Vec<StoredRow>) -> Result<Vec<T>, QueryError> {
    rows.iter()
        .map(|row| row.decode().map_err(QueryError::Db))
        .collect()
}

fn plain(filter: Option<&Filter>, start_index: u64, count: u64) -> PageRequest<'_> {
    PageRequest {
        filter,
        start_index,
        count,
        sort_by: None,
        descending: false,
        known_total: None,
    }
}

/// Users of `connector`'s mirror matching `filter`: (total, one page).
pub async fn find_users(
    conn: &mut AnyConnection,
    connector: &str,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
) -> Result<(u64, Vec<SourceUser>), QueryError> {
    let (total, rows) = find_page(
        conn,
        Resource::User,
        connector,
        plain(filter, start_index, count),
    )
    .await?;
    Ok((total, decode(rows)?))
}

/// Groups of `connector`'s mirror matching `filter`: (total, one page).
pub async fn find_groups(
    conn: &mut AnyConnection,
    connector: &str,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
) -> Result<(u64, Vec<SourceGroup>), QueryError> {
    let (total, rows) = find_page(
        conn,
        Resource::Group,
        connector,
        plain(filter, start_index, count),
    )
    .await?;
    Ok((total, decode(rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\", CompareOp::Sw), "a\\%b\\_c\\\\%");
        assert_eq!(like_pattern("x", CompareOp::Ew), "%x");
        assert_eq!(like_pattern("x", CompareOp::Co), "%x%");
    }

    #[test]
    fn only_indexed_attributes_map_to_columns() {
        let path = |attr: &str, sub: Option<&str>| AttrPath {
            schema: None,
            attr: attr.into(),
            sub_attr: sub.map(str::to_string),
        };
        assert_eq!(
            column(Resource::User, &path("USERNAME", None)),
            Some(("user_name_key", Comparison::Folded))
        );
        assert_eq!(column(Resource::Group, &path("userName", None)), None);
        assert_eq!(
            column(Resource::Group, &path("meta", Some("lastModified"))),
            Some(("updated_at", Comparison::Instant))
        );
        assert_eq!(column(Resource::User, &path("emails", Some("value"))), None);
        let mut qualified = path("userName", None);
        qualified.schema = Some("urn:ietf:params:scim:schemas:core:2.0:User".into());
        assert!(column(Resource::User, &qualified).is_some());
        qualified.schema = Some("urn:ietf:params:scim:schemas:core:2.0:Group".into());
        assert!(column(Resource::User, &qualified).is_none());
    }
}
