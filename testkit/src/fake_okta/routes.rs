//! The fake Okta's HTTP side: the token endpoint, the three listings, and what every API
//! request goes through (count, throttling, authentication, the deny knob, paging).

use super::*;

/// The fake's routes.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth2/v1/token", post(token))
        .route("/api/v1/users", get(users_listing))
        .route("/api/v1/groups", get(groups_listing))
        .route("/api/v1/groups/{id}/users", get(members_listing))
        .fallback(not_found)
        .with_state(shared)
}

/// Waits [`Knobs::request_delay`] (not at all without one: even a zero-length timer
/// waits for the next tick of tokio's millisecond clock).
async fn delay(shared: &Shared) {
    if !shared.knobs.request_delay.is_zero() {
        tokio::time::sleep(shared.knobs.request_delay).await;
    }
}

/// An Okta error body.
fn error(status: StatusCode, code: &str, summary: &str) -> Response {
    let id = format!("oae{}", uuid::Uuid::new_v4().simple());
    (
        status,
        axum::Json(
            json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": id, "errorCauses": []}),
        ),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "E0000022",
        "The endpoint does not support the provided HTTP method",
    )
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed: a client_assertion is required.",
        );
    }
    if let Err(why) = verify_assertion(&shared, field("client_assertion"), field("client_id")) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why);
    }
    let requested: Vec<&str> = field("scope").split_whitespace().collect();
    if requested.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    let refused: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| !shared.options.granted_scopes.iter().any(|g| g == s))
        .collect();
    if !refused.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "The following scopes are not allowed: {}",
                refused.join(" ")
            ),
        );
    }
    let n = shared.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let access_token = format!("eyJraWQiOiJmYWtlIn0.fake-okta-access-token-{n}");
    *shared.token.lock().expect("lock") = Some((access_token.clone(), 0));
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600,
        "access_token": access_token, "scope": requested.join(" ")}))
    .into_response()
}

/// Checks a client assertion the way Okta documents it
/// (<https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/main/>).
fn verify_assertion(shared: &Shared, assertion: &str, client_id: &str) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let token_url = format!("{}/oauth2/v1/token", shared.base.get().expect("base"));
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| format!("The client_assertion is not a JWT: {e}"))?;
    if header.kid.as_deref().is_some_and(|kid| kid != KEY_ID) {
        return Err("The client_assertion token has an invalid kid.".into());
    }
    let key = DecodingKey::from_rsa_pem(test_key("okta_test_key.pub.pem").as_bytes())
        .expect("public key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.sub = Some(CLIENT_ID.to_string());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("The client_assertion is invalid: {e}"))?
        .claims;
    if !client_id.is_empty() && client_id != CLIENT_ID {
        return Err("The client_id does not match the client_assertion.".into());
    }
    let now = idsync::clock::now().timestamp() as u64;
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp > now + 3600 {
        return Err("The client_assertion token has an expiration too far into the future.".into());
    }
    let jti = claims["jti"].as_str().unwrap_or("");
    if !jti.is_empty() && !shared.jtis.lock().expect("lock").insert(jti.to_string()) {
        return Err("The client_assertion token has already been used.".into());
    }
    Ok(())
}

/// Rate-limit bucket of a path: users, groups, everything else.
fn bucket_of(path: &str) -> usize {
    match path {
        "/api/v1/users" => 0,
        "/api/v1/groups" => 1,
        _ => 2,
    }
}

/// Counts the request in its bucket and returns the `X-Rate-Limit-*` headers.
fn rate_headers(shared: &Shared, path: &str, exhausted: bool) -> [(&'static str, String); 3] {
    let index = bucket_of(path);
    let limit = shared.options.bucket_limits[index];
    let now = idsync::clock::now().timestamp() as u64;
    let mut buckets = shared.buckets.lock().expect("lock");
    let bucket = &mut buckets[index];
    if now >= bucket.window_start + 60 {
        bucket.window_start = now;
        bucket.used = 0;
    }
    bucket.used += 1;
    let (remaining, reset) = if exhausted {
        // A 429 asks to come back now (or within the second).
        (0, now)
    } else {
        (limit.saturating_sub(bucket.used), bucket.window_start + 60)
    };
    [
        ("x-rate-limit-limit", limit.to_string()),
        ("x-rate-limit-remaining", remaining.to_string()),
        ("x-rate-limit-reset", reset.to_string()),
    ]
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(*name, value);
        }
    }
    response
}

/// What every API request goes through first: the count, throttling, authentication and
/// the deny knob. `Err` is the answer to send instead.
fn gate(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    query: &HashMap<String, String>,
    listing: Listing,
) -> Result<[(&'static str, String); 3], Box<Response>> {
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let mut shown: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    shown.sort();
    shared
        .log
        .lock()
        .expect("lock")
        .push(format!("{path}?{}", shown.join("&")));
    if shared
        .knobs
        .throttle_every
        .is_some_and(|every| every > 0 && n.is_multiple_of(every))
    {
        shared.throttled.fetch_add(1, Ordering::SeqCst);
        let rate = rate_headers(shared, path, true);
        return Err(Box::new(with_headers(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            ),
            &rate,
        )));
    }
    let rate = rate_headers(shared, path, false);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authorized = match shared.options.auth {
        FakeAuth::ApiToken => authorization == format!("SSWS {API_TOKEN}"),
        FakeAuth::ServiceApp => {
            let mut token = shared.token.lock().expect("lock");
            match token.as_mut() {
                Some((current, used)) if authorization == format!("Bearer {current}") => {
                    let lifetime = shared.knobs.token_lifetime_requests.unwrap_or(usize::MAX);
                    *used += 1;
                    *used <= lifetime
                }
                _ => false,
            }
        }
    };
    if !authorized {
        return Err(Box::new(with_headers(
            error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
            ),
            &rate,
        )));
    }
    if shared.knobs.deny == Some(listing) {
        let scope = match listing {
            Listing::Users => "okta.users.read",
            Listing::Groups | Listing::Members => "okta.groups.read",
        };
        let mut response = error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
        );
        if shared.options.auth == FakeAuth::ServiceApp {
            let base = shared.base.get().expect("base");
            let challenge = format!(
                "Bearer authorization_uri=\"{base}/oauth2/v1/authorize\", realm=\"{base}\", \
                 scope=\"{scope}\", error=\"insufficient_scope\", error_description=\"The access \
                 token provided does not contain the required scopes.\", resource=\"{path}\""
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert("www-authenticate", value);
            }
        }
        return Err(Box::new(with_headers(response, &rate)));
    }
    Ok(rate)
}

/// How one listing pages.
struct Paging<'a> {
    path: &'a str,
    query: &'a HashMap<String, String>,
    /// Okta's largest and default `limit` for the listing.
    max: usize,
    default: usize,
    /// The last page is a 500 instead.
    fail_last: bool,
}

impl Paging<'_> {
    /// The page size: `limit` within Okta's bounds, capped by [`Knobs::page_size`].
    fn limit(&self, shared: &Shared) -> usize {
        let mut limit = self
            .query
            .get("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.default)
            .clamp(1, self.max);
        if shared.knobs.page_size > 0 {
            limit = limit.min(shared.knobs.page_size);
        }
        limit
    }

    /// The `after` cursor of the request.
    fn after(&self) -> Option<&str> {
        self.query.get("after").map(String::as_str)
    }
}

/// The answer carrying one page of `items` (by id), with its `Link` headers: `more` says
/// whether items follow (a `next` link after the last id of this page).
fn page(
    shared: &Shared,
    paging: Paging<'_>,
    items: Vec<(String, Value)>,
    more: bool,
    rate: &[(&'static str, String)],
) -> Response {
    let limit = paging.limit(shared);
    let Paging {
        path,
        query,
        fail_last,
        ..
    } = paging;
    if fail_last && !more {
        return with_headers(
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "E0000009",
                "Internal Server Error",
            ),
            rate,
        );
    }
    let next_after = items.last().map(|(id, _)| id.clone());
    let body: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    let base = shared.base.get().expect("base");
    let link = |after: Option<&str>| {
        let mut url = url::Url::parse(&format!("{base}{path}")).expect("url");
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(after) = after {
                pairs.append_pair("after", after);
            }
            pairs.append_pair("limit", &limit.to_string());
            for key in ["filter", "search"] {
                if let Some(value) = query.get(key) {
                    pairs.append_pair(key, value);
                }
            }
        }
        url.to_string()
    };
    let mut response = axum::Json(body).into_response();
    let self_link = format!(
        "<{}>; rel=\"self\"",
        link(query.get("after").map(String::as_str))
    );
    response
        .headers_mut()
        .append("link", HeaderValue::from_str(&self_link).expect("link"));
    if more && let Some(after) = next_after {
        let next = format!("<{}>; rel=\"next\"", link(Some(&after)));
        response
            .headers_mut()
            .append("link", HeaderValue::from_str(&next).expect("link"));
    }
    with_headers(response, rate)
}

fn bad_filter(why: &str) -> Response {
    let id = format!("oae{}", uuid::Uuid::new_v4().simple());
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"errorCode": "E0000031", "errorSummary": "Invalid search criteria.",
            "errorLink": "E0000031", "errorId": id,
            "errorCauses": [{"errorSummary": why}]}),
        ),
    )
        .into_response()
}

async fn users_listing(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    delay(&shared).await;
    let path = "/api/v1/users";
    let rate = match gate(&shared, &headers, path, &query, Listing::Users) {
        Ok(rate) => rate,
        Err(response) => return *response,
    };
    let expr = match query.get("filter") {
        Some(text) => match filter::parse(text, &filter::USERS) {
            Ok(expr) => Some(expr),
            Err(why) => return with_headers(bad_filter(&why), &rate),
        },
        None => None,
    };
    // `DEPROVISIONED` users only when a filter or search is present.
    let filtered = expr.is_some() || query.contains_key("search");
    let base = shared.base.get().expect("base").clone();
    let paging = Paging {
        path,
        query: &query,
        max: 200,
        default: 200,
        fail_last: shared.knobs.fail_last_page == Some(Listing::Users),
    };
    let (items, more) = {
        let served = shared.served.lock().expect("lock");
        let candidates = match &expr {
            Some(expr) => served.users.plan(expr),
            None => index::Candidates::All,
        };
        let keep = |rank: usize| {
            (filtered || served.user_at(rank).0.status != UserStatus::Deleted)
                && expr
                    .as_ref()
                    .is_none_or(|e| e.matches(&|attr| served.user_attribute(rank, attr)))
        };
        let (ranks, more) =
            served
                .users
                .page(&candidates, paging.after(), paging.limit(&shared), keep);
        let last_login = now_text();
        let items = ranks
            .into_iter()
            .filter_map(|rank| {
                let (user, times) = served.user_at(rank);
                Some((user.id.clone(), user_json(&base, user, times, &last_login)?))
            })
            .collect();
        (items, more)
    };
    page(&shared, paging, items, more, &rate)
}

async fn groups_listing(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    delay(&shared).await;
    let path = "/api/v1/groups";
    let rate = match gate(&shared, &headers, path, &query, Listing::Groups) {
        Ok(rate) => rate,
        Err(response) => return *response,
    };
    let expr = match query.get("filter") {
        Some(text) => match filter::parse(text, &filter::GROUPS) {
            Ok(expr) => Some(expr),
            Err(why) => return with_headers(bad_filter(&why), &rate),
        },
        None => None,
    };
    let base = shared.base.get().expect("base").clone();
    let paging = Paging {
        path,
        query: &query,
        max: 10_000,
        default: 10_000,
        fail_last: shared.knobs.fail_last_page == Some(Listing::Groups),
    };
    let (items, more) = {
        let served = shared.served.lock().expect("lock");
        let candidates = match &expr {
            Some(expr) => served.groups.plan(expr),
            None => index::Candidates::All,
        };
        let keep = |rank: usize| {
            expr.as_ref()
                .is_none_or(|e| e.matches(&|attr| served.group_attribute(rank, attr)))
        };
        let (ranks, more) =
            served
                .groups
                .page(&candidates, paging.after(), paging.limit(&shared), keep);
        let items = ranks
            .into_iter()
            .map(|rank| {
                let (id, name, kind, times) = served.group_at(rank);
                (id.to_string(), group_json(&base, id, name, kind, times))
            })
            .collect();
        (items, more)
    };
    page(&shared, paging, items, more, &rate)
}

async fn members_listing(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    delay(&shared).await;
    let path = format!("/api/v1/groups/{id}/users");
    let rate = match gate(&shared, &headers, &path, &query, Listing::Members) {
        Ok(rate) => rate,
        Err(response) => return *response,
    };
    let base = shared.base.get().expect("base").clone();
    let mut paging = Paging {
        path: &path,
        query: &query,
        max: 1000,
        default: 1000,
        fail_last: false,
    };
    let limit = paging.limit(&shared);
    let (items, more) = {
        let served = shared.served.lock().expect("lock");
        let Some(members) = served.members_of(&id) else {
            return with_headers(
                error(
                    StatusCode::NOT_FOUND,
                    "E0000007",
                    &format!("Not found: Resource not found: {id} (UserGroup)"),
                ),
                &rate,
            );
        };
        paging.fail_last = shared.knobs.fail_last_page == Some(Listing::Members)
            && served.last_group.as_deref() == Some(id.as_str());
        let start = match paging.after() {
            Some(after) => members.partition_point(|&i| served.user(i).0.id.as_str() <= after),
            None => 0,
        };
        let end = (start + limit).min(members.len());
        let last_login = now_text();
        let items = members[start..end]
            .iter()
            .filter_map(|&i| {
                let (user, times) = served.user(i);
                Some((user.id.clone(), user_json(&base, user, times, &last_login)?))
            })
            .collect();
        (items, end < members.len())
    };
    page(&shared, paging, items, more, &rate)
}
