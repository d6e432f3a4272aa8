//! The admin pages: HTML rendered on the server, under `/ui/` on the admin listener, for
//! admins who would rather look at a page than a log. They work without JavaScript.
//!
//! An admin signs in with an admin token (`idsync admin-token create`, or `[admin] token`)
//! and gets a session cookie (HttpOnly, SameSite=Strict, Secure when `[admin] public_url`
//! is https; see `store::admin_sessions`). Every form carries the session's CSRF token and
//! a post without it is refused (403) before its handler runs; the listener's origin check
//! refuses cross-origin requests before that. Actions record the signed-in admin in the
//! audit trail, as the JSON API does, through the same code (`daemon::actions`).
//!
//! | page | what |
//! | --- | --- |
//! | `GET /ui/` | every connector and tenant: kind, schedule, next run, last run, run now |
//! | `GET /ui/connectors/{id}` | one connector: its run durations and changes over time (SVG charts), its recent runs |
//! | `GET /ui/runs/{id}` | one run: outcome, read mode, counts, the changes, conflicts, warnings |
//! | `GET /ui/held` | held runs and held tenants, what they would remove, confirm or discard |
//! | `GET /ui/directory` | users or groups searched with a SCIM filter, by connector |
//! | `GET /ui/directory/users/{id}` | a user: direct groups, effective groups and the nesting path of each |
//! | `GET /ui/directory/groups/{id}` | a group: its members, nested groups as a tree |
//! | `GET /ui/mappings/{name}` | a mapping edited on disk: what a reconcile would change, per connector; apply (reload and reconcile) |
//! | `GET /ui/events` | the SCIM event log, filtered by tenant, status, method, time and text |
//! | `GET /ui/events.csv` | the same filter as CSV |

mod chart;
mod directory;
mod events;
mod held;
mod layout;
mod login;
mod mappings;
mod overview;
mod runs;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use subtle::ConstantTimeEq;

use super::admin::{Actor, AdminState};
use crate::store::admin_sessions;

type Shared = State<Arc<AdminState>>;

/// The session cookie's name.
const SESSION_COOKIE: &str = "idsync_session";
/// The largest form a page posts (a CSRF token and a few fields).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The signed-in admin of a page request.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub actor: String,
    pub csrf: String,
}

/// The page routes, to merge into the admin router (which adds the origin check).
pub fn router(state: Arc<AdminState>) -> Router<Arc<AdminState>> {
    let signed_in = Router::new()
        .route("/ui/", get(overview::show))
        .route("/ui/connectors/{id}/run", post(overview::run_now))
        .route("/ui/runs/{id}", get(runs::show))
        .route("/ui/connectors/{id}", get(overview::connector))
        .route("/ui/held", get(held::list))
        .route("/ui/events", get(events::list))
        .route("/ui/mappings", get(mappings::list))
        .route("/ui/mappings/{name}", get(mappings::show))
        .route("/ui/mappings/{name}/apply", post(mappings::apply))
        .route("/ui/directory", get(directory::search))
        .route("/ui/directory/users/{id}", get(directory::user))
        .route("/ui/directory/groups/{id}", get(directory::group))
        .route("/ui/events.csv", get(events::export))
        .route(
            "/ui/held/{id}/confirm",
            get(held::ask_confirm).post(held::confirm),
        )
        .route(
            "/ui/held/{id}/discard",
            get(held::ask_discard).post(held::discard),
        )
        .route("/ui/logout", post(login::sign_out))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/style.css", get(style))
        .merge(signed_in)
        .with_state(state.clone())
        .layer(middleware::from_fn(no_store))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

/// Pages show live state and are for one admin: no cache keeps them, no frame shows them.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for `name=value` on `path`: HttpOnly and SameSite=Strict always, Secure when
/// browsers reach the pages over https; `max_age` None for a cookie that ends with the
/// browser session (the server ends it sooner when idle).
fn set_cookie(
    state: &AdminState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let secure = state
        .config
        .current()
        .engine
        .admin_public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https");
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    // The value is hex from our own random source: always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Lets a page request through with its [`PageSession`] (and [`Actor`]) when it carries a
/// live session; sends the browser to the sign-in page otherwise. Posts must carry the
/// session's CSRF token.
async fn require_session(State(state): Shared, request: Request, next: Next) -> Response {
    let idle = state.config.current().engine.admin_session_idle;
    let Some(secret) = cookie(request.headers(), SESSION_COOKIE).map(str::to_string) else {
        return to_sign_in(&request);
    };
    let session = match admin_sessions::check(&state.db, &secret, idle, state.token.is_some()).await
    {
        Ok(Some(session)) => session,
        Ok(None) => return to_sign_in(&request),
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let session = PageSession {
        actor: session.actor,
        csrf: session.csrf,
    };
    let mut request = if request.method() == Method::POST {
        match with_checked_csrf(request, &session.csrf).await {
            Ok(request) => request,
            Err(refusal) => return refusal,
        }
    } else {
        request
    };
    request
        .extensions_mut()
        .insert(Actor(session.actor.clone()));
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// The sign-in page, coming back to the page asked for when it was a page to look at.
fn to_sign_in(request: &Request) -> Response {
    if request.method() != Method::GET {
        return error_page(
            StatusCode::FORBIDDEN,
            "your session has ended; sign in again and repeat the action",
        );
    }
    let next = request
        .uri()
        .path_and_query()
        .map_or("/ui/", |p| p.as_str())
        .to_string();
    let target = format!(
        "/ui/login?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    Redirect::to(&target).into_response()
}

/// Reads the posted form (at most [`MAX_FORM_BYTES`]), refuses it unless its `csrf` field
/// is `expected`, and gives the request back with its body for the handler.
async fn with_checked_csrf(request: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    let presented = form_field(&bytes, "csrf").unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        tracing::warn!(path = %parts.uri.path(), "admin page post without a valid CSRF token refused");
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "the form's security token is missing or stale; reload the page and try again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A query field that holds something other than white space, trimmed.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// One field of a url-encoded form.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A page saying what went wrong, with its status.
fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        p.notice.error role="alert" { (message) }
        p { a href="/ui/" { "Back to the overview" } }
    };
    (
        status,
        layout::bare_page(status.canonical_reason().unwrap_or("Error"), body),
    )
        .into_response()
}

/// The response of a page handler: a page or a redirect.
fn html_page(markup: Markup) -> Response {
    markup.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; idsync_session_x=2; idsync_session=abc"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&csrf=x%2By+z", "csrf").as_deref(),
            Some("x+y z")
        );
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }
}
