//! The mapping preview: an admin edits a mapping file on disk, then this page reads the
//! configuration again from disk (without applying it) and shows, for each connector
//! using the mapping, what a reconcile would change (a dry run over the stored mirror:
//! counts and the first changes of each kind by name). Apply reloads the configuration, as
//! SIGHUP does, and reconciles those connectors; the deletion limits still hold.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{counts_summary_of, csrf_field, page};
use super::{PageSession, Shared, error_page, html_page};
use crate::config::{Config, ConnectorSettings};
use crate::daemon::actions::audit;
use crate::daemon::admin::{Actor, AdminState};
use crate::store::audit::Action;
use crate::sync::{self, NoProgress, RunOptions, RunReport};

/// The connectors (enabled) that use mapping `name` in `config`, with whether each is a
/// SCIM tenant.
fn users_of(config: &Config, name: &str) -> Vec<(String, bool)> {
    config
        .connectors
        .values()
        .filter(|c| c.enabled && c.mapping == name)
        .map(|c| {
            (
                c.id.clone(),
                matches!(c.settings, ConnectorSettings::Scim(_)),
            )
        })
        .collect()
}

/// `GET /ui/mappings`: every mapping with the connectors using it.
pub(super) async fn list(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
) -> Response {
    let config = state.config.current();
    let body = html! {
        p { "Edit a mapping file on disk, then preview what it would change before applying it." }
        div.scroll {
            table {
                thead { tr { th scope="col" { "Mapping" } th scope="col" { "File" } th scope="col" { "Used by" } } }
                tbody {
                    @for (name, mapping) in &config.mappings {
                        tr {
                            th scope="row" { a href={ "/ui/mappings/" (name) } { (name) } }
                            td { code { (mapping.file.display()) } }
                            td {
                                @let used = users_of(&config, name);
                                @if used.is_empty() { span.muted { "no connector" } }
                                @else { (used.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    };
    html_page(page(&session, "Mappings", "/ui/mappings", body))
}

/// What a connector's reconcile would do (or failed to find out).
struct Preview {
    connector: String,
    outcome: Result<RunReport, String>,
}

/// Reconciles each enabled connector of `config` that uses mapping `name` (as a dry run:
/// nothing written), with that mapping as `config` has it.
async fn reconcile_users_of(
    state: &AdminState,
    config: &Config,
    name: &str,
    dry_run: bool,
) -> Vec<Preview> {
    let Some(mapping) = config.mappings.get(name) else {
        return Vec::new();
    };
    let directory = state.config.current().engine.target.directory();
    let mut out = Vec::new();
    for (connector, tenant) in users_of(config, name) {
        let options = RunOptions {
            dry_run,
            inactive_is_removal: tenant,
            ..RunOptions::default()
        };
        let outcome = sync::reconcile_to(
            &state.db,
            &*directory,
            &connector,
            mapping,
            options,
            &NoProgress,
        )
        .await
        .map_err(|e| e.to_string());
        if let (false, Ok(report)) = (dry_run, &outcome) {
            crate::daemon::run_metrics::record_run(&connector, report);
        }
        out.push(Preview { connector, outcome });
    }
    out
}

fn preview_section(previews: &[Preview]) -> Markup {
    html! {
        @for item in previews {
            section.panel aria-labelledby={ "preview-" (item.connector) } {
                h2 id={ "preview-" (item.connector) } { (item.connector) }
                @match &item.outcome {
                    Err(problem) => p.notice.error role="alert" { (problem) },
                    Ok(report) => {
                        p {
                            strong { (counts_summary_of(&report.counts)) }
                            @if report.outcome == crate::store::runs::Outcome::Held {
                                " " span.badge.held { "would be held" }
                                " (past the deletion limits: applying leaves it held for confirmation)"
                            }
                        }
                        @if report.preview.is_empty() {
                            p.muted { "Nothing would change." }
                        } @else {
                            ul.changes.diff { @for line in &report.preview { li { (line) } } }
                        }
                        @if let Some(message) = &report.message { p.muted { (message) } }
                    }
                }
            }
        }
    }
}

/// `GET /ui/mappings/{name}`: the file on disk, and what it would change.
pub(super) async fn show(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Path(name): Path<String>,
) -> Response {
    let running = state.config.current();
    let on_disk = match Config::load(&running.path) {
        Ok(config) => config,
        Err(problems) => {
            let body = html! {
                p.notice.error role="alert" { "The configuration on disk has problems; nothing can be previewed until they are fixed:" }
                pre { (problems.to_string()) }
            };
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                html_page(page(
                    &session,
                    &format!("Mapping {name}"),
                    "/ui/mappings",
                    body,
                )),
            )
                .into_response();
        }
    };
    let Some(mapping) = on_disk.mappings.get(&name) else {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("there is no mapping `{name}` on disk"),
        );
    };
    let edited = running
        .mappings
        .get(&name)
        .is_none_or(|live| live.fingerprint != mapping.fingerprint);
    let text = std::fs::read_to_string(&mapping.file).unwrap_or_default();
    let previews = reconcile_users_of(&state, &on_disk, &name, true).await;
    let body = html! {
        @if edited {
            p.notice.warning role="status" { "The file on disk differs from the running configuration. Below is what applying it would change." }
        } @else {
            p.notice role="status" { "The file on disk is the one running. Below is what a reconcile would change now (normally nothing)." }
        }
        h2 { "What it would change" }
        @if previews.is_empty() { p.muted { "No enabled connector uses this mapping." } }
        (preview_section(&previews))
        @if edited {
            form.panel method="post" action={ "/ui/mappings/" (name) "/apply" } {
                (csrf_field(&session))
                p { "Apply reloads the configuration from disk (as SIGHUP does) and reconciles the connectors above. The deletion limits still hold." }
                button.primary type="submit" { "Apply" }
            }
        }
        details {
            summary { "The file: " code { (mapping.file.display()) } }
            pre { (text) }
        }
    };
    html_page(page(
        &session,
        &format!("Mapping {name}"),
        "/ui/mappings",
        body,
    ))
}

/// `POST /ui/mappings/{name}/apply`: reloads, then reconciles each connector using it.
pub(super) async fn apply(
    State(state): Shared,
    Extension(actor): Extension<Actor>,
    Extension(session): Extension<PageSession>,
    Path(name): Path<String>,
) -> Response {
    if let Err(e) = state.reloader.reload().await {
        return error_page(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string());
    }
    let config = state.config.current();
    if !config.mappings.contains_key(&name) {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("there is no mapping `{name}`"),
        );
    }
    audit(
        &state,
        &actor,
        Action::MappingApply,
        &name,
        "reloaded and reconciled from the admin pages",
    )
    .await;
    let previews = reconcile_users_of(&state, &config, &name, false).await;
    if previews.is_empty() {
        return Redirect::to(&format!("/ui/mappings/{name}")).into_response();
    }
    let body = html! {
        p.notice role="status" { "Applied: the configuration was reloaded and the connectors reconciled." }
        (preview_section(&previews))
        p { a href="/ui/" { "Back to the overview" } }
    };
    html_page(page(
        &session,
        &format!("Mapping {name} applied"),
        "/ui/mappings",
        body,
    ))
}
