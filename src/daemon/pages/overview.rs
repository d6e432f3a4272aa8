//! The overview: every connector and SCIM tenant with its kind, schedule, next run and
//! last run, running, held and failed ones marked, and a run-now button for pull
//! connectors. The page reloads itself while a run is in progress.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{counts_summary, csrf_field, duration, outcome_badge, refreshing_page, time};
use super::{PageSession, Shared, error_page, html_page};
use crate::daemon::actions;
use crate::daemon::admin::{Actor, connector_statuses};
use crate::store::runs::Outcome;

#[derive(Deserialize)]
pub(super) struct Notice {
    started: Option<String>,
}

/// `GET /ui/`.
pub(super) async fn show(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Query(notice): Query<Notice>,
) -> Response {
    let statuses = match connector_statuses(&state).await {
        Ok(list) => list,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let any_running = statuses.iter().any(|s| s.running);
    let started = notice
        .started
        .filter(|id| statuses.iter().any(|s| &s.id == id));
    let body = html! {
        @if let Some(id) = &started {
            p.notice role="status" { "A run of " strong { (id) } " started. This page reloads until it ends." }
        }
        div.scroll {
            table {
                caption { (statuses.len()) " connectors and SCIM tenants" }
                thead {
                    tr {
                        th scope="col" { "Connector" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Schedule" }
                        th scope="col" { "Next run" }
                        th scope="col" { "Last run" }
                        th scope="col" { "Changes" }
                        th scope="col" class="num" { "Took" }
                        th scope="col" { span.muted { "Action" } }
                    }
                }
                tbody {
                    @for status in &statuses {
                        @let outcome = status.last_run.as_ref().map(|r| r.outcome);
                        @let class = if status.running || outcome == Some(Outcome::Held) {
                            "attention"
                        } else if matches!(outcome, Some(Outcome::Failed | Outcome::Interrupted)) {
                            "failing"
                        } else {
                            ""
                        };
                        tr class=(class) id={ "connector-" (status.id) } {
                            th scope="row" {
                                (status.id)
                                @if !status.enabled { " " span.muted { "(disabled)" } }
                            }
                            td { (status.kind) }
                            td {
                                @match &status.schedule {
                                    Some(schedule) => code { (schedule) },
                                    None if status.kind == "scim" => span.muted { "pushed by the IdP" },
                                    None => span.muted { "on demand" },
                                }
                            }
                            td {
                                @match &status.next_run {
                                    Some(next) => (time(next)),
                                    None => span.muted { "—" },
                                }
                            }
                            td {
                                @if status.running {
                                    span.badge.running { "running" }
                                    " "
                                }
                                @match &status.last_run {
                                    Some(run) => {
                                        a href={ "/ui/runs/" (run.id) } { (outcome_badge(run.outcome)) }
                                        " " (time(&run.started_at))
                                        @if let Some(mode) = &run.read_mode { " " span.muted { "(" (mode) ")" } }
                                    }
                                    None => span.badge.none { "never run" },
                                }
                            }
                            td {
                                @if let Some(run) = &status.last_run { (counts_summary(run)) }
                            }
                            td.num {
                                @if let Some(run) = &status.last_run { (duration(run)) }
                            }
                            td {
                                @if status.kind != "scim" && status.enabled {
                                    form.inline method="post" action={ "/ui/connectors/" (status.id) "/run" } {
                                        (csrf_field(&session))
                                        button type="submit" disabled[status.running]
                                            aria-label={ "Run " (status.id) " now" } { "Run now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_page(refreshing_page(
        &session,
        "Overview",
        "/ui/",
        (any_running || started.is_some()).then_some((3, "/ui/")),
        body,
    ))
}

/// `POST /ui/connectors/{id}/run`: starts a run, back to the overview.
pub(super) async fn run_now(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match actions::run_now(&state, &actor, &id).await {
        Ok(()) => {
            let query = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
            axum::response::IntoResponse::into_response(Redirect::to(&format!(
                "/ui/?started={query}"
            )))
        }
        Err(e) => error_page(e.status(), &e.to_string()),
    }
}
