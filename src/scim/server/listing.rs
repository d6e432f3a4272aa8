//! List and `.search` answers (RFC 7644 §3.4.2): filters and sorting answered in SQL from
//! the mirror's indexed columns, `startIndex`/`count` paging capped at the server's
//! `maxResults`, each resource shaped by `attributes`/`excludedAttributes`.

use axum::http::StatusCode;
use serde_json::json;

use super::params::{ListParams, shape};
use super::write::db_error;
use super::{Call, Reply, resources, v1};
use crate::mirror::query::{self, PageRequest, QueryError, Resource};
use crate::model::{SourceGroup, SourceUser};
use crate::scim::error::{ScimError, ScimType, ScimVersion};
use crate::scim::store::Stored;

const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub(super) async fn list(
    call: &Call<'_>,
    resource: Resource,
    params: ListParams,
) -> Result<Reply, ScimError> {
    let max = u64::from(call.max_results());
    let count = params.count.unwrap_or(max).min(max);
    let mut conn = call.db().pool().acquire().await.map_err(db_error)?;
    let (total, rows) = query::find_page(
        &mut conn,
        resource,
        &call.tenant.id,
        PageRequest {
            filter: params.filter.as_ref(),
            start_index: params.start_index,
            count,
            sort_by: params.sort_by.as_ref(),
            descending: params.descending,
        },
    )
    .await
    .map_err(|e| match e {
        QueryError::NotFilterable(m) => ScimError::bad_request(ScimType::InvalidFilter, m),
        QueryError::InvalidValue(m) => ScimError::bad_request(ScimType::InvalidFilter, m),
        QueryError::NotSortable(m) => ScimError::bad_request(ScimType::InvalidValue, m),
        QueryError::Db(e) => db_error(e),
    })?;
    let mut resources = Vec::with_capacity(rows.len());
    for row in &rows {
        let rendered = match resource {
            Resource::User => {
                resources::render::<SourceUser>(call, &Stored::from_row(row).map_err(db_error)?)
            }
            Resource::Group => {
                resources::render::<SourceGroup>(call, &Stored::from_row(row).map_err(db_error)?)
            }
        };
        resources.push(shape(rendered, &params.shape));
    }
    let noun = match resource {
        Resource::User => "users",
        Resource::Group => "groups",
    };
    let operation = match &params.filter_text {
        Some(filter) => format!("list {noun} where {filter} ({total} found)"),
        None => format!("list {noun} ({total} in all)"),
    };
    let schemas = match call.version {
        ScimVersion::V2 => json!([LIST_RESPONSE]),
        ScimVersion::V1 => json!([v1::CORE_SCHEMA]),
    };
    let body = json!({
        "schemas": schemas,
        "totalResults": total,
        "startIndex": params.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    Ok(Reply::json(StatusCode::OK, body, operation))
}
