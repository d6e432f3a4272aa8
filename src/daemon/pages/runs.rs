//! One run: when and how it read (full or delta), how it ended, what it changed (the
//! counts and the first changes of each kind by name), its conflicts and warnings.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{duration, outcome_badge, page, time};
use super::{PageSession, Shared, error_page, html_page};
use crate::store::runs::{self, Outcome, RunRecord};

/// `GET /ui/runs/{id}`.
pub(super) async fn show(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(id): Path<i64>,
) -> Response {
    let run = match runs::find(state.db.pool(), id).await {
        Ok(Some(run)) => run,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("there is no run {id}")),
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let title = format!("Run {} of {}", run.id, run.connector);
    html_page(page(&session, &title, "", detail(&run)))
}

fn detail(run: &RunRecord) -> Markup {
    let details = run.details.as_ref();
    let list = |key: &str| -> Vec<Value> {
        details
            .and_then(|d| d.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let changes = list("changes");
    let conflicts = list("conflicts");
    let warnings = list("warnings");
    let c = &run.counts;
    html! {
        @if run.outcome == Outcome::Held {
            p.notice.warning role="status" {
                "This run was held: it would have removed more than the mapping's limits allow. "
                a href="/ui/held" { "Confirm or discard it" } "."
            }
        }
        section.panel aria-labelledby="facts" {
            h2 #facts { "Summary" }
            dl.facts {
                dt { "Outcome" } dd { (outcome_badge(run.outcome)) @if run.dry_run { " (dry run)" } }
                dt { "Operation" } dd { (run.operation) }
                dt { "Read" } dd { (run.read_mode.as_deref().unwrap_or("—")) ", " (run.records_read) " records" }
                dt { "Started" } dd { (time(&run.started_at)) }
                dt { "Finished" } dd {
                    @match &run.finished_at { Some(at) => (time(at)), None => "still running" }
                }
                dt { "Took" } dd { (duration(run)) }
                @if let Some(message) = &run.message {
                    dt { "Message" } dd { (message) }
                }
            }
        }
        h2 { "Counts" }
        div.scroll {
            table {
                thead { tr { th scope="col" { "" } th scope="col" class="num" { "Created" } th scope="col" class="num" { "Updated" } th scope="col" class="num" { "Disabled" } th scope="col" class="num" { "Deleted" } } }
                tbody {
                    tr { th scope="row" { "Users" } td.num { (c.users_created) } td.num { (c.users_updated) } td.num { (c.users_disabled) } td.num { (c.users_deleted) } }
                    tr { th scope="row" { "Groups" } td.num { (c.groups_created) } td.num { (c.groups_updated) } td.num { "—" } td.num { (c.groups_deleted) } }
                }
            }
        }
        p { "Memberships: " (c.memberships_added) " added, " (c.memberships_removed) " removed." }
        h2 { "Changes" }
        @if changes.is_empty() {
            p.muted { "No changes recorded." }
        } @else {
            ul.changes { @for line in &changes { li { (text_of(line)) } } }
        }
        @if !conflicts.is_empty() {
            h2 { "Conflicts" }
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Kind" } th scope="col" { "Name" } th scope="col" { "External id" } th scope="col" { "Name held by" } } }
                    tbody {
                        @for conflict in &conflicts {
                            tr {
                                td { (field(conflict, "kind")) }
                                td { (field(conflict, "name")) }
                                td { code { (field(conflict, "external_id")) } }
                                td { (field(conflict, "held_by")) }
                            }
                        }
                    }
                }
            }
        }
        @if !warnings.is_empty() {
            h2 { "Warnings" }
            ul.changes { @for line in &warnings { li { (text_of(line)) } } }
        }
        p { a href="/ui/" { "Back to the overview" } }
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn field(value: &Value, key: &str) -> String {
    value.get(key).map(text_of).unwrap_or_default()
}
