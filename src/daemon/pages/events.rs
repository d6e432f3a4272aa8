//! The SCIM event log: the requests identity providers sent, filtered by tenant, status
//! (`404`, `4xx`), method, time and text, newest first in pages of 50, each with its
//! request and response bodies (secrets were masked before they were stored); and the
//! current filter exported as CSV.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{page, time};
use super::{PageSession, Shared, error_page, html_page, present};
use crate::config::ConnectorSettings;
use crate::daemon::admin::AdminState;
use crate::store::events::{self, Event, EventQuery, MAX_SEARCH_TEXT, StatusMatch};

/// Events on one page.
const PAGE_SIZE: u64 = 50;
/// The most rows one CSV export holds.
pub const MAX_CSV_ROWS: u64 = 10_000;
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The filter as the form sends it (every field may be empty).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    tenant: Option<String>,
    status: Option<String>,
    method: Option<String>,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` field), read as UTC.
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    before: Option<i64>,
}

/// A `datetime-local` value (or RFC 3339) as RFC 3339 UTC.
fn utc(value: &str, field: &str) -> Result<String, String> {
    let parsed = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .map(|naive| naive.and_utc())
        .or_else(|_| {
            chrono::DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&chrono::Utc))
        })
        .map_err(|_| format!("{field} `{value}` is not a time such as 2026-12-06T14:30 (UTC)"))?;
    Ok(parsed.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl Filter {
    /// The query this filter asks, or what is wrong with it.
    fn query(&self, limit: u64) -> Result<EventQuery, String> {
        let status = present(&self.status)
            .map(str::parse::<StatusMatch>)
            .transpose()?;
        let method = match present(&self.method) {
            Some(m) if METHODS.iter().any(|known| known.eq_ignore_ascii_case(m)) => {
                Some(m.to_ascii_uppercase())
            }
            Some(m) => return Err(format!("`{m}` is not one of {}", METHODS.join(", "))),
            None => None,
        };
        let text = present(&self.q).map(str::to_string);
        if text
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_SEARCH_TEXT)
        {
            return Err(format!(
                "the text to search for is longer than {MAX_SEARCH_TEXT} characters"
            ));
        }
        Ok(EventQuery {
            tenant: present(&self.tenant).map(str::to_string),
            status,
            since: present(&self.since).map(|v| utc(v, "from")).transpose()?,
            until: present(&self.until).map(|v| utc(v, "until")).transpose()?,
            method,
            text,
            before_id: self.before,
            limit,
        })
    }

    /// The filter as a query string (without `before`), for the CSV and the next page.
    fn query_string(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("tenant", &self.tenant),
            ("status", &self.status),
            ("method", &self.method),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
        ] {
            if let Some(value) = present(value) {
                out.append_pair(key, value);
            }
        }
        out.finish()
    }
}

fn tenants(state: &AdminState) -> Vec<String> {
    let config = state.config.current();
    config
        .connectors
        .values()
        .filter(|c| matches!(c.settings, ConnectorSettings::Scim(_)))
        .map(|c| c.id.clone())
        .collect()
}

fn filter_form(filter: &Filter, tenants: &[String]) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        form.panel.filters method="get" action="/ui/events" role="search" {
            div.fields {
                div {
                    label for="tenant" { "Tenant" }
                    select #tenant name="tenant" {
                        option value="" { "All tenants" }
                        @for tenant in tenants {
                            option value=(tenant) selected[present(&filter.tenant) == Some(tenant.as_str())] { (tenant) }
                        }
                    }
                }
                div {
                    label for="status" { "Status" }
                    input #status type="text" name="status" value=(value(&filter.status)) placeholder="404 or 4xx" maxlength="3";
                }
                div {
                    label for="method" { "Method" }
                    select #method name="method" {
                        option value="" { "Any" }
                        @for method in METHODS {
                            option value=(method) selected[present(&filter.method).is_some_and(|m| m.eq_ignore_ascii_case(method))] { (method) }
                        }
                    }
                }
                div {
                    label for="since" { "From (UTC)" }
                    input #since type="datetime-local" name="since" value=(value(&filter.since));
                }
                div {
                    label for="until" { "Until (UTC)" }
                    input #until type="datetime-local" name="until" value=(value(&filter.until));
                }
                div {
                    label for="q" { "Text" }
                    input #q type="search" name="q" value=(value(&filter.q)) maxlength=(MAX_SEARCH_TEXT) placeholder="a user name, a path, an error";
                }
            }
            p {
                button.primary type="submit" { "Filter" }
                " "
                a.button href="/ui/events" { "Clear" }
            }
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=399 => "succeeded",
        400..=499 => "held",
        _ => "failed",
    }
}

fn event_rows(found: &[Event]) -> Markup {
    html! {
        div.scroll {
            table {
                caption { (found.len()) @if found.len() == 1 { " request" } @else { " requests" } ", newest first" }
                thead {
                    tr {
                        th scope="col" { "Time" }
                        th scope="col" { "Tenant" }
                        th scope="col" { "Request" }
                        th scope="col" { "Status" }
                        th scope="col" class="num" { "ms" }
                        th scope="col" { "Client" }
                    }
                }
                tbody {
                    @for event in found {
                        tr {
                            td { (time(&event.at)) }
                            td { (event.tenant) }
                            td {
                                details {
                                    summary { code { (event.method) " " (event.path) } }
                                    p.muted { (event.operation) }
                                    @if let Some(body) = &event.request_body {
                                        h3 { "Request body" }
                                        pre { (body) }
                                    }
                                    @if let Some(body) = &event.response_body {
                                        h3 { "Response body" }
                                        pre { (body) }
                                    }
                                }
                            }
                            td { span class={ "badge " (status_class(event.status)) } { (event.status) } }
                            td.num { (format!("{:.1}", event.duration_ms)) }
                            td { (event.client.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/events`.
pub(super) async fn list(
    State(state): Shared,
    Extension(session): Extension<PageSession>,
    Query(filter): Query<Filter>,
) -> Response {
    let tenants = tenants(&state);
    let (found, problem) = match filter.query(PAGE_SIZE) {
        Ok(query) => match events::query(&state.db, &query).await {
            Ok(found) => (found, None),
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let query_string = filter.query_string();
    let older = (found.len() as u64 == PAGE_SIZE)
        .then(|| found.last().and_then(|e| e.id))
        .flatten();
    let body = html! {
        (filter_form(&filter, &tenants))
        @if let Some(problem) = &problem {
            p.notice.error role="alert" { (problem) }
        } @else {
            p {
                a.button href={ "/ui/events.csv?" (query_string) } download { "Export this filter as CSV" }
                " " span.muted { "(up to " (MAX_CSV_ROWS) " requests)" }
            }
            @if found.is_empty() {
                p.notice role="status" { "No requests match." }
            } @else {
                (event_rows(&found))
            }
            @if let Some(before) = older {
                p { a href={ "/ui/events?" (query_string) "&before=" (before) } { "Older requests" } }
            }
        }
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        html_page(page(&session, "SCIM event log", "/ui/events", body)),
    )
        .into_response()
}

/// A CSV cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, tab or
/// carriage return is a formula there, and a client chooses what it sends
/// (<https://owasp.org/www-community/attacks/CSV_Injection>).
fn inert(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// The events as CSV, a header row first.
pub fn to_csv(found: &[Event]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "id",
        "time",
        "tenant",
        "method",
        "path",
        "status",
        "duration_ms",
        "operation",
        "client",
        "rejected",
        "request_body",
        "response_body",
    ])?;
    for e in found {
        writer.write_record([
            e.id.map(|id| id.to_string()).unwrap_or_default(),
            e.at.clone(),
            inert(&e.tenant),
            e.method.clone(),
            inert(&e.path),
            e.status.to_string(),
            format!("{:.1}", e.duration_ms),
            inert(&e.operation),
            inert(e.client.as_deref().unwrap_or("")),
            e.rejected.to_string(),
            inert(e.request_body.as_deref().unwrap_or("")),
            inert(e.response_body.as_deref().unwrap_or("")),
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// `GET /ui/events.csv`: the current filter's events (up to [`MAX_CSV_ROWS`]).
pub(super) async fn export(State(state): Shared, Query(filter): Query<Filter>) -> Response {
    let query = match filter.query(MAX_CSV_ROWS) {
        Ok(query) => query,
        Err(problem) => return error_page(StatusCode::BAD_REQUEST, &problem),
    };
    let found = match events::query(&state.db, &query).await {
        Ok(found) => found,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match to_csv(&found) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"idsync-scim-events.csv\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_as_a_query_and_refuses_what_it_cannot_read() {
        let filter = Filter {
            tenant: Some("okta".into()),
            status: Some("4xx".into()),
            method: Some("patch".into()),
            since: Some("2026-12-06T14:30".into()),
            q: Some("  ".into()),
            ..Filter::default()
        };
        let query = filter.query(50).expect("query");
        assert_eq!(query.status, Some(StatusMatch::Class(4)));
        assert_eq!(query.method.as_deref(), Some("PATCH"));
        assert_eq!(query.since.as_deref(), Some("2026-12-06T14:30:00.000Z"));
        assert_eq!(query.text, None, "blank text searches nothing");
        for bad in [
            Filter {
                status: Some("9xx".into()),
                ..Filter::default()
            },
            Filter {
                method: Some("TRACE".into()),
                ..Filter::default()
            },
            Filter {
                until: Some("yesterday".into()),
                ..Filter::default()
            },
            Filter {
                q: Some("x".repeat(MAX_SEARCH_TEXT + 1)),
                ..Filter::default()
            },
        ] {
            assert!(bad.query(50).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn csv_cells_are_never_formulas() {
        let event = Event {
            id: Some(7),
            tenant: "acme".into(),
            at: "2026-12-06T10:00:00.000Z".into(),
            method: "POST".into(),
            path: "/Users".into(),
            status: 201,
            duration_ms: 2.5,
            operation: "create user =HYPERLINK(\"http://evil\")".into(),
            client: Some("@evil".into()),
            request_body: Some("=1+1".into()),
            response_body: Some("{\"id\":\"1\"}".into()),
            rejected: false,
        };
        let text = String::from_utf8(to_csv(&[event]).expect("csv")).expect("utf-8");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().expect("row").expect("record");
        assert_eq!(&row[0], "7");
        assert_eq!(&row[8], "'@evil");
        assert_eq!(&row[10], "'=1+1");
        assert_eq!(&row[11], "{\"id\":\"1\"}");
        assert_eq!(&row[6], "2.5");
    }
}
