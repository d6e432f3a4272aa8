//! Held runs and held SCIM tenants: what each would remove (counts against the mapping's
//! limits, the first names), and confirm or discard, each behind a second page that asks
//! again (the second click). Both record the admin in the audit trail.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{csrf_field, page, time};
use super::{PageSession, Shared, error_page, html_page};
use crate::daemon::actions::{self, Confirmed};
use crate::daemon::admin::{Actor, AdminState};
use crate::store::holds::{self, Hold};
use crate::store::runs::{self, RunRecord};

/// What is held for one connector: a pull run or a tenant's hold.
enum Held {
    Run(RunRecord),
    Tenant(Hold),
}

async fn everything_held(state: &AdminState) -> Result<Vec<(String, Held)>, String> {
    let pulled = runs::held_runs(state.db.pool())
        .await
        .map_err(|e| e.to_string())?;
    let tenants = holds::list(&state.db).await.map_err(|e| e.to_string())?;
    Ok(pulled
        .into_iter()
        .map(|run| (run.connector.clone(), Held::Run(run)))
        .chain(
            tenants
                .into_iter()
                .map(|hold| (hold.tenant.clone(), Held::Tenant(hold))),
        )
        .collect())
}

/// The first removals of a run by name (from its recorded changes).
fn removals(run: &RunRecord) -> Vec<String> {
    run.details
        .as_ref()
        .and_then(|d| d.get("changes"))
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .filter(|line| {
                    line.starts_with("disable ")
                        || line.starts_with("delete ")
                        || line.starts_with("remove ")
                        || line.starts_with("  ...")
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A held run's removals against its mapping's limits.
fn against_limits(state: &AdminState, run: &RunRecord) -> Markup {
    let config = state.config.current();
    let limits = config
        .connector(&run.connector)
        .map(|connector| config.mapping_for(connector).limits);
    let c = &run.counts;
    let users = c.users_disabled + c.users_deleted;
    html! {
        ul {
            li {
                strong { (users) } " users would be disabled or deleted"
                @if let Some(limits) = limits {
                    " (limit " (limits.max_deletes) ", or " (limits.max_delete_percent) "% of the users)"
                }
            }
            li { strong { (c.groups_deleted) } " groups would be deleted" }
            li {
                strong { (c.memberships_removed) } " memberships would be removed"
                @if let Some(limits) = limits {
                    " (limit " (limits.max_membership_removals) ", or "
                    (limits.max_membership_removal_percent) "%)"
                }
            }
        }
    }
}

fn run_card(state: &AdminState, session: &PageSession, run: &RunRecord, ask: bool) -> Markup {
    let names = removals(run);
    html! {
        section.panel aria-labelledby={ "held-" (run.connector) } {
            h2 id={ "held-" (run.connector) } { (run.connector) }
            p {
                a href={ "/ui/runs/" (run.id) } { "Run " (run.id) } ", held at " (time(&run.started_at))
                @if let Some(message) = &run.message { ": " (message) }
            }
            (against_limits(state, run))
            @if !names.is_empty() {
                h3 { "What it would remove" }
                ul.changes { @for name in &names { li { (name) } } }
            }
            @if ask {
                p {
                    a.button href={ "/ui/held/" (run.connector) "/confirm" } { "Confirm…" }
                    " "
                    a.button href={ "/ui/held/" (run.connector) "/discard" } { "Discard…" }
                }
            } @else {
                (csrf_field(session))
            }
        }
    }
}

fn tenant_card(hold: &Hold, ask: bool) -> Markup {
    html! {
        section.panel aria-labelledby={ "held-" (hold.tenant) } {
            h2 id={ "held-" (hold.tenant) } { (hold.tenant) " " span.muted { "(SCIM tenant)" } }
            p { "Held at " (time(&hold.held_at)) ": " (hold.reason) }
            @if let Some(run) = hold.run_id {
                p { a href={ "/ui/runs/" (run) } { "The run that held it" } }
            }
            @if ask {
                p { a.button href={ "/ui/held/" (hold.tenant) "/confirm" } { "Confirm…" } }
            }
        }
    }
}

/// `GET /ui/held`.
pub(super) async fn list(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
) -> Response {
    let held = match everything_held(&state).await {
        Ok(held) => held,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let body = html! {
        @if held.is_empty() {
            p.notice role="status" { "Nothing is held." }
        }
        @for (_, item) in &held {
            @match item {
                Held::Run(run) => (run_card(&state, &session, run, true)),
                Held::Tenant(hold) => (tenant_card(hold, true)),
            }
        }
    };
    html_page(page(&session, "Held runs", "/ui/held", body))
}

/// The page that asks again before `what` ("confirm" or "discard") of connector `id`.
async fn ask(state: &AdminState, session: &PageSession, id: &str, what: &str) -> Response {
    let held = match everything_held(state).await {
        Ok(held) => held,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let Some((_, item)) = held.into_iter().find(|(connector, _)| connector == id) else {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("nothing is held for `{id}`"),
        );
    };
    let (card, question, button_text) = match (&item, what) {
        (Held::Run(run), "confirm") => (
            run_card(state, session, run, false),
            "Run the connector again with the deletion limits lifted? What is listed above will be removed.",
            "Yes, remove them",
        ),
        (Held::Run(run), _) => (
            run_card(state, session, run, false),
            "Discard this held run? Nothing is removed; the next run is checked against the limits again.",
            "Yes, discard it",
        ),
        (Held::Tenant(hold), "confirm") => (
            tenant_card(hold, false),
            "Apply what the identity provider pushed, with the deletion limits lifted?",
            "Yes, apply it",
        ),
        (Held::Tenant(_), _) => {
            return error_page(
                StatusCode::CONFLICT,
                "a SCIM tenant's hold cannot be discarded: fix the assignments in the identity \
                 provider (it pushes the users again), then confirm",
            );
        }
    };
    let body = html! {
        (card)
        form.panel method="post" action={ "/ui/held/" (id) "/" (what) } {
            (csrf_field(session))
            p { strong { (question) } }
            button.danger type="submit" { (button_text) }
            " "
            a.button href="/ui/held" { "Cancel" }
        }
    };
    let title = format!(
        "{} {id}?",
        if what == "confirm" {
            "Confirm"
        } else {
            "Discard"
        }
    );
    html_page(page(session, &title, "/ui/held", body))
}

/// `GET /ui/held/{id}/confirm`: asks again.
pub(super) async fn ask_confirm(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(id): Path<String>,
) -> Response {
    ask(&state, &session, &id, "confirm").await
}

/// `GET /ui/held/{id}/discard`: asks again.
pub(super) async fn ask_discard(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(id): Path<String>,
) -> Response {
    ask(&state, &session, &id, "discard").await
}

/// `POST /ui/held/{id}/confirm`: applies it, then shows the run that did.
pub(super) async fn confirm(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    let run_id = match actions::confirm(&state, &actor, &id).await {
        Ok(Confirmed::Tenant(report)) => report.run_id,
        Ok(Confirmed::Run(run)) => run.map(|r| r.id),
        Err(e) => return error_page(e.status(), &e.to_string()),
    };
    match run_id {
        Some(run) => Redirect::to(&format!("/ui/runs/{run}")).into_response(),
        None => Redirect::to("/ui/held").into_response(),
    }
}

/// `POST /ui/held/{id}/discard`: drops the held run, back to the held runs.
pub(super) async fn discard(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match actions::discard(&state, &actor, &id).await {
        Ok(_) => Redirect::to("/ui/held").into_response(),
        Err(e) => error_page(e.status(), &e.to_string()),
    }
}
