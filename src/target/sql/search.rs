//! The target's users and groups searched with the SCIM filter language (RFC 7644 section
//! 3.4.2.2), for the admin pages' directory browser: the filter is compiled to a WHERE
//! clause over the target tables' columns, so a search is one statement whatever the
//! directory's size.
//!
//! | resource | attribute | column | comparison |
//! | --- | --- | --- | --- |
//! | user | `userName` | `user_name_key` | case-insensitive (the stored key) |
//! | user | `displayName`, `name.givenName`, `name.familyName`, `emails` / `emails.value` | `display_name`, `given_name`, `family_name`, `email` | ASCII letters in any case |
//! | user | `active` | `active` | `eq` / `ne` with `true` or `false` |
//! | group | `displayName` | `name_key` | case-insensitive (the stored key) |
//! | group | `description` | `description` | ASCII letters in any case |
//! | both | `externalId`, `id` | `external_id`, `id` | case-exact |
//!
//! Letters are folded to lower case in ASCII only, on both backends (SQLite's `lower`
//! folds only ASCII; PostgreSQL's does so under the `C` collation), so that SQLite and
//! PostgreSQL answer one search alike.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe};

use crate::db::{Context, DbError};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::model::name_key;
use crate::store::mirror::query::like_pattern;

/// What a search reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searched {
    Users,
    Groups,
}

/// Why a search was not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The filter names an attribute or a comparison the search does not answer.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Folding {
    /// The column holds the folded key; values are folded the same way (`name_key`).
    Key,
    /// Compared with ASCII letters in any case.
    AsciiCase,
    /// Compared exactly.
    Exact,
    /// A boolean column.
    Bool,
}

fn column(searched: Searched, path: &AttrPath) -> Option<(&'static str, Folding)> {
    let attr = path.attr.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    match (searched, attr.as_str(), sub.as_deref()) {
        (Searched::Users, "username", None) => Some(("user_name_key", Folding::Key)),
        (Searched::Users, "displayname", None) => Some(("display_name", Folding::AsciiCase)),
        (Searched::Users, "name", Some("givenname")) => Some(("given_name", Folding::AsciiCase)),
        (Searched::Users, "name", Some("familyname")) => Some(("family_name", Folding::AsciiCase)),
        (Searched::Users, "emails", None | Some("value")) => Some(("email", Folding::AsciiCase)),
        (Searched::Users, "active", None) => Some(("active", Folding::Bool)),
        (Searched::Groups, "displayname", None) => Some(("name_key", Folding::Key)),
        (Searched::Groups, "description", None) => Some(("description", Folding::AsciiCase)),
        (_, "externalid", None) => Some(("external_id", Folding::Exact)),
        (_, "id", None) => Some(("id", Folding::Exact)),
        _ => None,
    }
}

/// A WHERE clause being built, with its values in placeholder order.
struct Clause {
    postgres: bool,
    binds: Vec<String>,
}

impl Clause {
    fn bind(&mut self, value: String) -> String {
        self.binds.push(value);
        if self.postgres {
            format!("${}", self.binds.len())
        } else {
            "?".to_string()
        }
    }

    /// `column` as it is compared: folded in ASCII where the comparison ignores case.
    fn operand(&self, column: &str, folding: Folding) -> String {
        let operand = format!("COALESCE({column}, '')");
        match folding {
            Folding::AsciiCase => crate::db::ascii_lower(self.postgres, &operand),
            _ => operand,
        }
    }
}

fn searchable(searched: Searched) -> &'static str {
    match searched {
        Searched::Users => {
            "userName, displayName, name.givenName, name.familyName, emails, active, externalId, id"
        }
        Searched::Groups => "displayName, description, externalId, id",
    }
}

fn compile(filter: &Filter, searched: Searched, out: &mut Clause) -> Result<String, SearchError> {
    let unsupported = |path: &AttrPath| {
        SearchError::Unsupported(format!(
            "searching by `{path}` is not supported; search by {}",
            searchable(searched)
        ))
    };
    Ok(match filter {
        Filter::And(a, b) => format!(
            "({} AND {})",
            compile(a, searched, out)?,
            compile(b, searched, out)?
        ),
        Filter::Or(a, b) => format!(
            "({} OR {})",
            compile(a, searched, out)?,
            compile(b, searched, out)?
        ),
        Filter::Not(inner) => format!("NOT ({})", compile(inner, searched, out)?),
        Filter::ValuePath { attr, .. } => return Err(unsupported(attr)),
        Filter::Present(path) => {
            let (col, folding) = column(searched, path).ok_or_else(|| unsupported(path))?;
            if folding == Folding::Bool {
                format!("({col} IS NOT NULL)")
            } else {
                format!("({col} IS NOT NULL AND {col} <> '')")
            }
        }
        Filter::Compare { path, op, value } => {
            let (col, folding) = column(searched, path).ok_or_else(|| unsupported(path))?;
            if folding == Folding::Bool {
                let wanted = match (op, value) {
                    (CompareOp::Eq, CompValue::Bool(b)) => *b,
                    (CompareOp::Ne, CompValue::Bool(b)) => !*b,
                    _ => {
                        return Err(SearchError::Unsupported(format!(
                            "`{path}` is true or false: compare it with eq or ne"
                        )));
                    }
                };
                return Ok(format!("{col} = {}", if wanted { "TRUE" } else { "FALSE" }));
            }
            let text = match value {
                CompValue::String(s) => s.clone(),
                other => {
                    return Err(SearchError::Unsupported(format!(
                        "`{path}` is text; compare it with a quoted string, not {other}"
                    )));
                }
            };
            let value = match folding {
                Folding::Key => name_key(&text),
                Folding::AsciiCase => text.to_ascii_lowercase(),
                Folding::Exact | Folding::Bool => text,
            };
            let operand = out.operand(col, folding);
            let (sql_op, value) = match op {
                CompareOp::Eq => ("=", value),
                CompareOp::Ne => ("<>", value),
                CompareOp::Gt => (">", value),
                CompareOp::Ge => (">=", value),
                CompareOp::Lt => ("<", value),
                CompareOp::Le => ("<=", value),
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                    let p = out.bind(like_pattern(&value, *op));
                    return Ok(format!("{operand} LIKE {p} ESCAPE '\\'"));
                }
            };
            let p = out.bind(value);
            format!("{operand} {sql_op} {p}")
        }
    })
}

/// One page of the users or groups that `filter` matches (all without one), optionally
/// of one connector, ordered by name; the rows are read by `read`.
pub async fn search<T>(
    pool: &AnyPool,
    searched: Searched,
    select: &str,
    filter: Option<&Filter>,
    connector: Option<&str>,
    (limit, offset): (i64, i64),
    read: fn(&AnyRow) -> Result<T, DbError>,
) -> Result<Vec<T>, SearchError> {
    const CTX: &str = "searching the target directory";
    let mut conn = pool.acquire().await.context(CTX)?;
    let mut clause = Clause {
        postgres: crate::db::is_postgres(&conn),
        binds: Vec::new(),
    };
    let mut conditions = Vec::new();
    if let Some(filter) = filter {
        conditions.push(compile(filter, searched, &mut clause)?);
    }
    if let Some(connector) = connector {
        let p = clause.bind(connector.to_string());
        conditions.push(format!("connector = {p}"));
    }
    let order = match searched {
        Searched::Users => "user_name_key",
        Searched::Groups => "name_key",
    };
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("{select}{where_clause} ORDER BY {order} LIMIT {limit} OFFSET {offset}");
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in clause.binds {
        query = query.bind(value);
    }
    let rows = query.fetch_all(&mut *conn).await.context(CTX)?;
    Ok(rows.iter().map(read).collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_filter;

    fn sql(
        text: &str,
        searched: Searched,
        postgres: bool,
    ) -> Result<(String, Vec<String>), String> {
        let filter = parse_filter(text).map_err(|e| e.to_string())?;
        let mut clause = Clause {
            postgres,
            binds: Vec::new(),
        };
        let sql = compile(&filter, searched, &mut clause).map_err(|e| e.to_string())?;
        Ok((sql, clause.binds))
    }

    #[test]
    fn filters_become_where_clauses_over_the_target_columns() {
        let (where_clause, binds) = sql(
            r#"userName sw "Ada" and (emails co "EXAMPLE" or not (active eq false))"#,
            Searched::Users,
            true,
        )
        .expect("sql");
        assert_eq!(
            where_clause,
            "(COALESCE(user_name_key, '') LIKE $1 ESCAPE '\\' AND \
             (LOWER(COALESCE(email, '') COLLATE \"C\") LIKE $2 ESCAPE '\\' OR NOT (active = FALSE)))"
        );
        assert_eq!(binds, ["ada%", "%example%"]);
        let (where_clause, binds) =
            sql(r#"displayName eq "Staff_1""#, Searched::Groups, false).expect("sql");
        assert_eq!(where_clause, "COALESCE(name_key, '') = ?");
        assert_eq!(binds, ["staff_1"]);
    }

    #[test]
    fn what_it_cannot_answer_is_said() {
        for (text, searched, says) in [
            (
                r#"title eq "x""#,
                Searched::Users,
                "searching by `title` is not supported",
            ),
            (
                r#"members[value eq "x"]"#,
                Searched::Groups,
                "not supported",
            ),
            (
                r#"active eq "yes""#,
                Searched::Users,
                "compare it with eq or ne",
            ),
            (
                r#"userName eq 3"#,
                Searched::Users,
                "compare it with a quoted string",
            ),
        ] {
            let error = sql(text, searched, false).expect_err(text);
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
