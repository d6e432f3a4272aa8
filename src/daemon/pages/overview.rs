//! The overview: every connector and SCIM tenant with its kind, schedule, next run and
//! last run, running, held and failed ones marked, and a run-now button for pull
//! connectors. The page reloads itself while a run is in progress.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::chart::{Bar, bars};
use super::layout::{
    counts_summary, csrf_field, duration, outcome_badge, page, refreshing_page, run_seconds, time,
};
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
    let statuses = match connector_statuses(&state, None).await {
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
                                a href={ "/ui/connectors/" (status.id) } { (status.id) }
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

/// Runs a connector's page charts and lists.
const CONNECTOR_RUNS: i64 = 50;

/// `GET /ui/connectors/{id}`: the connector's settings at a glance, its run durations and
/// changes over time as charts, and its recent runs.
pub(super) async fn connector(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(id): Path<String>,
) -> Response {
    let statuses = match connector_statuses(&state, Some(&id)).await {
        Ok(list) => list,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Some(status) = statuses.into_iter().find(|s| s.id == id) else {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("there is no connector `{id}`"),
        );
    };
    let mut runs =
        match crate::store::runs::recent_runs(state.db.pool(), Some(&id), CONNECTOR_RUNS).await {
            Ok(runs) => runs,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    runs.reverse();
    let tone = |outcome: Outcome| match outcome {
        Outcome::Held => "held",
        Outcome::Failed | Outcome::Interrupted => "failed",
        _ => "ok",
    };
    let label = |run: &crate::store::runs::RunRecord| {
        format!(
            "run {} at {} ({})",
            run.id,
            run.started_at
                .get(..16)
                .unwrap_or(&run.started_at)
                .replace('T', " "),
            run.outcome.as_str()
        )
    };
    let durations: Vec<Bar> = runs
        .iter()
        .filter_map(|run| {
            Some(Bar {
                label: label(run),
                value: run_seconds(run)?,
                tone: tone(run.outcome),
            })
        })
        .collect();
    let changes: Vec<Bar> = runs
        .iter()
        .map(|run| {
            let total = run.counts.writes();
            Bar {
                label: label(run),
                value: total as f64,
                tone: tone(run.outcome),
            }
        })
        .collect();
    let body = html! {
        section.panel aria-labelledby="facts" {
            h2 #facts { "Summary" }
            dl.facts {
                dt { "Kind" } dd { (status.kind) @if !status.enabled { " (disabled)" } }
                dt { "Mapping" } dd { (status.mapping) }
                dt { "Schedule" } dd {
                    @match &status.schedule { Some(s) => code { (s) }, None => span.muted { "none" } }
                }
                dt { "Next run" } dd {
                    @match &status.next_run { Some(next) => (time(next)), None => "—" }
                }
                dt { "Running" } dd { @if status.running { span.badge.running { "running" } } @else { "no" } }
            }
        }
        h2 { "Over time" }
        p.muted { "The last " (runs.len()) " runs, oldest on the left; held runs in amber, failed in red." }
        div.charts {
            (bars("Duration of each run", " s", &durations))
            (bars("Changes of each run (a held run's were not applied)", "", &changes))
        }
        h2 { "Recent runs" }
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "Started" } th scope="col" { "Outcome" }
                    th scope="col" { "Read" } th scope="col" { "Changes" } th scope="col" class="num" { "Took" }
                } }
                tbody {
                    @for run in runs.iter().rev() {
                        tr {
                            th scope="row" { a href={ "/ui/runs/" (run.id) } { (run.id) } }
                            td { (time(&run.started_at)) }
                            td { (outcome_badge(run.outcome)) }
                            td { (run.read_mode.as_deref().unwrap_or("—")) }
                            td { (counts_summary(run)) }
                            td.num { (duration(run)) }
                        }
                    }
                }
            }
        }
    };
    html_page(page(&session, &format!("Connector {id}"), "/ui/", body))
}
