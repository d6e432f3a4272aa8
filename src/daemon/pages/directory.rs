//! The directory browser: the target's users and groups searched with the SCIM filter
//! language, a user with their direct groups and their effective groups (with the nesting
//! path that gives each), and a group with its members, nested groups shown as a tree.
//! Each record says which connector owns it.

use std::collections::{HashMap, HashSet, VecDeque};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{page, time};
use super::{PageSession, Shared, error_page, html_page, present};
use crate::filter::parse_filter;
use crate::target::query::{self, GroupRef, GroupRow, MemberRow, UserRow};

/// Rows on one page of results.
const PAGE_SIZE: i64 = 50;
/// The longest filter the search takes.
const MAX_FILTER_CHARS: usize = 1000;
/// Users listed under one group of the tree before "and N more".
const TREE_USERS: usize = 100;
/// Groups the member tree opens at most (each is one read).
const TREE_GROUPS: usize = 50;
/// How deep the member tree goes.
const TREE_DEPTH: usize = 6;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Search {
    kind: Option<String>,
    filter: Option<String>,
    connector: Option<String>,
    page: Option<i64>,
}

impl Search {
    fn groups(&self) -> bool {
        present(&self.kind) == Some("groups")
    }

    fn query_string(&self, page: i64) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("kind", if self.groups() { "groups" } else { "users" });
        if let Some(filter) = present(&self.filter) {
            out.append_pair("filter", filter);
        }
        if let Some(connector) = present(&self.connector) {
            out.append_pair("connector", connector);
        }
        out.append_pair("page", &page.to_string());
        out.finish()
    }
}

fn search_form(search: &Search, connectors: &[String]) -> Markup {
    let groups = search.groups();
    html! {
        form.panel.filters method="get" action="/ui/directory" role="search" {
            div.fields {
                div {
                    label for="kind" { "Search" }
                    select #kind name="kind" {
                        option value="users" selected[!groups] { "Users" }
                        option value="groups" selected[groups] { "Groups" }
                    }
                }
                div.wide {
                    label for="filter" { "SCIM filter" }
                    input #filter type="search" name="filter" maxlength=(MAX_FILTER_CHARS)
                        value=(search.filter.clone().unwrap_or_default())
                        placeholder=r#"userName sw "ada" or emails co "example.com""#;
                }
                div {
                    label for="connector" { "Owned by" }
                    select #connector name="connector" {
                        option value="" { "Any connector" }
                        @for connector in connectors {
                            option value=(connector) selected[present(&search.connector) == Some(connector.as_str())] { (connector) }
                        }
                    }
                }
            }
            p.muted {
                "Users: userName, displayName, name.givenName, name.familyName, emails, active, externalId, id. "
                "Groups: displayName, description, externalId, id. Operators: eq ne co sw ew gt ge lt le pr, and, or, not."
            }
            p { button.primary type="submit" { "Search" } " " a.button href="/ui/directory" { "Clear" } }
        }
    }
}

fn users_table(users: &[UserRow]) -> Markup {
    html! {
        div.scroll {
            table {
                caption { (users.len()) " users on this page, by user name" }
                thead { tr {
                    th scope="col" { "User name" } th scope="col" { "Display name" }
                    th scope="col" { "Email" } th scope="col" { "Active" } th scope="col" { "Connector" }
                } }
                tbody {
                    @for user in users {
                        tr class=(if user.active { "" } else { "attention" }) {
                            th scope="row" { a href={ "/ui/directory/users/" (user.id) } { (user.user_name) } }
                            td { (user.display_name.as_deref().unwrap_or("")) }
                            td { (user.email.as_deref().unwrap_or("")) }
                            td { @if user.active { "yes" } @else { span.badge.held { "disabled" } } }
                            td { (user.connector) }
                        }
                    }
                }
            }
        }
    }
}

fn groups_table(groups: &[GroupRow]) -> Markup {
    html! {
        div.scroll {
            table {
                caption { (groups.len()) " groups on this page, by name" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" class="num" { "Direct members" }
                    th scope="col" { "Description" } th scope="col" { "Connector" }
                } }
                tbody {
                    @for group in groups {
                        tr {
                            th scope="row" { a href={ "/ui/directory/groups/" (group.id) } { (group.name) } }
                            td.num { (group.direct_members) }
                            td { (group.description.as_deref().unwrap_or("")) }
                            td { (group.connector) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/directory`.
pub(super) async fn search(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Query(search): Query<Search>,
) -> Response {
    let connectors: Vec<String> = state.config.current().connectors.keys().cloned().collect();
    let page_number = search.page.unwrap_or(1).clamp(1, 1_000_000);
    let offset = (page_number - 1) * PAGE_SIZE;
    let filter = match present(&search.filter) {
        Some(text) if text.chars().count() > MAX_FILTER_CHARS => Err(format!(
            "the filter is longer than {MAX_FILTER_CHARS} characters"
        )),
        Some(text) => parse_filter(text)
            .map(Some)
            .map_err(|e| format!("the filter does not parse: {e}")),
        None => Ok(None),
    };
    let connector = present(&search.connector);
    let pool = state.db.pool();
    let results: Result<(Markup, usize), String> = match filter {
        Err(problem) => Err(problem),
        Ok(filter) if search.groups() => {
            query::search_groups(pool, filter.as_ref(), connector, PAGE_SIZE, offset)
                .await
                .map(|rows| (groups_table(&rows), rows.len()))
                .map_err(|e| e.to_string())
        }
        Ok(filter) => query::search_users(pool, filter.as_ref(), connector, PAGE_SIZE, offset)
            .await
            .map(|rows| (users_table(&rows), rows.len()))
            .map_err(|e| e.to_string()),
    };
    let status = if results.is_err() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = html! {
        (search_form(&search, &connectors))
        @match &results {
            Err(problem) => p.notice.error role="alert" { (problem) },
            Ok((_, 0)) => p.notice role="status" { "Nothing matches." },
            Ok((table, count)) => {
                (table)
                p {
                    @if page_number > 1 {
                        a href={ "/ui/directory?" (search.query_string(page_number - 1)) } { "Previous page" } " "
                    }
                    @if *count as i64 == PAGE_SIZE {
                        a href={ "/ui/directory?" (search.query_string(page_number + 1)) } { "Next page" }
                    }
                }
            }
        }
    };
    (
        status,
        html_page(page(&session, "Directory", "/ui/directory", body)),
    )
        .into_response()
}

/// Each effective group of a user with the chain of groups that gives it, walked up the
/// nesting edges from the user's direct groups (breadth first: the shortest chain).
fn paths_to(
    direct: &[GroupRef],
    effective: &[GroupRef],
    edges: &[(String, String)],
) -> Vec<(GroupRef, Vec<String>)> {
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (parent, child) in edges {
        parents
            .entry(child.as_str())
            .or_default()
            .push(parent.as_str());
    }
    let mut came_from: HashMap<&str, Option<&str>> = HashMap::new();
    let mut queue = VecDeque::new();
    for group in direct {
        came_from.insert(group.id.as_str(), None);
        queue.push_back(group.id.as_str());
    }
    while let Some(group) = queue.pop_front() {
        for parent in parents.get(group).into_iter().flatten() {
            if !came_from.contains_key(parent) {
                came_from.insert(parent, Some(group));
                queue.push_back(parent);
            }
        }
    }
    let names: HashMap<&str, &str> = effective
        .iter()
        .chain(direct)
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    effective
        .iter()
        .map(|group| {
            let mut chain = Vec::new();
            let mut at = Some(group.id.as_str());
            while let Some(id) = at {
                chain.push(names.get(id).map_or(id, |n| *n).to_string());
                at = came_from.get(id).copied().flatten();
                if chain.len() > edges.len() + 1 {
                    break;
                }
            }
            chain.reverse();
            (group.clone(), chain)
        })
        .collect()
}

/// `GET /ui/directory/users/{id}`.
pub(super) async fn user(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(id): Path<String>,
) -> Response {
    let pool = state.db.pool();
    let loaded = async {
        let Some(user) = query::find_user(pool, &id).await? else {
            return Ok(None);
        };
        let (direct, effective) = query::user_group_refs(pool, &user.id).await?;
        let edges = query::nesting_edges(pool).await?;
        Ok::<_, crate::db::DbError>(Some((user, direct, effective, edges)))
    };
    let (user, direct, effective, edges) = match loaded.await {
        Ok(Some(found)) => found,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("there is no user {id}")),
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let direct_ids: HashSet<&str> = direct.iter().map(|g| g.id.as_str()).collect();
    let paths = paths_to(&direct, &effective, &edges);
    let body = html! {
        section.panel aria-labelledby="facts" {
            h2 #facts { "Summary" }
            dl.facts {
                dt { "User name" } dd { (user.user_name) }
                dt { "Display name" } dd { (user.display_name.as_deref().unwrap_or("—")) }
                dt { "Given name" } dd { (user.given_name.as_deref().unwrap_or("—")) }
                dt { "Family name" } dd { (user.family_name.as_deref().unwrap_or("—")) }
                dt { "Email" } dd { (user.email.as_deref().unwrap_or("—")) }
                dt { "Active" } dd { @if user.active { "yes" } @else { span.badge.held { "disabled" } } }
                dt { "Owned by" } dd { (user.connector) " " span.muted { "(external id " code { (user.external_id) } ")" } }
                dt { "Target id" } dd { code { (user.id) } }
                dt { "Created" } dd { (time(&user.created_at)) }
                dt { "Updated" } dd { (time(&user.updated_at)) }
                @if let Some(removed) = &user.removed_at {
                    dt { "Left the source" } dd { (time(removed)) }
                }
            }
        }
        h2 { "Direct groups" }
        @if direct.is_empty() {
            p.muted { "None." }
        } @else {
            ul { @for group in &direct { li { a href={ "/ui/directory/groups/" (group.id) } { (group.name) } } } }
        }
        h2 { "Effective groups" }
        @if paths.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Group" } th scope="col" { "Given by" } } }
                    tbody {
                        @for (group, chain) in &paths {
                            tr {
                                th scope="row" { a href={ "/ui/directory/groups/" (group.id) } { (group.name) } }
                                td {
                                    @if direct_ids.contains(group.id.as_str()) {
                                        "direct membership"
                                    } @else {
                                        (chain.join(" → "))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href="/ui/directory" { "Back to the directory" } }
    };
    html_page(page(&session, &user.user_name, "/ui/directory", body))
}

/// The members of `group` as a list, its member groups opened below it (once each, at
/// most [`TREE_GROUPS`] reads and [`TREE_DEPTH`] levels; a group met again is named, not
/// opened).
fn member_tree<'a>(
    pool: &'a sqlx::AnyPool,
    group_id: String,
    depth: usize,
    opened: &'a mut HashSet<String>,
) -> BoxFuture<'a, Result<Markup, crate::db::DbError>> {
    Box::pin(async move {
        opened.insert(group_id.clone());
        let members = query::direct_members(pool, &group_id).await?;
        let (groups, users): (Vec<&MemberRow>, Vec<&MemberRow>) =
            members.iter().partition(|m| m.kind == "group");
        let mut children = Vec::new();
        for child in &groups {
            let subtree = if opened.contains(&child.id) {
                Some(html! { span.muted { " (shown above: nesting loops back)" } })
            } else if depth >= TREE_DEPTH || opened.len() >= TREE_GROUPS {
                Some(
                    html! { span.muted { " (not opened here: " a href={ "/ui/directory/groups/" (child.id) } { "open it" } ")" } },
                )
            } else {
                None
            };
            let inner = match subtree {
                Some(note) => {
                    html! { li { a href={ "/ui/directory/groups/" (child.id) } { (child.name) } (note) } }
                }
                None => {
                    let tree = member_tree(pool, child.id.clone(), depth + 1, opened).await?;
                    html! {
                        li {
                            details open[depth < 2] {
                                summary { a href={ "/ui/directory/groups/" (child.id) } { (child.name) } " " span.muted { "(group)" } }
                                (tree)
                            }
                        }
                    }
                }
            };
            children.push(inner);
        }
        Ok(html! {
            ul.tree {
                @for child in &children { (child) }
                @for user in users.iter().take(TREE_USERS) {
                    li { a href={ "/ui/directory/users/" (user.id) } { (user.name) } }
                }
                @if users.len() > TREE_USERS {
                    li.muted { "… and " (users.len() - TREE_USERS) " more users" }
                }
                @if members.is_empty() { li.muted { "No members." } }
            }
        })
    })
}

/// `GET /ui/directory/groups/{id}`.
pub(super) async fn group(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(id): Path<String>,
) -> Response {
    let pool = state.db.pool();
    let group = match query::find_group(pool, &id).await {
        Ok(Some(group)) => group,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("there is no group {id}")),
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut opened = HashSet::new();
    let loaded = async {
        let tree = member_tree(pool, group.id.clone(), 0, &mut opened).await?;
        let effective = query::effective_members(pool, &group.id).await?;
        Ok::<_, crate::db::DbError>((tree, effective.len()))
    };
    let (tree, effective) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let body = html! {
        section.panel aria-labelledby="facts" {
            h2 #facts { "Summary" }
            dl.facts {
                dt { "Name" } dd { (group.name) }
                dt { "Description" } dd { (group.description.as_deref().unwrap_or("—")) }
                dt { "Owned by" } dd { (group.connector) " " span.muted { "(external id " code { (group.external_id) } ")" } }
                dt { "Direct members" } dd { (group.direct_members) }
                dt { "Effective users" } dd { (effective) " " span.muted { "(nesting resolved)" } }
                dt { "Target id" } dd { code { (group.id) } }
                dt { "Updated" } dd { (time(&group.updated_at)) }
            }
        }
        h2 { "Members" }
        (tree)
        p { a href="/ui/directory?kind=groups" { "Back to the groups" } }
    };
    html_page(page(&session, &group.name, "/ui/directory", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str) -> GroupRef {
        GroupRef {
            id: id.to_string(),
            name: format!("G-{id}"),
        }
    }

    #[test]
    fn each_effective_group_shows_the_shortest_chain_from_a_direct_group() {
        // a ⊂ b ⊂ c, and a ⊂ c directly; d ⊂ e ⊂ d (a cycle).
        let edges: Vec<(String, String)> =
            [("b", "a"), ("c", "b"), ("c", "a"), ("e", "d"), ("d", "e")]
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string()))
                .collect();
        let direct = [group("a"), group("d")];
        let effective = [group("a"), group("b"), group("c"), group("d"), group("e")];
        let paths: HashMap<String, Vec<String>> = paths_to(&direct, &effective, &edges)
            .into_iter()
            .map(|(g, chain)| (g.id, chain))
            .collect();
        assert_eq!(paths["a"], ["G-a"]);
        assert_eq!(paths["b"], ["G-a", "G-b"]);
        assert_eq!(paths["c"], ["G-a", "G-c"], "the shorter of two chains");
        assert_eq!(paths["e"], ["G-d", "G-e"], "a cycle ends");
        assert_eq!(paths["d"], ["G-d"]);
    }
}
