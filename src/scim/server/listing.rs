//! List and `.search` answers (RFC 7644 §3.4.2): filters and sorting answered in SQL from
//! the mirror's indexed columns, `startIndex`/`count` paging capped at the server's
//! `maxResults`, each resource shaped by `attributes`/`excludedAttributes`.

use axum::http::StatusCode;
use serde_json::json;

use super::params::{ListParams, shape};
use super::{Call, Reply, resources, v1};
use crate::filter::{AttrPath, Filter};
use crate::model::{SourceGroup, SourceUser};
use crate::scim::discovery::{self, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use crate::scim::error::{ScimError, ScimType, ScimVersion};
use crate::store::mirror::query::{self, PageRequest, Resource};
use crate::store::pushed::Stored;

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

/// One page of one resource type, written into `items` (comma-separated, after the
/// `already` resources a page holds so far): how many matched in all, and how many were
/// written.
async fn write_page(
    call: &Call<'_>,
    resource: Resource,
    params: &ListParams,
    start: u64,
    count: u64,
    items: &mut String,
    already: u64,
) -> Result<(u64, u64), ScimError> {
    let page_cap = call.server.options.max_page_bytes;
    let mut conn = call.db().pool().acquire().await?;
    // Each resource is written out as soon as it is rendered, so the page exists once, as
    // text, never also as a tree of values.
    let mut listed: u64 = 0;
    let mut total = None;
    let mut start_index = start;
    let mut chunk = first_chunk(resource);
    loop {
        let want = count.saturating_sub(listed).min(chunk);
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
                // Counted once per page: later chunks reuse the first chunk's total.
                known_total: total,
            },
        )
        .await?;
        total.get_or_insert(found);
        if want == 0 {
            break;
        }
        let fetched = rows.len() as u64;
        let mut full = false;
        for row in &rows {
            let rendered = match resource {
                Resource::User => resources::render::<SourceUser>(call, &Stored::from_row(row)?),
                Resource::Group => resources::render::<SourceGroup>(call, &Stored::from_row(row)?),
            };
            let text = shape(rendered, &params.shape).to_string();
            let on_page = already + listed;
            if on_page > 0 && items.len() + text.len() + 1 > page_cap {
                full = true;
                break;
            }
            if on_page > 0 {
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
        chunk = next_chunk(page_cap, items.len(), already + listed);
    }
    Ok((total.unwrap_or(0), listed))
}

/// The list response around resources already written out as text; its operation (for
/// the event log) is `what` with the filter and the total.
fn list_response(
    call: &Call<'_>,
    params: &ListParams,
    what: &str,
    total: u64,
    listed: u64,
    items: &str,
) -> Reply {
    let operation = match &params.filter_text {
        Some(filter) => format!("{what} where {filter} ({total} found)"),
        None => format!("{what} ({total} in all)"),
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
    body.push_str(items);
    body.push_str("]}");
    Reply::text(StatusCode::OK, body, operation)
}

fn max_count(call: &Call<'_>, params: &ListParams) -> u64 {
    let max = u64::from(call.max_results());
    params.count.unwrap_or(max).min(max)
}

/// `GET /Users` or `/Groups`, parameters in the query.
pub(super) async fn get(call: &Call<'_>, resource: Resource) -> Result<Reply, ScimError> {
    list(call, resource, ListParams::from_query(call.query)?).await
}

/// `POST /Users/.search` or `/Groups/.search`, parameters in the body.
pub(super) async fn search(call: &Call<'_>, resource: Resource) -> Result<Reply, ScimError> {
    list(call, resource, ListParams::from_search(&call.json_body()?)?).await
}

async fn list(call: &Call<'_>, resource: Resource, params: ListParams) -> Result<Reply, ScimError> {
    let count = max_count(call, &params);
    let mut items = String::new();
    let (total, listed) = write_page(
        call,
        resource,
        &params,
        params.start_index,
        count,
        &mut items,
        0,
    )
    .await?;
    let what = match resource {
        Resource::User => "list users",
        Resource::Group => "list groups",
    };
    Ok(list_response(call, &params, what, total, listed, &items))
}

/// Whether `filter` names an attribute that resources of `resource` do not have: such a
/// comparison matches none of them (a `not` around it would match all, so a filter with
/// `not` is never taken as naming nothing).
fn names_foreign_attribute(filter: &Filter, resource: Resource) -> bool {
    fn has_not(filter: &Filter) -> bool {
        match filter {
            Filter::Not(_) => true,
            Filter::And(a, b) | Filter::Or(a, b) => has_not(a) || has_not(b),
            Filter::ValuePath { filter, .. } => has_not(filter),
            Filter::Compare { .. } | Filter::Present(_) => false,
        }
    }
    fn known(path: &AttrPath, resource: Resource) -> bool {
        let (own, allowed): (&str, &[&str]) = match resource {
            Resource::User => (USER_SCHEMA, &[USER_SCHEMA, ENTERPRISE_USER_SCHEMA]),
            Resource::Group => (GROUP_SCHEMA, &[GROUP_SCHEMA]),
        };
        if let Some(schema) = &path.schema
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(schema))
        {
            return false;
        }
        let name = match &path.schema {
            Some(schema) => format!("{schema}:{}", path.attr),
            None => path.attr.clone(),
        };
        discovery::attribute(own, &name).is_some()
    }
    fn any_foreign(filter: &Filter, resource: Resource) -> bool {
        match filter {
            Filter::And(a, b) | Filter::Or(a, b) => {
                any_foreign(a, resource) || any_foreign(b, resource)
            }
            Filter::Not(inner) => any_foreign(inner, resource),
            Filter::Compare { path, .. } | Filter::Present(path) => !known(path, resource),
            Filter::ValuePath { attr, .. } => !known(attr, resource),
        }
    }
    !has_not(filter) && any_foreign(filter, resource)
}

/// `POST /.search` at the service root (RFC 7644 §3.4.3): users, then groups, as one list.
/// A filter that names an attribute one type does not have matches none of that type.
pub(super) async fn search_all(call: &Call<'_>, params: ListParams) -> Result<Reply, ScimError> {
    let count = max_count(call, &params);
    let types: Vec<Resource> = [Resource::User, Resource::Group]
        .into_iter()
        .filter(|r| {
            params
                .filter
                .as_ref()
                .is_none_or(|f| !names_foreign_attribute(f, *r))
        })
        .collect();
    if types.is_empty() {
        return Err(ScimError::bad_request(
            ScimType::InvalidFilter,
            "the filter names attributes that neither Users nor Groups have",
        ));
    }
    let mut items = String::new();
    let mut total = 0;
    let mut listed = 0;
    // The page starts `skip` resources into the concatenation of the types.
    let mut skip = params.start_index.saturating_sub(1);
    // Once a page is full (by count or by bytes), later types only add to the total.
    let mut full = false;
    for resource in types {
        let room = if full { 0 } else { count - listed };
        let (found, written) =
            write_page(call, resource, &params, skip + 1, room, &mut items, listed).await?;
        total += found;
        listed += written;
        let left_in_type = found.saturating_sub(skip);
        full = full || listed >= count || written < left_in_type.min(room);
        skip = skip.saturating_sub(found);
    }
    Ok(list_response(
        call,
        &params,
        "search all resources",
        total,
        listed,
        &items,
    ))
}
