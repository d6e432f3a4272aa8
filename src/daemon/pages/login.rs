//! Signing in with an admin token and signing out.
//!
//! The sign-in form has no session yet, so its CSRF token is a double-submit cookie: the
//! form page sets a random `idsync_login` cookie (on `/ui/login` only) and puts the same
//! value in the form; a post whose field and cookie differ is refused. Failed sign-ins are
//! limited per minute for the whole listener (429 past it).

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::layout::bare_page;
use super::{MAX_FORM_BYTES, SESSION_COOKIE, Shared, cookie, error_page, form_field, set_cookie};
use crate::store::admin_sessions;
use crate::store::tokens::random_secret;

const LOGIN_COOKIE: &str = "idsync_login";
const LOGIN_PATH: &str = "/ui/login";
/// How long a sign-in form stays usable.
const LOGIN_FORM_SECONDS: u64 = 600;

#[derive(Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a page under `/ui/`, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with("/ui/")
                && !path.contains("//")
                && !path.contains('\\')
                && !path.contains("/ui/logout") =>
        {
            path
        }
        _ => "/ui/",
    }
}

fn form_page(nonce: &str, next: &str, problem: Option<&str>) -> maud::Markup {
    bare_page(
        "Sign in",
        html! {
            @if let Some(problem) = problem {
                p.notice.error role="alert" { (problem) }
            }
            form.panel method="post" action=(LOGIN_PATH) {
                input type="hidden" name="csrf" value=(nonce);
                input type="hidden" name="next" value=(next);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                p.muted { "Create one with " code { "idsync admin-token create <your name>" } "." }
                button.primary type="submit" { "Sign in" }
            }
        },
    )
}

/// A fresh sign-in form (and its double-submit cookie).
fn fresh_form(
    state: &super::AdminState,
    status: StatusCode,
    next: &str,
    problem: Option<&str>,
) -> Response {
    let nonce = random_secret();
    let cookie = set_cookie(
        state,
        LOGIN_COOKIE,
        &nonce,
        LOGIN_PATH,
        Some(LOGIN_FORM_SECONDS),
    );
    (
        status,
        [(header::SET_COOKIE, cookie)],
        form_page(&nonce, next, problem),
    )
        .into_response()
}

/// `GET /ui/login`.
pub(super) async fn form(State(state): Shared, Query(query): Query<Next>) -> Response {
    fresh_form(
        &state,
        StatusCode::OK,
        safe_next(query.next.as_deref()),
        None,
    )
}

/// `POST /ui/login`: opens a session for a valid admin token.
pub(super) async fn sign_in(State(state): Shared, request: Request) -> Response {
    let expected = cookie(request.headers(), LOGIN_COOKIE).map(str::to_string);
    let bytes = match axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"),
    };
    let next = safe_next(form_field(&bytes, "next").as_deref()).to_string();
    let presented_nonce = form_field(&bytes, "csrf").unwrap_or_default();
    let nonce_ok = expected.is_some_and(|expected| {
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented_nonce.as_bytes()))
    });
    if !nonce_ok {
        tracing::warn!("admin sign-in without a valid form token refused");
        return fresh_form(
            &state,
            StatusCode::FORBIDDEN,
            &next,
            Some("The sign-in form had expired or did not come from this page. Try again."),
        );
    }
    let token = form_field(&bytes, "token").unwrap_or_default();
    let token = token.trim();
    let identity = if token.is_empty() {
        None
    } else {
        match super::super::admin::identify(&state, token).await {
            Ok(found) => found,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    };
    let Some(identity) = identity else {
        if state.sign_in_failures.check().is_err() {
            return fresh_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                Some("Too many failed sign-ins; wait a minute and try again."),
            );
        }
        tracing::warn!("admin sign-in with an unknown, revoked or expired token refused");
        return fresh_form(
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That admin token is not valid (unknown, revoked or expired)."),
        );
    };
    let idle = state.config.current().engine.admin_session_idle;
    let secret = match admin_sessions::open(
        &state.db,
        &identity.actor,
        identity.token_id.as_deref(),
        idle,
    )
    .await
    {
        Ok(secret) => secret,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tracing::info!(actor = %identity.actor, "admin signed in to the pages");
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, secret.expose(), "/ui", None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, "", LOGIN_PATH, Some(0)),
    );
    response
}

/// `POST /ui/logout`: ends the session (its CSRF token was checked on the way in).
pub(super) async fn sign_out(State(state): Shared, request: Request) -> Response {
    if let Some(secret) = cookie(request.headers(), SESSION_COOKIE)
        && let Err(e) = admin_sessions::close(&state.db, secret).await
    {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/ui", Some(0)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_of_this_site_are_gone_back_to() {
        assert_eq!(safe_next(Some("/ui/runs/4")), "/ui/runs/4");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(Some("/ui//evil.example")), "/ui/");
        assert_eq!(safe_next(Some("/ui/\\evil")), "/ui/");
        assert_eq!(safe_next(Some("/api/connectors")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }
}
