//! Tests of [`HttpClient`] and the token sources against fake axum servers
//! on 127.0.0.1. Retry tests run with paused tokio time (no real waiting);
//! their clients have no connect/read timeouts, because with paused time the
//! clock auto-advances while a socket is pending and would fire them early.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::*;
use crate::config::SecretString;

type Hits = Arc<AtomicU32>;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn options() -> HttpOptions {
    HttpOptions {
        connect_timeout: None,
        read_timeout: None,
        requests_per_second: NonZeroU32::new(1000),
        ..HttpOptions::default()
    }
}

fn client() -> HttpClient {
    HttpClient::new(options()).unwrap()
}

/// A server whose `/r` answers `fail(n)` for hit `n` (1-based), else 200.
async fn scripted(fail: fn(u32) -> Option<Response>) -> (String, Hits) {
    let hits: Hits = Arc::default();
    let app = Router::new()
        .route(
            "/r",
            get(move |State(h): State<Hits>| async move {
                let n = h.fetch_add(1, Ordering::SeqCst) + 1;
                fail(n).unwrap_or_else(|| axum::Json(json!({"ok": true, "hit": n})).into_response())
            }),
        )
        .with_state(hits.clone());
    (serve(app).await, hits)
}

#[tokio::test(start_paused = true)]
async fn retry_after_429_waits_virtual_time() {
    let (base, hits) = scripted(|n| {
        (n == 1).then(|| (AxStatus::TOO_MANY_REQUESTS, [("retry-after", "2")]).into_response())
    })
    .await;
    let started = tokio::time::Instant::now();
    let (body, _) = client().get_json(&format!("{base}/r"), &[]).await.unwrap();
    assert_eq!(body["hit"], 2);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_low_bucket_paces_the_next_request_without_a_429() {
    // The first answer says 1 of 100 is left until the reset in 10 s: the second request
    // waits half of that (the rest spread evenly), and none is throttled.
    let (base, hits) = scripted(|n| {
        (n == 1).then(|| {
            (
                [
                    ("ratelimit-limit", "100"),
                    ("ratelimit-remaining", "1"),
                    ("ratelimit-reset", "10"),
                ],
                axum::Json(json!({"hit": 1})),
            )
                .into_response()
        })
    })
    .await;
    let mut options = options();
    // No client-side ceiling, as the kinds without documented limits default to.
    options.requests_per_second = None;
    let client = HttpClient::new(options).unwrap();
    let url = format!("{base}/r");
    client.get_json(&url, &[]).await.unwrap();
    let after_first = tokio::time::Instant::now();
    let (body, _) = client.get_json(&url, &[]).await.unwrap();
    assert_eq!(body["hit"], 2);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(
        after_first.elapsed() >= Duration::from_secs(5),
        "{:?}",
        after_first.elapsed()
    );
    // Plenty left (no headers): the next request goes at once.
    let after_second = tokio::time::Instant::now();
    client.get_json(&url, &[]).await.unwrap();
    assert!(
        after_second.elapsed() < Duration::from_secs(1),
        "{:?}",
        after_second.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn burst_of_503_then_ok() {
    let (base, hits) =
        scripted(|n| (n <= 3).then(|| AxStatus::SERVICE_UNAVAILABLE.into_response())).await;
    let (body, _) = client()
        .get_json(&format!("{base}/r"), &[("q", "v")])
        .await
        .unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn okta_rate_limit_reset_is_honoured() {
    let (base, hits) = scripted(|n| {
        (n == 1).then(|| {
            let now = crate::clock::system_now();
            let reset = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3;
            let date = httpdate::fmt_http_date(now);
            let headers = [
                ("x-rate-limit-remaining", "0".to_string()),
                ("x-rate-limit-reset", reset.to_string()),
                ("date", date),
            ];
            (AxStatus::TOO_MANY_REQUESTS, headers).into_response()
        })
    })
    .await;
    let started = tokio::time::Instant::now();
    client().get_json(&format!("{base}/r"), &[]).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The Date header has whole seconds, so the wait is 3 s give or take 1.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn forbidden_is_not_retried() {
    let (base, hits) = scripted(|_| {
        Some(
            (
                AxStatus::FORBIDDEN,
                "{\"error\":\"Authorization_RequestDenied\"}",
            )
                .into_response(),
        )
    })
    .await;
    let err = client()
        .get_json(&format!("{base}/r"), &[("secret", "s3cr3t")])
        .await
        .unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    match &err {
        HttpError::Status {
            status,
            url_path,
            body_excerpt,
        } => {
            assert_eq!(*status, 403);
            assert!(url_path.ends_with("/r"), "{url_path}");
            assert!(body_excerpt.contains("Authorization_RequestDenied"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.to_string().contains("s3cr3t"));
}

#[tokio::test(start_paused = true)]
async fn retry_time_cap_gives_throttled() {
    let (base, hits) = scripted(|_| {
        Some((AxStatus::SERVICE_UNAVAILABLE, [("retry-after", "10")]).into_response())
    })
    .await;
    let opts = HttpOptions {
        max_retry_time: Duration::from_secs(25),
        ..options()
    };
    let err = HttpClient::new(opts)
        .unwrap()
        .get_json(&format!("{base}/r"), &[])
        .await
        .unwrap_err();
    match err {
        HttpError::Throttled {
            attempts,
            last_status,
            ..
        } => {
            assert_eq!(attempts, 3);
            assert_eq!(last_status, 503);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn connection_refused_reports_attempts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let opts = HttpOptions {
        max_retry_time: Duration::from_secs(3),
        ..options()
    };
    let err = HttpClient::new(opts)
        .unwrap()
        .get_json(&format!("http://{addr}/x"), &[])
        .await
        .unwrap_err();
    match err {
        HttpError::Connect { attempts, .. } => assert!(attempts >= 2, "{attempts}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[derive(Clone, Default)]
struct OAuthState {
    token_hits: Hits,
    api_hits: Hits,
}

async fn token_endpoint(
    State(s): State<OAuthState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("client_secret").map(String::as_str) != Some("right") {
        return (AxStatus::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}))).into_response();
    }
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(form.get("client_id").map(String::as_str), Some("app-1"));
    assert_eq!(
        form.get("scope").map(String::as_str),
        Some("https://graph.microsoft.com/.default")
    );
    let n = s.token_hits.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("tok-{n}")}),
    )
    .into_response()
}

async fn api(State(s): State<OAuthState>, headers: AxHeaders) -> Response {
    let n = s.api_hits.fetch_add(1, Ordering::SeqCst) + 1;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // tok-1 is "revoked" from the third call on.
    if auth == "Bearer tok-1" && n >= 3 || !auth.starts_with("Bearer tok-") {
        return AxStatus::UNAUTHORIZED.into_response();
    }
    axum::Json(json!({"auth": auth})).into_response()
}

async fn oauth_setup(secret: &str) -> (HttpClient, OAuthState, String) {
    let state = OAuthState::default();
    let app = Router::new()
        .route("/token", post(token_endpoint))
        .route("/api", get(api))
        .with_state(state.clone());
    let base = serve(app).await;
    let http = client();
    let source = OAuthClientCredentials::new(
        http.reqwest_client(),
        &format!("{base}/token"),
        "app-1",
        ClientAuth::Secret(SecretString::new(secret)),
        Some("https://graph.microsoft.com/.default".to_string()),
    )
    .unwrap();
    (
        http.with_auth(Arc::new(source), AuthScheme::Bearer),
        state,
        base,
    )
}

#[tokio::test]
async fn token_cached_then_refreshed_on_401() {
    let (http, state, base) = oauth_setup("right").await;
    let url = format!("{base}/api");
    assert_eq!(
        http.get_json(&url, &[]).await.unwrap().0["auth"],
        "Bearer tok-1"
    );
    assert_eq!(
        http.get_json(&url, &[]).await.unwrap().0["auth"],
        "Bearer tok-1"
    );
    assert_eq!(state.token_hits.load(Ordering::SeqCst), 1, "token cached");
    assert_eq!(
        http.get_json(&url, &[]).await.unwrap().0["auth"],
        "Bearer tok-2"
    );
    assert_eq!(
        state.token_hits.load(Ordering::SeqCst),
        2,
        "refreshed once after 401"
    );
    assert_eq!(state.api_hits.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_failures_are_retried() {
    let hits = Hits::default();
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/token",
            post(move || {
                let counter = counter.clone();
                async move {
                    // Two failures (throttled, then down) before a token.
                    match counter.fetch_add(1, Ordering::SeqCst) {
                        0 => (
                            AxStatus::TOO_MANY_REQUESTS,
                            axum::Json(json!({"error": "slow_down"})),
                        )
                            .into_response(),
                        1 => AxStatus::SERVICE_UNAVAILABLE.into_response(),
                        _ => axum::Json(json!({"access_token": "tok", "expires_in": 3600}))
                            .into_response(),
                    }
                }
            }),
        )
        .route("/api", get(|| async { axum::Json(json!({"ok": true})) }));
    let base = serve(app).await;
    let http = client();
    let source = OAuthClientCredentials::new(
        http.reqwest_client(),
        &format!("{base}/token"),
        "app-1",
        ClientAuth::Secret(SecretString::new("s")),
        None,
    )
    .unwrap();
    let http = http.with_auth(Arc::new(source), AuthScheme::Bearer);
    let (body, _) = http.get_json(&format!("{base}/api"), &[]).await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn password_grant_of_a_public_client() {
    let app = Router::new()
        .route(
            "/token",
            post(|Form(form): Form<HashMap<String, String>>| async move {
                let ok = form.get("grant_type").map(String::as_str) == Some("password")
                    && form.get("client_id").map(String::as_str) == Some("admin-cli")
                    && form.get("username").map(String::as_str) == Some("sync-bot")
                    && form.get("password").map(String::as_str) == Some("pw")
                    && !form.contains_key("client_secret");
                if ok {
                    axum::Json(json!({"access_token": "tok", "expires_in": 60})).into_response()
                } else {
                    (
                        AxStatus::UNAUTHORIZED,
                        axum::Json(json!({"error": "invalid_grant"})),
                    )
                        .into_response()
                }
            }),
        )
        .route("/api", get(|| async { axum::Json(json!({"ok": true})) }));
    let base = serve(app).await;
    let http = client();
    let source = OAuthClientCredentials::new(
        http.reqwest_client(),
        &format!("{base}/token"),
        "admin-cli",
        ClientAuth::Public,
        None,
    )
    .unwrap()
    .with_password_grant("sync-bot", SecretString::new("pw"));
    let http = http.with_auth(Arc::new(source), AuthScheme::Bearer);
    let (body, _) = http.get_json(&format!("{base}/api"), &[]).await.unwrap();
    assert_eq!(body["ok"], true);
}

#[tokio::test]
async fn token_endpoint_refusal_is_auth_error() {
    let (http, state, base) = oauth_setup("wrong").await;
    let err = http
        .get_json(&format!("{base}/api"), &[])
        .await
        .unwrap_err();
    match &err {
        HttpError::Auth { status, code, .. } => {
            assert_eq!(*status, 401);
            assert_eq!(code, "invalid_client");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("invalid_client"));
    assert!(!err.to_string().contains("wrong"));
    assert_eq!(state.api_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn ssws_scheme_is_sent() {
    let app = Router::new().route(
        "/api/v1/users",
        get(|headers: AxHeaders| async move {
            let ok =
                headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("SSWS 00abc");
            if ok {
                axum::Json(json!([])).into_response()
            } else {
                AxStatus::UNAUTHORIZED.into_response()
            }
        }),
    );
    let base = serve(app).await;
    let http = client().with_auth(
        Arc::new(StaticToken::new(SecretString::new("00abc"))),
        AuthScheme::Ssws,
    );
    let (body, _) = http
        .get_json(&format!("{base}/api/v1/users"), &[])
        .await
        .unwrap();
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn link_header_paging_over_three_pages() {
    let app = Router::new().route(
        "/api/v1/users",
        get(
            |headers: AxHeaders,
             axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| async move {
                let host = headers
                    .get("host")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let page: u32 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(1);
                let mut links = vec![format!(
                    "<http://{host}/api/v1/users?limit=2>; rel=\"self\""
                )];
                if page < 3 {
                    links.push(format!(
                        "<http://{host}/api/v1/users?after={}&limit=2>; rel=\"next\"",
                        page + 1
                    ));
                }
                let mut resp = axum::Json(json!([{"id": format!("u{page}")}])).into_response();
                for l in links {
                    resp.headers_mut().append("link", l.parse().unwrap());
                }
                resp
            },
        ),
    );
    let base = serve(app).await;
    let http = client();
    let mut next = Some(format!("{base}/api/v1/users?limit=2"));
    let mut ids = Vec::new();
    while let Some(url) = next {
        let (body, headers) = http.get_json(&url, &[]).await.unwrap();
        ids.push(body[0]["id"].as_str().unwrap().to_string());
        next = next_link_from_header(&headers);
    }
    assert_eq!(ids, ["u1", "u2", "u3"]);
}

#[tokio::test]
async fn odata_next_link_paging() {
    let app = Router::new().route(
        "/v1.0/users",
        get(|headers: AxHeaders, axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| async move {
            let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            match q.get("$skiptoken").map(String::as_str) {
                None => axum::Json(json!({"value": [{"id": "a"}], "@odata.nextLink": format!("http://{host}/v1.0/users?$skiptoken=p2")})),
                Some(_) => axum::Json(json!({"value": [{"id": "b"}]})),
            }
        }),
    );
    let base = serve(app).await;
    let http = client();
    let (first, _) = http
        .get_json(&format!("{base}/v1.0/users"), &[("$select", "id")])
        .await
        .unwrap();
    let next = odata_next_link(&first).unwrap();
    let (second, _) = http.get_json(&next, &[]).await.unwrap();
    assert_eq!(second["value"][0]["id"], "b");
    assert_eq!(odata_next_link(&second), None);
}

/// A provider failing on its side gets advice about its health, one throttling us about
/// our rate.
#[test]
fn giving_up_advises_by_the_last_status() {
    let gave_up = |last_status| {
        HttpError::Throttled {
            url_path: "graph.example/v1.0/users".into(),
            attempts: 7,
            last_status,
        }
        .to_string()
    };
    let failing = gave_up(503);
    assert!(
        failing.contains("failing on its side; check its status page"),
        "{failing}"
    );
    assert!(!failing.contains("requests_per_second"), "{failing}");
    let throttled = gave_up(429);
    assert!(
        throttled.contains("lower requests_per_second"),
        "{throttled}"
    );
}
