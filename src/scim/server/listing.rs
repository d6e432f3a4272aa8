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

/// Rows read from the mirror in the first chunk of a page: bounds what a page holds in
/// memory while it is built (a user row is at most `max_resource_bytes`; a group row also
/// carries its members, hence fewer). Later chunks are sized from the bytes per resource
/// seen so far, so pages of small resources take few queries and pages of large ones do
/// not read rows they cannot hold.
fn first_chunk(resource: Resource) -> u64 {
    match resource {
        Resource::User => 64,
        Resource::Group => 16,
    }
}

/// Most rows read in one chunk.
const MAX_CHUNK: u64 = 500;

fn next_chunk(page_cap: usize, written: usize, listed: u64) -> u64 {
    let per_item = (written as u64 / listed.max(1)).max(1);
    let room = page_cap.saturating_sub(written) as u64;
    (room / per_item + 1).clamp(16, MAX_CHUNK)
}

pub(super) async fn list(
    call: &Call<'_>,
    resource: Resource,
    params: ListParams,
) -> Result<Reply, ScimError> {
    let max = u64::from(call.max_results());
    let count = params.count.unwrap_or(max).min(max);
    let page_cap = call.server.options.max_page_bytes;
    let mut conn = call.db().pool().acquire().await.map_err(db_error)?;
    // Each resource is written out as soon as it is rendered, so the page exists once, as
    // text, never also as a tree of values.
    let mut items = String::new();
    let mut listed: u64 = 0;
    let mut total = None;
    let mut start_index = params.start_index;
    let mut chunk = first_chunk(resource);
    loop {
        let want = (count - listed).min(chunk);
        let (found, rows) = query::find_page(
            &mut conn,
            resource,
            &call.tenant.id,
            PageRequest {
                filter: params.filter.as_ref(),
                start_index,
                count: want,
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
        total.get_or_insert(found);
        let fetched = rows.len() as u64;
        let mut full = false;
        for row in &rows {
            let rendered = match resource {
                Resource::User => {
                    resources::render::<SourceUser>(call, &Stored::from_row(row).map_err(db_error)?)
                }
                Resource::Group => resources::render::<SourceGroup>(
                    call,
                    &Stored::from_row(row).map_err(db_error)?,
                ),
            };
            let text = shape(rendered, &params.shape).to_string();
            if listed > 0 && items.len() + text.len() + 1 > page_cap {
                full = true;
                break;
            }
            if listed > 0 {
                items.push(',');
            }
            items.push_str(&text);
            listed += 1;
        }
        drop(rows);
        if full || fetched < want || listed >= count {
            break;
        }
        start_index += fetched;
        chunk = next_chunk(page_cap, items.len(), listed);
    }
    let total = total.unwrap_or(0);
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
    let head = json!({
        "schemas": schemas,
        "totalResults": total,
        "startIndex": params.start_index,
        "itemsPerPage": listed,
    })
    .to_string();
    // `head` is an object: its closing brace makes room for the resources.
    let mut body = String::with_capacity(head.len() + items.len() + 16);
    body.push_str(&head[..head.len() - 1]);
    body.push_str(",\"Resources\":[");
    body.push_str(&items);
    body.push_str("]}");
    Ok(Reply::text(StatusCode::OK, body, operation))
}
